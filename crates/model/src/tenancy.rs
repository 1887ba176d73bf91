//! The tenancy tree as stored: partner → organization → site → device group → device.
//!
//! Every object below the partner carries its `partner_id` and, below the organization, its
//! `organization_id`, so that every store query can be filtered by the caller's scope
//! without joins.

use crate::{
    Criticality, DeviceGroupId, DeviceId, DeviceRole, EnrollmentTokenId, OrganizationId, PartnerId, SiteId,
    Timestamp,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: OrganizationId,
    pub partner_id: PartnerId,
    pub name: String,
    /// What the technicians should know about this client (hours, contacts, special needs).
    pub notes: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Site {
    pub id: SiteId,
    pub partner_id: PartnerId,
    pub organization_id: OrganizationId,
    pub name: String,
    /// IANA time zone; devices at the site inherit it unless they set their own.
    pub time_zone: String,
    pub address: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceGroup {
    pub id: DeviceGroupId,
    pub partner_id: PartnerId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub description: String,
    /// Number of devices in the group.
    pub device_count: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub id: DeviceId,
    pub partner_id: PartnerId,
    pub organization_id: OrganizationId,
    pub site_id: SiteId,
    pub hostname: String,
    pub role: DeviceRole,
    pub os: String,
    pub internet_facing: bool,
    pub holds_sensitive_data: bool,
    pub criticality: Criticality,
    /// The device's own IANA time zone, when set; `None` means it inherits the site's.
    pub time_zone: Option<String>,
    /// The zone in force: the device's own, else its site's.
    pub effective_time_zone: String,
    /// Groups the device belongs to.
    pub group_ids: Vec<DeviceGroupId>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A token that lets agents enroll devices into one site. Only its hash is stored; it can
/// expire, be limited to a number of uses, and be revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentToken {
    pub id: EnrollmentTokenId,
    pub partner_id: PartnerId,
    pub organization_id: OrganizationId,
    pub site_id: SiteId,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}
