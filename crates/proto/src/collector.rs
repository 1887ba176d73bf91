//! The network collector protocol: an enrolled agent at a site polls the site's agentless
//! appliances over SNMP for the server, so the server needs no inbound access to the client
//! network. The server leases a collector a [`CollectorJob`] (poll these appliances, or sweep
//! this range), signed with the same ed25519 key as every agent job but under its own domain
//! separation, so neither can be replayed as the other. SNMP credentials travel only inside
//! a signed job; the server builds the job when the collector asks and never stores it.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use ringfence_appliance::Observation;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

const CONTEXT: &[u8] = b"ringfence-collector-v1\n";
/// Most appliances one poll job names.
pub const MAX_TARGETS: usize = 5_000;
/// Most addresses one discovery sweep may cover (a /20).
pub const MAX_RANGE: u32 = 4_096;
/// Fastest a sweep may probe, in addresses per second.
pub const MAX_RATE: u32 = 1_000;
/// Most credentials one job carries (a sweep tries each in turn).
pub const MAX_CREDENTIALS: usize = 8;

/// SNMPv3 authentication protocols (RFC 3414, RFC 7860).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthProtocol {
    Sha1,
    Sha256,
    Sha512,
}

/// SNMPv3 privacy protocols (RFC 3826 and its 256-bit extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrivProtocol {
    Aes128,
    Aes256,
}

/// How to talk to an appliance. Secrets: kept encrypted by the server, never logged, and
/// redacted by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "version", rename_all = "snake_case", deny_unknown_fields)]
pub enum SnmpCredential {
    V2c {
        community: String,
    },
    /// authPriv only: noAuthNoPriv and authNoPriv send firmware details in the clear.
    V3 {
        user: String,
        auth_protocol: AuthProtocol,
        auth_password: String,
        priv_protocol: PrivProtocol,
        priv_password: String,
    },
}

impl std::fmt::Debug for SnmpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnmpCredential::V2c { .. } => f.write_str("SnmpCredential::V2c { community: <redacted> }"),
            SnmpCredential::V3 { user, auth_protocol, priv_protocol, .. } => write!(
                f,
                "SnmpCredential::V3 {{ user: {user:?}, auth: {auth_protocol:?}, privacy: {priv_protocol:?}, <redacted> }}"
            ),
        }
    }
}

impl SnmpCredential {
    /// `v2c` or `v3`.
    pub fn version(&self) -> &'static str {
        match self {
            SnmpCredential::V2c { .. } => "v2c",
            SnmpCredential::V3 { .. } => "v3",
        }
    }

    /// Checks lengths and characters: a community of 1 to 64 printable characters, a user of
    /// 1 to 32, passwords of 8 to 64 (RFC 3414 needs at least 8).
    pub fn check(&self) -> Result<(), String> {
        let printable = |field: &str, s: &str, min: usize, max: usize| {
            if s.len() < min || s.len() > max || !s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                Err(format!("{field} must be {min} to {max} printable ASCII characters"))
            } else {
                Ok(())
            }
        };
        match self {
            SnmpCredential::V2c { community } => printable("community", community, 1, 64),
            SnmpCredential::V3 { user, auth_password, priv_password, .. } => {
                printable("user", user, 1, 32)?;
                printable("auth_password", auth_password, 8, 64)?;
                printable("priv_password", priv_password, 8, 64)
            }
        }
    }
}

/// A credential named by the server's id for it (results say which one answered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRef {
    pub id: String,
    pub credential: SnmpCredential,
}

/// One appliance to poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollTarget {
    pub appliance_id: String,
    /// An IPv4 or IPv6 address (no names: the collector resolves nothing).
    pub address: String,
    pub port: u16,
    pub credential_id: String,
}

/// What a collector job does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CollectorWork {
    /// Poll these appliances, each with its credential.
    Poll { targets: Vec<PollTarget> },
    /// Probe every address of `range` (an IPv4 CIDR or `first-last`) on `port`, trying each
    /// credential of the job in turn, at most `rate_per_sec` probes a second.
    Discover { scan_id: String, range: String, port: u16, rate_per_sec: u32 },
}

/// One job for one collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectorJob {
    pub id: String,
    /// The collector (an enrolled agent's device) this job is for.
    pub collector_device_id: String,
    pub credentials: Vec<CredentialRef>,
    pub work: CollectorWork,
    /// How long to wait for one answer, and how many times to ask again.
    pub timeout_ms: u32,
    pub retries: u8,
    /// Most appliances polled at once.
    pub concurrency: u32,
    #[schema(value_type = String)]
    pub issued_at: jiff::Timestamp,
    /// After this the collector drops the job unrun; the server leases it again.
    #[schema(value_type = String)]
    pub expires_at: jiff::Timestamp,
}

/// A job as it travels: its JSON text and the server's signature over it (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCollectorJob {
    pub payload: String,
    pub signature: String,
}

/// The answer to a collector's request for work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollectorLease {
    pub jobs: Vec<SignedCollectorJob>,
}

/// What became of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetOutcome {
    Ok {
        credential_id: String,
        #[schema(value_type = Object)]
        observation: Observation,
    },
    /// No answer within the timeout and retries (also how SNMPv2c answers a wrong community).
    Timeout,
    /// The host or port refused (ICMP unreachable), or the address cannot be reached.
    Unreachable {
        detail: String,
    },
    /// SNMPv3 refused the user, the authentication or the privacy keys.
    AuthFailed {
        detail: String,
    },
    /// An answer came but could not be decoded, or lacked sysDescr/sysObjectID.
    Malformed {
        detail: String,
    },
    Error {
        detail: String,
    },
}

impl TargetOutcome {
    /// `ok`, `timeout`, `unreachable`, `auth_failed`, `malformed` or `error`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetOutcome::Ok { .. } => "ok",
            TargetOutcome::Timeout => "timeout",
            TargetOutcome::Unreachable { .. } => "unreachable",
            TargetOutcome::AuthFailed { .. } => "auth_failed",
            TargetOutcome::Malformed { .. } => "malformed",
            TargetOutcome::Error { .. } => "error",
        }
    }
}

/// One target's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollResult {
    /// The appliance polled; none for an address found by a sweep.
    #[serde(default)]
    pub appliance_id: Option<String>,
    pub address: String,
    pub port: u16,
    #[serde(flatten)]
    pub outcome: TargetOutcome,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
}

/// What a sweep did, for the record of its bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSummary {
    pub probed: u32,
    pub answered: u32,
    #[schema(value_type = String)]
    pub started_at: jiff::Timestamp,
    #[schema(value_type = String)]
    pub finished_at: jiff::Timestamp,
}

/// A collector's report of one job. A sweep reports only the addresses that answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectorReport {
    pub job_id: String,
    pub results: Vec<PollResult>,
    #[serde(default)]
    pub sweep: Option<SweepSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollectorReportAck {
    pub recorded: usize,
}

/// An IPv4 range: a CIDR (`192.0.2.0/24`) or `first-last`. Network and broadcast addresses of
/// a CIDR shorter than /31 are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Ipv4Range {
    pub fn parse(s: &str) -> Result<Ipv4Range, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "range '{}' is not an IPv4 CIDR (192.0.2.0/24) or first-last",
                s.chars().take(60).collect::<String>()
            )
        };
        let r = if let Some((net, bits)) = s.split_once('/') {
            let net: Ipv4Addr = net.trim().parse().map_err(|_| bad())?;
            let bits: u32 = bits.trim().parse().map_err(|_| bad())?;
            if bits > 32 {
                return Err(bad());
            }
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            let base = u32::from(net);
            if base & !mask != 0 {
                return Err(format!(
                    "range '{s}' has host bits set: did you mean {}/{bits}?",
                    Ipv4Addr::from(base & mask)
                ));
            }
            let (mut first, mut last) = (base, base | !mask);
            if bits < 31 {
                first += 1;
                last -= 1;
            }
            Ipv4Range { first: first.into(), last: last.into() }
        } else if let Some((a, b)) = s.split_once('-') {
            let first: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
            let last: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
            if u32::from(last) < u32::from(first) {
                return Err(format!("range '{s}' ends before it starts"));
            }
            Ipv4Range { first, last }
        } else {
            let one: Ipv4Addr = s.parse().map_err(|_| bad())?;
            Ipv4Range { first: one, last: one }
        };
        Ok(r)
    }

    /// How many addresses it covers.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

fn id_text(field: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("{field} must be 1 to 64 letters, digits, '-' or '_'"));
    }
    Ok(())
}

impl CollectorJob {
    /// Checks what a signature cannot vouch for: identifiers, addresses, the range's size,
    /// the rate, and that every target's credential is in the job.
    pub fn check(&self) -> Result<(), String> {
        id_text("id", &self.id)?;
        id_text("collector_device_id", &self.collector_device_id)?;
        if self.credentials.is_empty() || self.credentials.len() > MAX_CREDENTIALS {
            return Err(format!("a job carries 1 to {MAX_CREDENTIALS} credentials"));
        }
        for c in &self.credentials {
            id_text("credential id", &c.id)?;
            c.credential.check()?;
        }
        if !(100..=60_000).contains(&self.timeout_ms)
            || self.retries > 5
            || !(1..=1024).contains(&self.concurrency)
        {
            return Err("timeout_ms must be 100 to 60000, retries at most 5, concurrency 1 to 1024".into());
        }
        if self.expires_at <= self.issued_at {
            return Err("expires_at must be after issued_at".into());
        }
        match &self.work {
            CollectorWork::Poll { targets } => {
                if targets.is_empty() || targets.len() > MAX_TARGETS {
                    return Err(format!("a poll job names 1 to {MAX_TARGETS} appliances"));
                }
                for t in targets {
                    id_text("appliance_id", &t.appliance_id)?;
                    t.address.parse::<std::net::IpAddr>().map_err(|_| {
                        format!(
                            "address '{}' is not an IP address",
                            t.address.chars().take(60).collect::<String>()
                        )
                    })?;
                    if t.port == 0 {
                        return Err("port must be 1 to 65535".into());
                    }
                    if !self.credentials.iter().any(|c| c.id == t.credential_id) {
                        return Err(format!(
                            "appliance {} names a credential the job does not carry",
                            t.appliance_id
                        ));
                    }
                }
            }
            CollectorWork::Discover { scan_id, range, port, rate_per_sec } => {
                id_text("scan_id", scan_id)?;
                let r = Ipv4Range::parse(range)?;
                if r.len() > u64::from(MAX_RANGE) {
                    return Err(format!("range {range} has {} addresses; at most {MAX_RANGE}", r.len()));
                }
                if *port == 0 {
                    return Err("port must be 1 to 65535".into());
                }
                if !(1..=MAX_RATE).contains(rate_per_sec) {
                    return Err(format!("rate_per_sec must be 1 to {MAX_RATE}"));
                }
            }
        }
        Ok(())
    }
}

/// Why a collector refused a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CollectorRefusal {
    #[error("the pinned server key is not a valid ed25519 public key: enroll the agent again")]
    BadPinnedKey,
    #[error("the collector job's signature does not verify against the pinned server key: refused")]
    BadSignature,
    #[error("the collector job is not valid: {0}")]
    Invalid(String),
    #[error("the collector job is for device {0}, not this one")]
    OtherDevice(String),
    #[error("the collector job expired at {0}")]
    Expired(jiff::Timestamp),
}

/// Signs a collector job with the server's key (32 bytes, hex).
pub fn sign(job: &CollectorJob, signing_key_hex: &str) -> Result<SignedCollectorJob, String> {
    job.check()?;
    let bytes: [u8; 32] = hex::decode(signing_key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the server's signing key is not 32 bytes of hex")?;
    let payload = serde_json::to_string(job).map_err(|e| e.to_string())?;
    let mut msg = CONTEXT.to_vec();
    msg.extend_from_slice(payload.as_bytes());
    let signature = SigningKey::from_bytes(&bytes).sign(&msg);
    Ok(SignedCollectorJob { payload, signature: hex::encode(signature.to_bytes()) })
}

/// Verifies a signed collector job for `device` at `now` against the pinned key (hex) and
/// returns the job, or why it is refused.
pub fn verify(
    signed: &SignedCollectorJob,
    pinned_key_hex: &str,
    device: &str,
    now: jiff::Timestamp,
) -> Result<CollectorJob, CollectorRefusal> {
    let key: [u8; 32] = hex::decode(pinned_key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(CollectorRefusal::BadPinnedKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| CollectorRefusal::BadPinnedKey)?;
    let sig: [u8; 64] = hex::decode(&signed.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(CollectorRefusal::BadSignature)?;
    let mut msg = CONTEXT.to_vec();
    msg.extend_from_slice(signed.payload.as_bytes());
    key.verify(&msg, &Signature::from_bytes(&sig)).map_err(|_| CollectorRefusal::BadSignature)?;
    let job: CollectorJob =
        serde_json::from_str(&signed.payload).map_err(|e| CollectorRefusal::Invalid(e.to_string()))?;
    job.check().map_err(CollectorRefusal::Invalid)?;
    if job.collector_device_id != device {
        return Err(CollectorRefusal::OtherDevice(job.collector_device_id));
    }
    if job.expires_at <= now {
        return Err(CollectorRefusal::Expired(job.expires_at));
    }
    Ok(job)
}
