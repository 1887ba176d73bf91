//! The update catalog's vocabulary: what kind of update a pending update is, whether it needs
//! a reboot, and how it can be undone. Known per package manager and package before anything
//! is approved, so the queue can show it.

use serde::{Deserialize, Serialize};

/// The classification of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Fixes a vulnerability (a security suite or advisory, or a CVE it resolves).
    Security,
    /// A vendor's critical, non-security fix (Windows "Critical Updates").
    Critical,
    Bugfix,
    /// New functionality (backports, feature packs, major upgrades).
    Feature,
    Driver,
    Firmware,
}

impl Classification {
    pub const ALL: [Classification; 6] = [
        Classification::Security,
        Classification::Critical,
        Classification::Bugfix,
        Classification::Feature,
        Classification::Driver,
        Classification::Firmware,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Security => "security",
            Classification::Critical => "critical",
            Classification::Bugfix => "bugfix",
            Classification::Feature => "feature",
            Classification::Driver => "driver",
            Classification::Firmware => "firmware",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Classification::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!(
                "unknown classification '{s}': use security, critical, bugfix, feature, driver or firmware"
            )
        })
    }
}

/// How an installed update can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollback {
    /// Install the previous version again and hold it (apt, dnf).
    Downgrade,
    /// Revert to the snapshot taken before (snap revisions).
    Snapshot,
    /// Cannot be undone (firmware, most Windows cumulative updates).
    None,
}

impl Rollback {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollback::Downgrade => "downgrade",
            Rollback::Snapshot => "snapshot",
            Rollback::None => "none",
        }
    }
}

/// A pending update as an agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<'a> {
    /// `dpkg`, `rpm`, `snap`, `windows_update`, `winget`, `fwupd`, …
    pub manager: &'a str,
    pub name: &'a str,
    /// Where it comes from (`bookworm-security`, `bookworm-backports`, a WUA category).
    pub origin: &'a str,
    /// From a security suite or with a security advisory.
    pub security: bool,
}

fn has_any(s: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| s.contains(n))
}

/// Classifies a pending update from its manager, name and origin.
pub fn classify(p: &Pending) -> Classification {
    let name = p.name.to_ascii_lowercase();
    let origin = p.origin.to_ascii_lowercase();
    if p.manager == "fwupd"
        || name.starts_with("firmware-")
        || name == "linux-firmware"
        || name.ends_with("-firmware")
    {
        return Classification::Firmware;
    }
    if has_any(&origin, &["driver"])
        || name.starts_with("nvidia-")
        || name.starts_with("xserver-xorg-video-")
        || name.starts_with("kmod-")
        || name.ends_with("-dkms")
    {
        return Classification::Driver;
    }
    if p.security || has_any(&origin, &["security"]) {
        return Classification::Security;
    }
    if has_any(&origin, &["critical"]) {
        return Classification::Critical;
    }
    if has_any(&origin, &["backports", "feature", "upgrade"]) {
        return Classification::Feature;
    }
    Classification::Bugfix
}

/// Whether installing the update needs a reboot to take effect: kernels, the C library,
/// systemd, microcode, drivers and firmware do; Windows updates are assumed to.
pub fn needs_reboot(p: &Pending, class: Classification) -> bool {
    let name = p.name.to_ascii_lowercase();
    matches!(class, Classification::Driver | Classification::Firmware)
        || p.manager == "windows_update"
        || name.starts_with("linux-image")
        || name.starts_with("kernel")
        || name.ends_with("-microcode")
        || ["libc6", "glibc", "systemd", "dbus"].contains(&name.as_str())
}

/// How the update can be undone on this manager.
pub fn rollback(p: &Pending, class: Classification) -> Rollback {
    if class == Classification::Firmware {
        return Rollback::None;
    }
    match p.manager {
        "dpkg" | "apt" | "rpm" | "dnf" | "yum" => Rollback::Downgrade,
        "snap" => Rollback::Snapshot,
        _ => Rollback::None,
    }
}
