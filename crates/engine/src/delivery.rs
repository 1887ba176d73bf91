//! Turning a report into a PDF (headless Chromium's print) and mailing it (SMTP).
//!
//! Both reach outside the process: Chromium is run as a child with a time limit, and SMTP
//! goes through `lettre`. Neither is needed for a report to exist: without Chromium a report
//! is kept as HTML and CSV and says why it has no PDF; without SMTP it stays in the dashboard.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long Chromium may take to print one report.
const PRINT_TIMEOUT: Duration = Duration::from_secs(90);

/// Where reports go besides the store.
#[derive(Clone, Debug, Default)]
pub struct ReportConfig {
    /// The Chromium (or Chrome) binary; found on the PATH when unset.
    pub chromium: Option<PathBuf>,
    /// The MSP's logo, as an image file read once at start.
    pub logo: Option<String>,
    pub smtp: Option<SmtpConfig>,
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The sender, e.g. `"Acme IT <reports@acme-it.example>"`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a relay on a trusted
    /// network only).
    #[serde(default = "default_security")]
    pub security: String,
}

fn default_port() -> u16 {
    587
}
fn default_security() -> String {
    "starttls".into()
}

/// Reads a logo file into a `data:` URI for the report's header.
pub fn logo_data_uri(path: &Path) -> Result<String, String> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).map_err(|e| format!("report logo {}: {e}", path.display()))?;
    if bytes.len() > 512 * 1024 {
        return Err(format!("report logo {}: larger than 512 KiB; use a smaller image", path.display()));
    }
    let mime = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("gif") => "image/gif",
        _ => return Err(format!("report logo {}: use a .png, .jpg, .svg or .gif file", path.display())),
    };
    Ok(format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

/// The Chromium binary to print with: the configured one, or the first found on the PATH.
pub fn find_chromium(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("RINGFENCE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Prints an HTML page to PDF with headless Chromium.
pub async fn html_to_pdf(chromium: &Path, html: &str) -> Result<Vec<u8>, String> {
    let dir = std::env::temp_dir().join(format!("ringfence-print-{}", uuid::Uuid::new_v4()));
    tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("cannot make a print directory: {e}"))?;
    let result = print_in(&dir, chromium, html).await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result
}

async fn print_in(dir: &Path, chromium: &Path, html: &str) -> Result<Vec<u8>, String> {
    let page = dir.join("report.html");
    let out = dir.join("report.pdf");
    tokio::fs::write(&page, html).await.map_err(|e| format!("cannot write the page to print: {e}"))?;
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .arg("--no-first-run")
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        format!(
            "cannot run {} to print the PDF: {e} (install chromium or set reports.chromium)",
            chromium.display()
        )
    })?;
    let output = tokio::time::timeout(PRINT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!("{} did not print the PDF within {} s", chromium.display(), PRINT_TIMEOUT.as_secs())
        })?
        .map_err(|e| format!("{} failed: {e}", chromium.display()))?;
    let pdf = tokio::fs::read(&out).await.unwrap_or_default();
    if !output.status.success() || !pdf.starts_with(b"%PDF") {
        let err = String::from_utf8_lossy(&output.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        return Err(format!("{} made no PDF ({}): {tail}", chromium.display(), output.status));
    }
    Ok(pdf)
}

/// One message with attachments.
pub struct Mail<'a> {
    pub to: &'a [String],
    pub subject: &'a str,
    pub html: &'a str,
    pub attachments: Vec<(String, &'static str, Vec<u8>)>,
}

/// Checks an address list from a request: 1 to 20 addresses, each one an e-mail address.
pub fn check_recipients(list: &[String]) -> Result<Vec<String>, String> {
    if list.is_empty() || list.len() > 20 {
        return Err("give 1 to 20 e-mail addresses".into());
    }
    list.iter()
        .map(|a| {
            let a = a.trim();
            a.parse::<lettre::Address>()
                .map(|_| a.to_owned())
                .map_err(|e| format!("'{a}' is not an e-mail address ({e})"))
        })
        .collect()
}

/// Sends a message through the configured SMTP server.
pub async fn send(smtp: &SmtpConfig, mail: Mail<'_>) -> Result<(), String> {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let from = smtp.from.parse().map_err(|e| format!("smtp.from '{}' is not an address: {e}", smtp.from))?;
    let mut builder = Message::builder().from(from).subject(mail.subject);
    for to in mail.to {
        builder = builder.to(to.parse().map_err(|e| format!("'{to}' is not an e-mail address: {e}"))?);
    }
    let mut parts = MultiPart::mixed().singlepart(SinglePart::html(mail.html.to_owned()));
    for (name, mime, bytes) in mail.attachments {
        let ct = ContentType::parse(mime).map_err(|e| format!("attachment {name}: {e}"))?;
        parts = parts.singlepart(Attachment::new(name).body(bytes, ct));
    }
    let message = builder.multipart(parts).map_err(|e| format!("cannot build the message: {e}"))?;
    let transport = match smtp.security.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| format!("smtp host '{}': {e}", smtp.host))?,
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| format!("smtp host '{}': {e}", smtp.host))?,
        other => return Err(format!("smtp.security '{other}' is not one of starttls, tls, none")),
    };
    let mut transport = transport.port(smtp.port).timeout(Some(Duration::from_secs(30)));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        transport = transport
            .credentials(lettre::transport::smtp::authentication::Credentials::new(u.clone(), p.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{} refused or failed: {e}", smtp.host, smtp.port))
}
