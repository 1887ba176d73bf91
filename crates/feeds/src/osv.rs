//! OSV records (the Open Source Vulnerability schema): affected packages per ecosystem with
//! ranges of `introduced` / `fixed` / `last_affected` / `limit` events, and whether a given
//! version of a package falls in them, compared with the ecosystem's own ordering.
//!
//! Distro ecosystems use the distro's ordering (Debian and Ubuntu: dpkg; Red Hat, AlmaLinux,
//! Rocky Linux and SUSE: rpm); `SEMVER` ranges use semantic versioning. Alpine and language
//! ecosystems use the generic vendor ordering for now (Alpine's own `apk` ordering is still
//! to come). `GIT` ranges name commits and cannot be evaluated against a package version.

use ringfence_versions::{Scheme, VersionError, compare};
use serde::Deserialize;
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    Ecosystem,
    Semver,
    Git,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affected {
    pub ecosystem: String,
    pub name: String,
    pub purl: Option<String>,
    pub ranges: Vec<Range>,
    /// Versions listed one by one.
    pub versions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsvRecord {
    pub id: String,
    pub modified: String,
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    pub summary: String,
    pub affected: Vec<Affected>,
}

#[derive(Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    modified: String,
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    affected: Vec<RawAffected>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

fn event(e: RawEvent) -> Result<Event, String> {
    match (e.introduced, e.fixed, e.last_affected, e.limit) {
        (Some(v), None, None, None) => Ok(Event::Introduced(v)),
        (None, Some(v), None, None) => Ok(Event::Fixed(v)),
        (None, None, Some(v), None) => Ok(Event::LastAffected(v)),
        (None, None, None, Some(v)) => Ok(Event::Limit(v)),
        _ => Err("an event must have exactly one of introduced, fixed, last_affected and limit".into()),
    }
}

/// Parses and validates one OSV record.
pub fn parse(json: &str) -> Result<OsvRecord, String> {
    let raw: RawRecord = serde_json::from_str(json)
        .map_err(|e| format!("malformed OSV record: {}", crate::kev::strip_position(&e.to_string())))?;
    if raw.id.trim().is_empty() {
        return Err("the record has no id".into());
    }
    let mut affected = Vec::with_capacity(raw.affected.len());
    for a in raw.affected {
        let mut ranges = Vec::with_capacity(a.ranges.len());
        for r in a.ranges {
            let kind = match r.kind.as_str() {
                "ECOSYSTEM" => RangeKind::Ecosystem,
                "SEMVER" => RangeKind::Semver,
                "GIT" => RangeKind::Git,
                other => return Err(format!("unknown range type '{other}': use ECOSYSTEM, SEMVER or GIT")),
            };
            let events = r.events.into_iter().map(event).collect::<Result<Vec<_>, _>>()?;
            // OSV schema rule RNG:001: a range needs an introduced event.
            if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                return Err(format!("a {} range has no 'introduced' event", r.kind));
            }
            if events.iter().any(|e| matches!(e, Event::Fixed(_)))
                && events.iter().any(|e| matches!(e, Event::LastAffected(_)))
            {
                return Err("a range must not have both 'fixed' and 'last_affected' events".into());
            }
            ranges.push(Range { kind, events });
        }
        let (ecosystem, name, purl) = match a.package {
            Some(p) => (p.ecosystem, p.name, p.purl),
            None => (String::new(), String::new(), None),
        };
        affected.push(Affected { ecosystem, name, purl, ranges, versions: a.versions });
    }
    Ok(OsvRecord {
        id: raw.id,
        modified: raw.modified,
        withdrawn: raw.withdrawn,
        aliases: raw.aliases,
        summary: raw.summary,
        affected,
    })
}

/// The version ordering of an OSV ecosystem (`Debian:12` → dpkg).
pub fn scheme_for(ecosystem: &str) -> Scheme {
    let base = ecosystem.split(':').next().unwrap_or("");
    match base {
        "Debian" | "Ubuntu" => Scheme::Deb,
        "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Mageia" | "openEuler" => Scheme::Rpm,
        _ => Scheme::Generic,
    }
}

impl Affected {
    /// Whether `version` of this package is affected: listed, or inside a range. `GIT`
    /// ranges are skipped (they name commits, not versions).
    pub fn affects(&self, version: &str) -> Result<bool, VersionError> {
        if self.versions.iter().any(|v| v == version) {
            return Ok(true);
        }
        let eco = scheme_for(&self.ecosystem);
        for r in &self.ranges {
            let scheme = match r.kind {
                RangeKind::Git => continue,
                RangeKind::Semver => Scheme::Semver,
                RangeKind::Ecosystem => eco,
            };
            if in_range(scheme, &r.events, version)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The OSV evaluation: events in version order; `introduced` opens, `fixed` and `limit`
/// close before themselves, `last_affected` closes after itself.
fn in_range(scheme: Scheme, events: &[Event], version: &str) -> Result<bool, VersionError> {
    let cmp = |a: &str, b: &str| -> Result<Ordering, VersionError> {
        if a == "0" {
            return Ok(if b == "0" { Ordering::Equal } else { Ordering::Less });
        }
        compare(scheme, a, b)
    };
    let at = |e: &Event| match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v.clone(),
    };
    let mut sorted: Vec<&Event> = events.iter().collect();
    let mut err = None;
    sorted.sort_by(|a, b| {
        cmp(&at(a), &at(b)).unwrap_or_else(|e| {
            err.get_or_insert(e);
            Ordering::Equal
        })
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut affected = false;
    for e in sorted {
        match e {
            Event::Introduced(v) => {
                if v == "0" || compare(scheme, version, v)? != Ordering::Less {
                    affected = true;
                }
            }
            Event::Fixed(v) | Event::Limit(v) => {
                if compare(scheme, version, v)? != Ordering::Less {
                    affected = false;
                }
            }
            Event::LastAffected(v) => {
                if compare(scheme, version, v)? == Ordering::Greater {
                    affected = false;
                }
            }
        }
    }
    Ok(affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(eco: &str, events: Vec<Event>) -> Affected {
        Affected {
            ecosystem: eco.into(),
            name: "p".into(),
            purl: None,
            ranges: vec![Range { kind: RangeKind::Ecosystem, events }],
            versions: vec![],
        }
    }

    #[test]
    fn debian_ranges_use_dpkg_order() {
        use Event::*;
        // Debian fixes curl by a backport: 7.64.0-4+deb10u2 is fixed although NVD says 7.71.0.
        let a = affected("Debian:10", vec![Introduced("0".into()), Fixed("7.64.0-4+deb10u2".into())]);
        assert!(a.affects("7.64.0-4+deb10u1").unwrap());
        assert!(!a.affects("7.64.0-4+deb10u2").unwrap());
        assert!(!a.affects("7.64.0-4+deb10u3").unwrap());
        assert!(a.affects("7.64.0-4~bpo9+1").unwrap(), "~ sorts before the fix");
    }

    #[test]
    fn introduced_last_affected_and_limit() {
        use Event::*;
        let a = affected("PyPI", vec![Introduced("1.2".into()), LastAffected("1.4".into())]);
        assert!(!a.affects("1.1").unwrap());
        assert!(a.affects("1.2").unwrap());
        assert!(a.affects("1.4").unwrap());
        assert!(!a.affects("1.4.1").unwrap());
        let b = affected(
            "PyPI",
            vec![Introduced("0".into()), Fixed("1.0".into()), Introduced("2.0".into()), Fixed("2.3".into())],
        );
        assert!(
            b.affects("0.9").unwrap()
                && !b.affects("1.5").unwrap()
                && b.affects("2.1").unwrap()
                && !b.affects("2.3").unwrap()
        );
        let c = affected(
            "Red Hat:enterprise_linux:8",
            vec![Introduced("0".into()), Fixed("1:3.0.7-27.el9".into())],
        );
        assert!(c.affects("1:3.0.7-26.el9").unwrap() && !c.affects("1:3.0.7-27.el9").unwrap());
    }
}
