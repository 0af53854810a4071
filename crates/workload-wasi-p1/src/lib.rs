//! The shared part of the WASI preview-1 servers: arguments and the serving
//! loop. Each binary only opens its listening socket with its runtime's ABI.
//!
//! Preview 1 has no threads: connections are served one after another, in
//! one instance whose memory holds the `kv` state (as the native server's does).

use edgebench_workload_core::{http1, MemoryStore, Workload};
use std::io::{Read, Write};
use std::process::ExitCode;

/// `WORKLOAD [ADDR]` from argv (ADDR falls back to env `EDGEBENCH_ADDR`).
pub fn parse_args(program: &str) -> Result<(Workload, String), ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    let Some(workload) = args.first().and_then(|n| Workload::from_name(n)) else {
        eprintln!("usage: {program} WORKLOAD [ADDR]; WORKLOAD is one of {}", names.join(", "));
        return Err(ExitCode::from(2));
    };
    let addr = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("EDGEBENCH_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    Ok((workload, addr))
}

/// Serves every connection `accept` yields, one at a time, until it fails.
pub fn serve<S, A>(workload: Workload, mut accept: A) -> ExitCode
where
    S: Read + Write,
    A: FnMut() -> std::io::Result<S>,
{
    let store = MemoryStore::default();
    loop {
        match accept() {
            Ok(mut stream) => {
                let _ = http1::serve_connection(&mut stream, workload, &store);
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
}
