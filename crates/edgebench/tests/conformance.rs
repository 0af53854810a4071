//! The same requests to every workload on every runtime give the same status
//! codes and bodies as the workload core: what makes the comparison fair.

mod common;

use common::*;
use edgebench::runtime::{self, Context};
use edgebench::Workload;

#[test]
fn every_runtime_answers_like_the_workload_core() {
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new("conformance-test", &artifacts, work.path()).unwrap();
    let mut checked = 0;
    for r in runtime::all() {
        if !available(r.name()) {
            continue;
        }
        r.setup(&ctx).unwrap();
        for variant in r.variants() {
            for w in Workload::BUILTIN {
                // As `edgebench conformance` does: e.g. AOT variants compile here.
                r.prepare(&ctx, w, variant).unwrap();
                let mismatches = edgebench::conformance::check(r.as_ref(), variant, w, &ctx).unwrap();
                assert!(mismatches.is_empty(), "{}: {mismatches:#?}", r.name());
                checked += 1;
            }
        }
        r.teardown(&ctx);
    }
    assert!(checked >= 8, "at least native and the embedded host are checked");
    assert_eq!(children_left(), Vec::<String>::new());
}
