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
    /// Remove the update: Windows quality and cumulative updates (`wusa /uninstall`, or
    /// DISM's package removal where wusa cannot).
    Uninstall,
    /// Go back to the previous Windows version (`DISM /Initiate-OSUninstall`), while the
    /// uninstall window (10 days unless changed) is open.
    OsUninstall,
    /// Remove the new driver package so the previous one in the driver store is used again.
    PreviousDriver,
    /// Cannot be undone (firmware, servicing stack updates, definition updates).
    None,
}

impl Rollback {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollback::Downgrade => "downgrade",
            Rollback::Snapshot => "snapshot",
            Rollback::Uninstall => "uninstall",
            Rollback::OsUninstall => "os_uninstall",
            Rollback::PreviousDriver => "previous_driver",
            Rollback::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Rollback::Downgrade,
            Rollback::Snapshot,
            Rollback::Uninstall,
            Rollback::OsUninstall,
            Rollback::PreviousDriver,
            Rollback::None,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// In words, for the queue and the device page.
    pub fn describe(self) -> &'static str {
        match self {
            Rollback::Downgrade => "previous version",
            Rollback::Snapshot => "snapshot",
            Rollback::Uninstall => "uninstall the update",
            Rollback::OsUninstall => "back to the previous Windows (10 days)",
            Rollback::PreviousDriver => "previous driver",
            Rollback::None => "none",
        }
    }
}

/// What kind of Windows update a pending update is, from its Windows Update category
/// (`origin`) and title: each kind is undone differently, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowsUpdateKind {
    /// Security, critical and cumulative ("quality") updates.
    Quality,
    /// A new Windows version ("Feature update to Windows 11, version 24H2").
    Feature,
    Driver,
    /// Servicing stack updates: Windows cannot remove them.
    ServicingStack,
    /// Defender security intelligence: the next definitions replace them.
    Definition,
}

pub fn windows_update_kind(p: &Pending) -> WindowsUpdateKind {
    let name = p.name.to_ascii_lowercase();
    let origin = p.origin.to_ascii_lowercase();
    if name.contains("servicing stack") {
        WindowsUpdateKind::ServicingStack
    } else if has_any(&origin, &["definition"])
        || has_any(&name, &["security intelligence", "definition update"])
    {
        WindowsUpdateKind::Definition
    } else if has_any(&origin, &["driver"]) {
        WindowsUpdateKind::Driver
    } else if has_any(&origin, &["upgrade"]) || name.starts_with("feature update") {
        WindowsUpdateKind::Feature
    } else {
        WindowsUpdateKind::Quality
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
        "dpkg" | "apt" | "rpm" | "dnf" | "yum" | "winget" => Rollback::Downgrade,
        "snap" => Rollback::Snapshot,
        "windows_update" => match windows_update_kind(p) {
            WindowsUpdateKind::Quality => Rollback::Uninstall,
            WindowsUpdateKind::Feature => Rollback::OsUninstall,
            WindowsUpdateKind::Driver => Rollback::PreviousDriver,
            WindowsUpdateKind::ServicingStack | WindowsUpdateKind::Definition => Rollback::None,
        },
        _ => Rollback::None,
    }
}

#[cfg(test)]
mod windows_tests {
    use super::*;

    fn wu<'a>(name: &'a str, origin: &'a str) -> Pending<'a> {
        Pending { manager: "windows_update", name, origin, security: false }
    }

    #[test]
    fn every_windows_update_type_has_its_rollback_or_says_it_has_none() {
        let cases = [
            (
                "2024-02 Cumulative Update for Windows 11 Version 23H2 (KB5034765)",
                "Security Updates",
                Rollback::Uninstall,
            ),
            ("2024-02 .NET Framework Update (KB5034466)", "Critical Updates", Rollback::Uninstall),
            ("Feature update to Windows 11, version 24H2", "Upgrades", Rollback::OsUninstall),
            ("Windows 11, version 24H2", "Upgrades", Rollback::OsUninstall),
            ("Intel Corporation - Display - 31.0.101.5333", "Drivers", Rollback::PreviousDriver),
            (
                "2024-02 Servicing Stack Update for Windows 10 Version 22H2 (KB5034863)",
                "Security Updates",
                Rollback::None,
            ),
            (
                "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602",
                "Definition Updates",
                Rollback::None,
            ),
        ];
        for (name, origin, want) in cases {
            let p = wu(name, origin);
            assert_eq!(rollback(&p, classify(&p)), want, "{name}");
        }
        let winget = Pending { manager: "winget", name: "7zip.7zip", origin: "winget", security: false };
        assert_eq!(rollback(&winget, classify(&winget)), Rollback::Downgrade);
        for r in ["downgrade", "uninstall", "os_uninstall", "previous_driver", "none"] {
            assert_eq!(Rollback::parse(r).map(Rollback::as_str), Some(r));
        }
        assert_eq!(Rollback::parse("unknown"), None);
    }
}
