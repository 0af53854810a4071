//! `wasmtime-embedded`: edgebench's own host on the `wasmtime` crates
//! (crates/wasmtime-host), serving a precompiled component with `InstancePre`
//! and a small pooling allocator: the fastest Wasm path. The host has no
//! compiler: `prepare` compiles each component with the precompiler
//! (crates/wasmtime-precompile, the host's engine settings), measured as
//! `aot_compile` like WasmEdge's and WAMR's compilers, and the campaign's
//! instances serve that output.

use super::aot::AotCompiles;
use super::process::{preopened_state_dir, spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, ExtraResource, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::Result;
use std::process::Command;

#[derive(Default)]
pub struct WasmtimeEmbedded {
    compiles: AotCompiles,
}

impl WasmtimeEmbedded {
    /// The component `prepare` compiled for this campaign; outside a
    /// campaign (no prepare), the one `edgebench build` compiled.
    fn compiled(&self, ctx: &Context<'_>, workload: Workload) -> std::path::PathBuf {
        let prepared = AotCompiles::output(&ctx.work_dir, self.name(), workload);
        if prepared.exists() {
            prepared
        } else if let Some(builtin) = workload.builtin() {
            ctx.artifacts.precompiled(builtin)
        } else {
            // A user's component is precompiled only by `prepare`.
            prepared
        }
    }
}

/// Instance slots of the pooling allocator: the campaign's concurrency,
/// which bounds the requests in flight. Each slot costs start-up time (its
/// stack's guard page is set up front): 16 slots start 0.2 ms sooner than 64.
fn pool_slots(ctx: &Context<'_>) -> usize {
    ctx.concurrency.max(1)
}

impl Runtime for WasmtimeEmbedded {
    fn name(&self) -> &'static str {
        "wasmtime-embedded"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["precompiled-pooling"]
    }

    fn serving_model(&self, _variant: &str) -> String {
        format!(
            "tokio with one worker thread per SUT CPU (--threads {}), a fresh instance per request",
            crate::cpus::sut_workers()
        )
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::Component
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let path = artifacts.wasmtime_host();
        match super::version_of(&path, &["version"]) {
            Some(version) => Detection::found(version, path),
            None => Detection::missing(format!("{} is not built: run `edgebench build`", path.display())),
        }
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        workload.keeps_state().then(|| {
            "state in a preopened directory (/data, fresh per instance; kv: one file per key): the host makes a fresh instance per request".into()
        })
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        let output = AotCompiles::output(&ctx.work_dir, self.name(), workload);
        let mut command = Command::new(ctx.artifacts.wasmtime_precompiler());
        command.arg(workload.require(ArtifactKind::Component, ctx.artifacts)?).arg(&output);
        let log = ctx.work_dir.join("logs").join(format!("wasmtime-precompile-{workload}.log"));
        self.compiles.compile(command, &ctx.env, &output, &log, (workload, variant))
    }

    fn prepared(&self, workload: Workload, variant: &str) -> Vec<ExtraResource> {
        self.compiles.figures(workload, variant)
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let component = self.compiled(ctx, spec.workload);
        let mut command = Launch::new(ctx.artifacts.wasmtime_host());
        command.arg("serve").arg(&component).args([
            "--addr",
            &spec.addr.to_string(),
            "--pool",
            &pool_slots(ctx).to_string(),
            // One tokio worker per SUT CPU, like `wasmtime serve` (whose
            // default follows the CPUs it may run on).
            "--threads",
            &crate::cpus::sut_workers().to_string(),
            // Density adds tenants to one host (scaling.rs); nothing else calls it.
            "--tenant-api",
        ]);
        let scratch = preopened_state_dir(&mut command, ctx, spec)?;
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        let instance = spawn(
            command,
            &ctx.env,
            spec.addr,
            log,
            scratch,
            WarmMode::PerRequest { internal_header: Some("x-edgebench-handle-ns") },
        )?;
        // Tenants share the host's one preopened directory: a stateful
        // workload's tenants would share their state, so they are not offered.
        Ok(if spec.workload.keeps_state() { Box::new(instance) } else { Box::new(instance.serving_tenants(component)) })
    }
}
