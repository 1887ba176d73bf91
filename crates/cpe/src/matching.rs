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

/// How many characters a run of wildcards at one end of a value may stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// `*`: any number.
    Any,
    /// A run of this many `?`: from none up to this many.
    UpTo(usize),
}

impl Reach {
    fn of(run: &[Token]) -> Reach {
        if run.contains(&Token::AnyString) { Reach::Any } else { Reach::UpTo(run.len()) }
    }

    fn covers(self, n: usize) -> bool {
        match self {
            Reach::Any => true,
            Reach::UpTo(max) => n <= max,
        }
    }
}

/// Whether a source value with wildcards (only at its ends, as parsing guarantees) matches the
/// literal `text`, as `compare_strings` in NISTIR 7696's pseudocode decides it: the literal
/// middle must occur in `text` with no more characters before it than the leading wildcards
/// reach and no more after it than the trailing ones reach. A run of `n` question marks
/// reaches *up to* `n` characters, so `sp?` matches `sp` and `sp2` but not `sp10`.
///
/// A value made only of question marks is one run, not a leading and a trailing one (the
/// pseudocode would count it twice, and NIST's reference implementation fails on it): `???`
/// matches any one to three characters. Nothing matches an empty text (the pseudocode's loop
/// runs only while characters are left over); a parsed value is never empty anyway.
fn wildcard_match(pattern: &[Token], text: &[char]) -> bool {
    if text.is_empty() {
        return false;
    }
    let literal = |t: &Token| matches!(t, Token::Char(_));
    let lead = pattern.iter().take_while(|t| !literal(t)).count();
    if lead == pattern.len() {
        return Reach::of(pattern).covers(text.len());
    }
    let trail = pattern.iter().rev().take_while(|t| !literal(t)).count();
    let (before, after) = (Reach::of(&pattern[..lead]), Reach::of(&pattern[pattern.len() - trail..]));
    // Parsing refuses a wildcard inside a value; one built by hand with such a value matches
    // nothing rather than panicking.
    let Some(middle) = pattern[lead..pattern.len() - trail]
        .iter()
        .map(|t| match t {
            Token::Char(c) => Some(*c),
            _ => None,
        })
        .collect::<Option<Vec<char>>>()
    else {
        return false;
    };
    text.windows(middle.len())
        .enumerate()
        .any(|(at, w)| w == middle && before.covers(at) && after.covers(text.len() - at - middle.len()))
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
                if wildcard_match(s, &text) { Superset } else { Disjoint }
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
