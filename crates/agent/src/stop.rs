//! A requested stop: SIGTERM (systemd), SIGINT (a terminal) or the Windows service manager's
//! Stop. The agent finishes the step in progress (a job, a report: stopping half-way through
//! a package install is what must not happen), its state is on disk after every step, and
//! it exits 0 instead of starting the next round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static FINISHED: AtomicBool = AtomicBool::new(false);

/// Asks the agent's loop to stop after the step in progress.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Says the loop has stopped (for a service manager waiting on it).
pub fn finish() {
    FINISHED.store(true, Ordering::SeqCst);
}

pub fn finished() -> bool {
    FINISHED.load(Ordering::SeqCst)
}

/// SIGTERM and SIGINT request a stop instead of killing the process at once.
#[cfg(unix)]
pub fn on_signals() {
    extern "C" fn handler(_: libc::c_int) {
        // Only an atomic store: safe in a signal handler.
        REQUESTED.store(true, Ordering::SeqCst);
    }
    let handler: extern "C" fn(libc::c_int) = handler;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

#[cfg(not(unix))]
pub fn on_signals() {}

/// Sleeps for `d`, or less when a stop is requested; true when it was.
pub fn sleep(d: Duration) -> bool {
    let until = Instant::now() + d;
    while !requested() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    true
}
