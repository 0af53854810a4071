//! wasmCloud for real: a `wash host` per instance on a campaign's nats-server
//! and local registry, deployed to over NATS; small counts. Skipped (with the
//! reason printed) where wash, nats-server or docker-registry is missing,
//! unless EDGEBENCH_REQUIRE names wasmcloud.

mod common;

use common::*;
use edgebench::campaign::{free_loopback_addr, Campaign, Outcome};
use edgebench::runtime::wasmcloud::Wasmcloud;
use edgebench::runtime::{Context, LaunchSpec, Runtime, WarmStart};
use edgebench::Workload;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `children_left` sees every child of this process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const VARIANTS: [&str; 3] = ["host-cold", "deploy-cold", "deploy-warm"];

fn context<'a>(artifacts: &'a edgebench::artifacts::Artifacts, work: &Path) -> Context<'a> {
    Context::new("wasmcloud-test", artifacts, work).unwrap()
}

fn spec(workload: Workload, variant: &str) -> LaunchSpec<'_> {
    LaunchSpec {
        workload,
        variant,
        addr: free_loopback_addr().unwrap(),
        label: format!("wasmcloud-{variant}-{workload}-test"),
        netns: None,
        firewall: None,
    }
}

/// Children of this process that belong to the wasmCloud stack.
fn stack_processes_left() -> Vec<String> {
    children_left()
        .into_iter()
        .filter(|p| ["wash", "nats-server", "docker-registry"].iter().any(|n| p.contains(n)))
        .collect()
}

#[test]
fn all_three_start_variants_are_measured_for_hello() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (outcome, samples) = run_campaign(small_options(&["wasmcloud"], &[Workload::HELLO], dir.path()));
    assert_eq!(outcome, Outcome::Finished);
    let failed: Vec<_> = samples.iter().filter(|s| !s.ok).collect();
    assert!(failed.is_empty(), "no failed samples: {failed:#?}");
    let of = |variant: &str, metric: &str, phase: &str| -> Vec<f64> {
        ok_values(&samples, "wasmcloud", "hello", metric)
            .into_iter()
            .filter(|s| s.variant == variant && s.phase == phase)
            .map(|s| s.value.unwrap())
            .collect()
    };
    for variant in VARIANTS {
        let cold = of(variant, "cold_start", "");
        assert_eq!(cold.len(), 2, "{variant}: two cold starts");
        assert!(cold.iter().all(|v| *v > 0.0));
        let running = of(variant, "cold_start_workload_running", "");
        assert_eq!(running.len(), 2, "{variant}: the workload_running phase");
        assert!(running.iter().zip(&cold).all(|(r, c)| r <= c), "{variant}: RUNNING comes before the first 200");
        assert_eq!(of(variant, "latency_keepalive", "").len(), 2 * 20, "{variant}");
        assert_eq!(of(variant, "warm_start", "").len(), 2 * 3, "{variant}: per-request warm starts");
        assert_eq!(of(variant, "warm_start", "redeploy").len(), 2 * 3, "{variant}: redeploys");
        for metric in ["memory_pss", "memory_pss_nats_server", "memory_pss_registry"] {
            let values = of(variant, metric, "after_boot");
            assert!(values.len() == 2 && values.iter().all(|v| *v > 0.0), "{variant}: {metric}: {values:?}");
        }
        assert_eq!(of(variant, "cpu_time", "boot").len(), 2, "{variant}");
    }
    assert_eq!(of("host-cold", "cold_start_host_heartbeat", "").len(), 2);
    let median = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (cold, warm) = (median(of("deploy-cold", "cold_start", "")), median(of("deploy-warm", "cold_start", "")));
    assert!(warm < cold, "a cached component deploys faster than a pulled and compiled one: {warm} vs {cold} ms");
    assert!(dir.path().join("report.md").exists());
    assert_eq!(stack_processes_left(), Vec::<String>::new(), "nothing of the stack left running");
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn every_workload_answers_like_the_workload_core_on_wasmcloud() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, work.path());
    let backend = Wasmcloud::default();
    backend.setup(&ctx).unwrap();
    let mut mismatches = Vec::new();
    for w in Workload::BUILTIN {
        backend.prepare(&ctx, w, "deploy-cold").unwrap();
        mismatches.extend(edgebench::conformance::check(&backend, "deploy-cold", w, &ctx).unwrap());
    }
    backend.teardown(&ctx);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn a_deploy_of_a_bad_image_reference_fails_clearly_and_stops_its_host() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, work.path());
    for (reference, expected) in [
        ("{registry}/edgebench/no-such-image:0.0.0", "manifest unknown"),
        ("{registry}/Not A Reference", "Not A Reference"),
    ] {
        let backend = Wasmcloud::default().with_image_reference(Workload::HELLO, reference);
        backend.setup(&ctx).unwrap();
        let error = match backend.launch(&ctx, &spec(Workload::HELLO, "deploy-cold")) {
            Ok(_) => panic!("{reference} deployed"),
            Err(e) => format!("{e:#}"),
        };
        eprintln!("{reference}: {error}");
        assert!(error.contains("wasmCloud did not start the workload"), "{error}");
        assert!(error.contains(expected), "the host's reason is in the error: {error}");
        let wash_left: Vec<_> = stack_processes_left().into_iter().filter(|p| p.contains("wash")).collect();
        assert_eq!(wash_left, Vec::<String>::new(), "the host of the failed deploy is stopped");
        backend.teardown(&ctx);
        assert_eq!(children_left(), Vec::<String>::new());
    }
}

#[test]
fn an_instance_runs_in_a_controlled_environment_and_stops_twice() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, work.path());
    let backend = Wasmcloud::default();
    backend.setup(&ctx).unwrap();
    let mut instance = backend.launch(&ctx, &spec(Workload::HELLO, "host-cold")).unwrap();
    let pids = instance.pids();
    assert_eq!(pids.len(), 1, "one wash host process: {pids:?}");
    let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap();
    let env: Vec<String> =
        environ.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into()).collect();
    assert!(!env.iter().any(|v| v.starts_with("RUST_BACKTRACE=")), "{env:?}");
    let home = env.iter().find_map(|v| v.strip_prefix("HOME=")).expect("HOME set");
    assert!(home.starts_with(&work.path().join("state").display().to_string()), "a HOME of its own: {home}");
    let record = work.path().join("logs/wasmcloud-host-cold-hello-test.wash-host.json");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(record["env"]["HOME"], home, "what was used is stored: {record}");
    assert!(record["args"].as_array().unwrap().iter().any(|a| a == "--http-addr"), "{record}");
    match instance.warm_start(Workload::HELLO) {
        WarmStart::Measured(samples) => {
            let phases: Vec<&str> = samples.iter().map(|s| s.phase.as_str()).collect();
            assert_eq!(phases, ["", "redeploy"]);
        }
        other => panic!("warm start: {other:?}"),
    }
    instance.stop().unwrap();
    instance.stop().unwrap();
    assert!(instance.pids().is_empty());
    drop(instance);
    backend.teardown(&ctx);
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn an_interrupted_campaign_leaves_nothing_running() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["wasmcloud"], &[Workload::HELLO], dir.path());
    options.reps = 5;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        flag.store(true, Ordering::SeqCst);
    });
    let mut campaign = Campaign::create(options, artifacts()).unwrap();
    let outcome = campaign.run(&interrupted).unwrap();
    stopper.join().unwrap();
    assert_eq!(outcome, Outcome::Interrupted);
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn density_counts_deployments_on_one_warm_host_and_hosts_otherwise() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available("wasmcloud") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["wasmcloud:deploy-warm", "wasmcloud:host-cold"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    options.metrics = vec![edgebench::campaign::Metric::Scaling];
    options.scaling.max_concurrent = 1;
    options.scaling.max_instances = 2;
    options.scaling.max_tenants = 6;
    options.scaling.slo_p99_ms = 1000.0;
    let (_, samples) = run_campaign(options);
    let density = |variant: &str| {
        let d: Vec<_> = ok_values(&samples, "wasmcloud", "hello", "density")
            .into_iter()
            .filter(|s| s.variant == variant)
            .cloned()
            .collect();
        assert_eq!(d.len(), 1, "{variant}: {d:?}");
        d[0].clone()
    };
    // Each tenant answered its own `Host:` before it counted.
    let warm = density("deploy-warm");
    assert_eq!(warm.value, Some(6.0), "{warm:?}");
    assert!(warm.detail.starts_with("tenants in one host process; tenant bound: 6"), "{warm:?}");
    let cold = density("host-cold");
    assert_eq!(cold.value, Some(2.0), "{cold:?}");
    assert!(cold.detail.starts_with("instance bound"), "{cold:?}");
    assert_eq!(stack_processes_left(), Vec::<String>::new());
    assert_eq!(children_left(), Vec::<String>::new());
}
