//! `ringfence feeds …` and `ringfence scan`: importing vulnerability data and matching an
//! inventory file against it offline.

use crate::{DbArgs, InvalidArgument, file_config, location, open_store, output::Format};
use anyhow::Context;
use clap::{Args, Subcommand};
use ringfence_engine::Engine;
use ringfence_engine::intel::{ImportSummary, import_file};
use ringfence_model::Timestamp;
use ringfence_store::{DynStore, Location};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Subcommand)]
pub enum FeedsCommand {
    /// Import feed files: NVD CVE API 2.0 pages or records, the CISA KEV catalog, EPSS
    /// scores (CSV, plain or gzip), the Debian security tracker JSON, OSV records, or
    /// folders of them. Each file's format is detected. Devices whose software the
    /// imported records touch are correlated again.
    Import {
        #[command(flatten)]
        target: Target,
        /// Files or folders to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Fetch the feeds online: NVD (incremental by lastModified, resumable), CISA KEV, EPSS
    /// and the Debian security tracker, then correlate the devices they touch.
    Sync {
        #[command(flatten)]
        target: Target,
        /// Feeds to sync (comma-separated): nvd, kev, epss, debian.
        #[arg(long, value_delimiter = ',', default_value = "nvd,kev,epss,debian")]
        feed: Vec<String>,
        #[command(flatten)]
        sources: SyncSources,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The CVEs a pending Debian update fixes, from the candidate's changelog.Debian: those
    /// named in entries newer than the installed version, up to the candidate.
    Changelog {
        /// A changelog.Debian file (plain or gzip).
        file: PathBuf,
        #[arg(long)]
        installed: String,
        /// Default: the newest entry of the changelog.
        #[arg(long)]
        candidate: Option<String>,
    },
    /// How much vulnerability data the database holds and the latest imports.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Args)]
pub struct Target {
    /// The database to import into: a SQLite file path or a postgres:// URL. Without it, the
    /// server's configured database is used.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
    #[command(flatten)]
    server: DbArgs,
}

impl Target {
    async fn open(&self) -> anyhow::Result<DynStore> {
        let location = match &self.db {
            Some(db) => Location::parse(db),
            None => location(&self.server, &file_config(&self.server)?)?,
        };
        open_store(&location).await
    }
}

/// Where feeds are fetched from: the public sources by default, or a mirror.
#[derive(Args, Clone, Debug)]
pub struct SyncSources {
    /// An NVD API key (raises NVD's rate limit from 5 to 50 requests per 30 s).
    #[arg(long, env = "RINGFENCE_NVD_API_KEY", hide_env_values = true)]
    pub nvd_api_key: Option<String>,
    /// The NVD CVE API 2.0 endpoint (a mirror).
    #[arg(long, default_value = ringfence_engine::sync::NVD_URL)]
    pub nvd_url: String,
    #[arg(long, default_value = ringfence_engine::sync::KEV_URL)]
    pub kev_url: String,
    #[arg(long, default_value = ringfence_engine::sync::EPSS_URL)]
    pub epss_url: String,
    #[arg(long, default_value = ringfence_engine::sync::DEBIAN_URL)]
    pub debian_url: String,
    /// Seconds between NVD requests [default: 6, or 0.7 with an API key].
    #[arg(long)]
    pub pause_secs: Option<f64>,
}

impl SyncSources {
    pub fn config(&self) -> ringfence_engine::sync::SyncConfig {
        let mut c = ringfence_engine::sync::SyncConfig::new(self.nvd_api_key.clone());
        c.nvd_url.clone_from(&self.nvd_url);
        c.kev_url.clone_from(&self.kev_url);
        c.epss_url.clone_from(&self.epss_url);
        c.debian_url.clone_from(&self.debian_url);
        if let Some(p) = self.pause_secs {
            c.pause = std::time::Duration::from_secs_f64(p.max(0.0));
            c.backoff = c.pause.max(std::time::Duration::from_millis(100));
        }
        c
    }
}

#[derive(Args)]
pub struct ScanArgs {
    /// A database filled by `ringfence feeds import` (SQLite path or postgres:// URL).
    #[arg(long, value_name = "PATH|URL")]
    db: String,
    /// The inventory: a dpkg status file, an agent inventory JSON or a CycloneDX SBOM.
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// Treat a dpkg status file as coming from this release (e.g. debian:12) instead of
    /// reading it from the base-files package.
    #[arg(long, value_name = "DISTRO:RELEASE")]
    os: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn files_of(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read the folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| e.is_file())
                .collect();
            entries.sort();
            out.extend(entries);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(InvalidArgument(format!(
                "{} does not exist or is not a file or folder",
                p.display()
            ))
            .into());
        }
    }
    Ok(out)
}

fn progress_bar(total: u64, name: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

pub async fn run(command: FeedsCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        FeedsCommand::Import { target, files, format } => {
            let files = files_of(&files)?;
            let store = target.open().await?;
            let mut summaries: Vec<ImportSummary> = Vec::new();
            let mut failures = Vec::new();
            for path in &files {
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let bar = progress_bar(size, &name);
                let read = Arc::new(AtomicU64::new(0));
                let ticker = {
                    let bar = bar.clone();
                    let read = read.clone();
                    tokio::spawn(async move {
                        loop {
                            bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    })
                };
                let r = import_file(store.as_ref(), path, Timestamp::now(), read.clone()).await;
                ticker.abort();
                bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
                bar.finish_and_clear();
                match r {
                    Ok(s) => summaries.push(s),
                    Err(e) => failures.push(e),
                }
            }
            let engine = Engine::new(store);
            let report = engine.correlate_after_import(&summaries).await?;
            print_imports(format, &summaries, &failures, &report)?;
            if failures.is_empty() {
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                Err(InvalidArgument(format!(
                    "{} of {} files could not be imported",
                    failures.len(),
                    files.len()
                ))
                .into())
            }
        }
        FeedsCommand::Sync { target, feed, sources, format } => {
            let feeds = feed
                .iter()
                .map(|f| {
                    ringfence_engine::sync::Feed::parse(f.trim()).ok_or_else(|| {
                        InvalidArgument(format!("unknown feed '{f}': use nvd, kev, epss or debian"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let store = target.open().await?;
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_message(format!("syncing {}", feed.join(", ")));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let (done, failed) =
                ringfence_engine::sync::sync(store.as_ref(), &sources.config(), &feeds).await;
            spinner.finish_and_clear();
            let report = Engine::new(store).correlate_after_import(&done).await?;
            print_imports(format, &done, &failed, &report)?;
            if failed.is_empty() {
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                Err(anyhow::anyhow!("{} of {} feeds could not be synced", failed.len(), feeds.len()))
            }
        }
        FeedsCommand::Changelog { file, installed, candidate } => {
            let f = std::fs::File::open(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut text = String::new();
            ringfence_feeds::open(f)
                .and_then(|mut r| r.read_to_string(&mut text).map_err(Into::into))
                .map_err(|e| InvalidArgument(format!("{}: {e}", file.display())))?;
            let entries = ringfence_feeds::debian::parse_changelog(&text)
                .map_err(|e| InvalidArgument(format!("{}: {e}", file.display())))?;
            let candidate = candidate
                .or_else(|| entries.first().map(|e| e.version.clone()))
                .ok_or_else(|| InvalidArgument(format!("{} has no entries", file.display())))?;
            let cves = ringfence_feeds::debian::cves_between(&entries, &installed, &candidate)
                .map_err(|e| InvalidArgument(format!("invalid version: {e}")))?;
            for c in &cves {
                println!("{c}");
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        FeedsCommand::Status { target } => {
            let store = target.open().await?;
            for (label, n) in store.intel_counts().await? {
                println!("{label:>20}: {n}");
            }
            let runs = store.list_feed_runs(10).await?;
            if !runs.is_empty() {
                println!("\nlatest imports:");
            }
            for r in runs {
                println!(
                    "  {}  {:<28} {} added, {} changed, {} unchanged, {} skipped  {}",
                    r.started_at.strftime("%Y-%m-%d %H:%M"),
                    r.feed,
                    r.added,
                    r.changed,
                    r.unchanged,
                    r.skipped,
                    r.origin
                );
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn print_imports(
    format: Format,
    summaries: &[ImportSummary],
    failures: &[String],
    report: &ringfence_engine::findings::CorrelationReport,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "imports": summaries.iter().map(summary_json).collect::<Vec<_>>(),
                "failures": failures,
                "correlation": report,
            }))?
        ),
        Format::Table => {
            for s in summaries {
                println!(
                    "{}: {} ({} records): {} added, {} changed, {} unchanged, {} skipped",
                    s.origin,
                    s.format,
                    s.records,
                    s.counts.added,
                    s.counts.changed,
                    s.counts.unchanged,
                    s.skipped.total()
                );
                for (reason, (n, example)) in &s.skipped.by_reason {
                    println!("    skipped {n}: {reason} (e.g. {example})");
                }
            }
            for f in failures {
                println!("FAILED {f}");
            }
            println!(
                "correlation: {} devices re-evaluated, {} new findings, {} resolved, {} alerts",
                report.devices, report.new_findings, report.resolved, report.alerts
            );
        }
    }
    Ok(())
}

fn summary_json(s: &ImportSummary) -> serde_json::Value {
    serde_json::json!({
        "origin": s.origin,
        "format": s.format,
        "records": s.records,
        "added": s.counts.added,
        "changed": s.counts.changed,
        "unchanged": s.counts.unchanged,
        "skipped": s.skipped.total(),
        "skipped_by_reason": ringfence_engine::intel::skipped_json(&s.skipped),
        "withdrawn": s.withdrawn,
        "kev_added": s.kev_added.len(),
    })
}

pub async fn scan(args: ScanArgs) -> anyhow::Result<std::process::ExitCode> {
    let text = std::fs::read(&args.inventory)
        .with_context(|| format!("cannot read the inventory {}", args.inventory.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| InvalidArgument(format!("{} is not UTF-8 text", args.inventory.display())))?;
    let mut loaded = ringfence_inventory::load(&text)
        .map_err(|e| InvalidArgument(format!("{}: {e}", args.inventory.display())))?;
    if let Some(os) = &args.os {
        let (id, version) = os
            .split_once(':')
            .ok_or_else(|| InvalidArgument(format!("--os '{os}' must look like debian:12")))?;
        loaded.inventory.os = if id == "debian" {
            ringfence_inventory::OsInfo::debian(version)
        } else {
            ringfence_inventory::OsInfo {
                family: "linux".into(),
                id: id.into(),
                version: version.into(),
                name: os.clone(),
                codename: None,
            }
        };
    }
    for w in &loaded.warnings {
        eprintln!("warning: {}: {w}; that entry was skipped", args.inventory.display());
    }
    let store = open_store(&Location::parse(&args.db)).await?;
    let index = ringfence_engine::intel::load_index(store.as_ref()).await?;
    if index.nvd_records() == 0 && index.distro_advisories() == 0 {
        return Err(InvalidArgument(format!(
            "the database {} holds no vulnerability data; run `ringfence feeds import --db {} FILE…` first",
            args.db, args.db
        ))
        .into());
    }
    let (findings, coverage) = index.match_inventory(&loaded.inventory);
    let ids: Vec<String> = findings.iter().map(|f| f.cve_id.clone()).collect();
    let facts: std::collections::HashMap<String, ringfence_store::CveFacts> =
        store.cve_facts(&ids).await?.into_iter().map(|f| (f.id.clone(), f)).collect();
    match args.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    let facts = facts.get(&f.cve_id);
                    serde_json::json!({
                        "cve": f.cve_id,
                        "product": f.product,
                        "kind": f.kind,
                        "items": f.items,
                        "installed_version": f.installed_version,
                        "fixed_version": f.fixed_version,
                        "source": f.source,
                        "rule": f.rule,
                        "kev": facts.and_then(|x| x.kev.as_ref()),
                        "epss": facts.and_then(|x| x.epss_score),
                        "epss_percentile": facts.and_then(|x| x.epss_percentile),
                        "cvss": facts.and_then(|x| x.cvss_score),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "inventory": {
                        "file": args.inventory.display().to_string(),
                        "format": loaded.format.as_str(),
                        "os": loaded.inventory.os,
                        "items": loaded.inventory.items.len(),
                    },
                    "findings": list,
                    "coverage": {
                        "packages_without_distro_data": coverage.packages_without_distro_data,
                        "missing_distro": coverage.missing_distro,
                        "untranslated_programs": coverage.untranslated,
                        "unknown_products": coverage.unknown_products,
                        "unordered_versions": coverage.unordered_versions,
                    },
                }))?
            );
        }
        Format::Table => {
            println!(
                "{} ({}, {}): {} items, {} findings",
                args.inventory.display(),
                loaded.format.as_str(),
                if loaded.inventory.os.name.is_empty() { "unknown OS" } else { &loaded.inventory.os.name },
                loaded.inventory.items.len(),
                findings.len()
            );
            if !findings.is_empty() {
                println!(
                    "{:<16} {:<28} {:<24} {:<24} {:<5} {:>6} {:>5}  SOURCE",
                    "CVE", "PACKAGE/PRODUCT", "INSTALLED", "FIXED", "KEV", "EPSS", "CVSS"
                );
            }
            for f in &findings {
                let x = facts.get(&f.cve_id);
                println!(
                    "{:<16} {:<28} {:<24} {:<24} {:<5} {:>6} {:>5}  {}",
                    f.cve_id,
                    f.product,
                    f.installed_version,
                    f.fixed_version.as_deref().unwrap_or("(none yet)"),
                    if x.is_some_and(|x| x.kev.is_some()) { "yes" } else { "" },
                    x.and_then(|x| x.epss_score).map(|s| format!("{s:.3}")).unwrap_or_default(),
                    x.and_then(|x| x.cvss_score).map(|s| format!("{s:.1}")).unwrap_or_default(),
                    f.source
                );
            }
            if let Some(d) = &coverage.missing_distro {
                println!(
                    "note: {} packages were not checked: the database has no distro data for {d}",
                    coverage.packages_without_distro_data
                );
            }
            if coverage.untranslated > 0 {
                println!("note: {} programs have no known CPE and were not checked", coverage.untranslated);
            }
            if coverage.unknown_products > 0 {
                println!(
                    "note: {} programs were not checked: no NVD record in the database names their vendor and product",
                    coverage.unknown_products
                );
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
