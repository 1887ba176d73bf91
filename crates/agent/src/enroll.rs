//! Enrollment: the agent presents a site's token, receives its device credential and the
//! server's public key, and keeps both in its configuration folder (readable by root only).

use crate::Root;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What an enrolled agent keeps in `agent.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgentConfig {
    pub server: String,
    pub device_id: String,
    pub credential: String,
    /// The server's ed25519 public key (hex), pinned at enrollment: jobs signed with any
    /// other key are refused.
    pub server_public_key: String,
}

#[derive(Serialize)]
struct EnrollRequest<'a> {
    token: &'a str,
    hostname: &'a str,
    machine_id: &'a str,
    os: &'a str,
    agent_version: &'a str,
}

#[derive(Deserialize)]
struct EnrollResponse {
    device_id: String,
    credential: String,
    server_public_key: String,
    clone_of: Option<String>,
}

/// The machine's stable id: `/etc/machine-id` (or D-Bus's copy); on Windows the
/// `MachineGuid` of the registry.
pub fn machine_id(root: &Root) -> Option<String> {
    #[cfg(windows)]
    if let Some(id) = crate::platforms::windows_registry::machine_guid() {
        return Some(id);
    }
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| root.read(p))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn hostname(root: &Root) -> Option<String> {
    #[cfg(windows)]
    if let Some(name) = std::env::var("COMPUTERNAME").ok().filter(|n| !n.trim().is_empty()) {
        return Some(name.trim().to_string());
    }
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .find_map(|p| root.read(p))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn os_name(root: &Root) -> String {
    #[cfg(windows)]
    {
        let _ = root;
        use crate::platforms::windows_registry as reg;
        reg::current_version().and_then(|cv| reg::os_of(&cv)).map(|os| os.name).unwrap_or_default()
    }
    #[cfg(not(windows))]
    root.read("/etc/os-release").map(|t| crate::collectors::parse_os_release(&t).name).unwrap_or_default()
}

/// Where the agent keeps its credential and spool unless told otherwise:
/// `/etc/ringfence-agent`, on Windows `%ProgramData%\ringfence`.
pub fn default_config_dir() -> PathBuf {
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(base).join("ringfence")
    } else {
        PathBuf::from("/etc/ringfence-agent")
    }
}

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("agent.json")
}

/// Writes a file only its owner may read (mode 0600), replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
        let mut f = f.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Enrolls with `server` and stores the result in `dir`. Refuses when `dir` already holds an
/// enrollment, unless `force`.
pub fn enroll(
    server: &str,
    token: &str,
    dir: &Path,
    root: &Root,
    hostname_override: Option<&str>,
    force: bool,
) -> Result<(AgentConfig, Option<String>), String> {
    let path = config_path(dir);
    if path.exists() && !force {
        let existing =
            std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<AgentConfig>(&t).ok());
        return Err(match existing {
            Some(c) => format!(
                "this agent is already enrolled as device {} with {}; use --force to enroll again",
                c.device_id, c.server
            ),
            None => format!("{} exists; use --force to replace it", path.display()),
        });
    }
    let server = server.trim_end_matches('/');
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(format!("--server must be an http:// or https:// URL (got '{server}')"));
    }
    let machine_id = machine_id(root)
        .ok_or("this machine has no /etc/machine-id; create one with systemd-machine-id-setup")?;
    let hostname = match hostname_override {
        Some(h) => h.to_string(),
        None => hostname(root).ok_or("cannot read the host name; pass --hostname")?,
    };
    let os = os_name(root);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let resp = client
        .post(format!("{server}/api/agent/v1/enroll"))
        .json(&EnrollRequest {
            token: token.trim(),
            hostname: &hostname,
            machine_id: &machine_id,
            os: &os,
            agent_version: env!("CARGO_PKG_VERSION"),
        })
        .send()
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    let status = resp.status();
    let text = resp.text().map_err(|e| format!("the server's answer was cut off: {e}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(format!("the server refused the enrollment ({status}): {message}"));
    }
    let r: EnrollResponse =
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not an enrollment: {e}"))?;
    let config = AgentConfig {
        server: server.to_string(),
        device_id: r.device_id,
        credential: r.credential,
        server_public_key: r.server_public_key,
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
    write_private(&path, &json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((config, r.clone_of))
}
