//! Policies, the remediation queue, approvals, exceptions and risk decisions over the REST
//! API, on SQLite and PostgreSQL: rules and people decide, every decision lands in the
//! evidence chain, an exception expires between two virtual days, and no tenant sees or
//! changes another's decisions.

mod common;

use common::TestApp;
use ringfence_engine::store::{AgentIdentity, DistroRow};
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    rules_and_people_decide_and_every_decision_is_evidence,
    an_exception_expires_between_two_virtual_days,
    findings_without_a_fix_are_mitigated_or_accepted_until_expiry,
    policies_merge_with_provenance_and_preview_before_saving,
    the_catalog_links_pending_updates_to_the_findings_they_fix,
    decisions_stay_within_their_tenant,
    the_schedule_forecasts_approved_updates_in_windows_and_stays_in_its_tenant,
);

const DAY: Duration = Duration::from_secs(86_400);

/// A month from now, as an expiry.
fn soon() -> String {
    (ringfence_model::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string()
}

fn debian() -> Value {
    json!({
        "os": {"family": "linux", "id": "debian", "version": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12 (bookworm)"},
        "items": ringfence_engine::demo::debian_packages(),
    })
}

/// The demo's real CVEs and Debian statements, plus one open (unfixed) statement for sudo
/// so a finding without a patch exists.
async fn setup(app: &TestApp) {
    let summary = ringfence_engine::intel::import_demo(app.store.as_ref(), ringfence_model::Timestamp::now())
        .await
        .unwrap();
    app.store
        .upsert_distro(&[DistroRow {
            distro: "debian".into(),
            release: "12".into(),
            package: "sudo".into(),
            cve_id: "CVE-2025-32462".into(),
            source: "test".into(),
            state: "open".into(),
            fixed_version: None,
            urgency: Some("low".into()),
            detail: None,
        }])
        .await
        .unwrap();
    app.engine.correlate_after_import(&[summary]).await.unwrap();
    app.engine.reload_index().await.unwrap();
    let tech = app.token("tech@a").await;
    for d in [&app.a1.device, &app.a2.device] {
        let r = tech.send("PUT", &format!("/api/v1/devices/{}/inventory", d.id), Some(debian())).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

fn entry<'a>(queue: &'a Value, product: &str) -> &'a Value {
    queue
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["product"] == product)
        .unwrap_or_else(|| panic!("{product} in {queue}"))
}

fn state<'a>(e: &'a Value, org: &str) -> &'a Value {
    e["organization_states"].as_array().unwrap().iter().find(|s| s["organization"] == org).unwrap()
}

async fn rules_and_people_decide_and_every_decision_is_evidence(app: TestApp) {
    setup(&app).await;
    let tech = app.token("tech@a").await;
    let admin = app.token("admin@a").await;
    let q = tech.get("/api/v1/remediation-queue").await;
    assert_eq!(q.status, 200, "{}", q.body);
    let jq = entry(&q.body, "jq");
    assert_eq!(jq["version"], "1.6-2.1+deb12u2");
    assert_eq!(jq["summary"], "jq → 1.6-2.1+deb12u2: fixes 1 CVE, 0 in KEV, on 2 devices in 2 organizations");
    assert_eq!(jq["status"], "auto_approve", "{jq}");
    assert!(jq["detail"].as_str().unwrap().contains("rule 'cvss' (default rules)"), "{jq}");
    assert!(
        jq["explanation"]["factors"].as_array().unwrap().iter().any(|f| f["fact"] == "CVSS 3.1 7.5"),
        "{jq}"
    );
    let unzip = entry(&q.body, "unzip");
    assert_eq!(unzip["status"], "needs_review", "CVSS 5.5, not in KEV: {unzip}");
    // Sorted by the risk each update removes.
    let risks: Vec<f64> =
        q.body.as_array().unwrap().iter().map(|e| e["risk_removed"].as_f64().unwrap()).collect();
    assert!(risks.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");

    // The rules approve what they may, once per organization, as evidence.
    let ran = tech.send("POST", "/api/v1/approvals/run-rules", None).await;
    assert_eq!(ran.status, 200, "{}", ran.body);
    let approved: Vec<&Value> =
        ran.body.as_array().unwrap().iter().filter(|a| a["product"] == "jq").collect();
    assert_eq!(approved.len(), 2);
    assert_eq!(approved[0]["rule"], "policy:default:cvss");
    assert_eq!(approved[0]["decided_by"], "policy-rules");
    let again = tech.send("POST", "/api/v1/approvals/run-rules", None).await;
    assert_eq!(again.body, json!([]), "a second run decides nothing new");
    let q = tech.get("/api/v1/remediation-queue?search=jq").await;
    assert_eq!(entry(&q.body, "jq")["status"], "approved");

    // A technician approves in bulk for one organization, with a reason.
    let body = json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}, {"product": "xz-utils", "version": "5.4.1-1+deb12u1"}],
        "decision": "approve", "reason": "tested on the lab machines", "organization_id": app.a1.org.id});
    let r = tech.send("POST", "/api/v1/approvals", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let q = tech.get("/api/v1/remediation-queue").await;
    let unzip = entry(&q.body, "unzip");
    assert_eq!(unzip["status"], "mixed", "{unzip}");
    assert_eq!(state(unzip, "A1")["status"], "approved");
    assert!(state(unzip, "A1")["detail"].as_str().unwrap().contains("tested on the lab machines"));
    assert_eq!(state(unzip, "A2")["status"], "needs_review");
    let filtered = tech
        .get(&format!("/api/v1/remediation-queue?organization_id={}&status=approved", app.a1.org.id))
        .await;
    assert!(filtered.body.as_array().unwrap().iter().all(|e| e["status"] == "approved"), "{}", filtered.body);

    // Deferral and rejection, partner-wide.
    let until = (ringfence_model::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 7)).to_string();
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}],
            "decision": "defer", "reason": "client freeze this week", "defer_until": until})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let q = tech.get("/api/v1/remediation-queue?search=unzip").await;
    assert_eq!(state(entry(&q.body, "unzip"), "A2")["status"], "deferred");

    // An emergency override needs a second, different approver by default.
    let r = tech
        .send("POST", "/api/v1/approvals", Some(json!({"updates": [{"product": "xz-utils", "version": "5.4.1-1+deb12u1"}],
            "decision": "approve", "reason": "exploited in the wild", "organization_id": app.a2.org.id, "emergency": true})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body[0]["decision"], "awaiting_second");
    let id = r.body[0]["id"].as_str().unwrap();
    let same = tech.send("POST", &format!("/api/v1/approvals/{id}/confirm"), None).await;
    assert_eq!(same.status, 409, "{}", same.body);
    let second = admin.send("POST", &format!("/api/v1/approvals/{id}/confirm"), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["decision"], "approved");
    let first = r.body[0]["decided_by"].as_str().unwrap();
    let confirmer = second.body["second_approver"].as_str().unwrap();
    assert!(confirmer.starts_with("token:") && confirmer != first, "{confirmer} after {first}");

    // Bad decisions are refused and change nothing.
    let others = [app.token("viewer@a1").await, app.token("auditor@a").await];
    let heads = app.heads().await;
    for (body, field) in [
        (
            json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}], "decision": "approve", "reason": " "}),
            "reason",
        ),
        (
            json!({"updates": [{"product": "unzip", "version": "9"}], "decision": "approve", "reason": "x"}),
            "updates",
        ),
        (
            json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}], "decision": "bless", "reason": "x"}),
            "decision",
        ),
        (
            json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}], "decision": "defer", "reason": "x", "defer_until": "2020-01-01"}),
            "defer_until",
        ),
        (
            json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}], "decision": "reject", "reason": "x", "emergency": true}),
            "emergency",
        ),
        (json!({"updates": [], "decision": "approve", "reason": "x"}), "updates"),
    ] {
        let r = tech.send("POST", "/api/v1/approvals", Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [], "decision": "approve", "reason": "x", "extra": 1})),
        )
        .await;
    assert_eq!(r.status, 422);
    for t in &others {
        let r = t
            .send("POST", "/api/v1/approvals", Some(json!({"updates": [{"product": "unzip", "version": "6.0-28+deb12u1"}], "decision": "approve", "reason": "x"})))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    assert_eq!(app.heads().await, heads, "refused decisions wrote no evidence");

    // Every decision is in the evidence chain with its inputs.
    let events = admin.get("/api/v1/evidence/events?limit=1000").await;
    assert_eq!(events.status, 200, "{}", events.body);
    let items = events.body["items"].as_array().or(events.body.as_array()).unwrap().clone();
    let by_rule = items
        .iter()
        .find(|e| e["action"] == "approval.approved" && e["actor"] == "policy-rules")
        .expect("a rule's approval is evidence");
    let payload = by_rule["payload"].clone();
    let payload: Value =
        if let Some(s) = payload.as_str() { serde_json::from_str(s).unwrap() } else { payload };
    assert_eq!(payload["inputs"]["rule"], "cvss");
    assert_eq!(payload["inputs"]["max_cvss"], 7.5);
    assert!(items.iter().any(|e| e["action"] == "approval.deferred"));
    assert!(items.iter().any(|e| e["action"] == "approval.confirm"));
    let history = tech.get("/api/v1/approvals").await;
    assert_eq!(history.body.as_array().unwrap().len(), 6, "{}", history.body);
}

async fn an_exception_expires_between_two_virtual_days(app: TestApp) {
    setup(&app).await;
    let tech = app.token("tech@a").await;
    let expires = (ringfence_model::Timestamp::now() + jiff::SignedDuration::from_hours(30)).to_string();
    let r = tech
        .send("POST", "/api/v1/exceptions", Some(json!({"organization_id": app.a1.org.id, "kind": "pin", "software": "jq",
            "version_range": "=1.6-2.1+deb12u1", "owner": "ops@client-a1", "reason": "their billing export parses jq 1.6's output",
            "expires": expires})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let q = tech.get("/api/v1/remediation-queue?search=jq").await;
    let jq = entry(&q.body, "jq");
    assert_eq!(state(jq, "A1")["status"], "excepted", "{jq}");
    assert!(state(jq, "A1")["detail"].as_str().unwrap().contains("billing export"));
    assert_eq!(state(jq, "A2")["status"], "auto_approve");
    // The rules do not approve what an exception holds.
    let ran = tech.send("POST", "/api/v1/approvals/run-rules", None).await;
    let orgs: Vec<&Value> = ran
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["product"] == "jq")
        .map(|a| &a["organization_id"])
        .collect();
    assert_eq!(orgs, [&json!(app.a2.org.id)]);

    // Day 1: still held. Day 2: expired, back in the queue for review.
    app.advance(DAY);
    let q = tech.get("/api/v1/remediation-queue?search=jq").await;
    assert_eq!(state(entry(&q.body, "jq"), "A1")["status"], "excepted");
    app.advance(DAY);
    let q = tech.get("/api/v1/remediation-queue?search=jq").await;
    let a1 = state(entry(&q.body, "jq"), "A1").clone();
    assert_eq!(a1["status"], "needs_review", "{a1}");
    assert!(a1["detail"].as_str().unwrap().contains("expired"), "{a1}");
    let list = tech.get("/api/v1/exceptions").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);

    for (body, field) in [
        (
            json!({"organization_id": app.a1.org.id, "kind": "freeze", "software": "jq", "version_range": "*", "owner": "o", "reason": "r", "expires": soon()}),
            "kind",
        ),
        (
            json!({"organization_id": app.a1.org.id, "kind": "pin", "software": "jq", "version_range": ">>1", "owner": "o", "reason": "r", "expires": soon()}),
            "version_range",
        ),
        (
            json!({"organization_id": app.a1.org.id, "kind": "pin", "software": "jq", "version_range": "*", "owner": "o", "reason": "r", "expires": "yesterday"}),
            "expires",
        ),
        (
            json!({"organization_id": app.a1.org.id, "kind": "pin", "software": "jq", "version_range": "*", "owner": "", "reason": "r", "expires": soon()}),
            "owner",
        ),
    ] {
        let r = tech.send("POST", "/api/v1/exceptions", Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
}

async fn findings_without_a_fix_are_mitigated_or_accepted_until_expiry(app: TestApp) {
    setup(&app).await;
    let tech = app.token("tech@a").await;
    let q = tech.get("/api/v1/remediation-queue?search=sudo").await;
    let sudo = entry(&q.body, "sudo");
    assert_eq!(sudo["version"], Value::Null);
    assert_eq!(sudo["status"], "no_fix", "{sudo}");
    let expires = (ringfence_model::Timestamp::now() + jiff::SignedDuration::from_hours(36)).to_string();
    let r = tech
        .send("POST", "/api/v1/risk-decisions", Some(json!({"organization_id": app.a1.org.id, "cve_id": "cve-2025-32462",
            "product": "sudo", "kind": "mitigated", "control": "sudoers has no host-specific rules", "owner": "sec@a1",
            "reason": "not reachable in this configuration", "expires": expires})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let q = tech.get("/api/v1/remediation-queue?search=sudo").await;
    let a1 = state(entry(&q.body, "sudo"), "A1").clone();
    assert_eq!(a1["status"], "mitigated");
    assert!(a1["detail"].as_str().unwrap().contains("sudoers has no host-specific rules"));
    assert_eq!(state(entry(&q.body, "sudo"), "A2")["status"], "no_fix");
    // A mitigation needs its control; a finding with a fix takes an approval instead.
    let r = tech
        .send(
            "POST",
            "/api/v1/risk-decisions",
            Some(json!({"organization_id": app.a1.org.id, "cve_id": "CVE-2025-32462",
            "product": "sudo", "kind": "mitigated", "owner": "o", "reason": "r", "expires": soon()})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].clone()), (422, json!("control")), "{}", r.body);
    let r = tech
        .send(
            "POST",
            "/api/v1/risk-decisions",
            Some(json!({"organization_id": app.a1.org.id, "cve_id": "CVE-2026-32316",
            "product": "jq", "kind": "risk_accepted", "owner": "o", "reason": "r", "expires": soon()})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    app.advance(2 * DAY);
    let q = tech.get("/api/v1/remediation-queue?search=sudo").await;
    let a1 = state(entry(&q.body, "sudo"), "A1").clone();
    assert_eq!(a1["status"], "no_fix");
    assert!(a1["detail"].as_str().unwrap().contains("expired"), "{a1}");
}

async fn policies_merge_with_provenance_and_preview_before_saving(app: TestApp) {
    let admin = app.token("admin@a").await;
    let tech = app.token("tech@a").await;
    let baseline = json!({"name": "MSP baseline", "level": "partner", "settings": {"ring": 2, "reboot": "allowed"}, "locked": ["reboot"]});
    let r = admin.send("POST", "/api/v1/policies", Some(baseline)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let servers = json!({"name": "Servers", "level": "group", "target_id": app.a1.group.id, "settings": {"ring": 3, "reboot": "never"}});
    // The preview shows what would change, on which device, before anything is saved.
    let heads = app.heads().await;
    let p = admin.send("POST", "/api/v1/policies/preview", Some(json!({"policy": servers}))).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["devices"].as_array().unwrap().len(), 1, "{}", p.body);
    assert_eq!(p.body["devices"][0]["hostname"], "a1-srv");
    assert_eq!(
        p.body["devices"][0]["changes"],
        json!([{"field": "ring", "before": 2, "after": 3}]),
        "the reboot lock holds"
    );
    assert_eq!(app.heads().await, heads, "a preview saves nothing");
    let r = admin.send("POST", "/api/v1/policies", Some(servers)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let e = tech.get(&format!("/api/v1/devices/{}/effective-policy", app.a1.device.id)).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let field = |name: &str| {
        e.body["fields"].as_array().unwrap().iter().find(|f| f["field"] == name).unwrap().clone()
    };
    assert_eq!(field("ring")["provenance"], "3 — from group 'Servers', policy 'Servers'");
    assert_eq!(
        field("reboot")["provenance"],
        "allowed — from partner 'Partner A', policy 'MSP baseline' (locked)"
    );
    assert_eq!(field("reboot")["overridden_by_lock"], json!(["Servers"]));
    let other = tech.get(&format!("/api/v1/devices/{}/effective-policy", app.a2.device.id)).await;
    assert_eq!(other.body["fields"][0]["value"], json!("allowed"));

    // A tie at one level and priority is refused, naming both.
    let tie = json!({"name": "Servers too", "level": "group", "target_id": app.a1.group.id, "settings": {"ring": 1}});
    let r = admin.send("POST", "/api/v1/policies", Some(tie.clone())).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("'Servers too' and 'Servers'")
            || r.body["message"].as_str().unwrap().contains("'Servers' and 'Servers too'"),
        "{}",
        r.body
    );
    let p = admin.send("POST", "/api/v1/policies/preview", Some(json!({"policy": tie}))).await;
    assert_eq!(p.body["ties"].as_array().unwrap().len(), 1);
    let mut ok = tie.clone();
    ok["priority"] = json!(5);
    assert_eq!(admin.send("POST", "/api/v1/policies", Some(ok)).await.status, 201);

    // Bad policies name the field; technicians may not change policies.
    for (body, field) in [
        (json!({"name": "x", "level": "site", "settings": {"ring": 1}}), "target_id"),
        (json!({"name": "x", "level": "partner", "settings": {"rnig": 1}}), "settings"),
        (json!({"name": "x", "level": "partner", "settings": {"ring": 1}, "locked": ["reboot"]}), "locked"),
        (json!({"name": "x", "level": "galaxy", "settings": {"ring": 1}}), "level"),
        (
            json!({"name": "x", "level": "partner", "settings": {"approval": {"review": ["drivers"]}}}),
            "settings",
        ),
    ] {
        let r = admin.send("POST", "/api/v1/policies", Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
    let r = tech
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "t", "level": "partner", "settings": {"ring": 1}})),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn the_catalog_links_pending_updates_to_the_findings_they_fix(app: TestApp) {
    setup(&app).await;
    let agent = AgentIdentity {
        device_id: app.a1.device.id.clone(),
        partner_id: app.a1.partner.id.clone(),
        organization_id: app.a1.org.id.clone(),
        inventory_seq: 0,
    };
    let report: ringfence_proto::AgentPendingUpdates = serde_json::from_value(json!({"updates": [
        {"manager": "dpkg", "name": "libjq1", "installed": "1.6-2.1+deb12u1", "candidate": "1.6-2.1+deb12u2", "origin": "bookworm-security", "security": true},
        {"manager": "dpkg", "name": "linux-image-amd64", "installed": "6.1.0-30", "candidate": "6.1.0-31", "origin": "bookworm-security", "security": true},
        {"manager": "dpkg", "name": "firmware-misc-nonfree", "installed": "20230210-5", "candidate": "20230210-6", "origin": "bookworm"},
        {"manager": "dpkg", "name": "podman", "installed": "4.3.1", "candidate": "4.9.0", "origin": "bookworm-backports"}
    ]})).unwrap();
    assert_eq!(app.engine.agent_updates(&agent, report).await.unwrap(), 4);
    let tech = app.token("tech@a").await;
    let u = tech.get(&format!("/api/v1/devices/{}/updates", app.a1.device.id)).await;
    assert_eq!(u.status, 200, "{}", u.body);
    let by = |n: &str| u.body.as_array().unwrap().iter().find(|x| x["name"] == n).unwrap().clone();
    assert_eq!(by("libjq1")["fixes"], json!(["CVE-2026-32316"]));
    assert_eq!(by("libjq1")["classification"], "security");
    assert_eq!(by("libjq1")["rollback"], "downgrade");
    assert_eq!(by("linux-image-amd64")["reboot_required"], true);
    assert_eq!(by("firmware-misc-nonfree")["classification"], "firmware");
    assert_eq!(by("firmware-misc-nonfree")["rollback"], "none");
    assert_eq!(by("podman")["classification"], "feature");
    let q = tech.get("/api/v1/remediation-queue").await;
    assert_eq!(entry(&q.body, "jq")["offered_on"], 1);
    assert_eq!(entry(&q.body, "jq")["rollback"], "downgrade");
    // Updates that fix no CVE are reviewed by their classification's rules.
    assert_eq!(entry(&q.body, "podman")["status"], "waiting", "a feature update waits 14 days");
    assert_eq!(entry(&q.body, "firmware-misc-nonfree")["status"], "needs_review");
    // A bad report is refused whole and the catalog is kept.
    let bad: ringfence_proto::AgentPendingUpdates = serde_json::from_value(json!({"updates": [
        {"manager": "dpkg", "name": "libjq1", "installed": "1", "candidate": "2", "cves": ["not-a-cve"]}]}))
    .unwrap();
    assert!(app.engine.agent_updates(&agent, bad).await.is_err());
    let u = tech.get(&format!("/api/v1/devices/{}/updates", app.a1.device.id)).await;
    assert_eq!(u.body.as_array().unwrap().len(), 4);
}

async fn decisions_stay_within_their_tenant(app: TestApp) {
    setup(&app).await;
    let tech = app.token("tech@a").await;
    let b = app.token("admin@b").await;
    let a1_tech = app.token("tech@a1").await;
    let viewer = app.token("viewer@a1").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/exceptions",
            Some(json!({"organization_id": app.a2.org.id, "kind": "exclude", "software": "unzip",
            "version_range": "*", "owner": "o", "reason": "r", "expires": soon()})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let exception = r.body["id"].as_str().unwrap().to_string();
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "jq", "version": "1.6-2.1+deb12u2"}],
            "decision": "approve", "reason": "r", "organization_id": app.a2.org.id})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Another partner sees none of it and cannot reach it.
    assert_eq!(b.get("/api/v1/remediation-queue").await.body, json!([]));
    assert_eq!(b.get("/api/v1/approvals").await.body, json!([]));
    assert_eq!(b.get("/api/v1/exceptions").await.body, json!([]));
    assert_eq!(b.send("POST", &format!("/api/v1/exceptions/{exception}/revoke"), None).await.status, 404);
    let r = b
        .send(
            "POST",
            "/api/v1/exceptions",
            Some(json!({"organization_id": app.a1.org.id, "kind": "exclude", "software": "x",
            "version_range": "*", "owner": "o", "reason": "r", "expires": soon()})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(b.get(&format!("/api/v1/devices/{}/effective-policy", app.a1.device.id)).await.status, 404);
    assert_eq!(b.get(&format!("/api/v1/devices/{}/updates", app.a1.device.id)).await.status, 404);
    // An organization's people see their organization only, and decide for it only.
    let q = viewer.get("/api/v1/remediation-queue").await.body;
    assert!(
        q.as_array().unwrap().iter().all(|e| e["organization_states"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["organization"] == "A1")),
        "{q}"
    );
    assert_eq!(viewer.get("/api/v1/exceptions").await.body, json!([]));
    assert!(viewer.get("/api/v1/approvals").await.body.as_array().unwrap().is_empty());
    let r = a1_tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "jq", "version": "1.6-2.1+deb12u2"}],
            "decision": "reject", "reason": "r", "organization_id": app.a2.org.id})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = a1_tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "jq", "version": "1.6-2.1+deb12u2"}],
            "decision": "reject", "reason": "not during the audit"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body[0]["organization_id"],
        json!(app.a1.org.id),
        "an organization's technician decides for it only"
    );
    assert_eq!(
        a1_tech.send("POST", &format!("/api/v1/exceptions/{exception}/revoke"), None).await.status,
        404
    );
}

async fn the_schedule_forecasts_approved_updates_in_windows_and_stays_in_its_tenant(app: TestApp) {
    setup(&app).await;
    let tech = app.token("tech@a").await;
    let admin = app.token("admin@a").await;
    // Sunday nights 02:00–05:00 for the partner; A1's device is the ring 0 machine.
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Windows", "level": "partner", "settings": {
                "maintenance_windows": [{"dtstart": "2026-01-04T02:00", "rrule": "FREQ=WEEKLY;BYDAY=SU", "duration": "PT3H"}]}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Lab", "level": "device", "target_id": app.a1.device.id, "settings": {"ring": 0}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for (device, org) in [(&app.a1.device, &app.a1.org), (&app.a2.device, &app.a2.org)] {
        let agent = AgentIdentity {
            device_id: device.id.clone(),
            partner_id: app.a1.partner.id.clone(),
            organization_id: org.id.clone(),
            inventory_seq: 0,
        };
        let report: ringfence_proto::AgentPendingUpdates = serde_json::from_value(json!({"updates": [
            {"manager": "dpkg", "name": "libjq1", "installed": "1.6-2.1+deb12u1", "candidate": "1.6-2.1+deb12u2", "origin": "bookworm-security", "security": true}
        ]}))
        .unwrap();
        app.engine.agent_updates(&agent, report).await.unwrap();
    }
    // Nothing approved: nothing to schedule.
    let empty = tech.get("/api/v1/schedule").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.body["entries"], json!([]));
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "jq", "version": "1.6-2.1+deb12u2"}], "decision": "approve", "reason": "r"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s = tech.get("/api/v1/schedule").await;
    assert_eq!(s.status, 200, "{}", s.body);
    let entries = s.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", s.body);
    let of = |d: &str| entries.iter().find(|e| e["device_id"] == d).unwrap().clone();
    let lab = of(app.a1.device.id.as_str());
    assert_eq!(lab["status"], "scheduled", "{lab}");
    assert_eq!(lab["ring"], 0);
    assert!(lab["local_start"].as_str().unwrap().starts_with("Sun "), "{lab}");
    assert!(lab["local_start"].as_str().unwrap().ends_with("02:00"), "{lab}");
    // The other device is in ring 2 and ring 1 has no devices: it lands after ring 0's
    // validation period (24 hours after the lab machine's install), and says so.
    let other = of(app.a2.device.id.as_str());
    assert_eq!(other["status"], "scheduled", "{other}");
    assert!(other["reason"].as_str().unwrap().starts_with("waiting: ring 0 validation ends"), "{other}");
    let lab_end: ringfence_model::Timestamp = lab["end"].as_str().unwrap().parse().unwrap();
    let other_start: ringfence_model::Timestamp = other["start"].as_str().unwrap().parse().unwrap();
    assert!(other_start >= lab_end + jiff::SignedDuration::from_hours(24), "{other}");
    // A blackout over the next eight days at A1 pushes the lab machine a week on, and says so.
    let now = ringfence_model::Timestamp::now();
    let until = now + jiff::SignedDuration::from_hours(24 * 8);
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Close", "level": "organization", "target_id": app.a1.org.id, "settings": {
                "blackouts": [{"name": "close", "start": now.to_string(), "end": until.to_string()}]}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s2 = tech.get(&format!("/api/v1/schedule?device_id={}", app.a1.device.id)).await;
    let lab2 = &s2.body["entries"][0];
    let start: ringfence_model::Timestamp = lab2["start"].as_str().unwrap().parse().unwrap();
    assert!(start >= until, "{lab2}");
    assert!(lab2["reason"].as_str().unwrap().contains("blackout"), "{lab2}");
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Bad", "level": "organization", "target_id": app.a2.org.id, "settings": {
                "blackouts": [{"name": "close", "start": until.to_string()}]}})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("give either start and end"), "{}", r.body);
    // The circuit breaker: a halt holds the update on every device until it is released.
    let halt = json!({"product": "jq", "version": "1.6-2.1+deb12u2", "reason": "breaks the billing export"});
    let a1_tech = app.token("tech@a1").await;
    assert_eq!(a1_tech.send("POST", "/api/v1/rollouts/halts", Some(halt.clone())).await.status, 403);
    let r = tech.send("POST", "/api/v1/rollouts/halts", Some(halt.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let halt_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(tech.send("POST", "/api/v1/rollouts/halts", Some(halt)).await.status, 409);
    let held = tech.get("/api/v1/schedule").await;
    assert!(
        held.body["entries"].as_array().unwrap().iter().all(|e| e["status"] == "halted"),
        "{}",
        held.body
    );
    assert!(held.body["entries"][0]["reason"].as_str().unwrap().contains("breaks the billing export"));
    let b = app.token("admin@b").await;
    let release = json!({"reason": "vendor fixed the export"});
    assert_eq!(
        b.send("POST", &format!("/api/v1/rollouts/halts/{halt_id}/release"), Some(release.clone()))
            .await
            .status,
        404
    );
    assert_eq!(b.get("/api/v1/rollouts/halts").await.body, json!([]));
    let bad = tech
        .send("POST", &format!("/api/v1/rollouts/halts/{halt_id}/release"), Some(json!({"reason": " "})))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let r = tech.send("POST", &format!("/api/v1/rollouts/halts/{halt_id}/release"), Some(release)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["release_reason"], "vendor fixed the export");
    let again = tech.get(&format!("/api/v1/schedule?device_id={}", app.a1.device.id)).await;
    assert_eq!(again.body["entries"][0]["status"], "scheduled", "{}", again.body);
    // The organization's windows as a calendar a client subscribes to.
    let ics = tech.get(&format!("/api/v1/organizations/{}/windows.ics", app.a1.org.id)).await;
    assert_eq!(ics.status, 200);
    assert!(ics.headers["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let text = ics.body.as_str().unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.contains("RRULE:FREQ=WEEKLY;BYDAY=SU") && text.contains("DURATION:PT3H"), "{text}");
    assert!(text.contains("maintenance window (1 device)"), "{text}");
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 1);
    assert_eq!(b.get(&format!("/api/v1/organizations/{}/windows.ics", app.a1.org.id)).await.status, 404);
    // One organization, one device.
    let one = tech.get(&format!("/api/v1/schedule?organization_id={}", app.a1.org.id)).await;
    assert!(
        one.body["entries"].as_array().unwrap().iter().all(|e| e["organization_id"] == json!(app.a1.org.id))
    );
    assert_eq!(one.body["entries"].as_array().unwrap().len(), 1);
    let dev = tech.get(&format!("/api/v1/schedule?device_id={}", app.a2.device.id)).await;
    assert_eq!(dev.body["entries"].as_array().unwrap().len(), 1);
    // Bad and foreign ids.
    assert_eq!(tech.get("/api/v1/schedule?organization_id=not%20an%20id").await.status, 422);
    assert_eq!(b.get("/api/v1/schedule").await.body["entries"], json!([]));
    assert_eq!(b.get(&format!("/api/v1/schedule?organization_id={}", app.a1.org.id)).await.status, 404);
    assert_eq!(b.get(&format!("/api/v1/schedule?device_id={}", app.a1.device.id)).await.status, 404);
    // An organization's viewer sees its own devices only.
    let viewer = app.token("viewer@a1").await;
    let v = viewer.get("/api/v1/schedule").await;
    assert!(!v.body["entries"].as_array().unwrap().is_empty());
    assert!(
        v.body["entries"].as_array().unwrap().iter().all(|e| e["organization_id"] == json!(app.a1.org.id)),
        "{}",
        v.body
    );
    assert_eq!(viewer.get(&format!("/api/v1/schedule?device_id={}", app.a2.device.id)).await.status, 404);
    // The dashboard calendar shows it.
    let session = app.session("viewer@a1").await;
    let r = session.client.get(format!("{}/schedule", session.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Next 72 hours") && page.contains(app.a1.device.hostname.as_str()), "{page}");
    assert!(!page.contains(app.a2.device.hostname.as_str()), "another organization's device on the page");
}
