//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! nothing fetched), every string from the campaign escaped.

use super::findings::{self, shown, Summary};
use super::format::{self, config, html as esc, num};
use super::markdown::METRICS;
use super::plots::{self, Curve, Row};
use super::significance::magnitude;
use super::stats::NoiseLevel;
use super::Cell;
use crate::runtime::BASELINE;
use crate::store::{CampaignRow, RuntimeRow, Sample};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A clearly marked empty section or plot.
pub fn no_data(why: &str) -> String {
    format!("<p class=\"no-data\">No data: {}</p>", esc(why))
}

pub const STYLE: &str = r#"
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --band: #f5f6f8; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 40px 0 8px; padding-top: 8px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 24px 0 6px; }
p.meta, p.def, .muted { color: var(--muted); }
nav { margin: 12px 0 0; font-size: 0.92rem; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
code { font: 0.9em ui-monospace, "DejaVu Sans Mono", monospace; background: var(--band); padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9rem; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: #fafbfc; }
.scroll { overflow-x: auto; }
.needs { display: grid; grid-template-columns: minmax(220px, 300px) 1fr; gap: 8px 20px; margin: 12px 0; }
.needs .need { font-weight: 600; }
.needs .answer { font-weight: 600; color: var(--accent); }
.caveats li { margin: 3px 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px; }
.no-data { border: 1px dashed #b8bcc4; border-radius: 6px; padding: 12px 16px; color: var(--muted); background: var(--band); }
.flag { color: #b3261e; font-weight: 600; }
.ok { color: #1b7f3b; }
.sig { font-weight: 600; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
figure.fixed { max-width: 800px; }
figure.fixed svg { width: auto; max-width: 100%; }
.legend { font-size: 0.85rem; margin: 2px 0 0 8px; }
.legend .key { margin-right: 14px; white-space: nowrap; }
footer { margin-top: 48px; font-size: 0.85rem; color: var(--muted); }
"#;

pub struct Page<'a> {
    pub campaign: &'a CampaignRow,
    pub runtimes: &'a [RuntimeRow],
    pub cells: &'a [Cell],
    pub samples: &'a [Sample],
    pub summary: &'a Summary,
    pub methods: &'a [String],
}

pub fn render(p: &Page) -> String {
    let c = p.campaign;
    let env = &c.environment;
    let mut out = String::new();
    let title = format!("edgebench report: campaign {}", c.id);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let duration = c.finished_ns.map(|f| format!(", {:.1} s", (f - c.started_ns) as f64 / 1e9)).unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"meta\">Status <strong>{}</strong>; started {} UTC{}; {} × {}, kernel {}, {}; virtualisation <strong>{}</strong>; edgebench commit <code>{}</code>.</p>",
        esc(&c.status),
        chrono::DateTime::from_timestamp_nanos(c.started_ns).format("%Y-%m-%d %H:%M:%S"),
        duration,
        esc(&env["logical_cpus"].to_string()),
        esc(env["cpu_model"].as_str().unwrap_or("unknown CPU")),
        esc(env["kernel"].as_str().unwrap_or("unknown")),
        esc(env["os"].as_str().unwrap_or("")),
        esc(env["virtualization"]["mode"].as_str().unwrap_or("unknown")),
        esc(env["edgebench_commit"].as_str().unwrap_or("unknown")),
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#key\">Key figures</a><a href=\"#plots\">Plots</a><a href=\"#metrics\">All metrics</a><a href=\"#quality\">Data quality</a><a href=\"#throughput\">Throughput</a><a href=\"#scaling\">Scaling</a><a href=\"#firewall\">Firewall</a><a href=\"#methods\">Methods</a></nav>\n");
    summary_section(&mut out, p.summary);
    key_figures(&mut out, p.cells);
    plots_section(&mut out, p.cells);
    metric_tables(&mut out, p.cells);
    quality_section(&mut out, p.cells, p.samples);
    out.push_str(&throughput_section(p.cells, p.samples));
    out.push_str(&scaling_section(p.cells, p.samples));
    out.push_str(&firewall_section(p.cells, p.samples));
    methods_section(&mut out, p);
    let _ = writeln!(
        out,
        "<footer>Generated by edgebench {} from <code>results.sqlite</code>: every figure above is computed from the raw samples stored there.</footer>\n</main>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn summary_section(out: &mut String, s: &Summary) {
    out.push_str("<section id=\"summary\"><h2>Summary: which runtime for which need</h2>\n");
    if s.findings.is_empty() {
        out.push_str(&no_data("no successful measurement in this campaign"));
    } else {
        out.push_str("<div class=\"needs\">\n");
        for f in &s.findings {
            let answer =
                f.answer.as_deref().map(|a| format!("<span class=\"answer\">{}</span>: ", esc(a))).unwrap_or_default();
            let _ = writeln!(out, "<div class=\"need\">{}</div><div>{answer}{}</div>", esc(f.need), esc(&f.detail));
        }
        out.push_str("</div>\n");
    }
    out.push_str("<h3>Caveats</h3>\n<ul class=\"caveats\">\n");
    for c in &s.caveats {
        let _ = writeln!(out, "<li>{}</li>", super::methods::inline_html(c));
    }
    out.push_str("</ul></section>\n");
}

fn td(s: &str) -> String {
    format!("<td>{}</td>", esc(s))
}

fn td_num(s: &str) -> String {
    format!("<td class=\"num\">{}</td>", esc(s))
}

/// Every workload × runtime × variant × firewall profile, in report order.
fn configs(cells: &[Cell]) -> Vec<Config4<'_>> {
    let mut keys: Vec<Config4> = cells.iter().map(config4_of).collect();
    sort_configs(&mut keys);
    keys
}

fn find<'a>(cells: &'a [Cell], key: Config4, metric: &str, phase: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| config4_of(c) == key && c.metric == metric && c.phase == phase)
}

fn key_figures(out: &mut String, cells: &[Cell]) {
    out.push_str("<section id=\"key\"><h2>Key figures</h2>\n<p class=\"def\">Medians with their 95% interval; ratios to native with a bootstrap 95% interval. Memory is the PSS after boot.</p>\n<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>cold start ms</th><th>× native</th><th>warm start ms</th><th>keep-alive p50 / p99 ms</th><th>new-conn p50 ms</th><th>memory MiB</th></tr></thead><tbody>\n");
    for key in configs(cells) {
        let get = |m: &str, p: &str| find(cells, key, m, p).filter(|c| c.n > 0);
        let cold = find(cells, key, "cold_start", "");
        let (cold_s, ratio_s) = match cold {
            Some(c) if c.n > 0 => (format::median_with_ci(c), format::ratio(c)),
            Some(c) => (format!("failed ({})", c.failed), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let warm = match find(cells, key, "warm_start", "") {
            Some(c) if c.n > 0 => num(c.median),
            Some(c) if c.note.starts_with("not applicable") => "n/a".into(),
            Some(_) => "failed".into(),
            None => "–".into(),
        };
        let ka =
            get("latency_keepalive", "").map(|c| format!("{} / {}", num(c.median), num(c.p99))).unwrap_or("–".into());
        let nc = get("latency_newconn", "").map(|c| num(c.median)).unwrap_or("–".into());
        let mem = get("memory_pss", "after_boot").map(|c| num(c.median / 1024.0)).unwrap_or("–".into());
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}{}</tr>",
            td(key.0),
            td(&profile_config(key.1, key.2, key.3)),
            td_num(&cold_s),
            td_num(&ratio_s),
            td_num(&warm),
            td_num(&ka),
            td_num(&nc),
            td_num(&mem)
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

fn figure(svg: String, caption: &str) -> String {
    format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", esc(caption))
}

/// A figure drawn at its own size (text in the SVG at its set size).
fn fixed_figure(svg: String, caption: &str) -> String {
    format!("<figure class=\"fixed\">{svg}<figcaption>{}</figcaption></figure>\n", esc(caption))
}

/// A figure of an x–y plot, its legend between plot and caption.
fn xy_figure(svg: String, series: &[plots::Series], caption: &str) -> String {
    format!("<figure>{svg}{}<figcaption>{}</figcaption></figure>\n", plots::legend_html(series), esc(caption))
}

fn plots_section(out: &mut String, cells: &[Cell]) {
    out.push_str("<section id=\"plots\"><h2>Plots</h2>\n");
    let colors = config_colors(cells);
    let color = |c: &Cell| color_of(&colors, config4_of(c));
    let rows_of = |metric: &str, phase: &str| -> Vec<&Cell> {
        let mut v: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric && c.phase == phase && c.n > 0).collect();
        v.sort_by(|a, b| {
            (&a.workload, a.runtime != BASELINE, &a.runtime, &a.variant, super::firewall::profile_order(&a.firewall))
                .cmp(&(
                    &b.workload,
                    b.runtime != BASELINE,
                    &b.runtime,
                    &b.variant,
                    super::firewall::profile_order(&b.firewall),
                ))
        });
        v
    };
    let row_label = |c: &Cell| format!("{} · {}", c.workload, profile_config(&c.runtime, &c.variant, &c.firewall));

    out.push_str("<h3>Cold start</h3>\n");
    let cold = rows_of("cold_start", "");
    if cold.is_empty() {
        out.push_str(&no_data("no successful cold start"));
    } else {
        let rows: Vec<Row> =
            cold.iter().map(|c| Row { label: row_label(c), color: color(c), values: c.trial_values.clone() }).collect();
        out.push_str(&figure(
            plots::strip("Cold start: launch → first correct response", "ms", &rows),
            "One point per trial; the shaded box spans the quartiles, the bar marks the median. A log scale is used when values span more than a factor of 20.",
        ));
    }

    out.push_str("<h3>Request latency</h3>\n<div class=\"plots\">\n");
    let mut any = false;
    for (metric, name) in
        [("latency_keepalive", "kept-alive connection"), ("latency_newconn", "new connection per request")]
    {
        let mut workloads: Vec<&str> = rows_of(metric, "").iter().map(|c| c.workload.as_str()).collect();
        workloads.dedup();
        for w in workloads {
            any = true;
            let curves: Vec<Curve> = rows_of(metric, "")
                .into_iter()
                .filter(|c| c.workload == w)
                .map(|c| Curve {
                    label: profile_config(&c.runtime, &c.variant, &c.firewall),
                    color: color(c),
                    values: c.values.clone(),
                })
                .collect();
            out.push_str(&figure(
                plots::ecdf(&format!("{w}: latency, {name}"), "ms", &curves),
                "Empirical CDF of every request of every trial; curves further left are faster, the top of each curve is its tail.",
            ));
        }
    }
    out.push_str("</div>\n");
    if !any {
        out.push_str(&no_data("no latency samples"));
    }

    out.push_str("<h3>Memory</h3>\n");
    let mem = rows_of("memory_pss", "after_boot");
    if mem.is_empty() {
        out.push_str(&no_data("no memory samples"));
    } else {
        let rows: Vec<Row> = mem
            .iter()
            .map(|c| Row {
                label: row_label(c),
                color: color(c),
                values: [c.median, c.median_ci.0, c.median_ci.1].map(|v| shown(v, &c.unit).0).to_vec(),
            })
            .collect();
        out.push_str(&figure(
            plots::bars("Memory after boot (PSS of every process of the instance)", "MiB", &rows),
            "Bars: median over trials; whiskers: its 95% interval (order statistics; the whole range with fewer than 6 trials).",
        ));
    }
    out.push_str("</section>\n");
}

fn n_text(c: &Cell) -> String {
    let trials = if c.pooled() { format!(" ({} trials)", c.trials.len()) } else { String::new() };
    let failed = if c.failed > 0 { format!(", {} failed", c.failed) } else { String::new() };
    format!("{}{trials}{failed}", c.n)
}

fn versus(c: &Cell) -> (String, String) {
    match c.vs_baseline {
        Some(v) => (
            format!("{}{}", format::p_value(v.p_holm), if v.significant() { " *" } else { "" }),
            format!("{:+.2} {}", v.cliffs_delta, magnitude(v.cliffs_delta)),
        ),
        None => ("–".into(), "–".into()),
    }
}

const MAIN_METRICS: &[&str] =
    &["cold_start", "warm_start", "latency_keepalive", "latency_newconn", "memory_pss", "cpu_time"];

fn metric_tables(out: &mut String, cells: &[Cell]) {
    out.push_str("<section id=\"metrics\"><h2>All metrics</h2>\n<p class=\"def\">n: successful samples (trials, where a trial gives several). p (Holm): Mann–Whitney against native on per-trial values, Holm-adjusted over the whole report; * marks p &lt; 0.05. δ: Cliff's δ against native (positive: larger than native). Noise: half-width of the 95% interval of the per-trial median; trials for ±5%: about how many trials would narrow it to ±5% (beyond 10× the trials, a quieter host or a fix for a bimodal start helps more than more trials).</p>\n");
    for (metric, definition) in super::markdown::metrics_in_order(cells) {
        let mut rows: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric).collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| {
            (&a.workload, &a.phase, a.runtime != BASELINE, &a.runtime, &a.variant).cmp(&(
                &b.workload,
                &b.phase,
                b.runtime != BASELINE,
                &b.runtime,
                &b.variant,
            ))
        });
        let unit = rows.iter().find(|c| !c.unit.is_empty()).map(|c| c.unit.as_str()).unwrap_or("");
        let main = MAIN_METRICS.contains(&metric);
        if !main {
            let _ = writeln!(out, "<details><summary>{} ({})</summary>", esc(metric), esc(unit));
        } else {
            let _ = writeln!(out, "<h3 id=\"m-{}\">{} ({})</h3>", esc(metric), esc(metric), esc(unit));
        }
        let _ = writeln!(out, "<p class=\"def\">{}</p>", super::methods::inline_html(definition));
        let phases = rows.iter().any(|c| !c.phase.is_empty());
        let phase_th = if phases { "<th>phase</th>" } else { "" };
        let _ = writeln!(out, "<div class=\"scroll\"><table><thead><tr><th>workload</th><th>runtime (variant)</th>{phase_th}<th>n</th><th>median [95% CI]</th><th>p99 [95% CI]</th><th>× native [95% CI]</th><th>p (Holm)</th><th>Cliff's δ</th><th>noise</th><th>trials for ±5%</th></tr></thead><tbody>");
        for c in rows {
            let phase = if phases { td(&c.phase) } else { String::new() };
            if c.n == 0 {
                let _ = writeln!(
                    out,
                    "<tr>{}{}{phase}{}<td colspan=\"7\" class=\"muted\">{}</td></tr>",
                    td(&c.workload),
                    td(&profile_config(&c.runtime, &c.variant, &c.firewall)),
                    td_num(&format!("0 ({} failed)", c.failed)),
                    esc(&format::short(&c.note, 200))
                );
                continue;
            }
            let (p, delta) = versus(c);
            let sig = c.vs_baseline.is_some_and(|v| v.significant());
            let _ = writeln!(
                out,
                "<tr>{}{}{phase}{}{}{}{}<td class=\"num{}\">{}</td>{}{}{}</tr>",
                td(&c.workload),
                td(&profile_config(&c.runtime, &c.variant, &c.firewall)),
                td_num(&n_text(c)),
                td_num(&format::median_with_ci(c)),
                td_num(&format::p99_with_ci(c)),
                td_num(&format::ratio(c)),
                if sig { " sig" } else { "" },
                esc(&p),
                td_num(&delta),
                td_num(&format::noise_text(c)),
                td_num(&format::trials_needed(c))
            );
        }
        out.push_str("</tbody></table></div>\n");
        if !main {
            out.push_str("</details>\n");
        }
    }
    out.push_str("</section>\n");
}

fn quality_section(out: &mut String, cells: &[Cell], samples: &[Sample]) {
    out.push_str("<section id=\"quality\"><h2>Data quality</h2>\n<p class=\"def\">Stated, not hidden: nothing below was removed from any figure.</p>\n<h3>Noise of the key cells</h3>\n");
    let key: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.n > 0 && findings::NEEDS.iter().any(|n| n.metric == c.metric && n.phase == c.phase))
        .collect();
    let quiet = key.iter().filter(|c| c.noise.is_some_and(|n| n.level == NoiseLevel::Quiet)).count();
    let _ = writeln!(
        out,
        "<p>{quiet} of {} key cells are quiet (95% interval of the per-trial median within ±5%).</p>",
        key.len()
    );
    let mut loud: Vec<&&Cell> = key.iter().filter(|c| c.noise.is_some_and(|n| n.level != NoiseLevel::Quiet)).collect();
    loud.sort_by(|a, b| {
        let w = |c: &Cell| c.noise.map_or(0.0, |n| n.rel_half_width);
        w(b).total_cmp(&w(a))
    });
    if !loud.is_empty() {
        let _ = writeln!(out, "<details><summary>The other {}, noisiest first</summary>", loud.len());
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>trials</th><th>CV</th><th>noise</th><th>trials for ±5%</th></tr></thead><tbody>\n");
        for c in loud {
            let n = c.noise.unwrap();
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}{}</tr>",
                td(format!("{} {}", c.metric, c.phase).trim_end()),
                td(&c.workload),
                td(&profile_config(&c.runtime, &c.variant, &c.firewall)),
                td_num(&n.n.to_string()),
                td_num(&format::percent(n.cv)),
                td_num(&format::noise_text(c)),
                td_num(&format::trials_needed(c))
            );
        }
        out.push_str("</tbody></table></div></details>\n");
    }
    outliers(out, cells);
    out.push_str("<h3>Warm-up check (first values against the rest)</h3>\n");
    let tested: Vec<&Cell> = cells.iter().filter(|c| c.first_k.is_some()).collect();
    let warm: Vec<&&Cell> = tested.iter().filter(|c| c.first_k.as_ref().is_some_and(|f| f.flagged)).collect();
    if tested.is_empty() {
        out.push_str(&no_data(
            "too few trials or values per trial for the check (needs 6 trials, or 10 values per trial)",
        ));
    } else if warm.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"ok\">No cell of {} tested shows first values ≥ 5% off the rest at p &lt; 0.01.</p>",
            tested.len()
        );
    } else {
        let _ = writeln!(out, "<p>{} of {} tested cells flagged:</p>", warm.len(), tested.len());
        out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>compared</th><th>first ÷ rest</th><th>p</th></tr></thead><tbody>\n");
        for c in warm {
            let f = c.first_k.as_ref().unwrap();
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}</tr>",
                td(&c.metric),
                td(&c.workload),
                td(&profile_config(&c.runtime, &c.variant, &c.firewall)),
                td(&f.what),
                td_num(&format!("{}×", num(f.ratio))),
                td_num(&format::p_value(f.p))
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    failures(out, samples);
    out.push_str("</section>\n");
}

fn outliers(out: &mut String, cells: &[Cell]) {
    out.push_str("<h3>Outliers (MAD)</h3>\n");
    let flagged: Vec<&Cell> = cells.iter().filter(|c| !c.outlier_reps.is_empty()).collect();
    let total: usize = cells.iter().map(|c| c.trial_values.len()).sum();
    if flagged.is_empty() {
        let _ = writeln!(out, "<p class=\"ok\">No per-trial value of any cell has |modified z| &gt; 3.5 ({total} trial values checked).</p>");
        return;
    }
    let count: usize = flagged.iter().map(|c| c.outlier_reps.len()).sum();
    let _ = writeln!(
        out,
        "<details><summary>{count} of {total} per-trial values, in {} cells, have |modified z| &gt; 3.5: flagged, kept</summary>",
        flagged.len()
    );
    out.push_str("<p class=\"def\">A cell where more than a fifth of the trials are flagged has a second mode rather than stray values. The deviation column shows how far the flagged values lie from the cell's median: a tiny MAD can flag differences of no practical weight.</p>\n");
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>flagged repetitions</th><th>cell median</th><th>largest deviation</th><th></th></tr></thead><tbody>\n");
    for c in flagged {
        let reps: Vec<String> = c.outlier_reps.iter().map(|r| format!("#{r}")).collect();
        let per_trial: Vec<f64> = {
            let mut v = c.trial_values.clone();
            v.sort_by(f64::total_cmp);
            v
        };
        let center = super::stats::median(&per_trial);
        let deviation = c
            .trial_reps
            .iter()
            .zip(&c.trial_values)
            .filter(|(r, _)| c.outlier_reps.contains(r))
            .map(|(_, v)| (v - center) / center)
            .fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
        let (value, unit) = shown(center, &c.unit);
        let mode = if c.outlier_reps.len() * 5 > c.trial_values.len() { "second mode" } else { "" };
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}{}{}</tr>",
            td(format!("{} {}", c.metric, c.phase).trim_end()),
            td(&c.workload),
            td(&profile_config(&c.runtime, &c.variant, &c.firewall)),
            td(&reps.join(", ")),
            td_num(&format!("{} {unit}", num(value))),
            td_num(&format!("{:+.1}%", deviation * 100.0)),
            td(mode)
        );
    }
    out.push_str("</tbody></table></div></details>\n");
}

/// Runtime, variant, firewall profile, workload, metric.
type FailureKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn failures(out: &mut String, samples: &[Sample]) {
    let mut grouped: BTreeMap<FailureKey, (usize, &str)> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")) {
        let e = grouped.entry((&s.runtime, &s.variant, &s.firewall, &s.workload, &s.metric)).or_insert((0, &s.error));
        e.0 += 1;
    }
    out.push_str("<h3>Failures</h3>\n");
    if grouped.is_empty() {
        out.push_str("<p class=\"ok\">No measurement failed.</p>\n");
        return;
    }
    out.push_str(
        "<p>Failed measurements are stored with <code>ok = 0</code> and their error, and are in no figure.</p><ul>\n",
    );
    for ((runtime, variant, firewall, workload, metric), (count, first)) in grouped {
        let _ = writeln!(
            out,
            "<li>{} · {} {}: {count} failed; first: <code>{}</code></li>",
            esc(workload),
            esc(&profile_config(runtime, variant, firewall)),
            esc(metric),
            esc(&format::short(first, 300))
        );
    }
    out.push_str("</ul>\n");
}

/// "runtime (variant)", with the firewall profile when it is not `off`.
fn profile_config(runtime: &str, variant: &str, firewall: &str) -> String {
    if firewall == "off" {
        config(runtime, variant)
    } else {
        format!("{}, firewall {firewall}", config(runtime, variant))
    }
}

/// Workload, runtime, variant, firewall profile.
type Config4<'a> = (&'a str, &'a str, &'a str, &'a str);

fn config4_of(c: &Cell) -> Config4<'_> {
    (&c.workload, &c.runtime, &c.variant, &c.firewall)
}

fn sample_config(s: &Sample) -> Config4<'_> {
    (&s.workload, &s.runtime, &s.variant, &s.firewall)
}

/// Configurations in report order: by workload, the baseline first, then
/// runtime, variant and firewall profile.
fn sort_configs(keys: &mut Vec<Config4<'_>>) {
    keys.sort_by(|a, b| {
        (a.0, a.1 != BASELINE, a.1, a.2, super::firewall::profile_order(a.3)).cmp(&(
            b.0,
            b.1 != BASELINE,
            b.1,
            b.2,
            super::firewall::profile_order(b.3),
        ))
    });
    keys.dedup();
}

/// A stable colour per runtime × variant × profile, the baseline first (the
/// same colours as the plots above when every profile is `off`).
fn config_colors(cells: &[Cell]) -> BTreeMap<(String, String, String), usize> {
    let mut keys: Vec<(&str, &str, &str)> =
        cells.iter().map(|c| (c.runtime.as_str(), c.variant.as_str(), c.firewall.as_str())).collect();
    keys.sort_by(|a, b| {
        (a.0 != BASELINE, a.0, a.1, super::firewall::profile_order(a.2)).cmp(&(
            b.0 != BASELINE,
            b.0,
            b.1,
            super::firewall::profile_order(b.2),
        ))
    });
    keys.dedup();
    keys.into_iter().enumerate().map(|(i, (r, v, f))| ((r.to_string(), v.to_string(), f.to_string()), i)).collect()
}

fn color_of(colors: &BTreeMap<(String, String, String), usize>, key: Config4) -> usize {
    colors.get(&(key.1.to_string(), key.2.to_string(), key.3.to_string())).copied().unwrap_or(0)
}

fn workloads_of<'a>(keys: &[Config4<'a>]) -> Vec<&'a str> {
    let mut w: Vec<&str> = keys.iter().map(|k| k.0).collect();
    w.dedup();
    w
}

/// The number after `prefix` in a phase name (`k=4` → 4, `rate=1200` → 1200).
fn phase_number(phase: &str, prefix: &str) -> Option<f64> {
    phase.strip_prefix(prefix)?.parse().ok().filter(|v: &f64| v.is_finite())
}

/// The latency objective of phase `open-p99<Xms`, in ms.
fn objective_ms(phase: &str) -> Option<f64> {
    phase.strip_prefix("open-p99<")?.strip_suffix("ms")?.parse().ok()
}

/// Median [95% interval], or why there is none.
fn median_cell(c: Option<&Cell>) -> String {
    match c {
        Some(c) if c.n > 0 => format!("{} {}", num(c.median), format::interval(c.median_ci.0, c.median_ci.1)),
        Some(c) if c.failed > 0 => format!("failed ({})", c.failed),
        _ => "–".into(),
    }
}

/// Throughput: the closed-loop maximum, the open-loop rate under the latency
/// objective, and the open-loop search steps as curves.
pub fn throughput_section(cells: &[Cell], samples: &[Sample]) -> String {
    let mut out = String::from("<section id=\"throughput\"><h2>Throughput</h2>\n");
    let metrics = ["throughput", "open_loop_p99", "open_loop_achieved"];
    if !samples.iter().any(|s| metrics.contains(&s.metric.as_str())) {
        out.push_str(&no_data("this campaign has no throughput, open_loop_p99 or open_loop_achieved samples."));
        out.push_str("</section>\n");
        return out;
    }
    let objective = cells
        .iter()
        .filter(|c| c.metric == "throughput")
        .find_map(|c| objective_ms(&c.phase))
        .or_else(|| samples.iter().filter(|s| s.metric == "throughput").find_map(|s| objective_ms(&s.phase)));
    let objective_text = objective.map(|x| format!("p99 &lt; {x} ms")).unwrap_or("the objective".into());

    // The table.
    let mut keys: Vec<Config4> = cells
        .iter()
        .filter(|c| c.metric.starts_with("throughput") || c.metric == "cpu_per_request")
        .map(config4_of)
        .collect();
    sort_configs(&mut keys);
    let closed_phase = cells
        .iter()
        .find(|c| c.metric == "throughput" && c.phase.starts_with("closed-c"))
        .map(|c| c.phase.trim_start_matches("closed-c").to_string());
    let connections = closed_phase.map(|n| format!(", {} connections", esc(&n))).unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"def\">Closed loop: every connection sends its next request as soon as the answer arrives{connections}; its rate is the most the configuration answered. Open loop: requests at a fixed arrival rate; the rate is the highest found by bisection whose p99 (from each request's intended send time) met {objective_text} with nothing dropped. Medians over trials with their 95% interval (with fewer than 6 trials, the whole range).</p>"
    );
    if !keys.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>trials</th><th>closed loop: max req/s</th><th>open loop: req/s meeting {objective_text}</th><th>CPU per request µs</th><th>closed loop p50 ms</th><th>closed loop p99 ms</th></tr></thead><tbody>"
        );
        for key in &keys {
            let get = |metric: &str, open: bool| {
                cells.iter().find(|c| {
                    config4_of(c) == *key
                        && c.metric == metric
                        && if open { c.phase.starts_with("open-") } else { c.phase.starts_with("closed") }
                })
            };
            let open = match get("throughput", true) {
                Some(c) if c.n == 0 && c.failed > 0 => {
                    format!("none met it in {} trial{}", c.failed, if c.failed == 1 { "" } else { "s" })
                }
                Some(c) if c.failed > 0 => {
                    format!(
                        "{}; none met it in {} trial{}",
                        median_cell(Some(c)),
                        c.failed,
                        if c.failed == 1 { "" } else { "s" }
                    )
                }
                other => median_cell(other),
            };
            let closed = get("throughput", false);
            let trials = closed.map(|c| c.trial_values.len() + c.failed).unwrap_or(0);
            let _ = writeln!(
                out,
                "<tr>{}{}{}{}{}{}{}{}</tr>",
                td(key.0),
                td(&profile_config(key.1, key.2, key.3)),
                td_num(&trials.to_string()),
                td_num(&median_cell(closed)),
                td_num(&open),
                td_num(&median_cell(get("cpu_per_request", false))),
                td_num(&median_cell(get("throughput_p50", false))),
                td_num(&median_cell(get("throughput_p99", false))),
            );
        }
        out.push_str("</tbody></table></div>\n");
        let reasons: Vec<String> = cells
            .iter()
            .filter(|c| c.metric == "throughput" && c.failed > 0)
            .map(|c| {
                format!(
                    "<li>{} · {} ({}): <code>{}</code></li>",
                    esc(&c.workload),
                    esc(&profile_config(&c.runtime, &c.variant, &c.firewall)),
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

    // The curves: every open-loop search step of every trial.
    type Step = (f64, f64, Option<f64>);
    let mut steps: BTreeMap<(Config4, u32), BTreeMap<u32, Step>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.ok && s.metric == "open_loop_p99") {
        let (Some(p99), Some(rate)) = (s.value, phase_number(&s.phase, "rate=")) else { continue };
        steps.entry((sample_config(s), s.repetition)).or_default().insert(s.seq, (rate, p99, None));
    }
    for s in samples.iter().filter(|s| s.ok && s.metric == "open_loop_achieved") {
        if let Some(step) = steps.get_mut(&(sample_config(s), s.repetition)).and_then(|t| t.get_mut(&s.seq)) {
            step.2 = s.value;
        }
    }
    out.push_str("<h3>Latency against offered rate</h3>\n");
    if steps.is_empty() {
        out.push_str(&no_data("no open-loop search step succeeded (open_loop_p99)."));
        out.push_str("</section>\n");
        return out;
    }
    let colors = config_colors(cells);
    let mut curve_keys: Vec<Config4> = steps.keys().map(|k| k.0).collect();
    sort_configs(&mut curve_keys);
    let hline = objective.map(|y| plots::HLine { y, label: format!("objective: p99 < {y} ms") });
    out.push_str("<div class=\"plots\">\n");
    for key in &curve_keys {
        let mut series = Vec::new();
        for ((k, rep), trial) in steps.iter().filter(|((k, _), _)| k == key) {
            let mut points: Vec<&Step> = trial.values().collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push(plots::Series {
                label: series.is_empty().then(|| format!("{} trials", steps.keys().filter(|(c, _)| c == k).count())),
                color: color_of(&colors, *k),
                mark: plots::Mark::Line,
                points: points.iter().map(|p| (p.0, p.1)).collect(),
                hollow: points.iter().map(|p| p.2.is_some_and(|a| a < 0.95 * p.0)).collect(),
            });
            let _ = rep;
        }
        let title = format!("{} · {}", key.0, profile_config(key.1, key.2, key.3));
        out.push_str(&xy_figure(
            plots::xy(&title, "offered rate, req/s", "p99 latency, ms", &series, hline.as_ref(), 1.0),
            &series,
            "Every step of the open-loop search, one line per trial (steps in rate order; the search visits them by bisection). Hollow points: fewer than 95% of the offered requests per second completed. Dashed line: the objective.",
        ));
    }
    out.push_str("</div>\n</section>\n");
    out
}

/// Scaling: concurrent cold starts and creation rate against K, and density.
pub fn scaling_section(cells: &[Cell], samples: &[Sample]) -> String {
    let mut out = String::from("<section id=\"scaling\"><h2>Scaling</h2>\n");
    let metrics = ["scaling_start", "scaling_rate", "density"];
    if !samples.iter().any(|s| metrics.contains(&s.metric.as_str())) {
        out.push_str(&no_data("this campaign has no scaling_start, scaling_rate or density samples."));
        out.push_str("</section>\n");
        return out;
    }
    let colors = config_colors(cells);
    // K, cell, for one metric, by configuration.
    let by_k = |metric: &str| -> BTreeMap<Config4, Vec<(f64, &Cell)>> {
        let mut m: BTreeMap<Config4, Vec<(f64, &Cell)>> = BTreeMap::new();
        for c in cells.iter().filter(|c| c.metric == metric) {
            if let Some(k) = phase_number(&c.phase, "k=") {
                m.entry(config4_of(c)).or_default().push((k, c));
            }
        }
        for v in m.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        m
    };
    let starts = by_k("scaling_start");
    let rates = by_k("scaling_rate");
    let mut keys: Vec<Config4> = starts.keys().chain(rates.keys()).copied().collect();
    sort_configs(&mut keys);

    out.push_str("<h3>Concurrent cold starts</h3>\n<p class=\"def\">K instances of one configuration launched at once from K threads (K = 1, 2, 4, … until the bound or the first failure). Cold start of each instance: launch → its first correct response. Creation rate: K ÷ the time until all K answered.</p>\n");
    if keys.is_empty() {
        out.push_str(&no_data("no scaling_start or scaling_rate samples."));
    } else {
        out.push_str("<div class=\"plots\">\n");
        for w in workloads_of(&keys) {
            let mut start_series = Vec::new();
            let mut rate_series = Vec::new();
            for key in keys.iter().filter(|k| k.0 == w) {
                let color = color_of(&colors, *key);
                let label = profile_config(key.1, key.2, key.3);
                if let Some(ks) = starts.get(key) {
                    let ok: Vec<&(f64, &Cell)> = ks.iter().filter(|(_, c)| c.n > 0).collect();
                    start_series.push(plots::Series {
                        label: None,
                        color,
                        mark: plots::Mark::Dots,
                        points: ok.iter().flat_map(|(k, c)| c.values.iter().map(move |v| (*k, *v))).collect(),
                        hollow: Vec::new(),
                    });
                    start_series.push(plots::Series {
                        label: Some(format!("{label}: median")),
                        color,
                        mark: plots::Mark::Line,
                        points: ok.iter().map(|(k, c)| (*k, c.median)).collect(),
                        hollow: Vec::new(),
                    });
                    start_series.push(plots::Series {
                        label: Some(format!("{label}: max")),
                        color,
                        mark: plots::Mark::Dashed,
                        points: ok.iter().map(|(k, c)| (*k, c.max)).collect(),
                        hollow: Vec::new(),
                    });
                }
                if let Some(ks) = rates.get(key) {
                    let ok: Vec<&(f64, &Cell)> = ks.iter().filter(|(_, c)| c.n > 0).collect();
                    rate_series.push(plots::Series {
                        label: None,
                        color,
                        mark: plots::Mark::Dots,
                        points: ok.iter().flat_map(|(k, c)| c.values.iter().map(move |v| (*k, *v))).collect(),
                        hollow: Vec::new(),
                    });
                    rate_series.push(plots::Series {
                        label: Some(format!("{label}: median")),
                        color,
                        mark: plots::Mark::Line,
                        points: ok.iter().map(|(k, c)| (*k, c.median)).collect(),
                        hollow: Vec::new(),
                    });
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
        let failed: Vec<String> = starts
            .values()
            .flatten()
            .filter(|(_, c)| c.failed > 0)
            .map(|(_, c)| {
                format!(
                    "<li>{} · {} at {}: {} of {} instances failed; first: <code>{}</code></li>",
                    esc(&c.workload),
                    esc(&profile_config(&c.runtime, &c.variant, &c.firewall)),
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
    let mut density: BTreeMap<Config4, Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.metric == "density" && !s.error.starts_with("superseded")) {
        density.entry(sample_config(s)).or_default().push(s);
    }
    if density.is_empty() {
        out.push_str(&no_data("no density samples."));
    } else {
        let mut keys: Vec<Config4> = density.keys().copied().collect();
        sort_configs(&mut keys);
        out.push_str("<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>trial</th><th>instances that fit</th><th>stopped by</th><th>mean PSS per instance, MiB</th><th>PSS after boot, one instance, MiB (median)</th></tr></thead><tbody>\n");
        for key in keys {
            let mut trials = density[&key].clone();
            trials.sort_by_key(|s| s.repetition);
            let boot = cells
                .iter()
                .find(|c| config4_of(c) == key && c.metric == "memory_pss" && c.phase == "after_boot" && c.n > 0)
                .map(|c| num(c.median / 1024.0))
                .unwrap_or("–".into());
            for s in trials {
                const PSS: &str = "; mean PSS per instance ";
                let (fit, cause, pss) = if s.ok {
                    let (cause, pss) = match s.error.rsplit_once(PSS) {
                        Some((cause, rest)) => (
                            cause.to_string(),
                            rest.trim_end_matches(" KiB").parse::<f64>().map(|k| num(k / 1024.0)).unwrap_or("–".into()),
                        ),
                        None => (s.error.clone(), "–".into()),
                    };
                    (s.value.map(num_int).unwrap_or("–".into()), cause, pss)
                } else {
                    ("failed".to_string(), s.error.clone(), "–".to_string())
                };
                let _ = writeln!(
                    out,
                    "<tr>{}{}{}{}{}{}{}</tr>",
                    td(key.0),
                    td(&profile_config(key.1, key.2, key.3)),
                    td_num(&format!("#{}", s.repetition)),
                    td_num(&fit),
                    td(&format::short(&cause, 200)),
                    td_num(&pss),
                    td_num(&boot)
                );
            }
        }
        out.push_str("</tbody></table></div>\n");
    }
    out.push_str("</section>\n");
    out
}

fn num_int(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        num(v)
    }
}

/// Firewall: each profile's median against `off` for the same
/// configuration (the deltas of report.md, same computation), and the time
/// to apply each profile.
pub fn firewall_section(cells: &[Cell], samples: &[Sample]) -> String {
    let mut out = String::from("<section id=\"firewall\"><h2>Firewall deltas</h2>\n");
    if !samples.iter().any(|s| s.firewall != "off") {
        out.push_str(&no_data("every sample of this campaign was taken with firewall = off; a campaign with firewall rules is needed for the deltas."));
        out.push_str("</section>\n");
        return out;
    }
    out.push_str("<p class=\"def\">The trial's firewall profile is applied just before its cold start, every trial, trials of all profiles interleaved. Δ: the profile's median minus <code>off</code>'s median for the same runtime, variant and workload, with a 95% interval from a bootstrap over trials (1000 resamples, fixed seed), so it includes the variation between trials; with few trials the intervals are wide. Red: the interval lies above zero (slower); green: below. The profiles' rules and the host's ruleset check are in report.md.</p>\n");

    // Apply times per profile, pooled over configurations.
    let mut apply: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.metric == "firewall_apply") {
        apply.entry(&c.firewall).or_default().extend(c.values.iter().copied());
    }
    if !apply.is_empty() {
        let mut profiles: Vec<(&str, Vec<f64>)> = apply.into_iter().collect();
        profiles.sort_by_key(|(p, _)| super::firewall::profile_order(p));
        out.push_str("<h3>Time to apply each profile</h3>\n<table><thead><tr><th>profile</th><th>apply ms, median [95% interval]</th><th>n</th></tr></thead><tbody>\n");
        for (profile, mut values) in profiles {
            values.sort_by(f64::total_cmp);
            let text = if values.is_empty() {
                "–".to_string()
            } else {
                let (lo, hi, _) = super::stats::median_ci(&values, 0.95);
                format!("{} {}", num(super::stats::median(&values)), format::interval(lo, hi))
            };
            let _ = writeln!(out, "<tr>{}{}{}</tr>", td(profile), td_num(&text), td_num(&values.len().to_string()));
        }
        out.push_str("</tbody></table>\n");
    }

    let deltas = super::firewall::deltas(cells, samples);
    out.push_str("<h3>Difference to off</h3>\n");
    if deltas.is_empty() {
        out.push_str(&no_data("no configuration was measured successfully both with off and with another profile."));
        out.push_str("</section>\n");
        return out;
    }
    if deltas.iter().any(|d| super::firewall::CHART_METRICS.contains(&d.metric.as_str()) && d.off_median > 0.0) {
        out.push_str(&fixed_figure(
            super::firewall::chart_svg(&deltas),
            "Δ to off in % of off's median: the point is the difference of medians, the bar its 95% interval; the axis of each metric is symmetric about zero.",
        ));
    }
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr><th>metric</th><th>workload</th><th>runtime (variant)</th><th>profile</th><th>n</th><th>median [95% interval]</th><th>off median</th><th>Δ [95% interval]</th><th>Δ %</th></tr></thead><tbody>\n");
    for d in &deltas {
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
    out.push_str("</tbody></table></div>\n</section>\n");
    out
}

fn methods_section(out: &mut String, p: &Page) {
    out.push_str("<section id=\"methods\"><h2>Methods</h2>\n<ul>\n");
    for item in p.methods {
        let _ = writeln!(out, "<li>{}</li>", super::methods::inline_html(item));
    }
    out.push_str("</ul>\n<h3>Metric definitions (t0 → t1)</h3>\n<table><tbody>\n");
    for (metric, definition) in METRICS {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            esc(metric),
            super::methods::inline_html(definition)
        );
    }
    out.push_str("</tbody></table>\n<h3>Runtimes</h3>\n<div class=\"scroll\"><table><thead><tr><th>runtime</th><th>variant</th><th>measured</th><th>version</th><th>path or reason</th></tr></thead><tbody>\n");
    for r in p.runtimes {
        let where_ = if r.measured { r.path.clone() } else { format!("not measured: {}", r.reason) };
        let _ = writeln!(
            out,
            "<tr>{}{}{}{}{}</tr>",
            td(&r.runtime),
            td(&r.variant),
            td(if r.measured { "yes" } else { "no" }),
            td(&r.version),
            td(&where_)
        );
    }
    out.push_str("</tbody></table></div>\n");
    let mut notes = Vec::new();
    for r in p.runtimes {
        if let Some(map) = r.notes.as_object() {
            for (workload, note) in map {
                let line =
                    format!("<li>{} / {}: {}</li>", esc(&r.runtime), esc(workload), esc(note.as_str().unwrap_or("")));
                if !notes.contains(&line) {
                    notes.push(line);
                }
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "<h3>How each runtime runs the workloads</h3>\n<ul>\n{}\n</ul>", notes.join("\n"));
    }
    out.push_str("<h3>Environment manifest</h3>\n<div class=\"scroll\"><table><tbody>\n");
    for (k, v) in flatten(&p.campaign.environment, "") {
        let _ = writeln!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&k), esc(&v));
    }
    out.push_str("</tbody></table></div>\n<h3>Campaign options</h3>\n<div class=\"scroll\"><table><tbody>\n");
    for (k, v) in flatten(&p.campaign.config, "") {
        let _ = writeln!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&k), esc(&v));
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// JSON objects as dotted keys → text, in key order.
fn flatten(value: &serde_json::Value, prefix: &str) -> Vec<(String, String)> {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => map
            .iter()
            .flat_map(|(k, v)| flatten(v, &if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }))
            .collect(),
        serde_json::Value::String(s) => vec![(prefix.to_string(), s.clone())],
        other => vec![(prefix.to_string(), other.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "</td></table><script>alert('pwned')</script><img src=x onerror=alert(1)> & \"quoted\"";

    /// A campaign whose environment and runtime rows carry markup; no samples
    /// (an escaping test needs no measurements, and fabricates none).
    fn hostile_page_html() -> String {
        let campaign = CampaignRow {
            id: HOSTILE.into(),
            started_ns: 0,
            finished_ns: None,
            status: HOSTILE.into(),
            seed: 1,
            config: serde_json::json!({ "reps": HOSTILE }),
            environment: serde_json::json!({
                "kernel": HOSTILE,
                "cpu_model": HOSTILE,
                "virtualization": { "mode": HOSTILE },
                "shell_env": { HOSTILE: HOSTILE },
            }),
        };
        let runtimes = vec![RuntimeRow {
            runtime: HOSTILE.into(),
            variant: HOSTILE.into(),
            measured: false,
            version: HOSTILE.into(),
            path: HOSTILE.into(),
            reason: HOSTILE.into(),
            notes: serde_json::json!({ HOSTILE: HOSTILE }),
        }];
        let summary = findings::summarize(&campaign, &runtimes, &[], &[]);
        let methods = super::super::methods::items(&campaign, 0);
        render(&Page {
            campaign: &campaign,
            runtimes: &runtimes,
            cells: &[],
            samples: &[],
            summary: &summary,
            methods: &methods,
        })
    }

    #[test]
    fn every_campaign_string_is_escaped() {
        let page = hostile_page_html();
        assert!(!page.contains("<script"), "a script tag got through");
        assert!(!page.contains("<img"), "an img tag got through");
        assert!(!page.contains("</td></table>"), "markup from the campaign got through");
        assert!(page.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    }

    #[test]
    fn the_page_needs_no_network_and_marks_empty_sections() {
        let page = hostile_page_html();
        for external in ["src=\"http", "href=\"http", "@import", "url(", "<link", "<script"] {
            assert!(!page.contains(external), "{external} in the page");
        }
        assert!(page.contains("id=\"firewall\"") && page.contains("id=\"scaling\""));
        assert!(page.contains("id=\"throughput\""));
        assert!(
            page.matches("class=\"no-data\"").count() >= 4,
            "plots, throughput, scaling and firewall say there is no data"
        );
    }

    /// One sample as the campaign stores it.
    #[allow(clippy::too_many_arguments)]
    fn sample(
        runtime: &str,
        firewall: &str,
        metric: &str,
        phase: &str,
        rep: u32,
        seq: u32,
        value: Option<f64>,
        error: &str,
    ) -> Sample {
        let unit = match metric {
            "throughput" | "open_loop_achieved" => "req/s",
            "scaling_rate" => "instances/s",
            "density" => "instances",
            "cpu_per_request" => "us",
            "memory_pss" => "KiB",
            _ => "ms",
        };
        Sample {
            runtime: runtime.into(),
            variant: if runtime == BASELINE { "static-musl".into() } else { "precompiled-pooling".into() },
            workload: "hello".into(),
            metric: metric.into(),
            phase: phase.into(),
            firewall: firewall.into(),
            repetition: rep,
            seq,
            value,
            unit: unit.into(),
            ts_ns: i64::from(rep * 1000 + seq),
            ok: value.is_some() && !error.starts_with("no rate") && !error.starts_with("start failed"),
            error: error.into(),
        }
    }

    /// Shaped like /tmp campaigns of `--metrics throughput,scaling,memory`
    /// (values from one such run, rounded); the second runtime's second
    /// trial met no rate, its K = 4 had a failed start.
    fn throughput_and_scaling_samples() -> Vec<Sample> {
        let mut v = Vec::new();
        for (rt, closed, open, steps) in [
            (
                "native",
                [67532.0, 47600.0],
                [Some(34821.0), Some(3273.0)],
                [(74285.0, 191.4), (37143.0, 23.3), (18571.0, 5.55), (27857.0, 1.50)],
            ),
            (
                "wasmtime-embedded",
                [11302.0, 4681.0],
                [Some(2331.0), None],
                [(12432.0, 186.9), (6216.0, 304.1), (3108.0, 10.9), (1554.0, 1.59)],
            ),
        ] {
            for rep in 1..=2u32 {
                let i = rep as usize - 1;
                v.push(sample(rt, "off", "throughput", "closed-c16", rep, 0, Some(closed[i]), ""));
                v.push(sample(rt, "off", "throughput_p50", "closed-c16", rep, 0, Some(0.22 * rep as f64), ""));
                v.push(sample(rt, "off", "throughput_p99", "closed-c16", rep, 0, Some(2.1 * rep as f64), ""));
                v.push(sample(rt, "off", "cpu_per_request", "closed-c16", rep, 0, Some(76.9), ""));
                for (seq, (rate, p99)) in steps.iter().enumerate() {
                    let phase = format!("rate={rate:.0}");
                    v.push(sample(rt, "off", "open_loop_p99", &phase, rep, seq as u32, Some(p99 * rep as f64), ""));
                    let achieved = if *p99 > 100.0 { rate * 0.6 } else { *rate };
                    v.push(sample(rt, "off", "open_loop_achieved", &phase, rep, seq as u32, Some(achieved), ""));
                }
                match open[i] {
                    Some(r) => v.push(sample(rt, "off", "throughput", "open-p99<10ms", rep, 0, Some(r), "")),
                    None => v.push(sample(
                        rt,
                        "off",
                        "throughput",
                        "open-p99<10ms",
                        rep,
                        0,
                        None,
                        "no rate tried met p99 < 10 ms (lowest tried 1287 req/s: p99 11.2 ms)",
                    )),
                }
                v.push(sample(
                    rt,
                    "off",
                    "memory_pss",
                    "after_boot",
                    rep,
                    0,
                    Some(if rt == BASELINE { 618.0 } else { 5500.0 }),
                    "",
                ));
            }
            for (k, start, rate) in [(1u32, 11.7, 83.0), (2, 14.2, 106.7), (4, 13.1, 278.8)] {
                let phase = format!("k={k}");
                for i in 0..k {
                    if rt != BASELINE && k == 4 && i == 3 {
                        v.push(sample(
                            rt,
                            "off",
                            "scaling_start",
                            &phase,
                            1,
                            0,
                            None,
                            "start failed: <b>out of memory</b>",
                        ));
                    } else {
                        v.push(sample(rt, "off", "scaling_start", &phase, 1, i, Some(start + f64::from(i)), ""));
                    }
                }
                if rt == BASELINE || k < 4 {
                    v.push(sample(rt, "off", "scaling_rate", &phase, 1, 0, Some(rate), ""));
                }
            }
        }
        v.push(sample(
            "native",
            "off",
            "density",
            "",
            1,
            0,
            Some(6.0),
            "instance bound: 6 instances (--scaling bound); mean PSS per instance 130 KiB",
        ));
        v.push(sample(
            "wasmtime-embedded",
            "off",
            "density",
            "",
            1,
            0,
            Some(0.0),
            "latency objective: p99 11.55 ms > 10 ms with 1 instances <script>; mean PSS per instance 5460 KiB",
        ));
        v
    }

    #[test]
    fn throughput_section_draws_the_search_steps_and_tabulates_the_rates() {
        let samples = throughput_and_scaling_samples();
        let cells = crate::report::summarize(&samples);
        let html = throughput_section(&cells, &samples);
        assert!(!html.contains("no-data"), "{html}");
        assert_eq!(html.matches("<svg").count(), 2, "one curve per runtime × variant × workload");
        assert!(html.contains("objective: p99 &lt; 10 ms"), "the objective line is drawn and labelled");
        assert!(html.contains("p99 latency, ms (log scale)"));
        assert!(html.contains("\n74285\n") || html.contains("\n60000\n"), "offered rates on x");
        // Closed loop: median of 67532 and 47600; open loop: the one trial that met it, and the one that did not.
        assert!(html.contains("57566 [47600, 67532]"), "{html}");
        assert!(html.contains("2331 [2331, 2331]; none met it in 1 trial"), "{html}");
        assert!(html.contains("no rate tried met p99 &lt; 10 ms"), "the reason is shown, escaped");
        assert!(html.contains("2 trials"), "legend counts trials");
        let empty = throughput_section(&[], &[]);
        assert!(empty.contains("class=\"no-data\""));
    }

    #[test]
    fn scaling_section_draws_k_curves_and_the_density_table() {
        let samples = throughput_and_scaling_samples();
        let cells = crate::report::summarize(&samples);
        let html = scaling_section(&cells, &samples);
        assert_eq!(html.matches("<svg").count(), 2, "cold start and creation rate against K: {html}");
        assert!(html.contains("native (static-musl): median") && html.contains("native (static-musl): max"));
        assert!(
            html.contains("1 of 4 instances failed") && html.contains("&lt;b&gt;out of memory&lt;/b&gt;"),
            "{html}"
        );
        assert!(html.contains("instance bound: 6 instances (--scaling bound)"));
        assert!(html.contains("with 1 instances &lt;script&gt;") && !html.contains("<script"), "error text is escaped");
        // 5460 KiB per instance = 5.33 MiB; after boot 5500 KiB = 5.37 MiB.
        assert!(html.contains(">5.33<") && html.contains(">5.37<") && html.contains(">0.127<"), "{html}");
        let empty = scaling_section(&[], &[]);
        assert!(empty.contains("class=\"no-data\""));
    }

    #[test]
    fn firewall_section_shows_deltas_to_off() {
        let mut samples = Vec::new();
        for rep in 1..=4u32 {
            for (profile, base) in [("off", 5.0), ("rules-100", 8.0)] {
                samples.push(sample(
                    "native",
                    profile,
                    "cold_start",
                    "",
                    rep,
                    0,
                    Some(base + f64::from(rep) * 0.1),
                    "",
                ));
                samples.push(sample("native", profile, "firewall_apply", "", rep, 0, Some(30.0 + f64::from(rep)), ""));
            }
        }
        let cells = crate::report::summarize(&samples);
        let html = firewall_section(&cells, &samples);
        assert!(
            html.contains("<svg") && html.contains("hello · native · rules-100"),
            "the chart of firewall.rs: {html}"
        );
        assert!(
            html.contains("<td>rules-100</td>") && html.contains("+3.00 [+2.80, +3.20]") && html.contains("+57.1%"),
            "Δ of 3 ms on 5.25 ms: {html}"
        );
        assert!(html.contains("class=\"flag\""), "an interval above zero is marked");
        assert!(html.contains("Time to apply each profile"));
        let off_only: Vec<Sample> = samples.iter().filter(|s| s.firewall == "off").cloned().collect();
        let html = firewall_section(&crate::report::summarize(&off_only), &off_only);
        assert!(html.contains("class=\"no-data\"") && !html.contains("<svg"));
    }
}
