//! What edgebench sends to each workload, and what it must get back.
//!
//! Expected responses come from the workload core itself (linked here), run
//! on a fresh in-memory store: every runtime must answer exactly as the core does.

use crate::Workload;
use edgebench_workload_core::{handle, MemoryStore, Request};

/// One request of the measurement client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub target: String,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn new(method: &'static str, target: &str, body: &[u8]) -> HttpRequest {
        HttpRequest { method, target: target.to_string(), body: body.to_vec() }
    }
}

/// `n` of the `cpu` requests in probes and latency runs: about a millisecond
/// of work natively, so that the runtime's code generation shows.
pub const CPU_N: u64 = 100_000;
const ECHO_BODY: &[u8] = br#"{"user":"edge","items":["a","b"],"n":3}"#;

/// The readiness request: a cold start ends at its first correct answer.
pub fn probe_request(workload: Workload) -> HttpRequest {
    match workload {
        Workload::Hello => HttpRequest::new("GET", "/", b""),
        Workload::Cpu => HttpRequest::new("GET", &format!("/cpu?n={CPU_N}"), b""),
        Workload::Echo => HttpRequest::new("POST", "/echo", ECHO_BODY),
        Workload::Kv => HttpRequest::new("PUT", "/kv/probe", b"ready"),
    }
}

/// The request of latency runs: the workload's typical operation.
pub fn latency_request(workload: Workload) -> HttpRequest {
    match workload {
        Workload::Kv => HttpRequest::new("POST", "/kv/hits/incr", b""),
        other => probe_request(other),
    }
}

/// The body a correct probe answer has.
pub fn expected_probe_body(workload: Workload) -> Vec<u8> {
    reference_responses(workload, &[probe_request(workload)]).remove(0).1
}

/// What a correct answer to the latency request looks like: every response
/// of a latency run or a load run is checked against it (a wrong answer is
/// an error, never a latency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub status: u16,
    pub body: ExpectedBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedBody {
    Exact(Vec<u8>),
    /// A counter's answer (`kv` increments): `prefix`, decimal digits, `suffix`.
    Counter {
        prefix: Vec<u8>,
        suffix: Vec<u8>,
    },
}

impl Expected {
    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let body_ok = match &self.body {
            ExpectedBody::Exact(b) => body == b.as_slice(),
            ExpectedBody::Counter { prefix, suffix } => {
                body.len() > prefix.len() + suffix.len()
                    && body.starts_with(prefix)
                    && body.ends_with(suffix)
                    && body[prefix.len()..body.len() - suffix.len()].iter().all(u8::is_ascii_digit)
            }
        };
        if status == self.status && body_ok {
            return Ok(());
        }
        Err(format!(
            "unexpected answer: status {status}, body {:?}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        ))
    }
}

/// The expected answer to [`latency_request`], from the workload core.
pub fn expected_latency_answer(workload: Workload) -> Expected {
    let (status, body) = reference_responses(workload, &[latency_request(workload)]).remove(0);
    let body = match workload {
        // The first increment of a fresh store answers 1: the digits vary, the rest does not.
        Workload::Kv => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let at = text.find("\"1\"").map(|i| i + 1).expect("the core's first increment answers 1");
            ExpectedBody::Counter { prefix: body[..at].to_vec(), suffix: body[at + 1..].to_vec() }
        }
        _ => ExpectedBody::Exact(body),
    };
    Expected { status, body }
}

/// The conformance sequence, sent after the probe on one instance.
pub fn conformance_requests(workload: Workload) -> Vec<HttpRequest> {
    let mut all = vec![HttpRequest::new("GET", "/no-such-route", b""), HttpRequest::new("DELETE", "/", b"")];
    all.extend(match workload {
        Workload::Hello => vec![HttpRequest::new("GET", "/", b"")],
        Workload::Cpu => vec![
            HttpRequest::new("GET", "/cpu?n=1000", b""),
            HttpRequest::new("GET", "/cpu?n=0", b""),
            HttpRequest::new("GET", "/cpu?n=abc", b""),
            HttpRequest::new("GET", "/cpu?n=99999999999", b""),
        ],
        Workload::Echo => vec![
            HttpRequest::new("POST", "/echo", ECHO_BODY),
            HttpRequest::new("POST", "/echo", r#"{"ünï":"çødé","deep":{"x":["y"]}}"#.as_bytes()),
            HttpRequest::new("POST", "/echo", b"not json"),
            HttpRequest::new("POST", "/echo", b"[1,2]"),
        ],
        Workload::Kv => vec![
            HttpRequest::new("GET", "/kv/probe", b""),
            HttpRequest::new("GET", "/kv/missing", b""),
            HttpRequest::new("PUT", "/kv/a", b"hello"),
            HttpRequest::new("GET", "/kv/a", b""),
            HttpRequest::new("POST", "/kv/a/incr", b""),
            HttpRequest::new("POST", "/kv/c/incr", b""),
            HttpRequest::new("POST", "/kv/c/incr", b""),
            HttpRequest::new("GET", "/kv/c", b""),
            HttpRequest::new("PUT", "/kv/bad.key", b"x"),
        ],
    });
    all
}

/// What the core answers to `requests`, sent in order on one fresh store.
pub fn reference_responses(workload: Workload, requests: &[HttpRequest]) -> Vec<(u16, Vec<u8>)> {
    let store = MemoryStore::default();
    requests
        .iter()
        .map(|r| {
            let response = handle(workload, &Request { method: r.method, target: &r.target, body: &r.body }, &store);
            (response.status, response.body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_answers_are_checked_exactly_or_as_a_counter() {
        let hello = expected_latency_answer(Workload::Hello);
        let (status, body) = reference_responses(Workload::Hello, &[latency_request(Workload::Hello)]).remove(0);
        assert!(hello.check(status, &body).is_ok());
        assert!(hello.check(status, b"hello, world?").unwrap_err().contains("unexpected answer"));
        assert!(hello.check(500, &body).is_err());
        let kv = expected_latency_answer(Workload::Kv);
        let answers = reference_responses(Workload::Kv, &vec![latency_request(Workload::Kv); 12]);
        for (status, body) in &answers {
            assert!(kv.check(*status, body).is_ok(), "{}", String::from_utf8_lossy(body));
        }
        assert!(kv.check(200, br#"{"key":"hits","value":"x"}"#).is_err());
    }

    #[test]
    fn probes_succeed_on_the_reference() {
        for w in Workload::ALL {
            let r = reference_responses(w, &[probe_request(w)]);
            assert_eq!(r[0].0, 200, "{w}");
        }
    }
}
