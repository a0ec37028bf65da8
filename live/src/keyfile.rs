//! The text format of key material files (identity, trust anchor, certificate): one
//! `field: <hex digits>` per line, `#` comments. Text, so that an operator can read a key id
//! off a file and paste a public key into a config.

/// One field's bytes and the line it was on, for error messages.
pub struct Field {
    pub line: usize,
    pub bytes: Vec<u8>,
}

/// Reads the fields `names` from `text`; any other field is an error. Errors are
/// (line, problem) for the caller to put the file's path to.
pub fn parse<const N: usize>(text: &str, names: [&str; N]) -> Result<[Option<Field>; N], (usize, String)> {
    let mut out: [Option<Field>; N] = std::array::from_fn(|_| None);
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err((n, "expected `field: value`".into()));
        };
        let field = field.trim();
        let Some(slot) = names.iter().position(|&f| f == field) else {
            return Err((n, format!("unknown field `{field}` (expected {})", names.join(", "))));
        };
        let bytes = unhex(value.trim()).ok_or_else(|| (n, format!("`{field}` is not hex digits")))?;
        out[slot] = Some(Field { line: n, bytes });
    }
    Ok(out)
}

/// The line to blame for a missing field: the last one.
pub fn last_line(text: &str) -> usize {
    text.lines().count().max(1)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}
