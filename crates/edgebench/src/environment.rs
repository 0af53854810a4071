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
        // The machine's architecture (that of this edgebench build, which
        // runs natively: the native binaries are built for it).
        "arch": std::env::consts::ARCH,
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
    // x86: "model name"; arm64 boards: "Model" (e.g. Raspberry Pi), if any.
    let line =
        text.lines().find(|l| l.starts_with("model name")).or_else(|| text.lines().find(|l| l.starts_with("Model")))?;
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

/// The environment of the machine the runtimes ran on: a remote-target
/// campaign stores it under `target` (the top level is then the client's).
pub fn machine(env: &Value) -> &Value {
    match &env["target"] {
        target @ Value::Object(_) => target,
        _ => env,
    }
}

/// The name of the host a campaign measured on, as recorded: an explicit
/// `host_label`, else the hostname of the machine the runtimes ran on.
pub fn host_name(env: &Value) -> Option<String> {
    let label = env["host_label"].as_str().filter(|s| !s.trim().is_empty());
    label.or_else(|| machine(env)["hostname"].as_str()).map(str::to_string)
}

/// What tells two campaigns' hosts apart: (what, A, B) for each of the host
/// name, CPU model and kernel that differ. Empty: as far as recorded, one host.
pub fn host_differences(a: &Value, b: &Value) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| "unrecorded".into());
    let (ma, mb) = (machine(a), machine(b));
    let pairs = [
        (
            "host name",
            host_name(a).unwrap_or_else(|| "unrecorded".into()),
            host_name(b).unwrap_or_else(|| "unrecorded".into()),
        ),
        ("CPU model", text(&ma["cpu_model"]), text(&mb["cpu_model"])),
        ("kernel", text(&ma["kernel"]), text(&mb["kernel"])),
    ];
    pairs.into_iter().filter(|(_, x, y)| x != y).map(|(what, x, y)| (what.to_string(), x, y)).collect()
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

    #[test]
    fn the_host_is_the_label_else_the_target_else_this_machine() {
        let local = json!({"hostname": "client", "cpu_model": "X", "kernel": "6.1"});
        assert_eq!(host_name(&local).as_deref(), Some("client"));
        let remote = json!({"hostname": "client", "target": {"hostname": "edge-1", "cpu_model": "Y", "kernel": "6.1"}});
        assert_eq!(host_name(&remote).as_deref(), Some("edge-1"));
        assert_eq!(machine(&remote)["cpu_model"], "Y");
        let labelled = json!({"hostname": "client", "host_label": "rack-3", "target": {"hostname": "edge-1"}});
        assert_eq!(host_name(&labelled).as_deref(), Some("rack-3"));
        assert!(host_differences(&local, &local).is_empty());
        let whats: Vec<String> = host_differences(&local, &remote).into_iter().map(|d| d.0).collect();
        assert_eq!(whats, ["host name", "CPU model"]);
    }
}
