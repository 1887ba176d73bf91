//! CPE 2.3 names (NISTIR 7695): parsing and printing the formatted-string binding
//! (`cpe:2.3:a:vendor:product:…`, with its backslash escapes and `*`/`?` wildcards) and the
//! CPE 2.2 URI binding (`cpe:/a:vendor:product:…`, percent-encoded, with a packed edition),
//! and name comparison as NISTIR 7696 defines it.
//!
//! Values are kept in a well-formed-name form: ANY, NA, or a sequence of literal characters
//! and the two logical wildcards. Comparison is case-insensitive (letters are lower-cased at
//! parse time, as NVD writes them). This crate does no I/O.

mod bind;
mod matching;

pub use matching::{Relation, compare_names, compare_values};

use std::fmt;

/// Why a CPE name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CpeError(pub String);

/// The eleven attributes, in binding order.
pub const ATTRIBUTES: [&str; 11] = [
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
];

/// One character of a value: a literal, or a logical wildcard (only at either end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    Char(char),
    /// `*`: zero or more characters.
    AnyString,
    /// `?`: one character; a run of `n` at either end of a value matches up to `n` characters
    /// (NISTIR 7696 `compare_strings`).
    AnyChar,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Value {
    /// The logical value ANY (`*`, or empty in a URI): any value matches.
    #[default]
    Any,
    /// The logical value NA (`-`): not applicable.
    Na,
    Text(Vec<Token>),
}

impl Value {
    pub fn has_wildcards(&self) -> bool {
        matches!(self, Value::Text(t) if t.iter().any(|c| !matches!(c, Token::Char(_))))
    }

    /// The literal text of a value without wildcards (e.g. a version to compare).
    pub fn literal(&self) -> Option<String> {
        match self {
            Value::Text(t) if !self.has_wildcards() => Some(
                t.iter()
                    .map(|c| match c {
                        Token::Char(c) => *c,
                        _ => unreachable!("checked: no wildcards"),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// A CPE name: the eleven attribute values of a well-formed name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Cpe {
    pub values: [Value; 11],
}

impl Cpe {
    /// Parses either binding: `cpe:2.3:…` (formatted string) or `cpe:/…` (URI).
    pub fn parse(s: &str) -> Result<Self, CpeError> {
        let t = s.trim();
        // Byte-wise: the input may hold any UTF-8, and a prefix length may fall inside a
        // multi-byte character.
        let starts =
            |p: &str| t.as_bytes().get(..p.len()).is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()));
        if starts("cpe:2.3:") {
            bind::parse_fs(t)
        } else if starts("cpe:/") {
            bind::parse_uri(t)
        } else {
            Err(CpeError(format!(
                "'{}' is not a CPE name: it must start with 'cpe:2.3:' (formatted string) or 'cpe:/' (URI)",
                t.chars().take(60).collect::<String>()
            )))
        }
    }

    pub fn part(&self) -> &Value {
        &self.values[0]
    }

    pub fn vendor(&self) -> &Value {
        &self.values[1]
    }

    pub fn product(&self) -> &Value {
        &self.values[2]
    }

    pub fn version(&self) -> &Value {
        &self.values[3]
    }

    /// The formatted-string binding (`cpe:2.3:…`).
    pub fn to_fs(&self) -> String {
        bind::to_fs(self)
    }

    /// The CPE 2.2 URI binding (`cpe:/…`); extended attributes are packed into the edition.
    pub fn to_uri(&self) -> String {
        bind::to_uri(self)
    }
}

impl fmt::Display for Cpe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fs())
    }
}

impl std::str::FromStr for Cpe {
    type Err = CpeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cpe::parse(s)
    }
}
