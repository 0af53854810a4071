//! `edgebench-wasmer.wasm WORKLOAD [ADDR]` on Wasmer (`wasmer run --net`),
//! which opens its listening socket with WASIX's calls (`wasix_32v1`).

use std::process::ExitCode;

#[cfg(target_os = "wasi")]
fn main() -> ExitCode {
    let (workload, addr) = match edgebench_workload_wasi_p1::parse_args("edgebench-wasmer") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let listener = match wasix_socket::listen(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgebench-wasmer: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    // Accepted streams use preview 1's own sock_accept/sock_recv/sock_send,
    // which Rust's std calls and Wasmer implements.
    edgebench_workload_wasi_p1::serve(workload, || listener.accept().map(|(stream, _)| stream))
}

#[cfg(not(target_os = "wasi"))]
fn main() -> ExitCode {
    eprintln!("edgebench-wasmer is built for wasm32-wasip1");
    ExitCode::from(2)
}

#[cfg(target_os = "wasi")]
mod wasix_socket {
    use std::io;
    use std::net::{SocketAddr, TcpListener};
    use std::os::wasi::io::FromRawFd;
    use wasix::{AddrIp4, AddrIp4Port, AddrPort, AddrPortU};

    fn check<T>(what: &str, r: Result<T, wasix::Errno>) -> io::Result<T> {
        r.map_err(|e| io::Error::other(format!("{what}: WASIX errno {}", e.raw())))
    }

    /// Opens, binds and listens on an IPv4 address.
    pub fn listen(addr: &str) -> io::Result<TcpListener> {
        let SocketAddr::V4(v4) = addr.parse().map_err(|e| io::Error::other(format!("{addr}: {e}")))? else {
            return Err(io::Error::other("only IPv4 addresses are supported"));
        };
        let [n0, n1, h0, h1] = v4.ip().octets();
        let at = AddrPort {
            tag: wasix::ADDRESS_FAMILY_INET4.raw(),
            u: AddrPortU { inet4: AddrIp4Port { port: v4.port(), addr: AddrIp4 { n0, n1, h0, h1 } } },
        };
        // SAFETY: `at` is a live, properly laid out AddrPort.
        unsafe {
            let fd = check(
                "sock_open",
                wasix::sock_open(wasix::ADDRESS_FAMILY_INET4, wasix::SOCK_TYPE_SOCKET_STREAM, wasix::SOCK_PROTO_TCP),
            )?;
            check("sock_set_opt_flag", wasix::sock_set_opt_flag(fd, wasix::SOCK_OPTION_REUSE_ADDR, wasix::BOOL_TRUE))?;
            check("sock_bind", wasix::sock_bind(fd, &at))?;
            check("sock_listen", wasix::sock_listen(fd, 128))?;
            Ok(TcpListener::from_raw_fd(fd as i32))
        }
    }
}
