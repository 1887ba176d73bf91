// Agentless network appliances: the SQL shared by both backends (included into `sqlite.rs`
// and `postgres.rs`).

use crate::appliances::*;

const APPLIANCE_SELECT: &str = "SELECT a.device_id, d.hostname, a.organization_id, o.name AS organization, d.site_id, \
     s.name AS site, a.source, a.address, a.port, a.collector_id, a.credential_id, a.sys_descr, a.sys_object_id, \
     a.sys_name, a.entities, a.identified, a.vendor, a.product, a.model, a.firmware, a.serial, a.os_cpe, \
     a.hardware_cpe, a.rule, a.poll_minutes, a.next_poll_at, a.last_polled_at, a.last_outcome, a.last_error, \
     a.last_ok_at, a.confirmed_at, a.confirmed_by, a.notes, a.created_at \
     FROM appliances a JOIN devices d ON d.id = a.device_id JOIN organizations o ON o.id = a.organization_id \
     JOIN sites s ON s.id = d.site_id";

fn appliance_row(r: &DbRow) -> Result<ApplianceRecord> {
    let entities: String = r.try_get("entities")?;
    Ok(ApplianceRecord {
        device_id: DeviceId::from_stored(r.try_get("device_id")?),
        hostname: r.try_get("hostname")?,
        organization_id: org_of(r)?,
        organization: r.try_get("organization")?,
        site_id: SiteId::from_stored(r.try_get("site_id")?),
        site: r.try_get("site")?,
        source: r.try_get("source")?,
        address: r.try_get("address")?,
        port: r.try_get::<Option<i64>, _>("port")?.and_then(|p| u16::try_from(p).ok()),
        collector_id: r.try_get::<Option<String>, _>("collector_id")?.map(DeviceId::from_stored),
        credential_id: r.try_get("credential_id")?,
        identity: ApplianceIdentity {
            sys_descr: r.try_get("sys_descr")?,
            sys_object_id: r.try_get("sys_object_id")?,
            sys_name: r.try_get("sys_name")?,
            entities: serde_json::from_str(&entities).unwrap_or(serde_json::Value::Array(Vec::new())),
            identified: r.try_get("identified")?,
            vendor: r.try_get("vendor")?,
            product: r.try_get("product")?,
            model: r.try_get("model")?,
            firmware: r.try_get("firmware")?,
            serial: r.try_get("serial")?,
            os_cpe: r.try_get("os_cpe")?,
            hardware_cpe: r.try_get("hardware_cpe")?,
            rule: r.try_get("rule")?,
        },
        poll_minutes: r.try_get("poll_minutes")?,
        next_poll_at: opt_ts(r.try_get("next_poll_at")?),
        last_polled_at: opt_ts(r.try_get("last_polled_at")?),
        last_outcome: r.try_get("last_outcome")?,
        last_error: r.try_get("last_error")?,
        last_ok_at: opt_ts(r.try_get("last_ok_at")?),
        confirmed_at: opt_ts(r.try_get("confirmed_at")?),
        confirmed_by: r.try_get("confirmed_by")?,
        notes: r.try_get("notes")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

fn credential_row(r: &DbRow) -> Result<CredentialRecord> {
    Ok(CredentialRecord {
        id: r.try_get("id")?,
        organization_id: r.try_get::<Option<String>, _>("organization_id")?.map(OrganizationId::from_stored),
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

const COLLECTOR_SELECT: &str = "SELECT c.device_id, d.hostname, c.organization_id, c.site_id, c.created_by, \
     c.created_at, c.last_seen_at FROM collectors c JOIN devices d ON d.id = c.device_id";

fn collector_row(r: &DbRow) -> Result<CollectorRecord> {
    Ok(CollectorRecord {
        device_id: DeviceId::from_stored(r.try_get("device_id")?),
        hostname: r.try_get("hostname")?,
        organization_id: org_of(r)?,
        site_id: SiteId::from_stored(r.try_get("site_id")?),
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
        last_seen_at: opt_ts(r.try_get("last_seen_at")?),
    })
}

const SCAN_COLS: &str = "id, organization_id, site_id, collector_id, range_text, port, rate_per_sec, credential_ids, \
     status, probed, answered, added, detail, created_by, created_at, started_at, finished_at";

fn scan_row(r: &DbRow) -> Result<ScanRecord> {
    let creds: String = r.try_get("credential_ids")?;
    Ok(ScanRecord {
        id: r.try_get("id")?,
        organization_id: org_of(r)?,
        site_id: SiteId::from_stored(r.try_get("site_id")?),
        collector_id: DeviceId::from_stored(r.try_get("collector_id")?),
        range: r.try_get("range_text")?,
        port: u16::try_from(r.try_get::<i64, _>("port")?).unwrap_or(161),
        rate_per_sec: u32::try_from(r.try_get::<i64, _>("rate_per_sec")?).unwrap_or(1),
        credential_ids: serde_json::from_str(&creds).unwrap_or_default(),
        status: r.try_get("status")?,
        probed: r.try_get("probed")?,
        answered: r.try_get("answered")?,
        added: r.try_get("added")?,
        detail: r.try_get("detail")?,
        created_by: r.try_get("created_by")?,
        created_at: ts(r.try_get("created_at")?),
        started_at: opt_ts(r.try_get("started_at")?),
        finished_at: opt_ts(r.try_get("finished_at")?),
    })
}

/// What the evidence keeps of an appliance's identity (the raw strings and what they mean).
fn identity_evidence(i: &ApplianceIdentity) -> serde_json::Value {
    json!({
        "sys_descr": i.sys_descr, "sys_object_id": i.sys_object_id, "sys_name": i.sys_name,
        "identified": i.identified, "vendor": i.vendor, "product": i.product, "model": i.model,
        "firmware": i.firmware, "serial": i.serial, "os_cpe": i.os_cpe, "hardware_cpe": i.hardware_cpe,
        "rule": i.rule,
    })
}

async fn tx_set_identity(tx: &mut Tx<'_>, device: &str, i: &ApplianceIdentity, at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE appliances SET sys_descr = $2, sys_object_id = $3, sys_name = $4, entities = $5, identified = $6, \
         vendor = $7, product = $8, model = $9, firmware = $10, serial = $11, os_cpe = $12, hardware_cpe = $13, \
         rule = $14, updated_at = $15 WHERE device_id = $1",
    )
    .bind(device)
    .bind(&i.sys_descr)
    .bind(&i.sys_object_id)
    .bind(&i.sys_name)
    .bind(i.entities.to_string())
    .bind(i.identified)
    .bind(&i.vendor)
    .bind(&i.product)
    .bind(&i.model)
    .bind(&i.firmware)
    .bind(&i.serial)
    .bind(&i.os_cpe)
    .bind(&i.hardware_cpe)
    .bind(&i.rule)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn tx_get_appliance<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    device: &str,
) -> Result<ApplianceRecord> {
    let sql =
        format!("{APPLIANCE_SELECT} WHERE a.device_id = $3 AND a.partner_id = $1 AND ($2 IS NULL OR a.organization_id = $2)");
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(device)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("appliance"))?;
    appliance_row(&row)
}

async fn tx_create_appliance(tx: &mut Tx<'_>, audit: &Audit, scope: &Scope, new: &NewAppliance) -> Result<ApplianceRecord> {
    let site = match tx_get_site(&mut **tx, scope, new.site_id.as_str()).await {
        Err(StoreError::NotFound(_)) => {
            return Err(StoreError::invalid("site_id", format!("site {} not found", new.site_id)));
        }
        other => other?,
    };
    if let Some(id) = &new.collector_id {
        let ok: Option<String> = sqlx::query_scalar(
            "SELECT device_id FROM collectors WHERE device_id = $1 AND partner_id = $2 AND organization_id = $3",
        )
        .bind(id.as_str())
        .bind(site.partner_id.as_str())
        .bind(site.organization_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if ok.is_none() {
            return Err(StoreError::invalid("collector_id", format!("{id} is not a collector of this organization")));
        }
    }
    if let Some(c) = &new.credential_id {
        let ok: Option<String> = sqlx::query_scalar(
            "SELECT id FROM snmp_credentials WHERE id = $1 AND partner_id = $2 \
             AND (organization_id IS NULL OR organization_id = $3)",
        )
        .bind(c)
        .bind(site.partner_id.as_str())
        .bind(site.organization_id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if ok.is_none() {
            return Err(StoreError::invalid("credential_id", format!("credential {c} not found")));
        }
    }
    let device = NewDevice {
        site_id: new.site_id.clone(),
        hostname: new.hostname.clone(),
        role: DeviceRole::NetworkAppliance,
        os: [new.identity.product.as_deref(), new.identity.firmware.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        internet_facing: new.internet_facing,
        holds_sensitive_data: false,
        criticality: new.criticality,
        time_zone: None,
        group_ids: Vec::new(),
    };
    let id = tx_insert_device(tx, &site, &device, audit.at).await?;
    let at = us(audit.at);
    let manual = new.source == "manual";
    sqlx::query(
        "INSERT INTO appliances (device_id, partner_id, organization_id, source, address, port, collector_id, \
         credential_id, poll_minutes, next_poll_at, confirmed_at, confirmed_by, notes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(id.as_str())
    .bind(site.partner_id.as_str())
    .bind(site.organization_id.as_str())
    .bind(&new.source)
    .bind(&new.address)
    .bind(new.port.map(i64::from))
    .bind(new.collector_id.as_ref().map(DeviceId::as_str))
    .bind(&new.credential_id)
    .bind(new.poll_minutes)
    .bind(new.next_poll_at.map(us))
    .bind(manual.then_some(at))
    .bind(manual.then_some(audit.actor.as_str()))
    .bind(&new.notes)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    tx_set_identity(tx, id.as_str(), &new.identity, at).await?;
    if new.identity.identified || new.identity.firmware.is_some() {
        // The last poll or confirmation counts as a successful observation.
        sqlx::query("UPDATE appliances SET last_ok_at = $2 WHERE device_id = $1 AND source = 'manual'")
            .bind(id.as_str())
            .bind(at)
            .execute(&mut **tx)
            .await?;
    }
    let rec = tx_get_appliance(&mut **tx, scope, id.as_str()).await?;
    let a = Append {
        chain: &scope.partner_id,
        action: "appliance.create",
        object_kind: "appliance",
        object_id: id.as_str(),
        organization_id: Some(rec.organization_id.as_str()),
        payload: json!({
            "origin": new.origin, "source": new.source, "hostname": rec.hostname, "address": rec.address,
            "port": rec.port, "collector_id": rec.collector_id, "credential_id": rec.credential_id,
            "identity": identity_evidence(&rec.identity),
        }),
    };
    append(tx, audit, a).await?;
    Ok(rec)
}

#[async_trait::async_trait]
impl ApplianceStore for This {
    async fn create_credential(&self, audit: &Audit, scope: &Scope, c: &CredentialRecord, sealed: &str) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        if let Some(org) = &c.organization_id {
            let ok: Option<String> = sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1 AND partner_id = $2")
                .bind(org.as_str())
                .bind(scope.partner_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if ok.is_none() {
                return Err(StoreError::invalid("organization_id", format!("organization {org} not found")));
            }
        }
        sqlx::query(
            "INSERT INTO snmp_credentials (id, partner_id, organization_id, name, version, sealed, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(scope.partner_id.as_str())
        .bind(c.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(&c.name)
        .bind(&c.version)
        .bind(sealed)
        .bind(&c.created_by)
        .bind(us(c.created_at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("a credential named '{}' exists already", c.name)))?;
        let a = Append {
            chain: &scope.partner_id,
            action: "snmp_credential.create",
            object_kind: "snmp_credential",
            object_id: &c.id,
            organization_id: c.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "name": c.name, "version": c.version }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_credentials(&self, scope: &Scope) -> Result<Vec<CredentialRecord>> {
        let rows = sqlx::query(
            "SELECT id, organization_id, name, version, created_by, created_at FROM snmp_credentials \
             WHERE partner_id = $1 AND ($2 IS NULL OR organization_id IS NULL OR organization_id = $2) ORDER BY name",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credential_row).collect()
    }

    async fn sealed_credential(&self, partner: &PartnerId, id: &str) -> Result<Option<(CredentialRecord, String)>> {
        let row = sqlx::query(
            "SELECT id, organization_id, name, version, created_by, created_at, sealed FROM snmp_credentials \
             WHERE partner_id = $1 AND id = $2",
        )
        .bind(partner.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((credential_row(&r)?, r.try_get("sealed")?))).transpose()
    }

    async fn delete_credential(&self, audit: &Audit, scope: &Scope, id: &str) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT id, organization_id, name, version, created_by, created_at FROM snmp_credentials \
             WHERE partner_id = $1 AND id = $2 AND ($3 IS NULL OR organization_id = $3)",
        )
        .bind(scope.partner_id.as_str())
        .bind(id)
        .bind(org_scope(scope))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("credential"))?;
        let c = credential_row(&row)?;
        sqlx::query("DELETE FROM snmp_credentials WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "snmp_credential.delete",
            object_kind: "snmp_credential",
            object_id: id,
            organization_id: c.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "name": c.name, "version": c.version }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_collector(&self, audit: &Audit, scope: &Scope, device: &DeviceId) -> Result<CollectorRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let d = tx_get_device(&mut *tx, scope, device.as_str()).await?;
        let enrolled: Option<String> =
            sqlx::query_scalar("SELECT device_id FROM agent_credentials WHERE device_id = $1")
                .bind(device.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if enrolled.is_none() {
            return Err(StoreError::invalid("device_id", "the device has no enrolled agent: enroll one at the site first"));
        }
        sqlx::query(
            "INSERT INTO collectors (device_id, partner_id, organization_id, site_id, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO NOTHING",
        )
        .bind(d.id.as_str())
        .bind(d.partner_id.as_str())
        .bind(d.organization_id.as_str())
        .bind(d.site_id.as_str())
        .bind(&audit.actor)
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "collector.add",
            object_kind: "device",
            object_id: d.id.as_str(),
            organization_id: Some(d.organization_id.as_str()),
            payload: json!({ "hostname": d.hostname, "site_id": d.site_id.as_str() }),
        };
        append(&mut tx, audit, a).await?;
        let row = sqlx::query(safe(format!("{COLLECTOR_SELECT} WHERE c.device_id = $1")))
            .bind(d.id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let rec = collector_row(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn remove_collector(&self, audit: &Audit, scope: &Scope, device: &DeviceId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let d = tx_get_device(&mut *tx, scope, device.as_str()).await?;
        let n = sqlx::query("DELETE FROM collectors WHERE device_id = $1").bind(d.id.as_str()).execute(&mut *tx).await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound("collector"));
        }
        let a = Append {
            chain: &scope.partner_id,
            action: "collector.remove",
            object_kind: "device",
            object_id: d.id.as_str(),
            organization_id: Some(d.organization_id.as_str()),
            payload: json!({ "hostname": d.hostname }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_collectors(&self, scope: &Scope) -> Result<Vec<CollectorRecord>> {
        let rows = sqlx::query(safe(format!(
            "{COLLECTOR_SELECT} WHERE c.partner_id = $1 AND ($2 IS NULL OR c.organization_id = $2) ORDER BY d.hostname"
        )))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collector_row).collect()
    }

    async fn collector_seen(&self, device: &DeviceId, now: Timestamp) -> Result<Option<CollectorRecord>> {
        let row = sqlx::query(safe(format!("{COLLECTOR_SELECT} WHERE c.device_id = $1")))
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rec = collector_row(&row)?;
        if rec.last_seen_at.is_none_or(|t| t + jiff::SignedDuration::from_secs(60) <= now) {
            let _w = self.write_guard().await;
            sqlx::query("UPDATE collectors SET last_seen_at = $2 WHERE device_id = $1")
                .bind(device.as_str())
                .bind(us(now))
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(rec))
    }

    async fn create_appliance(&self, audit: &Audit, scope: &Scope, new: &NewAppliance) -> Result<ApplianceRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let rec = tx_create_appliance(&mut tx, audit, scope, new).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_appliances(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &[NewAppliance],
    ) -> Result<Vec<ApplianceRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            out.push(tx_create_appliance(&mut tx, audit, scope, n).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn list_appliances(&self, scope: &Scope, q: &ApplianceQuery) -> Result<Vec<ApplianceRecord>> {
        let sql = format!(
            "{APPLIANCE_SELECT} WHERE a.partner_id = $1 AND ($2 IS NULL OR a.organization_id = $2) \
             AND ($3 IS NULL OR a.organization_id = $3) AND ($4 IS NULL OR a.product = $4) \
             AND ($5 IS NULL OR a.firmware = $5) AND ($6 = FALSE OR a.identified = FALSE) \
             ORDER BY o.name, d.hostname"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(q.organization_id.as_ref().map(OrganizationId::as_str))
            .bind(&q.product)
            .bind(&q.firmware)
            .bind(q.unidentified)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(appliance_row).collect()
    }

    async fn get_appliance(&self, scope: &Scope, device: &DeviceId) -> Result<ApplianceRecord> {
        tx_get_appliance(&self.pool, scope, device.as_str()).await
    }

    async fn lease_polls(
        &self,
        collector: &DeviceId,
        now: Timestamp,
        until: Timestamp,
        limit: i64,
    ) -> Result<Vec<ApplianceRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT device_id FROM appliances WHERE collector_id = $1 AND source = 'snmp' \
             AND credential_id IS NOT NULL AND address IS NOT NULL AND next_poll_at <= $2 \
             AND (leased_until IS NULL OR leased_until <= $2) ORDER BY next_poll_at LIMIT $3",
        )
        .bind(collector.as_str())
        .bind(us(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        // Compare-and-set: a second server leasing the same rows at once takes none of them.
        let taken: Vec<String> = sqlx::query_scalar(safe(format!(
            "UPDATE appliances SET leased_until = $2 WHERE device_id IN (SELECT value FROM {}) \
             AND (leased_until IS NULL OR leased_until <= $3) RETURNING device_id",
            json_texts!(1)
        )))
        .bind(&list)
        .bind(us(until))
        .bind(us(now))
        .fetch_all(&mut *tx)
        .await?;
        let taken_list = serde_json::to_string(&taken).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(safe(format!(
            "{APPLIANCE_SELECT} WHERE a.device_id IN (SELECT value FROM {}) ORDER BY a.next_poll_at",
            json_texts!(1)
        )))
        .bind(&taken_list)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(appliance_row).collect()
    }

    async fn record_polls(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        collector: &DeviceId,
        polls: &[PollRecord],
    ) -> Result<Vec<DeviceId>> {
        if polls.is_empty() {
            return Ok(Vec::new());
        }
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let scope = Scope::partner(partner.clone());
        let mut recorded = Vec::new();
        let mut events = Vec::new();
        for p in polls {
            let before = match tx_get_appliance(&mut *tx, &scope, p.device_id.as_str()).await {
                Ok(b) if b.collector_id.as_ref() == Some(collector) => b,
                Ok(_) | Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let at = us(p.at);
            let ok = p.outcome == "ok";
            sqlx::query(
                "UPDATE appliances SET last_polled_at = $2, last_outcome = $3, last_error = $4, next_poll_at = $5, \
                 leased_until = NULL, last_ok_at = CASE WHEN $6 THEN $2 ELSE last_ok_at END, updated_at = $2 \
                 WHERE device_id = $1",
            )
            .bind(p.device_id.as_str())
            .bind(at)
            .bind(&p.outcome)
            .bind(&p.error)
            .bind(us(p.next_poll_at))
            .bind(ok)
            .execute(&mut *tx)
            .await?;
            let mut changed = before.last_outcome.as_deref() != Some(p.outcome.as_str());
            if let Some(i) = &p.identity {
                let same = before.identity.firmware == i.firmware
                    && before.identity.product == i.product
                    && before.identity.model == i.model
                    && before.identity.identified == i.identified
                    && before.identity.sys_descr == i.sys_descr
                    && before.identity.sys_object_id == i.sys_object_id;
                if !same {
                    changed = true;
                    tx_set_identity(&mut tx, p.device_id.as_str(), i, at).await?;
                    let os = [i.product.as_deref(), i.firmware.as_deref()].into_iter().flatten().collect::<Vec<_>>();
                    sqlx::query("UPDATE devices SET os = $2, updated_at = $3 WHERE id = $1")
                        .bind(p.device_id.as_str())
                        .bind(os.join(" "))
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if changed {
                events.push(OwnedAppend {
                    action: "appliance.polled".into(),
                    object_kind: "appliance",
                    object_id: p.device_id.to_string(),
                    organization_id: Some(before.organization_id.to_string()),
                    payload: json!({
                        "outcome": p.outcome, "error": p.error, "collector_id": collector.as_str(),
                        "firmware_before": before.identity.firmware,
                        "identity": p.identity.as_ref().map(identity_evidence),
                    }),
                });
            }
            recorded.push(p.device_id.clone());
        }
        append_many(&mut tx, audit, partner, events).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn confirm_appliance(
        &self,
        audit: &Audit,
        scope: &Scope,
        device: &DeviceId,
        identity: &ApplianceIdentity,
    ) -> Result<ApplianceRecord> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_appliance(&mut *tx, scope, device.as_str()).await?;
        if before.source != "manual" {
            return Err(StoreError::invalid(
                "device_id",
                "this appliance is polled over SNMP: its firmware comes from the next poll",
            ));
        }
        let at = us(audit.at);
        tx_set_identity(&mut tx, device.as_str(), identity, at).await?;
        sqlx::query(
            "UPDATE appliances SET confirmed_at = $2, confirmed_by = $3, last_ok_at = $2, last_polled_at = $2, \
             last_outcome = 'ok' WHERE device_id = $1",
        )
        .bind(device.as_str())
        .bind(at)
        .bind(&audit.actor)
        .execute(&mut *tx)
        .await?;
        let os = [identity.product.as_deref(), identity.firmware.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        sqlx::query("UPDATE devices SET os = $2, updated_at = $3 WHERE id = $1")
            .bind(device.as_str())
            .bind(os.join(" "))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "appliance.confirmed",
            object_kind: "appliance",
            object_id: device.as_str(),
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "firmware_before": before.identity.firmware, "identity": identity_evidence(identity) }),
        };
        append(&mut tx, audit, a).await?;
        let rec = tx_get_appliance(&mut *tx, scope, device.as_str()).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn set_identity(&self, audit: &Audit, scope: &Scope, device: &DeviceId, identity: &ApplianceIdentity) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_appliance(&mut *tx, scope, device.as_str()).await?;
        tx_set_identity(&mut tx, device.as_str(), identity, us(audit.at)).await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "appliance.identified",
            object_kind: "appliance",
            object_id: device.as_str(),
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "identity": identity_evidence(identity) }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_mapping(&self, audit: &Audit, scope: &Scope, m: &MappingRecord) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO appliance_mappings (id, partner_id, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&m.id)
        .bind(scope.partner_id.as_str())
        .bind(m.body.to_string())
        .bind(&m.created_by)
        .bind(us(m.created_at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "appliance.mapping_create",
            object_kind: "appliance_mapping",
            object_id: &m.id,
            organization_id: None,
            payload: json!({ "mapping": m.body }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_mappings(&self, partner: &PartnerId) -> Result<Vec<MappingRecord>> {
        let rows = sqlx::query(
            "SELECT id, body, created_by, created_at FROM appliance_mappings WHERE partner_id = $1 ORDER BY created_at",
        )
        .bind(partner.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(MappingRecord {
                    id: r.try_get("id")?,
                    body: serde_json::from_str(&body)
                        .map_err(|e| StoreError::Open(format!("a stored appliance mapping does not read: {e}")))?,
                    created_by: r.try_get("created_by")?,
                    created_at: ts(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn create_scan(&self, audit: &Audit, scope: &Scope, s: &ScanRecord) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let ok: Option<String> = sqlx::query_scalar(
            "SELECT device_id FROM collectors WHERE device_id = $1 AND partner_id = $2 AND organization_id = $3",
        )
        .bind(s.collector_id.as_str())
        .bind(scope.partner_id.as_str())
        .bind(s.organization_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if ok.is_none() {
            return Err(StoreError::invalid("collector_id", format!("{} is not a collector of this organization", s.collector_id)));
        }
        sqlx::query(
            "INSERT INTO network_scans (id, partner_id, organization_id, site_id, collector_id, range_text, port, \
             rate_per_sec, credential_ids, status, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&s.id)
        .bind(scope.partner_id.as_str())
        .bind(s.organization_id.as_str())
        .bind(s.site_id.as_str())
        .bind(s.collector_id.as_str())
        .bind(&s.range)
        .bind(i64::from(s.port))
        .bind(i64::from(s.rate_per_sec))
        .bind(serde_json::to_string(&s.credential_ids).unwrap_or_default())
        .bind(&s.status)
        .bind(&s.created_by)
        .bind(us(s.created_at))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &scope.partner_id,
            action: "appliance.scan_requested",
            object_kind: "network_scan",
            object_id: &s.id,
            organization_id: Some(s.organization_id.as_str()),
            payload: json!({ "range": s.range, "port": s.port, "rate_per_sec": s.rate_per_sec, "collector_id": s.collector_id.as_str() }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_scans(&self, scope: &Scope) -> Result<Vec<ScanRecord>> {
        let rows = sqlx::query(safe(format!(
            "SELECT {SCAN_COLS} FROM network_scans WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             ORDER BY created_at DESC LIMIT 200"
        )))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scan_row).collect()
    }

    async fn leased_scan(&self, partner: &PartnerId, collector: &DeviceId, id: &str) -> Result<Option<ScanRecord>> {
        let row = sqlx::query(safe(format!(
            "SELECT {SCAN_COLS} FROM network_scans WHERE partner_id = $1 AND collector_id = $2 AND id = $3 \
             AND status = 'leased'"
        )))
        .bind(partner.as_str())
        .bind(collector.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(scan_row).transpose()
    }

    async fn lease_scans(&self, collector: &DeviceId, now: Timestamp, until: Timestamp) -> Result<Vec<ScanRecord>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE network_scans SET status = 'leased', leased_until = $3, started_at = COALESCE(started_at, $2) \
             WHERE collector_id = $1 AND (status = 'queued' OR (status = 'leased' AND leased_until <= $2)) RETURNING id",
        )
        .bind(collector.as_str())
        .bind(us(now))
        .bind(us(until))
        .fetch_all(&mut *tx)
        .await?;
        let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(safe(format!(
            "SELECT {SCAN_COLS} FROM network_scans WHERE id IN (SELECT value FROM {}) ORDER BY created_at",
            json_texts!(1)
        )))
        .bind(&list)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(scan_row).collect()
    }

    async fn finish_scan(
        &self,
        audit: &Audit,
        partner: &PartnerId,
        collector: &DeviceId,
        id: &str,
        result: &ScanResult,
    ) -> Result<bool> {
        let ScanResult { probed, answered, added, detail } = result;
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let org: Option<String> = sqlx::query_scalar(
            "UPDATE network_scans SET status = 'done', probed = $4, answered = $5, added = $6, detail = $7, \
             finished_at = $8, leased_until = NULL WHERE id = $1 AND partner_id = $2 AND collector_id = $3 \
             AND status = 'leased' RETURNING organization_id",
        )
        .bind(id)
        .bind(partner.as_str())
        .bind(collector.as_str())
        .bind(*probed)
        .bind(*answered)
        .bind(*added)
        .bind(detail)
        .bind(us(audit.at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(org) = org else { return Ok(false) };
        let a = Append {
            chain: partner,
            action: "appliance.scan",
            object_kind: "network_scan",
            object_id: id,
            organization_id: Some(&org),
            payload: json!({ "probed": probed, "answered": answered, "added": added, "detail": detail }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn poll_now(&self, device: &DeviceId, now: Timestamp) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query("UPDATE appliances SET next_poll_at = $2 WHERE device_id = $1 AND source = 'snmp'")
            .bind(device.as_str())
            .bind(us(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_tasks(&self, scope: &Scope, open_only: bool) -> Result<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLS}, t.assignee, t.done_at, t.done_by, t.note, t.reopened, a.vendor, a.product, \
             a.model, a.firmware FROM appliance_tasks t JOIN deployments x ON x.id = t.deployment_id \
             JOIN devices d ON d.id = x.device_id JOIN appliances a ON a.device_id = x.device_id \
             WHERE t.partner_id = $1 AND ($2 IS NULL OR t.organization_id = $2) \
             AND ($3 = FALSE OR x.status IN ('scheduled', 'dispatched', 'installed')) \
             ORDER BY x.window_start, x.id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(open_only)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskRecord {
                    deployment: deployment_row(r)?,
                    assignee: r.try_get("assignee")?,
                    done_at: opt_ts(r.try_get("done_at")?),
                    done_by: r.try_get("done_by")?,
                    note: r.try_get("note")?,
                    reopened: r.try_get("reopened")?,
                    vendor: r.try_get("vendor")?,
                    product: r.try_get("product")?,
                    model: r.try_get("model")?,
                    firmware: r.try_get("firmware")?,
                })
            })
            .collect()
    }

    async fn assign_task(&self, audit: &Audit, scope: &Scope, deployment: &str, assignee: Option<&str>) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "UPDATE appliance_tasks SET assignee = $4 WHERE deployment_id = $1 AND partner_id = $2 \
             AND ($3 IS NULL OR organization_id = $3) RETURNING organization_id, device_id",
        )
        .bind(deployment)
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(assignee)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((org, device)) = row else { return Err(StoreError::NotFound("task")) };
        let a = Append {
            chain: &scope.partner_id,
            action: "appliance.task_assigned",
            object_kind: "appliance",
            object_id: &device,
            organization_id: Some(&org),
            payload: json!({ "deployment_id": deployment, "assignee": assignee }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }
}
