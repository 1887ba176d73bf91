//! Browser extensions read from real profile folders laid out as Chrome, Edge and Firefox
//! lay them out, through the agent binary's `inventory --root`.
#![cfg(target_os = "linux")]

use serde_json::{Value, json};
use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn chromium_extension(profile: &Path, id: &str, version: &str, manifest: Value) {
    write(&profile.join("Extensions").join(id).join(version).join("manifest.json"), &manifest.to_string());
}

#[test]
fn extensions_of_every_profile_and_browser_are_inventoried_with_their_permissions() {
    let root = std::env::temp_dir().join(format!("ringfence-extensions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(
        &root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );

    // Chrome, default profile: uBlock Origin with a localized name, in two versions side by
    // side (an update in progress: the newest counts), and a manifest that is not JSON.
    let chrome = root.join("home/amy/.config/google-chrome/Default");
    let ublock = "cjpalhdlnbpafiamejdnhcphjbkeiagm";
    chromium_extension(
        &chrome,
        ublock,
        "1.57.2_0",
        json!({"name": "__MSG_extName__", "version": "1.57.2", "default_locale": "en"}),
    );
    chromium_extension(
        &chrome,
        ublock,
        "1.58.0_0",
        json!({
            "name": "__MSG_extName__", "version": "1.58.0", "default_locale": "en",
            "permissions": ["storage", "webRequest"], "host_permissions": ["<all_urls>"]
        }),
    );
    write(
        &chrome.join("Extensions").join(ublock).join("1.58.0_0/_locales/en/messages.json"),
        r#"{"extName": {"message": "uBlock Origin", "description": "extension name"}}"#,
    );
    write(&chrome.join("Extensions/brokenbrokenbrokenbrokenbrokenbr/1.0_0/manifest.json"), "{ not json");
    // Edge, a second profile.
    let edge = root.join("home/amy/.config/microsoft-edge/Profile 1");
    chromium_extension(
        &edge,
        "odfafepnkmbhccpbejgmiehpchacaeak",
        "1.62.0_0",
        json!({
            "name": "uBlock Origin", "version": "1.62.0", "permissions": ["tabs"]
        }),
    );
    // Firefox: a user-installed extension, a theme and a built-in add-on (neither counts).
    write(
        &root.join("root/.mozilla/firefox/abcd1234.default-release/extensions.json"),
        &json!({"schemaVersion": 36, "addons": [
            {"id": "uBlock0@raymondhill.net", "type": "extension", "version": "1.61.2", "location": "app-profile",
             "defaultLocale": {"name": "uBlock Origin"},
             "userPermissions": {"permissions": ["dns", "storage"], "origins": ["<all_urls>"]}},
            {"id": "firefox-compact-dark@mozilla.org", "type": "theme", "version": "1.3", "location": "app-builtin"},
            {"id": "formautofill@mozilla.org", "type": "extension", "version": "1.0.1", "location": "app-builtin"}
        ]})
        .to_string(),
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringfence-agent"))
        .args(["inventory", "--format", "json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items: Vec<(String, String, String)> = report["inventory"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "extension")
        .map(|i| {
            (
                i["manager"].as_str().unwrap().into(),
                i["name"].as_str().unwrap().into(),
                i["version"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("chrome-extension", format!("uBlock Origin ({ublock})"), "1.58.0"),
        ("edge-extension", "uBlock Origin (odfafepnkmbhccpbejgmiehpchacaeak)".to_string(), "1.62.0"),
        ("firefox-extension", "uBlock Origin (uBlock0@raymondhill.net)".to_string(), "1.61.2"),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(m, n, v)| (m.to_string(), n.clone(), v.to_string())).collect();
    assert_eq!(items, want);
    let details = report["extensions"].as_array().unwrap();
    let chrome_ublock = details.iter().find(|e| e["browser"] == "chrome").unwrap();
    assert_eq!(chrome_ublock["permissions"], json!(["storage", "webRequest", "<all_urls>"]));
    assert_eq!(chrome_ublock["profile"], "amy/chrome/Default");
    let firefox = details.iter().find(|e| e["browser"] == "firefox").unwrap();
    assert_eq!(firefox["permissions"], json!(["dns", "storage", "<all_urls>"]));
    assert_eq!(firefox["profile"], "root/firefox/abcd1234.default-release");
    // The broken manifest is reported; the rest still counts.
    let collector =
        report["collectors"].as_array().unwrap().iter().find(|c| c["collector"] == "extensions").unwrap();
    assert_eq!(collector["outcome"], "error");
    assert_eq!(collector["items"], 3);
    assert!(collector["detail"].as_str().unwrap().contains("brokenbroken"), "{collector}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_machine_without_browsers_has_no_extensions_and_no_error() {
    let root = std::env::temp_dir().join(format!("ringfence-no-browsers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("home/bob")).unwrap();
    let (found, errors) = ringfence_agent::extensions::collect(&[root.join("home/bob")], false);
    assert!(found.is_empty() && errors.is_empty());
    let _ = std::fs::remove_dir_all(&root);
}
