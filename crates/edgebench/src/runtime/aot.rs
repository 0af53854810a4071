//! Ahead-of-time compiles done in `prepare`, outside every timed interval,
//! and measured apart: wall time and the compiler's peak RSS are kept per
//! configuration and stored by the campaign as samples of phase `prepare`
//! (metrics `aot_compile`, ms, and `aot_compile_memory`, KiB).

use super::ExtraResource;
use crate::Workload;
use anyhow::{bail, Context as _, Result};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// The compiles of one backend, by (workload, variant).
#[derive(Default)]
pub struct AotCompiles {
    figures: Mutex<HashMap<(Workload, String), Vec<ExtraResource>>>,
}

impl AotCompiles {
    /// Where `runtime`'s compiled artifact for `workload` goes in this campaign.
    pub fn output(work_dir: &Path, runtime: &str, workload: Workload) -> PathBuf {
        work_dir.join("aot").join(format!("{runtime}-{workload}.aot"))
    }

    /// Runs `command` (a compiler writing `output`) with `env` only, its
    /// output in `log`, and keeps its figures.
    pub fn compile(
        &self,
        mut command: Command,
        env: &[(String, String)],
        output: &Path,
        log: &Path,
        key: (Workload, &str),
    ) -> Result<()> {
        for dir in [output.parent(), log.parent()].into_iter().flatten() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(output);
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        command.stdout(out.try_clone()?).stderr(out);
        crate::cpus::pin_sut(&mut command);
        // Its own process group: a Ctrl-C interrupts edgebench, not the compile (see process::helper).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let start = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {:?}", command.get_program()))?;
        // Reaped with wait4 for this child's own peak RSS (getrusage of all
        // children would mix in every earlier child of edgebench).
        let (status, max_rss_kib) = wait4(child.id())?;
        let elapsed = start.elapsed();
        if status != 0 || !output.exists() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!("{:?} failed (wait status {status}): {}", command.get_program(), tail.join(" | "));
        }
        let figures = vec![
            ExtraResource { metric: "aot_compile".into(), value: elapsed.as_secs_f64() * 1e3, unit: "ms".into() },
            ExtraResource { metric: "aot_compile_memory".into(), value: max_rss_kib as f64, unit: "KiB".into() },
        ];
        self.figures.lock().unwrap().insert((key.0, key.1.to_string()), figures);
        Ok(())
    }

    pub fn figures(&self, workload: Workload, variant: &str) -> Vec<ExtraResource> {
        self.figures.lock().unwrap().get(&(workload, variant.to_string())).cloned().unwrap_or_default()
    }
}

/// Waits for `pid`; returns its wait status and peak RSS in KiB.
fn wait4(pid: u32) -> Result<(i32, i64)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; both pointers are live for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    if r < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    Ok((status, usage.ru_maxrss))
}
