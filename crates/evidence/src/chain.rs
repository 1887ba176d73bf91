//! The evidence log's hash chain: how an event's hash is computed from its stored fields and
//! its predecessor's hash, and how a chain read back from anywhere is verified.
//!
//! The hash covers the stored bytes of every field (the payload is hashed as the exact JSON
//! text that was stored, never a re-serialization), each prefixed with its length so that no
//! two different events can produce the same input. The organization and the body are hashed
//! first into two digests, and the event hash covers those digests: a [`Stub`] carrying only
//! the digests still verifies, which lets one organization's bundle include the chain
//! positions of other organizations' events without their content. This module does no I/O:
//! callers feed it events in sequence order.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event as it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The chain the event belongs to (one chain per partner).
    pub chain: String,
    /// Position in the chain, starting at 1, without gaps.
    pub seq: i64,
    /// When it happened, in microseconds since the Unix epoch (UTC).
    pub at_micros: i64,
    /// Who did it: `user:…`, `token:…`, `cli:…` or `system:…`.
    pub actor: String,
    /// What was done, e.g. `organization.create`.
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    /// The organization the object belongs to, when it belongs to one.
    pub organization_id: Option<String>,
    /// JSON text with the details (before/after), hashed exactly as stored.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hashed fields of an event, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct EventContent<'a> {
    pub chain: &'a str,
    pub seq: i64,
    pub at_micros: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_kind: &'a str,
    pub object_id: &'a str,
    pub organization_id: Option<&'a str>,
    pub payload: &'a str,
}

/// Lowercase hex of a digest. `hex::encode` goes through a char iterator, which showed up as
/// a sixth of bundle verification time.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Feeds `bytes` to `h` preceded by their length, so that no two different field lists
/// produce the same input.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The digest that stands for an event's organization in its hash: an organization's bundle
/// shows it for other organizations' events without naming them.
pub fn org_digest(org: Option<&str>) -> String {
    let mut h = Sha256::new();
    field(&mut h, b"ringfence-org");
    match org {
        Some(o) => {
            field(&mut h, b"1");
            field(&mut h, o.as_bytes());
        }
        None => field(&mut h, b"0"),
    }
    to_hex(&h.finalize())
}

/// The digest of an event's body (everything but its chain position and organization).
pub fn body_digest(c: &EventContent<'_>) -> String {
    let mut h = Sha256::new();
    field(&mut h, &c.at_micros.to_be_bytes());
    field(&mut h, c.actor.as_bytes());
    field(&mut h, c.action.as_bytes());
    field(&mut h, c.object_kind.as_bytes());
    field(&mut h, c.object_id.as_bytes());
    field(&mut h, c.payload.as_bytes());
    to_hex(&h.finalize())
}

/// The hash of an event from its position and the two digests of its content; an event and
/// its [`Stub`] hash the same way.
pub fn hash_from_digests(
    prev_hash: &str,
    chain: &str,
    seq: i64,
    org_digest: &str,
    body_digest: &str,
) -> String {
    let mut h = Sha256::new();
    field(&mut h, b"ringfence-evidence-v2");
    field(&mut h, prev_hash.as_bytes());
    field(&mut h, chain.as_bytes());
    field(&mut h, &seq.to_be_bytes());
    field(&mut h, org_digest.as_bytes());
    field(&mut h, body_digest.as_bytes());
    to_hex(&h.finalize())
}

/// The hash of an event whose predecessor has hash `prev_hash`.
pub fn event_hash(prev_hash: &str, c: &EventContent<'_>) -> String {
    hash_from_digests(prev_hash, c.chain, c.seq, &org_digest(c.organization_id), &body_digest(c))
}

/// An event reduced to what its hash needs: it keeps its place in the chain while hiding
/// its organization and content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stub {
    pub seq: i64,
    pub prev_hash: String,
    pub org_digest: String,
    pub body_digest: String,
    pub hash: String,
}

impl Stub {
    pub fn of(e: &Event) -> Stub {
        let c = e.content();
        Stub {
            seq: e.seq,
            prev_hash: e.prev_hash.clone(),
            org_digest: org_digest(c.organization_id),
            body_digest: body_digest(&c),
            hash: e.hash.clone(),
        }
    }

    /// The hash the stub's event should carry, recomputed from the digests.
    pub fn recompute_hash(&self, chain: &str) -> String {
        hash_from_digests(&self.prev_hash, chain, self.seq, &self.org_digest, &self.body_digest)
    }
}

impl Event {
    pub fn content(&self) -> EventContent<'_> {
        EventContent {
            chain: &self.chain,
            seq: self.seq,
            at_micros: self.at_micros,
            actor: &self.actor,
            action: &self.action,
            object_kind: &self.object_kind,
            object_id: &self.object_id,
            organization_id: self.organization_id.as_deref(),
            payload: &self.payload,
        }
    }

    /// The hash this event should carry, recomputed from its fields.
    pub fn recompute_hash(&self) -> String {
        event_hash(&self.prev_hash, &self.content())
    }
}

/// What is wrong with a chain, naming the first event where it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// The event's fields do not produce its stored hash: it was altered.
    Altered { chain: String, seq: i64 },
    /// The event does not point at the hash of the event before it: an event before it was
    /// altered, removed or inserted.
    Unlinked { chain: String, seq: i64 },
    /// Sequence numbers skip or repeat: an event was removed or inserted.
    Sequence { chain: String, expected: i64, found: i64 },
    /// The chain ends before the recorded head: events at the end were removed.
    Truncated { chain: String, last_seq: i64, head_seq: i64 },
    /// The chain's last event is not the recorded head.
    HeadMismatch { chain: String, seq: i64 },
    /// Events exist for a chain whose head record is gone.
    MissingHead { chain: String },
    /// A stored checkpoint's signature does not verify against the server's key: it was
    /// forged or altered.
    CheckpointForged { chain: String, seq: i64 },
    /// A signed checkpoint's hash is not the hash of the event it names: the event was
    /// rewritten after the server signed it.
    CheckpointMismatch { chain: String, seq: i64 },
    /// The server once signed event `seq`, but the chain now ends before it: events after
    /// it were cut off and the head moved back.
    CheckpointBeyondEnd { chain: String, seq: i64, last_seq: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Altered { chain, seq } => {
                write!(f, "chain {chain}: event {seq} was altered (its content does not match its hash)")
            }
            ChainBreak::Unlinked { chain, seq } => write!(
                f,
                "chain {chain}: event {seq} does not link to the event before it (an earlier event was altered, removed or inserted)"
            ),
            ChainBreak::Sequence { chain, expected, found } => write!(
                f,
                "chain {chain}: expected event {expected} but found {found} (an event was removed or inserted)"
            ),
            ChainBreak::Truncated { chain, last_seq, head_seq } => write!(
                f,
                "chain {chain}: ends at event {last_seq} but its head records {head_seq} (events at the end were removed)"
            ),
            ChainBreak::MissingHead { chain } => {
                write!(f, "chain {chain}: has events but no recorded head (the head record was removed)")
            }
            ChainBreak::CheckpointForged { chain, seq } => write!(
                f,
                "chain {chain}: the checkpoint at event {seq} does not verify against the server's key (it was forged or altered)"
            ),
            ChainBreak::CheckpointMismatch { chain, seq } => write!(
                f,
                "chain {chain}: event {seq} is not the event the server signed in its checkpoint (it was rewritten afterwards)"
            ),
            ChainBreak::CheckpointBeyondEnd { chain, seq, last_seq } => write!(
                f,
                "chain {chain}: the server signed event {seq}, but the chain now ends at event {last_seq} (events were cut off and the head moved back)"
            ),
            ChainBreak::HeadMismatch { chain, seq } => write!(
                f,
                "chain {chain}: event {seq} is not the recorded chain head (it was altered or replaced)"
            ),
        }
    }
}

impl std::error::Error for ChainBreak {}

/// Verifies one chain event by event, so a chain of any length streams through it.
#[derive(Debug)]
pub struct ChainVerifier {
    chain: String,
    last_seq: i64,
    last_hash: String,
}

impl ChainVerifier {
    pub fn new(chain: impl Into<String>) -> Self {
        Self { chain: chain.into(), last_seq: 0, last_hash: GENESIS_HASH.to_owned() }
    }

    /// Checks the next event of the chain.
    pub fn push(&mut self, e: &Event) -> Result<(), ChainBreak> {
        let chain = self.chain.clone();
        if e.seq != self.last_seq + 1 {
            return Err(ChainBreak::Sequence { chain, expected: self.last_seq + 1, found: e.seq });
        }
        if e.recompute_hash() != e.hash {
            return Err(ChainBreak::Altered { chain, seq: e.seq });
        }
        if e.prev_hash != self.last_hash {
            return Err(ChainBreak::Unlinked { chain, seq: e.seq });
        }
        self.last_seq = e.seq;
        self.last_hash.clone_from(&e.hash);
        Ok(())
    }

    /// Ends verification against the chain head recorded separately (`seq`, `hash`).
    /// Returns the number of events verified.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        if self.last_seq < head_seq {
            return Err(ChainBreak::Truncated { chain: self.chain, last_seq: self.last_seq, head_seq });
        }
        if self.last_seq > head_seq {
            return Err(ChainBreak::Sequence { chain: self.chain, expected: head_seq, found: self.last_seq });
        }
        if self.last_hash != head_hash {
            return Err(ChainBreak::HeadMismatch { chain: self.chain, seq: self.last_seq });
        }
        Ok(self.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = Event {
                    chain: "p1".into(),
                    seq,
                    at_micros: 1_700_000_000_000_000 + seq,
                    actor: "user:alice".into(),
                    action: "site.create".into(),
                    object_kind: "site".into(),
                    object_id: format!("s{seq}"),
                    organization_id: Some("o1".into()),
                    payload: format!(r#"{{"after":{{"name":"site {seq}"}}}}"#),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.recompute_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn verify(events: &[Event], head: (i64, &str)) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new("p1");
        for e in events {
            v.push(e)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let head = c[4].hash.clone();
        assert_eq!(verify(&c, (5, &head)), Ok(5));
        assert_eq!(verify(&[], (0, GENESIS_HASH)), Ok(0));
    }

    #[test]
    fn an_altered_payload_is_named() {
        let mut c = chain(5);
        let head = c[4].hash.clone();
        c[2].payload = r#"{"after":{"name":"forged"}}"#.into();
        assert_eq!(verify(&c, (5, &head)), Err(ChainBreak::Altered { chain: "p1".into(), seq: 3 }));
    }

    #[test]
    fn a_rehashed_alteration_breaks_the_next_link() {
        let mut c = chain(5);
        let head = c[4].hash.clone();
        c[2].actor = "user:mallory".into();
        c[2].hash = c[2].recompute_hash();
        assert_eq!(verify(&c, (5, &head)), Err(ChainBreak::Unlinked { chain: "p1".into(), seq: 4 }));
    }

    #[test]
    fn removed_and_inserted_events_are_named() {
        let c = chain(5);
        let head = c[4].hash.clone();
        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(
            verify(&removed, (5, &head)),
            Err(ChainBreak::Sequence { chain: "p1".into(), expected: 2, found: 3 })
        );
        let mut truncated = c.clone();
        truncated.pop();
        assert_eq!(
            verify(&truncated, (5, &head)),
            Err(ChainBreak::Truncated { chain: "p1".into(), last_seq: 4, head_seq: 5 })
        );
        let mut inserted = c.clone();
        let mut extra = c[1].clone();
        extra.seq = 2;
        extra.object_id = "inserted".into();
        extra.hash = extra.recompute_hash();
        inserted.insert(2, extra);
        assert!(verify(&inserted, (5, &head)).is_err());
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = chain(1).remove(0);
        let mutations: [fn(&mut Event); 9] = [
            |e| e.chain.push('x'),
            |e| e.at_micros += 1,
            |e| e.actor.push('x'),
            |e| e.action.push('x'),
            |e| e.object_kind.push('x'),
            |e| e.object_id.push('x'),
            |e| e.organization_id = None,
            |e| e.payload.push(' '),
            |e| e.prev_hash = "1".repeat(64),
        ];
        for m in mutations {
            let mut e = base.clone();
            m(&mut e);
            assert_ne!(e.recompute_hash(), base.hash);
        }
    }

    #[test]
    fn a_stub_hashes_like_its_event() {
        for e in chain(3) {
            let stub = Stub::of(&e);
            assert_eq!(stub.recompute_hash("p1"), e.hash);
            assert_eq!(stub.org_digest, org_digest(Some("o1")));
            assert_ne!(stub.recompute_hash("p2"), e.hash);
        }
    }

    #[test]
    fn organization_digests_tell_organizations_apart() {
        let cases = [(Some("o1"), Some("o2")), (Some("o1"), None), (Some(""), None), (Some("0"), None)];
        for (a, b) in cases {
            assert_ne!(org_digest(a), org_digest(b), "{a:?} vs {b:?}");
        }
        assert_eq!(org_digest(Some("o1")), org_digest(Some("o1")));
    }
}
