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
    fn probes_succeed_on_the_reference() {
        for w in Workload::ALL {
            let r = reference_responses(w, &[probe_request(w)]);
            assert_eq!(r[0].0, 200, "{w}");
        }
    }
}
