//! The `ringfence` command. `main` parses arguments, runs, and maps failures to exit codes;
//! the work is done by the library crates.

// The evidence export and the correlation allocate many short strings: glibc's allocator
// spent a third of an export consolidating and unlinking chunks, mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod admin_appliances;
mod admin_remediation;
mod bench;
mod bench_appliances;
mod bench_console;
mod bench_correlate;
mod bench_dispatch;
mod bench_evidence;
mod bench_policy;
mod config;
mod intel;
mod loadgen;
mod output;
mod rng;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ringfence_engine::{Engine, EngineError};
use ringfence_store::{DynStore, Location, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes that mean something to scripts.
mod exit {
    /// Bad arguments or input (clap also uses 2).
    pub const INVALID: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const FORBIDDEN: u8 = 5;
    /// The database could not be opened or reached.
    pub const DATABASE: u8 = 6;
    /// Evidence verification found a broken chain.
    pub const EVIDENCE_BROKEN: u8 = 1;
    /// The bundle is intact, but signed by a key the reader did not pin (`--public-key`):
    /// nothing says who signed it.
    pub const EVIDENCE_UNPINNED: u8 = 7;
}

#[derive(Parser)]
#[command(
    name = "ringfence",
    version,
    about = "Patch management and continuous vulnerability management for MSPs",
    long_about = "ringfence closes the loop from inventory to verified patch with evidence.\n\nStart with `ringfence demo`, then open the printed URL."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (REST API, dashboard, metrics) on the configured database.
    Serve(ServeArgs),
    /// Run the server on a fresh SQLite database seeded with a demo MSP.
    Demo(DemoArgs),
    /// Manage partners, organizations, sites, groups, devices, users and tokens directly on
    /// the database, as the installation's operator.
    Admin(admin::AdminArgs),
    /// Work with the hash-chained evidence log.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Work with version strings of package and vendor version schemes.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Work with CPE names (CPE 2.3 formatted strings and CPE 2.2 URIs).
    #[command(subcommand)]
    Cpe(CpeCommand),
    /// Work with maintenance windows (RFC 5545 recurrences in an IANA time zone).
    #[command(subcommand)]
    Window(WindowCommand),
    /// Run the rollout planner and ring gates against a virtual fleet on a virtual clock;
    /// print the timeline and a summary. The same seed gives the same output.
    Simulate(SimulateArgs),
    /// Import vulnerability feeds and see what the database holds.
    #[command(subcommand)]
    Feeds(intel::FeedsCommand),
    /// Match an inventory file (dpkg status, agent JSON or CycloneDX SBOM) against a database
    /// filled by `feeds import`, offline.
    Scan(intel::ScanArgs),
    /// Simulate agents against a running server (enroll, full inventories, heartbeats).
    Loadgen(loadgen::LoadgenArgs),
    /// Measure performance; see BENCHMARKS.md.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum VersionCommand {
    /// Compare A with B: prints -1 (A older), 0 (equal) or 1 (A newer). With --stdin, reads
    /// `A<TAB>B` lines and prints one result (or `error: <reason>`) per line. Exits 1 when a
    /// version is invalid.
    Compare {
        /// deb, rpm, semver, generic or windows.
        #[arg(long)]
        scheme: String,
        #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
        a: Option<String>,
        #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
        b: Option<String>,
        #[arg(long)]
        stdin: bool,
    },
}

/// The flags that define a window, shared by `window expand` and `window ics`.
#[derive(Args)]
struct WindowArgs {
    /// The IANA time zone the window's wall-clock times are in.
    #[arg(long)]
    tz: String,
    /// The first start, local wall-clock time: YYYY-MM-DDTHH:MM[:SS].
    #[arg(long)]
    dtstart: String,
    /// The RRULE, e.g. 'FREQ=MONTHLY;BYDAY=2TU' (Patch Tuesday).
    #[arg(long)]
    rrule: String,
    /// ISO 8601 duration, e.g. PT3H.
    #[arg(long)]
    duration: String,
    /// A local start (YYYY-MM-DDTHH:MM[:SS]) that does not occur; repeatable.
    #[arg(long)]
    exdate: Vec<String>,
}

#[derive(Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 1_000)]
    devices: usize,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of installs that fail (0 to 1).
    #[arg(long, default_value_t = 0.01)]
    failure_rate: f64,
    /// Share of device-days a device is offline (0 to 1).
    #[arg(long, default_value_t = 0.05)]
    offline_rate: f64,
    /// Failure rate of the bad update in the release calendar (0 to 1).
    #[arg(long, default_value_t = 0.6)]
    bad_failure_rate: f64,
    /// Devices per organization.
    #[arg(long, default_value_t = 100)]
    org_size: usize,
    /// Print only the summary.
    #[arg(long)]
    summary_only: bool,
}

#[derive(Subcommand)]
enum WindowCommand {
    /// Print the first N occurrences starting at or after --after, one per line as
    /// `START END` in RFC 3339 UTC. DTSTART is the first occurrence when it matches the rule.
    Expand {
        #[command(flatten)]
        window: WindowArgs,
        /// RFC 3339 instant; occurrences starting before it are skipped.
        #[arg(long)]
        after: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
        count: u32,
    },
    /// Print the window as an iCalendar (.ics) file a client can import or subscribe to.
    Ics {
        #[command(flatten)]
        window: WindowArgs,
        /// The event's title in the calendar.
        #[arg(long, default_value = "Maintenance window")]
        name: String,
    },
}

/// The window the flags define.
fn window_from_flags(w: &WindowArgs) -> Result<ringfence_schedule::Recurrence, InvalidArgument> {
    use ringfence_schedule::{Duration, Recurrence, Rule};
    let arg = |e: ringfence_schedule::RecurrenceError| InvalidArgument(e.to_string());
    let dtstart = local_datetime("--dtstart", &w.dtstart)?;
    let rule = Rule::parse(&w.rrule).map_err(arg)?;
    let duration = Duration::parse(&w.duration).map_err(arg)?;
    let exdates = w.exdate.iter().map(|e| local_datetime("--exdate", e)).collect::<Result<Vec<_>, _>>()?;
    Recurrence::new(&w.tz, dtstart, rule, duration, exdates).map_err(arg)
}

/// A local wall-clock date-time as `--dtstart` and `--exdate` take it.
fn local_datetime(flag: &str, v: &str) -> Result<jiff::civil::DateTime, InvalidArgument> {
    let ok = v.len() >= 16 && v.as_bytes().get(10) == Some(&b'T') && !v.ends_with('Z') && !v.contains('+');
    ok.then(|| v.parse::<jiff::civil::DateTime>().ok()).flatten().ok_or_else(|| {
        InvalidArgument(format!("{flag} '{v}' is not a local date-time YYYY-MM-DDTHH:MM[:SS]"))
    })
}

#[derive(Subcommand)]
enum CpeCommand {
    /// Compare SOURCE with TARGET as NISTIR 7696 does: prints EQUAL, SUPERSET, SUBSET,
    /// DISJOINT or UNDEFINED. With --stdin, reads `SOURCE<TAB>TARGET` lines and prints one
    /// result (or `error: <reason>`) per line. Exits 1 when a name cannot be parsed.
    Compare {
        #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
        source: Option<String>,
        #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
        target: Option<String>,
        #[arg(long)]
        stdin: bool,
    },
    /// Parse a name in either binding and print both bindings.
    Parse { name: String },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Audited writes, device-list queries and chain verification at fleet scale.
    Tenancy(bench::BenchArgs),
    /// Parse throughput of NVD CVE API 2.0 pages.
    Feeds(bench::FeedBenchArgs),
    /// Full-fleet correlation, inventory deltas and new CVEs on synthetic data.
    Correlate(bench_correlate::CorrelateArgs),
    /// Effective policies for the whole fleet and re-ranking of a large remediation queue.
    Policy(bench_policy::PolicyBenchArgs),
    /// The rollout planner over the whole fleet (devices × approved updates).
    Plan(bench_policy::PlanBenchArgs),
    /// A 30-day simulation of a large fleet (`ringfence simulate` without the output).
    Simulate(bench_policy::SimBenchArgs),
    /// One dispatch run: every device of a fleet gets a deployment and a signed job.
    Dispatch(bench_dispatch::DispatchBenchArgs),
    /// An organization's 180-day audit evidence bundle (1,000,000 events) and its offline
    /// verification.
    Evidence(bench_evidence::EvidenceBenchArgs),
    /// One collector polls 2,000 SNMP appliances (simulated in-process), and sweeps a /22 at
    /// a configured rate.
    Appliances(bench_appliances::ApplianceBenchArgs),
    /// The dashboard's busiest pages (overview, queue, vulnerabilities, devices, deployments,
    /// schedule) timed over HTTP on a fleet of 10,000 devices, 1,000,000 findings and
    /// 100,000 deployments.
    Console(bench_console::ConsoleBenchArgs),
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Recompute every hash chain from the database and name the first broken link of each;
    /// or, with --bundle, check an exported evidence bundle offline (no database needed):
    /// every event's hash, the chain's continuity, the checkpoint signatures, the manifest,
    /// and that the tables agree with the events. Exits 1 when anything is wrong.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// Verify only this chain (a partner id).
        #[arg(long)]
        chain: Option<String>,
        /// An evidence bundle (.zip) exported by `ringfence evidence export` or the dashboard.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// The signing key (64 hex characters) of the ringfence server that made the bundle, as
        /// the MSP publishes it out of band (`ringfence evidence key` on the server); without
        /// it the bundle's own key is used, its id printed for you to compare, and an intact
        /// bundle exits 7, not 0.
        /// For the database, the key its checkpoints are checked against (default: the
        /// server's key file, else the public key the database holds).
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
    /// Print the server's evidence and job signing public key and its id, for auditors to pin
    /// (`evidence verify --bundle B --public-key KEY`).
    Key {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
    /// Export an organization's audit evidence bundle (zip: events with their hash-chain
    /// segment, signed checkpoints, per-vulnerability timeline, CIS Control 7 section, summary).
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// The partner (name or id).
        #[arg(long)]
        partner: Option<String>,
        /// The organization's id.
        #[arg(long)]
        organization: String,
        /// Start of the audit window (YYYY-MM-DD or RFC 3339); default: --days before --to.
        #[arg(long)]
        from: Option<String>,
        /// End of the audit window (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Length of the window when --from is not given.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Where to write the bundle.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Leave out the PDF summary (no Chromium needed).
        #[arg(long)]
        no_pdf: bool,
        #[arg(long, value_enum, default_value_t = output::Format::Table)]
        format: output::Format,
    },
}

/// Where the data lives.
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// Folder of the embedded SQLite database (`ringfence.db`); created on first start.
    #[arg(long, env = "RINGFENCE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use this database instead of the embedded one: postgres://USER@HOST:PORT/DB or
    /// sqlite:PATH.
    #[arg(long = "database", env = "RINGFENCE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// TOML configuration file (keys: listen, data_dir, database_url, secure_cookies, log,
    /// feeds_sync, nvd_api_key, nvd_sync_hours, feeds_sync_hours, alert_webhook,
    /// offline_after_minutes).
    #[arg(long, env = "RINGFENCE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = "Configuration: flags win over environment variables, which win over the TOML file \
(--config), which wins over the defaults. File keys: listen, data_dir, database_url, secure_cookies, log, feeds_sync, nvd_api_key, nvd_sync_hours, \
feeds_sync_hours, alert_webhook, offline_after_minutes. \
RINGFENCE_LOG (or the key log) sets the log filter, e.g. 'info' or 'ringfence=debug'.")]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address and port to listen on [default: 127.0.0.1:8640].
    #[arg(long, env = "RINGFENCE_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Mark the session cookie Secure (HTTPS only). Default: on unless listening on a
    /// loopback address.
    #[arg(long, env = "RINGFENCE_SECURE_COOKIES", value_name = "BOOL")]
    secure_cookies: Option<bool>,
    /// Sync NVD, KEV, EPSS and Debian data on a schedule [default: true].
    #[arg(long, env = "RINGFENCE_FEEDS_SYNC", value_name = "BOOL")]
    feeds_sync: Option<bool>,
    /// An NVD API key for the scheduled syncs.
    #[arg(long, env = "RINGFENCE_NVD_API_KEY", hide_env_values = true)]
    nvd_api_key: Option<String>,
    /// POST alerts (new CVEs and KEV entries touching the fleet) as JSON to this URL.
    #[arg(long, env = "RINGFENCE_ALERT_WEBHOOK", value_name = "URL")]
    alert_webhook: Option<String>,
}

#[derive(Args)]
struct DemoArgs {
    /// Folder for the demo database (`demo.db`, recreated at every start).
    #[arg(long, env = "RINGFENCE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8640].
    #[arg(long, env = "RINGFENCE_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Seed the database and exit without serving (for scripts and tests).
    #[arg(long)]
    seed_only: bool,
    /// Simulated agents (as `ringfence loadgen` runs them) that enroll in the first demo
    /// site, report inventories built from this machine's package list (or the demo's
    /// Debian packages) and check in every minute while the demo runs.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(0..=2000))]
    agents: u16,
}

/// The demo's simulated agents: enrolled, their inventories sent, then a heartbeat every
/// minute for as long as the demo runs.
async fn demo_agents(server: String, token: String, n: usize) {
    let run = async {
        let base = loadgen::packages(std::path::Path::new("/var/lib/dpkg/status"))
            .unwrap_or_else(|_| ringfence_engine::demo::debian_packages());
        let mut fleet = loadgen::Fleet::new(&server, 4)?;
        // The server starts serving right after this task is spawned.
        let mut tries = 0;
        while let Err(e) = fleet.enroll(&token, n, "demo-agent").await {
            tries += 1;
            anyhow::ensure!(tries < 20 && fleet.credentials.is_empty(), "{e:#}");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        fleet.send_inventories(&base, base.len() + 20).await?;
        tracing::info!(agents = n, "demo agents enrolled and reported their inventories");
        fleet.heartbeats(std::time::Duration::from_secs(60), None).await;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = run.await {
        tracing::warn!(error = %format!("{e:#}"), "the demo's simulated agents stopped");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(engine) = cause.downcast_ref::<EngineError>() {
            return match engine {
                EngineError::Invalid(_) => exit::INVALID,
                EngineError::NotFound(_) => exit::NOT_FOUND,
                EngineError::Conflict(_) => exit::CONFLICT,
                EngineError::Forbidden(_)
                | EngineError::Unauthenticated(_)
                | EngineError::Throttled { .. } => exit::FORBIDDEN,
                EngineError::Store(_) => exit::DATABASE,
            };
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            return exit::DATABASE;
        }
        if cause.downcast_ref::<InvalidArgument>().is_some() {
            return exit::INVALID;
        }
    }
    1
}

/// A command-line argument or configuration value that was refused.
#[derive(Debug)]
pub struct InvalidArgument(pub String);

impl std::fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidArgument {}

fn init_logs(filter: Option<&str>) {
    let filter =
        std::env::var("RINGFENCE_LOG").ok().or(filter.map(str::to_owned)).unwrap_or_else(|| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads a terminal, never in a log file or pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn file_config(db: &DbArgs) -> anyhow::Result<config::FileConfig> {
    match &db.config {
        Some(p) => config::FileConfig::load(p).map_err(|e| InvalidArgument(format!("{e:#}")).into()),
        None => Ok(config::FileConfig::default()),
    }
}

/// The store location from flags, environment and config file.
/// Where the server's key files (`secret.key`, `signing.key`) are for a command on `db`: the
/// data directory when one is given (flag, environment or config file), else the folder of a
/// SQLite database given by URL (where `serve` and `demo` keep them), else the default.
fn key_dir(db: &DbArgs, file: &config::FileConfig, location: &Location) -> anyhow::Result<PathBuf> {
    if db.data_dir.is_none()
        && file.data_dir.is_none()
        && let Location::Sqlite(path) = location
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        return Ok(dir.to_path_buf());
    }
    Ok(config::resolve(file, None, db.data_dir.as_deref(), None, None)
        .map_err(|e| InvalidArgument(format!("{e:#}")))?
        .data_dir)
}

fn location(db: &DbArgs, file: &config::FileConfig) -> anyhow::Result<Location> {
    let s = config::resolve(file, None, db.data_dir.as_deref(), db.database_url.as_deref(), None)
        .map_err(|e| InvalidArgument(format!("{e:#}")))?;
    Ok(match s.database_url {
        Some(url) => Location::parse(&url),
        None => Location::Sqlite(s.data_dir.join("ringfence.db")),
    })
}

/// Opens and verifies a bundle file; the pinned key, when given, must be 64 hex characters.
/// An ed25519 public key given as 64 hex characters.
fn parse_public_key(hex_key: &str) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] =
        hex::decode(hex_key.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
            InvalidArgument("--public-key: give the MSP's ed25519 public key as 64 hex characters".into())
        })?;
    Ok(ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|e| InvalidArgument(format!("--public-key: not an ed25519 public key ({e})")))?)
}

fn verify_bundle_file(
    path: &std::path::Path,
    public_key: Option<&str>,
) -> anyhow::Result<ringfence_evidence::VerifyReport> {
    let pinned = public_key.map(parse_public_key).transpose()?;
    let f = std::fs::File::open(path)
        .map_err(|e| InvalidArgument(format!("cannot open {}: {e}", path.display())))?;
    ringfence_evidence::verify_bundle(std::io::BufReader::new(f), pinned.as_ref()).map_err(|e| {
        InvalidArgument(format!("{} is not a readable evidence bundle: {e}", path.display())).into()
    })
}

pub async fn open_store(location: &Location) -> anyhow::Result<DynStore> {
    ringfence_store::open(location)
        .await
        .with_context(|| format!("cannot open the database at {}", location.redacted()))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let file = file_config(&args.db)?;
            init_logs(file.log.as_deref());
            let settings = config::resolve(
                &file,
                args.listen.as_deref(),
                args.db.data_dir.as_deref(),
                args.db.database_url.as_deref(),
                args.secure_cookies,
            )
            .map_err(|e| InvalidArgument(format!("{e:#}")))?;
            let location = match &settings.database_url {
                Some(url) => Location::parse(url),
                None => Location::Sqlite(settings.data_dir.join("ringfence.db")),
            };
            let schedule = config::schedule(&file, args.feeds_sync, args.nvd_api_key.as_deref())
                .map_err(|e| InvalidArgument(format!("{e:#}")))?;
            let webhook = config::webhook(&file, args.alert_webhook.as_deref())
                .map_err(|e| InvalidArgument(format!("{e:#}")))?;
            let offline_after =
                config::offline_after(&file).map_err(|e| InvalidArgument(format!("{e:#}")))?;
            let web = Web::from_file(&file)?;
            config::private_data_dir(&settings.data_dir)?;
            let store = open_store(&location).await?;
            let listener = bind(&settings).await?;
            let reports =
                file.reports.as_ref().map(config::ReportsConfig::resolve).transpose()?.unwrap_or_default();
            let secrets = config::secret_key(&settings.data_dir)?;
            let signing = config::signing_key(&settings.data_dir, &store).await?;
            let engine = Engine::new(store)
                .with_alert_webhook(webhook)
                .with_offline_after(offline_after)
                .with_reports(reports)
                .with_secret_key(secrets)
                .with_signing_key(&signing)
                .map_err(anyhow::Error::msg)?;
            if let Some(schedule) = schedule {
                tracing::info!(
                    nvd_every_hours = schedule.nvd_every.as_secs_f64() / 3600.0,
                    others_every_hours = schedule.daily_every.as_secs_f64() / 3600.0,
                    "vulnerability feeds will sync on a schedule (feeds_sync = false turns this off)"
                );
                tokio::spawn(ringfence_engine::sync::run_schedule(engine.clone(), schedule));
            }
            serve(listener, engine, &settings, web, &location, None).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            init_logs(None);
            let settings = config::resolve(
                &config::FileConfig::default(),
                args.listen.as_deref(),
                args.data_dir.as_deref(),
                None,
                None,
            )
            .map_err(|e| InvalidArgument(format!("{e:#}")))?;
            let db = settings.data_dir.join("demo.db");
            for suffix in ["", "-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{suffix}", db.display()));
                if p.exists() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("cannot remove the old demo database {}", p.display()))?;
                }
            }
            config::private_data_dir(&settings.data_dir)?;
            let location = Location::Sqlite(db);
            let store = open_store(&location).await?;
            // The clients were signed up months ago: the tenancy is created then, and the
            // months since are replayed (findings, approvals, deployments, checkpoints,
            // reports) before today's state is seeded.
            let clock = ringfence_engine::demo::DemoClock::default();
            let signing = config::signing_key(&settings.data_dir, &store).await?;
            let engine = Engine::with_clock(store.clone(), clock.clock())
                .with_secret_key(config::secret_key(&settings.data_dir)?)
                .with_signing_key(&signing)
                .map_err(anyhow::Error::msg)?;
            clock.set(
                ringfence_model::Timestamp::now()
                    - jiff::SignedDuration::from_hours(24 * ringfence_engine::demo::HISTORY_DAYS),
            );
            let seed =
                ringfence_engine::demo::seed_tenancy(&engine).await.context("seeding the demo failed")?;
            ringfence_engine::demo::seed_history(&engine, &seed, &clock)
                .await
                .context("replaying the demo's history failed")?;
            ringfence_engine::demo::seed_intel(&engine, &seed)
                .await
                .context("seeding the demo's inventories and vulnerability data failed")?;
            ringfence_engine::demo::seed_remediation(&engine, &seed)
                .await
                .context("seeding the demo's policies, update catalog and approvals failed")?;
            ringfence_engine::demo::seed_rollouts(&engine, &seed)
                .await
                .context("seeding the demo's rollouts failed")?;
            ringfence_engine::demo::seed_appliances(&engine, &seed)
                .await
                .context("seeding the demo's network appliances failed")?;
            let devices = engine
                .devices(
                    &seed.operator,
                    &ringfence_proto::DeviceListQuery { limit: Some(1), ..Default::default() },
                )
                .await?
                .total;
            let devices = usize::try_from(devices).unwrap_or_default();
            if args.seed_only {
                println!("{}", output::demo_banner(&seed, &settings.data_dir, settings.listen, devices, 0));
                return Ok(ExitCode::SUCCESS);
            }
            let listener = bind(&settings).await?;
            let addr = listener.local_addr()?;
            let banner =
                output::demo_banner(&seed, &settings.data_dir, addr, devices, usize::from(args.agents));
            if args.agents > 0 {
                let site = seed.sites.first().context("the demo has no site")?;
                let token = engine
                    .create_enrollment_token(
                        &seed.operator,
                        &ringfence_proto::CreateEnrollmentToken {
                            site_id: site.id.to_string(),
                            name: "demo agents".into(),
                            expires_in_hours: None,
                            max_uses: Some(i64::from(args.agents)),
                        },
                    )
                    .await?;
                tokio::spawn(demo_agents(format!("http://{addr}"), token.secret, usize::from(args.agents)));
            }
            serve(listener, engine, &settings, Web::default(), &location, Some(banner)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(args) => {
            let file = file_config(&args.db)?;
            let location = location(&args.db, &file)?;
            let store = open_store(&location).await?;
            let reports =
                file.reports.as_ref().map(config::ReportsConfig::resolve).transpose()?.unwrap_or_default();
            let data_dir = key_dir(&args.db, &file, &location)?;
            let signing = config::signing_key(&data_dir, &store).await?;
            let engine = Engine::new(store)
                .with_reports(reports)
                .with_secret_key(config::secret_key(&data_dir)?)
                .with_signing_key(&signing)
                .map_err(anyhow::Error::msg)?;
            admin::run(engine, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Evidence {
            command: EvidenceCommand::Verify { bundle: Some(bundle), public_key, format, .. },
        } => {
            let report = verify_bundle_file(&bundle, public_key.as_deref())?;
            output::print_bundle_verification(format, &bundle, &report);
            Ok(if !report.ok() {
                ExitCode::from(exit::EVIDENCE_BROKEN)
            } else if !report.pinned {
                ExitCode::from(exit::EVIDENCE_UNPINNED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Evidence {
            command:
                EvidenceCommand::Export { db, partner, organization, from, to, days, out, no_pdf, format },
        } => {
            let file = file_config(&db)?;
            let location = location(&db, &file)?;
            let store = open_store(&location).await?;
            let reports =
                file.reports.as_ref().map(config::ReportsConfig::resolve).transpose()?.unwrap_or_default();
            let data_dir = key_dir(&db, &file, &location)?;
            let signing = config::signing_key(&data_dir, &store).await?;
            let engine = Engine::new(store)
                .with_reports(reports)
                .with_signing_key(&signing)
                .map_err(anyhow::Error::msg)?;
            let p = admin::operator(&engine, &partner).await?;
            let q = ringfence_proto::EvidenceExportQuery {
                organization_id: organization,
                from,
                to,
                days: Some(days),
                no_pdf: Some(no_pdf),
            };
            // Written beside the target and renamed at the end, so a failed export leaves no
            // half-written bundle under the name asked for.
            let partial = out.with_extension("zip.partial");
            let f = std::fs::File::create(&partial)
                .map_err(|e| InvalidArgument(format!("cannot write {}: {e}", partial.display())))?;
            let mut writer = std::io::BufWriter::new(f);
            let result = engine.export_evidence(&p, &q, &mut writer).await;
            // Every byte on disk before the bundle takes its name: a full disk fails here.
            let written = result.and_then(|summary| {
                use std::io::Write;
                writer.flush().and_then(|()| writer.get_ref().sync_all()).map(|()| summary).map_err(|e| {
                    ringfence_engine::EngineError::Conflict(format!(
                        "cannot write {}: {e}",
                        partial.display()
                    ))
                })
            });
            match written {
                Ok(summary) => {
                    std::fs::rename(&partial, &out)?;
                    output::print_export(format, &out, &summary);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    drop(writer);
                    let _ = std::fs::remove_file(&partial);
                    Err(e.into())
                }
            }
        }
        Command::Evidence { command: EvidenceCommand::Key { db, format } } => {
            let file = file_config(&db)?;
            let location = location(&db, &file)?;
            let store = open_store(&location).await?;
            let public = ringfence_engine::Engine::new(store).server_public_key().await?;
            let id = ringfence_engine::agents::key_fingerprint(&public);
            match format {
                output::Format::Json => {
                    println!("{}", serde_json::json!({ "public_key": public, "key_id": id }))
                }
                output::Format::Table => println!("{public}  (key id {id})"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Evidence { command: EvidenceCommand::Verify { db, chain, public_key, format, .. } } => {
            let file = file_config(&db)?;
            let location = location(&db, &file)?;
            let store = open_store(&location).await?;
            // Checkpoints are checked against the key given, else the server's key file, else
            // the public key the database holds.
            let public = match public_key {
                Some(k) => k,
                None => match config::signing_public_key_file(&key_dir(&db, &file, &location)?)? {
                    Some(k) => k,
                    None => ringfence_engine::Engine::new(store.clone()).server_public_key().await?,
                },
            };
            let key = parse_public_key(&public)?;
            let (ok, broken) =
                ringfence_engine::evidence::verify_store(store.as_ref(), chain.as_deref(), Some(&key))
                    .await?;
            output::print_verification(format, &ok, &broken);
            Ok(if broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(exit::EVIDENCE_BROKEN) })
        }
        Command::Bench(BenchCommand::Dispatch(args)) => {
            init_logs(Some("warn"));
            bench_dispatch::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Console(args)) => {
            init_logs(Some("warn"));
            bench_console::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Appliances(args)) => {
            // Every silent address of a sweep is a timeout the SNMP library logs as an error.
            init_logs(Some("warn,async_snmp=off"));
            bench_appliances::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Evidence(args)) => {
            init_logs(Some("warn"));
            bench_evidence::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Plan(args)) => {
            bench_policy::plan(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Simulate(args)) => {
            bench_policy::simulate(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Policy(args)) => {
            bench_policy::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Correlate(args)) => {
            bench_correlate::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Feeds(args)) => {
            bench::feeds(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Tenancy(args)) => {
            init_logs(Some("warn"));
            bench::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Version(VersionCommand::Compare { scheme, a, b, stdin }) => {
            let scheme = ringfence_versions::Scheme::parse(&scheme).map_err(|e| InvalidArgument(e.reason))?;
            let one = |a: &str, b: &str| {
                ringfence_versions::compare(scheme, a, b)
                    .map(|o| ringfence_versions::ordering_number(o).to_string())
                    .map_err(|e| e.reason)
            };
            Ok(line_tool(one, a.zip(b), stdin))
        }
        Command::Cpe(CpeCommand::Compare { source, target, stdin }) => {
            let one = |a: &str, b: &str| -> Result<String, String> {
                let a = ringfence_cpe::Cpe::parse(a).map_err(|e| e.0)?;
                let b = ringfence_cpe::Cpe::parse(b).map_err(|e| e.0)?;
                Ok(ringfence_cpe::compare_names(&a, &b).to_string())
            };
            Ok(line_tool(one, source.zip(target), stdin))
        }
        Command::Simulate(a) => {
            let options = ringfence_schedule::sim::Options {
                devices: a.devices,
                days: a.days,
                seed: a.seed,
                failure_rate: a.failure_rate,
                offline_rate: a.offline_rate,
                bad_failure_rate: a.bad_failure_rate,
                org_size: a.org_size,
            };
            let started = std::time::Instant::now();
            let report = ringfence_schedule::sim::run(&options).map_err(InvalidArgument)?;
            let elapsed = started.elapsed();
            let mut out = std::io::stdout().lock();
            use std::io::Write as _;
            if !a.summary_only {
                out.write_all(report.timeline().as_bytes())?;
            }
            out.write_all(report.summary().as_bytes())?;
            eprintln!("simulated in {:.2} s", elapsed.as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Command::Window(WindowCommand::Expand { window, after, count }) => {
            let window = window_from_flags(&window)?;
            let after: jiff::Timestamp = after.parse().map_err(|_| {
                InvalidArgument(format!(
                    "--after '{after}' is not an RFC 3339 instant such as 2026-03-01T00:00:00Z"
                ))
            })?;
            for o in window.occurrences_after(after, count as usize) {
                println!("{}", o.to_line());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Window(WindowCommand::Ics { window: flags, name }) => {
            let window = window_from_flags(&flags)?;
            let uid =
                format!("{}-{}@ringfence", flags.dtstart.replace([':', '-'], ""), flags.tz.replace('/', "-"));
            let event =
                ringfence_schedule::ics::Event { uid: &uid, summary: &name, window: &window, tz: &flags.tz };
            print!("{}", ringfence_schedule::ics::calendar(&name, &[event], jiff::Timestamp::now()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Cpe(CpeCommand::Parse { name }) => {
            let cpe = ringfence_cpe::Cpe::parse(&name).map_err(|e| InvalidArgument(e.0))?;
            println!("{}\n{}", cpe.to_fs(), cpe.to_uri());
            Ok(ExitCode::SUCCESS)
        }
        Command::Feeds(command) => {
            init_logs(Some("warn"));
            intel::run(command).await
        }
        Command::Scan(args) => {
            init_logs(Some("warn"));
            intel::scan(args).await
        }
        Command::Loadgen(args) => {
            loadgen::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&ringfence_server::openapi())?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A two-argument tool (`version compare`, `cpe compare`): one pair from the arguments, or
/// `A<TAB>B` lines from standard input with one result or `error: <reason>` per line. Exits 1
/// when any input was invalid.
fn line_tool(
    one: impl Fn(&str, &str) -> Result<String, String>,
    pair: Option<(String, String)>,
    stdin: bool,
) -> ExitCode {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    let _ = writeln!(out, "error: cannot read standard input: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = match line.trim_end_matches('\r').split_once('\t') {
                Some((a, b)) => one(a, b),
                None => Err("expected two values separated by a tab".to_owned()),
            };
            match result {
                Ok(r) => {
                    let _ = writeln!(out, "{r}");
                }
                Err(e) => {
                    failed = true;
                    let _ = writeln!(out, "error: {e}");
                }
            }
        }
    } else if let Some((a, b)) = pair {
        match one(&a, &b) {
            Ok(r) => {
                let _ = writeln!(out, "{r}");
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

async fn bind(settings: &config::Settings) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(settings.listen).await.map_err(|e| {
        InvalidArgument(format!(
            "cannot listen on {}: {e}; is another server using the port?",
            settings.listen
        ))
        .into()
    })
}

/// The web front's settings from the config file: reverse proxies and the metrics token.
#[derive(Default)]
struct Web {
    trusted_proxies: Vec<ringfence_server::auth::Cidr>,
    metrics_token: Option<String>,
}

impl Web {
    fn from_file(file: &config::FileConfig) -> anyhow::Result<Web> {
        Ok(Web {
            trusted_proxies: config::trusted_proxies(file).map_err(|e| InvalidArgument(format!("{e:#}")))?,
            metrics_token: config::metrics_token(file).map_err(|e| InvalidArgument(format!("{e:#}")))?,
        })
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    settings: &config::Settings,
    web: Web,
    location: &Location,
    banner: Option<String>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let state = ringfence_server::AppState::new(
        engine,
        ringfence_server::ServerConfig {
            secure_cookies: settings.secure_cookies,
            trusted_proxies: web.trusted_proxies,
            metrics_token: web.metrics_token,
            ..Default::default()
        },
    );
    tracing::info!(%addr, database = %location.redacted(), "ringfence is serving");
    if settings.secure_cookies {
        tracing::info!(
            "session cookies are marked Secure: serve the dashboard over HTTPS (for example behind a reverse proxy), \
             or set secure_cookies = false for plain HTTP on a trusted network"
        );
    }
    // The handlers are in place before anyone is told the server runs: a stop that comes
    // right after is a clean one.
    let stop = stop_signal();
    if let Some(b) = banner {
        println!("{b}\nPress Ctrl-C to stop.");
    } else {
        println!("ringfence is serving on http://{addr}/ (database: {})", location.redacted());
    }
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = stopping.clone();
    let server = ringfence_server::serve(listener, state, async move {
        let signal = stop.await;
        tracing::info!(signal, "stopping: no new connections; requests in flight finish");
        notify.notify_one();
    });
    // Requests in flight get a bounded time to finish; a client that keeps its connection
    // busy does not hold the stop up.
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::select! {
        r = server => r?,
        () = deadline => tracing::warn!(
            seconds = STOP_GRACE.as_secs(),
            "stopped with requests still in flight after the grace period"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a stop waits for requests in flight.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// SIGTERM (systemd, Docker, Kubernetes) or SIGINT (Ctrl-C), whichever comes first.
/// The handlers are installed when this is called, not when the future is first polled.
fn stop_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    "SIGINT"
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
