//! The dpkg status database (`/var/lib/dpkg/status`), read directly: RFC 822-style
//! stanzas separated by blank lines, continuation lines starting with a space or tab.
//!
//! Only packages whose files are on disk count (`installed`, `half-configured`,
//! `unpacked`, `triggers-awaited`, `triggers-pending`); removed packages that left their
//! configuration files behind (`config-files`) do not. The `Source:` field is kept with
//! its version, since distro data is keyed by source package.

use crate::{InventoryError, Item, ItemKind};

/// The packages of a status file and the stanzas that could not be read.
#[derive(Debug, Default)]
pub struct Status {
    pub items: Vec<Item>,
    /// One error per unreadable stanza, with the line it starts on or the line at fault.
    pub errors: Vec<InventoryError>,
}

const PRESENT: [&str; 5] =
    ["installed", "half-configured", "unpacked", "triggers-awaited", "triggers-pending"];

#[derive(Default)]
struct Stanza<'a> {
    start: usize,
    package: Option<&'a str>,
    version: Option<&'a str>,
    status: Option<&'a str>,
    arch: Option<&'a str>,
    source: Option<&'a str>,
    error: Option<InventoryError>,
}

impl<'a> Stanza<'a> {
    fn finish(self, out: &mut Status) {
        if let Some(e) = self.error {
            out.errors.push(e);
            return;
        }
        let line = self.start;
        let Some(name) = self.package else {
            out.errors.push(InventoryError::Line { line, reason: "stanza has no Package field".into() });
            return;
        };
        let Some(status) = self.status else {
            out.errors
                .push(InventoryError::Line { line, reason: format!("package {name} has no Status field") });
            return;
        };
        let state = status.split_whitespace().nth(2);
        if !state.is_some_and(|s| PRESENT.contains(&s)) {
            if state.is_none() {
                out.errors.push(InventoryError::Line {
                    line,
                    reason: format!("package {name} has a malformed Status '{status}' (want three words)"),
                });
            }
            return;
        }
        let Some(version) = self.version else {
            out.errors
                .push(InventoryError::Line { line, reason: format!("package {name} has no Version field") });
            return;
        };
        let mut item = Item::new(ItemKind::Package, name, version);
        item.manager = Some("dpkg".into());
        item.arch = self.arch.map(str::to_string);
        if let Some(source) = self.source {
            match source.split_once('(') {
                Some((n, v)) => {
                    let v = v.trim().trim_end_matches(')').trim();
                    item.source_name = Some(n.trim().to_string());
                    if !v.is_empty() && v != version {
                        item.source_version = Some(v.to_string());
                    }
                }
                None => item.source_name = Some(source.trim().to_string()),
            }
            if item.source_name.as_deref() == Some(name) {
                item.source_name = None;
            }
        }
        out.items.push(item);
    }
}

/// Reads a status file. A stanza that cannot be read is reported with its line number and
/// skipped; the others still come through.
pub fn parse_status(text: &str) -> Status {
    let mut out = Status::default();
    let mut stanza: Option<Stanza> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            if let Some(s) = stanza.take() {
                s.finish(&mut out);
            }
            continue;
        }
        let s = stanza.get_or_insert_with(|| Stanza { start: line_no, ..Stanza::default() });
        if line.starts_with([' ', '\t']) {
            if s.package.is_none() && s.error.is_none() && line_no == s.start {
                s.error = Some(InventoryError::Line {
                    line: line_no,
                    reason: "continuation line outside a field".into(),
                });
            }
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            if s.error.is_none() {
                s.error = Some(InventoryError::Line {
                    line: line_no,
                    reason: format!(
                        "'{}' is not a 'Field: value' line",
                        line.chars().take(60).collect::<String>()
                    ),
                });
            }
            continue;
        };
        let value = value.trim();
        match field {
            "Package" => s.package = Some(value),
            "Version" => s.version = Some(value),
            "Status" => s.status = Some(value),
            "Architecture" => s.arch = Some(value),
            "Source" => s.source = Some(value),
            f if (f.is_empty() || f.contains(char::is_whitespace)) && s.error.is_none() => {
                s.error =
                    Some(InventoryError::Line { line: line_no, reason: format!("invalid field name '{f}'") });
            }
            _ => {}
        }
    }
    if let Some(s) = stanza.take() {
        s.finish(&mut out);
    }
    out
}

/// The Debian major release named by an installed `base-files` package
/// (`12.4+deb12u11` → `12`), if it is a Debian one.
pub fn debian_release(items: &[Item]) -> Option<String> {
    let bf = items.iter().find(|i| i.name == "base-files" && i.kind == ItemKind::Package)?;
    let major: String = bf.version.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &bf.version[major.len()..];
    // Ubuntu's base-files is "13ubuntu10"; Debian's is "12.4+deb12u11" or "13.8".
    if major.is_empty() || rest.contains("ubuntu") {
        return None;
    }
    Some(major)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Package: libssl3\nStatus: install ok installed\nPriority: optional\n\
Architecture: amd64\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2+b1\n\
Description: Secure Sockets Layer toolkit\n multi-line description\n .\n more\n\n\
Package: old-thing\nStatus: deinstall ok config-files\nVersion: 1.0-1\n\n\
Package: xz-utils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.4.1-1\n\n\
Package: liblzma5\nStatus: install ok installed\nSource: xz-utils\nVersion: 5.4.1-1\n";

    #[test]
    fn reads_installed_packages_with_their_source() {
        let s = parse_status(SAMPLE);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let names: Vec<_> = s.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "xz-utils", "liblzma5"], "config-files packages are not installed");
        let ssl = &s.items[0];
        assert_eq!(ssl.source(), "openssl");
        assert_eq!(ssl.source_ver(), "3.0.11-1~deb12u2", "the binNMU's source version is kept");
        assert_eq!(ssl.version, "3.0.11-1~deb12u2+b1");
        assert_eq!(s.items[1].source(), "xz-utils");
        assert_eq!(s.items[1].source_name, None);
        assert_eq!(s.items[2].source(), "xz-utils");
        assert_eq!(s.items[2].source_ver(), "5.4.1-1");
    }

    #[test]
    fn a_corrupt_stanza_is_reported_by_line_and_the_rest_survives() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1\n\n\
Package: b\nthis line is garbage\nStatus: install ok installed\nVersion: 2\n\n\
Package: c\nStatus: install ok installed\n\n\
Package: d\nStatus: install ok installed\nVersion: 4\n";
        let s = parse_status(text);
        let names: Vec<_> = s.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "d"]);
        assert_eq!(s.errors.len(), 2);
        assert!(
            matches!(&s.errors[0], InventoryError::Line { line: 6, reason } if reason.contains("garbage")),
            "{:?}",
            s.errors[0]
        );
        assert!(
            matches!(&s.errors[1], InventoryError::Line { line: 10, reason } if reason.contains("no Version")),
            "{:?}",
            s.errors[1]
        );
    }

    #[test]
    fn release_comes_from_base_files() {
        let mut bf = Item::new(ItemKind::Package, "base-files", "12.4+deb12u11");
        assert_eq!(debian_release(std::slice::from_ref(&bf)).as_deref(), Some("12"));
        bf.version = "13ubuntu10".into();
        assert_eq!(debian_release(&[bf]), None);
    }
}
