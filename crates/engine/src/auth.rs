//! Sign-in and credentials: Argon2id password hashes, session cookies and API tokens (random
//! secrets of which only the SHA-256 is stored), login throttling, and turning a presented
//! credential into a [`Principal`].

use crate::{Engine, EngineError, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::SignedDuration;
use rand_core::{OsRng, RngCore};
use ringfence_model::*;
use ringfence_store::{EventRecord, SessionRecord};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a dashboard session lasts.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);
/// Failed sign-ins counted per (account, client address) …
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// … and per client address across accounts …
pub const MAX_FAILURES_PER_CLIENT: i64 = 30;
/// … within this window.
pub const THROTTLE_WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// A hash of a password that nobody has, verified against when the account does not exist,
/// so that a wrong username takes as long as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0uwGk3ukEhbnWWq9k5pWMc1Yo0VQLEgQ8yFn0ad5r6Y";

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing only fails for parameters or salts outside Argon2's limits; the defaults and
        // a generated salt are inside them.
        .expect("Argon2id hashing with default parameters succeeds")
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A new random secret: `prefix` followed by 64 hex characters (256 bits).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// What is stored for a secret: its SHA-256. The secrets are random and long, so a fast hash
/// is enough; passwords, chosen by people, use Argon2id instead.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two strings without revealing where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A new dashboard session: the cookie value (given to the browser, never stored) and the
/// CSRF token that forms of this session must echo.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub cookie: String,
    pub csrf_token: String,
    pub principal: Principal,
}

/// A resolved session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub principal: Principal,
    pub csrf_token: String,
    pub display_name: String,
}

fn user_principal(u: &User) -> Principal {
    Principal {
        kind: PrincipalKind::User { id: u.id.clone(), username: u.username.clone() },
        role: u.role,
        partner_id: u.partner_id.clone(),
        organization_id: u.organization_id.clone(),
    }
}

impl Engine {
    /// Checks a username and password from `client` (an address, for throttling) and opens
    /// a session. Throttled clients are refused before the password is looked at.
    pub async fn login(&self, username: &str, password: &str, client: &str) -> Result<NewSession> {
        let username = username.trim().to_lowercase();
        let now = self.now();
        let since = now - THROTTLE_WINDOW;
        // The key holds a digest of the username, so a long one cannot bloat the table.
        let account_key = format!("account:{}|{client}", &secret_hash(&username)[..32]);
        let client_key = format!("client:{client}");
        let store = self.store();
        if store.count_login_failures(&account_key, since).await? >= MAX_FAILURES_PER_ACCOUNT
            || store.count_login_failures(&client_key, since).await? >= MAX_FAILURES_PER_CLIENT
        {
            tracing::warn!(client, username = %username, "sign-in throttled");
            return Err(EngineError::Throttled { retry_after_secs: THROTTLE_WINDOW.as_secs() as u64 });
        }
        let found = if username.len() <= 120 { store.find_login(&username).await? } else { None };
        let ok = match &found {
            Some((user, hash)) => verify_password(hash, password) && !user.disabled,
            None => {
                verify_password(DUMMY_HASH, password);
                false
            }
        };
        let user = match (ok, found) {
            (true, Some((user, _))) => user,
            _ => {
                store.record_login_failure(&account_key, now).await?;
                store.record_login_failure(&client_key, now).await?;
                return Err(EngineError::Unauthenticated("the username or password is wrong".to_owned()));
            }
        };
        store.clear_login_failures(&account_key).await?;
        let cookie = new_secret("rfs_");
        let csrf_token = new_secret("");
        store
            .create_session(&SessionRecord {
                id_hash: secret_hash(&cookie),
                user_id: user.id.clone(),
                csrf_token: csrf_token.clone(),
                created_at: now,
                expires_at: now + SESSION_TTL,
            })
            .await?;
        let principal = user_principal(&user);
        let event = EventRecord {
            action: "session.login".into(),
            object_kind: "user".into(),
            object_id: user.id.to_string(),
            organization_id: user.organization_id.clone(),
            payload: json!({ "client": client }),
        };
        store.record_event(&self.audit(&principal), &principal.scope(), &event).await?;
        Ok(NewSession { cookie, csrf_token, principal })
    }

    /// The session behind a cookie value, if it is live.
    pub async fn session(&self, cookie: &str) -> Result<Option<SessionInfo>> {
        if !cookie.starts_with("rfs_") || cookie.len() > 100 {
            return Ok(None);
        }
        let found = self.store().find_session(&secret_hash(cookie), self.now()).await?;
        Ok(found.map(|(user, csrf_token)| SessionInfo {
            principal: user_principal(&user),
            csrf_token,
            display_name: if user.display_name.is_empty() { user.username } else { user.display_name },
        }))
    }

    pub async fn logout(&self, cookie: &str) -> Result<()> {
        if let Some(s) = self.session(cookie).await? {
            self.store().delete_session(&secret_hash(cookie)).await?;
            let p = &s.principal;
            let event = EventRecord {
                action: "session.logout".into(),
                object_kind: "user".into(),
                object_id: match &p.kind {
                    PrincipalKind::User { id, .. } => id.to_string(),
                    _ => String::new(),
                },
                organization_id: p.organization_id.clone(),
                payload: json!({}),
            };
            self.store().record_event(&self.audit(p), &p.scope(), &event).await?;
        }
        Ok(())
    }

    /// The principal behind an API token (`Authorization: Bearer rft_…`), if it is live.
    pub async fn token_principal(&self, secret: &str) -> Result<Option<Principal>> {
        if !secret.starts_with("rft_") || secret.len() > 100 {
            return Ok(None);
        }
        let found = self.store().find_token(&secret_hash(secret), self.now()).await?;
        Ok(found.map(|t| Principal {
            kind: PrincipalKind::Token { id: t.id, name: t.name, user_id: t.user_id },
            role: t.role,
            partner_id: t.partner_id,
            organization_id: t.organization_id,
        }))
    }

    /// Acts as the user `username` of the operator's partner (the CLI creates API tokens on
    /// behalf of a user this way).
    pub async fn as_user(&self, operator: &Principal, username: &str) -> Result<Principal> {
        let username = username.trim().to_lowercase();
        match self.store().find_login(&username).await? {
            Some((user, _)) if user.partner_id == operator.partner_id && !user.disabled => {
                Ok(user_principal(&user))
            }
            _ => Err(EngineError::NotFound("user")),
        }
    }

    /// Removes expired sessions; returns how many. The server runs it periodically.
    pub async fn expire_sessions(&self) -> Result<u64> {
        Ok(self.store().delete_expired_sessions(self.now()).await?)
    }

    /// The installation operator acting on one partner through the CLI.
    pub async fn operator(&self, login: &str, partner: &str) -> Result<Principal> {
        let p = match self.store().find_partner_by_name(partner).await? {
            Some(p) => p,
            None => {
                let id = PartnerId::parse(partner).map_err(|_| EngineError::NotFound("partner"))?;
                self.store().get_partner(&Scope::partner(id)).await?
            }
        };
        Ok(Principal {
            kind: PrincipalKind::Operator { login: login.to_owned() },
            role: Role::PartnerAdmin,
            partner_id: p.id,
            organization_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert_ne!(h, hash_password("correct horse battery"), "salts differ");
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret("rft_");
        let b = new_secret("rft_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
