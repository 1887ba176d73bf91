//! The `ringfence` binary as a user runs it: the demo, `admin`, `evidence verify` with a
//! tampered database (SQLite and PostgreSQL), bad configuration and an unreachable database.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

fn ringfence() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringfence"));
    for var in [
        "RINGFENCE_DATA_DIR",
        "RINGFENCE_DATABASE_URL",
        "RINGFENCE_CONFIG",
        "RINGFENCE_LISTEN",
        "RINGFENCE_PARTNER",
    ] {
        c.env_remove(var);
    }
    c.env("RINGFENCE_LOG", "warn");
    c
}

/// The address a started `serve` prints on its first line.
fn serve_url(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches('/').to_owned()
}

fn run(args: &[&str]) -> Output {
    ringfence().args(args).output().expect("ringfence runs")
}

fn run_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = ringfence()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn temp() -> ringfence_store::testing::TempDir {
    ringfence_store::testing::TempDir::new("ringfence-cli")
}

#[test]
fn the_demo_seeds_a_verifiable_msp() {
    let dir = temp();
    let d = dir.0.to_str().unwrap();
    let out = run(&["demo", "--data-dir", d, "--seed-only"]);
    assert!(out.status.success(), "{}", text(&out));
    let banner = text(&out);
    assert!(banner.contains("Demo MSP with 3 organizations"), "{banner}");
    // 60 endpoints and 7 network appliances: what the Devices page lists.
    assert!(banner.contains("67 devices"), "{banner}");
    for login in [
        "admin@demo-msp.example",
        "tech@demo-msp.example",
        "auditor@demo-msp.example",
        "viewer@hartleymoss.example",
    ] {
        assert!(banner.contains(login), "{banner}");
    }
    let db = format!("sqlite:{d}/demo.db");
    let out = run(&["evidence", "verify", "--database", &db]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("evidence log intact: 1 chain(s)"), "{}", text(&out));
    // A second demo start gets a fresh database, not a duplicate partner.
    let again = run(&["demo", "--data-dir", d, "--seed-only"]);
    assert!(again.status.success(), "{}", text(&again));
    let partners = run(&["admin", "--database", &db, "--format", "json", "partner", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&partners.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// Seeds through the CLI, tampers with one stored event, and expects `evidence verify` to
/// name it and exit 1.
async fn tamper_and_verify(db: &str, exec: impl AsyncFn(&str)) {
    let out = run(&["admin", "--database", db, "partner", "create", "Tamper MSP"]);
    assert!(out.status.success(), "{}", text(&out));
    for org in ["Org One", "Org Two", "Org Three", "Org Four"] {
        let out = run(&["admin", "--database", db, "--partner", "Tamper MSP", "org", "create", org]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let ok = run(&["evidence", "verify", "--database", db, "--format", "json"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["chains"][0]["events"], 5);

    exec(r#"UPDATE evidence_events SET payload = '{"after":{"name":"Forged"}}' WHERE seq = 3"#).await;
    let broken = run(&["evidence", "verify", "--database", db]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(text(&broken).contains("event 3 was altered"), "{}", text(&broken));
    let json = run(&["evidence", "verify", "--database", db, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["chains"][0]["problem"].as_str().unwrap().contains("event 3"));

    // A removed event is named too, in its own chain, and the first chain stays reported.
    let out = run(&["admin", "--database", db, "partner", "create", "Second MSP"]);
    assert!(out.status.success(), "{}", text(&out));
    for org in ["Alpha", "Beta"] {
        let out = run(&["admin", "--database", db, "--partner", "Second MSP", "org", "create", org]);
        assert!(out.status.success(), "{}", text(&out));
    }
    exec("DELETE FROM evidence_events WHERE seq = 2 AND action = 'organization.create' AND payload LIKE '%Alpha%'").await;
    let removed = run(&["evidence", "verify", "--database", db]);
    assert_eq!(removed.status.code(), Some(1));
    let report = text(&removed);
    assert!(report.contains("expected event 2 but found 3"), "{report}");
    assert!(report.contains("event 3 was altered"), "{report}");
    assert!(report.contains("2 of 2 chain(s) fail verification"), "{report}");
}

#[tokio::test]
async fn tampering_is_named_on_sqlite() {
    let dir = temp();
    let path = dir.0.join("ringfence.db");
    let db = format!("sqlite:{}", path.display());
    tamper_and_verify(&db, async |sql: &str| {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn tampering_is_named_on_postgres() {
    let Some(url) = ringfence_store::testing::fresh_postgres_url().await else { return };
    tamper_and_verify(&url, async |sql: &str| {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
    })
    .await;
}

#[test]
fn admin_manages_the_tenancy_tree_and_refuses_bad_input() {
    let dir = temp();
    let d = dir.0.to_str().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--data-dir", d, "--partner", "Acme MSP", "--format", "json"];
        all.extend_from_slice(args);
        run(&all)
    };
    let out = run(&["admin", "--data-dir", d, "partner", "create", "Acme MSP"]);
    assert!(out.status.success(), "{}", text(&out));
    let org = admin(&["org", "create", "Bakery", "--notes", "opens at 05:00"]);
    assert!(org.status.success(), "{}", text(&org));
    let org: serde_json::Value = serde_json::from_slice(&org.stdout).unwrap();
    let org_id = org["id"].as_str().unwrap();

    let bad_tz = admin(&["site", "create", "--org", org_id, "--name", "Shop", "--tz", "Mars/Base"]);
    assert_eq!(bad_tz.status.code(), Some(2), "{}", text(&bad_tz));
    assert!(
        text(&bad_tz).contains("time_zone: 'Mars/Base' is not a known IANA time zone"),
        "{}",
        text(&bad_tz)
    );

    let site = admin(&["site", "create", "--org", org_id, "--name", "Shop", "--tz", "Europe/Paris"]);
    assert!(site.status.success(), "{}", text(&site));
    let site: serde_json::Value = serde_json::from_slice(&site.stdout).unwrap();
    let site_id = site["id"].as_str().unwrap();
    let dup = admin(&["site", "create", "--org", org_id, "--name", "Shop", "--tz", "UTC"]);
    assert_eq!(dup.status.code(), Some(4), "a conflict exits 4: {}", text(&dup));

    let dev = admin(&[
        "device",
        "create",
        "--site",
        site_id,
        "--hostname",
        "till-1",
        "--role",
        "kiosk",
        "--criticality",
        "high",
    ]);
    assert!(dev.status.success(), "{}", text(&dev));
    let dev: serde_json::Value = serde_json::from_slice(&dev.stdout).unwrap();
    assert_eq!(dev["effective_time_zone"], "Europe/Paris");
    let bad_role =
        admin(&["device", "create", "--site", site_id, "--hostname", "till-2", "--role", "toaster"]);
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(text(&bad_role).contains("use one of workstation"), "{}", text(&bad_role));

    let list = admin(&["device", "list", "--search", "TILL"]);
    let page: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(page["total"], 1);
    let missing = admin(&["org", "show", "01a00000-0000-7000-8000-000000000000"]);
    assert_eq!(missing.status.code(), Some(3), "not found exits 3");

    let user = run_stdin(
        &[
            "admin",
            "--data-dir",
            d,
            "--partner",
            "Acme MSP",
            "user",
            "create",
            "--username",
            "ops@acme",
            "--role",
            "technician",
        ],
        "a long enough password\n",
    );
    assert!(user.status.success(), "{}", text(&user));
    let token = admin(&["token", "create", "--user", "ops@acme", "--name", "nightly"]);
    assert!(token.status.success(), "{}", text(&token));
    let token: serde_json::Value = serde_json::from_slice(&token.stdout).unwrap();
    assert!(token["secret"].as_str().unwrap().starts_with("rft_"));

    let refuse = run(&["admin", "--data-dir", d, "--partner", "Acme MSP", "partner", "delete"]);
    assert_eq!(refuse.status.code(), Some(2));
    assert!(text(&refuse).contains("--yes"));
    let no_partner = run(&["admin", "--data-dir", d, "org", "list"]);
    assert_eq!(no_partner.status.code(), Some(2));
    assert!(text(&no_partner).contains("--partner"));

    let verify = run(&["evidence", "verify", "--data-dir", d]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let out = run(&["serve", "--database", "postgres://nobody@127.0.0.1:1/none", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("cannot connect to PostgreSQL at postgres://nobody")
            && msg.contains("check that the server is running"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
}

#[test]
fn bad_configuration_is_named() {
    let dir = temp();
    let cfg = dir.0.join("ringfence.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\ndatabse_url = \"x\"\n").unwrap();
    let out = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("databse_url"), "{}", text(&out));
    let out = run(&["serve", "--listen", "nowhere", "--data-dir", dir.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("ADDR:PORT"), "{}", text(&out));
}

#[tokio::test]
async fn serve_applies_the_config_file_and_answers() {
    let dir = temp();
    let cfg = dir.0.join("ringfence.toml");
    std::fs::write(
        &cfg,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n", dir.0.join("data").display()),
    )
    .unwrap();
    let mut child = ringfence()
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = serve_url(&mut child);
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    let status = ready.status();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200, "{url}");
    assert!(
        dir.0.join("data").join("ringfence.db").exists(),
        "the database is created in data_dir on first start"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp();
    let data = dir.0.join("data");
    // An installation made under umask 022: the folder 0755, a leftover file 0644.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("notes.txt"), "x").unwrap();
    std::fs::set_permissions(data.join("notes.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec '{}' serve --listen 127.0.0.1:0 --feeds-sync false --data-dir '{}'",
            env!("CARGO_BIN_EXE_ringfence"),
            data.display()
        ))
        .env("RINGFENCE_LOG", "warn")
        .env_remove("RINGFENCE_DATABASE_URL")
        .env_remove("RINGFENCE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = serve_url(&mut child);
    assert_eq!(reqwest::get(format!("{url}/readyz")).await.unwrap().status(), 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the folder");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        files.push(p.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    files.sort();
    for f in ["notes.txt", "ringfence.db", "ringfence.db-shm", "ringfence.db-wal", "secret.key"] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("readable by other users"), "the tightening is logged: {log}");
}

#[cfg(unix)]
#[tokio::test]
async fn serve_stops_cleanly_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let dir = temp();
        let mut child = ringfence()
            .args(["serve", "--listen", "127.0.0.1:0", "--feeds-sync", "false", "--data-dir"])
            .arg(dir.0.join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = serve_url(&mut child);
        assert_eq!(reqwest::get(format!("{url}/readyz")).await.unwrap().status(), 200);
        let killed = Command::new("kill").arg(signal).arg(child.id().to_string()).status().unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(25),
                "still running 25 s after {signal}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(status.code(), Some(0), "{signal} is a clean stop, exit 0 (was {status:?})");
        assert!(reqwest::get(format!("{url}/readyz")).await.is_err(), "nothing listens after the stop");
    }
}

#[test]
fn version_compare_prints_orderings_and_names_invalid_lines() {
    let out = run(&["version", "compare", "--scheme", "deb", "1:2.0~rc1-1", "1:2.0-1"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), "-1"));
    let out = run(&["version", "compare", "--scheme", "windows", "10.0.19045.4291", "10.0.19045.4170"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let out = run_stdin(
        &["version", "compare", "--scheme", "rpm", "--stdin"],
        "1.0^git1\t1.0\n1.0~rc1\t1.0\n2:1.0\t1:9.9\n1.0\t1.0\nno tab here\n",
    );
    assert_eq!(out.status.code(), Some(1), "an invalid line makes the exit code 1");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[..4], ["1", "-1", "1", "0"]);
    assert!(lines[4].starts_with("error: "), "{lines:?}");
    let out = run(&["version", "compare", "--scheme", "deb", "1.0-", "1.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("revision number is empty"), "{}", text(&out));
    let out = run(&["version", "compare", "--scheme", "zip", "1", "2"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cpe_compare_prints_relations() {
    let ie = "cpe:2.3:a:microsoft:internet_explorer:8.0.6001:beta:*:*:*:*:*:*";
    let out = run(&["cpe", "compare", "cpe:2.3:a:microsoft:internet_explorer:*:*:*:*:*:*:*:*", ie]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SUPERSET");
    let input = format!(
        "{ie}\t{ie}\n{ie}\tcpe:2.3:a:microsoft:internet_explorer:*:*:*:*:*:*:*:*\ncpe:/a:microsoft:internet_explorer:9.0\t{ie}\n{ie}\tcpe:2.3:a:microsoft:internet_explorer:8.*:*:*:*:*:*:*:*\nnot a cpe\t{ie}\n"
    );
    let out = run_stdin(&["cpe", "compare", "--stdin"], &input);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[..4], ["EQUAL", "SUBSET", "DISJOINT", "UNDEFINED"]);
    assert!(lines[4].starts_with("error: 'not a cpe' is not a CPE name"), "{lines:?}");
}

#[test]
fn admin_creates_lists_and_revokes_enrollment_tokens() {
    let dir = temp();
    let d = dir.0.to_str().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--data-dir", d, "--partner", "Enroll MSP", "--format", "json"];
        all.extend_from_slice(args);
        run(&all)
    };
    assert!(run(&["admin", "--data-dir", d, "partner", "create", "Enroll MSP"]).status.success());
    let org: serde_json::Value = serde_json::from_slice(&admin(&["org", "create", "Clinic"]).stdout).unwrap();
    let site = admin(&[
        "site",
        "create",
        "--org",
        org["id"].as_str().unwrap(),
        "--name",
        "Denver",
        "--tz",
        "America/Denver",
    ]);
    let site: serde_json::Value = serde_json::from_slice(&site.stdout).unwrap();
    let site_id = site["id"].as_str().unwrap();
    let out = admin(&[
        "enrollment-token",
        "create",
        "--site",
        site_id,
        "--name",
        "rollout",
        "--max-uses",
        "5",
        "--expires-in-hours",
        "48",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("rfe_"));
    let id = created["token"]["id"].as_str().unwrap();
    let list: serde_json::Value =
        serde_json::from_slice(&admin(&["enrollment-token", "list"]).stdout).unwrap();
    assert_eq!(list[0]["max_uses"], 5);
    assert_eq!(list[0]["uses"], 0);
    let revoked: serde_json::Value =
        serde_json::from_slice(&admin(&["enrollment-token", "revoke", id]).stdout).unwrap();
    assert!(revoked["revoked_at"].is_string());
    let bad =
        admin(&["enrollment-token", "create", "--site", site_id, "--name", "x", "--expires-in-hours", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("expires_in_hours"), "{}", text(&bad));
}

#[test]
fn window_expand_prints_utc_occurrences_and_names_bad_parts() {
    let out = run(&[
        "window",
        "expand",
        "--tz",
        "America/New_York",
        "--dtstart",
        "2026-03-01T02:30",
        "--rrule",
        "FREQ=DAILY",
        "--duration",
        "PT3H",
        "--after",
        "2026-03-08T00:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-03-08T07:30:00Z 2026-03-08T10:30:00Z\n2026-03-09T06:30:00Z 2026-03-09T09:30:00Z\n"
    );
    let base = |tz: &'static str, rrule: &'static str| {
        run(&[
            "window",
            "expand",
            "--tz",
            tz,
            "--dtstart",
            "2026-03-01T02:30",
            "--rrule",
            rrule,
            "--duration",
            "PT3H",
            "--after",
            "2026-03-08T00:00:00Z",
        ])
    };
    let out = base("Atlantis/Capital", "FREQ=DAILY");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("Atlantis/Capital"), "{}", text(&out));
    let out = base("UTC", "FREQ=DAILY;BYWEEKNO=3");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("BYWEEKNO"), "{}", text(&out));
}

#[test]
fn window_expand_refuses_bad_times_and_says_which_flag() {
    let expand = |dtstart: &'static str, after: &'static str, exdate: &'static str| {
        run(&[
            "window",
            "expand",
            "--tz",
            "UTC",
            "--dtstart",
            dtstart,
            "--rrule",
            "FREQ=DAILY",
            "--duration",
            "PT1H",
            "--after",
            after,
            "--exdate",
            exdate,
        ])
    };
    for (out, flag) in [
        (expand("2026-03-01", "2026-03-01T00:00:00Z", "2026-03-02T00:00"), "--dtstart"),
        (expand("2026-03-01T02:30Z", "2026-03-01T00:00:00Z", "2026-03-02T00:00"), "--dtstart"),
        (expand("2026-03-01T02:30", "yesterday", "2026-03-02T00:00"), "--after"),
        (expand("2026-03-01T02:30", "2026-03-01T00:00:00Z", "2026-02-30T00:00"), "--exdate"),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(flag), "{flag}: {}", text(&out));
        assert!(out.stdout.is_empty(), "nothing printed on bad input");
    }
}

/// A seeded demo database and its partner, for `ringfence admin` commands.
struct Demo {
    _dir: ringfence_store::testing::TempDir,
    db: String,
    partner: String,
}

impl Demo {
    fn seed() -> Demo {
        let dir = temp();
        let d = dir.0.to_str().unwrap().to_string();
        assert!(run(&["demo", "--data-dir", &d, "--seed-only"]).status.success());
        let db = format!("sqlite:{d}/demo.db");
        let partners = run(&["admin", "--database", &db, "--format", "json", "partner", "list"]);
        let list: serde_json::Value = serde_json::from_slice(&partners.stdout).unwrap();
        let partner = list[0]["id"].as_str().unwrap().to_string();
        Demo { _dir: dir, db, partner }
    }

    /// `ringfence evidence export` of one organization's last `days` days, without PDF.
    fn export(&self, org: &str, days: &str, out: &str) -> Output {
        run(&[
            "evidence",
            "export",
            "--database",
            &self.db,
            "--partner",
            &self.partner,
            "--organization",
            org,
            "--days",
            days,
            "--no-pdf",
            "--out",
            out,
        ])
    }

    /// `ringfence admin --format json ARGS` on the demo's partner.
    fn admin(&self, args: &[&str]) -> Output {
        let mut all = vec!["admin", "--database", &self.db, "--partner", &self.partner, "--format", "json"];
        all.extend_from_slice(args);
        run(&all)
    }
}

/// The JSON a successful command printed.
fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn admin_works_the_remediation_queue_and_policies() {
    let demo = Demo::seed();
    let admin = |args: &[&str]| demo.admin(args);

    // The queue is ranked by risk removed and says why each entry waits.
    let queue = json(&admin(&["queue", "--limit", "100"]));
    let items = queue.as_array().unwrap();
    assert!(!items.is_empty());
    let risks: Vec<f64> = items.iter().map(|i| i["risk_removed"].as_f64().unwrap()).collect();
    let fixing: Vec<f64> = risks.iter().copied().filter(|r| *r > 0.0).collect();
    assert!(fixing.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");
    let open = items
        .iter()
        .find(|i| i["status"] == "needs_review" && i["version"].is_string())
        .expect("the demo queue has an update that needs review");
    let update = format!("{}={}", open["product"].as_str().unwrap(), open["version"].as_str().unwrap());

    // A technician's approval lands in the history and changes the queue entry.
    let made = json(&admin(&["decide", "approve", "--update", &update, "--reason", "change CHG-1042"]));
    assert_eq!(made[0]["decision"], "approved");
    let history = json(&admin(&["approvals"]));
    assert!(history.as_array().unwrap().iter().any(|a| a["reason"] == "change CHG-1042"));
    let after = json(&admin(&["queue", "--search", open["product"].as_str().unwrap()]));
    let entry = after.as_array().unwrap().iter().find(|i| i["version"] == open["version"]).unwrap();
    assert_eq!(entry["status"], "approved", "{entry}");

    // Bad input is named, and nothing is decided.
    let bad = admin(&["decide", "approve", "--update", "openssl", "--reason", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("PRODUCT=VERSION"), "{}", text(&bad));
    let bad = admin(&["policy", "create", "--name", "x", "--level", "partner", "--settings", "[1]"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("--settings must be a JSON object"), "{}", text(&bad));
    let bad =
        admin(&["policy", "create", "--name", "x", "--level", "partner", "--settings", r#"{"ring": 42}"#]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("ring"), "{}", text(&bad));
    assert_eq!(json(&admin(&["approvals"])).as_array().unwrap().len(), history.as_array().unwrap().len());

    // Policies, and one device's effective policy with provenance.
    let policies = json(&admin(&["policy", "list"]));
    assert!(policies.as_array().unwrap().len() >= 3);
    let devices = json(&admin(&["device", "list"]));
    let device = devices["items"][0]["id"].as_str().unwrap().to_string();
    let effective = json(&admin(&["policy", "effective", &device]));
    let fields = effective["fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f["field"] == "ring"), "{effective}");
    assert!(fields.iter().all(|f| f["provenance"].as_str().unwrap().contains("from ")), "{effective}");
}

#[test]
fn admin_reads_rollouts_and_rolls_back_the_demo_s_halted_update() {
    let demo = Demo::seed();
    let db = demo.db.clone();
    let admin = |args: &[&str]| demo.admin(args);

    // The demo holds a rollout in progress and one the canary gate halted.
    let rollouts = json(&admin(&["rollouts"]));
    let of = |p: &str| rollouts.as_array().unwrap().iter().find(|r| r["product"] == p).cloned().unwrap();
    let xz = of("xz-utils");
    assert_eq!(xz["status"], "halted", "{xz}");
    assert!(xz["halt"].as_str().unwrap().contains("ring 1 (canary) gate failed"), "{xz}");
    assert!(xz["rings"][1]["failed"].as_u64().unwrap() >= 1, "{xz}");
    let kb = of("Cumulative Update for Windows (KB5046617)");
    assert_eq!(kb["status"], "in_progress", "{kb}");
    assert!(kb["rings"][0]["succeeded"].as_u64().unwrap() >= 1, "{kb}");
    let failed = json(&admin(&["deployments", "--status", "failed", "--update", "xz-utils=5.4.1-1+deb12u1"]));
    let failed = failed.as_array().unwrap();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|d| d["detail"].as_str().unwrap().contains("dpkg: error processing package xz-utils"))
    );

    // A fleet-wide rollback of the halted update: every device that has it goes back.
    let r = json(&admin(&[
        "rollback",
        "--update",
        "xz-utils=5.4.1-1+deb12u1",
        "--reason",
        "postinst breaks clients",
    ]));
    assert!(r["scheduled"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["halt_id"].is_null(), "already halted by the gate: {r}");
    let rollbacks =
        json(&admin(&["deployments", "--status", "scheduled", "--update", "xz-utils=5.4.1-1+deb12u1"]));
    assert!(rollbacks.as_array().unwrap().iter().all(|d| d["kind"] == "rollback"), "{rollbacks}");

    // Bad input is named and changes nothing.
    let bad = admin(&["rollback", "--update", "xz-utils", "--reason", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let bad = admin(&["deployments", "--status", "exploded"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("status"), "{}", text(&bad));
    let bad = admin(&["holds", "--clear", "no-such-hold"]);
    assert_eq!(bad.status.code(), Some(3), "{}", text(&bad));
    let verify = run(&["evidence", "verify", "--database", &db]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn the_demo_s_evidence_bundle_verifies_offline_and_a_tampered_copy_does_not() {
    let demo = Demo::seed();
    let orgs = json(&demo.admin(&["organization", "list"]));
    let org = orgs[0]["id"].as_str().unwrap().to_string();
    let dir = temp();
    let bundle = dir.0.join("evidence.zip");
    let b = bundle.to_str().unwrap();
    let out = demo.export(&org, "180", b);
    assert!(out.status.success(), "{}", text(&out));
    // Without the MSP's key the bundle is intact but not authenticated: never exit 0.
    let unpinned = run(&["evidence", "verify", "--bundle", b]);
    assert_eq!(unpinned.status.code(), Some(7), "{}", text(&unpinned));
    assert!(text(&unpinned).contains("NOT AUTHENTICATED"), "{}", text(&unpinned));
    let key = run(&["evidence", "key", "--database", &demo.db, "--format", "json"]);
    assert!(key.status.success(), "{}", text(&key));
    let key = json(&key);
    let public = key["public_key"].as_str().unwrap().to_owned();
    let ok = run(&["evidence", "verify", "--bundle", b, "--public-key", &public, "--format", "json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let report = json(&ok);
    assert_eq!(
        (report["ok"].as_bool(), report["authenticated"].as_bool()),
        (Some(true), Some(true)),
        "{report}"
    );
    assert_eq!(report["key_id"], key["key_id"]);
    // The demo's months of history are in it: resolved findings with their deployments.
    assert!(report["rows"].as_u64().unwrap() > 50, "{report}");
    assert!(report["stubs"].as_u64().unwrap() > 0, "other clients' events are stubs: {report}");

    // One digit of one CVE id changed in the stored events.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(9).position(|w| w == b"CVE-2024-").unwrap() + 9;
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
    let tampered = dir.0.join("tampered.zip");
    std::fs::write(&tampered, &bytes).unwrap();
    let bad = run(&["evidence", "verify", "--bundle", tampered.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("PROBLEM"), "{}", text(&bad));
    // A pinned key that is not the MSP's, and a key that is not hex.
    let not_the_msp = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
    let other = run(&["evidence", "verify", "--bundle", b, "--public-key", &not_the_msp]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    let garbled = run(&["evidence", "verify", "--bundle", b, "--public-key", "xyz"]);
    assert_eq!(garbled.status.code(), Some(2), "{}", text(&garbled));
    assert!(text(&garbled).contains("--public-key"), "{}", text(&garbled));
    let missing = run(&["evidence", "verify", "--bundle", dir.0.join("none.zip").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));

    // A report written to a file; the demo already holds last month's.
    let csv = dir.0.join("report.csv");
    let made = demo.admin(&[
        "report",
        "--organization",
        &org,
        "--period",
        "last_90_days",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let body = std::fs::read_to_string(&csv).unwrap();
    assert!(body.starts_with("section,metric,value\r\n") && body.contains("summary,sla_met,"), "{body}");
    let list = json(&demo.admin(&["report"]));
    assert!(list.as_array().unwrap().len() >= 2, "{list}");
    let bad = demo.admin(&["report", "--organization", &org, "--out", "report.docx"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn admin_imports_appliances_from_csv_and_makes_a_secret_key_of_its_own() {
    let dir = temp();
    let d = dir.0.to_str().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--data-dir", d, "--partner", "Acme MSP", "--format", "json"];
        all.extend_from_slice(args);
        run(&all)
    };
    assert!(run(&["admin", "--data-dir", d, "partner", "create", "Acme MSP"]).status.success());
    let org: serde_json::Value = serde_json::from_slice(&admin(&["org", "create", "Bakery"]).stdout).unwrap();
    let org_id = org["id"].as_str().unwrap();
    let site = admin(&["site", "create", "--org", org_id, "--name", "Shop", "--tz", "Europe/Paris"]);
    assert!(site.status.success(), "{}", text(&site));

    let csv = dir.0.join("appliances.csv");
    std::fs::write(&csv, "name,vendor,model,firmware,site\nfw-shop,Fortinet,FortiGate 60F,7.0.11,Shop\nnas,Synology,DS920+,,Shop\n")
        .unwrap();
    let bad = admin(&["appliance", "import", "--organization", org_id, "--csv", csv.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("line 3"), "{}", text(&bad));
    std::fs::write(&csv, "name,vendor,model,firmware,site\nfw-shop,Fortinet,FortiGate 60F,7.0.11,Shop\n")
        .unwrap();
    let ok = admin(&["appliance", "import", "--organization", org_id, "--csv", csv.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", text(&ok));
    let list: serde_json::Value = serde_json::from_slice(&admin(&["appliance", "list"]).stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "the bad file imported nothing");
    assert_eq!(
        (list[0]["product"].as_str(), list[0]["firmware"].as_str()),
        (Some("FortiOS"), Some("7.0.11"))
    );
    assert_eq!(list[0]["source"], "manual");
    // The key that seals SNMP credentials was made beside the database, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(dir.0.join("secret.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// The job and checkpoint signing key lives in `signing.key` (0600), not in the database: an
/// earlier installation's key moves there on first start; a copy of the database without the
/// key file signs nothing; a key file that is not the database's key is refused.
#[tokio::test]
async fn the_signing_key_lives_in_a_key_file_and_a_wrong_one_is_refused() {
    use ringfence_store::AgentStore;
    let dir = temp();
    let data = dir.0.join("data");
    let d = data.to_str().unwrap().to_owned();
    let db = data.join("ringfence.db");
    // An installation of an earlier version kept the private key in the database.
    let store = ringfence_store::sqlite::SqliteStore::open(&db).await.unwrap();
    let (legacy_secret, legacy_public) =
        store.signing_key(&ringfence_engine::agents::generate_signing_key).await.unwrap();
    assert!(!legacy_secret.is_empty());
    let admin = |name: &str| run(&["admin", "--data-dir", &d, "partner", "create", name]);

    let out = admin("Key MSP");
    assert!(out.status.success(), "{}", text(&out));
    let key_file = data.join("signing.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim(), legacy_secret, "the database's key moved to the key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (private, public): (String, String) =
        sqlx::query_as("SELECT private_key, public_key FROM server_keys WHERE name = 'agent-jobs'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        (private.as_str(), public.as_str()),
        ("", legacy_public.as_str()),
        "only the public key stays"
    );

    // The database without its key file: refused, naming the key agents trust.
    let fingerprint = ringfence_engine::agents::key_fingerprint(&legacy_public);
    std::fs::rename(&key_file, data.join("signing.key.bak")).unwrap();
    let out = admin("Copy MSP");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("signing.key is missing") && text(&out).contains(&fingerprint),
        "{}",
        text(&out)
    );
    // Another key: refused, naming both.
    let (other, other_public) = ringfence_engine::agents::generate_signing_key();
    std::fs::write(&key_file, &other).unwrap();
    let out = admin("Wrong MSP");
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains(&fingerprint) && t.contains(&ringfence_engine::agents::key_fingerprint(&other_public)),
        "{t}"
    );
    // The right key file back: it works again.
    std::fs::rename(data.join("signing.key.bak"), &key_file).unwrap();
    let out = admin("Right MSP");
    assert!(out.status.success(), "{}", text(&out));
}

/// Rewrites by someone who can write the database but has no key file: a forged checkpoint,
/// events deleted under the recorded head, and the newest events cut off with the head moved
/// back behind a signed checkpoint. Database verify names each; export refuses the chain.
#[tokio::test]
async fn database_rewrites_are_caught_by_the_signed_checkpoints() {
    use sqlx::Connection;
    let demo = Demo::seed();
    let path = demo.db.trim_start_matches("sqlite:").to_owned();
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await.unwrap();
    let verify = || run(&["evidence", "verify", "--database", &demo.db]);
    assert!(verify().status.success(), "{}", text(&verify()));
    let org = json(&demo.admin(&["organization", "list"]))[0]["id"].as_str().unwrap().to_owned();
    let dir = temp();
    let out = dir.0.join("evidence.zip");
    let export = || demo.export(&org, "30", out.to_str().unwrap());

    // A checkpoint's signature altered.
    let (seq, signature): (i64, String) =
        sqlx::query_as("SELECT seq, signature FROM evidence_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let forged = format!("{}{}", if signature.starts_with('0') { '1' } else { '0' }, &signature[1..]);
    sqlx::query("UPDATE evidence_checkpoints SET signature = $1 WHERE seq = $2")
        .bind(&forged)
        .bind(seq)
        .execute(&mut c)
        .await
        .unwrap();
    let out_v = verify();
    assert_eq!(out_v.status.code(), Some(1), "{}", text(&out_v));
    assert!(text(&out_v).contains(&format!("checkpoint at event {seq} does not verify")), "{}", text(&out_v));
    let refused = export();
    assert!(!refused.status.success() && text(&refused).contains("cannot be exported"), "{}", text(&refused));
    sqlx::query("UPDATE evidence_checkpoints SET signature = $1 WHERE seq = $2")
        .bind(&signature)
        .bind(seq)
        .execute(&mut c)
        .await
        .unwrap();
    assert!(verify().status.success());

    // The newest event deleted, the head left as it was: export refuses.
    let (head,): (i64,) = sqlx::query_as("SELECT seq FROM chain_heads").fetch_one(&mut c).await.unwrap();
    sqlx::query("DELETE FROM evidence_events WHERE seq = $1").bind(head).execute(&mut c).await.unwrap();
    let refused = export();
    assert!(
        !refused.status.success() && text(&refused).contains(&format!("event {head}, is missing")),
        "{}",
        text(&refused)
    );

    // Cut back behind the newest checkpoint, head moved to match: every link is sound, but
    // the signed checkpoint says the chain once went further.
    let cut = seq - 3;
    sqlx::query("DELETE FROM evidence_events WHERE seq > $1").bind(cut).execute(&mut c).await.unwrap();
    sqlx::query(
        "UPDATE chain_heads SET seq = $1, head_hash = (SELECT hash FROM evidence_events WHERE seq = $1)",
    )
    .bind(cut)
    .execute(&mut c)
    .await
    .unwrap();
    let out_v = verify();
    assert_eq!(out_v.status.code(), Some(1), "{}", text(&out_v));
    assert!(
        text(&out_v).contains("the server signed event")
            && text(&out_v).contains(&format!("but the chain now ends at event {cut}")),
        "{}",
        text(&out_v)
    );
    let refused = export();
    assert!(!refused.status.success() && text(&refused).contains("cannot be exported"), "{}", text(&refused));
}
