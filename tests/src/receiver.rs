//! An in-process OTLP/HTTP receiver on 127.0.0.1 for exporter tests.
//!
//! A std `TcpListener`, a minimal HTTP/1.1 parser (request line, headers,
//! `Content-Length` bodies, keep-alive), and scripted replies: each request takes
//! the next [`Reply`] from the script, and once the script is empty every request
//! gets `200` with an empty `ExportTraceServiceResponse`. Bodies are gunzipped when
//! sent with `Content-Encoding: gzip` and decoded with the independent
//! `opentelemetry-proto` types (its prost decoding for protobuf, its serde one for
//! `Content-Type: application/json`), so a test checks the exporter against
//! someone else's reading of the protocol. Everything stops when the receiver is
//! dropped.

use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the receiver does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this status, extra headers and body.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
    },
    /// Read the request and never answer (until the receiver is dropped).
    Hang,
    /// Read the request and close the connection without a response.
    Close,
}

impl Reply {
    /// A status with an empty body.
    pub fn status(status: u16) -> Self {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    /// A status with a body.
    pub fn with_body(status: u16, body: Vec<u8>) -> Self {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body,
        }
    }
    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
    /// `200` with a `partial_success` of `rejected` spans and `message`.
    pub fn partial_success(rejected: i64, message: &str) -> Self {
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message.to_string(),
            }),
        }
        .encode_to_vec();
        Reply::with_body(200, body)
    }
    /// `200` with a JSON `partialSuccess` of `rejected` spans and `message`, as a
    /// server answers an `http/json` request.
    pub fn json_partial_success(rejected: i64, message: &str) -> Self {
        let body = serde_json::json!({
            "partialSuccess": {"rejectedSpans": rejected.to_string(), "errorMessage": message}
        });
        Reply::with_body(200, body.to_string().into_bytes())
            .header("content-type", "application/json")
    }
    /// `status` with a JSON `google.rpc.Status` body carrying `message`.
    pub fn json_rpc_status(status: u16, code: i32, message: &str) -> Self {
        let body = serde_json::json!({"code": code, "message": message});
        Reply::with_body(status, body.to_string().into_bytes())
            .header("content-type", "application/json")
    }
    /// `status` with a `google.rpc.Status` body carrying `message`.
    pub fn rpc_status(status: u16, code: i32, message: &str) -> Self {
        Reply::with_body(status, rpc_status_body(code, message))
    }
}

/// Encodes a `google.rpc.Status { code, message }` by hand (fields 1 and 2).
pub fn rpc_status_body(code: i32, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if code != 0 {
        out.push(0x08);
        prost::encoding::encode_varint(code as i64 as u64, &mut out);
    }
    out.push(0x12);
    prost::encoding::encode_varint(message.len() as u64, &mut out);
    out.extend_from_slice(message.as_bytes());
    out
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// When its body was fully read.
    pub at: Instant,
    /// `POST`, ...
    pub method: String,
    /// The request target, e.g. `/v1/traces`.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as sent (possibly gzipped).
    pub raw_body: Vec<u8>,
    /// The body after gunzip (when `Content-Encoding: gzip`).
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Decodes the body with the opentelemetry-proto types: OTLP/JSON when the
    /// request says `Content-Type: application/json`, else protobuf.
    pub fn decode(&self) -> ExportTraceServiceRequest {
        if self.is_json() {
            serde_json::from_slice(&self.body)
                .expect("body is an OTLP/JSON ExportTraceServiceRequest")
        } else {
            ExportTraceServiceRequest::decode(&self.body[..])
                .expect("body is an ExportTraceServiceRequest")
        }
    }

    /// Whether the request's `Content-Type` is `application/json`.
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<ReceivedRequest>>,
    arrived: Condvar,
    stop: AtomicBool,
    connections: AtomicUsize,
}

/// The receiver; stops its threads when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Receiver {
    /// Starts a receiver on an ephemeral port of 127.0.0.1 with an empty script.
    pub fn start() -> Receiver {
        Self::with_script(Vec::new())
    }

    /// Starts a receiver that answers requests with `script` in order, then 200.
    pub fn with_script(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        s.connections.fetch_add(1, Ordering::Relaxed);
                        let s = s.clone();
                        conns.push(std::thread::spawn(move || serve(stream, &s)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Receiver {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends replies to the script.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let end = Instant::now() + timeout;
        let mut reqs = self.shared.requests.lock().unwrap();
        while reqs.len() < n {
            let now = Instant::now();
            if now >= end {
                break;
            }
            reqs = self.shared.arrived.wait_timeout(reqs, end - now).unwrap().0;
        }
        reqs.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: requests in a loop until close, error or stop.
fn serve(stream: TcpStream, s: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader, s) else {
            return;
        };
        let reply = s.script.lock().unwrap().pop_front();
        {
            let mut reqs = s.requests.lock().unwrap();
            reqs.push(req);
            s.arrived.notify_all();
        }
        match reply {
            None => {
                let body = ExportTraceServiceResponse::default().encode_to_vec();
                if write_response(&mut writer, 200, &[], &body).is_err() {
                    return;
                }
            }
            Some(Reply::Respond {
                status,
                headers,
                body,
            }) => {
                if write_response(&mut writer, status, &headers, &body).is_err() {
                    return;
                }
            }
            Some(Reply::Hang) => {
                while !s.stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return;
            }
            Some(Reply::Close) => return,
        }
    }
}

/// Reads a line, retrying on read time-outs until stop; `None` on EOF/error/stop.
fn read_line(r: &mut BufReader<TcpStream>, s: &Shared) -> Option<String> {
    let mut line = Vec::new();
    loop {
        if s.stop.load(Ordering::Acquire) {
            return None;
        }
        match r.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                return Some(String::from_utf8_lossy(&line).trim_end().to_string())
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return None,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn read_request(r: &mut BufReader<TcpStream>, s: &Shared) -> Option<ReceivedRequest> {
    let request_line = read_line(r, s)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, s)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut raw_body = vec![0; len];
    let mut filled = 0;
    while filled < len {
        if s.stop.load(Ordering::Acquire) {
            return None;
        }
        match r.read(&mut raw_body[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(e) if is_timeout(&e) => {}
            Err(_) => return None,
        }
    }
    let gzipped = headers
        .iter()
        .any(|(k, v)| k == "content-encoding" && v.eq_ignore_ascii_case("gzip"));
    let body = if gzipped {
        let mut out = Vec::new();
        GzDecoder::new(&raw_body[..]).read_to_end(&mut out).ok()?;
        out
    } else {
        raw_body.clone()
    };
    Some(ReceivedRequest {
        at: Instant::now(),
        method,
        path,
        headers,
        raw_body,
        body,
    })
}

fn write_response(
    w: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    // Protobuf unless the reply says otherwise.
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("content-type: application/x-protobuf\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}
