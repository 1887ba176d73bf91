//! The REST API of agentless network appliances: appliances (SNMP-polled, manual, CSV
//! import), the fleet's firmware, SNMP credentials (write-only secrets), collectors,
//! discovery sweeps, partner-wide mappings, maintenance tasks, and the collector's own
//! endpoints under `/api/agent/v1/collector`.

use crate::AppState;
use crate::api_intel::AgentCaller;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::Json as J;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ringfence_engine::appliances::{ApplianceView, FirmwareGroup};
use ringfence_engine::store::{
    ApplianceQuery, ApplianceRecord, CollectorRecord, CredentialRecord, MappingRecord, ScanRecord, TaskRecord,
};
use ringfence_model::OrganizationId;
use ringfence_proto::ErrorBody;
use ringfence_proto::appliances::*;
use ringfence_proto::collector::{CollectorLease, CollectorReport, CollectorReportAck};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_appliances, create_appliance))
        .routes(routes!(get_appliance))
        .routes(routes!(confirm_appliance))
        .routes(routes!(import_appliances))
        .routes(routes!(firmware))
        .routes(routes!(list_credentials, create_credential))
        .routes(routes!(delete_credential))
        .routes(routes!(list_collectors, add_collector))
        .routes(routes!(remove_collector))
        .routes(routes!(list_scans, create_scan))
        .routes(routes!(list_mappings, create_mapping))
        .routes(routes!(list_tasks))
        .routes(routes!(task_done))
        .routes(routes!(assign_task))
        .routes(routes!(collector_jobs))
}

/// The collector's report, under the larger body limit of inventory reports (a poll of
/// thousands of appliances).
pub fn collector_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(collector_report))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplianceFilter {
    pub organization_id: Option<String>,
    /// The firmware product ("FortiOS").
    pub product: Option<String>,
    pub firmware: Option<String>,
    /// Only appliances the table and mappings do not identify.
    #[serde(default)]
    pub unidentified: bool,
}

impl ApplianceFilter {
    pub fn query(&self) -> Result<ApplianceQuery, ringfence_engine::EngineError> {
        let organization_id = match self.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(o) => Some(
                OrganizationId::parse(o)
                    .map_err(|_| ringfence_engine::EngineError::NotFound("organization"))?,
            ),
            None => None,
        };
        Ok(ApplianceQuery {
            organization_id,
            product: self.product.clone().filter(|s| !s.is_empty()),
            firmware: self.firmware.clone().filter(|s| !s.is_empty()),
            unidentified: self.unidentified,
        })
    }
}

/// Appliances in the caller's scope, each with its open findings (KEV first).
#[utoipa::path(get, path = "/api/v1/appliances", tag = "appliances", params(ApplianceFilter),
    responses((status = 200, body = Vec<ApplianceView>)))]
async fn list_appliances(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<ApplianceFilter>,
) -> ApiResult<J<Vec<ApplianceView>>> {
    Ok(J(s.engine.appliances(&c.principal, &q.query()?).await?))
}

/// Adds an appliance: `source` `snmp` (address, collector, credential; polled on schedule)
/// or `manual` (vendor, model, firmware; correlated at once).
#[utoipa::path(post, path = "/api/v1/appliances", tag = "appliances", request_body = CreateAppliance,
    responses((status = 201, body = ApplianceRecord), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_appliance(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateAppliance>,
) -> ApiResult<(StatusCode, J<ApplianceRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.add_appliance(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/appliances/{id}", tag = "appliances", params(("id" = String, Path)),
    responses((status = 200, body = ApplianceView), (status = 404, body = ErrorBody)))]
async fn get_appliance(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<J<ApplianceView>> {
    Ok(J(s.engine.appliance(&c.principal, &id).await?))
}

/// Confirms (or corrects) a manually reported appliance's firmware.
#[utoipa::path(post, path = "/api/v1/appliances/{id}/confirm", tag = "appliances", params(("id" = String, Path)),
    request_body = ConfirmAppliance,
    responses((status = 200, body = ApplianceRecord), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn confirm_appliance(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<ConfirmAppliance>,
) -> ApiResult<J<ApplianceRecord>> {
    Ok(J(s.engine.confirm_appliance(&c.principal, &id, &req).await?))
}

/// Imports manually reported appliances from CSV: all rows or none, every bad row named.
#[utoipa::path(post, path = "/api/v1/appliances/import", tag = "appliances", request_body = ImportAppliances,
    responses((status = 201, body = Vec<ApplianceRecord>), (status = 422, body = ErrorBody)))]
async fn import_appliances(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<ImportAppliances>,
) -> ApiResult<(StatusCode, J<Vec<ApplianceRecord>>)> {
    Ok((StatusCode::CREATED, J(s.engine.import_appliances(&c.principal, &req).await?)))
}

/// Every firmware in the fleet and how many clients run it, the most exposed first.
#[utoipa::path(get, path = "/api/v1/appliances/firmware", tag = "appliances",
    responses((status = 200, body = Vec<FirmwareGroup>)))]
async fn firmware(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<FirmwareGroup>>> {
    Ok(J(s.engine.firmware_fleet(&c.principal).await?))
}

/// SNMP credentials: names and versions only; a secret is never shown again.
#[utoipa::path(get, path = "/api/v1/snmp-credentials", tag = "appliances",
    responses((status = 200, body = Vec<CredentialRecord>)))]
async fn list_credentials(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<CredentialRecord>>> {
    Ok(J(s.engine.snmp_credentials(&c.principal).await?))
}

/// Adds an SNMP credential (v2c community, or v3 authPriv); it is sealed at once.
#[utoipa::path(post, path = "/api/v1/snmp-credentials", tag = "appliances", request_body = CreateSnmpCredential,
    responses((status = 201, body = CredentialRecord), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_credential(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateSnmpCredential>,
) -> ApiResult<(StatusCode, J<CredentialRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_snmp_credential(&c.principal, &req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/snmp-credentials/{id}", tag = "appliances", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_credential(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_snmp_credential(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/collectors", tag = "appliances",
    responses((status = 200, body = Vec<CollectorRecord>)))]
async fn list_collectors(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<CollectorRecord>>> {
    Ok(J(s.engine.collectors(&c.principal).await?))
}

/// Makes an enrolled agent its site's network collector.
#[utoipa::path(post, path = "/api/v1/collectors", tag = "appliances", request_body = AddCollector,
    responses((status = 201, body = CollectorRecord), (status = 422, body = ErrorBody)))]
async fn add_collector(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<AddCollector>,
) -> ApiResult<(StatusCode, J<CollectorRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.add_collector(&c.principal, &req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/collectors/{id}", tag = "appliances", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_collector(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.remove_collector(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/network-scans", tag = "appliances",
    responses((status = 200, body = Vec<ScanRecord>)))]
async fn list_scans(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<ScanRecord>>> {
    Ok(J(s.engine.scans(&c.principal).await?))
}

/// Queues a discovery sweep of a range (at most 4,096 addresses, at most 1,000 probes a
/// second) for a collector.
#[utoipa::path(post, path = "/api/v1/network-scans", tag = "appliances", request_body = CreateScan,
    responses((status = 201, body = ScanRecord), (status = 422, body = ErrorBody)))]
async fn create_scan(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateScan>,
) -> ApiResult<(StatusCode, J<ScanRecord>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_scan(&c.principal, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/appliance-mappings", tag = "appliances",
    responses((status = 200, body = Vec<MappingRecord>)))]
async fn list_mappings(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<MappingRecord>>> {
    Ok(J(s.engine.mappings_of(&c.principal).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MappingCreated {
    pub mapping: MappingRecord,
    /// Unidentified appliances the mapping identified at once.
    pub identified: usize,
}

/// Maps devices the table does not know, for the whole partner.
#[utoipa::path(post, path = "/api/v1/appliance-mappings", tag = "appliances", request_body = CreateMapping,
    responses((status = 201, body = MappingCreated), (status = 422, body = ErrorBody)))]
async fn create_mapping(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<CreateMapping>,
) -> ApiResult<(StatusCode, J<MappingCreated>)> {
    let (mapping, identified) = s.engine.create_mapping(&c.principal, &req).await?;
    Ok((StatusCode::CREATED, J(MappingCreated { mapping, identified })))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct TaskFilter {
    /// Only tasks still to do or to verify.
    #[serde(default)]
    pub open: bool,
}

/// Appliance maintenance tasks (the deployments of appliances), by window.
#[utoipa::path(get, path = "/api/v1/appliance-tasks", tag = "appliances", params(TaskFilter),
    responses((status = 200, body = Vec<TaskRecord>)))]
async fn list_tasks(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<TaskFilter>,
) -> ApiResult<J<Vec<TaskRecord>>> {
    Ok(J(s.engine.appliance_tasks(&c.principal, q.open).await?))
}

/// Marks a task done; the next poll verifies the firmware or opens the task again.
#[utoipa::path(post, path = "/api/v1/appliance-tasks/{id}/done", tag = "appliances", params(("id" = String, Path)),
    request_body = TaskDone,
    responses((status = 200, body = TaskRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn task_done(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<TaskDone>,
) -> ApiResult<J<TaskRecord>> {
    Ok(J(s.engine.task_done(&c.principal, &id, &req).await?))
}

#[utoipa::path(post, path = "/api/v1/appliance-tasks/{id}/assign", tag = "appliances", params(("id" = String, Path)),
    request_body = AssignTask,
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn assign_task(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
    Json(req): Json<AssignTask>,
) -> ApiResult<StatusCode> {
    s.engine.assign_task(&c.principal, &id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A collector takes its due polls and sweeps, signed for it (empty for other agents).
#[utoipa::path(post, path = "/api/agent/v1/collector/jobs", tag = "agents",
    responses((status = 200, body = CollectorLease), (status = 401, body = ErrorBody)))]
async fn collector_jobs(State(s): State<AppState>, a: AgentCaller) -> ApiResult<J<CollectorLease>> {
    Ok(J(s.engine.collector_lease(&a.0).await?))
}

/// A collector reports a job's results.
#[utoipa::path(post, path = "/api/agent/v1/collector/report", tag = "agents", request_body = CollectorReport,
    responses((status = 200, body = CollectorReportAck), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn collector_report(
    State(s): State<AppState>,
    a: AgentCaller,
    Json(req): Json<CollectorReport>,
) -> ApiResult<J<CollectorReportAck>> {
    Ok(J(s.engine.collector_report(&a.0, req).await?))
}
