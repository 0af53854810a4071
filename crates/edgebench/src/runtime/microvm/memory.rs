//! A VMM's memory split in two: the guest's RAM mapping, found in
//! /proc/PID/smaps by its size, and everything else (the VMM's own overhead).

use super::super::ExtraResource;

#[derive(Debug, Default, PartialEq)]
pub struct Split {
    pub total_pss_kib: u64,
    pub guest_pss_kib: u64,
}

/// Splits `pid`'s PSS; fails when the guest mapping is not exactly one
/// mapping of `guest_kib` (then no figure is better than a wrong one). The
/// kernel may merge the guest's anonymous mapping with an adjacent one of
/// the VMM (seen with Firecracker: 64 MiB + 132 KiB): a mapping up to
/// [`MERGED_SLACK_KIB`] larger counts, so the guest figure may include that much
/// of the VMM's own memory.
pub fn split(pid: u32, guest_kib: u64) -> Result<Split, String> {
    let path = format!("/proc/{pid}/smaps");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    split_smaps(&text, guest_kib)
}

pub const MERGED_SLACK_KIB: u64 = 1024;

pub fn split_smaps(text: &str, guest_kib: u64) -> Result<Split, String> {
    let mut split = Split::default();
    let (mut size, mut guest_mappings) = (0, 0);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next().and_then(|v| v.parse::<u64>().ok())) {
            (Some("Size:"), Some(kib)) => size = kib,
            (Some("Pss:"), Some(kib)) => {
                split.total_pss_kib += kib;
                if (guest_kib..=guest_kib + MERGED_SLACK_KIB).contains(&size) {
                    split.guest_pss_kib += kib;
                    guest_mappings += 1;
                }
            }
            _ => {}
        }
    }
    if guest_mappings != 1 {
        return Err(format!("{guest_mappings} mappings of the guest RAM size ({guest_kib} KiB) in smaps"));
    }
    Ok(split)
}

/// As extra resources: `vmm_overhead_pss` and `guest_memory` (the guest
/// mapping's PSS: the guest RAM the host actually backs).
pub fn resources(pid: u32, guest_kib: u64) -> Vec<ExtraResource> {
    let Ok(s) = split(pid, guest_kib) else { return Vec::new() };
    let kib =
        |metric: &str, value: u64| ExtraResource { metric: metric.into(), value: value as f64, unit: "KiB".into() };
    vec![kib("vmm_overhead_pss", s.total_pss_kib - s.guest_pss_kib), kib("guest_memory", s.guest_pss_kib)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_mapping_is_split_off() {
        let smaps = "7f00-8f00 rw-p 0 0 0\nSize: 262144 kB\nRss: 5000 kB\nPss: 5000 kB\n\
                     5500-5600 r-xp 0 0 0 /usr/bin/qemu\nSize: 4000 kB\nPss: 1200 kB\n";
        assert_eq!(split_smaps(smaps, 262144), Ok(Split { total_pss_kib: 6200, guest_pss_kib: 5000 }));
        assert!(split_smaps(smaps, 1024).is_err());
        // Merged with an adjacent mapping of the VMM's.
        let merged = "7f00-8f00 rw-p 0 0 0\nSize: 262276 kB\nPss: 5000 kB\n";
        assert_eq!(split_smaps(merged, 262144).map(|s| s.guest_pss_kib), Ok(5000));
    }
}
