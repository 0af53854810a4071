//! `wasmer`: the Wasmer CLI (`wasmer run --net`) running the WASI preview-1
//! socket server built for WASIX's socket calls, with one of the compilers
//! the binary was built with: `cranelift`, `singlepass` (a one-pass compiler
//! made for fast compilation), `llvm`. Wasmer keeps compiled modules in its
//! cache (in the campaign's work directory, never the user's `~/.wasmer`):
//! the warm-up run compiles the module, and every measured cold start loads
//! it from that cache, as a deployed Wasmer would.

use super::process::{spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;
use std::sync::OnceLock;

const HOW: &str = concat!(
    "install the Wasmer CLI: `cargo install wasmer-cli --version 7.4.2 --locked --features cranelift,singlepass` ",
    "(add `llvm` with LLVM 18 installed; ~30 minutes on 2 cores), or the official installer ",
    "(curl https://get.wasmer.io -sSfL | sh); it must be on PATH, or set EDGEBENCH_WASMER"
);

const COMPILERS: [&str; 3] = ["cranelift", "singlepass", "llvm"];

#[derive(Default)]
pub struct Wasmer;

/// `EDGEBENCH_WASMER`, else `wasmer` on PATH, else the official installer's `~/.wasmer/bin/wasmer`.
fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEBENCH_WASMER") {
        return Some(PathBuf::from(p));
    }
    super::which("wasmer").or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(std::path::Path::new(&home).join(".wasmer/bin/wasmer")).filter(|p| super::is_executable(p))
    })
}

/// The compilers the located binary has (`wasmer run --help` lists a flag per compiler), asked once.
fn compilers() -> &'static [&'static str] {
    static HAS: OnceLock<Vec<&'static str>> = OnceLock::new();
    HAS.get_or_init(|| {
        let Some(binary) = locate() else { return COMPILERS.to_vec() };
        let help = super::process::helper(&binary).args(["run", "--help"]).output();
        let help = help.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        COMPILERS.iter().copied().filter(|c| help.contains(&format!("--{c}"))).collect()
    })
}

impl Runtime for Wasmer {
    fn name(&self) -> &'static str {
        "wasmer"
    }

    fn variants(&self) -> &'static [&'static str] {
        match compilers() {
            [] => &COMPILERS,
            found => found,
        }
    }

    fn serving_model(&self, _variant: &str) -> String {
        "WASI preview-1 socket server on WASIX sockets: one connection at a time (the server uses no threads); loaded figures are not comparable with concurrent servers".into()
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::WasiP1("wasmer")
    }

    fn detect(&self, artifacts: &Artifacts) -> Detection {
        let Some(path) = locate() else {
            return Detection::missing(format!("wasmer not found: {HOW}"));
        };
        let Some(version) = super::version_of(&path, &["--version"]) else {
            return Detection::missing(format!("{} does not run (`--version` failed): {HOW}", path.display()));
        };
        if compilers().is_empty() {
            return Detection::missing(format!("{version} has no compiler (cranelift, singlepass, llvm): {HOW}"));
        }
        let server = artifacts.wasi_p1_server("wasmer");
        if !server.exists() {
            return Detection::missing(format!("{} is not built: run `edgebench build`", server.display()));
        }
        Detection::found(format!("{version} (compilers: {})", compilers().join(", ")), path)
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        let state = if workload.keeps_state() { "; state in the instance's memory" } else { "" };
        Some(format!(
            "WASI preview-1 socket server on WASIX sockets (`wasmer run --net`), one connection at a time; the module \
             compiled at warm-up and loaded from Wasmer's cache at every measured start{state}"
        ))
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let binary = locate().context("wasmer not found")?;
        if !compilers().contains(&spec.variant) {
            bail!("unknown wasmer variant {:?}: this wasmer has {}", spec.variant, compilers().join(", "));
        }
        let module = spec.workload.require(ArtifactKind::WasiP1("wasmer"), ctx.artifacts)?;
        let mut command = Launch::new(binary);
        // Its cache and registry state in the campaign's work directory.
        let home = ctx.work_dir.join("wasmer-home");
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        command.env("WASMER_DIR", &home).env("WASMER_CACHE_DIR", home.join("cache"));
        command.args(["run", "--net", &format!("--{}", spec.variant)]).arg(module).arg("--");
        command.args(spec.workload.server_args(&spec.addr.to_string()));
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, None, WarmMode::None)?))
    }
}
