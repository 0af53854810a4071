//! One summary cell per runtime × variant × workload × metric × phase ×
//! firewall profile.

use super::checks::{self, FirstK};
use super::significance::{self, Versus};
use super::stats::{self, Bootstrap, Noise};
use crate::store::Sample;
use crate::store::BASELINE;
use std::collections::BTreeMap;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Cell {
    pub runtime: String,
    /// This is the campaign's baseline runtime (ratios and tests are against it).
    pub is_baseline: bool,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub phase: String,
    /// The firewall profile (`off`: none).
    pub firewall: String,
    /// The edge profile (`none`: unconstrained).
    pub edge: String,
    pub unit: String,
    /// Successful samples.
    pub n: usize,
    /// Samples that record a failure (or "not applicable").
    pub failed: usize,
    pub median: f64,
    /// 95% interval of the median: see [`MedianInterval`].
    pub median_ci: (f64, f64),
    pub median_ci_coverage: f64,
    pub median_ci_method: MedianInterval,
    pub p90: f64,
    pub p99: f64,
    /// Bootstrap 95% interval of p99, resampling whole trials.
    pub p99_ci: (f64, f64),
    pub p999: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub cv: f64,
    /// median / the baseline's median for the same workload, metric, phase
    /// and firewall profile, with a bootstrap 95% interval (trials resampled).
    pub ratio: Option<(f64, f64, f64)>,
    /// The first error if any sample failed, else the first detail text.
    pub note: String,
    /// Every successful value, sorted (not exported: `trials` holds them all).
    #[serde(skip)]
    pub values: Vec<f64>,
    /// Values of each trial in the order taken, trials in the order they ran.
    pub trials: Vec<Vec<f64>>,
    /// The repetition number of each entry of `trials`.
    pub trial_reps: Vec<u32>,
    /// One value per trial (its median when a trial has several): the unit
    /// of replication for tests, noise and outlier flags.
    pub trial_values: Vec<f64>,
    pub noise: Option<Noise>,
    /// Repetitions whose trial value is a MAD outlier (flagged, kept).
    pub outlier_reps: Vec<u32>,
    pub first_k: Option<FirstK>,
    /// Rank test against the baseline (Holm-adjusted over the whole report).
    pub vs_baseline: Option<Versus>,
    /// The network path the instance was reached on, in a campaign behind
    /// firewall profiles (`server-namespace`, `host-loopback`,
    /// `own-namespace`); empty otherwise. Cells are compared with the
    /// baseline (ratio, rank test) only on the same path.
    pub path: String,
    /// What the variant's cold start starts from (`launch`, or
    /// `deploy-on-running-host`): findings rank only starts of one kind.
    pub start_kind: String,
    /// What `cpu_time` of this runtime × variant counts (empty: not recorded).
    pub cpu_scope: String,
}

impl Cell {
    /// The trial's conditions: the firewall profile, then `; edge P` under an edge profile.
    pub fn conditions(&self) -> String {
        if self.edge == "none" || self.edge.is_empty() {
            self.firewall.clone()
        } else {
            format!("{}; edge {}", self.firewall, self.edge)
        }
    }
}

/// How a cell's median interval is computed: the unit of replication is
/// the trial (a cold start, a launch), never the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MedianInterval {
    /// One value per trial: distribution-free, from order statistics of the
    /// trial values (exact binomial coverage, stated when below 95%).
    OrderStatistics,
    /// Several correlated values per trial (requests of a latency run, warm
    /// starts): percentile bootstrap of the pooled median, whole trials resampled.
    TrialBootstrap,
    /// Several values per trial but fewer than [`MIN_TRIALS_FOR_CLUSTERED_CI`]
    /// trials: no honest interval.
    TooFewTrials,
}

/// Below this many trials, a trial bootstrap cannot stand for the spread between trials.
pub const MIN_TRIALS_FOR_CLUSTERED_CI: usize = 3;

impl Cell {
    pub fn key(&self) -> (&str, &str, &str, &str, &str) {
        (&self.runtime, &self.variant, &self.workload, &self.metric, &self.phase)
    }

    /// Several values per trial (latency runs, warm starts).
    pub fn pooled(&self) -> bool {
        self.trials.iter().any(|t| t.len() > 1)
    }
}

type Key = (String, String, String, String, String, String, String);

/// With fewer trials a median absolute deviation says little: no flags.
pub const MIN_TRIALS_FOR_OUTLIERS: usize = 5;

pub fn summarize(samples: &[Sample]) -> Vec<Cell> {
    summarize_on_paths(samples, &Paths::new(), BASELINE)
}

/// Network path of each runtime × variant (see [`Cell::path`]).
pub type Paths = std::collections::HashMap<(String, String), String>;

/// The paths of a campaign behind firewall profiles, from its environment
/// (`test_bed`); empty for a campaign without profiles (or from before paths
/// were stored), where every runtime is compared with the baseline.
pub fn paths(campaign: &crate::store::CampaignRow) -> Paths {
    let profiles = campaign.config["firewall"].as_array();
    if !profiles.is_some_and(|p| p.iter().any(|p| p != "off")) {
        return Paths::new();
    }
    test_bed_field(campaign, "placement")
}

/// Each runtime × variant's `test_bed` entry `field` (e.g. `cpu_scope`), where recorded.
pub fn test_bed_field(campaign: &crate::store::CampaignRow, field: &str) -> Paths {
    let stored = campaign.environment["test_bed"]["runtimes"].as_object();
    stored
        .into_iter()
        .flatten()
        .filter_map(|(key, v)| {
            let (runtime, variant) = key.split_once('/')?;
            Some(((runtime.to_string(), variant.to_string()), v[field].as_str()?.to_string()))
        })
        .collect()
}

/// Each runtime × variant's start kind, from the campaign's environment
/// (`test_bed`); campaigns stored before kinds were recorded: wasmCloud's
/// `deploy-*` variants deploy onto a running host, the rest launch.
pub fn start_kinds(campaign: &crate::store::CampaignRow) -> Paths {
    let mut kinds = test_bed_field(campaign, "start_kind");
    if kinds.is_empty() {
        for v in ["deploy-cold", "deploy-warm"] {
            kinds.insert(("wasmcloud".into(), v.into()), "deploy-on-running-host".into());
        }
    }
    kinds
}

pub fn summarize_on_paths(samples: &[Sample], paths: &Paths, baseline: &str) -> Vec<Cell> {
    let mut groups: BTreeMap<Key, Vec<&Sample>> = BTreeMap::new();
    // Open-loop search steps are curve points (the model's throughput
    // curves): bisection visits other rates in each trial.
    for s in samples.iter().filter(|s| !crate::store::is_search_step(&s.phase)) {
        let key = (
            s.runtime.clone(),
            s.variant.clone(),
            s.workload.clone(),
            s.metric.clone(),
            s.phase.clone(),
            s.firewall.clone(),
            s.edge.clone(),
        );
        groups.entry(key).or_default().push(s);
    }
    let mut cells: Vec<Cell> = groups.into_iter().map(|(key, group)| cell(key, &group)).collect();
    for c in &mut cells {
        c.path = paths.get(&(c.runtime.clone(), c.variant.clone())).cloned().unwrap_or_default();
        c.is_baseline = c.runtime == baseline;
    }
    add_ratios(&mut cells);
    significance::against_baseline(&mut cells);
    cells
}

fn add_ratios(cells: &mut [Cell]) {
    // (workload, metric, phase, firewall, edge) → the baseline's trials and path.
    type Baseline = BTreeMap<(String, String, String, String, String), (Vec<Vec<f64>>, String)>;
    let baseline: Baseline = cells
        .iter()
        .filter(|c| c.is_baseline && c.n > 0)
        .map(|c| {
            (
                (c.workload.clone(), c.metric.clone(), c.phase.clone(), c.firewall.clone(), c.edge.clone()),
                (c.trials.clone(), c.path.clone()),
            )
        })
        .collect();
    for c in cells.iter_mut().filter(|c| c.n > 0) {
        let key = (c.workload.clone(), c.metric.clone(), c.phase.clone(), c.firewall.clone(), c.edge.clone());
        let Some((base, base_path)) = baseline.get(&key) else { continue };
        if *base_path != c.path {
            // Another network path: a ratio would compare paths, not runtimes.
            continue;
        }
        let mut pooled: Vec<f64> = base.concat();
        pooled.sort_by(f64::total_cmp);
        let base_median = stats::median(&pooled);
        if base_median > 0.0 {
            let (lo, hi) = stats::ratio_of_medians_ci(&c.trials, base, Bootstrap::REPORT);
            c.ratio = Some((c.median / base_median, lo, hi));
        }
    }
}

/// Successful values grouped by repetition: trials in the order they ran
/// (the campaign interleaves them randomly), values in the order taken.
fn trials_in_time_order(group: &[&Sample]) -> (Vec<u32>, Vec<Vec<f64>>) {
    let mut by_rep: BTreeMap<u32, Vec<&Sample>> = BTreeMap::new();
    for s in group.iter().filter(|s| s.ok && s.value.is_some()) {
        by_rep.entry(s.repetition).or_default().push(s);
    }
    let mut trials: Vec<(i64, u32, Vec<f64>)> = by_rep
        .into_iter()
        .map(|(rep, mut samples)| {
            samples.sort_by_key(|s| (s.seq, s.ts_ns));
            let start = samples.iter().map(|s| s.ts_ns).min().unwrap_or_default();
            (start, rep, samples.iter().filter_map(|s| s.value).collect())
        })
        .collect();
    trials.sort_by_key(|t| (t.0, t.1));
    trials.into_iter().map(|(_, rep, values)| (rep, values)).unzip()
}

fn cell(key: Key, group: &[&Sample]) -> Cell {
    // Samples of an interrupted trial that ran again are kept but not counted.
    let group: Vec<&Sample> = group.iter().copied().filter(|s| !s.error.starts_with("superseded")).collect();
    let mut values: Vec<f64> = group.iter().filter(|s| s.ok).filter_map(|s| s.value).collect();
    values.sort_by(f64::total_cmp);
    let failed = group.iter().filter(|s| !s.ok).count();
    // A failure's error, else the detail an ok sample carries (e.g. what limited density).
    let note = group
        .iter()
        .find(|s| !s.ok)
        .map(|s| s.error.clone())
        .or_else(|| group.iter().find(|s| !s.detail.is_empty()).map(|s| s.detail.clone()))
        .unwrap_or_default();
    let unit = group.iter().find(|s| s.ok).map(|s| s.unit.clone()).unwrap_or_default();
    let (runtime, variant, workload, metric, phase, firewall, edge) = key;
    let (trial_reps, trials) = trials_in_time_order(&group);
    let nan2 = (f64::NAN, f64::NAN);
    let mut c = Cell {
        is_baseline: false,
        runtime,
        variant,
        workload,
        metric,
        phase,
        firewall,
        edge,
        unit,
        n: values.len(),
        failed,
        median: f64::NAN,
        median_ci: nan2,
        median_ci_coverage: f64::NAN,
        median_ci_method: MedianInterval::OrderStatistics,
        p90: f64::NAN,
        p99: f64::NAN,
        p99_ci: nan2,
        p999: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
        mean: f64::NAN,
        cv: f64::NAN,
        ratio: None,
        note,
        values: Vec::new(),
        trial_values: trials.iter().map(|t| trial_value(t)).collect(),
        trials,
        trial_reps,
        noise: None,
        outlier_reps: Vec::new(),
        first_k: None,
        vs_baseline: None,
        path: String::new(),
        start_kind: "launch".into(),
        cpu_scope: String::new(),
    };
    if values.is_empty() {
        return c;
    }
    c.median = stats::median(&values);
    if c.pooled() {
        // Requests of one trial share its instance, its placement, its
        // moment: treating them as independent gives an interval far too narrow.
        if c.trials.len() >= MIN_TRIALS_FOR_CLUSTERED_CI {
            c.median_ci = stats::quantile_ci(&c.trials, 0.5, Bootstrap::REPORT);
            c.median_ci_coverage = 0.95;
            c.median_ci_method = MedianInterval::TrialBootstrap;
        } else {
            c.median_ci_method = MedianInterval::TooFewTrials;
        }
    } else {
        let (lo, hi, coverage) = stats::median_ci(&values, 0.95);
        c.median_ci = (lo, hi);
        c.median_ci_coverage = coverage;
    }
    c.p90 = stats::quantile(&values, 0.90);
    c.p99 = stats::quantile(&values, 0.99);
    c.p99_ci = stats::quantile_ci(&c.trials, 0.99, Bootstrap::REPORT);
    c.p999 = stats::quantile(&values, 0.999);
    c.min = values[0];
    c.max = values[values.len() - 1];
    c.mean = stats::mean(&values);
    c.cv = stats::cv(&values);
    c.values = values;
    c.noise = stats::noise(&c.trial_values);
    if c.trial_values.len() >= MIN_TRIALS_FOR_OUTLIERS {
        c.outlier_reps = stats::mad_outliers(&c.trial_values).into_iter().map(|i| c.trial_reps[i]).collect();
    }
    c.first_k = checks::first_k(&c.trials);
    c
}

/// A trial's value: its only sample, or the median of its samples.
fn trial_value(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    stats::median(&sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(runtime: &str, variant: &str, values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                runtime: runtime.into(),
                variant: variant.into(),
                workload: "hello".into(),
                metric: "cold_start".into(),
                phase: String::new(),
                firewall: "host".into(),
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
            .collect()
    }

    #[test]
    fn runtimes_on_another_network_path_get_no_ratio_or_test_against_native() {
        let mut all = samples("native", "static-musl", &[1.0, 1.1, 0.9, 1.0, 1.2, 1.05]);
        all.extend(samples("docker", "bridge", &[300.0, 310.0, 290.0, 305.0, 320.0, 299.0]));
        all.extend(samples("wasmtime-embedded", "precompiled-pooling", &[3.0, 3.1, 2.9, 3.3, 3.0, 3.2]));
        let key = |r: &str, v: &str| (r.to_string(), v.to_string());
        let paths: Paths = [
            (key("native", "static-musl"), "server-namespace".to_string()),
            (key("docker", "bridge"), "host-loopback".to_string()),
            (key("wasmtime-embedded", "precompiled-pooling"), "server-namespace".to_string()),
        ]
        .into();
        let cells = summarize_on_paths(&all, &paths, BASELINE);
        let cell = |r: &str| cells.iter().find(|c| c.runtime == r).unwrap();
        assert!(cell("docker").ratio.is_none() && cell("docker").vs_baseline.is_none(), "another path");
        assert!(cell("wasmtime-embedded").ratio.is_some() && cell("wasmtime-embedded").vs_baseline.is_some());
        // Without paths (no firewall profiles) every runtime is compared.
        let cells = summarize(&all);
        assert!(cells.iter().filter(|c| c.runtime != BASELINE).all(|c| c.ratio.is_some()));
    }

    #[test]
    fn a_latency_median_interval_comes_from_trials_not_from_pooled_requests() {
        // Three trials of 200 requests each, every trial around its own level:
        // requests pooled as independent would give an interval about ±0.02 wide.
        let mut all = Vec::new();
        for (rep, level) in [(1u32, 1.0), (2, 2.0), (3, 3.0)] {
            for seq in 0..200u32 {
                let mut s = samples("native", "static-musl", &[level + f64::from(seq % 10) * 0.001]).remove(0);
                s.metric = "latency_keepalive".into();
                s.repetition = rep;
                s.seq = seq;
                s.ts_ns = i64::from(rep * 1000 + seq);
                all.push(s);
            }
        }
        let cells = summarize(&all);
        let c = &cells[0];
        assert_eq!(c.median_ci_method, MedianInterval::TrialBootstrap);
        assert!(c.median_ci.0 <= 1.1 && c.median_ci.1 >= 2.9, "{:?}", c.median_ci);
        // With two trials there is no honest interval.
        let two: Vec<Sample> = all.iter().filter(|s| s.repetition < 3).cloned().collect();
        let c = &summarize(&two)[0];
        assert_eq!(c.median_ci_method, MedianInterval::TooFewTrials);
        assert!(c.median_ci.0.is_nan());
    }
}
