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
    if !request.body.is_empty() || matches!(request.method, "POST" | "PUT") {
        head.push_str(&format!("content-length: {}\r\n", request.body.len()));
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

pub fn read_response<R: Read>(stream: &mut R) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = parsed.parse(&buf).map_err(invalid)? {
            let mut response = Response {
                status: parsed.code.unwrap_or(0),
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect(),
                body: Vec::new(),
            };
            let rest = buf.split_off(head_len);
            response.body = read_body(stream, &response, rest)?;
            return Ok(response);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn read_body<R: Read>(stream: &mut R, response: &Response, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let chunked = response.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(stream, buf);
    }
    match response.header("content-length") {
        Some(len) => {
            let len: usize = len.trim().parse().map_err(invalid)?;
            fill(stream, &mut buf, len)?;
            buf.truncate(len);
            Ok(buf)
        }
        None => {
            stream.read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

fn fill<R: Read>(stream: &mut R, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    let mut chunk = [0u8; 8192];
    while buf.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

fn read_chunked<R: Read>(stream: &mut R, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        // Wait for a whole size line.
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            let need = buf.len() + 1;
            fill(stream, &mut buf, need)?;
        };
        let line = std::str::from_utf8(&buf[pos..line_end]).map_err(invalid)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(invalid)?;
        let data_start = line_end + 2;
        fill(stream, &mut buf, data_start + size + 2)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&buf[data_start..data_start + size]);
        pos = data_start + size + 2;
    }
}

fn invalid<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn encodes_bodies_with_their_length() {
        let req = HttpRequest { method: "PUT", target: "/kv/a".into(), body: b"xy".to_vec() };
        let bytes = String::from_utf8(encode(&req, "h:1", true)).unwrap();
        assert_eq!(bytes, "PUT /kv/a HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nxy");
    }
}
