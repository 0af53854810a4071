//! workerd for real: the conformance check on every workload in both
//! variants, and a small campaign (cold starts, warm starts: a new isolate
//! per request under `loader`, not applicable under `serve`, memory).
//! Skipped with the reason when workerd is not installed, failing instead
//! when EDGEBENCH_REQUIRE names it. No timing is asserted.

mod common;

use common::*;
use edgebench::campaign::Outcome;
use edgebench::runtime::{self, Context};
use edgebench::Workload;

#[test]
fn workerd_answers_like_the_workload_core() {
    if !available("workerd") {
        return;
    }
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new("workerd-conformance", &artifacts, work.path()).unwrap();
    let backend = runtime::all().into_iter().find(|r| r.name() == "workerd").unwrap();
    for variant in backend.variants() {
        for w in Workload::BUILTIN {
            backend.prepare(&ctx, w, variant).unwrap();
            let mismatches = edgebench::conformance::check(backend.as_ref(), variant, w, &ctx).unwrap();
            assert!(mismatches.is_empty(), "workerd/{variant}/{w}: {mismatches:#?}");
        }
    }
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn workerd_is_measured_in_both_variants() {
    if !available("workerd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let workloads = [Workload::HELLO, Workload::KV];
    let (outcome, samples) = run_campaign(small_options(&["workerd"], &workloads, dir.path()));
    assert_eq!(outcome, Outcome::Finished);
    for w in workloads.map(|w| w.name()) {
        for variant in ["serve", "loader"] {
            let of = |metric: &str| -> Vec<_> {
                ok_values(&samples, "workerd", w, metric).into_iter().filter(|s| s.variant == variant).collect()
            };
            let cold = of("cold_start");
            assert_eq!(cold.len(), 2, "{variant}/{w}: two cold starts");
            assert!(cold.iter().all(|s| s.value.unwrap() > 0.0 && s.unit == "ms"));
            assert_eq!(of("latency_keepalive").len(), 2 * 20, "{variant}/{w}");
            assert!(of("memory_pss_anon").iter().all(|s| s.value.unwrap() > 0.0));
            let warm = of("warm_start");
            if variant == "loader" {
                // A new isolate per warm start, from the loader Worker.
                assert_eq!(warm.len(), 2 * 3, "{variant}/{w}: {warm:#?}");
                assert!(warm.iter().all(|s| s.phase.is_empty() && s.value.unwrap() > 0.0));
            } else {
                assert!(warm.is_empty(), "{variant}/{w}: {warm:#?}");
                let why: Vec<_> = samples
                    .iter()
                    .filter(|s| s.runtime == "workerd" && s.variant == variant && s.metric == "warm_start")
                    .collect();
                assert!(!why.is_empty() && why.iter().all(|s| s.error.contains("one isolate per Worker")), "{why:#?}");
            }
        }
    }
    let failed: Vec<_> = samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")).collect();
    assert!(failed.is_empty(), "no failed samples: {failed:#?}");
    assert_eq!(children_left(), Vec::<String>::new(), "nothing left running");
}

#[test]
fn the_test_command_installs_the_pinned_workerd() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/install-test-deps.sh")).unwrap();
    let pinned = format!("WORKERD_VERSION={}", runtime::workerd::PINNED);
    assert!(script.lines().any(|l| l == pinned), "scripts/install-test-deps.sh lacks `{pinned}`");
}
