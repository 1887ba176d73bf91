//! Reading and verifying the evidence log as it is in the store, signing checkpoints of
//! its chains, and exporting an organization's audit evidence bundle.

use crate::{Engine, EngineError, Result, require, require_partner_wide};
use jiff::Timestamp;
use ringfence_evidence::{ChainBreak, ChainVerifier};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::{EventRecord, Store};

/// Events are read in batches of this many while verifying.
const BATCH: i64 = 2000;

/// One verified chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOk {
    pub chain: String,
    pub events: i64,
}

/// Verifies every chain in the store (or one): recomputes each event's hash, checks the
/// links and sequence, compares the end with the recorded head, and checks every stored
/// checkpoint against the event it names (and its signature against `key`, the server's
/// public key, when given). Stops at the first break of each chain; returns the verified
/// chains and the breaks.
pub async fn verify_store(
    store: &dyn Store,
    only: Option<&str>,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<(Vec<ChainOk>, Vec<ChainBreak>)> {
    let heads = store.chain_heads().await?;
    let mut ok = Vec::new();
    let mut broken = Vec::new();
    for chain in store.event_chains().await? {
        if only.is_some_and(|o| o != chain) {
            continue;
        }
        if !heads.iter().any(|(c, ..)| *c == chain) {
            broken.push(ChainBreak::MissingHead { chain });
        }
    }
    for (chain, head_seq, head_hash) in heads {
        if only.is_some_and(|o| o != chain) {
            continue;
        }
        match verify_chain(store, &chain, head_seq, &head_hash, key).await? {
            Ok(events) => ok.push(ChainOk { chain, events }),
            Err(b) => broken.push(b),
        }
    }
    Ok((ok, broken))
}

async fn verify_chain(
    store: &dyn Store,
    chain: &str,
    head_seq: i64,
    head_hash: &str,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<Result<i64, ChainBreak>> {
    let checkpoints = store.list_checkpoints(chain, 0, i64::MAX).await?;
    let broken = |b| Ok(Err(b));
    if let Some(key) = key {
        for c in &checkpoints {
            if c.verify(key).is_err() {
                return broken(ChainBreak::CheckpointForged { chain: chain.to_owned(), seq: c.seq });
            }
        }
    }
    let mut signed: std::collections::HashMap<i64, &str> =
        checkpoints.iter().map(|c| (c.seq, c.hash.as_str())).collect();
    let mut v = ChainVerifier::new(chain);
    let mut after = 0;
    loop {
        let batch = store.list_events(chain, None, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if let Err(b) = v.push(e) {
                return broken(b);
            }
            if let Some(hash) = signed.remove(&e.seq)
                && hash != e.hash
            {
                return broken(ChainBreak::CheckpointMismatch { chain: chain.to_owned(), seq: e.seq });
            }
        }
    }
    if let Some(&seq) = signed.keys().min() {
        return broken(ChainBreak::CheckpointBeyondEnd { chain: chain.to_owned(), seq, last_seq: after });
    }
    Ok(v.finish(head_seq, head_hash))
}

impl Engine {
    /// The caller's partner's evidence events, filtered to their organization if they are
    /// limited to one.
    pub async fn events(&self, p: &Principal, q: &proto::EventQuery) -> Result<Vec<proto::EvidenceEvent>> {
        require(p, Permission::ReadEvidence, "read the evidence log")?;
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ValueError::new("limit", "must be between 1 and 1000").into());
        }
        let org = p.organization_id.as_ref().map(OrganizationId::as_str);
        let events =
            self.store().list_events(p.partner_id.as_str(), org, q.after.unwrap_or(0), limit).await?;
        Ok(events
            .into_iter()
            .map(|e| proto::EvidenceEvent {
                seq: e.seq,
                at: Timestamp::from_microsecond(e.at_micros).map(|t| t.to_string()).unwrap_or_default(),
                actor: e.actor,
                action: e.action,
                object_kind: e.object_kind,
                object_id: e.object_id,
                organization_id: e.organization_id,
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect())
    }

    /// The newest events with `seq < before` that `filter` accepts, newest first. The scan
    /// goes back at most `EVENT_SCAN` events (and stops at `filter.since`), so a filter that
    /// matches little answers quickly with what it found; `scanned_to` says where it stopped.
    pub async fn latest_events_where(
        &self,
        p: &Principal,
        before: Option<i64>,
        limit: i64,
        filter: &EventFilter,
    ) -> Result<(Vec<proto::EvidenceEvent>, i64)> {
        require(p, Permission::ReadEvidence, "read the evidence log")?;
        let head = self
            .store()
            .chain_heads()
            .await?
            .into_iter()
            .find(|(c, ..)| c == p.partner_id.as_str())
            .map_or(0, |(_, seq, _)| seq);
        let end = before.unwrap_or(head + 1).clamp(1, head + 1);
        let mut found = Vec::new();
        let mut upper = end;
        while upper > 1 && (found.len() as i64) < limit && end - upper < EVENT_SCAN {
            let after = upper.saturating_sub(1000).max(1) - 1;
            let q = proto::EventQuery { after: Some(after), limit: Some(1000) };
            let mut batch = self.events(p, &q).await?;
            batch.retain(|e| e.seq < upper);
            batch.reverse();
            let past_since = filter.since.is_some_and(|s| {
                batch.last().is_some_and(|e| e.at.parse::<Timestamp>().is_ok_and(|t| t < s))
            });
            found.extend(batch.into_iter().filter(|e| filter.accepts(e)));
            upper = after + 1;
            if past_since {
                // Everything older is before the span asked for.
                upper = 1;
                break;
            }
        }
        found.truncate(limit.max(0) as usize);
        Ok((found, upper))
    }

    /// Refuses to export from a chain whose end is not what was recorded: the last event
    /// must be the recorded head, and the newest checkpoint must sign an event still there.
    async fn check_chain_end(&self, chain: &str, key: &ed25519_dalek::VerifyingKey) -> Result<()> {
        let refuse = |why: String| {
            Err(EngineError::Conflict(format!(
                "the evidence chain cannot be exported: {why}; run `ringfence evidence verify` and restore the database from a backup"
            )))
        };
        let store = self.store();
        let Some((_, head_seq, head_hash)) =
            store.chain_heads().await?.into_iter().find(|(c, ..)| c == chain)
        else {
            return refuse("it has no recorded head".into());
        };
        match store.event_at(chain, head_seq).await? {
            Some(e) if e.hash == head_hash => {}
            Some(_) => return refuse(format!("event {head_seq} is not the recorded head")),
            None => return refuse(format!("its recorded head, event {head_seq}, is missing")),
        }
        if store.event_at(chain, head_seq + 1).await?.is_some() {
            return refuse(format!("events follow its recorded head, event {head_seq}"));
        }
        if let Some(c) = store.checkpoint_before(chain, i64::MAX).await? {
            if c.verify(key).is_err() {
                return refuse(format!(
                    "the checkpoint at event {} does not verify against the server's key",
                    c.seq
                ));
            }
            if c.seq > head_seq {
                return refuse(format!(
                    "the server signed event {}, but the chain now ends at event {head_seq}",
                    c.seq
                ));
            }
            if store.event_at(chain, c.seq).await?.is_none_or(|e| e.hash != c.hash) {
                return refuse(format!("event {} is not the event the server signed", c.seq));
            }
        }
        Ok(())
    }

    /// Verifies the caller's partner's chain.
    pub async fn verify_own_chain(&self, p: &Principal) -> Result<proto::ChainVerification> {
        require(p, Permission::ReadEvidence, "verify the evidence log")?;
        require_partner_wide(p, "verify the whole partner's evidence chain")?;
        let chain = p.partner_id.to_string();
        let key = self.evidence_key().await?.verifying_key();
        let (ok, broken) = verify_store(self.store().as_ref(), Some(&chain), Some(&key)).await?;
        Ok(match (ok.first(), broken.first()) {
            (_, Some(b)) => {
                proto::ChainVerification { chain, ok: false, events: 0, problem: Some(b.to_string()) }
            }
            (Some(c), None) => proto::ChainVerification { chain, ok: true, events: c.events, problem: None },
            (None, None) => proto::ChainVerification { chain, ok: true, events: 0, problem: None },
        })
    }
}

/// How many events are read from the store at a time while exporting.
const EXPORT_BATCH: i64 = 5_000;
/// The longest audit window one bundle covers.
const MAX_WINDOW_DAYS: u32 = 400;

/// What an export wrote.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExportSummary {
    pub organization: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: u64,
    pub full: u64,
    pub stubs: u64,
    pub checkpoints: u64,
    pub rows: u64,
    pub key_id: String,
    pub manifest_sha256: String,
    /// Why the bundle has no PDF summary, when it has none.
    pub pdf_note: Option<String>,
}

fn server_key(secret_hex: &str) -> Result<ed25519_dalek::SigningKey> {
    let bytes: [u8; 32] = hex::decode(secret_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| EngineError::Conflict("the server's signing key is not 32 bytes of hex".into()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

impl Engine {
    pub(crate) async fn evidence_key(&self) -> Result<ed25519_dalek::SigningKey> {
        let (secret, _) = self.job_key().await?;
        server_key(&secret)
    }

    /// Signs a checkpoint of the event at `seq` of `chain`, and keeps it.
    pub(crate) async fn checkpoint_at(
        &self,
        key: &ed25519_dalek::SigningKey,
        chain: &str,
        seq: i64,
    ) -> Result<ringfence_evidence::Checkpoint> {
        let e = self.store().event_at(chain, seq).await?.ok_or(EngineError::NotFound("evidence event"))?;
        let c = ringfence_evidence::Checkpoint::sign(key, chain, seq, &e.hash, self.now().as_microsecond());
        self.store().save_checkpoint(&c).await?;
        Ok(c)
    }

    /// Signs the head of every chain that moved since its last checkpoint (run periodically
    /// by the server). Returns how many checkpoints were made.
    pub async fn checkpoint_chains(&self) -> Result<u64> {
        let key = self.evidence_key().await?;
        let mut made = 0;
        for (chain, seq, hash) in self.store().chain_heads().await? {
            if self.store().checkpoint_before(&chain, seq).await?.is_some_and(|c| c.seq == seq) {
                continue;
            }
            let c =
                ringfence_evidence::Checkpoint::sign(&key, &chain, seq, &hash, self.now().as_microsecond());
            self.store().save_checkpoint(&c).await?;
            made += 1;
        }
        Ok(made)
    }

    /// Writes an organization's audit evidence bundle for a window to `out`: its events in
    /// full, the rest of the partner's chain segment as hash-only stubs, the checkpoints that
    /// cover the segment (a fresh one signs its end), the per-vulnerability timeline, the CIS
    /// Control 7 section, a summary (HTML, and PDF when Chromium is there), all under a
    /// signed manifest. The export itself is recorded as an evidence event after the segment.
    pub async fn export_evidence<W: std::io::Write + std::io::Seek>(
        &self,
        p: &Principal,
        q: &proto::EvidenceExportQuery,
        out: W,
    ) -> Result<ExportSummary> {
        require(p, Permission::ReadEvidence, "export evidence")?;
        let scope = p.scope();
        let org_id = OrganizationId::parse(q.organization_id.trim()).map_err(|_| {
            ValueError::new("organization_id", "is not an identifier: use an organization's id")
        })?;
        let org = self.store().get_organization(&scope, &org_id).await?;
        let msp = self.store().get_partner(&Scope::partner(p.partner_id.clone())).await?;
        let now = self.now();
        let to = match q.to.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(t) => crate::reports::parse_bound("to", t)?.min(now),
            None => now,
        };
        let days = q.days.unwrap_or(90);
        if !(1..=MAX_WINDOW_DAYS).contains(&days) {
            return Err(ValueError::new("days", format!("must be 1 to {MAX_WINDOW_DAYS}")).into());
        }
        let from = match q.from.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(f) => crate::reports::parse_bound("from", f)?,
            None => to.checked_sub(jiff::SignedDuration::from_hours(i64::from(days) * 24)).map_err(|_| {
                ValueError::new("to", "is too far in the past for the window: give a date after year 1")
            })?,
        };
        if to <= from {
            return Err(ValueError::new("to", "must be after from").into());
        }
        if to.duration_since(from) > jiff::SignedDuration::from_hours(i64::from(MAX_WINDOW_DAYS) * 24) {
            return Err(ValueError::new(
                "from",
                format!("an audit window is at most {MAX_WINDOW_DAYS} days"),
            )
            .into());
        }
        let chain = p.partner_id.to_string();
        let (lo, hi) = self.store().event_span(&chain, from, to).await?.ok_or_else(|| {
            ValueError::new("from", "the evidence log has no events in that window: choose another window")
        })?;
        let key = self.evidence_key().await?;
        self.check_chain_end(&chain, &key.verifying_key()).await?;
        // The segment starts after the newest checkpoint before the window, so its first link
        // is anchored by a signature made at the time; a chain never checkpointed gets one now.
        let start = match self.store().checkpoint_before(&chain, lo - 1).await? {
            Some(c) if lo > 1 => c.seq + 1,
            _ if lo > 1 => {
                self.checkpoint_at(&key, &chain, lo - 1).await?;
                lo
            }
            _ => 1,
        };
        let end_checkpoint = match self.store().checkpoint_before(&chain, hi).await? {
            Some(c) if c.seq == hi => c,
            _ => self.checkpoint_at(&key, &chain, hi).await?,
        };
        let mut checkpoints: Vec<_> = self.store().list_checkpoints(&chain, start - 1, hi).await?;
        if !checkpoints.iter().any(|c| c.seq == hi) {
            checkpoints.push(end_checkpoint);
        }
        let sla = self.sla_of(&scope, &org_id).await?;
        let header = ringfence_evidence::BundleHeader {
            msp: ringfence_evidence::Party { id: msp.id.to_string(), name: msp.name.to_string() },
            organization: ringfence_evidence::Party { id: org_id.to_string(), name: org.name.to_string() },
            window: ringfence_evidence::Window::new(from.as_microsecond(), to.as_microsecond()),
            generated_at_micros: now.as_microsecond(),
            generated_by: p.actor(),
            chain: chain.clone(),
            sla,
            as_of_micros: to.as_microsecond(),
        };
        let mut w = ringfence_evidence::BundleWriter::new(out, header.clone()).map_err(bundle_err)?;
        // The next batch is read while this one is hashed and written: the store's decoding
        // and the bundle's hashing each take one core.
        let read = |from: i64| {
            let store = self.store().clone();
            let chain = chain.clone();
            tokio::spawn(async move { store.events_between(&chain, from, hi, EXPORT_BATCH).await })
        };
        let mut pending = Some(read(start));
        while let Some(reading) = pending.take() {
            let batch = reading
                .await
                .map_err(|e| EngineError::Conflict(format!("reading the evidence failed: {e}")))??;
            let Some(last) = batch.last() else { break };
            if last.seq < hi {
                pending = Some(read(last.seq + 1));
            }
            for e in &batch {
                w.push(e).map_err(bundle_err)?;
            }
        }
        let tables = w.tables().map_err(bundle_err)?;
        let html = bundle_summary_html(&header, tables, &checkpoints);
        let mut pdf_note = None;
        if q.no_pdf != Some(true) {
            match crate::delivery::find_chromium(self.reports.chromium.as_deref()) {
                Some(chromium) => match crate::delivery::html_to_pdf(&chromium, &html).await {
                    Ok(pdf) => w.add_file("summary.pdf", pdf).map_err(bundle_err)?,
                    Err(e) => pdf_note = Some(e),
                },
                None => {
                    pdf_note =
                        Some("Chromium was not found (install chromium or set reports.chromium)".into())
                }
            }
        } else {
            pdf_note = Some("left out on request".into());
        }
        w.add_file("summary.html", html.into_bytes()).map_err(bundle_err)?;
        let summary = w.finish(&checkpoints, &key).map_err(bundle_err)?;
        let m = &summary.manifest;
        let record = EventRecord {
            action: "evidence.export".into(),
            object_kind: "organization".into(),
            object_id: org_id.to_string(),
            organization_id: Some(org_id.clone()),
            payload: serde_json::json!({
                "from": from, "to": to, "first_seq": m.first_seq, "last_seq": m.last_seq,
                "manifest_sha256": summary.manifest_sha256,
            }),
        };
        self.store().record_event(&self.audit(p), &scope, &record).await?;
        Ok(ExportSummary {
            organization: org.name.to_string(),
            first_seq: m.first_seq,
            last_seq: m.last_seq,
            events: m.counts.events,
            full: m.counts.full,
            stubs: m.counts.stubs,
            checkpoints: m.counts.checkpoints,
            rows: m.counts.rows,
            key_id: m.key_id.clone(),
            manifest_sha256: summary.manifest_sha256.clone(),
            pdf_note,
        })
    }
}

fn bundle_err(e: ringfence_evidence::WriteError) -> EngineError {
    EngineError::Conflict(format!("the evidence bundle could not be written: {e}"))
}

/// The bundle's human-readable summary: the CIS Control 7 section and each CVE's outcome.
fn bundle_summary_html(
    h: &ringfence_evidence::BundleHeader,
    t: &ringfence_evidence::TimelineOutput,
    checkpoints: &[ringfence_evidence::Checkpoint],
) -> String {
    use crate::charts::esc;
    use std::collections::BTreeMap;
    let time = |us: i64| {
        Timestamp::from_microsecond(us).map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
    };
    let mut s = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Audit evidence: {org}</title>
<style>body {{ font-family: sans-serif; margin: 24px; color: #1b1f24; }} table {{ border-collapse: collapse; width: 100%; font-size: 11px; }}
th, td {{ border-bottom: 1px solid #d0d7de; padding: 3px 5px; text-align: left; vertical-align: top; }} h1 {{ font-size: 20px; }} h2 {{ font-size: 15px; margin-top: 20px; }}
.evidenced {{ color: #1a7f37; }} .partial {{ color: #9a6700; }} .not_evidenced {{ color: #b42318; }}</style></head><body>
<h1>Audit evidence: {org}</h1><p>{msp} · audit window {from} – {to} (UTC) · {rows} vulnerability records · chain {chain}</p>"#,
        org = esc(&h.organization.name),
        msp = esc(&h.msp.name),
        from = esc(&h.window.from),
        to = esc(&h.window.to),
        rows = t.rows.len(),
        chain = esc(&h.chain),
    );
    s.push_str("<h2>CIS Controls v8, Control 7: Continuous Vulnerability Management</h2><table><tr><th>Safeguard</th><th>Status</th><th>What shows it</th></tr>");
    for g in &t.cis {
        let evidence: Vec<String> = g
            .evidence
            .iter()
            .map(|e| {
                let seqs: Vec<String> = e.example_seqs.iter().map(|s| format!("#{s}")).collect();
                format!("{}: {} ({})", esc(&e.label), e.count, seqs.join(", "))
            })
            .collect();
        s.push_str(&format!(
            "<tr><td><b>{}</b> {}</td><td class=\"{}\">{}</td><td>{}<br>{}</td></tr>",
            esc(&g.id),
            esc(&g.title),
            g.status.as_str(),
            g.status.as_str().replace('_', " "),
            esc(&g.summary),
            evidence.join("<br>")
        ));
    }
    s.push_str("</table>");
    // Per CVE: devices, remediated, deadlines met and missed.
    let mut per_cve: BTreeMap<&str, (bool, String, u64, u64, u64, u64)> = BTreeMap::new();
    for r in &t.rows {
        let e = per_cve.entry(&r.cve).or_insert_with(|| (r.kev, r.severity.as_str().to_owned(), 0, 0, 0, 0));
        e.2 += 1;
        if r.resolved_at.is_some() {
            e.3 += 1;
        }
        match r.sla_status {
            ringfence_evidence::SlaStatus::Met => e.4 += 1,
            ringfence_evidence::SlaStatus::Breached | ringfence_evidence::SlaStatus::Overdue => e.5 += 1,
            _ => {}
        }
    }
    let mut cves: Vec<_> = per_cve.into_iter().collect();
    cves.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.1.2.cmp(&a.1.2)));
    s.push_str(&format!(
        "<h2>Vulnerabilities ({} CVEs; the full per-device timeline is in vulnerabilities.csv)</h2>\
         <table><tr><th>CVE</th><th>Severity</th><th>Devices</th><th>Remediated</th><th>Deadline met</th><th>Missed or overdue</th></tr>",
        cves.len()
    ));
    for (cve, (kev, sev, devices, resolved, met, missed)) in cves.iter().take(300) {
        s.push_str(&format!(
            "<tr><td>{}{}</td><td>{}</td><td>{devices}</td><td>{resolved}</td><td>{met}</td><td>{missed}</td></tr>",
            esc(cve),
            if *kev { " (KEV)" } else { "" },
            esc(sev)
        ));
    }
    s.push_str("</table>");
    s.push_str("<h2>Signed checkpoints</h2><table><tr><th>Event</th><th>Signed at</th><th>Key</th><th>Hash</th></tr>");
    for c in checkpoints {
        s.push_str(&format!(
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.seq,
            time(c.at_micros),
            esc(&c.key_id),
            esc(&c.hash)
        ));
    }
    s.push_str("</table><p>Verify this bundle offline with <code>ringfence evidence verify --bundle FILE</code>.</p></body></html>");
    s
}

/// Events scanned back at most by one filtered read of the log.
pub const EVENT_SCAN: i64 = 50_000;

/// Which evidence events a reader wants: an action family (`approval`, `deployment`, …),
/// part of the actor, one organization, a time span.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub organization_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl EventFilter {
    pub fn accepts(&self, e: &proto::EvidenceEvent) -> bool {
        let at = e.at.parse::<Timestamp>().ok();
        self.action.as_deref().is_none_or(|a| e.action == a || e.action.starts_with(&format!("{a}.")))
            && self.actor.as_deref().is_none_or(|a| e.actor.to_lowercase().contains(&a.to_lowercase()))
            && self.organization_id.as_deref().is_none_or(|o| e.organization_id.as_deref() == Some(o))
            && self.since.is_none_or(|s| at.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| at.is_some_and(|t| t < u))
    }
}
