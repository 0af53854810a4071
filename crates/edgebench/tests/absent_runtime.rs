//! A runtime that is not installed shows up as "not measured: reason" in the
//! store and the report, and the campaign goes on with the others.
//! (Its own test binary: it sets an environment variable.)

mod common;

use common::*;
use edgebench::store::Store;
use edgebench::Workload;

#[test]
fn a_missing_runtime_is_reported_not_measured_with_its_reason() {
    std::env::set_var("EDGEBENCH_WASMTIME", "/nonexistent/wasmtime");
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native", "wasmtime"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    let (_, samples) = run_campaign(options);
    assert!(samples.iter().all(|s| s.runtime == "native"), "nothing measured for the missing runtime");

    let store = Store::open_existing(dir.path()).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    let rows = store.runtimes(&id).unwrap();
    let wasmtime: Vec<_> = rows.iter().filter(|r| r.runtime == "wasmtime").collect();
    assert_eq!(wasmtime.len(), 2, "both variants recorded");
    assert!(wasmtime.iter().all(|r| !r.measured && r.reason.contains("/nonexistent/wasmtime")), "{wasmtime:#?}");

    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("## Not measured") && report.contains("**wasmtime** (cache): not measured:"), "{report}");
}
