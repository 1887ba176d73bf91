//! An organization's bundle end to end: written from a two-organization chain, verified
//! clean, and every kind of tampering named by the verifier.

use std::io::{Cursor, Read, Write};

use ed25519_dalek::{Signer, SigningKey};
use ringfence_evidence::{
    BundleError, BundleHeader, BundleWriter, Checkpoint, CheckpointError, Event, GENESIS_HASH, Manifest,
    Party, Problem, SlaPolicy, SlaStatus, Stub, VerifyReport, Window, WriteError, key_id, verify_bundle,
};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;
/// 2024-03-01T00:00:00Z.
const T0: i64 = 1_709_251_200_000_000;
/// 2024-05-01T00:00:00Z, the end of the audited window.
const END: i64 = T0 + 61 * DAY;
const ORG_A: &str = "org-a";
const ORG_B: &str = "org-b";
/// Text that only org B's events contain.
const SECRET_B: &str = "SECRET-B-PAYLOAD";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[8; 32])
}

struct Chain {
    events: Vec<Event>,
}

impl Chain {
    fn push(&mut self, at: i64, org: Option<&str>, action: &str, kind: &str, id: &str, payload: &str) -> i64 {
        let seq = self.events.len() as i64 + 1;
        let prev = self.events.last().map_or_else(|| GENESIS_HASH.to_owned(), |e| e.hash.clone());
        let mut e = Event {
            chain: "p1".into(),
            seq,
            at_micros: at,
            actor: "system:test".into(),
            action: action.into(),
            object_kind: kind.into(),
            object_id: id.into(),
            organization_id: org.map(str::to_owned),
            payload: payload.into(),
            prev_hash: prev,
            hash: String::new(),
        };
        e.hash = e.recompute_hash();
        self.events.push(e);
        seq
    }

    fn get(&self, seq: i64) -> &Event {
        &self.events[(seq - 1) as usize]
    }
}

fn deployment(id: &str, device: &str, product: &str, version: &str, manager: &str) -> String {
    format!(
        r#"{{"after":{{"id":"{id}","device_id":"{device}","hostname":"h","kind":"install","status":"installed","updates":[{{"product":"{product}","version":"{version}","manager":"{manager}","name":"{product}","from_version":"0","to_version":"{version}"}}]}},"before":null}}"#
    )
}

/// Sequence numbers of the fixture's notable events.
#[allow(dead_code)]
struct Seqs {
    detect_a: i64,
    rule_approval: i64,
    b_approval: i64,
    dep1_installed: i64,
    resolve_openssl: i64,
    alice_approval: i64,
    resolve_firefox: i64,
    detect_chrome: i64,
    b_deployment: i64,
    detect_late: i64,
}

/// A partner chain with two organizations. Events 1 and 2 are before the window; the rest
/// is the bundle's segment.
fn fixture() -> (Chain, Seqs) {
    let mut c = Chain { events: Vec::new() };
    c.push(T0 - 30 * DAY, Some(ORG_B), "inventory.update", "device", "b1", r#"{"packages":3}"#);
    c.push(T0 - 20 * DAY, Some(ORG_A), "site.create", "site", "s1", r#"{"after":{"name":"HQ"}}"#);
    // The segment.
    c.push(T0, None, "policy.update", "policy", "pol1", r#"{"after":{"critical_days":15}}"#);
    c.push(T0, Some(ORG_A), "inventory.update", "device", "d1", r#"{"packages":120}"#);
    let detect_a = c.push(
        T0,
        Some(ORG_A),
        "findings.change",
        "device",
        "d1",
        r#"{"hostname":"web-1","opened":[{"finding":1,"cve":"CVE-2024-0001","product":"openssl","severity":"critical","kev_due":null},{"finding":2,"cve":"CVE-2024-0002","product":"firefox","severity":"high","kev_due":null}],"resolved":[]}"#,
    );
    c.push(
        T0,
        Some(ORG_B),
        "findings.change",
        "device",
        "b1",
        &format!(
            r#"{{"hostname":"{SECRET_B}","opened":[{{"finding":9,"cve":"CVE-2024-9999","product":"openssl","severity":"critical","kev_due":null}}],"resolved":[]}}"#
        ),
    );
    let rule_approval = c.push(
        T0 + DAY,
        None,
        "approval.approved",
        "approval",
        "ap1",
        r#"{"after":{"id":"ap1","product":"openssl","version":"3.0.14","organization_id":null,"decision":"approved","decided_by":"system:rules","rule":"kev-critical","created_at":0}}"#,
    );
    let b_approval = c.push(
        T0 + DAY + 1,
        Some(ORG_B),
        "approval.approved",
        "approval",
        "ap2",
        &format!(
            r#"{{"after":{{"id":"ap2","product":"openssl","version":"3.0.14","organization_id":"{ORG_B}","decision":"approved","decided_by":"user:{SECRET_B}","rule":null}}}}"#
        ),
    );
    let dep1_installed = c.push(
        T0 + 2 * DAY,
        Some(ORG_A),
        "deployment.installed",
        "deployment",
        "dep1",
        &deployment("dep1", "d1", "openssl", "3.0.14", "apt"),
    );
    c.push(
        T0 + 2 * DAY + HOUR,
        Some(ORG_A),
        "deployment.verified",
        "deployment",
        "dep1",
        &deployment("dep1", "d1", "openssl", "3.0.14", "apt"),
    );
    let resolve_openssl = c.push(
        T0 + 3 * DAY,
        Some(ORG_A),
        "findings.change",
        "device",
        "d1",
        &format!(
            r#"{{"hostname":"web-1","opened":[],"resolved":[{{"finding":1,"cve":"CVE-2024-0001","product":"openssl","severity":"critical","kev_due":null,"detected_at":{T0},"resolution":"patched","deployment":"dep1"}}]}}"#
        ),
    );
    let alice_approval = c.push(
        T0 + 35 * DAY,
        Some(ORG_A),
        "approval.approved",
        "approval",
        "ap3",
        r#"{"after":{"id":"ap3","product":"firefox","version":"125.0","organization_id":"org-a","decision":"approved","decided_by":"user:alice","rule":null}}"#,
    );
    c.push(
        T0 + 40 * DAY,
        Some(ORG_A),
        "deployment.installed",
        "deployment",
        "dep2",
        &deployment("dep2", "d1", "firefox", "125.0", "winget"),
    );
    let resolve_firefox = c.push(
        T0 + 40 * DAY + HOUR,
        Some(ORG_A),
        "findings.change",
        "device",
        "d1",
        &format!(
            r#"{{"hostname":"web-1","opened":[],"resolved":[{{"finding":2,"cve":"CVE-2024-0002","product":"firefox","severity":"high","kev_due":null,"detected_at":{T0},"resolution":"patched","deployment":"dep2"}},{{"finding":3,"cve":"CVE-2023-5555","product":"firefox","severity":"medium","kev_due":null,"detected_at":{},"resolution":"patched","deployment":"dep2"}}]}}"#,
            T0 - 10 * DAY
        ),
    );
    let detect_chrome = c.push(
        T0 + 41 * DAY,
        Some(ORG_A),
        "findings.change",
        "device",
        "d2",
        r#"{"hostname":"laptop-2","opened":[{"finding":4,"cve":"CVE-2024-0003","product":"chrome","severity":"medium","kev_due":"2024-04-15"}],"resolved":[]}"#,
    );
    let b_deployment = c.push(
        T0 + 42 * DAY,
        Some(ORG_B),
        "deployment.installed",
        "deployment",
        "depb",
        &deployment("depb", "b1", SECRET_B, "1.0", "apt"),
    );
    c.push(T0 + 43 * DAY, None, "rollout.halt", "rollout", "r1", r#"{"after":{"reason":"canary failed"}}"#);
    let detect_late = c.push(
        T0 + 55 * DAY,
        Some(ORG_A),
        "findings.change",
        "device",
        "d2",
        r#"{"hostname":"laptop-2","opened":[{"finding":5,"cve":"CVE-2024-0005","product":"curl","severity":"critical","kev_due":null}],"resolved":[]}"#,
    );
    c.push(
        T0 + 56 * DAY,
        Some(ORG_B),
        "inventory.update",
        "device",
        "b1",
        &format!(r#"{{"note":"{SECRET_B}"}}"#),
    );
    let seqs = Seqs {
        detect_a,
        rule_approval,
        b_approval,
        dep1_installed,
        resolve_openssl,
        alice_approval,
        resolve_firefox,
        detect_chrome,
        b_deployment,
        detect_late,
    };
    (c, seqs)
}

fn header() -> BundleHeader {
    BundleHeader {
        msp: Party { id: "msp-1".into(), name: "Acme MSP".into() },
        organization: Party { id: ORG_A.into(), name: "Org A, Inc.".into() },
        window: Window::new(T0 - DAY, END),
        generated_at_micros: END + HOUR,
        generated_by: "user:auditor".into(),
        chain: "p1".into(),
        sla: SlaPolicy::default(),
        as_of_micros: END,
    }
}

/// The bundle of org A for the events from `first` on, with checkpoints at the anchor, at
/// event 8 and at the end.
fn bundle_from(first: i64) -> Vec<u8> {
    let (chain, _) = fixture();
    let k = key();
    let mut out = Cursor::new(Vec::new());
    let mut w = BundleWriter::new(&mut out, header()).expect("start the bundle");
    for e in &chain.events[(first - 1) as usize..] {
        w.push(e).expect("push an event");
    }
    let tables = w.tables().expect("tables");
    let summary = format!("<p>{} rows</p>", tables.rows.len());
    w.add_file("summary.html", summary.into_bytes()).expect("add a file");
    let last = chain.events.last().expect("events");
    let mut checkpoints = vec![Checkpoint::sign(&k, "p1", 8, &chain.get(8).hash, END)];
    if first > 1 {
        checkpoints.push(Checkpoint::sign(&k, "p1", first - 1, &chain.get(first - 1).hash, END));
    }
    checkpoints.push(Checkpoint::sign(&k, "p1", last.seq, &last.hash, END));
    w.finish(&checkpoints, &k).expect("finish the bundle");
    out.into_inner()
}

fn bundle() -> Vec<u8> {
    bundle_from(3)
}

fn verify(bytes: &[u8]) -> VerifyReport {
    verify_bundle(Cursor::new(bytes), Some(&key().verifying_key())).expect("the bundle is readable")
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("an entry");
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read an entry");
            (f.name().to_owned(), b)
        })
        .collect()
}

fn rezip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
    out.into_inner()
}

fn file<'a>(files: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut files.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in the bundle")).1
}

/// Edits one file of the bundle. With `manifest`, the manifest's digest of the file is
/// updated too, and the manifest re-signed with that key (or left with its old signature).
fn tamper(name: &str, edit: impl FnOnce(&mut Vec<u8>), manifest: Resign) -> Vec<u8> {
    let mut files = unzip(&bundle());
    edit(file(&mut files, name));
    let bytes = file(&mut files, name).clone();
    if !matches!(manifest, Resign::No) {
        let mut m: Manifest = serde_json::from_slice(file(&mut files, "manifest.json")).expect("manifest");
        m.files.insert(name.to_owned(), hex::encode(Sha256::digest(&bytes)));
        let m = serde_json::to_vec_pretty(&m).expect("manifest json");
        if let Resign::With(k) = manifest {
            *file(&mut files, "manifest.sig") = hex::encode(k.sign(&m).to_bytes()).into_bytes();
        }
        *file(&mut files, "manifest.json") = m;
    }
    rezip(&files)
}

enum Resign {
    No,
    Unsigned,
    With(Box<SigningKey>),
}

fn edit_lines(edit: impl FnOnce(&mut Vec<String>)) -> impl FnOnce(&mut Vec<u8>) {
    move |bytes| {
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        edit(&mut lines);
        *bytes = (lines.join("\n") + "\n").into_bytes();
    }
}

/// The line of events.jsonl holding event `seq` (the segment starts at event 3).
fn line_of(seq: i64) -> usize {
    (seq - 3) as usize
}

fn has(report: &VerifyReport, pred: impl Fn(&Problem) -> bool) -> bool {
    report.problems.iter().any(pred)
}

#[track_caller]
fn assert_problem(report: &VerifyReport, what: &str, pred: impl Fn(&Problem) -> bool) {
    let listed: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(has(report, pred), "expected {what}, found {listed:#?}");
}

#[test]
fn a_bundle_verifies_clean_and_its_rows_are_the_hand_counted_ones() {
    let (chain, s) = fixture();
    let report = verify(&bundle());
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.events, chain.events.len() as u64 - 2);
    assert_eq!((report.full, report.stubs), (13, 4));
    assert_eq!(report.checkpoints_checked, 3);
    assert_eq!(report.key_id, key_id(&key().verifying_key()));
    assert_eq!(report.organization.id, ORG_A);

    let files = unzip(&bundle());
    let rows: Vec<ringfence_evidence::VulnRow> =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "vulnerabilities.json").expect("rows").1)
            .expect("rows parse");
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.cve.as_str(),
                r.device_id.as_str(),
                r.detected_seq,
                r.approved_by.as_deref(),
                r.approval_seq,
                r.deployment_id.as_deref(),
                r.resolved_seq,
                r.sla_status,
            )
        })
        .collect();
    let expect = vec![
        // Detected before the window: known only from its resolution.
        (
            "CVE-2023-5555",
            "d1",
            None,
            Some("user:alice"),
            Some(s.alice_approval),
            Some("dep2"),
            Some(s.resolve_firefox),
            SlaStatus::Met,
        ),
        (
            "CVE-2024-0001",
            "d1",
            Some(s.detect_a),
            Some("rule:kev-critical"),
            Some(s.rule_approval),
            Some("dep1"),
            Some(s.resolve_openssl),
            SlaStatus::Met,
        ),
        (
            "CVE-2024-0002",
            "d1",
            Some(s.detect_a),
            Some("user:alice"),
            Some(s.alice_approval),
            Some("dep2"),
            Some(s.resolve_firefox),
            SlaStatus::Breached,
        ),
        // Due 14 days after detection: its KEV date, 2024-04-15, leaves less than the KEV window.
        ("CVE-2024-0003", "d2", Some(s.detect_chrome), None, None, None, None, SlaStatus::Overdue),
        ("CVE-2024-0005", "d2", Some(s.detect_late), None, None, None, None, SlaStatus::Open),
    ];
    assert_eq!(got, expect);
    let openssl = &rows[1];
    assert_eq!(openssl.deployed_at, Some(T0 + 2 * DAY));
    assert_eq!(openssl.verified_at, Some(T0 + 2 * DAY + HOUR));
    assert_eq!(openssl.sla_due, Some(T0 + 15 * DAY));
    assert_eq!(
        rows[3].sla_due,
        Some(T0 + 55 * DAY),
        "detected 2024-04-11: the later of CISA's date (2024-04-15) and 14 days from detection"
    );
    assert!(rows[3].kev);

    let cis: Vec<ringfence_evidence::Safeguard> =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "cis-control-7.json").expect("cis").1)
            .expect("cis parses");
    let statuses: Vec<_> = cis.iter().map(|s| (s.id.as_str(), s.status.as_str())).collect();
    assert_eq!(
        statuses,
        [
            ("7.1", "evidenced"),
            // Approvals and a halt, but no exception or risk decision.
            ("7.2", "partial"),
            ("7.3", "evidenced"),
            ("7.4", "evidenced"),
            ("7.5", "evidenced"),
            ("7.6", "not_evidenced"),
            ("7.7", "evidenced"),
        ]
    );
    assert!(cis[0].summary.contains("critical 15 days"), "{}", cis[0].summary);
    assert!(
        cis[6].summary.contains("3 finding(s) resolved: 2 within the SLA, 1 after it"),
        "{}",
        cis[6].summary
    );
}

#[test]
fn a_segment_from_the_chain_start_needs_no_anchor() {
    let report = verify(&bundle_from(1));
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.events, 19);
}

#[test]
fn another_organizations_events_appear_only_as_stubs() {
    let (_, s) = fixture();
    let bytes = bundle();
    assert!(!bytes.windows(SECRET_B.len()).any(|w| w == SECRET_B.as_bytes()));
    for (name, content) in unzip(&bytes) {
        let text = String::from_utf8_lossy(&content);
        assert!(!text.contains(SECRET_B), "{name} shows org B's content");
        assert!(!text.contains(ORG_B), "{name} names org B");
    }
    let events = unzip(&bytes).into_iter().find(|(n, _)| n == "events.jsonl").expect("events").1;
    let lines: Vec<&str> = std::str::from_utf8(&events).expect("utf-8").lines().collect();
    for seq in [s.b_approval, s.b_deployment] {
        assert!(lines[line_of(seq)].starts_with(r#"{"type":"stub","seq":"#), "{}", lines[line_of(seq)]);
    }
}

#[test]
fn an_altered_event_is_named_by_line_and_seq() {
    let (_, s) = fixture();
    let altered = edit_lines(|l| {
        l[line_of(s.resolve_openssl)] = l[line_of(s.resolve_openssl)].replace("patched", "ignored");
    });
    let report = verify(&tamper("events.jsonl", altered, Resign::No));
    assert_problem(&report, "altered", |p| {
        *p == Problem::Altered { line: line_of(s.resolve_openssl) as u64 + 1, seq: s.resolve_openssl }
    });
    assert_problem(
        &report,
        "file digest",
        |p| matches!(p, Problem::FileDigest { name } if name == "events.jsonl"),
    );
    let text = Problem::Altered { line: 9, seq: 11 }.to_string();
    assert_eq!(text, "events.jsonl line 9: event 11 was altered (its content does not match its hash)");
}

#[test]
fn a_deleted_line_breaks_the_sequence() {
    let report =
        verify(&tamper("events.jsonl", edit_lines(|l| drop(l.remove(4))), Resign::With(Box::new(key()))));
    assert_problem(&report, "sequence", |p| *p == Problem::Sequence { line: 5, expected: 7, found: 8 });
    assert_problem(&report, "unlinked", |p| *p == Problem::Unlinked { line: 5, seq: 8 });
}

#[test]
fn swapped_lines_break_the_sequence() {
    let report = verify(&tamper("events.jsonl", edit_lines(|l| l.swap(3, 4)), Resign::With(Box::new(key()))));
    assert_problem(&report, "sequence", |p| *p == Problem::Sequence { line: 4, expected: 6, found: 7 });
}

#[test]
fn a_made_up_event_is_found() {
    let (chain, _) = fixture();
    // A self-consistent event that links to event 5 and claims to be event 6.
    let mut forged = chain.get(6).clone();
    forged.organization_id = Some(ORG_A.into());
    forged.payload = r#"{"hostname":"web-1","opened":[],"resolved":[]}"#.into();
    forged.hash = forged.recompute_hash();
    let mut line = serde_json::to_value(&forged).expect("json");
    line["type"] = "event".into();
    let insert = edit_lines(move |l| l.insert(line_of(6), line.to_string()));
    let report = verify(&tamper("events.jsonl", insert, Resign::With(Box::new(key()))));
    assert_problem(&report, "sequence", |p| *p == Problem::Sequence { line: 5, expected: 7, found: 6 });
    assert_problem(&report, "unlinked", |p| *p == Problem::Unlinked { line: 5, seq: 6 });
}

#[test]
fn an_edited_table_row_is_named() {
    let edit = |b: &mut Vec<u8>| *b = String::from_utf8_lossy(b).replacen("breached", "met", 1).into_bytes();
    let report = verify(&tamper("vulnerabilities.csv", edit, Resign::No));
    assert_problem(
        &report,
        "digest",
        |p| matches!(p, Problem::FileDigest { name } if name == "vulnerabilities.csv"),
    );
    assert_problem(&report, "csv line", |p| {
        *p == Problem::CsvDiffers { file: "vulnerabilities.csv", line: 4 }
    });

    let report = verify(&tamper("vulnerabilities.csv", edit, Resign::Unsigned));
    assert!(!has(&report, |p| matches!(p, Problem::FileDigest { .. })), "{:#?}", report.problems);
    assert_problem(&report, "manifest signature", |p| matches!(p, Problem::ManifestSignature { .. }));
    assert_problem(&report, "csv line", |p| {
        *p == Problem::CsvDiffers { file: "vulnerabilities.csv", line: 4 }
    });

    let report = verify(&tamper("vulnerabilities.json", edit, Resign::Unsigned));
    assert_problem(&report, "manifest signature", |p| matches!(p, Problem::ManifestSignature { .. }));
    assert_problem(&report, "row", |p| {
        matches!(p, Problem::RowDiffers { file: "vulnerabilities.json", detail }
            if detail.starts_with("row 3 (CVE-2024-0002 on device d1) says sla_status = \"met\""))
    });
}

#[test]
fn an_edited_safeguard_is_named() {
    let edit = |b: &mut Vec<u8>| {
        *b = String::from_utf8_lossy(b).replacen("not_evidenced", "evidenced", 1).into_bytes()
    };
    let report = verify(&tamper("cis-control-7.json", edit, Resign::With(Box::new(key()))));
    assert_problem(
        &report,
        "safeguard",
        |p| matches!(p, Problem::SafeguardDiffers { file: "cis-control-7.json", id, .. } if id == "7.6"),
    );
}

fn with_checkpoints(edit: impl FnOnce(&mut Vec<Checkpoint>)) -> Vec<u8> {
    let change = |b: &mut Vec<u8>| {
        let mut list: Vec<Checkpoint> = serde_json::from_slice(b).expect("checkpoints");
        edit(&mut list);
        *b = serde_json::to_vec_pretty(&list).expect("json");
    };
    tamper("checkpoints.json", change, Resign::With(Box::new(key())))
}

#[test]
fn forged_and_foreign_checkpoints_are_named() {
    let forged = with_checkpoints(|l| l[1].hash = "ab".repeat(32));
    let report = verify(&forged);
    assert_problem(&report, "bad signature", |p| {
        *p == Problem::CheckpointSignature { seq: 8, error: CheckpointError::BadSignature }
    });
    assert_problem(&report, "mismatch", |p| *p == Problem::CheckpointMismatch { seq: 8 });

    let (chain, _) = fixture();
    let foreign =
        with_checkpoints(|l| l[1] = Checkpoint::sign(&other_key(), "p1", 8, &chain.get(8).hash, END));
    let report = verify(&foreign);
    assert_problem(&report, "wrong key", |p| {
        matches!(p, Problem::CheckpointSignature { seq: 8, error: CheckpointError::WrongKey { .. } })
    });
}

#[test]
fn checkpoints_must_anchor_and_close_the_segment() {
    let (chain, _) = fixture();
    let report = verify(&with_checkpoints(|l| l.retain(|c| c.seq != 2)));
    assert_problem(&report, "anchor", |p| *p == Problem::MissingAnchor { seq: 2 });
    let report = verify(&with_checkpoints(|l| l.retain(|c| c.seq != 19)));
    assert_problem(&report, "end", |p| *p == Problem::MissingEndCheckpoint { seq: 19 });
    // A validly signed anchor that is not the chain's: the segment does not link to it.
    let wrong_anchor = with_checkpoints(|l| {
        let i = l.iter().position(|c| c.seq == 2).expect("anchor");
        l[i] = Checkpoint::sign(&key(), "p1", 2, &chain.get(1).hash, END);
    });
    let report = verify(&wrong_anchor);
    assert_problem(&report, "anchor mismatch", |p| *p == Problem::CheckpointMismatch { seq: 2 });
    let report =
        verify(&with_checkpoints(|l| l.push(Checkpoint::sign(&key(), "p1", 40, &"ab".repeat(32), END))));
    assert_problem(&report, "outside", |p| *p == Problem::CheckpointOutside { seq: 40 });
}

#[test]
fn a_bundle_signed_by_another_key_fails_against_the_pinned_key() {
    let report = verify_bundle(Cursor::new(bundle()), Some(&other_key().verifying_key())).expect("readable");
    assert_problem(&report, "pinned key", |p| {
        *p == Problem::PinnedKeyMismatch {
            pinned: key_id(&other_key().verifying_key()),
            found: key_id(&key().verifying_key()),
        }
    });
    let unpinned = verify_bundle(Cursor::new(bundle()), None).expect("readable");
    assert!(unpinned.ok());
}

#[test]
fn an_own_event_turned_into_a_stub_is_named() {
    let (chain, s) = fixture();
    let stub = Stub::of(chain.get(s.resolve_openssl));
    let mut line = serde_json::to_value(&stub).expect("json");
    line["type"] = "stub".into();
    let hide = edit_lines(move |l| l[line_of(s.resolve_openssl)] = line.to_string());
    let report = verify(&tamper("events.jsonl", hide, Resign::With(Box::new(key()))));
    assert_problem(&report, "hidden own event", |p| {
        *p == Problem::HiddenOwnEvent { line: line_of(s.resolve_openssl) as u64 + 1, seq: s.resolve_openssl }
    });
}

#[test]
fn another_organizations_event_in_full_is_named() {
    let (chain, s) = fixture();
    let mut line = serde_json::to_value(chain.get(s.b_deployment)).expect("json");
    line["type"] = "event".into();
    let reveal = edit_lines(move |l| l[line_of(s.b_deployment)] = line.to_string());
    let report = verify(&tamper("events.jsonl", reveal, Resign::With(Box::new(key()))));
    assert_problem(&report, "foreign event", |p| {
        *p == Problem::ForeignEvent {
            line: line_of(s.b_deployment) as u64 + 1,
            seq: s.b_deployment,
            organization: Some(ORG_B.into()),
        }
    });
}

#[test]
fn an_altered_stub_is_named() {
    let (_, s) = fixture();
    let edit = edit_lines(move |l| {
        let v = &mut l[line_of(s.b_deployment)];
        let at = v.find("\"body_digest\":\"").expect("digest") + 15;
        let c = if &v[at..at + 1] == "0" { "1" } else { "0" };
        v.replace_range(at..at + 1, c);
    });
    let report = verify(&tamper("events.jsonl", edit, Resign::With(Box::new(key()))));
    assert_problem(&report, "stub altered", |p| {
        *p == Problem::StubAltered { line: line_of(s.b_deployment) as u64 + 1, seq: s.b_deployment }
    });
}

#[test]
fn a_truncated_segment_and_a_bad_line_are_named() {
    let report =
        verify(&tamper("events.jsonl", edit_lines(|l| drop(l.pop())), Resign::With(Box::new(key()))));
    assert_problem(&report, "segment end", |p| *p == Problem::SegmentEnd { expected: 19, found: Some(18) });
    let report = verify(&tamper(
        "events.jsonl",
        edit_lines(|l| l[2] = "{not json".into()),
        Resign::With(Box::new(key())),
    ));
    assert_problem(&report, "bad line", |p| matches!(p, Problem::BadLine { line: 3, .. }));
}

#[test]
fn added_and_removed_files_are_named() {
    let mut files = unzip(&bundle());
    files.push(("extra.txt".into(), b"hello".to_vec()));
    files.retain(|(n, _)| n != "summary.html");
    let report = verify(&rezip(&files));
    assert_problem(&report, "unlisted", |p| *p == Problem::UnlistedFile { name: "extra.txt".into() });
    assert_problem(&report, "missing", |p| *p == Problem::MissingFile { name: "summary.html".into() });
}

#[test]
fn unreadable_bundles_are_errors_not_panics() {
    let garbage = b"PK\x03\x04 this is not really a zip archive".to_vec();
    assert!(matches!(verify_bundle(Cursor::new(garbage), None), Err(BundleError::Zip(_))));
    assert!(matches!(verify_bundle(Cursor::new(Vec::new()), None), Err(BundleError::Zip(_))));
    let mut files = unzip(&bundle());
    files.retain(|(n, _)| n != "manifest.json");
    assert!(matches!(verify_bundle(Cursor::new(rezip(&files)), None), Err(BundleError::MissingManifest)));
    let mut files = unzip(&bundle());
    *file(&mut files, "manifest.json") = b"{\"format\":".to_vec();
    assert!(matches!(verify_bundle(Cursor::new(rezip(&files)), None), Err(BundleError::Manifest(_))));
}

#[test]
fn the_writer_refuses_what_it_cannot_vouch_for() {
    let (chain, _) = fixture();
    let k = key();
    let mut w = BundleWriter::new(Cursor::new(Vec::new()), header()).expect("start");
    w.push(chain.get(3)).expect("first");
    assert!(matches!(w.push(chain.get(5)), Err(WriteError::OutOfOrder { expected: 4, found: 5 })));
    let mut altered = chain.get(4).clone();
    altered.payload.push(' ');
    assert!(matches!(w.push(&altered), Err(WriteError::Altered { seq: 4 })));
    w.push(chain.get(4)).expect("second");
    let anchor = Checkpoint::sign(&k, "p1", 2, &chain.get(2).hash, END);
    // The last checkpoint is at event 3, but the segment ends at 4.
    let stale = Checkpoint::sign(&k, "p1", 3, &chain.get(3).hash, END);
    assert!(matches!(w.finish(&[anchor, stale], &k), Err(WriteError::MissingEndCheckpoint { seq: 4 })));

    let mut w = BundleWriter::new(Cursor::new(Vec::new()), header()).expect("start");
    w.push(chain.get(3)).expect("first");
    let anchor = Checkpoint::sign(&k, "p1", 2, &chain.get(2).hash, END);
    let wrong = Checkpoint::sign(&k, "p1", 3, &chain.get(2).hash, END);
    assert!(matches!(w.finish(&[anchor, wrong], &k), Err(WriteError::CheckpointMismatch { seq: 3 })));

    let w = BundleWriter::new(Cursor::new(Vec::new()), header()).expect("start");
    assert!(matches!(w.finish(&[], &k), Err(WriteError::Empty(_))));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any single-byte change to events.jsonl is found by the events' own checks, even when
    /// the manifest is updated and re-signed with the partner's key.
    #[test]
    fn any_single_byte_edit_of_the_events_is_detected(at in 0usize..1_000_000, to in 0u8..=255) {
        let mut files = unzip(&bundle());
        let len = file(&mut files, "events.jsonl").len();
        let at = at % len;
        let original = file(&mut files, "events.jsonl")[at];
        proptest::prop_assume!(original != to);
        let edited = tamper("events.jsonl", |b| b[at] = to, Resign::With(Box::new(key())));
        let report = verify(&edited);
        proptest::prop_assert!(!report.ok());
        proptest::prop_assert!(
            report.problems.iter().any(|p| !matches!(p, Problem::FileDigest { .. } | Problem::ManifestSignature { .. })),
            "{:?}", report.problems
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Damage anywhere in the archive itself gives an error or a report, never a panic.
    /// (Padding bits of a compressed entry change nothing a reader sees, so a clean report
    /// is possible.)
    #[test]
    fn a_damaged_archive_never_panics(at in 0usize..1_000_000, to in 0u8..=255, cut in proptest::bool::ANY) {
        let mut bytes = bundle();
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = to;
        }
        let _ = verify_bundle(Cursor::new(bytes), None);
    }
}

/// CRC-32 (IEEE), bit by bit: the checksum every zip entry carries.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zip of stored entries written byte by byte, as an attacker's tool would: entries may
/// repeat a name, the offsets may count `lead` bytes before the first entry, and the end
/// record may carry a comment.
fn raw_zip(entries: &[(String, Vec<u8>)], lead: &[u8], comment: &[u8]) -> Vec<u8> {
    let mut out = lead.to_vec();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let (crc, size, n) = (crc32(data), data.len() as u32, name.len() as u16);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&n.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let start = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let count = (entries.len() as u16).to_le_bytes();
    out.extend_from_slice(&count);
    out.extend_from_slice(&count);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    out.extend_from_slice(comment);
    out
}

fn container_problem(report: &VerifyReport, words: &str) -> bool {
    report.problems.iter().any(|p| matches!(p, Problem::Container { reason } if reason.contains(words)))
}

#[test]
fn zip_container_tricks_are_refused() {
    let files = unzip(&bundle());
    // The same entries written plainly by hand verify: the checks below catch the tricks, not
    // the hand-made writer.
    let plain = raw_zip(&files, b"", b"");
    assert!(verify(&plain).ok(), "{:?}", verify(&plain).problems);

    // A forged table placed first under a name the bundle already holds: the reader that
    // takes the first copy would see "met" everywhere.
    let mut forged = files.clone();
    assert!(forged.iter().any(|(n, _)| n == "vulnerabilities.csv"));
    forged.insert(0, ("vulnerabilities.csv".into(), b"cve,status\r\nCVE-2024-0001,met\r\n".to_vec()));
    let r = verify(&raw_zip(&forged, b"", b""));
    assert!(container_problem(&r, "two entries of this name"), "{:?}", r.problems);
    // The same name in other letters.
    let mut cased = files.clone();
    cased.push(("Vulnerabilities.CSV".into(), b"x".to_vec()));
    let r = verify(&raw_zip(&cased, b"", b""));
    assert!(container_problem(&r, "two entries of this name"), "{:?}", r.problems);

    // A comment, shown by `unzip -l` as if the bundle said it.
    let r = verify(&raw_zip(&files, b"", b"VERIFIED OK by external auditor"));
    assert!(container_problem(&r, "comment"), "{:?}", r.problems);
    // Junk appended after the archive.
    let mut appended = plain.clone();
    appended.extend_from_slice(b"junk");
    let r = verify(&appended);
    assert!(container_problem(&r, "appended"), "{:?}", r.problems);
    // A forged entry prepended, the offsets shifted to match, and prepended as is.
    let lead = raw_zip(&[("summary.html".to_owned(), b"<h1>all met</h1>".to_vec())], b"", b"");
    let r = verify(&raw_zip(&files, &lead, b""));
    assert!(container_problem(&r, "bytes lie before"), "{:?}", r.problems);
    let r = verify(&[lead.clone(), plain.clone()].concat());
    assert!(container_problem(&r, "bytes lie between"), "{:?}", r.problems);
    // A local header that disagrees with the central directory: a streaming reader, which
    // walks local headers, would read another size (or method, time…).
    let mut skewed = plain.clone();
    skewed[10] ^= 0x01; // the first entry's local modification time
    let r = verify(&skewed);
    assert!(container_problem(&r, "its local header gives another time"), "{:?}", r.problems);
    // Nothing of these is "ok".
    for bytes in [raw_zip(&forged, b"", b""), appended, [lead, plain].concat()] {
        assert!(!verify(&bytes).ok());
    }
}

#[test]
fn whitespace_around_the_signature_is_refused() {
    for pad in ["\n", " ", "\r\n", "\t"] {
        let mut files = unzip(&bundle());
        file(&mut files, "manifest.sig").extend_from_slice(pad.as_bytes());
        let r = verify(&rezip(&files));
        assert!(
            r.problems
                .iter()
                .any(|p| matches!(p, Problem::ManifestSignature { reason } if reason.contains("128"))),
            "{pad:?}: {:?}",
            r.problems
        );
    }
    // Upper-case hex is not what the server writes either.
    let mut files = unzip(&bundle());
    let sig = file(&mut files, "manifest.sig");
    *sig = sig.to_ascii_uppercase();
    assert!(!verify(&rezip(&files)).ok());
}

/// Every byte of a bundle is covered: a change anywhere is found, except in the bits the
/// deflate format itself ignores (padding after a compressed stream's last block), which
/// change nothing any reader sees.
#[test]
fn a_change_to_any_byte_of_the_container_or_the_stored_bytes_is_found() {
    let bytes = bundle();
    let mut missed = Vec::new();
    // Every 7th byte, and every byte of the headers and the central directory at the end.
    let tail = bytes.len().saturating_sub(1200);
    for at in (0..bytes.len()).filter(|&at| at % 7 == 0 || at < 200 || at >= tail) {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        if let Ok(r) = verify_bundle(Cursor::new(&b), Some(&key().verifying_key()))
            && r.ok()
        {
            missed.push(at);
        }
    }
    // The undetected changes are deflate padding bits inside compressed entries only: the
    // entries decompress to the same bytes, so nothing a reader sees changed.
    let files = unzip(&bytes);
    for at in &missed {
        let mut b = bytes.clone();
        b[*at] ^= 0x01;
        assert_eq!(unzip(&b), files, "byte {at} changed an entry's content and was not found");
    }
    assert!(missed.len() * 100 < bytes.len(), "{} of {} bytes unchecked", missed.len(), bytes.len());
}
