//! `ringfence loadgen`: simulated agents against a running server, for benchmarks and demos.
//! Each agent enrolls with a site's token, sends a full inventory built from a real package
//! list (the machine's own dpkg status, or one given), then checks in on its interval; the
//! command reports enrollment and inventory ingest rates and check-in latencies.

use anyhow::Context;
use clap::Args;
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
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
fn inventory(base: &[Item], n: usize, k: usize) -> Inventory {
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

pub async fn run(a: LoadgenArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.packages)
        .with_context(|| format!("cannot read {}", a.packages.display()))?;
    let base = ringfence_inventory::dpkg::parse_status(&text).items;
    anyhow::ensure!(!base.is_empty(), "{} lists no installed packages", a.packages.display());
    let server = a.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency));

    // Enrollment.
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..a.agents {
        let (http, server, token, sem) = (http.clone(), server.clone(), a.token.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire_owned().await;
            let body = serde_json::json!({
                "token": token, "hostname": format!("loadgen-{k:05}"),
                "machine_id": format!("{:032x}", 0x1000_0000_u128 + k as u128 + (std::process::id() as u128) * 1_000_000),
                "os": "Debian GNU/Linux 12 (bookworm)", "agent_version": "loadgen",
            });
            let r = http.post(format!("{server}/api/agent/v1/enroll")).json(&body).send().await?;
            anyhow::ensure!(r.status().is_success(), "enrollment refused: {}", r.text().await.unwrap_or_default());
            let v: serde_json::Value = r.json().await?;
            Ok::<_, anyhow::Error>(v["credential"].as_str().unwrap_or_default().to_string())
        });
    }
    let mut credentials = Vec::with_capacity(a.agents);
    while let Some(r) = tasks.join_next().await {
        credentials.push(r??);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "enrolled {} agents in {secs:.1} s ({:.0}/s)",
        credentials.len(),
        credentials.len() as f64 / secs
    );

    // Full inventories.
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, cred) in credentials.iter().enumerate() {
        let (http, server, cred, sem) = (http.clone(), server.clone(), cred.clone(), sem.clone());
        let body = serde_json::json!({ "seq": 1, "full": inventory(&base, a.items, k) });
        tasks.spawn(async move {
            let _p = sem.acquire_owned().await;
            let t = Instant::now();
            let r = http
                .post(format!("{server}/api/agent/v1/inventory"))
                .bearer_auth(&cred)
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(
                r.status().is_success(),
                "inventory refused: {}",
                r.text().await.unwrap_or_default()
            );
            Ok::<_, anyhow::Error>(t.elapsed())
        });
    }
    while let Some(r) = tasks.join_next().await {
        latencies.push(r??);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingested {} full inventories of {} items in {secs:.1} s: {:.1}/s, p50 {:.0} ms, p99 {:.0} ms",
        latencies.len(),
        a.items,
        latencies.len() as f64 / secs,
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );

    // Heartbeats, spread evenly over the interval.
    let until = Instant::now() + Duration::from_secs(a.duration);
    let spacing = Duration::from_secs_f64(a.interval as f64 / credentials.len().max(1) as f64);
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    let mut k = 0usize;
    while Instant::now() < until {
        tokio::time::sleep_until(next.into()).await;
        next += spacing;
        let (http, server, cred, lat) =
            (http.clone(), server.clone(), credentials[k % credentials.len()].clone(), latencies.clone());
        k += 1;
        tasks.spawn(async move {
            let t = Instant::now();
            let r = http
                .post(format!("{server}/api/agent/v1/checkin"))
                .bearer_auth(&cred)
                .json(&serde_json::json!({"agent_version": "loadgen"}))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                lat.lock().await.push(t.elapsed());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut lat = latencies.lock().await.clone();
    println!(
        "{} check-ins in {} s ({:.0}/s, {} agents every {} s): p50 {:.1} ms, p99 {:.1} ms; {} failed",
        lat.len(),
        a.duration,
        lat.len() as f64 / a.duration.max(1) as f64,
        credentials.len(),
        a.interval,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        k - lat.len()
    );
    Ok(())
}
