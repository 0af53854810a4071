//! Edge profiles: the resources of a small edge device, as a factor of the
//! experiment (issue 21). Each profile is one constraint:
//!
//! - `none`: unconstrained (the reference every delta is taken against);
//! - `cpu-F`: a CPU quota of F CPUs (cgroup `cpu.max` / `cpu.cfs_quota_us`
//!   over a 100 ms period), e.g. `cpu-0.5`;
//! - `mem-Nm`: a memory cap of N MiB (`memory.max` / `memory.limit_in_bytes`,
//!   swap forbidden), e.g. `mem-128m`; an instance killed by the kernel's OOM
//!   killer fails its trial with that reason;
//! - `net-lan`, `net-4g`: the client reaches the instance over an emulated
//!   link (delay, jitter, rate, loss each way; `link.rs`), the campaign's
//!   server namespace joined to the host by edgebench's link emulator.

use anyhow::{bail, Result};

/// The CPU quota's period (µs), as Docker's `--cpus` uses.
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EdgeProfile {
    None,
    /// CPUs (fraction of one CPU's time per period, may exceed 1).
    Cpu(f64),
    /// Bytes.
    Memory(u64),
    Net(LinkPreset),
}

/// An emulated link, the same each way (`link::Shape::of` gives its figures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPreset {
    /// 0.25 ms each way, 1 Gbit/s, no loss.
    Lan,
    /// 25 ms ± 5 ms each way (≈ 50 ms round trip, a typical LTE figure),
    /// 20 Mbit/s, 0.1% loss.
    FourG,
}

impl EdgeProfile {
    pub fn parse(name: &str) -> Result<EdgeProfile> {
        let bad = || {
            anyhow::anyhow!(
                "unknown edge profile {name:?}: valid profiles are none, cpu-F (a CPU quota of F CPUs, 0.01 to 64, \
                 e.g. cpu-0.5), mem-Nm (a memory cap of N MiB, 16 to 65536, e.g. mem-128m), net-lan, net-4g"
            )
        };
        match name {
            "none" => return Ok(EdgeProfile::None),
            "net-lan" => return Ok(EdgeProfile::Net(LinkPreset::Lan)),
            "net-4g" => return Ok(EdgeProfile::Net(LinkPreset::FourG)),
            _ => {}
        }
        if let Some(f) = name.strip_prefix("cpu-") {
            let cpus: f64 = f.parse().map_err(|_| bad())?;
            if !(0.01..=64.0).contains(&cpus) {
                return Err(bad());
            }
            return Ok(EdgeProfile::Cpu(cpus));
        }
        if let Some(m) = name.strip_prefix("mem-").and_then(|m| m.strip_suffix('m')) {
            let mib: u64 = m.parse().map_err(|_| bad())?;
            if !(16..=65536).contains(&mib) {
                return Err(bad());
            }
            return Ok(EdgeProfile::Memory(mib << 20));
        }
        Err(bad())
    }

    /// Parses `--edge-profile P1,P2,...` (canonical names, order kept, duplicates dropped).
    pub fn parse_list(list: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let canonical = EdgeProfile::parse(name)?.name();
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        if out.is_empty() {
            bail!("--edge-profile names no profile: e.g. none,cpu-0.5,mem-128m");
        }
        Ok(out)
    }

    pub fn name(&self) -> String {
        match self {
            EdgeProfile::None => "none".into(),
            EdgeProfile::Cpu(c) => format!("cpu-{c}"),
            EdgeProfile::Memory(b) => format!("mem-{}m", b >> 20),
            EdgeProfile::Net(LinkPreset::Lan) => "net-lan".into(),
            EdgeProfile::Net(LinkPreset::FourG) => "net-4g".into(),
        }
    }

    /// The CPU quota in µs per [`CPU_PERIOD_US`], if the profile sets one.
    pub fn cpu_quota_us(&self) -> Option<u64> {
        match self {
            EdgeProfile::Cpu(c) => Some((c * CPU_PERIOD_US as f64).round() as u64),
            _ => None,
        }
    }

    pub fn memory_bytes(&self) -> Option<u64> {
        match self {
            EdgeProfile::Memory(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether the client reaches instances over the emulated link.
    pub fn uses_link(&self) -> bool {
        matches!(self, EdgeProfile::Net(_))
    }

    /// Whether instances run in a cgroup of the profile's.
    pub fn uses_cgroup(&self) -> bool {
        matches!(self, EdgeProfile::Cpu(_) | EdgeProfile::Memory(_))
    }

    /// What the profile sets, in words (the report's table).
    pub fn describe(&self) -> String {
        match self {
            EdgeProfile::None => "no constraint".into(),
            EdgeProfile::Cpu(c) => format!(
                "CPU quota {c} CPU ({} µs per {CPU_PERIOD_US} µs period)",
                self.cpu_quota_us().unwrap_or_default()
            ),
            EdgeProfile::Memory(b) => format!("memory cap {} MiB, no swap", b >> 20),
            EdgeProfile::Net(p) => format!("emulated link, {}", super::link::Shape::of(*p).describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_list_the_valid_ones() {
        for name in ["none", "cpu-0.5", "cpu-2", "mem-128m", "net-lan", "net-4g"] {
            assert_eq!(EdgeProfile::parse(name).unwrap().name(), name);
        }
        assert_eq!(EdgeProfile::parse("cpu-0.5").unwrap().cpu_quota_us(), Some(50_000));
        assert_eq!(EdgeProfile::parse("mem-128m").unwrap().memory_bytes(), Some(128 << 20));
        for bad in ["cpu-0", "cpu-x", "mem-1m", "mem-128", "net-5g", "fast", "cpu-100"] {
            let err = EdgeProfile::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("unknown edge profile {bad:?}")) && err.contains("mem-128m"), "{err}");
        }
        assert_eq!(EdgeProfile::parse_list("none, cpu-0.50,none").unwrap(), vec!["none", "cpu-0.5"]);
        assert!(EdgeProfile::parse_list(" ").is_err());
    }
}
