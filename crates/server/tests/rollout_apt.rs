//! A rollout end to end with real package managers, no mocks: the server on port 0 (SQLite and
//! PostgreSQL), the real `ringfence-agent` binary on three devices, each a private dpkg/apt
//! root, and a local apt repository of a made-up service built in the test with `dpkg-deb`.
//!
//! - ringdemo 1.1 goes ring by ring (lab, canary, general) inside the window and is verified
//!   by each device's next inventory;
//! - the server restarts in the middle of it: nothing is lost or run twice;
//! - 1.2 passes in the MSP's lab but its postinst fails on the canary: the canary gate halts
//!   it for every client and the general ring never gets it; a technician rolls it back
//!   fleet-wide in one action;
//! - 1.3 installs but fails its health check: it rolls back to 1.1 by itself, which dpkg then
//!   holds, and the next cycle does not reinstall it;
//! - a job with a bad signature, and one signed for a window that is over, are refused by the
//!   agent even though the server handed them out.

mod common;

use common::TestApp;
use ringfence_agent_testkit::{self as testing, publish, ringdemo_version};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

both_backends!(ringdemo_rolls_out_halts_rolls_back_and_holds_with_the_real_agent_and_apt);

struct Device {
    name: &'static str,
    root: PathBuf,
    config: PathBuf,
    id: String,
}

async fn run(bin: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(bin).args(args).output().await.unwrap()
}

impl Device {
    /// A private root with ringdemo 1.0 installed, enrolled in the first site.
    async fn new(
        bin: &Path,
        app: &TestApp,
        dir: &Path,
        repo: &Path,
        name: &'static str,
        token: &str,
    ) -> Device {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        let root = testing::private_root(&home, repo);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/machine-id"),
            format!("{:0>32}\n", name.len() * 7919 + name.as_bytes()[0] as usize),
        )
        .unwrap();
        std::fs::write(root.join("etc/hostname"), format!("{name}\n")).unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        let out = testing::apt(&root, "update -q");
        assert!(!out.contains("E: "), "{out}");
        let out = testing::apt(&root, "install -y -q ringdemo=1.0");
        assert_eq!(ringdemo_version(&root), "1.0 ii", "{out}");
        let config = home.join("config");
        let r = run(
            bin,
            &[
                "enroll",
                "--server",
                &app.base,
                "--token",
                token,
                "--config-dir",
                path(&config),
                "--root",
                path(&root),
            ],
        )
        .await;
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let cfg: Value = serde_json::from_slice(&std::fs::read(config.join("agent.json")).unwrap()).unwrap();
        Device { name, root, config, id: cfg["device_id"].as_str().unwrap().to_string() }
    }

    /// One `ringfence-agent run --once`: heartbeat, inventory and pending updates, jobs, and
    /// the inventory after them. The apt lists are refreshed first, as the system's daily
    /// apt timer would.
    async fn run_once(&self, bin: &Path) -> String {
        testing::apt(&self.root, "update -q");
        let reboot = format!("touch {}/rebooted", self.root.display());
        let r = run(
            bin,
            &[
                "run",
                "--once",
                "--config-dir",
                path(&self.config),
                "--root",
                path(&self.root),
                "--min-free-mib",
                "1",
                "--lock-wait",
                "5",
                "--reboot-command",
                &reboot,
            ],
        )
        .await;
        let out = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
        assert!(r.status.success(), "{}: {out}", self.name);
        out
    }

    fn version(&self) -> String {
        ringdemo_version(&self.root)
    }

    /// Points the agent at another server address (the same server, restarted).
    fn move_to(&self, base: &str) {
        let p = self.config.join("agent.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        cfg["server"] = json!(base);
        std::fs::write(&p, cfg.to_string()).unwrap();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn deployments(api: &common::Api, d: &Device) -> Vec<Value> {
    let r = api.get(&format!("/api/v1/deployments?device_id={}", d.id)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

/// One deployment with the agent's log.
async fn detail(api: &common::Api, d: &Value) -> Value {
    let r = api.get(&format!("/api/v1/deployments/{}", d["id"].as_str().unwrap())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn approve(api: &common::Api, version: &str) {
    let r = api
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": "ringdemo", "version": version}], "decision": "approve", "reason": "CHG-1207"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn dispatch(api: &common::Api) -> Value {
    let r = api.send("POST", "/api/v1/rollouts/dispatch", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn rollout(api: &common::Api, version: &str) -> Value {
    let r = api.get("/api/v1/rollouts").await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product"] == "ringdemo" && r["version"] == version)
        .cloned()
        .unwrap()
}

async fn ringdemo_rolls_out_halts_rolls_back_and_holds_with_the_real_agent_and_apt(app: TestApp) {
    if !testing::tools_present() {
        return;
    }
    let Some(bin) = common::agent_binary() else { return };
    let dir = ringfence_store::testing::TempDir::new("ringfence-rollout-apt");
    let repo = testing::demo_repo(&dir.0);
    publish(&repo, &["1.0", "1.1"]);
    let admin = app.token("admin@a").await;
    let tech = app.token("tech@a").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/enrollment-tokens",
            Some(json!({"site_id": app.a1.site.id, "name": "rollout"})),
        )
        .await;
    let token = r.body["secret"].as_str().unwrap().to_string();
    let lab = Device::new(&bin, &app, &dir.0, &repo, "lab", &token).await;
    let canary = Device::new(&bin, &app, &dir.0, &repo, "canary", &token).await;
    let general = Device::new(&bin, &app, &dir.0, &repo, "general", &token).await;
    std::fs::create_dir_all(lab.root.join("etc/ringdemo")).unwrap();
    std::fs::write(lab.root.join("etc/ringdemo/lab"), "the MSP's own lab machine\n").unwrap();

    // Policy: a window open now, rings without waiting (the gates still judge), the health
    // check of the service signed into every job, automatic rollback.
    let settings = common::window_open_now(
        &app,
        json!({
            "validation_hours": {"bugfix": 0, "security": 0, "feature": 0},
            "reboot": "allowed",
            "auto_rollback": true,
            "health_checks": [{"check": "command", "argv": ["/bin/sh", "-c", "\"$RINGFENCE_ROOT/usr/bin/ringdemo\" --health"]}]
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
    for (d, ring) in [(&lab, 0), (&canary, 1), (&general, 2)] {
        let r = admin
            .send(
                "POST",
                "/api/v1/policies",
                Some(json!({"name": format!("{} ring", d.name), "level": "device", "target_id": d.id, "settings": {"ring": ring}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // The agents report 1.0 and that 1.1 is available.
    for d in [&lab, &canary, &general] {
        d.run_once(&bin).await;
    }
    let catalog = tech.get(&format!("/api/v1/devices/{}/updates", lab.id)).await;
    assert_eq!(catalog.body[0]["candidate"], "1.1", "{}", catalog.body);
    approve(&tech, "1.1").await;

    // Ring 0, then the server restarts with the job queued: a new process over the same
    // database plans nothing twice, and the agent runs the job once.
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    let restarted = TestApp::restart(&app).await;
    assert_eq!(restarted.engine.dispatch_partner(&app.a1.partner.id).await.unwrap().scheduled, 0);
    for d in [&lab, &canary, &general] {
        d.move_to(&restarted.base);
    }
    let out = lab.run_once(&bin).await;
    assert!(out.contains("Succeeded"), "{out}");
    assert_eq!(lab.version(), "1.1 ii");
    let deps = deployments(&tech, &lab).await;
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(deps[0]["status"], "verified", "{}", deps[0]);
    let log = detail(&tech, &deps[0]).await["log"].as_str().unwrap().to_string();
    assert!(log.contains("Setting up ringdemo (1.1)"), "{log}");
    let again = lab.run_once(&bin).await;
    assert!(!again.contains("job "), "nothing more to run: {again}");

    // Ring 1, then ring 2.
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    canary.run_once(&bin).await;
    assert_eq!(canary.version(), "1.1 ii");
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    general.run_once(&bin).await;
    assert_eq!(general.version(), "1.1 ii");
    let r = rollout(&tech, "1.1").await;
    assert_eq!(r["status"], "complete", "{r}");
    for d in [&lab, &canary, &general] {
        assert_eq!(deployments(&tech, d).await[0]["status"], "verified");
    }

    // 1.2: fine in the lab, broken on the canary: the gate halts it for every client.
    publish(&repo, &["1.0", "1.1", "1.2"]);
    for d in [&lab, &canary, &general] {
        d.run_once(&bin).await;
    }
    approve(&tech, "1.2").await;
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    lab.run_once(&bin).await;
    assert_eq!(lab.version(), "1.2 ii");
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    let out = canary.run_once(&bin).await;
    assert!(out.contains("Failed"), "{out}");
    assert_eq!(canary.version(), "1.2 iF", "the postinst failed");
    let failed = &deployments(&tech, &canary).await[0];
    assert_eq!(failed["status"], "failed");
    assert!(failed["detail"].as_str().unwrap().contains("ringdemo"), "{failed}");
    let log = detail(&tech, failed).await["log"].as_str().unwrap().to_string();
    assert!(log.contains("cannot create its state folder"), "{log}");
    let d = dispatch(&tech).await;
    assert!(d["halted"][0].as_str().unwrap().contains("ring 1 (canary) gate failed"), "{d}");
    assert_eq!(d["scheduled"], 0, "the general ring does not get it: {d}");
    let r = rollout(&tech, "1.2").await;
    assert_eq!(r["status"], "halted", "{r}");
    assert_eq!((r["rings"][0]["succeeded"].as_u64(), r["rings"][1]["failed"].as_u64()), (Some(1), Some(1)));
    general.run_once(&bin).await;
    assert_eq!(general.version(), "1.1 ii");

    // A technician rolls 1.2 back fleet-wide in one action: the lab and the canary go back
    // to 1.1, which dpkg holds.
    let r = tech
        .send(
            "POST",
            "/api/v1/rollouts/rollback",
            Some(
                json!({"product": "ringdemo", "version": "1.2", "reason": "postinst breaks client machines"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scheduled"], 2, "{}", r.body);
    for d in [&lab, &canary] {
        d.run_once(&bin).await;
        assert_eq!(d.version(), "1.1 hi", "{} is back on 1.1, held", d.name);
        let list = deployments(&tech, d).await;
        assert_eq!(
            (list[0]["kind"].as_str(), list[0]["status"].as_str()),
            (Some("rollback"), Some("verified")),
            "{list:?}"
        );
        assert_eq!(list[1]["status"], "rolled_back");
    }

    // 1.3 installs on the lab machine but fails its health check: back to 1.1 by itself, held.
    publish(&repo, &["1.0", "1.1", "1.2", "1.3"]);
    for d in [&lab, &canary, &general] {
        d.run_once(&bin).await;
    }
    approve(&tech, "1.3").await;
    assert_eq!(dispatch(&tech).await["scheduled"], 1);
    let out = lab.run_once(&bin).await;
    assert!(out.contains("health"), "{out}");
    let list = deployments(&tech, &lab).await;
    assert_eq!(
        (list[0]["kind"].as_str(), list[0]["status"].as_str()),
        (Some("rollback"), Some("scheduled")),
        "{list:?}"
    );
    assert_eq!(list[1]["status"], "failed");
    lab.run_once(&bin).await;
    assert_eq!(lab.version(), "1.1 hi");
    let list = deployments(&tech, &lab).await;
    assert_eq!(list[0]["status"], "verified");
    assert_eq!(list[1]["status"], "rolled_back");
    let holds = tech.get("/api/v1/holds").await.body;
    let lab_hold = holds.as_array().unwrap().iter().find(|h| h["device_id"] == lab.id.as_str()).unwrap();
    assert_eq!(
        (lab_hold["held_version"].as_str(), lab_hold["blocked_version"].as_str()),
        (Some("1.1"), Some("1.3"))
    );
    let showhold = testing::apt(&lab.root, "-s upgrade");
    assert!(showhold.contains("kept back") || showhold.contains("held"), "{showhold}");
    // The next cycle does not reinstall 1.3 on the lab machine.
    lab.run_once(&bin).await;
    dispatch(&tech).await;
    let again = lab.run_once(&bin).await;
    assert!(!again.contains("job "), "{again}");
    assert_eq!(lab.version(), "1.1 hi");

    // Jobs the agent refuses although the server handed them out: a forged signature, and a
    // genuine signature on a window that is over.
    refused_jobs(&app, &bin, &general, &tech).await;

    let chain = tech.get("/api/v1/evidence/verify").await;
    assert_eq!(chain.status, 200, "{}", chain.body);
    let events = app.store.list_events(app.a1.partner.id.as_str(), None, 0, 100_000).await.unwrap();
    for action in [
        "deployment.scheduled",
        "deployment.dispatched",
        "deployment.started",
        "deployment.installed",
        "deployment.verified",
        "deployment.failed",
        "deployment.rollback_scheduled",
        "deployment.rolled_back",
        "rollout.halt",
        "hold.create",
    ] {
        assert!(events.iter().any(|e| e.action == action), "no {action} event");
    }
}

async fn refused_jobs(app: &TestApp, bin: &Path, d: &Device, tech: &common::Api) {
    use ringfence_store::{DeployedPackage, NewDeployment, NewJob};
    let now = app.engine.now();
    let package = DeployedPackage {
        product: "ringdemo".into(),
        version: "1.0".into(),
        manager: "dpkg".into(),
        name: "ringdemo".into(),
        from_version: "1.1".into(),
        to_version: "1.0".into(),
    };
    let job = |id: &str, window_end: jiff::Timestamp| ringfence_proto::jobs::Job {
        id: format!("0190c0de-0000-7000-9000-00000000000{id}"),
        idempotency_key: format!("forged-{id}"),
        device_id: d.id.clone(),
        deployment_id: Some(format!("0190c0de-0000-7000-8000-00000000000{id}")),
        work: ringfence_proto::jobs::JobKind::Install {
            packages: vec![ringfence_proto::jobs::PackageVersion {
                manager: "dpkg".into(),
                name: "ringdemo".into(),
                version: "1.0".into(),
            }],
            reboot_allowed: false,
            health_checks: Vec::new(),
        },
        window_start: now - jiff::SignedDuration::from_hours(30),
        window_end,
        issued_at: now - jiff::SignedDuration::from_hours(30),
    };
    // 1: signed by a key the agent never pinned. 2: the server's key, a window long over.
    let forged = {
        let j = job("1", now + jiff::SignedDuration::from_hours(2));
        ringfence_proto::jobs::sign(&j, &"13".repeat(32)).unwrap()
    };
    let late = app.engine.sign_job(&job("2", now - jiff::SignedDuration::from_hours(26))).await.unwrap();
    for (n, signed) in [("1", forged), ("2", late)] {
        let new = NewDeployment {
            id: format!("0190c0de-0000-7000-8000-00000000000{n}"),
            organization_id: app.a1.org.id.clone(),
            device_id: ringfence_model::DeviceId::parse(&d.id).unwrap(),
            kind: "install".into(),
            ring: 2,
            updates: vec![package.clone()],
            window_start: now - jiff::SignedDuration::from_mins(5),
            window_end: now + jiff::SignedDuration::from_hours(2),
            reboot_required: false,
            previous_id: None,
            detail: "written straight into the database".into(),
            action: "deployment.scheduled".into(),
            job: Some(NewJob {
                id: format!("0190c0de-0000-7000-9000-00000000000{n}"),
                idempotency_key: format!("forged-{n}"),
                kind: "install".into(),
                payload: signed.payload,
                signature: signed.signature,
            }),
        };
        let audit = ringfence_store::Audit::new("test:tamper", now);
        assert_eq!(app.store.create_deployments(&audit, &app.a1.partner.id, &[new]).await.unwrap().len(), 1);
        let out = d.run_once(bin).await;
        assert!(out.contains("Refused"), "{out}");
        assert_eq!(d.version(), "1.1 ii", "nothing was installed");
        let dep = &deployments(tech, d).await[0];
        let (status, why) =
            if n == "1" { ("failed", "signature does not verify") } else { ("missed", "window ended") };
        assert_eq!(dep["status"], status, "{dep}");
        assert!(dep["detail"].as_str().unwrap().contains(why), "{dep}");
    }
}
