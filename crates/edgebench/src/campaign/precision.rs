//! Adaptive repetitions (`--precision`, `--max-reps`, `--budget`).
//!
//! After the planned trials (`--reps`, the minimum), a configuration whose
//! key cells are not yet precise gets more trials, in rounds: a key cell is
//! precise when the 95% interval of its per-trial median (distribution-free,
//! as in the report) is within ± the target of that median. Each round's new
//! trials are shuffled together with a seeded generator, so they stay
//! interleaved across configurations. A configuration stops at `max_reps`
//! trials; with a budget, a round only schedules what the time left allows,
//! widest intervals first. The estimate of the trials a cell needs
//! (n·(half-width / target)², the interval narrowing as 1/√n) is itself
//! noisy, so a round at most doubles a configuration's trials.

use super::plan::TrialKey;
use crate::store::{Store, TrialIdentity};
use crate::Workload;
use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// runtime, variant, workload, firewall profile, edge profile.
pub type ConfigKey = (String, String, String, String, String);

/// A configuration whose key cells are not all precise yet.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub config: ConfigKey,
    /// The widest relative half-width among its key cells.
    pub width: f64,
    /// Its trials so far (the highest repetition stored).
    pub trials: u32,
    /// About how many more trials its least precise key cell needs.
    pub more: u32,
}

/// The configurations short of `target`, widest interval first.
pub fn shortfalls(store: &Store, campaign: &str, target: f64) -> Result<Vec<Shortfall>> {
    let samples = store.samples(campaign)?;
    let cells = crate::report::summarize(&samples);
    let trials = highest_repetitions(&store.finished_trials(campaign)?);
    let mut short: BTreeMap<ConfigKey, Shortfall> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.n > 0 && crate::report::is_key(&c.metric, &c.phase)) {
        let Some(noise) = c.noise else { continue };
        if noise.reached(target) {
            continue;
        }
        let config = (c.runtime.clone(), c.variant.clone(), c.workload.clone(), c.firewall.clone(), c.edge.clone());
        let n = noise.n as f64;
        let needed = if noise.rel_half_width.is_finite() {
            (n * (noise.rel_half_width / target).powi(2)).ceil().max(6.0)
        } else {
            2.0 * n
        };
        let more = (needed - n).max(1.0).min(u32::MAX as f64) as u32;
        let entry = short.entry(config.clone()).or_insert(Shortfall {
            trials: trials.get(&config).copied().unwrap_or(0),
            config,
            width: 0.0,
            more: 0,
        });
        entry.width = entry.width.max(noise.rel_half_width);
        entry.more = entry.more.max(more);
    }
    let mut out: Vec<Shortfall> = short.into_values().collect();
    out.sort_by(|a, b| b.width.total_cmp(&a.width));
    Ok(out)
}

/// The configuration a trial belongs to.
pub fn config_of(key: &TrialKey) -> ConfigKey {
    (key.runtime.clone(), key.variant.clone(), key.workload.name().to_string(), key.firewall.clone(), key.edge.clone())
}

/// The highest repetition run (done or failed) of each configuration.
fn highest_repetitions(finished: &HashSet<TrialIdentity>) -> HashMap<ConfigKey, u32> {
    let mut out: HashMap<ConfigKey, u32> = HashMap::new();
    for t in finished.iter().filter(|t| t.kind == "trial") {
        let key = (t.runtime.clone(), t.variant.clone(), t.workload.clone(), t.firewall.clone(), t.edge.clone());
        let e = out.entry(key).or_insert(0);
        *e = (*e).max(t.repetition);
    }
    out
}

/// What the next round may spend.
pub struct Allowance {
    pub max_reps: u32,
    /// Time left of the budget (`None`: no budget).
    pub time_left: Option<Duration>,
}

/// The next round: for each short configuration, widest first, up to as
/// many more trials as it has (at most doubling), within `max_reps` and the
/// time left (`cost` estimates one trial of a configuration); shuffled with
/// a generator seeded by the campaign's seed and the round.
pub fn next_round(
    short: &[Shortfall],
    allowance: &Allowance,
    cost: &dyn Fn(&ConfigKey) -> Duration,
    seed: u64,
    round: u32,
) -> Vec<TrialKey> {
    let mut keys = Vec::new();
    let mut spent = Duration::ZERO;
    for s in short {
        let mut more = s.more.min(s.trials.max(1)).min(allowance.max_reps.saturating_sub(s.trials));
        if let Some(left) = allowance.time_left {
            let each = cost(&s.config).max(Duration::from_millis(1));
            let fits = (left.saturating_sub(spent).as_secs_f64() / each.as_secs_f64()).floor() as u32;
            more = more.min(fits);
            spent += each * more;
        }
        let Some(workload) = Workload::from_name(&s.config.2) else { continue };
        let (runtime, variant, _, firewall, edge) = &s.config;
        for repetition in s.trials + 1..=s.trials + more {
            keys.push(TrialKey::new(runtime, variant, workload, repetition).with_firewall(firewall).with_edge(edge));
        }
    }
    // A stream of its own for every round: the base plan's order is not disturbed.
    keys.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ (0x5eed_0000_u64 + round as u64).rotate_left(32)));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(runtime: &str, width: f64, trials: u32, more: u32) -> Shortfall {
        Shortfall {
            config: (runtime.into(), "v".into(), "hello".into(), "off".into(), "none".into()),
            width,
            trials,
            more,
        }
    }

    #[test]
    fn a_round_at_most_doubles_and_stops_at_the_cap() {
        let s = [short("a", 0.3, 10, 100), short("b", 0.1, 10, 3), short("c", 0.2, 38, 50)];
        let allowance = Allowance { max_reps: 40, time_left: None };
        let keys = next_round(&s, &allowance, &|_| Duration::from_secs(1), 7, 0);
        let count = |r: &str| keys.iter().filter(|k| k.runtime == r).count();
        assert_eq!((count("a"), count("b"), count("c")), (10, 3, 2));
        let reps: Vec<u32> = keys.iter().filter(|k| k.runtime == "b").map(|k| k.repetition).collect();
        let mut sorted = reps.clone();
        sorted.sort();
        assert_eq!(sorted, vec![11, 12, 13], "new repetitions follow the stored ones");
        // Interleaved, not one configuration after another.
        let prefix = keys.iter().take_while(|k| k.runtime == keys[0].runtime).count();
        assert!(prefix < 10, "{prefix} in a row");
        assert_eq!(keys, next_round(&s, &allowance, &|_| Duration::from_secs(1), 7, 0), "seeded");
    }

    #[test]
    fn a_budget_goes_to_the_widest_intervals_first() {
        let s = [short("wide", 0.3, 10, 10), short("narrow", 0.08, 10, 10)];
        let allowance = Allowance { max_reps: 100, time_left: Some(Duration::from_secs(12)) };
        let keys = next_round(&s, &allowance, &|_| Duration::from_secs(1), 1, 0);
        let count = |r: &str| keys.iter().filter(|k| k.runtime == r).count();
        assert_eq!((count("wide"), count("narrow")), (10, 2));
    }
}
