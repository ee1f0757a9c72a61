//! `results.csv`: one row per image, RFC 4180 quoting, text cells neutralised against formula
//! (CSV) injection.
//!
//! File names come from whoever filled the folder (a USB stick) and labels from the bundle: a
//! file named `=HYPERLINK("http://…","x").jpg` would be a live formula when a clinician opens
//! the CSV in a spreadsheet. Following OWASP, every **text** cell whose first character is `=`,
//! `+`, `-`, `@`, a tab or a carriage return (or whose first non-blank character is one of the
//! first four) gets a leading `'`, which spreadsheets show as text and do not evaluate. The
//! numbers the tool writes itself (scores, times) are left as they are, so they stay numbers a
//! spreadsheet can sort and sum: they are formatted from finite values in 0..=1 or
//! non-negative times, so never start with a sign, and a negative number would still be a
//! number, not a formula.

use std::borrow::Cow;

use super::{BatchRow, RowStatus};

/// Quotes one CSV field when it needs it (a comma, a double quote, a line break, or leading or
/// trailing white space); inner double quotes are doubled.
pub fn field(value: &str) -> String {
    let needs = value.contains([',', '"', '\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace);
    if needs { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

/// A text cell made safe for spreadsheets: prefixed with `'` when a spreadsheet would read it
/// as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, or one of the
/// first four follows leading blanks). Other text is returned as it is.
pub fn neutralise(value: &str) -> Cow<'_, str> {
    let trigger = |c: char| matches!(c, '=' | '+' | '-' | '@');
    let first = value.trim_start_matches([' ', '\t', '\r', '\n']).chars().next();
    if value.starts_with(['\t', '\r']) || first.is_some_and(trigger) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// A CSV cell.
enum Cell {
    /// Text from files, the bundle or messages: neutralised, then quoted.
    Text(String),
    /// A number this module formatted: quoted only if needed, never prefixed.
    Number(String),
}

fn push_record(out: &mut String, cells: &[Cell]) {
    let line: Vec<String> = cells
        .iter()
        .map(|c| match c {
            Cell::Text(t) => field(&neutralise(t)),
            Cell::Number(n) => field(n),
        })
        .collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The header: `file, sha256, status, bundle`, then three columns per head
/// (`<head>_label`, `<head>_score`, `<head>_top_k`), then
/// `warnings, abstain, total_ms, error, processed_at`.
pub fn header(heads: &[String]) -> Vec<String> {
    let mut h: Vec<String> = ["file", "sha256", "status", "bundle"].map(String::from).to_vec();
    for name in heads {
        h.push(format!("{name}_label"));
        h.push(format!("{name}_score"));
        h.push(format!("{name}_top_k"));
    }
    h.extend(["warnings", "abstain", "total_ms", "error", "processed_at"].map(String::from));
    h
}

/// Renders the whole file. `heads` fixes the head columns (in that order); a row without a
/// result for a head leaves its three cells empty. Text cells are [`neutralise`]d.
pub fn render(rows: &[&BatchRow], heads: &[String]) -> String {
    let mut out = String::new();
    push_record(&mut out, &header(heads).into_iter().map(Cell::Text).collect::<Vec<_>>());
    for r in rows {
        let text = |s: &str| Cell::Text(s.to_owned());
        let mut f = vec![text(&r.file), text(&r.sha256), text(r.status.as_str()), text(&r.bundle)];
        for name in heads {
            match r.heads.iter().find(|h| &h.name == name) {
                Some(h) => {
                    f.push(text(&h.label));
                    f.push(Cell::Number(format!("{:.4}", h.score)));
                    f.push(Cell::Text(h.top_k_text()));
                }
                None => f.extend([text(""), text(""), text("")]),
            }
        }
        f.push(Cell::Text(r.warnings.join("; ")));
        f.push(text(r.abstain.as_deref().unwrap_or_default()));
        f.push(Cell::Number(
            r.total_ms.filter(|_| r.status == RowStatus::Ok).map(|t| format!("{t:.1}")).unwrap_or_default(),
        ));
        f.push(text(r.error.as_deref().unwrap_or_default()));
        f.push(text(&r.processed_at));
        push_record(&mut out, &f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(field("plain.jpg"), "plain.jpg");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(" padded"), "\" padded\"");
        assert_eq!(field("<&>"), "<&>");
    }

    #[test]
    fn formula_triggers_are_neutralised() {
        for (value, want) in [
            ("=HYPERLINK(\"http://x\",\"y\").jpg", "'=HYPERLINK(\"http://x\",\"y\").jpg"),
            ("+1.jpg", "'+1.jpg"),
            ("-1.jpg", "'-1.jpg"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx.jpg", "'\tx.jpg"),
            ("\rx.jpg", "'\rx.jpg"),
            ("  =x", "'  =x"),
            ("\n-x", "'\n-x"),
            ("a=b.jpg", "a=b.jpg"),
            ("IMG_0001.JPG", "IMG_0001.JPG"),
            ("", ""),
            (" x", " x"),
        ] {
            assert_eq!(neutralise(value), want, "{value:?}");
        }
        // Quoting still applies after the prefix.
        assert_eq!(field(&neutralise("=a,b")), "\"'=a,b\"");
    }
}
