//! The unikernel against the real QEMU: conformance of all four workloads on
//! every variant that runs here, a small campaign (cold start, latency,
//! memory split, throughput, image size), and a user's image (ours, passed in
//! as one) that conforms, and one that answers differently and is reported.
//! Without QEMU (or root) each test prints why and passes, unless
//! `EDGEBENCH_REQUIRE` names `unikernel`. No timing is asserted.

mod common;

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{launch_until_ready, Metric, TrialKey};
use edgebench::conformance;
use edgebench::runtime::microvm::{Unikernel, UserImage};
use edgebench::runtime::{Context, Runtime};
use edgebench::Workload;
use std::sync::{Mutex, MutexGuard};

static VMS: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    VMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn context<'a>(artifacts: &'a Artifacts, dir: &tempfile::TempDir) -> Context<'a> {
    for sub in ["logs", "state", "home"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    Context {
        campaign_id: format!("test-unikernel-{}", std::process::id()),
        artifacts,
        work_dir: dir.path().to_path_buf(),
        env: vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())],
        server_netns: None,
        client_elsewhere: false,
        ready_timeout: None,
        concurrency: 16,
    }
}

/// The variants that boot here (a missing Firecracker is reported, not run).
fn serving_variants(u: &Unikernel) -> Vec<&'static str> {
    u.variants().iter().copied().filter(|v| u.serves_workloads(v).is_ok()).collect()
}

/// Our image as a user would describe it, on another port.
fn our_image_as_user(args: &str) -> UserImage {
    UserImage { kernel: common::artifacts().unikernel(), initrd: None, args: args.into(), port: 9090, memory_mib: 64 }
}

#[test]
fn every_workload_conforms_on_every_variant_that_runs_here() {
    let _l = lock();
    if !common::available("unikernel") {
        return;
    }
    let artifacts = common::artifacts();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, &dir);
    let u = Unikernel::from_env();
    let variants = serving_variants(&u);
    assert!(variants.contains(&"qemu-tcg"), "{variants:?}");
    for variant in variants {
        for w in Workload::BUILTIN {
            let problems = conformance::check(&u, variant, w, &ctx).unwrap();
            assert!(problems.is_empty(), "{variant} {w}: {problems:?}");
        }
    }
    assert_eq!(common::children_left(), Vec::<String>::new());
}

/// CPU time (user + system) of `pids` so far, in clock ticks.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum()
}

#[test]
fn an_idle_unikernel_vm_halts_instead_of_holding_its_cpu() {
    let _l = lock();
    if !common::available("unikernel") {
        return;
    }
    let artifacts = common::artifacts();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, &dir);
    let u = Unikernel::from_env();
    u.setup(&ctx).unwrap();
    for variant in serving_variants(&u) {
        let key = TrialKey::new("unikernel", variant, Workload::HELLO, 0);
        let Ok((mut instance, _)) = launch_until_ready(&u, &key, &ctx, &std::sync::atomic::AtomicBool::new(false))
        else {
            panic!("{variant}: the VM did not come up")
        };
        let pids = instance.pids();
        let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
        std::thread::sleep(std::time::Duration::from_millis(500));
        let before = cpu_ticks(&pids);
        std::thread::sleep(std::time::Duration::from_secs(2));
        let used = cpu_ticks(&pids) - before;
        instance.stop().unwrap();
        // A guest that polls its NIC keeps its vCPU busy: 2 s of CPU in 2 s.
        assert!(used < ticks_per_s, "{variant}: {used} ticks of CPU in 2 s of idling");
    }
    u.teardown(&ctx);
    assert_eq!(common::children_left(), Vec::<String>::new());
}

#[test]
fn a_campaign_measures_the_unikernel_and_records_its_image() {
    let _l = lock();
    if !common::available("unikernel") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::small_options(&["unikernel"], &[Workload::HELLO], dir.path());
    options.metrics = vec![Metric::ColdStart, Metric::LatencyKeepalive, Metric::Memory, Metric::Throughput];
    options.load.duration_ms = 200;
    options.load.search_steps = 2;
    let (_, samples) = common::run_campaign(options);
    let u = Unikernel::from_env();
    for variant in serving_variants(&u) {
        let ok = |metric: &str| samples.iter().filter(|s| s.variant == variant && s.metric == metric && s.ok).count();
        for metric in
            ["cold_start", "latency_keepalive", "memory_pss", "vmm_overhead_pss", "guest_memory", "throughput"]
        {
            assert!(ok(metric) > 0, "{variant}: no {metric}");
        }
        if variant.starts_with("firecracker") {
            // Guest boot apart from VMM time: Firecracker's boot timer, written by the guest's main.
            for metric in ["vmm_boot_timer", "cold_start_instance_start", "cold_start_api_ready"] {
                assert!(ok(metric) > 0, "{variant}: no {metric}");
            }
        }
        let image: Vec<_> = samples.iter().filter(|s| s.variant == variant && s.metric == "image_size").collect();
        assert!(image.len() == 1 && image[0].ok && image[0].phase == "prepare", "{variant}: {image:?}");
    }
    // A variant that cannot run here is in the data with its reason.
    for variant in u.variants().iter().filter(|v| u.serves_workloads(v).is_err()) {
        let why: Vec<_> = samples.iter().filter(|s| s.variant == *variant && s.metric == "cold_start").collect();
        assert!(!why.is_empty() && why.iter().all(|s| !s.ok && s.error.starts_with("not measured")), "{why:?}");
    }
}

#[test]
fn a_user_image_is_booted_and_checked_like_any_runtime() {
    let _l = lock();
    if !common::available("unikernel") {
        return;
    }
    let artifacts = common::artifacts();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, &dir);
    let user = Unikernel::with_image(our_image_as_user(
        "eb.ip={ip}/{prefix} eb.gw={gateway} eb.workload={workload} eb.port={port} eb.tsc_khz={tsc_khz}",
    ));
    let d = user.detect(&artifacts);
    assert!(d.available && d.version.starts_with("user's "), "{}", d.version);
    for w in [Workload::HELLO, Workload::KV] {
        let problems = conformance::check(&user, "qemu-tcg", w, &ctx).unwrap();
        assert!(problems.is_empty(), "{w}: {problems:?}");
    }
    // An image that always serves hello, whatever it is asked: cpu does not conform.
    let wrong = Unikernel::with_image(our_image_as_user(
        "eb.ip={ip}/{prefix} eb.gw={gateway} eb.workload=hello eb.port={port} eb.tsc_khz={tsc_khz}",
    ));
    // Its readiness probe (a cpu request) never gets the cpu answer: the
    // check fails with the reason, or lists what differs; it never passes.
    let ctx = Context { ready_timeout: Some(std::time::Duration::from_secs(15)), ..ctx };
    match conformance::check(&wrong, "qemu-tcg", Workload::CPU, &ctx) {
        Ok(problems) => assert!(!problems.is_empty(), "a wrong answer is reported"),
        Err(e) => assert!(format!("{e:#}").contains("no correct answer"), "{e:#}"),
    }
    assert_eq!(common::children_left(), Vec::<String>::new());
}

#[test]
fn a_bad_user_image_description_is_named() {
    // SAFETY of the env: this test binary reads these variables only here.
    std::env::set_var("EDGEBENCH_UNIKERNEL", "/nonexistent/kernel");
    std::env::remove_var("EDGEBENCH_UNIKERNEL_ARGS");
    let d = Unikernel::from_env().detect(&common::artifacts());
    std::env::set_var("EDGEBENCH_UNIKERNEL_ARGS", "eb.ip={ip}");
    let missing = Unikernel::from_env().detect(&common::artifacts());
    std::env::remove_var("EDGEBENCH_UNIKERNEL");
    std::env::remove_var("EDGEBENCH_UNIKERNEL_ARGS");
    if !d.available && d.reason.contains("qemu-system-x86_64 not found") {
        return common::skip("unikernel", &d.reason);
    }
    assert!(!d.available && d.reason.contains("EDGEBENCH_UNIKERNEL_ARGS"), "{}", d.reason);
    assert!(!missing.available && missing.reason.contains("/nonexistent/kernel"), "{}", missing.reason);
}
