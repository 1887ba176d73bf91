//! The database's health as readiness reports it: checked every few seconds in the
//! background (a read, the free space where an embedded database writes, and a tiny write),
//! so `/readyz` answers at once from the last check, however slow the database is. A change
//! of state is logged once, not on every failing request.

use ringfence_store::{DynStore, StorageFault, StoreError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Below this much free space an embedded database counts as full: its next large write
/// would fail half-way.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// How long one check may wait for a read.
const READ_WAIT: Duration = Duration::from_secs(2);
/// How long one check may wait for its write (other writers go first); a write that only
/// waits changes nothing.
const WRITE_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ready,
    /// Not ready, with the reason an operator reads.
    Failing {
        fault: Option<StorageFault>,
        reason: String,
    },
}

/// How long a storage fault met by a request keeps the server "not ready" when no write
/// has succeeded since (a check's own tiny write may fit where a request's did not). It is
/// short so that a server no client reaches while it is not ready does not stay so.
pub const REQUEST_FAULT_HOLD: Duration = Duration::from_secs(10);

/// A storage fault a request met: put on its response for [`observe`] to see.
#[derive(Clone, Debug)]
pub struct SeenFault {
    pub fault: StorageFault,
    pub detail: String,
}

#[derive(Default)]
pub struct Health {
    last: Mutex<Option<(Instant, Status)>>,
    /// The last storage fault a request met, until a write request succeeds.
    seen: Mutex<Option<(Instant, SeenFault)>>,
}

impl Health {
    /// The last check's answer, if it is younger than `fresh`; a storage fault a request
    /// met since the last successful write, within [`REQUEST_FAULT_HOLD`], counts too.
    pub fn cached(&self, fresh: Duration) -> Option<Status> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let status = last.as_ref().filter(|(at, _)| at.elapsed() <= fresh).map(|(_, s)| s.clone())?;
        if status != Status::Ready {
            return Some(status);
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.as_ref().filter(|(at, _)| at.elapsed() <= REQUEST_FAULT_HOLD) {
            Some((at, f)) => Some(Status::Failing {
                fault: Some(f.fault),
                reason: format!(
                    "{}: a write failed {} s ago ({})",
                    f.fault.describe(),
                    at.elapsed().as_secs(),
                    f.detail
                ),
            }),
            None => Some(Status::Ready),
        }
    }

    fn saw_fault(&self, f: &SeenFault) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_none() {
            tracing::error!(fault = f.fault.as_str(), "a write failed: {}: {}", f.fault.describe(), f.detail);
        }
        *seen = Some((Instant::now(), f.clone()));
    }

    fn saw_write(&self) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.take().is_some() {
            tracing::info!("writes succeed again");
        }
    }

    /// Records a check's answer; logs when the state changed.
    fn record(&self, status: Option<Status>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let Some(status) = status.or_else(|| last.as_ref().map(|(_, s)| s.clone())) else {
            return;
        };
        let before = last.as_ref().map(|(_, s)| s);
        if before != Some(&status) {
            match (&status, before) {
                (Status::Ready, Some(_)) => tracing::info!("the database takes writes again: ready"),
                (Status::Ready, None) => {}
                (Status::Failing { fault, reason }, _) => tracing::error!(
                    fault = fault.map(StorageFault::as_str).unwrap_or("error"),
                    "not ready: {reason}"
                ),
            }
        }
        *last = Some((Instant::now(), status));
    }

    /// Checks the database now and records the answer.
    pub async fn check(&self, store: &DynStore) -> Status {
        let status = check(store).await;
        self.record(status.clone());
        status.unwrap_or_else(|| self.cached(Duration::MAX).unwrap_or(Status::Ready))
    }

    /// Checks every `period` until the task is aborted.
    pub async fn watch(&self, store: DynStore, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.check(&store).await;
        }
    }
}

fn failing(e: &StoreError, what: &str) -> Status {
    let fault = e.fault();
    let reason = match fault {
        Some(f) => format!("{}: {e}", f.describe()),
        None => format!("{what}: {e}"),
    };
    Status::Failing { fault, reason }
}

/// `None` when the check could not tell (the write only waited behind other writers).
async fn check(store: &DynStore) -> Option<Status> {
    match tokio::time::timeout(READ_WAIT, store.ping()).await {
        Err(_) => {
            return Some(Status::Failing {
                fault: Some(StorageFault::Unreachable),
                reason: format!("the database did not answer within {} s", READ_WAIT.as_secs()),
            });
        }
        Ok(Err(e)) => return Some(failing(&e, "the database is not reachable")),
        Ok(Ok(())) => {}
    }
    if let Some(free) = store.free_space()
        && free < MIN_FREE_BYTES
    {
        return Some(Status::Failing {
            fault: Some(StorageFault::DiskFull),
            reason: format!("{} ({} KiB free)", StorageFault::DiskFull.describe(), free / 1024),
        });
    }
    match tokio::time::timeout(WRITE_WAIT, store.probe_write()).await {
        Err(_) => None,
        Ok(Err(e)) => Some(failing(&e, "the database refuses writes")),
        Ok(Ok(())) => Some(Status::Ready),
    }
}

/// Notes, from each response, whether a request met a storage fault or a write succeeded.
pub async fn observe(
    axum::extract::State(health): axum::extract::State<std::sync::Arc<Health>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let response = next.run(req).await;
    if let Some(f) = response.extensions().get::<SeenFault>() {
        health.saw_fault(f);
    } else if writes && response.status().is_success() {
        health.saw_write();
    }
    response
}
