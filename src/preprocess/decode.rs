//! Image decoding: bytes → 8-bit RGB, the way `PIL.Image.open(path).convert('RGB')` does it.
//!
//! * alpha is dropped without compositing, grayscale is replicated to three channels;
//! * 16-bit samples keep their high byte (Pillow's `RGB;16B` unpacking);
//! * EXIF orientation is **not** applied unless asked for (PanDerm never applied it);
//! * images whose decoded size would exceed [`DecodeLimits`] are refused *before* any pixel
//!   buffer is allocated;
//! * corrupt or truncated JPEGs are refused (like Pillow, which raises "image file is
//!   truncated"): JPEGs are decoded with zune-jpeg in strict mode, whereas the `image` crate
//!   runs it leniently and silently fills missing rows with grey.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::{Error, ErrorKind, Result};

/// Limits applied before decoding, so that a hostile header (e.g. a 30000×30000 PNG)
/// cannot make the device allocate gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Largest accepted decoded image, in bytes (all channels, native bit depth).
    pub max_bytes: u64,
}

impl Default for DecodeLimits {
    /// 16384 px per side and 256 MiB decoded: a 48-megapixel 8-bit RGB phone photo
    /// (8064×6048, 146 MB) fits; anything larger is almost certainly not a skin photo.
    fn default() -> Self {
        DecodeLimits { max_side: 16384, max_bytes: 256 << 20 }
    }
}

/// Decodes an image file into RGB8. See the module docs for the exact semantics.
pub fn decode_file(path: &Path, apply_exif_orientation: bool, limits: DecodeLimits) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(&bytes, apply_exif_orientation, limits)
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
}

/// Decodes an in-memory image into RGB8. See the module docs for the exact semantics.
pub fn decode_bytes(bytes: &[u8], apply_exif_orientation: bool, limits: DecodeLimits) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::new(ErrorKind::ImageDecode, "empty file, not an image"));
    }
    // The header's dimensions first, read without decoding anything: an oversized image is
    // refused naming its size on every target (on 32-bit targets the PNG decoder would refuse a
    // huge header itself, under the allocation cap, before reporting its dimensions).
    if let Ok(size) = imagesize::blob_size(bytes) {
        let (w, h) = (u32::try_from(size.width).unwrap_or(u32::MAX), u32::try_from(size.height).unwrap_or(u32::MAX));
        if w > limits.max_side || h > limits.max_side {
            return Err(too_large(w, h, limits));
        }
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::new(ErrorKind::ImageDecode, format!("cannot read image: {e}")))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        return decode_jpeg_strict(bytes, apply_exif_orientation, limits);
    }
    decode_reader(reader, apply_exif_orientation, limits)
}

/// Decodes a JPEG with zune-jpeg in strict mode, always to RGB (gray, CMYK and YCCK are
/// converted by the decoder).
fn decode_jpeg_strict(bytes: &[u8], apply_exif_orientation: bool, limits: DecodeLimits) -> Result<RgbImage> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let corrupt = |e: zune_jpeg::errors::DecodeErrors| {
        Error::new(ErrorKind::ImageDecode, format!("corrupt or truncated JPEG: {e:?}"))
    };
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(limits.max_side as usize)
        .set_max_height(limits.max_side as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    if let Err(e) = decoder.decode_headers() {
        if let zune_jpeg::errors::DecodeErrors::LargeDimensions(_) = e {
            return Err(Error::new(
                ErrorKind::ImageTooLarge,
                format!("JPEG exceeds the decode limits ({e:?}); refusing to decode"),
            ));
        }
        return Err(corrupt(e));
    }
    let (w, h) = decoder.dimensions().ok_or_else(|| Error::new(ErrorKind::ImageDecode, "JPEG without dimensions"))?;
    let (w, h) = (w as u32, h as u32);
    if w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) * 3 > limits.max_bytes {
        return Err(too_large(w, h, limits));
    }
    let orientation = apply_exif_orientation
        .then(|| decoder.exif().and_then(|e| image::metadata::Orientation::from_exif_chunk(e)))
        .flatten();
    let pixels = decoder.decode().map_err(corrupt)?;
    let img = RgbImage::from_raw(w, h, pixels)
        .ok_or_else(|| Error::new(ErrorKind::ImageDecode, "JPEG decoder returned a buffer of the wrong size"))?;
    Ok(match orientation {
        Some(o) => {
            let mut dynamic = DynamicImage::ImageRgb8(img);
            dynamic.apply_orientation(o);
            dynamic.into_rgb8()
        }
        None => img,
    })
}

fn decode_reader<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    apply_exif_orientation: bool,
    limits: DecodeLimits,
) -> Result<RgbImage> {
    let Some(format) = reader.format() else {
        return Err(Error::new(
            ErrorKind::ImageDecode,
            "unrecognised image format (expected JPEG, PNG, BMP, TIFF or WebP)",
        ));
    };
    // Dimensions are checked below, from the header, so that the error can name them; the
    // allocation cap stays as a second line of defence inside the decoders.
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_bytes.saturating_mul(2));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, format))?;
    let (w, h) = decoder.dimensions();
    let needed = decoder.total_bytes();
    if w > limits.max_side || h > limits.max_side || needed > limits.max_bytes {
        return Err(too_large(w, h, limits));
    }
    let orientation =
        if apply_exif_orientation { Some(decoder.orientation().map_err(|e| classify(e, format))?) } else { None };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, format))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb8_like_pillow(img))
}

fn too_large(w: u32, h: u32, limits: DecodeLimits) -> Error {
    Error::new(
        ErrorKind::ImageTooLarge,
        format!(
            "image is {w}x{h}, larger than the accepted {}x{} px / {} MiB decoded; refusing to decode",
            limits.max_side,
            limits.max_side,
            limits.max_bytes >> 20
        ),
    )
}

fn classify(e: image::ImageError, format: image::ImageFormat) -> Error {
    match e {
        image::ImageError::Limits(l) => {
            Error::new(ErrorKind::ImageTooLarge, format!("image exceeds the decode limits: {l}; refusing to decode"))
        }
        other => Error::new(ErrorKind::ImageDecode, format!("corrupt or unsupported {format:?} image: {other}")),
    }
}

/// Converts any decoded layout to RGB8 as Pillow's `convert('RGB')` does for the same file.
fn to_rgb8_like_pillow(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => {
            // Pillow unpacks 16-bit samples by keeping the most significant byte.
            let rgb16 = img.to_rgb16();
            let (w, h) = rgb16.dimensions();
            let raw: Vec<u8> = rgb16.into_raw().into_iter().map(|v| (v >> 8) as u8).collect();
            RgbImage::from_raw(w, h, raw).expect("same dimensions")
        }
        // Alpha is dropped, gray replicated, floats clamped and scaled.
        other => other.to_rgb8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bytes_are_refused() {
        let e = decode_bytes(&[], false, DecodeLimits::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageDecode);
    }

    #[test]
    fn garbage_is_refused() {
        let e = decode_bytes(b"definitely not an image", false, DecodeLimits::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageDecode);
    }

    #[test]
    fn alpha_is_dropped_without_compositing() {
        let mut buf = Vec::new();
        let rgba = image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 0]));
        DynamicImage::ImageRgba8(rgba).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        let rgb = decode_bytes(&buf, false, DecodeLimits::default()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [10, 20, 30]));
    }

    #[test]
    fn gray_is_replicated() {
        let mut buf = Vec::new();
        let gray = image::GrayImage::from_pixel(3, 2, image::Luma([77]));
        DynamicImage::ImageLuma8(gray).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        let rgb = decode_bytes(&buf, false, DecodeLimits::default()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [77, 77, 77]));
    }

    #[test]
    fn sixteen_bit_keeps_the_high_byte() {
        let mut buf = Vec::new();
        let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(2, 2, image::Rgb([0x12ff, 0x0080, 0xffff]));
        DynamicImage::ImageRgb16(img).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        let rgb = decode_bytes(&buf, false, DecodeLimits::default()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [0x12, 0x00, 0xff]));
    }
}
