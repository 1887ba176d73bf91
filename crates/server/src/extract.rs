//! Request extractors with errors that name the problem: a JSON body whose failure says which
//! field is wrong and why, and query strings likewise.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

/// A JSON request body. Malformed JSON is 400; a well-formed body with a missing, unknown or
/// mistyped field is 422 naming the field.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid",
                "send the body as JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(e.status(), "invalid", format!("the request body could not be read: {e}"))
        })?;
        parse_json(&bytes).map(Json)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("the body is not valid JSON: {inner}"),
                )),
                Category::Data => {
                    let msg = strip_position(&inner.to_string());
                    let field =
                        if path == "." { unknown_field(&msg).unwrap_or_else(|| "body".into()) } else { path };
                    Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, msg))
                }
            }
        }
    }
}

/// serde reports an unknown field at the level of the object that holds it; name the field.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A query string, refused with the parameter's name when malformed. Empty values (as a
/// search form sends them) count as absent.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

pub fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    let kept: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(q.as_bytes()).filter(|(_, v)| !v.is_empty()))
        .finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(kept.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = if path == "." { unknown_field(&msg).unwrap_or_else(|| "query".into()) } else { path };
        ApiError::field(StatusCode::BAD_REQUEST, field, msg)
    })
}

/// An HTML form body (`application/x-www-form-urlencoded`), with the same error naming.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(body));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = if path == "." { unknown_field(&msg).unwrap_or_else(|| "form".into()) } else { path };
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, msg)
    })
}
