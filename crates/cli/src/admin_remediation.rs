//! `ringfence admin policy|queue|decide|approvals|rules|exception|schedule`: policies, the
//! remediation queue, decisions and the schedule preview from the command line, through the
//! same engine use cases as the API (validation, tie checks, evidence events).

use crate::InvalidArgument;
use crate::output::{self, Format};
use clap::Subcommand;
use ringfence_engine::Engine;
use ringfence_model::Principal;
use ringfence_proto as proto;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Every policy of the partner, farthest level first.
    List,
    /// A device's effective policy with the provenance of every field.
    Effective {
        device_id: String,
    },
    /// Creates a policy; refused when it would tie with another of the same level.
    Create {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Replaces a policy's name, priority, settings and locks.
    Update {
        id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    Delete {
        id: String,
    },
    /// Which devices a new or changed policy (or, with only --id, a deletion) would alter, and
    /// how, without saving anything.
    Preview {
        /// The policy being changed or deleted.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        policy: Option<PolicyArgs>,
    },
}

#[derive(clap::Args, Clone)]
pub struct PolicyArgs {
    #[arg(long)]
    name: String,
    /// partner, organization, site, group or device.
    #[arg(long)]
    level: String,
    /// The id of the organization, site, group or device (not for the partner level).
    #[arg(long)]
    target: Option<String>,
    /// Orders policies of one level that set the same field (higher wins).
    #[arg(long, default_value_t = 0)]
    priority: i64,
    /// The settings as a JSON object, e.g. '{"ring": 2, "reboot": "scheduled"}'.
    #[arg(long, default_value = "{}")]
    settings: String,
    /// Fields nearer levels may not override (comma-separated).
    #[arg(long, value_delimiter = ',')]
    lock: Vec<String>,
}

impl PolicyArgs {
    fn input(&self) -> anyhow::Result<proto::PolicyInput> {
        let settings = match serde_json::from_str::<serde_json::Value>(&self.settings) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                return Err(
                    InvalidArgument("--settings must be a JSON object, e.g. '{\"ring\": 2}'".into()).into()
                );
            }
            Err(e) => {
                return Err(InvalidArgument(format!(
                    "--settings is not JSON ({e}): give an object such as '{{\"ring\": 2}}'"
                ))
                .into());
            }
        };
        Ok(proto::PolicyInput {
            name: self.name.clone(),
            level: self.level.clone(),
            target_id: self.target.clone(),
            priority: self.priority,
            settings,
            locked: self.lock.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        })
    }
}

#[derive(clap::Args)]
pub struct QueueArgs {
    /// Only this organization's part of the queue.
    #[arg(long = "organization")]
    organization_id: Option<String>,
    /// Only updates that fix a CVE in CISA KEV.
    #[arg(long)]
    kev: bool,
    /// approved, rejected, deferred, needs_review, waiting, auto_approve, excepted, mitigated,
    /// risk_accepted, no_fix, awaiting_second or mixed.
    #[arg(long)]
    status: Option<String>,
    /// Part of a product name or a CVE id.
    #[arg(long)]
    search: Option<String>,
    /// risk (default), devices, cves or product.
    #[arg(long)]
    sort: Option<String>,
    /// Entries to print.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(clap::Args)]
pub struct DecideArgs {
    /// approve, reject or defer.
    decision: String,
    /// The updates, as PRODUCT=VERSION (repeatable).
    #[arg(long = "update", required = true, value_name = "PRODUCT=VERSION")]
    updates: Vec<String>,
    /// Why; recorded in the evidence chain.
    #[arg(long)]
    reason: String,
    /// Decide for one organization; default: for every organization of the partner.
    #[arg(long = "organization")]
    organization_id: Option<String>,
    /// For defer: until when (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    defer_until: Option<String>,
    /// An emergency override: skips ring validation periods, never blackouts.
    #[arg(long)]
    emergency: bool,
}

#[derive(Subcommand)]
pub enum RulesCmd {
    /// Applies the approval rules of the partner's policies to the queue now.
    Run,
}

#[derive(Subcommand)]
pub enum ExceptionCmd {
    /// Every exception with its owner and expiry.
    List,
    /// Pins or excludes software for one organization until an expiry.
    Create {
        #[arg(long = "organization")]
        organization_id: String,
        /// pin (keep the software inside the range) or exclude (no updates while inside it).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        software: String,
        /// `*`, `4.8.x`, or constraints such as '>=4.8, <4.9'.
        #[arg(long, default_value = "*")]
        version_range: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        reason: String,
        /// YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        expires: String,
    },
    Revoke {
        id: String,
    },
}

pub(crate) fn emit(f: Format, headers: &[&str], rows: Vec<Vec<String>>, value: serde_json::Value) {
    match f {
        Format::Json => output::json(&value),
        Format::Table => output::table(headers, rows),
    }
}

fn update_ref(s: &str) -> anyhow::Result<proto::UpdateRef> {
    match s.split_once('=') {
        Some((p, v)) if !p.trim().is_empty() && !v.trim().is_empty() => {
            Ok(proto::UpdateRef { product: p.trim().into(), version: v.trim().into() })
        }
        _ => Err(InvalidArgument(format!(
            "--update '{s}' is not PRODUCT=VERSION: give the product and the version that fixes it, e.g. openssl=3.0.15-1~deb12u1"
        ))
        .into()),
    }
}

pub async fn policy(engine: &Engine, op: &Principal, f: Format, cmd: PolicyCmd) -> anyhow::Result<()> {
    let row = |p: &ringfence_store::PolicyRecord| {
        let settings = serde_json::to_string(&p.settings).unwrap_or_default();
        vec![
            p.id.clone(),
            p.name.clone(),
            if p.target_id.is_empty() { p.level.clone() } else { format!("{} {}", p.level, p.target_id) },
            p.priority.to_string(),
            settings.chars().take(80).collect(),
            p.locked.join(","),
        ]
    };
    let headers = ["id", "name", "attached to", "priority", "settings", "locked"];
    match cmd {
        PolicyCmd::List => {
            let list = engine.policies(op).await?;
            emit(f, &headers, list.iter().map(row).collect(), serde_json::to_value(&list)?);
        }
        PolicyCmd::Effective { device_id } => {
            let e = engine.effective_policy(op, &device_id).await?;
            if let (Format::Table, Some(err)) = (f, &e.error) {
                println!("{}: {err}", e.hostname);
            }
            let rows = e
                .fields
                .iter()
                .map(|x| vec![x.field.clone(), x.value.to_string(), x.provenance.clone()])
                .collect();
            emit(f, &["field", "value", "provenance"], rows, serde_json::to_value(&e)?);
        }
        PolicyCmd::Create { policy } => {
            let p = engine.create_policy(op, &policy.input()?).await?;
            emit(f, &headers, vec![row(&p)], serde_json::to_value(&p)?);
        }
        PolicyCmd::Update { id, policy } => {
            let p = engine.update_policy(op, &id, &policy.input()?).await?;
            emit(f, &headers, vec![row(&p)], serde_json::to_value(&p)?);
        }
        PolicyCmd::Delete { id } => {
            engine.delete_policy(op, &id).await?;
            println!("deleted policy {id}");
        }
        PolicyCmd::Preview { id, policy } => {
            let req = proto::PolicyPreviewRequest { id, policy: policy.map(|p| p.input()).transpose()? };
            let preview = engine.preview_policy(op, &req).await?;
            if f == Format::Table {
                println!(
                    "{} of {} devices would change{}",
                    preview.devices.len(),
                    preview.devices_considered,
                    if preview.ties.is_empty() {
                        String::new()
                    } else {
                        format!("; cannot be saved: {}", preview.ties.join("; "))
                    }
                );
            }
            let rows = preview
                .devices
                .iter()
                .flat_map(|d| {
                    d.changes.iter().map(move |c| {
                        let v = serde_json::to_value(c).unwrap_or_default();
                        let show = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_else(|| "-".into());
                        vec![d.hostname.clone(), show("field"), show("before"), show("after")]
                    })
                })
                .collect();
            emit(f, &["device", "field", "before", "after"], rows, serde_json::to_value(&preview)?);
        }
    }
    Ok(())
}

pub async fn queue(engine: &Engine, op: &Principal, f: Format, args: QueueArgs) -> anyhow::Result<()> {
    let q = proto::QueueQuery {
        organization_id: args.organization_id,
        kev: args.kev.then_some(true),
        status: args.status,
        search: args.search,
        sort: args.sort,
    };
    let mut items = engine.remediation_queue(op, &q).await?;
    items.truncate(args.limit);
    let rows = items
        .iter()
        .map(|i| {
            vec![
                format!("{}={}", i.product, i.version.as_deref().unwrap_or("-")),
                format!("{:.1}", i.risk_removed),
                i.ssvc.clone(),
                i.classification.clone(),
                i.summary.clone(),
                format!("{}: {}", i.status, i.detail),
            ]
        })
        .collect();
    emit(f, &["update", "risk", "ssvc", "class", "summary", "status"], rows, serde_json::to_value(&items)?);
    Ok(())
}

fn approval_rows(list: &[ringfence_store::ApprovalRecord]) -> Vec<Vec<String>> {
    list.iter()
        .map(|a| {
            vec![
                a.id.clone(),
                format!("{}={}", a.product, a.version),
                a.decision.clone(),
                a.organization_id.as_ref().map(|o| o.to_string()).unwrap_or_else(|| "partner-wide".into()),
                a.rule.clone().unwrap_or_else(|| a.decided_by.clone()),
                a.reason.clone(),
            ]
        })
        .collect()
}

const APPROVAL_HEADERS: [&str; 6] = ["id", "update", "decision", "scope", "by", "reason"];

pub async fn decide(engine: &Engine, op: &Principal, f: Format, args: DecideArgs) -> anyhow::Result<()> {
    let req = proto::DecisionRequest {
        updates: args.updates.iter().map(|u| update_ref(u)).collect::<anyhow::Result<_>>()?,
        decision: args.decision,
        reason: args.reason,
        organization_id: args.organization_id,
        defer_until: args.defer_until,
        emergency: args.emergency,
    };
    let made = engine.decide(op, &req).await?;
    emit(f, &APPROVAL_HEADERS, approval_rows(&made), serde_json::to_value(&made)?);
    Ok(())
}

pub async fn approvals(engine: &Engine, op: &Principal, f: Format, limit: i64) -> anyhow::Result<()> {
    let list = engine.approvals(op, limit).await?;
    emit(f, &APPROVAL_HEADERS, approval_rows(&list), serde_json::to_value(&list)?);
    Ok(())
}

pub async fn rules(engine: &Engine, op: &Principal, f: Format, cmd: RulesCmd) -> anyhow::Result<()> {
    match cmd {
        RulesCmd::Run => {
            let made = engine.run_approval_rules(op).await?;
            if f == Format::Table {
                println!("{} update(s) approved by rule", made.len());
            }
            emit(f, &APPROVAL_HEADERS, approval_rows(&made), serde_json::to_value(&made)?);
        }
    }
    Ok(())
}

pub async fn exception(engine: &Engine, op: &Principal, f: Format, cmd: ExceptionCmd) -> anyhow::Result<()> {
    let row = |e: &ringfence_store::ExceptionRecord| {
        let state = if e.revoked_at.is_some() {
            "revoked".to_string()
        } else if e.expires_at <= engine.now() {
            "expired".to_string()
        } else {
            format!("until {}", e.expires_at.strftime("%Y-%m-%d"))
        };
        vec![
            e.id.clone(),
            e.organization_id.to_string(),
            format!("{} {} {}", e.kind, e.software, e.version_range),
            e.owner.clone(),
            state,
            e.reason.clone(),
        ]
    };
    let headers = ["id", "organization", "exception", "owner", "state", "reason"];
    match cmd {
        ExceptionCmd::List => {
            let list = engine.exceptions(op).await?;
            emit(f, &headers, list.iter().map(row).collect(), serde_json::to_value(&list)?);
        }
        ExceptionCmd::Create { organization_id, kind, software, version_range, owner, reason, expires } => {
            let req = proto::CreateException {
                organization_id,
                kind,
                software,
                version_range,
                owner,
                reason,
                expires,
            };
            let e = engine.create_exception(op, &req).await?;
            emit(f, &headers, vec![row(&e)], serde_json::to_value(&e)?);
        }
        ExceptionCmd::Revoke { id } => {
            let e = engine.revoke_exception(op, &id).await?;
            emit(f, &headers, vec![row(&e)], serde_json::to_value(&e)?);
        }
    }
    Ok(())
}

pub async fn schedule(
    engine: &Engine,
    op: &Principal,
    f: Format,
    q: &proto::ScheduleQuery,
) -> anyhow::Result<()> {
    let preview = engine.schedule_preview(op, q).await?;
    let rows = preview
        .entries
        .iter()
        .map(|e| {
            vec![
                e.start.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into()),
                e.organization.clone(),
                e.hostname.clone(),
                e.ring.to_string(),
                format!("{}={}", e.product, e.version),
                if e.deployment_id.is_some() { "deployment".into() } else { "forecast".into() },
                e.status.clone(),
                e.reason.clone(),
            ]
        })
        .collect();
    emit(
        f,
        &["start (UTC)", "client", "device", "ring", "update", "source", "status", "why"],
        rows,
        serde_json::to_value(&preview)?,
    );
    Ok(())
}

/// `PRODUCT=VERSION` as its two parts.
pub fn split_update(s: &str) -> anyhow::Result<(String, String)> {
    let u = update_ref(s)?;
    Ok((u.product, u.version))
}

pub async fn rollouts(engine: &Engine, op: &Principal, f: Format) -> anyhow::Result<()> {
    let list = engine.rollouts(op).await?;
    let rows = list
        .iter()
        .map(|u| {
            let mut row = vec![format!("{}={}", u.product, u.version), u.status.clone()];
            row.extend(u.rings.iter().map(|r| {
                if r.gate == "not_started" {
                    "-".to_string()
                } else {
                    // The same counts, in the same words, as the dashboard's Rollouts page.
                    format!(
                        "{} ok {} failed {} running {} pending {} waiting ({})",
                        r.succeeded, r.failed, r.running, r.pending, r.waiting, r.gate
                    )
                }
            }));
            row.push(u.halt.clone().unwrap_or_default());
            row
        })
        .collect();
    emit(
        f,
        &["update", "status", "ring 0", "ring 1", "ring 2", "ring 3", "halt"],
        rows,
        serde_json::to_value(&list)?,
    );
    Ok(())
}

pub async fn deployments(
    engine: &Engine,
    op: &Principal,
    f: Format,
    q: &proto::DeploymentListQuery,
) -> anyhow::Result<()> {
    let list = engine.deployments(op, q).await?;
    let rows = list
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.hostname.clone(),
                d.kind.clone(),
                d.ring.to_string(),
                d.updates
                    .iter()
                    .map(|u| format!("{}={}", u.name, u.to_version))
                    .collect::<Vec<_>>()
                    .join(" "),
                d.window_start.strftime("%Y-%m-%d %H:%M").to_string(),
                d.status.clone(),
                d.detail.clone(),
            ]
        })
        .collect();
    emit(
        f,
        &["id", "device", "kind", "ring", "packages", "window (UTC)", "status", "detail"],
        rows,
        serde_json::to_value(&list)?,
    );
    Ok(())
}

pub async fn dispatch(engine: &Engine, op: &Principal, f: Format) -> anyhow::Result<()> {
    let s = engine.dispatch(op).await?;
    let rows = vec![vec![
        s.scheduled.to_string(),
        s.rescheduled.to_string(),
        s.missed.to_string(),
        s.timed_out.to_string(),
        s.planned_later.to_string(),
        s.halted.join("; "),
    ]];
    emit(
        f,
        &["scheduled", "rescheduled", "missed", "timed out", "planned later", "halted"],
        rows,
        serde_json::to_value(&s)?,
    );
    Ok(())
}

pub async fn rollback(
    engine: &Engine,
    op: &Principal,
    f: Format,
    req: &proto::RollbackRequest,
) -> anyhow::Result<()> {
    let s = engine.rollback(op, req).await?;
    let rows =
        vec![vec![s.scheduled.to_string(), s.skipped.join("; "), s.halt_id.clone().unwrap_or_default()]];
    emit(f, &["scheduled", "passed over", "halt"], rows, serde_json::to_value(&s)?);
    Ok(())
}

pub async fn holds(engine: &Engine, op: &Principal, f: Format, clear: Option<String>) -> anyhow::Result<()> {
    if let Some(id) = clear {
        let h = engine.clear_hold(op, &id).await?;
        emit(
            f,
            &["cleared", "device", "package", "held"],
            vec![vec![h.id.clone(), h.hostname.clone(), h.name.clone(), h.held_version.clone()]],
            serde_json::to_value(&h)?,
        );
        return Ok(());
    }
    let list = engine.holds(op).await?;
    let rows = list
        .iter()
        .map(|h| {
            vec![
                h.id.clone(),
                h.hostname.clone(),
                h.name.clone(),
                h.held_version.clone(),
                h.blocked_version.clone(),
                h.reason.clone(),
            ]
        })
        .collect();
    emit(f, &["id", "device", "package", "held at", "keeps off", "why"], rows, serde_json::to_value(&list)?);
    Ok(())
}

pub async fn retry(engine: &Engine, op: &Principal, f: Format, id: &str, reason: &str) -> anyhow::Result<()> {
    let d = engine.retry_deployment(op, id, reason).await?;
    emit(
        f,
        &["deployment", "device", "status", "detail"],
        vec![vec![d.id.clone(), d.hostname.clone(), d.status.clone(), d.detail.clone()]],
        serde_json::to_value(&d)?,
    );
    Ok(())
}

/// Lists the reports kept, or generates one (and writes it to `out` when given).
pub async fn report(
    engine: &Engine,
    op: &Principal,
    f: Format,
    req: Option<ringfence_proto::ReportRequest>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Some(req) = req else {
        let list = engine.reports(op, None).await?;
        let rows = list
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.organization.clone(),
                    format!(
                        "{} – {}",
                        r.period_start.strftime("%Y-%m-%d"),
                        r.period_end.strftime("%Y-%m-%d")
                    ),
                    r.generated_by.clone(),
                    if r.has_pdf { "html, csv, pdf".into() } else { "html, csv".into() },
                    r.delivery.clone(),
                ]
            })
            .collect();
        emit(
            f,
            &["id", "organization", "period", "by", "files", "delivery"],
            rows,
            serde_json::to_value(&list)?,
        );
        return Ok(());
    };
    let format = match out.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        None if out.is_none() => None,
        Some(e @ ("pdf" | "html" | "csv")) => Some(e.to_owned()),
        _ => {
            return Err(crate::InvalidArgument("--out: name a .pdf, .html or .csv file".into()).into());
        }
    };
    let r = engine.generate_report(op, &req).await?;
    if let (Some(path), Some(format)) = (out, format) {
        let stored = engine.report(op, &r.id).await?;
        let bytes = match format.as_str() {
            "html" => stored.html.into_bytes(),
            "csv" => stored.csv.into_bytes(),
            _ => stored.pdf.ok_or_else(|| {
                crate::InvalidArgument(format!(
                    "the report has no PDF ({}); ask for .html or .csv",
                    stored.delivery
                ))
            })?,
        };
        std::fs::write(path, bytes)
            .map_err(|e| crate::InvalidArgument(format!("cannot write {}: {e}", path.display())))?;
    }
    emit(
        f,
        &["report", "organization", "period", "delivery"],
        vec![vec![
            r.id.clone(),
            r.organization.clone(),
            format!("{} – {}", r.period_start.strftime("%Y-%m-%d"), r.period_end.strftime("%Y-%m-%d")),
            r.delivery.clone(),
        ]],
        serde_json::to_value(&r)?,
    );
    Ok(())
}

/// What is overdue and what is due within 7 days.
pub async fn sla(
    engine: &Engine,
    op: &Principal,
    f: Format,
    organization_id: Option<&str>,
) -> anyhow::Result<()> {
    let o = engine.sla_overview(op, organization_id).await?;
    let rows = o
        .breached
        .iter()
        .map(|i| ("overdue", i))
        .chain(o.due_soon.iter().map(|i| ("due soon", i)))
        .map(|(state, i)| {
            vec![
                state.to_owned(),
                i.organization.clone(),
                i.hostname.clone(),
                format!("{}{}", i.cve_id, if i.kev { " (KEV)" } else { "" }),
                i.severity.clone(),
                i.due.strftime("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    emit(
        f,
        &["state", "organization", "device", "cve", "severity", "due (UTC)"],
        rows,
        serde_json::to_value(&o)?,
    );
    Ok(())
}
