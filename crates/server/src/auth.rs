//! Who is calling: an API token (`Authorization: Bearer rft_…`) or a dashboard session
//! cookie. A session that changes something must also present its CSRF token; a token
//! needs none (browsers never attach it on their own).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, Method, header, request::Parts};
use ringfence_engine::auth::constant_time_eq;
use ringfence_model::Principal;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "rf_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of an API route.
pub struct Caller {
    pub principal: Principal,
    pub via: Via,
}

pub enum Via {
    Token,
    Session { csrf_token: String, display_name: String },
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client's address, for throttling sign-ins.
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let secret = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(ApiError::unauthenticated)?;
            let principal = state.engine.token_principal(secret.trim()).await?.ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the API token is unknown, revoked or expired; create a new one",
                )
            })?;
            return Ok(Caller { principal, via: Via::Token });
        }
        let cookie = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?;
        let session = state.engine.session(cookie).await?.ok_or_else(ApiError::unauthenticated)?;
        if !is_safe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !constant_time_eq(sent, &session.csrf_token) {
                return Err(ApiError::csrf());
            }
        }
        Ok(Caller {
            principal: session.principal,
            via: Via::Session { csrf_token: session.csrf_token, display_name: session.display_name },
        })
    }
}

/// The `Set-Cookie` value that opens a session.
pub fn session_cookie(value: &str, secure: bool) -> String {
    let max_age = ringfence_engine::auth::SESSION_TTL.as_secs();
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}
