//! Offline verification of an organization's bundle: everything [`crate::bundle`] writes is
//! checked against the manifest, the signatures and the events themselves, and the tables
//! are recomputed from the events and compared.
//!
//! Only an archive or manifest that cannot be read at all is an error ([`BundleError`]);
//! everything else found wrong is a [`Problem`] in the [`VerifyReport`], so one run names
//! all of them. `events.jsonl` is streamed line by line: memory follows the tables, not the
//! number of events.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use crate::bundle::{
    BundleError, CHECKPOINTS, CIS_CSV, CIS_JSON, EVENTS, FORMAT, MANIFEST, MANIFEST_SIG, Manifest,
    OrgDigests, Party, VULNERABILITIES_CSV, VULNERABILITIES_JSON, Window, discloses,
};
use crate::chain::{EventContent, GENESIS_HASH, body_digest, hash_from_digests, org_digest};
use crate::checkpoint::{Checkpoint, CheckpointError, key_id};
use crate::timeline::{Safeguard, Timeline, TimelineOutput, VulnRow};

/// At most this many problems are listed; the rest are only counted.
const MAX_PROBLEMS: usize = 1000;

/// One thing found wrong with a bundle, naming the file and, where there is one, the event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("manifest.sig: {reason}")]
    ManifestSignature { reason: String },
    #[error("the zip container: {reason}")]
    Container { reason: String },
    #[error("manifest.json: signed by key {found}, not by the expected key {pinned}")]
    PinnedKeyMismatch { pinned: String, found: String },
    #[error("manifest.json: key_id {stated} does not belong to its public key (whose id is {actual})")]
    KeyIdMismatch { stated: String, actual: String },
    #[error("{name}: listed in the manifest but missing from the bundle")]
    MissingFile { name: String },
    #[error("{name}: its SHA-256 differs from the manifest's (the file was altered)")]
    FileDigest { name: String },
    #[error("{name}: in the bundle but not listed in the manifest (it was added afterwards)")]
    UnlistedFile { name: String },
    #[error("{name}: cannot be read from the archive ({reason})")]
    FileUnreadable { name: String, reason: String },
    #[error("events.jsonl line {line}: not an event or stub ({reason})")]
    BadLine { line: u64, reason: String },
    #[error(
        "events.jsonl line {line}: expected event {expected} but found {found} (an event was removed, inserted or moved)"
    )]
    Sequence { line: u64, expected: i64, found: i64 },
    #[error("events.jsonl line {line}: event {seq} belongs to chain {chain}, not to the bundle's chain")]
    WrongChain { line: u64, seq: i64, chain: String },
    #[error("events.jsonl line {line}: event {seq} was altered (its content does not match its hash)")]
    Altered { line: u64, seq: i64 },
    #[error("events.jsonl line {line}: stub {seq} was altered (its digests do not match its hash)")]
    StubAltered { line: u64, seq: i64 },
    #[error(
        "events.jsonl line {line}: event {seq} does not link to the event before it (an event was altered, removed or inserted)"
    )]
    Unlinked { line: u64, seq: i64 },
    #[error(
        "events.jsonl line {line}: event {seq}, the first of the segment, does not link to the anchor checkpoint's hash"
    )]
    AnchorMismatch { line: u64, seq: i64 },
    #[error("events.jsonl line {line}: event {seq} is shown in full but belongs to {}, not to the audited organization", organization.as_deref().unwrap_or("no organization"))]
    ForeignEvent { line: u64, seq: i64, organization: Option<String> },
    #[error("events.jsonl line {line}: stub {seq} hides an event of the audited organization")]
    HiddenOwnEvent { line: u64, seq: i64 },
    #[error("events.jsonl: the segment should end at event {expected} but ends at {}", found.map_or_else(|| "no event".to_owned(), |s| s.to_string()))]
    SegmentEnd { expected: i64, found: Option<i64> },
    #[error("checkpoints.json: unreadable ({reason})")]
    CheckpointsUnreadable { reason: String },
    #[error("checkpoints.json: the checkpoint at event {seq} does not verify: {error}")]
    CheckpointSignature { seq: i64, error: CheckpointError },
    #[error("checkpoints.json: the checkpoint at event {seq} is for chain {chain}, not the bundle's chain")]
    CheckpointChain { seq: i64, chain: String },
    #[error("checkpoints.json: the checkpoint at event {seq} does not match that event's hash")]
    CheckpointMismatch { seq: i64 },
    #[error("checkpoints.json: the checkpoint at event {seq} is outside the segment")]
    CheckpointOutside { seq: i64 },
    #[error("checkpoints.json: no checkpoint at event {seq} anchors the segment's start")]
    MissingAnchor { seq: i64 },
    #[error(
        "checkpoints.json: no checkpoint at event {seq} covers the segment's end (events at the end may have been removed)"
    )]
    MissingEndCheckpoint { seq: i64 },
    #[error("manifest.json: counts {what} {stated}, the bundle holds {found}")]
    CountMismatch { what: &'static str, stated: u64, found: u64 },
    #[error("{file}: unreadable ({reason})")]
    TableUnreadable { file: &'static str, reason: String },
    #[error("{file}: {detail}")]
    RowDiffers { file: &'static str, detail: String },
    #[error("{file}: safeguard {id}: {detail}")]
    SafeguardDiffers { file: &'static str, id: String, detail: String },
    #[error("{file} line {line}: differs from the table recomputed from the events")]
    CsvDiffers { file: &'static str, line: usize },
}

/// What verification found.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub events: u64,
    pub full: u64,
    pub stubs: u64,
    /// Checkpoints whose signature verified and whose hash matched the events.
    pub checkpoints_checked: u64,
    pub rows: u64,
    pub key_id: String,
    /// Whether the signing key was given by the reader (`--public-key`): without it, an
    /// intact bundle proves only that it was not changed since someone signed it.
    pub pinned: bool,
    pub organization: Party,
    pub window: Window,
    /// The first problems found, in the order found.
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub problems_not_listed: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.problems_not_listed == 0
    }

    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.problems_not_listed += 1;
        }
    }
}

/// One line of `events.jsonl`, either kind. Unknown fields are refused, so that no edit of a
/// line goes unnoticed by turning a field into an ignored one. Strings borrow from the line
/// when they hold no escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    seq: i64,
    #[serde(borrow)]
    prev_hash: Text<'a>,
    #[serde(borrow)]
    hash: Text<'a>,
    #[serde(borrow)]
    chain: Option<Text<'a>>,
    at_micros: Option<i64>,
    #[serde(borrow)]
    actor: Option<Text<'a>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(borrow)]
    object_kind: Option<Text<'a>>,
    #[serde(borrow)]
    object_id: Option<Text<'a>>,
    #[serde(borrow)]
    organization_id: Option<Text<'a>>,
    #[serde(borrow)]
    payload: Option<Text<'a>>,
    #[serde(borrow)]
    org_digest: Option<Text<'a>>,
    #[serde(borrow)]
    body_digest: Option<Text<'a>>,
}

/// A JSON string, borrowed from the input when it can be (serde's own `Cow` support does not
/// borrow inside an `Option`).
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit(std::marker::PhantomData))
    }
}

fn read_all<R: Read + Seek>(zip: &mut ZipArchive<R>, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
    let mut file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Verifies a bundle. `pinned_key` is the signing key of the server that made the bundle, as
/// the reader knows it from elsewhere; without it, the bundle is checked against the key it carries.
pub fn verify_bundle<R: Read + Seek>(
    mut r: R,
    pinned_key: Option<&VerifyingKey>,
) -> Result<VerifyReport, BundleError> {
    let container = crate::container::container_problems(&mut r)?;
    r.seek(std::io::SeekFrom::Start(0))?;
    let mut zip = ZipArchive::new(r)?;
    let manifest_bytes = read_all(&mut zip, MANIFEST)?.ok_or(BundleError::MissingManifest)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(BundleError::Format(manifest.format));
    }
    let key_bytes: [u8; 32] = hex::decode(&manifest.public_key)
        .map_err(|e| BundleError::PublicKey(e.to_string()))?
        .try_into()
        .map_err(|b: Vec<u8>| BundleError::PublicKey(format!("{} bytes", b.len())))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|e| BundleError::PublicKey(e.to_string()))?;

    let mut report = VerifyReport {
        events: 0,
        full: 0,
        stubs: 0,
        checkpoints_checked: 0,
        rows: 0,
        key_id: key_id(&key),
        pinned: pinned_key.is_some(),
        organization: manifest.organization.clone(),
        window: manifest.window.clone(),
        problems: Vec::new(),
        problems_not_listed: 0,
    };
    for reason in container {
        report.problem(Problem::Container { reason });
    }

    // The manifest and its signature.
    match read_all(&mut zip, MANIFEST_SIG) {
        Ok(Some(sig)) => {
            // Exactly the 128 hex digits the server writes: nothing around them.
            let exact =
                sig.len() == 128 && sig.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
            let reason = match hex::decode(&sig).map(<[u8; 64]>::try_from) {
                _ if !exact => Some("not exactly 128 lowercase hex digits (characters were added around the signature)".to_owned()),
                Ok(Ok(bytes)) => key
                    .verify(&manifest_bytes, &Signature::from_bytes(&bytes))
                    .err()
                    .map(|_| "the signature does not match manifest.json (the manifest was altered or re-signed by another key)".to_owned()),
                _ => Some("not a 64-byte hex signature".to_owned()),
            };
            if let Some(reason) = reason {
                report.problem(Problem::ManifestSignature { reason });
            }
        }
        Ok(None) => {
            report.problem(Problem::ManifestSignature { reason: "missing: the manifest is unsigned".into() })
        }
        Err(e) => report.problem(Problem::ManifestSignature { reason: format!("unreadable ({e})") }),
    }
    if let Some(pinned) = pinned_key
        && pinned != &key
    {
        report.problem(Problem::PinnedKeyMismatch { pinned: key_id(pinned), found: key_id(&key) });
    }
    if manifest.key_id != key_id(&key) {
        report.problem(Problem::KeyIdMismatch { stated: manifest.key_id.clone(), actual: key_id(&key) });
    }

    // Files: every file listed, no file unlisted, digests match. events.jsonl is digested
    // while it streams below.
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    for name in &names {
        if name != MANIFEST && name != MANIFEST_SIG && !manifest.files.contains_key(name) {
            report.problem(Problem::UnlistedFile { name: name.clone() });
        }
    }
    let mut contents: HashMap<&str, Vec<u8>> = HashMap::new();
    for (name, digest) in &manifest.files {
        if !names.contains(name) {
            report.problem(Problem::MissingFile { name: name.clone() });
            continue;
        }
        if name == EVENTS {
            continue;
        }
        match read_all(&mut zip, name) {
            Ok(Some(bytes)) => {
                if hex::encode(Sha256::digest(&bytes)) != *digest {
                    report.problem(Problem::FileDigest { name: name.clone() });
                }
                contents.insert(name.as_str(), bytes);
            }
            Ok(None) => report.problem(Problem::MissingFile { name: name.clone() }),
            Err(e) => report.problem(Problem::FileUnreadable { name: name.clone(), reason: e.to_string() }),
        }
    }

    // Checkpoints: signed by the manifest's key, within the segment.
    let first = manifest.first_seq;
    let last = manifest.last_seq;
    let mut checkpoints: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut signed_ok: BTreeMap<i64, u64> = BTreeMap::new();
    let mut checkpoint_count = 0u64;
    if let Some(bytes) = contents.get(CHECKPOINTS) {
        match serde_json::from_slice::<Vec<Checkpoint>>(bytes) {
            Ok(list) => {
                checkpoint_count = list.len() as u64;
                for c in list {
                    if c.chain != manifest.chain {
                        report.problem(Problem::CheckpointChain { seq: c.seq, chain: c.chain });
                        continue;
                    }
                    if c.seq < first.saturating_sub(1) || c.seq > last {
                        report.problem(Problem::CheckpointOutside { seq: c.seq });
                        continue;
                    }
                    match c.verify(&key) {
                        Ok(()) => *signed_ok.entry(c.seq).or_default() += 1,
                        Err(error) => report.problem(Problem::CheckpointSignature { seq: c.seq, error }),
                    }
                    checkpoints.entry(c.seq).or_default().push(c.hash);
                }
            }
            Err(e) => report.problem(Problem::CheckpointsUnreadable { reason: e.to_string() }),
        }
    }
    if first > 1 && !checkpoints.contains_key(&(first.saturating_sub(1))) {
        report.problem(Problem::MissingAnchor { seq: first.saturating_sub(1) });
    }
    if !checkpoints.contains_key(&last) {
        report.problem(Problem::MissingEndCheckpoint { seq: last });
    }
    let mut matched: BTreeMap<i64, bool> = BTreeMap::new();
    let mut check_checkpoint = |report: &mut VerifyReport, seq: i64, hash: &str| {
        if let Some(hashes) = checkpoints.get(&seq) {
            let ok = hashes.iter().all(|h| h == hash);
            if !ok {
                report.problem(Problem::CheckpointMismatch { seq });
            }
            matched.insert(seq, ok);
        }
    };

    // Events.
    let mut timeline =
        Timeline::new(manifest.organization.id.clone(), manifest.sla.clone(), manifest.as_of_micros);
    if names.iter().any(|n| n == EVENTS) {
        let anchor = if first == 1 { Some(GENESIS_HASH.to_owned()) } else { None };
        match zip.by_name(EVENTS) {
            Ok(file) => {
                let digest =
                    stream_events(file, &manifest, anchor, &mut report, &mut timeline, &mut check_checkpoint);
                if let Some(expected) = manifest.files.get(EVENTS)
                    && digest != *expected
                {
                    report.problem(Problem::FileDigest { name: EVENTS.to_owned() });
                }
            }
            Err(e) => {
                report.problem(Problem::FileUnreadable { name: EVENTS.to_owned(), reason: e.to_string() })
            }
        }
    }
    report.checkpoints_checked =
        matched.iter().filter(|(_, ok)| **ok).map(|(seq, _)| signed_ok.get(seq).copied().unwrap_or(0)).sum();

    // Tables, recomputed.
    let tables = timeline.finish();
    report.rows = tables.rows.len() as u64;
    compare_tables(&tables, &contents, &mut report);

    let c = &manifest.counts;
    for (what, stated, found) in [
        ("events", c.events, report.events),
        ("full events", c.full, report.full),
        ("stubs", c.stubs, report.stubs),
        ("checkpoints", c.checkpoints, checkpoint_count),
        ("rows", c.rows, report.rows),
    ] {
        if stated != found {
            report.problem(Problem::CountMismatch { what, stated, found });
        }
    }
    Ok(report)
}

/// Streams `events.jsonl`, checking each line and feeding disclosed events to the timeline.
/// Returns the SHA-256 of the file's bytes.
fn stream_events(
    file: impl Read,
    manifest: &Manifest,
    genesis_anchor: Option<String>,
    report: &mut VerifyReport,
    timeline: &mut Timeline,
    check_checkpoint: &mut impl FnMut(&mut VerifyReport, i64, &str),
) -> String {
    let org = manifest.organization.id.as_str();
    let own_digest = org_digest(Some(org));
    let mut org_digests = OrgDigests::default();
    let mut sha = Sha256::new();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::with_capacity(4096);
    let mut expected = manifest.first_seq;
    let mut prev: Option<String> = None;
    let mut last_seen: Option<i64> = None;
    let mut line_no = 0u64;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                report.problem(Problem::FileUnreadable { name: EVENTS.to_owned(), reason: e.to_string() });
                break;
            }
        }
        sha.update(&buf);
        line_no += 1;
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = match serde_json::from_slice::<Line>(text).map_err(|e| e.to_string()).and_then(check_shape)
        {
            Ok(line) => line,
            Err(reason) => {
                report.problem(Problem::BadLine { line: line_no, reason });
                expected = expected.saturating_add(1);
                prev = None;
                continue;
            }
        };
        report.events += 1;
        let seq = line.seq;
        if seq != expected {
            report.problem(Problem::Sequence { line: line_no, expected, found: seq });
        }
        if seq == manifest.first_seq {
            // The anchor is the genesis hash or the checkpoint just before the segment.
            check_checkpoint(report, seq.saturating_sub(1), &line.prev_hash);
            if genesis_anchor.as_ref().is_some_and(|g| **g != *line.prev_hash) {
                report.problem(Problem::AnchorMismatch { line: line_no, seq });
            }
        } else if prev.as_ref().is_some_and(|p| **p != *line.prev_hash) {
            report.problem(Problem::Unlinked { line: line_no, seq });
        }
        if &*line.kind == "event" {
            report.full += 1;
            let c = EventContent {
                chain: line.chain.as_deref().unwrap_or_default(),
                seq,
                at_micros: line.at_micros.unwrap_or_default(),
                actor: line.actor.as_deref().unwrap_or_default(),
                action: line.action.as_deref().unwrap_or_default(),
                object_kind: line.object_kind.as_deref().unwrap_or_default(),
                object_id: line.object_id.as_deref().unwrap_or_default(),
                organization_id: line.organization_id.as_deref(),
                payload: line.payload.as_deref().unwrap_or_default(),
            };
            if c.chain != manifest.chain {
                report.problem(Problem::WrongChain { line: line_no, seq, chain: c.chain.to_owned() });
            }
            let org_d = org_digests.get(c.organization_id);
            if hash_from_digests(&line.prev_hash, c.chain, seq, org_d, &body_digest(&c)) != *line.hash {
                report.problem(Problem::Altered { line: line_no, seq });
            }
            if discloses(org, c.organization_id, c.action) {
                timeline.push_content(&c);
            } else {
                report.problem(Problem::ForeignEvent {
                    line: line_no,
                    seq,
                    organization: c.organization_id.map(str::to_owned),
                });
            }
        } else {
            report.stubs += 1;
            let org_d = line.org_digest.as_deref().unwrap_or_default();
            let body_d = line.body_digest.as_deref().unwrap_or_default();
            if hash_from_digests(&line.prev_hash, &manifest.chain, seq, org_d, body_d) != *line.hash {
                report.problem(Problem::StubAltered { line: line_no, seq });
            }
            if org_d == own_digest {
                report.problem(Problem::HiddenOwnEvent { line: line_no, seq });
            }
        }
        check_checkpoint(report, seq, &line.hash);
        expected = seq.saturating_add(1);
        last_seen = Some(seq);
        prev = Some(line.hash.0.into_owned());
    }
    if last_seen != Some(manifest.last_seq) {
        report.problem(Problem::SegmentEnd { expected: manifest.last_seq, found: last_seen });
    }
    hex::encode(sha.finalize())
}

/// Refuses a line that mixes the fields of an event and a stub or lacks some.
fn check_shape(line: Line<'_>) -> Result<Line<'_>, String> {
    let event_fields = [
        line.chain.is_some(),
        line.at_micros.is_some(),
        line.actor.is_some(),
        line.action.is_some(),
        line.object_kind.is_some(),
        line.object_id.is_some(),
        line.payload.is_some(),
    ];
    let stub_fields = [line.org_digest.is_some(), line.body_digest.is_some()];
    match &*line.kind {
        "event" if event_fields.iter().all(|f| *f) && !stub_fields.iter().any(|f| *f) => Ok(line),
        "stub"
            if stub_fields.iter().all(|f| *f)
                && !event_fields.iter().any(|f| *f)
                && line.organization_id.is_none() =>
        {
            Ok(line)
        }
        "event" | "stub" => Err(format!("a {} with missing or foreign fields", &*line.kind)),
        other => Err(format!("unknown type {other:?}")),
    }
}

fn compare_tables(tables: &TimelineOutput, contents: &HashMap<&str, Vec<u8>>, report: &mut VerifyReport) {
    if let Some(bytes) = contents.get(VULNERABILITIES_JSON) {
        match serde_json::from_slice::<Vec<VulnRow>>(bytes) {
            Ok(rows) => {
                if let Some(detail) = first_difference(&rows, &tables.rows, |i, r| {
                    format!("row {i} ({} on device {})", r.cve, r.device_id)
                }) {
                    report.problem(Problem::RowDiffers { file: VULNERABILITIES_JSON, detail });
                }
            }
            Err(e) => {
                report.problem(Problem::TableUnreadable { file: VULNERABILITIES_JSON, reason: e.to_string() })
            }
        }
    }
    if let Some(bytes) = contents.get(CIS_JSON) {
        match serde_json::from_slice::<Vec<Safeguard>>(bytes) {
            Ok(found) => {
                for (i, want) in tables.cis.iter().enumerate() {
                    let detail = match found.get(i) {
                        None => Some("missing".to_owned()),
                        Some(got) if got != want => Some(field_difference(got, want)),
                        Some(_) => None,
                    };
                    if let Some(detail) = detail {
                        report.problem(Problem::SafeguardDiffers {
                            file: CIS_JSON,
                            id: want.id.clone(),
                            detail,
                        });
                        break;
                    }
                }
                if let Some(extra) = found.get(tables.cis.len()) {
                    report.problem(Problem::SafeguardDiffers {
                        file: CIS_JSON,
                        id: extra.id.clone(),
                        detail: "not a safeguard of the recomputed section".into(),
                    });
                }
            }
            Err(e) => report.problem(Problem::TableUnreadable { file: CIS_JSON, reason: e.to_string() }),
        }
    }
    for (file, rendered) in [(VULNERABILITIES_CSV, tables.vulnerabilities_csv()), (CIS_CSV, tables.cis_csv())]
    {
        if let Some(bytes) = contents.get(file)
            && bytes.as_slice() != rendered.as_bytes()
        {
            // Compared as bytes, line by line: the first line that differs, or the line after
            // the shorter file's end.
            let found: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let want: Vec<&[u8]> = rendered.as_bytes().split(|b| *b == b'\n').collect();
            let line = (0..found.len().max(want.len()))
                .find(|i| found.get(*i) != want.get(*i))
                .map_or(found.len().max(want.len()), |i| i + 1);
            report.problem(Problem::CsvDiffers { file, line });
        }
    }
}

/// Names the first row that differs between a table as found and as recomputed.
fn first_difference<T: PartialEq + serde::Serialize>(
    found: &[T],
    want: &[T],
    name: impl Fn(usize, &T) -> String,
) -> Option<String> {
    let label = |i: usize, r: &T| name(i + 1, r);
    for (i, w) in want.iter().enumerate() {
        match found.get(i) {
            None => return Some(format!("{} is missing", label(i, w))),
            Some(f) if f != w => return Some(format!("{} {}", label(i, w), field_difference(f, w))),
            Some(_) => {}
        }
    }
    found.get(want.len()).map(|f| format!("{} is not in the recomputed table", label(want.len(), f)))
}

/// Names the first field whose value differs, as JSON.
fn field_difference<T: serde::Serialize>(found: &T, want: &T) -> String {
    let (Ok(serde_json::Value::Object(f)), Ok(serde_json::Value::Object(w))) =
        (serde_json::to_value(found), serde_json::to_value(want))
    else {
        return "differs from the events".to_owned();
    };
    w.iter().find(|(k, v)| f.get(*k) != Some(*v)).map_or_else(
        || "differs from the events".to_owned(),
        |(k, v)| {
            let got = f.get(k).map_or_else(|| "nothing".to_owned(), |g| g.to_string());
            format!("says {k} = {got}, the events give {v}")
        },
    )
}
