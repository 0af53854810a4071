//! The workloads as a core Wasm module for a JavaScript host: workerd runs it
//! from `worker.js`, a Worker whose only job is to copy the request into this
//! module's memory and the response out of it. Built for
//! `wasm32-unknown-unknown`, so the module imports nothing (no WASI).
//!
//! ABI, one call per request:
//! 1. `eb_alloc(len)` returns a buffer of `len` bytes the glue fills with
//!    workload name ‖ method ‖ target (path and query) ‖ body;
//! 2. `eb_handle(ptr, workload_len, method_len, target_len, body_len)` takes
//!    that buffer back, runs the core and returns a pointer to five
//!    little-endian u32: status, content-type pointer and length, body pointer
//!    and length. They stay valid until the next `eb_handle`.
//!
//! State: `kv` keeps its keys in this module's memory. The glue instantiates
//! the module once per isolate, so the state lives as long as the isolate and
//! is per isolate (workerd keeps one isolate per Worker for its whole life).

use edgebench_workload_core::{handle, MemoryStore, Request, Response, Workload};
use std::cell::RefCell;

thread_local! {
    // wasm32-unknown-unknown has one thread: these are module globals.
    static STORE: MemoryStore = MemoryStore::default();
    /// The last response and its record, kept until the next call.
    static LAST: RefCell<Option<(Response, [u32; 5])>> = const { RefCell::new(None) };
}

/// A buffer of `len` bytes for the glue to fill; `eb_handle` frees it.
#[no_mangle]
pub extern "C" fn eb_alloc(len: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; len].into_boxed_slice()) as *mut u8
}

/// Serves the request in the buffer from [`eb_alloc`]; see the module's doc.
///
/// # Safety
/// `ptr` comes from `eb_alloc(workload_len + method_len + target_len + body_len)`
/// and is passed here once.
#[no_mangle]
pub unsafe extern "C" fn eb_handle(
    ptr: *mut u8,
    workload_len: usize,
    method_len: usize,
    target_len: usize,
    body_len: usize,
) -> *const u32 {
    let total = workload_len + method_len + target_len + body_len;
    // SAFETY: the caller passes back eb_alloc's buffer of exactly `total` bytes.
    let input: Box<[u8]> = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, total)) };
    let response = serve(&input, [workload_len, method_len, target_len]);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        let record = [
            u32::from(response.status),
            response.content_type.as_ptr() as u32,
            response.content_type.len() as u32,
            response.body.as_ptr() as u32,
            response.body.len() as u32,
        ];
        // The body's heap buffer does not move with the tuple: the pointers stay valid.
        let (_, record) = last.insert((response, record));
        record.as_ptr()
    })
}

/// The core's answer to one request laid out as `eb_handle` describes.
pub fn serve(input: &[u8], [workload_len, method_len, target_len]: [usize; 3]) -> Response {
    let (workload, rest) = input.split_at(workload_len);
    let (method, rest) = rest.split_at(method_len);
    let (target, body) = rest.split_at(target_len);
    let text = |b| std::str::from_utf8(b).unwrap_or("");
    let Some(workload) = Workload::from_name(text(workload)) else {
        return Response {
            status: 500,
            content_type: "text/plain",
            body: format!("unknown workload {:?}: the Worker's WORKLOAD binding names none\n", text(workload))
                .into_bytes(),
        };
    };
    STORE.with(|store| handle(workload, &Request { method: text(method), target: text(target), body }, store))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(parts: [&str; 4]) -> Response {
        let input: Vec<u8> = parts.concat().into_bytes();
        serve(&input, [parts[0].len(), parts[1].len(), parts[2].len()])
    }

    #[test]
    fn answers_as_the_core_and_keeps_kv_state_across_calls() {
        let hello = call(["hello", "GET", "/", ""]);
        assert_eq!((hello.status, hello.body.as_slice()), (200, edgebench_workload_core::HELLO_BODY.as_bytes()));
        assert_eq!(call(["kv", "PUT", "/kv/a", "7"]).status, 200);
        assert_eq!(call(["kv", "POST", "/kv/a/incr", ""]).status, 200);
        let after = call(["kv", "GET", "/kv/a", ""]);
        assert_eq!(String::from_utf8_lossy(&after.body), "{\"key\":\"a\",\"value\":\"8\"}\n");
        let bad = call(["nope", "GET", "/", ""]);
        assert!(bad.status == 500 && String::from_utf8_lossy(&bad.body).contains("unknown workload"));
    }

    #[test]
    fn the_record_points_at_the_response() {
        let parts = ["echo", "POST", "/echo", "{\"a\":\"b\"}"];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let buf = eb_alloc(total);
        // SAFETY: buf has `total` bytes; eb_handle takes it back once.
        let record = unsafe {
            std::ptr::copy_nonoverlapping(parts.concat().as_ptr(), buf, total);
            std::slice::from_raw_parts(eb_handle(buf, 4, 4, 5, 9), 5)
        };
        assert_eq!(record[0], 200);
        assert_eq!(record[2] as usize, "application/json".len());
        assert!(record[4] > 0);
    }
}
