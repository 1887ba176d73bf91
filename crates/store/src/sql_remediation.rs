// The SQL implementation of `RemediationStore`, shared by both backends like sql_common.rs.

use crate::remediation::*;
use serde_json::Value;

const POLICY_COLS: &str =
    "id, level, target_id, organization_id, name, priority, settings, locked, created_at, updated_at";

fn opt_org(r: &DbRow, col: &str) -> Result<Option<OrganizationId>> {
    r.try_get::<Option<String>, _>(col)?.map(|s| parse_stored(OrganizationId::parse(&s))).transpose()
}

fn org_of(r: &DbRow) -> Result<OrganizationId> {
    parse_stored(OrganizationId::parse(&r.try_get::<String, _>("organization_id")?))
}

fn json_list(r: &DbRow, col: &str) -> Result<Vec<String>> {
    let text: String = r.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Batch(format!("stored {col} is not a JSON list: {e}"), None))
}

fn policy_record(r: &DbRow) -> Result<PolicyRecord> {
    let settings: String = r.try_get("settings")?;
    Ok(PolicyRecord {
        id: r.try_get("id")?,
        level: r.try_get("level")?,
        target_id: r.try_get("target_id")?,
        organization_id: opt_org(r, "organization_id")?,
        name: r.try_get("name")?,
        priority: r.try_get("priority")?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| StoreError::Batch(format!("stored policy settings are not a JSON object: {e}"), None))?,
        locked: json_list(r, "locked")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

/// Visible: the partner's own policies and, for an organization scope, that organization's.
const POLICY_VISIBLE: &str = "partner_id = $1 AND ($2 IS NULL OR organization_id IS NULL OR organization_id = $2)";
/// Writable: an organization scope may change its organization's policies only.
const POLICY_WRITABLE: &str = "partner_id = $1 AND ($2 IS NULL OR organization_id = $2)";

async fn tx_get_policy<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
    filter: &str,
) -> Result<PolicyRecord> {
    let sql = format!("SELECT {POLICY_COLS} FROM policies WHERE {filter} AND id = $3");
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("policy"))?;
    policy_record(&row)
}

const APPROVAL_COLS: &str = "id, organization_id, product, version, decision, defer_until, reason, decided_by, \
     rule, score, emergency, second_approver, created_at";

fn approval_record(r: &DbRow) -> Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id: r.try_get("id")?,
        organization_id: opt_org(r, "organization_id")?,
        product: r.try_get("product")?,
        version: r.try_get("version")?,
        decision: r.try_get("decision")?,
        defer_until: opt_ts(r.try_get("defer_until")?),
        reason: r.try_get("reason")?,
        decided_by: r.try_get("decided_by")?,
        rule: r.try_get("rule")?,
        score: r.try_get("score")?,
        emergency: r.try_get("emergency")?,
        second_approver: r.try_get("second_approver")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

const EXCEPTION_COLS: &str = "id, organization_id, kind, software, version_range, owner, reason, expires_at, \
     created_by, created_at, revoked_at";

fn exception_record(r: &DbRow) -> Result<ExceptionRecord> {
    Ok(ExceptionRecord {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        kind: r.try_get("kind")?,
        software: r.try_get("software")?,
        version_range: r.try_get("version_range")?,
        owner: r.try_get("owner")?,
        reason: r.try_get("reason")?,
        expires_at: ts(r.try_get("expires_at")?),
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
        revoked_at: opt_ts(r.try_get("revoked_at")?),
    })
}

const HALT_COLS: &str =
    "id, product, version, reason, halted_by, halted_at, released_at, released_by, release_reason";

fn halt_record(r: &DbRow) -> Result<HaltRecord> {
    Ok(HaltRecord {
        id: r.try_get("id")?,
        product: r.try_get("product")?,
        version: r.try_get("version")?,
        reason: r.try_get("reason")?,
        halted_by: r.try_get("halted_by")?,
        halted_at: ts(r.try_get("halted_at")?),
        released_at: opt_ts(r.try_get("released_at")?),
        released_by: r.try_get("released_by")?,
        release_reason: r.try_get("release_reason")?,
    })
}

const RISK_COLS: &str = "id, organization_id, cve_id, product, kind, control, owner, reason, expires_at, \
     created_by, created_at, revoked_at";

fn risk_record(r: &DbRow) -> Result<RiskDecisionRecord> {
    Ok(RiskDecisionRecord {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        cve_id: r.try_get("cve_id")?,
        product: r.try_get("product")?,
        kind: r.try_get("kind")?,
        control: r.try_get("control")?,
        owner: r.try_get("owner")?,
        reason: r.try_get("reason")?,
        expires_at: ts(r.try_get("expires_at")?),
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
        revoked_at: opt_ts(r.try_get("revoked_at")?),
    })
}

/// Checks that an organization named by a write is the caller's to use.
async fn tx_check_org(tx: &mut Tx<'_>, scope: &Scope, org: &OrganizationId) -> Result<()> {
    tx_get_org(&mut **tx, scope, org.as_str()).await.map(drop)
}

#[async_trait]
impl RemediationStore for This {
    async fn list_policies(&self, scope: &Scope) -> Result<Vec<PolicyRecord>> {
        let sql = format!("SELECT {POLICY_COLS} FROM policies WHERE {POLICY_VISIBLE} ORDER BY level, priority DESC, name");
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy_record).collect()
    }

    async fn get_policy(&self, scope: &Scope, id: &str) -> Result<PolicyRecord> {
        tx_get_policy(&self.pool, scope, id, POLICY_VISIBLE).await
    }

    async fn create_policy(&self, audit: &Audit, scope: &Scope, new: &PolicyWrite) -> Result<PolicyRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        match &new.organization_id {
            Some(org) => tx_check_org(&mut tx, scope, org).await?,
            None if scope.organization_id.is_some() => return Err(StoreError::NotFound("organization")),
            None => {}
        }
        let p = PolicyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            level: new.level.clone(),
            target_id: new.target_id.clone(),
            organization_id: new.organization_id.clone(),
            name: new.name.clone(),
            priority: new.priority,
            settings: new.settings.clone(),
            locked: new.locked.clone(),
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(
            "INSERT INTO policies (id, partner_id, name, level, target_id, organization_id, priority, settings, \
             locked, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&p.id)
        .bind(scope.partner_id.as_str())
        .bind(&p.name)
        .bind(&p.level)
        .bind(&p.target_id)
        .bind(p.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(p.priority)
        .bind(json!(p.settings).to_string())
        .bind(json!(p.locked).to_string())
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("a policy named '{}' already exists", p.name)))?;
        let a = Append {
            chain: &scope.partner_id,
            action: "policy.create",
            object_kind: "policy",
            object_id: &p.id,
            organization_id: p.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "after": &p }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn update_policy(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
        new: &PolicyWrite,
    ) -> Result<PolicyRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "policies", id).await?;
        let before = tx_get_policy(&mut *tx, scope, id, POLICY_WRITABLE).await?;
        match &new.organization_id {
            Some(org) => tx_check_org(&mut tx, scope, org).await?,
            None if scope.organization_id.is_some() => return Err(StoreError::NotFound("organization")),
            None => {}
        }
        let after = PolicyRecord {
            id: before.id.clone(),
            level: new.level.clone(),
            target_id: new.target_id.clone(),
            organization_id: new.organization_id.clone(),
            name: new.name.clone(),
            priority: new.priority,
            settings: new.settings.clone(),
            locked: new.locked.clone(),
            created_at: before.created_at,
            updated_at: audit.at,
        };
        sqlx::query(
            "UPDATE policies SET name = $2, level = $3, target_id = $4, organization_id = $5, priority = $6, \
             settings = $7, locked = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(id)
        .bind(&after.name)
        .bind(&after.level)
        .bind(&after.target_id)
        .bind(after.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(after.priority)
        .bind(json!(after.settings).to_string())
        .bind(json!(after.locked).to_string())
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("a policy named '{}' already exists", after.name)))?;
        let a = Append {
            chain: &scope.partner_id,
            action: "policy.update",
            object_kind: "policy",
            object_id: id,
            organization_id: after.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_policy(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_policy(&mut *tx, scope, id, POLICY_WRITABLE).await?;
        sqlx::query("DELETE FROM policies WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "policy.delete",
            object_kind: "policy",
            object_id: id,
            organization_id: before.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "before": &before }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_device_updates(
        &self,
        partner: &PartnerId,
        device: &DeviceId,
        updates: &[DeviceUpdate],
        at: Timestamp,
    ) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let scope = Scope::partner(partner.clone());
        let d = tx_get_device(&mut *tx, &scope, device.as_str()).await?;
        let previous: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, candidate, first_seen FROM device_updates WHERE device_id = $1")
                .bind(device.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let first_seen: std::collections::HashMap<(String, String), i64> =
            previous.into_iter().map(|(n, c, f)| ((n, c), f)).collect();
        sqlx::query("DELETE FROM device_updates WHERE device_id = $1").bind(device.as_str()).execute(&mut *tx).await?;
        let rows: Vec<Value> = updates
            .iter()
            .map(|u| {
                let first = first_seen.get(&(u.name.clone(), u.candidate.clone())).copied().unwrap_or(us(at));
                json!({
                    "manager": u.manager, "name": u.name, "installed": u.installed, "candidate": u.candidate,
                    "origin": u.origin, "classification": u.classification,
                    "advisories": json!(u.advisories).to_string(), "cves": json!(u.cves).to_string(),
                    "reboot": u.reboot_required, "rollback": u.rollback, "first_seen": first,
                })
            })
            .collect();
        let sql = concat!(
            "INSERT INTO device_updates (device_id, partner_id, organization_id, manager, name, installed, candidate, \
             origin, classification, advisories, cves, reboot_required, rollback, first_seen, reported_at) \
             SELECT $1, $2, $3, value->>'manager', value->>'name', value->>'installed', value->>'candidate', \
             value->>'origin', value->>'classification', value->>'advisories', value->>'cves', \
             CAST(value->>'reboot' AS BOOLEAN), value->>'rollback', CAST(value->>'first_seen' AS BIGINT), $4 FROM ",
            json_rows!(5)
        );
        sqlx::query(sql)
            .bind(device.as_str())
            .bind(partner.as_str())
            .bind(d.organization_id.as_str())
            .bind(us(at))
            .bind(Value::Array(rows).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_device_updates(
        &self,
        scope: &Scope,
        device: Option<&DeviceId>,
    ) -> Result<Vec<DeviceUpdateRow>> {
        let rows = sqlx::query(
            "SELECT u.device_id, u.organization_id, d.hostname, u.manager, u.name, u.installed, u.candidate, \
             u.origin, u.classification, u.advisories, u.cves, u.reboot_required, u.rollback, u.first_seen, \
             u.reported_at FROM device_updates u JOIN devices d ON d.id = u.device_id \
             WHERE u.partner_id = $1 AND ($2 IS NULL OR u.organization_id = $2) AND ($3 IS NULL OR u.device_id = $3) \
             ORDER BY d.hostname, u.name",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(device.map(DeviceId::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceUpdateRow {
                    device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
                    organization_id: org_of(r)?,
                    hostname: r.try_get("hostname")?,
                    update: DeviceUpdate {
                        manager: r.try_get("manager")?,
                        name: r.try_get("name")?,
                        installed: r.try_get("installed")?,
                        candidate: r.try_get("candidate")?,
                        origin: r.try_get("origin")?,
                        classification: r.try_get("classification")?,
                        advisories: json_list(r, "advisories")?,
                        cves: json_list(r, "cves")?,
                        reboot_required: r.try_get("reboot_required")?,
                        rollback: r.try_get("rollback")?,
                    },
                    first_seen: ts(r.try_get("first_seen")?),
                    reported_at: ts(r.try_get("reported_at")?),
                })
            })
            .collect()
    }

    async fn create_approvals(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &[NewApproval],
    ) -> Result<Vec<ApprovalRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            match &n.organization_id {
                Some(org) => tx_check_org(&mut tx, scope, org).await?,
                None if scope.organization_id.is_some() => return Err(StoreError::NotFound("organization")),
                None => {}
            }
            let rec = ApprovalRecord {
                id: uuid::Uuid::now_v7().to_string(),
                organization_id: n.organization_id.clone(),
                product: n.product.clone(),
                version: n.version.clone(),
                decision: n.decision.clone(),
                defer_until: n.defer_until,
                reason: n.reason.clone(),
                decided_by: audit.actor.clone(),
                rule: n.rule.clone(),
                score: n.score,
                emergency: n.emergency,
                second_approver: None,
                created_at: audit.at,
            };
            sqlx::query(
                "INSERT INTO approvals (id, partner_id, organization_id, product, version, decision, defer_until, \
                 reason, decided_by, rule, score, emergency, second_approver, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13)",
            )
            .bind(&rec.id)
            .bind(scope.partner_id.as_str())
            .bind(rec.organization_id.as_ref().map(OrganizationId::as_str))
            .bind(&rec.product)
            .bind(&rec.version)
            .bind(&rec.decision)
            .bind(rec.defer_until.map(us))
            .bind(&rec.reason)
            .bind(&rec.decided_by)
            .bind(&rec.rule)
            .bind(rec.score)
            .bind(rec.emergency)
            .bind(us(audit.at))
            .execute(&mut *tx)
            .await?;
            let action = format!("approval.{}", rec.decision);
            let a = Append {
                chain: &scope.partner_id,
                action: &action,
                object_kind: "approval",
                object_id: &rec.id,
                organization_id: rec.organization_id.as_ref().map(OrganizationId::as_str),
                payload: json!({ "after": &rec, "inputs": &n.inputs }),
            };
            append(&mut tx, audit, a).await?;
            out.push(rec);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn list_approvals(&self, scope: &Scope, limit: i64) -> Result<Vec<ApprovalRecord>> {
        let sql = format!(
            "SELECT {APPROVAL_COLS} FROM approvals WHERE partner_id = $1 \
             AND ($2 IS NULL OR organization_id IS NULL OR organization_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(approval_record).collect()
    }

    async fn confirm_approval(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<ApprovalRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "approvals", id).await?;
        let sql = format!(
            "SELECT {APPROVAL_COLS} FROM approvals WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) AND id = $3"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("approval"))?;
        let mut rec = approval_record(&row)?;
        if rec.decision != "awaiting_second" {
            return Err(StoreError::Conflict(format!(
                "this decision is '{}', not an emergency override awaiting a second approver",
                rec.decision
            )));
        }
        if rec.decided_by == audit.actor {
            return Err(StoreError::Conflict(
                "the second approver must be someone other than the one who asked for the override".into(),
            ));
        }
        rec.decision = "approved".into();
        rec.second_approver = Some(audit.actor.clone());
        sqlx::query("UPDATE approvals SET decision = 'approved', second_approver = $2 WHERE id = $1")
            .bind(id)
            .bind(&audit.actor)
            .execute(&mut *tx)
            .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "approval.confirm",
            object_kind: "approval",
            object_id: id,
            organization_id: rec.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_exception(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewException,
    ) -> Result<ExceptionRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        tx_check_org(&mut tx, scope, &new.organization_id).await?;
        let rec = ExceptionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: new.organization_id.clone(),
            kind: new.kind.clone(),
            software: new.software.clone(),
            version_range: new.version_range.clone(),
            owner: new.owner.clone(),
            reason: new.reason.clone(),
            expires_at: new.expires_at,
            created_by: audit.actor.clone(),
            created_at: audit.at,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO exceptions (id, partner_id, organization_id, kind, software, version_range, owner, reason, \
             expires_at, created_by, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
        )
        .bind(&rec.id)
        .bind(scope.partner_id.as_str())
        .bind(rec.organization_id.as_str())
        .bind(&rec.kind)
        .bind(&rec.software)
        .bind(&rec.version_range)
        .bind(&rec.owner)
        .bind(&rec.reason)
        .bind(us(rec.expires_at))
        .bind(&rec.created_by)
        .bind(us(rec.created_at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "exception.create",
            object_kind: "exception",
            object_id: &rec.id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn list_exceptions(&self, scope: &Scope) -> Result<Vec<ExceptionRecord>> {
        let sql = format!(
            "SELECT {EXCEPTION_COLS} FROM exceptions WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             ORDER BY expires_at, id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(exception_record).collect()
    }

    async fn revoke_exception(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<ExceptionRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE exceptions SET revoked_at = $4 WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             AND id = $3 AND revoked_at IS NULL RETURNING {EXCEPTION_COLS}"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(id)
            .bind(us(audit.at))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("exception"))?;
        let rec = exception_record(&row)?;
        let a = Append {
            chain: &scope.partner_id,
            action: "exception.revoke",
            object_kind: "exception",
            object_id: id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_risk_decision(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewRiskDecision,
    ) -> Result<RiskDecisionRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        tx_check_org(&mut tx, scope, &new.organization_id).await?;
        let rec = RiskDecisionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: new.organization_id.clone(),
            cve_id: new.cve_id.clone(),
            product: new.product.clone(),
            kind: new.kind.clone(),
            control: new.control.clone(),
            owner: new.owner.clone(),
            reason: new.reason.clone(),
            expires_at: new.expires_at,
            created_by: audit.actor.clone(),
            created_at: audit.at,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO risk_decisions (id, partner_id, organization_id, cve_id, product, kind, control, owner, \
             reason, expires_at, created_by, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)",
        )
        .bind(&rec.id)
        .bind(scope.partner_id.as_str())
        .bind(rec.organization_id.as_str())
        .bind(&rec.cve_id)
        .bind(&rec.product)
        .bind(&rec.kind)
        .bind(&rec.control)
        .bind(&rec.owner)
        .bind(&rec.reason)
        .bind(us(rec.expires_at))
        .bind(&rec.created_by)
        .bind(us(rec.created_at))
        .execute(&mut *tx)
        .await?;
        let action = format!("finding.{}", rec.kind);
        let a = Append {
            chain: &scope.partner_id,
            action: &action,
            object_kind: "risk_decision",
            object_id: &rec.id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn list_risk_decisions(&self, scope: &Scope) -> Result<Vec<RiskDecisionRecord>> {
        let sql = format!(
            "SELECT {RISK_COLS} FROM risk_decisions WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             ORDER BY expires_at, id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(risk_record).collect()
    }

    async fn revoke_risk_decision(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &str,
    ) -> Result<RiskDecisionRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE risk_decisions SET revoked_at = $4 WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             AND id = $3 AND revoked_at IS NULL RETURNING {RISK_COLS}"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(id)
            .bind(us(audit.at))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("risk decision"))?;
        let rec = risk_record(&row)?;
        let a = Append {
            chain: &scope.partner_id,
            action: "finding.risk_decision_revoke",
            object_kind: "risk_decision",
            object_id: id,
            organization_id: Some(rec.organization_id.as_str()),
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_halt(
        &self,
        audit: &Audit,
        scope: &Scope,
        product: &str,
        version: &str,
        reason: &str,
    ) -> Result<HaltRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let live: Option<String> = sqlx::query_scalar(
            "SELECT id FROM rollout_halts WHERE partner_id = $1 AND product = $2 AND version = $3 AND released_at IS NULL",
        )
        .bind(scope.partner_id.as_str())
        .bind(product)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_some() {
            return Err(StoreError::Conflict(format!("{product} {version} is already halted")));
        }
        let rec = HaltRecord {
            id: uuid::Uuid::now_v7().to_string(),
            product: product.into(),
            version: version.into(),
            reason: reason.into(),
            halted_by: audit.actor.clone(),
            halted_at: audit.at,
            released_at: None,
            released_by: None,
            release_reason: None,
        };
        sqlx::query(
            "INSERT INTO rollout_halts (id, partner_id, product, version, reason, halted_by, halted_at)              VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&rec.id)
        .bind(scope.partner_id.as_str())
        .bind(&rec.product)
        .bind(&rec.version)
        .bind(&rec.reason)
        .bind(&rec.halted_by)
        .bind(us(rec.halted_at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "rollout.halt",
            object_kind: "rollout_halt",
            object_id: &rec.id,
            organization_id: None,
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn list_halts(&self, scope: &Scope) -> Result<Vec<HaltRecord>> {
        let sql = format!("SELECT {HALT_COLS} FROM rollout_halts WHERE partner_id = $1 ORDER BY halted_at DESC, id DESC");
        let rows = sqlx::query(safe(sql)).bind(scope.partner_id.as_str()).fetch_all(&self.pool).await?;
        rows.iter().map(halt_record).collect()
    }

    async fn release_halt(&self, audit: &Audit, scope: &Scope, id: &str, reason: &str) -> Result<HaltRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE rollout_halts SET released_at = $3, released_by = $4, release_reason = $5              WHERE partner_id = $1 AND id = $2 AND released_at IS NULL RETURNING {HALT_COLS}"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(id)
            .bind(us(audit.at))
            .bind(&audit.actor)
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("halt"))?;
        let rec = halt_record(&row)?;
        let a = Append {
            chain: &scope.partner_id,
            action: "rollout.release",
            object_kind: "rollout_halt",
            object_id: id,
            organization_id: None,
            payload: json!({ "after": &rec }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn queue_findings(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
    ) -> Result<Vec<QueueRow>> {
        let rows = sqlx::query(
            "SELECT f.organization_id, f.device_id, d.hostname, f.cve_id, f.product, f.items, f.installed_version, \
             f.fixed_version, f.first_detected, d.role, d.internet_facing, d.holds_sensitive_data, d.criticality, \
             c.cvss_score, c.cvss_version, c.cvss_vector, k.cve_id AS kev_id, k.ransomware, e.score AS epss \
             FROM findings f JOIN devices d ON d.id = f.device_id LEFT JOIN cves c ON c.id = f.cve_id \
             LEFT JOIN kev k ON k.cve_id = f.cve_id LEFT JOIN epss e ON e.cve_id = f.cve_id \
             WHERE f.partner_id = $1 AND ($2 IS NULL OR f.organization_id = $2) \
             AND ($3 IS NULL OR f.organization_id = $3) AND f.resolved_at IS NULL",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(organization.map(OrganizationId::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let items: String = r.try_get("items")?;
                Ok(QueueRow {
                    organization_id: org_of(r)?,
                    device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
                    hostname: r.try_get("hostname")?,
                    cve_id: r.try_get("cve_id")?,
                    product: r.try_get("product")?,
                    items: serde_json::from_str(&items).unwrap_or_default(),
                    installed_version: r.try_get("installed_version")?,
                    fixed_version: r.try_get("fixed_version")?,
                    first_detected: ts(r.try_get("first_detected")?),
                    role: r.try_get("role")?,
                    internet_facing: r.try_get("internet_facing")?,
                    holds_sensitive_data: r.try_get("holds_sensitive_data")?,
                    criticality: r.try_get("criticality")?,
                    cvss_score: r.try_get("cvss_score")?,
                    cvss_version: r.try_get("cvss_version")?,
                    cvss_vector: r.try_get("cvss_vector")?,
                    kev: r.try_get::<Option<String>, _>("kev_id")?.is_some(),
                    kev_ransomware: r.try_get::<Option<bool>, _>("ransomware")?.unwrap_or(false),
                    epss: r.try_get("epss")?,
                })
            })
            .collect()
    }
}
