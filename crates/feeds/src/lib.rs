//! Streaming parsers of the vulnerability feeds ringfence reads: NVD CVE API 2.0 (single
//! records and API pages), the CISA KEV catalog, EPSS scores (CSV, plain or gzip), OSV
//! records, the Debian security tracker JSON and Debian changelogs.
//!
//! A feed is read record by record, never loaded whole into memory as a JSON tree. A
//! malformed record is skipped and counted with its reason ([`Skipped`]); a malformed feed
//! (not JSON, the records array missing) is an error that says what was expected. This crate
//! touches no database; the engine stores what it yields.

pub mod debian;
pub mod epss;
pub mod kev;
pub mod limits;
pub mod nvd;
pub mod osv;
mod stream;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// A feed that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot read the feed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Format(String),
}

/// Records skipped, by reason, with one example record id per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub by_reason: BTreeMap<String, (u64, String)>,
}

impl Skipped {
    pub fn add(&mut self, reason: impl Into<String>, example: impl Into<String>) {
        let e = self.by_reason.entry(reason.into()).or_insert_with(|| (0, example.into()));
        e.0 += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|(n, _)| n).sum()
    }
}

/// What a file holds, judged from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A page of the NVD CVE API 2.0 (`{"format": "NVD_CVE", "vulnerabilities": [...]}`).
    NvdPage,
    /// One NVD CVE API 2.0 `cve` object.
    NvdRecord,
    /// The CISA KEV catalog.
    Kev,
    /// EPSS scores as CSV.
    Epss,
    /// The Debian security tracker's JSON export.
    DebianTracker,
    /// One OSV record.
    Osv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::NvdPage => "NVD CVE API 2.0 page",
            Format::NvdRecord => "NVD CVE record",
            Format::Kev => "CISA KEV catalog",
            Format::Epss => "EPSS scores",
            Format::DebianTracker => "Debian security tracker JSON",
            Format::Osv => "OSV record",
        }
    }
}

/// A reader that transparently decompresses gzip.
pub fn open(reader: impl Read + 'static) -> Result<Box<dyn BufRead>, FeedError> {
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(buffered))))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Detects the format of a (decompressed) feed from its first bytes.
pub fn detect(reader: &mut dyn BufRead) -> Result<Format, FeedError> {
    let head = reader.fill_buf()?;
    let text = String::from_utf8_lossy(&head[..head.len().min(8192)]);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("#model_version") || t.to_ascii_lowercase().starts_with("cve,epss") {
        return Ok(Format::Epss);
    }
    if t.starts_with('{') {
        if t.contains("\"catalogVersion\"") {
            return Ok(Format::Kev);
        }
        if t.contains("\"releases\"") && (t.contains("\"fixed_version\"") || t.contains("\"repositories\"")) {
            return Ok(Format::DebianTracker);
        }
        if t.contains("\"modified\"") && !t.contains("\"sourceIdentifier\"") {
            return Ok(Format::Osv);
        }
        if t.contains("\"NVD_CVE\"") || t.contains("\"resultsPerPage\"") || t.contains("\"vulnerabilities\"")
        {
            return Ok(Format::NvdPage);
        }
        if t.contains("\"sourceIdentifier\"") || (t.contains("\"id\"") && t.contains("\"CVE-")) {
            return Ok(Format::NvdRecord);
        }
    }
    Err(FeedError::Format(
        "unknown feed format: expected an NVD CVE API 2.0 page or record, the CISA KEV catalog (JSON), EPSS scores (CSV, plain or gzip), the Debian security tracker JSON or an OSV record"
            .into(),
    ))
}
