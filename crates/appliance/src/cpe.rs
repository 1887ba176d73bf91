//! Filling CPE templates with a version or a hardware product and printing them as CPE 2.3
//! formatted strings, escaped by `ringfence-cpe`. Every name is parsed back before it is
//! returned, so an identification never carries a CPE that the rest of the product refuses.

use ringfence_cpe::{Cpe, Token, Value};

use crate::normalize::{Firmware, Update};

/// A literal value: lower-cased, as NVD writes names; `None` when empty.
fn literal(text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(Value::Text(text.chars().flat_map(char::to_lowercase).map(Token::Char).collect()))
}

/// The formatted string of `cpe`, if it parses back to the same name.
fn checked(cpe: &Cpe) -> Option<String> {
    let text = cpe.to_fs();
    (Cpe::parse(&text).ok().as_ref() == Some(cpe)).then_some(text)
}

/// The firmware CPE: `template` with version and update filled in.
pub(crate) fn os_cpe(template: &Cpe, firmware: &Firmware) -> Option<String> {
    let mut cpe = template.clone();
    cpe.values[3] = literal(&firmware.version)?;
    cpe.values[4] = match &firmware.update {
        Update::Any => Value::Any,
        Update::Na => Value::Na,
        Update::Text(u) => literal(u)?,
    };
    checked(&cpe)
}

/// The hardware CPE: `template` with the product filled in.
pub(crate) fn hardware_cpe(template: &Cpe, product: &str) -> Option<String> {
    let mut cpe = template.clone();
    cpe.values[2] = literal(product)?;
    checked(&cpe)
}

/// A template `cpe:2.3:<part>:<vendor>:<product>:*:…` from partner-supplied parts.
pub(crate) fn template(part: &str, vendor: &str, product: Option<&str>) -> Option<Cpe> {
    let mut cpe = Cpe::default();
    cpe.values[0] = literal(part)?;
    cpe.values[1] = literal(vendor)?;
    if let Some(p) = product {
        cpe.values[2] = literal(p)?;
    }
    checked(&cpe)?;
    Some(cpe)
}
