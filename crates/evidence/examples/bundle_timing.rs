//! Times the timeline, the bundle writer and the verifier on a synthetic chain.
//!
//! `cargo run --release -p ringfence-evidence --example bundle_timing -- 1000000`

use std::io::Cursor;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use ringfence_evidence::{
    BundleHeader, BundleWriter, Checkpoint, Event, GENESIS_HASH, Party, SlaPolicy, Timeline, Window,
    verify_bundle,
};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_709_251_200_000_000;

fn main() {
    let n: i64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let orgs = ["org-a", "org-b", "org-c", "org-d"];
    let started = Instant::now();
    let mut events = Vec::with_capacity(n as usize);
    let mut prev = GENESIS_HASH.to_owned();
    for seq in 1..=n {
        let org = orgs[(seq % 4) as usize];
        let device = format!("dev-{}", seq % 500);
        let at = T0 + seq * (60 * DAY / n);
        let (action, kind, payload) = match seq % 10 {
            0..=4 => (
                "inventory.update",
                "device",
                format!(r#"{{"packages":{},"changed":["openssl"]}}"#, seq % 300),
            ),
            5 | 6 => (
                "findings.change",
                "device",
                format!(
                    r#"{{"hostname":"host-{device}","opened":[{{"finding":{seq},"cve":"CVE-2024-{:04}","product":"openssl","severity":"high","kev_due":null}}],"resolved":[{{"finding":{},"cve":"CVE-2024-{:04}","product":"openssl","severity":"high","kev_due":null,"detected_at":{},"resolution":"patched","deployment":"dep-{}"}}]}}"#,
                    seq % 9000,
                    seq - 7,
                    (seq - 7) % 9000,
                    at - DAY,
                    seq - 2
                ),
            ),
            7 => (
                "approval.approved",
                "approval",
                format!(
                    r#"{{"after":{{"id":"ap{seq}","product":"openssl","version":"3.0.{}","organization_id":null,"decision":"approved","decided_by":"user:a","rule":"kev"}}}}"#,
                    seq % 20
                ),
            ),
            8 => (
                "deployment.installed",
                "deployment",
                format!(
                    r#"{{"after":{{"id":"dep-{seq}","device_id":"{device}","hostname":"h","kind":"install","status":"installed","updates":[{{"product":"openssl","version":"3.0.{}","manager":"apt","name":"openssl","from_version":"3.0.1","to_version":"3.0.2"}}]}}}}"#,
                    seq % 20
                ),
            ),
            _ => ("policy.update", "policy", r#"{"after":{"critical_days":15}}"#.to_owned()),
        };
        let org = if action == "approval.approved" || action == "policy.update" { None } else { Some(org) };
        let object_id = if kind == "deployment" { format!("dep-{seq}") } else { device };
        let mut e = Event {
            chain: "p1".into(),
            seq,
            at_micros: at,
            actor: "system:agent".into(),
            action: action.into(),
            object_kind: kind.into(),
            object_id,
            organization_id: org.map(str::to_owned),
            payload,
            prev_hash: prev,
            hash: String::new(),
        };
        e.hash = e.recompute_hash();
        prev = e.hash.clone();
        events.push(e);
    }
    println!("generated {n} events in {:?}", started.elapsed());

    let started = Instant::now();
    let mut t = Timeline::new("org-a", SlaPolicy::default(), T0 + 61 * DAY);
    for e in &events {
        t.push(e);
    }
    let out = t.finish();
    println!("timeline: {} rows in {:?}", out.rows.len(), started.elapsed());

    let key = SigningKey::from_bytes(&[7; 32]);
    let header = BundleHeader {
        msp: Party { id: "msp".into(), name: "MSP".into() },
        organization: Party { id: "org-a".into(), name: "Org A".into() },
        window: Window::new(T0, T0 + 61 * DAY),
        generated_at_micros: T0 + 61 * DAY,
        generated_by: "user:auditor".into(),
        chain: "p1".into(),
        sla: SlaPolicy::default(),
        as_of_micros: T0 + 61 * DAY,
    };
    let started = Instant::now();
    let mut buf = Cursor::new(Vec::new());
    let mut w = BundleWriter::new(&mut buf, header).expect("start");
    for e in &events {
        w.push(e).expect("push");
    }
    let last = events.last().expect("events");
    let cp = Checkpoint::sign(&key, "p1", last.seq, &last.hash, T0 + 61 * DAY);
    w.finish(&[cp], &key).expect("finish");
    let bytes = buf.into_inner();
    println!("write: {} bytes in {:?}", bytes.len(), started.elapsed());
    drop(events);

    let started = Instant::now();
    let report = verify_bundle(Cursor::new(&bytes), Some(&key.verifying_key())).expect("readable");
    println!(
        "verify: {} events ({} full, {} stubs), {} rows, ok = {} in {:?}",
        report.events,
        report.full,
        report.stubs,
        report.rows,
        report.ok(),
        started.elapsed()
    );
    for p in report.problems.iter().take(5) {
        println!("  {p}");
    }
}
