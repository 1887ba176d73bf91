//! Hierarchical configuration policies. A policy sets some fields (ring, windows, approval
//! rules, reboot behaviour, …) and is attached to the partner, an organization, a site, a
//! device group or a device. A device's effective setting is merged field by field:
//!
//! - the nearest level wins (device over group over site over organization over partner);
//! - a policy may lock a field: then no nearer level may override it, and the farthest lock
//!   wins;
//! - two policies of the same level that set a field are ordered by their explicit
//!   priority (higher wins); an equal priority with different values is a tie, refused when
//!   saving (`check_ties`) and reported, never resolved by chance, when merging.
//!
//! Every effective field says where it came from.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where a policy is attached, farthest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Partner,
    Organization,
    Site,
    Group,
    Device,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Partner => "partner",
            Level::Organization => "organization",
            Level::Site => "site",
            Level::Group => "group",
            Level::Device => "device",
        }
    }
}

/// A policy as it applies to one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub level: Level,
    /// The name of what it is attached to ("HQ", "Servers", "acme-dc01").
    pub target: String,
    pub priority: i32,
    pub settings: BTreeMap<String, Value>,
    pub locked: BTreeSet<String>,
}

/// One effective field and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub value: Value,
    pub policy_id: String,
    pub policy: String,
    pub level: Level,
    pub target: String,
    pub locked: bool,
    /// Nearer policies that set the field but could not override a lock.
    pub overridden_by_lock: Vec<String>,
}

impl Field {
    /// "3 — from site 'HQ', policy 'Servers' (locked)".
    pub fn provenance(&self) -> String {
        format!(
            "{} — from {} '{}', policy '{}'{}",
            match &self.value {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            self.level.label(),
            self.target,
            self.policy,
            if self.locked { " (locked)" } else { "" }
        )
    }
}

/// Two policies of one level with the same priority that disagree on a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tie {
    pub field: String,
    pub level: Level,
    pub priority: i32,
    pub policies: [String; 2],
}

impl std::fmt::Display for Tie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policies '{}' and '{}' both set '{}' at the {} level with priority {}: give one a higher priority",
            self.policies[0],
            self.policies[1],
            self.field,
            self.level.label(),
            self.priority
        )
    }
}

/// Ties among policies that can apply together (the same target, or groups a device may
/// share): the check run before a policy is saved.
pub fn check_ties(policies: &[Policy]) -> Vec<Tie> {
    let mut ties = Vec::new();
    for (i, a) in policies.iter().enumerate() {
        for b in &policies[i + 1..] {
            if a.level != b.level || a.priority != b.priority {
                continue;
            }
            for (field, va) in &a.settings {
                if let Some(vb) = b.settings.get(field)
                    && (va != vb || a.locked.contains(field) != b.locked.contains(field))
                {
                    ties.push(Tie {
                        field: field.clone(),
                        level: a.level,
                        priority: a.priority,
                        policies: [a.name.clone(), b.name.clone()],
                    });
                }
            }
        }
    }
    ties
}

/// A device's effective policy.
pub type Effective = BTreeMap<String, Field>;

/// Merges the policies that apply to one device, in any order.
pub fn merge(policies: &[Policy]) -> Result<Effective, Tie> {
    merge_refs(&policies.iter().collect::<Vec<_>>())
}

/// [`merge`] over borrowed policies.
pub fn merge_refs(policies: &[&Policy]) -> Result<Effective, Tie> {
    let fields: BTreeSet<&String> = policies.iter().flat_map(|p| p.settings.keys()).collect();
    let mut out = Effective::new();
    for field in fields {
        let setters: Vec<&Policy> =
            policies.iter().copied().filter(|p| p.settings.contains_key(field)).collect();
        let lockers: Vec<&Policy> = setters.iter().copied().filter(|p| p.locked.contains(field)).collect();
        let (pool, locked) = if lockers.is_empty() { (setters.clone(), false) } else { (lockers, true) };
        // Locked: the farthest level; otherwise the nearest. Then the highest priority.
        let level =
            if locked { pool.iter().map(|p| p.level).min() } else { pool.iter().map(|p| p.level).max() }
                .expect("a field comes from at least one policy");
        let at_level: Vec<&Policy> = pool.into_iter().filter(|p| p.level == level).collect();
        let top = at_level.iter().map(|p| p.priority).max().unwrap_or_default();
        // Equal policies are taken in id order, so the provenance does not depend on the
        // order the policies came in.
        let mut best: Vec<&Policy> = at_level.into_iter().filter(|p| p.priority == top).collect();
        best.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(b) = best.iter().find(|b| b.settings[field] != best[0].settings[field]) {
            let a = best[0];
            return Err(Tie {
                field: field.clone(),
                level,
                priority: top,
                policies: [a.name.clone(), b.name.clone()],
            });
        }
        let winner = best[0];
        let overridden_by_lock = if locked {
            let mut nearer: Vec<&Policy> =
                setters.iter().copied().filter(|p| p.level > level && p.id != winner.id).collect();
            nearer.sort_by(|a, b| (a.level, &a.id).cmp(&(b.level, &b.id)));
            nearer.into_iter().map(|p| p.name.clone()).collect()
        } else {
            Vec::new()
        };
        out.insert(
            field.clone(),
            Field {
                value: winner.settings[field].clone(),
                policy_id: winner.id.clone(),
                policy: winner.name.clone(),
                level: winner.level,
                target: winner.target.clone(),
                locked,
                overridden_by_lock,
            },
        );
    }
    Ok(out)
}

/// How a change would alter one device's effective policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The fields whose effective value differs between two merges (the preview shown before a
/// policy change is saved).
pub fn diff(before: &Effective, after: &Effective) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k).map(|f| &f.value), after.get(k).map(|f| &f.value));
            (b != a).then(|| FieldChange { field: k.clone(), before: b.cloned(), after: a.cloned() })
        })
        .collect()
}

/// Every policy of one partner, indexed by what it is attached to, so a device's policies
/// are found by a handful of lookups.
#[derive(Debug, Default, Clone)]
pub struct PolicySet {
    by_target: std::collections::HashMap<(Level, String), Vec<Policy>>,
}

/// Where a device sits in the tenancy tree (ids).
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub organization: &'a str,
    pub site: &'a str,
    pub groups: &'a [String],
    pub device: &'a str,
}

impl PolicySet {
    /// `policies` pairs each policy with the id of its target (empty for the partner).
    pub fn new(policies: impl IntoIterator<Item = (String, Policy)>) -> Self {
        let mut by_target: std::collections::HashMap<(Level, String), Vec<Policy>> = Default::default();
        for (target, p) in policies {
            let key = (p.level, if p.level == Level::Partner { String::new() } else { target });
            by_target.entry(key).or_default().push(p);
        }
        PolicySet { by_target }
    }

    /// The policies that apply to a device.
    pub fn applicable(&self, at: Placement<'_>) -> Vec<&Policy> {
        let mut out = Vec::new();
        let mut add = |level: Level, id: &str| {
            if let Some(ps) = self.by_target.get(&(level, id.to_string())) {
                out.extend(ps.iter());
            }
        };
        add(Level::Partner, "");
        add(Level::Organization, at.organization);
        add(Level::Site, at.site);
        for g in at.groups {
            add(Level::Group, g);
        }
        add(Level::Device, at.device);
        out
    }

    /// A device's effective policy.
    pub fn effective(&self, at: Placement<'_>) -> Result<Effective, Tie> {
        merge_refs(&self.applicable(at))
    }
}
