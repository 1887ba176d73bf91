//! `ringfence bench dispatch`: one dispatch run over a fleet whose every device (an enrolled
//! agent that has checked in) is offered one approved update inside an open maintenance
//! window, on SQLite or PostgreSQL. The run
//! reads the fleet, plans it, signs one job per device and stores the deployments, their
//! jobs and their evidence events: the measured figure. Seeding is not measured.

use clap::Args;
use ringfence_engine::Engine;
use ringfence_model::{DeviceId, PartnerId, Timestamp};
use ringfence_proto as proto;
use ringfence_store::{Audit, DeviceUpdate};
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct DispatchBenchArgs {
    /// Devices, in organizations of 200.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// An empty database to use (postgres://…); default: a new SQLite file in a temporary folder.
    #[arg(long = "database", value_name = "URL")]
    database_url: Option<String>,
}

pub async fn run(args: DispatchBenchArgs) -> anyhow::Result<()> {
    if !(1..=200_000).contains(&args.devices) {
        anyhow::bail!(crate::InvalidArgument("--devices must be 1 to 200000".into()));
    }
    let (tmp, location, store) = crate::bench::bench_store(args.database_url.as_deref(), "dispatch").await?;
    // Seeding a large fleet on PostgreSQL outlasts the default offline threshold: every
    // enrolled agent counts as online for the run.
    let engine = Engine::new(store.clone()).with_offline_after(std::time::Duration::from_secs(24 * 3600));
    let now = Timestamp::now();
    let (partner, op) = crate::bench::bench_partner(&engine, "Dispatch bench").await?;
    eprintln!("seeding {} devices on {} …", args.devices, location.redacted());
    let seeded = Instant::now();
    let per_org = 200;
    let mut devices: Vec<DeviceId> = Vec::with_capacity(args.devices);
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
                    name: "HQ".into(),
                    time_zone: "UTC".into(),
                    address: String::new(),
                },
            )
            .await?;
        // Devices enroll as agents do and check in: only those are dispatched to.
        let token = engine
            .create_enrollment_token(
                &op,
                &proto::CreateEnrollmentToken {
                    site_id: site.id.to_string(),
                    name: "bench".into(),
                    expires_in_hours: None,
                    max_uses: None,
                },
            )
            .await?;
        for d in 0..per_org.min(args.devices - o * per_org) {
            let enrolled = engine
                .enroll(&proto::EnrollRequest {
                    token: token.secret.clone(),
                    hostname: format!("srv-{o:04}-{d:03}"),
                    machine_id: format!("{:032x}", o * per_org + d + 1),
                    os: "Debian GNU/Linux 12 (bookworm)".into(),
                    agent_version: "bench".into(),
                })
                .await?;
            let agent = engine.agent(&enrolled.credential).await?;
            let checkin = proto::CheckIn {
                agent_version: "bench".into(),
                reboot_required: false,
                boot_id: None,
                inventory_refused: None,
            };
            engine.agent_checkin(&agent, &checkin).await?;
            devices.push(agent.device_id);
        }
    }
    let update = DeviceUpdate {
        manager: "dpkg".into(),
        name: "openssl".into(),
        installed: "3.0.13-1~deb12u1".into(),
        candidate: "3.0.15-1~deb12u1".into(),
        origin: "bookworm-security".into(),
        classification: "security".into(),
        advisories: vec!["DSA-5764-1".into()],
        cves: vec!["CVE-2024-5535".into()],
        reboot_required: false,
        rollback: "downgrade".into(),
    };
    for d in &devices {
        store.replace_device_updates(&partner.id, d, std::slice::from_ref(&update), now).await?;
    }
    // Every device in ring 0, in a window open now.
    let hour = now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:00").to_string();
    engine
        .create_policy(
            &op,
            &proto::PolicyInput {
                name: "Bench baseline".into(),
                level: "partner".into(),
                target_id: None,
                priority: 0,
                settings: json!({
                    "ring": 0,
                    "max_concurrent": 10_000,
                    "maintenance_windows": [{"dtstart": hour, "rrule": "FREQ=DAILY", "duration": "PT12H"}],
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                locked: Vec::new(),
            },
        )
        .await?;
    engine
        .decide(
            &op,
            &proto::DecisionRequest {
                updates: vec![proto::UpdateRef {
                    product: "openssl".into(),
                    version: update.candidate.clone(),
                }],
                decision: "approve".into(),
                reason: "bench".into(),
                organization_id: None,
                defer_until: None,
                emergency: false,
            },
        )
        .await?;
    eprintln!("seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    let started = Instant::now();
    let summary = engine.dispatch_partner(&partner.id).await?;
    let took = started.elapsed();
    let again = Instant::now();
    let second = engine.dispatch_partner(&partner.id).await?;
    let took_again = again.elapsed();
    println!(
        "dispatch of {} devices on {}: {} deployments with signed jobs in {:.2} s ({:.0}/s); a second run found {} new in {:.2} s",
        args.devices,
        store.backend(),
        summary.scheduled,
        took.as_secs_f64(),
        summary.scheduled as f64 / took.as_secs_f64(),
        second.scheduled,
        took_again.as_secs_f64()
    );
    if summary.scheduled != args.devices || second.scheduled != 0 {
        anyhow::bail!("expected {} deployments and none on the second run", args.devices);
    }
    cleanup(&store, &partner.id).await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

async fn cleanup(store: &ringfence_store::DynStore, partner: &PartnerId) {
    let _ = store.delete_partner(&Audit::new("cli:bench", Timestamp::now()), partner).await;
}
