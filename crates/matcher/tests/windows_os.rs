//! The operating system as a vulnerable item and as a platform, on real NVD records
//! (`../shared/data/nvd`): Windows 10 and 11 per feature release, Windows Server 2008 R2 SP1
//! to 2025, from agent inventories and from CycloneDX SBOMs.

use ringfence_feeds::nvd;
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_matcher::{Finding, Index, NvdAdvisory, Table};
use std::path::PathBuf;

fn index() -> Option<Index> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nvd/records");
    if !dir.is_dir() {
        eprintln!("skipping: the shared test data is not at {} (see README.md)", dir.display());
        return None;
    }
    let mut index = Index::new(Table::builtin());
    for entry in std::fs::read_dir(dir).unwrap() {
        let cve = nvd::parse_record(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        index.add_nvd(&NvdAdvisory { cve_id: cve.id.clone(), configurations: cve.configurations });
    }
    Some(index)
}

fn windows(name: &str, build: &str, items: Vec<Item>) -> Inventory {
    Inventory {
        os: OsInfo {
            family: "windows".into(),
            id: "windows".into(),
            version: build.into(),
            codename: None,
            name: name.into(),
        },
        items,
    }
}

fn cves(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.cve_id.as_str()).collect()
}

fn finding<'a>(findings: &'a [Finding], cve: &str) -> Option<&'a Finding> {
    findings.iter().find(|f| f.cve_id == cve)
}

#[test]
fn every_windows_release_is_matched_by_its_own_product_and_build() {
    let Some(index) = index() else { return };
    // (name, build, product, vulnerable to CVE-2024-38063, to CVE-2024-21412)
    let cases = [
        ("Windows 10 Enterprise 2015 LTSB", "10.0.10240.20000", "windows_10_1507", true, false),
        ("Windows 10 Enterprise LTSC 2019", "10.0.17763.5458", "windows_10_1809", true, false),
        ("Windows 10 Pro", "10.0.19044.4045", "windows_10_21h2", true, true),
        ("Windows 10 Pro", "10.0.19045.4780", "windows_10_22h2", false, false),
        ("Windows 11 Pro", "10.0.22000.3146", "windows_11_21h2", true, false),
        ("Windows 11 Pro", "10.0.22621.3155", "windows_11_22h2", true, false),
        ("Windows 11 Pro", "10.0.22631.3154", "windows_11_23h2", true, true),
        ("Windows 11 Pro", "10.0.26100.1457", "windows_11_24h2", false, false),
        ("Windows Server 2016 Standard", "10.0.14393.7258", "windows_server_2016", true, false),
        ("Windows Server 2019 Datacenter", "10.0.17763.5457", "windows_server_2019", true, true),
        ("Windows Server 2022 Standard", "10.0.20348.2655", "windows_server_2022", false, false),
        ("Windows Server 2022 Standard", "10.0.20348.2321", "windows_server_2022", true, true),
    ];
    for (name, build, product, v38063, v21412) in cases {
        let (findings, _) = index.match_inventory(&windows(name, build, vec![]));
        let hit = finding(&findings, "CVE-2024-38063");
        assert_eq!(hit.is_some(), v38063, "{name} {build}: CVE-2024-38063 in {:?}", cves(&findings));
        if let Some(f) = hit {
            assert_eq!(f.product, format!("microsoft:{product}"), "{name} {build}");
            assert_eq!(f.kind, ItemKind::Os);
            assert_eq!(f.installed_version, build);
            assert!(f.rule.contains(&format!("windows build {build} → {product}")), "{}", f.rule);
        }
        assert_eq!(
            finding(&findings, "CVE-2024-21412").is_some(),
            v21412,
            "{name} {build}: CVE-2024-21412 in {:?}",
            cves(&findings)
        );
    }
}

#[test]
fn older_servers_match_nvd_s_release_names() {
    let Some(index) = index() else { return };
    // Windows Server 2008 R2 SP1: `windows_server_2008:r2:sp1` (CVE-2024-38063, CVE-2023-24932).
    let (f, _) = index.match_inventory(&windows("Windows Server 2008 R2 Standard", "6.1.7601.24000", vec![]));
    let hit = finding(&f, "CVE-2024-38063").expect("2008 R2 SP1");
    assert_eq!(hit.product, "microsoft:windows_server_2008");
    assert!(hit.rule.contains("windows_server_2008:r2:sp1"), "{}", hit.rule);
    assert!(finding(&f, "CVE-2023-24932").is_some());
    // Windows Server 2012 by build range; 2012 R2 by its own name, never by `2012:-`.
    let (f, _) = index.match_inventory(&windows("Windows Server 2012 Standard", "6.2.9200.25030", vec![]));
    assert!(finding(&f, "CVE-2024-38063").is_some(), "2012 below 6.2.9200.25031");
    let (f, _) = index.match_inventory(&windows("Windows Server 2012 Standard", "6.2.9200.25031", vec![]));
    assert!(finding(&f, "CVE-2024-38063").is_none(), "2012 at the fixed build");
    assert!(finding(&f, "CVE-2023-24932").is_some(), "`windows_server_2012:-` is every 2012 build");
    let (f, _) =
        index.match_inventory(&windows("Windows Server 2012 R2 Datacenter", "6.3.9600.21620", vec![]));
    let hit = finding(&f, "CVE-2023-24932").expect("2012 R2");
    assert!(
        hit.rule.contains("windows_server_2012:r2"),
        "R2 is matched as R2, not as `2012:-`: {}",
        hit.rule
    );
    // Windows Server 2008 SP2 is not 2008 R2.
    let (f, _) = index.match_inventory(&windows("Windows Server 2008 Standard", "6.0.6003.21000", vec![]));
    let hit = finding(&f, "CVE-2024-38063").expect("2008 SP2");
    assert!(hit.rule.contains("windows_server_2008:-:sp2"), "{}", hit.rule);
    // A client build of the same number is not the server.
    let (f, _) =
        index.match_inventory(&windows("Windows 10 Enterprise LTSB 2016", "10.0.14393.7258", vec![]));
    assert_eq!(finding(&f, "CVE-2024-38063").unwrap().product, "microsoft:windows_10_1607");
    // A build NVD has no release for gives no OS finding, and no guess.
    let (f, _) = index.match_inventory(&windows("Windows 10 Insider", "10.0.99999.1", vec![]));
    assert!(f.iter().all(|f| f.kind != ItemKind::Os), "{:?}", cves(&f));
}

fn winrar(version: &str) -> Item {
    let mut i = Item::new(ItemKind::Application, format!("WinRAR {version} (64-bit)"), version);
    i.vendor = Some("win.rar GmbH".into());
    i
}

#[test]
fn applications_need_the_windows_platform_of_their_and_configuration() {
    let Some(index) = index() else { return };
    let (f, _) = index.match_inventory(&windows("Windows 11 Pro", "10.0.22631.4037", vec![winrar("7.12.0")]));
    let hit = finding(&f, "CVE-2025-8088").expect("WinRAR 7.12 on Windows");
    assert_eq!(hit.product, "rarlab:winrar");
    assert_eq!(hit.fixed_version.as_deref(), Some("7.13"));
    // The same WinRAR on a device that is not Windows: the platform is absent.
    let linux = Inventory { os: OsInfo::debian("12.11"), items: vec![winrar("7.12.0")] };
    let (f, _) = index.match_inventory(&linux);
    assert!(finding(&f, "CVE-2025-8088").is_none(), "{:?}", cves(&f));
    assert!(finding(&f, "CVE-2023-38831").is_none(), "WinRAR 7.12 is past 6.23");
    // An unknown OS (an inventory without one) is no platform either.
    let (f, _) = index.match_inventory(&Inventory { os: OsInfo::default(), items: vec![winrar("7.12.0")] });
    assert!(finding(&f, "CVE-2025-8088").is_none());
}

const SBOM: &str = r#"{
  "bomFormat": "CycloneDX", "specVersion": "1.6",
  "metadata": {"component": {"type": "device", "name": "LAPTOP-ACC-042"}},
  "components": [
    {"type": "operating-system", "name": "Microsoft Windows 11 Pro", "version": "10.0.22631.3155",
     "cpe": "cpe:2.3:o:microsoft:windows_11_23h2:10.0.22631.3155:*:*:*:*:*:*:*"},
    {"type": "application", "name": "WinRAR 7.01 (64-bit)", "version": "7.01.0", "publisher": "win.rar GmbH"},
    {"type": "application", "name": "7-Zip 24.09 (x64)", "version": "24.09", "publisher": "Igor Pavlov"}
  ]
}"#;

#[test]
fn a_windows_sbom_gets_its_os_and_platform_cves() {
    let Some(index) = index() else { return };
    let loaded = ringfence_inventory::load(SBOM).unwrap();
    assert_eq!(loaded.inventory.os.family, "windows");
    assert_eq!(loaded.inventory.os.version, "10.0.22631.3155");
    let (f, coverage) = index.match_inventory(&loaded.inventory);
    let os = finding(&f, "CVE-2024-38063").expect("Windows 11 23H2 below 10.0.22631.4037");
    assert_eq!(os.product, "microsoft:windows_11_23h2");
    assert_eq!(os.fixed_version.as_deref(), Some("10.0.22631.4037"));
    assert!(finding(&f, "CVE-2024-21412").is_none(), "3155 is the build that fixed CVE-2024-21412");
    assert!(finding(&f, "CVE-2025-8088").is_some(), "WinRAR 7.01 AND Windows: {:?}", cves(&f));
    assert!(finding(&f, "CVE-2025-0411").is_none(), "7-Zip 24.09 is fixed");
    assert_eq!(coverage.untranslated, 0);
    // Every finding is one of these: no new false positive.
    let mut got = cves(&f);
    got.sort();
    got.dedup();
    for cve in &got {
        assert!(
            ["CVE-2023-38831", "CVE-2024-38063", "CVE-2025-8088"].contains(cve),
            "unexpected {cve} in {got:?}"
        );
    }
}

#[test]
fn an_sbom_os_named_only_by_its_cpe_is_still_windows() {
    let Some(index) = index() else { return };
    let sbom = r#"{"bomFormat":"CycloneDX","components":[
      {"type":"operating-system","name":"Windows","version":"23H2",
       "cpe":"cpe:2.3:o:microsoft:windows_11_23h2:10.0.22631.2861:*:*:*:*:*:*:*"}]}"#;
    let inv = ringfence_inventory::load(sbom).unwrap().inventory;
    assert_eq!(inv.os.version, "10.0.22631.2861", "the build comes from the CPE");
    let (f, _) = index.match_inventory(&inv);
    assert!(finding(&f, "CVE-2024-21412").is_some(), "{:?}", cves(&f));
    assert!(finding(&f, "CVE-2024-38063").is_some());
    // A server given by CPE only.
    let sbom = r#"{"bomFormat":"CycloneDX","components":[
      {"type":"operating-system","name":"Microsoft Windows","version":"10.0.20348.2113",
       "cpe":"cpe:2.3:o:microsoft:windows_server_2022:10.0.20348.2113:*:*:*:*:*:*:*"}]}"#;
    let inv = ringfence_inventory::load(sbom).unwrap().inventory;
    let (f, _) = index.match_inventory(&inv);
    assert_eq!(finding(&f, "CVE-2024-21412").unwrap().product, "microsoft:windows_server_2022");
    assert!(f.iter().all(|f| !f.product.contains("windows_11")), "{:?}", cves(&f));
}
