//! `echo`: a small JSON object in, a transformed object out: every string value
//! upper-cased, plus the number of fields and of body bytes.

use crate::Response;
use alloc::string::String;
use serde_json::{Map, Value};

/// Larger bodies are refused: this endpoint is meant to be lightweight.
pub const MAX_BODY: usize = 64 * 1024;

pub fn handle(body: &[u8]) -> Response {
    if body.len() > MAX_BODY {
        return Response::error(413, "body larger than 64 KiB");
    }
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Response::error(400, "body must be a JSON object"),
        Err(_) => return Response::error(400, "body is not valid JSON"),
    };
    let fields = object.len();
    let transformed: Map<String, Value> = object.into_iter().map(|(k, v)| (k, upper(v))).collect();
    Response::json(200, serde_json::json!({ "echo": transformed, "fields": fields, "bytes": body.len() }))
}

fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn transforms_strings_and_counts() {
        let r = handle(br#"{"b":"hi","a":[1,"x"]}"#);
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "{\"bytes\":22,\"echo\":{\"a\":[1,\"X\"],\"b\":\"HI\"},\"fields\":2}\n"
        );
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(handle(b"[1]").status, 400);
        assert_eq!(handle(b"{").status, 400);
    }
}
