//! Maintenance-window rules from outside (API, policy files, `ringfence window expand`):
//! any RRULE and DURATION text is parsed or refused, and a parsed one expands without a
//! panic, in order, and never loops.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_schedule::{Duration, Recurrence, Rule};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rule, duration) = text.split_once('\n').unwrap_or((text, "PT1H"));
    let (Ok(rule), Ok(duration)) = (Rule::parse(rule), Duration::parse(duration)) else { return };
    for tz in ["America/New_York", "Australia/Lord_Howe", "America/Santiago"] {
        let start: jiff::civil::DateTime = "2026-03-08T02:30".parse().unwrap();
        let w = Recurrence::new(tz, start, rule.clone(), duration, vec![start]).unwrap();
        let after: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let got = w.occurrences_after(after, 20);
        assert!(got.windows(2).all(|p| p[0].start <= p[1].start), "occurrences in order");
        assert!(got.iter().all(|o| o.start >= after));
    }
});
