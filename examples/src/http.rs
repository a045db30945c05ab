//! A deliberately tiny HTTP/1.1 server side and client, enough for the examples.
//!
//! It reads one request per connection (`Content-Length` bodies only, no chunked
//! encoding, no keep-alive), bounds header and body sizes so that a hostile peer
//! cannot make it allocate without limit, and answers with `Connection: close`.
//! The client speaks plain `http://` only. Not for production traffic.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest request line or header line accepted.
const MAX_LINE: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 128;
/// Largest body accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A parsed request (or, for the client, response head and body).
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Request method, e.g. `POST` (empty for a response).
    pub method: String,
    /// Request target, e.g. `/test` (empty for a response).
    pub path: String,
    /// Response status code (0 for a request).
    pub status: u16,
    /// Header fields in the order received, names as sent. Repeated fields stay
    /// separate entries, which is what the trace-context extractor wants.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one CRLF- (or LF-) terminated line of at most [`MAX_LINE`] bytes.
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid("line too long or truncated"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| invalid("header is not UTF-8"))
}

/// Reads header lines up to the blank line, then a `Content-Length` body.
fn read_headers_and_body(r: &mut impl BufRead, msg: &mut Message) -> io::Result<()> {
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        if msg.headers.len() == MAX_HEADERS {
            return Err(invalid("too many header fields"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("header without ':'"))?;
        msg.headers.push((
            name.trim().to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    let len = match header(&msg.headers, "content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| invalid("bad Content-Length"))?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err(invalid("body too large"));
    }
    msg.body = vec![0; len];
    r.read_exact(&mut msg.body)
}

/// The first value of header `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one request from `stream`.
pub fn read_request(stream: &TcpStream) -> io::Result<Message> {
    let mut r = BufReader::new(stream);
    let line = read_line(&mut r)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Err(invalid("bad request line"));
    }
    let mut msg = Message {
        method: method.to_string(),
        path: path.to_string(),
        ..Message::default()
    };
    read_headers_and_body(&mut r, &mut msg)?;
    Ok(msg)
}

/// Writes a complete response and flushes.
pub fn write_response(mut stream: &TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Splits `http://host[:port][/path]` into (`host:port`, `/path`).
fn split_url(url: &str) -> io::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(invalid("bad URL authority"));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// POSTs `body` to `url` with extra `headers`; returns the response.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<Message> {
    let (authority, path) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid("host did not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(invalid("header would break the request"));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut r = BufReader::new(&stream);
    let status_line = read_line(&mut r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| invalid("bad status line"))?;
    let mut msg = Message {
        status,
        ..Message::default()
    };
    read_headers_and_body(&mut r, &mut msg)?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_url_adds_default_port_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:7777/callback").unwrap(),
            ("127.0.0.1:7777".into(), "/callback".into())
        );
        assert_eq!(
            split_url("http://example").unwrap(),
            ("example:80".into(), "/".into())
        );
        assert_eq!(
            split_url("http://[::1]/x").unwrap(),
            ("[::1]:80".into(), "/x".into())
        );
        assert!(split_url("https://example/").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
