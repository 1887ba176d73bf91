//! The dashboard's pages over HTTP (the browser test covers the same flows in Chromium):
//! scope, roles, device search and paging, group membership, evidence.

mod common;

use common::{Session, TestApp};
use ringfence_proto as proto;

async fn page(s: &Session, path: &str) -> (u16, String) {
    let r = s.client.get(format!("{}{}", s.base, path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(s: &Session, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("csrf", s.csrf.as_str()));
    let r = s.client.post(format!("{}{}", s.base, path)).form(&all).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, location)
}

#[tokio::test]
async fn a_client_viewer_sees_only_their_organization() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let viewer = app.session("viewer@a1").await;
    let (status, tree) = page(&viewer, "/").await;
    assert_eq!(status, 200);
    assert!(tree.contains(">A1<") && !tree.contains(">A2<"), "{tree}");
    assert!(!tree.contains("New organization"), "viewers get no forms");
    assert_eq!(page(&viewer, &format!("/orgs/{}", app.a2.org.id)).await.0, 404);
    assert_eq!(page(&viewer, &format!("/devices/{}", app.a2.device.id)).await.0, 404);
    assert_eq!(page(&viewer, &format!("/sites/{}", app.b1.site.id)).await.0, 404);
    let (status, org) = page(&viewer, &format!("/orgs/{}", app.a1.org.id)).await;
    assert_eq!(status, 200);
    assert!(!org.contains("create-site"), "no site form for a viewer");
    assert_eq!(page(&viewer, "/users").await.0, 403);
    assert_eq!(page(&viewer, "/evidence").await.0, 403);
    // The client's portal: their own figures, and none of the MSP's internal pages, neither in
    // the navigation nor by address.
    assert!(tree.contains("portal-patched") && tree.contains("portal-kev"), "{tree}");
    for internal in
        ["/orgs", "/policies", "/queue", "/approvals", "/exceptions", "/rollouts", "/tokens", "/alerts"]
    {
        assert!(!tree.contains(&format!("href=\"{internal}\"")), "{internal} is in a client's navigation");
        let (status, body) = page(&viewer, internal).await;
        assert_eq!(status, 403, "{internal} answers a client viewer");
        assert!(body.contains("managed service provider"), "{body}");
    }
    for public in [
        "/devices",
        "/vulnerabilities",
        "/schedule",
        "/deployments",
        "/reports",
        "/compliance",
        "/appliances",
    ] {
        assert!(
            tree.contains(&format!("href=\"{public}\"")),
            "{public} is missing from a client's navigation"
        );
        assert_eq!(page(&viewer, public).await.0, 200, "{public}");
    }
    // A crafted form post is refused by the engine, whatever the page showed.
    let (status, location) = post(
        &viewer,
        "/sites",
        &[("organization_id", app.a1.org.id.as_str()), ("name", "X"), ("time_zone", "UTC")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.contains("error="), "{location}");
    let sites = app
        .store
        .list_sites(&ringfence_model::Scope::partner(app.a1.partner.id.clone()), Some(&app.a1.org.id))
        .await
        .unwrap();
    assert_eq!(sites.len(), 1);
}

#[tokio::test]
async fn the_device_list_searches_and_pages() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let op = app.engine.operator("test", "Partner A").await.unwrap();
    for i in 0..30 {
        let req = proto::CreateDevice {
            site_id: app.a1.site.id.to_string(),
            hostname: format!("lt-{i:02}"),
            role: "laptop".into(),
            os: String::new(),
            internet_facing: false,
            holds_sensitive_data: false,
            criticality: None,
            time_zone: None,
            group_ids: vec![],
        };
        app.engine.create_device(&op, &req).await.unwrap();
    }
    let tech = app.session("tech@a").await;
    let (_, first) = page(&tech, "/devices?search=LT-").await;
    assert!(first.contains("1–25 of 30"), "{first}");
    assert!(first.contains(">lt-00<") && first.contains(">lt-24<") && !first.contains(">lt-25<"));
    assert!(first.contains("rel=\"next\""));
    let (_, second) = page(&tech, "/devices?search=LT-&page=2").await;
    assert!(
        second.contains("26–30 of 30") && second.contains(">lt-29<") && !second.contains(">lt-00<"),
        "{second}"
    );
    assert!(second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));
    let (_, filtered) = page(&tech, &format!("/devices?organization_id={}", app.a2.org.id)).await;
    assert!(filtered.contains("1–1 of 1"), "{filtered}");
    let (status, _) = page(&tech, "/devices?page=abc").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_technician_edits_a_device_and_its_groups() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let tech = app.session("tech@a").await;
    let path = format!("/devices/{}", app.a1.device.id);
    let (status, location) = post(
        &tech,
        &path,
        &[
            ("hostname", "a1-srv"),
            ("role", "domain_controller"),
            ("criticality", "critical"),
            ("os", "Windows Server 2022"),
            ("internet_facing", "true"),
            ("holds_sensitive_data", "false"),
            ("time_zone", ""),
        ],
    )
    .await;
    assert_eq!((status, location.contains("notice=")), (303, true), "{location}");
    let d = app.engine.device(&op_of(&app).await, app.a1.device.id.as_str()).await.unwrap();
    assert_eq!(d.role, ringfence_model::DeviceRole::DomainController);
    assert!(d.internet_facing);
    assert!(d.group_ids.is_empty(), "no box checked: the device left its group");
    let (status, location) = post(
        &tech,
        &path,
        &[
            ("hostname", "a1-srv"),
            ("role", "server"),
            ("criticality", "high"),
            ("group_ids", app.a1.group.id.as_str()),
            ("time_zone", "Asia/Tokyo"),
        ],
    )
    .await;
    assert_eq!((status, location.contains("notice=")), (303, true), "an empty OS is allowed: {location}");
    let d = app.engine.device(&op_of(&app).await, app.a1.device.id.as_str()).await.unwrap();
    assert_eq!(d.group_ids, vec![app.a1.group.id.clone()]);
    assert_eq!(d.effective_time_zone, "Asia/Tokyo");
    let (status, location) =
        post(&tech, &path, &[("hostname", "bad host"), ("role", "server"), ("criticality", "high")]).await;
    assert_eq!(status, 303);
    assert!(location.contains("error=hostname"), "{location}");
    let (_, html) = page(&tech, &path).await;
    assert!(html.contains("checked"), "the group's box is checked on the page");
}

async fn op_of(app: &TestApp) -> ringfence_model::Principal {
    app.engine.operator("test", "Partner A").await.unwrap()
}

#[tokio::test]
async fn auditors_read_the_evidence_page() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let auditor = app.session("auditor@a").await;
    let (status, html) = page(&auditor, "/evidence").await;
    assert_eq!(status, 200);
    assert!(html.contains("Hash chain intact"), "{html}");
    // Events read as sentences, with names rather than identifiers.
    assert!(html.contains("signed in") && html.contains("created organization A1"), "{html}");
    // Filtered to sign-ins, nothing else is listed; a date that is not one is refused.
    let (status, html) = page(&auditor, "/evidence?action=session").await;
    assert_eq!(status, 200);
    let rows = html.split("<tr><td class=\"num\">").skip(1).collect::<Vec<_>>();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains("signed in")), "{html}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let (_, html) = page(&auditor, &format!("/evidence?action=organization&from={today}&to={today}")).await;
    assert!(html.contains("created organization A1") && !html.contains("signed in"), "{html}");
    assert_eq!(page(&auditor, "/evidence?from=yesterday").await.0, 400);
    // The Compliance page gives the key to pin when verifying bundles.
    let public = app.engine.server_public_key().await.unwrap();
    let (_, compliance) = page(&auditor, "/compliance").await;
    assert!(
        compliance.contains(&public)
            && compliance.contains(&ringfence_engine::agents::key_fingerprint(&public)),
        "the signing key is shown"
    );
    assert_eq!(page(&auditor, "/evidence?action=everything").await.0, 400);
    assert!(!html.contains("B1"), "another partner's events are not shown");
    let (status, _) = post(&auditor, "/orgs", &[("name", "Auditor Org")]).await;
    assert_eq!(status, 303);
    assert_eq!(
        app.engine.organizations(&op_of(&app).await).await.unwrap().len(),
        2,
        "the auditor created nothing"
    );
}

#[tokio::test]
async fn a_partner_admin_manages_users_groups_and_the_partner_in_the_dashboard() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let admin = app.session("admin@a").await;
    let tech = app.session("tech@a").await;
    let tech_token = app.token("tech@a").await;
    assert_eq!(tech_token.get("/api/v1/organizations").await.status, 200);
    let users = app.engine.users(&op_of(&app).await).await.unwrap();
    let tech_id = users.iter().find(|u| u.username == "tech@a").unwrap().id.to_string();
    let admin_id = users.iter().find(|u| u.username == "admin@a").unwrap().id.to_string();

    let (_, html) = page(&admin, "/users").await;
    assert!(html.contains(&format!("action=\"/users/{tech_id}\"")), "an edit form per user");
    assert!(!html.contains(&format!("action=\"/users/{admin_id}\"")), "no form to change oneself");
    let (status, location) =
        post(&admin, &format!("/users/{tech_id}"), &[("role", "technician"), ("disabled", "true")]).await;
    assert_eq!((status, location.contains("notice=")), (303, true), "{location}");
    assert_eq!(page(&tech, "/").await.0, 303, "a disabled user's session ends");
    assert_eq!(tech_token.get("/api/v1/organizations").await.status, 401, "and their API tokens");
    // Enabled again, the user signs in anew; the old token stays revoked.
    let (status, _) =
        post(&admin, &format!("/users/{tech_id}"), &[("role", "technician"), ("disabled", "false")]).await;
    assert_eq!(status, 303);
    assert_eq!(tech_token.get("/api/v1/organizations").await.status, 401, "a token revoked stays revoked");
    let (_, location) =
        post(&admin, &format!("/users/{admin_id}"), &[("role", "auditor"), ("disabled", "false")]).await;
    assert!(location.contains("error="), "an admin cannot demote themselves: {location}");

    let (_, location) = post(
        &admin,
        &format!("/groups/{}", app.a1.group.id),
        &[("name", "Core servers"), ("description", "DCs")],
    )
    .await;
    assert!(location.contains("notice="), "{location}");
    let g = app.engine.group(&op_of(&app).await, app.a1.group.id.as_str()).await.unwrap();
    assert_eq!((g.name.as_str(), g.description.as_str()), ("Core servers", "DCs"));

    let (_, location) = post(&admin, "/partner", &[("name", "Partner A Managed Services")]).await;
    assert!(location.contains("notice="), "{location}");
    let (_, tree) = page(&admin, "/orgs").await;
    assert!(tree.contains("Partner A Managed Services — organizations"));
    // A technician sees no partner form and cannot rename it by posting one.
    let tech2 = app.session("tech@a1").await;
    let (_, location) = post(&tech2, "/partner", &[("name", "Mine now")]).await;
    assert!(location.contains("error="), "{location}");
}

#[tokio::test]
async fn a_technician_creates_and_revokes_an_enrollment_token_on_the_site_page() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let tech = app.session("tech@a").await;
    let path = format!("/sites/{}/enrollment-tokens", app.a1.site.id);
    let mut all: Vec<(&str, &str)> = vec![("name", "spring rollout"), ("max_uses", "3")];
    all.push(("csrf", tech.csrf.as_str()));
    let r = tech.client.post(format!("{}{}", tech.base, path)).form(&all).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the secret is shown in this response, not a redirect");
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("shown once") && html.contains("rfe_"), "{html}");
    assert!(html.contains("spring rollout") && html.contains("0 of 3"), "{html}");
    // The secret is not shown again.
    let (_, again) = page(&tech, &format!("/sites/{}", app.a1.site.id)).await;
    assert!(!again.contains("rfe_"));
    let tokens = app.token("tech@a").await.get("/api/v1/enrollment-tokens").await.body;
    let id = tokens[0]["id"].as_str().unwrap().to_string();
    let (status, location) = post(&tech, &format!("/enrollment-tokens/{id}/revoke"), &[]).await;
    assert_eq!(status, 303, "{location}");
    assert!(location.contains("revoked"), "{location}");
    let (_, after) = page(&tech, &format!("/sites/{}", app.a1.site.id)).await;
    assert!(after.contains(">revoked<"), "{after}");
    // A bad number is refused with the field named.
    let (_, location) = post(&tech, &path, &[("name", "x"), ("max_uses", "many")]).await;
    assert!(location.contains("max_uses"), "{location}");
    // Another partner cannot revoke it (not found).
    let b = app.session("admin@b").await;
    let (_, location) = post(&b, &format!("/enrollment-tokens/{id}/revoke"), &[]).await;
    assert!(location.contains("error"), "{location}");
}

#[tokio::test]
async fn remediation_pages_show_the_queue_policies_and_exceptions_by_role() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let summary = ringfence_engine::intel::import_demo(app.store.as_ref(), ringfence_model::Timestamp::now())
        .await
        .unwrap();
    app.engine.correlate_after_import(&[summary]).await.unwrap();
    let op = op_of(&app).await;
    let inv = ringfence_inventory::Inventory {
        os: ringfence_inventory::OsInfo {
            family: "linux".into(),
            id: "debian".into(),
            version: "12".into(),
            codename: Some("bookworm".into()),
            name: "Debian 12".into(),
        },
        items: ringfence_engine::demo::debian_packages(),
    };
    app.engine.submit_inventory(&op, app.a1.device.id.as_str(), inv).await.unwrap();

    let tech = app.session("tech@a").await;
    let (status, queue) = page(&tech, "/queue").await;
    assert_eq!(status, 200);
    assert!(
        queue.contains("jq → 1.6-2.1+deb12u2: fixes 1 CVE, 0 in KEV, on 1 device in 1 organization"),
        "{queue}"
    );
    assert!(queue.contains("id=\"decide\""), "technicians get the bulk form");
    let (_, filtered) = page(&tech, "/queue?status=no_fix&sort=product").await;
    assert!(!filtered.contains("jq →"), "{filtered}");
    let (status, _) = page(&tech, "/queue?sort=sideways").await;
    assert_eq!(status, 400);
    // Sorted by product, A to Z and turned round; and the same view as CSV.
    let (_, az) = page(&tech, "/queue?sort=product").await;
    let (_, za) = page(&tech, "/queue?sort=product&dir=desc").await;
    let order = |html: &str| -> Vec<String> {
        html.split("data-product=\"").skip(1).map(|s| s.split('"').next().unwrap().to_owned()).collect()
    };
    let mut reversed = order(&za);
    reversed.reverse();
    assert!(order(&az).len() > 1 && order(&az) == reversed, "{:?} {:?}", order(&az), order(&za));
    let csv = tech.client.get(format!("{}/queue?sort=product&format=csv", tech.base)).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("update,version,classification"), "{csv}");
    assert!(csv.lines().count() > order(&az).len(), "one line per update and the header: {csv}");
    // Bulk decision through the form, then the history shows it.
    let (status, location) = post(
        &tech,
        "/queue/decide",
        &[
            ("update", "jq\t1.6-2.1+deb12u2"),
            ("update", "unzip\t6.0-28+deb12u1"),
            ("decision", "reject"),
            ("reason", "client change freeze"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        location.contains("notice=2%20decisions") || location.contains("notice=2+decisions"),
        "{location}"
    );
    let (_, history) = page(&tech, "/approvals").await;
    assert!(
        history.contains("client change freeze") && history.contains("jq → 1.6-2.1+deb12u2"),
        "{history}"
    );
    // Without the CSRF token nothing is decided.
    let r = tech
        .client
        .post(format!("{}/queue/decide", tech.base))
        .form(&[("update", "jq\t1"), ("decision", "approve"), ("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // An auditor sees the queue without forms; a client's viewer not at all (the queue's
    // internals are the MSP's); technicians cannot change policies.
    let auditor = app.session("auditor@a").await;
    let (status, queue) = page(&auditor, "/queue").await;
    assert_eq!(status, 200);
    assert!(queue.contains("jq →") && !queue.contains("id=\"decide\""), "{queue}");
    let viewer = app.session("viewer@a1").await;
    assert_eq!(page(&viewer, "/queue").await.0, 403);
    let (_, policies) = page(&tech, "/policies").await;
    assert!(!policies.contains("id=\"policy-form\""), "{policies}");

    // An admin previews a policy (nothing saved), then saves it; the device page shows it.
    let admin = app.session("admin@a").await;
    let heads = app.heads().await;
    let mut fields = vec![
        ("name", "Servers ring"),
        ("priority", "0"),
        ("settings", "{\"ring\": 3}"),
        ("locked", ""),
        ("action", "preview"),
    ];
    let target = format!("group:{}", app.a1.group.id);
    fields.push(("target", target.as_str()));
    fields.push(("id", ""));
    let mut all = fields.clone();
    all.push(("csrf", admin.csrf.as_str()));
    let r = admin.client.post(format!("{}/policies", admin.base)).form(&all).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let preview = r.text().await.unwrap();
    assert!(preview.contains("id=\"preview-result\"") && preview.contains("a1-srv"), "{preview}");
    assert_eq!(app.heads().await, heads, "a preview saves nothing");
    fields[4] = ("action", "save");
    let (status, location) = post(&admin, "/policies", &fields).await;
    assert_eq!(status, 303);
    assert!(location.contains("notice="), "{location}");
    let (_, device) = page(&tech, &format!("/devices/{}", app.a1.device.id)).await;
    assert!(device.contains("3 — from group &#39;Servers&#39;, policy &#39;Servers ring&#39;"), "{device}");

    // Exceptions: recorded from the form, listed with their expiry.
    let expires = (ringfence_model::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 20))
        .strftime("%Y-%m-%d")
        .to_string();
    let (status, location) = post(
        &tech,
        "/exceptions",
        &[
            ("organization_id", app.a1.org.id.as_str()),
            ("kind", "pin"),
            ("software", ".NET Framework"),
            ("version_range", "4.8.x"),
            ("owner", "it@a1"),
            ("reason", "the accounting application breaks above 4.8"),
            ("expires", expires.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.contains("notice="), "{location}");
    let (_, exceptions) = page(&tech, "/exceptions").await;
    assert!(exceptions.contains(".NET Framework") && exceptions.contains(&expires), "{exceptions}");
}

#[tokio::test]
async fn policies_are_edited_in_fields_and_a_refused_save_keeps_the_draft() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let admin = app.session("admin@a").await;
    let target = format!("organization:{}", app.a1.org.id);
    let base = [
        ("id", ""),
        ("name", "Clinic nights"),
        ("target", target.as_str()),
        ("priority", "0"),
        ("locked", ""),
        ("ring", "1"),
        ("window_dtstart", "2026-01-06T22:00"),
        ("window_rrule", "FREQ=WEEKLY;BYDAY=TU"),
        ("window_duration", "PT3H"),
        ("reboot", "never"),
        ("ap_kev", "on"),
        ("sla_critical", "7"),
        ("sla_kev_days", "10"),
        ("settings", "{\"exclusions\": [\"ehr-client\"]}"),
        ("action", "save"),
    ];
    // A deadline of 0 days is refused: the page comes back with everything typed, the field marked.
    let mut bad = base.to_vec();
    bad[11] = ("sla_critical", "0");
    bad.push(("csrf", admin.csrf.as_str()));
    let heads = app.heads().await;
    let r = admin.client.post(format!("{}/policies", admin.base)).form(&bad).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let page_html = r.text().await.unwrap();
    assert!(page_html.contains("sla.critical_days"), "the error names the setting");
    assert!(
        page_html.contains("value=\"Clinic nights\"") && page_html.contains("FREQ=WEEKLY;BYDAY=TU"),
        "the draft is kept"
    );
    assert!(
        page_html.contains(
            "name=\"sla_critical\" type=\"number\" min=\"1\" max=\"365\" value=\"0\" class=\"invalid\""
        ),
        "{page_html}"
    );
    assert_eq!(app.heads().await, heads, "nothing is saved");

    // Saved, the fields and the other settings make one policy.
    let (status, location) = post(&admin, "/policies", &base).await;
    assert_eq!(status, 303, "{location}");
    let op = app.engine.operator("test", "Partner A").await.unwrap();
    let saved =
        app.engine.policies(&op).await.unwrap().into_iter().find(|p| p.name == "Clinic nights").unwrap();
    let settings = serde_json::to_value(&saved.settings).unwrap();
    assert_eq!(
        settings,
        serde_json::json!({
            "ring": 1,
            "maintenance_windows": [{"dtstart": "2026-01-06T22:00", "rrule": "FREQ=WEEKLY;BYDAY=TU", "duration": "PT3H"}],
            "reboot": "never",
            "approval": {"auto_approve": {"kev": true, "ssvc_act": false}},
            "sla": {"critical_days": 7, "kev_days": 10},
            "exclusions": ["ehr-client"]
        })
    );
    // Opened again, the common settings are back in their fields and the rest in the JSON.
    let (_, edit) = page(&admin, &format!("/policies?edit={}", saved.id)).await;
    assert!(edit.contains("name=\"window_rrule\" value=\"FREQ=WEEKLY;BYDAY=TU\""), "{edit}");
    assert!(edit.contains("ehr-client") && !edit.contains("&quot;reboot&quot;"), "{edit}");
}

/// A link cannot put words on a page: only the outcome messages the server signed for its
/// own redirects are shown, not `?error=` or `?notice=` text someone wrote into a URL.
#[tokio::test]
async fn only_the_server_s_own_notices_are_shown() {
    let app = TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let tech = app.session("tech@a").await;
    let crafted = "Your session expired: call 555-0100 to restore access";
    let query: String = form_urlencoded_like(crafted);
    for key in ["error", "notice"] {
        let (status, html) = page(&tech, &format!("/?{key}={query}")).await;
        assert_eq!(status, 200);
        assert!(!html.contains("555-0100"), "{key}: crafted text shown");
        let (_, html) = page(&tech, &format!("/?{key}={query}&sig=00112233445566778899aabbccddeeff")).await;
        assert!(!html.contains("555-0100"), "{key}: a made-up signature is not enough");
    }
    // The server's own outcome is shown where it sends the user.
    let (status, location) = post(
        &tech,
        "/sites",
        &[("organization_id", app.a1.org.id.as_str()), ("name", "Annex"), ("time_zone", "UTC")],
    )
    .await;
    assert_eq!(status, 303, "{location}");
    assert!(location.contains("notice=") && location.contains("sig="), "{location}");
    let (_, html) = page(&tech, &location).await;
    assert!(html.contains("Annex"), "the notice is shown");
    // The same signature does not carry another message.
    let other = location.replace("Annex", "Annexe");
    let (_, html) = page(&tech, &other).await;
    assert!(!html.contains("Annexe"), "a signature covers its own message only");
}

fn form_urlencoded_like(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
