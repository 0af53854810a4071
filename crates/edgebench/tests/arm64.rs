//! The arm64 build (`edgebench build --target aarch64`, which the test
//! command runs): its binaries are aarch64 ELF files, the measured ones
//! static, and under qemu-user (`qemu-aarch64-static BINARY`, no binfmt
//! registration) the native server and the embedded Wasmtime host answer
//! every built-in workload's conformance requests exactly like the workload
//! core. Skipped without qemu-user or the arm64 build, unless
//! EDGEBENCH_REQUIRE names `qemu-user`.

mod common;

use edgebench::artifacts::{Arch, Artifacts};
use edgebench::measure::http;
use edgebench::Workload;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const QEMU: &str = "qemu-aarch64-static";
/// ELF e_machine of AArch64.
const EM_AARCH64: u16 = 183;
/// ELF p_type of the program header that names a dynamic loader.
const PT_INTERP: u32 = 3;

/// The arm64 artifacts, or None (skipped, or failed when required) when
/// qemu-user or the build is missing.
fn arm64() -> Option<Artifacts> {
    if Command::new(QEMU).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        common::skip("qemu-user", &format!("{QEMU} is not on PATH (Debian: apt-get install qemu-user-static)"));
        return None;
    }
    let here = Artifacts::from_env();
    let there = here.cross(Arch::Aarch64);
    let mut needed = vec![here.cross_edgebench(Arch::Aarch64)];
    needed.extend(there.required().into_iter().map(|(_, path)| path));
    if let Some(missing) = needed.iter().find(|p| !p.exists()) {
        common::skip(
            "qemu-user",
            &format!("{} is not built: run `edgebench build --target aarch64`", missing.display()),
        );
        return None;
    }
    Some(there)
}

struct Elf {
    machine: u16,
    /// No PT_INTERP: nothing is loaded before the program (a static executable).
    is_static: bool,
}

/// The ELF header bits `file` reports: the machine, and whether a loader is named.
fn elf(path: &Path) -> Elf {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    assert_eq!(bytes[4], 2, "{}: not ELF64", path.display());
    assert_eq!(bytes[5], 1, "{}: not little-endian", path.display());
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36) as usize, u16_at(0x38) as usize);
    let is_static = (0..phnum).all(|i| u32_at(phoff + i * phentsize) != PT_INTERP);
    Elf { machine: u16_at(0x12), is_static }
}

#[test]
fn the_arm64_binaries_are_aarch64_and_the_measured_ones_static() {
    let Some(there) = arm64() else { return };
    for (what, path) in [
        ("native server", there.native_server()),
        ("guest init", there.guest_init()),
        ("embedded host", there.wasmtime_host()),
        ("embedded host's precompiler", there.wasmtime_precompiler()),
    ] {
        let e = elf(&path);
        assert_eq!(e.machine, EM_AARCH64, "{what} {}: e_machine", path.display());
        assert!(e.is_static, "{what} {}: names a dynamic loader", path.display());
    }
    // edgebench itself is a glibc program (it compiles C: SQLite, ring).
    let edgebench = Artifacts::from_env().cross_edgebench(Arch::Aarch64);
    assert_eq!(elf(&edgebench).machine, EM_AARCH64, "{}", edgebench.display());
    // It runs (glibc from Debian's arm64 cross sysroot) and finds every
    // artifact where the build put it: the layout a board gets by copying.
    let out = Command::new(QEMU)
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&edgebench)
        .arg("doctor")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EDGEBENCH_SOURCE", Artifacts::from_env().cross_dir(Arch::Aarch64))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("artifacts: built in") && stdout.contains("edgebench-aarch64"), "{stdout}");
    // The Wasm files are this machine's own, byte for byte (portable).
    let here = Artifacts::from_env();
    for w in Workload::BUILTIN {
        let b = w.builtin().unwrap();
        assert_eq!(std::fs::read(here.component(b)).unwrap(), std::fs::read(there.component(b)).unwrap(), "{w}");
    }
}

/// A process under qemu-user, killed (with qemu) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(binary: &Path, args: &[String], w: Workload, log: &Path) -> Server {
        let addr = free_addr();
        let args: Vec<String> = args.iter().map(|a| a.replace("{addr}", &addr.to_string())).collect();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(QEMU)
            .arg(binary)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut server = Server { child, addr };
        server.wait_ready(w, log);
        server
    }

    /// Until the workload's readiness probe is answered as expected, as a
    /// campaign's probe waits (kv's sequence reads the key its probe wrote).
    /// Emulated start-up is slow: the deadline is generous, and no figure is taken.
    fn wait_ready(&mut self, w: Workload, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let probe = http::encode(&w.probe_request(), &self.addr.to_string(), true);
        loop {
            if let Ok(r) = http::one_shot(self.addr, &probe, Duration::from_secs(10)) {
                w.expected_probe().check(r.status, &r.body).unwrap_or_else(|e| panic!("{w} probe: {e}"));
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exited before listening ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "not listening on {}: {}",
                self.addr,
                std::fs::read_to_string(log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of its own for each instance: one the kernel gave out just now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn check(label: &str, server: &Server, w: Workload) {
    let mismatches = edgebench::conformance::send(server.addr, w, label);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn the_arm64_native_server_answers_the_conformance_requests_under_qemu_user() {
    let Some(there) = arm64() else { return };
    let logs = tempfile::tempdir().unwrap();
    for w in Workload::BUILTIN {
        let args = w.server_args("{addr}");
        let server = Server::start(&there.native_server(), &args, w, &logs.path().join(format!("native-{w}.log")));
        check(&format!("arm64 native {w}"), &server, w);
    }
    assert_eq!(common::children_left(), Vec::<String>::new());
}

#[test]
fn the_arm64_embedded_host_answers_the_conformance_requests_under_qemu_user() {
    let Some(there) = arm64() else { return };
    let work = tempfile::tempdir().unwrap();
    for w in Workload::BUILTIN {
        // The components `edgebench build --target aarch64` precompiled for aarch64.
        let component: PathBuf = there.precompiled(w.builtin().unwrap());
        let mut args = vec![
            "serve".to_string(),
            component.display().to_string(),
            "--addr".into(),
            "{addr}".into(),
            "--pool".into(),
            "4".into(),
            "--threads".into(),
            "1".into(),
        ];
        if w.keeps_state() {
            let state = work.path().join(format!("state-{w}"));
            std::fs::create_dir_all(&state).unwrap();
            args.extend(["--dir".into(), format!("{}::/data", state.display())]);
        }
        let server = Server::start(&there.wasmtime_host(), &args, w, &work.path().join(format!("host-{w}.log")));
        check(&format!("arm64 wasmtime-embedded {w}"), &server, w);
    }
    assert_eq!(common::children_left(), Vec::<String>::new());
}
