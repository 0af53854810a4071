//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! nothing fetched), every string from the campaign escaped.

use super::findings::{shown, Summary};
use super::format::{self, config, html as esc, num};
use super::model::{Config, Model};
use super::plots::{self, Curve, Row};
use super::significance::magnitude;
use super::{html_sections, Cell};
use crate::store::BASELINE;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A clearly marked empty section or plot.
pub(super) fn no_data(why: &str) -> String {
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

pub fn render(m: &Model) -> String {
    let c = &m.campaign;
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
        "<p class=\"meta\">Status <strong>{}</strong>; started {} UTC{}; {} × {} ({}), kernel {}, {}; virtualisation <strong>{}</strong>; edgebench commit <code>{}</code>.</p>",
        esc(&c.status),
        chrono::DateTime::from_timestamp_nanos(c.started_ns).format("%Y-%m-%d %H:%M:%S"),
        duration,
        esc(&env["logical_cpus"].to_string()),
        esc(env["cpu_model"].as_str().unwrap_or("unknown CPU")),
        esc(env["arch"].as_str().unwrap_or("architecture not recorded")),
        esc(env["kernel"].as_str().unwrap_or("unknown")),
        esc(env["os"].as_str().unwrap_or("")),
        esc(env["virtualization"]["mode"].as_str().unwrap_or("unknown")),
        esc(env["edgebench_commit"].as_str().unwrap_or("unknown")),
    );
    let edge_link = if m.edge.measured { "<a href=\"#edge\">Edge</a>" } else { "" };
    let _ = writeln!(out, "<nav><a href=\"#summary\">Summary</a><a href=\"#key\">Key figures</a><a href=\"#plots\">Plots</a><a href=\"#metrics\">All metrics</a><a href=\"#quality\">Data quality</a><a href=\"#throughput\">Throughput</a><a href=\"#scaling\">Scaling</a><a href=\"#firewall\">Firewall</a>{edge_link}<a href=\"#methods\">Methods</a></nav>");
    summary_section(&mut out, &m.summary);
    key_figures(&mut out, &m.cells);
    plots_section(&mut out, &m.cells);
    metric_tables(&mut out, m);
    html_sections::quality(&mut out, m);
    out.push_str(&html_sections::throughput(m));
    out.push_str(&html_sections::scaling(m));
    out.push_str(&html_sections::firewall(m));
    out.push_str(&html_sections::edge(m));
    methods_section(&mut out, m);
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

pub(super) fn td(s: &str) -> String {
    format!("<td>{}</td>", esc(s))
}

pub(super) fn td_num(s: &str) -> String {
    format!("<td class=\"num\">{}</td>", esc(s))
}

/// Every workload × runtime × variant × firewall profile, in report order.
fn configs(cells: &[Cell]) -> Vec<Config> {
    let mut keys: Vec<Config> = cells.iter().map(Config::of_cell).collect();
    keys.sort_by(|a, b| a.order().cmp(&b.order()));
    keys.dedup();
    keys
}

fn find<'a>(cells: &'a [Cell], key: &Config, metric: &str, phase: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.metric == metric && c.phase == phase && Config::of_cell(c) == *key)
}

fn key_figures(out: &mut String, cells: &[Cell]) {
    let base = super::findings::baseline_name(cells);
    out.push_str(&format!("<section id=\"key\"><h2>Key figures</h2>\n<p class=\"def\">Medians with their 95% interval; ratios to {base} with a bootstrap 95% interval. Memory is the PSS after boot.</p>\n"));
    out.push_str(&key_figures_table(cells));
    out.push_str("</section>\n");
}

/// The key figures of one campaign, a row per configuration (ratios to its baseline).
pub(super) fn key_figures_table(cells: &[Cell]) -> String {
    // The ratio column is against the campaign's baseline, native unless it names another.
    let base = esc(super::findings::baseline_name(cells));
    let mut out = format!("<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>runtime (variant)</th><th>cold start ms</th><th>× {base}</th><th>warm start ms</th><th>keep-alive p50 / p99 ms</th><th>new-conn p50 ms</th><th>memory MiB</th></tr></thead><tbody>\n");
    for key in configs(cells) {
        let get = |m: &str, p: &str| find(cells, &key, m, p).filter(|c| c.n > 0);
        let cold = find(cells, &key, "cold_start", "");
        let (cold_s, ratio_s) = match cold {
            Some(c) if c.n > 0 => (format::median_with_ci(c), format::ratio(c)),
            Some(c) => (format!("failed ({})", c.failed), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let warm = match find(cells, &key, "warm_start", "") {
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
            td(&key.workload),
            td(&profile_config(&key.runtime, &key.variant, &key.conditions())),
            td_num(&cold_s),
            td_num(&ratio_s),
            td_num(&warm),
            td_num(&ka),
            td_num(&nc),
            td_num(&mem)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn figure(svg: String, caption: &str) -> String {
    format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", esc(caption))
}

/// A figure drawn at its own size (text in the SVG at its set size).
pub(super) fn fixed_figure(svg: String, caption: &str) -> String {
    format!("<figure class=\"fixed\">{svg}<figcaption>{}</figcaption></figure>\n", esc(caption))
}

/// A figure of an x–y plot, its legend between plot and caption.
pub(super) fn xy_figure(svg: String, series: &[plots::Series], caption: &str) -> String {
    format!("<figure>{svg}{}<figcaption>{}</figcaption></figure>\n", plots::legend_html(series), esc(caption))
}

fn plots_section(out: &mut String, cells: &[Cell]) {
    out.push_str("<section id=\"plots\"><h2>Plots</h2>\n");
    let colors = config_colors(cells);
    let color = |c: &Cell| color_of(&colors, &Config::of_cell(c));
    let rows_of = |metric: &str, phase: &str| -> Vec<&Cell> {
        let mut v: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric && c.phase == phase && c.n > 0).collect();
        v.sort_by(|a, b| {
            let order = |c: &Cell| super::format::conditions_order(&c.conditions());
            (&a.workload, !a.is_baseline, &a.runtime, &a.variant, order(a)).cmp(&(
                &b.workload,
                !b.is_baseline,
                &b.runtime,
                &b.variant,
                order(b),
            ))
        });
        v
    };
    let row_label = |c: &Cell| format!("{} · {}", c.workload, profile_config(&c.runtime, &c.variant, &c.conditions()));

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
                    label: profile_config(&c.runtime, &c.variant, &c.conditions()),
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

fn metric_tables(out: &mut String, m: &Model) {
    let cells = &m.cells;
    let base = m.campaign.baseline();
    out.push_str(&format!("<section id=\"metrics\"><h2>All metrics</h2>\n<p class=\"def\">n: successful samples (trials, where a trial gives several). p (Holm): Mann–Whitney against {base} on per-trial values, Holm-adjusted over the whole report; * marks p &lt; 0.05. δ: Cliff's δ against {base} (positive: larger than native). Noise: half-width of the 95% interval of the per-trial median; trials for ±5%: about how many trials would narrow it to ±5% (beyond 10× the trials, a quieter host or a fix for a bimodal start helps more than more trials).</p>\n"));
    for d in &m.definitions {
        let (metric, definition) = (d.metric.as_str(), d.definition.as_str());
        let mut rows: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric).collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| {
            (&a.workload, &a.phase, !a.is_baseline, &a.runtime, &a.variant).cmp(&(
                &b.workload,
                &b.phase,
                !b.is_baseline,
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
        let _ = writeln!(out, "<div class=\"scroll\"><table><thead><tr><th>workload</th><th>runtime (variant)</th>{phase_th}<th>n</th><th>median [95% CI]</th><th>p99 [95% CI]</th><th>× {base} [95% CI]</th><th>p (Holm)</th><th>Cliff's δ</th><th>noise</th><th>trials for ±5%</th></tr></thead><tbody>");
        for c in rows {
            let phase = if phases { td(&c.phase) } else { String::new() };
            if c.n == 0 {
                let _ = writeln!(
                    out,
                    "<tr>{}{}{phase}{}<td colspan=\"7\" class=\"muted\">{}</td></tr>",
                    td(&c.workload),
                    td(&profile_config(&c.runtime, &c.variant, &c.conditions())),
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
                td(&profile_config(&c.runtime, &c.variant, &c.conditions())),
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

/// "runtime (variant)", with the firewall profile when it is not `off` and
/// the edge profile when it is not `none` (`conditions` as `Cell::conditions`).
pub(super) fn profile_config(runtime: &str, variant: &str, conditions: &str) -> String {
    let (firewall, edge) = super::format::split_conditions(conditions);
    let mut out = config(runtime, variant);
    if firewall != "off" {
        out.push_str(&format!(", firewall {firewall}"));
    }
    if let Some(edge) = edge {
        out.push_str(&format!(", edge {edge}"));
    }
    out
}

/// A stable colour per runtime × variant × profile, the baseline first (the
/// same colours as the plots above when every profile is `off`).
pub(super) fn config_colors(cells: &[Cell]) -> BTreeMap<(String, String, String), usize> {
    let baseline = cells.iter().find(|c| c.is_baseline).map_or(BASELINE, |c| c.runtime.as_str());
    let mut keys: Vec<(&str, &str, String)> =
        cells.iter().map(|c| (c.runtime.as_str(), c.variant.as_str(), c.conditions())).collect();
    keys.sort_by(|a, b| {
        (a.0 != baseline, a.0, a.1, super::format::conditions_order(&a.2)).cmp(&(
            b.0 != baseline,
            b.0,
            b.1,
            super::format::conditions_order(&b.2),
        ))
    });
    keys.dedup();
    keys.into_iter().enumerate().map(|(i, (r, v, f))| ((r.to_string(), v.to_string(), f), i)).collect()
}

pub(super) fn color_of(colors: &BTreeMap<(String, String, String), usize>, key: &Config) -> usize {
    colors.get(&(key.runtime.clone(), key.variant.clone(), key.conditions())).copied().unwrap_or(0)
}

fn methods_section(out: &mut String, m: &Model) {
    out.push_str("<section id=\"methods\"><h2>Methods</h2>\n<ul>\n");
    for item in &m.methods {
        let _ = writeln!(out, "<li>{}</li>", super::methods::inline_html(item));
    }
    out.push_str("</ul>\n<h3>Metric definitions (t0 → t1)</h3>\n<table><tbody>\n");
    for d in &m.definitions {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            esc(&d.metric),
            super::methods::inline_html(&d.definition)
        );
    }
    out.push_str("</tbody></table>\n<h3>Runtimes</h3>\n<div class=\"scroll\"><table><thead><tr><th>runtime</th><th>variant</th><th>measured</th><th>version</th><th>path or reason</th></tr></thead><tbody>\n");
    for r in &m.runtimes {
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
    for r in &m.runtimes {
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
    for (k, v) in flatten(&m.campaign.environment, "") {
        let _ = writeln!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&k), esc(&v));
    }
    out.push_str("</tbody></table></div>\n<h3>Campaign options</h3>\n<div class=\"scroll\"><table><tbody>\n");
    for (k, v) in flatten(&m.campaign.config, "") {
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
    use crate::report::html_sections::{firewall as firewall_section, scaling, throughput};
    use crate::report::model::{empty_campaign, of_samples};
    use crate::store::{CampaignRow, RuntimeRow, Sample};

    fn throughput_section(samples: &[Sample]) -> String {
        throughput(&of_samples(empty_campaign(), vec![], samples.to_vec()))
    }

    fn scaling_section(samples: &[Sample]) -> String {
        scaling(&of_samples(empty_campaign(), vec![], samples.to_vec()))
    }

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
        render(&of_samples(campaign, runtimes, vec![]))
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
        let ok = value.is_some() && !error.starts_with("no rate") && !error.starts_with("start failed");
        Sample {
            runtime: runtime.into(),
            variant: if runtime == BASELINE { "static-musl".into() } else { "precompiled-pooling".into() },
            workload: "hello".into(),
            metric: metric.into(),
            phase: phase.into(),
            firewall: firewall.into(),
            edge: "none".into(),
            repetition: rep,
            seq,
            value,
            unit: unit.into(),
            ts_ns: i64::from(rep * 1000 + seq),
            ok,
            // An ok sample's text is its detail (what stopped a density).
            error: if ok { String::new() } else { error.into() },
            detail: if ok { error.into() } else { String::new() },
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
        let html = throughput_section(&samples);
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
        let empty = throughput_section(&[]);
        assert!(empty.contains("class=\"no-data\""));
    }

    #[test]
    fn scaling_section_draws_k_curves_and_the_density_table() {
        let samples = throughput_and_scaling_samples();
        let html = scaling_section(&samples);
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
        let empty = scaling_section(&[]);
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
        let html = firewall_section(&of_samples(empty_campaign(), vec![], samples.clone()));
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
        let html = firewall_section(&of_samples(empty_campaign(), vec![], off_only));
        assert!(html.contains("class=\"no-data\"") && !html.contains("<svg"));
    }
}
