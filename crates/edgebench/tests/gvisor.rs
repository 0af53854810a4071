//! The gVisor backend against a real engine (the suite's dockerd, started by
//! scripts/test.sh with runsc's runtimes, or one the backend starts itself).
//! Without runsc or a usable engine the test prints why and passes, unless
//! `EDGEBENCH_REQUIRE` contains `gvisor`. No timing is asserted.

mod common;

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{self, launch_until_ready, TrialKey};
use edgebench::runtime::{Context, LaunchSpec, WarmStart};
use edgebench::{conformance, Workload};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

#[test]
fn every_variant_conforms_or_says_why_not() {
    if !common::available("gvisor") {
        return;
    }
    let gvisor = edgebench::runtime::all().into_iter().find(|r| r.name() == "gvisor").unwrap();
    let artifacts = Artifacts::from_env();
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context {
        campaign_id: format!("test-gvisor-{}", std::process::id()),
        artifacts: &artifacts,
        work_dir: dir.path().to_path_buf(),
        env: campaign::controlled_env(dir.path()),
        server_netns: None,
        client_elsewhere: false,
        ready_timeout: None,
        concurrency: 16,
    };
    for sub in ["logs", "state", "home"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    gvisor.setup(&ctx).unwrap();
    let never = AtomicBool::new(false);
    let mut measured = 0;
    for variant in gvisor.variants() {
        if let Err(why) = gvisor.serves_workloads(variant) {
            assert!(why.starts_with("not measured: "), "{variant}: {why}");
            let spec = LaunchSpec {
                workload: Workload::HELLO,
                variant,
                addr: "127.0.0.1:1".parse().unwrap(),
                label: "own".into(),
                netns: None,
                firewall: None,
            };
            let own = gvisor.own_trial(&ctx, &spec).expect("a not-measured variant runs no workload");
            assert!(own.iter().all(|s| s.value.is_err()), "{variant}: {own:?}");
            continue;
        }
        for workload in Workload::BUILTIN {
            gvisor.prepare(&ctx, workload, variant).unwrap();
            let mismatches = conformance::check(gvisor.as_ref(), variant, workload, &ctx).unwrap();
            assert!(mismatches.is_empty(), "{variant} {workload}: {mismatches:?}");
        }

        // What memory and CPU count: the shim, docker-proxy, and runsc's
        // sandbox and gofer (both `exe`), all in the container's cgroup.
        let key = TrialKey::new("gvisor", variant, Workload::HELLO, 0);
        let Ok((mut instance, _)) = launch_until_ready(gvisor.as_ref(), &key, &ctx, &never) else {
            panic!("{variant}: no cold start")
        };
        let names: Vec<String> = instance.pids().into_iter().map(comm).collect();
        assert!(names.iter().any(|n| n.starts_with("containerd-shim")), "{variant}: {names:?}");
        assert!(names.iter().any(|n| n == "docker-proxy"), "{variant}: {names:?}");
        assert!(names.iter().filter(|n| *n == "exe").count() >= 2, "sandbox and gofer: {variant}: {names:?}");
        let extra: HashMap<String, f64> = instance.extra_resources().into_iter().map(|r| (r.metric, r.value)).collect();
        assert!(extra.get("cgroup_memory_current").is_some_and(|kib| *kib > 0.0), "{variant}: {extra:?}");
        assert!(extra.get("cgroup_cpu").is_some_and(|ms| *ms > 0.0), "{variant}: {extra:?}");
        match instance.warm_start(Workload::HELLO) {
            WarmStart::Measured(samples) => {
                let kinds: Vec<&str> = samples.iter().map(|s| s.phase.as_str()).collect();
                assert_eq!(kinds, ["restart", "unpause"], "{variant}");
            }
            other => panic!("{variant}: warm start {other:?}"),
        }
        instance.stop().unwrap();
        assert!(instance.pids().is_empty());
        measured += 1;
    }
    gvisor.teardown(&ctx);
    assert!(measured >= 1, "ptrace-hostinet runs wherever gvisor is detected");
    assert_eq!(common::children_left(), Vec::<String>::new());
}
