//! The four built-in services (the seed's): their requests, and what they
//! must answer. Expected answers come from the workload core itself (linked
//! here), run on a fresh in-memory store: every runtime must answer exactly as
//! the core does.

use super::{Builtin, Expected, ExpectedBody, HttpRequest};
use edgebench_workload_core::{handle, MemoryStore, Request};

/// `n` of the `cpu` requests in probes and latency runs: about a millisecond
/// of work natively, so that the runtime's code generation shows.
pub const CPU_N: u64 = 100_000;
const ECHO_BODY: &[u8] = br#"{"user":"edge","items":["a","b"],"n":3}"#;

/// The readiness request: a cold start ends at its first correct answer.
pub fn probe_request(workload: Builtin) -> HttpRequest {
    match workload {
        Builtin::Hello => HttpRequest::new("GET", "/", b""),
        Builtin::Cpu => HttpRequest::new("GET", &format!("/cpu?n={CPU_N}"), b""),
        Builtin::Echo => HttpRequest::new("POST", "/echo", ECHO_BODY),
        Builtin::Kv => HttpRequest::new("PUT", "/kv/probe", b"ready"),
    }
}

/// The request of latency runs: the workload's typical operation.
pub fn latency_request(workload: Builtin) -> HttpRequest {
    match workload {
        Builtin::Kv => HttpRequest::new("POST", "/kv/hits/incr", b""),
        other => probe_request(other),
    }
}

pub fn expected_probe(workload: Builtin) -> Expected {
    let (status, body) = reference_responses(workload, &[probe_request(workload)]).remove(0);
    Expected::exact(status, &body)
}

/// The expected answer to [`latency_request`], from the workload core.
pub fn expected_latency(workload: Builtin) -> Expected {
    let (status, body) = reference_responses(workload, &[latency_request(workload)]).remove(0);
    let body = match workload {
        // The first increment of a fresh store answers 1: the digits vary, the rest does not.
        Builtin::Kv => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let at = text.find("\"1\"").map(|i| i + 1).expect("the core's first increment answers 1");
            ExpectedBody::Counter { prefix: body[..at].to_vec(), suffix: body[at + 1..].to_vec() }
        }
        _ => ExpectedBody::Exact(body),
    };
    Expected { status, body }
}

/// The conformance sequence, sent after the probe on one instance, with the
/// core's answers to the same sequence.
pub fn conformance(workload: Builtin) -> Vec<(HttpRequest, Expected)> {
    let mut all = vec![HttpRequest::new("GET", "/no-such-route", b""), HttpRequest::new("DELETE", "/", b"")];
    all.extend(match workload {
        Builtin::Hello => vec![HttpRequest::new("GET", "/", b"")],
        Builtin::Cpu => vec![
            HttpRequest::new("GET", "/cpu?n=1000", b""),
            HttpRequest::new("GET", "/cpu?n=0", b""),
            HttpRequest::new("GET", "/cpu?n=abc", b""),
            HttpRequest::new("GET", "/cpu?n=99999999999", b""),
        ],
        Builtin::Echo => vec![
            HttpRequest::new("POST", "/echo", ECHO_BODY),
            HttpRequest::new("POST", "/echo", r#"{"ünï":"çødé","deep":{"x":["y"]}}"#.as_bytes()),
            HttpRequest::new("POST", "/echo", b"not json"),
            HttpRequest::new("POST", "/echo", b"[1,2]"),
        ],
        Builtin::Kv => vec![
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
    let mut sequence = vec![probe_request(workload)];
    sequence.extend(all.iter().cloned());
    let answers = reference_responses(workload, &sequence);
    all.into_iter()
        .zip(answers.into_iter().skip(1))
        .map(|(r, (status, body))| (r, Expected::exact(status, &body)))
        .collect()
}

/// What the core answers to `requests`, sent in order on one fresh store.
pub fn reference_responses(workload: Builtin, requests: &[HttpRequest]) -> Vec<(u16, Vec<u8>)> {
    let store = MemoryStore::default();
    requests
        .iter()
        .map(|r| {
            let response = handle(workload, &Request { method: &r.method, target: &r.target, body: &r.body }, &store);
            (response.status, response.body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_answers_are_checked_exactly_or_as_a_counter() {
        let hello = expected_latency(Builtin::Hello);
        let (status, body) = reference_responses(Builtin::Hello, &[latency_request(Builtin::Hello)]).remove(0);
        assert!(hello.check(status, &body).is_ok());
        assert!(hello.check(status, b"hello, world?").unwrap_err().contains("unexpected answer"));
        assert!(hello.check(500, &body).is_err());
        let kv = expected_latency(Builtin::Kv);
        let answers = reference_responses(Builtin::Kv, &vec![latency_request(Builtin::Kv); 12]);
        for (status, body) in &answers {
            assert!(kv.check(*status, body).is_ok(), "{}", String::from_utf8_lossy(body));
        }
        assert!(kv.check(200, br#"{"key":"hits","value":"x"}"#).is_err());
    }

    #[test]
    fn probes_succeed_on_the_reference() {
        for w in Builtin::ALL {
            let r = reference_responses(w, &[probe_request(w)]);
            assert_eq!(r[0].0, 200, "{w}");
        }
    }

    #[test]
    fn conformance_expectations_follow_the_probe() {
        // kv's `GET /kv/probe` answers what the probe stored.
        let checks = conformance(Builtin::Kv);
        let (request, expected) = &checks[2];
        assert_eq!(request.target, "/kv/probe");
        assert!(expected
            .check(200, &reference_responses(Builtin::Kv, &[probe_request(Builtin::Kv), request.clone()])[1].1)
            .is_ok());
    }
}
