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

/// A gzip stream of `prefix`, `n` bytes of `fill`, then `suffix`, written without holding it.
fn gzip_bomb(path: &std::path::Path, prefix: &str, fill: u8, n: u64, suffix: &str) {
    use std::io::Write;
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all(prefix.as_bytes()).unwrap();
    let chunk = vec![fill; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    gz.write_all(suffix.as_bytes()).unwrap();
    gz.finish().unwrap();
}

#[test]
fn feed_bombs_stop_at_their_limit_and_the_other_files_still_go_in() {
    let dir = ringfence_store::testing::TempDir::new("ringfence-cli-bombs");
    let db = dir.0.join("intel.db");
    let db = db.to_str().unwrap();
    // An NVD page with one 64 MiB description (64 KB compressed): past the 16 MiB value limit.
    let nvd = dir.0.join("nvd-bomb.json.gz");
    gzip_bomb(
        &nvd,
        r#"{"format":"NVD_CVE","version":"2.0","vulnerabilities":[{"cve":{"id":"CVE-2099-0001","descriptions":[{"lang":"en","value":""#,
        b'a',
        64 << 20,
        r#""}]}}]}"#,
    );
    // EPSS with one 8 MiB line, and EPSS of 20 million empty lines.
    let long_line = dir.0.join("epss-line.csv.gz");
    gzip_bomb(&long_line, "cve,epss,percentile\nCVE-2024-1,", b'9', 8 << 20, "\n");
    let newlines = dir.0.join("epss-newlines.csv.gz");
    gzip_bomb(&newlines, "cve,epss,percentile\n", b'\n', 20_000_000, "");
    // A zip whose only entry claims to be 3.75 GiB.
    let zip_path = dir.0.join("osv-claims.zip");
    {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("GHSA-xxxx.json", opts).unwrap();
        w.write_all(b"{}").unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&zip_path).unwrap();
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&0xF000_0000u32.to_le_bytes());
        std::fs::write(&zip_path, bytes).unwrap();
    }
    // A good file beside them still goes in.
    let kev = dir.0.join("kev.json");
    std::fs::write(
        &kev,
        r#"{"title":"CISA Catalog of Known Exploited Vulnerabilities","catalogVersion":"2025.08.25","dateReleased":"2025-08-25T00:00:00.000Z","count":1,"vulnerabilities":[{"cveID":"CVE-2024-1709","vendorProject":"ConnectWise","product":"ScreenConnect","vulnerabilityName":"ConnectWise ScreenConnect Authentication Bypass","dateAdded":"2024-02-22","shortDescription":"x","requiredAction":"Apply updates.","dueDate":"2024-02-29","knownRansomwareCampaignUse":"Known","notes":""}]}"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = run(&[
        "feeds",
        "import",
        "--db",
        db,
        nvd.to_str().unwrap(),
        long_line.to_str().unwrap(),
        newlines.to_str().unwrap(),
        zip_path.to_str().unwrap(),
        kev.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "the bombs took {:?}",
        started.elapsed()
    );
    assert!(out.status.code().is_some(), "the import ended by itself, not by a signal: {t}");
    assert!(t.contains("nvd-bomb.json.gz") && t.contains("longer than the limit of 16 MiB"), "{t}");
    assert!(t.contains("epss-line.csv.gz") && t.contains("RINGFENCE_FEED_MAX_LINE_KIB"), "{t}");
    assert!(t.contains("epss-newlines.csv.gz") && t.contains("more than the limit of 10000000 lines"), "{t}");
    assert!(t.contains("entry larger than the limit of 256 MiB"), "{t}");
    assert!(t.contains("GHSA-xxxx.json"), "the skipped entry is named: {t}");
    // The KEV catalog beside them went in.
    assert!(t.contains("kev.json: CISA KEV catalog (1 records): 1 added"), "the good file was imported: {t}");
    assert!(!t.contains("not valid JSON"), "a limit is not called bad JSON: {t}");
    // A limit set in the environment applies, and a bad value names its variable.
    let out = ringfence()
        .env("RINGFENCE_FEED_MAX_LINES", "lots")
        .args(["feeds", "import", "--db", db, kev.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        text(&out).contains("RINGFENCE_FEED_MAX_LINES must be a positive whole number"),
        "{}",
        text(&out)
    );
}
