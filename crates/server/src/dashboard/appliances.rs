//! Dashboard pages of agentless network appliances: the list per organization (firmware,
//! last poll or confirmation, findings with KEV first), one appliance, the fleet's firmware
//! ("this firmware at N clients"), maintenance tasks, credentials, collectors, sweeps and
//! partner-wide mappings.

use super::{CsrfForm, Layout, Viewer, done, layout, msg, render, viewer_error};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use ringfence_engine::EngineError;
use ringfence_engine::appliances::{ApplianceView, FirmwareGroup};
use ringfence_engine::store::{ApplianceQuery, CollectorRecord, CredentialRecord, ScanRecord, TaskRecord};
use ringfence_model::*;
use ringfence_proto::appliances::*;
use ringfence_proto::collector::{AuthProtocol, PrivProtocol, SnmpCredential};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct ListParams {
    organization_id: Option<String>,
    #[allow(dead_code)]
    error: Option<String>,
    #[allow(dead_code)]
    notice: Option<String>,
}

/// How an appliance's firmware is known, in words.
pub(super) fn provenance(a: &ringfence_engine::store::ApplianceRecord) -> String {
    let day = |t: Option<Timestamp>| t.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string());
    if a.source == "manual" {
        return match day(a.confirmed_at) {
            Some(d) => format!("manually reported, last confirmed on {d}"),
            None => "manually reported".into(),
        };
    }
    match (a.last_outcome.as_deref(), day(a.last_polled_at)) {
        (None, _) | (_, None) => "SNMP: not polled yet".into(),
        (Some("ok"), Some(d)) => format!("SNMP: polled {d}"),
        (Some(o), Some(d)) => format!(
            "SNMP: {o} at {d}{}{}",
            a.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            day(a.last_ok_at).map(|t| format!("; last answered {t}")).unwrap_or_default()
        ),
    }
}

#[derive(Template)]
#[template(path = "appliances.html")]
struct AppliancesPage {
    layout: Layout,
    sorting: crate::list::ListState,
    orgs: Vec<Organization>,
    sites: Vec<Site>,
    selected: String,
    appliances: Vec<(ApplianceView, String)>,
    tasks: Vec<TaskRecord>,
    credentials: Vec<CredentialRecord>,
    collectors: Vec<CollectorRecord>,
    scans: Vec<ScanRecord>,
    can_manage: bool,
}

pub(super) async fn appliances(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    use crate::list::{Key, ListState};
    let mut sorting = match ListState::read(
        "/appliances",
        uri.query().unwrap_or(""),
        &["exposure", "appliance", "client", "firmware", "findings"],
        "exposure",
        false,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let q = ListParams {
        organization_id: Some(sorting.filter("organization_id").to_owned()).filter(|o| !o.is_empty()),
        ..Default::default()
    };
    let p = &v.0.principal;
    let result = async {
        let orgs = s.engine.organizations(p).await?;
        let organization_id = match q.organization_id.as_deref().filter(|o| !o.is_empty()) {
            Some(o) => Some(OrganizationId::parse(o).map_err(|_| EngineError::NotFound("organization"))?),
            None => None,
        };
        let list = s.engine.appliances(p, &ApplianceQuery { organization_id, ..Default::default() }).await?;
        let tasks = s.engine.appliance_tasks(p, true).await?;
        let credentials = s.engine.snmp_credentials(p).await?;
        let collectors = s.engine.collectors(p).await?;
        let scans = s.engine.scans(p).await?;
        let sites = s.engine.sites(p, None).await?;
        Ok::<_, EngineError>((orgs, list, tasks, credentials, collectors, scans, sites))
    }
    .await;
    match result {
        Ok((orgs, list, tasks, credentials, collectors, scans, sites)) => {
            // Exposure: KEV findings first, then the most findings.
            let list = sorting.page_of(list, |a, col| match col {
                "appliance" => Key::from(a.appliance.hostname.as_str()),
                "client" => Key::from(a.appliance.organization.as_str()),
                "firmware" => Key::from(a.appliance.identity.firmware.clone().unwrap_or_default()),
                "findings" => Key::from(a.findings.len() as i64),
                _ => Key::Num(-((a.kev_findings as f64) * 1e6 + a.findings.len() as f64)),
            });
            if sorting.csv {
                return crate::list::csv_response(
                    "appliances",
                    &[
                        "appliance",
                        "client",
                        "site",
                        "vendor",
                        "model",
                        "firmware",
                        "findings",
                        "kev findings",
                    ],
                    list.iter().map(|a| {
                        let i = &a.appliance.identity;
                        vec![
                            a.appliance.hostname.clone(),
                            a.appliance.organization.clone(),
                            a.appliance.site.clone(),
                            i.vendor.clone().unwrap_or_default(),
                            i.model.clone().unwrap_or_default(),
                            i.firmware.clone().unwrap_or_default(),
                            a.findings.len().to_string(),
                            a.kev_findings.to_string(),
                        ]
                    }),
                );
            }
            render(AppliancesPage {
                layout: layout(&v, "Appliances", "appliances", &uri),
                sorting,
                selected: q.organization_id.unwrap_or_default(),
                orgs,
                sites,
                appliances: list
                    .into_iter()
                    .map(|a| {
                        let how = provenance(&a.appliance);
                        (a, how)
                    })
                    .collect(),
                tasks,
                credentials,
                collectors,
                scans,
                can_manage: p.allows(Permission::ManageAppliances),
            })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Template)]
#[template(path = "appliance.html")]
struct AppliancePage {
    layout: Layout,
    a: ApplianceView,
    how: String,
    entities: String,
    tasks: Vec<TaskRecord>,
    can_manage: bool,
}

pub(super) async fn appliance(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let p = &v.0.principal;
    let result = async {
        let a = s.engine.appliance(p, &id).await?;
        let tasks: Vec<TaskRecord> = s
            .engine
            .appliance_tasks(p, false)
            .await?
            .into_iter()
            .filter(|t| t.deployment.device_id == a.appliance.device_id)
            .collect();
        Ok::<_, EngineError>((a, tasks))
    }
    .await;
    match result {
        Ok((a, tasks)) => render(AppliancePage {
            layout: layout(&v, a.appliance.hostname.clone(), "appliances", &uri),
            how: provenance(&a.appliance),
            entities: serde_json::to_string_pretty(&a.appliance.identity.entities).unwrap_or_default(),
            a,
            tasks,
            can_manage: p.allows(Permission::ManageAppliances),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Template)]
#[template(path = "firmware.html")]
struct FirmwarePage {
    layout: Layout,
    groups: Vec<FirmwareGroup>,
}

pub(super) async fn firmware(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    match s.engine.firmware_fleet(&v.0.principal).await {
        Ok(groups) => {
            render(FirmwarePage { layout: layout(&v, "Appliance firmware", "appliances", &uri), groups })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

fn opt(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    #[allow(dead_code)]
    csrf: String,
    source: String,
    site_id: String,
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    collector_id: String,
    #[serde(default)]
    credential_id: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    firmware: String,
    #[serde(default)]
    serial: String,
}

pub(super) async fn add(State(s): State<AppState>, v: Viewer, CsrfForm(f, _): CsrfForm<AddForm>) -> Response {
    let req = CreateAppliance {
        site_id: f.site_id,
        name: f.name,
        source: f.source,
        address: opt(f.address),
        collector_id: opt(f.collector_id),
        credential_id: opt(f.credential_id),
        vendor: opt(f.vendor),
        model: opt(f.model),
        firmware: opt(f.firmware),
        serial: opt(f.serial),
        ..Default::default()
    };
    match s.engine.add_appliance(&v.0.principal, &req).await {
        Ok(a) => done(&format!("/appliances/{}", a.device_id), Ok(format!("{} added", a.hostname))),
        Err(e) => done("/appliances", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct ImportForm {
    #[allow(dead_code)]
    csrf: String,
    organization_id: String,
    csv: String,
}

pub(super) async fn import(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<ImportForm>,
) -> Response {
    let req = ImportAppliances { organization_id: f.organization_id, csv: f.csv };
    match s.engine.import_appliances(&v.0.principal, &req).await {
        Ok(made) => done("/appliances", Ok(format!("{} appliance(s) imported", made.len()))),
        Err(e) => done("/appliances", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    #[allow(dead_code)]
    csrf: String,
    firmware: String,
    #[serde(default)]
    model: String,
}

pub(super) async fn confirm(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<ConfirmForm>,
) -> Response {
    let back = format!("/appliances/{id}");
    let req = ConfirmAppliance { firmware: f.firmware, model: opt(f.model) };
    match s.engine.confirm_appliance(&v.0.principal, &id, &req).await {
        Ok(a) => done(&back, Ok(format!("{} confirmed", a.hostname))),
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct CredentialForm {
    #[allow(dead_code)]
    csrf: String,
    name: String,
    #[serde(default)]
    organization_id: String,
    version: String,
    #[serde(default)]
    community: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    auth_protocol: String,
    #[serde(default)]
    auth_password: String,
    #[serde(default)]
    priv_protocol: String,
    #[serde(default)]
    priv_password: String,
}

pub(super) async fn add_credential(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<CredentialForm>,
) -> Response {
    let credential = match f.version.as_str() {
        "v2c" => SnmpCredential::V2c { community: f.community },
        _ => SnmpCredential::V3 {
            user: f.user,
            auth_protocol: match f.auth_protocol.as_str() {
                "sha1" => AuthProtocol::Sha1,
                "sha512" => AuthProtocol::Sha512,
                _ => AuthProtocol::Sha256,
            },
            auth_password: f.auth_password,
            priv_protocol: if f.priv_protocol == "aes256" {
                PrivProtocol::Aes256
            } else {
                PrivProtocol::Aes128
            },
            priv_password: f.priv_password,
        },
    };
    let req = CreateSnmpCredential { name: f.name, organization_id: opt(f.organization_id), credential };
    match s.engine.create_snmp_credential(&v.0.principal, &req).await {
        Ok(c) => {
            done("/appliances", Ok(format!("credential {} saved (its secret is not shown again)", c.name)))
        }
        Err(e) => done("/appliances", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct CollectorForm {
    #[allow(dead_code)]
    csrf: String,
    device_id: String,
}

pub(super) async fn add_collector(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<CollectorForm>,
) -> Response {
    match s.engine.add_collector(&v.0.principal, &AddCollector { device_id: f.device_id }).await {
        Ok(c) => done("/appliances", Ok(format!("{} now collects for its site", c.hostname))),
        Err(e) => done("/appliances", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct ScanForm {
    #[allow(dead_code)]
    csrf: String,
    collector_id: String,
    range: String,
    #[serde(default)]
    rate_per_sec: String,
    credential_id: String,
}

pub(super) async fn scan(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<ScanForm>,
) -> Response {
    let rate = match f.rate_per_sec.trim() {
        "" => None,
        r => match r.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                return done(
                    "/appliances",
                    Err("rate_per_sec: must be a whole number of probes a second".into()),
                );
            }
        },
    };
    let req = CreateScan {
        collector_id: f.collector_id,
        range: f.range,
        port: None,
        rate_per_sec: rate,
        credential_ids: vec![f.credential_id],
    };
    match s.engine.create_scan(&v.0.principal, &req).await {
        Ok(sc) => done("/appliances", Ok(format!("sweep of {} queued for the collector", sc.range))),
        Err(e) => done("/appliances", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct MappingForm {
    #[allow(dead_code)]
    csrf: String,
    back: String,
    sys_object_id_prefix: String,
    vendor: String,
    product: String,
    #[serde(default)]
    model: String,
    cpe_vendor: String,
    cpe_product: String,
    #[serde(default)]
    version_pattern: String,
}

pub(super) async fn map(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<MappingForm>,
) -> Response {
    let back = if f.back.starts_with("/appliances") { f.back.clone() } else { "/appliances".into() };
    let version = match opt(f.version_pattern) {
        Some(p) => serde_json::json!({ "from": "descr_regex", "pattern": p }),
        None => serde_json::json!({ "from": "ent_software_rev" }),
    };
    let mapping = serde_json::json!({
        "id": "", "sys_object_id_prefix": opt(f.sys_object_id_prefix), "descr_contains": null,
        "vendor": f.vendor.trim(), "product": f.product.trim(), "model": opt(f.model),
        "cpe_vendor": f.cpe_vendor.trim(), "cpe_product": f.cpe_product.trim(), "cpe_part": "o",
        "hardware_cpe_product": null, "version": version,
    });
    match s.engine.create_mapping(&v.0.principal, &CreateMapping { mapping }).await {
        Ok((_, n)) => {
            done(&back, Ok(format!("mapping saved for the whole partner; {n} appliance(s) identified")))
        }
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct DoneForm {
    #[allow(dead_code)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

pub(super) async fn task_done(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<DoneForm>,
) -> Response {
    let back = if f.back.starts_with("/appliances") { f.back.clone() } else { "/appliances".into() };
    match s.engine.task_done(&v.0.principal, &id, &TaskDone { note: f.note }).await {
        Ok(t) => done(
            &back,
            Ok(format!(
                "task on {} marked done; the next poll or confirmation verifies it",
                t.deployment.hostname
            )),
        ),
        Err(e) => done(&back, Err(msg(e))),
    }
}
