//! What to patch first, and why; how a device is configured, and who approved what. Pure
//! functions of the facts they are given.

pub mod approval;
pub mod catalog;
pub mod exception;
pub mod hierarchy;
pub mod queue;
pub mod risk;
pub mod settings;
pub mod ssvc;

pub use approval::{ApprovalRules, AutoApprove, UpdateFacts, Verdict, evaluate};
pub use catalog::{Classification, Pending, Rollback, classify};
pub use exception::{Exception, ExceptionKind, VersionRange};
pub use hierarchy::{
    Effective, Field, FieldChange, Level, Placement, Policy, PolicySet, Tie, check_ties, diff, merge,
    merge_refs,
};
pub use queue::{QueueEntry, QueueFinding, remediation_queue};
pub use risk::{Cvss, DeviceFacts, Factor, RiskScore, VulnFacts, quick_score, score};
pub use ssvc::{Decision, Exploitation, MissionImpact, TechnicalImpact, decide};
