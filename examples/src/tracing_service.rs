//! An HTTP service instrumented with `tracing` (hyper, `#[instrument]`ed
//! handlers), whose spans export through `runtrace-tracing`.
//!
//! `GET /checkout?user=N` continues the caller's `traceparent` in a server
//! span, loads the cart (an `#[instrument]`ed function with an event) and
//! asks a downstream service for the price: a client span whose context is
//! injected into the outgoing request. `GET /price` (the downstream, here the
//! same process) continues that context in its own server span and computes
//! the price in a native runtrace span. The binary `tracing_service` runs it;
//! `runtrace-tests` drives it with a real HTTP client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use runtrace::{Extractor, TraceContextPropagator, Tracer};
use runtrace_tracing::TracingSpanExt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tracing::{field, info_span, Instrument};

/// What every connection's handlers share.
#[derive(Debug)]
struct Service {
    /// Where `/checkout` asks for prices.
    downstream: SocketAddr,
    /// Starts the native spans (`price.compute`).
    tracer: Tracer,
}

/// Serves HTTP/1.1 on `listener` until the task is dropped; `/checkout` calls
/// `/price` on `downstream`.
pub async fn serve(listener: TcpListener, downstream: SocketAddr, tracer: Tracer) {
    let service = Arc::new(Service { downstream, tracer });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, hyper::Error>(route(&service, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler);
            // A client that goes away mid-request is not the service's error.
            let _ = connection.await;
        });
    }
}

/// Routes one request into its server span, whose parent is the caller's
/// `traceparent` (or none).
async fn route(service: &Service, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let span = info_span!(
        "request",
        otel.name = format!("{} {path}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %path,
        url.query = request.uri().query(),
        http.response.status_code = field::Empty,
    );
    // Before the span is first entered.
    let parent = TraceContextPropagator.extract(&Headers(request.headers()));
    let _ = span.set_parent(&parent);
    let handled = async {
        match path.as_str() {
            "/checkout" => checkout(service, user(request.uri().query())).await,
            "/price" => Ok(price(service)),
            _ => Err(StatusCode::NOT_FOUND),
        }
    };
    let (status, body) = match handled.instrument(span.clone()).await {
        Ok(body) => (StatusCode::OK, body),
        Err(status) => (status, status.to_string()),
    };
    span.record("http.response.status_code", status.as_u16());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The `user` query parameter (0 if absent or not a number).
fn user(query: Option<&str>) -> u64 {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("user="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Loads the cart and asks the downstream service for its price.
async fn checkout(service: &Service, user: u64) -> Result<String, StatusCode> {
    let items = load_cart(user).await;
    let (status, price) = call_downstream(service.downstream, "/price")
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    if status != 200 {
        return Err(StatusCode::BAD_GATEWAY);
    }
    Ok(format!("user {user}: {items} items, {price}"))
}

#[tracing::instrument]
async fn load_cart(user: u64) -> u64 {
    tokio::task::yield_now().await; // a database would be awaited here
    let items = user % 5 + 1;
    tracing::info!(items, "cart loaded");
    items
}

/// The downstream's work: a native runtrace span inside the `tracing` one.
fn price(service: &Service) -> String {
    service.tracer.in_span("price.compute", |span| {
        span.set_attribute("currency", "EUR");
        "12.50 EUR".to_string()
    })
}

/// `GET path` on `addr` in a client span whose context goes out as
/// `traceparent`.
async fn call_downstream(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let span = info_span!(
        "call",
        otel.name = format!("GET {path}"),
        otel.kind = "client",
        server.address = %addr,
        http.response.status_code = field::Empty,
    );
    let mut headers = Vec::new();
    TraceContextPropagator.inject(&span.context(), &mut headers);
    let response = get(addr, path, &headers).instrument(span.clone()).await;
    if let Ok((status, _)) = &response {
        span.record("http.response.status_code", status);
    }
    response
}

/// A plain HTTP/1.1 `GET` (hyper's client) with extra `headers`: returns the
/// status and the body.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> io::Result<(u16, String)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(connection);
    let mut request = Request::get(path).header(HOST, addr.to_string());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(io::Error::other)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

/// hyper's request headers, read by the propagator.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }

    fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_comes_from_the_query() {
        assert_eq!(user(Some("user=7")), 7);
        assert_eq!(user(Some("a=1&user=12")), 12);
        assert_eq!(user(Some("user=x")), 0);
        assert_eq!(user(None), 0);
    }
}
