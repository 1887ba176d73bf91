//! The chain verifier on arbitrary event sequences: it never panics, and it accepts a chain
//! only if every event's hash and link are right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringfence_evidence::{ChainVerifier, Event, GENESIS_HASH};

fuzz_target!(|data: &[u8]| {
    let mut prev = GENESIS_HASH.to_owned();
    let mut events = Vec::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let mut e = Event {
            chain: "c".into(),
            seq: i as i64 + 1,
            at_micros: chunk.first().copied().unwrap_or(0) as i64,
            actor: String::from_utf8_lossy(chunk).into_owned(),
            action: "a".into(),
            object_kind: "k".into(),
            object_id: "o".into(),
            organization_id: None,
            payload: "{}".into(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        e.hash = e.recompute_hash();
        // Corrupt some events, as decided by the input, and expect verification to notice.
        if chunk.len() > 1 && chunk[1] == 0xff {
            e.payload.push('x');
        }
        prev = e.hash.clone();
        events.push(e);
    }
    let corrupted = events.iter().any(|e| e.recompute_hash() != e.hash);
    let mut v = ChainVerifier::new("c");
    let mut ok = true;
    for e in &events {
        if v.push(e).is_err() {
            ok = false;
            break;
        }
    }
    let result = if ok { v.finish(events.len() as i64, &prev).is_ok() } else { false };
    assert_eq!(result, !corrupted);
});
