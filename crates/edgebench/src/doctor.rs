//! `edgebench doctor`: what can be measured here, and how to get the rest.

use crate::artifacts::Artifacts;
use crate::{environment, runtime};
use std::fmt::Write;

pub fn report(artifacts: &Artifacts) -> String {
    let mut out = String::new();
    let virt = environment::virtualization();
    let _ = writeln!(out, "virtualisation: {} (/dev/kvm: {})", virt["mode"].as_str().unwrap_or("?"), virt["dev_kvm"]);
    let missing = artifacts.missing();
    if missing.is_empty() {
        let _ = writeln!(out, "artifacts: built in {}", artifacts.target_dir.display());
    } else {
        let _ = writeln!(out, "artifacts: {} missing: run `edgebench build` (run does it too)", missing.len());
    }
    for w in environment::warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push('\n');
    runtime_lines(&mut out, runtime::all(), artifacts);
    out
}

/// `edgebench doctor --target URL`: what the target can measure, as its agent says.
pub fn remote_report(remote: &crate::remote::Remote, artifacts: &Artifacts) -> String {
    let mut out = String::new();
    let (target, _) = remote.environment();
    let _ = writeln!(
        out,
        "target: host {}, kernel {}, virtualisation {}",
        target["hostname"].as_str().unwrap_or("?"),
        target["kernel"].as_str().unwrap_or("?"),
        target["virtualization"]["mode"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "link: {}", remote.describe_link());
    out.push('\n');
    runtime_lines(&mut out, remote.backends(), artifacts);
    out
}

/// One line per runtime: found (version, path, variants), or why not.
fn runtime_lines(out: &mut String, runtimes: Vec<Box<dyn runtime::Runtime>>, artifacts: &Artifacts) {
    for r in runtimes {
        let d = r.detect(artifacts);
        let variants = r.variants().join(", ");
        if d.available {
            let path = d.path.map(|p| p.display().to_string()).unwrap_or_default();
            let _ = writeln!(out, "{:<20} found      {} ({path}); variants: {variants}", r.name(), d.version);
        } else {
            let _ = writeln!(out, "{:<20} not found  {}", r.name(), d.reason);
        }
    }
}

/// `edgebench list`: every name a campaign (flag or file) accepts, with what it is.
pub fn list() -> String {
    let mut out = String::from(
        "runtimes (--runtimes runtime or runtime:variant; `edgebench doctor` says which are installed):\n",
    );
    for r in runtime::all() {
        for v in r.variants() {
            let _ = writeln!(
                out,
                "  {:<34} {}; cold start from {}",
                format!("{}:{v}", r.name()),
                r.serving_model(v),
                r.start_kind(v).name()
            );
        }
    }
    out.push_str("\nworkloads (--workloads):\n");
    for w in crate::Workload::all() {
        let probe = w.probe_request();
        let latency = w.latency_request();
        let answers = match w.user() {
            None => "as the core does".to_string(),
            Some(_) => format!("with {}", w.expected_probe().describe()),
        };
        let _ = writeln!(
            out,
            "  {:<8} ready when {} {} answers {answers}; latency runs send {} {}",
            w.name(),
            probe.method,
            probe.target,
            latency.method,
            latency.target
        );
        if let Some(u) = w.user() {
            let files: Vec<String> = u.files().iter().map(|(what, p)| format!("{what}: {}", p.display())).collect();
            let _ = writeln!(
                out,
                "           {}{}",
                u.description.as_deref().map_or(String::new(), |d| format!("{d}; ")),
                files.join("; ")
            );
        }
    }
    out.push_str("\nmetrics (--metrics; groups: latency, resources, all):\n");
    for m in crate::campaign::Metric::ALL {
        let default = if crate::campaign::Metric::DEFAULT.contains(&m) { " (default)" } else { "" };
        let _ = writeln!(out, "  {}{default}", m.name());
    }
    out.push_str(
        "\nfirewall profiles (--firewall): off, host, rules-N, set-N for N = 10, 100, 1000, 10000, and each but off \
         with -notrack (README: \"Behind a host firewall\")\n",
    );
    out.push_str(
        "\nedge profiles (--edge-profile): none, cpu-F (a CPU quota of F CPUs, e.g. cpu-0.5), mem-Nm (a memory cap \
         of N MiB, e.g. mem-128m), net-lan (250 µs each way, 1 Gbit/s) and net-4g (25 ± 5 ms each way, 20 Mbit/s, \
         0.1% loss): an emulated link between client and instance (README: \"Under edge conditions\")\n",
    );
    out
}
