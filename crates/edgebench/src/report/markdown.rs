//! `report.md`: the model's summary, key figures, one table per metric,
//! throughput, scaling, data quality, firewall and a methods section
//! generated from the campaign itself.

use super::{Cell, Model};
use crate::store::RuntimeRow;
use std::fmt::Write;

/// Every metric, in report order, with its definition (t0 → t1).
/// Every metric the cells hold: the defined ones in [`METRICS`] order, then
/// any other (a runtime's own events and resources) by name, so that no
/// stored metric is left out of a report.
pub fn metrics_in_order(cells: &[Cell]) -> Vec<(&str, &'static str)> {
    let mut out: Vec<(&str, &'static str)> =
        METRICS.iter().filter(|(m, _)| cells.iter().any(|c| c.metric == *m)).map(|(m, d)| (*m, *d)).collect();
    let mut extra: Vec<&str> =
        cells.iter().map(|c| c.metric.as_str()).filter(|m| !METRICS.iter().any(|(k, _)| k == m)).collect();
    extra.sort();
    extra.dedup();
    out.extend(extra.into_iter().map(|m| (m, OTHER_METRIC)));
    out
}

/// The definition of a metric not in [`METRICS`].
pub const OTHER_METRIC: &str = "A runtime-specific intermediate event or resource (see the runtime's notes).";

pub const METRICS: &[(&str, &str)] = &[
    ("cold_start", "t0 just before the launch call (process spawn) → t1 the first complete `200` response with the expected body."),
    ("cold_start_accept", "t0 → the first TCP connection the instance accepted (an intermediate event of the cold start)."),
    ("cold_start_exec", "Embedded host: t0 → the host's `main` (exec, dynamic setup), both on CLOCK_MONOTONIC."),
    ("cold_start_engine", "Embedded host: t0 → the Wasmtime engine (and its pooling allocator) created."),
    ("cold_start_load", "Embedded host: t0 → the precompiled component deserialised (mmap of the .cwasm)."),
    ("cold_start_pre", "Embedded host: t0 → the linker built and the component pre-instantiated (`InstancePre`)."),
    ("cold_start_listen", "Embedded host: t0 → listening (it listens first: the first connections complete while it loads)."),
    ("cold_start_runtime", "Embedded host: t0 → its tokio runtime built."),
    ("cold_start_serve", "Embedded host: t0 → accepting; what is left of `cold_start` is the first request's instance and response."),
    ("probe_interval", "Mean time between two readiness-probe attempts during a cold start: readiness is seen at most about one interval late."),
    ("probe_cpu", "CPU time the readiness probe itself spent during a cold start (its thread's CPU clock; it runs on the client's CPUs, apart from the runtime's when the CPUs are split)."),
    ("settle", "Phase `after_stop`, outside every timed interval: after the trial's instance is stopped, the wait until the runtime CPUs are quiet again (under 10% busy over 20 ms, at most `--settle-max-ms`, default 2 s); the next trial starts only then."),
    ("settle_busy", "How busy the runtime CPUs were over the last 20 ms of that wait (%): above 10 means the bound ended the wait, not quiet."),
    ("warm_start", "A new instance of the workload on a runtime whose process and compiled artifact are already loaded: request written on a new connection → response read, from the client. workerd `loader`: a new isolate on the running process, which compiles the Wasm module itself."),
    ("warm_start_internal", "The same warm start as timed inside the runtime (embedded host: request received → instantiation and the guest's handler → response set)."),
    ("latency_keepalive", "Request written → complete response read, sequential requests on one kept-alive connection."),
    ("latency_newconn", "Connect → request written → complete response read, a new TCP connection per request."),
    ("memory_pss", "Proportional set size summed over every process of the instance (/proc/PID/smaps_rollup): shared pages split between the processes that map them."),
    ("memory_pss_anon", "Anonymous part of the PSS (heap, stacks, instance memory)."),
    ("memory_pss_file", "File-backed part of the PSS (binaries and shared libraries)."),
    ("memory_rss", "Resident set size summed over every process of the instance (shared pages counted in full)."),
    ("cpu_time", "CPU time of the instance's processes (each process's CPU clock, exited threads included) during the phase: `boot` = launch → ready, `latency` = warm starts and latency runs."),
    ("cpu_idle", "CPU time the started instance uses while idle (no requests for 250 ms), per second."),
    ("vmm_overhead_pss", "Micro-VMs: PSS of the VMM process without its guest-RAM mapping (found in /proc/PID/smaps by its size): what the VMM itself costs."),
    ("guest_memory", "Micro-VMs: PSS of the VMM's guest-RAM mapping: the guest memory the host actually backs."),
    ("vmm_boot", "Firecracker vmm-floor (a minimal guest that only writes the boot timer; no workload): t0 just before spawning firecracker → phase `api_ready` (API answers), `configured`, `instance_start` (InstanceStart answered), `boot_timer_seen` (the boot timer's log line read by edgebench, polled after the InstanceStart answer)."),
    ("vmm_boot_timer", "Firecracker's own boot timer, InstanceStart request received → the guest's write to it (vmm-floor: its only act; the unikernel: the start of its main, so guest boot apart from VMM time)."),
    ("image_size", "Size of the guest image the VMM boots (the unikernel's ELF, or the user's kernel), phase `prepare`."),
    ("vmm_restore", "Firecracker vmm-floor: t0 just before spawning firecracker → phase `api_ready`, `resumed` (snapshot load with resume answered), from a snapshot created once per campaign."),
    ("throughput", "Requests per second: phase `closed-cN` = N connections sending as fast as answers come (maximum rate); phase `open-p99<Xms` = the highest fixed arrival rate whose p99 stayed under X ms with nothing dropped, found by bisection."),
    ("throughput_p50", "Median latency during the closed-loop throughput run."),
    ("throughput_p99", "p99 latency during the closed-loop throughput run."),
    ("cpu_per_request", "CPU time of the instance during the closed-loop run divided by the requests it answered."),
    ("open_loop_offered", "The arrival rate offered at one step of the open-loop search (phase `search`, `seq` = the step in the order the bisection visited it), req/s."),
    ("open_loop_p99", "p99 latency at a fixed arrival rate (one step of the search, phase `search`), wrk2's definition: every request from its intended send time, whatever delayed its send (no coordinated omission). Requests not sent (more than 1 s behind schedule, or still due when the run ended) are in the distribution at what they had waited, timed-out ones at their elapsed time."),
    ("open_loop_p50", "Median latency at a fixed arrival rate, from the intended send time (as `open_loop_p99`)."),
    ("open_loop_service_p99", "p99 at a fixed arrival rate from each request's actual send (service time as the client sees it): the figure coordinated omission would give, kept apart."),
    ("open_loop_send_error_p99", "p99 of the pacer's error: actual − intended send time of the requests whose connection was free at their due time."),
    ("open_loop_achieved", "Requests per second actually completed at that offered rate."),
    ("load_sent", "Requests written during a load run (phase `closed-cN` or `search`)."),
    ("load_completed", "Responses received and checked against the workload's answer during a load run."),
    ("load_errors", "Failed connects, exchanges, timeouts and wrong answers during a load run."),
    ("load_late", "Open loop: requests already due when their connection was free to send them."),
    ("load_dropped", "Open loop: requests never sent (more than 1 s behind schedule, or due before the run ended); each is in the latency distribution at what it had waited."),
    ("aot_compile", "Ahead-of-time compile of the module (phase `prepare`, once per configuration, before and apart from every cold start): compiler launch → compiler exit."),
    ("aot_compile_memory", "Peak resident set size of the ahead-of-time compiler process (phase `prepare`)."),
    ("scaling_start", "Cold start of each of K instances launched at once from K threads (phase `k=K`)."),
    ("scaling_rate", "K divided by the time until all K instances answered (instances/s)."),
    ("firewall_apply", "Time to apply the trial's firewall profile before its cold start: t0 just before starting `nft -j -f -` with the profile's ruleset → t1 `nft` exited (the transaction committed). `off` removes our table."),
    ("density", "Instances running at once (for the embedded host: tenants in one host process, each a component loaded and linked, with a fresh instance per request; `--tenants-max` bounds them) when adding one more broke a limit: the memory budget (PSS of all instances), the latency objective (p99 on the newest), a failed start, or the bound. The cause is in the sample's detail and the density table."),
    ("density_pss_per_instance", "The density experiment's instances' total PSS at its stop ÷ their count (pages they share are split between them)."),
];

use super::findings::Summary;
use super::format::{md as esc, median_with_ci, num as fmt, p99_with_ci, ratio, short};
use super::significance::magnitude;

/// (runtime, variant, workload, conditions).
type RowKey<'a> = (&'a str, &'a str, &'a str, String);

fn find<'a>(cells: &'a [Cell], key: &RowKey<'_>, metric: &str, phase: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.runtime == key.0
            && c.variant == key.1
            && c.workload == key.2
            && c.conditions() == key.3
            && c.metric == metric
            && c.phase == phase
    })
}

/// The variant, with the firewall and edge profiles when there are.
fn variant_label(variant: &str, conditions: &str) -> String {
    let (firewall, edge) = super::format::split_conditions(conditions);
    let mut out = esc(variant);
    if firewall != "off" {
        out.push_str(&format!(", firewall {}", esc(firewall)));
    }
    if let Some(edge) = edge {
        out.push_str(&format!(", edge {}", esc(edge)));
    }
    out
}

/// Runtime × variant × workload rows with the main figures.
pub fn headline_table(cells: &[Cell]) -> String {
    let mut keys: Vec<RowKey<'_>> =
        cells.iter().map(|c| (c.runtime.as_str(), c.variant.as_str(), c.workload.as_str(), c.conditions())).collect();
    keys.sort_by_key(|k| (k.2, k.0, k.1, super::format::conditions_order(&k.3)));
    keys.dedup();
    let base = super::findings::baseline_name(cells);
    let mut out = format!(
        "| workload | runtime | variant | cold start ms, median [95% CI] | × {base} | warm start ms | keep-alive p50 / p99 ms | new-conn p50 ms | PSS after boot MiB |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for key in keys {
        let get = |m: &str, p: &str| find(cells, &key, m, p);
        let cold = get("cold_start", "");
        // Runtimes with several kinds of warm start (Docker: restart, unpause) list each.
        let warm_cells: Vec<&Cell> = cells
            .iter()
            .filter(|c| {
                (c.runtime.as_str(), c.variant.as_str(), c.workload.as_str(), c.conditions()) == key
                    && c.metric == "warm_start"
            })
            .collect();
        let warm = if warm_cells.is_empty() {
            "–".to_string()
        } else {
            warm_cells
                .iter()
                .map(|c| {
                    let value = match c {
                        c if c.n > 0 => fmt(c.median),
                        c if c.note.starts_with("not applicable") => "n/a".into(),
                        _ => "failed".into(),
                    };
                    if c.phase.is_empty() {
                        value
                    } else {
                        format!("{value} ({})", esc(&c.phase))
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
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
            variant_label(key.1, &key.3)
        );
    }
    out
}

pub fn render(m: &Model) -> String {
    let (campaign, runtimes, cells) = (&m.campaign, &m.runtimes, &m.cells);
    let env = &campaign.environment;
    let virt = env["virtualization"]["mode"].as_str().unwrap_or("unknown");
    let mut out = String::new();
    let _ = writeln!(out, "# edgebench report: campaign {}\n", esc(&campaign.id));
    let _ = writeln!(
        out,
        "Status **{}**; started {} UTC; commit `{}`; {} × {} ({}) on {} ({}); virtualisation: **{}**. The same report with plots: `report.html`.\n",
        esc(&campaign.status),
        chrono::DateTime::from_timestamp_nanos(campaign.started_ns).format("%Y-%m-%d %H:%M:%S"),
        esc(env["edgebench_commit"].as_str().unwrap_or("unknown")),
        env["logical_cpus"],
        esc(env["cpu_model"].as_str().unwrap_or("unknown CPU")),
        esc(env["arch"].as_str().unwrap_or("architecture not recorded")),
        esc(env["kernel"].as_str().unwrap_or("unknown kernel")),
        esc(env["os"].as_str().unwrap_or("")),
        esc(virt),
    );
    out.push_str(&summary_section(&m.summary));
    let base = m.campaign.baseline();
    out.push_str(&format!("\n## Key figures\n\nMedians with their 95% confidence interval; ratios to the {base} baseline with a bootstrap 95% interval. Every figure comes from the raw samples in `results.sqlite`.\n\n"));
    out.push_str(&headline_table(cells));

    let missing: Vec<&RuntimeRow> = runtimes.iter().filter(|r| !r.measured).collect();
    let not_run = workloads_not_run(runtimes);
    if !missing.is_empty() || !not_run.is_empty() {
        out.push_str("\n## Not measured\n\n");
        for r in missing {
            let _ = writeln!(out, "- **{}** ({}): not measured: {}", esc(&r.runtime), esc(&r.variant), esc(&r.reason));
        }
        for (r, workload, why) in not_run {
            let _ = writeln!(
                out,
                "- **{}** ({}), workload {}: {}",
                esc(&r.runtime),
                esc(&r.variant),
                esc(&workload),
                esc(&why)
            );
        }
    }

    out.push_str(&format!("\n## Results by metric\n\np (Holm): two-sided Mann–Whitney against {base} on per-trial values, Holm-adjusted over the whole report; δ: Cliff's δ against {base}. Noise: half-width of the 95% interval of the per-trial median; trials for ±5%: about how many trials would narrow it to ±5%.\n"));
    for d in &m.definitions {
        let (metric, definition) = (&d.metric, &d.definition);
        let rows: Vec<&Cell> = cells.iter().filter(|c| c.metric == *metric).collect();
        if rows.is_empty() {
            continue;
        }
        let unit = rows.iter().find(|c| !c.unit.is_empty()).map(|c| c.unit.as_str()).unwrap_or("");
        let _ = writeln!(out, "\n### {metric} ({unit})\n\n{definition}\n");
        out.push_str(&format!("| workload | runtime (variant) | phase | n (failed) | median [95% CI] | p99 [95% CI] | × {base} [95% CI] | p (Holm) | δ | noise | trials for ±5% | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"));
        let mut rows = rows;
        rows.sort_by_key(|c| {
            (&c.workload, &c.runtime, &c.variant, super::format::conditions_order(&c.conditions()), &c.phase)
        });
        for c in rows {
            if c.n == 0 {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | 0 ({}) | {} | | | | | | | |",
                    esc(&c.workload),
                    esc(&config_under(c)),
                    esc(&c.phase),
                    c.failed,
                    esc(&short(&c.note, 300))
                );
                continue;
            }
            let (p, delta) = match c.vs_baseline {
                Some(v) => (
                    format!("{}{}", super::format::p_value(v.p_holm), if v.significant() { " *" } else { "" }),
                    format!("{:+.2} {}", v.cliffs_delta, magnitude(v.cliffs_delta)),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
                esc(&c.workload),
                esc(&config_under(c)),
                esc(&c.phase),
                c.n,
                c.failed,
                median_with_ci(c),
                p99_with_ci(c),
                ratio(c),
                p,
                delta,
                super::format::noise_text(c),
                super::format::trials_needed(c),
                esc(&short(&c.note, 200))
            );
        }
    }

    out.push_str(&super::markdown_sections::throughput(m));
    out.push_str(&super::markdown_sections::scaling(m));
    out.push_str(&super::markdown_sections::quality(m));
    out.push_str(&super::firewall::section(m));
    out.push_str(&super::edge::section(m));
    out.push_str("\n## Methods\n\n");
    for item in &m.methods {
        let _ = writeln!(out, "- {}", esc(item));
    }
    out.push_str("\n### Metric definitions\n\n");
    for d in &m.definitions {
        let _ = writeln!(out, "- `{}`: {}", d.metric, d.definition);
    }
    out.push_str("\n### Runtimes\n\n| runtime | variant | measured | version | path |\n|---|---|---|---|---|\n");
    for r in runtimes.iter() {
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

/// "Which runtime for which need", then the caveats.
pub fn summary_section(s: &Summary) -> String {
    let mut out = String::from("## Summary: which runtime for which need\n\n");
    if s.findings.is_empty() {
        out.push_str("No successful measurement in this campaign.\n");
    }
    for f in &s.findings {
        match &f.answer {
            Some(a) => {
                let _ = writeln!(out, "- **{}**: **{}**: {}", esc(f.need), esc(a), esc(&f.detail));
            }
            None => {
                let _ = writeln!(out, "- **{}**: {}", esc(f.need), esc(&f.detail));
            }
        }
    }
    out.push_str("\n**Caveats**\n\n");
    for c in &s.caveats {
        let _ = writeln!(out, "- {}", esc(c));
    }
    out
}

/// "runtime (variant)", with the firewall profile when there is one.
fn config_under(c: &Cell) -> String {
    super::format::config_under(&c.runtime, &c.variant, &c.conditions())
}

/// (runtime row, workload, why) for every workload a measured runtime variant did not run.
pub fn workloads_not_run(runtimes: &[RuntimeRow]) -> Vec<(&RuntimeRow, String, String)> {
    runtimes.iter().flat_map(|r| r.workloads_not_run().into_iter().map(move |(w, why)| (r, w, why))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each edge profile is a row of its own, labelled, with its own
    /// figures and its ratio to the baseline under the same profile.
    #[test]
    fn edge_profiles_are_rows_of_their_own() {
        let mut samples = Vec::new();
        for (runtime, edge, base) in [
            ("native", "none", 1.0),
            ("native", "cpu-0.5", 2.0),
            ("wasmtime-embedded", "none", 3.0),
            ("wasmtime-embedded", "cpu-0.5", 8.0),
        ] {
            for rep in 1..=5u32 {
                samples.push(crate::store::Sample {
                    runtime: runtime.into(),
                    variant: "v".into(),
                    workload: "hello".into(),
                    metric: "cold_start".into(),
                    phase: String::new(),
                    firewall: "off".into(),
                    edge: edge.into(),
                    repetition: rep,
                    seq: 0,
                    value: Some(base + f64::from(rep) * 0.01),
                    unit: "ms".into(),
                    ts_ns: i64::from(rep),
                    ok: true,
                    error: String::new(),
                    detail: String::new(),
                });
            }
        }
        let table = headline_table(&crate::report::summary::summarize(&samples));
        let row = |label: &str| table.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("{label}: {table}"));
        assert!(row("| native | v |").contains("| 1.03"), "{table}");
        assert!(row("| native | v, edge cpu-0.5 |").contains("| 2.03"), "{table}");
        assert!(row("| wasmtime-embedded | v, edge cpu-0.5 |").contains("| 8.03"), "{table}");
        // Against native under the same profile: 8.03 / 2.03, not 8.03 / 1.03.
        assert!(row("| wasmtime-embedded | v, edge cpu-0.5 |").contains("3.9"), "{table}");
    }

    #[test]
    fn escapes_table_breaking_text() {
        assert_eq!(esc("a|b<script>\nc"), "a\\|b&lt;script&gt; c");
        assert_eq!(fmt(1234.5), "1234");
    }
}
