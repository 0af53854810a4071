//! Micro-VM backends against the real QEMU: the guest build, the network
//! namespace each VM gets, a VM that cannot boot, and a small TCG campaign.
//! Without QEMU (or root) each test prints why and passes, unless
//! `EDGEBENCH_REQUIRE` names `qemu-microvm`. No timing is asserted.
//! Tests hold one lock: each checks that no VMM process, namespace or tap of
//! this test process is left.

mod common;

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{launch_until_ready, TrialKey};
use edgebench::runtime::microvm::{guest, netns, QemuMicrovm};
use edgebench::runtime::{Context, LaunchSpec, Runtime};
use edgebench::Workload;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

static VMS: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    VMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds the guest (kernel via apt, initramfs); `None` after printing why it cannot.
fn guest_files() -> Option<guest::GuestFiles> {
    match guest::build(&common::artifacts()) {
        Ok(files) => Some(files),
        Err(e) => {
            let reason = format!("guest not built: {e:#}");
            common::skip("qemu-microvm", &reason);
            None
        }
    }
}

/// Namespaces this test process created that still exist.
fn namespaces_left() -> Vec<String> {
    let mine = format!("{}{}-", netns::PREFIX, std::process::id());
    netns::existing().into_iter().filter(|n| n.starts_with(&mine)).collect()
}

fn assert_nothing_left() {
    assert_eq!(common::children_left(), Vec::<String>::new(), "processes left");
    assert_eq!(namespaces_left(), Vec::<String>::new(), "network namespaces left");
}

fn context<'a>(artifacts: &'a Artifacts, dir: &tempfile::TempDir) -> Context<'a> {
    for sub in ["logs", "state", "home"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    Context {
        campaign_id: format!("test-microvm-{}", std::process::id()),
        artifacts,
        work_dir: dir.path().to_path_buf(),
        env: vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())],
        server_netns: None,
        client_elsewhere: false,
        ready_timeout: None,
        concurrency: 16,
    }
}

#[test]
fn guest_artifacts_build() {
    let _l = lock();
    let Some(files) = guest_files() else { return };
    assert!(files.kernel().metadata().unwrap().len() > 1 << 20, "kernel too small");
    for m in guest::MODULES {
        assert!(files.module(m).exists(), "module {m}");
    }
    let cpio = std::fs::read(files.initramfs()).unwrap();
    assert!(cpio.starts_with(b"070701"), "newc cpio");
    let has =
        |name: &str| cpio.windows(name.len() + 1).any(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0);
    for name in ["init", "edgebench-workload", "dev/console", "TRAILER!!!"] {
        assert!(has(name), "{name} in the initramfs");
    }
    for m in guest::MODULES {
        assert!(has(&format!("lib/modules/{m}.ko")), "{m}.ko in the initramfs");
    }
    // A second build changes nothing.
    let before = files.initramfs().metadata().unwrap().modified().unwrap();
    guest::build(&common::artifacts()).unwrap();
    assert_eq!(files.initramfs().metadata().unwrap().modified().unwrap(), before);
}

#[test]
fn namespace_and_tap_are_created_and_removed() {
    let _l = lock();
    if let Some(why) = edgebench::runtime::microvm::privilege_problem() {
        common::skip("qemu-microvm", &why);
        return;
    }
    let mut ns = netns::Netns::create().expect("namespace");
    // A second VM at the same time (scaling) gets other addresses.
    let mut other = netns::Netns::create().expect("second namespace");
    let (a, b) = (ns.addrs(), other.addrs());
    assert!(a.guest != b.guest && a.client != b.client, "{a:?} {b:?}");
    let name = ns.name().to_string();
    assert!(netns::existing().contains(&name));
    let link = Command::new("ip").args(["-n", &name, "-o", "addr", "show", netns::TAP]).output().unwrap();
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(text.contains(&format!("{}/{}", a.gateway, netns::NET_PREFIX)), "tap address: {text}");
    // The client reaches the guest's address over our veth only, and the namespace forwards.
    ns.verify_route().unwrap();
    let route = Command::new("ip").args(["route", "get", &a.guest.to_string()]).output().unwrap();
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains(&format!("via {}", a.router)) && route.contains(&format!("src {}", a.client)), "{route}");
    let forwarding =
        Command::new("ip").args(["netns", "exec", &name, "cat", "/proc/sys/net/ipv4/ip_forward"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&forwarding.stdout).trim(), "1");
    // The tap exists only inside the namespace.
    let outside = Command::new("ip").args(["link", "show", netns::TAP]).output().unwrap();
    assert!(!outside.status.success(), "tap visible in the root namespace");
    ns.delete().unwrap();
    other.delete().unwrap();
    assert!(!netns::existing().contains(&name));
    ns.delete().unwrap();
    // The host ends of the veth pairs went with their namespaces.
    let left = Command::new("ip").args(["-o", "addr", "show"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.contains(&a.client.to_string()) && !left.contains(&b.client.to_string()), "{left}");
    assert_nothing_left();
}

#[test]
fn bad_kernel_path_is_a_clear_error_and_leaves_nothing() {
    let _l = lock();
    if !common::available("qemu-microvm") {
        return;
    }
    let artifacts = common::artifacts();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&artifacts, &dir);
    let runtime = QemuMicrovm::with_kernel("/nonexistent/vmlinuz".into());
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let spec = LaunchSpec {
        workload: Workload::HELLO,
        variant: "tcg",
        addr,
        label: "bad-kernel".into(),
        netns: None,
        firewall: None,
    };
    let err = runtime.launch(&ctx, &spec).err().expect("launch must fail");
    let text = format!("{err:#}");
    assert!(text.contains("/nonexistent/vmlinuz") && text.contains("does not exist"), "{text}");
    assert_nothing_left();
}

#[test]
fn a_kernel_that_does_not_boot_fails_the_trial_and_leaves_nothing() {
    let _l = lock();
    if !common::available("qemu-microvm") {
        return;
    }
    let artifacts = common::artifacts();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("not-a-kernel");
    std::fs::write(&junk, b"this is not a kernel").unwrap();
    let ctx = context(&artifacts, &dir);
    let runtime = QemuMicrovm::with_kernel(junk);
    runtime.setup(&ctx).unwrap();
    let key = TrialKey::new("qemu-microvm", "tcg", Workload::HELLO, 0);
    let result = launch_until_ready(&runtime, &key, &ctx, &AtomicBool::new(false));
    let Err(edgebench::campaign::Failure::Failed(e)) = result else { panic!("a junk kernel must fail") };
    assert!(e.contains("exited") || e.contains("exit"), "{e}");
    runtime.teardown(&ctx);
    assert_nothing_left();
}

#[test]
fn qemu_tcg_campaign_serves_hello() {
    let _l = lock();
    if guest_files().is_none() || !common::available("qemu-microvm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::small_options(&["qemu-microvm"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    let (_, samples) = common::run_campaign(options);
    let failures: Vec<_> = samples.iter().filter(|s| !s.ok && s.metric == "cold_start").collect();
    let cold = common::ok_values(&samples, "qemu-microvm", "hello", "cold_start");
    assert_eq!(cold.len(), 1);
    let failures: Vec<_> = failures.iter().filter(|s| s.variant != "kvm-pvm").collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(cold.iter().all(|s| s.variant == "tcg" || s.variant == "kvm"));
    // Under KVM-PVM the kvm variant is listed and not measured, with the reason.
    let pvm: Vec<_> = samples.iter().filter(|s| s.variant == "kvm-pvm" && !s.metric.starts_with("settle")).collect();
    assert!(pvm.iter().all(|s| !s.ok && s.error.contains("PVM")), "{pvm:?}");
    // Probed by the shared probe at the guest's own address, like every runtime.
    assert!(!common::ok_values(&samples, "qemu-microvm", "hello", "probe_interval").is_empty());
    for metric in ["vmm_overhead_pss", "guest_memory", "latency_keepalive"] {
        assert!(!common::ok_values(&samples, "qemu-microvm", "hello", metric).is_empty(), "{metric}");
    }
    assert_nothing_left();
}

#[test]
fn firecracker_measures_the_vmm_floor_and_says_why_linux_is_not_measured() {
    let _l = lock();
    if !common::available("firecracker") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::small_options(&["firecracker"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    let (_, samples) = common::run_campaign(options);
    let floor: Vec<_> = samples.iter().filter(|s| s.variant.starts_with("vmm-floor")).collect();
    let failed: Vec<_> = floor.iter().filter(|s| !s.ok).collect();
    assert!(failed.is_empty(), "{failed:?}");
    for (metric, phase) in [
        ("vmm_boot", "api_ready"),
        ("vmm_boot", "instance_start"),
        ("vmm_boot", "boot_timer_seen"),
        ("vmm_boot_timer", ""),
        ("vmm_restore", "resumed"),
    ] {
        assert!(floor.iter().any(|s| s.metric == metric && s.phase == phase && s.ok), "{metric} {phase}");
    }
    // The floor never produces workload figures.
    assert!(!floor.iter().any(|s| s.metric.starts_with("cold_start") || s.metric.starts_with("latency")));
    let linux: Vec<_> = samples.iter().filter(|s| s.variant.starts_with("linux") && s.metric == "cold_start").collect();
    if edgebench::environment::virtualization()["mode"] == "kvm-pvm" {
        assert!(!linux.is_empty() && linux.iter().all(|s| !s.ok && s.error.contains("PVM")), "{linux:?}");
    }
    assert_nothing_left();
}
