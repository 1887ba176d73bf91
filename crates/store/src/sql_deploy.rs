// Deployments, agent jobs and package holds: the SQL shared by both backends (included
// into `sqlite.rs` and `postgres.rs`).

use crate::deploy::*;

const DEPLOYMENT_COLS: &str = "x.id, x.organization_id, x.device_id, d.hostname, x.kind, x.status, x.ring, \
     x.updates, x.window_start, x.window_end, x.reboot_required, x.previous_id, x.detail, x.log, x.boot_id, \
     x.created_at, x.updated_at, x.started_at, x.installed_at, x.finished_at";
/// The same without the agent's log, for lists.
const DEPLOYMENT_LIST_COLS: &str = "x.id, x.organization_id, x.device_id, d.hostname, x.kind, x.status, x.ring, \
     x.updates, x.window_start, x.window_end, x.reboot_required, x.previous_id, x.detail, '' AS log, x.boot_id, \
     x.created_at, x.updated_at, x.started_at, x.installed_at, x.finished_at";

fn deployment_row(r: &DbRow) -> Result<DeploymentRecord> {
    let updates: String = r.try_get("updates")?;
    Ok(DeploymentRecord {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
        hostname: r.try_get("hostname")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        ring: u8::try_from(r.try_get::<i64, _>("ring")?).unwrap_or(u8::MAX),
        updates: serde_json::from_str(&updates)
            .map_err(|e| StoreError::Open(format!("a stored deployment's updates do not read: {e}")))?,
        window_start: ts(r.try_get("window_start")?),
        window_end: ts(r.try_get("window_end")?),
        reboot_required: r.try_get("reboot_required")?,
        previous_id: r.try_get("previous_id")?,
        detail: r.try_get("detail")?,
        log: r.try_get("log")?,
        boot_id: r.try_get("boot_id")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
        started_at: opt_ts(r.try_get("started_at")?),
        installed_at: opt_ts(r.try_get("installed_at")?),
        finished_at: opt_ts(r.try_get("finished_at")?),
    })
}

const HOLD_COLS: &str = "h.id, h.organization_id, h.device_id, d.hostname, h.manager, h.name, h.product, \
     h.held_version, h.blocked_version, h.deployment_id, h.reason, h.created_at, h.cleared_at, h.cleared_by";

fn hold_row(r: &DbRow) -> Result<HoldRecord> {
    Ok(HoldRecord {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
        hostname: r.try_get("hostname")?,
        manager: r.try_get("manager")?,
        name: r.try_get("name")?,
        product: r.try_get("product")?,
        held_version: r.try_get("held_version")?,
        blocked_version: r.try_get("blocked_version")?,
        deployment_id: r.try_get("deployment_id")?,
        reason: r.try_get("reason")?,
        created_at: ts(r.try_get("created_at")?),
        cleared_at: opt_ts(r.try_get("cleared_at")?),
        cleared_by: r.try_get("cleared_by")?,
    })
}

/// One event of a batch appended by `append_many`.
struct OwnedAppend {
    action: String,
    object_kind: &'static str,
    object_id: String,
    organization_id: Option<String>,
    payload: serde_json::Value,
}

/// Appends many events to one chain, all at the audit's time and actor (see `append_timed`).
async fn append_many(tx: &mut Tx<'_>, audit: &Audit, chain: &PartnerId, events: Vec<OwnedAppend>) -> Result<()> {
    let at = us(audit.at);
    let timed: Vec<(i64, &str, OwnedAppend)> = events.into_iter().map(|e| (at, audit.actor.as_str(), e)).collect();
    append_timed(tx, chain, timed).await
}

/// Appends many events to one chain, each with its own time and actor: the head is moved
/// once by their number, the hashes are computed in order, and the rows go in as one JSON
/// parameter per thousand events. The same chain as `append` would make one by one.
async fn append_timed(tx: &mut Tx<'_>, chain: &PartnerId, events: Vec<(i64, &str, OwnedAppend)>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let chain = chain.as_str();
    let head: Option<(i64, String)> =
        sqlx::query_as("UPDATE chain_heads SET seq = seq + $2 WHERE chain = $1 RETURNING seq, head_hash")
            .bind(chain)
            .bind(n)
            .fetch_optional(&mut **tx)
            .await?;
    let (mut seq, mut prev) = match head {
        Some((last, hash)) => (last - n, hash),
        None => {
            sqlx::query("INSERT INTO chain_heads (chain, seq, head_hash) VALUES ($1, $2, $3)")
                .bind(chain)
                .bind(n)
                .bind(GENESIS_HASH)
                .execute(&mut **tx)
                .await?;
            (0, GENESIS_HASH.to_owned())
        }
    };
    let mut rows = Vec::with_capacity(events.len());
    for (at, actor, e) in &events {
        seq += 1;
        let payload = e.payload.to_string();
        let content = EventContent {
            chain,
            seq,
            at_micros: *at,
            actor,
            action: &e.action,
            object_kind: e.object_kind,
            object_id: &e.object_id,
            organization_id: e.organization_id.as_deref(),
            payload: &payload,
        };
        let hash = event_hash(&prev, &content);
        rows.push(serde_json::json!([
            seq.to_string(),
            e.action,
            e.object_kind,
            e.object_id,
            e.organization_id,
            payload,
            prev,
            hash,
            at.to_string(),
            actor
        ]));
        prev = hash;
    }
    for chunk in rows.chunks(1_000) {
        sqlx::query(concat!(
            "INSERT INTO evidence_events (chain, seq, at, actor, action, object_kind, object_id, \
             organization_id, payload, prev_hash, hash) SELECT $1, CAST(e.value ->> 0 AS BIGINT), \
             CAST(e.value ->> 8 AS BIGINT), e.value ->> 9, \
             e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4, e.value ->> 5, e.value ->> 6, \
             e.value ->> 7 FROM ",
            json_rows!(2),
            " AS e WHERE true"
        ))
        .bind(chain)
        .bind(serde_json::Value::Array(chunk.to_vec()).to_string())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE chain_heads SET head_hash = $2 WHERE chain = $1")
        .bind(chain)
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `deployment.scheduled` and the other moves record the deployment as it is after them,
/// without its log (the log is the agent's; its summary is in `evidence`).
fn deployment_evidence(rec: &DeploymentRecord, extra: &serde_json::Value) -> serde_json::Value {
    let mut after = serde_json::to_value(rec).unwrap_or_default();
    if let Some(o) = after.as_object_mut() {
        o.remove("log");
    }
    let mut v = json!({ "after": after });
    if !extra.is_null() {
        v["report"] = extra.clone();
    }
    v
}

#[async_trait::async_trait]
impl DeploymentStore for This {
    async fn create_deployments(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        new: &[NewDeployment],
    ) -> Result<Vec<String>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let at = us(audit.at);
        let mut created = Vec::with_capacity(new.len());
        for chunk in new.chunks(2_000) {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .map(|d| {
                    json!({
                        "id": d.id, "org": d.organization_id.as_str(), "device": d.device_id.as_str(),
                        "kind": d.kind, "ring": i64::from(d.ring),
                        "updates": serde_json::to_string(&d.updates).unwrap_or_default(),
                        "ws": us(d.window_start), "we": us(d.window_end), "reboot": d.reboot_required,
                        "previous": d.previous_id, "detail": d.detail,
                    })
                })
                .collect();
            // The device must be the partner's: a row of another tenant is never joined.
            let ids: Vec<String> = sqlx::query_scalar(concat!(
                "INSERT INTO deployments (id, partner_id, organization_id, device_id, kind, status, ring, updates, \
                 window_start, window_end, reboot_required, previous_id, detail, log, created_at, updated_at) \
                 SELECT e.value ->> 'id', $1, dv.organization_id, dv.id, e.value ->> 'kind', 'scheduled', \
                 CAST(e.value ->> 'ring' AS BIGINT), e.value ->> 'updates', CAST(e.value ->> 'ws' AS BIGINT), \
                 CAST(e.value ->> 'we' AS BIGINT), CAST(e.value ->> 'reboot' AS BOOLEAN), e.value ->> 'previous', \
                 e.value ->> 'detail', '', $2, $2 FROM ",
                json_rows!(3),
                // CROSS JOIN keeps the rows outermost on SQLite (its planner would otherwise walk
                // every device for each row); PostgreSQL plans it as the join it is.
                " AS e CROSS JOIN devices dv WHERE dv.id = e.value ->> 'device' AND dv.partner_id = $1 \
                 AND dv.organization_id = e.value ->> 'org' ON CONFLICT DO NOTHING RETURNING id"
            ))
            .bind(partner.as_str())
            .bind(at)
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(&mut *tx)
            .await?;
            let made: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
            let chosen: Vec<&NewDeployment> = chunk.iter().filter(|d| made.contains(d.id.as_str())).collect();
            let jobs: Vec<serde_json::Value> = chosen
                .iter()
                .filter_map(|d| d.job.as_ref().map(|j| (d, j)))
                .map(|(d, job)| {
                    json!({
                        "id": job.id, "org": d.organization_id.as_str(), "device": d.device_id.as_str(),
                        "deployment": d.id, "key": job.idempotency_key, "kind": job.kind,
                        "payload": job.payload, "signature": job.signature,
                        "ws": us(d.window_start), "we": us(d.window_end),
                    })
                })
                .collect();
            if !jobs.is_empty() {
                sqlx::query(concat!(
                    "INSERT INTO agent_jobs (id, partner_id, organization_id, device_id, deployment_id, \
                     idempotency_key, kind, payload, signature, state, window_start, window_end, deliveries, \
                     created_at) SELECT e.value ->> 'id', $1, e.value ->> 'org', e.value ->> 'device', \
                     e.value ->> 'deployment', e.value ->> 'key', e.value ->> 'kind', e.value ->> 'payload', \
                     e.value ->> 'signature', 'queued', CAST(e.value ->> 'ws' AS BIGINT), \
                     CAST(e.value ->> 'we' AS BIGINT), 0, $2 FROM ",
                    json_rows!(3),
                    " AS e WHERE true"
                ))
                .bind(partner.as_str())
                .bind(at)
                .bind(serde_json::Value::Array(jobs).to_string())
                .execute(&mut *tx)
                .await?;
            }
            for d in chosen.iter().filter(|d| d.job.is_none()) {
                sqlx::query(
                    "INSERT INTO appliance_tasks (deployment_id, partner_id, organization_id, device_id) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&d.id)
                .bind(partner.as_str())
                .bind(d.organization_id.as_str())
                .bind(d.device_id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            let events = chosen
                .iter()
                .map(|d| OwnedAppend {
                    action: d.action.clone(),
                    object_kind: "deployment",
                    object_id: d.id.clone(),
                    organization_id: Some(d.organization_id.to_string()),
                    payload: json!({ "after": {
                        "id": d.id, "device_id": d.device_id.as_str(), "kind": d.kind, "status": "scheduled",
                        "ring": d.ring, "updates": d.updates, "window_start": d.window_start,
                        "window_end": d.window_end, "reboot_required": d.reboot_required,
                        "previous_id": d.previous_id, "detail": d.detail,
                        "job_id": d.job.as_ref().map(|j| &j.id),
                    }}),
                })
                .collect();
            append_many(&mut tx, audit, partner, events).await?;
            created.extend(chosen.iter().map(|d| d.id.clone()));
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn list_deployments(&self, scope: &Scope, q: &DeploymentQuery) -> Result<Vec<DeploymentRecord>> {
        let statuses = serde_json::to_string(&q.statuses).unwrap_or_else(|_| "[]".into());
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.sort.as_str() {
            "changed" => format!("x.updated_at {dir}"),
            "device" => format!("d.hostname {dir}"),
            "client" => format!("o.name {dir}"),
            "kind" => format!("x.kind {dir}"),
            "ring" => format!("x.ring {dir}"),
            "window" => format!("x.window_start {dir}"),
            "status" => format!("x.status {dir}"),
            _ => "x.created_at DESC".to_owned(),
        };
        // With a product, the limit is applied after the exact check below.
        let page = match (q.limit > 0 && q.product.is_none(), q.offset > 0 && q.product.is_none()) {
            (true, true) => format!(" LIMIT {} OFFSET {}", q.limit, q.offset),
            (true, false) => format!(" LIMIT {}", q.limit),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM deployments x JOIN devices d ON d.id = x.device_id \
             JOIN organizations o ON o.id = x.organization_id \
             WHERE x.partner_id = $1 AND ($2 IS NULL OR x.organization_id = $2) \
             AND ($3 IS NULL OR x.organization_id = $3) AND ($4 IS NULL OR x.device_id = $4) \
             AND ($5 = '[]' OR x.status IN (SELECT value FROM {})) AND ($6 IS NULL OR x.kind = $6) \
             AND ($7 IS NULL OR x.updates LIKE $7) AND ($8 IS NULL OR x.created_at >= $8) \
             AND ($9 IS NULL OR x.updated_at >= $9) ORDER BY {order}, x.id DESC{page}",
            if q.with_log { DEPLOYMENT_COLS } else { DEPLOYMENT_LIST_COLS },
            json_texts!(5),
        );
        // A coarse text filter first; the exact product and version are checked below.
        // `%` and `_` in a name only widen the match; the exact product is checked below.
        let like = q.product.as_ref().map(|(p, _)| format!("%{p}%"));
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(q.organization_id.as_ref().map(OrganizationId::as_str))
            .bind(q.device_id.as_ref().map(DeviceId::as_str))
            .bind(&statuses)
            .bind(q.kind.as_deref())
            .bind(like)
            .bind(q.since.map(us))
            .bind(q.changed_since.map(us))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let rec = deployment_row(r)?;
            if let Some((p, v)) = &q.product
                && !rec.updates.iter().any(|u| &u.product == p && &u.version == v)
            {
                continue;
            }
            out.push(rec);
            if q.limit > 0 && out.len() as i64 >= q.limit {
                break;
            }
        }
        Ok(out)
    }

    async fn deployment_status_counts(&self, scope: &Scope, q: &DeploymentQuery) -> Result<Vec<(String, i64)>> {
        let like = q.product.as_ref().map(|(p, _)| format!("%{p}%"));
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT x.status, COUNT(*) FROM deployments x \
             WHERE x.partner_id = $1 AND ($2 IS NULL OR x.organization_id = $2) \
             AND ($3 IS NULL OR x.organization_id = $3) AND ($4 IS NULL OR x.device_id = $4) \
             AND ($5 IS NULL OR x.kind = $5) AND ($6 IS NULL OR x.updates LIKE $6) \
             AND ($7 IS NULL OR x.created_at >= $7) AND ($8 IS NULL OR x.updated_at >= $8) \
             GROUP BY x.status",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(q.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(q.device_id.as_ref().map(DeviceId::as_str))
        .bind(q.kind.as_deref())
        .bind(like)
        .bind(q.since.map(us))
        .bind(q.changed_since.map(us))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn get_deployment(&self, scope: &Scope, id: &str) -> Result<DeploymentRecord> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLS} FROM deployments x JOIN devices d ON d.id = x.device_id \
             WHERE x.partner_id = $1 AND ($2 IS NULL OR x.organization_id = $2) AND x.id = $3"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("deployment"))?;
        deployment_row(&row)
    }

    async fn transition_deployment(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
        from: &[&str],
        change: &DeploymentChange,
    ) -> Result<Option<DeploymentRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let at = us(audit.at);
        let (started, installed, finished) = match change.status.as_str() {
            "running" | "rebooting" => (Some(at), None, None),
            "installed" => (None, Some(at), None),
            s if !ACTIVE_STATUSES.contains(&s) => (None, None, Some(at)),
            _ => (None, None, None),
        };
        let from = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
        let updated: Option<String> = sqlx::query_scalar(safe(format!(
            "UPDATE deployments SET status = $4, detail = COALESCE($5, detail), log = COALESCE($6, log), \
             boot_id = COALESCE($7, boot_id), updated_at = $8, started_at = COALESCE(started_at, $9), \
             installed_at = COALESCE($10, installed_at), finished_at = COALESCE($11, finished_at) \
             WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) AND id = $3 \
             AND status IN (SELECT value FROM {}) RETURNING id",
            json_texts!(12)
        )))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .bind(&change.status)
        .bind(change.detail.as_deref())
        .bind(change.log.as_deref())
        .bind(change.boot_id.as_deref())
        .bind(at)
        .bind(started)
        .bind(installed)
        .bind(finished)
        .bind(&from)
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            // Not in a state the move starts from: either not in scope, or moved already.
            return Ok(None);
        }
        if !ACTIVE_STATUSES.contains(&change.status.as_str()) {
            sqlx::query(
                "UPDATE agent_jobs SET state = 'done', outcome = COALESCE(outcome, 'closed'), finished_at = $2 \
                 WHERE deployment_id = $1 AND state <> 'done'",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        let sql = format!(
            "SELECT {DEPLOYMENT_COLS} FROM deployments x JOIN devices d ON d.id = x.device_id WHERE x.id = $1"
        );
        let rec = deployment_row(&sqlx::query(safe(sql)).bind(id).fetch_one(&mut *tx).await?)?;
        // The agent's start is `running`; the auditor's word for the move is "started".
        let action = match change.status.as_str() {
            "running" => "deployment.started".to_string(),
            s => format!("deployment.{s}"),
        };
        let a = Append {
            chain: &scope.partner_id,
            action: &action,
            object_kind: "deployment",
            object_id: id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: deployment_evidence(&rec, &change.evidence),
        };
        append(&mut tx, audit, a).await?;
        if let Some(task) = &change.task {
            let (action, payload) = match task {
                TaskNote::Done { note } => {
                    sqlx::query(
                        "UPDATE appliance_tasks SET done_at = $2, done_by = $3, note = $4 WHERE deployment_id = $1",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(&audit.actor)
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                    ("appliance.task_done", json!({ "deployment_id": id, "device_id": rec.device_id.as_str(), "note": note, "updates": rec.updates }))
                }
                TaskNote::Reopened { seen } => {
                    sqlx::query(
                        "UPDATE appliance_tasks SET done_at = NULL, done_by = NULL, reopened = reopened + 1 \
                         WHERE deployment_id = $1",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    ("appliance.task_reopened", json!({ "deployment_id": id, "device_id": rec.device_id.as_str(), "firmware_seen": seen, "updates": rec.updates }))
                }
            };
            let a = Append {
                chain: &scope.partner_id,
                action,
                object_kind: "appliance",
                object_id: rec.device_id.as_str(),
                organization_id: Some(rec.organization_id.as_str()),
                payload,
            };
            append(&mut tx, audit, a).await?;
        }
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn lease_jobs(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        device: &DeviceId,
        lease_until: Timestamp,
    ) -> Result<Vec<LeasedJob>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let now = us(audit.at);
        let lock = if BACKEND == "postgres" { " FOR UPDATE SKIP LOCKED" } else { "" };
        let due: Vec<(String, Option<String>, String, String)> = sqlx::query_as(safe(format!(
            "SELECT id, deployment_id, payload, signature FROM agent_jobs \
             WHERE partner_id = $1 AND device_id = $2 AND window_end > $3 AND window_start <= $3 \
             AND (state = 'queued' OR (state = 'leased' AND leased_until <= $3)) \
             ORDER BY window_start, created_at LIMIT 20{lock}"
        )))
        .bind(partner.as_str())
        .bind(device.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        for (id, deployment, ..) in &due {
            sqlx::query(
                "UPDATE agent_jobs SET state = 'leased', leased_until = $2, deliveries = deliveries + 1 WHERE id = $1",
            )
            .bind(id)
            .bind(us(lease_until))
            .execute(&mut *tx)
            .await?;
            if let Some(dep) = deployment {
                let org: Option<String> = sqlx::query_scalar(
                    "UPDATE deployments SET status = 'dispatched', updated_at = $2 \
                     WHERE id = $1 AND status = 'scheduled' RETURNING organization_id",
                )
                .bind(dep)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(org) = org {
                    events.push(OwnedAppend {
                        action: "deployment.dispatched".into(),
                        object_kind: "deployment",
                        object_id: dep.clone(),
                        organization_id: Some(org),
                        payload: json!({ "after": { "id": dep, "status": "dispatched", "job_id": id,
                            "device_id": device.as_str(), "lease_until": lease_until } }),
                    });
                }
            }
        }
        append_many(&mut tx, audit, partner, events).await?;
        tx.commit().await?;
        Ok(due
            .into_iter()
            .map(|(id, deployment_id, payload, signature)| LeasedJob { id, deployment_id, payload, signature })
            .collect())
    }

    async fn get_job(&self, partner: &PartnerId, device: &DeviceId, id: &str) -> Result<Option<JobRecord>> {
        let row: Option<(String, Option<String>, String, String, String, Option<String>, i64, i64)> =
            sqlx::query_as(
                "SELECT id, deployment_id, idempotency_key, kind, state, outcome, deliveries, window_end \
                 FROM agent_jobs WHERE partner_id = $1 AND device_id = $2 AND id = $3",
            )
            .bind(partner.as_str())
            .bind(device.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id, deployment_id, idempotency_key, kind, state, outcome, deliveries, window_end)| {
            JobRecord {
                id,
                device_id: device.clone(),
                deployment_id,
                idempotency_key,
                kind,
                state,
                outcome,
                deliveries,
                window_end: ts(window_end),
            }
        }))
    }

    async fn finish_job(&self, partner: &PartnerId, id: &str, outcome: &str, at: Timestamp) -> Result<bool> {
        let _w = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE agent_jobs SET state = 'done', outcome = $3, finished_at = $4 \
             WHERE partner_id = $1 AND id = $2 AND (state <> 'done' OR outcome = 'closed')",
        )
        .bind(partner.as_str())
        .bind(id)
        .bind(outcome)
        .bind(us(at))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_holds(&self, audit: &Audit, scope: &Scope, holds: &[NewHold]) -> Result<Vec<HoldRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        for h in holds {
            let device = tx_get_device(&mut *tx, scope, h.device_id.as_str()).await?;
            // One live hold per package and device: a newer rollback replaces the older hold.
            sqlx::query(
                "UPDATE package_holds SET cleared_at = $4, cleared_by = $5 \
                 WHERE partner_id = $1 AND device_id = $2 AND name = $3 AND cleared_at IS NULL",
            )
            .bind(scope.partner_id.as_str())
            .bind(h.device_id.as_str())
            .bind(&h.name)
            .bind(us(audit.at))
            .bind(&audit.actor)
            .execute(&mut *tx)
            .await?;
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::query(
                "INSERT INTO package_holds (id, partner_id, organization_id, device_id, manager, name, product, \
                 held_version, blocked_version, deployment_id, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&id)
            .bind(scope.partner_id.as_str())
            .bind(device.organization_id.as_str())
            .bind(h.device_id.as_str())
            .bind(&h.manager)
            .bind(&h.name)
            .bind(&h.product)
            .bind(&h.held_version)
            .bind(&h.blocked_version)
            .bind(h.deployment_id.as_deref())
            .bind(&h.reason)
            .bind(us(audit.at))
            .execute(&mut *tx)
            .await?;
            let rec = HoldRecord {
                id: id.clone(),
                organization_id: device.organization_id.clone(),
                device_id: h.device_id.clone(),
                hostname: device.hostname.clone(),
                manager: h.manager.clone(),
                name: h.name.clone(),
                product: h.product.clone(),
                held_version: h.held_version.clone(),
                blocked_version: h.blocked_version.clone(),
                deployment_id: h.deployment_id.clone(),
                reason: h.reason.clone(),
                created_at: audit.at,
                cleared_at: None,
                cleared_by: None,
            };
            let a = Append {
                chain: &scope.partner_id,
                action: "hold.create",
                object_kind: "package_hold",
                object_id: &id,
                organization_id: Some(device.organization_id.as_str()),
                payload: json!({ "after": &rec }),
            };
            append(&mut tx, audit, a).await?;
            out.push(rec);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn list_holds(&self, scope: &Scope, all: bool) -> Result<Vec<HoldRecord>> {
        let sql = format!(
            "SELECT {HOLD_COLS} FROM package_holds h JOIN devices d ON d.id = h.device_id \
             WHERE h.partner_id = $1 AND ($2 IS NULL OR h.organization_id = $2) AND ($3 OR h.cleared_at IS NULL) \
             ORDER BY h.created_at DESC, h.id DESC"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(all)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(hold_row).collect()
    }

    async fn clear_hold(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<HoldRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE package_holds SET cleared_at = $4, cleared_by = $5 \
             WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) AND id = $3 AND cleared_at IS NULL",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .bind(us(audit.at))
        .bind(&audit.actor)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("hold"));
        }
        let sql = format!("SELECT {HOLD_COLS} FROM package_holds h JOIN devices d ON d.id = h.device_id WHERE h.id = $1");
        let rec = hold_row(&sqlx::query(safe(sql)).bind(id).fetch_one(&mut *tx).await?)?;
        let a = Append {
            chain: &scope.partner_id,
            action: "hold.clear",
            object_kind: "package_hold",
            object_id: id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn attribute_findings(
        &self,
        scope: &Scope,
        device: &DeviceId,
        deployment: &str,
        products: &[String],
        since: Timestamp,
    ) -> Result<u64> {
        let _w = self.write_guard().await;
        let r = sqlx::query(safe(format!(
            "UPDATE findings SET resolved_by_deployment = $3 \
             WHERE partner_id = $1 AND device_id = $2 AND resolution = 'updated' AND resolved_at >= $4 \
             AND resolved_by_deployment IS NULL AND product IN (SELECT value FROM {})",
            json_texts!(5)
        )))
        .bind(scope.partner_id.as_str())
        .bind(device.as_str())
        .bind(deployment)
        .bind(us(since))
        .bind(serde_json::to_string(products).unwrap_or_else(|_| "[]".into()))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
