//! The REST API of policies, the update catalog, the remediation queue, approvals,
//! exceptions and risk decisions.

use crate::AppState;
use crate::api_intel::AgentCaller;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::Json as J;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ringfence_engine::policies::{EffectivePolicy, PolicyPreview};
use ringfence_engine::remediation::{CatalogEntry, QueueItem};
use ringfence_engine::store::{ApprovalRecord, ExceptionRecord, PolicyRecord, RiskDecisionRecord};
use ringfence_proto::{
    AgentPendingUpdates, CreateException, CreateRiskDecision, DecisionRequest, ErrorBody, PolicyInput,
    PolicyPreviewRequest, QueueQuery,
};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(preview_policy))
        .routes(routes!(effective_policy))
        .routes(routes!(device_updates))
        .routes(routes!(queue))
        .routes(routes!(list_approvals, decide))
        .routes(routes!(confirm_approval))
        .routes(routes!(run_rules))
        .routes(routes!(list_exceptions, create_exception))
        .routes(routes!(revoke_exception))
        .routes(routes!(list_risk_decisions, create_risk_decision))
        .routes(routes!(revoke_risk_decision))
        .routes(routes!(schedule))
        .routes(routes!(list_halts, halt))
        .routes(routes!(release_halt))
        .routes(routes!(organization_windows))
}

/// An organization's maintenance windows as iCalendar (text/calendar), for a client to
/// subscribe to or import: one recurring event per distinct window and time zone.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/windows.ics", tag = "schedule",
    responses((status = 200, content_type = "text/calendar", body = String), (status = 404, body = ErrorBody)))]
async fn organization_windows(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let body = s.engine.organization_windows_ics(&c.principal, &id).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/calendar; charset=utf-8")], body).into_response())
}

/// Every halt of the partner (the MSP-wide circuit breaker), newest first.
#[utoipa::path(get, path = "/api/v1/rollouts/halts", tag = "schedule",
    responses((status = 200, body = Vec<ringfence_engine::store::HaltRecord>)))]
async fn list_halts(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<J<Vec<ringfence_engine::store::HaltRecord>>> {
    Ok(J(s.engine.halts(&c.principal).await?))
}

/// Halts an update for every client of the partner until a technician releases it.
#[utoipa::path(post, path = "/api/v1/rollouts/halts", tag = "schedule", request_body = ringfence_proto::HaltRequest,
    responses((status = 201, body = ringfence_engine::store::HaltRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn halt(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<ringfence_proto::HaltRequest>,
) -> ApiResult<(StatusCode, J<ringfence_engine::store::HaltRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.halt_update(&c.principal, &req).await?)))
}

/// Releases a halt, with a reason: the update goes on ring by ring.
#[utoipa::path(post, path = "/api/v1/rollouts/halts/{id}/release", tag = "schedule", request_body = ringfence_proto::ReleaseRequest,
    responses((status = 200, body = ringfence_engine::store::HaltRecord), (status = 404, body = ErrorBody)))]
async fn release_halt(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<ringfence_proto::ReleaseRequest>,
) -> ApiResult<J<ringfence_engine::store::HaltRecord>> {
    Ok(J(s.engine.release_halt(&c.principal, &id, &req).await?))
}

/// When each approved update is expected to land on each device of the caller's scope (or of
/// one organization or device), and why later ones wait: the rollout planner's forecast.
#[utoipa::path(get, path = "/api/v1/schedule", tag = "schedule",
    params(ringfence_proto::ScheduleQuery),
    responses((status = 200, body = ringfence_engine::schedule::SchedulePreview), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn schedule(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<ringfence_proto::ScheduleQuery>,
) -> ApiResult<J<ringfence_engine::schedule::SchedulePreview>> {
    Ok(J(s.engine.schedule_preview(&c.principal, &q).await?))
}

/// Agent routes with the larger body limit.
pub fn agent_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agent_updates))
}

#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, body = Vec<PolicyRecord>)))]
async fn list_policies(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<PolicyRecord>>> {
    Ok(J(s.engine.policies(&c.principal).await?))
}

/// Creates a policy. Its settings are checked field by field; a tie with another policy of
/// the same level and priority is refused (409) and names both.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = PolicyInput,
    responses((status = 201, body = PolicyRecord), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_policy(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<PolicyInput>,
) -> ApiResult<(StatusCode, J<PolicyRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_policy(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = PolicyRecord), (status = 404, body = ErrorBody)))]
async fn get_policy(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<PolicyRecord>> {
    Ok(J(s.engine.policy(&c.principal, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)), request_body = PolicyInput,
    responses((status = 200, body = PolicyRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_policy(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<PolicyInput>,
) -> ApiResult<J<PolicyRecord>> {
    Ok(J(s.engine.update_policy(&c.principal, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_policy(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_policy(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which devices saving (or, without `policy`, deleting) a policy would change, and how.
/// Nothing is saved.
#[utoipa::path(post, path = "/api/v1/policies/preview", tag = "policies", request_body = PolicyPreviewRequest,
    responses((status = 200, body = PolicyPreview), (status = 422, body = ErrorBody)))]
async fn preview_policy(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<PolicyPreviewRequest>,
) -> ApiResult<J<PolicyPreview>> {
    Ok(J(s.engine.preview_policy(&c.principal, &req).await?))
}

/// A device's effective policy; every field says which policy at which level set it.
#[utoipa::path(get, path = "/api/v1/devices/{id}/effective-policy", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = EffectivePolicy), (status = 404, body = ErrorBody)))]
async fn effective_policy(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<EffectivePolicy>> {
    Ok(J(s.engine.effective_policy(&c.principal, &id).await?))
}

/// A device's available updates (the catalog), classified, with the CVEs each fixes.
#[utoipa::path(get, path = "/api/v1/devices/{id}/updates", tag = "remediation", params(("id" = String, Path)),
    responses((status = 200, body = Vec<CatalogEntry>), (status = 404, body = ErrorBody)))]
async fn device_updates(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<Vec<CatalogEntry>>> {
    Ok(J(s.engine.device_updates(&c.principal, &id).await?))
}

/// The remediation queue: findings grouped by the update that fixes them, highest risk
/// removed first, each with its state per organization and why.
#[utoipa::path(get, path = "/api/v1/remediation-queue", tag = "remediation", params(QueueQuery),
    responses((status = 200, body = Vec<QueueItem>), (status = 422, body = ErrorBody)))]
async fn queue(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<QueueQuery>,
) -> ApiResult<J<Vec<QueueItem>>> {
    Ok(J(s.engine.remediation_queue(&c.principal, &q).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<i64>,
}

/// Decisions on updates, newest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "remediation", params(LimitQuery),
    responses((status = 200, body = Vec<ApprovalRecord>)))]
async fn list_approvals(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<LimitQuery>,
) -> ApiResult<J<Vec<ApprovalRecord>>> {
    Ok(J(s.engine.approvals(&c.principal, q.limit.unwrap_or(200)).await?))
}

/// Approves, rejects or defers updates in bulk, with a reason, for the partner or one
/// organization. An emergency override may need a second approver (policy).
#[utoipa::path(post, path = "/api/v1/approvals", tag = "remediation", request_body = DecisionRequest,
    responses((status = 201, body = Vec<ApprovalRecord>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<(StatusCode, J<Vec<ApprovalRecord>>)> {
    Ok((StatusCode::CREATED, J(s.engine.decide(&c.principal, &req).await?)))
}

/// The second approval of an emergency override (by someone else).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/confirm", tag = "remediation", params(("id" = String, Path)),
    responses((status = 200, body = ApprovalRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn confirm_approval(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<ApprovalRecord>> {
    Ok(J(s.engine.confirm_approval(&c.principal, &id).await?))
}

/// Runs the approval rules now (the server also runs them hourly); returns what they approved.
#[utoipa::path(post, path = "/api/v1/approvals/run-rules", tag = "remediation",
    responses((status = 200, body = Vec<ApprovalRecord>)))]
async fn run_rules(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<ApprovalRecord>>> {
    Ok(J(s.engine.run_approval_rules(&c.principal).await?))
}

#[utoipa::path(get, path = "/api/v1/exceptions", tag = "remediation",
    responses((status = 200, body = Vec<ExceptionRecord>)))]
async fn list_exceptions(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<ExceptionRecord>>> {
    Ok(J(s.engine.exceptions(&c.principal).await?))
}

/// Records a client exception: pin or exclude software by name and version range, with
/// owner, reason and expiry.
#[utoipa::path(post, path = "/api/v1/exceptions", tag = "remediation", request_body = CreateException,
    responses((status = 201, body = ExceptionRecord), (status = 422, body = ErrorBody)))]
async fn create_exception(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateException>,
) -> ApiResult<(StatusCode, J<ExceptionRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_exception(&c.principal, &req).await?)))
}

#[utoipa::path(post, path = "/api/v1/exceptions/{id}/revoke", tag = "remediation", params(("id" = String, Path)),
    responses((status = 200, body = ExceptionRecord), (status = 404, body = ErrorBody)))]
async fn revoke_exception(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<ExceptionRecord>> {
    Ok(J(s.engine.revoke_exception(&c.principal, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/risk-decisions", tag = "remediation",
    responses((status = 200, body = Vec<RiskDecisionRecord>)))]
async fn list_risk_decisions(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<RiskDecisionRecord>>> {
    Ok(J(s.engine.risk_decisions(&c.principal).await?))
}

/// Marks a finding with no patch yet as mitigated (naming the compensating control) or
/// risk-accepted, until an expiry.
#[utoipa::path(post, path = "/api/v1/risk-decisions", tag = "remediation", request_body = CreateRiskDecision,
    responses((status = 201, body = RiskDecisionRecord), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_risk_decision(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateRiskDecision>,
) -> ApiResult<(StatusCode, J<RiskDecisionRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_risk_decision(&c.principal, &req).await?)))
}

#[utoipa::path(post, path = "/api/v1/risk-decisions/{id}/revoke", tag = "remediation", params(("id" = String, Path)),
    responses((status = 200, body = RiskDecisionRecord), (status = 404, body = ErrorBody)))]
async fn revoke_risk_decision(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<RiskDecisionRecord>> {
    Ok(J(s.engine.revoke_risk_decision(&c.principal, &id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UpdatesAck {
    pub stored: usize,
}

/// An agent's list of pending updates; it replaces the device's catalog.
#[utoipa::path(post, path = "/api/agent/v1/updates", tag = "agents", request_body = AgentPendingUpdates,
    responses((status = 200, body = UpdatesAck), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn agent_updates(
    State(s): State<AppState>,
    a: AgentCaller,
    Json(req): Json<AgentPendingUpdates>,
) -> ApiResult<J<UpdatesAck>> {
    Ok(J(UpdatesAck { stored: s.engine.agent_updates(&a.0, req).await? }))
}
