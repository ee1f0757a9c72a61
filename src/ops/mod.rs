//! Our own tract operators, swapped into the optimized plan where tract's are slow.
//!
//! * [`quantize::PandermQuantizeLinear`]: the float → 8-bit activation quantizer with SIMD
//!   kernels ([`quantize_kernel`]: AVX2 on x86_64, NEON on aarch64, a scalar loop elsewhere), in
//!   place of tract's scalar `QuantizeLinearU8`/`QuantizeLinearI8`.
//!
//! [`install`] runs on the optimized model, just before it becomes a plan, so nothing is
//! serialized with these ops (NNEF bundles keep tract's own ops on disk and get ours at load).
//! `PANDERM_TRACT_OPS_ONLY=1` in the environment keeps tract's own ops (for A/B measurements and
//! for diagnosing a suspected kernel problem in the field).

pub mod quantize;
pub mod quantize_kernel;

use tract_onnx::prelude::*;

/// What [`install`] replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Installed {
    /// Activation quantizers.
    pub quantizers: usize,
}

/// Whether `PANDERM_TRACT_OPS_ONLY` asks for tract's own operators only.
pub fn disabled() -> bool {
    std::env::var_os("PANDERM_TRACT_OPS_ONLY").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Replaces tract's operators by ours where ours are faster, in an optimized model.
pub fn install(model: &mut TypedModel) -> TractResult<Installed> {
    let mut installed = Installed::default();
    if disabled() {
        return Ok(installed);
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(input) = node.inputs.first() else { continue };
        let input_dt = model.outlet_fact(*input)?.datum_type;
        let Some(op) = quantize::PandermQuantizeLinear::replacing(node.op.as_ref(), input_dt) else { continue };
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, op)?;
        patch.apply(model)?;
        installed.quantizers += 1;
    }
    Ok(installed)
}
