//! An OSV zip export (as osv.dev publishes per ecosystem) imported into the store and used to
//! match a Debian package in the distro's ordering.

use ringfence_engine::intel::{import_file, load_index};
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_store::testing::fresh_sqlite;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

const XZ: &str = r#"{
  "schema_version": "1.6.0",
  "id": "DEBIAN-CVE-2026-34743",
  "modified": "2026-07-01T00:00:00Z",
  "summary": "xz: index append overflow",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "xz-utils"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.4.1-1+deb12u1"}]}]
  }]
}"#;

const PYPI: &str = r#"{"id": "PYSEC-2099-1", "modified": "2026-01-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["1.0"]}]}"#;

#[tokio::test]
async fn an_osv_zip_export_is_imported_and_matched_in_debian_ordering() {
    let (store, tmp) = fresh_sqlite().await;
    let path = tmp.0.join("all.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in
            [("DEBIAN-CVE-2026-34743.json", XZ), ("PYSEC-2099-1.json", PYPI), ("broken.json", "{")]
        {
            z.start_file(name, opts).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.start_file("README.txt", opts).unwrap();
        z.write_all(b"not a record").unwrap();
        z.finish().unwrap();
    }
    let summary = import_file(&store, &path, ringfence_model::Timestamp::now(), Arc::new(AtomicU64::new(0)))
        .await
        .unwrap();
    assert_eq!(summary.counts.added, 1, "{summary:?}");
    assert_eq!(summary.skipped.total(), 2, "the PyPI entry and the broken record: {:?}", summary.skipped);
    assert!(summary.format.contains("OSV"), "{}", summary.format);
    assert_eq!(summary.touched, ["CVE-2026-34743"]);

    let index = load_index(&store).await.unwrap();
    let mut xz = Item::new(ItemKind::Package, "liblzma5", "5.4.1-1");
    xz.source_name = Some("xz-utils".into());
    let inv = Inventory { os: OsInfo::debian("12"), items: vec![xz.clone()] };
    let (findings, _) = index.match_inventory(&inv);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].cve_id, "CVE-2026-34743");
    assert_eq!(findings[0].source, "osv DEBIAN-CVE-2026-34743");
    assert_eq!(findings[0].fixed_version.as_deref(), Some("5.4.1-1+deb12u1"));
    // The fixed version itself and a later binNMU are not affected.
    xz.version = "5.4.1-1+deb12u1".into();
    let (findings, _) = index.match_inventory(&Inventory { os: OsInfo::debian("12"), items: vec![xz] });
    assert!(findings.is_empty(), "{findings:?}");
}
