//! When updates may land: maintenance windows as RFC 5545 recurrences in a device's IANA
//! time zone. Nothing here reads the clock; `now` and `after` are parameters.

pub mod blackout;
pub mod ics;
pub mod planner;
pub mod recurrence;
pub mod rings;
pub mod sim;

pub use blackout::{Blackout, first_fit, next_slot};
pub use recurrence::{Duration, Occurrence, Recurrence, RecurrenceError, Rule};
