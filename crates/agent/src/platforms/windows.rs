//! Windows: programs from the Uninstall registry keys, installed updates, the BIOS and the
//! build, each through PowerShell with `ConvertTo-Json`.

use crate::{Outcome, Report, record};
use ringfence_inventory::{Item, ItemKind, OsInfo};
use serde_json::Value;

/// Programs of both Uninstall keys (64- and 32-bit) and the current user's.
pub const UNINSTALL_PS: &str = "Get-ItemProperty 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*',\
'HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*',\
'HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*' -ErrorAction SilentlyContinue | \
Where-Object { $_.DisplayName -and -not $_.SystemComponent } | \
Select-Object DisplayName,DisplayVersion,Publisher,InstallDate | ConvertTo-Json -Compress";
pub const HOTFIX_PS: &str =
    "Get-HotFix | Select-Object HotFixID,Description,InstalledOn | ConvertTo-Json -Compress";
pub const BIOS_PS: &str = "Get-CimInstance Win32_BIOS | Select-Object Manufacturer,SMBIOSBIOSVersion,ReleaseDate | ConvertTo-Json -Compress";
pub const OS_PS: &str = "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber | ConvertTo-Json -Compress";
/// The UBR (update build revision) completes the build number: 10.0.19045.4291.
pub const UBR_PS: &str = "(Get-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion').UBR";

/// PowerShell prints one object without the array brackets.
fn objects(json: &str) -> Result<Vec<Value>, String> {
    let t = json.trim().trim_start_matches('\u{feff}');
    if t.is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str(t).map_err(|e| format!("PowerShell output is not JSON: {e}"))? {
        Value::Array(a) => Ok(a),
        v @ Value::Object(_) => Ok(vec![v]),
        _ => Err("PowerShell output is neither an object nor an array".into()),
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string)
}

pub fn parse_uninstall(json: &str) -> Result<Vec<Item>, String> {
    let mut items: Vec<Item> = objects(json)?
        .iter()
        .filter_map(|o| {
            let name = s(o, "DisplayName")?;
            let mut i = Item::new(
                ItemKind::Application,
                name,
                s(o, "DisplayVersion").unwrap_or_else(|| "unknown".into()),
            );
            i.vendor = s(o, "Publisher");
            i.manager = Some("msi".into());
            Some(i)
        })
        .collect();
    // The same program often appears under both registry views.
    items.sort();
    items.dedup();
    Ok(items)
}

pub fn parse_hotfixes(json: &str) -> Result<Vec<Item>, String> {
    Ok(objects(json)?
        .iter()
        .filter_map(|o| {
            let id = s(o, "HotFixID")?;
            let mut i = Item::new(ItemKind::Hotfix, id, "installed");
            i.vendor = s(o, "Description");
            i.manager = Some("windows-update".into());
            Some(i)
        })
        .collect())
}

pub fn parse_bios(json: &str) -> Result<Vec<Item>, String> {
    Ok(objects(json)?
        .iter()
        .filter_map(|o| {
            let version = s(o, "SMBIOSBIOSVersion")?;
            let vendor = s(o, "Manufacturer");
            let mut i = Item::new(ItemKind::Bios, vendor.clone().unwrap_or_else(|| "BIOS".into()), version);
            i.vendor = vendor;
            i.manager = Some("wmi".into());
            Some(i)
        })
        .collect())
}

/// The OS from `Win32_OperatingSystem` and the UBR: `10.0.19045` + `4291`.
pub fn parse_os(json: &str, ubr: &str) -> Result<OsInfo, String> {
    let o = objects(json)?.into_iter().next().ok_or("no operating system in the output")?;
    let mut version = s(&o, "Version").ok_or("the output has no Version")?;
    if let Ok(ubr) = ubr.trim().parse::<u32>() {
        version = format!("{version}.{ubr}");
    }
    Ok(OsInfo {
        family: "windows".into(),
        id: "windows".into(),
        version,
        codename: None,
        name: s(&o, "Caption").unwrap_or_else(|| "Windows".into()),
    })
}

/// Runs the collectors (Windows only; not exercised on the Linux build machines).
pub fn collect() -> Report {
    let ps = |script: &str| {
        crate::collectors::run("powershell.exe", &["-NoProfile", "-NonInteractive", "-Command", script])
            .unwrap_or_else(|| Err("PowerShell is not available".into()))
    };
    let mut report = Report::default();
    match ps(OS_PS).and_then(|os| parse_os(&os, &ps(UBR_PS).unwrap_or_default())) {
        Ok(os) => report.inventory.os = os,
        Err(e) => record(&mut report, "os", Outcome::Failed(e)),
    }
    for (name, script, parse) in [
        ("programs", UNINSTALL_PS, parse_uninstall as fn(&str) -> Result<Vec<Item>, String>),
        ("hotfixes", HOTFIX_PS, parse_hotfixes),
        ("bios", BIOS_PS, parse_bios),
    ] {
        let outcome = match ps(script).and_then(|out| parse(&out)) {
            Ok(items) => Outcome::Found(items),
            Err(e) => Outcome::Failed(e),
        };
        record(&mut report, name, outcome);
    }
    report
}
