//! Our own tract operators, swapped into the optimized plan where tract's are slow.
//!
//! * [`quantize::PandermQuantizeLinear`]: the float → 8-bit activation quantizer with SIMD
//!   kernels ([`quantize_kernel`]: AVX2 on x86_64, NEON on aarch64, a scalar loop elsewhere), in
//!   place of tract's scalar `QuantizeLinearU8`/`QuantizeLinearI8`; with tract's exact GELU folded
//!   in where a GELU feeds it alone ([`quantize::fuse_gelu`]).
//! * [`softmax::PandermSoftmax`]: float32 softmax over the last axis on a SIMD row kernel
//!   ([`softmax_kernel`]) for rows of any length, in place of tract's `Softmax`, whose fast
//!   kernel needs rows of a multiple of 4 (PanDerm's attention rows are 197).
//! * [`qmatmul::PandermQMatMul`]: a weight MatMul of an int8 model with its float rescale, on our
//!   int8 GEMM ([`qmatmul_kernel`]: AMX, AVX-512 VNNI or AVX2 on x86_64), in place of tract's int8
//!   GEMM and its `Cast → Mul → Add` chain.
//! * [`layer_norm::PandermLayerNorm`]: a float32 layer normalization over the last axis as one
//!   row-parallel operator, in place of the five tract decomposes ONNX `LayerNormalization` into
//!   (x86_64 for now: measured there; ARM keeps tract's decomposition).
//! * [`attention::PandermAttention`]: `softmax(q · kᵀ) · v` per head as one operator where the two
//!   batched products below and a last-axis softmax form that chain (x86_64).
//! * [`batched_matmul::PandermBatchedMatMul`]: float32 batched products (attention's `q · kᵀ` and
//!   `attn · v` per head) with the heads spread over the threads ([`batched_matmul_kernel`],
//!   x86_64), in place of tract's one-head-at-a-time loop.
//!
//! [`install`] runs on the optimized model, just before it becomes a plan, and
//! [`install_decluttered`] on the decluttered model, before tract's optimizer; so nothing is
//! serialized with these ops (NNEF bundles keep tract's own ops on disk and get ours at load).
//! `PANDERM_TRACT_OPS_ONLY=1` in the environment keeps tract's own ops (for A/B measurements and
//! for diagnosing a suspected kernel problem in the field); `PANDERM_INT8_GEMM` chooses the int8
//! GEMM alone ([`qmatmul_kernel::Kernel::detect`]).

pub mod attention;
pub mod batched_matmul;
pub mod batched_matmul_kernel;
mod graph;
pub mod layer_norm;
pub mod qmatmul;
pub mod qmatmul_kernel;
pub mod quantize;
pub mod quantize_kernel;
pub mod softmax;
pub mod softmax_kernel;
#[cfg(target_arch = "x86_64")]
mod x86_store;

use tract_onnx::prelude::*;

/// What [`install`] replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Installed {
    /// Activation quantizers.
    pub quantizers: usize,
    /// Softmaxes.
    pub softmaxes: usize,
    /// GELUs folded into the quantizer after them.
    pub gelus: usize,
}

/// Whether `PANDERM_TRACT_OPS_ONLY` asks for tract's own operators only.
pub fn disabled() -> bool {
    std::env::var_os("PANDERM_TRACT_OPS_ONLY").is_some_and(|v| !v.is_empty() && v != "0")
}

/// An output buffer shared by the tasks of one kernel call, each writing its own disjoint part
/// (column panels of a GEMM, batches of a batched product) while the call waits for them.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: the tasks of one call write disjoint elements; the buffer outlives them (the call
// returns after its scope).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Threads in tract's inference pool (1 without one).
pub(crate) fn pool_threads() -> usize {
    match tract_linalg::multithread::current_tract_executor() {
        tract_linalg::multithread::Executor::MultiThread(pool) => pool.current_num_threads().max(1),
        _ => 1,
    }
}

/// Runs `task(0)`, …, `task(count − 1)` as tasks on tract's inference threads when it has a pool
/// of more than one thread and there is more than one task, else one after the other here; returns
/// when all have run. How our kernels split one call: GEMM column panels, product batches,
/// attention heads.
pub(crate) fn spread(count: usize, task: impl Fn(usize) + Sync) {
    let pool = match tract_linalg::multithread::current_tract_executor() {
        tract_linalg::multithread::Executor::MultiThread(pool) if count > 1 && pool.current_num_threads() > 1 => pool,
        _ => return (0..count).for_each(task),
    };
    let task = &task;
    pool.scope(|s| {
        for i in 0..count {
            s.spawn(move |_| task(i));
        }
    });
}

/// `f` applied to every row (the last axis) of a float32 tensor, into a new tensor of its shape,
/// rows spread over tract's inference threads: the body of our row-wise ops (softmax, layer norm).
pub(crate) fn map_rows(input: &TValue, f: impl Fn(&[f32], &mut [f32]) + Sync) -> TractResult<Tensor> {
    let shape = input.shape().to_vec();
    let row = shape.last().copied().unwrap_or(1);
    let plain = input.try_as_plain_ram()?;
    let xs = plain.as_slice::<f32>()?;
    // SAFETY: every row is written by `f` below before the tensor is read (a row kernel writes its
    // whole output row).
    let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
    if row > 0 {
        let mut out = output.try_as_plain_ram_mut()?;
        let ys = out.as_slice_mut::<f32>()?;
        let total = ys.len();
        tract_linalg::multithread::par_chunks_mut(ys, row, total, |first_row, chunk| {
            let xs = &xs[first_row * row..first_row * row + chunk.len()];
            for (x, y) in xs.chunks_exact(row).zip(chunk.chunks_exact_mut(row)) {
                f(x, y);
            }
            Ok(())
        })?;
    }
    Ok(output)
}

/// What [`install_decluttered`] replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstalledDecluttered {
    /// int8 weight MatMuls ([`qmatmul::PandermQMatMul`]).
    pub int8_gemms: usize,
    /// float32 batched products ([`batched_matmul::PandermBatchedMatMul`]).
    pub batched_matmuls: usize,
    /// layer normalizations ([`layer_norm::PandermLayerNorm`]).
    pub layer_norms: usize,
    /// attention cores fused from two batched products and a softmax
    /// ([`attention::PandermAttention`]).
    pub attentions: usize,
}

/// Installs [`qmatmul::PandermQMatMul`] (on this CPU's kernel, [`qmatmul_kernel::Kernel::detect`]),
/// [`batched_matmul::PandermBatchedMatMul`] and [`layer_norm::PandermLayerNorm`] in a decluttered
/// model, before tract's optimizer.
/// Nothing on CPUs where tract's own kernels are kept (ARM), or with `PANDERM_TRACT_OPS_ONLY`.
pub fn install_decluttered(model: &mut TypedModel) -> TractResult<InstalledDecluttered> {
    if disabled() {
        return Ok(InstalledDecluttered::default());
    }
    let int8_gemms = match qmatmul_kernel::Kernel::detect().map_err(TractError::msg)? {
        Some(kernel) => qmatmul::install(model, kernel)?,
        None => 0,
    };
    let batched_matmuls = match batched_matmul_kernel::Kernel::best() {
        Some(kernel) => batched_matmul::install(model, kernel)?,
        None => 0,
    };
    let attentions = if batched_matmuls > 0 { attention::install(model)? } else { 0 };
    let layer_norms = if cfg!(target_arch = "x86_64") { layer_norm::install(model)? } else { 0 };
    Ok(InstalledDecluttered { int8_gemms, batched_matmuls, layer_norms, attentions })
}

/// Which of our operators to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// [`quantize::PandermQuantizeLinear`].
    pub quantize: bool,
    /// [`softmax::PandermSoftmax`].
    pub softmax: bool,
    /// [`quantize::fuse_gelu`] (with `quantize`).
    pub gelu: bool,
}

impl Selection {
    /// All of them: what the engine installs.
    pub const ALL: Selection = Selection { quantize: true, softmax: true, gelu: true };
}

/// Replaces tract's operators by ours where ours are faster, in an optimized model (all of
/// them, unless `PANDERM_TRACT_OPS_ONLY` is set).
pub fn install(model: &mut TypedModel) -> TractResult<Installed> {
    if disabled() {
        return Ok(Installed::default());
    }
    install_only(model, Selection::ALL)
}

/// [`install`] of a chosen subset, regardless of the environment (tests compare one op at a time
/// against tract's).
pub fn install_only(model: &mut TypedModel, selection: Selection) -> TractResult<Installed> {
    let mut installed = Installed::default();
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(input) = node.inputs.first() else { continue };
        let fact = model.outlet_fact(*input)?.clone();
        let quantizer = quantize::PandermQuantizeLinear::replacing(node.op.as_ref(), fact.datum_type);
        let softmax = softmax::PandermSoftmax::replacing(node.op.as_ref(), &fact);
        let patch = if let Some(op) = quantizer.filter(|_| selection.quantize) {
            installed.quantizers += 1;
            TypedModelPatch::replace_single_op(model, node, &node.inputs, op)?
        } else if let Some(op) = softmax.filter(|_| selection.softmax) {
            installed.softmaxes += 1;
            TypedModelPatch::replace_single_op(model, node, &node.inputs, op)?
        } else {
            continue;
        };
        patch.apply(model)?;
    }
    if selection.quantize && selection.gelu {
        installed.gelus = quantize::fuse_gelu(model)?;
    }
    Ok(installed)
}
