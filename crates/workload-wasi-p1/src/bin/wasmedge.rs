//! `edgebench-wasmedge.wasm WORKLOAD [ADDR]` on WasmEdge, whose socket
//! functions the `wasmedge_wasi_socket` crate binds.

use std::process::ExitCode;

#[cfg(target_os = "wasi")]
fn main() -> ExitCode {
    use wasmedge_wasi_socket::TcpListener;
    let (workload, addr) = match edgebench_workload_wasi_p1::parse_args("edgebench-wasmedge") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(addr.as_str(), false) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgebench-wasmedge: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    edgebench_workload_wasi_p1::serve(workload, || listener.accept(false).map(|(stream, _)| stream))
}

#[cfg(not(target_os = "wasi"))]
fn main() -> ExitCode {
    eprintln!("edgebench-wasmedge is built for wasm32-wasip1");
    ExitCode::from(2)
}
