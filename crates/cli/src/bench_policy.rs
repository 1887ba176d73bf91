//! `ringfence bench policy`: the two fleet-wide computations of policies and prioritization,
//! on synthetic data shaped like a large MSP.
//!
//! - Effective policies: every device's policy merged from the partner, its organization,
//!   its site, its groups and its own, with the provenance of every field.
//! - Queue ranking: every open finding scored (CVSS, EPSS, KEV, exposure, criticality,
//!   prevalence, SSVC), grouped by the update that fixes it, linked to the devices' pending
//!   updates and sorted by risk removed: the work of one remediation-queue request after
//!   its rows are read.

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

/// SplitMix64: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Zipf-like pick in 0..n: small indices are much more likely.
    fn popular(&mut self, n: usize) -> usize {
        ((n as f64).powf(self.unit()) - 1.0).floor().min(n as f64 - 1.0) as usize
    }
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
/// every hundredth device: about 1,500 policies for 100,000 devices.
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
