//! The artifacts every runtime runs, built from this workspace by
//! `edgebench build`: the static native server, one `wasi:http` component per
//! workload, the WASI preview-1 socket servers, the core module workerd's
//! Worker calls, the embedded Wasmtime host and its precompiled components.

use crate::workload::Builtin;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The static binaries' target on the machine this edgebench runs on (an
/// arm64 board's edgebench looks for its own architecture's binaries).
pub const MUSL_TARGET: &str = Arch::HOST.musl_target();
pub const WASIP2_TARGET: &str = "wasm32-wasip2";
pub const WASIP1_TARGET: &str = "wasm32-wasip1";
/// A core module without imports, for a JavaScript host (workerd's V8).
pub const WASM_BARE_TARGET: &str = "wasm32-unknown-unknown";
/// Bare metal: the unikernel.
pub const UNIKERNEL_TARGET: &str = "x86_64-unknown-none";

/// The cargo profile of everything that is measured (Cargo.toml says how it is
/// tuned). edgebench itself is built with it too: the host-side build scripts
/// and proc macros of the musl build are then already built by its own.
pub const ARTIFACT_PROFILE: &str = "release";
/// The profile of the precompiler: built fast, it only turns components into machine code.
pub const PRECOMPILER_PROFILE: &str = "precompiler";

/// The WASI preview-1 socket ABIs a server is built for (preview 1 has no
/// standard listening socket: each runtime added its own functions).
pub const WASI_P1_ABIS: [&str; 3] = ["wasmedge", "wamr", "wasmer"];

/// The architectures edgebench's native binaries are built for. The Wasm
/// artifacts (components, preview-1 modules) are the same files on every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this edgebench was built for (and so runs on).
    #[cfg(target_arch = "aarch64")]
    pub const HOST: Arch = Arch::Aarch64;
    #[cfg(not(target_arch = "aarch64"))]
    pub const HOST: Arch = Arch::X86_64;

    /// The targets `edgebench build --target` cross-builds for (what it accepts).
    pub const CROSS: [Arch; 1] = [Arch::Aarch64];

    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The static binaries (native server, guest init, embedded host, its precompiler).
    pub const fn musl_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// edgebench itself, which compiles C (SQLite, ring): built for glibc with
    /// Debian's cross toolchain, as the host's edgebench is for the host's glibc.
    pub const fn gnu_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// `--target` of `edgebench build`: `aarch64` or `aarch64-unknown-linux-musl`.
    pub fn parse_cross(value: &str) -> Result<Arch> {
        Arch::CROSS.into_iter().find(|a| value == a.name() || value == a.musl_target()).ok_or_else(|| {
            let valid: Vec<String> =
                Arch::CROSS.iter().map(|a| format!("{} (or {})", a.name(), a.musl_target())).collect();
            anyhow::anyhow!(
                "unknown build target {value:?}: valid targets are {} (without --target, edgebench builds for this machine)",
                valid.join(", ")
            )
        })
    }
}

#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The workspace the artifacts are built from.
    pub source: PathBuf,
    pub target_dir: PathBuf,
    /// The architecture of the native binaries (the Wasm files are portable).
    pub arch: Arch,
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
        Artifacts { source, target_dir, arch: Arch::HOST }
    }

    /// The directory `edgebench build --target ARCH` fills for another
    /// architecture: its `edgebench` binary, and under `target/` every
    /// artifact at the path that architecture's edgebench looks for it
    /// (`EDGEBENCH_SOURCE=<this directory>` there). Copy it to the board whole.
    pub fn cross_dir(&self, arch: Arch) -> PathBuf {
        self.target_dir.join(format!("edgebench-{}", arch.name()))
    }

    /// The artifacts in [`Artifacts::cross_dir`], as that architecture's edgebench sees them.
    pub fn cross(&self, arch: Arch) -> Artifacts {
        let source = self.cross_dir(arch);
        Artifacts { target_dir: source.join("target"), source, arch }
    }

    /// The edgebench binary of [`Artifacts::cross_dir`].
    pub fn cross_edgebench(&self, arch: Arch) -> PathBuf {
        self.cross_dir(arch).join("edgebench")
    }

    /// Where cargo puts what `edgebench build` builds for `target` (None: the host).
    fn built(&self, target: Option<&str>, profile: &str, file: &str) -> PathBuf {
        let dir = match target {
            Some(t) => self.target_dir.join(t),
            None => self.target_dir.clone(),
        };
        dir.join(profile).join(file)
    }

    pub fn native_server(&self) -> PathBuf {
        self.built(Some(self.arch.musl_target()), ARTIFACT_PROFILE, "edgebench-workload")
    }

    /// PID 1 of the micro-VM guest (static musl).
    pub fn guest_init(&self) -> PathBuf {
        self.built(Some(self.arch.musl_target()), ARTIFACT_PROFILE, "edgebench-guest-init")
    }

    pub fn component(&self, workload: Builtin) -> PathBuf {
        self.built(Some(WASIP2_TARGET), ARTIFACT_PROFILE, &format!("{workload}.wasm"))
    }

    /// The WASI preview-1 server (every workload) for one socket ABI of [`WASI_P1_ABIS`].
    pub fn wasi_p1_server(&self, abi: &str) -> PathBuf {
        self.built(Some(WASIP1_TARGET), ARTIFACT_PROFILE, &format!("edgebench-{abi}.wasm"))
    }

    /// The core Wasm module (every workload, no imports) that workerd's Worker calls.
    pub fn workerd_module(&self) -> PathBuf {
        self.built(Some(WASM_BARE_TARGET), ARTIFACT_PROFILE, "edgebench_workload_workerd.wasm")
    }

    /// The serving host: static musl, Wasmtime without a compiler.
    pub fn wasmtime_host(&self) -> PathBuf {
        self.built(Some(self.arch.musl_target()), ARTIFACT_PROFILE, "edgebench-wasmtime-host")
    }

    /// Wasmtime with Cranelift and the host's engine settings, used only to
    /// precompile components (never measured, so built for build speed).
    pub fn wasmtime_precompiler(&self) -> PathBuf {
        self.built(None, PRECOMPILER_PROFILE, "edgebench-wasmtime-precompile")
    }

    /// The unikernel image (an ELF entered through PVH).
    pub fn unikernel(&self) -> PathBuf {
        self.built(Some(UNIKERNEL_TARGET), ARTIFACT_PROFILE, "edgebench-unikernel")
    }

    pub fn precompiled(&self, workload: Builtin) -> PathBuf {
        self.target_dir.join("edgebench").join(format!("{workload}.cwasm"))
    }

    /// Every artifact that must exist before a campaign, with what it is.
    pub fn required(&self) -> Vec<(String, PathBuf)> {
        let mut all = vec![
            ("native server".to_string(), self.native_server()),
            ("micro-VM guest init".to_string(), self.guest_init()),
            ("embedded Wasmtime host".to_string(), self.wasmtime_host()),
            ("embedded Wasmtime host's precompiler".to_string(), self.wasmtime_precompiler()),
        ];
        // The unikernel boots x86_64 PVH only.
        if self.arch == Arch::X86_64 {
            all.push(("unikernel".to_string(), self.unikernel()));
        }
        for abi in WASI_P1_ABIS {
            all.push((format!("WASI preview-1 server for {abi}"), self.wasi_p1_server(abi)));
        }
        all.push(("core module for workerd".to_string(), self.workerd_module()));
        for w in Builtin::ALL {
            all.push((format!("{w} component"), self.component(w)));
            all.push((format!("{w} precompiled component"), self.precompiled(w)));
        }
        all
    }

    /// SHA-256 of every artifact that exists (ours, and those of the user
    /// workloads known to this process), by what it is: stored with each run
    /// of a campaign, so that a resumed campaign never mixes binaries unnoticed.
    pub fn fingerprint(&self) -> serde_json::Map<String, serde_json::Value> {
        use sha2::{Digest, Sha256};
        let user = crate::Workload::all().into_iter().flat_map(|w| w.files());
        self.required()
            .into_iter()
            .chain(user)
            .filter_map(|(what, path)| {
                let mut file = std::fs::File::open(&path).ok()?;
                let mut hash = Sha256::new();
                std::io::copy(&mut file, &mut hash).ok()?;
                let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
                Some((what, serde_json::Value::String(hex)))
            })
            .collect()
    }

    pub fn missing(&self) -> Vec<(String, PathBuf)> {
        self.required().into_iter().filter(|(_, p)| !p.exists()).collect()
    }

    /// Builds every artifact; cargo makes this cheap when nothing changed.
    /// One cargo invocation per target, so cargo schedules all of a target's
    /// crates on every core at once.
    pub fn build(&self) -> Result<()> {
        if !self.source.join("crates/workload-core").exists() {
            bail!(
                "cannot build artifacts: {} is not the edgebench workspace; set EDGEBENCH_SOURCE to a checkout",
                self.source.display()
            );
        }
        let started = Instant::now();
        ensure_rustup_targets(&[MUSL_TARGET, WASIP2_TARGET, WASIP1_TARGET, WASM_BARE_TARGET, UNIKERNEL_TARGET])?;
        let musl = ["edgebench-workload-native", "edgebench-guest-init", "edgebench-wasmtime-host"];
        self.cargo(
            "the static musl binaries (native server, guest init, embedded host)",
            Some(MUSL_TARGET),
            ARTIFACT_PROFILE,
            &musl,
        )?;
        self.build_portable()?;
        if self.arch == Arch::X86_64 {
            self.cargo("the unikernel", Some(UNIKERNEL_TARGET), ARTIFACT_PROFILE, &["edgebench-unikernel"])?;
        }
        self.precompile(self, None)?;
        // The micro-VM guest needs apt (Debian's kernel): without it, only the
        // micro-VM runtimes are not measured (they say why), the rest still runs.
        if let Err(e) = crate::runtime::microvm::guest::build(self) {
            eprintln!("edgebench build: micro-VM guest not built: {e:#}");
        }
        eprintln!("edgebench build: artifacts ready in {:.0} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// `edgebench build --target ARCH`: everything a board of that
    /// architecture needs, in [`Artifacts::cross_dir`] (returned). Its native
    /// binaries are built for it; its Wasm files are this machine's (portable);
    /// the embedded host's components are precompiled for it here.
    pub fn build_cross(&self, arch: Arch) -> Result<PathBuf> {
        if !self.source.join("crates/workload-core").exists() {
            bail!(
                "cannot build artifacts: {} is not the edgebench workspace; set EDGEBENCH_SOURCE to a checkout",
                self.source.display()
            );
        }
        let started = Instant::now();
        ensure_rustup_targets(&[
            arch.musl_target(),
            arch.gnu_target(),
            WASIP2_TARGET,
            WASIP1_TARGET,
            WASM_BARE_TARGET,
        ])?;
        ensure_cross_gcc(arch)?;
        // Portable: the very files this machine's runtimes run.
        self.build_portable()?;
        let (musl, gnu) = (Some(arch.musl_target()), Some(arch.gnu_target()));
        self.cargo(
            &format!("the static {} binaries (native server, guest init, embedded host)", arch.name()),
            musl,
            ARTIFACT_PROFILE,
            &["edgebench-workload-native", "edgebench-guest-init", "edgebench-wasmtime-host"],
        )?;
        // A campaign there compiles its components with it (`aot_compile`).
        self.cargo(
            &format!("the embedded host's precompiler for {}", arch.name()),
            musl,
            PRECOMPILER_PROFILE,
            &["edgebench-wasmtime-precompile"],
        )?;
        self.cargo(&format!("edgebench for {}", arch.name()), gnu, ARTIFACT_PROFILE, &["edgebench"])?;

        let there = self.cross(arch);
        let mut files = vec![
            (self.built(musl, ARTIFACT_PROFILE, "edgebench-workload"), there.native_server()),
            (self.built(musl, ARTIFACT_PROFILE, "edgebench-guest-init"), there.guest_init()),
            (self.built(musl, ARTIFACT_PROFILE, "edgebench-wasmtime-host"), there.wasmtime_host()),
            (self.built(musl, PRECOMPILER_PROFILE, "edgebench-wasmtime-precompile"), there.wasmtime_precompiler()),
            (self.built(gnu, ARTIFACT_PROFILE, "edgebench"), self.cross_edgebench(arch)),
        ];
        for abi in WASI_P1_ABIS {
            files.push((self.wasi_p1_server(abi), there.wasi_p1_server(abi)));
        }
        files.push((self.workerd_module(), there.workerd_module()));
        for w in Builtin::ALL {
            files.push((self.component(w), there.component(w)));
        }
        for (from, to) in files {
            copy_if_newer(&from, &to)?;
        }
        self.precompile(&there, Some(arch.musl_target()))?;
        let dir = self.cross_dir(arch);
        eprintln!(
            "edgebench build: {} artifacts ready in {:.0} s: {}\n  \
             (edgebench for {}-linux-gnu, static {} binaries; the Wasm files are this machine's, portable)\n  \
             copy to a board:  rsync -a {}/ BOARD:edgebench/\n  \
             there:            EDGEBENCH_SOURCE=$HOME/edgebench $HOME/edgebench/edgebench doctor",
            arch.name(),
            started.elapsed().as_secs_f64(),
            dir.display(),
            arch.name(),
            arch.musl_target(),
            dir.display(),
        );
        Ok(dir)
    }

    /// Precompiles the built-in components into `dest` (`self` when built for
    /// this machine), for `target`'s CPU (None: this machine's).
    fn precompile(&self, dest: &Artifacts, target: Option<&str>) -> Result<()> {
        std::fs::create_dir_all(dest.target_dir.join("edgebench"))?;
        for w in Builtin::ALL {
            let (wasm, cwasm) = (self.component(w), dest.precompiled(w));
            if is_newer(&cwasm, &[&wasm, &self.wasmtime_precompiler()]) {
                continue;
            }
            let mut command = crate::runtime::process::helper(self.wasmtime_precompiler());
            command.arg(&wasm).arg(&cwasm);
            if let Some(t) = target {
                command.args(["--target", t]);
            }
            let status =
                command.status().with_context(|| format!("running {}", self.wasmtime_precompiler().display()))?;
            if !status.success() {
                bail!("precompiling {} failed ({status})", wasm.display());
            }
        }
        Ok(())
    }

    /// Runs one `cargo build`; on failure, says which artifact, the command,
    /// and the likely fix read from cargo's own output.
    /// What every architecture shares: the Wasm artifacts (portable, the
    /// same files everywhere) and this machine's precompiler.
    fn build_portable(&self) -> Result<()> {
        self.cargo(
            "the wasi:http components",
            Some(WASIP2_TARGET),
            ARTIFACT_PROFILE,
            &["edgebench-workload-wasi-http"],
        )?;
        self.cargo(
            "the WASI preview-1 servers",
            Some(WASIP1_TARGET),
            ARTIFACT_PROFILE,
            &["edgebench-workload-wasi-p1"],
        )?;
        self.cargo(
            "the core module for workerd",
            Some(WASM_BARE_TARGET),
            ARTIFACT_PROFILE,
            &["edgebench-workload-workerd"],
        )?;
        self.cargo("the embedded host's precompiler", None, PRECOMPILER_PROFILE, &["edgebench-wasmtime-precompile"])
    }

    fn cargo(&self, what: &str, target: Option<&str>, profile: &str, packages: &[&str]) -> Result<()> {
        let mut args = vec!["build", "--profile", profile];
        if let Some(t) = target {
            args.extend(["--target", t]);
        }
        for p in packages {
            args.extend(["-p", p]);
        }
        let shown = format!("cargo {}", args.join(" "));
        eprintln!("edgebench build: {what}: {shown}");
        let started = Instant::now();
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
        let mut child = command
            .args(&args)
            .current_dir(&self.source)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .stderr(Stdio::piped())
            .spawn()
            .context("running cargo: is a Rust toolchain installed (rustup, cargo)?")?;
        // Cargo's progress goes on to the terminal; the lines are kept to
        // recognise the cause of a failure.
        let mut output = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                eprintln!("{line}");
                output.push(line);
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "building {what} failed ({status})\n  command: {shown} (in {})\n  likely fix: {}",
                self.source.display(),
                likely_fix(&output.join("\n"), target)
            );
        }
        eprintln!("edgebench build: {what}: {:.0} s", started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// The fix for the build failures a new user meets, from cargo's output.
fn likely_fix(output: &str, target: Option<&str>) -> String {
    if output.contains("edgebench musl-cc:") {
        "a dependency started to compile C code for the musl target; edgebench's musl binaries must build \
         without a musl C toolchain (see scripts/musl-cc): drop the feature or crate that brings it in"
            .into()
    } else if output.contains("aarch64-linux-gnu-gcc")
        && (output.contains("not found") || output.contains("failed to find tool"))
    {
        "install the aarch64 cross compiler (Debian: apt-get install gcc-aarch64-linux-gnu)".into()
    } else if output.contains("failed to find tool") || output.contains("linker `cc` not found") {
        "install a C compiler for the host (Debian: apt-get install gcc)".into()
    } else if output.contains("may not be installed") || output.contains("can't find crate for `core`") {
        format!("rustup target add {}", target.unwrap_or("<target>"))
    } else if output.contains("failed to get") || output.contains("download") || output.contains("index") {
        "cargo could not fetch crates: the first build needs crates.io (or run `cargo fetch` where it is reachable)"
            .into()
    } else if output.contains("No space left") {
        "free disk space: the first build needs about 5 GB under target/".into()
    } else {
        "read cargo's error above; `cargo clean` and `edgebench build` again if it mentions a stale or corrupt file"
            .into()
    }
}

/// Copies `from` to `to` (creating its directory) unless `to` is already newer.
fn copy_if_newer(from: &Path, to: &Path) -> Result<()> {
    if is_newer(to, &[from]) {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A fresh file, never a write into one that a board copy may be running.
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// The cross C compiler and linker of `arch` (.cargo/config.toml names it).
fn ensure_cross_gcc(arch: Arch) -> Result<()> {
    let gcc = format!("{}-linux-gnu-gcc", arch.name());
    match Command::new(&gcc).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        _ => bail!(
            "{gcc} is not on PATH: it links the {} binaries and compiles edgebench's C for {} (Debian: apt-get install gcc-{}-linux-gnu)",
            arch.name(),
            arch.gnu_target(),
            arch.name()
        ),
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

#[cfg(test)]
mod tests {
    use super::likely_fix;

    #[test]
    fn build_failures_a_new_user_meets_get_their_fix() {
        let cases = [
            ("edgebench musl-cc: refusing to compile /x/ring/curve25519.c", "must build without a musl C toolchain"),
            ("error occurred in cc-rs: failed to find tool \"cc\"", "apt-get install gcc"),
            ("error: linker `cc` not found", "apt-get install gcc"),
            ("error: linker `aarch64-linux-gnu-gcc` not found", "apt-get install gcc-aarch64-linux-gnu"),
            ("the `wasm32-wasip2` target may not be installed", "rustup target add wasm32-wasip2"),
            ("failed to get `anyhow` as a dependency", "needs crates.io"),
            ("No space left on device", "free disk space"),
            ("something else entirely", "read cargo's error above"),
        ];
        for (output, fix) in cases {
            let got = likely_fix(output, Some("wasm32-wasip2"));
            assert!(got.contains(fix), "{output:?} → {got:?}");
        }
    }
}
