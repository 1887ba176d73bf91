//! The risk score of a finding: 0 to 100 points, the sum of named factors, each shown with
//! the fact it came from, and the SSVC decision derived from the same facts.
//!
//! | factor | points |
//! |---|---|
//! | severity | CVSS base score × 4 (v4.0 when present, else v3.x; 20 when there is none) — up to 40 |
//! | exploitation | in CISA KEV: 30, and 5 more when used in ransomware; else EPSS probability × 25 |
//! | exposure | internet-facing 10, holds sensitive data 5, domain controller 5 |
//! | criticality | low 0, medium 3, high 6, critical 10 |
//! | prevalence | share of the fleet with the finding × 5 |
//!
//! SSVC decision points are derived as follows. Exploitation: active when in KEV, PoC when
//! EPSS ≥ 0.1 (exploit code is what drives EPSS that high), else none. Automatable: the CVSS
//! vector is network-reachable with no privileges and no user interaction. Technical impact:
//! total when confidentiality, integrity and availability are all High (or, without a
//! vector, a base score of 9.0 or more). Mission and well-being: from the device's
//! criticality, exposure and role (below).

use crate::ssvc::{Decision, Exploitation, MissionImpact, TechnicalImpact, decide};
use serde::Serialize;

/// A CVSS base score with its version and vector, as NVD publishes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cvss {
    pub version: String,
    pub score: f64,
    pub vector: Option<String>,
}

/// What is known of the vulnerability.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VulnFacts {
    /// Every CVSS the record carries; v4.0 is preferred, then the newest v3.
    pub cvss: Vec<Cvss>,
    pub epss: Option<f64>,
    pub kev: bool,
    pub kev_ransomware: bool,
}

/// What is known of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeviceFacts {
    pub internet_facing: bool,
    pub holds_sensitive_data: bool,
    pub domain_controller: bool,
    /// 0 low, 1 medium, 2 high, 3 critical.
    pub criticality: u8,
}

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    pub name: &'static str,
    /// The fact, as a technician reads it ("CVSS 4.0 9.3", "in CISA KEV").
    pub fact: String,
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskScore {
    /// 0 to 100, rounded to one decimal.
    pub score: f64,
    pub factors: Vec<Factor>,
    pub ssvc: Decision,
    pub exploitation: Exploitation,
    pub automatable: bool,
    pub technical_impact: TechnicalImpact,
    pub mission_impact: MissionImpact,
}

/// The CVSS the score uses: v4.0 when present, else the newest v3.x, else any.
pub fn preferred_cvss(all: &[Cvss]) -> Option<&Cvss> {
    let rank = |c: &Cvss| match c.version.as_str() {
        "4.0" => 4,
        "3.1" => 3,
        "3.0" => 2,
        _ => 1,
    };
    all.iter().filter(|c| c.score.is_finite() && (0.0..=10.0).contains(&c.score)).max_by_key(|c| rank(c))
}

fn metric<'a>(vector: &'a str, name: &str) -> Option<&'a str> {
    vector.split('/').find_map(|part| part.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
}

/// Network-reachable, no privileges, no user interaction (v3 `UI:N`, v4 `UI:N`).
fn automatable(c: Option<&Cvss>) -> bool {
    c.and_then(|c| c.vector.as_deref()).is_some_and(|v| {
        metric(v, "AV") == Some("N") && metric(v, "PR") == Some("N") && metric(v, "UI") == Some("N")
    })
}

fn technical_impact(c: Option<&Cvss>) -> TechnicalImpact {
    let total = match c {
        Some(c) => match c.vector.as_deref() {
            Some(v) if c.version == "4.0" => ["VC", "VI", "VA"].iter().all(|m| metric(v, m) == Some("H")),
            Some(v) => ["C", "I", "A"].iter().all(|m| metric(v, m) == Some("H")),
            None => c.score >= 9.0,
        },
        None => false,
    };
    if total { TechnicalImpact::Total } else { TechnicalImpact::Partial }
}

/// High: a critical device, a domain controller, or a high-criticality device that is
/// internet-facing or holds sensitive data. Medium: a high-criticality device, or a medium
/// one that is internet-facing or holds sensitive data. Low otherwise.
fn mission_impact(d: &DeviceFacts) -> MissionImpact {
    let exposed = d.internet_facing || d.holds_sensitive_data;
    if d.criticality >= 3 || d.domain_controller || (d.criticality == 2 && exposed) {
        MissionImpact::High
    } else if d.criticality == 2 || (d.criticality == 1 && exposed) {
        MissionImpact::Medium
    } else {
        MissionImpact::Low
    }
}

/// Scores one finding on one device; `prevalence` is the share of the fleet (0 to 1) that
/// has the same finding.
pub fn score(v: &VulnFacts, d: &DeviceFacts, prevalence: f64) -> RiskScore {
    let mut factors = Vec::new();
    let (score, parts) =
        work_out(v, d, prevalence, |name, fact, points| factors.push(Factor { name, fact: fact(), points }));
    RiskScore { score, factors, ..parts }
}

/// The score and SSVC decision alone, with the same arithmetic as [`score`] but without the
/// explanation: what ranking a whole fleet's findings needs (the explanation is worked out
/// for the findings that are shown).
pub fn quick_score(v: &VulnFacts, d: &DeviceFacts, prevalence: f64) -> (f64, Decision) {
    let (score, parts) = work_out(v, d, prevalence, |_, _, _| {});
    (score, parts.ssvc)
}

/// Adds up the factors, handing each to `factor` with a closure that writes its fact.
fn work_out(
    v: &VulnFacts,
    d: &DeviceFacts,
    prevalence: f64,
    mut factor: impl FnMut(&'static str, &dyn Fn() -> String, f64),
) -> (f64, RiskScore) {
    let mut total = 0.0;
    let mut add = |name: &'static str, fact: &dyn Fn() -> String, points: f64| {
        total += points;
        factor(name, fact, points);
    };
    let cvss = preferred_cvss(&v.cvss);
    match cvss {
        Some(c) => add("severity", &|| format!("CVSS {} {:.1}", c.version, c.score), c.score * 4.0),
        None => add("severity", &|| "no CVSS score: counted as medium".into(), 20.0),
    }
    let epss = v.epss.filter(|e| e.is_finite()).map(|e| e.clamp(0.0, 1.0));
    if v.kev {
        add("exploitation", &|| "in CISA KEV (exploited in the wild)".into(), 30.0);
        if v.kev_ransomware {
            add("exploitation", &|| "used in ransomware campaigns".into(), 5.0);
        }
    } else if let Some(e) = epss {
        add(
            "exploitation",
            &|| format!("EPSS {:.1}% chance of exploitation in 30 days", e * 100.0),
            e * 25.0,
        );
    }
    if d.internet_facing {
        add("exposure", &|| "internet-facing".into(), 10.0);
    }
    if d.holds_sensitive_data {
        add("exposure", &|| "holds sensitive data".into(), 5.0);
    }
    if d.domain_controller {
        add("exposure", &|| "domain controller".into(), 5.0);
    }
    let (label, points) = match d.criticality {
        0 => ("low", 0.0),
        1 => ("medium", 3.0),
        2 => ("high", 6.0),
        _ => ("critical", 10.0),
    };
    add("criticality", &|| format!("{label} criticality"), points);
    let share = if prevalence.is_finite() { prevalence.clamp(0.0, 1.0) } else { 0.0 };
    if share > 0.0 {
        add("prevalence", &|| format!("on {:.0}% of the fleet", share * 100.0), share * 5.0);
    }
    let exploitation = if v.kev {
        Exploitation::Active
    } else if epss.is_some_and(|e| e >= 0.1) {
        Exploitation::Poc
    } else {
        Exploitation::None
    };
    let automatable = automatable(cvss);
    let technical_impact = technical_impact(cvss);
    let mission_impact = mission_impact(d);
    let score = (total.min(100.0) * 10.0).round() / 10.0;
    let parts = RiskScore {
        score,
        factors: Vec::new(),
        ssvc: decide(exploitation, automatable, technical_impact, mission_impact),
        exploitation,
        automatable,
        technical_impact,
        mission_impact,
    };
    (score, parts)
}
