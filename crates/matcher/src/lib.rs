//! Correlation of software inventories with vulnerability data.
//!
//! Two paths, never mixed:
//! - **Distro packages** (dpkg, rpm, apk) are matched against the distribution's own data
//!   (the Debian security tracker, OSV distro records) by **source package** and release,
//!   in the distribution's version ordering. Distros backport fixes without changing the
//!   upstream version, so matching them by NVD CPE ranges would report fixed packages.
//! - **Everything else** (Windows and macOS programs, firmware, BIOS, the Windows build,
//!   network OS) is matched against NVD configurations through the software→CPE table
//!   ([`table`]). Criteria with `vulnerable: false` are platforms: they make an AND
//!   configuration true but are never findings. A version of `-` (not applicable) matches
//!   any version.
//!
//! Results are computed per **title** (a distinct package source version or program
//! version) and cached by the caller, so a fleet of devices sharing titles costs one
//! evaluation per title; only AND configurations that need another item of the same
//! device are evaluated per device.

pub mod table;

use ringfence_cpe::{Cpe, Relation, Value, compare_values};
use ringfence_feeds::nvd::{Configuration, Operator};
use ringfence_feeds::osv::Affected;
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_versions::{GenericVersion, Scheme, Version};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
pub use table::{Table, Translation};

/// The state of a CVE in one source package of one distro release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistroState {
    /// Fixed in this version; older versions are affected.
    Fixed(String),
    /// The release was never affected.
    NotAffected,
    /// Affected, no fix released.
    Open,
    /// Not triaged yet: not reported (the tracker has not decided).
    Undetermined,
    /// OSV ranges, evaluated in the distro's ordering.
    Osv(Box<Affected>),
}

/// A distro's statement about one CVE in one source package of one release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistroAdvisory {
    /// `debian`, `ubuntu`, `rhel`, `almalinux`, `rocky`, `alpine`.
    pub distro: String,
    /// The release as os-release names it (`12`, `22.04`, `9`).
    pub release: String,
    /// The source package.
    pub package: String,
    pub cve_id: String,
    pub state: DistroState,
    /// The distro's urgency; `unimportant` open issues are not reported.
    pub urgency: Option<String>,
    /// Where it came from: `debian-tracker`, or `osv DSA-5678-1`.
    pub source: String,
}

/// An NVD record's configurations.
#[derive(Clone, Debug)]
pub struct NvdAdvisory {
    pub cve_id: String,
    pub configurations: Vec<Configuration>,
}

/// The version ordering a distro uses.
pub fn distro_scheme(distro: &str) -> Option<Scheme> {
    match distro {
        "debian" | "ubuntu" => Some(Scheme::Deb),
        "rhel" | "almalinux" | "rocky" | "centos" | "fedora" | "ol" => Some(Scheme::Rpm),
        "alpine" => Some(Scheme::Generic),
        _ => None,
    }
}

/// The key distro data is filed under for an OS: `debian:12`, `ubuntu:22.04`, `rhel:9`.
pub fn distro_key(os: &OsInfo) -> Option<String> {
    let version = match os.id.as_str() {
        "debian" | "rhel" | "almalinux" | "rocky" | "centos" => os.version.split('.').next()?.to_string(),
        "ubuntu" => os.version.clone(),
        "alpine" => os.version.split('.').take(2).collect::<Vec<_>>().join("."),
        _ => return None,
    };
    (!version.is_empty()).then(|| format!("{}:{version}", os.id))
}

struct DistroEntry {
    cve: u32,
    state: DistroState,
    urgency: Option<Arc<str>>,
    source: Arc<str>,
}

enum VersionSpec {
    /// `*` with optional bounds.
    Range { start: Option<(GenericVersion, bool)>, end: Option<(GenericVersion, bool)> },
    /// `-`: not applicable, matches any version.
    NotApplicable,
    /// One version (or a pattern with wildcards), parsed when it is a literal.
    Exact(Value, Option<GenericVersion>),
}

struct Criterion {
    /// A hash of vendor and product, for finding candidate CPEs quickly (candidates are
    /// then compared in full, so a collision costs time, never correctness).
    key: Option<u64>,
    vulnerable: bool,
    cpe: Cpe,
    version: VersionSpec,
    /// The first fixed version, when the range ends with an excluding bound.
    fixed: Option<String>,
    text: String,
}

struct Node {
    and: bool,
    negate: bool,
    criteria: Vec<Criterion>,
}

struct Config {
    and: bool,
    negate: bool,
    nodes: Vec<Node>,
}

struct NvdEntry {
    cve: u32,
    configs: Vec<Config>,
}

/// A CPE on a device with its parsed version.
pub struct DeviceCpe {
    pub translation: Translation,
    key: Option<u64>,
    version: Option<GenericVersion>,
    /// Operating-system platforms of Linux distros: part of AND configurations only.
    pub platform_only: bool,
}

impl DeviceCpe {
    pub fn new(translation: Translation, platform_only: bool) -> Self {
        let version = GenericVersion::parse(&translation.version).ok();
        let key = key_of(&translation.cpe);
        DeviceCpe { translation, key, version, platform_only }
    }
}

impl Criterion {
    /// Whether this criterion matches a device CPE. Cheapest checks first: the
    /// vendor/product hash, then the version, then every other attribute.
    fn matches(&self, t: &DeviceCpe) -> bool {
        if let (Some(a), Some(b)) = (self.key, t.key)
            && a != b
        {
            return false;
        }
        let version_ok = match &self.version {
            // NVD's `-` stands for "any build of this release" (`windows:-`,
            // `windows_server_2016:-`), except against a named release of the same product:
            // `windows_server_2012:-` is not Windows Server 2012 R2 (`windows_server_2012:r2`).
            VersionSpec::NotApplicable => !t
                .translation
                .cpe
                .version()
                .literal()
                .is_some_and(|v| v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())),
            VersionSpec::Exact(value, parsed) => match (parsed, &t.version) {
                (Some(c), Some(v)) => c == v,
                _ => matches!(
                    compare_values(value, &t.translation.cpe.values[3]),
                    Relation::Equal | Relation::Superset
                ),
            },
            VersionSpec::Range { start, end } => {
                let Some(v) = &t.version else { return false };
                let below_start = start.as_ref().is_some_and(|(s, incl)| v < s || (!incl && v == s));
                let past_end = end.as_ref().is_some_and(|(e, incl)| v > e || (!incl && v == e));
                !below_start && !past_end
            }
        };
        if !version_ok {
            return false;
        }
        self.cpe.values.iter().zip(&t.translation.cpe.values).enumerate().all(|(i, (c, v))| {
            if i == 3 {
                return true;
            }
            let r = compare_values(c, v);
            if i < 3 { matches!(r, Relation::Equal | Relation::Superset) } else { r != Relation::Disjoint }
        })
    }
}

/// The vendor/product hash of a CPE whose vendor and product are literals.
fn key_of(cpe: &Cpe) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let (Value::Text(v), Value::Text(p)) = (cpe.vendor(), cpe.product()) else { return None };
    if cpe.vendor().has_wildcards() || cpe.product().has_wildcards() {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    p.hash(&mut h);
    Some(h.finish())
}

/// A device's CPEs, indexed by vendor and product for evaluating AND configurations.
pub struct DeviceCpes<'a> {
    all: Vec<&'a DeviceCpe>,
    by_key: HashMap<u64, Vec<&'a DeviceCpe>>,
}

impl<'a> DeviceCpes<'a> {
    pub fn new(cpes: impl IntoIterator<Item = &'a DeviceCpe>) -> Self {
        let all: Vec<&DeviceCpe> = cpes.into_iter().collect();
        let mut by_key: HashMap<u64, Vec<&DeviceCpe>> = HashMap::with_capacity(all.len());
        for c in &all {
            if let Some(k) = c.key {
                by_key.entry(k).or_default().push(c);
            }
        }
        DeviceCpes { all, by_key }
    }

    fn candidates(&self, c: &Criterion) -> &[&'a DeviceCpe] {
        match c.key {
            Some(k) => self.by_key.get(&k).map(Vec::as_slice).unwrap_or(&[]),
            None => &self.all,
        }
    }
}

fn eval_node(node: &Node, cpes: &DeviceCpes) -> bool {
    let hit = |c: &Criterion| cpes.candidates(c).iter().any(|t| c.matches(t));
    let r = if node.and { node.criteria.iter().all(hit) } else { node.criteria.iter().any(hit) };
    r != node.negate
}

fn eval_config(config: &Config, cpes: &DeviceCpes) -> bool {
    let r = if config.and {
        config.nodes.iter().all(|n| eval_node(n, cpes))
    } else {
        config.nodes.iter().any(|n| eval_node(n, cpes))
    };
    r != config.negate
}

/// One CVE of one title, before device-level checks.
#[derive(Clone, Debug)]
pub struct TitleHit {
    pub cve: u32,
    pub fixed_version: Option<String>,
    pub source: Arc<str>,
    pub rule: String,
    /// For an NVD AND configuration that needs another item of the device (a platform):
    /// the configuration to evaluate against the whole device.
    pub needs_device: Option<(u32, u16)>,
}

/// Everything known, indexed for matching.
pub struct Index {
    cve_ids: Vec<Arc<str>>,
    cve_pos: HashMap<Arc<str>, u32>,
    distro: HashMap<String, HashMap<String, Vec<DistroEntry>>>,
    nvd: Vec<NvdEntry>,
    nvd_pos: HashMap<u32, u32>,
    by_product: HashMap<(String, String), Vec<u32>>,
    pub table: Table,
    criteria: usize,
}

/// A finding on one device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub cve_id: String,
    /// The source package (distro findings) or `vendor:product` (NVD findings).
    pub product: String,
    pub kind: ItemKind,
    /// The installed items behind the finding (binary packages of a source, or the program).
    pub items: Vec<String>,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// `debian-tracker`, `osv …` or `nvd`.
    pub source: String,
    /// Why it matched, in words: the rule and the criterion or distro statement.
    pub rule: String,
}

/// What a device could not be matched against, so a report can say so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Distro packages without distro data for the device's release.
    pub packages_without_distro_data: usize,
    /// The release key that had no data (`debian:12`), when that happened.
    pub missing_distro: Option<String>,
    /// Programs no rule could translate to a CPE.
    pub untranslated: usize,
    /// Programs translated to a vendor and product that no loaded NVD record names (a
    /// guessed name, or a product NVD has never listed): not checked, not clean.
    pub unknown_products: usize,
    /// Versions that could not be ordered (counted, not guessed).
    pub unordered_versions: usize,
}

fn compile_bound(v: &Option<ringfence_feeds::nvd::Bound>) -> Result<Option<(GenericVersion, bool)>, ()> {
    match v {
        None => Ok(None),
        Some(b) => GenericVersion::parse(&b.version).map(|g| Some((g, b.inclusive))).map_err(|_| ()),
    }
}

impl Index {
    pub fn new(table: Table) -> Index {
        Index {
            cve_ids: Vec::new(),
            cve_pos: HashMap::new(),
            distro: HashMap::new(),
            nvd: Vec::new(),
            nvd_pos: HashMap::new(),
            by_product: HashMap::new(),
            table,
            criteria: 0,
        }
    }

    fn intern(&mut self, cve: &str) -> u32 {
        if let Some(&i) = self.cve_pos.get(cve) {
            return i;
        }
        let id: Arc<str> = Arc::from(cve);
        let i = self.cve_ids.len() as u32;
        self.cve_ids.push(id.clone());
        self.cve_pos.insert(id, i);
        i
    }

    pub fn cve_id(&self, i: u32) -> &str {
        &self.cve_ids[i as usize]
    }

    pub fn distro_advisories(&self) -> usize {
        self.distro.values().flat_map(|m| m.values()).map(Vec::len).sum()
    }

    pub fn nvd_records(&self) -> usize {
        self.nvd.len()
    }

    pub fn nvd_criteria(&self) -> usize {
        self.criteria
    }

    /// Whether there is any distro data for a release key (`debian:12`).
    pub fn has_distro(&self, key: &str) -> bool {
        self.distro.contains_key(key)
    }

    /// Adds or replaces one distro statement (same release, package, CVE and source).
    pub fn add_distro(&mut self, a: DistroAdvisory) {
        let cve = self.intern(&a.cve_id);
        let key = format!("{}:{}", a.distro, a.release);
        let list = self.distro.entry(key).or_default().entry(a.package).or_default();
        let source: Arc<str> = Arc::from(a.source.as_str());
        list.retain(|e| !(e.cve == cve && e.source == source));
        list.push(DistroEntry { cve, state: a.state, urgency: a.urgency.map(Arc::from), source });
    }

    /// Adds or replaces an NVD record's configurations. Criteria whose bounds cannot be
    /// ordered are dropped and counted in the returned number.
    pub fn add_nvd(&mut self, a: &NvdAdvisory) -> usize {
        let cve = self.intern(&a.cve_id);
        self.remove_nvd(&a.cve_id);
        let mut dropped = 0;
        let mut configs = Vec::with_capacity(a.configurations.len());
        let mut products: Vec<(String, String)> = Vec::new();
        for c in &a.configurations {
            let mut nodes = Vec::with_capacity(c.nodes.len());
            for n in &c.nodes {
                let mut criteria = Vec::with_capacity(n.matches.len());
                for m in &n.matches {
                    let version = match m.criteria.version() {
                        Value::Na => VersionSpec::NotApplicable,
                        Value::Any => match (compile_bound(&m.start), compile_bound(&m.end)) {
                            (Ok(start), Ok(end)) => VersionSpec::Range { start, end },
                            _ => {
                                dropped += 1;
                                continue;
                            }
                        },
                        v => VersionSpec::Exact(
                            v.clone(),
                            v.literal().and_then(|l| GenericVersion::parse(&l).ok()),
                        ),
                    };
                    if m.vulnerable
                        && let (Some(v), Some(p)) =
                            (m.criteria.vendor().literal(), m.criteria.product().literal())
                        && !products.contains(&(v.clone(), p.clone()))
                    {
                        products.push((v, p));
                    }
                    let fixed = m.end.as_ref().filter(|b| !b.inclusive).map(|b| b.version.clone());
                    let mut text = m.criteria_text.clone();
                    if let Some(b) = &m.start {
                        text.push_str(&format!(
                            " from {}{}",
                            b.version,
                            if b.inclusive { "" } else { " (excluded)" }
                        ));
                    }
                    if let Some(b) = &m.end {
                        text.push_str(&format!(
                            " {} {}",
                            if b.inclusive { "up to" } else { "before" },
                            b.version
                        ));
                    }
                    criteria.push(Criterion {
                        key: key_of(&m.criteria),
                        vulnerable: m.vulnerable,
                        cpe: m.criteria.clone(),
                        version,
                        fixed,
                        text,
                    });
                }
                self.criteria += criteria.len();
                nodes.push(Node { and: n.operator == Operator::And, negate: n.negate, criteria });
            }
            configs.push(Config { and: c.operator == Operator::And, negate: c.negate, nodes });
        }
        let pos = self.nvd.len() as u32;
        self.nvd.push(NvdEntry { cve, configs });
        self.nvd_pos.insert(cve, pos);
        for p in products {
            self.by_product.entry(p).or_default().push(pos);
        }
        dropped
    }

    /// Withdraws an NVD record (rejected, or replaced by a newer version).
    pub fn remove_nvd(&mut self, cve_id: &str) {
        let Some(&cve) = self.cve_pos.get(cve_id) else { return };
        let Some(pos) = self.nvd_pos.remove(&cve) else { return };
        let entry = &mut self.nvd[pos as usize];
        self.criteria -= entry.configs.iter().flat_map(|c| &c.nodes).map(|n| n.criteria.len()).sum::<usize>();
        entry.configs.clear();
        for list in self.by_product.values_mut() {
            list.retain(|&p| p != pos);
        }
    }

    /// Withdraws every distro statement about a CVE.
    pub fn remove_distro_cve(&mut self, cve_id: &str) {
        let Some(&cve) = self.cve_pos.get(cve_id) else { return };
        for m in self.distro.values_mut() {
            for list in m.values_mut() {
                list.retain(|e| e.cve != cve);
            }
        }
    }

    /// The distro hits of one source package version in one release.
    pub fn distro_title(&self, key: &str, package: &str, version: &str) -> Result<Vec<TitleHit>, String> {
        let Some(entries) = self.distro.get(key).and_then(|m| m.get(package)) else {
            return Ok(Vec::new());
        };
        let distro = key.split(':').next().unwrap_or("");
        let scheme = distro_scheme(distro).ok_or_else(|| format!("no version ordering for {distro}"))?;
        let mut hits = Vec::new();
        for e in entries {
            let (affected, fixed, why) = match &e.state {
                DistroState::Fixed(f) => {
                    let lt = ringfence_versions::compare(scheme, version, f).map_err(|e| e.reason)?.is_lt();
                    (lt, Some(f.clone()), format!("fixed in {f}"))
                }
                DistroState::Open => {
                    let unimportant = e.urgency.as_deref() == Some("unimportant");
                    (!unimportant, None, "no fix released yet".to_string())
                }
                DistroState::NotAffected | DistroState::Undetermined => (false, None, String::new()),
                DistroState::Osv(a) => {
                    let hit = a.affects(version).map_err(|e| e.reason)?;
                    let fixed = a.ranges.iter().flat_map(|r| &r.events).find_map(|ev| match ev {
                        ringfence_feeds::osv::Event::Fixed(v) => Some(v.clone()),
                        _ => None,
                    });
                    (hit, fixed, "in an affected range".to_string())
                }
            };
            if affected {
                hits.push(TitleHit {
                    cve: e.cve,
                    fixed_version: fixed,
                    source: e.source.clone(),
                    rule: format!("{} says source package {package} in {key} is affected: {why}", e.source),
                    needs_device: None,
                });
            }
        }
        Ok(hits)
    }

    /// The NVD hits of one translated program, evaluated on its own. AND configurations
    /// that need a platform of the device come back with `needs_device` set.
    /// Whether some loaded NVD record names this CPE's vendor and product.
    pub fn knows_product(&self, cpe: &ringfence_cpe::Cpe) -> bool {
        match (cpe.vendor().literal(), cpe.product().literal()) {
            (Some(v), Some(p)) => self.by_product.contains_key(&(v, p)),
            _ => false,
        }
    }

    pub fn nvd_title(&self, t: &DeviceCpe) -> Vec<TitleHit> {
        if t.platform_only {
            return Vec::new();
        }
        let (Some(vendor), Some(product)) =
            (t.translation.cpe.vendor().literal(), t.translation.cpe.product().literal())
        else {
            return Vec::new();
        };
        let Some(positions) = self.by_product.get(&(vendor, product)) else { return Vec::new() };
        let nvd: Arc<str> = Arc::from("nvd");
        let mut hits = Vec::new();
        for &pos in positions {
            let entry = &self.nvd[pos as usize];
            for (ci, config) in entry.configs.iter().enumerate() {
                let matched =
                    config.nodes.iter().flat_map(|n| &n.criteria).find(|c| c.vulnerable && c.matches(t));
                let Some(crit) = matched else { continue };
                let alone = eval_config(config, &DeviceCpes::new([t]));
                let rule = format!("{} → {}", t.translation.rule, crit.text);
                hits.push(TitleHit {
                    cve: entry.cve,
                    fixed_version: crit.fixed.clone(),
                    source: nvd.clone(),
                    rule,
                    needs_device: (!alone).then_some((pos, ci as u16)),
                });
                break;
            }
        }
        hits
    }

    /// Whether an NVD configuration holds on a device with these CPEs.
    pub fn config_holds(&self, pos: u32, config: u16, cpes: &DeviceCpes) -> bool {
        self.nvd
            .get(pos as usize)
            .and_then(|e| e.configs.get(config as usize))
            .is_some_and(|c| eval_config(c, cpes))
    }

    /// Matches one device's whole inventory (no cache; see [`Correlator`] for fleets).
    pub fn match_inventory(&self, inv: &Inventory) -> (Vec<Finding>, Coverage) {
        Correlator::new(self).device(inv)
    }
}

/// The cache key of a title.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TitleKey {
    Distro { release: String, package: String, version: String },
    Program { kind: ItemKind, name: String, version: String, vendor: Option<String>, cpe: Option<String> },
}

impl TitleKey {
    pub fn of(os: &OsInfo, item: &Item) -> Option<TitleKey> {
        match item.kind {
            ItemKind::Package => Some(TitleKey::Distro {
                release: distro_key(os)?,
                package: item.source().to_string(),
                version: item.source_ver().to_string(),
            }),
            ItemKind::Hotfix | ItemKind::Driver | ItemKind::Os => None,
            kind => Some(TitleKey::Program {
                kind,
                name: item.name.clone(),
                version: item.version.clone(),
                vendor: item.vendor.clone(),
                cpe: item.cpe.clone(),
            }),
        }
    }
}

/// A title's evaluation: its hits, and its CPE when it is a program.
pub struct TitleResult {
    pub hits: Vec<TitleHit>,
    pub cpe: Option<Arc<DeviceCpe>>,
    pub unordered: bool,
    /// Whether some NVD record names the CPE's vendor and product.
    pub known_product: bool,
}

/// Matches devices against an index (borrowed, or shared as `Arc<Index>`), evaluating each
/// distinct title once: a device whose inventory changed costs only its new titles.
pub struct Correlator<I: std::ops::Deref<Target = Index>> {
    index: I,
    cache: HashMap<TitleKey, Arc<TitleResult>>,
}

impl<I: std::ops::Deref<Target = Index>> Correlator<I> {
    pub fn new(index: I) -> Self {
        Correlator { index, cache: HashMap::new() }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn titles_evaluated(&self) -> usize {
        self.cache.len()
    }

    /// Evaluates one title (cached).
    pub fn title(&mut self, key: &TitleKey, item: &Item) -> Arc<TitleResult> {
        cached(&self.index, &mut self.cache, key, item)
    }

    /// The findings of one device.
    pub fn device(&mut self, inv: &Inventory) -> (Vec<Finding>, Coverage) {
        let Correlator { index, cache } = self;
        let index: &Index = index;
        let mut coverage = Coverage::default();
        let dkey = distro_key(&inv.os);
        let has_distro = dkey.as_deref().is_some_and(|k| index.has_distro(k));
        // The operating system as the device describes it, and operating-system items that
        // name their own CPE (an SBOM's `operating-system` components).
        let mut os_cpes: Vec<DeviceCpe> = Vec::new();
        let os_items = inv.items.iter().filter(|i| i.kind == ItemKind::Os).flat_map(table::os_item_cpes);
        for (t, platform) in table::os_cpes(&inv.os).into_iter().chain(os_items) {
            let fs = t.cpe.to_fs();
            match os_cpes.iter_mut().find(|c| c.translation.cpe.to_fs() == fs) {
                Some(c) => c.platform_only &= platform,
                None => os_cpes.push(DeviceCpe::new(t, platform)),
            }
        }
        let mut titled: Vec<(&Item, Arc<TitleResult>)> = Vec::with_capacity(inv.items.len());
        for item in &inv.items {
            if item.kind == ItemKind::Package && !has_distro {
                coverage.packages_without_distro_data += 1;
                continue;
            }
            let Some(key) = TitleKey::of(&inv.os, item) else { continue };
            let r = cached(index, cache, &key, item);
            if r.unordered {
                coverage.unordered_versions += 1;
            }
            if item.kind != ItemKind::Package && r.cpe.is_none() {
                coverage.untranslated += 1;
            } else if item.kind != ItemKind::Package && !r.known_product {
                coverage.unknown_products += 1;
            }
            titled.push((item, r));
        }
        if coverage.packages_without_distro_data > 0 {
            coverage.missing_distro =
                dkey.clone().or_else(|| Some(format!("{} {}", inv.os.id, inv.os.version)));
        }
        // Device CPEs for AND configurations: programs and the OS.
        let cpes = DeviceCpes::new(titled.iter().filter_map(|(_, r)| r.cpe.as_deref()).chain(os_cpes.iter()));
        let mut found: BTreeMap<(String, String), Finding> = BTreeMap::new();
        let mut emit = |hit: &TitleHit, product: String, kind: ItemKind, item_name: &str, version: &str| {
            let cve_id = index.cve_id(hit.cve).to_string();
            let f = found.entry((cve_id.clone(), product.clone())).or_insert_with(|| Finding {
                cve_id,
                product,
                kind,
                items: Vec::new(),
                installed_version: version.to_string(),
                fixed_version: hit.fixed_version.clone(),
                source: hit.source.to_string(),
                rule: hit.rule.clone(),
            });
            if !f.items.iter().any(|i| i == item_name) {
                f.items.push(item_name.to_string());
            }
        };
        for (item, r) in &titled {
            for hit in &r.hits {
                if let Some((pos, ci)) = hit.needs_device
                    && !index.config_holds(pos, ci, &cpes)
                {
                    continue;
                }
                let (product, version) = match (item.kind, &r.cpe) {
                    (ItemKind::Package, _) => (item.source().to_string(), item.source_ver()),
                    (_, Some(c)) => (product_of(&c.translation), item.version.as_str()),
                    (_, None) => (item.name.clone(), item.version.as_str()),
                };
                emit(hit, product, item.kind, &item.name, version);
            }
        }
        // The operating system's own CPEs (Windows builds, macOS).
        for c in &os_cpes {
            for hit in index.nvd_title(c) {
                if let Some((pos, ci)) = hit.needs_device
                    && !index.config_holds(pos, ci, &cpes)
                {
                    continue;
                }
                emit(&hit, product_of(&c.translation), ItemKind::Os, &inv.os.name, &c.translation.version);
            }
        }
        let mut findings: Vec<Finding> = found.into_values().collect();
        for f in &mut findings {
            f.items.sort();
        }
        (findings, coverage)
    }
}

fn cached(
    index: &Index,
    cache: &mut HashMap<TitleKey, Arc<TitleResult>>,
    key: &TitleKey,
    item: &Item,
) -> Arc<TitleResult> {
    if let Some(r) = cache.get(key) {
        return r.clone();
    }
    let r = Arc::new(evaluate_title(index, key, item));
    cache.insert(key.clone(), r.clone());
    r
}

fn product_of(t: &Translation) -> String {
    format!(
        "{}:{}",
        t.cpe.vendor().literal().unwrap_or_default(),
        t.cpe.product().literal().unwrap_or_default()
    )
}

fn evaluate_title(index: &Index, key: &TitleKey, item: &Item) -> TitleResult {
    match key {
        TitleKey::Distro { release, package, version } => match index.distro_title(release, package, version)
        {
            Ok(hits) => TitleResult { hits, cpe: None, unordered: false, known_product: true },
            Err(_) => TitleResult { hits: Vec::new(), cpe: None, unordered: true, known_product: true },
        },
        TitleKey::Program { .. } => {
            let Some(t) = index.table.translate(item) else {
                return TitleResult { hits: Vec::new(), cpe: None, unordered: false, known_product: false };
            };
            let known_product = index.knows_product(&t.cpe);
            let cpe = DeviceCpe::new(t, false);
            let unordered = cpe.version.is_none();
            let hits = index.nvd_title(&cpe);
            TitleResult { hits, cpe: Some(Arc::new(cpe)), unordered, known_product }
        }
    }
}
