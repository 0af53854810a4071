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
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px; }
.no-data { border: 1px dashed #b8bcc4; border-radius: 6px; padding: 12px 16px; color: var(--muted); background: var(--band); }
.flag { color: #b3261e; font-weight: 600; }
.ok { color: #1b7f3b; }
.sig { font-weight: 600; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
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
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#key\">Key figures</a><a href=\"#plots\">Plots</a><a href=\"#metrics\">All metrics</a><a href=\"#quality\">Data quality</a><a href=\"#firewall\">Firewall</a><a href=\"#scaling\">Scaling</a><a href=\"#methods\">Methods</a></nav>\n");
    summary_section(&mut out, p.summary);
    key_figures(&mut out, p.cells);
    plots_section(&mut out, p.cells);
    metric_tables(&mut out, p.cells);
    quality_section(&mut out, p.cells, p.samples);
    out.push_str(&firewall_section(p.samples));
    out.push_str(&scaling_section(p.samples));
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

type Config<'a> = (&'a str, &'a str, &'a str);

fn configs(cells: &[Cell]) -> Vec<Config<'_>> {
    let mut keys: Vec<Config> =
        cells.iter().map(|c| (c.workload.as_str(), c.runtime.as_str(), c.variant.as_str())).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn find<'a>(cells: &'a [Cell], key: Config, metric: &str, phase: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.workload == key.0 && c.runtime == key.1 && c.variant == key.2 && c.metric == metric && c.phase == phase
    })
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
            td(&config(key.1, key.2)),
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

/// A stable colour per runtime × variant, the baseline first.
fn color_index(cells: &[Cell]) -> BTreeMap<(String, String), usize> {
    let mut keys: Vec<(String, String)> = cells.iter().map(|c| (c.runtime.clone(), c.variant.clone())).collect();
    keys.sort_by_key(|k| (k.0 != BASELINE, k.clone()));
    keys.dedup();
    keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect()
}

fn figure(svg: String, caption: &str) -> String {
    format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", esc(caption))
}

fn plots_section(out: &mut String, cells: &[Cell]) {
    out.push_str("<section id=\"plots\"><h2>Plots</h2>\n");
    let colors = color_index(cells);
    let color = |c: &Cell| colors[&(c.runtime.clone(), c.variant.clone())];
    let rows_of = |metric: &str, phase: &str| -> Vec<&Cell> {
        let mut v: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric && c.phase == phase && c.n > 0).collect();
        v.sort_by(|a, b| {
            (&a.workload, a.runtime != BASELINE, &a.runtime, &a.variant).cmp(&(
                &b.workload,
                b.runtime != BASELINE,
                &b.runtime,
                &b.variant,
            ))
        });
        v
    };
    let row_label = |c: &Cell| format!("{} · {}", c.workload, config(&c.runtime, &c.variant));

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
                .map(|c| Curve { label: config(&c.runtime, &c.variant), color: color(c), values: c.values.clone() })
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
    let mut known: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
    let mut extra: Vec<&str> = cells.iter().map(|c| c.metric.as_str()).filter(|m| !known.contains(m)).collect();
    extra.sort();
    extra.dedup();
    known.extend(extra);
    for metric in known {
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
        let definition = METRICS
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, d)| *d)
            .unwrap_or("A runtime-specific intermediate event or resource (see the runtime's notes).");
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
                    td(&config(&c.runtime, &c.variant)),
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
                td(&config(&c.runtime, &c.variant)),
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
                td(&config(&c.runtime, &c.variant)),
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
                td(&config(&c.runtime, &c.variant)),
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
            td(&config(&c.runtime, &c.variant)),
            td(&reps.join(", ")),
            td_num(&format!("{} {unit}", num(value))),
            td_num(&format!("{:+.1}%", deviation * 100.0)),
            td(mode)
        );
    }
    out.push_str("</tbody></table></div></details>\n");
}

fn failures(out: &mut String, samples: &[Sample]) {
    let mut grouped: BTreeMap<(&str, &str, &str, &str), (usize, &str)> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")) {
        let e = grouped.entry((&s.runtime, &s.variant, &s.workload, &s.metric)).or_insert((0, &s.error));
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
    for ((runtime, variant, workload, metric), (count, first)) in grouped {
        let _ = writeln!(
            out,
            "<li>{} · {} {}: {count} failed; first: <code>{}</code></li>",
            esc(workload),
            esc(&config(runtime, variant)),
            esc(metric),
            esc(&format::short(first, 300))
        );
    }
    out.push_str("</ul>\n");
}

/// Firewall deltas (the `firewall` column, rule count against `off`).
/// A later issue fills this in; until then it says what is there.
pub fn firewall_section(samples: &[Sample]) -> String {
    let with_rules = samples.iter().filter(|s| s.firewall != "off").count();
    let body = if with_rules == 0 {
        no_data("every sample of this campaign was taken with firewall = off; a campaign with firewall rules is needed for the deltas.")
    } else {
        no_data(&format!(
            "{with_rules} samples were taken with a firewall setting other than off; this report version does not plot firewall deltas yet (they are in summary.csv and results.sqlite)."
        ))
    };
    format!("<section id=\"firewall\"><h2>Firewall deltas</h2>\n{body}</section>\n")
}

/// Scaling curves (metrics `throughput`, `scaling_start`, `density`).
/// A later issue fills this in; until then it says what is there.
pub fn scaling_section(samples: &[Sample]) -> String {
    let metrics = ["throughput", "scaling_start", "density"];
    let present: Vec<&str> = metrics.iter().copied().filter(|m| samples.iter().any(|s| s.metric == *m)).collect();
    let body = if present.is_empty() {
        no_data("this campaign has no throughput, scaling_start or density samples.")
    } else {
        no_data(&format!(
            "samples of {} are present; this report version does not plot scaling curves yet (they are in the tables above and results.sqlite).",
            present.join(", ")
        ))
    };
    format!("<section id=\"scaling\"><h2>Scaling</h2>\n{body}</section>\n")
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
        assert!(page.matches("class=\"no-data\"").count() >= 3, "plots, firewall and scaling say there is no data");
    }
}
