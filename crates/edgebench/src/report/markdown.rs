//! `report.md`: key figures, one table per metric, failures, and a methods
//! section generated from the campaign itself.

use super::Cell;
use crate::store::{CampaignRow, RuntimeRow, Sample};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Every metric, in report order, with its definition (t0 → t1).
pub const METRICS: &[(&str, &str)] = &[
    ("cold_start", "t0 just before the launch call (process spawn) → t1 the first complete `200` response with the expected body."),
    ("cold_start_accept", "t0 → the first TCP connection the instance accepted (an intermediate event of the cold start)."),
    ("probe_interval", "Mean time between two readiness-probe attempts during a cold start: readiness is seen at most about one interval late."),
    ("warm_start", "A new instance of the workload on a runtime whose process and compiled artifact are already loaded: request written on a new connection → response read, from the client."),
    ("warm_start_internal", "The same warm start as timed inside the runtime (embedded host: instantiation of the component)."),
    ("latency_keepalive", "Request written → complete response read, sequential requests on one kept-alive connection."),
    ("latency_newconn", "Connect → request written → complete response read, a new TCP connection per request."),
    ("memory_pss", "Proportional set size summed over every process of the instance (/proc/PID/smaps_rollup): shared pages split between the processes that map them."),
    ("memory_pss_anon", "Anonymous part of the PSS (heap, stacks, instance memory)."),
    ("memory_pss_file", "File-backed part of the PSS (binaries and shared libraries)."),
    ("memory_rss", "Resident set size summed over every process of the instance (shared pages counted in full)."),
    ("cpu_time", "Run time of all threads of the instance (/proc/PID/task/*/schedstat) during the phase: `boot` = launch → ready, `latency` = warm starts and latency runs."),
    ("cpu_idle", "CPU time the started instance uses while idle (no requests for 250 ms), per second."),
    ("throughput", "Requests per second: phase `closed-cN` = N connections sending as fast as answers come (maximum rate); phase `open-p99<Xms` = the highest fixed arrival rate whose p99 stayed under X ms with nothing dropped, found by bisection."),
    ("throughput_p50", "Median latency during the closed-loop throughput run."),
    ("throughput_p99", "p99 latency during the closed-loop throughput run."),
    ("cpu_per_request", "CPU time of the instance during the closed-loop run divided by the requests it answered."),
    ("open_loop_p99", "p99 latency at a fixed arrival rate (phase `rate=R`), measured from each request's intended send time when the connection was still busy (no coordinated omission)."),
    ("open_loop_achieved", "Requests per second actually completed at that offered rate."),
    ("scaling_start", "Cold start of each of K instances launched at once from K threads (phase `k=K`)."),
    ("scaling_rate", "K divided by the time until all K instances answered (instances/s)."),
    ("firewall_apply", "Time to apply the trial's firewall profile before its cold start: t0 just before starting `nft -j -f -` with the profile's ruleset → t1 `nft` exited (the transaction committed). `off` removes our table."),
    ("density", "Instances running at once when adding one more broke a limit: the memory budget (PSS of all instances), the latency objective (p99 on the newest), a failed start, or the bound. The cause is in the table's note."),
];

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;").replace(['\n', '\r'], " ")
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn median_with_ci(c: &Cell) -> String {
    if c.n == 0 {
        return "–".into();
    }
    format!("{} [{}, {}]", fmt(c.median), fmt(c.median_ci.0), fmt(c.median_ci.1))
}

fn ratio(c: &Cell) -> String {
    match c.ratio {
        Some((r, lo, hi)) => format!("{}× [{}, {}]", fmt(r), fmt(lo), fmt(hi)),
        None => "–".into(),
    }
}

type RowKey<'a> = (&'a str, &'a str, &'a str, &'a str);

fn find<'a>(cells: &'a [Cell], key: RowKey<'_>, metric: &str, phase: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.runtime == key.0
            && c.variant == key.1
            && c.workload == key.2
            && c.firewall == key.3
            && c.metric == metric
            && c.phase == phase
    })
}

/// The variant, with the firewall profile when there is one.
fn variant_label(variant: &str, firewall: &str) -> String {
    if firewall == "off" {
        esc(variant)
    } else {
        format!("{}, firewall {}", esc(variant), esc(firewall))
    }
}

/// Runtime × variant × workload rows with the main figures.
pub fn headline_table(cells: &[Cell]) -> String {
    let mut keys: Vec<RowKey<'_>> = cells
        .iter()
        .map(|c| (c.runtime.as_str(), c.variant.as_str(), c.workload.as_str(), c.firewall.as_str()))
        .collect();
    keys.sort_by_key(|k| (k.2, k.0, k.1, super::firewall::profile_order(k.3)));
    keys.dedup();
    let mut out = String::from(
        "| workload | runtime | variant | cold start ms, median [95% CI] | × native | warm start ms | keep-alive p50 / p99 ms | new-conn p50 ms | PSS after boot MiB |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for key in keys {
        let get = |m: &str, p: &str| find(cells, key, m, p);
        let cold = get("cold_start", "");
        let warm = match get("warm_start", "") {
            Some(c) if c.n > 0 => fmt(c.median),
            Some(c) if c.note.starts_with("not applicable") => "n/a".into(),
            Some(_) => "failed".into(),
            None => "–".into(),
        };
        let ka = get("latency_keepalive", "")
            .filter(|c| c.n > 0)
            .map(|c| format!("{} / {}", fmt(c.median), fmt(c.p99)))
            .unwrap_or_else(|| "–".into());
        let nc = get("latency_newconn", "").filter(|c| c.n > 0).map(|c| fmt(c.median)).unwrap_or_else(|| "–".into());
        let pss = get("memory_pss", "after_boot")
            .filter(|c| c.n > 0)
            .map(|c| fmt(c.median / 1024.0))
            .unwrap_or_else(|| "–".into());
        let (cold_s, cold_r) = match cold {
            Some(c) if c.n == 0 => (format!("failed ({})", c.failed), "–".into()),
            Some(c) => (median_with_ci(c), ratio(c)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {cold_s} | {cold_r} | {warm} | {ka} | {nc} | {pss} |",
            esc(key.2),
            esc(key.0),
            variant_label(key.1, key.3)
        );
    }
    out
}

pub fn render(campaign: &CampaignRow, runtimes: &[RuntimeRow], cells: &[Cell], samples: &[Sample]) -> String {
    let env = &campaign.environment;
    let cfg = &campaign.config;
    let virt = env["virtualization"]["mode"].as_str().unwrap_or("unknown");
    let mut out = String::new();
    let _ = writeln!(out, "# edgebench report: campaign {}\n", esc(&campaign.id));
    let _ = writeln!(
        out,
        "Status **{}**; started {} UTC; commit `{}`; {} × {} on {} ({}); virtualisation: **{}**.\n",
        esc(&campaign.status),
        chrono::DateTime::from_timestamp_nanos(campaign.started_ns).format("%Y-%m-%d %H:%M:%S"),
        esc(env["edgebench_commit"].as_str().unwrap_or("unknown")),
        env["logical_cpus"],
        esc(env["cpu_model"].as_str().unwrap_or("unknown CPU")),
        esc(env["kernel"].as_str().unwrap_or("unknown kernel")),
        esc(env["os"].as_str().unwrap_or("")),
        esc(virt),
    );
    out.push_str("## Key figures\n\nMedians with their 95% confidence interval; ratios to the native baseline with a bootstrap 95% interval. Every figure comes from the raw samples in `results.sqlite`.\n\n");
    out.push_str(&headline_table(cells));

    let missing: Vec<&RuntimeRow> = runtimes.iter().filter(|r| !r.measured).collect();
    if !missing.is_empty() {
        out.push_str("\n## Not measured\n\n");
        for r in missing {
            let _ = writeln!(out, "- **{}** ({}): not measured: {}", esc(&r.runtime), esc(&r.variant), esc(&r.reason));
        }
    }

    out.push_str("\n## Results by metric\n");
    for (metric, definition) in METRICS {
        let rows: Vec<&Cell> = cells.iter().filter(|c| c.metric == *metric).collect();
        if rows.is_empty() {
            continue;
        }
        let unit = rows.iter().find(|c| !c.unit.is_empty()).map(|c| c.unit.as_str()).unwrap_or("");
        let _ = writeln!(out, "\n### {metric} ({unit})\n\n{definition}\n");
        out.push_str("| workload | runtime | variant | phase | n (failed) | median [95% CI] | p90 | p99 | max | CV | × native [95% CI] | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let mut rows = rows;
        rows.sort_by_key(|c| {
            (&c.workload, &c.runtime, &c.variant, super::firewall::profile_order(&c.firewall), &c.phase)
        });
        for c in rows {
            if c.n == 0 {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | 0 ({}) | {} | | | | | | |",
                    esc(&c.workload),
                    esc(&c.runtime),
                    variant_label(&c.variant, &c.firewall),
                    esc(&c.phase),
                    c.failed,
                    esc(&short(&c.note))
                );
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {:.1}% | {} | {} |",
                esc(&c.workload),
                esc(&c.runtime),
                variant_label(&c.variant, &c.firewall),
                esc(&c.phase),
                c.n,
                c.failed,
                median_with_ci(c),
                fmt(c.p90),
                fmt(c.p99),
                fmt(c.max),
                c.cv * 100.0,
                ratio(c),
                esc(&short(&c.note))
            );
        }
    }

    let failures: BTreeMap<(String, String, String), (usize, String)> =
        samples.iter().filter(|s| !s.ok && !s.error.starts_with("not applicable")).fold(BTreeMap::new(), |mut m, s| {
            let e = m.entry((s.runtime.clone(), s.variant.clone(), s.metric.clone())).or_insert((0, s.error.clone()));
            e.0 += 1;
            m
        });
    if !failures.is_empty() {
        out.push_str("\n## Failures\n\nFailed measurements are stored with `ok = 0` and their error; they are not in the statistics above.\n\n");
        for ((runtime, variant, metric), (count, first)) in failures {
            let _ = writeln!(
                out,
                "- {} ({}) {}: {} failed; first: {}",
                esc(&runtime),
                esc(&variant),
                esc(&metric),
                count,
                esc(&short(&first))
            );
        }
    }

    out.push_str("\n## Methods\n\n");
    let _ = writeln!(
        out,
        "- **Design.** {} trial(s) per runtime × variant × workload; a trial launches one instance (one cold start), then measures {} warm start(s), {} keep-alive and {} new-connection requests (after {} unrecorded warm-up requests each), memory after boot and after the requests, then stops the instance and everything it started.",
        cfg["reps"], cfg["warm_starts"], cfg["requests"], cfg["requests"], cfg["warmup_requests"]
    );
    let _ = writeln!(
        out,
        "- **Order.** All trials of all runtimes are interleaved in one random order drawn from seed {} (ChaCha8), so that drift of the machine's state is spread over every runtime. {}",
        campaign.seed,
        if cfg["warmup"].as_bool().unwrap_or(false) {
            "Before measuring, each configuration was launched once, unrecorded (binaries in the page cache, compile caches filled): cold starts here are *process-cold*, not *disk-cold*."
        } else {
            "No warm-up launch was made."
        }
    );
    out.push_str("- **Probe.** The readiness probe connects, sends the workload's request and reads the whole response in a loop, sleeping 50 µs between attempts (timer slack 1 µs). The achieved interval is the `probe_interval` metric.\n");
    if cfg["firewall"].as_array().is_some_and(|p| p.iter().any(|p| p != "off")) {
        out.push_str("- **Environment of runtimes.** Every runtime starts with only PATH, LANG and a campaign-private HOME (compile caches start empty); nothing of the user's shell is inherited. Traffic goes only into the campaign's own network namespace over its veth pair, or to 127.0.0.1 (see *Behind a host firewall*).\n");
    } else {
        out.push_str("- **Environment of runtimes.** Every runtime starts with only PATH, LANG and a campaign-private HOME (compile caches start empty); nothing of the user's shell is inherited. All traffic stays on 127.0.0.1.\n");
    }
    out.push_str("- **Statistics.** Medians with a distribution-free 95% interval from order statistics (binomial); p90/p99/p99.9 by linear interpolation (type 7); ratios to `native` as the ratio of medians with a percentile-bootstrap 95% interval (1000 resamples, fixed seed). Latency samples of all trials are pooled per cell. CV is the coefficient of variation. No sample is discarded as an outlier.\n");
    out.push_str("\n### Metric definitions\n\n");
    for (metric, definition) in METRICS {
        let _ = writeln!(out, "- `{metric}`: {definition}");
    }
    out.push_str("\n### Runtimes\n\n| runtime | variant | measured | version | path |\n|---|---|---|---|---|\n");
    for r in runtimes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            esc(&r.runtime),
            esc(&r.variant),
            if r.measured { "yes" } else { "no" },
            esc(&r.version),
            esc(&r.path)
        );
    }
    let mut notes = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in runtimes {
        if let Some(map) = r.notes.as_object() {
            for (workload, note) in map {
                if seen.insert((r.runtime.clone(), workload.clone())) {
                    let _ = writeln!(
                        notes,
                        "- {} / {}: {}",
                        esc(&r.runtime),
                        esc(workload),
                        esc(note.as_str().unwrap_or(""))
                    );
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\n### How each runtime runs the workloads\n\n");
        out.push_str(&notes);
    }
    out.push_str("\n### Environment\n\n");
    if let Some(map) = env.as_object() {
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "- {}: `{}`", esc(k), esc(&text).replace('`', "'"));
        }
    }
    out
}

fn short(s: &str) -> String {
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_table_breaking_text() {
        assert_eq!(esc("a|b<script>\nc"), "a\\|b&lt;script&gt; c");
        assert_eq!(fmt(1234.5), "1234");
        assert_eq!(fmt(0.01234), "0.012");
    }
}
