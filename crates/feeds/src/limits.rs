//! Limits on what one feed file may make an import hold or spend, enforced on the
//! decompressed bytes before any parser sees them: the longest JSON string, the longest CSV
//! line, the number of lines, the bytes after decompression and the time. Exceeding one stops
//! that file with an error naming the limit and where it was hit; nothing is sized from a
//! header the file declares.
//!
//! The defaults hold every real feed with a wide margin (the longest NVD record is under
//! 200 KB, EPSS is about 300,000 lines, NVD's whole history about 2 GB of JSON). Each can be
//! changed with an environment variable of the server or command (`RINGFENCE_FEED_…`).

use crate::Format;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

/// The limits of one feed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest JSON string value or key, in bytes (`RINGFENCE_FEED_MAX_VALUE_MIB`, 16).
    pub max_value_bytes: u64,
    /// The longest CSV line, in bytes (`RINGFENCE_FEED_MAX_LINE_KIB`, 64).
    pub max_line_bytes: u64,
    /// Lines of a CSV file, empty ones included (`RINGFENCE_FEED_MAX_LINES`, 10,000,000).
    pub max_lines: u64,
    /// Bytes after decompression (`RINGFENCE_FEED_MAX_GIB`, 8).
    pub max_total_bytes: u64,
    /// Time to read the file (`RINGFENCE_FEED_MAX_MINUTES`, 60).
    pub max_time: Duration,
    /// One entry of a zip archive, declared or actual (`RINGFENCE_FEED_MAX_ENTRY_MIB`, 256).
    pub max_entry_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 16 << 20,
            max_line_bytes: 64 << 10,
            max_lines: 10_000_000,
            max_total_bytes: 8 << 30,
            max_time: Duration::from_secs(3600),
            max_entry_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// The defaults, changed by the `RINGFENCE_FEED_…` variables that are set. A variable
    /// that is not a positive number is an error naming it.
    pub fn from_env() -> Result<Limits, String> {
        let mut l = Limits::default();
        let var = |name: &str| -> Result<Option<u64>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(format!("{name} must be a positive whole number (got '{v}')")),
                },
            }
        };
        if let Some(n) = var("RINGFENCE_FEED_MAX_VALUE_MIB")? {
            l.max_value_bytes = n << 20;
        }
        if let Some(n) = var("RINGFENCE_FEED_MAX_LINE_KIB")? {
            l.max_line_bytes = n << 10;
        }
        if let Some(n) = var("RINGFENCE_FEED_MAX_LINES")? {
            l.max_lines = n;
        }
        if let Some(n) = var("RINGFENCE_FEED_MAX_GIB")? {
            l.max_total_bytes = n << 30;
        }
        if let Some(n) = var("RINGFENCE_FEED_MAX_MINUTES")? {
            l.max_time = Duration::from_secs(n * 60);
        }
        if let Some(n) = var("RINGFENCE_FEED_MAX_ENTRY_MIB")? {
            l.max_entry_bytes = n << 20;
        }
        Ok(l)
    }
}

enum Mode {
    /// Track JSON strings: inside one, after a backslash, and the current string's length.
    Json { in_string: bool, escaped: bool, run: u64 },
    /// Track CSV lines.
    Csv { run: u64, lines: u64 },
}

/// A reader that stops with an error when a limit is passed.
pub struct Guarded<R> {
    inner: R,
    limits: Limits,
    mode: Mode,
    read: u64,
    started: Instant,
}

/// A size in the largest unit that divides it ("16 MiB", "64 KiB", "1000 bytes").
fn size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn exceeded(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.started.elapsed() > self.limits.max_time {
            return Err(exceeded(format!(
                "reading took longer than the limit of {} minutes (at byte {}; RINGFENCE_FEED_MAX_MINUTES)",
                self.limits.max_time.as_secs() / 60,
                self.read
            )));
        }
        let n = self.inner.read(buf)?;
        let at = self.read;
        self.read += n as u64;
        if self.read > self.limits.max_total_bytes {
            return Err(exceeded(format!(
                "the file is larger than the limit of {} once decompressed (RINGFENCE_FEED_MAX_GIB)",
                size(self.limits.max_total_bytes)
            )));
        }
        let l = &self.limits;
        match &mut self.mode {
            Mode::Json { in_string, escaped, run } => {
                for (i, &b) in buf[..n].iter().enumerate() {
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                        } else if b == b'\\' {
                            *escaped = true;
                        } else if b == b'"' {
                            *in_string = false;
                            continue;
                        }
                        *run += 1;
                        if *run > l.max_value_bytes {
                            return Err(exceeded(format!(
                                "a JSON string at byte {} is longer than the limit of {} (RINGFENCE_FEED_MAX_VALUE_MIB)",
                                at + i as u64 + 1 - *run,
                                size(l.max_value_bytes)
                            )));
                        }
                    } else if b == b'"' {
                        *in_string = true;
                        *run = 0;
                    }
                }
            }
            Mode::Csv { run, lines } => {
                for (i, &b) in buf[..n].iter().enumerate() {
                    if b == b'\n' {
                        *lines += 1;
                        *run = 0;
                        if *lines > l.max_lines {
                            return Err(exceeded(format!(
                                "the file has more than the limit of {} lines (RINGFENCE_FEED_MAX_LINES)",
                                l.max_lines
                            )));
                        }
                    } else {
                        *run += 1;
                        if *run > l.max_line_bytes {
                            return Err(exceeded(format!(
                                "line {} (at byte {}) is longer than the limit of {} (RINGFENCE_FEED_MAX_LINE_KIB)",
                                *lines + 1,
                                at + i as u64,
                                size(l.max_line_bytes)
                            )));
                        }
                    }
                }
            }
        }
        Ok(n)
    }
}

/// `reader` (already decompressed, its format detected) behind the limits of `format`.
pub fn guard(reader: Box<dyn BufRead>, format: Format, limits: &Limits) -> Box<dyn BufRead> {
    let mode = match format {
        Format::Epss => Mode::Csv { run: 0, lines: 0 },
        _ => Mode::Json { in_string: false, escaped: false, run: 0 },
    };
    Box::new(BufReader::with_capacity(
        1 << 16,
        Guarded { inner: reader, limits: limits.clone(), mode, read: 0, started: Instant::now() },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_value_bytes: 1 << 10,
            max_line_bytes: 100,
            max_lines: 50,
            max_total_bytes: 1 << 20,
            max_time: Duration::from_secs(60),
            max_entry_bytes: 1 << 20,
        }
    }

    fn read_all(text: &[u8], format: Format) -> Result<usize, String> {
        let mut r = guard(Box::new(std::io::Cursor::new(text.to_vec())), format, &small());
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| e.to_string())
    }

    #[test]
    fn a_json_string_over_the_limit_is_refused_where_it_starts() {
        let ok = format!("{{\"a\":\"{}\"}}", "x".repeat(1024));
        assert!(read_all(ok.as_bytes(), Format::NvdPage).is_ok());
        let long = format!("{{\"a\":\"ok\",\"b\":\"{}\"}}", "x".repeat(1025));
        let e = read_all(long.as_bytes(), Format::NvdPage).unwrap_err();
        assert!(e.contains("a JSON string at byte 15 is longer than the limit of 1 KiB"), "{e}");
        // Escaped quotes do not end the string; an escaped backslash before a quote does.
        let sneaky = format!("{{\"a\":\"{}\"}}", "ab\\\"".repeat(300));
        assert!(
            read_all(sneaky.as_bytes(), Format::NvdPage).is_err(),
            "escaped quotes are part of the string"
        );
        let many = format!("{{\"a\":[{}]}}", vec!["\"x\\\\\""; 2000].join(","));
        assert!(read_all(many.as_bytes(), Format::NvdPage).is_ok(), "many short strings are fine");
    }

    #[test]
    fn csv_lines_are_bounded_in_length_and_number() {
        assert!(read_all(b"cve,epss,percentile\nCVE-2024-1,0.1,0.2\n", Format::Epss).is_ok());
        let e = read_all(format!("cve,epss\n{}\n", "9".repeat(101)).as_bytes(), Format::Epss).unwrap_err();
        assert!(e.contains("line 2") && e.contains("RINGFENCE_FEED_MAX_LINE_KIB"), "{e}");
        let e = read_all(&[b'\n'; 51], Format::Epss).unwrap_err();
        assert!(e.contains("more than the limit of 50 lines"), "{e}");
    }

    #[test]
    fn the_decompressed_size_is_bounded() {
        let e = read_all(&vec![b' '; (1 << 20) + 1], Format::NvdPage).unwrap_err();
        assert!(e.contains("RINGFENCE_FEED_MAX_GIB"), "{e}");
    }

    #[test]
    fn limits_come_from_the_environment_or_say_which_variable_is_wrong() {
        assert_eq!(Limits::from_env().map(|l| l.max_lines).ok(), Some(Limits::default().max_lines));
    }
}
