//! Approval rules, set in policy under the `approval` field, e.g.
//!
//! ```json
//! {"auto_approve": {"classifications": ["security", "critical"], "kev": true,
//!                   "cvss_at_least": 7.0, "ssvc_act": true},
//!  "review": ["driver", "firmware"], "wait_days": {"feature": 14},
//!  "emergency_second_approver": true}
//! ```
//!
//! [`evaluate`] says, for one update, which rule approves it or why it waits for a person.
//! Rules approve; they never reject. A person's decision always takes precedence.

use crate::catalog::Classification;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoApprove {
    /// Only updates of these classifications are approved by rule.
    pub classifications: Vec<Classification>,
    /// Approve when the update fixes a CVE in CISA KEV.
    pub kev: bool,
    /// Approve when the update fixes a CVE with at least this CVSS base score.
    pub cvss_at_least: Option<f64>,
    /// Approve when the update fixes a finding whose SSVC decision is Act.
    pub ssvc_act: bool,
}

impl Default for AutoApprove {
    fn default() -> Self {
        AutoApprove {
            classifications: vec![Classification::Security, Classification::Critical],
            kev: true,
            cvss_at_least: Some(7.0),
            ssvc_act: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalRules {
    pub auto_approve: AutoApprove,
    /// Classifications that always need a person.
    pub review: Vec<Classification>,
    /// Days an update of a classification must have been available before it is offered
    /// for review (a feature update waits 14 days for the world to find its bugs).
    pub wait_days: BTreeMap<Classification, u32>,
    /// An emergency override needs a second approver.
    pub emergency_second_approver: bool,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        ApprovalRules {
            auto_approve: AutoApprove::default(),
            review: vec![Classification::Driver, Classification::Firmware],
            wait_days: BTreeMap::from([(Classification::Feature, 14)]),
            emergency_second_approver: true,
        }
    }
}

impl ApprovalRules {
    /// Reads the rules from the `approval` field's value, with a message naming what is wrong.
    pub fn from_value(v: &serde_json::Value) -> Result<Self, String> {
        let rules: ApprovalRules = serde_path_to_error::deserialize(v)
            .map_err(|e| format!("approval.{}: {}", e.path(), e.inner()))?;
        if let Some(c) = rules.auto_approve.cvss_at_least
            && !(0.0..=10.0).contains(&c)
        {
            return Err("approval.auto_approve.cvss_at_least: must be between 0.0 and 10.0".into());
        }
        if let Some((c, d)) = rules.wait_days.iter().find(|(_, d)| **d > 365) {
            return Err(format!("approval.wait_days.{}: {d} days is more than a year", c.as_str()));
        }
        Ok(rules)
    }
}

/// What the rules consider about one update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateFacts {
    pub classification: Option<Classification>,
    /// It fixes a CVE in KEV.
    pub kev: bool,
    /// The highest CVSS base score among the CVEs it fixes.
    pub max_cvss: Option<f64>,
    /// It fixes a finding whose SSVC decision is Act.
    pub ssvc_act: bool,
    /// Seconds since the Unix epoch when the update was first offered to a device.
    pub available_since: Option<i64>,
}

/// The rules' answer for one update.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Approved by rule `rule` ("kev", "cvss", "ssvc_act").
    Approve { rule: &'static str, reason: String },
    /// Waits until `until` (epoch seconds) before a person may review it.
    Wait { until: i64, reason: String },
    /// A person decides.
    Review { reason: String },
}

/// Evaluates the rules for one update at `now` (epoch seconds).
pub fn evaluate(rules: &ApprovalRules, u: &UpdateFacts, now: i64) -> Verdict {
    let class = u.classification.unwrap_or(Classification::Bugfix);
    if rules.review.contains(&class) {
        return Verdict::Review { reason: format!("{} updates always need review", class.as_str()) };
    }
    if let Some(days) = rules.wait_days.get(&class) {
        let since = u.available_since.unwrap_or(now);
        let until = since + i64::from(*days) * 86_400;
        if now < until {
            return Verdict::Wait {
                until,
                reason: format!("{} updates wait {days} days after release before review", class.as_str()),
            };
        }
    }
    let a = &rules.auto_approve;
    if a.classifications.contains(&class) {
        if a.kev && u.kev {
            return Verdict::Approve { rule: "kev", reason: "fixes a CVE in CISA KEV".into() };
        }
        if let (Some(min), Some(c)) = (a.cvss_at_least, u.max_cvss)
            && c >= min
        {
            return Verdict::Approve {
                rule: "cvss",
                reason: format!("fixes a CVE with CVSS {c:.1} ≥ {min:.1}"),
            };
        }
        if a.ssvc_act && u.ssvc_act {
            return Verdict::Approve {
                rule: "ssvc_act",
                reason: "fixes a finding whose SSVC decision is Act".into(),
            };
        }
    }
    Verdict::Review { reason: format!("no rule approves this {} update", class.as_str()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_documented_rules() {
        let r = ApprovalRules::default();
        let sec = |kev, cvss| UpdateFacts {
            classification: Some(Classification::Security),
            kev,
            max_cvss: cvss,
            ..Default::default()
        };
        assert!(matches!(evaluate(&r, &sec(true, None), 0), Verdict::Approve { rule: "kev", .. }));
        assert!(matches!(evaluate(&r, &sec(false, Some(7.5)), 0), Verdict::Approve { rule: "cvss", .. }));
        assert!(matches!(evaluate(&r, &sec(false, Some(6.9)), 0), Verdict::Review { .. }));
        let feature = UpdateFacts {
            classification: Some(Classification::Feature),
            available_since: Some(1000),
            ..Default::default()
        };
        assert_eq!(
            evaluate(&r, &feature, 1000 + 86_400),
            Verdict::Wait {
                until: 1000 + 14 * 86_400,
                reason: "feature updates wait 14 days after release before review".into()
            }
        );
        assert!(matches!(evaluate(&r, &feature, 1000 + 14 * 86_400), Verdict::Review { .. }));
        let driver =
            UpdateFacts { classification: Some(Classification::Driver), kev: true, ..Default::default() };
        assert!(matches!(evaluate(&r, &driver, 0), Verdict::Review { .. }));
    }

    #[test]
    fn bad_rules_are_named() {
        let e = ApprovalRules::from_value(&serde_json::json!({"auto_approve": {"kevv": true}})).unwrap_err();
        assert!(e.contains("kevv"), "{e}");
        let e = ApprovalRules::from_value(&serde_json::json!({"review": ["drivers"]})).unwrap_err();
        assert!(e.starts_with("approval.review"), "{e}");
        let e = ApprovalRules::from_value(&serde_json::json!({"auto_approve": {"cvss_at_least": 11}}))
            .unwrap_err();
        assert!(e.contains("between"), "{e}");
    }
}
