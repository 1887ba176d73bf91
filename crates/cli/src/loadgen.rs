//! `ringfence loadgen`: simulated agents against a running server, for benchmarks and demos.
//! Each agent enrolls with a site's token, sends a full inventory built from a real package
//! list (the machine's own dpkg status, or one given), then checks in on its interval; the
//! command reports enrollment and inventory ingest rates and check-in latencies.

use anyhow::Context;
use clap::Args;
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_model::Timestamp;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct LoadgenArgs {
    /// The server, e.g. http://127.0.0.1:8640
    #[arg(long)]
    server: String,
    /// A site's enrollment token allowing at least --agents uses.
    #[arg(long, env = "RINGFENCE_ENROLLMENT_TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Seconds of heartbeats after the inventories are in.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds between one agent's check-ins.
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Items per inventory (packages from the list, varied per agent).
    #[arg(long, default_value_t = 1500)]
    items: usize,
    /// A dpkg status file to build inventories from.
    #[arg(long, default_value = "/var/lib/dpkg/status")]
    packages: std::path::PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

fn percentile(v: &mut [Duration], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
}

/// An inventory of `n` items for agent `k`: the real packages, then programs, with a few
/// versions varied per agent so the fleet has many distinct titles, as real fleets do.
pub fn inventory(base: &[Item], n: usize, k: usize) -> Inventory {
    let mut items = Vec::with_capacity(n);
    for (i, b) in base.iter().cycle().take(n).enumerate() {
        let mut it = b.clone();
        if i >= base.len() {
            it.kind = ItemKind::Application;
            it.manager = Some("msi".into());
            it.name = format!("{} tool {}", b.name, i / base.len());
            it.source_name = None;
            it.source_version = None;
        }
        if (i + k).is_multiple_of(50) {
            it.version = format!("{}+lg{}", it.version, k % 7);
        }
        items.push(it);
    }
    Inventory { os: OsInfo::debian("12"), items }
}

/// Simulated agents against one server.
pub struct Fleet {
    http: reqwest::Client,
    server: String,
    concurrency: usize,
    pub credentials: Vec<String>,
}

impl Fleet {
    pub fn new(server: &str, concurrency: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(concurrency)
            .build()?;
        Ok(Fleet {
            http,
            server: server.trim_end_matches('/').to_string(),
            concurrency: concurrency.max(1),
            credentials: Vec::new(),
        })
    }

    /// Enrolls `n` agents named `{prefix}-00001`… with a site's token.
    pub async fn enroll(&mut self, token: &str, n: usize, prefix: &str) -> anyhow::Result<()> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let run = std::process::id() as u128 * 1_000_000 + Timestamp::now().as_second() as u128 % 1_000_000;
        for k in 0..n {
            let (http, server, token, sem) =
                (self.http.clone(), self.server.clone(), token.to_string(), sem.clone());
            let hostname = format!("{prefix}-{k:05}");
            tasks.spawn(async move {
                let _p = sem.acquire_owned().await;
                let body = serde_json::json!({
                    "token": token, "hostname": hostname,
                    "machine_id": format!("{:032x}", 0x1000_0000_u128 + k as u128 + run * 1_000_000),
                    "os": "Debian GNU/Linux 12 (bookworm)", "agent_version": "loadgen",
                });
                let r = http.post(format!("{server}/api/agent/v1/enroll")).json(&body).send().await?;
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                anyhow::ensure!(status.is_success(), "enrollment refused: {text}");
                let v: serde_json::Value = serde_json::from_str(&text)?;
                Ok::<_, anyhow::Error>(v["credential"].as_str().unwrap_or_default().to_string())
            });
        }
        while let Some(r) = tasks.join_next().await {
            self.credentials.push(r??);
        }
        Ok(())
    }

    /// Sends every agent's first, full inventory of `items` items built from `base`; returns
    /// the latency of each.
    pub async fn send_inventories(&self, base: &[Item], items: usize) -> anyhow::Result<Vec<Duration>> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut latencies = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (k, cred) in self.credentials.iter().enumerate() {
            let (http, server, cred, sem) =
                (self.http.clone(), self.server.clone(), cred.clone(), sem.clone());
            let body = serde_json::json!({ "seq": 1, "full": inventory(base, items, k) });
            tasks.spawn(async move {
                let _p = sem.acquire_owned().await;
                let t = Instant::now();
                let r = http
                    .post(format!("{server}/api/agent/v1/inventory"))
                    .bearer_auth(&cred)
                    .json(&body)
                    .send()
                    .await?;
                // Read the whole answer, so the connection is reused.
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                anyhow::ensure!(status.is_success(), "inventory refused: {text}");
                Ok::<_, anyhow::Error>(t.elapsed())
            });
        }
        while let Some(r) = tasks.join_next().await {
            latencies.push(r??);
        }
        Ok(latencies)
    }

    /// Heartbeats spread evenly over `interval`, until `duration` has passed (forever when
    /// `None`); returns the latencies of the check-ins that succeeded (kept only when a
    /// duration bounds them) and how many failed.
    pub async fn heartbeats(&self, interval: Duration, duration: Option<Duration>) -> (Vec<Duration>, usize) {
        let until = duration.map(|d| Instant::now() + d);
        let spacing = interval.div_f64(self.credentials.len().max(1) as f64);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = Instant::now();
        let mut k = 0usize;
        while !self.credentials.is_empty() && until.is_none_or(|u| Instant::now() < u) {
            tokio::time::sleep_until(next.into()).await;
            next += spacing;
            let (http, server, cred, lat, failed) = (
                self.http.clone(),
                self.server.clone(),
                self.credentials[k % self.credentials.len()].clone(),
                latencies.clone(),
                failed.clone(),
            );
            k += 1;
            tasks.spawn(async move {
                let t = Instant::now();
                let r = http
                    .post(format!("{server}/api/agent/v1/checkin"))
                    .bearer_auth(&cred)
                    .json(&serde_json::json!({"agent_version": "loadgen"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        if until.is_some() {
                            lat.lock().unwrap_or_else(|p| p.into_inner()).push(t.elapsed());
                        }
                    }
                    _ => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
            // Reap finished check-ins so a fleet that runs forever does not accumulate them.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        let lat = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (lat, failed.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The packages of a dpkg status file, or an error saying why there are none.
pub fn packages(path: &std::path::Path) -> anyhow::Result<Vec<Item>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = ringfence_inventory::dpkg::parse_status(&text).items;
    anyhow::ensure!(!base.is_empty(), "{} lists no installed packages", path.display());
    Ok(base)
}

pub async fn run(a: LoadgenArgs) -> anyhow::Result<()> {
    let base = packages(&a.packages)?;
    let mut fleet = Fleet::new(&a.server, a.concurrency)?;

    let start = Instant::now();
    fleet.enroll(&a.token, a.agents, "loadgen").await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "enrolled {} agents in {secs:.1} s ({:.0}/s)",
        fleet.credentials.len(),
        fleet.credentials.len() as f64 / secs
    );

    let start = Instant::now();
    let mut latencies = fleet.send_inventories(&base, a.items).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingested {} full inventories of {} items in {secs:.1} s: {:.1}/s, p50 {:.0} ms, p99 {:.0} ms",
        latencies.len(),
        a.items,
        latencies.len() as f64 / secs,
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );

    let (mut lat, failed) =
        fleet.heartbeats(Duration::from_secs(a.interval), Some(Duration::from_secs(a.duration))).await;
    println!(
        "{} check-ins in {} s ({:.0}/s, {} agents every {} s): p50 {:.1} ms, p99 {:.1} ms; {} failed",
        lat.len(),
        a.duration,
        lat.len() as f64 / a.duration.max(1) as f64,
        fleet.credentials.len(),
        a.interval,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        failed
    );
    Ok(())
}
