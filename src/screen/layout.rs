//! Layout arithmetic: the size tier (fonts, margins) chosen from the screen size, and a column
//! that hands out non-overlapping horizontal bands from its top and bottom.

use embedded_graphics::mono_font::MonoFont;
use embedded_graphics::mono_font::iso_8859_1::{FONT_6X10, FONT_9X15, FONT_10X20};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

/// Fonts and spacing for one range of screen sizes.
pub(crate) struct Tier {
    /// Everything but the decision.
    pub body: &'static MonoFont<'static>,
    /// The decision, drawn magnified by up to `max_scale`.
    pub big: &'static MonoFont<'static>,
    /// Largest magnification of `big`.
    pub max_scale: u32,
    /// Space between the screen edge and the content.
    pub margin: u32,
    /// Space between sections.
    pub gap: u32,
    /// Extra space between lines of body text.
    pub leading: u32,
    /// Width of the DEMO frame drawn inside the margin.
    pub frame: u32,
}

impl Tier {
    /// Height of one line of body text.
    pub fn line_height(&self) -> u32 {
        self.body.character_size.height + self.leading
    }
}

/// Screens at least 480 px in both directions (800×480, 480×800).
const LARGE: Tier =
    Tier { body: &FONT_10X20, big: &FONT_10X20, max_scale: 4, margin: 12, gap: 8, leading: 2, frame: 4 };
/// Screens at least 320 px in both directions (480×320, 320×480).
const MEDIUM: Tier = Tier { body: &FONT_9X15, big: &FONT_10X20, max_scale: 3, margin: 8, gap: 6, leading: 2, frame: 3 };
/// Everything smaller (320×240, 240×320, down to the minimum 240×240).
const SMALL: Tier = Tier { body: &FONT_6X10, big: &FONT_10X20, max_scale: 2, margin: 6, gap: 4, leading: 2, frame: 2 };

/// The tier for a screen of `size`: by its shorter side, so that portrait and landscape
/// screens of the same panel use the same fonts.
pub(crate) fn tier_for(size: Size) -> &'static Tier {
    let short = size.width.min(size.height);
    if short >= 480 {
        &LARGE
    } else if short >= 320 {
        &MEDIUM
    } else {
        &SMALL
    }
}

/// A vertical strip of the screen from which sections take bands, from the top down or from the
/// bottom up; bands never overlap and never leave the strip.
pub(crate) struct Column {
    x: i32,
    width: u32,
    top: i32,
    bottom: i32,
    gap: u32,
    gaps: u32,
}

impl Column {
    /// The whole of `area`, with `gap` pixels between sections.
    pub fn new(area: Rectangle, gap: u32) -> Column {
        let top = area.top_left.y;
        Column { x: area.top_left.x, width: area.size.width, top, bottom: top + area.size.height as i32, gap, gaps: 0 }
    }

    /// Width of the column.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height not yet taken.
    pub fn remaining(&self) -> u32 {
        (self.bottom - self.top).max(0) as u32
    }

    /// Takes a band of `height` from the top, or `None` (taking nothing) if it does not fit.
    pub fn take_top(&mut self, height: u32) -> Option<Rectangle> {
        if height > self.remaining() {
            return None;
        }
        let band = Rectangle::new(Point::new(self.x, self.top), Size::new(self.width, height));
        self.top += height as i32;
        Some(band)
    }

    /// Takes a band of `height` from the bottom, or `None` (taking nothing) if it does not fit.
    pub fn take_bottom(&mut self, height: u32) -> Option<Rectangle> {
        if height > self.remaining() {
            return None;
        }
        self.bottom -= height as i32;
        Some(Rectangle::new(Point::new(self.x, self.bottom), Size::new(self.width, height)))
    }

    /// Leaves the gap between sections below a section taken from the top, as far as there is room.
    pub fn gap_top(&mut self) {
        self.top += self.gap.min(self.remaining()) as i32;
        self.gaps += 1;
    }

    /// Leaves the gap between sections above a section taken from the bottom.
    pub fn gap_bottom(&mut self) {
        self.bottom -= self.gap.min(self.remaining()) as i32;
        self.gaps += 1;
    }

    /// How many gaps between sections were left.
    pub fn gaps(&self) -> u32 {
        self.gaps
    }
}

/// `area` shrunk by `by` pixels on every side (empty, not negative, when too small).
pub(crate) fn inset(area: Rectangle, by: u32) -> Rectangle {
    let w = area.size.width.saturating_sub(2 * by);
    let h = area.size.height.saturating_sub(2 * by);
    Rectangle::new(area.top_left + Point::new(by as i32, by as i32), Size::new(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_by_short_side() {
        assert_eq!(tier_for(Size::new(320, 240)).margin, SMALL.margin);
        assert_eq!(tier_for(Size::new(240, 320)).margin, SMALL.margin);
        assert_eq!(tier_for(Size::new(480, 320)).margin, MEDIUM.margin);
        assert_eq!(tier_for(Size::new(320, 480)).margin, MEDIUM.margin);
        assert_eq!(tier_for(Size::new(800, 480)).margin, LARGE.margin);
        assert_eq!(tier_for(Size::new(480, 800)).margin, LARGE.margin);
    }

    #[test]
    fn column_bands_do_not_overlap() {
        let mut c = Column::new(Rectangle::new(Point::new(5, 10), Size::new(100, 50)), 30);
        assert_eq!(c.take_top(20), Some(Rectangle::new(Point::new(5, 10), Size::new(100, 20))));
        assert_eq!(c.take_bottom(10), Some(Rectangle::new(Point::new(5, 50), Size::new(100, 10))));
        assert_eq!(c.remaining(), 20);
        assert_eq!(c.take_top(21), None);
        c.gap_top();
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.gaps(), 1);
        assert_eq!(c.take_bottom(1), None);
        assert_eq!(c.take_top(0).map(|r| r.size.height), Some(0));
    }

    #[test]
    fn inset_never_negative() {
        let r = inset(Rectangle::new(Point::zero(), Size::new(10, 4)), 3);
        assert_eq!(r, Rectangle::new(Point::new(3, 3), Size::new(4, 0)));
    }
}
