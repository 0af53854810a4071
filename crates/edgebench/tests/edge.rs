//! Edge profiles (issue 21): CPU quota and memory cap as campaign factors,
//! in force for every process of an instance and for containers, read back
//! and stored; an OOM kill under a cap is counted; a link profile that the
//! kernel cannot emulate is refused with the reason.

mod common;

use edgebench::campaign::Outcome;
use edgebench::edge::Edge;
use edgebench::Workload;
use std::process::Command;
use std::time::{Duration, Instant};

const PROFILES: [&str; 3] = ["none", "cpu-0.5", "mem-128m"];

/// Whether CPU and memory profiles can run here (root, a cgroup hierarchy with both controllers).
fn cgroups_or_skip() -> bool {
    let profiles: Vec<String> = PROFILES.iter().map(|p| p.to_string()).collect();
    match edgebench::edge::check_here(&profiles) {
        Ok(()) => true,
        Err(why) => {
            common::skip("cgroups", &format!("edge profiles: {why:#}"));
            false
        }
    }
}

/// No cgroup directory of this process is left (they are named `edgebench-PID`).
fn cgroups_left() -> Vec<String> {
    let mine = format!("edgebench-{}", std::process::id());
    let out = Command::new("find").args(["/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "-name", &mine]).output();
    String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default()).lines().map(str::to_string).collect()
}

#[test]
fn cpu_and_memory_profiles_are_in_force_for_processes_and_containers() {
    common::artifacts();
    if !cgroups_or_skip() {
        return;
    }
    let mut runtimes = vec!["native", "wasmtime-embedded"];
    for optional in ["wasmtime", "docker"] {
        if common::available(optional) {
            runtimes.push(optional);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::small_options(&runtimes, &[Workload::HELLO], dir.path());
    options.edge = PROFILES.map(String::from).to_vec();
    let (outcome, samples) = common::run_campaign(options);
    assert_eq!(outcome, Outcome::Finished);

    for runtime in &runtimes {
        for profile in PROFILES {
            let of = |metric: &str| {
                samples
                    .iter()
                    .filter(|s| s.runtime == *runtime && s.edge == profile && s.metric == metric && s.ok)
                    .count()
            };
            let failures: Vec<&str> = samples
                .iter()
                .filter(|s| s.runtime == *runtime && s.edge == profile && !s.ok)
                .map(|s| s.error.as_str())
                .collect();
            assert!(of("cold_start") >= 2, "{runtime} under {profile}: {failures:?}");
            if profile != "none" {
                let in_force: Vec<_> = samples
                    .iter()
                    .filter(|s| s.runtime == *runtime && s.edge == profile && s.metric == "edge_in_force")
                    .collect();
                let limit = if profile == "cpu-0.5" { "cpu 0.5 CPU" } else { "memory 128 MiB" };
                assert!(
                    in_force.len() >= 2 && in_force.iter().all(|s| s.ok && s.detail.contains(limit)),
                    "{runtime} {profile}: the limit is read back for every process: {in_force:?}"
                );
            }
        }
    }
    let store = edgebench::store::Store::open_existing(dir.path()).unwrap();
    let campaign = store.campaign().unwrap().unwrap();
    let bed = &campaign.environment["test_bed"]["edge"];
    assert!(bed["hierarchy"].as_str().is_some_and(|h| h.starts_with("cgroup v")), "{bed}");
    assert!(bed["profiles"]["cpu-0.5"].to_string().contains("50000"), "the quota is stored as read back: {bed}");

    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("## Under edge conditions"), "{report}");
    assert!(report.contains("| `cpu-0.5` |") && report.contains("| `mem-128m` |"), "every profile has a row: {report}");
    assert!(report.contains("cold_start") && report.contains("Δ [95% CI]"), "deltas with intervals: {report}");
    assert_eq!(cgroups_left(), Vec::<String>::new(), "the profiles' cgroups are removed");
}

/// A process over its memory cap is killed by the kernel, and the profile's
/// cgroup counts it: what a trial's failure reason is made from.
#[test]
fn a_process_over_the_memory_cap_is_oom_killed_and_counted() {
    if !cgroups_or_skip() {
        return;
    }
    let edge = Edge::start(&["mem-16m".to_string()]).expect("edge profiles");
    let entered = edge.enter("mem-16m").unwrap();
    let mut launch = edgebench::runtime::process::Launch::new("python3");
    launch.args(["-c", "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096])"]);
    let dir = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:9".parse().unwrap();
    let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap())];
    let mut instance = edgebench::runtime::process::spawn(
        launch,
        &env,
        addr,
        dir.path().join("log"),
        None,
        edgebench::runtime::process::WarmMode::None,
    )
    .unwrap();
    drop(entered);
    let deadline = Instant::now() + Duration::from_secs(30);
    let how = loop {
        if let Some(how) = edgebench::runtime::Instance::exited(&mut instance) {
            break how;
        }
        assert!(Instant::now() < deadline, "the process neither finished nor was killed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(how.contains("9") || how.to_lowercase().contains("kill"), "killed by the kernel: {how}");
    assert!(edge.oom_kills("mem-16m") >= 1, "the cgroup counts the OOM kill");
    drop(edge);
    assert_eq!(cgroups_left(), Vec::<String>::new());
}

/// A link profile needs `tc netem`; where the kernel lacks it, the campaign
/// is refused before anything is built or written, with the reason.
#[test]
fn a_link_profile_is_refused_with_the_reason_where_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let run = Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(["run", "--runtimes", "native", "--workloads", "hello", "--edge-profile", "none,net-4g", "--no-build"])
        .arg("--out")
        .arg(&out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("edge profile net-4g"), "{stderr}");
    assert!(stderr.contains("sch_netem") || stderr.contains("not built yet"), "{stderr}");
    assert!(!out.exists());
}
