//! What to patch first, and why. Pure functions of the facts they are given.

pub mod hierarchy;
pub mod queue;
pub mod risk;
pub mod ssvc;

pub use hierarchy::{Effective, Field, FieldChange, Level, Policy, Tie, check_ties, diff, merge};
pub use queue::{QueueEntry, QueueFinding, remediation_queue};
pub use risk::{Cvss, DeviceFacts, Factor, RiskScore, VulnFacts, score};
pub use ssvc::{Decision, Exploitation, MissionImpact, TechnicalImpact, decide};
