//! `edgebench compare A B`: two campaigns side by side, cell by cell: the
//! medians, the relative change with a bootstrap interval, a rank test on
//! per-trial values, and Firecracker's A/B rule for calling a change: p < 0.01
//! and a change larger than the 5% noise threshold.

use super::format::{self, config, html as esc, md, num};
use super::stats::{self, Bootstrap};
use super::{load, Cell, Model};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub const ALPHA: f64 = 0.01;
pub const NOISE_THRESHOLD: f64 = 0.05;
pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";
pub const COMPARE_JSON: &str = "compare.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// p < 0.01 and |change| > 5%.
    Changed,
    /// Significant, but within the noise threshold.
    WithinNoise,
    NotSignificant,
    /// So few trials that no p-value below 0.01 is possible.
    TooFewTrials,
}

impl Verdict {
    pub fn text(self, change: f64) -> String {
        match self {
            Verdict::Changed if change > 0.0 => "CHANGED: higher".into(),
            Verdict::Changed => "CHANGED: lower".into(),
            Verdict::WithinNoise => "within noise (≤ 5%)".into(),
            Verdict::NotSignificant => "no significant change".into(),
            Verdict::TooFewTrials => "too few trials to tell".into(),
        }
    }
}

/// The smallest two-sided p-value Mann–Whitney can give for sizes m and n
/// (all of one sample below all of the other): 2 / C(m+n, m).
pub fn smallest_p(m: usize, n: usize) -> f64 {
    let ln_choose = (1..=m).map(|i| (((n + i) as f64) / i as f64).ln()).sum::<f64>();
    (2.0 * (-ln_choose).exp()).min(1.0)
}

pub fn verdict(p: f64, change: f64, trials: (usize, usize)) -> Verdict {
    if smallest_p(trials.0, trials.1) >= ALPHA {
        Verdict::TooFewTrials
    } else if p >= ALPHA {
        Verdict::NotSignificant
    } else if change.abs() <= NOISE_THRESHOLD {
        Verdict::WithinNoise
    } else {
        Verdict::Changed
    }
}

#[derive(serde::Serialize)]
pub struct Row {
    pub runtime: String,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub phase: String,
    pub firewall: String,
    pub unit: String,
    pub median_a: f64,
    pub median_b: f64,
    pub trials: (usize, usize),
    /// median B / median A − 1, with its bootstrap 95% interval.
    pub change: f64,
    pub change_ci: (f64, f64),
    pub p: f64,
    pub cliffs_delta: f64,
    pub verdict: Verdict,
}

#[derive(serde::Serialize)]
pub struct Comparison {
    pub a: (PathBuf, String),
    pub b: (PathBuf, String),
    pub rows: Vec<Row>,
    /// Cells measured in only one campaign (or failed in one): key, where.
    pub unmatched: Vec<(String, &'static str)>,
    /// Environment entries that differ: key, A, B.
    pub environment: Vec<(String, String, String)>,
    /// What tells the two hosts apart (host name, CPU model, kernel): what,
    /// A, B. Not empty: the campaigns ran on different hosts, and every
    /// difference mixes host and runtime effects.
    pub across_hosts: Vec<(String, String, String)>,
}

/// runtime, variant, workload, metric, phase, firewall profile: a cell of
/// one profile is compared only with the same cell of the same profile.
type Key = (String, String, String, String, String, String);

fn key(c: &Cell) -> Key {
    (c.runtime.clone(), c.variant.clone(), c.workload.clone(), c.metric.clone(), c.phase.clone(), c.conditions())
}

/// The runtime and variant, with the firewall profile when there is one.
fn where_(runtime: &str, variant: &str, conditions: &str) -> String {
    let (firewall, edge) = conditions.split_once("; edge ").map_or((conditions, None), |(f, e)| (f, Some(e)));
    let mut parts = vec![config(runtime, variant)];
    if !matches!(firewall, "off" | "") {
        parts.push(format!("firewall {firewall}"));
    }
    if let Some(edge) = edge {
        parts.push(format!("edge {edge}"));
    }
    parts.join(" · ")
}

fn campaign(dir: &Path) -> Result<Model> {
    if !dir.is_dir() {
        bail!("{} is not a directory: give two campaign directories written by `edgebench run`", dir.display());
    }
    load(dir)
}

pub fn compare(a_dir: &Path, b_dir: &Path) -> Result<Comparison> {
    if a_dir.canonicalize().ok().is_some_and(|a| b_dir.canonicalize().ok() == Some(a)) {
        bail!("A and B are the same directory ({}): compare two different campaigns", a_dir.display());
    }
    let (a, b) = (campaign(a_dir)?, campaign(b_dir)?);
    let a_cells: BTreeMap<Key, &Cell> = a.cells.iter().map(|c| (key(c), c)).collect();
    let b_cells: BTreeMap<Key, &Cell> = b.cells.iter().map(|c| (key(c), c)).collect();
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for (k, ca) in &a_cells {
        let label = format!("{} · {} · {} {}", k.2, where_(&k.0, &k.1, &k.5), k.3, k.4).trim_end().to_string();
        match b_cells.get(k) {
            None => unmatched.push((label, "only in A")),
            Some(cb) if ca.n == 0 || cb.n == 0 => {
                if ca.n > 0 || cb.n > 0 {
                    unmatched.push((
                        label,
                        if ca.n == 0 { "no successful sample in A" } else { "no successful sample in B" },
                    ));
                }
            }
            Some(cb) => rows.push(row(ca, cb)),
        }
    }
    for (k, _) in b_cells.iter().filter(|(k, _)| !a_cells.contains_key(*k)) {
        unmatched.push((
            format!("{} · {} · {} {}", k.2, where_(&k.0, &k.1, &k.5), k.3, k.4).trim_end().to_string(),
            "only in B",
        ));
    }
    if rows.is_empty() {
        bail!(
            "{} and {} have no runtime × workload × metric measured in both: were they run with different --runtimes, --workloads or --metrics?",
            a_dir.display(),
            b_dir.display()
        );
    }
    Ok(Comparison {
        a: (a_dir.to_path_buf(), a.campaign.id.clone()),
        b: (b_dir.to_path_buf(), b.campaign.id.clone()),
        rows,
        unmatched,
        environment: environment_differences(&a.campaign.environment, &b.campaign.environment),
        across_hosts: crate::environment::host_differences(&a.campaign.environment, &b.campaign.environment),
    })
}

fn row(a: &Cell, b: &Cell) -> Row {
    let change = b.median / a.median - 1.0;
    let (lo, hi) = stats::ratio_of_medians_ci(&b.trials, &a.trials, Bootstrap::REPORT);
    let test = stats::mann_whitney(&b.trial_values, &a.trial_values);
    let p = test.map(|t| t.p).unwrap_or(1.0);
    let trials = (a.trial_values.len(), b.trial_values.len());
    Row {
        runtime: a.runtime.clone(),
        variant: a.variant.clone(),
        workload: a.workload.clone(),
        metric: a.metric.clone(),
        phase: a.phase.clone(),
        firewall: a.conditions(),
        unit: a.unit.clone(),
        median_a: a.median,
        median_b: b.median,
        trials,
        change,
        change_ci: (lo - 1.0, hi - 1.0),
        p,
        cliffs_delta: test.map(|t| t.cliffs_delta).unwrap_or(f64::NAN),
        verdict: verdict(p, change, trials),
    }
}

/// Entries of the environment manifests that differ, dotted keys.
pub fn environment_differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<(String, String, String)> {
    let (fa, fb) = (flatten(a, ""), flatten(b, ""));
    let mut keys: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (va, vb) = (fa.get(k).cloned().unwrap_or_default(), fb.get(k).cloned().unwrap_or_default());
            (va != vb).then(|| (k.clone(), va, vb))
        })
        .collect()
}

/// Every leaf of a JSON value by dotted key, as text.
pub(super) fn flatten(value: &serde_json::Value, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                out.extend(flatten(v, &if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }));
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
    out
}

const MAIN: &[(&str, &str)] = &[
    ("cold_start", ""),
    ("warm_start", ""),
    ("latency_keepalive", ""),
    ("latency_newconn", ""),
    ("memory_pss", "after_boot"),
    ("cpu_time", "boot"),
];

fn is_main(r: &Row) -> bool {
    MAIN.iter().any(|(m, p)| r.metric == *m && r.phase == *p)
}

fn shown(value: f64, unit: &str) -> String {
    let (v, u) = super::findings::shown(value, unit);
    format!("{} {u}", num(v))
}

fn change_text(r: &Row) -> String {
    format!("{:+.1}% [{:+.1}, {:+.1}]", r.change * 100.0, r.change_ci.0 * 100.0, r.change_ci.1 * 100.0)
}

impl Comparison {
    /// Cells whose change is significant and beyond the noise threshold.
    pub fn changed(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Changed).collect()
    }

    fn intro(&self) -> String {
        format!(
            "A = {} ({}), B = {} ({}). Per cell: medians, change = median B ÷ median A − 1 with a bootstrap 95% interval (trials resampled), two-sided Mann–Whitney on per-trial values. A change is called when p < {ALPHA} and |change| > {:.0}% (Firecracker's A/B rule; not corrected for the {} cells compared, so about 1% of unchanged cells may pass the p-value test by chance, and the noise threshold screens most of them). {} of {} cells changed.",
            self.a.0.display(),
            self.a.1,
            self.b.0.display(),
            self.b.1,
            NOISE_THRESHOLD * 100.0,
            self.rows.len(),
            self.changed().len(),
            self.rows.len()
        )
    }

    /// Said first when the campaigns ran on different hosts; None on one host.
    pub fn across_hosts_warning(&self) -> Option<String> {
        if self.across_hosts.is_empty() {
            return None;
        }
        let differs: Vec<String> =
            self.across_hosts.iter().map(|(what, a, b)| format!("{what}: A {a}, B {b}")).collect();
        Some(format!(
            "ACROSS HOSTS: A and B ran on different hosts ({}). Every difference below mixes host effects (hardware, \
             kernel, virtualisation, load) with runtime effects: it is not a runtime effect alone.",
            differs.join("; ")
        ))
    }

    /// The main metrics as an aligned text table, for the terminal.
    pub fn text_table(&self) -> String {
        let mut lines = vec![[
            "workload".to_string(),
            "runtime (variant)".into(),
            "metric".into(),
            "A median".into(),
            "B median".into(),
            "change [95% CI]".into(),
            "p".into(),
            "verdict".into(),
        ]];
        for r in self.rows.iter().filter(|r| is_main(r)) {
            lines.push([
                r.workload.clone(),
                where_(&r.runtime, &r.variant, &r.firewall),
                format!("{} {}", r.metric, r.phase).trim_end().to_string(),
                shown(r.median_a, &r.unit),
                shown(r.median_b, &r.unit),
                change_text(r),
                format::p_value(r.p),
                r.verdict.text(r.change),
            ]);
        }
        let widths: Vec<usize> =
            (0..8).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        if let Some(warning) = self.across_hosts_warning() {
            let _ = writeln!(out, "{warning}\n");
        }
        for l in &lines {
            let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        if !self.environment.is_empty() {
            let keys: Vec<&str> = self.environment.iter().map(|(k, _, _)| k.as_str()).collect();
            let _ = writeln!(out, "\nThe environments differ in: {} (values in compare.md).", keys.join(", "));
        }
        let _ = writeln!(
            out,
            "\n{} of {} cells changed (p < {ALPHA} and |change| > {:.0}%); every cell and metric: compare.md",
            self.changed().len(),
            self.rows.len(),
            NOISE_THRESHOLD * 100.0
        );
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("# edgebench compare\n\n");
        if let Some(warning) = self.across_hosts_warning() {
            let _ = writeln!(out, "> **{}**\n", md(&warning));
        }
        let _ = writeln!(out, "{}", md(&self.intro()));
        let changed = self.changed();
        out.push_str("\n## Changes\n\n");
        if changed.is_empty() {
            out.push_str("No cell changed by the rule above.\n");
        }
        for r in &changed {
            let _ = writeln!(
                out,
                "- {} · {} · {}: {} → {} ({}, p {})",
                md(&r.workload),
                md(&where_(&r.runtime, &r.variant, &r.firewall)),
                md(format!("{} {}", r.metric, r.phase).trim_end()),
                shown(r.median_a, &r.unit),
                shown(r.median_b, &r.unit),
                change_text(r),
                format::p_value(r.p)
            );
        }
        out.push_str("\n## Every cell\n\n| workload | runtime (variant) | metric | trials A / B | A median | B median | change [95% CI] | p | Cliff's δ | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {:+.2} | {} |",
                md(&r.workload),
                md(&where_(&r.runtime, &r.variant, &r.firewall)),
                md(format!("{} {}", r.metric, r.phase).trim_end()),
                r.trials.0,
                r.trials.1,
                shown(r.median_a, &r.unit),
                shown(r.median_b, &r.unit),
                change_text(r),
                format::p_value(r.p),
                r.cliffs_delta,
                r.verdict.text(r.change)
            );
        }
        if !self.unmatched.is_empty() {
            out.push_str("\n## Not compared\n\n");
            for (what, why) in &self.unmatched {
                let _ = writeln!(out, "- {}: {why}", md(what));
            }
        }
        out.push_str("\n## Environment differences\n\n");
        if self.environment.is_empty() {
            out.push_str("None: both campaigns recorded the same environment manifest.\n");
        } else {
            out.push_str("| entry | A | B |\n|---|---|---|\n");
            for (k, a, b) in &self.environment {
                let _ = writeln!(out, "| {} | {} | {} |", md(k), md(a), md(b));
            }
        }
        out
    }

    pub fn html(&self) -> String {
        let mut out = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>edgebench compare</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n<h1>edgebench compare</h1>\n{}<p class=\"meta\">{}</p>\n",
            super::html::STYLE,
            self.across_hosts_warning().map(|w| format!("<p class=\"flag\">{}</p>\n", esc(&w))).unwrap_or_default(),
            esc(&self.intro())
        );
        out.push_str("<h2>Every cell</h2>\n<div class=\"scroll\"><table><thead><tr><th>workload</th><th>runtime (variant)</th><th>metric</th><th>trials A / B</th><th>A median</th><th>B median</th><th>change [95% CI]</th><th>p</th><th>Cliff's δ</th><th>verdict</th></tr></thead><tbody>\n");
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| (r.verdict != Verdict::Changed, !is_main(r)));
        for r in rows {
            let class = if r.verdict == Verdict::Changed { " class=\"flag\"" } else { "" };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:+.2}</td><td{class}>{}</td></tr>",
                esc(&r.workload),
                esc(&where_(&r.runtime, &r.variant, &r.firewall)),
                esc(format!("{} {}", r.metric, r.phase).trim_end()),
                r.trials.0,
                r.trials.1,
                esc(&shown(r.median_a, &r.unit)),
                esc(&shown(r.median_b, &r.unit)),
                esc(&change_text(r)),
                esc(&format::p_value(r.p)),
                r.cliffs_delta,
                esc(&r.verdict.text(r.change))
            );
        }
        out.push_str("</tbody></table></div>\n");
        if !self.unmatched.is_empty() {
            out.push_str("<h2>Not compared</h2>\n<ul>\n");
            for (what, why) in &self.unmatched {
                let _ = writeln!(out, "<li>{}: {}</li>", esc(what), esc(why));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<h2>Environment differences</h2>\n");
        if self.environment.is_empty() {
            out.push_str("<p>None: both campaigns recorded the same environment manifest.</p>\n");
        } else {
            out.push_str(
                "<div class=\"scroll\"><table><thead><tr><th>entry</th><th>A</th><th>B</th></tr></thead><tbody>\n",
            );
            for (k, a, b) in &self.environment {
                let _ =
                    writeln!(out, "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>", esc(k), esc(a), esc(b));
            }
            out.push_str("</tbody></table></div>\n");
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }

    /// The comparison as JSON (`compare.json`, `compare --json`): every row
    /// with its medians, change and interval, p-value and verdict; cells
    /// measured in only one campaign; environment differences. Numbers that
    /// do not exist (NaN) are null.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "format": "edgebench-compare",
            "version": 1,
            "across_hosts": !self.across_hosts.is_empty(),
            "across_hosts_warning": self.across_hosts_warning(),
            "alpha": ALPHA,
            "noise_threshold": NOISE_THRESHOLD,
            "changed": self.changed().len(),
            "comparison": self,
        })
    }

    /// Writes compare.md, compare.html and compare.json into `out`; returns
    /// the paths of the first two.
    pub fn write(&self, out: &Path) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(out)?;
        let (md_path, html_path) = (out.join(COMPARE_MD), out.join(COMPARE_HTML));
        std::fs::write(&md_path, self.markdown())?;
        std::fs::write(&html_path, self.html())?;
        std::fs::write(out.join(COMPARE_JSON), serde_json::to_string_pretty(&self.json())?)?;
        Ok((md_path, html_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_p_is_two_over_the_binomial_coefficient() {
        // 2 / C(6, 3) = 0.1; 2 / C(10, 5) = 2/252; 2 / C(20, 10) = 2/184756.
        assert!((smallest_p(3, 3) - 0.1).abs() < 1e-12);
        assert!((smallest_p(5, 5) - 2.0 / 252.0).abs() < 1e-12);
        assert!((smallest_p(10, 10) - 2.0 / 184756.0).abs() < 1e-15);
    }

    #[test]
    fn a_change_needs_significance_and_more_than_the_noise_threshold() {
        assert_eq!(verdict(0.001, 0.20, (10, 10)), Verdict::Changed);
        assert_eq!(verdict(0.001, -0.03, (10, 10)), Verdict::WithinNoise);
        assert_eq!(verdict(0.02, 0.50, (10, 10)), Verdict::NotSignificant);
        assert_eq!(verdict(0.1, 0.50, (3, 3)), Verdict::TooFewTrials);
        assert_eq!(Verdict::Changed.text(-0.2), "CHANGED: lower");
    }

    #[test]
    fn environment_differences_are_listed_by_dotted_key() {
        let a = serde_json::json!({"kernel": "6.1", "virtualization": {"mode": "kvm"}, "cpus": 2});
        let b = serde_json::json!({"kernel": "6.1", "virtualization": {"mode": "tcg"}, "cpus": 2, "new": "x"});
        let d = environment_differences(&a, &b);
        assert_eq!(
            d,
            vec![
                ("new".to_string(), String::new(), "x".to_string()),
                ("virtualization.mode".to_string(), "kvm".to_string(), "tcg".to_string())
            ]
        );
    }

    #[test]
    fn bad_directories_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = compare(dir.path(), &dir.path().join("missing")).err().unwrap().to_string();
        assert!(
            err.contains("same directory")
                || err.contains("is it a campaign directory")
                || err.contains("not a directory"),
            "{err}"
        );
        let err = compare(&dir.path().join("missing"), dir.path()).err().unwrap().to_string();
        assert!(err.contains("not a directory"), "{err}");
        let other = tempfile::tempdir().unwrap();
        let err = compare(dir.path(), other.path()).err().unwrap().to_string();
        assert!(err.contains("is it a campaign directory"), "{err}");
        let err = compare(dir.path(), dir.path()).err().unwrap().to_string();
        assert!(err.contains("same directory"), "{err}");
    }
}
