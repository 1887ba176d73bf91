//! The REST API of inventories, findings and vulnerability intelligence.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::Json as J;
use axum::extract::{Path, State};
use ringfence_engine::findings::InventoryReport;
use ringfence_engine::store::{
    Alert, CveFacts, FeedRun, FindingQuery, FindingRow, SoftwareEvent, TitleSummary, VulnerabilityQuery,
    VulnerabilitySummary,
};
use ringfence_inventory::{Inventory, Item};
use ringfence_model::{OrganizationId, ValueError};
use ringfence_proto::{ErrorBody, FindingListQuery, SoftwareQuery, VulnerabilityListQuery};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Inventory uploads may be large (up to 20,000 items); they get their own body limit.
pub const MAX_INVENTORY_BYTES: usize = 16 * 1024 * 1024;

pub fn inventory_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_inventory, put_inventory))
        .routes(routes!(agent_inventory))
        .merge(crate::api_remediation::agent_router())
}

/// An agent, authenticated by its device credential (`Authorization: Bearer rfa_…`).
pub struct AgentCaller(pub ringfence_engine::store::AgentIdentity);

impl axum::extract::FromRequestParts<AppState> for AgentCaller {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(credential) =
            header.and_then(|h| h.strip_prefix("Bearer ")).filter(|c| c.starts_with("rfa_"))
        else {
            return Err(crate::error::ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send the device credential as 'Authorization: Bearer rfa_…'",
            ));
        };
        Ok(AgentCaller(s.engine.agent(credential).await?))
    }
}

/// An agent's heartbeat; the answer says which inventory report the server applied last.
#[utoipa::path(post, path = "/api/agent/v1/checkin", tag = "agents", request_body = ringfence_proto::CheckIn,
    responses((status = 200, body = ringfence_proto::CheckInReply), (status = 401, body = ErrorBody)))]
async fn agent_checkin(
    State(s): State<AppState>,
    a: AgentCaller,
    Json(req): Json<ringfence_proto::CheckIn>,
) -> ApiResult<J<ringfence_proto::CheckInReply>> {
    Ok(J(s.engine.agent_checkin(&a.0, &req).await?))
}

/// An agent's inventory report (full, or a delta following the last one applied).
#[utoipa::path(post, path = "/api/agent/v1/inventory", tag = "agents", request_body = ringfence_proto::AgentInventory,
    responses((status = 200, body = ringfence_proto::InventoryAck), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn agent_inventory(
    State(s): State<AppState>,
    a: AgentCaller,
    Json(req): Json<ringfence_proto::AgentInventory>,
) -> ApiResult<J<ringfence_proto::InventoryAck>> {
    Ok(J(s.engine.agent_inventory(&a.0, req).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(software_history))
        .routes(routes!(device_findings))
        .routes(routes!(list_vulnerabilities))
        .routes(routes!(get_vulnerability))
        .routes(routes!(list_software))
        .routes(routes!(list_alerts, read_alerts))
        .routes(routes!(feed_status))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceInventory {
    /// The operating system, once an inventory was reported.
    #[schema(value_type = Option<Object>)]
    pub os: Option<ringfence_inventory::OsInfo>,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Item>,
    pub updated_at: Option<String>,
}

/// A device's current software.
#[utoipa::path(get, path = "/api/v1/devices/{id}/inventory", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = DeviceInventory), (status = 404, body = ErrorBody)))]
async fn get_inventory(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<DeviceInventory>> {
    let inv = s.engine.device_inventory(&c.principal, &id).await?;
    Ok(J(DeviceInventory { os: inv.os, items: inv.items, updated_at: inv.updated_at.map(|t| t.to_string()) }))
}

/// Replaces a device's inventory (`{"os": {...}, "items": [...]}`, the agent's format) and
/// correlates it at once. Returns what changed, the findings found or resolved, and what
/// could not be checked.
#[utoipa::path(put, path = "/api/v1/devices/{id}/inventory", tag = "inventory", params(("id" = String, Path)),
    request_body(content = Object, description = "An inventory: {\"os\": {family, id, version, codename, name}, \"items\": [{kind, name, version, manager?, vendor?, arch?, source_name?, source_version?, cpe?}]}"),
    responses((status = 200, body = InventoryReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn put_inventory(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(inv): Json<Inventory>,
) -> ApiResult<J<InventoryReport>> {
    Ok(J(s.engine.submit_inventory(&c.principal, &id, inv).await?))
}

/// A device's software history: installs, updates (from → to) and removals.
#[utoipa::path(get, path = "/api/v1/devices/{id}/software-history", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = Vec<SoftwareEvent>), (status = 404, body = ErrorBody)))]
async fn software_history(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<Vec<SoftwareEvent>>> {
    Ok(J(s.engine.software_history(&c.principal, &id, 500).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FindingPage {
    pub items: Vec<FindingRow>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// A device's findings, open first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/findings", tag = "vulnerabilities",
    params(("id" = String, Path), FindingListQuery),
    responses((status = 200, body = FindingPage), (status = 404, body = ErrorBody)))]
async fn device_findings(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Query(q): Query<FindingListQuery>,
) -> ApiResult<J<FindingPage>> {
    // The device must be visible to the caller; otherwise 404 as everywhere.
    let device = s.engine.device(&c.principal, &id).await?;
    let page = s
        .engine
        .findings(
            &c.principal,
            FindingQuery {
                device_id: Some(device.id),
                cve_id: None,
                include_resolved: q.include_resolved.unwrap_or(false),
                limit: q.limit.unwrap_or(100),
                offset: q.offset.unwrap_or(0),
            },
        )
        .await?;
    Ok(J(FindingPage { items: page.items, total: page.total, limit: page.limit, offset: page.offset }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VulnerabilityPage {
    pub items: Vec<VulnerabilitySummary>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The fleet's open vulnerabilities, one row per CVE: devices affected, KEV, EPSS and CVSS.
/// KEV entries come first, then by EPSS and CVSS.
#[utoipa::path(get, path = "/api/v1/vulnerabilities", tag = "vulnerabilities", params(VulnerabilityListQuery),
    responses((status = 200, body = VulnerabilityPage), (status = 400, body = ErrorBody)))]
async fn list_vulnerabilities(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<VulnerabilityListQuery>,
) -> ApiResult<J<VulnerabilityPage>> {
    let organization_id = match q.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(o) => Some(OrganizationId::parse(o).map_err(|_| {
            ringfence_engine::EngineError::Invalid(ValueError::new(
                "organization_id",
                "is not an organization id",
            ))
        })?),
        None => None,
    };
    let page = s
        .engine
        .vulnerabilities(
            &c.principal,
            VulnerabilityQuery {
                search: q.search,
                kev_only: q.kev.unwrap_or(false),
                organization_id,
                limit: q.limit.unwrap_or(50),
                offset: q.offset.unwrap_or(0),
                ..Default::default()
            },
        )
        .await?;
    Ok(J(VulnerabilityPage { items: page.items, total: page.total, limit: page.limit, offset: page.offset }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VulnerabilityDetail {
    pub facts: CveFacts,
    /// The caller's findings of this CVE, open and resolved.
    pub findings: Vec<FindingRow>,
}

/// One CVE: what NVD, KEV and EPSS say, and which of the caller's devices it affects.
#[utoipa::path(get, path = "/api/v1/vulnerabilities/{cve}", tag = "vulnerabilities", params(("cve" = String, Path)),
    responses((status = 200, body = VulnerabilityDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_vulnerability(
    State(s): State<AppState>,
    c: Caller,
    Path(cve): Path<String>,
) -> ApiResult<J<VulnerabilityDetail>> {
    let (facts, findings) = s.engine.vulnerability(&c.principal, &cve).await?;
    Ok(J(VulnerabilityDetail { facts, findings: findings.items }))
}

/// Software across the fleet: each title (name and version) with the number of devices
/// that have it.
#[utoipa::path(get, path = "/api/v1/software", tag = "inventory", params(SoftwareQuery),
    responses((status = 200, body = Vec<TitleSummary>)))]
async fn list_software(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<SoftwareQuery>,
) -> ApiResult<J<Vec<TitleSummary>>> {
    Ok(J(s.engine.software(&c.principal, q.search.as_deref(), q.limit.unwrap_or(200)).await?))
}

/// Alerts: newly published CVEs and new KEV entries that touch the fleet.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "vulnerabilities", responses((status = 200, body = Vec<Alert>)))]
async fn list_alerts(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<Alert>>> {
    Ok(J(s.engine.alerts(&c.principal).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertsRead {
    pub marked: u64,
}

/// Marks every alert read.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "vulnerabilities",
    responses((status = 200, body = AlertsRead), (status = 403, body = ErrorBody)))]
async fn read_alerts(State(s): State<AppState>, c: Caller) -> ApiResult<J<AlertsRead>> {
    Ok(J(AlertsRead { marked: s.engine.mark_alerts_read(&c.principal).await? }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedStatus {
    pub runs: Vec<FeedRun>,
    /// Records stored, by kind.
    pub stored: Vec<(String, i64)>,
}

/// The vulnerability feeds: latest imports and syncs and how much data is stored.
#[utoipa::path(get, path = "/api/v1/feeds", tag = "vulnerabilities", responses((status = 200, body = FeedStatus)))]
async fn feed_status(State(s): State<AppState>, c: Caller) -> ApiResult<J<FeedStatus>> {
    let (runs, stored) = s.engine.feed_status(&c.principal).await?;
    Ok(J(FeedStatus { runs, stored }))
}

pub fn agents_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_enrollment_tokens, create_enrollment_token))
        .routes(routes!(revoke_enrollment_token))
        .routes(routes!(device_agent))
        .routes(routes!(enroll))
        .routes(routes!(agent_checkin))
}

/// A site's enrollment tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/enrollment-tokens", tag = "agents",
    responses((status = 200, body = Vec<ringfence_model::EnrollmentToken>)))]
async fn list_enrollment_tokens(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<J<Vec<ringfence_model::EnrollmentToken>>> {
    Ok(J(s.engine.enrollment_tokens(&c.principal).await?))
}

/// Creates an enrollment token for a site; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/enrollment-tokens", tag = "agents", request_body = ringfence_proto::CreateEnrollmentToken,
    responses((status = 201, body = ringfence_proto::CreatedEnrollmentToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_enrollment_token(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<ringfence_proto::CreateEnrollmentToken>,
) -> ApiResult<(axum::http::StatusCode, J<ringfence_proto::CreatedEnrollmentToken>)> {
    Ok((axum::http::StatusCode::CREATED, J(s.engine.create_enrollment_token(&c.principal, &req).await?)))
}

/// Revokes an enrollment token at once.
#[utoipa::path(delete, path = "/api/v1/enrollment-tokens/{id}", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = ringfence_model::EnrollmentToken), (status = 404, body = ErrorBody)))]
async fn revoke_enrollment_token(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<ringfence_model::EnrollmentToken>> {
    Ok(J(s.engine.revoke_enrollment_token(&c.principal, &id).await?))
}

/// The agent of a device: last seen, version, reboot-required, the last inventory report
/// applied, and the device it is a clone of (its machine-id enrolled before). `null` when
/// no agent enrolled this device.
#[utoipa::path(get, path = "/api/v1/devices/{id}/agent", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = Option<ringfence_engine::store::AgentState>), (status = 404, body = ErrorBody)))]
async fn device_agent(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<Option<ringfence_engine::store::AgentState>>> {
    Ok(J(s.engine.agent_state(&c.principal, &id).await?))
}

/// Enrolls a device with a site's enrollment token (called by `ringfence-agent enroll`).
#[utoipa::path(post, path = "/api/agent/v1/enroll", tag = "agents", request_body = ringfence_proto::EnrollRequest,
    responses((status = 200, body = ringfence_proto::EnrollResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn enroll(
    State(s): State<AppState>,
    Json(req): Json<ringfence_proto::EnrollRequest>,
) -> ApiResult<J<ringfence_proto::EnrollResponse>> {
    Ok(J(s.engine.enroll(&req).await?))
}
