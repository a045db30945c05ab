//! A small OTLP/HTTP receiver on 127.0.0.1, with fault injection.
//!
//! It decodes `ExportTraceServiceRequest`s with opentelemetry-proto's types, counts
//! spans (deduplicated by span id), and can misbehave on purpose: be slow, hang,
//! fail every other request with 503 + `Retry-After`, reject everything with 400,
//! or accept with a partial success. The quickstart uses it as an embedded
//! collector; the soak and runner tests use its faults.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 200 with an empty response.
    Healthy,
    /// 200, after holding each request this long.
    Slow(Duration),
    /// Reads the request and never answers (until the receiver stops).
    Hang,
    /// Every other request: 503 with `Retry-After: 1`.
    Flaky,
    /// 400 with a `google.rpc.Status` body on every request.
    Reject,
    /// 200 with a partial success rejecting one span in ten (at least one).
    Partial,
}

/// What the receiver has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// HTTP requests read.
    pub requests: u64,
    /// Distinct span ids accepted (answered 200).
    pub unique_spans: u64,
    /// Spans accepted again with a span id already seen.
    pub duplicate_spans: u64,
    /// Spans the receiver rejected in partial successes.
    pub rejected_spans: u64,
    /// Requests that did not decode.
    pub bad_requests: u64,
}

#[derive(Default)]
struct State {
    seen: HashSet<[u8; 24]>,
    stats: ReceiverStats,
    kept: Vec<Span>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    request_counter: Arc<AtomicU64>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Receiver {
    /// Starts on an ephemeral port of 127.0.0.1. With `keep_spans`, accepted
    /// spans are kept for [`Receiver::spans`].
    pub fn start(fault: Fault, keep_spans: bool) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let request_counter = Arc::new(AtomicU64::new(0));
        let ctx = Conn {
            fault,
            keep_spans,
            stop: stop.clone(),
            state: state.clone(),
            request_counter: request_counter.clone(),
        };
        std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || accept_loop(listener, ctx))?;
        Ok(Receiver {
            addr,
            stop,
            state,
            request_counter,
        })
    }

    /// The URL to export to (`http://127.0.0.1:PORT/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Counters so far.
    pub fn stats(&self) -> ReceiverStats {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }

    /// The spans accepted so far (only with `keep_spans`).
    pub fn spans(&self) -> Vec<Span> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kept
            .clone()
    }

    /// Whether `span_id` was received.
    pub fn has_span(&self, trace_id: &[u8], span_id: &[u8]) -> bool {
        key(trace_id, span_id).is_some_and(|k| {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .seen
                .contains(&k)
        })
    }

    /// Stops accepting and releases hanging requests.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// HTTP requests read so far.
    pub fn requests(&self) -> u64 {
        self.request_counter.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key(trace_id: &[u8], span_id: &[u8]) -> Option<[u8; 24]> {
    let mut k = [0u8; 24];
    k.get_mut(..16)?.copy_from_slice(trace_id.get(..16)?);
    k.get_mut(16..)?.copy_from_slice(span_id.get(..8)?);
    Some(k)
}

#[derive(Clone)]
struct Conn {
    fault: Fault,
    keep_spans: bool,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    request_counter: Arc<AtomicU64>,
}

fn accept_loop(listener: TcpListener, ctx: Conn) {
    while !ctx.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                let _ = std::thread::Builder::new()
                    .name("otlp-receiver-conn".into())
                    .spawn(move || serve(stream, ctx));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One request: the body, and whether it was gzipped.
struct Request {
    body: Vec<u8>,
    gzip: bool,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut content_length = 0usize;
    let mut gzip = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            if name == "content-length" {
                content_length = value.parse().ok()?;
            } else if name == "content-encoding" {
                gzip = value.eq_ignore_ascii_case("gzip");
            }
        }
    }
    if content_length > 64 << 20 {
        return None;
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { body, gzip })
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> std::io::Result<()> {
    // One write: a head and a body in two small segments would meet Nagle's
    // algorithm and the client's delayed ACK (a 40 ms stall per response).
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

fn serve(stream: TcpStream, ctx: Conn) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !ctx.stop.load(Ordering::SeqCst) {
        // Wait for the next request without blocking shutdown.
        match reader.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
        let n = ctx.request_counter.fetch_add(1, Ordering::Relaxed) + 1;
        if handle(&mut writer, &ctx, req, n).is_err() {
            return;
        }
    }
}

fn handle(w: &mut TcpStream, ctx: &Conn, req: Request, n: u64) -> std::io::Result<()> {
    match ctx.fault {
        Fault::Hang => {
            while !ctx.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        Fault::Slow(d) => std::thread::sleep(d),
        Fault::Flaky if n % 2 == 1 => {
            return respond(w, "503 Service Unavailable", "Retry-After: 1\r\n", b"");
        }
        Fault::Reject => {
            // google.rpc.Status { code: 3, message: "rejected by test receiver" }
            let msg = b"rejected by test receiver";
            let mut body = vec![0x08, 0x03, 0x12, msg.len() as u8];
            body.extend_from_slice(msg);
            ctx.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stats
                .requests += 1;
            return respond(w, "400 Bad Request", "", &body);
        }
        _ => {}
    }
    let body = if req.gzip {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(&req.body[..]).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) => return bad_request(w, ctx),
        }
    } else {
        req.body
    };
    let Ok(decoded) = ExportTraceServiceRequest::decode(&body[..]) else {
        return bad_request(w, ctx);
    };
    let spans: Vec<Span> = decoded
        .resource_spans
        .into_iter()
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    let rejected = if ctx.fault == Fault::Partial {
        (spans.len() as u64 / 10).max(1).min(spans.len() as u64)
    } else {
        0
    };
    {
        let mut st = ctx.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stats.requests += 1;
        st.stats.rejected_spans += rejected;
        // The first `rejected` spans are the ones refused.
        for span in spans.into_iter().skip(rejected as usize) {
            match key(&span.trace_id, &span.span_id) {
                Some(k) if st.seen.insert(k) => st.stats.unique_spans += 1,
                _ => st.stats.duplicate_spans += 1,
            }
            if ctx.keep_spans {
                st.kept.push(span);
            }
        }
    }
    let response = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: "test receiver rejects one span in ten".to_string(),
        }),
    };
    respond(w, "200 OK", "", &response.encode_to_vec())
}

fn bad_request(w: &mut TcpStream, ctx: &Conn) -> std::io::Result<()> {
    ctx.state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stats
        .bad_requests += 1;
    respond(w, "400 Bad Request", "", b"")
}
