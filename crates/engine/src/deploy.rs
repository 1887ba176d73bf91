//! Deployments: the planner's decisions become signed jobs, agents lease and report them,
//! inventories verify them, ring gates judge them, and technicians roll them back.
//!
//! - **Dispatch** (`dispatch_partner`, run by the server every minute and on demand): windows
//!   that ended without a start become `missed`; jobs that never came back fail; each ring's
//!   results go through its health gate, and a failing gate halts the update for every client
//!   of the partner; then the planner runs over the store with the real ring progress, the
//!   running deployments, the missed windows and the holds, and every deployment it places in
//!   the next hour is stored with its signed install job (one transaction for the run).
//! - **Agents** lease due jobs (`agent_lease`) and report them (`agent_report`); a report is
//!   applied once, whatever the retries. An install is `installed` when the agent says so and
//!   `verified` when the device's next inventory shows the exact versions (after the reboot,
//!   when there was one), which also attributes the findings it resolved to the deployment.
//! - **Rollback**: a failed verification (health checks) rolls back by itself where policy
//!   says `auto_rollback`; a technician rolls back one device, an organization or the fleet.
//!   A rollback installs the previous versions and holds them; the hold keeps the bad version
//!   off the device until a technician clears it.
//!
//! Every move is an evidence event, written by the store with the move.

use crate::schedule::{DEFAULT_GATE, Planning};
use crate::tenancy::body_id;
use crate::{Engine, EngineError, Result, require};
use jiff::SignedDuration;
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_proto::jobs::{Job, JobKind, JobOutcome, JobReport, PackageVersion};
use ringfence_schedule::planner::{self, Running, Snapshot};
use ringfence_schedule::rings::{GateVerdict, RingProgress, judge};
use ringfence_store::{
    ACTIVE_STATUSES, AgentIdentity, Audit, DeployedPackage, DeploymentChange, DeploymentQuery,
    DeploymentRecord, HaltRecord, HoldRecord, NewDeployment, NewHold, NewJob,
};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Deployments the planner places this far ahead are dispatched now.
pub const DISPATCH_AHEAD: SignedDuration = SignedDuration::from_hours(1);
/// How long an agent holds a job before it is due again.
pub const LEASE: SignedDuration = SignedDuration::from_mins(15);
/// How long after its window a started deployment may still report (a slow reboot).
pub const REPORT_GRACE: SignedDuration = SignedDuration::from_mins(60);
/// How long after its window a done appliance task may wait for the poll that verifies it.
pub const APPLIANCE_VERIFY_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// A technician's rollback may start at once and during the next day.
pub const ROLLBACK_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// How far back the dispatcher and the rollouts view read deployments: a rollout's rings
/// finish within weeks, and older history stays in the deployments list and the evidence.
pub const HISTORY: SignedDuration = SignedDuration::from_hours(24 * 60);
/// The actor of the dispatcher's moves and of gate halts.
pub const DISPATCH_ACTOR: &str = "dispatcher";
pub const GATE_ACTOR: &str = "ring-gate";

/// What one dispatch run did.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DispatchSummary {
    /// New deployments with their jobs.
    pub scheduled: usize,
    /// Of those, deployments that replace a missed one.
    pub rescheduled: usize,
    pub missed: usize,
    /// Started deployments that never reported back.
    pub timed_out: usize,
    /// Updates a failing ring gate halted in this run ("product version: why").
    pub halted: Vec<String>,
    /// Deployments planned for later windows (not dispatched yet).
    pub planned_later: usize,
}

/// One ring of one update's rollout.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RingState {
    pub ring: u8,
    pub name: String,
    /// Devices of the ring offered the update without a deployment yet.
    pub waiting: usize,
    /// Scheduled or dispatched.
    pub pending: usize,
    /// Running, rebooting or installed (not verified yet).
    pub running: usize,
    pub succeeded: usize,
    /// Failed (also those rolled back afterwards).
    pub failed: usize,
    pub missed: usize,
    /// pass, pending or fail (the gate's verdict), or `not_started`.
    pub gate: String,
}

/// An update moving through the rings.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RolloutView {
    pub product: String,
    pub version: String,
    /// in_progress, halted, complete or waiting.
    pub status: String,
    pub halt: Option<String>,
    pub halt_id: Option<String>,
    pub rings: Vec<RingState>,
    pub rolled_back: usize,
}

/// What a rollback request did.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RollbackSummary {
    /// Rollback deployments created, one per device.
    pub scheduled: usize,
    /// Devices passed over, with why ("host: why").
    pub skipped: Vec<String>,
    /// The halt created with a fleet-wide rollback, if one was.
    pub halt_id: Option<String>,
}

fn ring_name(ring: u8) -> String {
    match ringfence_schedule::rings::RING_NAMES.get(usize::from(ring)) {
        Some(name) => name.to_string(),
        None => format!("ring {ring}"),
    }
}

/// A technician who releases a gate's halt overrides that gate: the ring counts as passed
/// (entered at the release, if it never was), and only the results that came after the latest
/// release are judged again, so a new failure halts the update again.
pub(crate) fn apply_releases(input: &mut Planning, halts: &[HaltRecord], all: &[DeploymentRecord]) {
    for (ui, u) in input.updates.iter_mut().enumerate() {
        let r = &input.refs[ui];
        for (ring, p) in u.progress.iter_mut().enumerate() {
            let released = halts
                .iter()
                .filter(|h| {
                    h.product == r.product
                        && h.version == r.version
                        && h.reason.starts_with(&format!("ring {ring} "))
                })
                .filter_map(|h| h.released_at)
                .max();
            if let Some(at) = released {
                let after = ring_results_since(all, &r.product, &r.version, ring, at);
                *p = RingProgress {
                    entered_at: p.entered_at.or(Some(at)),
                    verified: after.verified + DEFAULT_GATE.min_successes,
                    failed: after.failed,
                };
            }
        }
    }
}

/// A ring's install results for one update among deployments that ended after `since`.
fn ring_results_since(
    all: &[DeploymentRecord],
    product: &str,
    version: &str,
    ring: usize,
    since: jiff::Timestamp,
) -> RingProgress {
    let mut p = RingProgress::default();
    for d in all.iter().filter(|d| d.kind == "install" && usize::from(d.ring) == ring) {
        if !d.updates.iter().any(|u| u.product == product && u.version == version) {
            continue;
        }
        if d.finished_at.is_none_or(|t| t <= since) {
            continue;
        }
        match d.status.as_str() {
            "verified" => p.verified += 1,
            "failed" | "rolled_back" => p.failed += 1,
            _ => {}
        }
    }
    p
}

/// What a job names for one package: the package and its exact version; for Windows Update,
/// the update's KB number (the catalog's title is for people, the agent searches by KB).
pub fn job_package(p: &DeployedPackage) -> PackageVersion {
    if p.manager == "windows_update" {
        PackageVersion {
            manager: p.manager.clone(),
            name: p.to_version.clone(),
            version: p.to_version.clone(),
        }
    } else {
        PackageVersion { manager: p.manager.clone(), name: p.name.clone(), version: p.to_version.clone() }
    }
}

/// An evidence summary of a job report (its log stays on the deployment).
fn report_summary(r: &JobReport) -> serde_json::Value {
    json!({
        "job_id": r.job_id, "outcome": r.outcome, "phase": r.phase, "detail": r.detail,
        "installed": r.installed, "health": r.health, "rebooted": r.rebooted, "boot_id": r.boot_id, "at": r.at,
    })
}

fn checked_text(field: &'static str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(ValueError::new(field, format!("is longer than {max} bytes")).into());
    }
    Ok(())
}

/// What the deployments made so far mean for the planner.
pub(crate) struct Progress {
    /// Deployments not over yet (they count against the concurrency limits).
    pub running: Vec<Running>,
    /// A device whose newest deployment was missed: when its window ended, and its id.
    pub missed_at: HashMap<usize, (jiff::Timestamp, String)>,
    /// `ring_sizes[update][ring]`: the devices of the ring offered the update (for its gate).
    pub ring_sizes: Vec<Vec<u32>>,
}

/// Folds the deployments into the planner's input: each update's ring progress
/// (`Update::progress`), the running
/// deployments, missed windows (`Device::not_before`), and what each device still needs (not
/// what it has done or is doing, not a version a hold keeps off it).
pub(crate) fn progress_of(input: &mut Planning, all: &[DeploymentRecord], holds: &[HoldRecord]) -> Progress {
    let device_of: HashMap<&DeviceId, usize> =
        input.records.iter().enumerate().map(|(i, d)| (&d.id, i)).collect();
    let update_of: HashMap<(&str, &str), usize> =
        input.refs.iter().enumerate().map(|(i, r)| ((r.product.as_str(), r.version.as_str()), i)).collect();

    // Ring progress of each update, from the install deployments.
    let ring_count = input.rings.len().max(4);
    let mut progress = vec![vec![RingProgress::default(); ring_count]; input.updates.len()];
    let mut done: HashSet<(usize, usize)> = HashSet::new();
    let mut running: Vec<Running> = Vec::new();
    let mut busy: HashSet<usize> = HashSet::new();
    let mut missed_at: HashMap<usize, (jiff::Timestamp, String)> = HashMap::new();
    // Oldest first, so the newest deployment of a device decides its state.
    for d in all.iter().rev() {
        let Some(&di) = device_of.get(&d.device_id) else { continue };
        // One update may have several packages in one deployment (xz-utils, liblzma5).
        let mut uis: Vec<usize> = d
            .updates
            .iter()
            .filter_map(|u| update_of.get(&(u.product.as_str(), u.version.as_str())).copied())
            .collect();
        uis.sort_unstable();
        uis.dedup();
        if d.is_active() {
            busy.insert(di);
            running.push(Running {
                device: di,
                updates: uis.clone(),
                start: d.window_start,
                end: d.window_end,
            });
        }
        if d.kind != "install" {
            continue;
        }
        // Only an install is rescheduled after a missed window (a missed rollback is redone by
        // a technician).
        if d.status == "missed" {
            missed_at.insert(di, (d.window_end, d.id.clone()));
        } else {
            missed_at.remove(&di);
        }
        for &ui in &uis {
            let ring = usize::from(d.ring).min(ring_count - 1);
            let p = &mut progress[ui][ring];
            match d.status.as_str() {
                "verified" => {
                    p.verified += 1;
                    let at = d.finished_at.unwrap_or(d.updated_at);
                    p.entered_at = Some(p.entered_at.map_or(at, |e| e.min(at)));
                    done.insert((di, ui));
                }
                "failed" => {
                    p.failed += 1;
                    done.insert((di, ui));
                }
                // The hold keeps the bad version off the device while it lives; once a
                // technician clears it, the update may be offered again.
                "rolled_back" => p.failed += 1,
                // A technician asked for another attempt: offered again, no longer judged.
                "retried" => {}
                _ => {}
            }
        }
    }

    for (ui, u) in input.updates.iter_mut().enumerate() {
        u.progress = progress[ui].clone();
    }
    let mut ring_sizes = vec![vec![0u32; ring_count]; input.updates.len()];
    for d in &input.devices {
        for &ui in &d.updates {
            ring_sizes[ui][usize::from(d.ring).min(ring_count - 1)] += 1;
        }
    }
    let held: HashSet<(&DeviceId, &str, &str)> =
        holds.iter().map(|h| (&h.device_id, h.name.as_str(), h.blocked_version.as_str())).collect();
    for (di, device) in input.devices.iter_mut().enumerate() {
        let id = &input.records[di].id;
        device.updates.retain(|&ui| {
            !done.contains(&(di, ui))
                && !input.refs[ui].packages.get(&di).is_some_and(|ps| {
                    ps.iter().any(|p| held.contains(&(id, p.name.as_str(), p.candidate.as_str())))
                })
        });
        if busy.contains(&di) {
            device.updates.clear();
        }
        device.not_before = missed_at.get(&di).map(|(t, _)| *t);
    }
    Progress { running, missed_at, ring_sizes }
}

impl Engine {
    /// Runs the dispatcher for every partner (the server's worker); a partner whose run fails
    /// is logged and the others go on.
    pub async fn dispatch_all(&self) -> Result<DispatchSummary> {
        let mut total = DispatchSummary::default();
        for partner in self.store.list_partners().await? {
            match self.dispatch_partner(&partner.id).await {
                Ok(s) => {
                    total.scheduled += s.scheduled;
                    total.rescheduled += s.rescheduled;
                    total.missed += s.missed;
                    total.timed_out += s.timed_out;
                    total.planned_later += s.planned_later;
                    total.halted.extend(s.halted);
                }
                Err(e) => tracing::warn!(partner = %partner.id, error = %e, "dispatch failed"),
            }
        }
        Ok(total)
    }

    /// Runs the dispatcher for the caller's partner now (technicians acting for the partner).
    pub async fn dispatch(&self, p: &Principal) -> Result<DispatchSummary> {
        require(p, Permission::Approve, "dispatch deployments")?;
        crate::require_partner_wide(p, "dispatch (it plans every client of the partner)")?;
        self.dispatch_partner(&p.partner_id).await
    }

    /// One dispatch run for one partner (see the module comment).
    pub async fn dispatch_partner(&self, partner: &PartnerId) -> Result<DispatchSummary> {
        let now = self.now();
        let scope = Scope::partner(partner.clone());
        let audit = Audit::new(DISPATCH_ACTOR, now);
        let mut summary = DispatchSummary::default();
        let recent = DeploymentQuery { since: Some(now - HISTORY), ..Default::default() };
        let mut all = self.store.list_deployments(&scope, &recent).await?;
        // Appliances have no agent: their deployments are technicians' maintenance tasks.
        let appliances: HashSet<DeviceId> = self
            .store
            .list_appliances(&scope, &Default::default())
            .await?
            .into_iter()
            .map(|a| a.device_id)
            .collect();

        // Windows that ended before a start, and starts that never came back.
        for d in all.iter_mut().filter(|d| d.is_active()) {
            let task = appliances.contains(&d.device_id);
            let (to, detail) = match d.status.as_str() {
                "scheduled" | "dispatched" if task && d.window_end <= now => {
                    ("missed", "the maintenance task was not marked done inside its window")
                }
                "installed" if task => {
                    if d.window_end + APPLIANCE_VERIFY_GRACE > now {
                        continue;
                    }
                    ("failed", "no poll or confirmation showed the new firmware within a day of the window")
                }
                // A leased job may be running with its start report lost: it gets the grace too.
                "scheduled" | "dispatched"
                    if d.window_end <= now
                        && (d.status == "scheduled" || d.window_end + REPORT_GRACE <= now) =>
                {
                    (
                        "missed",
                        if d.status == "scheduled" {
                            "the device did not fetch the job before its window ended (offline?)"
                        } else {
                            "the agent fetched the job but did not start it inside its window"
                        },
                    )
                }
                "running" | "rebooting" | "installed" if d.window_end + REPORT_GRACE <= now => (
                    "failed",
                    match d.status.as_str() {
                        "rebooting" => "the device did not come back from its reboot in time",
                        "installed" => "the device's inventory never showed the installed versions",
                        _ => "the agent started the job but never reported its end",
                    },
                ),
                _ => continue,
            };
            let change = DeploymentChange {
                status: to.into(),
                detail: Some(detail.into()),
                evidence: json!({ "reason": detail }),
                ..Default::default()
            };
            if let Some(moved) =
                self.store.transition_deployment(&audit, &scope, &d.id, &[d.status.as_str()], &change).await?
            {
                if to == "missed" {
                    summary.missed += 1;
                } else {
                    summary.timed_out += 1;
                }
                *d = moved;
            }
        }

        let mut input = self.planning(&scope, None, now).await?;
        // Only devices with an agent can be sent a job (nor fill a ring's gate).
        for ((device, has_agent), record) in
            input.devices.iter_mut().zip(&input.has_agent).zip(&input.records)
        {
            if !has_agent && !appliances.contains(&record.id) {
                device.updates.clear();
            }
        }
        let holds = self.store.list_holds(&scope, false).await?;
        let Progress { running, missed_at, ring_sizes } = progress_of(&mut input, &all, &holds);
        // Ring gates: a failing one halts the update for every client.
        let halts = self.store.list_halts(&scope).await?;
        apply_releases(&mut input, &halts, &all);
        for (ui, sizes) in ring_sizes.iter().enumerate() {
            if input.updates[ui].halt.is_some() {
                continue;
            }
            let r = &input.refs[ui];
            for (ring, p) in input.updates[ui].progress.iter().enumerate() {
                if p.verified + p.failed == 0 {
                    continue;
                }
                let size = sizes[ring];
                if let GateVerdict::Fail { failure_rate, limit } = judge(&DEFAULT_GATE.sized(size), p) {
                    let reason = format!(
                        "ring {ring} ({}) gate failed: {} of {} deployments failed ({:.0}%, limit {:.0}%)",
                        ring_name(ring as u8),
                        p.failed,
                        p.verified + p.failed,
                        failure_rate * 100.0,
                        limit * 100.0
                    );
                    if halts
                        .iter()
                        .any(|h| h.released_at.is_none() && h.product == r.product && h.version == r.version)
                    {
                        break;
                    }
                    let gate_audit = Audit::new(GATE_ACTOR, now);
                    self.store.create_halt(&gate_audit, &scope, &r.product, &r.version, &reason).await?;
                    summary.halted.push(format!("{} {}: {reason}", r.product, r.version));
                    input.updates[ui].halt = Some(reason);
                    break;
                }
            }
        }
        let Planning { rings, orgs, window_sets, devices, updates, .. } = &input;
        let snapshot = Snapshot {
            now,
            rings,
            gate: DEFAULT_GATE,
            orgs,
            window_sets,
            devices,
            updates,
            running: &running,
            horizon_days: 62,
        };
        let plan = planner::plan(&snapshot);
        let (secret, _) = self.job_key().await?;
        let mut new = Vec::new();
        for dep in &plan.deployments {
            if dep.start > now + DISPATCH_AHEAD {
                summary.planned_later += 1;
                continue;
            }
            let di = dep.device;
            let record = &input.records[di];
            let policy = &input.policies[di];
            let mut packages = Vec::new();
            for &ui in &dep.updates {
                let r = &input.refs[ui];
                for p in r.packages.get(&di).into_iter().flatten() {
                    if packages.iter().any(|x: &DeployedPackage| x.name == p.name) {
                        continue;
                    }
                    packages.push(DeployedPackage {
                        product: r.product.clone(),
                        version: r.version.clone(),
                        manager: p.manager.clone(),
                        name: p.name.clone(),
                        from_version: p.installed.clone(),
                        to_version: p.candidate.clone(),
                    });
                }
            }
            if packages.is_empty() {
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let previous = missed_at.get(&di).map(|(_, id)| id.clone());
            if appliances.contains(&record.id) {
                let what = packages
                    .iter()
                    .map(|p| format!("{} {} → {}", p.name, p.from_version, p.to_version))
                    .collect::<Vec<_>>()
                    .join(", ");
                new.push(NewDeployment {
                    id,
                    organization_id: record.organization_id.clone(),
                    device_id: record.id.clone(),
                    kind: "install".into(),
                    ring: input.devices[di].ring,
                    reboot_required: true,
                    updates: packages,
                    window_start: dep.start,
                    window_end: dep.window.end,
                    action: if previous.is_some() {
                        "deployment.rescheduled"
                    } else {
                        "deployment.scheduled"
                    }
                    .into(),
                    previous_id: previous,
                    detail: format!(
                        "maintenance task: upgrade {what}; ring {} ({}); window {} to {} UTC",
                        input.devices[di].ring,
                        ring_name(input.devices[di].ring),
                        dep.window.start.strftime("%Y-%m-%d %H:%M"),
                        dep.window.end.strftime("%Y-%m-%d %H:%M")
                    ),
                    job: None,
                });
                continue;
            }
            let job = Job {
                id: uuid::Uuid::now_v7().to_string(),
                idempotency_key: format!("{id}-install"),
                device_id: record.id.to_string(),
                deployment_id: Some(id.clone()),
                work: JobKind::Install {
                    packages: packages.iter().map(job_package).collect(),
                    reboot_allowed: policy.reboot_allowed,
                    health_checks: policy.health_checks.clone(),
                },
                window_start: dep.start,
                window_end: dep.window.end,
                issued_at: now,
            };
            let signed = match proto::jobs::sign(&job, &secret) {
                Ok(s) => s,
                Err(e) => {
                    // A package name an agent reported that a job may not carry: never dispatched.
                    tracing::warn!(device = %record.id, error = %e, "deployment not dispatched");
                    continue;
                }
            };
            new.push(NewDeployment {
                id,
                organization_id: record.organization_id.clone(),
                device_id: record.id.clone(),
                kind: "install".into(),
                ring: input.devices[di].ring,
                reboot_required: dep.updates.iter().any(|&ui| input.refs[ui].reboot_required),
                updates: packages,
                window_start: dep.start,
                window_end: dep.window.end,
                action: if previous.is_some() { "deployment.rescheduled" } else { "deployment.scheduled" }
                    .into(),
                previous_id: previous,
                detail: format!(
                    "ring {} ({}); window {} to {} UTC",
                    input.devices[di].ring,
                    ring_name(input.devices[di].ring),
                    dep.window.start.strftime("%Y-%m-%d %H:%M"),
                    dep.window.end.strftime("%Y-%m-%d %H:%M")
                ),
                job: Some(NewJob {
                    id: job.id.clone(),
                    idempotency_key: job.idempotency_key.clone(),
                    kind: "install".into(),
                    payload: signed.payload,
                    signature: signed.signature,
                }),
            });
        }
        let created = self.store.create_deployments(&audit, partner, &new).await?;
        let created: HashSet<&str> = created.iter().map(String::as_str).collect();
        summary.scheduled = created.len();
        summary.rescheduled =
            new.iter().filter(|d| created.contains(d.id.as_str()) && d.previous_id.is_some()).count();
        Ok(summary)
    }

    /// An agent takes its due jobs.
    pub async fn agent_lease(&self, a: &AgentIdentity) -> Result<proto::jobs::JobLease> {
        let now = self.now();
        let audit = Audit::new(format!("agent:{}", a.device_id), now);
        let jobs = self.store.lease_jobs(&audit, &a.partner_id, &a.device_id, now + LEASE).await?;
        Ok(proto::jobs::JobLease {
            jobs: jobs
                .into_iter()
                .map(|j| proto::jobs::SignedJob { payload: j.payload, signature: j.signature })
                .collect(),
        })
    }

    /// An agent reports a job: the deployment moves, once, whatever the retries.
    pub async fn agent_report(&self, a: &AgentIdentity, r: JobReport) -> Result<proto::jobs::JobReportAck> {
        checked_text("job_id", &r.job_id, 64)?;
        checked_text("idempotency_key", &r.idempotency_key, 128)?;
        checked_text("phase", &r.phase, 32)?;
        checked_text("detail", &r.detail, proto::jobs::MAX_DETAIL + 3)?;
        if r.log.len() > proto::jobs::MAX_LOG {
            return Err(ValueError::new(
                "log",
                format!("is over {} bytes: send the end of it", proto::jobs::MAX_LOG),
            )
            .into());
        }
        if r.health.len() > proto::jobs::MAX_CHECKS || r.installed.len() > proto::jobs::MAX_PACKAGES {
            return Err(ValueError::new("health", "at most 32 check results and 500 packages").into());
        }
        for c in &r.health {
            checked_text("health.check", &c.check, proto::jobs::CHECK_LABEL + 3)?;
            checked_text("health.detail", &c.detail, proto::jobs::CHECK_DETAIL + 3)?;
        }
        for p in &r.installed {
            checked_text("installed.name", &p.name, 200)?;
            checked_text("installed.version", &p.version, 200)?;
        }
        if let Some(b) = &r.boot_id {
            checked_text("boot_id", b, 64)?;
        }
        let Some(job) = self.store.get_job(&a.partner_id, &a.device_id, &r.job_id).await? else {
            return Err(EngineError::NotFound("job"));
        };
        if job.idempotency_key != r.idempotency_key {
            return Err(ValueError::new("idempotency_key", "does not belong to this job").into());
        }
        let now = self.now();
        let audit = Audit::new(format!("agent:{}", a.device_id), now);
        let scope = Scope::partner(a.partner_id.clone());
        let final_outcome = match r.outcome {
            JobOutcome::Started | JobOutcome::Rebooting => None,
            JobOutcome::Succeeded => Some("succeeded"),
            JobOutcome::Failed => Some("failed"),
            // "Not yet" is the only refusal the job survives: it is leased again later.
            JobOutcome::Refused if r.detail.contains("not yet") => None,
            JobOutcome::Refused => Some("refused"),
        };
        let mut recorded = match final_outcome {
            Some(o) => self.store.finish_job(&a.partner_id, &r.job_id, o, now).await?,
            None => false,
        };
        let Some(dep_id) = job.deployment_id else {
            return Ok(proto::jobs::JobReportAck { recorded });
        };
        let dep = self.store.get_deployment(&scope, &dep_id).await?;
        let summary = report_summary(&r);
        let log = (!r.log.is_empty()).then(|| r.log.clone());
        let detail = |s: String| Some(s.chars().take(500).collect::<String>());
        let before = ["scheduled", "dispatched"];
        let started = ["scheduled", "dispatched", "running", "rebooting"];
        let (from, change): (&[&str], DeploymentChange) = match r.outcome {
            JobOutcome::Started => (
                &before,
                DeploymentChange { status: "running".into(), evidence: summary, ..Default::default() },
            ),
            JobOutcome::Rebooting => (
                &["scheduled", "dispatched", "running"],
                DeploymentChange {
                    status: "rebooting".into(),
                    boot_id: r.boot_id.clone(),
                    log,
                    evidence: summary,
                    ..Default::default()
                },
            ),
            JobOutcome::Succeeded => {
                let exact = dep.updates.iter().all(|u| {
                    let want = if dep.kind == "rollback" { &u.from_version } else { &u.to_version };
                    let name = job_package(u).name;
                    r.installed.iter().any(|i| i.name == name && &i.version == want)
                });
                let came_back = dep.status != "rebooting"
                    || (r.rebooted && r.boot_id.is_some() && r.boot_id != dep.boot_id);
                if exact && came_back {
                    (
                        &started,
                        DeploymentChange {
                            status: "installed".into(),
                            detail: detail("installed; waiting for the device's inventory to show it".into()),
                            log,
                            boot_id: r.boot_id.clone(),
                            evidence: summary,
                            task: None,
                        },
                    )
                } else {
                    let why = if exact {
                        "the agent reported success from the boot it was to reboot out of"
                    } else {
                        "the agent reported success but the versions are not the ones the job named"
                    };
                    (
                        &started,
                        DeploymentChange {
                            status: "failed".into(),
                            detail: detail(why.into()),
                            log,
                            evidence: summary,
                            ..Default::default()
                        },
                    )
                }
            }
            JobOutcome::Failed => (
                &started,
                DeploymentChange {
                    status: "failed".into(),
                    detail: detail(format!(
                        "{}: {}",
                        if r.phase.is_empty() { "job" } else { r.phase.as_str() },
                        r.detail
                    )),
                    log,
                    evidence: summary,
                    ..Default::default()
                },
            ),
            JobOutcome::Refused if r.detail.contains("not yet") => {
                return Ok(proto::jobs::JobReportAck { recorded });
            }
            JobOutcome::Refused => {
                let missed = r.detail.contains("window ended");
                (
                    &started,
                    DeploymentChange {
                        status: if missed { "missed" } else { "failed" }.into(),
                        detail: detail(format!("refused by the agent: {}", r.detail)),
                        evidence: summary,
                        ..Default::default()
                    },
                )
            }
        };
        let moved = self.store.transition_deployment(&audit, &scope, &dep.id, from, &change).await?;
        recorded |= moved.is_some();
        if let Some(moved) = moved {
            match moved.status.as_str() {
                "installed" => {
                    if moved.kind == "rollback" {
                        self.finish_rollback(&audit, &scope, &moved).await?;
                    }
                    self.verify_device(&a.partner_id, &a.device_id).await?;
                }
                "failed" if moved.kind == "install" && r.phase == "health" => {
                    self.auto_rollback(&scope, &moved).await?;
                }
                _ => {}
            }
        }
        Ok(proto::jobs::JobReportAck { recorded })
    }

    /// Verifies the device's installed deployments against its stored inventory: each one
    /// whose packages all show the versions it installed becomes `verified`, and the findings
    /// its update resolved are attributed to it.
    pub async fn verify_device(&self, partner: &PartnerId, device: &DeviceId) -> Result<usize> {
        let scope = Scope::partner(partner.clone());
        let installed = self
            .store
            .list_deployments(
                &scope,
                &DeploymentQuery {
                    device_id: Some(device.clone()),
                    statuses: vec!["installed".into()],
                    ..Default::default()
                },
            )
            .await?;
        if installed.is_empty() {
            return Ok(0);
        }
        let inventory = self.store.device_inventory(&scope, device).await?;
        let now = self.now();
        let audit = Audit::new(format!("agent:{device}"), now);
        let mut verified = 0;
        for d in installed {
            let shows = d.updates.iter().all(|u| {
                let want = if d.kind == "rollback" { &u.from_version } else { &u.to_version };
                inventory.items.iter().any(|i| {
                    i.name == u.name
                        && &i.version == want
                        && i.manager.as_deref().is_none_or(|m| m == u.manager)
                })
            });
            // An inventory from after the job started: it may come before the install report
            // (after a reboot the agent reports its inventory first), never from before it.
            let since = d.started_at.unwrap_or(d.created_at);
            let fresh = inventory.updated_at.is_some_and(|inv| inv >= since);
            if !shows || !fresh {
                continue;
            }
            let change = DeploymentChange {
                status: "verified".into(),
                detail: Some("the device's inventory shows every version the deployment installed".into()),
                evidence: json!({ "inventory_at": inventory.updated_at }),
                ..Default::default()
            };
            if let Some(v) =
                self.store.transition_deployment(&audit, &scope, &d.id, &["installed"], &change).await?
            {
                verified += 1;
                if v.kind == "install" {
                    let products: Vec<String> = v
                        .updates
                        .iter()
                        .flat_map(|u| [u.product.clone(), u.name.clone()])
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let since = v.started_at.unwrap_or(v.created_at);
                    self.store.attribute_findings(&scope, device, &v.id, &products, since).await?;
                }
            }
        }
        Ok(verified)
    }

    /// A rollback went through: the deployment it undid is `rolled_back`, and the previous
    /// versions are held so the next cycle does not install the bad one again.
    async fn finish_rollback(&self, audit: &Audit, scope: &Scope, rollback: &DeploymentRecord) -> Result<()> {
        if let Some(prev) = &rollback.previous_id {
            let change = DeploymentChange {
                status: "rolled_back".into(),
                detail: Some(format!("rolled back by deployment {}", rollback.id)),
                evidence: json!({ "rollback_id": rollback.id }),
                ..Default::default()
            };
            self.store
                .transition_deployment(audit, scope, prev, &["verified", "installed", "failed"], &change)
                .await?;
        }
        let holds: Vec<NewHold> = rollback
            .updates
            .iter()
            .filter(|u| !u.from_version.is_empty())
            .map(|u| NewHold {
                organization_id: rollback.organization_id.clone(),
                device_id: rollback.device_id.clone(),
                manager: u.manager.clone(),
                name: u.name.clone(),
                product: u.product.clone(),
                held_version: u.from_version.clone(),
                blocked_version: u.to_version.clone(),
                deployment_id: Some(rollback.id.clone()),
                reason: format!("rolled back from {} by deployment {}", u.to_version, rollback.id),
            })
            .collect();
        self.store.create_holds(audit, scope, &holds).await?;
        Ok(())
    }

    /// A failed verification rolls back by itself where the device's policy says so.
    async fn auto_rollback(&self, scope: &Scope, failed: &DeploymentRecord) -> Result<()> {
        let tree = self.tree(scope).await?;
        let Some(device) = tree.devices.iter().find(|d| d.id == failed.device_id) else { return Ok(()) };
        let partner = self.store.get_partner(scope).await?;
        let records = self.store.list_policies(scope).await?;
        let set = crate::policies::policy_set(&records, &tree, partner.name.as_ref())?;
        let effective = crate::policies::effective_of(&set, device).unwrap_or_default();
        let wanted = effective.get("auto_rollback").is_some_and(|f| f.value.as_bool() == Some(true));
        if !wanted {
            return Ok(());
        }
        let checks = effective
            .get("health_checks")
            .and_then(|f| ringfence_policy::settings::health_checks(&f.value).ok())
            .unwrap_or_default();
        let audit = Audit::new("auto-rollback", self.now());
        let checks_of = |_: &DeviceId| checks.clone();
        self.schedule_rollbacks(
            &audit,
            scope,
            &[failed],
            &checks_of,
            "verification failed; policy auto_rollback",
        )
        .await?;
        Ok(())
    }

    /// Creates a rollback deployment for each install deployment (one device each), with
    /// its signed job: go back to the versions installed before, and hold them.
    async fn schedule_rollbacks(
        &self,
        audit: &Audit,
        scope: &Scope,
        targets: &[&DeploymentRecord],
        checks_of: &(dyn Fn(&DeviceId) -> Vec<proto::jobs::HealthCheck> + Sync),
        reason: &str,
    ) -> Result<Vec<DeviceId>> {
        let (secret, _) = self.job_key().await?;
        let start = audit.at;
        let end = start + ROLLBACK_WINDOW;
        let mut new = Vec::new();
        for t in targets {
            // Appliance firmware is rolled back by a technician on the device, not by a job.
            let packages: Vec<DeployedPackage> = t
                .updates
                .iter()
                .filter(|u| can_undo(u) && u.manager != crate::appliances::APPLIANCE_MANAGER)
                .cloned()
                .collect();
            if packages.is_empty() {
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let job = Job {
                id: uuid::Uuid::now_v7().to_string(),
                idempotency_key: format!("{id}-rollback"),
                device_id: t.device_id.to_string(),
                deployment_id: Some(id.clone()),
                work: JobKind::Rollback {
                    packages: packages
                        .iter()
                        .map(|p| PackageVersion {
                            manager: p.manager.clone(),
                            name: p.name.clone(),
                            version: undo_version(p),
                        })
                        .collect(),
                    health_checks: checks_of(&t.device_id),
                },
                window_start: start,
                window_end: end,
                issued_at: start,
            };
            let signed = match proto::jobs::sign(&job, &secret) {
                Ok(s) => s,
                Err(e) => {
                    // A version the agent reported that a job may not name: this device is
                    // passed over (the caller lists it), the others go on.
                    tracing::warn!(device = %t.device_id, error = %e, "rollback not scheduled");
                    continue;
                }
            };
            new.push(NewDeployment {
                id,
                organization_id: t.organization_id.clone(),
                device_id: t.device_id.clone(),
                kind: "rollback".into(),
                ring: t.ring,
                updates: packages,
                window_start: start,
                window_end: end,
                reboot_required: false,
                previous_id: Some(t.id.clone()),
                detail: reason.chars().take(500).collect(),
                action: "deployment.rollback_scheduled".into(),
                job: Some(NewJob {
                    id: job.id.clone(),
                    idempotency_key: job.idempotency_key.clone(),
                    kind: "rollback".into(),
                    payload: signed.payload,
                    signature: signed.signature,
                }),
            });
        }
        let created = self.store.create_deployments(audit, &scope.partner_id, &new).await?;
        Ok(new.into_iter().filter(|d| created.contains(&d.id)).map(|d| d.device_id).collect())
    }

    /// Rolls an update back on one device, one organization or the whole fleet, in one
    /// action. A fleet-wide rollback also halts the update for every client.
    pub async fn rollback(&self, p: &Principal, req: &proto::RollbackRequest) -> Result<RollbackSummary> {
        require(p, Permission::Approve, "roll back updates")?;
        let product = crate::remediation::text("product", &req.product, 300)?;
        let version = crate::remediation::text("version", &req.version, 200)?;
        let reason = crate::remediation::text("reason", &req.reason, 2_000)?;
        let scope = p.scope();
        let device = match req.device_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) => Some(body_id(DeviceId::parse, d, "device_id")?),
            None => None,
        };
        let org = match req.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(o) => Some(body_id(OrganizationId::parse, o, "organization_id")?),
            None => None,
        };
        if let Some(d) = &device {
            self.store.get_device(&scope, d).await?;
        }
        if let Some(o) = &org {
            self.store.get_organization(&scope, o).await?;
        }
        let fleet = device.is_none() && org.is_none();
        if fleet {
            crate::require_partner_wide(p, "roll back for every client: name your organization")?;
        }
        let all = self
            .store
            .list_deployments(
                &scope,
                &DeploymentQuery {
                    organization_id: org.clone(),
                    device_id: device.clone(),
                    product: Some((product.clone(), version.clone())),
                    ..Default::default()
                },
            )
            .await?;
        if all.is_empty() {
            return Err(ValueError::new(
                "product",
                format!("no deployment of {product} {version} in this scope: nothing to roll back"),
            )
            .into());
        }
        // The newest deployment per device decides.
        let mut newest: HashMap<&DeviceId, &DeploymentRecord> = HashMap::new();
        for d in &all {
            newest.entry(&d.device_id).or_insert(d);
        }
        let mut summary = RollbackSummary::default();
        let mut targets = Vec::new();
        let mut names: Vec<(&DeviceId, &DeploymentRecord)> = newest.into_iter().collect();
        names.sort_by(|a, b| a.1.hostname.cmp(&b.1.hostname));
        for (_, d) in names {
            let why = match d.status.as_str() {
                _ if d.kind == "rollback" => Some("already rolled back or rolling back".to_string()),
                "verified" | "installed" | "failed" => None,
                s if ACTIVE_STATUSES.contains(&s) => {
                    Some(format!("its deployment is {s}; roll back when it has ended"))
                }
                s => Some(format!("its deployment is {s}: nothing was installed")),
            };
            let why = why.or_else(|| {
                d.updates.iter().all(|u| !can_undo(u)).then(|| {
                    "no previous version is known (it was a new install): remove it by hand".to_string()
                })
            });
            match why {
                Some(w) => summary.skipped.push(format!("{}: {w}", d.hostname)),
                None => targets.push(d),
            }
        }
        let audit = self.audit(p);
        // Each device's own health checks run after its rollback, as after an install.
        let input = self.planning(&scope, None, audit.at).await?;
        let checks: HashMap<&DeviceId, &Vec<proto::jobs::HealthCheck>> =
            input.records.iter().zip(&input.policies).map(|(d, p)| (&d.id, &p.health_checks)).collect();
        let checks_of = |d: &DeviceId| checks.get(d).map(|c| c.to_vec()).unwrap_or_default();
        let created = self.schedule_rollbacks(&audit, &scope, &targets, &checks_of, &reason).await?;
        summary.scheduled = created.len();
        for t in &targets {
            if !created.contains(&t.device_id) {
                summary.skipped.push(format!("{}: another deployment is active on it", t.hostname));
            }
        }
        if fleet {
            let halts = self.store.list_halts(&scope).await?;
            if !halts.iter().any(|h| h.released_at.is_none() && h.product == product && h.version == version)
            {
                let h = self
                    .store
                    .create_halt(
                        &audit,
                        &scope,
                        &product,
                        &version,
                        &format!("fleet-wide rollback: {reason}"),
                    )
                    .await?;
                summary.halt_id = Some(h.id);
            }
        }
        Ok(summary)
    }

    pub async fn deployments(
        &self,
        p: &Principal,
        q: &proto::DeploymentListQuery,
    ) -> Result<Vec<DeploymentRecord>> {
        require(p, Permission::Read, "read deployments")?;
        let query = self.deployment_query(q)?;
        Ok(self.store.list_deployments(&p.scope(), &query).await?)
    }

    /// One page of deployments in the order asked for, and how many the request matches by
    /// status (whatever its status filter), both from the database.
    pub async fn deployment_page(
        &self,
        p: &Principal,
        q: &proto::DeploymentListQuery,
        view: &DeploymentPageView<'_>,
    ) -> Result<(Vec<DeploymentRecord>, Vec<(String, i64)>)> {
        require(p, Permission::Read, "read deployments")?;
        let mut query = self.deployment_query(q)?;
        query.sort = view.sort.to_owned();
        query.descending = view.descending;
        query.offset = view.offset.max(0);
        let counts = self.store.deployment_status_counts(&p.scope(), &query).await?;
        let rows = self.store.list_deployments(&p.scope(), &query).await?;
        Ok((rows, counts))
    }

    /// A deployment list request checked into the store's query.
    fn deployment_query(&self, q: &proto::DeploymentListQuery) -> Result<DeploymentQuery> {
        let statuses: Vec<String> = q
            .status
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();

        if let Some(bad) = statuses.iter().find(|s| !DEPLOYMENT_STATUSES.contains(&s.as_str())) {
            return Err(ValueError::new(
                "status",
                format!("'{bad}' is not one of {}", DEPLOYMENT_STATUSES.join(", ")),
            )
            .into());
        }
        if let Some(k) = q.kind.as_deref().filter(|k| !k.is_empty())
            && k != "install"
            && k != "rollback"
        {
            return Err(ValueError::new("kind", format!("'{k}' is not install or rollback")).into());
        }
        let limit = q.limit.unwrap_or(500);
        if !(1..=10_000).contains(&limit) {
            return Err(ValueError::new("limit", "must be 1 to 10000").into());
        }
        let product = match (q.product.as_deref(), q.version.as_deref()) {
            (Some(p), Some(v)) if !p.is_empty() && !v.is_empty() => Some((p.to_string(), v.to_string())),
            (None, None) => None,
            (Some(""), _) | (_, Some("")) => None,
            _ => return Err(ValueError::new("version", "give product and version together").into()),
        };
        let query = DeploymentQuery {
            organization_id: match q.organization_id.as_deref().filter(|s| !s.is_empty()) {
                Some(o) => Some(body_id(OrganizationId::parse, o, "organization_id")?),
                None => None,
            },
            device_id: match q.device_id.as_deref().filter(|s| !s.is_empty()) {
                Some(d) => Some(body_id(DeviceId::parse, d, "device_id")?),
                None => None,
            },
            statuses,
            kind: q.kind.clone().filter(|k| !k.is_empty()),
            product,
            since: None,
            changed_since: match q.changed_within_hours {
                Some(h) if (1..=24 * 400).contains(&h) => {
                    Some(self.now() - jiff::SignedDuration::from_hours(i64::from(h)))
                }
                Some(_) => {
                    return Err(ValueError::new("changed_within_hours", "must be 1 to 9600 hours").into());
                }
                None => None,
            },
            with_log: false,
            limit,
            ..Default::default()
        };
        Ok(query)
    }

    pub async fn deployment(&self, p: &Principal, id: &str) -> Result<DeploymentRecord> {
        require(p, Permission::Read, "read deployments")?;
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(EngineError::NotFound("deployment"));
        }
        Ok(self.store.get_deployment(&p.scope(), id).await?)
    }

    /// Every update with deployments or waiting devices, ring by ring.
    pub async fn rollouts(&self, p: &Principal) -> Result<Vec<RolloutView>> {
        require(p, Permission::Read, "read rollouts")?;
        let scope = p.scope();
        let recent = DeploymentQuery { since: Some(self.now() - HISTORY), ..Default::default() };
        let all = self.store.list_deployments(&scope, &recent).await?;
        let halts = self.store.list_halts(&scope).await?;
        let input = self.planning(&scope, None, self.now()).await?;
        let mut views: Vec<RolloutView> = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut view_of = |views: &mut Vec<RolloutView>, product: &str, version: &str| -> usize {
            *index.entry((product.to_string(), version.to_string())).or_insert_with(|| {
                let halt = halts
                    .iter()
                    .find(|h| h.released_at.is_none() && h.product == product && h.version == version);
                views.push(RolloutView {
                    product: product.into(),
                    version: version.into(),
                    status: String::new(),
                    halt: halt.map(|h| {
                        format!(
                            "{} (by {} on {})",
                            h.reason,
                            h.halted_by,
                            h.halted_at.strftime("%Y-%m-%d %H:%M")
                        )
                    }),
                    halt_id: halt.map(|h| h.id.clone()),
                    rings: (0..4u8)
                        .map(|r| RingState { ring: r, name: ring_name(r), ..Default::default() })
                        .collect(),
                    rolled_back: 0,
                });
                views.len() - 1
            })
        };
        let mut has_deployment: HashSet<(DeviceId, usize)> = HashSet::new();
        for d in all.iter().filter(|d| d.kind == "install") {
            let mut seen = HashSet::new();
            for u in &d.updates {
                if !seen.insert((&u.product, &u.version)) {
                    continue;
                }
                let vi = view_of(&mut views, &u.product, &u.version);
                let v = &mut views[vi];
                let ring = usize::from(d.ring).min(3);
                if !has_deployment.insert((d.device_id.clone(), vi)) {
                    continue;
                }
                let r = &mut v.rings[ring];
                match d.status.as_str() {
                    "scheduled" | "dispatched" => r.pending += 1,
                    "running" | "rebooting" | "installed" => r.running += 1,
                    "verified" => r.succeeded += 1,
                    "failed" => r.failed += 1,
                    "rolled_back" => {
                        r.failed += 1;
                        v.rolled_back += 1;
                    }
                    "missed" => r.missed += 1,
                    _ => {}
                }
            }
        }
        for (ui, r) in input.refs.iter().enumerate() {
            let vi = view_of(&mut views, &r.product, &r.version);
            for (di, d) in input.devices.iter().enumerate() {
                if d.updates.contains(&ui) && !has_deployment.contains(&(input.records[di].id.clone(), vi)) {
                    views[vi].rings[usize::from(d.ring).min(3)].waiting += 1;
                }
            }
        }
        for v in &mut views {
            for r in &mut v.rings {
                let size = (r.waiting + r.pending + r.running + r.succeeded + r.failed + r.missed) as u32;
                let p =
                    RingProgress { entered_at: None, verified: r.succeeded as u32, failed: r.failed as u32 };
                r.gate = if size == 0 {
                    "not_started".into()
                } else {
                    match judge(&DEFAULT_GATE.sized(size), &p) {
                        GateVerdict::Pass => "pass".into(),
                        GateVerdict::Pending { .. } => "pending".into(),
                        GateVerdict::Fail { .. } => "fail".into(),
                    }
                };
            }
            let open: usize = v.rings.iter().map(|r| r.waiting + r.pending + r.running).sum();
            let any: usize =
                v.rings.iter().map(|r| r.pending + r.running + r.succeeded + r.failed + r.missed).sum();
            v.status = if v.halt.is_some() {
                "halted"
            } else if open == 0 && any > 0 {
                "complete"
            } else if any == 0 {
                "waiting"
            } else {
                "in_progress"
            }
            .into();
        }
        views.sort_by(|a, b| {
            let rank = |s: &str| match s {
                "halted" => 0,
                "in_progress" => 1,
                "waiting" => 2,
                _ => 3,
            };
            rank(&a.status)
                .cmp(&rank(&b.status))
                .then(a.product.cmp(&b.product))
                .then(a.version.cmp(&b.version))
        });
        Ok(views)
    }

    /// Lets a failed or missed install be tried again: the next dispatch offers the update to
    /// the device (in its next window), and the ring's gate no longer counts the failure.
    pub async fn retry_deployment(&self, p: &Principal, id: &str, reason: &str) -> Result<DeploymentRecord> {
        require(p, Permission::Approve, "retry deployments")?;
        let reason = crate::remediation::text("reason", reason, 2_000)?;
        let d = self.deployment(p, id).await?;
        if d.kind != "install" || !["failed", "missed"].contains(&d.status.as_str()) {
            return Err(ValueError::new(
                "id",
                format!(
                    "the deployment is a {} that is {}: only a failed or missed install is retried",
                    d.kind, d.status
                ),
            )
            .into());
        }
        let change = DeploymentChange {
            status: "retried".into(),
            detail: Some(format!("retry requested: {reason}")),
            evidence: json!({ "reason": reason, "was": d.status }),
            ..Default::default()
        };
        self.store
            .transition_deployment(&self.audit(p), &p.scope(), &d.id, &["failed", "missed"], &change)
            .await?
            .ok_or_else(|| EngineError::Conflict("the deployment changed meanwhile; reload it".into()))
    }

    /// Live holds in the caller's scope.
    pub async fn holds(&self, p: &Principal) -> Result<Vec<HoldRecord>> {
        require(p, Permission::Read, "read package holds")?;
        Ok(self.store.list_holds(&p.scope(), false).await?)
    }

    /// Clears a hold: the next dispatch may offer the held-back version again.
    pub async fn clear_hold(&self, p: &Principal, id: &str) -> Result<HoldRecord> {
        require(p, Permission::Approve, "clear package holds")?;
        Ok(self.store.clear_hold(&self.audit(p), &p.scope(), id.trim()).await?)
    }
}

/// The order and page of a deployment list (`deployment_page`).
pub struct DeploymentPageView<'a> {
    /// changed, device, client, kind, ring, window or status.
    pub sort: &'a str,
    pub descending: bool,
    pub offset: i64,
}

/// Every status a deployment can be in, in the order of its life (lists count them so).
pub const DEPLOYMENT_STATUSES: [&str; 10] = [
    "scheduled",
    "dispatched",
    "running",
    "rebooting",
    "installed",
    "verified",
    "failed",
    "rolled_back",
    "missed",
    "retried",
];

/// Whether a rollback job can undo this package: a previous version to go back to, or a
/// Windows update, which is removed by its kind (see [`undo_version`]).
fn can_undo(p: &DeployedPackage) -> bool {
    !p.from_version.is_empty() || p.manager == "windows_update"
}

/// The version a rollback job names: the previous version, or for a Windows update how it is
/// undone (`uninstall`, `os_uninstall`, `previous_driver` or `none`), from its title.
fn undo_version(p: &DeployedPackage) -> String {
    if p.manager != "windows_update" || !p.from_version.is_empty() {
        return p.from_version.clone();
    }
    let pending = ringfence_policy::catalog::Pending {
        manager: &p.manager,
        name: &p.name,
        origin: &p.product,
        security: false,
    };
    ringfence_policy::catalog::rollback(&pending, ringfence_policy::catalog::classify(&pending))
        .as_str()
        .to_string()
}
