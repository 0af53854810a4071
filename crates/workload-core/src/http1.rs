//! HTTP/1.1 framing, for adapters that own their sockets: [`next`] takes a
//! connection's buffered bytes and answers the first whole request in them
//! (no I/O: the unikernel's TCP stack calls it too), and with `std`
//! [`serve_connection`] runs it over any byte stream.
//!
//! Each response goes out in a single write: a head and a body in two writes
//! can stall 40 ms on delayed ACKs with keep-alive clients.

use crate::{handle, KvStore, Request, Response, Workload};
use alloc::format;
use alloc::vec::Vec;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// What a connection's buffered bytes call for.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No whole request yet: read more.
    Incomplete,
    /// Write `bytes` (one response); the request used the first `consumed`
    /// bytes of the buffer; close the connection after writing when `close`.
    Respond { bytes: Vec<u8>, consumed: usize, close: bool },
}

/// Answers the first whole request in `buf`.
pub fn next(buf: &[u8], workload: Workload, store: &dyn KvStore) -> Step {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Step::Incomplete,
        _ => {
            return Step::Respond { bytes: encode(&error(400, "bad request"), true), consumed: buf.len(), close: true }
        }
    };
    let close = req.version == Some(0) || has_token(req.headers, "connection", "close");
    let Some(content_length) = content_length(req.headers).filter(|&n| n <= MAX_BODY) else {
        let bytes = encode(&error(413, "body too large or length invalid"), true);
        return Step::Respond { bytes, consumed: buf.len(), close: true };
    };
    if buf.len() < head_len + content_length {
        return Step::Incomplete;
    }
    let request = Request {
        method: req.method.unwrap_or(""),
        target: req.path.unwrap_or(""),
        body: &buf[head_len..head_len + content_length],
    };
    let response = handle(workload, &request, store);
    Step::Respond { bytes: encode(&response, close), consumed: head_len + content_length, close }
}

/// Serves requests on one connection until the peer closes it or asks to.
#[cfg(feature = "std")]
pub fn serve_connection<S: std::io::Read + std::io::Write>(
    stream: &mut S,
    workload: Workload,
    store: &dyn KvStore,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match next(&buf, workload, store) {
            Step::Incomplete => {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Step::Respond { bytes, consumed, close } => {
                stream.write_all(&bytes)?;
                stream.flush()?;
                if close {
                    return Ok(());
                }
                buf.drain(..consumed);
            }
        }
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    match headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")) {
        None => Some(0),
        Some(h) => core::str::from_utf8(h.value).ok()?.trim().parse().ok(),
    }
}

fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case(name)
            && core::str::from_utf8(h.value)
                .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
    })
}

fn error(status: u16, message: &str) -> Response {
    Response::error(status, message)
}

/// Head and body, to go out in one write.
pub fn encode(response: &Response, close: bool) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n{}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if close { "connection: close\r\n" } else { "" },
    )
    .into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

/// Writes head and body with one `write_all`.
#[cfg(feature = "std")]
pub fn write_response<W: std::io::Write>(out: &mut W, response: &Response, close: bool) -> std::io::Result<()> {
    out.write_all(&encode(response, close))?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Error",
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use std::io::{self, Read, Write};

    /// A stream that reads from a fixed input and records what is written.
    struct Script {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
        writes: usize,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // One byte at a time: framing must not depend on read sizes.
            let n = buf.len().min(1);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn serves_pipelined_keepalive_requests_one_write_each() {
        let input =
            b"GET / HTTP/1.1\r\nhost: x\r\n\r\nPOST /echo HTTP/1.1\r\ncontent-length: 9\r\n\r\n{\"a\":\"b\"}".to_vec();
        let mut s = Script { input: io::Cursor::new(input), output: Vec::new(), writes: 0 };
        serve_connection(&mut s, Workload::Hello, &MemoryStore::default()).unwrap();
        let out = String::from_utf8(s.output).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Hello from edgebench"));
        assert!(out.contains("HTTP/1.1 404"), "hello has no /echo route: {out}");
        assert_eq!(s.writes, 2);
    }
}
