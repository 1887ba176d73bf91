//! `ringfence bench tenancy`: measures the foundation at fleet scale on a chosen database —
//! audited writes per second, device-list queries (first page, search, deep page, one
//! organization), single-device reads, and evidence-chain verification.

use crate::output::{self, Format};
use clap::Args;
use ringfence_engine::Engine;
use ringfence_model::{Name, Timestamp};
use ringfence_proto as proto;
use ringfence_store::{Audit, Location};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchArgs {
    /// Devices to create (spread over organizations of 200 devices, two sites each).
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Queries per measured kind.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// An empty database to use (postgres://…); default: a new SQLite file in a temporary folder.
    #[arg(long = "database", value_name = "URL")]
    database_url: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct Row {
    measure: String,
    count: usize,
    p50_ms: f64,
    p95_ms: f64,
    per_second: f64,
}

fn row(measure: &str, mut samples: Vec<Duration>) -> Row {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    let total: f64 = samples.iter().map(Duration::as_secs_f64).sum();
    Row {
        measure: measure.into(),
        count: samples.len(),
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        per_second: samples.len() as f64 / total,
    }
}

/// A bench's store: the database at `database_url`, or a new SQLite file in a temporary
/// folder named after the bench (removed by the bench when it ends).
pub(crate) async fn bench_store(
    database_url: Option<&str>,
    bench: &str,
) -> anyhow::Result<(std::path::PathBuf, Location, ringfence_store::DynStore)> {
    let tmp = std::env::temp_dir().join(format!("ringfence-bench-{bench}-{}", std::process::id()));
    let location = match database_url {
        Some(url) => Location::parse(url),
        None => Location::Sqlite(tmp.join("bench.db")),
    };
    let store = crate::open_store(&location).await?;
    Ok((tmp, location, store))
}

/// A new partner named `msp` and the time, and an operator acting for it.
pub(crate) async fn bench_partner(
    engine: &Engine,
    msp: &str,
) -> anyhow::Result<(ringfence_model::Partner, ringfence_model::Principal)> {
    let now = Timestamp::now();
    let name = Name::parse("name", &format!("{msp} {}", now.as_millisecond()))?;
    let partner = engine.store().create_partner(&Audit::new("cli:bench", now), &name).await?;
    let op = engine.operator("bench", partner.id.as_str()).await?;
    Ok((partner, op))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (tmp, _, store) = bench_store(args.database_url.as_deref(), "tenancy").await?;
    let engine = Engine::new(store.clone());
    let (partner, op) = bench_partner(&engine, "Bench MSP").await?;

    let per_org = 200;
    let orgs = args.devices.div_ceil(per_org);
    let mut sites = Vec::new();
    let mut org_ids = Vec::new();
    for o in 0..orgs {
        let org = engine
            .create_organization(
                &op,
                &proto::CreateOrganization { name: format!("Client {o:04}"), notes: String::new() },
            )
            .await?;
        for s in 0..2 {
            let req = proto::CreateSite {
                organization_id: org.id.to_string(),
                name: format!("Site {s}"),
                time_zone: if s == 0 { "America/New_York" } else { "Europe/Berlin" }.into(),
                address: String::new(),
            };
            sites.push(engine.create_site(&op, &req).await?.id.to_string());
        }
        org_ids.push(org.id.to_string());
    }
    let mut writes = Vec::with_capacity(args.devices);
    let mut device_ids = Vec::with_capacity(args.devices);
    for d in 0..args.devices {
        let req = proto::CreateDevice {
            site_id: sites[(d / per_org) * 2 + d % 2].clone(),
            hostname: format!("ws-{d:06}"),
            role: if d % 25 == 0 { "server" } else { "workstation" }.into(),
            os: "Windows 11 Pro 23H2".into(),
            internet_facing: d % 50 == 0,
            holds_sensitive_data: d % 3 == 0,
            criticality: Some("medium".into()),
            time_zone: None,
            group_ids: Vec::new(),
        };
        let t = Instant::now();
        device_ids.push(engine.create_device(&op, &req).await?.id.to_string());
        writes.push(t.elapsed());
    }
    let mut rows = vec![row("create device (audited write)", writes)];

    let n = args.queries;
    let mut measure =
        async |label: &str, q: &dyn Fn(usize) -> proto::DeviceListQuery| -> anyhow::Result<()> {
            let mut samples = Vec::with_capacity(n);
            for i in 0..n {
                let query = q(i);
                let t = Instant::now();
                let page = engine.devices(&op, &query).await?;
                samples.push(t.elapsed());
                anyhow::ensure!(page.total > 0, "{label}: no results");
            }
            rows.push(row(label, samples));
            Ok(())
        };
    let devices = args.devices as i64;
    measure("list devices, first page of 50", &|_| proto::DeviceListQuery {
        limit: Some(50),
        ..Default::default()
    })
    .await?;
    measure("list devices, search host name", &|i| proto::DeviceListQuery {
        search: Some(format!("ws-{:06}", (i * 7919) % args.devices)),
        limit: Some(50),
        ..Default::default()
    })
    .await?;
    measure("list devices, deep page", &|i| proto::DeviceListQuery {
        limit: Some(50),
        offset: Some(((i as i64 * 997) % devices.max(1)).min((devices - 50).max(0))),
        ..Default::default()
    })
    .await?;
    measure("list devices of one organization", &|i| proto::DeviceListQuery {
        organization_id: Some(org_ids[i % org_ids.len()].clone()),
        limit: Some(50),
        ..Default::default()
    })
    .await?;
    let mut reads = Vec::with_capacity(n);
    for i in 0..n {
        let id = &device_ids[(i * 7919) % device_ids.len()];
        let t = Instant::now();
        engine.device(&op, id).await?;
        reads.push(t.elapsed());
    }
    rows.push(row("get one device", reads));
    let t = Instant::now();
    let (ok, broken) =
        ringfence_engine::evidence::verify_store(store.as_ref(), Some(partner.id.as_str()), None).await?;
    let verify = t.elapsed();
    anyhow::ensure!(broken.is_empty(), "the benchmark's chain does not verify: {broken:?}");
    let events = ok.first().map_or(0, |c| c.events) as usize;
    rows.push(Row {
        measure: format!("verify evidence chain ({events} events)"),
        count: 1,
        p50_ms: verify.as_secs_f64() * 1e3,
        p95_ms: verify.as_secs_f64() * 1e3,
        per_second: events as f64 / verify.as_secs_f64(),
    });

    match args.format {
        Format::Json => output::json(&rows),
        Format::Table => {
            println!("backend {}, {} devices in {} organizations", store.backend(), args.devices, orgs);
            output::table(
                &["measure", "count", "p50 ms", "p95 ms", "per second"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.measure.clone(),
                            r.count.to_string(),
                            format!("{:.3}", r.p50_ms),
                            format!("{:.3}", r.p95_ms),
                            format!("{:.0}", r.per_second),
                        ]
                    })
                    .collect(),
            );
        }
    }
    if args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

#[derive(Args)]
pub struct FeedBenchArgs {
    /// Folder of NVD CVE API 2.0 record files (one `cve` object each) to build the page from.
    #[arg(long, default_value = "../shared/data/nvd/records")]
    records: std::path::PathBuf,
    /// Records in the generated page (the record files repeated with new ids).
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Also import the page into a fresh SQLite database (parse, store, index rows), as
    /// `ringfence feeds import` does, and report that rate.
    #[arg(long)]
    import: bool,
}

/// `ringfence bench feeds`: parse throughput of an NVD API page built from real records.
pub async fn feeds(args: FeedBenchArgs) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    for f in std::fs::read_dir(&args.records)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.records.display()))?
        .flatten()
    {
        samples.push(std::fs::read_to_string(f.path())?);
    }
    anyhow::ensure!(!samples.is_empty(), "no record files in {}", args.records.display());
    let mut page = String::from(
        r#"{"resultsPerPage":0,"startIndex":0,"totalResults":0,"format":"NVD_CVE","version":"2.0","vulnerabilities":["#,
    );
    for i in 0..args.count {
        if i > 0 {
            page.push(',');
        }
        let rec = &samples[i % samples.len()];
        // A fresh id per copy, so the page looks like distinct records.
        let id_at = rec.find("\"id\"").unwrap_or(0);
        page.push_str("{\"cve\":");
        page.push_str(&rec[..id_at]);
        page.push_str(&format!("\"id\": \"CVE-2099-{i:07}\", \"_orig\""));
        page.push_str(&rec[id_at + 4..]);
        page.push('}');
    }
    page.push_str("]}");
    let bytes = page.len();
    if args.import {
        let tmp = std::env::temp_dir().join(format!("ringfence-bench-import-{}", std::process::id()));
        let store = crate::open_store(&Location::Sqlite(tmp.join("bench.db"))).await?;
        let reader = Box::new(std::io::Cursor::new(page.clone().into_bytes()));
        let start = Instant::now();
        let summary =
            ringfence_engine::intel::import_reader(store.as_ref(), reader, "bench", Timestamp::now())
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "imported {} NVD records into SQLite in {secs:.2} s: {:.0} records/s ({} added)",
            summary.records,
            summary.records as f64 / secs,
            summary.counts.added
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let start = Instant::now();
    let mut n = 0usize;
    let mut criteria = 0usize;
    let (_, skipped) = ringfence_feeds::nvd::parse_page(std::io::Cursor::new(page.into_bytes()), &mut |c| {
        n += 1;
        criteria += c.criteria().count();
    })?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parsed {n} NVD records ({criteria} CPE criteria, {:.0} MB) in {secs:.2} s: {:.0} records/s, {:.0} MB/s; skipped {}",
        bytes as f64 / 1e6,
        n as f64 / secs,
        bytes as f64 / 1e6 / secs,
        skipped.total()
    );
    Ok(())
}
