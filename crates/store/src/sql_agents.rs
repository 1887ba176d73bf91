// The SQL implementation of `AgentStore`, shared by both backends like sql_common.rs.

const ENROLLMENT_COLS: &str =
    "id, partner_id, organization_id, site_id, name, created_at, expires_at, max_uses, uses, revoked_at";

fn enrollment_row(r: &DbRow) -> Result<EnrollmentToken> {
    Ok(EnrollmentToken {
        id: parse_stored(EnrollmentTokenId::parse(&r.try_get::<String, _>("id")?))?,
        partner_id: parse_stored(PartnerId::parse(&r.try_get::<String, _>("partner_id")?))?,
        organization_id: parse_stored(OrganizationId::parse(&r.try_get::<String, _>("organization_id")?))?,
        site_id: parse_stored(SiteId::parse(&r.try_get::<String, _>("site_id")?))?,
        name: r.try_get("name")?,
        created_at: ts(r.try_get("created_at")?),
        expires_at: opt_ts(r.try_get("expires_at")?),
        max_uses: r.try_get("max_uses")?,
        uses: r.try_get("uses")?,
        revoked_at: opt_ts(r.try_get("revoked_at")?),
    })
}

async fn tx_get_enrollment<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<EnrollmentToken> {
    let sql = format!(
        "SELECT {ENROLLMENT_COLS} FROM enrollment_tokens WHERE id = $3 AND partner_id = $1 \
         AND ($2 IS NULL OR organization_id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("enrollment token"))?;
    enrollment_row(&row)
}

#[async_trait]
impl AgentStore for This {
    async fn create_enrollment_token(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewEnrollmentToken,
    ) -> Result<EnrollmentToken> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let site = match tx_get_site(&mut *tx, scope, new.site_id.as_str()).await {
            Err(StoreError::NotFound(_)) => {
                return Err(StoreError::invalid("site_id", format!("site {} not found", new.site_id)));
            }
            other => other?,
        };
        let t = EnrollmentToken {
            id: EnrollmentTokenId::generate(),
            partner_id: site.partner_id.clone(),
            organization_id: site.organization_id.clone(),
            site_id: site.id.clone(),
            name: new.name.clone(),
            created_at: audit.at,
            expires_at: new.expires_at,
            max_uses: new.max_uses,
            uses: 0,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, partner_id, organization_id, site_id, name, token_hash, created_at, \
             expires_at, max_uses, uses) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)",
        )
        .bind(t.id.as_str())
        .bind(t.partner_id.as_str())
        .bind(t.organization_id.as_str())
        .bind(t.site_id.as_str())
        .bind(&t.name)
        .bind(&new.token_hash)
        .bind(us(t.created_at))
        .bind(t.expires_at.map(us))
        .bind(t.max_uses)
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &t.partner_id,
            action: "enrollment_token.create",
            object_kind: "enrollment_token",
            object_id: t.id.as_str(),
            organization_id: Some(t.organization_id.as_str()),
            payload: json!({ "after": &t }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(t)
    }

    async fn list_enrollment_tokens(&self, scope: &Scope) -> Result<Vec<EnrollmentToken>> {
        let sql = format!(
            "SELECT {ENROLLMENT_COLS} FROM enrollment_tokens WHERE partner_id = $1 \
             AND ($2 IS NULL OR organization_id = $2) ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(enrollment_row).collect()
    }

    async fn revoke_enrollment_token(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &EnrollmentTokenId,
    ) -> Result<EnrollmentToken> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_enrollment(&mut *tx, scope, id.as_str()).await?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        sqlx::query("UPDATE enrollment_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(us(audit.at))
            .execute(&mut *tx)
            .await?;
        let after = tx_get_enrollment(&mut *tx, scope, id.as_str()).await?;
        let a = Append {
            chain: &after.partner_id,
            action: "enrollment_token.revoke",
            object_kind: "enrollment_token",
            object_id: after.id.as_str(),
            organization_id: Some(after.organization_id.as_str()),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn enroll_device(
        &self,
        audit: &Audit,
        token_hash: &str,
        e: &AgentEnrollment,
    ) -> Result<std::result::Result<Enrolled, EnrollRefusal>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(safe(format!(
            "SELECT {ENROLLMENT_COLS} FROM enrollment_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(Err(EnrollRefusal::Unknown)) };
        let t = enrollment_row(&row)?;
        lock_row(&mut tx, "enrollment_tokens", t.id.as_str()).await?;
        if t.revoked_at.is_some() {
            return Ok(Err(EnrollRefusal::Revoked));
        }
        if t.expires_at.is_some_and(|x| x <= audit.at) {
            return Ok(Err(EnrollRefusal::Expired));
        }
        if t.max_uses.is_some_and(|m| t.uses >= m) {
            return Ok(Err(EnrollRefusal::UsedUp));
        }
        let scope = Scope::organization(t.partner_id.clone(), t.organization_id.clone());
        // A cloned machine usually carries the original's host name too.
        let mut hostname = e.hostname.clone();
        for n in 2..=50 {
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM devices WHERE organization_id = $1 AND LOWER(hostname) = LOWER($2)",
            )
            .bind(t.organization_id.as_str())
            .bind(&hostname)
            .fetch_one(&mut *tx)
            .await?;
            if taken == 0 {
                break;
            }
            hostname = format!("{}-{n}", e.hostname);
        }
        let site = tx_get_site(&mut *tx, &scope, t.site_id.as_str()).await?;
        let new = NewDevice {
            site_id: site.id.clone(),
            hostname,
            role: DeviceRole::Other,
            os: e.os.clone(),
            internet_facing: false,
            holds_sensitive_data: false,
            criticality: Criticality::Medium,
            time_zone: None,
            group_ids: Vec::new(),
        };
        let id = tx_insert_device(&mut tx, &site, &new, audit.at).await?;
        let clone_of: Option<String> = sqlx::query_scalar(
            "SELECT device_id FROM agent_credentials WHERE partner_id = $1 AND machine_id = $2 \
             ORDER BY enrolled_at LIMIT 1",
        )
        .bind(t.partner_id.as_str())
        .bind(&e.machine_id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO agent_credentials (device_id, partner_id, secret_hash, machine_id, enrolled_at, clone_of) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(t.partner_id.as_str())
        .bind(&e.secret_hash)
        .bind(&e.machine_id)
        .bind(us(audit.at))
        .bind(&clone_of)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1")
            .bind(t.id.as_str())
            .execute(&mut *tx)
            .await?;
        let device = tx_get_device(&mut *tx, &scope, id.as_str()).await?;
        let a = Append {
            chain: &t.partner_id,
            action: "agent.enroll",
            object_kind: "device",
            object_id: id.as_str(),
            organization_id: Some(t.organization_id.as_str()),
            payload: json!({ "after": &device, "enrollment_token": t.id, "clone_of": &clone_of }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        let clone_of = clone_of.map(|c| parse_stored(DeviceId::parse(&c))).transpose()?;
        Ok(Ok(Enrolled { device, clone_of }))
    }

    async fn find_agent(&self, secret_hash: &str) -> Result<Option<AgentIdentity>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT c.device_id, c.partner_id, d.organization_id, c.inventory_seq FROM agent_credentials c \
             JOIN devices d ON d.id = c.device_id WHERE c.secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(d, p, o, seq)| {
            Ok(AgentIdentity {
                device_id: parse_stored(DeviceId::parse(&d))?,
                partner_id: parse_stored(PartnerId::parse(&p))?,
                organization_id: parse_stored(OrganizationId::parse(&o))?,
                inventory_seq: seq,
            })
        })
        .transpose()
    }

    async fn agent_checkin(
        &self,
        device: &DeviceId,
        at: Timestamp,
        version: &str,
        reboot_required: bool,
        inventory_refused: Option<&str>,
    ) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "UPDATE agent_credentials SET last_seen = $2, agent_version = $3, reboot_required = $4, \
             inventory_refused = $5 WHERE device_id = $1",
        )
        .bind(device.as_str())
        .bind(us(at))
        .bind(version)
        .bind(reboot_required)
        .bind(inventory_refused)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn agent_presence(&self, scope: &Scope) -> Result<Vec<(DeviceId, Option<Timestamp>)>> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT a.device_id, a.last_seen FROM agent_credentials a JOIN devices d ON d.id = a.device_id \
             WHERE a.partner_id = $1 AND d.partner_id = $1 AND ($2 IS NULL OR d.organization_id = $2)",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(d, seen)| Ok((parse_stored(DeviceId::parse(&d))?, opt_ts(seen)))).collect()
    }

    async fn agent_state(&self, scope: &Scope, device: &DeviceId) -> Result<Option<AgentState>> {
        tx_get_device(&self.pool, scope, device.as_str()).await?;
        type Row = (Option<i64>, Option<String>, bool, i64, Option<String>, Option<String>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT last_seen, agent_version, reboot_required, inventory_seq, clone_of, inventory_refused \
             FROM agent_credentials WHERE device_id = $1",
        )
        .bind(device.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(last_seen, agent_version, reboot_required, inventory_seq, clone_of, inventory_refused)| {
            Ok(AgentState {
                last_seen: opt_ts(last_seen),
                agent_version,
                reboot_required,
                inventory_seq,
                clone_of: clone_of.map(|c| parse_stored(DeviceId::parse(&c))).transpose()?,
                inventory_refused,
                online: false,
            })
        })
        .transpose()
    }

    async fn signing_key(
        &self,
        generate: &(dyn Fn() -> (String, String) + Send + Sync),
    ) -> Result<(String, String)> {
        let read =
            || sqlx::query_as("SELECT private_key, public_key FROM server_keys WHERE name = 'agent-jobs'");
        if let Some(k) = read().fetch_optional(&self.pool).await? {
            return Ok(k);
        }
        let _w = self.write_guard().await;
        let (private, public) = generate();
        // Several servers may start at once: the first key written wins.
        sqlx::query(
            "INSERT INTO server_keys (name, private_key, public_key, created_at) VALUES ('agent-jobs', $1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&private)
        .bind(&public)
        .bind(us(Timestamp::now()))
        .execute(&self.pool)
        .await?;
        Ok(read().fetch_one(&self.pool).await?)
    }

    async fn pin_signing_key(&self, public_hex: &str) -> Result<Option<String>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let held: Option<(String,)> =
            sqlx::query_as("SELECT public_key FROM server_keys WHERE name = 'agent-jobs'")
                .fetch_optional(&mut *tx)
                .await?;
        match held {
            Some((held,)) if held != public_hex => return Ok(Some(held)),
            Some(_) => {
                sqlx::query("UPDATE server_keys SET private_key = '' WHERE name = 'agent-jobs'")
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                // Several servers may start at once: the first key written wins.
                sqlx::query(
                    "INSERT INTO server_keys (name, private_key, public_key, created_at) \
                     VALUES ('agent-jobs', '', $1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(public_hex)
                .bind(us(Timestamp::now()))
                .execute(&mut *tx)
                .await?;
            }
        }
        let (held,): (String,) = sqlx::query_as("SELECT public_key FROM server_keys WHERE name = 'agent-jobs'")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((held != public_hex).then_some(held))
    }
}
