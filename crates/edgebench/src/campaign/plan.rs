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
    /// Tells apart the instances of one experiment in logs and scratch names.
    pub label_suffix: String,
}

impl TrialKey {
    pub fn new(runtime: &str, variant: &str, workload: Workload, repetition: u32) -> TrialKey {
        TrialKey { runtime: runtime.into(), variant: variant.into(), workload, repetition, label_suffix: String::new() }
    }

    pub fn with_label_suffix(mut self, suffix: &str) -> TrialKey {
        self.label_suffix = suffix.into();
        self
    }

    pub fn label(&self) -> String {
        let base = format!("{}-{}-{}-r{}", self.runtime, self.variant, self.workload, self.repetition);
        if self.label_suffix.is_empty() {
            base
        } else {
            format!("{base}-{}", self.label_suffix)
        }
    }
}

pub fn plan(configs: &[(&dyn Runtime, &str)], workloads: &[Workload], reps: u32, seed: u64) -> Vec<TrialKey> {
    let mut trials = Vec::new();
    for (runtime, variant) in configs {
        for &workload in workloads {
            for repetition in 1..=reps {
                trials.push(TrialKey::new(runtime.name(), variant, workload, repetition));
            }
        }
    }
    trials.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
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
        let a = plan(&c, &[Workload::Hello], 10, 7);
        assert_eq!(a, plan(&c, &[Workload::Hello], 10, 7));
        assert_ne!(a, plan(&c, &[Workload::Hello], 10, 8));
        assert_eq!(a.len(), c.len() * 10);
        // Not all of one runtime first: the first runtime's trials are not a prefix.
        let first = &a[0].runtime;
        let prefix = a.iter().take_while(|t| &t.runtime == first).count();
        assert!(prefix < 10, "trials are not interleaved: {prefix} in a row");
    }
}
