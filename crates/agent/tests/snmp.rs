//! The collector's SNMP client against a real net-snmp snmpd (skipped with a message where
//! snmpd is not installed, a failure in CI), against a UDP server that answers nonsense, and
//! the collector round against a small HTTP server that leases signed jobs.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use ringfence_agent::enroll::AgentConfig;
use ringfence_agent::snmp::{poll, poll_many, sweep};
use ringfence_agent_testkit::snmp::{
    Profile, SimulatedFleet, Snmpd, free_udp_port, v2c_credential, v3_credential,
};
use ringfence_proto::collector::{
    CollectorJob, CollectorLease, CollectorRefusal, CollectorReport, CollectorWork, CredentialRef,
    PollTarget, SnmpCredential, TargetOutcome, sign,
};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn start(profile: &Profile, bind: &[Ipv4Addr]) -> Option<Snmpd> {
    Snmpd::start(profile, bind).unwrap()
}

fn ok(observation: ringfence_appliance::Observation) -> TargetOutcome {
    TargetOutcome::Ok { credential_id: String::new(), observation }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn every_profile_is_observed_exactly_over_v2c_and_v3_authpriv() {
    let rt = rt();
    for (name, profile) in Profile::all() {
        let Some(snmpd) = start(&profile, &[]) else { return };
        for cred in [v2c_credential(), v3_credential()] {
            let got = rt.block_on(poll(snmpd.addr(), &cred, SECOND, 1));
            assert_eq!(
                got,
                ok(profile.observation()),
                "{name} over {}\nsnmpd log:\n{}",
                cred.version(),
                snmpd.log()
            );
        }
    }
}

#[test]
fn an_upgraded_appliance_is_seen_with_its_new_firmware() {
    let rt = rt();
    let Some(snmpd) = start(&Profile::fortigate_100f(), &[]) else { return };
    let before = rt.block_on(poll(snmpd.addr(), &v3_credential(), SECOND, 1));
    assert_eq!(before, ok(Profile::fortigate_100f().observation()));
    snmpd.set_profile(&Profile::fortigate_100f_upgraded()).unwrap();
    let after = rt.block_on(poll(snmpd.addr(), &v3_credential(), SECOND, 1));
    let TargetOutcome::Ok { observation, .. } = after else { panic!("{after:?}") };
    assert_eq!(observation.entities[0].software_rev, "FortiGate-100F v7.0.14,build0601,240208 (GA.F)");
}

#[test]
fn a_wrong_community_times_out_within_the_timeout_and_its_retries() {
    let rt = rt();
    let Some(snmpd) = start(&Profile::pa_3220(), &[]) else { return };
    let wrong = SnmpCredential::V2c { community: "not-the-community".into() };
    let t = Instant::now();
    let got = rt.block_on(poll(snmpd.addr(), &wrong, Duration::from_millis(300), 1));
    let took = t.elapsed();
    assert_eq!(got, TargetOutcome::Timeout);
    // Two sends of 300 ms each, and nothing else.
    assert!(took >= Duration::from_millis(600) && took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn snmpv3_refusals_are_auth_failures_that_name_the_reason_and_not_the_secret() {
    let rt = rt();
    let Some(snmpd) = start(&Profile::catalyst_9300(), &[]) else { return };
    let SnmpCredential::V3 { user, auth_protocol, priv_protocol, priv_password, .. } = v3_credential() else {
        unreachable!()
    };
    let wrong_password = SnmpCredential::V3 {
        user: user.clone(),
        auth_protocol,
        auth_password: "not-the-password".into(),
        priv_protocol,
        priv_password: priv_password.clone(),
    };
    let unknown_user = SnmpCredential::V3 {
        user: "nobody".into(),
        auth_protocol,
        auth_password: "auth-secret-1".into(),
        priv_protocol,
        priv_password,
    };
    for (cred, says) in [(wrong_password, "usmStatsWrongDigests"), (unknown_user, "usmStatsUnknownUserNames")]
    {
        let got = rt.block_on(poll(snmpd.addr(), &cred, SECOND, 0));
        let TargetOutcome::AuthFailed { detail } = &got else { panic!("{got:?}") };
        assert!(detail.contains(says), "{detail}");
        assert!(!detail.contains("secret") && !detail.contains("not-the-password"), "{detail}");
    }
}

#[test]
fn a_closed_port_times_out_even_on_loopback() {
    // Linux answers a datagram to a closed loopback port with ICMP port unreachable, but the
    // SNMP library's UDP endpoint treats the refusal as transient and keeps waiting: a closed
    // port is a timeout, as a firewall that drops the datagram would be.
    let rt = rt();
    let port = free_udp_port(&[Ipv4Addr::LOCALHOST]).unwrap();
    let t = Instant::now();
    let got = rt.block_on(poll(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        &v2c_credential(),
        Duration::from_millis(300),
        1,
    ));
    assert_eq!(got, TargetOutcome::Timeout);
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
}

/// How the nonsense server answers a request.
#[derive(Clone, Copy, Debug)]
enum Nonsense {
    Garbage,
    /// snmpd's real answer, cut in half.
    Truncated,
    /// snmpd's real answer for another request id.
    WrongRequestId,
    /// snmpd's real answer followed by a copy of itself: the library's compatible decoding
    /// takes the first message and records the rest as an anomaly.
    Trailing,
}

/// Offset of the request id's last octet in a v2c message (SEQUENCE { version, community,
/// PDU { request-id, … } }), by walking the BER headers.
fn request_id_last_octet(msg: &[u8]) -> usize {
    fn header(msg: &[u8], at: usize) -> (usize, usize) {
        let first = msg[at + 1] as usize;
        if first < 0x80 {
            (at + 2, first)
        } else {
            let n = first & 0x7f;
            let len = msg[at + 2..at + 2 + n].iter().fold(0usize, |a, b| a << 8 | *b as usize);
            (at + 2 + n, len)
        }
    }
    let (content, _) = header(msg, 0);
    let (v, vlen) = header(msg, content);
    let (c, clen) = header(msg, v + vlen);
    let (pdu, _) = header(msg, c + clen);
    let (rid, rlen) = header(msg, pdu);
    rid + rlen - 1
}

/// A UDP server in front of snmpd that spoils every answer one way.
fn nonsense_server(how: Nonsense, upstream: SocketAddr) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        up.set_read_timeout(Some(SECOND)).unwrap();
        let mut buf = [0u8; 65_536];
        let mut ubuf = [0u8; 65_536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let answer: Vec<u8> = match how {
                Nonsense::Garbage => (0..n).map(|i| (i * 31 + 7) as u8).collect(),
                _ => {
                    up.send_to(&buf[..n], upstream).unwrap();
                    let Ok((m, _)) = up.recv_from(&mut ubuf) else { continue };
                    let mut real = ubuf[..m].to_vec();
                    match how {
                        Nonsense::Truncated => real.truncate(m / 2),
                        Nonsense::WrongRequestId => {
                            let at = request_id_last_octet(&real);
                            real[at] ^= 0x55;
                        }
                        Nonsense::Trailing => real.extend_from_slice(&ubuf[..m]),
                        Nonsense::Garbage => unreachable!(),
                    }
                    real
                }
            };
            let _ = sock.send_to(&answer, from);
        }
    });
    addr
}

#[test]
fn nonsense_answers_are_malformed_or_time_out_and_never_panic() {
    let rt = rt();
    let Some(snmpd) = start(&Profile::fortigate_100f(), &[]) else { return };
    for how in [Nonsense::Garbage, Nonsense::Truncated, Nonsense::WrongRequestId, Nonsense::Trailing] {
        let addr = nonsense_server(how, snmpd.addr());
        let t = Instant::now();
        let got = rt.block_on(poll(addr, &v2c_credential(), Duration::from_millis(300), 1));
        eprintln!("{how:?}: {} after {:?}", got.name(), t.elapsed());
        match how {
            Nonsense::Trailing => assert_eq!(got, ok(Profile::fortigate_100f().observation())),
            _ => assert!(
                matches!(got, TargetOutcome::Malformed { .. } | TargetOutcome::Timeout),
                "{how:?}: {got:?}"
            ),
        }
        assert!(t.elapsed() < Duration::from_secs(3), "{how:?}");
    }
}

/// Silent UDP listeners that record when each datagram arrived and where.
type Arrivals = Arc<Mutex<Vec<(Ipv4Addr, Instant)>>>;

fn silent_listeners(addresses: &[Ipv4Addr], port: u16) -> Arrivals {
    let arrivals: Arrivals = Arc::default();
    for a in addresses {
        let Ok(sock) = UdpSocket::bind((*a, port)) else {
            panic!("cannot bind {a}:{port}");
        };
        let (arrivals, a) = (arrivals.clone(), *a);
        std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while sock.recv_from(&mut buf).is_ok() {
                arrivals.lock().unwrap().push((a, Instant::now()));
            }
        });
    }
    arrivals
}

fn job(work: CollectorWork, credentials: Vec<CredentialRef>, timeout_ms: u32, retries: u8) -> CollectorJob {
    let now = jiff::Timestamp::now();
    CollectorJob {
        id: "job-1".into(),
        collector_device_id: "dev-collector".into(),
        credentials,
        work,
        timeout_ms,
        retries,
        concurrency: 16,
        issued_at: now,
        expires_at: now + jiff::SignedDuration::from_mins(10),
    }
}

#[test]
fn a_sweep_finds_exactly_the_answering_addresses_inside_its_range_at_its_rate() {
    let rt = rt();
    let addr = |n: u8| Ipv4Addr::new(127, 0, 0, n);
    let all: Vec<Ipv4Addr> = (0..32).map(addr).collect();
    let port = free_udp_port(&all).unwrap();
    let snmpd_at = [addr(2), addr(3)];
    let Some(snmpd) = Snmpd::start_on_port(&Profile::pa_3220(), &snmpd_at, port).unwrap() else { return };
    // Everything else of 127.0.0.0/27 listens and says nothing: .1 and .4–.14 are in the
    // range, .0 and .15 (the /28's network and broadcast) and .16–.31 are not.
    let silent: Vec<Ipv4Addr> = all.iter().copied().filter(|a| !snmpd_at.contains(a)).collect();
    let arrivals = silent_listeners(&silent, port);
    let rate = 20;
    let credentials = vec![
        CredentialRef { id: "wrong".into(), credential: SnmpCredential::V2c { community: "nope".into() } },
        CredentialRef { id: "right".into(), credential: v2c_credential() },
    ];
    let work = CollectorWork::Discover {
        scan_id: "scan-1".into(),
        range: "127.0.0.0/28".into(),
        port,
        rate_per_sec: rate,
    };
    let job = job(work, credentials, 500, 0);
    job.check().unwrap();
    let t = Instant::now();
    let (results, summary) = rt.block_on(sweep(&job));
    let took = t.elapsed();

    let found: Vec<(&str, &str)> = results
        .iter()
        .map(|r| match &r.outcome {
            TargetOutcome::Ok { credential_id, observation } => {
                assert_eq!(observation, &Profile::pa_3220().observation());
                assert_eq!(r.appliance_id, None);
                (r.address.as_str(), credential_id.as_str())
            }
            other => panic!("{}: {other:?}", r.address),
        })
        .collect();
    assert_eq!(found, vec![("127.0.0.2", "right"), ("127.0.0.3", "right")], "{}", snmpd.log());
    assert_eq!((summary.probed, summary.answered), (14, 2));

    let arrivals = arrivals.lock().unwrap().clone();
    let outside: Vec<_> = arrivals.iter().filter(|(a, _)| !(1..=14).contains(&a.octets()[3])).collect();
    assert!(outside.is_empty(), "probed outside the range: {outside:?}");
    // Each silent address in the range heard both credentials once (no retries).
    assert_eq!(arrivals.len(), 12 * 2, "{arrivals:?}");
    // Sends are paced: the recorded ones span at least (n - 1) intervals, and the whole
    // sweep (these plus snmpd's six: two wrong-community probes and two polls of two
    // requests) takes at least (all - 1) intervals.
    let mut at: Vec<Instant> = arrivals.iter().map(|(_, t)| *t).collect();
    at.sort();
    let span = at[at.len() - 1] - at[0];
    let interval = SECOND / rate;
    let slack = Duration::from_millis(20);
    assert!(span + slack >= interval * (at.len() as u32 - 1), "{span:?} for {} sends", at.len());
    assert!(took + slack >= interval * (24 + 6 - 1), "{took:?}");
    eprintln!("sweep of 14 addresses, 30 sends at {rate}/s: {took:?}");
}

#[test]
fn a_fleet_of_simulated_appliances_is_polled_in_order() {
    let n: usize = std::env::var("RINGFENCE_FLEET_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let fleet = SimulatedFleet::start(n, &Profile::fortigate_100f()).unwrap();
    let job = fleet.poll_job(64, 2_000);
    job.check().unwrap();
    let t = Instant::now();
    let report = ringfence_agent::collector::run_job(&job).unwrap();
    eprintln!("polled {n} simulated appliances (concurrency 64) in {:?}", t.elapsed());
    assert_eq!(report.results.len(), n);
    for (i, r) in report.results.iter().enumerate() {
        assert_eq!(r.appliance_id.as_deref(), Some(format!("appliance-{i}").as_str()));
        assert_eq!(r.port, fleet.addresses()[i].port());
        assert_eq!(
            r.outcome,
            TargetOutcome::Ok {
                credential_id: "cred-1".into(),
                observation: Profile::fortigate_100f().observation()
            }
        );
    }
}

#[test]
fn poll_many_reports_every_target_in_order_with_its_own_outcome() {
    let rt = rt();
    let Some(snmpd) = start(&Profile::catalyst_9300(), &[]) else { return };
    let closed = free_udp_port(&[Ipv4Addr::LOCALHOST]).unwrap();
    let target = |id: &str, port: u16, cred: &str| PollTarget {
        appliance_id: id.into(),
        address: "127.0.0.1".into(),
        port,
        credential_id: cred.into(),
    };
    let credentials = vec![
        CredentialRef { id: "v3".into(), credential: v3_credential() },
        CredentialRef {
            id: "v2c-wrong".into(),
            credential: SnmpCredential::V2c { community: "nope".into() },
        },
    ];
    let work = CollectorWork::Poll {
        targets: vec![
            target("a", snmpd.port, "v3"),
            target("b", snmpd.port, "v2c-wrong"),
            target("c", closed, "v3"),
            target("d", snmpd.port, "v3"),
        ],
    };
    let job = job(work, credentials, 1000, 0);
    job.check().unwrap();
    let results = rt.block_on(poll_many(&job));
    let ids: Vec<_> = results.iter().map(|r| (r.appliance_id.clone().unwrap(), r.outcome.name())).collect();
    assert_eq!(
        ids,
        vec![
            ("a".to_string(), "ok"),
            ("b".to_string(), "timeout"),
            ("c".to_string(), "timeout"),
            ("d".to_string(), "ok")
        ]
    );
    let TargetOutcome::Ok { credential_id, .. } = &results[0].outcome else { unreachable!() };
    assert_eq!(credential_id, "v3");
}

/// A minimal HTTP server for the collector round: leases `lease`, records reports.
struct Server {
    url: String,
    reports: Arc<Mutex<Vec<CollectorReport>>>,
    bearer: Arc<Mutex<Vec<String>>>,
}

fn server(lease: CollectorLease) -> Server {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reports: Arc<Mutex<Vec<CollectorReport>>> = Arc::default();
    let bearer: Arc<Mutex<Vec<String>>> = Arc::default();
    let (r2, b2) = (reports.clone(), bearer.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if let Some(v) =
                    h.strip_prefix("authorization: Bearer ").or(h.strip_prefix("Authorization: Bearer "))
                {
                    b2.lock().unwrap().push(v.to_string());
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let answer = match path.as_str() {
                "/api/agent/v1/collector/jobs" => serde_json::to_string(&lease).unwrap(),
                "/api/agent/v1/collector/report" => {
                    let report: CollectorReport = serde_json::from_slice(&body).unwrap();
                    let n = report.results.len();
                    r2.lock().unwrap().push(report);
                    format!("{{\"recorded\":{n}}}")
                }
                _ => String::from("{}"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Server { url, reports, bearer }
}

#[test]
fn a_collector_round_runs_the_jobs_signed_for_it_and_refuses_the_others_unrun() {
    let Some(snmpd) = start(&Profile::fortigate_100f(), &[]) else { return };
    let server_secret = "07".repeat(32);
    let other_secret = "09".repeat(32);
    let public = ringfence_proto::jobs::public_key(&server_secret).unwrap();
    // The refused jobs would poll a listener that records what it hears.
    let decoy_port = free_udp_port(&[Ipv4Addr::LOCALHOST]).unwrap();
    let decoy = silent_listeners(&[Ipv4Addr::LOCALHOST], decoy_port);
    let poll_of = |id: &str, port: u16, device: &str| {
        let mut j = job(
            CollectorWork::Poll {
                targets: vec![PollTarget {
                    appliance_id: "fw-1".into(),
                    address: "127.0.0.1".into(),
                    port,
                    credential_id: "cred-1".into(),
                }],
            },
            vec![CredentialRef { id: "cred-1".into(), credential: v3_credential() }],
            500,
            1,
        );
        j.id = id.into();
        j.collector_device_id = device.into();
        j
    };
    let good = sign(&poll_of("job-good", snmpd.port, "dev-collector"), &server_secret).unwrap();
    let forged = sign(&poll_of("job-forged", decoy_port, "dev-collector"), &other_secret).unwrap();
    let elsewhere = sign(&poll_of("job-elsewhere", decoy_port, "dev-other"), &server_secret).unwrap();
    let server = server(CollectorLease { jobs: vec![good, forged, elsewhere] });
    let config = AgentConfig {
        server: server.url.clone(),
        device_id: "dev-collector".into(),
        credential: "rfa_test".into(),
        server_public_key: public,
    };
    let round = ringfence_agent::collector::round(&config).unwrap();
    use ringfence_agent::collector::JobRun;
    assert_eq!(
        round.jobs,
        vec![
            JobRun::Reported { job_id: "job-good".into(), results: 1, recorded: 1 },
            JobRun::Refused(CollectorRefusal::BadSignature),
            JobRun::Refused(CollectorRefusal::OtherDevice("dev-other".into())),
        ]
    );
    let reports = server.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].job_id, "job-good");
    assert_eq!(
        reports[0].results[0].outcome,
        TargetOutcome::Ok {
            credential_id: "cred-1".into(),
            observation: Profile::fortigate_100f().observation()
        }
    );
    assert_eq!(reports[0].results[0].appliance_id.as_deref(), Some("fw-1"));
    assert!(server.bearer.lock().unwrap().iter().all(|b| b == "rfa_test"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(decoy.lock().unwrap().is_empty(), "a refused job was run");
}
