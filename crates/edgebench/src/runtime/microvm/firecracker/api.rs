//! Firecracker's API: blocking HTTP/1.1 over its Unix socket, one request per
//! connection, responses parsed with `httparse`.

use anyhow::{bail, Context as _, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Api {
    socket: PathBuf,
}

impl Api {
    pub fn new(socket: &Path) -> Api {
        Api { socket: socket.to_path_buf() }
    }

    /// Waits until the API answers `GET /` (bounded by `timeout`).
    pub fn wait_ready(&self, timeout: Duration, alive: &mut dyn FnMut() -> Option<String>) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.request("GET", "/", None) {
                return Ok(());
            }
            if let Some(exit) = alive() {
                bail!("firecracker exited before its API was ready: {exit}");
            }
            if Instant::now() > deadline {
                bail!("firecracker's API socket {} did not answer within {timeout:?}", self.socket.display());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// A request that must succeed (2xx).
    pub fn call(&self, method: &str, path: &str, body: &str) -> Result<()> {
        let (status, text) = self.request(method, path, Some(body))?;
        if !(200..300).contains(&status) {
            bail!("firecracker {method} {path}: {status} {}", text.trim());
        }
        Ok(())
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
        let mut stream =
            UnixStream::connect(&self.socket).with_context(|| format!("connecting to {}", self.socket.display()))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        read_response(&mut stream)
    }
}

fn read_response(stream: &mut UnixStream) -> Result<(u16, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("firecracker closed the API connection mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(&buf)? {
            let status = response.code.unwrap_or(0);
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < head_len + length {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let end = buf.len().min(head_len + length);
            return Ok((status, String::from_utf8_lossy(&buf[head_len..end]).into_owned()));
        }
        if buf.len() > 1 << 20 {
            bail!("firecracker's API response head is too large");
        }
    }
}
