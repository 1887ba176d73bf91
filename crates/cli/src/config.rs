//! The server's configuration: one TOML file, every key overridable from the environment,
//! and command-line flags over both.
//!
//! | key | environment | default |
//! |---|---|---|
//! | `listen` | `RINGFENCE_LISTEN` | `127.0.0.1:8640` |
//! | `data_dir` | `RINGFENCE_DATA_DIR` | `./ringfence-data` |
//! | `database_url` | `RINGFENCE_DATABASE_URL` | SQLite file `ringfence.db` in `data_dir` |
//! | `secure_cookies` | `RINGFENCE_SECURE_COOKIES` | on, except when listening on a loopback address |
//! | `log` | `RINGFENCE_LOG` | `info` |
//! | `feeds_sync` | `RINGFENCE_FEEDS_SYNC` | on: sync NVD, KEV, EPSS and Debian data on a schedule |
//! | `nvd_api_key` | `RINGFENCE_NVD_API_KEY` | none (NVD's lower rate limit) |
//! | `nvd_sync_hours` | | `2` |
//! | `feeds_sync_hours` | | `24` (KEV, EPSS, Debian) |
//! | `alert_webhook` | `RINGFENCE_ALERT_WEBHOOK` | none: alerts show in the dashboard only |
//! | `offline_after_minutes` | | `10`: a device whose agent has not checked in for this long is offline |
//! | `trusted_proxies` | | none: a list of addresses or blocks (`["127.0.0.1", "10.0.0.0/8"]`) of reverse proxies whose `X-Forwarded-For` names the client |
//! | `metrics_token` | `RINGFENCE_METRICS_TOKEN` | none: `/metrics` is open; when set (16 characters or more), it needs `Authorization: Bearer TOKEN` |

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8640";
pub const DEFAULT_DATA_DIR: &str = "./ringfence-data";

/// The configuration file's keys; all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub secure_cookies: Option<bool>,
    pub log: Option<String>,
    pub feeds_sync: Option<bool>,
    pub nvd_api_key: Option<String>,
    pub nvd_sync_hours: Option<f64>,
    pub feeds_sync_hours: Option<f64>,
    pub alert_webhook: Option<String>,
    pub offline_after_minutes: Option<f64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub metrics_token: Option<String>,
    #[serde(default)]
    pub reports: Option<ReportsConfig>,
}

/// `[reports]`: how reports are printed and mailed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// The Chromium binary that prints PDFs (default: found on the PATH).
    pub chromium: Option<PathBuf>,
    /// The MSP's logo for report headers (.png, .jpg, .svg or .gif, at most 512 KiB).
    pub logo: Option<PathBuf>,
    /// `[reports.smtp]`: host, port, from, username, password, security (starttls, tls, none).
    pub smtp: Option<ringfence_engine::delivery::SmtpConfig>,
}

impl ReportsConfig {
    /// The engine's report settings; a logo that cannot be read is an error at start.
    pub fn resolve(&self) -> anyhow::Result<ringfence_engine::delivery::ReportConfig> {
        let logo = match &self.logo {
            Some(p) => Some(ringfence_engine::delivery::logo_data_uri(p).map_err(|e| anyhow::anyhow!(e))?),
            None => None,
        };
        Ok(ringfence_engine::delivery::ReportConfig {
            chromium: self.chromium.clone(),
            logo,
            smtp: self.smtp.clone(),
        })
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config file {} is invalid", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}; the keys are listen, data_dir, database_url, secure_cookies, log, feeds_sync, nvd_api_key, \
                 nvd_sync_hours, feeds_sync_hours, alert_webhook, offline_after_minutes, trusted_proxies, metrics_token \
                 and [reports] (chromium, logo, [reports.smtp])",
                e.to_string().trim()
            )
        })
    }
}

/// The resolved settings of `serve` and `demo`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub secure_cookies: bool,
}

pub fn parse_listen(s: &str) -> anyhow::Result<SocketAddr> {
    match s.parse() {
        Ok(a) => Ok(a),
        Err(_) => bail!("listen address '{s}' is not ADDR:PORT, e.g. 127.0.0.1:8640 or 0.0.0.0:443"),
    }
}

/// Flags (already merged with their environment variables by clap) over the file over the
/// defaults.
pub fn resolve(
    file: &FileConfig,
    listen: Option<&str>,
    data_dir: Option<&Path>,
    database_url: Option<&str>,
    secure_cookies: Option<bool>,
) -> anyhow::Result<Settings> {
    let listen = parse_listen(listen.or(file.listen.as_deref()).unwrap_or(DEFAULT_LISTEN))?;
    let data_dir = data_dir
        .map(Path::to_path_buf)
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = database_url.map(str::to_owned).or_else(|| file.database_url.clone());
    let known = |u: &str| ["postgres://", "postgresql://", "sqlite:"].iter().any(|p| u.starts_with(p));
    if let Some(url) = database_url.as_deref().filter(|u| !known(u)) {
        bail!("database URL must start with postgres://, postgresql:// or sqlite: (got '{}')", redact(url));
    }
    let secure_cookies = secure_cookies.or(file.secure_cookies).unwrap_or(!listen.ip().is_loopback());
    Ok(Settings { listen, data_dir, database_url, secure_cookies })
}

/// The feed schedule from flags and file; `None` when syncing is turned off.
pub fn schedule(
    file: &FileConfig,
    feeds_sync: Option<bool>,
    nvd_api_key: Option<&str>,
) -> anyhow::Result<Option<ringfence_engine::sync::Schedule>> {
    if !feeds_sync.or(file.feeds_sync).unwrap_or(true) {
        return Ok(None);
    }
    let key =
        nvd_api_key.map(str::to_owned).or_else(|| file.nvd_api_key.clone()).filter(|k| !k.trim().is_empty());
    let mut s = ringfence_engine::sync::Schedule::new(ringfence_engine::sync::SyncConfig::new(key));
    let hours = |field: &str, v: Option<f64>, default: f64| -> anyhow::Result<std::time::Duration> {
        let h = v.unwrap_or(default);
        if !(0.1..=24.0 * 31.0).contains(&h) {
            bail!("{field} must be between 0.1 and 744 hours (got {h})");
        }
        Ok(std::time::Duration::from_secs_f64(h * 3600.0))
    };
    s.nvd_every = hours("nvd_sync_hours", file.nvd_sync_hours, 2.0)?;
    s.daily_every = hours("feeds_sync_hours", file.feeds_sync_hours, 24.0)?;
    Ok(Some(s))
}

/// The alert webhook, checked.
pub fn webhook(file: &FileConfig, flag: Option<&str>) -> anyhow::Result<Option<String>> {
    let url = flag.map(str::to_owned).or_else(|| file.alert_webhook.clone()).filter(|u| !u.trim().is_empty());
    if let Some(u) = &url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        bail!("alert_webhook must be an http:// or https:// URL (got '{u}')");
    }
    Ok(url)
}

/// After how long without a check-in a device is shown offline (agents check in every minute).
pub fn offline_after(file: &FileConfig) -> anyhow::Result<std::time::Duration> {
    let m = file.offline_after_minutes.unwrap_or(10.0);
    if !(2.0..=7.0 * 24.0 * 60.0).contains(&m) {
        bail!(
            "offline_after_minutes must be between 2 (agents check in every minute) and 10080 (a week) (got {m})"
        );
    }
    Ok(std::time::Duration::from_secs_f64(m * 60.0))
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
pub fn trusted_proxies(file: &FileConfig) -> anyhow::Result<Vec<ringfence_server::auth::Cidr>> {
    file.trusted_proxies
        .iter()
        .flatten()
        .map(|s| ringfence_server::auth::Cidr::parse(s).map_err(|e| anyhow::anyhow!("trusted_proxies: {e}")))
        .collect()
}

/// The token `/metrics` needs, if any: `RINGFENCE_METRICS_TOKEN` or the file's `metrics_token`.
pub fn metrics_token(file: &FileConfig) -> anyhow::Result<Option<String>> {
    let token = std::env::var("RINGFENCE_METRICS_TOKEN").ok().or_else(|| file.metrics_token.clone());
    match token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        Some(t) if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
            bail!("metrics_token must be 16 or more printable characters without spaces (a random string)")
        }
        t => Ok(t),
    }
}

fn redact(url: &str) -> String {
    ringfence_store::Location::parse(url).redacted()
}

/// Keeps the data directory private whatever the umask: the database holds the key agents
/// trust for jobs, password and token hashes. Files the server creates from now on are
/// 0600 and folders 0700 (the process umask becomes 077); the folder is made 0700 and what
/// is already in it is tightened to 0600, with a warning naming what was looser.
pub fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {e}; choose a writable --data-dir",
                dir.display()
            )
        })?;
    }
    let tighten = |path: &Path, mode: u32| -> anyhow::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let current = meta.permissions().mode() & 0o777;
        if current & !mode != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{current:o}"),
                "readable by other users of this machine: made {mode:o}"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", path.display()))?;
        }
        Ok(())
    };
    tighten(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path.is_file() {
            tighten(&path, 0o600)?;
        }
    }
    Ok(())
}

/// The server's key for secrets at rest (SNMP credentials): `RINGFENCE_SECRET_KEY_FILE`, or
/// `secret.key` in the data directory, made (mode 0600) on first use. It is kept outside the
/// database, so a copy of the database alone opens no credential.
pub fn secret_key(data_dir: &Path) -> anyhow::Result<ringfence_engine::appliances::SecretKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::var_os("RINGFENCE_SECRET_KEY_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("secret.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => ringfence_engine::appliances::SecretKey::from_hex(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}; restore the original key file (credentials sealed with it cannot be opened without it)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            let key = ringfence_engine::appliances::SecretKey::generate();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| anyhow::anyhow!("cannot create the secret key file {}: {e}", path.display()))?;
            f.write_all(key.to_hex().as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| anyhow::anyhow!("cannot write the secret key file {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read the secret key file {}: {e}", path.display())),
    }
}

/// `RINGFENCE_SIGNING_KEY_FILE`, or `signing.key` in the data directory.
fn signing_key_path(data_dir: &Path) -> PathBuf {
    std::env::var_os("RINGFENCE_SIGNING_KEY_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("signing.key"))
}

/// The public key (hex) of the signing key file in `data_dir` (or `RINGFENCE_SIGNING_KEY_FILE`),
/// when there is one; nothing is created.
pub fn signing_public_key_file(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = signing_key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            ringfence_engine::agents::signing_public_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => anyhow::bail!("cannot read the signing key file {}: {e}", path.display()),
    }
}

/// The server's key for agent jobs and evidence checkpoints: `RINGFENCE_SIGNING_KEY_FILE`, or
/// `signing.key` in the data directory (mode 0600). Only its public key is in the database,
/// so a copy of the database signs nothing; a server whose key is not the one in the
/// database (the one agents pinned) refuses to start. On first start the key comes from the
/// database where earlier versions kept it (and is removed from there), or is made.
pub async fn signing_key(data_dir: &Path, store: &ringfence_store::DynStore) -> anyhow::Result<String> {
    use ringfence_engine::agents::{key_fingerprint, signing_public_key};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = signing_key_path(data_dir);
    let secret = match std::fs::read_to_string(&path) {
        Ok(text) => {
            signing_public_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}; restore the original key file", path.display()))?;
            text.trim().to_owned()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (secret, public) = store.signing_key(&ringfence_engine::agents::generate_signing_key).await?;
            if secret.is_empty() {
                anyhow::bail!(
                    "{} is missing, and the database's agents trust the key {}, kept in the key file of the \
                     server that made it: copy that server's signing.key here (or point RINGFENCE_SIGNING_KEY_FILE at it)",
                    path.display(),
                    key_fingerprint(&public)
                );
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(
                    |e| anyhow::anyhow!("cannot create the signing key file {}: {e}", path.display()),
                )?;
            f.write_all(secret.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| anyhow::anyhow!("cannot write the signing key file {}: {e}", path.display()))?;
            tracing::info!(key = %key_fingerprint(&public), file = %path.display(), "the signing key is kept in its key file, not in the database");
            secret
        }
        Err(e) => anyhow::bail!("cannot read the signing key file {}: {e}", path.display()),
    };
    let public = signing_public_key(&secret).map_err(anyhow::Error::msg)?;
    if let Some(held) = store.pin_signing_key(&public).await? {
        anyhow::bail!(
            "{} holds the key {}, but this database's agents trust the key {}: start with the key file of the \
             servers already using this database (RINGFENCE_SIGNING_KEY_FILE), or the right database",
            path.display(),
            key_fingerprint(&public),
            key_fingerprint(&held)
        );
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_and_the_metrics_token_are_checked() {
        let file = FileConfig::parse("trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]").unwrap();
        assert_eq!(trusted_proxies(&file).unwrap().len(), 2);
        let file = FileConfig::parse("trusted_proxies = [\"10.0.0.0/33\"]").unwrap();
        let e = trusted_proxies(&file).unwrap_err().to_string();
        assert!(e.contains("trusted_proxies") && e.contains("prefix length"), "{e}");
        let file = FileConfig::parse("metrics_token = \"short\"").unwrap();
        assert!(metrics_token(&file).unwrap_err().to_string().contains("16 or more"));
        let file = FileConfig::parse("metrics_token = \"0123456789abcdef0123\"").unwrap();
        assert_eq!(metrics_token(&file).unwrap().as_deref(), Some("0123456789abcdef0123"));
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let file = FileConfig::parse("listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/rf\"\n").unwrap();
        let s = resolve(&file, None, None, None, None).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.data_dir, PathBuf::from("/srv/rf"));
        assert!(s.secure_cookies, "cookies are Secure off loopback");
        let s = resolve(&file, Some("127.0.0.1:1"), Some(Path::new("d")), None, None).unwrap();
        assert_eq!((s.listen.port(), s.data_dir.as_path()), (1, Path::new("d")));
        assert!(!s.secure_cookies);
        let s = resolve(&FileConfig::default(), None, None, None, None).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn bad_config_says_what_is_wrong() {
        let err = FileConfig::parse("lisen = \"x\"").unwrap_err().to_string();
        assert!(err.contains("lisen") && err.contains("the keys are"), "{err}");
        let file = FileConfig::parse("nvd_sync_hours = 0.0").unwrap();
        let err = schedule(&file, None, None).unwrap_err().to_string();
        assert!(err.contains("nvd_sync_hours"), "{err}");
        assert!(schedule(&file, Some(false), None).unwrap().is_none(), "turned off, the hours do not matter");
        let file = FileConfig::parse("offline_after_minutes = 1").unwrap();
        assert!(offline_after(&file).unwrap_err().to_string().contains("offline_after_minutes"));
        let file = FileConfig::parse("offline_after_minutes = 30").unwrap();
        assert_eq!(offline_after(&file).unwrap(), std::time::Duration::from_secs(1800));
        assert_eq!(offline_after(&FileConfig::default()).unwrap(), std::time::Duration::from_secs(600));
        let file = FileConfig::parse("alert_webhook = \"ftp://x\"").unwrap();
        assert!(webhook(&file, None).unwrap_err().to_string().contains("alert_webhook"));
        let err = FileConfig::parse("secure_cookies = \"yes\"").unwrap_err().to_string();
        assert!(err.contains("secure_cookies"), "{err}");
        let err =
            resolve(&FileConfig::default(), Some("localhost"), None, None, None).unwrap_err().to_string();
        assert!(err.contains("ADDR:PORT"), "{err}");
        let err =
            resolve(&FileConfig::default(), None, None, Some("mysql://x"), None).unwrap_err().to_string();
        assert!(err.contains("postgres://"), "{err}");
    }

    #[test]
    fn the_reports_section_is_checked_at_start() {
        let err =
            FileConfig::parse("[reports.smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\nsecurty = \"tls\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("securty"), "{err}");
        let err = FileConfig::parse("[reports.smtp]\nhost = \"mail\"").unwrap_err().to_string();
        assert!(err.contains("from"), "{err}");
        let dir = ringfence_store::testing::TempDir::new("ringfence-config");
        let logo = dir.0.join("logo.bmp");
        std::fs::write(&logo, b"BM").unwrap();
        let file = FileConfig::parse(&format!("[reports]\nlogo = {:?}", logo.display().to_string())).unwrap();
        let err = file.reports.as_ref().unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains(".png") && err.contains("logo.bmp"), "{err}");
        let missing = FileConfig::parse("[reports]\nlogo = \"/nonexistent/logo.png\"").unwrap();
        let err = missing.reports.as_ref().unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/logo.png"), "{err}");
        let svg = dir.0.join("logo.svg");
        std::fs::write(&svg, b"<svg/>").unwrap();
        let file = FileConfig::parse(&format!("[reports]\nlogo = {:?}", svg.display().to_string())).unwrap();
        let resolved = file.reports.as_ref().unwrap().resolve().unwrap();
        assert_eq!(resolved.logo.as_deref(), Some("data:image/svg+xml;base64,PHN2Zy8+"));
    }
}
