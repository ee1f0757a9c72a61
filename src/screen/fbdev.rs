//! The Linux framebuffer (`/dev/fb0`) as a screen: [`Framebuffer`] converts the rendered screen
//! into the device's pixel format ([`super::fb_format`]) and writes the rows to the device (or to
//! any file standing in for one).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fb_format::{FbFormat, pack_into};
use super::{RgbBuffer, ScreenReport, check_size, render_to_buffer};
use crate::error::{Error, ErrorKind, Result};

/// A framebuffer device (or a file standing in for one) with a known geometry and format.
#[derive(Debug)]
pub struct Framebuffer {
    file: File,
    path: PathBuf,
    format: FbFormat,
    width: u32,
    height: u32,
    line_length: usize,
    /// Byte offset of the visible area's first pixel (panning).
    start: u64,
}

impl Framebuffer {
    /// Opens a framebuffer device such as `/dev/fb0` and reads its geometry and pixel format
    /// (`FBIOGET_VSCREENINFO`, `FBIOGET_FSCREENINFO`). Fails for a device that is not a
    /// packed-pixel true-colour framebuffer, an unsupported format, or a screen smaller than
    /// [`MIN_WIDTH`](super::MIN_WIDTH)×[`MIN_HEIGHT`](super::MIN_HEIGHT).
    #[cfg(target_os = "linux")]
    pub fn open(path: &Path) -> Result<Framebuffer> {
        let file = File::options().read(true).write(true).open(path).map_err(|e| Error::io(path, e))?;
        let info =
            super::fbioctl::query(&file).map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", path.display())))?;
        let mut fb = Framebuffer::from_parts(path, file, info.format, info.xres, info.yres, info.line_length)?;
        fb.start =
            info.yoffset as u64 * info.line_length as u64 + info.xoffset as u64 * fb.format.bytes_per_pixel() as u64;
        Ok(fb)
    }

    /// Framebuffer devices exist only on Linux: always an error here.
    #[cfg(not(target_os = "linux"))]
    pub fn open(path: &Path) -> Result<Framebuffer> {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{}: framebuffer devices are only supported on Linux", path.display()),
        ))
    }

    /// A framebuffer from a geometry known by other means: `file` (opened for writing; a
    /// regular file works, e.g. in tests) holds `yres` rows of `line_length` bytes, each starting
    /// with `xres` pixels of `format`. `path` names it in error messages.
    pub fn from_parts(
        path: &Path,
        file: File,
        format: FbFormat,
        xres: u32,
        yres: u32,
        line_length: usize,
    ) -> Result<Framebuffer> {
        let what = path.display().to_string();
        format.validate().map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{what}: {e}")))?;
        check_size(xres, yres, &what)?;
        let row_bytes = xres as usize * format.bytes_per_pixel();
        if line_length < row_bytes {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{what}: line length {line_length} bytes is shorter than a row of {xres} pixels ({row_bytes} bytes)"
                ),
            ));
        }
        Ok(Framebuffer { file, path: path.to_owned(), format, width: xres, height: yres, line_length, start: 0 })
    }

    /// Visible width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Visible height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel format.
    pub fn format(&self) -> &FbFormat {
        &self.format
    }

    /// Bytes from one row's start to the next.
    pub fn line_length(&self) -> usize {
        self.line_length
    }

    /// The device or file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shows `rgb`, which must be exactly the framebuffer's size: converts it to the pixel
    /// format and writes each row at its stride (bytes past a row's end are not written).
    pub fn write_buffer(&mut self, rgb: &RgbBuffer) -> Result<()> {
        if (rgb.width(), rgb.height()) != (self.width, self.height) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{}: image is {}x{}, the framebuffer is {}x{}",
                    self.path.display(),
                    rgb.width(),
                    rgb.height(),
                    self.width,
                    self.height
                ),
            ));
        }
        let mut packed = vec![0u8; self.line_length * self.height as usize];
        pack_into(rgb, &self.format, self.line_length, &mut packed)?;
        let row_bytes = self.width as usize * self.format.bytes_per_pixel();
        let io = |e| Error::io(&self.path, e);
        for (y, row) in packed.chunks_exact(self.line_length).enumerate() {
            self.file.seek(SeekFrom::Start(self.start + (y * self.line_length) as u64)).map_err(io)?;
            self.file.write_all(&row[..row_bytes]).map_err(io)?;
        }
        self.file.flush().map_err(io)
    }

    /// Renders `report` at the framebuffer's size and shows it.
    pub fn show(&mut self, report: &ScreenReport<'_>) -> Result<()> {
        let rgb = render_to_buffer(report, self.width, self.height)?;
        self.write_buffer(&rgb)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fb_format::Bitfield;
    use super::*;
    use embedded_graphics::pixelcolor::Rgb888;
    use embedded_graphics::prelude::*;

    fn two_by_two() -> Result<RgbBuffer> {
        let mut rgb = RgbBuffer::new(2, 2)?;
        let _ = rgb.draw_iter([
            Pixel(Point::new(0, 0), Rgb888::new(255, 0, 0)),
            Pixel(Point::new(1, 0), Rgb888::new(0, 255, 0)),
            Pixel(Point::new(0, 1), Rgb888::new(0, 0, 255)),
            Pixel(Point::new(1, 1), Rgb888::new(0xE6, 0x9F, 0x00)),
        ]);
        Ok(rgb)
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn rgb565_with_padded_stride() -> Result<()> {
        let rgb = two_by_two()?;
        // 2 pixels × 2 bytes = 4 bytes per row, stride 6: two padding bytes per row stay 0xEE.
        let mut out = [0xEEu8; 12];
        pack_into(&rgb, &FbFormat::RGB565, 6, &mut out)?;
        // Orange E6 9F 00: red 230*31/255 = 27.96 → 28, green 159*63/255 = 39.3 → 39, blue 0.
        let orange: u16 = (28 << 11) | (39 << 5);
        let mut expected = vec![0x00, 0xF8, 0xE0, 0x07, 0xEE, 0xEE, 0x1F, 0x00];
        expected.extend_from_slice(&orange.to_le_bytes());
        expected.extend_from_slice(&[0xEE, 0xEE]);
        assert_eq!(out.to_vec(), expected);
        Ok(())
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn thirty_two_and_twenty_four_bit_layouts() -> Result<()> {
        let rgb = two_by_two()?;
        let mut out = [0u8; 16];
        pack_into(&rgb, &FbFormat::XRGB8888, 8, &mut out)?;
        assert_eq!(&out[..8], &[0, 0, 255, 0, 0, 255, 0, 0]);
        pack_into(&rgb, &FbFormat::ARGB8888, 8, &mut out)?;
        assert_eq!(&out[..8], &[0, 0, 255, 255, 0, 255, 0, 255]);
        pack_into(&rgb, &FbFormat::XBGR8888, 8, &mut out)?;
        assert_eq!(&out[8..], &[0, 0, 255, 0, 0xE6, 0x9F, 0, 0]);
        let mut out = [0u8; 12];
        pack_into(&rgb, &FbFormat::RGB888, 6, &mut out)?;
        assert_eq!(out, [0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0x9F, 0xE6]);
        Ok(())
    }

    #[test]
    fn bad_geometry_and_formats_are_refused() -> Result<()> {
        let rgb = two_by_two()?;
        let mut out = [0u8; 16];
        assert!(pack_into(&rgb, &FbFormat::RGB565, 3, &mut out).is_err(), "stride shorter than a row");
        assert!(pack_into(&rgb, &FbFormat::XRGB8888, 8, &mut out[..15]).is_err(), "buffer too small");
        let eight = FbFormat { bits_per_pixel: 8, ..FbFormat::RGB565 };
        let msg = pack_into(&rgb, &eight, 2, &mut out).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "framebuffer: unsupported pixel format: 8 bits per pixel (supported: 16, 24, 32)");
        let overlap = FbFormat { green: Bitfield::new(10, 6), ..FbFormat::RGB565 };
        assert!(overlap.validate().is_err());
        let outside = FbFormat { red: Bitfield::new(12, 5), ..FbFormat::RGB565 };
        assert!(outside.validate().is_err());
        Ok(())
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn open_refuses_what_is_not_a_framebuffer() {
        let path = std::env::temp_dir().join(format!("panderm-screen-notfb-{}", std::process::id()));
        let _ = std::fs::write(&path, b"not a device");
        let msg = Framebuffer::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        assert!(msg.starts_with(&format!("{}: not a framebuffer", path.display())), "{msg}");
        let missing = Framebuffer::open(Path::new("/nonexistent/fb9")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.starts_with("/nonexistent/fb9: "), "{missing}");
    }

    #[test]
    fn fake_framebuffer_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("panderm-screen-fb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("fb0");
        let (w, h, stride) = (320u32, 240u32, 320 * 2 + 16);
        std::fs::write(&path, vec![0xAB; stride * h as usize]).map_err(|e| Error::io(&path, e))?;
        let open = || File::options().write(true).open(&path).map_err(|e| Error::io(&path, e));

        let small = Framebuffer::from_parts(&path, open()?, FbFormat::RGB565, 200, 240, stride);
        let msg = small.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("fb0") && msg.contains("200x240"), "{msg}");
        let short = Framebuffer::from_parts(&path, open()?, FbFormat::XRGB8888, w, h, stride);
        assert!(short.err().map(|e| e.to_string()).unwrap_or_default().contains("line length"));

        let mut fb = Framebuffer::from_parts(&path, open()?, FbFormat::RGB565, w, h, stride)?;
        let report = ScreenReport { model: "test 1.0", ..ScreenReport::default() };
        fb.show(&report)?;
        let written = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        assert_eq!(written.len(), stride * h as usize);
        let rgb = render_to_buffer(&report, w, h)?;
        let mut expected = vec![0xAB; stride * h as usize];
        pack_into(&rgb, &FbFormat::RGB565, stride, &mut expected)?;
        assert!(written == expected, "framebuffer file differs from pack_into (padding must stay 0xAB)");
        assert!(fb.write_buffer(&RgbBuffer::new(2, 2)?).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
