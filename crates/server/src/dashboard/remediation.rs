//! Dashboard pages of the remediation queue, approval history, exceptions and risk
//! decisions, and policies (with the change preview), plus the device page's effective
//! policy and available updates.

use super::{CsrfForm, Layout, StaffViewer, Viewer, done, layout, msg, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use ringfence_engine::EngineError;
use ringfence_engine::policies::{EffectivePolicy, PolicyPreview};
use ringfence_engine::remediation::{CatalogEntry, QueueItem};
use ringfence_engine::store::{ApprovalRecord, ExceptionRecord, PolicyRecord, RiskDecisionRecord};
use ringfence_model::*;
use ringfence_proto as proto;
use serde::Deserialize;

pub fn day(t: &Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

pub fn status_class(s: &str) -> &'static str {
    match s {
        "approved" | "mitigated" | "risk_accepted" => "ok",
        "rejected" | "no_fix" => "crit",
        "needs_review" | "awaiting_second" | "mixed" => "warn",
        _ => "",
    }
}

/// The queue's form value of one update: product and version, separated by a tab.
pub fn update_key(i: &QueueItem) -> String {
    format!("{}\t{}", i.product, i.version.as_deref().unwrap_or(""))
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    items: Vec<QueueItem>,
    list: crate::list::ListState,
    orgs: Vec<Organization>,
    q: proto::QueueQuery,
    organization_id: String,
    status: String,
    search: String,
    sort: String,
    can_approve: bool,
    statuses: &'static [&'static str],
}

const STATUSES: &[&str] = &[
    "needs_review",
    "auto_approve",
    "approved",
    "awaiting_second",
    "deferred",
    "rejected",
    "waiting",
    "excepted",
    "mitigated",
    "risk_accepted",
    "no_fix",
    "mixed",
];

pub(super) async fn queue(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    // The engine ranks (risk removed, devices, CVEs or product); the list pages the ranking,
    // turns it round when asked, and exports the view.
    let mut list = match crate::list::ListState::read(
        "/queue",
        uri.query().unwrap_or(""),
        &["risk", "devices", "cves", "product"],
        "risk",
        true,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let p = &v.0.principal;
    let filter = |k: &str| Some(list.filter(k).to_owned()).filter(|s| !s.trim().is_empty());
    let kev = list.filter("kev");
    let q = proto::QueueQuery {
        organization_id: filter("organization_id"),
        kev: (!kev.is_empty()).then(|| kev == "on" || kev == "true"),
        status: filter("status"),
        search: filter("search"),
        sort: Some(list.sort.clone()),
    };
    let result = async {
        let items = s.engine.remediation_queue(p, &q).await?;
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((items, orgs))
    }
    .await;
    let (mut items, orgs) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    // The engine's order is the column's natural one: most first, products A to Z. A sort
    // chosen without a direction (the filter form's select) keeps it.
    let natural_desc = list.sort != "product";
    if !form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).any(|(k, _)| k == "dir") {
        list.desc = natural_desc;
    }
    if list.desc != natural_desc {
        items.reverse();
    }
    list.total = items.len() as i64;
    if list.csv {
        return crate::list::csv_response(
            "queue",
            &[
                "update",
                "version",
                "classification",
                "risk removed",
                "ssvc",
                "devices",
                "organizations",
                "cves",
                "kev cves",
                "status",
                "detail",
            ],
            items.iter().map(|i| {
                vec![
                    i.product.clone(),
                    i.version.clone().unwrap_or_default(),
                    i.classification.clone(),
                    i.risk_removed.to_string(),
                    i.ssvc.clone(),
                    i.devices.to_string(),
                    i.organizations.to_string(),
                    i.cves.join(" "),
                    i.kev_cves.to_string(),
                    i.status.clone(),
                    i.detail.clone(),
                ]
            }),
        );
    }
    let items: Vec<QueueItem> = items
        .into_iter()
        .skip(usize::try_from(list.offset()).unwrap_or(0))
        .take(usize::try_from(list.per_page).unwrap_or(50))
        .collect();
    render(QueuePage {
        layout: layout(&v, "Remediation queue", "queue", &uri),
        items,
        orgs,
        organization_id: q.organization_id.clone().unwrap_or_default(),
        status: q.status.clone().unwrap_or_default(),
        search: q.search.clone().unwrap_or_default(),
        sort: list.sort.clone(),
        list,
        q,
        can_approve: p.allows(Permission::Approve),
        statuses: STATUSES,
    })
}

/// The queue's decision; the checked `update` fields repeat and are read from the raw form.
#[derive(Deserialize)]
pub(super) struct DecideForm {
    #[allow(dead_code)]
    csrf: String,
    decision: String,
    reason: String,
    organization_id: Option<String>,
    defer_until: Option<String>,
    emergency: Option<String>,
    back: Option<String>,
}

/// The queue's bulk form: every checked `update` plus one decision.
pub(super) async fn decide(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, raw): CsrfForm<DecideForm>,
) -> Response {
    let updates = raw.all("update");
    let back = f.back.clone().filter(|b| b.starts_with("/queue")).unwrap_or_else(|| "/queue".into());
    if updates.is_empty() {
        return done(&back, Err("select at least one update in the queue".into()));
    }
    let req = proto::DecisionRequest {
        updates: updates
            .iter()
            .map(|u| {
                let (product, version) = u.split_once('\t').unwrap_or((u, ""));
                proto::UpdateRef { product: product.into(), version: version.into() }
            })
            .collect(),
        decision: f.decision,
        reason: f.reason,
        organization_id: f.organization_id.filter(|o| !o.is_empty()),
        defer_until: f.defer_until.filter(|d| !d.is_empty()),
        emergency: f.emergency.is_some(),
    };
    match s.engine.decide(&v.0.principal, &req).await {
        Ok(recs) => {
            let pending = recs.iter().filter(|r| r.decision == "awaiting_second").count();
            let mut note =
                format!("{} decision{} recorded", recs.len(), if recs.len() == 1 { "" } else { "s" });
            if pending > 0 {
                note.push_str(&format!("; {pending} emergency override(s) await a second approver"));
            }
            done(&back, Ok(note))
        }
        Err(e) => done(&back, Err(msg(e))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CsrfOnly {
    #[allow(dead_code)]
    csrf: String,
}

pub(super) async fn run_rules(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.run_approval_rules(&v.0.principal).await {
        Ok(recs) => done("/queue", Ok(format!("the approval rules approved {} update(s)", recs.len()))),
        Err(e) => done("/queue", Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    layout: Layout,
    approvals: Vec<ApprovalRecord>,
    list: crate::list::ListState,
    orgs: Vec<Organization>,
    /// Policy names by id, to name the rule behind an approval.
    policies: Vec<(String, String)>,
    org_names: std::collections::HashMap<String, String>,
    can_approve: bool,
}

impl ApprovalsPage {
    fn rule(&self, rule: &str) -> String {
        ringfence_engine::remediation::rule_label(
            rule,
            self.policies.iter().map(|(i, n)| (i.as_str(), n.as_str())),
        )
    }

    fn org(&self, id: &Option<OrganizationId>) -> String {
        match id {
            None => "all organizations".into(),
            Some(o) => self
                .org_names
                .get(o.as_str())
                .cloned()
                .unwrap_or_else(|| "a client no longer in your scope".into()),
        }
    }
}

pub(super) async fn approvals(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    use crate::list::{Key, ListState};
    let mut list = match ListState::read(
        "/approvals",
        uri.query().unwrap_or(""),
        &["at", "update", "decision", "client"],
        "at",
        true,
    ) {
        Ok(l) => l,
        Err(e) => return viewer_error(&v, &uri, EngineError::Invalid(e)),
    };
    let p = &v.0.principal;
    let result = async {
        let approvals = s.engine.approvals(p, 5000).await?;
        let orgs = s.engine.organizations(p).await?;
        let policies = s.engine.policies(p).await?.into_iter().map(|x| (x.id, x.name)).collect();
        Ok::<_, EngineError>((approvals, orgs, policies))
    }
    .await;
    let (approvals, orgs, policies) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let org_names: std::collections::HashMap<String, String> =
        orgs.iter().map(|o| (o.id.to_string(), o.name.to_string())).collect();
    let decision = list.filter("decision").to_owned();
    let client = list.filter("organization_id").to_owned();
    let search = list.filter("search").to_lowercase();
    let approvals: Vec<ApprovalRecord> = approvals
        .into_iter()
        .filter(|a| decision.is_empty() || a.decision == decision)
        .filter(|a| client.is_empty() || a.organization_id.as_ref().is_none_or(|o| o.as_str() == client))
        .filter(|a| search.is_empty() || a.product.to_lowercase().contains(&search))
        .collect();
    let approvals = list.page_of(approvals, |a, col| match col {
        "update" => Key::from(format!("{} {}", a.product, a.version)),
        "decision" => Key::from(a.decision.as_str()),
        "client" => Key::from(
            a.organization_id.as_ref().and_then(|o| org_names.get(o.as_str())).cloned().unwrap_or_default(),
        ),
        _ => Key::from(a.created_at),
    });
    let page = ApprovalsPage {
        layout: layout(&v, "Approvals", "approvals", &uri),
        approvals,
        list,
        orgs,
        policies,
        org_names,
        can_approve: p.allows(Permission::Approve),
    };
    if page.list.csv {
        return crate::list::csv_response(
            "approvals",
            &["at (UTC)", "update", "decision", "for", "by", "reason"],
            page.approvals.iter().map(|a| {
                vec![
                    super::intel::short(&a.created_at),
                    format!("{} {}", a.product, a.version),
                    a.decision.clone(),
                    page.org(&a.organization_id),
                    a.rule.as_deref().map(|r| page.rule(r)).unwrap_or_else(|| a.decided_by.clone()),
                    a.reason.clone(),
                ]
            }),
        );
    }
    render(page)
}

pub(super) async fn confirm(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.confirm_approval(&v.0.principal, &id).await {
        Ok(a) => {
            done("/approvals", Ok(format!("emergency override of {} {} approved", a.product, a.version)))
        }
        Err(e) => done("/approvals", Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    layout: Layout,
    exceptions: Vec<ExceptionRecord>,
    risks: Vec<RiskDecisionRecord>,
    orgs: Vec<Organization>,
    now: Timestamp,
    can_approve: bool,
}

impl ExceptionsPage {
    fn org(&self, id: &OrganizationId) -> String {
        self.orgs.iter().find(|o| &o.id == id).map(|o| o.name.to_string()).unwrap_or_else(|| id.to_string())
    }
}

pub(super) async fn exceptions(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    let p = &v.0.principal;
    let result = async {
        let exceptions = s.engine.exceptions(p).await?;
        let risks = s.engine.risk_decisions(p).await?;
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((exceptions, risks, orgs))
    }
    .await;
    match result {
        Ok((exceptions, risks, orgs)) => render(ExceptionsPage {
            layout: layout(&v, "Exceptions", "exceptions", &uri),
            exceptions,
            risks,
            orgs,
            now: s.engine.now(),
            can_approve: p.allows(Permission::Approve),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExceptionForm {
    #[allow(dead_code)]
    csrf: String,
    organization_id: String,
    kind: String,
    software: String,
    version_range: String,
    owner: String,
    reason: String,
    expires: String,
}

pub(super) async fn create_exception(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<ExceptionForm>,
) -> Response {
    let req = proto::CreateException {
        organization_id: f.organization_id,
        kind: f.kind,
        software: f.software,
        version_range: f.version_range,
        owner: f.owner,
        reason: f.reason,
        expires: f.expires,
    };
    match s.engine.create_exception(&v.0.principal, &req).await {
        Ok(e) => done("/exceptions", Ok(format!("exception for {} recorded", e.software))),
        Err(e) => done("/exceptions", Err(msg(e))),
    }
}

pub(super) async fn revoke_exception(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.revoke_exception(&v.0.principal, &id).await {
        Ok(e) => done("/exceptions", Ok(format!("exception for {} revoked", e.software))),
        Err(e) => done("/exceptions", Err(msg(e))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RiskForm {
    #[allow(dead_code)]
    csrf: String,
    organization_id: String,
    cve_id: String,
    product: String,
    kind: String,
    control: Option<String>,
    owner: String,
    reason: String,
    expires: String,
}

pub(super) async fn create_risk(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<RiskForm>,
) -> Response {
    let req = proto::CreateRiskDecision {
        organization_id: f.organization_id,
        cve_id: f.cve_id,
        product: f.product,
        kind: f.kind,
        control: f.control.unwrap_or_default(),
        owner: f.owner,
        reason: f.reason,
        expires: f.expires,
    };
    match s.engine.create_risk_decision(&v.0.principal, &req).await {
        Ok(r) => done("/exceptions", Ok(format!("{} on {} recorded", r.kind.replace('_', " "), r.cve_id))),
        Err(e) => done("/exceptions", Err(msg(e))),
    }
}

pub(super) async fn revoke_risk(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.revoke_risk_decision(&v.0.principal, &id).await {
        Ok(r) => done("/exceptions", Ok(format!("decision on {} revoked", r.cve_id))),
        Err(e) => done("/exceptions", Err(msg(e))),
    }
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    layout: Layout,
    policies: Vec<PolicyRecord>,
    targets: Vec<(String, String, String)>,
    can_manage: bool,
    draft: PolicyForm,
    preview: Option<PolicyPreview>,
    /// The form field a refused save was about ("" for none).
    invalid: &'static str,
    fields: &'static [(&'static str, &'static str)],
}

impl PoliciesPage {
    fn target(&self, p: &PolicyRecord) -> String {
        if p.level == "partner" {
            return "the whole partner".into();
        }
        self.targets
            .iter()
            .find(|(_, id, _)| id == &p.target_id)
            .map(|(_, _, label)| label.clone())
            .unwrap_or_else(|| format!("a {} no longer in your scope", p.level))
    }

    fn settings(p: &PolicyRecord) -> String {
        serde_json::to_string(&p.settings).unwrap_or_default()
    }

    /// What a policy sets, in a few words per setting.
    fn summary(p: &PolicyRecord) -> Vec<String> {
        use serde_json::Value;
        let n = |v: &Value| v.as_array().map_or(0, Vec::len);
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(x) => x.to_string(),
            None => String::new(),
        };
        p.settings
            .iter()
            .map(|(k, v)| match k.as_str() {
                "ring" => format!("ring {v}"),
                "reboot" => format!("reboot: {}", text(Some(v))),
                "auto_rollback" => {
                    if v.as_bool() == Some(true) {
                        "rolls back on failure".into()
                    } else {
                        "no automatic rollback".into()
                    }
                }
                "max_concurrent" => format!("{v} devices at once"),
                "maintenance_windows" => match v.as_array().map(Vec::as_slice) {
                    Some([w]) => format!(
                        "window {} for {} from {}",
                        text(w.get("rrule")),
                        text(w.get("duration")),
                        text(w.get("dtstart")).replace('T', " ")
                    ),
                    _ => format!("{} maintenance windows", n(v)),
                },
                "business_hours" => format!(
                    "business hours {} {}–{}",
                    text(v.get("days")),
                    text(v.get("start")),
                    text(v.get("end"))
                ),
                "blackouts" => format!("{} blackout(s)", n(v)),
                "health_checks" => format!("{} health check(s)", n(v)),
                "exclusions" => format!("{} package(s) never updated", n(v)),
                "approval" => {
                    let auto = v.get("auto_approve");
                    let mut rules = Vec::new();
                    if auto.and_then(|a| a.get("kev")).and_then(Value::as_bool) == Some(true) {
                        rules.push("KEV".to_owned());
                    }
                    if let Some(c) = auto.and_then(|a| a.get("cvss_at_least")) {
                        rules.push(format!("CVSS ≥ {c}"));
                    }
                    if auto.and_then(|a| a.get("ssvc_act")).and_then(Value::as_bool) == Some(true) {
                        rules.push("SSVC Act".to_owned());
                    }
                    if rules.is_empty() {
                        "approval rules".into()
                    } else {
                        format!("approves {}", rules.join(", "))
                    }
                }
                "sla" => {
                    let parts: Vec<String> = ["critical_days", "high_days", "medium_days", "kev_days"]
                        .iter()
                        .filter_map(|f| {
                            v.get(*f)
                                .filter(|x| !x.is_null())
                                .map(|x| format!("{} {x} d", f.trim_end_matches("_days")))
                        })
                        .collect();
                    format!("deadlines {}", parts.join(", "))
                }
                "validation_hours" => format!(
                    "{} h per ring",
                    v.as_object()
                        .map(|o| o.iter().map(|(c, h)| format!("{c} {h}")).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                ),
                other => other.replace('_', " "),
            })
            .collect()
    }
}

#[derive(Deserialize, Default, Clone)]
pub(super) struct PolicyForm {
    #[serde(default)]
    #[allow(dead_code)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    priority: String,
    /// The settings the fields below do not cover, as a JSON object.
    #[serde(default)]
    settings: String,
    #[serde(default)]
    locked: String,
    #[serde(default)]
    action: String,
    #[serde(flatten)]
    fields: crate::policy_form::Fields,
}

impl PolicyForm {
    /// `target` is `level:id` (`partner:` for the partner).
    fn input(&self) -> Result<proto::PolicyInput, EngineError> {
        let (level, target) = self.target.split_once(':').unwrap_or(("", ""));
        let other = if self.settings.trim().is_empty() { "{}" } else { self.settings.trim() };
        let other: serde_json::Value = serde_json::from_str(other).map_err(|e| {
            EngineError::Invalid(ValueError::new("settings", format!("is not a JSON object: {e}")))
        })?;
        let other = other
            .as_object()
            .cloned()
            .ok_or_else(|| EngineError::Invalid(ValueError::new("settings", "must be a JSON object")))?;
        let settings = crate::policy_form::merge(&self.fields, other).map_err(EngineError::Invalid)?;
        let priority = if self.priority.trim().is_empty() {
            0
        } else {
            self.priority
                .trim()
                .parse()
                .map_err(|_| EngineError::Invalid(ValueError::new("priority", "must be a whole number")))?
        };
        Ok(proto::PolicyInput {
            name: self.name.clone(),
            level: level.into(),
            target_id: Some(target.to_string()).filter(|t| !t.is_empty()),
            priority,
            settings,
            locked: self.locked.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        })
    }
}

async fn policies_page(
    s: &AppState,
    v: &Viewer,
    uri: &Uri,
    draft: PolicyForm,
    preview: Option<PolicyPreview>,
    refused: Option<String>,
) -> Response {
    let p = &v.0.principal;
    let result = async {
        let policies = s.engine.policies(p).await?;
        let mut targets = Vec::new();
        if p.organization_id.is_none() {
            targets.push(("partner".to_string(), String::new(), "the whole partner".to_string()));
        }
        for o in s.engine.organizations(p).await? {
            targets.push(("organization".into(), o.id.to_string(), format!("organization {}", o.name)));
        }
        for site in s.engine.sites(p, None).await? {
            targets.push(("site".into(), site.id.to_string(), format!("site {}", site.name)));
        }
        for g in s.engine.groups(p, None).await? {
            targets.push(("group".into(), g.id.to_string(), format!("group {}", g.name)));
        }
        // Devices are too many to offer; the ones a policy already names are shown by name.
        for pol in policies.iter().filter(|x| x.level == "device") {
            if let Ok(d) = s.engine.device(p, &pol.target_id).await {
                targets.push(("device".into(), d.id.to_string(), format!("device {}", d.hostname)));
            }
        }
        Ok::<_, EngineError>((policies, targets))
    }
    .await;
    match result {
        Ok((policies, targets)) => {
            let mut l = layout(v, "Policies", "policies", uri);
            let invalid = refused.as_deref().and_then(crate::policy_form::field_of).unwrap_or("");
            let status = if refused.is_some() {
                axum::http::StatusCode::UNPROCESSABLE_ENTITY
            } else {
                axum::http::StatusCode::OK
            };
            if refused.is_some() {
                l.error = refused;
            }
            let mut r = render(PoliciesPage {
                layout: l,
                policies,
                targets,
                can_manage: p.allows(Permission::ManagePolicy),
                draft,
                preview,
                invalid,
                fields: ringfence_policy::settings::FIELDS,
            });
            *r.status_mut() = status;
            r
        }
        Err(e) => viewer_error(v, uri, e),
    }
}

pub(super) async fn policies(State(s): State<AppState>, StaffViewer(v): StaffViewer, uri: Uri) -> Response {
    // `?edit=ID` opens a policy in the form, its common settings in fields.
    let edit = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "edit")
        .map(|(_, v)| v.into_owned());
    let draft = match edit {
        Some(id) => match s.engine.policy(&v.0.principal, &id).await {
            Ok(p) => {
                let stored: serde_json::Map<String, serde_json::Value> =
                    p.settings.clone().into_iter().collect();
                let (fields, rest) = crate::policy_form::split(&stored);
                PolicyForm {
                    id: p.id,
                    name: p.name,
                    target: format!("{}:{}", p.level, p.target_id),
                    priority: p.priority.to_string(),
                    settings: serde_json::to_string_pretty(&rest).unwrap_or_default(),
                    locked: p.locked.join(", "),
                    fields,
                    ..Default::default()
                }
            }
            Err(e) => return viewer_error(&v, &uri, e),
        },
        None => PolicyForm {
            settings: "{}".into(),
            target: "partner:".into(),
            fields: crate::policy_form::Fields { ring: "2".into(), ..Default::default() },
            ..Default::default()
        },
    };
    policies_page(&s, &v, &uri, draft, None, None).await
}

/// Preview (renders the page with the changes) or save, from one form.
pub(super) async fn submit_policy(
    State(s): State<AppState>,
    v: Viewer,
    uri: Uri,
    CsrfForm(f, _): CsrfForm<PolicyForm>,
) -> Response {
    let p = &v.0.principal;
    // A refused preview or save keeps the draft on the page, the field in question marked.
    let input = match f.input() {
        Ok(i) => i,
        Err(e) => return policies_page(&s, &v, &uri, f, None, Some(msg(e))).await,
    };
    let id = Some(f.id.clone()).filter(|i| !i.is_empty());
    if f.action == "preview" {
        let req = proto::PolicyPreviewRequest { id: id.clone(), policy: Some(input) };
        return match s.engine.preview_policy(p, &req).await {
            Ok(preview) => policies_page(&s, &v, &uri, f, Some(preview), None).await,
            Err(e) => policies_page(&s, &v, &uri, f, None, Some(msg(e))).await,
        };
    }
    let saved = match &id {
        Some(id) => s.engine.update_policy(p, id, &input).await,
        None => s.engine.create_policy(p, &input).await,
    };
    match saved {
        Ok(r) => done("/policies", Ok(format!("policy '{}' saved", r.name))),
        Err(e) => policies_page(&s, &v, &uri, f, None, Some(msg(e))).await,
    }
}

pub(super) async fn delete_policy(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(_, _): CsrfForm<CsrfOnly>,
) -> Response {
    match s.engine.delete_policy(&v.0.principal, &id).await {
        Ok(()) => done("/policies", Ok("policy deleted".into())),
        Err(e) => done("/policies", Err(msg(e))),
    }
}

/// The device page's remediation sections.
pub(super) struct DeviceRemediation {
    pub effective: EffectivePolicy,
    pub updates: Vec<CatalogEntry>,
}

pub(super) async fn device_sections(
    s: &AppState,
    p: &Principal,
    device: &DeviceId,
) -> Result<DeviceRemediation, EngineError> {
    Ok(DeviceRemediation {
        effective: s.engine.effective_policy(p, device.as_str()).await?,
        updates: s.engine.device_updates(p, device.as_str()).await?,
    })
}

#[derive(Deserialize)]
struct ScheduleParams {
    organization_id: Option<String>,
    device_id: Option<String>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    layout: Layout,
    preview: ringfence_engine::schedule::SchedulePreview,
    /// The next 72 hours by UTC day.
    days: Vec<(String, Vec<ringfence_engine::schedule::ScheduleEntry>)>,
    /// The same, one line per client, site and window.
    windows: Vec<WindowGroup>,
    later: Vec<ringfence_engine::schedule::ScheduleEntry>,
    waiting: Vec<ringfence_engine::schedule::ScheduleEntry>,
    /// Entries that are deployments already created, and forecast ones with a time.
    created: usize,
    forecast: usize,
    orgs: Vec<Organization>,
    organization_id: String,
    device_id: String,
    halts: Vec<ringfence_engine::store::HaltRecord>,
    can_halt: bool,
}

/// A maintenance window of one client's site in the next 72 hours, with what lands in it.
pub(super) struct WindowGroup {
    client: String,
    site: String,
    start: Timestamp,
    end: Timestamp,
    local: String,
    devices: Vec<String>,
    updates: Vec<String>,
    /// Device updates already created as deployments, and those only forecast.
    created: usize,
    forecast: usize,
}

/// The schedule preview: a calendar per organization (or device) of when each approved update
/// is expected to land, and why later ones wait.
pub(super) async fn schedule(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let params: ScheduleParams = match parse_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return viewer_error(&v, &uri, EngineError::Invalid(ValueError::new("query", e.body.message)));
        }
    };
    let p = &v.0.principal;
    let q = ringfence_proto::ScheduleQuery {
        organization_id: params.organization_id.clone(),
        device_id: params.device_id.clone(),
    };
    let result = async {
        let preview = s.engine.schedule_preview(p, &q).await?;
        let orgs = s.engine.organizations(p).await?;
        let halts = s.engine.halts(p).await?;
        Ok::<_, EngineError>((preview, orgs, halts))
    }
    .await;
    match result {
        Ok((preview, orgs, halts)) => {
            // The next 72 hours day by day (deployments created and those forecast), later
            // forecasts as a list, and what is not planned with the reason.
            let horizon = preview.generated_at + jiff::SignedDuration::from_hours(72);
            let mut days: Vec<(String, Vec<ringfence_engine::schedule::ScheduleEntry>)> = Vec::new();
            let mut later = Vec::new();
            let mut waiting = Vec::new();
            for e in &preview.entries {
                match e.start {
                    Some(t) if t < horizon => {
                        let day = t.strftime("%a %Y-%m-%d").to_string();
                        match days.last_mut() {
                            Some((d, list)) if *d == day => list.push(e.clone()),
                            _ => days.push((day, vec![e.clone()])),
                        }
                    }
                    Some(_) => later.push(e.clone()),
                    None => waiting.push(e.clone()),
                }
            }
            // One line per client, site and window: what lands where, at a glance.
            let mut windows: Vec<WindowGroup> = Vec::new();
            for e in days.iter().flat_map(|(_, list)| list) {
                let (Some(start), Some(end)) = (e.start, e.end) else { continue };
                let key = (e.organization.as_str(), e.site.as_str(), start, end);
                let g = match windows
                    .iter_mut()
                    .find(|g| (g.client.as_str(), g.site.as_str(), g.start, g.end) == key)
                {
                    Some(g) => g,
                    None => {
                        windows.push(WindowGroup {
                            client: e.organization.clone(),
                            site: e.site.clone(),
                            start,
                            end,
                            local: e
                                .local_start
                                .clone()
                                .map(|l| format!("{l} {}", e.time_zone))
                                .unwrap_or_default(),
                            devices: Vec::new(),
                            updates: Vec::new(),
                            created: 0,
                            forecast: 0,
                        });
                        windows.last_mut().expect("just pushed")
                    }
                };
                if !g.devices.contains(&e.hostname) {
                    g.devices.push(e.hostname.clone());
                }
                let update = format!("{} {}", e.product, e.version);
                if !g.updates.contains(&update) {
                    g.updates.push(update);
                }
                if e.deployment_id.is_some() { g.created += 1 } else { g.forecast += 1 }
            }
            windows.sort_by(|a, b| (a.start, &a.client, &a.site).cmp(&(b.start, &b.client, &b.site)));
            let created = preview.entries.iter().filter(|e| e.deployment_id.is_some()).count();
            let forecast =
                preview.entries.iter().filter(|e| e.deployment_id.is_none() && e.start.is_some()).count();
            render(SchedulePage {
                layout: layout(&v, "Schedule", "schedule", &uri),
                preview,
                days,
                windows,
                later,
                waiting,
                created,
                forecast,
                orgs,
                organization_id: params.organization_id.unwrap_or_default(),
                device_id: params.device_id.unwrap_or_default(),
                halts,
                can_halt: p.allows(Permission::Approve) && p.organization_id.is_none(),
            })
        }
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[derive(Deserialize)]
pub(super) struct HaltForm {
    product: String,
    version: String,
    reason: String,
}

pub(super) async fn halt(
    State(s): State<AppState>,
    v: Viewer,
    CsrfForm(f, _): CsrfForm<HaltForm>,
) -> Response {
    let req = proto::HaltRequest { product: f.product, version: f.version, reason: f.reason };
    match s.engine.halt_update(&v.0.principal, &req).await {
        Ok(h) => done("/schedule", Ok(format!("{} {} halted for every client", h.product, h.version))),
        Err(e) => done("/schedule", Err(msg(e))),
    }
}

#[derive(Deserialize)]
pub(super) struct ReleaseForm {
    reason: String,
}

pub(super) async fn release_halt(
    State(s): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    CsrfForm(f, _): CsrfForm<ReleaseForm>,
) -> Response {
    match s.engine.release_halt(&v.0.principal, &id, &proto::ReleaseRequest { reason: f.reason }).await {
        Ok(h) => done("/schedule", Ok(format!("{} {} released", h.product, h.version))),
        Err(e) => done("/schedule", Err(msg(e))),
    }
}
