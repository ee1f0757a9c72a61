//! Board profiles: every shipped profile loads; wrong ones are refused with a clear message.

mod common;

use panderm_edge::ErrorKind;
use panderm_edge::board::{BUILTIN, Board, Precision};

fn rpi4() -> String {
    std::fs::read_to_string(common::root().join("boards/rpi4.toml")).expect("boards/rpi4.toml")
}

#[test]
fn every_shipped_profile_loads_and_is_builtin() {
    let mut files: Vec<String> = std::fs::read_dir(common::root().join("boards"))
        .expect("boards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    files.sort();
    let builtin: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    assert_eq!(files, builtin, "boards/*.toml and board::BUILTIN must list the same profiles");
    for name in ["rpi5", "rpi4", "imx8mp", "rk3588", "armv7-a7", "x86_64"] {
        assert!(builtin.contains(&name), "required profile {name} missing");
    }
    for name in &files {
        let from_file = Board::from_file(&common::root().join(format!("boards/{name}.toml")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let builtin = Board::resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_file, builtin);
        assert!(builtin.working_set().total_mib() <= builtin.memory.runtime_budget_mib);
    }
    let armv7 = Board::resolve("armv7-a7").expect("armv7-a7");
    assert_eq!(armv7.board.target, "armv7-unknown-linux-gnueabihf");
}

/// (what is wrong, edit applied to the rpi4 profile, words the error must contain)
const WRONG: [(&str, &str, &str, &str); 10] = [
    ("unknown key", "threads = 4", "threads = 4\nturbo = true", "unknown field `turbo`"),
    ("zero threads", "threads = 4", "threads = 0", "cpu.threads is 0"),
    ("more threads than cores", "threads = 4", "threads = 16", "between 1 and cpu.cores (4)"),
    ("budget above RAM", "runtime_budget_mib = 768", "runtime_budget_mib = 4096", "more than the board's RAM"),
    (
        "display too large for the budget",
        "width = 480\nheight = 320\npixel_format = \"rgb565\"",
        "width = 8192\nheight = 8192\npixel_format = \"xrgb8888\"",
        "more than memory.runtime_budget_mib",
    ),
    ("display too small", "width = 480\nheight = 320", "width = 160\nheight = 128", "smaller than the smallest"),
    (
        "unknown target",
        "target = \"aarch64-unknown-linux-gnu\"",
        "target = \"mips-unknown-linux-gnu\"",
        "not a supported target",
    ),
    ("unknown precision", "precision = \"int8\"", "precision = \"int4\"", "unknown variant `int4`"),
    ("missing section", "[camera]\n", "[camera_x]\n", "unknown field `camera_x`"),
    (
        "qemu CPU of another target",
        "qemu_cpu = \"cortex-a72\"",
        "qemu_cpu = \"cortex-a7\"",
        "cpu.qemu_cpu `cortex-a7` is not a qemu-aarch64 CPU model for aarch64-unknown-linux-gnu",
    ),
];

#[test]
fn wrong_profiles_are_refused_with_clear_messages() {
    let good = rpi4();
    Board::from_toml(&good).expect("the unedited profile is valid");
    for (what, from, to, needle) in WRONG {
        assert!(good.contains(from), "{what}: fixture text `{from}` not in rpi4.toml");
        let bad = good.replacen(from, to, 1);
        let err = Board::from_toml(&bad).expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}");
        assert!(err.message().contains(needle), "{what}: message `{}` lacks `{needle}`", err.message());
        assert!(!err.message().contains('\n'), "{what}: one-line message");
    }
}

#[test]
fn file_name_must_match_and_unknown_names_list_the_known_ones() {
    let dir = common::temp_dir("boards");
    let path = dir.join("myboard.toml");
    std::fs::write(&path, rpi4()).expect("write");
    let err = Board::from_file(&path).expect_err("name mismatch");
    assert!(err.message().contains("board.name is `rpi4`"), "{}", err.message());
    let err = Board::resolve("rpi9").expect_err("unknown");
    assert!(err.message().contains("rpi5") && err.message().contains("armv7-a7"), "{}", err.message());
}

#[test]
fn bundle_backbone_checks() {
    let board = Board::resolve("rpi4").expect("rpi4");
    assert!(board.check_backbone("PanDerm_Large", Precision::Int8).is_err());
    assert_eq!(board.check_backbone("PanDerm_Base", Precision::Int8).expect("ok"), None);
    let warning = board.check_backbone("PanDerm_Base", Precision::Fp32).expect("ok").expect("a warning");
    assert!(warning.contains("int8") && warning.contains("fp32"), "{warning}");
    // Demo and custom backbones are not PanDerm variants: no size refusal.
    assert!(board.check_backbone("custom_D128_depth2", Precision::Int8).is_ok());
}

/// Whether `description` names the core `model` (`cortex-a7` in "4x Cortex-A7 @ …", not in
/// "Cortex-A72").
fn names_core(description: &str, model: &str) -> bool {
    let d = description.to_ascii_lowercase();
    d.match_indices(model).any(|(i, _)| !d[i + model.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Every ARM profile names the qemu CPU of its own cores, and CI (`.ci/run`) runs the tests on
/// that CPU for that target; x86_64 runs natively and names none.
#[test]
fn every_arm_profile_maps_to_a_qemu_cpu_that_ci_runs() {
    let ci = std::fs::read_to_string(common::root().join(".ci/run")).expect(".ci/run");
    // `QEMU_CPU=<model> scripts/arm-test.sh <target>` lines, comments excluded.
    let runs: Vec<(String, String)> = ci
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (_, rest) = l.split_once("QEMU_CPU=")?;
            let mut words = rest.split_whitespace();
            let cpu = words.next()?;
            if words.next()? != "scripts/arm-test.sh" {
                return None;
            }
            Some((words.next()?.to_owned(), cpu.to_owned()))
        })
        .collect();
    assert!(!runs.is_empty(), "no `QEMU_CPU=… scripts/arm-test.sh …` line in .ci/run");
    for (name, _) in BUILTIN {
        let b = Board::resolve(name).expect(name);
        let Some(cpu) = &b.cpu.qemu_cpu else {
            assert_eq!(b.board.target, "x86_64-unknown-linux-gnu", "{name}: an ARM profile names its qemu_cpu");
            continue;
        };
        assert!(
            names_core(&b.cpu.description, cpu),
            "{name}: qemu_cpu {cpu} is not one of its cores ({})",
            b.cpu.description
        );
        assert!(
            runs.contains(&(b.board.target.clone(), cpu.clone())),
            "{name}: .ci/run never tests {} on {cpu} ({runs:?})",
            b.board.target
        );
    }
    assert!(names_core("4x Cortex-A7 @ 1.2 GHz", "cortex-a7") && !names_core("4x Cortex-A72", "cortex-a7"));
}

#[test]
fn qemu_cpu_is_optional_and_only_for_emulated_targets() {
    let without = rpi4().lines().filter(|l| !l.starts_with("qemu_cpu")).collect::<Vec<_>>().join("\n");
    assert_eq!(Board::from_toml(&without).expect("profile without qemu_cpu").cpu.qemu_cpu, None);
    let x86 = std::fs::read_to_string(common::root().join("boards/x86_64.toml")).expect("x86_64.toml");
    let bad = x86.replacen("threads = 4", "threads = 4\nqemu_cpu = \"cortex-a72\"", 1);
    let err = Board::from_toml(&bad).expect_err("qemu_cpu on x86_64");
    assert!(err.message().contains("runs natively"), "{}", err.message());
}

/// PanDerm Large at full size (measured peaks, docs/performance.md: fp32 3486 MiB, int8 898 MiB):
/// which shipped boards can hold it, by their runtime budget, display and camera buffers. A
/// profile switched to `variant = "large"` validates exactly on these.
#[test]
fn which_boards_hold_panderm_large() {
    // (board, holds Large int8, holds Large fp32)
    let expected = [
        ("armv7-a7", false, false), // 400 MiB budget
        ("imx8mp", false, false),   // 512 MiB
        ("rpi4", false, false),     // 768 MiB (an NNEF bundle's 655 MiB would fit; the check is for ONNX too)
        ("rpi5", true, false),      // 1024 MiB: 900 + 20
        ("rk3588", true, false),    // 2048 MiB
        ("x86_64", true, false),    // 2048 MiB
    ];
    assert_eq!(expected.len(), panderm_edge::board::BUILTIN.len(), "every shipped profile is listed");
    for (name, int8, fp32) in expected {
        let text = panderm_edge::board::BUILTIN.iter().find(|(n, _)| *n == name).expect(name).1;
        for (precision, fits) in [("int8", int8), ("fp32", fp32)] {
            let large = text
                .lines()
                .map(|l| match l.split('=').next().map(str::trim) {
                    Some("variant") => "variant = \"large\"".to_owned(),
                    Some("precision") => format!("precision = \"{precision}\""),
                    _ => l.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let result = Board::from_toml(&large);
            assert_eq!(
                result.is_ok(),
                fits,
                "{name} with Large {precision}: {:?}",
                result.err().map(|e| e.message().to_owned())
            );
        }
    }
}

/// (what is wrong, the `[accelerator]` table appended to rpi5.toml, words the error must contain)
const WRONG_ACCELERATOR: [(&str, &str, &str); 7] = [
    ("unknown provider", "backend = \"ort\"\nproviders = [\"tpu\"]", "unknown variant `tpu`"),
    ("unknown backend", "backend = \"tflite\"", "unknown variant `tflite`"),
    ("empty providers", "backend = \"ort\"\nproviders = []", "accelerator.providers is empty"),
    ("provider twice", "backend = \"ort\"\nproviders = [\"cpu\", \"xnnpack\", \"cpu\"]", "lists `cpu` twice"),
    ("Android's provider on Linux", "backend = \"ort\"\nproviders = [\"nnapi\", \"cpu\"]", "`nnapi` is Android's"),
    (
        "ORT keys with tract",
        "backend = \"tract\"\nproviders = [\"cpu\"]",
        "with backend = \"tract\" they would be ignored",
    ),
    ("unknown fallback", "backend = \"ort\"\nproviders = [\"cpu\"]\nfallback = \"cpu\"", "unknown variant `cpu`"),
];

fn rpi5() -> String {
    std::fs::read_to_string(common::root().join("boards/rpi5.toml")).expect("boards/rpi5.toml")
}

#[test]
fn accelerator_tables_are_checked() {
    use panderm_edge::backend::{BackendKind, Fallback, Provider};
    for (what, table, needle) in WRONG_ACCELERATOR {
        let err = Board::from_toml(&format!("{}\n[accelerator]\n{table}\n", rpi5())).expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}");
        assert!(err.message().contains(needle), "{what}: message `{}` lacks `{needle}`", err.message());
        assert!(!err.message().contains('\n'), "{what}: one-line message");
    }
    // A valid table, read from a file: the library path is relative to the profile's folder, and
    // with a fallback to tract the budget check holds the larger of both engines' peaks.
    let dir = common::temp_dir("boards-accel");
    let table = "[accelerator]\nbackend = \"ort\"\nlibrary = \"lib/libonnxruntime.so\"\nproviders = [\"acl\", \"cpu\"]\nfallback = \"tract\"\n";
    std::fs::write(dir.join("rpi5.toml"), format!("{}\n{table}", rpi5())).expect("write");
    let board = Board::from_file(&dir.join("rpi5.toml")).expect("valid [accelerator]");
    let acc = board.accelerator.as_ref().expect("accelerator");
    assert_eq!(acc.backend, BackendKind::Ort);
    assert_eq!(acc.providers, [Provider::Acl, Provider::Cpu]);
    assert_eq!(acc.fallback, Fallback::Tract);
    assert_eq!(acc.library.as_deref(), Some(dir.join("lib/libonnxruntime.so").as_path()));
    let (v, p) = (board.model.variant, board.model.precision);
    let tract = panderm_edge::board::backbone_peak_mib(v, p);
    let ort = panderm_edge::board::backbone_peak_mib_ort(v, p);
    assert_eq!(board.working_set().backbone_mib, tract.max(ort));
    // Without the fallback only ONNX Runtime holds the backbone.
    let strict = Board::from_toml(&format!("{}\n{}", rpi5(), table.replace("fallback = \"tract\"\n", ""))).expect("ok");
    assert_eq!(strict.accelerator.as_ref().expect("accelerator").fallback, Fallback::Error);
    assert_eq!(strict.working_set().backbone_mib, ort);
    // `backend = "tract"` alone is the default, spelled out.
    let tract_only = Board::from_toml(&format!("{}\n[accelerator]\nbackend = \"tract\"\n", rpi5())).expect("ok");
    assert_eq!(tract_only.working_set().backbone_mib, tract);
}
