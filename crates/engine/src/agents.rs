//! Agents: site enrollment tokens, enrollment, and the server's signing key that agents pin.

use crate::auth::{new_secret, secret_hash};
use crate::tenancy::{body_id, path_id};
use crate::{Engine, EngineError, Result, require};
use jiff::SignedDuration;
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::{
    AgentEnrollment, AgentIdentity, AgentState, EnrollRefusal, InventoryOutcome, NewEnrollmentToken,
    ReportSeq,
};

/// A new signing key: (private, public), hex.
pub fn generate_signing_key() -> (String, String) {
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    (hex::encode(key.to_bytes()), hex::encode(key.verifying_key().to_bytes()))
}

/// The public key (hex) of an ed25519 private key given as 64 hex digits.
pub fn signing_public_key(secret_hex: &str) -> std::result::Result<String, String> {
    let bytes: [u8; 32] = hex::decode(secret_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signing key must be 64 hex digits (an ed25519 private key)")?;
    Ok(hex::encode(ed25519_dalek::SigningKey::from_bytes(&bytes).verifying_key().to_bytes()))
}

/// A short, stable name for a public key (hex): its key id, as evidence bundles and
/// checkpoints print it (`ringfence_evidence::key_id`); empty for a string that is no key.
pub fn key_fingerprint(public_hex: &str) -> String {
    hex::decode(public_hex)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .map(|k| ringfence_evidence::key_id(&k))
        .unwrap_or_default()
}

/// A machine-id: 8 to 128 letters, digits, `-` or `{}` (Windows GUIDs).
fn parse_machine_id(s: &str) -> Result<String> {
    let t = s.trim();
    if !(8..=128).contains(&t.len())
        || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '{' | '}'))
    {
        return Err(ValueError::new(
            "machine_id",
            "must be 8 to 128 letters, digits or dashes (e.g. /etc/machine-id)",
        )
        .into());
    }
    Ok(t.to_ascii_lowercase())
}

impl Engine {
    /// The server's public key for agent jobs (hex), created on first use.
    pub async fn server_public_key(&self) -> Result<String> {
        match &self.signing {
            Some(k) => Ok(k.1.clone()),
            None => Ok(self.store.signing_key(&generate_signing_key).await?.1),
        }
    }

    /// The server's signing key, (private, public) hex: from its key file, or the one an
    /// embedded engine keeps in the database.
    pub(crate) async fn job_key(&self) -> Result<(String, String)> {
        if let Some(k) = &self.signing {
            return Ok((k.0.clone(), k.1.clone()));
        }
        let (secret, public) = self.store.signing_key(&generate_signing_key).await?;
        if secret.is_empty() {
            return Err(EngineError::Conflict(
                "the server's signing key is in its key file (signing.key in the data directory, or \
                 RINGFENCE_SIGNING_KEY_FILE), not in the database: run this with the server's data directory"
                    .into(),
            ));
        }
        Ok((secret, public))
    }

    /// Signs a job for an agent with the server's key (the one agents pinned at enrollment).
    pub async fn sign_job(&self, job: &proto::jobs::Job) -> Result<proto::jobs::SignedJob> {
        let (secret, _) = self.job_key().await?;
        proto::jobs::sign(job, &secret).map_err(|e| ValueError::new("job", e).into())
    }

    pub async fn create_enrollment_token(
        &self,
        p: &Principal,
        req: &proto::CreateEnrollmentToken,
    ) -> Result<proto::CreatedEnrollmentToken> {
        require(p, Permission::WriteTenancy, "create enrollment tokens")?;
        let site_id = body_id(SiteId::parse, &req.site_id, "site_id")?;
        let expires_at = match req.expires_in_hours {
            None => None,
            Some(h) if (1..=8760).contains(&h) => Some(self.now() + SignedDuration::from_hours(h)),
            Some(_) => return Err(ValueError::new("expires_in_hours", "must be between 1 and 8760").into()),
        };
        if let Some(m) = req.max_uses
            && !(1..=100_000).contains(&m)
        {
            return Err(ValueError::new("max_uses", "must be between 1 and 100000").into());
        }
        let secret = new_secret("rfe_");
        let new = NewEnrollmentToken {
            site_id,
            name: Name::parse("name", &req.name)?.into_string(),
            token_hash: secret_hash(&secret),
            expires_at,
            max_uses: req.max_uses,
        };
        let token = self.store.create_enrollment_token(&self.audit(p), &p.scope(), &new).await?;
        Ok(proto::CreatedEnrollmentToken { token, secret })
    }

    pub async fn enrollment_tokens(&self, p: &Principal) -> Result<Vec<EnrollmentToken>> {
        require(p, Permission::Read, "list enrollment tokens")?;
        Ok(self.store.list_enrollment_tokens(&p.scope()).await?)
    }

    pub async fn revoke_enrollment_token(&self, p: &Principal, id: &str) -> Result<EnrollmentToken> {
        require(p, Permission::WriteTenancy, "revoke enrollment tokens")?;
        let id = path_id(EnrollmentTokenId::parse, id, "enrollment token")?;
        Ok(self.store.revoke_enrollment_token(&self.audit(p), &p.scope(), &id).await?)
    }

    /// Enrolls a device with a site's token. Every refusal answers the same way, so a
    /// caller cannot probe which tokens exist; the reason is logged.
    pub async fn enroll(&self, req: &proto::EnrollRequest) -> Result<proto::EnrollResponse> {
        let hostname = parse_hostname("hostname", &req.hostname)?;
        let machine_id = parse_machine_id(&req.machine_id)?;
        if req.os.len() > 200 {
            return Err(ValueError::new("os", "is longer than 200 characters").into());
        }
        if req.agent_version.len() > 64 {
            return Err(ValueError::new("agent_version", "is longer than 64 characters").into());
        }
        let credential = new_secret("rfa_");
        let enrollment = AgentEnrollment {
            hostname,
            os: req.os.trim().to_string(),
            machine_id,
            secret_hash: secret_hash(&credential),
        };
        let audit = ringfence_store::Audit::new(format!("agent:{}", enrollment.hostname), self.now());
        match self.store.enroll_device(&audit, &secret_hash(req.token.trim()), &enrollment).await? {
            Ok(enrolled) => {
                if let Some(original) = &enrolled.clone_of {
                    tracing::warn!(device = %enrolled.device.id, %original, "a cloned machine enrolled (same machine-id)");
                }
                Ok(proto::EnrollResponse {
                    device_id: enrolled.device.id.to_string(),
                    credential,
                    server_public_key: self.server_public_key().await?,
                    clone_of: enrolled.clone_of.map(|c| c.to_string()),
                })
            }
            Err(why) => {
                let reason = match why {
                    EnrollRefusal::Unknown => "unknown",
                    EnrollRefusal::Revoked => "revoked",
                    EnrollRefusal::Expired => "expired",
                    EnrollRefusal::UsedUp => "used up",
                };
                tracing::warn!(reason, hostname = %enrollment.hostname, "enrollment refused");
                Err(EngineError::Unauthenticated(
                    "the enrollment token is not valid: it is unknown, revoked, expired or used up; ask for a new one".into(),
                ))
            }
        }
    }
}

/// How often agents check in.
pub const CHECKIN_INTERVAL_SECS: u64 = 60;

/// The longest refusal message kept from a check-in.
const MAX_REFUSAL_BYTES: usize = 500;

impl Engine {
    /// The device an agent credential (`rfa_…`) belongs to.
    pub async fn agent(&self, credential: &str) -> Result<AgentIdentity> {
        self.store.find_agent(&secret_hash(credential.trim())).await?.ok_or_else(|| {
            EngineError::Unauthenticated("unknown agent credential; enroll the device again".into())
        })
    }

    pub async fn agent_checkin(
        &self,
        a: &AgentIdentity,
        req: &proto::CheckIn,
    ) -> Result<proto::CheckInReply> {
        if req.agent_version.len() > 64 {
            return Err(ValueError::new("agent_version", "is longer than 64 characters").into());
        }
        // The agent's own words about a refusal, cut to a length a page can show.
        let refused = req.inventory_refused.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(|r| {
            let mut end = r.len().min(MAX_REFUSAL_BYTES);
            while !r.is_char_boundary(end) {
                end -= 1;
            }
            &r[..end]
        });
        self.store
            .agent_checkin(&a.device_id, self.now(), req.agent_version.trim(), req.reboot_required, refused)
            .await?;
        Ok(proto::CheckInReply {
            inventory_seq: a.inventory_seq,
            checkin_interval_secs: CHECKIN_INTERVAL_SECS,
            collector: self.is_collector(a).await?,
        })
    }

    /// Applies an agent's inventory report once and in order (at most [`MAX_REPORT_JUMP`]
    /// ahead of the last one applied): a report already applied is
    /// acknowledged without effect; a delta that does not follow the last applied report
    /// asks for a full inventory.
    pub async fn agent_inventory(
        &self,
        a: &AgentIdentity,
        r: proto::AgentInventory,
    ) -> Result<proto::InventoryAck> {
        let ack =
            |applied, resync, seq, new_findings| proto::InventoryAck { applied, resync, seq, new_findings };
        if r.seq < 1 {
            return Err(ValueError::new("seq", "must be 1 or more").into());
        }
        // An agent numbers its reports 1, 2, 3…; a number far ahead would freeze the device's
        // inventory behind it.
        if r.seq > a.inventory_seq.saturating_add(MAX_REPORT_JUMP) {
            return Err(ValueError::new(
                "seq",
                format!(
                    "jumps more than {MAX_REPORT_JUMP} past the last report applied ({}): send the next number",
                    a.inventory_seq
                ),
            )
            .into());
        }
        if r.seq <= a.inventory_seq {
            return Ok(ack(false, false, a.inventory_seq, Vec::new()));
        }
        let scope = Scope::organization(a.partner_id.clone(), a.organization_id.clone());
        let is_delta = r.delta.is_some();
        let inv = match (r.full, r.delta) {
            (Some(full), None) => full,
            (None, Some(delta)) => {
                if a.inventory_seq == 0 || r.seq != a.inventory_seq + 1 {
                    return Ok(ack(false, true, a.inventory_seq, Vec::new()));
                }
                let stored = self.store.device_inventory(&scope, &a.device_id).await?;
                delta.apply(stored.items, stored.os)
            }
            _ => return Err(ValueError::new("full", "send exactly one of full and delta").into()),
        };
        let audit = ringfence_store::Audit::new(format!("agent:{}", a.device_id), self.now());
        let seq = ReportSeq { seq: r.seq, delta: is_delta };
        let (write, _) = self.inventory_write(&audit, &scope, &a.device_id, &inv, Some(seq)).await?;
        // The number is checked again in the write: a retry that raced its original is not
        // applied twice.
        Ok(match self.write_inventory(write).await? {
            InventoryOutcome::Applied { findings, .. } => {
                // An installed deployment is verified by the first inventory that shows it. The
                // inventory is stored already: a failure here is retried at the next report.
                if let Err(e) = self.verify_device(&a.partner_id, &a.device_id).await {
                    tracing::warn!(device = %a.device_id, error = %e, "verification after an inventory failed");
                }
                ack(true, false, r.seq, findings.new)
            }
            InventoryOutcome::AlreadyApplied { seq } => ack(false, false, seq, Vec::new()),
            InventoryOutcome::Resync { seq } => ack(false, true, seq, Vec::new()),
        })
    }

    /// What the server knows of a device's agent.
    pub async fn agent_state(&self, p: &Principal, device: &str) -> Result<Option<AgentState>> {
        require(p, Permission::Read, "read devices")?;
        let id = path_id(DeviceId::parse, device, "device")?;
        let mut state = self.store.agent_state(&p.scope(), &id).await?;
        if let Some(s) = &mut state {
            let now = self.now();
            s.online = s.last_seen.is_some_and(|t| {
                (now.as_second() - t.as_second()) as f64 <= self.offline_after.as_secs_f64()
            });
        }
        Ok(state)
    }
}

/// How far ahead of the last applied report an agent's report number may be. An agent
/// counts one per report, and keeps an unsent report instead of numbering a new one.
pub const MAX_REPORT_JUMP: i64 = 10_000;
