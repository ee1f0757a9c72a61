//! The C ABI (src/capi.rs, include/panderm.h): results equal `panderm classify --json`, frames in
//! every pixel format, return codes for every misuse, threads, the log callback, the header's
//! freshness, and the C example (examples/c/classify.c) compiled with the system C compiler and
//! run natively or, in the ARM suites, under qemu. Also `panderm classify --raw` and `--log-level`.

mod common;

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::Mutex;

use common::*;
use panderm_edge::capi::*;
use panderm_edge::frame::{Frame, PixelFormat, rgb_digest};
use panderm_edge::preprocess::{DecodeLimits, decode_file};
use serde_json::Value;

const PHOTO: &str = "clinical_forearm_iphone14.jpg";

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn cpath(p: &Path) -> CString {
    cstr(&p.to_string_lossy())
}

fn last_error() -> Option<String> {
    let p = panderm_last_error();
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Opens a bundle through the C ABI.
fn open(dir: &Path, key: Option<&Path>) -> Result<*mut panderm_bundle, (c_int, String)> {
    let dir = cpath(dir);
    let key = key.map(cpath);
    let mut b = ptr::null_mut();
    let rc = unsafe { panderm_bundle_open(dir.as_ptr(), key.as_ref().map_or(ptr::null(), |k| k.as_ptr()), &mut b) };
    if rc == PANDERM_OK {
        assert!(!b.is_null());
        assert_eq!(last_error(), None);
        Ok(b)
    } else {
        assert!(b.is_null(), "*out is NULL on error");
        Err((rc, last_error().expect("a message for every error")))
    }
}

thread_local! {
    /// `panderm_last_error` right after the last classification (before its JSON was freed).
    static CLASSIFY_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The message `panderm_last_error` gave right after this thread's last classification.
fn classify_error() -> Option<String> {
    CLASSIFY_ERROR.with(|e| e.borrow().clone())
}

/// Takes a returned JSON string (and frees it).
fn take_json(p: *mut c_char) -> Value {
    assert!(!p.is_null());
    CLASSIFY_ERROR.with(|e| *e.borrow_mut() = last_error());
    let v = serde_json::from_slice(unsafe { CStr::from_ptr(p) }.to_bytes()).expect("valid JSON");
    unsafe { panderm_string_free(p) };
    assert_eq!(last_error(), None, "freeing a returned string succeeds");
    v
}

fn classify_file(b: *mut panderm_bundle, path: &Path) -> (c_int, Option<Value>) {
    let path = cpath(path);
    let mut json = ptr::null_mut();
    let rc = unsafe { panderm_classify_file(b, path.as_ptr(), &mut json) };
    (rc, (!json.is_null()).then(|| take_json(json)))
}

fn classify_rgb(
    b: *mut panderm_bundle,
    pixels: &[u8],
    (w, h, stride): (u32, u32, u32),
    fmt: u32,
) -> (c_int, Option<Value>) {
    let mut json = ptr::null_mut();
    let rc = unsafe { panderm_classify_rgb(b, pixels.as_ptr(), w, h, stride, fmt, &mut json) };
    (rc, (!json.is_null()).then(|| take_json(json)))
}

/// A report without its timings (`timings`, and every `ms` / `*_ms` value: the only values that
/// differ between two runs).
fn untimed(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| k != "timings" && k != "ms" && !k.ends_with("_ms"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn probabilities(v: &Value) -> Vec<Vec<f64>> {
    v["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect())
        .collect()
}

/// The fixture photo's pixels (what the JPEG decoder gives).
fn photo_rgb() -> image::RgbImage {
    decode_file(&image(PHOTO), false, DecodeLimits::default()).unwrap()
}

/// A 256x228 downscale of the fixture photo (its shorter side just above the quality gate's 224),
/// written once as a PNG (lossless: decoding the file gives exactly these pixels). The tests
/// classify it rather than the 1528x1360 JPEG, which keeps the runs under qemu short.
fn small() -> &'static (PathBuf, image::RgbImage) {
    static SMALL: std::sync::OnceLock<(PathBuf, image::RgbImage)> = std::sync::OnceLock::new();
    SMALL.get_or_init(|| {
        let rgb = image::imageops::resize(&photo_rgb(), 256, 228, image::imageops::FilterType::Triangle);
        let path = temp_dir("capi-small").join("photo.png");
        rgb.save(&path).unwrap();
        (path, rgb)
    })
}

fn small_photo() -> PathBuf {
    small().0.clone()
}

fn small_rgb() -> image::RgbImage {
    small().1.clone()
}

/// `rgb` in `fmt` with `pad` bytes after each row (NV12: BT.601 full-range, chroma averaged over
/// each 2x2 block). Returns the buffer and its stride.
fn encode(rgb: &image::RgbImage, fmt: PixelFormat, pad: usize) -> (Vec<u8>, usize) {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let stride = fmt.row_bytes(w as u32).unwrap() + pad;
    let mut out = vec![0xEEu8; stride * fmt.rows(h as u32) as usize];
    for (x, y, p) in rgb.enumerate_pixels() {
        let [r, g, b] = p.0;
        let (x, y) = (x as usize, y as usize);
        let at = y * stride;
        match fmt {
            PixelFormat::Rgb8 => out[at + 3 * x..at + 3 * x + 3].copy_from_slice(&[r, g, b]),
            PixelFormat::Bgr8 => out[at + 3 * x..at + 3 * x + 3].copy_from_slice(&[b, g, r]),
            PixelFormat::Rgba8 => out[at + 4 * x..at + 4 * x + 4].copy_from_slice(&[r, g, b, 7]),
            PixelFormat::Bgra8 => out[at + 4 * x..at + 4 * x + 4].copy_from_slice(&[b, g, r, 7]),
            PixelFormat::Nv12 => {
                let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
                out[at + x] = (0.299 * r + 0.587 * g + 0.114 * b).round() as u8;
            }
        }
    }
    if fmt == PixelFormat::Nv12 {
        for by in 0..h / 2 {
            for bx in 0..w / 2 {
                let (mut cb, mut cr) = (0.0, 0.0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let [r, g, b] = rgb.get_pixel((2 * bx + dx) as u32, (2 * by + dy) as u32).0.map(f64::from);
                    cb += 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b;
                    cr += 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b;
                }
                let at = (h + by) * stride + 2 * bx;
                out[at] = (cb / 4.0).round().clamp(0.0, 255.0) as u8;
                out[at + 1] = (cr / 4.0).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    (out, stride)
}

#[test]
fn file_result_is_what_the_cli_prints() {
    let b = open(&demo(), None).unwrap();
    let img = small_photo();
    let (rc, json) = classify_file(b, &img);
    assert_eq!(rc, PANDERM_OK, "{:?}", last_error());
    let json = json.unwrap();
    assert_eq!(json["status"], "assessed");
    let out = panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", &img.to_string_lossy()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(untimed(json), untimed(cli));
    unsafe { panderm_bundle_close(b) };
    assert_eq!(last_error(), None);
}

#[test]
fn every_pixel_format_and_stride_gives_the_files_result() {
    let b = open(&demo(), None).unwrap();
    let (_, file) = classify_file(b, &small_photo());
    let file = file.unwrap();
    let rgb = small_rgb();
    let (w, h) = rgb.dimensions();
    let digest = rgb_digest(&rgb);
    // Each format once, with and without row padding (odd, even, none).
    for (fmt, pad) in
        [(PixelFormat::Rgb8, 0), (PixelFormat::Rgba8, 13), (PixelFormat::Bgr8, 5), (PixelFormat::Bgra8, 0)]
    {
        let (buf, stride) = encode(&rgb, fmt, pad);
        let (rc, json) = classify_rgb(b, &buf, (w, h, stride as u32), fmt.code());
        assert_eq!(rc, PANDERM_OK, "{fmt} pad {pad}: {:?}", last_error());
        let json = json.unwrap();
        assert_eq!(json["image"], format!("frame:{w}x{h}:{fmt}"));
        assert_eq!(json["image_sha256"], digest, "{fmt}: digest of the packed RGB8 pixels");
        // Same pixels, same pipeline: the same numbers as the PNG file, bit for bit.
        assert_eq!(probabilities(&json), probabilities(&file), "{fmt} pad {pad}");
        assert_eq!(untimed(json["quality"].clone()), untimed(file["quality"].clone()), "{fmt}");
    }
    // NV12 loses chroma resolution: the result is the Rust API's on the same frame, and close to
    // the file's.
    let (buf, stride) = encode(&rgb, PixelFormat::Nv12, 6);
    let (rc, json) = classify_rgb(b, &buf, (w, h, stride as u32), PANDERM_PIXEL_NV12);
    assert_eq!(rc, PANDERM_OK, "{:?}", last_error());
    let json = json.unwrap();
    let frame = Frame::new(&buf, w, h, stride, PixelFormat::Nv12).unwrap();
    let classifier = panderm_edge::classify::Classifier::load(&demo()).unwrap();
    // Through the JSON text, as the C ABI writes it (f32 values print shortest).
    let rust =
        serde_json::from_str(&serde_json::to_string(&classifier.classify_frame(&frame).unwrap()).unwrap()).unwrap();
    assert_eq!(untimed(json.clone()), untimed(rust));
    for (a, f) in probabilities(&json).iter().zip(probabilities(&file)) {
        for (x, y) in a.iter().zip(f) {
            assert!((x - y).abs() < 0.05, "NV12 {x} vs file {y}");
        }
    }
    // The round trip RGB -> NV12 -> RGB stays within a few levels on this photo.
    let back = frame.to_rgb(DecodeLimits::default()).unwrap();
    let mean_err: f64 = back.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
        / rgb.as_raw().len() as f64;
    assert!(mean_err < 3.0, "mean error {mean_err}");
    unsafe { panderm_bundle_close(b) };
}

#[test]
fn misuse_gives_error_codes() {
    let img = cpath(&small_photo());
    let mut json: *mut c_char = 7 as *mut c_char;
    let mut b = ptr::null_mut();
    // Opening.
    assert_eq!(unsafe { panderm_bundle_open(ptr::null(), ptr::null(), &mut b) }, PANDERM_ERR_INVALID_ARGUMENT);
    assert!(last_error().unwrap().contains("dir is NULL"));
    let demo_c = cpath(&demo());
    assert_eq!(
        unsafe { panderm_bundle_open(demo_c.as_ptr(), ptr::null(), ptr::null_mut()) },
        PANDERM_ERR_INVALID_ARGUMENT
    );
    assert_eq!(unsafe { panderm_bundle_open(cstr("").as_ptr(), ptr::null(), &mut b) }, PANDERM_ERR_INVALID_ARGUMENT);
    let (rc, msg) = open(Path::new("/nonexistent/bundle"), None).unwrap_err();
    assert_eq!(rc, PANDERM_ERR_IO, "{msg}");
    let (rc, msg) = open(&demo(), Some(Path::new("/nonexistent/key.pub"))).unwrap_err();
    assert_eq!(rc, PANDERM_ERR_IO, "{msg}");
    // Handles: NULL, never opened, closed, closed twice.
    assert_eq!(unsafe { panderm_classify_file(ptr::null_mut(), img.as_ptr(), &mut json) }, PANDERM_ERR_BAD_HANDLE);
    assert!(json.is_null(), "*json_out is NULL on every error");
    let bogus = 0x1234 as *mut panderm_bundle;
    assert_eq!(unsafe { panderm_classify_file(bogus, img.as_ptr(), &mut json) }, PANDERM_ERR_BAD_HANDLE);
    let b = open(&demo(), None).unwrap();
    unsafe { panderm_bundle_close(b) };
    assert_eq!(last_error(), None);
    assert_eq!(unsafe { panderm_classify_file(b, img.as_ptr(), &mut json) }, PANDERM_ERR_BAD_HANDLE);
    assert!(last_error().unwrap().contains("not open"));
    let px = [0u8; 64];
    assert_eq!(classify_rgb(b, &px, (2, 2, 6), PANDERM_PIXEL_RGB8).0, PANDERM_ERR_BAD_HANDLE);
    unsafe { panderm_bundle_close(b) };
    assert!(last_error().unwrap().contains("closed twice"), "double close is reported");
    unsafe { panderm_bundle_close(ptr::null_mut()) };
    assert_eq!(last_error(), None, "closing NULL is a no-op");
    // A new bundle never gets a closed bundle's handle.
    let b2 = open(&demo(), None).unwrap();
    assert_ne!(b2, b);
    // Arguments.
    let b = b2;
    assert_eq!(unsafe { panderm_classify_file(b, ptr::null(), &mut json) }, PANDERM_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { panderm_classify_file(b, img.as_ptr(), ptr::null_mut()) }, PANDERM_ERR_INVALID_ARGUMENT);
    let missing = cstr("/nonexistent/photo.jpg");
    assert_eq!(unsafe { panderm_classify_file(b, missing.as_ptr(), &mut json) }, PANDERM_ERR_IO);
    let not_image = cpath(&demo().join("manifest.toml"));
    assert_eq!(unsafe { panderm_classify_file(b, not_image.as_ptr(), &mut json) }, PANDERM_ERR_IMAGE_DECODE);
    let rgb = |p: *const u8, w, h, s, f| {
        let mut json = ptr::null_mut();
        let rc = unsafe { panderm_classify_rgb(b, p, w, h, s, f, &mut json) };
        assert!(json.is_null());
        (rc, last_error().unwrap_or_default())
    };
    let p = px.as_ptr();
    let cases: [(&str, (c_int, String), &str); 8] = [
        ("NULL pixels", rgb(ptr::null(), 2, 2, 6, PANDERM_PIXEL_RGB8), "pixels is NULL"),
        ("zero width", rgb(p, 0, 2, 6, PANDERM_PIXEL_RGB8), "no pixels"),
        ("zero height", rgb(p, 2, 0, 6, PANDERM_PIXEL_RGB8), "no pixels"),
        ("zero stride", rgb(p, 2, 2, 0, PANDERM_PIXEL_RGB8), "shorter than a row"),
        ("short stride", rgb(p, 2, 2, 7, PANDERM_PIXEL_RGBA8), "shorter than a row"),
        ("odd NV12", rgb(p, 3, 2, 4, PANDERM_PIXEL_NV12), "even"),
        ("unknown format", rgb(p, 2, 2, 6, 5), "unknown pixel format 5"),
        (
            "huge",
            rgb(p, 1 << 30, 1 << 30, u32::MAX, PANDERM_PIXEL_BGRA8),
            if usize::BITS == 64 { "shorter than a row" } else { "does not fit" },
        ),
    ];
    for (what, (rc, msg), needle) in cases {
        assert_eq!(rc, PANDERM_ERR_INVALID_ARGUMENT, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg:?} should say {needle:?}");
    }
    // Within the geometry checks but over the bundle's decode limits: refused before any pixel
    // is read or allocated (the pointer is never read: the buffer is far smaller).
    if usize::BITS == 64 {
        let (rc, msg) = rgb(p, 20_000, 20_000, 60_000, PANDERM_PIXEL_RGB8);
        assert_eq!(rc, PANDERM_ERR_IMAGE_TOO_LARGE, "{msg}");
    }
    // Strings: NULL ignored, unknown and double frees refused.
    unsafe { panderm_string_free(ptr::null_mut()) };
    assert_eq!(last_error(), None);
    let mut own = *b"not ours\0";
    unsafe { panderm_string_free(own.as_mut_ptr().cast()) };
    assert!(last_error().unwrap().contains("not returned by panderm"));
    let mut json = ptr::null_mut();
    assert_eq!(unsafe { panderm_classify_file(b, img.as_ptr(), &mut json) }, PANDERM_OK);
    unsafe { panderm_string_free(json) };
    assert_eq!(last_error(), None);
    unsafe { panderm_string_free(json) };
    assert!(last_error().unwrap().contains("already freed"));
    // Threads, log levels.
    assert_eq!(panderm_set_threads(0), PANDERM_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { panderm_set_log_callback(None, ptr::null_mut(), 9) }, PANDERM_ERR_INVALID_ARGUMENT);
    unsafe { panderm_bundle_close(b) };
    // Names of codes.
    let name = |c| unsafe { CStr::from_ptr(panderm_code_name(c)) }.to_str().unwrap().to_owned();
    assert_eq!(name(PANDERM_MODEL_ERROR), "PANDERM_MODEL_ERROR");
    assert_eq!(name(-1), "PANDERM_UNKNOWN_CODE");
    assert_eq!(unsafe { CStr::from_ptr(panderm_version()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// A copy of the demo bundle whose `lesion_pattern` head has a NaN weight (digest updated).
fn poisoned_bundle() -> PathBuf {
    use sha2::{Digest, Sha256};
    let dir = copy_bundle("capi-nan");
    let head = dir.join("heads/lesion_pattern.onnx");
    let mut bytes = std::fs::read(&head).unwrap();
    // The weight matrix is the only 1024-byte raw_data field (tag 0x4a, length varint 0x80 0x08).
    let at = bytes.windows(3).position(|w| w == [0x4a, 0x80, 0x08]).expect("weight tensor") + 3;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&head, &bytes).unwrap();
    let old = Sha256::digest(std::fs::read(demo().join("heads/lesion_pattern.onnx")).unwrap());
    let new = Sha256::digest(&bytes);
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    edit_manifest(&dir, |m| m.replace(&hex(&old), &hex(&new)));
    dir
}

#[test]
fn cannot_assess_and_model_error_have_their_own_codes_and_json() {
    let b = open(&demo(), None).unwrap();
    // 64x64 is below the quality gate's minimum side: "cannot assess".
    let tiny = image::imageops::thumbnail(&small_rgb(), 64, 64);
    let (rc, json) = classify_rgb(b, tiny.as_raw(), (64, 64, 192), PANDERM_PIXEL_RGB8);
    assert_eq!(rc, PANDERM_CANNOT_ASSESS);
    let json = json.expect("the JSON comes with PANDERM_CANNOT_ASSESS");
    assert_eq!(json["status"], "cannot-assess");
    assert!(classify_error().unwrap().starts_with("cannot assess"), "{:?}", classify_error());
    assert!(json["heads"].as_array().unwrap().is_empty());
    unsafe { panderm_bundle_close(b) };

    let dir = poisoned_bundle();
    let b = open(&dir, None).unwrap();
    let (rc, json) = classify_file(b, &small_photo());
    assert_eq!(rc, PANDERM_MODEL_ERROR, "never PANDERM_OK: {json:?}");
    let json = json.expect("the JSON comes with PANDERM_MODEL_ERROR");
    assert_eq!(json["status"], "model-error");
    assert!(json["heads"].as_array().unwrap().is_empty());
    assert!(classify_error().unwrap().contains("model error"), "{:?}", classify_error());
    // The CLI agrees (exit 5) and prints the same object.
    let out = panderm(&["classify", "--bundle", &dir.to_string_lossy(), "--json", &small_photo().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(untimed(serde_json::from_slice(&out.stdout).unwrap()), untimed(json));
    unsafe { panderm_bundle_close(b) };
}

#[test]
fn signed_bundles_and_trusted_keys() {
    use panderm_edge::signing::SecretKey;
    let dir = copy_bundle("capi-signed");
    let key = SecretKey::from_seed([7; 32]);
    let manifest = std::fs::read(dir.join("manifest.toml")).unwrap();
    std::fs::write(dir.join("manifest.sig"), key.sign_manifest(&manifest)).unwrap();
    let pub_path = dir.parent().unwrap().join("lab.pub");
    std::fs::write(&pub_path, key.public().to_text("test")).unwrap();
    let b = open(&dir, Some(&pub_path)).unwrap();
    let (rc, json) = classify_file(b, &small_photo());
    assert_eq!(rc, PANDERM_OK);
    assert_eq!(json.unwrap()["signature"]["state"], "verified");
    unsafe { panderm_bundle_close(b) };
    // The demo bundle is unsigned: refused once a key is trusted.
    let (rc, msg) = open(&demo(), Some(&pub_path)).unwrap_err();
    assert_eq!(rc, PANDERM_ERR_UNTRUSTED, "{msg}");
    assert!(msg.contains("unsigned"), "{msg}");
}

#[test]
fn one_bundle_from_several_threads() {
    let b = open(&demo(), None).unwrap() as usize;
    let (_, want) = classify_file(b as *mut panderm_bundle, &small_photo());
    let want = probabilities(&want.unwrap());
    let rgb = small_rgb();
    let (buf, stride) = encode(&rgb, PixelFormat::Bgra8, 0);
    let (w, h) = rgb.dimensions();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (buf, want) = (&buf, &want);
                s.spawn(move || {
                    let b = b as *mut panderm_bundle;
                    for _ in 0..2 {
                        let (rc, json) = if i % 2 == 0 {
                            classify_file(b, &small_photo())
                        } else {
                            classify_rgb(b, buf, (w, h, stride as u32), PANDERM_PIXEL_BGRA8)
                        };
                        assert_eq!(rc, PANDERM_OK, "{:?}", last_error());
                        assert_eq!(&probabilities(&json.unwrap()), want);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    // Closing while other threads classify: calls in flight finish, later ones are refused.
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(move || {
                    let mut codes = Vec::new();
                    for _ in 0..3 {
                        let (rc, _) = classify_file(b as *mut panderm_bundle, &small_photo());
                        codes.push(rc);
                    }
                    codes
                })
            })
            .collect();
        unsafe { panderm_bundle_close(b as *mut panderm_bundle) };
        for w in workers {
            let codes = w.join().unwrap();
            assert!(codes.iter().all(|c| [PANDERM_OK, PANDERM_ERR_BAD_HANDLE].contains(c)), "{codes:?}");
            // Once refused, always refused.
            let first_bad = codes.iter().position(|c| *c == PANDERM_ERR_BAD_HANDLE).unwrap_or(codes.len());
            assert!(codes[first_bad..].iter().all(|c| *c == PANDERM_ERR_BAD_HANDLE), "{codes:?}");
        }
    });
}

static LOGGED: Mutex<Vec<(c_int, String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(level: c_int, target: *const c_char, message: *const c_char, user_data: *mut c_void) {
    assert_eq!(user_data as usize, 0xC0FFEE);
    let s = |p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    LOGGED.lock().unwrap().push((level, s(target), s(message)));
}

#[test]
fn log_messages_reach_the_callback() {
    assert_eq!(
        unsafe { panderm_set_log_callback(Some(collect), 0xC0FFEE as *mut c_void, PANDERM_LOG_INFO) },
        PANDERM_OK
    );
    let b = open(&demo(), None).unwrap();
    unsafe { panderm_bundle_close(b) };
    unsafe { panderm_bundle_close(b) };
    let logged = LOGGED.lock().unwrap().clone();
    let has = |level: c_int, target: &str, needle: &str| {
        logged.iter().any(|(l, t, m)| *l == level && t == target && m.contains(needle))
    };
    assert!(has(PANDERM_LOG_INFO, "panderm_edge::classify", "loaded"), "{logged:#?}");
    assert!(has(PANDERM_LOG_INFO, "panderm_edge::capi", "opened as handle"), "{logged:#?}");
    assert!(has(PANDERM_LOG_WARN, "panderm_edge::capi", "closed twice"), "{logged:#?}");
    assert!(logged.iter().all(|(l, _, _)| (PANDERM_LOG_ERROR..=PANDERM_LOG_INFO).contains(l)), "max level");
    // Off: nothing more arrives (checked on this bundle's own messages: other tests log too).
    assert_eq!(unsafe { panderm_set_log_callback(None, ptr::null_mut(), PANDERM_LOG_TRACE) }, PANDERM_OK);
    let b = open(&demo(), None).unwrap();
    unsafe { panderm_bundle_close(b) };
    let token = format!("{:#x}", b as usize);
    assert!(!LOGGED.lock().unwrap().iter().any(|(_, _, m)| m.contains(&token)), "logged after turning it off");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn header_is_current() {
    let root = root();
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let bindings =
        cbindgen::Builder::new().with_config(config).with_src(root.join("src/capi.rs")).generate().expect("cbindgen");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = root.join("include/panderm.h");
    if std::env::var("PANDERM_UPDATE_HEADER").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/panderm.h is stale: regenerate it with PANDERM_UPDATE_HEADER=1 cargo test -p panderm-edge --test capi \
         header, and commit it"
    );
}

/// The directory holding libpanderm_edge.{so,a} of this test build: `cargo test` builds them
/// (the crate is also a cdylib and a staticlib) into `target/[TRIPLE/]debug/deps`, next to this
/// test's executable.
fn lib_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().to_owned()
}

/// Runs a command built for the target (through `PANDERM_TEST_RUNNER` under emulation). Natively,
/// this build's library directory comes first on `LD_LIBRARY_PATH`: `cargo test` puts
/// `target/debug` on it too, which holds a `libpanderm_edge.so` only when some earlier
/// `cargo build` uplifted one, possibly from older sources, and it would win over the example's
/// rpath. (Under qemu the runner's `-E LD_LIBRARY_PATH` sets the guest's and the rpath is used.)
fn target_command(exe: &Path) -> Command {
    match std::env::var("PANDERM_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap());
            cmd.args(parts).arg(exe);
            cmd
        }
        _ => {
            let mut cmd = Command::new(exe);
            let mut paths = vec![lib_dir()];
            paths.extend(
                std::env::var_os("LD_LIBRARY_PATH")
                    .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            cmd.env("LD_LIBRARY_PATH", std::env::join_paths(paths).expect("library paths"));
            cmd
        }
    }
}

#[test]
fn c_example_matches_the_cli() {
    let Some(cc) = c_compiler() else {
        eprintln!("SKIPPED: no PANDERM_TEST_CC for this emulated target");
        return;
    };
    let dir = temp_dir("capi-c-example");
    let exe = dir.join("classify");
    let lib = lib_dir();
    assert!(lib.join("libpanderm_edge.so").is_file(), "{} has no libpanderm_edge.so", lib.display());
    let t = std::time::Instant::now();
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("examples/c/classify.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lpanderm_edge")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(status.success(), "{cc} failed on examples/c/classify.c");
    eprintln!("compiled the C example with {cc} in {:.1} s", t.elapsed().as_secs_f64());

    // A raw RGB8 dump of the photo's pixels: the buffer path.
    let rgb = small_rgb();
    let raw = dir.join("photo.rgb");
    std::fs::write(&raw, rgb.as_raw()).unwrap();
    let (w, h) = rgb.dimensions();
    let img = small_photo();
    let t = std::time::Instant::now();
    let out = target_command(&exe)
        .arg(demo())
        .arg(&img)
        .arg(&raw)
        .args([w.to_string(), h.to_string(), "rgb8".into()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("ran the C example in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    let cli = panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", &img.to_string_lossy()]);
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(untimed(lines[0].clone()), untimed(cli.clone()), "file: the C ABI's JSON is the CLI's");
    let raw_cli = panderm(&[
        "classify",
        "--bundle",
        &demo().to_string_lossy(),
        "--json",
        "--raw",
        &format!("{w}x{h}:rgb8"),
        &raw.to_string_lossy(),
    ]);
    assert!(raw_cli.status.success(), "{}", String::from_utf8_lossy(&raw_cli.stderr));
    let raw_cli: Value = serde_json::from_slice(&raw_cli.stdout).unwrap();
    assert_eq!(lines[1]["image"], format!("frame:{w}x{h}:rgb8"));
    assert_eq!(lines[1]["image_sha256"], raw_cli["image_sha256"]);
    assert_eq!(probabilities(&lines[1]), probabilities(&cli), "buffer: same probabilities as the file");
    assert_eq!(probabilities(&raw_cli), probabilities(&cli), "--raw: same probabilities as the file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_raw_frames() {
    let dir = temp_dir("capi-cli-raw");
    let rgb = small_rgb();
    let (w, h) = rgb.dimensions();
    let bundle = demo().to_string_lossy().into_owned();
    let classify = |spec: &str, file: &Path| {
        panderm(&["classify", "--bundle", &bundle, "--json", "--raw", spec, &file.to_string_lossy()])
    };
    // NV12 with padded rows (the stride is inferred from the file's size).
    let (nv12, stride) = encode(&rgb, PixelFormat::Nv12, 64);
    let path = dir.join("frame.nv12");
    std::fs::write(&path, &nv12).unwrap();
    let out = classify(&format!("{w}x{h}:nv12"), &path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["image"], path.to_string_lossy().as_ref(), "a raw dump is named by its path");
    let frame = Frame::new(&nv12, w, h, stride, PixelFormat::Nv12).unwrap();
    assert_eq!(v["image_sha256"], rgb_digest(&frame.to_rgb(DecodeLimits::default()).unwrap()));
    // A size that fits no geometry (one byte short); a bad spec (exit 2, from the argument parser).
    std::fs::write(&path, &nv12[..nv12.len() - 1]).unwrap();
    let out = classify(&format!("{w}x{h}:nv12"), &path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the file holds") && stderr.contains("frame.nv12"), "{stderr}");
    let out = classify("640x480:yuyv", &path);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown pixel format"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_log_level() {
    let img = small_photo().to_string_lossy().into_owned();
    let bundle = demo().to_string_lossy().into_owned();
    let out = panderm(&["--log-level", "debug", "classify", "--bundle", &bundle, "--json", &img]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("debug: panderm_edge::classify:"), "{stderr}");
    // The default (warn) keeps stderr quiet on success; RUST_LOG applies without --log-level.
    let out = panderm(&["classify", "--bundle", &bundle, "--json", &img]);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = panderm_command().env("RUST_LOG", "info").args(["classify", "--bundle", &bundle, &img]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("loaded"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = panderm(&["--log-level", "loud", "classify", "--bundle", &bundle, &img]);
    assert_eq!(out.status.code(), Some(2));
}

/// Natively: the example linked against the static library (one self-contained executable), and
/// under AddressSanitizer (the C side's frees and buffer handling; the library's allocations go
/// through the same interposed malloc). Not under emulation (qemu-user does not run ASan).
#[test]
fn c_example_static_and_under_asan() {
    if std::env::var("PANDERM_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!("SKIPPED: static and ASan runs are native only");
        return;
    }
    let cc = c_compiler().unwrap();
    let dir = temp_dir("capi-c-static");
    let lib = lib_dir();
    let img = small_photo();
    let compile = |exe: &Path, extra: &[&str], link: &[&str]| {
        Command::new(&cc)
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
            .args(extra)
            .arg("-I")
            .arg(root().join("include"))
            .arg(root().join("examples/c/classify.c"))
            .arg("-o")
            .arg(exe)
            .args(link)
            .output()
            .unwrap()
    };
    let run = |exe: &Path| {
        let out = target_command(exe).arg(demo()).arg(&img).env("ASAN_OPTIONS", "detect_leaks=1").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", exe.display());
        assert!(!stderr.contains("Sanitizer"), "{stderr}");
        let line = String::from_utf8_lossy(&out.stdout).lines().next().expect("a JSON line").to_owned();
        untimed(serde_json::from_str(&line).unwrap())
    };
    let cli = panderm(&["classify", "--bundle", &demo().to_string_lossy(), "--json", &img.to_string_lossy()]);
    let cli = untimed(serde_json::from_slice(&cli.stdout).unwrap());

    // Static: the libraries `rustc --print native-static-libs` lists for the staticlib, and no
    // executable stack (tract's assembly objects carry no .note.GNU-stack).
    let t = std::time::Instant::now();
    let exe = dir.join("classify-static");
    let archive = lib.join("libpanderm_edge.a").to_string_lossy().into_owned();
    let link = [archive.as_str(), "-Wl,-z,noexecstack", "-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];
    let out = compile(&exe, &[], &link);
    assert!(out.status.success(), "static link: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(run(&exe), cli, "static library");
    eprintln!("static: linked and ran in {:.1} s", t.elapsed().as_secs_f64());

    // AddressSanitizer, when the compiler has it (gcc and clang on Debian do).
    let t = std::time::Instant::now();
    let exe = dir.join("classify-asan");
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    let libdir = format!("-L{}", lib.display());
    let out = compile(&exe, &["-fsanitize=address", "-fno-omit-frame-pointer"], &[&libdir, "-lpanderm_edge", &rpath]);
    if out.status.success() {
        assert_eq!(run(&exe), cli, "ASan build");
        eprintln!("ASan: compiled and ran in {:.1} s", t.elapsed().as_secs_f64());
    } else {
        assert!(
            std::env::var("PANDERM_REQUIRE_ASAN").is_err(),
            "no AddressSanitizer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("SKIPPED: {cc} cannot build with -fsanitize=address");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
