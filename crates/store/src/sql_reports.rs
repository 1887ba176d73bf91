// Evidence checkpoints, reports, report schedules and remediation-deadline alerts: the SQL
// shared by both backends (included into `sqlite.rs` and `postgres.rs`).

use crate::reports::*;

fn checkpoint_row(r: &DbRow) -> Result<ringfence_evidence::Checkpoint> {
    Ok(ringfence_evidence::Checkpoint {
        chain: r.try_get("chain")?,
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        at_micros: r.try_get("at")?,
        key_id: r.try_get("key_id")?,
        signature: r.try_get("signature")?,
    })
}

const SCHEDULE_COLS: &str =
    "id, partner_id, organization_id, cadence, recipients, next_run, last_run, last_status, created_by, created_at";

fn schedule_row(r: &DbRow) -> Result<ReportSchedule> {
    let recipients: String = r.try_get("recipients")?;
    Ok(ReportSchedule {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        cadence: r.try_get("cadence")?,
        recipients: serde_json::from_str(&recipients)
            .map_err(|e| StoreError::Open(format!("a stored report schedule's recipients do not read: {e}")))?,
        next_run: ts(r.try_get("next_run")?),
        last_run: opt_ts(r.try_get("last_run")?),
        last_status: r.try_get("last_status")?,
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

const EVENT_COLS: &str =
    "chain, seq, at, actor, action, object_kind, object_id, organization_id, payload, prev_hash, hash";

#[async_trait::async_trait]
impl ReportStore for This {
    async fn import_events(&self, chain: &PartnerId, events: &[TimedEvent]) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let timed = events
            .iter()
            .map(|e| {
                let owned = OwnedAppend {
                    action: e.action.clone(),
                    object_kind: e.object_kind,
                    object_id: e.object_id.clone(),
                    organization_id: e.organization_id.as_ref().map(|o| o.to_string()),
                    payload: e.payload.clone(),
                };
                (us(e.at), e.actor.as_str(), owned)
            })
            .collect();
        append_timed(&mut tx, chain, timed).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report_findings(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
        since: Timestamp,
    ) -> Result<Vec<ReportFinding>> {
        let rows = sqlx::query(
            "SELECT f.id, f.device_id, d.hostname, f.cve_id, f.product, f.fixed_version, c.severity, \
             k.due_date, f.first_detected, f.resolved_at, f.resolution, f.resolved_by_deployment \
             FROM findings f JOIN devices d ON d.id = f.device_id \
             LEFT JOIN cves c ON c.id = f.cve_id LEFT JOIN kev k ON k.cve_id = f.cve_id \
             WHERE f.partner_id = $1 AND ($2 IS NULL OR f.organization_id = $2) \
             AND ($3 IS NULL OR f.organization_id = $3) AND (f.resolved_at IS NULL OR f.resolved_at >= $4) \
             ORDER BY f.first_detected, f.id",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(organization.map(OrganizationId::as_str))
        .bind(us(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportFinding {
                    id: r.try_get("id")?,
                    device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
                    hostname: r.try_get("hostname")?,
                    cve_id: r.try_get("cve_id")?,
                    product: r.try_get("product")?,
                    fixed_version: r.try_get("fixed_version")?,
                    severity: r
                        .try_get::<Option<String>, _>("severity")?
                        .map(|s| s.to_ascii_lowercase())
                        .unwrap_or_else(|| "none".to_owned()),
                    kev_due: r.try_get("due_date")?,
                    first_detected: ts(r.try_get("first_detected")?),
                    resolved_at: opt_ts(r.try_get("resolved_at")?),
                    resolution: r.try_get("resolution")?,
                    resolved_by_deployment: r.try_get("resolved_by_deployment")?,
                })
            })
            .collect()
    }

    async fn organization_figures(
        &self,
        scope: &Scope,
        failed_since: Timestamp,
        seen_since: Timestamp,
    ) -> Result<Vec<OrgFigures>> {
        let partner = scope.partner_id.as_str();
        let org = org_scope(scope);
        let mut by_org: std::collections::BTreeMap<String, OrgFigures> = Default::default();
        let devices: Vec<(String, i64)> = sqlx::query_as(
            "SELECT organization_id, COUNT(*) FROM devices WHERE partner_id = $1 \
             AND ($2 IS NULL OR organization_id = $2) GROUP BY organization_id",
        )
        .bind(partner)
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        for (o, n) in devices {
            by_org.entry(o).or_default().devices = n;
        }
        // Devices with an open finding, from the covering index alone; the counts by kind
        // come from `open_finding_groups`, which joins the CVE facts once per group.
        let exposed: Vec<(String, i64)> = sqlx::query_as(
            "SELECT organization_id, COUNT(DISTINCT device_id) FROM findings \
             WHERE partner_id = $1 AND resolved_at IS NULL AND ($2 IS NULL OR organization_id = $2) \
             GROUP BY organization_id",
        )
        .bind(partner)
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        for (o, devices) in exposed {
            by_org.entry(o).or_default().devices_exposed = devices;
        }
        let failed: Vec<(String, i64)> = sqlx::query_as(
            "SELECT organization_id, COUNT(*) FROM deployments WHERE partner_id = $1 \
             AND ($2 IS NULL OR organization_id = $2) AND status = 'failed' AND updated_at >= $3 \
             GROUP BY organization_id",
        )
        .bind(partner)
        .bind(org)
        .bind(us(failed_since))
        .fetch_all(&self.pool)
        .await?;
        for (o, n) in failed {
            by_org.entry(o).or_default().failed_recently = n;
        }
        let offline: Vec<(String, i64)> = sqlx::query_as(
            "SELECT d.organization_id, COUNT(*) FROM agent_credentials a JOIN devices d ON d.id = a.device_id \
             WHERE a.partner_id = $1 AND d.partner_id = $1 AND ($2 IS NULL OR d.organization_id = $2) \
             AND (a.last_seen IS NULL OR a.last_seen < $3) GROUP BY d.organization_id",
        )
        .bind(partner)
        .bind(org)
        .bind(us(seen_since))
        .fetch_all(&self.pool)
        .await?;
        for (o, n) in offline {
            by_org.entry(o).or_default().offline = n;
        }
        by_org
            .into_iter()
            .map(|(o, mut f)| {
                f.organization_id = Some(parse_stored(OrganizationId::parse(&o))?);
                Ok(f)
            })
            .collect()
    }

    async fn open_finding_groups(&self, scope: &Scope) -> Result<Vec<OpenFindingGroup>> {
        const HOUR: i64 = 3_600_000_000;
        // Grouped on the findings first, then joined to the CVE facts once per group.
        let rows: Vec<(String, String, String, Option<String>, Option<String>, i64, i64, i64)> = sqlx::query_as(
            "SELECT g.organization_id, g.cve_id, g.product, LOWER(c.severity), k.due_date, g.detected, g.n, g.devices \
             FROM (SELECT organization_id, cve_id, product, MIN(first_detected) / 3600000000 AS detected, \
                   COUNT(*) AS n, COUNT(DISTINCT device_id) AS devices FROM findings \
                   WHERE partner_id = $1 AND resolved_at IS NULL AND ($2 IS NULL OR organization_id = $2) \
                   GROUP BY organization_id, cve_id, product, first_detected / 3600000000) g \
             LEFT JOIN cves c ON c.id = g.cve_id LEFT JOIN kev k ON k.cve_id = g.cve_id",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(o, cve_id, product, severity, kev_due, hour, findings, devices)| {
                Ok(OpenFindingGroup {
                    organization_id: parse_stored(OrganizationId::parse(&o))?,
                    cve_id,
                    product,
                    severity: severity.unwrap_or_else(|| "none".to_owned()),
                    kev_due,
                    detected: ts(hour.saturating_mul(HOUR)),
                    findings,
                    devices,
                })
            })
            .collect()
    }

    async fn save_checkpoint(&self, c: &ringfence_evidence::Checkpoint) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "INSERT INTO evidence_checkpoints (chain, seq, hash, at, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain, seq) DO NOTHING",
        )
        .bind(&c.chain)
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at_micros)
        .bind(&c.key_id)
        .bind(&c.signature)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_checkpoints(&self, chain: &str, from: i64, to: i64) -> Result<Vec<ringfence_evidence::Checkpoint>> {
        let rows = sqlx::query(
            "SELECT chain, seq, hash, at, key_id, signature FROM evidence_checkpoints \
             WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
        )
        .bind(chain)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_row).collect()
    }

    async fn checkpoint_before(&self, chain: &str, seq: i64) -> Result<Option<ringfence_evidence::Checkpoint>> {
        let row = sqlx::query(
            "SELECT chain, seq, hash, at, key_id, signature FROM evidence_checkpoints \
             WHERE chain = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(chain)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_row).transpose()
    }

    async fn event_span(&self, chain: &str, from: Timestamp, to: Timestamp) -> Result<Option<(i64, i64)>> {
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MIN(seq), MAX(seq) FROM evidence_events WHERE chain = $1 AND at >= $2 AND at < $3",
        )
        .bind(chain)
        .bind(us(from))
        .bind(us(to))
        .fetch_one(&self.pool)
        .await?;
        Ok(lo.zip(hi))
    }

    async fn events_between(&self, chain: &str, from: i64, to: i64, limit: i64) -> Result<Vec<Event>> {
        // The chain is the one asked for: not read back for every row (an export reads a
        // million).
        let rows = sqlx::query_as::<_, (i64, i64, String, String, String, String, Option<String>, String, String, String)>(
            "SELECT seq, at, actor, action, object_kind, object_id, organization_id, payload, prev_hash, hash \
             FROM evidence_events WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        )
        .bind(chain)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, actor, action, object_kind, object_id, organization_id, payload, prev_hash, hash)| Event {
                chain: chain.to_owned(),
                seq,
                at_micros: at,
                actor,
                action,
                object_kind,
                object_id,
                organization_id,
                payload,
                prev_hash,
                hash,
            })
            .collect())
    }

    async fn event_at(&self, chain: &str, seq: i64) -> Result<Option<Event>> {
        let sql = format!("SELECT {EVENT_COLS} FROM evidence_events WHERE chain = $1 AND seq = $2");
        let row = sqlx::query(safe(sql)).bind(chain).bind(seq).fetch_optional(&self.pool).await?;
        row.as_ref().map(event_row).transpose()
    }

    async fn create_report_schedule(&self, audit: &Audit, scope: &Scope, s: &ReportSchedule) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        tx_get_org(&mut *tx, scope, s.organization_id.as_str()).await?;
        sqlx::query(safe(format!(
            "INSERT INTO report_schedules ({SCHEDULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&s.id)
        .bind(scope.partner_id.as_str())
        .bind(s.organization_id.as_str())
        .bind(&s.cadence)
        .bind(serde_json::to_string(&s.recipients).unwrap_or_else(|_| "[]".into()))
        .bind(us(s.next_run))
        .bind(s.last_run.map(us))
        .bind(&s.last_status)
        .bind(&s.created_by)
        .bind(us(s.created_at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "report_schedule.create",
            object_kind: "report_schedule",
            object_id: &s.id,
            organization_id: Some(s.organization_id.as_str()),
            payload: json!({ "after": s }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_report_schedules(&self, scope: &Scope) -> Result<Vec<ReportSchedule>> {
        let rows = sqlx::query(safe(format!(
            "SELECT {SCHEDULE_COLS} FROM report_schedules WHERE partner_id = $1 \
             AND ($2 IS NULL OR organization_id = $2) ORDER BY created_at, id"
        )))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_row).collect()
    }

    async fn delete_report_schedule(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(safe(format!(
            "SELECT {SCHEDULE_COLS} FROM report_schedules WHERE id = $1 AND partner_id = $2 \
             AND ($3 IS NULL OR organization_id = $3)"
        )))
        .bind(id)
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("report schedule"))?;
        let before = schedule_row(&row)?;
        sqlx::query("DELETE FROM report_schedules WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "report_schedule.delete",
            object_kind: "report_schedule",
            object_id: id,
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "before": before }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_report_schedules(&self, now: Timestamp) -> Result<Vec<(PartnerId, ReportSchedule)>> {
        let rows = sqlx::query(safe(format!(
            "SELECT {SCHEDULE_COLS} FROM report_schedules WHERE next_run <= $1 ORDER BY next_run LIMIT 100"
        )))
        .bind(us(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((PartnerId::from_stored(r.try_get("partner_id")?), schedule_row(r)?)))
            .collect()
    }

    async fn advance_report_schedule(
        &self,
        id: &str,
        expected_next: Timestamp,
        next: Timestamp,
        ran_at: Timestamp,
        status: &str,
    ) -> Result<bool> {
        let _w = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE report_schedules SET next_run = $3, last_run = $4, last_status = $5 \
             WHERE id = $1 AND next_run = $2",
        )
        .bind(id)
        .bind(us(expected_next))
        .bind(us(next))
        .bind(us(ran_at))
        .bind(status)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn save_report(&self, audit: &Audit, scope: &Scope, r: &StoredReport) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        tx_get_org(&mut *tx, scope, r.organization_id.as_str()).await?;
        sqlx::query(
            "INSERT INTO reports (id, partner_id, organization_id, period_start, period_end, generated_at, \
             generated_by, schedule_id, summary, html, csv, pdf, delivery) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&r.id)
        .bind(scope.partner_id.as_str())
        .bind(r.organization_id.as_str())
        .bind(us(r.period_start))
        .bind(us(r.period_end))
        .bind(us(r.generated_at))
        .bind(&r.generated_by)
        .bind(&r.schedule_id)
        .bind(&r.summary)
        .bind(&r.html)
        .bind(&r.csv)
        .bind(&r.pdf)
        .bind(&r.delivery)
        .execute(&mut *tx)
        .await?;
        let digest = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
        let a = Append {
            chain: &scope.partner_id,
            action: "report.generate",
            object_kind: "report",
            object_id: &r.id,
            organization_id: Some(r.organization_id.as_str()),
            payload: json!({
                "period_start": r.period_start, "period_end": r.period_end, "schedule_id": r.schedule_id,
                "html_sha256": digest(r.html.as_bytes()), "csv_sha256": digest(r.csv.as_bytes()),
                "pdf_sha256": r.pdf.as_deref().map(digest),
            }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_report_delivery(&self, scope: &Scope, id: &str, delivery: &str) -> Result<()> {
        let _w = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE reports SET delivery = $3 WHERE id = $1 AND partner_id = $2 \
             AND ($4 IS NULL OR organization_id = $4)",
        )
        .bind(id)
        .bind(scope.partner_id.as_str())
        .bind(delivery)
        .bind(org_scope(scope))
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("report"));
        }
        Ok(())
    }

    async fn list_reports(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
        limit: i64,
    ) -> Result<Vec<ReportListItem>> {
        let rows = sqlx::query(
            "SELECT r.id, r.organization_id, o.name AS organization, r.period_start, r.period_end, \
             r.generated_at, r.generated_by, r.pdf IS NOT NULL AS has_pdf, r.delivery \
             FROM reports r JOIN organizations o ON o.id = r.organization_id \
             WHERE r.partner_id = $1 AND ($2 IS NULL OR r.organization_id = $2) \
             AND ($3 IS NULL OR r.organization_id = $3) ORDER BY r.generated_at DESC, r.id DESC LIMIT $4",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(organization.map(OrganizationId::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportListItem {
                    id: r.try_get("id")?,
                    organization_id: org_of(r)?,
                    organization: r.try_get("organization")?,
                    period_start: ts(r.try_get("period_start")?),
                    period_end: ts(r.try_get("period_end")?),
                    generated_at: ts(r.try_get("generated_at")?),
                    generated_by: r.try_get("generated_by")?,
                    has_pdf: r.try_get("has_pdf")?,
                    delivery: r.try_get("delivery")?,
                })
            })
            .collect()
    }

    async fn get_report(&self, scope: &Scope, id: &str) -> Result<StoredReport> {
        let r = sqlx::query(
            "SELECT id, organization_id, period_start, period_end, generated_at, generated_by, schedule_id, \
             summary, html, csv, pdf, delivery FROM reports WHERE id = $1 AND partner_id = $2 \
             AND ($3 IS NULL OR organization_id = $3)",
        )
        .bind(id)
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("report"))?;
        Ok(StoredReport {
            id: r.try_get("id")?,
            organization_id: org_of(&r)?,
            period_start: ts(r.try_get("period_start")?),
            period_end: ts(r.try_get("period_end")?),
            generated_at: ts(r.try_get("generated_at")?),
            generated_by: r.try_get("generated_by")?,
            schedule_id: r.try_get("schedule_id")?,
            summary: r.try_get("summary")?,
            html: r.try_get("html")?,
            csv: r.try_get("csv")?,
            pdf: r.try_get("pdf")?,
            delivery: r.try_get("delivery")?,
        })
    }

    async fn raise_sla_alerts(&self, partner: &PartnerId, at: Timestamp, alerts: &[SlaAlert]) -> Result<u64> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut raised = 0;
        for a in alerts {
            let r = sqlx::query(
                "INSERT INTO alerts (id, partner_id, at, kind, cve_id, devices, message, organization_id) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (SELECT 1 FROM alerts \
                 WHERE partner_id = $2 AND kind = $4 AND cve_id = $5 AND organization_id = $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(partner.as_str())
            .bind(us(at))
            .bind(&a.kind)
            .bind(&a.cve_id)
            .bind(a.devices)
            .bind(&a.message)
            .bind(a.organization_id.as_str())
            .execute(&mut *tx)
            .await?;
            raised += r.rows_affected();
        }
        tx.commit().await?;
        Ok(raised)
    }
}
