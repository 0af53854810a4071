//! A minimal blocking HTTP/1.1 client for measurement: requests are encoded
//! once, responses parsed with `httparse`, bodies read by `content-length`,
//! chunked encoding or end of stream.

use crate::workload::HttpRequest;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The bytes of `request`, with the `Host` header runtimes route on.
pub fn encode(request: &HttpRequest, host: &str, close: bool) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", request.method, request.target);
    if !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT") {
        head.push_str(&format!("content-length: {}\r\n", request.body.len()));
    }
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    bytes
}

pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends encoded request bytes and reads one whole response.
pub fn exchange(stream: &mut TcpStream, request: &[u8]) -> io::Result<Response> {
    stream.write_all(request)?;
    read_response(stream)
}

/// One request on a new connection (closed afterwards).
pub fn one_shot(addr: SocketAddr, request: &[u8], timeout: Duration) -> io::Result<Response> {
    let mut stream = connect(addr, timeout)?;
    exchange(&mut stream, request)
}

/// One complete response found at the start of a buffer.
#[derive(Clone, Debug)]
pub struct Frame {
    pub status: u16,
    /// Length of the status line and headers.
    pub head_len: usize,
    /// The body, de-chunked where it was chunked.
    pub body: Vec<u8>,
    /// Bytes of the buffer this response took (a next response may follow).
    pub consumed: usize,
}

/// The one HTTP/1.1 response framing of the probe, the latency client and
/// the load generator: `None` until `buf` holds a whole response. The body is
/// delimited by `transfer-encoding: chunked` (trailers skipped), else by
/// `content-length`, else (no length: 1xx, 204 and 304 have none) by the
/// connection's close, which the caller reports with `eof`.
pub fn frame(buf: &[u8], eof: bool) -> io::Result<Option<Frame>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(buf).map_err(invalid)? else {
        return if eof { Err(cut_short("the response head")) } else { Ok(None) };
    };
    let status = parsed.code.unwrap_or(0);
    let header = |name: &str| parsed.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let rest = &buf[head_len..];
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked")) {
        return match dechunk(rest)? {
            Some((body, used)) => Ok(Some(Frame { status, head_len, body, consumed: head_len + used })),
            None if eof => Err(cut_short("a chunked body")),
            None => Ok(None),
        };
    }
    if let Some(len) = header("content-length") {
        let len: usize = std::str::from_utf8(len).map_err(invalid)?.trim().parse().map_err(invalid)?;
        return if rest.len() >= len {
            Ok(Some(Frame { status, head_len, body: rest[..len].to_vec(), consumed: head_len + len }))
        } else if eof {
            Err(cut_short("the body"))
        } else {
            Ok(None)
        };
    }
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some(Frame { status, head_len, body: Vec::new(), consumed: head_len }));
    }
    // No length: the body ends with the connection.
    Ok(eof.then(|| Frame { status, head_len, body: rest.to_vec(), consumed: buf.len() }))
}

/// A chunked body at the start of `buf`: the data and the bytes it took, or
/// `None` while incomplete.
fn dechunk(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(&buf[pos..]) else { return Ok(None) };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).map_err(invalid)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(invalid)?;
        pos += eol + 2;
        if size == 0 {
            // Trailer lines up to an empty line.
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else { return Ok(None) };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(invalid("a chunk is not followed by CRLF"));
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn cut_short(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed in {what}"))
}

pub fn read_response<R: Read>(stream: &mut R) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(f) = frame(&buf, false)? {
            return Ok(response_of(&buf, f));
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A signal (Ctrl-C, SIGTERM) landing on this thread while it waits
            // on a socket with a timeout: the read is not restarted by the
            // kernel (SA_RESTART does not apply there), so it is here. The
            // interrupt itself is handled by the campaign's flag.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if buf.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
            }
            let f = frame(&buf, true)?.ok_or_else(|| cut_short("the response"))?;
            return Ok(response_of(&buf, f));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The headers of a framed response, parsed again from its head.
fn response_of(buf: &[u8], f: Frame) -> Response {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let _ = parsed.parse(&buf[..f.head_len]);
    Response {
        status: f.status,
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: f.body,
    }
}

fn invalid<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader interrupted by a signal between two parts of a response.
    struct Interrupting<'a> {
        parts: Vec<&'a [u8]>,
        interrupt_next: bool,
    }

    impl Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt_next = !self.interrupt_next;
            if !self.interrupt_next {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let Some(part) = self.parts.first().copied() else { return Ok(0) };
            self.parts.remove(0);
            buf[..part.len()].copy_from_slice(part);
            Ok(part.len())
        }
    }

    #[test]
    fn a_signal_during_a_read_is_not_a_failed_request() {
        let mut r = Interrupting {
            parts: vec![b"HTTP/1.1 200 OK\r\ncontent-", b"length: 2\r\n\r\n", b"ok"],
            interrupt_next: false,
        };
        let response = read_response(&mut r).unwrap();
        assert_eq!((response.status, response.body.as_slice()), (200, &b"ok"[..]));
    }

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let mut plain: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloEXTRA";
        let r = read_response(&mut plain).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));

        let mut chunked: &[u8] =
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = read_response(&mut chunked).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
    }

    #[test]
    fn frames_every_length_rule_and_waits_for_whole_responses() {
        let cases: [(&[u8], u16, &[u8]); 5] = [
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", 200, b"hi"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n", 200, b"hi!"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nx-t: 1\r\n\r\n", 200, b"x"),
            (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", 304, b""),
        ];
        for (bytes, status, body) in cases {
            let f = frame(bytes, false).unwrap().expect("complete");
            assert_eq!((f.status, f.body.as_slice(), f.consumed), (status, body, bytes.len()));
            // Every strict prefix is incomplete, never a wrong answer.
            for cut in 0..bytes.len() {
                assert!(
                    frame(&bytes[..cut], false).unwrap().is_none(),
                    "{cut} of {:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        // Two responses back to back: the first takes only its own bytes.
        let two = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb";
        let f = frame(two, false).unwrap().unwrap();
        assert_eq!((f.body.as_slice(), &two[f.consumed..f.consumed + 8]), (&b"a"[..], &b"HTTP/1.1"[..]));
        // No length: the body ends with the connection, and only then.
        let close = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert!(frame(close, false).unwrap().is_none());
        assert_eq!(frame(close, true).unwrap().unwrap().body, b"until close");
        // A body cut short by the close is an error, not a short answer.
        assert!(frame(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab", true).is_err());
        assert!(frame(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab", true).is_err());
    }

    #[test]
    fn encodes_bodies_with_their_length() {
        let req = HttpRequest::new("PUT", "/kv/a", b"xy");
        let bytes = String::from_utf8(encode(&req, "h:1", true)).unwrap();
        assert_eq!(bytes, "PUT /kv/a HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nxy");
    }
}
