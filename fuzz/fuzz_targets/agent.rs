//! The agent's parsers of command output and files (rpm, apk, snap, flatpak, apt, dnf,
//! fwupd, kernel modules, PowerShell and system_profiler JSON, pnputil, DISM, Firefox's
//! extensions.json), the executors' readers of
//! package-manager output (apt-get, dpkg-query, dnf, rpm, Windows Update, winget,
//! softwareupdate) and the server's reading of an agent's inventory report: arbitrary input
//! is read or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_agent::collectors::*;
use ringfence_agent::exec::{apt, dnf, keep_end};
use ringfence_agent::platforms::{macos, macos_install, windows, windows_install};

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
    let _ = windows::parse_hotfixes(text);
    let _ = windows::parse_bios(text);
    let drivers = windows_install::parse_pnputil_drivers(text);
    let _ = windows_install::driver_to_remove(&drivers, b);
    let _ = windows_install::driver_items(&drivers);
    let packages = windows_install::parse_dism_packages(text);
    let _ = windows_install::dism_package_for(&packages, b);
    let _ = windows_install::parse_uninstall_window(text);
    let _ = ringfence_agent::extensions::parse_firefox_extensions(text, "fuzz");
    let _ = macos::parse_applications(text);
    let _ = macos::parse_software(text);
    let _ = macos::parse_softwareupdate(text);
    let _ = apt::parse_dpkg_query(text);
    let _ = apt::parse_apt_errors(text);
    let _ = apt::failure_detail(text);
    let _ = dnf::parse_rpm_query(text);
    let _ = dnf::failure_detail(text);
    let _ = windows_install::parse_windows_update(text);
    let _ = windows_install::parse_winget(text, data.first().map(|b| i32::from(*b) - 1));
    let _ = windows_install::parse_winget_list(text, b);
    let _ = macos_install::parse_install(text, b);
    let kept = keep_end(text, data.len() / 2);
    assert!(kept.len() <= data.len() / 2 && text.ends_with(&kept));
    if let Ok(report) = serde_json::from_str::<ringfence_proto::AgentInventory>(text) {
        let base = report.full.unwrap_or_default();
        if let Some(d) = ringfence_agent::checkin::delta(&ringfence_inventory::Inventory::default(), &base) {
            // The agent's delta from nothing, applied by the server to nothing, is the inventory.
            let d: ringfence_proto::InventoryDelta =
                serde_json::from_value(d).expect("the agent's delta reads back");
            let mut items = base.items.clone();
            items.sort();
            items.dedup();
            let mut got = d.apply(Vec::new(), None).items;
            got.sort();
            assert_eq!(got, items);
        }
        if let Some(delta) = report.delta {
            // Server-side delta ingestion: no duplicates, nothing removed stays.
            let removed = delta.removed.clone();
            let added = delta.added.clone();
            let after = delta.apply(base.items.clone(), Some(base.os.clone())).items;
            let unique: std::collections::HashSet<_> = after.iter().collect();
            let base_unique: std::collections::HashSet<_> = base.items.iter().collect();
            assert!(unique.len() <= base_unique.len() + added.len());
            for r in &removed {
                assert!(!after.contains(r) || added.contains(r));
            }
        }
    }
});
