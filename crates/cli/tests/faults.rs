//! The fault suite, small form (seconds per scenario): the real `ringfence serve` under load
//! from agents speaking the real agent protocol (`ringfence_agent::checkin::round`, with its
//! state file), while the test kills the server with SIGKILL and starts it again, or cuts the
//! database off behind a proxy. Afterwards every agent's last inventory is on the server,
//! with the agent's report number, every package change is recorded exactly once, and the
//! evidence chains verify.
//!
//! `RINGFENCE_SOAK=N` makes it N kills and N seconds of outage (RELIABILITY.md records such
//! runs); the default is 3.

use ringfence_inventory::Inventory;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const AGENTS: usize = 6;

fn soak() -> usize {
    std::env::var("RINGFENCE_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn ringfence() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringfence"));
    for var in ["RINGFENCE_DATA_DIR", "RINGFENCE_DATABASE_URL", "RINGFENCE_CONFIG", "RINGFENCE_LISTEN"] {
        c.env_remove(var);
    }
    c.env("RINGFENCE_LOG", "warn");
    c
}

/// Where the database is: `--data-dir D` or `--database URL`.
#[derive(Clone)]
struct Db(Vec<String>);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// `ringfence serve` on `port`, once it answers.
    fn start(db: &Db, port: u16) -> Server {
        let mut child = ringfence()
            .args(["serve", "--feeds-sync", "false", "--listen", &format!("127.0.0.1:{port}")])
            .args(&db.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("serving"), "serve started: {line}");
        Server { child, url: format!("http://127.0.0.1:{port}") }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(db: &Db, args: &[&str]) -> Value {
    let out = ringfence()
        .args(["admin", "--partner", "Fault MSP", "--format", "json"])
        .args(&db.0)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A partner, an organization, a site and an enrollment token for the agents.
fn tenancy(db: &Db) -> String {
    let out =
        ringfence().args(["admin"]).args(&db.0).args(["partner", "create", "Fault MSP"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let org = admin(db, &["org", "create", "Clinic"]);
    let site =
        admin(db, &["site", "create", "--org", org["id"].as_str().unwrap(), "--name", "HQ", "--tz", "UTC"]);
    let token = admin(
        db,
        &["enrollment-token", "create", "--site", site["id"].as_str().unwrap(), "--name", "faults"],
    );
    token["secret"].as_str().unwrap().to_owned()
}

struct Agent {
    config: ringfence_agent::enroll::AgentConfig,
    dir: ringfence_store::testing::TempDir,
    /// Packages installed so far, one more every round.
    installed: usize,
    k: usize,
}

impl Agent {
    fn enroll(url: &str, token: &str, k: usize) -> Agent {
        let r: Value = reqwest::blocking::Client::new()
            .post(format!("{url}/api/agent/v1/enroll"))
            .json(&json!({"token": token, "hostname": format!("fault-{k}"), "machine_id": format!("{:032x}", 0xfa000 + k),
                          "os": "Debian GNU/Linux 12 (bookworm)", "agent_version": "test"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let config = ringfence_agent::enroll::AgentConfig {
            server: url.to_owned(),
            device_id: r["device_id"].as_str().unwrap().to_owned(),
            credential: r["credential"].as_str().expect("enrolled").to_owned(),
            server_public_key: r["server_public_key"].as_str().unwrap().to_owned(),
        };
        Agent {
            config,
            dir: ringfence_store::testing::TempDir::new("ringfence-fault-agent"),
            installed: 0,
            k,
        }
    }

    fn inventory(&self) -> Inventory {
        let mut items: Vec<Value> = (0..40)
            .map(|i| json!({"kind": "package", "manager": "dpkg", "name": format!("base-{i}"), "version": "1.0-1"}))
            .collect();
        items.extend((0..self.installed).map(|i| {
            json!({"kind": "package", "manager": "dpkg", "name": format!("added-{}-{i}", self.k), "version": "2.0-1"})
        }));
        serde_json::from_value(
            json!({"os": {"family": "linux", "id": "debian", "version": "12"}, "items": items}),
        )
        .unwrap()
    }

    /// One round with the current inventory; `Err` while the server is away.
    fn round(&self) -> Result<ringfence_agent::checkin::Round, String> {
        let report = ringfence_agent::Report { inventory: self.inventory(), ..Default::default() };
        ringfence_agent::checkin::round(&self.dir.0, &self.config, &report, None)
    }
}

async fn enroll(url: &str, token: &str) -> Vec<Agent> {
    let (url, token) = (url.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || (0..AGENTS).map(|k| Agent::enroll(&url, &token, k)).collect())
        .await
        .unwrap()
}

/// Agents that install a package and report, over and over, until `stop`; then each
/// reports until its last inventory is acknowledged.
fn load(agents: Vec<Agent>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Agent>> {
    std::thread::spawn(move || {
        let handles: Vec<_> = agents
            .into_iter()
            .map(|mut a| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        a.installed += 1;
                        if a.round().is_err() {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    let start = Instant::now();
                    loop {
                        if a.round().is_ok()
                            && ringfence_agent::checkin::load_state(&a.dir.0).pending.is_none()
                        {
                            let again = a.round().unwrap();
                            assert_eq!(again.sent, None, "nothing left to send");
                            break;
                        }
                        assert!(start.elapsed() < Duration::from_secs(60), "agent {} never got through", a.k);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    a
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Every agent's last inventory is on the server with its report number; every package it
/// added was recorded installed exactly once; the evidence chains verify.
async fn consistent(db: &Db, store: &ringfence_store::DynStore, agents: &[Agent]) {
    let engine = ringfence_engine::Engine::new(store.clone());
    for a in agents {
        let id = engine.agent(&a.config.credential).await.unwrap();
        let state = ringfence_agent::checkin::load_state(&a.dir.0);
        assert_eq!(id.inventory_seq, state.acked_seq, "agent {}: the server holds its last report", a.k);
        let scope = ringfence_model::Scope::organization(id.partner_id.clone(), id.organization_id.clone());
        let held = store.device_inventory(&scope, &id.device_id).await.unwrap();
        let mut held: Vec<(String, String)> = held.items.into_iter().map(|i| (i.name, i.version)).collect();
        let mut sent: Vec<(String, String)> =
            a.inventory().items.into_iter().map(|i| (i.name, i.version)).collect();
        held.sort();
        sent.sort();
        assert_eq!(held.len(), sent.len(), "agent {}: {} items held, {} sent", a.k, held.len(), sent.len());
        assert!(held == sent, "agent {}: the server's inventory is the agent's", a.k);
        // Packages were added in order; those in the first report applied are its baseline,
        // every later one must be recorded installed exactly once: the last n added.
        let history = store.software_history(&scope, &id.device_id, 1_000_000).await.unwrap();
        let prefix = format!("added-{}-", a.k);
        let mut installed: Vec<usize> = history
            .iter()
            .filter(|e| e.change == "installed")
            .map(|e| e.name.strip_prefix(&prefix).and_then(|n| n.parse().ok()).expect("an added package"))
            .collect();
        installed.sort_unstable();
        let n = installed.len();
        let want: Vec<usize> = (a.installed - n..a.installed).collect();
        assert!(
            installed == want,
            "agent {}: installs recorded {installed:?}, of {} added",
            a.k,
            a.installed
        );
        assert!(history.iter().all(|e| e.change == "installed"), "nothing else changed");
    }
    let out = ringfence().args(["evidence", "verify"]).args(&db.0).output().unwrap();
    assert!(out.status.success(), "the evidence chains verify: {}", String::from_utf8_lossy(&out.stdout));
}

async fn store_of(db: &Db) -> ringfence_store::DynStore {
    match db.0[0].as_str() {
        "--data-dir" => Arc::new(
            ringfence_store::sqlite::SqliteStore::open(&std::path::Path::new(&db.0[1]).join("ringfence.db"))
                .await
                .unwrap(),
        ),
        _ => Arc::new(ringfence_store::postgres::PgStore::connect(&db.0[1]).await.unwrap()),
    }
}

/// SIGKILL under load, again and again: nothing lost, nothing doubled.
async fn killed_under_load(db: Db) {
    let token = tenancy(&db);
    let port = free_port();
    let mut server = Server::start(&db, port);
    let agents = enroll(&server.url, &token).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(agents, stop.clone());
    for _ in 0..soak() {
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = Server::start(&db, port);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);
    let agents = tokio::task::spawn_blocking(move || running.join().unwrap()).await.unwrap();
    assert!(
        agents.iter().all(|a| a.installed > 3),
        "the agents were busy: {:?}",
        agents.iter().map(|a| a.installed).collect::<Vec<_>>()
    );
    consistent(&db, &store_of(&db).await, &agents).await;
    eprintln!(
        "{} SIGKILLs under load: {} package changes from {AGENTS} agents, all recorded once",
        soak(),
        agents.iter().map(|a| a.installed).sum::<usize>()
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_under_load_loses_and_doubles_nothing() {
    let dir = ringfence_store::testing::TempDir::new("ringfence-faults");
    killed_under_load(Db(vec!["--data-dir".into(), dir.0.join("data").display().to_string()])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_load_loses_and_doubles_nothing() {
    let Some(url) = ringfence_store::testing::fresh_postgres_url().await else { return };
    killed_under_load(Db(vec!["--database".into(), url])).await;
}

/// A TCP proxy in front of PostgreSQL that the test can cut: open connections are dropped
/// and new ones refused until it is restored.
struct Proxy {
    port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watch) = tokio::sync::watch::channel(true);
        let target = target.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if !*watch.borrow() {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { port, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_survived_and_readiness_answers_within_a_second() {
    let Some(url) = ringfence_store::testing::fresh_postgres_url().await else { return };
    let (rest, database) = url.rsplit_once('/').unwrap();
    let host = rest.rsplit_once('@').map_or("127.0.0.1:5432", |(_, h)| h);
    let proxy = Proxy::start(host).await;
    let user = rest.split_once("//").unwrap().1.split_once('@').map_or("postgres", |(u, _)| u);
    let via_proxy = format!("postgres://{user}@127.0.0.1:{}/{database}", proxy.port);
    let db = Db(vec!["--database".into(), via_proxy]);
    let token = tenancy(&db);
    let server = Server::start(&db, free_port());
    let agents = enroll(&server.url, &token).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(agents, stop.clone());
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    proxy.set(false);
    let outage = Instant::now();
    let mut seen_down = false;
    while outage.elapsed() < Duration::from_secs(soak().max(4) as u64) {
        let r = probe.get(format!("{}/readyz", server.url)).send().await;
        let r = r.expect("/readyz answers within 1 s during the outage");
        seen_down |= r.status() == 503;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen_down, "readiness reported the outage");
    proxy.set(true);
    let back = Instant::now();
    loop {
        let r = probe.get(format!("{}/readyz", server.url)).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "ready again after the outage, without a restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "database cut off for {:.1} s: ready again {:.1} s after it came back",
        (back - outage).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::SeqCst);
    let agents = tokio::task::spawn_blocking(move || running.join().unwrap()).await.unwrap();
    consistent(
        &Db(vec!["--database".into(), url.clone()]),
        &store_of(&Db(vec!["--database".into(), url])).await,
        &agents,
    )
    .await;
    drop(server);
}
