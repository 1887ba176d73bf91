//! Jobs the agent receives: verified against the server key pinned at enrollment, for this
//! device, inside their window, and run at most once per idempotency key. The ledger of
//! keys already taken is kept in `jobs.json` beside the credential, written before a job
//! starts, so a job re-delivered after a lost acknowledgement or a restart is never run twice.

use crate::enroll::AgentConfig;
use ringfence_proto::jobs::{Job, Refusal, SignedJob, verify};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys kept in the ledger; the oldest are dropped beyond this (their windows are long over,
/// so a re-delivery would be refused as outside its window anyway).
const LEDGER_MAX: usize = 10_000;

/// What the agent decided about one delivered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// New: run it.
    Run(Job),
    /// Already taken under this idempotency key: report the earlier result, do not run it.
    Duplicate(String),
    Refused(Refusal),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    /// idempotency key → job id, with the time it was taken (RFC 3339), oldest first by time.
    taken: BTreeMap<String, (String, String)>,
}

#[derive(Debug)]
pub struct Jobs {
    path: PathBuf,
    ledger: Ledger,
}

impl Jobs {
    /// Opens the ledger in the agent's configuration folder; an unreadable ledger is an error
    /// (running jobs without it could run one twice).
    pub fn open(config_dir: &Path) -> Result<Jobs, String> {
        let path = config_dir.join("jobs.json");
        let ledger = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!("{} is not a job ledger ({e}): move it aside to start a new one", path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Jobs { path, ledger })
    }

    /// Decides about one delivered job, and records it in the ledger before it may run.
    pub fn take(
        &mut self,
        config: &AgentConfig,
        signed: &SignedJob,
        now: jiff::Timestamp,
    ) -> Result<Taken, String> {
        let job = match verify(signed, &config.server_public_key, &config.device_id, now) {
            Ok(job) => job,
            Err(r) => return Ok(Taken::Refused(r)),
        };
        if let Some((id, _)) = self.ledger.taken.get(&job.idempotency_key) {
            return Ok(Taken::Duplicate(id.clone()));
        }
        self.ledger.taken.insert(job.idempotency_key.clone(), (job.id.clone(), now.to_string()));
        if self.ledger.taken.len() > LEDGER_MAX {
            let mut by_time: Vec<(String, String)> =
                self.ledger.taken.iter().map(|(k, (_, at))| (at.clone(), k.clone())).collect();
            by_time.sort();
            for (_, k) in by_time.iter().take(self.ledger.taken.len() - LEDGER_MAX) {
                self.ledger.taken.remove(k);
            }
        }
        self.save()?;
        Ok(Taken::Run(job))
    }

    fn save(&self) -> Result<(), String> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string(&self.ledger).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("cannot replace {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringfence_proto::jobs::{JobKind, sign};

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_job_is_taken_once_even_across_restarts_and_refused_when_unsigned_or_late() {
        let dir = std::env::temp_dir().join(format!("ringfence-agent-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("jobs.json"));
        let key = ed25519_dalek_key();
        let config = AgentConfig {
            server: "https://rmm.example".into(),
            device_id: "dev-1".into(),
            credential: "rfa_x".into(),
            server_public_key: key.1.clone(),
        };
        let job = Job {
            id: "job-1".into(),
            idempotency_key: "dep-1-install".into(),
            device_id: "dev-1".into(),
            deployment_id: None,
            work: JobKind::CollectInventory,
            window_start: t("2026-12-06T08:00:00Z"),
            window_end: t("2026-12-06T09:00:00Z"),
            issued_at: t("2026-12-06T07:00:00Z"),
        };
        let signed = sign(&job, &key.0).unwrap();
        let now = t("2026-12-06T08:10:00Z");
        let mut jobs = Jobs::open(&dir).unwrap();
        assert_eq!(jobs.take(&config, &signed, now).unwrap(), Taken::Run(job.clone()));
        assert_eq!(jobs.take(&config, &signed, now).unwrap(), Taken::Duplicate("job-1".into()));
        // After a restart the ledger still knows it.
        let mut again = Jobs::open(&dir).unwrap();
        assert_eq!(again.take(&config, &signed, now).unwrap(), Taken::Duplicate("job-1".into()));
        // Too late, or not signed by the pinned key.
        let mut late = job.clone();
        late.idempotency_key = "dep-2".into();
        let late = sign(&late, &key.0).unwrap();
        assert!(matches!(
            again.take(&config, &late, t("2026-12-06T09:00:00Z")).unwrap(),
            Taken::Refused(Refusal::WindowOver(_))
        ));
        let forged = SignedJob { payload: late.payload.clone(), signature: "00".repeat(64) };
        assert_eq!(again.take(&config, &forged, now).unwrap(), Taken::Refused(Refusal::BadSignature));
        // A corrupt ledger stops the agent from taking jobs rather than risk running one twice.
        std::fs::write(dir.join("jobs.json"), "{not json").unwrap();
        assert!(Jobs::open(&dir).unwrap_err().contains("move it aside"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fixed server key pair: (secret hex, public hex).
    fn ed25519_dalek_key() -> (String, String) {
        let secret = "07".repeat(32);
        let public = ringfence_proto::jobs::public_key(&secret).unwrap();
        (secret, public)
    }
}
