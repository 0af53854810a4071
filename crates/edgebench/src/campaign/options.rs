//! What a campaign measures: stored with it, so that `--resume` repeats it exactly.

use crate::Workload;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
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
    /// `cpu_time`.
    Cpu,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::ColdStart,
        Metric::WarmStart,
        Metric::LatencyKeepalive,
        Metric::LatencyNewconn,
        Metric::Memory,
        Metric::Cpu,
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
                "all" => &Metric::ALL,
                other => bail!(
                    "unknown metric {other:?}: use cold_start, warm_start, latency (or latency_keepalive, latency_newconn), \
                     memory (memory_rss, memory_pss), cpu (cpu_time), resources or all"
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
            None => bail!("unknown workload {name:?}: use hello, cpu, echo or kv"),
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
    pub metrics: Vec<Metric>,
    /// Trials (one cold start each) per runtime × variant × workload.
    pub reps: u32,
    /// Measured requests per latency run (each trial, each mode).
    pub requests: usize,
    /// Requests sent before a latency run and not recorded.
    pub warmup_requests: usize,
    /// Warm starts per trial.
    pub warm_starts: usize,
    pub seed: u64,
    pub out: Option<PathBuf>,
    /// One unrecorded launch per configuration before measuring.
    pub warmup: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtimes: None,
            workloads: Workload::ALL.to_vec(),
            metrics: Metric::ALL.to_vec(),
            reps: 10,
            requests: 200,
            warmup_requests: 20,
            warm_starts: 20,
            seed: 1,
            out: None,
            warmup: true,
        }
    }
}

impl Options {
    pub fn wants(&self, metric: Metric) -> bool {
        self.metrics.contains(&metric)
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
        let o = Options { workloads: vec![Workload::Kv], ..Options::default() };
        let back: Options = serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(back.workloads, vec![Workload::Kv]);
        assert_eq!(back.metrics, o.metrics);
    }
}
