//! Where the backbone runs during feature extraction: the CPU (tract's optimized CPU plan,
//! the same one the device runs) or a CUDA GPU through `tract-cuda` (cargo feature `cuda`),
//! which prepares the **same decluttered ONNX graph** for the GPU. The CUDA driver is loaded
//! at run time, so a `cuda` build runs anywhere and fails cleanly where no driver exists.

use std::collections::BTreeMap;
use std::path::Path;

use panderm_edge::engine::{Model, ModelOptions};
use panderm_edge::preprocess::ImageTensor;

use crate::error::{Error, Result};

/// The device asked for on the command line (`--device`; `help` is the CLI's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// tract on the CPU.
    #[value(help = "tract on the CPU")]
    Cpu,
    /// tract-cuda; an error if no CUDA driver (or a build without the `cuda` feature).
    #[value(help = "tract-cuda on an NVIDIA GPU (build with --features cuda)")]
    Cuda,
    /// CUDA when a driver is present, else the CPU with a one-line notice.
    #[value(help = "CUDA when a driver is present, else the CPU")]
    Auto,
}

impl DeviceChoice {
    /// A sensible default batch size for the device.
    pub fn default_batch_size(self, resolved_cuda: bool) -> usize {
        if resolved_cuda { 64 } else { 8 }
    }
}

enum Inner {
    Cpu(Model),
    #[cfg(feature = "cuda")]
    Cuda(Box<dyn tract_onnx::prelude::Runnable>),
}

/// A backbone loaded for batched extraction on one device.
pub struct Backbone {
    inner: Inner,
    batch_size: usize,
    sample_shape: Vec<usize>,
    device: String,
}

/// Whether this build can use CUDA at all.
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Checks for a usable CUDA driver and libraries (always an error without the feature).
pub fn cuda_available() -> Result<()> {
    #[cfg(feature = "cuda")]
    {
        let rt = cuda_runtime()?;
        rt.check().map_err(|e| Error::Cuda(format!("CUDA unavailable: {}", one_line(&format!("{e:#}")))))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(no_cuda_support())
    }
}

#[cfg(not(feature = "cuda"))]
fn no_cuda_support() -> Error {
    Error::Cuda("this panderm-tools was built without CUDA support (rebuild with `--features cuda`)".into())
}

#[cfg(feature = "cuda")]
fn cuda_runtime() -> Result<&'static dyn tract_onnx::prelude::Runtime> {
    // Referencing the crate links it, which registers its runtime under the name "cuda".
    let _ = std::any::type_name::<tract_cuda::CudaTransform>();
    tract_onnx::tract_core::runtime::runtime_for_name("cuda")
        .map_err(|e| Error::Cuda(format!("CUDA runtime lookup failed: {e}")))?
        .ok_or_else(|| Error::Cuda("tract-cuda runtime is not registered in this build".into()))
}

#[cfg(feature = "cuda")]
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ")
}

impl Backbone {
    /// Loads `path` for `choice`; returns the backbone and, for `Auto` falling back to the
    /// CPU, the notice to print.
    pub fn load(path: &Path, batch_size: Option<usize>, choice: DeviceChoice) -> Result<(Backbone, Option<String>)> {
        let use_cuda = match choice {
            DeviceChoice::Cpu => false,
            DeviceChoice::Cuda => {
                cuda_available()?;
                true
            }
            DeviceChoice::Auto => match cuda_available() {
                Ok(()) => true,
                Err(why) => {
                    let notice = format!("note: no usable CUDA device ({why}); extracting on the CPU");
                    let batch = batch_size.unwrap_or(choice.default_batch_size(false));
                    return Ok((Backbone::cpu(path, batch)?, Some(notice)));
                }
            },
        };
        let batch = batch_size.unwrap_or(choice.default_batch_size(use_cuda));
        if use_cuda { Ok((Backbone::cuda(path, batch)?, None)) } else { Ok((Backbone::cpu(path, batch)?, None)) }
    }

    fn cpu(path: &Path, batch_size: usize) -> Result<Backbone> {
        let model = Model::load_with(path, &ModelOptions { batch_size })?;
        let sample_shape = model.sample_shape().to_vec();
        Ok(Backbone { inner: Inner::Cpu(model), batch_size, sample_shape, device: "cpu".into() })
    }

    #[cfg(feature = "cuda")]
    fn cuda(path: &Path, batch_size: usize) -> Result<Backbone> {
        let (mut typed, info) = panderm_edge::engine::load_decluttered(path, &ModelOptions { batch_size })?;
        // tract-cuda 0.23.9 has no kernel for tract's fused exact GELU and runs it on the CPU,
        // with a host round trip per block (measured on an H200); it does have `erf`.
        unfuse_gelu(&mut typed).map_err(|e| Error::invalid(path, e.to_string()))?;
        let rt = cuda_runtime()?;
        let runnable = rt
            .prepare(typed)
            .map_err(|e| Error::invalid(path, format!("cannot prepare for CUDA: {}", one_line(&format!("{e:#}")))))?;
        let b = Backbone {
            inner: Inner::Cuda(runnable),
            batch_size,
            sample_shape: info.sample_shape,
            device: "cuda".into(),
        };
        // Never fall back to the CPU silently: name every op the GPU plan leaves on the host.
        let host = host_ops(&b.plan_ops());
        if !host.is_empty() {
            let list: Vec<String> = host.iter().map(|(n, c)| format!("{n} x{c}")).collect();
            log::warn!("tract-cuda runs these ops on the CPU (host round trips): {}", list.join(", "));
        }
        Ok(b)
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda(_path: &Path, _batch_size: usize) -> Result<Backbone> {
        Err(no_cuda_support())
    }

    /// `cpu` or `cuda`.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Images per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Input `(height, width)`.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        match self.sample_shape.as_slice() {
            [3, h, w] => Some((*h, *w)),
            _ => None,
        }
    }

    /// Operation names in the prepared plan with their counts (to see what runs where).
    pub fn plan_ops(&self) -> BTreeMap<String, usize> {
        let mut ops = BTreeMap::new();
        let model: Option<std::sync::Arc<tract_onnx::prelude::TypedModel>> = match &self.inner {
            Inner::Cpu(_) => None,
            #[cfg(feature = "cuda")]
            Inner::Cuda(r) => r.typed_model().cloned(),
        };
        if let Some(m) = model {
            for n in m.nodes() {
                *ops.entry(n.op.name().to_string()).or_insert(0) += 1;
            }
        }
        ops
    }

    /// Runs up to `batch_size` images; returns the first output's row for each image.
    pub fn run(&self, images: &[&ImageTensor]) -> Result<Vec<Vec<f32>>> {
        match &self.inner {
            Inner::Cpu(model) => model
                .run(images)?
                .into_iter()
                .map(|o| {
                    o.into_iter().next().map(|t| t.values).ok_or_else(|| Error::refused("the model has no output"))
                })
                .collect(),
            #[cfg(feature = "cuda")]
            Inner::Cuda(runnable) => {
                use tract_onnx::prelude::*;
                let per: usize = self.sample_shape.iter().product();
                let mut data = vec![0f32; self.batch_size * per];
                for (i, img) in images.iter().enumerate() {
                    data[i * per..(i + 1) * per].copy_from_slice(&img.data);
                }
                let mut shape = vec![self.batch_size];
                shape.extend_from_slice(&self.sample_shape);
                let input = Tensor::from_shape(&shape, &data).map_err(|e| Error::Cuda(e.to_string()))?;
                let out = runnable
                    .run(tvec!(input.into_tvalue()))
                    .map_err(|e| Error::Cuda(format!("CUDA inference failed: {}", one_line(&format!("{e:#}")))))?;
                let view = out[0].to_plain_array_view::<f32>().map_err(|e| Error::Cuda(format!("CUDA output: {e}")))?;
                let values: Vec<f32> = view.iter().copied().collect();
                let row = values.len() / self.batch_size;
                Ok((0..images.len()).map(|i| values[i * row..(i + 1) * row].to_vec()).collect())
            }
        }
    }
}

/// Rewrites tract's fused `GeluExact` nodes into element-wise ops that tract-cuda implements
/// (it has `erf` but no fused exact GELU, so it would run GELU on the CPU with a host round
/// trip per block). The form is `h + h·erf(x/√2)` with `h = x/2` — the same function as
/// `0.5·x·(1 + erf(x/√2))` up to float rounding — chosen because tract's declutter rule,
/// which the CUDA preparation runs again, only re-fuses the `(1 + erf)` form.
/// Returns how many nodes were rewritten.
pub fn unfuse_gelu(model: &mut tract_onnx::prelude::TypedModel) -> tract_onnx::prelude::TractResult<usize> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast;
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::math;
    use tract_onnx::tract_core::ops::nn::GeluExact;
    let ids: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|n| n.op_as::<ElementWiseOp>().is_some_and(|e| e.0.is::<GeluExact>()))
        .map(|n| n.id)
        .collect();
    for &id in &ids {
        let node = model.node(id).clone();
        let name = &node.name;
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, node.inputs[0])?;
        let c = patch.add_const(format!("{name}.inv_sqrt2"), tensor0(std::f32::consts::FRAC_1_SQRT_2))?;
        let half = patch.add_const(format!("{name}.half"), tensor0(0.5f32))?;
        let scaled = wire_with_rank_broadcast(format!("{name}.scale"), &mut patch, math::mul(), &[x, c])?[0];
        let erf = patch.wire_node(format!("{name}.erf"), math::erf(), &[scaled])?[0];
        let h = wire_with_rank_broadcast(format!("{name}.half_x"), &mut patch, math::mul(), &[x, half])?[0];
        let he = wire_with_rank_broadcast(format!("{name}.half_x_erf"), &mut patch, math::mul(), &[h, erf])?[0];
        let out = wire_with_rank_broadcast(format!("{name}.gelu"), &mut patch, math::add(), &[h, he])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), out)?;
        patch.apply(model)?;
    }
    Ok(ids.len())
}

/// Ops of a prepared GPU plan that run on the host (everything but device kernels,
/// transfers, constants and inputs), with their counts.
pub fn host_ops(plan_ops: &BTreeMap<String, usize>) -> Vec<(String, usize)> {
    plan_ops
        .iter()
        .filter(|(name, _)| {
            !(name.starts_with("Cuda")
                || name.starts_with("Gpu")
                || name.starts_with("DeviceSync")
                || *name == "Const"
                || *name == "Source")
        })
        .map(|(n, c)| (n.clone(), *c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::*;

    #[test]
    fn host_ops_are_the_non_device_ops() {
        let ops: BTreeMap<String, usize> = [
            ("Const", 3),
            ("CudaAdd", 2),
            ("GpuMoveAxis", 1),
            ("DeviceSyncToHost", 1),
            ("GeluExact", 12),
            ("Source", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(host_ops(&ops), vec![("GeluExact".to_owned(), 12)]);
    }

    #[test]
    fn unfused_gelu_computes_the_same_function() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
        let path = root.join("models/tiny/panderm_tiny_lp.onnx");
        let (fused, _) = panderm_edge::engine::load_decluttered(&path, &ModelOptions { batch_size: 1 }).unwrap();
        let mut unfused = fused.clone();
        let n = unfuse_gelu(&mut unfused).unwrap();
        assert_eq!(n, 2, "one GELU per block of the 2-block model");
        let gelus = |m: &TypedModel| m.nodes().iter().filter(|n| n.op.name().contains("Gelu")).count();
        assert_eq!(gelus(&unfused), 0);
        // The CUDA preparation declutters again: the rewritten form must survive it.
        let redecluttered = unfused.clone().into_decluttered().unwrap();
        assert_eq!(gelus(&redecluttered), 0, "declutter re-fused the GELU");
        let input: Tensor = tract_ndarray::Array4::<f32>::from_shape_fn((1, 3, 224, 224), |(_, c, y, x)| {
            ((c * 7 + y * 3 + x) % 17) as f32 / 8.0 - 1.0
        })
        .into();
        let run = |m: TypedModel| {
            let out = m.into_runnable().unwrap().run(tvec!(input.clone().into_tvalue())).unwrap();
            out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect::<Vec<f32>>()
        };
        let (a, b) = (run(fused), run(unfused));
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "max abs diff {diff}");
    }
}
