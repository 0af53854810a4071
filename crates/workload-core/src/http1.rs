//! HTTP/1.1 over a byte stream, for adapters that own their sockets.
//!
//! Each response goes out in a single write: a head and a body in two writes
//! can stall 40 ms on delayed ACKs with keep-alive clients.

use crate::{handle, KvStore, Request, Response, Workload};
use std::io::{self, Read, Write};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Serves requests on one connection until the peer closes it or asks to.
pub fn serve_connection<S: Read + Write>(stream: &mut S, workload: Workload, store: &dyn KvStore) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until a whole head is buffered.
        let (head_len, method, target, content_length, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let close = req.version == Some(0) || has_token(req.headers, "connection", "close");
                    let content_length = content_length(req.headers);
                    break (
                        len,
                        req.method.unwrap_or("").to_string(),
                        req.path.unwrap_or("").to_string(),
                        content_length,
                        close,
                    );
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => {
                    let _ = write_response(stream, &error(400, "bad request"), true);
                    return Ok(());
                }
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Some(content_length) = content_length.filter(|&n| n <= MAX_BODY) else {
            write_response(stream, &error(413, "body too large or length invalid"), true)?;
            return Ok(());
        };
        while buf.len() < head_len + content_length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = &buf[head_len..head_len + content_length];
        let request = Request { method: &method, target: &target, body };
        let response = handle(workload, &request, store);
        write_response(stream, &response, close)?;
        if close {
            return Ok(());
        }
        buf.drain(..head_len + content_length);
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    match headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")) {
        None => Some(0),
        Some(h) => std::str::from_utf8(h.value).ok()?.trim().parse().ok(),
    }
}

fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case(name)
            && std::str::from_utf8(h.value)
                .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
    })
}

fn error(status: u16, message: &str) -> Response {
    Response::error(status, message)
}

/// Writes head and body with one `write_all`.
pub fn write_response<W: Write>(out: &mut W, response: &Response, close: bool) -> io::Result<()> {
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
    out.write_all(&bytes)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

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
