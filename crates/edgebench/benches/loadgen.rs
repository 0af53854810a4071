//! Is edgebench's load generator ever the bottleneck? The same target (the
//! native `hello` server) loaded by edgebench, wrk and oha, in turn:
//! - closed loop, 16 connections, 2 client threads, 3 s: maximum req/s;
//! - open loop at fixed rates (latency from the intended send time: wrk2's
//!   method, which oha implements with `--latency-correction`): p50 and p99.
//!
//! Prints a Markdown table. Tools that are not installed are reported as such.

use edgebench::artifacts::Artifacts;
use edgebench::campaign::{launch_until_ready, TrialKey};
use edgebench::measure::http;
use edgebench::measure::load::{self, Load, Target};
use edgebench::runtime::{self, Context};
use edgebench::workload::latency_request;
use edgebench::Workload;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const CONNECTIONS: usize = 16;
const SECONDS: u64 = 3;
const RATES: [f64; 2] = [2_000.0, 8_000.0];

fn main() {
    let artifacts = Artifacts::from_env();
    assert!(artifacts.missing().is_empty(), "run `edgebench build` first");
    let work = std::env::temp_dir().join(format!("edgebench-loadgen-{}", std::process::id()));
    let ctx = Context::new("loadgen-bench", &artifacts, &work).unwrap();
    let native = runtime::all().into_iter().find(|r| r.name() == "native").unwrap();
    let never = AtomicBool::new(false);
    let Ok((mut instance, _)) =
        launch_until_ready(native.as_ref(), &TrialKey::new("native", "static-musl", Workload::Hello, 1), &ctx, &never)
    else {
        panic!("the native server did not start")
    };
    let addr = instance.addr();
    let url = format!("http://{addr}/");
    let target = Target {
        addr,
        request: http::encode(&latency_request(Workload::Hello), &addr.to_string(), false),
        expected: Some(edgebench::workload::expected_latency_answer(Workload::Hello)),
    };
    let duration = Duration::from_secs(SECONDS);

    println!("| tool | load | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|");
    let ours = load::run(&target, &Load::closed(CONNECTIONS, duration), &never).unwrap();
    row("edgebench", "closed, 16 conn", ours.throughput(), ours.quantile_ms(0.5), ours.quantile_ms(0.99));
    match wrk(&url, &["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{SECONDS}s"), "--latency"]) {
        Ok((rps, p50, p99)) => row("wrk", "closed, 16 conn", rps, p50, p99),
        Err(e) => println!("| wrk | closed | not measured: {e} | | |"),
    }
    match oha(&url, &["-z", &format!("{SECONDS}s"), "-c", &CONNECTIONS.to_string()]) {
        Ok((rps, p50, p99)) => row("oha", "closed, 16 conn", rps, p50, p99),
        Err(e) => println!("| oha | closed | not measured: {e} | | |"),
    }
    for rate in RATES {
        let load = format!("open, {rate:.0}/s");
        let r = load::run(&target, &Load::open(rate, CONNECTIONS, duration), &never).unwrap();
        row("edgebench", &load, r.throughput(), r.quantile_ms(0.5), r.quantile_ms(0.99));
        let q = format!("{rate:.0}");
        match oha(
            &url,
            &["-z", &format!("{SECONDS}s"), "-c", &CONNECTIONS.to_string(), "-q", &q, "--latency-correction"],
        ) {
            Ok((rps, p50, p99)) => row("oha --latency-correction", &load, rps, p50, p99),
            Err(e) => println!("| oha | {load} | not measured: {e} | | |"),
        }
    }
    instance.stop().unwrap();
    let _ = std::fs::remove_dir_all(work);
}

fn row(tool: &str, load: &str, rps: f64, p50: f64, p99: f64) {
    println!("| {tool} | {load} | {rps:.0} | {p50:.3} | {p99:.3} |");
}

/// wrk's req/s and p50/p99 (ms) from its `--latency` output.
fn wrk(url: &str, args: &[&str]) -> Result<(f64, f64, f64), String> {
    let out =
        Command::new("wrk").args(args).arg(url).output().map_err(|e| format!("wrk: {e} (apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> Option<String> {
        text.lines().map(str::trim).find(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_string())
    };
    let rps = field("Requests/sec:").and_then(|v| v.parse().ok()).ok_or("no Requests/sec in wrk output")?;
    let p50 = field("50%").map(|v| wrk_ms(&v)).ok_or("no p50")?;
    let p99 = field("99%").map(|v| wrk_ms(&v)).ok_or("no p99")?;
    Ok((rps, p50, p99))
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
fn oha(url: &str, args: &[&str]) -> Result<(f64, f64, f64), String> {
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
    Ok((rps, p("p50")?, p("p99")?))
}
