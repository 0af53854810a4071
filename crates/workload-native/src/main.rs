//! `edgebench-workload WORKLOAD [ADDR]`: serves one workload over HTTP/1.1,
//! a thread per connection, state in process memory. `edgebench-workload
//! pause` only sleeps (a pod's namespace holder).
//! Built as a static musl binary so that the same file runs natively, in a
//! `FROM scratch` container and as a micro-VM guest's server.

use edgebench_workload_core::{http1, MemoryStore, Workload};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pause") {
        // Holds a container's namespaces for others to join (Docker's pause
        // container of a pod); killed, never asked to stop.
        loop {
            std::thread::park();
        }
    }
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    let Some(workload) = args.first().and_then(|n| Workload::from_name(n)) else {
        eprintln!("usage: edgebench-workload WORKLOAD [ADDR]; WORKLOAD is one of {}", names.join(", "));
        return ExitCode::from(2);
    };
    let addr = args.get(1).map(String::as_str).unwrap_or("127.0.0.1:8080");
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgebench-workload: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let store = Arc::new(MemoryStore::default());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let _ = http1::serve_connection(&mut stream, workload, store.as_ref());
        });
    }
    ExitCode::SUCCESS
}
