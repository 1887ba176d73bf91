//! Windows build numbers: `major.minor.build.revision` (10.0.19045.4291), two to four numeric
//! parts; missing parts count as zero.

use crate::{Version, VersionError};
use std::fmt;

#[derive(Clone, Debug)]
pub struct WindowsBuild([u32; 4], String);

impl Ord for WindowsBuild {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

crate::order_by_cmp!(WindowsBuild);

impl Version for WindowsBuild {
    fn parse(s: &str) -> Result<Self, VersionError> {
        let t = s.trim();
        let parts: Vec<&str> = t.split('.').collect();
        if !(2..=4).contains(&parts.len()) {
            return Err(VersionError::new(
                "a Windows build has two to four numeric parts, e.g. 10.0.19045.4291",
            ));
        }
        let mut n = [0u32; 4];
        for (slot, p) in n.iter_mut().zip(&parts) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError::new(format!("'{p}' is not a number")));
            }
            *slot = p.parse().map_err(|_| VersionError::new(format!("'{p}' is too large")))?;
        }
        Ok(Self(n, t.to_owned()))
    }
}

impl fmt::Display for WindowsBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn builds_compare_numerically() {
        let p = |s| WindowsBuild::parse(s).unwrap();
        assert_eq!(p("10.0.19045.4291").cmp(&p("10.0.19045.10000")), Ordering::Less);
        assert_eq!(p("10.0.22631").cmp(&p("10.0.22631.0")), Ordering::Equal);
        assert_eq!(p("6.3.9600").cmp(&p("10.0.10240")), Ordering::Less);
        assert!(WindowsBuild::parse("10").is_err());
        assert!(WindowsBuild::parse("10.0.x").is_err());
        assert!(WindowsBuild::parse("10.0.1.2.3").is_err());
    }
}
