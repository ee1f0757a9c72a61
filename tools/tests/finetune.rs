//! `panderm-tools finetune` against PanDerm's own fine-tuning steps (tests/fixtures/ft_steps,
//! made with PanDerm's model code and optimizer recipe in PyTorch), end to end through
//! convert → bundle → `panderm classify`, resumption, and its refusals.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use panderm_tools::checkpoint::Checkpoint;
use serde_json::Value;

fn ft_dir() -> PathBuf {
    fixture("ft_steps")
}

/// The fixture's configuration as command-line flags (`expected.json` "config").
fn fixture_args(out: &Path) -> Vec<String> {
    let init = fixture("panderm_tiny_ft.pth");
    [
        "finetune",
        "--init",
        &s(&init),
        "--csv",
        &s(&ft_dir().join("data.csv")),
        "--root",
        &s(&ft_dir().join("images")),
        "--nb-classes",
        "3",
        "--output-dir",
        &s(out),
        "--epochs",
        "4",
        "--batch-size",
        "6",
        "--lr",
        "5e-4",
        "--min-lr",
        "1e-6",
        "--warmup-epochs",
        "1",
        "--layer-decay",
        "0.65",
        "--weight-decay",
        "0.05",
        "--drop-path",
        "0",
        "--smoothing",
        "0.1",
        "--mixup",
        "0",
        "--cutmix",
        "0",
        "--no-augment",
        "--device",
        "cpu",
        "--quiet",
    ]
    .map(String::from)
    .to_vec()
}

fn run_ok(args: &[String]) -> String {
    let o = tools(args);
    assert!(
        o.status.success(),
        "{args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run_err(args: &[String]) -> String {
    let o = tools(args);
    assert!(!o.status.success(), "{args:?} should fail; stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut ck = Checkpoint::open(path).unwrap();
    let keys: Vec<String> = ck.tensors.keys().filter(|k| !k.ends_with("relative_position_index")).cloned().collect();
    keys.into_iter()
        .map(|k| {
            let shape = ck.shape_of(&k).unwrap().to_vec();
            let v = ck.take(&k, &shape).unwrap().f32(&k).unwrap();
            (k, v)
        })
        .collect()
}

fn l2(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// Runs `panderm classify --json` on one image and returns the first head's probabilities.
fn classify(bundle: &Path, image: &Path) -> Vec<f64> {
    let o = std::process::Command::new(panderm_bin())
        .args(["classify", "--bundle", &s(bundle), "--json", "--no-quality-gate"])
        .arg(image)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["heads"][0]["probabilities"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// checkpoint → ONNX classifier → bundle.
fn bundle_of(ckpt: &Path, dir: &Path, name: &str) -> PathBuf {
    let onnx = dir.join(format!("{name}.onnx"));
    run_ok(&["convert".into(), s(ckpt), "-o".into(), s(&onnx)]);
    let bundle = dir.join(name);
    classifier_bundle(&onnx, &bundle, name);
    bundle
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

#[test]
fn finetune_matches_pytorch_and_the_device_runs_what_was_trained() {
    let dir = temp_dir("finetune-exact");
    let out = dir.join("run");
    run_ok(&fixture_args(&out));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(ft_dir().join("expected.json")).unwrap()).unwrap();

    // Per-step learning rate and loss.
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps = expected["steps"].as_array().unwrap();
    assert_eq!(lines.len(), steps.len(), "{log}");
    for (got, want) in lines.iter().zip(steps) {
        assert_eq!(got["step"], want["step"]);
        assert_eq!(got["epoch"], want["epoch"]);
        let (gl, wl) = (got["lr"].as_f64().unwrap(), want["lr"].as_f64().unwrap());
        // The schedule is f64 arithmetic, as numpy's: equal to rounding.
        assert!((gl - wl).abs() <= 1e-15, "lr {gl} vs {wl}");
        let (g, w) = (got["loss"].as_f64().unwrap(), want["loss"].as_f64().unwrap());
        // fp32 forward passes with a different summation order: ~1e-6 apart; 1e-4 is the bound.
        assert!((g - w).abs() <= 1e-4, "step {}: loss {g} vs PyTorch {w}", want["step"]);
    }

    // Every tensor's update (final − initial) against PyTorch's.
    let init = tensors(&fixture("panderm_tiny_ft.pth"));
    let ours: std::collections::HashMap<_, _> = tensors(&out.join("checkpoint-last.pth")).into_iter().collect();
    let theirs: std::collections::HashMap<_, _> = tensors(&ft_dir().join("expected_last.pth")).into_iter().collect();
    assert_eq!(ours.len(), init.len(), "same keys as the initial checkpoint");
    let mut worst = (0.0f64, String::new());
    for (key, w0) in &init {
        let (a, b) = (&ours[key], &theirs[key]);
        let du = a.iter().zip(b).map(|(x, y)| f64::from(*x) - f64::from(*y));
        let reference = l2(b.iter().zip(w0).map(|(y, z)| f64::from(*y) - f64::from(*z)));
        let err = l2(du);
        if reference == 0.0 {
            // pos_embed is frozen in PanDerm; ours must not move either.
            assert_eq!(err, 0.0, "{key} moved but PyTorch's did not");
            continue;
        }
        let rel = err / reference;
        if rel > worst.0 {
            worst = (rel, key.clone());
        }
        // PyTorch's own fp32-vs-fp64 spread is ~1e-4; a wrong group or lr scale is > 1e-1.
        assert!(rel <= 5e-3, "{key}: update differs from PyTorch's by {rel:.2e} (relative L2)");
    }
    eprintln!("worst relative update error: {:.2e} ({})", worst.0, worst.1);

    // The trained checkpoint on the device: the last weights give PyTorch's after-training
    // logits on a train image...
    let last_bundle = bundle_of(&out.join("checkpoint-last.pth"), &dir, "last");
    let want_logits: Vec<f64> =
        expected["train_logits_after"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let want = softmax(&want_logits);
    let got = classify(&last_bundle, &ft_dir().join("images/img00.png"));
    for (g, w) in got.iter().zip(&want) {
        // Our weights are within 0.5 % of PyTorch's update; the logits move by < 1e-3.
        assert!((g - w).abs() <= 2e-3, "{got:?} vs PyTorch {want:?}");
    }
    // ... and the best checkpoint gives, through tract, what the trainer's own forward pass wrote
    // to val.csv.
    let best_bundle = bundle_of(&out.join("checkpoint-best.pth"), &dir, "best");
    let val = std::fs::read_to_string(out.join("val.csv")).unwrap();
    let mut rows = val.lines().skip(1);
    for image in ["img06.png", "img07.png"] {
        let row: Vec<&str> = rows.next().unwrap().split(',').collect();
        assert_eq!(row[0], image);
        let trainer: Vec<f64> = row[3..].iter().map(|v| v.trim().parse().unwrap()).collect();
        let device = classify(&best_bundle, &ft_dir().join("images").join(image));
        for (d, t) in device.iter().zip(&trainer) {
            // Same pixels, fp32 in both engines; val.csv keeps 8 decimals.
            assert!((d - t).abs() <= 1e-5, "{image}: device {device:?} vs trainer {trainer:?}");
        }
    }
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["train_images"], 6);
    assert_eq!(metrics["val_images"], 2);
    assert_eq!(metrics["steps_per_epoch"], 1);

    // A second fresh run into the same folder is refused; --resume of a finished run trains
    // nothing more and reports the same best epoch.
    let err = run_err(&fixture_args(&out));
    assert!(err.contains("already holds a fine-tuning run"), "{err}");
    let mut resume = fixture_args(&out);
    resume.push("--resume".into());
    run_ok(&resume);
    let again: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(again["epochs_run"], 0);
    assert_eq!(again["best_epoch"], metrics["best_epoch"]);
    assert_eq!(std::fs::read_to_string(out.join("log.jsonl")).unwrap(), log, "log.jsonl kept");
}

#[test]
fn augmented_run_resumes_where_it_stopped() {
    // PanDerm's full recipe on the fixture (augmentations, Mixup/CutMix, drop path, weighted
    // sampler), 3 steps per epoch: one run straight through, one stopped after an epoch and
    // resumed. They must end with the same weights.
    let dir = temp_dir("finetune-resume");
    let args = |out: &Path| -> Vec<String> {
        let mut a = fixture_args(out);
        let keep: Vec<String> = std::mem::take(&mut a);
        // Drop the fixture's "no augmentation, no mixing" flags and use the recipe's.
        let mut i = 0;
        while i < keep.len() {
            match keep[i].as_str() {
                "--no-augment" => i += 1,
                "--drop-path" | "--mixup" | "--cutmix" | "--batch-size" | "--epochs" => i += 2,
                _ => {
                    a.push(keep[i].clone());
                    i += 1;
                }
            }
        }
        a.extend(
            ["--batch-size", "2", "--epochs", "2", "--drop-path", "0.2", "--weighted-sampler", "--seed", "7"]
                .map(String::from),
        );
        a
    };
    let straight = dir.join("straight");
    run_ok(&args(&straight));
    let stopped = dir.join("stopped");
    let mut first = args(&stopped);
    first.extend(["--stop-after", "1"].map(String::from));
    run_ok(&first);
    let mut second = args(&stopped);
    second.push("--resume".into());
    run_ok(&second);
    let a: std::collections::HashMap<_, _> = tensors(&straight.join("checkpoint-last.pth")).into_iter().collect();
    let b: std::collections::HashMap<_, _> = tensors(&stopped.join("checkpoint-last.pth")).into_iter().collect();
    for (k, va) in &a {
        // Same seeds, same order of operations; multithreaded reductions may round differently.
        let diff = va.iter().zip(&b[k]).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "{k}: resumed run differs by {diff}");
    }
    let la = std::fs::read_to_string(straight.join("log.jsonl")).unwrap();
    let lb = std::fs::read_to_string(stopped.join("log.jsonl")).unwrap();
    assert_eq!(la.lines().count(), 6, "3 steps per epoch × 2 epochs: {la}");
    assert_eq!(lb.lines().count(), 6, "{lb}");
}

#[test]
fn finetune_refuses_bad_input_before_training() {
    let dir = temp_dir("finetune-bad");
    let csv_dir = dir.join("csv");
    std::fs::create_dir_all(&csv_dir).unwrap();
    let no_val = csv_dir.join("no_val.csv");
    std::fs::write(&no_val, "image,label,split\nimg00.png,0,train\nimg01.png,1,train\n").unwrap();
    let label_too_big = csv_dir.join("label_too_big.csv");
    std::fs::write(&label_too_big, "image,label,split\nimg00.png,0,train\nimg01.png,5,train\nimg06.png,0,val\n")
        .unwrap();
    let with = |extra: &[(&str, &str)], out: &str| -> Vec<String> {
        let mut a = fixture_args(&dir.join(out));
        for (flag, value) in extra {
            let i = a.iter().position(|x| x == flag).unwrap();
            a[i + 1] = value.to_string();
        }
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with(&[("--nb-classes", "4")], "k"), "head has 3 classes but --nb-classes is 4"),
        (with(&[("--csv", &s(&no_val))], "noval"), "no val rows"),
        (with(&[("--csv", &s(&label_too_big))], "label"), "has label 5 but --nb-classes is 3"),
        (with(&[("--batch-size", "7")], "batch"), "fewer than one batch of 7"),
        (with(&[("--warmup-epochs", "5")], "warm"), "--warmup-epochs 5 is longer than --epochs 4"),
        (with(&[("--init", &s(&dir.join("missing.pth")))], "init"), "missing.pth"),
        (with(&[("--layer-decay", "0")], "ld"), "--layer-decay must be in (0, 1]"),
    ];
    for (args, want) in cases {
        let err = run_err(&args);
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    let mut resume = fixture_args(&dir.join("nothing"));
    resume.push("--resume".into());
    assert!(run_err(&resume).contains("holds no run to resume"));
    // Without a GPU (CI), --device cuda is one clear line, not a panic; with one, it runs.
    let tiny = s(&fixture("panderm_tiny_ft.pth"));
    let cuda = [
        "bench-finetune",
        "--init",
        &tiny,
        "--nb-classes",
        "3",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--device",
        "cuda",
    ];
    let o = tools(&cuda);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no usable CUDA device") || err.contains("built without CUDA"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let mut amp = fixture_args(&dir.join("amp"));
    amp.push("--amp".into());
    assert!(run_err(&amp).contains("--amp"));
}

#[test]
fn poisoned_weights_and_damaged_run_state_are_refused() {
    use panderm_tools::finetune::state::save_model;
    use panderm_tools::finetune::weights::StateDict;
    use panderm_tools::pth_writer::PyValue;

    let dir = temp_dir("finetune-poison");
    // A NaN in one weight of the starting checkpoint: the first loss is NaN, the run stops
    // before any step and leaves no checkpoint to convert.
    let (mut sd, _) = StateDict::from_checkpoint(&fixture("panderm_tiny_ft.pth"), 3, 0).unwrap();
    sd.tensors.iter_mut().find(|t| t.name == "blocks.1.mlp.fc2.weight").unwrap().data[7] = f32::NAN;
    save_model(&dir, "nan.pth", &sd, PyValue::Str("best".into()), vec![]).unwrap();
    let mut args = fixture_args(&dir.join("nan-run"));
    let i = args.iter().position(|a| a == "--init").unwrap();
    args[i + 1] = s(&dir.join("nan.pth"));
    let err = run_err(&args);
    assert!(err.contains("the loss is NaN at step 0"), "{err}");
    assert!(!dir.join("nan-run/checkpoint-best.pth").exists() && !dir.join("nan-run/checkpoint-last.pth").exists());

    // A run stopped after one epoch, then its optimizer state truncated or its resume record
    // garbled: --resume refuses with the file named, and changes nothing.
    let out = dir.join("run");
    let mut first = fixture_args(&out);
    first.extend(["--stop-after", "1"].map(String::from));
    run_ok(&first);
    let mut resume = fixture_args(&out);
    resume.push("--resume".into());
    let optimizer = out.join("optimizer-last.npy");
    let bytes = std::fs::read(&optimizer).unwrap();
    std::fs::write(&optimizer, &bytes[..bytes.len() / 2]).unwrap();
    let err = run_err(&resume);
    assert!(err.contains("optimizer-last.npy"), "{err}");
    std::fs::write(&optimizer, &bytes).unwrap();
    let record = std::fs::read(out.join("resume.json")).unwrap();
    std::fs::write(out.join("resume.json"), b"{\"epochs_done\": ").unwrap();
    let err = run_err(&resume);
    assert!(err.contains("resume.json") && err.contains("not a resume record"), "{err}");
    std::fs::write(out.join("resume.json"), &record).unwrap();
    // Intact again: the resumed run finishes the remaining 3 epochs.
    run_ok(&resume);
    assert_eq!(std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().count(), 4);
}
