//! The orderings against the tools' own test cases (`../shared/data/versions`: dpkg's
//! `Dpkg_Version.t` cases and rpm's `rpmvercmp.at`) and against `dpkg --compare-versions`
//! on the real version strings of this machine's dpkg status and apt lists.
//!
//! Tests that need `../shared/data` or `dpkg` say SKIPPED and why when it is absent.

use ringfence_versions::{Scheme, compare};
use std::cmp::Ordering;
use std::path::PathBuf;

fn shared(rel: &str) -> Option<PathBuf> {
    let base = std::env::var_os("RINGFENCE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let p = base.join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} not found (set RINGFENCE_SHARED_DATA to the shared data folder)", p.display());
        None
    }
}

fn ordering(n: &str) -> Ordering {
    match n.trim() {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("unexpected expectation {other:?}"),
    }
}

#[test]
fn dpkg_test_cases() {
    let Some(p) = shared("versions/dpkg-version-cases.txt") else { return };
    let text = std::fs::read_to_string(p).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{line}");
        let got = compare(Scheme::Deb, f[0], f[1]).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(got, ordering(f[2]), "{line}");
        n += 1;
    }
    assert_eq!(n, 43);
}

/// Every `RPMVERCMP(a, b, expected)` line, the 91 rpm runs and the 12 it keeps commented out
/// with `dnl` to document its oddities (non-ASCII characters are separators, so `α` equals
/// `β`): rpm 4.18's `rpm.vercmp` answers all 103 as written.
#[test]
fn rpmvercmp_test_cases() {
    let Some(p) = shared("versions/rpmvercmp.at") else { return };
    let text = std::fs::read_to_string(p).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let Some(call) = line.strip_prefix("dnl ").unwrap_or(line).strip_prefix("RPMVERCMP(") else {
            continue;
        };
        let f: Vec<&str> = call.trim_end_matches(')').split(", ").collect();
        assert_eq!(f.len(), 3, "{line}");
        let got = compare(Scheme::Rpm, f[0], f[1]).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(got, ordering(f[2]), "{line}");
        let back = compare(Scheme::Rpm, f[1], f[0]).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back, got.reverse(), "{line}, the other way round");
        n += 1;
    }
    assert_eq!(n, 103, "every RPMVERCMP line is compared");
}

/// Versions from this machine: the dpkg status database and apt's package lists.
fn machine_versions() -> Vec<String> {
    let mut files = vec![PathBuf::from("/var/lib/dpkg/status")];
    if let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") {
        files.extend(dir.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with("_Packages")));
    }
    let mut versions: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines().filter_map(|l| l.strip_prefix("Version: ").map(str::to_owned)).collect::<Vec<_>>()
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

#[test]
fn agrees_with_dpkg_on_this_machines_versions() {
    if std::process::Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("SKIPPED: dpkg is not installed");
        return;
    }
    let versions = machine_versions();
    assert!(versions.len() > 50, "expected the dpkg status database on a Debian machine");
    // A deterministic spread of pairs: neighbours in sorted order (the hard, close cases)
    // and far-apart strings.
    let step = (versions.len() / 250).max(1);
    let mut pairs = Vec::new();
    for i in (0..versions.len() - 1).step_by(step) {
        pairs.push((&versions[i], &versions[i + 1]));
        pairs.push((&versions[i], &versions[(i * 7919 + 13) % versions.len()]));
    }
    let mut checked = 0;
    for (a, b) in pairs {
        let ours = compare(Scheme::Deb, a, b).unwrap_or_else(|e| panic!("{a} / {b}: {e}"));
        let dpkg = |op: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .unwrap()
                .success()
        };
        let theirs = if dpkg("lt") {
            Ordering::Less
        } else if dpkg("eq") {
            Ordering::Equal
        } else {
            Ordering::Greater
        };
        assert_eq!(ours, theirs, "{a} vs {b}");
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn invalid_versions_name_the_problem() {
    let err = compare(Scheme::Deb, "1.0-", "1.0").unwrap_err();
    assert_eq!(err.reason, "invalid version '1.0-': revision number is empty");
    let err = compare(Scheme::Windows, "10.0.x", "10.0.1").unwrap_err();
    assert!(err.reason.contains("'x' is not a number"), "{}", err.reason);
    let err = compare(Scheme::Rpm, "", "1.0").unwrap_err();
    assert_eq!(err.reason, "invalid version '': version string is empty");
    let err = compare(Scheme::Rpm, "1.0", " \t").unwrap_err();
    assert_eq!(err.reason, "invalid version ' \t': version string is empty");
    let err = compare(Scheme::Rpm, "1.0 -1", "1.0").unwrap_err();
    assert_eq!(
        err.reason,
        "invalid version '1.0 -1': version string has embedded spaces or control characters"
    );
    // What rpm compares is not refused: a non-numeric "epoch" and an empty release.
    assert_eq!(compare(Scheme::Rpm, "x:1", "1"), Ok(Ordering::Less));
    assert_eq!(compare(Scheme::Rpm, "1.0-", "1.0"), Ok(Ordering::Greater));
    assert!(Scheme::parse("debian").is_ok());
    assert!(Scheme::parse("pkg").unwrap_err().reason.contains("deb, rpm, semver, generic or windows"));
}
