//! Windows as iCalendar (RFC 5545) text, so a client can subscribe to them in a calendar.

use crate::recurrence::{Freq, Recurrence, Rule, Until};
use jiff::Timestamp;

fn weekday_code(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "MO",
        Tuesday => "TU",
        Wednesday => "WE",
        Thursday => "TH",
        Friday => "FR",
        Saturday => "SA",
        Sunday => "SU",
    }
}

impl std::fmt::Display for Rule {
    /// The rule in RFC 5545 syntax, parts in a fixed order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let freq = match self.freq {
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
        };
        write!(f, "FREQ={freq}")?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        let join = |v: Vec<String>| v.join(",");
        if !self.by_day.is_empty() {
            let days = self
                .by_day
                .iter()
                .map(|d| {
                    format!("{}{}", d.nth.map(|n| n.to_string()).unwrap_or_default(), weekday_code(d.weekday))
                })
                .collect();
            write!(f, ";BYDAY={}", join(days))?;
        }
        if !self.by_month_day.is_empty() {
            write!(f, ";BYMONTHDAY={}", join(self.by_month_day.iter().map(|n| n.to_string()).collect()))?;
        }
        if !self.by_month.is_empty() {
            write!(f, ";BYMONTH={}", join(self.by_month.iter().map(|n| n.to_string()).collect()))?;
        }
        if !self.by_set_pos.is_empty() {
            write!(f, ";BYSETPOS={}", join(self.by_set_pos.iter().map(|n| n.to_string()).collect()))?;
        }
        if let Some(c) = self.count {
            write!(f, ";COUNT={c}")?;
        }
        match self.until {
            Some(Until::Instant(t)) => write!(f, ";UNTIL={}", t.strftime("%Y%m%dT%H%M%SZ"))?,
            Some(Until::Local(dt)) => write!(f, ";UNTIL={}", dt.strftime("%Y%m%dT%H%M%S"))?,
            None => {}
        }
        if self.week_start != jiff::civil::Weekday::Monday {
            write!(f, ";WKST={}", weekday_code(self.week_start))?;
        }
        Ok(())
    }
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets without splitting a character (§3.1).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// One window to export.
pub struct Event<'a> {
    /// Stable across exports, so a subscribed calendar updates the event in place.
    pub uid: &'a str,
    pub summary: &'a str,
    pub window: &'a Recurrence,
    /// The zone's IANA name (DTSTART and EXDATE carry it as TZID).
    pub tz: &'a str,
}

/// A VCALENDAR with one VEVENT per window. Times are local with the IANA zone as TZID, the
/// form Google, Apple and Microsoft calendars resolve from their own zone database.
pub fn calendar(name: &str, events: &[Event<'_>], now: Timestamp) -> String {
    let mut out = String::new();
    let mut line = |l: String| fold(&l, &mut out);
    line("BEGIN:VCALENDAR".into());
    line("VERSION:2.0".into());
    line("PRODID:-//ringfence//maintenance windows//EN".into());
    line("CALSCALE:GREGORIAN".into());
    line(format!("X-WR-CALNAME:{}", text(name)));
    for e in events {
        let w = e.window;
        let tz = text(e.tz);
        line("BEGIN:VEVENT".into());
        line(format!("UID:{}", text(e.uid)));
        line(format!("DTSTAMP:{}", now.strftime("%Y%m%dT%H%M%SZ")));
        line(format!("SUMMARY:{}", text(e.summary)));
        line(format!("DTSTART;TZID={tz}:{}", w.dtstart.strftime("%Y%m%dT%H%M%S")));
        let mut dur = String::from("P");
        if w.duration.days > 0 {
            dur.push_str(&format!("{}D", w.duration.days));
        }
        let s = w.duration.seconds;
        if s > 0 {
            dur.push('T');
            for (n, unit) in [(s / 3600, 'H'), (s % 3600 / 60, 'M'), (s % 60, 'S')] {
                if n > 0 {
                    dur.push_str(&format!("{n}{unit}"));
                }
            }
        }
        line(format!("DURATION:{dur}"));
        line(format!("RRULE:{}", w.rule));
        for x in &w.exdates {
            line(format!("EXDATE;TZID={tz}:{}", x.strftime("%Y%m%dT%H%M%S")));
        }
        line("TRANSP:TRANSPARENT".into());
        line("END:VEVENT".into());
    }
    line("END:VCALENDAR".into());
    out
}
