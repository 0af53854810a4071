//! WasmEdge, WAMR and Wasmer, for real: a small campaign on every variant (AOT compile
//! recorded apart from cold start) and the conformance check on every
//! workload. Skipped with the reason when the runtime is not installed,
//! failing instead when EDGEBENCH_REQUIRE names it.

mod common;

use common::*;
use edgebench::campaign::Outcome;
use edgebench::runtime::{self, Context};
use edgebench::Workload;

fn variants_of(runtime: &str) -> Vec<&'static str> {
    let backend = runtime::all().into_iter().find(|r| r.name() == runtime).expect("known runtime");
    backend.variants().to_vec()
}

fn measure(runtime: &str) {
    let variants = variants_of(runtime);
    let dir = tempfile::tempdir().unwrap();
    let workloads = [Workload::HELLO, Workload::KV];
    let (outcome, samples) = run_campaign(small_options(&[runtime], &workloads, dir.path()));
    assert_eq!(outcome, Outcome::Finished);
    for w in workloads.map(|w| w.name()) {
        for variant in &variants {
            let of = |metric: &str| -> Vec<_> {
                ok_values(&samples, runtime, w, metric).into_iter().filter(|s| s.variant == *variant).collect()
            };
            let cold = of("cold_start");
            assert_eq!(cold.len(), 2, "{runtime}/{variant}/{w}: two cold starts");
            assert!(cold.iter().all(|s| s.value.unwrap() > 0.0 && s.unit == "ms"));
            assert_eq!(of("latency_keepalive").len(), 2 * 20, "{runtime}/{variant}/{w}");
            assert!(of("memory_pss_anon").iter().all(|s| s.value.unwrap() > 0.0));
            let compile = of("aot_compile");
            if *variant == "aot" {
                assert_eq!(compile.len(), 1, "{runtime}/aot/{w}: one compile, apart from cold starts");
                assert!(compile[0].phase == "prepare" && compile[0].value.unwrap() > 0.0);
                assert!(of("aot_compile_memory")[0].value.unwrap() > 0.0);
            } else {
                assert!(compile.is_empty());
            }
        }
    }
    let failed: Vec<_> = samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")).collect();
    assert!(failed.is_empty(), "no failed samples: {failed:#?}");
    assert_eq!(children_left(), Vec::<String>::new(), "nothing left running");
}

fn conforms(runtime: &str) {
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new("wasm-edge-conformance", &artifacts, work.path()).unwrap();
    let backend = runtime::all().into_iter().find(|r| r.name() == runtime).unwrap();
    for variant in backend.variants() {
        for w in Workload::BUILTIN {
            backend.prepare(&ctx, w, variant).unwrap();
            let mismatches = edgebench::conformance::check(backend.as_ref(), variant, w, &ctx).unwrap();
            assert!(mismatches.is_empty(), "{runtime}/{variant}/{w}: {mismatches:#?}");
        }
    }
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn wasmedge_is_measured_in_every_variant() {
    if available("wasmedge") {
        measure("wasmedge");
    }
}

#[test]
fn wasmedge_answers_like_the_workload_core() {
    if available("wasmedge") {
        conforms("wasmedge");
    }
}

#[test]
fn wamr_is_measured_in_every_variant() {
    if available("wamr") {
        measure("wamr");
    }
}

#[test]
fn wamr_answers_like_the_workload_core() {
    if available("wamr") {
        conforms("wamr");
    }
}

#[test]
fn wasmer_is_measured_in_every_variant() {
    if available("wasmer") {
        measure("wasmer");
    }
}

#[test]
fn wasmer_answers_like_the_workload_core() {
    if available("wasmer") {
        conforms("wasmer");
    }
}
