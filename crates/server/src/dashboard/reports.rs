//! Dashboard pages of client reports (generate, download, schedules) and compliance
//! (remediation deadlines, the compliance trend and MTTR charts, the auditor's evidence export).

use super::intel::short;
use super::{CsrfForm, Layout, Viewer, done, layout, msg, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use ringfence_engine::EngineError;
use ringfence_engine::reports::{ClientReport, SlaOverview};
use ringfence_engine::store::{ReportListItem, ReportSchedule};
use ringfence_model::*;
use ringfence_proto as proto;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct OrgParams {
    organization_id: Option<String>,
    #[allow(dead_code)]
    error: Option<String>,
    #[allow(dead_code)]
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    layout: Layout,
    list: crate::list::ListState,
    orgs: Vec<Organization>,
    selected: String,
    reports: Vec<ReportListItem>,
    schedules: Vec<(ReportSchedule, String)>,
    can_manage: bool,
}

pub(super) async fn reports(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    use crate::list::{Key, ListState};
    let mut list = match ListState::read(
        "/reports",
        uri.query().unwrap_or(""),
        &["client", "period", "generated"],
        "generated",
        true,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let q = OrgParams {
        organization_id: Some(list.filter("organization_id").to_owned()).filter(|o| !o.is_empty()),
        ..Default::default()
    };
    let p = &v.0.principal;
    let result = async {
        let orgs = s.engine.organizations(p).await?;
        let reports = s.engine.reports(p, q.organization_id.as_deref()).await?;
        let schedules = s.engine.report_schedules(p).await?;
        Ok::<_, EngineError>((orgs, reports, schedules))
    }
    .await;
    match result {
        Ok((orgs, reports, schedules)) => {
            let name = |id: &OrganizationId| {
                orgs.iter().find(|o| &o.id == id).map(|o| o.name.to_string()).unwrap_or_default()
            };
            let schedules = schedules
                .into_iter()
                .map(|s| {
                    let n = name(&s.organization_id);
                    (s, n)
                })
                .collect();
            let reports = list.page_of(reports, |r, col| match col {
                "client" => Key::from(r.organization.as_str()),
                "period" => Key::from(r.period_start),
                _ => Key::from(r.generated_at),
            });
            if list.csv {
                return crate::list::csv_response(
                    "reports",
                    &["client", "period", "generated (UTC)", "by", "delivery"],
                    reports.iter().map(|r| {
                        vec![
                            r.organization.clone(),
                            ringfence_engine::reports::period_label(r.period_start, r.period_end),
                            short(&r.generated_at),
                            r.generated_by.clone(),
                            r.delivery.clone(),
                        ]
                    }),
                );
            }
            render(ReportsPage {
                layout: layout(&v, "Reports", "reports", &uri),
                selected: q.organization_id.unwrap_or_default(),
                orgs,
                reports,
                list,
                schedules,
                can_manage: p.allows(Permission::ManageReports),
            })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
pub(super) struct GenerateForm {
    #[allow(dead_code)]
    csrf: String,
    organization_id: String,
    period: String,
    #[serde(default)]
    email_to: String,
}

fn addresses(s: &str) -> Vec<String> {
    s.split([',', ';', ' ', '\n']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
}

pub(super) async fn generate(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<GenerateForm>,
) -> Response {
    let req = proto::ReportRequest {
        organization_id: f.organization_id,
        period: Some(f.period),
        email_to: addresses(&f.email_to),
        ..Default::default()
    };
    match s.engine.generate_report(&v.0.principal, &req).await {
        Ok(r) => done(
            "/reports",
            Ok(format!(
                "report for {} made{}",
                r.organization,
                if r.delivery.is_empty() { String::new() } else { format!(" ({})", r.delivery) }
            )),
        ),
        Err(e) => done("/reports", Err(msg(e))),
    }
}

pub(super) async fn download(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    Path((id, format)): Path<(String, String)>,
) -> Response {
    match s.engine.report(&v.0.principal, &id).await {
        Ok(r) => crate::api_reports::report_download(r, &format),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
pub(super) struct ScheduleForm {
    #[allow(dead_code)]
    csrf: String,
    organization_id: String,
    cadence: String,
    recipients: String,
}

pub(super) async fn schedule(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<ScheduleForm>,
) -> Response {
    let req = proto::ReportScheduleInput {
        organization_id: f.organization_id,
        cadence: f.cadence,
        recipients: addresses(&f.recipients),
    };
    match s.engine.create_report_schedule(&v.0.principal, &req).await {
        Ok(s) => done("/reports", Ok(format!("scheduled {}; first run {}", s.cadence, short(&s.next_run)))),
        Err(e) => done("/reports", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[allow(dead_code)]
    csrf: String,
}

pub(super) async fn unschedule(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.delete_report_schedule(&v.0.principal, &id).await {
        Ok(()) => done("/reports", Ok("schedule removed".into())),
        Err(e) => done("/reports", Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "compliance.html")]
struct CompliancePage {
    layout: Layout,
    orgs: Vec<Organization>,
    selected: String,
    sla: SlaOverview,
    /// The chosen client's overdue and due-soon findings, one row per CVE and product.
    breached: Vec<DeadlineGroup>,
    due_soon: Vec<DeadlineGroup>,
    report: Option<ClientReport>,
    trend_svg: String,
    mttr_svg: String,
    /// The server's signing key (hex) and its id, for auditors to pin.
    signing_key: Option<(String, String)>,
}

/// Findings of one CVE and product past (or near) their deadline, with the devices they are on.
pub(super) struct DeadlineGroup {
    cve_id: String,
    product: String,
    severity: String,
    kev: bool,
    /// The earliest deadline of the group.
    due: Timestamp,
    hours_left: i64,
    devices: Vec<(DeviceId, String)>,
}

fn group_deadlines(items: &[ringfence_engine::reports::SlaItem]) -> Vec<DeadlineGroup> {
    let mut out: Vec<DeadlineGroup> = Vec::new();
    for i in items {
        match out.iter_mut().find(|g| g.cve_id == i.cve_id && g.product == i.product) {
            Some(g) => {
                if i.due < g.due {
                    g.due = i.due;
                    g.hours_left = i.hours_left;
                }
                g.devices.push((i.device_id.clone(), i.hostname.clone()));
            }
            None => out.push(DeadlineGroup {
                cve_id: i.cve_id.clone(),
                product: i.product.clone(),
                severity: i.severity.clone(),
                kev: i.kev,
                due: i.due,
                hours_left: i.hours_left,
                devices: vec![(i.device_id.clone(), i.hostname.clone())],
            }),
        }
    }
    out.sort_by(|a, b| b.kev.cmp(&a.kev).then(a.due.cmp(&b.due)).then(b.devices.len().cmp(&a.devices.len())));
    out
}

/// Deadlines (breached and due soon), the chosen organization's compliance trend and MTTR
/// over the last 90 days, and the evidence export.
pub(super) async fn compliance(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let q: OrgParams = parse_query(uri.query().unwrap_or("")).unwrap_or_default();
    let p = &v.0.principal;
    let result = async {
        let orgs = s.engine.organizations(p).await?;
        let selected = q
            .organization_id
            .clone()
            .filter(|o| !o.is_empty())
            .or_else(|| orgs.first().map(|o| o.id.to_string()))
            .unwrap_or_default();
        // The deadlines follow the client chosen (the first one until one is).
        let sla = s.engine.sla_overview(p, Some(selected.as_str()).filter(|x| !x.is_empty())).await?;
        let report = if selected.is_empty() {
            None
        } else {
            let now = s.engine.now();
            let from = now - jiff::SignedDuration::from_hours(90 * 24);
            Some(s.engine.client_report(p, &selected, from, now).await?)
        };
        Ok::<_, EngineError>((orgs, selected, sla, report))
    }
    .await;
    match result {
        Ok((orgs, selected, sla, report)) => {
            let (trend_svg, mttr_svg) = match &report {
                Some(r) => {
                    let points: Vec<(String, f64)> = r
                        .trend
                        .iter()
                        .map(|t| (t.at.strftime("%d %b").to_string(), t.patched_percent))
                        .collect();
                    let mttr: Vec<(String, Option<f64>)> =
                        r.mttr.iter().map(|m| (m.severity.clone(), m.mean_days)).collect();
                    (
                        ringfence_engine::charts::line_percent(
                            "Devices fully patched, last 90 days",
                            &points,
                        ),
                        ringfence_engine::charts::bars("Mean days to remediate, by severity", "days", &mttr),
                    )
                }
                None => (String::new(), String::new()),
            };
            let breached = group_deadlines(&sla.breached);
            let due_soon = group_deadlines(&sla.due_soon);
            let signing_key = match s.engine.server_public_key().await {
                Ok(k) => Some((ringfence_engine::agents::key_fingerprint(&k), k)),
                Err(_) => None,
            };
            render(CompliancePage {
                signing_key,
                layout: layout(&v, "Compliance", "compliance", &uri),
                orgs,
                selected,
                sla,
                breached,
                due_soon,
                report,
                trend_svg,
                mttr_svg,
            })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize, Default)]
struct ExportParams {
    organization_id: String,
    #[serde(default)]
    days: Option<u32>,
}

/// The evidence bundle as a download (auditors may; the export is recorded as evidence).
pub(super) async fn export(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let q: ExportParams = match parse_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return done("/compliance", Err(e.body.message)),
    };
    let req =
        proto::EvidenceExportQuery { organization_id: q.organization_id, days: q.days, ..Default::default() };
    match crate::api_reports::evidence_download(&s, &v.0.principal, &req).await {
        Ok(r) => r,
        Err(e) => viewer_error(&v, &uri, e),
    }
}
