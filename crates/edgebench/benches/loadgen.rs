//! Is edgebench's load generator ever the bottleneck, and does it measure
//! what wrk2 and oha measure? The same target (the native `hello` server on
//! the SUT's CPUs; every client on the client's CPUs, `--cpus auto`'s split)
//! loaded by edgebench, wrk and oha:
//! - closed loop, 16 connections, one client thread per client CPU (wrk's
//!   `-t`; oha sizes its runtime by the CPUs it may use): maximum req/s;
//! - open loop at fixed rates, latency from the intended send time (wrk2's
//!   definition; oha's `--latency-correction`): p50 and p99, and edgebench's
//!   pacing error (actual − intended send, p99).
//!
//! Every configuration runs once per round, rounds in a new random order
//! each (`EDGEBENCH_BENCH_ROUNDS`, default 6: the fewest whose median has a
//! 95% distribution-free interval). Prints Markdown tables: each figure's
//! median with its interval, and edgebench against the other tool paired by
//! round (the median of the per-round differences or ratios, with its
//! interval). Tools that are not installed are reported as not measured.

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{launch_until_ready, TrialKey};
use edgebench::cpus::{host_cpus, CpuPlan};
use edgebench::measure::http;
use edgebench::measure::load::{self, Load, Target};
use edgebench::report::stats::median_ci;
use edgebench::runtime::{self, Context};
use edgebench::Workload;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const CONNECTIONS: usize = 16;
const SECONDS: u64 = 2;
const RATES: [f64; 2] = [2_000.0, 10_000.0];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Edgebench,
    Wrk,
    Oha,
}

/// `None`: closed loop; `Some(rate)`: open loop at that rate (req/s).
type Config = (Tool, Option<u32>);

#[derive(Clone, Copy, Debug)]
struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
    /// edgebench, open loop: p99 send error (µs).
    send_error_p99: Option<f64>,
}

fn main() {
    let artifacts = Artifacts::from_env();
    assert!(artifacts.missing().is_empty(), "run `edgebench build` first");
    let plan = CpuPlan::resolve("auto", &host_cpus()).unwrap();
    plan.install().unwrap();
    let rounds: usize = std::env::var("EDGEBENCH_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let work = std::env::temp_dir().join(format!("edgebench-loadgen-{}", std::process::id()));
    let ctx = Context::new("loadgen-bench", &artifacts, &work).unwrap();
    let native = runtime::all().into_iter().find(|r| r.name() == "native").unwrap();
    let never = AtomicBool::new(false);
    let Ok((mut instance, _)) =
        launch_until_ready(native.as_ref(), &TrialKey::new("native", "static-musl", Workload::HELLO, 1), &ctx, &never)
    else {
        panic!("the native server did not start")
    };
    let addr = instance.addr();
    let url = format!("http://{addr}/");
    let target = Target {
        addr,
        request: http::encode(&Workload::HELLO.latency_request(), &addr.to_string(), false),
        expected: Some(Workload::HELLO.expected_latency()),
    };

    let mut configs: Vec<Config> = vec![(Tool::Edgebench, None), (Tool::Wrk, None), (Tool::Oha, None)];
    for rate in RATES {
        configs.push((Tool::Edgebench, Some(rate as u32)));
        configs.push((Tool::Oha, Some(rate as u32)));
    }
    let mut results: BTreeMap<Config, Vec<Figures>> = BTreeMap::new();
    let mut missing: BTreeMap<Tool, String> = BTreeMap::new();
    let mut rng = rand::thread_rng();
    eprintln!(
        "client CPUs {}, server CPUs {}; {rounds} rounds of {} runs of {SECONDS} s",
        plan.client,
        plan.sut,
        configs.len()
    );
    for round in 0..rounds {
        let mut order = configs.clone();
        order.shuffle(&mut rng);
        for config in order {
            if missing.contains_key(&config.0) {
                continue;
            }
            match run(config, &target, &url) {
                Ok(f) => results.entry(config).or_default().push(f),
                Err(e) => {
                    missing.insert(config.0, e);
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    instance.stop().unwrap();
    let _ = std::fs::remove_dir_all(work);

    println!("| tool | load | req/s | p50 ms | p99 ms | send error p99 µs |\n|---|---|---|---|---|---|");
    for (config, figures) in &results {
        let col = |f: fn(&Figures) -> Option<f64>| interval(&figures.iter().filter_map(f).collect::<Vec<_>>());
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            tool_name(*config),
            load_name(config.1),
            col(|f| Some(f.rps)),
            col(|f| Some(f.p50)),
            col(|f| Some(f.p99)),
            col(|f| f.send_error_p99),
        );
    }
    for (tool, why) in &missing {
        println!("| {tool:?} | – | not measured: {why} | | | |");
    }
    println!("\n| edgebench vs | load | figure | paired by round: median [95% CI] |\n|---|---|---|---|");
    let paired = |ours: Config, theirs: Config, what: &str, f: fn(&Figures, &Figures) -> f64| {
        if let (Some(a), Some(b)) = (results.get(&ours), results.get(&theirs)) {
            let values: Vec<f64> = a.iter().zip(b).map(|(a, b)| f(a, b)).collect();
            println!("| {} | {} | {what} | {} |", tool_name(theirs), load_name(theirs.1), interval(&values));
        }
    };
    paired((Tool::Edgebench, None), (Tool::Wrk, None), "req/s difference (edgebench − wrk)", |a, b| a.rps - b.rps);
    paired((Tool::Edgebench, None), (Tool::Oha, None), "req/s difference (edgebench − oha)", |a, b| a.rps - b.rps);
    for rate in RATES {
        let r = Some(rate as u32);
        paired((Tool::Edgebench, r), (Tool::Oha, r), "p50 ratio (edgebench / oha)", |a, b| a.p50 / b.p50);
        paired((Tool::Edgebench, r), (Tool::Oha, r), "p99 ratio (edgebench / oha)", |a, b| a.p99 / b.p99);
    }
}

fn run(config: Config, target: &Target, url: &str) -> Result<Figures, String> {
    let never = AtomicBool::new(false);
    let duration = Duration::from_secs(SECONDS);
    let (c, z) = (CONNECTIONS.to_string(), format!("{SECONDS}s"));
    match config {
        (Tool::Edgebench, rate) => {
            let load = match rate {
                None => Load::closed(CONNECTIONS, duration),
                Some(rate) => Load::open(rate as f64, CONNECTIONS, duration),
            };
            let r = load::run(target, &load, &never).map_err(|e| e.to_string())?;
            if r.errors > 0 {
                return Err(format!("{} errors: {:?}", r.errors, r.first_error));
            }
            Ok(Figures {
                rps: r.throughput(),
                p50: r.quantile_ms(0.5),
                p99: r.quantile_ms(0.99),
                send_error_p99: rate.map(|_| r.send_error.value_at_quantile(0.99) as f64 / 1e3),
            })
        }
        (Tool::Wrk, _) => {
            let threads = format!("-t{}", edgebench::cpus::client_workers());
            wrk(url, &[&threads, &format!("-c{c}"), &format!("-d{z}"), "--latency"])
        }
        (Tool::Oha, None) => oha(url, &["-z", &z, "-c", &c]),
        (Tool::Oha, Some(rate)) => oha(url, &["-z", &z, "-c", &c, "-q", &rate.to_string(), "--latency-correction"]),
    }
}

fn tool_name(config: Config) -> &'static str {
    match config {
        (Tool::Edgebench, _) => "edgebench",
        (Tool::Wrk, _) => "wrk",
        (Tool::Oha, None) => "oha",
        (Tool::Oha, Some(_)) => "oha --latency-correction",
    }
}

fn load_name(rate: Option<u32>) -> String {
    match rate {
        None => format!("closed, {CONNECTIONS} conn"),
        Some(r) => format!("open, {r}/s"),
    }
}

/// `median [low, high]` with the distribution-free 95% interval.
fn interval(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (low, high, coverage) = median_ci(&sorted, 0.95);
    let m = edgebench::report::stats::median(&sorted);
    let digits = if m.abs() >= 100.0 { 0 } else { 3 };
    let note = if coverage < 0.95 { format!(" ({:.0}%)", coverage * 100.0) } else { String::new() };
    format!("{m:.digits$} [{low:.digits$}, {high:.digits$}]{note}")
}

/// wrk's req/s and p50/p99 (ms) from its `--latency` output.
fn wrk(url: &str, args: &[&str]) -> Result<Figures, String> {
    let out =
        Command::new("wrk").args(args).arg(url).output().map_err(|e| format!("wrk: {e} (apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> Option<String> {
        text.lines().map(str::trim).find(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_string())
    };
    let rps = field("Requests/sec:").and_then(|v| v.parse().ok()).ok_or("no Requests/sec in wrk output")?;
    let p50 = field("50%").map(|v| wrk_ms(&v)).ok_or("no p50")?;
    let p99 = field("99%").map(|v| wrk_ms(&v)).ok_or("no p99")?;
    Ok(Figures { rps, p50, p99, send_error_p99: None })
}

fn wrk_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => f64::NAN,
    }
}

/// oha's req/s and p50/p99 (ms) from its JSON output.
fn oha(url: &str, args: &[&str]) -> Result<Figures, String> {
    let out = Command::new("oha")
        .args(args)
        .args(["--no-tui", "--output-format", "json"])
        .arg(url)
        .output()
        .map_err(|e| format!("oha: {e} (cargo install oha)"))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("oha output: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    let rps = json["summary"]["requestsPerSec"].as_f64().ok_or("no requestsPerSec")?;
    let p = |k: &str| json["latencyPercentiles"][k].as_f64().map(|s| s * 1e3).ok_or(format!("no {k}"));
    Ok(Figures { rps, p50: p("p50")?, p99: p("p99")?, send_error_p99: None })
}
