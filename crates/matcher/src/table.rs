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
            // A rule whose version pattern does not fit this item gives way to the next.
            let Some(version) = version else { continue };
            let mut cpe = rule.cpe.clone();
            cpe.values[3] = text_value(&version);
            return Some(Translation { cpe, version, rule: format!("table rule '{}'", rule.id) });
        }
        // Portable programs found by their version resource are matched by table rules only:
        // a download folder holds too many installers to guess names for.
        if !matches!(item.kind, ItemKind::Application | ItemKind::Firmware | ItemKind::Bios)
            || item.manager.as_deref() == Some("portable")
        {
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

/// The CPEs of an operating system. `platform_only` CPEs (Linux distributions, and the
/// generic `microsoft:windows` every Windows release also is) take part in AND
/// configurations but never produce a finding themselves: distro packages are matched
/// against distro data, and NVD's `debian_linux` criteria say that the distro ships an
/// affected package, not that every installation is affected.
pub fn os_cpes(os: &OsInfo) -> Vec<(Translation, bool)> {
    let mut out = Vec::new();
    match os.family.as_str() {
        "windows" => {
            let server = os.name.to_ascii_lowercase().contains("server");
            // NVD's `cpe:2.3:o:microsoft:windows:-` platform of AND configurations
            // ("WinRAR below 7.13 running on Windows").
            if let Some(t) = os_cpe("microsoft", "windows", &os.version, "", "windows platform".into()) {
                out.push((t, true));
            }
            if let Some(r) = windows_release(&os.version, server) {
                let version = r.version.unwrap_or(&os.version);
                let rule = format!("windows build {} → {}", os.version, r.product);
                if let Some(t) = os_cpe("microsoft", r.product, version, r.update, rule) {
                    out.push((t, false));
                }
            }
        }
        "macos" => {
            if let Some(t) = os_cpe("apple", "macos", &os.version, "", "macos version".into()) {
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
            let rule = format!("{} {} platform", os.id, os.version);
            if let Some(t) = os_cpe(vendor, product, &version, "", rule) {
                out.push((t, true));
            }
        }
    }
    out
}

fn os_cpe(vendor: &str, product: &str, version: &str, update: &str, rule: String) -> Option<Translation> {
    let attr = |v: &str| match v {
        "" => "*".to_string(),
        "-" => "-".to_string(),
        v => escape(v),
    };
    Cpe::parse(&format!(
        "cpe:2.3:o:{vendor}:{}:{}:{}:*:*:*:*:*:*",
        escape(product),
        attr(version),
        attr(update)
    ))
    .ok()
    .map(|cpe| Translation { cpe, version: version.to_string(), rule })
}

/// The CPEs of an operating-system item that names its own CPE (an SBOM's
/// `operating-system` component): the CPE itself, and for Windows also the generic
/// platform. A Linux distribution's CPE is a platform only, as in [`os_cpes`].
pub fn os_item_cpes(item: &Item) -> Vec<(Translation, bool)> {
    let Some(cpe) = item.cpe.as_deref().and_then(|c| Cpe::parse(c).ok()) else { return Vec::new() };
    let vendor = cpe.vendor().literal().unwrap_or_default();
    let product = cpe.product().literal().unwrap_or_default();
    let version = cpe.version().literal().unwrap_or_else(|| item.version.clone());
    let mut out = Vec::new();
    match vendor.as_str() {
        "microsoft" | "apple" => {
            if vendor == "microsoft" && product.starts_with("windows") && product != "windows" {
                let build = if version.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    version.clone()
                } else {
                    item.version.clone()
                };
                if let Some(t) = os_cpe("microsoft", "windows", &build, "", "windows platform".into()) {
                    out.push((t, true));
                }
            }
            let platform_only = product == "windows";
            out.push((
                Translation { cpe, version, rule: "cpe reported by the inventory".into() },
                platform_only,
            ));
        }
        _ => out.push((Translation { cpe, version, rule: "cpe reported by the inventory".into() }, true)),
    }
    out
}

/// A Windows release as NVD names it: the product, and the version and update attributes
/// NVD gives releases it does not tell apart by build (`windows_server_2012:r2`,
/// `windows_server_2008:r2:sp1`). Without a fixed version the full build is the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowsRelease {
    pub product: &'static str,
    pub version: Option<&'static str>,
    pub update: &'static str,
}

/// The Windows release of a build (`10.0.19045.4291`, `6.3.9600.21620`): Windows 10 and 11
/// per feature release, Windows Server 2008 SP2 to 2025, Windows 7, 8 and 8.1.
pub fn windows_release(build: &str, server: bool) -> Option<WindowsRelease> {
    let mut parts = build.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    let b: u32 = parts.next()?.parse().ok()?;
    let rel = |product, version, update| Some(WindowsRelease { product, version, update });
    let by_build = |product| rel(product, None, "");
    match (major, minor, server) {
        (6, 0, true) if b >= 6002 => rel("windows_server_2008", Some("-"), "sp2"),
        (6, 1, true) if b >= 7601 => rel("windows_server_2008", Some("r2"), "sp1"),
        (6, 1, false) if b >= 7601 => rel("windows_7", Some("-"), "sp1"),
        (6, 2, true) => by_build("windows_server_2012"),
        (6, 2, false) => by_build("windows_8"),
        (6, 3, true) => rel("windows_server_2012", Some("r2"), ""),
        (6, 3, false) => by_build("windows_8.1"),
        (10, 0, false) => by_build(match b {
            10240 => "windows_10_1507",
            10586 => "windows_10_1511",
            14393 => "windows_10_1607",
            15063 => "windows_10_1703",
            16299 => "windows_10_1709",
            17134 => "windows_10_1803",
            17763 => "windows_10_1809",
            18362 => "windows_10_1903",
            18363 => "windows_10_1909",
            19041 => "windows_10_2004",
            19042 => "windows_10_20h2",
            19043 => "windows_10_21h1",
            19044 => "windows_10_21h2",
            19045 => "windows_10_22h2",
            22000 => "windows_11_21h2",
            22621 => "windows_11_22h2",
            22631 => "windows_11_23h2",
            26100 => "windows_11_24h2",
            26200 => "windows_11_25h2",
            _ => return None,
        }),
        (10, 0, true) => by_build(match b {
            14393 => "windows_server_2016",
            17763 => "windows_server_2019",
            20348 => "windows_server_2022",
            25398 => "windows_server_2022_23h2",
            26100 => "windows_server_2025",
            _ => return None,
        }),
        _ => None,
    }
}

/// NVD's per-release Windows products for a build number (`10.0.19045.4291`).
pub fn windows_products(build: &str, server: bool) -> Vec<&'static str> {
    windows_release(build, server).map(|r| r.product).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_case_translates_to_its_nvd_name_and_no_other() {
        let t = Table::builtin();
        let cases = include_str!("../tests/data/program-cases.tsv");
        let mut checked = 0;
        for line in cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            let (name, publisher, version, expected) = (f[0], f[1], f[2], f[3]);
            let mut item = Item::new(ItemKind::Application, name, version);
            item.vendor = (!publisher.is_empty() && publisher != "-").then(|| publisher.to_string());
            let got = t.translate(&item).filter(|tr| tr.rule.starts_with("table rule"));
            if expected == "NONE" {
                assert!(got.is_none(), "{name}: no table rule may apply, got {:?}", got.map(|g| g.rule));
            } else {
                let got = got.unwrap_or_else(|| panic!("{name}: no table rule"));
                assert_eq!(got.cpe.to_fs(), expected, "{name} ({})", got.rule);
            }
            checked += 1;
        }
        assert!(checked >= 90, "{checked} cases");
    }

    #[test]
    fn a_version_pattern_that_does_not_fit_gives_way_to_the_next_rule() {
        let t = Table::parse(
            "[[rule]]\nid = \"named\"\nname = '^tool'\ncpe = \"cpe:2.3:a:v:tool:*:*:*:*:*:*:*:*\"\nversion = 'name:^tool ([0-9.]+)$'\n\
             [[rule]]\nid = \"plain\"\nname = '^tool'\ncpe = \"cpe:2.3:a:v:tool:*:*:*:*:*:*:*:*\"\n",
        )
        .unwrap();
        assert_eq!(t.translate(&app("tool 2.1", "2.1.0.5", None)).unwrap().version, "2.1");
        let tr = t.translate(&app("tool", "2.1.0.5", None)).unwrap();
        assert_eq!((tr.version.as_str(), tr.rule.as_str()), ("2.1.0.5", "table rule 'plain'"));
    }

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
        let mut portable = app("Foo Viewer", "2.1.0", Some("Foo Software, Inc."));
        portable.manager = Some("portable".into());
        assert!(t.translate(&portable).is_none(), "a portable program is never matched by a guessed name");
        portable.name = "PuTTY suite".into();
        assert_eq!(t.translate(&portable).unwrap().rule, "table rule 'putty-portable'");
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
        assert_eq!(windows_products("10.0.26100.1", true), ["windows_server_2025"]);
        assert_eq!(windows_products("10.0.26100.1", false), ["windows_11_24h2"]);
        assert!(windows_products("garbage", false).is_empty());
        assert!(windows_products("10.0.20348.1", false).is_empty(), "20348 is a server build only");
        let r = windows_release("6.1.7601.24000", true).unwrap();
        assert_eq!((r.product, r.version, r.update), ("windows_server_2008", Some("r2"), "sp1"));
        assert_eq!(windows_release("6.3.9600.1", true).unwrap().version, Some("r2"));
        assert_eq!(windows_release("6.3.9600.1", false).unwrap().product, "windows_8.1");
    }

    #[test]
    fn os_cpes_are_named_as_nvd_names_them() {
        let os = |family: &str, version: &str, name: &str| OsInfo {
            family: family.into(),
            id: family.into(),
            version: version.into(),
            codename: None,
            name: name.into(),
        };
        let fs = |os: &OsInfo| os_cpes(os).iter().map(|(t, p)| (t.cpe.to_fs(), *p)).collect::<Vec<_>>();
        assert_eq!(
            fs(&os("windows", "6.1.7601.24000", "Windows Server 2008 R2 Standard")),
            [
                ("cpe:2.3:o:microsoft:windows:6.1.7601.24000:*:*:*:*:*:*:*".to_string(), true),
                ("cpe:2.3:o:microsoft:windows_server_2008:r2:sp1:*:*:*:*:*:*".to_string(), false),
            ]
        );
        assert_eq!(
            fs(&os("macos", "14.4.1", "macOS Sonoma")),
            [("cpe:2.3:o:apple:macos:14.4.1:*:*:*:*:*:*:*".to_string(), false)]
        );
        let mut sbom_os = Item::new(ItemKind::Os, "Debian", "12");
        sbom_os.cpe = Some("cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*".into());
        assert!(os_item_cpes(&sbom_os).iter().all(|(_, platform)| *platform), "a distro is a platform only");
        let mut win = Item::new(ItemKind::Os, "Microsoft Windows 11 Pro", "10.0.22631.3155");
        win.cpe = Some("cpe:2.3:o:microsoft:windows_11_23h2:10.0.22631.3155:*:*:*:*:*:*:*".into());
        let cpes = os_item_cpes(&win);
        assert_eq!(cpes.len(), 2);
        assert!(
            cpes[0].1 && cpes[0].0.cpe.to_fs().starts_with("cpe:2.3:o:microsoft:windows:10.0.22631.3155")
        );
        assert!(!cpes[1].1, "the release itself is a vulnerable item");
    }
}
