//! A container's cgroup figures, found from its init process: cgroup v1
//! (`memory.usage_in_bytes`, `memory.max_usage_in_bytes`, `cpuacct.usage`) or
//! v2 (`memory.current`, `memory.peak`, `cpu.stat` `usage_usec`).
//! The directories come from `/proc/<pid>/cgroup` and this process's mount table.

use std::fs;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory_current_bytes: Option<u64>,
    /// The high-water mark since the cgroup was made (kernel ≥ 5.19 on v2).
    pub memory_peak_bytes: Option<u64>,
    pub cpu_ns: Option<u64>,
}

pub fn usage(pid: u32) -> Usage {
    let (Ok(cgroups), Ok(mounts)) =
        (fs::read_to_string(format!("/proc/{pid}/cgroup")), fs::read_to_string("/proc/self/mountinfo"))
    else {
        return Usage::default();
    };
    let dir = |controller: &str| controller_dir(&cgroups, &mounts, controller);
    let read = |dir: &Option<PathBuf>, file: &str| -> Option<u64> {
        fs::read_to_string(dir.as_ref()?.join(file)).ok()?.trim().parse().ok()
    };
    let (memory, cpuacct) = (dir("memory"), dir("cpuacct"));
    if memory.is_some() {
        return Usage {
            memory_current_bytes: read(&memory, "memory.usage_in_bytes"),
            memory_peak_bytes: read(&memory, "memory.max_usage_in_bytes"),
            cpu_ns: read(&cpuacct, "cpuacct.usage"),
        };
    }
    let unified = dir("");
    let cpu_usec = unified.as_ref().and_then(|d| fs::read_to_string(d.join("cpu.stat")).ok()).and_then(|stat| {
        stat.lines().find_map(|l| l.strip_prefix("usage_usec ")).and_then(|v| v.trim().parse::<u64>().ok())
    });
    Usage {
        memory_current_bytes: read(&unified, "memory.current"),
        memory_peak_bytes: read(&unified, "memory.peak"),
        cpu_ns: cpu_usec.map(|us| us * 1000),
    }
}

/// The directory of `pid`'s cgroup for a v1 `controller`, or for the v2
/// hierarchy when `controller` is empty.
pub(crate) fn controller_dir(proc_cgroup: &str, mountinfo: &str, controller: &str) -> Option<PathBuf> {
    let path = proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        wanted.then_some(path)
    })?;
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mount: Vec<&str> = mount.split_whitespace().collect();
        let fs: Vec<&str> = fs.split_whitespace().collect();
        let (root, point) = (*mount.get(3)?, *mount.get(4)?);
        let matches = match (controller.is_empty(), fs.first()?) {
            (true, &"cgroup2") => true,
            (false, &"cgroup") => fs.get(2)?.split(',').any(|o| o == controller),
            _ => false,
        };
        if !matches {
            return None;
        }
        // The cgroup path is relative to the hierarchy's root; the mount may show a subtree.
        let relative = path.strip_prefix(root.trim_end_matches('/')).unwrap_or(path);
        Some(PathBuf::from(point).join(relative.trim_start_matches('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_CGROUP: &str = "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";

    #[test]
    fn finds_v1_controllers_and_the_unified_hierarchy() {
        let dir = |c| controller_dir(V1_CGROUP, V1_MOUNTS, c);
        assert_eq!(dir("memory"), Some(PathBuf::from("/sys/fs/cgroup/memory/docker/abc")));
        assert_eq!(dir("cpuacct"), Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/docker/abc")));
        assert_eq!(dir(""), Some(PathBuf::from("/sys/fs/cgroup/unified/docker/abc")));
        assert_eq!(dir("pids"), None);
    }

    #[test]
    fn finds_v2_only() {
        let mounts = "25 30 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cgroup = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(controller_dir(cgroup, mounts, "memory"), None);
        assert_eq!(
            controller_dir(cgroup, mounts, ""),
            Some(PathBuf::from("/sys/fs/cgroup/system.slice/docker-abc.scope"))
        );
    }
}
