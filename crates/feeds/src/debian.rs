//! Debian's own vulnerability data: the security tracker's JSON export
//! (`https://security-tracker.debian.org/tracker/data/json`) and the CVE ids named in
//! package changelogs.
//!
//! The tracker is keyed by **source package**, then CVE, then release codename, with a
//! status (`resolved`, `open`, `undetermined`), the version that fixed it in that release
//! (`0` when the release was never affected) and an urgency (`unimportant` marks issues
//! Debian does not consider a security risk in its packages).

use crate::{FeedError, Skipped, stream};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// The state of one CVE in one source package in one release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerState {
    /// Fixed in this version; versions before it are affected.
    Fixed(String),
    /// The release was never affected (`fixed_version` 0).
    NotAffected,
    /// Affected, no fix yet. `reason` is the tracker's `nodsa` note ("Minor issue") when
    /// the security team does not plan an advisory.
    Open { nodsa: Option<String> },
    /// Not yet triaged.
    Undetermined,
}

/// One tracker entry: a CVE in a source package in a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerEntry {
    pub package: String,
    pub cve_id: String,
    /// The release codename (`bookworm`).
    pub release: String,
    pub state: TrackerState,
    /// `unimportant`, `low`, `medium`, `high`, `not yet assigned`; the tracker's trailing
    /// `*`/`**` (urgency taken from elsewhere) removed.
    pub urgency: Option<String>,
}

#[derive(Deserialize)]
struct RawCve {
    #[serde(default)]
    releases: BTreeMap<String, RawRelease>,
}

#[derive(Deserialize)]
struct RawRelease {
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa: Option<String>,
}

fn entry(package: &str, cve_id: &str, release: String, r: RawRelease) -> Result<TrackerEntry, String> {
    let fixed = r.fixed_version.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let state = match r.status.as_str() {
        "resolved" => match fixed {
            Some(v) if v == "0" => TrackerState::NotAffected,
            Some(v) => TrackerState::Fixed(v),
            None => return Err("resolved without fixed_version".into()),
        },
        "open" => TrackerState::Open { nodsa: r.nodsa.filter(|s| !s.is_empty()) },
        "undetermined" => TrackerState::Undetermined,
        other => return Err(format!("unknown status '{other}'")),
    };
    let urgency = r.urgency.map(|u| u.trim_end_matches('*').trim().to_string()).filter(|u| !u.is_empty());
    Ok(TrackerEntry { package: package.to_string(), cve_id: cve_id.to_string(), release, state, urgency })
}

/// Streams the tracker JSON, one source package at a time. Entries whose id is not a CVE
/// (the tracker also lists `TEMP-…` placeholders) or that cannot be read are skipped and
/// counted.
pub fn parse_tracker(
    reader: impl Read,
    each: &mut dyn FnMut(TrackerEntry),
) -> Result<(u64, Skipped), FeedError> {
    let mut skipped = Skipped::default();
    let mut packages = 0u64;
    stream::for_each_entry(reader, &mut |package, raw| {
        packages += 1;
        let cves: BTreeMap<String, Box<serde_json::value::RawValue>> = match serde_json::from_str(raw.get()) {
            Ok(c) => c,
            Err(e) => {
                skipped.add(format!("package is not an object of CVEs: {e}"), package);
                return;
            }
        };
        for (cve_id, raw) in cves {
            if !crate::kev::is_cve_id(&cve_id) {
                skipped.add("not a CVE id (TEMP- placeholder)", cve_id);
                continue;
            }
            let cve: RawCve = match serde_json::from_str(raw.get()) {
                Ok(c) => c,
                Err(e) => {
                    skipped.add(format!("malformed entry: {e}"), format!("{package}/{cve_id}"));
                    continue;
                }
            };
            for (release, r) in cve.releases {
                match entry(&package, &cve_id, release, r) {
                    Ok(e) => each(e),
                    Err(reason) => skipped.add(reason, format!("{package}/{cve_id}")),
                }
            }
        }
    })?;
    Ok((packages, skipped))
}

/// One entry of a Debian changelog: the version it released and the CVE ids it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangelogEntry {
    pub package: String,
    pub version: String,
    pub distribution: String,
    pub cves: Vec<String>,
}

fn cve_ids(line: &str, out: &mut Vec<String>) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(pos) = line[i..].find("CVE-") {
        let start = i + pos;
        let mut end = start + 4;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'-') {
            end += 1;
        }
        let id = line[start..end].trim_end_matches('-');
        if crate::kev::is_cve_id(id) && !out.iter().any(|x| x == id) {
            out.push(id.to_string());
        }
        i = end.max(start + 4);
    }
}

/// Reads a `changelog.Debian`: each entry starts with `package (version) dist; urgency=…`
/// at column 0 and ends with the ` -- Maintainer  date` trailer.
pub fn parse_changelog(text: &str) -> Result<Vec<ChangelogEntry>, FeedError> {
    let mut entries: Vec<ChangelogEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with([' ', '\t']) {
            if let Some(e) = entries.last_mut() {
                cve_ids(line, &mut e.cves);
            }
            continue;
        }
        let header = (|| {
            let (package, rest) = line.split_once(" (")?;
            let (version, rest) = rest.split_once(')')?;
            let distribution = rest.split(';').next()?.trim();
            (!package.contains(' ') && !version.is_empty()).then(|| ChangelogEntry {
                package: package.to_string(),
                version: version.to_string(),
                distribution: distribution.to_string(),
                cves: Vec::new(),
            })
        })();
        match header {
            Some(h) => entries.push(h),
            // Old changelogs end with free-form notes ("Local variables:", "Old Changelog:").
            None if !entries.is_empty() => break,
            None => {
                return Err(FeedError::Format(format!(
                    "line {}: expected a changelog entry header 'package (version) distribution; urgency=…'",
                    n + 1
                )));
            }
        }
    }
    Ok(entries)
}

/// The CVE ids fixed by upgrading from `installed` to `candidate`: those named in entries
/// newer than `installed`, up to and including `candidate`, in dpkg ordering.
pub fn cves_between(
    entries: &[ChangelogEntry],
    installed: &str,
    candidate: &str,
) -> Result<Vec<String>, String> {
    use ringfence_versions::{Scheme, compare};
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        let newer = compare(Scheme::Deb, &e.version, installed).map_err(|e| e.reason)?.is_gt();
        let within = compare(Scheme::Deb, &e.version, candidate).map_err(|e| e.reason)?.is_le();
        if newer && within {
            for c in &e.cves {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_states() {
        let json = r#"{"openssh":{
          "CVE-2024-6387":{"releases":{
             "bookworm":{"status":"resolved","fixed_version":"1:9.2p1-2+deb12u3","urgency":"high**","repositories":{}},
             "bullseye":{"status":"resolved","fixed_version":"0","urgency":"not yet assigned"},
             "trixie":{"status":"open","urgency":"low","nodsa":"Minor issue"},
             "sid":{"status":"undetermined","urgency":"not yet assigned"}}},
          "TEMP-0000000-ABCDEF":{"releases":{}},
          "CVE-2099-0001":{"releases":{"bookworm":{"status":"resolved","urgency":"low"}}}
        }}"#;
        let mut got = Vec::new();
        let (packages, skipped) = parse_tracker(json.as_bytes(), &mut |e| got.push(e)).unwrap();
        assert_eq!(packages, 1);
        assert_eq!(skipped.total(), 2);
        assert!(skipped.by_reason.contains_key("resolved without fixed_version"));
        let by = |r: &str| got.iter().find(|e| e.release == r).unwrap();
        assert_eq!(by("bookworm").state, TrackerState::Fixed("1:9.2p1-2+deb12u3".into()));
        assert_eq!(by("bookworm").urgency.as_deref(), Some("high"));
        assert_eq!(by("bullseye").state, TrackerState::NotAffected);
        assert_eq!(by("trixie").state, TrackerState::Open { nodsa: Some("Minor issue".into()) });
        assert_eq!(by("sid").state, TrackerState::Undetermined);
    }

    #[test]
    fn tracker_rejects_non_objects() {
        let err = parse_tracker("[1,2]".as_bytes(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn changelog_cves_between_versions() {
        let text = "jq (1.6-2.1+deb12u3) bookworm-security; urgency=medium\n\n  * CVE-2026-32316: fix\n  * GHSA-gf4g-95wj-4q4r: no CVE\n\n -- A <a@b>  Fri, 16 Oct 2026 13:54:26 -0500\n\n\
jq (1.6-2.1+deb12u2) bookworm-security; urgency=high\n\n  * CVE-2026-32316 (Closes: #1)\n  * CVE-2026-33947, CVE-2026-33948.\n\n -- A <a@b>  Fri, 2 Oct 2026 13:54:26 -0500\n\n\
jq (1.6-2.1+deb12u1) bookworm; urgency=medium\n\n  * CVE-2023-50246\n\n -- A <a@b>  Fri, 2 Oct 2024 13:54:26 -0500\n";
        let entries = parse_changelog(text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].cves, ["CVE-2026-32316", "CVE-2026-33947", "CVE-2026-33948"]);
        let fixed = cves_between(&entries, "1.6-2.1+deb12u1", "1.6-2.1+deb12u3").unwrap();
        assert_eq!(fixed, ["CVE-2026-32316", "CVE-2026-33947", "CVE-2026-33948"]);
        assert!(cves_between(&entries, "1.6-2.1+deb12u3", "1.6-2.1+deb12u3").unwrap().is_empty());
        assert!(parse_changelog("not a changelog\n").unwrap_err().to_string().contains("line 1"));
    }
}
