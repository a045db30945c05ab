//! The JSON bodies a server answers an `http/json` request with: an
//! `ExportTraceServiceResponse` on success, a `google.rpc.Status` on failure.
//! Like the protobuf ones, they are read leniently: unknown fields are ignored,
//! 64-bit integers may be numbers or strings.

use crate::proto::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use serde_json::Value;

/// An `ExportTraceServiceResponse`, or `None` if `bytes` is not one.
pub(crate) fn decode_response(bytes: &[u8]) -> Option<ExportTraceServiceResponse> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let ps = match v.as_object()?.get("partialSuccess") {
        None | Some(Value::Null) => {
            return Some(ExportTraceServiceResponse {
                partial_success: None,
            })
        }
        Some(ps) => ps.as_object()?,
    };
    let rejected_spans = match ps.get("rejectedSpans") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64()?,
        Some(Value::String(s)) => s.trim().parse().ok()?,
        Some(_) => return None,
    };
    let error_message = match ps.get("errorMessage") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return None,
    };
    Some(ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans,
            error_message,
        }),
    })
}

/// The `message` of a JSON `google.rpc.Status`.
pub(crate) fn status_message(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(v.as_object()?.get("message")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_with_string_or_number_counts() {
        for body in [
            r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}"#,
            r#"{"partialSuccess":{"rejectedSpans":2,"errorMessage":"x"},"extra":1}"#,
        ] {
            let ps = decode_response(body.as_bytes())
                .and_then(|r| r.partial_success)
                .expect(body);
            assert_eq!((ps.rejected_spans, ps.error_message.as_str()), (2, "x"));
        }
        let full = decode_response(b"{}").unwrap();
        assert!(full.partial_success.is_none());
        for bad in [
            &b"[]"[..],
            b"not json",
            br#"{"partialSuccess":{"rejectedSpans":"two"}}"#,
        ] {
            assert!(decode_response(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn status_message_of_a_json_status() {
        let body = br#"{"code":3,"message":"bad span","details":[]}"#;
        assert_eq!(status_message(body).as_deref(), Some("bad span"));
        assert_eq!(status_message(b"<html>"), None);
    }
}
