//! The console as its users meet it, on the whole demo (the same seed `ringfence demo` serves):
//! the overview's figures agree with the API, the schedule shows the deployments the API
//! lists, deadlines never fall before detection, no page shows a raw identifier, a client
//! viewer gets a portal of their own, and every class a template uses is styled.

use serde_json::Value;
use std::collections::BTreeSet;

mod common;

use common::demo::{ADMIN, VIEWER, demo};

/// The text a person sees: the page without its tags, scripts and styles.
fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tag = &rest[i..];
        let skip_to = if tag.starts_with("<script") {
            tag.find("</script>").map(|j| j + "</script>".len())
        } else if tag.starts_with("<style") {
            tag.find("</style>").map(|j| j + "</style>".len())
        } else {
            tag.find('>').map(|j| j + 1)
        };
        out.push(' ');
        rest = &tag[skip_to.unwrap_or(tag.len())..];
    }
    out.push_str(rest);
    out.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
}

/// The first thing in `text` shaped like a UUID (8-4-4-4-12 hexadecimal digits).
fn uuid_in(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    'start: for start in 0..b.len() {
        if start > 0 && b[start - 1].is_ascii_hexdigit() {
            continue;
        }
        let mut i = start;
        for (k, n) in shape.iter().enumerate() {
            for _ in 0..*n {
                if i >= b.len() || !b[i].is_ascii_hexdigit() {
                    continue 'start;
                }
                i += 1;
            }
            if k < 4 {
                if i >= b.len() || b[i] != b'-' {
                    continue 'start;
                }
                i += 1;
            }
        }
        return Some(text[start..i].to_owned());
    }
    None
}

/// The addresses of the navigation's links.
fn nav_links(html: &str) -> Vec<String> {
    let Some(start) = html.find("<nav class=\"side\"") else { return Vec::new() };
    let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
    nav.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

#[test]
fn uuid_detection() {
    assert_eq!(
        uuid_in("rule policy:01a2519b-0a1b-7c2d-8e3f-0123456789ab:kev").as_deref(),
        Some("01a2519b-0a1b-7c2d-8e3f-0123456789ab")
    );
    assert_eq!(uuid_in("KB5046617 · CVE-2024-38063 · 2026-12-07 19:04"), None);
    assert_eq!(visible_text("<a href=\"/x/1\">Name</a><script>var id='x';</script>ok"), " Name  ok");
}

#[tokio::test]
async fn the_consoles_pages_agree_with_the_api_and_show_names_not_identifiers() {
    let d = demo().await;
    let admin = d.sign_in(ADMIN).await;

    // The overview: a row per client, the fleet's device count the device list's.
    let (status, home) = admin.page("/").await;
    assert_eq!(status, 200);
    let orgs = admin.api("/api/v1/organizations").await;
    let orgs = orgs.as_array().unwrap();
    assert_eq!(orgs.len(), 3);
    let all_devices = admin.api("/api/v1/devices?limit=1").await["total"].as_i64().unwrap();
    assert!(
        home.contains(&format!("id=\"total-devices\">{all_devices}<")),
        "the fleet total is the device list's"
    );
    for o in orgs {
        let (id, name) = (o["id"].as_str().unwrap(), o["name"].as_str().unwrap());
        let devices = admin.api(&format!("/api/v1/devices?organization_id={id}&limit=1")).await["total"]
            .as_i64()
            .unwrap();
        assert!(
            home.contains(&format!("href=\"/devices?organization_id={id}\">{devices}<")),
            "{name}: the overview's device count is the device list's ({devices})"
        );
        let failed = admin
            .api(&format!("/api/v1/deployments?organization_id={id}&status=failed&changed_within_hours=24"))
            .await
            .as_array()
            .unwrap()
            .len();
        let shown = if failed > 0 {
            format!(
                "data-figure=\"failed\" href=\"/deployments?organization_id={id}&amp;status=failed&amp;hours=24\">{failed}<"
            )
        } else {
            "data-figure=\"failed\">0<".to_owned()
        };
        assert!(home.contains(&shown), "{name}: {failed} deployments failed in 24 h");
        // The link behind the figure lists the same deployments.
        let (_, list) =
            admin.page(&format!("/deployments?organization_id={id}&status=failed&hours=24")).await;
        assert_eq!(list.matches("<tr class=\"deployment\"").count(), failed, "{name}");
    }
    assert!(home.find("Hartley").unwrap() < home.find("Riverside").unwrap(), "the most exposed client first");
    let (_, by_name) = admin.page("/?sort=client&dir=desc").await;
    assert!(by_name.find("Riverside").unwrap() < by_name.find("Hartley").unwrap(), "sorted by name, Z to A");

    // Tonight's work: every deployment created and not finished is on the schedule, as the
    // API and the schedule preview list them.
    let active =
        admin.api("/api/v1/deployments?status=scheduled,dispatched,running,rebooting&limit=10000").await;
    let active = active.as_array().unwrap();
    assert!(!active.is_empty(), "the demo has deployments under way");
    let preview = admin.api("/api/v1/schedule").await;
    let created: BTreeSet<&str> =
        preview["entries"].as_array().unwrap().iter().filter_map(|e| e["deployment_id"].as_str()).collect();
    let window_open: Vec<&Value> = active
        .iter()
        .filter(|d| {
            d["window_end"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap() > jiff::Timestamp::now()
        })
        .collect();
    assert_eq!(created.len(), window_open.len(), "the schedule lists every deployment under way");
    let (_, schedule) = admin.page("/schedule").await;
    assert!(!schedule.contains("id=\"no-schedule\""), "Schedule does not say nothing is scheduled");
    for dep in &window_open {
        assert!(schedule.contains(&format!("/deployments/{}", dep["id"].as_str().unwrap())), "{dep}");
    }

    // A CVE's page names the client of each device and where its fix stands.
    let top = admin.api("/api/v1/vulnerabilities?kev=true&limit=1").await;
    let cve = top["items"][0]["facts"]["id"].as_str().unwrap().to_owned();
    let (_, cve_page) = admin.page(&format!("/vulnerabilities/{cve}")).await;
    let affected = visible_text(&cve_page[cve_page.find("id=\"affected\"").unwrap()..]);
    assert!(orgs.iter().any(|o| affected.contains(o["name"].as_str().unwrap())), "{affected}");
    assert!(
        ["not deployed", "verified", "failed", "scheduled", "running", "no fix yet"]
            .iter()
            .any(|s| affected.contains(s)),
        "{affected}"
    );

    // No deadline falls before its finding was detected.
    let sla = admin.api("/api/v1/sla").await;
    for item in sla["breached"].as_array().unwrap().iter().chain(sla["due_soon"].as_array().unwrap()) {
        let detected: jiff::Timestamp = item["first_detected"].as_str().unwrap().parse().unwrap();
        let due: jiff::Timestamp = item["due"].as_str().unwrap().parse().unwrap();
        assert!(due > detected, "{item}");
    }

    // No page of the navigation, nor a device, deployment or CVE page, shows a raw identifier.
    let mut pages = nav_links(&home);
    assert!(pages.len() >= 18, "{pages:?}");
    let device = admin.api("/api/v1/devices?limit=1").await["items"][0]["id"].as_str().unwrap().to_owned();
    pages.push(format!("/devices/{device}"));
    pages.push(format!("/deployments/{}", active[0]["id"].as_str().unwrap()));
    pages.push("/vulnerabilities/CVE-2024-3094".into());
    pages.push("/deployments?hours=all".into());
    for path in &pages {
        let (status, body) = admin.page(path).await;
        assert_eq!(status, 200, "{path}");
        let text = visible_text(&body);
        assert_eq!(uuid_in(&text), None, "{path} shows an identifier");
    }
}

#[tokio::test]
async fn a_client_viewer_gets_a_portal_of_their_own() {
    let d = demo().await;
    let viewer = d.sign_in(VIEWER).await;
    let (status, home) = viewer.page("/").await;
    assert_eq!(status, 200);
    let text = visible_text(&home);
    assert!(text.contains("Hartley & Moss LLP"), "the portal is their organization's page: {text}");
    assert!(text.contains("Managed by Demo MSP"), "the MSP is named as on reports");
    assert!(!home.contains("Northwind") && !home.contains("Riverside"), "no other client appears");
    let devices = viewer.api("/api/v1/devices?limit=1").await["total"].as_i64().unwrap();
    assert!(home.contains(&format!("of {devices} devices fully patched")), "{devices}");
    for path in nav_links(&home) {
        let (status, body) = viewer.page(&path).await;
        assert_eq!(status, 200, "{path}");
        let text = visible_text(&body);
        assert!(!text.contains("Northwind") && !text.contains("Riverside"), "{path} shows another client");
        assert_eq!(uuid_in(&text), None, "{path} shows an identifier");
    }
    for internal in ["/policies", "/queue", "/approvals", "/tokens", "/orgs", "/alerts"] {
        assert_eq!(viewer.page(internal).await.0, 403, "{internal}");
    }
}

#[test]
fn every_class_a_template_uses_is_styled() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let css = std::fs::read_to_string(root.join("static/app.css")).unwrap();
    let mut missing = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let html = std::fs::read_to_string(&path).unwrap();
        for attr in html.split("class=\"").skip(1) {
            let value = attr.split('"').next().unwrap();
            // Template expressions ({{ … }}, {% … %}) are read past; the literal words are classes.
            let mut words = String::new();
            let mut depth = 0;
            let mut chars = value.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '{' && matches!(chars.peek(), Some('{') | Some('%')) {
                    depth += 1;
                    chars.next();
                } else if (c == '}' || c == '%') && chars.peek() == Some(&'}') && depth > 0 {
                    depth -= 1;
                    chars.next();
                } else if depth == 0 {
                    words.push(c);
                } else {
                    words.push(' ');
                }
            }
            for class in words.split_whitespace() {
                let defined = css.match_indices(&format!(".{class}")).any(|(i, m)| {
                    css[i + m.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
                });
                if !defined {
                    missing.insert(format!("{class} ({})", path.file_name().unwrap().to_string_lossy()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "classes used in templates but not in app.css: {missing:?}");
}
