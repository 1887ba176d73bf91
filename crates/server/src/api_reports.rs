//! The REST API of client reports (generate, list, download as HTML, CSV or PDF), report
//! schedules, remediation deadlines, and the organization's audit evidence bundle.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use axum::Json as J;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ringfence_engine::evidence::ExportSummary;
use ringfence_engine::reports::{ClientReport, SlaOverview};
use ringfence_engine::store::{ReportListItem, ReportSchedule};
use ringfence_proto::{ErrorBody, EvidenceExportQuery, ReportRequest, ReportScheduleInput};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reports, generate_report))
        .routes(routes!(report_figures))
        .routes(routes!(report_file))
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(delete_schedule))
        .routes(routes!(sla))
        .routes(routes!(overview))
        .routes(routes!(export_evidence))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct OrgFilter {
    pub organization_id: Option<String>,
}

/// The reports kept for the caller's scope, newest first.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(OrgFilter),
    responses((status = 200, body = Vec<ReportListItem>)))]
async fn list_reports(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<OrgFilter>,
) -> ApiResult<J<Vec<ReportListItem>>> {
    Ok(J(s.engine.reports(&c.principal, q.organization_id.as_deref()).await?))
}

/// Generates and keeps a client report (HTML, CSV and, with Chromium, PDF); mails it when
/// `email_to` is given.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", request_body = ReportRequest,
    responses((status = 201, body = ReportListItem), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn generate_report(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<ReportRequest>,
) -> ApiResult<(StatusCode, J<ReportListItem>)> {
    Ok((StatusCode::CREATED, J(s.engine.generate_report(&c.principal, &req).await?)))
}

/// A kept report's figures.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = String, Path)),
    responses((status = 200, body = ClientReport), (status = 404, body = ErrorBody)))]
async fn report_figures(State(s): State<AppState>, c: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let r = s.engine.report(&c.principal, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], r.summary).into_response())
}

/// A kept report as `html`, `csv` or `pdf`.
#[utoipa::path(get, path = "/api/v1/reports/{id}/{format}", tag = "reports",
    params(("id" = String, Path), ("format" = String, Path, description = "html, csv or pdf")),
    responses((status = 200, description = "the report file"), (status = 404, body = ErrorBody)))]
async fn report_file(
    State(s): State<AppState>,
    c: Caller,
    Path((id, format)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = s.engine.report(&c.principal, &id).await?;
    Ok(report_download(r, &format))
}

/// A report file as a download response (shared with the dashboard).
pub(crate) fn report_download(r: ringfence_engine::store::StoredReport, format: &str) -> Response {
    let name = format!("report-{}-{}", r.period_start.strftime("%Y-%m-%d"), &r.id[..8.min(r.id.len())]);
    let (mime, body, ext): (&str, Vec<u8>, &str) = match format {
        "html" => ("text/html; charset=utf-8", r.html.into_bytes(), "html"),
        "csv" => ("text/csv; charset=utf-8", r.csv.into_bytes(), "csv"),
        "pdf" => match r.pdf {
            Some(pdf) => ("application/pdf", pdf, "pdf"),
            None => {
                return crate::error::ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("this report has no PDF ({}); use html or csv", r.delivery),
                )
                .into_response();
            }
        },
        other => {
            return crate::error::ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "format",
                format!("'{other}' is not html, csv or pdf"),
            )
            .into_response();
        }
    };
    let disposition =
        if ext == "html" { "inline".to_owned() } else { format!("attachment; filename=\"{name}.{ext}\"") };
    ([(header::CONTENT_TYPE, mime.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/report-schedules", tag = "reports",
    responses((status = 200, body = Vec<ReportSchedule>)))]
async fn list_schedules(State(s): State<AppState>, c: Caller) -> ApiResult<J<Vec<ReportSchedule>>> {
    Ok(J(s.engine.report_schedules(&c.principal).await?))
}

/// Schedules an organization's report, `monthly` or `weekly`, mailed to the recipients.
#[utoipa::path(post, path = "/api/v1/report-schedules", tag = "reports", request_body = ReportScheduleInput,
    responses((status = 201, body = ReportSchedule), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_schedule(
    State(s): State<AppState>,
    c: Caller,
    Json(req): Json<ReportScheduleInput>,
) -> ApiResult<(StatusCode, J<ReportSchedule>)> {
    Ok((StatusCode::CREATED, J(s.engine.create_report_schedule(&c.principal, &req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/report-schedules/{id}", tag = "reports", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_schedule(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_report_schedule(&c.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Findings past their remediation deadline and those due within 7 days.
/// Every client of the caller's scope, most exposed first, with the fleet's totals: the
/// dashboard's overview.
#[utoipa::path(get, path = "/api/v1/overview", tag = "reports",
    responses((status = 200, body = ringfence_engine::overview::Overview)))]
async fn overview(
    State(s): State<AppState>,
    c: Caller,
) -> ApiResult<J<ringfence_engine::overview::Overview>> {
    Ok(J(s.engine.overview(&c.principal).await?))
}

#[utoipa::path(get, path = "/api/v1/sla", tag = "reports", params(OrgFilter),
    responses((status = 200, body = SlaOverview), (status = 404, body = ErrorBody)))]
async fn sla(State(s): State<AppState>, c: Caller, Query(q): Query<OrgFilter>) -> ApiResult<J<SlaOverview>> {
    Ok(J(s.engine.sla_overview(&c.principal, q.organization_id.as_deref()).await?))
}

/// An organization's audit evidence bundle (zip) for a window; verify it offline with
/// `ringfence evidence verify --bundle FILE`. Needs the evidence permission (auditors have it).
#[utoipa::path(get, path = "/api/v1/evidence/export", tag = "evidence", params(EvidenceExportQuery),
    responses((status = 200, description = "the bundle (application/zip)", body = ExportSummary), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export_evidence(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<EvidenceExportQuery>,
) -> ApiResult<Response> {
    Ok(evidence_download(&s, &c.principal, &q).await?)
}

/// Exports building at once: each holds its bundle in memory until it is sent.
static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Exports a bundle into memory and answers it as a download (shared with the dashboard).
pub(crate) async fn evidence_download(
    s: &AppState,
    p: &ringfence_model::Principal,
    q: &EvidenceExportQuery,
) -> Result<Response, ringfence_engine::EngineError> {
    let _turn = EXPORTS
        .acquire()
        .await
        .map_err(|_| ringfence_engine::EngineError::Conflict("the server is shutting down".into()))?;
    let mut buf = std::io::Cursor::new(Vec::new());
    let summary = s.engine.export_evidence(p, q, &mut buf).await?;
    let name = format!(
        "evidence-{}-{}.zip",
        summary.organization.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
        summary.last_seq
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::HeaderName::from_static("x-ringfence-key-id"), summary.key_id.clone()),
        ],
        buf.into_inner(),
    )
        .into_response())
}
