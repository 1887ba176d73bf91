//! The schedule preview: when each approved update is expected to land on each device, and
//! why later ones wait. It is the rollout planner's forecast (`planner::forecast`) over the
//! store as it is now: devices with their effective policy (ring, maintenance windows in the
//! device's time zone, concurrency), the approved updates offered to them, and the partner's
//! rings.

use crate::policies::{Tree, effective_of, policy_set};
use crate::{Engine, EngineError, Result, require};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_schedule::Recurrence;
use ringfence_schedule::planner::{self, Device, Org, Outcome, Snapshot, Update, WindowSet};
use ringfence_schedule::rings::{Gate, default_rings};
use serde::Serialize;
use sha2::Digest as _;

/// A halt holds an update for every client, so only people who act for the whole partner
/// may halt or release one.
fn partner_wide(p: &Principal, what: &str) -> Result<()> {
    if p.organization_id.is_some() {
        return Err(EngineError::Forbidden(format!(
            "a halt holds the update for every client of the partner; your access is limited to one organization, so you may not {what} one"
        )));
    }
    Ok(())
}
use std::collections::HashMap;

/// Expected install time of an update, and of a reboot, until deployments measure them.
const INSTALL_MINUTES: i64 = 10;
const REBOOT_MINUTES: i64 = 10;
/// The default health gate of a ring.
pub const DEFAULT_GATE: Gate = Gate { min_successes: 3, max_failure_rate: 0.2 };

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    pub site: String,
    pub ring: u8,
    pub product: String,
    pub version: String,
    /// A forecast: scheduled, waiting, halted or no_window. A deployment already created:
    /// its status (scheduled, dispatched, running or rebooting).
    pub status: String,
    /// The deployment already created for this device and update; none for a forecast.
    pub deployment_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub start: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub end: Option<Timestamp>,
    /// The start in the device's time zone ("Sun 2026-12-13 02:00").
    pub local_start: Option<String>,
    pub time_zone: String,
    /// Why it lands then, or why it waits.
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SchedulePreview {
    #[schema(value_type = String)]
    pub generated_at: Timestamp,
    pub entries: Vec<ScheduleEntry>,
    /// What the forecast assumes.
    pub assumptions: Vec<String>,
}

fn windows_of(value: Option<&serde_json::Value>, tz: &str) -> Vec<Recurrence> {
    // Settings are validated when saved; windows that no longer read (a zone removed from
    // the tz database) are left out rather than failing the whole preview.
    value.and_then(|v| ringfence_policy::settings::maintenance_windows(v, tz).ok()).unwrap_or_default()
}

impl Engine {
    /// Every halt of the partner, newest first.
    pub async fn halts(&self, p: &Principal) -> Result<Vec<ringfence_store::HaltRecord>> {
        require(p, Permission::Read, "read rollout halts")?;
        Ok(self.store.list_halts(&p.scope()).await?)
    }

    /// Halts an update for every client of the partner until a technician releases it.
    pub async fn halt_update(
        &self,
        p: &Principal,
        req: &proto::HaltRequest,
    ) -> Result<ringfence_store::HaltRecord> {
        require(p, Permission::Approve, "halt a rollout")?;
        partner_wide(p, "halt")?;
        let product = crate::remediation::text("product", &req.product, 300)?;
        let version = crate::remediation::text("version", &req.version, 200)?;
        let reason = crate::remediation::text("reason", &req.reason, 2_000)?;
        Ok(self.store.create_halt(&self.audit(p), &p.scope(), &product, &version, &reason).await?)
    }

    /// Releases a halt: the update goes on ring by ring.
    pub async fn release_halt(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::ReleaseRequest,
    ) -> Result<ringfence_store::HaltRecord> {
        require(p, Permission::Approve, "release a rollout halt")?;
        partner_wide(p, "release")?;
        let reason = crate::remediation::text("reason", &req.reason, 2_000)?;
        Ok(self.store.release_halt(&self.audit(p), &p.scope(), id, &reason).await?)
    }

    /// An organization's maintenance windows (those of its devices' effective policies) as an
    /// iCalendar file a client can subscribe to; one event per distinct window and zone.
    pub async fn organization_windows_ics(&self, p: &Principal, organization_id: &str) -> Result<String> {
        require(p, Permission::Read, "read maintenance windows")?;
        let scope = p.scope();
        let org = OrganizationId::parse(organization_id.trim()).map_err(|_| {
            ValueError::new("organization_id", "is not an identifier: use an organization's id")
        })?;
        let organization = self.store.get_organization(&scope, &org).await?;
        let partner = self.store.get_partner(&Scope::partner(scope.partner_id.clone())).await?;
        let tree: Tree = self.tree(&scope).await?;
        let records = self.store.list_policies(&scope).await?;
        let set = policy_set(&records, &tree, partner.name.as_ref())?;
        // (zone, window setting) → (windows, device count), in a stable order.
        let mut found: std::collections::BTreeMap<(String, String), (Vec<Recurrence>, usize)> =
            Default::default();
        for d in tree.devices.iter().filter(|d| d.organization_id == org) {
            let effective = effective_of(&set, d).unwrap_or_default();
            let Some(f) = effective.get("maintenance_windows") else { continue };
            let tz = d.effective_time_zone.clone();
            let entry = found
                .entry((tz.clone(), f.value.to_string()))
                .or_insert_with(|| (windows_of(Some(&f.value), &tz), 0));
            entry.1 += 1;
        }
        let mut owned: Vec<(String, String, String, Recurrence)> = Vec::new();
        for ((tz, raw), (windows, devices)) in &found {
            for (i, w) in windows.iter().enumerate() {
                let digest = sha2::Sha256::digest(format!("{org}|{tz}|{raw}|{i}").as_bytes());
                let uid = format!("{}@ringfence", hex::encode(&digest[..12]));
                let summary = format!(
                    "{} maintenance window ({devices} device{})",
                    organization.name,
                    if *devices == 1 { "" } else { "s" }
                );
                owned.push((uid, summary, tz.clone(), w.clone()));
            }
        }
        let events: Vec<ringfence_schedule::ics::Event<'_>> = owned
            .iter()
            .map(|(uid, summary, tz, w)| ringfence_schedule::ics::Event { uid, summary, window: w, tz })
            .collect();
        Ok(ringfence_schedule::ics::calendar(
            &format!("{} maintenance windows", organization.name),
            &events,
            self.now(),
        ))
    }

    /// The expected schedule of the caller's scope, one organization or one device.
    pub async fn schedule_preview(&self, p: &Principal, q: &proto::ScheduleQuery) -> Result<SchedulePreview> {
        require(p, Permission::Read, "read the schedule")?;
        let scope = p.scope();
        let org_filter = match q.organization_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(o) => Some(OrganizationId::parse(o).map_err(|_| {
                ValueError::new("organization_id", "is not an identifier: use an organization's id")
            })?),
            None => None,
        };
        let device_filter = match q.device_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) => Some(
                DeviceId::parse(d)
                    .map_err(|_| ValueError::new("device_id", "is not an identifier: use a device's id"))?,
            ),
            None => None,
        };
        let now = self.now();
        let orgs_in_scope = self.store.list_organizations(&scope).await?;
        if let Some(o) = &org_filter
            && !orgs_in_scope.iter().any(|x| &x.id == o)
        {
            return Err(EngineError::NotFound("organization"));
        }
        let mut input = self.planning(&scope, org_filter.as_ref(), now).await?;
        // The deployments made so far: real ring progress, what is running, missed windows;
        // what is done or under way is on the Rollouts page, not forecast again.
        let recent = ringfence_store::DeploymentQuery {
            since: Some(now - crate::deploy::HISTORY),
            ..Default::default()
        };
        let deployments = self.store.list_deployments(&scope, &recent).await?;
        let holds = self.store.list_holds(&scope, false).await?;
        let progress = crate::deploy::progress_of(&mut input, &deployments, &holds);
        crate::deploy::apply_releases(&mut input, &self.store.list_halts(&scope).await?, &deployments);
        if let Some(d) = &device_filter
            && !input.records.iter().any(|x| &x.id == d)
        {
            return Err(EngineError::NotFound("device"));
        }
        let site_names: HashMap<SiteId, String> = self
            .store
            .list_sites(&scope, None)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name.to_string()))
            .collect();
        let Planning { rings, orgs, window_sets, devices, updates, refs, records, zones, .. } = &input;
        let snapshot = Snapshot {
            now,
            rings,
            gate: DEFAULT_GATE,
            orgs,
            window_sets,
            devices,
            updates,
            running: &progress.running,
            // Two months: a monthly window (Patch Tuesday) always falls inside.
            horizon_days: 62,
        };
        let plan = planner::forecast(&snapshot);
        let by_index = records;
        let mut entries: Vec<ScheduleEntry> = plan
            .decisions
            .iter()
            .filter(|dec| {
                let d = &by_index[dec.device];
                device_filter.as_ref().is_none_or(|f| &d.id == f)
                    && org_filter.as_ref().is_none_or(|f| &d.organization_id == f)
            })
            .map(|dec| {
                let d = &by_index[dec.device];
                let reason = plan.explain(&snapshot, dec);
                let (status, start, end) = match &dec.outcome {
                    Outcome::Scheduled(n) => {
                        let dep = &plan.deployments[*n];
                        ("scheduled", Some(dep.start), Some(dep.end))
                    }
                    Outcome::Waiting => ("waiting", None, None),
                    Outcome::Halted => ("halted", None, None),
                    Outcome::NoWindow { .. } => ("no_window", None, None),
                };
                let zone = &zones[dec.device];
                let reason =
                    if status == "no_window" && window_sets[devices[dec.device].windows].windows.is_empty() {
                        "no maintenance window is set for this device: add maintenance_windows to a policy"
                            .to_string()
                    } else {
                        reason
                    };
                ScheduleEntry {
                    device_id: d.id.clone(),
                    hostname: d.hostname.clone(),
                    organization_id: d.organization_id.clone(),
                    organization: orgs[devices[dec.device].org].name.clone(),
                    site: site_names.get(&d.site_id).cloned().unwrap_or_default(),
                    ring: devices[dec.device].ring,
                    product: refs[dec.update].product.clone(),
                    version: refs[dec.update].version.clone(),
                    status: status.into(),
                    deployment_id: None,
                    start,
                    end,
                    local_start: start.and_then(|t| {
                        jiff::tz::TimeZone::get(zone)
                            .ok()
                            .map(|z| t.to_zoned(z).strftime("%a %Y-%m-%d %H:%M").to_string())
                    }),
                    time_zone: zone.clone(),
                    reason,
                }
            })
            .collect();
        // The deployments already created and not yet finished: they are tonight's work, ahead
        // of anything forecast.
        let org_names: HashMap<&OrganizationId, &str> =
            orgs_in_scope.iter().map(|o| (&o.id, o.name.as_ref())).collect();
        let device_at: HashMap<&DeviceId, usize> =
            records.iter().enumerate().map(|(i, d)| (&d.id, i)).collect();
        for dep in deployments.iter().filter(|d| d.is_active() && d.window_end > now) {
            if device_filter.as_ref().is_some_and(|f| f != &dep.device_id)
                || org_filter.as_ref().is_some_and(|f| f != &dep.organization_id)
            {
                continue;
            }
            let zone = device_at.get(&dep.device_id).map_or("UTC", |i| zones[*i].as_str());
            let site = device_at
                .get(&dep.device_id)
                .and_then(|i| site_names.get(&records[*i].site_id))
                .cloned()
                .unwrap_or_default();
            let mut seen: Vec<(&str, &str)> = Vec::new();
            for u in &dep.updates {
                if seen.contains(&(u.product.as_str(), u.version.as_str())) {
                    continue;
                }
                seen.push((u.product.as_str(), u.version.as_str()));
                let reason = match dep.status.as_str() {
                    "scheduled" => {
                        "deployment created for this window; sent to the agent when the window opens"
                    }
                    "dispatched" => "sent to the agent; waiting for it to start",
                    "running" => "installing now",
                    _ => "rebooting to finish the install",
                };
                entries.push(ScheduleEntry {
                    device_id: dep.device_id.clone(),
                    hostname: dep.hostname.clone(),
                    organization_id: dep.organization_id.clone(),
                    organization: org_names
                        .get(&dep.organization_id)
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    site: site.clone(),
                    ring: dep.ring,
                    product: u.product.clone(),
                    version: u.version.clone(),
                    status: dep.status.clone(),
                    deployment_id: Some(dep.id.clone()),
                    start: Some(dep.window_start),
                    end: Some(dep.window_end),
                    local_start: jiff::tz::TimeZone::get(zone)
                        .ok()
                        .map(|z| dep.window_start.to_zoned(z).strftime("%a %Y-%m-%d %H:%M").to_string()),
                    time_zone: zone.to_owned(),
                    reason: reason.into(),
                });
            }
        }
        entries.sort_by(|a, b| {
            (a.start.is_none(), a.start, &a.organization, &a.hostname, &a.product).cmp(&(
                b.start.is_none(),
                b.start,
                &b.organization,
                &b.hostname,
                &b.product,
            ))
        });
        Ok(SchedulePreview {
            generated_at: now,
            entries,
            assumptions: vec![
                format!(
                    "installs take {INSTALL_MINUTES} min and a reboot {REBOOT_MINUTES} min until deployments have measured them"
                ),
                format!(
                    "each ring passes its gate ({} verified installs, or all of a smaller ring, under {:.0}% failures) when those planned deployments end; validation periods count from then; a ring with no devices is passed over",
                    DEFAULT_GATE.min_successes,
                    DEFAULT_GATE.max_failure_rate * 100.0,
                ),
                "a device whose agent has not checked in lately skips the window open now; at later windows devices are assumed online".into(),
                "deployments already created and not finished are listed as they are; those done, failed or held back are on the Rollouts and Deployments pages, not forecast again".into(),
            ],
        })
    }
}

/// A device's policy for deployments: whether it may reboot inside its window, and the checks
/// run after every change.
#[derive(Clone, Debug, Default)]
pub(crate) struct DevicePolicy {
    pub reboot_allowed: bool,
    pub health_checks: Vec<proto::jobs::HealthCheck>,
}

/// An approved update as the planner sees it, with the packages each device installs for it.
#[derive(Clone, Debug)]
pub(crate) struct PlannedUpdate {
    pub product: String,
    pub version: String,
    pub reboot_required: bool,
    /// Device index → the device's packages for this update.
    pub packages: HashMap<usize, Vec<ringfence_store::DeviceUpdate>>,
}

/// The planner's input read from the store: one entry per device of the scope (same index in
/// `devices`, `records`, `zones` and `policies`) and per approved update (`updates`, `refs`).
pub(crate) struct Planning {
    pub rings: Vec<ringfence_schedule::rings::Ring>,
    pub orgs: Vec<Org>,
    pub window_sets: Vec<WindowSet>,
    pub devices: Vec<Device>,
    pub updates: Vec<Update>,
    pub refs: Vec<PlannedUpdate>,
    pub records: Vec<ringfence_model::Device>,
    pub zones: Vec<String>,
    pub policies: Vec<DevicePolicy>,
    /// Whether the device has an enrolled agent (only those can be sent jobs).
    pub has_agent: Vec<bool>,
}

impl Engine {
    /// Reads what the planner needs for the scope (one organization when given): devices with
    /// their effective policy, organizations with blackouts, business hours and concurrency,
    /// and the approved updates offered to their devices, with halts and emergencies.
    pub(crate) async fn planning(
        &self,
        scope: &Scope,
        org_filter: Option<&OrganizationId>,
        now: Timestamp,
    ) -> Result<Planning> {
        let partner = self.store.get_partner(&Scope::partner(scope.partner_id.clone())).await?;
        let tree: Tree = self.tree(scope).await?;
        let records = self.store.list_policies(scope).await?;
        let set = policy_set(&records, &tree, partner.name.as_ref())?;
        let orgs_in_scope = self.store.list_organizations(scope).await?;
        let queue = self.queue_of(scope, org_filter).await?;
        let halts = self.store.list_halts(scope).await?;
        // Newest first, as the queue reads them: an organization's latest decision on an
        // update says whether it was an emergency override.
        let approvals = self.store.list_approvals(scope, 100_000).await?;

        // Rings from the partner-level validation hours.
        let mut rings = default_rings();
        let partner_level = set
            .effective(ringfence_policy::Placement { organization: "", site: "", groups: &[], device: "" })
            .unwrap_or_default();
        if let Some(f) = partner_level.get("validation_hours")
            && let Some(map) = f.value.as_object()
        {
            for ring in &mut rings {
                for (class, hours) in map {
                    if let Some(h) = hours.as_i64() {
                        let d = jiff::SignedDuration::from_hours(h);
                        match ring.validation.iter_mut().find(|(c, _)| c == class) {
                            Some(entry) => entry.1 = d,
                            None => ring.validation.push((class.clone(), d)),
                        }
                    }
                }
            }
        }

        // Organizations, window sets and devices.
        let org_index: HashMap<&OrganizationId, usize> =
            orgs_in_scope.iter().enumerate().map(|(i, o)| (&o.id, i)).collect();
        let mut orgs: Vec<Org> = orgs_in_scope
            .iter()
            .map(|o| Org {
                name: o.name.clone(),
                blackouts: Vec::new(),
                business_hours: None,
                max_concurrent: u32::MAX,
            })
            .collect();
        let mut window_sets: Vec<WindowSet> = Vec::new();
        let mut set_of: HashMap<(String, String), usize> = HashMap::new();
        let mut sites: HashMap<String, usize> = HashMap::new();
        let mut devices: Vec<Device> = Vec::new();
        let mut device_index: HashMap<&DeviceId, usize> = HashMap::new();
        let mut zones: Vec<String> = Vec::new();
        let mut records: Vec<ringfence_model::Device> = Vec::new();
        let mut policies: Vec<DevicePolicy> = Vec::new();
        let presence: HashMap<DeviceId, Option<Timestamp>> =
            self.store.agent_presence(scope).await?.into_iter().collect();
        let mut has_agent: Vec<bool> = Vec::new();
        for d in &tree.devices {
            let Some(&oi) = org_index.get(&d.organization_id) else { continue };
            let effective = effective_of(&set, d).unwrap_or_default();
            let ring = effective.get("ring").and_then(|f| f.value.as_u64()).unwrap_or(2).min(3) as u8;
            let max =
                effective.get("max_concurrent").and_then(|f| f.value.as_u64()).unwrap_or(u64::from(u32::MAX));
            orgs[oi].max_concurrent = orgs[oi].max_concurrent.min(u32::try_from(max).unwrap_or(u32::MAX));
            let tz = d.effective_time_zone.clone();
            let raw = effective.get("maintenance_windows").map(|f| f.value.to_string()).unwrap_or_default();
            let ws = *set_of.entry((tz.clone(), raw)).or_insert_with(|| {
                window_sets.push(WindowSet {
                    windows: windows_of(effective.get("maintenance_windows").map(|f| &f.value), &tz),
                });
                window_sets.len() - 1
            });
            let next_site = sites.len();
            let site = *sites.entry(d.site_id.to_string()).or_insert(next_site);
            device_index.insert(&d.id, devices.len());
            zones.push(tz);
            records.push(d.clone());
            has_agent.push(presence.contains_key(&d.id));
            policies.push(DevicePolicy {
                reboot_allowed: effective.get("reboot").is_none_or(|f| f.value.as_str() == Some("allowed")),
                health_checks: effective
                    .get("health_checks")
                    .and_then(|f| {
                        // Checked when the policy was saved; one that no longer reads (saved in
                        // an older format) is named in the log rather than silently dropped.
                        ringfence_policy::settings::health_checks(&f.value)
                            .map_err(|e| tracing::warn!(device = %d.id, policy = %f.policy, error = %e, "health checks not applied"))
                            .ok()
                    })
                    .unwrap_or_default(),
            });
            devices.push(Device {
                name: d.hostname.clone(),
                org: oi,
                site,
                ring,
                windows: ws,
                // An agent that has not checked in within the offline threshold (or never has)
                // is offline: the window open now is skipped. A device without an agent is
                // forecast as online (it cannot be sent jobs anyway).
                online: match presence.get(&d.id) {
                    None => true,
                    Some(seen) => seen.is_some_and(|t| {
                        (now.as_second() - t.as_second()) as f64 <= self.offline_after.as_secs_f64()
                    }),
                },
                domain_controller: d.role.as_str() == "domain_controller",
                updates: Vec::new(),
                not_before: None,
            });
        }
        // Blackouts and business hours, from each organization's policies (partner and
        // organization levels), in the time zone of its first device.
        let horizon = jiff::SignedDuration::from_hours(24 * 63);
        for (oi, o) in orgs.iter_mut().enumerate() {
            if o.max_concurrent == u32::MAX {
                o.max_concurrent = 10_000;
            }
            let org_id = orgs_in_scope[oi].id.to_string();
            let tz = devices
                .iter()
                .position(|d| d.org == oi)
                .map(|i| zones[i].clone())
                .unwrap_or_else(|| "UTC".into());
            let effective = set
                .effective(ringfence_policy::Placement {
                    organization: &org_id,
                    site: "",
                    groups: &[],
                    device: "",
                })
                .unwrap_or_default();
            if let Some(f) = effective.get("blackouts")
                && let Ok(rules) = ringfence_policy::settings::blackouts(&f.value, &tz)
            {
                let from = now.checked_sub(jiff::SignedDuration::from_hours(24 * 3)).unwrap_or(now);
                let to = now.checked_add(horizon).unwrap_or(now);
                for r in rules {
                    match r {
                        ringfence_policy::settings::BlackoutRule::Once { start, end } => {
                            o.blackouts.push(ringfence_schedule::Blackout { start, end })
                        }
                        ringfence_policy::settings::BlackoutRule::Recurring(rec) => {
                            o.blackouts.extend(
                                rec.occurrences_after(from, 400)
                                    .into_iter()
                                    .take_while(|x| x.start < to)
                                    .map(ringfence_schedule::Blackout::from),
                            );
                        }
                    }
                }
            }
            if let Some(f) = effective.get("business_hours") {
                o.business_hours = ringfence_policy::settings::business_hours(&f.value, &tz).ok();
            }
        }

        // Approved updates, and the devices (of approving organizations) offered them.
        let mut updates: Vec<Update> = Vec::new();
        let mut refs: Vec<PlannedUpdate> = Vec::new();
        for item in &queue {
            let Some(version) = &item.version else { continue };
            let approved: Vec<&OrganizationId> = item
                .organization_states
                .iter()
                .filter(|s| s.status == "approved")
                .map(|s| &s.organization_id)
                .collect();
            if approved.is_empty() {
                continue;
            }
            let ui = updates.len();
            let mut any = false;
            let mut packages: HashMap<usize, Vec<ringfence_store::DeviceUpdate>> = HashMap::new();
            for (device, org, package) in &item.offered_devices {
                if !approved.contains(&org) {
                    continue;
                }
                if let Some(&di) = device_index.get(device) {
                    if !devices[di].updates.contains(&ui) {
                        devices[di].updates.push(ui);
                        any = true;
                    }
                    packages.entry(di).or_default().push(package.clone());
                }
            }
            if !any {
                continue;
            }
            updates.push(Update {
                name: format!("{} {}", item.product, version),
                classification: item.classification.clone(),
                install: jiff::SignedDuration::from_mins(INSTALL_MINUTES),
                reboot: if item.reboot_required {
                    jiff::SignedDuration::from_mins(REBOOT_MINUTES)
                } else {
                    jiff::SignedDuration::ZERO
                },
                emergency: approved.iter().any(|org| {
                    approvals
                        .iter()
                        .find(|a| {
                            a.product == item.product
                                && &a.version == version
                                && a.organization_id.as_ref().is_none_or(|o| o == *org)
                        })
                        .is_some_and(|a| a.emergency)
                }),
                progress: Vec::new(),
                halt: halts
                    .iter()
                    .find(|h| h.released_at.is_none() && h.product == item.product && &h.version == version)
                    .map(|h| {
                        format!(
                            "halted by {} on {}: {}",
                            h.halted_by,
                            h.halted_at.strftime("%Y-%m-%d"),
                            h.reason
                        )
                    }),
            });
            refs.push(PlannedUpdate {
                product: item.product.clone(),
                version: version.clone(),
                reboot_required: item.reboot_required,
                packages,
            });
        }
        Ok(Planning { rings, orgs, window_sets, devices, updates, refs, records, zones, policies, has_agent })
    }
}
