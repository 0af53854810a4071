//! A campaign described in a file runs as described, writes the campaign it
//! ran as a file, and that file runs the same campaign again.

mod common;

use common::edgebench;
use edgebench::store::Store;
use std::path::Path;

fn stored_config(dir: &Path) -> serde_json::Value {
    let mut config = Store::open_read_only(dir).unwrap().campaign().unwrap().expect("a campaign").config;
    config.as_object_mut().unwrap().remove("out");
    config
}

#[test]
fn a_campaign_file_runs_and_its_resolved_copy_runs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        "# a small study\nruntimes = [\"native:static-musl\", \"wasmtime-embedded\"]\nworkloads = [\"hello\"]\n\
         metrics = [\"cold_start\"]\nreps = 2\nwarmup = false\ncpus = \"shared\"\nsettle_max_ms = 0\n",
    )
    .unwrap();
    let first = dir.path().join("first");
    // A flag beside the file overrides it.
    edgebench(
        &["run", "--no-build", "--campaign", study.to_str().unwrap(), "--reps", "1", "--out", first.to_str().unwrap()],
        dir.path(),
    );
    let config = stored_config(&first);
    assert_eq!(config["reps"], 1, "{config}");
    assert_eq!(config["runtimes"], serde_json::json!(["native:static-musl", "wasmtime-embedded"]));
    let resolved = first.join(edgebench::campaign::CAMPAIGN_FILE);
    let text = std::fs::read_to_string(&resolved).unwrap();
    assert!(text.contains("reps = 1") && text.contains("seed = "), "{text}");

    let again = dir.path().join("again");
    edgebench(
        &["run", "--no-build", "--campaign", resolved.to_str().unwrap(), "--out", again.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(stored_config(&again), config, "the resolved file runs the same campaign (seed included)");
    let store = Store::open_read_only(&again).unwrap();
    let samples = store.samples(&store.campaign().unwrap().unwrap().id).unwrap();
    let cold: Vec<_> = samples.iter().filter(|s| s.metric == "cold_start" && s.ok).collect();
    assert_eq!(cold.len(), 2, "one trial each of native and the embedded host");
    assert!(cold.iter().any(|s| s.runtime == "native") && cold.iter().any(|s| s.runtime == "wasmtime-embedded"));
}

#[test]
fn another_baseline_takes_the_ratios_and_native_is_then_ranked_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    edgebench(
        &[
            "run",
            "--no-build",
            "--runtimes",
            "native,wasmtime-embedded",
            "--workloads",
            "hello",
            "--metrics",
            "cold_start",
            "--reps",
            "2",
            "--no-warmup",
            "--settle-max-ms",
            "0",
            "--baseline",
            "wasmtime-embedded",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(stored_config(&out)["baseline"], "wasmtime-embedded");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row = |runtime: &str| -> Vec<String> {
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("{runtime},")) && l.contains(",cold_start,,"))
            .unwrap_or_else(|| panic!("{runtime} cold_start in {csv}"));
        line.split(',').map(str::to_string).collect()
    };
    assert_eq!(row("wasmtime-embedded")[col("is_baseline")], "1");
    assert_eq!(row("native")[col("is_baseline")], "0");
    let ratio: f64 = row("native")[col("ratio_to_native")].parse().expect("native has a ratio to the baseline");
    assert!(ratio > 0.0);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("× wasmtime-embedded") && report.contains("`wasmtime-embedded` is this campaign's baseline")
    );
    assert!(!report.contains("× native"), "no ratio is to native");
}
