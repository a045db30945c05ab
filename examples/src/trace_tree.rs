//! Prints what the embedded receiver got as one indented tree per trace:
//! names, durations, status, attributes and events (quickstart, tracing_service).

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue};
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use std::collections::BTreeMap;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|a| a.value.as_ref()) {
        Some(Any::StringValue(s)) => format!("{s:?}"),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(Any::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|x| value(&Some(x.clone()))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(other) => format!("{other:?}"),
        None => "(empty)".to_string(),
    }
}

/// Prints each trace as an indented tree, children in start order.
pub fn print_traces(spans: &[OtlpSpan]) {
    let mut traces: BTreeMap<Vec<u8>, Vec<&OtlpSpan>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace_id.clone()).or_default().push(s);
    }
    let mut ordered: Vec<_> = traces.into_iter().collect();
    ordered.sort_by_key(|(_, s)| s.iter().map(|x| x.start_time_unix_nano).min());
    println!(
        "\nreceived {} spans in {} traces",
        spans.len(),
        ordered.len()
    );
    for (trace_id, mut list) in ordered {
        list.sort_by_key(|s| s.start_time_unix_nano);
        println!("\ntrace {}", hex(&trace_id));
        let roots: Vec<&&OtlpSpan> = list
            .iter()
            .filter(|s| !list.iter().any(|p| p.span_id == s.parent_span_id))
            .collect();
        for root in roots {
            print_span(root, &list, 1);
        }
    }
}

fn print_span(span: &OtlpSpan, all: &[&OtlpSpan], depth: usize) {
    let micros = span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano) as f64
        / 1e3;
    let status = match &span.status {
        Some(s) if s.code == 2 => format!("  ERROR {:?}", s.message),
        _ => String::new(),
    };
    let attrs: Vec<String> = span
        .attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, value(&kv.value)))
        .collect();
    println!(
        "{}{} {:.0}µs{}  {}",
        "  ".repeat(depth),
        span.name,
        micros,
        status,
        attrs.join(" ")
    );
    for e in &span.events {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, value(&kv.value)))
            .collect();
        println!(
            "{}  · event {} {}",
            "  ".repeat(depth),
            e.name,
            attrs.join(" ")
        );
    }
    for child in all.iter().filter(|c| c.parent_span_id == span.span_id) {
        print_span(child, all, depth + 1);
    }
}
