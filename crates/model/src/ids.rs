//! Opaque identifiers. They are UUIDv7 strings: sortable by creation time and not guessable
//! across tenants, so an identifier alone reveals nothing about another tenant's objects.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// A fresh identifier.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Accepts any identifier-shaped string: a lookup with an identifier that does
            /// not exist simply finds nothing.
            pub fn parse(s: &str) -> Result<Self, crate::ValueError> {
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(crate::ValueError::new(
                        stringify!($name),
                        "is not an identifier: use the `id` value returned when the object was created",
                    ))
                }
            }

            /// Wraps a value read back from the store.
            pub fn from_stored(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

id_type!(
    /// A partner: one MSP, the root of a tenancy tree.
    PartnerId,
    /// A client organization of a partner.
    OrganizationId,
    /// A location of an organization.
    SiteId,
    /// A named set of devices within an organization.
    DeviceGroupId,
    /// One endpoint or agentless network device.
    DeviceId,
    /// A person who signs in to the dashboard or the API.
    UserId,
    /// An API token for scripts.
    TokenId,
    /// A site's enrollment token for agents.
    EnrollmentTokenId,
);
