//! The job executor against the real apt and dpkg of this machine, in a private root: small
//! `.deb` packages of a made-up service `ringdemo` are built here with `dpkg-deb`, served as
//! a flat `file:` repository, and installed, failed, rolled back, held and rebooted through
//! signed jobs, as the agent does on a device. No mocks: the "server" is the list of reports
//! the agent sent.
//!
//! ringdemo 1.0 and 1.1 are good; 1.2's postinst exits 1 (outside the MSP's lab); 1.3 installs but its
//! `ringdemo --health` exits 1; 1.4 is good and asks for a reboot (its postinst writes
//! `$DPKG_ROOT/run/reboot-required`, as kernel packages do).
#![cfg(unix)]

use ringfence_agent::Root;
use ringfence_agent::enroll::AgentConfig;
use ringfence_agent::exec::ExecOptions;
use ringfence_agent::jobs::{self, Handled, Jobs, MAX_REBOOTS_PER_DAY};
use ringfence_agent_testkit::{self as testing, tools_present, write};
use ringfence_proto::jobs::{
    HealthCheck, Job, JobKind, JobOutcome, JobReport, PackageVersion, SignedJob, sign,
};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

const SECRET: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

/// The server's side of the reports: what it received, in order, and whether it is up.
#[derive(Default)]
struct Server {
    received: RefCell<Vec<JobReport>>,
    online: Cell<bool>,
}

impl Server {
    fn receive(&self, r: &JobReport) -> Result<(), String> {
        if !self.online.get() {
            return Err("cannot reach the server".into());
        }
        self.received.borrow_mut().push(r.clone());
        Ok(())
    }

    fn outcomes(&self) -> Vec<JobOutcome> {
        self.received.borrow().iter().map(|r| r.outcome).collect()
    }
}

struct Device {
    dir: PathBuf,
    root: PathBuf,
    config: AgentConfig,
    opts: ExecOptions,
    jobs: Jobs,
    server: Rc<Server>,
    now: jiff::Timestamp,
    n: Cell<u32>,
}

impl Device {
    fn new(name: &str) -> Device {
        let dir = std::env::temp_dir().join(format!("ringfence-apt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = testing::demo_repo(&dir);
        let root = testing::private_root(&dir, &repo);
        // The "reboot": a new boot id, and the flag file gone as /run is emptied.
        let reboot = dir.join("reboot.sh");
        write(
            &reboot,
            &format!(
                "#!/bin/sh\necho \"boot-$$\" > '{r}/proc/sys/kernel/random/boot_id'\nrm -f '{r}/run/reboot-required'\n",
                r = root.display()
            ),
            0o755,
        );
        let config_dir = dir.join("config");
        std::fs::create_dir_all(&config_dir).unwrap();
        let config = AgentConfig {
            server: "http://127.0.0.1:9".into(),
            device_id: "dev-apt".into(),
            credential: "rfa_test".into(),
            server_public_key: ringfence_proto::jobs::public_key(SECRET).unwrap(),
        };
        let opts = ExecOptions {
            reboot_command: vec![reboot.display().to_string()],
            min_free_mib: 1,
            lock_wait: Duration::from_secs(5),
            ..ExecOptions::for_root(Root(root.clone()))
        };
        let jobs = Jobs::open(&config_dir).unwrap();
        Device {
            dir,
            root,
            config,
            opts,
            jobs,
            server: Rc::new(Server { online: Cell::new(true), ..Default::default() }),
            now: jiff::Timestamp::now(),
            n: Cell::new(0),
        }
    }

    fn signed(&self, work: JobKind) -> SignedJob {
        self.n.set(self.n.get() + 1);
        let job = Job {
            id: format!("job-{}", self.n.get()),
            idempotency_key: format!("key-{}", self.n.get()),
            device_id: self.config.device_id.clone(),
            deployment_id: None,
            work,
            window_start: self.now - jiff::SignedDuration::from_hours(1),
            window_end: self.now + jiff::SignedDuration::from_hours(4),
            issued_at: self.now - jiff::SignedDuration::from_hours(2),
        };
        sign(&job, SECRET).unwrap()
    }

    fn handle(&mut self, signed: &SignedJob) -> Handled {
        let server = self.server.clone();
        let send = move |r: &JobReport| server.receive(r);
        jobs::handle(&mut self.jobs, &self.config, &self.opts, signed, self.now, &send).unwrap()
    }

    fn install(&mut self, version: &str, reboot_allowed: bool) -> JobReport {
        let signed = self.signed(JobKind::Install {
            packages: vec![ringdemo(version)],
            reboot_allowed,
            health_checks: vec![health_check()],
        });
        let h = self.handle(&signed);
        h.reports.last().cloned().unwrap()
    }

    fn version(&self) -> String {
        testing::ringdemo_version(&self.root)
    }

    fn apt(&self, args: &str) -> String {
        testing::apt(&self.root, args)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn ringdemo(version: &str) -> PackageVersion {
    PackageVersion { manager: "dpkg".into(), name: "ringdemo".into(), version: version.into() }
}

fn health_check() -> HealthCheck {
    HealthCheck::Command {
        argv: vec!["/bin/sh".into(), "-c".into(), "\"$RINGFENCE_ROOT/usr/bin/ringdemo\" --health".into()],
        timeout_secs: 10,
    }
}

fn summary(r: &JobReport) -> (JobOutcome, &str, Vec<String>) {
    (r.outcome, r.phase.as_str(), r.installed.iter().map(|p| p.version.clone()).collect())
}

#[test]
fn install_fail_roll_back_and_hold_on_a_private_dpkg_root() {
    if !tools_present() {
        return;
    }
    let mut d = Device::new("flow");
    let started = std::time::Instant::now();

    let r = d.install("1.0", false);
    assert_eq!(summary(&r), (JobOutcome::Succeeded, "done", vec!["1.0".to_string()]), "{}", r.log);
    assert_eq!(d.version(), "1.0 ii");

    let r = d.install("1.1", false);
    assert_eq!(summary(&r), (JobOutcome::Succeeded, "done", vec!["1.1".to_string()]), "{}", r.log);
    assert_eq!(r.health.len(), 1);
    assert!(r.health[0].passed, "{:?}", r.health);
    // The server saw Started, then the final report.
    let outcomes = d.server.outcomes();
    assert_eq!(outcomes[outcomes.len() - 2..], [JobOutcome::Started, JobOutcome::Succeeded]);

    // A failing postinst: failed at install, naming the package and the script, with the log.
    let r = d.install("1.2", false);
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Failed, "install"), "{}", r.log);
    assert!(
        r.detail.contains("package ringdemo") && r.detail.contains("post-installation script"),
        "{}",
        r.detail
    );
    assert!(r.log.contains("cannot create its state folder"), "{}", r.log);
    assert_eq!(r.installed, [ringdemo("1.2")], "dpkg holds 1.2, half-configured");
    assert_eq!(d.version(), "1.2 iF");

    // A version no repository offers.
    let r = d.install("9.9", false);
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Failed, "install"));
    assert!(r.detail.contains("Version '9.9' for 'ringdemo' was not found"), "{}", r.detail);

    // Installs fine, but its health check fails.
    let r = d.install("1.3", false);
    assert_eq!(summary(&r), (JobOutcome::Failed, "health", vec!["1.3".to_string()]), "{}", r.log);
    assert!(
        r.detail.starts_with("health check command /bin/sh") && r.detail.contains("exit 1"),
        "{}",
        r.detail
    );

    // Roll back to 1.1 and hold it there.
    let signed =
        d.signed(JobKind::Rollback { packages: vec![ringdemo("1.1")], health_checks: vec![health_check()] });
    let r = d.handle(&signed).reports.pop().unwrap();
    assert_eq!(summary(&r), (JobOutcome::Succeeded, "done", vec!["1.1".to_string()]), "{}", r.log);
    assert_eq!(d.version(), "1.1 hi");
    assert_eq!(
        Command::new("apt-mark")
            .args(["-o", &format!("Dir={}", d.root.display()), "showhold"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap(),
        "ringdemo"
    );
    // A plain upgrade leaves the held version alone...
    let upgrade = d.apt("upgrade -y -q");
    assert!(upgrade.contains("kept back"), "{upgrade}");
    assert_eq!(d.version(), "1.1 hi");

    // ...and the same job delivered again is not run again: its report is sent again.
    let before = d.server.received.borrow().len();
    let again = d.handle(&signed);
    assert_eq!(again.reports, std::slice::from_ref(&r));
    assert_eq!(d.server.received.borrow()[before..], [r]);
    assert_eq!(d.version(), "1.1 hi");

    // The server decides: a job naming 1.3 still installs it over the hold.
    let r = d.install("1.3", false);
    assert_eq!(summary(&r), (JobOutcome::Failed, "health", vec!["1.3".to_string()]));

    // A job for another device is refused and reported as such, never run.
    let mut other = d.signed(JobKind::Install {
        packages: vec![ringdemo("1.0")],
        reboot_allowed: false,
        health_checks: vec![],
    });
    other.signature = "00".repeat(64);
    let r = d.handle(&other).reports.pop().unwrap();
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Refused, "verify"));
    assert!(r.detail.contains("signature does not verify"), "{}", r.detail);
    assert_eq!(d.version(), "1.3 ii");
    assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
}

#[test]
fn prechecks_refuse_on_battery_and_with_a_pending_reboot() {
    if !tools_present() {
        return;
    }
    let mut d = Device::new("precheck");
    let bat = d.root.join("sys/class/power_supply/BAT0");
    std::fs::create_dir_all(&bat).unwrap();
    std::fs::write(bat.join("type"), "Battery\n").unwrap();
    std::fs::write(bat.join("status"), "Discharging\n").unwrap();
    let r = d.install("1.0", false);
    assert_eq!(summary(&r), (JobOutcome::Failed, "precheck", vec![String::new()]));
    assert!(r.detail.contains("running on battery"), "{}", r.detail);
    assert_eq!(d.version(), "", "nothing was installed");

    std::fs::write(bat.join("status"), "Charging\n").unwrap();
    std::fs::create_dir_all(d.root.join("run")).unwrap();
    std::fs::write(d.root.join("run/reboot-required"), "").unwrap();
    let r = d.install("1.0", false);
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Failed, "precheck"));
    assert!(r.detail.contains("reboot is pending"), "{}", r.detail);
    // A rollback undoes a bad change: a pending reboot does not stop it.
    let rollback = d.signed(JobKind::Rollback { packages: vec![ringdemo("1.0")], health_checks: vec![] });
    let r = d.handle(&rollback).reports.pop().unwrap();
    assert_eq!(summary(&r), (JobOutcome::Succeeded, "done", vec!["1.0".to_string()]), "{}", r.log);
    assert!(r.detail.contains("a reboot is required and was not allowed"), "{}", r.detail);

    // Too little free space for the package cache.
    std::fs::remove_file(d.root.join("run/reboot-required")).unwrap();
    d.opts.min_free_mib = u64::MAX / (1 << 20);
    let r = d.install("1.0", false);
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Failed, "precheck"));
    assert!(r.detail.contains("var/cache/apt/archives"), "{}", r.detail);
}

#[test]
fn a_reboot_between_rounds_finishes_the_job_and_the_breaker_stops_a_loop() {
    if !tools_present() {
        return;
    }
    let mut d = Device::new("reboot");
    d.install("1.1", false);
    // 1.4 asks for a reboot and the job allows it; the server is away meanwhile.
    d.server.online.set(false);
    let signed = d.signed(JobKind::Install {
        packages: vec![ringdemo("1.4")],
        reboot_allowed: true,
        health_checks: vec![health_check()],
    });
    let h = d.handle(&signed);
    assert!(h.rebooting && h.changed);
    assert_eq!(h.reports.iter().map(|r| r.outcome).collect::<Vec<_>>(), [JobOutcome::Rebooting]);
    assert_eq!(h.reports[0].boot_id.as_deref(), Some("boot-1"));
    assert!(!d.root.join("run/reboot-required").exists(), "the reboot command ran");
    assert_eq!(d.jobs.outbox().len(), 1, "the Rebooting report waits for the server");
    // Delivered again before the job ends: not run again, nothing to report yet.
    assert_eq!(d.handle(&signed), Handled::default());

    // The next round, after the reboot, with the server back.
    d.server.online.set(true);
    let server = d.server.clone();
    let send = |r: &JobReport| server.receive(r);
    assert_eq!(d.jobs.flush(&send), 1);
    let h = jobs::resume(&mut d.jobs, &d.opts, d.now, &send).unwrap();
    let r = h.reports.last().unwrap();
    assert_eq!(summary(r), (JobOutcome::Succeeded, "done", vec!["1.4".to_string()]), "{}", r.log);
    assert!(r.rebooted && r.health[0].passed);
    assert_ne!(r.boot_id.as_deref(), Some("boot-1"));
    let got = d.server.outcomes();
    assert_eq!(
        got[got.len() - 2..],
        [JobOutcome::Rebooting, JobOutcome::Succeeded],
        "in order, after the outage"
    );

    // Two Reboot jobs reach the limit of three job reboots a day; the fourth is refused.
    for _ in 1..MAX_REBOOTS_PER_DAY {
        let signed = d.signed(JobKind::Reboot);
        assert!(d.handle(&signed).rebooting);
        let h = jobs::resume(&mut d.jobs, &d.opts, d.now, &send).unwrap();
        assert_eq!((h.reports[0].outcome, h.reports[0].rebooted), (JobOutcome::Succeeded, true));
    }
    let signed = d.signed(JobKind::Reboot);
    let r = d.handle(&signed).reports.pop().unwrap();
    assert_eq!((r.outcome, r.phase.as_str()), (JobOutcome::Failed, "reboot"));
    assert!(r.detail.starts_with("reboot-loop breaker: "), "{}", r.detail);
    // A day later the breaker lets a reboot through again.
    assert_eq!(d.jobs.reboots_in_last_day(d.now + jiff::SignedDuration::from_hours(25)), 0);
}

/// A stand-in for the ringfence server's agent endpoints, speaking plain HTTP/1.1 on port 0:
/// it answers as the real endpoints do (check-in with the applied inventory number, inventory
/// applied, job lease, report recorded) and records every request. `fail_reports` answers
/// that many report posts with 503 first, as a server that is away.
struct AgentEndpoints {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

fn serve(lease: Vec<SignedJob>, fail_reports: usize) -> AgentEndpoints {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        let mut lease = Some(lease);
        let mut fail_reports = fail_reports;
        let mut seq = 0i64;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let (status, answer) = match path.as_str() {
                "/api/agent/v1/checkin" => (200, serde_json::json!({ "inventory_seq": seq })),
                "/api/agent/v1/inventory" => {
                    seq = body["seq"].as_i64().unwrap_or(seq);
                    (200, serde_json::json!({ "applied": true, "seq": seq }))
                }
                "/api/agent/v1/jobs" => {
                    (200, serde_json::json!({ "jobs": lease.take().unwrap_or_default() }))
                }
                "/api/agent/v1/jobs/report" if fail_reports > 0 => {
                    fail_reports -= 1;
                    (503, serde_json::json!({ "error": "unavailable" }))
                }
                "/api/agent/v1/jobs/report" => (200, serde_json::json!({ "recorded": true })),
                _ => (200, serde_json::json!({})),
            };
            log.lock().unwrap().push((path, body));
            let text = answer.to_string();
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    AgentEndpoints { url, requests }
}

#[test]
fn run_once_checks_in_reports_inventory_runs_the_job_and_reports_the_inventory_after() {
    if !tools_present() {
        return;
    }
    let d = Device::new("binary");
    let job = d.signed(JobKind::Install {
        packages: vec![ringdemo("1.1")],
        reboot_allowed: false,
        health_checks: vec![health_check()],
    });
    // The server is away for both reports of the job: the Started one (progress only) is
    // not sent again, the final one is kept and sent in the next round.
    let server = serve(vec![job], 2);
    let config_dir = d.dir.join("agent");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = AgentConfig { server: server.url.clone(), ..d.config.clone() };
    std::fs::write(config_dir.join("agent.json"), serde_json::to_string(&config).unwrap()).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ringfence-agent"))
            .args([
                "run",
                "--once",
                "--min-free-mib",
                "1",
                "--lock-wait",
                "5",
                "--reboot-command",
                "/bin/false",
            ])
            .arg("--root")
            .arg(&d.root)
            .arg("--config-dir")
            .arg(&config_dir)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("job job-1 (key-1): Succeeded at done"), "{stdout}");
    assert_eq!(d.version(), "1.1 ii");
    let paths: Vec<String> = server.requests.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    let order: Vec<&str> =
        paths.iter().map(|p| p.trim_start_matches("/api/agent/v1/")).filter(|p| *p != "updates").collect();
    assert_eq!(
        order,
        ["checkin", "inventory", "jobs", "jobs/report", "jobs/report", "checkin", "inventory"],
        "heartbeat, inventory, lease, Started and final reports (both 503), then the inventory after"
    );
    {
        let requests = server.requests.lock().unwrap();
        assert_eq!(requests[0].1["boot_id"], "boot-1");
        let after = &requests.iter().rev().find(|(p, _)| p.ends_with("/inventory")).unwrap().1;
        assert!(after["delta"]["added"].to_string().contains("ringdemo"), "{after}");
    }

    // The next round sends the kept final report first; the job does not run again.
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let requests = server.requests.lock().unwrap();
    let reports: Vec<&serde_json::Value> =
        requests.iter().filter(|(p, _)| p.ends_with("/jobs/report")).map(|(_, b)| b).collect();
    let last = reports.last().unwrap();
    assert_eq!((last["outcome"].as_str(), last["phase"].as_str()), (Some("succeeded"), Some("done")));
    assert_eq!(last["installed"][0]["version"], "1.1");
    assert_eq!(reports.iter().filter(|r| r["outcome"] == "started").count(), 1);
}
