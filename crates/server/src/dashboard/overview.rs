//! The landing pages: the MSP's overview of every client (`/`), a client's own portal (the
//! same address for a user limited to one organization), and the one search box.

use super::{Layout, Viewer, layout, render, viewer_error};
use crate::AppState;
use crate::list::{Key, ListState, csv_response};
use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use ringfence_engine::EngineError;
use ringfence_engine::overview::{ClientRow, Overview};
use ringfence_engine::reports::ClientReport;
use ringfence_engine::store::{ReportListItem, TitleSummary, VulnerabilityQuery, VulnerabilitySummary};
use ringfence_model::*;
use ringfence_proto as proto;
use std::collections::BTreeMap;

const COLUMNS: [&str; 10] =
    ["exposure", "client", "devices", "patched", "kev", "critical", "overdue", "failed", "offline", "window"];

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    o: Overview,
    rows: Vec<ClientRow>,
    list: ListState,
}

fn sort_key((rank, r): &(usize, ClientRow), col: &str) -> Key {
    match col {
        "client" => Key::from(r.organization.as_str()),
        "devices" => Key::from(r.devices),
        "patched" => Key::from(r.patched_percent),
        "kev" => Key::from(r.open_kev),
        "critical" => Key::from(r.open_critical),
        "overdue" => Key::from(r.overdue_findings),
        "failed" => Key::from(r.failed_24h),
        "offline" => Key::from(r.offline),
        "window" => Key::Num(r.next_window.map_or(f64::MAX, |t| t.as_second() as f64)),
        // Exposure: the engine's order (most exposed first), by its rank there.
        _ => Key::from(*rank as i64),
    }
}

/// `/`: the partner's clients, most exposed first; a client's user gets their portal.
pub(super) async fn overview(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let p = &v.0.principal;
    if let Some(org) = p.organization_id.clone() {
        return portal(&s, &v, &uri, org).await;
    }
    let mut list = match ListState::read("/", uri.query().unwrap_or(""), &COLUMNS, "exposure", false) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let o = match s.engine.overview(p).await {
        Ok(o) => o,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let ranked: Vec<(usize, ClientRow)> = o.clients.iter().cloned().enumerate().collect();
    let rows: Vec<ClientRow> = list.page_of(ranked, sort_key).into_iter().map(|(_, r)| r).collect();
    if list.csv {
        return csv_response(
            "clients",
            &[
                "client",
                "devices",
                "fully patched %",
                "open KEV findings",
                "open critical findings",
                "overdue findings",
                "overdue CVEs",
                "failed deployments (24 h)",
                "devices offline",
                "next window (UTC)",
                "last report",
            ],
            rows.iter().map(|r| {
                vec![
                    r.organization.clone(),
                    r.devices.to_string(),
                    format!("{:.1}", r.patched_percent),
                    r.open_kev.to_string(),
                    r.open_critical.to_string(),
                    r.overdue_findings.to_string(),
                    r.overdue_cves.to_string(),
                    r.failed_24h.to_string(),
                    r.offline.to_string(),
                    r.next_window.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
                    r.last_report_at.map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_default(),
                ]
            }),
        );
    }
    render(OverviewPage { layout: layout(&v, "Overview", "overview", &uri), o, rows, list })
}

/// An update patched in the period, on how many devices.
struct Patched {
    update: String,
    devices: usize,
    last: Timestamp,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    layout: Layout,
    org: Organization,
    row: ClientRow,
    report: ClientReport,
    trend_svg: String,
    patched: Vec<Patched>,
    upcoming: Vec<ringfence_store::DeploymentRecord>,
    reports: Vec<ReportListItem>,
}

/// A client's own page: how patched they are and the trend, open KEV findings, what was
/// patched in the last 30 days, what is planned next, and their reports.
async fn portal(s: &AppState, v: &Viewer, uri: &Uri, org: OrganizationId) -> Response {
    let p = &v.0.principal;
    let e = &s.engine;
    let result = async {
        let organization = e.organization(p, org.as_str()).await?;
        let o = e.overview(p).await?;
        let row =
            o.clients.into_iter().find(|r| r.organization_id.as_ref() == Some(&org)).unwrap_or_default();
        let now = e.now();
        let from = now - jiff::SignedDuration::from_hours(30 * 24);
        let report = e.client_report(p, org.as_str(), from, now).await?;
        let all = e
            .deployments(p, &proto::DeploymentListQuery { limit: Some(10_000), ..Default::default() })
            .await?;
        let mut patched: BTreeMap<String, (std::collections::HashSet<DeviceId>, Timestamp)> = BTreeMap::new();
        for d in all.iter().filter(|d| d.status == "verified" && d.kind == "install" && d.updated_at >= from)
        {
            for u in &d.updates {
                let entry = patched
                    .entry(format!("{} {}", u.product, u.version))
                    .or_insert_with(|| (Default::default(), d.updated_at));
                entry.0.insert(d.device_id.clone());
                entry.1 = entry.1.max(d.updated_at);
            }
        }
        let mut patched: Vec<Patched> = patched
            .into_iter()
            .map(|(update, (devices, last))| Patched { update, devices: devices.len(), last })
            .collect();
        patched.sort_by_key(|p| std::cmp::Reverse(p.last));
        let mut upcoming: Vec<_> = all.into_iter().filter(|d| d.is_active()).collect();
        upcoming.sort_by_key(|d| d.window_start);
        upcoming.truncate(20);
        let reports = e.reports(p, Some(org.as_str())).await?.into_iter().take(6).collect();
        Ok::<_, EngineError>((organization, row, report, patched, upcoming, reports))
    }
    .await;
    match result {
        Ok((org, row, report, patched, upcoming, reports)) => {
            let points: Vec<(String, f64)> = report
                .trend
                .iter()
                .map(|t| (t.at.strftime("%d %b").to_string(), t.patched_percent))
                .collect();
            let trend_svg =
                ringfence_engine::charts::line_percent("Devices fully patched, last 30 days", &points);
            render(PortalPage {
                layout: layout(v, org.name.to_string(), "overview", uri),
                org,
                row,
                report,
                trend_svg,
                patched,
                upcoming,
                reports,
            })
        }
        Err(e) => viewer_error(v, uri, e),
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    clients: Vec<Organization>,
    devices: Vec<Device>,
    cves: Vec<VulnerabilitySummary>,
    software: Vec<TitleSummary>,
}

/// One search box for hosts, CVEs, software titles and clients. A whole CVE id goes straight
/// to that CVE; a single exact host name straight to that device.
pub(super) async fn search(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let q: String = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().chars().take(200).collect())
        .unwrap_or_default();
    let p = &v.0.principal;
    if let Ok(id) = ringfence_engine::findings::parse_cve_id(&q) {
        return Redirect::to(&format!("/vulnerabilities/{id}")).into_response();
    }
    let e = &s.engine;
    let result = async {
        if q.is_empty() {
            return Ok::<_, EngineError>((Vec::new(), Vec::new(), Vec::new(), Vec::new()));
        }
        let needle = q.to_lowercase();
        let clients: Vec<Organization> = e
            .organizations(p)
            .await?
            .into_iter()
            .filter(|o| o.name.to_string().to_lowercase().contains(&needle))
            .take(20)
            .collect();
        let devices = e
            .devices(
                p,
                &proto::DeviceListQuery { search: Some(q.clone()), limit: Some(20), ..Default::default() },
            )
            .await?
            .items;
        let cves = e
            .vulnerabilities(
                p,
                VulnerabilityQuery { search: Some(q.clone()), limit: 20, ..Default::default() },
            )
            .await?
            .items;
        let software = e.software(p, Some(q.as_str()), 20).await?;
        Ok((clients, devices, cves, software))
    }
    .await;
    match result {
        Ok((clients, devices, cves, software)) => {
            if devices.len() == 1
                && clients.is_empty()
                && devices[0].hostname.as_str().eq_ignore_ascii_case(&q)
            {
                return Redirect::to(&format!("/devices/{}", devices[0].id)).into_response();
            }
            let mut l = layout(&v, format!("Search: {q}"), "search", &uri);
            l.search = q.clone();
            render(SearchPage { layout: l, q, clients, devices, cves, software })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}
