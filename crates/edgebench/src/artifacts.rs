//! The artifacts every runtime runs, built from this workspace by
//! `edgebench build`: the static native server, one `wasi:http` component per
//! workload, the WASI preview-1 socket servers, the embedded Wasmtime host and
//! its precompiled components.

use crate::Workload;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
pub const WASIP2_TARGET: &str = "wasm32-wasip2";
pub const WASIP1_TARGET: &str = "wasm32-wasip1";

/// The WASI preview-1 socket ABIs a server is built for (preview 1 has no
/// standard listening socket: each runtime added its own functions).
pub const WASI_P1_ABIS: [&str; 2] = ["wasmedge", "wamr"];

#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The workspace the artifacts are built from.
    pub source: PathBuf,
    pub target_dir: PathBuf,
}

impl Artifacts {
    /// The workspace this binary was built from, unless `EDGEBENCH_SOURCE` names another.
    pub fn from_env() -> Artifacts {
        let source = std::env::var_os("EDGEBENCH_SOURCE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        let source = source.canonicalize().unwrap_or(source);
        let target_dir =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| source.join("target"));
        Artifacts { source, target_dir }
    }

    pub fn native_server(&self) -> PathBuf {
        self.target_dir.join(MUSL_TARGET).join("release/edgebench-workload")
    }

    /// PID 1 of the micro-VM guest (static musl).
    pub fn guest_init(&self) -> PathBuf {
        self.target_dir.join(MUSL_TARGET).join("release/edgebench-guest-init")
    }

    pub fn component(&self, workload: Workload) -> PathBuf {
        self.target_dir.join(WASIP2_TARGET).join("release").join(format!("{workload}.wasm"))
    }

    /// The WASI preview-1 server (every workload) for one socket ABI of [`WASI_P1_ABIS`].
    pub fn wasi_p1_server(&self, abi: &str) -> PathBuf {
        self.target_dir.join(WASIP1_TARGET).join("release").join(format!("edgebench-{abi}.wasm"))
    }

    /// The serving host: static musl, Wasmtime without a compiler.
    pub fn wasmtime_host(&self) -> PathBuf {
        self.target_dir.join(MUSL_TARGET).join("release/edgebench-wasmtime-host")
    }

    /// The same host built with Cranelift, used only to precompile components.
    pub fn wasmtime_compiler(&self) -> PathBuf {
        self.target_dir.join("release/edgebench-wasmtime-host")
    }

    pub fn precompiled(&self, workload: Workload) -> PathBuf {
        self.target_dir.join("edgebench").join(format!("{workload}.cwasm"))
    }

    /// Every artifact that must exist before a campaign, with what it is.
    pub fn required(&self) -> Vec<(String, PathBuf)> {
        let mut all = vec![
            ("native server".to_string(), self.native_server()),
            ("micro-VM guest init".to_string(), self.guest_init()),
            ("embedded Wasmtime host".to_string(), self.wasmtime_host()),
            ("embedded Wasmtime host's compiler".to_string(), self.wasmtime_compiler()),
        ];
        for abi in WASI_P1_ABIS {
            all.push((format!("WASI preview-1 server for {abi}"), self.wasi_p1_server(abi)));
        }
        for w in Workload::ALL {
            all.push((format!("{w} component"), self.component(w)));
            all.push((format!("{w} precompiled component"), self.precompiled(w)));
        }
        all
    }

    pub fn missing(&self) -> Vec<(String, PathBuf)> {
        self.required().into_iter().filter(|(_, p)| !p.exists()).collect()
    }

    /// Builds every artifact; cargo makes this cheap when nothing changed.
    pub fn build(&self) -> Result<()> {
        if !self.source.join("crates/workload-core").exists() {
            bail!(
                "cannot build artifacts: {} is not the edgebench workspace; set EDGEBENCH_SOURCE to a checkout",
                self.source.display()
            );
        }
        ensure_rustup_targets(&[MUSL_TARGET, WASIP2_TARGET, WASIP1_TARGET])?;
        self.cargo(&["build", "--release", "--target", MUSL_TARGET, "-p", "edgebench-workload-native"])?;
        self.cargo(&["build", "--release", "--target", MUSL_TARGET, "-p", "edgebench-guest-init"])?;
        self.cargo(&["build", "--release", "--target", WASIP2_TARGET, "-p", "edgebench-workload-wasi-http"])?;
        self.cargo(&["build", "--release", "--target", WASIP1_TARGET, "-p", "edgebench-workload-wasi-p1"])?;
        self.cargo(&["build", "--release", "--target", MUSL_TARGET, "-p", "edgebench-wasmtime-host"])?;
        self.cargo(&["build", "--release", "-p", "edgebench-wasmtime-host", "--features", "compiler"])?;
        std::fs::create_dir_all(self.target_dir.join("edgebench"))?;
        for w in Workload::ALL {
            let (wasm, cwasm) = (self.component(w), self.precompiled(w));
            if is_newer(&cwasm, &[&wasm, &self.wasmtime_compiler()]) {
                continue;
            }
            let status = Command::new(self.wasmtime_compiler())
                .arg("compile")
                .arg(&wasm)
                .arg(&cwasm)
                .status()
                .context("running edgebench-wasmtime-host compile")?;
            if !status.success() {
                bail!("precompiling {} failed ({status})", wasm.display());
            }
        }
        // The micro-VM guest needs apt (Debian's kernel): without it, only the
        // micro-VM runtimes are not measured (they say why), the rest still runs.
        if let Err(e) = crate::runtime::microvm::guest::build(self) {
            eprintln!("edgebench build: micro-VM guest not built: {e:#}");
        }
        Ok(())
    }

    fn cargo(&self, args: &[&str]) -> Result<()> {
        eprintln!("edgebench build: cargo {}", args.join(" "));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        // Under `cargo run`, cargo's per-package variables (CARGO_PKG_*,
        // CARGO_MANIFEST_DIR, …) are set for us; build scripts that watch them
        // would rebuild on every other invocation. Keep only the user's own.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let cargo_set = key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_")
                || matches!(
                    key.as_ref(),
                    "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE"
                );
            if cargo_set {
                command.env_remove(key.as_ref());
            }
        }
        let status = command
            .args(args)
            .current_dir(&self.source)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .status()
            .context("running cargo: is a Rust toolchain installed?")?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
        Ok(())
    }
}

/// Is `output` at least as new as every input?
fn is_newer(output: &Path, inputs: &[&Path]) -> bool {
    let Ok(out) = output.metadata().and_then(|m| m.modified()) else { return false };
    inputs.iter().all(|i| i.metadata().and_then(|m| m.modified()).map(|t| t <= out).unwrap_or(false))
}

fn ensure_rustup_targets(targets: &[&str]) -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = match installed {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        // No rustup: let cargo say what is missing.
        _ => return Ok(()),
    };
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("edgebench build: rustup target add {}", missing.join(" "));
    let status = Command::new("rustup").args(["target", "add"]).args(&missing).status()?;
    if !status.success() {
        bail!("rustup target add {} failed: the workloads need these targets", missing.join(" "));
    }
    Ok(())
}
