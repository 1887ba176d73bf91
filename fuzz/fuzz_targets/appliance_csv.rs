//! The CSV import of manually reported appliances: any text is parsed or refused with at
//! least one error, never a panic; every accepted row has its required fields filled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_appliance::parse_csv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_csv(text) {
        Ok(rows) => {
            for r in rows {
                assert!(r.line >= 2, "rows start after the header");
                for v in [&r.name, &r.vendor, &r.model, &r.firmware, &r.site] {
                    assert!(!v.is_empty() && v.trim() == v);
                }
            }
        }
        Err(e) => assert!(!e.0.is_empty(), "a refusal says why"),
    }
});
