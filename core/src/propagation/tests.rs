//! Table tests for every `traceparent` / `tracestate` case of the W3C Trace
//! Context spec and its test harness (spec digest §1.2–1.4), plus carriers.

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn extract(pairs: &[(&str, &str)]) -> Context {
    TraceContextPropagator::new().extract(&headers(pairs))
}

/// The extracted (trace id, span id, flags), or `None` for an empty context.
fn parent_of(traceparent: &str) -> Option<(String, String, u8)> {
    let cx = extract(&[("traceparent", traceparent), ("tracestate", "foo=1")]);
    let sc = cx.span_context()?;
    assert!(sc.is_remote(), "extracted contexts are remote");
    assert_eq!(sc.trace_state().header(), "foo=1");
    Some((
        sc.trace_id().to_string(),
        sc.span_id().to_string(),
        sc.trace_flags().bits(),
    ))
}

fn trace_state_of(tracestate: &[&str]) -> String {
    let mut h = vec![("traceparent", VALID)];
    h.extend(tracestate.iter().map(|v| ("tracestate", *v)));
    let cx = extract(&h);
    let sc = cx.span_context().expect("traceparent must still be used");
    sc.trace_state().header()
}

#[test]
fn valid_traceparents_are_accepted() {
    let cc_future = format!("cc-{TRACE}-{SPAN}-01");
    let cc_more = format!("cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like");
    let fe = format!("fe-{TRACE}-{SPAN}-01-");
    let cases: Vec<(&str, String, u8)> = vec![
        ("version 00", VALID.to_string(), 0x01),
        ("not sampled", format!("00-{TRACE}-{SPAN}-00"), 0x00),
        ("random flag", format!("00-{TRACE}-{SPAN}-02"), 0x02),
        ("sampled + random", format!("00-{TRACE}-{SPAN}-03"), 0x03),
        (
            "reserved bits ignored",
            format!("00-{TRACE}-{SPAN}-ff"),
            0x03,
        ),
        ("reserved bits only", format!("00-{TRACE}-{SPAN}-fc"), 0x00),
        ("leading space", format!(" {VALID}"), 0x01),
        ("leading tab", format!("\t{VALID}"), 0x01),
        ("trailing space", format!("{VALID} "), 0x01),
        ("trailing tab", format!("{VALID}\t"), 0x01),
        ("mixed ows", format!(" \t {VALID}\t \t"), 0x01),
        ("future version, 55 chars", cc_future, 0x01),
        ("future version, more fields", cc_more, 0x01),
        ("version fe, trailing dash", fe, 0x01),
        ("version 01", format!("01-{TRACE}-{SPAN}-09"), 0x01),
    ];
    for (name, header, flags) in cases {
        assert_eq!(
            parent_of(&header),
            Some((TRACE.to_string(), SPAN.to_string(), flags)),
            "{name}: {header:?}"
        );
    }
}

#[test]
fn invalid_traceparents_are_ignored_with_their_tracestate() {
    let z32 = "0".repeat(32);
    let z16 = "0".repeat(16);
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("only ows", " \t ".to_string()),
        ("garbage", "hello world".to_string()),
        ("version 00 with trailing dot", format!("{VALID}.")),
        (
            "version 00 with more fields",
            format!("{VALID}-what-the-future"),
        ),
        ("version 00 with trailing dash", format!("{VALID}-")),
        ("version ff", format!("ff-{TRACE}-{SPAN}-01")),
        (
            "future version, flags then dot",
            format!("cc-{TRACE}-{SPAN}-01.what-the-future"),
        ),
        ("future version, too short", format!("cc-{TRACE}-{SPAN}-0")),
        (
            "future version, bad trace id",
            format!("cc-{}-{SPAN}-01-x", "g".repeat(32)),
        ),
        ("version uppercase", format!("0A-{TRACE}-{SPAN}-01")),
        ("version illegal char 1", format!(".0-{TRACE}-{SPAN}-01")),
        ("version illegal char 2", format!("0.-{TRACE}-{SPAN}-01")),
        ("version too long 3", format!("000-{TRACE}-{SPAN}-01")),
        ("version too long 4", format!("0000-{TRACE}-{SPAN}-01")),
        ("version too short", format!("0-{TRACE}-{SPAN}-01")),
        ("trace id all zero", format!("00-{z32}-{SPAN}-01")),
        (
            "trace id uppercase",
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
        ),
        (
            "trace id one uppercase",
            format!("00-4BF92f3577b34da6a3ce929d0e0e4736-{SPAN}-01"),
        ),
        (
            "trace id illegal first",
            format!("00-.bf92f3577b34da6a3ce929d0e0e4736-{SPAN}-01"),
        ),
        (
            "trace id illegal last",
            format!("00-4bf92f3577b34da6a3ce929d0e0e473.-{SPAN}-01"),
        ),
        ("trace id too long 33", format!("00-{TRACE}0-{SPAN}-01")),
        ("trace id too long 34", format!("00-{TRACE}00-{SPAN}-01")),
        (
            "trace id too short 31",
            format!("00-{}-{SPAN}-01", &TRACE[..31]),
        ),
        ("parent id all zero", format!("00-{TRACE}-{z16}-01")),
        (
            "parent id uppercase",
            format!("00-{TRACE}-00F067AA0BA902B7-01"),
        ),
        (
            "parent id illegal first",
            format!("00-{TRACE}-.0f067aa0ba902b7-01"),
        ),
        (
            "parent id illegal last",
            format!("00-{TRACE}-00f067aa0ba902b.-01"),
        ),
        ("parent id too long 17", format!("00-{TRACE}-{SPAN}0-01")),
        (
            "parent id too short 15",
            format!("00-{TRACE}-{}-01", &SPAN[..15]),
        ),
        ("flags illegal first", format!("00-{TRACE}-{SPAN}-.1")),
        ("flags illegal last", format!("00-{TRACE}-{SPAN}-0.")),
        ("flags uppercase", format!("00-{TRACE}-{SPAN}-0A")),
        ("flags too long", format!("00-{TRACE}-{SPAN}-001")),
        ("flags too short", format!("00-{TRACE}-{SPAN}-1")),
        ("wrong separator 1", format!("00_{TRACE}-{SPAN}-01")),
        ("wrong separator 2", format!("00-{TRACE}_{SPAN}-01")),
        ("wrong separator 3", format!("00-{TRACE}-{SPAN}_01")),
        ("inner whitespace", format!("00- {TRACE}-{SPAN}-01")),
        ("newline is not ows", format!("\n{VALID}")),
        ("two values in one field", format!("{VALID},{VALID}")),
        ("non-ascii", format!("00-{}é-{SPAN}-01", &TRACE[..30])),
        ("non-ascii at dash", format!("00-{TRACE}é{SPAN}-01")),
    ];
    for (name, header) in cases {
        assert_eq!(parent_of(&header), None, "{name}: {header:?}");
    }
}

#[test]
fn header_names_are_case_insensitive() {
    for (tp, ts) in [
        ("traceparent", "tracestate"),
        ("TraceParent", "TraceState"),
        ("TRACEPARENT", "TRACESTATE"),
    ] {
        let cx = extract(&[(tp, VALID), (ts, "foo=1")]);
        let sc = cx.span_context().expect(tp);
        assert_eq!(sc.trace_state().header(), "foo=1", "{ts}");
    }
}

#[test]
fn two_traceparent_fields_restart_the_trace() {
    let other = format!("00-{TRACE}-1111111111111111-01");
    for second in [VALID, other.as_str()] {
        let cx = extract(&[
            ("traceparent", VALID),
            ("TraceParent", second),
            ("tracestate", "foo=1"),
        ]);
        assert_eq!(cx, Context::new());
    }
    assert_eq!(extract(&[("tracestate", "foo=1")]), Context::new());
}

#[test]
fn valid_tracestates_are_kept() {
    let key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let value_chars: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect::<String>()
        + "~";
    let all_chars = format!("{key_chars}={value_chars}");
    let max_key = format!("{}=1", "k".repeat(256));
    let max_value = format!("k={}", "v".repeat(256));
    let members32: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
    let members32 = members32.join(",");
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        ("single", vec!["foo=1"], "foo=1".into()),
        (
            "two fields in order",
            vec!["foo=1", "bar=2"],
            "foo=1,bar=2".into(),
        ),
        (
            "three fields",
            vec!["a=1", "b=2,c=3", "d=4"],
            "a=1,b=2,c=3,d=4".into(),
        ),
        ("empty field", vec![""], String::new()),
        (
            "empty field among others",
            vec!["foo=1", "", "bar=2"],
            "foo=1,bar=2".into(),
        ),
        (
            "ows around commas",
            vec!["foo=1 \t , \t bar=2, \t baz=3"],
            "foo=1,bar=2,baz=3".into(),
        ),
        ("trailing ows", vec!["foo=1\t \t"], "foo=1".into()),
        ("leading ows", vec!["\t \tfoo=1"], "foo=1".into()),
        (
            "empty members",
            vec![",,foo=1,, ,\t,bar=2,"],
            "foo=1,bar=2".into(),
        ),
        (
            "all allowed characters",
            vec![all_chars.as_str()],
            all_chars.clone(),
        ),
        (
            "vendor format",
            vec!["foo@bar=1,0a@b-c=2"],
            "foo@bar=1,0a@b-c=2".into(),
        ),
        (
            "level 2 key superset",
            vec!["foo@=1,foo@@bar=2,a@b@c=3"],
            "foo@=1,foo@@bar=2,a@b@c=3".into(),
        ),
        ("key may start with digit", vec!["1foo=1"], "1foo=1".into()),
        (
            "leading space in value",
            vec!["foo= bar"],
            "foo= bar".into(),
        ),
        ("256-char key", vec![max_key.as_str()], max_key.clone()),
        (
            "256-char value",
            vec![max_value.as_str()],
            max_value.clone(),
        ),
        ("32 members", vec![members32.as_str()], members32.clone()),
        (
            "ot member",
            vec!["ot=th:c;rv:7479cfb506891d,foo=1"],
            "ot=th:c;rv:7479cfb506891d,foo=1".into(),
        ),
    ];
    for (name, fields, expected) in cases {
        assert_eq!(trace_state_of(&fields), expected, "{name}");
    }
}

#[test]
fn invalid_tracestates_are_discarded_whole() {
    let long_key = format!("{}=1", "k".repeat(257));
    let long_value = format!("k={}", "v".repeat(257));
    let members33: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
    let members33 = members33.join(",");
    let (first16, last17) = {
        let m: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
        (m[..16].join(","), m[16..].join(","))
    };
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("uppercase key", vec!["FOO=1"]),
        ("space before '='", vec!["foo =1"]),
        ("dot in key", vec!["foo.bar=1"]),
        ("key starts with @", vec!["@foo=1"]),
        ("key starts with _", vec!["_foo=1"]),
        ("'=' in value", vec!["foo=bar=baz"]),
        ("empty value", vec!["foo="]),
        ("empty value then member", vec!["foo=,bar=3"]),
        ("no '='", vec!["foo"]),
        ("empty key", vec!["=1"]),
        ("control char in value", vec!["foo=a\u{7}b"]),
        ("non-ascii value", vec!["foo=é"]),
        ("257-char key", vec![long_key.as_str()]),
        ("257-char value", vec![long_value.as_str()]),
        ("33 members", vec![members33.as_str()]),
        (
            "33 members over two fields",
            vec![first16.as_str(), last17.as_str()],
        ),
        ("repeated key with an empty value", vec!["foo=1,foo="]),
        (
            "repeated key with an invalid value",
            vec!["foo=1", "foo=a=b"],
        ),
        ("one bad field spoils all", vec!["foo=1", "BAR=2"]),
    ];
    for (name, fields) in cases {
        assert_eq!(trace_state_of(&fields), "", "{name}");
    }
}

/// W3C Level 2 (`test_tracestate_duplicated_keys`, strict mode): a repeated key
/// keeps the tracestate; runtrace keeps the first value and drops the later ones.
#[test]
fn repeated_tracestate_keys_keep_the_first_value() {
    let mut members: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
    let members32 = members.join(",");
    members.push("k5=again".into());
    let members32_and_repeat = members.join(",");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("harness: same value", vec!["foo=1,foo=1"], "foo=1"),
        ("harness: other value", vec!["foo=1,foo=2"], "foo=1"),
        ("over two fields", vec!["foo=1", "foo=2"], "foo=1"),
        (
            "others keep their order",
            vec!["foo=1,bar=2,foo=3,baz=4"],
            "foo=1,bar=2,baz=4",
        ),
        ("three times", vec!["a=1, a=2 ,\ta=3"], "a=1"),
        (
            "a repeat is not a 33rd member",
            vec![members32_and_repeat.as_str()],
            members32.as_str(),
        ),
    ];
    for (name, fields, expected) in cases {
        assert_eq!(trace_state_of(&fields), expected, "{name}");
    }
}

#[test]
fn long_tracestate_propagates_beyond_512_chars() {
    let members: Vec<String> = (0..8)
        .map(|i| format!("k{i}={}", "v".repeat(100)))
        .collect();
    let header = members.join(",");
    assert!(header.len() > 512);
    assert_eq!(trace_state_of(&[&header]), header);
}

#[test]
fn inject_writes_version_00_lowercase_and_known_flags() {
    let p = TraceContextPropagator::new();
    for (incoming, outgoing_flags) in [
        (format!("00-{TRACE}-{SPAN}-01"), "01"),
        (format!("00-{TRACE}-{SPAN}-02"), "02"),
        (format!("00-{TRACE}-{SPAN}-ff"), "03"),
        (format!("cc-{TRACE}-{SPAN}-05-future"), "01"),
    ] {
        let cx = extract(&[("TRACEPARENT", &incoming)]);
        let mut out: Vec<(String, String)> = Vec::new();
        p.inject(&cx, &mut out);
        assert_eq!(
            out,
            headers(&[(
                "traceparent",
                &format!("00-{TRACE}-{SPAN}-{outgoing_flags}")
            )]),
            "no tracestate when empty"
        );
    }
    // Reserved bits in a locally built context are zeroed too.
    let sc = SpanContext::new(
        TraceId::from_bytes([0xab; 16]),
        SpanId::from_bytes([0xcd; 8]),
        TraceFlags::new(0xfe),
        false,
        TraceState::parse("a=1,b=2").unwrap(),
    );
    let mut out: HashMap<String, String> = HashMap::new();
    p.inject(&Context::from_span_context(sc), &mut out);
    assert_eq!(
        out["traceparent"],
        format!("00-{}-{}-02", "ab".repeat(16), "cd".repeat(8))
    );
    assert_eq!(out["tracestate"], "a=1,b=2");
}

#[test]
fn inject_does_nothing_without_a_valid_span_context() {
    let p = TraceContextPropagator::new();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    p.inject(&Context::new(), &mut out);
    p.inject(&Context::from_span_context(SpanContext::INVALID), &mut out);
    let half = SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::INVALID,
        TraceFlags::SAMPLED,
        false,
        TraceState::parse("a=1").unwrap(),
    );
    p.inject(&Context::from_span_context(half), &mut out);
    assert!(out.is_empty());
}

#[test]
fn round_trip_through_every_carrier() {
    let p = TraceContextPropagator::new();
    let cx = extract(&[("traceparent", VALID), ("tracestate", "rojo=1,congo=2")]);
    let mut hm: HashMap<String, String> = HashMap::new();
    let mut bt: BTreeMap<String, String> = BTreeMap::new();
    let mut v: Vec<(String, String)> = Vec::new();
    p.inject(&cx, &mut hm);
    p.inject(&cx, &mut bt);
    p.inject(&cx, &mut v);
    assert_eq!(p.extract(&hm), cx);
    assert_eq!(p.extract(&bt), cx);
    assert_eq!(p.extract(&v), cx);
    assert_eq!(
        v,
        headers(&[("traceparent", VALID), ("tracestate", "rojo=1,congo=2")])
    );
}

#[test]
fn injectors_replace_values_under_any_case() {
    let p = TraceContextPropagator::new();
    let cx = extract(&[("traceparent", VALID)]);
    let mut v = headers(&[("TraceParent", "old"), ("x", "y")]);
    p.inject(&cx, &mut v);
    assert_eq!(v, headers(&[("x", "y"), ("traceparent", VALID)]));
    let mut hm: HashMap<String, String> = [("TRACEPARENT".to_string(), "old".to_string())].into();
    p.inject(&cx, &mut hm);
    assert_eq!(hm.len(), 1);
    assert_eq!(hm["traceparent"], VALID);
    let mut bt: BTreeMap<String, String> = [("Traceparent".to_string(), "old".to_string())].into();
    p.inject(&cx, &mut bt);
    assert_eq!(
        bt.into_iter().collect::<Vec<_>>(),
        headers(&[("traceparent", VALID)])
    );
}

#[test]
fn map_carriers_see_case_variants_as_repeated_fields() {
    let p = TraceContextPropagator::new();
    let two: HashMap<String, String> = [
        ("traceparent".to_string(), VALID.to_string()),
        ("TraceParent".to_string(), VALID.to_string()),
    ]
    .into();
    assert_eq!(p.extract(&two), Context::new());
    let one: BTreeMap<String, String> = [("TrAcEpArEnT".to_string(), VALID.to_string())].into();
    assert!(p.extract(&one).span_context().is_some());
    assert_eq!(Extractor::get(&one, "traceparent"), Some(VALID));
}

#[test]
fn fields_are_the_two_lowercase_names() {
    assert_eq!(
        TraceContextPropagator::new().fields(),
        ["traceparent", "tracestate"]
    );
}
