//! Input both databases can store, on both backends alike: a NUL character in a check-in, a
//! query parameter, a form field or an inventory is refused at the edge with 422 naming the
//! field (PostgreSQL cannot store it; SQLite would have stored it as is), and an inventory
//! above the 2 MiB that request extractors allow by default, up to the documented 16 MiB, is
//! taken, gzip-compressed or not (the limit counts the bytes unpacked). A report number far
//! ahead of the last cannot freeze a device's inventory, and an agent whose report is refused
//! says so at check-in (the device page shows it) instead of sending it again for ever.

mod common;

use common::TestApp;
use serde_json::{Value, json};

both_backends!(
    nul_characters_are_refused_with_the_field_named,
    an_inventory_of_15000_packages_is_taken,
    a_report_number_far_ahead_is_refused_and_the_inventory_goes_on,
    a_compressed_inventory_is_taken_and_a_compression_bomb_is_not,
    an_agent_whose_report_is_refused_says_so_and_does_not_resend_it,
);

async fn post(app: &TestApp, credential: &str, path: &str, body: &Value) -> (u16, Value) {
    let r =
        reqwest::Client::new().post(app.url(path)).bearer_auth(credential).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn nul_characters_are_refused_with_the_field_named(app: TestApp) {
    let credential = app.enroll_agent("till-nul").await;
    let (status, body) =
        post(&app, &credential, "/api/agent/v1/checkin", &json!({"agent_version": "1.0\u{0}"})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("agent_version")), "{body}");
    let (status, body) = post(
        &app,
        &credential,
        "/api/agent/v1/checkin",
        &json!({"agent_version": "1.0", "boot_id": "b\u{0}"}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("boot_id")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
    // The same check-in without the NUL is taken.
    let (status, body) =
        post(&app, &credential, "/api/agent/v1/checkin", &json!({"agent_version": "1.0"})).await;
    assert_eq!(status, 200, "{body}");

    // An inventory item's name, on the inventory route with its larger limit.
    let report = json!({"seq": 1, "full": {"os": {"family": "linux", "id": "debian", "version": "12"},
        "items": [{"kind": "package", "name": "ok", "version": "1"}, {"kind": "package", "name": "x\u{0}", "version": "1"}]}});
    let (status, body) = post(&app, &credential, "/api/agent/v1/inventory", &report).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("full.items[1].name")), "{body}");

    // A query parameter and a dashboard form.
    let tech = app.token("tech@a").await;
    let r = tech.get("/api/v1/devices?search=ab%00c").await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("search")), "{}", r.body);
    let r = tech.get("/api/v1/devices?search=abc").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = app.session("tech@a").await;
    let r = session
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=tech%40a&password=x%00y")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("password"));
    // Nothing was stored: the device's agent version is the clean one.
    let devices = tech.get("/api/v1/devices?search=till-nul").await.body;
    let id = devices["items"][0]["id"].as_str().or_else(|| devices[0]["id"].as_str()).unwrap().to_string();
    let agent = tech.get(&format!("/api/v1/devices/{id}/agent")).await.body;
    assert_eq!(agent["agent_version"], "1.0", "{agent}");
}

async fn an_inventory_of_15000_packages_is_taken(app: TestApp) {
    let credential = app.enroll_agent("till-big").await;
    let items: Vec<Value> = (0..15_000)
        .map(|i| {
            json!({"kind": "package", "manager": "dpkg", "name": format!("package-number-{i:05}"),
                   "version": format!("1.{i}.0-1+deb12u1"), "arch": "amd64",
                   "source_name": format!("source-package-{i:05}")})
        })
        .collect();
    let report = json!({"seq": 1, "full": {"os": {"family": "linux", "id": "debian", "version": "12"}, "items": items}});
    let size = report.to_string().len();
    assert!(size > 2 * 1024 * 1024, "the report is {size} bytes: above the extractors' default 2 MiB");
    let (status, body) = post(&app, &credential, "/api/agent/v1/inventory", &report).await;
    assert_eq!(status, 200, "{}", body.to_string().chars().take(300).collect::<String>());
}

async fn a_report_number_far_ahead_is_refused_and_the_inventory_goes_on(app: TestApp) {
    let credential = app.enroll_agent("till-seq").await;
    let report = |seq: i64, version: &str| {
        json!({"seq": seq, "full": {"os": {"family": "linux", "id": "debian", "version": "12"},
            "items": [{"kind": "package", "name": "jq", "version": version}]}})
    };
    let (status, body) = post(&app, &credential, "/api/agent/v1/inventory", &report(1, "1.6-2.1")).await;
    assert_eq!((status, body["applied"].as_bool()), (200, Some(true)), "{body}");
    for seq in [1i64 << 62, i64::MAX, 10_002] {
        let (status, body) = post(&app, &credential, "/api/agent/v1/inventory", &report(seq, "9.9")).await;
        assert_eq!((status, body["field"].as_str()), (422, Some("seq")), "{seq}: {body}");
        assert!(body["message"].as_str().unwrap().contains("send the next number"), "{body}");
    }
    // The next real report still applies.
    let (status, body) =
        post(&app, &credential, "/api/agent/v1/inventory", &report(2, "1.6-2.1+deb12u2")).await;
    assert_eq!(
        (status, body["applied"].as_bool(), body["seq"].as_i64()),
        (200, Some(true), Some(2)),
        "{body}"
    );
    // Within the bound, a gap is fine (a report the server never saw).
    let (status, body) = post(&app, &credential, "/api/agent/v1/inventory", &report(10_002, "1.7")).await;
    assert_eq!((status, body["applied"].as_bool()), (200, Some(true)), "{body}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

async fn post_gzip(app: &TestApp, credential: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(app.url("/api/agent/v1/inventory"))
        .bearer_auth(credential)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn a_compressed_inventory_is_taken_and_a_compression_bomb_is_not(app: TestApp) {
    let credential = app.enroll_agent("till-gzip").await;
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"kind": "package", "manager": "dpkg", "name": format!("package-{i:05}"), "version": "1.0-1"}))
        .collect();
    let report = json!({"seq": 1, "full": {"os": {"family": "linux", "id": "debian", "version": "12"}, "items": items}});
    let (status, body) = post_gzip(&app, &credential, gzip(report.to_string().as_bytes())).await;
    assert_eq!(status, 200, "{body}");
    let ack: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ack["applied"], true, "{ack}");
    let tech = app.token("tech@a").await;
    let devices = tech.get("/api/v1/devices?search=till-gzip").await.body;
    let id = devices["items"][0]["id"].as_str().unwrap().to_string();
    let inventory = tech.get(&format!("/api/v1/devices/{id}/inventory")).await.body;
    assert_eq!(inventory["items"].as_array().map(Vec::len), Some(5_000), "every item went in");

    // 40 MiB of spaces inside a report, under 200 KiB compressed: cut off at 16 MiB unpacked.
    let mut bomb = br#"{"seq": 2, "full": {"os": {"family": "linux"}, "items": []"#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 40 << 20));
    bomb.extend_from_slice(b"}}");
    let packed = gzip(&bomb);
    assert!(packed.len() < 200 * 1024, "{} bytes compressed", packed.len());
    let (status, body) = post_gzip(&app, &credential, packed).await;
    assert_eq!(status, 413, "{body}");
    // A compression the server does not know is refused, not misread.
    let r = reqwest::Client::new()
        .post(app.url("/api/agent/v1/inventory"))
        .bearer_auth(&credential)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
}

async fn an_agent_whose_report_is_refused_says_so_and_does_not_resend_it(app: TestApp) {
    use ringfence_agent::checkin::{Round, round};
    let credential = app.enroll_agent("till-refused").await;
    let config = ringfence_agent::enroll::AgentConfig {
        server: app.base.clone(),
        device_id: String::new(),
        credential,
        server_public_key: String::new(),
    };
    let dir = std::sync::Arc::new(ringfence_store::testing::TempDir::new("ringfence-agent-state"));
    let report = |n: usize, prefix: &str| ringfence_agent::Report {
        inventory: serde_json::from_value(json!({
            "os": {"family": "linux", "id": "debian", "version": "12"},
            "items": (0..n).map(|i| json!({"kind": "package", "manager": "dpkg",
                "name": format!("{prefix}-{i:05}"), "version": "1.0-1"})).collect::<Vec<_>>(),
        }))
        .unwrap(),
        ..Default::default()
    };
    let run = |r: ringfence_agent::Report| {
        let (dir, config) = (dir.clone(), config.clone());
        tokio::task::spawn_blocking(move || round(&dir.0, &config, &r, None))
    };
    let tech = app.token("tech@a").await;
    let devices = tech.get("/api/v1/devices?search=till-refused").await.body;
    let id = devices["items"][0]["id"].as_str().unwrap().to_string();
    let refused =
        || async { tech.get(&format!("/api/v1/devices/{id}/agent")).await.body["inventory_refused"].clone() };

    // More packages than one inventory may hold (sent compressed): refused as it stands.
    let err = run(report(20_001, "big")).await.unwrap().unwrap_err();
    assert!(err.contains("refused") && err.contains("20000"), "{err}");
    assert!(err.contains("not sent again"), "{err}");
    // The next round checks in with the reason and does not send the same report.
    let again = run(report(20_001, "big")).await.unwrap().unwrap();
    assert_eq!(again, Round::default(), "nothing sent");
    let reason = refused().await;
    assert!(reason.as_str().is_some_and(|r| r.contains("20000")), "{reason}");
    let page =
        app.session("tech@a").await.client.get(app.url(&format!("/devices/{id}"))).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"inventory-refused\""), "the device page says why");

    // The software changes: the new report goes in, and the refusal is gone after the next
    // check-in.
    let sent = run(report(300, "small")).await.unwrap().unwrap();
    assert_eq!((sent.sent, sent.applied), (Some(1), true));
    run(report(300, "small")).await.unwrap().unwrap();
    assert_eq!(refused().await, Value::Null);
}
