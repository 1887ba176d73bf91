//! Talking to the server after enrollment: heartbeats (with the boot id) and inventory
//! reports, and the loop that also runs the jobs round (`jobs::round`) after them.
//!
//! The agent keeps, in `state.json` beside its credential, the last inventory the server
//! acknowledged and at most one report in flight. A report is the whole inventory (first
//! contact, or when the server asks for a resync) or the delta from the acknowledged one,
//! numbered `acknowledged + 1`. While the server is unreachable the report stays pending and
//! is sent again, unchanged, until acknowledged; later changes wait and go in the next delta,
//! computed against what the server has. So the spool is bounded (one report and one
//! snapshot), nothing is lost and nothing is applied twice (the server ignores a number it
//! has applied).

use crate::Report;
use crate::enroll::AgentConfig;
use crate::exec::ExecOptions;
use ringfence_inventory::{Inventory, Item};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub acked_seq: i64,
    pub acked: Option<Inventory>,
    pub pending: Option<Pending>,
    /// A digest of the pending-updates list the server last acknowledged.
    #[serde(default)]
    pub updates_digest: Option<String>,
    /// The last inventory report the server refused as it stands (too large, invalid):
    /// not sent again until the machine's software changes, and told at every check-in.
    #[serde(default)]
    pub refused: Option<Refusal>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Refusal {
    /// A digest of the inventory the refused report would have left on the server.
    pub inventory: String,
    /// The server's answer.
    pub message: String,
    /// When (seconds since 1970): the same report is tried again a day later, in case the
    /// server changed.
    #[serde(default)]
    pub at: u64,
}

/// How long a refused report is not sent again unchanged.
const REFUSAL_HOLD_SECS: u64 = 24 * 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A digest of an inventory, to tell whether it changed since a refusal.
fn inventory_digest(inv: &Inventory) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(inv).unwrap_or_default().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Request bodies above this size are sent gzip-compressed (inventory reports only).
pub const COMPRESS_ABOVE: usize = 64 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    pub seq: i64,
    pub body: serde_json::Value,
    /// The inventory the server holds once this report is applied.
    pub after: Inventory,
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub fn load_state(dir: &Path) -> State {
    std::fs::read_to_string(state_path(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_state(dir: &Path, s: &State) -> Result<(), String> {
    let bytes = serde_json::to_vec(s).map_err(|e| e.to_string())?;
    crate::enroll::write_private(&state_path(dir), &bytes)
        .map_err(|e| format!("cannot save the agent state: {e}"))
}

/// The delta from `old` to `new`, or `None` when nothing changed.
pub fn delta(old: &Inventory, new: &Inventory) -> Option<serde_json::Value> {
    let old_set: HashSet<&Item> = old.items.iter().collect();
    let new_set: HashSet<&Item> = new.items.iter().collect();
    let removed: Vec<&Item> = old.items.iter().filter(|i| !new_set.contains(i)).collect();
    let added: Vec<&Item> = new.items.iter().filter(|i| !old_set.contains(i)).collect();
    let os_changed = old.os != new.os;
    if removed.is_empty() && added.is_empty() && !os_changed {
        return None;
    }
    let mut d = serde_json::json!({ "added": added, "removed": removed });
    if os_changed {
        d["os"] = serde_json::to_value(&new.os).unwrap_or_default();
    }
    Some(d)
}

/// The agent's HTTP client: posts JSON with the device credential.
pub(crate) struct Client {
    http: reqwest::blocking::Client,
    config: AgentConfig,
}

impl Client {
    pub(crate) fn new(config: &AgentConfig) -> Result<Client, String> {
        Ok(Client {
            http: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            config: config.clone(),
        })
    }

    pub(crate) fn post(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
        self.post_status(path, body).map_err(|(_, e)| e)
    }

    /// Like `post`, with the HTTP status of a refusal (`None` when the server was not reached
    /// or its answer was cut off).
    pub(crate) fn post_status(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        self.send(path, body, false)
    }

    /// Posts an inventory report, gzip-compressed when it is large (the server takes
    /// `Content-Encoding: gzip` on its inventory routes).
    pub(crate) fn post_inventory(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        self.send(path, body, true)
    }

    fn send(
        &self,
        path: &str,
        body: &serde_json::Value,
        may_compress: bool,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        use std::io::Write;
        let url = format!("{}{path}", self.config.server);
        let json = serde_json::to_vec(body).map_err(|e| (None, format!("cannot encode the request: {e}")))?;
        let mut request = self
            .http
            .post(&url)
            .bearer_auth(&self.config.credential)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        request = if may_compress && json.len() > COMPRESS_ABOVE {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&json).map_err(|e| (None, format!("cannot compress the request: {e}")))?;
            let packed = gz.finish().map_err(|e| (None, format!("cannot compress the request: {e}")))?;
            request.header(reqwest::header::CONTENT_ENCODING, "gzip").body(packed)
        } else {
            request.body(json)
        };
        let r = request.send().map_err(|e| (None, format!("cannot reach {}: {e}", self.config.server)))?;
        let status = r.status();
        let text = r.text().map_err(|e| (None, format!("the answer from {url} was cut off: {e}")))?;
        if !status.is_success() {
            return Err((Some(status.as_u16()), format!("{url} answered {status}: {text}")));
        }
        serde_json::from_str(&text)
            .map_err(|e| (Some(status.as_u16()), format!("{url} answered something else than JSON: {e}")))
    }
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: Option<i64>,
    pub applied: bool,
    /// The server asked this device to run a collector round (it is its site's collector).
    pub collector: bool,
}

/// One round: heartbeat (with the kernel's boot id, so the server sees reboots), then the
/// pending report or a new one if the inventory changed. On a network failure the report
/// stays pending in the state for the next round.
pub fn round(
    dir: &Path,
    config: &AgentConfig,
    report: &Report,
    boot_id: Option<&str>,
) -> Result<Round, String> {
    let client = Client::new(config)?;
    let mut state = load_state(dir);
    let current = report.inventory.clone();
    let result = (|| {
        let reply = client.post(
            "/api/agent/v1/checkin",
            &serde_json::json!({
                "agent_version": env!("CARGO_PKG_VERSION"),
                "reboot_required": report.reboot_required,
                "boot_id": boot_id,
                "inventory_refused": state.refused.as_ref().map(|r| &r.message),
            }),
        )?;
        let server_seq = reply["inventory_seq"].as_i64().unwrap_or(0);
        if let Some(p) = &state.pending
            && server_seq >= p.seq
        {
            // The report went through before; its acknowledgement was lost.
            state.acked = Some(p.after.clone());
            state.acked_seq = p.seq;
            state.pending = None;
        }
        if server_seq < state.acked_seq || (server_seq == 0 && state.acked.is_some()) {
            // The server lost what it had (a restore): start over with a full report.
            state.acked = None;
            state.acked_seq = server_seq;
            state.pending = None;
        }
        let mut round = Round { collector: reply["collector"].as_bool() == Some(true), ..Round::default() };
        for _ in 0..2 {
            if state.pending.is_none() {
                let seq = state.acked_seq + 1;
                let body = match &state.acked {
                    None => Some(serde_json::json!({ "seq": seq, "full": &current })),
                    Some(acked) => {
                        delta(acked, &current).map(|d| serde_json::json!({ "seq": seq, "delta": d }))
                    }
                };
                // A report the server refused as it stands is not sent again unchanged.
                let refused_before = state.refused.as_ref().is_some_and(|r| {
                    r.inventory == inventory_digest(&current)
                        && unix_now().saturating_sub(r.at) < REFUSAL_HOLD_SECS
                });
                match body {
                    Some(_) if refused_before => return Ok(round),
                    Some(body) => state.pending = Some(Pending { seq, body, after: current.clone() }),
                    None => return Ok(round),
                }
            }
            let p = state.pending.clone().expect("set above");
            let ack = match client.post_inventory("/api/agent/v1/inventory", &p.body) {
                Ok(ack) => ack,
                // Too large, or not valid: sending it again would get the same answer. The
                // server hears why at the next check-in; a change of software makes a new report.
                Err((Some(status @ (413 | 422)), message)) => {
                    state.refused = Some(Refusal {
                        inventory: inventory_digest(&p.after),
                        message: message.clone(),
                        at: unix_now(),
                    });
                    state.pending = None;
                    return Err(format!(
                        "the server refused inventory report {} ({status}): {message}; it is not sent again until the software changes",
                        p.seq
                    ));
                }
                Err((_, message)) => return Err(message),
            };
            round.sent = Some(p.seq);
            if ack["resync"].as_bool() == Some(true) {
                state.acked = None;
                state.acked_seq = ack["seq"].as_i64().unwrap_or(0);
                state.pending = None;
                continue;
            }
            round.applied = ack["applied"].as_bool() == Some(true);
            state.refused = None;
            state.acked = Some(p.after);
            state.acked_seq = p.seq;
            state.pending = None;
            // A change that came while this report was pending goes in the next round.
            return Ok(round);
        }
        Err("the server asked for a resync twice in a row".to_string())
    })();
    let result = result.and_then(|r| {
        send_updates(&client, &mut state, report)?;
        Ok(r)
    });
    save_state(dir, &state)?;
    result
}

/// Sends the pending-updates list when it differs from the one the server has.
fn send_updates(client: &Client, state: &mut State, report: &Report) -> Result<(), String> {
    use std::hash::{Hash, Hasher};
    let body = serde_json::json!({ "updates": &report.pending_updates });
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut h);
    let digest = format!("{:016x}", h.finish());
    if state.updates_digest.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    client.post("/api/agent/v1/updates", &body)?;
    state.updates_digest = Some(digest);
    Ok(())
}

/// How often the agent talks to the server.
#[derive(Clone, Copy, Debug)]
pub struct Intervals {
    /// Between heartbeats (default 60 s).
    pub checkin: Duration,
    /// Between scheduled inventory collections (default 15 min); a change of a package
    /// database triggers one at once.
    pub inventory: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals { checkin: Duration::from_secs(60), inventory: Duration::from_secs(15 * 60) }
    }
}

/// Runs forever: a heartbeat every `checkin` interval, carrying an inventory report when a
/// collection found a change, then a jobs round (`jobs::round`). Collections run every
/// `inventory` interval, at once when a package database changes (its modification time),
/// and right after a job changed packages, whose inventory is sent in the same round. When
/// the check-in says this device is its site's collector, a collector round follows the jobs
/// (`collector::round`). With `once`, one round of each, then exit: heartbeat, inventory,
/// jobs, collector jobs, inventory after.
pub fn run(dir: &Path, opts: &ExecOptions, once: bool, every: Intervals) -> Result<(), String> {
    let root = &opts.root;
    let config: AgentConfig =
        serde_json::from_str(&std::fs::read_to_string(crate::enroll::config_path(dir)).map_err(|_| {
            format!("this agent is not enrolled: no {}", crate::enroll::config_path(dir).display())
        })?)
        .map_err(|e| format!("{} is unreadable: {e}", crate::enroll::config_path(dir).display()))?;
    let watched = [
        root.path("/var/lib/dpkg/status"),
        root.path("/var/lib/rpm/rpmdb.sqlite"),
        root.path("/var/lib/rpm/Packages"),
        root.path("/lib/apk/db/installed"),
        root.path("/var/lib/snapd/state.json"),
    ];
    let mtimes = || -> Vec<Option<std::time::SystemTime>> {
        watched.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
    };
    let collect_now = || {
        let full = crate::collect(root);
        Report {
            inventory: full.inventory,
            reboot_required: full.reboot_required,
            pending_updates: full.pending_updates,
            ..Default::default()
        }
    };
    // Nothing collected or sent yet. (An Instant cannot be set in the past: on Windows the
    // clock behind it starts at boot.)
    let mut last_mtimes = mtimes();
    let mut last_collection: Option<Instant> = None;
    let mut last_round: Option<Instant> = None;
    // The last collection; the inventory, pending updates and reboot state are kept between
    // rounds (not the collectors' statuses).
    let mut report = Report::default();
    loop {
        if crate::stop::requested() {
            println!("stopped: the state is saved and the next round starts where this one ended");
            return Ok(());
        }
        let changed = mtimes() != last_mtimes;
        let due = changed || last_collection.is_none_or(|t| t.elapsed() >= every.inventory);
        if due {
            last_mtimes = mtimes();
            last_collection = Some(Instant::now());
            report = collect_now();
        }
        if due || last_round.is_none_or(|t| t.elapsed() >= every.checkin) {
            last_round = Some(Instant::now());
            let boot_id = crate::exec::boot_id(root);
            let result = round(dir, &config, &report, boot_id.as_deref()).and_then(|r| {
                if once {
                    match r.sent {
                        Some(seq) => println!(
                            "sent inventory report {seq} ({})",
                            if r.applied { "applied" } else { "already applied" }
                        ),
                        None => println!("checked in; inventory unchanged"),
                    }
                }
                let j = crate::jobs::round(dir, &config, opts)?;
                for r in &j.handled.reports {
                    println!(
                        "job {} ({}): {:?} at {} {}",
                        r.job_id, r.idempotency_key, r.outcome, r.phase, r.detail
                    );
                }
                if j.unsent > 0 {
                    eprintln!("warning: {} job reports are kept and sent next round", j.unsent);
                }
                if r.collector {
                    let c = crate::collector::round(&config)?;
                    if once {
                        for run in &c.jobs {
                            match run {
                                crate::collector::JobRun::Reported { job_id, results, recorded } => {
                                    println!("collector job {job_id}: {results} results, {recorded} recorded")
                                }
                                crate::collector::JobRun::Refused(why) => {
                                    println!("collector job refused: {why}")
                                }
                            }
                        }
                    }
                }
                if j.handled.changed && !j.handled.rebooting {
                    // The server should see what the jobs changed now, not in 15 minutes.
                    last_mtimes = mtimes();
                    last_collection = Some(Instant::now());
                    report = collect_now();
                    let after = round(dir, &config, &report, boot_id.as_deref())?;
                    if once && let Some(seq) = after.sent {
                        println!("sent inventory report {seq} after the jobs");
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) if once => return Ok(()),
                Ok(()) => {}
                Err(e) if once => return Err(e),
                Err(e) => eprintln!("warning: {e}; the reports are kept and sent again"),
            }
        }
        crate::stop::sleep(Duration::from_secs(2).min(every.checkin));
    }
}
