//! A draw target that magnifies: each pixel drawn into it becomes a `scale`×`scale` square on
//! the target below. The largest bundled font is 10×20; the decision is drawn through this at
//! 2–4× so that it reads from arm's length.

use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

/// A `size` area (in magnified pixels) of `parent`, with its origin at `origin` (parent pixels).
pub(crate) struct Magnified<'a, D> {
    parent: &'a mut D,
    origin: Point,
    scale: u32,
    size: Size,
}

impl<'a, D: DrawTarget> Magnified<'a, D> {
    /// Magnifies by `scale` (at least 1) into the parent area starting at `origin`, `size`
    /// magnified pixels large.
    pub fn new(parent: &'a mut D, origin: Point, scale: u32, size: Size) -> Self {
        Magnified { parent, origin, scale: scale.max(1), size }
    }

    fn to_parent(&self, area: &Rectangle) -> Rectangle {
        Rectangle::new(self.origin + area.top_left * self.scale as i32, area.size * self.scale)
    }
}

impl<D: DrawTarget> Dimensions for Magnified<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        Rectangle::new(Point::zero(), self.size)
    }
}

impl<D: DrawTarget> DrawTarget for Magnified<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let bounds = self.bounding_box();
        for Pixel(p, color) in pixels {
            if bounds.contains(p) {
                let square = self.to_parent(&Rectangle::new(p, Size::new(1, 1)));
                self.parent.fill_solid(&square, color)?;
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let area = area.intersection(&self.bounding_box());
        if area.is_zero_sized() {
            return Ok(());
        }
        let scaled = self.to_parent(&area);
        self.parent.fill_solid(&scaled, color)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::RgbBuffer;
    use embedded_graphics::pixelcolor::Rgb888;

    #[test]
    fn one_pixel_becomes_a_square() -> crate::Result<()> {
        let mut buf = RgbBuffer::new(10, 10)?;
        let red = Rgb888::new(255, 0, 0);
        let mut m = Magnified::new(&mut buf, Point::new(2, 3), 3, Size::new(2, 2));
        let _ = m.draw_iter([Pixel(Point::new(1, 0), red), Pixel(Point::new(2, 0), red)]);
        for y in 0..10 {
            for x in 0..10 {
                let inside = (5..8).contains(&x) && (3..6).contains(&y);
                assert_eq!(buf.pixel(x, y) == Some(red), inside, "{x},{y}");
            }
        }
        Ok(())
    }
}
