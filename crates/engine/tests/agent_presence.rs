//! A device is online while its agent checks in within the configured threshold, and
//! offline after it; concurrent inventory reports are each applied once.

use ringfence_engine::{Clock, Engine};
use ringfence_model::*;
use ringfence_proto as proto;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

async fn enrolled(engine: &Engine, partner: &str, n: usize) -> (ringfence_model::Principal, Vec<String>) {
    let audit = ringfence_store::Audit::new("test", Timestamp::now());
    engine.store().create_partner(&audit, &Name::parse("name", partner).unwrap()).await.unwrap();
    let op = engine.operator("test", partner).await.unwrap();
    let org = engine
        .create_organization(&op, &proto::CreateOrganization { name: "Client".into(), notes: String::new() })
        .await
        .unwrap();
    let site = engine
        .create_site(
            &op,
            &proto::CreateSite {
                organization_id: org.id.to_string(),
                name: "HQ".into(),
                time_zone: "Europe/Berlin".into(),
                address: String::new(),
            },
        )
        .await
        .unwrap();
    let token = engine
        .create_enrollment_token(
            &op,
            &proto::CreateEnrollmentToken {
                site_id: site.id.to_string(),
                name: "rollout".into(),
                expires_in_hours: None,
                max_uses: None,
            },
        )
        .await
        .unwrap();
    let mut credentials = Vec::new();
    for k in 0..n {
        let r = engine
            .enroll(&proto::EnrollRequest {
                token: token.secret.clone(),
                hostname: format!("host-{k:02}"),
                machine_id: format!("{:032x}", 0xabc0_0000_u64 + k as u64),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                agent_version: "test".into(),
            })
            .await
            .unwrap();
        credentials.push(r.credential);
    }
    (op, credentials)
}

#[tokio::test]
async fn a_device_goes_offline_after_the_configured_threshold() {
    let (store, _dir) = ringfence_store::testing::fresh_sqlite().await;
    let store: ringfence_store::DynStore = Arc::new(store);
    let now = Arc::new(AtomicI64::new(Timestamp::now().as_second()));
    let clock = {
        let now = now.clone();
        Clock::from_fn(move || Timestamp::from_second(now.load(Ordering::SeqCst)).unwrap())
    };
    let engine = Engine::with_clock(store.clone(), clock.clone());
    let (op, creds) = enrolled(&engine, "Presence MSP", 1).await;
    let agent = engine.agent(&creds[0]).await.unwrap();
    let device = agent.device_id.to_string();

    let state = engine.agent_state(&op, &device).await.unwrap().unwrap();
    assert!(!state.online, "never checked in: offline");
    engine
        .agent_checkin(
            &agent,
            &proto::CheckIn {
                agent_version: "test".into(),
                reboot_required: false,
                boot_id: None,
                inventory_refused: None,
            },
        )
        .await
        .unwrap();
    assert!(engine.agent_state(&op, &device).await.unwrap().unwrap().online);

    now.fetch_add(9 * 60, Ordering::SeqCst);
    assert!(engine.agent_state(&op, &device).await.unwrap().unwrap().online, "9 min: still online");
    now.fetch_add(2 * 60, Ordering::SeqCst);
    assert!(!engine.agent_state(&op, &device).await.unwrap().unwrap().online, "11 min: offline");

    let patient =
        Engine::with_clock(store, clock).with_offline_after(std::time::Duration::from_secs(30 * 60));
    assert!(patient.agent_state(&op, &device).await.unwrap().unwrap().online, "threshold 30 min");
}

#[tokio::test]
async fn concurrent_reports_are_batched_and_each_applied_once() {
    let (store, _dir) = ringfence_store::testing::fresh_sqlite().await;
    let engine = Engine::new(Arc::new(store));
    let (op, creds) = enrolled(&engine, "Batch MSP", 12).await;
    let report = |k: usize, seq: i64| {
        let mut inv =
            ringfence_inventory::Inventory { os: ringfence_inventory::OsInfo::debian("12"), items: vec![] };
        for i in 0..50 {
            inv.items.push(ringfence_inventory::Item::new(
                ringfence_inventory::ItemKind::Package,
                format!("pkg-{i}"),
                format!("1.{k}"),
            ));
        }
        proto::AgentInventory { seq, full: Some(inv), delta: None }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (k, cred) in creds.iter().enumerate() {
        let (engine, cred) = (engine.clone(), cred.clone());
        let (first, retry) = (report(k, 1), report(k, 1));
        tasks.spawn(async move {
            let agent = engine.agent(&cred).await.unwrap();
            // The report and its retry race each other: exactly one is applied.
            let (a, b) =
                tokio::join!(engine.agent_inventory(&agent, first), engine.agent_inventory(&agent, retry));
            (agent.device_id, a.unwrap(), b.unwrap())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (device, a, b) = r.unwrap();
        assert_eq!([a.applied, b.applied].iter().filter(|x| **x).count(), 1, "{a:?} {b:?}");
        assert_eq!((a.seq, b.seq), (1, 1));
        let stored = engine.store().device_inventory(&op.scope(), &device).await.unwrap();
        assert_eq!(stored.items.len(), 50);
        let history = engine.software_history(&op, device.as_str(), 100).await.unwrap();
        assert!(history.is_empty(), "the first report is the baseline, not 50 installs");
        let state = engine.agent_state(&op, device.as_str()).await.unwrap().unwrap();
        assert_eq!(state.inventory_seq, 1);
    }
}

#[tokio::test]
async fn the_agent_accepts_jobs_the_server_signs_with_the_key_it_pinned() {
    let (store, _dir) = ringfence_store::testing::fresh_sqlite().await;
    let engine = Engine::new(Arc::new(store));
    let audit = ringfence_store::Audit::new("test", Timestamp::now());
    engine.store().create_partner(&audit, &Name::parse("name", "Jobs MSP").unwrap()).await.unwrap();
    let pinned = engine.server_public_key().await.unwrap();
    let now = Timestamp::now();
    let job = proto::jobs::Job {
        id: "job-1".into(),
        idempotency_key: "dep-1-install".into(),
        device_id: "dev-1".into(),
        deployment_id: Some("dep-1".into()),
        work: proto::jobs::JobKind::Install {
            packages: vec![proto::jobs::PackageVersion {
                manager: "dpkg".into(),
                name: "openssl".into(),
                version: "3.0.15-1~deb12u1".into(),
            }],
            reboot_allowed: false,
            health_checks: Vec::new(),
        },
        window_start: now,
        window_end: now + jiff::SignedDuration::from_hours(3),
        issued_at: now,
    };
    let signed = engine.sign_job(&job).await.unwrap();
    let inside = now + jiff::SignedDuration::from_mins(5);
    assert_eq!(proto::jobs::verify(&signed, &pinned, "dev-1", inside).unwrap(), job);
    // The key is the same on every call (it is kept in the database), so pinned agents keep
    // accepting jobs across server restarts.
    assert_eq!(engine.server_public_key().await.unwrap(), pinned);
    // A job the engine would not sign: a package name that is not one.
    let mut bad = job.clone();
    bad.work = proto::jobs::JobKind::Rollback {
        packages: vec![proto::jobs::PackageVersion {
            manager: "dpkg".into(),
            name: "openssl`id`".into(),
            version: "3.0.11".into(),
        }],
        health_checks: Vec::new(),
    };
    assert!(engine.sign_job(&bad).await.is_err());
}
