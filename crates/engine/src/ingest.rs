//! Inventory writes, batched. SQLite writes one transaction at a time, and an inventory
//! report touches a page of the title index for nearly every item; written one report per
//! transaction, those pages are written again for every report. So reports that arrive
//! while a batch is being written wait and go together in the next one, each in its own
//! savepoint (a refused report leaves the others). A lone report is written at once.

use crate::{Engine, EngineError, Result};
use ringfence_store::{InventoryOutcome, InventoryWrite, StoreError};
use std::sync::Arc;
use tokio::sync::oneshot;

/// At most this many reports in one transaction.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<std::result::Result<InventoryOutcome, StoreError>>;

#[derive(Default)]
pub(crate) struct Ingest {
    queue: std::sync::Mutex<Vec<(InventoryWrite, Reply)>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl Engine {
    /// Writes one report, in a batch with whatever else is waiting.
    pub(crate) async fn write_inventory(&self, write: InventoryWrite) -> Result<InventoryOutcome> {
        let (reply, mut answer) = oneshot::channel();
        self.ingest.queue.lock().unwrap_or_else(|p| p.into_inner()).push((write, reply));
        // Either a batch in progress or a later one takes this report, or this caller writes
        // what is waiting: whichever comes first. A caller whose report was written by
        // another returns at once instead of queueing for the writer.
        let guard = tokio::select! {
            biased;
            outcome = &mut answer => return finish(outcome),
            guard = self.ingest.writer.clone().lock_owned() => guard,
        };
        let waiting = std::mem::take(&mut *self.ingest.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if waiting.is_empty() {
            drop(guard);
        } else {
            let store = self.store.clone();
            // A task of its own, so that a caller who goes away does not abandon the others.
            let task = tokio::spawn(async move {
                let _guard = guard;
                let mut waiting = waiting;
                while !waiting.is_empty() {
                    let rest = waiting.split_off(waiting.len().min(MAX_BATCH));
                    let (writes, replies): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
                    match store.write_inventories(&writes).await {
                        Ok(outcomes) => {
                            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                                let _ = reply.send(outcome);
                            }
                        }
                        Err(e) => {
                            if e.fault().is_none() {
                                tracing::error!(error = %e, reports = writes.len(), "an inventory batch failed");
                            }
                            for reply in replies {
                                let _ = reply.send(Err(StoreError::Batch(e.to_string(), e.fault())));
                            }
                        }
                    }
                    waiting = rest;
                }
            });
            let _ = task.await;
        }
        finish(answer.await)
    }
}

fn finish(
    outcome: std::result::Result<
        std::result::Result<InventoryOutcome, StoreError>,
        oneshot::error::RecvError,
    >,
) -> Result<InventoryOutcome> {
    match outcome {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(EngineError::Store(StoreError::Batch(
            "the inventory write was interrupted; send the report again".into(),
            None,
        ))),
    }
}
