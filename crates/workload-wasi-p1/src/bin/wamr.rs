//! `edgebench-wamr.wasm WORKLOAD [ADDR]` on WAMR's `iwasm`, which needs
//! `--addr-pool` covering ADDR to let it bind.

use std::process::ExitCode;

#[cfg(target_os = "wasi")]
fn main() -> ExitCode {
    let (workload, addr) = match edgebench_workload_wasi_p1::parse_args("edgebench-wamr") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let listener = match wamr_socket::listen(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgebench-wamr: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    // Accepted streams use preview 1's own sock_accept/sock_recv/sock_send,
    // which Rust's std calls and WAMR implements.
    edgebench_workload_wasi_p1::serve(workload, || listener.accept().map(|(stream, _)| stream))
}

#[cfg(not(target_os = "wasi"))]
fn main() -> ExitCode {
    eprintln!("edgebench-wamr is built for wasm32-wasip1");
    ExitCode::from(2)
}

/// WAMR's socket extension of preview 1 (the ABI of its
/// `core/iwasm/libraries/lib-socket/inc/wasi_socket_ext.h`).
#[cfg(target_os = "wasi")]
mod wamr_socket {
    use std::io;
    use std::net::{SocketAddr, TcpListener};
    use std::os::wasi::io::FromRawFd;

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn sock_open(poolfd: i32, af: i32, socktype: i32, sockfd: *mut u32) -> i32;
        fn sock_set_reuse_addr(fd: i32, reuse: i32) -> i32;
        fn sock_bind(fd: i32, addr: *const WasiAddr) -> i32;
        fn sock_listen(fd: i32, backlog: i32) -> i32;
    }

    const INET4: i32 = 0;
    const SOCKET_STREAM: i32 = 1;
    const ADDR_IPV4: u32 = 0;

    /// `__wasi_addr_t` for IPv4: a 4-byte kind, then (at offset 4) the four
    /// address bytes and the port in host byte order; the union is 18 bytes.
    #[repr(C)]
    struct WasiAddr {
        kind: u32,
        ip: [u8; 4],
        port: u16,
        _rest_of_union: [u8; 12],
    }

    fn check(what: &str, errno: i32) -> io::Result<()> {
        match errno {
            0 => Ok(()),
            e => Err(io::Error::other(format!("{what}: WASI errno {e}"))),
        }
    }

    /// Opens, binds and listens on an IPv4 address.
    pub fn listen(addr: &str) -> io::Result<TcpListener> {
        let SocketAddr::V4(v4) = addr.parse().map_err(|e| io::Error::other(format!("{addr}: {e}")))? else {
            return Err(io::Error::other("only IPv4 addresses are supported"));
        };
        let wasi_addr = WasiAddr { kind: ADDR_IPV4, ip: v4.ip().octets(), port: v4.port(), _rest_of_union: [0; 12] };
        let mut fd = 0u32;
        // SAFETY: every pointer points to a live, properly laid out value.
        unsafe {
            check("sock_open", sock_open(-1, INET4, SOCKET_STREAM, &mut fd))?;
            check("sock_set_reuse_addr", sock_set_reuse_addr(fd as i32, 1))?;
            check("sock_bind", sock_bind(fd as i32, &wasi_addr))?;
            check("sock_listen", sock_listen(fd as i32, 128))?;
            Ok(TcpListener::from_raw_fd(fd as i32))
        }
    }
}
