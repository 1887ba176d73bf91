//! Agentless network appliances: SNMP credentials (stored sealed), collectors, appliances,
//! partner-wide identification mappings, discovery sweeps and appliance maintenance tasks.

use crate::{Audit, Result, Scope};
use async_trait::async_trait;
use jiff::Timestamp;
use ringfence_model::*;
use serde::Serialize;

/// An SNMP credential as lists show it: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CredentialRecord {
    pub id: String,
    /// None: usable for every organization of the partner.
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<OrganizationId>,
    pub name: String,
    /// `v2c` or `v3`.
    pub version: String,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// An enrolled agent that collects for its site.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CollectorRecord {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    #[schema(value_type = String)]
    pub site_id: SiteId,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub last_seen_at: Option<Timestamp>,
}

/// What is known of an appliance's identity: the raw SNMP strings and the identification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApplianceIdentity {
    pub sys_descr: String,
    pub sys_object_id: String,
    pub sys_name: String,
    /// ENTITY-MIB rows as JSON.
    #[schema(value_type = Object)]
    pub entities: serde_json::Value,
    pub identified: bool,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub serial: Option<String>,
    pub os_cpe: Option<String>,
    pub hardware_cpe: Option<String>,
    pub rule: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApplianceRecord {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub organization: String,
    #[schema(value_type = String)]
    pub site_id: SiteId,
    pub site: String,
    /// `snmp` or `manual`.
    pub source: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    #[schema(value_type = Option<String>)]
    pub collector_id: Option<DeviceId>,
    pub credential_id: Option<String>,
    #[serde(flatten)]
    pub identity: ApplianceIdentity,
    pub poll_minutes: i64,
    #[schema(value_type = Option<String>)]
    pub next_poll_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub last_polled_at: Option<Timestamp>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>)]
    pub last_ok_at: Option<Timestamp>,
    /// For a manual appliance: when a technician last confirmed its firmware.
    #[schema(value_type = Option<String>)]
    pub confirmed_at: Option<Timestamp>,
    pub confirmed_by: Option<String>,
    pub notes: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// A new appliance: a device row (role network_appliance) and its appliance row, together.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAppliance {
    pub site_id: SiteId,
    pub hostname: String,
    pub criticality: Criticality,
    pub internet_facing: bool,
    /// `snmp` or `manual`.
    pub source: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub collector_id: Option<DeviceId>,
    pub credential_id: Option<String>,
    pub identity: ApplianceIdentity,
    pub poll_minutes: i64,
    /// When to poll first (snmp); none for a manual appliance.
    pub next_poll_at: Option<Timestamp>,
    pub notes: Option<String>,
    /// How it came to be known (`manual`, `csv import`, `discovery <scan id>`), for the evidence.
    pub origin: String,
}

/// One poll's outcome for one appliance.
#[derive(Clone, Debug, PartialEq)]
pub struct PollRecord {
    pub device_id: DeviceId,
    pub at: Timestamp,
    /// ok, timeout, unreachable, auth_failed, malformed or error.
    pub outcome: String,
    pub error: Option<String>,
    /// The new identity when the poll answered.
    pub identity: Option<ApplianceIdentity>,
    pub next_poll_at: Timestamp,
}

/// Filters of the appliance list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplianceQuery {
    pub organization_id: Option<OrganizationId>,
    pub product: Option<String>,
    pub firmware: Option<String>,
    pub unidentified: bool,
}

/// A discovery sweep of one range by one collector.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScanRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    #[schema(value_type = String)]
    pub site_id: SiteId,
    #[schema(value_type = String)]
    pub collector_id: DeviceId,
    pub range: String,
    pub port: u16,
    pub rate_per_sec: u32,
    pub credential_ids: Vec<String>,
    /// queued, leased or done.
    pub status: String,
    pub probed: Option<i64>,
    pub answered: Option<i64>,
    pub added: Option<i64>,
    pub detail: String,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<Timestamp>,
}

/// What a finished sweep did.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanResult {
    pub probed: i64,
    pub answered: i64,
    pub added: i64,
    pub detail: String,
}

/// A partner-wide identification mapping, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MappingRecord {
    pub id: String,
    /// The mapping (ringfence_appliance::Mapping) as JSON.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// An appliance's maintenance task: the deployment and the person side of it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskRecord {
    pub deployment: crate::DeploymentRecord,
    pub assignee: Option<String>,
    #[schema(value_type = Option<String>)]
    pub done_at: Option<Timestamp>,
    pub done_by: Option<String>,
    pub note: String,
    pub reopened: i64,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
}

#[async_trait]
pub trait ApplianceStore {
    /// Stores a credential's sealed form with its evidence event (which names it, never its
    /// secret).
    async fn create_credential(
        &self,
        audit: &Audit,
        scope: &Scope,
        c: &CredentialRecord,
        sealed: &str,
    ) -> Result<()>;
    async fn list_credentials(&self, scope: &Scope) -> Result<Vec<CredentialRecord>>;
    /// A credential and its sealed form, for building a collector job.
    async fn sealed_credential(
        &self,
        partner: &PartnerId,
        id: &str,
    ) -> Result<Option<(CredentialRecord, String)>>;
    async fn delete_credential(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()>;

    /// Makes an enrolled device its site's collector.
    async fn add_collector(&self, audit: &Audit, scope: &Scope, device: &DeviceId)
    -> Result<CollectorRecord>;
    async fn remove_collector(&self, audit: &Audit, scope: &Scope, device: &DeviceId) -> Result<()>;
    async fn list_collectors(&self, scope: &Scope) -> Result<Vec<CollectorRecord>>;
    /// The collector record of a device, if it is one (marks it seen at `now`).
    async fn collector_seen(&self, device: &DeviceId, now: Timestamp) -> Result<Option<CollectorRecord>>;

    async fn create_appliance(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewAppliance,
    ) -> Result<ApplianceRecord>;
    /// Creates several appliances in one transaction: all of them, or none.
    async fn create_appliances(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &[NewAppliance],
    ) -> Result<Vec<ApplianceRecord>>;
    async fn list_appliances(&self, scope: &Scope, q: &ApplianceQuery) -> Result<Vec<ApplianceRecord>>;
    async fn get_appliance(&self, scope: &Scope, device: &DeviceId) -> Result<ApplianceRecord>;
    /// The collector's appliances due for a poll, leased until `until`, at most `limit`.
    async fn lease_polls(
        &self,
        collector: &DeviceId,
        now: Timestamp,
        until: Timestamp,
        limit: i64,
    ) -> Result<Vec<ApplianceRecord>>;
    /// Records polls; an evidence event (`appliance.polled`) for each appliance whose
    /// identity or reachability changed. Appliances not of the collector are skipped; the
    /// ones recorded are returned.
    async fn record_polls(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        collector: &DeviceId,
        polls: &[PollRecord],
    ) -> Result<Vec<DeviceId>>;
    /// A technician confirms (or corrects) a manual appliance's identity and firmware.
    async fn confirm_appliance(
        &self,
        audit: &Audit,
        scope: &Scope,
        device: &DeviceId,
        identity: &ApplianceIdentity,
    ) -> Result<ApplianceRecord>;
    /// Sets an appliance's identity after a mapping (`appliance.identified`).
    async fn set_identity(
        &self,
        audit: &Audit,
        scope: &Scope,
        device: &DeviceId,
        identity: &ApplianceIdentity,
    ) -> Result<()>;

    async fn create_mapping(&self, audit: &Audit, scope: &Scope, m: &MappingRecord) -> Result<()>;
    async fn list_mappings(&self, partner: &PartnerId) -> Result<Vec<MappingRecord>>;

    async fn create_scan(&self, audit: &Audit, scope: &Scope, s: &ScanRecord) -> Result<()>;
    async fn list_scans(&self, scope: &Scope) -> Result<Vec<ScanRecord>>;
    /// The sweep `id`, when it is leased to this collector of this partner.
    async fn leased_scan(
        &self,
        partner: &PartnerId,
        collector: &DeviceId,
        id: &str,
    ) -> Result<Option<ScanRecord>>;
    /// The collector's queued sweeps (and leases that ran out), leased until `until`.
    async fn lease_scans(
        &self,
        collector: &DeviceId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ScanRecord>>;
    /// Finishes a leased sweep of this collector (`appliance.scan` event); false when it is
    /// not this collector's or not leased.
    async fn finish_scan(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        collector: &DeviceId,
        id: &str,
        result: &ScanResult,
    ) -> Result<bool>;

    /// Makes an appliance due for its next poll now (after a task is marked done).
    async fn poll_now(&self, device: &DeviceId, now: Timestamp) -> Result<()>;
    async fn list_tasks(&self, scope: &Scope, open_only: bool) -> Result<Vec<TaskRecord>>;
    async fn assign_task(
        &self,
        audit: &Audit,
        scope: &Scope,
        deployment: &str,
        assignee: Option<&str>,
    ) -> Result<()>;
}
