//! Agentless network appliances (firewalls, VPN gateways, switches, NAS) that no agent runs
//! on. A site's collector polls them over SNMP and reports an [`Observation`]; this crate
//! turns an observation into an [`Identification`] (vendor, product, model, firmware, and the
//! CPE names NVD uses) with a curated table kept in the repository, or says it is
//! unidentified. Partner mappings ([`Mapping`]) are tried before the table. Technicians may
//! also report appliances by hand ([`identify_manual`]) or in bulk ([`parse_csv`]).
//! Pure: no network, no files, no clock. Storing mappings and appliances is the server's.

mod cpe;
mod csv;
mod mapping;
mod normalize;
mod table;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use csv::{CsvError, CsvErrors, MAX_CSV_BYTES, MAX_CSV_ROWS, ManualAppliance, parse_csv};
pub use mapping::{MAX_MAPPING_FIELD, Mapping, MappingError, VersionSource};
pub use table::oid_has_prefix;

use table::{ENTRIES, Entry, vendor_key};

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

fn identification(
    entry: &Entry,
    firmware: Option<normalize::Firmware>,
    model: Option<table::Model>,
    rule: String,
) -> Identification {
    let os_cpe = firmware.as_ref().and_then(|f| cpe::os_cpe(&entry.os_cpe, f));
    let hardware_cpe = match (&entry.hardware_cpe, model.as_ref().and_then(|m| m.hardware.as_deref())) {
        (Some(template), Some(product)) => cpe::hardware_cpe(template, product),
        _ => None,
    };
    Identification {
        vendor: entry.vendor.clone(),
        product: entry.product.clone(),
        model: model.map(|m| m.name),
        firmware: firmware.map(|f| f.display),
        serial: None,
        os_cpe,
        hardware_cpe,
        rule,
    }
}

/// What `obs` is: the first of `mappings` that covers it (in the order given), else the first
/// table entry that matches; `None` when neither knows it. Mappings that fail
/// [`Mapping::check`] are skipped. The firmware (and so the firmware CPE) is `None` when the
/// version cannot be read, the model (and so the hardware CPE) when it is unknown.
pub fn identify(obs: &Observation, mappings: &[Mapping]) -> Option<Identification> {
    if let Some(found) = mappings.iter().find_map(|m| m.apply(obs)) {
        return Some(found);
    }
    let entry = ENTRIES.iter().find(|e| e.matches(obs))?;
    let mut found =
        identification(entry, entry.firmware(obs), entry.model(obs), format!("table: {}", entry.id));
    found.serial = table::entity_value(&obs.entities, |e| &e.serial).map(str::to_owned);
    Some(found)
}

/// What a technician reported by hand: the table entry whose aliases match `vendor` (without
/// case, spaces or punctuation; "Palo Alto Networks, Inc." matches "Palo Alto Networks").
/// When several entries share the vendor (Cisco IOS XE, ASA and IOS), the first whose model or
/// firmware hint fits wins, else the first without hints; `None` when nothing fits.
pub fn identify_manual(vendor: &str, model: &str, firmware: &str) -> Option<Identification> {
    let key = vendor_key(vendor);
    if key.is_empty() {
        return None;
    }
    let candidates: Vec<&Entry> =
        ENTRIES.iter().filter(|e| e.aliases.iter().any(|a| key.starts_with(a.as_str()))).collect();
    let hinted = |e: &&&Entry| {
        e.manual_model.as_ref().is_some_and(|r| r.is_match(model.trim()))
            || e.manual_firmware.as_ref().is_some_and(|r| r.is_match(firmware.trim()))
    };
    let entry = candidates
        .iter()
        .find(hinted)
        .or_else(|| candidates.iter().find(|e| e.manual_model.is_none() && e.manual_firmware.is_none()))?;
    Some(identification(
        entry,
        entry.normalize.apply(firmware),
        entry.manual_model(model),
        format!("table: {} (manual)", entry.id),
    ))
}
