//! A remote target: the client in one namespace "host", the runtimes on
//! another behind its own sshd (tests/common/hosts.rs), every byte inside
//! the test's namespaces.

mod common;

use common::hosts::{self, NamespaceHosts};
use edgebench::store::Store;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EDGEBENCH: &str = env!("CARGO_BIN_EXE_edgebench");

fn hosts_or_skip() -> Option<NamespaceHosts> {
    hosts::available().then(|| NamespaceHosts::start(1).expect("namespace hosts"))
}

/// Host 0's network namespace, as a path.
fn netns_of(hosts: &NamespaceHosts) -> std::path::PathBuf {
    Path::new("/run/netns").join(hosts.host_netns(0))
}

/// `edgebench run --target` from the controller namespace to host 0.
fn remote_run(hosts: &NamespaceHosts, out: &Path, reps: &str) -> Command {
    let mut run = Command::new(EDGEBENCH);
    run.args(["run", "--target", &format!("ssh://root@{}", hosts.host_addr(0))])
        .arg("--ssh-config")
        .arg(hosts.ssh_config())
        .args(["--agent-command", &format!("{EDGEBENCH} agent")])
        .args(["--runtimes", "native,wasmtime-embedded", "--workloads", "hello", "--reps", reps])
        .args(["--precision", "off", "--requests", "20", "--warm-starts", "2", "--no-warmup", "--settle-max-ms", "100"])
        .arg("--out")
        .arg(out)
        .env_remove("RUST_BACKTRACE");
    hosts.in_controller(&mut run)
}

/// Processes in the network namespace `netns` (a /run/netns path) other
/// than its sshd: what the agent and its instances would leave behind.
fn left_in(netns: &Path) -> Vec<String> {
    let inode = std::fs::metadata(netns).expect("namespace exists").ino();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(ns) = std::fs::metadata(entry.path().join("ns/net")) else { continue };
        if ns.ino() != inode {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains("sshd") {
            left.push(format!("{pid}: {cmdline}"));
        }
    }
    left
}

fn wait_until_clean(netns: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = left_in(netns);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_remote_target_campaign_measures_native_and_the_embedded_host_across_the_link() {
    common::artifacts();
    let Some(hosts) = hosts_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("remote");
    let run = remote_run(&hosts, &out, "2").output().expect("edgebench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "remote campaign failed: {stderr}");
    assert!(stderr.contains("round trip"), "the link is measured and said: {stderr}");

    let store = Store::open_existing(&out).unwrap();
    let campaign = store.campaign().unwrap().unwrap();
    let env = &campaign.environment;
    let url = format!("ssh://root@{}", hosts.host_addr(0));
    assert_eq!(env["link"]["target"], url.as_str());
    assert!(env["link"]["tcp_connect_rtt_ms"]["median"].as_f64().unwrap() > 0.0, "{}", env["link"]);
    assert!(env["link"]["control_rtt_ms"]["median"].as_f64().unwrap() > 0.0);
    assert!(env["target"]["kernel"].is_string(), "the target's environment is stored");
    assert_eq!(env["test_bed"]["cpus"]["mode"], "client-only");

    let samples = store.samples(&campaign.id).unwrap();
    for runtime in ["native", "wasmtime-embedded"] {
        for metric in ["cold_start", "latency_keepalive", "memory_pss", "cpu_time", "cold_start_agent_launch_call"] {
            let ok = samples.iter().filter(|s| s.runtime == runtime && s.metric == metric && s.ok).count();
            assert!(ok >= 2, "{runtime} {metric}: {ok} samples; failures: {:?}", failures(&samples));
        }
    }
    for r in store.runtimes(&campaign.id).unwrap().iter().filter(|r| r.measured) {
        assert!(r.version.contains(&hosts.host_addr(0).to_string()), "the version names the target: {}", r.version);
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("remote target") && report.contains(&url), "the report names the link");

    // `doctor --target` says what the target can measure, as its agent sees it.
    let mut doctor = Command::new(EDGEBENCH);
    doctor
        .args(["doctor", "--target", &url])
        .arg("--ssh-config")
        .arg(hosts.ssh_config())
        .args(["--agent-command", &format!("{EDGEBENCH} agent")])
        .env_remove("RUST_BACKTRACE");
    let doctor = hosts.in_controller(&mut doctor).output().unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "doctor --target: {}", String::from_utf8_lossy(&doctor.stderr));
    let native = said.lines().find(|l| l.starts_with("native ")).unwrap_or_default();
    assert!(native.contains("found") && native.contains(&hosts.host_addr(0).to_string()), "{said}");
    assert!(said.contains("link: round trip"), "{said}");

    let left = wait_until_clean(&netns_of(&hosts));
    assert!(left.is_empty(), "left on the target: {left:?}");
}

/// Firewall profiles on a remote target: applied there by the agent, in the
/// target's own ruleset, on the interface the client reaches it on; the
/// target's ruleset is compared before and after, and our table is gone.
#[test]
fn firewall_profiles_on_a_remote_target_are_applied_there_and_leave_nothing() {
    common::artifacts();
    let Some(hosts) = hosts_or_skip() else { return };
    if let Err(why) = edgebench::network::available() {
        return common::skip("nftables", &format!("firewall profiles on a remote target: {why}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("remote-firewall");
    let mut run = remote_run(&hosts, &out, "2");
    run.args(["--firewall", "off,rules-100-notrack"]);
    let run = run.output().expect("edgebench runs");
    assert!(
        run.status.success(),
        "remote campaign with firewall profiles failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let store = Store::open_existing(&out).unwrap();
    let campaign = store.campaign().unwrap().unwrap();
    let samples = store.samples(&campaign.id).unwrap();
    for runtime in ["native", "wasmtime-embedded"] {
        for profile in ["off", "rules-100-notrack"] {
            let of = |metric: &str| {
                samples
                    .iter()
                    .filter(|s| s.runtime == runtime && s.firewall == profile && s.metric == metric && s.ok)
                    .count()
            };
            assert!(
                of("cold_start") >= 2 && of("latency_keepalive") >= 2,
                "{runtime} under {profile}: {:?}",
                failures(&samples)
            );
            let applied: Vec<_> = samples
                .iter()
                .filter(|s| s.runtime == runtime && s.firewall == profile && s.metric == "firewall_apply")
                .collect();
            assert!(
                applied.len() >= 2 && applied.iter().all(|s| s.ok && s.detail == "placement target-host"),
                "{applied:?}"
            );
        }
    }
    let profiles = store.firewall_profiles(&campaign.id).unwrap();
    let rules = profiles.iter().find(|p| p.profile == "rules-100-notrack").expect("the profile's rules are stored");
    assert_eq!(rules.placement, "target-host");
    let definition = rules.definition.to_string();
    assert!(
        definition.contains("\"prerouting\"") && definition.contains("\"eth0\""),
        "on the target's interface: {definition}"
    );
    let networks = store.networks(&campaign.id).unwrap();
    assert_eq!(networks.len(), 1);
    assert_eq!(
        (networks[0].host_if.as_str(), networks[0].server_addr.clone()),
        ("eth0", hosts.host_addr(0).to_string())
    );
    let rulesets = store.host_rulesets(&campaign.id).unwrap();
    let moments: Vec<&str> = rulesets.iter().map(|r| r.moment.as_str()).collect();
    assert_eq!(moments, ["before", "after"], "the target's ruleset is taken before and after");
    assert!(rulesets[1].changed.is_empty(), "nothing else changed the target's ruleset: {}", rulesets[1].changed);

    // Our table is gone from the target; the client's host was never touched.
    let tables =
        Command::new("ip").args(["netns", "exec", hosts.host_netns(0), "nft", "list", "tables"]).output().unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains(" eb-"), "our table is left on the target: {tables}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Behind a host firewall") && report.contains("in the target's own ruleset"), "{report}");
    assert!(wait_until_clean(&netns_of(&hosts)).is_empty());
}

fn failures(samples: &[edgebench::store::Sample]) -> Vec<String> {
    samples.iter().filter(|s| !s.ok).map(|s| format!("{} {}: {}", s.runtime, s.metric, s.error)).take(5).collect()
}

/// The SSH client the campaign started (a child of `client`).
fn ssh_child_of(client: &Child) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid …
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if head.ends_with("(ssh") && ppid == Some(client.id()) {
            return entry.file_name().to_string_lossy().parse().ok();
        }
    }
    None
}

#[test]
fn killing_the_ssh_session_mid_trial_leaves_nothing_on_the_target_and_the_campaign_resumes() {
    common::artifacts();
    let Some(hosts) = hosts_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("remote");
    let netns = netns_of(&hosts);
    // `ip netns exec` execs edgebench: the child is the client itself.
    let mut client = remote_run(&hosts, &out, "4").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();

    // Mid-trial: an instance is up on the target (a workload process beside the agent).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !left_in(&netns).iter().any(|p| p.contains("edgebench-workload") || p.contains("wasmtime-host")) {
        assert!(Instant::now() < deadline, "no instance started on the target");
        assert!(client.try_wait().unwrap().is_none(), "the campaign ended before an instance was seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ssh = ssh_child_of(&client).expect("the campaign's ssh process");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ssh as i32), nix::sys::signal::Signal::SIGKILL).unwrap();

    let left = wait_until_clean(&netns);
    assert!(left.is_empty(), "left on the target after the session was killed: {left:?}");
    let status = client.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "an interrupted campaign does not exit 0");
    assert!(stderr.contains("--resume") && stderr.contains("--target"), "says how to go on: {stderr}");

    // Resumed over a new session, it finishes what was left.
    let mut resume = Command::new(EDGEBENCH);
    resume
        .arg("run")
        .arg("--resume")
        .arg(&out)
        .args(["--target", &format!("ssh://root@{}", hosts.host_addr(0))])
        .arg("--ssh-config")
        .arg(hosts.ssh_config())
        .args(["--agent-command", &format!("{EDGEBENCH} agent")])
        .env_remove("RUST_BACKTRACE");
    let resumed = hosts.in_controller(&mut resume).output().unwrap();
    assert!(resumed.status.success(), "resume failed: {}", String::from_utf8_lossy(&resumed.stderr));
    let store = Store::open_existing(&out).unwrap();
    let campaign = store.campaign().unwrap().unwrap();
    assert_eq!(campaign.status, "finished");
    let cold = store.samples(&campaign.id).unwrap().into_iter().filter(|s| s.metric == "cold_start" && s.ok).count();
    assert!(cold >= 8, "every planned trial ran after the resume: {cold} cold starts");
    assert!(wait_until_clean(&netns).is_empty());
}

/// The agent, run directly: anything but its protocol ends the session with
/// one error line; without SSH it must be told where instances listen.
#[test]
fn the_agent_refuses_anything_but_its_protocol() {
    use std::io::Write;
    let agent = |input: &str, args: &[&str]| {
        let mut child = Command::new(EDGEBENCH)
            .arg("agent")
            .args(args)
            .env_remove("SSH_CONNECTION")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = agent("GET / HTTP/1.1\n", &["--listen", "127.0.0.1"]);
    assert!(!out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    let reply: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert!(reply["error"].as_str().unwrap().contains("not a request of edgebench's agent protocol"), "{reply}");

    // A request before hello is answered with an error, and the session goes on until stdin closes.
    let out = agent("{\"id\":7,\"op\":\"launch\",\"config\":{\"runtime\":\"native\",\"variant\":\"static-musl\",\"workload\":\"hello\"},\"label\":\"x\"}\n{\"id\":8,\"op\":\"ping\"}\n", &["--listen", "127.0.0.1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(replies[0]["id"], 7);
    assert!(replies[0]["error"].as_str().unwrap().contains("hello"), "{}", replies[0]);
    assert_eq!(replies[1], serde_json::json!({"id": 8, "ok": null}));

    let out = agent("", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"), "says how to start it without SSH");
}

/// A target that cannot be reached: the error says so with ssh's own words,
/// and the campaign directory it would have filled is not left behind.
#[test]
fn an_unreachable_target_is_named_and_leaves_no_campaign_behind() {
    // A port on loopback that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let run = Command::new(EDGEBENCH)
        .args(["run", "--target", &format!("ssh://root@127.0.0.1:{port}"), "--runtimes", "native"])
        .args(["--workloads", "hello", "--reps", "1", "--out"])
        .arg(&out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("ended before answering") && stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("the campaign stops here"), "no campaign had begun: {stderr}");
    assert!(!out.exists(), "{} was left behind", out.display());
}
