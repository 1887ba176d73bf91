//! The settings a policy may hold, checked when the policy is saved so a typo never reaches
//! a device ("rnig" is refused with the list of known fields).

use crate::approval::ApprovalRules;
use crate::catalog::Classification;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every field a policy may set, with what it holds.
pub const FIELDS: &[(&str, &str)] = &[
    (
        "ring",
        "the device's test ring, 0 (internal) to 9; the defaults are 0 internal, 1 canary, 2 general, 3 critical",
    ),
    (
        "maintenance_windows",
        "a list of {dtstart: 'YYYY-MM-DDTHH:MM', rrule: 'FREQ=…', duration: 'PT3H'} in the device's time zone",
    ),
    ("reboot", "'allowed' (inside the window), 'ask' (notify and wait) or 'never'"),
    (
        "approval",
        "approval rules: {auto_approve: {classifications, kev, cvss_at_least, ssvc_act}, review, wait_days, emergency_second_approver}",
    ),
    ("exclusions", "a list of package names never updated on these devices"),
    (
        "health_checks",
        "checks run after every change: a list of {check: 'systemd_unit', unit}, {check: 'tcp', host, port}, {check: 'http', url, expect_status?} or {check: 'command', argv: [...], timeout_secs?}",
    ),
    ("auto_rollback", "true to roll back automatically when verification fails"),
    ("max_concurrent", "how many devices of one organization may install at once (1 to 10000)"),
    (
        "blackouts",
        "spans no deployment may touch: a list of {name, start, end} (RFC 3339 instants) or {name, dtstart: 'YYYY-MM-DDTHH:MM', rrule, duration} (recurring, in the organization's time zone)",
    ),
    (
        "business_hours",
        "hours no non-emergency deployment may enter: {days: 'MO,TU,WE,TH,FR', start: '08:00', end: '18:00'} in the organization's time zone",
    ),
    (
        "validation_hours",
        "hours an update stays in a ring before the next, by classification: {security: 24, feature: 72}",
    ),
    (
        "sla",
        "remediation deadlines from first detection: {kev_due_date: true, kev_days: 14, critical_days: 15, high_days: 30, medium_days: 90, low_days: null} (1 to 365 days; null for no deadline; kev_due_date holds KEV findings to CISA's due date, but never to less than kev_days from detection)",
    ),
];

/// The `sla` setting as written: a field left out keeps its default, `null` means no deadline.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaSetting {
    #[serde(default = "yes")]
    pub kev_due_date: bool,
    #[serde(default = "kev_days")]
    pub kev_days: u32,
    #[serde(default = "critical")]
    pub critical_days: Option<u32>,
    #[serde(default = "high")]
    pub high_days: Option<u32>,
    #[serde(default = "medium")]
    pub medium_days: Option<u32>,
    #[serde(default)]
    pub low_days: Option<u32>,
}

// A field left out keeps its default; `null` means no deadline.
fn yes() -> bool {
    true
}
fn kev_days() -> u32 {
    14
}
fn critical() -> Option<u32> {
    Some(15)
}
fn high() -> Option<u32> {
    Some(30)
}
fn medium() -> Option<u32> {
    Some(90)
}

/// Reads the `sla` setting: days from a finding's first detection by severity, and whether a
/// KEV finding is held to CISA's due date (whichever is earlier). Without the setting,
/// `SlaPolicy::default()` applies.
pub fn sla(v: &Value) -> Result<ringfence_evidence::SlaPolicy, String> {
    let s: SlaSetting = typed("sla", v)?;
    for (name, days) in [
        ("critical_days", s.critical_days),
        ("high_days", s.high_days),
        ("medium_days", s.medium_days),
        ("low_days", s.low_days),
    ] {
        if days.is_some_and(|d| !(1..=365).contains(&d)) {
            return Err(format!("sla.{name}: must be 1 to 365 days, or null for no deadline"));
        }
    }
    if !(1..=365).contains(&s.kev_days) {
        return Err(
            "sla.kev_days: must be 1 to 365 days (the least time a KEV finding gets from its detection)"
                .into(),
        );
    }
    Ok(ringfence_evidence::SlaPolicy {
        kev_due_date: s.kev_due_date,
        kev_days: s.kev_days,
        critical_days: s.critical_days,
        high_days: s.high_days,
        medium_days: s.medium_days,
        low_days: s.low_days,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    dtstart: String,
    rrule: String,
    duration: String,
    #[serde(default)]
    #[allow(dead_code)]
    exdates: Vec<String>,
}

/// One blackout: a one-off span, or a recurring one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackoutSetting {
    #[serde(default)]
    pub name: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub dtstart: Option<String>,
    pub rrule: Option<String>,
    pub duration: Option<String>,
}

/// A blackout read from settings.
#[derive(Debug, Clone)]
pub enum BlackoutRule {
    Once { start: jiff::Timestamp, end: jiff::Timestamp },
    Recurring(ringfence_schedule::Recurrence),
}

fn local(field: &str, s: &str) -> Result<jiff::civil::DateTime, String> {
    jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", s)
        .or_else(|_| jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", s))
        .map_err(|_| format!("{field}: '{s}' is not YYYY-MM-DDTHH:MM"))
}

/// Reads the `maintenance_windows` setting as recurrences in `tz` (the device's zone).
pub fn maintenance_windows(v: &Value, tz: &str) -> Result<Vec<ringfence_schedule::Recurrence>, String> {
    let ws: Vec<Window> = typed("maintenance_windows", v)?;
    ws.iter()
        .enumerate()
        .map(|(i, w)| {
            let at = |part: &str| format!("maintenance_windows[{i}].{part}");
            let dtstart = local(&at("dtstart"), &w.dtstart)?;
            let rule =
                ringfence_schedule::Rule::parse(&w.rrule).map_err(|e| format!("{}: {e}", at("rrule")))?;
            let duration = ringfence_schedule::Duration::parse(&w.duration)
                .map_err(|e| format!("{}: {e}", at("duration")))?;
            ringfence_schedule::Recurrence::new(tz, dtstart, rule, duration, vec![])
                .map_err(|e| format!("{}: {e}", at("dtstart")))
        })
        .collect()
}

/// Reads the `blackouts` setting; recurring ones are in `tz`.
pub fn blackouts(v: &Value, tz: &str) -> Result<Vec<BlackoutRule>, String> {
    let list: Vec<BlackoutSetting> = typed("blackouts", v)?;
    let mut out = Vec::with_capacity(list.len());
    for (i, b) in list.iter().enumerate() {
        let at = |part: &str| format!("blackouts[{i}].{part}");
        match (&b.start, &b.end, &b.dtstart, &b.rrule, &b.duration) {
            (Some(s), Some(e), None, None, None) => {
                let parse = |part: &str, x: &str| {
                    x.parse::<jiff::Timestamp>().map_err(|_| {
                        format!("{}: '{x}' is not an RFC 3339 instant such as 2026-12-28T00:00:00Z", at(part))
                    })
                };
                let (start, end) = (parse("start", s)?, parse("end", e)?);
                if end <= start {
                    return Err(format!("{}: must be after start", at("end")));
                }
                out.push(BlackoutRule::Once { start, end });
            }
            (None, None, Some(d), Some(r), Some(len)) => {
                let rule = ringfence_schedule::Rule::parse(r).map_err(|e| format!("{}: {e}", at("rrule")))?;
                let duration = ringfence_schedule::Duration::parse(len)
                    .map_err(|e| format!("{}: {e}", at("duration")))?;
                let rec = ringfence_schedule::Recurrence::new(
                    tz,
                    local(&at("dtstart"), d)?,
                    rule,
                    duration,
                    vec![],
                )
                .map_err(|e| format!("{}: {e}", at("dtstart")))?;
                out.push(BlackoutRule::Recurring(rec));
            }
            _ => {
                return Err(format!(
                    "blackouts[{i}]: give either start and end (a one-off span) or dtstart, rrule and duration (a recurring one)"
                ));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusinessHoursSetting {
    days: String,
    start: String,
    end: String,
}

/// Reads the `business_hours` setting as a weekly recurrence in `tz`.
pub fn business_hours(v: &Value, tz: &str) -> Result<ringfence_schedule::Recurrence, String> {
    let b: BusinessHoursSetting = typed("business_hours", v)?;
    let time = |part: &str, s: &str| {
        jiff::civil::Time::strptime("%H:%M", s)
            .map_err(|_| format!("business_hours.{part}: '{s}' is not HH:MM"))
    };
    let (start, end) = (time("start", &b.start)?, time("end", &b.end)?);
    if end <= start {
        return Err("business_hours.end: must be after start (business hours do not cross midnight)".into());
    }
    let rule = ringfence_schedule::Rule::parse(&format!("FREQ=WEEKLY;BYDAY={}", b.days.trim()))
        .map_err(|e| format!("business_hours.days: {e}"))?;
    let minutes = start.duration_until(end).as_secs() / 60;
    let duration = ringfence_schedule::Duration::parse(&format!("PT{minutes}M"))
        .map_err(|e| format!("business_hours: {e}"))?;
    let dtstart = jiff::civil::date(2026, 1, 5).to_datetime(start);
    ringfence_schedule::Recurrence::new(tz, dtstart, rule, duration, vec![])
        .map_err(|e| format!("business_hours: {e}"))
}

/// Reads the `health_checks` setting as the checks an agent job carries.
pub fn health_checks(v: &Value) -> Result<Vec<ringfence_proto::jobs::HealthCheck>, String> {
    let checks: Vec<ringfence_proto::jobs::HealthCheck> = typed("health_checks", v)?;
    if checks.len() > ringfence_proto::jobs::MAX_CHECKS {
        return Err(format!("health_checks: at most {} checks", ringfence_proto::jobs::MAX_CHECKS));
    }
    for (i, c) in checks.iter().enumerate() {
        c.check().map_err(|e| format!("health_checks[{i}]: {e}"))?;
    }
    Ok(checks)
}

fn typed<T: for<'de> Deserialize<'de>>(field: &str, v: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { format!("{field}: {}", e.inner()) } else { format!("{field}.{path}: {}", e.inner()) }
    })
}

/// Checks every field of a policy's settings; the error names the field and what it takes.
pub fn validate(settings: &BTreeMap<String, Value>) -> Result<(), String> {
    for (field, v) in settings {
        match field.as_str() {
            "ring" => {
                let r: u8 = typed(field, v)?;
                if r > 9 {
                    return Err("ring: must be 0 to 9".into());
                }
            }
            "maintenance_windows" => {
                maintenance_windows(v, "UTC")?;
            }
            "reboot" => {
                let r: String = typed(field, v)?;
                if !["allowed", "ask", "never"].contains(&r.as_str()) {
                    return Err(format!("reboot: '{r}' is not one of allowed, ask, never"));
                }
            }
            "approval" => {
                ApprovalRules::from_value(v)?;
            }
            "exclusions" => {
                let names: Vec<String> = typed(field, v)?;
                if names.iter().any(|n| n.trim().is_empty() || n.len() > 200) {
                    return Err("exclusions: every name must be 1 to 200 characters".into());
                }
            }
            "health_checks" => {
                health_checks(v)?;
            }
            "auto_rollback" => {
                typed::<bool>(field, v)?;
            }
            "max_concurrent" => {
                let n: u32 = typed(field, v)?;
                if !(1..=10_000).contains(&n) {
                    return Err("max_concurrent: must be 1 to 10000".into());
                }
            }
            "blackouts" => {
                blackouts(v, "UTC")?;
            }
            "business_hours" => {
                business_hours(v, "UTC")?;
            }
            "sla" => {
                sla(v)?;
            }
            "validation_hours" => {
                let h: BTreeMap<Classification, u32> = typed(field, v)?;
                if h.values().any(|h| *h > 720) {
                    return Err("validation_hours: at most 720 hours (30 days) per ring".into());
                }
            }
            other => {
                let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                return Err(format!("unknown setting '{other}': a policy may set {}", known.join(", ")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<(), String> {
        validate(&v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    #[test]
    fn good_and_bad_settings() {
        assert!(check(json!({"health_checks": [{"check": "systemd_unit", "unit": "ssh.service"}, {"check": "tcp", "host": "127.0.0.1", "port": 22}]})).is_ok());
        assert!(
            check(json!({"health_checks": [{"check": "tcp", "host": "db", "port": 0}]}))
                .unwrap_err()
                .starts_with("health_checks[0]: port")
        );
        assert!(
            check(json!({"health_checks": [{"kind": "systemd", "target": "x"}]}))
                .unwrap_err()
                .starts_with("health_checks")
        );
        check(json!({"ring": 2, "reboot": "allowed", "max_concurrent": 5,
            "maintenance_windows": [{"dtstart": "2026-01-04T02:00", "rrule": "FREQ=WEEKLY;BYDAY=SU", "duration": "PT3H"}],
            "validation_hours": {"security": 24, "feature": 72}, "approval": {"review": ["driver"]}}))
        .unwrap();
        assert!(check(json!({"rnig": 2})).unwrap_err().starts_with("unknown setting 'rnig'"));
        assert!(check(json!({"ring": "two"})).unwrap_err().starts_with("ring:"));
        assert!(check(json!({"ring": 12})).unwrap_err().contains("0 to 9"));
        let e = check(json!({"maintenance_windows": [{"dtstart": "2026-01-04T02:00", "rrule": "FREQ=HOURLY", "duration": "PT3H"}]}))
            .unwrap_err();
        assert!(e.starts_with("maintenance_windows[0].rrule"), "{e}");
        assert!(check(json!({"reboot": "sometimes"})).unwrap_err().contains("allowed, ask, never"));
        check(json!({"blackouts": [
            {"name": "quarter-end close", "start": "2026-12-28T00:00:00Z", "end": "2027-01-02T00:00:00Z"},
            {"name": "month-end", "dtstart": "2026-01-31T00:00", "rrule": "FREQ=MONTHLY;BYMONTHDAY=-1", "duration": "P1D"}],
            "business_hours": {"days": "MO,TU,WE,TH,FR", "start": "08:00", "end": "18:00"}}))
        .unwrap();
        let e = check(json!({"blackouts": [{"name": "x", "start": "2026-12-28T00:00:00Z"}]})).unwrap_err();
        assert!(e.contains("give either start and end"), "{e}");
        let e =
            check(json!({"blackouts": [{"start": "2026-12-28T00:00:00Z", "end": "2026-12-27T00:00:00Z"}]}))
                .unwrap_err();
        assert!(e.starts_with("blackouts[0].end: must be after start"), "{e}");
        let e = check(json!({"blackouts": [{"dtstart": "2026-01-31T00:00", "rrule": "FREQ=HOURLY", "duration": "P1D"}]})).unwrap_err();
        assert!(e.starts_with("blackouts[0].rrule"), "{e}");
        let e =
            check(json!({"business_hours": {"days": "MO", "start": "18:00", "end": "08:00"}})).unwrap_err();
        assert!(e.starts_with("business_hours.end"), "{e}");
        let e =
            check(json!({"business_hours": {"days": "XX", "start": "08:00", "end": "18:00"}})).unwrap_err();
        assert!(e.starts_with("business_hours.days"), "{e}");
        assert!(
            check(json!({"validation_hours": {"securty": 24}})).unwrap_err().starts_with("validation_hours")
        );
        check(json!({"sla": {"critical_days": 7, "high_days": 14, "low_days": null}})).unwrap();
        let e = check(json!({"sla": {"critical_days": 0}})).unwrap_err();
        assert!(e.starts_with("sla.critical_days: must be 1 to 365"), "{e}");
        let e = check(json!({"sla": {"kev_days": 0}})).unwrap_err();
        assert!(e.starts_with("sla.kev_days: must be 1 to 365"), "{e}");
        let e = check(json!({"sla": {"critcal_days": 7}})).unwrap_err();
        assert!(e.starts_with("sla") && e.contains("critcal_days"), "{e}");
        assert_eq!(
            sla(&json!({"high_days": 10, "medium_days": null})).unwrap(),
            ringfence_evidence::SlaPolicy {
                kev_due_date: true,
                kev_days: 14,
                critical_days: Some(15),
                high_days: Some(10),
                medium_days: None,
                low_days: None
            }
        );
    }
}
