//! The REST API of rollouts, deployments, rollbacks and package holds, and the agent's job
//! endpoints (lease and report).

use crate::AppState;
use crate::api_intel::AgentCaller;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::Json as J;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ringfence_engine::deploy::{DispatchSummary, RollbackSummary, RolloutView};
use ringfence_engine::store::{DeploymentRecord, HoldRecord};
use ringfence_proto::jobs::{JobLease, JobReport, JobReportAck};
use ringfence_proto::{DeploymentListQuery, ErrorBody, RollbackRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rollouts))
        .routes(routes!(rollback))
        .routes(routes!(dispatch))
        .routes(routes!(deployments))
        .routes(routes!(deployment))
        .routes(routes!(retry))
        .routes(routes!(holds))
        .routes(routes!(clear_hold))
        .routes(routes!(agent_lease))
        .routes(routes!(agent_report))
}

/// Every update with deployments or devices waiting for it, ring by ring: waiting, pending,
/// running, succeeded, failed, missed, each ring's gate, and the halt when there is one.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "deployments",
    responses((status = 200, body = Vec<RolloutView>)))]
async fn rollouts(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<RolloutView>>> {
    Ok(J(s.engine.rollouts(&c.principal).await?))
}

/// Rolls an update back on one device (`device_id`), one organization (`organization_id`) or
/// every device of the partner (neither; this also halts the update). Each device goes back
/// to the version it had, which is then held.
#[utoipa::path(post, path = "/api/v1/rollouts/rollback", tag = "deployments", request_body = RollbackRequest,
    responses((status = 200, body = RollbackSummary), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<RollbackRequest>,
) -> ApiResult<J<RollbackSummary>> {
    Ok(J(s.engine.rollback(&c.principal, &req).await?))
}

/// Runs the dispatcher now (it also runs every minute): missed windows, ring gates, and the
/// deployments of the next hour with their signed jobs.
#[utoipa::path(post, path = "/api/v1/rollouts/dispatch", tag = "deployments",
    responses((status = 200, body = DispatchSummary), (status = 403, body = ErrorBody)))]
async fn dispatch(State(s): State<AppState>, c: Caller) -> ApiResult<J<DispatchSummary>> {
    Ok(J(s.engine.dispatch(&c.principal).await?))
}

#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", params(DeploymentListQuery),
    responses((status = 200, body = Vec<DeploymentRecord>), (status = 422, body = ErrorBody)))]
async fn deployments(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<DeploymentListQuery>,
) -> ApiResult<J<Vec<DeploymentRecord>>> {
    Ok(J(s.engine.deployments(&c.principal, &q).await?))
}

/// One deployment with the agent's log of its last job.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = String, Path)),
    responses((status = 200, body = DeploymentRecord), (status = 404, body = ErrorBody)))]
async fn deployment(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<DeploymentRecord>> {
    Ok(J(s.engine.deployment(&c.principal, &id).await?))
}

/// Another attempt at a failed or missed install: the next dispatch offers the update to the
/// device again, and its ring's gate no longer counts the failure.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/retry", tag = "deployments", params(("id" = String, Path)),
    request_body = ringfence_proto::RetryRequest,
    responses((status = 200, body = DeploymentRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<ringfence_proto::RetryRequest>,
) -> ApiResult<J<DeploymentRecord>> {
    Ok(J(s.engine.retry_deployment(&c.principal, &id, &req.reason).await?))
}

/// Versions held on devices after a rollback, so the next cycle does not reinstall them.
#[utoipa::path(get, path = "/api/v1/holds", tag = "deployments",
    responses((status = 200, body = Vec<HoldRecord>)))]
async fn holds(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<HoldRecord>>> {
    Ok(J(s.engine.holds(&c.principal).await?))
}

/// Clears a hold: the held-back version may be deployed again.
#[utoipa::path(post, path = "/api/v1/holds/{id}/clear", tag = "deployments", params(("id" = String, Path)),
    responses((status = 200, body = HoldRecord), (status = 404, body = ErrorBody)))]
async fn clear_hold(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<HoldRecord>> {
    Ok(J(s.engine.clear_hold(&c.principal, &id).await?))
}

/// The agent takes its due jobs (signed; it verifies them against its pinned key).
#[utoipa::path(post, path = "/api/agent/v1/jobs", tag = "agents",
    responses((status = 200, body = JobLease), (status = 401, body = ErrorBody)))]
async fn agent_lease(State(s): State<AppState>, a: AgentCaller) -> ApiResult<J<JobLease>> {
    Ok(J(s.engine.agent_lease(&a.0).await?))
}

/// The agent reports a job (started, rebooting, succeeded, failed or refused); the same
/// report sent twice changes nothing the second time.
#[utoipa::path(post, path = "/api/agent/v1/jobs/report", tag = "agents", request_body = JobReport,
    responses((status = 200, body = JobReportAck), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn agent_report(
    State(s): State<AppState>,
    a: AgentCaller,
    Json(req): Json<JobReport>,
) -> ApiResult<(StatusCode, J<JobReportAck>)> {
    Ok((StatusCode::OK, J(s.engine.agent_report(&a.0, req).await?)))
}
