//! One instance: a `wash host` of its own (fresh HOME and OCI cache, so that
//! nothing is cached from an earlier instance) serving one deployment of the
//! workload, deployed over NATS.

use super::control::{Control, WorkloadStatus};
use super::stack::Stack;
use crate::measure::{http, resources};
use crate::runtime::process::{scratch_dir, spawn, Launch, ProcessInstance, WarmMode};
use crate::runtime::{warm_start_per_request, Context, ExtraResource, Instance, LaunchSpec, WarmSample, WarmStart};
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// wasmCloud routes a request to the workload whose `config.host` equals the
/// request's Host header without its port (and refuses `127.0.0.1:PORT` as
/// not an RFC 1123 name). Every instance has a host and port of its own, so
/// the listening address's IP (127.0.0.1, or the server namespace's) routes
/// exactly the clients' `host: IP:PORT`.
fn route_host(addr: SocketAddr) -> String {
    addr.ip().to_string()
}
/// Where the `kv` component keeps its state (the directory `wasmtime serve` preopens too).
const KV_MOUNT: &str = "/data";
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(30);
/// Pull and compile on a loaded two-core machine.
const START_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(5);
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
const SETTLE_WINDOW: Duration = Duration::from_millis(20);
/// 2.5% of a core: an idle host's timers stay below, its start-up does not.
const IDLE_CPU: Duration = Duration::from_micros(500);
/// A host that never goes idle is deployed to anyway after this.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// t0 before `wash host` is spawned (NATS and registry already up).
    HostCold,
    /// Host running: t0 before `workload.start` (pull + compile).
    DeployCold,
    /// The workload was started, answered and stopped on this host before:
    /// t0 before `workload.start` of the cached component.
    DeployWarm,
}

impl Variant {
    pub const NAMES: &'static [&'static str] = &["host-cold", "deploy-cold", "deploy-warm"];

    pub fn parse(name: &str) -> Result<Variant> {
        match name {
            "host-cold" => Ok(Variant::HostCold),
            "deploy-cold" => Ok(Variant::DeployCold),
            "deploy-warm" => Ok(Variant::DeployWarm),
            other => bail!("unknown wasmcloud variant {other:?}: known variants are {}", Variant::NAMES.join(", ")),
        }
    }
}

pub struct WasmcloudInstance {
    host: ProcessInstance,
    control: Control,
    host_id: String,
    addr: SocketAddr,
    workload: Workload,
    image: String,
    data_dir: Option<PathBuf>,
    /// The current deployment's workload id, if any.
    deployed: Option<String>,
    deploys: u32,
    /// `deploy-warm`: density counts deployments onto this one host (tenants).
    hosts_tenants: bool,
    launched_at: Instant,
    phases: Vec<(String, Duration)>,
    nats_pids: Vec<u32>,
    registry_pids: Vec<u32>,
    stopped: bool,
}

/// Starts a host for `spec` and deploys the workload as `variant` says.
pub fn launch(
    ctx: &Context<'_>,
    stack: &Stack,
    spec: &LaunchSpec<'_>,
    variant: Variant,
    image: String,
) -> Result<WasmcloudInstance> {
    let scratch = scratch_dir(&ctx.work_dir, &spec.label)?;
    for sub in ["home", "oci"] {
        std::fs::create_dir_all(scratch.join(sub))?;
    }
    let data_dir = if spec.workload.keeps_state() {
        let dir = scratch.join("data");
        std::fs::create_dir_all(&dir)?;
        Some(dir)
    } else {
        None
    };
    if spec.netns.is_some() && spec.netns != stack.netns.as_deref() {
        bail!("the wasmcloud stack (NATS, registry) was started outside the server namespace: setup() needs the context's server_netns");
    }
    let control = stack.here(|| Control::connect(stack.rt.clone(), &stack.nats_url()))?;
    // Subscribed before the spawn: the first heartbeat comes ~10 ms after it.
    let mut beats = control.heartbeats()?;
    let group = format!("edgebench-{}-{}", std::process::id(), spec.label);
    let mut command = host_command(stack, spec.addr, &group, &scratch);
    spec.place(&mut command)?;
    let logs = ctx.work_dir.join("logs");
    let env = host_env(ctx, &scratch.join("home"));
    record_command(&logs.join(format!("{}.wash-host.json", spec.label)), &command, &env)?;
    let host =
        spawn(command, &env, spec.addr, logs.join(format!("{}.log", spec.label)), Some(scratch), WarmMode::None)?;
    let (nats_pids, registry_pids) = stack.pids();
    let mut instance = WasmcloudInstance {
        launched_at: host.launched_at(),
        host,
        control,
        host_id: String::new(),
        addr: spec.addr,
        workload: spec.workload,
        image,
        data_dir,
        deployed: None,
        deploys: 0,
        hosts_tenants: variant == Variant::DeployWarm,
        phases: Vec::new(),
        nats_pids,
        registry_pids,
        stopped: false,
    };
    // From here on, an error drops `instance`, which stops the host.
    let host = &mut instance.host;
    let (host_id, beat_at) =
        instance.control.wait_for_host(&mut beats, &group, HEARTBEAT_LIMIT, &mut || host.exited())?;
    drop(beats);
    instance.host_id = host_id;
    match variant {
        Variant::HostCold => {
            instance.phases.push(("host_heartbeat".into(), beat_at - instance.launched_at));
        }
        Variant::DeployCold => {
            instance.settle()?;
            instance.launched_at = Instant::now();
        }
        Variant::DeployWarm => {
            instance.deploy()?;
            instance.wait_for_answer()?;
            instance.undeploy()?;
            instance.settle()?;
            instance.launched_at = Instant::now();
        }
    }
    // The probe starts once the host says the workload runs: probing during
    // the pull and compile only gets 404s, each logged by the host, on the
    // same two cores.
    instance.deploy()?;
    instance.phases.push(("workload_running".into(), instance.launched_at.elapsed()));
    Ok(instance)
}

/// `wash host` on loopback only, its OCI cache in the instance's scratch dir.
fn host_command(stack: &Stack, addr: SocketAddr, group: &str, scratch: &Path) -> Launch {
    let nats = stack.nats_url();
    let mut command = Launch::new(&stack.tools.wash);
    command
        .arg("host")
        .args(["--scheduler-nats-url", &nats, "--data-nats-url", &nats])
        .args(["--http-addr", &addr.to_string()])
        .args(["--host-group", group])
        .arg("--oci-cache-dir")
        .arg(scratch.join("oci"))
        .args(["--allow-insecure-registries", "--non-interactive"]);
    command
}

/// Stores exactly how the host was started (program, arguments, whole
/// environment) next to its log, in the campaign directory.
fn record_command(path: &Path, command: &Command, env: &[(String, String)]) -> Result<()> {
    let record = json!({
        "program": command.get_program().to_string_lossy(),
        "args": command.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
        "env": env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    });
    std::fs::write(path, serde_json::to_vec_pretty(&record)?).with_context(|| format!("writing {}", path.display()))
}

/// The campaign's environment with a HOME of the instance's own, and never
/// RUST_BACKTRACE (with it the host spends ~60× more CPU per request).
pub fn host_env(ctx: &Context<'_>, home: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ctx
        .env
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "HOME" | "RUST_BACKTRACE" | "RUST_LIB_BACKTRACE"))
        .cloned()
        .collect();
    env.push(("HOME".into(), home.display().to_string()));
    env
}

/// A `workload.start` request (protobuf JSON mapping of `wasmcloud.runtime.v2`).
pub fn start_request(
    workload_id: &str,
    workload: Workload,
    image: &str,
    data_dir: Option<&Path>,
    route_host: &str,
) -> Value {
    let mut component = json!({
        "name": workload.name(),
        "image": image,
        "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT",
    });
    let mut body = json!({
        "namespace": "edgebench",
        "name": workload.name(),
        "witWorld": {
            "components": [],
            "hostInterfaces": [{
                "namespace": "wasi",
                "package": "http",
                "interfaces": ["incoming-handler"],
                "config": { "host": route_host },
            }],
        },
    });
    if let Some(dir) = data_dir {
        body["volumes"] = json!([{ "name": "data", "hostPath": { "localPath": dir.display().to_string() } }]);
        component["localResources"] = json!({ "volumeMounts": [{ "name": "data", "mountPath": KV_MOUNT }] });
    }
    body["witWorld"]["components"] = json!([component]);
    json!({ "workloadId": workload_id, "workload": body })
}

impl WasmcloudInstance {
    /// `workload.start` under a new workload id; returns once it runs.
    fn deploy(&mut self) -> Result<()> {
        self.deploys += 1;
        let id = format!("{}-{}", self.workload.name(), self.deploys);
        let request = start_request(&id, self.workload, &self.image, self.data_dir.as_deref(), &route_host(self.addr));
        // Recorded before the reply: a failed start is stopped too.
        self.deployed = Some(id);
        let status = self
            .control
            .start(&self.host_id, &request, START_LIMIT)
            .with_context(|| format!("deploying {} ({})", self.workload, self.image))?;
        if !status.is("RUNNING") {
            bail!("{}", start_failure(&self.image, &status));
        }
        Ok(())
    }

    /// `workload.stop`, then waits until the host has forgotten the workload.
    fn undeploy(&mut self) -> Result<()> {
        let Some(id) = self.deployed.take() else { return Ok(()) };
        self.control.stop(&self.host_id, &id, STOP_LIMIT)?;
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if self.control.status(&self.host_id, &id, STOP_LIMIT)?.is("NOT_FOUND") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("workload {id} still known to the host {STOP_LIMIT:?} after workload.stop")
    }

    /// Sends the probe request until the expected answer comes; returns when it did.
    fn wait_for_answer(&mut self) -> Result<Instant> {
        let bytes = http::encode(&self.workload.probe_request(), &self.addr.to_string(), true);
        let expected = self.workload.expected_probe();
        let deadline = Instant::now() + ANSWER_LIMIT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match http::one_shot(self.addr, &bytes, Duration::from_secs(5)) {
                Ok(r) if expected.check(r.status, &r.body).is_ok() => return Ok(Instant::now()),
                Ok(r) => last = format!("status {} {:?}", r.status, String::from_utf8_lossy(&r.body)),
                Err(e) => last = e.to_string(),
            }
            if let Some(how) = self.host.exited() {
                bail!("wash host exited: {how}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("no correct answer from the deployed {} within {ANSWER_LIMIT:?}: {last}", self.workload)
    }

    /// Before a timed deploy: the host has finished what it was doing (its
    /// threads used under `IDLE_CPU` in `SETTLE_WINDOW`, the trickle of an
    /// idle host; a fresh host gets there in ~0.1 s) and the NATS connection
    /// is alive.
    fn settle(&mut self) -> Result<()> {
        let pids = self.host.pids();
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut last = resources::cpu_ns(&pids);
        while Instant::now() < deadline {
            std::thread::sleep(SETTLE_WINDOW);
            let now = resources::cpu_ns(&pids);
            if now.saturating_sub(last) < IDLE_CPU.as_nanos() as u64 {
                break;
            }
            last = now;
        }
        self.control.ping()
    }

    /// Stop and start again of the compiled, cached component → first answer.
    fn redeploy(&mut self) -> Result<Duration> {
        self.undeploy()?;
        self.control.ping()?;
        let t0 = Instant::now();
        self.deploy()?;
        Ok(self.wait_for_answer()? - t0)
    }
}

/// What a failed `workload.start` says, with what to check.
fn start_failure(image: &str, status: &WorkloadStatus) -> String {
    let hint = if status.message.contains("manifest unknown") || status.message.contains("failed to pull") {
        format!(": check the image reference {image} (components are pushed to the local registry by prepare)")
    } else {
        String::new()
    };
    format!("wasmCloud did not start the workload: {}: {}{hint}", status.workload_state, status.message)
}

impl Instance for WasmcloudInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn launched_at(&self) -> Instant {
        self.launched_at
    }

    fn exited(&mut self) -> Option<String> {
        self.host.exited()
    }

    /// The wash host (one process; NATS and the registry are in `extra_resources`).
    fn pids(&self) -> Vec<u32> {
        self.host.pids()
    }

    /// One more deployment of the workload on this host, routed by `Host:
    /// name` (stateless workloads: tenants would share `kv`'s volume).
    fn add_tenant(&mut self, name: &str) -> Option<Result<()>> {
        if !self.hosts_tenants || self.workload.keeps_state() {
            return None;
        }
        let request = start_request(&format!("tenant-{name}"), self.workload, &self.image, None, name);
        Some(match self.control.start(&self.host_id, &request, START_LIMIT) {
            Ok(status) if status.is("RUNNING") => Ok(()),
            Ok(status) => Err(anyhow::anyhow!("tenant {name}: {}", start_failure(&self.image, &status))),
            Err(e) => Err(e.context(format!("tenant {name}"))),
        })
    }

    fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if let Some(id) = self.deployed.take() {
            if self.host.exited().is_none() {
                let _ = self.control.stop(&self.host_id, &id, Duration::from_secs(2));
            }
        }
        self.host.stop()
    }

    fn log_tail(&self) -> String {
        self.host.log_tail()
    }

    fn launch_phases(&self) -> Vec<(String, Duration)> {
        self.phases.clone()
    }

    /// The campaign's nats-server and registry (shared by every instance).
    fn extra_resources(&self) -> Vec<ExtraResource> {
        let mut out = Vec::new();
        for (name, pids) in [("nats_server", &self.nats_pids), ("registry", &self.registry_pids)] {
            let m = resources::memory(pids);
            for (metric, kib) in [("memory_pss", m.pss_kib), ("memory_rss", m.rss_kib)] {
                out.push(ExtraResource { metric: format!("{metric}_{name}"), value: kib as f64, unit: "KiB".into() });
            }
        }
        out
    }

    /// Two kinds: phase "" (as for `wasmtime serve`, comparable with it), a
    /// new component instance for one request on a new connection (the host
    /// instantiates per request); phase `redeploy`, workload.stop then
    /// workload.start of the cached component → first answer.
    fn warm_start(&mut self, workload: Workload) -> WarmStart {
        let request = match warm_start_per_request(self.addr, workload, None) {
            WarmStart::Measured(mut samples) if samples.len() == 1 => samples.remove(0),
            WarmStart::Measured(_) => return WarmStart::Failed("unexpected warm-start samples".into()),
            other => return other,
        };
        match self.redeploy() {
            Ok(client) => {
                WarmStart::Measured(vec![request, WarmSample { phase: "redeploy".into(), client, internal: None }])
            }
            Err(e) => WarmStart::Failed(format!("redeploy: {e:#}; log: {}", self.log_tail())),
        }
    }
}

impl Drop for WasmcloudInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_gets_its_state_directory_as_a_volume() {
        let r = start_request(
            "kv-1",
            Workload::KV,
            "127.0.0.1:5000/edgebench/kv:0.1.0",
            Some(Path::new("/s/d")),
            "127.0.0.1",
        );
        assert_eq!(r["workloadId"], "kv-1");
        assert_eq!(r["workload"]["volumes"][0]["hostPath"]["localPath"], "/s/d");
        let component = &r["workload"]["witWorld"]["components"][0];
        assert_eq!(component["localResources"]["volumeMounts"][0]["mountPath"], "/data");
        assert_eq!(r["workload"]["witWorld"]["hostInterfaces"][0]["config"]["host"], "127.0.0.1");
        let hello = start_request("hello-1", Workload::HELLO, "x", None, "127.0.0.1");
        assert!(hello["workload"].get("volumes").is_none());
    }

    #[test]
    fn variants_parse_and_bad_names_are_explained() {
        for name in Variant::NAMES {
            assert!(Variant::parse(name).is_ok());
        }
        let e = Variant::parse("warm").unwrap_err().to_string();
        assert!(e.contains("host-cold, deploy-cold, deploy-warm"), "{e}");
    }
}
