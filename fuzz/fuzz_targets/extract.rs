//! Arbitrary bytes as `traceparent` / `tracestate`: extraction must never panic,
//! and whatever it accepts must survive an inject/extract round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtrace::TraceContextPropagator;

fuzz_target!(|data: &[u8]| {
    // The first byte picks where traceparent ends; the rest is tracestate,
    // optionally split into several fields at 0x00 bytes.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (tp, ts) = rest.split_at(split);
    let mut carrier = vec![("traceparent".to_string(), String::from_utf8_lossy(tp).into_owned())];
    for field in ts.split(|&b| b == 0) {
        carrier.push(("TraceState".to_string(), String::from_utf8_lossy(field).into_owned()));
    }
    let p = TraceContextPropagator::new();
    let cx = p.extract(&carrier);
    if let Some(sc) = cx.span_context() {
        assert!(sc.is_remote());
        let mut out: Vec<(String, String)> = Vec::new();
        p.inject(&cx, &mut out);
        assert_eq!(p.extract(&out), cx);
    }
});
