//! The evidence log as people read it: each event a sentence with names ("tech@… approved
//! Windows KB5046617 for Hartley & Moss LLP: …"), the raw event one click away, and the
//! chain's verification on top.

use super::{Layout, Viewer, layout, render, viewer_error};
use crate::AppState;
use crate::extract::parse_query;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use ringfence_engine::EngineError;
use ringfence_model::*;
use ringfence_proto as proto;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// An event as a row: when, who, and what happened in words.
pub(super) struct Line {
    seq: i64,
    at: String,
    actor: String,
    sentence: String,
}

#[derive(Template)]
#[template(path = "evidence.html")]
struct EvidencePage {
    layout: Layout,
    lines: Vec<Line>,
    verification: Option<proto::ChainVerification>,
    older: Option<String>,
    params: EvidenceParams,
    orgs: Vec<Organization>,
    /// The filtered scan stopped before the start of the log.
    stopped_at: Option<i64>,
}

/// The kinds of event a reader filters by, with their names.
const ACTIONS: [(&str, &str); 14] = [
    ("approval", "approvals and rejections"),
    ("exception", "exceptions"),
    ("organization", "clients"),
    ("site", "sites"),
    ("device", "devices"),
    ("appliance", "appliances"),
    ("deployment", "deployments"),
    ("findings", "findings opened and resolved"),
    ("inventory", "inventories"),
    ("policy", "policies"),
    ("session", "sign-ins"),
    ("rollout", "halts"),
    ("report", "reports"),
    ("user", "users"),
];

#[derive(Deserialize, Default)]
pub(super) struct EvidenceParams {
    before: Option<i64>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    organization_id: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[allow(dead_code)]
    error: Option<String>,
    #[allow(dead_code)]
    notice: Option<String>,
}

impl EvidenceParams {
    /// The filters as a query string (for the link to older events).
    fn query(&self) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("organization_id", &self.organization_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                ser.append_pair(k, v.trim());
            }
        }
        ser.finish()
    }

    fn filter(&self) -> Result<ringfence_engine::evidence::EventFilter, EngineError> {
        let day = |field: &str, v: &str, next: bool| -> Result<Option<Timestamp>, EngineError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            let d: jiff::civil::Date = v.parse().map_err(|_| {
                EngineError::Invalid(ValueError::new(field, format!("'{v}' is not a date (YYYY-MM-DD)")))
            })?;
            let d = if next { d.tomorrow().unwrap_or(d) } else { d };
            Ok(d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp()))
        };
        if !self.action.is_empty() && !ACTIONS.iter().any(|(a, _)| *a == self.action) {
            return Err(EngineError::Invalid(ValueError::new(
                "action",
                format!("'{}' is not a kind of event", self.action),
            )));
        }
        let opt = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(ringfence_engine::evidence::EventFilter {
            action: opt(&self.action),
            actor: opt(&self.actor),
            organization_id: opt(&self.organization_id),
            since: day("from", &self.from, false)?,
            until: day("to", &self.to, true)?,
        })
    }
}

/// Names of what events refer to, by id: organizations, sites, groups, devices, policies and
/// (for those allowed to list them) users.
struct Names(HashMap<String, String>);

impl Names {
    async fn of(s: &AppState, p: &Principal) -> Result<Names, EngineError> {
        let e = &s.engine;
        let mut names = HashMap::new();
        for o in e.organizations(p).await? {
            names.insert(o.id.to_string(), o.name.to_string());
        }
        for x in e.sites(p, None).await? {
            names.insert(x.id.to_string(), format!("site {}", x.name));
        }
        for g in e.groups(p, None).await? {
            names.insert(g.id.to_string(), format!("group {}", g.name));
        }
        let mut offset = 0;
        loop {
            let q = proto::DeviceListQuery { limit: Some(500), offset: Some(offset), ..Default::default() };
            let page = e.devices(p, &q).await?;
            let n = page.items.len() as i64;
            for d in page.items {
                names.insert(d.id.to_string(), d.hostname);
            }
            offset += n;
            if n == 0 || offset >= page.total {
                break;
            }
        }
        for pol in e.policies(p).await? {
            names.insert(pol.id, format!("policy '{}'", pol.name));
        }
        if p.allows(Permission::ManageUsers)
            && let Ok(users) = e.users(p).await
        {
            for u in users {
                names.insert(u.id.to_string(), u.username);
            }
        }
        Ok(Names(names))
    }

    /// A name for an id, or what kind of thing it is when the name is not known here.
    fn name(&self, id: &str, kind: &str) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| format!("a {}", kind.replace('_', " ")))
    }

    /// Every id-shaped part of `text` replaced by its name.
    fn scrub(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((i, len)) = find_uuid(rest) {
            out.push_str(&rest[..i]);
            let id = &rest[i..i + len];
            out.push_str(&self.0.get(id).cloned().unwrap_or_else(|| "…".into()));
            rest = &rest[i + len..];
        }
        out.push_str(rest);
        out
    }
}

/// The position and length of the first UUID-shaped run in `s`.
fn find_uuid(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let groups = [8, 4, 4, 4, 12];
    (0..b.len()).find_map(|start| {
        if start > 0 && b[start - 1].is_ascii_hexdigit() {
            return None;
        }
        let mut i = start;
        for (k, n) in groups.iter().enumerate() {
            for _ in 0..*n {
                if !b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                    return None;
                }
                i += 1;
            }
            if k < 4 {
                if b.get(i) != Some(&b'-') {
                    return None;
                }
                i += 1;
            }
        }
        Some((start, i - start))
    })
}

/// Who acted, as people call them: a user by their sign-in, the server's workers by role.
fn actor(a: &str) -> String {
    match a.split_once(':') {
        Some(("user", name)) | Some(("token", name)) => name.to_owned(),
        Some(("agent", _)) => "the device's agent".into(),
        Some(("system", what)) => format!("ringfence ({what})"),
        Some(("cli", what)) => format!("the command line ({what})"),
        _ => match a {
            "dispatcher" => "the dispatcher".into(),
            "ring-gate" => "the ring gate".into(),
            other => other.replace('-', " "),
        },
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The event in one sentence, names in place of ids.
fn sentence(e: &proto::EvidenceEvent, names: &Names) -> String {
    let after = e.payload.get("after").unwrap_or(&e.payload);
    let object = names.name(&e.object_id, &e.object_kind);
    let org = e.organization_id.as_deref().map(|o| names.name(o, "organization"));
    let for_org = org.as_ref().map(|o| format!(" for {o}")).unwrap_or_default();
    let update = match (text(after, "product"), text(after, "version")) {
        (Some(p), Some(v)) => format!("{p} {v}"),
        (Some(p), None) => p,
        _ => String::new(),
    };
    let (verb, rest) = e.action.split_once('.').unwrap_or((e.action.as_str(), ""));
    let s = match (verb, rest) {
        ("session", "login") => "signed in".to_owned(),
        ("session", "logout") => "signed out".to_owned(),
        ("approval", decision) => {
            let why = text(after, "reason").map(|r| format!(": {r}")).unwrap_or_default();
            let by_rule = text(after, "rule")
                .map(|r| {
                    let policies = names.0.iter().filter_map(|(id, n)| {
                        n.strip_prefix("policy '")
                            .and_then(|n| n.strip_suffix('\''))
                            .map(|n| (id.as_str(), n))
                    });
                    format!(" by {}", ringfence_engine::remediation::rule_label(&r, policies))
                })
                .unwrap_or_default();
            let scope = if org.is_some() { for_org.clone() } else { " for every client".into() };
            format!("{} {update}{scope}{by_rule}{why}", decision.replace('_', " "))
        }
        ("deployment", status) => {
            let device =
                text(after, "device_id").map_or_else(|| object.clone(), |d| names.name(&d, "device"));
            let updates = after
                .get("updates")
                .and_then(Value::as_array)
                .map(|u| {
                    let mut list: Vec<String> = u
                        .iter()
                        .filter_map(|x| text(x, "product").zip(text(x, "version")))
                        .map(|(p, v)| format!("{p} {v}"))
                        .collect();
                    list.dedup();
                    list.join(", ")
                })
                .unwrap_or_default();
            let detail = text(after, "detail").map(|d| format!(" ({d})")).unwrap_or_default();
            format!("deployment of {updates} on {device}: {}{detail}", status.replace('_', " "))
        }
        ("findings", "change") => {
            let count = |k: &str| e.payload.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            let cves = |k: &str| {
                e.payload
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        let mut c: Vec<String> = a.iter().filter_map(|x| text(x, "cve")).collect();
                        c.sort();
                        c.dedup();
                        c.truncate(4);
                        c.join(", ")
                    })
                    .unwrap_or_default()
            };
            let mut parts = Vec::new();
            if count("opened") > 0 {
                parts.push(format!("{} finding(s) opened ({})", count("opened"), cves("opened")));
            }
            if count("resolved") > 0 {
                parts.push(format!("{} resolved ({})", count("resolved"), cves("resolved")));
            }
            format!("on {object}: {}", parts.join("; "))
        }
        ("inventory", "update") => {
            let n = |k: &str| text(&e.payload, k).unwrap_or_else(|| "0".into());
            format!(
                "inventory of {object}: {} items, {} installed, {} updated, {} removed",
                n("items"),
                n("installed"),
                n("updated"),
                n("removed")
            )
        }
        ("rollout", "halt") | ("rollout_halt", _) => {
            format!("halted {update} for every client: {}", text(after, "reason").unwrap_or_default())
        }
        ("report", "generate") => {
            let period = match (text(&e.payload, "period_start"), text(&e.payload, "period_end")) {
                (Some(a), Some(b)) => format!(" for {} to {}", &a[..a.len().min(10)], &b[..b.len().min(10)]),
                _ => String::new(),
            };
            format!("generated the client report{for_org}{period}")
        }
        (kind, action) => {
            let name = text(after, "name").or_else(|| text(after, "hostname")).unwrap_or(object);
            let what = if update.is_empty() { name } else { update };
            let past = match action {
                "create" => "created",
                "update" => "changed",
                "delete" => "deleted",
                "revoke" => "revoked",
                "release" => "released",
                other => other,
            };
            let why = text(after, "reason").map(|r| format!(": {r}")).unwrap_or_default();
            format!("{past} {} {what}{for_org}{why}", kind.replace('_', " "))
        }
    };
    names.scrub(&s)
}

/// `/evidence`: the newest events as sentences, 50 a page, filtered by kind, actor, client and
/// dates.
pub(super) async fn evidence(State(s): State<AppState>, v: Viewer, uri: Uri) -> Response {
    let params: EvidenceParams = match parse_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return viewer_error(&v, &uri, EngineError::Invalid(ValueError::new("query", e.body.message)));
        }
    };
    let filter = match params.filter() {
        Ok(f) => f,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let p = &v.0.principal;
    let result = async {
        let (events, stopped) = s.engine.latest_events_where(p, params.before, 50, &filter).await?;
        let verification =
            if p.organization_id.is_none() { Some(s.engine.verify_own_chain(p).await?) } else { None };
        let names = Names::of(&s, p).await?;
        let orgs = s.engine.organizations(p).await?;
        Ok::<_, EngineError>((events, stopped, verification, names, orgs))
    }
    .await;
    let (events, stopped, verification, names, orgs) = match result {
        Ok(x) => x,
        Err(e) => return viewer_error(&v, &uri, e),
    };
    let filters = params.query();
    let sep = if filters.is_empty() { "" } else { "&" };
    let older = match events.last() {
        Some(e) if events.len() == 50 && e.seq > 1 => {
            Some(format!("/evidence?before={}{sep}{filters}", e.seq))
        }
        _ if stopped > 1 => Some(format!("/evidence?before={stopped}{sep}{filters}")),
        _ => None,
    };
    let stopped_at = (events.len() < 50 && stopped > 1).then_some(stopped);
    let lines = events
        .iter()
        .map(|e| Line {
            seq: e.seq,
            at: e.at.get(..16).unwrap_or(&e.at).replace('T', " "),
            actor: names.scrub(&actor(&e.actor)),
            sentence: sentence(e, &names),
        })
        .collect();
    render(EvidencePage {
        layout: layout(&v, "Evidence log", "evidence", &uri),
        lines,
        verification,
        older,
        params,
        orgs,
        stopped_at,
    })
}

#[derive(Template)]
#[template(path = "evidence_event.html")]
struct EventPage {
    layout: Layout,
    line: Line,
    raw: String,
}

/// `/evidence/{seq}`: one event as stored, with its hashes, beside its sentence.
pub(super) async fn event(State(s): State<AppState>, v: Viewer, uri: Uri, Path(seq): Path<i64>) -> Response {
    let p = &v.0.principal;
    let result = async {
        let q = proto::EventQuery { after: Some(seq.saturating_sub(1).max(0)), limit: Some(1) };
        let event = s.engine.events(p, &q).await?.into_iter().find(|e| e.seq == seq);
        let event = event.ok_or(EngineError::NotFound("evidence event"))?;
        let names = Names::of(&s, p).await?;
        Ok::<_, EngineError>((event, names))
    }
    .await;
    match result {
        Ok((e, names)) => render(EventPage {
            layout: layout(&v, format!("Evidence event {}", e.seq), "evidence", &uri),
            line: Line {
                seq: e.seq,
                at: e.at.clone(),
                actor: names.scrub(&actor(&e.actor)),
                sentence: sentence(&e, &names),
            },
            raw: serde_json::to_string_pretty(&e).unwrap_or_default(),
        }),
        Err(e) => viewer_error(&v, &uri, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        actor: &str,
        action: &str,
        kind: &str,
        object: &str,
        org: Option<&str>,
        payload: Value,
    ) -> proto::EvidenceEvent {
        proto::EvidenceEvent {
            seq: 1,
            at: "2026-12-07T19:04:00Z".into(),
            actor: actor.into(),
            action: action.into(),
            object_kind: kind.into(),
            object_id: object.into(),
            organization_id: org.map(str::to_owned),
            payload,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    const ORG: &str = "01a251ea-3cfc-7494-bbda-2d9518d321ff";
    const POLICY: &str = "01a251ea-5170-741d-8d31-f7f3ea1edb75";
    const DEVICE: &str = "01a251ea-3cfd-770c-83a2-97a33bcd4c48";

    fn names() -> Names {
        Names(HashMap::from([
            (ORG.to_owned(), "Hartley & Moss LLP".to_owned()),
            (POLICY.to_owned(), "policy 'MSP baseline'".to_owned()),
            (DEVICE.to_owned(), "hm-nyc-lt02".to_owned()),
        ]))
    }

    #[test]
    fn events_read_as_sentences_with_names() {
        let n = names();
        let approved = event(
            "system:approval-rules",
            "approval.approved",
            "approval",
            "01a251ea-0000-7000-8000-000000000001",
            Some(ORG),
            serde_json::json!({"after": {"product": "google:chrome", "version": "128.0.6613.84",
                "rule": format!("policy:{POLICY}:kev"), "reason": "fixes a CVE in CISA KEV"}}),
        );
        assert_eq!(
            sentence(&approved, &n),
            "approved google:chrome 128.0.6613.84 for Hartley & Moss LLP by the kev rule of the policy 'MSP baseline': fixes a CVE in CISA KEV"
        );
        let failed = event(
            "agent:x",
            "deployment.failed",
            "deployment",
            "01a251ea-0000-7000-8000-000000000002",
            Some(ORG),
            serde_json::json!({"after": {"device_id": DEVICE, "detail": "install: 0x800f0922",
                "updates": [{"product": "Windows", "version": "KB5046617"}, {"product": "Windows", "version": "KB5046617"}]}}),
        );
        assert_eq!(
            sentence(&failed, &n),
            "deployment of Windows KB5046617 on hm-nyc-lt02: failed (install: 0x800f0922)"
        );
        assert_eq!(actor("user:tech@demo-msp.example"), "tech@demo-msp.example");
        assert_eq!(actor("agent:01a251ea-3cfd-770c-83a2-97a33bcd4c48"), "the device's agent");
    }

    #[test]
    fn no_identifier_survives_in_a_sentence() {
        let n = names();
        let odd = event(
            "system:x",
            "widget.frobnicate",
            "widget",
            "01a251ea-9999-7000-8000-000000000009",
            None,
            serde_json::json!({"reason": "see 01a251ea-9999-7000-8000-00000000000a and 01a251ea-3cfd-770c-83a2-97a33bcd4c48"}),
        );
        let s = sentence(&odd, &n);
        assert_eq!(find_uuid(&s), None, "{s}");
        assert!(s.contains("hm-nyc-lt02"), "{s}");
    }
}
