//! Deployments, the signed agent jobs that carry them, and package holds.
//!
//! The store keeps the states and their evidence; the engine decides the moves. Every move of
//! a deployment is one evidence event in the partner's chain, written in the same transaction.
//! Jobs are leased: a lease that runs out without a report makes the job due again with the
//! same idempotency key, so a lost agent or a restarted server never loses a job, and the
//! agent's ledger never runs one twice.

use crate::{Audit, Result};
use async_trait::async_trait;
use ringfence_model::*;
use serde::{Deserialize, Serialize};

/// Deployment statuses that are not over. All but `installed` hold the device (at most one
/// per device, kept by a unique index); an installed one waits for the inventory.
pub const ACTIVE_STATUSES: &[&str] = &["scheduled", "dispatched", "running", "rebooting", "installed"];

/// One package a deployment changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployedPackage {
    /// The update (queue product and version) this package belongs to.
    pub product: String,
    pub version: String,
    pub manager: String,
    pub name: String,
    /// The version installed before ("" when none).
    pub from_version: String,
    /// The exact version the job installs.
    pub to_version: String,
}

/// A signed job to store with its deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub idempotency_key: String,
    pub kind: String,
    pub payload: String,
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewDeployment {
    pub id: String,
    pub organization_id: OrganizationId,
    pub device_id: DeviceId,
    /// install or rollback.
    pub kind: String,
    pub ring: u8,
    pub updates: Vec<DeployedPackage>,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub reboot_required: bool,
    /// The missed deployment this one reschedules, or the one it rolls back.
    pub previous_id: Option<String>,
    /// Why it was scheduled (the planner's explanation, or the technician's reason).
    pub detail: String,
    /// The evidence action: `deployment.scheduled`, `deployment.rescheduled` or
    /// `deployment.rollback_scheduled`.
    pub action: String,
    /// The signed agent job; none for an appliance, whose deployment is a technician's
    /// maintenance task (an `appliance_tasks` row is made with it).
    pub job: Option<NewJob>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeploymentRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    pub kind: String,
    /// scheduled, dispatched, running, rebooting, installed, verified, failed, rolled_back or
    /// missed.
    pub status: String,
    pub ring: u8,
    pub updates: Vec<DeployedPackage>,
    #[schema(value_type = String)]
    pub window_start: Timestamp,
    #[schema(value_type = String)]
    pub window_end: Timestamp,
    pub reboot_required: bool,
    pub previous_id: Option<String>,
    pub detail: String,
    /// The end of the agent's log of the last job (empty in lists unless asked for).
    pub log: String,
    pub boot_id: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub installed_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<Timestamp>,
}

impl DeploymentRecord {
    pub fn is_active(&self) -> bool {
        ACTIVE_STATUSES.contains(&self.status.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentQuery {
    pub organization_id: Option<OrganizationId>,
    pub device_id: Option<DeviceId>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<String>,
    /// install or rollback.
    pub kind: Option<String>,
    /// Deployments that carry this update (product and version).
    pub product: Option<(String, String)>,
    /// Only deployments created at or after this instant.
    pub since: Option<Timestamp>,
    /// Only deployments last changed at or after this instant.
    pub changed_since: Option<Timestamp>,
    /// Read each deployment's agent log too (lists leave it empty unless asked).
    pub with_log: bool,
    /// Newest first, at most this many (0: no limit).
    pub limit: i64,
    /// Rows skipped first (ignored with `product`, whose exact match is checked after reading).
    pub offset: i64,
    /// The order: empty for newest created first; or changed, device, client, kind, ring,
    /// window or status, turned round by `descending`.
    pub sort: String,
    pub descending: bool,
}

/// A move of a deployment to a new status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentChange {
    pub status: String,
    pub detail: Option<String>,
    pub log: Option<String>,
    pub boot_id: Option<String>,
    /// What the evidence event records besides the move (a job report's summary, a reason).
    pub evidence: serde_json::Value,
    /// For an appliance's maintenance task: the technician's word, recorded with the move.
    pub task: Option<TaskNote>,
}

/// What a move means for an appliance's maintenance task.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskNote {
    /// A technician says the firmware is installed (`appliance.task_done`).
    Done { note: String },
    /// The next poll still showed the old firmware: the task is open again
    /// (`appliance.task_reopened`).
    Reopened { seen: String },
}

/// A job handed to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeasedJob {
    pub id: String,
    pub deployment_id: Option<String>,
    pub payload: String,
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub deployment_id: Option<String>,
    pub idempotency_key: String,
    pub kind: String,
    /// queued, leased or done.
    pub state: String,
    pub outcome: Option<String>,
    pub deliveries: i64,
    #[schema(value_type = String)]
    pub window_end: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewHold {
    pub organization_id: OrganizationId,
    pub device_id: DeviceId,
    pub manager: String,
    pub name: String,
    pub product: String,
    pub held_version: String,
    pub blocked_version: String,
    pub deployment_id: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HoldRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    pub hostname: String,
    pub manager: String,
    pub name: String,
    pub product: String,
    pub held_version: String,
    /// The version the hold keeps off the device.
    pub blocked_version: String,
    pub deployment_id: Option<String>,
    pub reason: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub cleared_at: Option<Timestamp>,
    pub cleared_by: Option<String>,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Stores deployments with their jobs and `action` events, in one transaction. A device
    /// that already has a deployment at work (scheduled to rebooting) is skipped (also when another server created it
    /// a moment ago); the ids created are returned.
    async fn create_deployments(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        new: &[NewDeployment],
    ) -> Result<Vec<String>>;
    async fn list_deployments(&self, scope: &Scope, q: &DeploymentQuery) -> Result<Vec<DeploymentRecord>>;
    /// How many deployments `q` matches, by status, whatever its `statuses` say.
    async fn deployment_status_counts(
        &self,
        scope: &Scope,
        q: &DeploymentQuery,
    ) -> Result<Vec<(String, i64)>>;
    async fn get_deployment(&self, scope: &Scope, id: &str) -> Result<DeploymentRecord>;
    /// Moves a deployment that is in one of `from` to `change.status` with its event
    /// (`deployment.<status>`); `None` when it is not in one of `from` (the move happened
    /// already, or another one did), which writes nothing. A move out of the active statuses
    /// closes the deployment's unfinished jobs.
    async fn transition_deployment(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
        from: &[&str],
        change: &DeploymentChange,
    ) -> Result<Option<DeploymentRecord>>;
    /// Leases the device's due jobs (queued, or leased and expired, with a window not over)
    /// until `lease_until`; a scheduled deployment whose job goes out becomes `dispatched`.
    async fn lease_jobs(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        device: &DeviceId,
        lease_until: Timestamp,
    ) -> Result<Vec<LeasedJob>>;
    async fn get_job(&self, partner: &PartnerId, device: &DeviceId, id: &str) -> Result<Option<JobRecord>>;
    /// Records a job's final outcome; false when it had one already.
    async fn finish_job(&self, partner: &PartnerId, id: &str, outcome: &str, at: Timestamp) -> Result<bool>;
    async fn create_holds(&self, audit: &Audit, scope: &Scope, holds: &[NewHold]) -> Result<Vec<HoldRecord>>;
    /// Holds in the scope, newest first; only live ones unless `all`.
    async fn list_holds(&self, scope: &Scope, all: bool) -> Result<Vec<HoldRecord>>;
    async fn clear_hold(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<HoldRecord>;
    /// Marks the device's findings of these products resolved as `updated` since `since` as
    /// resolved by the deployment; returns how many.
    async fn attribute_findings(
        &self,
        scope: &Scope,
        device: &DeviceId,
        deployment: &str,
        products: &[String],
        since: Timestamp,
    ) -> Result<u64>;
}
