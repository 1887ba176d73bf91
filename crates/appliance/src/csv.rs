//! The CSV import of appliances a technician reports by hand (no SNMP): an RFC 4180 reader
//! and the checks on every row. All or nothing: every problem in the file is reported with its
//! line, and no row is returned unless the whole file is good. Identifying the rows is
//! [`crate::identify_manual`]'s; storing them is the server's.

use std::collections::HashMap;
use std::fmt;

/// Largest CSV file accepted.
pub const MAX_CSV_BYTES: usize = 2 * 1024 * 1024;
/// Most appliance rows in one file.
pub const MAX_CSV_ROWS: usize = 5_000;

/// One appliance from a CSV import; fields trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualAppliance {
    pub name: String,
    pub vendor: String,
    pub model: String,
    pub firmware: String,
    pub site: String,
    pub address: Option<String>,
    pub serial: Option<String>,
    pub notes: Option<String>,
    /// The line of the file where the row starts (the header is line 1).
    pub line: usize,
}

/// One problem in a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    /// The line it is on (1 is the header); 0 for the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// Every problem found in a CSV file, in line order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CsvErrors(pub Vec<CsvError>);

impl fmt::Display for CsvErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Name,
    Vendor,
    Model,
    Firmware,
    Site,
    Address,
    Serial,
    Notes,
}

/// Header name, column, longest value in characters, required.
const COLUMNS: [(&str, Column, usize, bool); 8] = [
    ("name", Column::Name, 200, true),
    ("vendor", Column::Vendor, 200, true),
    ("model", Column::Model, 200, true),
    ("firmware", Column::Firmware, 200, true),
    ("site", Column::Site, 200, true),
    ("address", Column::Address, 500, false),
    ("serial", Column::Serial, 100, false),
    ("notes", Column::Notes, 2000, false),
];

/// One record: its fields and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits `text` into RFC 4180 records. Quoted fields may hold commas, doubled quotes and line
/// breaks; a quote inside an unquoted field, text after a closing quote and an unterminated
/// quote are errors. Blank lines are skipped.
fn records(text: &str, errors: &mut Vec<CsvError>) -> Vec<Record> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted_field = false;
        let mut bad = None;
        loop {
            let Some(c) = chars.next() else {
                fields.push(std::mem::take(&mut field));
                break;
            };
            match c {
                '"' if field.is_empty() && !quoted_field => {
                    quoted_field = true;
                    let mut closed = false;
                    while let Some(q) = chars.next() {
                        match q {
                            '"' if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\n' => {
                                line += 1;
                                field.push('\n');
                            }
                            q => field.push(q),
                        }
                    }
                    if !closed {
                        errors.push(CsvError {
                            line: start,
                            message: "a quoted field is never closed: add the closing '\"' (and double any '\"' inside it)"
                                .into(),
                        });
                        return out;
                    }
                    match chars.peek() {
                        None | Some(',' | '\n' | '\r') => {}
                        Some(_) => {
                            bad.get_or_insert("text follows a closing quote: quote the whole field and double any '\"' inside it");
                        }
                    }
                }
                '"' => {
                    bad.get_or_insert(
                        "a field has a '\"' inside it: quote the whole field and double the '\"' (\"\"\")",
                    );
                    field.push('"');
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                c => field.push(c),
            }
        }
        if let Some(message) = bad {
            errors.push(CsvError { line: start, message: message.into() });
            continue;
        }
        let blank = fields.len() == 1 && fields[0].trim().is_empty() && !quoted_field;
        if !blank {
            out.push(Record { line: start, fields });
        }
    }
    out
}

fn check_value(
    line: usize,
    header: &str,
    value: &str,
    max: usize,
    multiline: bool,
    errors: &mut Vec<CsvError>,
) {
    if value.chars().count() > max {
        errors.push(CsvError {
            line,
            message: format!(
                "{header} is longer than {max} characters ({}): shorten it",
                value.chars().count()
            ),
        });
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        errors.push(CsvError {
            line,
            message: format!(
                "{header} contains a control character{}: remove it",
                if multiline { "" } else { " (line breaks and tabs are only allowed in notes)" }
            ),
        });
    }
}

/// Parses a CSV file of manually reported appliances. The header row is required and names the
/// columns in any order, without case: `name`, `vendor`, `model`, `firmware`, `site`, and
/// optionally `address`, `serial`, `notes`.
pub fn parse_csv(text: &str) -> Result<Vec<ManualAppliance>, CsvErrors> {
    let fail = |message: String| Err(CsvErrors(vec![CsvError { line: 0, message }]));
    if text.len() > MAX_CSV_BYTES {
        return fail(format!(
            "the file is {} bytes; at most {MAX_CSV_BYTES} bytes (2 MB) are accepted: split it into several files",
            text.len()
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = Vec::new();
    let records = records(text, &mut errors);
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        errors.push(CsvError {
            line: 1,
            message: "the file has no header row: start it with name,vendor,model,firmware,site".into(),
        });
        errors.sort_by_key(|e| e.line);
        return Err(CsvErrors(errors));
    };
    if header.line != 1 {
        errors.push(CsvError {
            line: header.line,
            message: "the header row must be the first line: remove the blank lines before it".into(),
        });
    }
    let mut columns: Vec<Option<usize>> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, h) in header.fields.iter().enumerate() {
        let name = h.trim().to_ascii_lowercase();
        match COLUMNS.iter().position(|(n, ..)| *n == name) {
            Some(c) => {
                if seen.insert(COLUMNS[c].0, i).is_some() {
                    errors.push(CsvError {
                        line: header.line,
                        message: format!("the column '{}' appears twice: keep one", COLUMNS[c].0),
                    });
                }
                columns.push(Some(c));
            }
            None => {
                errors.push(CsvError {
                    line: header.line,
                    message: format!(
                        "unknown column '{}': the columns are name, vendor, model, firmware, site, address, serial, notes",
                        h.trim()
                    ),
                });
                columns.push(None);
            }
        }
    }
    for (name, _, _, required) in COLUMNS {
        if required && !seen.contains_key(name) {
            errors.push(CsvError {
                line: header.line,
                message: format!("the required column '{name}' is missing: add it to the header row"),
            });
        }
    }
    let rows: Vec<Record> = records.collect();
    if rows.len() > MAX_CSV_ROWS {
        return fail(format!(
            "the file has {} appliance rows; at most {MAX_CSV_ROWS} are accepted: split it into several files",
            rows.len()
        ));
    }
    if !errors.is_empty() && errors.iter().any(|e| e.line == header.line) {
        // Without a good header the rows cannot be read column by column.
        errors.sort_by_key(|e| e.line);
        return Err(CsvErrors(errors));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for row in rows {
        if row.fields.len() != header.fields.len() {
            errors.push(CsvError {
                line: row.line,
                message: format!(
                    "the row has {} fields but the header has {}: check for a missing or extra comma, or quote a field that contains one",
                    row.fields.len(),
                    header.fields.len()
                ),
            });
            continue;
        }
        let mut values: [Option<String>; 8] = Default::default();
        let before = errors.len();
        for (value, column) in row.fields.iter().zip(&columns) {
            let Some(c) = *column else { continue };
            let (header, kind, max, required) = COLUMNS[c];
            let value = value.trim();
            if value.is_empty() {
                if required {
                    errors
                        .push(CsvError { line: row.line, message: format!("{header} is empty: fill it in") });
                }
                continue;
            }
            check_value(row.line, header, value, max, kind == Column::Notes, &mut errors);
            values[c] = Some(value.to_owned());
        }
        if let Some(name) = &values[0] {
            let key = name.to_lowercase();
            if let Some(first) = names.get(&key) {
                errors.push(CsvError {
                    line: row.line,
                    message: format!(
                        "the name '{name}' is already used on line {first}: names must be unique in the file"
                    ),
                });
            } else {
                names.insert(key, row.line);
            }
        }
        if errors.len() > before {
            continue;
        }
        let [name, vendor, model, firmware, site, address, serial, notes] = values;
        let (Some(name), Some(vendor), Some(model), Some(firmware), Some(site)) =
            (name, vendor, model, firmware, site)
        else {
            // The required columns are present (checked with the header) and empty values are
            // reported above, so every required value is here.
            continue;
        };
        out.push(ManualAppliance {
            name,
            vendor,
            model,
            firmware,
            site,
            address,
            serial,
            notes,
            line: row.line,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(CsvErrors(errors))
    }
}
