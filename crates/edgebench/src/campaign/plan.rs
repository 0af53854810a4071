//! The order of trials: every repetition of every configuration, shuffled
//! with a seeded generator (ChaCha8, stable across platforms), so that drift
//! in the machine's state spreads over all runtimes instead of biasing one.

use crate::runtime::Runtime;
use crate::Workload;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrialKey {
    pub runtime: String,
    pub variant: String,
    pub workload: Workload,
    /// 1-based.
    pub repetition: u32,
    /// The firewall profile the trial runs under (`off`: none).
    pub firewall: String,
    /// The edge profile the trial runs under (`none`: unconstrained).
    pub edge: String,
    /// Tells apart the instances of one experiment in logs and scratch names.
    pub label_suffix: String,
}

impl TrialKey {
    pub fn new(runtime: &str, variant: &str, workload: Workload, repetition: u32) -> TrialKey {
        TrialKey {
            runtime: runtime.into(),
            variant: variant.into(),
            workload,
            repetition,
            firewall: "off".into(),
            edge: "none".into(),
            label_suffix: String::new(),
        }
    }

    pub fn with_firewall(mut self, profile: &str) -> TrialKey {
        self.firewall = profile.into();
        self
    }

    pub fn with_edge(mut self, profile: &str) -> TrialKey {
        self.edge = profile.into();
        self
    }

    /// The key of its rows in the `trials` table and of its samples.
    pub fn db_key(&self) -> crate::store::TrialRow<'_> {
        crate::store::TrialRow {
            runtime: &self.runtime,
            variant: &self.variant,
            workload: self.workload.name(),
            repetition: self.repetition,
            firewall: &self.firewall,
            edge: &self.edge,
        }
    }

    pub fn with_label_suffix(mut self, suffix: &str) -> TrialKey {
        self.label_suffix = suffix.into();
        self
    }

    pub fn label(&self) -> String {
        let mut base = format!("{}-{}-{}-r{}", self.runtime, self.variant, self.workload, self.repetition);
        if self.firewall != "off" {
            base = format!("{base}-fw-{}", self.firewall);
        }
        if self.edge != "none" {
            base = format!("{base}-edge-{}", self.edge);
        }
        if self.label_suffix.is_empty() {
            base
        } else {
            format!("{base}-{}", self.label_suffix)
        }
    }
}

pub fn plan(configs: &[(&dyn Runtime, &str)], workloads: &[Workload], reps: u32, seed: u64) -> Vec<TrialKey> {
    plan_with_firewall(configs, workloads, &["off".to_string()], reps, seed)
}

/// Every configuration × workload × firewall profile × repetition, in
/// rounds: round r holds every cell's repetition r in a seeded random order
/// (a randomised complete block per round). A drift in the machine then
/// spreads over all cells alike, and a campaign that its time budget stops
/// early leaves every cell with the same number of trials, give or take one.
/// A configuration that has no artifact for a workload is left out (the
/// campaign records it as not measured, with that reason). Resuming finds
/// trials by identity, not position, so a campaign planned in another order
/// still resumes.
pub fn plan_with_firewall(
    configs: &[(&dyn Runtime, &str)],
    workloads: &[Workload],
    profiles: &[String],
    reps: u32,
    seed: u64,
) -> Vec<TrialKey> {
    plan_with_conditions(configs, workloads, profiles, &["none".to_string()], reps, seed)
}

/// As [`plan_with_firewall`], with every firewall profile × edge profile
/// (interleaved in the same rounds: both are factors of the experiment).
pub fn plan_with_conditions(
    configs: &[(&dyn Runtime, &str)],
    workloads: &[Workload],
    profiles: &[String],
    edges: &[String],
    reps: u32,
    seed: u64,
) -> Vec<TrialKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut trials = Vec::new();
    for repetition in 1..=reps {
        let mut round = Vec::new();
        for (runtime, variant) in configs {
            for &workload in workloads {
                if workload.lacks(runtime.artifact(variant)).is_some() {
                    continue;
                }
                for profile in profiles {
                    for edge in edges {
                        let key = TrialKey::new(runtime.name(), variant, workload, repetition);
                        round.push(key.with_firewall(profile).with_edge(edge));
                    }
                }
            }
        }
        round.shuffle(&mut rng);
        trials.extend(round);
    }
    trials
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> Vec<Box<dyn Runtime>> {
        crate::runtime::all()
    }

    #[test]
    fn same_seed_same_order_and_runtimes_interleaved() {
        let runtimes = configs();
        let c: Vec<(&dyn Runtime, &str)> = runtimes.iter().map(|r| (r.as_ref(), r.variants()[0])).collect();
        let a = plan(&c, &[Workload::HELLO], 10, 7);
        assert_eq!(a, plan(&c, &[Workload::HELLO], 10, 7));
        assert_ne!(a, plan(&c, &[Workload::HELLO], 10, 8));
        assert_eq!(a.len(), c.len() * 10);
        // Not all of one runtime first: the first runtime's trials are not a prefix.
        let first = &a[0].runtime;
        let prefix = a.iter().take_while(|t| &t.runtime == first).count();
        assert!(prefix < 10, "trials are not interleaved: {prefix} in a row");
        // In rounds: any prefix holds every cell's first repetitions alike.
        for (i, t) in a.iter().enumerate() {
            assert_eq!(t.repetition as usize, i / c.len() + 1, "{t:?} at {i}");
        }
    }

    #[test]
    fn profiles_are_a_factor_interleaved_with_the_rest() {
        let runtimes = configs();
        let c: Vec<(&dyn Runtime, &str)> = runtimes.iter().map(|r| (r.as_ref(), r.variants()[0])).collect();
        let off = ["off".to_string()];
        assert_eq!(plan_with_firewall(&c, &[Workload::HELLO], &off, 4, 3), plan(&c, &[Workload::HELLO], 4, 3));
        let profiles: Vec<String> = ["off", "host", "set-100"].iter().map(|s| s.to_string()).collect();
        let a = plan_with_firewall(&c, &[Workload::HELLO], &profiles, 5, 3);
        assert_eq!(a.len(), c.len() * 3 * 5);
        for p in &profiles {
            assert_eq!(a.iter().filter(|t| &t.firewall == p).count(), c.len() * 5);
        }
        let prefix = a.iter().take_while(|t| t.firewall == a[0].firewall).count();
        assert!(prefix < 8, "profiles are not interleaved: {prefix} in a row");
        assert!(a.iter().any(|t| t.label().ends_with("-fw-set-100")));
    }
}
