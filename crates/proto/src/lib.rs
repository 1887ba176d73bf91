//! Wire types of the REST API, version 1 (`/api/v1/…`).
//!
//! Requests are strict: unknown fields are refused (`deny_unknown_fields`), so a typo in a
//! field name is an error rather than a silently ignored value. Closed sets of values (roles,
//! criticality) travel as strings and are checked by `engine`, whose messages list the
//! choices. Responses reuse the domain types of `ringfence-model` as they are.
//!
//! This crate depends on no server code: the CLI and outside clients can use it as well.

pub mod appliances;
pub mod collector;
pub mod jobs;

use ringfence_model::EnrollmentToken;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use ringfence_model::{ApiToken, Device, DeviceGroup, Organization, Partner, Site, User};

/// Distinguishes a field that is absent (`None`) from one set to `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `throttled`, `csrf`, `unavailable`, `internal`.
    pub error: String,
    /// What was wrong and what to do.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePartner {
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    #[serde(default)]
    pub notes: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    pub name: Option<String>,
    pub notes: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    pub organization_id: String,
    pub name: String,
    /// IANA time zone, e.g. `America/Chicago`.
    pub time_zone: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSite {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub address: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeviceGroup {
    pub organization_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDeviceGroup {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    pub site_id: String,
    pub hostname: String,
    /// workstation, laptop, server, domain_controller, hypervisor, network_appliance, kiosk
    /// or other.
    pub role: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub internet_facing: bool,
    #[serde(default)]
    pub holds_sensitive_data: bool,
    /// low, medium (default), high or critical.
    #[serde(default)]
    pub criticality: Option<String>,
    /// The device's own IANA time zone; omit to inherit the site's.
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub group_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    pub site_id: Option<String>,
    pub hostname: Option<String>,
    pub role: Option<String>,
    pub os: Option<String>,
    pub internet_facing: Option<bool>,
    pub holds_sensitive_data: Option<bool>,
    pub criticality: Option<String>,
    /// A zone to set, or `null` to inherit the site's zone again.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    /// Replaces the device's group memberships.
    pub group_ids: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceListQuery {
    pub organization_id: Option<String>,
    pub site_id: Option<String>,
    pub group_id: Option<String>,
    /// Case-insensitive part of the host name.
    pub search: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganizationFilter {
    pub organization_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DevicePage {
    pub items: Vec<Device>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The login name, usually an e-mail address.
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    /// partner_admin, technician, client_viewer or auditor.
    pub role: String,
    /// Required for client viewers: the one organization they may see.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// At least 12 characters.
    pub password: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    pub role: Option<String>,
    /// An organization to limit the user to, or `null` for partner-wide access.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
    /// Required when changing one's own password.
    #[serde(default)]
    pub current_password: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// The token's role; defaults to the creator's and may not exceed it.
    #[serde(default)]
    pub role: Option<String>,
    /// Limits the token to one organization.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Days until the token expires (1 to 3650); omit for no expiry.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// A new token. `secret` is shown this once; only its hash is kept.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// The signed-in caller.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub actor: String,
    pub role: String,
    pub partner_id: String,
    pub organization_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events after this sequence number.
    pub after: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// One evidence event as exported.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EvidenceEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub organization_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of verifying the caller's evidence chain.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainVerification {
    pub chain: String,
    pub ok: bool,
    pub events: i64,
    /// The first break, when the chain is broken.
    pub problem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CreateOrganization>(r#"{"name":"x","nmae":"y"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn null_and_absent_differ() {
        let absent: UpdateDevice = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.time_zone, None);
        let null: UpdateDevice = serde_json::from_str(r#"{"time_zone":null}"#).unwrap();
        assert_eq!(null.time_zone, Some(None));
        let set: UpdateDevice = serde_json::from_str(r#"{"time_zone":"UTC"}"#).unwrap();
        assert_eq!(set.time_zone, Some(Some("UTC".into())));
    }
}

/// Filters of the fleet's vulnerability list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VulnerabilityListQuery {
    /// A CVE id or part of one, or part of a package or product name.
    pub search: Option<String>,
    /// Only CVEs in CISA's Known Exploited Vulnerabilities catalog.
    pub kev: Option<bool>,
    pub organization_id: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Filters of a findings list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingListQuery {
    /// Include resolved findings (with when and why they were resolved).
    pub include_resolved: Option<bool>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Filters of the fleet's software list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SoftwareQuery {
    /// Part of the software's name.
    pub search: Option<String>,
    /// 1 to 1000, default 200.
    pub limit: Option<i64>,
}

/// A new enrollment token for a site.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    pub site_id: String,
    pub name: String,
    /// Hours until the token expires (1 to 8760); omit for no expiry.
    #[serde(default)]
    pub expires_in_hours: Option<i64>,
    /// How many devices may enroll with it (1 to 100000); omit for no limit.
    #[serde(default)]
    pub max_uses: Option<i64>,
}

/// A created enrollment token; `secret` is shown this once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedEnrollmentToken {
    pub token: EnrollmentToken,
    /// Give it to `ringfence-agent enroll --token`.
    pub secret: String,
}

/// What an agent sends to enroll.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    pub hostname: String,
    /// `/etc/machine-id`, the Windows MachineGuid or the macOS hardware UUID.
    pub machine_id: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub agent_version: String,
}

/// What an enrolled agent keeps.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub device_id: String,
    /// The device's secret, sent with every check-in; stored hashed on the server.
    pub credential: String,
    /// The server's ed25519 public key (hex): jobs are signed with it, the agent pins it.
    pub server_public_key: String,
    /// Set when this machine-id enrolled before: the device it duplicates.
    pub clone_of: Option<String>,
}

/// An agent's heartbeat.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub reboot_required: bool,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): a new one after a reboot.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Why the server refused the agent's last inventory report (too large, say), so that
    /// the device page shows it; absent once a report is applied.
    #[serde(default)]
    pub inventory_refused: Option<String>,
}

/// The server's answer to a heartbeat.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckInReply {
    /// The sequence number of the last inventory report applied; 0 asks for a full one.
    pub inventory_seq: i64,
    pub checkin_interval_secs: u64,
    /// This device is its site's network collector: it should ask for collector jobs
    /// (`POST /api/agent/v1/collector/jobs`) after the check-in.
    #[serde(default)]
    pub collector: bool,
}

/// An inventory report: the whole inventory, or what changed since report `seq - 1`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInventory {
    /// 1, 2, 3…: each report's number; the server applies each once and in order.
    pub seq: i64,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub full: Option<ringfence_inventory::Inventory>,
    #[serde(default)]
    pub delta: Option<InventoryDelta>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryDelta {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub os: Option<ringfence_inventory::OsInfo>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub added: Vec<ringfence_inventory::Item>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub removed: Vec<ringfence_inventory::Item>,
}

impl InventoryDelta {
    /// The inventory after this delta: `removed` items taken out of `items`, then `added`
    /// ones put in (once each, whatever the delta repeats); the OS replaced when given.
    pub fn apply(
        self,
        items: Vec<ringfence_inventory::Item>,
        os: Option<ringfence_inventory::OsInfo>,
    ) -> ringfence_inventory::Inventory {
        let removed: std::collections::HashSet<&ringfence_inventory::Item> = self.removed.iter().collect();
        let mut items: Vec<_> = items.into_iter().filter(|i| !removed.contains(i)).collect();
        let mut present: std::collections::HashSet<ringfence_inventory::Item> =
            items.iter().cloned().collect();
        for i in self.added {
            if present.insert(i.clone()) {
                items.push(i);
            }
        }
        ringfence_inventory::Inventory { os: self.os.or(os).unwrap_or_default(), items }
    }
}

/// The server's answer to an inventory report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InventoryAck {
    /// The report was applied now (false when it had been applied before).
    pub applied: bool,
    /// The server cannot apply this delta (a gap in the sequence): send a full inventory.
    pub resync: bool,
    /// The last sequence number applied.
    pub seq: i64,
    /// CVEs newly found on this device by this report.
    pub new_findings: Vec<String>,
}

/// A policy to create, or the whole new state of one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    pub name: String,
    /// partner, organization, site, group or device.
    pub level: String,
    /// The id of the organization, site, group or device; absent for the partner level.
    #[serde(default)]
    pub target_id: Option<String>,
    /// Orders policies of one level that set the same field (higher wins).
    #[serde(default)]
    pub priority: i64,
    /// The settings, e.g. `{"ring": 2, "reboot": "allowed"}`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Fields nearer levels may not override.
    #[serde(default)]
    pub locked: Vec<String>,
}

/// What would change if a policy were saved (or deleted, when `policy` is absent).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPreviewRequest {
    /// The policy being changed or deleted; absent for a new one.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub policy: Option<PolicyInput>,
}

/// An update in the remediation queue: the product and the version that fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRef {
    pub product: String,
    pub version: String,
}

/// A person's decision on one or more updates.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub updates: Vec<UpdateRef>,
    /// approve, reject or defer.
    pub decision: String,
    pub reason: String,
    /// The organization the decision is for; absent for every organization of the partner.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// For `defer`: until when (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub defer_until: Option<String>,
    /// An emergency override: the update skips ring validation periods (never blackouts).
    #[serde(default)]
    pub emergency: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateException {
    pub organization_id: String,
    /// pin (keep the software inside the range) or exclude (no updates while inside it).
    pub kind: String,
    pub software: String,
    /// `*`, `4.8.x`, or constraints such as `>=4.8, <4.9`.
    pub version_range: String,
    pub owner: String,
    pub reason: String,
    /// RFC 3339 or YYYY-MM-DD (the end of that day, UTC).
    pub expires: String,
}

/// Halts an update for every client of the partner (the MSP-wide circuit breaker).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HaltRequest {
    pub product: String,
    pub version: String,
    pub reason: String,
}

/// Releases a halt, with a reason.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRiskDecision {
    pub organization_id: String,
    pub cve_id: String,
    pub product: String,
    /// mitigated (name the compensating control) or risk_accepted.
    pub kind: String,
    #[serde(default)]
    pub control: String,
    pub owner: String,
    pub reason: String,
    /// RFC 3339 or YYYY-MM-DD (the end of that day, UTC).
    pub expires: String,
}

/// Which part of the schedule preview to show: the caller's scope, one organization or one
/// device.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct ScheduleQuery {
    pub organization_id: Option<String>,
    pub device_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    pub organization_id: Option<String>,
    /// Only updates that fix a CVE in KEV.
    pub kev: Option<bool>,
    /// approved, rejected, deferred, needs_review, waiting, auto_approve, excepted, mitigated,
    /// risk_accepted, no_fix, awaiting_second or mixed.
    pub status: Option<String>,
    /// Part of a product name or a CVE id.
    pub search: Option<String>,
    /// risk (default), devices, cves or product.
    pub sort: Option<String>,
}

/// One pending update as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPendingUpdate {
    /// dpkg, rpm, snap, windows_update, winget, fwupd, …
    pub manager: String,
    pub name: String,
    pub installed: String,
    pub candidate: String,
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub security: bool,
    #[serde(default)]
    pub advisories: Vec<String>,
    #[serde(default)]
    pub cves: Vec<String>,
}

/// The agent's whole list of pending updates (it replaces the previous one).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPendingUpdates {
    pub updates: Vec<AgentPendingUpdate>,
}

/// Which deployments to list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeploymentListQuery {
    pub organization_id: Option<String>,
    pub device_id: Option<String>,
    /// scheduled, dispatched, running, rebooting, installed, verified, failed, rolled_back or
    /// missed; several separated by commas.
    pub status: Option<String>,
    /// install or rollback.
    pub kind: Option<String>,
    /// Deployments carrying this update (with `version`).
    pub product: Option<String>,
    pub version: Option<String>,
    /// Only deployments that changed (were created, started, finished…) within this many
    /// hours, e.g. 24 for last night's work.
    pub changed_within_hours: Option<u32>,
    /// At most this many, newest first (default 500, at most 10000).
    pub limit: Option<i64>,
}

/// Rolls an update back on one device, one organization, or every device of the partner
/// (neither `device_id` nor `organization_id`), in one action.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub product: String,
    pub version: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    pub reason: String,
}

/// Asks for another attempt at a failed or missed install, with why.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    pub reason: String,
}

/// Generates a client report for one organization and period; the period is the last
/// calendar month (UTC) unless `from`/`to` or `period` say otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub organization_id: String,
    /// `YYYY-MM-DD` or an RFC 3339 instant (inclusive).
    #[serde(default)]
    pub from: Option<String>,
    /// `YYYY-MM-DD` or an RFC 3339 instant (exclusive).
    #[serde(default)]
    pub to: Option<String>,
    /// last_month (default), this_month, last_7_days, last_30_days or last_90_days.
    #[serde(default)]
    pub period: Option<String>,
    /// Also mail it to these addresses.
    #[serde(default)]
    pub email_to: Vec<String>,
}

/// Schedules an organization's report: `monthly` (on the 1st, for the month before) or
/// `weekly` (on Mondays, for the week before), mailed to the recipients.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportScheduleInput {
    pub organization_id: String,
    pub cadence: String,
    pub recipients: Vec<String>,
}

/// Exports an organization's audit evidence bundle for an audit window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EvidenceExportQuery {
    pub organization_id: String,
    /// `YYYY-MM-DD` or an RFC 3339 instant; default: `days` before `to`.
    #[serde(default)]
    pub from: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub to: Option<String>,
    /// The window's length when `from` is not given (default 90, at most 400).
    #[serde(default)]
    pub days: Option<u32>,
    /// Leave out the PDF summary (faster; the bundle is complete without it).
    #[serde(default)]
    pub no_pdf: Option<bool>,
}
