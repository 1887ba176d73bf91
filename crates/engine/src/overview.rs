//! The partner's overview: one row per client organization with what a technician checks
//! first each morning (exposure, overdue work, last night's failures, devices offline, the
//! next maintenance window, the last report), and fleet totals.
//!
//! Figures are aggregated in the store (`organization_figures`, `open_finding_groups`), so
//! the page reads a few grouped rows rather than every finding. Deadlines follow the same
//! rule as reports and the Compliance page (`reports::sla_due`).

use crate::policies::{Tree, effective_of, policy_set};
use crate::reports::sla_due;
use crate::{Engine, Result, require};
use jiff::{SignedDuration, Timestamp};
use ringfence_model::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Deployments that failed within this long count as "last night's" failures.
pub const FAILED_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// One client organization's row.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ClientRow {
    /// None for the fleet's totals.
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<OrganizationId>,
    pub organization: String,
    pub devices: i64,
    /// Devices with no open finding.
    pub fully_patched: i64,
    pub patched_percent: f64,
    pub open_findings: i64,
    pub open_critical: i64,
    pub open_kev: i64,
    /// Open findings past their remediation deadline, and the CVEs they belong to.
    pub overdue_findings: i64,
    pub overdue_cves: i64,
    /// Deployments failed in the last 24 hours.
    pub failed_24h: i64,
    /// Devices whose agent has not checked in lately.
    pub offline: i64,
    /// The next maintenance window to open for any of the organization's devices.
    #[schema(value_type = Option<String>)]
    pub next_window: Option<Timestamp>,
    /// The same start in the zone of the device it belongs to ("Tue 21:45 Europe/London").
    pub next_window_local: Option<String>,
    pub last_report_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub last_report_at: Option<Timestamp>,
}

impl ClientRow {
    /// Exposure, most exposed first: KEV findings, then overdue ones, then critical ones, then
    /// failures, then the share of devices still exposed.
    pub fn exposure_key(&self) -> (i64, i64, i64, i64, i64) {
        (
            -self.open_kev,
            -self.overdue_findings,
            -self.open_critical,
            -self.failed_24h,
            (self.patched_percent * 10.0) as i64,
        )
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// Most exposed first.
    pub clients: Vec<ClientRow>,
    /// The whole fleet of the caller's scope (`organization_id` empty).
    pub totals: ClientRow,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 { 100.0 } else { (part as f64 * 1000.0 / whole as f64).round() / 10.0 }
}

impl Engine {
    /// The overview of the caller's scope: every organization it reaches, most exposed first.
    pub async fn overview(&self, p: &Principal) -> Result<Overview> {
        require(p, Permission::Read, "read the overview")?;
        let scope = p.scope();
        let now = self.now();
        let offline_after =
            SignedDuration::try_from(self.offline_after).unwrap_or(SignedDuration::from_mins(10));
        let orgs = self.store.list_organizations(&scope).await?;
        let figures =
            self.store.organization_figures(&scope, now - FAILED_WINDOW, now - offline_after).await?;
        let figures: HashMap<OrganizationId, ringfence_store::OrgFigures> =
            figures.into_iter().filter_map(|f| Some((f.organization_id.clone()?, f))).collect();

        // Overdue findings under each organization's deadlines; a finding under an active risk
        // decision is decided, not late (as on the Compliance page).
        let ids: Vec<OrganizationId> = orgs.iter().map(|o| o.id.clone()).collect();
        let slas = self.slas_of(&scope, &ids).await?;
        let decided = self.decided_findings(&scope, now).await?;
        let mut overdue: HashMap<OrganizationId, (i64, HashSet<String>)> = HashMap::new();
        // Open findings, critical ones and KEV ones, by organization.
        let mut open: HashMap<OrganizationId, (i64, i64, i64)> = HashMap::new();
        for g in self.store.open_finding_groups(&scope).await? {
            let o = open.entry(g.organization_id.clone()).or_default();
            o.0 += g.findings;
            if g.severity == "critical" {
                o.1 += g.findings;
            }
            if g.kev_due.is_some() {
                o.2 += g.findings;
            }
            if decided.contains(&(g.organization_id.clone(), g.cve_id.clone(), g.product.clone())) {
                continue;
            }
            let sla = slas.get(&g.organization_id).cloned().unwrap_or_default();
            if sla_due(&sla, g.detected, &g.severity, g.kev_due.as_deref()).is_some_and(|due| due < now) {
                let e = overdue.entry(g.organization_id.clone()).or_default();
                e.0 += g.findings;
                e.1.insert(g.cve_id);
            }
        }

        let windows = self.next_windows(&scope, now).await?;
        let mut last_reports: HashMap<OrganizationId, (String, Timestamp)> = HashMap::new();
        for r in self.store.list_reports(&scope, None, 10_000).await? {
            let e = last_reports.entry(r.organization_id.clone()).or_insert((r.id.clone(), r.generated_at));
            if r.generated_at > e.1 {
                *e = (r.id, r.generated_at);
            }
        }

        let mut totals = ClientRow { organization: "All clients".into(), ..Default::default() };
        let mut all_overdue_cves: HashSet<String> = HashSet::new();
        let mut clients: Vec<ClientRow> = orgs
            .iter()
            .map(|o| {
                let f = figures.get(&o.id).cloned().unwrap_or_default();
                let (open_findings, open_critical, open_kev) = open.get(&o.id).copied().unwrap_or_default();
                let (overdue_findings, cves) = overdue.remove(&o.id).unwrap_or_default();
                let fully_patched = (f.devices - f.devices_exposed).max(0);
                let window = windows.get(&o.id);
                let report = last_reports.get(&o.id);
                let row = ClientRow {
                    organization_id: Some(o.id.clone()),
                    organization: o.name.to_string(),
                    devices: f.devices,
                    fully_patched,
                    patched_percent: percent(fully_patched, f.devices),
                    open_findings,
                    open_critical,
                    open_kev,
                    overdue_findings,
                    overdue_cves: cves.len() as i64,
                    failed_24h: f.failed_recently,
                    offline: f.offline,
                    next_window: window.map(|w| w.0),
                    next_window_local: window.map(|w| w.1.clone()),
                    last_report_id: report.map(|r| r.0.clone()),
                    last_report_at: report.map(|r| r.1),
                };
                totals.devices += row.devices;
                totals.fully_patched += row.fully_patched;
                totals.open_findings += row.open_findings;
                totals.open_critical += row.open_critical;
                totals.open_kev += row.open_kev;
                totals.overdue_findings += row.overdue_findings;
                totals.failed_24h += row.failed_24h;
                totals.offline += row.offline;
                if row.next_window.is_some()
                    && (totals.next_window.is_none() || row.next_window < totals.next_window)
                {
                    totals.next_window = row.next_window;
                    totals.next_window_local = row.next_window_local.clone();
                }
                all_overdue_cves.extend(cves);
                row
            })
            .collect();
        totals.overdue_cves = all_overdue_cves.len() as i64;
        totals.patched_percent = percent(totals.fully_patched, totals.devices);
        clients.sort_by(|a, b| {
            a.exposure_key().cmp(&b.exposure_key()).then(a.organization.cmp(&b.organization))
        });
        Ok(Overview { at: now, clients, totals })
    }

    /// The next maintenance window of each organization: the earliest start, at or after
    /// `now`, of any of its devices' effective windows, with that start in the device's zone.
    async fn next_windows(
        &self,
        scope: &Scope,
        now: Timestamp,
    ) -> Result<HashMap<OrganizationId, (Timestamp, String)>> {
        let partner = self.store.get_partner(&Scope::partner(scope.partner_id.clone())).await?;
        let tree: Tree = self.tree(scope).await?;
        let records = self.store.list_policies(scope).await?;
        let set = policy_set(&records, &tree, partner.name.as_ref())?;
        let mut seen: HashSet<(OrganizationId, String, String)> = HashSet::new();
        let mut out: HashMap<OrganizationId, (Timestamp, String)> = HashMap::new();
        // Devices placed alike (organization, site, groups, zone) with no policy of their own
        // share their effective settings: each placement is merged once.
        let own: HashSet<&str> =
            records.iter().filter(|r| r.level == "device").map(|r| r.target_id.as_str()).collect();
        let mut placements: HashSet<(String, String, Vec<String>, String)> = HashSet::new();
        for d in &tree.devices {
            if !own.contains(d.id.as_str()) {
                let mut groups: Vec<String> = d.group_ids.iter().map(|g| g.to_string()).collect();
                groups.sort();
                let key = (
                    d.organization_id.to_string(),
                    d.site_id.to_string(),
                    groups,
                    d.effective_time_zone.clone(),
                );
                if !placements.insert(key) {
                    continue;
                }
            }
            let effective = effective_of(&set, d).unwrap_or_default();
            let Some(f) = effective.get("maintenance_windows") else { continue };
            let tz = d.effective_time_zone.clone();
            if !seen.insert((d.organization_id.clone(), tz.clone(), f.value.to_string())) {
                continue;
            }
            let Ok(windows) = ringfence_policy::settings::maintenance_windows(&f.value, &tz) else {
                continue;
            };
            for w in windows {
                // A window open now counts from now: it is the one tonight's work falls in.
                let Some(o) = w
                    .occurrences_after(now - SignedDuration::from_hours(24), 4)
                    .into_iter()
                    .find(|o| o.end > now)
                else {
                    continue;
                };
                let start = o.start.max(now);
                let better = out.get(&d.organization_id).is_none_or(|(t, _)| start < *t);
                if better {
                    let local = jiff::tz::TimeZone::get(&tz)
                        .map(|z| format!("{} {tz}", o.start.to_zoned(z).strftime("%a %d %b %H:%M")))
                        .unwrap_or_default();
                    out.insert(d.organization_id.clone(), (start, local));
                }
            }
        }
        Ok(out)
    }
}
