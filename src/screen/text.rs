//! Text that fits: truncation with an ellipsis, word wrapping, and drawing a fitted line with
//! a monospace font. Widths are counted in characters: every character is one glyph cell.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

/// One line of text cut to a width: the characters to draw, then (when `ellipsis`) one more
/// cell holding an ellipsis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fitted {
    /// The characters drawn, already cleaned of control characters.
    pub text: String,
    /// The text was cut: an ellipsis follows in one extra cell.
    pub ellipsis: bool,
}

impl Fitted {
    /// Width in character cells, the ellipsis included.
    pub fn cells(&self) -> usize {
        self.text.chars().count() + usize::from(self.ellipsis)
    }
}

/// The characters of `s` as drawn: control characters (newlines, tabs, …) become spaces so that
/// a label can never start a new line, and surrounding spaces are trimmed.
fn clean(s: &str) -> Vec<char> {
    let chars: Vec<char> = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let start = chars.iter().position(|c| !c.is_whitespace()).unwrap_or(chars.len());
    let end = chars.iter().rposition(|c| !c.is_whitespace()).map_or(start, |i| i + 1);
    chars[start..end].to_vec()
}

/// `s` cut to at most `max_cells` cells: when it is longer, its first `max_cells - 1` characters
/// followed by an ellipsis.
pub(crate) fn fit(s: &str, max_cells: usize) -> Fitted {
    let chars = clean(s);
    if chars.len() <= max_cells {
        return Fitted { text: chars.into_iter().collect(), ellipsis: false };
    }
    if max_cells == 0 {
        return Fitted { text: String::new(), ellipsis: false };
    }
    let kept: String = chars[..max_cells - 1].iter().collect();
    Fitted { text: kept.trim_end().to_string(), ellipsis: true }
}

/// `s` wrapped at spaces into at most `max_lines` lines of at most `max_cells` cells; words longer
/// than a line are broken; when the text needs more lines, the last one ends with an ellipsis.
pub(crate) fn wrap(s: &str, max_cells: usize, max_lines: usize) -> Vec<Fitted> {
    if max_cells == 0 || max_lines == 0 {
        return Vec::new();
    }
    let cleaned: String = clean(s).into_iter().collect();
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_len = 0;
    for word in cleaned.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        // Break words that cannot fit on a line of their own.
        while word.len() > max_cells {
            if line_len > 0 {
                lines.push(std::mem::take(&mut line));
            }
            let rest = word.split_off(max_cells);
            lines.push(word.into_iter().collect());
            word = rest;
            line_len = 0;
        }
        if word.is_empty() {
            continue;
        }
        let needed = if line_len == 0 { word.len() } else { line_len + 1 + word.len() };
        if needed > max_cells {
            lines.push(std::mem::take(&mut line));
            line_len = 0;
        }
        if line_len > 0 {
            line.push(' ');
            line_len += 1;
        }
        line.extend(word.iter());
        line_len += word.len();
    }
    if line_len > 0 {
        lines.push(line);
    }
    if lines.len() > max_lines {
        // The last kept line is longer than a line once the rest is appended: `fit` cuts it.
        let last = lines[max_lines - 1..].join(" ");
        lines.truncate(max_lines - 1);
        let mut out: Vec<Fitted> = lines.iter().map(|l| fit(l, max_cells)).collect();
        out.push(fit(&last, max_cells));
        return out;
    }
    lines.iter().map(|l| fit(l, max_cells)).collect()
}

/// Horizontal advance of one character cell.
pub(crate) fn cell_width(font: &MonoFont<'_>) -> u32 {
    font.character_size.width + font.character_spacing
}

/// Pixel width of `cells` character cells.
pub(crate) fn text_width(font: &MonoFont<'_>, cells: usize) -> u32 {
    (cells as u32 * cell_width(font)).saturating_sub(if cells > 0 { font.character_spacing } else { 0 })
}

/// How many character cells fit in `width` pixels.
pub(crate) fn cells_in(font: &MonoFont<'_>, width: u32) -> usize {
    ((width + font.character_spacing) / cell_width(font).max(1)) as usize
}

/// Draws `line` with its top-left corner at `at`; returns the pixel width drawn.
pub(crate) fn draw_line<D>(
    target: &mut D,
    line: &Fitted,
    at: Point,
    font: &MonoFont<'_>,
    color: Rgb888,
) -> Result<u32, D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let style = MonoTextStyle::new(font, color);
    Text::with_baseline(&line.text, at, style, Baseline::Top).draw(target)?;
    if line.ellipsis {
        let n = line.text.chars().count() as i32;
        draw_ellipsis(target, at + Point::new(n * cell_width(font) as i32, 0), font, color)?;
    }
    Ok(text_width(font, line.cells()))
}

/// Three dots on the baseline of one character cell (the fonts have no ellipsis glyph).
fn draw_ellipsis<D>(target: &mut D, cell: Point, font: &MonoFont<'_>, color: Rgb888) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let w = font.character_size.width;
    let dot = (w / 5).max(1);
    let space = w.saturating_sub(3 * dot) / 3;
    let y = cell.y + font.baseline as i32 + 1 - dot as i32;
    for i in 0..3 {
        let x = cell.x + (space / 2 + i * (dot + space)) as i32;
        Rectangle::new(Point::new(x, y), Size::new_equal(dot))
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str, ellipsis: bool) -> Fitted {
        Fitted { text: text.into(), ellipsis }
    }

    #[test]
    fn fit_cuts_with_ellipsis() {
        assert_eq!(fit("melanoma", 8), f("melanoma", false));
        assert_eq!(fit("melanoma", 5), f("mela", true));
        assert_eq!(fit("melanoma", 5).cells(), 5);
        assert_eq!(fit("ab cd", 4), f("ab", true));
        assert_eq!(fit("x", 0), f("", false));
        assert_eq!(fit(" a\nb\t", 10), f("a b", false));
        assert_eq!(fit("naïve", 5), f("naïve", false));
    }

    #[test]
    fn wrap_by_words() {
        assert_eq!(
            wrap("Not a diagnosis - decision support only", 24, 2),
            vec![f("Not a diagnosis -", false), f("decision support only", false)]
        );
        assert_eq!(wrap("one two three four", 9, 2), vec![f("one two", false), f("three fo", true)]);
        assert_eq!(wrap("abcdefghij", 4, 3), vec![f("abcd", false), f("efgh", false), f("ij", false)]);
        assert_eq!(wrap("abcdefghij", 4, 2), vec![f("abcd", false), f("efg", true)]);
        assert_eq!(wrap("  ", 4, 2), Vec::<Fitted>::new());
        for lines in [1, 2, 3] {
            for width in 1..12 {
                for l in wrap("a bb ccc dddd eeeee ffffff", width, lines) {
                    assert!(l.cells() <= width, "{l:?} {width}");
                }
            }
        }
    }

    #[test]
    fn widths() {
        use embedded_graphics::mono_font::iso_8859_1::FONT_6X10;
        assert_eq!(text_width(&FONT_6X10, 4), 24);
        assert_eq!(cells_in(&FONT_6X10, 25), 4);
    }
}
