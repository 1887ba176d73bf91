//! Deployments over the API on SQLite and PostgreSQL, with agents speaking the job protocol
//! over HTTP (each job's signature checked against the pinned server key, as the agent does):
//! an update goes ring by ring inside the windows and is verified by the next inventory; a
//! failing canary halts it for every client; a failed verification rolls back by itself and
//! the old version is held; a restarted server loses and doubles nothing; a missed window is
//! rescheduled; tenants and roles see and do only what they may; bad reports write nothing.

mod common;

use common::TestApp;
use ringfence_model::Timestamp;
use ringfence_proto::jobs::{Job, JobKind, SignedJob};
use serde_json::{Value, json};

both_backends!(
    a_rollout_goes_ring_by_ring_a_failing_canary_halts_it_and_a_bad_health_check_rolls_back,
    a_missed_window_is_rescheduled_and_a_restart_loses_and_doubles_nothing,
    deployments_are_isolated_by_tenant_and_role_and_bad_reports_write_nothing,
    a_reboot_is_verified_after_the_device_comes_back_whatever_arrives_first,
    a_failed_install_is_tried_again_only_when_a_technician_asks,
    two_servers_dispatching_and_leasing_at_once_plan_and_hand_out_each_job_once,
);

/// One enrolled device: its credential and id.
struct Agent {
    credential: String,
    device: String,
    host: String,
}

async fn enroll(app: &TestApp, hosts: &[&str]) -> Vec<Agent> {
    let op = app.engine.operator("test", app.a1.partner.name.as_str()).await.unwrap();
    let token = app
        .engine
        .create_enrollment_token(
            &op,
            &ringfence_proto::CreateEnrollmentToken {
                site_id: app.a1.site.id.to_string(),
                name: "rollout".into(),
                expires_in_hours: None,
                max_uses: None,
            },
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for (k, host) in hosts.iter().enumerate() {
        let r = app
            .engine
            .enroll(&ringfence_proto::EnrollRequest {
                token: token.secret.clone(),
                hostname: host.to_string(),
                machine_id: format!("{:032x}", 0x5eed_0000_u64 + k as u64),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                agent_version: "test".into(),
            })
            .await
            .unwrap();
        out.push(Agent { credential: r.credential, device: r.device_id, host: host.to_string() });
    }
    out
}

async fn agent_post(app: &TestApp, a: &Agent, path: &str, body: Value) -> common::Reply {
    let client = reqwest::Client::new();
    let r = client.post(app.url(path)).bearer_auth(&a.credential).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    common::Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
}

/// The agent's side of a lease: every job verified against the pinned key, for this device,
/// inside its window (as `ringfence-agent` does before it runs anything).
async fn lease(app: &TestApp, a: &Agent) -> Vec<Job> {
    let r = agent_post(app, a, "/api/agent/v1/jobs", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pinned = app.engine.server_public_key().await.unwrap();
    let now = app.engine.now();
    r.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let signed: SignedJob = serde_json::from_value(j.clone()).unwrap();
            ringfence_proto::jobs::verify(&signed, &pinned, &a.device, now).unwrap()
        })
        .collect()
}

async fn report(
    app: &TestApp,
    a: &Agent,
    job: &Job,
    outcome: &str,
    phase: &str,
    detail: &str,
    installed: &str,
) -> Value {
    let packages: Vec<Value> = match &job.work {
        JobKind::Install { packages, .. } | JobKind::Rollback { packages, .. } => packages
            .iter()
            .map(|p| json!({"manager": p.manager, "name": p.name, "version": installed}))
            .collect(),
        _ => Vec::new(),
    };
    let r = agent_post(
        app,
        a,
        "/api/agent/v1/jobs/report",
        json!({
            "job_id": job.id, "idempotency_key": job.idempotency_key, "outcome": outcome, "phase": phase,
            "detail": detail, "installed": packages, "log": format!("Setting up acme-svc ({installed}) ...\n"),
            "boot_id": "boot-1", "at": app.engine.now(),
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// A heartbeat, then the device's whole inventory with acme-svc at `version` (`seq` numbers
/// the reports).
async fn inventory(app: &TestApp, a: &Agent, seq: i64, version: &str) {
    online(app, std::slice::from_ref(a)).await;
    let r = agent_post(
        app,
        a,
        "/api/agent/v1/inventory",
        json!({"seq": seq, "full": {"os": {"family": "linux", "id": "debian", "version": "12", "name": "Debian GNU/Linux 12 (bookworm)"},
            "items": [{"kind": "package", "manager": "dpkg", "name": "acme-svc", "version": version}]}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Heartbeats: agents that checked in within the offline threshold are dispatched to.
async fn online(app: &TestApp, agents: &[Agent]) {
    for a in agents {
        let r = agent_post(app, a, "/api/agent/v1/checkin", json!({"agent_version": "test"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

async fn offer(app: &TestApp, a: &Agent, installed: &str, candidate: &str) {
    let r = agent_post(
        app,
        a,
        "/api/agent/v1/updates",
        json!({"updates": [{"manager": "dpkg", "name": "acme-svc", "installed": installed, "candidate": candidate, "origin": "acme-stable"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Partner policies: a daily window open from the current hour for 12 h (in the site's zone),
/// one-hour ring validation, a health check, automatic rollback; and each device's ring.
async fn policies(app: &TestApp, agents: &[(&Agent, u8)]) {
    let admin = app.token("admin@a").await;
    let settings = common::window_open_now(
        app,
        json!({
            "validation_hours": {"bugfix": 1, "security": 1},
            "reboot": "allowed",
            "auto_rollback": true,
            "health_checks": [{"check": "command", "argv": ["/usr/bin/acme-svc", "--health"]}]
        }),
    );
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Baseline", "level": "partner", "settings": settings})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for (a, ring) in agents {
        let r = admin
            .send(
                "POST",
                "/api/v1/policies",
                Some(json!({"name": format!("{} ring", a.host), "level": "device", "target_id": a.device, "settings": {"ring": ring}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

async fn approve(app: &TestApp, version: &str) {
    let tech = app.token("tech@a").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "acme-svc", "version": version}], "decision": "approve", "reason": "CHG-7"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn dispatch(app: &TestApp) -> Value {
    let tech = app.token("tech@a").await;
    let r = tech.send("POST", "/api/v1/rollouts/dispatch", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// One ring-0 device offered acme-svc 1.0 → 1.1, approved and dispatched; its leased job.
async fn one_device_with_its_job(app: &TestApp) -> (Agent, Job) {
    let mut agents = enroll(app, &["lab-0"]).await;
    policies(app, &[(&agents[0], 0)]).await;
    inventory(app, &agents[0], 1, "1.0").await;
    offer(app, &agents[0], "1.0", "1.1").await;
    approve(app, "1.1").await;
    dispatch(app).await;
    let job = lease(app, &agents[0]).await.remove(0);
    (agents.remove(0), job)
}

async fn deployments_of(app: &TestApp, a: &Agent) -> Vec<Value> {
    let tech = app.token("tech@a").await;
    let r = tech.get(&format!("/api/v1/deployments?device_id={}", a.device)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

async fn events(app: &TestApp, object: &str) -> Vec<String> {
    let events = app.store.list_events(app.a1.partner.id.as_str(), None, 0, 100_000).await.unwrap();
    events.into_iter().filter(|e| e.object_id == object).map(|e| e.action).collect()
}

fn hours(h: u64) -> std::time::Duration {
    std::time::Duration::from_secs(h * 3600)
}

async fn a_rollout_goes_ring_by_ring_a_failing_canary_halts_it_and_a_bad_health_check_rolls_back(
    app: TestApp,
) {
    let agents = enroll(&app, &["lab-0", "canary-1", "canary-2", "general-3"]).await;
    let [lab, canary1, canary2, general] = [&agents[0], &agents[1], &agents[2], &agents[3]];
    policies(&app, &[(lab, 0), (canary1, 1), (canary2, 1), (general, 2)]).await;
    for a in &agents {
        inventory(&app, a, 1, "1.0").await;
        offer(&app, a, "1.0", "1.1").await;
    }
    approve(&app, "1.1").await;

    // Ring 0 first; the others wait for its validation.
    let d = dispatch(&app).await;
    assert_eq!(d["scheduled"], 1, "{d}");
    assert!(lease(&app, canary1).await.is_empty(), "the canary waits for ring 0");
    let jobs = lease(&app, lab).await;
    assert_eq!(jobs.len(), 1);
    let JobKind::Install { packages, reboot_allowed, health_checks } = &jobs[0].work else {
        panic!("{:?}", jobs[0])
    };
    assert_eq!((packages[0].name.as_str(), packages[0].version.as_str()), ("acme-svc", "1.1"));
    assert!(reboot_allowed);
    assert_eq!(health_checks.len(), 1, "the policy's checks travel signed in the job");
    assert!(lease(&app, lab).await.is_empty(), "a leased job is not handed out twice");
    report(&app, lab, &jobs[0], "started", "install", "", "1.0").await;
    let ack = report(&app, lab, &jobs[0], "succeeded", "done", "", "1.1").await;
    assert_eq!(ack["recorded"], true);
    let again = report(&app, lab, &jobs[0], "succeeded", "done", "", "1.1").await;
    assert_eq!(again["recorded"], false, "a repeated report changes nothing");
    let dep = &deployments_of(&app, lab).await[0];
    assert_eq!(dep["status"], "installed", "verified only when the inventory shows it");
    inventory(&app, lab, 2, "1.1").await;
    let dep = &deployments_of(&app, lab).await[0];
    assert_eq!(dep["status"], "verified", "{dep}");
    let id = dep["id"].as_str().unwrap();
    assert_eq!(dep["log"], "", "lists leave the log out");
    let detail = app.token("tech@a").await.get(&format!("/api/v1/deployments/{id}")).await.body;
    assert!(detail["log"].as_str().unwrap().contains("Setting up acme-svc (1.1)"), "{detail}");
    assert_eq!(
        events(&app, id).await,
        [
            "deployment.scheduled",
            "deployment.dispatched",
            "deployment.started",
            "deployment.installed",
            "deployment.verified"
        ]
    );

    // The schedule preview no longer forecasts what is done; the canary's entry follows ring
    // 0's real verification.
    let tech = app.token("tech@a").await;
    let preview = tech.get(&format!("/api/v1/schedule?device_id={}", lab.device)).await.body;
    assert_eq!(preview["entries"], json!([]), "{preview}");
    let preview = tech.get(&format!("/api/v1/schedule?device_id={}", canary1.device)).await.body;
    assert!(preview["entries"][0]["reason"].as_str().unwrap().contains("validation"), "{preview}");

    // Ring 1 after ring 0's validation hour; ring 2 still waits.
    app.advance(hours(2));
    online(&app, &agents).await;
    let d = dispatch(&app).await;
    assert_eq!(d["scheduled"], 2, "{d}");
    let c1 = lease(&app, canary1).await;
    let c2 = lease(&app, canary2).await;
    assert!(lease(&app, general).await.is_empty());
    report(&app, canary1, &c1[0], "failed", "install", "dpkg: error processing package acme-svc (--configure): installed acme-svc package post-installation script subprocess returned error exit status 1", "1.1").await;
    let failed = &deployments_of(&app, canary1).await[0];
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["detail"].as_str().unwrap().starts_with("install: dpkg: error processing package acme-svc")
    );

    // The canary's gate fails: the update halts for every client.
    let d = dispatch(&app).await;
    assert_eq!(d["halted"].as_array().unwrap().len(), 1, "{d}");
    assert!(d["halted"][0].as_str().unwrap().contains("ring 1 (canary) gate failed"), "{d}");
    let preview = tech.get(&format!("/api/v1/schedule?device_id={}", general.device)).await.body;
    assert_eq!(preview["entries"][0]["status"], "halted", "{preview}");
    let rollouts = tech.get("/api/v1/rollouts").await.body;
    let r = rollouts.as_array().unwrap().iter().find(|r| r["version"] == "1.1").unwrap();
    assert_eq!(r["status"], "halted", "{r}");
    assert_eq!(r["rings"][0]["succeeded"], 1);
    assert_eq!(r["rings"][1]["failed"], 1);
    assert_eq!(r["rings"][2]["waiting"], 1);
    app.advance(hours(2));
    online(&app, &agents).await;
    assert_eq!(dispatch(&app).await["scheduled"], 0, "nothing goes out while halted");
    assert!(lease(&app, general).await.is_empty());

    // canary-2 installs, but its health check fails: it rolls back by itself and holds 1.0.
    report(
        &app,
        canary2,
        &c2[0],
        "failed",
        "health",
        "command /usr/bin/acme-svc --health exited with 1",
        "1.1",
    )
    .await;
    let list = deployments_of(&app, canary2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let (rollback, original) = (&list[0], &list[1]);
    assert_eq!(
        (rollback["kind"].as_str(), rollback["status"].as_str()),
        (Some("rollback"), Some("scheduled"))
    );
    assert_eq!(original["status"], "failed");
    let jobs = lease(&app, canary2).await;
    let JobKind::Rollback { packages, .. } = &jobs[0].work else { panic!("{:?}", jobs[0]) };
    assert_eq!(packages[0].version, "1.0", "back to the version it had");
    report(&app, canary2, &jobs[0], "succeeded", "done", "", "1.0").await;
    inventory(&app, canary2, 2, "1.0").await;
    let list = deployments_of(&app, canary2).await;
    assert_eq!(list[0]["status"], "verified");
    assert_eq!(list[1]["status"], "rolled_back");
    let holds = tech.get("/api/v1/holds").await.body;
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
    assert_eq!(
        (holds[0]["held_version"].as_str(), holds[0]["blocked_version"].as_str()),
        (Some("1.0"), Some("1.1"))
    );

    // Released, the update goes on, but the held device is not offered 1.1 again.
    let halts = tech.get("/api/v1/rollouts/halts").await.body;
    let halt = halts[0]["id"].as_str().unwrap();
    let r = tech
        .send(
            "POST",
            &format!("/api/v1/rollouts/halts/{halt}/release"),
            Some(json!({"reason": "postinst fixed in the repo"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    offer(&app, canary2, "1.0", "1.1").await;
    dispatch(&app).await;
    assert!(lease(&app, canary2).await.is_empty(), "the hold keeps 1.1 off canary-2");
    // A technician clears the hold. The released canary gate counts as passed, and after its
    // validation hour the general ring and canary-2 (no longer held) get 1.1.
    let hold = holds[0]["id"].as_str().unwrap();
    let r = tech.send("POST", &format!("/api/v1/holds/{hold}/clear"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(tech.get("/api/v1/holds").await.body.as_array().unwrap().is_empty());
    app.advance(hours(2));
    online(&app, &agents).await;
    let d = dispatch(&app).await;
    assert_eq!(
        d["scheduled"], 1,
        "canary-2 (general-3 was dispatched with the release, for the hour after): {d}"
    );
    let g = lease(&app, general).await;
    assert_eq!(g.len(), 1, "the general ring after the released canary gate");
    assert_eq!(lease(&app, canary2).await.len(), 1, "canary-2 is offered 1.1 again once the hold is cleared");
    // A new failure after the release is judged afresh: the general ring's gate halts it again.
    report(
        &app,
        general,
        &g[0],
        "failed",
        "install",
        "dpkg: error processing package acme-svc (--configure)",
        "1.1",
    )
    .await;
    let d = dispatch(&app).await;
    assert!(d["halted"][0].as_str().unwrap_or_default().contains("ring 2 (general) gate failed"), "{d}");

    // A fleet-wide rollback in one action: every device with the update goes back.
    let r = tech
        .send(
            "POST",
            "/api/v1/rollouts/rollback",
            Some(json!({"product": "acme-svc", "version": "1.1", "reason": "vendor recall"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scheduled"], 3, "lab-0 (verified), canary-1 and general-3 (failed): {}", r.body);
    assert!(r.body["halt_id"].is_null(), "halted already by the gate: {}", r.body);
    let skipped = r.body["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s.as_str().unwrap().starts_with("canary-2: its deployment is dispatched")),
        "{skipped:?}"
    );
    let jobs = lease(&app, lab).await;
    let JobKind::Rollback { packages, health_checks } = &jobs[0].work else { panic!("{:?}", jobs[0]) };
    assert_eq!(packages[0].version, "1.0");
    assert_eq!(health_checks.len(), 1, "the device's health checks run after a technician's rollback too");
    let chain = tech.get("/api/v1/evidence/verify").await;
    assert_eq!(chain.status, 200, "{}", chain.body);
}

async fn a_missed_window_is_rescheduled_and_a_restart_loses_and_doubles_nothing(app: TestApp) {
    let agents = enroll(&app, &["lab-0", "lab-1"]).await;
    let [a, b] = [&agents[0], &agents[1]];
    policies(&app, &[(a, 0), (b, 0)]).await;
    for x in &agents {
        inventory(&app, x, 1, "1.0").await;
        offer(&app, x, "1.0", "1.1").await;
    }
    approve(&app, "1.1").await;
    assert_eq!(dispatch(&app).await["scheduled"], 2);

    // The server restarts: a new engine over the same database plans nothing twice, and a
    // job leased before the restart whose agent went silent is due again after its lease,
    // with the same idempotency key (the agent's ledger runs a key once).
    let first = lease(&app, a).await;
    let restarted = ringfence_engine::Engine::new(app.store.clone());
    let s = restarted.dispatch_partner(&app.a1.partner.id).await.unwrap();
    assert_eq!(s.scheduled, 0, "{s:?}");
    assert!(lease(&app, a).await.is_empty());
    app.advance(std::time::Duration::from_secs(16 * 60));
    let again = lease(&app, a).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].idempotency_key.as_str()),
        (first[0].id.as_str(), first[0].idempotency_key.as_str())
    );
    assert_eq!(deployments_of(&app, a).await.len(), 1, "one deployment, never two");

    // lab-1 is offline through its window: the deployment is missed, and once the device is
    // back the next window gets it.
    app.advance(hours(12));
    let d = dispatch(&app).await;
    assert!(d["missed"].as_u64().unwrap() >= 1, "{d}");
    let list = deployments_of(&app, b).await;
    assert_eq!(list[0]["status"], "missed", "{list:?}");
    assert_eq!(list.len(), 1, "not rescheduled into the window it just missed: {list:?}");
    app.advance(hours(12));
    // Still offline: the window open now is skipped, not dispatched into.
    let d = dispatch(&app).await;
    assert_eq!(d["scheduled"], 0, "an offline device is not dispatched: {d}");
    // Back online, it gets the open window.
    let r = agent_post(&app, b, "/api/agent/v1/checkin", json!({"agent_version": "test"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = dispatch(&app).await;
    assert!(d["rescheduled"].as_u64().unwrap() >= 1, "{d}");
    let list = deployments_of(&app, b).await;
    assert_eq!(list[0]["status"], "scheduled");
    assert_eq!(list[0]["previous_id"], list[1]["id"]);
    assert_eq!(events(&app, list[0]["id"].as_str().unwrap()).await, ["deployment.rescheduled"]);
    assert_eq!(
        events(&app, list[1]["id"].as_str().unwrap()).await,
        ["deployment.scheduled", "deployment.missed"]
    );
    // An agent that refuses a job as late reports it; the deployment is missed, not failed.
    let jobs = lease(&app, b).await;
    report(
        &app,
        b,
        &jobs[0],
        "refused",
        "verify",
        "the job's window ended at 2026-12-06T10:00:00Z: it was missed and will be rescheduled",
        "1.0",
    )
    .await;
    assert_eq!(deployments_of(&app, b).await[0]["status"], "missed");
}

async fn deployments_are_isolated_by_tenant_and_role_and_bad_reports_write_nothing(app: TestApp) {
    let (a, job) = one_device_with_its_job(&app).await;
    let a = &a;
    let jobs = [job];
    let dep = deployments_of(&app, a).await[0]["id"].as_str().unwrap().to_string();

    // Another partner sees nothing and cannot act.
    let b = app.token("admin@b").await;
    assert_eq!(b.get("/api/v1/deployments").await.body, json!([]));
    assert_eq!(b.get(&format!("/api/v1/deployments/{dep}")).await.status, 404);
    assert_eq!(b.get("/api/v1/rollouts").await.body, json!([]));
    let r = b
        .send(
            "POST",
            "/api/v1/rollouts/rollback",
            Some(json!({"product": "acme-svc", "version": "1.1", "reason": "x"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // A client viewer of another organization does not see it; one of A1 reads but cannot act.
    let viewer = app.token("viewer@a1").await;
    assert_eq!(viewer.get(&format!("/api/v1/deployments/{dep}")).await.status, 200);
    let r = viewer
        .send(
            "POST",
            "/api/v1/rollouts/rollback",
            Some(json!({"product": "acme-svc", "version": "1.1", "device_id": a.device, "reason": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(viewer.send("POST", "/api/v1/rollouts/dispatch", None).await.status, 403);
    // A technician limited to one organization may not roll back fleet-wide or dispatch.
    let org_tech = app.token("tech@a1").await;
    let r = org_tech
        .send(
            "POST",
            "/api/v1/rollouts/rollback",
            Some(json!({"product": "acme-svc", "version": "1.1", "reason": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(org_tech.send("POST", "/api/v1/rollouts/dispatch", None).await.status, 403);

    // Bad reports are refused with the field named, and write nothing.
    let heads = app.heads().await;
    let base = json!({"job_id": jobs[0].id, "idempotency_key": jobs[0].idempotency_key, "outcome": "succeeded", "at": Timestamp::now()});
    let mut unknown = base.clone();
    unknown["shell"] = json!("id");
    let r = agent_post(&app, a, "/api/agent/v1/jobs/report", unknown).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let mut wrong_key = base.clone();
    wrong_key["idempotency_key"] = json!("another-key");
    let r = agent_post(&app, a, "/api/agent/v1/jobs/report", wrong_key).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("idempotency_key")), "{}", r.body);
    let mut huge = base.clone();
    huge["log"] = json!("x".repeat(ringfence_proto::jobs::MAX_LOG + 1));
    let r = agent_post(&app, a, "/api/agent/v1/jobs/report", huge).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("log")), "{}", r.body);
    let mut bad_outcome = base.clone();
    bad_outcome["outcome"] = json!("installed-probably");
    assert_eq!(agent_post(&app, a, "/api/agent/v1/jobs/report", bad_outcome).await.status, 422);
    let mut unknown_job = base.clone();
    unknown_job["job_id"] = json!("0190c0de-0000-7000-8000-000000000000");
    assert_eq!(agent_post(&app, a, "/api/agent/v1/jobs/report", unknown_job).await.status, 404);
    assert_eq!(app.heads().await, heads, "refused reports wrote nothing");
    // Another device's agent cannot report this device's job.
    let other = enroll(&app, &["intruder"]).await;
    let r = agent_post(&app, &other[0], "/api/agent/v1/jobs/report", base).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = tech_get(&app, "/api/v1/deployments?status=exploded").await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("status")), "{}", r.body);
}

async fn tech_get(app: &TestApp, path: &str) -> common::Reply {
    app.token("tech@a").await.get(path).await
}

async fn a_reboot_is_verified_after_the_device_comes_back_whatever_arrives_first(app: TestApp) {
    let (a, job) = one_device_with_its_job(&app).await;
    let a = &a;
    let send = |outcome: &str, rebooted: bool, boot: &str| {
        json!({"job_id": job.id, "idempotency_key": job.idempotency_key, "outcome": outcome, "phase": "done",
            "installed": [{"manager": "dpkg", "name": "acme-svc", "version": "1.1"}], "rebooted": rebooted,
            "boot_id": boot, "at": app.engine.now()})
    };
    let r = agent_post(&app, a, "/api/agent/v1/jobs/report", send("rebooting", false, "boot-1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(deployments_of(&app, a).await[0]["status"], "rebooting");
    // Back from the reboot, the agent reports its inventory before the job's end.
    inventory(&app, a, 2, "1.1").await;
    assert_eq!(deployments_of(&app, a).await[0]["status"], "rebooting", "not before the job's end");
    let r = agent_post(&app, a, "/api/agent/v1/jobs/report", send("succeeded", true, "boot-2")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dep = &deployments_of(&app, a).await[0];
    assert_eq!(dep["status"], "verified", "the inventory that came first verifies it: {dep}");
    assert_eq!(dep["boot_id"], "boot-2");
}

async fn a_failed_install_is_tried_again_only_when_a_technician_asks(app: TestApp) {
    let (a, job) = one_device_with_its_job(&app).await;
    let a = &a;
    report(&app, a, &job, "failed", "precheck", "only 120 MiB free on /var/cache/apt/archives", "1.0").await;
    let failed = deployments_of(&app, a).await[0]["id"].as_str().unwrap().to_string();
    // The gate of a one-device ring halts it; a technician frees the disk, releases and retries.
    let d = dispatch(&app).await;
    assert_eq!((d["scheduled"].as_u64(), d["halted"].as_array().map(Vec::len)), (Some(0), Some(1)), "{d}");
    let tech = app.token("tech@a").await;
    let viewer = app.token("viewer@a1").await;
    let r = viewer
        .send("POST", &format!("/api/v1/deployments/{failed}/retry"), Some(json!({"reason": "x"})))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let halt = tech.get("/api/v1/rollouts/halts").await.body[0]["id"].as_str().unwrap().to_string();
    tech.send(
        "POST",
        &format!("/api/v1/rollouts/halts/{halt}/release"),
        Some(json!({"reason": "disk freed"})),
    )
    .await;
    assert_eq!(dispatch(&app).await["scheduled"], 0, "a failed install is not retried by itself");
    let r = tech
        .send("POST", &format!("/api/v1/deployments/{failed}/retry"), Some(json!({"reason": "freed 4 GiB"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "retried");
    let again = tech
        .send("POST", &format!("/api/v1/deployments/{failed}/retry"), Some(json!({"reason": "again"})))
        .await;
    assert_eq!((again.status, again.body["field"].as_str()), (422, Some("id")), "{}", again.body);
    assert_eq!(dispatch(&app).await["scheduled"], 1);
    let list = deployments_of(&app, a).await;
    assert_eq!(
        (list[0]["status"].as_str(), list[1]["status"].as_str()),
        (Some("scheduled"), Some("retried"))
    );
    assert_eq!(events(&app, &failed).await.last().map(String::as_str), Some("deployment.retried"));
}

/// Two servers over one database, dispatching at once and answering the same agents' job
/// requests at once: one deployment per device, one job handed out per device.
async fn two_servers_dispatching_and_leasing_at_once_plan_and_hand_out_each_job_once(app: TestApp) {
    let agents = enroll(&app, &["lab-0", "lab-1", "lab-2", "lab-3", "lab-4"]).await;
    policies(&app, &agents.iter().map(|a| (a, 0)).collect::<Vec<_>>()).await;
    for a in &agents {
        inventory(&app, a, 1, "1.0").await;
        offer(&app, a, "1.0", "1.1").await;
    }
    approve(&app, "1.1").await;
    let second = TestApp::restart(&app).await;
    let bases = [app.base.clone(), second.base.clone()];
    let token = app.token("tech@a").await.token;
    let mut dispatches = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (url, token) = (format!("{}/api/v1/rollouts/dispatch", bases[i % 2]), token.clone());
        dispatches.spawn(async move {
            let r = reqwest::Client::new().post(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["scheduled"].as_u64().unwrap()
        });
    }
    let scheduled: u64 = dispatches.join_all().await.into_iter().sum();
    assert_eq!(scheduled, 5, "each device scheduled once, by whichever server came first");
    for a in &agents {
        assert_eq!(deployments_of(&app, a).await.len(), 1, "{}: one deployment", a.host);
    }
    let mut leases = tokio::task::JoinSet::new();
    for a in &agents {
        for base in &bases {
            for _ in 0..2 {
                let (url, credential, host) =
                    (format!("{base}/api/agent/v1/jobs"), a.credential.clone(), a.host.clone());
                leases.spawn(async move {
                    let r = reqwest::Client::new()
                        .post(url)
                        .bearer_auth(credential)
                        .json(&json!({}))
                        .send()
                        .await;
                    let body: Value = r.unwrap().json().await.unwrap();
                    (host, body["jobs"].as_array().map_or(0, Vec::len))
                });
            }
        }
    }
    let mut jobs = std::collections::BTreeMap::new();
    for (host, n) in leases.join_all().await {
        *jobs.entry(host).or_insert(0) += n;
    }
    assert!(jobs.values().all(|&n| n == 1), "one job per device across both servers: {jobs:?}");
    assert_eq!(jobs.len(), 5);
}
