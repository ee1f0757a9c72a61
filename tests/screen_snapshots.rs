//! Pixel-exact snapshots of the result screen at the six supported screen sizes, plus checks that
//! long text stays on screen.
//!
//! The snapshots live in `tests/fixtures/screens/` (`<case>_<width>x<height>.png`). After an
//! intended change of the screen, regenerate them and look at them:
//!
//! ```text
//! PANDERM_UPDATE_SNAPSHOTS=1 cargo test -p panderm-edge --test screen_snapshots
//! ```

use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use panderm_edge::screen::{
    Differential, MIN_HEIGHT, MIN_WIDTH, PrimaryDecision, RankedLabel, RgbBuffer, ScreenReport, render,
    render_to_buffer,
};

/// Landscape and portrait sizes of common small panels.
const SIZES: [(u32, u32); 6] = [(320, 240), (480, 320), (800, 480), (240, 320), (320, 480), (480, 800)];

const DIAGNOSIS: [RankedLabel<'static>; 3] = [
    RankedLabel { label: "melanoma", probability: 0.62 },
    RankedLabel { label: "melanocytic nevus", probability: 0.21 },
    RankedLabel { label: "seborrheic keratosis", probability: 0.09 },
];

const BENIGN: [RankedLabel<'static>; 4] = [
    RankedLabel { label: "melanocytic nevus", probability: 0.88 },
    RankedLabel { label: "dermatofibroma", probability: 0.07 },
    RankedLabel { label: "melanoma", probability: 0.03 },
    RankedLabel { label: "vascular lesion", probability: 0.004 },
];

const LONG_LABELS: [RankedLabel<'static>; 3] = [
    RankedLabel { label: "actinic keratosis / intraepithelial carcinoma (Bowen's disease)", probability: 0.48 },
    RankedLabel { label: "basal cell carcinoma", probability: 0.31 },
    RankedLabel { label: "benign keratosis-like lesion (solar lentigo / seborrheic keratosis)", probability: 0.004 },
];

const PRIMARY_REFER: PrimaryDecision<'static> =
    PrimaryDecision { head: "malignancy", label: "Refer", score: 0.82, threshold: 0.35, positive: true };

/// The named fixed reports the snapshots show.
fn cases() -> Vec<(&'static str, ScreenReport<'static>)> {
    let refer = ScreenReport {
        primary: Some(PRIMARY_REFER),
        differential: Some(Differential { head: "diagnosis", top: &DIAGNOSIS }),
        abstain: None,
        warnings: &["slightly out of focus", "glare on lesion"],
        model: "panderm-isic 1.2.0",
        demo: false,
    };
    let monitor = ScreenReport {
        primary: Some(PrimaryDecision {
            head: "malignancy",
            label: "Monitor",
            score: 0.12,
            threshold: 0.35,
            positive: false,
        }),
        differential: Some(Differential { head: "diagnosis", top: &BENIGN }),
        warnings: &[],
        ..refer
    };
    let cannot_assess = ScreenReport {
        primary: None,
        differential: None,
        abstain: Some("image too dark to assess; retake with the dermatoscope light on"),
        warnings: &["underexposed", "lesion not centred"],
        ..refer
    };
    let demo = ScreenReport { model: "panderm-demo 0.1.0 (random weights)", demo: true, ..refer };
    // Long texts: a two-word decision (two lines on portrait screens), labels cut with an
    // ellipsis, more warnings than lines.
    let long = ScreenReport {
        primary: Some(PrimaryDecision { label: "Urgent referral", score: 0.351, threshold: 0.35, ..PRIMARY_REFER }),
        differential: Some(Differential { head: "differential diagnosis (7 classes)", top: &LONG_LABELS }),
        warnings: &[
            "image slightly out of focus: hold the dermatoscope still",
            "specular glare over part of the lesion",
            "lesion touches the image border",
            "hair occludes part of the lesion",
            "colour calibration card not detected",
        ],
        model: "panderm-isic-2019-finetuned-large-backbone 1.2.0-rc.3+build.20250101",
        ..refer
    };
    // A bundle whose model produced NaN (issue 12): the "cannot assess" screen with the model-error
    // sentence exactly as classify words it; never a decision banner.
    let model_error = ScreenReport {
        primary: None,
        differential: None,
        abstain: Some("cannot assess: model error (backbone: 768 of 768 feature values are not finite (first: NaN))"),
        warnings: &[],
        ..refer
    };
    vec![
        ("refer", refer),
        ("monitor", monitor),
        ("cannot_assess", cannot_assess),
        ("demo", demo),
        ("long", long),
        ("model_error", model_error),
    ]
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens")
}

fn updating() -> bool {
    std::env::var("PANDERM_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1")
}

/// Compares `screen` with the snapshot `name`, or writes it when updating; returns a failure
/// message instead of panicking, so that every size is checked before the test fails.
fn check_snapshot(name: &str, screen: &RgbBuffer) -> Option<String> {
    let path = snapshot_dir().join(format!("{name}.png"));
    let update = "regenerate with PANDERM_UPDATE_SNAPSHOTS=1 cargo test -p panderm-edge --test screen_snapshots";
    if updating() {
        if let Err(e) = std::fs::create_dir_all(snapshot_dir()) {
            return Some(format!("{}: {e}", snapshot_dir().display()));
        }
        return screen.save_png(&path).err().map(|e| e.to_string());
    }
    let expected = match image::open(&path) {
        Ok(img) => img.to_rgb8(),
        Err(e) => return Some(format!("{}: cannot read snapshot ({e}); {update}", path.display())),
    };
    let actual = screen.to_rgb_image();
    if expected.dimensions() != actual.dimensions() {
        return Some(format!(
            "{}: snapshot is {:?}, rendered {:?}; {update}",
            path.display(),
            expected.dimensions(),
            actual.dimensions()
        ));
    }
    let differing = expected.pixels().zip(actual.pixels()).filter(|(a, b)| a != b).count();
    (differing > 0)
        .then(|| format!("{}: {differing} of {} pixels differ; {update}", path.display(), expected.pixels().len()))
}

#[test]
fn snapshots_at_every_size() {
    let mut failures = Vec::new();
    for (case, report) in cases() {
        for (w, h) in SIZES {
            let name = format!("{case}_{w}x{h}");
            match render_to_buffer(&report, w, h) {
                Ok(screen) => failures.extend(check_snapshot(&name, &screen)),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{} snapshot(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// A draw target that is `size` large but records every pixel drawn outside it.
struct Strict {
    size: Size,
    outside: usize,
    inside: Vec<Point>,
}

impl OriginDimensions for Strict {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for Strict {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, _) in pixels {
            if self.bounding_box().contains(p) {
                self.inside.push(p);
            } else {
                self.outside += 1;
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb888) -> Result<(), Self::Error> {
        // Not the default (which clips): every pixel of the area is checked.
        self.draw_iter(area.points().map(|p| Pixel(p, color)))
    }
}

fn long_report() -> ScreenReport<'static> {
    const LONG: &str = "an extremely long class label that no small screen could ever hold on one line";
    const TOP: [RankedLabel<'static>; 3] = [
        RankedLabel { label: LONG, probability: 0.5 },
        RankedLabel {
            label: "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
            probability: 0.3,
        },
        RankedLabel { label: "line\nbreak\tand tab", probability: 0.2 },
    ];
    ScreenReport {
        primary: Some(PrimaryDecision {
            head: LONG,
            label: "Refer to a dermatologist within two weeks please",
            score: 1.7,
            threshold: 1.0,
            positive: true,
        }),
        differential: Some(Differential { head: LONG, top: &TOP }),
        abstain: None,
        warnings: &[LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG, LONG],
        model: LONG,
        demo: true,
    }
}

#[test]
fn long_text_stays_on_screen() {
    let long = long_report();
    let abstaining = ScreenReport { abstain: Some(long.model), ..long };
    let mut sizes = SIZES.to_vec();
    sizes.push((MIN_WIDTH, MIN_HEIGHT));
    for report in [long, abstaining] {
        for (w, h) in sizes.iter().copied() {
            let mut strict = Strict { size: Size::new(w, h), outside: 0, inside: Vec::new() };
            let _ = render(&report, &mut strict);
            assert_eq!(strict.outside, 0, "{w}x{h}: pixels drawn outside the screen");

            // Text is cut to fit, not clipped: apart from the DEMO frame, the margin stays empty.
            let screen =
                render_to_buffer(&ScreenReport { demo: false, ..report }, w, h).unwrap_or_else(|e| panic!("{e}"));
            let background = screen.pixel(0, 0);
            let margin = 6;
            for y in 0..h {
                for x in 0..w {
                    if x < margin || y < margin || x >= w - margin || y >= h - margin {
                        assert_eq!(screen.pixel(x, y), background, "{w}x{h}: drawn in the margin at ({x}, {y})");
                    }
                }
            }
        }
    }
}

#[test]
fn render_fills_an_offset_target_only() {
    // A draw target whose bounding box does not start at the origin (a window on a bigger display).
    let mut big = RgbBuffer::new(500, 400).unwrap_or_else(|e| panic!("{e}"));
    let window = Rectangle::new(Point::new(100, 50), Size::new(320, 240));
    let report = cases()[0].1;
    let _ = render(&report, &mut big.clipped(&window));
    let direct = render_to_buffer(&report, 320, 240).unwrap_or_else(|e| panic!("{e}"));
    for y in 0..400 {
        for x in 0..500 {
            let p = Point::new(x as i32, y as i32);
            let expected = if window.contains(p) { direct.pixel(x - 100, y - 50) } else { Some(Rgb888::new(0, 0, 0)) };
            assert_eq!(big.pixel(x, y), expected, "({x}, {y})");
        }
    }
}
