//! Appliance identification on what a device (or a partner's mapping) may send: the bytes are
//! split at newlines into sysDescr, sysObjectID, a chassis row's model, software revision and
//! serial, and a mapping's prefix, sysDescr substring, CPE product and version regex.
//! identify() never panics, and every CPE it returns parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_appliance::{EntityRow, Mapping, Observation, VersionSource, identify, identify_manual};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\n').map(str::to_owned);
    let mut next = || f.next().unwrap_or_default();
    let obs = Observation {
        sys_descr: next(),
        sys_object_id: next(),
        sys_name: String::new(),
        entities: vec![EntityRow {
            index: 1,
            class: Some(3),
            model_name: next(),
            software_rev: next(),
            serial: next(),
            ..Default::default()
        }],
    }
    .bounded();
    let prefix = next();
    let contains = next();
    let product = next();
    let pattern = next();
    let mapping = Mapping {
        id: "fuzz".into(),
        sys_object_id_prefix: Some(prefix).filter(|p| !p.is_empty()),
        descr_contains: Some(contains).filter(|c| !c.is_empty()),
        vendor: "Fuzz".into(),
        product: "Fuzz OS".into(),
        model: None,
        cpe_vendor: "fuzz".into(),
        cpe_product: product.clone(),
        cpe_part: "o".into(),
        hardware_cpe_product: Some(product),
        version: if pattern.is_empty() {
            VersionSource::EntSoftwareRev
        } else {
            VersionSource::DescrRegex { pattern }
        },
    };
    let _ = mapping.check();
    for mappings in [&[][..], std::slice::from_ref(&mapping)] {
        if let Some(found) = identify(&obs, mappings) {
            for cpe in found.os_cpe.iter().chain(&found.hardware_cpe) {
                ringfence_cpe::Cpe::parse(cpe).expect("an identification's CPE parses");
            }
        }
    }
    let _ = identify_manual(&obs.sys_descr, &obs.entities[0].model_name, &obs.entities[0].software_rev);
});
