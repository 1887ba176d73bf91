//! Dashboard pages of vulnerabilities, software and alerts, and the findings and software
//! sections of the device page.

use super::{CsrfForm, Layout, StaffViewer, Viewer, done, layout, msg, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use crate::list::{Key, ListState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use ringfence_engine::EngineError;
use ringfence_engine::store::{
    Alert, CveFacts, FindingQuery, FindingRow, SoftwareEvent, TitleSummary, VulnerabilityQuery,
    VulnerabilitySummary,
};
use ringfence_inventory::Item;
use ringfence_model::*;
use serde::Deserialize;

/// Short display forms used by the templates.
pub fn epss(v: &Option<f64>) -> String {
    v.map(|s| format!("{:.1}%", s * 100.0)).unwrap_or_else(|| "—".into())
}

pub fn cvss(v: &Option<f64>) -> String {
    v.map(|s| format!("{s:.1}")).unwrap_or_else(|| "—".into())
}

pub fn short(t: &Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

fn truncate(s: &Option<String>, n: usize) -> String {
    let s = s.as_deref().unwrap_or("");
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

#[derive(Template)]
#[template(path = "vulnerabilities.html")]
struct VulnerabilitiesPage {
    layout: Layout,
    rows: Vec<(VulnerabilitySummary, String)>,
    orgs: Vec<Organization>,
    list: ListState,
}

const VULN_COLUMNS: [&str; 6] = ["risk", "cve", "cvss", "epss", "devices", "detected"];

/// Open vulnerabilities, one row per CVE, filtered by client, severity and KEV, sorted and
/// paged in the database, with the view's CSV.
pub(super) async fn vulnerabilities(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let mut list =
        match ListState::read("/vulnerabilities", uri.query().unwrap_or(""), &VULN_COLUMNS, "risk", true) {
            Ok(l) => l,
            Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
        };
    let p = &v.0.principal;
    let search = Some(list.filter("search").to_owned()).filter(|s| !s.is_empty());
    // A search that is a whole CVE id goes straight to that CVE.
    if let Some(id) = search.as_deref().and_then(|s| ringfence_engine::findings::parse_cve_id(s).ok()) {
        return axum::response::Redirect::to(&format!("/vulnerabilities/{id}")).into_response();
    }
    let kev = matches!(list.filter("kev"), "on" | "true");
    let organization_id = match list.filter("organization_id") {
        "" => None,
        o => match OrganizationId::parse(o) {
            Ok(o) => Some(o),
            Err(_) => {
                return viewer_error(
                    &v,
                    &uri,
                    EngineError::Invalid(ValueError::new("organization_id", "is not an organization id")),
                );
            }
        },
    };
    let severity = Some(list.filter("severity").to_owned()).filter(|s| !s.is_empty());
    let query = VulnerabilityQuery {
        search,
        kev_only: kev,
        organization_id,
        severity,
        sort: list.sort.clone(),
        descending: list.desc,
        limit: if list.csv { 500 } else { list.per_page },
        offset: if list.csv { 0 } else { list.offset() },
    };
    let result = async {
        let page = s.engine.vulnerabilities(p, query).await?;
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((page, orgs))
    }
    .await;
    let (page, orgs) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    list.total = page.total;
    let rows: Vec<(VulnerabilitySummary, String)> = page
        .items
        .into_iter()
        .map(|r| {
            let d = truncate(&r.facts.description, 140);
            (r, d)
        })
        .collect();
    if list.csv {
        return crate::list::csv_response(
            "vulnerabilities",
            &[
                "cve",
                "severity",
                "cvss",
                "epss",
                "kev due",
                "devices",
                "clients",
                "software",
                "fixed in",
                "first detected",
            ],
            rows.iter().map(|(r, _)| {
                vec![
                    r.facts.id.clone(),
                    r.facts.severity.clone().unwrap_or_default(),
                    cvss(&r.facts.cvss_score),
                    epss(&r.facts.epss_score),
                    r.facts.kev.as_ref().map(|k| k.due_date.clone()).unwrap_or_default(),
                    r.devices.to_string(),
                    r.organizations.to_string(),
                    r.products.join("; "),
                    r.fixed_version.clone().unwrap_or_default(),
                    short(&r.first_detected),
                ]
            }),
        );
    }
    render(VulnerabilitiesPage { layout: layout(&v, "Vulnerabilities", "vulns", &uri), rows, orgs, list })
}

#[derive(Template)]
#[template(path = "vulnerability.html")]
struct VulnerabilityPage {
    layout: Layout,
    facts: CveFacts,
    /// Each open finding with its client and where its remediation stands.
    open: Vec<(FindingRow, String, Remediation)>,
    resolved: Vec<FindingRow>,
}

/// Where a finding's fix stands on its device: the latest deployment of that software there.
pub(super) struct Remediation {
    status: String,
    deployment_id: Option<String>,
    when: Option<Timestamp>,
}

pub(super) async fn vulnerability(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    Path(cve): Path<String>,
) -> Response {
    let p = &v.0.principal;
    let result = async {
        let (facts, findings) = s.engine.vulnerability(p, &cve).await?;
        let orgs = s.engine.organizations(p).await?;
        // The newest deployments first: the first one seen per device and software is its state.
        let q = ringfence_proto::DeploymentListQuery { limit: Some(10_000), ..Default::default() };
        let deployments = s.engine.deployments(p, &q).await?;
        Ok::<_, EngineError>((facts, findings, orgs, deployments))
    }
    .await;
    match result {
        Ok((facts, findings, orgs, deployments)) => {
            let names: std::collections::HashMap<OrganizationId, String> =
                orgs.into_iter().map(|o| (o.id, o.name.to_string())).collect();
            let (open, resolved): (Vec<_>, Vec<_>) =
                findings.items.into_iter().partition(|f| f.resolved_at.is_none());
            let open = open
                .into_iter()
                .map(|f| {
                    let latest = deployments.iter().find(|d| {
                        d.device_id == f.device_id && d.updates.iter().any(|u| u.product == f.product)
                    });
                    let state = match latest {
                        Some(d) => Remediation {
                            status: d.status.clone(),
                            deployment_id: Some(d.id.clone()),
                            when: Some(d.updated_at),
                        },
                        None if f.fixed_version.is_none() => {
                            Remediation { status: "no fix yet".into(), deployment_id: None, when: None }
                        }
                        None => {
                            Remediation { status: "not deployed".into(), deployment_id: None, when: None }
                        }
                    };
                    let client = names.get(&f.organization_id).cloned().unwrap_or_default();
                    (f, client, state)
                })
                .collect();
            render(VulnerabilityPage {
                layout: layout(&v, facts.id.clone(), "vulns", &uri),
                facts,
                open,
                resolved,
            })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Template)]
#[template(path = "software.html")]
struct SoftwarePage {
    layout: Layout,
    titles: Vec<TitleSummary>,
    list: ListState,
    /// The search matched more titles than one read holds.
    capped: bool,
}

const SOFTWARE_COLUMNS: [&str; 5] = ["name", "version", "kind", "vendor", "devices"];
/// Titles one software view reads (the search narrows it).
const SOFTWARE_READ: i64 = 1000;

/// Software titles across the fleet: search, sort by any column, pages and CSV.
pub(super) async fn software(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let mut list =
        match ListState::read("/software", uri.query().unwrap_or(""), &SOFTWARE_COLUMNS, "devices", true) {
            Ok(l) => l,
            Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
        };
    let search = Some(list.filter("search").to_owned()).filter(|s| !s.is_empty());
    let titles = match s.engine.software(&v.0.principal, search.as_deref(), SOFTWARE_READ).await {
        Ok(t) => t,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let capped = titles.len() as i64 >= SOFTWARE_READ;
    let titles = list.page_of(titles, |t, col| match col {
        "name" => Key::from(t.name.as_str()),
        "version" => Key::from(t.version.as_str()),
        "kind" => Key::from(t.kind.as_str()),
        "vendor" => Key::from(t.vendor.clone().unwrap_or_default()),
        _ => Key::from(t.devices),
    });
    if list.csv {
        return crate::list::csv_response(
            "software",
            &["name", "version", "kind", "vendor", "devices"],
            titles.iter().map(|t| {
                vec![
                    t.name.clone(),
                    t.version.clone(),
                    t.kind.clone(),
                    t.vendor.clone().unwrap_or_default(),
                    t.devices.to_string(),
                ]
            }),
        );
    }
    render(SoftwarePage { layout: layout(&v, "Software", "software", &uri), titles, list, capped })
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    alerts: Vec<Alert>,
    list: ListState,
    unread: usize,
    feeds: Vec<ringfence_engine::store::FeedRun>,
    stored: Vec<(String, i64)>,
}

const ALERT_COLUMNS: [&str; 4] = ["at", "kind", "cve", "devices"];

/// Alerts, newest first, filtered by kind and read state, sorted, paged and exported.
pub(super) async fn alerts(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    let mut list = match ListState::read("/alerts", uri.query().unwrap_or(""), &ALERT_COLUMNS, "at", true) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let p = &v.0.principal;
    let result = async {
        let alerts = s.engine.alerts(p).await?;
        let (feeds, stored) = s.engine.feed_status(p).await?;
        Ok::<_, EngineError>((alerts, feeds, stored))
    }
    .await;
    let (alerts, feeds, stored) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let unread = alerts.iter().filter(|a| a.read_at.is_none()).count();
    let kind = list.filter("kind").to_owned();
    let only_unread = list.filter("state") == "unread";
    let alerts: Vec<Alert> = alerts
        .into_iter()
        .filter(|a| kind.is_empty() || a.kind == kind)
        .filter(|a| !only_unread || a.read_at.is_none())
        .collect();
    let alerts = list.page_of(alerts, |a, col| match col {
        "kind" => Key::from(a.kind.as_str()),
        "cve" => Key::from(a.cve_id.as_str()),
        "devices" => Key::from(a.devices),
        _ => Key::from(a.at),
    });
    if list.csv {
        return crate::list::csv_response(
            "alerts",
            &["at (UTC)", "kind", "cve", "devices", "message", "read"],
            alerts.iter().map(|a| {
                vec![
                    short(&a.at),
                    a.kind.clone(),
                    a.cve_id.clone(),
                    a.devices.to_string(),
                    a.message.clone(),
                    a.read_at.map(|t| short(&t)).unwrap_or_default(),
                ]
            }),
        );
    }
    render(AlertsPage { layout: layout(&v, "Alerts", "alerts", &uri), alerts, list, unread, feeds, stored })
}

#[derive(Deserialize)]
pub(super) struct Empty {}

pub(super) async fn read_alerts(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(_, _): CsrfForm<Empty>,
) -> Response {
    match s.engine.mark_alerts_read(&v.0.principal).await {
        Ok(n) => done("/alerts", Ok(format!("{n} alerts marked read"))),
        Err(e) => done("/alerts", Err(msg(e))),
    }
}

/// The vulnerability and software sections of a device page.
pub(super) struct DeviceSections {
    pub findings: Vec<FindingRow>,
    pub resolved: Vec<FindingRow>,
    pub os: String,
    pub inventory_at: String,
    pub items: Vec<Item>,
    pub item_total: usize,
    pub history: Vec<SoftwareEvent>,
    pub sw: String,
    pub kind: String,
}

#[derive(Deserialize, Default)]
struct DeviceParams {
    sw: Option<String>,
    kind: Option<String>,
}

pub(super) async fn device_sections(
    s: &AppState,
    p: &Principal,
    device: &DeviceId,
    uri: &Uri,
) -> Result<DeviceSections, EngineError> {
    let q: DeviceParams = parse_query(uri.query().unwrap_or("")).unwrap_or_default();
    let fq = FindingQuery {
        device_id: Some(device.clone()),
        include_resolved: true,
        limit: 500,
        ..Default::default()
    };
    let all = s.engine.findings(p, fq).await?.items;
    let (findings, resolved): (Vec<_>, Vec<_>) = all.into_iter().partition(|f| f.resolved_at.is_none());
    let inv = s.engine.device_inventory(p, device.as_str()).await?;
    let history = s.engine.software_history(p, device.as_str(), 50).await?;
    let sw = q.sw.unwrap_or_default();
    let kind = q.kind.unwrap_or_default();
    let needle = sw.to_lowercase();
    let item_total = inv.items.len();
    let items: Vec<Item> = inv
        .items
        .into_iter()
        .filter(|i| kind.is_empty() || i.kind.as_str() == kind)
        .filter(|i| needle.is_empty() || i.name.to_lowercase().contains(&needle))
        .take(300)
        .collect();
    Ok(DeviceSections {
        findings,
        resolved,
        os: inv
            .os
            .map(|o| {
                if o.name.is_empty() {
                    format!("{} {}", o.id, o.version)
                } else {
                    format!("{} ({})", o.name, o.version)
                }
            })
            .unwrap_or_default(),
        inventory_at: inv.updated_at.map(|t| short(&t)).unwrap_or_default(),
        items,
        item_total,
        history,
        sw,
        kind,
    })
}
