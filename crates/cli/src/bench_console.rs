//! `ringfence bench console`: the dashboard's busiest pages at MSP scale, timed as a browser
//! asks for them. It builds a fleet (organizations of 200 devices), gives every device open
//! findings and a history of deployments, serves the application on a free port, signs in
//! as a partner admin and requests each page many times, reporting the server's answer time
//! (p50 and p95, page fully rendered) per page.

use crate::output::{self, Format};
use clap::Args;
use ringfence_engine::Engine;
use ringfence_model::{DeviceId, OrganizationId, Scope, Timestamp};
use ringfence_proto as proto;
use ringfence_store::{Audit, DeployedPackage, DeploymentChange, NewDeployment, NewFinding, NewJob};
use serde::Serialize;
use std::time::Instant;

#[derive(Args)]
pub struct ConsoleBenchArgs {
    /// Devices (in organizations of 200).
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Open findings in all, spread evenly over the devices.
    #[arg(long, default_value_t = 1_000_000)]
    findings: usize,
    /// Deployments in all (finished ones, ten rounds over the fleet at most).
    #[arg(long, default_value_t = 100_000)]
    deployments: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// An empty database to use (postgres://…); default: a new SQLite file in a temporary folder.
    #[arg(long = "database", value_name = "URL")]
    database_url: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct Row {
    page: String,
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    bytes: usize,
}

const PASSWORD: &str = "bench-console-password";

pub async fn run(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    let (tmp, _, store) = crate::bench::bench_store(args.database_url.as_deref(), "console").await?;
    let engine = Engine::new(store.clone());
    let (partner, op) = crate::bench::bench_partner(&engine, "Console MSP").await?;
    let scope = Scope::partner(partner.id.clone());
    let started = Instant::now();

    // The fleet.
    let per_org = 200;
    let mut devices: Vec<(OrganizationId, DeviceId)> = Vec::with_capacity(args.devices);
    for o in 0..args.devices.div_ceil(per_org) {
        let org = engine
            .create_organization(
                &op,
                &proto::CreateOrganization { name: format!("Client {o:04}"), notes: String::new() },
            )
            .await?;
        let site = engine
            .create_site(
                &op,
                &proto::CreateSite {
                    organization_id: org.id.to_string(),
                    name: "Main office".into(),
                    time_zone: "America/New_York".into(),
                    address: String::new(),
                },
            )
            .await?;
        for d in 0..per_org.min(args.devices - devices.len()) {
            let req = proto::CreateDevice {
                site_id: site.id.to_string(),
                hostname: format!("c{o:04}-ws-{d:03}"),
                role: "workstation".into(),
                os: "Windows 11 Pro 23H2".into(),
                internet_facing: false,
                holds_sensitive_data: false,
                criticality: Some("medium".into()),
                time_zone: None,
                group_ids: Vec::new(),
            };
            let device = engine.create_device(&op, &req).await?;
            devices.push((org.id.clone(), device.id));
        }
    }
    eprintln!("{} devices in {:.1} s", devices.len(), started.elapsed().as_secs_f64());

    // Open findings: each device carries its share, drawn from a catalog of 2,000
    // vulnerable (CVE, product) pairs over 40 products, as a fleet shares its software.
    let per_device = args.findings.div_ceil(devices.len().max(1));
    let now = Timestamp::now();
    for (i, (_, device)) in devices.iter().enumerate() {
        let findings: Vec<NewFinding> = (0..per_device)
            .map(|k| {
                let pair = (i * 37 + k * 7) % 2_000;
                NewFinding {
                    cve_id: format!("CVE-2026-{:05}", 10_000 + pair),
                    product: format!("vendor{}:product{}", pair % 40, pair % 40),
                    kind: "application".into(),
                    items: vec![format!("Product {}", pair % 40)],
                    installed_version: "1.0".into(),
                    fixed_version: Some("1.1".into()),
                    source: "nvd".into(),
                    rule: "cpe".into(),
                }
            })
            .collect();
        store.sync_findings(&scope, device, &findings, &[], now).await?;
    }
    eprintln!("{} findings in {:.1} s", per_device * devices.len(), started.elapsed().as_secs_f64());

    // Deployments: rounds of one per device, each finished before the next is made.
    let rounds = args.deployments.div_ceil(devices.len().max(1)).min(10);
    let audit = Audit::new("dispatcher", now);
    let mut made = 0;
    'rounds: for round in 0..rounds {
        for chunk in devices.chunks(500) {
            if made >= args.deployments {
                break 'rounds;
            }
            let batch: Vec<NewDeployment> = chunk
                .iter()
                .take(args.deployments - made)
                .enumerate()
                .map(|(k, (org, device))| {
                    // Ids unique in this run (and across runs, by the start time).
                    let n = (made + k) as u64;
                    let id = format!("{:08x}-0000-7000-8000-{n:012x}", now.as_second() as u32);
                    NewDeployment {
                        id: id.clone(),
                        organization_id: org.clone(),
                        device_id: device.clone(),
                        kind: "install".into(),
                        ring: (round % 4) as u8,
                        updates: vec![DeployedPackage {
                            product: "vendor1:product1".into(),
                            version: format!("1.{round}"),
                            manager: "winget".into(),
                            name: "Product 1".into(),
                            from_version: "1.0".into(),
                            to_version: format!("1.{round}"),
                        }],
                        window_start: now - jiff::SignedDuration::from_hours(2),
                        window_end: now + jiff::SignedDuration::from_hours(1),
                        reboot_required: false,
                        previous_id: None,
                        detail: format!("round {round}"),
                        action: "deployment.scheduled".into(),
                        job: Some(NewJob {
                            id: format!("{:08x}-0000-7000-9000-{n:012x}", now.as_second() as u32),
                            idempotency_key: id,
                            kind: "install".into(),
                            payload: "{}".into(),
                            signature: String::new(),
                        }),
                    }
                })
                .collect();
            let ids = store.create_deployments(&audit, &partner.id, &batch).await?;
            for (k, id) in ids.iter().enumerate() {
                let status = if (made + k) % 50 == 0 { "failed" } else { "verified" };
                let change = DeploymentChange { status: status.into(), ..Default::default() };
                store.transition_deployment(&audit, &scope, id, &["scheduled"], &change).await?;
            }
            made += ids.len();
        }
    }
    eprintln!("{made} deployments in {:.1} s", started.elapsed().as_secs_f64());

    // The application, and a partner admin signed in as a browser would be.
    engine
        .create_user(
            &op,
            &proto::CreateUser {
                username: "admin@console.bench".into(),
                display_name: "Bench admin".into(),
                role: "partner_admin".into(),
                organization_id: None,
                password: PASSWORD.into(),
            },
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = ringfence_server::AppState::new(
        engine.clone(),
        ringfence_server::ServerConfig {
            secure_cookies: false,
            dispatch_every: None,
            records_every: None,
            ..Default::default()
        },
    );
    tokio::spawn(ringfence_server::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let login = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "admin@console.bench", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(login.status().is_success(), "signing in failed: {}", login.status());

    let mut rows = Vec::new();
    for page in [
        "/",
        "/queue",
        "/vulnerabilities",
        "/devices",
        "/deployments",
        "/deployments?hours=all&status=failed",
        "/schedule",
    ] {
        let mut samples = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        for _ in 0..args.requests {
            let t = Instant::now();
            let r = client.get(format!("{base}{page}")).send().await?;
            anyhow::ensure!(r.status().is_success(), "{page}: {}", r.status());
            bytes = r.bytes().await?.len();
            samples.push(t.elapsed());
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
        rows.push(Row {
            page: page.into(),
            requests: samples.len(),
            p50_ms: at(0.5),
            p95_ms: at(0.95),
            bytes,
        });
    }
    match args.format {
        Format::Json => output::json(&rows),
        _ => {
            println!("{:<40} {:>8} {:>10} {:>10} {:>10}", "page", "requests", "p50 ms", "p95 ms", "bytes");
            for r in &rows {
                println!(
                    "{:<40} {:>8} {:>10.1} {:>10.1} {:>10}",
                    r.page, r.requests, r.p50_ms, r.p95_ms, r.bytes
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
