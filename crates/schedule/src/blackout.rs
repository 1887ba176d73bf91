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
