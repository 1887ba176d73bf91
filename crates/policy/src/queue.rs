//! The remediation queue: findings grouped by the update that fixes them, sorted by the
//! risk that update removes ("openssl → 3.0.15-1~deb12u1: fixes 4 CVEs, 1 in KEV, on 212
//! devices in 9 organizations").

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One open finding with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFinding {
    pub product: String,
    /// The version that fixes it; `None` when no fix is known.
    pub fixed_version: Option<String>,
    pub cve_id: String,
    pub kev: bool,
    pub device_id: String,
    pub organization_id: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub product: String,
    pub fixed_version: Option<String>,
    pub cves: Vec<String>,
    pub kev_cves: usize,
    pub devices: usize,
    pub organizations: usize,
    /// The sum of the scores of the findings the update resolves.
    pub risk_removed: f64,
    /// The highest single score among them.
    pub top_score: f64,
}

impl QueueEntry {
    pub fn summary(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} → {}: fixes {}, {} in KEV, on {} in {}",
            self.product,
            self.fixed_version.as_deref().unwrap_or("no fix yet"),
            plural(self.cves.len(), "CVE", "CVEs"),
            self.kev_cves,
            plural(self.devices, "device", "devices"),
            plural(self.organizations, "organization", "organizations"),
        )
    }
}

/// Groups by (product, fixed version), highest risk removed first; updates that fix nothing
/// yet ("no fix") sort after every real update of the same risk.
pub fn remediation_queue(findings: &[QueueFinding]) -> Vec<QueueEntry> {
    #[derive(Default)]
    struct Acc<'a> {
        cves: BTreeSet<&'a str>,
        kev: BTreeSet<&'a str>,
        devices: BTreeSet<&'a str>,
        orgs: BTreeSet<&'a str>,
        risk: f64,
        top: f64,
    }
    let mut groups: BTreeMap<(&str, Option<&str>), Acc> = BTreeMap::new();
    for f in findings {
        let a = groups.entry((f.product.as_str(), f.fixed_version.as_deref())).or_default();
        a.cves.insert(&f.cve_id);
        if f.kev {
            a.kev.insert(&f.cve_id);
        }
        a.devices.insert(&f.device_id);
        a.orgs.insert(&f.organization_id);
        let s = if f.score.is_finite() { f.score.max(0.0) } else { 0.0 };
        a.risk += s;
        a.top = a.top.max(s);
    }
    let mut out: Vec<QueueEntry> = groups
        .into_iter()
        .map(|((product, fixed), a)| QueueEntry {
            product: product.to_string(),
            fixed_version: fixed.map(str::to_string),
            cves: a.cves.into_iter().map(str::to_string).collect(),
            kev_cves: a.kev.len(),
            devices: a.devices.len(),
            organizations: a.orgs.len(),
            risk_removed: (a.risk * 10.0).round() / 10.0,
            top_score: a.top,
        })
        .collect();
    out.sort_by(rank);
    out
}

/// The queue's order: highest risk removed first; "no fix" after a real update of the same
/// risk; then by product name.
pub fn rank(a: &QueueEntry, b: &QueueEntry) -> std::cmp::Ordering {
    b.risk_removed
        .total_cmp(&a.risk_removed)
        .then(a.fixed_version.is_none().cmp(&b.fixed_version.is_none()))
        .then_with(|| a.product.cmp(&b.product))
}
