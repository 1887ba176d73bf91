//! Enrollment end to end: a site's token is created over the API, the real
//! `ringfence-agent` binary enrolls against the server on port 0 (SQLite and PostgreSQL),
//! keeps its credential with mode 0600 and pins the server's key; a cloned machine is
//! flagged; used-up, revoked and unknown tokens are refused; another partner sees nothing.

mod common;

use common::TestApp;
use serde_json::json;
use std::path::{Path, PathBuf};

both_backends!(an_agent_enrolls_with_a_site_token_and_a_clone_is_flagged);

/// The agent binary, built beside this test by `cargo nextest run --workspace`.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("ringfence-agent");
    if bin.is_file() {
        return Some(bin);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing: build the workspace (cargo build --workspace)", bin.display());
    }
    eprintln!("SKIPPED: {} is missing; run `cargo build -p ringfence-agent` first", bin.display());
    None
}

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
    tokio::process::Command::new(bin)
        .args(["enroll", "--server", &app.base, "--token", token])
        .arg("--root")
        .arg(root)
        .arg("--config-dir")
        .arg(config)
        .output()
        .await
        .unwrap()
}

async fn an_agent_enrolls_with_a_site_token_and_a_clone_is_flagged(app: TestApp) {
    let Some(bin) = agent_binary() else { return };
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
    assert!(tech.get(&format!("/api/v1/devices/{device_id}/agent")).await.body["clone_of"].is_null());

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
