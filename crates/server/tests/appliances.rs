//! Agentless network appliances end to end, on SQLite and PostgreSQL: Debian's net-snmp
//! `snmpd` answers on loopback as a FortiGate 100F (FortiOS 7.0.11), a PA-3220 (PAN-OS
//! 10.2.9), a Catalyst 9300 (IOS XE 17.9.4) and an unknown device; the real collector code of
//! the agent leases signed jobs from the server over HTTP, polls them over SNMPv2c and v3
//! authPriv, and reports. The identified CPEs are correlated against the real NVD records in
//! `../shared/data` (skipped with a message when absent). Then the manual patch loop: a
//! manually reported appliance, an approved firmware update that becomes a maintenance task
//! in the appliance's window, marked done, reopened by a confirmation that still shows the
//! old firmware, and verified by one that shows the new one, with every step in the evidence.

mod common;

use common::TestApp;
use ringfence_agent::enroll::AgentConfig;
use ringfence_agent_testkit::snmp::{Profile, Snmpd, v2c_credential, v3_credential};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

both_backends!(
    snmp_appliances_are_polled_identified_correlated_and_isolated,
    the_manual_patch_loop_runs_in_the_window_and_is_verified_by_the_next_confirmation,
);

fn data() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if dir.join("nvd/cves-page-1.json").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: ../shared/data/nvd is absent (the real NVD records this test correlates against)"
        );
        None
    }
}

/// Imports the real NVD pages and the CISA KEV catalog, and rebuilds the match index.
async fn import_intel(app: &TestApp, data: &std::path::Path) {
    let now = app.engine.now();
    for f in [
        "nvd/cves-page-0.json",
        "nvd/cves-page-1.json",
        "nvd/cves-page-2.json",
        "kev/known_exploited_vulnerabilities.json",
    ] {
        ringfence_engine::intel::import_file(
            app.store.as_ref(),
            &data.join(f),
            now,
            Arc::new(AtomicU64::new(0)),
        )
        .await
        .unwrap();
    }
    app.engine.reload_index().await.unwrap();
}

async fn enroll_collector(app: &TestApp) -> AgentConfig {
    let op = app.engine.operator("test", app.a1.partner.name.as_str()).await.unwrap();
    let token = app
        .engine
        .create_enrollment_token(
            &op,
            &ringfence_proto::CreateEnrollmentToken {
                site_id: app.a1.site.id.to_string(),
                name: "collector".into(),
                expires_in_hours: None,
                max_uses: None,
            },
        )
        .await
        .unwrap();
    let r = app
        .engine
        .enroll(&ringfence_proto::EnrollRequest {
            token: token.secret,
            hostname: "collector-hq".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            agent_version: "test".into(),
        })
        .await
        .unwrap();
    AgentConfig {
        server: app.base.clone(),
        device_id: r.device_id,
        credential: r.credential,
        server_public_key: r.server_public_key,
    }
}

/// One collector round of the real agent code (blocking HTTP, so off the runtime's threads).
async fn collect(config: &AgentConfig) -> ringfence_agent::collector::CollectorRound {
    let config = config.clone();
    tokio::task::spawn_blocking(move || ringfence_agent::collector::round(&config)).await.unwrap().unwrap()
}

/// A real snmpd answering as `profile` (it waits for snmpd with a runtime of its own, so off
/// the test's runtime).
async fn snmpd(profile: Profile) -> Option<Snmpd> {
    tokio::task::spawn_blocking(move || Snmpd::start(&profile, &[]).unwrap()).await.unwrap()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|a| a["hostname"] == name).unwrap_or_else(|| panic!("no appliance {name} in {list:?}"))
}

fn cves(a: &Value) -> Vec<String> {
    a["findings"].as_array().unwrap().iter().map(|f| f["cve_id"].as_str().unwrap().to_string()).collect()
}

async fn actions(app: &TestApp, prefix: &str) -> Vec<String> {
    let events = app.store.list_events(app.a1.partner.id.as_str(), None, 0, 100_000).await.unwrap();
    events.into_iter().map(|e| e.action).filter(|a| a.starts_with(prefix)).collect()
}

async fn snmp_appliances_are_polled_identified_correlated_and_isolated(app: TestApp) {
    let Some(data) = data() else { return };
    let Some(fortigate) = snmpd(Profile::fortigate_100f()).await else { return };
    let pa = snmpd(Profile::pa_3220()).await.unwrap();
    let catalyst = snmpd(Profile::catalyst_9300()).await.unwrap();
    let unknown = snmpd(Profile::unknown_device()).await.unwrap();
    import_intel(&app, &data).await;
    let tech = app.token("tech@a").await;
    let collector = enroll_collector(&app).await;

    // A device is a collector only when a technician says so; until then it gets no work.
    let round = collect(&collector).await;
    assert!(round.jobs.is_empty());
    let r = tech.send("POST", "/api/v1/collectors", Some(json!({"device_id": collector.device_id}))).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Credentials: sealed at once, never shown again, and not readable from the database.
    let ringfence_proto::collector::SnmpCredential::V3 { auth_password, priv_password, .. } = v3_credential()
    else {
        unreachable!()
    };
    let ringfence_proto::collector::SnmpCredential::V2c { community } = v2c_credential() else {
        unreachable!()
    };
    let cred = |name: &str, c: ringfence_proto::collector::SnmpCredential| {
        let tech = &tech;
        let body = json!({"name": name, "credential": c});
        async move {
            let r = tech.send("POST", "/api/v1/snmp-credentials", Some(body)).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["id"].as_str().unwrap().to_string()
        }
    };
    let v3 = cred("hq v3", v3_credential()).await;
    let v2 = cred("hq v2c", v2c_credential()).await;
    let wrong_community = cred(
        "wrong community",
        ringfence_proto::collector::SnmpCredential::V2c { community: "not-the-one".into() },
    )
    .await;
    let wrong_v3 = cred(
        "wrong v3 password",
        ringfence_proto::collector::SnmpCredential::V3 {
            user: ringfence_agent_testkit::snmp::V3_USER.into(),
            auth_protocol: ringfence_proto::collector::AuthProtocol::Sha256,
            auth_password: "not-the-password".into(),
            priv_protocol: ringfence_proto::collector::PrivProtocol::Aes128,
            priv_password: priv_password.clone(),
        },
    )
    .await;
    let listed = tech.get("/api/v1/snmp-credentials").await;
    assert_eq!(listed.status, 200);
    let text = listed.body.to_string();
    for secret in [&auth_password, &priv_password, &community] {
        assert!(!text.contains(secret.as_str()), "a credential list shows a secret: {text}");
    }
    let page = app.session("tech@a").await.send("GET", "/appliances", None).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.to_string().contains(auth_password.as_str()));
    let stored = app.store.sealed_credential(&app.a1.partner.id, &v3).await.unwrap().unwrap().1;
    assert!(stored.starts_with("v1:") && !stored.contains(&hex::encode(auth_password.as_bytes())));
    assert!(!stored.contains(auth_password.as_str()) && !stored.contains(priv_password.as_str()));

    let add = |name: &str, addr: std::net::SocketAddr, cred: &str| {
        json!({"site_id": app.a1.site.id, "name": name, "source": "snmp", "address": addr.ip().to_string(),
               "port": addr.port(), "collector_id": collector.device_id, "credential_id": cred})
    };
    for body in [
        add("fw-hq", fortigate.addr(), &v3),
        add("pa-edge", pa.addr(), &v2),
        add("core-sw1", catalyst.addr(), &v3),
        add("mystery", unknown.addr(), &v2),
        add("fw-wrong-community", fortigate.addr(), &wrong_community),
        add("fw-wrong-password", fortigate.addr(), &wrong_v3),
    ] {
        let r = tech.send("POST", "/api/v1/appliances", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Bad input is refused with the field named, and writes nothing.
    let before = app.heads().await;
    for (body, field) in [
        (
            json!({"site_id": app.a1.site.id, "name": "x", "source": "snmp", "address": "fw.example", "collector_id": collector.device_id, "credential_id": v3}),
            "address",
        ),
        (
            json!({"site_id": app.a1.site.id, "name": "x", "source": "snmp", "address": "10.0.0.1", "collector_id": app.a1.device.id, "credential_id": v3}),
            "collector_id",
        ),
        (
            json!({"site_id": app.a1.site.id, "name": "x", "source": "snmp", "address": "::ffff:169.254.169.254", "collector_id": collector.device_id, "credential_id": v3}),
            "address",
        ),
        (
            json!({"site_id": app.a1.site.id, "name": "x", "source": "snmp", "address": "::ffff:224.0.0.1", "collector_id": collector.device_id, "credential_id": v3}),
            "address",
        ),
        (json!({"site_id": app.a1.site.id, "name": "x", "source": "carrier-pigeon"}), "source"),
        (
            json!({"site_id": app.a1.site.id, "name": "x", "source": "manual", "vendor": "Fortinet", "model": "FortiGate 100F"}),
            "firmware",
        ),
    ] {
        let r = tech.send("POST", "/api/v1/appliances", Some(body)).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.to_string().contains(field), "{field}: {}", r.body);
    }
    let r = tech
        .send(
            "POST",
            "/api/v1/network-scans",
            Some(
                json!({"collector_id": collector.device_id, "range": "10.0.0.0/16", "credential_ids": [v2]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("4096"), "{}", r.body);
    assert_eq!(app.heads().await, before, "refused requests wrote evidence");

    // One round: every appliance polled; each outcome recorded per target.
    let round = collect(&collector).await;
    assert_eq!(round.jobs.len(), 1, "one signed poll job for six appliances");
    let list = tech.get("/api/v1/appliances").await.body.as_array().unwrap().clone();
    assert_eq!(list.len(), 6);

    let fw = by_name(&list, "fw-hq");
    assert_eq!(fw["last_outcome"], "ok", "{fw}");
    assert_eq!(fw["vendor"], "Fortinet");
    assert_eq!(fw["model"], "FortiGate 100F");
    assert_eq!(fw["firmware"], "7.0.11");
    assert_eq!(fw["serial"], "FG100FTK22000001");
    assert_eq!(fw["os_cpe"], "cpe:2.3:o:fortinet:fortios:7.0.11:*:*:*:*:*:*:*");
    assert!(cves(fw).contains(&"CVE-2024-21762".to_string()), "{fw}");
    assert_eq!(fw["findings"][0]["kev"], true, "KEV first: {fw}");
    assert!(cves(fw).contains(&"CVE-2023-27997".to_string()), "{fw}");
    // FortiOS 7.0.11 is past the fix of CVE-2022-40684 (7.0.7): not a finding.
    assert!(!cves(fw).contains(&"CVE-2022-40684".to_string()), "{fw}");

    let pa_row = by_name(&list, "pa-edge");
    assert_eq!((pa_row["product"].as_str(), pa_row["firmware"].as_str()), (Some("PAN-OS"), Some("10.2.9")));
    assert!(cves(pa_row).contains(&"CVE-2024-3400".to_string()), "{pa_row}");
    let sw = by_name(&list, "core-sw1");
    assert_eq!((sw["product"].as_str(), sw["firmware"].as_str()), (Some("IOS XE"), Some("17.9.4")));
    assert!(cves(sw).contains(&"CVE-2023-20198".to_string()), "{sw}");

    let mystery = by_name(&list, "mystery");
    assert_eq!(mystery["identified"], false);
    assert_eq!(mystery["sys_descr"], "ACME NetBox 3000 firmware 2.4.1");
    assert_eq!(mystery["sys_object_id"], "1.3.6.1.4.1.99999.1.1");
    assert_eq!(by_name(&list, "fw-wrong-community")["last_outcome"], "timeout");
    let wrong = by_name(&list, "fw-wrong-password");
    assert_eq!(wrong["last_outcome"], "auth_failed", "{wrong}");
    assert!(wrong["identified"] == false && cves(wrong).is_empty());

    // The fleet view: this firmware at N clients.
    let fleet = tech.get("/api/v1/appliances/firmware").await.body;
    let fortios = fleet.as_array().unwrap().iter().find(|g| g["product"] == "FortiOS").unwrap();
    assert_eq!((fortios["firmware"].as_str(), fortios["clients"].as_u64()), (Some("7.0.11"), Some(1)));
    assert!(fortios["kev_cves"].as_u64().unwrap() >= 1);

    // A mapping of the unknown device, once for the whole partner.
    let mapping = json!({"id": "", "sys_object_id_prefix": "1.3.6.1.4.1.99999", "vendor": "ACME", "product": "NetBox OS",
        "cpe_vendor": "acme", "cpe_product": "netbox_os", "cpe_part": "o",
        "version": {"from": "descr_regex", "pattern": "firmware ([0-9.]+)"}});
    let r = app
        .token("tech@a1")
        .await
        .send("POST", "/api/v1/appliance-mappings", Some(json!({"mapping": mapping})))
        .await;
    assert_eq!(r.status, 403, "an organization's technician may not map for the whole partner: {}", r.body);
    let r = tech.send("POST", "/api/v1/appliance-mappings", Some(json!({"mapping": mapping}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["identified"], 1);
    let id = mystery["device_id"].as_str().unwrap();
    let m = tech.get(&format!("/api/v1/appliances/{id}")).await.body;
    assert_eq!((m["identified"].as_bool(), m["firmware"].as_str()), (Some(true), Some("2.4.1")), "{m}");
    assert_eq!(m["os_cpe"], "cpe:2.3:o:acme:netbox_os:2.4.1:*:*:*:*:*:*:*");

    // A sweep finds what answers in its range (a second PA-3220, whose sysName is taken) and
    // adds it to the collector's organization and site; a client-level technician may not
    // use the partner-wide credential, and a range of multicast addresses is refused.
    let tech_a1 = app.token("tech@a1").await;
    let r = tech_a1
        .send(
            "POST",
            "/api/v1/network-scans",
            Some(
                json!({"collector_id": collector.device_id, "range": "127.0.0.1/32", "credential_ids": [v2]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("partner-wide"), "{}", r.body);
    let r = tech
        .send(
            "POST",
            "/api/v1/network-scans",
            Some(
                json!({"collector_id": collector.device_id, "range": "224.0.0.0/30", "credential_ids": [v2]}),
            ),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let second_pa = snmpd(Profile::pa_3220()).await.unwrap();
    let r = tech
        .send(
            "POST",
            "/api/v1/network-scans",
            Some(json!({"collector_id": collector.device_id, "range": "127.0.0.1-127.0.0.1", "port": second_pa.port,
                        "rate_per_sec": 5, "credential_ids": [wrong_community, v2]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    collect(&collector).await;
    let scans = tech.get("/api/v1/network-scans").await.body;
    assert_eq!(scans[0]["status"], "done", "{scans}");
    assert_eq!((scans[0]["answered"].as_i64(), scans[0]["added"].as_i64()), (Some(1), Some(1)), "{scans}");
    let list = tech.get("/api/v1/appliances").await.body.as_array().unwrap().clone();
    let found = list
        .iter()
        .find(|a| a["port"] == second_pa.port && a["hostname"] != "pa-edge")
        .unwrap_or_else(|| panic!("the swept appliance is missing: {list:?}"));
    assert!(found["hostname"].as_str().unwrap().starts_with("pa-edge-"), "{found}");
    assert_eq!(
        (found["organization_id"].as_str(), found["credential_id"].as_str()),
        (Some(app.a1.org.id.as_str()), Some(v2.as_str()))
    );
    assert!(cves(found).contains(&"CVE-2024-3400".to_string()), "{found}");
    assert!(actions(&app, "appliance.scan").await.iter().any(|a| a == "appliance.scan"));

    // Nothing is due until the poll interval passes.
    assert!(collect(&collector).await.jobs.is_empty());
    // The FortiGate is upgraded; the next poll sees 7.0.14 and CVE-2024-21762 is resolved.
    let _fortigate = tokio::task::spawn_blocking(move || {
        fortigate.set_profile(&Profile::fortigate_100f_upgraded()).unwrap();
        fortigate
    })
    .await
    .unwrap();
    app.advance(std::time::Duration::from_secs(5 * 3600));
    collect(&collector).await;
    let fw = tech.get(&format!("/api/v1/appliances/{}", fw["device_id"].as_str().unwrap())).await.body;
    assert_eq!(fw["firmware"], "7.0.14", "{fw}");
    assert!(!cves(&fw).contains(&"CVE-2024-21762".to_string()), "{fw}");

    // Tenant isolation: another partner sees none of it; a client viewer reads but changes nothing.
    let b = app.token("admin@b").await;
    assert_eq!(b.get("/api/v1/appliances").await.body, json!([]));
    assert_eq!(b.get(&format!("/api/v1/appliances/{id}")).await.status, 404);
    assert_eq!(b.get("/api/v1/snmp-credentials").await.body, json!([]));
    let viewer = app.token("viewer@a1").await;
    let r = viewer
        .send("POST", "/api/v1/snmp-credentials", Some(json!({"name": "v", "credential": v2c_credential()})))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A collector reports only for its own appliances: another agent's report is refused.
    let other = reqwest::Client::new()
        .post(app.url("/api/agent/v1/collector/report"))
        .bearer_auth("rfa_not-a-device")
        .json(&json!({"job_id": "x", "results": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 401);

    // Evidence: every appliance's creation, its polls that changed something, and the mapping.
    let evidence = actions(&app, "appliance.").await;
    assert_eq!(evidence.iter().filter(|a| *a == "appliance.create").count(), 7, "six added and one swept");
    assert!(evidence.iter().any(|a| a == "appliance.polled"));
    assert!(evidence.iter().any(|a| a == "appliance.identified"));
    let chain = tech.get("/api/v1/evidence/verify").await;
    assert_eq!(chain.body["ok"], true, "{}", chain.body);
}

async fn the_manual_patch_loop_runs_in_the_window_and_is_verified_by_the_next_confirmation(app: TestApp) {
    let Some(data) = data() else { return };
    import_intel(&app, &data).await;
    let tech = app.token("tech@a").await;
    let admin = app.token("admin@a").await;
    let r = admin
        .send(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Baseline", "level": "partner", "settings": common::window_open_now(&app, json!({}))})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // A CSV import: a bad file names every bad line and imports nothing.
    let bad = "name,vendor,model,firmware,site\nfw-a,Fortinet,FortiGate 100F,7.0.11,HQ\nfw-b,Fortinet,,7.0.11,HQ\nfw-c,Fortinet,FortiGate 60F,7.2.0,Branch\n";
    let r = tech
        .send(
            "POST",
            "/api/v1/appliances/import",
            Some(json!({"organization_id": app.a1.org.id, "csv": bad})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("line 3"), "{}", r.body);
    assert_eq!(tech.get("/api/v1/appliances").await.body, json!([]));
    let csv = "name,vendor,model,firmware,site,serial\nfw-branch,Fortinet,FortiGate 100F,7.0.11,HQ,FG100FTK22000009\n";
    let r = tech
        .send(
            "POST",
            "/api/v1/appliances/import",
            Some(json!({"organization_id": app.a1.org.id, "csv": csv})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body[0]["device_id"].as_str().unwrap().to_string();
    let a = tech.get(&format!("/api/v1/appliances/{id}")).await.body;
    assert_eq!(a["source"], "manual");
    assert!(a["confirmed_at"].is_string(), "{a}");
    assert!(cves(&a).contains(&"CVE-2024-21762".to_string()), "{a}");
    let page = app.session("tech@a").await.send("GET", &format!("/appliances/{id}"), None).await;
    assert!(page.body.to_string().contains("manually reported, last confirmed on"), "{}", page.body);

    // The firmware update waits in the queue like any other; a technician approves it.
    let queue = tech.get("/api/v1/remediation-queue").await.body;
    // One item per fixed version (7.0.14 fixes CVE-2024-21762, 7.0.17 CVE-2024-55591); the
    // appliance's update is the newest, which reaches both.
    let numbers = |v: &str| v.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    let item = queue
        .as_array()
        .unwrap_or_else(|| panic!("{queue}"))
        .iter()
        .filter(|i| i["classification"] == "firmware")
        .max_by_key(|i| numbers(i["version"].as_str().unwrap_or("")))
        .unwrap_or_else(|| panic!("no firmware update in the queue: {queue}"))
        .clone();
    assert!(item["cves"].as_array().unwrap().iter().any(|c| c == "CVE-2024-55591"), "{item}");
    let (product, version) = (item["product"].as_str().unwrap(), item["version"].as_str().unwrap());
    assert_eq!((product, version), ("fortinet:fortios", "7.0.17"));
    let r = tech
        .send(
            "POST",
            "/api/v1/approvals",
            Some(json!({"updates": [{"product": product, "version": version}], "decision": "approve", "reason": "CHG-21762"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // The dispatcher makes it a maintenance task in the appliance's window: no agent job.
    let d = tech.send("POST", "/api/v1/rollouts/dispatch", None).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let tasks = tech.get("/api/v1/appliance-tasks?open=true").await.body;
    let task = tasks
        .as_array()
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("no task: {tasks} after {}", d.body))
        .clone();
    let tid = task["deployment"]["id"].as_str().unwrap().to_string();
    assert_eq!(task["deployment"]["status"], "scheduled");
    assert_eq!(task["deployment"]["updates"][0]["to_version"], version);
    assert!(task["deployment"]["detail"].as_str().unwrap().starts_with("maintenance task"));
    let r = tech
        .send("POST", &format!("/api/v1/appliance-tasks/{tid}/assign"), Some(json!({"assignee": "tech@a"})))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let viewer = app.token("viewer@a1").await;
    assert_eq!(
        viewer.send("POST", &format!("/api/v1/appliance-tasks/{tid}/done"), Some(json!({}))).await.status,
        403
    );

    // Done, but the confirmation still shows 7.0.11: the task opens again.
    let r = tech
        .send(
            "POST",
            &format!("/api/v1/appliance-tasks/{tid}/done"),
            Some(json!({"note": "upgraded via GUI"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["deployment"]["status"], "installed");
    let again = tech.send("POST", &format!("/api/v1/appliance-tasks/{tid}/done"), Some(json!({}))).await;
    assert_eq!(again.status, 409, "a task is marked done once: {}", again.body);
    app.advance(std::time::Duration::from_secs(60));
    let r = tech
        .send("POST", &format!("/api/v1/appliances/{id}/confirm"), Some(json!({"firmware": "7.0.11"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = tech.get("/api/v1/appliance-tasks").await.body;
    let t = t.as_array().unwrap().iter().find(|t| t["deployment"]["id"] == tid.as_str()).unwrap().clone();
    assert_eq!(t["deployment"]["status"], "scheduled", "{t}");
    assert_eq!(t["reopened"], 1);

    // Done again, and this time the appliance reports the target firmware: verified, and the
    // findings it fixes are resolved and credited to the task.
    app.advance(std::time::Duration::from_secs(60));
    let r = tech
        .send(
            "POST",
            &format!("/api/v1/appliance-tasks/{tid}/done"),
            Some(json!({"note": "really upgraded"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.advance(std::time::Duration::from_secs(60));
    let r = tech
        .send("POST", &format!("/api/v1/appliances/{id}/confirm"), Some(json!({"firmware": version})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deps = tech.get(&format!("/api/v1/deployments/{tid}")).await.body;
    assert_eq!(deps["status"], "verified", "{deps}");
    let a = tech.get(&format!("/api/v1/appliances/{id}")).await.body;
    assert!(!cves(&a).contains(&"CVE-2024-21762".to_string()), "{a}");
    assert!(tech.get("/api/v1/appliance-tasks?open=true").await.body.as_array().unwrap().is_empty());

    // Every step is in the evidence chain, which still verifies.
    let evidence = actions(&app, "").await;
    for action in [
        "appliance.create",
        "approval.approved",
        "deployment.scheduled",
        "appliance.task_assigned",
        "appliance.task_done",
        "deployment.installed",
        "appliance.confirmed",
        "appliance.task_reopened",
        "deployment.verified",
    ] {
        assert!(evidence.iter().any(|a| a == action), "{action} missing from {evidence:?}");
    }
    let chain = tech.get("/api/v1/evidence/verify").await;
    assert_eq!(chain.body["ok"], true, "{}", chain.body);
}
