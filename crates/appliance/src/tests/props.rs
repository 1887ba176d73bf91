use proptest::prelude::*;

use crate::{EntityRow, Mapping, Observation, VersionSource, identify, identify_manual, parse_csv};

fn oid() -> impl Strategy<Value = String> {
    prop_oneof![
        "(\\.?[0-9]{1,6}){0,12}",
        Just("1.3.6.1.4.1.9.1.2494".to_owned()),
        Just("1.3.6.1.4.1.12356.101.1.1".to_owned()),
        Just("1.3.6.1.4.1.8072.3.2.10".to_owned()),
        ".{0,30}",
    ]
}

fn descr() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,120}",
        "(FortiGate|Cisco IOS Software|IOS-XE|EdgeOS v|RouterOS |SonicWall |NetScaler NS|ArubaOS \\(MODEL: )[ -~]{0,40}",
    ]
}

fn entity() -> impl Strategy<Value = EntityRow> {
    (any::<u32>(), proptest::option::of(0i32..12), ".{0,20}", ".{0,20}", ".{0,30}", ".{0,20}").prop_map(
        |(index, class, descr, model_name, software_rev, serial)| EntityRow {
            index,
            class,
            descr,
            model_name,
            software_rev,
            serial,
            ..Default::default()
        },
    )
}

fn mapping() -> impl Strategy<Value = Mapping> {
    (
        proptest::option::of(oid()),
        proptest::option::of(".{0,10}"),
        ".{0,12}",
        ".{0,12}",
        "[oah]?",
        ".{0,20}",
        any::<bool>(),
    )
        .prop_map(|(prefix, contains, cpe_vendor, cpe_product, part, pattern, soft)| Mapping {
            id: "m".into(),
            sys_object_id_prefix: prefix,
            descr_contains: contains,
            vendor: "V".into(),
            product: "P".into(),
            model: None,
            cpe_vendor,
            cpe_product,
            cpe_part: part,
            hardware_cpe_product: Some("h w".into()),
            version: if soft { VersionSource::EntSoftwareRev } else { VersionSource::DescrRegex { pattern } },
        })
}

proptest! {
    #[test]
    fn identify_never_panics(
        sys_descr in descr(),
        sys_object_id in oid(),
        entities in proptest::collection::vec(entity(), 0..4),
        mappings in proptest::collection::vec(mapping(), 0..3),
    ) {
        let obs = Observation { sys_descr, sys_object_id, sys_name: String::new(), entities };
        if let Some(found) = identify(&obs, &mappings) {
            for cpe in found.os_cpe.iter().chain(&found.hardware_cpe) {
                prop_assert!(ringfence_cpe::Cpe::parse(cpe).is_ok(), "{cpe}");
            }
            prop_assert!(found.os_cpe.is_none() || found.firmware.is_some());
            prop_assert!(found.hardware_cpe.is_none() || found.model.is_some());
        }
        for m in &mappings {
            let _ = m.check();
        }
    }

    #[test]
    fn identify_manual_never_panics(vendor in "(Cisco|Fortinet|Ubiquiti|.{0,12})", model in ".{0,20}", firmware in ".{0,20}") {
        let _ = identify_manual(&vendor, &model, &firmware);
    }

    #[test]
    fn parse_csv_never_panics(text in "(name,vendor,model,firmware,site\n)?[a-z\",\r\n \u{7}\u{feff}é]{0,200}") {
        if let Err(e) = parse_csv(&text) {
            prop_assert!(!e.0.is_empty());
        }
    }

    #[test]
    fn parse_csv_never_panics_on_any_text(text in ".{0,200}") {
        let _ = parse_csv(&text);
    }
}
