//! Inventories and findings: a device's software goes in, its findings come out, and the
//! fleet views read them back, all within the caller's scope.

use crate::intel::{ImportSummary, item_match_key, load_index};
use crate::tenancy::path_id;
use crate::{Engine, EngineError, Result, require, require_partner_wide};
use ringfence_inventory::Inventory;
use ringfence_matcher::{Correlator, Coverage, Index};
use ringfence_model::*;
use ringfence_store::{
    Alert, CveFacts, FeedRun, FindingQuery, FindingRow, FindingsChange, InventoryChange, InventoryOutcome,
    InventoryWrite, NewFinding, Page, ReportSeq, SoftwareEvent, StoredInventory, TitleInput, TitleSummary,
    VulnerabilityQuery, VulnerabilitySummary,
};
use serde::Serialize;
use std::sync::Arc;

/// Limits on an inventory report, so one device cannot fill the database.
pub const MAX_ITEMS: usize = 20_000;
const MAX_FIELD: usize = 512;

/// What submitting an inventory did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryReport {
    pub change: InventoryChange,
    pub findings: FindingsChange,
    pub coverage: CoverageReport,
}

/// What could not be matched, so nobody mistakes "no findings" for "no data".
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CoverageReport {
    pub packages_without_distro_data: usize,
    pub missing_distro: Option<String>,
    pub untranslated_programs: usize,
    /// Programs whose vendor and product no NVD record names: not checked.
    pub unknown_products: usize,
    pub unordered_versions: usize,
}

impl From<Coverage> for CoverageReport {
    fn from(c: Coverage) -> Self {
        CoverageReport {
            packages_without_distro_data: c.packages_without_distro_data,
            missing_distro: c.missing_distro,
            untranslated_programs: c.untranslated,
            unknown_products: c.unknown_products,
            unordered_versions: c.unordered_versions,
        }
    }
}

/// What a correlation pass over several devices did.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CorrelationReport {
    pub devices: u64,
    pub new_findings: u64,
    pub resolved: u64,
    pub alerts: u64,
}

fn check_field(field: &'static str, value: &str, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(ValueError::new(field, "must not be empty").into());
    }
    if value.len() > MAX_FIELD {
        return Err(ValueError::new(field, format!("is longer than {MAX_FIELD} bytes")).into());
    }
    if value.chars().any(char::is_control) {
        return Err(ValueError::new(field, "must not contain control characters").into());
    }
    Ok(())
}

/// Checks an inventory from outside before anything is stored.
pub fn validate_inventory(inv: &Inventory) -> Result<()> {
    if inv.items.len() > MAX_ITEMS {
        return Err(ValueError::new(
            "items",
            format!("{} items is more than the {MAX_ITEMS} one inventory may hold", inv.items.len()),
        )
        .into());
    }
    if !matches!(inv.os.family.as_str(), "linux" | "windows" | "macos" | "network" | "") {
        return Err(
            ValueError::new("os.family", "must be linux, windows, macos or network (an appliance)").into()
        );
    }
    for (f, v) in [("os.id", &inv.os.id), ("os.version", &inv.os.version), ("os.name", &inv.os.name)] {
        check_field(f, v, false)?;
    }
    for item in &inv.items {
        check_field("items.name", &item.name, true)?;
        check_field("items.version", &item.version, true)?;
        for v in [&item.manager, &item.vendor, &item.arch, &item.source_name, &item.source_version, &item.cpe]
            .into_iter()
            .flatten()
        {
            check_field("items", v, false)?;
        }
    }
    Ok(())
}

fn new_findings(findings: Vec<ringfence_matcher::Finding>) -> Vec<NewFinding> {
    findings
        .into_iter()
        .map(|f| NewFinding {
            cve_id: f.cve_id,
            product: f.product,
            kind: f.kind.as_str().to_string(),
            items: f.items,
            installed_version: f.installed_version,
            fixed_version: f.fixed_version,
            source: f.source,
            rule: f.rule,
        })
        .collect()
}

impl Engine {
    /// The match index, built from the store on first use.
    pub async fn index(&self) -> Result<Arc<Index>> {
        if let Some(i) = self.intel.read().await.as_ref() {
            return Ok(i.clone());
        }
        self.reload_index().await
    }

    /// Rebuilds the match index (after an import).
    pub async fn reload_index(&self) -> Result<Arc<Index>> {
        let mut slot = self.intel.write().await;
        let index = Arc::new(load_index(self.store.as_ref()).await?);
        *slot = Some(index.clone());
        *self.titles.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(index)
    }

    /// Matches an inventory with the shared title cache of `index`.
    fn match_cached(
        &self,
        index: &Arc<Index>,
        inv: &Inventory,
    ) -> (Vec<ringfence_matcher::Finding>, Coverage) {
        /// Past this many cached titles the cache starts over (memory bound).
        const MAX_TITLES: usize = 1_000_000;
        let mut slot = self.titles.lock().unwrap_or_else(|p| p.into_inner());
        let stale = slot
            .as_ref()
            .is_none_or(|c| !std::ptr::eq(c.index(), index.as_ref()) || c.titles_evaluated() > MAX_TITLES);
        if stale {
            *slot = Some(Correlator::new(index.clone()));
        }
        slot.as_mut().map(|c| c.device(inv)).unwrap_or_default()
    }

    /// Replaces a device's inventory and correlates it at once.
    pub async fn submit_inventory(
        &self,
        p: &Principal,
        device: &str,
        inv: Inventory,
    ) -> Result<InventoryReport> {
        require(p, Permission::WriteTenancy, "report inventories")?;
        let device = &path_id(DeviceId::parse, device, "device")?;
        self.store_inventory(&self.audit(p), &p.scope(), device, &inv).await
    }

    /// Validates, stores and correlates an inventory (for a person's upload or an agent's).
    pub(crate) async fn store_inventory(
        &self,
        audit: &ringfence_store::Audit,
        scope: &Scope,
        device: &DeviceId,
        inv: &Inventory,
    ) -> Result<InventoryReport> {
        let (write, coverage) = self.inventory_write(audit, scope, device, inv, None).await?;
        match self.write_inventory(write).await? {
            InventoryOutcome::Applied { change, findings } => {
                Ok(InventoryReport { change, findings, coverage: coverage.into() })
            }
            other => Err(EngineError::Conflict(format!("the inventory was not written: {other:?}"))),
        }
    }

    /// Validates and correlates an inventory into a write for `write_inventory`.
    pub(crate) async fn inventory_write(
        &self,
        audit: &ringfence_store::Audit,
        scope: &Scope,
        device: &DeviceId,
        inv: &Inventory,
        report: Option<ReportSeq>,
    ) -> Result<(InventoryWrite, Coverage)> {
        validate_inventory(inv)?;
        let index = self.index().await?;
        let titles: Vec<TitleInput> = inv
            .items
            .iter()
            .map(|i| TitleInput { match_key: item_match_key(&index.table, i), item: i.clone() })
            .collect();
        let (findings, coverage) = self.match_cached(&index, inv);
        let write = InventoryWrite {
            audit: audit.clone(),
            scope: scope.clone(),
            device: device.clone(),
            os: inv.os.clone(),
            titles,
            findings: new_findings(findings),
            report,
        };
        Ok((write, coverage))
    }

    /// Correlates one device again with the current index (system action).
    async fn correlate_device(
        &self,
        index: &Arc<Index>,
        partner: &PartnerId,
        device: &DeviceId,
        withdrawn: &[String],
    ) -> Result<FindingsChange> {
        let scope = Scope::partner(partner.clone());
        let stored = self.store.device_inventory(&scope, device).await?;
        let Some(os) = stored.os else { return Ok(FindingsChange::default()) };
        let inv = Inventory { os, items: stored.items };
        let (findings, _) = self.match_cached(index, &inv);
        Ok(self.store.sync_findings(&scope, device, &new_findings(findings), withdrawn, self.now()).await?)
    }

    /// After a feed import: rebuilds the index and correlates only the devices holding
    /// titles the imported records touch; raises an alert per partner for every new CVE
    /// or new KEV entry that now has findings.
    pub async fn correlate_after_import(&self, summaries: &[ImportSummary]) -> Result<CorrelationReport> {
        let index = self.reload_index().await?;
        let mut touched: Vec<String> = summaries.iter().flat_map(|s| s.touched.iter().cloned()).collect();
        let withdrawn: Vec<String> = summaries.iter().flat_map(|s| s.withdrawn.iter().cloned()).collect();
        let kev_added: Vec<String> = summaries.iter().flat_map(|s| s.kev_added.iter().cloned()).collect();
        let new_cves: Vec<String> = summaries.iter().flat_map(|s| s.new_cves.iter().cloned()).collect();
        touched.extend(kev_added.iter().cloned());
        touched.sort();
        touched.dedup();
        let mut report = CorrelationReport::default();
        if touched.is_empty() {
            return Ok(report);
        }
        let keys = self.store.match_keys_of(&touched).await?;
        let mut devices = self.store.devices_with_match_keys(&keys).await?;
        if !withdrawn.is_empty() {
            // Devices with open findings of withdrawn records are in the list by their keys
            // only if the record still names them; a rejected record names none.
            devices.extend(self.store.devices_with_inventory().await?);
            devices.sort();
            devices.dedup();
        }
        let mut per_partner: std::collections::BTreeMap<PartnerId, std::collections::BTreeMap<String, i64>> =
            Default::default();
        for (partner, device) in &devices {
            let change = self.correlate_device(&index, partner, device, &withdrawn).await?;
            report.devices += 1;
            report.new_findings += change.new.len() as u64;
            report.resolved += change.resolved;
            for cve in change.new {
                if new_cves.contains(&cve) || kev_added.contains(&cve) {
                    *per_partner.entry(partner.clone()).or_default().entry(cve).or_default() += 1;
                }
            }
        }
        for (partner, cves) in per_partner {
            for (cve, n) in cves {
                let kind = if kev_added.contains(&cve) { "kev_added" } else { "new_cve" };
                let message = if kind == "kev_added" {
                    format!("{cve} was added to CISA KEV and affects {n} of your devices")
                } else {
                    format!("{cve} is newly published and affects {n} of your devices")
                };
                let alert = Alert {
                    id: uuid::Uuid::now_v7().to_string(),
                    at: self.now(),
                    kind: kind.into(),
                    cve_id: cve,
                    devices: n,
                    message,
                    read_at: None,
                };
                self.store.create_alert(&partner, &alert).await?;
                report.alerts += 1;
                self.notify(&partner, &alert).await;
            }
        }
        Ok(report)
    }

    /// Correlates every device with an inventory (the first run after a full import).
    pub async fn correlate_all(&self) -> Result<CorrelationReport> {
        let index = self.reload_index().await?;
        let mut report = CorrelationReport::default();
        for (partner, device) in self.store.devices_with_inventory().await? {
            let change = self.correlate_device(&index, &partner, &device, &[]).await?;
            report.devices += 1;
            report.new_findings += change.new.len() as u64;
            report.resolved += change.resolved;
        }
        Ok(report)
    }

    pub async fn device_inventory(&self, p: &Principal, device: &str) -> Result<StoredInventory> {
        require(p, Permission::Read, "read inventories")?;
        let device = &path_id(DeviceId::parse, device, "device")?;
        Ok(self.store.device_inventory(&p.scope(), device).await?)
    }

    pub async fn software_history(
        &self,
        p: &Principal,
        device: &str,
        limit: i64,
    ) -> Result<Vec<SoftwareEvent>> {
        require(p, Permission::Read, "read software history")?;
        let device = &path_id(DeviceId::parse, device, "device")?;
        Ok(self.store.software_history(&p.scope(), device, limit.clamp(1, 1000)).await?)
    }

    pub async fn findings(&self, p: &Principal, mut q: FindingQuery) -> Result<Page<FindingRow>> {
        require(p, Permission::Read, "read findings")?;
        q.limit = q.limit.clamp(1, 500);
        q.offset = q.offset.max(0);
        if let Some(c) = &q.cve_id {
            q.cve_id = Some(parse_cve_id(c)?);
        }
        Ok(self.store.list_findings(&p.scope(), &q).await?)
    }

    pub async fn vulnerabilities(
        &self,
        p: &Principal,
        mut q: VulnerabilityQuery,
    ) -> Result<Page<VulnerabilitySummary>> {
        require(p, Permission::Read, "read vulnerabilities")?;
        q.limit = q.limit.clamp(1, 500);
        q.offset = q.offset.max(0);
        if q.search.as_ref().is_some_and(|s| s.len() > 200) {
            return Err(ValueError::new("search", "is longer than 200 characters").into());
        }
        if let Some(s) = q.severity.as_deref()
            && !["critical", "high", "medium", "low"].contains(&s)
        {
            return Err(
                ValueError::new("severity", format!("'{s}' is not critical, high, medium or low")).into()
            );
        }
        Ok(self.store.vulnerabilities(&p.scope(), &q).await?)
    }

    /// One CVE: what is known of it and the caller's devices it affects.
    pub async fn vulnerability(&self, p: &Principal, cve: &str) -> Result<(CveFacts, Page<FindingRow>)> {
        require(p, Permission::Read, "read vulnerabilities")?;
        let id = parse_cve_id(cve)?;
        let facts = self.store.cve_facts(std::slice::from_ref(&id)).await?.into_iter().next();
        let q = FindingQuery {
            cve_id: Some(id.clone()),
            include_resolved: true,
            limit: 500,
            ..Default::default()
        };
        let findings = self.store.list_findings(&p.scope(), &q).await?;
        match facts {
            Some(f) => Ok((f, findings)),
            None if findings.total > 0 => Ok((CveFacts { id, ..Default::default() }, findings)),
            None => Err(EngineError::NotFound("CVE")),
        }
    }

    pub async fn software(
        &self,
        p: &Principal,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TitleSummary>> {
        require(p, Permission::Read, "read software")?;
        Ok(self.store.software_titles(&p.scope(), search, limit.clamp(1, 1000)).await?)
    }

    /// How many alerts the caller has not read yet (the badge beside "Alerts").
    pub async fn unread_alerts(&self, p: &Principal) -> Result<i64> {
        require(p, Permission::Read, "read alerts")?;
        Ok(self.store.count_unread_alerts(&p.scope()).await?)
    }

    pub async fn alerts(&self, p: &Principal) -> Result<Vec<Alert>> {
        require(p, Permission::Read, "read alerts")?;
        Ok(self.store.list_alerts(&p.scope(), 100).await?)
    }

    pub async fn mark_alerts_read(&self, p: &Principal) -> Result<u64> {
        require(p, Permission::Read, "read alerts")?;
        require_partner_wide(p, "acknowledge partner alerts")?;
        Ok(self.store.mark_alerts_read(&p.scope(), self.now()).await?)
    }

    /// The state of the feeds: recent runs and how much is stored.
    pub async fn feed_status(&self, p: &Principal) -> Result<(Vec<FeedRun>, Vec<(String, i64)>)> {
        require(p, Permission::Read, "read feed status")?;
        Ok((self.store.list_feed_runs(50).await?, self.store.intel_counts().await?))
    }

    /// Logs an alert and POSTs it to the installation's webhook, when one is configured. The
    /// post runs in the background; a failure is logged, the alert stays in the dashboard.
    async fn notify(&self, partner: &PartnerId, alert: &Alert) {
        tracing::info!(partner = %partner, cve = %alert.cve_id, devices = alert.devices, "{}", alert.message);
        let Some(url) = self.webhook.clone() else { return };
        let body = serde_json::json!({
            "partner_id": partner,
            "kind": alert.kind,
            "cve_id": alert.cve_id,
            "devices": alert.devices,
            "message": alert.message,
            "at": alert.at.to_string(),
        });
        tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build();
            let result = match client {
                Ok(c) => c.post(url.as_ref()).json(&body).send().await.and_then(|r| r.error_for_status()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "the alert webhook failed");
            }
        });
    }
}

/// A CVE id, upper-cased and checked (`cve-2024-3094` → `CVE-2024-3094`).
pub fn parse_cve_id(s: &str) -> Result<String> {
    let id = s.trim().to_ascii_uppercase();
    if ringfence_feeds::kev::is_cve_id(&id) {
        Ok(id)
    } else {
        Err(ValueError::new("cve", format!("'{}' is not a CVE id like CVE-2024-3094", s.trim())).into())
    }
}
