//! The RFC 5545 recurrence subset maintenance windows use, expanded on jiff.
//!
//! A window is DTSTART (a local wall-clock time in an IANA zone), an RRULE with
//! `FREQ=DAILY|WEEKLY|MONTHLY`, `INTERVAL`, `BYDAY` (with ordinals under MONTHLY: `2TU` is
//! Patch Tuesday, `-1FR` the last Friday), `BYMONTHDAY`, `BYMONTH`, `BYSETPOS`, `COUNT`,
//! `UNTIL` and `WKST`, a DURATION and EXDATEs. Any other rule part is refused by name.
//!
//! Local times resolve as RFC 5545 §3.3.5 says: a time inside a DST gap takes the UTC offset
//! from before the gap (02:30 on a spring-forward night is 03:30 daylight time); a time
//! that occurs twice means the first one. Occurrences are computed from the local date, so
//! a window at 02:30 every day stays at 02:30 local on both sides of a transition.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("unknown time zone '{0}': use an IANA name such as America/New_York")]
    UnknownZone(String),
    #[error(
        "unsupported rule part {0}: windows take FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL and WKST"
    )]
    UnsupportedPart(String),
    #[error("unsupported FREQ={0}: windows recur DAILY, WEEKLY or MONTHLY")]
    UnsupportedFreq(String),
    #[error("{part}: {message}")]
    Invalid { part: &'static str, message: String },
}

fn invalid(part: &'static str, message: impl Into<String>) -> RecurrenceError {
    RecurrenceError::Invalid { part, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
}

/// A weekday, with an ordinal within the month for MONTHLY rules (`2TU`, `-1FR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByDay {
    pub nth: Option<i8>,
    pub weekday: Weekday,
}

/// When the recurrence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// An instant (`UNTIL=20261231T235959Z`).
    Instant(Timestamp),
    /// A local date-time or date, in the window's zone.
    Local(DateTime),
}

/// A parsed RRULE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: u32,
    pub by_day: Vec<ByDay>,
    pub by_month_day: Vec<i8>,
    pub by_month: Vec<i8>,
    pub by_set_pos: Vec<i32>,
    pub count: Option<u32>,
    pub until: Option<Until>,
    pub week_start: Weekday,
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn int_list<T: std::str::FromStr>(
    part: &'static str,
    v: &str,
    ok: impl Fn(&T) -> bool,
    what: &str,
) -> Result<Vec<T>, RecurrenceError> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .ok()
                .filter(|n| ok(n))
                .ok_or_else(|| invalid(part, format!("'{x}' is not {what}")))
        })
        .collect()
}

/// A local date-time as RFC 5545 writes it (`20261231T235959`, with `Z` for UTC) or as
/// ISO 8601 (`2026-12-31T23:59:59`), or a date alone (the end of that day's first second).
fn parse_until(v: &str) -> Result<Until, RecurrenceError> {
    let bad =
        || invalid("UNTIL", format!("'{v}' is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS[Z])"));
    let (body, utc) = match v.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (v, false),
    };
    let compact: String = body.chars().filter(|c| *c != '-' && *c != ':').collect();
    let dt = if compact.len() == 8 {
        let d = Date::strptime("%Y%m%d", &compact).map_err(|_| bad())?;
        d.to_datetime(Time::MAX)
    } else {
        DateTime::strptime("%Y%m%dT%H%M%S", &compact).map_err(|_| bad())?
    };
    if utc {
        Ok(Until::Instant(dt.to_zoned(TimeZone::UTC).map_err(|_| bad())?.timestamp()))
    } else {
        Ok(Until::Local(dt))
    }
}

impl Rule {
    /// Parses `FREQ=MONTHLY;BYDAY=2TU` (an `RRULE:` prefix is allowed).
    pub fn parse(s: &str) -> Result<Rule, RecurrenceError> {
        let s = s.trim();
        let s = s.strip_prefix("RRULE:").unwrap_or(s);
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            by_set_pos: Vec::new(),
            count: None,
            until: None,
            week_start: Weekday::Monday,
        };
        let mut freq = None;
        for part in s.split(';').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| invalid("RRULE", format!("'{part}' is not NAME=VALUE")))?;
            let (k, v) = (k.trim().to_ascii_uppercase(), v.trim().to_ascii_uppercase());
            match k.as_str() {
                "FREQ" => {
                    freq = Some(match v.as_str() {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        _ => return Err(RecurrenceError::UnsupportedFreq(v)),
                    })
                }
                "INTERVAL" => {
                    rule.interval =
                        v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                            invalid("INTERVAL", format!("'{v}' is not a number from 1 to 1000"))
                        })?
                }
                "COUNT" => {
                    rule.count =
                        Some(v.parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                            invalid("COUNT", format!("'{v}' is not a number from 1 to 100000"))
                        })?)
                }
                "UNTIL" => rule.until = Some(parse_until(&v)?),
                "WKST" => {
                    rule.week_start =
                        weekday(&v).ok_or_else(|| invalid("WKST", format!("'{v}' is not MO, TU, … or SU")))?
                }
                "BYDAY" => {
                    for d in v.split(',') {
                        let d = d.trim();
                        let split = d.len().saturating_sub(2);
                        let (n, w) = d.split_at(split);
                        let weekday = weekday(w).ok_or_else(|| {
                            invalid("BYDAY", format!("'{d}' does not end in MO, TU, … or SU"))
                        })?;
                        let nth = if n.is_empty() {
                            None
                        } else {
                            Some(
                                n.trim_start_matches('+')
                                    .parse::<i8>()
                                    .ok()
                                    .filter(|n| *n != 0 && (-5..=5).contains(n))
                                    .ok_or_else(|| {
                                        invalid(
                                            "BYDAY",
                                            format!("'{d}': the ordinal must be 1 to 5 or -1 to -5"),
                                        )
                                    })?,
                            )
                        };
                        rule.by_day.push(ByDay { nth, weekday });
                    }
                }
                "BYMONTHDAY" => {
                    rule.by_month_day = int_list(
                        "BYMONTHDAY",
                        &v,
                        |n: &i8| *n != 0 && (-31..=31).contains(n),
                        "1 to 31 or -1 to -31",
                    )?
                }
                "BYMONTH" => {
                    rule.by_month =
                        int_list("BYMONTH", &v, |n: &i8| (1..=12).contains(n), "a month from 1 to 12")?
                }
                "BYSETPOS" => {
                    rule.by_set_pos = int_list(
                        "BYSETPOS",
                        &v,
                        |n: &i32| *n != 0 && (-366..=366).contains(n),
                        "1 to 366 or -1 to -366",
                    )?
                }
                other => return Err(RecurrenceError::UnsupportedPart(other.to_string())),
            }
        }
        rule.freq = freq.ok_or_else(|| invalid("FREQ", "is required (DAILY, WEEKLY or MONTHLY)"))?;
        if rule.count.is_some() && rule.until.is_some() {
            return Err(invalid("COUNT", "cannot be combined with UNTIL (RFC 5545)"));
        }
        if rule.freq != Freq::Monthly && rule.by_day.iter().any(|d| d.nth.is_some()) {
            return Err(invalid("BYDAY", "ordinals such as 2TU need FREQ=MONTHLY"));
        }
        if rule.freq == Freq::Weekly && !rule.by_month_day.is_empty() {
            return Err(invalid("BYMONTHDAY", "is not allowed with FREQ=WEEKLY (RFC 5545)"));
        }
        Ok(rule)
    }

    /// The candidate dates of the period containing `anchor` (a day, the week starting on
    /// the week-start day, or the month), sorted, before BYSETPOS.
    fn candidates(&self, anchor: Date, start_day: Date) -> Vec<Date> {
        let month_ok = |d: &Date| self.by_month.is_empty() || self.by_month.contains(&d.month());
        let month_day_ok = |d: &Date| {
            self.by_month_day.is_empty()
                || self.by_month_day.iter().any(|&n| {
                    let dim = d.days_in_month();
                    let want = if n > 0 { n } else { dim + 1 + n };
                    want == d.day()
                })
        };
        let plain_day_ok =
            |d: &Date| self.by_day.is_empty() || self.by_day.iter().any(|b| b.weekday == d.weekday());
        let mut out: Vec<Date> = match self.freq {
            Freq::Daily => vec![anchor],
            Freq::Weekly => {
                let days: Vec<Date> = (0..7).filter_map(|i| anchor.checked_add(i.days()).ok()).collect();
                if self.by_day.is_empty() {
                    days.into_iter().filter(|d| d.weekday() == start_day.weekday()).collect()
                } else {
                    days
                }
            }
            Freq::Monthly => {
                let first = anchor.first_of_month();
                let all: Vec<Date> = (0..first.days_in_month())
                    .filter_map(|i| first.checked_add(i64::from(i).days()).ok())
                    .collect();
                if self.by_day.is_empty() && self.by_month_day.is_empty() {
                    all.into_iter().filter(|d| d.day() == start_day.day()).collect()
                } else if !self.by_day.is_empty() {
                    let mut hits: Vec<Date> = Vec::new();
                    for b in &self.by_day {
                        match b.nth {
                            Some(n) => {
                                if let Ok(d) = first.nth_weekday_of_month(n, b.weekday) {
                                    hits.push(d)
                                }
                            }
                            None => hits.extend(all.iter().copied().filter(|d| d.weekday() == b.weekday)),
                        }
                    }
                    hits.sort();
                    hits.dedup();
                    hits
                } else {
                    all
                }
            }
        };
        out.retain(|d| month_ok(d) && month_day_ok(d));
        if self.freq != Freq::Monthly {
            out.retain(plain_day_ok);
        }
        out.sort();
        if self.by_set_pos.is_empty() {
            return out;
        }
        let n = out.len() as i32;
        let mut picked: Vec<Date> = self
            .by_set_pos
            .iter()
            .filter_map(|&p| {
                let i = if p > 0 { p - 1 } else { n + p };
                (0..n).contains(&i).then(|| out[i as usize])
            })
            .collect();
        picked.sort();
        picked.dedup();
        picked
    }
}

/// An ISO 8601 / RFC 5545 duration: weeks and days are nominal (the same local time that
/// many days later), hours, minutes and seconds exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub days: i64,
    pub seconds: i64,
}

impl Duration {
    pub fn parse(s: &str) -> Result<Duration, RecurrenceError> {
        let bad =
            |why: &str| invalid("DURATION", format!("'{s}' {why}; write e.g. PT3H, PT90M, P1DT2H or P1W"));
        let t = s.trim().to_ascii_uppercase();
        let body = t.strip_prefix('P').ok_or_else(|| bad("does not start with P"))?;
        let (date, time) = match body.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (body, None),
        };
        let mut d = Duration { days: 0, seconds: 0 };
        let mut any = false;
        let mut take = |text: &str, units: &[(char, i64, bool)]| -> Result<(), RecurrenceError> {
            let mut num = String::new();
            let mut last = 0;
            for c in text.chars() {
                if c.is_ascii_digit() {
                    num.push(c);
                    continue;
                }
                let pos = units.iter().position(|u| u.0 == c).ok_or_else(|| bad("has an unknown unit"))?;
                if pos < last || num.is_empty() {
                    return Err(bad("is malformed"));
                }
                last = pos + 1;
                let n: i64 = num.parse().map_err(|_| bad("has a number too large"))?;
                num.clear();
                let (_, mult, is_days) = units[pos];
                if is_days {
                    d.days = d
                        .days
                        .checked_add(n.checked_mul(mult).ok_or_else(|| bad("is too long"))?)
                        .ok_or_else(|| bad("is too long"))?;
                } else {
                    d.seconds = d
                        .seconds
                        .checked_add(n.checked_mul(mult).ok_or_else(|| bad("is too long"))?)
                        .ok_or_else(|| bad("is too long"))?;
                }
                any = true;
            }
            if !num.is_empty() {
                return Err(bad("ends in a number without a unit"));
            }
            Ok(())
        };
        take(date, &[('W', 7, true), ('D', 1, true)])?;
        if let Some(time) = time {
            if time.is_empty() {
                return Err(bad("has a T without hours, minutes or seconds"));
            }
            take(time, &[('H', 3600, false), ('M', 60, false), ('S', 1, false)])?;
        }
        if !any {
            return Err(bad("is empty"));
        }
        if d.days > 366 || d.seconds > 366 * 86_400 {
            return Err(bad("is longer than a year"));
        }
        if d.days == 0 && d.seconds == 0 {
            return Err(bad("is zero"));
        }
        Ok(d)
    }
}

/// One window: its start and end instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Occurrence {
    /// `START END` in RFC 3339 UTC with seconds and `Z`.
    pub fn to_line(&self) -> String {
        format!("{} {}", self.start.strftime("%Y-%m-%dT%H:%M:%SZ"), self.end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// A maintenance window: DTSTART in a zone, a rule, a duration and excluded dates.
#[derive(Debug, Clone)]
pub struct Recurrence {
    pub zone: TimeZone,
    pub dtstart: DateTime,
    pub rule: Rule,
    pub duration: Duration,
    /// Local start date-times that do not occur.
    pub exdates: Vec<DateTime>,
}

/// Periods scanned without an occurrence before a rule is declared empty (e.g. the 31st of
/// February).
const MAX_EMPTY_PERIODS: u32 = 5_000;

impl Recurrence {
    pub fn new(
        tz: &str,
        dtstart: DateTime,
        rule: Rule,
        duration: Duration,
        exdates: Vec<DateTime>,
    ) -> Result<Recurrence, RecurrenceError> {
        let zone = TimeZone::get(tz).map_err(|_| RecurrenceError::UnknownZone(tz.to_string()))?;
        Ok(Recurrence { zone, dtstart, rule, duration, exdates })
    }

    fn resolve(&self, local: DateTime) -> Option<Timestamp> {
        self.zone.to_ambiguous_timestamp(local).compatible().ok()
    }

    fn occurrence(&self, local: DateTime) -> Option<Occurrence> {
        let start = self.resolve(local)?;
        let end_local = local.checked_add(self.duration.days.days()).ok()?;
        let end = self.resolve(end_local)?.checked_add(self.duration.seconds.seconds()).ok()?;
        Some(Occurrence { start, end })
    }

    /// The first `n` occurrences starting at or after `after`.
    pub fn occurrences_after(&self, after: Timestamp, n: usize) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let rule = &self.rule;
        let time = self.dtstart.time();
        let start_day = self.dtstart.date();
        // The first period: the day, the week (from WKST) or the month of DTSTART.
        let mut anchor = match rule.freq {
            Freq::Daily => start_day,
            Freq::Weekly => {
                let back = (start_day.weekday().to_monday_zero_offset()
                    - rule.week_start.to_monday_zero_offset()
                    + 7)
                    % 7;
                start_day.checked_sub(i64::from(back).days()).unwrap_or(start_day)
            }
            Freq::Monthly => start_day.first_of_month(),
        };
        let mut produced: u32 = 0;
        let mut empty: u32 = 0;
        while out.len() < n && empty < MAX_EMPTY_PERIODS {
            let dates = rule.candidates(anchor, start_day);
            let mut any = false;
            for d in dates {
                let local = d.to_datetime(time);
                if local < self.dtstart {
                    continue;
                }
                match rule.until {
                    Some(Until::Local(u)) if local > u => return out,
                    Some(Until::Instant(u)) if self.resolve(local).is_some_and(|t| t > u) => return out,
                    _ => {}
                }
                if rule.count.is_some_and(|c| produced >= c) {
                    return out;
                }
                produced += 1;
                any = true;
                if self.exdates.contains(&local) {
                    continue;
                }
                if let Some(o) = self.occurrence(local)
                    && o.start >= after
                {
                    out.push(o);
                    if out.len() == n {
                        return out;
                    }
                }
            }
            empty = if any { 0 } else { empty + 1 };
            let step = i64::from(rule.interval);
            anchor = match rule.freq {
                Freq::Daily => anchor.checked_add(step.days()),
                Freq::Weekly => anchor.checked_add((7 * step).days()),
                Freq::Monthly => anchor.checked_add(step.months()),
            }
            .unwrap_or(Date::MAX);
            if anchor == Date::MAX {
                break;
            }
        }
        out
    }
}
