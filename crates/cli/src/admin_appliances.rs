//! `ringfence admin appliance …`: network appliances from the command line, through the same
//! engine use cases as the API.

use crate::InvalidArgument;
use crate::admin_remediation::emit;
use crate::output::Format;
use clap::Subcommand;
use ringfence_engine::Engine;
use ringfence_model::{OrganizationId, Principal};
use ringfence_proto::appliances::{ConfirmAppliance, CreateAppliance, ImportAppliances, TaskDone};
use ringfence_store::ApplianceQuery;

#[derive(Subcommand)]
pub enum ApplianceCmd {
    /// Appliances with their firmware, last poll or confirmation, and findings (KEV first).
    List {
        #[arg(long = "organization")]
        organization_id: Option<String>,
        /// Only those the table and mappings do not identify.
        #[arg(long)]
        unidentified: bool,
    },
    /// Add an appliance reported by hand (no SNMP access).
    Add {
        #[arg(long)]
        site: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        firmware: String,
        #[arg(long)]
        serial: Option<String>,
    },
    /// Import manually reported appliances from a CSV file (name, vendor, model, firmware,
    /// site; optional address, serial, notes): every row or none.
    Import {
        #[arg(long = "organization")]
        organization_id: String,
        #[arg(long)]
        csv: std::path::PathBuf,
    },
    /// Confirm a manual appliance's firmware ("last confirmed on …").
    Confirm {
        #[arg(long)]
        appliance: String,
        #[arg(long)]
        firmware: String,
    },
    /// Every firmware in the fleet, and how many clients run it.
    Firmware,
    /// Maintenance tasks (open ones unless --all).
    Tasks {
        #[arg(long)]
        all: bool,
    },
    /// Mark a maintenance task done; the next poll or confirmation verifies it.
    Done {
        #[arg(long)]
        task: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn run(engine: &Engine, op: &Principal, f: Format, cmd: ApplianceCmd) -> anyhow::Result<()> {
    match cmd {
        ApplianceCmd::List { organization_id, unidentified } => {
            let organization_id = match organization_id {
                Some(o) => Some(
                    OrganizationId::parse(&o)
                        .map_err(|e| InvalidArgument(format!("--organization: {}", e.message)))?,
                ),
                None => None,
            };
            let list = engine
                .appliances(op, &ApplianceQuery { organization_id, unidentified, ..Default::default() })
                .await?;
            let rows = list
                .iter()
                .map(|v| {
                    let a = &v.appliance;
                    let i = &a.identity;
                    vec![
                        a.device_id.to_string(),
                        a.hostname.clone(),
                        a.organization.clone(),
                        if i.identified {
                            format!(
                                "{} {}",
                                i.vendor.as_deref().unwrap_or(""),
                                i.model.as_deref().unwrap_or("")
                            )
                        } else {
                            format!("unidentified ({})", i.sys_object_id)
                        },
                        format!(
                            "{} {}",
                            i.product.as_deref().unwrap_or(""),
                            i.firmware.as_deref().unwrap_or("")
                        ),
                        match a.source.as_str() {
                            "manual" => format!(
                                "manual, confirmed {}",
                                a.confirmed_at
                                    .map(|t| t.strftime("%Y-%m-%d").to_string())
                                    .unwrap_or_default()
                            ),
                            _ => a.last_outcome.clone().unwrap_or_else(|| "not polled".into()),
                        },
                        format!("{} ({} KEV)", v.findings.len(), v.kev_findings),
                    ]
                })
                .collect();
            emit(
                f,
                &["id", "name", "organization", "model", "firmware", "status", "findings"],
                rows,
                serde_json::to_value(&list)?,
            );
        }
        ApplianceCmd::Add { site, name, vendor, model, firmware, serial } => {
            let req = CreateAppliance {
                site_id: site,
                name,
                source: "manual".into(),
                vendor: Some(vendor),
                model: Some(model),
                firmware: Some(firmware),
                serial,
                ..Default::default()
            };
            let a = engine.add_appliance(op, &req).await?;
            emit(
                f,
                &["id", "name", "identified"],
                vec![vec![a.device_id.to_string(), a.hostname.clone(), a.identity.identified.to_string()]],
                serde_json::to_value(&a)?,
            );
        }
        ApplianceCmd::Import { organization_id, csv } => {
            let text = std::fs::read_to_string(&csv)
                .map_err(|e| InvalidArgument(format!("cannot read {}: {e}", csv.display())))?;
            let made = engine.import_appliances(op, &ImportAppliances { organization_id, csv: text }).await?;
            let rows = made.iter().map(|a| vec![a.device_id.to_string(), a.hostname.clone()]).collect();
            emit(f, &["id", "name"], rows, serde_json::to_value(&made)?);
        }
        ApplianceCmd::Confirm { appliance, firmware } => {
            let a =
                engine.confirm_appliance(op, &appliance, &ConfirmAppliance { firmware, model: None }).await?;
            emit(
                f,
                &["id", "name", "firmware"],
                vec![vec![
                    a.device_id.to_string(),
                    a.hostname.clone(),
                    a.identity.firmware.clone().unwrap_or_default(),
                ]],
                serde_json::to_value(&a)?,
            );
        }
        ApplianceCmd::Firmware => {
            let groups = engine.firmware_fleet(op).await?;
            let rows = groups
                .iter()
                .map(|g| {
                    vec![
                        format!("{} {} {}", g.vendor, g.product, g.firmware),
                        g.clients.to_string(),
                        g.appliances.to_string(),
                        format!("{} ({} KEV)", g.cves.len(), g.kev_cves),
                    ]
                })
                .collect();
            emit(
                f,
                &["firmware", "clients", "appliances", "open CVEs"],
                rows,
                serde_json::to_value(&groups)?,
            );
        }
        ApplianceCmd::Tasks { all } => {
            let tasks = engine.appliance_tasks(op, !all).await?;
            let rows = tasks
                .iter()
                .map(|t| {
                    let d = &t.deployment;
                    vec![
                        d.id.clone(),
                        d.hostname.clone(),
                        d.updates
                            .iter()
                            .map(|u| format!("{} {} → {}", u.name, u.from_version, u.to_version))
                            .collect::<Vec<_>>()
                            .join(", "),
                        format!(
                            "{} – {}",
                            d.window_start.strftime("%Y-%m-%d %H:%M"),
                            d.window_end.strftime("%H:%M")
                        ),
                        d.status.clone(),
                        t.assignee.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            emit(
                f,
                &["task", "appliance", "upgrade", "window (UTC)", "status", "assignee"],
                rows,
                serde_json::to_value(&tasks)?,
            );
        }
        ApplianceCmd::Done { task, note } => {
            let t = engine.task_done(op, &task, &TaskDone { note }).await?;
            emit(
                f,
                &["task", "appliance", "status"],
                vec![vec![
                    t.deployment.id.clone(),
                    t.deployment.hostname.clone(),
                    t.deployment.status.clone(),
                ]],
                serde_json::to_value(&t)?,
            );
        }
    }
    Ok(())
}
