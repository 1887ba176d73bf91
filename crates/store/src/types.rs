//! Validated inputs of the store's writes and the shapes of its query results.

use ringfence_model::*;
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct NewOrganization {
    pub name: Name,
    pub notes: String,
}

#[derive(Clone, Debug, Default)]
pub struct OrganizationPatch {
    pub name: Option<Name>,
    pub notes: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewSite {
    pub organization_id: OrganizationId,
    pub name: Name,
    pub time_zone: TimeZoneName,
    pub address: String,
}

#[derive(Clone, Debug, Default)]
pub struct SitePatch {
    pub name: Option<Name>,
    pub time_zone: Option<TimeZoneName>,
    pub address: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewGroup {
    pub organization_id: OrganizationId,
    pub name: Name,
    pub description: String,
}

#[derive(Clone, Debug, Default)]
pub struct GroupPatch {
    pub name: Option<Name>,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewDevice {
    pub site_id: SiteId,
    pub hostname: String,
    pub role: DeviceRole,
    pub os: String,
    pub internet_facing: bool,
    pub holds_sensitive_data: bool,
    pub criticality: Criticality,
    pub time_zone: Option<TimeZoneName>,
    pub group_ids: Vec<DeviceGroupId>,
}

#[derive(Clone, Debug, Default)]
pub struct DevicePatch {
    pub site_id: Option<SiteId>,
    pub hostname: Option<String>,
    pub role: Option<DeviceRole>,
    pub os: Option<String>,
    pub internet_facing: Option<bool>,
    pub holds_sensitive_data: Option<bool>,
    pub criticality: Option<Criticality>,
    /// `Some(None)` clears the device's own zone so it inherits its site's again.
    pub time_zone: Option<Option<TimeZoneName>>,
    pub group_ids: Option<Vec<DeviceGroupId>>,
}

/// Filters and paging of the device list.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    pub organization_id: Option<OrganizationId>,
    pub site_id: Option<SiteId>,
    pub group_id: Option<DeviceGroupId>,
    /// Case-insensitive substring of the host name.
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// The device list as a technician reads it: which client, online or not, how exposed.
#[derive(Clone, Debug, Default)]
pub struct DeviceRowQuery {
    pub devices: DeviceQuery,
    /// `online`, `offline` (an agent not seen since `seen_since`) or `no_agent`; empty for all.
    pub presence: String,
    pub seen_since: Option<Timestamp>,
    /// hostname, client, site, os, last_seen, open or kev.
    pub sort: String,
    pub descending: bool,
}

/// One device of the list, with its client and site by name, its agent's last check-in and
/// its open findings.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub hostname: String,
    pub organization: String,
    pub site: String,
    pub role: String,
    pub os: String,
    pub criticality: String,
    pub has_agent: bool,
    pub last_seen: Option<Timestamp>,
    pub open_findings: i64,
    pub kev_findings: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Number of matches without paging.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub organization_id: Option<OrganizationId>,
    pub password_hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub organization_id: Option<Option<OrganizationId>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewToken {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    pub organization_id: Option<OrganizationId>,
    pub token_hash: String,
    pub expires_at: Option<Timestamp>,
}

/// An evidence event written on its own (not as part of a store write).
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub organization_id: Option<OrganizationId>,
    pub payload: serde_json::Value,
}
