//! Debian versions: `[epoch:]upstream[-revision]`, validated as dpkg's `parseversion` does
//! and ordered by the `debversion` crate (dpkg's `verrevcmp`: `~` sorts before everything,
//! even the end of the string; letters sort before non-letters; digit runs numerically).

use crate::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug)]
pub struct DebVersion {
    text: String,
    parsed: debversion::Version,
}

impl DebVersion {
    pub fn epoch(&self) -> u32 {
        self.parsed.epoch.unwrap_or(0)
    }

    pub fn upstream(&self) -> &str {
        &self.parsed.upstream_version
    }

    pub fn revision(&self) -> Option<&str> {
        self.parsed.debian_revision.as_deref()
    }
}

impl Version for DebVersion {
    fn parse(s: &str) -> Result<Self, VersionError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(VersionError::new("version string is empty"));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(VersionError::new("version string has embedded spaces"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VersionError::new("epoch in version is not number"));
                }
                if e.parse::<i32>().is_err() {
                    return Err(VersionError::new("epoch in version is too big"));
                }
                if rest.is_empty() {
                    return Err(VersionError::new("nothing after colon in version number"));
                }
                (true, rest)
            }
            None => (false, text),
        };
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => {
                let rev = &rest[i + 1..];
                if rev.is_empty() {
                    return Err(VersionError::new("revision number is empty"));
                }
                (&rest[..i], Some(rev))
            }
            None => (rest, None),
        };
        if upstream.is_empty() {
            return Err(VersionError::new("version number is empty"));
        }
        // dpkg only warns when the upstream part does not start with a digit, and still
        // compares such versions; so does ringfence.
        let upstream_ok = upstream.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'+' | b'~')
                || (b == b'-' && revision.is_some())
                || (b == b':' && epoch)
        });
        if !upstream_ok {
            return Err(VersionError::new("invalid character in version number"));
        }
        if let Some(r) = revision
            && !r.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~'))
        {
            return Err(VersionError::new("invalid character in revision number"));
        }
        let parsed = debversion::Version::from_str(text)
            .map_err(|e| VersionError::new(format!("cannot parse: {e}")))?;
        Ok(Self { text: text.to_owned(), parsed })
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parsed.cmp(&other.parsed)
    }
}

crate::order_by_cmp!(DebVersion);

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, expect: Ordering) {
        let (va, vb) = (DebVersion::parse(a).unwrap(), DebVersion::parse(b).unwrap());
        assert_eq!(va.cmp(&vb), expect, "{a} vs {b}");
        assert_eq!(vb.cmp(&va), expect.reverse(), "{b} vs {a}");
    }

    #[test]
    fn ordering() {
        check("1.0~rc1-1", "1.0-1", Ordering::Less);
        check("1.0-1", "1.0+b1-1", Ordering::Less);
        check("7.64.0-4+deb10u2", "7.64.0-4", Ordering::Greater);
        check("3.0.15-1~deb12u1", "3.0.15-1", Ordering::Less);
        check("1:1.0", "2.0", Ordering::Greater);
        check("1.0a", "1.0+", Ordering::Less);
        check("1.2.3", "1.2.3", Ordering::Equal);
        check("1.01", "1.1", Ordering::Equal);
    }

    #[test]
    fn validation_follows_dpkg() {
        for (bad, reason) in [
            ("", "version string is empty"),
            ("1 .0", "version string has embedded spaces"),
            ("a:1.0", "epoch in version is not number"),
            ("99999999999:1", "epoch in version is too big"),
            ("1:", "nothing after colon in version number"),
            ("1.0-", "revision number is empty"),
            ("-1", "version number is empty"),
            ("1.0_1", "invalid character in version number"),
            ("1.0-a_b", "invalid character in revision number"),
            ("1:2:3", "invalid character in version number"),
        ] {
            if bad == "1:2:3" {
                // An epoch allows a colon in the upstream part (dpkg accepts 1:2:3).
                assert!(DebVersion::parse(bad).is_ok());
                continue;
            }
            assert_eq!(DebVersion::parse(bad).unwrap_err().reason, reason, "{bad:?}");
        }
        assert!(DebVersion::parse("foo").is_ok(), "dpkg only warns about a non-digit start");
    }
}
