//! Every JSON request body of the API: parsing never panics, and a body that parses
//! serializes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_proto::*;
use ringfence_server::extract::parse_json;

fn check<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8]) {
    if let Ok(v) = parse_json::<T>(data) {
        serde_json::to_vec(&v).expect("a parsed request serializes");
    }
}

fuzz_target!(|data: &[u8]| {
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
});
