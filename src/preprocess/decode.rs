//! Image decoding: bytes → 8-bit RGB, the way `PIL.Image.open(path).convert('RGB')` does it.
//!
//! * alpha is dropped without compositing, grayscale is replicated to three channels;
//! * 16-bit samples keep their high byte (Pillow's `RGB;16B` unpacking);
//! * EXIF orientation is **not** applied unless asked for (PanDerm never applied it);
//! * image files are read with [`read_image_file`]: regular files only, and a file larger than
//!   [`DecodeLimits::max_bytes`] is refused from its metadata, before a byte is read;
//! * images whose decoding would need more memory than [`DecodeLimits`] allows are refused
//!   *before* any pixel buffer is allocated: the decoded pixels **and** the decoder's working
//!   buffers are counted (a progressive JPEG keeps every DCT coefficient, 2 bytes per sample,
//!   until its last scan; a format conversion or an EXIF rotation needs a second buffer);
//! * corrupt or truncated JPEGs are refused (like Pillow, which raises "image file is
//!   truncated"): JPEGs are decoded with zune-jpeg in strict mode, whereas the `image` crate
//!   runs it leniently and silently fills missing rows with grey.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Pixel, RgbImage};

use crate::error::{Error, ErrorKind, Result};

/// File extensions (lowercase, without the dot) of the image files the runtime reads: the
/// formats [`decode_bytes`] decodes (`jfif` is JPEG). Batch mode's folder scan and the tools'
/// calibration sets both use this list; matching is case-insensitive (`IMG_0001.JPG`).
pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "jfif"];

/// Limits applied before reading and decoding, so that a hostile file (e.g. a 30000×30000 PNG
/// header, a progressive JPEG, a 3 GB `x.jpg`) cannot make the device allocate gigabytes.
///
/// With these limits the memory an image can take is at most `max_bytes` for the file's bytes
/// plus `max_bytes` for decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Largest accepted image file, and largest memory its decoding may take, in bytes: the
    /// decoded image (all channels, native bit depth) plus the decoder's buffers that grow with
    /// the image (a progressive JPEG's DCT coefficients, the RGB copy of a non-RGB image, an
    /// EXIF rotation's copy).
    pub max_bytes: u64,
}

impl Default for DecodeLimits {
    /// 16384 px per side and 256 MiB: a 48-megapixel 8-bit RGB phone photo (8064×6048, 146 MB
    /// decoded) fits as a baseline JPEG, as phones write them; the same photo as a progressive
    /// 4:2:0 JPEG needs 292 MB to decode and is refused. Anything larger is almost certainly not a
    /// skin photo.
    fn default() -> Self {
        DecodeLimits { max_side: 16384, max_bytes: 256 << 20 }
    }
}

/// Reads a whole image file into memory, safely for untrusted paths: the file is opened once,
/// and its **opened handle's** metadata must say it is a regular file (a FIFO, a device, a
/// socket or a folder is refused naming what it is; a FIFO is opened without blocking) no larger
/// than [`DecodeLimits::max_bytes`] (else [`ErrorKind::ImageTooLarge`], naming the file and both
/// sizes, before a byte is read). At most `max_bytes + 1` bytes are read, so a file that grows
/// while it is read is refused too.
pub fn read_image_file(path: &Path, limits: DecodeLimits) -> Result<Vec<u8>> {
    let (file, size) = crate::fsutil::open_regular(path, "image file")?;
    if size > limits.max_bytes {
        return Err(file_too_large(path, &format!("is {size} bytes ({})", mib(size)), limits));
    }
    match crate::fsutil::read_capped(file, size, limits.max_bytes).map_err(|e| Error::io(path, e))? {
        Some(bytes) => Ok(bytes),
        None => Err(file_too_large(path, "grew while it was read", limits)),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn file_too_large(path: &Path, what: &str, limits: DecodeLimits) -> Error {
    Error::new(
        ErrorKind::ImageTooLarge,
        format!(
            "{}: file {what}, larger than the accepted {} bytes ({}); refusing to read it",
            path.display(),
            limits.max_bytes,
            mib(limits.max_bytes)
        ),
    )
}

/// Decodes an image file into RGB8 (read with [`read_image_file`]). See the module docs for the
/// exact semantics.
pub fn decode_file(path: &Path, apply_exif_orientation: bool, limits: DecodeLimits) -> Result<RgbImage> {
    let bytes = read_image_file(path, limits)?;
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

/// What a JPEG's frame header (SOFn) and first scan header (SOS) say about the memory a decoder
/// needs, read by walking the markers (nothing is decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
struct JpegFrame {
    /// SOF2/6/10/14: progressive.
    progressive: bool,
    width: u32,
    height: u32,
    /// Horizontal and vertical sampling factors per component.
    sampling: Vec<(u32, u32)>,
    /// Components in the first scan (`None` if no SOS was found).
    first_scan: Option<usize>,
}

/// Walks a JPEG's marker segments up to the first SOS. `None` if no frame header is found.
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    let mut frame: Option<JpegFrame> = None;
    let mut i = 2; // after SOI
    while i + 1 < bytes.len() {
        // Markers are 0xFF (any number of fill bytes) then a code; anything else between
        // segments is skipped, as decoders do.
        if bytes[i] != 0xFF {
            i += 1;
            continue;
        }
        let code = bytes[i + 1];
        if code == 0xFF {
            i += 1;
            continue;
        }
        i += 2;
        // Markers without a length: stuffed zero, TEM, RSTn, SOI; EOI ends the image.
        if code == 0x00 || code == 0x01 || (0xD0..=0xD8).contains(&code) {
            continue;
        }
        if code == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
        let body = bytes.get(i + 2..i + len.max(2))?;
        match code {
            // SOFn (not DHT 0xC4, JPG 0xC8, DAC 0xCC).
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                let n = usize::from(*body.get(5)?);
                let sampling = (0..n)
                    .map(|c| body.get(7 + 3 * c).map(|s| (u32::from(s >> 4).max(1), u32::from(s & 0x0F).max(1))))
                    .collect::<Option<Vec<_>>>()?;
                frame = Some(JpegFrame {
                    progressive: matches!(code, 0xC2 | 0xC6 | 0xCA | 0xCE),
                    height: u32::from(u16::from_be_bytes([body[1], body[2]])),
                    width: u32::from(u16::from_be_bytes([body[3], body[4]])),
                    sampling,
                    first_scan: None,
                });
            }
            0xDA => {
                if let Some(f) = frame.as_mut() {
                    f.first_scan = body.first().map(|&n| usize::from(n));
                }
                break;
            }
            _ => {}
        }
        i += len.max(2);
    }
    frame
}

/// Bytes a decoder (zune-jpeg) holds for a JPEG's DCT coefficients when it must keep all of
/// them until the end: progressive JPEGs, and baseline JPEGs whose components come in separate
/// scans. 2 bytes per coefficient, 64 per 8×8 block, every block of every component padded to
/// whole MCUs. Zero for a baseline JPEG decoded MCU row by MCU row.
fn jpeg_coefficient_bytes(f: &JpegFrame) -> u64 {
    let all_in_first_scan = f.first_scan.is_some_and(|n| n >= f.sampling.len());
    if !f.progressive && all_in_first_scan {
        return 0;
    }
    let hmax = f.sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let vmax = f.sampling.iter().map(|s| s.1).max().unwrap_or(1);
    let mcu_x = u64::from(f.width.div_ceil(8 * hmax));
    let mcu_y = u64::from(f.height.div_ceil(8 * vmax));
    f.sampling.iter().map(|&(h, v)| mcu_x * mcu_y * u64::from(h) * u64::from(v) * 64 * 2).sum()
}

/// Whether applying `o` allocates a second image (a rotation by 90° or 270°; flips and 180° are
/// done in place).
fn orientation_copies(o: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(o, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
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
    let pixels = u64::from(w) * u64::from(h) * 3;
    if w > limits.max_side || h > limits.max_side || pixels > limits.max_bytes {
        return Err(too_large(w, h, limits));
    }
    let orientation = apply_exif_orientation
        .then(|| decoder.exif().and_then(|e| image::metadata::Orientation::from_exif_chunk(e)))
        .flatten();
    // The decoder's own memory: the RGB output, plus every DCT coefficient when it has to keep
    // them (progressive). zune-jpeg accepted the header, so a frame is there; should the walk
    // still miss it, assume the worst (4 components at full resolution, padded to 32 px).
    let coefficients = match jpeg_frame(bytes) {
        Some(mut f) => {
            f.progressive |= decoder.info().is_some_and(|i| i.sof.is_progressive());
            jpeg_coefficient_bytes(&f)
        }
        None => 4 * (u64::from(w) + 32) * (u64::from(h) + 32) * 2,
    };
    let rotated = if orientation.is_some_and(orientation_copies) { pixels } else { 0 };
    let needed = (pixels + coefficients).max(pixels + rotated);
    if needed > limits.max_bytes {
        let kind = if coefficients > 0 {
            let progressive = decoder.info().is_some_and(|i| i.sof.is_progressive());
            if progressive { "progressive JPEG" } else { "multi-scan JPEG" }
        } else {
            "JPEG"
        };
        return Err(Error::new(
            ErrorKind::ImageTooLarge,
            format!(
                "{kind} {w}x{h} needs {} KiB to decode ({} KiB of RGB pixels + {} KiB of {}), more than the accepted \
                 {} KiB; refusing to decode",
                needed.div_ceil(1024),
                pixels.div_ceil(1024),
                needed.saturating_sub(pixels).div_ceil(1024),
                if coefficients >= rotated { "DCT coefficients kept until the last scan" } else { "rotated copy" },
                limits.max_bytes / 1024
            ),
        ));
    }
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
    // The decoded image, then either a rotated copy of it or its RGB8 conversion next to it.
    let rgb8 = u64::from(w) * u64::from(h) * 3;
    let converted = if decoder.color_type() == image::ColorType::Rgb8 { 0 } else { rgb8 };
    let rotated = if orientation.is_some_and(orientation_copies) { needed } else { 0 };
    let peak = needed + converted.max(rotated);
    if peak > limits.max_bytes {
        return Err(Error::new(
            ErrorKind::ImageTooLarge,
            format!(
                "{format:?} image {w}x{h} ({:?}) needs {} KiB to decode ({} KiB decoded + {} KiB {}), more than the \
                 accepted {} KiB; refusing to decode",
                decoder.color_type(),
                peak.div_ceil(1024),
                needed.div_ceil(1024),
                converted.max(rotated).div_ceil(1024),
                if converted >= rotated { "converted to 8-bit RGB" } else { "rotated copy" },
                limits.max_bytes / 1024
            ),
        ));
    }
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

/// Converts any decoded layout to RGB8 as Pillow's `convert('RGB')` does for the same file,
/// allocating nothing but the RGB8 result.
fn to_rgb8_like_pillow(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        // Pillow unpacks 16-bit samples by keeping the most significant byte (alpha dropped
        // without compositing, gray replicated).
        DynamicImage::ImageRgb16(i) => high_bytes(&i),
        DynamicImage::ImageRgba16(i) => high_bytes(&i),
        DynamicImage::ImageLuma16(i) => high_bytes(&i),
        DynamicImage::ImageLumaA16(i) => high_bytes(&i),
        // Alpha is dropped, gray replicated, floats clamped and scaled.
        other => other.to_rgb8(),
    }
}

fn high_bytes<P: Pixel<Subpixel = u16>>(img: &image::ImageBuffer<P, Vec<u16>>) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).to_rgb().0;
        image::Rgb([(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
    })
}

#[cfg(test)]
#[path = "../../tests/fixtures/bad/crafted_jpeg.rs"]
mod crafted_jpeg;

#[cfg(test)]
mod tests {
    use super::*;

    const SUB_444: [(u8, u8); 3] = [(1, 1); 3];
    const SUB_420: [(u8, u8); 3] = [(2, 2), (1, 1), (1, 1)];

    #[test]
    fn crafted_jpegs_decode_to_flat_grey() {
        for progressive in [false, true] {
            for sampling in [&SUB_444[..], &SUB_420[..], &[(1, 1)][..]] {
                let jpeg = crafted_jpeg::flat_jpeg(37, 21, sampling, progressive);
                let rgb = decode_bytes(&jpeg, false, DecodeLimits::default())
                    .unwrap_or_else(|e| panic!("{progressive} {sampling:?}: {}", e.message()));
                assert_eq!(rgb.dimensions(), (37, 21));
                assert!(rgb.pixels().all(|p| p.0 == [128, 128, 128]), "{progressive} {sampling:?}");
            }
        }
    }

    /// A progressive JPEG keeps every DCT coefficient (2 bytes per sample and component) until
    /// its last scan: with 4:4:4 that is twice the decoded RGB size on top of it. Its memory must
    /// fit the limit, not just its pixels.
    #[test]
    fn progressive_jpeg_coefficients_count_against_the_limit() {
        // 512x512 RGB is 768 KiB: within a 1 MiB limit; the coefficients add 1.5 MiB.
        let limits = DecodeLimits { max_side: 16384, max_bytes: 1 << 20 };
        let baseline = crafted_jpeg::flat_jpeg(512, 512, &SUB_444, false);
        assert_eq!(decode_bytes(&baseline, false, limits).unwrap().dimensions(), (512, 512));
        let progressive = crafted_jpeg::flat_jpeg(512, 512, &SUB_444, true);
        let e = decode_bytes(&progressive, false, limits).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageTooLarge, "{}", e.message());
        assert!(e.message().contains("progressive JPEG 512x512"), "{}", e.message());
        assert!(e.message().contains("2304 KiB") && e.message().contains("1024 KiB"), "{}", e.message());
        // 4:2:0 keeps half as many coefficients (768 KiB): 1.5 MiB in all, still refused; with a
        // 2 MiB limit it decodes.
        let progressive = crafted_jpeg::flat_jpeg(512, 512, &SUB_420, true);
        assert_eq!(decode_bytes(&progressive, false, limits).unwrap_err().kind(), ErrorKind::ImageTooLarge);
        let limits = DecodeLimits { max_side: 16384, max_bytes: 2 << 20 };
        assert_eq!(decode_bytes(&progressive, false, limits).unwrap().dimensions(), (512, 512));
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("panderm-decode-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn read_image_file_reads_regular_files_within_the_limit() {
        let dir = temp("read-ok");
        let p = dir.join("a.jpg");
        std::fs::write(&p, b"0123456789").unwrap();
        let limits = DecodeLimits { max_side: 100, max_bytes: 10 };
        assert_eq!(read_image_file(&p, limits).unwrap(), b"0123456789");
        // One byte over: refused from the metadata, naming the file and both sizes.
        std::fs::write(&p, b"0123456789A").unwrap();
        let e = read_image_file(&p, limits).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageTooLarge);
        assert!(
            e.message().contains("a.jpg: file is 11 bytes") && e.message().contains("accepted 10 bytes"),
            "{}",
            e.message()
        );
        // Missing: an I/O error naming the file.
        let e = read_image_file(&dir.join("missing.jpg"), limits).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("missing.jpg"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn read_image_file_refuses_what_is_not_a_regular_file() {
        let dir = temp("read-special");
        let limits = DecodeLimits::default();
        let e = read_image_file(&dir, limits).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().ends_with("is a folder, not an image file"), "{}", e.message());
        #[cfg(unix)]
        {
            let e = read_image_file(Path::new("/dev/zero"), limits).unwrap_err();
            assert!(e.message().ends_with("is a character device, not a regular file"), "{}", e.message());
            let fifo = dir.join("fifo.jpg");
            let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Refused by path before opening, and by the handle when opened (no writer: an
            // ordinary open would block forever).
            let e = read_image_file(&fifo, limits).unwrap_err();
            assert!(e.message().ends_with("is a named pipe (FIFO), not a regular file"), "{}", e.message());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn jpeg_frame_walk() {
        let jpeg = crafted_jpeg::flat_jpeg(37, 21, &SUB_420, true);
        let f = jpeg_frame(&jpeg).unwrap();
        assert_eq!(
            f,
            JpegFrame {
                progressive: true,
                width: 37,
                height: 21,
                sampling: vec![(2, 2), (1, 1), (1, 1)],
                first_scan: Some(3)
            }
        );
        // 3x2 MCUs of 16x16: 4 luma + 2 chroma blocks each, 128 bytes per block.
        assert_eq!(jpeg_coefficient_bytes(&f), 3 * 2 * 6 * 128);
        let baseline = jpeg_frame(&crafted_jpeg::flat_jpeg(37, 21, &SUB_420, false)).unwrap();
        assert_eq!(jpeg_coefficient_bytes(&baseline), 0);
        // A baseline JPEG whose components come in separate scans keeps them all too.
        assert_eq!(jpeg_coefficient_bytes(&JpegFrame { first_scan: Some(1), ..baseline }), 3 * 2 * 6 * 128);
        assert_eq!(jpeg_frame(b"\xff\xd8\xff\xd9"), None);
        assert_eq!(jpeg_frame(b"\xff\xd8\xff\xc0\x00"), None, "truncated segment");
    }

    #[test]
    fn sixteen_bit_rgba_and_gray_keep_the_high_byte() {
        let mut buf = Vec::new();
        let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_pixel(2, 2, image::Rgba([0x12ff, 0x0080, 0xffff, 0]));
        DynamicImage::ImageRgba16(img).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        let rgb = decode_bytes(&buf, false, DecodeLimits::default()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [0x12, 0x00, 0xff]));
        let mut buf = Vec::new();
        let img = image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(2, 2, image::LumaA([0xab12, 7]));
        DynamicImage::ImageLumaA16(img).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        let rgb = decode_bytes(&buf, false, DecodeLimits::default()).unwrap();
        assert!(rgb.pixels().all(|p| p.0 == [0xab; 3]));
    }

    /// An RGBA PNG is converted to RGB next to its decoded pixels: both count.
    #[test]
    fn conversion_buffer_counts_against_the_limit() {
        let mut buf = Vec::new();
        let rgba = image::RgbaImage::from_pixel(100, 100, image::Rgba([1, 2, 3, 4]));
        DynamicImage::ImageRgba8(rgba).write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png).unwrap();
        // 40 000 bytes decoded + 30 000 converted.
        let limits = |max_bytes| DecodeLimits { max_side: 1000, max_bytes };
        assert!(decode_bytes(&buf, false, limits(70_000)).is_ok());
        let e = decode_bytes(&buf, false, limits(69_999)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageTooLarge);
        assert!(e.message().contains("Png image 100x100 (Rgba8) needs 69 KiB"), "{}", e.message());
    }

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
