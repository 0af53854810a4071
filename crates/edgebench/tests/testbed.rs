//! The fair test bed (issue 13), on real runtimes: every runtime edgebench
//! starts runs on the SUT's CPUs while edgebench keeps the client's (read back
//! from `/proc/PID/status`), and under a firewall profile every backend that
//! places itself in the server namespace is really started and reached there.
//! Runtimes that are not installed are skipped with the reason, unless
//! EDGEBENCH_REQUIRE names them. No timing is asserted.

mod common;

use common::*;
use edgebench::campaign::{launch_until_ready, launch_until_ready_in, TrialKey};
use edgebench::cpus::{self, CpuPlan, Cpus};
use edgebench::network::{self, Network, Placement};
use edgebench::runtime::{self, Context, Runtime};
use edgebench::Workload;
use std::sync::atomic::AtomicBool;

/// Backends that answer workload requests on this host (a variant that
/// cannot, such as a VMM floor, has nothing to place).
fn serving_variant(r: &dyn Runtime) -> Option<&'static str> {
    r.variants().iter().copied().find(|v| r.serves_workloads(v).is_ok())
}

fn net_ns(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).map(|p| p.display().to_string()).unwrap_or_default()
}

#[test]
fn every_runtime_runs_on_the_sut_cpus_and_edgebench_on_the_clients() {
    let host = cpus::host_cpus();
    if host.len() < 2 {
        eprintln!("skipped: one CPU only ({host}): client and SUT share it, nothing to split");
        return;
    }
    let plan = CpuPlan::resolve("auto", &host).unwrap();
    plan.install().unwrap();
    assert_eq!(cpus::allowed_of(std::process::id()), Some(plan.client.clone()), "edgebench on the client's CPUs");

    let artifacts = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new(format!("cpus-{}", std::process::id()), &artifacts, dir.path()).unwrap();
    let never = AtomicBool::new(false);
    let mut checked = Vec::new();
    for r in runtime::all() {
        // The Docker daemon is shared with the serialised Docker tests; the
        // container's cpuset is checked there (tests/docker.rs). gVisor's
        // containers are Docker's too.
        if r.name() == "docker" || r.name() == "gvisor" || !available(r.name()) {
            continue;
        }
        let Some(variant) = serving_variant(r.as_ref()) else { continue };
        r.setup(&ctx).unwrap();
        r.prepare(&ctx, Workload::HELLO, variant).unwrap();
        let key = TrialKey::new(r.name(), variant, Workload::HELLO, 1);
        let (mut instance, _) = launch_until_ready(r.as_ref(), &key, &ctx, &never)
            .unwrap_or_else(|_| panic!("{} {variant} starts", r.name()));
        let pids = instance.pids();
        assert!(!pids.is_empty(), "{}: no process", r.name());
        for pid in &pids {
            if let Some(allowed) = cpus::allowed_of(*pid) {
                assert_eq!(
                    allowed,
                    plan.sut,
                    "{} {variant}: pid {pid} runs on {allowed}, not the SUT's {}",
                    r.name(),
                    plan.sut
                );
            }
        }
        instance.stop().unwrap();
        r.teardown(&ctx);
        checked.push(format!("{} {variant} ({} processes)", r.name(), pids.len()));
    }
    eprintln!("on the SUT's CPUs {}: {}", plan.sut, checked.join(", "));
    assert!(checked.len() >= 2, "at least native and wasmtime-embedded are always there");
    assert!(children_left().is_empty(), "{:?}", children_left());
}

#[test]
fn under_a_firewall_every_namespace_runtime_is_started_and_reached_in_the_namespace() {
    if let Err(why) = network::available() {
        skip("nftables", &format!("no firewall campaigns here: {why}"));
        return;
    }
    let artifacts = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let id = format!("place-{}", std::process::id());
    let mut ctx = Context::new(id.clone(), &artifacts, dir.path()).unwrap();
    // (runtime, its first serving variant placed in the server namespace)
    let placed: Vec<(Box<dyn Runtime>, &str)> = runtime::all()
        .into_iter()
        .filter(|r| available(r.name()))
        .filter_map(|r| {
            let v = r
                .variants()
                .iter()
                .copied()
                .find(|v| r.serves_workloads(v).is_ok() && r.network_placement(v) == Placement::ServerNamespace)?;
            Some((r, v))
        })
        .collect();
    // As a campaign does: a runtime that can only join a namespace it made (Docker) holds it.
    let holder = placed.iter().find_map(|(r, _)| r.hold_server_namespace(&ctx).unwrap());
    let net = Network::start_in(&id, holder).unwrap();
    ctx.server_netns = Some(net.topology().netns_path().to_path_buf());
    let server_ns = format!(
        "net:[{}]",
        std::os::linux::fs::MetadataExt::st_ino(&std::fs::metadata(net.topology().netns_path()).unwrap())
    );
    let never = AtomicBool::new(false);
    let mut checked = Vec::new();
    for (r, variant) in &placed {
        r.setup(&ctx).unwrap();
        r.prepare(&ctx, Workload::HELLO, variant).unwrap();
        let key = TrialKey::new(r.name(), variant, Workload::HELLO, 1).with_firewall("off");
        let launched = launch_until_ready_in(r.as_ref(), &key, &ctx, &never, Some(&net));
        let Ok((mut instance, _)) = launched else {
            placed.iter().for_each(|(r, _)| r.teardown(&ctx));
            net.finish().unwrap();
            panic!("{} {variant} does not answer in the server namespace", r.name());
        };
        let addr = instance.addr();
        let pids = instance.pids();
        let inside: Vec<u32> = pids.iter().copied().filter(|p| net_ns(*p) == server_ns).collect();
        instance.stop().unwrap();
        assert!(!addr.ip().is_loopback(), "{}: reached at {addr}, not through the namespace", r.name());
        assert!(!inside.is_empty(), "{}: none of {pids:?} runs in the server namespace {server_ns}", r.name());
        checked.push(format!("{} {variant} at {addr}", r.name()));
    }
    // Docker's pause container goes with its teardown; the namespace with the network.
    placed.iter().for_each(|(r, _)| r.teardown(&ctx));
    net.finish().unwrap();
    eprintln!(
        "reached in the server namespace ({}): {}",
        if holder.is_some() { "a pause container's" } else { "a new one" },
        checked.join(", ")
    );
    assert!(checked.len() >= 2, "at least native and wasmtime-embedded are always there");
    if available("docker") {
        assert!(holder.is_some() && checked.iter().any(|c| c.starts_with("docker host")), "{checked:?}");
    }
}

#[test]
fn cpu_plans_refuse_cpus_this_process_may_not_use() {
    let host = cpus::host_cpus();
    let beyond = host.to_string().split(['-', ',']).filter_map(|c| c.parse::<usize>().ok()).max().unwrap() + 1;
    let e = CpuPlan::resolve(&format!("0/{beyond}"), &host).unwrap_err().to_string();
    assert!(e.contains("is not one this process may use"), "{e}");
    assert_eq!(CpuPlan::resolve("shared", &host).unwrap().sut, host);
    let _ = Cpus::allowed();
}
