//! NVD CVE API 2.0: the `cve` object (descriptions, CVSS v4.0/v3.1/v3.0/v2 metrics, CISA KEV
//! fields, weaknesses, configurations) normalized into [`Cve`], and API pages read record by
//! record.
//!
//! Configurations keep NVD's structure: a configuration is an AND/OR of nodes, a node an
//! AND/OR of CPE match criteria, either may be negated; a criterion carries `vulnerable`
//! (false marks a platform, not an affected product) and optional version bounds.

use crate::kev::{is_cve_id, strip_position};
use crate::stream::for_each_in_array;
use crate::{FeedError, Skipped};
use jiff::civil::Date;
use ringfence_cpe::Cpe;
use serde::Deserialize;
use std::io::Read;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VulnStatus {
    Received,
    AwaitingAnalysis,
    UndergoingAnalysis,
    Analyzed,
    Modified,
    Deferred,
    Rejected,
    Other(String),
}

impl VulnStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Received => "Received",
            Self::AwaitingAnalysis => "Awaiting Analysis",
            Self::UndergoingAnalysis => "Undergoing Analysis",
            Self::Analyzed => "Analyzed",
            Self::Modified => "Modified",
            Self::Deferred => "Deferred",
            Self::Rejected => "Rejected",
            Self::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "Received" => Self::Received,
            "Awaiting Analysis" => Self::AwaitingAnalysis,
            "Undergoing Analysis" => Self::UndergoingAnalysis,
            "Analyzed" => Self::Analyzed,
            "Modified" => Self::Modified,
            "Deferred" => Self::Deferred,
            "Rejected" => Self::Rejected,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cvss {
    /// "4.0", "3.1", "3.0" or "2.0".
    pub version: String,
    pub source: String,
    /// NVD's own assessment ("Primary"), as opposed to a CNA's ("Secondary").
    pub primary: bool,
    pub vector: String,
    pub base_score: f64,
    pub severity: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub version: String,
    pub inclusive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpeMatch {
    pub vulnerable: bool,
    pub criteria: Cpe,
    pub criteria_text: String,
    pub criteria_id: String,
    pub start: Option<Bound>,
    pub end: Option<Bound>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub operator: Operator,
    pub negate: bool,
    pub matches: Vec<CpeMatch>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    pub operator: Operator,
    pub negate: bool,
    pub nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvdKev {
    pub added: Date,
    pub due: Option<Date>,
    pub required_action: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cve {
    pub id: String,
    pub status: VulnStatus,
    pub published: String,
    pub last_modified: String,
    pub description: String,
    pub cvss: Vec<Cvss>,
    pub kev: Option<NvdKev>,
    pub cwes: Vec<String>,
    pub configurations: Vec<Configuration>,
}

impl Cve {
    /// The score to rank by: CVSS v4.0 where present, else v3.1, v3.0, v2; NVD's own before
    /// a CNA's within a version.
    pub fn best_cvss(&self) -> Option<&Cvss> {
        ["4.0", "3.1", "3.0", "2.0"].iter().find_map(|v| {
            let mut of: Vec<&Cvss> = self.cvss.iter().filter(|c| c.version == *v).collect();
            of.sort_by_key(|c| !c.primary);
            of.first().copied()
        })
    }

    /// Every criterion of every configuration.
    pub fn criteria(&self) -> impl Iterator<Item = &CpeMatch> {
        self.configurations.iter().flat_map(|c| &c.nodes).flat_map(|n| &n.matches)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    id: String,
    #[serde(default)]
    vuln_status: String,
    #[serde(default)]
    published: String,
    #[serde(default)]
    last_modified: String,
    #[serde(default)]
    descriptions: Vec<RawText>,
    #[serde(default)]
    metrics: RawMetrics,
    cisa_exploit_add: Option<String>,
    cisa_action_due: Option<String>,
    #[serde(default)]
    cisa_required_action: String,
    #[serde(default)]
    cisa_vulnerability_name: String,
    #[serde(default)]
    weaknesses: Vec<RawWeakness>,
    #[serde(default)]
    configurations: Vec<RawConfiguration>,
}

#[derive(Deserialize)]
struct RawText {
    lang: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMetrics {
    #[serde(default)]
    cvss_metric_v40: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v31: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v30: Vec<RawMetric>,
    #[serde(default)]
    cvss_metric_v2: Vec<RawMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetric {
    #[serde(default)]
    source: String,
    #[serde(default, rename = "type")]
    kind: String,
    cvss_data: RawCvssData,
    base_severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCvssData {
    version: String,
    vector_string: String,
    base_score: f64,
    base_severity: Option<String>,
}

#[derive(Deserialize)]
struct RawWeakness {
    #[serde(default)]
    description: Vec<RawText>,
}

#[derive(Deserialize)]
struct RawConfiguration {
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    cpe_match: Vec<RawCpeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCpeMatch {
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    match_criteria_id: String,
    version_start_including: Option<String>,
    version_start_excluding: Option<String>,
    version_end_including: Option<String>,
    version_end_excluding: Option<String>,
}

fn operator(s: Option<&str>) -> Result<Operator, String> {
    match s.map(str::to_ascii_uppercase).as_deref() {
        None | Some("OR") => Ok(Operator::Or),
        Some("AND") => Ok(Operator::And),
        Some(other) => Err(format!("unknown configuration operator '{other}'")),
    }
}

fn bound(incl: Option<String>, excl: Option<String>, which: &str) -> Result<Option<Bound>, String> {
    match (incl, excl) {
        (Some(_), Some(_)) => {
            Err(format!("a criterion has both an including and an excluding {which} bound"))
        }
        (Some(v), None) => Ok(Some(Bound { version: v, inclusive: true })),
        (None, Some(v)) => Ok(Some(Bound { version: v, inclusive: false })),
        (None, None) => Ok(None),
    }
}

fn convert(r: RawCve) -> Result<Cve, String> {
    if !is_cve_id(&r.id) {
        return Err("id is not a CVE id".into());
    }
    let mut cvss = Vec::new();
    for (list, version_hint) in [
        (r.metrics.cvss_metric_v40, "4.0"),
        (r.metrics.cvss_metric_v31, "3.1"),
        (r.metrics.cvss_metric_v30, "3.0"),
        (r.metrics.cvss_metric_v2, "2.0"),
    ] {
        for m in list {
            if !(0.0..=10.0).contains(&m.cvss_data.base_score) {
                return Err(format!("CVSS {version_hint} base score is outside 0..10"));
            }
            cvss.push(Cvss {
                version: if m.cvss_data.version.is_empty() {
                    version_hint.to_owned()
                } else {
                    m.cvss_data.version
                },
                primary: m.kind.eq_ignore_ascii_case("primary"),
                source: m.source,
                vector: m.cvss_data.vector_string,
                base_score: m.cvss_data.base_score,
                severity: m.cvss_data.base_severity.or(m.base_severity),
            });
        }
    }
    let kev = match r.cisa_exploit_add {
        Some(added) => Some(NvdKev {
            added: added.parse().map_err(|_| "cisaExploitAdd is not a date".to_owned())?,
            due: r
                .cisa_action_due
                .map(|d| d.parse().map_err(|_| "cisaActionDue is not a date".to_owned()))
                .transpose()?,
            required_action: r.cisa_required_action,
            name: r.cisa_vulnerability_name,
        }),
        None => None,
    };
    let mut configurations = Vec::with_capacity(r.configurations.len());
    for c in r.configurations {
        let mut nodes = Vec::with_capacity(c.nodes.len());
        for n in c.nodes {
            let mut matches = Vec::with_capacity(n.cpe_match.len());
            for m in n.cpe_match {
                let criteria =
                    Cpe::parse(&m.criteria).map_err(|e| format!("unparseable CPE criterion: {}", e.0))?;
                matches.push(CpeMatch {
                    vulnerable: m.vulnerable,
                    criteria,
                    criteria_text: m.criteria,
                    criteria_id: m.match_criteria_id,
                    start: bound(m.version_start_including, m.version_start_excluding, "start")?,
                    end: bound(m.version_end_including, m.version_end_excluding, "end")?,
                });
            }
            nodes.push(Node { operator: operator(n.operator.as_deref())?, negate: n.negate, matches });
        }
        configurations.push(Configuration {
            operator: operator(c.operator.as_deref())?,
            negate: c.negate,
            nodes,
        });
    }
    Ok(Cve {
        status: VulnStatus::parse(&r.vuln_status),
        description: r
            .descriptions
            .iter()
            .find(|d| d.lang == "en")
            .or(r.descriptions.first())
            .map(|d| d.value.clone())
            .unwrap_or_default(),
        cwes: r
            .weaknesses
            .into_iter()
            .flat_map(|w| w.description)
            .map(|d| d.value)
            .filter(|v| v.starts_with("CWE-"))
            .collect(),
        id: r.id,
        published: r.published,
        last_modified: r.last_modified,
        cvss,
        kev,
        configurations,
    })
}

/// Parses one `cve` object.
pub fn parse_record(json: &str) -> Result<Cve, String> {
    let raw: RawCve = serde_json::from_str(json)
        .map_err(|e| format!("malformed CVE record: {}", strip_position(&e.to_string())))?;
    convert(raw)
}

/// The paging fields of an API page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageHeader {
    pub results_per_page: u64,
    pub start_index: u64,
    pub total_results: u64,
    pub timestamp: String,
}

#[derive(Deserialize)]
struct Wrapped {
    cve: RawCve,
}

/// Reads an API page (`{"vulnerabilities": [{"cve": …}, …], …}`), calling `each` for every
/// valid record; malformed ones are counted by reason.
pub fn parse_page(reader: impl Read, each: &mut dyn FnMut(Cve)) -> Result<(PageHeader, Skipped), FeedError> {
    let mut skipped = Skipped::default();
    let (header, found) = for_each_in_array(reader, "vulnerabilities", &mut |raw| {
        let example = || {
            serde_json::from_str::<serde_json::Value>(raw.get())
                .ok()
                .and_then(|v| v["cve"]["id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| raw.get().chars().take(60).collect())
        };
        // One typed pass over the element; the raw text is only looked at again to name a
        // record that failed.
        match serde_json::from_str::<Wrapped>(raw.get()) {
            Ok(w) => match convert(w.cve) {
                Ok(c) => each(c),
                Err(reason) => skipped.add(reason, example()),
            },
            Err(e) if e.to_string().starts_with("missing field `cve`") => {
                skipped.add("an entry of \"vulnerabilities\" has no \"cve\" object", example())
            }
            Err(e) => {
                skipped.add(format!("malformed CVE record: {}", strip_position(&e.to_string())), example())
            }
        }
    })?;
    // The API leaves the array out of a page with no results.
    if !found && !header.contains_key("totalResults") {
        return Err(FeedError::Format(
            "not an NVD CVE API 2.0 page: it has neither \"vulnerabilities\" nor \"totalResults\"".into(),
        ));
    }
    let num = |k: &str| header.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok((
        PageHeader {
            results_per_page: num("resultsPerPage"),
            start_index: num("startIndex"),
            total_results: num("totalResults"),
            timestamp: header.get("timestamp").and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
        },
        skipped,
    ))
}
