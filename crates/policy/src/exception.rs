//! Client-specific exceptions: "keep .NET Framework at 4.8.x", "never update the lab's
//! CAD workstation's GPU driver". An exception names software and a version range; a *pin*
//! keeps the software inside the range (an update that would leave it is held), an
//! *exclude* holds every update of software installed inside the range.

use ringfence_versions::{Scheme, compare};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    Pin,
    Exclude,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Pin => "pin",
            ExceptionKind::Exclude => "exclude",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "pin" => Ok(ExceptionKind::Pin),
            "exclude" => Ok(ExceptionKind::Exclude),
            other => Err(format!("unknown exception kind '{other}': use pin or exclude")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Bound {
    /// `4.8.x`: the version is 4.8 or starts with `4.8.`.
    Prefix(String),
    Op(Ordering, bool, String),
}

/// A version range: `*` (any), `4.8.x`, or constraints joined by commas
/// (`>=4.8, <4.9`; operators `=`, `<`, `<=`, `>`, `>=`).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRange {
    text: String,
    bounds: Vec<Bound>,
}

impl VersionRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() || text == "*" {
            return Ok(VersionRange { text: "*".into(), bounds: Vec::new() });
        }
        if text.len() > 200 {
            return Err("a version range is at most 200 characters".into());
        }
        let mut bounds = Vec::new();
        for part in text.split(',').map(str::trim) {
            let bound = if let Some(prefix) = part.strip_suffix(".x").or_else(|| part.strip_suffix(".*")) {
                if prefix.is_empty() || prefix.contains(['<', '>', '=', ' ']) {
                    return Err(format!("'{part}' is not a version prefix such as 4.8.x"));
                }
                Bound::Prefix(prefix.to_string())
            } else {
                let (op, rest) = [
                    (">=", (Ordering::Greater, true)),
                    ("<=", (Ordering::Less, true)),
                    (">", (Ordering::Greater, false)),
                    ("<", (Ordering::Less, false)),
                    ("=", (Ordering::Equal, true)),
                ]
                .into_iter()
                .find_map(|(p, o)| part.strip_prefix(p).map(|r| (o, r.trim())))
                .ok_or_else(|| {
                    format!("'{part}' is not a constraint: write e.g. '>=4.8, <4.9', '4.8.x' or '*'")
                })?;
                if !rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                    || rest.contains(char::is_whitespace)
                {
                    return Err(format!("'{part}' has no version after its operator"));
                }
                Bound::Op(op.0, op.1, rest.to_string())
            };
            bounds.push(bound);
        }
        Ok(VersionRange { text: text.to_string(), bounds })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` is inside the range, in the given ordering. A version the scheme
    /// cannot order is compared as generic vendor versions.
    pub fn contains(&self, scheme: Scheme, version: &str) -> bool {
        let cmp = |a: &str, b: &str| {
            compare(scheme, a, b).or_else(|_| compare(Scheme::Generic, a, b)).unwrap_or_else(|_| a.cmp(b))
        };
        self.bounds.iter().all(|b| match b {
            Bound::Prefix(p) => {
                let bare = version.split_once(':').map_or(version, |(_, v)| v);
                bare == p
                    || bare.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with(['.', '-', '+', '~']))
            }
            Bound::Op(Ordering::Equal, _, v) => cmp(version, v) == Ordering::Equal,
            Bound::Op(dir, inclusive, v) => {
                let o = cmp(version, v);
                o == *dir || (*inclusive && o == Ordering::Equal)
            }
        })
    }
}

/// An exception as it applies to one organization's updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    pub kind: ExceptionKind,
    /// The software's name as the inventory reports it (case-insensitive).
    pub software: String,
    pub range: VersionRange,
}

impl Exception {
    /// Whether the exception holds an update of `software` from `installed` to `target`.
    pub fn holds(&self, scheme: Scheme, software: &str, installed: &str, target: &str) -> bool {
        if !self.software.eq_ignore_ascii_case(software) {
            return false;
        }
        match self.kind {
            ExceptionKind::Pin => !self.range.contains(scheme, target),
            ExceptionKind::Exclude => installed.is_empty() || self.range.contains(scheme, installed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = VersionRange::parse("4.8.x").unwrap();
        assert!(r.contains(Scheme::Generic, "4.8.1"));
        assert!(r.contains(Scheme::Generic, "4.8"));
        assert!(!r.contains(Scheme::Generic, "4.80"));
        assert!(!r.contains(Scheme::Generic, "4.9.0"));
        let r = VersionRange::parse(">=3.0.11, <3.0.15-1~deb12u1").unwrap();
        assert!(r.contains(Scheme::Deb, "3.0.14-1~deb12u2"));
        assert!(!r.contains(Scheme::Deb, "3.0.15-1~deb12u1"));
        assert!(VersionRange::parse("*").unwrap().contains(Scheme::Deb, "1"));
        for bad in ["~4", ">=", "4.8.x, <<5", ".x"] {
            assert!(VersionRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pins_hold_updates_that_leave_the_range() {
        let pin = Exception {
            kind: ExceptionKind::Pin,
            software: ".NET Framework".into(),
            range: VersionRange::parse("4.8.x").unwrap(),
        };
        assert!(pin.holds(Scheme::Generic, ".net framework", "4.8.0", "4.9.0"));
        assert!(!pin.holds(Scheme::Generic, ".NET Framework", "4.8.0", "4.8.1"));
        assert!(!pin.holds(Scheme::Generic, "7-Zip", "4.8.0", "4.9.0"));
        let ex = Exception {
            kind: ExceptionKind::Exclude,
            software: "nvidia-driver".into(),
            range: VersionRange::parse("*").unwrap(),
        };
        assert!(ex.holds(Scheme::Deb, "nvidia-driver", "525.1", "535.2"));
    }
}
