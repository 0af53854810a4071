//! One summary cell per runtime × variant × workload × metric × phase ×
//! firewall profile.

use super::stats;
use crate::runtime::BASELINE;
use crate::store::Sample;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Cell {
    pub runtime: String,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub phase: String,
    /// The firewall profile (`off`: none).
    pub firewall: String,
    pub unit: String,
    /// Successful samples.
    pub n: usize,
    /// Samples that record a failure (or "not applicable").
    pub failed: usize,
    pub median: f64,
    pub median_ci: (f64, f64),
    pub median_ci_coverage: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub cv: f64,
    /// median / the baseline's median for the same workload, metric, phase
    /// and firewall profile, with a bootstrap 95% interval.
    pub ratio: Option<(f64, f64, f64)>,
    /// The first error if any sample failed, else the first detail text.
    pub note: String,
    pub values: Vec<f64>,
}

type Key = (String, String, String, String, String, String);

pub fn summarize(samples: &[Sample]) -> Vec<Cell> {
    let mut groups: BTreeMap<Key, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        let key = (
            s.runtime.clone(),
            s.variant.clone(),
            s.workload.clone(),
            s.metric.clone(),
            s.phase.clone(),
            s.firewall.clone(),
        );
        groups.entry(key).or_default().push(s);
    }
    let mut cells: Vec<Cell> = groups.into_iter().map(|(key, group)| cell(key, &group)).collect();

    let baseline: BTreeMap<(String, String, String, String), Vec<f64>> = cells
        .iter()
        .filter(|c| c.runtime == BASELINE && c.n > 0)
        .map(|c| ((c.workload.clone(), c.metric.clone(), c.phase.clone(), c.firewall.clone()), c.values.clone()))
        .collect();
    for c in cells.iter_mut() {
        if c.n == 0 {
            continue;
        }
        if let Some(base) = baseline.get(&(c.workload.clone(), c.metric.clone(), c.phase.clone(), c.firewall.clone())) {
            let base_median = stats::median(base);
            if base_median > 0.0 {
                let (lo, hi) = stats::ratio_of_medians_ci(&c.values, base, 0.95, 1000, 0x0ed6e);
                c.ratio = Some((c.median / base_median, lo, hi));
            }
        }
    }
    cells
}

fn cell(key: Key, group: &[&Sample]) -> Cell {
    let mut values: Vec<f64> = group.iter().filter(|s| s.ok).filter_map(|s| s.value).collect();
    values.sort_by(f64::total_cmp);
    let failed = group.iter().filter(|s| !s.ok).count();
    // A failure's error, else the detail an ok sample carries (e.g. what limited density).
    let note = group
        .iter()
        .find(|s| !s.ok)
        .or_else(|| group.iter().find(|s| !s.error.is_empty()))
        .map(|s| s.error.clone())
        .unwrap_or_default();
    let unit = group.iter().find(|s| s.ok).map(|s| s.unit.clone()).unwrap_or_default();
    let (runtime, variant, workload, metric, phase, firewall) = key;
    let mut c = Cell {
        runtime,
        variant,
        workload,
        metric,
        phase,
        firewall,
        unit,
        n: values.len(),
        failed,
        median: f64::NAN,
        median_ci: (f64::NAN, f64::NAN),
        median_ci_coverage: f64::NAN,
        p90: f64::NAN,
        p99: f64::NAN,
        p999: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
        mean: f64::NAN,
        cv: f64::NAN,
        ratio: None,
        note,
        values: Vec::new(),
    };
    if values.is_empty() {
        return c;
    }
    let (lo, hi, coverage) = stats::median_ci(&values, 0.95);
    c.median = stats::median(&values);
    c.median_ci = (lo, hi);
    c.median_ci_coverage = coverage;
    c.p90 = stats::quantile(&values, 0.90);
    c.p99 = stats::quantile(&values, 0.99);
    c.p999 = stats::quantile(&values, 0.999);
    c.min = values[0];
    c.max = values[values.len() - 1];
    c.mean = stats::mean(&values);
    c.cv = stats::cv(&values);
    c.values = values;
    c
}
