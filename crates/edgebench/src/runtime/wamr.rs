//! `wamr`: WAMR's `iwasm` running the WASI preview-1 socket server built for
//! WAMR's socket extension, in its interpreter (`interpreter`, the fast
//! interpreter of a default build) and, where `wamrc` is installed, on an AOT
//! artifact compiled in `prepare` (`aot`).

use super::aot::AotCompiles;
use super::process::{spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, ExtraResource, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::process::Command;

#[derive(Default)]
pub struct Wamr {
    compiles: AotCompiles,
}

/// `EDGEBENCH_<VAR>`, else `program` on PATH.
fn locate(var: &str, program: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from).or_else(|| super::which(program))
}

fn iwasm() -> Option<PathBuf> {
    locate("EDGEBENCH_IWASM", "iwasm")
}

fn wamrc() -> Option<PathBuf> {
    locate("EDGEBENCH_WAMRC", "wamrc")
}

const HOW: &str = concat!(
    "build WAMR's iwasm from its public source (github.com/bytecodealliance/wasm-micro-runtime, tag WAMR-2.4.5: cmake product-mini/platforms/linux -DWAMR_BUILD_SIMD=0) and put it on PATH or set EDGEBENCH_IWASM; ",
    "for the aot variant also wamrc (wamr-compiler with LLVM: -DWAMR_BUILD_WITH_CUSTOM_LLVM=1 -DLLVM_DIR=…), or set EDGEBENCH_WAMRC"
);

impl Runtime for Wamr {
    fn name(&self) -> &'static str {
        "wamr"
    }

    fn variants(&self) -> &'static [&'static str] {
        if iwasm().is_some() && wamrc().is_none() {
            &["interpreter"]
        } else {
            &["interpreter", "aot"]
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "WASI preview-1 socket server: one connection at a time (preview 1 has no threads); loaded figures are not comparable with concurrent servers".into()
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::WasiP1("wamr")
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(path) = iwasm() else {
            return Detection::missing(format!("iwasm not found: {HOW}"));
        };
        let Some(version) = super::version_of(&path, &["--version"]) else {
            return Detection::missing(format!("{} does not run (`--version` failed): {HOW}", path.display()));
        };
        let server = artifacts.wasi_p1_server("wamr");
        if !server.exists() {
            return Detection::missing(format!("{} is not built: run `edgebench build`", server.display()));
        }
        let aot = match wamrc().and_then(|c| super::version_of(&c, &["--version"]).map(|v| (c, v))) {
            Some((c, v)) => format!("aot: {v} at {}", c.display()),
            None => "no wamrc: interpreter only".into(),
        };
        Detection::found(format!("{version} ({aot})"), path)
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        Some(match workload {
            w if w.keeps_state() => "WASI preview-1 socket server on WAMR's socket extension (--addr-pool=the instance's address/32), one connection at a time (no threads in preview 1); state in the instance's memory".into(),
            _ => "WASI preview-1 socket server on WAMR's socket extension (--addr-pool=the instance's address/32), one connection at a time (no threads in preview 1); AOT compile time and memory are stored apart (phase `prepare`)".into(),
        })
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        if variant != "aot" {
            return Ok(());
        }
        let compiler = wamrc().context(format!("wamrc not found: {HOW}"))?;
        let output = AotCompiles::output(&ctx.work_dir, self.name(), workload);
        let mut command = Command::new(compiler);
        command.arg("-o").arg(&output).arg(workload.require(ArtifactKind::WasiP1("wamr"), ctx.artifacts)?);
        let log = ctx.work_dir.join("logs").join(format!("wamrc-{workload}.log"));
        self.compiles.compile(command, &ctx.env, &output, &log, (workload, variant))
    }

    fn prepared(&self, workload: Workload, variant: &str) -> Vec<ExtraResource> {
        self.compiles.figures(workload, variant)
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let binary = iwasm().context("iwasm not found")?;
        let module = match spec.variant {
            "interpreter" => spec.workload.require(ArtifactKind::WasiP1("wamr"), ctx.artifacts)?,
            "aot" => {
                let compiled = AotCompiles::output(&ctx.work_dir, self.name(), spec.workload);
                if !compiled.exists() {
                    bail!("{} is missing: prepare compiles it", compiled.display());
                }
                compiled
            }
            other => bail!("unknown wamr variant {other:?}"),
        };
        let mut command = Launch::new(binary);
        // Binding is refused outside the address pool: exactly the instance's
        // address (127.0.0.1, or the server namespace's under a firewall profile).
        command.arg(format!("--addr-pool={}/32", spec.addr.ip()));
        command.arg(module).args(spec.workload.server_args(&spec.addr.to_string()));
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?))
    }
}
