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

/// What a job does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobKind {
    /// Install these exact versions.
    Install {
        packages: Vec<PackageVersion>,
    },
    /// Go back to these exact versions and hold them.
    Rollback {
        packages: Vec<PackageVersion>,
    },
    Reboot,
    CollectInventory,
    /// Run the health checks of the device's policy.
    HealthChecks,
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

fn valid_text(field: &str, s: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if s.is_empty() || s.len() > max || !s.chars().all(allowed) {
        return Err(format!(
            "{field} '{}' is empty, too long or has characters a package manager does not use",
            s.chars().take(80).collect::<String>()
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
        if let JobKind::Install { packages } | JobKind::Rollback { packages } = &self.work {
            if packages.is_empty() || packages.len() > MAX_PACKAGES {
                return Err(format!("a job names 1 to {MAX_PACKAGES} packages"));
            }
            for p in packages {
                valid_text("manager", &p.manager, 32, |c| c.is_ascii_lowercase() || c == '_')?;
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
