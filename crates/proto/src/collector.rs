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

/// One target's result. Unknown fields are refused by the flattened [`TargetOutcome`], which
/// receives every field this struct does not name (serde cannot deny them here as well).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
        for end in [r.first, r.last] {
            check_target(end.into()).map_err(|e| format!("range '{s}': {e}"))?;
        }
        // A range from unicast to unicast may still cross the multicast block.
        if u32::from(r.first) < u32::from(Ipv4Addr::new(224, 0, 0, 0))
            && u32::from(r.last) >= u32::from(Ipv4Addr::new(224, 0, 0, 0))
        {
            return Err(format!("range '{s}' crosses into multicast addresses"));
        }
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

/// Addresses a collector never sends to: multicast, broadcast, unspecified and link-local
/// (169.254/16 holds cloud metadata services). Loopback stays allowed, for a collector that
/// polls an SNMP agent on its own host.
pub fn check_target(ip: std::net::IpAddr) -> Result<(), String> {
    // An IPv4 address written as IPv6 (`::ffff:169.254.169.254`, or the old compatible form
    // `::169.254.169.254`) is checked as the IPv4 address packets go to.
    let checked = match ip {
        std::net::IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => {
            v6.to_ipv4().map(std::net::IpAddr::V4).unwrap_or(ip)
        }
        other => other,
    };
    let bad = match checked {
        std::net::IpAddr::V4(v4) => {
            v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.octets()[0] == 0
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if bad {
        return Err(format!(
            "{ip} is a multicast, broadcast, unspecified or link-local address: not an appliance"
        ));
    }
    Ok(())
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
                    let ip = t.address.parse::<std::net::IpAddr>().map_err(|_| {
                        format!(
                            "address '{}' is not an IP address",
                            t.address.chars().take(60).collect::<String>()
                        )
                    })?;
                    // The collector refuses what the server should never have signed.
                    check_target(ip)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check_range(input: &str, expect: Result<(&str, &str, u64), &str>) {
        let got = Ipv4Range::parse(input).map(|r| (r.first.to_string(), r.last.to_string(), r.len()));
        match (got, expect) {
            (Ok((f, l, n)), Ok((ef, el, en))) => {
                assert_eq!((f.as_str(), l.as_str(), n), (ef, el, en), "{input}")
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{input}: {e}"),
            (got, expect) => panic!("{input}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn ranges_parse_as_cidrs_spans_and_single_addresses() {
        check_range("192.0.2.0/24", Ok(("192.0.2.1", "192.0.2.254", 254)));
        check_range(" 10.1.0.0/20 ", Ok(("10.1.0.1", "10.1.15.254", 4094)));
        check_range("192.0.2.8/30", Ok(("192.0.2.9", "192.0.2.10", 2)));
        check_range("192.0.2.8/31", Ok(("192.0.2.8", "192.0.2.9", 2)));
        check_range("192.0.2.7/32", Ok(("192.0.2.7", "192.0.2.7", 1)));
        check_range("192.0.2.10-192.0.2.20", Ok(("192.0.2.10", "192.0.2.20", 11)));
        check_range("192.0.2.10 - 192.0.2.10", Ok(("192.0.2.10", "192.0.2.10", 1)));
        check_range("198.51.100.4", Ok(("198.51.100.4", "198.51.100.4", 1)));
        // Never multicast, broadcast, "this network" or link-local (cloud metadata).
        check_range("0.0.0.0/0", Err("not an appliance"));
        check_range("224.0.0.0/30", Err("not an appliance"));
        check_range("169.254.169.254", Err("not an appliance"));
        // IPv4 written as IPv6 is checked as IPv4.
        let ip = |s: &str| check_target(s.parse().unwrap());
        for bad in [
            "::ffff:169.254.169.254",
            "::ffff:224.0.0.1",
            "::169.254.169.254",
            "::ffff:255.255.255.255",
            "::",
        ] {
            assert!(ip(bad).unwrap_err().contains("not an appliance"), "{bad}");
        }
        for good in ["::ffff:192.0.2.1", "::1", "2001:db8::5", "192.0.2.1"] {
            assert_eq!(ip(good), Ok(()), "{good}");
        }
        check_range("255.255.255.255", Err("not an appliance"));
        check_range("223.255.255.250-224.0.0.5", Err("not an appliance"));
        check_range("223.255.255.0/24", Ok(("223.255.255.1", "223.255.255.254", 254)));
        check_range("192.0.2.1/24", Err("host bits set: did you mean 192.0.2.0/24?"));
        check_range("192.0.2.0/33", Err("is not an IPv4 CIDR"));
        check_range("192.0.2.0/-1", Err("is not an IPv4 CIDR"));
        check_range("192.0.2.20-192.0.2.10", Err("ends before it starts"));
        check_range("2001:db8::/64", Err("is not an IPv4 CIDR"));
        check_range("fw.example.com", Err("is not an IPv4 CIDR"));
        check_range("", Err("is not an IPv4 CIDR"));
        let r = Ipv4Range::parse("192.0.2.8/30").unwrap();
        assert_eq!(r.addresses().map(|a| a.to_string()).collect::<Vec<_>>(), ["192.0.2.9", "192.0.2.10"]);
    }

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn poll_job() -> CollectorJob {
        CollectorJob {
            id: "job-1".into(),
            collector_device_id: "dev-1".into(),
            credentials: vec![CredentialRef {
                id: "cred-1".into(),
                credential: SnmpCredential::V3 {
                    user: "monitor".into(),
                    auth_protocol: AuthProtocol::Sha256,
                    auth_password: "auth-secret-1".into(),
                    priv_protocol: PrivProtocol::Aes128,
                    priv_password: "priv-secret-1".into(),
                },
            }],
            work: CollectorWork::Poll {
                targets: vec![PollTarget {
                    appliance_id: "fw-1".into(),
                    address: "192.0.2.1".into(),
                    port: 161,
                    credential_id: "cred-1".into(),
                }],
            },
            timeout_ms: 2_000,
            retries: 1,
            concurrency: 32,
            issued_at: t("2026-12-06T08:00:00Z"),
            expires_at: t("2026-12-06T08:10:00Z"),
        }
    }

    fn discover(range: &str, rate: u32) -> CollectorJob {
        CollectorJob {
            work: CollectorWork::Discover {
                scan_id: "scan-1".into(),
                range: range.into(),
                port: 161,
                rate_per_sec: rate,
            },
            ..poll_job()
        }
    }

    /// `change` applied to a good job makes `check` fail with a message containing `says`.
    fn refused(change: impl FnOnce(&mut CollectorJob), says: &str) {
        let mut job = poll_job();
        change(&mut job);
        let e = job.check().unwrap_err();
        assert!(e.contains(says), "{e}");
    }

    fn target(job: &mut CollectorJob) -> &mut PollTarget {
        match &mut job.work {
            CollectorWork::Poll { targets } => &mut targets[0],
            CollectorWork::Discover { .. } => unreachable!(),
        }
    }

    #[test]
    fn jobs_with_bad_inputs_are_refused_with_what_is_wrong() {
        poll_job().check().unwrap();
        discover("10.0.0.0/20", MAX_RATE).check().unwrap();
        refused(|j| j.id = "job 1".into(), "id must be");
        refused(|j| target(j).address = "::ffff:169.254.169.254".into(), "not an appliance");
        refused(|j| target(j).address = "224.0.0.1".into(), "not an appliance");
        refused(|j| j.collector_device_id = String::new(), "collector_device_id must be");
        refused(|j| j.credentials.clear(), "1 to 8 credentials");
        refused(
            |j| j.credentials = vec![j.credentials[0].clone(); MAX_CREDENTIALS + 1],
            "1 to 8 credentials",
        );
        refused(
            |j| j.credentials[0].credential = SnmpCredential::V2c { community: String::new() },
            "community must be",
        );
        refused(
            |j| j.credentials[0].credential = SnmpCredential::V2c { community: "pub\nlic".into() },
            "community must be",
        );
        refused(
            |j| {
                if let SnmpCredential::V3 { auth_password, .. } = &mut j.credentials[0].credential {
                    *auth_password = "short".into();
                }
            },
            "auth_password must be 8 to 64",
        );
        refused(|j| j.timeout_ms = 99, "timeout_ms must be");
        refused(|j| j.retries = 6, "retries at most 5");
        refused(|j| j.concurrency = 0, "concurrency 1 to 1024");
        refused(|j| j.expires_at = j.issued_at, "expires_at must be after");
        refused(|j| j.work = CollectorWork::Poll { targets: Vec::new() }, "names 1 to 5000");
        refused(|j| target(j).address = "fw.example.com".into(), "is not an IP address");
        refused(|j| target(j).port = 0, "port must be");
        refused(|j| target(j).credential_id = "cred-2".into(), "names a credential the job does not carry");
        refused(|j| target(j).appliance_id = "../x".into(), "appliance_id must be");
        for (range, rate, says) in [
            ("10.0.0.0/19", 10, "at most 4096"),
            ("10.0.0.1/24", 10, "host bits set"),
            ("10.0.0.0/24", 0, "rate_per_sec must be"),
            ("10.0.0.0/24", MAX_RATE + 1, "rate_per_sec must be"),
        ] {
            let e = discover(range, rate).check().unwrap_err();
            assert!(e.contains(says), "{range} {rate}: {e}");
        }
        assert!(discover("10.0.0.0-10.0.16.0", 10).check().unwrap_err().contains("at most 4096"));
    }

    #[test]
    fn a_signed_job_verifies_only_unchanged_for_its_device_with_the_pinned_key_and_in_time() {
        let secret = "07".repeat(32);
        let public = crate::jobs::public_key(&secret).unwrap();
        let job = poll_job();
        let signed = sign(&job, &secret).unwrap();
        let now = t("2026-12-06T08:05:00Z");
        assert_eq!(verify(&signed, &public, "dev-1", now), Ok(job.clone()));
        assert_eq!(
            verify(&signed, &public, "dev-2", now),
            Err(CollectorRefusal::OtherDevice("dev-1".into()))
        );
        assert_eq!(
            verify(&signed, &public, "dev-1", t("2026-12-06T08:10:00Z")),
            Err(CollectorRefusal::Expired(job.expires_at))
        );
        let other = crate::jobs::public_key(&"09".repeat(32)).unwrap();
        assert_eq!(verify(&signed, &other, "dev-1", now), Err(CollectorRefusal::BadSignature));
        assert_eq!(verify(&signed, "zz", "dev-1", now), Err(CollectorRefusal::BadPinnedKey));
        let tampered = SignedCollectorJob {
            payload: signed.payload.replace("192.0.2.1", "192.0.2.2"),
            ..signed.clone()
        };
        assert_eq!(verify(&tampered, &public, "dev-1", now), Err(CollectorRefusal::BadSignature));
        let cut = SignedCollectorJob { signature: signed.signature[..64].into(), ..signed.clone() };
        assert_eq!(verify(&cut, &public, "dev-1", now), Err(CollectorRefusal::BadSignature));
        // An agent job's signature does not make a collector job (domain separation).
        let as_agent_job =
            crate::jobs::SignedJob { payload: signed.payload.clone(), signature: signed.signature.clone() };
        let agent_view = crate::jobs::verify(&as_agent_job, &public, "dev-1", now);
        assert!(agent_view.is_err());
        // An invalid job is not signed.
        let mut bad = job.clone();
        bad.retries = 9;
        assert!(sign(&bad, &secret).is_err());
    }

    #[test]
    fn reports_round_trip_with_every_outcome_and_refuse_unknown_fields() {
        let at = t("2026-12-06T08:05:00Z");
        let outcomes = [
            TargetOutcome::Ok { credential_id: "cred-1".into(), observation: Observation::default() },
            TargetOutcome::Timeout,
            TargetOutcome::Unreachable { detail: "no route".into() },
            TargetOutcome::AuthFailed { detail: "usmStatsWrongDigests".into() },
            TargetOutcome::Malformed { detail: "cut".into() },
            TargetOutcome::Error { detail: "other".into() },
        ];
        let report = CollectorReport {
            job_id: "job-1".into(),
            results: outcomes
                .into_iter()
                .map(|outcome| PollResult {
                    appliance_id: Some("fw-1".into()),
                    address: "192.0.2.1".into(),
                    port: 161,
                    outcome,
                    at,
                })
                .collect(),
            sweep: None,
        };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<CollectorReport>(&text).unwrap(), report);
        let with_extra = text.replacen("\"port\":161", "\"port\":161,\"extra\":1", 1);
        assert!(serde_json::from_str::<CollectorReport>(&with_extra).is_err());
    }

    #[test]
    fn credentials_never_show_their_secrets_in_debug() {
        let shown = format!("{:?}", poll_job());
        assert!(!shown.contains("secret"), "{shown}");
        let v2c = format!("{:?}", SnmpCredential::V2c { community: "s3cret-community".into() });
        assert!(!v2c.contains("s3cret"), "{v2c}");
    }
}
