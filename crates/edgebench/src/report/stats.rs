//! Statistics we must control ourselves, each tested against values computed
//! independently (tables, R): quantiles, the order-statistic interval of the
//! median, bootstrap intervals of ratios.

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

/// Percentile-bootstrap interval of median(a) / median(b), with a fixed seed
/// so that a report is reproducible.
pub fn ratio_of_medians_ci(a: &[f64], b: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ratios = Vec::with_capacity(resamples);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    for _ in 0..resamples {
        for x in ra.iter_mut() {
            *x = a[rng.gen_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.gen_range(0..b.len())];
        }
        ra.sort_by(f64::total_cmp);
        rb.sort_by(f64::total_cmp);
        let denominator = median(&rb);
        if denominator != 0.0 {
            ratios.push(median(&ra) / denominator);
        }
    }
    if ratios.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    (quantile(&ratios, alpha / 2.0), quantile(&ratios, 1.0 - alpha / 2.0))
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
        let (lo, hi) = ratio_of_medians_ci(&a, &b, 0.95, 1000, 1);
        let point = median(&{
            let mut s = a.clone();
            s.sort_by(f64::total_cmp);
            s
        }) / median(&{
            let mut s = b.clone();
            s.sort_by(f64::total_cmp);
            s
        });
        assert!(lo <= point && point <= hi, "{lo} <= {point} <= {hi}");
        assert!(hi - lo < 0.1);
        assert_eq!(ratio_of_medians_ci(&a, &b, 0.95, 1000, 1), (lo, hi), "seeded: reproducible");
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
