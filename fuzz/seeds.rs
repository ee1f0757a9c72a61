//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/seed-*`: small valid
//! files of each format, built from the shipped models, boards and fixtures rather than copied,
//! so the corpus stays small. Built with the fuzz targets (`cargo fuzz build -O -a -s none`, it
//! links libFuzzer only for the coverage callbacks) and run once before fuzzing a fresh corpus:
//! `fuzz/target/x86_64-unknown-linux-gnu/release/seeds`.

use std::path::Path;

use libfuzzer_sys as _;

fn fuzz_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn main() {
    use panderm_tools::pth_writer::{PthTensor, PyValue, to_pth_bytes};
    use panderm_tools::synth::{SynthLayout, SynthSpec};

    let root = fuzz_dir().join("..");
    let put = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };
    let copy = |target: &str, name: &str, file: &str| put(target, name, &std::fs::read(root.join(file)).unwrap());

    // manifest, board: the shipped files.
    copy("manifest", "demo.toml", "models/demo/manifest.toml");
    for b in ["armv7-a7", "imx8mp", "rk3588", "rpi4", "rpi5", "x86_64"] {
        copy("board", &format!("{b}.toml"), &format!("boards/{b}.toml"));
    }

    // npy: v1 headers of several ranks, and a v2 header.
    for (name, shape) in [("2x3", vec![2usize, 3]), ("4", vec![4]), ("scalar", vec![]), ("1x2x2", vec![1, 2, 2])] {
        let n: usize = shape.iter().product();
        let mut bytes = panderm_edge::npy::header_f32(&shape);
        for i in 0..n {
            bytes.extend_from_slice(&(i as f32 * 0.5 - 1.0).to_le_bytes());
        }
        put("npy", &format!("{name}.npy"), &bytes);
    }
    let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n";
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    v2.extend_from_slice(dict);
    v2.extend_from_slice(&[0, 0, 128, 63, 0, 0, 0, 64]);
    put("npy", "v2.npy", &v2);

    // image: a small gradient in every format the runtime decodes, a JPEG with an EXIF
    // orientation, 16-bit and grey/alpha PNGs, and the first 8 KiB of a real phone photo.
    let img = image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([(x * 16) as u8, (y * 20) as u8, ((x + y) * 8) as u8]));
    let dynimg = image::DynamicImage::ImageRgb8(img);
    let encode = |img: &image::DynamicImage, format: image::ImageFormat| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    for (name, format) in [
        ("png", image::ImageFormat::Png),
        ("jpg", image::ImageFormat::Jpeg),
        ("bmp", image::ImageFormat::Bmp),
        ("tiff", image::ImageFormat::Tiff),
        ("webp", image::ImageFormat::WebP),
    ] {
        put("image", &format!("rgb.{name}"), &encode(&dynimg, format));
    }
    put("image", "rgb16.png", &encode(&image::DynamicImage::ImageRgb16(dynimg.to_rgb16()), image::ImageFormat::Png));
    put("image", "la.png", &encode(&image::DynamicImage::ImageLumaA8(dynimg.to_luma_alpha8()), image::ImageFormat::Png));
    let jpg = encode(&dynimg, image::ImageFormat::Jpeg);
    // APP1 "Exif": little-endian TIFF, one IFD entry: Orientation (0x0112) SHORT = 6.
    let tiff: &[u8] = b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00";
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(tiff);
    let mut exif = jpg[..2].to_vec();
    exif.extend_from_slice(&[0xFF, 0xE1]);
    exif.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    exif.extend_from_slice(&app1);
    exif.extend_from_slice(&jpg[2..]);
    put("image", "exif6.jpg", &exif);
    let phone = std::fs::read(root.join("tests/fixtures/images/clinical_forearm_iphone14.jpg")).unwrap();
    put("image", "phone-head.jpg", &phone[..8192]);

    // onnx: the demo heads (2-3 KB); the backbones are too large for the corpus.
    for h in ["lesion_colour", "lesion_pattern"] {
        copy("onnx", &format!("{h}.onnx"), &format!("models/demo/heads/{h}.onnx"));
    }

    // nnef: the same heads written as NNEF archives, as bundles ship backbones.
    let tmp = std::env::temp_dir().join(format!("panderm-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for h in ["lesion_colour", "lesion_pattern"] {
        let (typed, _) = panderm_edge::engine::load_decluttered(
            &root.join(format!("models/demo/heads/{h}.onnx")),
            &panderm_edge::engine::ModelOptions::default(),
        )
        .unwrap();
        let out = tmp.join(format!("{h}.nnef.tar"));
        panderm_edge::nnef::write(&typed, &out).unwrap();
        put("nnef", &format!("{h}.nnef.tar"), &std::fs::read(&out).unwrap());
    }

    // dataset_csv: the shipped PanDerm-format CSVs (binary, multiclass, percent).
    copy("dataset_csv", "lp_binary.csv", "tests/fixtures/lp_binary.csv");
    copy("dataset_csv", "lp_multiclass.csv", "tests/fixtures/lp_multiclass.csv");
    copy("dataset_csv", "percent_50.csv", "tools/tests/fixtures/percent_50.csv");

    // pth: a hand-made small state dict, and synthetic PanDerm checkpoints (D=8, one block) in
    // the linear-probe and fine-tuned layouts.
    let w = [0.5f32, -1.0, 2.0, 0.25];
    let idx = [0i64, 1, 2, 3];
    let small = PyValue::OrderedDict(vec![
        ("cls_token".into(), PyValue::Tensor(PthTensor::f32(vec![1, 1, 4], &w))),
        ("blocks.0.norm1.weight".into(), PyValue::Tensor(PthTensor::f32(vec![4], &w))),
        ("rel_pos.index".into(), PyValue::Tensor(PthTensor::i64(vec![2, 2], &idx))),
    ]);
    put("pth", "small.pth", &to_pth_bytes(&small).unwrap());
    let nested = PyValue::Dict(vec![
        ("model".into(), small.clone()),
        ("epoch".into(), PyValue::Int(3)),
        ("args".into(), PyValue::Namespace(vec![("nb_classes".into(), PyValue::Int(2))])),
    ]);
    put("pth", "nested.pth", &to_pth_bytes(&nested).unwrap());
    // (The fine-tuned layout is left out: its optimizer state makes it ~350 KB; `nested` has its shape.)
    for (name, layout) in [("lp", SynthLayout::LinearProbe), ("ll", SynthLayout::LargeRelease)] {
        let spec = SynthSpec { embed_dim: 8, depth: 1, num_heads: 2, layout, seed: 1 };
        let tensors = panderm_tools::synth::state_dict(&spec);
        let path = tmp.join(format!("{name}.pth"));
        panderm_tools::synth::write_checkpoint(&path, &tensors, layout).unwrap();
        put("pth", &format!("synth-{name}.pth"), &std::fs::read(&path).unwrap());
    }

    // audit_log: a short log written by the runtime, and the same log with a torn last line.
    let log = tmp.join("audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let audit = panderm_edge::audit_log::AuditLog::open(&log, Default::default()).unwrap();
    for i in 0..3 {
        audit.append(&serde_json::json!({"image": format!("lesion{i}.jpg"), "top": "nevus", "p": 0.75})).unwrap();
    }
    let bytes = std::fs::read(&log).unwrap();
    put("audit_log", "three.jsonl", &bytes);
    put("audit_log", "torn.jsonl", &bytes[..bytes.len() - 20]);
    std::fs::remove_dir_all(&tmp).unwrap();
}
