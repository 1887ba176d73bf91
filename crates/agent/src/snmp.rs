//! The collector's SNMP client: polls one appliance for its system group and its
//! ENTITY-MIB physical entities ([`poll`]), many appliances at once ([`poll_many`]), and
//! sweeps an address range for appliances that answer one of a job's credentials ([`sweep`]).
//!
//! Every poll is bounded: at most `1 + MAX_WALK_REQUESTS` requests, each waited for at most
//! `timeout` and sent at most `1 + retries` times, and at most
//! [`ringfence_appliance::MAX_ENTITIES`] entity rows, so an agent that loops, repeats itself
//! or never ends its table cannot hold a collector. A sweep never sends more than its rate:
//! every datagram it sends (probes, retries, SNMPv3 engine discovery, and the full poll of an
//! address that answered) takes a slot of one paced schedule.
//!
//! Secrets (communities, SNMPv3 passwords) are handed to the SNMP library and never logged
//! or put in an outcome's detail. Not here: what the observation means (the `appliance`
//! crate) and talking to the server (`collector`).

use async_snmp::{
    Auth, Client, Error, ErrorKind, MasterKeys, Oid, Retry, UdpHandle, UsmConfig, Value, VarBind,
};
use ringfence_appliance::{EntityRow, MAX_ENTITIES, Observation};
use ringfence_proto::collector::{
    AuthProtocol, CollectorJob, CollectorWork, CredentialRef, Ipv4Range, PollResult, PrivProtocol,
    SnmpCredential, SweepSummary, TargetOutcome,
};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// SNMPv2-MIB::sysDescr.0, sysObjectID.0, sysName.0.
const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
const SYS_NAME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];
/// ENTITY-MIB::entPhysicalEntry.
pub const ENT_PHYSICAL_ENTRY: [u32; 11] = [1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1];
/// The entPhysicalTable columns a poll reads: Descr, Class, HardwareRev, FirmwareRev,
/// SoftwareRev, SerialNum, ModelName.
pub const ENTITY_COLUMNS: [u32; 7] = [2, 5, 8, 9, 10, 11, 13];
/// Most GETBULK requests one entity walk sends (64 rows at 4 a request, with room for an
/// agent that trims its answers).
pub const MAX_WALK_REQUESTS: usize = 24;
/// Rows asked for per GETBULK: 7 columns × 4 rows stays well under 1,472 octets.
const WALK_REPETITIONS: u32 = 4;

/// A paced schedule of sends: at most `rate` a second, evenly spaced, with no burst. Shared
/// by every task of a sweep.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// A schedule of `rate_per_sec` sends a second (at least one).
    pub fn new(rate_per_sec: u32) -> Pacer {
        Pacer { interval: Duration::from_secs(1) / rate_per_sec.max(1), next: Mutex::new(Instant::now()) }
    }

    /// Waits for `n` consecutive slots and returns when the last one is due. A send made
    /// after this returns is at least one interval after the previous slot's send.
    pub async fn acquire(&self, n: u32) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let first = (*next).max(now);
            let last = first + self.interval * n.saturating_sub(1);
            *next = last + self.interval;
            last
        };
        tokio::time::sleep_until(at).await;
    }
}

/// How the requests of one poll are sent: the timeout, the retries and, in a sweep, the
/// pacer every datagram waits for.
#[derive(Clone, Copy)]
struct Sending<'a> {
    timeout: Duration,
    retries: u8,
    pacer: Option<&'a Pacer>,
}

/// Polls one appliance. On success the outcome's `credential_id` is empty: the caller that
/// knows the credential's id ([`poll_many`], [`sweep`]) fills it in.
pub async fn poll(addr: SocketAddr, cred: &SnmpCredential, timeout: Duration, retries: u8) -> TargetOutcome {
    let auth = match auth_for(cred) {
        Ok(a) => a,
        Err(o) => return o,
    };
    match observe(addr, auth, Sending { timeout, retries, pacer: None }).await {
        Ok(observation) => TargetOutcome::Ok { credential_id: String::new(), observation },
        Err(o) => o,
    }
}

/// The library's view of a credential. SNMPv3 keys are derived from the passwords here
/// (a megabyte of hashing each), so callers polling many appliances build it once.
fn auth_for(cred: &SnmpCredential) -> Result<Auth, TargetOutcome> {
    match cred {
        SnmpCredential::V2c { community } => Ok(Auth::v2c(community.as_str())),
        SnmpCredential::V3 { user, auth_protocol, auth_password, priv_protocol, priv_password } => {
            let auth_protocol = match auth_protocol {
                AuthProtocol::Sha1 => async_snmp::AuthProtocol::Sha1,
                AuthProtocol::Sha256 => async_snmp::AuthProtocol::Sha256,
                AuthProtocol::Sha512 => async_snmp::AuthProtocol::Sha512,
            };
            let priv_protocol = match priv_protocol {
                PrivProtocol::Aes128 => async_snmp::PrivProtocol::Aes128,
                PrivProtocol::Aes256 => async_snmp::PrivProtocol::Aes256Blumenthal,
            };
            // The library's errors name the protocol or the length, never the password.
            let keys = MasterKeys::new(auth_protocol, auth_password.as_bytes())
                .and_then(|k| k.with_privacy(priv_protocol, priv_password.as_bytes()))
                .map_err(|e| TargetOutcome::Error {
                    detail: format!("the SNMPv3 credential is not usable: {e}"),
                })?;
            let usm = UsmConfig::new(user.clone().into_bytes()).with_master_keys(keys).map_err(|e| {
                TargetOutcome::Error { detail: format!("the SNMPv3 credential is not usable: {e}") }
            })?;
            Ok(Auth::Usm(usm))
        }
    }
}

/// One poll's session with one appliance: its own UDP socket, no library retries (each
/// send goes through [`Session::request`], which counts and paces them).
struct Session<'a> {
    client: Client<UdpHandle>,
    sending: Sending<'a>,
    /// SNMPv3 before the first answer: a request may be preceded by engine discovery, a
    /// second datagram the pacer must count.
    undiscovered_v3: bool,
}

enum Request<'a> {
    Get(&'a [Oid]),
    Bulk(&'a [Oid], u32),
}

impl Session<'_> {
    async fn request(&mut self, request: Request<'_>) -> Result<Vec<VarBind>, Box<Error>> {
        let mut attempt = 0;
        loop {
            if let Some(pacer) = self.sending.pacer {
                pacer.acquire(if self.undiscovered_v3 { 2 } else { 1 }).await;
            }
            let r = match request {
                Request::Get(oids) => self.client.get_many(oids).await.map(|r| r.varbinds),
                Request::Bulk(oids, reps) => self.client.get_bulk(oids, 0, reps).await,
            };
            match r {
                Err(e) if e.kind() == ErrorKind::Timeout && attempt < self.sending.retries => attempt += 1,
                Ok(v) => {
                    self.undiscovered_v3 = false;
                    return Ok(v);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

async fn observe(addr: SocketAddr, auth: Auth, sending: Sending<'_>) -> Result<Observation, TargetOutcome> {
    let v3 = matches!(auth, Auth::Usm(_));
    // SNMPv3 agents refuse a wrong password or an unknown user with an unauthenticated
    // Report (they cannot authenticate to a user they do not share keys with). Accepting it
    // is what tells an operator which of the credential's parts is wrong; what a forged one
    // could do is make a poll fail, which dropping the answer could do as well. The answers
    // that carry data are still authenticated, and only from the target address.
    let client = Client::builder(addr, auth)
        .request_timeout(sending.timeout)
        .retry(Retry::none())
        .allow_unauthenticated_v3_time_correction(v3)
        .strict_source(true)
        .connect()
        .await
        .map_err(|e| outcome_of(&e))?;
    let mut session = Session { client, sending, undiscovered_v3: v3 };
    let system = [Oid::from_slice(&SYS_DESCR), Oid::from_slice(&SYS_OBJECT_ID), Oid::from_slice(&SYS_NAME)];
    let answer = session.request(Request::Get(&system)).await.map_err(|e| outcome_of(&e))?;
    let value = |want: &Oid| answer.iter().find(|vb| &vb.oid == want).map(|vb| &vb.value);
    let sys_descr = match value(&system[0]) {
        Some(Value::OctetString(b)) => text(b),
        _ => return Err(malformed("the answer has no sysDescr.0 text")),
    };
    let sys_object_id = match value(&system[1]) {
        Some(Value::ObjectIdentifier(oid)) => dotted(oid),
        _ => return Err(malformed("the answer has no sysObjectID.0 object identifier")),
    };
    let sys_name = match value(&system[2]) {
        Some(Value::OctetString(b)) => text(b),
        _ => String::new(),
    };
    let entities = walk_entities(&mut session).await?;
    Ok(Observation { sys_descr, sys_object_id, sys_name, entities }.bounded())
}

/// Walks the entity columns side by side with GETBULK, each column from where it got to,
/// until every column has left the table, or the row or request bound is reached (what was
/// read is kept). An agent without ENTITY-MIB answers past the table, or with an exception
/// or an error status: no entities.
async fn walk_entities(session: &mut Session<'_>) -> Result<Vec<EntityRow>, TargetOutcome> {
    let entry = Oid::from_slice(&ENT_PHYSICAL_ENTRY);
    let prefixes: Vec<Oid> = ENTITY_COLUMNS.iter().map(|c| entry.child(*c)).collect();
    let mut cursors = prefixes.clone();
    let mut active = [true; ENTITY_COLUMNS.len()];
    let mut rows: BTreeMap<u32, EntityRow> = BTreeMap::new();
    for _ in 0..MAX_WALK_REQUESTS {
        let columns: Vec<usize> = (0..ENTITY_COLUMNS.len()).filter(|i| active[*i]).collect();
        if columns.is_empty() {
            break;
        }
        let oids: Vec<Oid> = columns.iter().map(|i| cursors[*i].clone()).collect();
        let answer = match session.request(Request::Bulk(&oids, WALK_REPETITIONS)).await {
            Ok(a) => a,
            // A v1-only agent, or one that refuses the table's subtree.
            Err(e) if e.kind() == ErrorKind::Snmp => break,
            Err(e) => return Err(outcome_of(&e)),
        };
        if answer.is_empty() {
            break;
        }
        // GETBULK answers repetition by repetition: the k-th binding continues column
        // `columns[k % columns.len()]`.
        for (k, vb) in answer.iter().enumerate() {
            let col = columns[k % columns.len()];
            if !active[col] {
                continue;
            }
            let index = match vb.oid.strip_prefix(&prefixes[col]).as_ref().map(Oid::arcs) {
                Some([index]) if !is_exception(&vb.value) => *index,
                _ => {
                    active[col] = false;
                    continue;
                }
            };
            if vb.oid <= cursors[col] || (rows.len() >= MAX_ENTITIES && !rows.contains_key(&index)) {
                // Not increasing (a looping agent), or past the row bound.
                active[col] = false;
                continue;
            }
            cursors[col] = vb.oid.clone();
            let row = rows.entry(index).or_insert_with(|| EntityRow { index, ..EntityRow::default() });
            match (ENTITY_COLUMNS[col], &vb.value) {
                (5, Value::Integer(class)) => row.class = Some(*class),
                (column, Value::OctetString(b)) => {
                    let field = match column {
                        2 => &mut row.descr,
                        8 => &mut row.hardware_rev,
                        9 => &mut row.firmware_rev,
                        10 => &mut row.software_rev,
                        11 => &mut row.serial,
                        13 => &mut row.model_name,
                        _ => continue,
                    };
                    *field = text(b);
                }
                // A value of another type than the MIB's: left out.
                _ => {}
            }
        }
    }
    Ok(rows.into_values().collect())
}

fn is_exception(v: &Value) -> bool {
    matches!(v, Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView)
}

/// At most `MAX_TEXT` octets (and a few for a cut character), as lossy UTF-8.
fn text(b: &[u8]) -> String {
    let cut = &b[..b.len().min(ringfence_appliance::MAX_TEXT + 4)];
    String::from_utf8_lossy(cut).into_owned()
}

fn dotted(oid: &Oid) -> String {
    oid.arcs().iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

fn malformed(detail: &str) -> TargetOutcome {
    TargetOutcome::Malformed { detail: detail.into() }
}

/// What an error of the SNMP library means for the target. Details name the failure,
/// never a community or password.
fn outcome_of(e: &Error) -> TargetOutcome {
    use async_snmp::v3::ReportStatus;
    let auth_failed = |d: &str| TargetOutcome::AuthFailed { detail: d.into() };
    match e.exchange_source() {
        Error::Timeout { .. } => TargetOutcome::Timeout,
        Error::Network { source, .. } => {
            let detail = match source.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "the port is closed (ICMP port unreachable)".to_string()
                }
                std::io::ErrorKind::HostUnreachable => "the host is unreachable".to_string(),
                std::io::ErrorKind::NetworkUnreachable => "the network is unreachable".to_string(),
                std::io::ErrorKind::AddrNotAvailable => "the address cannot be reached from here".to_string(),
                _ => return TargetOutcome::Error { detail: format!("network error: {source}") },
            };
            TargetOutcome::Unreachable { detail }
        }
        Error::Report { status, .. } => match status.as_ref() {
            ReportStatus::UnknownUserName { .. } => {
                auth_failed("the device does not know the SNMPv3 user (usmStatsUnknownUserNames)")
            }
            ReportStatus::WrongDigest { .. } => {
                auth_failed("the SNMPv3 authentication password or protocol is wrong (usmStatsWrongDigests)")
            }
            ReportStatus::DecryptionError { .. } => {
                auth_failed("the SNMPv3 privacy password or protocol is wrong (usmStatsDecryptionErrors)")
            }
            ReportStatus::UnknownEngineId { .. } => {
                auth_failed("the device does not accept its own engine id (usmStatsUnknownEngineIDs)")
            }
            ReportStatus::UnsupportedSecurityLevel { .. } => auth_failed(
                "the SNMPv3 user is not configured for authPriv on the device (usmStatsUnsupportedSecLevels)",
            ),
            ReportStatus::NotInTimeWindow { .. } => {
                auth_failed("the device's SNMPv3 clock disagrees (usmStatsNotInTimeWindows)")
            }
            other => TargetOutcome::Error { detail: format!("the device reported: {other}") },
        },
        Error::Auth { .. } => {
            auth_failed("the answer failed SNMPv3 authentication (wrong authentication password?)")
        }
        Error::Decode(d) => TargetOutcome::Malformed { detail: format!("undecodable answer: {d}") },
        Error::MalformedResponse { .. } => malformed("the answer does not match the request"),
        Error::ResponseShape { .. } => malformed("the answer has other bindings than asked for"),
        Error::WalkAborted { reason, .. } => {
            TargetOutcome::Malformed { detail: format!("walk aborted: {reason}") }
        }
        Error::Snmp { status, .. } => {
            TargetOutcome::Error { detail: format!("the device answered {status}") }
        }
        other => TargetOutcome::Error { detail: other.to_string() },
    }
}

/// The job's credentials as the library takes them, each derived once.
fn auths(job: &CollectorJob) -> HashMap<String, Result<Auth, TargetOutcome>> {
    job.credentials.iter().map(|c| (c.id.clone(), auth_for(&c.credential))).collect()
}

/// Polls the targets of a `CollectorWork::Poll` job, at most `job.concurrency` at once: one
/// result per target, in the job's order. Any other work yields nothing.
pub async fn poll_many(job: &CollectorJob) -> Vec<PollResult> {
    let CollectorWork::Poll { targets } = &job.work else {
        return Vec::new();
    };
    let auths = Arc::new(auths(job));
    let timeout = Duration::from_millis(u64::from(job.timeout_ms));
    let permits = Arc::new(tokio::sync::Semaphore::new(job.concurrency.max(1) as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let (t, auths, permits, retries) = (t.clone(), auths.clone(), permits.clone(), job.retries);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = match (t.address.parse::<IpAddr>(), auths.get(&t.credential_id)) {
                (Ok(ip), Some(Ok(auth))) => {
                    let sending = Sending { timeout, retries, pacer: None };
                    match observe(SocketAddr::new(ip, t.port), auth.clone(), sending).await {
                        Ok(observation) => {
                            TargetOutcome::Ok { credential_id: t.credential_id.clone(), observation }
                        }
                        Err(o) => o,
                    }
                }
                (Ok(_), Some(Err(o))) => o.clone(),
                // `CollectorJob::check` refuses both before a job runs.
                (Err(_), _) => TargetOutcome::Error { detail: "the address is not an IP address".into() },
                (_, None) => TargetOutcome::Error { detail: "the job does not carry this credential".into() },
            };
            let result = PollResult {
                appliance_id: Some(t.appliance_id),
                address: t.address,
                port: t.port,
                outcome,
                at: jiff::Timestamp::now(),
            };
            (i, result)
        });
    }
    collect_in_order(tasks, targets.len()).await
}

async fn collect_in_order(mut tasks: tokio::task::JoinSet<(usize, PollResult)>, n: usize) -> Vec<PollResult> {
    let mut results: Vec<Option<PollResult>> = vec![None; n];
    while let Some(done) = tasks.join_next().await {
        // A task only panics on a bug; its target is then missing from the report rather
        // than taking the whole job down.
        if let Ok((i, r)) = done {
            results[i] = Some(r);
        }
    }
    results.into_iter().flatten().collect()
}

/// Sweeps the range of a `CollectorWork::Discover` job: every address of the range (and
/// none outside it) on the job's port, each credential in turn until one answers, at most
/// `job.concurrency` addresses at once and never more than `rate_per_sec` datagrams a second
/// in total, counting retries, SNMPv3 discovery and the poll of an address that answered.
///
/// Results only for addresses that answered: with the credential that worked, or, when none
/// did, with what the device said to the last credential that drew an answer (an SNMPv3
/// refusal, an undecodable answer), so a technician learns a device is there. An address
/// the network cannot reach (no route) is not tried with the other credentials; a closed
/// port is a timeout like any silent address (the library does not report ICMP port
/// unreachable). A job with another kind of work, or an unparsable range, yields nothing.
pub async fn sweep(job: &CollectorJob) -> (Vec<PollResult>, SweepSummary) {
    let started_at = jiff::Timestamp::now();
    let (range, port, rate) = match &job.work {
        CollectorWork::Discover { range, port, rate_per_sec, .. } => match Ipv4Range::parse(range) {
            Ok(r) => (r, *port, *rate_per_sec),
            Err(_) => {
                return (
                    Vec::new(),
                    SweepSummary { probed: 0, answered: 0, started_at, finished_at: started_at },
                );
            }
        },
        CollectorWork::Poll { .. } => {
            return (
                Vec::new(),
                SweepSummary { probed: 0, answered: 0, started_at, finished_at: started_at },
            );
        }
    };
    let pacer = Arc::new(Pacer::new(rate));
    let credentials: Arc<Vec<(CredentialRef, Result<Auth, TargetOutcome>)>> =
        Arc::new(job.credentials.iter().map(|c| (c.clone(), auth_for(&c.credential))).collect());
    let timeout = Duration::from_millis(u64::from(job.timeout_ms));
    let permits = Arc::new(tokio::sync::Semaphore::new(job.concurrency.max(1) as usize));
    let mut tasks = tokio::task::JoinSet::new();
    let addresses: Vec<_> = range.addresses().collect();
    let probed = u32::try_from(addresses.len()).unwrap_or(u32::MAX);
    for (i, ip) in addresses.into_iter().enumerate() {
        let (pacer, credentials, permits, retries) =
            (pacer.clone(), credentials.clone(), permits.clone(), job.retries);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let addr = SocketAddr::new(IpAddr::V4(ip), port);
            let mut answered: Option<TargetOutcome> = None;
            for (c, auth) in credentials.iter() {
                let Ok(auth) = auth else { continue };
                let sending = Sending { timeout, retries, pacer: Some(&pacer) };
                match observe(addr, auth.clone(), sending).await {
                    Ok(observation) => {
                        answered = Some(TargetOutcome::Ok { credential_id: c.id.clone(), observation });
                        break;
                    }
                    Err(o @ (TargetOutcome::AuthFailed { .. } | TargetOutcome::Malformed { .. })) => {
                        answered = Some(o)
                    }
                    Err(TargetOutcome::Unreachable { .. }) => break,
                    Err(_) => {}
                }
            }
            let result = answered.map(|outcome| PollResult {
                appliance_id: None,
                address: ip.to_string(),
                port,
                outcome,
                at: jiff::Timestamp::now(),
            });
            (i, result)
        });
    }
    let mut found: Vec<(usize, PollResult)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, Some(r))) = done {
            found.push((i, r));
        }
    }
    found.sort_by_key(|(i, _)| *i);
    let results: Vec<PollResult> = found.into_iter().map(|(_, r)| r).collect();
    let summary = SweepSummary {
        probed,
        answered: u32::try_from(results.len()).unwrap_or(u32::MAX),
        started_at,
        finished_at: jiff::Timestamp::now(),
    };
    (results, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_sends_by_its_interval_and_counts_batches() {
        let pacer = Pacer::new(10);
        let start = Instant::now();
        let mut at = Vec::new();
        for n in [1, 1, 2, 1] {
            pacer.acquire(n).await;
            at.push(start.elapsed().as_millis());
        }
        assert_eq!(at, vec![0, 100, 300, 400]);
    }
}
