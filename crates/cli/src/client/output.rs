//! Output helpers: a tiny aligned-table formatter, key/value blocks and JSON printing.
//! Writes ignore a closed stdout (`scaivault secrets list | head`).

use std::io::Write;

use serde_json::Value;

/// Writes `text` to stdout as is.
pub fn print_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes `text` and a newline to stdout.
pub fn println(text: &str) {
    let mut s = String::with_capacity(text.len() + 1);
    s.push_str(text);
    s.push('\n');
    print_raw(&s);
}

/// Pretty JSON on stdout.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println(&s),
        Err(_) => println(&value.to_string()),
    }
}

/// Makes a value safe for one table cell: control characters (newlines, ANSI escapes)
/// are shown escaped so that they cannot break the layout or drive the terminal.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as a human-readable cell: strings unquoted, null as `-`,
/// arrays of strings comma-separated, everything else compact JSON.
pub fn value_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => cell(s),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            if items.is_empty() {
                "-".to_owned()
            } else {
                cell(
                    &items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
        }
        Some(other) => cell(&other.to_string()),
    }
}

/// Columns separated by two spaces, padded to the widest cell; the last column is not padded.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.as_ref().to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.headers.len()))
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; ncols];
        for r in std::iter::once(&self.headers).chain(self.rows.iter()) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let render_row = |out: &mut String, r: &[String]| {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let c = r.get(i).map(String::as_str).unwrap_or("");
                line.push_str(c);
                if i + 1 < ncols {
                    let pad = width.saturating_sub(c.chars().count()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        if !self.headers.is_empty() {
            render_row(&mut out, &self.headers);
        }
        for r in &self.rows {
            render_row(&mut out, r);
        }
        out
    }

    pub fn print(&self) {
        print_raw(&self.render());
    }
}

/// `key:  value` lines with aligned values.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = width - k.chars().count();
        out.push_str(k);
        out.push(':');
        out.extend(std::iter::repeat_n(' ', pad + 2));
        out.push_str(v);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns() {
        let mut t = Table::new(&["PATH", "VERSION"]);
        t.row(vec!["app/db/credentials".into(), "2".into()]);
        t.row(vec!["a".into(), "10".into()]);
        assert_eq!(
            t.render(),
            "PATH                VERSION\napp/db/credentials  2\na                   10\n"
        );
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a\nb\x1b[31m"), "a\\nb\\u{001b}[31m");
        assert_eq!(value_cell(Some(&json!(["a", "b"]))), "a,b");
        assert_eq!(value_cell(Some(&json!(null))), "-");
        assert_eq!(value_cell(Some(&json!({"x": 1}))), "{\"x\":1}");
    }

    #[test]
    fn key_value_block() {
        assert_eq!(
            key_values(&[("path", "a".into()), ("version", "3".into())]),
            "path:     a\nversion:  3\n"
        );
    }
}
