//! How failures become HTTP responses: one JSON shape (`ErrorBody`) for the API, a status
//! that means something, and no internal detail leaked to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ringfence_engine::EngineError;
use ringfence_proto::ErrorBody;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub retry_after: Option<u64>,
    /// The storage fault behind a 503, for readiness to see.
    pub fault: Option<Box<crate::health::SeenFault>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody { error: code.into(), message: message.into(), field: None },
            retry_after: None,
            fault: None,
        }
    }

    pub fn field(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            status,
            body: ErrorBody {
                error: "invalid".into(),
                message: format!("{field}: {message}"),
                field: Some(field),
            },
            retry_after: None,
            fault: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in, or send an API token as 'Authorization: Bearer rft_…'",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "the CSRF token is missing or wrong: send the session's token in the X-CSRF-Token header (or the form's csrf field)",
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(v) => ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, v.field, v.message),
            EngineError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
            }
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            EngineError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            EngineError::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m),
            EngineError::Throttled { retry_after_secs } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    format!("too many failed sign-ins; try again in {retry_after_secs} seconds"),
                );
                e.retry_after = Some(retry_after_secs);
                e
            }
            EngineError::Store(err) => {
                // A storage fault (a full disk, say) is logged once by the health check when
                // it starts and ends, not once for every request it fails.
                let fault = err.fault();
                match fault {
                    Some(f) => tracing::debug!(error = %err, fault = f.as_str(), "store failure"),
                    None => tracing::error!(error = %err, "store failure"),
                }
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database could not complete the request; try again, and tell the operator if it persists",
                );
                e.fault =
                    fault.map(|fault| Box::new(crate::health::SeenFault { fault, detail: err.to_string() }));
                e.retry_after = fault.map(|_| 10);
                e
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Some(f) = self.fault {
            r.extensions_mut().insert(*f);
        }
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
