//! One container: created and started for a cold start, stopped and started
//! again or paused and unpaused for warm starts, removed (forced) on stop and
//! on drop.

use super::daemon::{comm, daemon_pids};
use super::engine::{is_not_found, Engine};
use super::{cgroup, labels};
use crate::measure::probe::Probe;
use crate::measure::{http, resources};
use crate::runtime::{ExtraResource, Instance, LaunchSpec, WarmSample, WarmStart};
use crate::Workload;
use anyhow::{anyhow, bail, Result};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions};
use futures_util::StreamExt;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the server listens inside the container on the bridge network.
const CONTAINER_PORT: u16 = 8080;
/// How often, at most, `exited` asks the engine for the container's state.
/// Each ask is an API call the daemon serves while the container starts, so
/// it is rare: a dead container is still found within half a second, and a
/// cold start of a few hundred ms sees at most one such call.
const STATE_POLL: Duration = Duration::from_millis(500);
const WARM_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes container names unique within this process.
static NEXT_NAME: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Default bridge, the port published on 127.0.0.1 (through Docker's NAT rules and docker-proxy).
    Bridge,
    /// The host's network namespace: the server listens on the launch address itself.
    Host,
}

impl Network {
    pub const VARIANTS: &'static [&'static str] = &["bridge", "host"];

    pub fn parse(variant: &str) -> Result<Network> {
        match variant {
            "bridge" => Ok(Network::Bridge),
            "host" => Ok(Network::Host),
            other => bail!("unknown docker variant {other:?}: use {}", Network::VARIANTS.join(" or ")),
        }
    }
}

/// Records the daemon's memory with the first instance that reports resources.
#[derive(Clone)]
pub struct DaemonMemory {
    pub pending: Arc<AtomicBool>,
    pub dockerd: Option<u32>,
}

#[derive(Clone, Copy)]
enum WarmKind {
    /// Stop (SIGKILL at once) then start the same container.
    Restart,
    /// Pause (cgroup freezer) then unpause.
    Unpause,
}

impl WarmKind {
    fn name(self) -> &'static str {
        match self {
            WarmKind::Restart => "restart",
            WarmKind::Unpause => "unpause",
        }
    }
}

pub struct DockerInstance {
    engine: Arc<Engine>,
    id: String,
    addr: SocketAddr,
    network: Network,
    launched_at: Instant,
    phases: Vec<(String, Duration)>,
    /// The container's init process (changes at every restart).
    init_pid: Cell<Option<u32>>,
    last_state_check: Instant,
    exit: Option<String>,
    removed: bool,
    daemon_memory: DaemonMemory,
}

/// Creates and starts a container. t0 is taken just before the create call.
/// `oci_runtime`: one of the daemon's runtimes other than its default (gVisor's).
#[allow(clippy::too_many_arguments)]
pub fn launch(
    engine: Arc<Engine>,
    image: &str,
    ctx: &crate::runtime::Context<'_>,
    spec: &LaunchSpec<'_>,
    network: Network,
    pod: Option<&str>,
    daemon_memory: DaemonMemory,
    oci_runtime: Option<&str>,
) -> Result<DockerInstance> {
    let joins = match (spec.netns, network, pod) {
        (None, ..) => None,
        (Some(_), Network::Host, Some(pod)) => Some(pod),
        (Some(netns), Network::Host, None) => bail!(
            "the server namespace {} is not a Docker pause container's, so no container can join it (the pause \
             container could not be started: see the campaign's output)",
            netns.display()
        ),
        (Some(_), Network::Bridge, _) => bail!("the bridge variant is reached through Docker's NAT on 127.0.0.1"),
    };
    // A client on another host reaches the instance at the address it is given (a remote target's agent).
    if joins.is_none() && !spec.addr.ip().is_loopback() && !ctx.client_elsewhere {
        bail!("docker instances are reached on loopback only, not on {}", spec.addr);
    }
    let campaign = ctx.campaign_id.as_str();
    let mut config = container_config(image, campaign, spec, network, joins);
    if let Some(host) = config.host_config.as_mut() {
        host.runtime = oci_runtime.map(str::to_string);
    }
    let name = container_name(campaign, &spec.label);
    let options = CreateContainerOptions { name: Some(name), ..Default::default() };
    let launched_at = Instant::now();
    let created = engine.call("create", engine.api().create_container(Some(options), config))?;
    let created_after = launched_at.elapsed();
    // From here the instance owns the container: an error below removes it (drop).
    let mut instance = DockerInstance {
        engine: engine.clone(),
        id: created.id,
        addr: spec.addr,
        network,
        launched_at,
        phases: vec![("create".into(), created_after)],
        init_pid: Cell::new(None),
        last_state_check: Instant::now(),
        exit: None,
        removed: false,
        daemon_memory,
    };
    engine.call("start", engine.api().start_container(&instance.id, None))?;
    instance.phases.push(("start".into(), launched_at.elapsed()));
    instance.last_state_check = Instant::now();
    Ok(instance)
}

/// `joins`: the pause container whose network namespace (the campaign's
/// server namespace) the container shares, instead of the host's.
fn container_config(
    image: &str,
    campaign: &str,
    spec: &LaunchSpec<'_>,
    network: Network,
    joins: Option<&str>,
) -> ContainerCreateBody {
    let (listen, exposed_ports, port_bindings) = match network {
        Network::Bridge => {
            let port = format!("{CONTAINER_PORT}/tcp");
            let binding = PortBinding {
                host_ip: Some(spec.addr.ip().to_string()),
                host_port: Some(spec.addr.port().to_string()),
            };
            (
                format!("0.0.0.0:{CONTAINER_PORT}"),
                Some(vec![port.clone()]),
                Some(HashMap::from([(port, Some(vec![binding]))])),
            )
        }
        Network::Host => (spec.addr.to_string(), None, None),
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(spec.workload.server_args(&listen)),
        labels: Some(labels::for_container(campaign)),
        // The server is PID 1 without a SIGTERM handler: SIGTERM would only
        // make every stop (and a daemon shutdown) wait for its timeout.
        stop_signal: Some("SIGKILL".into()),
        exposed_ports,
        host_config: Some(HostConfig {
            network_mode: Some(match (network, joins) {
                (Network::Bridge, _) => "bridge".into(),
                (Network::Host, Some(pod)) => format!("container:{pod}"),
                (Network::Host, None) => "host".into(),
            }),
            port_bindings,
            cpuset_cpus: crate::cpus::sut_list(),
            // An edge profile's CPU quota and memory cap (swap included: none), as for processes.
            nano_cpus: crate::edge::container_limits().0,
            memory: crate::edge::container_limits().1,
            memory_swap: crate::edge::container_limits().1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_name(campaign: &str, label: &str) -> String {
    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
    let raw = format!("edgebench-{campaign}-{label}-{}-{n}", std::process::id());
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
}

impl DockerInstance {
    fn init_pid(&self) -> Option<u32> {
        if let Some(pid) = self.init_pid.get() {
            return Some(pid);
        }
        let info = self.engine.call("inspect", self.engine.api().inspect_container(&self.id, None)).ok()?;
        let pid = u32::try_from(info.state?.pid?).ok().filter(|p| *p > 0)?;
        self.init_pid.set(Some(pid));
        Some(pid)
    }

    /// `Some(how)` when the container no longer runs.
    fn state_now(&self) -> Option<String> {
        match self.engine.call("inspect", self.engine.api().inspect_container(&self.id, None)) {
            Ok(info) => {
                let state = info.state?;
                if state.running == Some(true) {
                    return None;
                }
                Some(format!(
                    "container {} (exit code {}{}); log: {}",
                    state.status.map(|s| s.to_string()).unwrap_or_default(),
                    state.exit_code.unwrap_or(-1),
                    if state.oom_killed == Some(true) { ", killed by the OOM killer" } else { "" },
                    self.log_tail()
                ))
            }
            Err(e) if is_not_found(&e) => Some("the container is gone (removed outside edgebench)".into()),
            // A slow or failing engine call is not an exit; the probe's timeout bounds the wait.
            Err(_) => None,
        }
    }

    /// docker-proxy processes serving this instance's published port.
    fn proxy_pids(&self) -> Vec<u32> {
        if self.network != Network::Bridge {
            return Vec::new();
        }
        let port = self.addr.port().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| comm(*pid).as_deref() == Some("docker-proxy"))
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.windows(2).any(|w| w[0] == b"-host-port" && w[1] == port.as_bytes())
            })
            .collect()
    }

    /// One warm start: the action that makes the server answer again (t0
    /// just before it) → first correct `200`.
    fn warm(&mut self, kind: WarmKind, workload: Workload) -> Result<Duration> {
        let request = http::encode(&workload.probe_request(), &self.addr.to_string(), false);
        let expected = workload.expected_probe();
        let never = AtomicBool::new(false);
        let probe = Probe {
            addr: self.addr,
            request: &request,
            expected: &expected,
            timeout: WARM_TIMEOUT,
            interrupted: &never,
        };
        let (engine, id) = (self.engine.clone(), self.id.clone());
        let api = engine.api();
        let t0 = match kind {
            WarmKind::Restart => {
                // SIGKILL at once (the container's stop signal), no grace period.
                let options = StopContainerOptions { t: Some(0), ..Default::default() };
                engine.call("stop", api.stop_container(&id, Some(options)))?;
                self.init_pid.set(None);
                let t0 = Instant::now();
                engine.call("start", api.start_container(&id, None))?;
                t0
            }
            WarmKind::Unpause => {
                engine.call("pause", api.pause_container(&id))?;
                let t0 = Instant::now();
                engine.call("unpause", api.unpause_container(&id))?;
                t0
            }
        };
        self.last_state_check = Instant::now();
        let ready = probe.wait(t0, &mut || self.exited()).map_err(|e| anyhow!("{e}"))?;
        Ok(ready.response)
    }
}

impl Instance for DockerInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn launched_at(&self) -> Instant {
        self.launched_at
    }

    fn exited(&mut self) -> Option<String> {
        if self.exit.is_none() && !self.removed && self.last_state_check.elapsed() >= STATE_POLL {
            self.exit = self.state_now();
            self.last_state_check = Instant::now();
        }
        self.exit.clone()
    }

    /// The container's processes, its containerd shim and (bridge) its docker-proxy.
    fn pids(&self) -> Vec<u32> {
        if self.removed || self.exit.is_some() {
            return Vec::new();
        }
        let Some(init) = self.init_pid() else { return Vec::new() };
        let shim = resources::parent_of(init).filter(|p| comm(*p).is_some_and(|c| c.starts_with("containerd-shim")));
        let mut pids = resources::process_tree(shim.unwrap_or(init));
        pids.extend(self.proxy_pids());
        pids
    }

    /// The container's own processes (its cgroup), without shim and proxy.
    fn constrained_pids(&self) -> Vec<u32> {
        if self.removed || self.exit.is_some() {
            return Vec::new();
        }
        self.init_pid().map(resources::process_tree).unwrap_or_default()
    }

    fn stop(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.engine.call("remove", self.engine.api().remove_container(&self.id, Some(options))) {
            Err(e) if !is_not_found(&e) => Err(e),
            _ => {
                self.removed = true;
                Ok(())
            }
        }
    }

    fn log_tail(&self) -> String {
        let options = LogsOptions { stdout: true, stderr: true, tail: "5".into(), ..Default::default() };
        let api = self.engine.api();
        let text = self.engine.call("logs", async {
            let mut stream = api.logs(&self.id, Some(options));
            let mut text = String::new();
            while let Some(item) = stream.next().await {
                text.push_str(&item?.to_string());
            }
            Ok(text)
        });
        match text {
            Ok(text) => text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | "),
            Err(e) => format!("(no log: {e:#})"),
        }
    }

    fn launch_phases(&self) -> Vec<(String, Duration)> {
        self.phases.clone()
    }

    /// The container's cgroup (every process that ran in it, `runc init` and
    /// exited children included) plus what runs for it outside: its
    /// containerd-shim and docker-proxy. dockerd's and containerd's share of
    /// work for it cannot be told apart from their other work and is not in it.
    fn cpu_ns(&self) -> Option<Result<u64, String>> {
        let read = || -> Option<u64> {
            if self.removed || self.exit.is_some() {
                return None;
            }
            let init = self.init_pid()?;
            let container = cgroup::usage(init).cpu_ns?;
            let mut outside = self.proxy_pids();
            outside.extend(
                resources::parent_of(init).filter(|p| comm(*p).is_some_and(|c| c.starts_with("containerd-shim"))),
            );
            Some(container + resources::cpu_ns(&outside))
        };
        read().map(Ok)
    }

    /// The container cgroup (`cgroup_memory_current`, `cgroup_memory_peak` in
    /// KiB, `cgroup_cpu` in ms, all since the container's last start), the
    /// docker-proxy's PSS (bridge), and once per campaign the daemon's memory.
    fn extra_resources(&self) -> Vec<ExtraResource> {
        let mut out = Vec::new();
        let mut push = |metric: &str, value: Option<f64>, unit: &str| {
            if let Some(value) = value {
                out.push(ExtraResource { metric: metric.into(), value, unit: unit.into() });
            }
        };
        if let Some(init) = self.init_pid().filter(|_| !self.removed && self.exit.is_none()) {
            let usage = cgroup::usage(init);
            push("cgroup_memory_current", usage.memory_current_bytes.map(|b| b as f64 / 1024.0), "KiB");
            push("cgroup_memory_peak", usage.memory_peak_bytes.map(|b| b as f64 / 1024.0), "KiB");
            push("cgroup_cpu", usage.cpu_ns.map(|ns| ns as f64 / 1e6), "ms");
        }
        let proxies = self.proxy_pids();
        if !proxies.is_empty() {
            push("docker_proxy_pss", Some(resources::memory(&proxies).pss_kib as f64), "KiB");
        }
        if self.daemon_memory.pending.swap(false, Ordering::SeqCst) {
            let daemon = self.daemon_memory.dockerd.map(daemon_pids).unwrap_or_default();
            if !daemon.is_empty() {
                let m = resources::memory(&daemon);
                push("daemon_memory_pss", Some(m.pss_kib as f64), "KiB");
                push("daemon_memory_rss", Some(m.rss_kib as f64), "KiB");
            }
        }
        out
    }

    /// `restart` and `unpause`, one of each per call. Checkpoint/restore is
    /// not offered: see the module documentation of `runtime::docker`.
    fn warm_start(&mut self, workload: Workload) -> WarmStart {
        let mut samples = Vec::new();
        for kind in [WarmKind::Restart, WarmKind::Unpause] {
            match self.warm(kind, workload) {
                Ok(client) => samples.push(WarmSample { phase: kind.name().into(), client, internal: None }),
                Err(e) => return WarmStart::Failed(format!("{}: {e:#}", kind.name())),
            }
        }
        WarmStart::Measured(samples)
    }
}

impl Drop for DockerInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
