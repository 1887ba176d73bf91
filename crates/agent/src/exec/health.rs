//! Health checks after a change, exactly as the signed job lists them: a systemd unit is
//! active, a TCP port accepts within 5 s, an HTTP GET answers the expected status within
//! 10 s, or a command exits 0 within its timeout (killed when it does not). Commands see
//! `RINGFENCE_ROOT`, so a policy can point a check into a private root. A check never
//! panics and never stops the others: each gives a `CheckResult`.

use super::{ExecOptions, append_log, run_command};
use ringfence_proto::jobs::{CheckResult, HealthCheck};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Runs every check; their output goes to `log`.
pub fn run_checks(checks: &[HealthCheck], opts: &ExecOptions, log: &mut String) -> Vec<CheckResult> {
    checks
        .iter()
        .map(|c| {
            let (passed, detail) = match run_one(c, opts, log) {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            append_log(
                log,
                &format!("health check {}: {} {detail}", c.label(), if passed { "passed" } else { "FAILED" }),
            );
            // The log has everything; the report carries a bounded label and line.
            CheckResult {
                check: super::keep_start(&c.label(), proto_limits::CHECK_LABEL),
                passed,
                detail: super::keep_start(&detail, proto_limits::CHECK_DETAIL),
            }
        })
        .collect()
}

use ringfence_proto::jobs as proto_limits;

fn run_one(check: &HealthCheck, opts: &ExecOptions, log: &mut String) -> Result<String, String> {
    match check {
        HealthCheck::SystemdUnit { unit } => {
            let argv = ["systemctl", "is-active", unit.as_str()].map(String::from);
            let r = run_command(&argv, &[], Duration::from_secs(30))?;
            let state = r.output.trim();
            if r.success() && state == "active" {
                Ok("active".into())
            } else {
                Err(format!("unit is {}", if state.is_empty() { "unknown" } else { state }))
            }
        }
        HealthCheck::Tcp { host, port } => {
            let addrs: Vec<_> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect();
            let mut last = format!("{host} resolves to no address");
            for a in addrs {
                match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                    Ok(_) => return Ok(format!("connected to {a}")),
                    Err(e) => last = format!("cannot connect to {a}: {e}"),
                }
            }
            Err(last)
        }
        HealthCheck::Http { url, expect_status } => {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            let status = client.get(url).send().map_err(|e| format!("GET failed: {e}"))?.status();
            let ok = match expect_status {
                Some(s) => status.as_u16() == *s,
                None => status.is_success(),
            };
            let want = expect_status.map(|s| s.to_string()).unwrap_or_else(|| "2xx".into());
            if ok {
                Ok(format!("answered {}", status.as_u16()))
            } else {
                Err(format!("answered {}, expected {want}", status.as_u16()))
            }
        }
        HealthCheck::Command { argv, timeout_secs } => {
            let timeout = Duration::from_secs(u64::from(*timeout_secs));
            let env = [("RINGFENCE_ROOT", opts.root.0.display().to_string())];
            let r = run_command(argv, &env, timeout)?;
            append_log(log, &r.output);
            let last = r.output.lines().last().unwrap_or("").trim().to_string();
            match r.code {
                Some(0) => Ok("exit 0".into()),
                _ if r.timed_out => Err(format!("killed after {timeout_secs} s")),
                Some(c) => Err(format!(
                    "exit {c}{}",
                    if last.is_empty() { String::new() } else { format!(": {last}") }
                )),
                None => Err("killed by a signal".into()),
            }
        }
    }
}

#[cfg(all(test, unix))] // the checks run /bin/sh
mod tests {
    use super::*;
    use crate::Root;

    #[test]
    fn command_tcp_and_http_checks_pass_and_fail_with_a_reason() {
        let opts = ExecOptions::for_root(Root("/some/root".into()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A two-connection HTTP server answering 503.
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            // The TCP check's connection, then the HTTP check's.
            for _ in 0..2 {
                if let Ok((mut s, _)) = listener.accept() {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            }
        });
        let sh = |s: &str, t: u32| HealthCheck::Command {
            argv: vec!["/bin/sh".into(), "-c".into(), s.into()],
            timeout_secs: t,
        };
        let checks = vec![
            sh("test \"$RINGFENCE_ROOT\" = /some/root", 5),
            sh("echo broken; exit 2", 5),
            sh("sleep 10", 1),
            HealthCheck::Tcp { host: "127.0.0.1".into(), port },
            HealthCheck::Http { url: format!("http://127.0.0.1:{port}/health"), expect_status: None },
        ];
        let mut log = String::new();
        let got: Vec<(bool, String)> =
            run_checks(&checks, &opts, &mut log).into_iter().map(|r| (r.passed, r.detail)).collect();
        server.join().unwrap();
        assert_eq!(got[0], (true, "exit 0".to_string()));
        assert_eq!(got[1], (false, "exit 2: broken".to_string()));
        assert_eq!(got[2], (false, "killed after 1 s".to_string()));
        assert!(got[3].0, "{:?}", got[3]);
        assert_eq!(got[4], (false, "answered 503, expected 2xx".to_string()));
        // Nothing listens there any more.
        let r = run_checks(&[HealthCheck::Tcp { host: "127.0.0.1".into(), port }], &opts, &mut log);
        assert!(!r[0].passed && r[0].detail.starts_with("cannot connect"), "{:?}", r[0]);
    }
}
