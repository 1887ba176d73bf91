//! `ringfence feeds import` and `ringfence scan` as a user runs them, on real records from
//! `../shared/data`: the real Debian 12 dpkg status is scanned against distro data, and a
//! package fixed by a Debian backport is not reported.

use std::path::PathBuf;
use std::process::{Command, Output};

fn ringfence() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringfence"));
    for var in ["RINGFENCE_DATA_DIR", "RINGFENCE_DATABASE_URL", "RINGFENCE_CONFIG", "RINGFENCE_NVD_API_KEY"] {
        c.env_remove(var);
    }
    c.env("RINGFENCE_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    ringfence().args(args).output().expect("ringfence runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: the shared test data is not at {} (see README.md)", dir.display());
        None
    }
}

/// Debian tracker statements for bookworm, with fixed versions from the packages' own
/// changelogs (the shared tracker excerpt covers other packages).
const TRACKER: &str = r#"{
  "openssh": {"CVE-2024-6387": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1:9.2p1-2+deb12u3", "urgency": "high"}}}},
  "glibc": {"CVE-2023-4911": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "2.36-9+deb12u3", "urgency": "high"}}}},
  "xz-utils": {"CVE-2026-34743": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "5.4.1-1+deb12u1", "urgency": "medium"}}},
               "CVE-2024-3094": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"}}}},
  "jq": {"CVE-2026-32316": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1.6-2.1+deb12u2", "urgency": "high"}}}},
  "unzip": {"CVE-2022-0529": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "6.0-28+deb12u1", "urgency": "low"}}}}
}"#;

#[test]
fn import_then_scan_the_real_debian_12_status() {
    let Some(data) = data_dir() else { return };
    let dir = ringfence_store::testing::TempDir::new("ringfence-cli-intel");
    let db = dir.0.join("intel.db");
    let db = db.to_str().unwrap();
    let tracker = dir.0.join("tracker.json");
    std::fs::write(&tracker, TRACKER).unwrap();
    let nvd = data.join("nvd");
    let out = run(&[
        "feeds",
        "import",
        "--db",
        db,
        nvd.join("cves-page-0.json").to_str().unwrap(),
        nvd.join("cves-page-1.json").to_str().unwrap(),
        nvd.join("cves-page-2.json").to_str().unwrap(),
        data.join("kev/known_exploited_vulnerabilities.json").to_str().unwrap(),
        tracker.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imports = report["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 5);
    assert_eq!(imports[0]["added"], 25);
    assert_eq!(imports[3]["format"], "CISA KEV catalog");
    assert_eq!(imports[3]["added"], 1404);
    assert_eq!(imports[4]["format"], "Debian security tracker JSON");
    assert_eq!(imports[4]["added"], 6);

    // Importing the same file again changes nothing.
    let again = run(&["feeds", "import", "--db", db, nvd.join("cves-page-0.json").to_str().unwrap()]);
    assert!(text(&again).contains("0 added, 0 changed, 25 unchanged"), "{}", text(&again));

    let status = data.join("inventory/debian12-dpkg-status");
    let out = run(&["scan", "--db", db, "--inventory", status.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let scan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(scan["inventory"]["format"], "dpkg status");
    assert_eq!(scan["inventory"]["items"], 720);
    assert_eq!(scan["inventory"]["os"]["codename"], "bookworm");
    let found: Vec<&str> =
        scan["findings"].as_array().unwrap().iter().map(|f| f["cve"].as_str().unwrap()).collect();
    // openssh 1:9.2p1-2+deb12u6 and glibc 2.36-9+deb12u14 carry Debian's backported fixes,
    // although NVD's ranges cover their upstream versions; xz 5.6 never reached bookworm.
    assert_eq!(found, ["CVE-2022-0529", "CVE-2026-32316", "CVE-2026-34743"], "{}", text(&out));
    let unzip = &scan["findings"][0];
    assert_eq!(unzip["product"], "unzip");
    assert_eq!(unzip["installed_version"], "6.0-28");
    assert_eq!(unzip["fixed_version"], "6.0-28+deb12u1");
    assert_eq!(unzip["source"], "debian-tracker");
    assert!(unzip["cvss"].as_f64().is_some(), "CVSS joined from the NVD record: {unzip}");
    assert!(unzip["kev"].is_null());

    // The table form names the same findings.
    let out = run(&["scan", "--db", db, "--inventory", status.to_str().unwrap()]);
    let t = text(&out);
    assert!(t.contains("720 items, 3 findings") && t.contains("CVE-2026-34743"), "{t}");
}

#[test]
fn a_windows_inventory_is_matched_through_the_software_table() {
    let Some(data) = data_dir() else { return };
    let dir = ringfence_store::testing::TempDir::new("ringfence-cli-intel");
    let db = dir.0.join("intel.db");
    let db = db.to_str().unwrap();
    let out = run(&["feeds", "import", "--db", db, data.join("nvd/records").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("NVD CVE record (1 records): 1 added"), "{}", text(&out));
    let inv = dir.0.join("pc.json");
    std::fs::write(
        &inv,
        r#"{"os": {"family": "windows", "id": "windows", "version": "10.0.19045.4291", "name": "Windows 10 Pro 22H2"},
            "items": [{"kind": "application", "name": "7-Zip 23.01 (x64)", "version": "23.01", "vendor": "Igor Pavlov"}]}"#,
    )
    .unwrap();
    let out = run(&["scan", "--db", db, "--inventory", inv.to_str().unwrap(), "--format", "json"]);
    let scan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let seven = scan["findings"].as_array().unwrap().iter().find(|f| f["cve"] == "CVE-2025-0411").unwrap();
    assert_eq!(seven["fixed_version"], "24.09");
    assert!(seven["rule"].as_str().unwrap().starts_with("table rule '7-zip'"));
    assert_eq!(seven["kev"]["due_date"], serde_json::Value::Null, "KEV not imported in this database");
    let os = scan["findings"].as_array().unwrap().iter().find(|f| f["cve"] == "CVE-2024-38063").unwrap();
    assert_eq!(os["kind"], "os");
}

#[test]
fn bad_feeds_and_inventories_are_refused_with_a_reason() {
    let dir = ringfence_store::testing::TempDir::new("ringfence-cli-intel");
    let db = dir.0.join("intel.db");
    let db = db.to_str().unwrap();
    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let out = run(&["feeds", "import", "--db", db, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown feed format"), "{}", text(&out));
    let out = run(&["feeds", "import", "--db", db, "/no/such/file"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    // Scanning needs data first.
    let inv = dir.0.join("status");
    std::fs::write(&inv, "Package: a\nStatus: install ok installed\nVersion: 1\n").unwrap();
    let out = run(&["scan", "--db", db, "--inventory", inv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("holds no vulnerability data"), "{}", text(&out));
    std::fs::write(&inv, "garbage\n").unwrap();
    let out = run(&["scan", "--db", db, "--inventory", inv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("neither a dpkg status"), "{}", text(&out));
    let out = run(&["feeds", "sync", "--db", db, "--feed", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown feed 'bogus'"), "{}", text(&out));
}

#[test]
fn a_pending_debian_update_names_the_cves_it_fixes() {
    let Some(data) = data_dir() else { return };
    let changelog = data.join("inventory/changelogs/jq_1.6-2.1+deb12u3.changelog");
    // The real Debian 12 status has jq 1.6-2.1+deb12u1; the security suite offers deb12u3.
    let out = run(&["feeds", "changelog", changelog.to_str().unwrap(), "--installed", "1.6-2.1+deb12u1"]);
    assert!(out.status.success(), "{}", text(&out));
    let cves: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert!(cves.contains(&"CVE-2026-32316"), "{cves:?}");
    assert!(!cves.contains(&"CVE-2025-48060"), "fixed in deb12u1, which is installed: {cves:?}");
    let out = run(&["feeds", "changelog", changelog.to_str().unwrap(), "--installed", "1.6-2.1+deb12u3"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", text(&out));
    let out = run(&["feeds", "changelog", changelog.to_str().unwrap(), "--installed", "not a version!"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
