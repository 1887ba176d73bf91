//! Bundle verification on arbitrary bytes: whatever the archive holds, `verify_bundle`
//! returns an error or a report, and never panics.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use ringfence_evidence::verify_bundle;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = verify_bundle(Cursor::new(data), None) {
        // A report that is clean has no problems listed and none left unlisted.
        assert_eq!(report.ok(), report.problems.is_empty() && report.problems_not_listed == 0);
    }
});
