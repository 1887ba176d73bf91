//! Client reports and remediation deadlines (SLAs).
//!
//! A report is computed for one organization and period from the store: the share of devices
//! with no open finding (and its trend), the updates still outstanding with why each waits,
//! deployment activity, findings opened and closed, KEV exposure, mean time to remediate by
//! severity and the deadlines kept or missed. It is rendered as HTML (with the MSP's name and
//! logo), CSV, and PDF (Chromium's print), kept in the store, and mailed by schedules.
//!
//! A finding's deadline runs from its first detection: the policy's days for its severity,
//! or CISA's due date for a KEV finding when that is earlier (`ringfence_policy::settings::sla`).

use crate::charts::{bars, esc, line_percent};
use crate::{Engine, EngineError, Result, require};
use jiff::{SignedDuration, Timestamp};
use ringfence_evidence::{Severity, SlaPolicy as SlaSetting};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::{DeploymentQuery, DeviceQuery, ReportFinding, SlaAlert};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A finding due within this long counts as "due soon" and is alerted.
pub const DUE_SOON: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The longest period one report covers.
const MAX_PERIOD_DAYS: i64 = 400;
const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "none"];

/// The deadline of a finding first detected at `detected` (the evidence timeline's rule).
pub fn sla_due(
    s: &SlaSetting,
    detected: Timestamp,
    severity: &str,
    kev_due: Option<&str>,
) -> Option<Timestamp> {
    s.due(detected.as_microsecond(), Severity::parse(severity), kev_due)
        .and_then(|us| Timestamp::from_microsecond(us).ok())
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    #[schema(value_type = String)]
    pub at: Timestamp,
    pub devices: u64,
    pub fully_patched: u64,
    pub patched_percent: f64,
    pub open_findings: u64,
}

/// An update still outstanding on some of the organization's devices, and why.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Outstanding {
    pub product: String,
    pub version: String,
    /// waiting for window, ring validation, approval, exception, failed, device offline,
    /// halted or no maintenance window.
    pub reason: String,
    pub detail: String,
    pub devices: u64,
    pub cves: Vec<String>,
    pub kev: bool,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub deployed: u64,
    pub verified: u64,
    pub failed: u64,
    pub rolled_back: u64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Mttr {
    pub severity: String,
    /// Findings of this severity remediated in the period.
    pub remediated: u64,
    /// Mean days from first detection to remediation.
    pub mean_days: Option<f64>,
    pub within_sla: u64,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SlaSummary {
    /// Remediated in the period by the deadline.
    pub met: u64,
    /// Remediated in the period after the deadline.
    pub breached: u64,
    /// Open at the end of the period, deadline not reached.
    pub open: u64,
    /// Open at the end of the period, past the deadline.
    pub overdue: u64,
    /// Open, due within 7 days of the end of the period.
    pub due_soon: u64,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct KevExposure {
    /// Open KEV findings at the end of the period.
    pub open_findings: u64,
    /// Devices with at least one.
    pub devices: u64,
    /// Of them, past CISA's due date or the policy's deadline.
    pub overdue: u64,
}

/// The figures of one client report.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClientReport {
    pub msp: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    #[schema(value_type = String)]
    pub period_start: Timestamp,
    #[schema(value_type = String)]
    pub period_end: Timestamp,
    #[schema(value_type = String)]
    pub generated_at: Timestamp,
    pub devices: u64,
    pub fully_patched: u64,
    pub patched_percent: f64,
    pub trend: Vec<TrendPoint>,
    /// As the generation found them.
    pub outstanding: Vec<Outstanding>,
    pub activity: Activity,
    pub findings_opened: u64,
    pub findings_closed: u64,
    pub findings_open_at_end: u64,
    pub kev: KevExposure,
    pub mttr: Vec<Mttr>,
    pub sla: SlaSummary,
    #[schema(value_type = Object)]
    pub sla_policy: SlaSetting,
    /// The evidence chain's head when a report is made and kept, signed then: the client
    /// holds it, so a later rewrite of the record before it shows (AUDITOR.md). None on the
    /// pages that only show the figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_head: Option<EvidenceHead>,
}

/// A signed checkpoint of the partner's evidence chain.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EvidenceHead {
    /// The last event's number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// The id of the key that signed the checkpoint.
    pub key_id: String,
    /// The checkpoint's signature (hex).
    pub signature: String,
}

/// An open finding's deadline.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SlaItem {
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    pub cve_id: String,
    pub product: String,
    pub severity: String,
    pub kev: bool,
    #[schema(value_type = String)]
    pub first_detected: Timestamp,
    #[schema(value_type = String)]
    pub due: Timestamp,
    /// Negative when overdue.
    pub hours_left: i64,
}

/// Deadlines of the caller's scope: what is overdue and what is due within 7 days.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SlaOverview {
    #[schema(value_type = String)]
    pub at: Timestamp,
    pub breached: Vec<SlaItem>,
    pub due_soon: Vec<SlaItem>,
    /// The deadlines in force, per organization.
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<(String, SlaSetting)>,
}

fn remediated(f: &ReportFinding) -> bool {
    f.resolution.as_deref() != Some("advisory withdrawn")
}

fn open_at(f: &ReportFinding, t: Timestamp) -> bool {
    f.first_detected <= t && f.resolved_at.is_none_or(|r| r > t)
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 100.0 } else { (part as f64 * 1000.0 / whole as f64).round() / 10.0 }
}

/// A report's period as people read it, its last day included ("2026-11-01 – 2026-11-30"):
/// the one way every page, the CSV and the PDF print it.
pub fn period_label(start: Timestamp, end: Timestamp) -> String {
    format!("{} – {}", day(start), day(end - SignedDuration::from_micros(1)))
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// The figures that come from findings, devices and deployments alone (no planner), so they
/// can be checked by hand.
pub fn figures(
    devices: &[(DeviceId, Timestamp)],
    findings: &[ReportFinding],
    deployments: &[ringfence_store::DeploymentRecord],
    sla: &SlaSetting,
    from: Timestamp,
    to: Timestamp,
) -> (Vec<TrendPoint>, Activity, [u64; 3], KevExposure, Vec<Mttr>, SlaSummary) {
    // The trend: up to 13 points from the start to the end of the period.
    let span = to.duration_since(from);
    let steps: i64 = if span <= SignedDuration::from_hours(24 * 31) { 6 } else { 12 };
    let trend = (0..=steps)
        .map(|i| {
            let at = from + SignedDuration::from_micros(span.as_micros() as i64 * i / steps);
            let existing: Vec<&DeviceId> = devices.iter().filter(|(_, c)| *c <= at).map(|(d, _)| d).collect();
            let mut unpatched: HashSet<&DeviceId> = HashSet::new();
            let mut open = 0;
            for f in findings.iter().filter(|f| open_at(f, at)) {
                open += 1;
                unpatched.insert(&f.device_id);
            }
            let n = existing.len() as u64;
            let patched = existing.iter().filter(|d| !unpatched.contains(**d)).count() as u64;
            TrendPoint {
                at,
                devices: n,
                fully_patched: patched,
                patched_percent: pct(patched, n),
                open_findings: open,
            }
        })
        .collect();
    let in_period = |t: Option<Timestamp>| t.is_some_and(|t| t >= from && t < to);
    let mut activity = Activity::default();
    for d in deployments {
        if d.kind == "install" && in_period(d.installed_at) {
            activity.deployed += 1;
        }
        if d.status == "verified" && in_period(d.finished_at) {
            activity.verified += 1;
        }
        if d.status == "failed" && in_period(d.finished_at) {
            activity.failed += 1;
        }
        // A rollback is its own deployment (the install it undoes is then marked rolled_back):
        // counted once, by the rollback.
        if d.kind == "rollback" && in_period(d.installed_at.or(d.finished_at)) {
            activity.rolled_back += 1;
        }
    }
    let opened = findings.iter().filter(|f| f.first_detected >= from && f.first_detected < to).count() as u64;
    let closed = findings.iter().filter(|f| in_period(f.resolved_at) && remediated(f)).count() as u64;
    let open_end = findings.iter().filter(|f| open_at(f, to)).count() as u64;
    let mut kev = KevExposure::default();
    let mut kev_devices = HashSet::new();
    let mut summary = SlaSummary::default();
    let mut per_sev: BTreeMap<&str, (u64, f64, u64)> = BTreeMap::new();
    for f in findings {
        let due = sla_due(sla, f.first_detected, &f.severity, f.kev_due.as_deref());
        if open_at(f, to) {
            let overdue = due.is_some_and(|d| d < to);
            if f.kev_due.is_some() {
                kev.open_findings += 1;
                kev_devices.insert(&f.device_id);
                if overdue {
                    kev.overdue += 1;
                }
            }
            match due {
                Some(d) if d < to => summary.overdue += 1,
                Some(d) => {
                    summary.open += 1;
                    if d - DUE_SOON <= to {
                        summary.due_soon += 1;
                    }
                }
                None => {}
            }
        } else if in_period(f.resolved_at) && remediated(f) {
            let resolved = f.resolved_at.unwrap_or(to);
            let met = due.is_none_or(|d| resolved <= d);
            if due.is_some() {
                if met {
                    summary.met += 1;
                } else {
                    summary.breached += 1;
                }
            }
            let sev = SEVERITIES.iter().find(|s| **s == f.severity).copied().unwrap_or("none");
            let e = per_sev.entry(sev).or_default();
            e.0 += 1;
            e.1 += resolved.duration_since(f.first_detected).as_secs_f64() / 86_400.0;
            if met {
                e.2 += 1;
            }
        }
    }
    kev.devices = kev_devices.len() as u64;
    let mttr = SEVERITIES
        .iter()
        .map(|s| {
            let (n, total, within) = per_sev.get(s).copied().unwrap_or_default();
            Mttr {
                severity: (*s).to_owned(),
                remediated: n,
                mean_days: (n > 0).then(|| (total / n as f64 * 10.0).round() / 10.0),
                within_sla: within,
            }
        })
        .collect();
    (trend, activity, [opened, closed, open_end], kev, mttr, summary)
}

fn parse_org(id: &str) -> Result<OrganizationId> {
    OrganizationId::parse(id.trim()).map_err(|_| {
        ValueError::new("organization_id", "is not an identifier: use an organization's id").into()
    })
}

/// Reads a period bound: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 instant, in the years
/// 1970 to 9000 (so that no period arithmetic can overflow).
pub fn parse_bound(field: &str, s: &str) -> Result<Timestamp> {
    let s = s.trim();
    let t = match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(_) => {
            let d: jiff::civil::Date = s.parse().map_err(|_| {
                ValueError::new(field, format!("'{s}' is not a date: use YYYY-MM-DD or an RFC 3339 instant"))
            })?;
            d.to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|e| ValueError::new(field, e.to_string()))?
                .timestamp()
        }
    };
    let year = t.to_zoned(jiff::tz::TimeZone::UTC).year();
    if !(1970..=9000).contains(&year) {
        return Err(
            ValueError::new(field, format!("'{s}' is out of range: use a date from 1970 to 9000")).into()
        );
    }
    Ok(t)
}

impl Engine {
    /// The deadlines in force for an organization: its effective `sla` setting (organization
    /// and partner policies), or the defaults.
    pub(crate) async fn sla_of(&self, scope: &Scope, org: &OrganizationId) -> Result<SlaSetting> {
        let mut all = self.slas_of(scope, std::slice::from_ref(org)).await?;
        Ok(all.remove(org).unwrap_or_default())
    }

    /// The (organization, CVE, product) under an active risk decision (mitigated, or risk
    /// accepted until a date): such findings are decided, not late, so they are neither
    /// breached nor due, on the Compliance page and the overview alike.
    pub(crate) async fn decided_findings(
        &self,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<HashSet<(OrganizationId, String, String)>> {
        Ok(self
            .store
            .list_risk_decisions(scope)
            .await?
            .into_iter()
            .filter(|d| d.revoked_at.is_none() && d.expires_at > now)
            .map(|d| (d.organization_id, d.cve_id, d.product))
            .collect())
    }

    /// The deadlines of several organizations, the partner's policies read once.
    pub(crate) async fn slas_of(
        &self,
        scope: &Scope,
        orgs: &[OrganizationId],
    ) -> Result<HashMap<OrganizationId, SlaSetting>> {
        let partner_scope = Scope::partner(scope.partner_id.clone());
        let partner = self.store.get_partner(&partner_scope).await?;
        let records = self.store.list_policies(&partner_scope).await?;
        let tree = self.tree(&partner_scope).await?;
        let set = crate::policies::policy_set(&records, &tree, partner.name.as_ref())?;
        let mut out = HashMap::new();
        for org in orgs {
            let placement =
                ringfence_policy::Placement { organization: org.as_str(), site: "", groups: &[], device: "" };
            let effective = set.effective(placement).map_err(|t| EngineError::Conflict(t.to_string()))?;
            let sla = effective
                .get("sla")
                .and_then(|f| ringfence_policy::settings::sla(&f.value).ok())
                .unwrap_or_default();
            out.insert(org.clone(), sla);
        }
        Ok(out)
    }

    /// Computes a client report (nothing is stored).
    pub async fn client_report(
        &self,
        p: &Principal,
        organization_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ClientReport> {
        require(p, Permission::Read, "read reports")?;
        // The store keeps microseconds.
        let micros = |t: Timestamp| Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t);
        let (from, to) = (micros(from), micros(to));
        if to <= from {
            return Err(ValueError::new("to", "must be after from").into());
        }
        if to.duration_since(from) > SignedDuration::from_hours(24 * MAX_PERIOD_DAYS) {
            return Err(
                ValueError::new("from", format!("a report covers at most {MAX_PERIOD_DAYS} days")).into()
            );
        }
        let scope = p.scope();
        let org_id = parse_org(organization_id)?;
        let org = self.store.get_organization(&scope, &org_id).await?;
        let msp = self.store.get_partner(&Scope::partner(p.partner_id.clone())).await?;
        let sla = self.sla_of(&scope, &org_id).await?;
        let q = DeviceQuery {
            organization_id: Some(org_id.clone()),
            limit: i64::from(u32::MAX),
            ..Default::default()
        };
        let devices: Vec<(DeviceId, Timestamp)> = self
            .store
            .list_devices(&scope, &q)
            .await?
            .items
            .into_iter()
            .map(|d| (d.id, d.created_at))
            .collect();
        let findings = self.store.report_findings(&scope, Some(&org_id), from).await?;
        // Only what existed by the end of the period counts.
        let findings: Vec<ReportFinding> = findings.into_iter().filter(|f| f.first_detected < to).collect();
        // Deployments are filtered by creation: one made before the period may install,
        // fail or be verified inside it (windows are planned up to weeks ahead).
        let dq = DeploymentQuery {
            organization_id: Some(org_id.clone()),
            since: Some(from - SignedDuration::from_hours(60 * 24)),
            limit: 0,
            ..Default::default()
        };
        let deployments = self.store.list_deployments(&scope, &dq).await?;
        let (trend, activity, [opened, closed, open_end], kev, mttr, sla_summary) =
            figures(&devices, &findings, &deployments, &sla, from, to);
        let last = trend.last().cloned();
        let outstanding = self.outstanding(p, &org_id, &deployments).await?;
        Ok(ClientReport {
            msp: msp.name.to_string(),
            organization_id: org_id,
            organization: org.name.to_string(),
            period_start: from,
            period_end: to,
            generated_at: self.now(),
            evidence_head: None,
            devices: last.as_ref().map_or(0, |l| l.devices),
            fully_patched: last.as_ref().map_or(0, |l| l.fully_patched),
            patched_percent: last.as_ref().map_or(100.0, |l| l.patched_percent),
            trend,
            outstanding,
            activity,
            findings_opened: opened,
            findings_closed: closed,
            findings_open_at_end: open_end,
            kev,
            mttr,
            sla: sla_summary,
            sla_policy: sla,
        })
    }

    /// Every update still outstanding in the organization, grouped by why it waits.
    async fn outstanding(
        &self,
        p: &Principal,
        org: &OrganizationId,
        deployments: &[ringfence_store::DeploymentRecord],
    ) -> Result<Vec<Outstanding>> {
        let scope = p.scope();
        let queue = self.queue_of(&scope, Some(org)).await?;
        let preview = self
            .schedule_preview(
                p,
                &proto::ScheduleQuery { organization_id: Some(org.to_string()), ..Default::default() },
            )
            .await
            .map(|s| s.entries)
            .unwrap_or_default();
        let now = self.now();
        let offline: HashSet<DeviceId> = self
            .store
            .agent_presence(&scope)
            .await?
            .into_iter()
            .filter(|(_, seen)| {
                seen.is_none_or(|s| now.duration_since(s).as_secs() as u64 > self.offline_after.as_secs())
            })
            .map(|(d, _)| d)
            .collect();
        // (product, version, reason) → (detail, devices, CVEs, KEV).
        type Group = (String, HashSet<DeviceId>, Vec<String>, bool);
        let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
        for item in &queue {
            let Some(version) = item.version.clone() else { continue };
            let state = item.organization_states.iter().find(|s| &s.organization_id == org);
            let status = state.map_or(item.status.as_str(), |s| s.status.as_str());
            let detail = state.map_or(item.detail.as_str(), |s| s.detail.as_str());
            for (device, device_org, _) in &item.offered_devices {
                if device_org != org {
                    continue;
                }
                let (reason, why) = match status {
                    "no_fix" => continue,
                    "excepted" | "mitigated" | "risk_accepted" => ("exception", detail.to_owned()),
                    "approved" | "auto_approve" => {
                        let last = deployments
                            .iter()
                            .filter(|d| {
                                &d.device_id == device && d.updates.iter().any(|u| u.product == item.product)
                            })
                            .max_by_key(|d| d.created_at);
                        let entry =
                            preview.iter().find(|e| &e.device_id == device && e.product == item.product);
                        if last.is_some_and(|d| d.status == "failed") {
                            ("failed", last.map(|d| d.detail.clone()).unwrap_or_default())
                        } else if offline.contains(device) {
                            ("device offline", "the agent has not checked in".to_owned())
                        } else {
                            match entry.map(|e| e.status.as_str()) {
                                Some("scheduled") => (
                                    "waiting for window",
                                    entry
                                        .and_then(|e| e.start)
                                        .map(|s| format!("next window {}", s.strftime("%Y-%m-%d %H:%M UTC")))
                                        .unwrap_or_default(),
                                ),
                                Some("waiting") => {
                                    ("ring validation", entry.map(|e| e.reason.clone()).unwrap_or_default())
                                }
                                Some("halted") => {
                                    ("halted", entry.map(|e| e.reason.clone()).unwrap_or_default())
                                }
                                Some("no_window") => (
                                    "no maintenance window",
                                    entry.map(|e| e.reason.clone()).unwrap_or_default(),
                                ),
                                _ => ("waiting for window", "deployment under way".to_owned()),
                            }
                        }
                    }
                    _ => ("approval", detail.to_owned()),
                };
                let g = groups
                    .entry((item.product.clone(), version.clone(), reason.to_owned()))
                    .or_insert_with(|| (why.clone(), HashSet::new(), item.cves.clone(), item.kev_cves > 0));
                g.1.insert(device.clone());
            }
        }
        let mut out: Vec<Outstanding> = groups
            .into_iter()
            .map(|((product, version, reason), (detail, devices, cves, kev))| Outstanding {
                product,
                version,
                reason,
                detail,
                devices: devices.len() as u64,
                cves,
                kev,
            })
            .collect();
        out.sort_by(|a, b| b.kev.cmp(&a.kev).then(b.devices.cmp(&a.devices)).then(a.product.cmp(&b.product)));
        Ok(out)
    }

    /// What is overdue or due within 7 days, in the caller's scope (one organization or all).
    pub async fn sla_overview(&self, p: &Principal, organization_id: Option<&str>) -> Result<SlaOverview> {
        require(p, Permission::Read, "read remediation deadlines")?;
        let scope = p.scope();
        let org = organization_id.map(str::trim).filter(|s| !s.is_empty()).map(parse_org).transpose()?;
        let orgs = self.store.list_organizations(&scope).await?;
        if let Some(o) = &org
            && !orgs.iter().any(|x| &x.id == o)
        {
            return Err(EngineError::NotFound("organization"));
        }
        let now = self.now();
        let findings = self.store.report_findings(&scope, org.as_ref(), now).await?;
        let device_org: HashMap<DeviceId, OrganizationId> = self
            .store
            .list_devices(
                &scope,
                &DeviceQuery {
                    organization_id: org.clone(),
                    limit: i64::from(u32::MAX),
                    ..Default::default()
                },
            )
            .await?
            .items
            .into_iter()
            .map(|d| (d.id, d.organization_id))
            .collect();
        let mut policies = Vec::new();
        let mut by_org: HashMap<OrganizationId, (String, SlaSetting)> = HashMap::new();
        let wanted: Vec<&Organization> =
            orgs.iter().filter(|o| org.as_ref().is_none_or(|x| *x == o.id)).collect();
        let ids: Vec<OrganizationId> = wanted.iter().map(|o| o.id.clone()).collect();
        let mut slas = self.slas_of(&scope, &ids).await?;
        for o in wanted {
            let s = slas.remove(&o.id).unwrap_or_default();
            policies.push((o.name.to_string(), s.clone()));
            by_org.insert(o.id.clone(), (o.name.to_string(), s));
        }
        let decided = self.decided_findings(&scope, now).await?;
        let mut breached = Vec::new();
        let mut due_soon = Vec::new();
        for f in findings.iter().filter(|f| f.resolved_at.is_none()) {
            let Some(o) = device_org.get(&f.device_id) else { continue };
            if decided.contains(&(o.clone(), f.cve_id.clone(), f.product.clone())) {
                continue;
            }
            let Some((name, s)) = by_org.get(o) else { continue };
            let Some(due) = sla_due(s, f.first_detected, &f.severity, f.kev_due.as_deref()) else { continue };
            let item = SlaItem {
                organization_id: o.clone(),
                organization: name.clone(),
                device_id: f.device_id.clone(),
                hostname: f.hostname.clone(),
                cve_id: f.cve_id.clone(),
                product: f.product.clone(),
                severity: f.severity.clone(),
                kev: f.kev_due.is_some(),
                first_detected: f.first_detected,
                due,
                hours_left: due.duration_since(now).as_hours(),
            };
            if due < now {
                breached.push(item);
            } else if due - DUE_SOON <= now {
                due_soon.push(item);
            }
        }
        breached.sort_by(|a, b| b.kev.cmp(&a.kev).then(a.due.cmp(&b.due)));
        due_soon.sort_by_key(|i| i.due);
        Ok(SlaOverview { at: now, breached, due_soon, policies })
    }

    /// Raises an alert per (organization, CVE) the first time a finding passes its deadline
    /// or comes within 7 days of it; runs for every partner.
    pub async fn raise_sla_alerts(&self) -> Result<u64> {
        let mut raised = 0;
        for partner in self.store.list_partners().await? {
            let p = crate::system_principal(&partner.id, "sla-alerts");
            let o = match self.sla_overview(&p, None).await {
                Ok(o) => o,
                Err(e) => {
                    // One partner's trouble (a policy tie) does not stop the others' alerts.
                    tracing::warn!(partner = %partner.id, error = %e, "remediation deadlines not checked");
                    continue;
                }
            };
            let mut alerts: BTreeMap<(String, OrganizationId, String), (i64, String)> = BTreeMap::new();
            for (kind, items) in [("sla_breached", &o.breached), ("sla_due_soon", &o.due_soon)] {
                for i in items {
                    let e = alerts
                        .entry((kind.to_owned(), i.organization_id.clone(), i.cve_id.clone()))
                        .or_insert_with(|| (0, String::new()));
                    e.0 += 1;
                    e.1 = if kind == "sla_breached" {
                        format!(
                            "{}: {} is past its remediation deadline ({}) on {} device(s)",
                            i.organization,
                            i.cve_id,
                            day(i.due),
                            e.0
                        )
                    } else {
                        format!(
                            "{}: {} is due for remediation by {} on {} device(s)",
                            i.organization,
                            i.cve_id,
                            day(i.due),
                            e.0
                        )
                    };
                }
            }
            let list: Vec<SlaAlert> = alerts
                .into_iter()
                .map(|((kind, organization_id, cve_id), (devices, message))| SlaAlert {
                    organization_id,
                    kind,
                    cve_id,
                    devices,
                    message,
                })
                .collect();
            match self.store.raise_sla_alerts(&partner.id, self.now(), &list).await {
                Ok(n) => raised += n,
                Err(e) => tracing::warn!(partner = %partner.id, error = %e, "deadline alerts not raised"),
            }
        }
        Ok(raised)
    }
}

/// The report as CSV: one section per table, each with a header row.
impl Engine {
    /// A checkpoint of the partner's chain at its head, signed now (or the one already
    /// there).
    async fn sign_head(&self, p: &Principal) -> Result<Option<EvidenceHead>> {
        let chain = p.partner_id.to_string();
        let Some((_, seq, _)) = self.store.chain_heads().await?.into_iter().find(|(c, ..)| *c == chain)
        else {
            return Ok(None);
        };
        let c = match self.store.checkpoint_before(&chain, seq).await? {
            Some(c) if c.seq == seq => c,
            _ => {
                let key = self.evidence_key().await?;
                self.checkpoint_at(&key, &chain, seq).await?
            }
        };
        Ok(Some(EvidenceHead { seq: c.seq, hash: c.hash, key_id: c.key_id, signature: c.signature }))
    }
}

pub fn report_csv(r: &ClientReport) -> String {
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        ringfence_evidence::csv::push_line(&mut out, &cells);
    };
    line(&["section".into(), "metric".into(), "value".into()]);
    let m = |k: &str, v: String| vec!["summary".to_owned(), k.to_owned(), v];
    line(&m("msp", r.msp.clone()));
    line(&m("organization", r.organization.clone()));
    line(&m("period_start", r.period_start.to_string()));
    line(&m("period_end", r.period_end.to_string()));
    line(&m("devices", r.devices.to_string()));
    line(&m("fully_patched", r.fully_patched.to_string()));
    line(&m("patched_percent", format!("{:.1}", r.patched_percent)));
    line(&m("findings_opened", r.findings_opened.to_string()));
    line(&m("findings_closed", r.findings_closed.to_string()));
    line(&m("findings_open_at_end", r.findings_open_at_end.to_string()));
    line(&m("deployed", r.activity.deployed.to_string()));
    line(&m("verified", r.activity.verified.to_string()));
    line(&m("failed", r.activity.failed.to_string()));
    line(&m("rolled_back", r.activity.rolled_back.to_string()));
    line(&m("kev_open_findings", r.kev.open_findings.to_string()));
    line(&m("kev_devices", r.kev.devices.to_string()));
    line(&m("kev_overdue", r.kev.overdue.to_string()));
    line(&m("sla_met", r.sla.met.to_string()));
    line(&m("sla_breached", r.sla.breached.to_string()));
    line(&m("sla_open", r.sla.open.to_string()));
    line(&m("sla_overdue", r.sla.overdue.to_string()));
    line(&m("sla_due_soon", r.sla.due_soon.to_string()));
    line(&[]);
    line(&[
        "trend".into(),
        "at".into(),
        "devices".into(),
        "fully_patched".into(),
        "patched_percent".into(),
        "open_findings".into(),
    ]);
    for t in &r.trend {
        line(&[
            "trend".into(),
            t.at.to_string(),
            t.devices.to_string(),
            t.fully_patched.to_string(),
            format!("{:.1}", t.patched_percent),
            t.open_findings.to_string(),
        ]);
    }
    line(&[]);
    line(&["mttr".into(), "severity".into(), "remediated".into(), "mean_days".into(), "within_sla".into()]);
    for m in &r.mttr {
        line(&[
            "mttr".into(),
            m.severity.clone(),
            m.remediated.to_string(),
            m.mean_days.map(|d| format!("{d:.1}")).unwrap_or_default(),
            m.within_sla.to_string(),
        ]);
    }
    line(&[]);
    line(&[
        "outstanding".into(),
        "product".into(),
        "version".into(),
        "reason".into(),
        "devices".into(),
        "kev".into(),
        "cves".into(),
        "detail".into(),
    ]);
    for o in &r.outstanding {
        line(&[
            "outstanding".into(),
            o.product.clone(),
            o.version.clone(),
            o.reason.clone(),
            o.devices.to_string(),
            o.kev.to_string(),
            o.cves.join(" "),
            o.detail.clone(),
        ]);
    }
    if let Some(e) = &r.evidence_head {
        for (k, v) in
            [("head_seq", e.seq.to_string()), ("head_hash", e.hash.clone()), ("key_id", e.key_id.clone())]
        {
            line(&["evidence".into(), k.into(), v]);
        }
    }
    out
}

/// The report as one self-contained HTML page (inline CSS and SVG), for the browser, the
/// e-mail and Chromium's print to PDF.
pub fn report_html(r: &ClientReport, logo: Option<&str>) -> String {
    let mut h = String::new();
    let logo = match logo {
        Some(src) => format!(r#"<img class="logo" src="{}" alt="{}">"#, esc(src), esc(&r.msp)),
        None => {
            let initials: String =
                r.msp.split_whitespace().filter_map(|w| w.chars().next()).take(2).collect();
            format!(
                r##"<svg class="logo" xmlns="http://www.w3.org/2000/svg" width="48" height="48" viewBox="0 0 48 48"><rect width="48" height="48" rx="8" fill="#1f3a5f"/><text x="24" y="31" font-size="18" text-anchor="middle" fill="#fff" font-family="sans-serif">{}</text></svg>"##,
                esc(&initials.to_uppercase())
            )
        }
    };
    let period = period_label(r.period_start, r.period_end);
    h.push_str(&format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{org} patch report {period}</title>
<style>
body {{ font-family: sans-serif; color: #1b1f24; margin: 24px; }}
header {{ display: flex; align-items: center; gap: 16px; border-bottom: 2px solid #1f3a5f; padding-bottom: 8px; }}
.logo {{ width: 48px; height: 48px; }}
h1 {{ font-size: 22px; margin: 0; }} h2 {{ font-size: 16px; margin-top: 24px; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.tile {{ border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 120px; }}
.tile b {{ display: block; font-size: 22px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12px; }}
th, td {{ border-bottom: 1px solid #d0d7de; padding: 4px 6px; text-align: left; }}
.kev {{ color: #b42318; font-weight: bold; }}
footer {{ margin-top: 24px; font-size: 11px; color: #57606a; }}
</style></head><body>
<header>{logo}<div><h1>{org}: patching and vulnerability report</h1><div>{msp} · {period}</div></div></header>"#,
        org = esc(&r.organization),
        msp = esc(&r.msp),
        period = esc(&period),
    ));
    h.push_str(&format!(
        r#"<h2>Summary</h2><div class="tiles">
<div class="tile"><b id="patched-percent">{:.1}%</b>devices fully patched ({} of {})</div>
<div class="tile"><b>{}</b>findings opened</div><div class="tile"><b>{}</b>findings closed</div>
<div class="tile"><b>{}</b>open at the end</div>
<div class="tile"><b class="kev">{}</b>open KEV findings on {} device(s), {} overdue</div>
<div class="tile"><b>{} / {}</b>deadlines met / missed</div>
<div class="tile"><b>{}</b>overdue now, {} due within 7 days</div></div>"#,
        r.patched_percent,
        r.fully_patched,
        r.devices,
        r.findings_opened,
        r.findings_closed,
        r.findings_open_at_end,
        r.kev.open_findings,
        r.kev.devices,
        r.kev.overdue,
        r.sla.met,
        r.sla.breached,
        r.sla.overdue,
        r.sla.due_soon,
    ));
    let points: Vec<(String, f64)> =
        r.trend.iter().map(|t| (t.at.strftime("%m-%d").to_string(), t.patched_percent)).collect();
    h.push_str("<h2>Devices fully patched</h2>");
    h.push_str(&line_percent("Share of devices with no open finding", &points));
    let mttr: Vec<(String, Option<f64>)> = r.mttr.iter().map(|m| (m.severity.clone(), m.mean_days)).collect();
    h.push_str("<h2>Mean time to remediate</h2>");
    h.push_str(&bars("Mean days from detection to remediation, by severity", "days", &mttr));
    h.push_str(
        "<table><tr><th>Severity</th><th>Remediated</th><th>Mean days</th><th>Within deadline</th></tr>",
    );
    for m in &r.mttr {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.severity),
            m.remediated,
            m.mean_days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "–".into()),
            m.within_sla
        ));
    }
    h.push_str("</table>");
    h.push_str(&format!(
        "<h2>Activity</h2><table><tr><th>Deployed</th><th>Verified</th><th>Failed</th><th>Rolled back</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        r.activity.deployed, r.activity.verified, r.activity.failed, r.activity.rolled_back
    ));
    h.push_str("<h2>Outstanding updates</h2>");
    if r.outstanding.is_empty() {
        h.push_str("<p>None: every update the organization's devices were offered is installed.</p>");
    } else {
        h.push_str("<table><tr><th>Update</th><th>Devices</th><th>Why it is pending</th><th>CVEs</th></tr>");
        for o in &r.outstanding {
            h.push_str(&format!(
                "<tr><td>{}{} {}</td><td>{}</td><td><b>{}</b> {}</td><td>{}</td></tr>",
                if o.kev { "<span class=\"kev\">KEV</span> " } else { "" },
                esc(&o.product),
                esc(&o.version),
                o.devices,
                esc(&o.reason),
                esc(&o.detail),
                esc(&o.cves.iter().take(6).cloned().collect::<Vec<_>>().join(", "))
            ));
        }
        h.push_str("</table>");
    }
    let s = &r.sla_policy;
    let days = |d: Option<u32>| d.map(|d| format!("{d} days")).unwrap_or_else(|| "no deadline".into());
    h.push_str(&format!(
        "<footer>Deadlines: critical {}, high {}, medium {}, low {}{}. Generated {} by ringfence.{}</footer></body></html>",
        days(s.critical_days),
        days(s.high_days),
        days(s.medium_days),
        days(s.low_days),
        if s.kev_due_date {
            format!("; KEV findings by CISA's due date, at least {} days from detection", s.kev_days)
        } else {
            String::new()
        },
        esc(&r.generated_at.strftime("%Y-%m-%d %H:%M UTC").to_string()),
        match &r.evidence_head {
            Some(e) => format!(
                r#"<br><span class="evidence-head">Evidence record at this report: event {}, hash <code>{}</code>, signed by key {}. Keep this report: an auditor can check with it that the record was not rewritten afterwards.</span>"#,
                e.seq,
                esc(&e.hash),
                esc(&e.key_id)
            ),
            None => String::new(),
        }
    ));
    h
}

/// The period of a report request: explicit bounds, or a named period relative to `now`.
pub fn report_period(req: &proto::ReportRequest, now: Timestamp) -> Result<(Timestamp, Timestamp)> {
    let utc = now.to_zoned(jiff::tz::TimeZone::UTC);
    let midnight = |d: jiff::civil::Date| -> Result<Timestamp> {
        Ok(d.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| ValueError::new("period", e.to_string()))?
            .timestamp())
    };
    let month_start = utc.date().first_of_month();
    let named = match req.period.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("last_month") => {
            let prev = month_start.yesterday().map_err(|e| ValueError::new("period", e.to_string()))?;
            (midnight(prev.first_of_month())?, midnight(month_start)?)
        }
        Some("this_month") => (midnight(month_start)?, now),
        Some("last_7_days") => (now - SignedDuration::from_hours(7 * 24), now),
        Some("last_30_days") => (now - SignedDuration::from_hours(30 * 24), now),
        Some("last_90_days") => (now - SignedDuration::from_hours(90 * 24), now),
        Some(other) => {
            return Err(ValueError::new(
                "period",
                format!("'{other}' is not a period: use last_month, this_month, last_7_days, last_30_days or last_90_days"),
            )
            .into());
        }
    };
    let from = match req.from.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(f) => parse_bound("from", f)?,
        None => named.0,
    };
    let to = match req.to.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(t) => parse_bound("to", t)?,
        None => named.1,
    };
    if to <= from {
        return Err(ValueError::new("to", "must be after from").into());
    }
    Ok((from, to))
}

/// When a schedule next runs after `after`: the 1st of the next month, or the next Monday,
/// at 06:00 UTC.
pub fn next_run(cadence: &str, after: Timestamp) -> Result<Timestamp> {
    let utc = after.to_zoned(jiff::tz::TimeZone::UTC);
    let at_six = |d: jiff::civil::Date| -> Result<Timestamp> {
        Ok(d.at(6, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| ValueError::new("cadence", e.to_string()))?
            .timestamp())
    };
    let mut day = utc.date();
    loop {
        let candidate = match cadence {
            "monthly" => day.first_of_month(),
            "weekly" => day,
            other => {
                return Err(ValueError::new(
                    "cadence",
                    format!("'{other}' is not a cadence: use monthly or weekly"),
                )
                .into());
            }
        };
        let fits = cadence == "monthly" || candidate.weekday() == jiff::civil::Weekday::Monday;
        if fits && at_six(candidate)? > after {
            return at_six(candidate);
        }
        day = if cadence == "monthly" {
            day.last_of_month().tomorrow().map_err(|e| ValueError::new("cadence", e.to_string()))?
        } else {
            day.tomorrow().map_err(|e| ValueError::new("cadence", e.to_string()))?
        };
    }
}

/// The period a scheduled run at `at` covers: the month or week before.
fn scheduled_period(cadence: &str, at: Timestamp) -> Result<(Timestamp, Timestamp)> {
    let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let midnight = |d: jiff::civil::Date| -> Result<Timestamp> {
        Ok(d.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| ValueError::new("cadence", e.to_string()))?
            .timestamp())
    };
    if cadence == "weekly" {
        let end = midnight(date)?;
        Ok((end - SignedDuration::from_hours(7 * 24), end))
    } else {
        let start = date.first_of_month();
        let prev = start.yesterday().map_err(|e| ValueError::new("cadence", e.to_string()))?.first_of_month();
        Ok((midnight(prev)?, midnight(start)?))
    }
}

impl Engine {
    /// Computes, renders (HTML, CSV and, when Chromium is there, PDF) and keeps a report;
    /// mails it when asked. A PDF or mail that fails is said in the report's delivery line;
    /// the report is kept either way.
    pub async fn generate_report(
        &self,
        p: &Principal,
        req: &proto::ReportRequest,
    ) -> Result<ringfence_store::ReportListItem> {
        require(p, Permission::ManageReports, "generate reports")?;
        let recipients = if req.email_to.is_empty() {
            Vec::new()
        } else {
            if self.reports.smtp.is_none() {
                return Err(ValueError::new(
                    "email_to",
                    "no SMTP server is configured: set [reports.smtp] in the server's config",
                )
                .into());
            }
            crate::delivery::check_recipients(&req.email_to).map_err(|e| ValueError::new("email_to", e))?
        };
        let (from, to) = report_period(req, self.now())?;
        let id = self.make_report(p, &req.organization_id, from, to, None, &recipients).await?;
        let scope = p.scope();
        let list = self.store.list_reports(&scope, None, 50).await?;
        list.into_iter().find(|r| r.id == id).ok_or(EngineError::NotFound("report"))
    }

    async fn make_report(
        &self,
        p: &Principal,
        organization_id: &str,
        from: Timestamp,
        to: Timestamp,
        schedule: Option<&str>,
        recipients: &[String],
    ) -> Result<String> {
        let mut report = self.client_report(p, organization_id, from, to).await?;
        report.evidence_head = self.sign_head(p).await?;
        let html = report_html(&report, self.reports.logo.as_deref());
        let csv = report_csv(&report);
        let mut notes = Vec::new();
        let pdf = match crate::delivery::find_chromium(self.reports.chromium.as_deref()) {
            Some(chromium) => match crate::delivery::html_to_pdf(&chromium, &html).await {
                Ok(pdf) => Some(pdf),
                Err(e) => {
                    tracing::warn!(error = %e, "report PDF not made");
                    notes.push(format!("no PDF: {e}"));
                    None
                }
            },
            None => {
                notes
                    .push("no PDF: Chromium was not found (install chromium or set reports.chromium)".into());
                None
            }
        };
        let scope = p.scope();
        let id = uuid::Uuid::now_v7().to_string();
        let stored = ringfence_store::StoredReport {
            id: id.clone(),
            organization_id: report.organization_id.clone(),
            period_start: from,
            period_end: to,
            generated_at: report.generated_at,
            generated_by: p.actor(),
            schedule_id: schedule.map(str::to_owned),
            summary: serde_json::to_string(&report).unwrap_or_default(),
            html: html.clone(),
            csv: csv.clone(),
            pdf: pdf.clone(),
            delivery: notes.join("; "),
        };
        self.store.save_report(&self.audit(p), &scope, &stored).await?;
        if !recipients.is_empty() {
            let status = match &self.reports.smtp {
                None => "not sent: no SMTP server is configured".to_owned(),
                Some(smtp) => {
                    let name = format!(
                        "{}-report-{}",
                        report.organization.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
                        day(from)
                    );
                    let mut attachments = vec![(format!("{name}.csv"), "text/csv", csv.into_bytes())];
                    if let Some(pdf) = pdf {
                        attachments.push((format!("{name}.pdf"), "application/pdf", pdf));
                    }
                    let subject = format!(
                        "{}: patching report {} – {}",
                        report.organization,
                        day(from),
                        day(to - SignedDuration::from_micros(1))
                    );
                    let mail =
                        crate::delivery::Mail { to: recipients, subject: &subject, html: &html, attachments };
                    match crate::delivery::send(smtp, mail).await {
                        Ok(()) => format!("sent to {}", recipients.join(", ")),
                        Err(e) => {
                            tracing::warn!(report = %id, error = %e, "report not mailed");
                            format!("failed: {e}")
                        }
                    }
                }
            };
            let delivery =
                if stored.delivery.is_empty() { status } else { format!("{status}; {}", stored.delivery) };
            self.store.set_report_delivery(&scope, &id, &delivery).await?;
        }
        Ok(id)
    }

    pub async fn reports(
        &self,
        p: &Principal,
        organization_id: Option<&str>,
    ) -> Result<Vec<ringfence_store::ReportListItem>> {
        require(p, Permission::Read, "read reports")?;
        let org = organization_id.map(str::trim).filter(|s| !s.is_empty()).map(parse_org).transpose()?;
        Ok(self.store.list_reports(&p.scope(), org.as_ref(), 200).await?)
    }

    pub async fn report(&self, p: &Principal, id: &str) -> Result<ringfence_store::StoredReport> {
        require(p, Permission::Read, "read reports")?;
        Ok(self.store.get_report(&p.scope(), id.trim()).await?)
    }

    pub async fn report_schedules(&self, p: &Principal) -> Result<Vec<ringfence_store::ReportSchedule>> {
        require(p, Permission::Read, "read report schedules")?;
        Ok(self.store.list_report_schedules(&p.scope()).await?)
    }

    pub async fn create_report_schedule(
        &self,
        p: &Principal,
        req: &proto::ReportScheduleInput,
    ) -> Result<ringfence_store::ReportSchedule> {
        require(p, Permission::ManageReports, "schedule reports")?;
        let org = parse_org(&req.organization_id)?;
        let cadence = req.cadence.trim().to_owned();
        let recipients = crate::delivery::check_recipients(&req.recipients)
            .map_err(|e| ValueError::new("recipients", e))?;
        let now = self.now();
        let s = ringfence_store::ReportSchedule {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: org,
            next_run: next_run(&cadence, now)?,
            cadence,
            recipients,
            last_run: None,
            last_status: String::new(),
            created_by: p.actor(),
            created_at: now,
        };
        self.store.create_report_schedule(&self.audit(p), &p.scope(), &s).await?;
        Ok(s)
    }

    pub async fn delete_report_schedule(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::ManageReports, "remove report schedules")?;
        Ok(self.store.delete_report_schedule(&self.audit(p), &p.scope(), id.trim()).await?)
    }

    /// Runs every schedule that is due: makes the report for its period, keeps it, mails
    /// it, and moves the schedule to its next run. Returns the reports made.
    pub async fn run_report_schedules(&self) -> Result<u64> {
        let now = self.now();
        let mut made = 0;
        for (partner, s) in self.store.due_report_schedules(now).await? {
            let Ok(next) = next_run(&s.cadence, now) else {
                tracing::warn!(schedule = %s.id, cadence = %s.cadence, "report schedule has an unknown cadence");
                continue;
            };
            // Claim the run first, so a second server does not make it too.
            match self.store.advance_report_schedule(&s.id, s.next_run, next, now, "running").await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(schedule = %s.id, error = %e, "report schedule not claimed");
                    continue;
                }
            }
            let p = crate::system_principal(&partner, "report-scheduler");
            let made_report = match scheduled_period(&s.cadence, s.next_run) {
                Ok((from, to)) => {
                    self.make_report(&p, s.organization_id.as_str(), from, to, Some(&s.id), &s.recipients)
                        .await
                }
                Err(e) => Err(e),
            };
            let status = match made_report {
                Ok(id) => {
                    made += 1;
                    match self.store.get_report(&p.scope(), &id).await {
                        Ok(r) if !r.delivery.is_empty() => r.delivery,
                        _ => "made".to_owned(),
                    }
                }
                Err(e) => {
                    tracing::warn!(schedule = %s.id, error = %e, "scheduled report failed");
                    format!("failed: {e}")
                }
            };
            if let Err(e) = self.store.advance_report_schedule(&s.id, next, next, now, &status).await {
                tracing::warn!(schedule = %s.id, error = %e, "report schedule status not recorded");
            }
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn deadlines() {
        let s = SlaSetting::default();
        let d = t("2026-11-01T10:00:00Z");
        assert_eq!(sla_due(&s, d, "critical", None), Some(t("2026-11-16T10:00:00Z")));
        assert_eq!(sla_due(&s, d, "high", None), Some(t("2026-12-01T10:00:00Z")));
        assert_eq!(sla_due(&s, d, "low", None), None);
        // KEV: CISA's due date when it is earlier, to the end of that day…
        assert_eq!(sla_due(&s, d, "high", Some("2026-11-20")), Some(t("2026-11-20T23:59:59.999999Z")));
        assert_eq!(sla_due(&s, d, "critical", Some("2026-12-30")), Some(t("2026-11-16T10:00:00Z")));
        // …but never less than the KEV window (14 days) from detection, nor before it.
        assert_eq!(sla_due(&s, d, "high", Some("2026-11-05")), Some(t("2026-11-15T10:00:00Z")));
        assert_eq!(sla_due(&s, d, "none", Some("2023-10-31")), Some(t("2026-11-15T10:00:00Z")));
        let no_kev = SlaSetting { kev_due_date: false, ..s.clone() };
        assert_eq!(sla_due(&no_kev, d, "none", Some("2026-11-05")), None);
    }

    #[test]
    fn period_bounds_refuse_what_they_cannot_read() {
        assert_eq!(parse_bound("from", " 2026-11-01 ").unwrap(), t("2026-11-01T00:00:00Z"));
        assert_eq!(parse_bound("to", "2026-11-01T10:00:00Z").unwrap(), t("2026-11-01T10:00:00Z"));
        for (input, says) in [
            ("2026-13-01", "is not a date"),
            ("yesterday", "is not a date"),
            ("", "is not a date"),
            ("-009999-01-05", "out of range"),
            ("1969-12-31", "out of range"),
            ("9999-01-01", "out of range"),
        ] {
            let e = parse_bound("from", input).unwrap_err().to_string();
            assert!(e.contains("from") && e.contains(says), "{input:?}: {e}");
        }
    }

    #[test]
    fn schedules_and_periods() {
        assert_eq!(next_run("monthly", t("2026-12-06T09:00:00Z")).unwrap(), t("2027-01-01T06:00:00Z"));
        assert_eq!(next_run("monthly", t("2026-12-01T05:00:00Z")).unwrap(), t("2026-12-01T06:00:00Z"));
        // 2026-12-06 is a Sunday.
        assert_eq!(next_run("weekly", t("2026-12-06T09:00:00Z")).unwrap(), t("2026-12-07T06:00:00Z"));
        assert_eq!(next_run("weekly", t("2026-12-07T06:00:00Z")).unwrap(), t("2026-12-14T06:00:00Z"));
        assert!(
            next_run("daily", t("2026-12-06T09:00:00Z"))
                .unwrap_err()
                .to_string()
                .contains("monthly or weekly")
        );
        assert_eq!(
            scheduled_period("monthly", t("2027-01-01T06:00:00Z")).unwrap(),
            (t("2026-12-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
        );
        let req = proto::ReportRequest { organization_id: "x".into(), ..Default::default() };
        assert_eq!(
            report_period(&req, t("2026-12-06T09:00:00Z")).unwrap(),
            (t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z"))
        );
        let req = proto::ReportRequest { period: Some("fortnight".into()), ..req };
        assert!(
            report_period(&req, t("2026-12-06T09:00:00Z")).unwrap_err().to_string().contains("last_month")
        );
        let req = proto::ReportRequest {
            period: None,
            from: Some("2026-10-01".into()),
            to: Some("2026-09-01".into()),
            ..req
        };
        assert!(
            report_period(&req, t("2026-12-06T09:00:00Z")).unwrap_err().to_string().contains("after from")
        );
    }
}
