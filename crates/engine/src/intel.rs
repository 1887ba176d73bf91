//! Vulnerability intelligence: importing feeds into the store, building the match index
//! from it, and turning inventories into findings.
//!
//! Feeds are public data shared by every partner; importing them is the installation
//! operator's job (`ringfence feeds import|sync`, and the server's own schedule). Findings
//! are tenant data, computed per device by [`crate::Engine`] and read through the same
//! role checks as everything else.

use ringfence_cpe::Cpe;
use ringfence_feeds::nvd::{Bound, Configuration, CpeMatch, Cve, Node, Operator, VulnStatus};
use ringfence_feeds::{FeedError, Format, Skipped, debian, epss, kev, nvd, osv};
use ringfence_inventory::{Item, ItemKind, debian_version_of};
use ringfence_matcher::{DistroAdvisory, DistroState, Index, NvdAdvisory, Table};
use ringfence_model::Timestamp;
use ringfence_store::{CveRow, DistroRow, EpssRow, FeedRun, KevRow, Store, UpsertCounts};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records per write transaction.
const BATCH: usize = 1000;

#[derive(Serialize, Deserialize)]
struct StoredBound(String, bool);

#[derive(Serialize, Deserialize)]
struct StoredMatch {
    v: bool,
    c: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<StoredBound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<StoredBound>,
}

#[derive(Serialize, Deserialize)]
struct StoredNode {
    and: bool,
    #[serde(default)]
    neg: bool,
    m: Vec<StoredMatch>,
}

#[derive(Serialize, Deserialize)]
struct StoredConfig {
    and: bool,
    #[serde(default)]
    neg: bool,
    nodes: Vec<StoredNode>,
}

/// NVD configurations in the compact form the store keeps.
pub fn encode_configurations(configs: &[Configuration]) -> String {
    let bound = |b: &Option<Bound>| b.as_ref().map(|b| StoredBound(b.version.clone(), b.inclusive));
    let stored: Vec<StoredConfig> = configs
        .iter()
        .map(|c| StoredConfig {
            and: c.operator == Operator::And,
            neg: c.negate,
            nodes: c
                .nodes
                .iter()
                .map(|n| StoredNode {
                    and: n.operator == Operator::And,
                    neg: n.negate,
                    m: n.matches
                        .iter()
                        .map(|m| StoredMatch {
                            v: m.vulnerable,
                            c: m.criteria_text.clone(),
                            s: bound(&m.start),
                            e: bound(&m.end),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

pub fn decode_configurations(text: &str) -> Result<Vec<Configuration>, String> {
    let stored: Vec<StoredConfig> =
        serde_json::from_str(text).map_err(|e| format!("stored configurations are unreadable: {e}"))?;
    let op = |and: bool| if and { Operator::And } else { Operator::Or };
    let bound =
        |b: Option<StoredBound>| b.map(|StoredBound(version, inclusive)| Bound { version, inclusive });
    stored
        .into_iter()
        .map(|c| {
            Ok(Configuration {
                operator: op(c.and),
                negate: c.neg,
                nodes: c
                    .nodes
                    .into_iter()
                    .map(|n| {
                        Ok(Node {
                            operator: op(n.and),
                            negate: n.neg,
                            matches: n
                                .m
                                .into_iter()
                                .map(|m| {
                                    Ok(CpeMatch {
                                        vulnerable: m.v,
                                        criteria: Cpe::parse(&m.c).map_err(|e| e.to_string())?,
                                        criteria_text: m.c,
                                        criteria_id: String::new(),
                                        start: bound(m.s),
                                        end: bound(m.e),
                                    })
                                })
                                .collect::<Result<_, String>>()?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            })
        })
        .collect()
}

/// The `vendor:product` keys named by a record's vulnerable criteria.
pub fn match_keys(configs: &[Configuration]) -> Vec<String> {
    let mut keys: Vec<String> = configs
        .iter()
        .flat_map(|c| &c.nodes)
        .flat_map(|n| &n.matches)
        .filter(|m| m.vulnerable)
        .filter_map(|m| {
            Some(format!("{}:{}", m.criteria.vendor().literal()?, m.criteria.product().literal()?))
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The match key of an inventory item: `pkg:SOURCE` for distro packages, `vendor:product`
/// for programs the table translates, nothing otherwise.
pub fn item_match_key(table: &Table, item: &Item) -> Option<String> {
    match item.kind {
        ItemKind::Package => Some(format!("pkg:{}", item.source())),
        ItemKind::Hotfix | ItemKind::Driver | ItemKind::Os => None,
        _ => table
            .translate(item)
            .and_then(|t| Some(format!("{}:{}", t.cpe.vendor().literal()?, t.cpe.product().literal()?))),
    }
}

pub fn cve_row(c: &Cve) -> CveRow {
    let best = c.best_cvss();
    let rejected = c.status == VulnStatus::Rejected;
    CveRow {
        id: c.id.clone(),
        status: c.status.as_str().to_string(),
        published: c.published.clone(),
        last_modified: c.last_modified.clone(),
        description: c.description.clone(),
        cvss_score: best.map(|b| b.base_score),
        cvss_version: best.map(|b| b.version.clone()),
        cvss_vector: best.map(|b| b.vector.clone()),
        severity: best.and_then(|b| b.severity.clone()),
        cwes: serde_json::to_string(&c.cwes).unwrap_or_else(|_| "[]".into()),
        configurations: if rejected { "[]".into() } else { encode_configurations(&c.configurations) },
        match_keys: if rejected { Vec::new() } else { match_keys(&c.configurations) },
    }
}

/// An OSV ecosystem as (distro, release): `Debian:12` → (`debian`, `12`).
pub fn osv_distro(ecosystem: &str) -> Option<(String, String)> {
    let mut parts = ecosystem.split(':');
    let base = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let (distro, release) = match base {
        "Debian" => ("debian", rest.first()?.to_string()),
        "Ubuntu" => ("ubuntu", rest.iter().find(|p| p.contains('.'))?.to_string()),
        "Alpine" => ("alpine", rest.first()?.trim_start_matches('v').to_string()),
        "AlmaLinux" => ("almalinux", rest.first()?.to_string()),
        "Rocky Linux" => ("rocky", rest.first()?.to_string()),
        "Red Hat" => ("rhel", rest.iter().find_map(|p| p.parse::<u32>().ok())?.to_string()),
        _ => return None,
    };
    (!release.is_empty()).then(|| (distro.to_string(), release))
}

fn distro_state(row: &DistroRow) -> Option<DistroState> {
    Some(match row.state.as_str() {
        "fixed" => DistroState::Fixed(row.fixed_version.clone()?),
        "not_affected" => DistroState::NotAffected,
        "open" => DistroState::Open,
        "undetermined" => DistroState::Undetermined,
        "osv" => {
            let record = osv::parse(row.detail.as_deref()?).ok()?;
            let affected = record.affected.into_iter().find(|a| {
                a.name == row.package
                    && osv_distro(&a.ecosystem).is_some_and(|(d, r)| d == row.distro && r == row.release)
            })?;
            DistroState::Osv(Box::new(affected))
        }
        _ => return None,
    })
}

/// Builds the match index from everything the store holds.
pub async fn load_index(store: &dyn Store) -> crate::Result<Index> {
    let mut index = Index::new(Table::builtin());
    for (id, status, configs) in store.all_cve_configurations().await? {
        if status == "Rejected" {
            continue;
        }
        match decode_configurations(&configs) {
            Ok(configurations) => {
                index.add_nvd(&NvdAdvisory { cve_id: id, configurations });
            }
            Err(e) => tracing::warn!(cve = %id, "skipping a stored record: {e}"),
        }
    }
    for row in store.all_distro_rows().await? {
        if let Some(state) = distro_state(&row) {
            index.add_distro(DistroAdvisory {
                distro: row.distro,
                release: row.release,
                package: row.package,
                cve_id: row.cve_id,
                state,
                urgency: row.urgency,
                source: row.source,
            });
        }
    }
    Ok(index)
}

/// What one import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    pub origin: String,
    pub format: String,
    pub records: u64,
    pub counts: UpsertCounts,
    #[serde(serialize_with = "ser_skipped")]
    pub skipped: Skipped,
    /// CVEs added or changed: what correlation must look at again.
    pub touched: Vec<String>,
    /// NVD records that arrived rejected.
    pub withdrawn: Vec<String>,
    /// CVEs newly added to KEV.
    pub kev_added: Vec<String>,
    /// CVEs newly published (not seen before).
    pub new_cves: Vec<String>,
}

/// Skip reasons as JSON: `{reason: {count, example}}`.
pub fn skipped_json(s: &Skipped) -> serde_json::Value {
    s.by_reason
        .iter()
        .map(|(r, (n, ex))| (r.clone(), serde_json::json!({ "count": n, "example": ex })))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn ser_skipped<S: serde::Serializer>(s: &Skipped, ser: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&skipped_json(s), ser)
}

enum Batch {
    Cves(Vec<CveRow>, Vec<(String, bool)>),
    Kev(Vec<KevRow>),
    Epss(Vec<EpssRow>),
    Distro(Vec<DistroRow>),
}

/// Counts the bytes read, for progress bars.
pub struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Parses a feed on the calling (blocking) thread, sending batches of rows.
fn parse_feed(
    reader: Box<dyn Read + Send>,
    origin: &str,
    tx: &tokio::sync::mpsc::Sender<Batch>,
) -> Result<(Format, Skipped, u64), FeedError> {
    let limits = ringfence_feeds::limits::Limits::from_env().map_err(FeedError::Format)?;
    let mut reader = ringfence_feeds::open(reader)?;
    let format = ringfence_feeds::detect(&mut reader)?;
    let mut reader = ringfence_feeds::limits::guard(reader, format, &limits);
    let mut records = 0u64;
    let closed = || FeedError::Format("the import was stopped".into());
    let skipped = match format {
        Format::NvdPage | Format::NvdRecord => {
            let mut rows = Vec::with_capacity(BATCH);
            let mut status = Vec::with_capacity(BATCH);
            let mut send_err = false;
            let mut each = |c: Cve| {
                records += 1;
                status.push((c.id.clone(), c.status == VulnStatus::Rejected));
                rows.push(cve_row(&c));
                if rows.len() >= BATCH
                    && tx
                        .blocking_send(Batch::Cves(std::mem::take(&mut rows), std::mem::take(&mut status)))
                        .is_err()
                {
                    send_err = true;
                }
            };
            let skipped = if format == Format::NvdPage {
                nvd::parse_page(reader, &mut each)?.1
            } else {
                let mut text = String::new();
                reader.read_to_string(&mut text)?;
                let cve =
                    nvd::parse_record(&text).map_err(|e| FeedError::Format(format!("{origin}: {e}")))?;
                each(cve);
                Skipped::default()
            };
            if send_err || tx.blocking_send(Batch::Cves(rows, status)).is_err() {
                return Err(closed());
            }
            skipped
        }
        Format::Kev => {
            let mut rows = Vec::new();
            let (_, skipped) = kev::parse(reader, &mut |e| {
                records += 1;
                rows.push(KevRow {
                    cve_id: e.cve_id,
                    vendor: e.vendor_project,
                    product: e.product,
                    name: e.name,
                    date_added: e.date_added.to_string(),
                    due_date: e.due_date.to_string(),
                    ransomware: e.ransomware,
                    required_action: e.required_action,
                    notes: e.notes,
                });
            })?;
            for chunk in rows.chunks(BATCH) {
                tx.blocking_send(Batch::Kev(chunk.to_vec())).map_err(|_| closed())?;
            }
            skipped
        }
        Format::Epss => {
            // The model version and score date are in the header line; rows are kept until
            // the header is known (EPSS is a few hundred thousand short rows).
            let mut rows = Vec::new();
            let (header, skipped) = epss::parse(&mut reader, &mut |s| {
                records += 1;
                rows.push(EpssRow {
                    cve_id: s.cve_id,
                    score: s.score,
                    percentile: s.percentile,
                    model_version: String::new(),
                    score_date: String::new(),
                });
            })?;
            for r in &mut rows {
                r.model_version.clone_from(&header.model_version);
                r.score_date.clone_from(&header.score_date);
            }
            for chunk in rows.chunks(BATCH * 10) {
                tx.blocking_send(Batch::Epss(chunk.to_vec())).map_err(|_| closed())?;
            }
            skipped
        }
        Format::DebianTracker => {
            let mut rows = Vec::with_capacity(BATCH);
            let mut skipped_release = Skipped::default();
            let mut failed = false;
            let (_, mut skipped) = debian::parse_tracker(reader, &mut |e| {
                records += 1;
                let Some(release) = debian_version_of(&e.release) else {
                    skipped_release.add(format!("release '{}' has no version number", e.release), &e.cve_id);
                    return;
                };
                let (state, fixed) = match e.state {
                    debian::TrackerState::Fixed(v) => ("fixed", Some(v)),
                    debian::TrackerState::NotAffected => ("not_affected", None),
                    debian::TrackerState::Open { .. } => ("open", None),
                    debian::TrackerState::Undetermined => ("undetermined", None),
                };
                rows.push(DistroRow {
                    distro: "debian".into(),
                    release: release.into(),
                    package: e.package,
                    cve_id: e.cve_id,
                    source: "debian-tracker".into(),
                    state: state.into(),
                    fixed_version: fixed,
                    urgency: e.urgency,
                    detail: None,
                });
                if rows.len() >= BATCH {
                    failed |= tx.blocking_send(Batch::Distro(std::mem::take(&mut rows))).is_err();
                }
            })?;
            if failed || tx.blocking_send(Batch::Distro(rows)).is_err() {
                return Err(closed());
            }
            for (reason, (n, ex)) in skipped_release.by_reason {
                for _ in 0..n {
                    skipped.add(reason.clone(), ex.clone());
                }
            }
            skipped
        }
        Format::Osv => {
            let mut text = String::new();
            reader.read_to_string(&mut text)?;
            let mut skipped = Skipped::default();
            let record = osv::parse(&text).map_err(|e| FeedError::Format(format!("{origin}: {e}")))?;
            records += 1;
            let rows = osv_rows(&record, &text, &mut skipped);
            tx.blocking_send(Batch::Distro(rows)).map_err(|_| closed())?;
            skipped
        }
    };
    Ok((format, skipped, records))
}

/// The distro rows of one OSV record: one per affected distro package and CVE alias.
pub fn osv_rows(record: &osv::OsvRecord, text: &str, skipped: &mut Skipped) -> Vec<DistroRow> {
    if record.withdrawn.is_some() {
        skipped.add("withdrawn OSV record", &record.id);
        return Vec::new();
    }
    // CVE ids among the id and aliases, also inside distro ids like DEBIAN-CVE-2024-1234.
    let mut cves: Vec<String> = std::iter::once(&record.id)
        .chain(&record.aliases)
        .filter_map(|a| a.find("CVE-").map(|i| &a[i..]))
        .filter(|a| kev::is_cve_id(a))
        .map(str::to_string)
        .collect();
    cves.sort();
    cves.dedup();
    if cves.is_empty() {
        cves.push(record.id.clone());
    }
    let mut rows = Vec::new();
    for a in &record.affected {
        let Some((distro, release)) = osv_distro(&a.ecosystem) else {
            let reason = if a.ecosystem.is_empty() {
                "affected entry without a package (GIT ranges only)".to_string()
            } else {
                format!("ecosystem '{}' is not a supported distro", a.ecosystem)
            };
            skipped.add(reason, &record.id);
            continue;
        };
        for cve in &cves {
            rows.push(DistroRow {
                distro: distro.clone(),
                release: release.clone(),
                package: a.name.clone(),
                cve_id: cve.clone(),
                source: format!("osv {}", record.id),
                state: "osv".into(),
                fixed_version: None,
                urgency: None,
                detail: Some(text.to_string()),
            });
        }
    }
    rows
}

/// Imports one feed file (any supported format, plain or gzip) into the store. `progress`
/// receives the number of bytes read so far.
pub async fn import_file(
    store: &dyn Store,
    path: &Path,
    now: Timestamp,
    progress: Arc<AtomicU64>,
) -> crate::Result<ImportSummary, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let origin = path.display().to_string();
    let mut magic = [0u8; 4];
    let is_zip =
        std::io::Read::read(&mut file, &mut magic).map_err(|e| format!("cannot read {origin}: {e}"))? == 4
            && magic == *b"PK\x03\x04";
    drop(file);
    if is_zip {
        return import_zip(store, path, now, progress).await;
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    import_reader(store, Box::new(Counting { inner: file, read: progress }), &origin, now).await
}

/// Imports every JSON record of a zip export (OSV's `all.zip` per ecosystem). A record that
/// cannot be read is skipped and counted; the rest still come in.
async fn import_zip(
    store: &dyn Store,
    path: &Path,
    now: Timestamp,
    progress: Arc<AtomicU64>,
) -> crate::Result<ImportSummary, String> {
    let origin = path.display().to_string();
    let limits = ringfence_feeds::limits::Limits::from_env()?;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {origin}: {e}"))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{origin} is not a readable zip archive: {e}"))?;
    let mut summary =
        ImportSummary { origin: origin.clone(), format: "zip archive".into(), ..Default::default() };
    for i in 0..archive.len() {
        let (name, bytes) = {
            let mut entry =
                archive.by_index(i).map_err(|e| format!("{origin}: entry {i} is unreadable: {e}"))?;
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            let name = entry.name().to_string();
            // The declared size is a claim of the file: checked, never used to allocate.
            if entry.size() > limits.max_entry_bytes {
                summary.skipped.add(entry_too_large(limits.max_entry_bytes), name);
                continue;
            }
            let mut bytes = Vec::new();
            let read = std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut entry, limits.max_entry_bytes + 1),
                &mut bytes,
            );
            if let Err(e) = read {
                summary.skipped.add(format!("unreadable entry: {e}"), name);
                continue;
            }
            if bytes.len() as u64 > limits.max_entry_bytes {
                summary.skipped.add(entry_too_large(limits.max_entry_bytes), name);
                continue;
            }
            progress.fetch_add(entry.compressed_size(), Ordering::Relaxed);
            (name, bytes)
        };
        match import_unrecorded(
            store,
            Box::new(std::io::Cursor::new(bytes)),
            &format!("{origin}:{name}"),
            now,
        )
        .await
        {
            Ok(s) => {
                let format = s.format.clone();
                merge_summary(&mut summary, s);
                summary.format = format!("zip archive of {format}");
            }
            Err(e) => summary.skipped.add(e.rsplit(": ").next().unwrap_or(&e).to_string(), name),
        }
    }
    summary.touched.sort();
    summary.touched.dedup();
    record_run(store, &summary, now, None).await?;
    Ok(summary)
}

fn entry_too_large(limit: u64) -> String {
    format!("entry larger than the limit of {} MiB (RINGFENCE_FEED_MAX_ENTRY_MIB)", limit >> 20)
}

/// Imports one feed from any reader.
pub async fn import_reader(
    store: &dyn Store,
    reader: Box<dyn Read + Send>,
    origin: &str,
    now: Timestamp,
) -> crate::Result<ImportSummary, String> {
    let summary = import_unrecorded(store, reader, origin, now).await?;
    record_run(store, &summary, now, None).await?;
    Ok(summary)
}

/// Adds one summary into another (for syncs made of many pages).
pub fn merge_summary(into: &mut ImportSummary, s: ImportSummary) {
    into.records += s.records;
    into.counts += s.counts;
    for (reason, (n, example)) in s.skipped.by_reason {
        let e = into.skipped.by_reason.entry(reason).or_insert((0, example));
        e.0 += n;
    }
    into.touched.extend(s.touched);
    into.withdrawn.extend(s.withdrawn);
    into.kev_added.extend(s.kev_added);
    into.new_cves.extend(s.new_cves);
    if into.format.is_empty() {
        into.format = s.format;
    }
}

/// Records one import or sync in the feed history.
pub async fn record_run(
    store: &dyn Store,
    summary: &ImportSummary,
    started: Timestamp,
    error: Option<String>,
) -> crate::Result<(), String> {
    let run = FeedRun {
        id: uuid::Uuid::now_v7().to_string(),
        feed: summary.format.clone(),
        origin: summary.origin.clone(),
        started_at: started,
        finished_at: Timestamp::now(),
        added: summary.counts.added,
        changed: summary.counts.changed,
        unchanged: summary.counts.unchanged,
        skipped: summary.skipped.total(),
        detail: serde_json::json!({
            "skipped": skipped_json(&summary.skipped),
            "withdrawn": summary.withdrawn.len(),
            "kev_added": summary.kev_added.len(),
        })
        .to_string(),
        error,
    };
    store.record_feed_run(&run).await.map_err(|e| e.to_string())
}

/// Imports one feed without recording a run (the caller records one for many).
pub async fn import_unrecorded(
    store: &dyn Store,
    reader: Box<dyn Read + Send>,
    origin: &str,
    now: Timestamp,
) -> crate::Result<ImportSummary, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(4);
    let origin_owned = origin.to_string();
    let parser = tokio::task::spawn_blocking(move || parse_feed(reader, &origin_owned, &tx));
    let mut summary = ImportSummary { origin: origin.to_string(), ..Default::default() };
    let mut store_error = None;
    while let Some(batch) = rx.recv().await {
        if store_error.is_some() {
            continue;
        }
        let r = match batch {
            Batch::Cves(rows, status) => match store.upsert_cves(&rows, now).await {
                Ok(up) => {
                    let added: std::collections::HashSet<&String> = up.added.iter().collect();
                    for (id, rejected) in status {
                        if rejected {
                            summary.withdrawn.push(id.clone());
                        } else if added.contains(&id) {
                            summary.new_cves.push(id.clone());
                        }
                    }
                    summary.touched.extend(up.added.iter().cloned());
                    summary.touched.extend(up.changed.iter().cloned());
                    Ok(up.counts)
                }
                Err(e) => Err(e),
            },
            Batch::Kev(rows) => {
                let ids: Vec<String> = rows.iter().map(|r| r.cve_id.clone()).collect();
                let before: std::collections::HashSet<String> = match store.cve_facts(&ids).await {
                    Ok(f) => f.into_iter().filter(|f| f.kev.is_some()).map(|f| f.id).collect(),
                    Err(e) => {
                        store_error = Some(e.to_string());
                        continue;
                    }
                };
                summary.kev_added.extend(ids.into_iter().filter(|i| !before.contains(i)));
                store.upsert_kev(&rows).await
            }
            Batch::Epss(rows) => store.upsert_epss(&rows).await,
            Batch::Distro(rows) => {
                let r = store.upsert_distro(&rows).await;
                if r.is_ok() {
                    summary.touched.extend(rows.into_iter().map(|r| r.cve_id));
                }
                r
            }
        };
        match r {
            Ok(c) => summary.counts += c,
            Err(e) => store_error = Some(e.to_string()),
        }
    }
    let parsed = parser.await.map_err(|e| format!("the parser stopped: {e}"))?;
    if let Some(e) = store_error {
        return Err(format!("{origin}: storing failed: {e}"));
    }
    let (format, skipped, records) = parsed.map_err(|e| format!("{origin}: {e}"))?;
    summary.format = format.as_str().to_string();
    summary.records = records;
    summary.skipped = skipped;
    summary.touched.sort();
    summary.touched.dedup();
    Ok(summary)
}

/// The demo's vulnerability data, written for the repository (real CVE facts).
pub const DEMO_DATA: &str = include_str!("../data/demo-intel.json");

#[derive(Deserialize)]
struct DemoData {
    cves: Vec<DemoCve>,
    debian: Vec<DemoDebian>,
}

#[derive(Deserialize)]
struct DemoCve {
    id: String,
    title: String,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    cvss: Option<(f64, String, String, Option<String>)>,
    #[serde(default)]
    configurations: Option<serde_json::Value>,
    #[serde(default)]
    kev: Option<DemoKev>,
}

#[derive(Deserialize)]
struct DemoKev {
    added: String,
    due: String,
    ransomware: bool,
    vendor: String,
    product: String,
    action: String,
}

#[derive(Deserialize)]
struct DemoDebian {
    release: String,
    package: String,
    cve: String,
    state: String,
    fixed: Option<String>,
}

/// Imports the demo dataset, as an import of files would.
pub async fn import_demo(store: &dyn Store, now: Timestamp) -> crate::Result<ImportSummary, String> {
    let data: DemoData =
        serde_json::from_str(DEMO_DATA).map_err(|e| format!("the demo dataset is invalid: {e}"))?;
    let mut cves = Vec::new();
    let mut kev = Vec::new();
    for c in &data.cves {
        let configurations = match &c.configurations {
            Some(v) => v.to_string(),
            None => "[]".into(),
        };
        let decoded = decode_configurations(&configurations)?;
        cves.push(CveRow {
            id: c.id.clone(),
            status: "Analyzed".into(),
            published: c.published.clone().unwrap_or_default(),
            last_modified: c.last_modified.clone().unwrap_or_default(),
            description: c.title.clone(),
            cvss_score: c.cvss.as_ref().map(|x| x.0),
            cvss_version: c.cvss.as_ref().map(|x| x.1.clone()),
            cvss_vector: c.cvss.as_ref().map(|x| x.2.clone()),
            severity: c.cvss.as_ref().and_then(|x| x.3.clone()),
            cwes: "[]".into(),
            configurations,
            match_keys: match_keys(&decoded),
        });
        if let Some(k) = &c.kev {
            kev.push(KevRow {
                cve_id: c.id.clone(),
                vendor: k.vendor.clone(),
                product: k.product.clone(),
                name: c.title.clone(),
                date_added: k.added.clone(),
                due_date: k.due.clone(),
                ransomware: k.ransomware,
                required_action: k.action.clone(),
                notes: String::new(),
            });
        }
    }
    let distro: Vec<DistroRow> = data
        .debian
        .iter()
        .map(|d| DistroRow {
            distro: "debian".into(),
            release: d.release.clone(),
            package: d.package.clone(),
            cve_id: d.cve.clone(),
            source: "debian-changelog".into(),
            state: d.state.clone(),
            fixed_version: d.fixed.clone(),
            urgency: None,
            detail: None,
        })
        .collect();
    let mut summary =
        ImportSummary { origin: "demo dataset".into(), format: "demo".into(), ..Default::default() };
    let e = |e: ringfence_store::StoreError| e.to_string();
    summary.counts += store.upsert_cves(&cves, now).await.map_err(e)?.counts;
    summary.counts += store.upsert_kev(&kev).await.map_err(e)?;
    summary.counts += store.upsert_distro(&distro).await.map_err(e)?;
    summary.records = (cves.len() + kev.len() + distro.len()) as u64;
    summary.new_cves = cves.iter().map(|c| c.id.clone()).collect();
    summary.kev_added = kev.iter().map(|k| k.cve_id.clone()).collect();
    summary.touched = summary.new_cves.clone();
    summary.touched.extend(distro.iter().map(|d| d.cve_id.clone()));
    summary.touched.sort();
    summary.touched.dedup();
    Ok(summary)
}
