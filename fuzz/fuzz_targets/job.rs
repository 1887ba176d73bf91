//! Jobs as an agent receives them: arbitrary bytes are refused with a reason, never a
//! panic, and nothing verifies without the server's signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_proto::jobs::{SignedJob, verify};

/// The public key of the all-sevens secret: no input here carries a signature made with it.
fn pinned() -> String {
    ringfence_proto::jobs::public_key(&"07".repeat(32)).expect("a valid key")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now: jiff::Timestamp = "2026-12-06T09:00:00Z".parse().expect("a valid instant");
    if let Ok(signed) = serde_json::from_str::<SignedJob>(text) {
        assert!(verify(&signed, &pinned(), "dev-1", now).is_err());
    }
    // The payload as a job, checked on its own.
    if let Ok(job) = serde_json::from_str::<ringfence_proto::jobs::Job>(text) {
        let _ = job.check();
    }
    let raw = SignedJob { payload: text.to_string(), signature: "00".repeat(64) };
    assert!(verify(&raw, &pinned(), "dev-1", now).is_err());
});
