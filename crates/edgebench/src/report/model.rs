//! The analysis model: every figure a report shows, computed once from a
//! campaign's samples. The exporters (report.md, report.html, summary.csv,
//! report.json) only render it; none of them reads a sample.
//!
//! Where each number is computed:
//! - a cell's estimates: `summary::cell` in [`super::summary`]. The median's
//!   95% interval: order statistics of the trial values
//!   ([`stats::median_ci`]) or, with several values per trial, a bootstrap
//!   of whole trials ([`stats::quantile_ci`] at 0.5); the p99's interval:
//!   [`stats::quantile_ci`] at 0.99, whole trials resampled; the ratio to
//!   native: [`stats::ratio_of_medians_ci`]; the rank test against native:
//!   [`super::significance`]; noise, outlier flags, warm-up check: `summary::cell`;
//! - findings and caveats: [`super::findings`];
//! - firewall deltas: [`super::firewall::deltas`];
//! - throughput rows and search curves, scaling curves, density, profile
//!   apply times, data quality and failures: this file.

use super::findings::{self, Summary};
use super::firewall::{self, Delta};
use super::stats;
use super::Cell;
use crate::store::{
    self, CampaignRow, FirewallProfileRow, HostRulesetRow, NetworkRow, RuntimeRow, Sample, Store, BASELINE,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The whole analysis of one campaign (`report.json` is this, serialized).
#[derive(Serialize)]
pub struct Model {
    pub campaign: CampaignRow,
    pub runtimes: Vec<RuntimeRow>,
    /// One per runtime × variant × workload × metric × phase × firewall
    /// profile; other parts of the model refer to cells by index.
    pub cells: Vec<Cell>,
    #[serde(flatten)]
    pub summary: Summary,
    pub methods: Vec<String>,
    /// Every metric the cells hold, in report order, with its definition.
    pub definitions: Vec<Definition>,
    pub quality: Quality,
    pub throughput: Throughput,
    pub scaling: Scaling,
    pub firewall: Firewall,
    pub edge: super::edge::Edge,
}

#[derive(Serialize)]
pub struct Definition {
    pub metric: String,
    pub definition: String,
}

/// What was measured: a workload on a runtime's variant under a firewall profile.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Config {
    pub workload: String,
    pub runtime: String,
    pub variant: String,
    pub firewall: String,
    pub edge: String,
}

impl Config {
    /// As [`Cell::conditions`].
    pub fn conditions(&self) -> String {
        if self.edge == "none" || self.edge.is_empty() {
            self.firewall.clone()
        } else {
            format!("{}; edge {}", self.firewall, self.edge)
        }
    }

    pub fn of_cell(c: &Cell) -> Config {
        Config {
            workload: c.workload.clone(),
            runtime: c.runtime.clone(),
            variant: c.variant.clone(),
            firewall: c.firewall.clone(),
            edge: c.edge.clone(),
        }
    }

    fn of_sample(s: &Sample) -> Config {
        Config {
            workload: s.workload.clone(),
            runtime: s.runtime.clone(),
            variant: s.variant.clone(),
            firewall: s.firewall.clone(),
            edge: s.edge.clone(),
        }
    }

    /// Report order: by workload, the baseline first, then runtime, variant
    /// and firewall profile.
    pub fn order(&self) -> impl Ord + '_ {
        (
            &self.workload,
            self.runtime != BASELINE,
            &self.runtime,
            &self.variant,
            super::format::conditions_order(&self.conditions()),
        )
    }
}

fn sorted_configs(mut configs: Vec<Config>) -> Vec<Config> {
    configs.sort_by(|a, b| a.order().cmp(&b.order()));
    configs.dedup();
    configs
}

/// Stated, not hidden: nothing here was removed from any figure.
#[derive(Serialize)]
pub struct Quality {
    /// What a key cell's interval was held to.
    pub precision: Precision,
    /// Cells the findings rank (cold and warm starts, latency, memory, CPU).
    pub key_cells: Vec<usize>,
    /// Of those, how many reached the target (95% interval of the per-trial
    /// median within ± `precision.target` of it).
    pub quiet_key_cells: usize,
    /// The key cells that did not, noisiest first.
    pub noisy_key_cells: Vec<usize>,
    /// Key cells with fewer trials than planned (`--reps`): the time budget
    /// ended the campaign first, or trials failed.
    pub below_planned_key_cells: usize,
    /// Per-trial values with |modified z| > 3.5, by cell.
    pub outliers: Vec<Outlier>,
    pub trial_values_checked: usize,
    /// Cells with enough trials or values for the warm-up check, and those it flagged.
    pub warmup_tested: usize,
    pub warmup_flagged: Vec<usize>,
    pub failures: Vec<FailureGroup>,
    /// Samples of interrupted trials that ran again: kept, in no figure.
    pub superseded: usize,
    /// Measurements a runtime cannot make (e.g. no warm start): kept, in no figure.
    pub not_applicable: usize,
}

/// The precision target of the key cells and how trials pursued it.
#[derive(Serialize)]
pub struct Precision {
    /// Relative half-width of the 95% interval of the per-trial median (the
    /// campaign's `--precision`; ±5% when adaptive repetitions were off).
    pub target: f64,
    /// Whether trials were added until the target was met (`--precision`).
    pub adaptive: bool,
    /// Planned trials per configuration (`--reps`).
    pub min_trials: u64,
    /// With adaptive repetitions: the cap per configuration (`--max-reps`)
    /// and the time budget in seconds (`--budget`; `None`: none).
    pub max_trials: Option<u64>,
    pub budget_s: Option<u64>,
}

impl Precision {
    fn of(campaign: &CampaignRow) -> Precision {
        let cfg = &campaign.config;
        let target = cfg["precision"].as_f64();
        Precision {
            target: target.unwrap_or(stats::NOISE_TARGET),
            adaptive: target.is_some(),
            min_trials: cfg["reps"].as_u64().unwrap_or(0),
            max_trials: target.and(cfg["max_reps"].as_u64()),
            budget_s: target.and(cfg["budget_s"].as_u64()),
        }
    }
}

#[derive(Serialize)]
pub struct Outlier {
    pub cell: usize,
    pub repetitions: Vec<u32>,
    /// Median of the cell's per-trial values.
    pub center: f64,
    /// The flagged value farthest from the center, as a fraction of it.
    pub largest_deviation: f64,
    /// More than a fifth of the trials flagged: a second mode, not stray values.
    pub second_mode: bool,
}

/// Failed samples of one configuration and metric.
#[derive(Serialize)]
pub struct FailureGroup {
    #[serde(flatten)]
    pub config: Config,
    pub metric: String,
    pub count: usize,
    pub first_error: String,
}

#[derive(Serialize)]
pub struct Throughput {
    /// The campaign stored throughput or open-loop samples.
    pub measured: bool,
    /// The open loop's latency objective (p99 < this many ms).
    pub objective_ms: Option<f64>,
    /// Connections of the closed loop (from its phase `closed-cN`).
    pub connections: Option<u32>,
    pub rows: Vec<ThroughputRow>,
    /// Every open-loop search step of every trial, by configuration.
    pub curves: Vec<SearchCurve>,
}

/// Cell indices of one configuration's throughput figures.
#[derive(Serialize)]
pub struct ThroughputRow {
    #[serde(flatten)]
    pub config: Config,
    /// Trials of the closed loop, failed ones included.
    pub trials: usize,
    pub closed: Option<usize>,
    pub closed_p50: Option<usize>,
    pub closed_p99: Option<usize>,
    pub cpu_per_request: Option<usize>,
    /// The highest rate meeting the objective (failed trials: none met it).
    pub open: Option<usize>,
}

#[derive(Serialize)]
pub struct SearchCurve {
    #[serde(flatten)]
    pub config: Config,
    pub trials: Vec<SearchTrial>,
}

#[derive(Serialize)]
pub struct SearchTrial {
    pub repetition: u32,
    /// In offered-rate order (the search visits them by bisection: `seq`).
    pub steps: Vec<SearchStep>,
}

#[derive(Serialize)]
pub struct SearchStep {
    pub seq: u32,
    /// req/s offered.
    pub offered: f64,
    /// Every metric of the step (`open_loop_p99`, `open_loop_achieved`, the
    /// load counters, …) → its value.
    pub values: BTreeMap<String, f64>,
    /// Fewer than 95% of the offered requests per second completed.
    pub saturated: bool,
}

impl SearchStep {
    pub fn p99_ms(&self) -> Option<f64> {
        self.values.get("open_loop_p99").copied()
    }
}

#[derive(Serialize)]
pub struct Scaling {
    /// The campaign stored scaling or density samples.
    pub measured: bool,
    /// `scaling_start` and `scaling_rate` against K, by configuration.
    pub curves: Vec<ScalingCurve>,
    pub density: Vec<DensityTrial>,
}

#[derive(Serialize)]
pub struct ScalingCurve {
    #[serde(flatten)]
    pub config: Config,
    pub metric: String,
    /// (K, cell index), by K.
    pub points: Vec<(f64, usize)>,
}

#[derive(Serialize)]
pub struct DensityTrial {
    #[serde(flatten)]
    pub config: Config,
    pub repetition: u32,
    /// Instances that fit; None: the experiment failed.
    pub instances: Option<f64>,
    /// What stopped it (or why it failed).
    pub stopped_by: String,
    /// The instances' total PSS at the stop ÷ their count.
    pub pss_per_instance_kib: Option<f64>,
    /// For comparison: the single instance's PSS after boot (its cell's median).
    pub pss_after_boot_kib: Option<f64>,
}

#[derive(Serialize)]
pub struct Firewall {
    /// The campaign ran a profile other than `off`.
    pub measured: bool,
    pub network: Option<NetworkRow>,
    pub profiles: Vec<FirewallProfileRow>,
    /// Time to apply each profile, pooled over configurations.
    pub apply: Vec<ApplyTime>,
    pub host_rulesets: Vec<HostRulesetRow>,
    pub deltas: Vec<Delta>,
}

#[derive(Serialize)]
pub struct ApplyTime {
    pub profile: String,
    pub n: usize,
    pub median: f64,
    pub median_ci: (f64, f64),
}

/// What a model is built from: the campaign's rows, as stored.
pub struct Inputs {
    pub campaign: CampaignRow,
    pub runtimes: Vec<RuntimeRow>,
    pub samples: Vec<Sample>,
    pub profiles: Vec<FirewallProfileRow>,
    pub networks: Vec<NetworkRow>,
    pub host_rulesets: Vec<HostRulesetRow>,
}

impl Inputs {
    pub fn read(store: &Store, campaign: CampaignRow) -> anyhow::Result<Inputs> {
        let id = campaign.id.clone();
        Ok(Inputs {
            runtimes: store.runtimes(&id)?,
            samples: store.samples(&id)?,
            profiles: store.firewall_profiles(&id)?,
            networks: store.networks(&id)?,
            host_rulesets: store.host_rulesets(&id)?,
            campaign,
        })
    }
}

impl Model {
    pub fn build(i: Inputs) -> Model {
        let cells = cells(&i.campaign, &i.samples);
        let summary = findings::summarize(&i.campaign, &i.runtimes, &cells, &i.samples);
        let comparisons = cells.iter().filter(|c| c.vs_baseline.is_some()).count();
        let methods = super::methods::items(&i.campaign, comparisons);
        let definitions = super::markdown::metrics_in_order(&cells)
            .into_iter()
            .map(|(m, d)| Definition { metric: m.to_string(), definition: d.to_string() })
            .collect();
        let quality = quality(&cells, &i.samples, Precision::of(&i.campaign));
        let throughput = throughput(&cells, &i.samples);
        let scaling = scaling(&cells, &i.samples);
        let firewall = Firewall {
            measured: !i.profiles.is_empty() || i.samples.iter().any(|s| s.firewall != "off"),
            network: i.networks.into_iter().next(),
            profiles: {
                let mut p = i.profiles;
                p.sort_by_key(|r| firewall::profile_order(&r.profile));
                p
            },
            apply: apply_times(&cells),
            host_rulesets: i.host_rulesets,
            deltas: firewall::deltas(&cells, &i.samples),
        };
        let edge = super::edge::model(&cells, &i.samples);
        Model {
            campaign: i.campaign,
            runtimes: i.runtimes,
            cells,
            summary,
            methods,
            definitions,
            quality,
            throughput,
            scaling,
            firewall,
            edge,
        }
    }

    pub fn cell(&self, index: usize) -> &Cell {
        &self.cells[index]
    }

    /// The cell of a configuration, metric and phase.
    pub fn find(&self, config: &Config, metric: &str, phase: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.metric == metric && c.phase == phase && Config::of_cell(c) == *config)
    }
}

/// The cells, with what the test bed says of each runtime × variant.
fn cells(campaign: &CampaignRow, samples: &[Sample]) -> Vec<Cell> {
    use super::summary;
    let mut cells = summary::summarize_on_paths(samples, &summary::paths(campaign), campaign.baseline());
    let (kinds, scopes) = (summary::start_kinds(campaign), summary::test_bed_field(campaign, "cpu_scope"));
    for c in &mut cells {
        let key = (c.runtime.clone(), c.variant.clone());
        if let Some(kind) = kinds.get(&key) {
            c.start_kind = kind.clone();
        }
        c.cpu_scope = scopes.get(&key).cloned().unwrap_or_default();
    }
    cells
}

fn is_superseded(s: &Sample) -> bool {
    s.error.starts_with("superseded")
}

fn is_not_applicable(s: &Sample) -> bool {
    s.error.starts_with("not applicable")
}

fn quality(cells: &[Cell], samples: &[Sample], precision: Precision) -> Quality {
    let key_cells: Vec<usize> = (0..cells.len())
        .filter(|&i| {
            let c = &cells[i];
            c.n > 0 && findings::NEEDS.iter().any(|n| n.metric == c.metric && n.phase == c.phase)
        })
        .collect();
    let target = precision.target;
    let quiet = |i: &usize| cells[*i].noise.is_some_and(|n| n.reached(target));
    let mut noisy: Vec<usize> = key_cells.iter().copied().filter(|i| cells[*i].noise.is_some() && !quiet(i)).collect();
    let width = |i: usize| cells[i].noise.map_or(0.0, |n| n.rel_half_width);
    noisy.sort_by(|a, b| width(*b).total_cmp(&width(*a)));

    let outliers = (0..cells.len())
        .filter(|&i| !cells[i].outlier_reps.is_empty())
        .map(|i| {
            let c = &cells[i];
            let mut per_trial = c.trial_values.clone();
            per_trial.sort_by(f64::total_cmp);
            let center = stats::median(&per_trial);
            let largest_deviation = c
                .trial_reps
                .iter()
                .zip(&c.trial_values)
                .filter(|(r, _)| c.outlier_reps.contains(r))
                .map(|(_, v)| (v - center) / center)
                .fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
            Outlier {
                cell: i,
                repetitions: c.outlier_reps.clone(),
                center,
                largest_deviation,
                second_mode: c.outlier_reps.len() * 5 > c.trial_values.len(),
            }
        })
        .collect();

    let mut failures: BTreeMap<(Config, String), (usize, String)> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.ok && !is_not_applicable(s) && !is_superseded(s)) {
        let e = failures.entry((Config::of_sample(s), s.metric.clone())).or_insert((0, s.error.clone()));
        e.0 += 1;
    }
    let mut failures: Vec<FailureGroup> = failures
        .into_iter()
        .map(|((config, metric), (count, first_error))| FailureGroup { config, metric, count, first_error })
        .collect();
    failures.sort_by(|a, b| (a.config.order(), &a.metric).cmp(&(b.config.order(), &b.metric)));

    Quality {
        quiet_key_cells: key_cells.iter().filter(|i| quiet(i)).count(),
        below_planned_key_cells: key_cells
            .iter()
            .filter(|&&i| (cells[i].trial_values.len() as u64) < precision.min_trials)
            .count(),
        precision,
        key_cells,
        noisy_key_cells: noisy,
        outliers,
        trial_values_checked: cells.iter().map(|c| c.trial_values.len()).sum(),
        warmup_tested: cells.iter().filter(|c| c.first_k.is_some()).count(),
        warmup_flagged: (0..cells.len()).filter(|&i| cells[i].first_k.as_ref().is_some_and(|f| f.flagged)).collect(),
        failures,
        superseded: samples.iter().filter(|s| is_superseded(s)).count(),
        not_applicable: samples.iter().filter(|s| is_not_applicable(s)).count(),
    }
}

/// The number after `prefix` in a phase name (`k=4` → 4, `rate=1200` → 1200).
fn phase_number(phase: &str, prefix: &str) -> Option<f64> {
    phase.strip_prefix(prefix)?.parse().ok().filter(|v: &f64| v.is_finite())
}

/// The latency objective of phase `open-p99<Xms`, in ms.
fn objective_ms(phase: &str) -> Option<f64> {
    phase.strip_prefix("open-p99<")?.strip_suffix("ms")?.parse().ok()
}

fn index_of(cells: &[Cell], config: &Config, metric: &str, phase: impl Fn(&str) -> bool) -> Option<usize> {
    cells.iter().position(|c| c.metric == metric && phase(&c.phase) && Config::of_cell(c) == *config)
}

fn throughput(cells: &[Cell], samples: &[Sample]) -> Throughput {
    const METRICS: [&str; 3] = ["throughput", "open_loop_p99", "open_loop_achieved"];
    let objective_ms = samples.iter().filter(|s| s.metric == "throughput").find_map(|s| objective_ms(&s.phase));
    let connections = cells
        .iter()
        .find_map(|c| (c.metric == "throughput").then(|| c.phase.strip_prefix("closed-c")?.parse().ok()).flatten());
    let configs = sorted_configs(
        cells
            .iter()
            .filter(|c| c.metric.starts_with("throughput") || c.metric == "cpu_per_request")
            .map(Config::of_cell)
            .collect(),
    );
    let closed = |p: &str| p.starts_with("closed");
    let rows = configs
        .into_iter()
        .map(|config| {
            let closed_cell = index_of(cells, &config, "throughput", closed);
            ThroughputRow {
                trials: closed_cell.map_or(0, |i| cells[i].trial_values.len() + cells[i].failed),
                closed: closed_cell,
                closed_p50: index_of(cells, &config, "throughput_p50", closed),
                closed_p99: index_of(cells, &config, "throughput_p99", closed),
                cpu_per_request: index_of(cells, &config, "cpu_per_request", closed),
                open: index_of(cells, &config, "throughput", |p| p.starts_with("open-")),
                config,
            }
        })
        .collect();

    // Every step's values, by configuration, trial and step.
    type Steps = BTreeMap<(Config, u32), BTreeMap<u32, BTreeMap<String, f64>>>;
    let mut steps: Steps = BTreeMap::new();
    for s in samples.iter().filter(|s| s.ok && store::is_search_step(&s.phase)) {
        let Some(value) = s.value else { continue };
        let step = steps.entry((Config::of_sample(s), s.repetition)).or_default().entry(s.seq).or_default();
        step.insert(s.metric.clone(), value);
        // Files from before `open_loop_offered` named the rate in the phase.
        if let Some(rate) = phase_number(&s.phase, "rate=") {
            step.entry("open_loop_offered".into()).or_insert(rate);
        }
    }
    let mut curves: BTreeMap<Config, Vec<SearchTrial>> = BTreeMap::new();
    for ((config, repetition), trial) in steps {
        let mut steps: Vec<SearchStep> = trial
            .into_iter()
            .filter_map(|(seq, values)| {
                let offered = *values.get("open_loop_offered")?;
                let saturated = values.get("open_loop_achieved").is_some_and(|a| *a < 0.95 * offered);
                Some(SearchStep { seq, offered, values, saturated })
            })
            .collect();
        steps.sort_by(|a, b| a.offered.total_cmp(&b.offered));
        curves.entry(config).or_default().push(SearchTrial { repetition, steps });
    }
    let mut curves: Vec<SearchCurve> =
        curves.into_iter().map(|(config, trials)| SearchCurve { config, trials }).collect();
    curves.sort_by(|a, b| a.config.order().cmp(&b.config.order()));

    Throughput {
        measured: samples
            .iter()
            .any(|s| METRICS.contains(&s.metric.as_str()) || (s.ok && store::is_search_step(&s.phase))),
        objective_ms,
        connections,
        rows,
        curves,
    }
}

fn scaling(cells: &[Cell], samples: &[Sample]) -> Scaling {
    const METRICS: [&str; 3] = ["scaling_start", "scaling_rate", "density"];
    let mut curves: BTreeMap<(Config, String), Vec<(f64, usize)>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate().filter(|(_, c)| c.metric == "scaling_start" || c.metric == "scaling_rate") {
        if let Some(k) = phase_number(&c.phase, "k=") {
            curves.entry((Config::of_cell(c), c.metric.clone())).or_default().push((k, i));
        }
    }
    let mut curves: Vec<ScalingCurve> = curves
        .into_iter()
        .map(|((config, metric), mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            ScalingCurve { config, metric, points }
        })
        .collect();
    curves.sort_by(|a, b| (a.config.order(), &a.metric).cmp(&(b.config.order(), &b.metric)));

    let per_instance: BTreeMap<(Config, u32), f64> = samples
        .iter()
        .filter(|s| s.ok && s.metric == "density_pss_per_instance")
        .filter_map(|s| Some(((Config::of_sample(s), s.repetition), s.value?)))
        .collect();
    let mut density: Vec<DensityTrial> = samples
        .iter()
        .filter(|s| s.metric == "density" && !is_superseded(s))
        .map(|s| {
            let config = Config::of_sample(s);
            // Files from before `density_pss_per_instance` said it in the text.
            const LEGACY: &str = "; mean PSS per instance ";
            let (stopped_by, legacy_pss) = match s.detail.rsplit_once(LEGACY) {
                Some((cause, kib)) => (cause.to_string(), kib.trim_end_matches(" KiB").parse::<f64>().ok()),
                None => (if s.ok { s.detail.clone() } else { s.error.clone() }, None),
            };
            let after_boot = index_of(cells, &config, "memory_pss", |p| p == "after_boot").filter(|i| cells[*i].n > 0);
            DensityTrial {
                repetition: s.repetition,
                instances: s.value.filter(|_| s.ok),
                stopped_by,
                pss_per_instance_kib: per_instance.get(&(config.clone(), s.repetition)).copied().or(legacy_pss),
                pss_after_boot_kib: after_boot.map(|i| cells[i].median),
                config,
            }
        })
        .collect();
    density.sort_by(|a, b| (a.config.order(), a.repetition).cmp(&(b.config.order(), b.repetition)));
    Scaling { measured: samples.iter().any(|s| METRICS.contains(&s.metric.as_str())), curves, density }
}

/// `firewall_apply` of each profile, pooled over configurations (one value
/// per trial: independent, so an order-statistics interval).
fn apply_times(cells: &[Cell]) -> Vec<ApplyTime> {
    let mut by_profile: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.metric == "firewall_apply") {
        by_profile.entry(&c.firewall).or_default().extend(c.values.iter().copied());
    }
    let mut out: Vec<ApplyTime> = by_profile
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(profile, mut values)| {
            values.sort_by(f64::total_cmp);
            let (lo, hi, _) = stats::median_ci(&values, 0.95);
            ApplyTime {
                profile: profile.to_string(),
                n: values.len(),
                median: stats::median(&values),
                median_ci: (lo, hi),
            }
        })
        .collect();
    out.sort_by_key(|a| firewall::profile_order(&a.profile));
    out
}

/// A model of samples made up for a renderer's unit test (no firewall rows).
#[cfg(test)]
pub fn of_samples(campaign: CampaignRow, runtimes: Vec<RuntimeRow>, samples: Vec<Sample>) -> Model {
    Model::build(Inputs { campaign, runtimes, samples, profiles: vec![], networks: vec![], host_rulesets: vec![] })
}

/// A campaign row with nothing in it, for renderers' unit tests.
#[cfg(test)]
pub fn empty_campaign() -> CampaignRow {
    CampaignRow {
        id: "test".into(),
        started_ns: 0,
        finished_ns: None,
        status: "finished".into(),
        seed: 1,
        config: serde_json::json!({}),
        environment: serde_json::json!({}),
    }
}
