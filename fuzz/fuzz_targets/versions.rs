//! Version parsing and ordering: never panics, and the order is consistent (antisymmetric,
//! and a version equals itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_versions::{Scheme, compare};
use std::cmp::Ordering;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_once('\t').unwrap_or((s, "1.0"));
    for scheme in [Scheme::Deb, Scheme::Rpm, Scheme::Semver, Scheme::Generic, Scheme::Windows] {
        if let (Ok(x), Ok(y)) = (compare(scheme, a, b), compare(scheme, b, a)) {
            assert_eq!(x, y.reverse(), "{scheme:?}: {a:?} vs {b:?}");
        }
        if let Ok(o) = compare(scheme, a, a) {
            assert_eq!(o, Ordering::Equal, "{scheme:?}: {a:?}");
        }
    }
});
