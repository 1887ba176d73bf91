//! Agent jobs: typed work the server asks one device to do inside one window, signed with
//! the server's ed25519 key. The signature covers the exact bytes of the job's JSON
//! (`SignedJob::payload`), so nothing is re-encoded before it is checked. The agent accepts a
//! job only when the signature verifies against the key it pinned at enrollment, the job is
//! for its own device, and `now` is inside the job's window. There is no arbitrary command:
//! every kind is one of the variants below, and package names and versions are checked
//! against the characters package managers use.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separation: a signature over a job can never be mistaken for any other signed text.
const CONTEXT: &[u8] = b"ringfence-job-v1\n";
/// Most packages one job may name.
pub const MAX_PACKAGES: usize = 500;

/// One package at one exact version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageVersion {
    /// dpkg, rpm, windows_update, winget, softwareupdate.
    pub manager: String,
    pub name: String,
    pub version: String,
}

/// A check that a device is healthy after a change: the policy's `health_checks`, carried
/// inside the signed job so the agent never runs a check the server did not sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthCheck {
    /// `systemctl is-active UNIT` answers `active`.
    SystemdUnit { unit: String },
    /// A TCP connection to HOST:PORT opens within 5 s.
    Tcp { host: String, port: u16 },
    /// An HTTP GET answers `expect_status` (default: any 2xx) within 10 s.
    Http {
        url: String,
        #[serde(default)]
        expect_status: Option<u16>,
    },
    /// A command (no shell unless the policy names one) exits 0 within `timeout_secs`.
    Command {
        argv: Vec<String>,
        #[serde(default = "default_check_timeout")]
        timeout_secs: u32,
    },
}

fn default_check_timeout() -> u32 {
    30
}

impl HealthCheck {
    /// A short label for logs and the dashboard ("systemd unit nginx.service").
    pub fn label(&self) -> String {
        match self {
            HealthCheck::SystemdUnit { unit } => format!("systemd unit {unit}"),
            HealthCheck::Tcp { host, port } => format!("tcp {host}:{port}"),
            HealthCheck::Http { url, .. } => format!("http {url}"),
            HealthCheck::Command { argv, .. } => format!("command {}", argv.join(" ")),
        }
    }

    /// Checks the fields: unit names and hosts in the characters they use, http(s) URLs,
    /// a bounded command line and timeout.
    pub fn check(&self) -> Result<(), String> {
        match self {
            HealthCheck::SystemdUnit { unit } => valid_text("unit", unit, 256, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':' | '\\')
            }),
            HealthCheck::Tcp { host, port } => {
                valid_text("host", host, 253, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))?;
                if *port == 0 {
                    return Err("port must be 1 to 65535".into());
                }
                Ok(())
            }
            HealthCheck::Http { url, expect_status } => {
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || url.len() > 2_000
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(format!(
                        "url '{}' must be an http:// or https:// URL without spaces",
                        trim80(url)
                    ));
                }
                if let Some(s) = expect_status
                    && !(100..=599).contains(s)
                {
                    return Err(format!("expect_status {s} is not an HTTP status (100 to 599)"));
                }
                Ok(())
            }
            HealthCheck::Command { argv, timeout_secs } => {
                if argv.is_empty() || argv.len() > 64 {
                    return Err("a check command has 1 to 64 arguments".into());
                }
                if argv.iter().any(|a| a.len() > 4_000 || a.contains('\0')) || argv[0].trim().is_empty() {
                    return Err("a check command's arguments are at most 4,000 characters, without NUL, and the first names the program".into());
                }
                if !(1..=600).contains(timeout_secs) {
                    return Err(format!("timeout_secs {timeout_secs} must be 1 to 600"));
                }
                Ok(())
            }
        }
    }
}

/// Most health checks one job may carry.
pub const MAX_CHECKS: usize = 32;

/// What a job does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobKind {
    /// Install these exact versions; reboot inside the window when the system asks for it
    /// and `reboot_allowed`; then run the health checks.
    Install {
        packages: Vec<PackageVersion>,
        #[serde(default)]
        reboot_allowed: bool,
        #[serde(default)]
        health_checks: Vec<HealthCheck>,
    },
    /// Go back to these exact versions and hold them, then run the health checks.
    Rollback {
        packages: Vec<PackageVersion>,
        #[serde(default)]
        health_checks: Vec<HealthCheck>,
    },
    Reboot,
    CollectInventory,
    /// Run these health checks (the device's policy).
    HealthChecks {
        checks: Vec<HealthCheck>,
    },
}

impl JobKind {
    /// `install`, `rollback`, `reboot`, `collect_inventory` or `health_checks`.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Install { .. } => "install",
            JobKind::Rollback { .. } => "rollback",
            JobKind::Reboot => "reboot",
            JobKind::CollectInventory => "collect_inventory",
            JobKind::HealthChecks { .. } => "health_checks",
        }
    }

    /// The health checks the job runs.
    pub fn health_checks(&self) -> &[HealthCheck] {
        match self {
            JobKind::Install { health_checks, .. } | JobKind::Rollback { health_checks, .. } => health_checks,
            JobKind::HealthChecks { checks } => checks,
            JobKind::Reboot | JobKind::CollectInventory => &[],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: String,
    /// The same key on a re-delivered job: the agent runs each key once.
    pub idempotency_key: String,
    pub device_id: String,
    /// The deployment this job belongs to, if any.
    pub deployment_id: Option<String>,
    /// What to do (`{"kind": "install", "packages": [...]}`).
    pub work: JobKind,
    /// The window the job may start in (RFC 3339 UTC).
    #[schema(value_type = String)]
    pub window_start: jiff::Timestamp,
    #[schema(value_type = String)]
    pub window_end: jiff::Timestamp,
    #[schema(value_type = String)]
    pub issued_at: jiff::Timestamp,
}

/// A job as it travels: its JSON text and the server's signature over it (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedJob {
    pub payload: String,
    pub signature: String,
}

/// Why an agent refused a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the pinned server key is not a valid ed25519 public key: enroll the agent again")]
    BadPinnedKey,
    #[error("the job's signature does not verify against the pinned server key: refused")]
    BadSignature,
    #[error("the job is not valid: {0}")]
    Invalid(String),
    #[error("the job is for device {0}, not this one")]
    OtherDevice(String),
    #[error("the job's window starts at {0}: not yet")]
    NotYet(jiff::Timestamp),
    #[error("the job's window ended at {0}: it was missed and will be rescheduled")]
    WindowOver(jiff::Timestamp),
}

fn trim80(s: &str) -> String {
    s.chars().take(80).collect()
}

fn valid_text(field: &str, s: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if s.is_empty() || s.len() > max || !s.chars().all(allowed) {
        return Err(format!(
            "{field} '{}' is empty, too long or has characters a package manager does not use",
            trim80(s)
        ));
    }
    Ok(())
}

impl Job {
    /// Checks the fields a signature cannot vouch for on its own: identifiers, the window and
    /// every package name and version.
    pub fn check(&self) -> Result<(), String> {
        let id = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        valid_text("id", &self.id, 64, id)?;
        valid_text("idempotency_key", &self.idempotency_key, 128, id)?;
        valid_text("device_id", &self.device_id, 64, id)?;
        if let Some(d) = &self.deployment_id {
            valid_text("deployment_id", d, 64, id)?;
        }
        if self.window_end <= self.window_start {
            return Err("window_end must be after window_start".into());
        }
        let checks = self.work.health_checks();
        if checks.len() > MAX_CHECKS {
            return Err(format!("a job carries at most {MAX_CHECKS} health checks"));
        }
        for c in checks {
            c.check()?;
        }
        if let JobKind::Install { packages, .. } | JobKind::Rollback { packages, .. } = &self.work {
            if packages.is_empty() || packages.len() > MAX_PACKAGES {
                return Err(format!("a job names 1 to {MAX_PACKAGES} packages"));
            }
            for p in packages {
                valid_text("manager", &p.manager, 32, |c| c.is_ascii_lowercase() || c == '_')?;
                // A leading '-' would read as an option to the package manager.
                if p.name.starts_with('-') || p.version.starts_with('-') {
                    return Err(format!("package '{}' or its version starts with '-'", trim80(&p.name)));
                }
                valid_text("package", &p.name, 200, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | ':' | '@' | '/')
                })?;
                valid_text("version", &p.version, 200, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '~' | ':' | '_')
                })?;
            }
        }
        Ok(())
    }
}

/// The public key (hex) of a signing key (hex): what agents pin.
pub fn public_key(signing_key_hex: &str) -> Result<String, String> {
    let bytes: [u8; 32] = hex::decode(signing_key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the server's signing key is not 32 bytes of hex")?;
    Ok(hex::encode(SigningKey::from_bytes(&bytes).verifying_key().to_bytes()))
}

/// Signs a job with the server's key (32 bytes, hex).
pub fn sign(job: &Job, signing_key_hex: &str) -> Result<SignedJob, String> {
    job.check()?;
    let bytes: [u8; 32] = hex::decode(signing_key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the server's signing key is not 32 bytes of hex")?;
    let key = SigningKey::from_bytes(&bytes);
    let payload = serde_json::to_string(job).map_err(|e| e.to_string())?;
    let signature = key.sign(&[CONTEXT, payload.as_bytes()].concat());
    Ok(SignedJob { payload, signature: hex::encode(signature.to_bytes()) })
}

/// What the agent does with a job it receives: verify it against the pinned key (hex), then
/// read it, and accept it only for its own device inside its window.
pub fn verify(
    signed: &SignedJob,
    pinned_key_hex: &str,
    device_id: &str,
    now: jiff::Timestamp,
) -> Result<Job, Refusal> {
    let key: [u8; 32] =
        hex::decode(pinned_key_hex).ok().and_then(|b| b.try_into().ok()).ok_or(Refusal::BadPinnedKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| Refusal::BadPinnedKey)?;
    let sig: [u8; 64] =
        hex::decode(&signed.signature).ok().and_then(|b| b.try_into().ok()).ok_or(Refusal::BadSignature)?;
    key.verify(&[CONTEXT, signed.payload.as_bytes()].concat(), &Signature::from_bytes(&sig))
        .map_err(|_| Refusal::BadSignature)?;
    let job: Job = serde_json::from_str(&signed.payload).map_err(|e| Refusal::Invalid(e.to_string()))?;
    job.check().map_err(Refusal::Invalid)?;
    if job.device_id != device_id {
        return Err(Refusal::OtherDevice(job.device_id));
    }
    if now < job.window_start {
        return Err(Refusal::NotYet(job.window_start));
    }
    if now >= job.window_end {
        return Err(Refusal::WindowOver(job.window_end));
    }
    Ok(job)
}

/// How a job ended, as the agent reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// The agent took the job and is running it (a progress report; a final one follows).
    Started,
    /// The agent is rebooting for the job; the final report follows after the reboot.
    Rebooting,
    Succeeded,
    /// Pre-checks, the package manager or a health check failed (`phase` says which).
    Failed,
    /// The agent would not run it (signature, device, window: `detail` says why).
    Refused,
}

/// The result of one health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// The check's label (`HealthCheck::label`).
    pub check: String,
    pub passed: bool,
    #[serde(default)]
    pub detail: String,
}

/// Longest agent log a report may carry; the agent keeps the end of a longer one.
pub const MAX_LOG: usize = 64 * 1024;
/// Longest one-line detail of a report, and of a health check's result and label (bytes; the
/// agent keeps the start of longer ones, with an ellipsis of 3 bytes more).
pub const MAX_DETAIL: usize = 1_000;
pub const CHECK_DETAIL: usize = 500;
pub const CHECK_LABEL: usize = 200;

/// What the agent reports about a job (`POST /api/agent/v1/jobs/report`). Reports are
/// idempotent: the same final report sent twice changes nothing the second time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobReport {
    pub job_id: String,
    pub idempotency_key: String,
    pub outcome: JobOutcome,
    /// Where it ended: `verify`, `precheck`, `install`, `reboot`, `health` or `done`.
    #[serde(default)]
    pub phase: String,
    /// One line: why it failed or was refused.
    #[serde(default)]
    pub detail: String,
    /// The versions of the job's packages after it ran (empty string: not installed).
    #[serde(default)]
    pub installed: Vec<PackageVersion>,
    #[serde(default)]
    pub health: Vec<CheckResult>,
    #[serde(default)]
    pub rebooted: bool,
    /// `/proc/sys/kernel/random/boot_id` when the report was made.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// What the package manager and checks printed (the end of it, at most `MAX_LOG`).
    #[serde(default)]
    pub log: String,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
}

/// The server's answer to a lease request: the jobs this device should run now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLease {
    pub jobs: Vec<SignedJob>,
}

/// The server's answer to a job report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobReportAck {
    /// The report changed the job (false: it had been recorded before).
    pub recorded: bool,
}
