//! The load generator: closed loop (C connections as fast as they go) for
//! maximum throughput, open loop (a fixed arrival rate) for latency under
//! load, and a search for the highest rate that meets a latency objective.
//!
//! Open loop measures what wrk2 measures: request i of a connection is due
//! at an absolute time (start + i·C/rate, connections staggered), and its
//! latency counts from that intended send time, whatever delayed the send
//! (an earlier response still pending on the connection, or the client).
//! Nothing is left out of the tail: a request that falls more than
//! `max_lag` behind schedule, or is still unsent when the run ends, is not
//! sent but recorded at the time it had already waited (a lower bound) and
//! counted as dropped; a response that times out is recorded at its elapsed
//! time and counted as an error. The pacer sleeps on tokio's 1 ms timer to
//! just before a due time and then yields until it, so sends keep to the
//! schedule within microseconds; each send's error (actual − intended, for
//! connections free at their due time) is kept. The service time (from the
//! actual send) is kept too, under its own name. Every run is bounded in
//! time and in requests and stops by itself.

use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a single response may take before the request counts as an error.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// One encoded keep-alive request.
    pub request: Vec<u8>,
    /// The answer every response must be (a wrong one is an error, not a
    /// latency); `None` accepts any `200`.
    pub expected: Option<crate::workload::Expected>,
}

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Each connection sends its next request as soon as the previous answer arrives.
    Closed,
    /// A fixed arrival rate (requests/s) over all connections.
    Open { rate: f64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub mode: Mode,
    pub connections: usize,
    pub duration: Duration,
    /// Upper bound on requests sent in the whole run.
    pub max_requests: u64,
    /// Open loop: how far behind schedule a request may fall before it is dropped.
    pub max_lag: Duration,
    /// Client threads (tokio workers): one per client CPU by default.
    pub threads: usize,
}

impl Load {
    pub fn closed(connections: usize, duration: Duration) -> Load {
        Load {
            mode: Mode::Closed,
            connections,
            duration,
            max_requests: 50_000_000,
            max_lag: Duration::from_secs(1),
            threads: crate::cpus::client_workers(),
        }
    }

    pub fn open(rate: f64, connections: usize, duration: Duration) -> Load {
        Load { mode: Mode::Open { rate }, ..Load::closed(connections, duration) }
    }
}

#[derive(Debug)]
pub struct LoadResult {
    /// Requests written to a connection.
    pub sent: u64,
    /// Responses received and checked correct.
    pub completed: u64,
    /// Failed connects, exchanges, timeouts and wrong answers.
    pub errors: u64,
    /// Open loop: requests already due when their connection was free to
    /// send them (an earlier response still pending, or the client behind).
    pub late: u64,
    /// Open loop: requests not sent because they fell more than `max_lag`
    /// behind schedule or the run ended first (in `histogram` all the same).
    pub dropped: u64,
    pub elapsed: Duration,
    /// Latencies in ns. Open loop: from each request's intended send time,
    /// with dropped and timed-out requests at their elapsed time; closed
    /// loop: from the send.
    pub histogram: Histogram<u64>,
    /// Open loop: completed requests from their actual send (service time).
    pub service: Histogram<u64>,
    /// Open loop: actual − intended send time (ns) of the requests whose
    /// connection was free at their due time: the pacer's own error.
    pub send_error: Histogram<u64>,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1e6
    }
}

/// One connection's record.
struct Recorded {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    send_error: Histogram<u64>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    late: AtomicU64,
    dropped: AtomicU64,
    /// Set when the caller's stop flag is raised.
    halt: AtomicBool,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }
}

/// Runs one load against `target`. `stop` ends it early (Ctrl-C).
pub fn run(target: &Target, load: &Load, stop: &AtomicBool) -> std::io::Result<LoadResult> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(load.threads.max(1)).enable_all().build()?;
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let deadline = start + load.duration;
    let finished = AtomicBool::new(false);
    let histograms = std::thread::scope(|scope| {
        // Relays the caller's stop flag (not 'static) to the connection tasks.
        scope.spawn(|| {
            while !finished.load(Ordering::Relaxed) {
                if stop.load(Ordering::Relaxed) {
                    counters.halt.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let histograms = runtime.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..load.connections {
                let (target, load, counters) = (target.clone(), *load, counters.clone());
                tasks
                    .push(tokio::spawn(async move { connection(c, &target, &load, start, deadline, &counters).await }));
            }
            // Bounded: every task ends by the deadline plus one response timeout.
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await);
            }
            all
        });
        finished.store(true, Ordering::Relaxed);
        histograms
    });
    let elapsed = start.elapsed();
    let (mut histogram, mut service, mut send_error) = (new_histogram(), new_histogram(), new_histogram());
    for r in histograms.into_iter().flatten() {
        histogram.add(&r.latency).expect("same bounds");
        service.add(&r.service).expect("same bounds");
        send_error.add(&r.send_error).expect("same bounds");
    }
    let first_error = counters.first_error.lock().unwrap().clone();
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Ok(LoadResult {
        sent: count(&counters.sent),
        completed: count(&counters.completed),
        errors: count(&counters.errors),
        late: count(&counters.late),
        dropped: count(&counters.dropped),
        elapsed,
        histogram,
        service,
        send_error,
        first_error,
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits (send errors are sub-µs).
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// How long before a due time the pacer stops sleeping on tokio's timer
/// (1 ms granularity, may fire up to 1 ms late) and yields until it.
const SPIN_BEFORE: Duration = Duration::from_micros(1500);

/// Waits until `due`: the timer for the bulk, then yielding to the other
/// connections' tasks until the instant has come.
async fn pace(due: Instant) {
    if let Some(early) = due.checked_sub(SPIN_BEFORE) {
        if early > Instant::now() {
            tokio::time::sleep_until(early.into()).await;
        }
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

async fn connection(
    index: usize,
    target: &Target,
    load: &Load,
    start: Instant,
    deadline: Instant,
    counters: &Counters,
) -> Recorded {
    let mut rec = Recorded { latency: new_histogram(), service: new_histogram(), send_error: new_histogram() };
    let record = |h: &mut Histogram<u64>, d: Duration| h.saturating_record((d.as_nanos() as u64).max(1));
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    // Open loop: this connection's share of the schedule.
    let (interval, offset) = match load.mode {
        Mode::Open { rate } => {
            let interval = Duration::from_secs_f64(load.connections as f64 / rate.max(1e-9));
            (Some(interval), interval.mul_f64(index as f64 / load.connections as f64))
        }
        Mode::Closed => (None, Duration::ZERO),
    };
    let mut i: u32 = 0;
    loop {
        if counters.halt.load(Ordering::Relaxed) || counters.sent.load(Ordering::Relaxed) >= load.max_requests {
            break;
        }
        let now = Instant::now();
        // Open loop: when the request is due (its latency counts from there).
        let mut due = None;
        if let Some(interval) = interval {
            let at = start + offset + interval * i;
            i += 1;
            if at >= deadline {
                break;
            }
            if now >= deadline || now - at.min(now) > load.max_lag {
                // Never sent, never forgotten: in the tail at what it already waited.
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                record(&mut rec.latency, now - at.min(now));
                continue;
            }
            if at > now {
                pace(at).await;
            } else {
                counters.late.fetch_add(1, Ordering::Relaxed);
            }
            due = Some((at, at > now));
        } else if now >= deadline {
            break;
        }
        if stream.is_none() {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Ok(Err(e)) => {
                    counters.error(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    counters.error("connect: timed out");
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        // The request bound holds across connections: a send takes a slot first.
        let slot = counters
            .sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < load.max_requests).then_some(n + 1));
        if slot.is_err() {
            break;
        }
        let sent = Instant::now();
        if let Some((at, on_time)) = due {
            if on_time {
                record(&mut rec.send_error, sent.saturating_duration_since(at));
            }
        }
        let exchange = async {
            s.write_all(&target.request).await?;
            read_frame(s, &mut buf).await
        };
        let outcome = tokio::time::timeout(RESPONSE_TIMEOUT, exchange).await;
        let done = Instant::now();
        let origin = due.map_or(sent, |(at, _)| at);
        match outcome {
            Ok(Ok(f)) => {
                let checked = match &target.expected {
                    Some(expected) => expected.check(f.status, &f.body),
                    None if f.status == 200 => Ok(()),
                    None => Err(format!("status {}", f.status)),
                };
                match checked {
                    Ok(()) => {
                        counters.completed.fetch_add(1, Ordering::Relaxed);
                        record(&mut rec.latency, done - origin);
                        record(&mut rec.service, done - sent);
                    }
                    Err(e) => counters.error(e),
                }
            }
            Ok(Err(e)) => {
                counters.error(format!("exchange: {e}"));
                stream = None;
                buf.clear();
            }
            Err(_) => {
                // In the tail at its elapsed time, and an error.
                record(&mut rec.latency, done - origin);
                counters.error("response timed out");
                stream = None;
                buf.clear();
            }
        }
    }
    rec
}

/// Reads one response with the shared framing (`http::frame`); bytes of a
/// next response, if any, stay in `buf`.
async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<super::http::Frame> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(f) = super::http::frame(buf, false)? {
            buf.drain(..f.consumed);
            return Ok(f);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            let f = super::http::frame(buf, true)?.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before a response")
            })?;
            buf.clear();
            return Ok(f);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The highest arrival rate whose p99 stays under `slo` with nothing dropped
/// or failed, by bisection between 0 and `ceiling` in `steps` runs.
pub struct Search {
    pub slo: Duration,
    pub ceiling: f64,
    pub steps: usize,
    pub step_duration: Duration,
    pub connections: usize,
}

#[derive(Debug)]
pub struct SearchStep {
    pub rate: f64,
    pub passed: bool,
    pub result: LoadResult,
}

pub fn search(target: &Target, s: &Search, stop: &AtomicBool) -> std::io::Result<(f64, Vec<SearchStep>)> {
    let (mut lo, mut hi) = (0.0f64, s.ceiling);
    let mut steps = Vec::new();
    for _ in 0..s.steps {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let rate = if steps.is_empty() { hi } else { (lo + hi) / 2.0 };
        let r = run(target, &Load::open(rate, s.connections, s.step_duration), stop)?;
        let p99 = r.quantile_ms(0.99);
        let passed = r.errors == 0
            && r.dropped == 0
            && r.completed > 0
            && p99 <= s.slo.as_secs_f64() * 1e3
            && r.throughput() >= 0.95 * rate;
        steps.push(SearchStep { rate, passed, result: r });
        if passed {
            lo = rate;
            if rate == hi {
                break;
            }
        } else {
            hi = rate;
        }
    }
    Ok((lo, steps))
}
