//! report.html's data-quality, throughput, scaling and firewall sections:
//! the model's parts as report.md shows them, with plots.

use super::format::{self, config, count, html as esc, kib_as_mib, median_or_why, num, open_rate};
use super::html::{color_of, config_colors, fixed_figure, no_data, profile_config, td, td_num, xy_figure};
use super::model::{Config, Model};
use super::{plots, Cell};
use std::fmt::Write;

fn under(c: &Config) -> String {
    profile_config(&c.runtime, &c.variant, &c.conditions())
}

fn cell_under(c: &Cell) -> String {
    profile_config(&c.runtime, &c.variant, &c.conditions())
}

/// A section's opening; `Err`: the whole section, saying why it has no data.
fn open(id: &str, title: &str, measured: bool, why: &str) -> Result<String, String> {
    let head = format!("<section id=\"{id}\"><h2>{title}</h2>\n");
    if measured {
        Ok(head)
    } else {
        Err(format!("{head}{}</section>\n", no_data(why)))
    }
}

pub fn quality(out: &mut String, m: &Model) {
    let q = &m.quality;
    out.push_str("<section id=\"quality\"><h2>Data quality</h2>\n<p class=\"def\">Stated, not hidden: nothing below was removed from any figure.</p>\n<h3>Noise of the key cells</h3>\n");
    let _ = writeln!(out, "<p>{}</p>", esc(&format::precision_text(q)));
    if !q.noisy_key_cells.is_empty() {
        let _ = writeln!(out, "<details><summary>The other {}, noisiest first</summary>", q.noisy_key_cells.len());
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>trials</th><th>CV</th><th>noise</th><th>trials for ±5%</th></tr></thead><tbody>\n");
        for c in q.noisy_key_cells.iter().map(|i| m.cell(*i)) {
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}{}</tr>",
                td(format!("{} {}", c.metric, c.phase).trim_end()),
                td(&c.workload),
                td(&cell_under(c)),
                td_num(&c.noise.map_or(0, |n| n.n).to_string()),
                td_num(&format::percent(c.cv)),
                td_num(&format::noise_text(c)),
                td_num(&format::trials_needed(c))
            );
        }
        out.push_str("</tbody></table></div></details>\n");
    }
    outliers(out, m);
    out.push_str("<h3>Warm-up check (first values against the rest)</h3>\n");
    if q.warmup_tested == 0 {
        out.push_str(&no_data(
            "too few trials or values per trial for the check (needs 6 trials, or 10 values per trial)",
        ));
    } else if q.warmup_flagged.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"ok\">No cell of {} tested shows first values ≥ 5% off the rest at p &lt; 0.01.</p>",
            q.warmup_tested
        );
    } else {
        let _ = writeln!(out, "<p>{} of {} tested cells flagged:</p>", q.warmup_flagged.len(), q.warmup_tested);
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>compared</th><th>first ÷ rest</th><th>p</th></tr></thead><tbody>\n");
        for c in q.warmup_flagged.iter().map(|i| m.cell(*i)) {
            let f = c.first_k.as_ref().expect("flagged cells were tested");
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}</tr>",
                td(&c.metric),
                td(&c.workload),
                td(&cell_under(c)),
                td(&f.what),
                td_num(&format!("{}×", num(f.ratio))),
                td_num(&format::p_value(f.p))
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    failures(out, m);
    out.push_str("</section>\n");
}

fn outliers(out: &mut String, m: &Model) {
    let q = &m.quality;
    out.push_str("<h3>Outliers (MAD)</h3>\n");
    if q.outliers.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"ok\">No per-trial value of any cell has |modified z| &gt; 3.5 ({} trial values checked).</p>",
            q.trial_values_checked
        );
        return;
    }
    let flagged: usize = q.outliers.iter().map(|o| o.repetitions.len()).sum();
    let _ = writeln!(
        out,
        "<details><summary>{flagged} of {} per-trial values, in {} cells, have |modified z| &gt; 3.5: flagged, kept</summary>",
        q.trial_values_checked,
        q.outliers.len()
    );
    out.push_str("<p class=\"def\">A cell where more than a fifth of the trials are flagged has a second mode rather than stray values. The deviation column shows how far the flagged values lie from the cell's median: a tiny MAD can flag differences of no practical weight.</p>\n");
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>flagged repetitions</th><th>cell median</th><th>largest deviation</th><th></th></tr></thead><tbody>\n");
    for o in &q.outliers {
        let c = m.cell(o.cell);
        let reps: Vec<String> = o.repetitions.iter().map(|r| format!("#{r}")).collect();
        let (value, unit) = super::findings::shown(o.center, &c.unit);
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}</tr>",
            td(format!("{} {}", c.metric, c.phase).trim_end()),
            td(&c.workload),
            td(&cell_under(c)),
            td(&reps.join(", ")),
            td_num(&format!("{} {unit}", num(value))),
            td_num(&format!("{:+.1}%", o.largest_deviation * 100.0)),
            td(if o.second_mode { "second mode" } else { "" })
        );
    }
    out.push_str("</tbody></table></div></details>\n");
}

fn failures(out: &mut String, m: &Model) {
    let q = &m.quality;
    out.push_str("<h3>Failures</h3>\n");
    if q.failures.is_empty() {
        out.push_str("<p class=\"ok\">No measurement failed.</p>\n");
    } else {
        out.push_str(
            "<p>Failed measurements are stored with <code>ok = 0</code> and their error, and are in no figure.</p><ul>\n",
        );
        for f in &q.failures {
            let _ = writeln!(
                out,
                "<li>{} · {} {}: {} failed; first: <code>{}</code></li>",
                esc(&f.config.workload),
                esc(&under(&f.config)),
                esc(&f.metric),
                f.count,
                esc(&format::short(&f.first_error, 300))
            );
        }
        out.push_str("</ul>\n");
    }
    if q.superseded + q.not_applicable > 0 {
        let _ = writeln!(
            out,
            "<p>Also kept and in no figure: {} samples of interrupted trials that ran again (<code>superseded</code>), {} measurements a runtime cannot make (<code>not applicable</code>).</p>",
            q.superseded, q.not_applicable
        );
    }
}

/// Throughput: the closed-loop maximum, the open-loop rate under the latency
/// objective, and the open-loop search steps as curves and as a table.
pub fn throughput(m: &Model) -> String {
    let t = &m.throughput;
    let why = "this campaign has no throughput, open_loop_p99 or open_loop_achieved samples.";
    let mut out = match open("throughput", "Throughput", t.measured, why) {
        Ok(head) => head,
        Err(whole) => return whole,
    };
    let objective = t.objective_ms.map(|x| format!("p99 &lt; {x} ms")).unwrap_or("the objective".into());
    let connections = t.connections.map(|n| format!(", {n} connections")).unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"def\">Closed loop: every connection sends its next request as soon as the answer arrives{connections}; its rate is the most the configuration answered. Open loop: requests at a fixed arrival rate; the rate is the highest found by bisection whose p99 (from each request's intended send time) met {objective} with nothing dropped. Medians over trials with their 95% interval.</p>"
    );
    if !t.rows.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>trials</th><th>closed loop: max req/s</th><th>open loop: req/s meeting {objective}</th><th>CPU per request µs</th><th>closed loop p50 ms</th><th>closed loop p99 ms</th></tr></thead><tbody>"
        );
        let get = |i: Option<usize>| i.map(|i| m.cell(i));
        for r in &t.rows {
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}{}{}</tr>",
                td(&r.config.workload),
                td(&under(&r.config)),
                td_num(&r.trials.to_string()),
                td_num(&median_or_why(get(r.closed))),
                td_num(&open_rate(get(r.open))),
                td_num(&median_or_why(get(r.cpu_per_request))),
                td_num(&median_or_why(get(r.closed_p50))),
                td_num(&median_or_why(get(r.closed_p99))),
            );
        }
        out.push_str("</tbody></table></div>\n");
        let reasons: Vec<String> = t
            .rows
            .iter()
            .filter_map(|r| get(r.open))
            .filter(|c| c.failed > 0)
            .map(|c| {
                format!(
                    "<li>{} · {} ({}): <code>{}</code></li>",
                    esc(&c.workload),
                    esc(&cell_under(c)),
                    esc(&c.phase),
                    esc(&format::short(&c.note, 200))
                )
            })
            .collect();
        if !reasons.is_empty() {
            let _ =
                writeln!(out, "<p>Trials without a rate, first reason each:</p><ul>\n{}\n</ul>", reasons.join("\n"));
        }
    }

    out.push_str("<h3>Latency against offered rate</h3>\n");
    if t.curves.is_empty() {
        out.push_str(&no_data("no open-loop search step succeeded (open_loop_p99)."));
        out.push_str("</section>\n");
        return out;
    }
    let colors = config_colors(&m.cells);
    let hline = t.objective_ms.map(|y| plots::HLine { y, label: format!("objective: p99 < {y} ms") });
    out.push_str("<div class=\"plots\">\n");
    for curve in &t.curves {
        let series: Vec<plots::Series> = curve
            .trials
            .iter()
            .enumerate()
            .map(|(i, trial)| {
                let points: Vec<_> =
                    trial.steps.iter().filter_map(|s| Some((s.offered, s.p99_ms()?, s.saturated))).collect();
                plots::Series {
                    label: (i == 0).then(|| format!("{} trials", curve.trials.len())),
                    color: color_of(&colors, &curve.config),
                    mark: plots::Mark::Line,
                    points: points.iter().map(|p| (p.0, p.1)).collect(),
                    hollow: points.iter().map(|p| p.2).collect(),
                }
            })
            .collect();
        let title = format!("{} · {}", curve.config.workload, under(&curve.config));
        out.push_str(&xy_figure(
            plots::xy(&title, "offered rate, req/s", "p99 latency, ms", &series, hline.as_ref(), 1.0),
            &series,
            "Every step of the open-loop search, one line per trial (steps in rate order; the search visits them by bisection). Hollow points: fewer than 95% of the offered requests per second completed. Dashed line: the objective.",
        ));
    }
    out.push_str("</div>\n");
    let columns = super::markdown_sections::step_columns(m);
    let steps: usize = t.curves.iter().flat_map(|c| &c.trials).map(|t| t.steps.len()).sum();
    let _ = writeln!(out, "<details><summary>Every step of every trial, as a table ({steps} steps)</summary>");
    out.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>workload</th><th>runtime (variant)</th><th>trial</th><th>seq</th>",
    );
    for c in &columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("<th>saturated</th></tr></thead><tbody>\n");
    for curve in &t.curves {
        for trial in &curve.trials {
            for s in &trial.steps {
                let _ = write!(
                    out,
                    "<tr>{}{}{}{}",
                    td(&curve.config.workload),
                    td(&under(&curve.config)),
                    td_num(&format!("#{}", trial.repetition)),
                    td_num(&s.seq.to_string())
                );
                for c in &columns {
                    out.push_str(&td_num(&s.values.get(c).map_or("–".into(), |v| count(*v))));
                }
                let _ = writeln!(out, "{}</tr>", td(if s.saturated { "yes" } else { "" }));
            }
        }
    }
    out.push_str("</tbody></table></div></details>\n</section>\n");
    out
}

/// Scaling: concurrent cold starts and creation rate against K, and density.
pub fn scaling(m: &Model) -> String {
    let s = &m.scaling;
    let why = "this campaign has no scaling_start, scaling_rate or density samples.";
    let mut out = match open("scaling", "Scaling", s.measured, why) {
        Ok(head) => head,
        Err(whole) => return whole,
    };
    let colors = config_colors(&m.cells);
    out.push_str("<h3>Concurrent cold starts</h3>\n<p class=\"def\">K instances of one configuration launched at once from K threads (K = 1, 2, 4, … until the bound or the first failure). Cold start of each instance: launch → its first correct response. Creation rate: K ÷ the time until all K answered.</p>\n");
    if s.curves.is_empty() {
        out.push_str(&no_data("no scaling_start or scaling_rate samples."));
    } else {
        out.push_str("<div class=\"plots\">\n");
        let mut workloads: Vec<&str> = s.curves.iter().map(|c| c.config.workload.as_str()).collect();
        workloads.dedup();
        for w in workloads {
            let mut start_series = Vec::new();
            let mut rate_series = Vec::new();
            for curve in s.curves.iter().filter(|c| c.config.workload == w) {
                let color = color_of(&colors, &curve.config);
                let label = under(&curve.config);
                let ok: Vec<(f64, &Cell)> =
                    curve.points.iter().map(|(k, i)| (*k, m.cell(*i))).filter(|(_, c)| c.n > 0).collect();
                let line = |label: Option<String>, mark, points: Vec<(f64, f64)>| plots::Series {
                    label,
                    color,
                    mark,
                    points,
                    hollow: Vec::new(),
                };
                let series = if curve.metric == "scaling_start" { &mut start_series } else { &mut rate_series };
                series.push(line(
                    None,
                    plots::Mark::Dots,
                    ok.iter().flat_map(|(k, c)| c.values.iter().map(move |v| (*k, *v))).collect(),
                ));
                series.push(line(
                    Some(format!("{label}: median")),
                    plots::Mark::Line,
                    ok.iter().map(|(k, c)| (*k, c.median)).collect(),
                ));
                if curve.metric == "scaling_start" {
                    series.push(line(
                        Some(format!("{label}: max")),
                        plots::Mark::Dashed,
                        ok.iter().map(|(k, c)| (*k, c.max)).collect(),
                    ));
                }
            }
            if start_series.iter().any(|s| !s.points.is_empty()) {
                out.push_str(&xy_figure(
                    plots::xy(&format!("{w}: cold start with K at once"), "K (instances launched at once)", "cold start, ms", &start_series, None, 20.0),
                    &start_series,
                    "Solid: median over every instance of every trial at that K; dashed: the slowest instance; pale dots: every instance.",
                ));
            }
            if rate_series.iter().any(|s| !s.points.is_empty()) {
                out.push_str(&xy_figure(
                    plots::xy(
                        &format!("{w}: creation rate"),
                        "K (instances launched at once)",
                        "instances/s",
                        &rate_series,
                        None,
                        20.0,
                    ),
                    &rate_series,
                    "Solid: median over trials; pale dots: each trial. K ÷ time until all K instances answered.",
                ));
            }
        }
        out.push_str("</div>\n");
        let failed: Vec<String> = s
            .curves
            .iter()
            .filter(|c| c.metric == "scaling_start")
            .flat_map(|c| c.points.iter().map(|(_, i)| m.cell(*i)))
            .filter(|c| c.failed > 0)
            .map(|c| {
                format!(
                    "<li>{} · {} at {}: {} of {} instances failed; first: <code>{}</code></li>",
                    esc(&c.workload),
                    esc(&cell_under(c)),
                    esc(&c.phase),
                    c.failed,
                    c.failed + c.n,
                    esc(&format::short(&c.note, 200))
                )
            })
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                out,
                "<p>Starts that failed (not in the curves; larger K was not tried after a failure):</p><ul>\n{}\n</ul>",
                failed.join("\n")
            );
        }
    }

    out.push_str("<h3>Density</h3>\n<p class=\"def\">Instances of one configuration added one at a time until one more broke a limit: the memory budget (PSS of all instances together), the latency objective (p99 of the newest instance), a failed start, or the instance bound (no limit reached). Mean PSS per instance: the instances' total PSS at the stop ÷ their count. The single-instance PSS after boot (the memory plot above) is given for comparison: with several instances, pages they share are split between them, so the per-instance figure can be the smaller one.</p>\n");
    if s.density.is_empty() {
        out.push_str(&no_data("no density samples."));
    } else {
        out.push_str("<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>trial</th><th>instances that fit</th><th>stopped by</th><th>mean PSS per instance, MiB</th><th>PSS after boot, one instance, MiB (median)</th></tr></thead><tbody>\n");
        for d in &s.density {
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}{}</tr>",
                td(&d.config.workload),
                td(&under(&d.config)),
                td_num(&format!("#{}", d.repetition)),
                td_num(&d.instances.map_or("failed".into(), count)),
                td(&format::short(&d.stopped_by, 200)),
                td_num(&kib_as_mib(d.pss_per_instance_kib)),
                td_num(&kib_as_mib(d.pss_after_boot_kib))
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");
    out
}

/// Firewall: each profile's median against `off` for the same
/// configuration (the deltas of report.md), and the time to apply each profile.
pub fn firewall(m: &Model) -> String {
    let f = &m.firewall;
    let why = "every sample of this campaign was taken with firewall = off; a campaign with firewall rules is needed for the deltas.";
    let mut out = match open("firewall", "Firewall deltas", f.measured, why) {
        Ok(head) => head,
        Err(whole) => return whole,
    };
    out.push_str("<p class=\"def\">The trial's firewall profile is applied just before its cold start, every trial, trials of all profiles interleaved. Δ: the profile's median minus <code>off</code>'s median for the same runtime, variant and workload, with a 95% interval from a bootstrap over trials (1000 resamples, fixed seed), so it includes the variation between trials; with few trials the intervals are wide. Red: the interval lies above zero (slower); green: below. The profiles' rules and the host's ruleset check are in report.md.</p>\n");
    if !f.apply.is_empty() {
        out.push_str("<h3>Time to apply each profile</h3>\n<table><thead><tr><th>profile</th><th>apply ms, median [95% interval]</th><th>n</th></tr></thead><tbody>\n");
        for a in &f.apply {
            let _ = writeln!(
                out,
                "<tr>{}{}{}</tr>",
                td(&a.profile),
                td_num(&format!("{} {}", num(a.median), format::interval(a.median_ci.0, a.median_ci.1))),
                td_num(&a.n.to_string())
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h3>Difference to off</h3>\n");
    if f.deltas.is_empty() {
        out.push_str(&no_data("no configuration was measured successfully both with off and with another profile."));
        out.push_str("</section>\n");
        return out;
    }
    if f.deltas.iter().any(|d| super::firewall::CHART_METRICS.contains(&d.metric.as_str()) && d.off_median > 0.0) {
        out.push_str(&fixed_figure(
            super::firewall::chart_svg(&f.deltas),
            "Δ to off in % of off's median: the point is the difference of medians, the bar its 95% interval; the axis of each metric is symmetric about zero.",
        ));
    }
    out.push_str(&delta_table(&f.deltas, "off"));
    out.push_str("</section>\n");
    out
}

/// The table of Δs to `reference` (a firewall profile's `off`, an edge profile's `none`).
fn delta_table(deltas: &[super::firewall::Delta], reference: &str) -> String {
    let mut out = String::new();
    let _ = write!(out, "<div class=\"scroll\"><table>\n<thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>profile</th><th>n</th><th>median [95% interval]</th><th>{reference} median</th><th>Δ [95% interval]</th><th>Δ %</th></tr></thead><tbody>\n");
    for d in deltas {
        let metric = if d.phase.is_empty() { d.metric.clone() } else { format!("{} ({})", d.metric, d.phase) };
        let pct = |x: f64| if d.off_median != 0.0 { 100.0 * x / d.off_median } else { f64::NAN };
        // Δ with as many decimals as off's median is shown with.
        let decimals = match d.off_median.abs() {
            m if m >= 100.0 => 0,
            m if m >= 10.0 => 1,
            m if m >= 1.0 => 2,
            _ => 3,
        };
        let signed = |x: f64| {
            if !x.is_finite() {
                "–".to_string()
            } else if d.off_median.abs() < 0.01 {
                format!("{}{}", if x > 0.0 { "+" } else { "" }, num(x))
            } else {
                format!("{x:+.decimals$}")
            }
        };
        let class = if d.delta_ci.0 > 0.0 {
            " class=\"flag\""
        } else if d.delta_ci.1 < 0.0 {
            " class=\"ok\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}<td class=\"num\"><span{class}>{}</span></td>{}</tr>",
            td(format!("{metric} {}", d.unit).trim_end()),
            td(&d.workload),
            td(&config(&d.runtime, &d.variant)),
            td(&d.profile),
            td_num(&d.n.to_string()),
            td_num(&format!("{} {}", num(d.median), format::interval(d.median_ci.0, d.median_ci.1))),
            td_num(&num(d.off_median)),
            esc(&format!("{} [{}, {}]", signed(d.delta), signed(d.delta_ci.0), signed(d.delta_ci.1))),
            td_num(&format!("{:+.1}%", pct(d.delta))),
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The edge profiles' part: what each set, the trials that failed under one,
/// and every metric's Δ to `none` (report.md has the full method).
pub fn edge(m: &Model) -> String {
    let e = &m.edge;
    if !e.measured {
        return String::new();
    }
    let mut out = String::from("<section id=\"edge\"><h2>Under edge conditions</h2>\n");
    out.push_str("<p class=\"def\">Each trial ran under one edge profile (a CPU quota or a memory cap as cgroup limits, or an emulated network link), interleaved with the others. Δ: the profile's median minus <code>none</code>'s median for the same runtime, variant, workload and firewall profile, with a 95% interval from a bootstrap over trials. How each profile is applied, checked and read back is in report.md (\"Under edge conditions\").</p>\n");
    if !e.failures.is_empty() {
        out.push_str("<h3>Trials that failed under a profile</h3>\n<ul>\n");
        for (profile, n, why) in &e.failures {
            let _ = writeln!(out, "<li><code>{}</code>: {n} — {}</li>", esc(profile), esc(why));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h3>Difference to none</h3>\n");
    if e.deltas.is_empty() {
        out.push_str(&no_data("no configuration was measured successfully both under none and under another profile."));
    } else {
        out.push_str(&delta_table(&e.deltas, "none"));
    }
    out.push_str("</section>\n");
    out
}
