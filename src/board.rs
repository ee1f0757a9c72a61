//! Board profiles: what one supported device is and how the runtime should use it.
//!
//! A profile is a TOML file in `boards/` (`boards/rpi5.toml`, …). It names the Rust target the
//! device runs, its cores and the threads to use, the memory budget of the runtime, the display,
//! the backbone variant and precision to load and the camera's capture size. `panderm … --board
//! NAME|PATH` reads one and applies it; see `docs/boards.md`.
//!
//! Profiles are validated when read: unknown keys, zero or impossible values, and a
//! configuration whose working memory cannot fit the budget are refused with a message naming
//! the file and the value.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, Fallback, Provider};
use crate::error::{Error, ErrorKind, Result};

/// Rust target triples the project builds and tests (see `docs/arm.md`).
pub const TARGETS: [&str; 3] =
    ["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf", "x86_64-unknown-linux-gnu"];

/// qemu-user 7.2's CPU models (`qemu-aarch64 -cpu help`, `qemu-arm -cpu help`) that a profile's
/// `cpu.qemu_cpu` may name, per emulated target: the A-profile cores (not qemu's synthetic `max`,
/// which is no board's core). x86_64 boards run the tests natively.
pub const QEMU_CPUS: [(&str, &str, &[&str]); 2] = [
    (
        "aarch64-unknown-linux-gnu",
        "qemu-aarch64",
        &["cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1", "a64fx"],
    ),
    ("armv7-unknown-linux-gnueabihf", "qemu-arm", &["cortex-a7", "cortex-a8", "cortex-a9", "cortex-a15"]),
];

/// The smallest screen the result-screen layouts support (either orientation).
pub const MIN_DISPLAY: (u32, u32) = (240, 320);

/// The largest screen side accepted (a guard against typos such as `48000`).
pub const MAX_DISPLAY_SIDE: u32 = 8192;

/// A device profile, as read from `boards/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Public keys (`panderm-tools keygen`'s `KEY.pub`) of whoever may sign the bundles this
    /// device loads. When any is listed, unsigned bundles and bad signatures are refused
    /// (see [`crate::signing`]). A relative path is relative to the profile file's folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<PathBuf>,
    /// Name and build target.
    pub board: BoardInfo,
    /// Processor.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// The screen the result is drawn on.
    pub display: Display,
    /// Which backbone to load.
    pub model: ModelChoice,
    /// The camera's capture size.
    pub camera: Camera,
    /// Which engine runs the backbone (docs/npu.md). Absent: tract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<Accelerator>,
}

/// The `[accelerator]` table: the engine that runs the backbone on this board and, for ONNX
/// Runtime, its library, execution providers and what to do when it cannot run.
///
/// ```toml
/// [accelerator]
/// backend = "ort"
/// library = "/usr/lib/libonnxruntime.so.1.22.0"
/// providers = ["vsinpu", "cpu"]   # in order; "cpu" lets ONNX Runtime's CPU take what the NPU refuses
/// fallback = "tract"              # or "error" (default)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// `tract` or `ort`.
    pub backend: BackendKind,
    /// `libonnxruntime.so` on the device (a relative path is relative to the profile's folder);
    /// `--ort-library` overrides it, `$ORT_DYLIB_PATH` is used without either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<PathBuf>,
    /// Execution providers in order of preference. Without `cpu`, ONNX Runtime's CPU fallback is
    /// disabled: the accelerator takes every node or the session is not created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Provider>,
    /// When ONNX Runtime cannot run the backbone: `error` (default) or `tract`.
    #[serde(default)]
    pub fallback: Fallback,
}

impl Accelerator {
    fn validate(&self) -> std::result::Result<(), String> {
        match self.backend {
            BackendKind::Tract => {
                if self.library.is_some() || !self.providers.is_empty() || self.fallback != Fallback::Error {
                    return Err("accelerator: `library`, `providers` and `fallback` are ONNX Runtime's; with backend = \"tract\" they would be ignored, so they are refused".into());
                }
            }
            BackendKind::Ort => {
                if self.providers.is_empty() {
                    return Err("accelerator.providers is empty: list the execution providers in order, e.g. [\"vsinpu\", \"cpu\"] (\"cpu\" alone for ONNX Runtime's CPU)".into());
                }
                for (i, p) in self.providers.iter().enumerate() {
                    if self.providers[..i].contains(p) {
                        return Err(format!("accelerator.providers lists `{}` twice", p.name()));
                    }
                }
                if self.providers.contains(&Provider::Nnapi) {
                    return Err(
                        "accelerator.providers: `nnapi` is Android's; the supported targets are Linux (docs/npu.md)"
                            .into(),
                    );
                }
                if self.library.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
                    return Err("accelerator.library is empty".into());
                }
            }
        }
        Ok(())
    }
}

/// Identity of the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Short name, equal to the file stem (`rpi5`).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Rust target triple of the runtime binary for this board (one of [`TARGETS`]).
    pub target: String,
}

/// Processor facts and the thread count the runtime uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// The cores, for people (`"4x Cortex-A76 @ 2.4 GHz"`).
    pub description: String,
    /// Number of cores the runtime may use.
    pub cores: u32,
    /// Inference threads (1 ..= cores).
    pub threads: u32,
    /// The qemu-user CPU model (`QEMU_CPU`, one of [`QEMU_CPUS`] for the board's target) that
    /// matches the board's cores, so its tract kernels (SDOT int8 or not, NEON) are the ones the
    /// emulated test runs choose (`scripts/arm-test.sh`, docs/arm.md). Optional; the shipped ARM
    /// profiles all set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_cpu: Option<String>,
}

/// Memory of the device and the share the runtime may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Installed RAM of the smallest supported configuration, MiB.
    pub ram_mib: u32,
    /// Peak resident memory the runtime may use, MiB (at most `ram_mib`).
    pub runtime_budget_mib: u32,
}

/// Framebuffer pixel formats of the supported displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// 16 bits per pixel, 5-6-5.
    Rgb565,
    /// 24 bits per pixel.
    Rgb888,
    /// 32 bits per pixel, the high byte unused.
    Xrgb8888,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> u32 {
        match self {
            PixelFormat::Rgb565 => 2,
            PixelFormat::Rgb888 => 3,
            PixelFormat::Xrgb8888 => 4,
        }
    }
}

/// The result screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    /// Width in pixels as mounted (portrait screens have width < height).
    pub width: u32,
    /// Height in pixels as mounted.
    pub height: u32,
    /// Framebuffer pixel format.
    pub pixel_format: PixelFormat,
    /// Linux framebuffer device (`/dev/fb0`).
    pub fbdev: PathBuf,
}

/// Backbone sizes, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// ViT-B/16, 86 M parameters, 768-d features.
    Base,
    /// ViT-L/16, 304 M parameters, 1024-d features.
    Large,
}

impl Variant {
    /// The variant of a bundle's `backbone.variant` string (`PanDerm_Base`, `PanDerm_Large`),
    /// when it is one of PanDerm's; `None` for demo and custom backbones.
    pub fn of_bundle(variant: &str) -> Option<Variant> {
        match variant.to_ascii_lowercase().as_str() {
            "panderm_base" | "base" => Some(Variant::Base),
            "panderm_large" | "large" => Some(Variant::Large),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Base => "base",
            Variant::Large => "large",
        }
    }
}

/// Weight precision of the backbone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float weights and activations.
    #[default]
    Fp32,
    /// 8-bit integer weights (see `panderm-tools quantize`).
    Int8,
}

impl Precision {
    /// The manifest/profile spelling (`fp32`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

/// Which backbone the board loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    /// The largest PanDerm backbone the board runs.
    pub variant: Variant,
    /// The precision to load.
    pub precision: Precision,
}

/// The camera's capture size (the decoded image before the quality gate and resize).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Peak resident memory of the runtime holding a PanDerm backbone on tract, MiB, before image
/// buffers.
///
/// Measured with `panderm bench` / `panderm run` on ONNX files of random-weight full-size models
/// (docs/performance.md; NNEF bundles peak lower, so these hold for both formats): Base fp32
/// 995 MiB (the ONNX load keeps the file bytes, the protobuf and the tensors alive at once, ≈3×
/// the 327 MiB of weights), Base int8 263–268 MiB, Large fp32 3486 MiB, Large int8 898 MiB.
/// Rounded up a little; the Large values were estimates scaled from Base (3584 and 1050) until
/// 2026-11-30, which refused Large int8 on the rpi5 although it fits.
pub fn backbone_peak_mib(variant: Variant, precision: Precision) -> u32 {
    match (variant, precision) {
        (Variant::Base, Precision::Fp32) => 1024,
        (Variant::Base, Precision::Int8) => 300,
        (Variant::Large, Precision::Fp32) => 3500,
        (Variant::Large, Precision::Int8) => 900,
    }
}

/// [`backbone_peak_mib`] for ONNX Runtime's CPU provider (`panderm bench --backend ort`'s peak
/// RSS, docs/performance.md). An NPU provider's own memory (driver, compiled graph) is not known
/// until measured on the board (docs/npu.md).
pub fn backbone_peak_mib_ort(variant: Variant, precision: Precision) -> u32 {
    match (variant, precision) {
        (Variant::Base, Precision::Fp32) => ORT_PEAK_MIB[0],
        (Variant::Base, Precision::Int8) => ORT_PEAK_MIB[1],
        (Variant::Large, Precision::Fp32) => ORT_PEAK_MIB[2],
        (Variant::Large, Precision::Int8) => ORT_PEAK_MIB[3],
    }
}

/// Base fp32, Base int8, Large fp32, Large int8 (MiB): measured 937, 268, 3213, 826
/// (ONNX Runtime 1.32.0, the runtime's process, which also holds the verified file bytes while
/// the session is built), rounded up a little as [`backbone_peak_mib`].
const ORT_PEAK_MIB: [u32; 4] = [960, 300, 3250, 860];

fn mib(bytes: u64) -> u32 {
    bytes.div_ceil(1 << 20) as u32
}

/// The profiles shipped in `boards/`, compiled into the binary so that `--board NAME` works on a
/// device without the repository: `(name, TOML text)`.
pub const BUILTIN: [(&str, &str); 6] = [
    ("armv7-a7", include_str!("../boards/armv7-a7.toml")),
    ("imx8mp", include_str!("../boards/imx8mp.toml")),
    ("rk3588", include_str!("../boards/rk3588.toml")),
    ("rpi4", include_str!("../boards/rpi4.toml")),
    ("rpi5", include_str!("../boards/rpi5.toml")),
    ("x86_64", include_str!("../boards/x86_64.toml")),
];

impl Board {
    /// Reads a profile by name (one of [`BUILTIN`]) or by path (anything containing a `/` or
    /// ending in `.toml`), then validates it.
    pub fn resolve(name_or_path: &str) -> Result<Board> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            return Board::from_file(Path::new(name_or_path));
        }
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) else {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "unknown board `{name_or_path}` (built-in profiles: {}; or give a path to a .toml)",
                    known.join(", ")
                ),
            ));
        };
        Board::from_toml(text).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("built-in board `{name_or_path}`: {}", e.message()))
        })
    }

    /// Reads and validates one profile file.
    pub fn from_file(path: &Path) -> Result<Board> {
        let bytes = crate::fsutil::read_regular(path, 1 << 20, "board profile")?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{}: not UTF-8 text", path.display())))?;
        let mut board = Board::from_toml(&text)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{}: {}", path.display(), e.message())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for k in &mut board.trusted_keys {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        if let Some(lib) = board.accelerator.as_mut().and_then(|a| a.library.as_mut())
            && lib.is_relative()
        {
            *lib = base.join(&*lib);
        }
        if let Some(stem) = path.file_stem()
            && stem.to_string_lossy() != board.board.name
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{}: board.name is `{}`, the file is named `{}`",
                    path.display(),
                    board.board.name,
                    stem.display()
                ),
            ));
        }
        Ok(board)
    }

    /// Parses and validates a profile from TOML text.
    pub fn from_toml(text: &str) -> Result<Board> {
        let board: Board = toml::from_str(text).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("invalid board profile: {}", e.message().trim()))
        })?;
        board.validate()?;
        Ok(board)
    }

    /// The trusted keys this profile lists, read.
    pub fn trust(&self) -> Result<crate::signing::Trust> {
        crate::signing::Trust::read(&self.trusted_keys)
    }

    /// Checks every value and that the working set fits the memory budget.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::new(ErrorKind::InvalidInput, format!("invalid board profile: {msg}")));
        let b = &self.board;
        if b.name.is_empty() || !b.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad(format!("board.name `{}` must be letters, digits, `-` or `_`", b.name));
        }
        if !TARGETS.contains(&b.target.as_str()) {
            return bad(format!("board.target `{}` is not a supported target ({})", b.target, TARGETS.join(", ")));
        }
        let c = &self.cpu;
        if c.cores == 0 {
            return bad("cpu.cores is 0".into());
        }
        if c.threads == 0 || c.threads > c.cores {
            return bad(format!("cpu.threads is {}; it must be between 1 and cpu.cores ({})", c.threads, c.cores));
        }
        if let Some(q) = &c.qemu_cpu {
            let Some((_, qemu, models)) = QEMU_CPUS.iter().find(|(t, _, _)| *t == b.target) else {
                return bad(format!("cpu.qemu_cpu `{q}`: {} runs natively, not under qemu", b.target));
            };
            if !models.contains(&q.as_str()) {
                return bad(format!(
                    "cpu.qemu_cpu `{q}` is not a {qemu} CPU model for {} ({})",
                    b.target,
                    models.join(", ")
                ));
            }
        }
        let m = &self.memory;
        if m.ram_mib == 0 || m.runtime_budget_mib == 0 {
            return bad("memory.ram_mib and memory.runtime_budget_mib must be above 0".into());
        }
        if m.runtime_budget_mib > m.ram_mib {
            return bad(format!(
                "memory.runtime_budget_mib ({}) is more than the board's RAM ({} MiB)",
                m.runtime_budget_mib, m.ram_mib
            ));
        }
        let d = &self.display;
        let (short, long) = (d.width.min(d.height), d.width.max(d.height));
        if short < MIN_DISPLAY.0 || long < MIN_DISPLAY.1 {
            return bad(format!(
                "display {}x{} is smaller than the smallest result-screen layout ({}x{})",
                d.width, d.height, MIN_DISPLAY.0, MIN_DISPLAY.1
            ));
        }
        if long > MAX_DISPLAY_SIDE {
            return bad(format!("display {}x{}: a side above {MAX_DISPLAY_SIDE} px", d.width, d.height));
        }
        if let Some(a) = &self.accelerator {
            a.validate().or_else(bad)?;
        }
        let cam = &self.camera;
        if cam.width == 0
            || cam.height == 0
            || cam.width.max(cam.height) > crate::preprocess::DecodeLimits::default().max_side
        {
            return bad(format!("camera {}x{} is outside the decoder's limits", cam.width, cam.height));
        }
        let need = self.working_set();
        if need.total_mib() > m.runtime_budget_mib {
            return bad(format!(
                "the runtime needs about {} MiB ({}), more than memory.runtime_budget_mib = {}",
                need.total_mib(),
                need.describe(),
                m.runtime_budget_mib
            ));
        }
        Ok(())
    }

    /// Estimated peak memory of one classify on this board.
    pub fn working_set(&self) -> WorkingSet {
        let d = &self.display;
        let pixels = u64::from(d.width) * u64::from(d.height);
        let cam = u64::from(self.camera.width) * u64::from(self.camera.height);
        let (variant, precision) = (self.model.variant, self.model.precision);
        let tract = backbone_peak_mib(variant, precision);
        let backbone_mib = match &self.accelerator {
            // With a fallback to tract, either engine may end up holding the backbone.
            Some(a) if a.backend == BackendKind::Ort => {
                let ort = backbone_peak_mib_ort(variant, precision);
                if a.fallback == Fallback::Tract { ort.max(tract) } else { ort }
            }
            _ => tract,
        };
        WorkingSet {
            backbone_mib,
            // The RGB888 drawing buffer plus one converted frame for the framebuffer.
            display_mib: mib(pixels * (3 + u64::from(d.pixel_format.bytes_per_pixel()))),
            // Encoded file, decoded RGB frame and the quality gate's luma copy.
            camera_mib: mib(cam * 3 + cam * 3 + cam),
        }
    }

    /// Applies the profile's thread count to the inference engine.
    pub fn apply(&self) -> Result<()> {
        crate::engine::set_threads(self.cpu.threads as usize)
    }

    /// Checks that a bundle's backbone suits this board: a PanDerm variant larger than the
    /// board's is refused; another precision than the board's gives a warning (returned).
    pub fn check_backbone(&self, variant: &str, precision: Precision) -> Result<Option<String>> {
        if let Some(v) = Variant::of_bundle(variant)
            && v > self.model.variant
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "board `{}` runs at most a ViT-{} backbone; this bundle's is ViT-{}",
                    self.board.name,
                    self.model.variant.name(),
                    v.name()
                ),
            ));
        }
        Ok((precision != self.model.precision).then(|| {
            format!(
                "board `{}` is set up for a {} backbone; this bundle's is {}",
                self.board.name,
                self.model.precision.name(),
                precision.name()
            )
        }))
    }
}

/// The parts of a board's estimated peak memory, MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkingSet {
    /// The backbone ([`backbone_peak_mib`]).
    pub backbone_mib: u32,
    /// Screen buffers.
    pub display_mib: u32,
    /// Camera frame buffers.
    pub camera_mib: u32,
}

impl WorkingSet {
    /// Sum of the parts.
    pub fn total_mib(&self) -> u32 {
        self.backbone_mib + self.display_mib + self.camera_mib
    }

    fn describe(&self) -> String {
        format!(
            "backbone {} + display buffers {} + camera frames {}",
            self.backbone_mib, self.display_mib, self.camera_mib
        )
    }
}
