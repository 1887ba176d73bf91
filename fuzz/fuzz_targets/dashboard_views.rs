//! The dashboard's own readers of outside input: a list's sorting, paging and filters from a
//! query string, and a policy form's fields (to settings and back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_server::extract::parse_form;
use ringfence_server::list::ListState;
use ringfence_server::policy_form::{Fields, merge, split};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data)
        && let Ok(mut list) = ListState::read("/x", q, &["name", "devices"], "name", false)
    {
        list.total = 1_000;
        let _ = list.pager();
        let _ = list.th("Name", "name");
        let _ = list.page_of((0..100).collect::<Vec<i64>>(), |v, _| (*v).into());
    }
    if let Ok(fields) = parse_form::<Fields>(data)
        && let Ok(settings) = merge(&fields, serde_json::Map::new())
    {
        // What the fields make reads back into the same fields.
        let (again, rest) = split(&settings);
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(merge(&again, rest).ok(), Some(settings));
    }
});
