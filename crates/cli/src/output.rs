//! What the CLI prints: aligned tables for people, JSON for scripts.

use ringfence_engine::demo::{DEMO_PASSWORD, DemoSeed};
use ringfence_engine::evidence::ChainOk;
use ringfence_evidence::ChainBreak;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints rows as an aligned table under `headers`.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r);
    }
}

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// The demo's banner. `devices` is the store's count (endpoints and appliances); `agents`
/// simulated agents enroll as devices of their own, so the total printed is the one the
/// Devices page shows once they have.
pub fn demo_banner(
    seed: &DemoSeed,
    data_dir: &Path,
    addr: SocketAddr,
    devices: usize,
    agents: usize,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "ringfence demo: {} with {} organizations, {} sites and {} devices{}\n",
        seed.partner.name,
        seed.organizations.len(),
        seed.sites.len(),
        devices + agents,
        if agents > 0 {
            format!(" ({agents} of them simulated agents enrolling now)")
        } else {
            String::new()
        }
    ));
    s.push_str(&format!("Dashboard: http://{addr}/\n"));
    s.push_str(&format!("API:       http://{addr}/api/v1/ (OpenAPI at /api/openapi.json)\n"));
    s.push_str(&format!("Logins (password for all: {DEMO_PASSWORD}):\n"));
    for l in &seed.logins {
        s.push_str(&format!("  {:<30} {:<15} {}\n", l.username, l.role.label(), l.scope));
    }
    s.push_str(&format!(
        "Evidence: ringfence evidence verify --database sqlite:{}",
        data_dir.join("demo.db").display()
    ));
    s
}

#[derive(Serialize)]
struct Verification<'a> {
    ok: bool,
    chains: Vec<ChainJson<'a>>,
}

#[derive(Serialize)]
struct ChainJson<'a> {
    chain: &'a str,
    ok: bool,
    events: Option<i64>,
    problem: Option<String>,
}

fn chain_of(b: &ChainBreak) -> &str {
    match b {
        ChainBreak::Altered { chain, .. }
        | ChainBreak::Unlinked { chain, .. }
        | ChainBreak::Sequence { chain, .. }
        | ChainBreak::Truncated { chain, .. }
        | ChainBreak::HeadMismatch { chain, .. }
        | ChainBreak::MissingHead { chain }
        | ChainBreak::CheckpointForged { chain, .. }
        | ChainBreak::CheckpointMismatch { chain, .. }
        | ChainBreak::CheckpointBeyondEnd { chain, .. } => chain,
    }
}

pub fn print_verification(format: Format, ok: &[ChainOk], broken: &[ChainBreak]) {
    match format {
        Format::Json => {
            let mut chains: Vec<ChainJson> = ok
                .iter()
                .map(|c| ChainJson { chain: &c.chain, ok: true, events: Some(c.events), problem: None })
                .collect();
            chains.extend(broken.iter().map(|b| ChainJson {
                chain: chain_of(b),
                ok: false,
                events: None,
                problem: Some(b.to_string()),
            }));
            json(&Verification { ok: broken.is_empty(), chains });
        }
        Format::Table => {
            for c in ok {
                println!("ok      chain {}: {} events verified", c.chain, c.events);
            }
            for b in broken {
                println!("BROKEN  {b}");
            }
            if broken.is_empty() {
                println!("evidence log intact: {} chain(s)", ok.len());
            } else {
                println!(
                    "evidence log BROKEN: {} of {} chain(s) fail verification",
                    broken.len(),
                    broken.len() + ok.len()
                );
            }
        }
    }
}

/// The result of checking an evidence bundle offline.
pub fn print_bundle_verification(
    format: Format,
    path: &std::path::Path,
    r: &ringfence_evidence::VerifyReport,
) {
    match format {
        Format::Json => {
            let problems: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
            json(&serde_json::json!({
                "bundle": path.display().to_string(),
                "ok": r.ok(),
                "organization": r.organization,
                "window": r.window,
                "events": r.events,
                "full": r.full,
                "stubs": r.stubs,
                "checkpoints_checked": r.checkpoints_checked,
                "rows": r.rows,
                "key_id": r.key_id,
                "authenticated": r.ok() && r.pinned,
                "problems": problems,
                "problems_not_listed": r.problems_not_listed,
            }));
        }
        Format::Table => {
            println!("bundle        {}", path.display());
            println!("organization  {} ({})", r.organization.name, r.organization.id);
            println!("window        {} – {}", r.window.from, r.window.to);
            println!(
                "events        {} ({} in full, {} other organizations' as hash-only stubs)",
                r.events, r.full, r.stubs
            );
            println!("checkpoints   {} signature(s) verified", r.checkpoints_checked);
            println!("rows          {} vulnerability record(s) recomputed from the events", r.rows);
            println!(
                "signing key   {} (compare it with the key id the MSP publishes for its server)",
                r.key_id
            );
            for p in &r.problems {
                println!("PROBLEM  {p}");
            }
            if r.problems_not_listed > 0 {
                println!("PROBLEM  … and {} more", r.problems_not_listed);
            }
            if r.ok() && r.pinned {
                println!(
                    "bundle intact and signed by the key you gave: every hash, link, signature and table checks out"
                );
            } else if r.ok() {
                println!(
                    "bundle intact but NOT AUTHENTICATED: it was signed by key {}, which you did not give; anyone can sign a bundle \
                     with a key of their own. Pass the MSP's key, published out of band, with --public-key (exit 7 until then)",
                    r.key_id
                );
            } else {
                println!("bundle BROKEN: {} problem(s)", r.problems.len() as u64 + r.problems_not_listed);
            }
        }
    }
}

/// What an evidence export wrote.
pub fn print_export(format: Format, path: &std::path::Path, s: &ringfence_engine::evidence::ExportSummary) {
    match format {
        Format::Json => json(&serde_json::json!({ "bundle": path.display().to_string(), "summary": s })),
        Format::Table => {
            println!("wrote {} for {}", path.display(), s.organization);
            println!(
                "events {}–{}: {} ({} in full, {} stubs), {} checkpoint(s), {} vulnerability record(s)",
                s.first_seq, s.last_seq, s.events, s.full, s.stubs, s.checkpoints, s.rows
            );
            println!("signing key {}; manifest sha256 {}", s.key_id, s.manifest_sha256);
            if let Some(n) = &s.pdf_note {
                println!("no PDF summary: {n}");
            }
        }
    }
}
