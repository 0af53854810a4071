//! One model, every format: for real campaigns, report.json is the analysis
//! model (the same values, every part), summary.csv has every cell (the same
//! numbers), report.md and report.html show the same rendered figures of
//! every cell, throughput row, search step, scaling point, density trial,
//! data-quality count, failure and firewall delta, and every metric stored
//! in results.sqlite appears in every format.

mod common;

use common::*;
use edgebench::campaign::Metric;
use edgebench::report::format::{
    config_under, count, html, kib_as_mib, md, median_or_why, median_with_ci, num, open_rate, p99_with_ci, ratio,
};
use edgebench::report::{self, Cell, Model};
use edgebench::store::Sample;
use edgebench::Workload;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

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

/// A row of report.md's table.
fn md_row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// The same row in report.html: each value in its own cell.
fn html_cells(cells: &[String]) -> String {
    cells.iter().map(|c| format!(">{}</td>", html(c))).collect::<Vec<_>>().join("<td class=\"num\"")
}

fn under(runtime: &str, variant: &str, firewall: &str, for_html: bool) -> String {
    if for_html && firewall != "off" {
        format!("{runtime} ({variant}), firewall {firewall}")
    } else {
        config_under(runtime, variant, firewall)
    }
}

fn check_every_format(dir: &Path, samples: &[Sample]) -> Model {
    let model = report::load(dir).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let (md_text, page, csv) = (read("report.md"), read("report.html"), read("summary.csv"));

    // JSON: the model, every part of it.
    let mut json: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
    assert_eq!((json["format"].as_str(), json["version"].as_u64()), (Some("edgebench-report"), Some(2)));
    let map = json.as_object_mut().unwrap();
    map.remove("format");
    map.remove("version");
    let whole = serde_json::to_value(&model).unwrap();
    for (key, value) in whole.as_object().unwrap() {
        assert!(json.get(key).is_some_and(|j| same(j, value)), "report.json's {key} is not the model's");
    }
    assert_eq!(json.as_object().unwrap().len(), whole.as_object().unwrap().len());

    // CSV: one row per cell, the same numbers.
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
    for c in model.cells.iter().filter(|c| c.n > 0) {
        let md_cells = format!(
            "| {} | {} | {} | {} ({}) | {} | {} | {} |",
            md(&c.workload),
            md(&where_(c)),
            md(&c.phase),
            c.n,
            c.failed,
            median_with_ci(c),
            p99_with_ci(c),
            ratio(c)
        );
        assert!(md_text.contains(&md_cells), "report.md has no row {md_cells}");
        let html_figures = format!(
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            html(&median_with_ci(c)),
            html(&p99_with_ci(c)),
            html(&ratio(c))
        );
        assert!(page.contains(&html_figures), "report.html has no figures {html_figures} for {}", where_(c));
    }

    // Throughput rows and every search step.
    let cell = |i: Option<usize>| i.map(|i| model.cell(i));
    for r in &model.throughput.rows {
        let figures = [
            r.trials.to_string(),
            median_or_why(cell(r.closed)),
            open_rate(cell(r.open)),
            median_or_why(cell(r.cpu_per_request)),
            median_or_why(cell(r.closed_p50)),
            median_or_why(cell(r.closed_p99)),
        ];
        let c = &r.config;
        let mut row = vec![c.workload.clone(), md(&under(&c.runtime, &c.variant, &c.firewall, false))];
        row.extend(figures.iter().cloned());
        assert!(md_text.contains(&md_row(&row)), "report.md has no throughput row {}", md_row(&row));
        assert!(page.contains(&html_cells(&figures)), "report.html has no throughput figures {figures:?}");
    }
    let steps: Vec<_> = model.throughput.curves.iter().flat_map(|c| c.trials.iter().map(move |t| (c, t))).collect();
    for (curve, trial) in steps {
        for s in &trial.steps {
            let values: Vec<String> = s.values.values().map(|v| count(*v)).collect();
            let shown =
                values.iter().all(|v| md_text.contains(&format!("| {v} |")) && page.contains(&format!(">{v}</td>")));
            assert!(shown, "step {} of trial {} of {:?}: {values:?}", s.seq, trial.repetition, curve.config);
            let seq = format!("| #{} | {} |", trial.repetition, s.seq);
            assert!(md_text.contains(&seq), "report.md has no step row {seq}");
        }
    }

    // Scaling points and density trials.
    for start in model.scaling.curves.iter().filter(|c| c.metric == "scaling_start") {
        for (k, i) in &start.points {
            let c = model.cell(*i);
            let row = md_row(&[
                start.config.workload.clone(),
                md(&under(&start.config.runtime, &start.config.variant, &start.config.firewall, false)),
                count(*k),
                median_or_why(Some(c)),
            ]);
            let row = row.trim_end_matches(" |").to_string();
            assert!(md_text.contains(&row), "report.md has no scaling row {row}");
        }
    }
    for d in &model.scaling.density {
        let figures = [format!("#{}", d.repetition), d.instances.map_or("failed".into(), count)];
        assert!(md_text.contains(&md_row(&figures)), "report.md: density {figures:?}");
        assert!(page.contains(&html_cells(&figures)), "report.html: density {figures:?}");
        for pss in [kib_as_mib(d.pss_per_instance_kib), kib_as_mib(d.pss_after_boot_kib)] {
            assert!(md_text.contains(&format!("| {pss} |")) && page.contains(&format!(">{pss}</td>")), "{pss}");
        }
    }

    // Data quality: the same counts and the same failures.
    let q = &model.quality;
    let quiet = format!("{} of {} key cells reached ±", q.quiet_key_cells, q.key_cells.len());
    assert!(md_text.contains(&quiet) && page.contains(&quiet), "{quiet}");
    for f in &q.failures {
        let line = format!("{}: {} failed; first:", f.metric, f.count);
        assert!(md_text.contains(&line) && page.contains(&line), "failure {line}");
    }

    // Firewall deltas: every row in both.
    for d in &model.firewall.deltas {
        let off = num(d.off_median);
        let head = md_row(&[
            format!(
                "{} {}",
                if d.phase.is_empty() { d.metric.clone() } else { format!("{} ({})", d.metric, d.phase) },
                d.unit
            ),
            d.workload.clone(),
            d.runtime.clone(),
            d.variant.clone(),
            d.profile.clone(),
            d.n.to_string(),
        ]);
        let head = head.trim_end_matches(" |").to_string();
        assert!(md_text.contains(&head), "report.md has no delta row {head}");
        assert!(page.contains(&format!("<td>{}</td><td class=\"num\">{}</td>", html(&d.profile), d.n)), "html delta");
        assert!(page.contains(&format!(">{off}</td>")), "off median {off} in report.html");
    }

    // Every metric stored is in every format: a cell's table, or a column
    // of the search-step table.
    let stored: BTreeSet<&str> = samples.iter().map(|s| s.metric.as_str()).collect();
    let in_json: BTreeSet<String> = whole["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["metric"].as_str().map(String::from))
        .chain(
            model
                .throughput
                .curves
                .iter()
                .flat_map(|c| c.trials.iter().flat_map(|t| t.steps.iter().flat_map(|s| s.values.keys().cloned()))),
        )
        .collect();
    let in_csv: BTreeSet<&str> = rows.iter().map(|r| r[col("metric")]).collect();
    let mut missing: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &stored {
        for (format, present) in [
            ("report.json", in_json.contains(*m)),
            ("summary.csv or the steps", in_csv.contains(m) || in_json.contains(*m)),
            ("report.md", md_text.contains(&format!("### {m} (")) || md_text.contains(&format!(" {m} |"))),
            ("report.html", page.contains(&format!(">{m} (")) || page.contains(&format!("<th>{m}</th>"))),
        ] {
            if !present {
                missing.entry(format).or_default().push(m);
            }
        }
    }
    assert!(missing.is_empty(), "stored metrics missing from formats: {missing:?}");
    model
}

#[test]
fn every_format_renders_the_same_model_and_every_stored_metric() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native", "wasmtime-embedded"], &[Workload::HELLO, Workload::KV], dir.path());
    options.reps = 3;
    options.metrics.extend([Metric::Throughput, Metric::Scaling]);
    options.load.duration_ms = 150;
    options.load.search_steps = 3;
    options.scaling.max_concurrent = 2;
    options.scaling.max_instances = 3;
    let (_, samples) = run_campaign(options);
    let model = check_every_format(dir.path(), &samples);
    assert!(!model.throughput.rows.is_empty() && !model.throughput.curves.is_empty(), "throughput was measured");
    assert!(!model.scaling.curves.is_empty() && !model.scaling.density.is_empty(), "scaling was measured");
}

#[test]
fn firewall_deltas_are_the_same_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.reps = 3;
    options.firewall = vec!["off".into(), "rules-10".into()];
    let (_, samples) = run_campaign(options);
    let model = check_every_format(dir.path(), &samples);
    assert!(!model.firewall.deltas.is_empty() && !model.firewall.apply.is_empty(), "deltas were computed");
    let csv = std::fs::read_to_string(dir.path().join("firewall_deltas.csv")).unwrap();
    assert_eq!(csv.lines().count(), model.firewall.deltas.len() + 1, "one CSV row per delta");
}
