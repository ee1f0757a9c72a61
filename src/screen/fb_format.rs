//! Framebuffer pixel formats and the conversion of an [`RgbBuffer`] into one ([`pack_into`]):
//! pure code, tested without a device. [`super::fbdev`] writes the result to `/dev/fb*`, whose
//! geometry [`super::fbioctl`] reads.

use super::RgbBuffer;
use crate::error::{Error, ErrorKind, Result};

/// Where one colour channel sits in a pixel value (Linux `struct fb_bitfield`, with
/// `msb_right == 0`): `length` bits starting at bit `offset`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitfield {
    /// Lowest bit of the channel in the pixel value.
    pub offset: u32,
    /// Number of bits (0: the channel is absent).
    pub length: u32,
}

impl Bitfield {
    /// `length` bits at `offset`.
    pub const fn new(offset: u32, length: u32) -> Bitfield {
        Bitfield { offset, length }
    }

    fn mask(self) -> u64 {
        ((1u64 << self.length) - 1) << self.offset
    }
}

/// A true-colour framebuffer pixel format: a pixel is a `bits_per_pixel`-bit value, stored in
/// the CPU's byte order, holding each channel at its [`Bitfield`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbFormat {
    /// 16, 24 or 32.
    pub bits_per_pixel: u32,
    /// Red channel.
    pub red: Bitfield,
    /// Green channel.
    pub green: Bitfield,
    /// Blue channel.
    pub blue: Bitfield,
    /// Alpha channel, written fully opaque (length 0 when absent).
    pub transp: Bitfield,
}

impl FbFormat {
    /// 16-bpp RGB565 (most small SPI/DPI panels).
    pub const RGB565: FbFormat = FbFormat {
        bits_per_pixel: 16,
        red: Bitfield::new(11, 5),
        green: Bitfield::new(5, 6),
        blue: Bitfield::new(0, 5),
        transp: Bitfield::new(0, 0),
    };
    /// 24-bpp RGB888 (bytes B, G, R in memory on little-endian CPUs).
    pub const RGB888: FbFormat = FbFormat {
        bits_per_pixel: 24,
        red: Bitfield::new(16, 8),
        green: Bitfield::new(8, 8),
        blue: Bitfield::new(0, 8),
        transp: Bitfield::new(0, 0),
    };
    /// 32-bpp XRGB8888 (bytes B, G, R, X in memory on little-endian CPUs; HDMI on most boards).
    pub const XRGB8888: FbFormat = FbFormat {
        bits_per_pixel: 32,
        red: Bitfield::new(16, 8),
        green: Bitfield::new(8, 8),
        blue: Bitfield::new(0, 8),
        transp: Bitfield::new(0, 0),
    };
    /// 32-bpp ARGB8888: XRGB8888 with an alpha byte, written opaque.
    pub const ARGB8888: FbFormat = FbFormat { transp: Bitfield::new(24, 8), ..FbFormat::XRGB8888 };
    /// 32-bpp XBGR8888 (bytes R, G, B, X in memory on little-endian CPUs).
    pub const XBGR8888: FbFormat = FbFormat {
        bits_per_pixel: 32,
        red: Bitfield::new(0, 8),
        green: Bitfield::new(8, 8),
        blue: Bitfield::new(16, 8),
        transp: Bitfield::new(0, 0),
    };

    /// Bytes per pixel.
    pub fn bytes_per_pixel(&self) -> usize {
        (self.bits_per_pixel / 8) as usize
    }

    /// Checks the format is one [`pack_into`] can write; the error says why not.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let bpp = self.bits_per_pixel;
        if !matches!(bpp, 16 | 24 | 32) {
            return Err(format!("unsupported pixel format: {bpp} bits per pixel (supported: 16, 24, 32)"));
        }
        let mut used = 0u64;
        for (name, field) in [("red", self.red), ("green", self.green), ("blue", self.blue), ("alpha", self.transp)] {
            let optional = name == "alpha";
            if (field.length == 0 && !optional) || field.length > 16 || field.offset + field.length > bpp {
                return Err(format!(
                    "unsupported pixel format: {name} has {} bits at offset {} in a {bpp}-bit pixel",
                    field.length, field.offset
                ));
            }
            if used & field.mask() != 0 {
                return Err(format!("unsupported pixel format: {name} overlaps another channel"));
            }
            used |= field.mask();
        }
        Ok(())
    }
}

/// A per-channel table: the shifted field value for each 8-bit intensity, rounded to nearest.
fn channel_table(field: Bitfield) -> [u32; 256] {
    let max = (1u32 << field.length) - 1;
    std::array::from_fn(|c| ((c as u32 * max + 127) / 255) << field.offset)
}

/// Converts `rgb` into framebuffer pixels of `format` in `out`: row `y` starts at byte
/// `y * line_length` (the stride, which may exceed `width * bytes_per_pixel`); bytes between
/// the end of a row and the next row's start are left untouched. Pixel values are stored in the
/// CPU's byte order, as the kernel's framebuffer expects.
pub fn pack_into(rgb: &RgbBuffer, format: &FbFormat, line_length: usize, out: &mut [u8]) -> Result<()> {
    format.validate().map_err(|e| Error::new(ErrorKind::InvalidInput, format!("framebuffer: {e}")))?;
    let bpp = format.bytes_per_pixel();
    let row_bytes = rgb.width() as usize * bpp;
    if line_length < row_bytes {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("framebuffer: line length {line_length} bytes is shorter than a row of {row_bytes} bytes"),
        ));
    }
    let height = rgb.height() as usize;
    let needed = (height - 1) * line_length + row_bytes;
    if out.len() < needed {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "framebuffer: {} bytes is too small for {}x{height} at stride {line_length}",
                out.len(),
                rgb.width()
            ),
        ));
    }
    let (red, green, blue) = (channel_table(format.red), channel_table(format.green), channel_table(format.blue));
    let alpha = if format.transp.length > 0 { format.transp.mask() as u32 } else { 0 };
    let src_row = rgb.width() as usize * 3;
    for (y, src) in rgb.as_bytes().chunks_exact(src_row).enumerate() {
        let dst = &mut out[y * line_length..y * line_length + row_bytes];
        for (px, d) in src.chunks_exact(3).zip(dst.chunks_exact_mut(bpp)) {
            let value = red[px[0] as usize] | green[px[1] as usize] | blue[px[2] as usize] | alpha;
            if cfg!(target_endian = "little") {
                d.copy_from_slice(&value.to_le_bytes()[..bpp]);
            } else {
                d.copy_from_slice(&value.to_be_bytes()[4 - bpp..]);
            }
        }
    }
    Ok(())
}
