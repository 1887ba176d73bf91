use super::identify::acme_mapping;
use super::{chassis, obs};
use crate::{Mapping, VersionSource, identify, oid_has_prefix};

#[test]
fn prefixes_match_on_arc_boundaries() {
    for (oid, prefix, expect) in [
        ("1.3.6.1.4.1.99.1", "1.3.6.1.4.1.99", true),
        ("1.3.6.1.4.1.99", "1.3.6.1.4.1.99", true),
        (".1.3.6.1.4.1.99.1", "1.3.6.1.4.1.99", true),
        ("1.3.6.1.4.1.99.1", ".1.3.6.1.4.1.99.", true),
        ("1.3.6.1.4.1.999.1", "1.3.6.1.4.1.99", false),
        ("1.3.6.1.4.1.9", "1.3.6.1.4.1.99", false),
        ("1.3.6.1.4.1.99.1", "", false),
    ] {
        assert_eq!(oid_has_prefix(oid, prefix), expect, "{oid} under {prefix}");
    }
    let mut m = acme_mapping();
    m.sys_object_id_prefix = Some("1.3.6.1.4.1.9999".into());
    assert_eq!(identify(&obs("ACME NetBox 3000 firmware 2.4.1", "1.3.6.1.4.1.99999.1.1", None), &[m]), None);
}

#[test]
fn mappings_come_before_the_table_and_in_order() {
    let forti = obs("FortiGate-100F", "1.3.6.1.4.1.12356.101.1.1041", Some(chassis("FGT_100F", "v7.0.11")));
    let mut m = acme_mapping();
    m.id = "ours".into();
    m.sys_object_id_prefix = Some("1.3.6.1.4.1.12356".into());
    m.version = VersionSource::EntSoftwareRev;
    let mut second = m.clone();
    second.id = "second".into();
    let got = identify(&forti, &[m, second]).unwrap();
    assert_eq!(got.rule, "mapping: ours");
    assert_eq!(got.firmware.as_deref(), Some("v7.0.11"));
    assert_eq!(got.model.as_deref(), Some("FGT_100F"), "the chassis model name without a mapped model");
}

#[test]
fn descr_contains_is_case_insensitive_and_both_matchers_must_hold() {
    let o = obs("ACME NetBox 3000 firmware 2.4.1", "1.3.6.1.4.1.99999.1.1", None);
    let mut m = acme_mapping();
    m.sys_object_id_prefix = None;
    m.descr_contains = Some("acme netbox".into());
    assert!(identify(&o, std::slice::from_ref(&m)).is_some());
    m.sys_object_id_prefix = Some("1.3.6.1.4.1.12356".into());
    assert_eq!(identify(&o, &[m]), None);
}

#[test]
fn a_mapping_with_model_and_hardware_product_gives_a_hardware_cpe() {
    let o = obs("ACME NetBox 3000 firmware 2.4.1", "1.3.6.1.4.1.99999.1.1", None);
    let mut m = acme_mapping();
    m.model = Some("NetBox 3000".into());
    m.hardware_cpe_product = Some("netbox_3000".into());
    let got = identify(&o, &[m.clone()]).unwrap();
    assert_eq!(got.hardware_cpe.as_deref(), Some("cpe:2.3:h:acme:netbox_3000:-:*:*:*:*:*:*:*"));
    m.model = None;
    assert_eq!(identify(&o, &[m]).unwrap().hardware_cpe, None, "no model, no hardware CPE");
}

#[test]
fn an_unreadable_version_leaves_firmware_out() {
    let o = obs("ACME NetBox 3000", "1.3.6.1.4.1.99999.1.1", None);
    let got = identify(&o, &[acme_mapping()]).unwrap();
    assert_eq!((got.firmware, got.os_cpe), (None, None));
}

#[test]
fn cpe_special_characters_are_escaped() {
    let o = obs("ACME NetBox firmware 2.4(1)", "1.3.6.1.4.1.99999.1.1", None);
    let mut m = acme_mapping();
    m.version = VersionSource::DescrRegex { pattern: r"firmware (\S+)".into() };
    m.cpe_product = "netbox+os".into();
    let got = identify(&o, &[m]).unwrap();
    assert_eq!(got.os_cpe.as_deref(), Some(r"cpe:2.3:o:acme:netbox\+os:2.4\(1\):*:*:*:*:*:*:*"));
}

#[track_caller]
fn refused(change: impl FnOnce(&mut Mapping), field: &str, says: &str) {
    let mut m = acme_mapping();
    change(&mut m);
    let e = m.check().expect_err("the mapping is refused");
    assert_eq!(e.field, field, "{e}");
    assert!(e.to_string().contains(says), "{e}");
    assert!(e.to_string().contains(field), "{e}");
    // A refused mapping is never applied.
    assert_eq!(identify(&obs("ACME NetBox 3000 firmware 2.4.1", "1.3.6.1.4.1.99999.1.1", None), &[m]), None);
}

#[test]
fn check_names_the_bad_field() {
    assert_eq!(acme_mapping().check(), Ok(()));
    refused(
        |m| m.version = VersionSource::DescrRegex { pattern: "firmware ([0-9.]+".into() },
        "version.pattern",
        "does not compile",
    );
    refused(
        |m| m.version = VersionSource::DescrRegex { pattern: "firmware [0-9.]+".into() },
        "version.pattern",
        "no capture group",
    );
    refused(|m| m.cpe_part = "h".into(), "cpe_part", "use 'o' or 'a'");
    refused(|m| m.sys_object_id_prefix = None, "sys_object_id_prefix", "descr_contains");
    refused(
        |m| m.sys_object_id_prefix = Some("enterprises.99999".into()),
        "sys_object_id_prefix",
        "dotted OID",
    );
    refused(|m| m.vendor = "x".repeat(201), "vendor", "longer than 200");
    refused(|m| m.cpe_product = "netbox os".into(), "cpe_product", "no spaces");
    refused(|m| m.cpe_vendor = "ac*me".into(), "cpe_vendor", "wildcards");
    refused(|m| m.id = String::new(), "id", "empty");
    refused(|m| m.descr_contains = Some("a\u{7}b".into()), "descr_contains", "control character");
}

#[test]
fn mappings_round_trip_as_json() {
    let json = r#"{"id":"acme-netbox","sys_object_id_prefix":"1.3.6.1.4.1.99999","vendor":"ACME","product":"NetBox OS",
        "cpe_vendor":"acme","cpe_product":"netbox_os","cpe_part":"o",
        "version":{"from":"descr_regex","pattern":"firmware ([0-9.]+)"}}"#;
    let m: Mapping = serde_json::from_str(json).unwrap();
    assert_eq!(m, acme_mapping());
    assert_eq!(serde_json::from_str::<Mapping>(&serde_json::to_string(&m).unwrap()).unwrap(), m);
    let soft: VersionSource = serde_json::from_str(r#"{"from":"ent_software_rev"}"#).unwrap();
    assert_eq!(soft, VersionSource::EntSoftwareRev);
}
