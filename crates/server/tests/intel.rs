//! Inventories, findings and the fleet's vulnerabilities over the REST API, on SQLite and
//! PostgreSQL: correlation on upload, resolution on update, incremental correlation after
//! a feed import with alerts, tenant isolation and bad input.

mod common;

use common::TestApp;
use serde_json::{Value, json};

both_backends!(
    an_inventory_is_correlated_on_upload_and_resolved_on_update,
    a_feed_import_correlates_only_touched_devices_and_raises_alerts,
    findings_and_inventories_stay_within_their_tenant,
    bad_inventories_are_refused_and_nothing_is_stored,
    a_rejected_record_withdraws_its_findings_and_alerts_reach_the_webhook,
);

fn windows(apps: &[(&str, &str)]) -> Value {
    json!({
        "os": {"family": "windows", "id": "windows", "version": "10.0.22631.4602", "name": "Windows 11 Pro 23H2"},
        "items": apps.iter().map(|(n, v)| json!({"kind": "application", "name": n, "version": v, "manager": "msi"})).collect::<Vec<_>>(),
    })
}

async fn load_demo_intel(app: &TestApp) {
    let summary = ringfence_engine::intel::import_demo(app.store.as_ref(), ringfence_model::Timestamp::now())
        .await
        .unwrap();
    app.engine.correlate_after_import(&[summary]).await.unwrap();
}

fn cves(findings: &Value) -> Vec<String> {
    let mut v: Vec<String> = findings["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cve_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn an_inventory_is_correlated_on_upload_and_resolved_on_update(app: TestApp) {
    load_demo_intel(&app).await;
    let tech = app.token("tech@a").await;
    let device = app.a1.device.id.to_string();
    let path = format!("/api/v1/devices/{device}/inventory");
    let r = tech
        .send(
            "PUT",
            &path,
            Some(windows(&[("7-Zip 23.01 (x64)", "23.01"), ("Google Chrome", "131.0.6778.86")])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["change"]["installed"], 2);
    let mut new: Vec<&str> =
        r.body["findings"]["new"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    new.sort();
    assert_eq!(new, ["CVE-2024-11477", "CVE-2025-0411"], "7-Zip 23.01 only; Chrome 131 is patched");

    let findings = tech.get(&format!("/api/v1/devices/{device}/findings")).await;
    assert_eq!(cves(&findings.body), ["CVE-2024-11477", "CVE-2025-0411"]);
    let f = &findings.body["items"][0];
    assert_eq!(f["product"], "7-zip:7-zip");
    assert_eq!(f["installed_version"], "23.01");
    assert!(f["rule"].as_str().unwrap().contains("table rule '7-zip'"), "{f}");

    let vulns = tech.get("/api/v1/vulnerabilities").await.body;
    assert_eq!(vulns["total"], 2);
    // CVE-2025-0411 is in KEV, so it comes first.
    assert_eq!(vulns["items"][0]["facts"]["id"], "CVE-2025-0411");
    assert!(vulns["items"][0]["facts"]["kev"]["due_date"].is_string());
    assert_eq!(vulns["items"][0]["devices"], 1);
    let kev_only = tech.get("/api/v1/vulnerabilities?kev=true").await.body;
    assert_eq!(kev_only["total"], 1);
    let search = tech.get("/api/v1/vulnerabilities?search=11477").await.body;
    assert_eq!(search["total"], 1);
    let detail = tech.get("/api/v1/vulnerabilities/cve-2024-11477").await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.body["facts"]["cvss_score"], 7.8);
    assert_eq!(detail.body["findings"][0]["hostname"], app.a1.device.hostname.as_str());

    // The technician updates 7-Zip: both findings resolve as "updated", history shows it.
    let r = tech
        .send(
            "PUT",
            &path,
            Some(windows(&[("7-Zip 24.09 (x64)", "24.09"), ("Google Chrome", "131.0.6778.86")])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["change"]["updated"], 0, "a new display name is a different program");
    assert_eq!(r.body["findings"]["resolved"], 2);
    let all = tech.get(&format!("/api/v1/devices/{device}/findings?include_resolved=true")).await.body;
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["resolution"] == "removed" || f["resolution"] == "updated")
    );
    assert_eq!(tech.get("/api/v1/vulnerabilities").await.body["total"], 0);

    // A version change of the same program is an update in the history.
    let r = tech
        .send(
            "PUT",
            &path,
            Some(windows(&[("7-Zip 24.09 (x64)", "24.09"), ("Google Chrome", "126.0.6478.127")])),
        )
        .await;
    assert_eq!(r.body["change"]["updated"], 1);
    let history = tech.get(&format!("/api/v1/devices/{device}/software-history")).await.body;
    let update =
        history.as_array().unwrap().iter().find(|e| e["change"] == "updated").expect("an update event");
    assert_eq!(update["name"], "Google Chrome");
    assert_eq!(update["from_version"], "131.0.6778.86");
    assert_eq!(update["to_version"], "126.0.6478.127");
    let software = tech.get("/api/v1/software?search=chrome").await.body;
    assert_eq!(software[0]["version"], "126.0.6478.127");
    assert_eq!(software[0]["devices"], 1);
}

async fn a_feed_import_correlates_only_touched_devices_and_raises_alerts(app: TestApp) {
    let tech = app.token("tech@a").await;
    // Inventories arrive before any vulnerability data.
    let r = tech
        .send(
            "PUT",
            &format!("/api/v1/devices/{}/inventory", app.a1.device.id),
            Some(windows(&[("WinRAR 6.22 (64-bit)", "6.22.0")])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["findings"]["new"].as_array().unwrap().is_empty());
    let r = tech
        .send(
            "PUT",
            &format!("/api/v1/devices/{}/inventory", app.a2.device.id),
            Some(windows(&[("Notepad++ (64-bit x64)", "8.6.9")])),
        )
        .await;
    assert_eq!(r.status, 200);
    load_demo_intel(&app).await;
    let vulns = tech.get("/api/v1/vulnerabilities").await.body;
    let ids: Vec<&str> =
        vulns["items"].as_array().unwrap().iter().map(|v| v["facts"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"CVE-2023-38831") && ids.contains(&"CVE-2025-8088"), "{ids:?}");
    assert!(!ids.contains(&"CVE-2023-40031"), "Notepad++ 8.6.9 is patched");
    let alerts = tech.get("/api/v1/alerts").await.body;
    let alerted: Vec<&str> =
        alerts.as_array().unwrap().iter().map(|a| a["cve_id"].as_str().unwrap()).collect();
    assert!(alerted.contains(&"CVE-2023-38831"), "{alerts}");
    assert!(alerts.as_array().unwrap().iter().all(|a| a["devices"] == 1));
    // Partner B has no devices with inventories: no alerts.
    assert!(app.token("admin@b").await.get("/api/v1/alerts").await.body.as_array().unwrap().is_empty());
    let r = tech.send("POST", "/api/v1/alerts", None).await;
    assert_eq!(r.body["marked"].as_u64().unwrap(), alerted.len() as u64);
}

async fn findings_and_inventories_stay_within_their_tenant(app: TestApp) {
    load_demo_intel(&app).await;
    let tech = app.token("tech@a").await;
    for d in [&app.a1.device, &app.a2.device] {
        let r = tech
            .send(
                "PUT",
                &format!("/api/v1/devices/{}/inventory", d.id),
                Some(windows(&[("7-Zip 23.01 (x64)", "23.01")])),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let b = app.token("admin@b").await;
    for path in ["inventory", "findings", "software-history"] {
        assert_eq!(
            b.get(&format!("/api/v1/devices/{}/{path}", app.a1.device.id)).await.status,
            404,
            "{path}"
        );
    }
    let r =
        b.send("PUT", &format!("/api/v1/devices/{}/inventory", app.a1.device.id), Some(windows(&[]))).await;
    assert_eq!(r.status, 404);
    assert_eq!(b.get("/api/v1/vulnerabilities").await.body["total"], 0);
    assert!(b.get("/api/v1/software").await.body.as_array().unwrap().is_empty());
    let detail = b.get("/api/v1/vulnerabilities/CVE-2024-11477").await.body;
    assert!(detail["findings"].as_array().unwrap().is_empty(), "public CVE facts, none of A's findings");
    // An organization-scoped viewer sees their organization's device only.
    let viewer = app.token("viewer@a1").await;
    let v = viewer.get("/api/v1/vulnerabilities").await.body;
    assert_eq!(v["items"][0]["devices"], 1);
    assert_eq!(viewer.get(&format!("/api/v1/devices/{}/findings", app.a2.device.id)).await.status, 404);
    assert_eq!(viewer.get(&format!("/api/v1/devices/{}/findings", app.a1.device.id)).await.status, 200);
    assert_eq!(
        viewer
            .send("PUT", &format!("/api/v1/devices/{}/inventory", app.a1.device.id), Some(windows(&[])))
            .await
            .status,
        403
    );
    let all = tech.get("/api/v1/vulnerabilities").await.body;
    assert_eq!(all["items"][0]["devices"], 2);
    assert_eq!(all["items"][0]["organizations"], 2);
}

async fn bad_inventories_are_refused_and_nothing_is_stored(app: TestApp) {
    let tech = app.token("tech@a").await;
    let path = format!("/api/v1/devices/{}/inventory", app.a1.device.id);
    assert_eq!(tech.send("PUT", &path, Some(windows(&[("Foo", "1")]))).await.status, 200);
    let before = tech.get(&path).await.body;
    let cases = [
        ("{\"os\": {\"family\": \"windows\"}, \"items\": [", 400, ""),
        ("{\"os\": {\"family\": \"windows\"}, \"items\": [], \"extra\": 1}", 422, "extra"),
        (
            "{\"os\": {\"family\": \"windows\"}, \"items\": [{\"kind\": \"gadget\", \"name\": \"x\", \"version\": \"1\"}]}",
            422,
            "items[0].kind",
        ),
        (
            "{\"os\": {\"family\": \"windows\"}, \"items\": [{\"kind\": \"application\", \"name\": \"\", \"version\": \"1\"}]}",
            422,
            "items.name",
        ),
        ("{\"os\": {\"family\": \"plan9\"}, \"items\": []}", 422, "os.family"),
    ];
    for (body, status, field) in cases {
        let r = tech.raw("PUT", &path, "application/json", body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(
            r.body["message"].as_str().unwrap_or("").contains(field)
                || r.body["field"].as_str().unwrap_or("").contains(field),
            "{body}: {}",
            r.body
        );
    }
    let too_many: Vec<(String, String)> = (0..20_001).map(|i| (format!("p{i}"), "1".to_string())).collect();
    let refs: Vec<(&str, &str)> = too_many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = tech.send("PUT", &path, Some(windows(&refs))).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("20000"), "{}", r.body);
    let huge = "x".repeat(17 * 1024 * 1024);
    let r = tech.raw("PUT", &path, "application/json", &huge).await;
    assert_eq!(r.status, 413);
    let auditor = app.token("auditor@a").await;
    assert_eq!(auditor.send("PUT", &path, Some(windows(&[]))).await.status, 403);
    assert_eq!(
        tech.send("PUT", "/api/v1/devices/not-a-device/inventory", Some(windows(&[]))).await.status,
        404
    );
    assert_eq!(tech.get(&path).await.body, before, "nothing was stored by the refused requests");
    assert_eq!(tech.get("/api/v1/vulnerabilities/not-a-cve").await.status, 422);
}

/// A one-route HTTP server that records the bodies POSTed to it.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let got2 = got.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let got = got2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers and the body announced by content-length.
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            got.lock().unwrap().push(body.to_string());
                            break;
                        }
                    }
                }
                let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
            });
        }
    });
    (url, got)
}

async fn a_rejected_record_withdraws_its_findings_and_alerts_reach_the_webhook(app: TestApp) {
    let (url, received) = webhook_receiver().await;
    let engine = app.engine.clone().with_alert_webhook(Some(url));
    let tech = app.token("tech@a").await;
    let device = app.a1.device.id.to_string();
    let r = tech
        .send(
            "PUT",
            &format!("/api/v1/devices/{device}/inventory"),
            Some(windows(&[("7-Zip 23.01 (x64)", "23.01")])),
        )
        .await;
    assert_eq!(r.status, 200);
    let summary = ringfence_engine::intel::import_demo(app.store.as_ref(), ringfence_model::Timestamp::now())
        .await
        .unwrap();
    let report = engine.correlate_after_import(&[summary]).await.unwrap();
    assert_eq!(report.new_findings, 2);
    assert_eq!(report.alerts, 2);
    let mut bodies = Vec::new();
    for _ in 0..100 {
        bodies = received.lock().unwrap().clone();
        if bodies.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let kev: Value = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .find(|b| b["kind"] == "kev_added")
        .unwrap();
    assert_eq!(kev["cve_id"], "CVE-2025-0411");
    assert_eq!(kev["partner_id"], app.a1.partner.id.as_str());
    assert_eq!(kev["devices"], 1);

    // NVD rejects CVE-2024-11477: its finding is resolved as withdrawn, not left open.
    let rejected = r#"{"id": "CVE-2024-11477", "vulnStatus": "Rejected", "published": "2024-11-22T21:15:10.717",
        "lastModified": "2026-11-01T00:00:00.000", "descriptions": [{"lang": "en", "value": "Rejected reason: test."}]}"#;
    let summary = ringfence_engine::intel::import_reader(
        app.store.as_ref(),
        Box::new(std::io::Cursor::new(rejected.as_bytes().to_vec())),
        "test",
        ringfence_model::Timestamp::now(),
    )
    .await
    .unwrap();
    assert_eq!(summary.withdrawn, ["CVE-2024-11477"]);
    let report = engine.correlate_after_import(&[summary]).await.unwrap();
    assert_eq!(report.resolved, 1);
    let all = tech.get(&format!("/api/v1/devices/{device}/findings?include_resolved=true")).await.body;
    let withdrawn =
        all["items"].as_array().unwrap().iter().find(|f| f["cve_id"] == "CVE-2024-11477").unwrap();
    assert_eq!(withdrawn["resolution"], "advisory withdrawn");
    assert_eq!(cves(&tech.get(&format!("/api/v1/devices/{device}/findings")).await.body), ["CVE-2025-0411"]);
}
