//! The `Store` trait: every read and write of ringfence's data, and its two implementations,
//! embedded SQLite (the default) and PostgreSQL (for scale and several servers).
//!
//! Every method that touches tenant data takes a [`Scope`]; rows outside it are not found
//! (`StoreError::NotFound`), never "forbidden", so a caller cannot learn that they exist.
//! Every write that changes state takes an [`Audit`] and appends its evidence event in the
//! same transaction: the change and its record land together or not at all.
//!
//! This crate knows nothing of HTTP, roles or sessions' cookies; `engine` decides who may
//! call what.

mod appliances;
mod deploy;
mod faults;
mod intel;
mod remediation;
mod reports;
mod types;

pub use appliances::*;
pub use deploy::*;
pub use faults::*;
pub use intel::*;
pub use remediation::*;
pub use reports::*;
pub use types::*;

use async_trait::async_trait;
use ringfence_evidence::Event;
use ringfence_model::*;
use std::sync::Arc;

pub mod postgres;
pub mod sqlite;
pub mod testing;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist in the caller's scope.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken (e.g. a second site with the same name).
    #[error("{0}")]
    Conflict(String),
    /// The request names something that cannot be used (e.g. a group of another organization).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Open(String),
    /// A batched write failed as a whole (the cause is in the message, and the storage
    /// fault behind it, if it was one).
    #[error("database error: {0}")]
    Batch(String, Option<StorageFault>),
}

impl StoreError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid { field, message: message.into() }
    }
}

/// Who made a change and when; recorded in the evidence event of every write.
#[derive(Clone, Debug)]
pub struct Audit {
    pub actor: String,
    pub at: Timestamp,
}

impl Audit {
    /// `at` is kept to the microsecond, the precision the store keeps.
    pub fn new(actor: impl Into<String>, at: Timestamp) -> Self {
        let at = Timestamp::from_microsecond(at.as_microsecond()).unwrap_or(at);
        Self { actor: actor.into(), at }
    }
}

/// All of ringfence's persistent state.
#[async_trait]
pub trait Store:
    IntelStore
    + AgentStore
    + RemediationStore
    + DeploymentStore
    + ReportStore
    + ApplianceStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// A tiny write transaction, for readiness checks: fails when the storage cannot take
    /// writes (a full disk, a read-only file system).
    async fn probe_write(&self) -> Result<()>;
    /// Free bytes where the database writes, when the server can tell (an embedded file).
    fn free_space(&self) -> Option<u64> {
        None
    }

    // Partners: created and deleted by the installation's operator only.
    async fn create_partner(&self, audit: &Audit, name: &Name) -> Result<Partner>;
    async fn list_partners(&self) -> Result<Vec<Partner>>;
    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>>;
    async fn get_partner(&self, scope: &Scope) -> Result<Partner>;
    async fn rename_partner(&self, audit: &Audit, scope: &Scope, name: &Name) -> Result<Partner>;
    async fn delete_partner(&self, audit: &Audit, id: &PartnerId) -> Result<()>;

    async fn list_organizations(&self, scope: &Scope) -> Result<Vec<Organization>>;
    async fn get_organization(&self, scope: &Scope, id: &OrganizationId) -> Result<Organization>;
    async fn create_organization(
        &self,
        audit: &Audit,
        scope: &Scope,
        new: &NewOrganization,
    ) -> Result<Organization>;
    async fn update_organization(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &OrganizationId,
        patch: &OrganizationPatch,
    ) -> Result<Organization>;
    async fn delete_organization(&self, audit: &Audit, scope: &Scope, id: &OrganizationId) -> Result<()>;

    async fn list_sites(&self, scope: &Scope, organization: Option<&OrganizationId>) -> Result<Vec<Site>>;
    async fn get_site(&self, scope: &Scope, id: &SiteId) -> Result<Site>;
    async fn create_site(&self, audit: &Audit, scope: &Scope, new: &NewSite) -> Result<Site>;
    async fn update_site(&self, audit: &Audit, scope: &Scope, id: &SiteId, patch: &SitePatch)
    -> Result<Site>;
    async fn delete_site(&self, audit: &Audit, scope: &Scope, id: &SiteId) -> Result<()>;

    async fn list_groups(
        &self,
        scope: &Scope,
        organization: Option<&OrganizationId>,
    ) -> Result<Vec<DeviceGroup>>;
    async fn get_group(&self, scope: &Scope, id: &DeviceGroupId) -> Result<DeviceGroup>;
    async fn create_group(&self, audit: &Audit, scope: &Scope, new: &NewGroup) -> Result<DeviceGroup>;
    async fn update_group(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &DeviceGroupId,
        patch: &GroupPatch,
    ) -> Result<DeviceGroup>;
    async fn delete_group(&self, audit: &Audit, scope: &Scope, id: &DeviceGroupId) -> Result<()>;

    async fn list_devices(&self, scope: &Scope, query: &DeviceQuery) -> Result<Page<Device>>;
    /// The device list with client, site, presence and open findings, filtered, sorted and
    /// paged in the database.
    async fn list_device_rows(&self, scope: &Scope, query: &DeviceRowQuery) -> Result<Page<DeviceRow>>;
    async fn get_device(&self, scope: &Scope, id: &DeviceId) -> Result<Device>;
    async fn create_device(&self, audit: &Audit, scope: &Scope, new: &NewDevice) -> Result<Device>;
    async fn update_device(
        &self,
        audit: &Audit,
        scope: &Scope,
        id: &DeviceId,
        patch: &DevicePatch,
    ) -> Result<Device>;
    async fn delete_device(&self, audit: &Audit, scope: &Scope, id: &DeviceId) -> Result<()>;

    async fn list_users(&self, scope: &Scope) -> Result<Vec<User>>;
    async fn get_user(&self, scope: &Scope, id: &UserId) -> Result<User>;
    async fn create_user(&self, audit: &Audit, scope: &Scope, new: &NewUser) -> Result<User>;
    async fn update_user(&self, audit: &Audit, scope: &Scope, id: &UserId, patch: &UserPatch)
    -> Result<User>;
    async fn delete_user(&self, audit: &Audit, scope: &Scope, id: &UserId) -> Result<()>;
    /// The user with this login name and their password hash, in whatever tenant: the one
    /// lookup that precedes knowing the caller's scope.
    async fn find_login(&self, username: &str) -> Result<Option<(User, String)>>;

    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// The live session with this cookie hash and its user (enabled users only).
    async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<(User, String)>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    async fn create_token(&self, audit: &Audit, scope: &Scope, new: &NewToken) -> Result<ApiToken>;
    async fn list_tokens(&self, scope: &Scope) -> Result<Vec<ApiToken>>;
    async fn revoke_token(&self, audit: &Audit, scope: &Scope, id: &TokenId) -> Result<ApiToken>;
    /// The live token with this hash (not revoked, not expired, owner enabled); marks it used.
    async fn find_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<ApiToken>>;

    /// Failed sign-ins for `key` since `since`.
    async fn count_login_failures(&self, key: &str, since: Timestamp) -> Result<i64>;
    async fn record_login_failure(&self, key: &str, at: Timestamp) -> Result<()>;
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// Appends an event that is not tied to a state change made by the store (e.g. a sign-in).
    async fn record_event(&self, audit: &Audit, scope: &Scope, event: &EventRecord) -> Result<i64>;
    /// Events of one chain with `seq > after`, in order, at most `limit`; only those of
    /// `organization` when one is given.
    async fn list_events(
        &self,
        chain: &str,
        organization: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>>;
    /// Every chain that has at least one event.
    async fn event_chains(&self) -> Result<Vec<String>>;
    /// Every chain's recorded head: (chain, seq, hash).
    async fn chain_heads(&self) -> Result<Vec<(String, i64, String)>>;
}

/// A store chosen at run time.
pub type DynStore = Arc<dyn Store>;

/// Where the data lives: a SQLite file or a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…`/`postgresql://…` is PostgreSQL, `sqlite:PATH` or a plain path is SQLite.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_owned())
        } else {
            Location::Sqlite(s.strip_prefix("sqlite:").unwrap_or(s).into())
        }
    }

    /// The location with any password removed, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Opens (and creates, for SQLite) the store and applies pending migrations.
pub async fn open(location: &Location) -> Result<DynStore> {
    Ok(match location {
        Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        Location::Postgres(url) => Arc::new(postgres::PgStore::connect(url).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(Location::parse("postgres://u:p@h/db").redacted(), "postgres://u:***@h/db");
        assert_eq!(Location::parse("sqlite:/tmp/x.db"), Location::Sqlite("/tmp/x.db".into()));
        assert_eq!(Location::parse("data/x.db"), Location::Sqlite("data/x.db".into()));
    }
}
