//! CPE parsing: never panics; a parsed name binds back to text that parses to the same name,
//! in both bindings, and equals itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_cpe::{Cpe, Relation, compare_names};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(cpe) = Cpe::parse(s) else { return };
    let fs = Cpe::parse(&cpe.to_fs()).expect("the formatted string of a parsed name parses");
    assert_eq!(fs, cpe);
    let uri = Cpe::parse(&cpe.to_uri()).expect("the URI of a parsed name parses");
    assert_eq!(uri, cpe);
    assert_eq!(
        compare_names(&cpe, &cpe),
        if cpe.values.iter().any(|v| v.has_wildcards()) { Relation::Undefined } else { Relation::Equal }
    );
});
