//! The load generator and the throughput/scaling experiments against a real
//! server. No assertion is about speed: only counts and bounds.

mod common;

use common::*;
use edgebench::campaign::{launch_until_ready, Metric, TrialKey};
use edgebench::measure::http;
use edgebench::measure::load::{self, Load, Target};
use edgebench::runtime::{self, Context};
use edgebench::workload::{expected_latency_answer, latency_request};
use edgebench::Workload;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn with_native_hello(f: impl FnOnce(&Target)) {
    let artifacts = artifacts();
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new("load-test", &artifacts, work.path()).unwrap();
    let native = runtime::all().into_iter().find(|r| r.name() == "native").unwrap();
    let key = TrialKey::new("native", "static-musl", Workload::Hello, 1);
    let never = AtomicBool::new(false);
    let Ok((mut instance, _)) = launch_until_ready(native.as_ref(), &key, &ctx, &never) else {
        panic!("native starts")
    };
    let addr = instance.addr();
    let target = Target {
        addr,
        request: http::encode(&latency_request(Workload::Hello), &addr.to_string(), false),
        expected: Some(expected_latency_answer(Workload::Hello)),
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
    let expected = expected_latency_answer(Workload::Hello);
    let edgebench::workload::ExpectedBody::Exact(good) = &expected.body else { panic!("hello answers exactly") };
    let addr = wrong_every_second(good);
    let target = Target {
        addr,
        request: http::encode(&latency_request(Workload::Hello), &addr.to_string(), false),
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
    let mut options = small_options(&["native"], &[Workload::Hello], dir.path());
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
    assert!(density[0].error.starts_with("instance bound"), "the cause is stated: {}", density[0].error);
    assert_eq!(children_left(), Vec::<String>::new());
}
