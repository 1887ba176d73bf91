//! Users and API tokens. Nobody hands out more than they hold: a new user's or token's role
//! may not carry a permission the creator lacks (`Role::may_grant`), and its scope is never
//! wider than the creator's.

use crate::auth::{hash_password, new_secret, secret_hash, verify_password};
use crate::tenancy::{body_id, path_id};
use crate::{Engine, EngineError, Result, require};
use jiff::SignedDuration;
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::*;

fn grantable(p: &Principal, role: Role) -> Result<()> {
    if p.role.may_grant(role) {
        Ok(())
    } else {
        Err(EngineError::Forbidden(format!(
            "your role ({}) may not grant the role {}",
            p.role.label().to_lowercase(),
            role.as_str()
        )))
    }
}

/// A role limited to one organization needs one: given, or the creator's own.
fn require_organization_for(
    role: Role,
    given: Option<&OrganizationId>,
    p: &Principal,
    what: &str,
) -> Result<()> {
    if role.requires_organization() && given.is_none() && p.organization_id.is_none() {
        return Err(ValueError::new(
            "organization_id",
            format!("{what} must be limited to one organization: give its organization_id"),
        )
        .into());
    }
    Ok(())
}

fn display_name(s: &str) -> Result<String> {
    if s.trim().is_empty() { Ok(String::new()) } else { Ok(Name::parse("display_name", s)?.into_string()) }
}

impl Engine {
    pub async fn users(&self, p: &Principal) -> Result<Vec<User>> {
        require(p, Permission::ManageUsers, "manage users")?;
        Ok(self.store().list_users(&p.scope()).await?)
    }

    pub async fn user(&self, p: &Principal, id: &str) -> Result<User> {
        require(p, Permission::ManageUsers, "manage users")?;
        let id = path_id(UserId::parse, id, "user")?;
        Ok(self.store().get_user(&p.scope(), &id).await?)
    }

    pub async fn create_user(&self, p: &Principal, req: &proto::CreateUser) -> Result<User> {
        require(p, Permission::ManageUsers, "manage users")?;
        let role = Role::parse(&req.role)?;
        grantable(p, role)?;
        let organization_id = req
            .organization_id
            .as_deref()
            .map(|o| body_id(OrganizationId::parse, o, "organization_id"))
            .transpose()?;
        require_organization_for(role, organization_id.as_ref(), p, "a client viewer")?;
        check_password_for("password", &req.password, &req.username)?;
        let new = NewUser {
            username: parse_username("username", &req.username)?,
            display_name: display_name(&req.display_name)?,
            role,
            organization_id,
            password_hash: hash_password(&req.password),
        };
        Ok(self.store().create_user(&self.audit(p), &p.scope(), &new).await?)
    }

    pub async fn update_user(&self, p: &Principal, id: &str, req: &proto::UpdateUser) -> Result<User> {
        let uid = path_id(UserId::parse, id, "user")?;
        let is_self = matches!(&p.kind, PrincipalKind::User { id, .. } if *id == uid);
        // Everyone may change their own display name and password; the rest needs ManageUsers.
        let only_own_profile =
            is_self && req.role.is_none() && req.organization_id.is_none() && req.disabled.is_none();
        if !only_own_profile {
            require(p, Permission::ManageUsers, "manage users")?;
        }
        let role = req.role.as_deref().map(Role::parse).transpose()?;
        if let Some(r) = role {
            grantable(p, r)?;
        }
        if is_self && (req.disabled == Some(true) || role.is_some_and(|r| r != p.role)) {
            return Err(EngineError::Forbidden(
                "you may not disable your own account or change your own role; ask another partner admin"
                    .into(),
            ));
        }
        let password_hash = match &req.password {
            Some(pw) => {
                let username = self.store().get_user(&p.scope(), &uid).await?.username;
                check_password_for("password", pw, username.as_str())?;
                if let PrincipalKind::User { username, .. } = &p.kind
                    && is_self
                {
                    // A stolen session must not be enough to take the account over for good.
                    let current = req.current_password.as_deref().unwrap_or("");
                    let ok = match self.store().find_login(username).await? {
                        Some((_, hash)) => verify_password(&hash, current),
                        None => false,
                    };
                    if !ok {
                        return Err(ValueError::new(
                            "current_password",
                            "give your current password to set a new one",
                        )
                        .into());
                    }
                }
                Some(hash_password(pw))
            }
            None => None,
        };
        let patch = UserPatch {
            display_name: req.display_name.as_deref().map(display_name).transpose()?,
            role,
            organization_id: match &req.organization_id {
                None => None,
                Some(None) => Some(None),
                Some(Some(o)) => Some(Some(body_id(OrganizationId::parse, o, "organization_id")?)),
            },
            disabled: req.disabled,
            password_hash,
        };
        let scope = p.scope();
        let before = self.store().get_user(&scope, &uid).await?;
        let new_role = role.unwrap_or(before.role);
        let new_org = match &patch.organization_id {
            Some(o) => o.clone(),
            None => before.organization_id.clone(),
        };
        if new_role.requires_organization() && new_org.is_none() {
            return Err(ValueError::new(
                "organization_id",
                "a client viewer must be limited to one organization",
            )
            .into());
        }
        let audit = self.audit(p);
        let user = self.store().update_user(&audit, &scope, &uid, &patch).await?;
        if req.disabled == Some(true) {
            // Disabling is for good as far as credentials go: enabling the user again does
            // not bring back the API tokens made before.
            for t in self.store().list_tokens(&scope).await? {
                if t.user_id == uid && t.revoked_at.is_none() {
                    self.store().revoke_token(&audit, &scope, &t.id).await?;
                }
            }
        }
        Ok(user)
    }

    pub async fn delete_user(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::ManageUsers, "manage users")?;
        let uid = path_id(UserId::parse, id, "user")?;
        if matches!(&p.kind, PrincipalKind::User { id, .. } if *id == uid) {
            return Err(EngineError::Forbidden("you may not delete your own account".into()));
        }
        Ok(self.store().delete_user(&self.audit(p), &p.scope(), &uid).await?)
    }

    /// Tokens visible to the caller: all in scope for user managers, else their own.
    pub async fn tokens(&self, p: &Principal) -> Result<Vec<ApiToken>> {
        let all = self.store().list_tokens(&p.scope()).await?;
        if p.allows(Permission::ManageUsers) {
            return Ok(all);
        }
        Ok(match &p.kind {
            PrincipalKind::User { id, .. } => all.into_iter().filter(|t| &t.user_id == id).collect(),
            _ => Vec::new(),
        })
    }

    /// Creates a token for the signed-in user; the secret is returned this once.
    pub async fn create_token(&self, p: &Principal, req: &proto::CreateToken) -> Result<proto::CreatedToken> {
        let user_id = match &p.kind {
            PrincipalKind::User { id, .. } => id.clone(),
            _ => {
                return Err(EngineError::Forbidden(
                    "API tokens are created by a signed-in user, not by another token".into(),
                ));
            }
        };
        let role = req.role.as_deref().map(Role::parse).transpose()?.unwrap_or(p.role);
        grantable(p, role)?;
        let organization_id = req
            .organization_id
            .as_deref()
            .map(|o| body_id(OrganizationId::parse, o, "organization_id"))
            .transpose()?;
        require_organization_for(role, organization_id.as_ref(), p, "a client viewer token")?;
        let expires_at = match req.expires_in_days {
            None => None,
            Some(d) if (1..=3650).contains(&d) => Some(self.now() + SignedDuration::from_hours(24 * d)),
            Some(_) => return Err(ValueError::new("expires_in_days", "must be between 1 and 3650").into()),
        };
        let secret = new_secret("rft_");
        let new = NewToken {
            user_id,
            name: Name::parse("name", &req.name)?.into_string(),
            role,
            organization_id,
            token_hash: secret_hash(&secret),
            expires_at,
        };
        let token = self.store().create_token(&self.audit(p), &p.scope(), &new).await?;
        Ok(proto::CreatedToken { token, secret })
    }

    pub async fn revoke_token(&self, p: &Principal, id: &str) -> Result<ApiToken> {
        let tid = path_id(TokenId::parse, id, "API token")?;
        let visible = self.tokens(p).await?;
        if !visible.iter().any(|t| t.id == tid) {
            return Err(EngineError::NotFound("API token"));
        }
        Ok(self.store().revoke_token(&self.audit(p), &p.scope(), &tid).await?)
    }
}
