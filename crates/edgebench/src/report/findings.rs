//! The report's summary: which runtime for which need, derived from the
//! cells, and the caveats that limit what the numbers say. Plain text: each
//! renderer escapes it.

use super::format::{config, num};
use super::stats::{self, Bootstrap, NoiseLevel};
use super::Cell;
use crate::store::BASELINE;
use crate::store::{CampaignRow, RuntimeRow, Sample};
use std::collections::BTreeMap;

/// A need a reader may have, and the metric that answers it (lower is better).
/// Each kind of start is its own need, ranked apart: a launch of everything
/// against a deploy onto a running host, or a fresh instance per request
/// against a restarted or resumed one, would compare different t0s.
pub struct Need {
    pub title: &'static str,
    pub metric: &'static str,
    pub phase: &'static str,
    /// For cold starts: the start kind ranked (see `Cell::start_kind`).
    pub start_kind: Option<&'static str>,
}

const fn need(title: &'static str, metric: &'static str, phase: &'static str) -> Need {
    Need { title, metric, phase, start_kind: None }
}

pub const NEEDS: &[Need] = &[
    Need { start_kind: Some("launch"), ..need("Scale to zero (fastest cold start)", "cold_start", "") },
    Need {
        start_kind: Some("deploy-on-running-host"),
        ..need("Deploy onto a host already running (fastest deploy)", "cold_start", "")
    },
    need("A fresh instance per request (fastest warm start)", "warm_start", ""),
    need("Restart a stopped instance on a running runtime (fastest restart)", "warm_start", "restart"),
    need("Redeploy onto a running host (fastest redeploy)", "warm_start", "redeploy"),
    need("Resume a paused instance (fastest resume)", "warm_start", "unpause"),
    need("Lowest latency, kept-alive connections", "latency_keepalive", ""),
    need("Lowest latency, a new connection per request", "latency_newconn", ""),
    need("Most instances per host (least memory after boot)", "memory_pss", "after_boot"),
    need("Least CPU to boot", "cpu_time", "boot"),
];

/// How each kind of start is timed, for the Methods section.
pub const START_KINDS: &[(&str, &str)] = &[
    ("cold start, launch", "t0 just before the call that launches everything the instance needs (process, container, VM or runtime host) → t1 the first complete correct `200`."),
    ("cold start, deploy onto a running host", "t0 just before the deploy call to a runtime host that was started (and is idle) before t0 → t1 the first correct `200`: the host's own start is not in the figure (wasmCloud `deploy-cold`, `deploy-warm`)."),
    ("warm start, a fresh instance per request", "t0 a request sent on a new connection to the running runtime → t1 its response read: the runtime makes a new instance for it (the Wasmtime hosts: a new Wasm instance of the compiled component; workerd `loader`: a new V8 isolate from its Worker Loader, which compiles the module, evaluates the Worker and instantiates the module, reached through a loader Worker on a second socket; workerd `serve` has none: its one isolate per Worker serves every request)."),
    ("warm start `restart`", "t0 just before the runtime is told to restart the stopped instance (Docker `restart`: a new process in the same container) → t1 the first correct `200`."),
    ("warm start `redeploy`", "t0 just before the workload is stopped and started again on its running host (wasmCloud) → t1 the first correct `200`."),
    ("warm start `unpause`", "t0 just before a paused instance is resumed (Docker `unpause`: the same processes, frozen and thawed, not a new instance) → t1 the first correct `200`."),
];

/// Fewer trials than this per configuration: no lead is called.
const MIN_TRIALS_FOR_A_CALL: usize = 6;

#[derive(serde::Serialize)]
pub struct Finding {
    pub need: &'static str,
    /// The configuration(s) that answer it, or None.
    pub answer: Option<String>,
    pub detail: String,
}

#[derive(serde::Serialize)]
pub struct Summary {
    pub findings: Vec<Finding>,
    pub caveats: Vec<String>,
}

/// Values as shown: memory in MiB rather than KiB.
pub fn shown(value: f64, unit: &str) -> (f64, &str) {
    match unit {
        "KiB" => (value / 1024.0, "MiB"),
        "us" => (value, "µs"),
        other => (value, other),
    }
}

fn label(c: &Cell) -> String {
    if c.phase.is_empty() || c.metric != "warm_start" {
        config(&c.runtime, &c.variant)
    } else {
        format!("{} {}", config(&c.runtime, &c.variant), c.phase)
    }
}

fn range(values: &[f64], unit: &str) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ((lo, u), (hi, _)) = (shown(lo, unit), shown(hi, unit));
    let text = if num(lo) == num(hi) { num(lo) } else { format!("{}–{}", num(lo), num(hi)) };
    if u.is_empty() {
        text
    } else {
        format!("{text} {u}")
    }
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

/// The baseline runtime's name, from its cells (`native` when it has none).
pub(super) fn baseline_name(cells: &[Cell]) -> &str {
    cells.iter().find(|c| c.is_baseline).map_or(BASELINE, |c| c.runtime.as_str())
}

fn find_need(need: &Need, cells: &[Cell]) -> Option<Finding> {
    // One firewall profile: `off` where there is one, else the first (ranking a
    // runtime against itself under another profile answers no need).
    let profile = cells
        .iter()
        .map(|c| c.conditions())
        .min_by_key(|p| super::format::conditions_order(p))
        .unwrap_or_else(|| "off".into());
    let relevant = |c: &&Cell| {
        c.metric == need.metric
            && c.phase == need.phase
            && need.start_kind.is_none_or(|k| c.start_kind == k)
            && c.conditions() == profile
    };
    let baseline: Vec<&Cell> = cells.iter().filter(relevant).filter(|c| c.is_baseline && c.n > 0).collect();
    let name = baseline_name(cells);
    // Behind firewall profiles, only runtimes on the baseline's network path
    // are ranked together (another path would rank paths, not runtimes).
    let base_path = baseline.first().map(|b| b.path.as_str()).unwrap_or("");
    // `native` (no isolation) is never an option, also when another runtime is the baseline.
    let candidates: Vec<&Cell> = cells
        .iter()
        .filter(relevant)
        .filter(|c| !c.is_baseline && c.runtime != BASELINE && c.n > 0 && c.path == base_path)
        .collect();
    if candidates.is_empty() {
        if baseline.is_empty() {
            return None;
        }
        let unit = &baseline[0].unit;
        return Some(Finding {
            need: need.title,
            answer: None,
            detail: format!(
                "only the {name} baseline was measured (median {}): there is no runtime to choose between.",
                range(&baseline.iter().map(|c| c.median).collect::<Vec<_>>(), unit)
            ),
        });
    }
    let unit = candidates[0].unit.clone();
    let mut by_workload: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
    for c in &candidates {
        by_workload.entry(c.workload.as_str()).or_default().push(c);
    }
    let mut winners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut best_medians, mut next_medians, mut leads, mut next_labels) = (vec![], vec![], vec![], vec![]);
    let (mut clear, mut testable) = (0, 0);
    for (workload, mut list) in by_workload.clone() {
        list.sort_by(|a, b| a.median.total_cmp(&b.median));
        winners.entry(label(list[0])).or_default().push(workload.to_string());
        best_medians.push(list[0].median);
        if let Some(next) = list.get(1) {
            next_medians.push(next.median);
            next_labels.push(label(next));
            leads.push(next.median / list[0].median);
            // A percentile bootstrap of a handful of trials undercovers: no call below 6.
            if next.trials.len().min(list[0].trials.len()) >= MIN_TRIALS_FOR_A_CALL {
                testable += 1;
                let (lo, _) = stats::ratio_of_medians_ci(&next.trials, &list[0].trials, Bootstrap::REPORT);
                if lo > 1.0 {
                    clear += 1;
                }
            }
        }
    }
    let workloads = by_workload.len();
    let answer = if winners.len() == 1 {
        let (who, _) = winners.iter().next().unwrap();
        if workloads > 1 {
            format!("{who}, in all {workloads} workloads")
        } else {
            who.clone()
        }
    } else {
        winners.iter().map(|(who, w)| format!("{who} for {}", list(w))).collect::<Vec<_>>().join("; ")
    };
    let mut detail = format!("median {}", range(&best_medians, &unit));
    let base_medians: Vec<f64> = baseline.iter().map(|c| c.median).collect();
    if !base_medians.is_empty() {
        let ratios: Vec<f64> = by_workload
            .values()
            .filter_map(|l| l.iter().min_by(|a, b| a.median.total_cmp(&b.median)))
            .filter_map(|c| c.ratio.map(|r| r.0))
            .collect();
        if !ratios.is_empty() {
            detail.push_str(&format!(" ({}× {name}, {name} {})", range(&ratios, ""), range(&base_medians, &unit)));
        }
    }
    if !leads.is_empty() {
        next_labels.sort();
        next_labels.dedup();
        detail.push_str(&format!(
            "; next: {} at {} ({}× the best).",
            list(&next_labels),
            range(&next_medians, &unit),
            range(&leads, "")
        ));
        if testable == 0 {
            detail.push_str(&format!(
                " Too few trials (fewer than {MIN_TRIALS_FOR_A_CALL}) to say whether the lead is real."
            ));
        } else {
            detail.push_str(&format!(
                " The lead is clear (bootstrap 95% interval of next ÷ best above 1) in {clear} of {testable} workloads."
            ));
        }
    } else {
        detail.push_str("; no other runtime was measured.");
    }
    if need.metric == "cpu_time" {
        // Runtimes count CPU differently (a daemon's share cannot be told apart): say what each figure covers.
        let mut scopes: Vec<String> = candidates
            .iter()
            .filter(|c| !c.cpu_scope.is_empty())
            .map(|c| format!("{}: {}", config(&c.runtime, &c.variant), c.cpu_scope))
            .collect();
        scopes.sort();
        scopes.dedup();
        if !scopes.is_empty() {
            detail.push_str(&format!(" What each figure counts: {}.", scopes.join("; ")));
        }
    }
    Some(Finding { need: need.title, answer: Some(answer), detail })
}

/// How many more repetitions the typical noisy cell needs, or that more
/// repetitions will not help.
fn more_hint(noisy: &[&&Cell]) -> String {
    let mut needed: Vec<f64> = noisy
        .iter()
        .filter_map(|c| c.noise.and_then(|n| n.more_for_target.map(|m| (m + n.n) as f64 / n.n as f64)))
        .collect();
    if needed.is_empty() {
        return "more repetitions would narrow them".into();
    }
    needed.sort_by(f64::total_cmp);
    let factor = stats::median(&needed);
    let reps = noisy.iter().map(|c| c.trials.len()).max().unwrap_or(0);
    if factor > 10.0 {
        format!(
            "the median one would need about {:.0}× the trials for ±5%: reducing the spread between trials (a quieter host; see the outlier table for second modes) helps more than adding trials",
            factor
        )
    } else {
        format!("the median one needs about {:.0} trials instead of {reps} for ±5%", (factor * reps as f64).ceil())
    }
}

fn is_key_cell(c: &Cell) -> bool {
    NEEDS.iter().any(|n| n.metric == c.metric && n.phase == c.phase)
}

pub fn summarize(campaign: &CampaignRow, runtimes: &[RuntimeRow], cells: &[Cell], samples: &[Sample]) -> Summary {
    let findings = NEEDS.iter().filter_map(|n| find_need(n, cells)).collect();
    Summary { findings, caveats: caveats(campaign, runtimes, cells, samples) }
}

/// Configurations whose readiness probe polled coarsely against their cold
/// start (a connect to a guest that is not up yet waits out its timeout):
/// readiness was seen up to one interval late.
fn coarse_probe(cells: &[Cell]) -> Option<String> {
    let mut coarse: Vec<String> = cells
        .iter()
        .filter(|c| c.metric == "probe_interval" && c.n > 0)
        .filter_map(|p| {
            let cold = cells.iter().find(|c| {
                c.metric == "cold_start"
                    && c.phase.is_empty()
                    && c.n > 0
                    && (&c.runtime, &c.variant, &c.workload, &c.firewall, &c.edge)
                        == (&p.runtime, &p.variant, &p.workload, &p.firewall, &p.edge)
            })?;
            let interval_ms = p.median / 1e3;
            (interval_ms > 0.05 * cold.median).then(|| {
                format!("{} · {} ({} ms against {} ms)", c_config(p), p.workload, num(interval_ms), num(cold.median))
            })
        })
        .collect();
    coarse.sort();
    coarse.dedup();
    (!coarse.is_empty()).then(|| {
        format!(
            "The readiness probe's interval was over 5% of the cold start for: {}. While connects go unanswered (a guest whose network is not up), the probe starts a new one every 1 ms or every half of the wait so far, whichever is longer; readiness can be seen up to one such interval late, and these cold starts overstated by up to that much.",
            coarse.join("; ")
        )
    })
}

fn c_config(c: &Cell) -> String {
    config(&c.runtime, &c.variant)
}

fn caveats(campaign: &CampaignRow, runtimes: &[RuntimeRow], cells: &[Cell], samples: &[Sample]) -> Vec<String> {
    let mut out = Vec::new();
    // The host the runtimes ran on: a remote target's own environment.
    let env = match campaign.environment.get("target") {
        Some(target) if target.is_object() => {
            let link = &campaign.environment["link"];
            out.push(format!(
                "The runtimes ran on the remote target {} and the client on another host: every latency includes the link's round trip (TCP connect round trip median {} ms), and every cold start the launch request's way over SSH (agent round trip median {} ms, about half of it one way). Compare these figures with other campaigns only over the same link.",
                link["target"].as_str().unwrap_or("?"),
                link["tcp_connect_rtt_ms"]["median"].as_f64().map_or("?".into(), |v| format!("{v:.3}")),
                link["control_rtt_ms"]["median"].as_f64().map_or("?".into(), |v| format!("{v:.3}")),
            ));
            target
        }
        _ => &campaign.environment,
    };
    if campaign.status != "finished" {
        out.push(format!("The campaign is {}: not every trial ran.", campaign.status));
    }
    let name = campaign.baseline();
    out.push(if name == BASELINE {
        "`native` is the baseline without any isolation, not an option: every ratio is to it.".into()
    } else {
        format!(
            "`{name}` is this campaign's baseline (`baseline` setting): every ratio and test is to it, and the \
             rankings leave it out (and `native`, which has no isolation)."
        )
    });
    let mode = env["virtualization"]["mode"].as_str().unwrap_or("unknown");
    if env["virtualization"]["running_under_hypervisor"].as_bool() == Some(true) {
        out.push(format!(
            "Measured inside a virtual machine (virtualisation here: {mode}): absolute figures include the hypervisor's costs, and a micro-VM here would be nested. Compare ratios, not absolute times, with bare-metal results."
        ));
    }
    let pvm_guests: Vec<String> = runtimes
        .iter()
        .filter(|r| r.measured && r.variant.ends_with("-pvm"))
        .map(|r| format!("{}:{}", r.runtime, r.variant))
        .collect();
    if mode == "kvm-pvm" && !pvm_guests.is_empty() {
        out.push(format!(
            "{}: under KVM-PVM a guest that is not PVM-aware (edgebench's unikernel, a stock Linux kernel) runs in KVM's instruction emulator, not natively (the README gives how much slower that was here). Their cold starts and latencies are emulator figures: never read them as hardware-KVM ones.",
            pvm_guests.join(", ")
        ));
    }
    let cpus = env["logical_cpus"].as_u64().unwrap_or(0);
    let plan = &env["test_bed"]["cpus"];
    let remote = campaign.environment["target"].is_object();
    match plan["mode"].as_str() {
        // Client and runtimes on different hosts: no CPU plan to qualify.
        _ if remote => {}
        Some("split") => out.push(format!(
            "Client on CPU(s) {}, runtimes on CPU(s) {}: they no longer compete, but every sequential request now wakes a process on another CPU, which costs more inside a virtual machine (an inter-processor interrupt through the hypervisor): compare keep-alive latencies with other hosts only under the same CPU plan.",
            plan["client"].as_str().unwrap_or("?"),
            plan["sut"].as_str().unwrap_or("?")
        )),
        Some(_) => out.push(format!(
            "Client and runtimes shared CPU(s) {}: the probe and the load generator competed with the runtime they measured, so latencies and throughput include that contention.",
            plan["sut"].as_str().unwrap_or("?")
        )),
        None if (1..=2).contains(&cpus) => out.push(format!(
            "{cpus} logical CPUs: the client, the readiness probe and the runtime share them, so latencies include scheduling delays."
        )),
        None => {}
    }
    let load: f64 =
        env["loadavg_at_start"].as_str().and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
    if cpus > 0 && load > 0.5 * cpus as f64 {
        out.push(format!(
            "Load average {load} when the campaign started on {cpus} CPUs: other work shared the machine, which widens the intervals."
        ));
    }
    out.extend(coarse_probe(cells));
    let governor = env["governor"].as_str().unwrap_or("unknown");
    if governor != "performance" {
        out.push(format!("CPU frequency is not pinned (governor: {governor})."));
    }
    let base_path = cells.iter().find(|c| c.is_baseline).map(|c| c.path.clone()).unwrap_or_default();
    let other_paths: Vec<String> = cells
        .iter()
        .filter(|c| c.path != base_path)
        .map(|c| format!("{} {} ({})", c.runtime, c.variant, c.path))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !other_paths.is_empty() {
        out.push(format!(
            "Behind firewall profiles, {} reached their instances over another network path than {name} ({}): no ratio to {name} and no ranking with the runtimes on {name}'s path is made for them; their deltas between profiles (on their own path) stand.",
            other_paths.join(", "),
            if base_path.is_empty() { "unknown".to_string() } else { base_path }
        ));
    }
    // Open-loop tails are in the throughput part (samples), not in the cells.
    if !cells.iter().any(|c| c.metric == "open_loop_p99") && !samples.iter().any(|s| s.metric == "open_loop_p99") {
        out.push("Latency is measured closed-loop (one request at a time), not at a fixed arrival rate: tails under load are not covered (`--metrics throughput` adds them).".into());
    }
    let reps = cells.iter().filter(|c| c.metric == "cold_start" && c.n > 0).map(|c| c.trials.len()).min();
    if let Some(r) = reps.filter(|r| *r < 6) {
        out.push(format!(
            "Only {r} trial(s) per configuration: a median of per-trial values has no 95% interval yet and no difference between runtimes can reach significance. Run with --reps 10 or more."
        ));
    }
    let key: Vec<&Cell> = cells.iter().filter(|c| is_key_cell(c) && c.n > 0).collect();
    let noisy: Vec<&&Cell> = key
        .iter()
        .filter(|c| c.noise.is_some_and(|n| matches!(n.level, NoiseLevel::Noisy | NoiseLevel::VeryNoisy)))
        .collect();
    if !noisy.is_empty() {
        out.push(format!(
            "{} of {} key cells are noisy (95% interval of the per-trial median wider than ±5%); {} (see Data quality).",
            noisy.len(),
            key.len(),
            more_hint(&noisy)
        ));
    }
    let warm = cells.iter().filter(|c| c.first_k.as_ref().is_some_and(|f| f.flagged)).count();
    if warm > 0 {
        out.push(format!("The first values differ from the rest in {warm} cell(s) (warm-up or drift, see Data quality); nothing was dropped."));
    }
    let outliers: usize = cells.iter().map(|c| c.outlier_reps.len()).sum();
    if outliers > 0 {
        out.push(format!("{outliers} trial value(s) are MAD outliers (modified z beyond ±3.5): flagged in Data quality, kept in every figure."));
    }
    let failed = samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")).count();
    if failed > 0 {
        out.push(format!("{failed} measurement(s) failed; they are listed under Failures and are in no figure."));
    }
    let mut missing: Vec<String> = runtimes
        .iter()
        .filter(|r| !r.measured)
        .map(|r| format!("{} ({})", r.runtime, super::format::short(&r.reason, 160)))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        out.push(format!("Not measured: {}.", missing.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Sample;

    fn samples(runtime: &str, variant: &str, metric: &str, phase: &str, value: f64) -> Vec<Sample> {
        (1..=6)
            .map(|rep| Sample {
                runtime: runtime.into(),
                variant: variant.into(),
                workload: "hello".into(),
                metric: metric.into(),
                phase: phase.into(),
                firewall: "off".into(),
                edge: "none".into(),
                repetition: rep,
                seq: 0,
                value: Some(value * (1.0 + f64::from(rep) / 100.0)),
                unit: "ms".into(),
                ts_ns: i64::from(rep),
                ok: true,
                error: String::new(),
                detail: String::new(),
            })
            .collect()
    }

    #[test]
    fn each_kind_of_start_is_ranked_apart() {
        let mut all = samples("native", "static-musl", "cold_start", "", 1.0);
        all.extend(samples("wasmtime-embedded", "precompiled-pooling", "cold_start", "", 3.0));
        all.extend(samples("wasmcloud", "deploy-cold", "cold_start", "", 0.5));
        all.extend(samples("wasmtime-embedded", "precompiled-pooling", "warm_start", "", 0.5));
        all.extend(samples("docker", "bridge", "warm_start", "unpause", 0.3));
        all.extend(samples("docker", "bridge", "warm_start", "restart", 300.0));
        let mut cells = super::super::summarize(&all);
        for c in cells.iter_mut().filter(|c| c.variant == "deploy-cold") {
            c.start_kind = "deploy-on-running-host".into();
        }
        let answer = |title: &str| {
            let need = NEEDS.iter().find(|n| n.title.starts_with(title)).unwrap();
            find_need(need, &cells).and_then(|f| f.answer).unwrap_or_default()
        };
        assert!(answer("Scale to zero").starts_with("wasmtime-embedded"), "a deploy is not a cold start from nothing");
        assert!(answer("Deploy onto a host").starts_with("wasmcloud"));
        assert!(answer("A fresh instance per request").starts_with("wasmtime-embedded"), "unpause is no new instance");
        assert!(answer("Resume a paused instance").starts_with("docker (bridge) unpause"));
        assert!(answer("Restart a stopped instance").starts_with("docker (bridge) restart"));
    }
}
