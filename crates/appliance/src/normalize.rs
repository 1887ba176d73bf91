//! Firmware version text, as a device or a technician writes it, turned into the version (and
//! update) NVD writes in its CPE names. Each normalization finds the version inside the text
//! itself, so the same one serves an SNMP value ("FortiGate-100F v7.0.11,build0489") and a
//! typed one ("7.0.11"). It knows nothing about CPE escaping: `cpe` does that.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

/// A normalized firmware version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// What the identification shows ("10.2.9-h1", "22.7R2.3", "17.9.4a").
    pub display: String,
    /// The CPE version attribute ("10.2.9", "22.7", "17.9.4a").
    pub version: String,
    /// The CPE update attribute.
    pub update: Update,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// `*`: the vendor has no update attribute in NVD's names.
    Any,
    /// `-`: the vendor uses the update attribute and this release has none.
    Na,
    Text(String),
}

/// The normalizations the table may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// The first dotted number (`v7.0.11,build0489` → `7.0.11`).
    Dotted,
    /// `10.2.9-h1` → version `10.2.9`, update `h1`; `10.2.9` → update `-`.
    PanOs,
    /// `17.09.04a` → `17.9.4a`; `03.11.03.E` → `3.11.3e`: leading zeros dropped per part.
    CiscoIosXe,
    /// `15.2(7)E4` kept as written; NVD keeps the parentheses (escaped in the CPE).
    CiscoIos,
    /// `9.16(4)19` → `9.16.4.19`.
    CiscoAsa,
    /// `22.7R2.3` → version `22.7`, update `r2.3`.
    Ivanti,
    /// `7.0.1-5035-R2007` → `7.0.1-5035`; `6.5.4.4-44n` kept.
    Sonicos,
    /// `NS13.1: Build 49.13.nc` or `13.1-49.13` → `13.1-49.13`.
    Netscaler,
    /// `v2.0.9-hotfix.7.5622731.230615.0857` → `2.0.9-hotfix.7`.
    Edgeos,
    /// `FL.10.10.1010` → `10.10.1010`.
    AosCx,
    /// `DSM 7.2.1-69057 Update 5` → `7.2.1-69057`.
    Synology,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a normalization regex is a constant checked by the tests")
}

static DOTTED: LazyLock<Regex> = LazyLock::new(|| re(r"[0-9]+(?:\.[0-9]+)+"));
static PAN_OS: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)([0-9]+(?:\.[0-9]+){1,3})(?:-(h[0-9]+))?"));
static IOS_XE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)([0-9]+)\.([0-9]+)\.([0-9]+)(?:\.?([a-z]{1,3}[0-9]*))?"));
static IOS: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)[0-9]+\.[0-9]+\([0-9]+[a-z]?\)[a-z]*[0-9]*[a-z]?"));
static ASA: LazyLock<Regex> = LazyLock::new(|| re(r"([0-9]+)\.([0-9]+)\(([0-9]+)\)(?:\.?([0-9]+))?"));
static IVANTI: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)([0-9]+\.[0-9]+)(?:\s*R([0-9]+(?:\.[0-9]+)*))?"));
static SONICOS: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)[0-9]+(?:\.[0-9]+)+(?:-[0-9]+[a-z]*)?[a-z]?"));
static NETSCALER: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)([0-9]+\.[0-9]+)(?::\s*build\s*|\s*-\s*|\s+build\s+|\s+)([0-9]+\.[0-9]+)"));
static EDGEOS: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)([0-9]+\.[0-9]+\.[0-9]+)(-hotfix\.[0-9]+)?"));
static AOS_CX: LazyLock<Regex> = LazyLock::new(|| re(r"(?:\b[A-Z]{2}\.)?([0-9]+\.[0-9]+\.[0-9]+)"));
static SYNOLOGY: LazyLock<Regex> = LazyLock::new(|| re(r"([0-9]+\.[0-9]+(?:\.[0-9]+)?)(-[0-9]+)?"));

fn plain(version: String, update: Update) -> Option<Firmware> {
    Some(Firmware { display: version.clone(), version, update })
}

/// Drops the leading zeros of a numeric part ("09" → "9", "00" → "0").
fn strip_zeros(part: &str) -> &str {
    let t = part.trim_start_matches('0');
    if t.is_empty() { "0" } else { t }
}

impl Normalize {
    /// The version inside `text`, or `None` when there is none this normalization recognises.
    pub fn apply(self, text: &str) -> Option<Firmware> {
        let text = text.trim();
        match self {
            Normalize::Dotted => plain(DOTTED.find(text)?.as_str().to_owned(), Update::Any),
            Normalize::PanOs => {
                let c = PAN_OS.captures(text)?;
                let version = c[1].to_owned();
                match c.get(2) {
                    Some(h) => {
                        let h = h.as_str().to_ascii_lowercase();
                        Some(Firmware { display: format!("{version}-{h}"), version, update: Update::Text(h) })
                    }
                    None => plain(version, Update::Na),
                }
            }
            Normalize::CiscoIosXe => {
                let c = IOS_XE.captures(text)?;
                let suffix = c.get(4).map_or(String::new(), |s| s.as_str().to_ascii_lowercase());
                plain(
                    format!("{}.{}.{}{suffix}", strip_zeros(&c[1]), strip_zeros(&c[2]), strip_zeros(&c[3])),
                    Update::Any,
                )
            }
            Normalize::CiscoIos => {
                let m = IOS.find(text)?.as_str();
                Some(Firmware { display: m.to_owned(), version: m.to_ascii_lowercase(), update: Update::Any })
            }
            Normalize::CiscoAsa => {
                let c = ASA.captures(text)?;
                let mut version = format!("{}.{}.{}", &c[1], &c[2], &c[3]);
                if let Some(interim) = c.get(4) {
                    version.push('.');
                    version.push_str(interim.as_str());
                }
                plain(version, Update::Any)
            }
            Normalize::Ivanti => {
                let c = IVANTI.captures(text)?;
                let version = c[1].to_owned();
                match c.get(2) {
                    Some(r) => Some(Firmware {
                        display: format!("{version}R{}", r.as_str()),
                        version,
                        update: Update::Text(format!("r{}", r.as_str())),
                    }),
                    None => plain(version, Update::Na),
                }
            }
            Normalize::Sonicos => plain(SONICOS.find(text)?.as_str().to_ascii_lowercase(), Update::Any),
            Normalize::Netscaler => {
                let c = NETSCALER.captures(text)?;
                plain(format!("{}-{}", &c[1], &c[2]), Update::Any)
            }
            Normalize::Edgeos => {
                let c = EDGEOS.captures(text)?;
                let hotfix = c.get(2).map_or(String::new(), |h| h.as_str().to_ascii_lowercase());
                plain(format!("{}{hotfix}", &c[1]), Update::Any)
            }
            Normalize::AosCx => plain(AOS_CX.captures(text)?[1].to_owned(), Update::Any),
            Normalize::Synology => {
                let c = SYNOLOGY.captures(text)?;
                plain(format!("{}{}", &c[1], c.get(2).map_or("", |b| b.as_str())), Update::Any)
            }
        }
    }
}
