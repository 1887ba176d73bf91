//! Name comparison as NISTIR 7696 defines it: a relation per attribute (Table 6-2), then one
//! for the whole name.

use crate::{Cpe, Token, Value};
use std::fmt;

/// How the source name's set of products relates to the target's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    Equal,
    Superset,
    Subset,
    Disjoint,
    Undefined,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::Equal => "EQUAL",
            Relation::Superset => "SUPERSET",
            Relation::Subset => "SUBSET",
            Relation::Disjoint => "DISJOINT",
            Relation::Undefined => "UNDEFINED",
        })
    }
}

/// Whether `pattern` (literals and wildcards) matches the literal `text`.
fn glob(pattern: &[Token], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((Token::AnyString, rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((Token::AnyChar, rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((Token::Char(c), rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// The relation of one source attribute value to one target value (NISTIR 7696 Table 6-2).
pub fn compare_values(source: &Value, target: &Value) -> Relation {
    use Relation::*;
    if target.has_wildcards() {
        // Rows 4, 8, 11 and 17: a target with wildcards is undefined for every source.
        return Undefined;
    }
    match (source, target) {
        (Value::Any, Value::Any) => Equal,
        (Value::Any, _) => Superset,
        (Value::Na, Value::Any) => Subset,
        (Value::Na, Value::Na) => Equal,
        (Value::Na, Value::Text(_)) => Disjoint,
        (Value::Text(_), Value::Any) => Subset,
        (Value::Text(_), Value::Na) => Disjoint,
        (Value::Text(s), Value::Text(t)) => {
            if source.has_wildcards() {
                let text: Vec<char> = t
                    .iter()
                    .filter_map(|x| match x {
                        Token::Char(c) => Some(*c),
                        _ => None,
                    })
                    .collect();
                if glob(s, &text) { Superset } else { Disjoint }
            } else if s == t {
                Equal
            } else {
                Disjoint
            }
        }
    }
}

/// The relation of two names: EQUAL if every attribute is equal; else SUPERSET if every
/// attribute is SUPERSET or EQUAL; else SUBSET if every attribute is SUBSET or EQUAL; else
/// DISJOINT if any attribute is DISJOINT; else UNDEFINED.
pub fn compare_names(source: &Cpe, target: &Cpe) -> Relation {
    use Relation::*;
    let r: Vec<Relation> =
        source.values.iter().zip(&target.values).map(|(s, t)| compare_values(s, t)).collect();
    if r.iter().all(|x| *x == Equal) {
        Equal
    } else if r.iter().all(|x| matches!(x, Superset | Equal)) {
        Superset
    } else if r.iter().all(|x| matches!(x, Subset | Equal)) {
        Subset
    } else if r.contains(&Disjoint) {
        Disjoint
    } else {
        Undefined
    }
}
