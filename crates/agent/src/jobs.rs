//! Jobs the agent receives: verified against the server key pinned at enrollment, for this
//! device, inside their window, run at most once per idempotency key, and reported.
//!
//! The ledger (`jobs.json` beside the credential) keeps, per idempotency key, the job, its
//! state (`running`, `awaiting_reboot` with the boot id before the reboot, `done`) and its
//! final report; an outbox of reports not yet sent; and the times of the reboots jobs asked
//! for (the reboot-loop breaker: at most `MAX_REBOOTS_PER_DAY` in 24 h). A job is recorded
//! before it runs, so a job re-delivered after a lost report or a restart is never run
//! twice: its stored final report is sent again instead (nothing, while it still runs).
//! Reports wait in the outbox while the server is away and go first in the next round, so a
//! job that outlived the connection is still reported, in order.
//!
//! The flow of an install or rollback: verify → record → `Started` (best effort) →
//! pre-checks → package manager → installed versions → reboot when the system asks and the
//! job allows (`Rebooting`, then the rest after the reboot, in the next round) → health
//! checks → final report. Jobs run one at a time, in the agent's only thread: heartbeats
//! pause while a job runs, which the server tolerates (a job's window is far longer than
//! the heartbeat's grace).
//!
//! Not here: how packages are installed (`exec`), the HTTP client and heartbeats (`checkin`).

use crate::enroll::AgentConfig;
use crate::exec::{self, ExecOptions, Failure, append_log, health};
use ringfence_proto::jobs::{
    CheckResult, Job, JobKind, JobLease, JobOutcome, JobReport, MAX_LOG, PackageVersion, Refusal, SignedJob,
    verify,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys kept in the ledger; the oldest are dropped beyond this (their windows are long over,
/// so a re-delivery would be refused as outside its window anyway).
const LEDGER_MAX: usize = 10_000;
/// Reports kept unsent at most; beyond that the oldest go (the server reschedules a job it
/// never heard the end of).
const OUTBOX_MAX: usize = 1_000;
/// Reboots jobs may ask for in 24 hours before the breaker refuses another.
pub const MAX_REBOOTS_PER_DAY: usize = 3;
/// How long after the reboot command a job waits for a new boot before it fails.
const REBOOT_GRACE: Duration = Duration::from_secs(30 * 60);

/// What the agent decided about one delivered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// New: run it.
    Run(Job),
    /// Already taken under this idempotency key: do not run it again.
    Duplicate(Job),
    Refused(Refusal),
}

/// Where a taken job is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// The reboot command ran; the job ends after a boot with another boot id.
    AwaitingReboot {
        boot_id: Option<String>,
        since: jiff::Timestamp,
        installed: Vec<PackageVersion>,
        log: String,
    },
    Done,
}

/// One idempotency key's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub job_id: String,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    #[serde(default)]
    pub job: Option<Job>,
    pub state: JobState,
    #[serde(default)]
    pub report: Option<JobReport>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    #[serde(default)]
    entries: BTreeMap<String, Entry>,
    /// The first ledger format (key → job id and time taken), read so an upgraded agent
    /// keeps the keys it took; written back as `entries`.
    #[serde(default, skip_serializing)]
    taken: BTreeMap<String, (String, String)>,
    #[serde(default)]
    outbox: Vec<JobReport>,
    #[serde(default)]
    reboots: Vec<jiff::Timestamp>,
}

#[derive(Debug)]
pub struct Jobs {
    path: PathBuf,
    ledger: Ledger,
}

/// Sends one report to the server (the HTTP client in a round; a recorder in tests).
pub type Send<'a> = &'a dyn Fn(&JobReport) -> Result<(), String>;

impl Jobs {
    /// Opens the ledger in the agent's configuration folder; an unreadable ledger is an error
    /// (running jobs without it could run one twice).
    pub fn open(config_dir: &Path) -> Result<Jobs, String> {
        let path = config_dir.join("jobs.json");
        let mut ledger: Ledger = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!("{} is not a job ledger ({e}): move it aside to start a new one", path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        for (key, (job_id, taken_at)) in std::mem::take(&mut ledger.taken) {
            ledger.entries.entry(key).or_insert(Entry {
                job_id,
                taken_at,
                job: None,
                state: JobState::Done,
                report: None,
            });
        }
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
        if self.ledger.entries.contains_key(&job.idempotency_key) {
            return Ok(Taken::Duplicate(job));
        }
        self.ledger.entries.insert(
            job.idempotency_key.clone(),
            Entry {
                job_id: job.id.clone(),
                taken_at: now.to_string(),
                job: Some(job.clone()),
                state: JobState::Running,
                report: None,
            },
        );
        if self.ledger.entries.len() > LEDGER_MAX {
            let mut by_time: Vec<(String, String)> =
                self.ledger.entries.iter().map(|(k, e)| (e.taken_at.clone(), k.clone())).collect();
            by_time.sort();
            for (_, k) in by_time.iter().take(self.ledger.entries.len() - LEDGER_MAX) {
                self.ledger.entries.remove(k);
            }
        }
        self.save()?;
        Ok(Taken::Run(job))
    }

    /// The record of an idempotency key.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.ledger.entries.get(key)
    }

    /// Reports waiting to be sent, oldest first.
    pub fn outbox(&self) -> &[JobReport] {
        &self.ledger.outbox
    }

    /// Reboots jobs asked for in the 24 hours before `now`.
    pub fn reboots_in_last_day(&self, now: jiff::Timestamp) -> usize {
        let day = jiff::SignedDuration::from_hours(24);
        self.ledger.reboots.iter().filter(|t| now.duration_since(**t) < day).count()
    }

    fn set_state(&mut self, key: &str, state: JobState) -> Result<(), String> {
        if let Some(e) = self.ledger.entries.get_mut(key) {
            e.state = state;
        }
        self.save()
    }

    /// Queues a report and sends what the outbox holds.
    fn queue(&mut self, report: JobReport, send: Send) -> Result<(), String> {
        self.ledger.outbox.push(report);
        if self.ledger.outbox.len() > OUTBOX_MAX {
            let extra = self.ledger.outbox.len() - OUTBOX_MAX;
            self.ledger.outbox.drain(..extra);
        }
        self.save()?;
        self.flush(send);
        Ok(())
    }

    /// Records a job's final report and queues it.
    fn finish(&mut self, report: JobReport, send: Send) -> Result<(), String> {
        if let Some(e) = self.ledger.entries.get_mut(&report.idempotency_key) {
            e.state = JobState::Done;
            e.report = Some(report.clone());
        }
        self.queue(report, send)
    }

    /// Sends the outbox in order, stopping at the first failure (the rest waits for the next
    /// round). Returns how many were sent.
    pub fn flush(&mut self, send: Send) -> usize {
        let mut sent = 0;
        while let Some(r) = self.ledger.outbox.first() {
            if send(r).is_err() {
                break;
            }
            self.ledger.outbox.remove(0);
            sent += 1;
        }
        if sent > 0
            && let Err(e) = self.save()
        {
            // Sent reports may be sent again after a restart; the server ignores repeats.
            eprintln!("warning: {e}");
        }
        sent
    }

    fn save(&self) -> Result<(), String> {
        let text = serde_json::to_vec(&self.ledger).map_err(|e| e.to_string())?;
        crate::enroll::write_private(&self.path, &text)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// What handling jobs did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// The reports made (final, `Rebooting` and `Refused`; not `Started`).
    pub reports: Vec<JobReport>,
    /// A job ran the package manager or asked for an inventory: collect it again.
    pub changed: bool,
    /// The reboot command ran: take no more jobs this round.
    pub rebooting: bool,
}

impl Handled {
    fn merge(&mut self, other: Handled) {
        self.reports.extend(other.reports);
        self.changed |= other.changed;
        self.rebooting |= other.rebooting;
    }
}

/// 4xx answers that retrying cannot change (401, 408 and 429 can).
fn refused_for_good(status: u16) -> bool {
    (400..500).contains(&status) && ![401, 408, 429].contains(&status)
}

fn one_line(detail: String) -> String {
    exec::keep_start(&detail, ringfence_proto::jobs::MAX_DETAIL)
}

fn report(job: &Job, outcome: JobOutcome, phase: &str, detail: String, opts: &ExecOptions) -> JobReport {
    JobReport {
        job_id: job.id.clone(),
        idempotency_key: job.idempotency_key.clone(),
        outcome,
        phase: phase.into(),
        detail: one_line(detail),
        installed: Vec::new(),
        health: Vec::new(),
        rebooted: false,
        boot_id: exec::boot_id(&opts.root),
        log: String::new(),
        at: jiff::Timestamp::now(),
    }
}

/// The `Refused` report of a job that failed verification, with the id and key read from
/// its unverified payload; `None` when the payload does not even name them.
fn refused_report(signed: &SignedJob, refusal: &Refusal, opts: &ExecOptions) -> Option<JobReport> {
    let v: serde_json::Value = serde_json::from_str(&signed.payload).ok()?;
    let field = |k: &str| v.get(k).and_then(|s| s.as_str()).map(|s| s.chars().take(128).collect::<String>());
    Some(JobReport {
        job_id: field("id")?,
        idempotency_key: field("idempotency_key")?,
        outcome: JobOutcome::Refused,
        phase: "verify".into(),
        detail: refusal.to_string(),
        installed: Vec::new(),
        health: Vec::new(),
        rebooted: false,
        boot_id: exec::boot_id(&opts.root),
        log: String::new(),
        at: jiff::Timestamp::now(),
    })
}

/// Handles one delivered job: refuse, re-send the earlier result, or run it.
pub fn handle(
    jobs: &mut Jobs,
    config: &AgentConfig,
    opts: &ExecOptions,
    signed: &SignedJob,
    now: jiff::Timestamp,
    send: Send,
) -> Result<Handled, String> {
    match jobs.take(config, signed, now)? {
        Taken::Refused(refusal) => {
            let Some(r) = refused_report(signed, &refusal, opts) else {
                eprintln!("warning: refused a job that names no id: {refusal}");
                return Ok(Handled::default());
            };
            jobs.queue(r.clone(), send)?;
            Ok(Handled { reports: vec![r], ..Default::default() })
        }
        Taken::Duplicate(job) => {
            // The final report was lost on its way (or the server asks again): the same
            // report, never a second run. Still running or awaiting a reboot: nothing yet.
            match jobs.entry(&job.idempotency_key).and_then(|e| e.report.clone()) {
                Some(r) => {
                    jobs.queue(r.clone(), send)?;
                    Ok(Handled { reports: vec![r], ..Default::default() })
                }
                None => Ok(Handled::default()),
            }
        }
        Taken::Run(job) => run(jobs, &job, opts, now, send),
    }
}

fn run(
    jobs: &mut Jobs,
    job: &Job,
    opts: &ExecOptions,
    now: jiff::Timestamp,
    send: Send,
) -> Result<Handled, String> {
    // Progress only: a lost Started report changes nothing, so it is not spooled.
    let _ = send(&report(job, JobOutcome::Started, "precheck", String::new(), opts));
    let mut log = String::new();
    match &job.work {
        JobKind::Install { packages, reboot_allowed, health_checks } => {
            packages_job(jobs, job, packages, false, *reboot_allowed, health_checks, opts, now, send)
        }
        // A rollback undoes a bad change: a reboot already pending does not stop it (the
        // pending-reboot pre-check is for new changes), but it never reboots by itself.
        JobKind::Rollback { packages, health_checks } => {
            packages_job(jobs, job, packages, true, false, health_checks, opts, now, send)
        }
        JobKind::Reboot => begin_reboot(jobs, job, Vec::new(), log, opts, now, send),
        JobKind::CollectInventory => {
            let r = report(
                job,
                JobOutcome::Succeeded,
                "done",
                "the inventory is collected and sent in this round".into(),
                opts,
            );
            jobs.finish(r.clone(), send)?;
            Ok(Handled { reports: vec![r], changed: true, rebooting: false })
        }
        JobKind::HealthChecks { checks } => {
            let health = health::run_checks(checks, opts, &mut log);
            let r = conclude(job, Vec::new(), &[], health, false, log, None, opts);
            jobs.finish(r.clone(), send)?;
            Ok(Handled { reports: vec![r], ..Default::default() })
        }
    }
}

/// The final report of a job whose package step (if any) is done: `Succeeded` only when
/// every package is at its target and every check passed.
#[allow(clippy::too_many_arguments)]
fn conclude(
    job: &Job,
    installed: Vec<PackageVersion>,
    targets: &[PackageVersion],
    health: Vec<CheckResult>,
    rebooted: bool,
    log: String,
    note: Option<String>,
    opts: &ExecOptions,
) -> JobReport {
    let failed: Vec<&CheckResult> = health.iter().filter(|c| !c.passed).collect();
    let (outcome, phase, detail) = if let Some(m) = exec::version_mismatch(targets, &installed) {
        (JobOutcome::Failed, "install", m)
    } else if let Some(first) = failed.first() {
        let more = if failed.len() > 1 { format!(" (and {} more)", failed.len() - 1) } else { String::new() };
        (JobOutcome::Failed, "health", format!("health check {} failed: {}{more}", first.check, first.detail))
    } else {
        (JobOutcome::Succeeded, "done", note.unwrap_or_default())
    };
    let mut r = report(job, outcome, phase, detail, opts);
    r.installed = installed;
    r.health = health;
    r.rebooted = rebooted;
    r.log = exec::keep_end(&log, MAX_LOG);
    r
}

#[allow(clippy::too_many_arguments)]
fn packages_job(
    jobs: &mut Jobs,
    job: &Job,
    packages: &[PackageVersion],
    rollback: bool,
    reboot_allowed: bool,
    checks: &[ringfence_proto::jobs::HealthCheck],
    opts: &ExecOptions,
    now: jiff::Timestamp,
    send: Send,
) -> Result<Handled, String> {
    let fail = |jobs: &mut Jobs, f: Failure, installed: Vec<PackageVersion>, log: String, changed: bool| {
        let mut r = report(job, JobOutcome::Failed, f.phase, f.detail, opts);
        r.installed = installed;
        r.log = exec::keep_end(&log, MAX_LOG);
        jobs.finish(r.clone(), send)?;
        Ok(Handled { reports: vec![r], changed, rebooting: false })
    };
    let mut managers: Vec<&str> = packages.iter().map(|p| p.manager.as_str()).collect();
    managers.dedup();
    if let Err(f) = exec::prechecks(opts, &managers, reboot_allowed || rollback) {
        return fail(jobs, f, exec::current_versions(packages, opts), String::new(), false);
    }
    let run = exec::apply_packages(packages, rollback, opts);
    let mut log = run.log;
    if let Some(f) = run.failure {
        return fail(jobs, f, run.installed, log, true);
    }
    if exec::reboot_required(&opts.root) {
        if reboot_allowed {
            let mut h = begin_reboot(jobs, job, run.installed, log, opts, now, send)?;
            h.changed = true;
            return Ok(h);
        }
        append_log(&mut log, "the system asks for a reboot; this job may not reboot");
    }
    let health = health::run_checks(checks, opts, &mut log);
    let note = exec::reboot_required(&opts.root)
        .then(|| "installed; a reboot is required and was not allowed".to_string());
    let r = conclude(job, run.installed, packages, health, false, log, note, opts);
    jobs.finish(r.clone(), send)?;
    Ok(Handled { reports: vec![r], changed: true, rebooting: false })
}

/// Records "awaiting reboot", reports `Rebooting` and runs the reboot command, unless the
/// breaker has seen too many job reboots today.
fn begin_reboot(
    jobs: &mut Jobs,
    job: &Job,
    installed: Vec<PackageVersion>,
    mut log: String,
    opts: &ExecOptions,
    now: jiff::Timestamp,
    send: Send,
) -> Result<Handled, String> {
    let key = job.idempotency_key.as_str();
    let recent = jobs.reboots_in_last_day(now);
    if recent >= MAX_REBOOTS_PER_DAY {
        let mut r = report(
            job,
            JobOutcome::Failed,
            "reboot",
            format!(
                "reboot-loop breaker: jobs rebooted this device {recent} times in the last 24 hours; not rebooting again (check why it keeps asking, then reboot by hand)"
            ),
            opts,
        );
        r.installed = installed;
        r.log = exec::keep_end(&log, MAX_LOG);
        jobs.finish(r.clone(), send)?;
        return Ok(Handled { reports: vec![r], ..Default::default() });
    }
    let boot_id = exec::boot_id(&opts.root);
    jobs.ledger.reboots.push(now);
    jobs.ledger.reboots.retain(|t| now.duration_since(*t) < jiff::SignedDuration::from_hours(24));
    jobs.set_state(
        key,
        JobState::AwaitingReboot { boot_id, since: now, installed: installed.clone(), log: log.clone() },
    )?;
    let mut rebooting = report(job, JobOutcome::Rebooting, "reboot", String::new(), opts);
    rebooting.installed = installed.clone();
    // Queued and sent before the command: the server must know why the device goes away.
    jobs.queue(rebooting.clone(), send)?;
    append_log(&mut log, &format!("$ {}", opts.reboot_command.join(" ")));
    let result = exec::run_command(&opts.reboot_command, &[], Duration::from_secs(120));
    let failed = match &result {
        Ok(r) if r.success() => None,
        Ok(r) => Some(format!("exit {:?}: {}", r.code, r.output.lines().last().unwrap_or("").trim())),
        Err(e) => Some(e.clone()),
    };
    if let Some(why) = failed {
        let mut r = report(
            job,
            JobOutcome::Failed,
            "reboot",
            format!(
                "the reboot command '{}' failed ({why}): fix --reboot-command",
                opts.reboot_command.join(" ")
            ),
            opts,
        );
        r.installed = installed;
        r.log = exec::keep_end(&log, MAX_LOG);
        jobs.finish(r.clone(), send)?;
        return Ok(Handled { reports: vec![rebooting, r], ..Default::default() });
    }
    Ok(Handled { reports: vec![rebooting], changed: false, rebooting: true })
}

/// Finishes what an earlier run left: jobs awaiting a reboot that has happened (another boot
/// id) run their health checks and report with `rebooted: true`; a reboot that did not come
/// within the grace fails; a job left `running` by a stopped agent fails with what is
/// installed now (jobs run one at a time, so none runs while a round starts).
pub fn resume(
    jobs: &mut Jobs,
    opts: &ExecOptions,
    now: jiff::Timestamp,
    send: Send,
) -> Result<Handled, String> {
    let mut out = Handled::default();
    let open: Vec<(String, Entry)> = jobs
        .ledger
        .entries
        .iter()
        .filter(|(_, e)| e.state != JobState::Done)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    for (key, entry) in open {
        let Some(job) = entry.job else {
            jobs.set_state(&key, JobState::Done)?;
            continue;
        };
        let targets: Vec<PackageVersion> = match &job.work {
            JobKind::Install { packages, .. } | JobKind::Rollback { packages, .. } => packages.clone(),
            _ => Vec::new(),
        };
        match entry.state {
            JobState::Running => {
                let mut r = report(
                    &job,
                    JobOutcome::Failed,
                    "install",
                    "the agent stopped while the job ran (restart or crash): the installed versions are as reported".into(),
                    opts,
                );
                r.installed = exec::current_versions(&targets, opts);
                jobs.finish(r.clone(), send)?;
                out.reports.push(r);
                out.changed = true;
            }
            JobState::AwaitingReboot { boot_id, since, installed: _, mut log } => {
                let now_boot = exec::boot_id(&opts.root);
                if now_boot.is_some() && now_boot != boot_id {
                    let installed = exec::current_versions(&targets, opts);
                    let health = health::run_checks(job.work.health_checks(), opts, &mut log);
                    let r = conclude(&job, installed, &targets, health, true, log, None, opts);
                    jobs.finish(r.clone(), send)?;
                    out.reports.push(r);
                    out.changed = true;
                } else if now.duration_since(since)
                    > jiff::SignedDuration::try_from(REBOOT_GRACE).unwrap_or_default()
                {
                    let mut r = report(
                        &job,
                        JobOutcome::Failed,
                        "reboot",
                        format!(
                            "the device did not reboot within {} minutes of the reboot command: check --reboot-command",
                            REBOOT_GRACE.as_secs() / 60
                        ),
                        opts,
                    );
                    r.installed = exec::current_versions(&targets, opts);
                    r.log = exec::keep_end(&log, MAX_LOG);
                    jobs.finish(r.clone(), send)?;
                    out.reports.push(r);
                } else {
                    out.rebooting = true;
                }
            }
            JobState::Done => {}
        }
    }
    Ok(out)
}

/// Holds `jobs.lock` in the configuration folder for a round: two agents (the service and a
/// `run --once` by hand) must not run jobs at once, and `resume` takes a job it finds
/// `running` for one a stopped agent left behind.
fn lock_rounds(dir: &Path) -> Result<std::fs::File, String> {
    let path = dir.join("jobs.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock(2) on a descriptor this function owns; released when `f` is dropped.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "another ringfence-agent is running jobs (it holds {}): let it finish, or stop it first",
                path.display()
            ));
        }
    }
    Ok(f)
}

/// What one jobs round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobsRound {
    pub handled: Handled,
    /// Reports still waiting for the server.
    pub unsent: usize,
}

/// One jobs round against the server: send the outbox, finish jobs awaiting a reboot, lease
/// the device's due jobs and run them one by one. A server that cannot be reached leaves
/// everything in the ledger for the next round.
pub fn round(dir: &Path, config: &AgentConfig, opts: &ExecOptions) -> Result<JobsRound, String> {
    let _lock = lock_rounds(dir)?;
    let client = crate::checkin::Client::new(config)?;
    let send = |r: &JobReport| -> Result<(), String> {
        let body = serde_json::to_value(r).map_err(|e| e.to_string())?;
        match client.post_status("/api/agent/v1/jobs/report", &body) {
            Ok(_) => Ok(()),
            // A report the server refuses for what it says (not for who sent it, nor for load)
            // would never go through: it is dropped, so the reports behind it are not stuck.
            Err((Some(status), e)) if refused_for_good(status) => {
                eprintln!("warning: the server refused the report of job {}: {e}; it is dropped", r.job_id);
                Ok(())
            }
            Err((_, e)) => Err(e),
        }
    };
    let mut jobs = Jobs::open(dir)?;
    jobs.flush(&send);
    let mut handled = resume(&mut jobs, opts, jiff::Timestamp::now(), &send)?;
    if !handled.rebooting {
        let lease = client.post("/api/agent/v1/jobs", &serde_json::json!({}))?;
        let lease: JobLease = serde_json::from_value(lease)
            .map_err(|e| format!("the server's job lease is not readable: {e}"))?;
        for signed in &lease.jobs {
            let h = handle(&mut jobs, config, opts, signed, jiff::Timestamp::now(), &send)?;
            let stop = h.rebooting;
            handled.merge(h);
            if stop {
                break;
            }
        }
    }
    Ok(JobsRound { handled, unsent: jobs.outbox().len() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_refused_for_what_they_say_are_dropped_and_long_details_are_cut() {
        for status in [400, 404, 409, 413, 422] {
            assert!(super::refused_for_good(status), "{status}");
        }
        for status in [401, 408, 429, 500, 502, 503] {
            assert!(!super::refused_for_good(status), "{status} is worth retrying");
        }
        let long = super::one_line("é".repeat(2_000));
        assert!(long.len() <= ringfence_proto::jobs::MAX_DETAIL + 3 && long.ends_with('…'), "{}", long.len());
        assert_eq!(super::one_line("short".into()), "short");
    }

    use super::*;
    use ringfence_proto::jobs::sign;

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
        assert_eq!(jobs.take(&config, &signed, now).unwrap(), Taken::Duplicate(job.clone()));
        // After a restart the ledger still knows it.
        let mut again = Jobs::open(&dir).unwrap();
        assert_eq!(again.take(&config, &signed, now).unwrap(), Taken::Duplicate(job.clone()));
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
        // The first ledger format is still read: its keys stay taken.
        std::fs::write(
            dir.join("jobs.json"),
            r#"{"taken":{"dep-1-install":["job-1","2026-12-06T08:10:00Z"]}}"#,
        )
        .unwrap();
        let mut old = Jobs::open(&dir).unwrap();
        assert_eq!(old.take(&config, &signed, now).unwrap(), Taken::Duplicate(job.clone()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fixed server key pair: (secret hex, public hex).
    fn ed25519_dalek_key() -> (String, String) {
        let secret = "07".repeat(32);
        let public = ringfence_proto::jobs::public_key(&secret).unwrap();
        (secret, public)
    }
}
