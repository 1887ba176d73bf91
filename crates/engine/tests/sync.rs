//! The online NVD and KEV clients against a local HTTP server that replays recorded real
//! pages (`../shared/data/nvd`, `../shared/data/kev`), including rate-limit answers (429,
//! 403), a connection dropped in the middle of a page, and an interrupted sync resumed.

use ringfence_engine::sync::{Feed, SyncConfig, sync, sync_nvd};
use ringfence_store::testing::fresh_sqlite;
use ringfence_store::{IntelStore, Store};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: the shared test data is not at {} (see README.md)", dir.display());
        None
    }
}

/// How the replay server misbehaves.
#[derive(Clone, Default)]
struct Faults {
    /// Answers for the first requests, before serving normally: 429, 403, or 0 for a
    /// connection dropped mid-body.
    first: Vec<u16>,
    /// Always answer 500 for this start index.
    broken_start: Option<u64>,
}

struct Replay {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

async fn replay(dir: PathBuf, faults: Faults) -> Replay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let faults = Arc::new(Mutex::new(faults));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (dir, log, faults) = (dir.clone(), log2.clone(), faults.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(target.clone());
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let fault = {
                    let mut f = faults.lock().unwrap();
                    if f.first.is_empty() { None } else { Some(f.first.remove(0)) }
                };
                let start: u64 = query_value(query, "startIndex").and_then(|s| s.parse().ok()).unwrap_or(0);
                let broken = faults.lock().unwrap().broken_start == Some(start) && path == "/nvd";
                let body = match path {
                    "/kev" => std::fs::read(dir.join("kev/known_exploited_vulnerabilities.json")).unwrap(),
                    _ if query.contains("lastModStartDate") => {
                        std::fs::read(dir.join("nvd-api/emptyResp.json")).unwrap()
                    }
                    _ => std::fs::read(dir.join(format!("nvd/cves-page-{}.json", start / 25)))
                        .unwrap_or_default(),
                };
                let head = |status: &str, len: usize, extra: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n{extra}\r\n"
                    )
                };
                match (fault, broken) {
                    (Some(429), _) => {
                        let _ = sock
                            .write_all(head("429 Too Many Requests", 0, "retry-after: 0\r\n").as_bytes())
                            .await;
                    }
                    (Some(403), _) => {
                        let _ = sock.write_all(head("403 Forbidden", 0, "").as_bytes()).await;
                    }
                    (Some(0), _) => {
                        let _ = sock.write_all(head("200 OK", body.len(), "").as_bytes()).await;
                        let _ = sock.write_all(&body[..body.len() / 2]).await;
                    }
                    (_, true) => {
                        let _ = sock.write_all(head("500 Internal Server Error", 0, "").as_bytes()).await;
                    }
                    _ => {
                        let _ = sock.write_all(head("200 OK", body.len(), "").as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    Replay { base, log }
}

fn config(base: &str) -> SyncConfig {
    let mut c = SyncConfig::new(None);
    c.nvd_url = format!("{base}/nvd");
    c.kev_url = format!("{base}/kev");
    c.page_size = 25;
    c.pause = Duration::ZERO;
    c.backoff = Duration::from_millis(10);
    c.max_retries = 4;
    c
}

#[tokio::test]
async fn nvd_sync_survives_rate_limits_and_a_dropped_connection_then_goes_incremental() {
    let Some(dir) = data_dir() else { return };
    let server = replay(dir, Faults { first: vec![429, 403, 0], broken_start: None }).await;
    let (store, _tmp) = fresh_sqlite().await;
    let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let summary = sync_nvd(&store, &config(&server.base), now).await.expect("the sync retries and succeeds");
    assert_eq!(summary.records, 62);
    assert_eq!(summary.counts.added, 62);
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 6, "three refused or dropped attempts, then three pages: {log:?}");
    assert!(log.iter().all(|r| r.contains("resultsPerPage=25")));
    assert!(log[5].contains("startIndex=50"));
    assert_eq!(store.feed_cursor("nvd").await.unwrap().as_deref(), Some("done|2026-11-26T12:00:00Z"));
    assert_eq!(store.intel_counts().await.unwrap()[0].1, 62);

    // The next sync asks only for what changed since, in one window.
    let later: jiff::Timestamp = "2026-11-26T14:00:00Z".parse().unwrap();
    let summary = sync_nvd(&store, &config(&server.base), later).await.unwrap();
    assert_eq!(summary.records, 0);
    let log = server.log.lock().unwrap().clone();
    assert_eq!(log.len(), 7);
    assert!(log[6].contains("lastModStartDate=2026-11-26T12%3A00%3A00.000"), "{}", log[6]);
    assert!(log[6].contains("lastModEndDate=2026-11-26T14%3A00%3A00.000"), "{}", log[6]);
}

#[tokio::test]
async fn an_interrupted_nvd_sync_resumes_where_it_stopped() {
    let Some(dir) = data_dir() else { return };
    let (store, _tmp) = fresh_sqlite().await;
    let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let broken = replay(dir.clone(), Faults { first: vec![], broken_start: Some(25) }).await;
    let mut cfg = config(&broken.base);
    cfg.max_retries = 1;
    let err = sync_nvd(&store, &cfg, now).await.unwrap_err();
    assert!(err.contains("500") && err.contains("gave up"), "{err}");
    assert_eq!(store.feed_cursor("nvd").await.unwrap().as_deref(), Some("full|25"));
    assert_eq!(store.intel_counts().await.unwrap()[0].1, 25, "the first page is kept");

    let healthy = replay(dir, Faults::default()).await;
    let summary = sync_nvd(&store, &config(&healthy.base), now).await.unwrap();
    assert_eq!(summary.records, 37, "only the pages not yet stored");
    let log = healthy.log.lock().unwrap().clone();
    assert!(log[0].contains("startIndex=25"), "{log:?}");
    assert_eq!(store.intel_counts().await.unwrap()[0].1, 62);
}

#[tokio::test]
async fn kev_sync_imports_the_catalog_and_reports_failing_feeds() {
    let Some(dir) = data_dir() else { return };
    let server = replay(dir, Faults::default()).await;
    let (store, _tmp) = fresh_sqlite().await;
    let mut cfg = config(&server.base);
    cfg.epss_url = format!("{}/missing", "http://127.0.0.1:9");
    cfg.max_retries = 0;
    let (done, failed) = sync(&store, &cfg, &[Feed::Kev, Feed::Epss]).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].counts.added, 1404);
    assert_eq!(done[0].kev_added.len(), 1404);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].starts_with("epss: cannot reach"), "{failed:?}");
    let runs = store.list_feed_runs(10).await.unwrap();
    assert!(runs.iter().any(|r| r.error.as_deref().is_some_and(|e| e.contains("cannot reach"))));
    assert_eq!(store.backend(), "sqlite");
}
