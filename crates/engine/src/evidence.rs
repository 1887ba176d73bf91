//! Reading and verifying the evidence log as it is in the store.

use crate::{Engine, Result, require, require_partner_wide};
use ringfence_evidence::{ChainBreak, ChainVerifier};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::Store;

/// Events are read in batches of this many while verifying.
const BATCH: i64 = 2000;

/// One verified chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOk {
    pub chain: String,
    pub events: i64,
}

/// Verifies every chain in the store (or one): recomputes each event's hash, checks the
/// links and sequence, and compares the end with the recorded head. Stops at the first
/// break of each chain; returns the verified chains and the breaks.
pub async fn verify_store(store: &dyn Store, only: Option<&str>) -> Result<(Vec<ChainOk>, Vec<ChainBreak>)> {
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
        match verify_chain(store, &chain, head_seq, &head_hash).await? {
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
) -> Result<Result<i64, ChainBreak>> {
    let mut v = ChainVerifier::new(chain);
    let mut after = 0;
    loop {
        let batch = store.list_events(chain, None, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if let Err(b) = v.push(e) {
                return Ok(Err(b));
            }
        }
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

    /// The newest events with `seq < before` (all when `before` is absent), newest first.
    pub async fn latest_events(
        &self,
        p: &Principal,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<proto::EvidenceEvent>> {
        require(p, Permission::ReadEvidence, "read the evidence log")?;
        let head = self
            .store()
            .chain_heads()
            .await?
            .into_iter()
            .find(|(c, ..)| c == p.partner_id.as_str())
            .map_or(0, |(_, seq, _)| seq);
        let end = before.unwrap_or(head + 1).clamp(1, head + 1);
        // Scan back far enough to fill a page even when the caller sees only one
        // organization's events among many.
        let mut events = Vec::new();
        let mut upper = end;
        while upper > 1 && (events.len() as i64) < limit {
            let after = upper.saturating_sub(1000).max(1) - 1;
            let q = proto::EventQuery { after: Some(after), limit: Some(1000) };
            let mut batch = self.events(p, &q).await?;
            batch.retain(|e| e.seq < upper);
            batch.reverse();
            events.extend(batch);
            upper = after + 1;
        }
        events.truncate(limit.max(0) as usize);
        Ok(events)
    }

    /// Verifies the caller's partner's chain.
    pub async fn verify_own_chain(&self, p: &Principal) -> Result<proto::ChainVerification> {
        require(p, Permission::ReadEvidence, "verify the evidence log")?;
        require_partner_wide(p, "verify the whole partner's evidence chain")?;
        let chain = p.partner_id.to_string();
        let (ok, broken) = verify_store(self.store().as_ref(), Some(&chain)).await?;
        Ok(match (ok.first(), broken.first()) {
            (_, Some(b)) => {
                proto::ChainVerification { chain, ok: false, events: 0, problem: Some(b.to_string()) }
            }
            (Some(c), None) => proto::ChainVerification { chain, ok: true, events: c.events, problem: None },
            (None, None) => proto::ChainVerification { chain, ok: true, events: 0, problem: None },
        })
    }
}
