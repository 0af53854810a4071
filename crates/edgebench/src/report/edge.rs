//! The edge-conditions part of the report (issue 21): each edge profile's
//! limits as read back from its cgroup, the trials it failed (an OOM kill
//! among them), and every compared metric under it minus the same
//! configuration's median unconstrained (`none`), with a bootstrap interval
//! over trials — the firewall deltas' machinery, the other factor held equal.

use super::firewall::{self, Delta, Factor};
use super::format::num;
use super::Cell;
use crate::store::Sample;
use std::fmt::Write;

/// The metrics compared across edge profiles, in report order.
const METRICS: [&str; 7] =
    ["cold_start", "warm_start", "latency_keepalive", "latency_newconn", "throughput", "memory_pss", "cpu_time"];

pub const EDGE: Factor = Factor { reference: "none", level: |c| &c.edge, held: |c| &c.firewall, metrics: &METRICS };

#[derive(serde::Serialize, Default)]
pub struct Edge {
    /// The campaign ran a profile other than `none`.
    pub measured: bool,
    pub deltas: Vec<Delta>,
    /// Failed trials' first reason per profile: (profile, failures, reason).
    pub failures: Vec<(String, usize, String)>,
}

pub fn model(cells: &[Cell], samples: &[Sample]) -> Edge {
    let measured = samples.iter().any(|s| s.edge != "none" && !s.edge.is_empty());
    if !measured {
        return Edge::default();
    }
    let mut failures: Vec<(String, usize, String)> = Vec::new();
    for s in samples.iter().filter(|s| !s.ok && s.edge != "none" && s.metric == "cold_start") {
        match failures.iter_mut().find(|f| f.0 == s.edge) {
            Some(f) => f.1 += 1,
            None => failures.push((s.edge.clone(), 1, s.error.clone())),
        }
    }
    for s in samples.iter().filter(|s| !s.ok && s.metric == "edge_oom_kills") {
        if !failures.iter().any(|f| f.2 == s.error) {
            failures.push((s.edge.clone(), 1, s.error.clone()));
        }
    }
    Edge { measured, deltas: firewall::deltas_of(&EDGE, cells, samples), failures }
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// The report.md section; empty when the campaign ran no edge profile but `none`.
pub fn section(m: &super::Model) -> String {
    let e = &m.edge;
    if !e.measured {
        return String::new();
    }
    let mut out = String::from("\n## Under edge conditions\n\n");
    let bed = &m.campaign.environment["test_bed"]["edge"];
    let hierarchy = bed["hierarchy"].as_str().unwrap_or("cgroup");
    let placement = if hierarchy == "cgroup v1" {
        "every process an instance's launch starts is born in the profile's cgroup (the spawning thread joins the \
         cgroup before t0, clones the instance there and leaves it after; a v1 move waits for an RCU grace period, \
         milliseconds, which is thus outside the cold start), so the cold start runs under the limit"
    } else {
        "every process an instance's launch starts enters the profile's cgroup between clone and exec, so the cold \
         start runs under the limit. **Caveat: that move is inside a process runtime's cold start** (a thread cannot \
         leave its process's cgroup on v2, and clone3 with CLONE_INTO_CGROUP is not used yet): read a process \
         runtime's cold-start delta under a CPU or memory profile as an upper bound of the constraint's effect; the \
         other metrics are taken after the move"
    };
    let _ = writeln!(
        out,
        "Each trial ran under one edge profile, interleaved with the others in the campaign's seeded order. CPU and \
         memory profiles are cgroup limits ({hierarchy}): {placement}. A container gets the same limits \
         from Docker (`--cpus`, `--memory`, swap included; its containerd shim and docker-proxy stay outside, as \
         on any Docker host); Docker's cold start includes its own cgroup setup under every profile, `none` \
         included. Processes a runtime started before the trial (a daemon, \
         a host started at setup) are not under it: such a trial fails, with the reason. After each instance is up, \
         the limits in force for each of its processes (the tightest over its cgroup and their parents) are read \
         back and stored (`edge_in_force`); a trial whose processes are not under them fails. An instance the \
         kernel's OOM killer ended fails its trial with that reason (`edge_oom_kills`). Δ is the profile's median \
         minus the same configuration's median under `none` (the firewall profile held the same), with a 95% \
         interval from a bootstrap over trials, as for firewall profiles.\n"
    );
    let linked: Vec<String> = {
        let mut v: Vec<String> = e.deltas.iter().map(|d| d.profile.clone()).filter(|p| p.starts_with("net-")).collect();
        v.sort();
        v.dedup();
        v
    };
    if !linked.is_empty() {
        let _ = writeln!(
            out,
            "Link profiles ({}) put an emulated link between the client and the instance: the campaign's server \
             namespace is joined to the host by two TUN devices and edgebench's link emulator in user space (a \
             thread per direction: loss at arrival, serialisation at the link's rate, then delay plus a normal \
             jitter truncated at 2σ, no reordering, a 1000-packet queue), not by `tc netem`, which not every \
             kernel has. **Every trial of this campaign crosses that link**, unshaped under the other profiles \
             (forwarded at once): `none` here includes the user-space hop (so its figures are higher than a \
             loopback campaign's), and a link profile's Δ is the link's delay, rate and loss alone. Only \
             instances in the server namespace cross it; a variant whose traffic takes another path (Docker's \
             published ports, a micro-VM's own namespace) fails its link trials with that reason. The shape in \
             force is read from the emulator in each trial and stored (`edge_in_force`), with the packets it \
             forwarded and lost (`edge_link_lost`).\n",
            linked.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(profiles) = bed["profiles"].as_object() {
        out.push_str("| profile | what it sets | read back after writing |\n|---|---|---|\n");
        for (name, readback) in profiles {
            let what = crate::edge::EdgeProfile::parse(name).map(|p| p.describe()).unwrap_or_default();
            let read: Vec<String> = readback
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .map(|v| format!("`{v}`"))
                .collect();
            let _ = writeln!(out, "| `{}` | {} | {} |", esc(name), esc(&what), esc(&read.join(", ")));
        }
        out.push('\n');
    }
    if !e.failures.is_empty() {
        out.push_str("Trials that failed under a profile (first reason):\n\n");
        for (profile, n, why) in &e.failures {
            let _ = writeln!(out, "- `{}`: {n} — {}", esc(profile), esc(why));
        }
        out.push('\n');
    }
    if e.deltas.is_empty() {
        out.push_str("No metric was measured both under a profile and under `none` for one configuration.\n");
        return out;
    }
    out.push_str(
        "| workload | runtime | metric | `none` median | profile | median | Δ [95% CI] | Δ % |\n|---|---|---|---|---|---|---|---|\n",
    );
    for d in &e.deltas {
        let metric = if d.phase.is_empty() { d.metric.clone() } else { format!("{} {}", d.metric, d.phase) };
        let profile = if d.held == "off" { d.profile.clone() } else { format!("{} (firewall {})", d.profile, d.held) };
        let _ = writeln!(
            out,
            "| {} | {} {} | {} | {} {} | `{}` | {} | {} [{}, {}] | {}% |",
            esc(&d.workload),
            esc(&d.runtime),
            esc(&d.variant),
            esc(&metric),
            num(d.off_median),
            esc(&d.unit),
            esc(&profile),
            num(d.median),
            num(d.delta),
            num(d.delta_ci.0),
            num(d.delta_ci.1),
            num(100.0 * d.delta / d.off_median),
        );
    }
    out
}
