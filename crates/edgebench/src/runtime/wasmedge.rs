//! `wasmedge`: the WasmEdge CLI running the WASI preview-1 socket server,
//! in its interpreter (`interpreter`), on a native artifact from
//! `wasmedge compile` (`aot`, compiled in `prepare`), and with its JIT (`jit`,
//! which compiles the whole module with LLVM at every start).
//! `aot` and `jit` need a WasmEdge built with LLVM.

use super::aot::AotCompiles;
use super::process::{spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, ExtraResource, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The release the official installer and archives provide.
pub const PINNED: &str = "0.17.1";

#[derive(Default)]
pub struct WasmEdge {
    compiles: AotCompiles,
}

impl WasmEdge {
    /// `EDGEBENCH_WASMEDGE`, else `wasmedge` on PATH, else the official
    /// installer's `~/.wasmedge/bin/wasmedge`.
    pub fn locate() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("EDGEBENCH_WASMEDGE") {
            return Some(PathBuf::from(p));
        }
        super::which("wasmedge").or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(Path::new(&home).join(".wasmedge/bin/wasmedge")).filter(|p| super::is_executable(p))
        })
    }
}

/// Whether this WasmEdge has its LLVM compiler (`wasmedge compile` works).
fn has_llvm(binary: &Path) -> bool {
    super::process::helper(binary).args(["compile", "--help"]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// The located binary's LLVM support, asked once per process (it costs a launch).
fn located_has_llvm() -> bool {
    static HAS_LLVM: OnceLock<bool> = OnceLock::new();
    *HAS_LLVM.get_or_init(|| WasmEdge::locate().is_some_and(|b| has_llvm(&b)))
}

impl Runtime for WasmEdge {
    fn name(&self) -> &'static str {
        "wasmedge"
    }

    fn variants(&self) -> &'static [&'static str] {
        // Without a binary, every variant is listed (and reported not measured).
        if Self::locate().is_some() && !located_has_llvm() {
            &["interpreter"]
        } else {
            &["interpreter", "aot", "jit"]
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "WASI preview-1 socket server: one connection at a time (preview 1 has no threads); loaded figures are not comparable with concurrent servers".into()
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::WasiP1("wasmedge")
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let how = format!(
            "install WasmEdge {PINNED} from its official release archive (github.com/WasmEdge/WasmEdge/releases, \
             put bin/ on PATH or set EDGEBENCH_WASMEDGE) or, without internet, build it from its source \
             (cmake, ninja, llvm-19-dev, liblld-19-dev; fmt 11.0.2, spdlog 1.13.0) and install it"
        );
        let Some(path) = Self::locate() else {
            return Detection::missing(format!("wasmedge not found: {how}"));
        };
        let Some(version) = super::version_of(&path, &["--version"]) else {
            return Detection::missing(format!("{} does not run (`--version` failed): {how}", path.display()));
        };
        // The CLI prints its own path first ("/usr/local/bin/wasmedge version 0.17.1").
        let version = match version.split_once(" version ") {
            Some((_, v)) => format!("wasmedge {v}"),
            None => version,
        };
        let server = artifacts.wasi_p1_server("wasmedge");
        if !server.exists() {
            return Detection::missing(format!("{} is not built: run `edgebench build`", server.display()));
        }
        let build = if located_has_llvm() {
            "LLVM-enabled build: interpreter, aot, jit"
        } else {
            "build without LLVM: interpreter only"
        };
        Detection::found(format!("{version} ({build})"), path)
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        Some(match workload {
            w if w.keeps_state() => "WASI preview-1 socket server (wasmedge_wasi_socket), one connection at a time (no threads in preview 1); state in the instance's memory".into(),
            _ => "WASI preview-1 socket server (wasmedge_wasi_socket), one connection at a time (no threads in preview 1); AOT compile time and memory are stored apart (phase `prepare`)".into(),
        })
    }

    fn ready_timeout(&self, _variant: &str) -> Duration {
        // jit compiles the module with LLVM before serving: seconds on a loaded machine.
        Duration::from_secs(60)
    }

    fn prepare(&self, ctx: &Context<'_>, workload: Workload, variant: &str) -> Result<()> {
        if variant != "aot" {
            return Ok(());
        }
        let binary = Self::locate().context("wasmedge not found")?;
        let output = AotCompiles::output(&ctx.work_dir, self.name(), workload);
        let mut command = Command::new(binary);
        command.arg("compile").arg(workload.require(ArtifactKind::WasiP1("wasmedge"), ctx.artifacts)?).arg(&output);
        let log = ctx.work_dir.join("logs").join(format!("wasmedge-compile-{workload}.log"));
        self.compiles.compile(command, &ctx.env, &output, &log, (workload, variant))
    }

    fn prepared(&self, workload: Workload, variant: &str) -> Vec<ExtraResource> {
        self.compiles.figures(workload, variant)
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let binary = Self::locate().context("wasmedge not found")?;
        let mut command = Launch::new(binary);
        let module = match spec.variant {
            "interpreter" | "jit" => spec.workload.require(ArtifactKind::WasiP1("wasmedge"), ctx.artifacts)?,
            "aot" => {
                let compiled = AotCompiles::output(&ctx.work_dir, self.name(), spec.workload);
                if !compiled.exists() {
                    bail!("{} is missing: prepare compiles it", compiled.display());
                }
                compiled
            }
            other => bail!("unknown wasmedge variant {other:?}"),
        };
        // Always explicit: without --run-mode=aot, 0.17 runs a compiled module
        // in its interpreter; jit compiles the whole module with LLVM at start.
        command.arg(format!("--run-mode={}", spec.variant));
        command.arg(module).args(spec.workload.server_args(&spec.addr.to_string()));
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?))
    }
}
