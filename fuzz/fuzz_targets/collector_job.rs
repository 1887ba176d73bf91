//! Collector jobs and sweep ranges as a collector receives them: arbitrary bytes are refused
//! with a reason, never a panic, and a range that parses stays inside itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_proto::collector::{CollectorJob, Ipv4Range, MAX_RANGE};

fuzz_target!(|data: &[u8]| {
    if let Ok(job) = serde_json::from_slice::<CollectorJob>(data) {
        let _ = job.check();
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(range) = Ipv4Range::parse(text) {
        assert!(u32::from(range.first) <= u32::from(range.last));
        assert!(range.len() >= 1);
        if range.len() <= u64::from(MAX_RANGE) {
            assert_eq!(range.addresses().count() as u64, range.len());
        }
    }
});
