//! edgebench's embedded Wasmtime host.
//!
//! `serve COMPONENT.cwasm --addr A [--dir HOST::GUEST]` serves a component
//! precompiled by `edgebench-wasmtime-precompile` (same engine settings,
//! `src/engine.rs`) over HTTP/1.1 with a fresh instance per request (the
//! `wasi:http` proxy model). This binary has no compiler.
//!
//! Tuned along the lines of Wasmtime's "fast instantiation" guidance: the
//! component is deserialised from a file (mmap, no compile at start), linked
//! once into an `InstancePre`, and instances come from a small pooling
//! allocator with copy-on-write memory images.
//!
//! Each response carries `x-edgebench-instantiate-ns` and
//! `x-edgebench-handle-ns`: the time spent instantiating and until the guest
//! set its response, measured inside the host (warm-start phases). At start
//! the host prints one `edgebench-host-ready {...}` line to stderr with its
//! start-up phases in nanoseconds since `main`, and `main`'s CLOCK_MONOTONIC.

mod engine;
mod serve;

/// dlmalloc keeps freed memory for reuse and maps in large segments; musl's
/// malloc made start-up a stream of page-sized mmap/munmap calls (strace).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use std::time::Instant;
use wasmtime::error::Context;
use wasmtime::{bail, Result};

fn main() -> Result<()> {
    let started = Instant::now();
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let main_mono_ns = now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve::main(serve::Options::parse(&args[1..])?, started, main_mono_ns),
        Some("version") => {
            println!("edgebench-wasmtime-host {} (wasmtime {})", env!("CARGO_PKG_VERSION"), engine::WASMTIME_VERSION);
            Ok(())
        }
        _ => bail!(
            "usage: edgebench-wasmtime-host serve COMPONENT.cwasm --addr IP:PORT [--dir HOST::GUEST] [--pool SLOTS] [--threads N]\n       \
             edgebench-wasmtime-host version"
        ),
    }
    .context("edgebench-wasmtime-host")
}
