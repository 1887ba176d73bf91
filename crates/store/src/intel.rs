//! Vulnerability intelligence, device inventories and findings: the data of correlation.
//!
//! Intelligence (NVD, KEV, EPSS, distro advisories) is public and shared by every partner.
//! Inventories and findings are tenant data: every method takes a [`Scope`] and sees only
//! its rows.

use crate::{Audit, Page, Result};
use async_trait::async_trait;
use ringfence_inventory::{Item, OsInfo};
use ringfence_model::*;
use serde::Serialize;

/// One NVD record as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CveRow {
    pub id: String,
    pub status: String,
    pub published: String,
    pub last_modified: String,
    pub description: String,
    pub cvss_score: Option<f64>,
    pub cvss_version: Option<String>,
    pub cvss_vector: Option<String>,
    pub severity: Option<String>,
    /// CWE ids as a JSON array.
    pub cwes: String,
    /// The configurations in ringfence's own JSON form (see `engine::intel`).
    pub configurations: String,
    /// `vendor:product` pairs named by vulnerable criteria.
    pub match_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KevRow {
    pub cve_id: String,
    pub vendor: String,
    pub product: String,
    pub name: String,
    pub date_added: String,
    pub due_date: String,
    pub ransomware: bool,
    pub required_action: String,
    pub notes: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EpssRow {
    pub cve_id: String,
    pub score: f64,
    pub percentile: f64,
    pub model_version: String,
    pub score_date: String,
}

/// One distro statement: `state` is `fixed`, `not_affected`, `open`, `undetermined` or
/// `osv` (with the OSV `affected` object in `detail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistroRow {
    pub distro: String,
    pub release: String,
    pub package: String,
    pub cve_id: String,
    pub source: String,
    pub state: String,
    pub fixed_version: Option<String>,
    pub urgency: Option<String>,
    pub detail: Option<String>,
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpsertCounts {
    pub added: u64,
    pub changed: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for UpsertCounts {
    fn add_assign(&mut self, o: Self) {
        self.added += o.added;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
    }
}

/// What an NVD upsert did, with the ids it added and changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CveUpsert {
    pub counts: UpsertCounts,
    pub added: Vec<String>,
    pub changed: Vec<String>,
}

/// One import or sync of a feed.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeedRun {
    pub id: String,
    pub feed: String,
    /// The file or URL read.
    pub origin: String,
    #[schema(value_type = String)]
    pub started_at: Timestamp,
    #[schema(value_type = String)]
    pub finished_at: Timestamp,
    pub added: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub skipped: u64,
    /// Skip reasons and other details, as JSON text.
    pub detail: String,
    pub error: Option<String>,
}

/// What is known of one CVE, joined from NVD, KEV and EPSS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CveFacts {
    pub id: String,
    /// NVD's vulnStatus; `None` when only KEV, EPSS or a distro names the CVE.
    pub status: Option<String>,
    pub published: Option<String>,
    pub description: Option<String>,
    pub cvss_score: Option<f64>,
    pub cvss_version: Option<String>,
    pub cvss_vector: Option<String>,
    pub severity: Option<String>,
    pub kev: Option<KevFacts>,
    pub epss_score: Option<f64>,
    pub epss_percentile: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KevFacts {
    pub date_added: String,
    pub due_date: String,
    pub ransomware: bool,
    pub required_action: String,
}

/// A title with the key it is matched under (`deb:openssl` or `vendor:product`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TitleInput {
    pub item: Item,
    pub match_key: Option<String>,
}

/// What replacing an inventory changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InventoryChange {
    pub installed: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
}

/// One inventory report to write with `write_inventories`.
#[derive(Clone, Debug)]
pub struct InventoryWrite {
    pub audit: Audit,
    pub scope: Scope,
    pub device: DeviceId,
    pub os: OsInfo,
    pub titles: Vec<TitleInput>,
    /// The device's findings under the inventory (computed before the write).
    pub findings: Vec<NewFinding>,
    /// For an agent's report: its number, checked against the last one applied.
    pub report: Option<ReportSeq>,
}

/// An agent report's sequence number; a delta applies only right after the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportSeq {
    pub seq: i64,
    pub delta: bool,
}

/// What became of one report of `write_inventories`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryOutcome {
    Applied {
        change: InventoryChange,
        findings: FindingsChange,
    },
    /// The number was applied before (a retried report): nothing written.
    AlreadyApplied {
        seq: i64,
    },
    /// A delta whose predecessor is missing: nothing written; the agent must send it all.
    Resync {
        seq: i64,
    },
}

/// A device's stored inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredInventory {
    pub os: Option<OsInfo>,
    pub items: Vec<Item>,
    pub updated_at: Option<Timestamp>,
}

/// One entry of a device's software history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SoftwareEvent {
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// `installed`, `updated` or `removed`.
    pub change: String,
    pub kind: String,
    pub name: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
}

/// A finding to record for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFinding {
    pub cve_id: String,
    pub product: String,
    pub kind: String,
    pub items: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub source: String,
    pub rule: String,
}

/// A stored finding.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FindingRow {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    pub cve_id: String,
    pub product: String,
    pub kind: String,
    pub items: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub source: String,
    pub rule: String,
    #[schema(value_type = String)]
    pub first_detected: Timestamp,
    #[schema(value_type = String)]
    pub last_seen: Timestamp,
    #[schema(value_type = Option<String>)]
    pub resolved_at: Option<Timestamp>,
    /// `updated`, `removed` or `advisory withdrawn`.
    pub resolution: Option<String>,
}

/// What a findings sync changed on one device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FindingsChange {
    /// CVE ids newly found.
    pub new: Vec<String>,
    pub resolved: u64,
    pub open: u64,
}

#[derive(Clone, Debug, Default)]
pub struct FindingQuery {
    pub device_id: Option<DeviceId>,
    pub cve_id: Option<String>,
    pub include_resolved: bool,
    pub limit: i64,
    pub offset: i64,
}

/// One CVE across the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VulnerabilitySummary {
    pub facts: CveFacts,
    pub devices: i64,
    pub organizations: i64,
    #[schema(value_type = String)]
    pub first_detected: Timestamp,
    /// The first fixed version reported, when one is known.
    pub fixed_version: Option<String>,
    pub products: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct VulnerabilityQuery {
    /// A CVE id or part of one, or a product name.
    pub search: Option<String>,
    pub kev_only: bool,
    pub organization_id: Option<OrganizationId>,
    /// critical, high, medium or low (NVD's rating); all when absent.
    pub severity: Option<String>,
    /// risk (the default: known-exploited, then EPSS, then CVSS), cve, cvss, epss, devices
    /// or detected.
    pub sort: String,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// One software title across the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TitleSummary {
    pub kind: String,
    pub name: String,
    pub version: String,
    pub vendor: Option<String>,
    pub devices: i64,
}

/// A notification for technicians.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: String,
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// `new_cve`, `changed_cve` or `kev_added`.
    pub kind: String,
    pub cve_id: String,
    pub devices: i64,
    pub message: String,
    #[schema(value_type = Option<String>)]
    pub read_at: Option<Timestamp>,
}

/// The data of correlation.
#[async_trait]
pub trait IntelStore: Send + Sync {
    /// Inserts or replaces NVD records; a record whose `last_modified` is unchanged is left
    /// alone and counted as unchanged.
    async fn upsert_cves(&self, rows: &[CveRow], at: Timestamp) -> Result<CveUpsert>;
    async fn upsert_kev(&self, rows: &[KevRow]) -> Result<UpsertCounts>;
    async fn upsert_epss(&self, rows: &[EpssRow]) -> Result<UpsertCounts>;
    async fn upsert_distro(&self, rows: &[DistroRow]) -> Result<UpsertCounts>;
    async fn record_feed_run(&self, run: &FeedRun) -> Result<()>;
    async fn list_feed_runs(&self, limit: i64) -> Result<Vec<FeedRun>>;
    async fn feed_cursor(&self, feed: &str) -> Result<Option<String>>;
    async fn set_feed_cursor(&self, feed: &str, cursor: &str, at: Timestamp) -> Result<()>;

    /// Every NVD record's (id, status, configurations), for building the match index.
    async fn all_cve_configurations(&self) -> Result<Vec<(String, String, String)>>;
    async fn all_distro_rows(&self) -> Result<Vec<DistroRow>>;
    async fn cve_facts(&self, ids: &[String]) -> Result<Vec<CveFacts>>;
    /// The match keys of CVEs (`vendor:product`) and the source packages distro data names
    /// for them (`deb:openssl`): what a feed change touches.
    async fn match_keys_of(&self, cve_ids: &[String]) -> Result<Vec<String>>;
    async fn intel_counts(&self) -> Result<Vec<(String, i64)>>;

    /// Replaces a device's inventory, records what changed in its software history and
    /// appends one evidence event with the counts.
    async fn replace_inventory(
        &self,
        audit: &Audit,
        scope: &Scope,
        device: &DeviceId,
        os: &OsInfo,
        titles: &[TitleInput],
    ) -> Result<InventoryChange>;
    async fn device_inventory(&self, scope: &Scope, device: &DeviceId) -> Result<StoredInventory>;
    async fn software_history(
        &self,
        scope: &Scope,
        device: &DeviceId,
        limit: i64,
    ) -> Result<Vec<SoftwareEvent>>;
    /// Devices of every partner holding a title with one of these match keys.
    async fn devices_with_match_keys(&self, keys: &[String]) -> Result<Vec<(PartnerId, DeviceId)>>;
    /// Every device with an inventory, of every partner.
    async fn devices_with_inventory(&self) -> Result<Vec<(PartnerId, DeviceId)>>;

    /// Records a device's current findings: new ones are added, present ones refreshed,
    /// open ones no longer found are resolved (`updated` when the product is still
    /// installed, `removed` when not, `advisory withdrawn` when the CVE is in `withdrawn`).
    async fn sync_findings(
        &self,
        scope: &Scope,
        device: &DeviceId,
        findings: &[NewFinding],
        withdrawn: &[String],
        at: Timestamp,
    ) -> Result<FindingsChange>;
    /// Writes several inventory reports in one transaction, each in its own savepoint so
    /// that a refused one leaves the others: per report, its number is checked and
    /// recorded, the inventory replaced (as `replace_inventory`) and the findings synced
    /// (as `sync_findings`), all or nothing. The outer error is a failure of the whole batch.
    async fn write_inventories(&self, batch: &[InventoryWrite]) -> Result<Vec<Result<InventoryOutcome>>>;
    async fn list_findings(&self, scope: &Scope, q: &FindingQuery) -> Result<Page<FindingRow>>;
    async fn vulnerabilities(
        &self,
        scope: &Scope,
        q: &VulnerabilityQuery,
    ) -> Result<Page<VulnerabilitySummary>>;
    async fn software_titles(
        &self,
        scope: &Scope,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TitleSummary>>;

    async fn create_alert(&self, partner: &PartnerId, alert: &Alert) -> Result<()>;
    async fn list_alerts(&self, scope: &Scope, limit: i64) -> Result<Vec<Alert>>;
    async fn mark_alerts_read(&self, scope: &Scope, at: Timestamp) -> Result<u64>;
    /// Alerts not yet read (none for a client-scoped caller, as `list_alerts`).
    async fn count_unread_alerts(&self, scope: &Scope) -> Result<i64>;
}

/// A new enrollment token (its secret already hashed).
#[derive(Clone, Debug)]
pub struct NewEnrollmentToken {
    pub site_id: SiteId,
    pub name: String,
    pub token_hash: String,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<i64>,
}

/// A device enrolling with a token.
#[derive(Clone, Debug)]
pub struct AgentEnrollment {
    pub hostname: String,
    pub os: String,
    pub machine_id: String,
    pub secret_hash: String,
}

/// An enrolled device, and the device it is a clone of when its machine-id was seen before.
#[derive(Clone, Debug)]
pub struct Enrolled {
    pub device: Device,
    pub clone_of: Option<DeviceId>,
}

/// Why an enrollment was refused (all answered alike to the agent, logged apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollRefusal {
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

/// Agents: enrollment tokens, device credentials, the server's signing key.
#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_enrollment_token(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewEnrollmentToken,
    ) -> Result<EnrollmentToken>;
    async fn list_enrollment_tokens(&self, scope: &Scope) -> Result<Vec<EnrollmentToken>>;
    async fn revoke_enrollment_token(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &EnrollmentTokenId,
    ) -> Result<EnrollmentToken>;
    /// Enrolls a device with the token whose hash is given: creates the device in the token's
    /// site (a taken host name gets a numeric suffix), stores its credential, counts the use
    /// and records the event, all in one transaction.
    async fn enroll_device(
        &self,
        audit: &Audit,
        token_hash: &str,
        e: &AgentEnrollment,
    ) -> Result<std::result::Result<Enrolled, EnrollRefusal>>;
    /// The device an agent credential belongs to (by the credential's hash), with its
    /// partner and the last applied inventory sequence number.
    async fn find_agent(&self, secret_hash: &str) -> Result<Option<AgentIdentity>>;
    /// Records a check-in: last seen, agent version, reboot-required, and why the agent's
    /// last inventory report was refused (`None` once one is applied).
    async fn agent_checkin(
        &self,
        device: &DeviceId,
        at: Timestamp,
        version: &str,
        reboot_required: bool,
        inventory_refused: Option<&str>,
    ) -> Result<()>;
    /// The agent state of a device: last seen, version, reboot-required.
    async fn agent_state(&self, scope: &Scope, device: &DeviceId) -> Result<Option<AgentState>>;
    /// Every device of the scope with an enrolled agent, and when it last checked in.
    async fn agent_presence(&self, scope: &Scope) -> Result<Vec<(DeviceId, Option<Timestamp>)>>;
    /// The server's signing key pair (hex): created with `generate` on first use.
    async fn signing_key(
        &self,
        generate: &(dyn Fn() -> (String, String) + Send + Sync),
    ) -> Result<(String, String)>;
    /// Records `public_hex` as the server's signing key (a server keeps the private key in
    /// its key file) and removes a private key kept in the database by earlier versions.
    /// Returns the database's key instead when it is another one: agents trust that one.
    async fn pin_signing_key(&self, public_hex: &str) -> Result<Option<String>>;
}

/// Who an agent credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIdentity {
    pub device_id: DeviceId,
    pub partner_id: PartnerId,
    pub organization_id: OrganizationId,
    pub inventory_seq: i64,
}

/// What the server knows of a device's agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentState {
    #[schema(value_type = Option<String>)]
    pub last_seen: Option<Timestamp>,
    pub agent_version: Option<String>,
    pub reboot_required: bool,
    pub inventory_seq: i64,
    #[schema(value_type = Option<String>)]
    pub clone_of: Option<DeviceId>,
    /// Why the agent's last inventory report was refused (too large, say), as it said at
    /// its last check-in; `None` when its reports are taken.
    pub inventory_refused: Option<String>,
    /// Whether the agent checked in within the server's offline threshold
    /// (`offline_after_minutes`); set by the engine, false from the store.
    pub online: bool,
}
