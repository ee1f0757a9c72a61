//! The device result screen: one classification drawn for a clinician on a small display.
//!
//! [`render`] draws a [`ScreenReport`] with `embedded-graphics` onto **any**
//! `DrawTarget<Color = Rgb888>`; the layout is computed from the target's bounding box and
//! works from [`MIN_WIDTH`]×[`MIN_HEIGHT`] up (tested at 320×240, 480×320, 800×480 and the
//! portrait 240×320, 320×480, 480×800). Two targets come with it:
//!
//! * [`RgbBuffer`]: an in-memory RGB888 image, saved with [`RgbBuffer::save_png`];
//! * [`Framebuffer`]: the Linux framebuffer (`/dev/fb0`), any 16/24/32-bpp true-colour format.
//!
//! The screen shows, top to bottom: the model (and a DEMO tag for demo bundles), the primary
//! decision in large words on a coloured banner, its score as a bar with a tick at the operating
//! threshold, the top three of the differential, quality warnings, and always the line
//! "Not a diagnosis - decision support only". When the report abstains, the banner reads
//! CANNOT ASSESS with the reason and no score or differential is shown.
//!
//! Colours come from the Okabe–Ito palette (orange for a positive decision, blue for a negative
//! one), and the decision is always written in words, so no reading depends on colour alone.
//!
//! ```
//! use panderm_edge::screen::{render_to_buffer, PrimaryDecision, ScreenReport};
//! let report = ScreenReport {
//!     primary: Some(PrimaryDecision {
//!         head: "malignancy",
//!         label: "Refer",
//!         score: 0.82,
//!         threshold: 0.5,
//!         positive: true,
//!     }),
//!     model: "panderm-isic 1.0.0",
//!     ..ScreenReport::default()
//! };
//! let screen = render_to_buffer(&report, 480, 320)?;
//! assert_eq!((screen.width(), screen.height()), (480, 320));
//! # Ok::<(), panderm_edge::Error>(())
//! ```

mod buffer;
mod draw;
mod fb_format;
mod fbdev;
#[cfg(target_os = "linux")]
mod fbioctl;
mod layout;
mod magnify;
mod palette;
mod text;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;

pub use buffer::RgbBuffer;
pub use fb_format::{Bitfield, FbFormat, pack_into};
pub use fbdev::Framebuffer;

use crate::error::{Error, ErrorKind, Result};

/// Narrowest screen the layout supports, in pixels.
pub const MIN_WIDTH: u32 = 240;
/// Lowest screen the layout supports, in pixels.
pub const MIN_HEIGHT: u32 = 240;

/// The disclaimer shown on every screen (a shorter wording is wrapped onto two lines where
/// this one does not fit).
pub const DISCLAIMER: &str = "Not a diagnosis - decision support only";

/// What the result screen shows: a classification reduced to what a clinician needs.
/// Every string is borrowed (from the loaded bundle and the caller), so building one
/// allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScreenReport<'a> {
    /// The primary (binary) head's decision, shown large with its score bar.
    pub primary: Option<PrimaryDecision<'a>>,
    /// The differential (multiclass) head's top classes.
    pub differential: Option<Differential<'a>>,
    /// When `Some(reason)`, the image cannot be assessed: the screen shows CANNOT ASSESS and the
    /// reason instead of the decision, score and differential.
    pub abstain: Option<&'a str>,
    /// Image-quality warnings (e.g. "out of focus"), one line each.
    pub warnings: &'a [&'a str],
    /// Bundle name and version, e.g. "panderm-isic 1.0.0".
    pub model: &'a str,
    /// The bundle is a demo (random weights): a DEMO tag and a frame are drawn.
    pub demo: bool,
}

/// A binary decision at the manifest's operating threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrimaryDecision<'a> {
    /// The head's name, e.g. "malignancy".
    pub head: &'a str,
    /// The decision in words, shown large: e.g. "Refer" / "Monitor", or the decided class label.
    pub label: &'a str,
    /// The head's score (probability of the positive class), in `[0, 1]`.
    pub score: f32,
    /// The operating threshold the score is compared with, in `[0, 1]`.
    pub threshold: f64,
    /// `score >= threshold`: the positive (refer) side; selects the decision colour.
    pub positive: bool,
}

/// The top classes of a multiclass head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Differential<'a> {
    /// The head's name, e.g. "diagnosis".
    pub head: &'a str,
    /// Classes, highest probability first; the first [`DIFFERENTIAL_ROWS`] are shown.
    pub top: &'a [RankedLabel<'a>],
}

/// Most classes of the differential shown.
pub const DIFFERENTIAL_ROWS: usize = 3;

/// A class label with its probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedLabel<'a> {
    /// Class label.
    pub label: &'a str,
    /// Probability in `[0, 1]`.
    pub probability: f32,
}

/// Draws `report` onto `target`, filling the target's whole bounding box. The layout (fonts,
/// sizes) is chosen from the bounding box's size; targets smaller than
/// [`MIN_WIDTH`]×[`MIN_HEIGHT`] get the smallest layout, clipped (use [`check_size`] to refuse
/// them). Nothing is drawn outside the bounding box.
pub fn render<D>(report: &ScreenReport<'_>, target: &mut D) -> std::result::Result<(), D::Error>
where
    D: DrawTarget<Color = Rgb888>,
{
    draw::draw_screen(report, target)
}

/// Refuses a screen smaller than the smallest layout. `what` names the screen in the message
/// (e.g. the framebuffer device's path).
pub fn check_size(width: u32, height: u32, what: &str) -> Result<()> {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what}: screen is {width}x{height}, the result screen needs at least {MIN_WIDTH}x{MIN_HEIGHT}"),
        ));
    }
    Ok(())
}

/// Renders `report` into a new `width`×`height` [`RgbBuffer`] (e.g. to save as PNG).
/// Fails for sizes below [`MIN_WIDTH`]×[`MIN_HEIGHT`] or above [`RgbBuffer::MAX_SIDE`].
pub fn render_to_buffer(report: &ScreenReport<'_>, width: u32, height: u32) -> Result<RgbBuffer> {
    check_size(width, height, "result screen")?;
    let mut buffer = RgbBuffer::new(width, height)?;
    match render(report, &mut buffer) {
        Ok(()) => Ok(buffer),
        Err(never) => match never {},
    }
}

/// Parses a screen size written `WIDTHxHEIGHT` (e.g. `480x320`), as a CLI option would take it.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::new(ErrorKind::InvalidInput, format!("screen size `{s}`: expected WIDTHxHEIGHT, e.g. 480x320"));
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    check_size(w, h, &format!("screen size `{s}`"))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_size_accepts_and_refuses() {
        assert_eq!(parse_size("480x320").ok(), Some((480, 320)));
        assert_eq!(parse_size(" 240X320 ").ok(), Some((240, 320)));
        for bad in ["480", "x320", "480x", "ax320", "100x100", "-1x300"] {
            let err = parse_size(bad).err().map(|e| (e.kind(), e.to_string()));
            let (kind, msg) = err.unwrap_or((ErrorKind::Io, String::new()));
            assert_eq!(kind, ErrorKind::InvalidInput, "{bad}");
            assert!(msg.contains(bad.trim()), "{msg}");
        }
    }

    #[test]
    fn too_small_is_refused() {
        let err = render_to_buffer(&ScreenReport::default(), 200, 320).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("result screen: screen is 200x320, the result screen needs at least 240x240"));
    }
}
