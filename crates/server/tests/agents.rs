//! Enrollment end to end: a site's token is created over the API, the real
//! `ringfence-agent` binary enrolls against the server on port 0 (SQLite and PostgreSQL),
//! keeps its credential with mode 0600 and pins the server's key; a cloned machine is
//! flagged; used-up, revoked and unknown tokens are refused; another partner sees nothing.

mod common;

use common::TestApp;
use serde_json::json;
use std::path::Path;

both_backends!(
    an_agent_enrolls_with_a_site_token_and_a_clone_is_flagged,
    an_agent_reports_changes_once_and_keeps_them_while_the_server_is_away,
    a_running_agent_stops_cleanly_on_sigterm,
);

fn machine(dir: &Path, machine_id: &str, hostname: &str) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/machine-id"), format!("{machine_id}\n")).unwrap();
    std::fs::write(dir.join("etc/hostname"), format!("{hostname}\n")).unwrap();
    std::fs::write(
        dir.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
}

/// Runs the agent without blocking the runtime that serves its requests.
async fn enroll(bin: &Path, app: &TestApp, token: &str, root: &Path, config: &Path) -> std::process::Output {
    agent(bin, &["enroll", "--server", &app.base, "--token", token], root, config).await
}

async fn an_agent_enrolls_with_a_site_token_and_a_clone_is_flagged(app: TestApp) {
    let Some(bin) = common::agent_binary() else { return };
    let tech = app.token("tech@a").await;
    let r = tech
        .send(
            "POST",
            "/api/v1/enrollment-tokens",
            Some(json!({"site_id": app.a1.site.id, "name": "HQ rollout", "max_uses": 2})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let token_id = r.body["token"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rfe_"));

    let tmp = ringfence_store::testing::TempDir::new("ringfence-agent-enroll");
    let (root, cfg1, cfg2, cfg3) =
        (tmp.0.join("root"), tmp.0.join("cfg1"), tmp.0.join("cfg2"), tmp.0.join("cfg3"));
    machine(&root, "0f9c7a6e5d4c3b2a19080706050403ab", "till-01");
    let out = enroll(&bin, &app, &secret, &root, &cfg1).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg1.join("agent.json")).unwrap()).unwrap();
    let device_id = config["device_id"].as_str().unwrap().to_string();
    assert!(config["credential"].as_str().unwrap().starts_with("rfa_"));
    assert_eq!(config["server_public_key"], app.engine.server_public_key().await.unwrap().as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cfg1.join("agent.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the credential is readable by its owner only");
    }
    let device = tech.get(&format!("/api/v1/devices/{device_id}")).await;
    assert_eq!(device.status, 200);
    assert_eq!(device.body["hostname"], "till-01");
    assert_eq!(device.body["site_id"], app.a1.site.id.as_str());
    assert_eq!(device.body["os"], "Debian GNU/Linux 12 (bookworm)");
    let agent = tech.get(&format!("/api/v1/devices/{device_id}/agent")).await;
    assert_eq!(agent.status, 200, "{}", agent.body);
    assert!(agent.body["clone_of"].is_null(), "{}", agent.body);

    // Enrolling twice from one config folder is refused without --force.
    let again = enroll(&bin, &app, &secret, &root, &cfg1).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already enrolled"));

    // A cloned machine (same machine-id, same host name) enrolls, and is flagged.
    let out = enroll(&bin, &app, &secret, &root, &cfg2).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clone"));
    let clone: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg2.join("agent.json")).unwrap()).unwrap();
    let clone_id = clone["device_id"].as_str().unwrap();
    let agent = tech.get(&format!("/api/v1/devices/{clone_id}/agent")).await.body;
    assert_eq!(agent["clone_of"], device_id.as_str());
    assert_eq!(tech.get(&format!("/api/v1/devices/{clone_id}")).await.body["hostname"], "till-01-2");

    // The token allowed two devices.
    machine(&root, "1111222233334444aaaabbbbccccdddd", "till-02");
    let out = enroll(&bin, &app, &secret, &root, &cfg3).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not valid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens = tech.get("/api/v1/enrollment-tokens").await.body;
    assert_eq!(tokens[0]["uses"], 2);

    // Revoked and unknown tokens are refused alike; bad input names the field.
    let r = tech
        .send(
            "POST",
            "/api/v1/enrollment-tokens",
            Some(json!({"site_id": app.a1.site.id, "name": "temp", "expires_in_hours": 1})),
        )
        .await;
    let temp_secret = r.body["secret"].as_str().unwrap().to_string();
    let temp_id = r.body["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(tech.send("DELETE", &format!("/api/v1/enrollment-tokens/{temp_id}"), None).await.status, 200);
    let raw = |token: &str, machine_id: &str| json!({"token": token, "hostname": "till-09", "machine_id": machine_id});
    let anon = reqwest::Client::new();
    for token in [temp_secret.as_str(), "rfe_0000"] {
        let r = anon
            .post(app.url("/api/agent/v1/enroll"))
            .json(&raw(token, "1111222233334444aaaabbbbccccdddd"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r =
        anon.post(app.url("/api/agent/v1/enroll")).json(&raw(&temp_secret, "bad id!")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let r = tech
        .send(
            "POST",
            "/api/v1/enrollment-tokens",
            Some(json!({"site_id": app.a1.site.id, "name": "x", "max_uses": 0})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("max_uses")));

    // Another partner sees none of it; a viewer may not create tokens.
    let b = app.token("admin@b").await;
    assert!(b.get("/api/v1/enrollment-tokens").await.body.as_array().unwrap().is_empty());
    assert_eq!(b.send("DELETE", &format!("/api/v1/enrollment-tokens/{token_id}"), None).await.status, 404);
    assert_eq!(b.get(&format!("/api/v1/devices/{device_id}/agent")).await.status, 404);
    let r = b
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "steal"})))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("site_id")));
    let viewer = app.token("viewer@a1").await;
    let r = viewer
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "v"})))
        .await;
    assert_eq!(r.status, 403);
}

async fn agent(bin: &Path, args: &[&str], root: &Path, config: &Path) -> std::process::Output {
    tokio::process::Command::new(bin)
        .args(args)
        .arg("--root")
        .arg(root)
        .arg("--config-dir")
        .arg(config)
        .output()
        .await
        .unwrap()
}

fn status(packages: &[(&str, &str)]) -> String {
    packages
        .iter()
        .map(|(n, v)| {
            format!("Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn an_agent_reports_changes_once_and_keeps_them_while_the_server_is_away(app: TestApp) {
    let Some(bin) = common::agent_binary() else { return };
    let tech = app.token("tech@a").await;
    let r = tech
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "t"})))
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let tmp = ringfence_store::testing::TempDir::new("ringfence-agent-run");
    let (root, cfg) = (tmp.0.join("root"), tmp.0.join("cfg"));
    machine(&root, "abcdefabcdefabcdefabcdefabcdef01", "srv-01");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    let dpkg = root.join("var/lib/dpkg/status");
    std::fs::write(
        &dpkg,
        status(&[("base-files", "12.4+deb12u11"), ("xz-utils", "5.4.1-1"), ("jq", "1.6-2.1+deb12u1")]),
    )
    .unwrap();
    assert!(enroll(&bin, &app, &secret, &root, &cfg).await.status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("agent.json")).unwrap()).unwrap();
    let device = config["device_id"].as_str().unwrap().to_string();
    let credential = config["credential"].as_str().unwrap().to_string();
    let once = ["run", "--once"];

    let out = agent(&bin, &once, &root, &cfg).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent inventory report 1 (applied)"));
    let inv = tech.get(&format!("/api/v1/devices/{device}/inventory")).await.body;
    assert_eq!(inv["os"]["id"], "debian");
    let names: Vec<&str> =
        inv["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"xz-utils") && names.contains(&"jq"), "{names:?}");
    let out = agent(&bin, &once, &root, &cfg).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("inventory unchanged"));

    // A package update in the private dpkg database becomes an "updated" event.
    std::fs::write(
        &dpkg,
        status(&[
            ("base-files", "12.4+deb12u11"),
            ("xz-utils", "5.4.1-1+deb12u1"),
            ("jq", "1.6-2.1+deb12u1"),
        ]),
    )
    .unwrap();
    let out = agent(&bin, &once, &root, &cfg).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent inventory report 2 (applied)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let history = tech.get(&format!("/api/v1/devices/{device}/software-history")).await.body;
    let xz = history.as_array().unwrap().iter().find(|e| e["name"] == "xz-utils").unwrap();
    assert_eq!(
        (xz["change"].as_str(), xz["from_version"].as_str(), xz["to_version"].as_str()),
        (Some("updated"), Some("5.4.1-1"), Some("5.4.1-1+deb12u1"))
    );

    // The server is away: the report is kept, then delivered once.
    let mut away = config.clone();
    away["server"] = json!("http://127.0.0.1:9");
    std::fs::write(cfg.join("agent.json"), serde_json::to_vec(&away).unwrap()).unwrap();
    std::fs::write(
        &dpkg,
        status(&[
            ("base-files", "12.4+deb12u11"),
            ("xz-utils", "5.4.1-1+deb12u1"),
            ("jq", "1.6-2.1+deb12u1"),
            ("curl", "7.88.1-10+deb12u15"),
        ]),
    )
    .unwrap();
    let out = agent(&bin, &once, &root, &cfg).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["acked_seq"], 2);
    std::fs::write(cfg.join("agent.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let out = agent(&bin, &once, &root, &cfg).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent inventory report 3 (applied)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = tech.get(&format!("/api/v1/devices/{device}/software-history")).await.body;
    let curl: Vec<_> = history.as_array().unwrap().iter().filter(|e| e["name"] == "curl").collect();
    assert_eq!(curl.len(), 1, "installed once: {history}");
    assert_eq!(curl[0]["change"], "installed");

    // A retried report is not applied twice; a gap asks for a full inventory.
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(app.url("/api/agent/v1/inventory")).bearer_auth(&credential).json(&body).send()
    };
    let r: serde_json::Value =
        post(json!({"seq": 3, "delta": {"added": [], "removed": []}})).await.unwrap().json().await.unwrap();
    assert_eq!(
        (r["applied"].as_bool(), r["resync"].as_bool(), r["seq"].as_i64()),
        (Some(false), Some(false), Some(3))
    );
    let r: serde_json::Value =
        post(json!({"seq": 9, "delta": {"added": [], "removed": []}})).await.unwrap().json().await.unwrap();
    assert_eq!(r["resync"], true);
    let r = http
        .post(app.url("/api/agent/v1/inventory"))
        .bearer_auth("rfa_wrong")
        .json(&json!({"seq": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(json!({"seq": 4, "full": {"os": {"family": "linux"}, "items": []}, "delta": {"added": []}}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let state = tech.get(&format!("/api/v1/devices/{device}/agent")).await.body;
    assert_eq!(state["inventory_seq"], 3, "{state}");
    assert!(state["last_seen"].is_string());
}

/// SIGTERM (systemd's stop) ends the agent's loop after the step in progress: exit 0, its
/// report acknowledged and its state saved; SIGINT alike.
async fn a_running_agent_stops_cleanly_on_sigterm(app: TestApp) {
    let Some(bin) = common::agent_binary() else { return };
    if !cfg!(unix) {
        return;
    }
    let tech = app.token("tech@a").await;
    let r = tech
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "stop"})))
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_string();
    for (k, signal) in ["-TERM", "-INT"].into_iter().enumerate() {
        let tmp = ringfence_store::testing::TempDir::new("ringfence-agent-stop");
        let (root, cfg) = (tmp.0.join("root"), tmp.0.join("cfg"));
        machine(&root, &format!("{k}bcdefabcdefabcdefabcdefabcdef77"), &format!("stop-{k}"));
        std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
        std::fs::write(root.join("var/lib/dpkg/status"), status(&[("jq", "1.6-2.1+deb12u1")])).unwrap();
        assert!(enroll(&bin, &app, &secret, &root, &cfg).await.status.success());
        let child = tokio::process::Command::new(&bin)
            .args(["run", "--checkin-interval", "1"])
            .arg("--root")
            .arg(&root)
            .arg("--config-dir")
            .arg(&cfg)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Running: its first report is acknowledged.
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(cfg.join("state.json")).is_ok_and(|s| s.contains("\"acked_seq\":1")) {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "the agent reported");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").arg(signal).arg(&pid).status().unwrap().success());
        let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("stopped within 10 s")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{signal}: exit 0; {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("stopped: the state is saved"), "{stdout}");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cfg.join("state.json")).unwrap()).unwrap();
        assert!(state["pending"].is_null(), "nothing left half-sent: {state}");
    }
}
