//! Report thumbnails: the photo downscaled to at most [`MAX_SIDE`] pixels, JPEG-encoded, kept in
//! `OUT_DIR/thumbs/<sha256>.jpg` between runs and embedded in `report.html` as `data:` URIs.

use std::io::{Cursor, Read};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::{PreprocessConfig, decode_bytes, read_image_file};

/// Largest cached thumbnail file read back into the report, in bytes (a 160 px JPEG is a few KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

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

/// Reads `path` (with [`read_image_file`]: regular files within the decode limits only),
/// decodes it the way the model sees it (same EXIF handling and decode limits as the bundle's
/// preprocessing) and returns a JPEG thumbnail.
pub fn jpeg_thumbnail(path: &Path, cfg: &PreprocessConfig) -> Result<Vec<u8>> {
    jpeg_thumbnail_bytes(&read_image_file(path, cfg.limits)?, path, cfg)
}

/// [`jpeg_thumbnail`] of bytes already read; `name` only names the file in errors.
pub fn jpeg_thumbnail_bytes(bytes: &[u8], name: &Path, cfg: &PreprocessConfig) -> Result<Vec<u8>> {
    let rgb = decode_bytes(bytes, cfg.apply_exif_orientation, cfg.limits)
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", name.display(), e.message())))?;
    let (w, h) = dims(rgb.width(), rgb.height());
    let small = image::imageops::thumbnail(&rgb, w, h);
    drop(rgb);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&small).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("{}: cannot encode thumbnail: {e}", name.display()))
    })?;
    Ok(out)
}

/// A cached thumbnail's bytes, if `path` is a regular file (not a symbolic link: the cache only
/// holds files this tool wrote) of at most [`MAX_FILE_BYTES`].
pub fn read_cached(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes)
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
