//! Windows: programs and the build from the registry through the Windows API
//! ([`super::windows_registry`]); installed updates and the BIOS, which the registry does not
//! hold, through PowerShell with `ConvertTo-Json` (parsers tested on recorded output: Wine
//! has no PowerShell).

use crate::{Outcome, Report, record, record_timed};
use ringfence_inventory::{Item, ItemKind};
use serde_json::Value;
use std::time::Instant;

pub const HOTFIX_PS: &str =
    "Get-HotFix | Select-Object HotFixID,Description,InstalledOn | ConvertTo-Json -Compress";
pub const BIOS_PS: &str = "Get-CimInstance Win32_BIOS | Select-Object Manufacturer,SMBIOSBIOSVersion,ReleaseDate | ConvertTo-Json -Compress";
pub const OS_PS: &str = "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber | ConvertTo-Json -Compress";
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

/// Runs the collectors. Programs and the OS come from the registry; a profile whose hive
/// could not be read makes the programs collector report an error beside what it found.
pub fn collect() -> Report {
    let mut report = Report::default();
    collect_registry(&mut report);
    let ps = |script: &str| {
        crate::collectors::run("powershell.exe", &["-NoProfile", "-NonInteractive", "-Command", script])
            .unwrap_or_else(|| Err("PowerShell is not available".into()))
    };
    for (name, script, parse) in [
        ("hotfixes", HOTFIX_PS, parse_hotfixes as fn(&str) -> Result<Vec<Item>, String>),
        ("bios", BIOS_PS, parse_bios),
    ] {
        let started = Instant::now();
        let outcome = match ps(script).and_then(|out| parse(&out)) {
            Ok(items) => Outcome::Found(items),
            Err(e) => Outcome::Failed(e),
        };
        record_timed(&mut report, name, started, outcome);
    }
    // Drivers of the driver store (provider, class, INF, version), from pnputil.
    let started = Instant::now();
    let drivers = match crate::collectors::run("pnputil.exe", &["/enum-drivers"]) {
        Some(Ok(out)) => Outcome::Found(super::windows_install::driver_items(
            &super::windows_install::parse_pnputil_drivers(&out),
        )),
        Some(Err(e)) => Outcome::Failed(e),
        None => Outcome::Nothing("pnputil is not available".into()),
    };
    record_timed(&mut report, "drivers", started, drivers);
    let homes = crate::extensions::homes(&crate::Root("/".into()), true);
    crate::collect_extensions(&mut report, &homes, true);
    let started = Instant::now();
    let portable = crate::pe::portable_programs(&homes);
    record_timed(&mut report, "portable programs", started, Outcome::Found(crate::pe::items_of(&portable)));
    report.portable = portable;
    report
}

#[cfg(windows)]
fn collect_registry(report: &mut Report) {
    use super::windows_registry as reg;
    let started = Instant::now();
    match reg::current_version().and_then(|cv| reg::os_of(&cv)) {
        Ok(os) => report.inventory.os = os,
        Err(e) => record(report, "os", Outcome::Failed(e)),
    }
    let (programs, unread) = reg::programs();
    let outcome = Outcome::with_errors(reg::items_of(&programs), "user hives not read", &unread);
    record_timed(report, "programs", started, outcome);
    report.programs = programs;
}

#[cfg(not(windows))]
fn collect_registry(report: &mut Report) {
    record(report, "programs", Outcome::Failed("the registry is read on Windows only".into()));
}
