//! Client reports, remediation deadlines and audit evidence bundles over the API, on SQLite
//! and PostgreSQL, against hand-counted findings: the report's figures, its CSV and (with
//! Chromium and pdftotext) its PDF text; the deadline overview; mail through a real local
//! SMTP server; a bundle that verifies offline and one that is tampered with; and who may do
//! what (an auditor exports but changes nothing; another partner sees nothing).

mod common;

use common::TestApp;
use jiff::SignedDuration;
use ringfence_model::*;
use ringfence_store::{CveRow, KevRow, NewFinding};
use serde_json::json;

both_backends!(
    report_figures_deadlines_and_evidence_bundle_match_the_hand_count,
    a_schedule_makes_its_report_once_when_it_is_due,
);

const DAY: i64 = 24;

fn finding(cve: &str) -> NewFinding {
    NewFinding {
        cve_id: cve.into(),
        product: "acme-svc".into(),
        kind: "package".into(),
        items: vec!["acme-svc".into()],
        installed_version: "1.0".into(),
        fixed_version: Some("1.1".into()),
        source: "test".into(),
        rule: "test".into(),
    }
}

fn cve(id: &str, severity: &str) -> CveRow {
    CveRow {
        id: id.into(),
        status: "Analyzed".into(),
        published: "2026-01-01T00:00:00".into(),
        last_modified: "2026-01-01T00:00:00".into(),
        description: "test".into(),
        cvss_score: Some(8.0),
        cvss_version: Some("3.1".into()),
        cvss_vector: None,
        severity: Some(severity.to_uppercase()),
        cwes: "[]".into(),
        configurations: "[]".into(),
        match_keys: vec![],
    }
}

async fn report_figures_deadlines_and_evidence_bundle_match_the_hand_count(app: TestApp) {
    let op = app.engine.operator("test", app.a1.partner.name.as_str()).await.unwrap();
    let mut devices = Vec::new();
    for host in ["rpt-1", "rpt-2", "rpt-3"] {
        let d = app
            .engine
            .create_device(
                &op,
                &ringfence_proto::CreateDevice {
                    site_id: app.a1.site.id.to_string(),
                    hostname: host.into(),
                    role: "server".into(),
                    os: String::new(),
                    internet_facing: false,
                    holds_sensitive_data: false,
                    criticality: None,
                    time_zone: None,
                    group_ids: vec![],
                },
            )
            .await
            .unwrap();
        devices.push(d.id);
    }
    let now = app.engine.now();
    let t0 = now - SignedDuration::from_hours(40 * DAY);
    let at = |days: i64| t0 + SignedDuration::from_hours(days * DAY);
    let kev_due = (now + SignedDuration::from_hours(3 * DAY)).strftime("%Y-%m-%d").to_string();
    let store = app.store.clone();
    store
        .upsert_cves(
            &[
                cve("CVE-2026-0001", "critical"),
                cve("CVE-2026-0002", "high"),
                cve("CVE-2026-0003", "high"),
                cve("CVE-2026-0004", "medium"),
            ],
            now,
        )
        .await
        .unwrap();
    store
        .upsert_kev(&[KevRow {
            cve_id: "CVE-2026-0004".into(),
            vendor: "Acme".into(),
            product: "svc".into(),
            name: "Acme svc".into(),
            date_added: "2026-01-01".into(),
            due_date: kev_due.clone(),
            ransomware: false,
            required_action: "Apply updates".into(),
            notes: String::new(),
        }])
        .await
        .unwrap();
    let scope = Scope::partner(app.a1.partner.id.clone());
    let sync = |d: usize, cves: &[&str], when: Timestamp| {
        let store = store.clone();
        let scope = scope.clone();
        let device = devices[d].clone();
        let list: Vec<NewFinding> = cves.iter().map(|c| finding(c)).collect();
        async move { store.sync_findings(&scope, &device, &list, &[], when).await.unwrap() }
    };
    // rpt-1: a critical fixed in 10 days (kept), a high fixed in 35 (missed its 30).
    sync(0, &["CVE-2026-0001", "CVE-2026-0002"], at(0)).await;
    sync(0, &["CVE-2026-0002"], at(10)).await;
    sync(0, &[], at(35)).await;
    // rpt-2: a high open since day 5 (overdue since day 35), a medium KEV due in 3 days.
    sync(1, &["CVE-2026-0003"], at(5)).await;
    sync(1, &["CVE-2026-0003", "CVE-2026-0004"], at(30)).await;

    let tech = app.token("tech@a").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/reports",
            Some(json!({"organization_id": app.a1.org.id, "from": t0.to_string(), "to": now.to_string()})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let fig = tech.get(&format!("/api/v1/reports/{id}")).await.body;
    // Four devices (the tenant's own and three), one with open findings.
    assert_eq!((fig["devices"].as_u64(), fig["fully_patched"].as_u64()), (Some(4), Some(3)), "{fig}");
    assert_eq!(fig["patched_percent"], 75.0);
    assert_eq!(
        (
            fig["findings_opened"].as_u64(),
            fig["findings_closed"].as_u64(),
            fig["findings_open_at_end"].as_u64()
        ),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(fig["sla"], json!({"met": 1, "breached": 1, "open": 1, "overdue": 1, "due_soon": 1}));
    assert_eq!(fig["kev"], json!({"open_findings": 1, "devices": 1, "overdue": 0}));
    let mttr =
        |sev: &str| fig["mttr"].as_array().unwrap().iter().find(|m| m["severity"] == sev).unwrap().clone();
    assert_eq!(
        mttr("critical"),
        json!({"severity": "critical", "remediated": 1, "mean_days": 10.0, "within_sla": 1})
    );
    assert_eq!(
        mttr("high"),
        json!({"severity": "high", "remediated": 1, "mean_days": 35.0, "within_sla": 0})
    );
    let csv = tech.get(&format!("/api/v1/reports/{id}/csv")).await;
    let csv = csv.body.as_str().unwrap().to_owned();
    assert!(
        csv.contains("summary,sla_breached,1\r\n") && csv.contains("summary,patched_percent,75.0\r\n"),
        "{csv}"
    );
    let html = tech.get(&format!("/api/v1/reports/{id}/html")).await;
    assert!(html.body.as_str().unwrap().contains("75.0%"));
    // The report holds the evidence chain's head, signed when it was made: the client keeps a
    // witness of the record.
    let (_, head_seq, _) =
        app.heads().await.into_iter().find(|(c, ..)| c == app.a1.partner.id.as_str()).unwrap();
    let checkpoint = app
        .store
        .checkpoint_before(app.a1.partner.id.as_str(), head_seq)
        .await
        .unwrap()
        .expect("a checkpoint was signed for the report");
    assert!(checkpoint.seq <= head_seq && checkpoint.seq > 0);
    let shown = html.body.as_str().unwrap();
    assert!(
        shown.contains(&format!("event {}, hash <code>{}</code>", checkpoint.seq, checkpoint.hash)),
        "{shown}"
    );
    assert!(csv.contains(&format!("evidence,head_seq,{}\r\n", checkpoint.seq)), "{csv}");
    // The PDF is Chromium's print of the same page.
    let listed = tech.get("/api/v1/reports").await.body;
    let has_pdf = listed[0]["has_pdf"].as_bool().unwrap();
    if ringfence_engine::delivery::find_chromium(None).is_some() {
        assert!(has_pdf, "{listed}");
    }
    if has_pdf && std::process::Command::new("pdftotext").arg("-v").output().is_ok() {
        let pdf = reqwest::Client::new()
            .get(app.url(&format!("/api/v1/reports/{id}/pdf")))
            .bearer_auth(&tech.token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        let dir = std::env::temp_dir().join(format!("rf-pdf-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("r.pdf"), &pdf).unwrap();
        let out = std::process::Command::new("pdftotext").arg(dir.join("r.pdf")).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("75.0%") && text.contains("A1") && text.contains("Partner A"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("SKIP the PDF text check: Chromium or pdftotext is not installed");
    }

    // Deadlines: the overdue high and the KEV due in three days.
    let sla = tech.get(&format!("/api/v1/sla?organization_id={}", app.a1.org.id)).await.body;
    let cves = |k: &str| {
        sla[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["cve_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(cves("breached"), ["CVE-2026-0003"]);
    assert_eq!(cves("due_soon"), ["CVE-2026-0004"]);
    assert_eq!(app.engine.raise_sla_alerts().await.unwrap(), 2);
    assert_eq!(app.engine.raise_sla_alerts().await.unwrap(), 0, "an alert is raised once");

    // The evidence bundle, exported by the auditor and checked offline.
    let auditor = app.token("auditor@a").await;
    let from = (t0 - SignedDuration::from_hours(1)).to_string();
    let bundle = reqwest::Client::new()
        .get(app.url(&format!(
            "/api/v1/evidence/export?organization_id={}&from={from}&no_pdf=true",
            app.a1.org.id
        )))
        .bearer_auth(&auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    let bytes = bundle.bytes().await.unwrap().to_vec();
    let report = ringfence_evidence::verify_bundle(std::io::Cursor::new(&bytes), None).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.rows, 4);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(app.a2.org.id.as_str()), "another client's id is in the bundle");
    // One byte changed in the stored events is found.
    let pos = bytes.windows(13).position(|w| w == b"CVE-2026-0002").unwrap();
    let mut tampered = bytes.clone();
    tampered[pos + 12] = b'9';
    let broken = ringfence_evidence::verify_bundle(std::io::Cursor::new(&tampered), None);
    assert!(broken.map(|r| !r.ok()).unwrap_or(true), "a tampered bundle verified");

    // Mail through a real SMTP server (Python's smtpd) with the report attached.
    if let Some(port) = smtp_port() {
        let mut child = std::process::Command::new("python3")
            .args([
                "-W",
                "ignore",
                "-u",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Python may take a while to start on a busy machine: wait until it listens.
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "the SMTP server did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let engine = app.engine.clone().with_reports(ringfence_engine::delivery::ReportConfig {
            chromium: Some("/nonexistent/chromium".into()),
            logo: None,
            smtp: Some(ringfence_engine::delivery::SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                from: "Partner A <reports@partner-a.example>".into(),
                username: None,
                password: None,
                security: "none".into(),
            }),
        });
        let req = ringfence_proto::ReportRequest {
            organization_id: app.a1.org.id.to_string(),
            from: Some(t0.to_string()),
            to: Some(now.to_string()),
            email_to: vec!["it@a1.example".into()],
            ..Default::default()
        };
        let made = engine.generate_report(&op, &req).await.unwrap();
        assert!(made.delivery.starts_with("sent to it@a1.example"), "{}", made.delivery);
        assert!(made.delivery.contains("no PDF"), "{}", made.delivery);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let mail = String::from_utf8_lossy(&out.stdout);
        assert!(mail.contains("Subject: A1: patching report") && mail.contains("it@a1.example"), "{mail}");
    } else {
        eprintln!("SKIP the SMTP delivery: no free port");
    }

    // Roles and tenants: the auditor exports but may not make or schedule reports; a client
    // viewer may not export; another partner sees none of it.
    let before = app.heads().await;
    let r = auditor.send("POST", "/api/v1/reports", Some(json!({"organization_id": app.a1.org.id}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = auditor
        .send("POST", "/api/v1/report-schedules", Some(json!({"organization_id": app.a1.org.id, "cadence": "monthly", "recipients": ["x@y.example"]})))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(app.heads().await, before, "a refused request wrote evidence");
    let viewer = app.token("viewer@a1").await;
    let r = viewer.get(&format!("/api/v1/evidence/export?organization_id={}", app.a1.org.id)).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        viewer.get(&format!("/api/v1/reports/{id}")).await.status,
        200,
        "a client reads its own reports"
    );
    let other = app.token("admin@b").await;
    assert_eq!(other.get(&format!("/api/v1/reports/{id}")).await.status, 404);
    assert_eq!(
        other.get(&format!("/api/v1/evidence/export?organization_id={}", app.a1.org.id)).await.status,
        404
    );
    assert!(other.get("/api/v1/reports").await.body.as_array().unwrap().is_empty());
    // Bad input is named.
    let r = tech
        .send(
            "POST",
            "/api/v1/reports",
            Some(json!({"organization_id": app.a1.org.id, "period": "fortnight"})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("period")));
    let r = tech
        .send(
            "POST",
            "/api/v1/report-schedules",
            Some(
                json!({"organization_id": app.a1.org.id, "cadence": "daily", "recipients": ["x@y.example"]}),
            ),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("cadence")));
    let r = tech
        .send("POST", "/api/v1/report-schedules", Some(json!({"organization_id": app.a1.org.id, "cadence": "monthly", "recipients": ["not an address"]})))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("recipients")));
}

fn smtp_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok().map(|a| a.port())
}

async fn a_schedule_makes_its_report_once_when_it_is_due(app: TestApp) {
    let tech = app.token("tech@a").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/report-schedules",
            Some(json!({"organization_id": app.a1.org.id, "cadence": "weekly", "recipients": ["it@a1.example"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let next: Timestamp = r.body["next_run"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.to_zoned(jiff::tz::TimeZone::UTC).weekday(), jiff::civil::Weekday::Monday);
    // Not due yet: nothing is made.
    assert_eq!(app.engine.run_report_schedules().await.unwrap(), 0);
    // Once due, one report for the week before; a second server running the schedules at
    // the same moment makes none.
    let wait = next.duration_since(app.engine.now()).as_secs() + 60;
    app.advance(std::time::Duration::from_secs(wait as u64));
    let other = common::TestApp::restart(&app).await;
    let (a, b) = tokio::join!(app.engine.run_report_schedules(), other.engine.run_report_schedules());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let reports = tech.get(&format!("/api/v1/reports?organization_id={}", app.a1.org.id)).await.body;
    let list = reports.as_array().unwrap();
    assert_eq!(list.len(), 1, "{reports}");
    let start: Timestamp = list[0]["period_start"].as_str().unwrap().parse().unwrap();
    let end: Timestamp = list[0]["period_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end.duration_since(start).as_hours(), 7 * 24);
    assert!(list[0]["delivery"].as_str().unwrap().contains("no SMTP server"), "{reports}");
    let schedules = tech.get("/api/v1/report-schedules").await.body;
    let s = schedules.as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap();
    let moved: Timestamp = s["next_run"].as_str().unwrap().parse().unwrap();
    assert_eq!(moved.duration_since(next).as_hours(), 7 * 24, "{s}");
    assert!(s["last_status"].as_str().unwrap().contains("no SMTP server"), "{s}");
    // Removing it is recorded and only for those who may.
    let auditor = app.token("auditor@a").await;
    assert_eq!(auditor.send("DELETE", &format!("/api/v1/report-schedules/{id}"), None).await.status, 403);
    assert_eq!(tech.send("DELETE", &format!("/api/v1/report-schedules/{id}"), None).await.status, 204);
    assert!(tech.get("/api/v1/report-schedules").await.body.as_array().unwrap().is_empty());
}
