//! Test rings and their health gates. An update enters ring N+1 only after ring N has had
//! it for its validation period (per update classification) and ring N's gate passes: at
//! least `min_successes` verified installs and a failure rate under `max_failure_rate`. A
//! failing gate halts the rollout for the outer rings; a halt anywhere in the partner holds
//! the same update for every client (the MSP-wide circuit breaker) until a technician
//! releases it. An emergency collapses validation periods, never gates or halts. Every
//! answer says why.

use jiff::{SignedDuration, Timestamp};

/// One ring of a policy: its validation period per update classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    pub index: u8,
    pub name: String,
    /// (classification, period): e.g. ("security", 24 h), ("feature", 72 h).
    pub validation: Vec<(String, SignedDuration)>,
    /// The period for classifications not listed.
    pub default_validation: SignedDuration,
}

impl Ring {
    pub fn validation_for(&self, classification: &str) -> SignedDuration {
        self.validation
            .iter()
            .find(|(c, _)| c == classification)
            .map(|(_, d)| *d)
            .unwrap_or(self.default_validation)
    }
}

/// The names of the default rings, by index.
pub const RING_NAMES: [&str; 4] = ["internal", "canary", "general", "critical"];

/// The default rings: 0 internal, 1 canary, 2 general, 3 critical.
pub fn default_rings() -> Vec<Ring> {
    let h = SignedDuration::from_hours;
    RING_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| Ring {
            index: i as u8,
            name: name.to_string(),
            validation: vec![
                ("security".into(), h(24)),
                ("critical".into(), h(24)),
                ("feature".into(), h(72)),
            ],
            default_validation: h(48),
        })
        .collect()
}

/// A ring's health gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    pub min_successes: u32,
    /// Failures / (successes + failures) must stay below this (0.0 to 1.0).
    pub max_failure_rate: f64,
}

impl Gate {
    /// The gate for a ring of `size` devices taking the update: a ring smaller than the
    /// gate's sample passes on all of its devices (0: the gate as it is).
    pub fn sized(self, size: u32) -> Gate {
        if size == 0 { self } else { Gate { min_successes: self.min_successes.min(size), ..self } }
    }
}

/// What one ring has done with the update so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingProgress {
    /// When the first deployment of the update in this ring was verified.
    pub entered_at: Option<Timestamp>,
    pub verified: u32,
    /// Install errors, failed verifications, devices not back after a reboot, health checks
    /// failing after install.
    pub failed: u32,
}

/// The gate's verdict on one ring.
#[derive(Debug, Clone, PartialEq)]
pub enum GateVerdict {
    Pass,
    /// Not enough verified installs yet.
    Pending {
        verified: u32,
        needed: u32,
    },
    /// Too many failures: the rollout halts.
    Fail {
        failure_rate: f64,
        limit: f64,
    },
}

pub fn judge(gate: &Gate, p: &RingProgress) -> GateVerdict {
    let done = p.verified + p.failed;
    let rate = if done == 0 { 0.0 } else { f64::from(p.failed) / f64::from(done) };
    // A failure rate is judged once the ring has the gate's sample, or earlier when the
    // failures alone already sink it (even `min_successes` successes would not bring the
    // rate under the limit). So an early failure halts only when it could not be outweighed
    // within the sample: with 10 at 25% one failure waits, with 3 at 20% it halts at once.
    let best_case = f64::from(p.failed) / f64::from(p.failed + gate.min_successes.max(1));
    if p.failed > 0
        && rate >= gate.max_failure_rate
        && (done >= gate.min_successes || best_case >= gate.max_failure_rate)
    {
        return GateVerdict::Fail { failure_rate: rate, limit: gate.max_failure_rate };
    }
    if p.verified < gate.min_successes {
        return GateVerdict::Pending { verified: p.verified, needed: gate.min_successes };
    }
    GateVerdict::Pass
}

/// May the update enter `ring`?
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Allowed {
        reason: String,
    },
    Waiting {
        until: Option<Timestamp>,
        reason: String,
    },
    /// Halted by a failing gate here or anywhere in the partner.
    Halted {
        reason: String,
    },
}

/// One update's rollout under one policy, as far as it has come.
#[derive(Debug, Clone)]
pub struct Rollout<'a> {
    pub rings: &'a [Ring],
    pub gate: Gate,
    /// Progress of each ring, by index.
    pub progress: &'a [RingProgress],
    pub classification: &'a str,
    /// A halt of this update anywhere in the partner, not yet released: why.
    pub partner_halt: Option<&'a str>,
    /// A technician's emergency override.
    pub emergency: bool,
    /// Devices of each ring that take the update, by index (an empty slice: unknown). A ring
    /// smaller than the gate's sample is judged on all of its devices; a ring with none is
    /// passed over.
    pub ring_sizes: &'a [u32],
}

impl Rollout<'_> {
    /// Whether the update may enter ring `target` at `now`, and why (not).
    pub fn may_enter(&self, target: usize, now: Timestamp) -> Entry {
        may_enter(self, target, now)
    }
}

fn may_enter(r: &Rollout<'_>, target: usize, now: Timestamp) -> Entry {
    let (rings, gate, progress, classification, emergency) =
        (r.rings, &r.gate, r.progress, r.classification, r.emergency);
    if let Some(why) = r.partner_halt {
        return Entry::Halted { reason: format!("held for every client of the partner: {why}") };
    }
    for (i, ring) in rings.iter().enumerate().take(target) {
        // A ring no device of which takes the update has nothing to validate: it is passed.
        if r.ring_sizes.get(i) == Some(&0) {
            continue;
        }
        let p = progress.get(i).copied().unwrap_or_default();
        let gate = gate.sized(r.ring_sizes.get(i).copied().unwrap_or(0));
        match judge(&gate, &p) {
            GateVerdict::Fail { failure_rate, limit } => {
                return Entry::Halted {
                    reason: format!(
                        "ring {} ({}) gate failed: {:.0}% of installs failed (limit {:.0}%)",
                        ring.index,
                        ring.name,
                        failure_rate * 100.0,
                        limit * 100.0
                    ),
                };
            }
            GateVerdict::Pending { verified, needed } => {
                return Entry::Waiting {
                    until: None,
                    reason: format!(
                        "waiting: ring {} ({}) has {verified} of {needed} verified installs",
                        ring.index, ring.name
                    ),
                };
            }
            GateVerdict::Pass => {}
        }
        if emergency {
            continue;
        }
        let Some(entered) = p.entered_at else {
            return Entry::Waiting {
                until: None,
                reason: format!("waiting: ring {} ({}) has not started", ring.index, ring.name),
            };
        };
        let ends = entered.saturating_add(ring.validation_for(classification)).unwrap_or(Timestamp::MAX);
        if now < ends {
            return Entry::Waiting {
                until: Some(ends),
                reason: format!(
                    "waiting: ring {} validation ends {} UTC",
                    ring.index,
                    ends.strftime("%a %Y-%m-%d %H:%M")
                ),
            };
        }
    }
    let name = rings.get(target).map(|r| r.name.as_str()).unwrap_or("?");
    Entry::Allowed {
        reason: if target == 0 {
            format!("ring 0 ({name}) goes first")
        } else if emergency {
            format!("emergency: validation periods skipped, gates of rings 0–{} pass", target - 1)
        } else {
            format!("rings 0–{} validated and their gates pass", target - 1)
        },
    }
}
