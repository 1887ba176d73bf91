//! The policy form's fields for the common settings (ring and validation, maintenance window,
//! business hours, reboot, approval rules, deadlines, concurrency), and how they map to and
//! from a policy's settings object. What the fields do not cover (blackouts, health checks,
//! exclusions, several windows, finer approval rules) stays in the JSON of the advanced view.
//! A setting is taken from the fields or from the JSON, never both.

use ringfence_model::ValueError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The form's fields, as text (empty: the policy does not set it).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Fields {
    pub ring: String,
    pub val_security: String,
    pub val_feature: String,
    pub window_dtstart: String,
    pub window_rrule: String,
    pub window_duration: String,
    pub bh_days: String,
    pub bh_start: String,
    pub bh_end: String,
    pub reboot: String,
    pub auto_rollback: String,
    pub max_concurrent: String,
    pub ap_kev: Option<String>,
    pub ap_ssvc: Option<String>,
    pub ap_cvss: String,
    pub sla_critical: String,
    pub sla_high: String,
    pub sla_medium: String,
    pub sla_kev_days: String,
}

/// Which form field shows a setting's path in an error message ("sla.critical_days: …").
pub const PATHS: &[(&str, &str)] = &[
    ("ring", "ring"),
    ("val_security", "validation_hours"),
    ("window_dtstart", "maintenance_windows[0].dtstart"),
    ("window_rrule", "maintenance_windows[0].rrule"),
    ("window_duration", "maintenance_windows[0].duration"),
    ("bh_days", "business_hours"),
    ("reboot", "reboot"),
    ("max_concurrent", "max_concurrent"),
    ("ap_cvss", "approval"),
    ("sla_critical", "sla.critical_days"),
    ("sla_high", "sla.high_days"),
    ("sla_medium", "sla.medium_days"),
    ("sla_kev_days", "sla.kev_days"),
];

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Whether `v` is an object whose keys are all among `keys`.
fn only(v: Option<&Value>, keys: &[&str]) -> bool {
    v.and_then(Value::as_object).is_some_and(|o| o.keys().all(|k| keys.contains(&k.as_str())))
}

/// Splits stored settings into the form's fields and the rest (for the JSON view).
pub fn split(settings: &Map<String, Value>) -> (Fields, Map<String, Value>) {
    let mut rest = settings.clone();
    let mut f = Fields::default();
    let mut take = |key: &str| rest.remove(key);
    if settings.get("ring").is_some_and(Value::is_u64) {
        f.ring = text(take("ring").as_ref());
    }
    if only(settings.get("validation_hours"), &["security", "feature"]) {
        let v = take("validation_hours");
        f.val_security = text(v.as_ref().and_then(|v| v.get("security")));
        f.val_feature = text(v.as_ref().and_then(|v| v.get("feature")));
    }
    if let Some(list) = settings.get("maintenance_windows").and_then(Value::as_array)
        && list.len() == 1
        && only(list.first(), &["dtstart", "rrule", "duration"])
    {
        let w = &list[0];
        f.window_dtstart = text(w.get("dtstart"));
        f.window_rrule = text(w.get("rrule"));
        f.window_duration = text(w.get("duration"));
        take("maintenance_windows");
    }
    if only(settings.get("business_hours"), &["days", "start", "end"]) {
        let v = take("business_hours");
        f.bh_days = text(v.as_ref().and_then(|v| v.get("days")));
        f.bh_start = text(v.as_ref().and_then(|v| v.get("start")));
        f.bh_end = text(v.as_ref().and_then(|v| v.get("end")));
    }
    if settings.get("reboot").is_some_and(Value::is_string) {
        f.reboot = text(take("reboot").as_ref());
    }
    if settings.get("auto_rollback").is_some_and(Value::is_boolean) {
        f.auto_rollback = text(take("auto_rollback").as_ref());
    }
    if settings.get("max_concurrent").is_some_and(Value::is_u64) {
        f.max_concurrent = text(take("max_concurrent").as_ref());
    }
    if only(settings.get("approval"), &["auto_approve"])
        && only(
            settings.get("approval").and_then(|a| a.get("auto_approve")),
            &["kev", "ssvc_act", "cvss_at_least"],
        )
    {
        let a = take("approval");
        let auto = a.as_ref().and_then(|a| a.get("auto_approve"));
        f.ap_kev =
            auto.and_then(|x| x.get("kev")).and_then(Value::as_bool).filter(|b| *b).map(|_| "on".into());
        f.ap_ssvc =
            auto.and_then(|x| x.get("ssvc_act")).and_then(Value::as_bool).filter(|b| *b).map(|_| "on".into());
        f.ap_cvss = text(auto.and_then(|x| x.get("cvss_at_least")));
    }
    if only(settings.get("sla"), &["critical_days", "high_days", "medium_days", "kev_days"]) {
        let v = take("sla");
        f.sla_critical = text(v.as_ref().and_then(|v| v.get("critical_days")));
        f.sla_high = text(v.as_ref().and_then(|v| v.get("high_days")));
        f.sla_medium = text(v.as_ref().and_then(|v| v.get("medium_days")));
        f.sla_kev_days = text(v.as_ref().and_then(|v| v.get("kev_days")));
    }
    (f, rest)
}

fn number(field: &str, v: &str) -> Result<Option<Value>, ValueError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<u64>()
        .map(|n| Some(json!(n)))
        .map_err(|_| ValueError::new(field, format!("'{v}' is not a whole number")))
}

/// The settings the fields and the JSON of the other settings make together.
pub fn merge(f: &Fields, mut rest: Map<String, Value>) -> Result<Map<String, Value>, ValueError> {
    let mut set = |key: &str, field: &str, v: Value| -> Result<(), ValueError> {
        if rest.contains_key(key) {
            return Err(ValueError::new(
                field,
                format!("'{key}' is set both in the form and in the other settings (JSON): keep one"),
            ));
        }
        rest.insert(key.to_owned(), v);
        Ok(())
    };
    if let Some(n) = number("ring", &f.ring)? {
        set("ring", "ring", n)?;
    }
    let security = number("val_security", &f.val_security)?;
    let feature = number("val_feature", &f.val_feature)?;
    if security.is_some() || feature.is_some() {
        let mut o = Map::new();
        if let Some(s) = security {
            o.insert("security".into(), s);
        }
        if let Some(x) = feature {
            o.insert("feature".into(), x);
        }
        set("validation_hours", "val_security", Value::Object(o))?;
    }
    let window = [&f.window_dtstart, &f.window_rrule, &f.window_duration];
    if window.iter().any(|x| !x.trim().is_empty()) {
        if window.iter().any(|x| x.trim().is_empty()) {
            return Err(ValueError::new(
                "window_dtstart",
                "a maintenance window needs its first start, its repetition (RRULE) and its length",
            ));
        }
        let w = json!([{ "dtstart": f.window_dtstart.trim(), "rrule": f.window_rrule.trim(), "duration": f.window_duration.trim() }]);
        set("maintenance_windows", "window_dtstart", w)?;
    }
    let hours = [&f.bh_days, &f.bh_start, &f.bh_end];
    if hours.iter().any(|x| !x.trim().is_empty()) {
        if hours.iter().any(|x| x.trim().is_empty()) {
            return Err(ValueError::new("bh_days", "business hours need their days, start and end"));
        }
        let b = json!({ "days": f.bh_days.trim(), "start": f.bh_start.trim(), "end": f.bh_end.trim() });
        set("business_hours", "bh_days", b)?;
    }
    if !f.reboot.trim().is_empty() {
        set("reboot", "reboot", json!(f.reboot.trim()))?;
    }
    match f.auto_rollback.trim() {
        "" => {}
        "true" => set("auto_rollback", "auto_rollback", json!(true))?,
        "false" => set("auto_rollback", "auto_rollback", json!(false))?,
        other => return Err(ValueError::new("auto_rollback", format!("'{other}' is not true or false"))),
    }
    if let Some(n) = number("max_concurrent", &f.max_concurrent)? {
        set("max_concurrent", "max_concurrent", n)?;
    }
    let cvss = f.ap_cvss.trim();
    if f.ap_kev.is_some() || f.ap_ssvc.is_some() || !cvss.is_empty() {
        let mut auto = Map::new();
        auto.insert("kev".into(), json!(f.ap_kev.is_some()));
        auto.insert("ssvc_act".into(), json!(f.ap_ssvc.is_some()));
        if !cvss.is_empty() {
            let score: f64 = cvss.parse().ok().filter(|s| (0.0..=10.0).contains(s)).ok_or_else(|| {
                ValueError::new("ap_cvss", format!("'{cvss}' is not a CVSS score from 0 to 10"))
            })?;
            auto.insert("cvss_at_least".into(), json!(score));
        }
        set("approval", "ap_cvss", json!({ "auto_approve": auto }))?;
    }
    let sla = [
        ("critical_days", "sla_critical", &f.sla_critical),
        ("high_days", "sla_high", &f.sla_high),
        ("medium_days", "sla_medium", &f.sla_medium),
        ("kev_days", "sla_kev_days", &f.sla_kev_days),
    ];
    let mut o = Map::new();
    for (key, field, v) in sla {
        if let Some(n) = number(field, v)? {
            o.insert(key.into(), n);
        }
    }
    if !o.is_empty() {
        set("sla", "sla_critical", Value::Object(o))?;
    }
    Ok(rest)
}

/// The form field an error message is about, to mark it.
pub fn field_of(message: &str) -> Option<&'static str> {
    PATHS.iter().find(|(_, path)| message.contains(path)).map(|(field, _)| *field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn common_settings_go_to_fields_and_come_back_unchanged() {
        let stored = obj(json!({
            "ring": 1,
            "maintenance_windows": [{"dtstart": "2026-01-06T22:00", "rrule": "FREQ=WEEKLY;BYDAY=TU", "duration": "PT3H"}],
            "business_hours": {"days": "MO,TU,WE,TH,FR", "start": "08:00", "end": "18:00"},
            "reboot": "ask",
            "approval": {"auto_approve": {"kev": true, "ssvc_act": false, "cvss_at_least": 9.0}},
            "sla": {"critical_days": 7, "kev_days": 10},
            "blackouts": [{"name": "year end", "start": "2026-12-24T00:00:00Z", "end": "2027-01-02T00:00:00Z"}]
        }));
        let (fields, rest) = split(&stored);
        assert_eq!(fields.ring, "1");
        assert_eq!(fields.window_rrule, "FREQ=WEEKLY;BYDAY=TU");
        assert_eq!(
            (fields.ap_kev.as_deref(), fields.ap_ssvc.as_deref(), fields.ap_cvss.as_str()),
            (Some("on"), None, "9.0")
        );
        assert_eq!((fields.sla_critical.as_str(), fields.sla_kev_days.as_str()), ("7", "10"));
        assert_eq!(rest.keys().collect::<Vec<_>>(), ["blackouts"], "what the form does not show stays JSON");
        assert_eq!(merge(&fields, rest).unwrap(), stored);
    }

    #[test]
    fn settings_the_form_cannot_show_stay_in_the_json() {
        let stored = obj(json!({
            "maintenance_windows": [
                {"dtstart": "2026-01-06T22:00", "rrule": "FREQ=WEEKLY;BYDAY=TU", "duration": "PT3H"},
                {"dtstart": "2026-01-04T02:00", "rrule": "FREQ=WEEKLY;BYDAY=SU", "duration": "PT4H"}
            ],
            "sla": {"critical_days": 7, "low_days": null},
            "approval": {"auto_approve": {"kev": true}, "review": ["driver"]}
        }));
        let (fields, rest) = split(&stored);
        assert_eq!(fields, Fields::default());
        assert_eq!(rest, stored);
    }

    #[test]
    fn bad_or_doubled_fields_are_refused_by_name() {
        let cases = [
            (Fields { ring: "two".into(), ..Default::default() }, json!({}), "ring"),
            (
                Fields { window_dtstart: "2026-01-06T22:00".into(), ..Default::default() },
                json!({}),
                "window_dtstart",
            ),
            (Fields { ap_cvss: "11".into(), ..Default::default() }, json!({}), "ap_cvss"),
            (Fields { sla_high: "-3".into(), ..Default::default() }, json!({}), "sla_high"),
            (Fields { reboot: "never".into(), ..Default::default() }, json!({"reboot": "allowed"}), "reboot"),
        ];
        for (fields, rest, field) in cases {
            let e = merge(&fields, obj(rest)).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
        }
        assert_eq!(field_of("sla.critical_days: must be 1 to 365 days"), Some("sla_critical"));
        assert_eq!(
            field_of("maintenance_windows[0].rrule: FREQ=YEARLY is not supported"),
            Some("window_rrule")
        );
    }
}
