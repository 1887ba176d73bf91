//! The matcher against real NVD records and a real Debian 12 dpkg status
//! (`../shared/data`), with distro statements taken from Debian's own changelogs.

use ringfence_feeds::nvd;
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_matcher::{DistroAdvisory, DistroState, Finding, Index, NvdAdvisory, Table};
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: the shared test data is not at {} (see README.md)", dir.display());
        None
    }
}

fn nvd_index(dir: &std::path::Path) -> Index {
    let mut index = Index::new(Table::builtin());
    for entry in std::fs::read_dir(dir.join("nvd/records")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let cve = nvd::parse_record(&text).unwrap();
        index.add_nvd(&NvdAdvisory { cve_id: cve.id.clone(), configurations: cve.configurations });
    }
    index
}

fn app(name: &str, version: &str) -> Item {
    Item::new(ItemKind::Application, name, version)
}

fn windows(build: &str, items: Vec<Item>) -> Inventory {
    Inventory {
        os: OsInfo {
            family: "windows".into(),
            id: "windows".into(),
            version: build.into(),
            codename: None,
            name: "Windows 10 Pro 22H2".into(),
        },
        items,
    }
}

fn find<'a>(findings: &'a [Finding], cve: &str) -> Option<&'a Finding> {
    findings.iter().find(|f| f.cve_id == cve)
}

#[test]
fn windows_programs_match_nvd_ranges_through_the_table() {
    let Some(dir) = data_dir() else { return };
    let index = nvd_index(&dir);
    let inv = windows(
        "10.0.19045.4291",
        vec![
            app("7-Zip 23.01 (x64)", "23.01"),
            app("Notepad++ (64-bit x64)", "8.5.6"),
            app("WinRAR 6.22 (64-bit)", "6.22.0"),
            app("Adobe Acrobat Reader DC", "23.003.20215"),
        ],
    );
    let (findings, coverage) = index.match_inventory(&inv);
    let seven = find(&findings, "CVE-2024-11477").expect("7-Zip 23.01 < 24.07");
    assert_eq!(seven.product, "7-zip:7-zip");
    assert_eq!(seven.fixed_version.as_deref(), Some("24.07"));
    assert_eq!(seven.source, "nvd");
    assert!(seven.rule.contains("table rule '7-zip'"), "{}", seven.rule);
    assert!(find(&findings, "CVE-2025-0411").is_some());
    let npp = find(&findings, "CVE-2023-40031").expect("Notepad++ 8.5.6 <= 8.5.6");
    assert_eq!(npp.fixed_version, None, "an including end bound names no fixed version");
    assert!(find(&findings, "CVE-2023-38831").is_some(), "WinRAR 6.22.0 < 6.23");
    assert!(find(&findings, "CVE-2025-8088").is_some(), "WinRAR < 7.13 on the Windows platform");
    assert!(find(&findings, "CVE-2023-26369").is_some(), "Acrobat Reader DC (continuous) on Windows");
    let os = find(&findings, "CVE-2024-38063").expect("Windows 10 22H2 build 4291 < 4780");
    assert_eq!(os.product, "microsoft:windows_10_22h2");
    assert_eq!(os.fixed_version.as_deref(), Some("10.0.19045.4780"));
    assert_eq!(coverage.untranslated, 0);

    // Patched versions: nothing.
    let patched = windows(
        "10.0.19045.5011",
        vec![app("7-Zip 24.09 (x64)", "24.09"), app("WinRAR 7.13 (64-bit)", "7.13.0")],
    );
    let (findings, _) = index.match_inventory(&patched);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn and_configurations_need_their_platform() {
    let Some(dir) = data_dir() else { return };
    let index = nvd_index(&dir);
    // WinRAR's CVE-2025-8088 is an AND with `o:microsoft:windows` (vulnerable: false).
    let mac = Inventory {
        os: OsInfo {
            family: "macos".into(),
            id: "macos".into(),
            version: "14.5".into(),
            ..OsInfo::default()
        },
        items: vec![app("WinRAR", "6.22.0")],
    };
    let (findings, _) = index.match_inventory(&mac);
    assert!(find(&findings, "CVE-2023-38831").is_some(), "the plain OR configuration still applies");
    assert!(find(&findings, "CVE-2025-8088").is_none(), "the Windows-only AND configuration does not");

    // TP-Link Archer AX21: firmware AND hardware.
    let mut fw = Item::new(ItemKind::Firmware, "Archer AX21 firmware", "1.1.2");
    fw.cpe = Some("cpe:2.3:o:tp-link:archer_ax21_firmware:1.1.2:*:*:*:*:*:*:*".into());
    let mut hw = Item::new(ItemKind::Hardware, "Archer AX21", "-");
    hw.cpe = Some("cpe:2.3:h:tp-link:archer_ax21:-:*:*:*:*:*:*:*".into());
    let appliance = |items| Inventory { os: OsInfo::default(), items };
    let (findings, _) = index.match_inventory(&appliance(vec![fw.clone(), hw.clone()]));
    let f = find(&findings, "CVE-2023-1389").expect("firmware 1.1.2 < 1.1.4 on an AX21");
    assert_eq!(f.product, "tp-link:archer_ax21_firmware");
    assert_eq!(f.items, ["Archer AX21 firmware"], "the hardware platform is not itself a finding");
    let (findings, _) = index.match_inventory(&appliance(vec![fw]));
    assert!(find(&findings, "CVE-2023-1389").is_none(), "without the hardware the AND fails");
}

fn debian_statement(package: &str, cve: &str, state: DistroState, urgency: Option<&str>) -> DistroAdvisory {
    DistroAdvisory {
        distro: "debian".into(),
        release: "12".into(),
        package: package.into(),
        cve_id: cve.into(),
        state,
        urgency: urgency.map(str::to_string),
        source: "debian-tracker".into(),
    }
}

#[test]
fn debian_12_status_is_matched_by_source_package_not_by_nvd() {
    let Some(dir) = data_dir() else { return };
    let mut index = nvd_index(&dir);
    use DistroState::*;
    // Facts from the packages' changelog.Debian (bookworm-security uploads).
    for a in [
        debian_statement("openssh", "CVE-2024-6387", Fixed("1:9.2p1-2+deb12u3".into()), Some("high")),
        debian_statement("glibc", "CVE-2023-4911", Fixed("2.36-9+deb12u3".into()), Some("high")),
        debian_statement("expat", "CVE-2024-45490", Fixed("2.5.0-1+deb12u1".into()), Some("medium")),
        debian_statement("xz-utils", "CVE-2026-34743", Fixed("5.4.1-1+deb12u1".into()), Some("medium")),
        debian_statement("jq", "CVE-2026-32316", Fixed("1.6-2.1+deb12u2".into()), Some("high")),
        debian_statement("unzip", "CVE-2022-0529", Fixed("6.0-28+deb12u1".into()), Some("low")),
        debian_statement("curl", "CVE-2099-0001", Open, Some("unimportant")),
        debian_statement("curl", "CVE-2099-0002", Open, Some("low")),
        debian_statement("sudo", "CVE-2023-22809", NotAffected, None),
    ] {
        index.add_distro(a);
    }
    let text = std::fs::read_to_string(dir.join("inventory/debian12-dpkg-status")).unwrap();
    let loaded = ringfence_inventory::load(&text).unwrap();
    assert_eq!(loaded.inventory.os.codename.as_deref(), Some("bookworm"));
    assert!(loaded.warnings.is_empty());
    let (findings, coverage) = index.match_inventory(&loaded.inventory);
    assert_eq!(coverage.packages_without_distro_data, 0);
    let got: Vec<&str> = findings.iter().map(|f| f.cve_id.as_str()).collect();
    // openssh 1:9.2p1-2+deb12u6 carries the backported fix although NVD's range
    // (openssh < 9.8p1) covers 9.2p1; the same for glibc and expat.
    assert_eq!(got, ["CVE-2022-0529", "CVE-2026-32316", "CVE-2026-34743", "CVE-2099-0002"], "{findings:#?}");
    let xz = find(&findings, "CVE-2026-34743").unwrap();
    assert_eq!(xz.product, "xz-utils");
    assert_eq!(xz.installed_version, "5.4.1-1");
    assert_eq!(xz.fixed_version.as_deref(), Some("5.4.1-1+deb12u1"));
    assert_eq!(xz.items, ["liblzma-dev", "liblzma5", "xz-utils"]);
    assert_eq!(xz.source, "debian-tracker");
    let jq = find(&findings, "CVE-2026-32316").unwrap();
    assert_eq!(jq.items, ["jq", "libjq1"]);
    assert_eq!(find(&findings, "CVE-2099-0002").unwrap().fixed_version, None);
}

#[test]
fn without_distro_data_packages_are_reported_as_uncovered() {
    let Some(dir) = data_dir() else { return };
    let index = nvd_index(&dir);
    let text = std::fs::read_to_string(dir.join("inventory/debian12-dpkg-status")).unwrap();
    let loaded = ringfence_inventory::load(&text).unwrap();
    let (findings, coverage) = index.match_inventory(&loaded.inventory);
    assert!(findings.is_empty(), "NVD CPE ranges are never applied to distro packages: {findings:#?}");
    assert_eq!(coverage.packages_without_distro_data, loaded.inventory.items.len());
    assert_eq!(coverage.missing_distro.as_deref(), Some("debian:12"));
}

#[test]
fn log4j_from_an_sbom_and_firmware_behind_its_hardware() {
    let Some(dir) = data_dir() else { return };
    let index = nvd_index(&dir);
    let sbom = |version: &str| {
        let doc = serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.5",
            "components": [{"type": "library", "group": "org.apache.logging.log4j", "name": "log4j-core",
                "version": version, "purl": format!("pkg:maven/org.apache.logging.log4j/log4j-core@{version}")}]
        });
        ringfence_inventory::cyclonedx::parse(&doc).unwrap()
    };
    let (findings, _) = index.match_inventory(&sbom("2.14.1"));
    let f = find(&findings, "CVE-2021-45046").expect("log4j-core 2.14.1 is in [2.13.0, 2.16.0)");
    assert_eq!(f.product, "apache:log4j");
    assert_eq!(f.fixed_version.as_deref(), Some("2.16.0"));
    for patched in ["2.16.0", "2.12.2"] {
        let (findings, _) = index.match_inventory(&sbom(patched));
        assert!(find(&findings, "CVE-2021-45046").is_none(), "{patched}: an excluded bound is not affected");
    }
    // The Siemens firmware criteria of the same record need their hardware (AND with a
    // vulnerable:false platform).
    let mut fw = Item::new(ItemKind::Firmware, "SIMATIC firmware", "2.6.0");
    fw.cpe = Some("cpe:2.3:o:siemens:6bk1602-0aa12-0tp0_firmware:2.6.0:*:*:*:*:*:*:*".into());
    let mut hw = Item::new(ItemKind::Hardware, "6BK1602-0AA12-0TP0", "-");
    hw.cpe = Some("cpe:2.3:h:siemens:6bk1602-0aa12-0tp0:-:*:*:*:*:*:*:*".into());
    let with = Inventory { os: OsInfo::default(), items: vec![fw.clone(), hw] };
    assert!(find(&index.match_inventory(&with).0, "CVE-2021-45046").is_some());
    let without = Inventory { os: OsInfo::default(), items: vec![fw] };
    assert!(find(&index.match_inventory(&without).0, "CVE-2021-45046").is_none());
}
