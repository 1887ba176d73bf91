//! Remediation data: policies, the update catalog, approvals, exceptions and risk decisions.
//! Values are stored as the engine validated them; the `policy` crate gives them meaning.

use crate::{Audit, Result};
use async_trait::async_trait;
use ringfence_model::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A stored policy.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicyRecord {
    pub id: String,
    /// partner, organization, site, group or device.
    pub level: String,
    /// The id of what it is attached to; empty for the partner.
    pub target_id: String,
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<OrganizationId>,
    pub name: String,
    pub priority: i64,
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, Value>,
    pub locked: Vec<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

/// A policy to create, or the new state of one.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyWrite {
    pub name: String,
    pub level: String,
    pub target_id: String,
    pub organization_id: Option<OrganizationId>,
    pub priority: i64,
    pub settings: BTreeMap<String, Value>,
    pub locked: Vec<String>,
}

/// One available update on one device, as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceUpdate {
    pub manager: String,
    pub name: String,
    pub installed: String,
    pub candidate: String,
    pub origin: String,
    /// security, critical, bugfix, feature, driver or firmware.
    pub classification: String,
    pub advisories: Vec<String>,
    /// CVEs the vendor says it fixes.
    pub cves: Vec<String>,
    pub reboot_required: bool,
    /// downgrade, snapshot or none.
    pub rollback: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceUpdateRow {
    #[schema(value_type = String)]
    pub device_id: DeviceId,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub hostname: String,
    #[serde(flatten)]
    pub update: DeviceUpdate,
    /// When this candidate version was first offered to the device.
    #[schema(value_type = String)]
    pub first_seen: Timestamp,
    #[schema(value_type = String)]
    pub reported_at: Timestamp,
}

/// A decision on one update (product → version).
#[derive(Clone, Debug, PartialEq)]
pub struct NewApproval {
    /// `None`: for every organization of the partner.
    pub organization_id: Option<OrganizationId>,
    pub product: String,
    pub version: String,
    /// approved, rejected, deferred or awaiting_second.
    pub decision: String,
    pub defer_until: Option<Timestamp>,
    pub reason: String,
    /// The rule that decided (`policy:<id>:kev`), for decisions made by rule.
    pub rule: Option<String>,
    pub score: Option<f64>,
    pub emergency: bool,
    /// What the decision was made on, recorded in the evidence chain with it.
    pub inputs: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<OrganizationId>,
    pub product: String,
    pub version: String,
    pub decision: String,
    #[schema(value_type = Option<String>)]
    pub defer_until: Option<Timestamp>,
    pub reason: String,
    pub decided_by: String,
    pub rule: Option<String>,
    pub score: Option<f64>,
    pub emergency: bool,
    pub second_approver: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// A halt of one update for every client of the partner (the MSP-wide circuit breaker).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HaltRecord {
    pub id: String,
    pub product: String,
    pub version: String,
    pub reason: String,
    pub halted_by: String,
    #[schema(value_type = String)]
    pub halted_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub released_at: Option<Timestamp>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewException {
    pub organization_id: OrganizationId,
    /// pin or exclude.
    pub kind: String,
    pub software: String,
    pub version_range: String,
    pub owner: String,
    pub reason: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExceptionRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub kind: String,
    pub software: String,
    pub version_range: String,
    pub owner: String,
    pub reason: String,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewRiskDecision {
    pub organization_id: OrganizationId,
    pub cve_id: String,
    pub product: String,
    /// mitigated or risk_accepted.
    pub kind: String,
    /// The compensating control (for `mitigated`).
    pub control: String,
    pub owner: String,
    pub reason: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RiskDecisionRecord {
    pub id: String,
    #[schema(value_type = String)]
    pub organization_id: OrganizationId,
    pub cve_id: String,
    pub product: String,
    pub kind: String,
    pub control: String,
    pub owner: String,
    pub reason: String,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
}

/// One open finding with what the risk score needs of its device and CVE.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueRow {
    pub organization_id: OrganizationId,
    pub device_id: DeviceId,
    pub hostname: String,
    pub cve_id: String,
    pub product: String,
    pub items: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub first_detected: Timestamp,
    pub role: String,
    pub internet_facing: bool,
    pub holds_sensitive_data: bool,
    pub criticality: String,
    pub cvss_score: Option<f64>,
    pub cvss_version: Option<String>,
    pub cvss_vector: Option<String>,
    pub kev: bool,
    pub kev_ransomware: bool,
    pub epss: Option<f64>,
}

#[async_trait]
pub trait RemediationStore: Send + Sync {
    /// Policies visible in the scope: an organization-scoped caller sees the partner's and
    /// their organization's.
    async fn list_policies(&self, scope: &Scope) -> Result<Vec<PolicyRecord>>;
    async fn get_policy(&self, scope: &Scope, id: &str) -> Result<PolicyRecord>;
    async fn create_policy(&self, audit: &Audit, scope: &Scope, new: &PolicyWrite) -> Result<PolicyRecord>;
    async fn update_policy(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
        new: &PolicyWrite,
    ) -> Result<PolicyRecord>;
    async fn delete_policy(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()>;

    /// Replaces a device's available updates; an update keeps its `first_seen` while its
    /// candidate version stays the same.
    async fn replace_device_updates(
        &self,
        partner: &PartnerId,
        device: &DeviceId,
        updates: &[DeviceUpdate],
        at: Timestamp,
    ) -> Result<()>;
    async fn list_device_updates(
        &self,
        scope: &Scope,
        device: Option<&DeviceId>,
    ) -> Result<Vec<DeviceUpdateRow>>;

    /// Records decisions together, each with its evidence event.
    async fn create_approvals(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &[NewApproval],
    ) -> Result<Vec<ApprovalRecord>>;
    /// Newest first: the organization's and the partner-wide ones for an organization scope.
    async fn list_approvals(&self, scope: &Scope, limit: i64) -> Result<Vec<ApprovalRecord>>;
    /// The second approval of an emergency override, by someone other than the first.
    async fn confirm_approval(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<ApprovalRecord>;

    async fn create_exception(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewException,
    ) -> Result<ExceptionRecord>;
    async fn list_exceptions(&self, scope: &Scope) -> Result<Vec<ExceptionRecord>>;
    async fn revoke_exception(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<ExceptionRecord>;

    async fn create_risk_decision(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewRiskDecision,
    ) -> Result<RiskDecisionRecord>;
    async fn list_risk_decisions(&self, scope: &Scope) -> Result<Vec<RiskDecisionRecord>>;
    async fn revoke_risk_decision(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
    ) -> Result<RiskDecisionRecord>;

    /// Open findings in the scope (one organization when given), with device and CVE facts.
    /// Halts an update partner-wide; refused (conflict) while it is already halted.
    async fn create_halt(
        &self,
        audit: &Audit,
        scope: &Scope,
        product: &str,
        version: &str,
        reason: &str,
    ) -> Result<HaltRecord>;
    /// Every halt of the partner, newest first.
    async fn list_halts(&self, scope: &Scope) -> Result<Vec<HaltRecord>>;
    async fn release_halt(&self, audit: &Audit, scope: &Scope, id: &str, reason: &str) -> Result<HaltRecord>;

    async fn queue_findings(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
    ) -> Result<Vec<QueueRow>>;
}
