//! Refuses, at the edge, text neither database can store: a NUL character in a query
//! parameter, a form field or a JSON string (PostgreSQL refuses it, SQLite would store it).
//! Both backends behave the same because neither sees it: the answer is 422 naming the field.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

fn refuse(field: &str) -> Response {
    ApiError::field(
        StatusCode::UNPROCESSABLE_ENTITY,
        field,
        format!("'{field}' contains a NUL character, which cannot be stored: remove it"),
    )
    .into_response()
}

/// The first form or query field whose name or value holds a NUL.
fn form_field_with_nul(text: &[u8]) -> Option<String> {
    form_urlencoded::parse(text)
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', ""))
}

/// The path (`updates[2].name`) of the first JSON string or key holding a NUL.
pub fn json_path_with_nul(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => {
            Some(if path.is_empty() { "body".into() } else { path.into() })
        }
        Value::Array(a) => {
            a.iter().enumerate().find_map(|(i, x)| json_path_with_nul(x, &format!("{path}[{i}]")))
        }
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p =
                if path.is_empty() { k.replace('\0', "") } else { format!("{path}.{}", k.replace('\0', "")) };
            if k.contains('\0') { Some(p) } else { json_path_with_nul(x, &p) }
        }),
        _ => None,
    }
}

/// Whether raw JSON may hold a NUL: the escape `\u0000` (a raw NUL byte is not JSON).
fn may_hold_nul(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w[0] == b'\\' && (w[1] == b'u' || w[1] == b'U') && &w[2..] == b"0000")
}

pub async fn refuse_unstorable(req: Request, next: Next) -> Response {
    if let Some(q) = req.uri().query()
        && q.contains("%00")
        && let Some(field) = form_field_with_nul(q.as_bytes())
    {
        return refuse(&field);
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json = kind.starts_with("application/json");
    let form = kind.starts_with("application/x-www-form-urlencoded");
    if !json && !form {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The body is already bounded by the request-size layer around this one.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::field(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body",
                "the request body is too large or was cut off",
            )
            .into_response();
        }
    };
    if json
        && may_hold_nul(&bytes)
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        && let Some(path) = json_path_with_nul(&v, "")
    {
        return refuse(&path);
    }
    if form
        && bytes.windows(3).any(|w| w == b"%00")
        && let Some(field) = form_field_with_nul(&bytes)
    {
        return refuse(&field);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_holding_a_nul_is_named() {
        let v: Value = serde_json::from_str(
            r#"{"agent_version":"1.0\u0000","updates":[{"name":"ok"},{"name":"a\u0000"}]}"#,
        )
        .unwrap();
        assert_eq!(json_path_with_nul(&v, "").as_deref(), Some("agent_version"));
        let v: Value = serde_json::from_str(r#"{"updates":[{"name":"ok"},{"name":"a\u0000"}]}"#).unwrap();
        assert_eq!(json_path_with_nul(&v, "").as_deref(), Some("updates[1].name"));
        let v: Value = serde_json::from_str(r#"{"k\u0000ey":1}"#).unwrap();
        assert_eq!(json_path_with_nul(&v, "").as_deref(), Some("key"));
        let v: Value = serde_json::from_str(r#"{"path":"C:\\u0000"}"#).unwrap();
        assert_eq!(json_path_with_nul(&v, ""), None, "an escaped backslash before u0000 is text");
        assert!(may_hold_nul(br#"{"a":"\u0000"}"#) && !may_hold_nul(br#"{"a":"u0000"}"#));
        assert_eq!(form_field_with_nul(b"search=a%00b&x=1").as_deref(), Some("search"));
        assert_eq!(form_field_with_nul(b"search=ab"), None);
    }
}
