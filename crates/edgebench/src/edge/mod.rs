//! Edge conditions as a campaign factor (issue 21): each trial runs under an
//! edge profile (profile.rs), interleaved with the others in the seeded
//! order. CPU and memory profiles make every process an instance's launch
//! starts be born in the profile's cgroup (cgroup.rs), and a
//! container gets the same limits from Docker; after the instance is up, the
//! limits in force for each of its processes are read back and stored
//! (`edge_in_force`), and a trial whose processes are not under them fails.

pub mod cgroup;
pub mod link;
pub mod profile;

pub use profile::{EdgeProfile, LinkPreset};

use anyhow::{bail, Context as _, Result};
use cgroup::{Hierarchy, ProfileCgroup};
use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

/// The profile in force for launches now (set for one trial at a time).
static CURRENT: Mutex<Option<Arc<InForce>>> = Mutex::new(None);

pub struct InForce {
    pub profile: EdgeProfile,
    /// v2: `cgroup.procs` of the profile's cgroup: a new instance process writes "0" there.
    pub procs: Vec<File>,
    /// v1: (`tasks` of a profile cgroup, `tasks` of the spawner's own cgroup
    /// there): the spawner thread writes its id to the first before t0 and
    /// to the second once the instance is cloned.
    pub thread_moves: Vec<(File, File)>,
}

impl InForce {
    /// Whether a launch now must place its processes in a cgroup.
    pub fn places(&self) -> bool {
        !self.procs.is_empty() || !self.thread_moves.is_empty()
    }
}

/// The profile in force for the launch under way, if any.
pub fn in_force() -> Option<Arc<InForce>> {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Docker's limits for a container started now: (nano CPUs, memory bytes).
pub fn container_limits() -> (Option<i64>, Option<i64>) {
    match in_force() {
        Some(f) => (
            f.profile.cpu_quota_us().map(|q| (q * 1000 * 1_000_000 / profile::CPU_PERIOD_US) as i64),
            f.profile.memory_bytes().map(|b| b as i64),
        ),
        None => (None, None),
    }
}

/// While alive, launches run under its profile (and the link has its shape).
pub struct Entered {
    link: Option<link::LinkControl>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(l) = &self.link {
            l.set(None);
        }
    }
}

/// Whether any of `profiles` (names) needs the emulated link.
pub fn uses_link(profiles: &[String]) -> bool {
    profiles.iter().any(|p| EdgeProfile::parse(p).is_ok_and(|p| p.uses_link()))
}

/// A campaign's edge profiles and their cgroups.
pub struct Edge {
    hierarchy: Option<Hierarchy>,
    base: String,
    cgroups: HashMap<String, ProfileCgroup>,
    /// The campaign's emulated link, when a `net-*` profile runs.
    link: Option<link::LinkControl>,
    /// The campaign's `net-*` profiles.
    net_profiles: Vec<EdgeProfile>,
}

/// Whether this host can apply `profiles`; the error names what is missing.
pub fn check_here(profiles: &[String]) -> Result<()> {
    let parsed: Vec<EdgeProfile> = profiles.iter().map(|p| EdgeProfile::parse(p)).collect::<Result<_>>()?;
    check_parsed(&parsed, profiles)
}

fn check_parsed(parsed: &[EdgeProfile], profiles: &[String]) -> Result<()> {
    if let Some(net) = parsed.iter().find(|p| p.uses_link()) {
        if let Err(why) = crate::network::available() {
            bail!(
                "edge profile {}: the emulated link runs in a network namespace of the campaign's: {why}",
                net.name()
            );
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            bail!("edge profile {}: /dev/net/tun is missing: load the tun module (modprobe tun)", net.name());
        }
    }
    if parsed.iter().any(EdgeProfile::uses_cgroup) {
        if !nix::unistd::geteuid().is_root() {
            bail!("edge profiles {}: CPU and memory profiles need root (cgroups)", profiles.join(","));
        }
        Hierarchy::detect().map_err(|why| anyhow::anyhow!("edge profiles {}: {why}", profiles.join(",")))?;
    }
    Ok(())
}

impl Edge {
    /// Makes the cgroup of every CPU and memory profile; refuses what this
    /// host cannot apply, naming why, before anything is measured.
    pub fn start(profiles: &[String]) -> Result<Edge> {
        let parsed: Vec<EdgeProfile> = profiles.iter().map(|p| EdgeProfile::parse(p)).collect::<Result<_>>()?;
        check_parsed(&parsed, profiles)?;
        let mut edge = Edge {
            hierarchy: None,
            base: format!("edgebench-{}", std::process::id()),
            cgroups: HashMap::new(),
            link: None,
            net_profiles: Vec::new(),
        };
        edge.net_profiles = parsed.iter().filter(|p| p.uses_link()).copied().collect();
        if !parsed.iter().any(EdgeProfile::uses_cgroup) {
            return Ok(edge);
        }
        let hierarchy =
            Hierarchy::detect().map_err(|why| anyhow::anyhow!("edge profiles {}: {why}", profiles.join(",")))?;
        cgroup::remove_leftovers(&hierarchy);
        edge.hierarchy = Some(hierarchy.clone());
        for p in parsed.iter().filter(|p| p.uses_cgroup()) {
            let made = ProfileCgroup::create(&hierarchy, &edge.base, p)
                .with_context(|| format!("edge profile {}: making its cgroup ({})", p.name(), hierarchy.name()))?;
            edge.cgroups.insert(p.name(), made);
        }
        Ok(edge)
    }

    /// `cgroup v1` / `cgroup v2`, when CPU or memory profiles run.
    pub fn hierarchy(&self) -> Option<&'static str> {
        self.hierarchy.as_ref().map(Hierarchy::name)
    }

    /// Net profiles shape this link (the campaign's, made with its network).
    pub fn attach_link(&mut self, link: Option<link::LinkControl>) {
        self.link = link;
    }

    /// The link's counters now, when the campaign has one.
    pub fn link_stats(&self) -> Option<link::LinkStats> {
        self.link.as_ref().map(link::LinkControl::stats)
    }

    /// Launches run under `profile` until the returned value is dropped.
    pub fn enter(&self, profile: &str) -> Result<Entered> {
        let parsed = EdgeProfile::parse(profile)?;
        let link = match parsed {
            EdgeProfile::Net(preset) => {
                let Some(l) = &self.link else { bail!("edge profile {profile}: the campaign has no emulated link") };
                l.set(Some(link::Shape::of(preset)));
                Some(l.clone())
            }
            _ => None,
        };
        let (procs, thread_moves) = match (self.cgroups.get(profile), &self.hierarchy) {
            (Some(c), Some(Hierarchy::V1 { .. })) => (Vec::new(), c.thread_moves()?),
            (Some(c), _) => (c.procs_files()?, Vec::new()),
            (None, _) if parsed.uses_cgroup() => bail!("edge profile {profile}: no cgroup was made for it"),
            (None, _) => (Vec::new(), Vec::new()),
        };
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(InForce { profile: parsed, procs, thread_moves }));
        Ok(Entered { link })
    }

    /// Checks that the limits of `profile` are in force for every process of
    /// an instance; returns what was read (stored with the trial).
    pub fn verify(&self, profile: &str, pids: &[u32]) -> Result<String, String> {
        let parsed = EdgeProfile::parse(profile).map_err(|e| e.to_string())?;
        if let EdgeProfile::Net(preset) = parsed {
            // What the link holds now, read from it, not from the preset.
            let shape = self.link.as_ref().and_then(link::LinkControl::shape);
            return match shape {
                Some(s) if s == link::Shape::of(preset) => Ok(format!("emulated link in force: {}", s.describe())),
                other => Err(format!(
                    "edge profile {profile}: the emulated link is not shaped as the profile says ({other:?})"
                )),
            };
        }
        if !parsed.uses_cgroup() {
            return Ok(String::new());
        }
        if pids.is_empty() {
            return Err(format!("edge profile {profile}: the instance has no process here whose limits can be read"));
        }
        let mut seen = Vec::new();
        for &pid in pids {
            let (cpu, memory) = cgroup::limits_in_force(pid);
            let cpu_ok = parsed
                .cpu_quota_us()
                .is_none_or(|q| cpu.is_some_and(|c| (c - q as f64 / profile::CPU_PERIOD_US as f64).abs() < 1e-6));
            let mem_ok = parsed.memory_bytes().is_none_or(|b| memory == Some(b));
            let said = format!(
                "pid {pid}: cpu {} memory {}",
                cpu.map_or("unlimited".into(), |c| format!("{c} CPU")),
                memory.map_or("unlimited".into(), |m| format!("{} MiB", m >> 20))
            );
            if !(cpu_ok && mem_ok) {
                return Err(format!(
                    "edge profile {profile} is not in force for the instance ({said}): this runtime starts a \
                     process outside its launch (e.g. a host started at setup), which the profile does not reach"
                ));
            }
            seen.push(said);
        }
        let readback = self.cgroups.get(profile).map(|c| c.readback.join(", ")).unwrap_or_default();
        Ok(format!("{}; {}", seen.join(", "), if readback.is_empty() { "set by the runtime" } else { &readback }))
    }

    /// OOM kills so far in `profile`'s cgroup.
    pub fn oom_kills(&self, profile: &str) -> u64 {
        self.cgroups.get(profile).map_or(0, ProfileCgroup::oom_kills)
    }

    /// The limit files of each profile as read back after writing them.
    pub fn readbacks(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<_> = self.cgroups.iter().map(|(p, c)| (p.clone(), c.readback.clone())).collect();
        for p in &self.net_profiles {
            out.push((
                p.name(),
                vec!["the link's shape, read from the emulator in each trial (edge_in_force); packets forwarded and \
                      lost in each trial (edge_link_lost)"
                    .into()],
            ));
        }
        out.sort();
        out
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        for (profile, c) in self.cgroups.drain() {
            for e in c.remove() {
                eprintln!("edgebench: edge profile {profile}: cannot remove its cgroup {e}");
            }
        }
        if let Some(h) = &self.hierarchy {
            cgroup::remove_base(h, &self.base);
        }
    }
}
