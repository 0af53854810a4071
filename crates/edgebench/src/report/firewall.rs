//! The firewall part of the report: each profile's rules and apply time,
//! the host's ruleset check, and every metric's median under each profile
//! with its difference to `off` (bootstrap 95% interval), as a table in
//! report.md, as data (`firewall_deltas.csv`) and as a chart
//! (`firewall_deltas.svg`).

use super::{stats, Cell};
use crate::store::Sample;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

pub const DELTAS_CSV: &str = "firewall_deltas.csv";
pub const DELTAS_SVG: &str = "firewall_deltas.svg";

/// The metrics compared across profiles, in report order.
const METRICS: [&str; 6] =
    ["cold_start", "warm_start", "latency_keepalive", "latency_newconn", "throughput", "firewall_apply"];
/// The metrics drawn in the chart.
pub const CHART_METRICS: [&str; 4] = ["cold_start", "warm_start", "latency_keepalive", "latency_newconn"];
const RESAMPLES: usize = 1000;
const SEED: u64 = 0xf1ae;

/// Sort key of a profile name (`off`, `host`, `rules-N`, `set-N`, each
/// but `off` with a `-notrack` twin): `off` first, then by kind and size,
/// the `-notrack` variant after its tracked twin; unknown names last.
pub fn profile_order(name: &str) -> (u8, usize, bool, String) {
    let (base, notrack) = name.strip_suffix("-notrack").map_or((name, false), |b| (b, true));
    let (kind, size) = match base.split_once('-') {
        _ if base == "off" => (0, 0),
        _ if base == "host" => (1, 0),
        Some(("rules", n)) => (2, n.parse().unwrap_or(usize::MAX)),
        Some(("set", n)) => (3, n.parse().unwrap_or(usize::MAX)),
        _ => (4, 0),
    };
    (kind, size, notrack, name.to_string())
}

/// One metric under one profile, against the same configuration under `off`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Delta {
    pub workload: String,
    pub runtime: String,
    pub variant: String,
    pub metric: String,
    pub phase: String,
    pub unit: String,
    pub profile: String,
    /// The other factor's level, the same on both sides (edge profile of a
    /// firewall delta, firewall profile of an edge delta).
    pub held: String,
    pub n: usize,
    pub median: f64,
    pub median_ci: (f64, f64),
    pub off_median: f64,
    /// median − off's median, with a 95% interval from a bootstrap over
    /// trials (see [`stats::difference_of_medians_cluster_ci`]).
    pub delta: f64,
    pub delta_ci: (f64, f64),
}

impl Delta {
    fn percent(&self, x: f64) -> f64 {
        100.0 * x / self.off_median
    }
}

type CellKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

/// The ok values of each cell, one cluster per trial (repetition).
fn trials_by_cell<'a>(samples: &'a [Sample], metrics: &[&str]) -> HashMap<CellKey<'a>, Vec<Vec<f64>>> {
    let mut by_cell: HashMap<CellKey<'_>, BTreeMap<u32, Vec<f64>>> = HashMap::new();
    for s in samples.iter().filter(|s| s.ok && metrics.contains(&s.metric.as_str())) {
        let Some(value) = s.value else { continue };
        let key = (&*s.runtime, &*s.variant, &*s.workload, &*s.metric, &*s.phase, &*s.firewall, &*s.edge);
        by_cell.entry(key).or_default().entry(s.repetition).or_default().push(value);
    }
    by_cell.into_iter().map(|(k, trials)| (k, trials.into_values().collect())).collect()
}

/// A factor of the experiment whose levels are compared with its reference
/// level, the other factors held the same.
pub struct Factor {
    /// The level every delta is taken against (`off`, `none`).
    pub reference: &'static str,
    pub level: fn(&Cell) -> &str,
    /// The other factor, held equal between the two sides.
    pub held: fn(&Cell) -> &str,
    pub metrics: &'static [&'static str],
}

pub const FIREWALL: Factor = Factor { reference: "off", level: |c| &c.firewall, held: |c| &c.edge, metrics: &METRICS };

/// Every compared metric under every profile but `off`, where `off` was
/// measured for the same configuration.
pub fn deltas(cells: &[Cell], samples: &[Sample]) -> Vec<Delta> {
    deltas_of(&FIREWALL, cells, samples)
}

/// Every compared metric at every level of `factor` but its reference, where
/// the reference was measured for the same configuration.
pub fn deltas_of(factor: &Factor, cells: &[Cell], samples: &[Sample]) -> Vec<Delta> {
    let metrics = factor.metrics;
    let trials = trials_by_cell(samples, metrics);
    let clusters = |c: &Cell| -> Vec<Vec<f64>> {
        let key = (&*c.runtime, &*c.variant, &*c.workload, &*c.metric, &*c.phase, &*c.firewall, &*c.edge);
        trials.get(&key).cloned().unwrap_or_default()
    };
    let mut out = Vec::new();
    let compared = |c: &&Cell| (factor.level)(c) != factor.reference && c.n > 0 && metrics.contains(&c.metric.as_str());
    for c in cells.iter().filter(compared) {
        let Some(off) = cells.iter().find(|o| {
            (factor.level)(o) == factor.reference
                && (factor.held)(o) == (factor.held)(c)
                && o.n > 0
                && (&o.runtime, &o.variant, &o.workload, &o.metric, &o.phase)
                    == (&c.runtime, &c.variant, &c.workload, &c.metric, &c.phase)
        }) else {
            continue;
        };
        out.push(Delta {
            workload: c.workload.clone(),
            runtime: c.runtime.clone(),
            variant: c.variant.clone(),
            metric: c.metric.clone(),
            phase: c.phase.clone(),
            unit: c.unit.clone(),
            profile: (factor.level)(c).to_string(),
            held: (factor.held)(c).to_string(),
            n: c.n,
            median: c.median,
            median_ci: c.median_ci,
            off_median: off.median,
            delta: c.median - off.median,
            delta_ci: stats::difference_of_medians_cluster_ci(&clusters(c), &clusters(off), 0.95, RESAMPLES, SEED),
        });
    }
    let metric_order = |m: &str| metrics.iter().position(|x| *x == m).unwrap_or(metrics.len());
    out.sort_by(|a, b| {
        (metric_order(&a.metric), &a.phase, &a.workload, &a.runtime, &a.variant, profile_order(&a.profile)).cmp(&(
            metric_order(&b.metric),
            &b.phase,
            &b.workload,
            &b.runtime,
            &b.variant,
            profile_order(&b.profile),
        ))
    });
    out
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", fmt(x))
    } else {
        fmt(x)
    }
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// The report.md section; empty when the campaign ran no profile but `off`.
pub fn section(m: &super::Model) -> String {
    let f = &m.firewall;
    if !f.measured {
        return String::new();
    }
    let mut out = String::from("\n## Behind a host firewall\n\n");
    let target = m.campaign.environment["link"]["target"].as_str();
    if let (Some(n), Some(target)) = (&f.network, target) {
        let _ = writeln!(
            out,
            "Instances ran on the remote target `{}`, listening on {} (service ports {}), and were reached from the \
             client at {} over the link. Every profile was applied there by edgebench's agent, in the target's own \
             ruleset: our table's chain hooks prerouting at priority -150 (after conntrack, before Docker's DNAT, so \
             a published container port is behind the same rules as a process) and is entered only by packets in on \
             `{}` to the service ports; the target's other traffic passes it untouched, and its own rules (compared \
             before and after, below) stay in force. Every profile, `off` included, measured this same path. {} on \
             the target (`nft -j -f -`, rules built as JSON); apply times are the target's clock. A `-notrack` \
             profile leaves its packets untracked, so no NAT applies to them: a container published through NAT is \
             then reached through Docker's userland proxy instead.\n",
            esc(target),
            esc(&n.server_addr),
            esc(&n.service_ports),
            if n.client_addr.is_empty() { "(unknown address)".to_string() } else { esc(&n.client_addr) },
            esc(&n.host_if),
            esc(&n.nft_version)
        );
    } else if let Some(n) = &f.network {
        // A campaign with link profiles joins the namespace by the emulated link, not a veth.
        let linked = m.campaign.config["edge"]
            .as_array()
            .is_some_and(|e| e.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("net-"))));
        let path = if linked {
            format!(
                "over the emulated link of the edge profiles (TUN devices `{}`/`{}` joined by edgebench's link \
                 emulator, see \"Under edge conditions\")",
                esc(&n.host_if),
                esc(&n.ns_if)
            )
        } else {
            format!("over the veth pair `{}`/`{}` with static neighbour entries", esc(&n.host_if), esc(&n.ns_if))
        };
        let _ = writeln!(
            out,
            "Instances of process runtimes ran inside the network namespace `{}` (server address {}), reached from the \
             host namespace, where edgebench's probe and load generator run (client address {}), {path}; service \
             ports {}. Every profile, `off` included, measured this same path: `off` is the namespace with no rules. \
             {} (`nft -j -f -`, rules built as JSON).\n",
            esc(&n.netns),
            esc(&n.server_addr),
            esc(&n.client_addr),
            esc(&n.service_ports),
            esc(&n.nft_version)
        );
    }
    out.push_str(
        "The trial's profile is applied just before its cold start, every trial (trials of all profiles interleaved \
         in the campaign's seeded order): `rules-N` puts N non-matching `ip saddr A drop` rules (198.18.0.0/15) after \
         the `ct state established,related accept` and before the service-port accept, so with conntrack only a \
         connection's first packets walk them; `set-N` looks the same N addresses up in one set; `-notrack` profiles \
         untrack every packet, so every packet walks the chain. Δ is the profile's median minus `off`'s median for the \
         same runtime, variant and workload, with a 95% interval from a bootstrap over trials (1000 resamples, fixed \
         seed): each resample draws the trials of both sides with replacement and pools their samples, so the \
         interval includes the variation between trials (e.g. a trial's CPU placement), not only between requests; \
         for one-per-trial metrics (cold start) it is the plain bootstrap. With few trials these intervals are wide, \
         and honestly so.\n\n",
    );

    out.push_str(
        "### Profiles\n\n| profile | placement | rules before the service accept | apply ms, median [95% CI] (n) | rules (sha256 of the JSON) | ruleset in force (sha256) |\n|---|---|---|---|---|---|\n",
    );
    for r in &f.profiles {
        let apply = match f.apply.iter().find(|a| a.profile == r.profile) {
            Some(a) => format!("{} [{}, {}] ({})", fmt(a.median), fmt(a.median_ci.0), fmt(a.median_ci.1), a.n),
            None => "–".to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {apply} | `{}` | `{}` |",
            esc(&r.profile),
            esc(&r.placement),
            r.rules_before_accept,
            &r.definition_sha256[..16.min(r.definition_sha256.len())],
            &r.ruleset_sha256[..16.min(r.ruleset_sha256.len())]
        );
    }
    out.push_str(
        "\nThe exact rules of every profile are in `results.sqlite`, table `firewall_profiles` (the JSON applied).\n",
    );

    out.push_str("\n### The host's ruleset\n\n");
    out.push_str("`nft -j -s list ruleset` of the host namespace without our tables, hashed (SHA-256, handles and counters left out) per table and per chain:\n\n");
    for r in &f.host_rulesets {
        let mut notes = String::new();
        if !r.changed.is_empty() {
            let _ = write!(notes, " — **changed: {}**", esc(&r.changed));
        }
        if !r.docker.is_empty() {
            let _ = write!(
                notes,
                " — Docker's per-container chains changed (containers started or stopped meanwhile): {}",
                esc(&r.docker)
            );
        }
        if r.moment == "after" && notes.is_empty() {
            notes.push_str(" — identical");
        }
        let _ = writeln!(
            out,
            "- {} the campaign: `{}` ({} parts){notes}",
            if r.moment == "before" { "before" } else { "after" },
            &r.sha256[..16.min(r.sha256.len())],
            r.parts.as_object().map(|t| t.len()).unwrap_or(0)
        );
    }

    out.push_str("\n### Difference to `off`\n\n");
    let _ = writeln!(out, "![Δ to off per profile, % of off's median, with 95% intervals]({DELTAS_SVG})\n");
    let _ = writeln!(out, "Data of the chart and of this table: `{DELTAS_CSV}`.\n");
    out.push_str("| metric | workload | runtime | variant | profile | n | median [95% CI] | off median | Δ [95% CI] | Δ % |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for d in &f.deltas {
        let metric = if d.phase.is_empty() { d.metric.clone() } else { format!("{} ({})", d.metric, d.phase) };
        let _ = writeln!(
            out,
            "| {} {} | {} | {} | {} | {} | {} | {} [{}, {}] | {} | {} [{}, {}] | {}% |",
            esc(&metric),
            esc(&d.unit),
            esc(&d.workload),
            esc(&d.runtime),
            esc(&d.variant),
            esc(&d.profile),
            d.n,
            fmt(d.median),
            fmt(d.median_ci.0),
            fmt(d.median_ci.1),
            fmt(d.off_median),
            signed(d.delta),
            signed(d.delta_ci.0),
            signed(d.delta_ci.1),
            signed(d.percent(d.delta))
        );
    }
    out
}

/// `firewall_deltas.csv`: one row per metric × configuration × profile.
pub fn deltas_csv(deltas: &[Delta]) -> String {
    let mut out = String::from(
        "metric,phase,unit,workload,runtime,variant,profile,n,median,median_ci_low,median_ci_high,off_median,delta,delta_ci_low,delta_ci_high,delta_percent,delta_percent_ci_low,delta_percent_ci_high\n",
    );
    let num = |x: f64| if x.is_finite() { format!("{x:.6}") } else { String::new() };
    for d in deltas {
        let text = [&d.metric, &d.phase, &d.unit, &d.workload, &d.runtime, &d.variant, &d.profile].map(|s| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.clone()
            }
        });
        let numbers = [
            d.median,
            d.median_ci.0,
            d.median_ci.1,
            d.off_median,
            d.delta,
            d.delta_ci.0,
            d.delta_ci.1,
            d.percent(d.delta),
            d.percent(d.delta_ci.0),
            d.percent(d.delta_ci.1),
        ]
        .map(num);
        let _ = writeln!(out, "{},{},{}", text.join(","), d.n, numbers.join(","));
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `firewall_deltas.svg`: per metric, Δ to `off` in % of `off`'s median
/// with its 95% interval, one row per workload × runtime × profile.
pub fn chart_svg(deltas: &[Delta]) -> String {
    const WIDTH: f64 = 760.0;
    const LABEL: f64 = 300.0;
    const ROW: f64 = 18.0;
    const TITLE: f64 = 30.0;
    let plot = WIDTH - LABEL - 30.0;
    let mut body = String::new();
    let mut y = 10.0;
    for metric in CHART_METRICS {
        let rows: Vec<&Delta> = deltas.iter().filter(|d| d.metric == metric && d.off_median > 0.0).collect();
        if rows.is_empty() {
            continue;
        }
        let extent = rows
            .iter()
            .flat_map(|d| [d.percent(d.delta_ci.0).abs(), d.percent(d.delta_ci.1).abs(), d.percent(d.delta).abs()])
            .filter(|x| x.is_finite())
            .fold(1.0, f64::max)
            * 1.1;
        let x_of = |p: f64| LABEL + plot * (p.clamp(-extent, extent) + extent) / (2.0 * extent);
        let _ = writeln!(
            body,
            r#"<text x="4" y="{:.1}" font-weight="bold">{} (Δ to off, % of off's median; axis ±{:.0}%)</text>"#,
            y + 16.0,
            xml(metric),
            extent
        );
        y += TITLE;
        let top = y;
        for d in &rows {
            let label = format!("{} · {} · {}", d.workload, d.runtime, d.profile);
            let (lo, hi, mid) =
                (x_of(d.percent(d.delta_ci.0)), x_of(d.percent(d.delta_ci.1)), x_of(d.percent(d.delta)));
            let colour = if d.delta_ci.0 > 0.0 {
                "#c0392b"
            } else if d.delta_ci.1 < 0.0 {
                "#27ae60"
            } else {
                "#555"
            };
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><line x1="{lo:.1}" x2="{hi:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><circle cx="{mid:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{}: {}% [{}, {}]</title></circle>"#,
                LABEL - 8.0,
                y + 12.0,
                xml(&label),
                y + 8.0,
                y + 8.0,
                y + 8.0,
                xml(&label),
                fmt(d.percent(d.delta)),
                fmt(d.percent(d.delta_ci.0)),
                fmt(d.percent(d.delta_ci.1))
            );
            y += ROW;
        }
        let zero = x_of(0.0);
        let _ = writeln!(
            body,
            r##"<line x1="{zero:.1}" x2="{zero:.1}" y1="{:.1}" y2="{y:.1}" stroke="#999" stroke-dasharray="3,3"/><text x="{LABEL:.1}" y="{:.1}" fill="#777">−{extent:.0}%</text><text x="{:.1}" y="{:.1}" fill="#777" text-anchor="end">+{extent:.0}%</text>"##,
            top - 4.0,
            y + 12.0,
            LABEL + plot,
            y + 12.0
        );
        y += 24.0;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{:.0}\" viewBox=\"0 0 {WIDTH} {:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        y + 10.0,
        y + 10.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(firewall: &str, metric: &str, values: Vec<f64>) -> Cell {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        let (lo, hi, _) = stats::median_ci(&values, 0.95);
        Cell {
            is_baseline: true,
            runtime: "native".into(),
            variant: "v".into(),
            workload: "hello".into(),
            metric: metric.into(),
            phase: String::new(),
            firewall: firewall.into(),
            edge: "none".into(),
            unit: "ms".into(),
            n: values.len(),
            failed: 0,
            median: stats::median(&values),
            median_ci: (lo, hi),
            median_ci_coverage: 0.95,
            median_ci_method: crate::report::summary::MedianInterval::OrderStatistics,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            cv: 0.0,
            ratio: None,
            note: String::new(),
            p99_ci: (0.0, 0.0),
            trials: values.iter().map(|v| vec![*v]).collect(),
            trial_reps: (1..=values.len() as u32).collect(),
            trial_values: values.clone(),
            noise: None,
            outlier_reps: Vec::new(),
            first_k: None,
            vs_baseline: None,
            path: String::new(),
            start_kind: "launch".into(),
            cpu_scope: String::new(),
            values,
        }
    }

    #[test]
    fn deltas_pair_each_profile_with_off_and_render() {
        let cells = vec![
            cell("off", "cold_start", vec![1.0, 1.1, 0.9, 1.0, 1.05]),
            cell("rules-1000", "cold_start", vec![1.5, 1.6, 1.4, 1.5, 1.55]),
            cell("host", "memory_pss", vec![1.0]),
            cell("host", "latency_keepalive", vec![0.02; 5]),
        ];
        // One sample per trial, as cold starts are stored.
        let samples: Vec<Sample> = cells
            .iter()
            .flat_map(|c| {
                c.values.iter().enumerate().map(|(i, v)| Sample {
                    runtime: c.runtime.clone(),
                    variant: c.variant.clone(),
                    workload: c.workload.clone(),
                    metric: c.metric.clone(),
                    phase: c.phase.clone(),
                    firewall: c.firewall.clone(),
                    edge: "none".into(),
                    repetition: i as u32 + 1,
                    seq: 0,
                    value: Some(*v),
                    unit: c.unit.clone(),
                    ts_ns: 0,
                    ok: true,
                    error: String::new(),
                    detail: String::new(),
                })
            })
            .collect();
        let d = deltas(&cells, &samples);
        assert_eq!(d.len(), 1, "memory is not compared; latency has no off cell: {d:?}");
        assert!((d[0].delta - 0.5).abs() < 1e-12);
        assert!(d[0].delta_ci.0 > 0.0 && d[0].delta_ci.1 < 1.0, "{:?}", d[0].delta_ci);
        assert!((d[0].percent(d[0].delta) - 50.0).abs() < 1e-9);
        let csv = deltas_csv(&d);
        assert!(csv.lines().nth(1).unwrap().starts_with("cold_start,,ms,hello,native,v,rules-1000,5,1.5"), "{csv}");
        let svg = chart_svg(&d);
        assert!(svg.starts_with("<svg") && svg.contains("hello · native · rules-1000"), "{svg}");
        use crate::report::model::{empty_campaign, of_samples};
        let md = section(&of_samples(empty_campaign(), vec![], samples.clone()));
        assert!(md.contains("| cold_start ms | hello | native | v | rules-1000 | 5 |"), "{md}");
        let off: Vec<Sample> = samples.iter().filter(|s| s.firewall == "off").cloned().collect();
        assert!(section(&of_samples(empty_campaign(), vec![], off)).is_empty(), "no section without profiles");
        let mut names = vec!["set-10", "off", "rules-100-notrack", "host", "rules-100", "rules-10"];
        names.sort_by_key(|n| profile_order(n));
        assert_eq!(names, ["off", "host", "rules-10", "rules-100", "rules-100-notrack", "set-10"]);
    }
}
