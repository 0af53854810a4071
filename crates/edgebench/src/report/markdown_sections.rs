//! report.md's throughput, scaling and data-quality sections: the same
//! parts of the model as report.html's, as tables.

use super::format::{self, config_under, count, kib_as_mib, md as esc, median_or_why, num, open_rate, short};
use super::model::{Config, Model};
use super::Cell;
use std::fmt::Write;

fn under(c: &Config) -> String {
    esc(&config_under(&c.runtime, &c.variant, &c.conditions()))
}

fn cell_under(c: &Cell) -> String {
    esc(&config_under(&c.runtime, &c.variant, &c.conditions()))
}

/// The search-step metrics in column order; others follow by name.
const STEP_COLUMNS: &[&str] = &[
    "open_loop_offered",
    "open_loop_achieved",
    "open_loop_p50",
    "open_loop_p99",
    "open_loop_service_p99",
    "open_loop_send_error_p99",
    "load_sent",
    "load_completed",
    "load_errors",
    "load_late",
    "load_dropped",
];

/// The columns of the search-step table: every metric the steps hold.
pub fn step_columns(m: &Model) -> Vec<String> {
    let mut names: Vec<String> = m
        .throughput
        .curves
        .iter()
        .flat_map(|c| c.trials.iter().flat_map(|t| t.steps.iter().flat_map(|s| s.values.keys().cloned())))
        .collect();
    names.sort_by_key(|n| (STEP_COLUMNS.iter().position(|c| c == n).unwrap_or(STEP_COLUMNS.len()), n.clone()));
    names.dedup();
    names
}

pub fn throughput(m: &Model) -> String {
    let t = &m.throughput;
    let mut out = String::from("\n## Throughput\n\n");
    if !t.measured {
        out.push_str("No throughput was measured in this campaign (`--metrics throughput`).\n");
        return out;
    }
    let objective = t.objective_ms.map(|x| format!("p99 < {x} ms")).unwrap_or("the objective".into());
    let connections = t.connections.map(|n| format!(", {n} connections")).unwrap_or_default();
    let _ = writeln!(
        out,
        "Closed loop: every connection sends its next request as soon as the answer arrives{connections}; its rate is \
         the most the configuration answered. Open loop: requests at a fixed arrival rate; the rate is the highest \
         found by bisection whose p99 (from each request's intended send time) met {objective} with nothing dropped. \
         Medians over trials with their 95% interval.\n"
    );
    let _ = writeln!(
        out,
        "| workload | runtime (variant) | trials | closed loop: max req/s | open loop: req/s meeting {objective} | CPU per request µs | closed loop p50 ms | closed loop p99 ms |\n|---|---|---|---|---|---|---|---|"
    );
    let get = |i: Option<usize>| i.map(|i| m.cell(i));
    for r in &t.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            esc(&r.config.workload),
            under(&r.config),
            r.trials,
            median_or_why(get(r.closed)),
            open_rate(get(r.open)),
            median_or_why(get(r.cpu_per_request)),
            median_or_why(get(r.closed_p50)),
            median_or_why(get(r.closed_p99)),
        );
    }
    let unmet: Vec<&Cell> = t.rows.iter().filter_map(|r| get(r.open)).filter(|c| c.failed > 0).collect();
    if !unmet.is_empty() {
        out.push_str("\nTrials without a rate, first reason each:\n\n");
        for c in unmet {
            let _ = writeln!(out, "- {} · {}: {}", esc(&c.workload), cell_under(c), esc(&short(&c.note, 200)));
        }
    }
    if t.curves.is_empty() {
        return out;
    }
    let columns = step_columns(m);
    let steps: usize = t.curves.iter().flat_map(|c| &c.trials).map(|t| t.steps.len()).sum();
    let _ = writeln!(
        out,
        "\n### Open-loop search steps\n\nEvery step of every trial's search (the plot in report.html), in offered-rate \
         order; `seq` is the order the bisection visited them. Saturated: fewer than 95% of the offered requests per \
         second completed.\n\n<details><summary>{steps} steps</summary>\n"
    );
    let _ = writeln!(
        out,
        "| workload | runtime (variant) | trial | seq | {} | saturated |\n|---|---|---|---|{}---|",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
    for curve in &t.curves {
        for trial in &curve.trials {
            for s in &trial.steps {
                let values: Vec<String> =
                    columns.iter().map(|c| s.values.get(c).map_or("–".into(), |v| count(*v))).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | #{} | {} | {} | {} |",
                    esc(&curve.config.workload),
                    under(&curve.config),
                    trial.repetition,
                    s.seq,
                    values.join(" | "),
                    if s.saturated { "yes" } else { "" }
                );
            }
        }
    }
    out.push_str("\n</details>\n");
    out
}

pub fn scaling(m: &Model) -> String {
    let s = &m.scaling;
    let mut out = String::from("\n## Scaling\n\n");
    if !s.measured {
        out.push_str("No scaling was measured in this campaign (`--metrics scaling`).\n");
        return out;
    }
    out.push_str(
        "### Concurrent cold starts\n\nK instances of one configuration launched at once from K threads (K = 1, 2, \
         4, … until the bound or the first failure). Cold start of each instance: launch → its first correct \
         response; median over every instance of every trial at that K. Creation rate: K ÷ the time until all K \
         answered, median over trials.\n\n| workload | runtime (variant) | K | cold start ms, median [95% CI] | slowest ms | instances ok (failed) | creation rate instances/s, median [95% CI] |\n|---|---|---|---|---|---|---|\n",
    );
    for start in s.curves.iter().filter(|c| c.metric == "scaling_start") {
        let rate = s.curves.iter().find(|c| c.metric == "scaling_rate" && c.config == start.config);
        for (k, i) in &start.points {
            let c = m.cell(*i);
            let rate = rate.and_then(|r| r.points.iter().find(|(rk, _)| rk == k)).map(|(_, i)| m.cell(*i));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} ({}) | {} |",
                esc(&start.config.workload),
                under(&start.config),
                count(*k),
                median_or_why(Some(c)),
                if c.n > 0 { num(c.max) } else { "–".into() },
                c.n,
                c.failed,
                median_or_why(rate)
            );
        }
    }
    let failed: Vec<&Cell> = s
        .curves
        .iter()
        .filter(|c| c.metric == "scaling_start")
        .flat_map(|c| c.points.iter().map(|(_, i)| m.cell(*i)))
        .filter(|c| c.failed > 0)
        .collect();
    if !failed.is_empty() {
        out.push_str("\nStarts that failed (larger K was not tried after a failure):\n\n");
        for c in failed {
            let _ = writeln!(
                out,
                "- {} · {} at {}: {} of {} instances failed; first: {}",
                esc(&c.workload),
                cell_under(c),
                esc(&c.phase),
                c.failed,
                c.failed + c.n,
                esc(&short(&c.note, 200))
            );
        }
    }
    out.push_str(
        "\n### Density\n\nInstances of one configuration added one at a time until one more broke a limit: the \
         memory budget (PSS of all instances together), the latency objective (p99 of the newest instance), a failed \
         start, or the instance bound. Mean PSS per instance: the instances' total PSS at the stop ÷ their count; the \
         single instance's PSS after boot is given for comparison (shared pages are split between instances).\n\n",
    );
    if s.density.is_empty() {
        out.push_str("No density experiment was stored.\n");
        return out;
    }
    out.push_str("| workload | runtime (variant) | trial | instances that fit | stopped by | mean PSS per instance MiB | PSS after boot, one instance, MiB (median) |\n|---|---|---|---|---|---|---|\n");
    for d in &s.density {
        let _ = writeln!(
            out,
            "| {} | {} | #{} | {} | {} | {} | {} |",
            esc(&d.config.workload),
            under(&d.config),
            d.repetition,
            d.instances.map_or("failed".into(), count),
            esc(&short(&d.stopped_by, 200)),
            kib_as_mib(d.pss_per_instance_kib),
            kib_as_mib(d.pss_after_boot_kib)
        );
    }
    out
}

pub fn quality(m: &Model) -> String {
    let q = &m.quality;
    let mut out =
        String::from("\n## Data quality\n\nStated, not hidden: nothing below was removed from any figure.\n\n");
    let _ = writeln!(out, "### Noise of the key cells\n\n{}\n", format::precision_text(q));
    if !q.noisy_key_cells.is_empty() {
        out.push_str("| metric | workload | runtime (variant) | trials | CV | noise | trials for ±5% |\n|---|---|---|---|---|---|---|\n");
        for c in q.noisy_key_cells.iter().map(|i| m.cell(*i)) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                esc(format!("{} {}", c.metric, c.phase).trim_end()),
                esc(&c.workload),
                cell_under(c),
                c.noise.map_or(0, |n| n.n),
                format::percent(c.cv),
                format::noise_text(c),
                format::trials_needed(c)
            );
        }
    }
    out.push_str("\n### Outliers (MAD)\n\n");
    if q.outliers.is_empty() {
        let _ = writeln!(
            out,
            "No per-trial value of any cell has |modified z| > 3.5 ({} trial values checked).",
            q.trial_values_checked
        );
    } else {
        let flagged: usize = q.outliers.iter().map(|o| o.repetitions.len()).sum();
        let _ = writeln!(
            out,
            "{flagged} of {} per-trial values, in {} cells, have |modified z| > 3.5: flagged, kept. A cell where more \
             than a fifth of the trials are flagged has a second mode rather than stray values.\n",
            q.trial_values_checked,
            q.outliers.len()
        );
        out.push_str("| metric | workload | runtime (variant) | flagged repetitions | cell median | largest deviation | |\n|---|---|---|---|---|---|---|\n");
        for o in &q.outliers {
            let c = m.cell(o.cell);
            let (value, unit) = super::findings::shown(o.center, &c.unit);
            let reps: Vec<String> = o.repetitions.iter().map(|r| format!("#{r}")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} {unit} | {:+.1}% | {} |",
                esc(format!("{} {}", c.metric, c.phase).trim_end()),
                esc(&c.workload),
                cell_under(c),
                reps.join(", "),
                num(value),
                o.largest_deviation * 100.0,
                if o.second_mode { "second mode" } else { "" }
            );
        }
    }
    out.push_str("\n### Warm-up check (first values against the rest)\n\n");
    if q.warmup_tested == 0 {
        out.push_str("Too few trials or values per trial for the check (needs 6 trials, or 10 values per trial).\n");
    } else if q.warmup_flagged.is_empty() {
        let _ =
            writeln!(out, "No cell of {} tested shows first values ≥ 5% off the rest at p < 0.01.", q.warmup_tested);
    } else {
        let _ = writeln!(
            out,
            "{} of {} tested cells flagged:\n\n| metric | workload | runtime (variant) | compared | first ÷ rest | p |\n|---|---|---|---|---|---|",
            q.warmup_flagged.len(),
            q.warmup_tested
        );
        for c in q.warmup_flagged.iter().map(|i| m.cell(*i)) {
            let f = c.first_k.as_ref().expect("flagged cells were tested");
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}× | {} |",
                esc(&c.metric),
                esc(&c.workload),
                cell_under(c),
                esc(&f.what),
                num(f.ratio),
                format::p_value(f.p)
            );
        }
    }
    out.push_str("\n### Failures\n\n");
    if q.failures.is_empty() {
        out.push_str("No measurement failed.\n");
    } else {
        out.push_str("Failed measurements are stored with `ok = 0` and their error; they are in no figure.\n\n");
        for f in &q.failures {
            let _ = writeln!(
                out,
                "- {} · {} {}: {} failed; first: {}",
                esc(&f.config.workload),
                under(&f.config),
                esc(&f.metric),
                f.count,
                esc(&short(&f.first_error, 300))
            );
        }
    }
    if q.superseded + q.not_applicable > 0 {
        let _ = writeln!(
            out,
            "\nAlso kept and in no figure: {} samples of interrupted trials that ran again (`superseded`), {} \
             measurements a runtime cannot make (`not applicable`).",
            q.superseded, q.not_applicable
        );
    }
    out
}
