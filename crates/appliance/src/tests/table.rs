use std::collections::BTreeSet;
use std::path::Path;

use ringfence_cpe::Cpe;

use crate::table::{ENTRIES, load};

#[test]
fn the_embedded_table_loads_and_every_cpe_template_parses() {
    assert!(ENTRIES.len() >= 14);
    for e in ENTRIES.iter() {
        for (what, cpe) in [("os_cpe", Some(&e.os_cpe)), ("hardware_cpe", e.hardware_cpe.as_ref())] {
            let Some(cpe) = cpe else { continue };
            assert_eq!(Cpe::parse(&cpe.to_fs()).as_ref(), Ok(cpe), "{}: {what}", e.id);
        }
        assert!(matches!(e.os_cpe.part().literal().as_deref(), Some("o" | "a")), "{}", e.id);
        assert!(!e.aliases.is_empty(), "{}: a manual report needs an alias", e.id);
    }
}

#[test]
fn a_broken_table_is_refused_with_the_entry_named() {
    let entry = |extra: &str| {
        format!(
            "[[entry]]\nid = \"x\"\nvendor = \"X\"\nproduct = \"Y\"\naliases = [\"X\"]\nfirmware = []\nnormalize = \"dotted\"\n\
             os_cpe = \"cpe:2.3:o:x:y:*:*:*:*:*:*:*:*\"\nmodel = []\n{extra}"
        )
    };
    assert!(load(&entry("match = [{ oid = \"1.3.6.1.4.1.9\" }]")).is_ok());
    for (extra, says) in [
        ("match = [{ descr = \"(\" }]", "does not compile"),
        ("match = [{}]", "needs an oid"),
        ("match = [{ oid = \"enterprises.9\" }]", "not a dotted OID"),
        ("match = []\nhardware_cpe = \"cpe:2.3:o:x:*:-:*:*:*:*:*:*:*\"", "must have part h"),
        ("match = []\nhardware_cpe = \"cpe:2.3:h:x:y:-:*:*:*:*:*:*:*\"", "leaves the product"),
    ] {
        let e = load(&entry(extra)).expect_err(extra);
        assert!(e.contains(says) && e.contains("'x'"), "{e}");
    }
}

/// Firmware products the NVD sample does not mention although it has their vendor.
const NOT_IN_SAMPLE: [&str; 2] = ["cisco:adaptive_security_appliance_software", "cisco:ios"];

#[test]
fn firmware_cpes_agree_with_the_nvd_sample() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/nvd"));
    if !dir.is_dir() {
        println!("skipped: no NVD sample at {}", dir.display());
        return;
    }
    let mut files = vec![];
    for sub in [dir.to_path_buf(), dir.join("records")] {
        for f in std::fs::read_dir(&sub).unwrap().flatten() {
            if f.path().extension().is_some_and(|x| x == "json") {
                files.push(f.path());
            }
        }
    }
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("cpe:2.3:") {
            let parts: Vec<&str> = text[i..].splitn(6, ':').collect();
            if parts.len() == 6 {
                names.insert((parts[3].to_owned(), parts[4].to_owned()));
            }
        }
    }
    let vendors: BTreeSet<&str> = names.iter().map(|(v, _)| v.as_str()).collect();
    let mut checked = BTreeSet::new();
    for e in ENTRIES.iter() {
        let vendor = e.os_cpe.vendor().literal().unwrap();
        let product = e.os_cpe.product().literal().unwrap();
        let key = format!("{vendor}:{product}");
        if !vendors.contains(vendor.as_str()) || NOT_IN_SAMPLE.contains(&key.as_str()) {
            continue;
        }
        assert!(
            names.contains(&(vendor.clone(), product.clone())),
            "{}: {key} is not in the NVD sample",
            e.id
        );
        checked.insert(product);
    }
    for must in ["fortios", "pan-os", "ios_xe", "sonicos", "connect_secure"] {
        assert!(checked.contains(must), "{must} was not checked against the NVD sample");
    }
}
