//! The software→CPE translation table: a curated list of rules for common MSP software
//! (`data/software-cpe.toml`), code rules for operating systems, and a vendor/product
//! normalization for everything else. Each translation records the rule that made it.

use ringfence_cpe::{Cpe, Value};
use ringfence_inventory::{Item, ItemKind, OsInfo};
use serde::Deserialize;

/// The curated table shipped with ringfence.
pub const BUILTIN: &str = include_str!("../data/software-cpe.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    name: String,
    #[serde(default)]
    publisher: Option<String>,
    #[serde(default)]
    kinds: Option<Vec<String>>,
    cpe: String,
    #[serde(default)]
    version: Option<String>,
}

enum VersionFrom {
    Item,
    Name(regex::Regex),
    Version(regex::Regex),
}

struct Rule {
    id: String,
    name: regex::Regex,
    publisher: Option<regex::Regex>,
    kinds: Vec<ItemKind>,
    cpe: Cpe,
    version: VersionFrom,
}

/// A CPE an item translates to, and the rule that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub cpe: Cpe,
    /// The version to compare against NVD bounds (the CPE's version attribute as text).
    pub version: String,
    pub rule: String,
}

/// The loaded table.
pub struct Table {
    rules: Vec<Rule>,
}

fn regex(pattern: &str, id: &str, field: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("rule '{id}': {field} is not a valid regular expression: {e}"))
}

/// Lower-cases and joins words with `_`, as NVD writes vendor and product names.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

const VENDOR_SUFFIXES: [&str; 12] =
    ["inc.", "inc", "llc", "ltd.", "ltd", "corporation", "corp.", "corp", "gmbh", "co.", "s.a.", "ag"];

/// A publisher as an NVD vendor: legal suffixes dropped ("Google LLC" → `google`).
pub fn normalize_vendor(s: &str) -> String {
    let mut words: Vec<&str> =
        s.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    while words.len() > 1
        && words.last().is_some_and(|w| VENDOR_SUFFIXES.contains(&w.to_ascii_lowercase().as_str()))
    {
        words.pop();
    }
    normalize(&words.join(" "))
}

/// A program name as an NVD product: a trailing version, architecture or edition in
/// parentheses dropped ("Foo Viewer 2.1 (x64)" → `foo_viewer`).
pub fn normalize_product(name: &str, version: &str) -> String {
    let mut n = name.trim();
    if let Some(i) = n.find(" (") {
        n = &n[..i];
    }
    let mut words: Vec<&str> = n.split_whitespace().collect();
    while words.len() > 1
        && words.last().is_some_and(|w| {
            let w = w.trim_start_matches('v');
            w == version || (w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        })
    {
        words.pop();
    }
    normalize(&words.join(" "))
}

fn text_value(s: &str) -> Value {
    Cpe::parse(&format!("cpe:2.3:a:x:{}:*:*:*:*:*:*:*:*", escape(s)))
        .map(|c| c.values[2].clone())
        .unwrap_or(Value::Any)
}

/// Escapes a literal for the formatted-string binding.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Table {
    pub fn builtin() -> Table {
        Table::parse(BUILTIN).expect("the built-in software→CPE table is valid")
    }

    pub fn parse(text: &str) -> Result<Table, String> {
        let raw: RawTable = toml::from_str(text).map_err(|e| format!("invalid software→CPE table: {e}"))?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        for r in raw.rule {
            let cpe = Cpe::parse(&r.cpe).map_err(|e| format!("rule '{}': {e}", r.id))?;
            let kinds = match r.kinds {
                None => vec![ItemKind::Application],
                Some(k) => k
                    .iter()
                    .map(|s| ItemKind::parse(s).ok_or_else(|| format!("rule '{}': unknown kind '{s}'", r.id)))
                    .collect::<Result<_, _>>()?,
            };
            let version = match r.version.as_deref() {
                None => VersionFrom::Item,
                Some(v) => match v.split_once(':') {
                    Some(("name", re)) => VersionFrom::Name(regex(re, &r.id, "version")?),
                    Some(("version", re)) => VersionFrom::Version(regex(re, &r.id, "version")?),
                    _ => {
                        return Err(format!(
                            "rule '{}': version must start with 'name:' or 'version:'",
                            r.id
                        ));
                    }
                },
            };
            rules.push(Rule {
                name: regex(&r.name, &r.id, "name")?,
                publisher: r.publisher.as_deref().map(|p| regex(p, &r.id, "publisher")).transpose()?,
                id: r.id,
                kinds,
                cpe,
                version,
            });
        }
        Ok(Table { rules })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The CPE of a non-distro item: the one it carries, a table rule's, or a normalized
    /// vendor/product guess (which only matches when NVD knows exactly that pair).
    pub fn translate(&self, item: &Item) -> Option<Translation> {
        if let Some(cpe) = item.cpe.as_deref().and_then(|c| Cpe::parse(c).ok()) {
            let version = cpe.version().literal().unwrap_or_else(|| item.version.clone());
            return Some(Translation { cpe, version, rule: "cpe reported by the inventory".into() });
        }
        for rule in &self.rules {
            if !rule.kinds.contains(&item.kind) || !rule.name.is_match(&item.name) {
                continue;
            }
            if let Some(p) = &rule.publisher
                && !item.vendor.as_deref().is_some_and(|v| p.is_match(v))
            {
                continue;
            }
            let version = match &rule.version {
                VersionFrom::Item => Some(item.version.clone()),
                VersionFrom::Name(re) => {
                    re.captures(&item.name).and_then(|c| c.get(1)).map(|m| m.as_str().into())
                }
                VersionFrom::Version(re) => {
                    re.captures(&item.version).and_then(|c| c.get(1)).map(|m| m.as_str().into())
                }
            };
            let version = version?;
            let mut cpe = rule.cpe.clone();
            cpe.values[3] = text_value(&version);
            return Some(Translation { cpe, version, rule: format!("table rule '{}'", rule.id) });
        }
        if !matches!(item.kind, ItemKind::Application | ItemKind::Firmware | ItemKind::Bios) {
            return None;
        }
        let vendor = normalize_vendor(item.vendor.as_deref()?);
        let product = normalize_product(&item.name, &item.version);
        if vendor.is_empty() || product.is_empty() {
            return None;
        }
        let cpe = Cpe::parse(&format!(
            "cpe:2.3:a:{}:{}:{}:*:*:*:*:*:*:*",
            escape(&vendor),
            escape(&product),
            escape(&item.version)
        ))
        .ok()?;
        Some(Translation {
            cpe,
            version: item.version.clone(),
            rule: format!("normalized name {vendor}:{product}"),
        })
    }
}

/// The CPEs of an operating system. `platform_only` CPEs (Linux distributions) take part in
/// AND configurations but never produce a finding themselves: distro packages are matched
/// against distro data, and NVD's `debian_linux` criteria say that the distro ships an
/// affected package, not that every installation is affected.
pub fn os_cpes(os: &OsInfo) -> Vec<(Translation, bool)> {
    let mk = |part: &str, vendor: &str, product: &str, version: &str, rule: String| {
        let version_attr = if version.is_empty() { "*".to_string() } else { escape(version) };
        Cpe::parse(&format!("cpe:2.3:{part}:{vendor}:{product}:{version_attr}:*:*:*:*:*:*:*"))
            .ok()
            .map(|cpe| Translation { cpe, version: version.to_string(), rule })
    };
    let mut out = Vec::new();
    match os.family.as_str() {
        "windows" => {
            let server = os.name.to_ascii_lowercase().contains("server");
            if let Some(t) = mk("o", "microsoft", "windows", &os.version, "windows platform".into()) {
                out.push((t, true));
            }
            for product in windows_products(&os.version, server) {
                let rule = format!("windows build {} → {product}", os.version);
                if let Some(t) = mk("o", "microsoft", product, &os.version, rule) {
                    out.push((t, false));
                }
            }
        }
        "macos" => {
            if let Some(t) = mk("o", "apple", "macos", &os.version, "macos version".into()) {
                out.push((t, false));
            }
        }
        _ => {
            let (vendor, product, version) = match os.id.as_str() {
                "debian" => {
                    ("debian", "debian_linux", format!("{}.0", os.version.split('.').next().unwrap_or("")))
                }
                "ubuntu" => ("canonical", "ubuntu_linux", os.version.clone()),
                "rhel" => {
                    ("redhat", "enterprise_linux", os.version.split('.').next().unwrap_or("").to_string())
                }
                "fedora" => ("fedoraproject", "fedora", os.version.clone()),
                _ => return out,
            };
            if let Some(t) = mk("o", vendor, product, &version, format!("{} {} platform", os.id, os.version))
            {
                out.push((t, true));
            }
        }
    }
    out
}

/// NVD's per-release Windows products for a build number (`10.0.19045.4291`).
pub fn windows_products(build: &str, server: bool) -> Vec<&'static str> {
    let b: Option<u32> = build.split('.').nth(2).and_then(|s| s.parse().ok());
    match (b, server) {
        (Some(10240), false) => vec!["windows_10_1507"],
        (Some(14393), false) => vec!["windows_10_1607"],
        (Some(14393), true) => vec!["windows_server_2016"],
        (Some(17763), false) => vec!["windows_10_1809"],
        (Some(17763), true) => vec!["windows_server_2019"],
        (Some(19042), false) => vec!["windows_10_20h2"],
        (Some(19044), false) => vec!["windows_10_21h2"],
        (Some(19045), false) => vec!["windows_10_22h2"],
        (Some(20348), true) => vec!["windows_server_2022"],
        (Some(22000), false) => vec!["windows_11_21h2"],
        (Some(22621), false) => vec!["windows_11_22h2"],
        (Some(22631), false) => vec!["windows_11_23h2"],
        (Some(25398), true) => vec!["windows_server_2022_23h2"],
        (Some(26100), false) => vec!["windows_11_24h2"],
        (Some(26100), true) => vec!["windows_server_2025"],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, version: &str, vendor: Option<&str>) -> Item {
        let mut i = Item::new(ItemKind::Application, name, version);
        i.vendor = vendor.map(str::to_string);
        i
    }

    #[test]
    fn builtin_rules_translate_common_programs() {
        let t = Table::builtin();
        let tr = t.translate(&app("7-Zip 23.01 (x64)", "23.01", Some("Igor Pavlov"))).unwrap();
        assert_eq!(tr.cpe.to_fs(), "cpe:2.3:a:7-zip:7-zip:23.01:*:*:*:*:*:*:*");
        assert_eq!(tr.rule, "table rule '7-zip'");
        let tr = t.translate(&app("Notepad++ (64-bit x64)", "8.5.6", None)).unwrap();
        assert_eq!(tr.cpe.to_fs(), "cpe:2.3:a:notepad-plus-plus:notepad\\+\\+:8.5.6:*:*:*:*:*:*:*");
        let tr = t.translate(&app("Mozilla Firefox ESR (x64 en-US)", "115.15.0", None)).unwrap();
        assert_eq!(tr.rule, "table rule 'firefox-esr'");
        let tr =
            t.translate(&app("Microsoft Office Professional Plus 2016", "16.0.4266.1001", None)).unwrap();
        assert_eq!(tr.version, "2016");
        let tr = t.translate(&app("Zoom Workplace", "6.1.1 (43322)", None)).unwrap();
        assert_eq!(tr.version, "6.1.1");
    }

    #[test]
    fn normalization_is_the_fallback() {
        let t = Table::builtin();
        let tr = t.translate(&app("Foo Viewer 2.1 (x64)", "2.1.0", Some("Foo Software, Inc."))).unwrap();
        assert_eq!(tr.cpe.to_fs(), "cpe:2.3:a:foo_software:foo_viewer:2.1.0:*:*:*:*:*:*:*");
        assert_eq!(tr.rule, "normalized name foo_software:foo_viewer");
        assert!(t.translate(&app("No Publisher", "1", None)).is_none());
        let mut pkg = app("openssl", "3.0.11-1", None);
        pkg.kind = ItemKind::Package;
        assert!(t.translate(&pkg).is_none(), "distro packages are never translated to CPEs");
    }

    #[test]
    fn bad_tables_are_refused_with_the_rule_named() {
        let err =
            Table::parse("[[rule]]\nid = \"x\"\nname = \"(\"\ncpe = \"cpe:2.3:a:x:y:*:*:*:*:*:*:*:*\"\n")
                .err()
                .unwrap();
        assert!(err.contains("rule 'x': name is not a valid regular expression"), "{err}");
        let err = Table::parse("[[rule]]\nid = \"y\"\nname = \"a\"\ncpe = \"nope\"\n").err().unwrap();
        assert!(err.starts_with("rule 'y':"), "{err}");
    }

    #[test]
    fn windows_builds_name_their_release() {
        assert_eq!(windows_products("10.0.19045.4291", false), ["windows_10_22h2"]);
        assert_eq!(windows_products("10.0.20348.2402", true), ["windows_server_2022"]);
        assert!(windows_products("garbage", false).is_empty());
    }
}
