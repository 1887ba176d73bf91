//! The feed parsers on the real data in `../shared/data` (KEV catalog, NVD records and API
//! pages), and on broken input: malformed records are skipped and counted, a malformed feed
//! is an error that says what was expected.

use ringfence_feeds::{Format, detect, epss, kev, nvd, open};
use std::io::{Cursor, Write};
use std::path::PathBuf;

fn shared(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("RINGFENCE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let p = base.join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} not found (set RINGFENCE_SHARED_DATA)", p.display());
        None
    }
}

fn reader(p: &PathBuf) -> Box<dyn std::io::BufRead> {
    open(std::fs::File::open(p).unwrap()).unwrap()
}

#[test]
fn the_real_kev_catalog() {
    let Some(p) = shared("kev/known_exploited_vulnerabilities.json") else { return };
    assert_eq!(detect(&mut *reader(&p)).unwrap(), Format::Kev);
    let mut entries = Vec::new();
    let (catalog, skipped) = kev::parse(reader(&p), &mut |e| entries.push(e)).unwrap();
    assert_eq!(catalog.version, "2025.08.25");
    assert_eq!(catalog.count, Some(1404));
    assert_eq!((entries.len(), skipped.total()), (1404, 0));
    let citrix_bleed = entries.iter().find(|e| e.cve_id == "CVE-2023-4966").unwrap();
    assert!(citrix_bleed.ransomware);
    assert_eq!(citrix_bleed.date_added.to_string(), "2023-10-18");
    assert_eq!(citrix_bleed.due_date.to_string(), "2023-11-08");
    assert!(entries.iter().any(|e| !e.ransomware));
}

#[test]
fn malformed_kev_entries_are_skipped_and_counted() {
    let doc = r#"{"catalogVersion": "x", "count": 3, "vulnerabilities": [
        {"cveID": "CVE-2024-3400", "dateAdded": "2024-04-12", "dueDate": "2024-04-19", "knownRansomwareCampaignUse": "Unknown"},
        {"cveID": "CVE-2024-0001", "dateAdded": "2024-04-12", "dueDate": "soon"},
        {"cveID": "not-a-cve", "dateAdded": "2024-04-12", "dueDate": "2024-04-19"},
        {"dateAdded": 7}
    ]}"#;
    let mut ok = Vec::new();
    let (_, skipped) = kev::parse(Cursor::new(doc), &mut |e| ok.push(e.cve_id)).unwrap();
    assert_eq!(ok, ["CVE-2024-3400"]);
    assert_eq!(skipped.total(), 3);
    assert_eq!(skipped.by_reason["dueDate is not a date (YYYY-MM-DD)"], (1, "CVE-2024-0001".to_owned()));
    assert!(skipped.by_reason.contains_key("cveID is not a CVE id"));
    assert!(skipped.by_reason.keys().any(|k| k.starts_with("malformed KEV entry")), "{skipped:?}");
    let err = kev::parse(Cursor::new(r#"{"vulnerabilities": [{"cveID": "CVE-2024-3400""#), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let err = kev::parse(Cursor::new(r#"{"catalogVersion": "x"}"#), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no \"vulnerabilities\" array"), "{err}");
}

#[test]
fn the_real_nvd_pages_and_records() {
    let Some(dir) = shared("nvd") else { return };
    let mut total = 0;
    for page in ["cves-page-0.json", "cves-page-1.json", "cves-page-2.json"] {
        let p = dir.join(page);
        assert_eq!(detect(&mut *reader(&p)).unwrap(), Format::NvdPage);
        let mut n = 0;
        let (header, skipped) = nvd::parse_page(reader(&p), &mut |_| n += 1).unwrap();
        assert_eq!(skipped.total(), 0, "{skipped:?}");
        assert_eq!(header.total_results, 62);
        total += n;
    }
    assert_eq!(total, 62);

    let mut kev = 0;
    let mut unconfigured = 0;
    for f in std::fs::read_dir(dir.join("records")).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap();
        let cve = nvd::parse_record(&text).unwrap_or_else(|e| panic!("{}: {e}", f.path().display()));
        kev += usize::from(cve.kev.is_some());
        unconfigured += usize::from(cve.configurations.is_empty());
        assert!(!cve.description.is_empty());
    }
    assert_eq!((kev, unconfigured), (40, 8));

    let log4j = nvd::parse_record(&std::fs::read_to_string(dir.join("records/CVE-2021-45046.json")).unwrap())
        .unwrap();
    assert_eq!(log4j.status, nvd::VulnStatus::Modified);
    let first = log4j.criteria().next().unwrap();
    assert!(first.vulnerable);
    assert_eq!(first.criteria_text, "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*");
    assert_eq!(first.start, Some(nvd::Bound { version: "2.0.1".into(), inclusive: true }));
    assert_eq!(first.end, Some(nvd::Bound { version: "2.12.2".into(), inclusive: false }));
    // A firmware-and-hardware pair: an AND of the firmware and a vulnerable:false platform.
    let pair = log4j.configurations.iter().find(|c| c.operator == nvd::Operator::And).unwrap();
    assert_eq!(pair.nodes.len(), 2);
    assert!(pair.nodes.iter().any(|n| n.matches.iter().all(|m| !m.vulnerable)));
    assert_eq!(log4j.best_cvss().unwrap().version, "3.1");
    assert!(log4j.best_cvss().unwrap().primary);

    let v4 =
        nvd::parse_record(&std::fs::read_to_string(dir.join("records/CVE-2025-8088.json")).unwrap()).unwrap();
    assert_eq!(v4.best_cvss().unwrap().version, "4.0");
    let v2 = nvd::parse_record(&std::fs::read_to_string(dir.join("records/CVE-2017-11882.json")).unwrap())
        .unwrap();
    assert!(v2.cvss.iter().any(|c| c.version == "2.0"));
    assert!(v2.kev.is_some());
}

#[test]
fn the_recorded_api_pages() {
    let Some(dir) = shared("nvd-api") else { return };
    for (file, records, total) in [
        ("respPage1.json", 2, 3),
        ("respPage2.json", 1, 3),
        ("respPageFull.json", 3, 3),
        ("emptyResp.json", 0, 0),
    ] {
        let mut n = 0;
        let (header, skipped) = nvd::parse_page(reader(&dir.join(file)), &mut |_| n += 1).unwrap();
        assert_eq!((n, header.total_results, skipped.total()), (records, total, 0), "{file}");
    }
}

#[test]
fn malformed_nvd_records_are_skipped_with_their_reason() {
    let doc = r#"{"resultsPerPage": 4, "startIndex": 0, "totalResults": 4, "format": "NVD_CVE", "vulnerabilities": [
        {"cve": {"id": "CVE-2024-0001", "vulnStatus": "Analyzed", "descriptions": [{"lang": "en", "value": "ok"}]}},
        {"cve": {"id": "CVE-2024-0002", "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:broken"}]}]}]}},
        {"cve": {"id": "CVE-2024-0003", "configurations": [{"nodes": [{"operator": "XOR", "cpeMatch": []}]}]}},
        {"cve": {"id": "CVE-2024-0004", "configurations": [{"nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:v:p:*:*:*:*:*:*:*:*", "versionEndIncluding": "1", "versionEndExcluding": "2"}]}]}]}},
        {"cve": {"id": 5}},
        {"notcve": {}}
    ]}"#;
    let mut ok = Vec::new();
    let (header, skipped) = nvd::parse_page(Cursor::new(doc), &mut |c| ok.push(c.id)).unwrap();
    assert_eq!(header.total_results, 4);
    assert_eq!(ok, ["CVE-2024-0001"]);
    assert_eq!(skipped.total(), 5);
    let reasons: Vec<&String> = skipped.by_reason.keys().collect();
    assert!(reasons.iter().any(|r| r.starts_with("unparseable CPE criterion")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("unknown configuration operator 'XOR'")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("both an including and an excluding end bound")),
        "{reasons:?}"
    );
    assert_eq!(skipped.by_reason["unparseable CPE criterion: a CPE 2.3 formatted string has 13 colon-separated components (cpe:2.3: and 11 attributes), this one has 4"].1, "CVE-2024-0002");
}

#[test]
fn epss_plain_and_gzip() {
    let csv = "#model_version:v2023.03.01,score_date:2025-08-25T00:00:00+0000\ncve,epss,percentile\nCVE-2024-3400,0.94335,0.99950\nCVE-2023-4966,0.94,0.999\nbad,0.1,0.2\nCVE-2024-0001,1.5,0.5\nCVE-2024-0002,abc,0.5\n";
    let mut scores = Vec::new();
    let mut r = open(Cursor::new(csv.as_bytes().to_vec())).unwrap();
    assert_eq!(detect(&mut *r).unwrap(), Format::Epss);
    let (header, skipped) = epss::parse(&mut *r, &mut |s| scores.push(s)).unwrap();
    assert_eq!(header.model_version, "v2023.03.01");
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[0].cve_id, "CVE-2024-3400");
    assert!((scores[0].score - 0.94335).abs() < 1e-9);
    assert_eq!(skipped.total(), 3);
    assert!(skipped.by_reason.contains_key("epss is outside 0..1"));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).unwrap();
    let mut r = open(Cursor::new(gz.finish().unwrap())).unwrap();
    assert_eq!(detect(&mut *r).unwrap(), Format::Epss);
    let mut n = 0;
    epss::parse(&mut *r, &mut |_| n += 1).unwrap();
    assert_eq!(n, 2);

    let err = epss::parse(&mut Cursor::new("a,b,c\n1,2,3\n"), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("expected the EPSS header"), "{err}");
    assert!(detect(&mut Cursor::new("hello")).is_err());
}

#[test]
fn the_real_osv_records_and_the_broken_ones() {
    let Some(dir) = shared("osv") else { return };
    for f in std::fs::read_dir(dir.join("valid")).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap();
        ringfence_feeds::osv::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.path().display()));
    }
    let broken = std::fs::read_to_string(dir.join("invalid/nointroduced-CVE-2023-41045.json")).unwrap();
    let err = ringfence_feeds::osv::parse(&broken).unwrap_err();
    assert!(err.contains("no 'introduced' event"), "{err}");

    let openssl =
        ringfence_feeds::osv::parse(&std::fs::read_to_string(dir.join("valid/CVE-2018-5407.json")).unwrap())
            .unwrap();
    let alpine = openssl.affected.iter().find(|a| a.ecosystem == "Alpine:v3.4").unwrap();
    assert!(alpine.affects("1.0.2p-r0").unwrap());
    assert!(!alpine.affects("1.0.2q-r0").unwrap());
}
