//! The update catalog, the remediation queue and the decisions taken on it: approvals by
//! rule or by person, client exceptions, and risk decisions on findings with no patch yet.
//! Every decision is appended to the evidence chain with what it was made on.

use crate::policies::{Tree, policy_set};
use crate::tenancy::{body_id, path_id};
use crate::{Engine, EngineError, Result, require};
use ringfence_model::*;
use ringfence_policy::catalog::{self, Classification, Pending};
use ringfence_policy::{ApprovalRules, DeviceFacts, QueueEntry, UpdateFacts, Verdict, VulnFacts};
use ringfence_proto as proto;
use ringfence_store::{
    AgentIdentity, ApprovalRecord, DeviceUpdate, DeviceUpdateRow, ExceptionRecord, NewApproval, NewException,
    NewRiskDecision, QueueRow, RiskDecisionRecord,
};
use ringfence_versions::Scheme;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Most pending updates one device may report.
pub const MAX_PENDING: usize = 5_000;
/// The actor recorded for decisions made by policy rules.
pub const RULES_ACTOR: &str = "policy-rules";

/// One available update on one device, with the open findings it fixes.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    #[serde(flatten)]
    pub row: DeviceUpdateRow,
    /// CVEs of the device's open findings this update resolves (its version reaches their
    /// fixed version).
    pub fixes: Vec<String>,
}

/// One organization's state for a queue entry.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OrgState {
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    pub status: String,
    pub detail: String,
}

/// The factors of the highest-scoring finding an update resolves.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub cve_id: String,
    pub hostname: String,
    pub score: f64,
    pub ssvc: String,
    #[schema(value_type = Vec<Object>)]
    pub factors: Vec<ringfence_policy::Factor>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    pub product: String,
    /// The version that fixes it (or the candidate, for updates that fix no CVE); `None`
    /// when no fix exists yet.
    pub version: Option<String>,
    /// "openssl → 3.0.15-1~deb12u1: fixes 4 CVEs, 1 in KEV, on 212 devices in 9 organizations".
    pub summary: String,
    pub classification: String,
    pub cves: Vec<String>,
    pub kev_cves: usize,
    pub devices: usize,
    pub organizations: usize,
    pub risk_removed: f64,
    pub top_score: f64,
    /// The most urgent SSVC decision among its findings.
    pub ssvc: String,
    pub max_cvss: Option<f64>,
    pub reboot_required: bool,
    /// downgrade, snapshot or none; `unknown` until a device offers the update.
    pub rollback: String,
    /// Devices whose repositories already offer a version that reaches the fix.
    pub offered_on: usize,
    /// approved, rejected, deferred, awaiting_second, auto_approve, needs_review, waiting,
    /// excepted, mitigated, risk_accepted, no_fix, or mixed (organizations differ).
    pub status: String,
    pub detail: String,
    pub organization_states: Vec<OrgState>,
    pub explanation: Option<Explanation>,
    /// The devices that were offered this update (the planner's input), with their
    /// organization and the package the device installs for it.
    #[serde(skip)]
    #[schema(ignore)]
    pub offered_devices: Vec<(DeviceId, OrganizationId, DeviceUpdate)>,
}

fn ssvc_rank(d: ringfence_policy::Decision) -> u8 {
    use ringfence_policy::Decision::*;
    match d {
        Track => 0,
        TrackStar => 1,
        Attend => 2,
        Act => 3,
    }
}

fn ssvc_label(d: ringfence_policy::Decision) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{d:?}"))
}

fn scheme_of(manager: &str) -> Scheme {
    match manager {
        "rpm" | "dnf" | "yum" => Scheme::Rpm,
        "windows_update" => Scheme::Windows,
        "dpkg" | "apt" => Scheme::Deb,
        _ => Scheme::Generic,
    }
}

/// Whether `candidate` reaches `fixed` (a fix counts only when the ordering is known).
fn reaches(scheme: Scheme, candidate: &str, fixed: &str) -> bool {
    ringfence_versions::compare(scheme, candidate, fixed).is_ok_and(|o| o != std::cmp::Ordering::Less)
}

/// Reads a date from a request: RFC 3339, or YYYY-MM-DD meaning the end of that day (UTC).
pub(crate) fn parse_when(field: &str, s: &str) -> Result<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        let end = d
            .at(23, 59, 59, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| ValueError::new(field, e.to_string()))?;
        return Ok(end.timestamp());
    }
    Err(ValueError::new(
        field,
        format!("'{s}' is not a date: use YYYY-MM-DD or RFC 3339 (2026-12-31T23:59:00Z)"),
    )
    .into())
}

pub(crate) fn text(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ValueError::new(field, "must not be empty").into());
    }
    if t.chars().count() > max {
        return Err(ValueError::new(field, format!("is longer than {max} characters")).into());
    }
    if t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValueError::new(field, "must not contain control characters").into());
    }
    Ok(t.to_string())
}

fn future(field: &str, when: Timestamp, now: Timestamp) -> Result<Timestamp> {
    if when <= now {
        return Err(ValueError::new(field, "must be in the future").into());
    }
    if when.duration_since(now).as_secs() > 2 * 366 * 86_400 {
        return Err(ValueError::new(
            field,
            "must be within two years: decisions are reviewed at least that often",
        )
        .into());
    }
    Ok(when)
}

/// The decisions and rules that apply when a queue is worked out.
struct Context {
    now: Timestamp,
    org_names: HashMap<OrganizationId, String>,
    /// The approval rules of each organization (merged partner and organization policies),
    /// with the policy each came from.
    rules: HashMap<OrganizationId, (ApprovalRules, Option<(String, String)>)>,
    /// Decisions by (product, version), newest first.
    approvals: FastMap<(String, String), Vec<ApprovalRecord>>,
    /// Exceptions by organization.
    exceptions: FastMap<OrganizationId, Vec<ExceptionRecord>>,
    /// Risk decisions by (organization, product).
    risk: FastMap<(OrganizationId, String), Vec<RiskDecisionRecord>>,
    /// Every policy's name by id, to name the rule behind an approval.
    policy_names: HashMap<String, String>,
}

impl Context {
    /// A stored rule reference (`policy:ID:RULE`) in words: the rule and its policy by name.
    fn rule_label(&self, rule: &str) -> String {
        rule_label(rule, self.policy_names.iter().map(|(id, name)| (id.as_str(), name.as_str())))
    }

    /// Indexes the decisions so each (update, organization) finds its own in one lookup.
    fn new(
        now: Timestamp,
        org_names: HashMap<OrganizationId, String>,
        rules: HashMap<OrganizationId, (ApprovalRules, Option<(String, String)>)>,
        approvals: Vec<ApprovalRecord>,
        exceptions: Vec<ExceptionRecord>,
        risk: Vec<RiskDecisionRecord>,
    ) -> Self {
        let mut by_update: FastMap<(String, String), Vec<ApprovalRecord>> = FastMap::default();
        for a in approvals {
            by_update.entry((a.product.clone(), a.version.clone())).or_default().push(a);
        }
        let mut by_org: FastMap<OrganizationId, Vec<ExceptionRecord>> = FastMap::default();
        for e in exceptions {
            by_org.entry(e.organization_id.clone()).or_default().push(e);
        }
        let mut by_product: FastMap<(OrganizationId, String), Vec<RiskDecisionRecord>> = FastMap::default();
        for r in risk {
            by_product.entry((r.organization_id.clone(), r.product.clone())).or_default().push(r);
        }
        Context {
            now,
            org_names,
            rules,
            approvals: by_update,
            exceptions: by_org,
            risk: by_product,
            policy_names: HashMap::new(),
        }
    }
}

/// What a group's organization states are worked out from, gathered in one pass over the
/// group (not once per organization) and only when an organization has an exception or a
/// risk decision to check: every package name it touches, and per organization the
/// installed versions and the CVEs of its findings.
struct GroupNames<'a> {
    group: &'a Group<'a>,
    names: std::cell::OnceCell<FastSet<&'a str>>,
    installed: std::cell::OnceCell<FastMap<&'a OrganizationId, Vec<&'a str>>>,
    cves: std::cell::OnceCell<FastMap<&'a OrganizationId, FastSet<&'a str>>>,
}

impl<'a> GroupNames<'a> {
    fn of(group: &'a Group<'a>) -> Self {
        GroupNames {
            group,
            names: Default::default(),
            installed: Default::default(),
            cves: Default::default(),
        }
    }

    fn names(&self) -> &FastSet<&'a str> {
        self.names.get_or_init(|| {
            let g = self.group;
            let mut names: FastSet<&str> = FastSet::default();
            names.insert(g.product.as_str());
            for (r, ..) in &g.findings {
                names.extend(r.items.iter().map(String::as_str));
            }
            names.extend(g.updates.iter().map(|u| u.update.name.as_str()));
            names
        })
    }

    fn installed(&self, org: &OrganizationId) -> &[&'a str] {
        let all = self.installed.get_or_init(|| {
            let g = self.group;
            let mut installed: FastMap<&OrganizationId, Vec<&str>> = FastMap::default();
            for (r, ..) in &g.findings {
                installed.entry(&r.organization_id).or_default().push(r.installed_version.as_str());
            }
            for u in &g.updates {
                installed.entry(&u.organization_id).or_default().push(u.update.installed.as_str());
            }
            for v in installed.values_mut() {
                v.sort_unstable();
                v.dedup();
            }
            installed
        });
        all.get(org).map(Vec::as_slice).unwrap_or_default()
    }

    fn cves(&self, org: &OrganizationId) -> Option<&FastSet<&'a str>> {
        self.cves
            .get_or_init(|| {
                let mut cves: FastMap<&OrganizationId, FastSet<&str>> = FastMap::default();
                for (r, ..) in &self.group.findings {
                    cves.entry(&r.organization_id).or_default().insert(r.cve_id.as_str());
                }
                cves
            })
            .get(org)
    }
}

struct Group<'a> {
    product: String,
    version: Option<String>,
    /// Each finding with its score, SSVC decision and numbered (device, CVE, organization).
    findings: Vec<(&'a QueueRow, f64, ringfence_policy::Decision, [u32; 3])>,
    updates: Vec<&'a DeviceUpdateRow>,
    /// The numbered (device, organization) of each update.
    update_ids: Vec<[u32; 2]>,
}

/// Numbers strings in order of first sight, so sets of devices, CVEs and organizations are
/// sets of small integers.
#[derive(Default)]
struct Numbering<'a> {
    of: FastMap<&'a str, u32>,
}

impl<'a> Numbering<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        let next = self.of.len() as u32;
        *self.of.entry(s).or_insert(next)
    }

    /// Numbers `key`, and lists `value` in `by_number` the first time it is seen.
    fn number<T: ?Sized>(&mut self, key: &'a str, by_number: &mut Vec<&'a T>, value: &'a T) -> u32 {
        let n = self.id(key);
        if n as usize == by_number.len() {
            by_number.push(value);
        }
        n
    }
}

/// The number of distinct values.
fn distinct(mut v: Vec<u32>) -> usize {
    v.sort_unstable();
    v.dedup();
    v.len()
}

impl Context {
    fn org_state(
        &self,
        org: &OrganizationId,
        g: &Group<'_>,
        known: &GroupNames<'_>,
        facts: &UpdateFacts,
        class: Classification,
    ) -> (String, String) {
        let now = self.now;
        let day = |t: Timestamp| t.strftime("%Y-%m-%d").to_string();
        let scheme = g.updates.first().map(|u| scheme_of(&u.update.manager)).unwrap_or(Scheme::Deb);
        let target = g.version.as_deref().unwrap_or("");
        let mut last_expired: Option<&ExceptionRecord> = None;
        let exceptions = self.exceptions.get(org).map(Vec::as_slice).unwrap_or_default();
        for e in exceptions.iter().filter(|e| e.revoked_at.is_none()) {
            let (installed, names) = (known.installed(org), known.names());
            let (Ok(kind), Ok(range)) = (
                ringfence_policy::ExceptionKind::parse(&e.kind),
                ringfence_policy::VersionRange::parse(&e.version_range),
            ) else {
                continue;
            };
            let rule = ringfence_policy::Exception { kind, software: e.software.clone(), range };
            let holds = names.iter().any(|n| {
                installed.iter().any(|i| rule.holds(scheme, n, i, target))
                    || (installed.is_empty() && rule.holds(scheme, n, "", target))
            });
            if !holds {
                continue;
            }
            if e.expires_at > now {
                return (
                    "excepted".into(),
                    format!(
                        "held by exception: {} {} {} (owner {}, until {}): {}",
                        e.kind,
                        e.software,
                        e.version_range,
                        e.owner,
                        day(e.expires_at),
                        e.reason
                    ),
                );
            }
            last_expired = Some(e);
        }
        let approvals: Vec<&ApprovalRecord> = match &g.version {
            Some(v) => self
                .approvals
                .get(&(g.product.clone(), v.clone()))
                .into_iter()
                .flatten()
                .filter(|a| a.organization_id.as_ref().is_none_or(|o| o == org))
                .collect(),
            None => Vec::new(),
        };
        if let Some(e) = last_expired
            && !approvals.iter().any(|a| a.created_at > e.expires_at)
        {
            return (
                "needs_review".into(),
                format!(
                    "exception '{} {}' expired on {}: review the update",
                    e.software,
                    e.version_range,
                    day(e.expires_at)
                ),
            );
        }
        if g.version.is_none() {
            let decisions =
                self.risk.get(&(org.clone(), g.product.clone())).map(Vec::as_slice).unwrap_or_default();
            let no_cves = FastSet::default();
            let cves = if decisions.is_empty() { &no_cves } else { known.cves(org).unwrap_or(&no_cves) };
            let live = |r: &&RiskDecisionRecord| r.revoked_at.is_none();
            let covered: Vec<&RiskDecisionRecord> = decisions
                .iter()
                .filter(live)
                .filter(|r| r.expires_at > now && cves.contains(r.cve_id.as_str()))
                .collect();
            let covered_cves: BTreeSet<&str> = covered.iter().map(|r| r.cve_id.as_str()).collect();
            if !cves.is_empty() && covered_cves.len() == cves.len() {
                let r = covered[0];
                let what = if r.kind == "mitigated" {
                    format!("mitigated by {}", r.control)
                } else {
                    "risk accepted".into()
                };
                return (
                    r.kind.clone(),
                    format!("{what} (owner {}, until {}): {}", r.owner, day(r.expires_at), r.reason),
                );
            }
            if let Some(r) = decisions
                .iter()
                .filter(live)
                .find(|r| r.expires_at <= now && cves.contains(r.cve_id.as_str()))
            {
                return (
                    "no_fix".into(),
                    format!(
                        "no fix yet; the {} decision expired on {}: decide again",
                        r.kind.replace('_', " "),
                        day(r.expires_at)
                    ),
                );
            }
            return (
                "no_fix".into(),
                "no fixed version is known yet: mitigate, accept the risk, or wait for a fix".into(),
            );
        }
        if let Some(a) = approvals.first() {
            let by = a.rule.as_deref().map(|r| self.rule_label(r)).unwrap_or_else(|| a.decided_by.clone());
            let scope = if a.organization_id.is_some() { "for this organization" } else { "partner-wide" };
            match a.decision.as_str() {
                "approved" => {
                    let emergency = if a.emergency { " (emergency override)" } else { "" };
                    return (
                        "approved".into(),
                        format!("approved {scope} by {by} on {}{emergency}: {}", day(a.created_at), a.reason),
                    );
                }
                "rejected" => {
                    return (
                        "rejected".into(),
                        format!("rejected {scope} by {by} on {}: {}", day(a.created_at), a.reason),
                    );
                }
                "awaiting_second" => {
                    return (
                        "awaiting_second".into(),
                        format!("emergency override by {by} awaits a second approver: {}", a.reason),
                    );
                }
                "deferred" if a.defer_until.is_some_and(|u| u > now) => {
                    return (
                        "deferred".into(),
                        format!(
                            "deferred {scope} by {by} until {}: {}",
                            a.defer_until.map(day).unwrap_or_default(),
                            a.reason
                        ),
                    );
                }
                _ => {}
            }
        }
        let (rules, source) = self.rules.get(org).cloned().unwrap_or_default();
        let from = source
            .map(|(_, name)| format!(" (policy '{name}')"))
            .unwrap_or_else(|| " (default rules)".into());
        let _ = class;
        match ringfence_policy::evaluate(&rules, facts, now.as_second()) {
            Verdict::Approve { rule, reason } => {
                ("auto_approve".into(), format!("rule '{rule}'{from} approves it: {reason}"))
            }
            Verdict::Wait { until, reason } => {
                let until = Timestamp::from_second(until).map(day).unwrap_or_default();
                ("waiting".into(), format!("{reason}{from}: review from {until}"))
            }
            Verdict::Review { reason } => ("needs_review".into(), format!("{reason}{from}")),
        }
    }
}

impl Engine {
    /// Stores an agent's pending updates, classified, as the device's catalog.
    pub async fn agent_updates(&self, a: &AgentIdentity, req: proto::AgentPendingUpdates) -> Result<usize> {
        if req.updates.len() > MAX_PENDING {
            return Err(ValueError::new(
                "updates",
                format!(
                    "{} pending updates is more than the {MAX_PENDING} a report may hold",
                    req.updates.len()
                ),
            )
            .into());
        }
        let mut out = Vec::with_capacity(req.updates.len());
        let mut seen = BTreeSet::new();
        for u in req.updates {
            let manager = text("updates.manager", &u.manager, 32)?;
            let name = text("updates.name", &u.name, 200)?;
            let installed = if u.installed.trim().is_empty() {
                String::new()
            } else {
                text("updates.installed", &u.installed, 200)?
            };
            let candidate = text("updates.candidate", &u.candidate, 200)?;
            let origin = if u.origin.trim().is_empty() {
                String::new()
            } else {
                text("updates.origin", &u.origin, 200)?
            };
            if !seen.insert(name.clone()) {
                return Err(ValueError::new("updates.name", format!("'{name}' is listed twice")).into());
            }
            for c in &u.cves {
                crate::findings::parse_cve_id(c)
                    .map_err(|_| ValueError::new("updates.cves", format!("'{c}' is not a CVE id")))?;
            }
            if u.advisories.len() > 100 || u.advisories.iter().any(|x| x.len() > 100) {
                return Err(ValueError::new(
                    "updates.advisories",
                    "at most 100 advisory ids of up to 100 characters",
                )
                .into());
            }
            let pending = Pending {
                manager: &manager,
                name: &name,
                origin: &origin,
                security: u.security || !u.cves.is_empty(),
            };
            let class = catalog::classify(&pending);
            out.push(DeviceUpdate {
                reboot_required: catalog::needs_reboot(&pending, class),
                rollback: catalog::rollback(&pending, class).as_str().into(),
                classification: class.as_str().into(),
                manager,
                name,
                installed,
                candidate,
                origin,
                advisories: u.advisories,
                cves: u.cves.iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
            });
        }
        self.store.replace_device_updates(&a.partner_id, &a.device_id, &out, self.now()).await?;
        Ok(out.len())
    }

    /// A device's available updates, each with the findings it fixes.
    pub async fn device_updates(&self, p: &Principal, device: &str) -> Result<Vec<CatalogEntry>> {
        require(p, Permission::Read, "read updates")?;
        let device = path_id(DeviceId::parse, device, "device")?;
        let scope = p.scope();
        self.store.get_device(&scope, &device).await?;
        let rows = self.store.list_device_updates(&scope, Some(&device)).await?;
        let findings = self.store.queue_findings(&scope, None).await?;
        let mine: Vec<&QueueRow> = findings.iter().filter(|f| f.device_id == device).collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let scheme = scheme_of(&row.update.manager);
                let fixes = mine
                    .iter()
                    .filter(|f| f.items.contains(&row.update.name) || f.product == row.update.name)
                    .filter(|f| {
                        f.fixed_version.as_deref().is_some_and(|v| reaches(scheme, &row.update.candidate, v))
                    })
                    .map(|f| f.cve_id.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                CatalogEntry { row, fixes }
            })
            .collect())
    }

    async fn context(&self, scope: &Scope) -> Result<Context> {
        let partner_scope = Scope::partner(scope.partner_id.clone());
        let partner = self.store.get_partner(&partner_scope).await?;
        let orgs = self.store.list_organizations(scope).await?;
        let records = self.store.list_policies(&partner_scope).await?;
        // Approval rules are read at the organization level (partner and organization
        // policies), because approvals are scoped to the partner or one organization.
        let org_level: Vec<_> =
            records.iter().filter(|r| r.level == "partner" || r.level == "organization").cloned().collect();
        let tree = Tree {
            names: orgs
                .iter()
                .map(|o| ((ringfence_policy::Level::Organization, o.id.to_string()), o.name.clone()))
                .collect(),
            devices: Vec::new(),
        };
        let set = policy_set(&org_level, &tree, partner.name.as_ref())?;
        let mut rules = HashMap::new();
        for o in &orgs {
            let at = ringfence_policy::Placement {
                organization: o.id.as_str(),
                site: "",
                groups: &[],
                device: "",
            };
            let entry = match set.effective(at) {
                Ok(e) => match e.get("approval") {
                    Some(f) => (
                        ApprovalRules::from_value(&f.value).unwrap_or_default(),
                        Some((f.policy_id.clone(), f.policy.clone())),
                    ),
                    None => (ApprovalRules::default(), None),
                },
                Err(_) => (ApprovalRules::default(), None),
            };
            rules.insert(o.id.clone(), entry);
        }
        let mut ctx = Context::new(
            self.now(),
            orgs.into_iter().map(|o| (o.id, o.name.to_string())).collect(),
            rules,
            self.store.list_approvals(scope, 100_000).await?,
            self.store.list_exceptions(scope).await?,
            self.store.list_risk_decisions(scope).await?,
        );
        ctx.policy_names = records.iter().map(|r| (r.id.clone(), r.name.clone())).collect();
        Ok(ctx)
    }

    /// The remediation queue of the caller's scope.
    pub async fn remediation_queue(&self, p: &Principal, q: &proto::QueueQuery) -> Result<Vec<QueueItem>> {
        require(p, Permission::Read, "read the remediation queue")?;
        let org = match q.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(o) => Some(body_id(OrganizationId::parse, o, "organization_id")?),
            None => None,
        };
        let mut items = self.queue_of(&p.scope(), org.as_ref()).await?;
        if q.kev == Some(true) {
            items.retain(|i| i.kev_cves > 0);
        }
        if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
            const STATUSES: &[&str] = &[
                "approved",
                "rejected",
                "deferred",
                "awaiting_second",
                "auto_approve",
                "needs_review",
                "waiting",
                "excepted",
                "mitigated",
                "risk_accepted",
                "no_fix",
                "mixed",
            ];
            if !STATUSES.contains(&s) {
                return Err(ValueError::new(
                    "status",
                    format!("'{s}' is not a status: use one of {}", STATUSES.join(", ")),
                )
                .into());
            }
            items.retain(|i| i.status == s || i.organization_states.iter().any(|o| o.status == s));
        }
        if let Some(s) = q.search.as_deref().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()) {
            items.retain(|i| {
                i.product.to_lowercase().contains(&s) || i.cves.iter().any(|c| c.to_lowercase().contains(&s))
            });
        }
        match q.sort.as_deref().unwrap_or("risk") {
            "risk" => {}
            "devices" => items
                .sort_by(|a, b| b.devices.cmp(&a.devices).then(b.risk_removed.total_cmp(&a.risk_removed))),
            "cves" => items.sort_by(|a, b| {
                b.cves.len().cmp(&a.cves.len()).then(b.risk_removed.total_cmp(&a.risk_removed))
            }),
            "product" => items.sort_by(|a, b| a.product.cmp(&b.product).then(a.version.cmp(&b.version))),
            other => {
                return Err(ValueError::new(
                    "sort",
                    format!("'{other}' is not a sort: use risk, devices, cves or product"),
                )
                .into());
            }
        }
        Ok(items)
    }

    pub(crate) async fn queue_of(
        &self,
        scope: &Scope,
        org: Option<&OrganizationId>,
    ) -> Result<Vec<QueueItem>> {
        let rows = self.store.queue_findings(scope, org).await?;
        let updates: Vec<DeviceUpdateRow> = self
            .store
            .list_device_updates(scope, None)
            .await?
            .into_iter()
            .filter(|u| org.is_none_or(|o| &u.organization_id == o))
            .collect();
        let ctx = self.context(scope).await?;
        let total_devices = self
            .store
            .list_devices(scope, &ringfence_store::DeviceQuery { limit: 1, ..Default::default() })
            .await?
            .total
            .max(1);
        Ok(build_queue(&ctx, &rows, &updates, total_devices as f64))
    }

    /// Approves, rejects or defers updates in bulk, with a reason.
    pub async fn decide(&self, p: &Principal, req: &proto::DecisionRequest) -> Result<Vec<ApprovalRecord>> {
        require(p, Permission::Approve, "approve, reject or defer updates")?;
        let now = self.now();
        let reason = text("reason", &req.reason, 1000)?;
        if req.updates.is_empty() || req.updates.len() > 500 {
            return Err(ValueError::new("updates", "name 1 to 500 updates").into());
        }
        let org = match req.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(o) => Some(body_id(OrganizationId::parse, o, "organization_id")?),
            None if p.organization_id.is_some() => p.organization_id.clone(),
            None => None,
        };
        if let (Some(mine), Some(o)) = (&p.organization_id, &org)
            && mine != o
        {
            return Err(EngineError::NotFound("organization"));
        }
        let (decision, defer_until) = match req.decision.as_str() {
            "approve" => ("approved", None),
            "reject" => ("rejected", None),
            "defer" => {
                let until = req
                    .defer_until
                    .as_deref()
                    .ok_or_else(|| ValueError::new("defer_until", "a deferral needs a date"))?;
                ("deferred", Some(future("defer_until", parse_when("defer_until", until)?, now)?))
            }
            other => {
                return Err(ValueError::new(
                    "decision",
                    format!("'{other}' is not a decision: use approve, reject or defer"),
                )
                .into());
            }
        };
        if req.emergency && decision != "approved" {
            return Err(ValueError::new("emergency", "only an approval can be an emergency override").into());
        }
        if req.decision != "defer" && req.defer_until.is_some() {
            return Err(ValueError::new("defer_until", "only a deferral takes a date").into());
        }
        let scope = p.scope();
        let queue = self.queue_of(&scope, org.as_ref()).await?;
        let ctx_rules = if req.emergency { Some(self.context(&scope).await?) } else { None };
        let mut out = Vec::new();
        for u in &req.updates {
            let item = queue
                .iter()
                .find(|i| i.product == u.product && i.version.as_deref() == Some(u.version.as_str()))
                .ok_or_else(|| {
                    ValueError::new(
                        "updates",
                        format!("{} {} is not in the remediation queue of this scope", u.product, u.version),
                    )
                })?;
            if item.organization_states.iter().all(|s| s.status == "excepted") {
                return Err(EngineError::Conflict(format!(
                    "{} {} is held by a client exception: revoke the exception first",
                    u.product, u.version
                )));
            }
            let second = ctx_rules.as_ref().is_some_and(|c| {
                let orgs: Vec<&OrganizationId> = match &org {
                    Some(o) => vec![o],
                    None => c.rules.keys().collect(),
                };
                orgs.iter().any(|o| c.rules.get(*o).is_none_or(|(r, _)| r.emergency_second_approver))
            });
            out.push(NewApproval {
                organization_id: org.clone(),
                product: u.product.clone(),
                version: u.version.clone(),
                decision: if second { "awaiting_second".into() } else { decision.into() },
                defer_until,
                reason: reason.clone(),
                rule: None,
                score: Some(item.top_score),
                emergency: req.emergency,
                inputs: json!({
                    "cves": item.cves, "kev_cves": item.kev_cves, "risk_removed": item.risk_removed,
                    "top_score": item.top_score, "ssvc": item.ssvc, "devices": item.devices,
                    "classification": item.classification, "status_before": item.status,
                }),
            });
        }
        Ok(self.store.create_approvals(&self.audit(p), &scope, &out).await?)
    }

    /// The second approval of an emergency override.
    pub async fn confirm_approval(&self, p: &Principal, id: &str) -> Result<ApprovalRecord> {
        require(p, Permission::Approve, "approve updates")?;
        Ok(self.store.confirm_approval(&self.audit(p), &p.scope(), id).await?)
    }

    pub async fn approvals(&self, p: &Principal, limit: i64) -> Result<Vec<ApprovalRecord>> {
        require(p, Permission::Read, "read approvals")?;
        Ok(self.store.list_approvals(&p.scope(), limit.clamp(1, 10_000)).await?)
    }

    /// Records the approvals the policy rules make for the scope's queue; returns them.
    pub async fn run_approval_rules(&self, p: &Principal) -> Result<Vec<ApprovalRecord>> {
        require(p, Permission::Approve, "run the approval rules")?;
        self.apply_rules(&p.scope()).await
    }

    /// Runs the approval rules for every partner (the server's periodic task).
    pub async fn run_all_approval_rules(&self) -> Result<usize> {
        // One partner's failure (a policy that no longer parses, a database hiccup) must not
        // stop the rules of every other partner: it is logged and the next partner runs.
        let mut n = 0;
        for partner in self.store.list_partners().await? {
            match self.apply_rules(&Scope::partner(partner.id.clone())).await {
                Ok(decided) => n += decided.len(),
                Err(e) => {
                    tracing::warn!(partner = %partner.id, error = %e, "approval rules failed for this partner")
                }
            }
        }
        Ok(n)
    }

    async fn apply_rules(&self, scope: &Scope) -> Result<Vec<ApprovalRecord>> {
        let queue = self.queue_of(scope, None).await?;
        let ctx = self.context(scope).await?;
        let mut out = Vec::new();
        for item in &queue {
            for s in item.organization_states.iter().filter(|s| s.status == "auto_approve") {
                let (rules, source) = ctx.rules.get(&s.organization_id).cloned().unwrap_or_default();
                let facts = UpdateFacts {
                    classification: Classification::parse(&item.classification).ok(),
                    kev: item.kev_cves > 0,
                    max_cvss: item.max_cvss,
                    ssvc_act: item.ssvc == "Act",
                    available_since: None,
                };
                let Verdict::Approve { rule, reason } =
                    ringfence_policy::evaluate(&rules, &facts, ctx.now.as_second())
                else {
                    continue;
                };
                let policy = source.map(|(id, _)| id).unwrap_or_else(|| "default".into());
                out.push(NewApproval {
                    organization_id: Some(s.organization_id.clone()),
                    product: item.product.clone(),
                    version: item.version.clone().unwrap_or_default(),
                    decision: "approved".into(),
                    defer_until: None,
                    reason,
                    rule: Some(format!("policy:{policy}:{rule}")),
                    score: Some(item.top_score),
                    emergency: false,
                    inputs: json!({
                        "rule": rule, "policy": policy, "cves": item.cves, "kev_cves": item.kev_cves,
                        "max_cvss": item.max_cvss, "ssvc": item.ssvc, "top_score": item.top_score,
                        "classification": item.classification,
                    }),
                });
            }
        }
        if out.is_empty() {
            return Ok(Vec::new());
        }
        let audit = ringfence_store::Audit::new(RULES_ACTOR, self.now());
        Ok(self.store.create_approvals(&audit, scope, &out).await?)
    }

    pub async fn exceptions(&self, p: &Principal) -> Result<Vec<ExceptionRecord>> {
        require(p, Permission::Read, "read exceptions")?;
        Ok(self.store.list_exceptions(&p.scope()).await?)
    }

    pub async fn create_exception(
        &self,
        p: &Principal,
        req: &proto::CreateException,
    ) -> Result<ExceptionRecord> {
        require(p, Permission::Approve, "record exceptions")?;
        let now = self.now();
        let kind = ringfence_policy::ExceptionKind::parse(req.kind.trim())
            .map_err(|m| ValueError::new("kind", m))?;
        let range = ringfence_policy::VersionRange::parse(&req.version_range)
            .map_err(|m| ValueError::new("version_range", m))?;
        let new = NewException {
            organization_id: body_id(OrganizationId::parse, &req.organization_id, "organization_id")?,
            kind: kind.as_str().into(),
            software: text("software", &req.software, 200)?,
            version_range: range.as_str().into(),
            owner: text("owner", &req.owner, 200)?,
            reason: text("reason", &req.reason, 1000)?,
            expires_at: future("expires", parse_when("expires", &req.expires)?, now)?,
        };
        Ok(self.store.create_exception(&self.audit(p), &p.scope(), &new).await?)
    }

    pub async fn revoke_exception(&self, p: &Principal, id: &str) -> Result<ExceptionRecord> {
        require(p, Permission::Approve, "revoke exceptions")?;
        Ok(self.store.revoke_exception(&self.audit(p), &p.scope(), id).await?)
    }

    pub async fn risk_decisions(&self, p: &Principal) -> Result<Vec<RiskDecisionRecord>> {
        require(p, Permission::Read, "read risk decisions")?;
        Ok(self.store.list_risk_decisions(&p.scope()).await?)
    }

    /// Marks findings with no patch yet as mitigated or risk-accepted, until an expiry.
    pub async fn create_risk_decision(
        &self,
        p: &Principal,
        req: &proto::CreateRiskDecision,
    ) -> Result<RiskDecisionRecord> {
        require(p, Permission::Approve, "record risk decisions")?;
        let kind = match req.kind.trim() {
            k @ ("mitigated" | "risk_accepted") => k.to_string(),
            other => {
                return Err(ValueError::new(
                    "kind",
                    format!("'{other}' is not a kind: use mitigated or risk_accepted"),
                )
                .into());
            }
        };
        let control = if kind == "mitigated" {
            text("control", &req.control, 1000)?
        } else {
            req.control.trim().to_string()
        };
        let org = body_id(OrganizationId::parse, &req.organization_id, "organization_id")?;
        let cve = crate::findings::parse_cve_id(&req.cve_id)?;
        let product = text("product", &req.product, 200)?;
        let scope = p.scope();
        let open = self.store.queue_findings(&scope, Some(&org)).await?;
        let mine: Vec<&QueueRow> = open.iter().filter(|f| f.cve_id == cve && f.product == product).collect();
        if mine.is_empty() {
            return Err(ValueError::new(
                "cve_id",
                format!("{cve} has no open finding for {product} in this organization"),
            )
            .into());
        }
        if mine.iter().any(|f| f.fixed_version.is_some()) {
            return Err(EngineError::Conflict(format!(
                "{cve} in {product} has a fix: approve the update instead, or record an exception"
            )));
        }
        let new = NewRiskDecision {
            organization_id: org,
            cve_id: cve,
            product,
            kind,
            control,
            owner: text("owner", &req.owner, 200)?,
            reason: text("reason", &req.reason, 1000)?,
            expires_at: future("expires", parse_when("expires", &req.expires)?, self.now())?,
        };
        Ok(self.store.create_risk_decision(&self.audit(p), &scope, &new).await?)
    }

    pub async fn revoke_risk_decision(&self, p: &Principal, id: &str) -> Result<RiskDecisionRecord> {
        require(p, Permission::Approve, "revoke risk decisions")?;
        Ok(self.store.revoke_risk_decision(&self.audit(p), &p.scope(), id).await?)
    }
}

/// Scores every finding, groups them by the update that fixes them, adds the catalog's
/// updates that fix no finding, and works out each organization's state.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Ranks a queue with no decisions, exceptions or approval rules on record: what
/// `ringfence bench policy` measures, the same work as every queue request minus the reads.
/// A stored approval-rule reference (`policy:ID:RULE`, or `policy:default:RULE`) in words,
/// with the policy's name from `policies` (id, name): "the kev rule of the policy 'Baseline'".
/// A reference whose policy is gone keeps its rule name and says so.
pub fn rule_label<'a>(rule: &str, mut policies: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut parts = rule.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("policy"), Some("default"), Some(r)) => format!("the {r} rule of the default approval rules"),
        (Some("policy"), Some(id), Some(r)) => match policies.find(|(pid, _)| *pid == id) {
            Some((_, name)) => format!("the {r} rule of the policy '{name}'"),
            None => format!("the {r} rule of a policy since removed"),
        },
        _ => format!("rule {rule}"),
    }
}

pub fn rank_queue(
    now: Timestamp,
    rows: &[QueueRow],
    updates: &[DeviceUpdateRow],
    fleet: usize,
) -> Vec<QueueItem> {
    let ctx = Context::new(now, HashMap::new(), HashMap::new(), Vec::new(), Vec::new(), Vec::new());
    build_queue(&ctx, rows, updates, fleet.max(1) as f64)
}

fn build_queue(ctx: &Context, rows: &[QueueRow], updates: &[DeviceUpdateRow], fleet: f64) -> Vec<QueueItem> {
    // Number devices, CVEs and organizations once (devices on a second thread). Keys come
    // from agents: the hasher keeps a per-process random seed, so crafted names cannot force
    // collisions.
    let (device_count, row_devices, update_devices, cve_by_number, org_by_number, row_ids, update_orgs) =
        std::thread::scope(|scope| {
            let numbered = scope.spawn(|| {
                let mut devices = Numbering::default();
                let rows: Vec<u32> = rows.iter().map(|r| devices.id(r.device_id.as_str())).collect();
                let updates: Vec<u32> = updates.iter().map(|u| devices.id(u.device_id.as_str())).collect();
                (devices.of.len(), rows, updates)
            });
            let (mut cves, mut orgs) = (Numbering::default(), Numbering::default());
            let (mut cve_by_number, mut org_by_number): (Vec<&str>, Vec<&OrganizationId>) =
                Default::default();
            let row_ids: Vec<[u32; 2]> = rows
                .iter()
                .map(|r| {
                    [
                        cves.number(&r.cve_id, &mut cve_by_number, r.cve_id.as_str()),
                        orgs.number(r.organization_id.as_str(), &mut org_by_number, &r.organization_id),
                    ]
                })
                .collect();
            let update_orgs: Vec<u32> = updates
                .iter()
                .map(|u| orgs.number(u.organization_id.as_str(), &mut org_by_number, &u.organization_id))
                .collect();
            let (count, row_devices, update_devices) = numbered.join().expect("numbering devices");
            (count, row_devices, update_devices, cve_by_number, org_by_number, row_ids, update_orgs)
        });
    let ids: Vec<[u32; 3]> = row_devices.iter().zip(&row_ids).map(|(d, [c, o])| [*d, *c, *o]).collect();
    let update_ids: Vec<[u32; 2]> = update_devices.iter().zip(&update_orgs).map(|(d, o)| [*d, *o]).collect();
    drop((row_devices, row_ids, update_devices, update_orgs));
    // Prevalence: the devices that share each CVE.
    let mut pairs: Vec<u64> = ids.iter().map(|[d, c, _]| (u64::from(*c) << 32) | u64::from(*d)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut per_cve = vec![0u32; cve_by_number.len()];
    for p in &pairs {
        per_cve[(p >> 32) as usize] += 1;
    }
    drop(pairs);
    let prevalence = |c: u32| f64::from(per_cve[c as usize]) / fleet;
    // Scores, half on a second thread.
    let score_all = |rows: &[QueueRow], ids: &[[u32; 3]]| -> Vec<(f64, ringfence_policy::Decision)> {
        rows.iter().zip(ids).map(|(r, id)| quick_score_row(r, prevalence(id[1]))).collect()
    };
    let half = rows.len() / 2;
    let scores: Vec<(f64, ringfence_policy::Decision)> = std::thread::scope(|scope| {
        let second = scope.spawn(|| score_all(&rows[half..], &ids[half..]));
        let mut first = score_all(&rows[..half], &ids[..half]);
        first.extend(second.join().expect("scoring findings"));
        first
    });
    // Groups in order of first appearance, found by (product, fixed version).
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: FastMap<(&str, Option<&str>), usize> = FastMap::default();
    for ((r, id), (score, ssvc)) in rows.iter().zip(&ids).zip(scores) {
        let gi = *group_of.entry((r.product.as_str(), r.fixed_version.as_deref())).or_insert_with(|| {
            groups.push(Group {
                product: r.product.clone(),
                version: r.fixed_version.clone(),
                findings: Vec::new(),
                updates: Vec::new(),
                update_ids: Vec::new(),
            });
            groups.len() - 1
        });
        groups[gi].findings.push((r, score, ssvc, *id));
    }
    // Link the catalog: an update offered to a device fixes the findings of that device under
    // its package name when the candidate reaches their fixed version. The updates are
    // listed per device, so each finding looks only at its own device's few updates, and
    // each (candidate, fixed version) pair is compared once.
    let mut offered: Vec<Vec<usize>> = vec![Vec::new(); device_count];
    for (ui, id) in update_ids.iter().enumerate() {
        offered[id[0] as usize].push(ui);
    }
    let mut compared: FastMap<(Scheme, &str, &str), bool> = FastMap::default();
    // The group each update was last checked against, so a device's many findings in one
    // group check its update once.
    let mut checked: Vec<usize> = vec![usize::MAX; updates.len()];
    let mut linked = vec![false; updates.len()];
    for (gi, g) in groups.iter_mut().enumerate() {
        let Some(fixed) = g.version.as_deref() else { continue };
        let mut found = Vec::new();
        for (r, .., id) in &g.findings {
            for &ui in &offered[id[0] as usize] {
                if checked[ui] == gi {
                    continue;
                }
                let u = &updates[ui];
                let name = u.update.name.as_str();
                if r.product != name && !r.items.iter().any(|i| i == name) {
                    continue;
                }
                checked[ui] = gi;
                let scheme = scheme_of(&u.update.manager);
                let fixes = *compared
                    .entry((scheme, u.update.candidate.as_str(), fixed))
                    .or_insert_with(|| reaches(scheme, &u.update.candidate, fixed));
                if fixes {
                    found.push(ui);
                    linked[ui] = true;
                }
            }
        }
        found.sort_unstable();
        g.updates.extend(found.iter().map(|ui| &updates[*ui]));
        g.update_ids.extend(found.iter().map(|ui| update_ids[*ui]));
    }
    drop(offered);
    // Updates that fix no open finding are queue entries of their own.
    for ((u, id), _) in updates.iter().zip(&update_ids).zip(&linked).filter(|(_, l)| !**l) {
        let key = (u.update.name.as_str(), Some(u.update.candidate.as_str()));
        let gi = *group_of.entry(key).or_insert_with(|| {
            groups.push(Group {
                product: u.update.name.clone(),
                version: Some(u.update.candidate.clone()),
                findings: Vec::new(),
                updates: Vec::new(),
                update_ids: Vec::new(),
            });
            groups.len() - 1
        });
        groups[gi].updates.push(u);
        groups[gi].update_ids.push(*id);
    }
    let mut items: Vec<(Option<QueueEntry>, QueueItem)> = groups
        .iter()
        .map(|g| {
            let top = g.findings.iter().max_by(|a, b| a.1.total_cmp(&b.1));
            let ssvc = g.findings.iter().map(|(_, _, d, _)| *d).max_by_key(|d| ssvc_rank(*d));
            let max_cvss = g.findings.iter().filter_map(|(r, ..)| r.cvss_score).reduce(f64::max);
            let kev = g.findings.iter().any(|(r, ..)| r.kev);
            let class = if !g.findings.is_empty() {
                // A fix of a CVE is a security update unless the catalog knows it as a driver
                // or firmware.
                g.updates
                    .iter()
                    .filter_map(|u| Classification::parse(&u.update.classification).ok())
                    .find(|c| matches!(c, Classification::Driver | Classification::Firmware))
                    .unwrap_or(Classification::Security)
            } else {
                g.updates
                    .iter()
                    .filter_map(|u| Classification::parse(&u.update.classification).ok())
                    .min()
                    .unwrap_or(Classification::Bugfix)
            };
            let available_since = g.updates.iter().map(|u| u.first_seen.as_second()).min();
            let facts = UpdateFacts {
                classification: Some(class),
                kev,
                max_cvss,
                ssvc_act: ssvc == Some(ringfence_policy::Decision::Act),
                available_since,
            };
            let mut org_numbers: Vec<u32> =
                g.findings.iter().map(|(.., id)| id[2]).chain(g.update_ids.iter().map(|id| id[1])).collect();
            org_numbers.sort_unstable();
            org_numbers.dedup();
            let mut orgs: Vec<&OrganizationId> =
                org_numbers.iter().map(|n| org_by_number[*n as usize]).collect();
            orgs.sort_unstable();
            let known = GroupNames::of(g);
            let organization_states: Vec<OrgState> = orgs
                .iter()
                .map(|o| {
                    let (status, detail) = ctx.org_state(o, g, &known, &facts, class);
                    OrgState {
                        organization_id: (*o).clone(),
                        organization: ctx.org_names.get(*o).cloned().unwrap_or_else(|| o.to_string()),
                        status,
                        detail,
                    }
                })
                .collect();
            let (status, detail) = match organization_states.as_slice() {
                [one] => (one.status.clone(), one.detail.clone()),
                all if all.iter().all(|s| s.status == all[0].status) => {
                    (all[0].status.clone(), all[0].detail.clone())
                }
                all => {
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for s in all {
                        *counts.entry(&s.status).or_default() += 1;
                    }
                    let parts: Vec<String> =
                        counts.iter().map(|(s, n)| format!("{n} {}", s.replace('_', " "))).collect();
                    ("mixed".into(), format!("organizations differ: {}", parts.join(", ")))
                }
            };
            let finding_devices: Vec<u32> = g.findings.iter().map(|(.., id)| id[0]).collect();
            let offered = distinct(g.update_ids.iter().map(|id| id[0]).collect());
            let devices = distinct(
                finding_devices.iter().copied().chain(g.update_ids.iter().map(|id| id[0])).collect(),
            );
            let finding_devices = distinct(finding_devices);
            let finding_orgs = distinct(g.findings.iter().map(|(.., id)| id[2]).collect());
            let named = |kev_only: bool| {
                let mut numbers: Vec<u32> =
                    g.findings.iter().filter(|(r, ..)| !kev_only || r.kev).map(|(.., id)| id[1]).collect();
                numbers.sort_unstable();
                numbers.dedup();
                let mut out: Vec<&str> = numbers.iter().map(|n| cve_by_number[*n as usize]).collect();
                out.sort_unstable();
                out
            };
            let (cves, kev_cves) = (named(false), named(true));
            let entry = (!g.findings.is_empty()).then(|| QueueEntry {
                product: g.product.clone(),
                fixed_version: g.version.clone(),
                cves: cves.iter().map(|c| c.to_string()).collect(),
                kev_cves: kev_cves.len(),
                devices: finding_devices,
                organizations: finding_orgs,
                risk_removed: (g.findings.iter().map(|(_, s, ..)| s.max(0.0)).sum::<f64>() * 10.0).round()
                    / 10.0,
                top_score: top.map(|t| t.1).unwrap_or(0.0),
            });
            let summary = match &entry {
                Some(e) => e.summary(),
                None => format!(
                    "{} → {}: {} update, fixes no known CVE, on {} device{}",
                    g.product,
                    g.version.as_deref().unwrap_or("?"),
                    class.as_str(),
                    devices,
                    if devices == 1 { "" } else { "s" }
                ),
            };
            let explanation = top.map(|(r, .., id)| {
                let (s, _) = score_row(r, prevalence(id[1]));
                Explanation {
                    cve_id: r.cve_id.clone(),
                    hostname: r.hostname.clone(),
                    score: s.score,
                    ssvc: ssvc_label(s.ssvc),
                    factors: s.factors,
                }
            });
            let item = QueueItem {
                product: g.product.clone(),
                version: g.version.clone(),
                summary,
                classification: class.as_str().into(),
                cves: cves.iter().map(|c| c.to_string()).collect(),
                kev_cves: kev_cves.len(),
                devices,
                organizations: orgs.len(),
                risk_removed: entry.as_ref().map(|e| e.risk_removed).unwrap_or(0.0),
                top_score: entry.as_ref().map(|e| e.top_score).unwrap_or(0.0),
                ssvc: ssvc.map(ssvc_label).unwrap_or_else(|| "Track".into()),
                max_cvss,
                reboot_required: g.updates.iter().any(|u| u.update.reboot_required)
                    || (g.updates.is_empty() && is_windows_release(&g.product)),
                rollback: g.updates.first().map(|u| u.update.rollback.clone()).unwrap_or_else(|| {
                    // Not offered by any agent yet: a Windows release's fix is its cumulative
                    // update, removed like any quality update.
                    if is_windows_release(&g.product) { "uninstall" } else { "unknown" }.into()
                }),
                offered_on: offered,
                status,
                detail,
                organization_states,
                explanation,
                offered_devices: g
                    .updates
                    .iter()
                    .map(|u| (u.device_id.clone(), u.organization_id.clone(), u.update.clone()))
                    .collect(),
            };
            (entry, item)
        })
        .collect();
    // Updates that fix CVEs by the queue's order (risk removed); the rest after them by name.
    items.sort_by(|(ea, a), (eb, b)| {
        let by_risk = match (ea, eb) {
            (Some(x), Some(y)) => ringfence_policy::queue::rank(x, y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_risk.then_with(|| a.product.cmp(&b.product)).then_with(|| a.version.cmp(&b.version))
    });
    items.into_iter().map(|(_, i)| i).collect()
}

/// The score and SSVC decision of one finding, without the explanation.
fn quick_score_row(r: &QueueRow, prevalence: f64) -> (f64, ringfence_policy::Decision) {
    let cvss = r.cvss_score.map(|s| ringfence_policy::Cvss {
        version: r.cvss_version.clone().unwrap_or_default(),
        score: s,
        vector: r.cvss_vector.clone(),
    });
    let v = VulnFacts {
        cvss: cvss.into_iter().collect(),
        epss: r.epss,
        kev: r.kev,
        kev_ransomware: r.kev_ransomware,
    };
    ringfence_policy::quick_score(&v, &device_facts(r), prevalence)
}

/// The risk score of one finding.
pub(crate) fn score_row(r: &QueueRow, prevalence: f64) -> (ringfence_policy::RiskScore, VulnFacts) {
    let v = VulnFacts {
        cvss: r
            .cvss_score
            .map(|s| ringfence_policy::Cvss {
                version: r.cvss_version.clone().unwrap_or_default(),
                score: s,
                vector: r.cvss_vector.clone(),
            })
            .into_iter()
            .collect(),
        epss: r.epss,
        kev: r.kev,
        kev_ransomware: r.kev_ransomware,
    };
    (ringfence_policy::score(&v, &device_facts(r), prevalence), v)
}

fn device_facts(r: &QueueRow) -> DeviceFacts {
    DeviceFacts {
        internet_facing: r.internet_facing,
        holds_sensitive_data: r.holds_sensitive_data,
        domain_controller: r.role == "domain_controller",
        criticality: match r.criticality.as_str() {
            "low" => 0,
            "medium" => 1,
            "high" => 2,
            _ => 3,
        },
    }
}

/// Whether a queue product is a Windows release as NVD names it (`microsoft:windows_11_23h2`).
fn is_windows_release(product: &str) -> bool {
    product.starts_with("microsoft:windows_")
}
