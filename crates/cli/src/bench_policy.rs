//! `ringfence bench policy`: the two fleet-wide computations of policies and prioritization,
//! on synthetic data shaped like a large MSP.
//!
//! - Effective policies: every device's policy merged from the partner, its organization,
//!   its site, its groups and its own, with the provenance of every field.
//! - Queue ranking: every open finding scored (CVSS, EPSS, KEV, exposure, criticality,
//!   prevalence, SSVC), grouped by the update that fixes it, linked to the devices' pending
//!   updates and sorted by risk removed: the work of one remediation-queue request after
//!   its rows are read.

use crate::rng::Rng;
use clap::Args;
use ringfence_engine::remediation::rank_queue;
use ringfence_model::{DeviceId, OrganizationId, Timestamp};
use ringfence_policy::{Level, Placement, Policy, PolicySet};
use ringfence_store::{DeviceUpdate, DeviceUpdateRow, QueueRow};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct PolicyBenchArgs {
    /// Devices, spread over organizations of 200 devices with two sites each.
    #[arg(long, default_value_t = 100_000)]
    devices: usize,
    /// Open findings in the queue to rank.
    #[arg(long, default_value_t = 1_000_000)]
    findings: usize,
    /// Measured runs of each computation (the best and the median are printed).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const DEVICES_PER_ORG: usize = 200;
const GROUPS: usize = 12;
const PRODUCTS: usize = 3_000;
const CVES_PER_PRODUCT: usize = 40;

struct Device {
    org: String,
    site: String,
    groups: Vec<String>,
    id: String,
}

fn policy(id: String, level: Level, target: &str, priority: i32, settings: serde_json::Value) -> Policy {
    let settings: BTreeMap<String, serde_json::Value> = serde_json::from_value(settings).unwrap_or_default();
    Policy {
        name: format!("{} policy {id}", level.label()),
        id,
        level,
        target: target.into(),
        priority,
        settings,
        locked: BTreeSet::new(),
    }
}

/// A partner policy with locks, one per organization, one per site, one per group and one for
/// every hundredth device: about 2,500 policies for 100,000 devices.
fn fleet(devices: usize, rng: &mut Rng) -> (Vec<Device>, PolicySet) {
    let mut policies = Vec::new();
    let mut partner = policy(
        "p".into(),
        Level::Partner,
        "partner",
        0,
        json!({"ring": 2, "reboot": "if_required", "max_concurrent": 25, "validation_hours": {"security": 24, "feature": 72}}),
    );
    partner.locked.insert("validation_hours".into());
    policies.push((String::new(), partner));
    for g in 0..GROUPS {
        let id = format!("group-{g}");
        policies.push((
            id.clone(),
            policy(
                format!("pg{g}"),
                Level::Group,
                &id,
                g as i32,
                json!({"ring": g % 4, "auto_rollback": g % 2 == 0}),
            ),
        ));
    }
    let orgs = devices.div_ceil(DEVICES_PER_ORG);
    for o in 0..orgs {
        let org = format!("org-{o}");
        policies.push((
            org.clone(),
            policy(format!("po{o}"), Level::Organization, &org, 0, json!({"max_concurrent": 5 + o % 20})),
        ));
        for s in 0..2 {
            let site = format!("{org}-site-{s}");
            policies.push((
                site.clone(),
                policy(format!("ps{o}-{s}"), Level::Site, &site, 0, json!({"reboot": "scheduled"})),
            ));
        }
    }
    let mut out = Vec::with_capacity(devices);
    for d in 0..devices {
        let o = d / DEVICES_PER_ORG;
        let id = format!("device-{d}");
        let mut groups = vec![format!("group-{}", rng.below(GROUPS))];
        if rng.below(3) == 0 {
            let second = format!("group-{}", rng.below(GROUPS));
            if second != groups[0] {
                groups.push(second);
            }
        }
        if d % 100 == 0 {
            policies.push((id.clone(), policy(format!("pd{d}"), Level::Device, &id, 0, json!({"ring": 0}))));
        }
        out.push(Device { org: format!("org-{o}"), site: format!("org-{o}-site-{}", d % 2), groups, id });
    }
    (out, PolicySet::new(policies))
}

fn queue(
    devices: usize,
    findings: usize,
    rng: &mut Rng,
    now: Timestamp,
) -> (Vec<QueueRow>, Vec<DeviceUpdateRow>) {
    let device_ids: Vec<DeviceId> =
        (0..devices).map(|d| DeviceId::from_stored(format!("device-{d}"))).collect();
    let org_ids: Vec<OrganizationId> = (0..devices.div_ceil(DEVICES_PER_ORG))
        .map(|o| OrganizationId::from_stored(format!("org-{o}")))
        .collect();
    let mut rows = Vec::with_capacity(findings);
    let mut updates = Vec::new();
    let mut offered: BTreeSet<(usize, usize)> = BTreeSet::new();
    for _ in 0..findings {
        let d = rng.below(devices);
        let p = rng.popular(PRODUCTS);
        let c = rng.below(CVES_PER_PRODUCT);
        let fixed = if p.is_multiple_of(17) {
            None
        } else {
            Some(format!("{}.{}.{}-1", 1 + p % 5, c / 10, 10 + c / 10))
        };
        let name = format!("pkg{p}");
        let cvss = if rng.below(10) == 0 { None } else { Some((rng.below(100) as f64) / 10.0) };
        rows.push(QueueRow {
            organization_id: org_ids[d / DEVICES_PER_ORG].clone(),
            device_id: device_ids[d].clone(),
            hostname: format!("host-{d}"),
            cve_id: format!("CVE-2026-{:05}", p * CVES_PER_PRODUCT + c),
            product: name.clone(),
            items: vec![name.clone(), format!("lib{name}")],
            installed_version: format!("{}.0.1-1", 1 + p % 5),
            fixed_version: fixed.clone(),
            first_detected: now,
            role: if d.is_multiple_of(250) { "domain_controller".into() } else { "workstation".into() },
            internet_facing: d.is_multiple_of(20),
            holds_sensitive_data: d.is_multiple_of(7),
            criticality: ["low", "medium", "high", "critical"][d % 4].into(),
            cvss_score: cvss,
            cvss_version: cvss.map(|_| "3.1".into()),
            cvss_vector: None,
            kev: rng.below(200) == 0,
            kev_ransomware: rng.below(2000) == 0,
            epss: Some(rng.unit() * rng.unit()),
        });
        // Half the devices have already been offered the newest fix of the product.
        if let Some(fixed) = fixed
            && d.is_multiple_of(2)
            && offered.insert((d, p))
        {
            updates.push(DeviceUpdateRow {
                device_id: device_ids[d].clone(),
                organization_id: org_ids[d / DEVICES_PER_ORG].clone(),
                hostname: format!("host-{d}"),
                update: DeviceUpdate {
                    manager: "dpkg".into(),
                    name,
                    installed: format!("{}.0.1-1", 1 + p % 5),
                    candidate: fixed,
                    origin: "Debian-Security".into(),
                    classification: "security".into(),
                    advisories: Vec::new(),
                    cves: Vec::new(),
                    reboot_required: p.is_multiple_of(9),
                    rollback: "downgrade".into(),
                },
                first_seen: now,
                reported_at: now,
            });
        }
    }
    (rows, updates)
}

fn summary(label: &str, mut samples: Vec<Duration>, target: Duration) {
    samples.sort();
    let best = samples[0];
    let median = samples[samples.len() / 2];
    let verdict = if median < target { "within" } else { "OVER" };
    println!(
        "{label}: best {:.3} s, median {:.3} s over {} runs ({verdict} the {:.1} s target)",
        best.as_secs_f64(),
        median.as_secs_f64(),
        samples.len(),
        target.as_secs_f64()
    );
}

pub fn run(args: PolicyBenchArgs) -> anyhow::Result<()> {
    if args.devices == 0 || args.runs == 0 {
        anyhow::bail!("--devices and --runs must be at least 1");
    }
    let mut rng = Rng(0x5eed_0005);
    let now = Timestamp::now();
    let (devices, set) = fleet(args.devices, &mut rng);
    println!("{} devices, {} findings", args.devices, args.findings);

    let mut samples = Vec::new();
    let mut fields = 0usize;
    for _ in 0..args.runs {
        let started = Instant::now();
        fields = 0;
        for d in &devices {
            let at = Placement { organization: &d.org, site: &d.site, groups: &d.groups, device: &d.id };
            let effective =
                set.effective(at).map_err(|t| anyhow::anyhow!("the synthetic policies tie: {t:?}"))?;
            fields += effective.len();
        }
        samples.push(started.elapsed());
    }
    println!("effective policies: {fields} effective fields with provenance");
    summary("effective policies for every device", samples, Duration::from_secs(1));

    let (rows, updates) = queue(args.devices, args.findings, &mut rng, now);
    let mut samples = Vec::new();
    let mut entries = 0;
    for _ in 0..args.runs {
        let started = Instant::now();
        let ranked = rank_queue(now, &rows, &updates, args.devices);
        samples.push(started.elapsed());
        entries = ranked.len();
        std::hint::black_box(ranked);
    }
    println!(
        "queue: {} findings and {} pending updates ranked into {entries} entries",
        rows.len(),
        updates.len()
    );
    summary("re-ranking the remediation queue", samples, Duration::from_secs(2));
    Ok(())
}

#[derive(Args)]
pub struct PlanBenchArgs {
    /// Devices, in organizations of 200 in five time zones.
    #[arg(long, default_value_t = 100_000)]
    devices: usize,
    /// Approved updates every device needs.
    #[arg(long, default_value_t = 20)]
    updates: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// `ringfence bench plan`: the rollout planner over the whole fleet.
pub fn plan(args: PlanBenchArgs) -> anyhow::Result<()> {
    use ringfence_schedule::planner::{self, Device, Org, Snapshot, Update, WindowSet};
    use ringfence_schedule::rings::{Gate, RingProgress, default_rings};
    use ringfence_schedule::{Blackout, Duration as WDuration, Recurrence, Rule};
    if args.devices == 0 || args.runs == 0 || args.updates == 0 {
        anyhow::bail!("--devices, --updates and --runs must be at least 1");
    }
    let zones = ["America/New_York", "America/Chicago", "Europe/London", "Australia/Sydney", "Asia/Kolkata"];
    let now: Timestamp = "2026-12-07T12:00:00Z".parse()?;
    let day = |d: i64| now.checked_add(jiff::SignedDuration::from_hours(24 * d)).expect("in range");
    let orgs_n = args.devices.div_ceil(DEVICES_PER_ORG);
    let mut orgs = Vec::new();
    let mut sets = Vec::new();
    for k in 0..orgs_n {
        let tz = zones[k % zones.len()];
        let (rule, len) =
            if k % 3 == 2 { ("FREQ=WEEKLY;BYDAY=SA,SU", "PT5H") } else { ("FREQ=DAILY", "PT3H") };
        sets.push(WindowSet {
            windows: vec![Recurrence::new(
                tz,
                "2026-12-01T02:00".parse()?,
                Rule::parse(rule)?,
                WDuration::parse(len)?,
                vec![],
            )?],
        });
        orgs.push(Org {
            name: format!("org-{k}"),
            blackouts: if k % 4 == 1 { vec![Blackout { start: day(2), end: day(4) }] } else { vec![] },
            business_hours: Some(Recurrence::new(
                tz,
                "2026-12-01T08:00".parse()?,
                Rule::parse("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")?,
                WDuration::parse("PT10H")?,
                vec![],
            )?),
            max_concurrent: 25,
        });
    }
    let rings = default_rings();
    let validated = |rings_done: usize| -> Vec<RingProgress> {
        (0..4)
            .map(|r| {
                if r < rings_done {
                    RingProgress { entered_at: Some(day(-5 + r as i64)), verified: 20, failed: 0 }
                } else {
                    RingProgress::default()
                }
            })
            .collect()
    };
    // A mix: some updates through every ring, some with rings still validating, one halted.
    let updates: Vec<Update> = (0..args.updates)
        .map(|u| Update {
            name: format!("update-{u}"),
            classification: if u % 5 == 4 { "feature".into() } else { "security".into() },
            install: jiff::SignedDuration::from_mins(3 + (u % 4) as i64),
            reboot: if u % 7 == 0 { jiff::SignedDuration::from_mins(5) } else { jiff::SignedDuration::ZERO },
            emergency: u == 1,
            progress: validated(4 - u % 4),
            halt: (u == 3).then(|| "ring 1 (canary) gate failed at org-7".to_string()),
        })
        .collect();
    let devices: Vec<Device> = (0..args.devices)
        .map(|i| {
            let org = i / DEVICES_PER_ORG;
            Device {
                name: format!("device-{i}"),
                org,
                site: org * 2 + i % 2,
                ring: if i % 50 == 0 {
                    0
                } else if i % 10 == 1 {
                    1
                } else if i % 4 == 3 {
                    3
                } else {
                    2
                },
                windows: org,
                online: i % 20 != 0,
                domain_controller: i % DEVICES_PER_ORG < 2,
                updates: (0..args.updates).collect(),
                not_before: None,
            }
        })
        .collect();
    let snapshot = Snapshot {
        now,
        rings: &rings,
        gate: Gate { min_successes: 10, max_failure_rate: 0.25 },
        orgs: &orgs,
        window_sets: &sets,
        devices: &devices,
        updates: &updates,
        running: &[],
        horizon_days: 35,
    };
    println!("{} devices × {} approved updates in {} organizations", args.devices, args.updates, orgs_n);
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..args.runs {
        let started = Instant::now();
        let p = planner::plan(&snapshot);
        samples.push(started.elapsed());
        last = Some(p);
    }
    let p = last.expect("at least one run");
    let scheduled =
        p.decisions.iter().filter(|d| matches!(d.outcome, planner::Outcome::Scheduled(_))).count();
    println!(
        "plan: {} decisions, {} scheduled in {} deployments, the rest waiting or halted",
        p.decisions.len(),
        scheduled,
        p.deployments.len()
    );
    summary("planning every device and update", samples, Duration::from_secs(2));
    // The explanations are rendered on demand; measure rendering all of them once.
    let started = Instant::now();
    let chars: usize = p.decisions.iter().map(|d| p.explain(&snapshot, d).len()).sum();
    println!(
        "explaining all {} decisions: {:.3} s ({chars} characters)",
        p.decisions.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Args)]
pub struct SimBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// `ringfence bench simulate`: the simulation's own cost at fleet scale.
pub fn simulate(args: SimBenchArgs) -> anyhow::Result<()> {
    let options =
        ringfence_schedule::sim::Options { devices: args.devices, days: args.days, ..Default::default() };
    let mut samples = Vec::new();
    let mut deployments = 0;
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let r = ringfence_schedule::sim::run(&options).map_err(|e| anyhow::anyhow!(e))?;
        samples.push(started.elapsed());
        deployments = r.deployments.len();
    }
    println!("{} devices, {} days: {deployments} deployments", args.devices, args.days);
    summary("simulating", samples, Duration::from_secs(60));
    Ok(())
}
