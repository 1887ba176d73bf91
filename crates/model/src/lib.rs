//! Domain types of ringfence: identifiers, the tenancy tree (partner → organization → site →
//! device group → device), users, roles and the scopes they act in, and validated values.
//!
//! This crate does no I/O. Values that come from outside are parsed into these types at the
//! boundary (`Name::parse`, `TimeZoneName::parse`, `Role::parse`), so an invalid one cannot
//! exist past it.

mod ids;
mod tenancy;
mod users;
mod values;

pub use ids::*;
pub use tenancy::*;
pub use users::*;
pub use values::*;

/// Instants are stored and exchanged as UTC.
pub type Timestamp = jiff::Timestamp;
