//! `ringfence admin`: the operator's direct access to the database. Every change goes
//! through the same engine use cases as the API (validation, evidence events), recorded as
//! actor `cli:<login>` where the login is `$SUDO_USER`, `$USER` or `operator`.

use crate::admin_remediation as ar;
use crate::output::{self, Format};
use crate::{DbArgs, InvalidArgument};
use clap::{Args, Subcommand};
use ringfence_engine::Engine;
use ringfence_model::{Name, Principal};
use ringfence_proto as proto;
use ringfence_store::Audit;
use std::io::BufRead;

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The partner to act on, by name or id (every command but `partner create|list`).
    #[arg(long, global = true, env = "RINGFENCE_PARTNER")]
    partner: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Partners (MSPs): the roots of tenancy.
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// Client organizations.
    #[command(subcommand, alias = "organization")]
    Org(OrgCmd),
    /// Sites of organizations.
    #[command(subcommand)]
    Site(SiteCmd),
    /// Device groups of organizations.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Devices.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Dashboard and API users.
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Site enrollment tokens for agents.
    #[command(subcommand, name = "enrollment-token")]
    EnrollmentToken(EnrollmentTokenCmd),
    /// Configuration policies: list, create, preview, and a device's effective policy.
    #[command(subcommand)]
    Policy(ar::PolicyCmd),
    /// The remediation queue: updates ranked by the risk they remove.
    Queue(ar::QueueArgs),
    /// Approve, reject or defer updates from the queue, with a reason.
    Decide(ar::DecideArgs),
    /// The history of decisions, by rule and by person.
    Approvals {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// The approval rules of the partner's policies.
    #[command(subcommand)]
    Rules(ar::RulesCmd),
    /// When approved updates are expected to land on each device, and why later ones wait.
    Schedule {
        #[arg(long = "organization")]
        organization_id: Option<String>,
        #[arg(long = "device")]
        device_id: Option<String>,
    },
    /// Client exceptions: software pinned or excluded by name and version range.
    #[command(subcommand)]
    Exception(ar::ExceptionCmd),
    /// Every update ring by ring: waiting, pending, running, succeeded, failed, the gates
    /// and halts.
    Rollouts,
    /// Deployments, newest first (filter by device, organization, status or update).
    Deployments {
        #[arg(long = "device")]
        device_id: Option<String>,
        #[arg(long = "organization")]
        organization_id: Option<String>,
        /// scheduled, dispatched, running, rebooting, installed, verified, failed, rolled_back,
        /// missed (several separated by commas).
        #[arg(long)]
        status: Option<String>,
        /// PRODUCT=VERSION
        #[arg(long)]
        update: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Run the dispatcher now: missed windows, ring gates, and the next hour's deployments.
    Dispatch,
    /// Roll an update back on one device, one organization, or (neither) every device of the
    /// partner, which also halts it; the previous version is then held.
    Rollback {
        /// PRODUCT=VERSION
        #[arg(long)]
        update: String,
        #[arg(long = "device")]
        device_id: Option<String>,
        #[arg(long = "organization")]
        organization_id: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Another attempt at a failed or missed install, in the device's next window.
    Retry {
        #[arg(long)]
        deployment: String,
        #[arg(long)]
        reason: String,
    },
    /// Versions held after rollbacks; `--clear ID` clears one.
    Holds {
        #[arg(long)]
        clear: Option<String>,
    },
    /// Client reports: list them, or generate one (`--organization ID [--period P | --from
    /// D --to D] [--email-to ADDR …] [--out FILE.pdf|.html|.csv]`).
    Report {
        /// Generate a report for this organization (without it: list the reports kept).
        #[arg(long = "organization")]
        organization_id: Option<String>,
        /// last_month (default), this_month, last_7_days, last_30_days or last_90_days.
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Also mail it (needs [reports.smtp] in the config).
        #[arg(long = "email-to")]
        email_to: Vec<String>,
        /// Write the report to this file; its extension picks the format (pdf, html or csv).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Network appliances: list, add or import by hand, confirm firmware, the fleet's
    /// firmware, and maintenance tasks.
    #[command(subcommand)]
    Appliance(crate::admin_appliances::ApplianceCmd),
    /// Findings past their remediation deadline and those due within 7 days.
    Sla {
        #[arg(long = "organization")]
        organization_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum EnrollmentTokenCmd {
    List,
    /// Create an enrollment token for a site; prints the secret once.
    Create {
        #[arg(long)]
        site: String,
        #[arg(long)]
        name: String,
        /// Hours until it expires (1 to 8760).
        #[arg(long)]
        expires_in_hours: Option<i64>,
        /// How many devices may enroll with it.
        #[arg(long)]
        max_uses: Option<i64>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum PartnerCmd {
    /// Create a partner.
    Create { name: String },
    /// List partners.
    List,
    /// Rename the partner given with --partner.
    Rename { name: String },
    /// Delete the partner given with --partner and everything below it.
    Delete {
        /// Confirm: the partner's organizations, devices and users are deleted.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum OrgCmd {
    List,
    Show {
        id: String,
    },
    Create {
        name: String,
        #[arg(long, default_value = "")]
        notes: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        notes: Option<String>,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum SiteCmd {
    List {
        #[arg(long = "org")]
        organization_id: Option<String>,
    },
    Show {
        id: String,
    },
    Create {
        #[arg(long = "org")]
        organization_id: String,
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. America/Chicago.
        #[arg(long = "tz")]
        time_zone: String,
        #[arg(long, default_value = "")]
        address: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "tz")]
        time_zone: Option<String>,
        #[arg(long)]
        address: Option<String>,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum GroupCmd {
    List {
        #[arg(long = "org")]
        organization_id: Option<String>,
    },
    Show {
        id: String,
    },
    Create {
        #[arg(long = "org")]
        organization_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    List {
        #[arg(long = "org")]
        organization_id: Option<String>,
        #[arg(long = "site")]
        site_id: Option<String>,
        #[arg(long = "group")]
        group_id: Option<String>,
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    Show {
        id: String,
    },
    Create {
        #[arg(long = "site")]
        site_id: String,
        #[arg(long)]
        hostname: String,
        /// workstation, laptop, server, domain_controller, hypervisor, network_appliance,
        /// kiosk or other.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        os: String,
        #[arg(long)]
        internet_facing: bool,
        #[arg(long)]
        sensitive_data: bool,
        /// low, medium, high or critical.
        #[arg(long)]
        criticality: Option<String>,
        /// The device's own IANA zone (default: the site's).
        #[arg(long = "tz")]
        time_zone: Option<String>,
        /// A group id; repeat for several.
        #[arg(long = "group")]
        group_ids: Vec<String>,
    },
    Update {
        id: String,
        #[arg(long = "site")]
        site_id: Option<String>,
        #[arg(long)]
        hostname: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        os: Option<String>,
        #[arg(long)]
        internet_facing: Option<bool>,
        #[arg(long)]
        sensitive_data: Option<bool>,
        #[arg(long)]
        criticality: Option<String>,
        /// A zone, or `inherit` to follow the site's zone again.
        #[arg(long = "tz")]
        time_zone: Option<String>,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    List,
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        username: String,
        /// partner_admin, technician, client_viewer or auditor.
        #[arg(long)]
        role: String,
        #[arg(long = "org")]
        organization_id: Option<String>,
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Change a user; `--password` reads the new password from standard input.
    Update {
        id: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        disabled: Option<bool>,
        #[arg(long)]
        password: bool,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    List,
    /// Create an API token for a user; prints the secret once.
    Create {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long = "org")]
        organization_id: Option<String>,
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    Revoke {
        id: String,
    },
}

fn operator_login() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "operator".into())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err(InvalidArgument("give the password on standard input, e.g. `read -rs PW; echo \"$PW\" | ringfence admin user create …`".into()).into());
    }
    Ok(pw)
}

pub(crate) async fn operator(engine: &Engine, partner: &Option<String>) -> anyhow::Result<Principal> {
    let Some(partner) = partner else {
        return Err(InvalidArgument(
            "name the partner with --partner NAME (see `ringfence admin partner list`)".into(),
        )
        .into());
    };
    Ok(engine.operator(&operator_login(), partner).await?)
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

pub async fn run(engine: Engine, args: AdminArgs) -> anyhow::Result<()> {
    let f = args.format;
    let emit = |headers: &[&str], rows: Vec<Vec<String>>, value: serde_json::Value| match f {
        Format::Json => output::json(&value),
        Format::Table => output::table(headers, rows),
    };
    macro_rules! one {
        ($v:expr, $row:expr) => {{
            let v = $v;
            let row: Vec<String> = $row(&v);
            emit(&["id", "name", "detail"], vec![row], serde_json::to_value(&v)?);
        }};
    }
    match args.command {
        AdminCommand::Partner(cmd) => match cmd {
            PartnerCmd::Create { name } => {
                let name = Name::parse("name", &name).map_err(|e| InvalidArgument(e.to_string()))?;
                let audit = Audit::new(format!("cli:{}", operator_login()), engine.now());
                let p = engine
                    .store()
                    .create_partner(&audit, &name)
                    .await
                    .map_err(ringfence_engine::EngineError::from)?;
                one!(p, |p: &ringfence_model::Partner| vec![p.id.to_string(), p.name.clone(), String::new()]);
            }
            PartnerCmd::List => {
                let list =
                    engine.store().list_partners().await.map_err(ringfence_engine::EngineError::from)?;
                let rows = list.iter().map(|p| vec![p.id.to_string(), p.name.clone()]).collect();
                emit(&["id", "name"], rows, serde_json::to_value(&list)?);
            }
            PartnerCmd::Rename { name } => {
                let op = operator(&engine, &args.partner).await?;
                let p = engine.update_partner(&op, &proto::UpdatePartner { name }).await?;
                one!(p, |p: &ringfence_model::Partner| vec![p.id.to_string(), p.name.clone(), String::new()]);
            }
            PartnerCmd::Delete { yes } => {
                let op = operator(&engine, &args.partner).await?;
                if !yes {
                    return Err(InvalidArgument("deleting a partner removes all its organizations, devices and users; add --yes to confirm".into()).into());
                }
                let audit = Audit::new(op.actor(), engine.now());
                engine
                    .store()
                    .delete_partner(&audit, &op.partner_id)
                    .await
                    .map_err(ringfence_engine::EngineError::from)?;
                println!("deleted partner {}", op.partner_id);
            }
        },
        AdminCommand::Org(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |o: &ringfence_model::Organization| {
                vec![o.id.to_string(), o.name.clone(), o.notes.chars().take(60).collect()]
            };
            match cmd {
                OrgCmd::List => {
                    let list = engine.organizations(&op).await?;
                    emit(
                        &["id", "name", "notes"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                OrgCmd::Show { id } => one!(engine.organization(&op, &id).await?, row),
                OrgCmd::Create { name, notes } => {
                    one!(
                        engine.create_organization(&op, &proto::CreateOrganization { name, notes }).await?,
                        row
                    )
                }
                OrgCmd::Update { id, name, notes } => {
                    one!(
                        engine
                            .update_organization(&op, &id, &proto::UpdateOrganization { name, notes })
                            .await?,
                        row
                    )
                }
                OrgCmd::Delete { id } => {
                    engine.delete_organization(&op, &id).await?;
                    println!("deleted organization {id}");
                }
            }
        }
        AdminCommand::Site(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |s: &ringfence_model::Site| vec![s.id.to_string(), s.name.clone(), s.time_zone.clone()];
            match cmd {
                SiteCmd::List { organization_id } => {
                    let list = engine.sites(&op, organization_id.as_deref()).await?;
                    emit(
                        &["id", "name", "time zone"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                SiteCmd::Show { id } => one!(engine.site(&op, &id).await?, row),
                SiteCmd::Create { organization_id, name, time_zone, address } => one!(
                    engine
                        .create_site(&op, &proto::CreateSite { organization_id, name, time_zone, address })
                        .await?,
                    row
                ),
                SiteCmd::Update { id, name, time_zone, address } => one!(
                    engine.update_site(&op, &id, &proto::UpdateSite { name, time_zone, address }).await?,
                    row
                ),
                SiteCmd::Delete { id } => {
                    engine.delete_site(&op, &id).await?;
                    println!("deleted site {id}");
                }
            }
        }
        AdminCommand::Group(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |g: &ringfence_model::DeviceGroup| {
                vec![g.id.to_string(), g.name.clone(), format!("{} devices", g.device_count)]
            };
            match cmd {
                GroupCmd::List { organization_id } => {
                    let list = engine.groups(&op, organization_id.as_deref()).await?;
                    emit(
                        &["id", "name", "devices"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                GroupCmd::Show { id } => one!(engine.group(&op, &id).await?, row),
                GroupCmd::Create { organization_id, name, description } => one!(
                    engine
                        .create_group(&op, &proto::CreateDeviceGroup { organization_id, name, description })
                        .await?,
                    row
                ),
                GroupCmd::Update { id, name, description } => one!(
                    engine.update_group(&op, &id, &proto::UpdateDeviceGroup { name, description }).await?,
                    row
                ),
                GroupCmd::Delete { id } => {
                    engine.delete_group(&op, &id).await?;
                    println!("deleted device group {id}");
                }
            }
        }
        AdminCommand::Device(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |d: &ringfence_model::Device| {
                vec![
                    d.id.to_string(),
                    d.hostname.clone(),
                    format!("{} {} {}", d.role, d.criticality, d.effective_time_zone),
                ]
            };
            match cmd {
                DeviceCmd::List { organization_id, site_id, group_id, search, limit, offset } => {
                    let q = proto::DeviceListQuery {
                        organization_id,
                        site_id,
                        group_id,
                        search,
                        limit: Some(limit),
                        offset: Some(offset),
                    };
                    let page = engine.devices(&op, &q).await?;
                    let rows = page.items.iter().map(|d| {
                        vec![
                            d.id.to_string(),
                            d.hostname.clone(),
                            d.role.to_string(),
                            d.criticality.to_string(),
                            yes_no(d.internet_facing),
                            d.effective_time_zone.clone(),
                        ]
                    });
                    match f {
                        Format::Json => output::json(&page),
                        Format::Table => {
                            output::table(
                                &["id", "hostname", "role", "criticality", "internet", "time zone"],
                                rows.collect(),
                            );
                            println!(
                                "{} of {} devices (offset {})",
                                page.items.len(),
                                page.total,
                                page.offset
                            );
                        }
                    }
                }
                DeviceCmd::Show { id } => one!(engine.device(&op, &id).await?, row),
                DeviceCmd::Create {
                    site_id,
                    hostname,
                    role,
                    os,
                    internet_facing,
                    sensitive_data,
                    criticality,
                    time_zone,
                    group_ids,
                } => {
                    let req = proto::CreateDevice {
                        site_id,
                        hostname,
                        role,
                        os,
                        internet_facing,
                        holds_sensitive_data: sensitive_data,
                        criticality,
                        time_zone,
                        group_ids,
                    };
                    one!(engine.create_device(&op, &req).await?, row)
                }
                DeviceCmd::Update {
                    id,
                    site_id,
                    hostname,
                    role,
                    os,
                    internet_facing,
                    sensitive_data,
                    criticality,
                    time_zone,
                } => {
                    let req = proto::UpdateDevice {
                        site_id,
                        hostname,
                        role,
                        os,
                        internet_facing,
                        holds_sensitive_data: sensitive_data,
                        criticality,
                        time_zone: time_zone.map(|z| if z == "inherit" { None } else { Some(z) }),
                        group_ids: None,
                    };
                    one!(engine.update_device(&op, &id, &req).await?, row)
                }
                DeviceCmd::Delete { id } => {
                    engine.delete_device(&op, &id).await?;
                    println!("deleted device {id}");
                }
            }
        }
        AdminCommand::User(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |u: &ringfence_model::User| {
                vec![
                    u.id.to_string(),
                    u.username.clone(),
                    format!("{}{}", u.role, if u.disabled { " (disabled)" } else { "" }),
                ]
            };
            match cmd {
                UserCmd::List => {
                    let list = engine.users(&op).await?;
                    emit(
                        &["id", "username", "role"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                UserCmd::Create { username, role, organization_id, display_name } => {
                    let password = read_password()?;
                    let req = proto::CreateUser { username, display_name, role, organization_id, password };
                    one!(engine.create_user(&op, &req).await?, row)
                }
                UserCmd::Update { id, role, display_name, disabled, password } => {
                    let password = if password { Some(read_password()?) } else { None };
                    let req = proto::UpdateUser {
                        display_name,
                        role,
                        organization_id: None,
                        disabled,
                        password,
                        current_password: None,
                    };
                    one!(engine.update_user(&op, &id, &req).await?, row)
                }
                UserCmd::Delete { id } => {
                    engine.delete_user(&op, &id).await?;
                    println!("deleted user {id}");
                }
            }
        }
        AdminCommand::Token(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |t: &ringfence_model::ApiToken| {
                let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                vec![t.id.to_string(), t.name.clone(), format!("{} {state}", t.role)]
            };
            match cmd {
                TokenCmd::List => {
                    let list = engine.tokens(&op).await?;
                    emit(
                        &["id", "name", "role"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                TokenCmd::Create { user, name, role, organization_id, expires_in_days } => {
                    let acting = engine.as_user(&op, &user).await?;
                    let created = engine
                        .create_token(
                            &acting,
                            &proto::CreateToken { name, role, organization_id, expires_in_days },
                        )
                        .await?;
                    match f {
                        Format::Json => output::json(&created),
                        Format::Table => {
                            println!("token {} created for {user}", created.token.id);
                            println!("secret (shown once): {}", created.secret);
                        }
                    }
                }
                TokenCmd::Revoke { id } => one!(engine.revoke_token(&op, &id).await?, row),
            }
        }
        AdminCommand::EnrollmentToken(cmd) => {
            let op = operator(&engine, &args.partner).await?;
            let row = |t: &ringfence_model::EnrollmentToken| {
                let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                let uses = match t.max_uses {
                    Some(m) => format!("{}/{m}", t.uses),
                    None => t.uses.to_string(),
                };
                vec![t.id.to_string(), t.name.clone(), t.site_id.to_string(), uses, state.into()]
            };
            match cmd {
                EnrollmentTokenCmd::List => {
                    let list = engine.enrollment_tokens(&op).await?;
                    emit(
                        &["id", "name", "site", "uses", "state"],
                        list.iter().map(row).collect(),
                        serde_json::to_value(&list)?,
                    );
                }
                EnrollmentTokenCmd::Create { site, name, expires_in_hours, max_uses } => {
                    let created = engine
                        .create_enrollment_token(
                            &op,
                            &proto::CreateEnrollmentToken { site_id: site, name, expires_in_hours, max_uses },
                        )
                        .await?;
                    match f {
                        Format::Json => output::json(&created),
                        Format::Table => {
                            println!("enrollment token {} created", created.token.id);
                            println!("secret (shown once): {}", created.secret);
                            println!(
                                "enroll a device: ringfence-agent enroll --server URL --token {}",
                                created.secret
                            );
                        }
                    }
                }
                EnrollmentTokenCmd::Revoke { id } => {
                    one!(engine.revoke_enrollment_token(&op, &id).await?, row)
                }
            }
        }
        AdminCommand::Policy(cmd) => {
            ar::policy(&engine, &operator(&engine, &args.partner).await?, f, cmd).await?
        }
        AdminCommand::Queue(q) => ar::queue(&engine, &operator(&engine, &args.partner).await?, f, q).await?,
        AdminCommand::Decide(d) => {
            ar::decide(&engine, &operator(&engine, &args.partner).await?, f, d).await?
        }
        AdminCommand::Approvals { limit } => {
            ar::approvals(&engine, &operator(&engine, &args.partner).await?, f, limit).await?
        }
        AdminCommand::Rules(cmd) => {
            ar::rules(&engine, &operator(&engine, &args.partner).await?, f, cmd).await?
        }
        AdminCommand::Schedule { organization_id, device_id } => {
            let q = ringfence_proto::ScheduleQuery { organization_id, device_id };
            ar::schedule(&engine, &operator(&engine, &args.partner).await?, f, &q).await?
        }
        AdminCommand::Exception(cmd) => {
            ar::exception(&engine, &operator(&engine, &args.partner).await?, f, cmd).await?
        }
        AdminCommand::Rollouts => ar::rollouts(&engine, &operator(&engine, &args.partner).await?, f).await?,
        AdminCommand::Deployments { device_id, organization_id, status, update, limit } => {
            let (product, version) = match update {
                Some(u) => {
                    let (p, v) = ar::split_update(&u)?;
                    (Some(p), Some(v))
                }
                None => (None, None),
            };
            let q = ringfence_proto::DeploymentListQuery {
                organization_id,
                device_id,
                status,
                kind: None,
                product,
                version,
                changed_within_hours: None,
                limit: Some(limit),
            };
            ar::deployments(&engine, &operator(&engine, &args.partner).await?, f, &q).await?
        }
        AdminCommand::Dispatch => ar::dispatch(&engine, &operator(&engine, &args.partner).await?, f).await?,
        AdminCommand::Rollback { update, device_id, organization_id, reason } => {
            let (product, version) = ar::split_update(&update)?;
            let req =
                ringfence_proto::RollbackRequest { product, version, organization_id, device_id, reason };
            ar::rollback(&engine, &operator(&engine, &args.partner).await?, f, &req).await?
        }
        AdminCommand::Retry { deployment, reason } => {
            ar::retry(&engine, &operator(&engine, &args.partner).await?, f, &deployment, &reason).await?
        }
        AdminCommand::Holds { clear } => {
            ar::holds(&engine, &operator(&engine, &args.partner).await?, f, clear).await?
        }
        AdminCommand::Report { organization_id, period, from, to, email_to, out } => {
            let op = operator(&engine, &args.partner).await?;
            let req = organization_id.map(|organization_id| ringfence_proto::ReportRequest {
                organization_id,
                period,
                from,
                to,
                email_to,
            });
            ar::report(&engine, &op, f, req, out.as_deref()).await?
        }
        AdminCommand::Appliance(cmd) => {
            crate::admin_appliances::run(&engine, &operator(&engine, &args.partner).await?, f, cmd).await?
        }
        AdminCommand::Sla { organization_id } => {
            ar::sla(&engine, &operator(&engine, &args.partner).await?, f, organization_id.as_deref()).await?
        }
    }
    Ok(())
}
