//! Browser extensions of every user profile, read from the profile folders (no browser
//! needs to run): Chrome, Edge and Chromium keep one folder per extension and version with
//! its `manifest.json`; Firefox lists its add-ons in each profile's `extensions.json`.
//!
//! Profiles live under each user's home: on Linux `~/.config/google-chrome`,
//! `~/.config/microsoft-edge`, `~/.config/chromium` and `~/.mozilla/firefox`; on Windows
//! `AppData\Local\Google\Chrome\User Data`, `AppData\Local\Microsoft\Edge\User Data` and
//! `AppData\Roaming\Mozilla\Firefox\Profiles`.

use ringfence_inventory::{Item, ItemKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One extension in one browser profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserExtension {
    /// `chrome`, `edge`, `chromium` or `firefox`.
    pub browser: String,
    /// The store id (`cjpalhdlnbpafiamejdnhcphjbkeiagm`, `uBlock0@raymondhill.net`).
    pub id: String,
    pub name: String,
    pub version: String,
    /// API permissions and the sites it may read and change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// The user and profile folder it was found in.
    pub profile: String,
}

/// Where each browser keeps its profiles, relative to a user's home.
fn browser_dirs(windows: bool) -> [(&'static str, &'static str, bool); 4] {
    // (browser, folder, is Firefox)
    if windows {
        [
            ("chrome", r"AppData\Local\Google\Chrome\User Data", false),
            ("edge", r"AppData\Local\Microsoft\Edge\User Data", false),
            ("chromium", r"AppData\Local\Chromium\User Data", false),
            ("firefox", r"AppData\Roaming\Mozilla\Firefox\Profiles", true),
        ]
    } else {
        [
            ("chrome", ".config/google-chrome", false),
            ("edge", ".config/microsoft-edge", false),
            ("chromium", ".config/chromium", false),
            ("firefox", ".mozilla/firefox", true),
        ]
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A Chromium manifest's name, resolved from `_locales` when it is a `__MSG_key__`.
fn chromium_name(manifest: &Value, dir: &Path) -> Option<String> {
    let name = manifest.get("name")?.as_str()?.trim();
    let Some(key) = name.strip_prefix("__MSG_").and_then(|k| k.strip_suffix("__")) else {
        return Some(name.to_string());
    };
    let locale = manifest.get("default_locale").and_then(Value::as_str).unwrap_or("en");
    let text = std::fs::read_to_string(dir.join("_locales").join(locale).join("messages.json")).ok()?;
    let messages: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    let entry = messages
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.get("message"))?
        .as_str()?;
    Some(entry.to_string())
}

/// The extensions of one Chromium profile folder (`…/User Data/Default`).
pub fn chromium_profile(
    browser: &str,
    profile: &Path,
    label: &str,
    errors: &mut Vec<String>,
) -> Vec<BrowserExtension> {
    let mut out = Vec::new();
    for ext in subdirs(&profile.join("Extensions")) {
        let id = ext.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Several versions may sit side by side during an update: the newest counts.
        let Some(dir) = subdirs(&ext).into_iter().max_by(|a, b| {
            let v = |p: &Path| -> Vec<u64> {
                p.file_name()
                    .map(|n| n.to_string_lossy().split(['.', '_']).filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default()
            };
            v(a).cmp(&v(b))
        }) else {
            continue;
        };
        let path = dir.join("manifest.json");
        let manifest: Value = match std::fs::read_to_string(&path)
            .map(|t| serde_json::from_str(t.trim_start_matches('\u{feff}')))
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                errors.push(format!("{}: not JSON: {e}", path.display()));
                continue;
            }
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let (Some(name), Some(version)) =
            (chromium_name(&manifest, &dir), manifest.get("version").and_then(Value::as_str))
        else {
            errors.push(format!("{}: no name or version", path.display()));
            continue;
        };
        let mut permissions = strings(manifest.get("permissions"));
        permissions.extend(strings(manifest.get("host_permissions")));
        out.push(BrowserExtension {
            browser: browser.into(),
            id,
            name,
            version: version.to_string(),
            permissions,
            profile: label.to_string(),
        });
    }
    out
}

/// The extensions of one Firefox profile folder, from its `extensions.json` (themes,
/// dictionaries and the browser's own built-in add-ons are not extensions a user chose).
pub fn firefox_profile(profile: &Path, label: &str, errors: &mut Vec<String>) -> Vec<BrowserExtension> {
    let path = profile.join("extensions.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(format!("{}: {e}", path.display()));
            return Vec::new();
        }
    };
    match parse_firefox_extensions(&text, label) {
        Ok(found) => found,
        Err(e) => {
            errors.push(format!("{}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Reads a Firefox profile's `extensions.json`.
pub fn parse_firefox_extensions(text: &str, label: &str) -> Result<Vec<BrowserExtension>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let addons = doc.get("addons").and_then(Value::as_array).ok_or("no \"addons\" list")?;
    Ok(addons
        .iter()
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("extension"))
        .filter(|a| {
            let location = a.get("location").and_then(Value::as_str).unwrap_or("");
            !matches!(location, "app-builtin" | "app-system-defaults" | "app-system-addons")
        })
        .filter_map(|a| {
            let id = a.get("id")?.as_str()?.to_string();
            let version = a.get("version")?.as_str()?.to_string();
            let name = a
                .get("defaultLocale")
                .and_then(|l| l.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(&id)
                .to_string();
            let perms = a.get("userPermissions");
            let mut permissions = strings(perms.and_then(|p| p.get("permissions")));
            permissions.extend(strings(perms.and_then(|p| p.get("origins"))));
            Some(BrowserExtension {
                browser: "firefox".into(),
                id,
                name,
                version,
                permissions,
                profile: label.to_string(),
            })
        })
        .collect())
}

/// Every extension of every browser profile of the users whose homes are given.
pub fn collect(homes: &[PathBuf], windows: bool) -> (Vec<BrowserExtension>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for home in homes {
        let user = home.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (browser, dir, firefox) in browser_dirs(windows) {
            let base = home.join(dir);
            for profile in subdirs(&base) {
                let name = profile.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let label = format!("{user}/{browser}/{name}");
                if firefox {
                    out.extend(firefox_profile(&profile, &label, &mut errors));
                } else if profile.join("Extensions").is_dir() {
                    out.extend(chromium_profile(browser, &profile, &label, &mut errors));
                }
            }
        }
    }
    (out, errors)
}

/// Extensions as inventory items: one per browser, extension and version.
pub fn items_of(extensions: &[BrowserExtension]) -> Vec<Item> {
    let mut items: Vec<Item> = extensions
        .iter()
        .map(|e| {
            let mut i = Item::new(ItemKind::Extension, format!("{} ({})", e.name, e.id), e.version.clone());
            i.manager = Some(format!("{}-extension", e.browser));
            i
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

/// The users' homes under `root`: `/root` and every folder of `/home` (Linux), or every
/// profile folder of `C:\Users` but the shared ones (Windows).
pub fn homes(root: &crate::Root, windows: bool) -> Vec<PathBuf> {
    if windows {
        let users = std::env::var_os("SystemDrive")
            .map(|d| PathBuf::from(format!("{}\\Users", d.to_string_lossy())))
            .unwrap_or_else(|| PathBuf::from(r"C:\Users"));
        return subdirs(&users)
            .into_iter()
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
                !matches!(n.as_str(), "public" | "default" | "default user" | "all users")
            })
            .collect();
    }
    let mut out = subdirs(&root.path("/home"));
    let root_home = root.path("/root");
    if root_home.is_dir() {
        out.push(root_home);
    }
    out
}
