//! The feed parsers on arbitrary bytes: they never panic; they either yield records (and
//! count the skipped ones) or refuse the feed with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_feeds::{detect, epss, kev, nvd, open};
// Also the Debian tracker JSON and changelogs.
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let _ = kev::parse(Cursor::new(data.to_vec()), &mut |_| {});
    let _ = nvd::parse_page(Cursor::new(data.to_vec()), &mut |_| {});
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = nvd::parse_record(s);
        if let Ok(r) = ringfence_feeds::osv::parse(s) {
            for a in &r.affected {
                let _ = a.affects("1.0");
                let _ = a.affects(s);
            }
        }
    }
    let _ = ringfence_feeds::debian::parse_tracker(Cursor::new(data.to_vec()), &mut |_| {});
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(entries) = ringfence_feeds::debian::parse_changelog(s)
    {
        let _ = ringfence_feeds::debian::cves_between(&entries, "1.0-1", "2.0-1");
    }
    let _ = epss::parse(&mut Cursor::new(data.to_vec()), &mut |_| {});
    if let Ok(mut r) = open(Cursor::new(data.to_vec())) {
        // Behind the import's limits (small ones), the parsers still never panic.
        if let Ok(format) = detect(&mut *r) {
            let limits = ringfence_feeds::limits::Limits {
                max_value_bytes: 64,
                max_line_bytes: 64,
                max_lines: 64,
                max_total_bytes: 1 << 16,
                max_time: std::time::Duration::from_secs(10),
                max_entry_bytes: 1 << 16,
            };
            let mut guarded = ringfence_feeds::limits::guard(r, format, &limits);
            let _ = nvd::parse_page(&mut guarded, &mut |_| {});
        }
    }
});
