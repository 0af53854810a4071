//! The environment a campaign ran in, stored with its samples: enough to
//! reproduce it and to know what its numbers can be compared with.

use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// Variables of the user's shell known to change runtime behaviour. They are
/// never passed to runtimes (which get a controlled environment) but are
/// recorded, and the risky ones warned about.
const WATCHED_VARS: &[&str] = &[
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "RUST_LOG",
    "RUST_MIN_STACK",
    "WASMTIME_BACKTRACE_DETAILS",
    "WASMTIME_LOG",
    "MALLOC_ARENA_MAX",
    "LD_PRELOAD",
];

/// How guests of a VMM would run here.
pub fn virtualization() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> =
        cpuinfo.lines().find(|l| l.starts_with("flags")).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    let has = |f: &str| flags.contains(&f);
    let module = |m: &str| Path::new("/sys/module").join(m).exists();
    let kvm_dev = Path::new("/dev/kvm").exists();
    let mode = if kvm_dev && module("kvm_pvm") && !has("vmx") && !has("svm") {
        "kvm-pvm"
    } else if kvm_dev && (has("vmx") || has("svm")) {
        "hardware-kvm"
    } else {
        "none (TCG emulation only)"
    };
    json!({
        "mode": mode,
        "dev_kvm": kvm_dev,
        "cpu_vmx": has("vmx"),
        "cpu_svm": has("svm"),
        "kvm_pvm_module": module("kvm_pvm"),
        "running_under_hypervisor": has("hypervisor"),
    })
}

pub fn capture(source: &Path, controlled_env: &[(String, String)]) -> Value {
    json!({
        "hostname": read_trim("/proc/sys/kernel/hostname"),
        "os": os_release(),
        "kernel": read_trim("/proc/sys/kernel/osrelease"),
        "kernel_cmdline": read_trim("/proc/cmdline"),
        "cpu_model": cpu_model(),
        // What edgebench may use (its affinity before any CPU plan pinned it).
        "logical_cpus": crate::cpus::host_cpus().len(),
        "memory_kib": meminfo("MemTotal:"),
        "governor": read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").unwrap_or_else(|| "none (no cpufreq)".into()),
        "smt_active": read_trim("/sys/devices/system/cpu/smt/active"),
        "transparent_hugepages": read_trim("/sys/kernel/mm/transparent_hugepage/enabled"),
        "ksm_run": read_trim("/sys/kernel/mm/ksm/run"),
        "cgroup": cgroup_version(),
        "tcp_tw_reuse": read_trim("/proc/sys/net/ipv4/tcp_tw_reuse"),
        "loadavg_at_start": read_trim("/proc/loadavg"),
        "virtualization": virtualization(),
        "edgebench_version": env!("CARGO_PKG_VERSION"),
        "edgebench_commit": git_commit(source),
        "rustc": first_line("rustc", &["--version"]),
        "shell_env": watched_vars(),
        "runtime_env": controlled_env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Warnings about the user's environment, printed before a campaign.
pub fn warnings() -> Vec<String> {
    let mut out = Vec::new();
    for var in ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        if let Ok(v) = std::env::var(var) {
            if v != "0" {
                out.push(format!(
                    "{var}={v} is set in your shell: it slows some Rust runtimes many times over (wasmCloud ~60x per request). \
                     edgebench starts runtimes without it, but anything you run by hand will see it."
                ));
            }
        }
    }
    out
}

fn watched_vars() -> Value {
    WATCHED_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), Value::String(v))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn os_release() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    let line = text.lines().find(|l| l.starts_with("PRETTY_NAME="))?;
    Some(line["PRETTY_NAME=".len()..].trim_matches('"').to_string())
}

fn cpu_model() -> Option<String> {
    let text = fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn meminfo(key: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn cgroup_version() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").exists() {
        "hybrid (v1 controllers, v2 unified)"
    } else {
        "v1"
    }
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = crate::runtime::process::helper(program).args(args).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
}

/// The project's commit, with `-dirty` when the work tree has changes.
pub fn git_commit(source: &Path) -> String {
    let git = |args: &[&str]| {
        crate::runtime::process::helper("git")
            .arg("-C")
            .arg(source)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown (not a git checkout)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_the_basics() {
        let env = capture(Path::new("."), &[("PATH".into(), "/bin".into())]);
        assert!(env["kernel"].is_string());
        assert!(env["logical_cpus"].as_u64().unwrap() >= 1);
        assert!(env["virtualization"]["mode"].is_string());
        assert_eq!(env["runtime_env"]["PATH"], "/bin");
    }
}
