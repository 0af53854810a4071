//! The load generator and the throughput/scaling experiments against a real
//! server. No assertion is about speed: only counts and bounds.

mod common;

use common::*;
use edgebench::campaign::{launch_until_ready, Metric, TrialKey};
use edgebench::measure::http;
use edgebench::measure::load::{self, Load, Target};
use edgebench::runtime::{self, Context};
use edgebench::Workload;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn with_native_hello(f: impl FnOnce(&Target)) {
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new("load-test", &artifacts, work.path()).unwrap();
    let native = runtime::all().into_iter().find(|r| r.name() == "native").unwrap();
    let key = TrialKey::new("native", "static-musl", Workload::HELLO, 1);
    let never = AtomicBool::new(false);
    let Ok((mut instance, _)) = launch_until_ready(native.as_ref(), &key, &ctx, &never) else {
        panic!("native starts")
    };
    let addr = instance.addr();
    let target = Target {
        addr,
        request: http::encode(&Workload::HELLO.latency_request(), &addr.to_string(), false),
        expected: Some(Workload::HELLO.expected_latency()),
    };
    f(&target);
    instance.stop().unwrap();
}

#[test]
fn closed_and_open_loops_complete_without_errors_and_keep_to_the_schedule() {
    with_native_hello(|target| {
        let never = AtomicBool::new(false);
        let closed = load::run(target, &Load::closed(4, Duration::from_millis(300)), &never).unwrap();
        assert_eq!((closed.errors, closed.dropped), (0, 0), "{closed:?}");
        assert!(closed.completed > 0 && closed.histogram.len() == closed.completed);

        // 200 req/s for 0.5 s: never more than scheduled, nothing dropped.
        let open = load::run(target, &Load::open(200.0, 4, Duration::from_millis(500)), &never).unwrap();
        assert_eq!((open.errors, open.dropped), (0, 0), "{open:?}");
        assert!(open.completed > 0 && open.completed <= 100, "{} requests for a schedule of 100", open.completed);
        assert_eq!(
            (open.sent, open.histogram.len(), open.service.len()),
            (open.completed, open.completed, open.completed)
        );

        let bounded = Load { max_requests: 7, ..Load::closed(2, Duration::from_secs(5)) };
        let r = load::run(target, &bounded, &never).unwrap();
        assert!(r.completed <= 7, "stops at its request bound: {}", r.completed);
    });
    assert_eq!(children_left(), Vec::<String>::new());
}

/// A server that answers `200` with the wrong body on every second request
/// (content-length framing) and chunked on the others: wrong answers are
/// errors, right ones latencies, and framing never desynchronises.
fn wrong_every_second(expected: &[u8]) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let good = expected.to_vec();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let good = good.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                for i in 0.. {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let answer = if i % 2 == 0 {
                        let mut a =
                            format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n", good.len())
                                .into_bytes();
                        a.extend_from_slice(&good);
                        a.extend_from_slice(b"\r\n0\r\n\r\n");
                        a
                    } else {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nwrong".to_vec()
                    };
                    if stream.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn wrong_answers_under_load_are_errors_not_latencies() {
    let expected = Workload::HELLO.expected_latency();
    let edgebench::workload::ExpectedBody::Exact(good) = &expected.body else { panic!("hello answers exactly") };
    let addr = wrong_every_second(good);
    let target = Target {
        addr,
        request: http::encode(&Workload::HELLO.latency_request(), &addr.to_string(), false),
        expected: Some(expected.clone()),
    };
    let never = AtomicBool::new(false);
    let bounded = Load { max_requests: 200, ..Load::closed(2, Duration::from_secs(5)) };
    let r = load::run(&target, &bounded, &never).unwrap();
    assert!(r.errors > 0 && r.completed > 0, "{r:?}");
    assert!(r.first_error.as_deref().unwrap_or("").contains("unexpected answer"), "{r:?}");
    // Alternating answers on each connection: about as many wrong as right.
    assert!(r.errors.abs_diff(r.completed) <= 4, "{r:?}");
}

/// A server that answers `expected` (content-length) to every request, and
/// before answering request number `every`, 2·`every`, … (counted over all
/// connections) pauses for `pause`.
fn stalling_server(expected: &[u8], every: u64, pause: Duration) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", expected.len()).into_bytes();
    answer.extend_from_slice(expected);
    let count = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            let (answer, count) = (answer.clone(), count.clone());
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if (count.fetch_add(1, Ordering::SeqCst) + 1) % every == 0 {
                        std::thread::sleep(pause);
                    }
                    if stream.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn hello_target(addr: std::net::SocketAddr) -> Target {
    Target {
        addr,
        request: http::encode(&Workload::HELLO.latency_request(), &addr.to_string(), false),
        expected: Some(Workload::HELLO.expected_latency()),
    }
}

fn hello_body() -> Vec<u8> {
    match Workload::HELLO.expected_latency().body {
        edgebench::workload::ExpectedBody::Exact(good) => good,
        _ => panic!("hello answers exactly"),
    }
}

#[test]
fn a_stalling_server_shows_in_the_fixed_rate_tail_as_wrk2_would_show_it() {
    // 1000 req/s on 2 connections (one due every 2 ms on each); every 200th
    // request stalls 50 ms. From the intended send time, every request due
    // during a stall waits for it (about 5 per stall over 40 ms); from the
    // actual send, only the stalled one does.
    const STALL: Duration = Duration::from_millis(50);
    let target = hello_target(stalling_server(&hello_body(), 200, STALL));
    let never = AtomicBool::new(false);
    let r = load::run(&target, &Load::open(1000.0, 2, Duration::from_millis(1500)), &never).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.late > 0, "requests due during a stall are sent late: {r:?}");
    let at_least_40ms = |h: &hdrhistogram::Histogram<u64>| h.count_between(40_000_000, u64::MAX);
    let (intended, service) = (at_least_40ms(&r.histogram), at_least_40ms(&r.service));
    assert!(service >= 1, "the stalled requests themselves take ≥ 40 ms: {r:?}");
    assert!(intended >= 3 * service, "the stall is charged to every request due during it: {intended} vs {service}");
    assert!(
        r.quantile_ms(0.99) >= 40.0,
        "p99 from the intended send time shows the stall: {:.3} ms",
        r.quantile_ms(0.99)
    );
    assert_eq!(r.histogram.len(), r.completed + r.dropped, "every completed or dropped request is in the distribution");
    assert_eq!(r.send_error.len() + r.late, r.sent, "each send is either on time (with its error) or late");
}

#[test]
fn requests_that_could_not_be_sent_are_in_the_tail_not_left_out() {
    // One connection; the 10th request stalls past the end of the run: the
    // requests due behind it are never sent, and each is in the distribution
    // at what it had waited.
    let target = hello_target(stalling_server(&hello_body(), 10, Duration::from_millis(1500)));
    let never = AtomicBool::new(false);
    let r = load::run(&target, &Load::open(100.0, 1, Duration::from_millis(1000)), &never).unwrap();
    assert!(r.dropped > 0, "{r:?}");
    assert_eq!(r.histogram.len(), r.completed + r.dropped, "{r:?}");
    assert!(r.quantile_ms(0.99) >= 500.0, "the unsent requests make the tail: {:.1} ms", r.quantile_ms(0.99));
}

#[test]
fn a_stop_flag_ends_a_run_early() {
    with_native_hello(|target| {
        let stop = AtomicBool::new(true);
        let r = load::run(target, &Load::closed(2, Duration::from_secs(30)), &stop).unwrap();
        assert!(r.elapsed < Duration::from_secs(30), "stopped before its duration");
    });
}

#[test]
fn throughput_and_scaling_metrics_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["native"], &[Workload::HELLO], dir.path());
    options.reps = 1;
    options.metrics = vec![Metric::Throughput, Metric::Scaling];
    options.load.duration_ms = 200;
    options.load.search_steps = 3;
    options.scaling.max_concurrent = 4;
    options.scaling.max_instances = 5;
    // A loose objective, so that only the bound stops density here.
    options.scaling.slo_p99_ms = 1000.0;
    let (_, samples) = run_campaign(options);
    let throughput: Vec<_> = samples.iter().filter(|s| s.metric == "throughput").collect();
    assert_eq!(throughput.len(), 2, "closed loop and open-loop search: {throughput:#?}");
    let closed = throughput.iter().find(|s| s.phase.starts_with("closed")).unwrap();
    assert!(closed.ok && closed.value.unwrap() > 0.0 && closed.unit == "req/s", "{closed:?}");
    // The search either found a rate or says which rates failed the objective.
    let open = throughput.iter().find(|s| s.phase.starts_with("open")).unwrap();
    assert!(open.ok || open.error.starts_with("no rate tried met"), "{open:?}");
    // The search stops early when the first step (the ceiling) already passes.
    let steps = ok_values(&samples, "native", "hello", "open_loop_p99").len();
    assert!((1..=3).contains(&steps), "{steps} search steps");
    let starts = ok_values(&samples, "native", "hello", "scaling_start");
    assert_eq!(starts.len(), 1 + 2 + 4, "K = 1, 2, 4");
    assert_eq!(ok_values(&samples, "native", "hello", "scaling_rate").len(), 3);
    let density = ok_values(&samples, "native", "hello", "density");
    assert_eq!(density.len(), 1);
    assert_eq!(density[0].value, Some(5.0), "{:?}", density[0]);
    assert!(
        density[0].detail.starts_with("instance bound") && density[0].error.is_empty(),
        "the cause is stated: {density:?}"
    );
    assert_eq!(children_left(), Vec::<String>::new());
}

#[test]
fn the_embedded_hosts_density_counts_tenants_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = small_options(&["wasmtime-embedded"], &[Workload::HELLO, Workload::KV], dir.path());
    options.reps = 1;
    options.metrics = vec![Metric::Scaling];
    options.scaling.max_concurrent = 1;
    options.scaling.max_instances = 3;
    options.scaling.max_tenants = 12;
    options.scaling.slo_p99_ms = 1000.0;
    let (_, samples) = run_campaign(options);
    let density = ok_values(&samples, "wasmtime-embedded", "hello", "density");
    assert_eq!(density.len(), 1);
    assert_eq!(density[0].value, Some(12.0), "{:?}", density[0]);
    assert!(
        density[0].detail.starts_with("tenants in one host process; tenant bound: 12"),
        "counted and stopped as tenants: {density:?}"
    );
    // kv keeps state in the host's one directory: its tenants would share it, so it counts processes.
    let kv = ok_values(&samples, "wasmtime-embedded", "kv", "density");
    assert_eq!(kv[0].value, Some(3.0), "{:?}", kv[0]);
    assert!(kv[0].detail.starts_with("instance bound"), "{kv:?}");
    assert_eq!(children_left(), Vec::<String>::new());
}
