//! Statistics we must control ourselves, each tested against values computed
//! independently (published tables, R, scipy/numpy/statsmodels; the tests say
//! which): quantiles, the order-statistic interval of the median, bootstrap
//! intervals (of quantiles, of ratios, resampling whole trials), the
//! Mann–Whitney U test with Cliff's δ, Holm's correction, MAD outlier flags,
//! the sign test, and the noise verdict with its sample-size hint.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Quantile `q` in [0, 1] of sorted data, linear interpolation between order
/// statistics (Hyndman & Fan type 7, the default of R and numpy).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no data");
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

pub fn median(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.5)
}

pub fn mean(data: &[f64]) -> f64 {
    data.iter().sum::<f64>() / data.len() as f64
}

/// Sample standard deviation (n − 1).
pub fn std_dev(data: &[f64]) -> f64 {
    if data.len() < 2 {
        return 0.0;
    }
    let m = mean(data);
    (data.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (data.len() - 1) as f64).sqrt()
}

/// Coefficient of variation (std dev / mean).
pub fn cv(data: &[f64]) -> f64 {
    let m = mean(data);
    if m == 0.0 {
        0.0
    } else {
        std_dev(data) / m
    }
}

/// A distribution-free confidence interval for the median: the order
/// statistics x(l), x(n−l+1) with the largest l such that
/// P(l ≤ B ≤ n−l) ≥ `confidence` for B ~ Binomial(n, ½).
/// Returns (low, high, actual coverage). With too few samples for the
/// requested confidence it returns (min, max) and their coverage.
pub fn median_ci(sorted: &[f64], confidence: f64) -> (f64, f64, f64) {
    let n = sorted.len();
    assert!(n > 0, "median_ci of no data");
    let cdf = binomial_half_cdf(n);
    let alpha_half = (1.0 - confidence) / 2.0;
    // l is 1-based; coverage of [x(l), x(n-l+1)] is 1 - 2 * P(B <= l-1).
    let mut l = 1;
    for candidate in 1..=(n / 2).max(1) {
        if cdf[candidate - 1] <= alpha_half {
            l = candidate;
        } else {
            break;
        }
    }
    let coverage = 1.0 - 2.0 * cdf[l - 1];
    (sorted[l - 1], sorted[n - l], coverage)
}

/// P(B <= k) for k in 0..=n, B ~ Binomial(n, ½), computed in log space.
fn binomial_half_cdf(n: usize) -> Vec<f64> {
    let mut ln_p = -(n as f64) * std::f64::consts::LN_2;
    let mut cdf = Vec::with_capacity(n + 1);
    let mut total = 0.0;
    for k in 0..=n {
        total += ln_p.exp();
        cdf.push(total.min(1.0));
        if k < n {
            ln_p += ((n - k) as f64 / (k + 1) as f64).ln();
        }
    }
    cdf
}

/// Two-sided exact sign test: the p-value of `successes` out of `n` under
/// Binomial(n, ½).
pub fn sign_test(successes: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let s = successes.min(n);
    let k = s.min(n - s);
    (2.0 * binomial_half_cdf(n)[k]).min(1.0)
}

/// The type-7 quantile of unsorted data in O(n); reorders `data`.
pub fn quantile_unsorted(data: &mut [f64], q: f64) -> f64 {
    assert!(!data.is_empty(), "quantile of no data");
    let h = (data.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let (_, x_lo, above) = data.select_nth_unstable_by(lo, f64::total_cmp);
    let x_lo = *x_lo;
    let frac = h - lo as f64;
    if frac == 0.0 {
        return x_lo;
    }
    let x_hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    x_lo + frac * (x_hi - x_lo)
}

/// How a percentile bootstrap is drawn. The seed is fixed so that a report
/// made twice from the same samples is identical.
#[derive(Clone, Copy, Debug)]
pub struct Bootstrap {
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Bootstrap {
    pub const REPORT: Bootstrap = Bootstrap { confidence: 0.95, resamples: 2000, seed: 0x0ed6e };
}

/// One group per value: the ordinary (not grouped) bootstrap.
pub fn singletons(values: &[f64]) -> Vec<Vec<f64>> {
    values.iter().map(|&v| vec![v]).collect()
}

/// Draws as many groups as there are, with replacement, and pools their values.
fn resample_groups(rng: &mut ChaCha8Rng, groups: &[Vec<f64>], out: &mut Vec<f64>) {
    out.clear();
    for _ in 0..groups.len() {
        out.extend_from_slice(&groups[rng.gen_range(0..groups.len())]);
    }
}

fn non_empty(groups: &[Vec<f64>]) -> Vec<Vec<f64>> {
    groups.iter().filter(|g| !g.is_empty()).cloned().collect()
}

fn percentile_interval(mut replicates: Vec<f64>, confidence: f64) -> (f64, f64) {
    replicates.retain(|x| x.is_finite());
    if replicates.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    replicates.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (quantile(&replicates, alpha / 2.0), quantile(&replicates, 1.0 - alpha / 2.0))
}

/// Percentile-bootstrap interval of the `q` quantile of the pooled values.
/// Whole groups are resampled (a group is one trial: the requests of one
/// trial are not independent of each other), so the interval includes the
/// variation between trials; with one value per group this is the ordinary
/// bootstrap.
pub fn quantile_ci(groups: &[Vec<f64>], q: f64, b: Bootstrap) -> (f64, f64) {
    let groups = non_empty(groups);
    if groups.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
    let mut pooled = Vec::new();
    let replicates = (0..b.resamples)
        .map(|_| {
            resample_groups(&mut rng, &groups, &mut pooled);
            quantile_unsorted(&mut pooled, q)
        })
        .collect();
    percentile_interval(replicates, b.confidence)
}

/// Percentile-bootstrap interval of median(a) / median(b), groups resampled
/// as in [`quantile_ci`].
pub fn ratio_of_medians_ci(a: &[Vec<f64>], b: &[Vec<f64>], bs: Bootstrap) -> (f64, f64) {
    let (a, b) = (non_empty(a), non_empty(b));
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(bs.seed);
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    let replicates = (0..bs.resamples)
        .filter_map(|_| {
            resample_groups(&mut rng, &a, &mut ra);
            resample_groups(&mut rng, &b, &mut rb);
            let denominator = quantile_unsorted(&mut rb, 0.5);
            (denominator != 0.0).then(|| quantile_unsorted(&mut ra, 0.5) / denominator)
        })
        .collect();
    percentile_interval(replicates, bs.confidence)
}

/// The Mann–Whitney U test of two independent samples, with its effect size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankTest {
    /// U of the first sample: pairs (a, b) with a > b, a tie counting ½.
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// From the exact null distribution (no ties, n1·n2 ≤ 2500), or else the
    /// normal approximation with tie and continuity corrections.
    pub exact: bool,
    /// Cliff's δ = P(a > b) − P(a < b) = 2U/(n1·n2) − 1, in [−1, 1].
    pub cliffs_delta: f64,
}

const EXACT_MAX_PAIRS: usize = 2500;

pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = a.iter().map(|&x| (x, true)).chain(b.iter().map(|&x| (x, false))).collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut rank_sum_a, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += mean_rank * pooled[i..=j].iter().filter(|x| x.1).count() as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let (mf, nf) = (m as f64, n as f64);
    let u = rank_sum_a - mf * (mf + 1.0) / 2.0;
    let pairs = mf * nf;
    let exact = tie_term == 0.0 && m * n <= EXACT_MAX_PAIRS;
    let p = if exact {
        exact_u_p(m, n, u.round() as usize)
    } else {
        let total = mf + nf;
        let variance = pairs / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        if variance <= 0.0 {
            1.0
        } else {
            let z = ((u - pairs / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
            libm::erfc(z / std::f64::consts::SQRT_2).min(1.0)
        }
    };
    Some(RankTest { u, p, exact, cliffs_delta: 2.0 * u / pairs - 1.0 })
}

/// Two-sided exact p-value of U for sizes m, n without ties. The number of
/// arrangements with U = u is the coefficient of q^u in the Gaussian binomial
/// [m+n choose m]_q = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i), built one factor at
/// a time so that the coefficients stay non-negative between factors.
fn exact_u_p(m: usize, n: usize, u: usize) -> f64 {
    let max_u = m * n;
    let mut counts = vec![0.0f64; max_u + 1];
    counts[0] = 1.0;
    for i in 1..=m {
        let k = n + i;
        for d in (k..=max_u).rev() {
            counts[d] -= counts[d - k];
        }
        for d in i..=max_u {
            counts[d] += counts[d - i];
        }
    }
    let total: f64 = counts.iter().sum();
    let lower = counts[..=u.min(max_u)].iter().sum::<f64>() / total;
    let upper = counts[u.min(max_u)..].iter().sum::<f64>() / total;
    (2.0 * lower.min(upper)).min(1.0)
}

/// Holm's step-down adjustment of p-values (in input order): reject where the
/// adjusted value is below α, with the family-wise error rate kept at α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// |modified z| above which a value is flagged (Iglewicz & Hoaglin).
pub const OUTLIER_Z: f64 = 3.5;

/// Modified z-scores 0.6745 (x − median) / MAD (Iglewicz & Hoaglin). When
/// half the values or more are equal the MAD is 0; the mean absolute deviation
/// × 1.253314 then stands in (as in IBM SPSS), and when that is 0 too, every
/// value is equal and every score 0.
pub fn modified_z_scores(data: &[f64]) -> Vec<f64> {
    if data.is_empty() {
        return Vec::new();
    }
    let mut sorted = data.to_vec();
    sorted.sort_by(f64::total_cmp);
    let med = median(&sorted);
    let mut deviations: Vec<f64> = data.iter().map(|x| (x - med).abs()).collect();
    let mean_ad = mean(&deviations);
    deviations.sort_by(f64::total_cmp);
    let mad = median(&deviations);
    data.iter()
        .map(|x| {
            if mad > 0.0 {
                0.6745 * (x - med) / mad
            } else if mean_ad > 0.0 {
                (x - med) / (1.253314 * mean_ad)
            } else {
                0.0
            }
        })
        .collect()
}

/// Indices of the values whose |modified z| exceeds [`OUTLIER_Z`].
pub fn mad_outliers(data: &[f64]) -> Vec<usize> {
    modified_z_scores(data).iter().enumerate().filter(|(_, z)| z.abs() > OUTLIER_Z).map(|(i, _)| i).collect()
}

/// Half-width of the median's interval (relative to the median) that we call
/// precise enough: ±5%.
pub const NOISE_TARGET: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseLevel {
    /// Half-width ≤ 5% of the median.
    Quiet,
    /// ≤ 20%.
    Noisy,
    VeryNoisy,
    /// Fewer than 6 values: no 95% interval of the median exists.
    TooFew,
}

/// How precisely a set of values (one per trial) pins down its median.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Noise {
    pub n: usize,
    pub cv: f64,
    /// Half the width of the median's interval, relative to the median.
    pub rel_half_width: f64,
    /// Coverage of that interval (below 0.95 when n < 6).
    pub coverage: f64,
    pub level: NoiseLevel,
    /// About how many more values would bring the half-width to ±5%: the
    /// interval narrows as 1/√n, so n·(half-width / 5%)² are needed.
    pub more_for_target: Option<usize>,
}

impl Noise {
    /// Whether the median's 95% interval exists (six or more values) and is
    /// within ± `target` of the median: the precision adaptive repetitions
    /// pursue and the report states.
    pub fn reached(&self, target: f64) -> bool {
        self.coverage >= 0.95 && self.rel_half_width <= target
    }
}

pub fn noise(values: &[f64]) -> Option<Noise> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let (lo, hi, coverage) = median_ci(&sorted, 0.95);
    let med = median(&sorted);
    let rel_half_width = if hi == lo {
        0.0
    } else if med == 0.0 {
        f64::INFINITY
    } else {
        (hi - lo) / 2.0 / med.abs()
    };
    let too_few = coverage < 0.95;
    let level = match rel_half_width {
        _ if too_few => NoiseLevel::TooFew,
        w if w <= NOISE_TARGET => NoiseLevel::Quiet,
        w if w <= 0.20 => NoiseLevel::Noisy,
        _ => NoiseLevel::VeryNoisy,
    };
    let needed = if rel_half_width.is_finite() {
        (n as f64 * (rel_half_width / NOISE_TARGET).powi(2)).ceil() as usize
    } else {
        usize::MAX
    };
    let needed = if too_few { needed.max(6) } else { needed };
    let more_for_target = (needed > n).then(|| needed.saturating_sub(n));
    Some(Noise { n, cv: cv(values), rel_half_width, coverage, level, more_for_target })
}

/// Median of unsorted data in O(n) (type 7, as [`median`]); reorders it.
fn median_unsorted(data: &mut [f64]) -> f64 {
    let n = data.len();
    let (_, middle, upper) = data.select_nth_unstable_by((n - 1) / 2, f64::total_cmp);
    let middle = *middle;
    if n % 2 == 1 {
        middle
    } else {
        (middle + upper.iter().copied().fold(f64::INFINITY, f64::min)) / 2.0
    }
}

/// Percentile-bootstrap interval of median(a) − median(b): each resample
/// draws both samples anew with replacement; fixed seed, so a report is
/// reproducible.
pub fn difference_of_medians_ci(a: &[f64], b: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut differences = Vec::with_capacity(resamples);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    for _ in 0..resamples {
        for x in ra.iter_mut() {
            *x = a[rng.gen_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.gen_range(0..b.len())];
        }
        differences.push(median_unsorted(&mut ra) - median_unsorted(&mut rb));
    }
    differences.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (quantile(&differences, alpha / 2.0), quantile(&differences, 1.0 - alpha / 2.0))
}

/// Cluster-bootstrap interval of median(a) − median(b) where each sample is
/// made of clusters (e.g. the latency samples of one trial each): every
/// resample draws whole clusters with replacement and pools their values, so
/// the interval includes the variation between clusters, not only within.
/// With one value per cluster it is [`difference_of_medians_ci`] exactly.
pub fn difference_of_medians_cluster_ci(
    a: &[Vec<f64>],
    b: &[Vec<f64>],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    let a: Vec<&Vec<f64>> = a.iter().filter(|c| !c.is_empty()).collect();
    let b: Vec<&Vec<f64>> = b.iter().filter(|c| !c.is_empty()).collect();
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut differences = Vec::with_capacity(resamples);
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        for (clusters, pooled) in [(&a, &mut ra), (&b, &mut rb)] {
            pooled.clear();
            for _ in 0..clusters.len() {
                pooled.extend_from_slice(clusters[rng.gen_range(0..clusters.len())]);
            }
        }
        differences.push(median_unsorted(&mut ra) - median_unsorted(&mut rb));
    }
    differences.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (quantile(&differences, alpha / 2.0), quantile(&differences, 1.0 - alpha / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn quantiles_match_r_type_7() {
        // R: quantile(1:10, c(.5, .9, .99)) = 5.5, 9.1, 9.91
        let d: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!(close(median(&d), 5.5, 1e-12));
        assert!(close(quantile(&d, 0.9), 9.1, 1e-12));
        assert!(close(quantile(&d, 0.99), 9.91, 1e-12));
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn median_interval_matches_binomial_tables() {
        // Published order-statistic intervals for the median at 95%:
        // n=10: [x(2), x(9)], coverage 0.9785; n=20: [x(6), x(15)], 0.9586;
        // n=100: [x(40), x(61)], 0.9648.
        for (n, l, u, coverage) in [(10, 2, 9, 0.978516), (20, 6, 15, 0.958611), (100, 40, 61, 0.964800)] {
            let d: Vec<f64> = (1..=n).map(|i| i as f64).collect();
            let (lo, hi, c) = median_ci(&d, 0.95);
            assert_eq!((lo, hi), (l as f64, u as f64), "n={n}");
            assert!(close(c, coverage, 1e-5), "n={n}: coverage {c}");
        }
        // Too few samples for 95%: the whole range, with its true coverage.
        let (lo, hi, c) = median_ci(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        assert_eq!((lo, hi), (1.0, 5.0));
        assert!(close(c, 0.9375, 1e-9));
    }

    #[test]
    fn spread_statistics() {
        let d = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&d), 5.0, 1e-12));
        // R: sd(c(2,4,4,4,5,5,7,9)) = 2.13809
        assert!(close(std_dev(&d), 2.138090, 1e-6));
        assert!(close(cv(&d), 2.138090 / 5.0, 1e-6));
    }

    #[test]
    fn ratio_interval_covers_the_true_ratio() {
        let a: Vec<f64> = (0..200).map(|i| 2.0 + (i % 10) as f64 * 0.01).collect();
        let b: Vec<f64> = (0..200).map(|i| 1.0 + (i % 10) as f64 * 0.005).collect();
        let bs = Bootstrap { confidence: 0.95, resamples: 1000, seed: 1 };
        let (lo, hi) = ratio_of_medians_ci(&singletons(&a), &singletons(&b), bs);
        let sorted = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            s
        };
        let point = median(&sorted(&a)) / median(&sorted(&b));
        assert!(lo <= point && point <= hi, "{lo} <= {point} <= {hi}");
        assert!(hi - lo < 0.1);
        assert_eq!(ratio_of_medians_ci(&singletons(&a), &singletons(&b), bs), (lo, hi), "seeded: reproducible");
    }

    #[test]
    fn sign_test_matches_scipy() {
        // scipy.stats.binomtest(9, 10, 0.5).pvalue = 0.021484375;
        // binomtest(2, 12, 0.5).pvalue = 0.03857421875.
        assert!(close(sign_test(9, 10), 0.021484375, 1e-12));
        assert!(close(sign_test(1, 10), 0.021484375, 1e-12));
        assert!(close(sign_test(2, 12), 0.03857421875, 1e-12));
        assert_eq!(sign_test(5, 10), 1.0);
        assert_eq!(sign_test(0, 0), 1.0);
    }

    #[test]
    fn unsorted_quantile_equals_sorted_quantile() {
        let data = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0];
        let mut sorted = data.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(quantile_unsorted(&mut data.clone(), q), quantile(&sorted, q), "q={q}");
        }
    }

    #[test]
    fn bootstrap_quantile_interval_matches_the_exact_bootstrap() {
        // The bootstrap distribution of the k-th order statistic of n distinct
        // values is exact: P(X*(k) <= x(j)) = P(Binomial(n, j/n) >= k). With
        // scipy.stats.binom.sf(k-1, n, j/n) for n = 21, the 2.5% and 97.5%
        // points are x(15) and x(21) for k = 19 (type-7 q = 0.9: h = 18), and
        // x(7) and x(15) for k = 11 (the median). The nearest CDF values are
        // 0.0128/0.0367 and 0.9243/1.0, 0.0183/0.0557 and 0.9443/0.9817: far
        // enough from 2.5% / 97.5% for 4000 resamples.
        let data: Vec<f64> = (1..=21).map(f64::from).collect();
        let b = Bootstrap { confidence: 0.95, resamples: 4000, seed: 3 };
        assert_eq!(quantile_ci(&singletons(&data), 0.9, b), (15.0, 21.0));
        assert_eq!(quantile_ci(&singletons(&data), 0.5, b), (7.0, 15.0));
        assert!(quantile_ci(&[], 0.5, b).0.is_nan());
    }

    #[test]
    fn grouped_bootstrap_keeps_the_spread_between_groups() {
        // Two trials, each internally tight but far apart: resampling trials
        // gives an interval spanning both levels; resampling requests as if
        // independent would give a narrow one.
        let groups = vec![vec![1.0; 50], vec![2.0; 50]];
        let b = Bootstrap { confidence: 0.95, resamples: 1000, seed: 1 };
        assert_eq!(quantile_ci(&groups, 0.5, b), (1.0, 2.0));
    }

    #[test]
    fn mann_whitney_exact_matches_scipy() {
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided', method='exact')
        let a = [1.1, 2.3, 3.5, 4.2, 7.9];
        let b = [3.9, 5.0, 6.1, 8.8, 9.3, 10.4];
        let t = mann_whitney(&a, &b).unwrap();
        assert!(t.exact);
        assert_eq!(t.u, 4.0);
        assert!(close(t.p, 0.05194805194805195, 1e-12), "{}", t.p);
        // numpy: np.mean(np.sign(a[:, None] - b[None, :])) = -0.7333…
        assert!(close(t.cliffs_delta, -0.7333333333333333, 1e-12));

        // a_i = ((i·7919) mod 1000)/10 (+ 30.05), b_i = ((i·104729) mod 997)/10 + 5:
        // U = 104, p = 0.5163649500168548; shifted: U = 153, p = 0.001421318395339125, δ = 0.7.
        let a: Vec<f64> = (1..=12).map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
        let b: Vec<f64> = (1..=15).map(|i| ((i * 104729) % 997) as f64 / 10.0 + 5.0).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 104.0);
        assert!(close(t.p, 0.5163649500168548, 1e-12), "{}", t.p);
        let shifted: Vec<f64> = a.iter().map(|x| x + 30.05).collect();
        let t = mann_whitney(&shifted, &b).unwrap();
        assert_eq!(t.u, 153.0);
        assert!(close(t.p, 0.001421318395339125, 1e-12), "{}", t.p);
        assert!(close(t.cliffs_delta, 0.7, 1e-12));

        // 1..=25 against 20.5..=49.5: U = 15, p = 4.433136869769731e-13.
        let a: Vec<f64> = (1..=25).map(f64::from).collect();
        let b: Vec<f64> = (20..50).map(|i| i as f64 + 0.5).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 15.0);
        assert!((t.p / 4.433136869769731e-13 - 1.0).abs() < 1e-9, "{}", t.p);

        // The largest exact case, 50 × 50: a_i = 2i, b_i = 2i + 11 (U = 990,
        // p = 0.0735352106256962) and b_i = 2i + 1 (U = 1225, p = 0.8664717523984022).
        let a: Vec<f64> = (0..50).map(|i| i as f64 * 2.0).collect();
        for (shift, u, p) in [(11.0, 990.0, 0.0735352106256962), (1.0, 1225.0, 0.8664717523984022)] {
            let b: Vec<f64> = (0..50).map(|i| i as f64 * 2.0 + shift).collect();
            let t = mann_whitney(&a, &b).unwrap();
            assert!(t.exact);
            assert_eq!(t.u, u);
            assert!(close(t.p, p, 1e-12), "shift {shift}: {}", t.p);
        }
    }

    #[test]
    fn mann_whitney_normal_approximation_matches_scipy() {
        // scipy.stats.mannwhitneyu(..., method='asymptotic', use_continuity=True),
        // tie correction included; δ from numpy as above.
        let a = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0, 9.0];
        let b = [3.0, 4.0, 4.0, 5.0, 6.0, 6.0, 7.0, 8.0, 9.0, 9.0, 10.0, 11.0];
        let t = mann_whitney(&a, &b).unwrap();
        assert!(!t.exact);
        assert_eq!(t.u, 42.5);
        assert!(close(t.p, 0.05556194955783329, 1e-12), "{}", t.p);
        assert!(close(t.cliffs_delta, -0.4551282051282051, 1e-12));

        // a_i = (37 i) mod 101 (i < 60), b_i = (53 i) mod 103 + 7 (i < 70), 39 ties:
        // U = 1765.5, p = 0.11878082387591614, δ = -0.15928571428571428.
        let a: Vec<f64> = (0..60).map(|i| ((37 * i) % 101) as f64).collect();
        let b: Vec<f64> = (0..70).map(|i| ((53 * i) % 103 + 7) as f64).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 1765.5);
        assert!(close(t.p, 0.11878082387591614, 1e-12), "{}", t.p);
        assert!(close(t.cliffs_delta, -0.15928571428571428, 1e-12));

        // Every value equal: no evidence of a difference.
        assert_eq!(mann_whitney(&[1.0, 1.0], &[1.0, 1.0, 1.0]).unwrap().p, 1.0);
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    #[test]
    fn holm_matches_statsmodels() {
        // statsmodels.stats.multitest.multipletests(p, method='holm')[1]
        let p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.0001];
        let expected = [0.04, 0.09, 0.09, 0.025, 0.2, 0.0006];
        for (got, want) in holm(&p).iter().zip(expected) {
            assert!(close(*got, want, 1e-12), "{got} vs {want}");
        }
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn mad_flags_match_scipy() {
        // 0.6745 (x − median) / scipy.stats.median_abs_deviation(x) (MAD = 0.2):
        // 13.9 → 12.8155, 25.0 → 50.25025; every other |z| ≤ 1.01175.
        let x = [10.1, 10.4, 9.8, 10.0, 10.2, 13.9, 10.3, 9.9, 10.1, 25.0, 10.0];
        let z = modified_z_scores(&x);
        assert!(close(z[5], 12.8155, 1e-9) && close(z[9], 50.25025, 1e-9), "{z:?}");
        assert!(close(z[1], 1.01175, 1e-9));
        assert_eq!(mad_outliers(&x), vec![5, 9]);
        // MAD = 0: numpy (x − median) / (1.253314 · mean |x − median|) = 5.585192537544462.
        let z = modified_z_scores(&[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 7.0]);
        assert!(close(z[6], 5.585192537544462, 1e-9), "{z:?}");
        assert!(mad_outliers(&[3.0; 8]).is_empty());
    }

    #[test]
    fn noise_verdict_and_sample_size_hint() {
        // numpy/scipy: 95% order-statistic interval [x(3), x(10)] for n = 12;
        // half-width / median = 0.03864734299516911, CV = 0.05919927802969408.
        let v = [10.0, 10.5, 9.8, 11.2, 10.1, 12.0, 9.9, 10.4, 10.6, 10.2, 10.3, 10.8];
        let n = noise(&v).unwrap();
        assert!(close(n.rel_half_width, 0.03864734299516911, 1e-12));
        assert!(close(n.cv, 0.05919927802969408, 1e-12));
        assert_eq!((n.level, n.more_for_target), (NoiseLevel::Quiet, None));
        // Spread out: half-width 0.20869565217391306, CV 0.2418626048314494,
        // 12 · (0.2087 / 0.05)² = 209.06 → 210 needed, 198 more.
        let v = [10.0, 13.65, 6.86, 15.68, 10.1, 7.2, 9.9, 12.48, 10.6, 8.16, 11.33, 10.8];
        let n = noise(&v).unwrap();
        assert!(close(n.rel_half_width, 0.20869565217391306, 1e-9));
        assert!(close(n.cv, 0.2418626048314494, 1e-9));
        assert_eq!((n.level, n.more_for_target), (NoiseLevel::VeryNoisy, Some(198)));
        // Three trials: no 95% interval yet; at least 6 are needed.
        let n = noise(&[1.0, 1.01, 1.02]).unwrap();
        assert_eq!((n.level, n.more_for_target), (NoiseLevel::TooFew, Some(3)));
        assert!(noise(&[]).is_none());
    }

    #[test]
    fn difference_interval_matches_the_exact_bootstrap_distribution() {
        // The exact bootstrap distribution of median(a*) − median(b*), worked
        // out apart (Python, by enumeration: P(median* ≤ x(k)) =
        // P(Binomial(n, k/n) ≥ (n+1)/2), then the convolution of both):
        // P(≤ −2) = 0.0150, P(≤ −1) = 0.0823, P(≤ 8) = 0.9571,
        // P(≤ 10) = 0.9850, so its 2.5% and 97.5% quantiles are −1 and 10.
        let a = [1.0, 2.0, 4.0, 7.0, 11.0];
        let b = [0.0, 1.0, 3.0];
        assert_eq!(difference_of_medians_ci(&a, &b, 0.95, 20_000, 7), (-1.0, 10.0));
        // Constant samples: the difference itself, with no spread.
        assert_eq!(difference_of_medians_ci(&[5.0; 9], &[3.0; 4], 0.95, 500, 1), (2.0, 2.0));
        // Large normal-ish samples: the interval covers the true difference
        // (1.0) and is about 2 × 1.96 × sqrt(2) × 1.2533 σ/√n wide (σ = 1, n = 4000).
        let normal = |shift: f64, seed: u64| -> Vec<f64> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..4000)
                .map(|_| {
                    let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                    shift + (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
                })
                .collect()
        };
        let (lo, hi) = difference_of_medians_ci(&normal(1.0, 3), &normal(0.0, 4), 0.95, 2000, 5);
        assert!(lo < 1.0 && 1.0 < hi, "[{lo}, {hi}]");
        let expected_width = 2.0 * 1.96 * 2f64.sqrt() * 1.2533 / 4000f64.sqrt();
        assert!(((hi - lo) / expected_width - 1.0).abs() < 0.25, "width {} vs {expected_width}", hi - lo);
        let mut even = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median_unsorted(&mut even), 2.5);
    }

    #[test]
    fn cluster_interval_includes_the_variation_between_clusters() {
        // One value per cluster: the same draws, the same interval as the plain bootstrap.
        let a = [1.0, 2.0, 4.0, 7.0, 11.0];
        let b = [0.0, 1.0, 3.0];
        let singletons = |x: &[f64]| x.iter().map(|v| vec![*v]).collect::<Vec<_>>();
        assert_eq!(
            difference_of_medians_cluster_ci(&singletons(&a), &singletons(&b), 0.95, 20_000, 7),
            difference_of_medians_ci(&a, &b, 0.95, 20_000, 7)
        );
        // Six trials of 100 samples each, trials shifted by up to ±1: pooling
        // ignores the shift between trials (narrow), clusters do not (wide).
        let trials = |offset: f64| -> Vec<Vec<f64>> {
            (0..6).map(|t| (0..100).map(|i| offset + (t as f64 - 2.5) * 0.4 + i as f64 * 0.001).collect()).collect()
        };
        let (a, b) = (trials(10.0), trials(10.0));
        let pooled = |c: &[Vec<f64>]| c.concat();
        let (plo, phi) = difference_of_medians_ci(&pooled(&a), &pooled(&b), 0.95, 2000, 3);
        let (clo, chi) = difference_of_medians_cluster_ci(&a, &b, 0.95, 2000, 3);
        assert!(clo <= 0.0 && 0.0 <= chi, "[{clo}, {chi}]");
        assert!(chi - clo > 3.0 * (phi - plo), "cluster [{clo}, {chi}] vs pooled [{plo}, {phi}]");
    }
}
