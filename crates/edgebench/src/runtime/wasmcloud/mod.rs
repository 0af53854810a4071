//! `wasmcloud`: wasmCloud 2.x, the same `wasi:http` components as
//! `wasmtime serve`, deployed to a real `wash host` over its NATS control API.
//!
//! - `setup` starts the campaign's nats-server and local OCI registry
//!   ([`stack`]); `prepare` pushes each component there (`wash oci push`).
//! - Each instance is a `wash host` of its own with one deployment of the
//!   workload ([`instance`]); the variants say where t0 is:
//!   `host-cold` (before the host is spawned), `deploy-cold` (before
//!   `workload.start` on a running, idle host: pull + compile) and `deploy-warm`
//!   (before `workload.start` of a component this host already ran and
//!   stopped: compiled form cached).
//! - `teardown` stops NATS and the registry; every process is also stopped
//!   by `Drop`, and dies with edgebench (parent-death signal).

mod control;
mod instance;
mod stack;
mod tools;

use self::instance::Variant;
use self::stack::Stack;
use self::tools::Tools;
use super::{Context, Detection, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{Context as _, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use self::tools::WASH_PINNED;

#[derive(Default)]
pub struct Wasmcloud {
    /// Started by `setup`, stopped by `teardown`.
    stack: Mutex<Option<Stack>>,
    /// Image references used instead of the pushed components.
    image_overrides: HashMap<Workload, String>,
}

impl Wasmcloud {
    /// Deploys `reference` for `workload` instead of the component pushed by
    /// `prepare` (which then pushes nothing for it); `{registry}` in it stands
    /// for the local registry's address. For tests of failing deploys.
    pub fn with_image_reference(mut self, workload: Workload, reference: &str) -> Wasmcloud {
        self.image_overrides.insert(workload, reference.to_string());
        self
    }

    fn with_stack<T>(&self, f: impl FnOnce(&mut Stack) -> Result<T>) -> Result<T> {
        let mut guard = self.stack.lock().unwrap_or_else(|e| e.into_inner());
        let stack = guard.as_mut().context("the wasmcloud stack is not running: call setup() first")?;
        f(stack)
    }

    fn image(&self, stack: &Stack, workload: Workload) -> String {
        match self.image_overrides.get(&workload) {
            Some(r) => r.replace("{registry}", &stack.registry_addr.to_string()),
            None => stack.image(workload),
        }
    }
}

impl Runtime for Wasmcloud {
    fn name(&self) -> &'static str {
        "wasmcloud"
    }

    fn variants(&self) -> &'static [&'static str] {
        Variant::NAMES
    }

    fn cpu_scope(&self, _variant: &str) -> String {
        "the instance's wash host process tree; not the nats-server and registry the campaign's instances share".into()
    }

    fn start_kind(&self, variant: &str) -> super::StartKind {
        match variant {
            "host-cold" => super::StartKind::Launch,
            _ => super::StartKind::DeployOnRunningHost,
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "`wash host`: a multi-thread tokio runtime sized by the CPUs it may run on (the SUT set); nats-server and the registry on the SUT set too".into()
    }

    fn network_path(&self, _variant: &str) -> String {
        "the wash host's HTTP ingress at the address it is given: 127.0.0.1, or under a firewall profile the \
         campaign namespace's address, reached over its veth pair; NATS and the registry then run in that namespace \
         too, on its loopback, so only the clients' requests cross the veth"
            .into()
    }

    fn artifact(&self, _variant: &str) -> super::ArtifactKind {
        super::ArtifactKind::Component
    }

    fn detect(&self, _artifacts: &Artifacts) -> Detection {
        match Tools::locate() {
            Ok(tools) => Detection::found(tools.versions, tools.wash),
            Err(why) => Detection::missing(why),
        }
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        let common = "each instance is its own `wash host` (fresh HOME and OCI cache; the campaign's runtime_env with \
             HOME replaced and RUST_BACKTRACE unset; loopback only; exact command and environment in \
             work/logs/<trial>.wash-host.json) on one nats-server and one local docker-registry shared by the \
             campaign. host-cold: t0 before spawning the host → first 200; deploy-cold: t0 before \
             workload.start on a running, idle host (pull + compile); deploy-warm: the same, for a component the host ran \
             and stopped before. The probe starts when the host replies RUNNING. memory_*/cpu_time: the wash host \
             only (cpu_time boot from its spawn, priming included); memory_pss_nats_server, memory_pss_registry: \
             the shared services. warm_start: one request on a new connection (a fresh component instance per request, like \
             `wasmtime serve`); warm_start phase redeploy: workload.stop + workload.start → first 200";
        Some(match workload {
            w if w.keeps_state() => format!(
                "{common}. state: a host directory mounted as a hostPath volume at /data (fresh per instance; kv: one \
                 file per key), the same mechanism as `wasmtime serve`'s preopen; not wasi:keyvalue, which the shared component \
                 does not import"
            ),
            _ => common.to_string(),
        })
    }

    fn setup(&self, ctx: &Context<'_>) -> Result<()> {
        let mut guard = self.stack.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let tools = Tools::locate().map_err(|why| anyhow::anyhow!("wasmcloud cannot run: {why}"))?;
            *guard = Some(Stack::start(ctx, tools)?);
        }
        Ok(())
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, _variant: &str) -> Result<()> {
        if self.image_overrides.contains_key(&workload) {
            return Ok(());
        }
        self.with_stack(|stack| stack.push(ctx, workload))
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let variant = Variant::parse(spec.variant)?;
        self.prepare(ctx, spec.workload, spec.variant)?;
        self.with_stack(|stack| {
            let image = self.image(stack, spec.workload);
            Ok(Box::new(instance::launch(ctx, stack, spec, variant, image)?) as Box<dyn Instance>)
        })
    }

    fn ready_timeout(&self, _variant: &str) -> Duration {
        // launch() returns once the workload runs; this covers its first answer.
        Duration::from_secs(30)
    }

    fn teardown(&self, _ctx: &Context<'_>) {
        let stack = self.stack.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(stack);
    }
}
