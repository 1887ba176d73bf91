//! Storage faults survived without a restart. The database's disk fills up (a small tmpfs
//! under SQLite; a tablespace on a small tmpfs under PostgreSQL): writes
//! fail with 503, `/readyz` says why, and once space (or write access) is back, writes
//! resume within seconds on the same server, every one of them, and the evidence chain
//! still verifies.
//!
//! Mounting a tmpfs needs root: elsewhere these tests skip with a message (under CI they
//! must run).

mod common;

use common::TestApp;
use ringfence_store::DynStore;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tmpfs of its own, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("ringfence-tmpfs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            if std::env::var_os("CI").is_some() {
                panic!("mounting a tmpfs failed under CI: the storage-fault tests need root");
            }
            eprintln!("SKIPPED: mounting a tmpfs needs root; run the storage-fault tests as root");
            return None;
        }
        Some(Tmpfs(dir))
    }

    /// Fills the file system to the last byte with a file of its own; returns the file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let block = vec![0u8; chunk];
            while f.write_all(&block).is_ok() {}
        }
        let _ = f.flush();
        assert!(ringfence_store::free_bytes(&self.0).unwrap() < 4096, "the tmpfs is full");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A full report of `n` packages whose names are new with every `seq`: each one needs new
/// pages in the database.
fn report(seq: i64, n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"kind": "package", "manager": "dpkg", "name": format!("pkg-{seq}-{i:05}-with-a-longer-name"),
                        "version": format!("1.{i}.0-1+deb12u{seq}"), "arch": "amd64"}))
        .collect();
    json!({"seq": seq, "full": {"os": {"family": "linux", "id": "debian", "version": "12"}, "items": items}})
}

async fn send(app: &TestApp, credential: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/api/agent/v1/inventory"))
        .bearer_auth(credential)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls `/readyz` until `want(status, body)`, for up to `within`.
async fn ready_until(app: &TestApp, within: Duration, want: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let start = Instant::now();
    loop {
        let (status, body) = readyz(app).await;
        if want(status, &body) || start.elapsed() > within {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes fail while the storage is faulty, and all resume once it is mended.
async fn survive(app: &TestApp, credential: &str, break_it: impl FnOnce(), mend: impl FnOnce(), word: &str) {
    let mut seq = 2;
    break_it();
    // Several writers at once: each failed transaction must leave its connection usable.
    let mut failed = 0;
    for _ in 0..3 {
        let mut tries = tokio::task::JoinSet::new();
        for k in 0..6 {
            let (url, credential, body) =
                (app.url("/api/agent/v1/inventory"), credential.to_owned(), report(seq + k, 3000));
            tries.spawn(async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(credential)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            });
        }
        seq += 6;
        for (status, body) in tries.join_all().await {
            assert!(status == 503 || status == 200, "{status}: {body}");
            if status == 503 {
                failed += 1;
                assert_eq!(body["error"], "unavailable", "{body}");
            }
        }
    }
    assert!(failed > 0, "some writes fail while the storage is {word}");
    let (status, body) = ready_until(app, Duration::from_secs(10), |s, _| s == 503).await;
    assert_eq!(status, 503, "readiness reports the fault: {body}");
    assert!(body.contains(word), "the reason is given: {body}");

    mend();
    let (status, body) = ready_until(app, Duration::from_secs(15), |s, _| s == 200).await;
    assert_eq!(status, 200, "ready again without a restart: {body}");
    // Every write goes in now, on every connection of the pool.
    for _ in 0..20 {
        let (status, body) = send(app, credential, &report(seq, 50)).await;
        assert_eq!((status, body["applied"].as_bool()), (200, Some(true)), "seq {seq}: {body}");
        seq += 1;
    }
    let (ok, broken) = ringfence_engine::evidence::verify_store(&*app.store, None, None).await.unwrap();
    assert!(broken.is_empty() && !ok.is_empty(), "the evidence chains verify: {broken:?}");
}

#[tokio::test]
async fn sqlite_survives_a_full_disk() {
    let Some(fs) = Tmpfs::mount("24m") else { return };
    let store = ringfence_store::sqlite::SqliteStore::open(&fs.0.join("ringfence.db")).await.unwrap();
    let app = TestApp::spawn_on(Arc::new(store) as DynStore, None).await;
    let credential = app.enroll_agent("full-disk").await;
    let (status, body) = send(&app, &credential, &report(1, 100)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(readyz(&app).await.0, 200);

    let filler = std::cell::RefCell::new(PathBuf::new());
    survive(&app, &credential, || *filler.borrow_mut() = fs.fill(), || remove(&filler.borrow()), "full")
        .await;
    drop(app);
}

fn remove(p: &Path) {
    std::fs::remove_file(p).unwrap();
}

#[tokio::test]
async fn postgres_survives_a_full_tablespace() {
    use sqlx::Connection;
    let Some(url) = ringfence_store::testing::fresh_postgres_url().await else { return };
    let Some(fs) = Tmpfs::mount("64m") else { return };
    let owned = Command::new("chown").args(["postgres:postgres"]).arg(&fs.0).status().unwrap();
    assert!(owned.success(), "the tablespace folder is given to PostgreSQL's user");
    // The fresh database moves onto a tablespace on the tmpfs.
    let (base, name) = url.rsplit_once('/').unwrap();
    let admin = format!("{base}/postgres");
    let space = format!("ringfence_test_space_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let sql = |s: String| sqlx::AssertSqlSafe(s);
    let _cleanup = DropTablespace { admin: admin.clone(), space: space.clone(), database: name.to_owned() };
    sqlx::query(sql(format!("CREATE TABLESPACE {space} LOCATION '{}'", fs.0.display())))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(sql(format!("ALTER DATABASE {name} SET TABLESPACE {space}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let store = ringfence_store::postgres::PgStore::connect(&url).await.unwrap();
    let app = TestApp::spawn_on(Arc::new(store) as DynStore, None).await;
    let credential = app.enroll_agent("full-tablespace").await;
    let (status, body) = send(&app, &credential, &report(1, 100)).await;
    assert_eq!(status, 200, "{body}");

    let filler = std::cell::RefCell::new(PathBuf::new());
    survive(&app, &credential, || *filler.borrow_mut() = fs.fill(), || remove(&filler.borrow()), "full")
        .await;
}

/// Drops the test database and its tablespace before the tmpfs goes, even when the test
/// failed: PostgreSQL's checkpoints would fail for ever on files of a vanished tablespace.
struct DropTablespace {
    admin: String,
    space: String,
    database: String,
}

impl Drop for DropTablespace {
    fn drop(&mut self) {
        for statement in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            format!("DROP TABLESPACE IF EXISTS {}", self.space),
        ] {
            let _ = Command::new("psql").args([&self.admin, "-qc", &statement]).status();
        }
    }
}
