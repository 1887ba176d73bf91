//! Validated values: every constructor says what was wrong with its input and what to do.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value from outside that was refused; `field` names it, `message` says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValueError {
    pub field: String,
    pub message: String,
}

impl ValueError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error, reported against a named field of a request.
    pub fn for_field(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }
}

/// Longest name accepted for any named object.
pub const MAX_NAME_LEN: usize = 200;
/// Longest free-text note accepted.
pub const MAX_NOTES_LEN: usize = 4000;

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &str, s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ValueError::new(field, "must not be empty"));
        }
        let len = t.chars().count();
        if len > MAX_NAME_LEN {
            return Err(ValueError::new(
                field,
                format!("is {len} characters long; the limit is {MAX_NAME_LEN}"),
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(ValueError::new(field, "must not contain control characters"));
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text such as notes: at most 4000 characters; tabs and newlines allowed.
pub fn parse_notes(field: &str, s: &str) -> Result<String, ValueError> {
    let len = s.chars().count();
    if len > MAX_NOTES_LEN {
        return Err(ValueError::new(
            field,
            format!("is {len} characters long; the limit is {MAX_NOTES_LEN}"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ValueError::new(field, "must not contain control characters"));
    }
    Ok(s.trim().to_owned())
}

/// A host name as a device reports it: letters, digits, `-`, `_` and `.`, 1 to 253 bytes.
pub fn parse_hostname(field: &str, s: &str) -> Result<String, ValueError> {
    let t = s.trim();
    if t.is_empty() || t.len() > 253 {
        return Err(ValueError::new(field, "must be 1 to 253 characters long"));
    }
    if !t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(ValueError::new(
            field,
            format!("'{t}' is not a host name: use letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(t.to_owned())
}

/// An IANA time zone name that the bundled time zone database knows, such as
/// `America/New_York`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(field: &str, s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        if t.is_empty() || t.len() > 64 {
            return Err(ValueError::new(field, "must be an IANA time zone name such as 'America/New_York'"));
        }
        match jiff::tz::TimeZone::get(t) {
            Ok(_) => Ok(Self(t.to_owned())),
            Err(_) => Err(ValueError::new(
                field,
                format!("'{t}' is not a known IANA time zone: use a name such as 'Europe/Berlin'"),
            )),
        }
    }

    pub fn utc() -> Self {
        Self("UTC".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a closed set of lower-case string values with parsing that lists the choices.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<Self, ValueError> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(ValueError::new(
                        $field,
                        format!(
                            "'{other}' is not valid: use one of {}",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// What a device is for; exposure and risk rules use it.
    DeviceRole, "role" {
        Workstation => "workstation",
        Laptop => "laptop",
        Server => "server",
        DomainController => "domain_controller",
        Hypervisor => "hypervisor",
        NetworkAppliance => "network_appliance",
        Kiosk => "kiosk",
        Other => "other",
    }
);

string_enum!(
    /// How much the client's business depends on a device.
    Criticality, "criticality" {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("name", "  HQ ").unwrap().as_str(), "HQ");
        assert_eq!(Name::parse("name", "   ").unwrap_err().message, "must not be empty");
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let err = Name::parse("name", &long).unwrap_err();
        assert!(err.message.contains("201 characters"), "{err}");
        assert!(Name::parse("name", "a\u{0}b").is_err());
        assert_eq!(Name::parse("name", &"é".repeat(MAX_NAME_LEN)).unwrap().as_str().chars().count(), 200);
    }

    #[test]
    fn time_zones_come_from_the_iana_database() {
        assert_eq!(TimeZoneName::parse("tz", "America/Chicago").unwrap().as_str(), "America/Chicago");
        let err = TimeZoneName::parse("time_zone", "Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "time_zone");
        assert!(err.message.contains("Mars/Olympus"));
        assert!(TimeZoneName::parse("tz", "").is_err());
    }

    #[test]
    fn enums_list_their_choices_when_refusing() {
        assert_eq!(DeviceRole::parse("domain_controller").unwrap(), DeviceRole::DomainController);
        let err = Criticality::parse("extreme").unwrap_err();
        assert!(err.message.contains("low, medium, high, critical"), "{err}");
        for r in DeviceRole::ALL {
            assert_eq!(DeviceRole::parse(r.as_str()).unwrap(), *r);
        }
    }

    #[test]
    fn hostnames() {
        assert_eq!(parse_hostname("hostname", "ws-01.law.local").unwrap(), "ws-01.law.local");
        assert!(parse_hostname("hostname", "bad host").is_err());
        assert!(parse_hostname("hostname", "").is_err());
    }
}
