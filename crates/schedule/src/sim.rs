//! A virtual fleet on a virtual clock, driven by the real planner and the real ring gates:
//! what `ringfence simulate` prints. Every hour the planner is asked for the plan of that
//! moment; deployments that start in the hour are dispatched, unless their device is
//! offline (then the window is missed and the device waits for its next one); installs
//! finish at the planned end and succeed or fail at the configured rates; each ring's gate
//! is judged as results come in, and a failing gate halts the update for every client.
//! The same seed gives the same run.

use crate::blackout::Blackout;
use crate::planner::{self, Device, Org, Running, Snapshot, Update, WindowSet};
use crate::recurrence::{Duration, Occurrence, Recurrence, Rule};
use crate::rings::{Gate, GateVerdict, Ring, RingProgress, default_rings, judge};
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone)]
pub struct Options {
    pub devices: usize,
    pub days: u32,
    pub seed: u64,
    /// Share of installs that fail (0 to 1).
    pub failure_rate: f64,
    /// Share of device-days a device is offline (0 to 1).
    pub offline_rate: f64,
    /// Failure rate of the one bad update in the release calendar on client devices.
    pub bad_failure_rate: f64,
    /// Devices per organization.
    pub org_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            devices: 1_000,
            days: 30,
            seed: 1,
            failure_rate: 0.01,
            offline_rate: 0.05,
            bad_failure_rate: 0.6,
            org_size: 100,
        }
    }
}

/// The virtual fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub start: Timestamp,
    pub rings: Vec<Ring>,
    pub gate: Gate,
    pub orgs: Vec<Org>,
    pub window_sets: Vec<WindowSet>,
    pub devices: Vec<Device>,
    pub updates: Vec<Update>,
    /// When each update is approved and released to the fleet.
    pub released: Vec<Timestamp>,
    /// The install failure rate of each update, by ring.
    pub failure: Vec<[f64; 4]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Release,
    RingEntry,
    Gate,
    Halt,
    Deploy,
    Missed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: Timestamp,
    pub kind: EventKind,
    pub text: String,
}

/// One dispatched deployment and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub device: usize,
    pub ring: u8,
    pub updates: Vec<usize>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub window: Occurrence,
    /// Per update: installed and verified.
    pub ok: Vec<bool>,
}

/// A window a device missed because it was offline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Miss {
    pub device: usize,
    pub window: Occurrence,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub fleet: Fleet,
    pub events: Vec<Event>,
    pub deployments: Vec<Done>,
    pub missed: Vec<Miss>,
    /// When each update entered each ring (first dispatch), by [update][ring].
    pub ring_entries: Vec<Vec<Option<Timestamp>>>,
    /// When each ring first had a verified install, by [update][ring].
    pub validated_from: Vec<Vec<Option<Timestamp>>>,
    pub halted: Vec<Option<Timestamp>>,
    pub end: Timestamp,
}

/// SplitMix64.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A value from (seed, a, b) alone, so draws do not depend on the order of the run.
fn draw(seed: u64, a: u64, b: u64) -> f64 {
    Rng(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)).unit()
}

const ZONES: [&str; 5] =
    ["America/New_York", "America/Chicago", "Europe/London", "Australia/Sydney", "Asia/Kolkata"];

fn recurrence(tz: &str, dtstart: &str, rrule: &str, duration: &str) -> Recurrence {
    Recurrence::new(
        tz,
        dtstart.parse().expect("a valid local start"),
        Rule::parse(rrule).expect("a valid rule"),
        Duration::parse(duration).expect("a valid duration"),
        Vec::new(),
    )
    .expect("a known zone")
}

/// Builds the virtual fleet: organizations of `org_size` devices in five time zones, two
/// sites each with a domain controller, nightly or weekend windows, business hours, a
/// quarter-end blackout in every fourth organization, rings spread across organizations,
/// and a release calendar of four updates (one of them bad, one an emergency).
pub fn fleet(o: &Options) -> Result<Fleet, String> {
    if o.devices < 4 {
        return Err("--devices must be at least 4: one device for each of the four rings".into());
    }
    if o.days == 0 || o.days > 366 {
        return Err("--days must be 1 to 366".into());
    }
    for (name, v) in [
        ("--failure-rate", o.failure_rate),
        ("--offline-rate", o.offline_rate),
        ("--bad-failure-rate", o.bad_failure_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("{name} must be between 0 and 1, e.g. 0.05"));
        }
    }
    let start: Timestamp = "2026-12-07T00:00:00Z".parse().expect("a valid instant");
    let day = |d: i64| start.checked_add(SignedDuration::from_hours(24 * d)).expect("in range");
    let org_size = o.org_size.max(1);
    let org_count = o.devices.div_ceil(org_size);
    let mut orgs = Vec::new();
    let mut window_sets = Vec::new();
    for k in 0..org_count {
        let tz = ZONES[k % ZONES.len()];
        let windows = if k % 3 == 2 {
            vec![recurrence(tz, "2026-12-05T01:00", "FREQ=WEEKLY;BYDAY=SA,SU", "PT5H")]
        } else {
            vec![recurrence(tz, "2026-12-01T02:00", "FREQ=DAILY", "PT3H")]
        };
        window_sets.push(WindowSet { windows });
        let blackouts = if k % 4 == 1 { vec![Blackout { start: day(8), end: day(11) }] } else { Vec::new() };
        orgs.push(Org {
            name: format!("Client {:03}", k + 1),
            blackouts,
            business_hours: Some(recurrence(
                tz,
                "2026-12-01T08:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                "PT10H",
            )),
            max_concurrent: 20,
        });
    }
    let devices: Vec<Device> = (0..o.devices)
        .map(|i| {
            let org = i / org_size;
            let within = i % org_size;
            let ring = if i % 50 == 0 {
                0
            } else if i % 10 == 1 {
                1
            } else if i % 4 == 3 {
                3
            } else {
                2
            };
            Device {
                name: format!("c{:03}-{}{:04}", org + 1, if within < 2 { "dc" } else { "ws" }, within),
                org,
                site: org * 2 + within % 2,
                ring,
                windows: org,
                online: true,
                domain_controller: within < 2,
                updates: Vec::new(),
                not_before: None,
            }
        })
        .collect();
    let m = SignedDuration::from_mins;
    let update = |name: &str, classification: &str, install: i64, reboot: i64, emergency: bool| Update {
        name: name.into(),
        classification: classification.into(),
        install: m(install),
        reboot: m(reboot),
        emergency,
        progress: vec![RingProgress::default(); 4],
        halt: None,
    };
    let updates = vec![
        update("openssl 3.0.15-1~deb12u1", "security", 10, 0, false),
        update("linux-image-amd64 6.1.119-1", "security", 15, 10, false),
        update("acme-agent 2.1.0", "feature", 20, 0, false),
        update("firefox-esr 128.5.1esr-1~deb12u1", "security", 10, 0, true),
    ];
    let rings = default_rings();
    Ok(Fleet {
        start,
        rings,
        // Rings smaller than the sample are judged on all their devices (`Gate::sized`).
        gate: Gate { min_successes: 10, max_failure_rate: 0.25 },
        orgs,
        window_sets,
        devices,
        updates,
        released: vec![day(0), day(2), day(4), day(9)],
        // The bad update installs cleanly on the MSP's own machines (ring 0) and breaks on the
        // clients' (it clashes with a line-of-business application): the canary gate stops it.
        failure: vec![
            [o.failure_rate; 4],
            [o.failure_rate; 4],
            [o.failure_rate, o.bad_failure_rate, o.bad_failure_rate, o.bad_failure_rate],
            [o.failure_rate; 4],
        ],
    })
}

/// Runs the simulation.
pub fn run(o: &Options) -> Result<Report, String> {
    let mut f = fleet(o)?;
    let step = SignedDuration::from_hours(1);
    let end =
        f.start.checked_add(SignedDuration::from_hours(24 * i64::from(o.days))).map_err(|e| e.to_string())?;
    let n_updates = f.updates.len();
    let mut events = Vec::new();
    let mut done: Vec<Done> = Vec::new();
    let mut missed = Vec::new();
    let mut ring_entries = vec![vec![None; f.rings.len()]; n_updates];
    let mut validated_from = vec![vec![None; f.rings.len()]; n_updates];
    let mut halted: Vec<Option<Timestamp>> = vec![None; n_updates];
    let mut gate_passed = vec![vec![false; f.rings.len()]; n_updates];
    // Per device: updates still needed (once released), and whether it is installing.
    let mut needs: Vec<Vec<bool>> = vec![vec![false; n_updates]; f.devices.len()];
    let mut released = vec![false; n_updates];
    let mut running: Vec<(Running, usize)> = Vec::new(); // (deployment, index into `done`)
    let mut plan: Option<planner::Plan> = None;
    let mut dirty = true;
    let mut next_wake: Option<Timestamp> = None;
    let mut now = f.start;
    let mut today = -1i64;
    // Every device takes every update: a ring's size is its device count.
    let mut ring_sizes = vec![0u32; f.rings.len()];
    for d in &f.devices {
        ring_sizes[usize::from(d.ring).min(f.rings.len() - 1)] += 1;
    }
    while now < end {
        let tick_end = now.checked_add(step).map_err(|e| e.to_string())?;
        // Releases.
        for u in 0..n_updates {
            if !released[u] && f.released[u] <= now {
                released[u] = true;
                for n in needs.iter_mut() {
                    n[u] = true;
                }
                let what =
                    if f.updates[u].emergency { "approved as an emergency override" } else { "approved" };
                events.push(Event {
                    at: now,
                    kind: EventKind::Release,
                    text: format!("{} {what} for every client", f.updates[u].name),
                });
                dirty = true;
            }
        }
        // Online state, drawn per device and day.
        let d = (now.as_second() - f.start.as_second()).div_euclid(86_400);
        if d != today {
            today = d;
            for (i, dev) in f.devices.iter_mut().enumerate() {
                dev.online = draw(o.seed, i as u64, d as u64) >= o.offline_rate;
            }
            dirty = true;
        }
        // Installs that finished.
        let mut finished: Vec<(Running, usize)> = Vec::new();
        running.retain(|(r, i)| {
            if r.end <= now {
                finished.push((r.clone(), *i));
                false
            } else {
                true
            }
        });
        finished.sort_by_key(|(r, i)| (r.end, *i));
        for (_, i) in &finished {
            let dep = &done[*i];
            let ring = usize::from(dep.ring);
            for (k, &u) in dep.updates.iter().enumerate() {
                let p = &mut f.updates[u].progress[ring];
                if dep.ok[k] {
                    p.verified += 1;
                    if p.entered_at.is_none() {
                        p.entered_at = Some(dep.end);
                        validated_from[u][ring] = Some(dep.end);
                    }
                } else {
                    p.failed += 1;
                }
                // Gates are judged as results come in.
                let verdict = judge(&f.gate.sized(ring_sizes[ring]), &f.updates[u].progress[ring]);
                let ring_name = &f.rings[ring].name;
                match verdict {
                    GateVerdict::Fail { failure_rate, limit } if f.updates[u].halt.is_none() => {
                        let org = &f.orgs[f.devices[dep.device].org].name;
                        let why = format!(
                            "ring {ring} ({ring_name}) gate failed at {org}: {:.0}% of installs failed (limit {:.0}%)",
                            failure_rate * 100.0,
                            limit * 100.0
                        );
                        events.push(Event {
                            at: dep.end,
                            kind: EventKind::Gate,
                            text: format!("{}: {why}", f.updates[u].name),
                        });
                        events.push(Event {
                            at: dep.end,
                            kind: EventKind::Halt,
                            text: format!(
                                "{} halted for every client of the partner until a technician releases it",
                                f.updates[u].name
                            ),
                        });
                        f.updates[u].halt = Some(why);
                        halted[u] = Some(dep.end);
                    }
                    GateVerdict::Pass if !gate_passed[u][ring] && f.updates[u].halt.is_none() => {
                        gate_passed[u][ring] = true;
                        let p = f.updates[u].progress[ring];
                        events.push(Event {
                            at: dep.end,
                            kind: EventKind::Gate,
                            text: format!(
                                "{}: ring {ring} ({ring_name}) gate passes: {} verified, {} failed",
                                f.updates[u].name, p.verified, p.failed
                            ),
                        });
                    }
                    _ => {}
                }
            }
            dirty = true;
        }
        if next_wake.is_some_and(|t| t <= now) {
            dirty = true;
        }
        // The plan of this moment.
        if dirty {
            for (i, dev) in f.devices.iter_mut().enumerate() {
                dev.updates = (0..n_updates).filter(|u| needs[i][*u]).collect();
                if running.iter().any(|(r, _)| r.device == i) {
                    dev.updates.clear();
                }
            }
            let busy: Vec<Running> = running.iter().map(|(r, _)| r.clone()).collect();
            let snap = Snapshot {
                now,
                rings: &f.rings,
                gate: f.gate,
                orgs: &f.orgs,
                window_sets: &f.window_sets,
                devices: &f.devices,
                updates: &f.updates,
                running: &busy,
                horizon_days: 35,
            };
            let p = planner::plan(&snap);
            next_wake = p
                .entries
                .iter()
                .flatten()
                .filter_map(|e| match e {
                    crate::rings::Entry::Waiting { until: Some(t), .. } if *t > now => Some(*t),
                    _ => None,
                })
                .min();
            plan = Some(p);
            dirty = false;
        }
        // Dispatch what starts in this hour.
        let mut due: Vec<planner::Deployment> = plan
            .as_ref()
            .map(|p| p.deployments.iter().filter(|d| d.start >= now && d.start < tick_end).cloned().collect())
            .unwrap_or_default();
        due.sort_by_key(|d| (d.start, d.device));
        let mut started: Vec<(usize, usize)> = Vec::new(); // (update, ring) counts for the timeline
        for dep in due {
            let dev = &mut f.devices[dep.device];
            if !dev.online {
                // Missed: the device waits for its next window, never "as soon as possible".
                dev.not_before = Some(dep.window.end);
                missed.push(Miss { device: dep.device, window: dep.window });
                events.push(Event {
                    at: dep.start,
                    kind: EventKind::Missed,
                    text: format!("{} offline: its window is missed, rescheduled to the next one", dev.name),
                });
                dirty = true;
                continue;
            }
            let ring = dev.ring;
            let ok: Vec<bool> = dep
                .updates
                .iter()
                .map(|&u| {
                    draw(o.seed ^ 0xD1CE, (dep.device * n_updates + u) as u64, dep.start.as_second() as u64)
                        >= f.failure[u][usize::from(ring).min(3)]
                })
                .collect();
            for &u in &dep.updates {
                needs[dep.device][u] = false;
                let r = usize::from(ring);
                if ring_entries[u][r].is_none() {
                    ring_entries[u][r] = Some(dep.start);
                    events.push(Event {
                        at: dep.start,
                        kind: EventKind::RingEntry,
                        text: format!("{} enters ring {r} ({})", f.updates[u].name, f.rings[r].name),
                    });
                }
                started.push((u, r));
            }
            running.push((
                Running { device: dep.device, updates: dep.updates.clone(), start: dep.start, end: dep.end },
                done.len(),
            ));
            done.push(Done {
                device: dep.device,
                ring,
                updates: dep.updates,
                start: dep.start,
                end: dep.end,
                window: dep.window,
                ok,
            });
            dirty = true;
        }
        if !started.is_empty() {
            started.sort_unstable();
            let mut i = 0;
            while i < started.len() {
                let j = started[i..].iter().take_while(|x| **x == started[i]).count();
                let (u, r) = started[i];
                events.push(Event {
                    at: now,
                    kind: EventKind::Deploy,
                    text: format!("{} ring {r}: {j} deployment(s) started this hour", f.updates[u].name),
                });
                i += j;
            }
        }
        now = tick_end;
    }
    events.sort_by_key(|e| e.at);
    Ok(Report { fleet: f, events, deployments: done, missed, ring_entries, validated_from, halted, end })
}

impl Report {
    /// The timeline, one event per line.
    pub fn timeline(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let kind = match e.kind {
                EventKind::Release => "release",
                EventKind::RingEntry => "ring",
                EventKind::Gate => "gate",
                EventKind::Halt => "HALT",
                EventKind::Deploy => "deploy",
                EventKind::Missed => "missed",
            };
            out.push_str(&format!("{} {kind:<7} {}\n", e.at.strftime("%Y-%m-%dT%H:%M:%SZ"), e.text));
        }
        out
    }

    /// Per update and ring: deployed, verified, failed; halts and missed windows.
    pub fn summary(&self) -> String {
        let f = &self.fleet;
        let mut out = format!(
            "summary: {} devices in {} organizations, {} days from {}\n",
            f.devices.len(),
            f.orgs.len(),
            (self.end.as_second() - f.start.as_second()) / 86_400,
            f.start.strftime("%Y-%m-%d")
        );
        for (u, up) in f.updates.iter().enumerate() {
            let mut line = format!("  {}:", up.name);
            for r in 0..f.rings.len() {
                let p = up.progress[r];
                let entered = self.ring_entries[u][r]
                    .map(|t| t.strftime("%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                line.push_str(&format!(" ring {r} {} ok/{} failed (from {entered});", p.verified, p.failed));
            }
            if let Some(t) = self.halted[u] {
                line.push_str(&format!(" HALTED {}", t.strftime("%m-%d %H:%M")));
            }
            out.push_str(&line);
            out.push('\n');
        }
        let installs: usize = self.deployments.iter().map(|d| d.updates.len()).sum();
        out.push_str(&format!(
            "  deployments {} ({} installs), windows missed while offline {}\n",
            self.deployments.len(),
            installs,
            self.missed.len()
        ));
        out
    }
}
