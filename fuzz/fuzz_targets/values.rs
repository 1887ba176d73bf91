//! The validated values: a parse either refuses with a field and a message, or yields a
//! value that parses to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_model::*;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = Name::parse("name", s) {
        assert_eq!(Name::parse("name", n.as_str()).unwrap(), n);
        assert!(n.as_str().chars().count() <= MAX_NAME_LEN);
    }
    if let Ok(z) = TimeZoneName::parse("time_zone", s) {
        assert_eq!(TimeZoneName::parse("time_zone", z.as_str()).unwrap(), z);
    }
    if let Ok(h) = parse_hostname("hostname", s) {
        assert_eq!(parse_hostname("hostname", &h).unwrap(), h);
    }
    if let Ok(u) = parse_username("username", s) {
        assert_eq!(parse_username("username", &u).unwrap(), u);
    }
    let _ = parse_notes("notes", s);
    let _ = check_password("password", s);
    for r in [
        Role::parse(s).map(|r| r.as_str()),
        DeviceRole::parse(s).map(|r| r.as_str()),
        Criticality::parse(s).map(|c| c.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(r, s.trim());
    }
    let _ = OrganizationId::parse(s);
});
