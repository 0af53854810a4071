//! `docker`: the static musl server in a `FROM scratch` container, driven
//! through the engine API (bollard). The container baseline every Wasm figure
//! is read against.
//!
//! Variants: `bridge` (default bridge network, the port published on
//! 127.0.0.1 only: through Docker's NAT rules and its docker-proxy, which
//! forwards into the container's namespace) and `host` (the server listens on
//! the launch address itself, in the host's namespace; under firewall
//! profiles in the campaign's server namespace, which is then a pause
//! container's that the containers join, see [`pod`]). edgebench connects
//! only to 127.0.0.1 or into its own server namespace.
//!
//! What is measured, besides the metrics every runtime has:
//! - `cold_start` is the whole `docker run` path as one interval: t0 just
//!   before the create call → first correct `200` (create + start + the
//!   server's start + the network path). Its phases: `cold_start_create`
//!   (t0 → create returned) and `cold_start_start` (t0 → start returned).
//!   In `bridge`, `cold_start_accept` is docker-proxy accepting, which can
//!   happen before the server listens.
//! - `warm_start`, phase `restart`: the container is stopped (SIGKILL), then
//!   start call → first correct `200`; phase `unpause`: the container is
//!   paused, then unpause call → first correct `200`.
//!   Checkpoint/restore is not measured: it needs dockerd's experimental mode
//!   and CRIU, and Debian's CRIU 3.17 fails on this kernel (6.18) before
//!   dumping anything ("vdso: Unexpected rt vDSO area bounds" in `criu check`).
//! - Memory and CPU: `pids()` are the container's processes, its
//!   containerd-shim and (bridge) its docker-proxy; `docker_proxy_pss` gives
//!   the proxy's share. The container cgroup gives `cgroup_memory_current`,
//!   `cgroup_memory_peak` (KiB) and `cgroup_cpu` (ms), counted since the
//!   container's last start (a `restart` warm start makes a new cgroup).
//! - The daemon's own memory (dockerd + its containerd), once per campaign:
//!   `daemon_memory_pss`, `daemon_memory_rss` (KiB), stored with the first
//!   Docker trial that records resources (phase `after_boot`).
//!
//! Engine: `EDGEBENCH_DOCKER_HOST` (a socket path) or the default socket. When
//! no daemon answers on the default socket, `setup` starts `dockerd` (log in
//! the campaign's `work/logs/dockerd.log`) and `teardown` stops it by pid.
//! That daemon also gets gVisor's OCI runtimes, where runsc is installed
//! (`work/dockerd.json`: the host's daemon.json plus those; see [`super::gvisor`]).
//! Containers carry `edgebench=1`, `edgebench.campaign=<id>` and the pid of
//! the edgebench that made them; `setup` removes those whose edgebench is
//! gone (a crashed campaign).

pub(crate) mod cgroup;
mod daemon;
mod engine;
mod image;
mod instance;
mod labels;
mod pod;

pub(crate) use daemon::find_on_path;
pub use daemon::write_config as write_daemon_config;
pub use engine::{Endpoint, DEFAULT_SOCKET, HOST_ENV};
pub use image::Outcome as ImageOutcome;

use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{anyhow, Result};
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use daemon::StartedDaemon;
use engine::Engine;
use instance::{DaemonMemory, Network};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

/// A daemon's OCI runtimes by name: (path, arguments).
pub(crate) type OciRuntimes = HashMap<String, (String, Vec<String>)>;

/// How long a running daemon has to answer a first call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Docker {
    endpoint: Result<Endpoint, String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    engine: Option<Arc<Engine>>,
    /// The dockerd this backend started (stopped in `teardown`).
    daemon: Option<StartedDaemon>,
    /// The image tags checked or built in this campaign, by workload.
    images: HashMap<Workload, String>,
    daemon_memory_pending: Arc<AtomicBool>,
    /// The pause container holding the server namespace, in a firewall campaign.
    pod: Option<pod::Pod>,
}

impl Docker {
    /// The engine at `EDGEBENCH_DOCKER_HOST`, else at the default socket.
    pub fn from_env() -> Docker {
        Docker { endpoint: Endpoint::from_env(), state: Mutex::default() }
    }

    /// The engine at `socket` (edgebench starts a daemon only for the default one).
    pub fn with_socket(socket: &str) -> Docker {
        Docker { endpoint: Endpoint::parse(socket), state: Mutex::default() }
    }

    /// Builds edgebench's server image unless one of the same content exists.
    pub fn ensure_image(&self, artifacts: &Artifacts, campaign: &str) -> Result<(String, ImageOutcome)> {
        self.ensure_image_of(Workload::HELLO, artifacts, campaign)
    }

    /// Builds the image of `workload`'s binary (`FROM scratch`) unless one of
    /// the same content exists.
    pub fn ensure_image_of(
        &self,
        workload: Workload,
        artifacts: &Artifacts,
        campaign: &str,
    ) -> Result<(String, ImageOutcome)> {
        let engine = self.engine()?;
        let binary = workload.require(ArtifactKind::Binary, artifacts)?;
        let repository = match workload.builtin() {
            Some(_) => image::REPOSITORY.to_string(),
            None => format!("edgebench-user-{workload}"),
        };
        let (tag, outcome) = image::ensure(&engine, &repository, &binary, campaign)?;
        // Every built-in workload runs the one server image.
        let key = if workload.builtin().is_some() { Workload::HELLO } else { workload };
        self.state.lock().unwrap().images.insert(key, tag.clone());
        Ok((tag, outcome))
    }

    /// The engine connected in `setup`, or one connected now (never starts a daemon).
    fn engine(&self) -> Result<Arc<Engine>> {
        if let Some(engine) = &self.state.lock().unwrap().engine {
            return Ok(engine.clone());
        }
        let endpoint = self.endpoint.clone().map_err(|e| anyhow!(e))?;
        let engine = Engine::connect(&endpoint.socket, CONNECT_TIMEOUT).map_err(|e| {
            anyhow!(
                "no Docker engine answers at {} ({e:#}): start dockerd (`edgebench run` starts it when none runs)",
                endpoint.socket.display()
            )
        })?;
        let engine = Arc::new(engine);
        self.state.lock().unwrap().engine = Some(engine.clone());
        Ok(engine)
    }

    fn image(&self, ctx: &Context<'_>, workload: Workload) -> Result<String> {
        let key = if workload.builtin().is_some() { Workload::HELLO } else { workload };
        if let Some(tag) = self.state.lock().unwrap().images.get(&key) {
            return Ok(tag.clone());
        }
        if let Some(path) = workload.user().and_then(|u| u.oci.as_ref()) {
            let reference = image::load(&*self.engine()?, path)?;
            eprintln!("edgebench: docker: {workload}: loaded {reference} from {}", path.display());
            self.state.lock().unwrap().images.insert(workload, reference.clone());
            return Ok(reference);
        }
        let (tag, outcome) = self.ensure_image_of(workload, ctx.artifacts, &ctx.campaign_id)?;
        eprintln!("edgebench: docker: image {tag} {}", if outcome == ImageOutcome::Built { "built" } else { "reused" });
        Ok(tag)
    }

    fn dockerd_pid(&self) -> Option<u32> {
        let state = self.state.lock().unwrap();
        match (&state.daemon, &self.endpoint) {
            (Some(daemon), _) => Some(daemon.pid()),
            (None, Ok(endpoint)) if endpoint.is_default => daemon::running_dockerd(),
            _ => None,
        }
    }
}

impl Runtime for Docker {
    /// `bridge` is reached through Docker's own path (a port published on
    /// 127.0.0.1 through its NAT rules and proxy): profiles are applied where
    /// that traffic passes, in the host namespace. `host` containers join the
    /// server namespace, which is then the pause container's ([`pod`]).
    fn network_placement(&self, variant: &str) -> super::Placement {
        match Network::parse(variant) {
            Ok(Network::Host) => super::Placement::ServerNamespace,
            _ => super::Placement::HostLoopback,
        }
    }

    /// Starts the daemon if needed, then the pause container whose namespace
    /// becomes the server namespace.
    fn hold_server_namespace(&self, ctx: &Context<'_>) -> Result<Option<u32>> {
        if self.engine().is_err() {
            self.setup(ctx)?;
        }
        let engine = self.engine()?;
        let image = self.image(ctx, Workload::HELLO)?;
        let pod = pod::start(&engine, &image, &ctx.campaign_id)?;
        let pid = pod.pid;
        eprintln!("edgebench: docker: pause container {} holds the server namespace", &pod.id[..12.min(pod.id.len())]);
        self.state.lock().unwrap().pod = Some(pod);
        Ok(Some(pid))
    }

    fn name(&self) -> &'static str {
        "docker"
    }

    fn variants(&self) -> &'static [&'static str] {
        Network::VARIANTS
    }

    fn cpu_scope(&self, _variant: &str) -> String {
        "the container's cgroup (runc init and exited processes included) plus its containerd-shim and docker-proxy; \
         not dockerd's or containerd's work for it"
            .into()
    }

    fn serving_model(&self, _variant: &str) -> String {
        "the native server in a container (one thread per connection), `--cpuset-cpus` the SUT set; dockerd (when edgebench starts it), containerd and the shims on the SUT set".into()
    }

    fn network_path(&self, variant: &str) -> String {
        match variant {
            "host" => "shares a network namespace: the host's, listening on 127.0.0.1; under firewall profiles the server namespace, which is a pause container's that every container joins (`network_mode: container:<pause>`, as in a pod), reached over its veth pair like the process runtimes".into(),
            _ => "Docker's bridge: the port published on 127.0.0.1 through Docker's NAT rules and docker-proxy (a firewall profile sits on `lo`, not on the veth path)".into(),
        }
    }

    /// Asks the engine; never starts a daemon.
    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let endpoint = match &self.endpoint {
            Ok(e) => e,
            Err(why) => return Detection::missing(why.clone()),
        };
        if !artifacts.native_server().exists() {
            return Detection::missing(format!(
                "the image is built from the native server, and {} is not built: run `edgebench build`",
                artifacts.native_server().display()
            ));
        }
        let dockerd = daemon::find_dockerd(&crate::campaign::controlled_env(std::path::Path::new("/")));
        match Engine::connect(&endpoint.socket, CONNECT_TIMEOUT) {
            Ok(engine) => Detection::found(
                format!("{} at {}", engine.version, endpoint.socket.display()),
                dockerd.unwrap_or_else(|| endpoint.socket.clone()),
            ),
            Err(e) => match dockerd {
                Some(path) if endpoint.is_default && nix::unistd::geteuid().is_root() => {
                    let version = super::version_of(&path, &["--version"]).unwrap_or_else(|| "dockerd".into());
                    Detection::found(format!("{version} (installed, not running: edgebench starts it)"), path)
                }
                Some(_) if endpoint.is_default => Detection::missing(
                    "dockerd is installed but not running, and only root can start it: start dockerd, or run edgebench as root",
                ),
                _ => Detection::missing(format!(
                    "no Docker engine at {} ({e:#}): install docker.io / start dockerd",
                    endpoint.socket.display()
                )),
            },
        }
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::Container
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        workload.keeps_state().then(|| {
            "state in the server process memory inside the container (as native); a `restart` warm start begins with an empty store".into()
        })
    }

    /// Connects to the engine (starting dockerd when none answers on the
    /// default socket) and removes leftovers of crashed campaigns.
    fn setup(&self, ctx: &Context<'_>) -> Result<()> {
        {
            let mut state = self.state.lock().unwrap();
            state.images.clear();
            state.daemon_memory_pending = Arc::new(AtomicBool::new(true));
        }
        let endpoint = self.endpoint.clone().map_err(|e| anyhow!(e))?;
        let engine = match self.engine() {
            Ok(engine) => engine,
            Err(no_engine) => {
                let dockerd = daemon::find_dockerd(&ctx.env)
                    .filter(|_| endpoint.is_default)
                    .ok_or_else(|| no_engine.context("edgebench starts dockerd only for the default socket"))?;
                let log = ctx.work_dir.join("logs").join("dockerd.log");
                let config = ctx.work_dir.join("dockerd.json");
                let config = daemon::write_config(&config, &ctx.env)?.then_some(config);
                let (daemon, engine) = daemon::start(&dockerd, &ctx.env, config.as_deref(), log)?;
                eprintln!("edgebench: docker: started dockerd (pid {}), log {}", daemon.pid(), daemon.log.display());
                let engine = Arc::new(engine);
                let mut state = self.state.lock().unwrap();
                state.daemon = Some(daemon);
                state.engine = Some(engine.clone());
                engine
            }
        };
        let removed = remove_containers(&engine, labels::marked_filter(), |owner| !labels::owner_alive(owner))?;
        if removed > 0 {
            eprintln!("edgebench: docker: removed {removed} leftover container(s) of a crashed campaign");
        }
        Ok(())
    }

    /// Removes this campaign's containers, if any are left, and stops the
    /// daemon if `setup` started it.
    fn teardown(&self, ctx: &Context<'_>) {
        let (engine, daemon) = {
            let mut state = self.state.lock().unwrap();
            state.pod = None;
            (state.engine.take(), state.daemon.take())
        };
        if let Some(engine) = engine {
            if let Err(e) = remove_containers(&engine, labels::campaign_filter(&ctx.campaign_id), |_| true) {
                // A daemon another backend started and already stopped (with
                // this campaign's containers removed first) is not a failure.
                if engine.call("ping", engine.api().ping()).is_ok() {
                    eprintln!("edgebench: docker: cleaning up: {e:#}");
                }
            }
        }
        if let Some(mut daemon) = daemon {
            daemon.stop();
            eprintln!("edgebench: docker: stopped dockerd (pid {})", daemon.pid());
        }
    }

    /// Builds (or finds) the image outside any timed interval.
    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        Network::parse(variant)?;
        self.image(ctx, workload).map(|_| ())
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        self.launch_as(ctx, spec, Network::parse(spec.variant)?, None)
    }
}

impl Docker {
    /// Prepares `workload`'s image for a backend that runs it under another
    /// of the daemon's OCI runtimes ([`Docker::launch_under`]).
    pub(crate) fn prepare_image(&self, ctx: &Context<'_>, workload: Workload) -> Result<()> {
        self.image(ctx, workload).map(|_| ())
    }

    /// A container on the bridge network (port published on 127.0.0.1) run
    /// by the daemon's OCI runtime `oci_runtime` instead of its default.
    pub(crate) fn launch_under(
        &self,
        ctx: &Context<'_>,
        spec: &LaunchSpec<'_>,
        oci_runtime: &str,
    ) -> Result<Box<dyn Instance>> {
        self.launch_as(ctx, spec, Network::Bridge, Some(oci_runtime))
    }

    /// The OCI runtimes of the daemon that answers now, by name: (path, args).
    /// `Ok(None)` when none answers (edgebench would start its own); never
    /// starts a daemon.
    pub(crate) fn daemon_runtimes(&self) -> Result<Option<OciRuntimes>, String> {
        let endpoint = self.endpoint.clone()?;
        let Ok(engine) = Engine::connect(&endpoint.socket, CONNECT_TIMEOUT) else { return Ok(None) };
        let info = engine.call("info", engine.api().info()).map_err(|e| format!("{e:#}"))?;
        let runtimes = info
            .runtimes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, r)| (name, (r.path.unwrap_or_default(), r.runtime_args.unwrap_or_default())));
        Ok(Some(runtimes.collect()))
    }

    pub(crate) fn socket(&self) -> Option<std::path::PathBuf> {
        self.endpoint.as_ref().ok().map(|e| e.socket.clone())
    }

    fn launch_as(
        &self,
        ctx: &Context<'_>,
        spec: &LaunchSpec<'_>,
        network: Network,
        oci_runtime: Option<&str>,
    ) -> Result<Box<dyn Instance>> {
        let engine = self.engine()?;
        let image = self.image(ctx, spec.workload)?;
        // Two statements: the state lock must be released before dockerd_pid takes it.
        let pending = self.state.lock().unwrap().daemon_memory_pending.clone();
        let daemon_memory = DaemonMemory { pending, dockerd: self.dockerd_pid() };
        let pod = self.state.lock().unwrap().pod.as_ref().map(|p| p.id.clone());
        Ok(Box::new(instance::launch(engine, &image, ctx, spec, network, pod.as_deref(), daemon_memory, oci_runtime)?))
    }
}

/// Force-removes the containers matching `filter` whose owner label passes
/// `remove`; returns how many were removed.
fn remove_containers(
    engine: &Engine,
    filter: HashMap<String, Vec<String>>,
    remove: impl Fn(Option<&str>) -> bool,
) -> Result<usize> {
    let options = ListContainersOptions { all: true, filters: Some(filter), ..Default::default() };
    let containers = engine.call("list containers", engine.api().list_containers(Some(options)))?;
    let mut removed = 0;
    for container in containers {
        let owner = container.labels.as_ref().and_then(|l| l.get(labels::OWNER)).map(String::as_str);
        let Some(id) = container.id.as_deref().filter(|_| remove(owner)) else { continue };
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match engine.call("remove", engine.api().remove_container(id, Some(options))) {
            Err(e) if !engine::is_not_found(&e) => return Err(e),
            _ => removed += 1,
        }
    }
    Ok(removed)
}
