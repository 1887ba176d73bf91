//! Semantic Versioning 2.0.0 (via the `semver` crate), compared by precedence: build
//! metadata does not order versions (`1.0.0+a` equals `1.0.0+b`).

use crate::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug)]
pub struct SemVersion(semver::Version);

impl Version for SemVersion {
    fn parse(s: &str) -> Result<Self, VersionError> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        semver::Version::parse(t)
            .map(SemVersion)
            .map_err(|e| VersionError::new(format!("not a semantic version: {e}")))
    }
}

impl Ord for SemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_precedence(&other.0)
    }
}

crate::order_by_cmp!(SemVersion);

impl fmt::Display for SemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        SemVersion::parse(a).unwrap().cmp(&SemVersion::parse(b).unwrap())
    }

    #[test]
    fn precedence_per_the_specification() {
        // The chain from semver.org §11.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in chain.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        assert_eq!(cmp("1.0.0+build.1", "1.0.0+build.2"), Ordering::Equal);
        assert_eq!(cmp("v2.1.0", "2.1.0"), Ordering::Equal);
        assert!(SemVersion::parse("1.0").is_err());
        assert!(SemVersion::parse("01.0.0").is_err());
    }
}
