//! The readiness probe that ends a cold start.
//!
//! t0 is taken by the runtime just before it asks the OS (or an engine) to
//! launch; the probe then loops: connect, send the workload's probe request,
//! read the whole response. t_accept is the first accepted connection; t1 the
//! first complete `200` whose body is exactly the expected one. Between failed
//! refused connects it sleeps `PROBE_INTERVAL` (with 1 µs timer slack); while
//! connects go unanswered (a VM whose network is not up drops SYNs) a new one
//! is started every [`connect::STAGGER`] (or half the wait so far)
//! beside the earlier ones (see [`connect`] for why that is enough). The mean
//! interval actually achieved is returned with every cold start, and so is
//! the CPU time the probe itself spent (it runs on the client's CPUs).
//!
//! Once a connection is accepted the first response is waited for until the
//! runtime's whole ready timeout is used up (a slow first answer is measured,
//! not abandoned).

use super::connect::{self, Connector, Step};
use super::http;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const PROBE_INTERVAL: Duration = Duration::from_micros(25);

#[derive(Clone, Debug)]
pub struct Ready {
    /// t0 → first accepted TCP connection.
    pub accept: Duration,
    /// t0 → first complete, correct `200` (t1).
    pub response: Duration,
    pub attempts: u32,
    /// Mean time between the starts of two attempts.
    pub mean_interval: Duration,
    /// CPU time of the probing thread over the whole wait.
    pub cpu: Duration,
}

#[derive(Debug)]
pub enum NotReady {
    /// The instance is gone (its text says how it ended).
    Exited(String),
    TimedOut {
        after: Duration,
        last_error: String,
    },
    Interrupted,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(how) => write!(f, "the instance exited before answering: {how}"),
            NotReady::TimedOut { after, last_error } => {
                write!(f, "no correct answer within {after:?}; last attempt: {last_error}")
            }
            NotReady::Interrupted => write!(f, "interrupted"),
        }
    }
}

pub struct Probe<'a> {
    pub addr: SocketAddr,
    /// The encoded probe request.
    pub request: &'a [u8],
    /// What a correct answer is (the workload's probe check).
    pub expected: &'a crate::workload::Expected,
    pub timeout: Duration,
    pub interrupted: &'a AtomicBool,
}

impl Probe<'_> {
    /// Polls until ready. `exited` is asked between attempts whether the
    /// instance has died (so a crash ends the wait at once).
    pub fn wait(&self, t0: Instant, exited: &mut dyn FnMut() -> Option<String>) -> Result<Ready, NotReady> {
        let mut accept = None;
        let mut last_error;
        let mut connector = Connector::new(self.addr);
        let first_attempt = Instant::now();
        let cpu_at_start = thread_cpu();
        loop {
            let mut refused = false;
            match connector.step(connect::STAGGER) {
                Step::Connected(mut stream) => {
                    accept.get_or_insert_with(|| t0.elapsed());
                    connector.reset();
                    let left = self.timeout.saturating_sub(t0.elapsed()).max(Duration::from_millis(1));
                    let answered =
                        stream.set_read_timeout(Some(left)).and_then(|()| stream.set_write_timeout(Some(left)));
                    match answered.and_then(|()| http::exchange(&mut stream, self.request)) {
                        Ok(r) if self.expected.check(r.status, &r.body).is_ok() => {
                            let response = t0.elapsed();
                            let attempts = connector.started;
                            let mean_interval =
                                if attempts > 1 { first_attempt.elapsed() / attempts } else { Duration::ZERO };
                            let cpu = thread_cpu().saturating_sub(cpu_at_start);
                            return Ok(Ready {
                                accept: accept.unwrap_or(response),
                                response,
                                attempts,
                                mean_interval,
                                cpu,
                            });
                        }
                        Ok(r) => {
                            last_error = format!(
                                "status {} body {:?}",
                                r.status,
                                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
                            )
                        }
                        Err(e) => last_error = format!("request: {e}"),
                    }
                    refused = true;
                }
                Step::Refused(e) => {
                    last_error = format!("connect: {e}");
                    refused = true;
                }
                Step::Pending => last_error = "connect: no answer yet".into(),
            }
            if let Some(how) = exited() {
                return Err(NotReady::Exited(how));
            }
            if self.interrupted.load(Ordering::Relaxed) {
                return Err(NotReady::Interrupted);
            }
            let waited = t0.elapsed();
            if waited > self.timeout {
                return Err(NotReady::TimedOut { after: waited, last_error });
            }
            if refused {
                std::thread::sleep(PROBE_INTERVAL);
            }
        }
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map(Duration::from).unwrap_or_default()
}

/// Lets short sleeps be short: the default 50 µs timer slack would double
/// the probe interval.
pub fn tighten_timer_slack() {
    let _ = nix::sys::prctl::set_timerslack(1_000);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server that accepts at once but answers its first request only after
    /// `delay`: a probe that timed the answer out like a connect would abandon it and retry.
    fn slow_first_answer(delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        addr
    }

    #[test]
    fn a_slow_first_answer_is_measured_not_retried() {
        let delay = Duration::from_millis(400);
        let addr = slow_first_answer(delay);
        let never = AtomicBool::new(false);
        let probe = Probe {
            addr,
            request: b"GET / HTTP/1.1\r\nhost: x\r\n\r\n",
            expected: &crate::workload::Expected::exact(200, b"ok"),
            timeout: Duration::from_secs(20),
            interrupted: &never,
        };
        let t0 = Instant::now();
        let ready = probe.wait(t0, &mut || None).expect("the slow answer is waited for");
        assert_eq!(ready.attempts, 1, "one attempt, answered late: {ready:?}");
        assert!(ready.response >= delay, "{ready:?}");
        assert!(ready.accept < ready.response, "{ready:?}");
    }
}
