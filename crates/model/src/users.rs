//! Users, roles, permissions and the scope a caller acts in.
//!
//! Role and scope are decided here, once: `Role::allows` is the single table of what each
//! role may do, and `Principal::scope` is the only way a request obtains the tenant filter
//! that every store query takes.

use crate::{OrganizationId, PartnerId, Timestamp, TokenId, UserId, ValueError, values::string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;

string_enum!(
    /// What a user or token may do.
    Role, "role" {
        PartnerAdmin => "partner_admin",
        Technician => "technician",
        ClientViewer => "client_viewer",
        Auditor => "auditor",
    }
);

/// An action that needs a permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read the tenancy tree, devices and everything operational within scope.
    Read,
    /// Create, change and delete organizations, sites, groups and devices.
    WriteTenancy,
    /// Change the partner's own settings.
    ManagePartner,
    /// Create and remove users and API tokens.
    ManageUsers,
    /// Read and export the evidence log.
    ReadEvidence,
    /// Approve, reject or defer updates; record exceptions and risk decisions.
    Approve,
    /// Create, change and delete configuration policies.
    ManagePolicy,
    /// Generate client reports and schedule their delivery.
    ManageReports,
    /// Add, import and sweep for network appliances, keep their SNMP credentials, map unknown
    /// devices, and work appliance maintenance tasks.
    ManageAppliances,
}

impl Role {
    /// The one table of what each role may do.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::PartnerAdmin => true,
            Role::Technician => {
                matches!(p, Read | WriteTenancy | ReadEvidence | Approve | ManageReports | ManageAppliances)
            }
            Role::ClientViewer => matches!(p, Read),
            Role::Auditor => matches!(p, Read | ReadEvidence),
        }
    }

    /// Whether this role must be limited to one organization.
    pub fn requires_organization(self) -> bool {
        matches!(self, Role::ClientViewer)
    }

    /// Whether a holder of `self` may hand out `other` (to a new user or token):
    /// never a role with a permission the holder lacks.
    pub fn may_grant(self, other: Role) -> bool {
        use Permission::*;
        [Read, WriteTenancy, ManagePartner, ManageUsers, ReadEvidence, Approve, ManagePolicy, ManageReports]
            .into_iter()
            .all(|p| !other.allows(p) || self.allows(p))
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::PartnerAdmin => "Partner admin",
            Role::Technician => "Technician",
            Role::ClientViewer => "Client viewer",
            Role::Auditor => "Auditor",
        }
    }
}

/// The tenant filter of every store query: always a partner, and for callers limited to one
/// client, that organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub partner_id: PartnerId,
    pub organization_id: Option<OrganizationId>,
}

impl Scope {
    pub fn partner(partner_id: PartnerId) -> Self {
        Self { partner_id, organization_id: None }
    }

    pub fn organization(partner_id: PartnerId, organization_id: OrganizationId) -> Self {
        Self { partner_id, organization_id: Some(organization_id) }
    }

    /// Whether an object of `organization` is visible in this scope.
    pub fn sees_organization(&self, organization: &OrganizationId) -> bool {
        self.organization_id.as_ref().is_none_or(|o| o == organization)
    }
}

/// Who is acting: a signed-in user, an API token, or the local operator at the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub role: Role,
    pub partner_id: PartnerId,
    pub organization_id: Option<OrganizationId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User {
        id: UserId,
        username: String,
    },
    Token {
        id: TokenId,
        name: String,
        user_id: UserId,
    },
    /// The operator of the installation, acting through `ringfence admin` with direct access
    /// to the database; holds partner-admin rights on the partner named.
    Operator {
        login: String,
    },
}

impl Principal {
    pub fn scope(&self) -> Scope {
        Scope { partner_id: self.partner_id.clone(), organization_id: self.organization_id.clone() }
    }

    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// The actor recorded in the evidence log.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::User { username, .. } => format!("user:{username}"),
            PrincipalKind::Token { name, id, .. } => format!("token:{name}:{id}"),
            PrincipalKind::Operator { login } => format!("cli:{login}"),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.actor(), self.role)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub partner_id: PartnerId,
    /// Set for users limited to one client organization.
    pub organization_id: Option<OrganizationId>,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: TokenId,
    pub partner_id: PartnerId,
    pub organization_id: Option<OrganizationId>,
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

/// A username: an e-mail-like login, 3 to 120 characters, no spaces, compared in lower case.
pub fn parse_username(field: &str, s: &str) -> Result<String, ValueError> {
    let t = s.trim().to_lowercase();
    if t.len() < 3 || t.len() > 120 {
        return Err(ValueError::new(field, "must be 3 to 120 characters long"));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValueError::new(field, "must not contain spaces or control characters"));
    }
    Ok(t)
}

/// Passwords: at least 12 characters, at most 1024 (hashing cost is bounded).
pub fn check_password(field: &str, s: &str) -> Result<(), ValueError> {
    let n = s.chars().count();
    if n < 12 {
        return Err(ValueError::new(field, "must be at least 12 characters long"));
    }
    if s.len() > 1024 {
        return Err(ValueError::new(field, "must be at most 1024 bytes long"));
    }
    Ok(())
}

/// [`check_password`], and not guessable from what an attacker knows of the account: not the
/// username or its e-mail local part, not one character repeated or a handful of characters.
pub fn check_password_for(field: &str, s: &str, username: &str) -> Result<(), ValueError> {
    check_password(field, s)?;
    let pw = s.to_lowercase();
    let user = username.trim().to_lowercase();
    let local = user.split('@').next().unwrap_or("");
    if pw == user || (local.chars().count() >= 4 && pw.contains(local)) {
        return Err(ValueError::new(
            field,
            "must not contain the username: choose something unrelated to the account",
        ));
    }
    let mut distinct: Vec<char> = pw.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(ValueError::new(
            field,
            "uses fewer than 5 different characters: a passphrase of several words is easy to remember",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_guessable_from_the_account_are_refused() {
        let reason = |pw: &str| {
            check_password_for("password", pw, "amy.lee@hartleymoss.example").err().map(|e| e.to_string())
        };
        assert!(reason("aaaaaaaaaaaa").unwrap().contains("fewer than 5 different characters"));
        assert!(reason("amy.lee@hartleymoss.example").unwrap().contains("username"));
        assert!(reason("AMY.LEE-was-here-2026").unwrap().contains("username"));
        assert!(reason("short").unwrap().contains("at least 12"));
        assert_eq!(reason("correct-horse-battery"), None);
        // A short local part is not searched for inside the password.
        assert_eq!(check_password_for("password", "bolt cutters 2026", "bo@x.example").err(), None);
    }

    #[test]
    fn role_table() {
        use Permission::*;
        assert!(Role::PartnerAdmin.allows(ManageUsers));
        assert!(Role::Technician.allows(WriteTenancy));
        assert!(!Role::Technician.allows(ManageUsers));
        assert!(!Role::ClientViewer.allows(WriteTenancy));
        assert!(!Role::ClientViewer.allows(ReadEvidence));
        assert!(Role::Auditor.allows(ReadEvidence));
        assert!(!Role::Auditor.allows(WriteTenancy));
        assert!(!Role::Auditor.allows(ManageReports));
        assert!(Role::Technician.allows(ManageReports));
    }

    #[test]
    fn nobody_grants_more_than_they_hold() {
        assert!(Role::PartnerAdmin.may_grant(Role::PartnerAdmin));
        assert!(Role::Technician.may_grant(Role::ClientViewer));
        assert!(!Role::Technician.may_grant(Role::PartnerAdmin));
        assert!(!Role::Auditor.may_grant(Role::Technician));
        assert!(Role::Auditor.may_grant(Role::ClientViewer));
        assert!(!Role::ClientViewer.may_grant(Role::Auditor));
    }

    #[test]
    fn scope_visibility() {
        let p = PartnerId::generate();
        let a = OrganizationId::generate();
        let b = OrganizationId::generate();
        assert!(Scope::partner(p.clone()).sees_organization(&a));
        assert!(Scope::organization(p.clone(), a.clone()).sees_organization(&a));
        assert!(!Scope::organization(p, a).sees_organization(&b));
    }
}
