// The SQL implementation of `Store`, shared by the SQLite and PostgreSQL backends.
//
// It is included into `sqlite.rs` and `postgres.rs`, each of which defines `Db` (the sqlx
// database), `This` (the store type with `pool` and `write_guard`), `BACKEND` and the `agg!`
// macro for the one SQL function whose name differs. The SQL text is otherwise identical:
// both databases accept `$N` parameters, BIGINT, BOOLEAN and RETURNING.

use crate::types::*;
use crate::{Audit, Store};
use async_trait::async_trait;
use ringfence_evidence::{Event, EventContent, GENESIS_HASH, event_hash};
use ringfence_model::*;
use serde_json::json;
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;
type Tx<'a> = sqlx::Transaction<'a, Db>;

/// Marks a query text as safe. Every dynamic query in this file is `format!` over the
/// constant column lists and filters above; values always travel as bind parameters.
fn safe(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn ts(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn opt_ts(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(ts)
}

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// Maps a uniqueness violation to a `Conflict` with `message`, other errors unchanged.
fn unique(message: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}

fn parse_stored<T>(value: Result<T, ValueError>) -> Result<T> {
    value.map_err(|e| StoreError::Open(format!("stored value is invalid: {e}")))
}

const PARTNER_COLS: &str = "id, name, created_at, updated_at";

fn partner_row(r: &DbRow) -> Result<Partner> {
    Ok(Partner {
        id: PartnerId::from_stored(r.try_get("id")?),
        name: r.try_get("name")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

const ORG_COLS: &str = "id, partner_id, name, notes, created_at, updated_at";

fn org_row(r: &DbRow) -> Result<Organization> {
    Ok(Organization {
        id: OrganizationId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        name: r.try_get("name")?,
        notes: r.try_get("notes")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

const SITE_COLS: &str = "id, partner_id, organization_id, name, time_zone, address, created_at, updated_at";

fn site_row(r: &DbRow) -> Result<Site> {
    Ok(Site {
        id: SiteId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        organization_id: OrganizationId::from_stored(r.try_get("organization_id")?),
        name: r.try_get("name")?,
        time_zone: r.try_get("time_zone")?,
        address: r.try_get("address")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

const GROUP_SELECT: &str = "SELECT g.id, g.partner_id, g.organization_id, g.name, g.description, \
     g.created_at, g.updated_at, \
     (SELECT COUNT(*) FROM device_group_members m WHERE m.group_id = g.id) AS device_count \
     FROM device_groups g";

fn group_row(r: &DbRow) -> Result<DeviceGroup> {
    Ok(DeviceGroup {
        id: DeviceGroupId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        organization_id: OrganizationId::from_stored(r.try_get("organization_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        device_count: r.try_get("device_count")?,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

const DEVICE_SELECT: &str = concat!(
    "SELECT d.id, d.partner_id, d.organization_id, d.site_id, d.hostname, d.role, d.os, ",
    "d.internet_facing, d.holds_sensitive_data, d.criticality, d.time_zone, ",
    "s.time_zone AS site_time_zone, d.created_at, d.updated_at, ",
    "(SELECT ",
    agg!("m.group_id"),
    " FROM device_group_members m WHERE m.device_id = d.id) AS group_ids ",
    "FROM devices d JOIN sites s ON s.id = d.site_id"
);

/// The device list's WHERE clause with only the filters in use (so the planner can use the
/// indexes), and the values to bind, in the order of their `$N`.
fn device_filter<'a>(
    scope: &'a Scope,
    q: &'a DeviceQuery,
    search: Option<&'a str>,
) -> (String, Vec<&'a str>) {
    let mut sql = String::from(" WHERE d.partner_id = $1");
    let mut binds = vec![scope.partner_id.as_str()];
    let mut add = |clause: &str, value: &'a str| {
        binds.push(value);
        sql.push_str(&clause.replace("$?", &format!("${}", binds.len())));
    };
    if let Some(o) = org_scope(scope) {
        add(" AND d.organization_id = $?", o);
    }
    if let Some(o) = &q.organization_id {
        add(" AND d.organization_id = $?", o.as_str());
    }
    if let Some(s) = &q.site_id {
        add(" AND d.site_id = $?", s.as_str());
    }
    if let Some(g) = &q.group_id {
        add(
            " AND EXISTS (SELECT 1 FROM device_group_members f WHERE f.device_id = d.id AND f.group_id = $?)",
            g.as_str(),
        );
    }
    if let Some(p) = search {
        add(" AND LOWER(d.hostname) LIKE $? ESCAPE '\\'", p);
    }
    (sql, binds)
}

fn device_row(r: &DbRow) -> Result<Device> {
    let own_zone: Option<String> = r.try_get("time_zone")?;
    let site_zone: String = r.try_get("site_time_zone")?;
    let groups: Option<String> = r.try_get("group_ids")?;
    let mut group_ids: Vec<DeviceGroupId> = groups
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| DeviceGroupId::from_stored(s.to_owned()))
        .collect();
    group_ids.sort();
    Ok(Device {
        id: DeviceId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        organization_id: OrganizationId::from_stored(r.try_get("organization_id")?),
        site_id: SiteId::from_stored(r.try_get("site_id")?),
        hostname: r.try_get("hostname")?,
        role: parse_stored(DeviceRole::parse(&r.try_get::<String, _>("role")?))?,
        os: r.try_get("os")?,
        internet_facing: r.try_get("internet_facing")?,
        holds_sensitive_data: r.try_get("holds_sensitive_data")?,
        criticality: parse_stored(Criticality::parse(&r.try_get::<String, _>("criticality")?))?,
        effective_time_zone: own_zone.clone().unwrap_or(site_zone),
        time_zone: own_zone,
        group_ids,
        created_at: ts(r.try_get("created_at")?),
        updated_at: ts(r.try_get("updated_at")?),
    })
}

const USER_COLS: &str = "u.id, u.partner_id, u.organization_id, u.username, u.display_name, \
     u.role, u.disabled, u.created_at";

fn user_row(r: &DbRow) -> Result<User> {
    Ok(User {
        id: UserId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        organization_id: r.try_get::<Option<String>, _>("organization_id")?.map(OrganizationId::from_stored),
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: parse_stored(Role::parse(&r.try_get::<String, _>("role")?))?,
        disabled: r.try_get("disabled")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

const TOKEN_COLS: &str = "t.id, t.partner_id, t.organization_id, t.user_id, t.name, t.role, \
     t.created_at, t.expires_at, t.revoked_at, t.last_used_at";

fn token_row(r: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: TokenId::from_stored(r.try_get("id")?),
        partner_id: PartnerId::from_stored(r.try_get("partner_id")?),
        organization_id: r.try_get::<Option<String>, _>("organization_id")?.map(OrganizationId::from_stored),
        user_id: UserId::from_stored(r.try_get("user_id")?),
        name: r.try_get("name")?,
        role: parse_stored(Role::parse(&r.try_get::<String, _>("role")?))?,
        created_at: ts(r.try_get("created_at")?),
        expires_at: opt_ts(r.try_get("expires_at")?),
        revoked_at: opt_ts(r.try_get("revoked_at")?),
        last_used_at: opt_ts(r.try_get("last_used_at")?),
    })
}

fn event_row(r: &DbRow) -> Result<Event> {
    Ok(Event {
        chain: r.try_get("chain")?,
        seq: r.try_get("seq")?,
        at_micros: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        object_kind: r.try_get("object_kind")?,
        object_id: r.try_get("object_id")?,
        organization_id: r.try_get("organization_id")?,
        payload: r.try_get("payload")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn org_scope(scope: &Scope) -> Option<&str> {
    scope.organization_id.as_ref().map(OrganizationId::as_str)
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One evidence event, appended inside the caller's transaction.
struct Append<'a> {
    chain: &'a PartnerId,
    action: &'a str,
    object_kind: &'a str,
    object_id: &'a str,
    organization_id: Option<&'a str>,
    payload: serde_json::Value,
}

/// Appends to the chain: the chain head is updated first, which takes the write lock that
/// serializes appends to one chain on both backends.
async fn append(tx: &mut Tx<'_>, audit: &Audit, e: Append<'_>) -> Result<i64> {
    let chain = e.chain.as_str();
    let payload = e.payload.to_string();
    let at = us(audit.at);
    let head: Option<(i64, String)> =
        sqlx::query_as("UPDATE chain_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, head_hash")
            .bind(chain)
            .fetch_optional(&mut **tx)
            .await?;
    let (seq, prev) = match head {
        Some(h) => h,
        None => {
            sqlx::query("INSERT INTO chain_heads (chain, seq, head_hash) VALUES ($1, 1, $2)")
                .bind(chain)
                .bind(GENESIS_HASH)
                .execute(&mut **tx)
                .await?;
            (1, GENESIS_HASH.to_owned())
        }
    };
    let content = EventContent {
        chain,
        seq,
        at_micros: at,
        actor: &audit.actor,
        action: e.action,
        object_kind: e.object_kind,
        object_id: e.object_id,
        organization_id: e.organization_id,
        payload: &payload,
    };
    let hash = event_hash(&prev, &content);
    sqlx::query(
        "INSERT INTO evidence_events (chain, seq, at, actor, action, object_kind, object_id, \
         organization_id, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(chain)
    .bind(seq)
    .bind(at)
    .bind(&audit.actor)
    .bind(e.action)
    .bind(e.object_kind)
    .bind(e.object_id)
    .bind(e.organization_id)
    .bind(&payload)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE chain_heads SET head_hash = $2 WHERE chain = $1")
        .bind(chain)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

async fn tx_get_org<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<Organization> {
    let sql = format!(
        "SELECT {ORG_COLS} FROM organizations WHERE id = $3 AND partner_id = $1 AND ($2 IS NULL OR id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("organization"))?;
    org_row(&row)
}

async fn tx_get_site<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<Site> {
    let sql = format!(
        "SELECT {SITE_COLS} FROM sites WHERE id = $3 AND partner_id = $1 AND ($2 IS NULL OR organization_id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("site"))?;
    site_row(&row)
}

async fn tx_get_group<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<DeviceGroup> {
    let sql = format!(
        "{GROUP_SELECT} WHERE g.id = $3 AND g.partner_id = $1 AND ($2 IS NULL OR g.organization_id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("device group"))?;
    group_row(&row)
}

async fn tx_get_device<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<Device> {
    let sql = format!(
        "{DEVICE_SELECT} WHERE d.id = $3 AND d.partner_id = $1 AND ($2 IS NULL OR d.organization_id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("device"))?;
    device_row(&row)
}

/// Inserts a device into a site (for `create_device` and agent enrollment).
async fn tx_insert_device(tx: &mut Tx<'_>, site: &Site, new: &NewDevice, at: Timestamp) -> Result<DeviceId> {
    let id = DeviceId::generate();
    sqlx::query(
        "INSERT INTO devices (id, partner_id, organization_id, site_id, hostname, role, os, \
         internet_facing, holds_sensitive_data, criticality, time_zone, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id.as_str())
    .bind(site.partner_id.as_str())
    .bind(site.organization_id.as_str())
    .bind(site.id.as_str())
    .bind(&new.hostname)
    .bind(new.role.as_str())
    .bind(&new.os)
    .bind(new.internet_facing)
    .bind(new.holds_sensitive_data)
    .bind(new.criticality.as_str())
    .bind(new.time_zone.as_ref().map(TimeZoneName::as_str))
    .bind(us(at))
    .bind(us(at))
    .execute(&mut **tx)
    .await
    .map_err(unique(|| format!("this organization already has a device named '{}'", new.hostname)))?;
    Ok(id)
}

async fn tx_get_user<'e, E: sqlx::Executor<'e, Database = Db>>(
    ex: E,
    scope: &Scope,
    id: &str,
) -> Result<User> {
    let sql = format!(
        "SELECT {USER_COLS} FROM users u WHERE u.id = $3 AND u.partner_id = $1 AND ($2 IS NULL OR u.organization_id = $2)"
    );
    let row = sqlx::query(safe(sql))
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(id)
        .fetch_optional(ex)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    user_row(&row)
}

/// Checks that every group exists in `organization` (and the scope) and sets the device's
/// memberships to exactly those groups.
async fn tx_set_groups(
    tx: &mut Tx<'_>,
    scope: &Scope,
    device: &DeviceId,
    organization: &OrganizationId,
    groups: &[DeviceGroupId],
) -> Result<()> {
    for g in groups {
        let group = match tx_get_group(&mut **tx, scope, g.as_str()).await {
            Ok(g) => g,
            Err(StoreError::NotFound(_)) => {
                return Err(StoreError::invalid("group_ids", format!("device group {g} not found")));
            }
            Err(e) => return Err(e),
        };
        if &group.organization_id != organization {
            return Err(StoreError::invalid(
                "group_ids",
                format!(
                    "device group '{}' belongs to another organization; a device can only join groups of its own organization",
                    group.name
                ),
            ));
        }
    }
    sqlx::query("DELETE FROM device_group_members WHERE device_id = $1")
        .bind(device.as_str())
        .execute(&mut **tx)
        .await?;
    let mut unique_groups: Vec<&DeviceGroupId> = groups.iter().collect();
    unique_groups.sort();
    unique_groups.dedup();
    for g in unique_groups {
        sqlx::query("INSERT INTO device_group_members (group_id, device_id) VALUES ($1, $2)")
            .bind(g.as_str())
            .bind(device.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Locks the row `id` of `table` for the rest of the transaction on PostgreSQL, so that two
/// concurrent read-modify-write updates cannot lose one another's change. (A SQLite write
/// transaction already holds the database's single write lock.)
async fn lock_row(tx: &mut Tx<'_>, table: &'static str, id: &str) -> Result<()> {
    if let Some(sql) = row_lock_sql(table) {
        sqlx::query(safe(sql)).bind(id).fetch_optional(&mut **tx).await?;
    }
    Ok(())
}

async fn count(tx: &mut Tx<'_>, sql: &'static str, id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).bind(id).fetch_one(&mut **tx).await?)
}

#[async_trait]
impl Store for This {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn probe_write(&self) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE store_probe SET probes = probes + 1 WHERE id = 1").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    fn free_space(&self) -> Option<u64> {
        self.free_bytes()
    }

    async fn create_partner(&self, audit: &Audit, name: &Name) -> Result<Partner> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let p = Partner {
            id: PartnerId::generate(),
            name: name.to_string(),
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query("INSERT INTO partners (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(p.id.as_str())
            .bind(&p.name)
            .bind(us(p.created_at))
            .bind(us(p.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(unique(|| format!("a partner named '{name}' already exists")))?;
        let a = Append {
            chain: &p.id,
            action: "partner.create",
            object_kind: "partner",
            object_id: p.id.as_str(),
            organization_id: None,
            payload: json!({ "after": &p }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn list_partners(&self) -> Result<Vec<Partner>> {
        let sql = format!("SELECT {PARTNER_COLS} FROM partners ORDER BY name");
        let rows = sqlx::query(safe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(partner_row).collect()
    }

    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>> {
        let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE name = $1");
        let row = sqlx::query(safe(sql)).bind(name).fetch_optional(&self.pool).await?;
        row.as_ref().map(partner_row).transpose()
    }

    async fn get_partner(&self, scope: &Scope) -> Result<Partner> {
        let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE id = $1");
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("partner"))?;
        partner_row(&row)
    }

    async fn rename_partner(&self, audit: &Audit, scope: &Scope, name: &Name) -> Result<Partner> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "partners", scope.partner_id.as_str()).await?;
        let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE id = $1");
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("partner"))?;
        let before = partner_row(&row)?;
        let after = Partner { name: name.to_string(), updated_at: audit.at, ..before.clone() };
        sqlx::query("UPDATE partners SET name = $2, updated_at = $3 WHERE id = $1")
            .bind(after.id.as_str())
            .bind(&after.name)
            .bind(us(after.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(unique(|| "that name is not available: choose another".to_string()))?;
        let a = Append {
            chain: &after.id,
            action: "partner.update",
            object_kind: "partner",
            object_id: after.id.as_str(),
            organization_id: None,
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_partner(&self, audit: &Audit, id: &PartnerId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE id = $1");
        let row = sqlx::query(safe(sql))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("partner"))?;
        let before = partner_row(&row)?;
        let organizations =
            count(&mut tx, "SELECT COUNT(*) FROM organizations WHERE partner_id = $1", id.as_str()).await?;
        let devices =
            count(&mut tx, "SELECT COUNT(*) FROM devices WHERE partner_id = $1", id.as_str()).await?;
        sqlx::query("DELETE FROM partners WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        // The partner's evidence chain stays: it is the record that the partner existed.
        let a = Append {
            chain: id,
            action: "partner.delete",
            object_kind: "partner",
            object_id: id.as_str(),
            organization_id: None,
            payload: json!({
                "before": &before,
                "removed": { "organizations": organizations, "devices": devices }
            }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_organizations(&self, scope: &Scope) -> Result<Vec<Organization>> {
        let sql = format!(
            "SELECT {ORG_COLS} FROM organizations WHERE partner_id = $1 AND ($2 IS NULL OR id = $2) ORDER BY name"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(org_row).collect()
    }

    async fn get_organization(&self, scope: &Scope, id: &OrganizationId) -> Result<Organization> {
        tx_get_org(&self.pool, scope, id.as_str()).await
    }

    async fn create_organization(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewOrganization,
    ) -> Result<Organization> {
        if scope.organization_id.is_some() {
            return Err(StoreError::NotFound("partner"));
        }
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let org = Organization {
            id: OrganizationId::generate(),
            partner_id: scope.partner_id.clone(),
            name: new.name.to_string(),
            notes: new.notes.clone(),
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(
            "INSERT INTO organizations (id, partner_id, name, notes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org.id.as_str())
        .bind(org.partner_id.as_str())
        .bind(&org.name)
        .bind(&org.notes)
        .bind(us(org.created_at))
        .bind(us(org.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("an organization named '{}' already exists", org.name)))?;
        let a = Append {
            chain: &org.partner_id,
            action: "organization.create",
            object_kind: "organization",
            object_id: org.id.as_str(),
            organization_id: Some(org.id.as_str()),
            payload: json!({ "after": &org }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(org)
    }

    async fn update_organization(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &OrganizationId,
        patch: &OrganizationPatch,
    ) -> Result<Organization> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "organizations", id.as_str()).await?;
        let before = tx_get_org(&mut *tx, scope, id.as_str()).await?;
        let mut after = before.clone();
        if let Some(n) = &patch.name {
            after.name = n.to_string();
        }
        if let Some(n) = &patch.notes {
            after.notes.clone_from(n);
        }
        after.updated_at = audit.at;
        sqlx::query("UPDATE organizations SET name = $2, notes = $3, updated_at = $4 WHERE id = $1")
            .bind(after.id.as_str())
            .bind(&after.name)
            .bind(&after.notes)
            .bind(us(after.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(unique(|| format!("an organization named '{}' already exists", after.name)))?;
        let a = Append {
            chain: &after.partner_id,
            action: "organization.update",
            object_kind: "organization",
            object_id: after.id.as_str(),
            organization_id: Some(after.id.as_str()),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_organization(&self, audit: &Audit, scope: &Scope, id: &OrganizationId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_org(&mut *tx, scope, id.as_str()).await?;
        let sites =
            count(&mut tx, "SELECT COUNT(*) FROM sites WHERE organization_id = $1", id.as_str()).await?;
        let groups =
            count(&mut tx, "SELECT COUNT(*) FROM device_groups WHERE organization_id = $1", id.as_str())
                .await?;
        let devices =
            count(&mut tx, "SELECT COUNT(*) FROM devices WHERE organization_id = $1", id.as_str()).await?;
        let users =
            count(&mut tx, "SELECT COUNT(*) FROM users WHERE organization_id = $1", id.as_str()).await?;
        sqlx::query("DELETE FROM organizations WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let a = Append {
            chain: &before.partner_id,
            action: "organization.delete",
            object_kind: "organization",
            object_id: before.id.as_str(),
            organization_id: Some(before.id.as_str()),
            payload: json!({
                "before": &before,
                "removed": { "sites": sites, "device_groups": groups, "devices": devices, "users": users }
            }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_sites(&self, scope: &Scope, organization: Option<&OrganizationId>) -> Result<Vec<Site>> {
        let sql = format!(
            "SELECT {SITE_COLS} FROM sites WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
             AND ($3 IS NULL OR organization_id = $3) ORDER BY name, id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(organization.map(OrganizationId::as_str))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(site_row).collect()
    }

    async fn get_site(&self, scope: &Scope, id: &SiteId) -> Result<Site> {
        tx_get_site(&self.pool, scope, id.as_str()).await
    }

    async fn create_site(&self, audit: &Audit, scope: &Scope, new: &NewSite) -> Result<Site> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let org = tx_get_org(&mut *tx, scope, new.organization_id.as_str()).await?;
        let site = Site {
            id: SiteId::generate(),
            partner_id: org.partner_id.clone(),
            organization_id: org.id.clone(),
            name: new.name.to_string(),
            time_zone: new.time_zone.to_string(),
            address: new.address.clone(),
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(
            "INSERT INTO sites (id, partner_id, organization_id, name, time_zone, address, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(site.id.as_str())
        .bind(site.partner_id.as_str())
        .bind(site.organization_id.as_str())
        .bind(&site.name)
        .bind(&site.time_zone)
        .bind(&site.address)
        .bind(us(site.created_at))
        .bind(us(site.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("organization '{}' already has a site named '{}'", org.name, site.name)))?;
        let a = Append {
            chain: &site.partner_id,
            action: "site.create",
            object_kind: "site",
            object_id: site.id.as_str(),
            organization_id: Some(site.organization_id.as_str()),
            payload: json!({ "after": &site }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(site)
    }

    async fn update_site(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &SiteId,
        patch: &SitePatch,
    ) -> Result<Site> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "sites", id.as_str()).await?;
        let before = tx_get_site(&mut *tx, scope, id.as_str()).await?;
        let mut after = before.clone();
        if let Some(n) = &patch.name {
            after.name = n.to_string();
        }
        if let Some(z) = &patch.time_zone {
            after.time_zone = z.to_string();
        }
        if let Some(a) = &patch.address {
            after.address.clone_from(a);
        }
        after.updated_at = audit.at;
        sqlx::query(
            "UPDATE sites SET name = $2, time_zone = $3, address = $4, updated_at = $5 WHERE id = $1",
        )
        .bind(after.id.as_str())
        .bind(&after.name)
        .bind(&after.time_zone)
        .bind(&after.address)
        .bind(us(after.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("this organization already has a site named '{}'", after.name)))?;
        let a = Append {
            chain: &after.partner_id,
            action: "site.update",
            object_kind: "site",
            object_id: after.id.as_str(),
            organization_id: Some(after.organization_id.as_str()),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_site(&self, audit: &Audit, scope: &Scope, id: &SiteId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_site(&mut *tx, scope, id.as_str()).await?;
        let devices = count(&mut tx, "SELECT COUNT(*) FROM devices WHERE site_id = $1", id.as_str()).await?;
        sqlx::query("DELETE FROM sites WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let a = Append {
            chain: &before.partner_id,
            action: "site.delete",
            object_kind: "site",
            object_id: before.id.as_str(),
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "before": &before, "removed": { "devices": devices } }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_groups(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
    ) -> Result<Vec<DeviceGroup>> {
        let sql = format!(
            "{GROUP_SELECT} WHERE g.partner_id = $1 AND ($2 IS NULL OR g.organization_id = $2) \
             AND ($3 IS NULL OR g.organization_id = $3) ORDER BY g.name, g.id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(organization.map(OrganizationId::as_str))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(group_row).collect()
    }

    async fn get_group(&self, scope: &Scope, id: &DeviceGroupId) -> Result<DeviceGroup> {
        tx_get_group(&self.pool, scope, id.as_str()).await
    }

    async fn create_group(&self, audit: &Audit, scope: &Scope, new: &NewGroup) -> Result<DeviceGroup> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let org = tx_get_org(&mut *tx, scope, new.organization_id.as_str()).await?;
        let g = DeviceGroup {
            id: DeviceGroupId::generate(),
            partner_id: org.partner_id.clone(),
            organization_id: org.id.clone(),
            name: new.name.to_string(),
            description: new.description.clone(),
            device_count: 0,
            created_at: audit.at,
            updated_at: audit.at,
        };
        sqlx::query(
            "INSERT INTO device_groups (id, partner_id, organization_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(g.id.as_str())
        .bind(g.partner_id.as_str())
        .bind(g.organization_id.as_str())
        .bind(&g.name)
        .bind(&g.description)
        .bind(us(g.created_at))
        .bind(us(g.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("organization '{}' already has a device group named '{}'", org.name, g.name)))?;
        let a = Append {
            chain: &g.partner_id,
            action: "device_group.create",
            object_kind: "device_group",
            object_id: g.id.as_str(),
            organization_id: Some(g.organization_id.as_str()),
            payload: json!({ "after": &g }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(g)
    }

    async fn update_group(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &DeviceGroupId,
        patch: &GroupPatch,
    ) -> Result<DeviceGroup> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "device_groups", id.as_str()).await?;
        let before = tx_get_group(&mut *tx, scope, id.as_str()).await?;
        let mut after = before.clone();
        if let Some(n) = &patch.name {
            after.name = n.to_string();
        }
        if let Some(d) = &patch.description {
            after.description.clone_from(d);
        }
        after.updated_at = audit.at;
        sqlx::query("UPDATE device_groups SET name = $2, description = $3, updated_at = $4 WHERE id = $1")
            .bind(after.id.as_str())
            .bind(&after.name)
            .bind(&after.description)
            .bind(us(after.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(unique(|| {
                format!("this organization already has a device group named '{}'", after.name)
            }))?;
        let a = Append {
            chain: &after.partner_id,
            action: "device_group.update",
            object_kind: "device_group",
            object_id: after.id.as_str(),
            organization_id: Some(after.organization_id.as_str()),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_group(&self, audit: &Audit, scope: &Scope, id: &DeviceGroupId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_group(&mut *tx, scope, id.as_str()).await?;
        sqlx::query("DELETE FROM device_groups WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let a = Append {
            chain: &before.partner_id,
            action: "device_group.delete",
            object_kind: "device_group",
            object_id: before.id.as_str(),
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "before": &before }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_devices(&self, scope: &Scope, q: &DeviceQuery) -> Result<Page<Device>> {
        let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);
        let (filter, binds) = device_filter(scope, q, search.as_deref());
        let mut count = sqlx::query_scalar(safe(format!("SELECT COUNT(*) FROM devices d{filter}")));
        for b in &binds {
            count = count.bind(*b);
        }
        let total: i64 = count.fetch_one(&self.pool).await?;
        let n = binds.len();
        // The page's ids are chosen on the index alone; the details are joined for those rows
        // only, so a deep page does not build the rows it skips.
        let sql = format!(
            "{DEVICE_SELECT} WHERE d.id IN (SELECT d.id FROM devices d{filter} ORDER BY d.hostname, d.id \
             LIMIT ${} OFFSET ${}) ORDER BY d.hostname, d.id",
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(safe(sql));
        for b in &binds {
            query = query.bind(*b);
        }
        let rows = query.bind(q.limit).bind(q.offset).fetch_all(&self.pool).await?;
        let items = rows.iter().map(device_row).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, limit: q.limit, offset: q.offset })
    }

    async fn get_device(&self, scope: &Scope, id: &DeviceId) -> Result<Device> {
        tx_get_device(&self.pool, scope, id.as_str()).await
    }

    async fn list_device_rows(&self, scope: &Scope, q: &DeviceRowQuery) -> Result<Page<DeviceRow>> {
        let search = q.devices.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);
        let (mut filter, binds) = device_filter(scope, &q.devices, search.as_deref());
        // The threshold is the server's own clock reading, never request text.
        let seen = q.seen_since.map_or(0, us);
        match q.presence.as_str() {
            "online" => filter.push_str(&format!(" AND a.last_seen >= {seen}")),
            "offline" => filter.push_str(&format!(
                " AND a.device_id IS NOT NULL AND (a.last_seen IS NULL OR a.last_seen < {seen})"
            )),
            "no_agent" => filter.push_str(" AND a.device_id IS NULL"),
            "" => {}
            other => {
                return Err(StoreError::invalid(
                    "presence",
                    format!("'{other}' is not online, offline or no_agent"),
                ));
            }
        }
        const OPEN: &str = "(SELECT COUNT(*) FROM findings f WHERE f.device_id = d.id AND f.resolved_at IS NULL)";
        const KEV: &str = "(SELECT COUNT(*) FROM findings f JOIN kev k ON k.cve_id = f.cve_id \
                           WHERE f.device_id = d.id AND f.resolved_at IS NULL)";
        let order = match q.sort.as_str() {
            "client" => "o.name",
            "site" => "s.name",
            "os" => "d.os",
            "last_seen" => "COALESCE(a.last_seen, -1)",
            "open" => "open_findings",
            "kev" => "kev_findings",
            _ => "LOWER(d.hostname)",
        };
        let dir = if q.descending { "DESC" } else { "ASC" };
        let from = "FROM devices d JOIN organizations o ON o.id = d.organization_id JOIN sites s ON s.id = d.site_id \
                    LEFT JOIN agent_credentials a ON a.device_id = d.id";
        let mut count = sqlx::query_scalar(safe(format!("SELECT COUNT(*) {from}{filter}")));
        for b in &binds {
            count = count.bind(*b);
        }
        let total: i64 = count.fetch_one(&self.pool).await?;
        let n = binds.len();
        let sql = format!(
            "SELECT d.id, d.hostname, o.name AS organization, s.name AS site, d.role, d.os, d.criticality, \
             a.device_id AS agent, a.last_seen, {OPEN} AS open_findings, {KEV} AS kev_findings \
             {from}{filter} ORDER BY {order} {dir}, d.hostname, d.id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(safe(sql));
        for b in &binds {
            query = query.bind(*b);
        }
        let rows = query.bind(q.devices.limit).bind(q.devices.offset).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(DeviceRow {
                    id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("id")?))?,
                    hostname: r.try_get("hostname")?,
                    organization: r.try_get("organization")?,
                    site: r.try_get("site")?,
                    role: r.try_get("role")?,
                    os: r.try_get("os")?,
                    criticality: r.try_get("criticality")?,
                    has_agent: r.try_get::<Option<String>, _>("agent")?.is_some(),
                    last_seen: opt_ts(r.try_get("last_seen")?),
                    open_findings: r.try_get("open_findings")?,
                    kev_findings: r.try_get("kev_findings")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, limit: q.devices.limit, offset: q.devices.offset })
    }

    async fn create_device(&self, audit: &Audit, scope: &Scope, new: &NewDevice) -> Result<Device> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let site = match tx_get_site(&mut *tx, scope, new.site_id.as_str()).await {
            Err(StoreError::NotFound(_)) => {
                return Err(StoreError::invalid("site_id", format!("site {} not found", new.site_id)));
            }
            other => other?,
        };
        let id = tx_insert_device(&mut tx, &site, new, audit.at).await?;
        tx_set_groups(&mut tx, scope, &id, &site.organization_id, &new.group_ids).await?;
        let device = tx_get_device(&mut *tx, scope, id.as_str()).await?;
        let a = Append {
            chain: &device.partner_id,
            action: "device.create",
            object_kind: "device",
            object_id: device.id.as_str(),
            organization_id: Some(device.organization_id.as_str()),
            payload: json!({ "after": &device }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(device)
    }

    async fn update_device(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &DeviceId,
        patch: &DevicePatch,
    ) -> Result<Device> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "devices", id.as_str()).await?;
        let before = tx_get_device(&mut *tx, scope, id.as_str()).await?;
        let site_id = match &patch.site_id {
            Some(s) => {
                let site = match tx_get_site(&mut *tx, scope, s.as_str()).await {
                    Err(StoreError::NotFound(_)) => {
                        return Err(StoreError::invalid("site_id", format!("site {s} not found")));
                    }
                    other => other?,
                };
                if site.organization_id != before.organization_id {
                    return Err(StoreError::invalid(
                        "site_id",
                        "that site belongs to another organization; a device can only move between sites of its own organization",
                    ));
                }
                site.id
            }
            None => before.site_id.clone(),
        };
        let hostname = patch.hostname.clone().unwrap_or_else(|| before.hostname.clone());
        let time_zone = match &patch.time_zone {
            Some(z) => z.as_ref().map(|z| z.to_string()),
            None => before.time_zone.clone(),
        };
        sqlx::query(
            "UPDATE devices SET site_id = $2, hostname = $3, role = $4, os = $5, internet_facing = $6, \
             holds_sensitive_data = $7, criticality = $8, time_zone = $9, updated_at = $10 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(site_id.as_str())
        .bind(&hostname)
        .bind(patch.role.unwrap_or(before.role).as_str())
        .bind(patch.os.as_ref().unwrap_or(&before.os))
        .bind(patch.internet_facing.unwrap_or(before.internet_facing))
        .bind(patch.holds_sensitive_data.unwrap_or(before.holds_sensitive_data))
        .bind(patch.criticality.unwrap_or(before.criticality).as_str())
        .bind(time_zone.as_deref())
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("this organization already has a device named '{hostname}'")))?;
        if let Some(groups) = &patch.group_ids {
            tx_set_groups(&mut tx, scope, id, &before.organization_id, groups).await?;
        }
        let after = tx_get_device(&mut *tx, scope, id.as_str()).await?;
        let a = Append {
            chain: &after.partner_id,
            action: "device.update",
            object_kind: "device",
            object_id: after.id.as_str(),
            organization_id: Some(after.organization_id.as_str()),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_device(&self, audit: &Audit, scope: &Scope, id: &DeviceId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_device(&mut *tx, scope, id.as_str()).await?;
        sqlx::query("DELETE FROM devices WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let a = Append {
            chain: &before.partner_id,
            action: "device.delete",
            object_kind: "device",
            object_id: before.id.as_str(),
            organization_id: Some(before.organization_id.as_str()),
            payload: json!({ "before": &before }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_users(&self, scope: &Scope) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users u WHERE u.partner_id = $1 AND ($2 IS NULL OR u.organization_id = $2) \
             ORDER BY u.username"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn get_user(&self, scope: &Scope, id: &UserId) -> Result<User> {
        tx_get_user(&self.pool, scope, id.as_str()).await
    }

    async fn create_user(&self, audit: &Audit, scope: &Scope, new: &NewUser) -> Result<User> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let organization_id = match (&new.organization_id, &scope.organization_id) {
            (Some(o), _) => Some(match tx_get_org(&mut *tx, scope, o.as_str()).await {
                Err(StoreError::NotFound(_)) => {
                    return Err(StoreError::invalid(
                        "organization_id",
                        format!("organization {o} not found"),
                    ));
                }
                other => other?.id,
            }),
            (None, Some(o)) => Some(o.clone()),
            (None, None) => None,
        };
        let user = User {
            id: UserId::generate(),
            partner_id: scope.partner_id.clone(),
            organization_id,
            username: new.username.clone(),
            display_name: new.display_name.clone(),
            role: new.role,
            disabled: false,
            created_at: audit.at,
        };
        sqlx::query(
            "INSERT INTO users (id, partner_id, organization_id, username, display_name, role, password_hash, \
             disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.id.as_str())
        .bind(user.partner_id.as_str())
        .bind(user.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(user.role.as_str())
        .bind(&new.password_hash)
        .bind(false)
        .bind(us(audit.at))
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("the username '{}' is already taken", new.username)))?;
        let a = Append {
            chain: &user.partner_id,
            action: "user.create",
            object_kind: "user",
            object_id: user.id.as_str(),
            organization_id: user.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "after": &user }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn update_user(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &UserId,
        patch: &UserPatch,
    ) -> Result<User> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "users", id.as_str()).await?;
        let before = tx_get_user(&mut *tx, scope, id.as_str()).await?;
        let mut after = before.clone();
        if let Some(d) = &patch.display_name {
            after.display_name.clone_from(d);
        }
        if let Some(r) = patch.role {
            after.role = r;
        }
        if let Some(d) = patch.disabled {
            after.disabled = d;
        }
        if let Some(o) = &patch.organization_id {
            after.organization_id = match o {
                Some(o) => Some(match tx_get_org(&mut *tx, scope, o.as_str()).await {
                    Err(StoreError::NotFound(_)) => {
                        return Err(StoreError::invalid(
                            "organization_id",
                            format!("organization {o} not found"),
                        ));
                    }
                    other => other?.id,
                }),
                None if scope.organization_id.is_some() => scope.organization_id.clone(),
                None => None,
            };
        }
        sqlx::query(
            "UPDATE users SET display_name = $2, role = $3, disabled = $4, organization_id = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(&after.display_name)
        .bind(after.role.as_str())
        .bind(after.disabled)
        .bind(after.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(us(audit.at))
        .execute(&mut *tx)
        .await?;
        if let Some(hash) = &patch.password_hash {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        if after.disabled || patch.password_hash.is_some() || after.role != before.role {
            // A changed password, role or a disabled account ends every open session.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if after.role != before.role || after.organization_id != before.organization_id {
            // Tokens were bound to the old role and scope; they must not outlive them.
            sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(id.as_str())
                .bind(us(audit.at))
                .execute(&mut *tx)
                .await?;
        }
        let a = Append {
            chain: &after.partner_id,
            action: "user.update",
            object_kind: "user",
            object_id: after.id.as_str(),
            // A move between organizations is a partner-level event: neither organization's
            // auditors should see the other's side of it.
            organization_id: if before.organization_id == after.organization_id {
                after.organization_id.as_ref().map(OrganizationId::as_str)
            } else {
                None
            },
            payload: json!({
                "before": &before,
                "after": &after,
                "password_changed": patch.password_hash.is_some()
            }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn delete_user(&self, audit: &Audit, scope: &Scope, id: &UserId) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let before = tx_get_user(&mut *tx, scope, id.as_str()).await?;
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let a = Append {
            chain: &before.partner_id,
            action: "user.delete",
            object_kind: "user",
            object_id: before.id.as_str(),
            organization_id: before.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "before": &before }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_login(&self, username: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = $1");
        let row = sqlx::query(safe(sql)).bind(username).fetch_optional(&self.pool).await?;
        match row {
            Some(r) => Ok(Some((user_row(&r)?, r.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_hash)
        .bind(s.user_id.as_str())
        .bind(&s.csrf_token)
        .bind(us(s.created_at))
        .bind(us(s.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<(User, String)>> {
        let sql = format!(
            "SELECT {USER_COLS}, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled = FALSE"
        );
        let row = sqlx::query(safe(sql)).bind(id_hash).bind(us(now)).fetch_optional(&self.pool).await?;
        match row {
            Some(r) => Ok(Some((user_row(&r)?, r.try_get("csrf_token")?))),
            None => Ok(None),
        }
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let _w = self.write_guard().await;
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(us(now))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn create_token(&self, audit: &Audit, scope: &Scope, new: &NewToken) -> Result<ApiToken> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let owner = tx_get_user(&mut *tx, scope, new.user_id.as_str()).await?;
        let organization_id = match (&new.organization_id, &scope.organization_id) {
            (Some(o), _) => Some(match tx_get_org(&mut *tx, scope, o.as_str()).await {
                Err(StoreError::NotFound(_)) => {
                    return Err(StoreError::invalid(
                        "organization_id",
                        format!("organization {o} not found"),
                    ));
                }
                other => other?.id,
            }),
            (None, Some(o)) => Some(o.clone()),
            (None, None) => None,
        };
        // A token of a user limited to one organization is limited to it as well.
        let organization_id = match (organization_id, &owner.organization_id) {
            (None, Some(o)) => Some(o.clone()),
            (Some(t), Some(o)) if &t != o => {
                return Err(StoreError::invalid(
                    "organization_id",
                    "the token's owner is limited to another organization",
                ));
            }
            (t, _) => t,
        };
        let t = ApiToken {
            id: TokenId::generate(),
            partner_id: owner.partner_id.clone(),
            organization_id,
            user_id: owner.id.clone(),
            name: new.name.clone(),
            role: new.role,
            created_at: audit.at,
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, partner_id, organization_id, user_id, name, role, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t.id.as_str())
        .bind(t.partner_id.as_str())
        .bind(t.organization_id.as_ref().map(OrganizationId::as_str))
        .bind(t.user_id.as_str())
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&new.token_hash)
        .bind(us(t.created_at))
        .bind(t.expires_at.map(us))
        .execute(&mut *tx)
        .await?;
        let a = Append {
            chain: &t.partner_id,
            action: "api_token.create",
            object_kind: "api_token",
            object_id: t.id.as_str(),
            organization_id: t.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "after": &t }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(t)
    }

    async fn list_tokens(&self, scope: &Scope) -> Result<Vec<ApiToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.partner_id = $1 AND ($2 IS NULL OR (t.organization_id = $2 AND u.organization_id = $2)) \
             ORDER BY t.created_at, t.id"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, audit: &Audit, scope: &Scope, id: &TokenId) -> Result<ApiToken> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        lock_row(&mut tx, "api_tokens", id.as_str()).await?;
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $3 \
             AND t.partner_id = $1 AND ($2 IS NULL OR (t.organization_id = $2 AND u.organization_id = $2))"
        );
        let row = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("API token"))?;
        let before = token_row(&row)?;
        if before.revoked_at.is_some() {
            tx.commit().await?;
            return Ok(before);
        }
        let after = ApiToken { revoked_at: Some(audit.at), ..before.clone() };
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(us(audit.at))
            .execute(&mut *tx)
            .await?;
        let a = Append {
            chain: &after.partner_id,
            action: "api_token.revoke",
            object_kind: "api_token",
            object_id: after.id.as_str(),
            organization_id: after.organization_id.as_ref().map(OrganizationId::as_str),
            payload: json!({ "before": &before, "after": &after }),
        };
        append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn find_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<ApiToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLS}, u.role AS owner_role, u.organization_id AS owner_organization_id \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
             AND u.disabled = FALSE"
        );
        let row = sqlx::query(safe(sql)).bind(token_hash).bind(us(now)).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_row(&row)?;
        // A token never acts beyond its owner as the owner is now: a token minted just before
        // its owner was demoted or narrowed to one organization stops working.
        let owner_role = parse_stored(Role::parse(&row.try_get::<String, _>("owner_role")?))?;
        let owner_org: Option<String> = row.try_get("owner_organization_id")?;
        let within_scope = match (&owner_org, &token.organization_id) {
            (None, _) => true,
            (Some(o), Some(t)) => o == t.as_str(),
            (Some(_), None) => false,
        };
        if !owner_role.may_grant(token.role) || !within_scope {
            return Ok(None);
        }
        // Last use is kept to the minute, so a busy script does not write on every request.
        let stale = token.last_used_at.is_none_or(|t| us(now) - us(t) > 60_000_000);
        if stale {
            let _w = self.write_guard().await;
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(token.id.as_str())
                .bind(us(now))
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    async fn count_login_failures(&self, key: &str, since: Timestamp) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1 AND at > $2")
            .bind(key)
            .bind(us(since))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn record_login_failure(&self, key: &str, at: Timestamp) -> Result<()> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO login_failures (throttle_key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(us(at))
            .execute(&mut *tx)
            .await?;
        // Failures older than a day no longer count for anything.
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(us(at) - 86_400_000_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_event(&self, audit: &Audit, scope: &Scope, e: &EventRecord) -> Result<i64> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let a = Append {
            chain: &scope.partner_id,
            action: &e.action,
            object_kind: &e.object_kind,
            object_id: &e.object_id,
            organization_id: e.organization_id.as_ref().map(OrganizationId::as_str),
            payload: e.payload.clone(),
        };
        let seq = append(&mut tx, audit, a).await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn list_events(
        &self,
        chain: &str,
        organization: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT chain, seq, at, actor, action, object_kind, object_id, organization_id, payload, prev_hash, hash \
             FROM evidence_events WHERE chain = $1 AND ($2 IS NULL OR organization_id = $2) AND seq > $3 \
             ORDER BY seq LIMIT $4",
        )
        .bind(chain)
        .bind(organization)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn event_chains(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT chain FROM evidence_events ORDER BY chain")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn chain_heads(&self) -> Result<Vec<(String, i64, String)>> {
        Ok(sqlx::query_as("SELECT chain, seq, head_hash FROM chain_heads ORDER BY chain")
            .fetch_all(&self.pool)
            .await?)
    }
}
