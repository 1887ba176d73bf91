//! An organization's audit bundle: a zip archive holding its segment of the partner's chain
//! (its own events in full, everyone else's as [`crate::Stub`]s), the signed checkpoints that anchor
//! and close the segment, the vulnerability timeline and CIS Control 7 tables derived from
//! the events, a README, and a manifest listing every file's SHA-256, signed with the
//! server's signing key.
//!
//! [`BundleWriter`] streams: events arrive one at a time from a database cursor and are
//! written straight into the archive; only the timeline's rows are kept in memory. Reading a
//! bundle back is [`crate::verify`]'s job. This module decides what an organization may see
//! ([`discloses`]); it does not choose the window, the checkpoints or the key.

use std::collections::BTreeMap;
use std::io::{Seek, Write};

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::chain::{Event, GENESIS_HASH, body_digest, hash_from_digests, org_digest};
use crate::checkpoint::{Checkpoint, CheckpointError, key_id};
use crate::timeline::{SlaPolicy, Timeline, TimelineOutput};

/// The `format` of the bundles this version writes and reads.
pub const FORMAT: &str = "ringfence-evidence-bundle/1";

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SIG: &str = "manifest.sig";
pub const EVENTS: &str = "events.jsonl";
pub const CHECKPOINTS: &str = "checkpoints.json";
pub const VULNERABILITIES_JSON: &str = "vulnerabilities.json";
pub const VULNERABILITIES_CSV: &str = "vulnerabilities.csv";
pub const CIS_JSON: &str = "cis-control-7.json";
pub const CIS_CSV: &str = "cis-control-7.csv";
pub const README: &str = "README.txt";

const RESERVED: &[&str] = &[
    MANIFEST,
    MANIFEST_SIG,
    EVENTS,
    CHECKPOINTS,
    VULNERABILITIES_JSON,
    VULNERABILITIES_CSV,
    CIS_JSON,
    CIS_CSV,
    README,
];

/// Whether an organization's bundle shows an event in full: its own events, and the
/// partner-wide decisions that apply to it (approvals, policies, rollouts). Every other event
/// appears only as a stub.
pub fn discloses(org: &str, organization_id: Option<&str>, action: &str) -> bool {
    match organization_id {
        Some(o) => o == org,
        None => ["approval.", "policy.", "rollout."].iter().any(|p| action.starts_with(p)),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: String,
    pub name: String,
}

/// The audited period, in microseconds since the Unix epoch and as RFC 3339 (UTC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_micros: i64,
    pub to_micros: i64,
    pub from: String,
    pub to: String,
}

impl Window {
    pub fn new(from_micros: i64, to_micros: i64) -> Window {
        Window {
            from_micros,
            to_micros,
            from: crate::csv::time(from_micros),
            to: crate::csv::time(to_micros),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub events: u64,
    pub full: u64,
    pub stubs: u64,
    pub checkpoints: u64,
    pub rows: u64,
}

/// `manifest.json`: what the bundle is and the SHA-256 of every other file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub msp: Party,
    pub organization: Party,
    pub window: Window,
    /// The time the SLA statuses were computed at (an unresolved finding past its due time
    /// at this moment is overdue).
    pub as_of_micros: i64,
    pub generated_at_micros: i64,
    pub generated_by: String,
    pub chain: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub counts: Counts,
    pub sla: SlaPolicy,
    /// Hex of the 32-byte Ed25519 public key that signed the manifest and the checkpoints.
    pub public_key: String,
    pub key_id: String,
    pub files: BTreeMap<String, String>,
}

/// What the caller knows about the bundle before the first event.
#[derive(Clone, Debug)]
pub struct BundleHeader {
    pub msp: Party,
    pub organization: Party,
    pub window: Window,
    pub generated_at_micros: i64,
    pub generated_by: String,
    pub chain: String,
    pub sla: SlaPolicy,
    pub as_of_micros: i64,
}

#[derive(Clone, Debug)]
pub struct BundleSummary {
    pub manifest: Manifest,
    /// SHA-256 (hex) of `manifest.json`, which names every other file's digest.
    pub manifest_sha256: String,
}

/// Why a bundle could not be read at all. Everything wrong with a readable bundle is a
/// [`crate::verify::Problem`] instead.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the bundle is not a readable zip archive ({0}): check that the file is complete and is an evidence bundle"
    )]
    Zip(#[from] zip::result::ZipError),
    #[error("reading the bundle failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the bundle has no manifest.json: it is not a ringfence evidence bundle, or it was truncated")]
    MissingManifest,
    #[error("manifest.json is unreadable ({0}): the bundle was damaged; ask its sender for a new one")]
    Manifest(String),
    #[error(
        "the bundle's format is {0:?}, but this version reads {FORMAT:?}: use a ringfence release that reads it"
    )]
    Format(String),
    #[error(
        "the manifest's public key is not 32 bytes of hex or not a valid Ed25519 key ({0}): the bundle was damaged"
    )]
    PublicKey(String),
}

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing the bundle failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the bundle's archive failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("encoding {0} failed: {1}")]
    Json(&'static str, serde_json::Error),
    #[error(
        "event {seq} belongs to chain {found}, not to the bundle's chain {expected}: push only that chain's events"
    )]
    WrongChain { seq: i64, expected: String, found: String },
    #[error(
        "event {found} was pushed where event {expected} was due: push the window's events in sequence order, without gaps"
    )]
    OutOfOrder { expected: i64, found: i64 },
    #[error(
        "event {seq} does not match its hash: the evidence log was altered; run `ringfence evidence verify` before bundling"
    )]
    Altered { seq: i64 },
    #[error(
        "event {seq} does not link to the event before it: the evidence log was altered; run `ringfence evidence verify` before bundling"
    )]
    Unlinked { seq: i64 },
    #[error("events were pushed after the tables were built: push every event before calling tables()")]
    EventsClosed,
    #[error("the window holds no events of chain {0}: choose a window with events")]
    Empty(String),
    #[error("{0} is one of the bundle's own files: give the added file another name")]
    ReservedName(String),
    #[error("{0} was added twice: add each file once")]
    DuplicateFile(String),
    #[error(
        "no checkpoint at event {seq} anchors the segment: supply the checkpoint just before the first event"
    )]
    MissingAnchor { seq: i64 },
    #[error(
        "the last checkpoint is not at the segment's last event {seq} with its hash: take a checkpoint at event {seq} and supply it"
    )]
    MissingEndCheckpoint { seq: i64 },
    #[error(
        "the checkpoint at event {seq} does not match the chain (its hash differs): supply the chain's own checkpoints"
    )]
    CheckpointMismatch { seq: i64 },
    #[error(
        "the checkpoint at event {seq} is outside the segment {first}..={last}: supply only checkpoints covering the segment"
    )]
    CheckpointOutside { seq: i64, first: i64, last: i64 },
    #[error("the checkpoint at event {seq} does not verify with the bundle's key: {error}")]
    CheckpointKey { seq: i64, error: CheckpointError },
}

/// The digests of organizations seen so far: a chain has few organizations and many events.
#[derive(Default)]
pub(crate) struct OrgDigests(std::collections::HashMap<Option<String>, String>);

impl OrgDigests {
    pub(crate) fn get(&mut self, org: Option<&str>) -> &str {
        // Looking up by an owned key would allocate per event; the map is tiny, so compare.
        if !self.0.keys().any(|k| k.as_deref() == org) {
            self.0.insert(org.map(str::to_owned), org_digest(org));
        }
        self.0.iter().find(|(k, _)| k.as_deref() == org).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "event")]
struct EventLine<'a> {
    chain: &'a str,
    seq: i64,
    at_micros: i64,
    actor: &'a str,
    action: &'a str,
    object_kind: &'a str,
    object_id: &'a str,
    organization_id: Option<&'a str>,
    payload: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "stub")]
struct StubLine<'a> {
    seq: i64,
    prev_hash: &'a str,
    org_digest: &'a str,
    body_digest: &'a str,
    hash: &'a str,
}

const FLUSH_AT: usize = 1 << 16;

/// Writes an organization's bundle while events stream in. See the module documentation.
pub struct BundleWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    header: BundleHeader,
    buf: Vec<u8>,
    events_sha: Sha256,
    /// (seq, prev_hash) of the first event.
    first: Option<(i64, String)>,
    /// (seq, hash) of the last event.
    last: Option<(i64, String)>,
    counts: Counts,
    org_digests: OrgDigests,
    timeline: Option<Timeline>,
    tables: Option<TimelineOutput>,
    added: Vec<(String, Vec<u8>)>,
}

fn small_file() -> SimpleFileOptions {
    // The fastest deflate level: the tables of a large bundle are tens of megabytes, and
    // level 6 took half a second longer on them for a few per cent of size.
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
}

impl<W: Write + Seek> BundleWriter<W> {
    pub fn new(w: W, header: BundleHeader) -> Result<Self, WriteError> {
        let mut zip = ZipWriter::new(w);
        // Stored, not deflated: with fast deflate, verifying a million events took 3.2 s
        // instead of 2.3 s (and writing 3.4 s instead of 2.8 s), for a bundle 4 times smaller.
        zip.start_file(
            EVENTS,
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true),
        )?;
        let timeline = Timeline::new(header.organization.id.clone(), header.sla.clone(), header.as_of_micros);
        Ok(BundleWriter {
            zip,
            header,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            events_sha: Sha256::new(),
            first: None,
            last: None,
            counts: Counts::default(),
            org_digests: OrgDigests::default(),
            timeline: Some(timeline),
            tables: None,
            added: Vec::new(),
        })
    }

    /// Adds the next event of the chain. Events must come in sequence order without gaps;
    /// an event that does not match its hash or link is refused, so a bundle never carries a
    /// chain that was already broken.
    pub fn push(&mut self, e: &Event) -> Result<(), WriteError> {
        let Some(timeline) = self.timeline.as_mut() else {
            return Err(WriteError::EventsClosed);
        };
        if e.chain != self.header.chain {
            return Err(WriteError::WrongChain {
                seq: e.seq,
                expected: self.header.chain.clone(),
                found: e.chain.clone(),
            });
        }
        match &self.last {
            Some((seq, hash)) => {
                if e.seq != seq.saturating_add(1) {
                    return Err(WriteError::OutOfOrder { expected: seq.saturating_add(1), found: e.seq });
                }
                if e.prev_hash != *hash {
                    return Err(WriteError::Unlinked { seq: e.seq });
                }
            }
            None if e.seq == 1 && e.prev_hash != GENESIS_HASH => {
                return Err(WriteError::Unlinked { seq: e.seq });
            }
            None => self.first = Some((e.seq, e.prev_hash.clone())),
        }
        let c = e.content();
        let body = body_digest(&c);
        let org = self.org_digests.get(c.organization_id);
        if hash_from_digests(&e.prev_hash, &e.chain, e.seq, org, &body) != e.hash {
            return Err(WriteError::Altered { seq: e.seq });
        }
        let line = if discloses(&self.header.organization.id, c.organization_id, c.action) {
            self.counts.full += 1;
            timeline.push(e);
            serde_json::to_writer(
                &mut self.buf,
                &EventLine {
                    chain: &e.chain,
                    seq: e.seq,
                    at_micros: e.at_micros,
                    actor: &e.actor,
                    action: &e.action,
                    object_kind: &e.object_kind,
                    object_id: &e.object_id,
                    organization_id: e.organization_id.as_deref(),
                    payload: &e.payload,
                    prev_hash: &e.prev_hash,
                    hash: &e.hash,
                },
            )
        } else {
            self.counts.stubs += 1;
            serde_json::to_writer(
                &mut self.buf,
                &StubLine {
                    seq: e.seq,
                    prev_hash: &e.prev_hash,
                    org_digest: org,
                    body_digest: &body,
                    hash: &e.hash,
                },
            )
        };
        line.map_err(|err| WriteError::Json(EVENTS, err))?;
        self.buf.push(b'\n');
        self.counts.events += 1;
        self.last = Some((e.seq, e.hash.clone()));
        if self.buf.len() >= FLUSH_AT {
            self.flush_events()?;
        }
        Ok(())
    }

    fn flush_events(&mut self) -> Result<(), WriteError> {
        self.events_sha.update(&self.buf);
        self.zip.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Ends the events and builds the tables, so the caller can render summaries from them
    /// (and [`add_file`](Self::add_file) them) before [`finish`](Self::finish).
    pub fn tables(&mut self) -> Result<&TimelineOutput, WriteError> {
        if let Some(t) = self.timeline.take() {
            self.tables = Some(t.finish());
        }
        // Exactly one of `timeline` and `tables` is set until `finish`.
        self.tables.as_ref().ok_or(WriteError::EventsClosed)
    }

    /// Adds a file of the caller's (e.g. `summary.html`); it is listed and digested in the
    /// manifest like the bundle's own files.
    pub fn add_file(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), WriteError> {
        if RESERVED.contains(&name) {
            return Err(WriteError::ReservedName(name.to_owned()));
        }
        if self.added.iter().any(|(n, _)| n == name) {
            return Err(WriteError::DuplicateFile(name.to_owned()));
        }
        self.added.push((name.to_owned(), bytes));
        Ok(())
    }

    /// Checks the checkpoints against the segment, writes the tables, checkpoints, README and
    /// the signed manifest, and closes the archive.
    pub fn finish(
        mut self,
        checkpoints: &[Checkpoint],
        key: &SigningKey,
    ) -> Result<BundleSummary, WriteError> {
        let (Some((first_seq, first_prev)), Some((last_seq, last_hash))) =
            (self.first.clone(), self.last.clone())
        else {
            return Err(WriteError::Empty(self.header.chain.clone()));
        };
        let public = key.verifying_key();
        let mut checkpoints = checkpoints.to_vec();
        checkpoints.sort_by_key(|c| c.seq);
        for c in &checkpoints {
            if c.seq < first_seq.saturating_sub(1) || c.seq > last_seq || c.chain != self.header.chain {
                return Err(WriteError::CheckpointOutside { seq: c.seq, first: first_seq, last: last_seq });
            }
            c.verify(&public).map_err(|error| WriteError::CheckpointKey { seq: c.seq, error })?;
            let expected = if c.seq == first_seq.saturating_sub(1) {
                Some(&first_prev)
            } else if c.seq == last_seq {
                Some(&last_hash)
            } else {
                None
            };
            if expected.is_some_and(|h| *h != c.hash) {
                return Err(WriteError::CheckpointMismatch { seq: c.seq });
            }
        }
        if first_seq > 1 && !checkpoints.iter().any(|c| c.seq == first_seq.saturating_sub(1)) {
            return Err(WriteError::MissingAnchor { seq: first_seq.saturating_sub(1) });
        }
        if checkpoints.last().is_none_or(|c| c.seq != last_seq) {
            return Err(WriteError::MissingEndCheckpoint { seq: last_seq });
        }

        self.flush_events()?;
        let mut files = BTreeMap::new();
        files.insert(EVENTS.to_owned(), hex::encode(std::mem::take(&mut self.events_sha).finalize()));
        let tables = match self.timeline.take() {
            Some(t) => t.finish(),
            None => self.tables.take().ok_or(WriteError::EventsClosed)?,
        };
        let mut own: Vec<(&str, Vec<u8>)> = vec![
            (VULNERABILITIES_JSON, pretty(VULNERABILITIES_JSON, &tables.rows)?),
            (VULNERABILITIES_CSV, tables.vulnerabilities_csv().into_bytes()),
            (CIS_JSON, pretty(CIS_JSON, &tables.cis)?),
            (CIS_CSV, tables.cis_csv().into_bytes()),
            (CHECKPOINTS, pretty(CHECKPOINTS, &checkpoints)?),
        ];
        own.push((README, readme(&self.header, &key_id(&public)).into_bytes()));
        let added = std::mem::take(&mut self.added);
        for (name, bytes) in
            own.iter().map(|(n, b)| (*n, b)).chain(added.iter().map(|(n, b)| (n.as_str(), b)))
        {
            files.insert(name.to_owned(), hex::encode(Sha256::digest(bytes)));
            self.zip.start_file(name, small_file())?;
            self.zip.write_all(bytes)?;
        }

        self.counts.checkpoints = checkpoints.len() as u64;
        self.counts.rows = tables.rows.len() as u64;
        let h = &self.header;
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            msp: h.msp.clone(),
            organization: h.organization.clone(),
            window: h.window.clone(),
            as_of_micros: h.as_of_micros,
            generated_at_micros: h.generated_at_micros,
            generated_by: h.generated_by.clone(),
            chain: h.chain.clone(),
            first_seq,
            last_seq,
            counts: self.counts.clone(),
            sla: h.sla.clone(),
            public_key: hex::encode(public.as_bytes()),
            key_id: key_id(&public),
            files,
        };
        let bytes = pretty(MANIFEST, &manifest)?;
        let signature = hex::encode(key.sign(&bytes).to_bytes());
        self.zip.start_file(MANIFEST, small_file())?;
        self.zip.write_all(&bytes)?;
        self.zip.start_file(MANIFEST_SIG, small_file())?;
        self.zip.write_all(signature.as_bytes())?;
        self.zip.finish()?;
        Ok(BundleSummary { manifest_sha256: hex::encode(Sha256::digest(&bytes)), manifest })
    }
}

fn pretty<T: Serialize + ?Sized>(name: &'static str, value: &T) -> Result<Vec<u8>, WriteError> {
    serde_json::to_vec_pretty(value).map_err(|e| WriteError::Json(name, e))
}

fn readme(h: &BundleHeader, key_id: &str) -> String {
    format!(
        "ringfence evidence bundle
=========================

Organization: {org} ({org_id})
Managed by:   {msp} ({msp_id})
Window:       {from} to {to}
Chain:        {chain}
Signing key:  {key_id}

How to verify
-------------
    ringfence evidence verify --bundle FILE --public-key HEX

Verification needs no network and no access to ringfence. It checks the zip container
(no duplicate, hidden or appended entries, no comment), the manifest's signature, every
file's SHA-256, every event's hash and link, the signed checkpoints that anchor and close
the segment, and recomputes the tables below from the events. HEX is the key your provider
gave you out of band (their server prints it with `ringfence evidence key`): the bundle
carries whatever key signed it, so only the key you got elsewhere says who did. Exit codes:
0 intact and signed by HEX, 1 tampered (each problem named), 2 unreadable, 7 intact but
no --public-key given.

Files
-----
manifest.json         what this bundle is, its window, and the SHA-256 of every other file
manifest.sig          hex Ed25519 signature over the exact bytes of manifest.json
events.jsonl          the chain segment, one event per line in sequence order: this
                      organization's events (and the provider's approvals, policies and
                      rollouts) in full; other organizations' events as stubs that keep the
                      chain verifiable without revealing them
checkpoints.json      signed statements of the chain's hash at given events
vulnerabilities.json  one row per vulnerability and device: detection, approval,
vulnerabilities.csv   deployment, resolution and remediation SLA outcome
cis-control-7.json    CIS Controls v8 Control 7 safeguards and the events evidencing each
cis-control-7.csv
README.txt            this file

Any other file was added by the provider (e.g. a printable summary); it is listed and
digested in the manifest like the others.
",
        org = h.organization.name,
        org_id = h.organization.id,
        msp = h.msp.name,
        msp_id = h.msp.id,
        from = h.window.from,
        to = h.window.to,
        chain = h.chain,
    )
}
