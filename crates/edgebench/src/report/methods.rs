//! The methods section, generated from the campaign: design, order, probe,
//! statistics. Items are unescaped text with inline Markdown (`code`,
//! **bold**): the Markdown renderer escapes them for Markdown, the HTML
//! renderer escapes them before turning that markup into tags.

use super::stats::{Bootstrap, NOISE_TARGET, OUTLIER_Z};
use crate::store::CampaignRow;

pub fn items(campaign: &CampaignRow, comparisons: usize) -> Vec<String> {
    let base = campaign.baseline();
    let cfg = &campaign.config;
    let warmup = if cfg["warmup"].as_bool().unwrap_or(false) {
        "Before measuring, each configuration was launched once, unrecorded (binaries in the page cache, compile caches filled): cold starts here are *process-cold*, not *disk-cold*."
    } else {
        "No warm-up launch was made: the first trial of each configuration may include disk and compile-cache misses."
    };
    let b = Bootstrap::REPORT;
    vec![
        format!(
            "**Design.** {} trial(s) per runtime × variant × workload; a trial launches one instance (one cold start), then measures, in this order: memory after boot, idle CPU, {} keep-alive and {} new-connection requests (after {} unrecorded warm-up requests each{}), memory and CPU of those requests, throughput when asked for, and last {} warm start(s) (a warm start may replace the instance's processes, e.g. Docker `restart`, so no figure measured before includes them); then it stops the instance and everything it started.",
            cfg["reps"], cfg["requests"], cfg["requests"], cfg["warmup_requests"], cfg["latency_limit_ms"].as_u64().map_or(String::new(), |ms| format!("; a run that reaches {ms} ms stops there, and its cell's note says how many requests it took")), cfg["warm_starts"]
        ),
        repetitions(campaign),
        if cfg["planned_in_rounds"].as_bool() == Some(true) {
            format!(
                "**Order.** Trials ran in rounds, one trial of every configuration per round, each round in its own random order drawn from seed {} (ChaCha8): a drift of the machine's state falls on every runtime alike, and a campaign that its time budget ends early leaves every configuration with the same number of trials, give or take one. {warmup}",
                campaign.seed
            )
        } else {
            format!(
                "**Order.** All trials of all runtimes ran interleaved in one random order drawn from seed {} (ChaCha8), so that drift of the machine's state spreads over every runtime. {warmup}",
                campaign.seed
            )
        },
        test_bed(&campaign.environment),
        architecture(&campaign.environment),
        "**Probe.** The readiness probe connects, sends the workload's request and reads the whole response in a loop, sleeping 25 µs between attempts (timer slack 1 µs); the achieved interval is the `probe_interval` metric and the probe's own CPU time `probe_cpu`. While connects go unanswered (a VM whose network is not up drops or queues SYNs), a new non-blocking connect is started beside the earlier ones every 1 ms, or after half the wait so far if longer (at most 64 in flight), and the first to complete is used: a SYN queued in a tap is answered the moment the guest listens, and a lost one costs at most one such interval, not the kernel's 1 s SYN retransmission. Once a connection is accepted, the first answer is waited for as long as the runtime's ready timeout allows (a slow first answer is measured, never abandoned and retried).".into(),
        "**Settling.** After each trial's instance is stopped (outside every timed interval), edgebench waits until the runtime CPUs are quiet again before the next trial starts (under 10% busy over 20 ms, at most `--settle-max-ms`, default 2 s); the wait and the last window's busy share are stored (`settle`, `settle_busy`).".into(),
        if campaign.environment["link"]["target"].is_string() {
            "**Environment of runtimes.** On the remote target, every runtime starts from the agent with only PATH, LANG and a campaign-private HOME (compile caches start empty); nothing of the user's shell is inherited. Instances listen on the address the client reached the target's SSH server at (see *Hosts and clocks*).".into()
        } else if cfg["firewall"].as_array().is_some_and(|p| p.iter().any(|p| p != "off")) {
            "**Environment of runtimes.** Every runtime starts with only PATH, LANG and a campaign-private HOME (compile caches start empty); nothing of the user's shell is inherited. Traffic goes only into the campaign's own network namespace over its veth pair, or to 127.0.0.1 (see *Behind a host firewall*).".into()
        } else {
            "**Environment of runtimes.** Every runtime starts with only PATH, LANG and a campaign-private HOME (compile caches start empty); nothing of the user's shell is inherited. All traffic stays on 127.0.0.1.".into()
        },
        format!(
            "**Kinds of start, each timed and ranked on its own** (the summary never ranks one kind against another): {}.",
            super::findings::START_KINDS.iter().map(|(k, d)| format!("*{k}*: {d}")).collect::<Vec<_>>().join(" ")
        ),
        "**Unit of replication.** The trial: requests and warm starts of one trial share one instance and are not independent. Tests, noise verdicts and outlier flags use one value per trial (its median where it has several).".into(),
        "**Medians and their intervals: the trial is the unit.** The median is of all successful samples of a cell. Its 95% interval: where a trial gives one value (cold start, memory, CPU), the distribution-free interval from order statistics of the trial values (binomial, exact coverage ≥ 95%; with fewer than 6 trials the whole range, whose lower coverage is stated); where a trial gives many correlated values (the requests of a latency run, the warm starts of one instance), a percentile bootstrap of the pooled median that resamples whole trials, so the interval shows how much trials differ, not how many requests were sent (with fewer than 3 trials no interval is given). `summary.csv` names the method of each cell (`median_ci_method`).".into(),
        format!(
            "**Percentiles.** p90/p99/p99.9 by linear interpolation between order statistics (type 7). The p99 interval is a percentile bootstrap that resamples whole trials ({} resamples, fixed seed {:#x}, 95%).",
            b.resamples, b.seed
        ),
        format!("**Ratios to {base}.** Median of the runtime ÷ median of `{base}` (the campaign's baseline) for the same workload, metric, phase and firewall profile, with a percentile-bootstrap 95% interval resampling trials on both sides."),
        format!(
            "**Significance against {base}.** Two-sided Mann–Whitney U on per-trial values: exact null distribution when there are no ties and n1·n2 ≤ 2500, else the normal approximation with tie and continuity corrections. Holm's step-down correction over all {comparisons} comparisons in this report (family-wise α = 0.05). Effect size: Cliff's δ = P(runtime > {base}) − P(runtime < {base}), |δ| < 0.147 negligible, < 0.33 small, < 0.474 medium, else large. With fewer than 4 trials per side no two-sided p-value can fall below 0.05."
        ),
        format!(
            "**Outliers.** In cells with at least {} trials, per-trial values with |modified z| = |0.6745 (x − median) / MAD| > {OUTLIER_Z} are flagged (mean absolute deviation × 1.2533 when the MAD is 0). Nothing is dropped: every figure includes them.",
            super::summary::MIN_TRIALS_FOR_OUTLIERS
        ),
        "**Warm-up check.** Cells with one value per trial: the first fifth of trials in time order (at least 2) against the rest, Mann–Whitney. Cells with several values per trial: the first tenth of each trial against the rest of that trial, sign test over trials. Flagged when p < 0.01 and the medians differ by 5% or more; not corrected for multiplicity (about 1% of cells may be flagged by chance): a pointer to look, not a verdict. With 10 trials the across-trial test cannot reach p < 0.01; it needs about 15.".into(),
        format!(
            "**Noise.** Per cell: CV of per-trial values, and the half-width of the 95% interval of their median relative to that median: quiet ≤ {:.0}%, noisy ≤ 20%, very noisy above; fewer than 6 trials give no 95% interval. The hint \"about k more repetitions for ±{:.0}%\" assumes the interval narrows as 1/√n: n·(half-width ÷ {:.0}%)² trials are needed.",
            NOISE_TARGET * 100.0, NOISE_TARGET * 100.0, NOISE_TARGET * 100.0
        ),
        format!("**Campaign.** `{}`, status {}, results in `results.sqlite` (every raw sample, with failures as `ok = 0`).", campaign.id, campaign.status),
    ]
}

/// Where the client and the runtimes ran (campaigns before CPU plans: unknown).
fn test_bed(environment: &serde_json::Value) -> String {
    let cpus = &environment["test_bed"]["cpus"];
    match cpus["mode"].as_str() {
        Some("client-only") => remote_target(environment),
        Some("split") => format!(
            "**CPUs.** Client and runtimes on disjoint CPUs: edgebench's probe, latency client and load generator on CPU(s) `{}`; every runtime process, container, VMM and daemon edgebench starts on CPU(s) `{}` ({}). Runtimes that take a worker count get {} (one per runtime CPU); each runtime's serving model and network path are listed under *How each runtime runs the workloads*.",
            cpus["client"].as_str().unwrap_or("?"),
            cpus["sut"].as_str().unwrap_or("?"),
            cpus["why"].as_str().unwrap_or(""),
            cpus["sut_workers"]
        ),
        Some(_) => format!(
            "**CPUs.** Client and runtimes shared CPU(s) `{}` ({}): the probe and load generator competed with the runtime they measured.",
            cpus["sut"].as_str().unwrap_or("?"),
            cpus["why"].as_str().unwrap_or("")
        ),
        None => "**CPUs.** Not recorded (a campaign from before CPU plans): client and runtimes shared every CPU, unpinned.".into(),
    }
}

/// The architecture the runtimes ran on, and which artifacts are built for it.
fn architecture(environment: &serde_json::Value) -> String {
    let machine = crate::environment::machine(environment);
    let arch = machine["arch"]
        .as_str()
        .map_or("not recorded (a campaign from before it was)".to_string(), |a| format!("`{a}`"));
    format!(
        "**Architecture.** The runtimes ran on {arch}. The Wasm artifacts (the `wasi:http` components and the preview-1 modules) are the same files on every architecture (portable); the native server, the embedded Wasmtime host with its precompiled components, and the micro-VM guest's init are built for each architecture (`edgebench build --target aarch64` for arm64)."
    )
}

/// A campaign whose runtimes ran on another host (remote.rs): which host
/// timed what, and the link every request crossed.
fn remote_target(environment: &serde_json::Value) -> String {
    let (link, target) = (&environment["link"], &environment["target"]);
    let sut = &target["test_bed"]["cpus"];
    let median = |k: &str| link[k]["median"].as_f64().map_or("not measured".into(), |v| format!("{v:.3} ms"));
    format!(
        "**Hosts and clocks.** The runtimes ran on the remote target `{}` (host `{}`, architecture `{}`, kernel `{}`, virtualisation `{}`), driven by `edgebench agent` over SSH; there, runtimes on CPU(s) `{}` ({}). This host ran only the client (probe, latency client, load generator) on CPU(s) `{}`. Every interval is timed on one host, never by subtracting two hosts' clocks. On the client: `cold_start` (t0 just before the launch request is written to the SSH session, t1 the first correct answer read here: it includes the request's one-way trip to the agent), `latency_*` and throughput (every request crosses the link). On the target: memory, CPU, warm starts, settling, the runtime's own launch phases (from its launch call there), and the agent's share of the cold start: `cold_start_agent_dispatch` (request read → launch call) and `cold_start_agent_launch_call`. The link, measured before the campaign on the client: TCP connect round trip to the target's SSH port, median {} (n = {}); an agent request → reply over SSH, median {}.",
        link["target"].as_str().unwrap_or("?"),
        target["hostname"].as_str().unwrap_or("?"),
        target["arch"].as_str().unwrap_or("not recorded"),
        target["kernel"].as_str().unwrap_or("?"),
        target["virtualization"]["mode"].as_str().unwrap_or("unknown"),
        sut["sut"].as_str().unwrap_or("?"),
        sut["why"].as_str().unwrap_or(""),
        environment["test_bed"]["cpus"]["client"].as_str().unwrap_or("?"),
        median("tcp_connect_rtt_ms"),
        link["tcp_connect_rtt_ms"]["n"],
        median("control_rtt_ms"),
    )
}

/// Inline Markdown (`code`, **bold**, *emphasis*) to HTML, after escaping.
pub fn inline_html(item: &str) -> String {
    let escaped = super::format::html(item);
    let mut out = String::new();
    let mut rest = escaped.as_str();
    let (mut code, mut strong, mut em) = (false, false, false);
    while let Some(i) = rest.find(['`', '*']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else if code {
            out.push('*');
            rest = &rest[1..];
        } else if rest.starts_with("**") {
            out.push_str(if strong { "</strong>" } else { "<strong>" });
            strong = !strong;
            rest = &rest[2..];
        } else {
            out.push_str(if em { "</em>" } else { "<em>" });
            em = !em;
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    for (open, tag) in [(code, "</code>"), (strong, "</strong>"), (em, "</em>")] {
        if open {
            out.push_str(tag);
        }
    }
    out
}

/// How the number of trials was decided (`--reps`, `--precision`).
fn repetitions(campaign: &CampaignRow) -> String {
    let cfg = &campaign.config;
    match cfg["precision"].as_f64() {
        None => format!(
            "**Repetitions.** Fixed: {} trials per configuration (adaptive repetitions off).",
            cfg["reps"]
        ),
        Some(target) => format!(
            "**Repetitions.** Adaptive: after the {} planned trials per configuration, rounds of more trials for each configuration whose key cells' 95% interval of the per-trial median was wider than ±{:.1}% of the median; each round adds about n·(half-width / {:.1}%)² − n trials (the interval narrows as 1/√n), at most doubling a configuration's trials, up to {} trials per configuration{}. A round's trials are shuffled together (ChaCha8, seeded by the campaign's seed and the round), so they stay interleaved across configurations; stopping on precision is a sequential rule, so a reached interval is an estimate of precision, not a guarantee of coverage. Data quality lists the key cells that did not reach it.",
            cfg["reps"],
            target * 100.0,
            target * 100.0,
            cfg["max_reps"],
            cfg["budget_s"].as_u64().map_or(String::new(), |s| format!(
                ", and only while the campaign had run less than {s} s (a round's trials estimated from each configuration's mean trial time), spent on the widest intervals first"
            ))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_becomes_tags_and_html_stays_escaped() {
        assert_eq!(inline_html("**A.** use `x<y` *now*"), "<strong>A.</strong> use <code>x&lt;y</code> <em>now</em>");
        assert_eq!(inline_html("`a*b`"), "<code>a*b</code>");
        assert_eq!(inline_html("<script>**"), "&lt;script&gt;<strong></strong>");
    }
}
