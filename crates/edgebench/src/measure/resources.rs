//! Memory and CPU of an instance's processes, read from /proc.
//!
//! Memory: `smaps_rollup` of every process (PSS splits shared pages fairly
//! between the processes that map them; anonymous and file-backed PSS are
//! kept apart because runtimes differ most in shared-library pages).
//! CPU: each process's CPU clock (ns), exited threads included.

use std::collections::{BTreeSet, HashMap};
use std::fs;

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub pss_anon_kib: u64,
    pub pss_file_kib: u64,
}

impl std::ops::AddAssign for Memory {
    fn add_assign(&mut self, m: Memory) {
        self.rss_kib += m.rss_kib;
        self.pss_kib += m.pss_kib;
        self.pss_anon_kib += m.pss_anon_kib;
        self.pss_file_kib += m.pss_file_kib;
    }
}

/// `root` and all its descendants that are alive now.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = parent_of(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if tree.insert(pid) {
            todo.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    tree.into_iter().filter(|p| fs::metadata(format!("/proc/{p}")).is_ok()).collect()
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn memory(pids: &[u32]) -> Memory {
    let mut total = Memory::default();
    for pid in pids {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else { continue };
        total += parse_smaps_rollup(&text);
    }
    total
}

/// Like [`memory`], but an instance whose memory cannot be read is an error
/// with the reason, never a valid 0 KiB: no live process, or a
/// `smaps_rollup` that exists but cannot be read (permissions, a kernel
/// without it). A process that exits between listing and reading is skipped.
pub fn memory_checked(pids: &[u32]) -> Result<Memory, String> {
    if pids.is_empty() {
        return Err("the instance has no live process to read memory from".into());
    }
    let mut total = Memory::default();
    let mut read = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/smaps_rollup");
        match fs::read_to_string(&path) {
            Ok(text) => {
                total += parse_smaps_rollup(&text);
                read += 1;
            }
            Err(_) if fs::metadata(format!("/proc/{pid}")).is_err() => {} // exited meanwhile
            Err(e) => return Err(format!("{path}: {e}")),
        }
    }
    if read == 0 {
        return Err(format!("every process of the instance ({pids:?}) exited before its memory was read"));
    }
    Ok(total)
}

pub fn parse_smaps_rollup(text: &str) -> Memory {
    let mut m = Memory::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
        let Ok(kib) = value.parse::<u64>() else { continue };
        match key {
            "Rss:" => m.rss_kib = kib,
            "Pss:" => m.pss_kib = kib,
            "Pss_Anon:" => m.pss_anon_kib = kib,
            "Pss_File:" => m.pss_file_kib = kib,
            _ => {}
        }
    }
    m
}

/// CPU time of the processes `pids`, in nanoseconds: each process's CPU
/// clock (`clock_getcpuclockid`), which counts every thread it ever ran, the
/// ones that have exited too (a thread-per-connection server's threads end
/// with their connections). Falls back to the live threads' `schedstat`.
pub fn cpu_ns(pids: &[u32]) -> u64 {
    pids.iter().map(|&pid| process_cpu_ns(pid).unwrap_or_else(|| live_threads_cpu_ns(pid))).sum()
}

fn process_cpu_ns(pid: u32) -> Option<u64> {
    let clock = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid as i32)).ok()?;
    let t = nix::time::clock_gettime(clock).ok()?;
    Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

fn live_threads_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        let m = memory(&[me]);
        assert!(m.rss_kib > 0 && m.pss_kib > 0 && m.pss_kib <= m.rss_kib, "{m:?}");
        let before = cpu_ns(&[me]);
        // A thread that burns 10 ms of its own CPU time and exits still counts.
        std::thread::spawn(|| {
            let own = || nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
            let start = own();
            while (own() - start) < nix::sys::time::TimeSpec::from(std::time::Duration::from_millis(10)) {}
        })
        .join()
        .unwrap();
        assert!(cpu_ns(&[me]) >= before + 10_000_000, "exited threads' CPU is counted");
        assert!(live_threads_cpu_ns(me) > 0);
    }

    #[test]
    fn parses_rollup_fields() {
        let m = parse_smaps_rollup("Rss:  10 kB\nPss:   6 kB\nPss_Anon: 2 kB\nPss_File: 4 kB\n");
        assert_eq!(m, Memory { rss_kib: 10, pss_kib: 6, pss_anon_kib: 2, pss_file_kib: 4 });
    }
}

#[cfg(test)]
mod checked_tests {
    use super::*;

    #[test]
    fn unreadable_memory_is_an_error_not_zero() {
        assert!(memory_checked(&[]).unwrap_err().contains("no live process"));
        // A pid that does not exist (beyond pid_max).
        let e = memory_checked(&[u32::MAX - 1]).unwrap_err();
        assert!(e.contains("exited before its memory was read"), "{e}");
        let me = memory_checked(&[std::process::id()]).unwrap();
        assert!(me.pss_kib > 0 && me.rss_kib >= me.pss_kib, "{me:?}");
    }
}
