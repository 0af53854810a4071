//! The three core runtimes, for real: a small campaign on each, every
//! workload, every metric; nothing left running afterwards.

mod common;

use common::*;
use edgebench::campaign::Outcome;
use edgebench::Workload;

fn check_runtime(runtime: &str, variants: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, samples) = run_campaign(small_options(&[runtime], &Workload::BUILTIN, dir.path()));
    assert_eq!(outcome, Outcome::Finished);
    for w in Workload::BUILTIN {
        let w = w.name();
        for variant in variants {
            let cold: Vec<_> =
                ok_values(&samples, runtime, w, "cold_start").into_iter().filter(|s| s.variant == *variant).collect();
            assert_eq!(cold.len(), 2, "{runtime}/{variant}/{w}: two cold starts: {samples:#?}");
            assert!(cold.iter().all(|s| s.value.unwrap() > 0.0 && s.unit == "ms"));
        }
        for metric in ["latency_keepalive", "latency_newconn"] {
            assert_eq!(
                ok_values(&samples, runtime, w, metric).len(),
                2 * 20 * variants.len(),
                "{runtime}/{w}/{metric}"
            );
        }
        let pss = ok_values(&samples, runtime, w, "memory_pss");
        assert!(!pss.is_empty() && pss.iter().all(|s| s.value.unwrap() > 0.0), "{runtime}/{w}: PSS measured");
        assert!(!ok_values(&samples, runtime, w, "cpu_time").is_empty());
    }
    let failed: Vec<_> = samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")).collect();
    assert!(failed.is_empty(), "no failed samples: {failed:#?}");
    assert!(dir.path().join("report.md").exists() && dir.path().join("summary.csv").exists());
    assert_eq!(children_left(), Vec::<String>::new(), "nothing left running");
}

#[test]
fn native_is_measured_end_to_end() {
    check_runtime("native", &["static-musl"]);
}

#[test]
fn embedded_wasmtime_is_measured_end_to_end_with_warm_starts() {
    check_runtime("wasmtime-embedded", &["precompiled-pooling"]);
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["wasmtime-embedded"], &[Workload::HELLO], dir.path());
    options.metrics = vec![edgebench::campaign::Metric::WarmStart];
    let (_, samples) = run_campaign(options);
    // Each warm start is a new instance: timed by the client and inside the host.
    assert_eq!(ok_values(&samples, "wasmtime-embedded", "hello", "warm_start").len(), 6);
    assert_eq!(ok_values(&samples, "wasmtime-embedded", "hello", "warm_start_internal").len(), 6);
    // The component was compiled in prepare, measured like the other runtimes' AOT compiles,
    // and the instances served that output.
    for metric in ["aot_compile", "aot_compile_memory"] {
        let compile: Vec<_> = samples.iter().filter(|s| s.metric == metric).collect();
        assert!(
            compile.len() == 1 && compile[0].ok && compile[0].phase == "prepare" && compile[0].value.unwrap() > 0.0,
            "{compile:?}"
        );
    }
    let compiled = dir.path().join("work").join("aot").join("wasmtime-embedded-hello.aot");
    assert!(compiled.exists(), "{} is where prepare compiles to", compiled.display());
}

#[test]
fn wasmtime_cli_is_measured_with_and_without_its_cache() {
    if available("wasmtime") {
        check_runtime("wasmtime", &["cache", "nocache"]);
    }
}

#[test]
fn native_warm_start_is_recorded_as_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.metrics = vec![edgebench::campaign::Metric::WarmStart];
    let (_, samples) = run_campaign(options);
    let warm: Vec<_> = samples.iter().filter(|s| s.metric == "warm_start").collect();
    assert_eq!(warm.len(), 2);
    assert!(warm.iter().all(|s| !s.ok && s.error.starts_with("not applicable:")), "{warm:#?}");
}

/// What a phase's figures include: the warm starts (new instances on the
/// running runtime) come after the latency runs and their CPU and memory
/// samples, so `cpu_time{latency}` and `memory_*{after_latency}` measure the
/// requests only.
#[test]
fn warm_starts_run_after_every_figure_of_the_latency_phase() {
    let dir = tempfile::tempdir().unwrap();
    let (_, samples) = run_campaign(small_options(&["wasmtime-embedded"], &[Workload::HELLO], dir.path()));
    for rep in [1, 2] {
        let of = |metric: &str, phase: Option<&str>| -> Vec<i64> {
            samples
                .iter()
                .filter(|s| s.repetition == rep && s.metric == metric && phase.is_none_or(|p| s.phase == p))
                .map(|s| s.ts_ns)
                .collect()
        };
        let first_warm = *of("warm_start", None).iter().min().expect("warm starts measured");
        let latency_phase: Vec<i64> = [
            of("latency_keepalive", None),
            of("latency_newconn", None),
            of("cpu_time", Some("latency")),
            of("memory_pss", Some("after_latency")),
        ]
        .concat();
        assert!(latency_phase.len() > 40, "trial {rep}: {}", latency_phase.len());
        assert!(
            latency_phase.iter().all(|t| *t < first_warm),
            "trial {rep}: a latency-phase figure after a warm start"
        );
    }
}
