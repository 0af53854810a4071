//! Warm-up check, stated rather than hidden: do the first values of a cell
//! differ from the rest? Nothing is dropped; the report says where they do.

use super::stats;

/// The first values of a cell compared with the rest.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FirstK {
    /// What was compared, for the report.
    pub what: String,
    /// median(first) / median(rest); within trials, the median over trials of
    /// that ratio.
    pub ratio: f64,
    pub p: f64,
    /// p < 0.01 and the first values are at least 5% off the rest.
    pub flagged: bool,
}

/// Strict, because every cell of a report is checked and nothing corrects
/// for that: at 0.05, one cell in twenty would be flagged by chance.
pub const ALPHA: f64 = 0.01;
const MIN_EFFECT: f64 = 0.05;

/// Several values per trial (requests of a latency run, warm starts): the
/// first tenth of each trial against the rest of that trial, with a sign test
/// over trials. One value per trial (cold starts, memory): the first fifth of
/// the trials in time order against the later ones, with Mann–Whitney.
pub fn first_k(trials: &[Vec<f64>]) -> Option<FirstK> {
    let shortest = trials.iter().map(Vec::len).min()?;
    if shortest >= 10 {
        within_trials(trials, shortest / 10)
    } else if trials.iter().all(|t| t.len() == 1) && trials.len() >= 6 {
        across_trials(trials)
    } else {
        None
    }
}

fn sorted_median(values: &[f64]) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    stats::median(&s)
}

fn within_trials(trials: &[Vec<f64>], k: usize) -> Option<FirstK> {
    let ratios: Vec<f64> = trials
        .iter()
        .filter_map(|t| {
            let rest = sorted_median(&t[k..]);
            (rest > 0.0).then(|| sorted_median(&t[..k]) / rest)
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    let slower = ratios.iter().filter(|r| **r > 1.0).count();
    let differing = ratios.iter().filter(|r| **r != 1.0).count();
    let p = stats::sign_test(slower, differing);
    let ratio = sorted_median(&ratios);
    Some(FirstK {
        what: format!("first {k} values of each trial vs the rest ({slower} of {} trials slower first)", ratios.len()),
        ratio,
        p,
        flagged: p < ALPHA && (ratio - 1.0).abs() >= MIN_EFFECT,
    })
}

fn across_trials(trials: &[Vec<f64>]) -> Option<FirstK> {
    let values: Vec<f64> = trials.iter().map(|t| t[0]).collect();
    let k = (values.len() / 5).max(2);
    let (first, rest) = values.split_at(k);
    let test = stats::mann_whitney(first, rest)?;
    let rest_median = sorted_median(rest);
    let ratio = if rest_median > 0.0 { sorted_median(first) / rest_median } else { f64::NAN };
    Some(FirstK {
        what: format!("first {k} of {} trials (in time order) vs the rest", values.len()),
        ratio,
        p: test.p,
        flagged: test.p < ALPHA && (ratio - 1.0).abs() >= MIN_EFFECT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_first_requests_are_flagged() {
        // Ten trials of 100 requests whose first 10 take twice as long.
        let trial: Vec<f64> = (0..100).map(|i| if i < 10 { 2.0 } else { 1.0 + (i % 3) as f64 * 0.01 }).collect();
        let f = first_k(&vec![trial; 10]).unwrap();
        assert!(f.flagged, "{f:?}");
        assert!((f.ratio - 2.0 / 1.01).abs() < 1e-9);
        // sign test, 10 of 10: scipy.stats.binomtest(10, 10).pvalue = 0.001953125
        assert!((f.p - 0.001953125).abs() < 1e-12);
    }

    #[test]
    fn steady_trials_are_not_flagged_and_few_are_not_tested() {
        let trials: Vec<Vec<f64>> = [5.0, 5.2, 4.9, 5.1, 5.0, 5.3, 4.8, 5.1].iter().map(|v| vec![*v]).collect();
        let f = first_k(&trials).unwrap();
        assert!(!f.flagged, "{f:?}");
        assert!(f.what.starts_with("first 2 of 8 trials"));
        assert!(first_k(&[vec![1.0], vec![2.0]]).is_none());
    }
}
