//! The generic dotted scheme for vendor versions, as NVD ranges carry them (1.2.3a,
//! 2023.10.1, 23.003.20215, 7.2.4-build1396, 9.1(2)).
//!
//! A version is split into segments at every non-alphanumeric character and at every
//! boundary between digits and letters; segments compare left to right:
//! - two numbers compare numerically (any length; leading zeros do not count);
//! - two words compare case-insensitively, except that the pre-release words (`dev`,
//!   `snapshot`, `alpha`, `a`, `beta`, `b`, `pre`, `preview`, `rc`, `c`) order among
//!   themselves in that order and before any other word;
//! - a number orders after a word (`1.0.1` > `1.0a`);
//! - when one version runs out, the rest of the other decides: only zeros means equal
//!   (`1.0` = `1.0.0`); a pre-release word next means the longer one is older
//!   (`2.0-rc1` < `2.0`); anything else means it is newer (`1.0.2a` > `1.0.2`,
//!   `2.0.1` > `2.0`).
//!
//! A single letter glued to a number (`1.0.2a`) is a patch letter, so it orders after the
//! bare number; the same letter as a separate word after a separator (`1.0-a1`) is a
//! pre-release marker.

use crate::{Version, VersionError};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Digits without leading zeros ("" for zero).
    Number(String),
    /// A lower-cased word; `glued` when it follows digits without a separator.
    Word { text: String, glued: bool },
}

#[derive(Clone, Debug)]
pub struct GenericVersion {
    text: String,
    segments: Vec<Segment>,
}

/// Rank of a pre-release word, when it is one.
fn pre_release_rank(word: &str, glued: bool) -> Option<u8> {
    let rank = match word {
        "dev" => 0,
        "snapshot" => 1,
        "alpha" => 2,
        "a" if !glued => 2,
        "beta" => 3,
        "b" if !glued => 3,
        "pre" | "preview" => 4,
        "rc" | "cr" => 5,
        "c" if !glued => 5,
        _ => return None,
    };
    Some(rank)
}

fn cmp_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_segment(a: &Segment, b: &Segment) -> Ordering {
    match (a, b) {
        (Segment::Number(x), Segment::Number(y)) => cmp_numbers(x, y),
        (Segment::Number(_), Segment::Word { .. }) => Ordering::Greater,
        (Segment::Word { .. }, Segment::Number(_)) => Ordering::Less,
        (Segment::Word { text: x, glued: gx }, Segment::Word { text: y, glued: gy }) => {
            match (pre_release_rank(x, *gx), pre_release_rank(y, *gy)) {
                (Some(rx), Some(ry)) => rx.cmp(&ry),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => x.cmp(y),
            }
        }
    }
}

/// How the rest of a longer version orders it against the shorter one.
fn rest_order(rest: &[Segment]) -> Ordering {
    match rest.iter().find(|s| !matches!(s, Segment::Number(n) if n.is_empty())) {
        None => Ordering::Equal,
        Some(Segment::Word { text, glued }) if pre_release_rank(text, *glued).is_some() => Ordering::Less,
        Some(_) => Ordering::Greater,
    }
}

impl Version for GenericVersion {
    fn parse(s: &str) -> Result<Self, VersionError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(VersionError::new("version string is empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(VersionError::new("version string has embedded spaces or control characters"));
        }
        if text.len() > 128 {
            return Err(VersionError::new("version string is longer than 128 characters"));
        }
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        let mut after_digit = false;
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                let mut n = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    chars.next();
                }
                segments.push(Segment::Number(n.trim_start_matches('0').to_owned()));
                after_digit = true;
            } else if c.is_alphabetic() {
                let mut w = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_alphabetic()) {
                    w.extend(d.to_lowercase());
                    chars.next();
                }
                segments.push(Segment::Word { text: w, glued: after_digit });
                after_digit = false;
            } else {
                chars.next();
                after_digit = false;
            }
        }
        if segments.is_empty() {
            return Err(VersionError::new("version has no digits or letters"));
        }
        Ok(Self { text: text.to_owned(), segments })
    }
}

impl Ord for GenericVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            match cmp_segment(a, b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        let (n, m) = (self.segments.len(), other.segments.len());
        match n.cmp(&m) {
            Ordering::Equal => Ordering::Equal,
            Ordering::Greater => rest_order(&self.segments[m..]),
            Ordering::Less => rest_order(&other.segments[n..]).reverse(),
        }
    }
}

crate::order_by_cmp!(GenericVersion);

impl fmt::Display for GenericVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, expect: Ordering) {
        let (va, vb) = (GenericVersion::parse(a).unwrap(), GenericVersion::parse(b).unwrap());
        assert_eq!(va.cmp(&vb), expect, "{a} vs {b}");
        assert_eq!(vb.cmp(&va), expect.reverse(), "{b} vs {a}");
    }

    #[test]
    fn vendor_versions() {
        use Ordering::*;
        check("1.0", "1.0.0", Equal);
        check("2.0.1", "2.0", Greater);
        check("1.0.2a", "1.0.2", Greater);
        check("1.0.2a", "1.0.2b", Less);
        check("1.0.1", "1.0a", Greater);
        check("2.0-rc1", "2.0", Less);
        check("2.0-beta2", "2.0-rc1", Less);
        check("2.0-alpha", "2.0-beta", Less);
        check("2023.10.1", "2023.9.30", Greater);
        check("23.003.20215", "23.003.20244", Less);
        check("23.003.20215", "23.3.20215", Equal);
        check("7.2.4-build1396", "7.2.4", Greater);
        check("9.1(2)", "9.1(10)", Less);
        check("24.07", "24.7", Equal);
        check("10.0.19045.4291", "10.0.19045.4292", Less);
        check("8.0u11", "8.0u9", Greater);
        check("1.2.3", "1.2.3", Equal);
        check("1.2.3-1", "1.2.3", Greater);
        check("123456789012345678901234567890", "123456789012345678901234567891", Less);
    }

    #[test]
    fn refusals() {
        assert!(GenericVersion::parse("").is_err());
        assert!(GenericVersion::parse("1 2").is_err());
        assert!(GenericVersion::parse("...").is_err());
        assert!(GenericVersion::parse(&"1".repeat(200)).is_err());
    }
}
