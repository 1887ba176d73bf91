// The SQL implementation of `IntelStore`, shared by both backends like sql_common.rs.

use crate::intel::*;
use std::collections::HashMap;
use ringfence_inventory::{Item, ItemKind, OsInfo};

/// `$N, $N+1, …` for an IN list of `n` values starting at `first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The id of a title: a hash of every field, so equal titles share one row.
fn title_id(item: &Item) -> String {
    use sha2::Digest;
    let key = serde_json::to_string(item).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16])
}

fn title_item(r: &DbRow) -> Result<Item> {
    let kind: String = r.try_get("kind")?;
    Ok(Item {
        kind: ItemKind::parse(&kind)
            .ok_or_else(|| StoreError::Open(format!("stored title kind '{kind}' is unknown")))?,
        manager: r.try_get("manager")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        vendor: r.try_get("vendor")?,
        arch: r.try_get("arch")?,
        source_name: r.try_get("source_name")?,
        source_version: r.try_get("source_version")?,
        cpe: r.try_get("cpe")?,
    })
}

const FINDING_SELECT: &str = "SELECT f.id, f.organization_id, f.device_id, d.hostname, f.cve_id, f.product, \
     f.kind, f.items, f.installed_version, f.fixed_version, f.source, f.rule, f.first_detected, f.last_seen, \
     f.resolved_at, f.resolution FROM findings f JOIN devices d ON d.id = f.device_id";

fn finding_row(r: &DbRow) -> Result<FindingRow> {
    let items: String = r.try_get("items")?;
    Ok(FindingRow {
        id: r.try_get("id")?,
        organization_id: parse_stored(OrganizationId::parse(&r.try_get::<String, _>("organization_id")?))?,
        device_id: parse_stored(DeviceId::parse(&r.try_get::<String, _>("device_id")?))?,
        hostname: r.try_get("hostname")?,
        cve_id: r.try_get("cve_id")?,
        product: r.try_get("product")?,
        kind: r.try_get("kind")?,
        items: serde_json::from_str(&items).unwrap_or_default(),
        installed_version: r.try_get("installed_version")?,
        fixed_version: r.try_get("fixed_version")?,
        source: r.try_get("source")?,
        rule: r.try_get("rule")?,
        first_detected: ts(r.try_get("first_detected")?),
        last_seen: ts(r.try_get("last_seen")?),
        resolved_at: opt_ts(r.try_get("resolved_at")?),
        resolution: r.try_get("resolution")?,
    })
}

fn feed_run_row(r: &DbRow) -> Result<FeedRun> {
    Ok(FeedRun {
        id: r.try_get("id")?,
        feed: r.try_get("feed")?,
        origin: r.try_get("origin")?,
        started_at: ts(r.try_get("started_at")?),
        finished_at: ts(r.try_get("finished_at")?),
        added: r.try_get::<i64, _>("added")? as u64,
        changed: r.try_get::<i64, _>("changed")? as u64,
        unchanged: r.try_get::<i64, _>("unchanged")? as u64,
        skipped: r.try_get::<i64, _>("skipped")? as u64,
        detail: r.try_get("detail")?,
        error: r.try_get("error")?,
    })
}

fn facts_from(r: &DbRow, id: String) -> Result<CveFacts> {
    let kev_added: Option<String> = r.try_get("kev_added")?;
    let kev = match kev_added {
        Some(date_added) => Some(KevFacts {
            date_added,
            due_date: r.try_get("kev_due")?,
            ransomware: r.try_get("kev_ransomware")?,
            required_action: r.try_get("kev_action")?,
        }),
        None => None,
    };
    Ok(CveFacts {
        id,
        status: r.try_get("status")?,
        published: r.try_get("published")?,
        description: r.try_get("description")?,
        cvss_score: r.try_get("cvss_score")?,
        cvss_version: r.try_get("cvss_version")?,
        cvss_vector: r.try_get("cvss_vector")?,
        severity: r.try_get("severity")?,
        kev,
        epss_score: r.try_get("epss_score")?,
        epss_percentile: r.try_get("epss_percentile")?,
    })
}

const FACT_COLS: &str = "c.status, c.published, c.description, c.cvss_score, c.cvss_version, c.cvss_vector, \
     c.severity, k.date_added AS kev_added, k.due_date AS kev_due, k.ransomware AS kev_ransomware, \
     k.required_action AS kev_action, e.score AS epss_score, e.percentile AS epss_percentile";

fn alert_row(r: &DbRow) -> Result<Alert> {
    Ok(Alert {
        id: r.try_get("id")?,
        at: ts(r.try_get("at")?),
        kind: r.try_get("kind")?,
        cve_id: r.try_get("cve_id")?,
        devices: r.try_get("devices")?,
        message: r.try_get("message")?,
        read_at: opt_ts(r.try_get("read_at")?),
    })
}

/// Replaces a device's inventory inside a transaction (see `replace_inventory`).
async fn tx_replace_inventory(
    tx: &mut Tx<'_>,
    audit: &Audit,
    scope: &Scope,
    device: &DeviceId,
    os: &OsInfo,
    titles: &[TitleInput],
) -> Result<InventoryChange> {
    let d = tx_get_device(&mut **tx, scope, device.as_str()).await?;
    lock_row(tx, "devices", device.as_str()).await?;
    let had_os: Option<i64> = sqlx::query_scalar("SELECT updated_at FROM device_os WHERE device_id = $1")
        .bind(device.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let rows = sqlx::query(
        "SELECT t.* FROM device_software ds JOIN software_titles t ON t.id = ds.title_id WHERE ds.device_id = $1",
    )
    .bind(device.as_str())
    .fetch_all(&mut **tx)
    .await?;
    let mut current: std::collections::HashMap<String, Item> = std::collections::HashMap::new();
    for r in &rows {
        current.insert(r.try_get("id")?, title_item(r)?);
    }
    let mut next: std::collections::HashMap<String, &TitleInput> = std::collections::HashMap::new();
    for t in titles {
        next.insert(title_id(&t.item), t);
    }
    let removed: Vec<(&String, &Item)> = current.iter().filter(|(id, _)| !next.contains_key(*id)).collect();
    let added: Vec<(&String, &&TitleInput)> =
        next.iter().filter(|(id, _)| !current.contains_key(*id)).collect();
    let at = us(audit.at);
    // Each statement takes its rows as one JSON array parameter.
    if !added.is_empty() {
        let rows: Vec<serde_json::Value> = added
            .iter()
            .map(|(id, t)| {
                let i = &t.item;
                json!([
                    id,
                    i.kind.as_str(),
                    i.manager,
                    i.name,
                    i.version,
                    i.vendor,
                    i.arch,
                    i.source_name,
                    i.source_version,
                    i.cpe,
                    t.match_key
                ])
            })
            .collect();
        sqlx::query(concat!(
            "INSERT INTO software_titles (id, kind, manager, name, version, vendor, arch, source_name, \
             source_version, cpe, match_key) SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2, \
             e.value ->> 3, e.value ->> 4, e.value ->> 5, e.value ->> 6, e.value ->> 7, e.value ->> 8, \
             e.value ->> 9, e.value ->> 10 FROM ",
            json_rows!(1),
            " AS e WHERE true ON CONFLICT (id) DO NOTHING"
        ))
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut **tx)
        .await?;
        let ids: Vec<&str> = added.iter().map(|(id, _)| id.as_str()).collect();
        sqlx::query(concat!(
            "INSERT INTO device_software (device_id, title_id, partner_id, first_seen) \
             SELECT $1, e.value, $2, $3 FROM ",
            json_texts!(4),
            " AS e"
        ))
        .bind(device.as_str())
        .bind(d.partner_id.as_str())
        .bind(at)
        .bind(json!(ids).to_string())
        .execute(&mut **tx)
        .await?;
    }
    if !removed.is_empty() {
        let ids: Vec<&str> = removed.iter().map(|(id, _)| id.as_str()).collect();
        sqlx::query(concat!(
            "DELETE FROM device_software WHERE device_id = $1 AND title_id IN (SELECT e.value FROM ",
            json_texts!(2),
            " AS e)"
        ))
        .bind(device.as_str())
        .bind(json!(ids).to_string())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO device_os (device_id, partner_id, family, os_id, version, codename, name, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (device_id) DO UPDATE SET family = excluded.family, \
         os_id = excluded.os_id, version = excluded.version, codename = excluded.codename, name = excluded.name, \
         updated_at = excluded.updated_at",
    )
    .bind(device.as_str())
    .bind(d.partner_id.as_str())
    .bind(&os.family)
    .bind(&os.id)
    .bind(&os.version)
    .bind(&os.codename)
    .bind(&os.name)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    // History: an item whose kind, manager, name and architecture stay but whose version
    // changes is an update; the first inventory is the baseline, not a list of installs.
    let identity = |i: &Item| (i.kind, i.manager.clone(), i.name.clone(), i.arch.clone());
    let mut gone: std::collections::HashMap<_, &Item> =
        removed.iter().map(|(_, i)| (identity(i), *i)).collect();
    let mut change = InventoryChange { unchanged: (next.len() - added.len()) as u64, ..Default::default() };
    let mut events: Vec<(&str, &Item, Option<&str>, Option<&str>)> = Vec::new();
    for (_, t) in &added {
        match gone.remove(&identity(&t.item)) {
            Some(old) => {
                change.updated += 1;
                events.push(("updated", &t.item, Some(old.version.as_str()), Some(t.item.version.as_str())));
            }
            None => {
                change.installed += 1;
                events.push(("installed", &t.item, None, Some(t.item.version.as_str())));
            }
        }
    }
    for old in gone.values() {
        change.removed += 1;
        events.push(("removed", old, Some(old.version.as_str()), None));
    }
    if had_os.is_some() {
        for (what, item, from, to) in events {
            sqlx::query(
                "INSERT INTO software_events (id, partner_id, device_id, at, change, kind, name, from_version, \
                 to_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(d.partner_id.as_str())
            .bind(device.as_str())
            .bind(at)
            .bind(what)
            .bind(item.kind.as_str())
            .bind(&item.name)
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
        }
    }
    if had_os.is_none() || change.installed + change.updated + change.removed > 0 {
        let a = Append {
            chain: &d.partner_id,
            action: "inventory.update",
            object_kind: "device",
            object_id: device.as_str(),
            organization_id: Some(d.organization_id.as_str()),
            payload: json!({
                "baseline": had_os.is_none(),
                "items": titles.len(),
                "installed": change.installed,
                "updated": change.updated,
                "removed": change.removed,
            }),
        };
        append(tx, audit, a).await?;
    }
    Ok(change)
}

/// Records a device's findings inside a transaction (see `sync_findings`).
async fn tx_sync_findings(
    tx: &mut Tx<'_>,
    scope: &Scope,
    device: &DeviceId,
    findings: &[NewFinding],
    withdrawn: &[String],
    audit: &Audit,
) -> Result<FindingsChange> {
    let at = audit.at;
    let d = tx_get_device(&mut **tx, scope, device.as_str()).await?;
    lock_row(tx, "devices", device.as_str()).await?;
    let open: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, cve_id, product, kind, first_detected FROM findings WHERE device_id = $1 AND resolved_at IS NULL",
    )
    .bind(device.as_str())
    .fetch_all(&mut **tx)
    .await?;
    let now = us(at);
    let mut change = FindingsChange { open: findings.len() as u64, ..Default::default() };
    // What the evidence event records: each finding opened or resolved by this sync.
    let mut opened: Vec<(String, &str, &str)> = Vec::new();
    let mut resolved: Vec<(&str, &str, &str, i64, &str)> = Vec::new();
    for f in findings {
        let was_open = open.iter().any(|(_, c, p, _, _)| *c == f.cve_id && *p == f.product);
        if !was_open {
            change.new.push(f.cve_id.clone());
        }
        let id: String = sqlx::query_scalar(
            "INSERT INTO findings (id, partner_id, organization_id, device_id, cve_id, product, kind, items, \
             installed_version, fixed_version, source, rule, first_detected, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             ON CONFLICT (device_id, cve_id, product) DO UPDATE SET kind = excluded.kind, \
             items = excluded.items, installed_version = excluded.installed_version, \
             fixed_version = excluded.fixed_version, source = excluded.source, rule = excluded.rule, \
             last_seen = excluded.last_seen, resolved_at = NULL, resolution = NULL RETURNING id",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(d.partner_id.as_str())
        .bind(d.organization_id.as_str())
        .bind(device.as_str())
        .bind(&f.cve_id)
        .bind(&f.product)
        .bind(&f.kind)
        .bind(serde_json::to_string(&f.items).unwrap_or_default())
        .bind(&f.installed_version)
        .bind(&f.fixed_version)
        .bind(&f.source)
        .bind(&f.rule)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        if !was_open {
            opened.push((id, &f.cve_id, &f.product));
        }
    }
    for (id, cve, product, kind, detected) in &open {
        if findings.iter().any(|f| f.cve_id == *cve && f.product == *product) {
            continue;
        }
        let reason = if withdrawn.contains(cve) {
            "advisory withdrawn"
        } else if kind == "os" {
            "updated"
        } else {
            let key = if kind == "package" { format!("pkg:{product}") } else { product.clone() };
            let present: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM device_software ds JOIN software_titles t ON t.id = ds.title_id \
                 WHERE ds.device_id = $1 AND t.match_key = $2",
            )
            .bind(device.as_str())
            .bind(&key)
            .fetch_one(&mut **tx)
            .await?;
            if present > 0 { "updated" } else { "removed" }
        };
        sqlx::query("UPDATE findings SET resolved_at = $2, resolution = $3 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(reason)
            .execute(&mut **tx)
            .await?;
        change.resolved += 1;
        resolved.push((id, cve, product, *detected, reason));
    }
    if !opened.is_empty() || !resolved.is_empty() {
        let cves: Vec<&str> = opened.iter().map(|o| o.1).chain(resolved.iter().map(|r| r.1)).collect();
        let sla = sla_inputs(tx, &cves).await?;
        let facts = |cve: &str| sla.get(cve).cloned().unwrap_or_else(|| ("none".to_owned(), None));
        let opened: Vec<_> = opened
            .iter()
            .map(|(id, cve, product)| {
                let (severity, kev_due) = facts(cve);
                json!({ "finding": id, "cve": cve, "product": product, "severity": severity, "kev_due": kev_due })
            })
            .collect();
        let resolved: Vec<_> = resolved
            .iter()
            .map(|(id, cve, product, detected, reason)| {
                let (severity, kev_due) = facts(cve);
                json!({ "finding": id, "cve": cve, "product": product, "severity": severity,
                    "kev_due": kev_due, "detected_at": detected, "resolution": reason, "deployment": null })
            })
            .collect();
        let a = Append {
            chain: &d.partner_id,
            action: "findings.change",
            object_kind: "device",
            object_id: device.as_str(),
            organization_id: Some(d.organization_id.as_str()),
            payload: json!({ "hostname": d.hostname, "opened": opened, "resolved": resolved }),
        };
        append(tx, audit, a).await?;
    }
    Ok(change)
}

/// Each CVE's severity (lower case, "none" when unscored) and CISA KEV due date: what a
/// finding's remediation deadline is computed from.
async fn sla_inputs(tx: &mut Tx<'_>, cves: &[&str]) -> Result<HashMap<String, (String, Option<String>)>> {
    let mut out: HashMap<String, (String, Option<String>)> = HashMap::new();
    let mut unique: Vec<&str> = cves.to_vec();
    unique.sort_unstable();
    unique.dedup();
    for chunk in unique.chunks(500) {
        let sql = format!(
            "SELECT c.id, c.severity, k.due_date FROM cves c LEFT JOIN kev k ON k.cve_id = c.id \
             WHERE c.id IN ({0}) UNION ALL SELECT k.cve_id, NULL, k.due_date FROM kev k \
             WHERE k.cve_id IN ({0}) AND NOT EXISTS (SELECT 1 FROM cves c WHERE c.id = k.cve_id)",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, Option<String>, Option<String>)>(safe(sql));
        for c in chunk {
            q = q.bind(*c);
        }
        for (id, severity, due) in q.fetch_all(&mut **tx).await? {
            let severity = severity.map(|s| s.to_ascii_lowercase()).unwrap_or_else(|| "none".to_owned());
            out.insert(id, (severity, due));
        }
    }
    Ok(out)
}

/// One report of `write_inventories`: its number checked and recorded, the inventory
/// replaced, the findings synced.
async fn tx_write_inventory(tx: &mut Tx<'_>, w: &InventoryWrite) -> Result<InventoryOutcome> {
    if let Some(r) = &w.report {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT inventory_seq FROM agent_credentials WHERE device_id = $1")
                .bind(w.device.as_str())
                .fetch_optional(&mut **tx)
                .await?;
        let current = current.ok_or(StoreError::NotFound("agent"))?;
        if r.seq <= current {
            return Ok(InventoryOutcome::AlreadyApplied { seq: current });
        }
        if r.delta && r.seq != current + 1 {
            return Ok(InventoryOutcome::Resync { seq: current });
        }
        sqlx::query("UPDATE agent_credentials SET inventory_seq = $2 WHERE device_id = $1")
            .bind(w.device.as_str())
            .bind(r.seq)
            .execute(&mut **tx)
            .await?;
    }
    let change = tx_replace_inventory(tx, &w.audit, &w.scope, &w.device, &w.os, &w.titles).await?;
    let findings = tx_sync_findings(tx, &w.scope, &w.device, &w.findings, &[], &w.audit).await?;
    Ok(InventoryOutcome::Applied { change, findings })
}

#[async_trait]
impl IntelStore for This {
    async fn upsert_cves(&self, rows: &[CveRow], at: Timestamp) -> Result<CveUpsert> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut out = CveUpsert::default();
        // What is stored already, for the whole batch in one query per 500 ids.
        let mut stored: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for chunk in rows.chunks(500) {
            let sql =
                format!("SELECT id, last_modified FROM cves WHERE id IN ({})", placeholders(1, chunk.len()));
            let mut q = sqlx::query_as::<_, (String, String)>(safe(sql));
            for r in chunk {
                q = q.bind(&r.id);
            }
            stored.extend(q.fetch_all(&mut *tx).await?);
        }
        let mut write: Vec<&CveRow> = Vec::with_capacity(rows.len());
        let mut seen = std::collections::HashSet::new();
        for r in rows.iter().rev() {
            // A batch may hold one record twice (an API page overlapping another); the last wins.
            if !seen.insert(r.id.as_str()) {
                continue;
            }
            match stored.get(&r.id) {
                Some(lm) if *lm == r.last_modified => out.counts.unchanged += 1,
                Some(_) => {
                    out.counts.changed += 1;
                    out.changed.push(r.id.clone());
                    write.push(r);
                }
                None => {
                    out.counts.added += 1;
                    out.added.push(r.id.clone());
                    write.push(r);
                }
            }
        }
        for chunk in out.changed.chunks(500) {
            let sql = format!("DELETE FROM cve_products WHERE cve_id IN ({})", placeholders(1, chunk.len()));
            let mut q = sqlx::query(safe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        // Multi-row statements: 12 values per record, 80 records per statement.
        for chunk in write.chunks(80) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * 12 + 1, 12))).collect();
            let sql = format!(
                "INSERT INTO cves (id, status, published, last_modified, description, cvss_score, cvss_version, \
                 cvss_vector, severity, cwes, configurations, imported_at) VALUES {} \
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, published = excluded.published, \
                 last_modified = excluded.last_modified, description = excluded.description, \
                 cvss_score = excluded.cvss_score, cvss_version = excluded.cvss_version, \
                 cvss_vector = excluded.cvss_vector, severity = excluded.severity, cwes = excluded.cwes, \
                 configurations = excluded.configurations, imported_at = excluded.imported_at",
                values.join(", ")
            );
            let mut q = sqlx::query(safe(sql));
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.status)
                    .bind(&r.published)
                    .bind(&r.last_modified)
                    .bind(&r.description)
                    .bind(r.cvss_score)
                    .bind(&r.cvss_version)
                    .bind(&r.cvss_vector)
                    .bind(&r.severity)
                    .bind(&r.cwes)
                    .bind(&r.configurations)
                    .bind(us(at));
            }
            q.execute(&mut *tx).await?;
        }
        let keys: Vec<(&str, &str)> =
            write.iter().flat_map(|r| r.match_keys.iter().map(|k| (r.id.as_str(), k.as_str()))).collect();
        for chunk in keys.chunks(400) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * 2 + 1, 2))).collect();
            let sql = format!(
                "INSERT INTO cve_products (cve_id, match_key) VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(safe(sql));
            for (id, k) in chunk {
                q = q.bind(*id).bind(*k);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn upsert_kev(&self, rows: &[KevRow]) -> Result<UpsertCounts> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut counts = UpsertCounts::default();
        for r in rows {
            let existing: Option<(String, bool, String)> =
                sqlx::query_as("SELECT due_date, ransomware, required_action FROM kev WHERE cve_id = $1")
                    .bind(&r.cve_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match existing {
                Some(e) if e == (r.due_date.clone(), r.ransomware, r.required_action.clone()) => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.changed += 1,
                None => counts.added += 1,
            }
            sqlx::query(
                "INSERT INTO kev (cve_id, vendor, product, name, date_added, due_date, ransomware, required_action, \
                 notes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (cve_id) DO UPDATE SET \
                 vendor = excluded.vendor, product = excluded.product, name = excluded.name, \
                 date_added = excluded.date_added, due_date = excluded.due_date, ransomware = excluded.ransomware, \
                 required_action = excluded.required_action, notes = excluded.notes",
            )
            .bind(&r.cve_id)
            .bind(&r.vendor)
            .bind(&r.product)
            .bind(&r.name)
            .bind(&r.date_added)
            .bind(&r.due_date)
            .bind(r.ransomware)
            .bind(&r.required_action)
            .bind(&r.notes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn upsert_epss(&self, rows: &[EpssRow]) -> Result<UpsertCounts> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut counts = UpsertCounts::default();
        for r in rows {
            let existing: Option<String> =
                sqlx::query_scalar("SELECT score_date FROM epss WHERE cve_id = $1")
                    .bind(&r.cve_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match existing {
                Some(d) if d == r.score_date => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.changed += 1,
                None => counts.added += 1,
            }
            sqlx::query(
                "INSERT INTO epss (cve_id, score, percentile, model_version, score_date) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (cve_id) DO UPDATE SET score = excluded.score, percentile = excluded.percentile, \
                 model_version = excluded.model_version, score_date = excluded.score_date",
            )
            .bind(&r.cve_id)
            .bind(r.score)
            .bind(r.percentile)
            .bind(&r.model_version)
            .bind(&r.score_date)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn upsert_distro(&self, rows: &[DistroRow]) -> Result<UpsertCounts> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut counts = UpsertCounts::default();
        for r in rows {
            let existing: Option<(String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT state, fixed_version, urgency, detail FROM distro_advisories WHERE distro = $1 AND \
                 release = $2 AND package = $3 AND cve_id = $4 AND source = $5",
            )
            .bind(&r.distro)
            .bind(&r.release)
            .bind(&r.package)
            .bind(&r.cve_id)
            .bind(&r.source)
            .fetch_optional(&mut *tx)
            .await?;
            match existing {
                Some(e)
                    if e == (
                        r.state.clone(),
                        r.fixed_version.clone(),
                        r.urgency.clone(),
                        r.detail.clone(),
                    ) =>
                {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.changed += 1,
                None => counts.added += 1,
            }
            sqlx::query(
                "INSERT INTO distro_advisories (distro, release, package, cve_id, source, state, fixed_version, \
                 urgency, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (distro, release, package, cve_id, source) DO UPDATE SET state = excluded.state, \
                 fixed_version = excluded.fixed_version, urgency = excluded.urgency, detail = excluded.detail",
            )
            .bind(&r.distro)
            .bind(&r.release)
            .bind(&r.package)
            .bind(&r.cve_id)
            .bind(&r.source)
            .bind(&r.state)
            .bind(&r.fixed_version)
            .bind(&r.urgency)
            .bind(&r.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn record_feed_run(&self, run: &FeedRun) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "INSERT INTO feed_runs (id, feed, origin, started_at, finished_at, added, changed, unchanged, skipped, \
             detail, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&run.id)
        .bind(&run.feed)
        .bind(&run.origin)
        .bind(us(run.started_at))
        .bind(us(run.finished_at))
        .bind(run.added as i64)
        .bind(run.changed as i64)
        .bind(run.unchanged as i64)
        .bind(run.skipped as i64)
        .bind(&run.detail)
        .bind(&run.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_feed_runs(&self, limit: i64) -> Result<Vec<FeedRun>> {
        let rows = sqlx::query("SELECT * FROM feed_runs ORDER BY started_at DESC, id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(feed_run_row).collect()
    }

    async fn feed_cursor(&self, feed: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT cursor FROM feed_state WHERE feed = $1")
            .bind(feed)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_feed_cursor(&self, feed: &str, cursor: &str, at: Timestamp) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "INSERT INTO feed_state (feed, cursor, updated_at) VALUES ($1, $2, $3) ON CONFLICT (feed) DO UPDATE \
             SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(feed)
        .bind(cursor)
        .bind(us(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn all_cve_configurations(&self) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT id, status, configurations FROM cves WHERE configurations <> '[]'")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn all_distro_rows(&self) -> Result<Vec<DistroRow>> {
        let rows: Vec<(
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        )> = sqlx::query_as(
            "SELECT distro, release, package, cve_id, source, state, fixed_version, urgency, detail \
                 FROM distro_advisories",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(distro, release, package, cve_id, source, state, fixed_version, urgency, detail)| {
                DistroRow { distro, release, package, cve_id, source, state, fixed_version, urgency, detail }
            })
            .collect())
    }

    async fn cve_facts(&self, ids: &[String]) -> Result<Vec<CveFacts>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT x.id AS xid, {FACT_COLS} FROM (SELECT id FROM cves WHERE id IN ({p}) UNION \
                 SELECT cve_id FROM kev WHERE cve_id IN ({p}) UNION SELECT cve_id FROM epss WHERE cve_id IN ({p})) x \
                 LEFT JOIN cves c ON c.id = x.id LEFT JOIN kev k ON k.cve_id = x.id \
                 LEFT JOIN epss e ON e.cve_id = x.id",
                p = placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(safe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                let id: String = r.try_get("xid")?;
                out.push(facts_from(&r, id)?);
            }
        }
        Ok(out)
    }

    async fn match_keys_of(&self, cve_ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in cve_ids.chunks(500) {
            let sql = format!(
                "SELECT match_key FROM cve_products WHERE cve_id IN ({p}) UNION \
                 SELECT 'pkg:' || package FROM distro_advisories WHERE cve_id IN ({p})",
                p = placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_scalar(safe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn intel_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for (label, sql) in [
            ("NVD records", "SELECT COUNT(*) FROM cves"),
            ("KEV entries", "SELECT COUNT(*) FROM kev"),
            ("EPSS scores", "SELECT COUNT(*) FROM epss"),
            ("distro statements", "SELECT COUNT(*) FROM distro_advisories"),
        ] {
            out.push((label.to_string(), sqlx::query_scalar(sql).fetch_one(&self.pool).await?));
        }
        Ok(out)
    }

    async fn replace_inventory(
        &self,
        audit: &Audit,
        scope: &Scope,
        device: &DeviceId,
        os: &OsInfo,
        titles: &[TitleInput],
    ) -> Result<InventoryChange> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let change = tx_replace_inventory(&mut tx, audit, scope, device, os, titles).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn device_inventory(&self, scope: &Scope, device: &DeviceId) -> Result<StoredInventory> {
        tx_get_device(&self.pool, scope, device.as_str()).await?;
        let os: Option<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT family, os_id, version, codename, name, updated_at FROM device_os WHERE device_id = $1",
        )
        .bind(device.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT t.* FROM device_software ds JOIN software_titles t ON t.id = ds.title_id \
             WHERE ds.device_id = $1 ORDER BY t.kind, t.name, t.version",
        )
        .bind(device.as_str())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(title_item).collect::<Result<Vec<_>>>()?;
        Ok(match os {
            Some((family, id, version, codename, name, at)) => StoredInventory {
                os: Some(OsInfo { family, id, version, codename, name }),
                items,
                updated_at: Some(ts(at)),
            },
            None => StoredInventory { os: None, items, updated_at: None },
        })
    }

    async fn software_history(
        &self,
        scope: &Scope,
        device: &DeviceId,
        limit: i64,
    ) -> Result<Vec<SoftwareEvent>> {
        tx_get_device(&self.pool, scope, device.as_str()).await?;
        let rows: Vec<(i64, String, String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT at, change, kind, name, from_version, to_version FROM software_events WHERE device_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(device.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, change, kind, name, from_version, to_version)| SoftwareEvent {
                at: ts(at),
                change,
                kind,
                name,
                from_version,
                to_version,
            })
            .collect())
    }

    async fn devices_with_match_keys(&self, keys: &[String]) -> Result<Vec<(PartnerId, DeviceId)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for chunk in keys.chunks(500) {
            let sql = format!(
                "SELECT DISTINCT ds.partner_id, ds.device_id FROM software_titles t \
                 JOIN device_software ds ON ds.title_id = t.id WHERE t.match_key IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_as(safe(sql));
            for k in chunk {
                q = q.bind(k);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        for (prefix, family) in [("microsoft:windows", "windows"), ("apple:macos", "macos")] {
            if keys.iter().any(|k| k.starts_with(prefix)) {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT partner_id, device_id FROM device_os WHERE family = $1")
                        .bind(family)
                        .fetch_all(&self.pool)
                        .await?;
                out.extend(rows);
            }
        }
        out.sort();
        out.dedup();
        out.into_iter()
            .map(|(p, d)| Ok((parse_stored(PartnerId::parse(&p))?, parse_stored(DeviceId::parse(&d))?)))
            .collect()
    }

    async fn devices_with_inventory(&self) -> Result<Vec<(PartnerId, DeviceId)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT partner_id, device_id FROM device_os ORDER BY partner_id, device_id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(p, d)| Ok((parse_stored(PartnerId::parse(&p))?, parse_stored(DeviceId::parse(&d))?)))
            .collect()
    }

    async fn sync_findings(
        &self,
        scope: &Scope,
        device: &DeviceId,
        findings: &[NewFinding],
        withdrawn: &[String],
        at: Timestamp,
    ) -> Result<FindingsChange> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let audit = Audit::new("system:correlation", at);
        let change = tx_sync_findings(&mut tx, scope, device, findings, withdrawn, &audit).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn write_inventories(&self, batch: &[InventoryWrite]) -> Result<Vec<Result<InventoryOutcome>>> {
        let _w = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for w in batch {
            let mut sp = sqlx::Connection::begin(&mut *tx).await?;
            match tx_write_inventory(&mut sp, w).await {
                Ok(outcome) => {
                    sp.commit().await?;
                    outcomes.push(Ok(outcome));
                }
                Err(e) => {
                    sp.rollback().await?;
                    outcomes.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn list_findings(&self, scope: &Scope, q: &FindingQuery) -> Result<Page<FindingRow>> {
        let filter = "WHERE f.partner_id = $1 AND ($2 IS NULL OR f.organization_id = $2) \
             AND ($3 IS NULL OR f.device_id = $3) AND ($4 IS NULL OR f.cve_id = $4) \
             AND ($5 OR f.resolved_at IS NULL)";
        let total: i64 = sqlx::query_scalar(safe(format!("SELECT COUNT(*) FROM findings f {filter}")))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(q.device_id.as_ref().map(DeviceId::as_str))
            .bind(q.cve_id.as_deref())
            .bind(q.include_resolved)
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "{FINDING_SELECT} {filter} ORDER BY (f.resolved_at IS NOT NULL), f.cve_id DESC, d.hostname, f.product \
             LIMIT $6 OFFSET $7"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(q.device_id.as_ref().map(DeviceId::as_str))
            .bind(q.cve_id.as_deref())
            .bind(q.include_resolved)
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(finding_row).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, limit: q.limit, offset: q.offset })
    }

    async fn vulnerabilities(
        &self,
        scope: &Scope,
        q: &VulnerabilityQuery,
    ) -> Result<Page<VulnerabilitySummary>> {
        let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);
        let with = "WITH v AS (SELECT f.cve_id AS cve_id, COUNT(DISTINCT f.device_id) AS devices, \
             COUNT(DISTINCT f.organization_id) AS orgs, MIN(f.first_detected) AS first_detected, \
             MIN(f.fixed_version) AS fixed_version FROM findings f \
             WHERE f.partner_id = $1 AND ($2 IS NULL OR f.organization_id = $2) \
             AND ($3 IS NULL OR f.organization_id = $3) AND f.resolved_at IS NULL \
             AND ($4 IS NULL OR LOWER(f.cve_id) LIKE $4 ESCAPE '\\' OR LOWER(f.product) LIKE $4 ESCAPE '\\') \
             GROUP BY f.cve_id)";
        let joins = "FROM v LEFT JOIN cves c ON c.id = v.cve_id LEFT JOIN kev k ON k.cve_id = v.cve_id \
             LEFT JOIN epss e ON e.cve_id = v.cve_id WHERE ($5 = FALSE OR k.cve_id IS NOT NULL) \
             AND ($6 IS NULL OR LOWER(c.severity) = $6)";
        let org = q.organization_id.as_ref().map(OrganizationId::as_str);
        let severity = q.severity.as_deref().map(str::to_lowercase);
        let risk = "(k.cve_id IS NOT NULL) DESC, COALESCE(e.score, 0) DESC, COALESCE(c.cvss_score, 0) DESC, v.devices DESC";
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.sort.as_str() {
            "cve" => format!("v.cve_id {dir}"),
            "cvss" => format!("COALESCE(c.cvss_score, 0) {dir}"),
            "epss" => format!("COALESCE(e.score, 0) {dir}"),
            "devices" => format!("v.devices {dir}"),
            "detected" => format!("v.first_detected {dir}"),
            // Risk, most urgent first; ascending turns it round.
            "risk" if !q.descending => risk.replace("DESC", "ASC"),
            _ => risk.to_owned(),
        };
        let total: i64 = sqlx::query_scalar(safe(format!("{with} SELECT COUNT(*) {joins}")))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(org)
            .bind(search.as_deref())
            .bind(q.kev_only)
            .bind(severity.as_deref())
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "{with} SELECT v.cve_id, v.devices, v.orgs, v.first_detected, v.fixed_version, {FACT_COLS} {joins} \
             ORDER BY {order}, v.cve_id DESC LIMIT $7 OFFSET $8"
        );
        let rows = sqlx::query(safe(sql))
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(org)
            .bind(search.as_deref())
            .bind(q.kev_only)
            .bind(severity.as_deref())
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("cve_id")?;
            let products: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT product FROM findings WHERE partner_id = $1 AND ($2 IS NULL OR organization_id = $2) \
                 AND cve_id = $3 AND resolved_at IS NULL ORDER BY product LIMIT 10",
            )
            .bind(scope.partner_id.as_str())
            .bind(org_scope(scope))
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
            items.push(VulnerabilitySummary {
                devices: r.try_get("devices")?,
                organizations: r.try_get("orgs")?,
                first_detected: ts(r.try_get("first_detected")?),
                fixed_version: r.try_get("fixed_version")?,
                products,
                facts: facts_from(r, id)?,
            });
        }
        Ok(Page { items, total, limit: q.limit, offset: q.offset })
    }

    async fn software_titles(
        &self,
        scope: &Scope,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TitleSummary>> {
        let search = search.map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);
        let rows: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT t.kind, t.name, t.version, t.vendor, COUNT(*) AS devices FROM software_titles t \
             JOIN device_software ds ON ds.title_id = t.id JOIN devices d ON d.id = ds.device_id \
             WHERE ds.partner_id = $1 AND ($2 IS NULL OR d.organization_id = $2) \
             AND ($3 IS NULL OR LOWER(t.name) LIKE $3 ESCAPE '\\') \
             GROUP BY t.kind, t.name, t.version, t.vendor ORDER BY t.name, devices DESC, t.version LIMIT $4",
        )
        .bind(scope.partner_id.as_str())
        .bind(org_scope(scope))
        .bind(search.as_deref())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, name, version, vendor, devices)| TitleSummary {
                kind,
                name,
                version,
                vendor,
                devices,
            })
            .collect())
    }

    async fn create_alert(&self, partner: &PartnerId, a: &Alert) -> Result<()> {
        let _w = self.write_guard().await;
        sqlx::query(
            "INSERT INTO alerts (id, partner_id, at, kind, cve_id, devices, message) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(partner.as_str())
        .bind(us(a.at))
        .bind(&a.kind)
        .bind(&a.cve_id)
        .bind(a.devices)
        .bind(&a.message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_alerts(&self, scope: &Scope, limit: i64) -> Result<Vec<Alert>> {
        if scope.organization_id.is_some() {
            // Alerts count devices across the partner's fleet; client-scoped users see the
            // findings of their organization instead.
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT * FROM alerts WHERE partner_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
                .bind(scope.partner_id.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(alert_row).collect()
    }

    async fn count_unread_alerts(&self, scope: &Scope) -> Result<i64> {
        if scope.organization_id.is_some() {
            return Ok(0);
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alerts WHERE partner_id = $1 AND read_at IS NULL")
            .bind(scope.partner_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn mark_alerts_read(&self, scope: &Scope, at: Timestamp) -> Result<u64> {
        if scope.organization_id.is_some() {
            return Ok(0);
        }
        let _w = self.write_guard().await;
        let r = sqlx::query("UPDATE alerts SET read_at = $2 WHERE partner_id = $1 AND read_at IS NULL")
            .bind(scope.partner_id.as_str())
            .bind(us(at))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
