//! Behind a host firewall, on real nftables and real network namespaces:
//! profiles applied and removed, traffic really filtered, nothing left
//! behind on success, interrupt or crash, the host's ruleset unchanged, and
//! a small campaign with samples under every profile. No timing asserts.
//!
//! Skipped with the reason printed when nft or namespaces are unavailable,
//! unless EDGEBENCH_REQUIRE contains `nftables`.

mod common;

use common::*;
use edgebench::campaign::{Campaign, Outcome};
use edgebench::network::{self, nft, topology, HostSnapshot, Network, Placement, Profile};
use edgebench::runtime::process::{spawn, Launch, ProcessInstance, WarmMode};
use edgebench::store::Store;
use edgebench::Workload;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn firewall_available() -> bool {
    match network::available() {
        Ok(_) => true,
        Err(reason) => {
            skip("nftables", &format!("firewall profiles cannot run here: {reason}"));
            false
        }
    }
}

fn profile(name: &str) -> Profile {
    Profile::parse(name).unwrap()
}

/// Rules and tables of ours listed by `nft -j list ruleset` in `netns`.
fn our_items(net: &Network, netns: nft::Netns<'_>) -> (usize, usize) {
    let listing = nft::list_ruleset(netns).unwrap();
    let ours = format!("inet {}", net.table());
    let items: Vec<_> = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| nft::table_of(i).as_ref() == Some(&ours))
        .cloned()
        .collect();
    let tables = items.iter().filter(|i| i.get("table").is_some()).count();
    let rules = items.iter().filter(|i| i.get("rule").is_some()).count();
    (tables, rules)
}

/// The workload server listening on `addr`, started inside `netns`.
fn server_in(netns: &Path, addr: SocketAddr, label: &str) -> ProcessInstance {
    let artifacts = artifacts();
    let mut command = Launch::new(artifacts.native_server());
    command.arg("hello").arg(addr.to_string());
    command.enter_netns(netns).unwrap();
    let log = std::env::temp_dir().join(format!("edgebench-fw-{label}-{}.log", std::process::id()));
    spawn(command, &[("PATH".into(), "/usr/bin:/bin".into())], addr, log, None, WarmMode::None).unwrap()
}

/// Whether a TCP connection to `addr` is accepted within a few tries.
fn connects(addr: SocketAddr) -> bool {
    (0..40).any(|_| {
        let ok = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(25));
        }
        ok
    })
}

#[test]
fn profiles_are_applied_and_removed_in_our_table_only() {
    if !firewall_available() {
        return;
    }
    let net = Network::start("test-apply").unwrap();
    let inside = net.topology().netns();
    for (name, rules) in [("host", 5), ("rules-100", 105), ("set-100", 6), ("host-notrack", 6), ("set-10-notrack", 7)] {
        let applied = net.apply(profile(name), Placement::ServerNamespace).unwrap();
        assert_eq!(our_items(&net, inside), (1, rules), "{name} in the namespace");
        assert_eq!(our_items(&net, nft::Netns::Host), (0, 0), "{name}: nothing of ours on the host");
        let again = net.apply(profile(name), Placement::ServerNamespace).unwrap();
        assert_eq!(again.ruleset_sha256, applied.ruleset_sha256, "{name}: same ruleset, same hash");
    }
    let set = nft::list_ruleset(inside).unwrap();
    assert!(set.to_string().contains("198.18.0.10"), "set-10's elements are in force");
    net.apply(Profile::OFF, Placement::ServerNamespace).unwrap();
    assert_eq!(our_items(&net, inside), (0, 0), "off removes our table");

    // The host-namespace variant (for Docker's published ports): our own
    // table, policy accept, entered only by our ports.
    net.apply(profile("rules-10"), Placement::HostLoopback).unwrap();
    assert_eq!(our_items(&net, nft::Netns::Host), (1, 1 + 1 + 10 + 2), "jump, ct, 10 rules, accept, drop");
    assert_eq!(our_items(&net, inside), (0, 0), "rules live in one place at a time");
    let name = net.table().to_string();
    let check = net.finish().unwrap();
    assert_eq!(check.changes.unexplained, Vec::<String>::new(), "the host's ruleset changed");
    assert_eq!(topology::leftovers_named(&name), Vec::<String>::new());
}

#[test]
fn traffic_is_really_filtered() {
    if !firewall_available() {
        return;
    }
    let net = Network::start("test-filter").unwrap();
    let (service, netns) = net.instance_addr(Placement::ServerNamespace).unwrap();
    let netns = netns.unwrap().to_path_buf();
    let outside = SocketAddr::new(service.ip(), 9000);
    let _service_server = server_in(&netns, service, "service");
    let _other_server = server_in(&netns, outside, "other");
    assert!(connects(service) && connects(outside), "both answer with no rules");

    for name in ["host", "rules-100", "set-100", "host-notrack"] {
        net.apply(profile(name), Placement::ServerNamespace).unwrap();
        let r = edgebench::measure::http::one_shot(
            service,
            &edgebench::measure::http::encode(&Workload::HELLO.probe_request(), &service.to_string(), true),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{name}: the service port must answer: {e}"));
        assert_eq!(r.status, 200, "{name}");
        assert!(
            TcpStream::connect_timeout(&outside, Duration::from_millis(500)).is_err(),
            "{name}: port 9000 is not in the profile and must be dropped"
        );
    }
    net.apply(Profile::OFF, Placement::ServerNamespace).unwrap();
    assert!(connects(outside), "with the profile removed, port 9000 answers again: the firewall dropped it");
    drop((_service_server, _other_server));
    net.finish().unwrap();
}

fn network_name(dir: &Path) -> String {
    let store = Store::open_existing(dir).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    store.networks(&id).unwrap()[0].netns.clone()
}

/// Processes of this test process still listening in the campaign's
/// namespace (other tests run in parallel, with their own addresses).
fn instances_left(dir: &Path) -> Vec<String> {
    let store = Store::open_existing(dir).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    let servers: Vec<String> = store.networks(&id).unwrap().iter().map(|n| format!(" {}:", n.server_addr)).collect();
    children_left().into_iter().filter(|p| servers.iter().any(|s| p.contains(s.as_str()))).collect()
}

#[test]
fn a_small_campaign_measures_every_profile_and_leaves_nothing() {
    if !firewall_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.firewall = ["off", "host", "rules-100", "set-100"].map(String::from).to_vec();
    let host_before = HostSnapshot::take().unwrap();
    let (outcome, samples) = run_campaign(options);
    assert_eq!(outcome, Outcome::Finished);
    for p in ["off", "host", "rules-100", "set-100"] {
        for metric in ["cold_start", "latency_keepalive", "latency_newconn", "firewall_apply"] {
            let n = samples.iter().filter(|s| s.firewall == p && s.metric == metric && s.ok).count();
            assert!(n >= 2, "{p} {metric}: {n} samples");
        }
    }
    assert!(samples.iter().all(|s| s.ok || s.error.starts_with("not applicable")), "no failures");

    let store = Store::open_existing(dir.path()).unwrap();
    let id = store.campaign().unwrap().unwrap().id;
    let profiles = store.firewall_profiles(&id).unwrap();
    assert_eq!(profiles.len(), 4);
    let rules100 = profiles.iter().find(|p| p.profile == "rules-100").unwrap();
    assert_eq!(rules100.rules_before_accept, 100);
    assert!(rules100.definition.to_string().contains("198.18.0.100"));
    let host = store.host_rulesets(&id).unwrap();
    assert_eq!(host.len(), 2);
    assert_eq!(host[1].changed, "", "host ruleset unchanged but for Docker's containers ({})", host[1].docker);
    assert_eq!(HostSnapshot::take().unwrap().changed_since(&host_before).unexplained, Vec::<String>::new());

    let name = network_name(dir.path());
    assert_eq!(topology::leftovers_named(&name), Vec::<String>::new());
    assert_eq!(instances_left(dir.path()), Vec::<String>::new());
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("## Behind a host firewall") && report.contains("| rules-100 |"), "{report}");
    assert!(dir.path().join("firewall_deltas.svg").exists() && dir.path().join("firewall_deltas.csv").exists());
}

/// A micro-VM is reached over a veth into its own namespace: the profile is
/// applied there, in front of the guest, before t0, and stored with the trial.
#[test]
fn a_micro_vm_is_measured_behind_the_profile_in_its_own_namespace() {
    if !firewall_available() || !available("qemu-microvm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["qemu-microvm"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    options.metrics = vec![edgebench::campaign::Metric::ColdStart, edgebench::campaign::Metric::LatencyKeepalive];
    options.firewall = ["off", "rules-100"].map(String::from).to_vec();
    let (outcome, samples) = run_campaign(options);
    assert_eq!(outcome, Outcome::Finished);
    let tcg = |p: &str, metric: &str| {
        samples.iter().filter(|s| s.variant == "tcg" && s.firewall == p && s.metric == metric && s.ok).count()
    };
    for p in ["off", "rules-100"] {
        assert_eq!(tcg(p, "cold_start"), 1, "{p}: {:?}", samples.iter().filter(|s| !s.ok).collect::<Vec<_>>());
        assert!(tcg(p, "latency_keepalive") > 0, "{p}");
    }
    let applied: Vec<_> =
        samples.iter().filter(|s| s.variant == "tcg" && s.metric == "firewall_apply" && s.ok).collect();
    // Applied (off: our table removed) in the VM's namespace before each cold start, as on the campaign's path.
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(applied.iter().all(|s| s.detail.contains("placement own-namespace") && s.error.is_empty()), "{applied:?}");
    assert_ne!(applied[0].detail, applied[1].detail, "different rulesets in force under off and rules-100");
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.contains(&format!("eb-vm-{}-", std::process::id())), "{left}");
}

#[test]
fn an_interrupted_campaign_leaves_no_table_namespace_or_veth() {
    if !firewall_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.firewall = ["off", "rules-1000", "set-100"].map(String::from).to_vec();
    options.reps = 6;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let db = dir.path().join("results.sqlite");
    // Interrupt right after a profile was applied, before its trial ends.
    let watcher = std::thread::spawn(move || {
        for _ in 0..4000 {
            std::thread::sleep(Duration::from_millis(5));
            let applied = rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row(
                        "SELECT count(*) FROM samples WHERE metric = 'firewall_apply' AND firewall != 'off'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .unwrap_or(0);
            if applied >= 2 {
                break;
            }
        }
        flag.store(true, Ordering::SeqCst);
    });
    let mut campaign = Campaign::create(options, artifacts()).unwrap();
    let outcome = campaign.run(&interrupted).unwrap();
    watcher.join().unwrap();
    assert_eq!(outcome, Outcome::Interrupted);
    let name = network_name(dir.path());
    assert_eq!(topology::leftovers_named(&name), Vec::<String>::new(), "nothing left after the interrupt");
    assert_eq!(instances_left(dir.path()), Vec::<String>::new());
    let store = Store::open_existing(dir.path()).unwrap();
    let host = store.host_rulesets(&campaign.id).unwrap();
    assert_eq!((host[0].moment.as_str(), host[1].changed.as_str()), ("before", ""));

    // Resuming applies the profiles again in a new namespace and finishes.
    let mut resumed = Campaign::resume(dir.path(), artifacts()).unwrap();
    assert_eq!(resumed.run(&AtomicBool::new(false)).unwrap(), Outcome::Finished);
    let after = samples(dir.path());
    for p in ["off", "rules-1000", "set-100"] {
        let mut reps: Vec<u32> = after
            .iter()
            .filter(|s| s.firewall == p && s.metric == "cold_start" && s.ok)
            .map(|s| s.repetition)
            .collect();
        reps.sort();
        assert_eq!(reps, (1..=6).collect::<Vec<_>>(), "{p}: every repetition exactly once");
    }
}

#[test]
fn a_crashed_campaign_is_cleaned_up_by_the_next() {
    if !firewall_available() {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("campaign");
    let dir = dir.as_path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(["run", "--runtimes", "native", "--workloads", "hello", "--firewall", "host,rules-100"])
        .args(["--reps", "200", "--no-build", "--no-warmup", "--out"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let db = dir.join("results.sqlite");
    let mut name = None;
    // Bounded: a minute, checking that the campaign is still running.
    for _ in 0..6000 {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(logs.path().join("stderr.log")).unwrap_or_default();
            panic!("the campaign ended before applying a profile ({status}): {log}");
        }
        std::thread::sleep(Duration::from_millis(10));
        if !db.exists() {
            continue;
        }
        let applied = rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM samples WHERE metric = 'firewall_apply'", [], |r| r.get::<_, i64>(0))
            })
            .unwrap_or(0);
        if applied > 0 {
            name = Some(network_name(dir));
            break;
        }
    }
    let name = name.expect("the campaign applied a profile");
    child.kill().unwrap(); // SIGKILL: no destructor, no teardown
    child.wait().unwrap();
    assert!(!topology::leftovers_named(&name).is_empty(), "a crash leaves its namespace behind");
    let removed = topology::remove_leftovers().unwrap();
    assert!(removed.iter().any(|r| r.contains(&name)), "{removed:?}");
    assert_eq!(topology::leftovers_named(&name), Vec::<String>::new());
}

#[test]
fn an_unknown_profile_is_named_with_the_valid_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(["run", "--firewall", "off,rules-5", "--no-build"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("unknown firewall profile \"rules-5\"") && err.contains("set-10000-notrack"), "{err}");
}
