//! macOS: applications from `system_profiler -json SPApplicationsDataType`, the OS from
//! `SPSoftwareDataType`, pending updates from `softwareupdate --list`.

use crate::{Outcome, PendingUpdate, Report, record};
use ringfence_inventory::{Item, ItemKind, OsInfo};
use serde_json::Value;

pub fn parse_applications(json: &str) -> Result<Vec<Item>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("system_profiler output is not JSON: {e}"))?;
    let apps = v
        .get("SPApplicationsDataType")
        .and_then(Value::as_array)
        .ok_or("system_profiler output has no SPApplicationsDataType array")?;
    Ok(apps
        .iter()
        .filter_map(|a| {
            let name = a.get("_name")?.as_str()?;
            let version = a.get("version").and_then(Value::as_str).unwrap_or("unknown");
            let mut i = Item::new(ItemKind::Application, name, version);
            i.manager = Some("macos-app".into());
            i.vendor = a
                .get("signed_by")
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .and_then(Value::as_str)
                .map(|s| s.trim_start_matches("Developer ID Application: ").to_string());
            Some(i)
        })
        .collect())
}

/// `os_version` reads like "macOS 14.5 (23F79)".
pub fn parse_software(json: &str) -> Result<OsInfo, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("system_profiler output is not JSON: {e}"))?;
    let sw = v
        .get("SPSoftwareDataType")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or("system_profiler output has no SPSoftwareDataType")?;
    let name = sw.get("os_version").and_then(Value::as_str).ok_or("no os_version")?.to_string();
    let version = name.split_whitespace().nth(1).unwrap_or("").to_string();
    Ok(OsInfo { family: "macos".into(), id: "macos".into(), version, codename: None, name })
}

/// `softwareupdate --list`: `* Label: NAME-VERSION` followed by a `Title: …, Version: …` line.
pub fn parse_softwareupdate(text: &str) -> Vec<PendingUpdate> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(label) = line.trim().strip_prefix("* Label: ") else { continue };
        let details = lines.peek().map(|l| l.trim()).unwrap_or("");
        let field =
            |k: &str| details.split(", ").find_map(|p| p.strip_prefix(k)).map(|v| v.trim().to_string());
        out.push(PendingUpdate {
            manager: "softwareupdate".into(),
            name: field("Title: ").unwrap_or_else(|| label.to_string()),
            installed: String::new(),
            candidate: field("Version: ").unwrap_or_default(),
            origin: "softwareupdate".into(),
            security: label.contains("Security") || details.contains("Security"),
            advisories: Vec::new(),
            cves: Vec::new(),
        });
    }
    out
}

/// Runs the collectors (macOS only; not exercised on the Linux build machines).
pub fn collect() -> Report {
    let mut report = Report::default();
    let run = |args: &[&str]| {
        crate::collectors::run("system_profiler", args)
            .unwrap_or_else(|| Err("system_profiler is not available".into()))
    };
    match run(&["-json", "SPSoftwareDataType"]).and_then(|o| parse_software(&o)) {
        Ok(os) => report.inventory.os = os,
        Err(e) => record(&mut report, "os", Outcome::Failed(e)),
    }
    let outcome = match run(&["-json", "SPApplicationsDataType"]).and_then(|o| parse_applications(&o)) {
        Ok(items) => Outcome::Found(items),
        Err(e) => Outcome::Failed(e),
    };
    record(&mut report, "applications", outcome);
    if let Some(Ok(out)) = crate::collectors::run("softwareupdate", &["--list"]) {
        report.pending_updates = parse_softwareupdate(&out);
    }
    report
}
