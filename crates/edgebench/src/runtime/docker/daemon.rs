//! A dockerd that edgebench starts itself when none answers, and stops again
//! (by pid) at the end of the campaign; and the daemon's own memory.
//!
//! Where runsc is installed, that daemon gets gVisor's OCI runtimes
//! ([`crate::runtime::gvisor::daemon_runtimes`]) from a config file written
//! in the campaign's work directory: the host's `/etc/docker/daemon.json`
//! (when there is one) with those runtimes added. The host's file is never
//! changed, and a daemon edgebench did not start is never reconfigured.

use super::engine::{Engine, DEFAULT_SOCKET};
use crate::measure::resources;
use anyhow::{bail, Context as _, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// dockerd took ~1 s here; a first start (new data root, iptables) can take longer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// dockerd stops its containers and its containerd before exiting.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const PID_FILE: &str = "/var/run/docker.pid";

pub struct StartedDaemon {
    child: Child,
    pub log: PathBuf,
}

/// The host's own daemon configuration, read (never written) when edgebench
/// writes one for the daemon it starts.
const HOST_CONFIG: &str = "/etc/docker/daemon.json";

/// dockerd on the controlled PATH (the one it would be started with).
pub fn find_dockerd(env: &[(String, String)]) -> Option<PathBuf> {
    find_on_path(env, "dockerd")
}

/// `program` on the controlled PATH of `env`.
pub fn find_on_path(env: &[(String, String)], program: &str) -> Option<PathBuf> {
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str())?;
    std::env::split_paths(path).map(|d| d.join(program)).find(|p| crate::runtime::is_executable(p))
}

/// Writes the configuration of the daemon edgebench starts to `path` when
/// there is something to add to the host's (gVisor's runtimes, where runsc
/// is installed on the PATH of `env`); `false`: nothing written, dockerd
/// reads the host's own.
pub fn write_config(path: &Path, env: &[(String, String)]) -> Result<bool> {
    let Some(runsc) = find_on_path(env, "runsc") else { return Ok(false) };
    let mut config = match std::fs::read_to_string(HOST_CONFIG) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .with_context(|| format!("{HOST_CONFIG} is not JSON (dockerd would refuse it too)"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {HOST_CONFIG}"))),
    };
    let Some(object) = config.as_object_mut() else { bail!("{HOST_CONFIG} is not a JSON object") };
    let runtimes = object.entry("runtimes").or_insert_with(|| serde_json::json!({}));
    let Some(runtimes) = runtimes.as_object_mut() else { bail!("`runtimes` in {HOST_CONFIG} is not an object") };
    if let serde_json::Value::Object(ours) = crate::runtime::gvisor::daemon_runtimes(&runsc) {
        runtimes.extend(ours);
    }
    std::fs::write(path, serde_json::to_vec_pretty(&config)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Starts `dockerd` on the default socket with `config` (else the host's
/// own), logging to `log`, and waits (bounded) until its API answers.
pub fn start(
    dockerd: &Path,
    env: &[(String, String)],
    config: Option<&Path>,
    log: PathBuf,
) -> Result<(StartedDaemon, Engine)> {
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(dockerd);
    command.args(["--host", &format!("unix://{DEFAULT_SOCKET}")]);
    if let Some(config) = config {
        command.arg("--config-file").arg(config);
    }
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // Its own group: Ctrl-C in the terminal reaches edgebench, which then
        // cleans up and stops the daemon in order.
        .process_group(0);
    // The daemon works for every container start: it is part of the system under test.
    crate::cpus::pin_sut(&mut command);
    // If edgebench dies without its teardown, dockerd still shuts down
    // cleanly (containers first). Note: the signal follows the *thread* that
    // started it, so start and stop it on one thread.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
    }
    let child = command.spawn().with_context(|| format!("starting {}", dockerd.display()))?;
    let mut daemon = StartedDaemon { child, log };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!("dockerd exited at start ({status}); log {}: {}", daemon.log.display(), daemon.log_tail());
        }
        if Path::new(DEFAULT_SOCKET).exists() {
            if let Ok(engine) = Engine::connect(Path::new(DEFAULT_SOCKET), Duration::from_secs(1)) {
                return Ok((daemon, engine));
            }
        }
        if Instant::now() > deadline {
            let tail = daemon.log_tail();
            daemon.stop();
            bail!("dockerd did not answer within {START_TIMEOUT:?}; log {}: {tail}", daemon.log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl StartedDaemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, a bounded wait, then SIGKILL; safe to call twice.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("edgebench: dockerd did not stop within {STOP_TIMEOUT:?}: killing it");
            let _ = kill(pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

impl Drop for StartedDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The dockerd serving the default socket, from its pid file.
pub fn running_dockerd() -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()?;
    (comm(pid).as_deref() == Some("dockerd")).then_some(pid)
}

/// dockerd and the containerd it runs. (Its tree also holds one docker-proxy
/// per published port: those belong to the instances, not to the daemon.)
pub fn daemon_pids(dockerd: u32) -> Vec<u32> {
    resources::process_tree(dockerd)
        .into_iter()
        .filter(|p| matches!(comm(*p).as_deref(), Some("dockerd" | "containerd")))
        .collect()
}

pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string())
}
