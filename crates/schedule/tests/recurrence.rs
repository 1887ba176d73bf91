//! Window expansion across DST transitions, month ends and rule parts. Expected instants
//! were worked out by hand from each zone's transition rules (and agree with Python's
//! zoneinfo, fold=0, which follows RFC 5545 §3.3.5 for gaps and repeated times).

use jiff::Timestamp;
use ringfence_schedule::{Duration, Recurrence, RecurrenceError, Rule};

fn expand(tz: &str, dtstart: &str, rrule: &str, duration: &str, after: &str, n: usize) -> Vec<String> {
    expand_ex(tz, dtstart, rrule, duration, after, n, &[])
}

fn expand_ex(
    tz: &str,
    dtstart: &str,
    rrule: &str,
    duration: &str,
    after: &str,
    n: usize,
    exdates: &[&str],
) -> Vec<String> {
    let w = Recurrence::new(
        tz,
        dtstart.parse().unwrap(),
        Rule::parse(rrule).unwrap(),
        Duration::parse(duration).unwrap(),
        exdates.iter().map(|e| e.parse().unwrap()).collect(),
    )
    .unwrap();
    w.occurrences_after(after.parse::<Timestamp>().unwrap(), n).iter().map(|o| o.to_line()).collect()
}

#[test]
fn new_york_spring_gap_takes_the_offset_from_before_it() {
    // 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that night and means
    // 02:30 EST (07:30Z); the nights around it keep 02:30 local.
    assert_eq!(
        expand("America/New_York", "2026-03-01T02:30", "FREQ=DAILY", "PT3H", "2026-03-07T00:00:00Z", 3),
        [
            "2026-03-07T07:30:00Z 2026-03-07T10:30:00Z",
            "2026-03-08T07:30:00Z 2026-03-08T10:30:00Z",
            "2026-03-09T06:30:00Z 2026-03-09T09:30:00Z",
        ]
    );
}

#[test]
fn new_york_autumn_repeat_means_the_first_one() {
    // 2026-11-01 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST): the first counts.
    assert_eq!(
        expand("America/New_York", "2026-10-01T01:30", "FREQ=DAILY", "PT1H", "2026-10-31T00:00:00Z", 3),
        [
            "2026-10-31T05:30:00Z 2026-10-31T06:30:00Z",
            "2026-11-01T05:30:00Z 2026-11-01T06:30:00Z",
            "2026-11-02T06:30:00Z 2026-11-02T07:30:00Z",
        ]
    );
}

#[test]
fn london_across_both_transitions() {
    // 2026-03-29 01:00 GMT → 02:00 BST: 01:30 is in the gap and stays on GMT.
    assert_eq!(
        expand("Europe/London", "2026-03-01T01:30", "FREQ=DAILY", "PT2H", "2026-03-28T00:00:00Z", 3),
        [
            "2026-03-28T01:30:00Z 2026-03-28T03:30:00Z",
            "2026-03-29T01:30:00Z 2026-03-29T03:30:00Z",
            "2026-03-30T00:30:00Z 2026-03-30T02:30:00Z",
        ]
    );
    // 2026-10-25 02:00 BST → 01:00 GMT: 01:30 occurs twice; the first is BST.
    assert_eq!(
        expand(
            "Europe/London",
            "2026-10-01T01:30",
            "FREQ=WEEKLY;BYDAY=SU",
            "PT1H",
            "2026-10-20T00:00:00Z",
            2
        ),
        ["2026-10-25T00:30:00Z 2026-10-25T01:30:00Z", "2026-11-01T01:30:00Z 2026-11-01T02:30:00Z"]
    );
}

#[test]
fn lord_howe_thirty_minute_shift() {
    // Lord Howe moves from +10:30 to +11:00 at 02:00 on 2026-10-04: 02:15 is in the
    // half-hour gap and keeps +10:30.
    assert_eq!(
        expand("Australia/Lord_Howe", "2026-09-01T02:15", "FREQ=DAILY", "PT1H", "2026-10-02T00:00:00Z", 3),
        [
            "2026-10-02T15:45:00Z 2026-10-02T16:45:00Z",
            "2026-10-03T15:45:00Z 2026-10-03T16:45:00Z",
            "2026-10-04T15:15:00Z 2026-10-04T16:15:00Z",
        ]
    );
    // Back at 02:00 on 2026-04-05 (+11:00 → +10:30): 01:45 occurs twice, first at +11:00.
    assert_eq!(
        expand("Australia/Lord_Howe", "2026-04-01T01:45", "FREQ=DAILY", "PT30M", "2026-04-03T00:00:00Z", 3),
        [
            "2026-04-03T14:45:00Z 2026-04-03T15:15:00Z",
            "2026-04-04T14:45:00Z 2026-04-04T15:15:00Z",
            "2026-04-05T15:15:00Z 2026-04-05T15:45:00Z",
        ]
    );
}

#[test]
fn kolkata_has_no_transitions_and_a_half_hour_offset() {
    assert_eq!(
        expand("Asia/Kolkata", "2026-03-02T23:00", "FREQ=WEEKLY;BYDAY=MO", "PT2H", "2026-03-08T00:00:00Z", 2),
        ["2026-03-09T17:30:00Z 2026-03-09T19:30:00Z", "2026-03-16T17:30:00Z 2026-03-16T19:30:00Z"]
    );
}

#[test]
fn santiago_switches_at_midnight() {
    // 2026-09-06 00:00 -04 jumps to 01:00 -03: 00:30 that night keeps -04.
    assert_eq!(
        expand("America/Santiago", "2026-09-01T00:30", "FREQ=DAILY", "PT1H", "2026-09-05T00:00:00Z", 3),
        [
            "2026-09-05T04:30:00Z 2026-09-05T05:30:00Z",
            "2026-09-06T04:30:00Z 2026-09-06T05:30:00Z",
            "2026-09-07T03:30:00Z 2026-09-07T04:30:00Z",
        ]
    );
    // 2026-04-05 00:00 -03 falls back to 2026-04-04 23:00 -04: 23:30 on the 4th occurs twice.
    assert_eq!(
        expand("America/Santiago", "2026-04-01T23:30", "FREQ=DAILY", "PT1H", "2026-04-04T12:00:00Z", 2),
        ["2026-04-05T02:30:00Z 2026-04-05T03:30:00Z", "2026-04-06T03:30:00Z 2026-04-06T04:30:00Z"]
    );
}

#[test]
fn a_window_may_cross_midnight() {
    assert_eq!(
        expand(
            "Europe/Berlin",
            "2026-06-05T22:00",
            "FREQ=WEEKLY;BYDAY=FR",
            "PT5H",
            "2026-06-01T00:00:00Z",
            2
        ),
        ["2026-06-05T20:00:00Z 2026-06-06T01:00:00Z", "2026-06-12T20:00:00Z 2026-06-13T01:00:00Z"]
    );
}

#[test]
fn patch_tuesday_and_last_friday() {
    assert_eq!(
        expand(
            "America/New_York",
            "2026-01-13T22:00",
            "FREQ=MONTHLY;BYDAY=2TU",
            "PT4H",
            "2026-01-01T00:00:00Z",
            4
        ),
        [
            "2026-01-14T03:00:00Z 2026-01-14T07:00:00Z",
            "2026-02-11T03:00:00Z 2026-02-11T07:00:00Z",
            "2026-03-11T02:00:00Z 2026-03-11T06:00:00Z",
            "2026-04-15T02:00:00Z 2026-04-15T06:00:00Z",
        ]
    );
    assert_eq!(
        expand("UTC", "2026-01-01T20:00", "FREQ=MONTHLY;BYDAY=-1FR", "PT2H", "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-30T20:00:00Z 2026-01-30T22:00:00Z",
            "2026-02-27T20:00:00Z 2026-02-27T22:00:00Z",
            "2026-03-27T20:00:00Z 2026-03-27T22:00:00Z",
        ]
    );
}

#[test]
fn monthly_rules_skip_months_without_the_day() {
    assert_eq!(
        expand("UTC", "2026-01-31T03:00", "FREQ=MONTHLY;BYMONTHDAY=31", "PT1H", "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-31T03:00:00Z 2026-01-31T04:00:00Z",
            "2026-03-31T03:00:00Z 2026-03-31T04:00:00Z",
            "2026-05-31T03:00:00Z 2026-05-31T04:00:00Z",
            "2026-07-31T03:00:00Z 2026-07-31T04:00:00Z",
        ]
    );
    // A DTSTART on the 31st with no BYMONTHDAY behaves the same way.
    assert_eq!(
        expand("UTC", "2026-01-31T03:00", "FREQ=MONTHLY", "PT1H", "2026-02-01T00:00:00Z", 1),
        ["2026-03-31T03:00:00Z 2026-03-31T04:00:00Z"]
    );
    // -1 is the last day of every month.
    assert_eq!(
        expand("UTC", "2026-01-31T03:00", "FREQ=MONTHLY;BYMONTHDAY=-1", "PT1H", "2026-02-01T00:00:00Z", 2),
        ["2026-02-28T03:00:00Z 2026-02-28T04:00:00Z", "2026-03-31T03:00:00Z 2026-03-31T04:00:00Z"]
    );
}

#[test]
fn bysetpos_picks_the_last_weekday_of_the_month() {
    assert_eq!(
        expand(
            "UTC",
            "2026-01-01T18:00",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "PT3H",
            "2026-01-01T00:00:00Z",
            3
        ),
        [
            "2026-01-30T18:00:00Z 2026-01-30T21:00:00Z",
            "2026-02-27T18:00:00Z 2026-02-27T21:00:00Z",
            "2026-03-31T18:00:00Z 2026-03-31T21:00:00Z",
        ]
    );
}

#[test]
fn dtstart_counts_only_when_it_matches() {
    // A Wednesday DTSTART for a Saturday rule: the first occurrence is the Saturday.
    assert_eq!(
        expand("UTC", "2026-07-01T01:00", "FREQ=WEEKLY;BYDAY=SA", "PT1H", "2026-06-01T00:00:00Z", 1),
        ["2026-07-04T01:00:00Z 2026-07-04T02:00:00Z"]
    );
    assert_eq!(
        expand("UTC", "2026-07-04T01:00", "FREQ=WEEKLY;BYDAY=SA", "PT1H", "2026-06-01T00:00:00Z", 1),
        ["2026-07-04T01:00:00Z 2026-07-04T02:00:00Z"]
    );
}

#[test]
fn count_until_interval_and_exdates() {
    // COUNT counts from DTSTART, including occurrences an EXDATE then removes.
    assert_eq!(
        expand_ex(
            "UTC",
            "2026-05-04T02:00",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;COUNT=3",
            "PT1H",
            "2026-01-01T00:00:00Z",
            10,
            &["2026-05-18T02:00"]
        ),
        ["2026-05-04T02:00:00Z 2026-05-04T03:00:00Z", "2026-06-01T02:00:00Z 2026-06-01T03:00:00Z"]
    );
    assert_eq!(
        expand(
            "UTC",
            "2026-05-01T02:00",
            "FREQ=DAILY;UNTIL=20260503T020000Z",
            "PT1H",
            "2026-01-01T00:00:00Z",
            10
        )
        .len(),
        3
    );
    // --after skips earlier occurrences but COUNT still counts them.
    assert_eq!(
        expand("UTC", "2026-05-01T02:00", "FREQ=DAILY;COUNT=3", "PT1H", "2026-05-02T12:00:00Z", 10),
        ["2026-05-03T02:00:00Z 2026-05-03T03:00:00Z"]
    );
}

#[test]
fn day_durations_are_nominal_and_hours_exact() {
    // P1D from 12:00 the day before the spring gap ends at 12:00 local (23 hours later);
    // PT24H ends 24 hours later, at 13:00 local.
    assert_eq!(
        expand(
            "America/New_York",
            "2026-03-07T12:00",
            "FREQ=DAILY;COUNT=1",
            "P1D",
            "2026-01-01T00:00:00Z",
            1
        ),
        ["2026-03-07T17:00:00Z 2026-03-08T16:00:00Z"]
    );
    assert_eq!(
        expand(
            "America/New_York",
            "2026-03-07T12:00",
            "FREQ=DAILY;COUNT=1",
            "PT24H",
            "2026-01-01T00:00:00Z",
            1
        ),
        ["2026-03-07T17:00:00Z 2026-03-08T17:00:00Z"]
    );
}

#[test]
fn bad_rules_name_what_is_wrong() {
    let err = |r: &str| Rule::parse(r).unwrap_err().to_string();
    assert!(err("FREQ=DAILY;BYHOUR=3").contains("BYHOUR"));
    assert!(err("FREQ=YEARLY").contains("YEARLY"));
    assert!(err("INTERVAL=2").contains("FREQ"));
    assert!(err("FREQ=WEEKLY;BYDAY=2TU").contains("BYDAY"));
    assert!(err("FREQ=MONTHLY;BYDAY=XX").contains("XX"));
    assert!(err("FREQ=MONTHLY;BYMONTHDAY=32").contains("BYMONTHDAY"));
    assert!(err("FREQ=DAILY;COUNT=2;UNTIL=20260101").contains("COUNT"));
    assert!(err("FREQ=DAILY;UNTIL=tomorrow").contains("UNTIL"));
    assert!(err("FREQ").contains("NAME=VALUE"));
    for d in ["3H", "PT", "P", "PT0S", "PTH", "PT3X", "P1H", "PT3H2H", "P9999D"] {
        assert!(Duration::parse(d).unwrap_err().to_string().contains("DURATION"), "{d}");
    }
    assert_eq!(Duration::parse("P1DT2H30M").unwrap(), Duration { days: 1, seconds: 9000 });
    assert_eq!(Duration::parse("P2W").unwrap(), Duration { days: 14, seconds: 0 });
    let zone = Recurrence::new(
        "Mars/Olympus_Mons",
        "2026-01-01T00:00".parse().unwrap(),
        Rule::parse("FREQ=DAILY").unwrap(),
        Duration::parse("PT1H").unwrap(),
        vec![],
    )
    .unwrap_err();
    assert_eq!(zone, RecurrenceError::UnknownZone("Mars/Olympus_Mons".into()));
}

#[test]
fn an_impossible_rule_ends_instead_of_looping() {
    assert!(
        expand(
            "UTC",
            "2026-01-01T00:00",
            "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30",
            "PT1H",
            "2026-01-01T00:00:00Z",
            1
        )
        .is_empty()
    );
}

#[test]
fn windows_export_as_icalendar() {
    let w = Recurrence::new(
        "America/Chicago",
        "2026-01-13T22:00".parse().unwrap(),
        Rule::parse("freq=monthly;byday=2TU;count=12").unwrap(),
        Duration::parse("PT4H").unwrap(),
        vec!["2026-12-08T22:00".parse().unwrap()],
    )
    .unwrap();
    let summary = "Patch Tuesday, servers; Acme \\ HQ";
    let ev =
        ringfence_schedule::ics::Event { uid: "w-1@ringfence", summary, window: &w, tz: "America/Chicago" };
    let ics =
        ringfence_schedule::ics::calendar("Acme windows", &[ev], "2026-11-26T12:00:00Z".parse().unwrap());
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    assert!(ics.lines().all(|l| l.len() <= 76), "folded at 75 octets");
    for want in [
        "DTSTART;TZID=America/Chicago:20260113T220000\r\n",
        "RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=12\r\n",
        "DURATION:PT4H\r\n",
        "EXDATE;TZID=America/Chicago:20261208T220000\r\n",
        "SUMMARY:Patch Tuesday\\, servers\\; Acme \\\\ HQ\r\n",
        "DTSTAMP:20261126T120000Z\r\n",
    ] {
        assert!(ics.contains(want), "{want:?} missing from\n{ics}");
    }
    // The exported rule reads back as the same rule.
    let rrule = ics.lines().find_map(|l| l.strip_prefix("RRULE:")).unwrap();
    assert_eq!(Rule::parse(rrule).unwrap(), w.rule);
}

#[test]
fn a_deployment_fits_around_blackouts_or_waits() {
    use ringfence_schedule::{Blackout, Occurrence, first_fit};
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    let window = Occurrence { start: t("2026-06-06T00:00:00Z"), end: t("2026-06-06T04:00:00Z") };
    let hour = jiff::SignedDuration::from_hours(1);
    assert_eq!(
        first_fit(window, hour, t("2026-06-01T00:00:00Z"), &[]),
        Some((window.start, t("2026-06-06T01:00:00Z")))
    );
    // A blackout from 00:30 to 02:00 pushes a one-hour deployment to 02:00.
    let close = Blackout { start: t("2026-06-06T00:30:00Z"), end: t("2026-06-06T02:00:00Z") };
    assert_eq!(
        first_fit(window, hour, window.start, &[close]),
        Some((t("2026-06-06T02:00:00Z"), t("2026-06-06T03:00:00Z")))
    );
    // Three hours no longer fit after the blackout: wait for the next window.
    assert_eq!(first_fit(window, hour * 3, window.start, &[close]), None);
    // Half the window already gone.
    assert_eq!(first_fit(window, hour * 3, t("2026-06-06T01:30:00Z"), &[]), None);
}

mod rings {
    use jiff::{SignedDuration, Timestamp};
    use ringfence_schedule::rings::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn rollout<'a>(
        rings: &'a [Ring],
        progress: &'a [RingProgress],
        halt: Option<&'a str>,
        emergency: bool,
    ) -> Rollout<'a> {
        Rollout {
            rings,
            gate: Gate { min_successes: 3, max_failure_rate: 0.2 },
            progress,
            classification: "security",
            partner_halt: halt,
            emergency,
            ring_sizes: &[],
        }
    }

    #[test]
    fn a_ring_waits_for_the_validation_period_and_the_gate() {
        let rings = default_rings();
        let entered = t("2026-06-02T02:00:00Z");
        let ok = RingProgress { entered_at: Some(entered), verified: 5, failed: 0 };
        // Ring 0 always goes first.
        assert!(matches!(rollout(&rings, &[], None, false).may_enter(0, entered), Entry::Allowed { .. }));
        // 23 h into a 24 h security validation: wait, and say until when.
        let before = entered.checked_add(SignedDuration::from_hours(23)).unwrap();
        match rollout(&rings, &[ok], None, false).may_enter(1, before) {
            Entry::Waiting { until, reason } => {
                assert_eq!(until, Some(t("2026-06-03T02:00:00Z")));
                assert_eq!(reason, "waiting: ring 0 validation ends Wed 2026-06-03 02:00 UTC");
            }
            other => panic!("{other:?}"),
        }
        let after = t("2026-06-03T02:00:00Z");
        assert!(matches!(rollout(&rings, &[ok], None, false).may_enter(1, after), Entry::Allowed { .. }));
        // Ring 3 needs rings 0, 1 and 2; ring 2 has not started.
        let r = rollout(&rings, &[ok, ok], None, false).may_enter(3, t("2026-07-01T00:00:00Z"));
        assert!(matches!(&r, Entry::Waiting { reason, .. } if reason.contains("ring 2")), "{r:?}");
        // Too few verified installs: the gate is pending even after the period.
        let few = RingProgress { verified: 2, ..ok };
        let r = rollout(&rings, &[few], None, false).may_enter(1, after);
        assert!(matches!(&r, Entry::Waiting { reason, .. } if reason.contains("2 of 3")), "{r:?}");
    }

    #[test]
    fn failures_halt_and_emergencies_skip_only_the_wait() {
        let rings = default_rings();
        let now = t("2026-06-02T03:00:00Z");
        let entered = Some(t("2026-06-02T02:00:00Z"));
        let bad = RingProgress { entered_at: entered, verified: 4, failed: 1 };
        let r = rollout(&rings, &[bad], None, true).may_enter(1, now);
        assert_eq!(
            r,
            Entry::Halted {
                reason: "ring 0 (internal) gate failed: 20% of installs failed (limit 20%)".into()
            }
        );
        let good = RingProgress { entered_at: entered, verified: 4, failed: 0 };
        assert!(matches!(rollout(&rings, &[good], None, false).may_enter(1, now), Entry::Waiting { .. }));
        assert!(matches!(rollout(&rings, &[good], None, true).may_enter(1, now), Entry::Allowed { .. }));
        // The partner-wide breaker holds even ring 0 and even in an emergency.
        let r = rollout(&rings, &[good], Some("canary failed at Bakery"), true).may_enter(0, now);
        assert!(matches!(&r, Entry::Halted { reason } if reason.contains("Bakery")), "{r:?}");
    }

    #[test]
    fn validation_depends_on_the_classification() {
        let ring = &default_rings()[1];
        assert_eq!(ring.validation_for("security"), SignedDuration::from_hours(24));
        assert_eq!(ring.validation_for("feature"), SignedDuration::from_hours(72));
        assert_eq!(ring.validation_for("driver"), SignedDuration::from_hours(48));
        assert_eq!(
            judge(&Gate { min_successes: 0, max_failure_rate: 0.5 }, &RingProgress::default()),
            GateVerdict::Pass
        );
    }
}

#[test]
fn a_deployment_that_does_not_fit_waits_for_the_next_window() {
    use ringfence_schedule::{Blackout, next_slot};
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    // Saturdays 02:00–05:00 in Chicago (UTC-5 in June).
    let w = Recurrence::new(
        "America/Chicago",
        "2026-06-06T02:00".parse().unwrap(),
        Rule::parse("FREQ=WEEKLY;BYDAY=SA").unwrap(),
        Duration::parse("PT3H").unwrap(),
        vec![],
    )
    .unwrap();
    let hour = jiff::SignedDuration::from_hours(1);
    // Asked during the window with two hours left: one hour fits now.
    assert_eq!(
        next_slot(&w, hour, t("2026-06-06T08:00:00Z"), &[], 10),
        Some((t("2026-06-06T08:00:00Z"), t("2026-06-06T09:00:00Z")))
    );
    // Three hours do not fit in the rest of it: next Saturday.
    assert_eq!(
        next_slot(&w, hour * 3, t("2026-06-06T08:00:00Z"), &[], 10),
        Some((t("2026-06-13T07:00:00Z"), t("2026-06-13T10:00:00Z")))
    );
    // A quarter-end blackout covering the 13th pushes it a week more.
    let close = Blackout { start: t("2026-06-12T00:00:00Z"), end: t("2026-06-15T00:00:00Z") };
    assert_eq!(
        next_slot(&w, hour * 3, t("2026-06-06T08:00:00Z"), &[close], 10),
        Some((t("2026-06-20T07:00:00Z"), t("2026-06-20T10:00:00Z")))
    );
    // Four hours never fit a three-hour window.
    assert_eq!(next_slot(&w, hour * 4, t("2026-06-06T08:00:00Z"), &[], 10), None);
}
