//! Every JSON request body of the API: parsing never panics, and a body that parses
//! serializes again. The edge's NUL check names a field exactly when some string holds one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_proto::*;
use ringfence_server::extract::parse_json;

fn check<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8]) {
    if let Ok(v) = parse_json::<T>(data) {
        serde_json::to_vec(&v).expect("a parsed request serializes");
    }
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let named = ringfence_server::hygiene::json_path_with_nul(&v, "");
        assert_eq!(named.is_some(), has_nul(&v));
    }
    check::<CreateOrganization>(data);
    check::<UpdateOrganization>(data);
    check::<CreateSite>(data);
    check::<UpdateSite>(data);
    check::<CreateDeviceGroup>(data);
    check::<CreateDevice>(data);
    check::<UpdateDevice>(data);
    check::<CreateUser>(data);
    check::<UpdateUser>(data);
    check::<CreateToken>(data);
    check::<LoginRequest>(data);
    check::<RollbackRequest>(data);
    check::<RetryRequest>(data);
    check::<HaltRequest>(data);
    check::<ReportRequest>(data);
    check::<ReportScheduleInput>(data);
    check::<CheckIn>(data);
    check::<ringfence_proto::jobs::JobReport>(data);
    // A report that parses reads back the same.
    if let Ok(r) = parse_json::<ringfence_proto::jobs::JobReport>(data) {
        let again: ringfence_proto::jobs::JobReport =
            serde_json::from_slice(&serde_json::to_vec(&r).expect("serializes")).expect("reads back");
        assert_eq!(again, r);
    }
});
