//! RPM versions: `[epoch:]version[-release]`, ordered as rpm's `rpmvercmp` (via the
//! `rpm-version` crate): alphanumeric segments, digits numerically and above letters, `~`
//! sorts before everything, `^` after the base version but before anything else.

use crate::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug)]
pub struct RpmVersion {
    text: String,
    epoch: String,
    version: String,
    release: String,
}

impl RpmVersion {
    fn evr(&self) -> rpm_version::Evr<'_> {
        rpm_version::Evr::new(self.epoch.as_str(), self.version.as_str(), self.release.as_str())
    }
}

impl Version for RpmVersion {
    fn parse(s: &str) -> Result<Self, VersionError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(VersionError::new("version string is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(VersionError::new("version string has embedded spaces or control characters"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VersionError::new("epoch is not a number"));
                }
                (e, rest)
            }
            None => ("", text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, r),
            None => (rest, ""),
        };
        if version.is_empty() {
            return Err(VersionError::new("version is empty"));
        }
        if rest.ends_with('-') {
            return Err(VersionError::new("release is empty"));
        }
        Ok(Self {
            text: text.to_owned(),
            epoch: epoch.into(),
            version: version.into(),
            release: release.into(),
        })
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.evr().cmp(&other.evr())
    }
}

crate::order_by_cmp!(RpmVersion);

impl fmt::Display for RpmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        RpmVersion::parse(a).unwrap().cmp(&RpmVersion::parse(b).unwrap())
    }

    #[test]
    fn epoch_version_release() {
        assert_eq!(cmp("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(cmp("3.0.7-27.el9", "3.0.7-28.el9"), Ordering::Less);
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0^git1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert!(RpmVersion::parse("").is_err());
        assert!(RpmVersion::parse("x:1").is_err());
        assert!(RpmVersion::parse("1.0-").is_err());
    }
}
