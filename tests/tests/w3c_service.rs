//! Plays the W3C trace-context harness against the in-process test service:
//! sends `/test` requests, receives the service's calls on its own listener and
//! checks the propagated `traceparent` / `tracestate`.

use runtrace::sampling::{AlwaysOn, ParentBased};
use runtrace::{InMemoryExporter, SpanKind, TracerProvider};
use runtrace_examples::http::{self, header, Message};
use runtrace_examples::w3c_service;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The service on an ephemeral port; stopped on drop.
struct Service {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    exporter: InMemoryExporter,
}

impl Service {
    fn start() -> Service {
        let exporter = InMemoryExporter::default();
        let provider = TracerProvider::builder()
            .with_sampler(ParentBased::new(AlwaysOn))
            .with_simple_exporter(exporter.clone())
            .build();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            w3c_service::serve(listener, provider, flag).unwrap();
        });
        Service {
            addr,
            stop,
            thread: Some(thread),
            exporter,
        }
    }

    fn post_test(&self, headers: &[(&str, &str)], body: &str) -> Message {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let url = format!("http://{}/test", self.addr);
        http::post(&url, &headers, "application/json", body.as_bytes(), TIMEOUT).unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The harness's callback endpoint: records each request it receives.
struct Callback {
    url: String,
    received: mpsc::Receiver<Message>,
}

impl Callback {
    fn start(expected: usize) -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..expected {
                let (stream, _) = listener.accept().unwrap();
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                let req = http::read_request(&stream).unwrap();
                http::write_response(&stream, 200, "").unwrap();
                tx.send(req).unwrap();
            }
        });
        Callback { url, received }
    }

    fn next(&self) -> Message {
        self.received
            .recv_timeout(TIMEOUT)
            .expect("the service called back")
    }
}

/// (version, trace id, parent id, flags) of a traceparent we emitted.
fn fields(traceparent: &str) -> (String, String, String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(traceparent.len(), 55);
    let owned: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    (
        owned[0].clone(),
        owned[1].clone(),
        owned[2].clone(),
        owned[3].clone(),
    )
}

#[test]
fn service_continues_the_incoming_trace_with_a_new_parent_id() {
    let service = Service::start();
    let callback = Callback::start(1);
    let body = format!(
        r#"[{{"url": "{}", "arguments": [{{"x": 1}}]}}]"#,
        callback.url
    );
    let resp = service.post_test(
        &[
            ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
            ("tracestate", "foo=1,bar=2"),
            ("TraceState", "baz=3"),
        ],
        &body,
    );
    assert_eq!(resp.status, 200);

    let got = callback.next();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/callback");
    assert_eq!(got.body, br#"[{"x":1}]"#);
    let traceparent = header(&got.headers, "traceparent").expect("traceparent sent");
    let (version, trace_id, parent_id, flags) = fields(traceparent);
    assert_eq!(version, "00");
    assert_eq!(trace_id, TRACE, "same trace");
    assert_ne!(parent_id, SPAN, "new parent id");
    assert_ne!(parent_id, "0".repeat(16));
    assert_eq!(
        u8::from_str_radix(&flags, 16).unwrap() & 0x01,
        0x01,
        "sampled"
    );
    let tracestate = header(&got.headers, "tracestate").expect("tracestate forwarded");
    assert_eq!(
        tracestate, "foo=1,bar=2,baz=3",
        "vendor entries kept in order"
    );

    // The parent id on the wire is the client span, child of the server span,
    // whose parent is the remote caller.
    let spans = service.exporter.finished_spans();
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    let client = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    assert!(server.parent_is_remote);
    assert_eq!(server.parent_span_id.to_string(), SPAN);
    assert!(!client.parent_is_remote);
    assert_eq!(client.parent_span_id, server.span_context.span_id());
    assert_eq!(client.span_context.span_id().to_string(), parent_id);
}

#[test]
fn not_sampled_and_future_version_are_forwarded_as_version_00() {
    let service = Service::start();
    let callback = Callback::start(2);
    let body = format!(
        r#"[{{"url": "{0}", "arguments": []}}, {{"url": "{0}", "arguments": []}}]"#,
        callback.url
    );
    let resp = service.post_test(
        &[("traceparent", &format!("cc-{TRACE}-{SPAN}-02-future"))],
        &body,
    );
    assert_eq!(resp.status, 200);
    let (a, b) = (callback.next(), callback.next());
    for got in [&a, &b] {
        let (version, trace_id, parent_id, flags) =
            fields(header(&got.headers, "traceparent").unwrap());
        assert_eq!((version.as_str(), trace_id.as_str()), ("00", TRACE));
        assert_ne!(parent_id, SPAN);
        assert_eq!(flags, "02", "not sampled, random flag copied");
        assert!(header(&got.headers, "tracestate").is_none());
    }
    let pa = fields(header(&a.headers, "traceparent").unwrap()).2;
    let pb = fields(header(&b.headers, "traceparent").unwrap()).2;
    assert_ne!(pa, pb, "one client span per call");
}

#[test]
fn malformed_traceparent_starts_a_new_trace_without_tracestate() {
    let service = Service::start();
    let callback = Callback::start(1);
    let body = format!(r#"[{{"url": "{}", "arguments": []}}]"#, callback.url);
    let bad = format!("00-{}-{SPAN}-01", TRACE.to_uppercase());
    let resp = service.post_test(&[("traceparent", &bad), ("tracestate", "foo=1")], &body);
    assert_eq!(resp.status, 200);
    let got = callback.next();
    let (version, trace_id, parent_id, _) = fields(header(&got.headers, "traceparent").unwrap());
    assert_eq!(version, "00");
    assert_ne!(trace_id.to_lowercase(), TRACE.to_lowercase(), "new trace");
    assert_ne!(trace_id, "0".repeat(32));
    assert_ne!(parent_id, "0".repeat(16));
    assert!(
        header(&got.headers, "tracestate").is_none(),
        "bad request's tracestate dropped"
    );
}

/// The harness's `test_tracestate_duplicated_keys` (Level 2, strict mode): the
/// tracestate is carried on with the first `foo` kept.
#[test]
fn repeated_tracestate_key_is_carried_on_with_its_first_value() {
    let service = Service::start();
    for tracestate in ["foo=1,foo=1", "foo=1,foo=2"] {
        let callback = Callback::start(1);
        let body = format!(r#"[{{"url": "{}", "arguments": []}}]"#, callback.url);
        let traceparent = format!("00-{TRACE}-{SPAN}-00");
        let resp = service.post_test(
            &[("traceparent", &traceparent), ("tracestate", tracestate)],
            &body,
        );
        assert_eq!(resp.status, 200);
        let got = callback.next();
        let (_, trace_id, _, _) = fields(header(&got.headers, "traceparent").unwrap());
        assert_eq!(trace_id, TRACE, "{tracestate}: same trace");
        assert_eq!(
            header(&got.headers, "tracestate"),
            Some("foo=1"),
            "{tracestate}"
        );
    }
}

#[test]
fn malformed_json_gets_400_and_the_service_keeps_serving() {
    let service = Service::start();
    for body in [
        "",
        "[",
        "{\"url\": 1}",
        "[{\"arguments\": []}]",
        "[{\"url\": \"x\"},]",
    ] {
        assert_eq!(service.post_test(&[], body).status, 400, "{body:?}");
    }
    assert_eq!(service.post_test(&[], "[]").status, 200);
    let url = format!("http://{}/other", service.addr);
    let resp = http::post(&url, &[], "application/json", b"[]", TIMEOUT).unwrap();
    assert_eq!(resp.status, 404);
}
