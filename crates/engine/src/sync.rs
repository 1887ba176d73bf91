//! Online feed syncs: the NVD CVE API 2.0 (paged, incremental by lastModified in 120-day
//! windows, optional API key, rate limits honoured with backoff, resumable), and the KEV,
//! EPSS and Debian tracker downloads. Each fetched body goes through the same importer as
//! files do.
//!
//! Resuming: after every stored NVD page the cursor (`feed_state`) records the window and
//! the next start index, so an interrupted sync continues where it stopped instead of
//! starting over.

use crate::intel::{ImportSummary, import_unrecorded, merge_summary, record_run};
use jiff::{Span, Timestamp as JTimestamp};
use ringfence_model::Timestamp;
use ringfence_store::Store;
use std::time::Duration;

pub const NVD_URL: &str = "https://services.nvd.nist.gov/rest/json/cves/2.0";
pub const KEV_URL: &str =
    "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json";
pub const EPSS_URL: &str = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz";
pub const DEBIAN_URL: &str = "https://security-tracker.debian.org/tracker/data/json";

/// NVD's largest window for lastModified queries.
const WINDOW_DAYS: i64 = 120;

/// Where and how to sync.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub nvd_url: String,
    pub nvd_api_key: Option<String>,
    pub kev_url: String,
    pub epss_url: String,
    pub debian_url: String,
    pub page_size: u32,
    /// Pause between NVD requests: NVD allows 5 requests per 30 s without a key and 50
    /// with one.
    pub pause: Duration,
    /// First backoff after a refusal; doubled on each retry.
    pub backoff: Duration,
    pub max_retries: u32,
}

impl SyncConfig {
    pub fn new(nvd_api_key: Option<String>) -> Self {
        let pause = if nvd_api_key.is_some() { Duration::from_millis(700) } else { Duration::from_secs(6) };
        SyncConfig {
            nvd_url: NVD_URL.into(),
            nvd_api_key,
            kev_url: KEV_URL.into(),
            epss_url: EPSS_URL.into(),
            debian_url: DEBIAN_URL.into(),
            page_size: 2000,
            pause,
            backoff: Duration::from_secs(6),
            max_retries: 6,
        }
    }
}

/// Which feed to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feed {
    Nvd,
    Kev,
    Epss,
    Debian,
}

impl Feed {
    pub const ALL: [Feed; 4] = [Feed::Nvd, Feed::Kev, Feed::Epss, Feed::Debian];

    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Nvd => "nvd",
            Feed::Kev => "kev",
            Feed::Epss => "epss",
            Feed::Debian => "debian",
        }
    }

    pub fn parse(s: &str) -> Option<Feed> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("ringfence/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// GETs a URL, retrying refusals (403, 429, 5xx) and dropped connections with exponential
/// backoff; a `Retry-After` answer is honoured when it is longer.
async fn fetch(
    client: &reqwest::Client,
    cfg: &SyncConfig,
    url: &str,
    query: &[(&str, String)],
) -> Result<Vec<u8>, String> {
    let mut attempt = 0;
    loop {
        let mut req = client.get(url).query(query);
        if let Some(k) = &cfg.nvd_api_key
            && url == cfg.nvd_url
        {
            req = req.header("apiKey", k);
        }
        let outcome: Result<std::convert::Infallible, (String, Option<Duration>)> = match req.send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => return Ok(b.to_vec()),
                Err(e) => Err((format!("the connection dropped while reading {url}: {e}"), None)),
            },
            Ok(r) => {
                let status = r.status();
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let retryable = matches!(status.as_u16(), 403 | 429 | 500..=599);
                if !retryable {
                    return Err(format!("{url} answered {status}"));
                }
                Err((format!("{url} answered {status} (rate limit or overload)"), retry_after))
            }
            Err(e) => Err((format!("cannot reach {url}: {e}"), None)),
        };
        let Err((why, retry_after)) = outcome;
        attempt += 1;
        if attempt > cfg.max_retries {
            return Err(format!("{why}; gave up after {} attempts", cfg.max_retries + 1));
        }
        let backoff = cfg.backoff * 2u32.saturating_pow(attempt - 1);
        let wait = retry_after.map_or(backoff, |r| r.max(backoff));
        tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, "{why}; retrying");
        tokio::time::sleep(wait).await;
    }
}

fn nvd_date(t: JTimestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// The NVD cursor: a finished sync up to a time, or one in progress.
#[derive(Debug, PartialEq, Eq)]
enum Cursor {
    /// Nothing synced yet, or a full sync paused at this start index.
    Full { next: u64 },
    /// Synced up to this time.
    Done { until: JTimestamp },
    /// A window in progress.
    Window { start: JTimestamp, end: JTimestamp, next: u64 },
}

impl Cursor {
    fn parse(s: Option<&str>) -> Cursor {
        let Some(s) = s else { return Cursor::Full { next: 0 } };
        let parts: Vec<&str> = s.split('|').collect();
        match parts.as_slice() {
            ["full", n] => Cursor::Full { next: n.parse().unwrap_or(0) },
            ["done", t] => t.parse().map(|until| Cursor::Done { until }).unwrap_or(Cursor::Full { next: 0 }),
            ["window", a, b, n] => match (a.parse(), b.parse(), n.parse()) {
                (Ok(start), Ok(end), Ok(next)) => Cursor::Window { start, end, next },
                _ => Cursor::Full { next: 0 },
            },
            _ => Cursor::Full { next: 0 },
        }
    }

    fn render(&self) -> String {
        match self {
            Cursor::Full { next } => format!("full|{next}"),
            Cursor::Done { until } => format!("done|{until}"),
            Cursor::Window { start, end, next } => format!("window|{start}|{end}|{next}"),
        }
    }
}

/// A lastModified window: start and end.
type Window = (JTimestamp, JTimestamp);

/// Reads the paging header of an NVD page.
fn page_counts(body: &[u8]) -> Result<(u64, u64, u64), String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        start_index: u64,
        total_results: u64,
        #[serde(default)]
        vulnerabilities: Vec<serde::de::IgnoredAny>,
    }
    let h: Head =
        serde_json::from_slice(body).map_err(|e| format!("the NVD answer is not an API page: {e}"))?;
    Ok((h.start_index, h.total_results, h.vulnerabilities.len() as u64))
}

/// Syncs NVD into the store and returns what changed.
pub async fn sync_nvd(store: &dyn Store, cfg: &SyncConfig, now: JTimestamp) -> Result<ImportSummary, String> {
    let client = client()?;
    let started = Timestamp::now();
    let mut summary = ImportSummary {
        origin: cfg.nvd_url.clone(),
        format: "NVD CVE API 2.0 sync".into(),
        ..Default::default()
    };
    let mut cursor = Cursor::parse(store.feed_cursor("nvd").await.map_err(|e| e.to_string())?.as_deref());
    let save = |c: &Cursor| c.render();
    let mut first = true;
    loop {
        let (query, window): (Vec<(&str, String)>, Option<Window>) = match &cursor {
            Cursor::Full { next } => {
                (vec![("resultsPerPage", cfg.page_size.to_string()), ("startIndex", next.to_string())], None)
            }
            Cursor::Window { start, end, next } => (
                vec![
                    ("lastModStartDate", nvd_date(*start)),
                    ("lastModEndDate", nvd_date(*end)),
                    ("resultsPerPage", cfg.page_size.to_string()),
                    ("startIndex", next.to_string()),
                ],
                Some((*start, *end)),
            ),
            Cursor::Done { until } => {
                if *until >= now {
                    break;
                }
                let end = (*until + Span::new().hours(WINDOW_DAYS * 24)).min(now);
                cursor = Cursor::Window { start: *until, end, next: 0 };
                continue;
            }
        };
        if !first {
            tokio::time::sleep(cfg.pause).await;
        }
        first = false;
        let body = fetch(&client, cfg, &cfg.nvd_url, &query).await?;
        let (start_index, total, got) = page_counts(&body)?;
        let page =
            import_unrecorded(store, Box::new(std::io::Cursor::new(body)), &cfg.nvd_url, started).await?;
        merge_summary(&mut summary, page);
        let next = start_index + got;
        cursor = match (window, got == 0 || next >= total) {
            (None, false) => Cursor::Full { next },
            // A full sync ends at the time it started: later changes come by window.
            (None, true) => Cursor::Done { until: now },
            (Some((start, end)), false) => Cursor::Window { start, end, next },
            (Some((_, end)), true) => Cursor::Done { until: end },
        };
        store.set_feed_cursor("nvd", &save(&cursor), started).await.map_err(|e| e.to_string())?;
    }
    summary.format = "NVD CVE API 2.0 sync".into();
    record_run(store, &summary, started, None).await?;
    Ok(summary)
}

/// Downloads one whole-file feed (KEV, EPSS, Debian) and imports it.
pub async fn sync_file(store: &dyn Store, cfg: &SyncConfig, feed: Feed) -> Result<ImportSummary, String> {
    let url = match feed {
        Feed::Kev => &cfg.kev_url,
        Feed::Epss => &cfg.epss_url,
        Feed::Debian => &cfg.debian_url,
        Feed::Nvd => return Err("NVD is synced page by page".into()),
    };
    let client = client()?;
    let started = Timestamp::now();
    let body = fetch(&client, cfg, url, &[]).await?;
    let summary = import_unrecorded(store, Box::new(std::io::Cursor::new(body)), url, started).await?;
    record_run(store, &summary, started, None).await?;
    store.set_feed_cursor(feed.as_str(), &started.to_string(), started).await.map_err(|e| e.to_string())?;
    Ok(summary)
}

/// Syncs the given feeds; a failing feed is reported and the others still run.
pub async fn sync(store: &dyn Store, cfg: &SyncConfig, feeds: &[Feed]) -> (Vec<ImportSummary>, Vec<String>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for &f in feeds {
        let r = match f {
            Feed::Nvd => sync_nvd(store, cfg, JTimestamp::now()).await,
            other => sync_file(store, cfg, other).await,
        };
        match r {
            Ok(s) => done.push(s),
            Err(e) => {
                let summary = ImportSummary {
                    origin: f.as_str().into(),
                    format: format!("{} sync", f.as_str()),
                    ..Default::default()
                };
                let _ = record_run(store, &summary, Timestamp::now(), Some(e.clone())).await;
                failed.push(format!("{}: {e}", f.as_str()));
            }
        }
    }
    (done, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let t: JTimestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for c in [
            Cursor::Full { next: 4000 },
            Cursor::Done { until: t },
            Cursor::Window { start: t, end: t + Span::new().hours(24), next: 2000 },
        ] {
            assert_eq!(Cursor::parse(Some(&c.render())), c);
        }
        assert_eq!(Cursor::parse(Some("garbage")), Cursor::Full { next: 0 });
        assert_eq!(Cursor::parse(None), Cursor::Full { next: 0 });
    }

    #[test]
    fn nvd_dates_have_milliseconds() {
        let t: JTimestamp = "2026-03-04T05:06:07.891Z".parse().unwrap();
        assert_eq!(nvd_date(t), "2026-03-04T05:06:07.891");
    }
}

/// How often the server syncs by itself.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub config: SyncConfig,
    pub nvd_every: Duration,
    /// KEV, EPSS and the Debian tracker.
    pub daily_every: Duration,
    /// Delay before the first round after start.
    pub first_after: Duration,
}

impl Schedule {
    pub fn new(config: SyncConfig) -> Self {
        Schedule {
            config,
            nvd_every: Duration::from_secs(2 * 3600),
            daily_every: Duration::from_secs(24 * 3600),
            first_after: Duration::from_secs(30),
        }
    }
}

/// Runs the syncs forever on their schedule, correlating after each round (which raises
/// alerts for new CVEs and KEV entries that touch the fleet). Failures are logged and
/// recorded in the feed history; the next round tries again.
pub async fn run_schedule(engine: crate::Engine, schedule: Schedule) {
    let start = tokio::time::Instant::now() + schedule.first_after;
    let mut next: Vec<(Feed, tokio::time::Instant)> = Feed::ALL.iter().map(|f| (*f, start)).collect();
    loop {
        let due_at = next.iter().map(|(_, t)| *t).min().unwrap_or(start);
        tokio::time::sleep_until(due_at).await;
        let now = tokio::time::Instant::now();
        let due: Vec<Feed> = next.iter().filter(|(_, t)| *t <= now).map(|(f, _)| *f).collect();
        let (done, failed) = sync(engine.store().as_ref(), &schedule.config, &due).await;
        for f in &failed {
            tracing::warn!("feed sync failed: {f}");
        }
        for s in &done {
            tracing::info!(feed = %s.format, added = s.counts.added, changed = s.counts.changed, "feed synced");
        }
        if !done.is_empty() {
            match engine.correlate_after_import(&done).await {
                Ok(r) => tracing::info!(
                    devices = r.devices,
                    new = r.new_findings,
                    resolved = r.resolved,
                    alerts = r.alerts,
                    "correlated after sync"
                ),
                Err(e) => tracing::warn!(error = %e, "correlation after sync failed"),
            }
        }
        for (f, t) in &mut next {
            if due.contains(f) {
                *t = now + if *f == Feed::Nvd { schedule.nvd_every } else { schedule.daily_every };
            }
        }
    }
}
