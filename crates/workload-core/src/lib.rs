//! One handler core per workload, shared by every target adapter (native server,
//! `wasi:http` component, and later a WASI preview-1 socket server).
//!
//! Adapters translate their transport into a [`Request`], call [`handle`] and
//! write the [`Response`] back. Nothing here does I/O except through the
//! [`KvStore`] the adapter supplies, so every target computes identical bodies.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod cpu;
mod echo;
#[cfg(feature = "http1")]
pub mod http1;
mod kv;

#[cfg(feature = "std")]
pub use kv::{DirStore, MemoryStore};
pub use kv::{KvStore, StoreError};

use alloc::string::String;
use alloc::vec::Vec;

/// The four services of the study (the seed's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// A fixed greeting.
    Hello,
    /// A deterministic CPU-bound function whose answer is in the response.
    Cpu,
    /// A lightweight network endpoint: small JSON in, transformed JSON out.
    Echo,
    /// A simple stateful service: PUT/GET/increment on keys.
    Kv,
}

impl Workload {
    pub const ALL: [Workload; 4] = [Workload::Hello, Workload::Cpu, Workload::Echo, Workload::Kv];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Hello => "hello",
            Workload::Cpu => "cpu",
            Workload::Echo => "echo",
            Workload::Kv => "kv",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        Workload::from_name(&name).ok_or_else(|| serde::de::Error::custom(alloc::format!("unknown workload {name:?}")))
    }
}

impl core::fmt::Display for Workload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

/// The greeting of the `hello` workload.
pub const HELLO_BODY: &str = "Hello from edgebench\n";

/// A request as every adapter sees it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path with the query string, as sent on the request line.
    pub target: &'a str,
    pub body: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain", body: body.into().into_bytes() }
    }

    fn json(status: u16, value: serde_json::Value) -> Response {
        let mut body = serde_json::to_vec(&value).expect("a JSON value always serialises");
        body.push(b'\n');
        Response { status, content_type: "application/json", body }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::json(status, serde_json::json!({ "error": message }))
    }
}

/// Serves one request of `workload`. `store` holds the state of `kv`; the other
/// workloads never touch it.
pub fn handle(workload: Workload, request: &Request<'_>, store: &dyn KvStore) -> Response {
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (request.target, ""),
    };
    match workload {
        Workload::Hello => match (request.method, path) {
            ("GET", "/") => Response::text(200, HELLO_BODY),
            _ => not_found(),
        },
        Workload::Cpu => match (request.method, path) {
            ("GET", "/cpu") => cpu::handle(query),
            _ => not_found(),
        },
        Workload::Echo => match (request.method, path) {
            ("POST", "/echo") => echo::handle(request.body),
            _ => not_found(),
        },
        Workload::Kv => kv::handle(request.method, path, request.body, store),
    }
}

fn not_found() -> Response {
    Response::error(404, "no such route")
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn get(workload: Workload, target: &str) -> Response {
        handle(workload, &Request { method: "GET", target, body: b"" }, &MemoryStore::default())
    }

    #[test]
    fn hello_greets_and_rejects_other_paths() {
        assert_eq!(get(Workload::Hello, "/").body, HELLO_BODY.as_bytes());
        assert_eq!(get(Workload::Hello, "/x").status, 404);
    }

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Workload::from_name("nope"), None);
    }
}
