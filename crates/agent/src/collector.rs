//! The collector's round: an agent the server made a site's collector (its check-in reply
//! says `collector: true`) asks for collector jobs, verifies each against the server key
//! pinned at enrollment and its own device id, runs it ([`crate::snmp`]) and reports the
//! results. A refused job (bad signature, another device, expired, invalid) is logged with
//! its reason and not run; the server leases it again or lets it go.
//!
//! Collector jobs are not recorded in the jobs ledger: a poll changes nothing on the
//! appliances, so running a re-delivered one again is harmless. Not here: SNMP itself
//! (`snmp`), the heartbeat (`checkin`).

use crate::enroll::AgentConfig;
use ringfence_proto::collector::{
    CollectorJob, CollectorLease, CollectorRefusal, CollectorReport, CollectorReportAck, CollectorWork,
    SignedCollectorJob, verify,
};

/// What became of one leased job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRun {
    /// Run and reported; the server recorded this many results.
    Reported { job_id: String, results: usize, recorded: usize },
    /// Refused before it ran.
    Refused(CollectorRefusal),
}

/// What one collector round did, job by job in lease order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorRound {
    pub jobs: Vec<JobRun>,
}

/// Runs one verified job to its report, on a runtime of its own (the agent is otherwise
/// blocking). Also the entry point for timing a collector in-process.
pub fn run_job(job: &CollectorJob) -> Result<CollectorReport, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the collector's runtime: {e}"))?;
    Ok(rt.block_on(run_job_async(job)))
}

/// [`run_job`] for a caller with a runtime.
pub async fn run_job_async(job: &CollectorJob) -> CollectorReport {
    match &job.work {
        CollectorWork::Poll { .. } => CollectorReport {
            job_id: job.id.clone(),
            results: crate::snmp::poll_many(job).await,
            sweep: None,
        },
        CollectorWork::Discover { .. } => {
            let (results, summary) = crate::snmp::sweep(job).await;
            CollectorReport { job_id: job.id.clone(), results, sweep: Some(summary) }
        }
    }
}

/// Verifies one leased job for this collector at `now`.
pub fn take(
    config: &AgentConfig,
    signed: &SignedCollectorJob,
    now: jiff::Timestamp,
) -> Result<CollectorJob, CollectorRefusal> {
    verify(signed, &config.server_public_key, &config.device_id, now)
}

/// One round against the server: lease, verify, run and report each job in turn. A report
/// the server cannot take fails the round (the server leases the job again later).
pub fn round(config: &AgentConfig) -> Result<CollectorRound, String> {
    let client = crate::checkin::Client::new(config)?;
    let lease = client.post("/api/agent/v1/collector/jobs", &serde_json::json!({}))?;
    let lease: CollectorLease = serde_json::from_value(lease)
        .map_err(|e| format!("the server's collector lease is not readable: {e}"))?;
    let mut round = CollectorRound::default();
    for signed in &lease.jobs {
        let job = match take(config, signed, jiff::Timestamp::now()) {
            Ok(job) => job,
            Err(refusal) => {
                eprintln!("warning: collector job refused: {refusal}");
                round.jobs.push(JobRun::Refused(refusal));
                continue;
            }
        };
        let report = run_job(&job)?;
        let body = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        let ack = client.post("/api/agent/v1/collector/report", &body)?;
        let ack: CollectorReportAck = serde_json::from_value(ack)
            .map_err(|e| format!("the server's answer to the collector report is not readable: {e}"))?;
        round.jobs.push(JobRun::Reported {
            job_id: job.id,
            results: report.results.len(),
            recorded: ack.recorded,
        });
    }
    Ok(round)
}
