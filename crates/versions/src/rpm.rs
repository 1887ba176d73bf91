//! RPM versions: `[epoch:]version[-release]`, split as rpm's `rpmverParse` splits them and
//! ordered as its `rpmverCmp` orders them (what `rpm.vercmp` answers). Each part is compared
//! with rpm's segment comparison `rpmvercmp` (via the `rpm-version` crate): alphanumeric
//! segments, digits numerically and above letters, `~` sorts before everything, `^` after the
//! base version but before anything else.
//!
//! Not here: rpm's dependency-range rules (`rpmverOverlap`), where a missing release may match
//! any release. This is the total order of two installed or fixed versions.

use crate::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug)]
pub struct RpmVersion {
    text: String,
    /// `0` without a `digits:` prefix or with an empty one, as rpm compares it.
    epoch: String,
    version: String,
    /// `None` without a `-`; `Some("")` for a trailing `-`, which rpm keeps as an empty release.
    release: Option<String>,
}

/// rpm's `rpmvercmp` on one part. The crate's EVR order compares epoch, version and release
/// with it in turn, so an EVR with only a version is that comparison.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    rpm_version::Evr::new("", a, "").cmp(&rpm_version::Evr::new("", b, ""))
}

/// As `rpmverCmp` compares releases: a release, even an empty one, is newer than none.
fn cmp_release(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => rpmvercmp(a, b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

impl Version for RpmVersion {
    /// Accepts every string `rpmverParse` accepts except those with spaces or control
    /// characters, which no package's EVR holds (rpmbuild refuses them) and which on a command
    /// line are a quoting mistake.
    fn parse(s: &str) -> Result<Self, VersionError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(VersionError::new("version string is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(VersionError::new("version string has embedded spaces or control characters"));
        }
        // The epoch is the leading run of digits when a ':' follows it, an empty run meaning 0;
        // otherwise there is no epoch and a ':' is part of the version ("x:1" is a version).
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match text[digits..].strip_prefix(':') {
            Some(rest) if digits > 0 => (&text[..digits], rest),
            Some(rest) => ("0", rest),
            None => ("0", text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        Ok(Self {
            text: text.to_owned(),
            epoch: epoch.to_owned(),
            version: version.to_owned(),
            release: release.map(str::to_owned),
        })
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(&self.epoch, &other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| cmp_release(self.release.as_deref(), other.release.as_deref()))
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
    use Ordering::*;

    /// Each expectation is what `rpm --eval '%{lua: print(rpm.vercmp("A", "B"))}'` prints
    /// (rpm 4.18), checked both ways round.
    fn check(a: &str, b: &str, expect: Ordering) {
        let (va, vb) = (RpmVersion::parse(a).unwrap(), RpmVersion::parse(b).unwrap());
        assert_eq!(va.cmp(&vb), expect, "{a} vs {b}");
        assert_eq!(vb.cmp(&va), expect.reverse(), "{b} vs {a}");
    }

    #[test]
    fn epoch_version_release() {
        check("1:1.0-1", "2.0-1", Greater);
        check("3.0.7-27.el9", "3.0.7-28.el9", Less);
        check("1.0~rc1", "1.0", Less);
        check("1.0^git1", "1.0", Greater);
        check("0:1.0-1", "1.0-1", Equal);
        check("00:1.0", "1.0", Equal);
    }

    #[test]
    fn a_non_numeric_epoch_is_part_of_the_version() {
        check("x:1", "1", Less);
        check("a:1.0", "1.0", Less);
        check("1:1.0", "x:1", Greater);
        check("x:1", "x:1", Equal);
        check("1.0:2", "1.0.2", Equal);
        // An empty epoch is epoch 0.
        check(":1", "0:1", Equal);
        check(":1", "1:1", Less);
    }

    #[test]
    fn an_empty_release_is_a_release() {
        check("1.0-", "1.0-", Equal);
        check("1.0", "1.0-", Less);
        check("1.0-", "1.0-1", Less);
        check("1.0-1", "1.0", Greater);
        check("1.0", "1.0-~1", Less);
        check("1:", "1:0", Less);
        check("-1", "0", Less);
    }

    #[test]
    fn malformed_strings_are_refused_with_a_reason() {
        let reason = |s: &str| RpmVersion::parse(s).unwrap_err().reason;
        assert_eq!(reason(""), "version string is empty");
        assert_eq!(reason("   "), "version string is empty");
        assert_eq!(reason("1.0 2"), "version string has embedded spaces or control characters");
        assert_eq!(reason("1.0\u{7}"), "version string has embedded spaces or control characters");
    }
}
