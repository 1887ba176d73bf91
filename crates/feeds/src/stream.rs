//! Reading one array of a large JSON document element by element: each element is handed
//! over as raw JSON text, so one bad element can be skipped without losing the rest, and the
//! document is never held whole. Top-level scalar fields are kept for the header.

use crate::FeedError;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

struct ArraySeed<'f> {
    each: &'f mut dyn FnMut(Box<RawValue>),
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            (self.each)(raw);
        }
        Ok(())
    }
}

struct DocVisitor<'f> {
    array: &'static str,
    each: &'f mut dyn FnMut(Box<RawValue>),
    found: &'f mut bool,
    header: &'f mut BTreeMap<String, serde_json::Value>,
}

impl<'de> Visitor<'de> for DocVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object with a \"{}\" array", self.array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == self.array {
                map.next_value_seed(ArraySeed { each: &mut *self.each })?;
                *self.found = true;
            } else {
                let raw: Box<RawValue> = map.next_value()?;
                let text = raw.get();
                // Only small scalars are kept; nested structures of the header are skipped.
                if text.len() <= 256
                    && !text.starts_with('{')
                    && !text.starts_with('[')
                    && let Ok(v) = serde_json::from_str(text)
                {
                    self.header.insert(key, v);
                } else {
                    let _ = serde_json::from_str::<IgnoredAny>(text);
                }
            }
        }
        Ok(())
    }
}

/// Calls `each` for every element of the top-level `array`; returns the top-level scalars and
/// whether the array was there at all.
pub fn for_each_in_array(
    reader: impl Read,
    array: &'static str,
    each: &mut dyn FnMut(Box<RawValue>),
) -> Result<(BTreeMap<String, serde_json::Value>, bool), FeedError> {
    let mut header = BTreeMap::new();
    let mut found = false;
    let mut de = serde_json::Deserializer::from_reader(reader);
    de.deserialize_map(DocVisitor { array, each, found: &mut found, header: &mut header })
        .and_then(|()| de.end())
        .map_err(json_error)?;
    Ok((header, found))
}

struct EntriesVisitor<'f> {
    each: &'f mut dyn FnMut(String, Box<RawValue>),
}

impl<'de> Visitor<'de> for EntriesVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let raw: Box<RawValue> = map.next_value()?;
            (self.each)(key, raw);
        }
        Ok(())
    }
}

/// Calls `each` for every member of a top-level JSON object, with the member's raw value.
pub fn for_each_entry(
    reader: impl Read,
    each: &mut dyn FnMut(String, Box<RawValue>),
) -> Result<(), FeedError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    de.deserialize_map(EntriesVisitor { each }).and_then(|()| de.end()).map_err(json_error)
}

/// A reading error (a limit, a cut-off file) as itself; anything else is bad JSON.
fn json_error(e: serde_json::Error) -> FeedError {
    if e.is_io() {
        let text = e.to_string();
        let reason = text.split(" at line ").next().unwrap_or(&text).to_string();
        FeedError::Format(format!("cannot read the feed: {reason}"))
    } else {
        FeedError::Format(format!("the feed is not valid JSON: {e}"))
    }
}
