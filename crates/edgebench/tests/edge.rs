//! Edge profiles (issue 21): CPU quota and memory cap as campaign factors,
//! in force for every process of an instance and for containers, read back
//! and stored; an OOM kill under a cap is counted; a link profile puts the
//! emulated link between client and instance, shaped as it says.

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
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"edge\"") && html.contains("edge cpu-0.5"), "report.html has the section and the rows");
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

/// Whether the campaign's namespace and link can be made here (root, iproute2, nftables, /dev/net/tun).
fn link_or_skip() -> bool {
    match edgebench::edge::check_here(&["net-lan".to_string()]) {
        Ok(()) => true,
        Err(why) => {
            common::skip("nftables", &format!("link profiles: {why:#}"));
            false
        }
    }
}

/// One request's round trip from the host to an echo server in the
/// namespace, over the link; `None` if no connection is made within 1 s.
fn round_trip(server: std::net::SocketAddr) -> Option<Duration> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(1)).ok()?;
    conn.set_nodelay(true).unwrap();
    let started = Instant::now();
    conn.write_all(b"ping").ok()?;
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).ok()?;
    Some(started.elapsed())
}

/// The emulated link carries every packet between host and namespace; its
/// shape holds for them: a round trip takes at least twice the one-way
/// delay, a link that loses everything carries nothing (and counts it), and
/// nothing of it is left once the topology is gone.
#[test]
fn the_emulated_link_delays_and_loses_what_crosses_it() {
    use edgebench::edge::link::Shape;
    if !link_or_skip() {
        return;
    }
    let mut topology = edgebench::network::Topology::create_linked("test-link", None, Some(7)).unwrap();
    let link = topology.link().expect("an emulated link");
    let server = std::net::SocketAddr::from((topology.server, 20999));
    let listener =
        edgebench::network::topology::in_netns(topology.netns_path(), || Ok(std::net::TcpListener::bind(server)?))
            .unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4];
            while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
        }
    });
    assert!(round_trip(server).is_some(), "unshaped, the link forwards");
    let delay = Duration::from_millis(20);
    link.set(Some(Shape { delay, jitter: Duration::ZERO, rate_bps: Some(10_000_000), loss: 0.0 }));
    let rtt = round_trip(server).expect("a connection over the delayed link");
    assert!(rtt >= 2 * delay, "a round trip crosses the link twice: {rtt:?}");
    // The closed connection's last packets leave the queue first.
    std::thread::sleep(Duration::from_millis(300));
    link.set(Some(Shape { delay: Duration::ZERO, jitter: Duration::ZERO, rate_bps: None, loss: 1.0 }));
    let before = link.stats();
    assert!(round_trip(server).is_none(), "a link that loses every packet carries no connection");
    let lost = link.stats().since(before);
    assert!(lost.lost >= 1 && lost.forwarded == 0, "{lost:?}");
    let name = topology.name.clone();
    topology.remove().unwrap();
    assert!(edgebench::network::topology::leftovers_named(&name).is_empty());
}

/// A campaign with a link profile runs every trial over the link; an
/// instance in the server namespace is measured under the link's shape (read
/// back and stored), a variant whose traffic takes another path fails its
/// link trials with that reason.
#[test]
fn a_link_profile_is_in_force_for_instances_on_the_link() {
    common::artifacts();
    if !link_or_skip() {
        return;
    }
    let mut runtimes = vec!["native"];
    if common::available("docker") {
        runtimes.push("docker");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::small_options(&runtimes, &[Workload::HELLO], dir.path());
    options.edge = vec!["none".into(), "net-lan".into()];
    let (outcome, samples) = common::run_campaign(options);
    assert_eq!(outcome, Outcome::Finished);
    let of = |runtime: &str, variant: Option<&str>, metric: &str| -> Vec<&edgebench::store::Sample> {
        samples
            .iter()
            .filter(|s| s.runtime == runtime && variant.is_none_or(|v| s.variant == v))
            .filter(|s| s.edge == "net-lan" && s.metric == metric)
            .collect()
    };
    let native = of("native", None, "edge_in_force");
    assert!(
        native.len() >= 2 && native.iter().all(|s| s.ok && s.detail.contains("emulated link in force")),
        "the link's shape is read back in each trial: {native:?}"
    );
    assert!(of("native", None, "cold_start").iter().all(|s| s.ok));
    assert!(of("native", None, "edge_link_lost").iter().all(|s| s.detail.contains("forwarded")));
    if runtimes.contains(&"docker") {
        let bridged = of("docker", Some("bridge"), "cold_start");
        assert!(
            !bridged.is_empty()
                && bridged.iter().all(|s| !s.ok && s.error.contains("does not cross the emulated link")),
            "{bridged:?}"
        );
    }
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("Link profiles (`net-lan`)"), "{report}");
    assert!(report.contains("over the emulated link of the edge profiles"), "the path is named as it was: {report}");
}
