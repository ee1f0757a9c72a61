//! `results.csv`: one row per image, RFC 4180 quoting.

use super::{BatchRow, RowStatus};

/// Quotes one CSV field when it needs it (a comma, a double quote, a line break, or leading or
/// trailing white space); inner double quotes are doubled.
pub fn field(value: &str) -> String {
    let needs = value.contains([',', '"', '\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace);
    if needs { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

fn push_record(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
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
/// result for a head leaves its three cells empty.
pub fn render(rows: &[&BatchRow], heads: &[String]) -> String {
    let mut out = String::new();
    push_record(&mut out, &header(heads));
    for r in rows {
        let mut f = vec![r.file.clone(), r.sha256.clone(), r.status.as_str().to_owned(), r.bundle.clone()];
        for name in heads {
            match r.heads.iter().find(|h| &h.name == name) {
                Some(h) => {
                    f.push(h.label.clone());
                    f.push(format!("{:.4}", h.score));
                    f.push(h.top_k_text());
                }
                None => f.extend([String::new(), String::new(), String::new()]),
            }
        }
        f.push(r.warnings.join("; "));
        f.push(r.abstain.clone().unwrap_or_default());
        f.push(r.total_ms.filter(|_| r.status == RowStatus::Ok).map(|t| format!("{t:.1}")).unwrap_or_default());
        f.push(r.error.clone().unwrap_or_default());
        f.push(r.processed_at.clone());
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
}
