//! `edgebench agent`: the runtime side of a remote-target campaign, started
//! by the client as `ssh HOST edgebench agent`. It prepares, launches and
//! stops instances of its own backends on its own artifacts, reads their
//! memory and CPU here, and answers on stdout; the client probes and loads
//! the instances over the network. It opens no port of its own (SSH
//! authenticates the client), and when the session ends for any reason
//! (stdin closed, a signal) it stops every instance and every runtime it set up.

use super::protocol::{
    Config, Described, DescribedVariant, Envelope, Event, FirewallStarted, InstanceCall, Launched, Message, Outcome,
    Request, Welcome, PROTOCOL,
};
use crate::artifacts::Artifacts;
use crate::cpus::CpuPlan;
use crate::measure::resources;
use crate::network::{HostFirewall, Profile};
use crate::runtime::{self, Context, Instance, LaunchSpec, Runtime, StartKind};
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Each running instance with the workload it serves (its warm starts need it).
type Instances = Arc<Mutex<HashMap<u64, (Workload, Box<dyn Instance>)>>>;
type Out = Arc<Mutex<std::fs::File>>;

/// Serves the protocol on stdin/stdout until the session ends.
pub fn serve(listen: Option<IpAddr>) -> Result<()> {
    let listen_ip = match listen {
        Some(ip) => ip,
        None => ssh_server_ip().context(
            "the agent is started by `edgebench run --target ssh://…` through SSH; SSH_CONNECTION is not set \
             here, so the address instances listen on is unknown: give --listen IP",
        )?,
    };
    // The protocol keeps the real stdout; fd 1 then points at stderr, so that
    // a stray print of a backend cannot break the protocol.
    let out_fd = nix::unistd::dup(1).context("duplicating stdout")?;
    nix::unistd::dup2(2, 1).context("pointing stdout at stderr")?;
    // SAFETY: `out_fd` is a new descriptor owned by nothing else.
    let out: Out = Arc::new(Mutex::new(unsafe { std::fs::File::from_raw_fd(out_fd.into_raw_fd()) }));

    let ended = Arc::new(AtomicBool::new(false));
    let e = ended.clone();
    // SIGINT, SIGTERM, SIGHUP: clean up as on a closed session.
    let _ = ctrlc::set_handler(move || e.store(true, Ordering::SeqCst));
    crate::runtime::process::start_spawner();

    // Each line with when it was read: the agent's own share of a cold start is measured from there.
    let (lines, requests) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });

    let mut agent = Agent::new(listen_ip, out.clone())?;
    let watcher = agent.watch_exits(ended.clone());
    let result = loop {
        if ended.load(Ordering::SeqCst) {
            break Ok(());
        }
        let (received, line) = match requests.recv_timeout(Duration::from_millis(200)) {
            Ok(x) => x,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
        };
        let envelope: Envelope = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                let why = format!(
                    "not a request of edgebench's agent protocol ({e}): the agent serves only `edgebench run --target`"
                );
                let _ = send(&out, &Message::Reply { id: 0, outcome: Outcome::Error(why.clone()) });
                break Err(anyhow::anyhow!(why));
            }
        };
        let outcome = match agent.handle(envelope.request, received) {
            Ok(v) => Outcome::Ok(v),
            Err(e) => Outcome::Error(format!("{e:#}")),
        };
        if send(&out, &Message::Reply { id: envelope.id, outcome }).is_err() {
            break Ok(()); // the client is gone
        }
    };
    ended.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    agent.clean_up();
    result
}

/// The address the client reached this host's SSH server at
/// (`SSH_CONNECTION`: client ip, client port, server ip, server port).
fn ssh_server_ip() -> Option<IpAddr> {
    ssh_connection_field(2)
}

fn ssh_connection_field(n: usize) -> Option<IpAddr> {
    let conn = std::env::var("SSH_CONNECTION").ok()?;
    conn.split_whitespace().nth(n)?.parse().ok()
}

fn send(out: &Out, message: &Message) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    out.write_all(&line)?;
    out.flush()
}

struct Agent {
    listen_ip: IpAddr,
    out: Out,
    runtimes: Vec<Box<dyn Runtime>>,
    artifacts: &'static Artifacts,
    work: tempfile::TempDir,
    ctx: Option<Context<'static>>,
    plan: Option<CpuPlan>,
    instances: Instances,
    next_instance: u64,
    /// The next service port to try (instances listen on the service ports,
    /// which firewall profiles accept).
    next_port: AtomicU32,
    set_up: Vec<String>,
    /// The campaign's firewall on this host, between `FirewallStart` and `FirewallFinish`.
    firewall: Option<HostFirewall>,
}

impl Agent {
    fn new(listen_ip: IpAddr, out: Out) -> Result<Agent> {
        Ok(Agent {
            listen_ip,
            out,
            runtimes: runtime::all(),
            // Lives as long as the agent: contexts borrow it.
            artifacts: Box::leak(Box::new(Artifacts::from_env())),
            work: tempfile::Builder::new()
                .prefix("edgebench-agent-")
                .tempdir()
                .context("making a scratch directory")?,
            ctx: None,
            plan: None,
            instances: Arc::default(),
            next_instance: 1,
            next_port: AtomicU32::new(0),
            set_up: Vec::new(),
            firewall: None,
        })
    }

    /// Tells the client when an instance dies, so that its probe stops waiting.
    fn watch_exits(&self, ended: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let (instances, out) = (self.instances.clone(), self.out.clone());
        std::thread::spawn(move || {
            let mut told = std::collections::HashSet::new();
            while !ended.load(Ordering::SeqCst) {
                let exits: Vec<(u64, String)> = {
                    let mut all = instances.lock().unwrap_or_else(|e| e.into_inner());
                    all.iter_mut().filter_map(|(id, (_, i))| i.exited().map(|how| (*id, how))).collect()
                };
                for (instance, how) in exits {
                    if told.insert(instance) {
                        let _ = send(&out, &Message::Event { event: Event::Exited { instance, how } });
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    }

    fn ctx(&self) -> Result<&Context<'static>> {
        self.ctx.as_ref().context("the first request must be hello")
    }

    fn runtime(&self, name: &str) -> Result<&dyn Runtime> {
        match self.runtimes.iter().find(|r| r.name() == name) {
            Some(r) => Ok(r.as_ref()),
            None => bail!("unknown runtime {name:?} on the target"),
        }
    }

    /// The runtime, its variant (as the backend names it) and the workload a config names.
    fn config(&self, c: &Config) -> Result<(&dyn Runtime, &'static str, Workload)> {
        let runtime = self.runtime(&c.runtime)?;
        let variant = runtime
            .variants()
            .iter()
            .find(|v| **v == c.variant)
            .with_context(|| format!("{} has no variant {:?} on the target", c.runtime, c.variant))?;
        let workload = Workload::from_name(&c.workload)
            .filter(|w| w.builtin().is_some())
            .with_context(|| format!("{:?} is not a built-in workload: a remote target runs only those", c.workload))?;
        Ok((runtime, variant, workload))
    }

    /// A free service port on the address the client reaches this host at.
    fn free_addr(&self) -> Result<std::net::SocketAddr> {
        crate::network::free_service_addr(self.listen_ip, &self.next_port)
    }

    /// `received`: when the request's line was read.
    fn handle(&mut self, request: Request, received: Instant) -> Result<Value> {
        match request {
            Request::Hello { protocol, campaign_id, concurrency, ready_timeout_ms, cpus } => {
                if protocol != PROTOCOL {
                    bail!(
                        "protocol {protocol} asked, the agent speaks {PROTOCOL}: install the same edgebench version on \
                         both hosts"
                    );
                }
                self.hello(campaign_id, concurrency, ready_timeout_ms, &cpus)
            }
            Request::Ping => Ok(Value::Null),
            Request::Setup { runtime } => {
                self.runtime(&runtime)?.setup(self.ctx()?)?;
                self.set_up.push(runtime);
                Ok(Value::Null)
            }
            Request::Teardown { runtime } => {
                self.runtime(&runtime)?.teardown(self.ctx()?);
                self.set_up.retain(|r| *r != runtime);
                Ok(Value::Null)
            }
            Request::Prepare { config } => {
                let (runtime, variant, workload) = self.config(&config)?;
                runtime.prepare(self.ctx()?, workload, variant)?;
                Ok(serde_json::to_value(runtime.prepared(workload, variant))?)
            }
            Request::OwnTrial { config, label } => {
                let (runtime, variant, workload) = self.config(&config)?;
                let spec = self.spec(workload, variant, label)?;
                Ok(serde_json::to_value(runtime.own_trial(self.ctx()?, &spec))?)
            }
            Request::Launch { config, label } => self.launch(&config, label, received),
            Request::Instance { instance, call } => self.instance_call(instance, call),
            Request::Settle { max_ms } => {
                let cpus = self.plan.as_ref().map(|p| p.sut.clone()).unwrap_or_else(crate::cpus::Cpus::allowed);
                Ok(serde_json::to_value(crate::measure::settle::wait(&cpus, Duration::from_millis(max_ms)))?)
            }
            Request::FirewallStart => self.firewall_start(),
            Request::Firewall { profile } => {
                let firewall = self.firewall.as_ref().context("firewall_start must come before firewall")?;
                Ok(serde_json::to_value(firewall.apply(Profile::parse(&profile)?)?)?)
            }
            Request::FirewallFinish => {
                let firewall = self.firewall.take().context("firewall_start must come before firewall_finish")?;
                Ok(serde_json::to_value(firewall.finish()?)?)
            }
        }
    }

    fn firewall_start(&mut self) -> Result<Value> {
        let campaign_id = self.ctx()?.campaign_id.clone();
        // A second start (a resumed link) replaces the first: its table goes first.
        drop(self.firewall.take());
        let firewall = HostFirewall::start(&campaign_id, self.listen_ip)?;
        let started = FirewallStarted {
            table: firewall.table().into(),
            interface: firewall.ifname.clone(),
            listen_ip: self.listen_ip,
            client_ip: ssh_connection_field(0),
            nft_version: firewall.nft_version.clone(),
            before: firewall.host_before.clone(),
        };
        self.firewall = Some(firewall);
        Ok(serde_json::to_value(started)?)
    }

    fn hello(&mut self, campaign_id: String, concurrency: usize, ready_ms: Option<u64>, cpus: &str) -> Result<Value> {
        let plan = CpuPlan::resolve(cpus, &crate::cpus::host_cpus())?;
        plan.install()?;
        let mut ctx = Context::new(campaign_id, self.artifacts, self.work.path())?;
        ctx.concurrency = concurrency;
        ctx.client_elsewhere = true;
        ctx.ready_timeout = ready_ms.map(Duration::from_millis);
        let mut environment = crate::environment::capture(&self.artifacts.source, &ctx.env);
        environment["test_bed"] = json!({"cpus": {
            "mode": plan.mode, "agent": plan.client.to_string(), "sut": plan.sut.to_string(),
            "sut_workers": plan.sut_workers(), "why": plan.why,
        }});
        environment["artifacts"] = Value::Object(self.artifacts.fingerprint());
        let runtimes = self.runtimes.iter().map(|r| describe(r.as_ref(), self.artifacts)).collect();
        self.ctx = Some(ctx);
        self.plan = Some(plan);
        let missing = self.artifacts.missing().into_iter().map(|(w, p)| (w, p.display().to_string())).collect();
        Ok(serde_json::to_value(Welcome {
            protocol: PROTOCOL,
            environment,
            listen_ip: self.listen_ip,
            runtimes,
            missing_artifacts: missing,
        })?)
    }

    fn spec(&self, workload: Workload, variant: &'static str, label: String) -> Result<LaunchSpec<'static>> {
        Ok(LaunchSpec { workload, variant, addr: self.free_addr()?, label, netns: None, firewall: None })
    }

    fn launch(&mut self, config: &Config, label: String, received: Instant) -> Result<Value> {
        let (runtime, variant, workload) = self.config(config)?;
        let spec = self.spec(workload, variant, label)?;
        let started = Instant::now();
        let mut instance = runtime.launch(self.ctx()?, &spec)?;
        let launch_call_ns = started.elapsed().as_nanos() as u64;
        let dispatch_ns = started.duration_since(received).as_nanos() as u64;
        let addr = instance.addr();
        if addr.ip() != self.listen_ip {
            let _ = instance.stop();
            bail!(
                "{} {} answers at {addr}, inside the target host, which the client cannot reach: this runtime is \
                 measured on a remote target only where it listens on the address it is given",
                config.runtime,
                config.variant
            );
        }
        let id = self.next_instance;
        self.next_instance += 1;
        self.instances.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (workload, instance));
        Ok(serde_json::to_value(Launched { instance: id, addr, launch_call_ns, dispatch_ns })?)
    }

    fn instance_call(&mut self, id: u64, call: InstanceCall) -> Result<Value> {
        // Out of the map while it is called: the exit watcher does not wait on a long call.
        let taken = self.instances.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let (workload, mut instance) =
            taken.with_context(|| format!("no instance {id} on the target (stopped already?)"))?;
        let value = match call {
            InstanceCall::Stop => {
                // Not put back: stopped, whatever the outcome.
                instance.stop()?;
                return Ok(Value::Null);
            }
            InstanceCall::LogTail => json!(instance.log_tail()),
            InstanceCall::LaunchPhases => serde_json::to_value(instance.launch_phases())?,
            InstanceCall::BootFigures => serde_json::to_value(instance.boot_figures())?,
            InstanceCall::CpuNs => {
                let cpu = instance.cpu_ns().unwrap_or_else(|| Ok(resources::cpu_ns(&instance.pids())));
                serde_json::to_value(cpu)?
            }
            InstanceCall::Memory => serde_json::to_value(resources::memory_checked(&instance.pids()))?,
            InstanceCall::ExtraResources => serde_json::to_value(instance.extra_resources())?,
            InstanceCall::WarmStart => serde_json::to_value(instance.warm_start(workload))?,
            InstanceCall::AddTenant { name } => {
                let added = instance.add_tenant(&name).map(|r| r.map_err(|e| format!("{e:#}")));
                serde_json::to_value(added)?
            }
        };
        self.instances.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (workload, instance));
        Ok(value)
    }

    /// Every instance stopped, every runtime set up torn down, our table
    /// removed, scratch removed.
    fn clean_up(&mut self) {
        let instances: Vec<_> = self.instances.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        for (_, (_, mut instance)) in instances {
            let _ = instance.stop();
        }
        drop(self.firewall.take());
        if let Some(ctx) = &self.ctx {
            for name in std::mem::take(&mut self.set_up) {
                if let Ok(r) = self.runtime(&name) {
                    r.teardown(ctx);
                }
            }
        }
    }
}

fn describe(r: &dyn Runtime, artifacts: &Artifacts) -> Described {
    Described {
        name: r.name().into(),
        detection: r.detect(artifacts),
        variants: r
            .variants()
            .iter()
            .map(|v| DescribedVariant {
                name: v.to_string(),
                serves_not: r.serves_workloads(v).err(),
                serving_model: r.serving_model(v),
                cpu_scope: r.cpu_scope(v),
                network_path: r.network_path(v),
                deploy_on_running_host: r.start_kind(v) == StartKind::DeployOnRunningHost,
            })
            .collect(),
    }
}
