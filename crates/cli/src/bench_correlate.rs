//! `ringfence bench correlate`: full-fleet correlation on synthetic data at realistic
//! distributions (the full NVD cannot be downloaded here). Popularity follows a Zipf-like
//! law: a few products (browsers, the OS, OpenSSL) carry thousands of CVEs and are on most
//! devices; most products have a handful and are rare.
//!
//! It measures what the server does: each distinct title is evaluated once, then every
//! device's titles are joined with those results (and AND configurations checked against
//! the device's other software). It also measures one device's inventory delta and one
//! newly published CVE turned into its list of affected devices.

use crate::rng::Rng;
use clap::Args;
use ringfence_cpe::Cpe;
use ringfence_feeds::nvd::{Bound, Configuration, CpeMatch, Node, Operator};
use ringfence_inventory::{Item, ItemKind, OsInfo};
use ringfence_matcher::{
    DeviceCpe, DeviceCpes, DistroAdvisory, DistroState, Index, NvdAdvisory, Table, TitleHit, TitleKey,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct CorrelateArgs {
    #[arg(long, default_value_t = 50_000)]
    devices: usize,
    /// Software items per device.
    #[arg(long, default_value_t = 1_000)]
    items: usize,
    /// Advisories: NVD records plus distro statements (one third).
    #[arg(long, default_value_t = 300_000)]
    advisories: usize,
    /// Match criteria across the NVD records.
    #[arg(long, default_value_t = 500_000)]
    criteria: usize,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Products NVD knows; devices carry the more popular part of them.
const PRODUCTS: usize = 60_000;
const INSTALLED_PRODUCTS: usize = 20_000;
const PACKAGES: usize = 5_000;
/// Each product's release history; installed versions are among the newest four.
const VERSIONS: usize = 100;
const INSTALLED: usize = 4;

fn app_version(v: usize) -> String {
    format!("{}.{}.{}", 10 + v, v * 3 % 7, v * 11 % 13)
}

fn deb_version(v: usize) -> String {
    format!("{}.{}-{}+deb12u{}", 2 + v / 2, v % 3, 1 + v % 2, v)
}

fn bound(version: String, inclusive: bool) -> Option<Bound> {
    Some(Bound { version, inclusive })
}

fn criterion(vulnerable: bool, text: String, start: Option<Bound>, end: Option<Bound>) -> CpeMatch {
    CpeMatch {
        vulnerable,
        criteria: Cpe::parse(&text).expect("generated CPE"),
        criteria_text: text,
        criteria_id: String::new(),
        start,
        end,
    }
}

fn build_index(args: &CorrelateArgs, rng: &mut Rng) -> Index {
    let mut index = Index::new(Table::builtin());
    let distro = args.advisories / 3;
    let nvd = args.advisories - distro;
    let per_record = (args.criteria as f64 / nvd.max(1) as f64).max(1.0);
    let mut made = 0usize;
    for i in 0..nvd {
        let p = rng.popular(PRODUCTS);
        let want = ((i + 1) as f64 * per_record).round() as usize - made;
        let n = want.max(1);
        made += n;
        let mut matches = Vec::with_capacity(n);
        for _ in 0..n {
            // A range ends at the release that fixed it; most fixes are old news.
            let hi = 1 + rng.below(VERSIONS);
            let lo = hi.saturating_sub(1 + rng.below(4));
            matches.push(criterion(
                true,
                format!("cpe:2.3:a:v{p}:p{p}:*:*:*:*:*:*:*:*"),
                bound(app_version(lo), true),
                bound(app_version(hi), false),
            ));
        }
        let mut nodes = vec![Node { operator: Operator::Or, negate: false, matches }];
        let and = i % 10 == 0;
        if and {
            nodes.push(Node {
                operator: Operator::Or,
                negate: false,
                matches: vec![criterion(
                    false,
                    "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*".into(),
                    None,
                    None,
                )],
            });
        }
        let config =
            Configuration { operator: if and { Operator::And } else { Operator::Or }, negate: false, nodes };
        index.add_nvd(&NvdAdvisory { cve_id: format!("CVE-2090-{i:07}"), configurations: vec![config] });
    }
    for i in 0..distro {
        let pkg = rng.popular(PACKAGES);
        // Most statements name fixes released long ago; a few are open (half of them
        // unimportant, which are not reported) or never affected the release.
        let (state, urgency) = match rng.below(50) {
            0 => (DistroState::Open, Some("unimportant".to_string())),
            1 => (DistroState::Open, Some("low".to_string())),
            2 | 3 => (DistroState::NotAffected, None),
            _ => (DistroState::Fixed(deb_version(1 + rng.below(VERSIONS))), None),
        };
        index.add_distro(DistroAdvisory {
            distro: "debian".into(),
            release: "12".into(),
            package: format!("pkg{pkg}"),
            cve_id: format!("CVE-2091-{i:07}"),
            state,
            urgency,
            source: "debian-tracker".into(),
        });
    }
    index
}

struct Fleet {
    titles: Vec<(TitleKey, Item)>,
    /// Per device: Windows or Debian, and its titles.
    devices: Vec<(bool, Vec<u32>)>,
}

fn build_fleet(args: &CorrelateArgs, rng: &mut Rng) -> Fleet {
    let mut titles: Vec<(TitleKey, Item)> = Vec::new();
    let mut ids: HashMap<TitleKey, u32> = HashMap::new();
    let debian = OsInfo::debian("12");
    let windows = OsInfo {
        family: "windows".into(),
        id: "windows".into(),
        version: "10.0.22631.4602".into(),
        ..OsInfo::default()
    };
    let mut title = |os: &OsInfo, item: Item| -> u32 {
        let key = TitleKey::of(os, &item).unwrap_or(TitleKey::Program {
            kind: item.kind,
            name: item.name.clone(),
            version: item.version.clone(),
            vendor: None,
            cpe: None,
        });
        *ids.entry(key.clone()).or_insert_with(|| {
            titles.push((key, item));
            (titles.len() - 1) as u32
        })
    };
    let mut devices = Vec::with_capacity(args.devices);
    for d in 0..args.devices {
        let is_windows = d % 5 < 2;
        let mut list = Vec::with_capacity(args.items);
        let mut seen = std::collections::HashSet::new();
        while list.len() < args.items {
            if is_windows {
                if list.len() < args.items * 3 / 10 {
                    let p = rng.popular(INSTALLED_PRODUCTS);
                    if !seen.insert(p) {
                        continue;
                    }
                    let v = VERSIONS - 1 - rng.popular(INSTALLED);
                    let mut item = Item::new(ItemKind::Application, format!("P{p}"), app_version(v));
                    item.vendor = Some(format!("V{p} Inc."));
                    list.push(title(&windows, item));
                } else {
                    let kb = rng.below(2_000);
                    if !seen.insert(PRODUCTS + kb) {
                        continue;
                    }
                    list.push(title(
                        &windows,
                        Item::new(ItemKind::Hotfix, format!("KB{}", 5_000_000 + kb), "1"),
                    ));
                }
            } else {
                let p = rng.popular(PACKAGES);
                if !seen.insert(p) {
                    if seen.len() >= PACKAGES {
                        break;
                    }
                    continue;
                }
                let v = VERSIONS - 1 - rng.popular(INSTALLED);
                let mut item = Item::new(ItemKind::Package, format!("lib{p}"), deb_version(v));
                item.source_name = Some(format!("pkg{p}"));
                list.push(title(&debian, item));
            }
        }
        devices.push((is_windows, list));
    }
    Fleet { titles, devices }
}

struct Evaluated {
    hits: Vec<TitleHit>,
    cpe: Option<Arc<DeviceCpe>>,
}

fn evaluate(index: &Index, key: &TitleKey, item: &Item) -> Evaluated {
    match key {
        TitleKey::Distro { release, package, version } => {
            Evaluated { hits: index.distro_title(release, package, version).unwrap_or_default(), cpe: None }
        }
        TitleKey::Program { kind: ItemKind::Hotfix, .. } => Evaluated { hits: Vec::new(), cpe: None },
        TitleKey::Program { .. } => match index.table.translate(item) {
            Some(t) => {
                let cpe = DeviceCpe::new(t, false);
                Evaluated { hits: index.nvd_title(&cpe), cpe: Some(Arc::new(cpe)) }
            }
            None => Evaluated { hits: Vec::new(), cpe: None },
        },
    }
}

fn device_findings(
    index: &Index,
    results: &[Evaluated],
    windows_cpes: &[DeviceCpe],
    titles: &[u32],
) -> usize {
    let cpes = DeviceCpes::new(
        titles.iter().filter_map(|&t| results[t as usize].cpe.as_deref()).chain(windows_cpes.iter()),
    );
    let mut n = 0;
    for &t in titles {
        for hit in &results[t as usize].hits {
            if let Some((pos, ci)) = hit.needs_device
                && !index.config_holds(pos, ci, &cpes)
            {
                continue;
            }
            n += 1;
        }
    }
    n
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(mut v: Vec<Duration>, q: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
}

pub fn run(args: CorrelateArgs) -> anyhow::Result<()> {
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let mut rng = Rng(0x5eed);
    let t = Instant::now();
    let index = build_index(&args, &mut rng);
    let index_time = t.elapsed();
    let t = Instant::now();
    let fleet = build_fleet(&args, &mut rng);
    let fleet_time = t.elapsed();
    let items: usize = fleet.devices.iter().map(|d| d.1.len()).sum();
    println!(
        "data: {} NVD records with {} criteria and {} distro statements (built in {:.1} s); {} devices, {} items, {} distinct titles (built in {:.1} s)",
        index.nvd_records(),
        index.nvd_criteria(),
        index.distro_advisories(),
        index_time.as_secs_f64(),
        fleet.devices.len(),
        items,
        fleet.titles.len(),
        fleet_time.as_secs_f64()
    );
    let windows_os = OsInfo {
        family: "windows".into(),
        id: "windows".into(),
        version: "10.0.22631.4602".into(),
        name: "Windows 11 Pro".into(),
        ..OsInfo::default()
    };
    let windows_cpes: Vec<DeviceCpe> = ringfence_matcher::table::os_cpes(&windows_os)
        .into_iter()
        .map(|(t, p)| DeviceCpe::new(t, p))
        .collect();

    // Full correlation: titles once, then every device.
    let start = Instant::now();
    let chunk = fleet.titles.len().div_ceil(threads);
    let results: Vec<Evaluated> = std::thread::scope(|s| {
        let handles: Vec<_> = fleet
            .titles
            .chunks(chunk.max(1))
            .map(|part| s.spawn(|| part.iter().map(|(k, i)| evaluate(&index, k, i)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker")).collect()
    });
    let titles_time = start.elapsed();
    let chunk = fleet.devices.len().div_ceil(threads);
    let findings: usize = std::thread::scope(|s| {
        let handles: Vec<_> = fleet
            .devices
            .chunks(chunk.max(1))
            .map(|part| {
                let (index, results, windows_cpes) = (&index, &results, &windows_cpes);
                s.spawn(move || {
                    part.iter()
                        .map(|(w, titles)| {
                            device_findings(index, results, if *w { windows_cpes } else { &[] }, titles)
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).sum()
    });
    let full = start.elapsed();
    println!(
        "full correlation: {:.2} s on {threads} threads ({:.2} s titles, {:.2} s devices), {} findings, peak RSS {:.0} MB",
        full.as_secs_f64(),
        titles_time.as_secs_f64(),
        (full - titles_time).as_secs_f64(),
        findings,
        peak_rss_mb()
    );

    // One device's inventory delta: 20 items change version (new titles, not evaluated yet).
    let mut samples = Vec::new();
    let mut delta_rng = Rng(7);
    for d in 0..200 {
        let (is_windows, titles) =
            &fleet.devices[d * (fleet.devices.len() / 200).max(1) % fleet.devices.len()];
        let start = Instant::now();
        let mut changed: Vec<Evaluated> = Vec::new();
        for k in 0..20 {
            let (_, item) = &fleet.titles[titles[(k * 37) % titles.len()] as usize];
            let mut item = item.clone();
            item.version = if item.kind == ItemKind::Package {
                deb_version(VERSIONS + delta_rng.below(3))
            } else {
                app_version(VERSIONS + delta_rng.below(3))
            };
            let os = if *is_windows { windows_os.clone() } else { OsInfo::debian("12") };
            if let Some(key) = TitleKey::of(&os, &item) {
                changed.push(evaluate(&index, &key, &item));
            }
        }
        let n = device_findings(&index, &results, if *is_windows { &windows_cpes } else { &[] }, titles)
            + changed.iter().map(|e| e.hits.len()).sum::<usize>();
        std::hint::black_box(n);
        samples.push(start.elapsed());
    }
    println!(
        "inventory delta (20 changed items of {}) to findings: p50 {:.2} ms, p95 {:.2} ms",
        args.items,
        percentile(samples.clone(), 0.5),
        percentile(samples, 0.95)
    );

    // A newly published CVE for a popular product to its affected devices.
    let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
    for (i, (_, item)) in fleet.titles.iter().enumerate() {
        if let Some(k) = ringfence_engine::intel::item_match_key(&index.table, item) {
            by_key.entry(k).or_default().push(i as u32);
        }
    }
    let mut holders: Vec<Vec<u32>> = vec![Vec::new(); fleet.titles.len()];
    for (d, (_, titles)) in fleet.devices.iter().enumerate() {
        for &t in titles {
            holders[t as usize].push(d as u32);
        }
    }
    let mut index = index;
    let mut samples = Vec::new();
    for k in 0..20 {
        let p = k * 3;
        let start = Instant::now();
        let cve = NvdAdvisory {
            cve_id: format!("CVE-2099-{k:07}"),
            configurations: vec![Configuration {
                operator: Operator::Or,
                negate: false,
                nodes: vec![Node {
                    operator: Operator::Or,
                    negate: false,
                    matches: vec![criterion(
                        true,
                        format!("cpe:2.3:a:v{p}:p{p}:*:*:*:*:*:*:*:*"),
                        None,
                        bound(app_version(VERSIONS - 1), false),
                    )],
                }],
            }],
        };
        index.add_nvd(&cve);
        let mut affected: Vec<u32> = Vec::new();
        for &t in by_key.get(&format!("v{p}:p{p}")).map(Vec::as_slice).unwrap_or(&[]) {
            let (key, item) = &fleet.titles[t as usize];
            let e = evaluate(&index, key, item);
            if e.hits.iter().any(|h| h.needs_device.is_none() && index.cve_id(h.cve) == cve.cve_id) {
                affected.extend(&holders[t as usize]);
            }
        }
        affected.sort_unstable();
        affected.dedup();
        std::hint::black_box(affected.len());
        samples.push(start.elapsed());
        if k == 0 {
            println!("new CVE for the most common product affects {} devices", affected.len());
        }
    }
    println!(
        "new CVE to affected devices: p50 {:.2} ms, p95 {:.2} ms; peak RSS {:.0} MB",
        percentile(samples.clone(), 0.5),
        percentile(samples, 0.95),
        peak_rss_mb()
    );
    Ok(())
}
