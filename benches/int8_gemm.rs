//! The int8 GEMM of weight MatMuls (`src/ops/qmatmul_kernel.rs`) at PanDerm_Base's shapes, each
//! kernel this CPU runs: milliseconds and 10⁹ multiply-adds per second, on 1 thread or on
//! `THREADS` threads of a tract pool.
//!
//! ```sh
//! cargo bench --bench int8_gemm
//! THREADS=2 cargo bench --bench int8_gemm
//! COPIES=20 THREADS=2 cargo bench --bench int8_gemm   # weights not in cache, as in a model
//! ```
//!
//! With `COPIES=N` the timed calls cycle through N packed copies of the weights, so each call
//! reads its weights from memory as a model's layers do (each weight matrix is used once per
//! image); the default, 1, measures the kernel on cached weights.
//!
//! The whole-model comparison with tract's GEMM and ONNX Runtime is `panderm bench` with
//! `PANDERM_INT8_GEMM=tract|vnni|avx2` (docs/performance.md).

use panderm_edge::ops::qmatmul_kernel::{Kernel, Weights};
use tract_linalg::multithread::{Executor, multithread_tract_scope};

fn main() {
    let threads: usize = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1).max(1);
    let executor = if threads == 1 { Executor::SingleThread } else { Executor::multithread(threads) };
    println!("{threads} thread(s)");
    multithread_tract_scope(executor, run);
}

fn run() {
    // (rows: 197 tokens, k, n): q/k/v/proj, fc1, fc2.
    let shapes = [(197usize, 768usize, 768usize), (197, 768, 3072), (197, 3072, 768)];
    for kernel in [Kernel::Amx, Kernel::Vnni512, Kernel::Avx2, Kernel::Scalar] {
        if !kernel.available() {
            println!("{}: not on this CPU", kernel.name());
            continue;
        }
        for &(m, k, n) in &shapes {
            let a: Vec<u8> = (0..m * k).map(|i| (i * 7 % 251) as u8).collect();
            let w: Vec<i8> = (0..k * n).map(|i| (i * 13 % 255) as u8 as i8).collect();
            let scale = vec![1e-3f32; n];
            let copies: usize = std::env::var("COPIES").ok().and_then(|c| c.parse().ok()).unwrap_or(1);
            let all: Vec<Weights> =
                (0..copies).map(|_| Weights::pack(kernel, &w, k, n, 128, &scale, Some(&scale))).collect();
            let mut y = vec![0f32; m * n];
            all[0].gemm(&a, &mut y);
            let reps = if kernel == Kernel::Scalar { 1 } else { 20 };
            let t = std::time::Instant::now();
            for r in 0..reps {
                all[r % copies].gemm(&a, &mut y);
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{:<20} {m}x{k}x{n}: {:8.3} ms  {:6.1} GMAC/s",
                kernel.name(),
                s * 1e3,
                (m * k * n) as f64 / s / 1e9
            );
        }
    }
}
