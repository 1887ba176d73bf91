//! Dashboard pages of rollouts (each update ring by ring, halts, fleet rollback with a
//! confirmation step, holds) and deployments (per device, with the agent's log).

use super::{Layout, Viewer, done, form, layout, msg, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use ringfence_engine::EngineError;
use ringfence_engine::deploy::RolloutView;
use ringfence_engine::store::{DeploymentRecord, HoldRecord};
use ringfence_model::*;
use ringfence_proto as proto;
use serde::Deserialize;

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
pub(super) async fn rollouts(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
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
    product: Option<String>,
    version: Option<String>,
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    layout: Layout,
    deployments: Vec<DeploymentRecord>,
    filter: String,
}

pub(super) async fn deployments(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let params: DeploymentParams = match parse_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return viewer_error(&v, &uri, EngineError::Invalid(ValueError::new("query", e.body.message)));
        }
    };
    let q = proto::DeploymentListQuery {
        organization_id: params.organization_id.clone(),
        device_id: params.device_id.clone(),
        status: params.status.clone(),
        kind: None,
        product: params.product.clone(),
        version: params.version.clone(),
        limit: Some(1000),
    };
    let filter = [
        params.product.as_deref().zip(params.version.as_deref()).map(|(p, v)| format!("update {p} {v}")),
        params.status.as_deref().filter(|s| !s.is_empty()).map(|s| format!("status {s}")),
        params.device_id.as_deref().filter(|s| !s.is_empty()).map(|_| "one device".to_string()),
        params.organization_id.as_deref().filter(|s| !s.is_empty()).map(|_| "one organization".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    match s.engine.deployments(&v.0.principal, &q).await {
        Ok(deployments) => render(DeploymentsPage {
            layout: layout(&v, "Deployments", "rollouts", &uri),
            deployments,
            filter,
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
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
            layout: layout(&v, format!("Deployment on {}", d.hostname), "rollouts", &uri),
            d,
            can_act: p.allows(Permission::Approve),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
struct RollbackForm {
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
pub(super) async fn rollback(State(s): State<AppState>, v: Viewer, uri: Uri, body: Bytes) -> Response {
    let f: RollbackForm = match form(&v, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
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

pub(super) async fn dispatch(State(s): State<AppState>, v: Viewer, body: Bytes) -> Response {
    if let Err(r) = form::<std::collections::HashMap<String, String>>(&v, &body) {
        return r.into_response();
    }
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
    body: Bytes,
) -> Response {
    if let Err(r) = form::<std::collections::HashMap<String, String>>(&v, &body) {
        return r.into_response();
    }
    match s.engine.clear_hold(&v.0.principal, &id).await {
        Ok(h) => {
            done("/rollouts", Ok(format!("hold of {} {} on {} cleared", h.name, h.held_version, h.hostname)))
        }
        Err(e) => done("/rollouts", Err(msg(e))),
    }
}

#[derive(Deserialize)]
struct RetryForm {
    reason: String,
}

pub(super) async fn retry(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f: RetryForm = match form(&v, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let to = format!(
        "/deployments/{}",
        id.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect::<String>()
    );
    match s.engine.retry_deployment(&v.0.principal, &id, &f.reason).await {
        Ok(d) => done(&to, Ok(format!("{} will be offered the update again in its next window", d.hostname))),
        Err(e) => done(&to, Err(msg(e))),
    }
}
