//! One model, every format: for a real campaign, every cell of the analysis
//! model is in report.json (the same values), in summary.csv (the same
//! numbers), in report.md and report.html (the same rendered figures), and
//! every metric stored in results.sqlite appears in every format.

mod common;

use common::*;
use edgebench::report::format::{html, median_with_ci, p99_with_ci, ratio};
use edgebench::report::{self, Cell};
use edgebench::Workload;
use std::collections::{BTreeSet, HashMap};

fn where_(c: &Cell) -> String {
    let base = format!("{} ({})", c.runtime, c.variant);
    if c.firewall == "off" {
        base
    } else {
        format!("{base} · firewall {}", c.firewall)
    }
}

fn csv_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        String::new()
    }
}

/// Equal, numbers to the last bits a JSON round trip keeps.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[test]
fn every_format_renders_the_same_model_and_every_stored_metric() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native", "wasmtime-embedded"], &[Workload::Hello, Workload::Kv], dir.path());
    options.reps = 3;
    let (_, samples) = run_campaign(options);
    let model = report::load(dir.path()).unwrap();

    // JSON: the model's cells, value for value.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!((json["format"].as_str(), json["version"].as_u64()), (Some("edgebench-report"), Some(1)));
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), model.cells.len());
    for (j, c) in cells.iter().zip(&model.cells) {
        let m = serde_json::to_value(c).unwrap();
        assert!(same(j, &m), "{} {} {}:\n{j}\n{m}", where_(c), c.metric, c.phase);
    }

    // CSV: one row per cell, the same numbers.
    let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), model.cells.len());
    for c in &model.cells {
        let row = rows
            .iter()
            .find(|r| {
                [
                    r[col("runtime")],
                    r[col("variant")],
                    r[col("workload")],
                    r[col("metric")],
                    r[col("phase")],
                    r[col("firewall")],
                ] == [&*c.runtime, &*c.variant, &*c.workload, &*c.metric, &*c.phase, &*c.firewall]
            })
            .unwrap_or_else(|| panic!("no CSV row for {} {} {}", where_(c), c.metric, c.phase));
        for (name, value) in [
            ("median", c.median),
            ("median_ci_low", c.median_ci.0),
            ("median_ci_high", c.median_ci.1),
            ("p99", c.p99),
            ("p99_ci_low", c.p99_ci.0),
            ("p99_ci_high", c.p99_ci.1),
            ("ratio_to_native", c.ratio.map_or(f64::NAN, |r| r.0)),
        ] {
            assert_eq!(row[col(name)], csv_num(value), "{name} of {} {} {}", where_(c), c.metric, c.phase);
        }
        assert_eq!(row[col("n")], c.n.to_string());
    }

    // Markdown and HTML: each cell's row carries the model's figures as rendered.
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for c in model.cells.iter().filter(|c| c.n > 0) {
        let md_row = format!(
            "| {} | {} | {} | {} ({}) | {} | {} | {} |",
            c.workload,
            where_(c),
            c.phase,
            c.n,
            c.failed,
            median_with_ci(c),
            p99_with_ci(c),
            ratio(c)
        );
        assert!(md.contains(&md_row), "report.md has no row {md_row}");
        let html_figures = format!(
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            html(&median_with_ci(c)),
            html(&p99_with_ci(c)),
            html(&ratio(c))
        );
        assert!(page.contains(&html_figures), "report.html has no figures {html_figures} for {}", where_(c));
    }

    // Every metric stored is in every format.
    let stored: BTreeSet<&str> = samples.iter().map(|s| s.metric.as_str()).collect();
    let in_json: BTreeSet<&str> = cells.iter().filter_map(|c| c["metric"].as_str()).collect();
    let in_csv: BTreeSet<&str> = rows.iter().map(|r| r[col("metric")]).collect();
    let mut missing: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &stored {
        for (format, present) in [
            ("report.json", in_json.contains(m)),
            ("summary.csv", in_csv.contains(m)),
            ("report.md", md.contains(&format!("### {m} ("))),
            ("report.html", page.contains(&format!(">{m} ("))),
        ] {
            if !present {
                missing.entry(format).or_default().push(m);
            }
        }
    }
    assert!(missing.is_empty(), "stored metrics missing from formats: {missing:?}");
}
