//! Request bodies of the appliance API (`/api/v1/appliances…`, `/api/v1/snmp-credentials`,
//! `/api/v1/collectors`, `/api/v1/network-scans`, `/api/v1/appliance-mappings`,
//! `/api/v1/appliance-tasks`).

use crate::collector::SnmpCredential;
use serde::{Deserialize, Serialize};

/// A new SNMP credential. The secret is sealed at once and never shown again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnmpCredential {
    pub name: String,
    /// Only for this organization; none: for every organization of the partner.
    #[serde(default)]
    pub organization_id: Option<String>,
    pub credential: SnmpCredential,
}

/// Makes an enrolled device its site's network collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCollector {
    pub device_id: String,
}

/// A new appliance: polled over SNMP (`address`, `collector_id`, `credential_id`), or
/// reported by hand (`vendor`, `model`, `firmware`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppliance {
    pub site_id: String,
    /// The device's name in ringfence (unique in the organization).
    pub name: String,
    /// `snmp` or `manual`.
    pub source: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub collector_id: Option<String>,
    #[serde(default)]
    pub credential_id: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub firmware: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// low, medium, high or critical (default high: an appliance guards the network).
    #[serde(default)]
    pub criticality: Option<String>,
    /// Default true: firewalls and VPN gateways face the internet.
    #[serde(default)]
    pub internet_facing: Option<bool>,
    /// Minutes between polls (15 to 10080; default 240).
    #[serde(default)]
    pub poll_minutes: Option<i64>,
}

/// A CSV of manually reported appliances for one organization (columns: name, vendor, model,
/// firmware, site; optional address, serial, notes). All rows or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportAppliances {
    pub organization_id: String,
    pub csv: String,
}

/// A technician confirms a manual appliance's firmware (and model, when it changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmAppliance {
    pub firmware: String,
    #[serde(default)]
    pub model: Option<String>,
}

/// A discovery sweep of a range by one collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScan {
    pub collector_id: String,
    /// An IPv4 CIDR (`192.0.2.0/24`) or `first-last`, at most 4,096 addresses.
    pub range: String,
    /// Default 161.
    #[serde(default)]
    pub port: Option<u16>,
    /// Probes a second, 1 to 1,000 (default 50).
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
    /// Credentials tried in turn (1 to 8).
    pub credential_ids: Vec<String>,
}

/// A partner-wide identification of devices the table does not know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMapping {
    /// The mapping: `sys_object_id_prefix` and/or `descr_contains`, `vendor`, `product`,
    /// optional `model`, `cpe_vendor`, `cpe_product`, `cpe_part`, optional
    /// `hardware_cpe_product`, and where the version is read from.
    #[schema(value_type = Object)]
    pub mapping: serde_json::Value,
}

/// A technician says an appliance task is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDone {
    #[serde(default)]
    pub note: String,
}

/// Who does an appliance task (a user's e-mail or name; none: unassigned).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTask {
    #[serde(default)]
    pub assignee: Option<String>,
}
