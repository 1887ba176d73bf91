//! The vulnerability timeline and the CIS Controls v8 Control 7 section of an organization's
//! audit, derived from evidence events only, so that anyone holding the events can recompute
//! them and compare.
//!
//! A [`Timeline`] reads events in sequence order and keeps state proportional to the rows it
//! produces (findings, approvals, deployments), not to the events: most events only bump a
//! counter, and payloads are parsed only for the actions that feed the rows. A payload that
//! does not have the expected shape is counted in [`TimelineStats::unreadable`] and otherwise
//! ignored. This module knows nothing of bundles, files or signatures.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::chain::{Event, EventContent};

const DAY_MICROS: i64 = 86_400_000_000;

/// Package managers that update the operating system (CIS Safeguard 7.3); every other
/// manager updates applications (7.4).
pub const OS_MANAGERS: &[&str] = &["apt", "dnf", "yum", "zypper", "windows_update", "softwareupdate"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    None,
}

impl Severity {
    /// Reads a severity as the store keeps it (any case); anything else is `None`.
    pub fn parse(s: &str) -> Severity {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            "low" => Severity::Low,
            _ => Severity::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::None => "none",
        }
    }
}

/// How long an organization gives itself to remediate a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlaPolicy {
    /// Whether a finding on CISA's Known Exploited Vulnerabilities list is due by the end of
    /// its KEV due date (UTC) when that comes before the severity deadline.
    pub kev_due_date: bool,
    /// Days a KEV finding gets at least, from its first detection: CISA's due date is often
    /// years before a device first shows the flaw, and a deadline before detection cannot be
    /// kept by anyone.
    pub kev_days: u32,
    pub critical_days: Option<u32>,
    pub high_days: Option<u32>,
    pub medium_days: Option<u32>,
    pub low_days: Option<u32>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy {
            kev_due_date: true,
            kev_days: 14,
            critical_days: Some(15),
            high_days: Some(30),
            medium_days: Some(90),
            low_days: None,
        }
    }
}

impl SlaPolicy {
    pub fn days(&self, severity: Severity) -> Option<u32> {
        match severity {
            Severity::Critical => self.critical_days,
            Severity::High => self.high_days,
            Severity::Medium => self.medium_days,
            Severity::Low => self.low_days,
            Severity::None => None,
        }
    }

    /// When a finding detected at `detected_micros` must be remediated, or `None` when no
    /// deadline applies: the severity deadline, or for a KEV finding the KEV deadline when
    /// that is earlier. The KEV deadline is the later of CISA's due date and detection plus
    /// `kev_days`, so no deadline falls before the finding was detected. An unparsable KEV
    /// due date is ignored.
    pub fn due(&self, detected_micros: i64, severity: Severity, kev_due: Option<&str>) -> Option<i64> {
        let by_days = self
            .days(severity)
            .map(|d| detected_micros.saturating_add(i64::from(d).saturating_mul(DAY_MICROS)));
        let kev_floor = detected_micros.saturating_add(i64::from(self.kev_days).saturating_mul(DAY_MICROS));
        let by_kev = if self.kev_due_date {
            kev_due.and_then(end_of_day_micros).map(|d| d.max(kev_floor))
        } else {
            None
        };
        match (by_days, by_kev) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The policy in words, e.g. "critical 15 days, high 30 days, medium 90 days, low none;
    /// KEV due dates apply".
    pub fn describe(&self) -> String {
        let days = |d: Option<u32>| d.map_or_else(|| "none".to_owned(), |d| format!("{d} days"));
        format!(
            "critical {}, high {}, medium {}, low {}; KEV due dates {} (at least {} days from detection)",
            days(self.critical_days),
            days(self.high_days),
            days(self.medium_days),
            days(self.low_days),
            if self.kev_due_date { "apply" } else { "do not apply" },
            self.kev_days
        )
    }
}

/// The last microsecond (UTC) of a `YYYY-MM-DD` date.
fn end_of_day_micros(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let end = d.at(23, 59, 59, 999_999_000);
    Some(end.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_microsecond())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    /// Resolved by its due time.
    Met,
    /// Resolved after its due time.
    Breached,
    /// Unresolved, not yet due.
    Open,
    /// Unresolved and past its due time.
    Overdue,
    /// No deadline applies.
    NoSla,
}

impl SlaStatus {
    pub fn of(due: Option<i64>, resolved_at: Option<i64>, as_of_micros: i64) -> SlaStatus {
        match (due, resolved_at) {
            (None, _) => SlaStatus::NoSla,
            (Some(due), Some(r)) if r <= due => SlaStatus::Met,
            (Some(_), Some(_)) => SlaStatus::Breached,
            (Some(due), None) if as_of_micros > due => SlaStatus::Overdue,
            (Some(_), None) => SlaStatus::Open,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SlaStatus::Met => "met",
            SlaStatus::Breached => "breached",
            SlaStatus::Open => "open",
            SlaStatus::Overdue => "overdue",
            SlaStatus::NoSla => "no_sla",
        }
    }
}

/// One vulnerability on one device, from detection to resolution. Times are microseconds
/// since the Unix epoch (UTC); `*_seq` name the events that show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnRow {
    pub cve: String,
    pub device_id: String,
    pub hostname: String,
    pub product: String,
    pub severity: Severity,
    pub kev: bool,
    pub kev_due: Option<String>,
    pub detected_at: i64,
    /// `None` when the detection happened before the events at hand and is known only from
    /// the resolution.
    pub detected_seq: Option<i64>,
    pub approved_at: Option<i64>,
    /// `rule:<name>` for an approval by rule, otherwise who decided.
    pub approved_by: Option<String>,
    pub approval_seq: Option<i64>,
    pub deployment_id: Option<String>,
    pub deployed_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
    pub resolved_seq: Option<i64>,
    pub sla_due: Option<i64>,
    pub sla_status: SlaStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafeguardStatus {
    Evidenced,
    Partial,
    NotEvidenced,
}

impl SafeguardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SafeguardStatus::Evidenced => "evidenced",
            SafeguardStatus::Partial => "partial",
            SafeguardStatus::NotEvidenced => "not_evidenced",
        }
    }
}

/// How many events of one kind support a safeguard, with the first few as examples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceCount {
    pub label: String,
    /// The actions counted; `prefix.*` stands for every action with that prefix.
    pub actions: Vec<String>,
    pub count: u64,
    /// Up to five sequence numbers of counted events.
    pub example_seqs: Vec<i64>,
}

/// One CIS Controls v8 safeguard of Control 7 and the evidence the events hold for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safeguard {
    pub id: String,
    pub title: String,
    pub status: SafeguardStatus,
    pub summary: String,
    pub evidence: Vec<EvidenceCount>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineStats {
    /// Events read (those disclosed to the organization).
    pub events: u64,
    /// Events whose payload did not have the expected shape and were skipped.
    pub unreadable: u64,
    pub findings_changes: u64,
    pub approvals: u64,
    pub deployment_events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineOutput {
    /// Sorted by detection time, then CVE, then device.
    pub rows: Vec<VulnRow>,
    pub cis: Vec<Safeguard>,
    pub stats: TimelineStats,
}

impl TimelineOutput {
    /// `vulnerabilities.csv`: one line per row (RFC 4180, CRLF line ends).
    pub fn vulnerabilities_csv(&self) -> String {
        crate::csv::vulnerabilities(&self.rows)
    }

    /// `cis-control-7.csv`: one line per evidence kind of each safeguard.
    pub fn cis_csv(&self) -> String {
        crate::csv::cis(&self.cis)
    }
}

// Payload shapes, as the server writes them. Unknown fields are ignored.

#[derive(Deserialize)]
struct FindingsChange {
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    opened: Vec<Opened>,
    #[serde(default)]
    resolved: Vec<Resolved>,
}

#[derive(Deserialize)]
struct Opened {
    cve: String,
    product: String,
    severity: Severity,
    #[serde(default)]
    kev_due: Option<String>,
}

#[derive(Deserialize)]
struct Resolved {
    cve: String,
    product: String,
    severity: Severity,
    #[serde(default)]
    kev_due: Option<String>,
    detected_at: i64,
    resolution: String,
    #[serde(default)]
    deployment: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ApprovalPayload {
    after: ApprovalAfter,
}

#[derive(Deserialize)]
struct ApprovalAfter {
    product: String,
    version: String,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    decided_by: Option<String>,
    #[serde(default)]
    rule: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentPayload {
    after: DeploymentAfter,
}

#[derive(Deserialize)]
struct DeploymentAfter {
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    updates: Vec<Update>,
}

#[derive(Deserialize)]
struct Update {
    product: String,
    version: String,
    #[serde(default)]
    manager: String,
}

/// An id the server may write as a string or a number.
fn id_text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

struct ApprovalRecord {
    seq: i64,
    at_micros: i64,
    version: String,
    approved_by: String,
}

#[derive(Default)]
struct DeploymentRecord {
    device_id: Option<String>,
    installed: Option<(i64, i64)>,
    verified_at: Option<i64>,
    /// (product, version) of each update.
    updates: Vec<(String, String)>,
}

#[derive(Default)]
struct Counter {
    count: u64,
    example_seqs: Vec<i64>,
}

impl Counter {
    fn add(&mut self, seq: i64) {
        self.count += 1;
        if self.example_seqs.len() < 5 {
            self.example_seqs.push(seq);
        }
    }

    fn evidence(&self, label: &str, actions: &[&str]) -> EvidenceCount {
        EvidenceCount {
            label: label.to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            count: self.count,
            example_seqs: self.example_seqs.clone(),
        }
    }
}

#[derive(Default)]
struct CisCounters {
    policy: Counter,
    approvals: Counter,
    risk_decisions: Counter,
    rollout_decisions: Counter,
    os_patches: Counter,
    app_patches: Counter,
    inventory: Counter,
    findings: Counter,
    appliance: Counter,
    devices_scanned: HashSet<String>,
}

/// Builds the rows and the CIS section from an organization's events.
pub struct Timeline {
    org: String,
    sla: SlaPolicy,
    as_of_micros: i64,
    /// By (CVE, device, product): one CVE can be open in two products of one device.
    rows: HashMap<(String, String, String), VulnRow>,
    /// Approvals by product, in sequence order.
    approvals: HashMap<String, Vec<ApprovalRecord>>,
    deployments: HashMap<String, DeploymentRecord>,
    /// Per device, the deployments installed on it: (seq of the installed event, id).
    installed_on: HashMap<String, Vec<(i64, String)>>,
    cis: CisCounters,
    stats: TimelineStats,
}

impl VulnRow {
    /// A row as its detection shows it, keyed by (CVE, device, product); approval, deployment
    /// and resolution are filled in as their events arrive.
    fn detected(
        key: &(String, String, String),
        hostname: String,
        severity: Severity,
        kev_due: Option<String>,
        detected_at: i64,
        detected_seq: Option<i64>,
    ) -> VulnRow {
        VulnRow {
            cve: key.0.clone(),
            device_id: key.1.clone(),
            hostname,
            product: key.2.clone(),
            severity,
            kev: kev_due.is_some(),
            kev_due,
            detected_at,
            detected_seq,
            approved_at: None,
            approved_by: None,
            approval_seq: None,
            deployment_id: None,
            deployed_at: None,
            verified_at: None,
            resolved_at: None,
            resolution: None,
            resolved_seq: None,
            sla_due: None,
            sla_status: SlaStatus::NoSla,
        }
    }
}

impl Timeline {
    /// `as_of_micros` decides whether an unresolved finding is overdue.
    pub fn new(org_id: impl Into<String>, sla: SlaPolicy, as_of_micros: i64) -> Timeline {
        Timeline {
            org: org_id.into(),
            sla,
            as_of_micros,
            rows: HashMap::new(),
            approvals: HashMap::new(),
            deployments: HashMap::new(),
            installed_on: HashMap::new(),
            cis: CisCounters::default(),
            stats: TimelineStats::default(),
        }
    }

    /// Reads the next event, in sequence order. Events the organization's bundle would not
    /// disclose (see [`crate::bundle::discloses`]) are ignored.
    pub fn push(&mut self, e: &Event) {
        self.push_content(&e.content());
    }

    pub(crate) fn push_content(&mut self, c: &EventContent<'_>) {
        if !crate::bundle::discloses(&self.org, c.organization_id, c.action) {
            return;
        }
        self.stats.events += 1;
        let own = c.organization_id == Some(self.org.as_str());
        let action = c.action;
        match action {
            "findings.change" if own => self.findings_change(c),
            "approval.approved" => self.approval(c),
            "deployment.installed" | "deployment.verified" if own => self.deployment(c),
            "inventory.update" if own => {
                self.cis.inventory.add(c.seq);
                self.cis.devices_scanned.insert(c.object_id.to_owned());
            }
            _ if action.starts_with("approval.") => self.cis.approvals.add(c.seq),
            _ if action.starts_with("policy.") => self.cis.policy.add(c.seq),
            _ if action.starts_with("exception.") || action.starts_with("finding.") => {
                self.cis.risk_decisions.add(c.seq)
            }
            _ if action.starts_with("rollout.halt") || action.starts_with("rollout.release") => {
                self.cis.rollout_decisions.add(c.seq)
            }
            _ if action.starts_with("appliance.") => self.cis.appliance.add(c.seq),
            _ => {}
        }
    }

    fn findings_change(&mut self, c: &EventContent<'_>) {
        let Ok(p) = serde_json::from_str::<FindingsChange>(c.payload) else {
            self.stats.unreadable += 1;
            return;
        };
        self.stats.findings_changes += 1;
        self.cis.findings.add(c.seq);
        self.cis.devices_scanned.insert(c.object_id.to_owned());
        for o in p.opened {
            let key = (o.cve, c.object_id.to_owned(), o.product);
            // A finding already open stays with its first detection; one opened again after
            // its resolution starts over, so the row shows the latest episode.
            if self.rows.get(&key).is_some_and(|r| r.resolved_at.is_none()) {
                continue;
            }
            let row =
                VulnRow::detected(&key, p.hostname.clone(), o.severity, o.kev_due, c.at_micros, Some(c.seq));
            self.rows.insert(key, row);
        }
        for r in p.resolved {
            // An update the next inventory shows is credited to the deployment that installed it.
            let linked = if r.resolution == "updated" {
                self.installed_before(c.object_id, &r.product, c.seq)
            } else {
                None
            };
            let key = (r.cve, c.object_id.to_owned(), r.product);
            // Detected before the segment: the resolution says when.
            let row = self.rows.entry(key).or_insert_with_key(|key| {
                VulnRow::detected(key, p.hostname.clone(), r.severity, r.kev_due, r.detected_at, None)
            });
            if row.resolved_at.is_some() {
                continue;
            }
            row.resolved_at = Some(c.at_micros);
            row.resolution = Some(r.resolution);
            row.resolved_seq = Some(c.seq);
            row.deployment_id = id_text(r.deployment).or(linked);
        }
    }

    fn approval(&mut self, c: &EventContent<'_>) {
        self.stats.approvals += 1;
        self.cis.approvals.add(c.seq);
        let Ok(p) = serde_json::from_str::<ApprovalPayload>(c.payload) else {
            self.stats.unreadable += 1;
            return;
        };
        let a = p.after;
        let for_org = a.organization_id.as_deref().is_none_or(|o| o == self.org);
        let approved = a.decision.as_deref().is_none_or(|d| d == "approved");
        if !for_org || !approved {
            return;
        }
        let approved_by = match (a.rule, a.decided_by) {
            (Some(rule), _) => format!("rule:{rule}"),
            (None, Some(who)) => who,
            (None, None) => "unknown".to_owned(),
        };
        self.approvals.entry(a.product).or_default().push(ApprovalRecord {
            seq: c.seq,
            at_micros: c.at_micros,
            version: a.version,
            approved_by,
        });
    }

    fn deployment(&mut self, c: &EventContent<'_>) {
        self.stats.deployment_events += 1;
        let Ok(p) = serde_json::from_str::<DeploymentPayload>(c.payload) else {
            self.stats.unreadable += 1;
            return;
        };
        let updates = p.after.updates;
        if updates.iter().any(|u| OS_MANAGERS.contains(&u.manager.as_str())) {
            self.cis.os_patches.add(c.seq);
        }
        if updates.iter().any(|u| !OS_MANAGERS.contains(&u.manager.as_str())) {
            self.cis.app_patches.add(c.seq);
        }
        let d = self.deployments.entry(c.object_id.to_owned()).or_default();
        if c.action == "deployment.installed" {
            d.installed = Some((c.seq, c.at_micros));
        } else {
            d.verified_at = Some(c.at_micros);
        }
        if d.updates.is_empty() {
            d.updates = updates.into_iter().map(|u| (u.product, u.version)).collect();
        }
        if d.device_id.is_none() {
            d.device_id = p.after.device_id;
        }
        if c.action == "deployment.installed" {
            self.installed_on
                .entry(d.device_id.clone().unwrap_or_default())
                .or_default()
                .push((c.seq, c.object_id.to_owned()));
        }
    }

    /// The deployment that most recently installed `product` on `device` before `before_seq`:
    /// what an update seen by the next inventory is credited to.
    fn installed_before(&self, device: &str, product: &str, before_seq: i64) -> Option<String> {
        self.installed_on.get(device)?.iter().rev().find_map(|(seq, id)| {
            let d = self.deployments.get(id)?;
            (*seq < before_seq && d.updates.iter().any(|(p, _)| p == product)).then(|| id.clone())
        })
    }

    /// The latest approval of `product` (at `version`, when given) before event `before_seq`.
    fn latest_approval(
        &self,
        product: &str,
        version: Option<&str>,
        before_seq: Option<i64>,
    ) -> Option<&ApprovalRecord> {
        let list = self.approvals.get(product)?;
        // Approvals are kept in sequence order: start at the last one before `before_seq`
        // instead of walking back from the newest (a product approved thousands of times
        // would make that quadratic).
        let end = before_seq.map_or(list.len(), |b| list.partition_point(|a| a.seq < b));
        list[..end].iter().rev().find(|a| version.is_none_or(|v| a.version == v))
    }

    pub fn finish(mut self) -> TimelineOutput {
        let mut rows: Vec<VulnRow> = std::mem::take(&mut self.rows).into_values().collect();
        for row in &mut rows {
            let deployment = row.deployment_id.as_deref().and_then(|id| self.deployments.get(id));
            row.verified_at = deployment.and_then(|d| d.verified_at);
            let approval = match deployment.and_then(|d| d.installed.map(|i| (d, i))) {
                Some((d, (installed_seq, installed_at))) => {
                    row.deployed_at = Some(installed_at);
                    d.updates.iter().find(|(product, _)| *product == row.product).and_then(|(_, version)| {
                        self.latest_approval(&row.product, Some(version), Some(installed_seq))
                    })
                }
                None => self.latest_approval(&row.product, None, row.resolved_seq),
            };
            if let Some(a) = approval {
                row.approved_at = Some(a.at_micros);
                row.approved_by = Some(a.approved_by.clone());
                row.approval_seq = Some(a.seq);
            }
            row.sla_due = self.sla.due(row.detected_at, row.severity, row.kev_due.as_deref());
            row.sla_status = SlaStatus::of(row.sla_due, row.resolved_at, self.as_of_micros);
        }
        rows.sort_by(|a, b| {
            (a.detected_at, &a.cve, &a.device_id).cmp(&(b.detected_at, &b.cve, &b.device_id))
        });
        let cis = self.safeguards(&rows);
        TimelineOutput { rows, cis, stats: self.stats }
    }

    fn safeguards(&self, rows: &[VulnRow]) -> Vec<Safeguard> {
        let c = &self.cis;
        let mut resolved = Counter::default();
        let mut met = Counter::default();
        let mut by_status: HashMap<SlaStatus, u64> = HashMap::new();
        for r in rows {
            *by_status.entry(r.sla_status).or_default() += 1;
            if let Some(seq) = r.resolved_seq {
                resolved.add(seq);
                if r.sla_status == SlaStatus::Met {
                    met.add(seq);
                }
            }
        }
        let n = |s: SlaStatus| by_status.get(&s).copied().unwrap_or(0);
        let scans = c.inventory.count + c.findings.count;
        vec![
            safeguard(
                "7.1",
                "Establish and Maintain a Vulnerability Management Process",
                format!(
                    "{} vulnerability management policy event(s) in the window. Remediation SLA in force: {}.",
                    c.policy.count,
                    self.sla.describe()
                ),
                vec![c.policy.evidence("Vulnerability management policy changes", &["policy.*"])],
            ),
            safeguard(
                "7.2",
                "Establish and Maintain a Remediation Process",
                format!(
                    "{} patch approval event(s), {} exception or risk decision(s), {} rollout halt(s) or release(s).",
                    c.approvals.count, c.risk_decisions.count, c.rollout_decisions.count
                ),
                vec![
                    c.approvals.evidence("Patch approvals", &["approval.*"]),
                    c.risk_decisions.evidence("Exceptions and risk decisions", &["exception.*", "finding.*"]),
                    c.rollout_decisions
                        .evidence("Rollout halts and releases", &["rollout.halt", "rollout.release"]),
                ],
            ),
            safeguard(
                "7.3",
                "Perform Automated Operating System Patch Management",
                format!(
                    "{} deployment event(s) installed or verified operating system updates ({}).",
                    c.os_patches.count,
                    OS_MANAGERS.join(", ")
                ),
                vec![c.os_patches.evidence(
                    "Operating system updates installed or verified",
                    &["deployment.installed", "deployment.verified"],
                )],
            ),
            safeguard(
                "7.4",
                "Perform Automated Application Patch Management",
                format!(
                    "{} deployment event(s) installed or verified application updates (winget, choco, brew and other application managers).",
                    c.app_patches.count
                ),
                vec![c.app_patches.evidence(
                    "Application updates installed or verified",
                    &["deployment.installed", "deployment.verified"],
                )],
            ),
            safeguard(
                "7.5",
                "Perform Automated Vulnerability Scans of Internal Enterprise Assets",
                format!(
                    "{} device(s) scanned by the agent; {scans} scan(s): {} inventory update(s) and {} change(s) in findings.",
                    c.devices_scanned.len(),
                    c.inventory.count,
                    c.findings.count
                ),
                vec![
                    c.inventory.evidence("Inventory scans", &["inventory.update"]),
                    c.findings.evidence("Vulnerability findings from scans", &["findings.change"]),
                ],
            ),
            safeguard(
                "7.6",
                "Perform Automated Vulnerability Scans of Externally-Exposed Enterprise Assets",
                if c.appliance.count > 0 {
                    format!("{} scan event(s) from a network appliance.", c.appliance.count)
                } else {
                    "Not evidenced: the agent scans devices from the inside, and the log holds no scans of \
                     externally-exposed assets from a network appliance or external scanner."
                        .to_owned()
                },
                vec![c.appliance.evidence("External scans from an appliance", &["appliance.*"])],
            ),
            safeguard(
                "7.7",
                "Remediate Detected Vulnerabilities",
                format!(
                    "{} finding(s) resolved: {} within the SLA, {} after it; {} unresolved within the SLA, {} overdue; {} without an SLA.",
                    resolved.count,
                    n(SlaStatus::Met),
                    n(SlaStatus::Breached),
                    n(SlaStatus::Open),
                    n(SlaStatus::Overdue),
                    n(SlaStatus::NoSla)
                ),
                vec![
                    resolved.evidence("Resolved findings", &["findings.change"]),
                    met.evidence("Findings resolved within the SLA", &["findings.change"]),
                ],
            ),
        ]
    }
}

fn safeguard(id: &str, title: &str, summary: String, evidence: Vec<EvidenceCount>) -> Safeguard {
    let with = evidence.iter().filter(|e| e.count > 0).count();
    let status = if with == 0 {
        SafeguardStatus::NotEvidenced
    } else if with == evidence.len() {
        SafeguardStatus::Evidenced
    } else {
        SafeguardStatus::Partial
    };
    Safeguard { id: id.to_owned(), title: title.to_owned(), status, summary, evidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MICROS;
    /// 2024-03-01T00:00:00Z.
    const T0: i64 = 1_709_251_200_000_000;

    #[test]
    fn due_is_the_earlier_of_the_severity_deadline_and_the_kev_date() {
        let default = SlaPolicy::default();
        let no_kev = SlaPolicy { kev_due_date: false, ..SlaPolicy::default() };
        let short_window = SlaPolicy { kev_days: 1, ..SlaPolicy::default() };
        // 2024-03-05 ends one microsecond before 2024-03-06T00:00:00Z.
        let kev_end = T0 + 5 * DAY - 1;
        let cases: [(&SlaPolicy, Severity, Option<&str>, Option<i64>); 12] = [
            (&default, Severity::Critical, None, Some(T0 + 15 * DAY)),
            (&default, Severity::High, None, Some(T0 + 30 * DAY)),
            (&default, Severity::Medium, None, Some(T0 + 90 * DAY)),
            (&default, Severity::Low, None, None),
            (&default, Severity::None, None, None),
            // CISA's date is 5 days after detection: the KEV window's 14 days apply.
            (&default, Severity::High, Some("2024-03-05"), Some(T0 + 14 * DAY)),
            (&default, Severity::Low, Some("2024-03-05"), Some(T0 + 14 * DAY)),
            (&short_window, Severity::High, Some("2024-03-05"), Some(kev_end)),
            // A due date years before detection never gives a deadline before detection.
            (&default, Severity::Critical, Some("2021-11-17"), Some(T0 + 14 * DAY)),
            (&default, Severity::High, Some("2024-03-25"), Some(T0 + 25 * DAY - 1)),
            (&default, Severity::Critical, Some("2024-12-31"), Some(T0 + 15 * DAY)),
            (&no_kev, Severity::Low, Some("2024-03-05"), None),
        ];
        for (policy, severity, kev, expect) in cases {
            assert_eq!(policy.due(T0, severity, kev), expect, "{severity:?} {kev:?}");
        }
        assert_eq!(default.due(T0, Severity::Low, Some("soon")), None, "an unreadable KEV date is ignored");
    }

    #[test]
    fn sla_status_follows_due_resolution_and_as_of() {
        let due = Some(T0);
        let cases = [
            (due, Some(T0), T0 + DAY, SlaStatus::Met),
            (due, Some(T0 + 1), T0 + DAY, SlaStatus::Breached),
            (due, None, T0, SlaStatus::Open),
            (due, None, T0 + 1, SlaStatus::Overdue),
            (None, Some(T0), T0, SlaStatus::NoSla),
            (None, None, T0, SlaStatus::NoSla),
        ];
        for (due, resolved, as_of, expect) in cases {
            assert_eq!(SlaStatus::of(due, resolved, as_of), expect, "{due:?} {resolved:?} {as_of}");
        }
    }

    /// (organization, action, object id, at, payload)
    type Spec<'a> = (Option<&'a str>, &'a str, &'a str, i64, &'a str);

    fn run(specs: &[Spec<'_>]) -> TimelineOutput {
        let mut t = Timeline::new("o1", SlaPolicy::default(), T0 + 60 * DAY);
        for (i, (org, action, id, at, payload)) in specs.iter().enumerate() {
            let kind = action.split('.').next().unwrap_or_default();
            t.push_content(&EventContent {
                chain: "p1",
                seq: i as i64 + 1,
                at_micros: *at,
                actor: "system:test",
                action,
                object_kind: if kind == "findings" || kind == "inventory" { "device" } else { kind },
                object_id: id,
                organization_id: *org,
                payload,
            });
        }
        t.finish()
    }

    const OPEN: &str = r#"{"hostname":"h1","opened":[{"finding":1,"cve":"CVE-1","product":"openssl","severity":"critical","kev_due":null}]}"#;
    const INSTALL: &str =
        r#"{"after":{"id":"dep1","updates":[{"product":"openssl","version":"3.0.14","manager":"apt"}]}}"#;

    fn resolve(at: i64) -> String {
        format!(
            r#"{{"hostname":"h1","resolved":[{{"cve":"CVE-1","product":"openssl","severity":"critical","detected_at":{at},"resolution":"patched","deployment":"dep1"}}]}}"#
        )
    }

    fn approval(org: &str, version: &str) -> String {
        format!(
            r#"{{"after":{{"product":"openssl","version":"{version}","organization_id":{org},"decision":"approved","decided_by":"user:bob","rule":null}}}}"#
        )
    }

    #[test]
    fn payloads_of_the_wrong_shape_are_counted_and_skipped() {
        let out = run(&[
            (Some("o1"), "findings.change", "d1", T0, "not json"),
            (
                Some("o1"),
                "findings.change",
                "d1",
                T0,
                r#"{"opened":[{"cve":"CVE-1","product":"p","severity":"urgent"}]}"#,
            ),
            (None, "approval.approved", "a1", T0, r#"{"before":{}}"#),
            (Some("o1"), "deployment.installed", "dep1", T0, r#"{"after":5}"#),
            (Some("o1"), "findings.change", "d1", T0, r#"{"opened":[],"extra":{"ignored":true}}"#),
        ]);
        assert_eq!(out.stats.unreadable, 4);
        assert!(out.rows.is_empty());
    }

    #[test]
    fn an_approval_counts_only_for_its_organization_version_and_time() {
        let resolved = resolve(T0);
        let approved_by = |approval_org: &str, version: &str, approval_after_install: bool| {
            let a = approval(approval_org, version);
            let mut specs: Vec<Spec<'_>> = vec![(Some("o1"), "findings.change", "d1", T0, OPEN)];
            if !approval_after_install {
                specs.push((None, "approval.approved", "a1", T0 + 1, &a));
            }
            specs.push((Some("o1"), "deployment.installed", "dep1", T0 + 2, INSTALL));
            if approval_after_install {
                specs.push((None, "approval.approved", "a1", T0 + 3, &a));
            }
            specs.push((Some("o1"), "findings.change", "d1", T0 + 4, &resolved));
            run(&specs).rows[0].approved_by.clone()
        };
        let cases = [
            (r#"null"#, "3.0.14", false, Some("user:bob")),
            (r#""o1""#, "3.0.14", false, Some("user:bob")),
            (r#""o2""#, "3.0.14", false, None),
            (r#"null"#, "3.0.15", false, None),
            (r#"null"#, "3.0.14", true, None),
        ];
        for (org, version, after, expect) in cases {
            assert_eq!(approved_by(org, version, after).as_deref(), expect, "{org} {version} after={after}");
        }
    }

    #[test]
    fn a_finding_opened_again_after_its_resolution_starts_over() {
        let resolved = resolve(T0);
        let out = run(&[
            (Some("o1"), "findings.change", "d1", T0, OPEN),
            (Some("o1"), "findings.change", "d1", T0 + DAY, OPEN),
            (Some("o1"), "findings.change", "d1", T0 + 2 * DAY, &resolved),
            (Some("o1"), "findings.change", "d1", T0 + 3 * DAY, OPEN),
        ]);
        assert_eq!(out.rows.len(), 1);
        let row = &out.rows[0];
        assert_eq!((row.detected_at, row.detected_seq, row.resolved_at), (T0 + 3 * DAY, Some(4), None));
        assert_eq!(row.sla_status, SlaStatus::Overdue);
    }

    #[test]
    fn safeguard_status_follows_the_evidence_kinds() {
        let status = |specs: &[Spec<'_>], id: &str| {
            let out = run(specs);
            let s = out.cis.iter().find(|s| s.id == id).map(|s| s.status);
            s.map(SafeguardStatus::as_str)
        };
        let app = r#"{"after":{"updates":[{"product":"firefox","version":"1","manager":"winget"}]}}"#;
        let cases: [(&[Spec<'_>], &str, &str); 8] = [
            (&[], "7.1", "not_evidenced"),
            (&[(None, "policy.update", "p", T0, "{}")], "7.1", "evidenced"),
            (&[(None, "approval.approved", "a", T0, "{}")], "7.2", "partial"),
            (&[(Some("o1"), "deployment.verified", "d", T0, INSTALL)], "7.3", "evidenced"),
            (&[(Some("o1"), "deployment.verified", "d", T0, INSTALL)], "7.4", "not_evidenced"),
            (&[(Some("o1"), "deployment.installed", "d", T0, app)], "7.4", "evidenced"),
            (&[(Some("o1"), "inventory.update", "d1", T0, "{}")], "7.5", "partial"),
            (&[(Some("o1"), "appliance.scan", "x", T0, "{}")], "7.6", "evidenced"),
        ];
        for (specs, id, expect) in cases {
            assert_eq!(status(specs, id), Some(expect), "{id} with {specs:?}");
        }
        // Another organization's events and partner-wide events outside decisions count for
        // nothing.
        let foreign: &[Spec<'_>] =
            &[(Some("o2"), "inventory.update", "d9", T0, "{}"), (None, "appliance.scan", "x", T0, "{}")];
        assert_eq!(status(foreign, "7.5"), Some("not_evidenced"));
        assert_eq!(status(foreign, "7.6"), Some("not_evidenced"));
    }

    #[test]
    fn an_update_seen_by_the_next_inventory_is_credited_to_the_deployment_that_installed_it() {
        let on = |device: &str| {
            format!(
                r#"{{"after":{{"id":"dep1","device_id":"{device}","updates":[{{"product":"openssl","version":"3.0.14","manager":"apt"}}]}}}}"#
            )
        };
        let resolved = |how: &str| {
            format!(
                r#"{{"hostname":"h1","resolved":[{{"cve":"CVE-1","product":"openssl","severity":"critical","detected_at":{T0},"resolution":"{how}","deployment":null}}]}}"#
            )
        };
        let credited = |device: &str, how: &str| {
            let (install, resolution) = (on(device), resolved(how));
            let out = run(&[
                (Some("o1"), "findings.change", "d1", T0, OPEN),
                (Some("o1"), "deployment.installed", "dep1", T0 + DAY, &install),
                (Some("o1"), "findings.change", "d1", T0 + 2 * DAY, &resolution),
            ]);
            (out.rows[0].deployment_id.clone(), out.rows[0].deployed_at)
        };
        assert_eq!(credited("d1", "updated"), (Some("dep1".into()), Some(T0 + DAY)));
        // Another device's install, or a package removed rather than updated, is not credited.
        assert_eq!(credited("d2", "updated"), (None, None));
        assert_eq!(credited("d1", "removed"), (None, None));
    }
}
