//! The service side of the W3C trace-context test suite.
//!
//! The harness POSTs `/test` with `traceparent`/`tracestate` headers and a JSON
//! array of `{"url": ..., "arguments": [...]}`. For each element the service POSTs
//! `arguments` to `url`, propagating the trace from a client span (kind Client)
//! whose parent is the server span (kind Server), whose parent in turn is what
//! was extracted from the incoming request. The harness then checks the headers
//! it receives. Malformed input gets a 400, never a panic.

use crate::http::{self, Message};
use runtrace::{Extractor, SpanKind, Status, TraceContextPropagator, Tracer, TracerProvider};
use serde_json::Value;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long one outgoing call or one incoming read may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(5);

/// One call the harness asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Where to POST.
    pub url: String,
    /// The JSON body to POST (serialized `arguments`).
    pub arguments: Value,
}

/// Parses a `/test` body: a JSON array of `{"url": string, "arguments": any}`
/// (a missing `arguments` is sent as `[]`).
pub fn parse_test_body(body: &[u8]) -> Result<Vec<Call>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("body must be a JSON array".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut obj) = item else {
                return Err(format!("element {i} is not an object"));
            };
            let Some(Value::String(url)) = obj.remove("url") else {
                return Err(format!("element {i} has no string \"url\""));
            };
            let arguments = obj.remove("arguments").unwrap_or(Value::Array(Vec::new()));
            Ok(Call { url, arguments })
        })
        .collect()
}

/// Serves the test-suite protocol on `listener` until `stop` becomes true.
///
/// Each connection is handled on its own thread, so the harness may send
/// requests concurrently. Returns when `stop` is set (checked every few
/// milliseconds) or when accepting fails for a reason other than "try again".
pub fn serve(
    listener: TcpListener,
    provider: TracerProvider,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let tracer = provider.tracer("w3c_test_service");
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let tracer = tracer.clone();
                std::thread::spawn(move || handle_connection(stream, &tracer));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn handle_connection(stream: TcpStream, tracer: &Tracer) {
    // The listener is non-blocking; accepted sockets inherit that on some platforms.
    let setup = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_read_timeout(Some(IO_TIMEOUT)))
        .and_then(|_| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if setup.is_err() {
        return;
    }
    let (status, body) = match http::read_request(&stream) {
        Ok(req) => respond(&req, tracer),
        Err(e) => (400, format!("bad request: {e}")),
    };
    // The peer may already be gone; there is no one left to tell.
    let _ = http::write_response(&stream, status, &body);
}

fn respond(req: &Message, tracer: &Tracer) -> (u16, String) {
    if req.path != "/test" {
        return (404, "only /test is served".into());
    }
    if req.method != "POST" {
        return (405, "use POST".into());
    }
    let calls = match parse_test_body(&req.body) {
        Ok(calls) => calls,
        Err(e) => return (400, e),
    };
    run_test(&req.headers, &calls, tracer);
    (200, "ok".into())
}

/// Runs the calls under a server span continuing the incoming trace.
pub fn run_test(incoming_headers: &impl Extractor, calls: &[Call], tracer: &Tracer) {
    let propagator = TraceContextPropagator::new();
    let parent = propagator.extract(incoming_headers);
    let mut server = tracer
        .span("POST /test")
        .kind(SpanKind::Server)
        .parent(&parent)
        .start();
    for call in calls {
        let mut client = tracer
            .span("POST")
            .kind(SpanKind::Client)
            .parent(&server.context())
            .attribute("url.full", call.url.clone())
            .start();
        let mut headers: Vec<(String, String)> = Vec::new();
        propagator.inject(&client.context(), &mut headers);
        let body = call.arguments.to_string();
        match http::post(
            &call.url,
            &headers,
            "application/json",
            body.as_bytes(),
            IO_TIMEOUT,
        ) {
            Ok(resp) => {
                client.set_attribute("http.response.status_code", i64::from(resp.status));
                if resp.status >= 400 {
                    client.set_status(Status::error(format!("HTTP {}", resp.status)));
                }
            }
            Err(e) => client.set_status(Status::error(e.to_string())),
        }
        client.end();
    }
    server.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harness_bodies() {
        let calls = parse_test_body(
            br#"[{"url": "http://127.0.0.1:7777/callback", "arguments": [{"url": "x", "arguments": []}]}]"#,
        )
        .unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].url, "http://127.0.0.1:7777/callback");
        assert_eq!(
            calls[0].arguments.to_string(),
            r#"[{"arguments":[],"url":"x"}]"#
        );
        assert_eq!(parse_test_body(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_bodies() {
        for bad in [
            &b""[..],
            b"[",
            b"{}",
            b"[1]",
            b"[{\"arguments\": []}]",
            b"[{\"url\": 5}]",
            b"\xff\xfe",
            b"[{\"url\": \"a\"},]",
        ] {
            assert!(
                parse_test_body(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
