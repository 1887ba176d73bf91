//! Windows inventory read from the registry through the Windows API, without PowerShell:
//! the programs of every Uninstall key (HKLM's 64- and 32-bit views, every loaded user hive
//! under `HKU`, and user profiles whose hive is not loaded, read from their `NTUSER.DAT`),
//! and the operating system from `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
//!
//! Reading values is the platform part ([`collect`], Windows only); turning what was read
//! into programs and an OS ([`program_of`], [`os_of`]) is plain code tested everywhere. The
//! whole path runs under Wine in CI against keys written with `wine reg add`.

use ringfence_inventory::{Item, ItemKind, OsInfo};
use serde::{Deserialize, Serialize};

/// The Uninstall key under `HKLM\SOFTWARE` (both views) and under each user's `Software`.
pub const UNINSTALL: &str = r"Software\Microsoft\Windows\CurrentVersion\Uninstall";
/// Where Windows keeps its build, edition and installation type.
pub const CURRENT_VERSION: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";
/// The user profiles of the machine, loaded or not.
pub const PROFILE_LIST: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList";

/// Where the installer (the MSI's `SERVER_URL` and `ENROLL_TOKEN`) leaves the settings the
/// service enrolls with.
pub const AGENT_KEY: &str = r"SOFTWARE\ringfence\Agent";

/// One installed program as its Uninstall entry describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// `YYYYMMDD`, as installers write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_date: Option<String>,
    /// The MSI ProductCode (`{23170F69-40C1-2702-2301-000001000000}`) of Windows Installer
    /// packages: the key's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_uninstall_string: Option<String>,
    /// `machine`, `machine (32-bit)` or `user S-1-5-21-…`.
    pub scope: String,
}

/// What [`program_of`] needs of one Uninstall subkey.
pub trait Entry {
    /// A string value (REG_SZ or REG_EXPAND_SZ), trimmed; `None` when absent or empty.
    fn text(&self, name: &str) -> Option<String>;
    /// A REG_DWORD value.
    fn dword(&self, name: &str) -> Option<u32>;
}

/// The program an Uninstall subkey describes, or `None` for entries that are not programs a
/// user installed: no DisplayName, a system component (`SystemComponent=1`), a part of
/// another program (`ParentKeyName`), or an old-style update (`ReleaseType` update/hotfix).
pub fn program_of(key_name: &str, entry: &impl Entry, scope: &str) -> Option<Program> {
    let display_name = entry.text("DisplayName")?;
    if entry.dword("SystemComponent") == Some(1) || entry.text("ParentKeyName").is_some() {
        return None;
    }
    if let Some(t) = entry.text("ReleaseType")
        && matches!(t.to_ascii_lowercase().as_str(), "update" | "hotfix" | "security update" | "service pack")
    {
        return None;
    }
    let is_guid = key_name.len() == 38 && key_name.starts_with('{') && key_name.ends_with('}');
    let product_code =
        (is_guid && entry.dword("WindowsInstaller") == Some(1)).then(|| key_name.to_uppercase());
    Some(Program {
        display_name,
        display_version: entry.text("DisplayVersion"),
        publisher: entry.text("Publisher"),
        install_date: entry.text("InstallDate"),
        product_code,
        uninstall_string: entry.text("UninstallString"),
        quiet_uninstall_string: entry.text("QuietUninstallString"),
        scope: scope.to_string(),
    })
}

/// Inventory items of programs: one per name, version and publisher (the same program is
/// often registered in both views, or for several users).
pub fn items_of(programs: &[Program]) -> Vec<Item> {
    let mut items: Vec<Item> = programs
        .iter()
        .map(|p| {
            let mut i = Item::new(
                ItemKind::Application,
                p.display_name.clone(),
                p.display_version.clone().unwrap_or_else(|| "unknown".into()),
            );
            i.vendor = p.publisher.clone();
            i.manager = Some("msi".into());
            i
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

/// What [`os_of`] reads of `CurrentVersion`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentVersion {
    /// `CurrentMajorVersionNumber`/`CurrentMinorVersionNumber` (Windows 10 and later), or
    /// the `CurrentVersion` string ("6.3") of older releases.
    pub major_minor: Option<(u32, u32)>,
    pub build: Option<String>,
    pub ubr: Option<u32>,
    pub product_name: Option<String>,
    /// "22H2"
    pub display_version: Option<String>,
    /// "Professional", "ServerDatacenter"
    pub edition_id: Option<String>,
    /// "Client", "Server", "Server Core"
    pub installation_type: Option<String>,
}

impl CurrentVersion {
    pub fn read(key: &impl Entry) -> CurrentVersion {
        let major_minor =
            match (key.dword("CurrentMajorVersionNumber"), key.dword("CurrentMinorVersionNumber")) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => key.text("CurrentVersion").and_then(|v| {
                    let (a, b) = v.split_once('.')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                }),
            };
        CurrentVersion {
            major_minor,
            build: key.text("CurrentBuildNumber").or_else(|| key.text("CurrentBuild")),
            ubr: key.dword("UBR"),
            product_name: key.text("ProductName"),
            display_version: key.text("DisplayVersion").or_else(|| key.text("ReleaseId")),
            edition_id: key.text("EditionID"),
            installation_type: key.text("InstallationType"),
        }
    }
}

/// The operating system: version `major.minor.build.ubr` (10.0.19045.4046), and a name
/// that says client or server and the feature release ("Windows 11 Pro 23H2"). Windows 11
/// still calls itself "Windows 10" in `ProductName`; the build tells them apart.
pub fn os_of(cv: &CurrentVersion) -> Result<OsInfo, String> {
    let (major, minor) = cv.major_minor.ok_or("CurrentVersion has no version number")?;
    let build: u32 =
        cv.build.as_deref().ok_or("CurrentVersion has no CurrentBuildNumber")?.parse().map_err(|_| {
            format!("CurrentBuildNumber '{}' is not a number", cv.build.as_deref().unwrap_or(""))
        })?;
    let version = match cv.ubr {
        Some(ubr) => format!("{major}.{minor}.{build}.{ubr}"),
        None => format!("{major}.{minor}.{build}"),
    };
    let server =
        cv.installation_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().starts_with("server"))
            || cv.edition_id.as_deref().is_some_and(|e| e.to_ascii_lowercase().starts_with("server"));
    let mut name = cv.product_name.clone().unwrap_or_else(|| "Windows".into());
    if !server && major == 10 && build >= 22000 && name.starts_with("Windows 10") {
        name = name.replacen("Windows 10", "Windows 11", 1);
    }
    if server && !name.to_ascii_lowercase().contains("server") {
        name.push_str(" Server");
    }
    if let Some(dv) = &cv.display_version
        && !name.contains(dv.as_str())
    {
        name = format!("{name} {dv}");
    }
    Ok(OsInfo { family: "windows".into(), id: "windows".into(), version, codename: None, name })
}

/// Security identifiers of real users' hives under `HKU` (not `.DEFAULT`, the
/// `_Classes` hives, or the SYSTEM, LOCAL SERVICE and NETWORK SERVICE accounts).
pub fn is_user_sid(name: &str) -> bool {
    name.starts_with("S-1-5-21-") && !name.ends_with("_Classes")
}

#[cfg(windows)]
mod native {
    use super::*;
    use winreg::RegKey;
    use winreg::enums::*;

    /// A key's values, read in one enumeration (one round trip per key, not per value).
    struct Key(std::collections::HashMap<String, winreg::RegValue>);

    impl Key {
        fn read(key: &RegKey) -> Key {
            Key(key.enum_values().flatten().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect())
        }
    }

    impl Entry for Key {
        fn text(&self, name: &str) -> Option<String> {
            use winreg::types::FromRegValue;
            let v = self.0.get(&name.to_ascii_lowercase())?;
            String::from_reg_value(v).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
        }
        fn dword(&self, name: &str) -> Option<u32> {
            use winreg::types::FromRegValue;
            u32::from_reg_value(self.0.get(&name.to_ascii_lowercase())?).ok()
        }
    }

    fn uninstall_entries(root: &RegKey, path: &str, flags: u32, scope: &str, out: &mut Vec<Program>) {
        let Ok(key) = root.open_subkey_with_flags(path, KEY_READ | flags) else { return };
        for name in key.enum_keys().flatten() {
            if let Ok(sub) = key.open_subkey_with_flags(&name, KEY_READ | flags)
                && let Some(p) = program_of(&name, &Key::read(&sub), scope)
            {
                out.push(p);
            }
        }
    }

    /// Programs of every view and user, and the profiles that could not be read.
    pub fn programs() -> (Vec<Program>, Vec<String>) {
        let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
        let mut out = Vec::new();
        let mut unread = Vec::new();
        let machine = format!(r"SOFTWARE\{}", &UNINSTALL["Software\\".len()..]);
        uninstall_entries(&hklm, &machine, KEY_WOW64_64KEY, "machine", &mut out);
        uninstall_entries(&hklm, &machine, KEY_WOW64_32KEY, "machine (32-bit)", &mut out);
        let hku = RegKey::predef(HKEY_USERS);
        let loaded: Vec<String> = hku.enum_keys().flatten().filter(|s| is_user_sid(s)).collect();
        for sid in &loaded {
            if let Ok(user) = hku.open_subkey_with_flags(sid, KEY_READ) {
                uninstall_entries(&user, UNINSTALL, 0, &format!("user {sid}"), &mut out);
            }
        }
        // Profiles of users who are not signed in: their hive is a file.
        if let Ok(profiles) = hklm.open_subkey_with_flags(PROFILE_LIST, KEY_READ) {
            for sid in profiles.enum_keys().flatten().filter(|s| is_user_sid(s) && !loaded.contains(s)) {
                let Some(dir) = profiles
                    .open_subkey_with_flags(&sid, KEY_READ)
                    .ok()
                    .and_then(|k| k.get_value::<String, _>("ProfileImagePath").ok())
                else {
                    continue;
                };
                let hive = std::path::Path::new(&dir).join("NTUSER.DAT");
                if !hive.exists() {
                    continue;
                }
                match RegKey::load_app_key_with_flags(&hive, KEY_READ, 0) {
                    Ok(user) => uninstall_entries(&user, UNINSTALL, 0, &format!("user {sid}"), &mut out),
                    Err(e) => unread.push(format!("{}: {e}", hive.display())),
                }
            }
        }
        (out, unread)
    }

    /// The machine's stable id, `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`.
    pub fn machine_guid() -> Option<String> {
        RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey_with_flags(r"SOFTWARE\Microsoft\Cryptography", KEY_READ | KEY_WOW64_64KEY)
            .ok()
            .and_then(|k| k.get_value::<String, _>("MachineGuid").ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// A value the installer wrote under `HKLM\SOFTWARE\ringfence\Agent` (`ServerUrl`,
    /// `EnrollToken`).
    pub fn agent_setting(name: &str) -> Option<String> {
        RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey_with_flags(AGENT_KEY, KEY_READ | KEY_WOW64_64KEY)
            .ok()
            .and_then(|k| k.get_value::<String, _>(name).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Removes the enrollment token once it has been used.
    pub fn forget_agent_setting(name: &str) {
        if let Ok(k) = RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey_with_flags(AGENT_KEY, KEY_ALL_ACCESS | KEY_WOW64_64KEY)
        {
            let _ = k.delete_value(name);
        }
    }

    pub fn current_version() -> Result<CurrentVersion, String> {
        let key = RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey_with_flags(CURRENT_VERSION, KEY_READ | KEY_WOW64_64KEY)
            .map_err(|e| format!("HKLM\\{CURRENT_VERSION} cannot be read: {e}"))?;
        Ok(CurrentVersion::read(&Key::read(&key)))
    }
}

#[cfg(windows)]
pub use native::{agent_setting, current_version, forget_agent_setting, machine_guid, programs};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Values(HashMap<&'static str, &'static str>, HashMap<&'static str, u32>);

    impl Entry for Values {
        fn text(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
        }
        fn dword(&self, name: &str) -> Option<u32> {
            self.1.get(name).copied()
        }
    }

    fn entry(texts: &[(&'static str, &'static str)], dwords: &[(&'static str, u32)]) -> Values {
        Values(texts.iter().copied().collect(), dwords.iter().copied().collect())
    }

    #[test]
    fn msi_entries_carry_their_product_code_and_uninstall_commands() {
        let e = entry(
            &[
                ("DisplayName", "7-Zip 23.01 (x64 edition)"),
                ("DisplayVersion", "23.01.00.0"),
                ("Publisher", "Igor Pavlov"),
                ("InstallDate", "20240311"),
                ("UninstallString", "MsiExec.exe /I{23170F69-40C1-2702-2301-000001000000}"),
            ],
            &[("WindowsInstaller", 1)],
        );
        let p = program_of("{23170f69-40c1-2702-2301-000001000000}", &e, "machine").unwrap();
        assert_eq!(p.product_code.as_deref(), Some("{23170F69-40C1-2702-2301-000001000000}"));
        assert_eq!(p.install_date.as_deref(), Some("20240311"));
        assert_eq!(p.scope, "machine");
        // An EXE installer's key is not a product code, even when it looks like a GUID.
        let e =
            entry(&[("DisplayName", "Zoom Workplace"), ("QuietUninstallString", "Uninstall.exe /S")], &[]);
        let p = program_of("{5A8C7A39-1111-2222-3333-444455556666}", &e, "user S-1-5-21-1-2-3-1001").unwrap();
        assert_eq!(p.product_code, None);
        assert_eq!(p.quiet_uninstall_string.as_deref(), Some("Uninstall.exe /S"));
        assert_eq!(p.display_version, None);
    }

    #[test]
    fn components_parts_and_old_updates_are_not_programs() {
        assert!(
            program_of("x", &entry(&[("DisplayName", "Runtime")], &[("SystemComponent", 1)]), "m").is_none()
        );
        let part = entry(&[("DisplayName", "Office Proofing"), ("ParentKeyName", "Office16.PROPLUS")], &[]);
        assert!(program_of("x", &part, "m").is_none());
        let kb =
            entry(&[("DisplayName", "Security Update for Excel"), ("ReleaseType", "Security Update")], &[]);
        assert!(program_of("KB4011", &kb, "m").is_none());
        assert!(program_of("x", &entry(&[("DisplayName", "  ")], &[]), "m").is_none());
        assert!(
            program_of("x", &entry(&[("DisplayName", "Kept")], &[("SystemComponent", 0)]), "m").is_some()
        );
    }

    #[test]
    fn one_item_per_program_however_often_it_is_registered() {
        let p = |name: &str, scope: &str| Program {
            display_name: name.into(),
            display_version: Some("1.0".into()),
            publisher: Some("Pub".into()),
            scope: scope.into(),
            ..Program::default()
        };
        let items = items_of(&[
            p("A", "machine"),
            p("A", "machine (32-bit)"),
            p("A", "user S-1-5-21-9"),
            p("B", "m"),
        ]);
        assert_eq!(items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(items[0].vendor.as_deref(), Some("Pub"));
    }

    #[test]
    fn the_build_names_the_release_and_the_installation_type_the_server() {
        let cv = CurrentVersion::read(&entry(
            &[
                ("CurrentBuildNumber", "22631"),
                ("ProductName", "Windows 10 Pro"),
                ("DisplayVersion", "23H2"),
                ("EditionID", "Professional"),
                ("InstallationType", "Client"),
            ],
            &[("CurrentMajorVersionNumber", 10), ("CurrentMinorVersionNumber", 0), ("UBR", 3155)],
        ));
        let os = os_of(&cv).unwrap();
        assert_eq!(os.version, "10.0.22631.3155");
        assert_eq!(os.name, "Windows 11 Pro 23H2", "Windows 11 calls itself Windows 10 in ProductName");
        let server = CurrentVersion::read(&entry(
            &[
                ("CurrentVersion", "6.3"),
                ("CurrentBuildNumber", "9600"),
                ("ProductName", "Windows Server 2012 R2 Datacenter"),
                ("InstallationType", "Server Core"),
            ],
            &[("UBR", 21620)],
        ));
        let os = os_of(&server).unwrap();
        assert_eq!(os.version, "6.3.9600.21620");
        assert_eq!(os.name, "Windows Server 2012 R2 Datacenter");
        let bare = entry(
            &[("CurrentBuildNumber", "20348"), ("EditionID", "ServerStandard")],
            &[("CurrentMajorVersionNumber", 10), ("CurrentMinorVersionNumber", 0)],
        );
        let os = os_of(&CurrentVersion::read(&bare)).unwrap();
        assert_eq!((os.version.as_str(), os.name.as_str()), ("10.0.20348", "Windows Server"));
        assert!(os_of(&CurrentVersion::default()).unwrap_err().contains("no version number"));
        let junk =
            CurrentVersion { major_minor: Some((10, 0)), build: Some("abc".into()), ..Default::default() };
        assert!(os_of(&junk).unwrap_err().contains("'abc' is not a number"));
    }

    #[test]
    fn only_real_users_hives_are_read() {
        assert!(is_user_sid("S-1-5-21-3623811015-3361044348-30300820-1013"));
        for other in [".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20", "S-1-5-21-1-2-3-1013_Classes"] {
            assert!(!is_user_sid(other), "{other}");
        }
    }
}
