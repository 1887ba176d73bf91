//! The REST API over real HTTP, on SQLite and on PostgreSQL: tenant isolation for every
//! kind of route, roles, tokens, CSRF, sign-in throttling, bad input, and the service routes.

mod common;

use common::TestApp;
use serde_json::json;

both_backends!(
    other_partners_objects_are_not_found_on_any_route,
    an_organization_scoped_user_sees_only_their_organization,
    roles_limit_what_a_caller_may_do,
    revoked_tokens_stop_working,
    session_writes_need_the_csrf_token,
    failed_sign_ins_are_throttled,
    behind_a_trusted_proxy_sign_ins_are_throttled_per_client_and_metrics_need_the_token,
    bad_input_is_refused_with_the_field_named_and_nothing_written,
    crud_round_trip_is_recorded_in_the_evidence_chain,
    service_routes_answer,
    accounts_and_tokens_stay_within_their_bounds,
);

async fn other_partners_objects_are_not_found_on_any_route(app: TestApp) {
    let a = app.token("admin@a").await;
    let b = &app.b1;
    let heads = app.heads().await;
    let routes = [
        format!("/api/v1/organizations/{}", b.org.id),
        format!("/api/v1/sites/{}", b.site.id),
        format!("/api/v1/device-groups/{}", b.group.id),
        format!("/api/v1/devices/{}", b.device.id),
    ];
    for r in &routes {
        assert_eq!(a.get(r).await.status, 404, "GET {r}");
        assert_eq!(a.send("PATCH", r, Some(json!({}))).await.status, 404, "PATCH {r}");
        assert_eq!(a.send("DELETE", r, None).await.status, 404, "DELETE {r}");
    }
    // B's users and tokens are as invisible as its objects.
    let b_admin = app.token("admin@b").await;
    let b_users = b_admin.get("/api/v1/users").await.body;
    let b_user_id = b_users[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(a.get(&format!("/api/v1/users/{b_user_id}")).await.status, 404);
    assert_eq!(a.send("DELETE", &format!("/api/v1/users/{b_user_id}"), None).await.status, 404);
    let b_token_id = b_admin.get("/api/v1/tokens").await.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(a.send("DELETE", &format!("/api/v1/tokens/{b_token_id}"), None).await.status, 404);
    // Lists hold only A's objects.
    for list in
        ["/api/v1/organizations", "/api/v1/sites", "/api/v1/device-groups", "/api/v1/users", "/api/v1/tokens"]
    {
        let body = a.get(list).await.body;
        let items = body.as_array().unwrap();
        assert!(!items.is_empty(), "{list}");
        assert!(items.iter().all(|i| i["partner_id"] == app.a1.partner.id.as_str()), "{list}: {body}");
    }
    let devices = a.get("/api/v1/devices").await.body;
    assert_eq!(devices["total"], 2);
    let events = a.get("/api/v1/evidence/events?limit=1000").await.body;
    assert!(events.as_array().unwrap().iter().all(|e| e["object_id"] != b.org.id.as_str()));
    // B's objects cannot be referenced from A's requests either.
    let r = a
        .send(
            "POST",
            "/api/v1/sites",
            Some(json!({ "organization_id": b.org.id, "name": "x", "time_zone": "UTC" })),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("organization_id")), "{}", r.body);
    let r = a
        .send(
            "POST",
            "/api/v1/devices",
            Some(json!({ "site_id": b.site.id, "hostname": "x", "role": "server" })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = a
        .send(
            "PATCH",
            &format!("/api/v1/devices/{}", app.a1.device.id),
            Some(json!({ "group_ids": [b.group.id] })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // B's data is untouched (only the token creations above were written).
    let b_heads: Vec<_> = app.heads().await.into_iter().filter(|h| h.0 == b.partner.id.as_str()).collect();
    let before: Vec<_> = heads.into_iter().filter(|h| h.0 == b.partner.id.as_str()).collect();
    assert_eq!(b_heads[0].1, before[0].1 + 2, "B's chain grew only by B's own sign-in and token");
    assert_eq!(b_admin.get(&format!("/api/v1/devices/{}", b.device.id)).await.status, 200);
}

async fn an_organization_scoped_user_sees_only_their_organization(app: TestApp) {
    let viewer = app.token("viewer@a1").await;
    let tech = app.token("tech@a1").await;
    for who in [&viewer, &tech] {
        let orgs = who.get("/api/v1/organizations").await.body;
        assert_eq!(orgs.as_array().unwrap().len(), 1);
        assert_eq!(orgs[0]["id"], app.a1.org.id.as_str());
        for r in [
            format!("/api/v1/organizations/{}", app.a2.org.id),
            format!("/api/v1/sites/{}", app.a2.site.id),
            format!("/api/v1/device-groups/{}", app.a2.group.id),
            format!("/api/v1/devices/{}", app.a2.device.id),
        ] {
            assert_eq!(who.get(&r).await.status, 404, "{r}");
        }
        let devices = who.get("/api/v1/devices?limit=500").await.body;
        assert_eq!(devices["total"], 1);
        assert_eq!(
            who.get(&format!("/api/v1/sites?organization_id={}", app.a2.org.id)).await.body,
            json!([])
        );
    }
    // The organization-scoped technician may change their organization, not the other.
    let r = tech
        .send("PATCH", &format!("/api/v1/devices/{}", app.a2.device.id), Some(json!({ "os": "x" })))
        .await;
    assert_eq!(r.status, 404);
    let r = tech
        .send("PATCH", &format!("/api/v1/devices/{}", app.a1.device.id), Some(json!({ "os": "Debian 13" })))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = tech.send("DELETE", &format!("/api/v1/organizations/{}", app.a2.org.id), None).await;
    assert_eq!(r.status, 404);
    let r = tech.send("POST", "/api/v1/organizations", Some(json!({ "name": "New" }))).await;
    assert_eq!(r.status, 403);
}

async fn roles_limit_what_a_caller_may_do(app: TestApp) {
    let viewer = app.token("viewer@a1").await;
    let auditor = app.token("auditor@a").await;
    let tech = app.token("tech@a").await;
    let org = format!("/api/v1/organizations/{}", app.a1.org.id);
    let device = format!("/api/v1/devices/{}", app.a1.device.id);
    let heads = app.heads().await;
    for (who, name) in [(&viewer, "client viewer"), (&auditor, "auditor")] {
        assert_eq!(who.get(&org).await.status, 200, "{name} reads");
        let writes = [
            who.send("POST", "/api/v1/organizations", Some(json!({ "name": "Z" }))).await,
            who.send("PATCH", &org, Some(json!({ "notes": "x" }))).await,
            who.send("DELETE", &device, None).await,
            who.send("POST", "/api/v1/sites", Some(json!({ "organization_id": app.a1.org.id, "name": "S", "time_zone": "UTC" }))).await,
            who.send("PATCH", "/api/v1/partner", Some(json!({ "name": "Mine" }))).await,
            who.send("POST", "/api/v1/users", Some(json!({ "username": "x@y", "role": "client_viewer", "organization_id": app.a1.org.id, "password": "long enough password" }))).await,
        ];
        for w in writes {
            assert_eq!(w.status, 403, "{name}: {}", w.body);
            assert_eq!(w.body["error"], "forbidden");
        }
    }
    assert_eq!(app.heads().await, heads, "refused writes leave no trace");
    // Evidence: auditors read it, client viewers do not.
    assert_eq!(auditor.get("/api/v1/evidence/events").await.status, 200);
    assert_eq!(auditor.get("/api/v1/evidence/verify").await.body["ok"], true);
    assert_eq!(viewer.get("/api/v1/evidence/events").await.status, 403);
    // Technicians change the tenancy tree but not users, and grant nothing above themselves.
    assert_eq!(tech.send("PATCH", &org, Some(json!({ "notes": "patched by tech" }))).await.status, 200);
    assert_eq!(tech.get("/api/v1/users").await.status, 403);
    let s = app.session("tech@a").await;
    let r =
        s.send("POST", "/api/v1/tokens", Some(json!({ "name": "escalate", "role": "partner_admin" }))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A token cannot mint tokens.
    assert_eq!(tech.send("POST", "/api/v1/tokens", Some(json!({ "name": "t2" }))).await.status, 403);
}

async fn revoked_tokens_stop_working(app: TestApp) {
    let s = app.session("admin@a").await;
    let created =
        s.send("POST", "/api/v1/tokens", Some(json!({ "name": "ci", "expires_in_days": 30 }))).await;
    assert_eq!(created.status, 201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["token"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rft_"));
    let listed = s.send("GET", "/api/v1/tokens", None).await.body.to_string();
    assert!(!listed.contains(&secret), "the secret is shown only once");
    let api = common::Api { client: reqwest::Client::new(), token: secret.clone(), base: app.base.clone() };
    assert_eq!(api.get("/api/v1/me").await.status, 200);
    let r = s.send("DELETE", &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["revoked_at"].is_string());
    let after = api.get("/api/v1/organizations").await;
    assert_eq!(after.status, 401);
    assert!(after.body["message"].as_str().unwrap().contains("revoked"));
    let garbage =
        common::Api { client: reqwest::Client::new(), token: "rft_nope".into(), base: app.base.clone() };
    assert_eq!(garbage.get("/api/v1/me").await.status, 401);
    let anonymous = reqwest::get(app.url("/api/v1/organizations")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn session_writes_need_the_csrf_token(app: TestApp) {
    let s = app.session("admin@a").await;
    let heads = app.heads().await;
    let body = json!({ "name": "Via session" });
    let r = s.send_without_csrf("POST", "/api/v1/organizations", Some(body.clone())).await;
    assert_eq!((r.status, r.body["error"].as_str()), (403, Some("csrf")));
    assert_eq!(app.heads().await, heads);
    // Reads need no token; writes with it succeed.
    assert_eq!(s.send_without_csrf("GET", "/api/v1/organizations", None).await.status, 200);
    assert_eq!(s.send("POST", "/api/v1/organizations", Some(body)).await.status, 201);
    // Dashboard forms carry the token in a field.
    let form = s.client.post(app.url("/orgs")).form(&[("name", "Form org")]).send().await.unwrap();
    assert_eq!(form.status(), 403);
    let form = s
        .client
        .post(app.url("/orgs"))
        .form(&[("name", "Form org"), ("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    let form = s
        .client
        .post(app.url("/orgs"))
        .form(&[("name", "Form org"), ("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 303);
    let orgs = s.send("GET", "/api/v1/organizations", None).await.body.to_string();
    assert!(orgs.contains("Form org"));
    // Signing out ends the session for good.
    assert_eq!(s.send("DELETE", "/api/v1/session", None).await.status, 204);
    assert_eq!(s.send("GET", "/api/v1/me", None).await.status, 401);
}

async fn failed_sign_ins_are_throttled(app: TestApp) {
    let client = reqwest::Client::new();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let url = app.url("/api/v1/session");
        async move {
            client
                .post(url)
                .json(&json!({ "username": "tech@a", "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..ringfence_engine::auth::MAX_FAILURES_PER_ACCOUNT {
        assert_eq!(attempt("wrong password!").await.status(), 401);
    }
    let throttled = attempt(common::PASSWORD).await;
    assert_eq!(throttled.status(), 429, "even the right password is refused while throttled");
    assert!(throttled.headers().get("retry-after").is_some());
    // Other accounts from the same client are not locked out by one account's failures.
    let other = client
        .post(app.url("/api/v1/session"))
        .json(&json!({ "username": "admin@a", "password": common::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // An unknown user is refused exactly like a wrong password.
    let unknown = client
        .post(app.url("/api/v1/session"))
        .json(&json!({ "username": "nobody@a", "password": "whatever it is" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        unknown.json::<serde_json::Value>().await.unwrap()["message"],
        "the username or password is wrong"
    );
}

async fn bad_input_is_refused_with_the_field_named_and_nothing_written(app: TestApp) {
    let a = app.token("admin@a").await;
    let heads = app.heads().await;
    let org_id = app.a1.org.id.to_string();
    let device_path = format!("/api/v1/devices/{}", app.a1.device.id);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("POST", "/api/v1/organizations", r#"{"name": "x""#.into(), 400, ""),
        ("POST", "/api/v1/organizations", r#"{"name": "x", "nmae": "y"}"#.into(), 422, "nmae"),
        ("POST", "/api/v1/organizations", r#"{"name": 42}"#.into(), 422, "name"),
        ("POST", "/api/v1/organizations", r#"{"notes": "no name"}"#.into(), 422, "body"),
        ("POST", "/api/v1/organizations", format!(r#"{{"name": "{}"}}"#, "n".repeat(201)), 422, "name"),
        ("POST", "/api/v1/organizations", r#"{"name": "   "}"#.into(), 422, "name"),
        (
            "POST",
            "/api/v1/sites",
            format!(r#"{{"organization_id": "{org_id}", "name": "S", "time_zone": "Mars/Olympus"}}"#),
            422,
            "time_zone",
        ),
        (
            "POST",
            "/api/v1/sites",
            r#"{"organization_id": "../../etc", "name": "S", "time_zone": "UTC"}"#.into(),
            422,
            "organization_id",
        ),
        (
            "POST",
            "/api/v1/devices",
            format!(r#"{{"site_id": "{}", "hostname": "bad host", "role": "server"}}"#, app.a1.site.id),
            422,
            "hostname",
        ),
        (
            "POST",
            "/api/v1/devices",
            format!(r#"{{"site_id": "{}", "hostname": "ok", "role": "toaster"}}"#, app.a1.site.id),
            422,
            "role",
        ),
        (
            "POST",
            "/api/v1/devices",
            format!(
                r#"{{"site_id": "{}", "hostname": "ok", "role": "server", "internet_facing": "yes"}}"#,
                app.a1.site.id
            ),
            422,
            "internet_facing",
        ),
        ("PATCH", &device_path, r#"{"time_zone": "Nowhere/Land"}"#.into(), 422, "time_zone"),
        (
            "POST",
            "/api/v1/users",
            format!(
                r#"{{"username": "new@a", "role": "client_viewer", "organization_id": "{org_id}", "password": "short"}}"#
            ),
            422,
            "password",
        ),
        (
            "POST",
            "/api/v1/users",
            r#"{"username": "new@a", "role": "client_viewer", "password": "long enough password"}"#.into(),
            422,
            "organization_id",
        ),
        (
            "POST",
            "/api/v1/users",
            format!(
                r#"{{"username": "dana.nguyen@a", "role": "client_viewer", "organization_id": "{org_id}", "password": "Dana.Nguyen-2026!"}}"#
            ),
            422,
            "password",
        ),
        (
            "POST",
            "/api/v1/users",
            format!(
                r#"{{"username": "new@a", "role": "client_viewer", "organization_id": "{org_id}", "password": "aaaaaaaaaaaa"}}"#
            ),
            422,
            "password",
        ),
    ];
    for (m, path, body, status, field) in cases {
        let r = a.raw(m, path, "application/json", &body).await;
        assert_eq!(r.status, status, "{m} {path} {body}: {}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|s| !s.is_empty()), "{}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{m} {path} {body}: {}", r.body);
        }
    }
    let r = a.raw("POST", "/api/v1/organizations", "text/plain", r#"{"name":"x"}"#).await;
    assert_eq!(r.status, 415);
    let r = a.get("/api/v1/devices?limit=abc").await;
    assert_eq!((r.status, r.body["field"].as_str()), (400, Some("limit")));
    let r = a.get("/api/v1/devices?limit=100000").await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("limit")));
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    assert_eq!(a.raw("POST", "/api/v1/organizations", "application/json", &huge).await.status, 413);
    assert_eq!(a.get("/api/v1/no-such-route").await.status, 404);
    assert_eq!(app.heads().await, heads, "no refused request may write anything");
    assert_eq!(a.get("/api/v1/organizations").await.body.as_array().unwrap().len(), 2);
}

async fn crud_round_trip_is_recorded_in_the_evidence_chain(app: TestApp) {
    let s = app.session("tech@a").await;
    let org = s
        .send(
            "POST",
            "/api/v1/organizations",
            Some(json!({ "name": "Dental Group", "notes": "opens 08:00" })),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.body);
    let org_id = org.body["id"].as_str().unwrap().to_owned();
    let site = s
        .send(
            "POST",
            "/api/v1/sites",
            Some(json!({ "organization_id": org_id, "name": "Downtown", "time_zone": "America/Denver" })),
        )
        .await;
    assert_eq!(site.status, 201);
    let site_id = site.body["id"].as_str().unwrap().to_owned();
    let group = s
        .send("POST", "/api/v1/device-groups", Some(json!({ "organization_id": org_id, "name": "Chairs" })))
        .await;
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let device = s
        .send(
            "POST",
            "/api/v1/devices",
            Some(json!({ "site_id": site_id, "hostname": "chair-1", "role": "kiosk", "criticality": "high", "group_ids": [group_id] })),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.body);
    assert_eq!(device.body["effective_time_zone"], "America/Denver");
    assert_eq!(device.body["organization_id"], org_id.as_str());
    let device_id = device.body["id"].as_str().unwrap().to_owned();
    let patched = s
        .send(
            "PATCH",
            &format!("/api/v1/devices/{device_id}"),
            Some(json!({ "time_zone": "UTC", "holds_sensitive_data": true })),
        )
        .await;
    assert_eq!(
        (patched.body["effective_time_zone"].as_str(), patched.body["holds_sensitive_data"].as_bool()),
        (Some("UTC"), Some(true))
    );
    let reset =
        s.send("PATCH", &format!("/api/v1/devices/{device_id}"), Some(json!({ "time_zone": null }))).await;
    assert_eq!(reset.body["effective_time_zone"], "America/Denver");
    let dup = s
        .send(
            "POST",
            "/api/v1/sites",
            Some(json!({ "organization_id": org_id, "name": "Downtown", "time_zone": "UTC" })),
        )
        .await;
    assert_eq!(dup.status, 409);
    let search = s.send("GET", &format!("/api/v1/devices?search=CHAIR&organization_id={org_id}"), None).await;
    assert_eq!(search.body["total"], 1);
    let refused = s.send("DELETE", &format!("/api/v1/organizations/{org_id}"), None).await;
    assert_eq!(refused.status, 403, "offboarding a client is for partner admins: {}", refused.body);
    let admin = app.session("admin@a").await;
    let deleted = admin.send("DELETE", &format!("/api/v1/organizations/{org_id}"), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(admin.send("GET", &format!("/api/v1/devices/{device_id}"), None).await.status, 404);

    let events = admin.send("GET", "/api/v1/evidence/events?limit=1000", None).await.body;
    let mine: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "user:tech@a")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        mine,
        [
            "session.login",
            "organization.create",
            "site.create",
            "device_group.create",
            "device.create",
            "device.update",
            "device.update"
        ]
    );
    let del = events.as_array().unwrap().iter().rev().find(|e| e["action"] == "organization.delete").unwrap();
    assert_eq!(del["actor"], "user:admin@a");
    assert_eq!(del["payload"]["removed"]["devices"], 1);
    assert_eq!(del["payload"]["before"]["name"], "Dental Group");
    let verify = admin.send("GET", "/api/v1/evidence/verify", None).await.body;
    assert_eq!(verify["ok"], true, "{verify}");
}

async fn service_routes_answer(app: TestApp) {
    let get = |p: &str| reqwest::get(app.url(p));
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let doc: serde_json::Value = get("/api/openapi.json").await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/organizations",
        "/api/v1/organizations/{id}",
        "/api/v1/devices",
        "/api/v1/tokens/{id}",
        "/api/v1/evidence/verify",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"]["Device"]["properties"]["effective_time_zone"].is_object());
    let _ = get("/api/v1/organizations").await.unwrap();
    // The signing key, published for auditors without signing in.
    let keys: serde_json::Value =
        get("/.well-known/ringfence-evidence-keys").await.unwrap().json().await.unwrap();
    let public = app.engine.server_public_key().await.unwrap();
    assert_eq!(keys["keys"][0]["public_key"], public.as_str(), "{keys}");
    assert_eq!(keys["keys"][0]["key_id"], ringfence_engine::agents::key_fingerprint(&public).as_str());
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ringfence_http_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"route="/api/v1/organizations""#), "{metrics}");
    let login = get("/").await.unwrap();
    assert!(login.url().path().starts_with("/login"), "the dashboard asks anonymous visitors to sign in");
    let headers = get("/login").await.unwrap();
    assert_eq!(headers.headers()["x-frame-options"], "DENY");
    assert!(
        headers.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'")
    );
}

async fn accounts_and_tokens_stay_within_their_bounds(app: TestApp) {
    // A partner admin's token narrowed to one client cannot change the partner.
    let admin = app.session("admin@a").await;
    let narrowed = admin
        .send(
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "client only", "organization_id": app.a1.org.id })),
        )
        .await;
    assert_eq!(narrowed.status, 201, "{}", narrowed.body);
    assert_eq!(narrowed.headers["cache-control"], "no-store", "a secret shown once is never cached");
    let csp = narrowed.headers["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("base-uri 'none'"), "{csp}");
    let css = reqwest::get(app.url("/static/app.css")).await.unwrap();
    assert_eq!(css.headers()["cache-control"], "public, max-age=300", "static files may be cached");
    let narrowed = common::Api {
        client: reqwest::Client::new(),
        token: narrowed.body["secret"].as_str().unwrap().to_owned(),
        base: app.base.clone(),
    };
    assert_eq!(
        narrowed.send("PATCH", "/api/v1/partner", Some(json!({ "name": "Renamed" }))).await.status,
        403
    );
    assert_eq!(narrowed.get("/api/v1/organizations").await.body.as_array().unwrap().len(), 1);
    // Renaming to another MSP's name is refused without naming or confirming that MSP.
    let admin = app.token("admin@a").await;
    let other = app.b1.partner.name.as_str().to_string();
    let r = admin.send("PATCH", "/api/v1/partner", Some(json!({ "name": other }))).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(!message.contains(&other) && !message.contains("partner named"), "{message}");
    assert_eq!(message, "that name is not available: choose another");

    // Changing one's own password needs the current one.
    let tech = app.session("tech@a").await;
    let me = tech.send("GET", "/api/v1/users", None).await;
    assert_eq!(me.status, 403, "a technician cannot list users");
    let tech_id = admin
        .send("GET", "/api/v1/users", None)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "tech@a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/users/{tech_id}");
    let r = tech.send("PATCH", &path, Some(json!({ "password": "a brand new password" }))).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("current_password")), "{}", r.body);
    let r = tech
        .send(
            "PATCH",
            &path,
            Some(json!({ "password": "a brand new password", "current_password": "wrong one" })),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = tech
        .send(
            "PATCH",
            &path,
            Some(json!({ "password": "a brand new password", "current_password": common::PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        tech.send("GET", "/api/v1/me", None).await.status,
        401,
        "a new password ends the old sessions"
    );
    let r = tech.send("PATCH", &path, Some(json!({ "role": "partner_admin" }))).await;
    assert_eq!(r.status, 401);

    // A demoted user's tokens stop working.
    let tech_token = app.token("viewer@a1").await;
    assert_eq!(tech_token.get("/api/v1/me").await.status, 200);
    let viewer_id = admin
        .send("GET", "/api/v1/users", None)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "viewer@a1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin
        .send(
            "PATCH",
            &format!("/api/v1/users/{viewer_id}"),
            Some(json!({ "organization_id": app.a2.org.id })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(tech_token.get("/api/v1/me").await.status, 401, "moving a user revokes their tokens");

    // A sign-in form posted from another site is refused.
    let cross = reqwest::Client::new()
        .post(app.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[("username", "admin@a"), ("password", common::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
}

/// Behind a reverse proxy every client arrives from the proxy's address: with the proxy
/// trusted, the address it appends to `X-Forwarded-For` is the client's, and a client cannot
/// choose its own by writing the header; untrusted peers' headers are ignored. `/metrics`
/// with a token set answers only with it.
async fn behind_a_trusted_proxy_sign_ins_are_throttled_per_client_and_metrics_need_the_token(app: TestApp) {
    let token = "metrics-token-0123456789";
    let proxied = app
        .serve_with(ringfence_server::ServerConfig {
            secure_cookies: false,
            dispatch_every: None,
            records_every: None,
            trusted_proxies: vec![ringfence_server::auth::Cidr::parse("127.0.0.1").unwrap()],
            metrics_token: Some(token.into()),
            ..Default::default()
        })
        .await;
    let client = reqwest::Client::new();
    let sign_in = |base: String, forwarded: &'static str, password: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/api/v1/session"))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "username": "tech@a", "password": password }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..ringfence_engine::auth::MAX_FAILURES_PER_ACCOUNT {
        assert_eq!(sign_in(proxied.clone(), "203.0.113.5", "wrong password!").await, 401);
    }
    assert_eq!(
        sign_in(proxied.clone(), "203.0.113.5", common::PASSWORD).await,
        429,
        "that client is throttled"
    );
    // A client that writes its own header in front of the proxy's is still that client.
    assert_eq!(sign_in(proxied.clone(), "198.51.100.9, 203.0.113.5", common::PASSWORD).await, 429);
    // Another client behind the same proxy signs in.
    assert_eq!(sign_in(proxied.clone(), "203.0.113.6", common::PASSWORD).await, 200);

    // Where no proxy is trusted the header is ignored: a rotating header does not escape.
    for k in 0..ringfence_engine::auth::MAX_FAILURES_PER_ACCOUNT {
        let forwarded: &'static str =
            ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"][k as usize % 5];
        assert_eq!(sign_in(app.base.clone(), forwarded, "wrong password!").await, 401);
    }
    assert_eq!(sign_in(app.base.clone(), "192.0.2.77", common::PASSWORD).await, 429);

    let metrics = |base: String, bearer: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut r = client.get(format!("{base}/metrics"));
            if let Some(b) = bearer {
                r = r.bearer_auth(b);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(metrics(proxied.clone(), None).await, 401);
    assert_eq!(metrics(proxied.clone(), Some("metrics-token-wrong")).await, 401);
    assert_eq!(metrics(proxied.clone(), Some(token)).await, 200);
    assert_eq!(metrics(app.base.clone(), None).await, 200, "open where no token is set");
}
