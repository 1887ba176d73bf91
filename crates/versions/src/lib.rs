//! Version schemes and their orderings: Debian (dpkg), RPM, semantic versioning, a generic
//! dotted scheme for vendor versions in NVD ranges, and Windows build numbers.
//!
//! Each scheme parses into a type that implements [`Version`] (a total order), refusing
//! strings the scheme's own tools refuse, with a reason. Comparing across schemes is
//! meaningless and impossible by construction. This crate does no I/O.

pub use deb::DebVersion;
pub use generic::GenericVersion;
pub use rpm::RpmVersion;
pub use semver_scheme::SemVersion;
pub use windows::WindowsBuild;

use std::cmp::Ordering;
use std::fmt;

/// A version string that its scheme refuses, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct VersionError {
    pub reason: String,
}

impl VersionError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

/// Derives `PartialOrd`, `PartialEq` and `Eq` from a type's `Ord`, so that equality always
/// means "orders equal" (`1.0` and `1.00` are equal Debian versions).
macro_rules! order_by_cmp {
    ($t:ty) => {
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }

        impl Eq for $t {}
    };
}
pub(crate) use order_by_cmp;

mod deb;
mod generic;
mod rpm;
mod semver_scheme;
mod windows;

/// A parsed version of one scheme.
pub trait Version: Ord + fmt::Display + Sized {
    fn parse(s: &str) -> Result<Self, VersionError>;
}

/// The version schemes ringfence knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu packages, ordered as dpkg orders them.
    Deb,
    /// RPM packages (RHEL, Fedora, SUSE, Alma, Rocky), ordered as rpmvercmp.
    Rpm,
    /// Semantic Versioning 2.0.0 precedence (build metadata ignored).
    Semver,
    /// Vendor versions as NVD ranges carry them: 1.2.3a, 2023.10.1, 23.003.20215.
    Generic,
    /// Windows build numbers: 10.0.19045.4291.
    Windows,
}

impl Scheme {
    pub const NAMES: &'static str = "deb, rpm, semver, generic or windows";

    pub fn parse(s: &str) -> Result<Self, VersionError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "deb" | "dpkg" | "debian" => Ok(Scheme::Deb),
            "rpm" => Ok(Scheme::Rpm),
            "semver" => Ok(Scheme::Semver),
            "generic" => Ok(Scheme::Generic),
            "windows" | "win" => Ok(Scheme::Windows),
            other => Err(VersionError::new(format!("unknown version scheme '{other}': use {}", Self::NAMES))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Deb => "deb",
            Scheme::Rpm => "rpm",
            Scheme::Semver => "semver",
            Scheme::Generic => "generic",
            Scheme::Windows => "windows",
        }
    }
}

fn cmp_as<V: Version>(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let va = V::parse(a).map_err(|e| VersionError::new(format!("invalid version '{a}': {}", e.reason)))?;
    let vb = V::parse(b).map_err(|e| VersionError::new(format!("invalid version '{b}': {}", e.reason)))?;
    Ok(va.cmp(&vb))
}

/// Compares two version strings of one scheme.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match scheme {
        Scheme::Deb => cmp_as::<DebVersion>(a, b),
        Scheme::Rpm => cmp_as::<RpmVersion>(a, b),
        Scheme::Semver => cmp_as::<SemVersion>(a, b),
        Scheme::Generic => cmp_as::<GenericVersion>(a, b),
        Scheme::Windows => cmp_as::<WindowsBuild>(a, b),
    }
}

/// Validates a version string of one scheme.
pub fn validate(scheme: Scheme, s: &str) -> Result<(), VersionError> {
    match scheme {
        Scheme::Deb => DebVersion::parse(s).map(drop),
        Scheme::Rpm => RpmVersion::parse(s).map(drop),
        Scheme::Semver => SemVersion::parse(s).map(drop),
        Scheme::Generic => GenericVersion::parse(s).map(drop),
        Scheme::Windows => WindowsBuild::parse(s).map(drop),
    }
}

/// `-1`, `0` or `1`, as the CLI prints an ordering.
pub fn ordering_number(o: Ordering) -> i8 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}
