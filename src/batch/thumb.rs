//! Report thumbnails: the photo downscaled to at most [`MAX_SIDE`] pixels, JPEG-encoded, kept in
//! `OUT_DIR/thumbs/<sha256>.jpg` between runs and embedded in `report.html` as `data:` URIs.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::{PreprocessConfig, decode_file};

/// Longest side of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 160;
/// JPEG quality of the thumbnails (small files; they only identify the photo).
pub const QUALITY: u8 = 80;

/// Thumbnail size for a `w`×`h` image: the longer side becomes at most [`MAX_SIDE`] (images
/// already that small keep their size), the aspect ratio is kept, no side is below 1.
pub fn dims(w: u32, h: u32) -> (u32, u32) {
    let long = w.max(h).max(1);
    if long <= MAX_SIDE {
        return (w.max(1), h.max(1));
    }
    let scale = |s: u32| ((u64::from(s) * u64::from(MAX_SIDE) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    (scale(w), scale(h))
}

/// Decodes `path` the way the model sees it (same EXIF handling and decode limits as the
/// bundle's preprocessing) and returns a JPEG thumbnail.
pub fn jpeg_thumbnail(path: &Path, cfg: &PreprocessConfig) -> Result<Vec<u8>> {
    let rgb = decode_file(path, cfg.apply_exif_orientation, cfg.limits)?;
    let (w, h) = dims(rgb.width(), rgb.height());
    let small = image::imageops::thumbnail(&rgb, w, h);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&small).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("{}: cannot encode thumbnail: {e}", path.display()))
    })?;
    Ok(out)
}

/// Width and height of an encoded thumbnail, read from its header.
pub fn encoded_dims(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?.into_dimensions().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_dims() {
        assert_eq!(dims(1528, 1360), (160, 142));
        assert_eq!(dims(1360, 1528), (142, 160));
        assert_eq!(dims(100, 50), (100, 50));
        assert_eq!(dims(10000, 10), (160, 1));
        assert_eq!(dims(0, 0), (1, 1));
    }
}
