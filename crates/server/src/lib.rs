//! ringfence's HTTP face: the REST API under `/api/v1/`, its OpenAPI document at
//! `/api/openapi.json`, the server-rendered dashboard, `/healthz`, `/readyz` and `/metrics`.
//!
//! The server holds no state of its own beyond configuration: every session, token and
//! object lives in the store, so several servers can share one PostgreSQL database. Who may
//! do what is decided by `engine`; this crate only extracts the caller and the request.

mod api;
mod api_appliances;
mod api_deploy;
mod api_intel;
mod api_remediation;
mod api_reports;
pub mod auth;
mod dashboard;
pub mod error;
pub mod extract;
mod health;
pub mod hygiene;
pub mod list;
pub mod policy_form;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ringfence_engine::Engine;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body accepted (JSON or form).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of the HTTP server itself.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Mark the session cookie `Secure` (send it over HTTPS only). On by default; turn it off
    /// only for plain-HTTP use on a loopback address.
    pub secure_cookies: bool,
    /// How often the dispatcher runs (missed windows, ring gates, new deployments and their
    /// jobs); `None` runs it only on demand (`POST /api/v1/rollouts/dispatch`).
    pub dispatch_every: Option<std::time::Duration>,
    /// How often the records worker runs: a signed checkpoint of every chain that moved,
    /// due report schedules, and remediation-deadline alerts; `None` turns it off.
    pub records_every: Option<std::time::Duration>,
    /// How often the database's health is checked for `/readyz` (a read, free space, a tiny
    /// write); `None` makes `/readyz` check on every call instead.
    pub health_every: Option<std::time::Duration>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for sign-in throttling).
    pub trusted_proxies: Vec<auth::Cidr>,
    /// When set, `/metrics` answers only requests bearing this token.
    pub metrics_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            dispatch_every: Some(std::time::Duration::from_secs(60)),
            records_every: Some(std::time::Duration::from_secs(5 * 60)),
            health_every: Some(std::time::Duration::from_secs(2)),
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: Arc<ServerConfig>,
    metrics: PrometheusHandle,
    health: Arc<health::Health>,
}

impl AppState {
    pub fn new(engine: Engine, config: ServerConfig) -> Self {
        Self { engine, config: Arc::new(config), metrics: metrics_handle(), health: Arc::default() }
    }
}

/// The process-wide Prometheus recorder (a process has one metrics registry).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding program; then our
            // handle still renders our own (empty) registry rather than failing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().2
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (api_routes, inventory_routes, openapi) = api::router();
    let openapi = Arc::new(openapi);
    Router::new()
        .merge(api_routes)
        .route("/api/v1/{*rest}", axum::routing::any(api::not_found))
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/.well-known/ringfence-evidence-keys", get(evidence_keys))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .merge(dashboard::router())
        .layer(middleware::from_fn(hygiene::refuse_unstorable))
        .layer(middleware::from_fn(track))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .merge(
            // Inventories may be large: this layer's limit, not the extractors' 2 MiB default.
            inventory_routes
                .layer(middleware::from_fn(hygiene::refuse_unstorable))
                .layer(axum::extract::DefaultBodyLimit::disable())
                .layer(RequestBodyLimitLayer::new(api_intel::MAX_INVENTORY_BYTES))
                // Agents gzip large reports; the limit above counts the bytes unpacked.
                .layer(tower_http::decompression::RequestDecompressionLayer::new()),
        )
        .layer(middleware::from_fn_with_state(state.health.clone(), health::observe))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // Pages and answers carry tenants' data and, at times, secrets shown once (new tokens,
        // enrollment secrets, signed jobs): no cache keeps them. Static files say otherwise.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .with_state(state)
}

/// How long `/readyz` waits for the database: probes time out after 1 s.
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(800);

/// Ready when the database answers and takes writes: the background check's last answer
/// when one is fresh, else a read within [`READY_WAIT`] (a probe must not time out while
/// the pool waits for a connection).
async fn readyz(State(s): State<AppState>) -> Response {
    if let Some(status) = s.config.health_every.and_then(|p| s.health.cached(p * 3)) {
        return match status {
            health::Status::Ready => (StatusCode::OK, "ready").into_response(),
            health::Status::Failing { reason, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
            }
        };
    }
    match tokio::time::timeout(READY_WAIT, s.engine.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("the database is not reachable: {e}")).into_response()
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer within 0.8 s");
            (StatusCode::SERVICE_UNAVAILABLE, "the database did not answer within 0.8 s").into_response()
        }
    }
}

/// The server's public signing key, for auditors to pin when they verify evidence bundles
/// (and for agents' operators to compare with the key pinned at enrollment). Public by
/// nature: it proves who signed, and signs nothing.
async fn evidence_keys(State(s): State<AppState>) -> Response {
    match s.engine.server_public_key().await {
        Ok(public) => axum::Json(serde_json::json!({
            "keys": [{
                "key_id": ringfence_engine::agents::key_fingerprint(&public),
                "algorithm": "ed25519",
                "public_key": public,
                "signs": ["evidence checkpoints", "evidence bundle manifests", "agent jobs"],
                "verify": "ringfence evidence verify --bundle FILE --public-key PUBLIC_KEY",
            }]
        }))
        .into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

async fn render_metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = s.config.metrics_token.as_deref() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !ringfence_engine::auth::constant_time_eq(given.trim(), token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the token set by metrics_token: send 'Authorization: Bearer TOKEN'",
            )
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render()).into_response()
}

/// Counts requests and their latency by route and status.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("ringfence_http_requests_total", &labels).increment(1);
    metrics::histogram!("ringfence_http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    response
}

/// What one client may hold of the server, and how long it may take.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, and the longest a kept-alive connection may sit
    /// idle before its next request.
    pub header_read: std::time::Duration,
    /// Time to send a request's body.
    pub body_read: std::time::Duration,
    /// Open connections from one address; more are closed at once.
    pub per_client: usize,
    /// Whether loopback clients (a reverse proxy on the same machine, `ringfence loadgen`)
    /// are exempt from `per_client`.
    pub loopback_exempt: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read: std::time::Duration::from_secs(10),
            body_read: std::time::Duration::from_secs(60),
            per_client: 256,
            loopback_exempt: true,
        }
    }
}

/// Accepts connections until `shutdown`, each served with the header, idle and body
/// timeouts and the per-client cap of `limits`; then lets open requests finish.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: &ConnectionLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;
    use tower::ServiceExt;

    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read));
    let open: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.header_read));
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let counted = !(limits.loopback_exempt && addr.ip().is_loopback());
        if counted {
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(addr.ip()).or_insert(0);
            if *n >= limits.per_client {
                tracing::warn!(client = %addr.ip(), open = *n, "connection refused: too many open connections from one address");
                continue;
            }
            *n += 1;
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        let open = open.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            if !counted {
                return;
            }
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = open.get_mut(&addr.ip()) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&addr.ip());
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Runs `work` every `period` on its own task; a run that overruns delays the next tick
/// instead of piling runs up.
fn every<F, Fut>(period: std::time::Duration, engine: Engine, work: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(Engine) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work(engine.clone()).await;
        }
    })
}

/// Serves the application on `listener` until `shutdown` completes, with periodic
/// housekeeping (expired sessions, the policies' approval rules) in the background.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = state.engine.clone();
    let housekeeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match engine.expire_sessions().await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "removing expired sessions failed"),
            }
            match engine.run_all_approval_rules().await {
                Ok(n) if n > 0 => tracing::info!(approvals = n, "approval rules approved updates"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "running the approval rules failed"),
            }
        }
    });
    // Several servers may share one database: a deployment is created once whichever runs
    // first (one active deployment per device), and a job is leased to one agent at a time.
    let dispatcher = state.config.dispatch_every.map(|period| {
        every(period, state.engine.clone(), |engine| async move {
            match engine.dispatch_all().await {
                Ok(s) if s.scheduled + s.missed + s.timed_out + s.halted.len() > 0 => tracing::info!(
                    scheduled = s.scheduled,
                    missed = s.missed,
                    timed_out = s.timed_out,
                    halted = s.halted.len(),
                    "dispatch"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "dispatch failed"),
            }
        })
    });
    let records = state.config.records_every.map(|period| {
        every(period, state.engine.clone(), |engine| async move {
            match engine.checkpoint_chains().await {
                Ok(n) if n > 0 => tracing::debug!(checkpoints = n, "evidence chains checkpointed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "checkpointing the evidence chains failed"),
            }
            match engine.run_report_schedules().await {
                Ok(n) if n > 0 => tracing::info!(reports = n, "scheduled reports made"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "running report schedules failed"),
            }
            match engine.raise_sla_alerts().await {
                Ok(n) if n > 0 => tracing::info!(alerts = n, "remediation-deadline alerts raised"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "checking remediation deadlines failed"),
            }
        })
    });
    let health = state.config.health_every.map(|period| {
        let (health, store) = (state.health.clone(), state.engine.store().clone());
        tokio::spawn(async move { health.watch(store, period).await })
    });
    let result = serve_connections(listener, app(state), shutdown, &ConnectionLimits::default()).await;
    housekeeping.abort();
    if let Some(h) = health {
        h.abort();
    }
    if let Some(d) = dispatcher {
        d.abort();
    }
    if let Some(r) = records {
        r.abort();
    }
    result
}
