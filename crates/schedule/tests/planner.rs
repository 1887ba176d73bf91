//! The rollout planner and the fleet simulation: worked examples, properties under
//! proptest, and what `ringfence simulate` must show.

use jiff::{SignedDuration, Timestamp};
use ringfence_schedule::planner::{self, Device, Org, Outcome, Running, Snapshot, Update, WindowSet};
use ringfence_schedule::rings::{Gate, RingProgress, default_rings};
use ringfence_schedule::sim::{self, EventKind, Options};
use ringfence_schedule::{Blackout, Duration, Occurrence, Recurrence, Rule};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn window(tz: &str, dtstart: &str, rrule: &str, duration: &str) -> Recurrence {
    Recurrence::new(
        tz,
        dtstart.parse().unwrap(),
        Rule::parse(rrule).unwrap(),
        Duration::parse(duration).unwrap(),
        vec![],
    )
    .unwrap()
}

fn device(name: &str, ring: u8, updates: Vec<usize>) -> Device {
    Device {
        name: name.into(),
        org: 0,
        site: 0,
        ring,
        windows: 0,
        online: true,
        domain_controller: false,
        updates,
        not_before: None,
    }
}

fn update(name: &str, minutes: i64, progress: Vec<RingProgress>) -> Update {
    Update {
        name: name.into(),
        classification: "security".into(),
        install: SignedDuration::from_mins(minutes),
        reboot: SignedDuration::ZERO,
        emergency: false,
        progress,
        halt: None,
    }
}

fn org(max_concurrent: u32) -> Org {
    Org { name: "Bakery".into(), blackouts: vec![], business_hours: None, max_concurrent }
}

#[test]
fn a_worked_plan_explains_every_decision() {
    let rings = default_rings();
    // Sundays 02:00–05:00 in Chicago (UTC-6 in December).
    let sets = [WindowSet {
        windows: vec![window("America/Chicago", "2026-12-06T02:00", "FREQ=WEEKLY;BYDAY=SU", "PT3H")],
    }];
    let now = t("2026-12-08T12:00:00Z"); // a Tuesday
    let ring0 = RingProgress { entered_at: Some(t("2026-12-08T10:00:00Z")), verified: 5, failed: 0 };
    let updates = [
        update("openssl", 20, vec![]),
        update("curl", 20, vec![ring0]),
        update("bad", 20, vec![RingProgress { entered_at: Some(now), verified: 1, failed: 4 }]),
        update("toolong", 200, vec![]),
    ];
    let orgs = [org(10)];
    let devices =
        [device("hq-srv01", 0, vec![0, 3]), device("hq-ws01", 1, vec![1, 2]), device("hq-ws02", 2, vec![1])];
    let s = Snapshot {
        now,
        rings: &rings,
        gate: Gate { min_successes: 3, max_failure_rate: 0.2 },
        orgs: &orgs,
        window_sets: &sets,
        devices: &devices,
        updates: &updates,
        running: &[],
        horizon_days: 35,
    };
    let plan = planner::plan(&s);
    let why = |d: usize, u: usize| {
        let dec = plan.decisions.iter().find(|x| x.device == d && x.update == u).unwrap();
        (dec.outcome.clone(), plan.explain(&s, dec))
    };
    // Ring 0 goes first, in the next Sunday window.
    let (o, text) = why(0, 0);
    assert!(matches!(o, Outcome::Scheduled(_)));
    assert_eq!(text, "next window Sun 2026-12-13 02:00 America/Chicago (08:00 UTC)");
    // Three hours and twenty minutes never fit a three-hour window.
    let (o, text) = why(0, 3);
    assert_eq!(o, Outcome::NoWindow { needed: SignedDuration::from_mins(200) });
    assert!(text.contains("no window in the next 35 days fits 200 min"), "{text}");
    // Ring 1 waits for ring 0's validation (24 h for security), then takes the next window.
    let (o, text) = why(1, 1);
    let Outcome::Scheduled(n) = o else { panic!("{text}") };
    assert!(plan.deployments[n].start >= t("2026-12-09T10:00:00Z"));
    assert!(
        text.starts_with(
            "waiting: ring 0 validation ends Wed 2026-12-09 10:00 UTC; next window Sun 2026-12-13"
        ),
        "{text}"
    );
    // A failing gate halts.
    let (o, text) = why(1, 2);
    assert_eq!(o, Outcome::Halted);
    assert!(text.contains("ring 0 (internal) gate failed: 80%"), "{text}");
    // Ring 2 waits on ring 1, which has not started: no time is known.
    let (o, text) = why(2, 1);
    assert_eq!(o, Outcome::Waiting);
    // (Ring 1 has one device taking curl: its gate needs that one, not the sample of 3.)
    assert_eq!(text, "waiting: ring 1 (canary) has 0 of 1 verified installs");
}

#[test]
fn windows_blackouts_business_hours_and_concurrency_push_a_deployment_later() {
    let rings = default_rings();
    // Daily 22:00–02:00 in London, crossing midnight.
    let sets =
        [WindowSet { windows: vec![window("Europe/London", "2026-12-01T22:00", "FREQ=DAILY", "PT4H")] }];
    let now = t("2026-12-07T12:00:00Z");
    let mut o = org(1);
    o.blackouts = vec![Blackout { start: t("2026-12-07T21:00:00Z"), end: t("2026-12-08T12:00:00Z") }];
    let orgs = [o];
    let updates = [update("openssl", 90, vec![])];
    let devices = [device("a", 0, vec![0]), device("b", 0, vec![0]), device("c", 0, vec![0])];
    let s = Snapshot {
        now,
        rings: &rings,
        gate: Gate { min_successes: 1, max_failure_rate: 0.5 },
        orgs: &orgs,
        window_sets: &sets,
        devices: &devices,
        updates: &updates,
        running: &[],
        horizon_days: 10,
    };
    let plan = planner::plan(&s);
    let starts: Vec<(Timestamp, Timestamp)> = plan.deployments.iter().map(|d| (d.start, d.end)).collect();
    // The blackout takes the night of the 7th; one device at a time; 90 minutes fit twice in
    // four hours, so the third device goes the night after.
    assert_eq!(
        starts,
        vec![
            (t("2026-12-08T22:00:00Z"), t("2026-12-08T23:30:00Z")),
            (t("2026-12-08T23:30:00Z"), t("2026-12-09T01:00:00Z")),
            (t("2026-12-09T22:00:00Z"), t("2026-12-09T23:30:00Z")),
        ]
    );
    let dec = &plan.decisions[2];
    assert!(plan.explain(&s, dec).contains("concurrency"), "{}", plan.explain(&s, dec));
    let dec = &plan.decisions[0];
    assert!(plan.explain(&s, dec).contains("blackout"), "{}", plan.explain(&s, dec));
}

#[test]
fn an_offline_device_is_not_dispatched_into_the_open_window() {
    let rings = default_rings();
    let sets =
        [WindowSet { windows: vec![window("Asia/Kolkata", "2026-12-01T01:00", "FREQ=DAILY", "PT4H")] }];
    let now = t("2026-12-07T20:00:00Z"); // 01:30 in Kolkata: the window is open
    let orgs = [org(10)];
    let updates = [update("openssl", 30, vec![])];
    let mut devices = [device("a", 0, vec![0]), device("b", 0, vec![0])];
    devices[1].online = false;
    let s = Snapshot {
        now,
        rings: &rings,
        gate: Gate { min_successes: 1, max_failure_rate: 0.5 },
        orgs: &orgs,
        window_sets: &sets,
        devices: &devices,
        updates: &updates,
        running: &[],
        horizon_days: 10,
    };
    let plan = planner::plan(&s);
    assert_eq!(plan.deployments[0].start, now, "an online device goes in the open window");
    assert_eq!(plan.deployments[1].start, t("2026-12-08T19:30:00Z"), "the offline one in the next");
    assert!(plan.explain(&s, &plan.decisions[1]).contains("offline"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Case {
        hour: u8,
        hours: u8,
        blackout: Option<(i64, i64)>,
        business: bool,
        max_concurrent: u32,
        devices: Vec<(u8, bool, bool, u8)>, // ring, online, domain controller, site
        updates: Vec<(i64, bool, u8, u32)>, // minutes, emergency, rings entered, failures
        now_offset: i64,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            0u8..24,
            1u8..6,
            proptest::option::of((0i64..200, 1i64..72)),
            any::<bool>(),
            1u32..4,
            proptest::collection::vec((0u8..4, any::<bool>(), any::<bool>(), 0u8..2), 1..12),
            proptest::collection::vec((5i64..200, any::<bool>(), 0u8..4, 0u32..3), 1..4),
            0i64..(24 * 60),
        )
            .prop_map(
                |(hour, hours, blackout, business, max_concurrent, devices, updates, now_offset)| Case {
                    hour,
                    hours,
                    blackout,
                    business,
                    max_concurrent,
                    devices,
                    updates,
                    now_offset,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn plans_keep_windows_blackouts_rings_limits_and_offline_devices(c in case()) {
            let rings = default_rings();
            let base = t("2026-12-07T00:00:00Z");
            let at = |h: i64| base.checked_add(SignedDuration::from_hours(h)).unwrap();
            let now = base.checked_add(SignedDuration::from_mins(c.now_offset)).unwrap();
            let w = window("America/New_York", &format!("2026-12-01T{:02}:00", c.hour), "FREQ=DAILY", &format!("PT{}H", c.hours));
            let sets = [WindowSet { windows: vec![w.clone()] }];
            let hours = window("America/New_York", "2026-12-01T08:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "PT10H");
            let orgs = [Org {
                name: "o".into(),
                blackouts: c.blackout.iter().map(|(s, len)| Blackout { start: at(*s), end: at(s + len) }).collect(),
                business_hours: c.business.then(|| hours.clone()),
                max_concurrent: c.max_concurrent,
            }];
            let updates: Vec<Update> = c.updates.iter().enumerate().map(|(i, (mins, emergency, entered, failed))| {
                let progress = (0..4).map(|r| if r < *entered {
                    RingProgress { entered_at: Some(at(-30 + i64::from(r) * 10)), verified: 5, failed: if r == 0 { *failed } else { 0 } }
                } else { RingProgress::default() }).collect();
                Update { emergency: *emergency, ..update(&format!("u{i}"), *mins, progress) }
            }).collect();
            let devices: Vec<Device> = c.devices.iter().enumerate().map(|(i, (ring, online, dc, site))| Device {
                online: *online,
                domain_controller: *dc,
                site: usize::from(*site),
                ..device(&format!("d{i}"), *ring, (0..updates.len()).collect())
            }).collect();
            let running = [Running { device: 0, updates: vec![0], start: now, end: now.checked_add(SignedDuration::from_mins(30)).unwrap() }];
            let s = Snapshot {
                now,
                rings: &rings,
                gate: Gate { min_successes: 3, max_failure_rate: 0.3 },
                orgs: &orgs,
                window_sets: &sets,
                devices: &devices,
                updates: &updates,
                running: &running[..usize::from(devices[0].online)],
                horizon_days: 20,
            };
            let plan = planner::plan(&s);
            let occurrences = w.occurrences_after(at(-48), 40);
            let business: Vec<Occurrence> = hours.occurrences_after(at(-48), 40);
            for d in &plan.deployments {
                // Inside one window occurrence, wholly.
                prop_assert!(occurrences.iter().any(|o| o.start <= d.start && d.end <= o.end), "{d:?}");
                prop_assert!(d.start >= now);
                // Never across a blackout; never in business hours unless every update is an emergency.
                for b in &orgs[0].blackouts {
                    prop_assert!(d.end <= b.start || d.start >= b.end, "{d:?} {b:?}");
                }
                if c.business && !d.updates.iter().all(|u| updates[*u].emergency) {
                    for b in &business {
                        prop_assert!(d.end <= b.start || d.start >= b.end, "{d:?} {b:?}");
                    }
                }
                // An offline device is never dispatched into the window open now.
                let dev = &devices[d.device];
                if !dev.online {
                    prop_assert!(d.window.start > now, "{d:?}");
                }
                // Ring order: every ring before the device's has passed its gate (on all of a
                // ring smaller than the sample), or has no device taking the update.
                for u in &d.updates {
                    for (r, ring) in rings.iter().enumerate().take(usize::from(dev.ring)) {
                        let p = updates[*u].progress[r];
                        let size = p.verified
                            + p.failed
                            + devices.iter().filter(|x| usize::from(x.ring) == r && x.updates.contains(u)).count() as u32
                            + s.running.iter().filter(|x| usize::from(devices[x.device].ring) == r && x.updates.contains(u)).count() as u32;
                        if size == 0 {
                            continue;
                        }
                        prop_assert!(p.verified >= size.min(3) && p.entered_at.is_some(), "{d:?}");
                        prop_assert!(f64::from(p.failed) / f64::from(p.failed + p.verified) < 0.3);
                        if !updates[*u].emergency {
                            let opens = p.entered_at.unwrap().checked_add(ring.validation_for("security")).unwrap();
                            prop_assert!(d.start >= opens, "{d:?} before ring {r} validation ends {opens}");
                        }
                    }
                }
            }
            // Concurrency: at any deployment's start, at most the limit run in the organization,
            // and at most one domain controller per site.
            let mut all: Vec<(Timestamp, Timestamp, usize)> = plan.deployments.iter().map(|d| (d.start, d.end, d.device)).collect();
            all.extend(s.running.iter().map(|r| (r.start, r.end, r.device)));
            for (start, _, _) in &all {
                let live: Vec<&(Timestamp, Timestamp, usize)> = all.iter().filter(|(s2, e2, _)| s2 <= start && e2 > start).collect();
                prop_assert!(live.len() as u32 <= c.max_concurrent, "{live:?}");
                for site in 0..2 {
                    let dcs = live.iter().filter(|(_, _, d)| devices[*d].domain_controller && devices[*d].site == site).count();
                    prop_assert!(dcs <= 1);
                }
            }
            // One deployment at a time per device.
            for (i, a) in plan.deployments.iter().enumerate() {
                for b in &plan.deployments[i + 1..] {
                    prop_assert!(a.device != b.device || a.end <= b.start || b.end <= a.start);
                }
            }
        }
    }
}

fn options(devices: usize, seed: u64) -> Options {
    Options { devices, days: 30, seed, offline_rate: 0.1, ..Options::default() }
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let a = sim::run(&options(300, 7)).unwrap();
    let b = sim::run(&options(300, 7)).unwrap();
    let c = sim::run(&options(300, 8)).unwrap();
    assert_eq!(a.timeline(), b.timeline());
    assert_eq!(a.summary(), b.summary());
    assert_ne!(a.timeline(), c.timeline());
}

#[test]
fn simulated_rings_wait_for_the_validation_of_the_ring_before() {
    let r = sim::run(&options(600, 3)).unwrap();
    let f = &r.fleet;
    let mut checked = 0;
    for d in &r.deployments {
        for &u in &d.updates {
            if f.updates[u].emergency {
                continue;
            }
            for ring in 0..usize::from(d.ring) {
                let from = r.validated_from[u][ring].expect("the ring before was validated");
                let opens =
                    from.checked_add(f.rings[ring].validation_for(&f.updates[u].classification)).unwrap();
                assert!(
                    d.start >= opens,
                    "{} in ring {} at {} before ring {ring} validation ends {opens}",
                    f.updates[u].name,
                    d.ring,
                    d.start
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    // Ring 3 got the two good non-emergency updates.
    assert!(r.ring_entries[0][3].is_some() && r.ring_entries[1][3].is_some());
}

#[test]
fn a_failing_update_halts_at_the_canary_ring_for_every_client() {
    let r = sim::run(&options(800, 5)).unwrap();
    let bad = r.fleet.updates.iter().position(|u| u.name.starts_with("acme-agent")).unwrap();
    let halted = r.halted[bad].expect("the bad update is halted");
    assert!(r.fleet.updates[bad].halt.as_deref().unwrap().contains("ring 1 (canary) gate failed"));
    let after: Vec<_> =
        r.deployments.iter().filter(|d| d.updates.contains(&bad) && d.start > halted).collect();
    assert!(after.is_empty(), "deployed after the halt: {after:?}");
    assert!(r.ring_entries[bad][2].is_none() && r.ring_entries[bad][3].is_none());
    // The canary had it in more than one client before the halt; none got it after.
    let orgs: std::collections::BTreeSet<usize> = r
        .deployments
        .iter()
        .filter(|d| d.updates.contains(&bad) && d.ring == 1)
        .map(|d| r.fleet.devices[d.device].org)
        .collect();
    assert!(!orgs.is_empty());
    assert!(r.events.iter().any(|e| e.kind == EventKind::Halt && e.text.contains("every client")));
}

#[test]
fn simulated_deployments_stay_in_windows_and_out_of_blackouts() {
    let r = sim::run(&options(800, 11)).unwrap();
    let f = &r.fleet;
    let mut in_blackout_orgs = 0;
    for d in &r.deployments {
        let dev = &f.devices[d.device];
        let windows = &f.window_sets[dev.windows].windows;
        let from = d.start.checked_sub(SignedDuration::from_hours(30)).unwrap();
        let inside = windows
            .iter()
            .any(|w| w.occurrences_after(from, 4).iter().any(|o| o.start <= d.start && d.end <= o.end));
        assert!(inside, "{} {}–{} outside its windows", dev.name, d.start, d.end);
        for b in &f.orgs[dev.org].blackouts {
            assert!(d.end <= b.start || d.start >= b.end, "{} in a blackout", dev.name);
            in_blackout_orgs += 1;
        }
        if let Some(h) = &f.orgs[dev.org].business_hours {
            let emergency = d.updates.iter().all(|u| f.updates[*u].emergency);
            if !emergency {
                for o in h.occurrences_after(from, 4) {
                    assert!(d.end <= o.start || d.start >= o.end, "{} in business hours", dev.name);
                }
            }
        }
    }
    assert!(in_blackout_orgs > 0, "the fleet has organizations with blackouts");
}

#[test]
fn a_device_offline_in_its_window_gets_its_next_window() {
    let r = sim::run(&options(400, 13)).unwrap();
    assert!(!r.missed.is_empty());
    let mut rescheduled = 0;
    for m in &r.missed {
        // Nothing started in the missed window, and the next deployment is in a later one.
        assert!(!r.deployments.iter().any(|d| d.device == m.device && d.window == m.window));
        if let Some(next) = r
            .deployments
            .iter()
            .filter(|d| d.device == m.device && d.start >= m.window.start)
            .min_by_key(|d| d.start)
        {
            assert!(next.start >= m.window.end, "{next:?} after missing {:?}", m.window);
            rescheduled += 1;
        }
    }
    assert!(rescheduled > 0);
}

#[test]
fn simulate_refuses_bad_options_by_name() {
    let e = sim::run(&Options { devices: 2, ..Options::default() }).unwrap_err();
    assert!(e.contains("--devices"), "{e}");
    let e = sim::run(&Options { offline_rate: 1.5, ..Options::default() }).unwrap_err();
    assert!(e.contains("--offline-rate"), "{e}");
    let e = sim::run(&Options { days: 0, ..Options::default() }).unwrap_err();
    assert!(e.contains("--days"), "{e}");
}

#[test]
fn a_gate_judges_failures_on_its_sample_unless_they_already_sink_it() {
    use ringfence_schedule::rings::{GateVerdict, judge};
    let gate = Gate { min_successes: 10, max_failure_rate: 0.25 };
    let p = |verified, failed| RingProgress { entered_at: None, verified, failed };
    // One early failure of a large ring: 1 of 11 even at best, under the limit — wait.
    assert_eq!(judge(&gate, &p(0, 1)), GateVerdict::Pending { verified: 0, needed: 10 });
    // Four failures sink it whatever follows: 4 of 14 is over 25%.
    assert!(matches!(judge(&gate, &p(1, 4)), GateVerdict::Fail { .. }));
    // On the full sample the rate decides.
    assert!(matches!(judge(&gate, &p(10, 4)), GateVerdict::Fail { .. }));
    assert_eq!(judge(&gate, &p(10, 3)), GateVerdict::Pass);
}

#[test]
fn a_small_ring_is_judged_on_all_its_devices_and_an_empty_ring_is_passed_over() {
    use ringfence_schedule::rings::{Entry, Rollout};
    let rings = default_rings();
    let gate = Gate { min_successes: 10, max_failure_rate: 0.25 };
    assert_eq!(gate.sized(4).min_successes, 4);
    assert_eq!(gate.sized(40).min_successes, 10);
    assert_eq!(gate.sized(0), gate);
    let now = t("2026-12-10T00:00:00Z");
    let done = RingProgress { entered_at: Some(t("2026-12-07T00:00:00Z")), verified: 4, failed: 0 };
    let rollout = |sizes: &'static [u32], progress: Vec<RingProgress>| {
        let progress: &'static [RingProgress] = Box::leak(progress.into_boxed_slice());
        Rollout {
            rings: &[],
            gate,
            progress,
            classification: "security",
            partner_halt: None,
            emergency: false,
            ring_sizes: sizes,
        }
    };
    // Ring 0 has 4 devices, all verified: ring 1 may start although the sample is 10.
    let r = Rollout { rings: &rings, ..rollout(&[4, 30], vec![done]) };
    assert!(matches!(r.may_enter(1, now), Entry::Allowed { .. }), "{:?}", r.may_enter(1, now));
    // Without sizes the sample of 10 holds.
    let r = Rollout { rings: &rings, ..rollout(&[], vec![done]) };
    assert!(matches!(r.may_enter(1, now), Entry::Waiting { until: None, .. }));
    // Ring 1 has no device taking the update: ring 2 waits on ring 0 only.
    let r = Rollout { rings: &rings, ..rollout(&[4, 0, 30], vec![done]) };
    assert!(matches!(r.may_enter(2, now), Entry::Allowed { .. }), "{:?}", r.may_enter(2, now));
}
