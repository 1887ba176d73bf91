//! `ringfence-agent`: the endpoint agent.

use clap::{Parser, Subcommand, ValueEnum};
use ringfence_agent::{Report, Root, collect};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ringfence-agent", version, about = "The ringfence endpoint agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Register this device in a site with the site's enrollment token.
    Enroll {
        /// The ringfence server, e.g. https://rmm.example.com
        #[arg(long)]
        server: String,
        /// The site's enrollment token (rfe_…).
        #[arg(long, env = "RINGFENCE_ENROLLMENT_TOKEN", hide_env_values = true)]
        token: String,
        /// Where the credential is kept (agent.json, mode 0600; on Windows
        /// %ProgramData%\ringfence, readable by SYSTEM and Administrators only).
        #[arg(long, default_value_os_t = ringfence_agent::enroll::default_config_dir())]
        config_dir: PathBuf,
        /// Report this host name instead of the system's.
        #[arg(long)]
        hostname: Option<String>,
        /// Read machine-id and host name under this folder instead of /.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Enroll again although this agent is enrolled already.
        #[arg(long)]
        force: bool,
    },
    /// Run: a heartbeat every minute; the inventory collected every 15 minutes and at once
    /// when a package database changes, reported when it changed; then the jobs the server
    /// leases, each verified, run once and reported. With --once, one round and exit (1 when
    /// the server could not be reached; reports are kept and sent next time).
    Run {
        #[arg(long, default_value_os_t = ringfence_agent::enroll::default_config_dir())]
        config_dir: PathBuf,
        #[arg(long, default_value = "/")]
        root: PathBuf,
        #[arg(long)]
        once: bool,
        /// Seconds between heartbeats.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        checkin_interval: u64,
        /// Seconds between scheduled inventory collections (a package change triggers one at once).
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86400))]
        inventory_interval: u64,
        /// The command that reboots the device when a job needs it (split on whitespace).
        #[arg(long, default_value = "systemctl reboot")]
        reboot_command: String,
        /// Free space (MiB) the package cache and / must have before a job installs.
        #[arg(long, default_value_t = 500)]
        min_free_mib: u64,
        /// Seconds to wait for another package manager to release its lock before a job fails.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=3600))]
        lock_wait: u64,
    },
    /// Poll one appliance over SNMP as a collector would and print what it observed as JSON
    /// (for technicians testing a credential). Exit 1 when the poll did not succeed.
    SnmpPoll {
        /// The appliance's address and port, e.g. 192.0.2.1:161.
        #[arg(long)]
        address: std::net::SocketAddr,
        /// An SNMPv2c community.
        #[arg(long, env = "RINGFENCE_SNMP_COMMUNITY", hide_env_values = true, conflicts_with = "user")]
        community: Option<String>,
        /// An SNMPv3 user (authPriv, with --auth-password and --priv-password).
        #[arg(long, requires_all = ["auth_password", "priv_password"])]
        user: Option<String>,
        #[arg(long, value_parser = ["sha1", "sha256", "sha512"], default_value = "sha256")]
        auth_protocol: String,
        #[arg(long, env = "RINGFENCE_SNMP_AUTH_PASSWORD", hide_env_values = true)]
        auth_password: Option<String>,
        #[arg(long, value_parser = ["aes128", "aes256"], default_value = "aes128")]
        priv_protocol: String,
        #[arg(long, env = "RINGFENCE_SNMP_PRIV_PASSWORD", hide_env_values = true)]
        priv_password: Option<String>,
        /// Milliseconds to wait for each answer.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=60000))]
        timeout_ms: u64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=5))]
        retries: u8,
    },
    /// Windows: run as a service (install, uninstall, or the service's own entry point).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Collect and print what the agent would send, without a server (for troubleshooting).
    Inventory {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Read the system under this folder instead of / (a mounted image, a test tree).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    /// Register the ringfence-agent service (automatic start, LocalSystem) and start it;
    /// with --server and --token, enroll first.
    Install {
        #[arg(long, default_value_os_t = ringfence_agent::enroll::default_config_dir())]
        config_dir: PathBuf,
        #[arg(long, requires = "token")]
        server: Option<String>,
        #[arg(long, env = "RINGFENCE_ENROLLMENT_TOKEN", hide_env_values = true, requires = "server")]
        token: Option<String>,
    },
    /// Stop and remove the service (the enrollment stays in the configuration folder).
    Uninstall,
    /// The service's entry point, started by the service manager.
    Run {
        #[arg(long, default_value_os_t = ringfence_agent::enroll::default_config_dir())]
        config_dir: PathBuf,
    },
}

/// Prints like `println!`, but a closed pipe (`| head`) ends the output quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn print_table(r: &Report) {
    let os = &r.inventory.os;
    out!("{} ({} {})", if os.name.is_empty() { "unknown OS" } else { &os.name }, os.id, os.version);
    out!("{:<16} {:<14} {:>6}  DETAIL", "COLLECTOR", "OUTCOME", "ITEMS");
    for c in &r.collectors {
        out!("{:<16} {:<14} {:>6}  {}", c.collector, c.outcome, c.items, c.detail.as_deref().unwrap_or(""));
    }
    out!();
    out!("{:<12} {:<40} {:<32} SOURCE", "KIND", "NAME", "VERSION");
    for i in &r.inventory.items {
        out!(
            "{:<12} {:<40} {:<32} {}",
            i.kind.as_str(),
            i.name,
            i.version,
            i.source_name.as_deref().or(i.vendor.as_deref()).unwrap_or("")
        );
    }
    let security = r.pending_updates.iter().filter(|u| u.security).count();
    out!(
        "\n{} items; {} pending updates ({} security); reboot required: {}",
        r.inventory.items.len(),
        r.pending_updates.len(),
        security,
        if r.reboot_required { "yes" } else { "no" }
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Enroll { server, token, config_dir, hostname, root, force } => {
            match ringfence_agent::enroll::enroll(
                &server,
                &token,
                &config_dir,
                &Root(root),
                hostname.as_deref(),
                force,
            ) {
                Ok((config, clone_of)) => {
                    out!("enrolled as device {} with {}", config.device_id, config.server);
                    out!(
                        "credential kept in {}",
                        ringfence_agent::enroll::config_path(&config_dir).display()
                    );
                    if let Some(c) = clone_of {
                        out!(
                            "note: this machine-id enrolled before (device {c}); the server flags it as a clone"
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run {
            config_dir,
            root,
            once,
            checkin_interval,
            inventory_interval,
            reboot_command,
            min_free_mib,
            lock_wait,
        } => {
            let every = ringfence_agent::checkin::Intervals {
                checkin: std::time::Duration::from_secs(checkin_interval),
                inventory: std::time::Duration::from_secs(inventory_interval),
            };
            let reboot_command: Vec<String> = reboot_command.split_whitespace().map(String::from).collect();
            if reboot_command.is_empty() {
                eprintln!("error: --reboot-command is empty: name the program that reboots this device");
                return ExitCode::from(2);
            }
            if !root.is_dir() {
                eprintln!("error: --root {} is not a folder", root.display());
                return ExitCode::from(2);
            }
            let opts = ringfence_agent::exec::ExecOptions {
                reboot_command,
                min_free_mib,
                lock_wait: std::time::Duration::from_secs(lock_wait),
                ..ringfence_agent::exec::ExecOptions::for_root(Root(root))
            };
            ringfence_agent::stop::on_signals();
            match ringfence_agent::checkin::run(&config_dir, &opts, once, every) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::SnmpPoll {
            address,
            community,
            user,
            auth_protocol,
            auth_password,
            priv_protocol,
            priv_password,
            timeout_ms,
            retries,
        } => snmp_poll(
            address,
            community,
            user,
            &auth_protocol,
            auth_password,
            &priv_protocol,
            priv_password,
            std::time::Duration::from_millis(timeout_ms),
            retries,
        ),
        Command::Service { action } => service(action),
        Command::Inventory { format, root } => {
            if !root.is_dir() {
                eprintln!("error: --root {} is not a folder", root.display());
                return ExitCode::from(2);
            }
            let report = collect(&Root(root));
            match format {
                Format::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => out!("{s}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                Format::Table => print_table(&report),
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(not(windows))]
fn service(_: ServiceAction) -> ExitCode {
    eprintln!(
        "error: the service commands are for Windows; on Linux install packaging/ringfence-agent.service \
         (systemd) and run `systemctl enable --now ringfence-agent`"
    );
    ExitCode::from(2)
}

#[cfg(windows)]
fn service(action: ServiceAction) -> ExitCode {
    use ringfence_agent::platforms::windows_service as svc;
    let result = match action {
        ServiceAction::Install { config_dir, server, token } => {
            let enrolled = match (server, token) {
                (Some(server), Some(token)) => svc::protect(&config_dir)
                    .and_then(|()| {
                        ringfence_agent::enroll::enroll(
                            &server,
                            &token,
                            &config_dir,
                            &Root("/".into()),
                            None,
                            false,
                        )
                    })
                    .map(|(c, _)| out!("enrolled as device {} with {}", c.device_id, c.server)),
                _ => Ok(()),
            };
            enrolled.and_then(|()| svc::install(&config_dir)).map(|()| {
                out!(
                    "service {} installed and started; configuration in {}",
                    svc::SERVICE_NAME,
                    config_dir.display()
                )
            })
        }
        ServiceAction::Uninstall => svc::uninstall().map(|()| out!("service {} removed", svc::SERVICE_NAME)),
        ServiceAction::Run { config_dir } => svc::run(move || service_body(config_dir)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The service's work: enroll with what the installer left in the registry when not
/// enrolled yet, then the agent's loop, retried a minute after it stops on an error.
#[cfg(windows)]
fn service_body(config_dir: PathBuf) {
    use ringfence_agent::platforms::windows_registry as reg;
    let root = Root(PathBuf::from("/"));
    // An MSI install created nothing yet: the folder is made private before the credential
    // is written into it.
    if let Err(e) = ringfence_agent::platforms::windows_service::protect(&config_dir) {
        eprintln!("warning: {e}");
    }
    loop {
        if !ringfence_agent::enroll::config_path(&config_dir).exists()
            && let (Some(server), Some(token)) =
                (reg::agent_setting("ServerUrl"), reg::agent_setting("EnrollToken"))
            && ringfence_agent::enroll::enroll(&server, &token, &config_dir, &root, None, false).is_ok()
        {
            reg::forget_agent_setting("EnrollToken");
        }
        let opts = ringfence_agent::exec::ExecOptions {
            reboot_command: [
                "shutdown.exe",
                "/r",
                "/t",
                "60",
                "/c",
                "ringfence: restarting to finish updates",
            ]
            .map(String::from)
            .to_vec(),
            ..ringfence_agent::exec::ExecOptions::for_root(root.clone())
        };
        let _ = ringfence_agent::checkin::run(
            &config_dir,
            &opts,
            false,
            ringfence_agent::checkin::Intervals::default(),
        );
        if ringfence_agent::stop::requested()
            || ringfence_agent::stop::sleep(std::time::Duration::from_secs(60))
        {
            ringfence_agent::stop::finish();
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn snmp_poll(
    address: std::net::SocketAddr,
    community: Option<String>,
    user: Option<String>,
    auth_protocol: &str,
    auth_password: Option<String>,
    priv_protocol: &str,
    priv_password: Option<String>,
    timeout: std::time::Duration,
    retries: u8,
) -> ExitCode {
    use ringfence_proto::collector::{AuthProtocol, PrivProtocol, SnmpCredential, TargetOutcome};
    let credential = match (community, user) {
        (Some(community), None) => SnmpCredential::V2c { community },
        (None, Some(user)) => SnmpCredential::V3 {
            user,
            auth_protocol: match auth_protocol {
                "sha1" => AuthProtocol::Sha1,
                "sha512" => AuthProtocol::Sha512,
                _ => AuthProtocol::Sha256,
            },
            auth_password: auth_password.unwrap_or_default(),
            priv_protocol: if priv_protocol == "aes256" {
                PrivProtocol::Aes256
            } else {
                PrivProtocol::Aes128
            },
            priv_password: priv_password.unwrap_or_default(),
        },
        _ => {
            eprintln!(
                "error: give --community (SNMPv2c) or --user with --auth-password and --priv-password (SNMPv3)"
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = credential.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ringfence_agent::snmp::poll(address, &credential, timeout, retries)) {
        TargetOutcome::Ok { observation, .. } => match serde_json::to_string_pretty(&observation) {
            Ok(s) => {
                out!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        other => {
            let detail = match &other {
                TargetOutcome::Unreachable { detail }
                | TargetOutcome::AuthFailed { detail }
                | TargetOutcome::Malformed { detail }
                | TargetOutcome::Error { detail } => format!(": {detail}"),
                _ => " (a wrong SNMPv2c community also looks like this)".to_string(),
            };
            eprintln!("error: {address}: {}{detail}", other.name());
            ExitCode::FAILURE
        }
    }
}
