//! The client and the system under test on disjoint CPUs.
//!
//! On a shared CPU the probe's connect loop and the load generator compete
//! with the runtime they measure, so a CPU-hungry runtime is slowed by our own
//! client and the other way round. With a split, edgebench's threads (probe,
//! latency client, load generator) run on the client set and everything it
//! starts for a runtime (processes, containers, VMMs and their vCPU threads,
//! daemons it starts) runs on the SUT set. A 1-CPU host runs shared and the
//! report says so.

use anyhow::{bail, Context as _, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::Serialize;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A set of logical CPU numbers, kept sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cpus(Vec<usize>);

impl Cpus {
    /// Parses a Linux CPU list (`0-2,5`), as in `Cpus_allowed_list`.
    pub fn parse(list: &str) -> Result<Cpus> {
        let mut out = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("{part:?} is not a CPU number or range (write e.g. 0-2,5)");
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) =
                        (a.trim().parse().with_context(bad)?, b.trim().parse().with_context(bad)?);
                    if a > b {
                        bail!("{part:?}: a CPU range goes from low to high");
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.parse().with_context(bad)?),
            }
        }
        if out.is_empty() {
            bail!("{list:?} names no CPU");
        }
        out.sort_unstable();
        out.dedup();
        Ok(Cpus(out))
    }

    /// The CPUs this process may run on (its affinity: taskset, a cgroup cpuset).
    pub fn allowed() -> Cpus {
        match sched_getaffinity(Pid::from_raw(0)) {
            Ok(set) => Cpus((0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()),
            Err(_) => Cpus((0..std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).collect()),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: usize) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    fn to_cpu_set(&self) -> Result<CpuSet> {
        let mut set = CpuSet::new();
        for &c in &self.0 {
            set.set(c).with_context(|| format!("CPU {c} is beyond what this kernel interface can address"))?;
        }
        Ok(set)
    }
}

impl fmt::Display for Cpus {
    /// The compact Linux form (`0-2,5`), which Docker's `--cpuset-cpus` takes too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

/// Where the client and the system under test run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CpuPlan {
    /// `split` (disjoint sets) or `shared` (both on every allowed CPU).
    pub mode: &'static str,
    pub client: Cpus,
    pub sut: Cpus,
    /// Why the plan is what it is (asked for, or forced by the host).
    pub why: String,
}

impl CpuPlan {
    /// `--cpus`: `auto` (split when ≥ 2 CPUs are allowed: the client gets one
    /// CPU in four, at least one, the SUT the rest), `shared`, or
    /// `CLIENT/SUT` CPU lists (e.g. `0/1-3`).
    pub fn resolve(option: &str, allowed: &Cpus) -> Result<CpuPlan> {
        match option.trim() {
            "auto" if allowed.len() >= 2 => {
                let client_n = allowed.len().div_ceil(4);
                Ok(CpuPlan {
                    mode: "split",
                    client: Cpus(allowed.0[..client_n].to_vec()),
                    sut: Cpus(allowed.0[client_n..].to_vec()),
                    why: format!(
                        "default on {} allowed CPUs: one in four for the client, the rest for the SUT",
                        allowed.len()
                    ),
                })
            }
            "auto" => Ok(CpuPlan {
                mode: "shared",
                client: allowed.clone(),
                sut: allowed.clone(),
                why: "only one CPU is allowed: client and SUT share it (their work competes)".into(),
            }),
            "shared" | "off" => Ok(CpuPlan {
                mode: "shared",
                client: allowed.clone(),
                sut: allowed.clone(),
                why: "asked for (--cpus shared): client and SUT share every allowed CPU".into(),
            }),
            explicit => {
                let Some((client, sut)) = explicit.split_once('/') else {
                    bail!("--cpus {explicit:?}: use auto, shared, or CLIENT/SUT CPU lists such as 0/1-3");
                };
                let (client, sut) = (
                    Cpus::parse(client).context("--cpus, the client's CPUs")?,
                    Cpus::parse(sut).context("--cpus, the SUT's CPUs")?,
                );
                for c in client.0.iter().chain(&sut.0) {
                    if !allowed.contains(*c) {
                        bail!("--cpus {explicit:?}: CPU {c} is not one this process may use (allowed: {allowed})");
                    }
                }
                if let Some(c) = client.0.iter().find(|c| sut.contains(**c)) {
                    bail!("--cpus {explicit:?}: CPU {c} is in both sets; the client's and the SUT's must be disjoint");
                }
                Ok(CpuPlan { mode: "split", client, sut, why: "asked for (--cpus)".into() })
            }
        }
    }

    /// Worker threads a runtime that allows it is given: one per SUT CPU.
    pub fn sut_workers(&self) -> usize {
        self.sut.len().max(1)
    }

    /// Pins every thread of edgebench to the client set (threads started later
    /// inherit it), and makes [`pin_sut`] put new SUT processes on the SUT set.
    /// The runtimes run on another host: the client has every CPU here.
    pub fn client_only() -> CpuPlan {
        CpuPlan {
            mode: "client-only",
            client: host_cpus(),
            sut: Cpus::default(),
            why: "the runtimes run on the remote target; this host runs only the client".into(),
        }
    }

    pub fn install(&self) -> Result<()> {
        host_cpus(); // remembered before the first pinning narrows this process's affinity
        let client = self.client.to_cpu_set()?;
        for tid in own_threads() {
            // A thread that exited meanwhile is no error.
            let _ = sched_setaffinity(Pid::from_raw(tid), &client);
        }
        sched_setaffinity(Pid::from_raw(0), &client).context("pinning edgebench to the client's CPUs")?;
        *INSTALLED.lock().unwrap() = Some(self.clone());
        Ok(())
    }
}

/// The CPUs edgebench may use, as they were before any plan pinned it.
pub fn host_cpus() -> Cpus {
    static HOST: OnceLock<Cpus> = OnceLock::new();
    HOST.get_or_init(Cpus::allowed).clone()
}

/// The plan of the running campaign (None: nothing pinned, e.g. in `conformance`).
static INSTALLED: Mutex<Option<CpuPlan>> = Mutex::new(None);

pub fn installed() -> Option<CpuPlan> {
    INSTALLED.lock().unwrap().clone()
}

/// Makes `command` start on the SUT's CPUs (affinity set between fork and
/// exec, inherited by everything it starts) when a plan is installed.
pub fn pin_sut(command: &mut Command) {
    let Some(plan) = installed() else { return };
    let Ok(set) = plan.sut.to_cpu_set() else { return };
    // SAFETY: sched_setaffinity is a plain system call, async-signal-safe.
    unsafe {
        command.pre_exec(move || sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from));
    }
}

/// The SUT's CPUs, when a plan is installed (instances are started on them).
pub fn sut_set() -> Option<Vec<usize>> {
    installed().map(|p| p.sut.0.clone())
}

/// The SUT's CPU list for runtimes that take one (Docker's `--cpuset-cpus`).
pub fn sut_list() -> Option<String> {
    installed().map(|p| p.sut.to_string())
}

/// Worker threads for runtimes that take a number (all allowed CPUs when no plan is installed).
pub fn sut_workers() -> usize {
    installed().map(|p| p.sut_workers()).unwrap_or_else(|| Cpus::allowed().len().max(1))
}

/// Threads of edgebench's own load generator: one per CPU it may run on
/// (the client set under a plan). More would share a CPU, and a pacer
/// spinning on one thread would then wait for the kernel to switch back
/// to it (milliseconds) before it could send.
pub fn client_workers() -> usize {
    installed().map(|p| p.client.len()).unwrap_or_else(|| Cpus::allowed().len()).max(1)
}

/// `Cpus_allowed_list` of a process, as the kernel reports it.
pub fn allowed_of(pid: u32) -> Option<Cpus> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    Cpus::parse(list.trim()).ok()
}

fn own_threads() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_cpu_lists() {
        assert_eq!(Cpus::parse("0-2,5, 7").unwrap().0, vec![0, 1, 2, 5, 7]);
        assert_eq!(Cpus::parse("3,1,2").unwrap().to_string(), "1-3");
        assert_eq!(Cpus::parse("0,2-3,5").unwrap().to_string(), "0,2-3,5");
        for bad in ["", "x", "3-1", "1-", ","] {
            assert!(Cpus::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn auto_splits_one_cpu_in_four_for_the_client() {
        let two = Cpus::parse("0-1").unwrap();
        let p = CpuPlan::resolve("auto", &two).unwrap();
        assert_eq!((p.mode, p.client.to_string(), p.sut.to_string()), ("split", "0".into(), "1".into()));
        let eight = Cpus::parse("0-7").unwrap();
        let p = CpuPlan::resolve("auto", &eight).unwrap();
        assert_eq!((p.client.to_string(), p.sut.to_string(), p.sut_workers()), ("0-1".into(), "2-7".into(), 6));
        let one = Cpus::parse("3").unwrap();
        let p = CpuPlan::resolve("auto", &one).unwrap();
        assert_eq!((p.mode, p.sut.to_string()), ("shared", "3".into()));
        assert!(p.why.contains("only one CPU"));
    }

    #[test]
    fn explicit_sets_must_be_allowed_and_disjoint() {
        let four = Cpus::parse("0-3").unwrap();
        let p = CpuPlan::resolve("0/1-3", &four).unwrap();
        assert_eq!((p.client.len(), p.sut.len()), (1, 3));
        let e = CpuPlan::resolve("0-1/1-3", &four).unwrap_err().to_string();
        assert!(e.contains("CPU 1 is in both sets"), "{e}");
        let e = CpuPlan::resolve("0/9", &four).unwrap_err().to_string();
        assert!(e.contains("CPU 9 is not one this process may use"), "{e}");
        let e = CpuPlan::resolve("fast", &four).unwrap_err().to_string();
        assert!(e.contains("use auto, shared, or CLIENT/SUT"), "{e}");
        assert_eq!(CpuPlan::resolve("shared", &four).unwrap().sut, four);
    }
}
