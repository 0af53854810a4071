//! Request-response latency: N sequential requests on one keep-alive
//! connection, or N requests each on a new connection (connect included).
//! Every sample is kept; the report builds HDR histograms from them.

use super::http;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Run<'a> {
    pub addr: SocketAddr,
    pub request: &'a [u8],
    /// Requests sent before the measured ones and not recorded.
    pub warmup: usize,
    pub count: usize,
    /// The run ends here if its requests are not done (`None`: no limit).
    pub time_limit: Option<Duration>,
    pub interrupted: &'a AtomicBool,
    /// The answer every response must be; `None` accepts any `200`.
    pub expected: Option<&'a crate::workload::Expected>,
}

/// Latencies in nanoseconds (fewer than asked when the time limit was
/// reached), or the error that stopped the run together with what was
/// measured before it.
pub type Outcome = Result<Vec<u64>, (String, Vec<u64>)>;

impl Run<'_> {
    pub fn keepalive(&self) -> Outcome {
        let mut stream = http::connect(self.addr, REQUEST_TIMEOUT).map_err(|e| (format!("connect: {e}"), vec![]))?;
        self.measure(|| http::exchange(&mut stream, self.request))
    }

    pub fn new_connection(&self) -> Outcome {
        self.measure(|| http::one_shot(self.addr, self.request, REQUEST_TIMEOUT))
    }

    fn measure(&self, mut send: impl FnMut() -> std::io::Result<http::Response>) -> Outcome {
        let mut samples = Vec::with_capacity(self.count);
        let deadline = self.time_limit.map(|limit| Instant::now() + limit);
        for i in 0..self.warmup + self.count {
            if deadline.is_some_and(|d| Instant::now() >= d) && !samples.is_empty() {
                break;
            }
            if self.interrupted.load(Ordering::Relaxed) {
                return Err(("interrupted".into(), samples));
            }
            let start = Instant::now();
            let response = send();
            let elapsed = start.elapsed();
            let checked = match (&response, self.expected) {
                (Ok(r), Some(expected)) => expected.check(r.status, &r.body),
                (Ok(r), None) if r.status == 200 => Ok(()),
                (Ok(r), None) => Err(format!("status {}", r.status)),
                (Err(e), _) => Err(e.to_string()),
            };
            if let Err(e) = checked {
                return Err((format!("request {i}: {e}"), samples));
            }
            if i >= self.warmup {
                samples.push(elapsed.as_nanos() as u64);
            }
        }
        Ok(samples)
    }
}
