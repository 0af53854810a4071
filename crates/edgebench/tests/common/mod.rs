//! Shared by the integration tests: real artifacts, small campaigns, and the
//! checks that nothing is left running.
#![allow(dead_code)]

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{Campaign, Metric, Options, Outcome};
use edgebench::store::{Sample, Store};
use edgebench::Workload;
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub mod hosts;

/// The built artifacts (`edgebench build`, which the test command runs first).
pub fn artifacts() -> Artifacts {
    let a = Artifacts::from_env();
    let missing = a.missing();
    assert!(
        missing.is_empty(),
        "artifacts missing, run `cargo run --release -p edgebench -- build` first: {missing:?}"
    );
    a
}

/// Whether a test that needs `runtime` should run: it runs when the runtime is
/// detected; otherwise it is skipped with the reason printed, unless
/// EDGEBENCH_REQUIRE names it (then the test fails: where it is installed, it
/// must really be tested).
pub fn available(runtime: &str) -> bool {
    let artifacts = Artifacts::from_env();
    let backend = edgebench::runtime::all().into_iter().find(|r| r.name() == runtime).expect("known runtime");
    let d = backend.detect(&artifacts);
    if d.available {
        return true;
    }
    skip(runtime, &format!("{runtime} not measured: {}", d.reason));
    false
}

/// Whether EDGEBENCH_REQUIRE (comma-separated names, as the test command
/// sets it) names `what`: a runtime, or `chromium`, `nftables`, `sshd`, `ansible`.
pub fn required(what: &str) -> bool {
    std::env::var("EDGEBENCH_REQUIRE").unwrap_or_default().split(',').any(|r| r.trim() == what)
}

/// A test that cannot run because `what` is missing: it fails when `what`
/// is required, and otherwise says "skipped" and why.
pub fn skip(what: &str, why: &str) {
    assert!(!required(what), "{what} is required (EDGEBENCH_REQUIRE) but: {why}");
    eprintln!("skipped: {why}");
}

pub fn small_options(runtimes: &[&str], workloads: &[Workload], out: &Path) -> Options {
    Options {
        runtimes: Some(runtimes.iter().map(|s| s.to_string()).collect()),
        workloads: workloads.to_vec(),
        metrics: Metric::DEFAULT.to_vec(),
        reps: 2,
        requests: 20,
        warmup_requests: 2,
        warm_starts: 3,
        seed: 42,
        out: Some(out.to_path_buf()),
        warmup: false,
        // Tests run in parallel: the CPUs are rarely quiet, and no test times anything.
        settle_max_ms: 100,
        ..Options::default()
    }
}

pub fn run_campaign(options: Options) -> (Outcome, Vec<Sample>) {
    let dir = options.out.clone().unwrap();
    let mut campaign = Campaign::create(options, artifacts()).expect("campaign");
    let outcome = campaign.run(&AtomicBool::new(false)).expect("campaign runs");
    edgebench::report::write(&dir).expect("report");
    (outcome, samples(&dir))
}

pub fn samples(dir: &Path) -> Vec<Sample> {
    let store = Store::open_existing(dir).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    store.samples(&id).unwrap()
}

pub fn ok_values<'a>(samples: &'a [Sample], runtime: &str, workload: &str, metric: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.runtime == runtime && s.workload == workload && s.metric == metric && s.ok).collect()
}

/// Processes this test process started that are still running.
pub fn children_left() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.chars().all(|c| c.is_ascii_digit())) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&me.as_str()) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().replace('\0', " ");
            left.push(format!("{pid} {} {cmd}", fields[0]));
        }
    }
    left
}

/// Runs the edgebench binary in `cwd`; it must succeed (its output is in the failure).
pub fn edgebench(args: &[&str], cwd: &Path) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edgebench {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir` with its contents.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
