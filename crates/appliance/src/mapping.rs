//! Partner mappings: a technician's description of a device the table does not know, applied
//! to every appliance of the partner that fits it. Stored by the server as JSON; checked here
//! with [`Mapping::check`] before it is stored. Applying the table lives in `table`.

use regex::{Regex, RegexBuilder};
use ringfence_cpe::Value;
use serde::{Deserialize, Serialize};

use crate::normalize::{Firmware, Update};
use crate::table::{entity_value, is_dotted_oid, oid_has_prefix};
use crate::{Identification, Observation, cpe};

/// Longest text a mapping field may hold.
pub const MAX_MAPPING_FIELD: usize = 200;
/// Compiled-size cap of a mapping's version regex: a partner's regex is outside input.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Where a mapping reads the firmware version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum VersionSource {
    /// ENTITY-MIB entPhysicalSoftwareRev of the chassis row (or the first row with one).
    EntSoftwareRev,
    /// A regex over sysDescr with one capture group: the version.
    DescrRegex { pattern: String },
}

/// A partner's mapping of an appliance the table does not identify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub id: String,
    /// Matches sysObjectID on arc boundaries (`1.3.6.1.4.1.99` covers `1.3.6.1.4.1.99.1`,
    /// not `1.3.6.1.4.1.999`).
    #[serde(default)]
    pub sys_object_id_prefix: Option<String>,
    /// A case-insensitive substring of sysDescr. With a prefix as well, both must match.
    #[serde(default)]
    pub descr_contains: Option<String>,
    pub vendor: String,
    pub product: String,
    /// The model to show; without it, entPhysicalModelName when the device has one.
    #[serde(default)]
    pub model: Option<String>,
    pub cpe_vendor: String,
    pub cpe_product: String,
    /// "o" (operating system / firmware) or "a" (application).
    pub cpe_part: String,
    /// The product of the hardware CPE (`cpe:2.3:h:<cpe_vendor>:<this>:-:…`).
    #[serde(default)]
    pub hardware_cpe_product: Option<String>,
    pub version: VersionSource,
}

/// Why a mapping was refused; names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mapping field '{field}': {message}")]
pub struct MappingError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> MappingError {
    MappingError { field, message: message.into() }
}

fn version_regex(pattern: &str) -> Result<Regex, MappingError> {
    let re = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| err("version.pattern", format!("the regex does not compile: {e}")))?;
    if re.captures_len() < 2 {
        return Err(err(
            "version.pattern",
            "the regex has no capture group: put the version in parentheses, e.g. 'firmware ([0-9.]+)'",
        ));
    }
    Ok(re)
}

impl Mapping {
    /// Checks every field; the first problem found is returned.
    pub fn check(&self) -> Result<(), MappingError> {
        let fields: [(&'static str, Option<&str>, bool); 11] = [
            ("id", Some(&self.id), true),
            ("sys_object_id_prefix", self.sys_object_id_prefix.as_deref(), true),
            ("descr_contains", self.descr_contains.as_deref(), true),
            ("vendor", Some(&self.vendor), true),
            ("product", Some(&self.product), true),
            ("model", self.model.as_deref(), true),
            ("cpe_vendor", Some(&self.cpe_vendor), true),
            ("cpe_product", Some(&self.cpe_product), true),
            ("cpe_part", Some(&self.cpe_part), true),
            ("hardware_cpe_product", self.hardware_cpe_product.as_deref(), true),
            (
                "version.pattern",
                match &self.version {
                    VersionSource::DescrRegex { pattern } => Some(pattern),
                    VersionSource::EntSoftwareRev => None,
                },
                false,
            ),
        ];
        for (field, value, trimmed) in fields {
            let Some(value) = value else { continue };
            if value.trim().is_empty() {
                return Err(err(field, "is empty: fill it in or leave it out"));
            }
            if value.chars().count() > MAX_MAPPING_FIELD {
                return Err(err(field, format!("is longer than {MAX_MAPPING_FIELD} characters: shorten it")));
            }
            if value.chars().any(char::is_control) {
                return Err(err(field, "contains a control character: remove it"));
            }
            if trimmed && value.trim() != value {
                return Err(err(field, "has leading or trailing spaces: remove them"));
            }
        }
        if self.sys_object_id_prefix.is_none() && self.descr_contains.is_none() {
            return Err(err(
                "sys_object_id_prefix",
                "a mapping needs sys_object_id_prefix, descr_contains or both, to say which devices it covers",
            ));
        }
        if let Some(p) = &self.sys_object_id_prefix
            && !is_dotted_oid(p)
        {
            return Err(err(
                "sys_object_id_prefix",
                format!("'{p}' is not a dotted OID such as 1.3.6.1.4.1.99999"),
            ));
        }
        if !matches!(self.cpe_part.as_str(), "o" | "a") {
            return Err(err(
                "cpe_part",
                format!("'{}' is not a firmware part: use 'o' or 'a'", self.cpe_part),
            ));
        }
        for (field, value) in
            [("cpe_vendor", Some(&self.cpe_vendor)), ("cpe_product", Some(&self.cpe_product))]
                .into_iter()
                .chain([("hardware_cpe_product", self.hardware_cpe_product.as_ref())])
        {
            let Some(value) = value else { continue };
            if value.chars().any(|c| c.is_whitespace() || matches!(c, '*' | '?')) {
                return Err(err(
                    field,
                    format!(
                        "'{value}' is not a CPE name part: no spaces or wildcards; NVD writes e.g. 'netbox_os'"
                    ),
                ));
            }
        }
        if cpe::template(&self.cpe_part, &self.cpe_vendor, Some(&self.cpe_product)).is_none() {
            return Err(err(
                "cpe_product",
                "the firmware CPE built from cpe_vendor and cpe_product is not valid",
            ));
        }
        if let VersionSource::DescrRegex { pattern } = &self.version {
            version_regex(pattern)?;
        }
        Ok(())
    }

    /// Whether the mapping covers `obs`. Both matchers, when given, must hold.
    pub fn matches(&self, obs: &Observation) -> bool {
        if self.sys_object_id_prefix.is_none() && self.descr_contains.is_none() {
            return false;
        }
        self.sys_object_id_prefix.as_deref().is_none_or(|p| oid_has_prefix(&obs.sys_object_id, p))
            && self
                .descr_contains
                .as_deref()
                .is_none_or(|d| obs.sys_descr.to_lowercase().contains(&d.to_lowercase()))
    }

    /// The identification of `obs` by this mapping; `None` when the mapping does not cover
    /// it or does not pass [`Mapping::check`].
    pub(crate) fn apply(&self, obs: &Observation) -> Option<Identification> {
        if !self.matches(obs) || self.check().is_err() {
            return None;
        }
        let version = match &self.version {
            VersionSource::EntSoftwareRev => {
                entity_value(&obs.entities, |e| &e.software_rev).map(str::to_owned)
            }
            VersionSource::DescrRegex { pattern } => {
                let re = version_regex(pattern).ok()?;
                re.captures(&obs.sys_descr).and_then(|c| c.get(1)).map(|m| m.as_str().trim().to_owned())
            }
        }
        .filter(|v| !v.is_empty());
        let firmware = version.map(|v| Firmware { display: v.clone(), version: v, update: Update::Any });
        let template = cpe::template(&self.cpe_part, &self.cpe_vendor, Some(&self.cpe_product))?;
        let os_cpe = firmware.as_ref().and_then(|f| cpe::os_cpe(&template, f));
        let model =
            self.model.clone().or_else(|| entity_value(&obs.entities, |e| &e.model_name).map(str::to_owned));
        let hardware_cpe = match (&model, &self.hardware_cpe_product) {
            (Some(_), Some(product)) => cpe::template("h", &self.cpe_vendor, None).and_then(|mut t| {
                t.values[3] = Value::Na;
                cpe::hardware_cpe(&t, product)
            }),
            _ => None,
        };
        Some(Identification {
            vendor: self.vendor.clone(),
            product: self.product.clone(),
            model,
            firmware: firmware.map(|f| f.display),
            serial: entity_value(&obs.entities, |e| &e.serial).map(str::to_owned),
            os_cpe,
            hardware_cpe,
            rule: format!("mapping: {}", self.id),
        })
    }
}
