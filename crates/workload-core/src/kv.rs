//! `kv`: PUT/GET/increment on keys; state survives across requests for as long
//! as the adapter's [`KvStore`] does.
//!
//! Routes: `GET /kv/{key}`, `PUT /kv/{key}` (body = value), `POST /kv/{key}/incr`.

use crate::Response;
use alloc::format;
use alloc::string::{String, ToString};
#[cfg(feature = "std")]
use std::{collections::HashMap, io, path::PathBuf, sync::Mutex};

pub const MAX_VALUE: usize = 4096;
const MAX_KEY: usize = 64;

/// Why a store could not answer (its text goes into the 500 response).
#[derive(Debug)]
pub struct StoreError(pub String);

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "std")]
impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where `kv` keeps its state: process memory on native targets, a preopened
/// directory where the runtime gives each request a fresh instance.
pub trait KvStore {
    fn get(&self, key: &str) -> StoreResult<Option<String>>;
    fn put(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Adds one to an integer value (a missing key counts as 0).
    /// Not atomic across instances unless the store makes it so.
    fn increment(&self, key: &str) -> StoreResult<Result<i64, String>> {
        let next = match parse_counter(self.get(key)?) {
            Ok(n) => n + 1,
            Err(e) => return Ok(Err(e)),
        };
        self.put(key, &next.to_string())?;
        Ok(Ok(next))
    }
}

pub fn parse_counter(value: Option<String>) -> Result<i64, String> {
    match value {
        None => Ok(0),
        Some(v) => v.trim().parse::<i64>().map_err(|_| "value is not an integer".to_string()),
    }
}

/// In-process state, shared by every connection of one server.
#[cfg(feature = "std")]
#[derive(Default)]
pub struct MemoryStore(Mutex<HashMap<String, String>>);

#[cfg(feature = "std")]
impl KvStore for MemoryStore {
    fn get(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }

    fn put(&self, key: &str, value: &str) -> StoreResult<()> {
        self.0.lock().unwrap().insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn increment(&self, key: &str) -> StoreResult<Result<i64, String>> {
        let mut map = self.0.lock().unwrap();
        let next = match parse_counter(map.get(key).cloned()) {
            Ok(n) => n + 1,
            Err(e) => return Ok(Err(e)),
        };
        map.insert(key.to_string(), next.to_string());
        Ok(Ok(next))
    }
}

/// One file per key in a directory (a WASI preopen for per-request instances).
#[cfg(feature = "std")]
pub struct DirStore(pub PathBuf);

#[cfg(feature = "std")]
impl KvStore for DirStore {
    fn get(&self, key: &str) -> StoreResult<Option<String>> {
        match std::fs::read_to_string(self.0.join(key)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a temporary file and renames it over the key, so that a
    /// concurrent reader sees the old or the new value, never a partial one.
    fn put(&self, key: &str, value: &str) -> StoreResult<()> {
        use std::hash::{BuildHasher, Hasher};
        // A random name (RandomState draws from the OS): concurrent instances
        // each start with fresh memory, so a counter would collide.
        let nonce = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let tmp = self.0.join(format!(".{key}.{nonce:016x}.tmp"));
        std::fs::write(&tmp, value)?;
        Ok(std::fs::rename(&tmp, self.0.join(key))?)
    }
}

pub fn handle(method: &str, path: &str, body: &[u8], store: &dyn KvStore) -> Response {
    let Some(rest) = path.strip_prefix("/kv/") else {
        return super::not_found();
    };
    let (key, action) = match rest.split_once('/') {
        Some((key, action)) => (key, Some(action)),
        None => (rest, None),
    };
    if !valid_key(key) {
        return Response::error(400, "key must be 1-64 characters of A-Z a-z 0-9 _ -");
    }
    let outcome = match (method, action) {
        ("GET", None) => store.get(key).map(|v| match v {
            Some(value) => ok(key, &value),
            None => Response::error(404, "no such key"),
        }),
        ("PUT", None) => put(store, key, body),
        ("POST", Some("incr")) => store.increment(key).map(|r| match r {
            Ok(n) => ok(key, &n.to_string()),
            Err(message) => Response::error(409, &message),
        }),
        _ => return super::not_found(),
    };
    outcome.unwrap_or_else(|e| Response::error(500, &format!("store: {e}")))
}

fn put(store: &dyn KvStore, key: &str, body: &[u8]) -> StoreResult<Response> {
    if body.len() > MAX_VALUE {
        return Ok(Response::error(413, "value larger than 4 KiB"));
    }
    let Ok(value) = core::str::from_utf8(body) else {
        return Ok(Response::error(400, "value must be UTF-8"));
    };
    store.put(key, value)?;
    Ok(ok(key, value))
}

fn ok(key: &str, value: &str) -> Response {
    Response::json(200, serde_json::json!({ "key": key, "value": value }))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn call(store: &dyn KvStore, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let r = handle(method, path, body, store);
        (r.status, String::from_utf8(r.body).unwrap())
    }

    fn exercise(store: &dyn KvStore) {
        assert_eq!(call(store, "GET", "/kv/a", b"").0, 404);
        assert_eq!(call(store, "PUT", "/kv/a", b"x").0, 200);
        assert_eq!(call(store, "GET", "/kv/a", b""), (200, "{\"key\":\"a\",\"value\":\"x\"}\n".into()));
        assert_eq!(call(store, "POST", "/kv/a/incr", b"").0, 409);
        assert_eq!(call(store, "POST", "/kv/n/incr", b"").1, "{\"key\":\"n\",\"value\":\"1\"}\n");
        assert_eq!(call(store, "POST", "/kv/n/incr", b"").1, "{\"key\":\"n\",\"value\":\"2\"}\n");
        assert_eq!(call(store, "GET", "/kv/../x", b"").0, 400);
    }

    #[test]
    fn memory_and_directory_stores_behave_alike() {
        exercise(&MemoryStore::default());
        let dir = std::env::temp_dir().join(format!("edgebench-kv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        exercise(&DirStore(dir.clone()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
