//! The Docker backend against a real engine (started by the backend when none
//! runs). Without a usable engine each test prints why and passes, unless
//! `EDGEBENCH_REQUIRE` contains `docker`. No timing is asserted.
//! Tests hold one lock: they share the daemon and check that no container
//! labelled `edgebench=1` is left after each of them.

mod common;

use bollard::query_parameters::{ListContainersOptions, RemoveImageOptions};
use edgebench::artifacts::Artifacts;
use edgebench::campaign::{self, launch_until_ready, Campaign, Options, TrialKey};
use edgebench::runtime::docker::{Docker, ImageOutcome, DEFAULT_SOCKET, HOST_ENV};
use edgebench::runtime::{Context, LaunchSpec, Runtime, WarmStart};
use edgebench::store::{Sample, Store};
use edgebench::{conformance, Workload};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

static DOCKER: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    DOCKER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A set-up backend with its campaign context; `finish` tears it down and
/// checks that no edgebench container is left.
struct Fixture {
    docker: Docker,
    artifacts: Artifacts,
    dir: tempfile::TempDir,
    campaign_id: String,
}

impl Fixture {
    /// `None` (after printing why) when Docker cannot be used here.
    fn new(test: &str) -> Option<Fixture> {
        let artifacts = Artifacts::from_env();
        let docker = Docker::from_env();
        let detection = docker.detect(&artifacts);
        if !detection.available {
            return skip(test, &detection.reason);
        }
        let fixture = Fixture {
            docker,
            artifacts,
            dir: tempfile::tempdir().unwrap(),
            campaign_id: format!("test-{test}-{}", std::process::id()),
        };
        for sub in ["logs", "state", "home"] {
            std::fs::create_dir_all(fixture.dir.path().join(sub)).unwrap();
        }
        if let Err(e) = fixture.docker.setup(&fixture.ctx()) {
            return skip(test, &format!("setup failed: {e:#}"));
        }
        Some(fixture)
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            campaign_id: self.campaign_id.clone(),
            artifacts: &self.artifacts,
            work_dir: self.dir.path().to_path_buf(),
            env: campaign::controlled_env(self.dir.path()),
            server_netns: None,
            client_elsewhere: false,
            ready_timeout: None,
            concurrency: 16,
        }
    }

    fn key(&self, variant: &str, workload: Workload) -> TrialKey {
        TrialKey::new("docker", variant, workload, 0)
    }

    fn finish(self) {
        let left = edgebench_containers();
        self.docker.teardown(&self.ctx());
        assert!(left.is_empty(), "containers left after the test: {left:?}");
    }
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    common::skip("docker", &format!("{test}: Docker cannot be used here: {why}"));
    None
}

/// Talks to the engine directly (not through the backend), to check its work.
fn engine<T>(call: impl FnOnce(bollard::Docker) -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>>) -> T {
    let socket = std::env::var(HOST_ENV).unwrap_or_else(|_| DEFAULT_SOCKET.into());
    let api = bollard::Docker::connect_with_unix(&socket, 30, bollard::API_DEFAULT_VERSION).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let api = api.negotiate_version().await.unwrap();
        call(api).await
    })
}

/// Names of every container labelled `edgebench=1`, running or not.
fn edgebench_containers() -> Vec<String> {
    engine(|api| {
        Box::pin(async move {
            let filters = HashMap::from([("label".to_string(), vec!["edgebench=1".to_string()])]);
            let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
            let list = api.list_containers(Some(options)).await.unwrap();
            list.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
        })
    })
}

fn image_id(tag: &str) -> Option<String> {
    let tag = tag.to_string();
    engine(|api| Box::pin(async move { api.inspect_image(&tag).await.ok().and_then(|i| i.id) }))
}

#[test]
fn image_is_built_once_then_reused() {
    let _lock = lock();
    let Some(f) = Fixture::new("image") else { return };
    let (tag, _) = f.docker.ensure_image(&f.artifacts, &f.campaign_id).unwrap();
    let removed = tag.clone();
    engine(|api| {
        Box::pin(async move {
            let options = RemoveImageOptions { force: true, ..Default::default() };
            api.remove_image(&removed, Some(options), None).await.unwrap();
        })
    });
    assert_eq!(image_id(&tag), None);

    let (built, outcome) = f.docker.ensure_image(&f.artifacts, &f.campaign_id).unwrap();
    assert_eq!((built.as_str(), outcome), (tag.as_str(), ImageOutcome::Built));
    let id = image_id(&tag).expect("the built image is there");
    let labels = {
        let tag = tag.clone();
        engine(|api| Box::pin(async move { api.inspect_image(&tag).await.unwrap().config.unwrap().labels.unwrap() }))
    };
    assert_eq!(labels.get("edgebench").map(String::as_str), Some("1"));
    assert_eq!(labels.get("edgebench.campaign"), Some(&f.campaign_id));

    // A new backend (a new campaign) finds it by content hash; `prepare` does not rebuild either.
    let again = Docker::from_env();
    assert_eq!(again.ensure_image(&f.artifacts, "other").unwrap(), (tag.clone(), ImageOutcome::Reused));
    f.docker.prepare(&f.ctx(), Workload::HELLO, "bridge").unwrap();
    f.docker.prepare(&f.ctx(), Workload::KV, "host").unwrap();
    assert_eq!(image_id(&tag), Some(id));
    f.finish();
}

#[test]
fn cold_and_warm_start_of_hello_on_both_networks() {
    let _lock = lock();
    let Some(f) = Fixture::new("starts") else { return };
    let never = AtomicBool::new(false);
    for variant in f.docker.variants() {
        let ctx = f.ctx();
        let key = f.key(variant, Workload::HELLO);
        let Ok((mut instance, ready)) = launch_until_ready(&f.docker, &key, &ctx, &never) else {
            panic!("{variant}: no cold start")
        };
        let phases: HashMap<String, _> = instance.launch_phases().into_iter().collect();
        assert!(phases["create"] <= phases["start"] && phases["start"] <= ready.response, "{variant}: {phases:?}");

        let pids = instance.pids();
        let names: Vec<String> =
            pids.iter().filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok()).collect();
        assert!(names.iter().any(|n| n.starts_with("containerd-shim")), "{variant}: {names:?}");
        assert!(names.iter().any(|n| n.starts_with("edgebench-work")), "{variant}: {names:?}");
        assert_eq!(names.iter().any(|n| n.trim() == "docker-proxy"), *variant == "bridge", "{variant}: {names:?}");
        let extra: HashMap<String, f64> = instance.extra_resources().into_iter().map(|r| (r.metric, r.value)).collect();
        assert!(extra.get("cgroup_memory_current").is_some_and(|kib| *kib > 0.0), "{variant}: {extra:?}");
        assert!(extra.contains_key("cgroup_memory_peak") && extra.contains_key("cgroup_cpu"), "{variant}: {extra:?}");

        for _ in 0..2 {
            match instance.warm_start(Workload::HELLO) {
                WarmStart::Measured(samples) => {
                    let kinds: Vec<&str> = samples.iter().map(|s| s.phase.as_str()).collect();
                    assert_eq!(kinds, ["restart", "unpause"], "{variant}");
                }
                other => panic!("{variant}: warm start {other:?}"),
            }
        }
        assert!(instance.exited().is_none(), "{variant}: the container died");
        instance.stop().unwrap();
        instance.stop().unwrap();
        assert!(instance.pids().is_empty());
    }
    f.finish();
}

#[test]
fn the_container_runs_on_the_sut_cpus() {
    let _lock = lock();
    let host = edgebench::cpus::host_cpus();
    if host.len() < 2 {
        eprintln!("skipped: one CPU only ({host}): nothing to split");
        return;
    }
    let plan = edgebench::cpus::CpuPlan::resolve("auto", &host).unwrap();
    plan.install().unwrap();
    let Some(f) = Fixture::new("cpuset") else { return };
    let never = AtomicBool::new(false);
    let key = f.key("host", Workload::HELLO);
    let Ok((mut instance, _)) = launch_until_ready(&f.docker, &key, &f.ctx(), &never) else { panic!("no cold start") };
    let server: Vec<u32> = instance
        .pids()
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("edgebench-work")))
        .collect();
    assert!(!server.is_empty(), "the container's server process is found");
    for pid in server {
        assert_eq!(edgebench::cpus::allowed_of(pid), Some(plan.sut.clone()), "pid {pid}: --cpuset-cpus = the SUT set");
    }
    instance.stop().unwrap();
    f.finish();
}

#[test]
fn campaign_measures_docker_phases_and_warm_start_kinds() {
    let _lock = lock();
    let Some(f) = Fixture::new("campaign") else { return };
    // The campaign sets up and tears down the backend itself.
    f.docker.teardown(&f.ctx());
    let out = f.dir.path().join("campaign");
    let options = Options {
        runtimes: Some(vec!["docker".into()]),
        workloads: vec![Workload::HELLO],
        reps: 1,
        requests: 20,
        warmup_requests: 5,
        warm_starts: 2,
        metrics: edgebench::campaign::Metric::DEFAULT.to_vec(),
        out: Some(out.clone()),
        ..Options::default()
    };
    let mut campaign = Campaign::create(options, f.artifacts.clone()).unwrap();
    campaign.run(&AtomicBool::new(false)).unwrap();
    let samples = Store::open_existing(&out).unwrap().samples(&campaign.id).unwrap();
    let failed: Vec<_> = samples.iter().filter(|s| !s.ok).map(|s| (&s.variant, &s.metric, &s.error)).collect();
    assert!(failed.is_empty(), "{failed:?}");
    for variant in ["bridge", "host"] {
        let has = |metric: &str, phase: &str| {
            samples.iter().any(|s| s.variant == variant && s.metric == metric && s.phase == phase)
        };
        for metric in ["cold_start", "cold_start_create", "cold_start_start", "cold_start_accept", "memory_pss"] {
            let phase = if metric == "memory_pss" { "after_boot" } else { "" };
            assert!(has(metric, phase), "{variant}: no {metric}");
        }
        assert!(has("warm_start", "restart") && has("warm_start", "unpause"), "{variant}");
        assert!(has("cgroup_memory_current", "after_latency"), "{variant}");
        // CPU attribution across a restart: the boot and latency phases'
        // CPU are measured (cgroup + shim + proxy), and every restart comes
        // after them, so no CPU interval spans processes that a restart
        // replaced (their CPU would be subtracted from the new ones').
        let of = |metric: &str, phase: &str| -> Vec<&Sample> {
            samples.iter().filter(|s| s.variant == variant && s.metric == metric && s.phase == phase).collect()
        };
        for phase in ["boot", "latency"] {
            let cpu = of("cpu_time", phase);
            assert!(
                cpu.len() == 1 && cpu[0].ok && cpu[0].value.is_some_and(|v| v > 0.0),
                "{variant}: cpu_time {phase}: {cpu:?}"
            );
        }
        let latency_cpu = of("cpu_time", "latency")[0].ts_ns;
        let first_restart = of("warm_start", "restart").iter().map(|s| s.ts_ns).min().unwrap();
        assert!(latency_cpu < first_restart, "{variant}: a restart before the latency phase's CPU was read");
    }
    let daemon = samples.iter().filter(|s| s.metric == "daemon_memory_pss").count();
    assert_eq!(daemon, 1, "the daemon's memory is recorded once per campaign");
    // The campaign may have stopped the daemon it started: answer again for the check.
    f.docker.setup(&f.ctx()).unwrap();
    f.finish();
}

#[test]
fn conformance_on_all_workloads_and_both_networks() {
    let _lock = lock();
    let Some(f) = Fixture::new("conformance") else { return };
    let ctx = f.ctx();
    for variant in f.docker.variants() {
        for workload in Workload::BUILTIN {
            let mismatches = conformance::check(&f.docker, variant, workload, &ctx).unwrap();
            assert!(mismatches.is_empty(), "{variant} {workload}: {mismatches:?}");
        }
    }
    f.finish();
}

#[test]
fn failures_leave_no_container() {
    let _lock = lock();
    let Some(f) = Fixture::new("failures") else { return };
    let ctx = f.ctx();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();

    // Host network, port taken: the server exits at once; the probe sees the exit.
    let spec = LaunchSpec {
        workload: Workload::HELLO,
        variant: "host",
        addr,
        label: "taken-host".into(),
        netns: None,
        firewall: None,
    };
    let mut instance = f.docker.launch(&ctx, &spec).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let how = loop {
        if let Some(how) = instance.exited() {
            break how;
        }
        assert!(std::time::Instant::now() < deadline, "the container did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(how.contains("exit code 1") && how.contains("cannot listen"), "{how}");
    instance.stop().unwrap();
    assert!(edgebench_containers().is_empty());

    // Bridge, port taken: Docker cannot publish it; the half-made container is removed.
    let spec = LaunchSpec {
        workload: Workload::HELLO,
        variant: "bridge",
        addr,
        label: "taken-bridge".into(),
        netns: None,
        firewall: None,
    };
    let err = f.docker.launch(&ctx, &spec).err().expect("publishing a taken port fails").to_string();
    assert!(err.contains("start"), "{err}");
    assert!(edgebench_containers().is_empty());

    // Through the trial code: a failed cold start stops what it launched.
    let never = AtomicBool::new(false);
    drop(taken);
    let key = f.key("host", Workload::ECHO);
    let (instance, _) = launch_until_ready(&f.docker, &key, &ctx, &never).unwrap_or_else(|_| panic!("no start"));
    // Dropping an instance without stop (a panic, an early return) removes it too.
    drop(instance);
    assert!(edgebench_containers().is_empty());
    f.finish();
}

#[test]
fn leftovers_of_a_crashed_campaign_are_removed_at_setup() {
    let _lock = lock();
    let Some(f) = Fixture::new("leftovers") else { return };
    let (tag, _) = f.docker.ensure_image(&f.artifacts, &f.campaign_id).unwrap();
    // A container like ours whose edgebench is gone (no pid is that high).
    engine(|api| {
        Box::pin(async move {
            let labels = HashMap::from([
                ("edgebench".to_string(), "1".to_string()),
                ("edgebench.campaign".to_string(), "crashed".to_string()),
                ("edgebench.owner".to_string(), "999999999:1".to_string()),
            ]);
            let config = bollard::models::ContainerCreateBody {
                image: Some(tag),
                cmd: Some(vec!["hello".into(), "127.0.0.1:1".into()]),
                labels: Some(labels),
                ..Default::default()
            };
            api.create_container(None::<bollard::query_parameters::CreateContainerOptions>, config).await.unwrap();
        })
    });
    assert_eq!(edgebench_containers().len(), 1);
    f.docker.setup(&f.ctx()).unwrap();
    assert!(edgebench_containers().is_empty());
    f.finish();
}

#[test]
fn not_measured_without_an_engine() {
    let _lock = lock();
    let artifacts = Artifacts::from_env();
    let previous = std::env::var(HOST_ENV).ok();
    let restore = |value: Option<String>| match value {
        Some(v) => std::env::set_var(HOST_ENV, v),
        None => std::env::remove_var(HOST_ENV),
    };
    std::env::set_var(HOST_ENV, "/nonexistent/edgebench/docker.sock");
    let docker = edgebench::runtime::all().into_iter().find(|r| r.name() == "docker").unwrap();
    let bad = Docker::with_socket("tcp://127.0.0.1:2375");
    restore(previous);

    if artifacts.native_server().exists() {
        let detection = docker.detect(&artifacts);
        assert!(!detection.available);
        assert!(
            detection.reason.contains("no Docker engine") && detection.reason.contains("/nonexistent/edgebench"),
            "{}",
            detection.reason
        );
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context {
            campaign_id: "no-engine".into(),
            artifacts: &artifacts,
            work_dir: dir.path().to_path_buf(),
            env: campaign::controlled_env(dir.path()),
            server_netns: None,
            client_elsewhere: false,
            ready_timeout: None,
            concurrency: 16,
        };
        let err = format!("{:#}", docker.setup(&ctx).unwrap_err());
        assert!(err.contains("only for the default socket"), "{err}");
    }
    let reason = bad.detect(&artifacts).reason;
    assert!(reason.contains("not a unix socket path"), "{reason}");
}
