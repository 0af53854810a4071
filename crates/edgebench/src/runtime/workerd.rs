//! `workerd`: Cloudflare Workers' runtime (V8 isolates), `workerd serve` on a
//! Cap'n Proto config that `prepare` writes. The Worker is the smallest glue
//! there is (`crates/workload-workerd/worker.js`): it copies the request into
//! the workload core compiled to a core Wasm module without imports
//! (`wasm32-unknown-unknown`, `eb_alloc`/`eb_handle`) and the core's answer out.
//!
//! What an instance and a warm start are here. `workerd serve` makes one
//! isolate per Worker when it loads its config and evaluates the Worker's
//! modules there before it serves (measured: a slow module scope delays the
//! listen line by as much; its sockets are bound earlier, so
//! `cold_start_accept` comes before the isolate is ready), and keeps it for
//! the life of the process; the glue instantiates the Wasm module once in it
//! (module scope), so `kv`'s state is per isolate. A request, on a new
//! connection or not, gets a new request context (workerd's `IoContext`) in
//! that isolate, and no new isolate or Wasm instance: that is what
//! `latency_newconn` measures, so variant `serve` has no warm start apart from
//! it (*not applicable*, with this reason). Variant `loader` measures a warm
//! start as a new isolate per request on the running process: a second
//! Worker on a second socket (workerd's Worker Loader, `--experimental`)
//! creates, for each warm-start request, a new isolate under a fresh id from
//! the same glue and module bytes (it compiles the module, evaluates the
//! glue, instantiates the module: fresh `kv` state) and forwards the request
//! into it; t0 the request on a new connection to that socket → t1 the
//! response read, the loader's hop included. The loader Worker is loaded at
//! start, so `loader`'s cold start and memory include it: `serve` gives the
//! plain figures.

use super::process::{spawn, Launch, ProcessInstance, WarmMode};
use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, Runtime, WarmStart};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The npm release the test command installs (scripts/install-test-deps.sh, `WORKERD_VERSION`).
pub const PINNED: &str = "1.20261123.1";
/// The Worker's compatibility date: a workerd older than it refuses the config.
pub const COMPATIBILITY_DATE: &str = "2026-11-01";

const GLUE: &str = include_str!("../../../workload-workerd/worker.js");
const LOADER: &str = include_str!("../../../workload-workerd/loader.js");

/// The npm package that holds the binary for this machine's architecture.
#[cfg(target_arch = "aarch64")]
const PLATFORM_PACKAGE: &str = "@cloudflare/workerd-linux-arm64";
#[cfg(not(target_arch = "aarch64"))]
const PLATFORM_PACKAGE: &str = "@cloudflare/workerd-linux-64";

pub struct Workerd;

impl Workerd {
    /// `EDGEBENCH_WORKERD`, else `workerd` on PATH when it is the binary
    /// (npm's postinstall puts it there), else the binary of the platform
    /// package beside the npm package's launcher: never the launcher itself,
    /// which would add a Node.js start to every cold start.
    pub fn locate() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("EDGEBENCH_WORKERD") {
            return Some(PathBuf::from(p));
        }
        let found = std::fs::canonicalize(super::which("workerd")?).ok()?;
        if is_elf(&found) {
            return Some(found);
        }
        // The launcher is <package>/bin/workerd; npm puts the platform package
        // inside the package (a global install) or beside it (a local one).
        let package = found.parent()?.parent()?;
        [package.join("node_modules"), package.parent()?.to_path_buf()]
            .into_iter()
            .map(|dir| dir.join(PLATFORM_PACKAGE).join("bin/workerd"))
            .find(|p| is_elf(p))
    }

    /// The directory `prepare` writes a configuration's config and modules to.
    fn config_dir(work_dir: &Path, workload: Workload, variant: &str) -> PathBuf {
        work_dir.join("workerd").join(format!("{variant}-{workload}"))
    }
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF"
}

fn how() -> String {
    format!(
        "install it with `npm install -g --ignore-scripts workerd@{PINNED}` (Debian: `apt-get install npm` first where \
         npm is missing), or set EDGEBENCH_WORKERD to a workerd binary"
    )
}

/// The Cap'n Proto config: the Worker with its two modules and the workload's
/// name as a text binding, and for `loader` the loader Worker. The sockets
/// get their addresses at launch (`-s NAME=ADDR`).
fn config(workload: &str, loader: bool) -> String {
    let mut services = String::from(r#"(name = "main", worker = .worker)"#);
    let mut sockets = String::from(r#"(name = "http", http = (), service = "main")"#);
    let mut workers = format!(
        r#"const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "core.wasm", wasm = embed "core.wasm"),
  ],
  compatibilityDate = "{COMPATIBILITY_DATE}",
  bindings = [(name = "WORKLOAD", text = "{workload}")],
);
"#
    );
    if loader {
        services.push_str(r#", (name = "loader", worker = .loader)"#);
        sockets.push_str(r#", (name = "isolate", http = (), service = "loader")"#);
        workers.push_str(&format!(
            r#"
const loader :Workerd.Worker = (
  modules = [
    (name = "loader.js", esModule = embed "loader.js"),
    (name = "worker.js", text = embed "worker.js"),
    (name = "core.wasm", data = embed "core.wasm"),
  ],
  compatibilityDate = "{COMPATIBILITY_DATE}",
  bindings = [
    (name = "LOADER", workerLoader = ()),
    (name = "WORKLOAD", text = "{workload}"),
    (name = "COMPATIBILITY_DATE", text = "{COMPATIBILITY_DATE}"),
  ],
);
"#
        ));
    }
    format!(
        "# Written by edgebench (runtime/workerd.rs).\nusing Workerd = import \"/workerd/workerd.capnp\";\n\n\
         const config :Workerd.Config = (\n  services = [{services}],\n  sockets = [{sockets}],\n);\n\n{workers}"
    )
}

impl Runtime for Workerd {
    fn name(&self) -> &'static str {
        "workerd"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["serve", "loader"]
    }

    fn serving_model(&self, _variant: &str) -> String {
        "`workerd serve`: one isolate per Worker on one event-loop thread (beside one V8 background thread); concurrent requests interleave there, the core runs one request at a time".into()
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::CoreModule
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(path) = Self::locate() else {
            return Detection::missing(format!("workerd not found: {}", how()));
        };
        let Some(version) = super::version_of(&path, &["--version"]) else {
            return Detection::missing(format!("{} does not run (`--version` failed): {}", path.display(), how()));
        };
        // "workerd 2026-11-23": the newest compatibility date it supports (a
        // build that prints no date is let through: its config load says more).
        let supports = version.rsplit(' ').next().unwrap_or("");
        let is_date = supports.len() == 10 && supports.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if is_date && supports < COMPATIBILITY_DATE {
            return Detection::missing(format!(
                "{version} at {} supports compatibility dates up to {supports}, older than the Worker's {COMPATIBILITY_DATE}: {}",
                path.display(),
                how()
            ));
        }
        let module = artifacts.workerd_module();
        if !module.exists() {
            return Detection::missing(format!("{} is not built: run `edgebench build`", module.display()));
        }
        Detection::found(version, path)
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        let glue = "a Worker that only copies bytes in and out of the core Wasm module (no imports), instantiated once per isolate";
        Some(if workload.keeps_state() {
            format!("{glue}; state in that instance's memory, per isolate (`workerd serve` keeps one isolate per Worker for its life; `loader`'s warm-start isolates each start empty)")
        } else {
            format!("{glue}; warm start (`loader`): a new isolate per request from workerd's Worker Loader")
        })
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        if !self.variants().contains(&variant) {
            bail!("unknown workerd variant {variant:?} (expected one of: {})", self.variants().join(", "));
        }
        let module = workload.require(ArtifactKind::CoreModule, ctx.artifacts)?;
        // Only the built-in workloads have a module: their names are safe in the config.
        anyhow::ensure!(
            workload.name().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "workload name {:?} cannot go into a workerd config",
            workload.name()
        );
        let dir = Self::config_dir(&ctx.work_dir, workload, variant);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let loader = variant == "loader";
        let mut files = vec![("config.capnp", config(workload.name(), loader)), ("worker.js", GLUE.to_string())];
        if loader {
            files.push(("loader.js", LOADER.to_string()));
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).with_context(|| format!("writing {}", dir.join(name).display()))?;
        }
        // `embed` reads files beside the config: the module is copied there.
        std::fs::copy(&module, dir.join("core.wasm"))
            .with_context(|| format!("copying {} to {}", module.display(), dir.display()))?;
        Ok(())
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let binary = Self::locate().with_context(|| format!("workerd not found: {}", how()))?;
        let dir = Self::config_dir(&ctx.work_dir, spec.workload, spec.variant);
        let config = dir.join("config.capnp");
        if !config.exists() {
            bail!("{} is missing: prepare writes it", config.display());
        }
        let loader = match spec.variant {
            "serve" => false,
            "loader" => true,
            other => bail!("unknown workerd variant {other:?}"),
        };
        let mut command = Launch::new(binary);
        command.arg("serve");
        if loader {
            // The Worker Loader is experimental; --control-fd 1 writes each
            // socket's port to the log, where the warm start finds the loader's.
            command.args(["--experimental", "--control-fd", "1"]);
        }
        command.arg(&config).arg("config").arg("-s").arg(format!("http={}", spec.addr));
        if loader {
            command.arg("-s").arg(format!("isolate={}", SocketAddr::new(spec.addr.ip(), loader_port(spec))));
        }
        command.current_dir(&dir);
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        let process = spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?;
        Ok(Box::new(WorkerdInstance { process, loader, loader_addr: None }))
    }
}

/// The loader socket's port: any free one (0), except in the campaign's
/// server namespace, whose firewall profiles let in only the service ports:
/// there the service port half the range away from the instance's (ports are
/// handed out in turn, so it is taken only when half the range of instances
/// runs at once).
fn loader_port(spec: &LaunchSpec<'_>) -> u16 {
    let (first, last) = crate::network::SERVICE_PORTS;
    let port = spec.addr.port();
    if spec.netns.is_none() || !(first..=last).contains(&port) {
        return 0;
    }
    let span = last - first + 1;
    first + (port - first + span / 2) % span
}

/// A `workerd serve` process, with the warm start of its variant.
struct WorkerdInstance {
    process: ProcessInstance,
    loader: bool,
    /// The loader socket's address, read from the control lines once.
    loader_addr: Option<SocketAddr>,
}

impl WorkerdInstance {
    /// The port workerd reported for the loader socket (`--control-fd 1`:
    /// `{"event":"listen","socket":"isolate","port":N}` in the log).
    fn loader_addr(&mut self) -> Result<SocketAddr> {
        if let Some(addr) = self.loader_addr {
            return Ok(addr);
        }
        let log = self.process.log_path();
        let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        let port = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "listen" && v["socket"] == "isolate")
            .and_then(|v| v["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| format!("workerd did not report the loader socket's port in {}", log.display()))?;
        let addr = SocketAddr::new(self.process.addr().ip(), port);
        self.loader_addr = Some(addr);
        Ok(addr)
    }
}

impl Instance for WorkerdInstance {
    fn addr(&self) -> SocketAddr {
        self.process.addr()
    }

    fn launched_at(&self) -> Instant {
        self.process.launched_at()
    }

    fn exited(&mut self) -> Option<String> {
        self.process.exited()
    }

    fn pids(&self) -> Vec<u32> {
        self.process.pids()
    }

    fn stop(&mut self) -> Result<()> {
        self.process.stop()
    }

    fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    fn warm_start(&mut self, workload: Workload) -> WarmStart {
        if !self.loader {
            return WarmStart::NotApplicable(
                "workerd serve keeps one isolate per Worker, made at start; a new request gets only a new request \
                 context in it (that is latency_newconn); variant `loader` measures a new isolate per request"
                    .into(),
            );
        }
        match self.loader_addr() {
            Ok(addr) => super::warm_start_per_request(addr, workload, None),
            Err(e) => WarmStart::Failed(format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_the_workload_and_the_loader_only_where_asked() {
        let plain = config("kv", false);
        assert!(plain.contains(r#"text = "kv""#) && plain.contains(r#"wasm = embed "core.wasm""#), "{plain}");
        assert!(!plain.contains("loader") && !plain.contains("address"), "{plain}");
        let loader = config("hello", true);
        assert!(loader.contains("workerLoader = ()") && loader.contains(r#"service = "loader""#), "{loader}");
    }

    #[test]
    fn the_loader_port_is_a_service_port_only_under_a_profile() {
        let (first, last) = crate::network::SERVICE_PORTS;
        let netns = Path::new("/run/netns/x");
        let spec = |port: u16, netns: Option<&'static Path>| LaunchSpec {
            workload: Workload::HELLO,
            variant: "loader",
            addr: SocketAddr::from(([10, 0, 0, 2], port)),
            label: "t".into(),
            netns,
            firewall: None,
        };
        assert_eq!(loader_port(&spec(first, None)), 0);
        for port in [first, first + 1, last] {
            let other = loader_port(&spec(port, Some(netns)));
            assert!((first..=last).contains(&other) && other != port, "{port} → {other}");
        }
    }
}
