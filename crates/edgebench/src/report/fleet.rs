//! The fleet report (`edgebench merge`, and `edgebench report` of a merged
//! directory): the hosts side by side; each host's own report, where
//! runtimes are compared within the host exactly as in any campaign; and
//! each runtime's key cells across hosts. A cross-host ratio sets machines
//! (hardware, kernel, virtualisation, load) against each other as much as
//! runtimes, so it is never shown without [`ACROSS_HOSTS_LEAD`].

use super::findings::{self, shown};
use super::format::{md, num};
use super::stats::{self, Bootstrap};
use super::{csv, is_key, load_campaign, markdown, Cell, Model, REPORT_HTML, REPORT_MD, SUMMARY_CSV};
use crate::environment;
use crate::store::{check_host_name, HostRow, Store};
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub const FLEET_JSON: &str = "fleet.json";
pub const FORMAT: &str = "edgebench-fleet";
pub const VERSION: u32 = 1;
/// Each host's campaign copy and own report: `hosts/<host>/`.
pub const HOSTS_DIR: &str = "hosts";

/// Said first wherever cross-host ratios are shown, then [`ACROSS_HOSTS_DETAIL`].
pub const ACROSS_HOSTS_LEAD: &str = "These ratios are across different machines.";
pub const ACROSS_HOSTS_DETAIL: &str = "Each is one host's median ÷ the reference host's median (the first host, in \
merge order, that measured the cell) for the same runtime, variant, workload and metric. The hosts differ in hardware, \
kernel, virtualisation and load, so a ratio here is not a runtime effect alone, and its bootstrap 95% interval (trials \
resampled) covers only the sampling noise of the two campaigns, not what differs between the machines. To compare \
runtimes, read each host's own report: there they ran side by side on one machine.";

/// One host of a fleet: its `hosts` row and its campaign's analysis.
pub struct Host {
    pub row: HostRow,
    pub model: Model,
}

/// Every host of the fleet in `dir`, in merge order.
pub fn load(dir: &Path) -> Result<Vec<Host>> {
    let store = Store::open_read_only(dir)?;
    let rows = store.hosts()?;
    if rows.is_empty() {
        bail!("{}: its table `hosts` is empty: merge the campaigns again with `edgebench merge`", dir.display());
    }
    rows.into_iter()
        .map(|row| {
            // The name becomes a directory: checked again, the file may have been edited.
            check_host_name(&row.host).with_context(|| format!("table `hosts` of {}", dir.display()))?;
            let model = load_campaign(dir, &row.campaign)?;
            Ok(Host { row, model })
        })
        .collect()
}

/// Writes every host's report into `out/hosts/<host>/` and the fleet report
/// (report.md, report.html, fleet.json, summary.csv) into `out`; returns the
/// fleet's report.html.
pub fn write_to(dir: &Path, out: &Path) -> Result<PathBuf> {
    let hosts = load(dir)?;
    for h in &hosts {
        super::write_model(&h.model, &out.join(HOSTS_DIR).join(&h.row.host))?;
    }
    let fleet = Fleet::build(&hosts);
    std::fs::write(out.join(SUMMARY_CSV), csv::render_by_host(&hosts))?;
    std::fs::write(out.join(REPORT_MD), render_markdown(&fleet, &hosts))?;
    std::fs::write(out.join(FLEET_JSON), serde_json::to_string_pretty(&fleet.json())?)?;
    let path = out.join(REPORT_HTML);
    std::fs::write(&path, super::fleet_html::render(&fleet, &hosts))?;
    Ok(path)
}

/// The fleet report's figures (`fleet.json` is this, serialized).
#[derive(Serialize)]
pub struct Fleet {
    pub hosts: Vec<FleetHost>,
    pub across_hosts: Across,
}

#[derive(Serialize)]
pub struct FleetHost {
    pub host: String,
    pub campaign: String,
    /// The campaign directory it was merged from.
    pub source: String,
    pub status: String,
    /// Of the machine the runtimes ran on (a remote-target campaign's target).
    pub cpu_model: Option<String>,
    pub logical_cpus: Option<u64>,
    pub memory_kib: Option<u64>,
    pub kernel: Option<String>,
    pub virtualization: Option<String>,
    pub edgebench_commit: Option<String>,
    /// "runtime (variant)" of every variant measured.
    pub runtimes_measured: Vec<String>,
    /// The runtimes ran on another machine than the client (environment `target`).
    pub remote_target: bool,
    /// The client–target link as recorded (environment `link`), dotted keys.
    pub link: Vec<(String, String)>,
    pub baseline: String,
    /// This host's report, relative to the fleet directory.
    pub report: String,
    /// Its key cells: figures within the host, ratios to its baseline.
    pub key_cells: Vec<KeyFigure>,
}

#[derive(Serialize)]
pub struct KeyFigure {
    pub workload: String,
    pub runtime: String,
    pub variant: String,
    pub firewall: String,
    pub metric: String,
    pub phase: String,
    pub unit: String,
    pub n: usize,
    pub failed: usize,
    pub median: f64,
    pub median_ci: Option<(f64, f64)>,
    pub is_baseline: bool,
    /// Ratio to this host's baseline with its interval: within the host.
    pub ratio_to_baseline: Option<(f64, f64, f64)>,
}

#[derive(Serialize)]
pub struct Across {
    /// [`ACROSS_HOSTS_LEAD`] and [`ACROSS_HOSTS_DETAIL`]: what every ratio below is.
    pub caption: String,
    pub rows: Vec<AcrossRow>,
}

/// One key cell (configuration, metric, phase) measured on two or more hosts.
#[derive(Serialize)]
pub struct AcrossRow {
    pub workload: String,
    pub runtime: String,
    pub variant: String,
    pub firewall: String,
    pub metric: String,
    pub phase: String,
    pub unit: String,
    pub reference_host: String,
    pub hosts: Vec<AcrossHost>,
}

#[derive(Serialize)]
pub struct AcrossHost {
    pub host: String,
    pub trials: usize,
    pub median: f64,
    pub median_ci: Option<(f64, f64)>,
    /// This host's median ÷ the reference host's, with a bootstrap 95%
    /// interval; None on the reference host's own row.
    pub ratio_to_reference: Option<(f64, f64, f64)>,
}

/// The cell's 95% median interval, where it has one.
fn interval(c: &Cell) -> Option<(f64, f64)> {
    (c.median_ci.0.is_finite() && c.median_ci.1.is_finite()).then_some(c.median_ci)
}

fn text(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

impl FleetHost {
    fn of(h: &Host) -> FleetHost {
        let (m, env) = (&h.model, &h.model.campaign.environment);
        let machine = environment::machine(env);
        let link = match &env["link"] {
            serde_json::Value::Null => Vec::new(),
            // The target and the two round trips' medians (the rest is in the host's own report).
            link => super::compare::flatten(link, "")
                .into_iter()
                .filter(|(k, _)| ["target", "tcp_connect_rtt_ms.median", "control_rtt_ms.median"].contains(&k.as_str()))
                .collect(),
        };
        FleetHost {
            host: h.row.host.clone(),
            campaign: m.campaign.id.clone(),
            source: h.row.source.clone(),
            status: m.campaign.status.clone(),
            cpu_model: text(&machine["cpu_model"]),
            logical_cpus: machine["logical_cpus"].as_u64(),
            memory_kib: machine["memory_kib"].as_u64(),
            kernel: text(&machine["kernel"]),
            virtualization: text(&machine["virtualization"]["mode"]),
            edgebench_commit: text(&env["edgebench_commit"]),
            runtimes_measured: m
                .runtimes
                .iter()
                .filter(|r| r.measured)
                .map(|r| super::format::config(&r.runtime, &r.variant))
                .collect(),
            remote_target: env["target"].is_object(),
            link,
            baseline: m.campaign.baseline().to_string(),
            report: format!("{HOSTS_DIR}/{}/{REPORT_HTML}", h.row.host),
            key_cells: m
                .cells
                .iter()
                .filter(|c| is_key(&c.metric, &c.phase))
                .map(|c| KeyFigure {
                    workload: c.workload.clone(),
                    runtime: c.runtime.clone(),
                    variant: c.variant.clone(),
                    firewall: c.firewall.clone(),
                    metric: c.metric.clone(),
                    phase: c.phase.clone(),
                    unit: c.unit.clone(),
                    n: c.n,
                    failed: c.failed,
                    median: c.median,
                    median_ci: interval(c),
                    is_baseline: c.is_baseline,
                    ratio_to_baseline: c.ratio,
                })
                .collect(),
        }
    }

    /// "8 GiB"-style memory, or "–".
    pub fn memory(&self) -> String {
        self.memory_kib.map_or("–".into(), |k| format!("{} GiB", num(k as f64 / 1024.0 / 1024.0)))
    }

    /// The link's figures, or what kind of campaign it was.
    pub fn link_text(&self) -> String {
        if !self.link.is_empty() {
            self.link.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ")
        } else if self.remote_target {
            "remote target (no link figures recorded)".into()
        } else {
            "– (runtimes on this host)".into()
        }
    }
}

/// Report order of the key metrics: the order the findings rank them in.
fn need_order(c: &Cell) -> usize {
    findings::NEEDS.iter().position(|n| n.metric == c.metric && n.phase == c.phase).unwrap_or(usize::MAX)
}

fn across(hosts: &[Host]) -> Vec<AcrossRow> {
    type Key = (String, String, String, String, String, String);
    let key = |c: &Cell| -> Key {
        (c.workload.clone(), c.runtime.clone(), c.variant.clone(), c.conditions(), c.metric.clone(), c.phase.clone())
    };
    // Every key cell with a median, by key, hosts in merge order.
    let mut by_key: Vec<(Key, Vec<(&str, &Cell)>)> = Vec::new();
    for h in hosts {
        for c in h.model.cells.iter().filter(|c| c.n > 0 && is_key(&c.metric, &c.phase)) {
            match by_key.iter_mut().find(|(k, _)| *k == key(c)) {
                Some((_, on)) => on.push((h.row.host.as_str(), c)),
                None => by_key.push((key(c), vec![(h.row.host.as_str(), c)])),
            }
        }
    }
    by_key.retain(|(_, on)| on.len() >= 2);
    by_key.sort_by(|(a, on_a), (b, on_b)| {
        let order =
            |k: &Key, c: &Cell| (k.0.clone(), need_order(c), k.5.clone(), k.1.clone(), k.2.clone(), k.3.clone());
        order(a, on_a[0].1).cmp(&order(b, on_b[0].1))
    });
    by_key
        .into_iter()
        .map(|((workload, runtime, variant, firewall, metric, phase), on)| {
            let (reference_host, reference) = on[0];
            AcrossRow {
                unit: reference.unit.clone(),
                reference_host: reference_host.to_string(),
                hosts: on
                    .iter()
                    .enumerate()
                    .map(|(i, (host, c))| AcrossHost {
                        host: host.to_string(),
                        trials: c.trials.len(),
                        median: c.median,
                        median_ci: interval(c),
                        ratio_to_reference: (i > 0 && reference.median > 0.0).then(|| {
                            let (lo, hi) = stats::ratio_of_medians_ci(&c.trials, &reference.trials, Bootstrap::REPORT);
                            (c.median / reference.median, lo, hi)
                        }),
                    })
                    .collect(),
                workload,
                runtime,
                variant,
                firewall,
                metric,
                phase,
            }
        })
        .collect()
}

impl Fleet {
    pub fn build(hosts: &[Host]) -> Fleet {
        Fleet {
            hosts: hosts.iter().map(FleetHost::of).collect(),
            across_hosts: Across { caption: format!("{ACROSS_HOSTS_LEAD} {ACROSS_HOSTS_DETAIL}"), rows: across(hosts) },
        }
    }

    /// `fleet.json`: the figures with the format's name and version.
    pub fn json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("format".into(), FORMAT.into());
        out.insert("version".into(), VERSION.into());
        if let serde_json::Value::Object(fleet) = serde_json::to_value(self).expect("the fleet serializes") {
            out.extend(fleet);
        }
        serde_json::Value::Object(out)
    }
}

/// A value in its shown unit with its interval where there is one.
pub(super) fn median_text(median: f64, ci: Option<(f64, f64)>, unit: &str) -> String {
    let (v, u) = shown(median, unit);
    match ci {
        Some((lo, hi)) => format!("{} {} [{}, {}]", num(v), u, num(shown(lo, unit).0), num(shown(hi, unit).0)),
        None => format!("{} {u} (no interval: too few trials)", num(v)),
    }
}

pub(super) fn ratio_text(h: &AcrossHost, reference: &str) -> String {
    match h.ratio_to_reference {
        None => "reference".into(),
        Some((r, lo, hi)) => format!("{}× [{}, {}] of {reference}", num(r), num(lo), num(hi)),
    }
}

/// "workload · runtime (variant) · metric phase".
pub(super) fn row_label(r: &AcrossRow) -> (String, String, String) {
    (
        r.workload.clone(),
        super::format::config_under(&r.runtime, &r.variant, &r.firewall),
        format!("{} {}", r.metric, r.phase).trim_end().to_string(),
    )
}

pub(super) const INTRO: &str = "Merged by `edgebench merge`: one campaign per host, every row of each kept in \
`results.sqlite` (table `hosts` names the host of each campaign). Every figure comes from those raw samples. Runtimes \
are compared with each other within each host, in that host's own report; the last section sets each runtime against \
itself across hosts, which compares machines as much as runtimes.";

fn render_markdown(f: &Fleet, hosts: &[Host]) -> String {
    let mut out = format!("# edgebench fleet report: {} host{}\n\n{INTRO}\n", f.hosts.len(), plural(f.hosts.len()));
    out.push_str("\n## Hosts\n\n| host | campaign | status | CPU | logical CPUs | memory | kernel | virtualisation | edgebench commit | runtimes measured | link to the target |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for h in &f.hosts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | `{}` | {} | {} |",
            md(&h.host),
            md(&h.campaign),
            md(&h.status),
            md(h.cpu_model.as_deref().unwrap_or("unknown")),
            h.logical_cpus.map_or("–".into(), |n| n.to_string()),
            h.memory(),
            md(h.kernel.as_deref().unwrap_or("unknown")),
            md(h.virtualization.as_deref().unwrap_or("unknown")),
            md(h.edgebench_commit.as_deref().unwrap_or("unknown")).replace('`', "'"),
            md(&h.runtimes_measured.join(", ")),
            md(&h.link_text()),
        );
    }
    out.push_str("\n## Within each host\n\nRuntimes side by side on one machine, as in any campaign report: medians with their 95% interval, ratios to that host's baseline runtime. Each host's full report (every metric, data quality, methods) is linked.\n");
    for (h, host) in f.hosts.iter().zip(hosts) {
        let _ = writeln!(
            out,
            "\n### {}\n\nReport: [{dir}/{md_file}]({dir}/{md_file}) ([HTML]({dir}/{REPORT_HTML})); campaign {}, baseline {}.\n",
            md(&h.host),
            md(&h.campaign),
            md(&h.baseline),
            dir = format!("{HOSTS_DIR}/{}", h.host),
            md_file = REPORT_MD,
        );
        out.push_str(&markdown::headline_table(&host.model.cells));
    }
    out.push_str("\n## Same runtime across hosts\n\n");
    let rows = &f.across_hosts.rows;
    if rows.is_empty() {
        out.push_str(&format!("{}\n", no_cross_host_cells(f.hosts.len())));
    } else {
        let _ = writeln!(out, "**{ACROSS_HOSTS_LEAD}** {}\n", md(ACROSS_HOSTS_DETAIL));
        out.push_str("| workload | runtime (variant) | metric | host | trials | median [95% CI] | ÷ reference host [95% CI] (across machines) |\n|---|---|---|---|---|---|---|\n");
        for r in rows {
            let (workload, config, metric) = row_label(r);
            for h in &r.hosts {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md(&workload),
                    md(&config),
                    md(&metric),
                    md(&h.host),
                    h.trials,
                    md(&median_text(h.median, h.median_ci, &r.unit)),
                    md(&ratio_text(h, &r.reference_host))
                );
            }
        }
    }
    out
}

pub(super) fn no_cross_host_cells(hosts: usize) -> String {
    if hosts < 2 {
        "One host only: nothing to set across hosts.".into()
    } else {
        "No key cell (same runtime, variant, workload, metric and firewall profile) has a median on two or more hosts."
            .into()
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{empty_campaign, of_samples};
    use crate::store::{CampaignRow, RuntimeRow, Sample};

    /// A host whose renderers are under test (made-up samples: nothing here is a measurement).
    fn host(name: &str, id: &str, environment: serde_json::Value, cold: &[f64]) -> Host {
        let samples = cold
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                runtime: "native".into(),
                variant: "static-musl".into(),
                workload: "hello".into(),
                metric: "cold_start".into(),
                phase: String::new(),
                firewall: "off".into(),
                edge: "none".into(),
                repetition: i as u32 + 1,
                seq: 0,
                value: Some(*v),
                unit: "ms".into(),
                ts_ns: i as i64,
                ok: true,
                error: String::new(),
                detail: String::new(),
            })
            .collect();
        let runtime = RuntimeRow {
            runtime: "native".into(),
            variant: "static-musl".into(),
            measured: true,
            version: "1".into(),
            path: "/bin/x".into(),
            reason: String::new(),
            notes: serde_json::json!({}),
        };
        let campaign = CampaignRow { id: id.into(), environment, ..empty_campaign() };
        Host {
            row: HostRow { campaign: id.into(), host: name.into(), source: format!("/runs/{name}") },
            model: of_samples(campaign, vec![runtime], samples),
        }
    }

    #[test]
    fn a_remote_target_host_is_described_by_its_target_and_link() {
        let env = serde_json::json!({
            "hostname": "laptop", "cpu_model": "Client CPU", "kernel": "6.1",
            "target": {"hostname": "edge-1", "cpu_model": "Edge CPU", "kernel": "6.6", "logical_cpus": 4,
                       "memory_kib": 4194304, "virtualization": {"mode": "hardware-kvm"}},
            "link": {"tcp_connect_rtt_ms": {"median": 0.21}, "control_rtt_ms": {"median": 0.5}, "target": "http://edge-1:7000"},
        });
        let hosts =
            [host("edge-1", "c1", env, &[1.0, 1.1, 0.9]), host("local", "c2", serde_json::json!({}), &[2.0, 2.2, 1.8])];
        let fleet = Fleet::build(&hosts);
        let h = &fleet.hosts[0];
        assert_eq!(
            (h.cpu_model.as_deref(), h.logical_cpus, h.kernel.as_deref()),
            (Some("Edge CPU"), Some(4), Some("6.6"))
        );
        assert_eq!(h.memory(), "4.00 GiB");
        assert!(h.remote_target);
        assert_eq!(
            h.link_text(),
            "control_rtt_ms.median: 0.5; target: http://edge-1:7000; tcp_connect_rtt_ms.median: 0.21"
        );
        assert_eq!(fleet.hosts[1].link_text(), "– (runtimes on this host)");
        let md = render_markdown(&fleet, &hosts);
        assert!(md.contains("tcp_connect_rtt_ms.median: 0.21") && md.contains("| Edge CPU |"), "{md}");
        // The cross-host row: the second host against the first, said to be across machines.
        let row = &fleet.across_hosts.rows[0];
        assert_eq!((row.metric.as_str(), row.reference_host.as_str()), ("cold_start", "edge-1"));
        let (ratio, lo, hi) = row.hosts[1].ratio_to_reference.unwrap();
        assert!((ratio - 2.0).abs() < 1e-9 && lo <= ratio && ratio <= hi, "{ratio} [{lo}, {hi}]");
        let across = &md[md.find("## Same runtime across hosts").unwrap()..];
        assert!(across.contains(ACROSS_HOSTS_LEAD) && across.contains("2.00× [") && across.contains("of edge-1"));
    }

    #[test]
    fn every_string_from_the_campaigns_is_escaped() {
        let hostile = "</td><script>alert('x')</script>|";
        let env = serde_json::json!({"cpu_model": hostile, "kernel": hostile, "link": {"target": hostile}});
        let hosts = [host("a", hostile, env, &[1.0, 1.2, 0.8])];
        let fleet = Fleet::build(&hosts);
        let html = super::super::fleet_html::render(&fleet, &hosts);
        assert!(!html.contains("<script") && html.contains("&lt;script&gt;"));
        let md = render_markdown(&fleet, &hosts);
        assert!(!md.contains("<script") && md.contains("\\|"));
        assert!(md.contains("One host only"));
    }
}
