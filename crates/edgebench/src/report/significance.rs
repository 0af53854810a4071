//! Each runtime against the native baseline, cell by cell: Mann–Whitney on
//! one value per trial (the trial is the unit of replication: requests of one
//! trial share its instance), Cliff's δ, and Holm's correction over every
//! comparison in the report.

use super::stats;
use super::Cell;

/// Family-wise significance level of the report's tests.
pub const ALPHA: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Versus {
    pub p: f64,
    /// Holm-adjusted over every comparison against the baseline in the report.
    pub p_holm: f64,
    /// Positive: this runtime's values tend to be larger than the baseline's.
    pub cliffs_delta: f64,
    pub exact: bool,
}

impl Versus {
    pub fn significant(&self) -> bool {
        self.p_holm < ALPHA
    }
}

/// Cliff's δ in words, with the usual thresholds (Romano et al. 2006).
pub fn magnitude(delta: f64) -> &'static str {
    match delta.abs() {
        d if d < 0.147 => "negligible",
        d if d < 0.33 => "small",
        d if d < 0.474 => "medium",
        _ => "large",
    }
}

pub fn against_baseline(cells: &mut [Cell]) {
    let mut tests: Vec<(usize, stats::RankTest)> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        if c.is_baseline || c.trial_values.is_empty() {
            continue;
        }
        let base = cells.iter().find(|b| {
            b.is_baseline
                && b.workload == c.workload
                && b.metric == c.metric
                && b.phase == c.phase
                && b.firewall == c.firewall
                && b.edge == c.edge
                && b.path == c.path
        });
        let Some(base) = base.filter(|b| !b.trial_values.is_empty()) else { continue };
        if let Some(t) = stats::mann_whitney(&c.trial_values, &base.trial_values) {
            tests.push((i, t));
        }
    }
    let adjusted = stats::holm(&tests.iter().map(|(_, t)| t.p).collect::<Vec<_>>());
    for ((i, t), p_holm) in tests.into_iter().zip(adjusted) {
        cells[i].vs_baseline = Some(Versus { p: t.p, p_holm, cliffs_delta: t.cliffs_delta, exact: t.exact });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_follow_romano() {
        assert_eq!(magnitude(0.1), "negligible");
        assert_eq!(magnitude(-0.2), "small");
        assert_eq!(magnitude(0.4), "medium");
        assert_eq!(magnitude(-0.9), "large");
    }
}
