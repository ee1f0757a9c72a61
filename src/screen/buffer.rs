//! An in-memory RGB888 draw target: render the screen into it, then save it as PNG or send it
//! to a framebuffer.

use std::convert::Infallible;
use std::path::Path;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::error::{Error, ErrorKind, Result};

/// A `width`×`height` RGB image, 3 bytes per pixel, rows top to bottom without padding.
/// Pixels drawn outside it are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbBuffer {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbBuffer {
    /// Largest width or height accepted (no display is larger; bounds memory use).
    pub const MAX_SIDE: u32 = 8192;

    /// A black buffer. Fails for a zero side or one above [`RgbBuffer::MAX_SIDE`].
    pub fn new(width: u32, height: u32) -> Result<RgbBuffer> {
        if width == 0 || height == 0 || width > Self::MAX_SIDE || height > Self::MAX_SIDE {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("screen buffer {width}x{height}: each side must be 1 to {}", Self::MAX_SIDE),
            ));
        }
        Ok(RgbBuffer { width, height, data: vec![0; width as usize * height as usize * 3] })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels as RGB bytes, row by row.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The pixel at (`x`, `y`), or `None` outside the buffer.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb888> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = self.index(x, y);
        Some(Rgb888::new(self.data[i], self.data[i + 1], self.data[i + 2]))
    }

    fn index(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * 3
    }

    /// A copy as an `image` crate RGB image.
    pub fn to_rgb_image(&self) -> image::RgbImage {
        match image::RgbImage::from_raw(self.width, self.height, self.data.clone()) {
            Some(img) => img,
            // `data` always holds exactly width × height × 3 bytes (see `new`).
            None => unreachable!("RgbBuffer data length matches its size"),
        }
    }

    /// Saves the buffer as a PNG at `path`, atomically ([`crate::fsutil::write_atomically_with`]):
    /// a reader never sees a partial file.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomically_with(path, &crate::fsutil::temp_path(path), |out| {
            PngEncoder::new_with_quality(out, CompressionType::Best, FilterType::Adaptive)
                .write_image(&self.data, self.width, self.height, image::ExtendedColorType::Rgb8)
                .map_err(|e| Error::new(ErrorKind::Io, format!("{}: cannot write PNG: {e}", path.display())))
        })
    }
}

impl OriginDimensions for RgbBuffer {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for RgbBuffer {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> std::result::Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = self.index(p.x as u32, p.y as u32);
                self.data[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb888) -> std::result::Result<(), Infallible> {
        let area = area.intersection(&self.bounding_box());
        let Some(bottom_right) = area.bottom_right() else { return Ok(()) };
        let rgb = [color.r(), color.g(), color.b()];
        for y in area.top_left.y..=bottom_right.y {
            let start = self.index(area.top_left.x as u32, y as u32);
            let end = self.index(bottom_right.x as u32, y as u32) + 3;
            for px in self.data[start..end].chunks_exact_mut(3) {
                px.copy_from_slice(&rgb);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::primitives::PrimitiveStyle;

    #[test]
    fn fill_is_clipped_to_the_buffer() -> Result<()> {
        let mut b = RgbBuffer::new(4, 3)?;
        let c = Rgb888::new(1, 2, 3);
        let _ =
            Rectangle::new(Point::new(2, -5), Size::new(10, 7)).into_styled(PrimitiveStyle::with_fill(c)).draw(&mut b);
        for y in 0..3 {
            for x in 0..4 {
                assert_eq!(b.pixel(x, y) == Some(c), x >= 2 && y < 2, "{x},{y}");
            }
        }
        let _ = b.draw_iter([Pixel(Point::new(-1, 0), c), Pixel(Point::new(4, 0), c), Pixel(Point::new(0, 3), c)]);
        assert_eq!(b.pixel(0, 0), Some(Rgb888::new(0, 0, 0)));
        assert_eq!(b.pixel(4, 0), None);
        Ok(())
    }

    #[test]
    fn sizes_are_checked() {
        assert!(RgbBuffer::new(0, 10).is_err());
        assert!(RgbBuffer::new(10, RgbBuffer::MAX_SIDE + 1).is_err());
    }

    #[test]
    fn png_round_trip() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("panderm-screen-buffer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut b = RgbBuffer::new(5, 2)?;
        let _ = b.draw_iter([Pixel(Point::new(4, 1), Rgb888::new(9, 8, 7))]);
        let path = dir.join("round.png");
        b.save_png(&path)?;
        let back = image::open(&path).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?.to_rgb8();
        assert_eq!(back, b.to_rgb_image());
        let left: Vec<_> = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.collect();
        assert_eq!(left.len(), 1, "temporary file left behind");
        let err = b.save_png(&dir.join("missing").join("x.png")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
