//! Inventory files on arbitrary input (dpkg status, agent JSON, CycloneDX): they are read or
//! refused with a message, never a panic; whatever is read can be matched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_matcher::{DistroAdvisory, DistroState, Index, Table};
use std::sync::OnceLock;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut i = Index::new(Table::builtin());
        i.add_distro(DistroAdvisory {
            distro: "debian".into(),
            release: "12".into(),
            package: "openssl".into(),
            cve_id: "CVE-2024-0001".into(),
            state: DistroState::Fixed("3.0.11-1~deb12u2".into()),
            urgency: None,
            source: "fuzz".into(),
        });
        i
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let status = ringfence_inventory::dpkg::parse_status(text);
    for e in &status.errors {
        let _ = e.to_string();
    }
    if let Ok(loaded) = ringfence_inventory::load(text) {
        let _ = index().match_inventory(&loaded.inventory);
    }
    let mut inv =
        ringfence_inventory::Inventory { os: ringfence_inventory::OsInfo::debian("12"), items: status.items };
    inv.items.truncate(200);
    let _ = index().match_inventory(&inv);
});
