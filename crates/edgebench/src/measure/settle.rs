//! Settling: a trial starts only once the previous one's teardown is over.
//!
//! Stopping an instance returns when its processes are reaped, but the
//! kernel, a daemon (dockerd, containerd) or a namespace deletion may still be
//! working on the runtime's CPUs. After each trial edgebench waits until
//! those CPUs are quiet (busy below `QUIET` over one `WINDOW`), at most a
//! bound (`--settle-max-ms`), and stores how long it waited (`settle`) and how busy the last
//! window was (`settle_busy`): the wait is recorded, not hidden.

use crate::cpus::Cpus;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(20);
const QUIET: f64 = 0.10;

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Settled {
    pub waited: Duration,
    /// Busy fraction of the CPUs over the last window (0–1).
    pub busy: f64,
    /// Whether they were quiet before the bound.
    pub quiet: bool,
}

/// Waits until `cpus` are quiet (or `bound` passes; one window at least).
pub fn wait(cpus: &Cpus, bound: Duration) -> Settled {
    let start = Instant::now();
    let mut before = times(cpus);
    loop {
        std::thread::sleep(WINDOW);
        let now = times(cpus);
        let (busy, total) = (now.0.saturating_sub(before.0), now.1.saturating_sub(before.1));
        let fraction = if total == 0 { 0.0 } else { busy as f64 / total as f64 };
        let waited = start.elapsed();
        if fraction < QUIET || waited >= bound {
            return Settled { waited, busy: fraction, quiet: fraction < QUIET };
        }
        before = now;
    }
}

/// (busy, total) jiffies of `cpus`, from /proc/stat.
fn times(cpus: &Cpus) -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut out = (0, 0);
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|n| n.strip_prefix("cpu")).and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        if !cpus.contains(cpu) {
            continue;
        }
        let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        out.0 += total.saturating_sub(idle);
        out.1 += total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_cpu_set_settles_and_reports_its_wait() {
        let bound = Duration::from_millis(300);
        let s = wait(&Cpus::allowed(), bound);
        assert!(s.waited >= WINDOW && s.waited <= bound + Duration::from_millis(500), "{s:?}");
        assert!((0.0..=1.0).contains(&s.busy), "{s:?}");
    }
}
