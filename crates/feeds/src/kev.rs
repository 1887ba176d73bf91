//! The CISA Known Exploited Vulnerabilities catalog (JSON): which CVEs are exploited in the
//! wild, since when, by when federal agencies must remediate, and whether ransomware uses them.

use crate::stream::for_each_in_array;
use crate::{FeedError, Skipped};
use jiff::civil::Date;
use serde::Deserialize;
use std::io::Read;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KevEntry {
    pub cve_id: String,
    pub vendor_project: String,
    pub product: String,
    pub name: String,
    pub date_added: Date,
    pub due_date: Date,
    pub required_action: String,
    /// `knownRansomwareCampaignUse` is "Known".
    pub ransomware: bool,
    pub notes: String,
    pub cwes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(rename = "cveID")]
    cve_id: String,
    #[serde(default)]
    vendor_project: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    vulnerability_name: String,
    date_added: String,
    due_date: String,
    #[serde(default)]
    required_action: String,
    #[serde(default)]
    known_ransomware_campaign_use: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    cwes: Vec<String>,
}

/// The catalog's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KevCatalog {
    pub version: String,
    pub released: String,
    pub count: Option<u64>,
}

pub fn is_cve_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else { return false };
    let Some((year, num)) = rest.split_once('-') else { return false };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && num.len() >= 4
        && num.bytes().all(|b| b.is_ascii_digit())
}

fn date(field: &str, s: &str) -> Result<Date, String> {
    s.parse::<Date>().map_err(|_| format!("{field} is not a date (YYYY-MM-DD)"))
}

fn convert(r: Raw) -> Result<KevEntry, String> {
    if !is_cve_id(&r.cve_id) {
        return Err("cveID is not a CVE id".into());
    }
    Ok(KevEntry {
        date_added: date("dateAdded", &r.date_added)?,
        due_date: date("dueDate", &r.due_date)?,
        ransomware: r.known_ransomware_campaign_use.eq_ignore_ascii_case("known"),
        cve_id: r.cve_id,
        vendor_project: r.vendor_project,
        product: r.product,
        name: r.vulnerability_name,
        required_action: r.required_action,
        notes: r.notes,
        cwes: r.cwes,
    })
}

/// Reads the catalog, calling `each` for every valid entry; malformed entries are counted in
/// the returned `Skipped`.
pub fn parse(reader: impl Read, each: &mut dyn FnMut(KevEntry)) -> Result<(KevCatalog, Skipped), FeedError> {
    let mut skipped = Skipped::default();
    let (header, found) = for_each_in_array(
        reader,
        "vulnerabilities",
        &mut |raw| match serde_json::from_str::<Raw>(raw.get()) {
            Ok(r) => {
                let id = r.cve_id.clone();
                match convert(r) {
                    Ok(e) => each(e),
                    Err(reason) => skipped.add(reason, id),
                }
            }
            Err(e) => skipped.add(
                format!("malformed KEV entry: {}", strip_position(&e.to_string())),
                raw.get().chars().take(60).collect::<String>(),
            ),
        },
    )?;
    if !found {
        return Err(FeedError::Format("the KEV catalog has no \"vulnerabilities\" array".into()));
    }
    let text = |k: &str| header.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let catalog = KevCatalog {
        version: text("catalogVersion"),
        released: text("dateReleased"),
        count: header.get("count").and_then(serde_json::Value::as_u64),
    };
    Ok((catalog, skipped))
}

pub(crate) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
