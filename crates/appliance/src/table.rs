//! The curated identification table (`identification.toml`, embedded at build time): loading
//! and checking it, and applying one entry to an observation or to a manual report. Partner
//! mappings live in `mapping`; building CPE text lives in `cpe`.

use std::sync::LazyLock;

use regex::Regex;
use ringfence_cpe::{Cpe, Value};
use serde::Deserialize;

use crate::normalize::{Firmware, Normalize};
use crate::{EntityRow, Observation};

const TABLE: &str = include_str!("../identification.toml");

/// Where a value is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// sysDescr
    Descr,
    /// entPhysicalSoftwareRev
    EntSoftware,
    /// entPhysicalFirmwareRev
    EntFirmware,
    /// entPhysicalModelName
    EntModel,
    /// entPhysicalDescr
    EntDescr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    oid: Option<String>,
    descr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirmware {
    from: Source,
    pattern: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    from: Source,
    pattern: Option<String>,
    name: Option<String>,
    hardware: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    vendor: String,
    product: String,
    aliases: Vec<String>,
    manual_model: Option<String>,
    manual_firmware: Option<String>,
    #[serde(rename = "match")]
    matches: Vec<RawMatch>,
    firmware: Vec<RawFirmware>,
    normalize: Normalize,
    os_cpe: String,
    model: Vec<RawModel>,
    hardware_cpe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    entry: Vec<RawEntry>,
}

#[derive(Debug)]
pub(crate) struct Match {
    pub oid: Option<String>,
    pub descr: Option<Regex>,
}

#[derive(Debug)]
pub(crate) struct FirmwareReader {
    pub from: Source,
    pub pattern: Option<Regex>,
}

#[derive(Debug)]
pub(crate) struct ModelReader {
    pub from: Source,
    pub pattern: Regex,
    pub name: String,
    pub hardware: Option<String>,
}

/// One checked entry of the table.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: String,
    pub vendor: String,
    pub product: String,
    /// Alias keys (see [`vendor_key`]).
    pub aliases: Vec<String>,
    pub manual_model: Option<Regex>,
    pub manual_firmware: Option<Regex>,
    pub matches: Vec<Match>,
    pub firmware: Vec<FirmwareReader>,
    pub normalize: Normalize,
    pub os_cpe: Cpe,
    pub model: Vec<ModelReader>,
    pub hardware_cpe: Option<Cpe>,
}

/// Compares vendor names without case, spaces or punctuation.
pub(crate) fn vendor_key(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn regex(id: &str, what: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("entry '{id}': {what} regex '{pattern}' does not compile: {e}"))
}

/// Whether `oid` is `prefix` or lies under it, on arc boundaries: `1.3.6.1.4.1.99` covers
/// `1.3.6.1.4.1.99.1` but not `1.3.6.1.4.1.999.1`. A leading dot on either side is ignored.
pub fn oid_has_prefix(oid: &str, prefix: &str) -> bool {
    let oid = oid.trim().trim_start_matches('.');
    let prefix = prefix.trim().trim_start_matches('.').trim_end_matches('.');
    if prefix.is_empty() {
        return false;
    }
    match oid.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

/// Whether `s` is a dotted OID (`1.3.6.1.4.1.9`): digits separated by single dots.
pub(crate) fn is_dotted_oid(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    !s.is_empty() && s.split('.').all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

fn template(id: &str, what: &str, text: &str, part: &[&str]) -> Result<Cpe, String> {
    let cpe =
        Cpe::parse(text).map_err(|e| format!("entry '{id}': {what} '{text}' is not a CPE name: {e}"))?;
    let part_ok = part.iter().any(|p| cpe.part().literal().as_deref() == Some(*p));
    if !part_ok {
        return Err(format!("entry '{id}': {what} '{text}' must have part {}", part.join(" or ")));
    }
    Ok(cpe)
}

fn check_entry(raw: RawEntry) -> Result<Entry, String> {
    let id = raw.id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("entry id '{id}' must be lower-case letters, digits and '-'"));
    }
    let mut matches = Vec::new();
    for m in raw.matches {
        if m.oid.is_none() && m.descr.is_none() {
            return Err(format!("entry '{id}': a match needs an oid, a descr regex or both"));
        }
        if let Some(oid) = &m.oid
            && !is_dotted_oid(oid)
        {
            return Err(format!("entry '{id}': match oid '{oid}' is not a dotted OID"));
        }
        let descr = m.descr.as_deref().map(|p| regex(&id, "match descr", p)).transpose()?;
        matches.push(Match { oid: m.oid, descr });
    }
    let firmware = raw
        .firmware
        .into_iter()
        .map(|f| {
            Ok(FirmwareReader {
                from: f.from,
                pattern: f.pattern.as_deref().map(|p| regex(&id, "firmware", p)).transpose()?,
            })
        })
        .collect::<Result<_, String>>()?;
    let os_cpe = template(&id, "os_cpe", &raw.os_cpe, &["o", "a"])?;
    if os_cpe.version() != &Value::Any || os_cpe.values[4] != Value::Any {
        return Err(format!("entry '{id}': os_cpe leaves version and update as '*'; they are filled in"));
    }
    let hardware_cpe =
        raw.hardware_cpe.as_deref().map(|t| template(&id, "hardware_cpe", t, &["h"])).transpose()?;
    if let Some(h) = &hardware_cpe
        && h.product() != &Value::Any
    {
        return Err(format!("entry '{id}': hardware_cpe leaves the product as '*'; the model fills it"));
    }
    let mut model = Vec::new();
    for m in raw.model {
        let pattern = regex(&id, "model", m.pattern.as_deref().unwrap_or(r"^(\S.*)$"))?;
        if m.hardware.is_some() && hardware_cpe.is_none() {
            return Err(format!(
                "entry '{id}': a model reader names a hardware product but there is no hardware_cpe"
            ));
        }
        model.push(ModelReader {
            from: m.from,
            pattern,
            name: m.name.unwrap_or_else(|| "${1}".into()),
            hardware: m.hardware,
        });
    }
    Ok(Entry {
        aliases: raw.aliases.iter().map(|a| vendor_key(a)).filter(|a| !a.is_empty()).collect(),
        manual_model: raw.manual_model.as_deref().map(|p| regex(&id, "manual_model", p)).transpose()?,
        manual_firmware: raw
            .manual_firmware
            .as_deref()
            .map(|p| regex(&id, "manual_firmware", p))
            .transpose()?,
        id,
        vendor: raw.vendor,
        product: raw.product,
        matches,
        firmware,
        normalize: raw.normalize,
        os_cpe,
        model,
        hardware_cpe,
    })
}

/// Parses and checks a table's text.
pub(crate) fn load(text: &str) -> Result<Vec<Entry>, String> {
    let raw: RawTable =
        toml::from_str(text).map_err(|e| format!("the identification table does not parse: {e}"))?;
    let mut ids = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for e in raw.entry {
        if !ids.insert(e.id.clone()) {
            return Err(format!("entry id '{}' appears twice", e.id));
        }
        entries.push(check_entry(e)?);
    }
    Ok(entries)
}

/// The embedded table. It is a constant of the build, loaded and checked by the test suite
/// (`tests::table`), so a failure here is a bug in the repository, not bad input.
pub(crate) static ENTRIES: LazyLock<Vec<Entry>> =
    LazyLock::new(|| load(TABLE).expect("the embedded identification table is checked by the tests"));

/// The value of `field` in the chassis row (class 3) when it has one, else in the first row
/// that has one.
pub(crate) fn entity_value(entities: &[EntityRow], field: fn(&EntityRow) -> &str) -> Option<&str> {
    let has = |e: &&EntityRow| !field(e).trim().is_empty();
    entities
        .iter()
        .filter(|e| e.class == Some(3))
        .find(has)
        .or_else(|| entities.iter().find(has))
        .map(|e| field(e).trim())
}

pub(crate) fn read(obs: &Observation, from: Source) -> Option<&str> {
    match from {
        Source::Descr => Some(obs.sys_descr.trim()).filter(|s| !s.is_empty()),
        Source::EntSoftware => entity_value(&obs.entities, |e| &e.software_rev),
        Source::EntFirmware => entity_value(&obs.entities, |e| &e.firmware_rev),
        Source::EntModel => entity_value(&obs.entities, |e| &e.model_name),
        Source::EntDescr => entity_value(&obs.entities, |e| &e.descr),
    }
}

/// The first capture group of `pattern` in `text`, or the whole match when it has none.
pub(crate) fn capture<'t>(pattern: &Regex, text: &'t str) -> Option<&'t str> {
    let c = pattern.captures(text)?;
    c.get(1).or_else(|| c.get(0)).map(|m| m.as_str())
}

/// A model's display name and hardware CPE product, from one reader and one text.
pub(crate) struct Model {
    pub name: String,
    pub hardware: Option<String>,
}

impl ModelReader {
    pub fn apply(&self, text: &str) -> Option<Model> {
        let c = self.pattern.captures(text.trim())?;
        let mut name = String::new();
        c.expand(&self.name, &mut name);
        let name = name.trim().to_owned();
        if name.is_empty() {
            return None;
        }
        let hardware = self.hardware.as_ref().map(|h| {
            let mut out = String::new();
            c.expand(h, &mut out);
            out.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("_")
        });
        Some(Model { name, hardware: hardware.filter(|h| !h.is_empty()) })
    }
}

impl Entry {
    pub fn matches(&self, obs: &Observation) -> bool {
        self.matches.iter().any(|m| {
            m.oid.as_deref().is_none_or(|p| oid_has_prefix(&obs.sys_object_id, p))
                && m.descr.as_ref().is_none_or(|r| r.is_match(&obs.sys_descr))
        })
    }

    pub fn firmware(&self, obs: &Observation) -> Option<Firmware> {
        self.firmware.iter().find_map(|f| {
            let text = read(obs, f.from)?;
            let text = match &f.pattern {
                Some(p) => capture(p, text)?,
                None => text,
            };
            self.normalize.apply(text)
        })
    }

    pub fn model(&self, obs: &Observation) -> Option<Model> {
        self.model.iter().find_map(|m| m.apply(read(obs, m.from)?))
    }

    /// A typed model: the first reader whose pattern fits, whatever its source; else the text
    /// as typed, without a hardware CPE.
    pub fn manual_model(&self, typed: &str) -> Option<Model> {
        let typed = typed.trim();
        if typed.is_empty() {
            return None;
        }
        Some(
            self.model
                .iter()
                .find_map(|m| m.apply(typed))
                .unwrap_or(Model { name: typed.to_owned(), hardware: None }),
        )
    }
}
