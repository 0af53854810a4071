//! The load generator: closed loop (C connections as fast as they go) for
//! maximum throughput, open loop (a fixed arrival rate) for latency under
//! load, and a search for the highest rate that meets a latency objective.
//!
//! Open loop avoids coordinated omission the way wrk2 does: request i of a
//! connection is due at an absolute time (start + i·C/rate, connections
//! staggered). When a connection is still waiting for an earlier response at
//! that time, the request's latency counts from when it was *due*; when the
//! connection was free and only the client's timer woke late, it counts from
//! when it was sent, so client scheduling noise is not charged to the server.
//! A request more than `max_lag` behind schedule is dropped (counted, not sent).
//! Every run is bounded in time and in requests and stops by itself.

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
    /// Client threads (tokio workers).
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
            threads: 2,
        }
    }

    pub fn open(rate: f64, connections: usize, duration: Duration) -> Load {
        Load { mode: Mode::Open { rate }, ..Load::closed(connections, duration) }
    }
}

#[derive(Debug)]
pub struct LoadResult {
    pub completed: u64,
    pub errors: u64,
    /// Open loop: requests sent after they were due because the connection was busy.
    pub late: u64,
    /// Open loop: requests not sent because they fell too far behind schedule.
    pub dropped: u64,
    pub elapsed: Duration,
    /// Latencies in nanoseconds.
    pub histogram: Histogram<u64>,
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

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
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
    let mut histogram = new_histogram();
    let mut completed = 0;
    for h in histograms.into_iter().flatten() {
        completed += h.len();
        histogram.add(&h).expect("same bounds");
    }
    let first_error = counters.first_error.lock().unwrap().clone();
    Ok(LoadResult {
        completed,
        errors: counters.errors.load(Ordering::Relaxed),
        late: counters.late.load(Ordering::Relaxed),
        dropped: counters.dropped.load(Ordering::Relaxed),
        elapsed,
        histogram,
        first_error,
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds")
}

async fn connection(
    index: usize,
    target: &Target,
    load: &Load,
    start: Instant,
    deadline: Instant,
    counters: &Counters,
) -> Histogram<u64> {
    let mut histogram = new_histogram();
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
        let now = Instant::now();
        if now >= deadline
            || counters.halt.load(Ordering::Relaxed)
            || counters.sent.load(Ordering::Relaxed) >= load.max_requests
        {
            break;
        }
        // When the request counts from (None: from when it is sent).
        let mut due_from = None;
        if let Some(interval) = interval {
            let due = start + offset + interval * i;
            i += 1;
            if due >= deadline {
                break;
            }
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else if now - due > load.max_lag {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            } else if now - due > Duration::from_micros(100) {
                // The connection was busy with an earlier request past this one's due time.
                counters.late.fetch_add(1, Ordering::Relaxed);
                due_from = Some(due);
            }
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
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let exchange = async {
            s.write_all(&target.request).await?;
            read_frame(s, &mut buf).await
        };
        match tokio::time::timeout(RESPONSE_TIMEOUT, exchange).await {
            Ok(Ok(f)) => {
                let latency = due_from.unwrap_or(sent).elapsed();
                let checked = match &target.expected {
                    Some(expected) => expected.check(f.status, &f.body),
                    None if f.status == 200 => Ok(()),
                    None => Err(format!("status {}", f.status)),
                };
                match checked {
                    Ok(()) => {
                        histogram.saturating_record(latency.as_nanos() as u64);
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
                counters.error("response timed out");
                stream = None;
                buf.clear();
            }
        }
    }
    histogram
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
    pub achieved: f64,
    pub p99_ms: f64,
    pub passed: bool,
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
        steps.push(SearchStep { rate, achieved: r.throughput(), p99_ms: p99, passed });
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
