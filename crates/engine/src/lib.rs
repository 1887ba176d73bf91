//! Use cases over the store: the one place that decides who may do what.
//!
//! Every operation takes the acting [`Principal`]; it checks the role's permission
//! (`Role::allows`), validates the request into the store's typed inputs, and calls the store
//! with the principal's own [`Scope`], so tenant isolation does not depend on any caller
//! remembering it. The server and the CLI are thin shells over this crate. It knows nothing
//! of HTTP.

pub mod agents;
pub mod appliances;
pub mod auth;
pub mod charts;
pub mod delivery;
pub mod demo;
pub mod deploy;
pub mod evidence;
pub mod findings;
mod ingest;
pub mod intel;
pub mod overview;
pub mod policies;
pub mod remediation;
pub mod reports;
pub mod schedule;
pub mod sync;
pub(crate) mod tenancy;
mod users;

use ringfence_model::{Permission, Principal, Timestamp, ValueError};
use ringfence_store::{Audit, DynStore, StoreError};
use std::sync::Arc;

pub use ringfence_store as store;
pub use tenancy::DeviceRowsView;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed; the error names the field.
    #[error("{0}")]
    Invalid(ValueError),
    /// Absent, or outside the caller's scope (the two are indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The caller's role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many failed sign-ins from this client for this account.
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => EngineError::NotFound(what),
            StoreError::Conflict(m) => EngineError::Conflict(m),
            StoreError::Invalid { field, message } => EngineError::Invalid(ValueError::new(field, message)),
            other => EngineError::Store(other),
        }
    }
}

impl From<ValueError> for EngineError {
    fn from(e: ValueError) -> Self {
        EngineError::Invalid(e)
    }
}

/// The server acting on its own for one partner (schedules, alerts), with partner-admin
/// rights; its evidence actor is `cli:<what>`.
pub fn system_principal(partner: &ringfence_model::PartnerId, what: &str) -> Principal {
    Principal {
        kind: ringfence_model::PrincipalKind::Operator { login: what.to_owned() },
        role: ringfence_model::Role::PartnerAdmin,
        partner_id: partner.clone(),
        organization_id: None,
    }
}

/// Where "now" comes from: the system clock in production, a fixed or stepped one in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Timestamp::now))
    }

    pub fn from_fn(f: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

/// The use cases, over one store.
#[derive(Clone)]
pub struct Engine {
    store: DynStore,
    clock: Clock,
    /// The match index, built from the store on first use and after each import.
    intel: Arc<tokio::sync::RwLock<Option<Arc<ringfence_matcher::Index>>>>,
    /// Title results of the current index, shared by every correlation, so a changed
    /// inventory costs only its new titles.
    titles: Arc<std::sync::Mutex<Option<ringfence_matcher::Correlator<Arc<ringfence_matcher::Index>>>>>,
    /// Where alerts are also POSTed as JSON, when configured.
    webhook: Option<Arc<str>>,
    /// A device whose agent has not checked in for this long is offline.
    offline_after: std::time::Duration,
    /// Inventory reports waiting to be written together.
    ingest: Arc<ingest::Ingest>,
    /// Chromium, the logo and SMTP for client reports.
    reports: Arc<delivery::ReportConfig>,
    /// The key that seals secrets at rest (SNMP credentials); none: they cannot be added.
    secrets: Option<Arc<appliances::SecretKey>>,
    /// The server's ed25519 key for agent jobs and evidence checkpoints (hex private, hex
    /// public), from its key file; none: the key the database holds (an engine embedded in
    /// a test or a benchmark).
    signing: Option<Arc<(String, String)>>,
}

impl Engine {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            clock: Clock::system(),
            intel: Default::default(),
            titles: Default::default(),
            webhook: None,
            offline_after: std::time::Duration::from_secs(10 * 60),
            ingest: Default::default(),
            reports: Default::default(),
            secrets: None,
            signing: None,
        }
    }

    /// Sets the key that seals SNMP credentials at rest.
    /// Signs jobs and checkpoints with `secret_hex` (an ed25519 private key, 64 hex digits)
    /// instead of a key kept in the database.
    pub fn with_signing_key(mut self, secret_hex: &str) -> std::result::Result<Self, String> {
        let public = agents::signing_public_key(secret_hex)?;
        self.signing = Some(Arc::new((secret_hex.trim().to_owned(), public)));
        Ok(self)
    }

    pub fn with_secret_key(mut self, key: appliances::SecretKey) -> Self {
        self.secrets = Some(Arc::new(key));
        self
    }

    /// Sets where reports are printed and mailed.
    pub fn with_reports(mut self, config: delivery::ReportConfig) -> Self {
        self.reports = Arc::new(config);
        self
    }

    pub fn with_clock(store: DynStore, clock: Clock) -> Self {
        Self { clock, ..Self::new(store) }
    }

    /// POSTs every alert as JSON to `url` as well as showing it in the dashboard.
    pub fn with_alert_webhook(mut self, url: Option<String>) -> Self {
        self.webhook = url.map(Arc::from);
        self
    }

    /// Sets after how long without a check-in a device counts as offline (default 10 min).
    /// How long a device's agent may stay silent before the device counts as offline.
    pub fn offline_after(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.offline_after).unwrap_or(jiff::SignedDuration::from_mins(10))
    }

    pub fn with_offline_after(mut self, after: std::time::Duration) -> Self {
        self.offline_after = after;
        self
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn audit(&self, p: &Principal) -> Audit {
        Audit::new(p.actor(), self.now())
    }
}

/// Refuses the action unless the principal's role allows `permission`.
fn require(p: &Principal, permission: Permission, action: &str) -> Result<()> {
    if p.allows(permission) {
        Ok(())
    } else {
        Err(EngineError::Forbidden(format!("your role ({}) may not {action}", p.role.label().to_lowercase())))
    }
}

/// Refuses the action for callers limited to one organization.
fn require_partner_wide(p: &Principal, action: &str) -> Result<()> {
    if p.organization_id.is_some() {
        Err(EngineError::Forbidden(format!(
            "your access is limited to one organization, so you may not {action}"
        )))
    } else {
        Ok(())
    }
}
