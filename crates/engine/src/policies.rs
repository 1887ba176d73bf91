//! Configuration policies: saved only when valid and free of ties, shown per device with the
//! provenance of every field, and previewed (which devices a change alters, and how) before
//! they are saved.

use crate::tenancy::path_id;
use crate::{Engine, EngineError, Result, require};
use ringfence_model::*;
use ringfence_policy::{Effective, FieldChange, Level, Placement, Policy, PolicySet};
use ringfence_proto as proto;
use ringfence_store::{DeviceQuery, PolicyRecord, PolicyWrite};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One field of a device's effective policy.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EffectiveField {
    pub field: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// "3 — from site 'HQ', policy 'Servers'".
    pub provenance: String,
    pub policy_id: String,
    pub policy: String,
    pub level: String,
    pub target: String,
    pub locked: bool,
    /// Nearer policies that set the field but could not override the lock.
    pub overridden_by_lock: Vec<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EffectivePolicy {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    pub fields: Vec<EffectiveField>,
    /// Set when two policies tie; the fields are then empty.
    pub error: Option<String>,
}

/// How saving a policy would change one device.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DevicePreview {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyPreview {
    /// Devices the policy applies to (before or after the change).
    pub devices_considered: usize,
    /// Devices whose effective policy would change.
    pub devices: Vec<DevicePreview>,
    /// Ties the change would create; a change with ties cannot be saved.
    pub ties: Vec<String>,
}

fn fields(e: &Effective) -> Vec<EffectiveField> {
    e.iter()
        .map(|(k, f)| EffectiveField {
            field: k.clone(),
            value: f.value.clone(),
            provenance: f.provenance(),
            policy_id: f.policy_id.clone(),
            policy: f.policy.clone(),
            level: f.level.label().into(),
            target: f.target.clone(),
            locked: f.locked,
            overridden_by_lock: f.overridden_by_lock.clone(),
        })
        .collect()
}

pub(crate) fn parse_level(s: &str) -> Result<Level> {
    Ok(match s {
        "partner" => Level::Partner,
        "organization" => Level::Organization,
        "site" => Level::Site,
        "group" => Level::Group,
        "device" => Level::Device,
        other => {
            return Err(ValueError::new(
                "level",
                format!("'{other}' is not a level: use partner, organization, site, group or device"),
            )
            .into());
        }
    })
}

/// The tenancy tree's names and every device's place in it, for one scope.
pub(crate) struct Tree {
    pub names: HashMap<(Level, String), String>,
    pub devices: Vec<Device>,
}

impl Tree {
    pub(crate) fn placement(d: &Device) -> (String, String, Vec<String>, String) {
        (
            d.organization_id.to_string(),
            d.site_id.to_string(),
            d.group_ids.iter().map(|g| g.to_string()).collect(),
            d.id.to_string(),
        )
    }
}

pub(crate) fn to_policy(
    r: &PolicyRecord,
    names: &HashMap<(Level, String), String>,
    partner: &str,
) -> Result<Policy> {
    let level = parse_level(&r.level)?;
    let target = if level == Level::Partner {
        partner.to_string()
    } else {
        names.get(&(level, r.target_id.clone())).cloned().unwrap_or_else(|| r.target_id.clone())
    };
    Ok(Policy {
        id: r.id.clone(),
        name: r.name.clone(),
        level,
        target,
        priority: r.priority.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        settings: r.settings.clone(),
        locked: r.locked.iter().cloned().collect(),
    })
}

pub(crate) fn policy_set(records: &[PolicyRecord], tree: &Tree, partner: &str) -> Result<PolicySet> {
    let mut items = Vec::with_capacity(records.len());
    for r in records {
        items.push((r.target_id.clone(), to_policy(r, &tree.names, partner)?));
    }
    Ok(PolicySet::new(items))
}

pub(crate) fn effective_of(
    set: &PolicySet,
    d: &Device,
) -> std::result::Result<Effective, ringfence_policy::Tie> {
    let (org, site, groups, id) = Tree::placement(d);
    set.effective(Placement { organization: &org, site: &site, groups: &groups, device: &id })
}

impl Engine {
    pub(crate) async fn tree(&self, scope: &Scope) -> Result<Tree> {
        let mut names = HashMap::new();
        for o in self.store.list_organizations(scope).await? {
            names.insert((Level::Organization, o.id.to_string()), o.name.clone());
        }
        for s in self.store.list_sites(scope, None).await? {
            names.insert((Level::Site, s.id.to_string()), s.name.clone());
        }
        for g in self.store.list_groups(scope, None).await? {
            names.insert((Level::Group, g.id.to_string()), g.name.clone());
        }
        let q = DeviceQuery { limit: i64::from(u32::MAX), ..Default::default() };
        let devices = self.store.list_devices(scope, &q).await?.items;
        for d in &devices {
            names.insert((Level::Device, d.id.to_string()), d.hostname.clone());
        }
        Ok(Tree { names, devices })
    }

    pub async fn policies(&self, p: &Principal) -> Result<Vec<PolicyRecord>> {
        require(p, Permission::Read, "read policies")?;
        Ok(self.store.list_policies(&p.scope()).await?)
    }

    pub async fn policy(&self, p: &Principal, id: &str) -> Result<PolicyRecord> {
        require(p, Permission::Read, "read policies")?;
        Ok(self.store.get_policy(&p.scope(), id).await?)
    }

    /// Checks a policy from a request and resolves its target (which must be in scope).
    async fn policy_write(&self, p: &Principal, req: &proto::PolicyInput) -> Result<PolicyWrite> {
        let name = Name::parse("name", &req.name)?;
        let level = parse_level(req.level.trim())?;
        let scope = p.scope();
        let target = req.target_id.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let (target_id, organization_id) = match (level, target) {
            (Level::Partner, None) => {
                if p.organization_id.is_some() {
                    return Err(EngineError::Forbidden(
                        "your access is limited to one organization, so you may not set partner-wide policies".into(),
                    ));
                }
                (String::new(), None)
            }
            (Level::Partner, Some(_)) => {
                return Err(ValueError::new("target_id", "a partner-level policy has no target").into());
            }
            (_, None) => {
                return Err(ValueError::new(
                    "target_id",
                    format!("a {} policy needs the {} id", level.label(), level.label()),
                )
                .into());
            }
            (Level::Organization, Some(t)) => {
                let o = self
                    .store
                    .get_organization(&scope, &path_id(OrganizationId::parse, t, "organization")?)
                    .await?;
                (o.id.to_string(), Some(o.id))
            }
            (Level::Site, Some(t)) => {
                let s = self.store.get_site(&scope, &path_id(SiteId::parse, t, "site")?).await?;
                (s.id.to_string(), Some(s.organization_id))
            }
            (Level::Group, Some(t)) => {
                let g = self.store.get_group(&scope, &path_id(DeviceGroupId::parse, t, "group")?).await?;
                (g.id.to_string(), Some(g.organization_id))
            }
            (Level::Device, Some(t)) => {
                let d = self.store.get_device(&scope, &path_id(DeviceId::parse, t, "device")?).await?;
                (d.id.to_string(), Some(d.organization_id))
            }
        };
        if req.priority.abs() > 1_000_000 {
            return Err(ValueError::new("priority", "must be between -1000000 and 1000000").into());
        }
        let settings: BTreeMap<String, serde_json::Value> =
            req.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if settings.is_empty() {
            return Err(ValueError::new("settings", "a policy must set at least one field").into());
        }
        ringfence_policy::settings::validate(&settings).map_err(|m| ValueError::new("settings", m))?;
        let mut locked = req.locked.clone();
        locked.sort();
        locked.dedup();
        if let Some(l) = locked.iter().find(|l| !settings.contains_key(*l)) {
            return Err(
                ValueError::new("locked", format!("'{l}' is locked but the policy does not set it")).into()
            );
        }
        Ok(PolicyWrite {
            name: name.to_string(),
            level: level.label().into(),
            target_id,
            organization_id,
            priority: req.priority,
            settings,
            locked,
        })
    }

    /// The ties saving `write` (replacing `replacing`) would create, as messages.
    async fn ties_with(
        &self,
        p: &Principal,
        replacing: Option<&str>,
        write: Option<&PolicyWrite>,
    ) -> Result<Vec<String>> {
        let Some(w) = write else { return Ok(Vec::new()) };
        let partner = self.store.get_partner(&Scope::partner(p.partner_id.clone())).await?;
        // Ties are checked against every policy of the partner, not only those the caller sees.
        let all = self.store.list_policies(&Scope::partner(p.partner_id.clone())).await?;
        let names = HashMap::new();
        let mut same: Vec<Policy> = Vec::new();
        for r in all.iter().filter(|r| Some(r.id.as_str()) != replacing) {
            // Group policies can meet on a device shared by two groups of one organization.
            let meets = r.level == w.level
                && (r.target_id == w.target_id
                    || (w.level == "group" && r.organization_id == w.organization_id));
            if meets {
                same.push(to_policy(r, &names, partner.name.as_ref())?);
            }
        }
        let candidate = PolicyRecord {
            id: replacing.unwrap_or("new").into(),
            level: w.level.clone(),
            target_id: w.target_id.clone(),
            organization_id: w.organization_id.clone(),
            name: w.name.clone(),
            priority: w.priority,
            settings: w.settings.clone(),
            locked: w.locked.clone(),
            created_at: self.now(),
            updated_at: self.now(),
        };
        let me = to_policy(&candidate, &names, partner.name.as_ref())?;
        let mut with = vec![me];
        with.extend(same);
        Ok(ringfence_policy::check_ties(&with)
            .into_iter()
            .filter(|t| t.policies.contains(&w.name))
            .map(|t| t.to_string())
            .collect())
    }

    pub async fn create_policy(&self, p: &Principal, req: &proto::PolicyInput) -> Result<PolicyRecord> {
        require(p, Permission::ManagePolicy, "change policies")?;
        let w = self.policy_write(p, req).await?;
        if let Some(t) = self.ties_with(p, None, Some(&w)).await?.into_iter().next() {
            return Err(EngineError::Conflict(t));
        }
        Ok(self.store.create_policy(&self.audit(p), &p.scope(), &w).await?)
    }

    pub async fn update_policy(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::PolicyInput,
    ) -> Result<PolicyRecord> {
        require(p, Permission::ManagePolicy, "change policies")?;
        let w = self.policy_write(p, req).await?;
        if let Some(t) = self.ties_with(p, Some(id), Some(&w)).await?.into_iter().next() {
            return Err(EngineError::Conflict(t));
        }
        Ok(self.store.update_policy(&self.audit(p), &p.scope(), id, &w).await?)
    }

    pub async fn delete_policy(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::ManagePolicy, "change policies")?;
        Ok(self.store.delete_policy(&self.audit(p), &p.scope(), id).await?)
    }

    /// A device's effective policy, every field with where it came from.
    pub async fn effective_policy(&self, p: &Principal, device: &str) -> Result<EffectivePolicy> {
        require(p, Permission::Read, "read policies")?;
        let scope = p.scope();
        let d = self.store.get_device(&scope, &path_id(DeviceId::parse, device, "device")?).await?;
        let partner = self.store.get_partner(&Scope::partner(p.partner_id.clone())).await?;
        // Partner-level and organization policies apply whoever looks; read them partner-wide.
        let records = self.store.list_policies(&Scope::partner(p.partner_id.clone())).await?;
        let tree = self.tree(&Scope::partner(p.partner_id.clone())).await?;
        let set = policy_set(&records, &tree, partner.name.as_ref())?;
        Ok(match effective_of(&set, &d) {
            Ok(e) => EffectivePolicy {
                device_id: d.id.clone(),
                hostname: d.hostname.clone(),
                fields: fields(&e),
                error: None,
            },
            Err(t) => EffectivePolicy {
                device_id: d.id.clone(),
                hostname: d.hostname.clone(),
                fields: Vec::new(),
                error: Some(t.to_string()),
            },
        })
    }

    /// Which devices a policy change would alter, and how; nothing is saved.
    pub async fn preview_policy(
        &self,
        p: &Principal,
        req: &proto::PolicyPreviewRequest,
    ) -> Result<PolicyPreview> {
        require(p, Permission::ManagePolicy, "change policies")?;
        if req.id.is_none() && req.policy.is_none() {
            return Err(
                ValueError::new("policy", "give the policy to preview, or the id of one to delete").into()
            );
        }
        let write = match &req.policy {
            Some(input) => Some(self.policy_write(p, input).await?),
            None => None,
        };
        if let Some(id) = &req.id {
            self.store.get_policy(&p.scope(), id).await?;
        }
        let ties = self.ties_with(p, req.id.as_deref(), write.as_ref()).await?;
        let partner_scope = Scope::partner(p.partner_id.clone());
        let partner = self.store.get_partner(&partner_scope).await?;
        let before_records = self.store.list_policies(&partner_scope).await?;
        let mut after_records: Vec<PolicyRecord> =
            before_records.iter().filter(|r| Some(&r.id) != req.id.as_ref()).cloned().collect();
        if let Some(w) = &write {
            after_records.push(PolicyRecord {
                id: req.id.clone().unwrap_or_else(|| "preview".into()),
                level: w.level.clone(),
                target_id: w.target_id.clone(),
                organization_id: w.organization_id.clone(),
                name: w.name.clone(),
                priority: w.priority,
                settings: w.settings.clone(),
                locked: w.locked.clone(),
                created_at: self.now(),
                updated_at: self.now(),
            });
        }
        let tree = self.tree(&partner_scope).await?;
        let before = policy_set(&before_records, &tree, partner.name.as_ref())?;
        let after = policy_set(&after_records, &tree, partner.name.as_ref())?;
        let scope = p.scope();
        let mut considered = 0;
        let mut devices = Vec::new();
        for d in tree.devices.iter().filter(|d| scope.sees_organization(&d.organization_id)) {
            let (org, site, groups, id) = Tree::placement(d);
            let at = Placement { organization: &org, site: &site, groups: &groups, device: &id };
            let (b, a) = (before.applicable(at), after.applicable(at));
            if b.len() == a.len() && b.iter().zip(&a).all(|(x, y)| x == y) {
                continue;
            }
            considered += 1;
            let (Ok(b), Ok(a)) = (ringfence_policy::merge_refs(&b), ringfence_policy::merge_refs(&a)) else {
                continue;
            };
            let changes = ringfence_policy::diff(&b, &a);
            if !changes.is_empty() {
                devices.push(DevicePreview {
                    device_id: d.id.clone(),
                    hostname: d.hostname.clone(),
                    changes,
                });
            }
        }
        Ok(PolicyPreview { devices_considered: considered, devices, ties })
    }
}
