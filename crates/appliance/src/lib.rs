//! Agentless network appliances (firewalls, VPN gateways, switches, NAS) that no agent runs
//! on. A site's collector polls them over SNMP and reports an [`Observation`]; this crate
//! turns an observation into an [`Identification`] (vendor, product, model, firmware, and the
//! CPE names NVD uses) with a curated table kept in the repository, or says it is
//! unidentified. Pure: no network, no files, no clock.

use serde::{Deserialize, Serialize};

/// Longest text kept from one SNMP value (sysDescr is at most 255 octets by the MIB; a
/// misbehaving agent may send more).
pub const MAX_TEXT: usize = 1024;
/// Most ENTITY-MIB rows kept from one appliance (a chassis with its modules).
pub const MAX_ENTITIES: usize = 64;

/// What one SNMP poll of one appliance returned: the system group and the physical entities
/// of ENTITY-MIB. Strings are as the device sent them (lossy UTF-8), cut to [`MAX_TEXT`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// SNMPv2-MIB::sysDescr.0
    pub sys_descr: String,
    /// SNMPv2-MIB::sysObjectID.0, dotted (`1.3.6.1.4.1.12356.101.1.1041`), no leading dot.
    pub sys_object_id: String,
    /// SNMPv2-MIB::sysName.0
    #[serde(default)]
    pub sys_name: String,
    /// ENTITY-MIB::entPhysicalTable rows, in index order.
    #[serde(default)]
    pub entities: Vec<EntityRow>,
}

/// One row of ENTITY-MIB's entPhysicalTable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRow {
    /// entPhysicalIndex
    pub index: u32,
    /// entPhysicalClass (3 chassis, 9 module, 10 port, …), when the device sent it.
    #[serde(default)]
    pub class: Option<i32>,
    /// entPhysicalDescr
    #[serde(default)]
    pub descr: String,
    /// entPhysicalModelName
    #[serde(default)]
    pub model_name: String,
    /// entPhysicalHardwareRev
    #[serde(default)]
    pub hardware_rev: String,
    /// entPhysicalFirmwareRev
    #[serde(default)]
    pub firmware_rev: String,
    /// entPhysicalSoftwareRev
    #[serde(default)]
    pub software_rev: String,
    /// entPhysicalSerialNum
    #[serde(default)]
    pub serial: String,
}

impl Observation {
    /// Cuts every text to [`MAX_TEXT`] and the entity rows to [`MAX_ENTITIES`].
    pub fn bounded(mut self) -> Observation {
        fn cut(s: &mut String) {
            if s.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
        }
        cut(&mut self.sys_descr);
        cut(&mut self.sys_object_id);
        cut(&mut self.sys_name);
        self.entities.truncate(MAX_ENTITIES);
        for e in &mut self.entities {
            for s in [
                &mut e.descr,
                &mut e.model_name,
                &mut e.hardware_rev,
                &mut e.firmware_rev,
                &mut e.software_rev,
                &mut e.serial,
            ] {
                cut(s);
            }
        }
        self
    }
}

/// What an appliance is, as far as the table (or a partner's mapping) can tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identification {
    /// "Fortinet"
    pub vendor: String,
    /// "FortiOS": the firmware product whose version is tracked.
    pub product: String,
    /// "FortiGate 100F", when known.
    pub model: Option<String>,
    /// The firmware version as NVD writes it ("7.0.11", "10.2.9-h1" → "10.2.9" with update
    /// "h1" in the CPE, "17.9.4a").
    pub firmware: Option<String>,
    pub serial: Option<String>,
    /// The firmware CPE with its version filled in
    /// (`cpe:2.3:o:fortinet:fortios:7.0.11:*:*:*:*:*:*:*`); none without a version.
    pub os_cpe: Option<String>,
    /// The hardware CPE for NVD's firmware-and-hardware AND configurations
    /// (`cpe:2.3:h:fortinet:fortigate-100f:-:*:*:*:*:*:*:*`), when the model is known.
    pub hardware_cpe: Option<String>,
    /// Which table entry or mapping matched ("table: fortinet-fortigate", "mapping: <id>").
    pub rule: String,
}
