//! The ringfence endpoint agent. This crate must not depend on the store, the engine or the
//! server: it shares only the inventory model and its parsers with them.
//!
//! [`collect`] runs every collector of the platform and returns a [`Report`]: the inventory
//! the server correlates, what each collector found (or that it found nothing, or the error
//! it hit), pending updates and whether a reboot is required. A collector that fails does
//! not stop the others.
//!
//! `checkin` talks to the server (heartbeats, inventory reports) and runs the loop; `jobs`
//! takes signed jobs (verify, idempotency ledger, outbox, reboot-loop breaker) and runs them
//! through `exec`, the executors (apt/dpkg, dnf, and in `platforms` Windows Update, winget
//! and softwareupdate), their pre-checks and the health checks. An agent its server made a
//! site's network collector also runs `collector` rounds: signed collector jobs that poll the
//! site's agentless appliances over SNMP (`snmp`).

pub mod checkin;
pub mod collector;
pub mod collectors;
pub mod enroll;
pub mod exec;
pub mod extensions;
pub mod jobs;
pub mod pe;
pub mod platforms;
pub mod snmp;
pub mod stop;

use ringfence_inventory::{Inventory, Item};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What one collector did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorStatus {
    pub collector: String,
    /// `ok`, `nothing found` or `error`.
    pub outcome: String,
    pub items: usize,
    /// The error, or why nothing was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long it took, where the collector measures it (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis: Option<u64>,
}

/// An update the platform's package manager offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpdate {
    /// The package manager that offers it (`dpkg`, `rpm`).
    #[serde(default)]
    pub manager: String,
    pub name: String,
    pub installed: String,
    pub candidate: String,
    /// Where it comes from (`bookworm-security`, `updates`).
    pub origin: String,
    /// Whether it comes from a security suite or carries a security advisory.
    pub security: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
}

/// Everything one collection run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub inventory: Inventory,
    pub pending_updates: Vec<PendingUpdate>,
    pub reboot_required: bool,
    pub collectors: Vec<CollectorStatus>,
    /// Windows: every Uninstall entry read, with its scope, product code and uninstall
    /// commands (the inventory keeps one item per name, version and publisher).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<platforms::windows_registry::Program>,
    /// Every browser extension found, with its permissions and profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<extensions::BrowserExtension>,
    /// Windows: programs found outside the installer list, by their version resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portable: Vec<pe::PortableProgram>,
}

/// [`record`], with the time since `started`.
pub(crate) fn record_timed(report: &mut Report, name: &str, started: std::time::Instant, outcome: Outcome) {
    record(report, name, outcome);
    if let Some(c) = report.collectors.last_mut() {
        c.millis = Some(started.elapsed().as_millis() as u64);
    }
}

/// The browser extensions collector, the same on every platform.
pub(crate) fn collect_extensions(report: &mut Report, homes: &[PathBuf], windows: bool) {
    let started = std::time::Instant::now();
    let (found, errors) = extensions::collect(homes, windows);
    let outcome = Outcome::with_errors(extensions::items_of(&found), "unreadable", &errors);
    record_timed(report, "extensions", started, outcome);
    report.extensions = found;
}

/// Where the collectors look: `/` on a real system, a prepared tree in tests.
#[derive(Clone, Debug)]
pub struct Root(pub PathBuf);

impl Root {
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p.trim_start_matches('/'))
    }

    pub fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p)).ok()
    }
}

/// The result of one collector.
pub enum Outcome {
    Found(Vec<Item>),
    /// Not present on this system (no such package manager, no DMI): not an error.
    Nothing(String),
    /// Found, but partly or wholly unreadable; the items that could be read still count.
    Partial(Vec<Item>, String),
    Failed(String),
}

impl Outcome {
    /// What was found, and an error naming what could not be read (`what: a; b`), if anything.
    pub(crate) fn with_errors(items: Vec<Item>, what: &str, errors: &[String]) -> Outcome {
        if errors.is_empty() {
            Outcome::Found(items)
        } else {
            Outcome::Partial(items, format!("{what}: {}", errors.join("; ")))
        }
    }
}

pub(crate) fn record(report: &mut Report, name: &str, outcome: Outcome) {
    let (status, items, detail) = match outcome {
        Outcome::Found(items) if items.is_empty() => ("nothing found", Vec::new(), None),
        Outcome::Found(items) => ("ok", items, None),
        Outcome::Nothing(why) => ("nothing found", Vec::new(), Some(why)),
        Outcome::Partial(items, why) => ("error", items, Some(why)),
        Outcome::Failed(why) => ("error", Vec::new(), Some(why)),
    };
    report.collectors.push(CollectorStatus {
        collector: name.into(),
        outcome: status.into(),
        items: items.len(),
        detail,
        millis: None,
    });
    report.inventory.items.extend(items);
}

/// Runs every collector of this platform.
pub fn collect(root: &Root) -> Report {
    if cfg!(target_os = "windows") {
        platforms::windows::collect()
    } else if cfg!(target_os = "macos") {
        platforms::macos::collect()
    } else {
        collectors::linux(root)
    }
}
