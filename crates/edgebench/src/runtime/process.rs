//! Runtimes whose instance is a process tree started by edgebench.
//!
//! Every instance runs in its own process group (so stop reaches everything
//! it started), dies with edgebench (parent-death signal), gets exactly the
//! campaign's controlled environment, and logs to its own file.

use super::{warm_start_per_request, Instance, WarmStart};
use crate::Workload;
use anyhow::{Context as _, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

mod launch;
pub use launch::Launch;

const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct ProcessInstance {
    pid: Pid,
    /// The leader's wait status, once reaped.
    status: Option<ExitStatus>,
    addr: SocketAddr,
    launched_at: Instant,
    log: PathBuf,
    /// Removed when the instance stops (e.g. a `kv` state directory).
    scratch: Option<PathBuf>,
    exit: Option<String>,
    stopped: bool,
    warm: WarmMode,
    /// The component the process serves, when it takes more tenants of it
    /// through the embedded host's tenant API.
    tenant_source: Option<PathBuf>,
}

/// What a warm start is for a process runtime.
#[derive(Clone, Copy, Debug)]
pub enum WarmMode {
    /// One process is one instance: every start is a cold start.
    None,
    /// The runtime makes a fresh instance per request; `internal_header`
    /// names the response header carrying its own instantiate time.
    PerRequest { internal_header: Option<&'static str> },
}

/// Spawns `command` as an instance. t0 is taken right before the clone.
pub fn spawn(
    command: Launch,
    env: &[(String, String)],
    addr: SocketAddr,
    log: PathBuf,
    scratch: Option<PathBuf>,
    warm: WarmMode,
) -> Result<ProcessInstance> {
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let program = command.get_program().to_owned();
    let prepared = launch::Prepared::new(command, env, out).with_context(|| format!("starting {program:?}"))?;
    let (pid, launched_at) = spawn_from_lasting_thread(prepared).with_context(|| format!("starting {program:?}"))?;
    Ok(ProcessInstance {
        pid: Pid::from_raw(pid),
        status: None,
        addr,
        launched_at,
        log,
        scratch,
        exit: None,
        stopped: false,
        warm,
        tenant_source: None,
    })
}

type SpawnRequest = (launch::Prepared, std::sync::mpsc::Sender<std::io::Result<(libc::pid_t, Instant)>>);

/// Spawns from one thread that lives as long as edgebench, and returns the
/// child with t0 (taken on that thread just before the clone). The
/// parent-death signal fires when the *thread* that made the child exits,
/// not the process: an instance launched from a short-lived thread
/// (scaling's concurrent starts) would be killed as soon as its launcher
/// ended.
fn spawn_from_lasting_thread(prepared: launch::Prepared) -> std::io::Result<(libc::pid_t, Instant)> {
    let sender = spawner().lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (reply, answer) = std::sync::mpsc::channel();
    sender.send((prepared, reply)).map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Starts the spawner thread if it is not running. It inherits the network
/// namespace of the thread that starts it, so this is called before any
/// thread enters another namespace (`network::topology::in_netns`).
pub fn start_spawner() {
    spawner();
}

fn spawner() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>> {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Mutex, OnceLock};
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("edgebench-spawner".into())
            .spawn(move || {
                // Every signal blocked on this thread: none may reach a child
                // before it has reset edgebench's handlers (launch.rs).
                let _ = nix::sys::signal::pthread_sigmask(
                    nix::sys::signal::SigmaskHow::SIG_SETMASK,
                    Some(&nix::sys::signal::SigSet::all()),
                    None,
                );
                for (prepared, reply) in rx {
                    let _ = reply.send(prepared.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(tx)
    })
}

impl ProcessInstance {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// The instance takes more tenants of `component` (the embedded host
    /// started with `--tenant-api`).
    pub fn serving_tenants(mut self, component: PathBuf) -> ProcessInstance {
        self.tenant_source = Some(component);
        self
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    fn group(&self) -> Pid {
        self.pid
    }

    /// The leader's status if it has exited (reaped on the first call that sees it).
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            match self.reap(0) {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn reap(&mut self, flags: libc::c_int) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            let mut raw = 0;
            // SAFETY: waiting for our own child, by pid.
            match unsafe { libc::waitpid(self.pid.as_raw(), &mut raw, flags) } {
                -1 => return Err(std::io::Error::last_os_error()),
                0 => return Ok(None),
                _ => self.status = Some(ExitStatus::from_raw(raw)),
            }
        }
        Ok(self.status)
    }
}

impl Instance for ProcessInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn launched_at(&self) -> Instant {
        self.launched_at
    }

    fn exited(&mut self) -> Option<String> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.try_wait() {
                self.exit = Some(format!("{status}; log: {}", self.log_tail()));
            }
        }
        self.exit.clone()
    }

    fn pids(&self) -> Vec<u32> {
        if self.exit.is_some() {
            return vec![];
        }
        crate::measure::resources::process_tree(self.pid())
    }

    fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let _ = killpg(self.group(), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while self.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Whatever is left of the group (the leader too, if it ignored SIGTERM).
        let _ = killpg(self.group(), Signal::SIGKILL);
        self.wait().context("reaping the instance")?;
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    /// A host that prints `edgebench-host-ready {...}` (our embedded
    /// Wasmtime host) gives its start-up steps: `exec` (t0 → its `main`, on
    /// the shared CLOCK_MONOTONIC) and, after it, each step's end.
    fn launch_phases(&self) -> Vec<(String, Duration)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let Some(line) = text.lines().find_map(|l| l.strip_prefix("edgebench-host-ready ")) else { return Vec::new() };
        let Ok(steps) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) else {
            return Vec::new();
        };
        let Some(main_mono) = steps.get("main_mono_ns").and_then(|v| v.as_u64()) else { return Vec::new() };
        // t0 on CLOCK_MONOTONIC (which `Instant` reads on Linux): now, less the time since t0.
        let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else { return Vec::new() };
        let now_ns = now.tv_sec() as u128 * 1_000_000_000 + now.tv_nsec() as u128;
        let t0_ns = now_ns.saturating_sub(self.launched_at.elapsed().as_nanos());
        let Some(exec) = (main_mono as u128).checked_sub(t0_ns) else { return Vec::new() };
        let exec = Duration::from_nanos(exec as u64);
        let mut phases = vec![("exec".to_string(), exec)];
        for (key, value) in &steps {
            if let (Some(step), Some(ns)) = (key.strip_suffix("_ns").filter(|k| *k != "main_mono"), value.as_u64()) {
                phases.push((step.to_string(), exec + Duration::from_nanos(ns)));
            }
        }
        phases.sort_by_key(|(_, at)| *at);
        phases
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    fn add_tenant(&mut self, name: &str) -> Option<Result<()>> {
        let source = self.tenant_source.as_ref()?;
        let request = crate::workload::HttpRequest {
            method: "PUT".into(),
            target: format!("/_edgebench/tenants/{name}"),
            headers: Vec::new(),
            body: source.as_os_str().as_encoded_bytes().to_vec(),
        };
        let bytes = crate::measure::http::encode(&request, &self.addr.to_string(), true);
        Some(match crate::measure::http::one_shot(self.addr, &bytes, Duration::from_secs(10)) {
            Ok(r) if r.status == 201 => Ok(()),
            Ok(r) => Err(anyhow::anyhow!("tenant {name}: {} {}", r.status, String::from_utf8_lossy(&r.body).trim())),
            Err(e) => Err(anyhow::anyhow!("tenant {name}: {e}")),
        })
    }

    fn warm_start(&mut self, workload: Workload) -> WarmStart {
        match self.warm {
            WarmMode::None => {
                WarmStart::NotApplicable("one process is one instance: every start is a cold start".into())
            }
            WarmMode::PerRequest { internal_header } => warm_start_per_request(self.addr, workload, internal_header),
        }
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// For a workload that keeps state: a fresh directory, preopened for the
/// guest as `/data` with `--dir HOST::/data` (the Wasmtime CLI's and our
/// host's flag); removed with the instance.
pub fn preopened_state_dir(
    command: &mut Command,
    ctx: &super::Context<'_>,
    spec: &super::LaunchSpec<'_>,
) -> Result<Option<PathBuf>> {
    if !spec.workload.keeps_state() {
        return Ok(None);
    }
    let dir = scratch_dir(&ctx.work_dir, &spec.label)?;
    anyhow::ensure!(
        !dir.to_string_lossy().contains("::"),
        "{} contains `::`, which --dir HOST::GUEST cannot carry: choose an --out without it",
        dir.display()
    );
    command.arg("--dir").arg(format!("{}::/data", dir.display()));
    Ok(Some(dir))
}

/// A fresh directory for one instance's state (created empty).
pub fn scratch_dir(work_dir: &std::path::Path, label: &str) -> Result<PathBuf> {
    let dir = work_dir.join("state").join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A command for a helper edgebench waits for (`nft`, `ip`, an AOT compiler,
/// `wash oci push`): in a process group of its own, so that a Ctrl-C at the
/// terminal reaches edgebench, which ends the trial as interrupted, and not
/// the helper, whose death would be stored as the trial's failure.
pub fn helper(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_outlives_the_thread_that_launched_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let mut instance = std::thread::spawn(move || {
            let mut command = Launch::new("sleep");
            command.arg("30");
            spawn(command, &env, addr, log, None, WarmMode::None).unwrap()
        })
        .join()
        .unwrap();
        // The launching thread has exited: a parent-death signal tied to it would have fired.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(instance.exited(), None, "still running after its launcher thread ended");
        instance.stop().unwrap();
    }

    #[test]
    fn a_helper_runs_in_a_process_group_of_its_own() {
        let mut child = helper("sleep").arg("5").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let group = nix::unistd::getpgid(Some(pid)).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(group, pid, "the helper leads its own group");
        assert_ne!(group, nix::unistd::getpgrp(), "not edgebench's group, which a terminal's Ctrl-C reaches");
    }

    #[test]
    fn an_instance_gets_its_environment_directory_group_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let env =
            vec![("PATH".to_string(), "/usr/bin:/bin".to_string()), ("EDGEBENCH_X".to_string(), "42".to_string())];
        let mut command = Launch::new("sh");
        command.args(["-c", "echo \"$EDGEBENCH_X $(pwd) $(ps -o pgid= $$) $$\"; echo oops >&2"]);
        command.current_dir(dir.path());
        let mut instance = spawn(command, &env, addr, log.clone(), None, WarmMode::None).unwrap();
        let status = instance.wait().unwrap();
        assert!(status.success(), "{status}");
        let text = std::fs::read_to_string(&log).unwrap();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields[0], "42", "{text}");
        assert_eq!(std::path::Path::new(fields[1]), dir.path().canonicalize().unwrap(), "{text}");
        assert_eq!(fields[2], fields[3], "leads its own process group: {text}");
        assert_eq!(fields[4], "oops", "stderr goes to the log too: {text}");
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        for program in ["edgebench-no-such-program", "/nonexistent/edgebench-server"] {
            let log = dir.path().join("x.log");
            let Err(e) = spawn(Launch::new(program), &env, addr, log, None, WarmMode::None) else {
                panic!("{program} started")
            };
            let text = format!("{e:#}");
            assert!(text.contains(program) && text.contains("No such file"), "{text}");
        }
    }
}
