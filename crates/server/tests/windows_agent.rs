//! The Windows agent for real, under Wine: `ringfence-agent.exe` (built for
//! x86_64-pc-windows-gnu by `.ci/run`) reads Uninstall keys written with `wine reg add` in
//! HKLM's 64- and 32-bit views and in a user's hive under HKU, through the Windows API; then
//! it enrolls against this Linux server, reports, and its programs show on the device page.
//!
//! What Wine cannot run (Windows Update, winget, PowerShell, WMI) is tested on recorded
//! output in the agent's own tests. Skipped with a message where Wine or the Windows build
//! is missing; in CI both must be there.

mod common;

use common::{Backend, TestApp};
use serde_json::{Value, json};
use std::path::PathBuf;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Windows agent and the Wine runner, or `None` (skip) outside CI.
fn windows_agent() -> Option<(PathBuf, PathBuf)> {
    let exe = std::env::var_os("RINGFENCE_WINDOWS_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/x86_64-pc-windows-gnu/debug/ringfence-agent.exe"));
    let runner = workspace().join("packaging/windows/wine-run");
    let wine = std::process::Command::new("wine").arg("--version").output().is_ok();
    if exe.is_file() && wine {
        return Some((exe, runner));
    }
    let why = if wine {
        format!(
            "{} is missing (cargo build -p ringfence-agent --target x86_64-pc-windows-gnu)",
            exe.display()
        )
    } else {
        "wine is not installed".to_string()
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}: CI runs the Windows agent under Wine (.ci/run installs both)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

struct Wine {
    runner: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    /// Makes the prefix and keeps one Wine server running for it. Started with its output
    /// discarded: a Wine server started by a command whose output is read holds that pipe
    /// open for seconds after the command ends.
    async fn start(runner: PathBuf, prefix: PathBuf) -> Wine {
        let wine = Wine { runner, prefix };
        let quiet = |cmd: &mut tokio::process::Command| {
            cmd.env("WINEPREFIX", &wine.prefix)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        };
        let mut init = tokio::process::Command::new(&wine.runner);
        init.args(["reg", "query", r"HKLM\Software"]);
        quiet(&mut init);
        init.status().await.unwrap();
        let mut server = tokio::process::Command::new("wineserver");
        server.arg("-p");
        quiet(&mut server);
        server.status().await.unwrap();
        wine
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        let out = tokio::process::Command::new(&self.runner)
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success() || args.first() != Some(&"reg"),
            "wine {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Ends the prefix's processes (the service among them).
    async fn stop(&self) {
        let _ = tokio::process::Command::new("wineserver")
            .arg("-k")
            .env("WINEPREFIX", &self.prefix)
            .status()
            .await;
    }

    /// `wine reg add KEY /v NAME /t TYPE /d DATA /f` in the given view.
    async fn set(&self, key: &str, view: &str, values: &[(&str, &str, &str)]) {
        for (name, ty, data) in values {
            self.run(&["reg", "add", key, "/v", name, "/t", ty, "/d", data, "/f", view]).await;
        }
    }
}

const UNINSTALL: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";
const USER_SID: &str = "S-1-5-21-0-0-0-1000";

async fn prepare(wine: &Wine) {
    let sz = "REG_SZ";
    let dw = "REG_DWORD";
    // 64-bit view: an MSI (its key is the product code) and a component that is no program.
    wine.set(
        &format!(r"{UNINSTALL}\{{23170F69-40C1-2702-2301-000001000000}}"),
        "/reg:64",
        &[
            ("DisplayName", sz, "7-Zip 23.01 (x64 edition)"),
            ("DisplayVersion", sz, "23.01.00.0"),
            ("Publisher", sz, "Igor Pavlov"),
            ("InstallDate", sz, "20240311"),
            ("UninstallString", sz, "MsiExec.exe /I{23170F69-40C1-2702-2301-000001000000}"),
            ("WindowsInstaller", dw, "1"),
        ],
    )
    .await;
    wine.set(
        &format!(r"{UNINSTALL}\VCRuntimeAdditional"),
        "/reg:64",
        &[
            ("DisplayName", sz, "Microsoft Visual C++ 2022 X64 Additional Runtime"),
            ("DisplayVersion", sz, "14.38.33130"),
            ("SystemComponent", dw, "1"),
        ],
    )
    .await;
    // 32-bit view (WOW6432Node): an EXE installer, and a part of another program.
    wine.set(
        &format!(r"{UNINSTALL}\WinRAR archiver"),
        "/reg:32",
        &[
            ("DisplayName", sz, "WinRAR 6.22 (32-bit)"),
            ("DisplayVersion", sz, "6.22.0"),
            ("Publisher", sz, "win.rar GmbH"),
            ("UninstallString", sz, r"C:\Program Files (x86)\WinRAR\uninstall.exe"),
        ],
    )
    .await;
    wine.set(
        &format!(r"{UNINSTALL}\OfficeProofing"),
        "/reg:32",
        &[
            ("DisplayName", sz, "Microsoft Office Proofing (English)"),
            ("ParentKeyName", sz, "Office16.PROPLUS"),
        ],
    )
    .await;
    // A user's own install, in their hive: invisible to HKCU of a service running as SYSTEM.
    wine.set(
        &format!(r"HKU\{USER_SID}\Software\Microsoft\Windows\CurrentVersion\Uninstall\ZoomUMX"),
        "/reg:64",
        &[
            ("DisplayName", sz, "Zoom Workplace (64-bit)"),
            ("DisplayVersion", sz, "6.1.1 (43322)"),
            ("Publisher", sz, "Zoom Video Communications, Inc."),
            (
                "QuietUninstallString",
                sz,
                r#""C:\Users\amy\AppData\Roaming\Zoom\uninstall\Installer.exe" /uninstall /silent"#,
            ),
        ],
    )
    .await;
    // Windows 11 23H2 at build 22631.3155.
    wine.set(
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
        "/reg:64",
        &[
            ("CurrentMajorVersionNumber", dw, "10"),
            ("CurrentMinorVersionNumber", dw, "0"),
            ("CurrentBuildNumber", sz, "22631"),
            ("UBR", dw, "3155"),
            ("ProductName", sz, "Windows 10 Pro"),
            ("DisplayVersion", sz, "23H2"),
            ("EditionID", sz, "Professional"),
            ("InstallationType", sz, "Client"),
        ],
    )
    .await;
}

fn program<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["display_name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {}", report["programs"]))
}

#[tokio::test]
async fn the_windows_agent_reads_the_registry_under_wine_and_reports_to_a_linux_server() {
    let Some((exe, runner)) = windows_agent() else { return };
    let tmp = ringfence_store::testing::TempDir::new("ringfence-wine");
    let wine = Wine::start(runner, tmp.0.join("prefix")).await;
    prepare(&wine).await;
    let exe_arg = exe.to_str().unwrap();

    let out = wine.run(&[exe_arg, "inventory", "--format", "json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["inventory"]["os"]["version"], "10.0.22631.3155");
    assert_eq!(report["inventory"]["os"]["name"], "Windows 11 Pro 23H2");
    let items = report["inventory"]["items"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (i["name"].as_str().unwrap(), i["version"].as_str().unwrap(), i["vendor"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("7-Zip 23.01 (x64 edition)", "23.01.00.0", "Igor Pavlov"),
            ("WinRAR 6.22 (32-bit)", "6.22.0", "win.rar GmbH"),
            ("Zoom Workplace (64-bit)", "6.1.1 (43322)", "Zoom Video Communications, Inc."),
        ],
        "every program of both views and the user's hive, and nothing filtered out"
    );
    let seven = program(&report, "7-Zip 23.01 (x64 edition)");
    assert_eq!(seven["scope"], "machine");
    assert_eq!(seven["product_code"], "{23170F69-40C1-2702-2301-000001000000}");
    assert_eq!(seven["install_date"], "20240311");
    assert_eq!(program(&report, "WinRAR 6.22 (32-bit)")["scope"], "machine (32-bit)");
    assert!(program(&report, "WinRAR 6.22 (32-bit)")["product_code"].is_null(), "an EXE install has none");
    let zoom = program(&report, "Zoom Workplace (64-bit)");
    assert_eq!(zoom["scope"], format!("user {USER_SID}"));
    assert!(zoom["quiet_uninstall_string"].as_str().unwrap().ends_with("/uninstall /silent"));
    let programs =
        report["collectors"].as_array().unwrap().iter().find(|c| c["collector"] == "programs").unwrap();
    assert_eq!((programs["outcome"].as_str(), programs["items"].as_u64()), (Some("ok"), Some(3)));

    // Enrolled against a Linux server, the same programs reach the device page.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let tech = app.token("tech@a").await;
    let r = tech
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "Wine"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let config = r"C:\ringfence-test";
    let out = wine
        .run(&[exe_arg, "enroll", "--server", &app.base, "--token", &secret, "--config-dir", config])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let device_id = stdout.split_whitespace().nth(3).unwrap().to_string();
    let device = tech.get(&format!("/api/v1/devices/{device_id}")).await;
    assert_eq!(device.status, 200, "{stdout}: {}", device.body);
    assert_eq!(
        device.body["os"], "Windows 11 Pro 23H2",
        "the OS named at enrollment comes from the registry"
    );
    let out = wine.run(&[exe_arg, "run", "--once", "--config-dir", config]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let software = tech.get(&format!("/api/v1/devices/{device_id}/inventory")).await;
    assert_eq!(software.status, 200, "{}", software.body);
    let text = software.body.to_string();
    for name in ["7-Zip 23.01 (x64 edition)", "WinRAR 6.22 (32-bit)", "Zoom Workplace (64-bit)"] {
        assert!(text.contains(name), "{name} not in {text}");
    }
    let session = app.session("tech@a").await;
    let page = session.client.get(app.url(&format!("/devices/{device_id}"))).send().await.unwrap();
    let html = page.text().await.unwrap();
    for name in [
        "7-Zip 23.01 (x64 edition)",
        "WinRAR 6.22 (32-bit)",
        "Zoom Workplace (64-bit)",
        "Windows 11 Pro 23H2",
    ] {
        assert!(html.contains(name), "{name} is not on the device page");
    }
}

/// The MSI `.ci/run` builds with wixl, or `None` (skip) outside CI.
fn agent_msi() -> Option<PathBuf> {
    let msi = std::env::var_os("RINGFENCE_AGENT_MSI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/windows/ringfence-agent.msi"));
    let tools = std::process::Command::new("msiinfo").arg("--version").output().is_ok();
    if msi.is_file() && tools {
        return Some(msi);
    }
    let why = format!(
        "{} or msiinfo is missing (packaging/windows/build-msi.sh builds it; msitools has msiinfo)",
        msi.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}: CI builds and installs the MSI");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn msi_table(msi: &std::path::Path, table: &str) -> Vec<Vec<String>> {
    let out = std::process::Command::new("msiinfo").arg("export").arg(msi).arg(table).output().unwrap();
    assert!(out.status.success(), "msiinfo export {table}: {}", String::from_utf8_lossy(&out.stderr));
    // Three header lines: column names, types, the table name and its keys.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(3)
        .map(|l| l.trim_end_matches('\r').split('\t').map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn the_msi_installs_the_service_and_it_enrolls_with_the_properties_given_to_msiexec() {
    let Some(msi) = agent_msi() else { return };
    let Some((_, runner)) = windows_agent() else { return };

    // What msiinfo sees: the program, the service and its arguments, the public properties.
    let files = msi_table(&msi, "File");
    assert!(files.iter().any(|r| r[2] == "ringfence-agent.exe"), "{files:?}");
    let services = msi_table(&msi, "ServiceInstall");
    assert_eq!(services.len(), 1, "{services:?}");
    let s = &services[0];
    assert_eq!(
        (s[1].as_str(), s[4].as_str(), s[10].as_str()),
        ("ringfence-agent", "2", "service run"),
        "{s:?}"
    );
    assert!(s[8].is_empty(), "the service runs as LocalSystem: {s:?}");
    let registry = msi_table(&msi, "Registry");
    let value = |name: &str| registry.iter().find(|r| r[3] == name).map(|r| (r[2].clone(), r[4].clone()));
    assert_eq!(value("ServerUrl"), Some((r"SOFTWARE\ringfence\Agent\".into(), "[SERVER_URL]".into())));
    assert_eq!(value("EnrollToken"), Some((r"SOFTWARE\ringfence\Agent\".into(), "[ENROLL_TOKEN]".into())));
    let properties = msi_table(&msi, "Property");
    let property =
        |name: &str| properties.iter().find(|r| r[0] == name).map(|r| r[1].clone()).unwrap_or_default();
    assert!(property("SecureCustomProperties").split(';').any(|p| p == "SERVER_URL"));
    assert!(property("SecureCustomProperties").split(';').any(|p| p == "ENROLL_TOKEN"));
    assert_eq!(property("MsiHiddenProperties"), "ENROLL_TOKEN", "the token stays out of the install log");
    assert_eq!(property("ALLUSERS"), "1", "a per-machine install");

    // A silent install under Wine, as an RMM would run it.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let tech = app.token("tech@a").await;
    let r = tech
        .send("POST", "/api/v1/enrollment-tokens", Some(json!({"site_id": app.a1.site.id, "name": "MSI"})))
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let tmp = ringfence_store::testing::TempDir::new("ringfence-wine-msi");
    let wine = Wine::start(runner, tmp.0.join("prefix")).await;
    let out = wine
        .run(&[
            "msiexec",
            "/i",
            msi.to_str().unwrap(),
            "/qn",
            &format!("SERVER_URL={}", app.base),
            &format!("ENROLL_TOKEN={secret}"),
        ])
        .await;
    assert!(out.status.success(), "msiexec: {}", String::from_utf8_lossy(&out.stderr));
    assert!(wine.prefix.join("drive_c/Program Files/ringfence/ringfence-agent.exe").is_file());
    let query = wine.run(&["reg", "query", r"HKLM\System\CurrentControlSet\Services\ringfence-agent"]).await;
    let service = String::from_utf8_lossy(&query.stdout).to_string();
    assert!(service.contains("ringfence-agent.exe") && service.contains("service run"), "{service}");
    assert!(service.contains("LocalSystem"), "{service}");

    // The service started at install, enrolled with the properties and reported.
    let uses = || async {
        let tokens = tech.get("/api/v1/enrollment-tokens").await.body;
        tokens.as_array().unwrap().iter().find(|t| t["name"] == "MSI").map(|t| t["uses"].clone())
    };
    for _ in 0..60 {
        if uses().await == Some(json!(1)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(uses().await, Some(json!(1)), "the service enrolled with ENROLL_TOKEN");
    // The token is forgotten once used; the server address stays.
    let query = wine.run(&["reg", "query", r"HKLM\SOFTWARE\ringfence\Agent", "/reg:64"]).await;
    let settings = String::from_utf8_lossy(&query.stdout).to_string();
    assert!(settings.contains("ServerUrl") && !settings.contains("EnrollToken"), "{settings}");
    wine.stop().await;
}
