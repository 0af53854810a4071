//! The cgroups of edge profiles: one per CPU or memory profile, made by the
//! campaign, cgroup v2 (`cpu.max`, `memory.max`, `memory.swap.max`) or, where
//! the v2 hierarchy lacks those controllers, v1 (`cpu.cfs_quota_us` under our
//! own cpu cgroup, `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`
//! under our own memory cgroup). An instance is born in them
//! (`runtime::process::launch`), so its cold start runs under the constraint
//! without the cost of a migration in it: on v1 the spawner thread joins the
//! profile's cgroups (`tasks`) before t0 and clones the instance there; on v2,
//! where a thread cannot leave its process's cgroup, the new process moves
//! itself (`cgroup.procs`) between clone and exec, inside the cold start.

use super::profile::{EdgeProfile, CPU_PERIOD_US};
use crate::runtime::docker::cgroup::controller_dir;
use anyhow::{bail, Context as _, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// The v2 mount point.
    V2(PathBuf),
    /// This process's own cgroups of the v1 `cpu` and `memory` controllers.
    V1 { cpu: PathBuf, memory: PathBuf },
}

impl Hierarchy {
    /// Where this host keeps CPU and memory controllers, or why neither way works.
    pub fn detect() -> Result<Hierarchy, String> {
        let mounts = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("reading mountinfo: {e}"))?;
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        if let Some(v2) = mount_point(&mounts, "cgroup2") {
            let controllers = fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            if has("cpu") && has("memory") {
                return Ok(Hierarchy::V2(v2));
            }
        }
        match (controller_dir(&own, &mounts, "cpu"), controller_dir(&own, &mounts, "memory")) {
            (Some(cpu), Some(memory)) => Ok(Hierarchy::V1 { cpu, memory }),
            _ => Err("no cgroup hierarchy with the cpu and memory controllers (neither v2 nor v1) is mounted: CPU \
                      and memory profiles need one"
                .into()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Hierarchy::V2(_) => "cgroup v2",
            Hierarchy::V1 { .. } => "cgroup v1",
        }
    }

    /// The directories that hold a campaign's cgroups (`base` is a name of ours).
    fn parents(&self, base: &str) -> Vec<PathBuf> {
        match self {
            Hierarchy::V2(root) => vec![root.join(base)],
            Hierarchy::V1 { cpu, memory } => vec![cpu.join(base), memory.join(base)],
        }
    }
}

fn mount_point(mountinfo: &str, fstype: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let point = mount.split_whitespace().nth(4)?;
        (fs.split_whitespace().next()? == fstype).then(|| PathBuf::from(point))
    })
}

fn open_for_write(path: &Path) -> Result<File> {
    File::options().write(true).open(path).with_context(|| format!("opening {}", path.display()))
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// One profile's cgroup(s), with its limits in force.
#[derive(Debug)]
pub struct ProfileCgroup {
    /// The directories an instance enters (v2: one; v1: the cpu or memory one).
    pub dirs: Vec<PathBuf>,
    /// The limit files as read back after writing them (`file=value`).
    pub readback: Vec<String>,
}

impl ProfileCgroup {
    /// Makes the cgroup of `profile` under `parents` and writes its limits.
    pub fn create(h: &Hierarchy, base: &str, profile: &EdgeProfile) -> Result<ProfileCgroup> {
        let name = profile.name();
        let mut written: Vec<(PathBuf, String)> = Vec::new();
        let dirs = match h {
            Hierarchy::V2(root) => {
                // Controllers are enabled top-down: the root's children, then ours.
                for dir in [root.clone(), root.join(base)] {
                    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    write(&dir.join("cgroup.subtree_control"), "+cpu +memory")?;
                }
                let dir = root.join(base).join(&name);
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                if let Some(q) = profile.cpu_quota_us() {
                    written.push((dir.join("cpu.max"), format!("{q} {CPU_PERIOD_US}")));
                }
                if let Some(b) = profile.memory_bytes() {
                    written.push((dir.join("memory.max"), b.to_string()));
                    if dir.join("memory.swap.max").exists() {
                        written.push((dir.join("memory.swap.max"), "0".into()));
                    }
                }
                vec![dir]
            }
            Hierarchy::V1 { cpu, memory } => {
                let mut dirs = Vec::new();
                if let Some(q) = profile.cpu_quota_us() {
                    let dir = cpu.join(base).join(&name);
                    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    written.push((dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()));
                    written.push((dir.join("cpu.cfs_quota_us"), q.to_string()));
                    dirs.push(dir);
                }
                if let Some(b) = profile.memory_bytes() {
                    let dir = memory.join(base).join(&name);
                    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    written.push((dir.join("memory.limit_in_bytes"), b.to_string()));
                    // Without swap accounting the file is absent: then swap is not capped (said in the readback).
                    if dir.join("memory.memsw.limit_in_bytes").exists() {
                        written.push((dir.join("memory.memsw.limit_in_bytes"), b.to_string()));
                    }
                    dirs.push(dir);
                }
                dirs
            }
        };
        let mut readback = Vec::new();
        for (file, value) in &written {
            write(file, value)?;
            let back = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let back = back.trim().to_string();
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if back != *value && !(name == "memory.max" || name.starts_with("memory.limit")) {
                bail!("{} reads back {back:?} after writing {value:?}", file.display());
            }
            readback.push(format!("{}={back}", file.display()));
        }
        Ok(ProfileCgroup { dirs, readback })
    }

    /// v2: `cgroup.procs` of each directory, open for the new process (which writes "0").
    pub fn procs_files(&self) -> Result<Vec<File>> {
        self.dirs.iter().map(|d| open_for_write(&d.join("cgroup.procs"))).collect()
    }

    /// v1: for each directory, its `tasks` file and that of the cgroup the
    /// campaign's parent came from (the process's own), open for the spawner
    /// thread to go there and back.
    pub fn thread_moves(&self) -> Result<Vec<(File, File)>> {
        self.dirs
            .iter()
            .map(|d| {
                let home = d.parent().and_then(Path::parent).context("a profile cgroup without parents")?;
                Ok((open_for_write(&d.join("tasks"))?, open_for_write(&home.join("tasks"))?))
            })
            .collect()
    }

    /// OOM kills in this cgroup so far (v2 `memory.events`, v1 `memory.oom_control`).
    pub fn oom_kills(&self) -> u64 {
        self.dirs
            .iter()
            .flat_map(|d| [d.join("memory.events"), d.join("memory.oom_control")])
            .filter_map(|f| fs::read_to_string(f).ok())
            .filter_map(|text| {
                text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// Removes the directories (empty once the instances are gone).
    pub fn remove(&self) -> Vec<String> {
        self.dirs.iter().filter_map(|d| fs::remove_dir(d).err().map(|e| format!("{}: {e}", d.display()))).collect()
    }
}

/// Removes a campaign's parent directories (after its profiles' ones).
pub fn remove_base(h: &Hierarchy, base: &str) {
    for dir in h.parents(base) {
        let _ = fs::remove_dir(dir);
    }
}

/// Removes what edge profiles of dead edgebench processes left (`edgebench-PID`).
pub fn remove_leftovers(h: &Hierarchy) {
    let parents: Vec<PathBuf> = match h {
        Hierarchy::V2(root) => vec![root.clone()],
        Hierarchy::V1 { cpu, memory } => vec![cpu.clone(), memory.clone()],
    };
    for parent in parents {
        let Ok(entries) = fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_prefix("edgebench-").and_then(|p| p.parse::<u32>().ok()) else { continue };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Ok(children) = fs::read_dir(entry.path()) {
                for child in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = fs::remove_dir(child.path());
                }
            }
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The tightest CPU quota (CPUs) and memory limit (bytes) over `pid`'s
/// cgroup and its ancestors: what is in force for that process.
pub fn limits_in_force(pid: u32) -> (Option<f64>, Option<u64>) {
    let (Ok(cgroups), Ok(mounts)) =
        (fs::read_to_string(format!("/proc/{pid}/cgroup")), fs::read_to_string("/proc/self/mountinfo"))
    else {
        return (None, None);
    };
    let read = |p: PathBuf| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let mut cpu: Option<f64> = None;
    let mut memory: Option<u64> = None;
    let mut take_cpu = |c: f64| cpu = Some(cpu.map_or(c, |x| x.min(c)));
    let mut take_mem = |m: u64| memory = Some(memory.map_or(m, |x| x.min(m)));
    // v2: cpu.max "QUOTA PERIOD" or "max PERIOD"; memory.max bytes or "max".
    if let Some(dir) = controller_dir(&cgroups, &mounts, "") {
        for d in dir.ancestors().take_while(|d| d.join("cgroup.procs").exists()) {
            if let Some(v) = read(d.join("cpu.max")) {
                let mut it = v.split_whitespace();
                if let (Some(Ok(q)), Some(Ok(p))) = (it.next().map(str::parse::<f64>), it.next().map(str::parse::<f64>))
                {
                    take_cpu(q / p);
                }
            }
            if let Some(Ok(m)) = read(d.join("memory.max")).map(|v| v.parse::<u64>()) {
                take_mem(m);
            }
        }
    }
    if let Some(dir) = controller_dir(&cgroups, &mounts, "cpu") {
        for d in dir.ancestors().take_while(|d| d.join("cgroup.procs").exists()) {
            let q = read(d.join("cpu.cfs_quota_us")).and_then(|v| v.parse::<i64>().ok()).filter(|q| *q > 0);
            let p = read(d.join("cpu.cfs_period_us")).and_then(|v| v.parse::<i64>().ok()).filter(|p| *p > 0);
            if let (Some(q), Some(p)) = (q, p) {
                take_cpu(q as f64 / p as f64);
            }
        }
    }
    if let Some(dir) = controller_dir(&cgroups, &mounts, "memory") {
        for d in dir.ancestors().take_while(|d| d.join("cgroup.procs").exists()) {
            // v1's "no limit" is a huge number (a page-rounded i64::MAX): not a limit.
            if let Some(Ok(m)) = read(d.join("memory.limit_in_bytes")).map(|v| v.parse::<u64>()) {
                if m < 1 << 60 {
                    take_mem(m);
                }
            }
        }
    }
    (cpu, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_in_a_mount_table() {
        let mounts = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(mount_point(mounts, "cgroup2"), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(mount_point(mounts, "tmpfs"), None);
    }
}
