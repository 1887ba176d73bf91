//! CycloneDX SBOMs (JSON, spec 1.4–1.6), as syft, Trivy and cdxgen write them.
//!
//! Each component becomes an item. Debian, RPM and Alpine packages are recognized by their
//! package URL (`pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl&distro=debian-12`),
//! which also names the source package (`upstream`) and the release (`distro`); other
//! components are applications, firmware or the operating system by their `type`, and keep
//! a CPE when the SBOM gives one.

use crate::{Inventory, InventoryError, Item, ItemKind, OsInfo, debian_codename};
use serde_json::Value;

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a package URL matching needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Purl {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: Vec<(String, String)>,
}

impl Purl {
    pub fn parse(s: &str) -> Option<Purl> {
        let rest = s.strip_prefix("pkg:")?;
        let rest = rest.split('#').next()?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (path, version) = match path.rsplit_once('@') {
            Some((p, v)) => (p, Some(percent_decode(v))),
            None => (path, None),
        };
        let mut parts = path.trim_matches('/').split('/');
        let kind = parts.next()?.to_ascii_lowercase();
        let segments: Vec<&str> = parts.collect();
        let (name, namespace) = match segments.split_last() {
            Some((name, ns)) if !name.is_empty() => {
                (percent_decode(name), (!ns.is_empty()).then(|| percent_decode(&ns.join("/"))))
            }
            _ => return None,
        };
        let qualifiers = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), percent_decode(v)))
            .collect();
        Some(Purl { kind, namespace, name, version, qualifiers })
    }

    pub fn qualifier(&self, key: &str) -> Option<&str> {
        self.qualifiers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn component_item(c: &Value) -> Result<Option<Item>, String> {
    let Some(name) = text(c, "name") else {
        return Err("a component has no name".into());
    };
    let Some(version) = text(c, "version") else {
        // Without a version nothing can be matched; such components (files, services)
        // are not software titles.
        return Ok(None);
    };
    let ty = text(c, "type").unwrap_or("library");
    let purl = text(c, "purl").and_then(Purl::parse);
    let vendor = text(c, "publisher")
        .or_else(|| c.get("supplier").and_then(|s| text(s, "name")))
        .or_else(|| text(c, "author"))
        .map(str::to_string);
    let cpe = text(c, "cpe").map(str::to_string);
    if let Some(p) = purl.as_ref().filter(|p| matches!(p.kind.as_str(), "deb" | "rpm" | "apk")) {
        let mut item =
            Item::new(ItemKind::Package, p.name.clone(), p.version.clone().unwrap_or(version.into()));
        item.manager = Some(match p.kind.as_str() {
            "deb" => "dpkg".into(),
            other => other.to_string(),
        });
        item.arch = p.qualifier("arch").map(str::to_string);
        if let Some(upstream) = p.qualifier("upstream") {
            let (n, v) = match upstream.split_once('@') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => match upstream.split_once(" (") {
                    Some((n, v)) => (n.trim(), Some(v.trim_end_matches(')').trim())),
                    None => (upstream.trim(), None),
                },
            };
            if n != item.name {
                item.source_name = Some(n.to_string());
            }
            if let Some(v) = v.filter(|v| !v.is_empty() && *v != item.version) {
                item.source_version = Some(v.to_string());
            }
        }
        item.vendor = vendor;
        return Ok(Some(item));
    }
    let kind = match ty {
        "operating-system" => ItemKind::Os,
        "firmware" => ItemKind::Firmware,
        "device-driver" => ItemKind::Driver,
        _ => ItemKind::Application,
    };
    let mut item = Item::new(kind, name, version);
    item.vendor = vendor;
    item.cpe = cpe;
    if let Some(p) = purl {
        item.manager = Some(p.kind);
    }
    Ok(Some(item))
}

/// The operating system an `operating-system` component describes. Windows is recognized by
/// its name ("Microsoft Windows 11 Pro") or its CPE (`cpe:2.3:o:microsoft:windows_11_23h2:…`),
/// whose version is taken when it is the full build and the component's is not.
pub fn os_of(item: &Item) -> OsInfo {
    let lower = item.name.to_ascii_lowercase();
    let cpe_parts: Vec<&str> = item.cpe.as_deref().map(|c| c.split(':').collect()).unwrap_or_default();
    let cpe_field = |i: usize| cpe_parts.get(i).copied().filter(|v| !matches!(*v, "*" | "-" | ""));
    let cpe_product = cpe_field(4).unwrap_or_default().to_ascii_lowercase();
    let is_build = |v: &str| v.split('.').count() >= 3 && v.split('.').all(|p| p.parse::<u32>().is_ok());
    if lower.contains("windows") || cpe_product.starts_with("windows") {
        let version = match cpe_field(5) {
            Some(v) if is_build(v) && !is_build(&item.version) => v.to_string(),
            _ => item.version.clone(),
        };
        let mut name = item.name.clone();
        if cpe_product.contains("server") && !lower.contains("server") {
            name.push_str(" Server");
        }
        return OsInfo { family: "windows".into(), id: "windows".into(), version, codename: None, name };
    }
    let id = lower.clone();
    let family = match id.as_str() {
        "macos" | "mac os x" | "apple macos" => "macos",
        _ if cpe_product == "macos" || cpe_product == "mac_os_x" => "macos",
        _ => "linux",
    };
    OsInfo {
        family: family.into(),
        codename: if id == "debian" { debian_codename(&item.version).map(str::to_string) } else { None },
        version: item.version.clone(),
        name: format!("{} {}", item.name, item.version),
        id: if family == "macos" { "macos".into() } else { id },
    }
}

/// Reads a parsed CycloneDX document.
pub fn parse(doc: &Value) -> Result<Inventory, InventoryError> {
    if let Some(f) = doc.get("bomFormat").and_then(Value::as_str)
        && f != "CycloneDX"
    {
        return Err(InventoryError::Format(format!("bomFormat is '{f}', not 'CycloneDX'")));
    }
    let components = match doc.get("components") {
        None => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(InventoryError::Format("\"components\" must be an array".into())),
    };
    let mut inv = Inventory::default();
    let mut stack: Vec<&Value> = components.iter().rev().collect();
    if let Some(meta) = doc.get("metadata").and_then(|m| m.get("component")) {
        stack.push(meta);
    }
    let mut index = 0usize;
    while let Some(c) = stack.pop() {
        index += 1;
        if !c.is_object() {
            return Err(InventoryError::Format(format!("component #{index} is not an object")));
        }
        if let Some(Value::Array(children)) = c.get("components") {
            stack.extend(children.iter().rev());
        }
        let item =
            component_item(c).map_err(|e| InventoryError::Format(format!("component #{index}: {e}")))?;
        let Some(item) = item else { continue };
        if item.kind == ItemKind::Os && inv.os.id.is_empty() {
            inv.os = os_of(&item);
            if item.cpe.is_none() {
                continue;
            }
            // The CPE the SBOM gives is matched as it is, beside the one the name implies.
        }
        inv.items.push(item);
    }
    if inv.os.id.is_empty() {
        // Fall back to the distro qualifier of the first distro package.
        if let Some(d) = components
            .iter()
            .filter_map(|c| text(c, "purl").and_then(Purl::parse))
            .find_map(|p| p.qualifier("distro").map(str::to_string))
            && let Some((id, version)) = d.split_once('-')
        {
            inv.os = OsInfo {
                family: "linux".into(),
                id: id.to_string(),
                version: version.to_string(),
                codename: if id == "debian" { debian_codename(version).map(str::to_string) } else { None },
                name: d.clone(),
            };
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_carry_source_and_distro() {
        let p = Purl::parse(
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64&upstream=openssl%403.0.11-1~deb12u2&distro=debian-12",
        )
        .unwrap();
        assert_eq!(p.kind, "deb");
        assert_eq!(p.namespace.as_deref(), Some("debian"));
        assert_eq!(p.name, "libssl3");
        assert_eq!(p.version.as_deref(), Some("3.0.11-1~deb12u2+b1"));
        assert_eq!(p.qualifier("upstream"), Some("openssl@3.0.11-1~deb12u2"));
        assert_eq!(p.qualifier("distro"), Some("debian-12"));
        assert_eq!(Purl::parse("not a purl"), None);
        assert_eq!(Purl::parse("pkg:deb/"), None);
    }

    #[test]
    fn reads_packages_applications_and_the_os() {
        let doc: Value = serde_json::from_str(
            r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[
              {"type":"operating-system","name":"debian","version":"12.11"},
              {"type":"library","name":"libssl3","version":"3.0.11-1~deb12u2",
               "purl":"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12.11"},
              {"type":"application","name":"7-Zip","version":"23.01","publisher":"Igor Pavlov"},
              {"type":"file","name":"/etc/passwd"}
            ]}"#,
        )
        .unwrap();
        let inv = parse(&doc).unwrap();
        assert_eq!(inv.os.id, "debian");
        assert_eq!(inv.os.codename.as_deref(), Some("bookworm"));
        assert_eq!(inv.items.len(), 2);
        assert_eq!(inv.items[0].source(), "openssl");
        assert_eq!(inv.items[0].kind, ItemKind::Package);
        assert_eq!(inv.items[1].kind, ItemKind::Application);
        assert_eq!(inv.items[1].vendor.as_deref(), Some("Igor Pavlov"));
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        let bad: Value = serde_json::from_str(r#"{"bomFormat":"SPDX"}"#).unwrap();
        assert!(parse(&bad).unwrap_err().to_string().contains("not 'CycloneDX'"));
        let bad: Value = serde_json::from_str(r#"{"bomFormat":"CycloneDX","components":{}}"#).unwrap();
        assert!(parse(&bad).unwrap_err().to_string().contains("must be an array"));
        let bad: Value =
            serde_json::from_str(r#"{"bomFormat":"CycloneDX","components":[{"version":"1"}]}"#).unwrap();
        assert!(parse(&bad).unwrap_err().to_string().contains("component #1: a component has no name"));
    }
}
