//! The C ABI (`include/panderm.h`, generated from this file by cbindgen; docs/c-api.md).
//!
//! Firmware opens a verified bundle once, then classifies image files or camera frames; every
//! result is the JSON object `panderm classify --json` prints for one image. Rules that hold for
//! every function here:
//!
//! * **No panic crosses the boundary**: every entry point runs under `catch_unwind` and turns a
//!   panic into [`PANDERM_ERR_PANIC`]. This needs the unwinding panic strategy, which the
//!   `release`, `dev` and `device` profiles use; a library built with `panic = "abort"` would
//!   abort the process instead.
//! * **Handles are checked**: a `panderm_bundle *` is an opaque token looked up in a registry,
//!   never dereferenced. NULL, a closed handle, a handle closed twice, or any value that
//!   [`panderm_bundle_open`] did not return gives [`PANDERM_ERR_BAD_HANDLE`]. Tokens are never
//!   reused. Strings returned by the library are registered too: [`panderm_string_free`] refuses
//!   a pointer it did not hand out, or one already freed.
//! * **Errors**: every function returning `int` returns [`PANDERM_OK`] (0) or one of the codes
//!   below; [`panderm_last_error`] then holds a one-line message (thread-local).
//! * **Threads**: a bundle may be used from several threads at once (classification only reads
//!   it); closing it while another thread classifies with it is safe (the call in flight finishes
//!   first, later calls get [`PANDERM_ERR_BAD_HANDLE`]).
//!
//! What stays undefined behaviour, as for any C API: non-NULL pointers that do not point to what
//! the function expects (a string without its terminating NUL, a pixel buffer shorter than the
//! geometry given, a `json_out` that is not writable), releasing a returned string with `free()`
//! instead of [`panderm_string_free`], using a returned string after freeing it, using the
//! [`panderm_last_error`] pointer after the next call on that thread, and a log callback that
//! unwinds (a C++ exception) into the library.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::classify::{Classifier, DEFAULT_TOP_K, Status};
use crate::error::{Error, ErrorKind};
use crate::frame::{Frame, PixelFormat};
use crate::signing::Trust;

// ------------------------------------------------------------------------------------------------
// Return codes

/// Success: the bundle opened, or the image was classified and **assessed** (`"status":
/// "assessed"` in the JSON; its decision may be shown).
pub const PANDERM_OK: c_int = 0;
/// An unexpected internal failure (a bug: please report it with the message).
pub const PANDERM_ERR_INTERNAL: c_int = 1;
/// A NULL pointer, a zero width or height, a stride shorter than a row, an odd NV12 size, an
/// unknown pixel format or log level, a path that is not valid for this system.
pub const PANDERM_ERR_INVALID_ARGUMENT: c_int = 2;
/// The `panderm_bundle *` is NULL, closed, or was never returned by `panderm_bundle_open`.
pub const PANDERM_ERR_BAD_HANDLE: c_int = 3;
/// Classified, but **cannot assess** (quality gate, out of distribution, low confidence;
/// `"status": "cannot-assess"`): show no decision, ask for a retake or refer. The JSON is
/// returned. Same value as `panderm classify`'s exit code 4.
pub const PANDERM_CANNOT_ASSESS: c_int = 4;
/// The model produced numbers that cannot back a decision (NaN/Inf, outputs that are not
/// probabilities; `"status": "model-error"`): show no decision and **stop using this bundle**.
/// The JSON is returned. Same value as `panderm classify`'s exit code 5.
pub const PANDERM_MODEL_ERROR: c_int = 5;
/// A file could not be read (missing, permission denied, not a regular file).
pub const PANDERM_ERR_IO: c_int = 6;
/// The image bytes are not a decodable image (corrupt, truncated, unknown format).
pub const PANDERM_ERR_IMAGE_DECODE: c_int = 7;
/// The image or frame exceeds the bundle's decode limits (size or pixels), refused before
/// decoding.
pub const PANDERM_ERR_IMAGE_TOO_LARGE: c_int = 8;
/// The bundle is refused: a manifest value, a digest, or a model file does not load.
pub const PANDERM_ERR_MODEL_LOAD: c_int = 9;
/// The model failed while running.
pub const PANDERM_ERR_INFERENCE: c_int = 10;
/// The bundle's signature is missing, malformed or not made by the trusted key.
pub const PANDERM_ERR_UNTRUSTED: c_int = 11;
/// A panic inside the library was caught; the call did nothing visible. Report it.
pub const PANDERM_ERR_PANIC: c_int = 12;
/// `panderm_set_log_callback`: another `log` logger is already installed in this process (a
/// Rust host application's).
pub const PANDERM_ERR_LOGGER: c_int = 13;

// ------------------------------------------------------------------------------------------------
// Pixel formats

/// How a frame's pixels are laid out (`panderm_classify_rgb`). A plain integer type, so that any
/// value a caller passes is defined behaviour; an unknown one gives
/// `PANDERM_ERR_INVALID_ARGUMENT`.
pub type panderm_pixel_format = u32;
/// 8-bit R, G, B; `stride_bytes >= 3 * width`.
pub const PANDERM_PIXEL_RGB8: panderm_pixel_format = 0;
/// 8-bit R, G, B, A (alpha ignored); `stride_bytes >= 4 * width`.
pub const PANDERM_PIXEL_RGBA8: panderm_pixel_format = 1;
/// 8-bit B, G, R; `stride_bytes >= 3 * width`.
pub const PANDERM_PIXEL_BGR8: panderm_pixel_format = 2;
/// 8-bit B, G, R, A (alpha ignored); `stride_bytes >= 4 * width`.
pub const PANDERM_PIXEL_BGRA8: panderm_pixel_format = 3;
/// NV12: a Y plane of `height` rows, immediately followed by an interleaved U, V plane of
/// `height / 2` rows, both with `stride_bytes >= width`; even width and height; BT.601 full range.
pub const PANDERM_PIXEL_NV12: panderm_pixel_format = 4;

// ------------------------------------------------------------------------------------------------
// Log levels

/// Log levels (`max_level` of `panderm_set_log_callback`, `level` of the callback): no messages.
pub const PANDERM_LOG_OFF: c_int = 0;
/// Errors.
pub const PANDERM_LOG_ERROR: c_int = 1;
/// Warnings.
pub const PANDERM_LOG_WARN: c_int = 2;
/// Information (a bundle loaded, ...).
pub const PANDERM_LOG_INFO: c_int = 3;
/// Debugging (each classification's stages and timings; tract's own messages).
pub const PANDERM_LOG_DEBUG: c_int = 4;
/// Everything.
pub const PANDERM_LOG_TRACE: c_int = 5;

/// A log callback: `level` is one of `PANDERM_LOG_ERROR` ... `PANDERM_LOG_TRACE`, `target` the
/// emitting Rust module (`panderm_edge::classify`, `tract_core::...`), `message` one line; both
/// strings are valid only during the call. Called on whichever thread logs, possibly several
/// at once: it must be thread-safe and must not unwind. It may call panderm functions.
pub type panderm_log_callback =
    Option<unsafe extern "C" fn(level: c_int, target: *const c_char, message: *const c_char, user_data: *mut c_void)>;

/// An open bundle. Opaque: only ever handled through a pointer returned by
/// `panderm_bundle_open`, which is a token, not an address.
pub struct panderm_bundle {
    _opaque: [u8; 0],
}

// ------------------------------------------------------------------------------------------------
// Registries

// A classifier is shared by reference between threads (`Arc<Classifier>` below).
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Classifier>()
};

/// Open bundles by token. Tokens start high (a small integer or a stray pointer is unlikely to
/// match) and are never reused.
static BUNDLES: Mutex<BTreeMap<usize, Arc<Classifier>>> = Mutex::new(BTreeMap::new());
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(FIRST_TOKEN);
const FIRST_TOKEN: usize = 0x5044_0000;
const TOKEN_STEP: usize = 16;

/// Addresses of the strings handed out and not yet freed.
static STRINGS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Locks a registry; a panic while it was held cannot leave it inconsistent (each update is one
/// insert or remove), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

fn clear_last_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
}

/// A failed call: its return code and message.
struct Failure {
    code: c_int,
    message: String,
}

impl Failure {
    fn new(code: c_int, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    fn null(what: &str) -> Failure {
        Failure::new(PANDERM_ERR_INVALID_ARGUMENT, format!("{what} is NULL"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(code_of(e.kind()), e.message())
    }
}

/// The return code for a library error kind.
fn code_of(kind: ErrorKind) -> c_int {
    match kind {
        ErrorKind::Io => PANDERM_ERR_IO,
        ErrorKind::ImageDecode => PANDERM_ERR_IMAGE_DECODE,
        ErrorKind::ImageTooLarge => PANDERM_ERR_IMAGE_TOO_LARGE,
        ErrorKind::ModelLoad => PANDERM_ERR_MODEL_LOAD,
        ErrorKind::Inference => PANDERM_ERR_INFERENCE,
        ErrorKind::InvalidInput => PANDERM_ERR_INVALID_ARGUMENT,
        ErrorKind::Untrusted => PANDERM_ERR_UNTRUSTED,
        ErrorKind::ModelOutput => PANDERM_MODEL_ERROR,
    }
}

/// Runs an entry point: clears the thread's last error, catches panics, records failures.
fn entry(name: &str, f: impl FnOnce() -> Result<c_int, Failure>) -> c_int {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            log::debug!("{name}: {} ({})", failure.message, code_name(failure.code));
            set_last_error(&failure.message);
            failure.code
        }
        Err(payload) => {
            let what = crate::error::panic_message(payload.as_ref());
            let message = format!("{name}: internal panic caught: {what}");
            log::error!("{message}");
            set_last_error(&message);
            PANDERM_ERR_PANIC
        }
    }
}

/// A path argument: non-NULL, NUL-terminated; any bytes on Unix.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Failure::new(PANDERM_ERR_INVALID_ARGUMENT, format!("{what} is an empty string")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(PathBuf::from)
            .map_err(|_| Failure::new(PANDERM_ERR_INVALID_ARGUMENT, format!("{what} is not UTF-8")))
    }
}

/// The classifier behind a token (kept alive by the `Arc` while in use).
fn classifier(b: *mut panderm_bundle) -> Result<Arc<Classifier>, Failure> {
    if b.is_null() {
        return Err(Failure::new(PANDERM_ERR_BAD_HANDLE, "the bundle handle is NULL"));
    }
    lock(&BUNDLES).get(&(b as usize)).cloned().ok_or_else(|| {
        Failure::new(PANDERM_ERR_BAD_HANDLE, format!("bundle handle {b:p} is not open (closed, or never opened)"))
    })
}

/// Hands a string to the caller (registered for `panderm_string_free`).
fn give_string(s: String) -> Result<*mut c_char, Failure> {
    let c = CString::new(s).map_err(|_| Failure::new(PANDERM_ERR_INTERNAL, "result holds a NUL byte"))?;
    let p = c.into_raw();
    lock(&STRINGS).insert(p as usize);
    Ok(p)
}

/// Classifies with `run` and writes the JSON; the return code follows the report's status.
///
/// # Safety
/// `json_out` is non-NULL and writable (checked by `json_out_arg`).
unsafe fn classify_into(
    json_out: *mut *mut c_char,
    run: impl FnOnce() -> Result<(String, Status, Option<String>), Error>,
) -> Result<c_int, Failure> {
    let (json, status, message) = run()?;
    let code = match status {
        Status::Assessed => PANDERM_OK,
        Status::CannotAssess => PANDERM_CANNOT_ASSESS,
        Status::ModelError => PANDERM_MODEL_ERROR,
    };
    let p = give_string(json)?;
    // SAFETY: as above.
    unsafe { *json_out = p };
    if let Some(m) = message {
        set_last_error(&m);
    }
    Ok(code)
}

/// Checks `json_out` and sets `*json_out` to NULL.
///
/// # Safety
/// `json_out` is NULL or writable.
unsafe fn json_out_arg(json_out: *mut *mut c_char) -> Result<(), Failure> {
    if json_out.is_null() {
        return Err(Failure::null("json_out"));
    }
    // SAFETY: non-NULL and writable by the caller's contract.
    unsafe { *json_out = std::ptr::null_mut() };
    Ok(())
}

fn report_json(report: &crate::classify::ClassifyReport<'_>) -> Result<(String, Status, Option<String>), Error> {
    let json = serde_json::to_string(report).map_err(|e| Error::new(ErrorKind::Inference, e.to_string()))?;
    let message = report.cannot_assess.as_ref().map(|c| c.message.clone());
    match report.status {
        Status::ModelError => log::warn!("{}: {}", report.image, message.as_deref().unwrap_or("model error")),
        Status::CannotAssess => log::info!("{}: {}", report.image, message.as_deref().unwrap_or("cannot assess")),
        Status::Assessed => {}
    }
    Ok((json, report.status, message))
}

// ------------------------------------------------------------------------------------------------
// Entry points

/// Opens and verifies a bundle directory (the same checks as `panderm verify`: signature,
/// every manifest value, every file's SHA-256, every model loaded) and writes its handle to
/// `*out`.
///
/// `trusted_key_or_null`: the path of a public key file (`KEY.pub`, written by
/// `panderm-tools keygen`); the bundle must then be signed by that key, else
/// `PANDERM_ERR_UNTRUSTED`. NULL: no key configured, unsigned bundles load (the JSON's
/// `signature.state` says `unsigned`).
///
/// Returns `PANDERM_OK`, or an error code with `*out` set to NULL.
///
/// # Safety
/// `dir` and `trusted_key_or_null` are NULL or NUL-terminated strings; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_bundle_open(
    dir: *const c_char,
    trusted_key_or_null: *const c_char,
    out: *mut *mut panderm_bundle,
) -> c_int {
    entry("panderm_bundle_open", || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let dir = unsafe { path_arg(dir, "dir") }?;
        let trust = if trusted_key_or_null.is_null() {
            Trust::none()
        } else {
            // SAFETY: as above.
            let key = unsafe { path_arg(trusted_key_or_null, "trusted_key_or_null") }?;
            Trust::read(&[key])?
        };
        let classifier = Classifier::load_with(&dir, &trust)?;
        let token = NEXT_TOKEN
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_add(TOKEN_STEP))
            .map_err(|_| Failure::new(PANDERM_ERR_INTERNAL, "no bundle handles left in this process"))?;
        lock(&BUNDLES).insert(token, Arc::new(classifier));
        // SAFETY: as above.
        unsafe { *out = token as *mut panderm_bundle };
        log::info!("bundle {} opened as handle {token:#x}", dir.display());
        Ok(PANDERM_OK)
    })
}

/// Classifies an image file (JPEG, PNG, BMP, TIFF, WebP) with the bundle, exactly like
/// `panderm classify --json` with its default top-3.
///
/// Returns `PANDERM_OK` (assessed), `PANDERM_CANNOT_ASSESS` or `PANDERM_MODEL_ERROR` with
/// `*json_out` set to the report (free it with `panderm_string_free`), or an error code with
/// `*json_out` set to NULL.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_classify_file(
    b: *mut panderm_bundle,
    path: *const c_char,
    json_out: *mut *mut c_char,
) -> c_int {
    entry("panderm_classify_file", || {
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { json_out_arg(json_out) }?;
        let c = classifier(b)?;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let path = unsafe { path_arg(path, "path") }?;
        // SAFETY: checked above.
        unsafe { classify_into(json_out, || report_json(&c.classify(&path, DEFAULT_TOP_K)?)) }
    })
}

/// Classifies a camera frame in memory: `height` rows starting every `stride_bytes` bytes, in
/// pixel format `fmt` (see `PANDERM_PIXEL_*`); converted to RGB in memory, then the same quality
/// gate, preprocessing and models as a file. The report's `image` is
/// `"frame:WIDTHxHEIGHT:FORMAT"` and its `image_sha256` the SHA-256 of the packed RGB8 pixels.
///
/// The buffer must hold `stride_bytes * (rows - 1) + row` bytes, where `rows` is `height` (NV12:
/// `height * 3 / 2`) and `row` the bytes of one unpadded row. The library reads it during the
/// call only.
///
/// Returns as `panderm_classify_file`; NULL `pixels`, a zero `width` or `height`, a stride
/// shorter than a row, an odd NV12 size or an unknown `fmt` give
/// `PANDERM_ERR_INVALID_ARGUMENT`; a frame over the bundle's decode limits
/// `PANDERM_ERR_IMAGE_TOO_LARGE`.
///
/// # Safety
/// `pixels` is NULL or points to at least the number of readable bytes given above;
/// `json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_classify_rgb(
    b: *mut panderm_bundle,
    pixels: *const u8,
    width: u32,
    height: u32,
    stride_bytes: u32,
    fmt: panderm_pixel_format,
    json_out: *mut *mut c_char,
) -> c_int {
    entry("panderm_classify_rgb", || {
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { json_out_arg(json_out) }?;
        let c = classifier(b)?;
        if pixels.is_null() {
            return Err(Failure::null("pixels"));
        }
        let format = PixelFormat::from_code(fmt).ok_or_else(|| {
            Failure::new(PANDERM_ERR_INVALID_ARGUMENT, format!("unknown pixel format {fmt} (PANDERM_PIXEL_*: 0 to 4)"))
        })?;
        let stride = stride_bytes as usize;
        let len = Frame::required_len(width, height, stride, format)?;
        // Before the buffer is touched: a frame over the limits is refused from its geometry.
        Frame::check_limits(width, height, c.decode_limits())?;
        if len > isize::MAX as usize {
            return Err(Failure::new(PANDERM_ERR_IMAGE_TOO_LARGE, "the frame does not fit in memory"));
        }
        // SAFETY: non-NULL, and `len` readable bytes by the caller's contract; only read during
        // this call.
        let bytes = unsafe { std::slice::from_raw_parts(pixels, len) };
        let frame = Frame::new(bytes, width, height, stride, format)?;
        // SAFETY: checked above.
        unsafe { classify_into(json_out, || report_json(&c.classify_frame(&frame)?)) }
    })
}

/// Frees a string returned by the library (`json_out`). NULL is ignored. A pointer the library
/// did not return, or already freed, is not touched: `panderm_last_error` then says so.
///
/// # Safety
/// Always safe to call; the pointer is only freed if the library handed it out and it was not
/// freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_string_free(s: *mut c_char) {
    entry("panderm_string_free", || {
        if s.is_null() {
            return Ok(PANDERM_OK);
        }
        if !lock(&STRINGS).remove(&(s as usize)) {
            log::warn!("panderm_string_free: {s:p} was not returned by panderm or was already freed; ignored");
            return Err(Failure::new(
                PANDERM_ERR_INVALID_ARGUMENT,
                format!("panderm_string_free: {s:p} was not returned by panderm or was already freed"),
            ));
        }
        // SAFETY: registered by `give_string` from `CString::into_raw`, and removed just now, so
        // it is freed exactly once.
        drop(unsafe { CString::from_raw(s) });
        Ok(PANDERM_OK)
    });
}

/// Closes a bundle. NULL is ignored. A handle that is not open (closed already, or never
/// returned by `panderm_bundle_open`) is not touched: `panderm_last_error` then says so. A
/// classification running on another thread with this bundle finishes normally; the models are
/// freed when it returns.
///
/// # Safety
/// Always safe to call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_bundle_close(b: *mut panderm_bundle) {
    entry("panderm_bundle_close", || {
        if b.is_null() {
            return Ok(PANDERM_OK);
        }
        let removed = lock(&BUNDLES).remove(&(b as usize));
        match removed {
            Some(c) => {
                drop(c);
                log::info!("bundle handle {:#x} closed", b as usize);
                Ok(PANDERM_OK)
            }
            None => {
                log::warn!("panderm_bundle_close: handle {b:p} is not open (closed twice?); ignored");
                Err(Failure::new(
                    PANDERM_ERR_BAD_HANDLE,
                    format!("panderm_bundle_close: handle {b:p} is not open (closed twice, or never opened)"),
                ))
            }
        }
    });
}

/// The message of the last failed call on this thread, or NULL if the last call succeeded.
/// After `PANDERM_CANNOT_ASSESS` or `PANDERM_MODEL_ERROR` it holds the report's "cannot
/// assess ..." sentence. Valid until the next panderm call on this thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn panderm_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr())))
        .unwrap_or(std::ptr::null())
}

/// The name of a return code (`"PANDERM_OK"`, `"PANDERM_CANNOT_ASSESS"`, ...), or
/// `"PANDERM_UNKNOWN_CODE"`. Static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn panderm_code_name(code: c_int) -> *const c_char {
    let name: &'static CStr = match code {
        PANDERM_OK => c"PANDERM_OK",
        PANDERM_ERR_INTERNAL => c"PANDERM_ERR_INTERNAL",
        PANDERM_ERR_INVALID_ARGUMENT => c"PANDERM_ERR_INVALID_ARGUMENT",
        PANDERM_ERR_BAD_HANDLE => c"PANDERM_ERR_BAD_HANDLE",
        PANDERM_CANNOT_ASSESS => c"PANDERM_CANNOT_ASSESS",
        PANDERM_MODEL_ERROR => c"PANDERM_MODEL_ERROR",
        PANDERM_ERR_IO => c"PANDERM_ERR_IO",
        PANDERM_ERR_IMAGE_DECODE => c"PANDERM_ERR_IMAGE_DECODE",
        PANDERM_ERR_IMAGE_TOO_LARGE => c"PANDERM_ERR_IMAGE_TOO_LARGE",
        PANDERM_ERR_MODEL_LOAD => c"PANDERM_ERR_MODEL_LOAD",
        PANDERM_ERR_INFERENCE => c"PANDERM_ERR_INFERENCE",
        PANDERM_ERR_UNTRUSTED => c"PANDERM_ERR_UNTRUSTED",
        PANDERM_ERR_PANIC => c"PANDERM_ERR_PANIC",
        PANDERM_ERR_LOGGER => c"PANDERM_ERR_LOGGER",
        _ => c"PANDERM_UNKNOWN_CODE",
    };
    name.as_ptr()
}

fn code_name(code: c_int) -> &'static str {
    // SAFETY: panderm_code_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(panderm_code_name(code)) }.to_str().unwrap_or("?")
}

/// The library's version (`"0.1.0"`). Static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn panderm_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sets the number of threads inference uses, process-wide (1, the default, runs on the calling
/// thread; a board profile's `cpu.threads` is the usual choice). Applies to later calls.
///
/// Returns `PANDERM_OK`, or `PANDERM_ERR_INVALID_ARGUMENT` for 0.
#[unsafe(no_mangle)]
pub extern "C" fn panderm_set_threads(threads: u32) -> c_int {
    entry("panderm_set_threads", || {
        crate::engine::set_threads(threads as usize)?;
        Ok(PANDERM_OK)
    })
}

/// Routes the library's log messages to `callback` (with `user_data` passed back), up to
/// `max_level` (`PANDERM_LOG_OFF` ... `PANDERM_LOG_TRACE`). A NULL callback turns logging off.
/// May be called again at any time to change the callback or the level. Nothing is logged
/// before the first call.
///
/// Returns `PANDERM_OK`; `PANDERM_ERR_INVALID_ARGUMENT` for a level outside 0-5;
/// `PANDERM_ERR_LOGGER` if the process already has another Rust `log` logger (a Rust host
/// application's), which then receives the messages instead.
///
/// # Safety
/// `callback` is NULL or a function with the `panderm_log_callback` signature that stays
/// callable (with `user_data`) until it is replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn panderm_set_log_callback(
    callback: panderm_log_callback,
    user_data: *mut c_void,
    max_level: c_int,
) -> c_int {
    entry("panderm_set_log_callback", || {
        let filter = match max_level {
            PANDERM_LOG_OFF => LevelFilter::Off,
            PANDERM_LOG_ERROR => LevelFilter::Error,
            PANDERM_LOG_WARN => LevelFilter::Warn,
            PANDERM_LOG_INFO => LevelFilter::Info,
            PANDERM_LOG_DEBUG => LevelFilter::Debug,
            PANDERM_LOG_TRACE => LevelFilter::Trace,
            _ => {
                return Err(Failure::new(
                    PANDERM_ERR_INVALID_ARGUMENT,
                    format!("log level {max_level} is not PANDERM_LOG_OFF (0) to PANDERM_LOG_TRACE (5)"),
                ));
            }
        };
        // Installed once per process; whether it could be is remembered.
        static INSTALLED: OnceLock<bool> = OnceLock::new();
        if !*INSTALLED.get_or_init(|| log::set_logger(&CALLBACK_LOGGER).is_ok()) {
            return Err(Failure::new(PANDERM_ERR_LOGGER, "another `log` logger is already installed in this process"));
        }
        *CALLBACK_LOGGER.sink.write().unwrap_or_else(|e| e.into_inner()) =
            callback.map(|f| Sink { f, user_data: user_data as usize });
        log::set_max_level(if callback.is_some() { filter } else { LevelFilter::Off });
        Ok(PANDERM_OK)
    })
}

#[derive(Clone, Copy)]
struct Sink {
    f: unsafe extern "C" fn(c_int, *const c_char, *const c_char, *mut c_void),
    /// The caller's pointer, stored as an integer (only passed back).
    user_data: usize,
}

/// The `log` logger behind `panderm_set_log_callback`.
struct CallbackLogger {
    sink: RwLock<Option<Sink>>,
}

static CALLBACK_LOGGER: CallbackLogger = CallbackLogger { sink: RwLock::new(None) };

impl Log for CallbackLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Copied out, so no lock is held while the callback runs (it may log or reconfigure).
        let Some(sink) = *self.sink.read().unwrap_or_else(|e| e.into_inner()) else { return };
        let level = match record.level() {
            Level::Error => PANDERM_LOG_ERROR,
            Level::Warn => PANDERM_LOG_WARN,
            Level::Info => PANDERM_LOG_INFO,
            Level::Debug => PANDERM_LOG_DEBUG,
            Level::Trace => PANDERM_LOG_TRACE,
        };
        let text = |s: String| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let target = text(record.target().to_owned());
        let message = text(record.args().to_string().lines().collect::<Vec<_>>().join(" "));
        // SAFETY: the callback's contract (panderm_set_log_callback); both strings outlive the call.
        unsafe { (sink.f)(level, target.as_ptr(), message.as_ptr(), sink.user_data as *mut c_void) };
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> Option<String> {
        let p = panderm_last_error();
        // SAFETY: NULL or the thread's NUL-terminated message.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        assert_eq!(entry("test", || panic!("boom")), PANDERM_ERR_PANIC);
        assert!(last().unwrap().contains("internal panic caught: boom"), "{:?}", last());
        assert_eq!(entry("test", || Ok(PANDERM_OK)), PANDERM_OK);
        assert_eq!(last(), None, "each call clears the last error");
        assert_eq!(entry("test", || Err(Failure::new(PANDERM_ERR_IO, "gone"))), PANDERM_ERR_IO);
        assert_eq!(last().as_deref(), Some("gone"));
    }

    #[test]
    fn codes_are_distinct_and_named() {
        let kinds = [
            ErrorKind::Io,
            ErrorKind::ImageDecode,
            ErrorKind::ImageTooLarge,
            ErrorKind::ModelLoad,
            ErrorKind::Inference,
            ErrorKind::InvalidInput,
            ErrorKind::Untrusted,
            ErrorKind::ModelOutput,
        ];
        let codes: BTreeSet<c_int> = kinds.iter().map(|k| code_of(*k)).collect();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&PANDERM_OK));
        for code in 0..=13 {
            assert_ne!(code_name(code), "PANDERM_UNKNOWN_CODE", "{code}");
        }
        assert_eq!(code_of(ErrorKind::ModelOutput), PANDERM_MODEL_ERROR);
    }
}
