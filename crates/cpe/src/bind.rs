//! The two bindings of a CPE name to text: the formatted string (CPE 2.3) and the URI
//! (CPE 2.2), in both directions.

use crate::{ATTRIBUTES, Cpe, CpeError, Token, Value};

fn err(msg: impl Into<String>) -> CpeError {
    CpeError(msg.into())
}

/// Splits a formatted string at the colons that are not escaped.
fn split_fs(s: &str) -> Result<Vec<&str>, CpeError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ':' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    if escaped {
        return Err(err("the name ends with a lone backslash"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn check_part(v: &Value) -> Result<(), CpeError> {
    match v {
        Value::Any | Value::Na => Ok(()),
        Value::Text(t) if matches!(t.as_slice(), [Token::Char('a' | 'o' | 'h')]) => Ok(()),
        _ => Err(err("part must be 'a' (application), 'o' (operating system), 'h' (hardware) or '*'")),
    }
}

/// Parses one attribute value of a formatted string.
fn fs_value(attr: &str, s: &str) -> Result<Value, CpeError> {
    match s {
        "" => return Err(err(format!("{attr} is empty: use '*' for any value or '-' for not applicable"))),
        "*" => return Ok(Value::Any),
        "-" => return Ok(Value::Na),
        _ => {}
    }
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err(err(format!("{attr} ends with a lone backslash")));
                };
                if next.is_whitespace() || next.is_control() {
                    return Err(err(format!("{attr} contains whitespace or a control character")));
                }
                tokens.push(Token::Char(next.to_ascii_lowercase()));
                i += 2;
                continue;
            }
            '*' => tokens.push(Token::AnyString),
            '?' => tokens.push(Token::AnyChar),
            c if c.is_whitespace() || c.is_control() => {
                return Err(err(format!("{attr} contains whitespace or a control character")));
            }
            c => tokens.push(Token::Char(c.to_ascii_lowercase())),
        }
        i += 1;
    }
    check_wildcards(attr, &tokens)?;
    Ok(Value::Text(tokens))
}

/// Wildcards may only lead or trail a value: `*` once at either end, `?` in runs at either
/// end (NISTIR 7695 §5.3.2).
fn check_wildcards(attr: &str, tokens: &[Token]) -> Result<(), CpeError> {
    let lead = tokens.iter().take_while(|t| !matches!(t, Token::Char(_))).count();
    let trail = tokens.iter().rev().take_while(|t| !matches!(t, Token::Char(_))).count();
    if lead == tokens.len() {
        // Only wildcards: "*" alone is ANY and handled before; "??" and "*?" are allowed
        // shapes only when they are one kind of run.
        let stars = tokens.iter().filter(|t| **t == Token::AnyString).count();
        if stars > 1 || (stars == 1 && tokens.len() > 1) {
            return Err(err(format!(
                "{attr} mixes '*' and '?' wildcards: quote them with a backslash if they are literal"
            )));
        }
        return Ok(());
    }
    let middle = &tokens[lead..tokens.len() - trail];
    if middle.iter().any(|t| !matches!(t, Token::Char(_))) {
        return Err(err(format!(
            "{attr} has an unquoted wildcard inside the value: wildcards may only lead or trail it; quote a literal '*' or '?' as '\\*' or '\\?'"
        )));
    }
    for run in [&tokens[..lead], &tokens[tokens.len() - trail..]] {
        let stars = run.iter().filter(|t| **t == Token::AnyString).count();
        if stars > 1 || (stars == 1 && run.len() > 1) {
            return Err(err(format!("{attr} has '*' next to another wildcard")));
        }
    }
    Ok(())
}

pub fn parse_fs(s: &str) -> Result<Cpe, CpeError> {
    let parts = split_fs(s)?;
    if parts.len() != 13 {
        return Err(err(format!(
            "a CPE 2.3 formatted string has 13 colon-separated components (cpe:2.3: and 11 attributes), this one has {}",
            parts.len()
        )));
    }
    let mut cpe = Cpe::default();
    for (i, raw) in parts[2..].iter().enumerate() {
        cpe.values[i] = fs_value(ATTRIBUTES[i], raw)?;
    }
    check_part(cpe.part())?;
    Ok(cpe)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Parses one URI component into a value (empty is ANY, a lone "-" is NA).
fn uri_value(attr: &str, s: &str) -> Result<Value, CpeError> {
    match s {
        "" => return Ok(Value::Any),
        "-" => return Ok(Value::Na),
        _ => {}
    }
    let bytes = s.as_bytes();
    let mut tokens = Vec::new();
    let mut decoded = Vec::new();
    let flush = |decoded: &mut Vec<u8>, tokens: &mut Vec<Token>| -> Result<(), CpeError> {
        if !decoded.is_empty() {
            let text = String::from_utf8(std::mem::take(decoded))
                .map_err(|_| err(format!("{attr} is not valid UTF-8 once percent-decoded")))?;
            tokens.extend(text.chars().map(|c| Token::Char(c.to_ascii_lowercase())));
        }
        Ok(())
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(h), Some(l)) =
                    (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
                else {
                    return Err(err(format!("{attr} has a malformed percent-encoding")));
                };
                match h * 16 + l {
                    1 => {
                        flush(&mut decoded, &mut tokens)?;
                        tokens.push(Token::AnyChar);
                    }
                    2 => {
                        flush(&mut decoded, &mut tokens)?;
                        tokens.push(Token::AnyString);
                    }
                    b => decoded.push(b),
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') => {
                decoded.push(b);
                i += 1;
            }
            b => {
                return Err(err(format!(
                    "{attr} has the character '{}', which a CPE URI must percent-encode",
                    b as char
                )));
            }
        }
    }
    flush(&mut decoded, &mut tokens)?;
    check_wildcards(attr, &tokens)?;
    Ok(Value::Text(tokens))
}

pub fn parse_uri(s: &str) -> Result<Cpe, CpeError> {
    let body = &s[5..];
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() > 7 {
        return Err(err(format!(
            "a CPE 2.2 URI has at most 7 components after 'cpe:/', this one has {}",
            parts.len()
        )));
    }
    let mut cpe = Cpe::default();
    for (i, raw) in parts.iter().enumerate() {
        if i == 5 && raw.starts_with('~') {
            // A packed edition: ~edition~sw_edition~target_sw~target_hw~other.
            let packed: Vec<&str> = raw[1..].split('~').collect();
            if packed.len() != 5 {
                return Err(err(
                    "a packed edition has five fields: ~edition~sw_edition~target_sw~target_hw~other",
                ));
            }
            for (j, f) in packed.iter().enumerate() {
                let slot = [5, 7, 8, 9, 10][j];
                cpe.values[slot] = uri_value(ATTRIBUTES[slot], f)?;
            }
        } else {
            if raw.contains('~') {
                return Err(err(format!(
                    "{} contains '~', which is only allowed in a packed edition",
                    ATTRIBUTES[i]
                )));
            }
            cpe.values[i] = uri_value(ATTRIBUTES[i], raw)?;
        }
    }
    check_part(cpe.part())?;
    Ok(cpe)
}

fn fs_text(v: &Value) -> String {
    match v {
        Value::Any => "*".into(),
        Value::Na => "-".into(),
        Value::Text(tokens) => {
            let mut out = String::new();
            for t in tokens {
                match t {
                    Token::AnyString => out.push('*'),
                    Token::AnyChar => out.push('?'),
                    Token::Char(c) if c.is_alphanumeric() || matches!(c, '_' | '.') => out.push(*c),
                    Token::Char('-') if tokens.len() > 1 => out.push('-'),
                    Token::Char(c) => {
                        out.push('\\');
                        out.push(*c);
                    }
                }
            }
            out
        }
    }
}

pub fn to_fs(cpe: &Cpe) -> String {
    let mut out = String::from("cpe:2.3");
    for v in &cpe.values {
        out.push(':');
        out.push_str(&fs_text(v));
    }
    out
}

fn uri_text(v: &Value) -> String {
    match v {
        Value::Any => String::new(),
        Value::Na => "-".into(),
        Value::Text(tokens) => {
            let mut out = String::new();
            for t in tokens {
                match t {
                    Token::AnyString => out.push_str("%02"),
                    Token::AnyChar => out.push_str("%01"),
                    Token::Char(c) if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') => out.push(*c),
                    Token::Char('-') if tokens.len() > 1 => out.push('-'),
                    Token::Char(c) => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            out.push_str(&format!("%{b:02x}"));
                        }
                    }
                }
            }
            out
        }
    }
}

pub fn to_uri(cpe: &Cpe) -> String {
    let v = &cpe.values;
    let mut parts: Vec<String> = v[..5].iter().map(uri_text).collect();
    let extended = v[7..].iter().any(|x| *x != Value::Any);
    parts.push(if extended {
        format!(
            "~{}~{}~{}~{}~{}",
            uri_text(&v[5]),
            uri_text(&v[7]),
            uri_text(&v[8]),
            uri_text(&v[9]),
            uri_text(&v[10])
        )
    } else {
        uri_text(&v[5])
    });
    parts.push(uri_text(&v[6]));
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    format!("cpe:/{}", parts.join(":"))
}
