//! Input both databases can store, on both backends alike: a NUL character in a check-in, a
//! query parameter, a form field or an inventory is refused at the edge with 422 naming the
//! field (PostgreSQL cannot store it; SQLite would have stored it as is), and an inventory
//! above the 2 MiB that request extractors allow by default, up to the documented 16 MiB, is
//! taken. A report number far ahead of the last cannot freeze a device's inventory.

mod common;

use common::TestApp;
use serde_json::{Value, json};

both_backends!(
    nul_characters_are_refused_with_the_field_named,
    an_inventory_of_15000_packages_is_taken,
    a_report_number_far_ahead_is_refused_and_the_inventory_goes_on,
);

async fn agent(app: &TestApp, host: &str) -> String {
    let op = app.engine.operator("test", app.a1.partner.name.as_str()).await.unwrap();
    let token = app
        .engine
        .create_enrollment_token(
            &op,
            &ringfence_proto::CreateEnrollmentToken {
                site_id: app.a1.site.id.to_string(),
                name: "hygiene".into(),
                expires_in_hours: None,
                max_uses: None,
            },
        )
        .await
        .unwrap();
    app.engine
        .enroll(&ringfence_proto::EnrollRequest {
            token: token.secret.clone(),
            hostname: host.into(),
            machine_id: format!("{:032x}", host.len() as u64 + 0xabc),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            agent_version: "test".into(),
        })
        .await
        .unwrap()
        .credential
}

async fn post(app: &TestApp, credential: &str, path: &str, body: &Value) -> (u16, Value) {
    let r =
        reqwest::Client::new().post(app.url(path)).bearer_auth(credential).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn nul_characters_are_refused_with_the_field_named(app: TestApp) {
    let credential = agent(&app, "till-nul").await;
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
    let credential = agent(&app, "till-big").await;
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
    let credential = agent(&app, "till-seq").await;
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
