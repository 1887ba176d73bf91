//! `ringfence bench appliances`: one collector polls a fleet of appliances, and sweeps a
//! range at a configured rate. The appliances are real SNMP agents in this process (one UDP
//! socket each on 127.0.0.1, answering SNMPv2c as a FortiGate 100F on FortiOS 7.0.11); the
//! collector is the agent's own code; the server side is the engine over SQLite or
//! PostgreSQL with the demo's vulnerability data, so every answer is identified, correlated
//! and stored as it would be in production. The HTTP hop between collector and server is
//! left out. The sweep probes addresses that do not answer, so it shows the pacing alone.

use clap::Args;
use ringfence_agent_testkit::snmp::{Profile, SimulatedFleet};
use ringfence_engine::Engine;
use ringfence_engine::appliances::SecretKey;
use ringfence_model::{Name, Timestamp};
use ringfence_proto as proto;
use ringfence_proto::collector::{CollectorJob, CollectorWork, CredentialRef, Ipv4Range};
use ringfence_store::{ApplianceIdentity, Audit, Location, NewAppliance};
use std::time::Instant;

#[derive(Args)]
pub struct ApplianceBenchArgs {
    /// Appliances the collector polls.
    #[arg(long, default_value_t = 2_000)]
    appliances: usize,
    /// The range a sweep covers (IPv4 CIDR or first-last; addresses that do not answer).
    #[arg(long, default_value = "127.77.0.0/22")]
    sweep: String,
    /// The sweep's probes a second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Skip the sweep.
    #[arg(long)]
    no_sweep: bool,
    /// An empty database to use (postgres://…); default: a new SQLite file in a temporary folder.
    #[arg(long = "database", value_name = "URL")]
    database_url: Option<String>,
}

pub async fn run(args: ApplianceBenchArgs) -> anyhow::Result<()> {
    if !(1..=proto::collector::MAX_TARGETS).contains(&args.appliances) {
        anyhow::bail!(crate::InvalidArgument(format!(
            "--appliances must be 1 to {}",
            proto::collector::MAX_TARGETS
        )));
    }
    if !(1..=proto::collector::MAX_RATE).contains(&args.rate) {
        anyhow::bail!(crate::InvalidArgument(format!("--rate must be 1 to {}", proto::collector::MAX_RATE)));
    }
    let range = Ipv4Range::parse(&args.sweep).map_err(|e| crate::InvalidArgument(format!("--sweep: {e}")))?;
    if range.len() > u64::from(proto::collector::MAX_RANGE) {
        anyhow::bail!(crate::InvalidArgument(format!(
            "--sweep covers {} addresses; at most {}",
            range.len(),
            proto::collector::MAX_RANGE
        )));
    }
    let tmp = std::env::temp_dir().join(format!("ringfence-bench-appliances-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let location = match &args.database_url {
        Some(url) => Location::parse(url),
        None => Location::Sqlite(tmp.join("bench.db")),
    };
    let store = crate::open_store(&location).await?;
    let engine = Engine::new(store.clone()).with_secret_key(SecretKey::generate());
    let now = Timestamp::now();
    ringfence_engine::intel::import_demo(store.as_ref(), now).await.map_err(|e| anyhow::anyhow!(e))?;
    engine.reload_index().await?;
    let name = Name::parse("name", &format!("Appliance bench {}", now.as_millisecond()))?;
    let partner = store.create_partner(&Audit::new("cli:bench", now), &name).await?;
    let op = engine.operator("bench", partner.id.as_str()).await?;
    let org = engine
        .create_organization(&op, &proto::CreateOrganization { name: "Client".into(), notes: String::new() })
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
    let token = engine
        .create_enrollment_token(
            &op,
            &proto::CreateEnrollmentToken {
                site_id: site.id.to_string(),
                name: "collector".into(),
                expires_in_hours: None,
                max_uses: Some(1),
            },
        )
        .await?;
    let enrolled = engine
        .enroll(&proto::EnrollRequest {
            token: token.secret,
            hostname: "collector".into(),
            machine_id: format!("{:032x}", now.as_millisecond()),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            agent_version: "bench".into(),
        })
        .await?;
    engine
        .add_collector(&op, &proto::appliances::AddCollector { device_id: enrolled.device_id.clone() })
        .await?;
    let collector = engine.agent(&enrolled.credential).await?;
    let credential = ringfence_agent_testkit::snmp::v2c_credential();
    let cred = engine
        .create_snmp_credential(
            &op,
            &proto::appliances::CreateSnmpCredential {
                name: "fleet".into(),
                organization_id: None,
                credential: credential.clone(),
            },
        )
        .await?;

    eprintln!("starting {} simulated appliances …", args.appliances);
    let n = args.appliances;
    let fleet = tokio::task::spawn_blocking(move || SimulatedFleet::start(n, &Profile::fortigate_100f()))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot start the simulated appliances: {e}"))?;
    let new: Vec<NewAppliance> = fleet
        .addresses()
        .iter()
        .enumerate()
        .map(|(i, a)| NewAppliance {
            site_id: site.id.clone(),
            hostname: format!("fw-{i:05}"),
            criticality: ringfence_model::Criticality::High,
            internet_facing: true,
            source: "snmp".into(),
            address: Some(a.ip().to_string()),
            port: Some(a.port()),
            collector_id: Some(collector.device_id.clone()),
            credential_id: Some(cred.id.clone()),
            identity: ApplianceIdentity::default(),
            poll_minutes: 240,
            next_poll_at: Some(now),
            notes: None,
            origin: "bench".into(),
        })
        .collect();
    store
        .create_appliances(
            &Audit::new("cli:bench", now),
            &ringfence_model::Scope::partner(partner.id.clone()),
            &new,
        )
        .await?;

    let started = Instant::now();
    let lease = engine.collector_lease(&collector).await?;
    let leased = started.elapsed();
    let config = ringfence_agent::enroll::AgentConfig {
        server: String::new(),
        device_id: enrolled.device_id.clone(),
        credential: enrolled.credential.clone(),
        server_public_key: enrolled.server_public_key.clone(),
    };
    let mut polled = std::time::Duration::ZERO;
    let mut reported = std::time::Duration::ZERO;
    let (mut ok, mut results) = (0usize, 0usize);
    for signed in &lease.jobs {
        let job = ringfence_agent::collector::take(&config, signed, Timestamp::now())
            .map_err(|e| anyhow::anyhow!("the collector refused its job: {e}"))?;
        let t = Instant::now();
        let report = ringfence_agent::collector::run_job_async(&job).await;
        polled += t.elapsed();
        results += report.results.len();
        ok += report.results.iter().filter(|r| r.outcome.name() == "ok").count();
        let t = Instant::now();
        engine.collector_report(&collector, report).await?;
        reported += t.elapsed();
    }
    let total = started.elapsed();
    let identified = store
        .list_appliances(&ringfence_model::Scope::partner(partner.id.clone()), &Default::default())
        .await?
        .iter()
        .filter(|a| a.identity.firmware.as_deref() == Some("7.0.11"))
        .count();
    drop(fleet);
    println!("backend                 {}", location.redacted());
    println!("appliances              {}", args.appliances);
    println!("jobs leased             {} in {:.2} s", lease.jobs.len(), leased.as_secs_f64());
    println!("polled (collector)      {results} results, {ok} answered, in {:.2} s", polled.as_secs_f64());
    println!("reported (server)       identified, correlated and stored in {:.2} s", reported.as_secs_f64());
    println!("identified as 7.0.11    {identified}");
    println!("total (target < 60 s)   {:.2} s", total.as_secs_f64());
    if ok != args.appliances || identified != args.appliances {
        anyhow::bail!(
            "only {ok} of {} appliances answered and {identified} were identified",
            args.appliances
        );
    }

    if !args.no_sweep {
        let job = CollectorJob {
            id: "bench-sweep".into(),
            collector_device_id: enrolled.device_id.clone(),
            credentials: vec![CredentialRef { id: "fleet".into(), credential }],
            work: CollectorWork::Discover {
                scan_id: "bench-sweep".into(),
                range: args.sweep.clone(),
                port: 161,
                rate_per_sec: args.rate,
            },
            timeout_ms: 500,
            retries: 0,
            concurrency: 256,
            issued_at: Timestamp::now(),
            expires_at: Timestamp::now() + jiff::SignedDuration::from_hours(1),
        };
        job.check().map_err(|e| anyhow::anyhow!(e))?;
        let t = Instant::now();
        let (found, summary) = ringfence_agent::snmp::sweep(&job).await;
        let took = t.elapsed().as_secs_f64();
        let floor = f64::from(summary.probed.saturating_sub(1)) / f64::from(args.rate);
        println!(
            "sweep                   {} ({} addresses) at {} probes/s",
            args.sweep,
            range.len(),
            args.rate
        );
        println!(
            "sweep took              {took:.2} s for {} probes ({:.1} probes/s; the rate allows no less than {floor:.2} s); {} answered",
            summary.probed,
            f64::from(summary.probed) / took.max(1e-9),
            found.len()
        );
        if u64::from(summary.probed) > range.len() * job.credentials.len() as u64 {
            anyhow::bail!("the sweep probed {} times, more than its range allows", summary.probed);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
