//! CPE bindings and matching: cases from NISTIR 7695 and 7696, bad input, and every CPE
//! match criterion of the real NVD records in `../shared/data/nvd`.

use ringfence_cpe::{Cpe, Relation, compare_names};
use std::path::PathBuf;

fn fs(s: &str) -> String {
    Cpe::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_fs()
}

#[test]
fn formatted_strings_round_trip() {
    for s in [
        r"cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*",
        r"cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:-:*:*:online:win2003:x64:*",
        r"cpe:2.3:a:foo\\bar:big\$money_manager_2010:*:*:*:*:special:ipod_touch:80gb:*",
        r"cpe:2.3:a:notepad-plus-plus:notepad\+\+:*:*:*:*:*:*:*:*",
        r"cpe:2.3:a:veeam:veeam_backup_\&_replication:12.1.2.172:*:*:*:*:*:*:*",
        r"cpe:2.3:a:siemens:logo\!_soft_comfort:*:*:*:*:*:*:*:*",
        r"cpe:2.3:o:fortinet:fortios:7.2.5:*:*:*:*:*:*:*",
        r"cpe:2.3:a:vendor:product:8.*:sp?:*:*:*:*:*:*",
        r"cpe:2.3:a:vendor:\-:*:*:*:*:*:*:*:*",
    ] {
        assert_eq!(fs(s), s);
    }
    // Letters are compared and printed in lower case.
    assert_eq!(fs("cpe:2.3:A:Microsoft:IE:*:*:*:*:*:*:*:*"), "cpe:2.3:a:microsoft:ie:*:*:*:*:*:*:*:*");
}

#[test]
fn uris_unbind_and_bind() {
    let cases = [
        (
            "cpe:/a:microsoft:internet_explorer:8.0.6001:beta",
            "cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*",
        ),
        (
            "cpe:/a:hp:insight_diagnostics:7.4.0.1570::~~online~win2003~x64~",
            "cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:*:*:*:online:win2003:x64:*",
        ),
        (
            "cpe:/a:foo%5cbar:big%24money_manager_2010:::~~special~ipod_touch~80gb~",
            r"cpe:2.3:a:foo\\bar:big\$money_manager_2010:*:*:*:*:special:ipod_touch:80gb:*",
        ),
        (
            "cpe:/a:hp:openview_network_manager:7.51:-:~~~linux~~",
            "cpe:2.3:a:hp:openview_network_manager:7.51:-:*:*:*:linux:*:*",
        ),
        ("cpe:/o:microsoft:windows_xp:%02:sp%01", "cpe:2.3:o:microsoft:windows_xp:*:sp?:*:*:*:*:*:*"),
        ("cpe:/a:vendor", "cpe:2.3:a:vendor:*:*:*:*:*:*:*:*:*"),
    ];
    for (uri, expect) in cases {
        let cpe = Cpe::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(cpe.to_fs(), expect, "{uri}");
        assert_eq!(Cpe::parse(&cpe.to_uri()).unwrap(), cpe, "{uri} -> {}", cpe.to_uri());
    }
    assert_eq!(
        Cpe::parse("cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*").unwrap().to_uri(),
        "cpe:/a:microsoft:internet_explorer:8.0.6001:beta"
    );
    assert_eq!(
        Cpe::parse("cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:-:*:*:online:win2003:x64:*")
            .unwrap()
            .to_uri(),
        "cpe:/a:hp:insight_diagnostics:7.4.0.1570:-:~~online~win2003~x64~"
    );
}

#[test]
fn bad_names_say_what_is_wrong() {
    for (bad, needle) in [
        ("", "must start with"),
        ("cpe:2.3:a:vendor:product", "13 colon-separated components"),
        ("cpe:2.3:x:vendor:product:*:*:*:*:*:*:*:*", "part must be"),
        ("cpe:2.3:a:ven*dor:product:*:*:*:*:*:*:*:*", "wildcard inside the value"),
        ("cpe:2.3:a:vendor:product:1.0\\", "lone backslash"),
        ("cpe:2.3:a:vendor::*:*:*:*:*:*:*:*", "product is empty"),
        ("cpe:2.3:a:ven dor:product:*:*:*:*:*:*:*:*", "whitespace"),
        ("cpe:/a:vendor:product:1.0:2:3:4:5", "at most 7 components"),
        ("cpe:/a:ven%zzdor", "malformed percent-encoding"),
        ("cpe:/a:ven$dor", "must percent-encode"),
        ("cpe:/a:vendor:product:1.0::~a~b", "packed edition has five fields"),
        // Found by fuzzing: a multi-byte character where the prefix would end.
        ("EնEն", "must start with"),
        ("cpe:2.3:a:vé:p:*:*:*:*:*:*:*:*", ""),
        ("cpe:/a:vendor:product:1.0:~a~b", "only allowed in a packed edition"),
    ] {
        match Cpe::parse(bad) {
            Err(e) => assert!(e.0.contains(needle) && !needle.is_empty(), "{bad:?}: {}", e.0),
            Ok(c) => assert!(needle.is_empty(), "{bad:?} parsed as {c}"),
        }
    }
}

fn rel(a: &str, b: &str) -> Relation {
    compare_names(&Cpe::parse(a).unwrap(), &Cpe::parse(b).unwrap())
}

#[test]
fn name_matching_per_nistir_7696() {
    use Relation::*;
    let ie = "cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*";
    assert_eq!(rel(ie, ie), Equal);
    assert_eq!(rel("cpe:2.3:a:microsoft:internet_explorer:*:*:*:*:*:*:*:*", ie), Superset);
    assert_eq!(rel(ie, "cpe:2.3:a:microsoft:internet_explorer:*:*:*:*:*:*:*:*"), Subset);
    assert_eq!(
        rel("cpe:2.3:a:microsoft:internet_explorer:8.*:sp?:*:*:*:*:*:*", ie),
        Disjoint,
        "sp? does not match beta"
    );
    assert_eq!(
        rel(
            "cpe:2.3:a:microsoft:internet_explorer:8.*:sp?:*:*:*:*:*:*",
            "cpe:2.3:a:microsoft:internet_explorer:8.0.6001:sp2:*:*:*:*:*:*"
        ),
        Superset
    );
    assert_eq!(
        rel(ie, "cpe:2.3:a:microsoft:internet_explorer:8.*:sp?:*:*:*:*:*:*"),
        Undefined,
        "a target with wildcards is undefined"
    );
    assert_eq!(rel("cpe:2.3:a:microsoft:internet_explorer:9.0:*:*:*:*:*:*:*", ie), Disjoint);
    assert_eq!(
        rel("cpe:2.3:a:microsoft:internet_explorer:-:*:*:*:*:*:*:*", ie),
        Disjoint,
        "NA against a value"
    );
    assert_eq!(
        rel(
            "cpe:2.3:a:microsoft:internet_explorer:-:*:*:*:*:*:*:*",
            "cpe:2.3:a:microsoft:internet_explorer:*:*:*:*:*:*:*:*"
        ),
        Subset
    );
    // SUPERSET in one attribute and SUBSET in another is neither.
    assert_eq!(
        rel(
            "cpe:2.3:a:microsoft:internet_explorer:*:beta:*:*:*:*:*:*",
            "cpe:2.3:a:microsoft:internet_explorer:8.0:*:*:*:*:*:*:*"
        ),
        Undefined
    );
    // A trailing '?' matches one character or none; '*' any number.
    assert_eq!(rel("cpe:2.3:a:v:p:1.?:*:*:*:*:*:*:*", "cpe:2.3:a:v:p:1.2:*:*:*:*:*:*:*"), Superset);
    assert_eq!(rel("cpe:2.3:a:v:p:1.?:*:*:*:*:*:*:*", "cpe:2.3:a:v:p:1.23:*:*:*:*:*:*:*"), Disjoint);
    assert_eq!(rel("cpe:2.3:a:v:p:*.23:*:*:*:*:*:*:*", "cpe:2.3:a:v:p:1.23:*:*:*:*:*:*:*"), Superset);
    // Case does not matter; escaping does.
    assert_eq!(
        rel(
            "cpe:2.3:a:Notepad-Plus-Plus:Notepad\\+\\+:*:*:*:*:*:*:*:*",
            "cpe:2.3:a:notepad-plus-plus:notepad\\+\\+:8.5:*:*:*:*:*:*:*"
        ),
        Superset
    );
    // The two bindings of one name are equal.
    assert_eq!(
        rel(
            "cpe:/a:hp:insight_diagnostics:7.4.0.1570::~~online~win2003~x64~",
            "cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:*:*:*:online:win2003:x64:*"
        ),
        Equal
    );
}

/// The relation of a source version value to a target version value, the other attributes
/// being ANY on both sides.
fn version_rel(source: &str, target: &str) -> Relation {
    let name = |v: &str| format!("cpe:2.3:a:v:p:{v}:*:*:*:*:*:*:*");
    rel(&name(source), &name(target))
}

/// NISTIR 7696's `compare_strings`: the literal middle of the source must occur in the target
/// with at most as many characters before it as the leading wildcards reach and at most as many
/// after it as the trailing ones reach; a run of `n` unquoted `?` reaches up to `n`.
#[test]
fn question_marks_at_either_end_match_up_to_that_many_characters() {
    use Relation::*;
    for (source, target, expect) in [
        ("???", "ab", Superset),
        ("???", "a", Superset),
        ("???", "abc", Superset),
        ("???", "abcd", Disjoint),
        ("?", "a", Superset),
        ("?", "ab", Disjoint),
        ("sp?", "sp", Superset),
        ("sp?", "sp2", Superset),
        ("sp?", "sp10", Disjoint),
        ("sp?", "xsp1", Disjoint),
        ("sp??", "sp10", Superset),
        ("??11", "11", Superset),
        ("??11", "x11", Superset),
        ("??11", "xy11", Superset),
        ("??11", "wxy11", Disjoint),
        ("??11", "11x", Disjoint),
        ("?1.0?", "1.0", Superset),
        ("?1.0?", "a1.0b", Superset),
        ("?1.0?", "ab1.0", Disjoint),
        ("?1.0?", "1.0ab", Disjoint),
        ("*1.0?", "xx1.0y", Superset),
        ("*1.0?", "1.0yz", Disjoint),
        ("??1.0*", "ab1.0.2", Superset),
        ("??1.0*", "abc1.0", Disjoint),
        // Any occurrence of the middle will do, not only the first.
        ("??ab?", "abab", Superset),
        ("?ab?", "abab", Disjoint),
        // A quoted '?' is a literal, not a wildcard.
        ("1.\\?", "1.2", Disjoint),
        ("1.\\?", "1.\\?", Equal),
    ] {
        assert_eq!(version_rel(source, target), expect, "{source} vs {target}");
    }
    // A target with wildcards stays undefined whatever the source.
    assert_eq!(version_rel("???", "ab?"), Undefined);
}

fn nvd_records() -> Option<PathBuf> {
    let base = std::env::var_os("RINGFENCE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let p = base.join("nvd/records");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} not found (set RINGFENCE_SHARED_DATA)", p.display());
        None
    }
}

fn criteria(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(c)) = m.get("criteria") {
                out.push(c.clone());
            }
            m.values().for_each(|x| criteria(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| criteria(x, out)),
        _ => {}
    }
}

#[test]
fn every_nvd_match_criterion_parses_and_binds_back() {
    let Some(dir) = nvd_records() else { return };
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
        criteria(&v, &mut all);
    }
    assert!(all.len() > 500, "read {} criteria", all.len());
    for c in &all {
        let cpe = Cpe::parse(c).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(cpe.to_fs(), c.to_lowercase(), "round trip of {c}");
        assert_eq!(Cpe::parse(&cpe.to_uri()).unwrap(), cpe, "URI round trip of {c}");
        assert_eq!(compare_names(&cpe, &cpe), Relation::Equal, "{c}");
    }
}
