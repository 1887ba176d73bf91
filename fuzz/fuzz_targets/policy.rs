//! Policy input from technicians and the API: policy settings, approval rules, exception
//! kinds and version ranges. Arbitrary input is accepted or refused with a message, never a
//! panic; an accepted range reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_policy::{ApprovalRules, ExceptionKind, VersionRange, settings};
use ringfence_versions::Scheme;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(settings) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text) {
        if let Err(message) = settings::validate(&settings) {
            assert!(!message.is_empty());
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = ApprovalRules::from_value(&v);
    }
    let _ = ExceptionKind::parse(text);
    let (range, version) = text.split_once('\n').unwrap_or((text, "1.0"));
    if let Ok(r) = VersionRange::parse(range) {
        let again = VersionRange::parse(r.as_str()).expect("an accepted range reads back");
        assert_eq!(again.as_str(), r.as_str());
        for scheme in [Scheme::Deb, Scheme::Rpm, Scheme::Generic] {
            assert_eq!(r.contains(scheme, version), again.contains(scheme, version));
        }
    }
});
