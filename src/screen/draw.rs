//! Drawing the result screen, section by section, onto any RGB888 draw target. Sections take
//! bands from a [`Column`], so they never overlap; text is cut to its band's width.

use std::convert::Infallible;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    CornerRadii, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle, StrokeAlignment,
};

use super::layout::{Column, Tier, inset, tier_for};
use super::magnify::Magnified;
use super::palette;
use super::text::{Fitted, cell_width, cells_in, draw_line, fit, text_width, wrap};
use super::{DIFFERENTIAL_ROWS, DISCLAIMER, Differential, PrimaryDecision, ScreenReport};

/// [`DISCLAIMER`] broken into two lines, for screens too narrow for one.
const DISCLAIMER_LINES: [&str; 2] = ["Not a diagnosis -", "decision support only"];
/// Lines of the abstention reason at most.
const REASON_LINES: usize = 3;
/// Warning lines kept free for warnings before the differential takes the rest.
const RESERVED_WARNING_LINES: usize = 2;

/// Draws the whole screen; see [`super::render`].
pub(crate) fn draw_screen<D>(report: &ScreenReport<'_>, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let area = target.bounding_box();
    let tier = tier_for(area.size);
    // A dry run measures the height left over; tall screens spread it between the sections
    // (up to a line each) instead of leaving it all at the bottom.
    let spare = match sections(report, &mut Probe(area), area, tier, tier.gap) {
        Ok(col) => col,
        Err(never) => match never {},
    };
    let extra = (spare.remaining() / (spare.gaps() + 1)).min(tier.line_height());

    let mut clipped = target.clipped(&area);
    let t = &mut clipped;
    t.fill_solid(&area, palette::BACKGROUND)?;
    if report.demo {
        let frame = PrimitiveStyleBuilder::new()
            .stroke_color(palette::DEMO)
            .stroke_width(tier.frame)
            .stroke_alignment(StrokeAlignment::Inside)
            .build();
        area.into_styled(frame).draw(t)?;
    }
    sections(report, t, area, tier, tier.gap + extra).map(|_| ())
}

/// A target that draws nothing: the dry run's.
struct Probe(Rectangle);

impl Dimensions for Probe {
    fn bounding_box(&self) -> Rectangle {
        self.0
    }
}

impl DrawTarget for Probe {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, _: I) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Draws every section inside the margins of `area`, `gap` pixels apart; returns the column
/// with what is left of it.
fn sections<D>(report: &ScreenReport<'_>, t: &mut D, area: Rectangle, tier: &Tier, gap: u32) -> Result<Column, D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let mut column = Column::new(inset(area, tier.margin), gap);
    let col = &mut column;
    footer(t, tier, col)?;
    header(t, tier, col, report.model, report.demo)?;

    if let Some(reason) = report.abstain {
        banner(t, tier, col, "CANNOT ASSESS", (palette::ABSTAIN, palette::INK), true)?;
        let reason = format!("Reason: {reason}");
        let spare = col.remaining() / tier.line_height();
        let reserved = report.warnings.len().min(RESERVED_WARNING_LINES) as u32;
        let lines = REASON_LINES.min(spare.saturating_sub(reserved).max(1) as usize);
        paragraph(t, tier, col, &reason, lines, palette::TEXT)?;
    } else {
        match &report.primary {
            Some(p) => {
                let colors =
                    if p.positive { (palette::POSITIVE, palette::INK) } else { (palette::NEGATIVE, palette::TEXT) };
                // Portrait screens have the height for a decision on two lines.
                banner(t, tier, col, p.label, colors, area.size.height > area.size.width)?;
                score(t, tier, col, p)?;
            }
            None if report.differential.is_none() => {
                banner(t, tier, col, "NO RESULT", (palette::ABSTAIN, palette::INK), true)?;
            }
            None => {}
        }
        if let Some(d) = &report.differential {
            let reserved = report.warnings.len().min(RESERVED_WARNING_LINES) as u32 * tier.line_height();
            differential(t, tier, col, d, col.remaining().saturating_sub(reserved))?;
        }
    }
    warnings(t, tier, col, report.warnings)?;
    Ok(column)
}

/// Height of `lines` lines of body text.
fn lines_height(tier: &Tier, lines: usize) -> u32 {
    lines as u32 * tier.line_height()
}

/// Draws `text` cut to `width` at `at`, with the body font.
fn body_text<D>(t: &mut D, tier: &Tier, text: &str, at: Point, width: u32, color: Rgb888) -> Result<u32, D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    draw_line(t, &fit(text, cells_in(tier.body, width)), at, tier.body, color)
}

fn fill<D>(t: &mut D, area: Rectangle, color: Rgb888) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    area.into_styled(PrimitiveStyle::with_fill(color)).draw(t)
}

/// The disclaimer at the bottom, under a separator line. Always drawn first, so that it has
/// room on every screen.
fn footer<D>(t: &mut D, tier: &Tier, col: &mut Column) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let cells = cells_in(tier.body, col.width());
    let lines: Vec<Fitted> = if DISCLAIMER.len() <= cells {
        vec![fit(DISCLAIMER, cells)]
    } else {
        DISCLAIMER_LINES.iter().map(|line| fit(line, cells)).collect()
    };
    let Some(band) = col.take_bottom(1 + tier.gap + lines_height(tier, lines.len())) else { return Ok(()) };
    fill(t, Rectangle::new(band.top_left, Size::new(band.size.width, 1)), palette::TRACK)?;
    let top = band.top_left + Point::new(0, 1 + tier.gap as i32);
    for (i, line) in lines.iter().enumerate() {
        draw_line(t, line, top + Point::new(0, (i as u32 * tier.line_height()) as i32), tier.body, palette::TEXT)?;
    }
    col.gap_bottom();
    Ok(())
}

/// The model name on the left; for demo bundles, a DEMO tag on the right.
fn header<D>(t: &mut D, tier: &Tier, col: &mut Column, model: &str, demo: bool) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let pad = 2;
    let Some(band) = col.take_top(tier.body.character_size.height + 2 * pad) else { return Ok(()) };
    let cell = cell_width(tier.body);
    let mut model_width = band.size.width;
    if demo {
        let tag = Fitted { text: "DEMO".into(), ellipsis: false };
        let tag_width = text_width(tier.body, tag.cells()) + 2 * cell;
        let x = band.top_left.x + band.size.width.saturating_sub(tag_width) as i32;
        fill(t, Rectangle::new(Point::new(x, band.top_left.y), Size::new(tag_width, band.size.height)), palette::DEMO)?;
        draw_line(t, &tag, Point::new(x + cell as i32, band.top_left.y + pad as i32), tier.body, palette::INK)?;
        model_width = model_width.saturating_sub(tag_width + cell);
    }
    body_text(t, tier, model, band.top_left + Point::new(0, pad as i32), model_width, palette::DIM)?;
    col.gap_top();
    Ok(())
}

/// The decision in large words, centred on a coloured band: magnified as much as the width
/// allows (up to the tier's maximum), on one line or, where `two_lines` and the text has a space
/// to break at, two lines if that allows a larger magnification; cut with an ellipsis only when
/// even 1× on one line is too wide.
fn banner<D>(
    t: &mut D,
    tier: &Tier,
    col: &mut Column,
    text: &str,
    (color, ink): (Rgb888, Rgb888),
    two_lines: bool,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let pad = tier.gap;
    let big = tier.big;
    let inner_width = col.width().saturating_sub(2 * pad);
    let whole = fit(text, usize::MAX);
    let natural = text_width(big, whole.cells());
    let mut chosen = None;
    for scale in (1..=tier.max_scale).rev() {
        if natural * scale <= inner_width {
            chosen = Some((scale, vec![whole.clone()]));
            break;
        }
        if two_lines {
            let lines = wrap(text, cells_in(big, inner_width / scale), 2);
            // Only a break at a space: never a word cut in two.
            if lines.len() == 2 && format!("{} {}", lines[0].text, lines[1].text) == whole.text {
                chosen = Some((scale, lines));
                break;
            }
        }
    }
    let (scale, lines) = chosen.unwrap_or_else(|| (1, vec![fit(text, cells_in(big, inner_width))]));
    let line_height = big.character_size.height * scale;
    let Some(band) = col.take_top(line_height * lines.len() as u32 + 2 * pad) else { return Ok(()) };
    RoundedRectangle::new(band, CornerRadii::new(Size::new_equal(pad)))
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(t)?;
    for (i, line) in lines.iter().enumerate() {
        let width = text_width(big, line.cells());
        let x = band.size.width.saturating_sub(width * scale) / 2;
        let origin = band.top_left + Point::new(x as i32, (pad + i as u32 * line_height) as i32);
        let mut magnified = Magnified::new(t, origin, scale, Size::new(width, big.character_size.height));
        draw_line(&mut magnified, line, Point::zero(), big, ink)?;
    }
    col.gap_top();
    Ok(())
}

/// Score and threshold as text: two decimals, or three where two would print them equal.
fn score_texts(score: f32, threshold: f64) -> (String, String) {
    if !score.is_finite() {
        return ("n/a".into(), format!("{threshold:.2}"));
    }
    let score = f64::from(score).clamp(0.0, 1.0);
    let two = (format!("{score:.2}"), format!("{threshold:.2}"));
    if two.0 != two.1 { two } else { (format!("{score:.3}"), format!("{threshold:.3}")) }
}

/// `fraction` of `length` pixels, rounded; NaN counts as 0.
fn portion(fraction: f64, length: u32) -> u32 {
    let f = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    (f * f64::from(length)).round() as u32
}

/// The primary head's score: its name, a bar filled to the score in the decision colour with a
/// tick at the threshold, the score as a number, and the threshold's value under the tick.
fn score<D>(t: &mut D, tier: &Tier, col: &mut Column, p: &PrimaryDecision<'_>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let body = tier.body;
    let line_h = tier.line_height();
    let char_h = body.character_size.height;
    let overhang = (char_h / 4).max(2);
    let row_h = char_h + 2 * overhang;
    let Some(band) = col.take_top(line_h + row_h + line_h) else { return Ok(()) };
    let (x, y, width) = (band.top_left.x, band.top_left.y, band.size.width);
    body_text(t, tier, &format!("{} score", p.head), band.top_left, width, palette::DIM)?;

    let (score_text, threshold_text) = score_texts(p.score, p.threshold);
    let cell = cell_width(body);
    let number_width = text_width(body, score_text.chars().count());
    let bar_width = width.saturating_sub(number_width + cell).max(1);
    let bar_y = y + (line_h + overhang) as i32;
    let bar = Rectangle::new(Point::new(x, bar_y), Size::new(bar_width, char_h));
    fill(t, bar, palette::TRACK)?;
    let color = if p.positive { palette::POSITIVE } else { palette::NEGATIVE };
    fill(t, Rectangle::new(bar.top_left, Size::new(portion(f64::from(p.score), bar_width), char_h)), color)?;
    let tick_width = (cell / 3).max(2);
    let tick_x = x + portion(p.threshold, bar_width.saturating_sub(tick_width)) as i32;
    fill(t, Rectangle::new(Point::new(tick_x, bar_y - overhang as i32), Size::new(tick_width, row_h)), palette::TEXT)?;
    body_text(
        t,
        tier,
        &score_text,
        Point::new(x + width.saturating_sub(number_width) as i32, bar_y),
        number_width,
        palette::TEXT,
    )?;

    // The threshold's value centred under the tick, kept within the bar.
    let label = fit(&format!("threshold {threshold_text}"), cells_in(body, bar_width));
    let label_width = text_width(body, label.cells());
    let centred = tick_x + tick_width as i32 / 2 - label_width as i32 / 2;
    let label_x = centred.clamp(x, x + (bar_width - label_width) as i32);
    draw_line(t, &label, Point::new(label_x, y + (line_h + row_h) as i32), body, palette::DIM)?;
    col.gap_top();
    Ok(())
}

/// A probability as a percentage: "37%", "<1%" for small non-zero values.
fn percent(p: f32) -> String {
    if !p.is_finite() {
        return "n/a".into();
    }
    let p = p.clamp(0.0, 1.0);
    let r = (p * 100.0).round();
    if r == 0.0 && p > 0.0 { "<1%".into() } else { format!("{r:.0}%") }
}

/// The differential's top classes within `max_height`: the head's name, then one row per class
/// with its label, a small neutral bar and the percentage. Rows that do not fit are left out.
fn differential<D>(
    t: &mut D,
    tier: &Tier,
    col: &mut Column,
    d: &Differential<'_>,
    max_height: u32,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let body = tier.body;
    let wanted = d.top.len().min(DIFFERENTIAL_ROWS);
    let rows = (1..=wanted).rev().find(|&r| lines_height(tier, r + 1) <= max_height).unwrap_or(0);
    if rows == 0 {
        return Ok(());
    }
    let Some(band) = col.take_top(lines_height(tier, rows + 1)) else { return Ok(()) };
    let (x, width) = (band.top_left.x, band.size.width);
    body_text(t, tier, d.head, band.top_left, width, palette::DIM)?;

    let cell = cell_width(body);
    let percent_width = text_width(body, 4);
    let bar_width = width / 5;
    let label_width = width.saturating_sub(bar_width + percent_width + 2 * cell);
    let char_h = body.character_size.height;
    let bar_h = (char_h * 6 / 10).max(4);
    for (i, entry) in d.top.iter().take(rows).enumerate() {
        let y = band.top_left.y + lines_height(tier, i + 1) as i32;
        body_text(t, tier, entry.label, Point::new(x, y), label_width, palette::TEXT)?;
        let bar_x = x + (label_width + cell) as i32;
        let bar = Rectangle::new(Point::new(bar_x, y + ((char_h - bar_h) / 2) as i32), Size::new(bar_width, bar_h));
        fill(t, bar, palette::TRACK)?;
        let filled = portion(f64::from(entry.probability), bar_width);
        fill(t, Rectangle::new(bar.top_left, Size::new(filled, bar_h)), palette::NEUTRAL_BAR)?;
        let pct = fit(&percent(entry.probability), 4);
        let at = Point::new(x + width.saturating_sub(text_width(body, pct.cells())) as i32, y);
        draw_line(t, &pct, at, body, palette::TEXT)?;
    }
    col.gap_top();
    Ok(())
}

/// A wrapped paragraph of at most `max_lines` lines.
fn paragraph<D>(
    t: &mut D,
    tier: &Tier,
    col: &mut Column,
    text: &str,
    max_lines: usize,
    color: Rgb888,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let lines = wrap(text, cells_in(tier.body, col.width()), max_lines);
    let Some(band) = col.take_top(lines_height(tier, lines.len())) else { return Ok(()) };
    for (i, line) in lines.iter().enumerate() {
        let at = band.top_left + Point::new(0, lines_height(tier, i) as i32);
        draw_line(t, line, at, tier.body, color)?;
    }
    col.gap_top();
    Ok(())
}

/// Quality warnings, one per line, in as many lines as are left; when some do not fit, the last
/// line counts them instead.
fn warnings<D>(t: &mut D, tier: &Tier, col: &mut Column, warnings: &[&str]) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    let lines = warnings.len().min((col.remaining() / tier.line_height()) as usize);
    let Some(band) = col.take_top(lines_height(tier, lines)) else { return Ok(()) };
    for i in 0..lines {
        let text = if i + 1 == lines && warnings.len() > lines {
            format!("+{} more warnings", warnings.len() - i)
        } else {
            format!("! {}", warnings[i])
        };
        let at = band.top_left + Point::new(0, lines_height(tier, i) as i32);
        body_text(t, tier, &text, at, band.size.width, palette::WARNING)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_texts_disambiguate() {
        assert_eq!(score_texts(0.734, 0.5), ("0.73".into(), "0.50".into()));
        assert_eq!(score_texts(0.444, 0.441), ("0.444".into(), "0.441".into()));
        assert_eq!(score_texts(0.431, 0.4351), ("0.43".into(), "0.44".into()));
        assert_eq!(score_texts(f32::NAN, 0.5).0, "n/a");
        assert_eq!(score_texts(1.5, 0.5).0, "1.00");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(0.374), "37%");
        assert_eq!(percent(0.001), "<1%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(f32::NAN), "n/a");
    }

    #[test]
    fn portions_are_clamped() {
        assert_eq!(portion(0.5, 101), 51);
        assert_eq!(portion(-1.0, 10), 0);
        assert_eq!(portion(2.0, 10), 10);
        assert_eq!(portion(f64::NAN, 10), 0);
    }
}
