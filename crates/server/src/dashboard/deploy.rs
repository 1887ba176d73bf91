//! Dashboard pages of rollouts (each update ring by ring, halts, fleet rollback with a
//! confirmation step, holds) and deployments (per device, with the agent's log).

use super::intel::short;
use super::{CsrfForm, Layout, StaffViewer, Viewer, done, layout, msg, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use crate::list::{Key, ListState, csv_response};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use ringfence_engine::EngineError;
use ringfence_engine::deploy::RolloutView;
use ringfence_engine::store::{DeploymentRecord, HoldRecord};
use ringfence_model::*;
use ringfence_proto as proto;
use serde::Deserialize;

/// How an update is undone, in words ("uninstall the update", "previous driver").
pub fn rollback_words(s: &str) -> &str {
    ringfence_policy::catalog::Rollback::parse(s).map(|r| r.describe()).unwrap_or(s)
}

pub fn status_class(s: &str) -> &'static str {
    match s {
        "verified" | "complete" | "pass" => "ok",
        "failed" | "rolled_back" | "halted" | "fail" => "crit",
        "retried" => "",
        "missed" | "rebooting" | "pending" => "warn",
        _ => "",
    }
}

#[derive(Template)]
#[template(path = "rollouts.html")]
struct RolloutsPage {
    layout: Layout,
    rollouts: Vec<RolloutView>,
    holds: Vec<HoldRecord>,
    can_act: bool,
    partner_wide: bool,
}

/// Every update ring by ring, the holds, and the rollback and dispatch actions.
pub(super) async fn rollouts(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    let p = &v.0.principal;
    let result = async {
        let rollouts = s.engine.rollouts(p).await?;
        let holds = s.engine.holds(p).await?;
        Ok::<_, EngineError>((rollouts, holds))
    }
    .await;
    match result {
        Ok((rollouts, holds)) => render(RolloutsPage {
            layout: layout(&v, "Rollouts", "rollouts", &uri),
            rollouts,
            holds,
            can_act: p.allows(Permission::Approve),
            partner_wide: p.organization_id.is_none(),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize, Default)]
struct DeploymentParams {
    organization_id: Option<String>,
    device_id: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    product: Option<String>,
    version: Option<String>,
    /// Deployments changed within this many hours; `all` for every one (default 24).
    hours: Option<String>,
    #[allow(dead_code)]
    sort: Option<String>,
    #[allow(dead_code)]
    dir: Option<String>,
    #[allow(dead_code)]
    page: Option<String>,
    #[allow(dead_code)]
    format: Option<String>,
    #[allow(dead_code)]
    error: Option<String>,
    #[allow(dead_code)]
    notice: Option<String>,
}

/// A deployment with its client's name.
type Named = (DeploymentRecord, String);
/// Deployments of the view by status.
type StatusCounts = Vec<(&'static str, usize)>;

const DEPLOYMENT_COLUMNS: [&str; 7] = ["changed", "device", "client", "kind", "ring", "window", "status"];
use ringfence_engine::deploy::DEPLOYMENT_STATUSES as STATUSES;

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    layout: Layout,
    deployments: Vec<(DeploymentRecord, String)>,
    list: ListState,
    orgs: Vec<Organization>,
    /// Status → count in the current view without its status filter.
    counts: Vec<(&'static str, usize)>,
    all_count: usize,
    hours: String,
    update: String,
    truncated: bool,
}

impl DeploymentsPage {
    /// The link to the current view with `status` set (empty: any status).
    fn status_link(&self, status: &str) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for k in ["organization_id", "device_id", "kind", "product", "version"] {
            let v = self.list.filter(k);
            if !v.is_empty() {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("hours", &self.hours);
        if !status.is_empty() {
            ser.append_pair("status", status);
        }
        format!("/deployments?{}", ser.finish())
    }
}

/// Deployments, last 24 hours by default, with counts by status, filters, sorting, paging
/// and CSV export.
pub(super) async fn deployments(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let params: DeploymentParams = match parse_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return viewer_error(&v, &uri, EngineError::Invalid(ValueError::new("query", e.body.message)));
        }
    };
    let hours = params.hours.clone().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| "24".into());
    let changed_within_hours = if hours == "all" {
        None
    } else {
        match hours.trim().parse::<u32>() {
            Ok(h) => Some(h),
            Err(_) => {
                return viewer_error(
                    &v,
                    &uri,
                    EngineError::Invalid(ValueError::new("hours", "give a number of hours, or all")),
                );
            }
        }
    };
    let mut list = match ListState::read(
        "/deployments",
        uri.query().unwrap_or(""),
        &DEPLOYMENT_COLUMNS,
        "changed",
        true,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let p = &v.0.principal;
    let q = proto::DeploymentListQuery {
        organization_id: params.organization_id.clone(),
        device_id: params.device_id.clone(),
        status: None,
        kind: params.kind.clone().filter(|k| !k.is_empty()),
        product: params.product.clone(),
        version: params.version.clone(),
        changed_within_hours,
        limit: Some(10_000),
    };
    let status = params.status.clone().unwrap_or_default();
    if !status.is_empty() && !status.split(',').all(|s| STATUSES.contains(&s.trim())) {
        return viewer_error(
            &v,
            &uri,
            EngineError::Invalid(ValueError::new(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            )),
        );
    }
    let orgs = match s.engine.organizations(p).await {
        Ok(o) => o,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let names: std::collections::HashMap<OrganizationId, String> =
        orgs.iter().map(|o| (o.id.clone(), o.name.to_string())).collect();
    let named = |d: DeploymentRecord| {
        let org = names.get(&d.organization_id).cloned().unwrap_or_default();
        (d, org)
    };
    let (rows, counts, truncated): (Vec<Named>, StatusCounts, bool) = if q.product.is_some() {
        // One update's deployments (from Rollouts): few, and matched exactly after reading,
        // so they are sorted and paged here.
        let all = match s.engine.deployments(p, &q).await {
            Ok(a) => a,
            Err(e) => return viewer_error(&v, &uri, e),
        };
        let counts = STATUSES
            .iter()
            .map(|st| (*st, all.iter().filter(|d| d.status == *st).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let truncated = all.len() >= 10_000;
        let rows: Vec<(DeploymentRecord, String)> = all
            .into_iter()
            .filter(|d| status.is_empty() || status.split(',').any(|s| s.trim() == d.status))
            .map(named)
            .collect();
        let rows = list.page_of(rows, |(d, org), col| match col {
            "device" => Key::from(d.hostname.as_str()),
            "client" => Key::from(org.as_str()),
            "kind" => Key::from(d.kind.as_str()),
            "ring" => Key::from(i64::from(d.ring)),
            "window" => Key::from(d.window_start),
            "status" => Key::from(d.status.as_str()),
            _ => Key::from(d.updated_at),
        });
        (rows, counts, truncated)
    } else {
        // Sorted, counted and paged by the database.
        let q = proto::DeploymentListQuery {
            status: Some(status.clone()).filter(|s| !s.is_empty()),
            limit: Some(if list.csv { 10_000 } else { list.per_page }),
            ..q.clone()
        };
        let view = ringfence_engine::deploy::DeploymentPageView {
            sort: &list.sort,
            descending: list.desc,
            offset: if list.csv { 0 } else { list.offset() },
        };
        let (page, by_status) = match s.engine.deployment_page(p, &q, &view).await {
            Ok(x) => x,
            Err(e) => return viewer_error(&v, &uri, e),
        };
        let counts: Vec<(&'static str, usize)> = STATUSES
            .iter()
            .filter_map(|st| {
                by_status.iter().find(|(x, _)| x == st).map(|(_, n)| (*st, usize::try_from(*n).unwrap_or(0)))
            })
            .collect();
        list.total = counts
            .iter()
            .filter(|(st, _)| status.is_empty() || status.split(',').any(|s| s.trim() == *st))
            .map(|(_, n)| *n as i64)
            .sum();
        let truncated = list.csv && list.total > 10_000;
        (page.into_iter().map(named).collect(), counts, truncated)
    };
    let all_count: usize = counts.iter().map(|(_, n)| n).sum();
    if list.csv {
        return csv_response(
            "deployments",
            &[
                "device",
                "client",
                "kind",
                "ring",
                "updates",
                "window start (UTC)",
                "window end (UTC)",
                "status",
                "changed (UTC)",
                "detail",
            ],
            rows.iter().map(|(d, org)| {
                vec![
                    d.hostname.clone(),
                    org.clone(),
                    d.kind.clone(),
                    d.ring.to_string(),
                    d.updates
                        .iter()
                        .map(|u| format!("{} {} -> {}", u.name, u.from_version, u.to_version))
                        .collect::<Vec<_>>()
                        .join("; "),
                    short(&d.window_start),
                    short(&d.window_end),
                    d.status.clone(),
                    short(&d.updated_at),
                    d.detail.clone(),
                ]
            }),
        );
    }
    let update = match (params.product.as_deref(), params.version.as_deref()) {
        (Some(p), Some(v)) if !p.is_empty() => format!("{p} {v}"),
        _ => String::new(),
    };
    render(DeploymentsPage {
        layout: layout(&v, "Deployments", "deployments", &uri),
        deployments: rows,
        list,
        orgs,
        counts,
        all_count,
        hours,
        update,
        truncated,
    })
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    layout: Layout,
    d: DeploymentRecord,
    can_act: bool,
}

pub(super) async fn deployment(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let p = &v.0.principal;
    match s.engine.deployment(p, &id).await {
        Ok(d) => render(DeploymentPage {
            layout: layout(&v, format!("Deployment on {}", d.hostname), "deployments", &uri),
            d,
            can_act: p.allows(Permission::Approve),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    product: String,
    version: String,
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    device_id: String,
    #[serde(default)]
    reason: String,
    /// `yes` once the technician has seen what the rollback touches.
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "rollback_confirm.html")]
struct RollbackConfirmPage {
    layout: Layout,
    product: String,
    version: String,
    organization_id: String,
    device_id: String,
    reason: String,
    /// Devices the rollback would reach: (hostname, deployment status).
    devices: Vec<(String, String)>,
    fleet: bool,
}

/// Rollback in two steps: the first post shows the devices it reaches; the second, with
/// `confirm=yes`, schedules it.
pub(super) async fn rollback(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    CsrfForm(f, _): CsrfForm<RollbackForm>,
) -> Response {
    let p = &v.0.principal;
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    if f.confirm != "yes" {
        let q = proto::DeploymentListQuery {
            organization_id: opt(&f.organization_id),
            device_id: opt(&f.device_id),
            kind: Some("install".into()),
            product: Some(f.product.clone()),
            version: Some(f.version.clone()),
            limit: Some(10_000),
            ..Default::default()
        };
        return match s.engine.deployments(p, &q).await {
            Ok(list) => {
                let mut seen = std::collections::HashSet::new();
                let devices = list
                    .into_iter()
                    .filter(|d| seen.insert(d.device_id.clone()))
                    .map(|d| (d.hostname, d.status))
                    .collect();
                render(RollbackConfirmPage {
                    layout: layout(&v, "Confirm rollback", "rollouts", &uri),
                    fleet: opt(&f.organization_id).is_none() && opt(&f.device_id).is_none(),
                    product: f.product,
                    version: f.version,
                    organization_id: f.organization_id,
                    device_id: f.device_id,
                    reason: f.reason,
                    devices,
                })
            }
            Err(e) => done("/rollouts", Err(msg(e))),
        };
    }
    let req = proto::RollbackRequest {
        product: f.product,
        version: f.version,
        organization_id: opt(&f.organization_id),
        device_id: opt(&f.device_id),
        reason: f.reason,
    };
    match s.engine.rollback(p, &req).await {
        Ok(r) => {
            let mut text = format!(
                "rollback of {} {} scheduled on {} device{}",
                req.product,
                req.version,
                r.scheduled,
                if r.scheduled == 1 { "" } else { "s" }
            );
            if !r.skipped.is_empty() {
                text.push_str(&format!("; passed over: {}", r.skipped.join("; ")));
            }
            if r.halt_id.is_some() {
                text.push_str("; the update is halted for every client");
            }
            done("/rollouts", Ok(text))
        }
        Err(e) => done("/rollouts", Err(msg(e))),
    }
}

pub(super) async fn dispatch(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(_, _): CsrfForm<std::collections::HashMap<String, String>>,
) -> Response {
    match s.engine.dispatch(&v.0.principal).await {
        Ok(d) => done(
            "/rollouts",
            Ok(format!(
                "dispatched {} deployment{} ({} rescheduled); {} missed, {} timed out{}",
                d.scheduled,
                if d.scheduled == 1 { "" } else { "s" },
                d.rescheduled,
                d.missed,
                d.timed_out,
                if d.halted.is_empty() {
                    String::new()
                } else {
                    format!("; halted: {}", d.halted.join("; "))
                }
            )),
        ),
        Err(e) => done("/rollouts", Err(msg(e))),
    }
}

pub(super) async fn clear_hold(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<std::collections::HashMap<String, String>>,
) -> Response {
    match s.engine.clear_hold(&v.0.principal, &id).await {
        Ok(h) => {
            done("/rollouts", Ok(format!("hold of {} {} on {} cleared", h.name, h.held_version, h.hostname)))
        }
        Err(e) => done("/rollouts", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct RetryForm {
    reason: String,
}

pub(super) async fn retry(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<RetryForm>,
) -> Response {
    let to = format!(
        "/deployments/{}",
        id.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect::<String>()
    );
    match s.engine.retry_deployment(&v.0.principal, &id, &f.reason).await {
        Ok(d) => done(&to, Ok(format!("{} will be offered the update again in its next window", d.hostname))),
        Err(e) => done(&to, Err(msg(e))),
    }
}
