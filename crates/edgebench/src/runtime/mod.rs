//! One backend per runtime behind one trait. Adding a runtime means adding a
//! file here and a line in [`all`].

mod aot;
pub mod docker;
pub mod gvisor;
pub mod microvm;
mod native;
pub mod process;
mod wamr;
pub mod wasmcloud;
mod wasmedge;
mod wasmer;
mod wasmtime_cli;
mod wasmtime_embedded;
pub mod workerd;

use crate::artifacts::Artifacts;
use crate::measure::http;
pub use crate::network::Placement;
pub use crate::workload::ArtifactKind;
use crate::workload::HttpRequest;
use crate::Workload;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every runtime edgebench knows, in report order.
pub fn all() -> Vec<Box<dyn Runtime>> {
    vec![
        Box::new(native::Native),
        Box::new(wasmtime_embedded::WasmtimeEmbedded::default()),
        Box::new(wasmtime_cli::WasmtimeCli),
        Box::new(docker::Docker::from_env()),
        Box::new(gvisor::Gvisor::from_env()),
        Box::new(wasmcloud::Wasmcloud::default()),
        Box::new(microvm::QemuMicrovm::from_env()),
        Box::new(microvm::Firecracker::from_env()),
        Box::new(microvm::Unikernel::from_env()),
        Box::new(wasmedge::WasmEdge::default()),
        Box::new(wamr::Wamr::default()),
        Box::new(wasmer::Wasmer),
        Box::new(workerd::Workerd),
    ]
}

pub use crate::store::BASELINE;

/// Whether a runtime can be measured here.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    pub available: bool,
    pub version: String,
    pub path: Option<PathBuf>,
    /// Why it cannot be measured and how to get it (when not available).
    pub reason: String,
}

impl Detection {
    pub fn found(version: impl Into<String>, path: PathBuf) -> Detection {
        Detection { available: true, version: version.into(), path: Some(path), reason: String::new() }
    }

    pub fn missing(reason: impl Into<String>) -> Detection {
        Detection { reason: reason.into(), ..Detection::default() }
    }
}

/// What a backend needs from the campaign.
pub struct Context<'a> {
    /// Labels everything a backend creates outside its processes (containers,
    /// images, namespaces), so that leftovers of a crashed campaign are found.
    pub campaign_id: String,
    pub artifacts: &'a Artifacts,
    /// Scratch space of this campaign: logs, state directories, a private HOME.
    pub work_dir: PathBuf,
    /// The whole environment runtimes are started with (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The campaign's server namespace (a /run/netns path) when it runs
    /// firewall profiles: where a runtime placed there starts what its
    /// instances share (e.g. wasmCloud's NATS server and registry).
    pub server_netns: Option<PathBuf>,
    /// `--ready-timeout-ms`: replaces every runtime's own [`Runtime::ready_timeout`].
    pub ready_timeout: Option<Duration>,
    /// The most requests the campaign has in flight on one instance at once
    /// (the load generator's connections): what a runtime that sizes a pool
    /// up front (the embedded host's instance slots) must hold, and no more.
    pub concurrency: usize,
    /// The client is on another host (an agent's context, remote.rs): an
    /// instance listens on the address it is given though it is not loopback.
    pub client_elsewhere: bool,
}

impl<'a> Context<'a> {
    /// A context whose scratch space (`logs`, `state`, `home` under
    /// `work_dir`) exists and whose runtimes get the controlled environment.
    pub fn new(
        campaign_id: impl Into<String>,
        artifacts: &'a Artifacts,
        work_dir: &Path,
    ) -> std::io::Result<Context<'a>> {
        for sub in ["logs", "state", "home"] {
            std::fs::create_dir_all(work_dir.join(sub))?;
        }
        Ok(Context {
            campaign_id: campaign_id.into(),
            artifacts,
            work_dir: work_dir.to_path_buf(),
            env: crate::campaign::controlled_env(work_dir),
            ready_timeout: None,
            concurrency: crate::campaign::LoadOptions::default().connections,
            server_netns: None,
            client_elsewhere: false,
        })
    }
}

pub struct LaunchSpec<'a> {
    pub workload: Workload,
    pub variant: &'a str,
    pub addr: SocketAddr,
    /// Names this instance's log and scratch files.
    pub label: String,
    /// The network namespace (a /run/netns path) the instance must start in,
    /// when the campaign runs firewall profiles and the runtime's placement
    /// is [`Placement::ServerNamespace`]; `addr` is then inside it.
    pub netns: Option<&'a Path>,
    /// The trial's firewall profile, for a runtime on a path of its own
    /// ([`Placement::OwnNamespace`]) that applies it itself before t0.
    pub firewall: Option<OwnFirewall<'a>>,
}

/// A profile a runtime applies in its own namespace (see [`crate::network::Network::apply_own`]).
#[derive(Clone, Copy)]
pub struct OwnFirewall<'a> {
    pub network: &'a crate::network::Network,
    pub profile: crate::network::Profile,
}

impl LaunchSpec<'_> {
    /// Makes `command` start inside `netns` when there is one (`setns`
    /// between clone and exec): every process runtime calls this.
    pub fn place(&self, command: &mut process::Launch) -> Result<()> {
        match self.netns {
            Some(netns) => command.enter_netns(netns),
            None => Ok(()),
        }
    }
}

/// Warm starts: a new instance of the workload on a runtime whose process
/// and compiled artifact are already loaded.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum WarmStart {
    NotApplicable(String),
    /// One or more kinds of warm start (e.g. Docker: `restart`, `unpause`).
    Measured(Vec<WarmSample>),
    Failed(String),
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct WarmSample {
    /// The kind of warm start, stored as the sample's phase ("" when one kind).
    pub phase: String,
    /// From the client: the action that makes the new instance → first response read.
    pub client: Duration,
    /// Inside the runtime, where it reports it (e.g. instantiate).
    pub internal: Option<Duration>,
}

/// What varies by instance beyond its processes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExtraResource {
    pub metric: String,
    pub value: f64,
    pub unit: String,
}

/// One figure of an own trial ([`Runtime::own_trial`]): a value, or why it is missing.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OwnSample {
    pub metric: String,
    pub phase: String,
    pub value: Result<f64, String>,
    pub unit: String,
}

impl OwnSample {
    pub fn ms(metric: &str, phase: &str, d: Duration) -> OwnSample {
        OwnSample {
            metric: metric.into(),
            phase: phase.into(),
            value: Ok(d.as_nanos() as f64 / 1e6),
            unit: "ms".into(),
        }
    }

    pub fn failed(metric: &str, phase: &str, why: impl Into<String>) -> OwnSample {
        OwnSample { metric: metric.into(), phase: phase.into(), value: Err(why.into()), unit: String::new() }
    }
}

/// What a variant's cold start starts from, i.e. where its t0 is: cold
/// starts of different kinds are not ranked against each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartKind {
    /// t0 before the call that launches everything the instance needs (a
    /// process, a container, a VM, a runtime host) → the first correct answer.
    Launch,
    /// t0 before a deploy onto a runtime host already running for this
    /// instance (its start is not in the figure) → the first correct answer.
    DeployOnRunningHost,
}

impl StartKind {
    pub fn name(self) -> &'static str {
        match self {
            StartKind::Launch => "launch",
            StartKind::DeployOnRunningHost => "deploy-on-running-host",
        }
    }
}

/// `Sync`: scaling experiments launch instances from several threads at once.
pub trait Runtime: Sync {
    fn name(&self) -> &'static str;
    /// Variants are configurations of one runtime (e.g. with or without a
    /// compile cache); the first is the default.
    fn variants(&self) -> &'static [&'static str];
    fn detect(&self, artifacts: &Artifacts) -> Detection;
    /// What this runtime runs of a workload in `variant`: a workload without
    /// such an artifact is not measured here, with that reason.
    fn artifact(&self, variant: &str) -> ArtifactKind;
    /// What the report must say about how this runtime runs `workload`
    /// (e.g. where `kv` keeps its state).
    fn notes(&self, _workload: Workload) -> Option<String> {
        None
    }
    /// Work done once before any measurement (e.g. an image build).
    fn prepare(&self, _ctx: &Context<'_>, _workload: Workload, _variant: &str) -> Result<()> {
        Ok(())
    }
    /// `Err(why)` when `variant` answers no workload requests on this host
    /// (e.g. a VMM-only measurement, or a guest this host cannot boot).
    fn serves_workloads(&self, _variant: &str) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Variants that measure something other than a workload server (e.g. a
    /// VMM booting a minimal guest) run their own trial instead of launch +
    /// probe: `Some(samples)`, stored under metric names of their own.
    fn own_trial(&self, _ctx: &Context<'_>, _spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        None
    }
    /// Figures of the work the last `prepare` of this configuration did (e.g.
    /// an AOT compile's time and memory), stored with phase `prepare`.
    fn prepared(&self, _workload: Workload, _variant: &str) -> Vec<ExtraResource> {
        Vec::new()
    }
    /// Starts an instance. t0 is taken inside, just before the launch call.
    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>>;
    /// How long a cold start may take before it counts as failed.
    fn ready_timeout(&self, _variant: &str) -> Duration {
        Duration::from_secs(30)
    }
    /// Once per campaign, before anything else (e.g. start a daemon, remove
    /// leftovers of a crashed campaign).
    fn setup(&self, _ctx: &Context<'_>) -> Result<()> {
        Ok(())
    }
    /// Once per campaign at the end, on every path (stop what `setup` started).
    fn teardown(&self, _ctx: &Context<'_>) {}
    /// Where instances of `variant` listen when the campaign runs firewall
    /// profiles. Process runtimes start inside the server namespace (they
    /// call [`LaunchSpec::place`]); a runtime with its own network path
    /// (Docker's bridge: a port published on 127.0.0.1 through its NAT)
    /// returns [`Placement::HostLoopback`], and the profile is then applied in
    /// the host namespace, in our own table, on the packets to its port.
    fn network_placement(&self, _variant: &str) -> Placement {
        Placement::ServerNamespace
    }
    /// A process whose network namespace must become the campaign's server
    /// namespace, for a runtime that can join only a namespace it made itself
    /// (Docker: containers join a pause container's namespace, as in a pod).
    /// Called before the server namespace exists, once, when a variant of
    /// this runtime is placed there; `None` (the default): the campaign makes
    /// a namespace of its own.
    fn hold_server_namespace(&self, _ctx: &Context<'_>) -> Result<Option<u32>> {
        Ok(None)
    }
    /// How an instance serves concurrent connections (threads, workers), for
    /// the report: loaded figures compare runtimes only where this is alike.
    fn serving_model(&self, variant: &str) -> String;
    /// What `cpu_time` of `variant` counts, for the report (a ranking by CPU
    /// is only fair when readers see what each figure leaves out).
    fn cpu_scope(&self, _variant: &str) -> String {
        "the CPU clocks of every process of the instance".into()
    }
    /// What `cold_start` of `variant` starts from (default: a launch of everything).
    fn start_kind(&self, _variant: &str) -> StartKind {
        StartKind::Launch
    }
    /// The path from the client to an instance, for the report.
    fn network_path(&self, _variant: &str) -> String {
        "listens on the address it is given: 127.0.0.1, or under a firewall profile the campaign namespace's \
         address, reached over its veth pair"
            .into()
    }
    /// After a trial, waits until the CPUs its instances ran on are quiet,
    /// where those are not this host's (a remote target waits there); `None`:
    /// the campaign waits on this host's SUT CPUs.
    fn settle_elsewhere(&self, _bound: Duration) -> Option<Result<crate::measure::settle::Settled, String>> {
        None
    }
}

/// A running instance of a workload.
/// `Send`: instances may be launched on one thread and stopped on another.
pub trait Instance: Send {
    fn addr(&self) -> SocketAddr;
    /// t0 of the cold start: just before the launch call.
    fn launched_at(&self) -> Instant;
    /// `Some(how)` once the instance has died.
    fn exited(&mut self) -> Option<String>;
    /// Every process of the instance (for memory and CPU).
    fn pids(&self) -> Vec<u32>;
    /// The processes an edge profile's limits must hold for (default: every
    /// process of the instance). A container's are those in its cgroup: its
    /// containerd shim and docker-proxy are Docker's, outside it.
    fn constrained_pids(&self) -> Vec<u32> {
        self.pids()
    }
    /// Stops the instance and everything it started; safe to call twice.
    fn stop(&mut self) -> Result<()>;
    /// The end of the instance's log, for error messages.
    fn log_tail(&self) -> String;
    /// Intermediate events of the launch, as durations since t0, stored as
    /// metrics `cold_start_<name>` (e.g. Docker's `create`, `start`).
    fn launch_phases(&self) -> Vec<(String, Duration)> {
        Vec::new()
    }
    /// Figures of the launch that are not durations since t0, read once the
    /// instance is ready (Firecracker's own boot timer: `vmm_boot_timer`,
    /// InstanceStart received → the guest's write). Stored with phase "".
    fn boot_figures(&self) -> Vec<ExtraResource> {
        Vec::new()
    }
    /// The firewall profile this instance applied itself at launch, if any
    /// (a runtime in a namespace of its own; stored as `firewall_apply`).
    fn firewall_applied(&self) -> Option<crate::network::Applied> {
        None
    }
    /// CPU time (ns) of everything the instance has run, where the runtime
    /// counts more than its live processes do (a container's cgroup keeps
    /// the CPU of processes that have exited, such as `runc init`); `None`:
    /// the CPU clocks of [`Instance::pids`]. `Some(Err(why))`: it cannot be
    /// read now (an instance on another host whose connection failed).
    fn cpu_ns(&self) -> Option<Result<u64, String>> {
        None
    }
    /// Memory of the instance where [`Instance::pids`] cannot be read here
    /// (an instance on another host reads its own); `None`: read from `pids`.
    fn memory(&self) -> Option<Result<crate::measure::resources::Memory, String>> {
        None
    }
    /// Resource figures beyond the processes' PSS/RSS/CPU (e.g. cgroup memory).
    fn extra_resources(&self) -> Vec<ExtraResource> {
        Vec::new()
    }
    fn warm_start(&mut self, _workload: Workload) -> WarmStart {
        WarmStart::NotApplicable(
            "this runtime has no instance apart from its process: every start is a cold start".into(),
        )
    }
    /// Many tenants in one instance: deploys one more copy of the instance's
    /// workload as tenant `name`, reached with `Host: name`. `None`: this
    /// runtime has one tenant per instance (density counts instances).
    fn add_tenant(&mut self, _name: &str) -> Option<Result<()>> {
        None
    }
}

/// Warm start where a runtime makes a fresh instance per request: one request
/// on a new connection. `internal_header` names the response header in which
/// the runtime reports its own instantiate+handle time, if it does.
pub fn warm_start_per_request(addr: SocketAddr, workload: Workload, internal_header: Option<&str>) -> WarmStart {
    let request: HttpRequest = workload.latency_request();
    let bytes = http::encode(&request, &addr.to_string(), true);
    let start = Instant::now();
    match http::one_shot(addr, &bytes, Duration::from_secs(10)) {
        Ok(r) if r.status == 200 => WarmStart::Measured(vec![WarmSample {
            phase: String::new(),
            client: start.elapsed(),
            internal: internal_header
                .and_then(|h| r.header(h))
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_nanos),
        }]),
        Ok(r) => WarmStart::Failed(format!("status {}", r.status)),
        Err(e) => WarmStart::Failed(e.to_string()),
    }
}

/// Looks a program up on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| is_executable(p))
}

pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// First line of `program args` output, for version strings.
pub fn version_of(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = process::helper(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}
