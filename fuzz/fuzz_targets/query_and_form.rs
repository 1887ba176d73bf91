//! Query strings and form bodies from browsers and scripts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_proto::{DeviceListQuery, EventQuery, EvidenceExportQuery, LoginRequest, OrganizationFilter};
use ringfence_server::extract::{parse_form, parse_query};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = parse_query::<DeviceListQuery>(q);
        let _ = parse_query::<EventQuery>(q);
        let _ = parse_query::<OrganizationFilter>(q);
        let _ = parse_query::<EvidenceExportQuery>(q);
    }
    let _ = parse_form::<LoginRequest>(data);
});
