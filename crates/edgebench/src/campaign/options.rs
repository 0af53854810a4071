//! What a campaign measures: stored with it, so that `--resume` repeats it exactly.

use crate::workload::UserWorkload;
use crate::Workload;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `cold_start` (+ `cold_start_accept`, `probe_interval`).
    ColdStart,
    /// `warm_start` (+ `warm_start_internal` where the runtime reports it).
    WarmStart,
    LatencyKeepalive,
    LatencyNewconn,
    /// `memory_rss`, `memory_pss`, `memory_pss_anon`, `memory_pss_file`.
    Memory,
    /// `cpu_time`, `cpu_idle`, and with throughput `cpu_per_request`.
    Cpu,
    /// `throughput` (closed loop; open loop under the latency objective) and
    /// the open-loop curve `open_loop_p99` / `open_loop_achieved`.
    Throughput,
    /// `scaling_start`, `scaling_rate` (concurrent starts) and `density`.
    Scaling,
}

impl Metric {
    /// The name `--metrics` and campaign files use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ColdStart => "cold_start",
            Metric::WarmStart => "warm_start",
            Metric::LatencyKeepalive => "latency_keepalive",
            Metric::LatencyNewconn => "latency_newconn",
            Metric::Memory => "memory",
            Metric::Cpu => "cpu",
            Metric::Throughput => "throughput",
            Metric::Scaling => "scaling",
        }
    }

    /// The default campaign: the primary metrics, memory and CPU.
    pub const DEFAULT: [Metric; 6] = [
        Metric::ColdStart,
        Metric::WarmStart,
        Metric::LatencyKeepalive,
        Metric::LatencyNewconn,
        Metric::Memory,
        Metric::Cpu,
    ];
    pub const ALL: [Metric; 8] = [
        Metric::ColdStart,
        Metric::WarmStart,
        Metric::LatencyKeepalive,
        Metric::LatencyNewconn,
        Metric::Memory,
        Metric::Cpu,
        Metric::Throughput,
        Metric::Scaling,
    ];

    /// Parses `--metrics`: sample metric names, or the groups `latency`,
    /// `memory`, `cpu` and `resources` (memory and CPU).
    pub fn parse_list(list: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let metrics: &[Metric] = match name {
                "cold_start" => &[Metric::ColdStart],
                "warm_start" => &[Metric::WarmStart],
                "latency" => &[Metric::LatencyKeepalive, Metric::LatencyNewconn],
                "latency_keepalive" => &[Metric::LatencyKeepalive],
                "latency_newconn" => &[Metric::LatencyNewconn],
                "memory" | "memory_rss" | "memory_pss" => &[Metric::Memory],
                "cpu" | "cpu_time" => &[Metric::Cpu],
                "resources" => &[Metric::Memory, Metric::Cpu],
                "throughput" => &[Metric::Throughput],
                "scaling" | "scaling_start" | "density" => &[Metric::Scaling],
                "all" => &Metric::ALL,
                other => bail!(
                    "unknown metric {other:?}: use cold_start, warm_start, latency (or latency_keepalive, latency_newconn), \
                     memory (memory_rss, memory_pss), cpu (cpu_time), resources, throughput, scaling or all"
                ),
            };
            out.extend_from_slice(metrics);
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            bail!("--metrics names no metric");
        }
        Ok(out)
    }
}

pub fn parse_workloads(list: &str) -> Result<Vec<Workload>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Workload::from_name(name) {
            Some(w) => out.push(w),
            None => {
                let known: Vec<&str> = Workload::all().iter().map(|w| w.name()).collect();
                bail!(
                    "unknown workload {name:?}: use {} (a workload of your own is declared in a campaign file, \
                     `[workload.NAME]`)",
                    known.join(", ")
                )
            }
        }
    }
    out.dedup();
    if out.is_empty() {
        bail!("--workloads names no workload");
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Options {
    /// `None`: every runtime edgebench knows (missing ones are recorded as not measured).
    pub runtimes: Option<Vec<String>>,
    pub workloads: Vec<Workload>,
    /// The definitions of the user workloads, by name: stored with the
    /// campaign, so that a resume or a re-run measures the same thing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_workloads: BTreeMap<String, UserWorkload>,
    pub metrics: Vec<Metric>,
    /// Trials (one cold start each) per runtime × variant × workload; with
    /// `precision`, the minimum.
    pub reps: u32,
    /// Adaptive repetitions: more trials for a configuration until its key
    /// cells' 95% interval of the per-trial median is within ± this fraction
    /// of the median (campaign/precision.rs). `None`: exactly `reps`, as
    /// every campaign stored before this option did.
    #[serde(default)]
    pub precision: Option<f64>,
    /// Adaptive repetitions stop at this many trials per configuration.
    #[serde(default = "default_max_reps")]
    pub max_reps: u32,
    /// Adaptive repetitions are scheduled only while the campaign (this run
    /// of it) has run less than this long (s); the planned `reps` always run.
    #[serde(default)]
    pub budget_s: Option<u64>,
    /// Measured requests per latency run (each trial, each mode).
    pub requests: usize,
    /// A latency run ends after its requests or after this long (ms),
    /// whichever comes first. `None`: no limit, as campaigns stored before it.
    #[serde(default)]
    pub latency_limit_ms: Option<u64>,
    /// Requests sent before a latency run and not recorded.
    pub warmup_requests: usize,
    /// Warm starts per trial.
    pub warm_starts: usize,
    pub seed: u64,
    /// Trials planned in rounds, one trial of every configuration per round
    /// (plan.rs); `false` in campaigns stored before, planned in one shuffle.
    #[serde(default)]
    pub planned_in_rounds: bool,
    pub out: Option<PathBuf>,
    /// One unrecorded launch per configuration before measuring.
    pub warmup: bool,
    #[serde(default)]
    pub load: LoadOptions,
    #[serde(default)]
    pub scaling: ScalingOptions,
    /// Firewall profiles, each a factor of the plan (`off` alone: no
    /// namespace and no rules, everything on 127.0.0.1 as before profiles).
    #[serde(default = "default_firewall")]
    pub firewall: Vec<String>,
    /// Edge profiles (CPU quota, memory cap), each a factor of the plan
    /// (`none` alone: unconstrained, as before profiles).
    #[serde(default = "default_edge")]
    pub edge: Vec<String>,
    /// Where the client and the system under test run (`--cpus`): `auto`,
    /// `shared` or `CLIENT/SUT` CPU lists (see `cpus::CpuPlan::resolve`).
    /// Options stored before CPU plans existed read as `shared` (what those
    /// campaigns did), so a resumed old campaign does not change its test bed.
    #[serde(default = "stored_before_cpu_plans")]
    pub cpus: String,
    /// Before each trial, wait at most this long (ms) for the runtime CPUs to be quiet.
    #[serde(default = "default_settle_max_ms")]
    pub settle_max_ms: u64,
    /// How long a start may take before it counts as failed (ms); `None`:
    /// each runtime's own limit (30 s for most, longer for micro-VMs).
    #[serde(default)]
    pub ready_timeout_ms: Option<u64>,
    /// The runtime every ratio and test is against.
    #[serde(default = "default_baseline")]
    pub baseline: String,
}

fn default_max_reps() -> u32 {
    40
}

/// The default precision target: ±5%, as the report's noise verdicts.
pub const DEFAULT_PRECISION: f64 = 0.05;

/// The default budget: a default campaign ends within about ten minutes
/// when its planned trials take less (they always run).
pub const DEFAULT_BUDGET_S: u64 = 600;

fn default_baseline() -> String {
    crate::store::BASELINE.to_string()
}

fn default_settle_max_ms() -> u64 {
    2000
}

fn default_cpus() -> String {
    "auto".into()
}

fn stored_before_cpu_plans() -> String {
    "shared".into()
}

fn default_firewall() -> Vec<String> {
    vec!["off".into()]
}

fn default_edge() -> Vec<String> {
    vec!["none".into()]
}

/// Throughput runs (per trial, with `--metrics throughput`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Connections of the closed and open loops.
    pub connections: usize,
    /// Length of the closed-loop run and of each open-loop step (ms).
    pub duration_ms: u64,
    /// The latency objective of the rate search: p99 at most this (ms).
    pub slo_p99_ms: f64,
    /// Open-loop steps of the rate search.
    pub search_steps: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { connections: 16, duration_ms: 2000, slo_p99_ms: 10.0, search_steps: 6 }
    }
}

/// Scaling experiments (once per configuration and repetition, with `--metrics scaling`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScalingOptions {
    /// Repetitions of the scaling experiments (at most the campaign's reps).
    pub reps: u32,
    /// Concurrent starts are measured for K = 1, 2, 4, … up to this.
    pub max_concurrent: usize,
    /// Density stops at this many instances at most.
    pub max_instances: usize,
    /// Density of a runtime with many tenants in one instance (the embedded
    /// host) stops at this many tenants at most.
    #[serde(default = "default_max_tenants")]
    pub max_tenants: usize,
    /// Density stops when the instances' PSS together exceed this (MiB).
    pub memory_budget_mib: u64,
    /// Density stops when p99 latency of a short run on the newest instance exceeds this (ms).
    pub slo_p99_ms: f64,
}

fn default_max_tenants() -> usize {
    4000
}

impl Default for ScalingOptions {
    fn default() -> Self {
        ScalingOptions {
            reps: 1,
            max_concurrent: 16,
            max_instances: 1000,
            max_tenants: default_max_tenants(),
            memory_budget_mib: 4096,
            slo_p99_ms: 10.0,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtimes: None,
            workloads: Workload::BUILTIN.to_vec(),
            user_workloads: BTreeMap::new(),
            metrics: Metric::DEFAULT.to_vec(),
            reps: 10,
            // Exactly `reps` for a campaign built in code; `edgebench run`
            // turns precision on unless given --reps alone (Settings::resolve).
            precision: None,
            max_reps: default_max_reps(),
            budget_s: Some(DEFAULT_BUDGET_S),
            requests: 200,
            // A runtime that takes a second per request (a CPU-bound workload
            // in an emulated guest) would otherwise hold a trial for minutes.
            latency_limit_ms: Some(10_000),
            warmup_requests: 20,
            warm_starts: 20,
            seed: 1,
            planned_in_rounds: true,
            out: None,
            warmup: true,
            load: LoadOptions::default(),
            scaling: ScalingOptions::default(),
            firewall: default_firewall(),
            edge: default_edge(),
            cpus: default_cpus(),
            settle_max_ms: default_settle_max_ms(),
            ready_timeout_ms: None,
            baseline: default_baseline(),
        }
    }
}

impl Options {
    /// Makes the user workloads of a stored configuration known by name:
    /// before its workload list is read back.
    pub fn register_user_workloads(config: &serde_json::Value) -> Result<()> {
        let Some(map) = config.get("user_workloads") else { return Ok(()) };
        let map: BTreeMap<String, UserWorkload> = serde_json::from_value(map.clone())?;
        for (name, mut w) in map {
            w.name = name;
            Workload::register(w)?;
        }
        Ok(())
    }

    pub fn wants(&self, metric: Metric) -> bool {
        self.metrics.contains(&metric)
    }

    /// Whether the campaign runs in its own namespace behind firewall
    /// profiles (then `off` is measured there too, with no rules, so that
    /// every delta compares the same path with and without rules).
    pub fn uses_firewall(&self) -> bool {
        self.firewall.iter().any(|p| p != "off")
    }

    /// Whether the campaign runs in its own namespace: behind firewall
    /// profiles, or over the emulated link of `net-*` edge profiles (then
    /// every trial crosses that link, unshaped under the other profiles).
    pub fn uses_network(&self) -> bool {
        self.uses_firewall() || crate::edge::uses_link(&self.edge)
    }

    /// Whether trials run under edge profiles other than `none`.
    pub fn uses_edge(&self) -> bool {
        self.edge.iter().any(|p| p != "none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metric_groups_and_rejects_unknown_names() {
        assert_eq!(
            Metric::parse_list("latency,cold_start").unwrap(),
            vec![Metric::ColdStart, Metric::LatencyKeepalive, Metric::LatencyNewconn]
        );
        let err = Metric::parse_list("speed").unwrap_err().to_string();
        assert!(err.contains("unknown metric \"speed\""), "{err}");
        assert!(parse_workloads("hello,nope").is_err());
    }

    #[test]
    fn options_round_trip_through_json() {
        let o = Options { workloads: vec![Workload::KV], ..Options::default() };
        let back: Options = serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(back.workloads, vec![Workload::KV]);
        assert_eq!(back.metrics, o.metrics);
        // Options stored before firewall profiles existed read as `off` only.
        let mut old = serde_json::to_value(&o).unwrap();
        old.as_object_mut().unwrap().remove("firewall");
        old.as_object_mut().unwrap().remove("cpus");
        let back: Options = serde_json::from_value(old).unwrap();
        assert_eq!(back.firewall, vec!["off"]);
        assert_eq!(back.cpus, "shared", "campaigns from before CPU plans ran unpinned");
        assert_eq!(Options::default().cpus, "auto");
        assert!(!back.uses_firewall());
    }
}
