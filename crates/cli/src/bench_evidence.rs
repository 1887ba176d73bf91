//! `ringfence bench evidence`: an organization's 180-day audit evidence bundle and its
//! offline verification, on SQLite or PostgreSQL. Seeding replays a synthetic history into
//! the chain (findings opened and resolved, approvals, deployments installed and verified,
//! inventory scans, and another client's events that the bundle carries as stubs) with a
//! signed checkpoint after every batch, as the server's periodic checkpoints would be; it is
//! not measured. The figures are the export (read, hash, write the zip) and `verify_bundle`.

use clap::Args;
use jiff::SignedDuration;
use ringfence_engine::Engine;
use ringfence_model::{Name, OrganizationId, Timestamp};
use ringfence_proto as proto;
use ringfence_store::{Audit, Location, TimedEvent};
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct EvidenceBenchArgs {
    /// Devices of the audited organization.
    #[arg(long, default_value_t = 5_000)]
    devices: usize,
    /// Events in the window, all organizations together (a tenth are another client's).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// The audit window.
    #[arg(long, default_value_t = 180)]
    days: u32,
    /// Also print the bundle's PDF summary with Chromium.
    #[arg(long)]
    pdf: bool,
    /// An empty database to use (postgres://…); default: a new SQLite file in a temporary folder.
    #[arg(long = "database", value_name = "URL")]
    database_url: Option<String>,
    /// Keep the bundle here (to profile `ringfence evidence verify --bundle` on it).
    #[arg(long, value_name = "FILE")]
    keep: Option<std::path::PathBuf>,
}

const BATCH: usize = 20_000;

pub async fn run(args: EvidenceBenchArgs) -> anyhow::Result<()> {
    if !(1..=100_000).contains(&args.devices) || !(10..=20_000_000).contains(&args.events) {
        anyhow::bail!(crate::InvalidArgument(
            "--devices must be 1 to 100000 and --events 10 to 20000000".into()
        ));
    }
    if !(1..=400).contains(&args.days) {
        anyhow::bail!(crate::InvalidArgument("--days must be 1 to 400".into()));
    }
    let tmp = std::env::temp_dir().join(format!("ringfence-bench-evidence-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let location = match &args.database_url {
        Some(url) => Location::parse(url),
        None => Location::Sqlite(tmp.join("bench.db")),
    };
    let store = crate::open_store(&location).await?;
    let engine = Engine::new(store.clone());
    let now = Timestamp::now();
    let name = Name::parse("name", &format!("Evidence bench {}", now.as_millisecond()))?;
    let partner = store.create_partner(&Audit::new("cli:bench", now), &name).await?;
    let op = engine.operator("bench", partner.id.as_str()).await?;
    let mk = |n: &str| proto::CreateOrganization { name: n.into(), notes: String::new() };
    let audited = engine.create_organization(&op, &mk("Audited client")).await?.id;
    let other = engine.create_organization(&op, &mk("Another client")).await?.id;
    eprintln!("seeding {} events over {} days on {} …", args.events, args.days, location.redacted());
    let seeded = Instant::now();
    let start = now - SignedDuration::from_hours(i64::from(args.days) * 24);
    let step = SignedDuration::from_micros(
        (i64::from(args.days) * 86_400_000_000 - 60_000_000) / args.events.max(1) as i64,
    );
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..args.events {
        let at = start + step * i as i32;
        batch.push(synthetic(i, at, args.devices, &audited, &other));
        if batch.len() == BATCH || i + 1 == args.events {
            store.import_events(&partner.id, &batch).await?;
            batch.clear();
            engine.checkpoint_chains().await?;
        }
    }
    eprintln!("seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    // The store read alone, for the breakdown (not part of the figure).
    let t = Instant::now();
    let (mut next, mut read) = (1, 0usize);
    loop {
        let batch = store.events_between(partner.id.as_str(), next, i64::MAX, 5_000).await?;
        let Some(last) = batch.last() else { break };
        next = last.seq + 1;
        read += batch.len();
    }
    let read_alone = t.elapsed();
    let out = tmp.join("bundle.zip");
    let q = proto::EvidenceExportQuery {
        organization_id: audited.to_string(),
        from: Some(start.to_string()),
        to: Some(now.to_string()),
        days: None,
        no_pdf: Some(!args.pdf),
    };
    let t = Instant::now();
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    let summary = engine.export_evidence(&op, &q, f).await?;
    let export = t.elapsed();
    let size = std::fs::metadata(&out)?.len();
    let t = Instant::now();
    let report =
        ringfence_evidence::verify_bundle(std::io::BufReader::new(std::fs::File::open(&out)?), None)?;
    let verify = t.elapsed();
    if !report.ok() {
        anyhow::bail!(
            "the bundle did not verify: {}",
            report.problems.first().map(ToString::to_string).unwrap_or_default()
        );
    }
    println!(
        "export {:.2} s (of which reading {read} events from the store alone takes {:.2} s), verify {:.2} s: \
         {} events ({} in full, {} stubs), {} rows, {} checkpoints, {:.0} MB",
        export.as_secs_f64(),
        read_alone.as_secs_f64(),
        verify.as_secs_f64(),
        summary.events,
        summary.full,
        summary.stubs,
        summary.rows,
        summary.checkpoints,
        size as f64 / 1e6
    );
    if let Some(keep) = &args.keep {
        std::fs::rename(&out, keep).or_else(|_| std::fs::copy(&out, keep).map(|_| ()))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// The i-th event of the synthetic history: nine in ten belong to the audited organization.
fn synthetic(
    i: usize,
    at: Timestamp,
    devices: usize,
    audited: &OrganizationId,
    other: &OrganizationId,
) -> TimedEvent {
    let device = format!("dev-{:05}", (i / 10) % devices);
    let cve = format!("CVE-2026-{:05}", (i / 7) % 900);
    let ev = |action: &str, kind: &'static str, id: String, org: &OrganizationId, payload| TimedEvent {
        at,
        actor: "system:bench".into(),
        action: action.into(),
        object_kind: kind,
        object_id: id,
        organization_id: Some(org.clone()),
        payload,
    };
    match i % 10 {
        0 => ev("inventory.update", "device", device, other, json!({"items": 812, "updated": 3})),
        1 | 2 => ev(
            "findings.change",
            "device",
            device.clone(),
            audited,
            json!({"hostname": device, "opened": [{"finding": format!("f{i}"), "cve": cve, "product": "openssl",
                "severity": if i.is_multiple_of(3) { "critical" } else { "high" }, "kev_due": null}], "resolved": []}),
        ),
        3 => ev(
            "approval.approved",
            "approval",
            format!("a{i}"),
            audited,
            json!({"after": {"id": format!("a{i}"), "product": "openssl", "version": "3.0.15-1",
                "organization_id": audited, "decision": "approved", "decided_by": "system:policy", "rule": "security"}}),
        ),
        4 | 5 => ev(
            if i % 10 == 4 { "deployment.installed" } else { "deployment.verified" },
            "deployment",
            format!("d{}", i / 10),
            audited,
            json!({"after": {"id": format!("d{}", i / 10), "device_id": device, "kind": "install", "status": "installed",
                "updates": [{"product": "openssl", "version": "3.0.15-1", "manager": "apt", "name": "openssl",
                "from_version": "3.0.14-1", "to_version": "3.0.15-1"}]}}),
        ),
        6 => ev(
            "findings.change",
            "device",
            device.clone(),
            audited,
            json!({"hostname": device, "opened": [], "resolved": [{"finding": format!("f{i}"), "cve": cve,
                "product": "openssl", "severity": "high", "kev_due": null, "detected_at": at.as_microsecond() - 86_400_000_000i64,
                "resolution": "updated", "deployment": null}]}),
        ),
        _ => ev("inventory.update", "device", device, audited, json!({"items": 640, "updated": 1})),
    }
}
