//! CSV: the renderings of the timeline's tables, and `push_line` for any other table (RFC
//! 4180: fields holding a comma, a quote or a line break are quoted, quotes doubled, lines end
//! with CRLF; cells a spreadsheet would run as formulas get a leading apostrophe). Times are
//! RFC 3339 UTC.
//! The rendering is deterministic, so a verifier compares the files byte for byte.

use std::fmt::Write as _;

use crate::timeline::{Safeguard, VulnRow};

fn push_field(out: &mut String, value: &str) {
    // Text from agents (host names, products) that a spreadsheet would run as a formula is
    // prefixed with an apostrophe.
    let guarded;
    let value = if value.starts_with(['=', '+', '@', '\t'])
        || (value.starts_with('-') && value.parse::<f64>().is_err())
    {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Appends one CSV line (RFC 4180, CRLF), each field quoted when it must be and guarded
/// against spreadsheet formulas; client reports use it too.
pub fn push_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f);
    }
    out.push_str("\r\n");
}

/// RFC 3339 in UTC, or the raw number when it is outside the representable range.
pub(crate) fn time(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros).map_or_else(|_| micros.to_string(), |t| t.to_string())
}

fn opt_time(micros: Option<i64>) -> String {
    micros.map(time).unwrap_or_default()
}

fn opt_num(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

pub(crate) fn vulnerabilities(rows: &[VulnRow]) -> String {
    let mut out = String::new();
    push_line(
        &mut out,
        &[
            "cve",
            "device_id",
            "hostname",
            "product",
            "severity",
            "kev",
            "kev_due",
            "detected_at",
            "detected_seq",
            "approved_at",
            "approved_by",
            "approval_seq",
            "deployment_id",
            "deployed_at",
            "verified_at",
            "resolved_at",
            "resolution",
            "resolved_seq",
            "sla_due",
            "sla_status",
        ],
    );
    for r in rows {
        push_line(
            &mut out,
            &[
                &r.cve,
                &r.device_id,
                &r.hostname,
                &r.product,
                r.severity.as_str(),
                if r.kev { "true" } else { "false" },
                r.kev_due.as_deref().unwrap_or_default(),
                &time(r.detected_at),
                &opt_num(r.detected_seq),
                &opt_time(r.approved_at),
                r.approved_by.as_deref().unwrap_or_default(),
                &opt_num(r.approval_seq),
                r.deployment_id.as_deref().unwrap_or_default(),
                &opt_time(r.deployed_at),
                &opt_time(r.verified_at),
                &opt_time(r.resolved_at),
                r.resolution.as_deref().unwrap_or_default(),
                &opt_num(r.resolved_seq),
                &opt_time(r.sla_due),
                r.sla_status.as_str(),
            ],
        );
    }
    out
}

pub(crate) fn cis(safeguards: &[Safeguard]) -> String {
    let mut out = String::new();
    push_line(
        &mut out,
        &["safeguard", "title", "status", "evidence", "actions", "count", "example_seqs", "summary"],
    );
    for s in safeguards {
        for e in &s.evidence {
            let mut seqs = String::new();
            for (i, seq) in e.example_seqs.iter().enumerate() {
                let _ = write!(seqs, "{}{seq}", if i > 0 { " " } else { "" });
            }
            push_line(
                &mut out,
                &[
                    &s.id,
                    &s.title,
                    s.status.as_str(),
                    &e.label,
                    &e.actions.join(" "),
                    &e.count.to_string(),
                    &seqs,
                    &s.summary,
                ],
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
            ("", ""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-5", "-5"),
            ("-cmd", "'-cmd"),
        ];
        for (input, expect) in cases {
            let mut out = String::new();
            push_field(&mut out, input);
            assert_eq!(out, expect, "{input:?}");
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(time(i64::MAX), i64::MAX.to_string());
    }
}
