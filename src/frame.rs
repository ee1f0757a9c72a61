//! Camera frames: raw pixel buffers (a camera pipeline's output, a C caller's buffer, a raw dump
//! on disk) turned into the same 8-bit RGB image the file decoders produce, **without** a PNG or
//! JPEG round trip. [`Classifier::classify_frame`](crate::classify::Classifier::classify_frame)
//! then runs the image-quality gate and PanDerm's preprocessing on it exactly as for a decoded file.
//!
//! # Layouts
//!
//! | format | bytes per pixel | layout of one frame |
//! |---|---|---|
//! | [`PixelFormat::Rgb8`] | 3 | `height` rows of `stride` bytes, each starting with `width` × R, G, B |
//! | [`PixelFormat::Rgba8`] | 4 | R, G, B, A; alpha is dropped without compositing (like `convert('RGB')` in Pillow) |
//! | [`PixelFormat::Bgr8`] | 3 | B, G, R |
//! | [`PixelFormat::Bgra8`] | 4 | B, G, R, A; alpha dropped |
//! | [`PixelFormat::Nv12`] | 1.5 | a Y plane of `height` rows of `stride` bytes, **immediately followed** by an interleaved U, V plane of `height / 2` rows of `stride` bytes (one U, V pair per 2 × 2 block) |
//!
//! `stride` is the distance in bytes between the starts of two rows (≥ the row's own bytes;
//! padding after each row is ignored). The last row need not be padded: a buffer of
//! [`Frame::required_len`] bytes is enough. NV12 frames need an even width and height.
//!
//! # NV12 colour conversion
//!
//! ITU-R BT.601 **full range** (JFIF: Y, Cb, Cr all in 0–255, chroma offset 128), the conversion
//! JPEG decoders (and Pillow's `YCbCr` mode) use, so that a frame and the JPEG a camera encodes
//! from it give the same RGB:
//!
//! ```text
//! R = Y + 1.402 (Cr − 128)
//! G = Y − 0.344136 (Cb − 128) − 0.714136 (Cr − 128)
//! B = Y + 1.772 (Cb − 128)
//! ```
//!
//! rounded half up and clamped to 0–255, in exact integer arithmetic. Tested against the
//! real-valued formula and against Pillow's conversion (`scripts/reference_ycbcr.py`). Chroma is not interpolated: each U, V pair applies to its
//! 2 × 2 block. A camera that outputs limited-range ("video", Y in 16–235) NV12 must be set to
//! full range (V4L2 `V4L2_QUANTIZATION_FULL_RANGE`, libcamera `ColorSpace::Sycc`) or converted
//! before the call: limited-range frames read as lower contrast, which the quality gate may flag.
//!
//! # Digest
//!
//! A frame's `image_sha256` in reports and in the audit log is the SHA-256 of its **packed RGB8
//! pixels** after conversion (`width × height × 3` bytes, rows top to bottom, no padding): the
//! same picture gives the same digest whatever its pixel format or stride ([`rgb_digest`]).

use std::fmt;
use std::str::FromStr;

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::DecodeLimits;

/// How a frame's pixels are laid out. The discriminants are the C ABI's `PANDERM_PIXEL_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PixelFormat {
    /// 8-bit R, G, B.
    Rgb8 = 0,
    /// 8-bit R, G, B, A (alpha dropped).
    Rgba8 = 1,
    /// 8-bit B, G, R.
    Bgr8 = 2,
    /// 8-bit B, G, R, A (alpha dropped).
    Bgra8 = 3,
    /// 4:2:0 Y plane + interleaved U, V plane, BT.601 full range.
    Nv12 = 4,
}

impl PixelFormat {
    /// Every format, in code order.
    pub const ALL: [PixelFormat; 5] =
        [PixelFormat::Rgb8, PixelFormat::Rgba8, PixelFormat::Bgr8, PixelFormat::Bgra8, PixelFormat::Nv12];

    /// The format with this C ABI code (`PANDERM_PIXEL_*`), if any.
    pub fn from_code(code: u32) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The C ABI code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Lower-case name, as `panderm classify --raw` spells it: `rgb8`, `rgba8`, `bgr8`, `bgra8`,
    /// `nv12`.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "rgb8",
            PixelFormat::Rgba8 => "rgba8",
            PixelFormat::Bgr8 => "bgr8",
            PixelFormat::Bgra8 => "bgra8",
            PixelFormat::Nv12 => "nv12",
        }
    }

    /// Bytes of one row of `width` pixels without padding (the smallest valid stride), `None` on
    /// overflow.
    pub fn row_bytes(self, width: u32) -> Option<usize> {
        let per_pixel = match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
            PixelFormat::Nv12 => 1,
        };
        usize::try_from(width).ok()?.checked_mul(per_pixel)
    }

    /// Rows of `stride` bytes a frame of `height` rows occupies (NV12: Y rows plus UV rows).
    pub fn rows(self, height: u32) -> u64 {
        match self {
            PixelFormat::Nv12 => u64::from(height) + u64::from(height).div_ceil(2),
            _ => u64::from(height),
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PixelFormat {
    type Err = Error;

    /// Parses a format name, case-insensitively (`rgb8`, `RGBA8`, `nv12`, …).
    fn from_str(s: &str) -> Result<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = PixelFormat::ALL.iter().map(|f| f.name()).collect();
            Error::new(ErrorKind::InvalidInput, format!("unknown pixel format `{s}` (one of: {})", names.join(", ")))
        })
    }
}

/// A borrowed, validated camera frame: its buffer holds every byte its geometry needs.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pixels: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
}

impl<'a> Frame<'a> {
    /// A frame of `width × height` pixels whose rows start every `stride` bytes.
    ///
    /// Errors ([`ErrorKind::InvalidInput`]): a zero width or height; an odd width or height for
    /// NV12; a stride shorter than a row; a buffer shorter than [`Frame::required_len`]; a
    /// geometry whose size overflows.
    pub fn new(pixels: &'a [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Frame<'a>> {
        let need = Frame::required_len(width, height, stride, format)?;
        if pixels.len() < need {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a {width}x{height} {format} frame with a stride of {stride} bytes needs {need} bytes, the buffer \
                     holds {}",
                    pixels.len()
                ),
            ));
        }
        Ok(Frame { pixels: &pixels[..need], width, height, stride, format })
    }

    /// A frame without row padding (`stride` = the row's bytes).
    pub fn packed(pixels: &'a [u8], width: u32, height: u32, format: PixelFormat) -> Result<Frame<'a>> {
        let stride = format.row_bytes(width).ok_or_else(|| too_large(width, height, format))?;
        Frame::new(pixels, width, height, stride, format)
    }

    /// Bytes a frame of this geometry reads: `stride` per row, except the last row, which needs
    /// only its own bytes. Fails as [`Frame::new`] does on invalid geometry.
    pub fn required_len(width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<usize> {
        if width == 0 || height == 0 {
            return Err(Error::new(ErrorKind::InvalidInput, format!("a {width}x{height} frame has no pixels")));
        }
        if format == PixelFormat::Nv12 && (!width.is_multiple_of(2) || !height.is_multiple_of(2)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("an NV12 frame needs an even width and height, not {width}x{height}"),
            ));
        }
        let row = format.row_bytes(width).ok_or_else(|| too_large(width, height, format))?;
        if stride < row {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a stride of {stride} bytes is shorter than a row of {width} {format} pixels ({row} bytes)"),
            ));
        }
        (format.rows(height) - 1)
            .checked_mul(stride as u64)
            .and_then(|n| n.checked_add(row as u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| too_large(width, height, format))
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row's start to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The bytes the frame reads ([`Frame::required_len`] of them).
    pub fn pixels(&self) -> &'a [u8] {
        self.pixels
    }

    /// `frame:WIDTHxHEIGHT:FORMAT`, the name reports give a frame that has none of its own.
    pub fn describe(&self) -> String {
        format!("frame:{}x{}:{}", self.width, self.height, self.format)
    }

    /// The frame as packed 8-bit RGB, refusing (with [`ErrorKind::ImageTooLarge`], before
    /// allocating) a frame beyond `limits`: a side over `max_side`, or more than `max_bytes` of RGB.
    pub fn to_rgb(&self, limits: DecodeLimits) -> Result<RgbImage> {
        let (w, h) = (self.width, self.height);
        Frame::check_limits(w, h, limits)?;
        let (wu, hu) = (w as usize, h as usize);
        let mut out = vec![0u8; wu * hu * 3];
        let rows = out.chunks_exact_mut(wu * 3);
        match self.format {
            PixelFormat::Rgb8 => {
                for (y, dst) in rows.enumerate() {
                    dst.copy_from_slice(&self.row(y)[..wu * 3]);
                }
            }
            PixelFormat::Rgba8 | PixelFormat::Bgra8 | PixelFormat::Bgr8 => {
                let n = if self.format == PixelFormat::Bgr8 { 3 } else { 4 };
                let bgr = self.format != PixelFormat::Rgba8;
                for (y, dst) in rows.enumerate() {
                    for (d, s) in dst.chunks_exact_mut(3).zip(self.row(y).chunks_exact(n)) {
                        if bgr {
                            d.copy_from_slice(&[s[2], s[1], s[0]]);
                        } else {
                            d.copy_from_slice(&s[..3]);
                        }
                    }
                }
            }
            PixelFormat::Nv12 => {
                for (y, dst) in rows.enumerate() {
                    let luma = &self.row(y)[..wu];
                    let chroma = &self.row(hu + y / 2)[..wu];
                    for ((d, l), uv) in dst.chunks_exact_mut(6).zip(luma.chunks_exact(2)).zip(chroma.chunks_exact(2)) {
                        d[..3].copy_from_slice(&ycbcr_to_rgb(l[0], uv[0], uv[1]));
                        d[3..].copy_from_slice(&ycbcr_to_rgb(l[1], uv[0], uv[1]));
                    }
                }
            }
        }
        // The buffer is exactly w * h * 3 bytes.
        RgbImage::from_raw(w, h, out).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "frame buffer size"))
    }

    /// Refuses ([`ErrorKind::ImageTooLarge`]) a `width × height` frame beyond `limits`: a side
    /// over `max_side`, or more than `max_bytes` of RGB.
    pub fn check_limits(width: u32, height: u32, limits: DecodeLimits) -> Result<()> {
        let rgb_bytes = u64::from(width) * u64::from(height) * 3;
        if width > limits.max_side || height > limits.max_side || rgb_bytes > limits.max_bytes {
            return Err(Error::new(
                ErrorKind::ImageTooLarge,
                format!(
                    "a {width}x{height} frame ({rgb_bytes} bytes of RGB) exceeds the limits ({} px per side, {} \
                     bytes)",
                    limits.max_side, limits.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Row `i` (Y rows first, then NV12's UV rows), without the padding after it.
    fn row(&self, i: usize) -> &'a [u8] {
        let start = i * self.stride;
        let end = (start + self.stride).min(self.pixels.len());
        &self.pixels[start..end]
    }
}

fn too_large(width: u32, height: u32, format: PixelFormat) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("a {width}x{height} {format} frame does not fit in memory"))
}

/// The JFIF coefficients `1.402`, `0.344136`, `0.714136`, `1.772` in units of 10⁻⁶: exact, so the
/// integer conversion equals the real-valued formula, ties included.
const SCALE: i32 = 1_000_000;
const CR_R: i32 = 1_402_000;
const CB_G: i32 = 344_136;
const CR_G: i32 = 714_136;
const CB_B: i32 = 1_772_000;

/// One BT.601 full-range (JFIF) Y, Cb, Cr triple to R, G, B: the real-valued formula, rounded
/// half up and clamped to 0–255 (all in `i32`: at most 255·10⁶ + 1.772·10⁶·128 < 2³¹).
pub fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y) * SCALE + SCALE / 2;
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let clamp = |v: i32| v.div_euclid(SCALE).clamp(0, 255) as u8;
    [clamp(y + CR_R * cr), clamp(y - CB_G * cb - CR_G * cr), clamp(y + CB_B * cb)]
}

/// The digest a frame's report carries: SHA-256 (lower-case hex) of the packed RGB8 pixels.
pub fn rgb_digest(rgb: &RgbImage) -> String {
    Sha256::digest(rgb.as_raw()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `WIDTHxHEIGHT:FORMAT`, as `panderm classify --raw` takes it (e.g. `1920x1080:nv12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel format.
    pub format: PixelFormat,
}

impl FromStr for RawSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<RawSpec> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!("`{s}` is not WIDTHxHEIGHT:FORMAT (e.g. 1920x1080:nv12, 640x480:rgb8)"),
            )
        };
        let (size, format) = s.split_once(':').ok_or_else(bad)?;
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let width = w.parse().map_err(|_| bad())?;
        let height = h.parse().map_err(|_| bad())?;
        Ok(RawSpec { width, height, format: format.parse()? })
    }
}

impl RawSpec {
    /// The frame in a raw dump of this geometry: the file holds exactly the packed frame, or
    /// every row padded to the same stride (a file of `rows × stride` bytes, the stride then
    /// being `len / rows`). Anything else is refused naming the sizes that would fit.
    pub fn frame<'a>(&self, bytes: &'a [u8]) -> Result<Frame<'a>> {
        let RawSpec { width, height, format } = *self;
        let row = format.row_bytes(width).ok_or_else(|| too_large(width, height, format))?;
        // Checks the geometry (zero or odd sizes) before the file's size.
        let packed = Frame::required_len(width, height, row, format)? as u64;
        let rows = format.rows(height);
        let len = bytes.len() as u64;
        if len == packed {
            return Frame::new(bytes, width, height, row, format);
        }
        if len > packed && len.is_multiple_of(rows) {
            return Frame::new(bytes, width, height, (len / rows) as usize, format);
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a raw {width}x{height} {format} frame is {packed} bytes (or {rows} rows of a padded stride), the \
                 file holds {len}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_codes_and_names() {
        for (i, f) in PixelFormat::ALL.into_iter().enumerate() {
            assert_eq!(f.code(), i as u32);
            assert_eq!(PixelFormat::from_code(i as u32), Some(f));
            assert_eq!(f.name().parse::<PixelFormat>().unwrap(), f);
            assert_eq!(f.name().to_uppercase().parse::<PixelFormat>().unwrap(), f);
        }
        assert_eq!(PixelFormat::from_code(5), None);
        assert!("yuyv".parse::<PixelFormat>().unwrap_err().message().contains("nv12"));
    }

    #[test]
    fn raw_specs_parse() {
        let s: RawSpec = "1920x1080:nv12".parse().unwrap();
        assert_eq!(s, RawSpec { width: 1920, height: 1080, format: PixelFormat::Nv12 });
        assert_eq!("4X2:BGRA8".parse::<RawSpec>().unwrap().format, PixelFormat::Bgra8);
        for bad in ["", "1920x1080", "1920:rgb8", "x10:rgb8", "10x-1:rgb8", "10x10:yuv", "10x10x3:rgb8"] {
            assert!(bad.parse::<RawSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_dumps_packed_or_padded() {
        let spec: RawSpec = "2x2:rgb8".parse().unwrap();
        let packed = [1u8; 12];
        assert_eq!(spec.frame(&packed).unwrap().stride(), 6);
        let padded = [1u8; 16];
        assert_eq!(spec.frame(&padded).unwrap().stride(), 8);
        let e = spec.frame(&[1u8; 13]).unwrap_err();
        assert!(e.message().contains("is 12 bytes"), "{}", e.message());
        let nv12: RawSpec = "4x2:nv12".parse().unwrap();
        assert_eq!(nv12.frame(&[0u8; 12]).unwrap().stride(), 4);
        assert_eq!(nv12.frame(&[0u8; 18]).unwrap().stride(), 6);
        let odd: RawSpec = "3x2:nv12".parse().unwrap();
        assert!(odd.frame(&[0u8; 9]).unwrap_err().message().contains("even"));
    }

    #[test]
    fn geometry_is_checked() {
        let buf = [0u8; 64];
        let msg = |r: Result<Frame<'_>>| r.unwrap_err().message().to_owned();
        assert!(msg(Frame::new(&buf, 0, 4, 12, PixelFormat::Rgb8)).contains("no pixels"));
        assert!(msg(Frame::new(&buf, 4, 0, 12, PixelFormat::Rgb8)).contains("no pixels"));
        assert!(msg(Frame::new(&buf, 4, 4, 11, PixelFormat::Rgb8)).contains("shorter than a row"));
        assert!(Frame::new(&buf, 4, 4, 16, PixelFormat::Rgba8).is_ok());
        assert!(msg(Frame::new(&buf[..63], 4, 4, 16, PixelFormat::Rgba8)).contains("needs 64 bytes"));
        // The last row needs no padding.
        assert_eq!(Frame::required_len(4, 4, 20, PixelFormat::Rgb8).unwrap(), 3 * 20 + 12);
        assert_eq!(Frame::required_len(4, 4, 4, PixelFormat::Nv12).unwrap(), 24);
        assert!(msg(Frame::new(&buf, 3, 4, 4, PixelFormat::Nv12)).contains("even"));
        assert!(Frame::required_len(u32::MAX, u32::MAX, usize::MAX, PixelFormat::Rgba8).is_err());
    }

    #[test]
    fn channel_orders_and_strides() {
        // 2x2, stride 10 (2 bytes of padding after each BGRA row).
        let bgra = [1, 2, 3, 9, 4, 5, 6, 9, 0xEE, 0xEE, 7, 8, 9, 9, 10, 11, 12, 9, 0xEE, 0xEE];
        let rgb = Frame::new(&bgra, 2, 2, 10, PixelFormat::Bgra8).unwrap().to_rgb(DecodeLimits::default()).unwrap();
        assert_eq!(rgb.as_raw(), &vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
        let want = rgb.clone();
        let packed_rgb = want.as_raw().clone();
        for (fmt, bytes) in [
            (PixelFormat::Rgb8, packed_rgb.clone()),
            (PixelFormat::Bgr8, packed_rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect()),
            (PixelFormat::Rgba8, packed_rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 0]).collect()),
        ] {
            let f = Frame::packed(&bytes, 2, 2, fmt).unwrap();
            assert_eq!(f.to_rgb(DecodeLimits::default()).unwrap(), want, "{fmt}");
        }
        assert_eq!(rgb_digest(&want).len(), 64);
        let tiny = DecodeLimits { max_side: 1, max_bytes: 1 << 20 };
        let e = Frame::packed(&packed_rgb, 2, 2, PixelFormat::Rgb8).unwrap().to_rgb(tiny).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageTooLarge);
    }

    /// The real-valued JFIF formula in `f64`, before rounding.
    fn reference(y: u8, cb: u8, cr: u8) -> [f64; 3] {
        let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
        [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb]
    }

    #[test]
    fn nv12_matches_the_real_valued_formula() {
        let mut ties = 0;
        for y in (0..=255u8).step_by(3) {
            for cb in 0..=255u8 {
                for cr in (0..=255u8).step_by(5) {
                    let (got, want) = (ycbcr_to_rgb(y, cb, cr), reference(y, cb, cr));
                    for c in 0..3 {
                        let v = want[c];
                        if (v - v.floor() - 0.5).abs() < 1e-9 {
                            // An exact tie, which f64 may hold as x.4999…: rounded up.
                            ties += 1;
                            assert_eq!(f64::from(got[c]), (v.round()).clamp(0.0, 255.0), "{y} {cb} {cr}");
                        } else {
                            assert_eq!(f64::from(got[c]), (v + 0.5).floor().clamp(0.0, 255.0), "{y} {cb} {cr}");
                        }
                    }
                }
            }
        }
        assert!(ties > 0, "the grid has exact ties");
        assert_eq!(ycbcr_to_rgb(255, 128, 128), [255, 255, 255]);
        assert_eq!(ycbcr_to_rgb(0, 128, 128), [0, 0, 0]);
        assert_eq!(ycbcr_to_rgb(76, 85, 255), [254, 0, 0]);
    }

    /// Pillow's `YCbCr` → `RGB` (`scripts/reference_ycbcr.py`): within one level everywhere
    /// (Pillow rounds through fixed-point tables; 3812 of the 12288 values differ by one).
    #[test]
    fn nv12_matches_pillow() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/frames/ycbcr_grid_pillow_rgb.bin");
        let pillow = std::fs::read(path).unwrap();
        let values: Vec<u8> = (0..=255u8).step_by(17).collect();
        let mut i = 0;
        let mut differ = 0;
        for &y in &values {
            for &cb in &values {
                for &cr in &values {
                    let got = ycbcr_to_rgb(y, cb, cr);
                    for c in 0..3 {
                        let d = got[c].abs_diff(pillow[i + c]);
                        assert!(d <= 1, "Y {y} Cb {cb} Cr {cr}: {got:?} vs Pillow {:?}", &pillow[i..i + 3]);
                        differ += usize::from(d > 0);
                    }
                    i += 3;
                }
            }
        }
        assert_eq!(i, pillow.len());
        assert!(differ * 3 < pillow.len(), "{differ} of {} values differ by one", pillow.len());
    }

    #[test]
    fn nv12_chroma_covers_two_by_two_blocks() {
        // 4x2: Y row 0, Y row 1 (stride 6), then one UV row for both.
        let y0 = [10, 20, 30, 40, 0, 0];
        let y1 = [50, 60, 70, 80, 0, 0];
        let uv = [100, 150, 200, 50];
        let buf: Vec<u8> = y0.iter().chain(&y1).chain(&uv).copied().collect();
        let rgb = Frame::new(&buf, 4, 2, 6, PixelFormat::Nv12).unwrap().to_rgb(DecodeLimits::default()).unwrap();
        for (x, y, luma, (u, v)) in
            [(0, 0, 10, (100, 150)), (1, 1, 60, (100, 150)), (2, 0, 30, (200, 50)), (3, 1, 80, (200, 50))]
        {
            assert_eq!(rgb.get_pixel(x, y).0, ycbcr_to_rgb(luma, u, v), "({x}, {y})");
        }
    }
}
