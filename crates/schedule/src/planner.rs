//! The rollout planner: a pure function of (snapshot, now). For every approved update and
//! device it decides which window the deployment goes in, or why it waits:
//!
//! - the device's ring may take the update only when the rings before it have had it for
//!   their validation period and their health gates pass (`rings::Rollout`); a halt anywhere
//!   in the partner holds the update for every client;
//! - a deployment lies wholly inside one occurrence of the device's maintenance windows, and
//!   an update that cannot finish (install plus reboot) in the rest of a window waits for
//!   the next one;
//! - it never overlaps a blackout, and never enters the organization's business hours unless
//!   it is an emergency;
//! - at most `max_concurrent` devices of one organization install at once, and at most one
//!   domain controller per site;
//! - an offline device is never dispatched: the window open now is skipped, and a device that
//!   missed a window (offline, too short, job never started) goes in its next window, never
//!   "as soon as possible".
//!
//! The updates a device may take in the same window are installed together, as one
//! deployment with at most one reboot. Devices are planned in ring order, then in the order
//! given, so the same snapshot always gives the same plan.

use crate::blackout::Blackout;
use crate::recurrence::{Occurrence, Recurrence};
use crate::rings::{Entry, Gate, Ring, RingProgress, Rollout};
use jiff::{SignedDuration, Timestamp};

/// Maintenance windows shared by devices (usually one set per policy).
#[derive(Debug, Clone)]
pub struct WindowSet {
    pub windows: Vec<Recurrence>,
}

/// An organization's constraints.
#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    /// Spans no deployment may touch (a quarter-end close, holidays), one-off or expanded
    /// from a recurring blackout.
    pub blackouts: Vec<Blackout>,
    /// Business hours no non-emergency deployment may enter.
    pub business_hours: Option<Recurrence>,
    /// Devices of the organization that may install at once.
    pub max_concurrent: u32,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub org: usize,
    /// A site number, unique across organizations (for the domain-controller rule).
    pub site: usize,
    pub ring: u8,
    /// Index into `Snapshot::window_sets`.
    pub windows: usize,
    pub online: bool,
    pub domain_controller: bool,
    /// Indexes into `Snapshot::updates` of the approved updates this device still needs.
    pub updates: Vec<usize>,
    /// The end of a window the device missed: it is planned no earlier.
    pub not_before: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub name: String,
    pub classification: String,
    /// Expected install time.
    pub install: SignedDuration,
    /// Expected time for a reboot and the device to come back; zero when none is needed.
    pub reboot: SignedDuration,
    pub emergency: bool,
    /// Progress of each ring with this update, by ring index.
    pub progress: Vec<RingProgress>,
    /// Why the update is halted for every client of the partner, while it is.
    pub halt: Option<String>,
}

/// A deployment already dispatched or running; it counts against the concurrency limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub device: usize,
    /// The updates it installs.
    pub updates: Vec<usize>,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub now: Timestamp,
    pub rings: &'a [Ring],
    pub gate: Gate,
    pub orgs: &'a [Org],
    pub window_sets: &'a [WindowSet],
    pub devices: &'a [Device],
    pub updates: &'a [Update],
    pub running: &'a [Running],
    /// How far ahead to look for a window.
    pub horizon_days: u32,
}

/// One planned deployment: a device, the updates it installs together, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub device: usize,
    pub updates: Vec<usize>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window occurrence it lies in.
    pub window: Occurrence,
    /// Why the last window or slot before this one was passed over, if any was.
    pub skipped: Option<Skip>,
    /// The ring entry it waited for, when the ring opens later than now.
    pub ring_opens: Option<Timestamp>,
}

/// Why a window was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Offline,
    /// The rest of the window was shorter than the deployment.
    TooShort,
    Blackout,
    BusinessHours,
    /// The organization's (or the site's domain-controller) concurrency limit was reached.
    Busy,
}

/// What the planner decided for one (device, update).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// In deployment number `n` of `Plan::deployments`.
    Scheduled(usize),
    /// The ring may not take it yet, with no known time (gate pending, earlier ring not
    /// started); `entry` explains.
    Waiting,
    Halted,
    /// No window within the horizon fits it.
    NoWindow {
        needed: SignedDuration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub device: usize,
    pub update: usize,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub now: Timestamp,
    pub deployments: Vec<Deployment>,
    /// One per (device, update), devices in input order.
    pub decisions: Vec<Decision>,
    /// `entries[update][ring]`: whether the update may enter that ring, and why.
    pub entries: Vec<Vec<Entry>>,
}

/// Merged, sorted spans, queried by "the first span ending after t".
#[derive(Debug, Default, Clone)]
struct Spans(Vec<(Timestamp, Timestamp)>);

impl Spans {
    fn new(mut v: Vec<(Timestamp, Timestamp)>) -> Self {
        v.sort();
        let mut out: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Spans(out)
    }

    /// The end of a span overlapping [start, end), if one does.
    fn conflict(&self, start: Timestamp, end: Timestamp) -> Option<Timestamp> {
        let i = self.0.partition_point(|(_, e)| *e <= start);
        self.0.get(i).filter(|(s, _)| *s < end).map(|(_, e)| *e)
    }
}

/// Deployments of one concurrency group (an organization, or a site's domain controllers).
#[derive(Debug, Default, Clone)]
struct Group {
    limit: u32,
    busy: Vec<(Timestamp, Timestamp)>,
}

impl Group {
    /// When [start, end) would exceed the limit: the earliest end among the overlapping
    /// deployments (the first moment one more may start).
    fn conflict(&self, start: Timestamp, end: Timestamp) -> Option<Timestamp> {
        let mut overlapping = 0u32;
        let mut first_end: Option<Timestamp> = None;
        for (s, e) in &self.busy {
            if *s < end && *e > start {
                overlapping += 1;
                first_end = Some(first_end.map_or(*e, |f| f.min(*e)));
            }
        }
        if overlapping >= self.limit.max(1) { first_end } else { None }
    }
}

fn add_or_max(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// Plans every (device, update) of the snapshot.
pub fn plan(s: &Snapshot<'_>) -> Plan {
    let now = s.now;
    let horizon_end = add_or_max(now, SignedDuration::from_hours(24 * i64::from(s.horizon_days.max(1))));
    // Devices of each ring taking each update: still to do, running, or done.
    let ring_count = s.rings.len().max(1);
    let mut sizes: Vec<Vec<u32>> = s
        .updates
        .iter()
        .map(|u| (0..ring_count).map(|r| u.progress.get(r).map_or(0, |p| p.verified + p.failed)).collect())
        .collect();
    let ring_of = |d: &Device| usize::from(d.ring).min(ring_count - 1);
    for d in s.devices {
        for &ui in &d.updates {
            sizes[ui][ring_of(d)] += 1;
        }
    }
    for r in s.running {
        if let Some(d) = s.devices.get(r.device) {
            for &ui in &r.updates {
                if let Some(row) = sizes.get_mut(ui) {
                    row[ring_of(d)] += 1;
                }
            }
        }
    }
    // Ring entry per update and ring, computed once.
    let entries: Vec<Vec<Entry>> = s
        .updates
        .iter()
        .zip(&sizes)
        .map(|(u, sizes)| {
            let rollout = Rollout {
                rings: s.rings,
                gate: s.gate,
                progress: &u.progress,
                classification: &u.classification,
                partner_halt: u.halt.as_deref(),
                emergency: u.emergency,
                ring_sizes: sizes,
            };
            (0..s.rings.len().max(1)).map(|r| opening(&rollout, r, now)).collect()
        })
        .collect();
    // Window occurrences per set, from a window open now to the horizon, sorted.
    let longest = s
        .window_sets
        .iter()
        .flat_map(|w| &w.windows)
        .map(|r| {
            SignedDuration::from_hours(24 * (r.duration.days + 1))
                + SignedDuration::from_secs(r.duration.seconds)
        })
        .max()
        .unwrap_or_default();
    let from = now.checked_sub(longest).unwrap_or(now);
    let occurrences: Vec<Vec<Occurrence>> = s
        .window_sets
        .iter()
        .map(|set| {
            let mut all: Vec<Occurrence> = set
                .windows
                .iter()
                .flat_map(|w| expand(w, from, horizon_end))
                .filter(|o| o.end > now)
                .collect();
            all.sort_by_key(|o| (o.start, o.end));
            all
        })
        .collect();
    let blackouts: Vec<Spans> =
        s.orgs.iter().map(|o| Spans::new(o.blackouts.iter().map(|b| (b.start, b.end)).collect())).collect();
    let business: Vec<Spans> = s
        .orgs
        .iter()
        .map(|o| match &o.business_hours {
            Some(r) => {
                Spans::new(expand(r, from, horizon_end).into_iter().map(|b| (b.start, b.end)).collect())
            }
            None => Spans::default(),
        })
        .collect();
    let mut org_groups: Vec<Group> =
        s.orgs.iter().map(|o| Group { limit: o.max_concurrent, busy: Vec::new() }).collect();
    let sites = s.devices.iter().map(|d| d.site + 1).max().unwrap_or(0);
    let mut dc_groups: Vec<Group> = vec![Group { limit: 1, busy: Vec::new() }; sites];
    for r in s.running {
        if let Some(d) = s.devices.get(r.device) {
            org_groups[d.org].busy.push((r.start, r.end));
            if d.domain_controller {
                dc_groups[d.site].busy.push((r.start, r.end));
            }
        }
    }
    // Ring order, then input order.
    let mut order: Vec<usize> = (0..s.devices.len()).collect();
    order.sort_by_key(|&i| (s.devices[i].ring, i));
    let mut deployments = Vec::new();
    let mut outcome_of: Vec<Vec<(usize, Outcome)>> = vec![Vec::new(); s.devices.len()];
    for &di in &order {
        let d = &s.devices[di];
        let ring = usize::from(d.ring).min(s.rings.len().saturating_sub(1));
        let mut out: Vec<(usize, Outcome)> = Vec::with_capacity(d.updates.len());
        // Updates the ring may take, with the earliest time each may start.
        let mut ready: Vec<(usize, Timestamp, Option<Timestamp>)> = Vec::new();
        for &ui in &d.updates {
            match &entries[ui][ring] {
                Entry::Allowed { .. } => ready.push((ui, now, None)),
                Entry::Waiting { until: Some(t), .. } => ready.push((ui, (*t).max(now), Some(*t))),
                Entry::Waiting { until: None, .. } => out.push((ui, Outcome::Waiting)),
                Entry::Halted { .. } => out.push((ui, Outcome::Halted)),
            }
        }
        // Not before a window it missed, nor before its running deployment ends.
        let running_until = s.running.iter().filter(|r| r.device == di).map(|r| r.end).max();
        let floor = d.not_before.unwrap_or(now).max(now).max(running_until.unwrap_or(now));
        let mut after = floor;
        // Emergencies first (they may enter business hours), then the rest; each pass puts
        // the updates ready by a window's start into that window together.
        for emergency in [true, false] {
            let mut pending: Vec<(usize, Timestamp, Option<Timestamp>)> =
                ready.iter().copied().filter(|(ui, ..)| s.updates[*ui].emergency == emergency).collect();
            pending.sort_by_key(|(ui, t, _)| (*t, *ui));
            while !pending.is_empty() {
                let ctx = Fit {
                    occurrences: &occurrences[d.windows],
                    blackouts: &blackouts[d.org],
                    business: if emergency { None } else { Some(&business[d.org]) },
                    online: d.online,
                    now,
                };
                let earliest = pending[0].1.max(after);
                let ready_by = |t: Timestamp| pending.iter().filter(|(_, r, _)| *r <= t).count().max(1);
                let groups = (&org_groups[d.org], d.domain_controller.then(|| &dc_groups[d.site]));
                let fit = |take: usize| {
                    let needed = duration(s.updates, pending[..take].iter().map(|p| p.0));
                    ctx.fit(earliest, needed, groups)
                };
                // All updates ready by then go together; if they do not fit one window, the
                // first goes alone (the rest follow in later windows). Updates that become
                // ready by the slot's start join it when the larger deployment still fits.
                let mut take = ready_by(earliest);
                let mut found = fit(take);
                if found.is_none() && take > 1 {
                    take = 1;
                    found = fit(1);
                }
                while let Some(slot) = &found {
                    let more = ready_by(slot.start);
                    if more <= take {
                        break;
                    }
                    match fit(more) {
                        Some(bigger) => {
                            take = more;
                            found = Some(bigger);
                        }
                        None => break,
                    }
                }
                let Some(slot) = found else {
                    let needed = duration(s.updates, pending[..take].iter().map(|p| p.0));
                    for (ui, ..) in pending.drain(..take) {
                        out.push((ui, Outcome::NoWindow { needed }));
                    }
                    continue;
                };
                let n = deployments.len();
                let group: Vec<(usize, Timestamp, Option<Timestamp>)> = pending.drain(..take).collect();
                org_groups[d.org].busy.push((slot.start, slot.end));
                if d.domain_controller {
                    dc_groups[d.site].busy.push((slot.start, slot.end));
                }
                deployments.push(Deployment {
                    device: di,
                    updates: group.iter().map(|g| g.0).collect(),
                    start: slot.start,
                    end: slot.end,
                    window: slot.window,
                    skipped: slot.skipped,
                    ring_opens: group.iter().filter_map(|g| g.2).filter(|t| *t > now).max(),
                });
                for (ui, ..) in group {
                    out.push((ui, Outcome::Scheduled(n)));
                }
                after = slot.end;
            }
        }
        out.sort_by_key(|(ui, _)| d.updates.iter().position(|u| u == ui));
        outcome_of[di] = out;
    }
    let decisions = outcome_of
        .into_iter()
        .enumerate()
        .flat_map(|(device, v)| {
            v.into_iter().map(move |(update, outcome)| Decision { device, update, outcome })
        })
        .collect();
    Plan { now, deployments, decisions, entries }
}

/// Whether the update may enter `ring` at `now`, or when it will: a ring waits on every ring
/// before it, so a wait is followed to the last validation period that ends before entry.
fn opening(rollout: &Rollout<'_>, ring: usize, now: Timestamp) -> Entry {
    let mut entry = rollout.may_enter(ring, now);
    for _ in 0..rollout.rings.len() {
        let Entry::Waiting { until: Some(t), .. } = &entry else { break };
        match rollout.may_enter(ring, *t) {
            Entry::Allowed { .. } => break,
            later @ Entry::Waiting { until: Some(t2), .. } if t2 > *t => entry = later,
            other => {
                entry = other;
                break;
            }
        }
    }
    entry
}

/// Install times summed, plus the longest reboot (one reboot for the whole deployment).
fn duration(updates: &[Update], which: impl Iterator<Item = usize>) -> SignedDuration {
    let (mut install, mut reboot) = (SignedDuration::ZERO, SignedDuration::ZERO);
    for ui in which {
        install += updates[ui].install;
        reboot = reboot.max(updates[ui].reboot);
    }
    install + reboot
}

fn expand(r: &Recurrence, from: Timestamp, to: Timestamp) -> Vec<Occurrence> {
    // Windows recur at most daily: a day-count bound on the number needed.
    let days = (to.as_second() - from.as_second()) / 86_400 + 2;
    let mut out = r.occurrences_after(from, usize::try_from(days.max(1)).unwrap_or(1) * 2);
    out.retain(|o| o.start < to);
    out
}

struct Slot {
    start: Timestamp,
    end: Timestamp,
    window: Occurrence,
    skipped: Option<Skip>,
}

struct Fit<'a> {
    occurrences: &'a [Occurrence],
    blackouts: &'a Spans,
    business: Option<&'a Spans>,
    online: bool,
    now: Timestamp,
}

impl Fit<'_> {
    /// The earliest slot of `needed` starting at or after `not_before` in one window.
    fn fit(
        &self,
        not_before: Timestamp,
        needed: SignedDuration,
        groups: (&Group, Option<&Group>),
    ) -> Option<Slot> {
        let mut skipped: Option<Skip> = None;
        let first = self.occurrences.partition_point(|o| o.end <= not_before);
        for o in &self.occurrences[first..] {
            // An offline device is never dispatched: the window open now is passed over.
            if !self.online && o.start <= self.now {
                skipped = Some(Skip::Offline);
                continue;
            }
            let mut start = o.start.max(not_before);
            // What last pushed the start within this window: the reason when the rest of the
            // window then turns out too short.
            let mut pushed: Option<Skip> = None;
            let placed = loop {
                let end = add_or_max(start, needed);
                if end > o.end {
                    skipped = Some(pushed.unwrap_or(Skip::TooShort));
                    break None;
                }
                if let Some(e) = self.blackouts.conflict(start, end) {
                    skipped = Some(Skip::Blackout);
                    pushed = skipped;
                    start = e;
                    continue;
                }
                if let Some(e) = self.business.and_then(|b| b.conflict(start, end)) {
                    skipped = Some(Skip::BusinessHours);
                    pushed = skipped;
                    start = e;
                    continue;
                }
                let busy = groups
                    .0
                    .conflict(start, end)
                    .into_iter()
                    .chain(groups.1.and_then(|g| g.conflict(start, end)));
                if let Some(e) = busy.max() {
                    skipped = Some(Skip::Busy);
                    pushed = skipped;
                    start = e;
                    continue;
                }
                break Some((start, end));
            };
            if let Some((start, end)) = placed {
                // A reason is kept only if an earlier window or slot was passed over.
                let skipped =
                    skipped.filter(|_| o.start > not_before.max(self.now) || start > o.start.max(not_before));
                return Some(Slot { start, end, window: *o, skipped });
            }
        }
        None
    }
}

impl Plan {
    /// The explanation of one decision, as a technician reads it.
    pub fn explain(&self, s: &Snapshot<'_>, d: &Decision) -> String {
        let dev = &s.devices[d.device];
        let ring = usize::from(dev.ring).min(s.rings.len().saturating_sub(1));
        let entry = &self.entries[d.update][ring];
        let entry_reason = match entry {
            Entry::Allowed { reason } | Entry::Waiting { reason, .. } | Entry::Halted { reason } => {
                reason.as_str()
            }
        };
        match &d.outcome {
            Outcome::Scheduled(n) => {
                let dep = &self.deployments[*n];
                let zone = s.window_sets[dev.windows].windows.first().map(|w| w.zone.clone());
                let local = |t: Timestamp| match &zone {
                    Some(z) => format!(
                        "{} {}",
                        t.to_zoned(z.clone()).strftime("%a %Y-%m-%d %H:%M"),
                        z.iana_name().unwrap_or("local")
                    ),
                    None => t.strftime("%a %Y-%m-%d %H:%M UTC").to_string(),
                };
                let mut why =
                    format!("next window {} ({} UTC)", local(dep.start), dep.start.strftime("%H:%M"));
                if dep.ring_opens.is_some() {
                    why = format!("{entry_reason}; {why}");
                }
                if let Some(skip) = dep.skipped {
                    why.push_str(match skip {
                        Skip::Offline => "; the window open now is skipped: the device is offline",
                        Skip::TooShort => "; an earlier window was too short for install and reboot",
                        Skip::Blackout => "; an earlier slot falls in a blackout",
                        Skip::BusinessHours => "; an earlier slot falls in business hours",
                        Skip::Busy => "; earlier slots are taken by the organization's concurrency limit",
                    });
                }
                if dep.updates.len() > 1 {
                    why.push_str(&format!("; installed with {} other update(s)", dep.updates.len() - 1));
                }
                why
            }
            Outcome::Waiting | Outcome::Halted => entry_reason.to_string(),
            Outcome::NoWindow { needed } => format!(
                "no window in the next {} days fits {} min (install and reboot)",
                s.horizon_days,
                needed.as_secs() / 60
            ),
        }
    }
}

/// The expected schedule for a preview: rings that have no verified installs yet are assumed
/// to pass their gate when the `min_successes`-th of their planned deployments ends, and
/// their validation period is counted from then. Later rings are planned from that, ring by
/// ring, so the preview shows when each update is expected to land everywhere.
pub fn forecast(s: &Snapshot<'_>) -> Plan {
    let mut updates = s.updates.to_vec();
    let mut current = plan(s);
    for ring in 0..s.rings.len().saturating_sub(1) {
        let mut changed = false;
        for (ui, u) in updates.iter_mut().enumerate() {
            if u.halt.is_some() {
                continue;
            }
            if u.progress.len() <= ring {
                u.progress.resize(ring + 1, RingProgress::default());
            }
            let p = u.progress[ring];
            let needed = s.gate.min_successes.max(1);
            if p.verified >= needed && p.entered_at.is_some() {
                continue;
            }
            let mut ends: Vec<Timestamp> = current
                .deployments
                .iter()
                .filter(|d| usize::from(s.devices[d.device].ring) == ring && d.updates.contains(&ui))
                .map(|d| d.end)
                .collect();
            ends.sort_unstable();
            let missing = usize::try_from(needed - p.verified.min(needed)).unwrap_or(usize::MAX).max(1);
            // A ring smaller than the gate's sample passes when all of it is done.
            let Some(at) = ends.get(missing - 1).or(ends.last()) else { continue };
            u.progress[ring] =
                RingProgress { entered_at: Some(*at), verified: needed.max(p.verified), failed: p.failed };
            changed = true;
        }
        if changed {
            current = plan(&Snapshot { updates: &updates, ..s.clone() });
        }
    }
    current
}
