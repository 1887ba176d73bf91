//! The agent's parsers of command output and files (rpm, apk, snap, flatpak, apt, dnf,
//! fwupd, kernel modules, PowerShell and system_profiler JSON) and the server's reading of an
//! agent's inventory report: arbitrary input is read or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_agent::collectors::*;
use ringfence_agent::platforms::{macos, windows};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_os_release(text);
    let _ = parse_rpm_qa(text);
    let _ = parse_apk_installed(text);
    let _ = parse_snap_list(text);
    let _ = parse_flatpak_list(text);
    let _ = parse_apt_upgradable(text);
    let (a, b) = text.split_once('\u{0}').unwrap_or((text, ""));
    let _ = parse_dnf_updateinfo(a, b);
    let _ = parse_fwupd_devices(text);
    let _ = parse_proc_modules(text, &|_| None, "6.1.0");
    let _ = windows::parse_uninstall(text);
    let _ = windows::parse_hotfixes(text);
    let _ = windows::parse_bios(text);
    let _ = windows::parse_os(text, a);
    let _ = macos::parse_applications(text);
    let _ = macos::parse_software(text);
    let _ = macos::parse_softwareupdate(text);
    if let Ok(report) = serde_json::from_str::<ringfence_proto::AgentInventory>(text)
        && let Some(full) = report.full
    {
        let _ = ringfence_agent::checkin::delta(&full, &ringfence_inventory::Inventory::default());
    }
});
