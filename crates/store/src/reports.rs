//! Evidence checkpoints, client reports and their schedules, and remediation-deadline alerts.

use crate::{Audit, Result, Scope};
use async_trait::async_trait;
use jiff::Timestamp;
use ringfence_evidence::{Checkpoint, Event};
use ringfence_model::*;
use serde::Serialize;

/// A report schedule: one organization's report, made and mailed on a cadence.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportSchedule {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    /// `monthly` or `weekly`.
    pub cadence: String,
    pub recipients: Vec<String>,
    #[schema(value_type = String)]
    pub next_run: Timestamp,
    #[schema(value_type = Option<String>)]
    pub last_run: Option<Timestamp>,
    pub last_status: String,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// A report as it is kept: its figures and every rendering.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredReport {
    pub id: String,
    pub organization_id: OrganizationId,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub generated_at: Timestamp,
    pub generated_by: String,
    pub schedule_id: Option<String>,
    /// JSON of the report's figures.
    pub summary: String,
    pub html: String,
    pub csv: String,
    pub pdf: Option<Vec<u8>>,
    pub delivery: String,
}

/// A report in a list: without its renderings.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportListItem {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    #[schema(value_type = String)]
    pub period_start: Timestamp,
    #[schema(value_type = String)]
    pub period_end: Timestamp,
    #[schema(value_type = String)]
    pub generated_at: Timestamp,
    pub generated_by: String,
    pub has_pdf: bool,
    pub delivery: String,
}

/// One organization's figures for the partner's overview: devices, open findings and what
/// went wrong lately.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgFigures {
    pub organization_id: Option<OrganizationId>,
    pub devices: i64,
    /// Devices with at least one open finding.
    pub devices_exposed: i64,
    /// Deployments that failed since the time asked for.
    pub failed_recently: i64,
    /// Devices with an agent that has not checked in since the time asked for.
    pub offline: i64,
}

/// Open findings of one organization that share a CVE, product, severity, KEV due date and
/// hour of first detection: enough to compute deadlines without reading every finding.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenFindingGroup {
    pub organization_id: OrganizationId,
    pub cve_id: String,
    pub product: String,
    /// Lower case; `none` when the CVE has no score.
    pub severity: String,
    pub kev_due: Option<String>,
    /// The start of the hour of the earliest first detection in the group.
    pub detected: Timestamp,
    pub findings: i64,
    pub devices: i64,
}

/// A remediation-deadline alert to raise, once per (kind, organization, CVE).
#[derive(Clone, Debug, PartialEq)]
pub struct SlaAlert {
    pub organization_id: OrganizationId,
    /// `sla_breached` or `sla_due_soon`.
    pub kind: String,
    pub cve_id: String,
    pub devices: i64,
    pub message: String,
}

/// A finding as reports and deadlines read it: with its CVE's severity and KEV due date.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportFinding {
    pub id: String,
    pub device_id: DeviceId,
    pub hostname: String,
    pub cve_id: String,
    pub product: String,
    pub fixed_version: Option<String>,
    /// Lower case; "none" when the CVE has no score.
    pub severity: String,
    pub kev_due: Option<String>,
    pub first_detected: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub resolution: Option<String>,
    pub resolved_by_deployment: Option<String>,
}

/// An event with its own time and actor, appended by `import_events` (history replayed by
/// the demo and benchmarks; every other write appends its own event).
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEvent {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub object_kind: &'static str,
    pub object_id: String,
    pub organization_id: Option<OrganizationId>,
    pub payload: serde_json::Value,
}

#[async_trait]
pub trait ReportStore {
    /// Appends events in the order given, chained like any other (their times should not go
    /// backwards).
    async fn import_events(&self, chain: &PartnerId, events: &[TimedEvent]) -> Result<()>;
    /// The organization's findings open at some point since `since` (open now, or resolved
    /// after it); every organization of the scope when `organization` is None.
    async fn report_findings(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
        since: Timestamp,
    ) -> Result<Vec<ReportFinding>>;
    /// Records a checkpoint; a second one at the same place is ignored.
    async fn save_checkpoint(&self, c: &Checkpoint) -> Result<()>;
    /// Per organization of the scope: devices, devices with an open finding, deployments
    /// failed since `failed_since`, and devices whose agent was last seen before `seen_since`.
    async fn organization_figures(
        &self,
        scope: &Scope,
        failed_since: Timestamp,
        seen_since: Timestamp,
    ) -> Result<Vec<OrgFigures>>;
    /// The scope's open findings grouped for deadlines (see `OpenFindingGroup`).
    async fn open_finding_groups(&self, scope: &Scope) -> Result<Vec<OpenFindingGroup>>;
    /// The chain's checkpoints with `from <= seq <= to`, in order.
    async fn list_checkpoints(&self, chain: &str, from: i64, to: i64) -> Result<Vec<Checkpoint>>;
    /// The newest checkpoint at or before `seq`.
    async fn checkpoint_before(&self, chain: &str, seq: i64) -> Result<Option<Checkpoint>>;
    /// The first and last seq of the chain's events with `from <= at < to`.
    async fn event_span(&self, chain: &str, from: Timestamp, to: Timestamp) -> Result<Option<(i64, i64)>>;
    /// Events with `from <= seq <= to` in order, at most `limit` (every organization's: the
    /// caller hides what is not its own).
    async fn events_between(&self, chain: &str, from: i64, to: i64, limit: i64) -> Result<Vec<Event>>;
    /// The event at `seq`.
    async fn event_at(&self, chain: &str, seq: i64) -> Result<Option<Event>>;

    async fn create_report_schedule(&self, audit: &Audit, scope: &Scope, s: &ReportSchedule) -> Result<()>;
    async fn list_report_schedules(&self, scope: &Scope) -> Result<Vec<ReportSchedule>>;
    async fn delete_report_schedule(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()>;
    /// Every partner's schedules due at `now` (for the background worker).
    async fn due_report_schedules(&self, now: Timestamp) -> Result<Vec<(PartnerId, ReportSchedule)>>;
    /// Moves a schedule on after a run (compare-and-set on `next_run`, so two servers do not
    /// both run it): false when another server already did.
    async fn advance_report_schedule(
        &self,
        id: &str,
        expected_next: Timestamp,
        next: Timestamp,
        ran_at: Timestamp,
        status: &str,
    ) -> Result<bool>;

    async fn save_report(&self, audit: &Audit, scope: &Scope, r: &StoredReport) -> Result<()>;
    async fn set_report_delivery(&self, scope: &Scope, id: &str, delivery: &str) -> Result<()>;
    async fn list_reports(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
        limit: i64,
    ) -> Result<Vec<ReportListItem>>;
    async fn get_report(&self, scope: &Scope, id: &str) -> Result<StoredReport>;

    /// Raises the alerts not raised before; returns how many were new.
    async fn raise_sla_alerts(&self, partner: &PartnerId, at: Timestamp, alerts: &[SlaAlert]) -> Result<u64>;
}
