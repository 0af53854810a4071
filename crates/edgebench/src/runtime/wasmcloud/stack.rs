//! What every wasmCloud host of a campaign shares: a NATS server (the
//! control plane) and a local OCI registry (components come only from a
//! registry), both on 127.0.0.1, started in `setup`, stopped in `teardown`.
//! Under firewall profiles they run in the server namespace, on its
//! loopback, beside the hosts: only the clients' requests cross the veth
//! and the profile, as for every other runtime placed there.

use super::control::new_runtime;
use super::tools::{run_bounded, Tools};
use crate::campaign::free_loopback_addr;
use crate::measure::http;
use crate::network::topology::in_netns;
use crate::runtime::process::{spawn, Launch, ProcessInstance, WarmMode};
use crate::runtime::{Context, Instance};
use crate::workload::HttpRequest;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const READY_LIMIT: Duration = Duration::from_secs(15);
const PUSH_LIMIT: Duration = Duration::from_secs(60);
/// The tag of every pushed component (the registry lives only as long as its campaign).
const TAG: &str = env!("CARGO_PKG_VERSION");

pub struct Stack {
    pub tools: Tools,
    pub nats: ProcessInstance,
    pub nats_addr: SocketAddr,
    pub registry: ProcessInstance,
    pub registry_addr: SocketAddr,
    /// Drives every NATS client of the backend (see `control`).
    pub rt: Arc<tokio::runtime::Runtime>,
    /// Registry storage, `wash oci push`'s HOME: removed at teardown.
    scratch: PathBuf,
    /// The namespace the stack runs in (none: the host's).
    pub netns: Option<PathBuf>,
    pushed: HashSet<Workload>,
}

impl Stack {
    /// Starts the stack in the campaign's server namespace, if it has one.
    pub fn start(ctx: &Context<'_>, tools: Tools) -> Result<Stack> {
        match &ctx.server_netns {
            Some(netns) => {
                let mut stack = in_netns(netns, || Stack::start_here(ctx, tools))?;
                stack.netns = Some(netns.clone());
                Ok(stack)
            }
            None => Stack::start_here(ctx, tools),
        }
    }

    /// Runs `f` where the stack's loopback is (sockets to NATS or the
    /// registry are made inside it; processes are placed with `place`).
    pub fn here<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match &self.netns {
            Some(netns) => in_netns(netns, f),
            None => f(),
        }
    }

    fn start_here(ctx: &Context<'_>, tools: Tools) -> Result<Stack> {
        let scratch = ctx.work_dir.join("state").join("wasmcloud-stack");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(scratch.join("registry")).with_context(|| format!("creating {}", scratch.display()))?;
        std::fs::create_dir_all(scratch.join("push-home"))?;
        let logs = ctx.work_dir.join("logs");

        let nats_addr = free_loopback_addr().context("no free port for nats-server")?;
        let mut command = Launch::new(&tools.nats_server);
        place(&mut command, ctx.server_netns.as_deref())?;
        // Loopback only: nats-server listens on 0.0.0.0 by default. No
        // JetStream: kv keeps its state in a host directory (see notes()).
        command.args(["-a", "127.0.0.1", "-p", &nats_addr.port().to_string()]);
        let mut nats =
            spawn(command, &ctx.env, nats_addr, logs.join("wasmcloud-nats-server.log"), None, WarmMode::None)?;
        wait_for_tcp(&mut nats, nats_addr, "nats-server")?;

        let registry_addr = free_loopback_addr().context("no free port for docker-registry")?;
        let config = scratch.join("registry.yml");
        std::fs::write(&config, registry_config(registry_addr, &scratch.join("registry")))
            .with_context(|| format!("writing {}", config.display()))?;
        let mut command = Launch::new(&tools.registry);
        place(&mut command, ctx.server_netns.as_deref())?;
        command.arg("serve").arg(&config);
        let mut registry =
            spawn(command, &ctx.env, registry_addr, logs.join("wasmcloud-registry.log"), None, WarmMode::None)?;
        wait_for_registry(&mut registry, registry_addr)?;

        let rt = new_runtime()?;
        Ok(Stack { tools, nats, nats_addr, registry, registry_addr, rt, scratch, netns: None, pushed: HashSet::new() })
    }

    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.nats_addr)
    }

    /// Where the component of `workload` is (or will be) in the local registry.
    pub fn image(&self, workload: Workload) -> String {
        format!("{}/edgebench/{}:{TAG}", self.registry_addr, workload.name())
    }

    /// Pushes the component of `workload` once per campaign.
    pub fn push(&mut self, ctx: &Context<'_>, workload: Workload) -> Result<()> {
        if self.pushed.contains(&workload) {
            return Ok(());
        }
        let component = workload.require(crate::workload::ArtifactKind::Component, ctx.artifacts)?;
        if !component.exists() {
            bail!("{} does not exist (edgebench's own: run `edgebench build`)", component.display());
        }
        let mut command = Command::new(&self.tools.wash);
        if let Some(netns) = &self.netns {
            crate::network::topology::enter_netns(&mut command, netns)?;
        }
        command.args(["oci", "push", "--insecure", &self.image(workload)]).arg(&component);
        // The campaign's environment, with a HOME of its own: wash caches what
        // it pushes there, and no host may find a component in that cache.
        command.env_clear().envs(ctx.env.iter().map(|(k, v)| (k, v))).env("HOME", self.scratch.join("push-home"));
        run_bounded(command, PUSH_LIMIT)
            .with_context(|| format!("pushing {} to the local registry", component.display()))?;
        self.pushed.insert(workload);
        Ok(())
    }

    pub fn pids(&self) -> (Vec<u32>, Vec<u32>) {
        (self.nats.pids(), self.registry.pids())
    }

    pub fn stop(&mut self) {
        let _ = self.registry.stop();
        let _ = self.nats.stop();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `command` in `netns`, if any: set on the command itself (between
/// clone and exec), because instances are made by edgebench's spawner
/// thread, which stays in the host's namespace.
fn place(command: &mut Launch, netns: Option<&Path>) -> Result<()> {
    match netns {
        Some(netns) => command.enter_netns(netns),
        None => Ok(()),
    }
}

fn registry_config(addr: SocketAddr, storage: &Path) -> String {
    // A random secret only silences the registry's warning: it signs upload
    // state, and this registry is private to one campaign.
    let secret: u64 = rand::random();
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: {secret:016x}\n",
        // A JSON string is a YAML double-quoted scalar: any path stays one value.
        serde_json::Value::String(storage.display().to_string())
    )
}

fn wait_for_tcp(process: &mut ProcessInstance, addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    while Instant::now() < deadline {
        if let Some(how) = process.exited() {
            bail!("{what} exited at start: {how}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("{what} did not listen on {addr} within {READY_LIMIT:?}; log: {}", process.log_tail())
}

/// The registry is ready when `GET /v2/` answers 200.
fn wait_for_registry(process: &mut ProcessInstance, addr: SocketAddr) -> Result<()> {
    let request = HttpRequest::new("GET", "/v2/", b"");
    let bytes = http::encode(&request, &addr.to_string(), true);
    let deadline = Instant::now() + READY_LIMIT;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        if let Some(how) = process.exited() {
            bail!("docker-registry exited at start: {how}");
        }
        match http::one_shot(addr, &bytes, Duration::from_secs(2)) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("status {}", r.status),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("docker-registry not ready on {addr} within {READY_LIMIT:?} ({last}); log: {}", process.log_tail())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_config_keeps_any_storage_path_one_string() {
        let config = registry_config("127.0.0.1:5000".parse().unwrap(), Path::new("/tmp/a \"b\": #c\\d"));
        assert!(config.contains(r#"rootdirectory: "/tmp/a \"b\": #c\\d""#), "{config}");
    }
}
