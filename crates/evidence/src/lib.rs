//! ringfence's evidence: the hash chain of the evidence log ([`chain`]), signed checkpoints of
//! its head ([`checkpoint`]), the vulnerability timeline and CIS Control 7 section derived
//! from events ([`timeline`]), and an organization's audit bundle with its offline
//! verification ([`bundle`], [`verify`]).
//!
//! The crate is pure: no files, no network, no clock. Callers pass events, times and keys in,
//! and bundles are read from and written to caller-supplied readers and writers.

pub mod bundle;
pub mod chain;
pub mod checkpoint;
mod container;
pub mod csv;
pub mod timeline;
pub mod verify;

pub use bundle::{
    BundleError, BundleHeader, BundleSummary, BundleWriter, Counts, Manifest, Party, Window, WriteError,
    discloses,
};
pub use chain::{
    ChainBreak, ChainVerifier, Event, EventContent, GENESIS_HASH, Stub, body_digest, event_hash,
    hash_from_digests, org_digest,
};
pub use checkpoint::{Checkpoint, CheckpointError, key_id};
pub use timeline::{
    EvidenceCount, Safeguard, SafeguardStatus, Severity, SlaPolicy, SlaStatus, Timeline, TimelineOutput,
    TimelineStats, VulnRow,
};
pub use verify::{Problem, VerifyReport, verify_bundle};
