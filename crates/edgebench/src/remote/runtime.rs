//! A runtime on the target host, behind the agent: the campaign drives it
//! like a local backend; every call that touches the runtime goes over the
//! link, and the instance's address is the target's.

use super::link::Link;
use super::protocol::{Config, Described, InstanceCall, Launched, Request};
use crate::artifacts::Artifacts;
use crate::measure::resources::Memory;
use crate::measure::settle::Settled;
use crate::runtime::{
    ArtifactKind, Context, Detection, ExtraResource, Instance, LaunchSpec, OwnSample, Runtime, StartKind, WarmStart,
};
use crate::Workload;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct RemoteRuntime {
    /// This host's backend of the same name: its static description (names,
    /// variants, artifact kinds) is the target's, both being one version.
    pub(super) local: Box<dyn Runtime>,
    pub(super) described: Option<Described>,
    pub(super) link: Arc<Link>,
    prepared: Mutex<HashMap<(Workload, String), Vec<ExtraResource>>>,
}

impl RemoteRuntime {
    pub(super) fn new(local: Box<dyn Runtime>, described: Option<Described>, link: Arc<Link>) -> RemoteRuntime {
        RemoteRuntime { local, described, link, prepared: Mutex::default() }
    }

    fn config(&self, workload: Workload, variant: &str) -> Config {
        Config { runtime: self.name().into(), variant: variant.into(), workload: workload.name().into() }
    }

    fn variant(&self, variant: &str) -> Option<&super::protocol::DescribedVariant> {
        self.described.as_ref()?.variants.iter().find(|v| v.name == variant)
    }

    fn on_target(&self, what: String) -> String {
        format!("on the target {}: {what}", self.link.target.host)
    }
}

impl Runtime for RemoteRuntime {
    fn name(&self) -> &'static str {
        self.local.name()
    }

    fn variants(&self) -> &'static [&'static str] {
        self.local.variants()
    }

    fn detect(&self, _artifacts: &Artifacts) -> Detection {
        match &self.described {
            Some(d) if d.detection.available => {
                let mut found = d.detection.clone();
                found.version = format!("{} (on {})", found.version, self.link.target.host);
                found
            }
            Some(d) => Detection::missing(self.on_target(d.detection.reason.clone())),
            None => Detection::missing(self.on_target("the agent does not know this runtime".into())),
        }
    }

    fn artifact(&self, variant: &str) -> ArtifactKind {
        self.local.artifact(variant)
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        self.local.notes(workload)
    }

    fn prepare(&self, _ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        let figures: Vec<ExtraResource> =
            self.link.call(Request::Prepare { config: self.config(workload, variant) })?;
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).insert((workload, variant.into()), figures);
        Ok(())
    }

    fn serves_workloads(&self, variant: &str) -> std::result::Result<(), String> {
        match self.variant(variant).and_then(|v| v.serves_not.clone()) {
            Some(why) => Err(self.on_target(why)),
            None => Ok(()),
        }
    }

    fn own_trial(&self, _ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Option<Vec<OwnSample>> {
        let request = Request::OwnTrial { config: self.config(spec.workload, spec.variant), label: spec.label.clone() };
        // On a failed call, launching fails next with the link's error, which the trial records.
        self.link.call::<Option<Vec<OwnSample>>>(request).unwrap_or_default()
    }

    fn prepared(&self, workload: Workload, variant: &str) -> Vec<ExtraResource> {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).remove(&(workload, variant.into())).unwrap_or_default()
    }

    /// t0 here, before the launch request is written: the cold start the
    /// client times includes the request's way to the target over SSH.
    fn launch(&self, _ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        if spec.netns.is_some() || spec.firewall.is_some() {
            bail!("a remote target's instances run in the target's own network namespace");
        }
        let launched_at = Instant::now();
        let launched: Launched = self
            .link
            .call(Request::Launch { config: self.config(spec.workload, spec.variant), label: spec.label.clone() })?;
        Ok(Box::new(RemoteInstance {
            link: self.link.clone(),
            id: launched.instance,
            addr: launched.addr,
            launched_at,
            launch_call: Duration::from_nanos(launched.launch_call_ns),
            dispatch: Duration::from_nanos(launched.dispatch_ns),
            stopped: false,
        }))
    }

    fn ready_timeout(&self, variant: &str) -> Duration {
        self.local.ready_timeout(variant)
    }

    fn setup(&self, _ctx: &Context<'_>) -> Result<()> {
        self.link.call(Request::Setup { runtime: self.name().into() })
    }

    fn teardown(&self, _ctx: &Context<'_>) {
        if let Err(e) = self.link.call::<()>(Request::Teardown { runtime: self.name().into() }) {
            eprintln!("edgebench: {}: teardown on the target: {e:#}", self.name());
        }
    }

    fn serving_model(&self, variant: &str) -> String {
        match self.variant(variant) {
            Some(v) => v.serving_model.clone(),
            None => self.local.serving_model(variant),
        }
    }

    fn cpu_scope(&self, variant: &str) -> String {
        match self.variant(variant) {
            Some(v) => format!("{}, read on the target host", v.cpu_scope),
            None => self.local.cpu_scope(variant),
        }
    }

    fn start_kind(&self, variant: &str) -> StartKind {
        match self.variant(variant) {
            Some(v) if v.deploy_on_running_host => StartKind::DeployOnRunningHost,
            Some(_) => StartKind::Launch,
            None => self.local.start_kind(variant),
        }
    }

    fn network_path(&self, variant: &str) -> String {
        let there = self.variant(variant).map(|v| v.network_path.clone()).unwrap_or_default();
        format!(
            "on the target host {} ({there}), listening on the address the client reached SSH at; the client's \
             requests cross the link",
            self.link.target.host
        )
    }

    /// Firewall profiles are applied on the target, by its agent.
    fn network_placement(&self, _variant: &str) -> crate::network::Placement {
        crate::network::Placement::TargetHost
    }

    fn settle_elsewhere(&self, bound: Duration) -> Option<Result<Settled, String>> {
        Some(self.link.call(Request::Settle { max_ms: bound.as_millis() as u64 }).map_err(|e| format!("{e:#}")))
    }
}

pub struct RemoteInstance {
    link: Arc<Link>,
    id: u64,
    addr: SocketAddr,
    launched_at: Instant,
    launch_call: Duration,
    dispatch: Duration,
    stopped: bool,
}

impl RemoteInstance {
    fn call<T: serde::de::DeserializeOwned>(&self, call: InstanceCall) -> Result<T> {
        self.link.call(Request::Instance { instance: self.id, call })
    }
}

impl Instance for RemoteInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn launched_at(&self) -> Instant {
        self.launched_at
    }

    fn exited(&mut self) -> Option<String> {
        self.link.exited(self.id)
    }

    /// The instance's processes are the target's: none here.
    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }

    fn stop(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        self.call(InstanceCall::Stop)
    }

    fn log_tail(&self) -> String {
        self.call(InstanceCall::LogTail).unwrap_or_else(|e| format!("(no log from the target: {e:#})"))
    }

    /// The target's phases, timed there from its own launch call.
    fn launch_phases(&self) -> Vec<(String, Duration)> {
        self.call(InstanceCall::LaunchPhases).unwrap_or_default()
    }

    /// The target's figures, and the agent's share of the cold start, on the
    /// target's clock: `cold_start_agent_dispatch` (request read → launch
    /// call) and `cold_start_agent_launch_call` (the launch call).
    fn boot_figures(&self) -> Vec<ExtraResource> {
        let mut figures: Vec<ExtraResource> = self.call(InstanceCall::BootFigures).unwrap_or_default();
        for (metric, d) in
            [("cold_start_agent_dispatch", self.dispatch), ("cold_start_agent_launch_call", self.launch_call)]
        {
            figures.push(ExtraResource { metric: metric.into(), value: d.as_nanos() as f64 / 1e6, unit: "ms".into() });
        }
        figures
    }

    fn cpu_ns(&self) -> Option<Result<u64, String>> {
        Some(self.call::<Result<u64, String>>(InstanceCall::CpuNs).unwrap_or_else(|e| Err(format!("{e:#}"))))
    }

    fn memory(&self) -> Option<Result<Memory, String>> {
        Some(self.call::<Result<Memory, String>>(InstanceCall::Memory).unwrap_or_else(|e| Err(format!("{e:#}"))))
    }

    fn extra_resources(&self) -> Vec<ExtraResource> {
        self.call(InstanceCall::ExtraResources).unwrap_or_default()
    }

    /// Run on the target (a warm start is the runtime's own action and its
    /// first answer there): timed on the target's clock, without the link.
    fn warm_start(&mut self, _workload: Workload) -> WarmStart {
        self.call(InstanceCall::WarmStart).unwrap_or_else(|e| WarmStart::Failed(format!("{e:#}")))
    }

    fn add_tenant(&mut self, name: &str) -> Option<Result<()>> {
        match self.call::<Option<Result<(), String>>>(InstanceCall::AddTenant { name: name.into() }) {
            Ok(added) => added.map(|r| r.map_err(anyhow::Error::msg)),
            Err(e) => Some(Err(e)),
        }
    }
}

impl Drop for RemoteInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
