//! The software inventory of one device, as the agent reports it and as `ringfence scan`
//! reads it: the operating system and a list of software items (distro packages,
//! applications, drivers, firmware, BIOS).
//!
//! Parsers here read what lands on a device or in a file: a dpkg status database
//! ([`dpkg`]), a CycloneDX SBOM ([`cyclonedx`]) and the agent's own JSON ([`Inventory`]).
//! [`load`] detects which one a file holds. The crate does no I/O beyond what the caller
//! hands it and depends on nothing of the server, so the agent can use it too.

pub mod cyclonedx;
pub mod dpkg;

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of software an item is. Distro packages are matched against distro data;
/// everything else against NVD through the software→CPE table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A package of the operating system's package manager (dpkg, rpm, apk).
    Package,
    /// An installed program (Windows Uninstall entries, macOS applications, snaps, flatpaks).
    Application,
    /// A kernel module or Windows driver.
    Driver,
    /// Device firmware (fwupd, network OS, BMC).
    Firmware,
    /// The system BIOS or UEFI firmware.
    Bios,
    /// The operating system itself (name and build).
    Os,
    /// An installed Windows update (KB).
    Hotfix,
    /// The hardware model (an appliance, a BMC's board), for NVD platform checks.
    Hardware,
    /// A browser extension of a user profile (Chrome, Edge, Firefox).
    Extension,
}

impl ItemKind {
    pub const ALL: [ItemKind; 9] = [
        ItemKind::Package,
        ItemKind::Application,
        ItemKind::Driver,
        ItemKind::Firmware,
        ItemKind::Bios,
        ItemKind::Os,
        ItemKind::Hotfix,
        ItemKind::Hardware,
        ItemKind::Extension,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Package => "package",
            ItemKind::Application => "application",
            ItemKind::Driver => "driver",
            ItemKind::Firmware => "firmware",
            ItemKind::Bios => "bios",
            ItemKind::Os => "os",
            ItemKind::Hotfix => "hotfix",
            ItemKind::Hardware => "hardware",
            ItemKind::Extension => "extension",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of installed software.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub kind: ItemKind,
    /// The package manager or source that reported it: `dpkg`, `rpm`, `apk`, `snap`,
    /// `flatpak`, `msi`, `fwupd`, `dmi`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    pub name: String,
    pub version: String,
    /// Publisher or vendor, as the platform names it ("Igor Pavlov", "Google LLC").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The source package a binary package was built from (dpkg `Source:`, rpm SOURCERPM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// The source package's version, when it differs from the binary's (binNMUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// A CPE name the collector knows for certain (network OS, SBOM component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
}

impl Item {
    pub fn new(kind: ItemKind, name: impl Into<String>, version: impl Into<String>) -> Self {
        Item {
            kind,
            manager: None,
            name: name.into(),
            version: version.into(),
            vendor: None,
            arch: None,
            source_name: None,
            source_version: None,
            cpe: None,
        }
    }

    /// The source package name (the binary's own name when it has no `Source:`).
    pub fn source(&self) -> &str {
        self.source_name.as_deref().unwrap_or(&self.name)
    }

    /// The source package version (the binary's own version when none is given).
    pub fn source_ver(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }
}

/// The operating system of a device, as far as matching needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsInfo {
    /// `linux`, `windows` or `macos`.
    pub family: String,
    /// The os-release `ID` (`debian`, `ubuntu`, `rhel`, `alpine`), or `windows` / `macos`.
    #[serde(default)]
    pub id: String,
    /// The os-release `VERSION_ID` (`12`, `22.04`, `9.4`), or the Windows build
    /// (`10.0.19045.4291`).
    #[serde(default)]
    pub version: String,
    /// The release codename (`bookworm`, `jammy`) when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// A human name ("Debian GNU/Linux 12 (bookworm)", "Windows 11 Pro 23H2").
    #[serde(default)]
    pub name: String,
}

impl OsInfo {
    pub fn debian(version: &str) -> Self {
        let codename = debian_codename(version).map(str::to_string);
        OsInfo {
            family: "linux".into(),
            id: "debian".into(),
            version: version.into(),
            name: format!(
                "Debian GNU/Linux {version}{}",
                codename.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            codename,
        }
    }
}

/// Debian's release codenames by major version.
pub fn debian_codename(version: &str) -> Option<&'static str> {
    let major = version.split('.').next()?;
    Some(match major {
        "9" => "stretch",
        "10" => "buster",
        "11" => "bullseye",
        "12" => "bookworm",
        "13" => "trixie",
        "14" => "forky",
        _ => return None,
    })
}

/// The Debian major version of a codename (`bookworm` → `12`).
pub fn debian_version_of(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    })
}

/// A device's whole inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub os: OsInfo,
    pub items: Vec<Item>,
}

/// Why an inventory file could not be read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("{0}")]
    Format(String),
}

/// The kinds of inventory file [`load`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryFormat {
    DpkgStatus,
    AgentJson,
    CycloneDx,
}

impl InventoryFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryFormat::DpkgStatus => "dpkg status",
            InventoryFormat::AgentJson => "agent inventory JSON",
            InventoryFormat::CycloneDx => "CycloneDX SBOM",
        }
    }
}

/// A read inventory file: its format, the inventory, and the parts that could not be read
/// (a corrupt dpkg stanza is skipped and reported; the rest still counts).
#[derive(Debug)]
pub struct Loaded {
    pub format: InventoryFormat,
    pub inventory: Inventory,
    pub warnings: Vec<InventoryError>,
}

/// Detects the format of `text` and reads it. A dpkg status file carries no OS release;
/// it is taken from the `base-files` package when that names a Debian release.
pub fn load(text: &str) -> Result<Loaded, InventoryError> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(t)
            .map_err(|e| InventoryError::Format(format!("the file is not valid JSON: {e}")))?;
        if value.get("bomFormat").is_some() || value.get("components").is_some() {
            return Ok(Loaded {
                format: InventoryFormat::CycloneDx,
                inventory: cyclonedx::parse(&value)?,
                warnings: vec![],
            });
        }
        let inv: Inventory = serde_json::from_value(value).map_err(|e| {
            InventoryError::Format(format!(
                "the JSON is neither a CycloneDX SBOM (no \"bomFormat\") nor an agent inventory: {e}"
            ))
        })?;
        return Ok(Loaded { format: InventoryFormat::AgentJson, inventory: inv, warnings: vec![] });
    }
    if t.starts_with("Package:") {
        let status = dpkg::parse_status(text);
        if status.items.is_empty()
            && let Some(e) = status.errors.first()
        {
            return Err(e.clone());
        }
        let os = dpkg::debian_release(&status.items).map(|v| OsInfo::debian(&v)).unwrap_or_else(|| OsInfo {
            family: "linux".into(),
            id: "debian".into(),
            ..OsInfo::default()
        });
        return Ok(Loaded {
            format: InventoryFormat::DpkgStatus,
            inventory: Inventory { os, items: status.items },
            warnings: status.errors,
        });
    }
    Err(InventoryError::Format(
        "the file is neither a dpkg status database (it starts with 'Package:'), an agent inventory JSON \
         nor a CycloneDX SBOM"
            .into(),
    ))
}
