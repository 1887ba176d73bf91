//! EPSS scores (FIRST): a CSV of `cve,epss,percentile`, preceded by a comment line
//! `#model_version:v2023.03.01,score_date:2025-08-25T00:00:00+0000`. Plain or gzip (see
//! [`crate::open`]).

use crate::kev::is_cve_id;
use crate::{FeedError, Skipped};
use std::io::BufRead;

#[derive(Clone, Debug, PartialEq)]
pub struct EpssScore {
    pub cve_id: String,
    /// Probability of exploitation activity in the next 30 days, 0 to 1.
    pub score: f64,
    /// Rank among all scored CVEs, 0 to 1.
    pub percentile: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpssHeader {
    pub model_version: String,
    pub score_date: String,
}

fn probability(field: &str, s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{field} is outside 0..1")),
        Err(_) => Err(format!("{field} is not a number")),
    }
}

/// Reads the scores, calling `each` for every valid row; malformed rows are counted.
pub fn parse(
    reader: &mut dyn BufRead,
    each: &mut dyn FnMut(EpssScore),
) -> Result<(EpssHeader, Skipped), FeedError> {
    let mut header = EpssHeader::default();
    let mut skipped = Skipped::default();
    let mut columns: Option<(usize, usize, usize)> = None;
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        n += 1;
        let l = line.trim_end_matches(['\n', '\r']).trim_start_matches('\u{feff}');
        if l.trim().is_empty() {
            continue;
        }
        if let Some(meta) = l.strip_prefix('#') {
            for kv in meta.split(',') {
                match kv.split_once(':') {
                    Some(("model_version", v)) => header.model_version = v.trim().to_owned(),
                    Some(("score_date", v)) => header.score_date = v.trim().to_owned(),
                    _ => {}
                }
            }
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        let Some((c, e, p)) = columns else {
            let find = |name: &str| fields.iter().position(|f| f.eq_ignore_ascii_case(name));
            match (find("cve"), find("epss"), find("percentile")) {
                (Some(c), Some(e), Some(p)) => columns = Some((c, e, p)),
                _ => {
                    return Err(FeedError::Format(format!(
                        "line {n}: expected the EPSS header 'cve,epss,percentile', found '{}'",
                        l.chars().take(80).collect::<String>()
                    )));
                }
            }
            continue;
        };
        let get = |i: usize| fields.get(i).copied().unwrap_or("");
        let cve = get(c);
        let row = (|| {
            if !is_cve_id(cve) {
                return Err("cve is not a CVE id".to_owned());
            }
            Ok(EpssScore {
                cve_id: cve.to_owned(),
                score: probability("epss", get(e))?,
                percentile: probability("percentile", get(p))?,
            })
        })();
        match row {
            Ok(s) => each(s),
            Err(reason) => skipped.add(reason, format!("line {n}")),
        }
    }
    if columns.is_none() {
        return Err(FeedError::Format("the EPSS file has no 'cve,epss,percentile' header".into()));
    }
    Ok((header, skipped))
}
