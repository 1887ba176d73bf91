//! Agentless network appliances: SNMP credentials sealed at rest, site collectors and the
//! signed jobs they run, identification (the curated table, then the partner's mappings),
//! manual and CSV-imported appliances, and the appliance patch loop. An appliance is a device:
//! its firmware and hardware become inventory items with the CPEs NVD uses, so findings, risk,
//! approvals, rings and windows apply unchanged. Its deployment is a maintenance task a
//! technician does inside the window and marks done; the next poll verifies the firmware or
//! opens the task again.

use crate::tenancy::{body_id, path_id};
use crate::{Engine, EngineError, Result, require};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use jiff::SignedDuration;
use ringfence_appliance::{Identification, Mapping, Observation};
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_proto::collector::{
    CollectorJob, CollectorLease, CollectorReport, CollectorReportAck, CollectorWork, CredentialRef,
    Ipv4Range, PollTarget, SnmpCredential, TargetOutcome,
};
use ringfence_store::{
    AgentIdentity, ApplianceIdentity, ApplianceQuery, ApplianceRecord, Audit, CollectorRecord,
    CredentialRecord, DeploymentChange, DeploymentQuery, DeviceUpdate, InventoryOutcome, MappingRecord,
    NewAppliance, PollRecord, QueueRow, ScanRecord, ScanResult, TaskNote, TaskRecord,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The manager name of appliance inventory items and updates.
pub const APPLIANCE_MANAGER: &str = "appliance";
/// How long a collector holds a leased poll or sweep before it is handed out again.
const LEASE: SignedDuration = SignedDuration::from_mins(10);
/// How long a signed collector job stays valid.
const JOB_LIFETIME: SignedDuration = SignedDuration::from_mins(15);
/// Most appliances in one collector round.
const POLLS_PER_ROUND: i64 = 5_000;
const DEFAULT_POLL_MINUTES: i64 = 240;
const DEFAULT_RATE: u32 = 50;
/// Inventory writes of one report run this many at a time, so they batch.
const SYNC_CONCURRENCY: usize = 32;

/// The server's key for secrets at rest (SNMP credentials): 32 bytes, kept outside the
/// database (a file in the data directory, or a path the operator names).
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        SecretKey(b)
    }

    /// Reads the key from its hex text (64 hex digits).
    pub fn from_hex(s: &str) -> std::result::Result<Self, String> {
        let b: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the secret key must be 64 hex digits (32 bytes)")?;
        Ok(SecretKey(b))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Seals `plain` for the record `id` (bound as associated data, so a sealed value cannot
    /// be moved to another record): `v1:` and hex of nonce and ciphertext.
    pub fn seal(&self, id: &str, plain: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad: id.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of a bounded message cannot fail");
        format!("v1:{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    pub fn open(&self, id: &str, sealed: &str) -> std::result::Result<Vec<u8>, String> {
        let body = sealed.strip_prefix("v1:").ok_or("the sealed value has an unknown format")?;
        let bytes = hex::decode(body).map_err(|_| "the sealed value is not hex")?;
        if bytes.len() < 12 + 16 {
            return Err("the sealed value is truncated".into());
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| "the sealed value is truncated")?;
        ChaCha20Poly1305::new((&self.0).into())
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: id.as_bytes() })
            .map_err(|_| {
                "the sealed value does not open with this server's secret key (another key, or altered)"
                    .into()
            })
    }
}

/// An appliance with its open findings, KEV first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApplianceView {
    #[serde(flatten)]
    pub appliance: ApplianceRecord,
    pub findings: Vec<ApplianceFinding>,
    pub kev_findings: usize,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApplianceFinding {
    pub cve_id: String,
    pub product: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub kev: bool,
    pub cvss_score: Option<f64>,
    pub epss: Option<f64>,
}

/// One firmware across the partner's clients ("this firmware at N clients").
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FirmwareGroup {
    pub vendor: String,
    pub product: String,
    pub firmware: String,
    pub clients: usize,
    pub appliances: usize,
    pub organizations: Vec<String>,
    /// Open CVEs of this firmware (on any of its appliances), KEV first.
    pub cves: Vec<String>,
    pub kev_cves: usize,
}

fn identity_of(obs: &Observation, id: Option<&Identification>) -> ApplianceIdentity {
    ApplianceIdentity {
        sys_descr: obs.sys_descr.clone(),
        sys_object_id: obs.sys_object_id.clone(),
        sys_name: obs.sys_name.clone(),
        entities: serde_json::to_value(&obs.entities).unwrap_or_default(),
        identified: id.is_some(),
        vendor: id.map(|i| i.vendor.clone()),
        product: id.map(|i| i.product.clone()),
        model: id.and_then(|i| i.model.clone()),
        firmware: id.and_then(|i| i.firmware.clone()),
        serial: id.and_then(|i| i.serial.clone()).or_else(|| {
            obs.entities.iter().map(|e| e.serial.trim()).find(|s| !s.is_empty()).map(str::to_string)
        }),
        os_cpe: id.and_then(|i| i.os_cpe.clone()),
        hardware_cpe: id.and_then(|i| i.hardware_cpe.clone()),
        rule: id.map(|i| i.rule.clone()),
    }
}

fn observation_of(i: &ApplianceIdentity) -> Observation {
    Observation {
        sys_descr: i.sys_descr.clone(),
        sys_object_id: i.sys_object_id.clone(),
        sys_name: i.sys_name.clone(),
        entities: serde_json::from_value(i.entities.clone()).unwrap_or_default(),
    }
}

/// The inventory an appliance's identity stands for: its firmware (with the firmware CPE)
/// and its hardware (with the hardware CPE, for NVD's AND configurations).
pub fn appliance_inventory(i: &ApplianceIdentity) -> Inventory {
    let mut items = Vec::new();
    if let (Some(product), Some(firmware)) = (&i.product, &i.firmware) {
        let mut item = Item::new(ItemKind::Firmware, product.clone(), firmware.clone());
        item.manager = Some(APPLIANCE_MANAGER.into());
        item.vendor = i.vendor.clone();
        item.cpe = i.os_cpe.clone();
        items.push(item);
    }
    if let (Some(model), Some(cpe)) = (&i.model, &i.hardware_cpe) {
        let mut item = Item::new(ItemKind::Hardware, model.clone(), "-");
        item.manager = Some(APPLIANCE_MANAGER.into());
        item.vendor = i.vendor.clone();
        item.cpe = Some(cpe.clone());
        items.push(item);
    }
    Inventory {
        os: OsInfo {
            family: "network".into(),
            id: i.vendor.as_deref().unwrap_or("unidentified").to_ascii_lowercase().replace(' ', "_"),
            version: i.firmware.clone().unwrap_or_default(),
            codename: None,
            name: [i.product.as_deref(), i.firmware.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        },
        items,
    }
}

fn text_field(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(ValueError::new(
            field,
            format!("must be 1 to {max} characters, without control characters"),
        )
        .into());
    }
    Ok(t.to_string())
}

fn opt_text(field: &str, s: Option<&str>, max: usize) -> Result<Option<String>> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => text_field(field, s, max).map(Some),
    }
}

fn version_cmp(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    ringfence_versions::compare(ringfence_versions::Scheme::Generic, a, b).ok()
}

/// Most appliances in one poll job, so a report stays well inside the request limit.
const TARGETS_PER_JOB: usize = 250;

impl Engine {
    /// A credential the caller may use: a client-level user only its organization's, never
    /// the partner-wide ones (which also open every other client's appliances).
    async fn usable_credential(&self, p: &Principal, id: &str, field: &str) -> Result<CredentialRecord> {
        let creds = self.store.list_credentials(&p.scope()).await?;
        let c = creds
            .into_iter()
            .find(|c| c.id == id.trim())
            .ok_or_else(|| ValueError::new(field, format!("credential {} not found", id.trim())))?;
        if let Some(own) = &p.organization_id
            && c.organization_id.as_ref() != Some(own)
        {
            return Err(ValueError::new(
                field,
                "a partner-wide credential can only be used by partner-level users; add one for this organization",
            )
            .into());
        }
        Ok(c)
    }

    fn secret_key(&self) -> Result<&SecretKey> {
        self.secrets.as_deref().ok_or_else(|| {
            EngineError::Conflict(
                "the server has no secret key for credentials: start it with a data directory (it keeps \
                 secret.key there) or set RINGFENCE_SECRET_KEY_FILE"
                    .into(),
            )
        })
    }

    // ----- credentials -----

    pub async fn create_snmp_credential(
        &self,
        p: &Principal,
        req: &proto::appliances::CreateSnmpCredential,
    ) -> Result<CredentialRecord> {
        require(p, Permission::ManageAppliances, "add SNMP credentials")?;
        let key = self.secret_key()?;
        let name = text_field("name", &req.name, 100)?;
        req.credential.check().map_err(|e| ValueError::new("credential", e))?;
        let organization_id = match (&req.organization_id, &p.organization_id) {
            (Some(o), _) => Some(body_id(OrganizationId::parse, o, "organization_id")?),
            (None, Some(own)) => Some(own.clone()),
            (None, None) => None,
        };
        if let (Some(own), Some(o)) = (&p.organization_id, &organization_id)
            && own != o
        {
            return Err(EngineError::NotFound("organization"));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let plain =
            serde_json::to_vec(&req.credential).map_err(|e| ValueError::new("credential", e.to_string()))?;
        let sealed = key.seal(&id, &plain);
        let rec = CredentialRecord {
            id,
            organization_id,
            name,
            version: req.credential.version().into(),
            created_by: p.actor(),
            created_at: self.now(),
        };
        self.store.create_credential(&self.audit(p), &p.scope(), &rec, &sealed).await?;
        Ok(rec)
    }

    pub async fn snmp_credentials(&self, p: &Principal) -> Result<Vec<CredentialRecord>> {
        require(p, Permission::Read, "read SNMP credentials")?;
        Ok(self.store.list_credentials(&p.scope()).await?)
    }

    pub async fn delete_snmp_credential(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::ManageAppliances, "remove SNMP credentials")?;
        Ok(self.store.delete_credential(&self.audit(p), &p.scope(), id.trim()).await?)
    }

    // ----- collectors -----

    pub async fn add_collector(
        &self,
        p: &Principal,
        req: &proto::appliances::AddCollector,
    ) -> Result<CollectorRecord> {
        require(p, Permission::ManageAppliances, "choose collectors")?;
        let device = body_id(DeviceId::parse, &req.device_id, "device_id")?;
        Ok(self.store.add_collector(&self.audit(p), &p.scope(), &device).await?)
    }

    pub async fn remove_collector(&self, p: &Principal, device: &str) -> Result<()> {
        require(p, Permission::ManageAppliances, "remove collectors")?;
        let device = path_id(DeviceId::parse, device, "collector")?;
        Ok(self.store.remove_collector(&self.audit(p), &p.scope(), &device).await?)
    }

    pub async fn collectors(&self, p: &Principal) -> Result<Vec<CollectorRecord>> {
        require(p, Permission::Read, "read collectors")?;
        Ok(self.store.list_collectors(&p.scope()).await?)
    }

    /// Whether a device is a collector (the check-in tells its agent to ask for work).
    pub async fn is_collector(&self, a: &AgentIdentity) -> Result<bool> {
        Ok(self.store.collector_seen(&a.device_id, self.now()).await?.is_some())
    }

    // ----- appliances -----

    async fn mappings(&self, partner: &PartnerId) -> Result<Vec<Mapping>> {
        Ok(self
            .store
            .list_mappings(partner)
            .await?
            .into_iter()
            .filter_map(|m| {
                let mut mapping: Mapping = serde_json::from_value(m.body).ok()?;
                mapping.id = m.id;
                Some(mapping)
            })
            .collect())
    }

    fn new_appliance_common(
        &self,
        req: &proto::appliances::CreateAppliance,
    ) -> Result<(SiteId, String, Criticality, bool, Option<String>)> {
        let site_id = body_id(SiteId::parse, &req.site_id, "site_id")?;
        let name = ringfence_model::parse_hostname("name", &req.name).map_err(EngineError::Invalid)?;
        let criticality = match &req.criticality {
            Some(c) => Criticality::parse(c).map_err(EngineError::Invalid)?,
            None => Criticality::High,
        };
        let notes = opt_text("notes", req.notes.as_deref(), 1_000)?;
        Ok((site_id, name, criticality, req.internet_facing.unwrap_or(true), notes))
    }

    /// Adds one appliance: polled over SNMP by a collector, or reported by hand.
    pub async fn add_appliance(
        &self,
        p: &Principal,
        req: &proto::appliances::CreateAppliance,
    ) -> Result<ApplianceRecord> {
        require(p, Permission::ManageAppliances, "add appliances")?;
        let (site_id, hostname, criticality, internet_facing, notes) = self.new_appliance_common(req)?;
        let now = self.now();
        let new = match req.source.trim() {
            "snmp" => {
                let address =
                    req.address.as_deref().map(str::trim).filter(|a| !a.is_empty()).ok_or_else(|| {
                        ValueError::new("address", "an SNMP appliance needs its IP address")
                    })?;
                let ip: std::net::IpAddr = address.parse().map_err(|_| {
                    ValueError::new("address", "must be an IPv4 or IPv6 address (no host names)")
                })?;
                let collector = req.collector_id.as_deref().ok_or_else(|| {
                    ValueError::new("collector_id", "an SNMP appliance needs the collector that polls it")
                })?;
                let credential =
                    req.credential_id.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or_else(
                        || ValueError::new("credential_id", "an SNMP appliance needs a credential"),
                    )?;
                self.usable_credential(p, credential, "credential_id").await?;
                proto::collector::check_target(ip).map_err(|e| ValueError::new("address", e))?;
                let poll_minutes = req.poll_minutes.unwrap_or(DEFAULT_POLL_MINUTES);
                if !(15..=10_080).contains(&poll_minutes) {
                    return Err(ValueError::new("poll_minutes", "must be 15 to 10080 (a week)").into());
                }
                if req.port == Some(0) {
                    return Err(ValueError::new("port", "must be 1 to 65535").into());
                }
                NewAppliance {
                    site_id,
                    hostname,
                    criticality,
                    internet_facing,
                    source: "snmp".into(),
                    address: Some(address.to_string()),
                    port: Some(req.port.unwrap_or(161)),
                    collector_id: Some(body_id(DeviceId::parse, collector, "collector_id")?),
                    credential_id: Some(credential.to_string()),
                    identity: ApplianceIdentity::default(),
                    poll_minutes,
                    next_poll_at: Some(now),
                    notes,
                    origin: "manual".into(),
                }
            }
            "manual" => {
                let vendor = text_field("vendor", req.vendor.as_deref().unwrap_or(""), 100)?;
                let model = text_field("model", req.model.as_deref().unwrap_or(""), 100)?;
                let firmware = text_field("firmware", req.firmware.as_deref().unwrap_or(""), 100)?;
                let serial = opt_text("serial", req.serial.as_deref(), 100)?;
                let address = opt_text("address", req.address.as_deref(), 100)?;
                NewAppliance {
                    site_id,
                    hostname,
                    criticality,
                    internet_facing,
                    source: "manual".into(),
                    address,
                    port: None,
                    collector_id: None,
                    credential_id: None,
                    identity: manual_identity(&vendor, &model, &firmware, serial),
                    poll_minutes: DEFAULT_POLL_MINUTES,
                    next_poll_at: None,
                    notes,
                    origin: "manual".into(),
                }
            }
            other => {
                return Err(ValueError::new("source", format!("'{other}' is not snmp or manual")).into());
            }
        };
        let rec = self.store.create_appliance(&self.audit(p), &p.scope(), &new).await?;
        if rec.source == "manual" {
            self.sync_appliance(&p.scope(), &rec).await?;
        }
        Ok(rec)
    }

    /// Imports manually reported appliances from a CSV: every row, or none.
    pub async fn import_appliances(
        &self,
        p: &Principal,
        req: &proto::appliances::ImportAppliances,
    ) -> Result<Vec<ApplianceRecord>> {
        require(p, Permission::ManageAppliances, "import appliances")?;
        let org = body_id(OrganizationId::parse, &req.organization_id, "organization_id")?;
        let scope = p.scope();
        let rows =
            ringfence_appliance::parse_csv(&req.csv).map_err(|e| ValueError::new("csv", e.to_string()))?;
        self.store.get_organization(&scope, &org).await?;
        let sites = self.store.list_sites(&scope, Some(&org)).await?;
        let mut problems = Vec::new();
        let mut new = Vec::new();
        for r in &rows {
            let Some(site) = sites.iter().find(|s| s.name.as_str().eq_ignore_ascii_case(r.site.trim()))
            else {
                problems.push(format!(
                    "line {}: site '{}' is not a site of this organization (sites: {})",
                    r.line,
                    r.site,
                    sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
                continue;
            };
            let hostname = match ringfence_model::parse_hostname("name", &r.name) {
                Ok(h) => h,
                Err(e) => {
                    problems.push(format!("line {}: name: {}", r.line, e.message));
                    continue;
                }
            };
            new.push(NewAppliance {
                site_id: site.id.clone(),
                hostname,
                criticality: Criticality::High,
                internet_facing: true,
                source: "manual".into(),
                address: r.address.clone(),
                port: None,
                collector_id: None,
                credential_id: None,
                identity: manual_identity(&r.vendor, &r.model, &r.firmware, r.serial.clone()),
                poll_minutes: DEFAULT_POLL_MINUTES,
                next_poll_at: None,
                notes: r.notes.clone(),
                origin: format!("csv import, line {}", r.line),
            });
        }
        if !problems.is_empty() {
            return Err(
                ValueError::new("csv", format!("nothing was imported: {}", problems.join("; "))).into()
            );
        }
        let made = self.store.create_appliances(&self.audit(p), &scope, &new).await?;
        for rec in &made {
            self.sync_appliance(&scope, rec).await?;
        }
        Ok(made)
    }

    /// A technician confirms a manual appliance's firmware ("manually reported, last
    /// confirmed on …"); a changed firmware is verified against its open tasks like a poll.
    pub async fn confirm_appliance(
        &self,
        p: &Principal,
        device: &str,
        req: &proto::appliances::ConfirmAppliance,
    ) -> Result<ApplianceRecord> {
        require(p, Permission::ManageAppliances, "confirm appliances")?;
        let id = path_id(DeviceId::parse, device, "appliance")?;
        let scope = p.scope();
        let before = self.store.get_appliance(&scope, &id).await?;
        let firmware = text_field("firmware", &req.firmware, 100)?;
        let model = match opt_text("model", req.model.as_deref(), 100)? {
            Some(m) => m,
            None => before.identity.model.clone().unwrap_or_default(),
        };
        let vendor = before.identity.vendor.clone().unwrap_or_default();
        let identity = manual_identity(&vendor, &model, &firmware, before.identity.serial.clone());
        let rec = self.store.confirm_appliance(&self.audit(p), &scope, &id, &identity).await?;
        self.sync_appliance(&scope, &rec).await?;
        Ok(rec)
    }

    pub async fn appliances(&self, p: &Principal, q: &ApplianceQuery) -> Result<Vec<ApplianceView>> {
        require(p, Permission::Read, "read appliances")?;
        let scope = p.scope();
        let list = self.store.list_appliances(&scope, q).await?;
        let findings = self.store.queue_findings(&scope, q.organization_id.as_ref()).await?;
        let mut by_device: HashMap<&DeviceId, Vec<&QueueRow>> = HashMap::new();
        for f in &findings {
            by_device.entry(&f.device_id).or_default().push(f);
        }
        Ok(list
            .into_iter()
            .map(|a| {
                let mut fs: Vec<ApplianceFinding> = by_device
                    .get(&a.device_id)
                    .into_iter()
                    .flatten()
                    .map(|f| ApplianceFinding {
                        cve_id: f.cve_id.clone(),
                        product: f.product.clone(),
                        installed_version: f.installed_version.clone(),
                        fixed_version: f.fixed_version.clone(),
                        kev: f.kev,
                        cvss_score: f.cvss_score,
                        epss: f.epss,
                    })
                    .collect();
                fs.sort_by(|x, y| {
                    y.kev.cmp(&x.kev).then(
                        y.cvss_score
                            .unwrap_or(0.0)
                            .total_cmp(&x.cvss_score.unwrap_or(0.0))
                            .then(x.cve_id.cmp(&y.cve_id)),
                    )
                });
                fs.dedup_by(|a, b| a.cve_id == b.cve_id);
                let kev_findings = fs.iter().filter(|f| f.kev).count();
                ApplianceView { appliance: a, findings: fs, kev_findings }
            })
            .collect())
    }

    pub async fn appliance(&self, p: &Principal, device: &str) -> Result<ApplianceView> {
        require(p, Permission::Read, "read appliances")?;
        let id = path_id(DeviceId::parse, device, "appliance")?;
        let rec = self.store.get_appliance(&p.scope(), &id).await?;
        let q = ApplianceQuery { organization_id: Some(rec.organization_id.clone()), ..Default::default() };
        self.appliances(p, &q)
            .await?
            .into_iter()
            .find(|v| v.appliance.device_id == id)
            .ok_or(EngineError::NotFound("appliance"))
    }

    /// Every firmware in the partner's fleet, with how many clients run it; the riskiest first.
    pub async fn firmware_fleet(&self, p: &Principal) -> Result<Vec<FirmwareGroup>> {
        let all = self.appliances(p, &ApplianceQuery::default()).await?;
        // (vendor, product, firmware) → (organizations, appliances, CVE → in KEV)
        type Seen = (BTreeSet<String>, usize, BTreeMap<String, bool>);
        let mut groups: BTreeMap<(String, String, String), Seen> = BTreeMap::new();
        for v in &all {
            let i = &v.appliance.identity;
            let (Some(vendor), Some(product), Some(firmware)) = (&i.vendor, &i.product, &i.firmware) else {
                continue;
            };
            let g = groups.entry((vendor.clone(), product.clone(), firmware.clone())).or_default();
            g.0.insert(v.appliance.organization.clone());
            g.1 += 1;
            for f in &v.findings {
                g.2.insert(f.cve_id.clone(), f.kev);
            }
        }
        let mut out: Vec<FirmwareGroup> = groups
            .into_iter()
            .map(|((vendor, product, firmware), (orgs, n, cves))| {
                let mut list: Vec<(String, bool)> = cves.into_iter().collect();
                list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                FirmwareGroup {
                    vendor,
                    product,
                    firmware,
                    clients: orgs.len(),
                    appliances: n,
                    organizations: orgs.into_iter().collect(),
                    kev_cves: list.iter().filter(|c| c.1).count(),
                    cves: list.into_iter().map(|c| c.0).collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.kev_cves.cmp(&a.kev_cves).then(b.cves.len().cmp(&a.cves.len())).then(b.clients.cmp(&a.clients))
        });
        Ok(out)
    }

    // ----- discovery and mappings -----

    pub async fn create_scan(
        &self,
        p: &Principal,
        req: &proto::appliances::CreateScan,
    ) -> Result<ScanRecord> {
        require(p, Permission::ManageAppliances, "sweep networks")?;
        let collector = body_id(DeviceId::parse, &req.collector_id, "collector_id")?;
        let range = Ipv4Range::parse(&req.range).map_err(|e| ValueError::new("range", e))?;
        if range.len() > u64::from(proto::collector::MAX_RANGE) {
            return Err(ValueError::new(
                "range",
                format!(
                    "covers {} addresses; a sweep covers at most {} (a /20)",
                    range.len(),
                    proto::collector::MAX_RANGE
                ),
            )
            .into());
        }
        let rate = req.rate_per_sec.unwrap_or(DEFAULT_RATE);
        if !(1..=proto::collector::MAX_RATE).contains(&rate) {
            return Err(ValueError::new(
                "rate_per_sec",
                format!("must be 1 to {}", proto::collector::MAX_RATE),
            )
            .into());
        }
        let port = req.port.unwrap_or(161);
        if port == 0 {
            return Err(ValueError::new("port", "must be 1 to 65535").into());
        }
        if req.credential_ids.is_empty() || req.credential_ids.len() > proto::collector::MAX_CREDENTIALS {
            return Err(ValueError::new(
                "credential_ids",
                format!("name 1 to {} credentials to try", proto::collector::MAX_CREDENTIALS),
            )
            .into());
        }
        let scope = p.scope();
        let collectors = self.store.list_collectors(&scope).await?;
        let c = collectors.iter().find(|c| c.device_id == collector).ok_or_else(|| {
            ValueError::new("collector_id", "is not a collector (choose one on the Appliances page)")
        })?;
        for id in &req.credential_ids {
            let k = self.usable_credential(p, id, "credential_ids").await?;
            if k.organization_id.as_ref().is_some_and(|o| o != &c.organization_id) {
                return Err(ValueError::new("credential_ids", format!("credential {id} not found")).into());
            }
        }
        let s = ScanRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: c.organization_id.clone(),
            site_id: c.site_id.clone(),
            collector_id: collector,
            range: req.range.trim().to_string(),
            port,
            rate_per_sec: rate,
            credential_ids: req.credential_ids.clone(),
            status: "queued".into(),
            probed: None,
            answered: None,
            added: None,
            detail: String::new(),
            created_by: p.actor(),
            created_at: self.now(),
            started_at: None,
            finished_at: None,
        };
        self.store.create_scan(&self.audit(p), &scope, &s).await?;
        Ok(s)
    }

    pub async fn scans(&self, p: &Principal) -> Result<Vec<ScanRecord>> {
        require(p, Permission::Read, "read network sweeps")?;
        Ok(self.store.list_scans(&p.scope()).await?)
    }

    pub async fn mappings_of(&self, p: &Principal) -> Result<Vec<MappingRecord>> {
        require(p, Permission::Read, "read appliance mappings")?;
        Ok(self.store.list_mappings(&p.scope().partner_id).await?)
    }

    /// Maps devices the table does not know, for the whole partner; every unidentified
    /// appliance it now identifies is identified and correlated at once.
    pub async fn create_mapping(
        &self,
        p: &Principal,
        req: &proto::appliances::CreateMapping,
    ) -> Result<(MappingRecord, usize)> {
        require(p, Permission::ManageAppliances, "map appliances")?;
        crate::require_partner_wide(p, "map appliances for the whole partner")?;
        let id = uuid::Uuid::now_v7().to_string();
        let mut mapping: Mapping = serde_json::from_value(req.mapping.clone())
            .map_err(|e| ValueError::new("mapping", format!("does not read: {e}")))?;
        mapping.id = id.clone();
        mapping.check().map_err(|e| ValueError::new("mapping", e.to_string()))?;
        let rec = MappingRecord {
            id,
            body: serde_json::to_value(&mapping).map_err(|e| ValueError::new("mapping", e.to_string()))?,
            created_by: p.actor(),
            created_at: self.now(),
        };
        let scope = p.scope();
        let audit = self.audit(p);
        self.store.create_mapping(&audit, &scope, &rec).await?;
        let unknown = self
            .store
            .list_appliances(&scope, &ApplianceQuery { unidentified: true, ..Default::default() })
            .await?;
        let mut identified = 0;
        for a in unknown.iter().filter(|a| a.source == "snmp") {
            let obs = observation_of(&a.identity);
            if let Some(i) = ringfence_appliance::identify(&obs, std::slice::from_ref(&mapping)) {
                let identity = identity_of(&obs, Some(&i));
                self.store.set_identity(&audit, &scope, &a.device_id, &identity).await?;
                let rec = self.store.get_appliance(&scope, &a.device_id).await?;
                self.sync_appliance(&scope, &rec).await?;
                identified += 1;
            }
        }
        Ok((rec, identified))
    }

    // ----- the collector's side -----

    /// A collector takes its due polls and sweeps, as jobs signed for it alone; credentials
    /// are opened only here, inside the job.
    pub async fn collector_lease(&self, a: &AgentIdentity) -> Result<CollectorLease> {
        let now = self.now();
        if self.store.collector_seen(&a.device_id, now).await?.is_none() {
            return Ok(CollectorLease::default());
        }
        let polls = self.store.lease_polls(&a.device_id, now, now + LEASE, POLLS_PER_ROUND).await?;
        let scans = self.store.lease_scans(&a.device_id, now, now + LEASE).await?;
        if polls.is_empty() && scans.is_empty() {
            return Ok(CollectorLease::default());
        }
        let (secret, _) = self.job_key().await?;
        let mut opened: HashMap<String, std::result::Result<SnmpCredential, String>> = HashMap::new();
        let mut open = async |id: &str| -> std::result::Result<SnmpCredential, String> {
            if let Some(r) = opened.get(id) {
                return r.clone();
            }
            let r = self.open_credential(&a.partner_id, id).await;
            opened.insert(id.to_string(), r.clone());
            r
        };
        let job = |credentials: Vec<CredentialRef>, work: CollectorWork| CollectorJob {
            id: uuid::Uuid::now_v7().to_string(),
            collector_device_id: a.device_id.to_string(),
            credentials,
            work,
            timeout_ms: 2_000,
            retries: 1,
            concurrency: 256,
            issued_at: now,
            expires_at: now + JOB_LIFETIME,
        };
        let mut jobs = Vec::new();
        let mut failed = Vec::new();
        // Polls grouped so that one job carries at most MAX_CREDENTIALS credentials.
        let mut buckets: Vec<(Vec<String>, Vec<PollTarget>)> = Vec::new();
        let mut bucket_of: HashMap<String, usize> = HashMap::new();
        for rec in &polls {
            let (Some(cred), Some(address)) = (&rec.credential_id, &rec.address) else { continue };
            if let Err(e) = open(cred).await {
                failed.push(PollRecord {
                    device_id: rec.device_id.clone(),
                    at: now,
                    outcome: "error".into(),
                    error: Some(format!("credential {cred}: {e}")),
                    identity: None,
                    next_poll_at: now + SignedDuration::from_mins(rec.poll_minutes),
                });
                continue;
            }
            let b = match bucket_of.get(cred) {
                Some(&b) => b,
                None => {
                    if buckets.last().is_none_or(|(c, _)| c.len() == proto::collector::MAX_CREDENTIALS) {
                        buckets.push((Vec::new(), Vec::new()));
                    }
                    let b = buckets.len() - 1;
                    buckets[b].0.push(cred.clone());
                    bucket_of.insert(cred.clone(), b);
                    b
                }
            };
            buckets[b].1.push(PollTarget {
                appliance_id: rec.device_id.to_string(),
                address: address.clone(),
                port: rec.port.unwrap_or(161),
                credential_id: cred.clone(),
            });
        }
        for (creds, targets) in buckets {
            let mut refs = Vec::new();
            for c in &creds {
                if let Ok(credential) = open(c).await {
                    refs.push(CredentialRef { id: c.clone(), credential });
                }
            }
            for chunk in targets.chunks(TARGETS_PER_JOB) {
                jobs.push(job(refs.clone(), CollectorWork::Poll { targets: chunk.to_vec() }));
            }
        }
        for s in &scans {
            let mut refs = Vec::new();
            for c in &s.credential_ids {
                if let Ok(credential) = open(c).await {
                    refs.push(CredentialRef { id: c.clone(), credential });
                }
            }
            if refs.is_empty() {
                let audit = Audit::new(format!("agent:{}", a.device_id), now);
                self.store
                    .finish_scan(
                        &audit,
                        &a.partner_id,
                        &a.device_id,
                        &s.id,
                        &ScanResult {
                            probed: 0,
                            answered: 0,
                            added: 0,
                            detail:
                                "no credential of the sweep could be opened with this server's secret key"
                                    .into(),
                        },
                    )
                    .await?;
                continue;
            }
            let mut j = job(
                refs,
                CollectorWork::Discover {
                    scan_id: s.id.clone(),
                    range: s.range.clone(),
                    port: s.port,
                    rate_per_sec: s.rate_per_sec,
                },
            );
            // A sweep takes as long as its rate makes it; the job lives that long and more.
            let secs =
                Ipv4Range::parse(&s.range).map(|r| r.len()).unwrap_or(1) / u64::from(s.rate_per_sec.max(1));
            j.expires_at = now + JOB_LIFETIME + SignedDuration::from_secs(i64::try_from(secs).unwrap_or(0));
            j.id = s.id.clone();
            jobs.push(j);
        }
        if !failed.is_empty() {
            let audit = Audit::new(format!("agent:{}", a.device_id), now);
            self.store.record_polls(&audit, &a.partner_id, &a.device_id, &failed).await?;
        }
        let mut signed = Vec::with_capacity(jobs.len());
        for j in &jobs {
            signed.push(proto::collector::sign(j, &secret).map_err(|e| ValueError::new("job", e))?);
        }
        Ok(CollectorLease { jobs: signed })
    }

    async fn open_credential(
        &self,
        partner: &PartnerId,
        id: &str,
    ) -> std::result::Result<SnmpCredential, String> {
        let key = self.secret_key().map_err(|e| e.to_string())?;
        let (_, sealed) = self
            .store
            .sealed_credential(partner, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the credential was removed")?;
        let plain = key.open(id, &sealed)?;
        serde_json::from_slice(&plain).map_err(|_| "the opened credential does not read".to_string())
    }

    /// A collector reports a job: polls are recorded and correlated; a sweep's answering
    /// addresses become appliances of the sweep's organization and site.
    pub async fn collector_report(
        &self,
        a: &AgentIdentity,
        r: CollectorReport,
    ) -> Result<CollectorReportAck> {
        let now = self.now();
        if self.store.collector_seen(&a.device_id, now).await?.is_none() {
            return Err(EngineError::Forbidden("this device is not a collector".into()));
        }
        if r.results.len() > proto::collector::MAX_TARGETS {
            return Err(
                ValueError::new("results", format!("at most {}", proto::collector::MAX_TARGETS)).into()
            );
        }
        let audit = Audit::new(format!("agent:{}", a.device_id), now);
        let scope = Scope::partner(a.partner_id.clone());
        let mappings = self.mappings(&a.partner_id).await?;
        if let Some(sweep) = &r.sweep {
            return self.sweep_report(a, &audit, &scope, &mappings, &r, sweep).await;
        }
        let mut polls = Vec::new();
        let mut ok_ids = Vec::new();
        let mut minutes: HashMap<String, i64> = HashMap::new();
        for res in &r.results {
            let Some(id) = res.appliance_id.as_deref().and_then(|i| DeviceId::parse(i).ok()) else {
                continue;
            };
            let at = if res.at > now { now } else { res.at };
            let (identity, error) = match &res.outcome {
                TargetOutcome::Ok { observation, .. } => {
                    let obs = observation.clone().bounded();
                    let ident = ringfence_appliance::identify(&obs, &mappings);
                    ok_ids.push(id.clone());
                    (Some(identity_of(&obs, ident.as_ref())), None)
                }
                TargetOutcome::Timeout => (
                    None,
                    Some("no answer within the timeout (for SNMPv2c, also a wrong community)".to_string()),
                ),
                TargetOutcome::Unreachable { detail }
                | TargetOutcome::AuthFailed { detail }
                | TargetOutcome::Malformed { detail }
                | TargetOutcome::Error { detail } => (None, Some(detail.chars().take(500).collect())),
            };
            let poll_minutes = match minutes.get(id.as_str()) {
                Some(m) => *m,
                None => {
                    let m = self
                        .store
                        .get_appliance(&scope, &id)
                        .await
                        .map(|x| x.poll_minutes)
                        .unwrap_or(DEFAULT_POLL_MINUTES);
                    minutes.insert(id.to_string(), m);
                    m
                }
            };
            polls.push(PollRecord {
                device_id: id,
                at,
                outcome: res.outcome.name().into(),
                error,
                identity,
                next_poll_at: now + SignedDuration::from_mins(poll_minutes),
            });
        }
        let recorded = self.store.record_polls(&audit, &a.partner_id, &a.device_id, &polls).await?;
        let ok_ids: Vec<DeviceId> = ok_ids.into_iter().filter(|id| recorded.contains(id)).collect();
        self.sync_many(&scope, &ok_ids).await?;
        Ok(CollectorReportAck { recorded: recorded.len() })
    }

    async fn sweep_report(
        &self,
        a: &AgentIdentity,
        audit: &Audit,
        scope: &Scope,
        mappings: &[Mapping],
        r: &CollectorReport,
        sweep: &proto::collector::SweepSummary,
    ) -> Result<CollectorReportAck> {
        let scans = self.store.list_scans(scope).await?;
        let Some(scan) =
            scans.iter().find(|s| s.id == r.job_id && s.collector_id == a.device_id && s.status == "leased")
        else {
            return Ok(CollectorReportAck { recorded: 0 });
        };
        let range = Ipv4Range::parse(&scan.range).map_err(|e| ValueError::new("range", e))?;
        let org_scope = Scope::organization(scope.partner_id.clone(), scan.organization_id.clone());
        let existing = self
            .store
            .list_appliances(
                &org_scope,
                &ApplianceQuery { organization_id: Some(scan.organization_id.clone()), ..Default::default() },
            )
            .await?;
        let mut new = Vec::new();
        let devices = self
            .store
            .list_devices(
                &org_scope,
                &ringfence_store::DeviceQuery { limit: i64::from(u32::MAX), ..Default::default() },
            )
            .await?
            .items;
        let mut names: BTreeSet<String> = devices.iter().map(|d| d.hostname.to_ascii_lowercase()).collect();
        let mut seen: BTreeSet<(String, u16)> = BTreeSet::new();
        for res in &r.results {
            let TargetOutcome::Ok { credential_id, observation } = &res.outcome else { continue };
            // Only what the sweep was given: an address outside its range, or a credential it
            // did not carry, is not taken.
            let Ok(addr) = res.address.parse::<std::net::Ipv4Addr>() else { continue };
            if addr < range.first
                || addr > range.last
                || !scan.credential_ids.contains(credential_id)
                || res.port != scan.port
            {
                continue;
            }
            if existing
                .iter()
                .any(|e| e.address.as_deref() == Some(res.address.as_str()) && e.port == Some(res.port))
                || !seen.insert((res.address.clone(), res.port))
            {
                continue;
            }
            let obs = observation.clone().bounded();
            let ident = ringfence_appliance::identify(&obs, mappings);
            let base = ringfence_model::parse_hostname("name", &obs.sys_name)
                .unwrap_or_else(|_| format!("appliance-{}", res.address.replace('.', "-")));
            let mut hostname = base.clone();
            let mut n = 1;
            while names.contains(&hostname.to_ascii_lowercase()) {
                n += 1;
                hostname = format!("{base}-{}-{n}", res.address.replace('.', "-"));
            }
            names.insert(hostname.to_ascii_lowercase());
            new.push(NewAppliance {
                site_id: scan.site_id.clone(),
                hostname,
                criticality: Criticality::High,
                internet_facing: true,
                source: "snmp".into(),
                address: Some(res.address.clone()),
                port: Some(res.port),
                collector_id: Some(a.device_id.clone()),
                credential_id: Some(credential_id.clone()),
                identity: identity_of(&obs, ident.as_ref()),
                poll_minutes: DEFAULT_POLL_MINUTES,
                next_poll_at: Some(self.now() + SignedDuration::from_mins(DEFAULT_POLL_MINUTES)),
                notes: None,
                origin: format!("discovery {}", scan.id),
            });
        }
        let made = self.store.create_appliances(audit, &org_scope, &new).await?;
        let answered = r.results.iter().filter(|x| matches!(x.outcome, TargetOutcome::Ok { .. })).count();
        let probed = i64::from(sweep.probed).min(i64::try_from(range.len()).unwrap_or(i64::MAX));
        self.store
            .finish_scan(
                audit,
                &scope.partner_id,
                &a.device_id,
                &scan.id,
                &ScanResult {
                    probed,
                    answered: i64::try_from(answered).unwrap_or(0),
                    added: i64::try_from(made.len()).unwrap_or(0),
                    detail: format!(
                        "{} of {} addresses answered; {} new appliance(s)",
                        answered,
                        range.len(),
                        made.len()
                    ),
                },
            )
            .await?;
        let ids: Vec<DeviceId> = made.iter().map(|m| m.device_id.clone()).collect();
        self.sync_many(scope, &ids).await?;
        Ok(CollectorReportAck { recorded: made.len() })
    }

    async fn sync_many(&self, scope: &Scope, ids: &[DeviceId]) -> Result<()> {
        let mut set = tokio::task::JoinSet::new();
        let mut first_error = None;
        for id in ids {
            while set.len() >= SYNC_CONCURRENCY {
                if let Some(Ok(Err(e))) = set.join_next().await {
                    first_error.get_or_insert(e);
                }
            }
            let engine = self.clone();
            let scope = scope.clone();
            let id = id.clone();
            set.spawn(async move {
                let rec = match engine.store.get_appliance(&scope, &id).await {
                    Ok(r) => r,
                    // Removed meanwhile: nothing to correlate.
                    Err(ringfence_store::StoreError::NotFound(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                engine.sync_appliance(&scope, &rec).await
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(Err(e)) = r {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Correlates an appliance's identity like any inventory, offers its firmware update,
    /// and verifies (or opens again) its done maintenance tasks.
    pub(crate) async fn sync_appliance(&self, scope: &Scope, rec: &ApplianceRecord) -> Result<()> {
        let now = self.now();
        let audit = Audit::new("system:appliances", now);
        let inv = appliance_inventory(&rec.identity);
        let dscope = Scope::organization(scope.partner_id.clone(), rec.organization_id.clone());
        let (write, _) = self.inventory_write(&audit, &dscope, &rec.device_id, &inv, None).await?;
        let mut update = None;
        if let (Some(product), Some(firmware)) = (&rec.identity.product, &rec.identity.firmware) {
            let fixes: Vec<_> = write
                .findings
                .iter()
                .filter(|f| f.items.iter().any(|i| i == product))
                .filter_map(|f| f.fixed_version.as_ref().map(|v| (v.clone(), f.cve_id.clone())))
                .filter(|(v, _)| version_cmp(v, firmware) == Some(std::cmp::Ordering::Greater))
                .collect();
            let target = fixes
                .iter()
                .map(|(v, _)| v)
                .max_by(|a, b| version_cmp(a, b).unwrap_or(std::cmp::Ordering::Equal));
            if let Some(target) = target {
                update = Some(DeviceUpdate {
                    manager: APPLIANCE_MANAGER.into(),
                    name: product.clone(),
                    installed: firmware.clone(),
                    candidate: target.clone(),
                    origin: format!("{} firmware", rec.identity.vendor.as_deref().unwrap_or("vendor")),
                    classification: "firmware".into(),
                    advisories: Vec::new(),
                    cves: fixes.iter().map(|(_, c)| c.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
                    reboot_required: true,
                    rollback: "none".into(),
                });
            }
        }
        match self.write_inventory(write).await? {
            InventoryOutcome::Applied { .. } => {}
            _ => return Ok(()),
        }
        self.store.replace_device_updates(&scope.partner_id, &rec.device_id, update.as_slice(), now).await?;
        self.verify_appliance_tasks(&dscope, rec).await
    }

    /// A done task is verified by a poll (or confirmation) after it that shows the target
    /// firmware or later; a poll that still shows an older one opens the task again.
    async fn verify_appliance_tasks(&self, scope: &Scope, rec: &ApplianceRecord) -> Result<()> {
        let Some(firmware) = rec.identity.firmware.as_deref() else { return Ok(()) };
        let seen_at = match rec.source.as_str() {
            "manual" => rec.confirmed_at,
            _ => rec.last_ok_at,
        };
        let Some(seen_at) = seen_at else { return Ok(()) };
        let installed = self
            .store
            .list_deployments(
                scope,
                &DeploymentQuery {
                    device_id: Some(rec.device_id.clone()),
                    statuses: vec!["installed".into()],
                    ..Default::default()
                },
            )
            .await?;
        let now = self.now();
        let audit = Audit::new("system:appliance-verify", now);
        for d in installed {
            if d.installed_at.is_none_or(|t| seen_at < t) {
                continue;
            }
            // Versions that do not compare (a vendor's odd format): only the exact target counts,
            // and anything else leaves the task waiting rather than opening it again.
            let verdicts: Vec<Option<bool>> = d
                .updates
                .iter()
                .map(|u| match version_cmp(firmware, &u.to_version) {
                    Some(o) => Some(o != std::cmp::Ordering::Less),
                    None => (firmware == u.to_version).then_some(true),
                })
                .collect();
            if verdicts.iter().any(Option::is_none) {
                continue;
            }
            if verdicts.iter().all(|v| *v == Some(true)) {
                let change = DeploymentChange {
                    status: "verified".into(),
                    detail: Some(format!("the appliance reports firmware {firmware}")),
                    evidence: serde_json::json!({ "firmware": firmware, "seen_at": seen_at, "source": rec.source }),
                    ..Default::default()
                };
                if let Some(v) =
                    self.store.transition_deployment(&audit, scope, &d.id, &["installed"], &change).await?
                {
                    let products: Vec<String> = v.updates.iter().map(|u| u.name.clone()).collect();
                    let since = v.started_at.unwrap_or(v.created_at);
                    self.store.attribute_findings(scope, &rec.device_id, &v.id, &products, since).await?;
                }
            } else {
                let change = DeploymentChange {
                    status: "scheduled".into(),
                    detail: Some(format!(
                        "reopened: the appliance still reports firmware {firmware} after the task was marked done"
                    )),
                    evidence: serde_json::json!({ "firmware": firmware, "seen_at": seen_at }),
                    task: Some(TaskNote::Reopened { seen: firmware.to_string() }),
                    ..Default::default()
                };
                self.store.transition_deployment(&audit, scope, &d.id, &["installed"], &change).await?;
            }
        }
        Ok(())
    }

    // ----- maintenance tasks -----

    pub async fn appliance_tasks(&self, p: &Principal, open_only: bool) -> Result<Vec<TaskRecord>> {
        require(p, Permission::Read, "read appliance tasks")?;
        Ok(self.store.list_tasks(&p.scope(), open_only).await?)
    }

    pub async fn assign_task(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::appliances::AssignTask,
    ) -> Result<()> {
        require(p, Permission::ManageAppliances, "assign appliance tasks")?;
        let assignee = opt_text("assignee", req.assignee.as_deref(), 200)?;
        Ok(self.store.assign_task(&self.audit(p), &p.scope(), id.trim(), assignee.as_deref()).await?)
    }

    /// A technician marks a task done: the deployment is `installed` and waits for the next
    /// poll (made due now) to verify it.
    pub async fn task_done(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::appliances::TaskDone,
    ) -> Result<TaskRecord> {
        require(p, Permission::ManageAppliances, "mark appliance tasks done")?;
        let note = req.note.trim();
        if note.chars().count() > 1_000 || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ValueError::new(
                "note",
                "must be at most 1000 characters, without control characters",
            )
            .into());
        }
        let scope = p.scope();
        let tasks = self.store.list_tasks(&scope, false).await?;
        let task =
            tasks.iter().find(|t| t.deployment.id == id.trim()).ok_or(EngineError::NotFound("task"))?;
        let change = DeploymentChange {
            status: "installed".into(),
            detail: Some(format!("marked done by {}", p.actor())),
            evidence: serde_json::json!({ "note": note }),
            task: Some(TaskNote::Done { note: note.to_string() }),
            ..Default::default()
        };
        let moved = self
            .store
            .transition_deployment(
                &self.audit(p),
                &scope,
                &task.deployment.id,
                &["scheduled", "dispatched"],
                &change,
            )
            .await?;
        if moved.is_none() {
            return Err(EngineError::Conflict(format!(
                "the task is {}; only a scheduled task can be marked done",
                task.deployment.status
            )));
        }
        let rec = self.store.get_appliance(&scope, &task.deployment.device_id).await?;
        if rec.source == "snmp" {
            self.store.poll_now(&task.deployment.device_id, self.now()).await?;
        }
        self.store
            .list_tasks(&scope, false)
            .await?
            .into_iter()
            .find(|t| t.deployment.id == task.deployment.id)
            .ok_or(EngineError::NotFound("task"))
    }
}

/// A manually reported appliance's identity: the table's reading of vendor, model and
/// firmware, or an unidentified record that still keeps what the technician wrote.
fn manual_identity(vendor: &str, model: &str, firmware: &str, serial: Option<String>) -> ApplianceIdentity {
    match ringfence_appliance::identify_manual(vendor, model, firmware) {
        Some(i) => ApplianceIdentity {
            identified: true,
            vendor: Some(i.vendor),
            product: Some(i.product),
            model: i.model.or_else(|| Some(model.to_string())),
            firmware: i.firmware.or_else(|| Some(firmware.to_string())),
            serial: serial.or(i.serial),
            os_cpe: i.os_cpe,
            hardware_cpe: i.hardware_cpe,
            rule: Some(i.rule),
            entities: serde_json::Value::Array(Vec::new()),
            ..Default::default()
        },
        None => ApplianceIdentity {
            identified: false,
            vendor: Some(vendor.to_string()),
            model: Some(model.to_string()),
            firmware: Some(firmware.to_string()),
            serial,
            entities: serde_json::Value::Array(Vec::new()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_record() {
        let key = SecretKey::generate();
        let sealed = key.seal("cred-1", b"{\"community\":\"s3cret-community\"}");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open("cred-1", &sealed).unwrap(), b"{\"community\":\"s3cret-community\"}");
        // Moved to another record, opened with another key, or altered by one byte: refused.
        assert!(key.open("cred-2", &sealed).unwrap_err().contains("does not open"));
        assert!(SecretKey::generate().open("cred-1", &sealed).is_err());
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        assert!(key.open("cred-1", std::str::from_utf8(&bytes).unwrap()).is_err());
        for bad in ["", "v1:", "v1:zz", "v2:00", "v1:0011"] {
            assert!(key.open("cred-1", bad).is_err(), "{bad}");
        }
        // Two seals of the same secret differ (a fresh nonce each time).
        assert_ne!(key.seal("a", b"x"), key.seal("a", b"x"));
        assert_eq!(
            SecretKey::from_hex(&key.to_hex()).unwrap().open("a", &key.seal("a", b"x")).unwrap(),
            b"x"
        );
        assert!(SecretKey::from_hex("abc").is_err());
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn an_identity_becomes_firmware_and_hardware_items_with_their_cpes() {
        let i = ApplianceIdentity {
            identified: true,
            vendor: Some("Fortinet".into()),
            product: Some("FortiOS".into()),
            model: Some("FortiGate 100F".into()),
            firmware: Some("7.0.11".into()),
            os_cpe: Some("cpe:2.3:o:fortinet:fortios:7.0.11:*:*:*:*:*:*:*".into()),
            hardware_cpe: Some("cpe:2.3:h:fortinet:fortigate-100f:-:*:*:*:*:*:*:*".into()),
            ..Default::default()
        };
        let inv = appliance_inventory(&i);
        assert_eq!(inv.os.family, "network");
        assert_eq!(inv.items.len(), 2);
        assert_eq!((inv.items[0].kind, inv.items[0].version.as_str()), (ItemKind::Firmware, "7.0.11"));
        assert_eq!(inv.items[0].cpe, i.os_cpe);
        assert_eq!(
            (inv.items[1].kind, inv.items[1].cpe.as_deref()),
            (ItemKind::Hardware, i.hardware_cpe.as_deref())
        );
        // Unidentified: nothing to correlate.
        assert!(appliance_inventory(&ApplianceIdentity::default()).items.is_empty());
    }
}
