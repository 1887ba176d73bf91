//! Blackout periods (a client's quarter-end close, holidays) that no deployment may touch,
//! and the first slot of a window that fits a deployment around them.

use crate::recurrence::Occurrence;
use jiff::{SignedDuration, Timestamp};

/// A span no deployment may overlap: one-off, or one occurrence of a recurring blackout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blackout {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl From<Occurrence> for Blackout {
    fn from(o: Occurrence) -> Self {
        Blackout { start: o.start, end: o.end }
    }
}

/// The earliest span of length `needed` inside `window`, starting no earlier than `not_before`,
/// that overlaps no blackout; `None` when the rest of the window is too short (the
/// deployment waits for the next window, never runs over the end).
pub fn first_fit(
    window: Occurrence,
    needed: SignedDuration,
    not_before: Timestamp,
    blackouts: &[Blackout],
) -> Option<(Timestamp, Timestamp)> {
    let mut start = window.start.max(not_before);
    let mut sorted: Vec<&Blackout> =
        blackouts.iter().filter(|b| b.end > window.start && b.start < window.end).collect();
    sorted.sort_by_key(|b| b.start);
    loop {
        let end = start.checked_add(needed).ok()?;
        if end > window.end {
            return None;
        }
        match sorted.iter().find(|b| b.start < end && b.end > start) {
            Some(b) => start = b.end,
            None => return Some((start, end)),
        }
    }
}

/// The first slot of length `needed` in any of the next `horizon` occurrences of `window`
/// at or after `not_before`, around `blackouts`: a deployment that cannot finish in the rest
/// of one window waits for the next, never for "as soon as possible".
pub fn next_slot(
    window: &crate::Recurrence,
    needed: SignedDuration,
    not_before: Timestamp,
    blackouts: &[Blackout],
    horizon: usize,
) -> Option<(Timestamp, Timestamp)> {
    // A window already open at `not_before` counts: look back one window length (a day
    // more for nominal days across a DST change); there is at most one start per day.
    let d = window.duration;
    let lookback = SignedDuration::from_hours(24 * (d.days + 1)) + SignedDuration::from_secs(d.seconds);
    let open_since = not_before.checked_sub(lookback).unwrap_or(not_before);
    let earlier = usize::try_from(d.days + 2).unwrap_or(usize::MAX);
    window
        .occurrences_after(open_since, horizon.saturating_add(earlier))
        .into_iter()
        .filter(|o| o.end > not_before)
        .take(horizon)
        .find_map(|o| first_fit(o, needed, not_before, blackouts))
}
