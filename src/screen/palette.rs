//! The screen's colours: a dark background with high-contrast text, and the Okabe–Ito
//! colour-blind-safe palette for meaning (orange = refer, blue = monitor). Meaning never rests
//! on colour alone: the decision is also written in words.

use embedded_graphics::pixelcolor::Rgb888;

/// Screen background (near black).
pub(crate) const BACKGROUND: Rgb888 = Rgb888::new(0x10, 0x10, 0x10);
/// Main text (white).
pub(crate) const TEXT: Rgb888 = Rgb888::new(0xFF, 0xFF, 0xFF);
/// Secondary text: section titles, model name (contrast about 9:1 on the background).
pub(crate) const DIM: Rgb888 = Rgb888::new(0xB4, 0xB4, 0xB4);
/// Empty part of bars, separator lines.
pub(crate) const TRACK: Rgb888 = Rgb888::new(0x48, 0x48, 0x48);
/// Differential bars: neutral, a probability is not a decision.
pub(crate) const NEUTRAL_BAR: Rgb888 = Rgb888::new(0xC8, 0xC8, 0xC8);
/// Positive (refer) decision: Okabe–Ito orange, black text on it (contrast about 8:1).
pub(crate) const POSITIVE: Rgb888 = Rgb888::new(0xE6, 0x9F, 0x00);
/// Negative (monitor) decision: Okabe–Ito blue, white text on it (contrast about 5:1).
pub(crate) const NEGATIVE: Rgb888 = Rgb888::new(0x00, 0x72, 0xB2);
/// Cannot assess / no result: neutral light grey, black text on it.
pub(crate) const ABSTAIN: Rgb888 = Rgb888::new(0xC8, 0xC8, 0xC8);
/// Quality warnings: Okabe–Ito yellow text on the background.
pub(crate) const WARNING: Rgb888 = Rgb888::new(0xF0, 0xE4, 0x42);
/// The DEMO tag and frame: Okabe–Ito reddish purple, black text on it.
pub(crate) const DEMO: Rgb888 = Rgb888::new(0xCC, 0x79, 0xA7);
/// Text drawn on light fills.
pub(crate) const INK: Rgb888 = Rgb888::new(0x00, 0x00, 0x00);
