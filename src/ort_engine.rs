//! ONNX Runtime as an engine (cargo feature `ort`): the `ort` crate with `load-dynamic`, so
//! nothing is downloaded or linked at build time and `libonnxruntime.so` (1.17 or newer) is
//! `dlopen`ed from the path the caller gives. One library per process (ONNX Runtime allows one
//! environment); a second, different path is refused.
//!
//! Execution providers are registered one by one in the caller's order, each checked against the
//! loaded library first, so a missing one is one clear line. `cpu` in the list allows the CPU
//! fallback; without it ONNX Runtime's CPU fallback is disabled. docs/dev/ort-backend-plan.md has
//! the API details this follows (checked against ONNX Runtime 1.32.0).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::logging::LogLevel;
use ort::session::Session;
use ort::session::builder::SessionBuilder;
use ort::value::TensorRef;

use crate::backend::{EngineInfo, InferenceModel, Provider};
use crate::engine::{BatchOutput, ModelOptions};
use crate::error::{Error, ErrorKind, Result};

/// The process's ONNX Runtime: the library path, its environment, its version.
static RUNTIME: Mutex<Option<(PathBuf, Environment, String)>> = Mutex::new(None);

fn load_err(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::ModelLoad, what.to_string())
}

/// `OrtGetApiBase()->GetVersionString()` of the library, read before `ort` loads it (so a file
/// that is not ONNX Runtime is refused by us, with the reason, rather than by a panic in `ort`).
fn library_version(lib: &Path) -> Result<String> {
    // SAFETY: loading a shared library runs its initializers: the caller named this file as
    // ONNX Runtime. The symbol's type is ONNX Runtime's C API (`OrtGetApiBase`).
    unsafe {
        let l = libloading::Library::new(lib).map_err(|e| {
            let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string());
            load_err(format!("ONNX Runtime library {}: cannot load it ({why})", lib.display()))
        })?;
        let get: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = l
            .get(b"OrtGetApiBase")
            .map_err(|_| load_err(format!("{}: not an ONNX Runtime library (no OrtGetApiBase)", lib.display())))?;
        let base = get();
        if base.is_null() {
            return Err(load_err(format!("{}: OrtGetApiBase returned nothing", lib.display())));
        }
        Ok(CStr::from_ptr(((*base).GetVersionString)()).to_string_lossy().into_owned())
    }
}

/// The environment of the library at `lib`, loading it on first use.
fn runtime(lib: &Path) -> Result<(Environment, String)> {
    let lib = lib.canonicalize().map_err(|e| load_err(format!("ONNX Runtime library {}: {e}", lib.display())))?;
    let mut g = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, env, v)) = &*g {
        if *p != lib {
            return Err(load_err(format!(
                "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
                p.display(),
                lib.display()
            )));
        }
        return Ok((env.clone(), v.clone()));
    }
    let version = library_version(&lib)?;
    let env = ort::init_from(&lib)
        .map_err(|e| load_err(format!("ONNX Runtime library {}: {e}", lib.display())))?
        .with_name("panderm")
        .build()
        .map_err(|e| load_err(format!("ONNX Runtime {version}: {e}")))?;
    *g = Some((lib, env.clone(), version.clone()));
    Ok((env, version))
}

fn available(p: Provider) -> ort::Result<bool> {
    match p {
        Provider::Cpu => Ok(true),
        Provider::Vsinpu => <ep::VSINPU as ExecutionProvider>::is_available(),
        Provider::Rknpu => <ep::RKNPU as ExecutionProvider>::is_available(),
        Provider::Qnn => <ep::QNN as ExecutionProvider>::is_available(),
        Provider::Nnapi => <ep::NNAPI as ExecutionProvider>::is_available(),
        Provider::Acl => <ep::ACL as ExecutionProvider>::is_available(),
        Provider::Xnnpack => <ep::XNNPACK as ExecutionProvider>::is_available(),
    }
}

fn register(b: &mut SessionBuilder, p: Provider) -> ort::Result<()> {
    match p {
        // Always present; registering ep::CPU would change its memory arena setting.
        Provider::Cpu => Ok(()),
        Provider::Vsinpu => ep::VSINPU.register(b),
        Provider::Rknpu => ep::RKNPU::default().register(b),
        Provider::Qnn => ep::QNN::default().register(b),
        Provider::Nnapi => ep::NNAPI::default().register(b),
        Provider::Acl => ep::ACL::default().register(b),
        Provider::Xnnpack => ep::XNNPACK::default().register(b),
    }
}

/// A model loaded into an ONNX Runtime session.
pub struct OrtModel {
    path: PathBuf,
    session: Mutex<Session>,
    input_name: String,
    sample_shape: Vec<usize>,
    batch_size: usize,
    output_names: Vec<String>,
    metadata: BTreeMap<String, String>,
    info: EngineInfo,
}

impl OrtModel {
    /// Loads `bytes` (an ONNX file, named `path` in messages) into a session of the library at
    /// `library` with `providers` in order and `threads` intra-op threads.
    pub fn load_bytes(
        bytes: &[u8],
        path: &Path,
        options: &ModelOptions,
        library: &Path,
        providers: &[Provider],
        threads: usize,
    ) -> Result<OrtModel> {
        let (env, version) = runtime(library)?;
        let at =
            |what: &'static str| move |e: ort::Error<SessionBuilder>| load_err(format!("ONNX Runtime {what}: {e}"));
        let placement = Arc::new(Mutex::new(Vec::new()));
        let sink = placement.clone();
        let mut b = Session::builder(&env)
            .map_err(|e| load_err(format!("ONNX Runtime session: {e}")))?
            .with_intra_threads(threads.max(1))
            .map_err(at("threads"))?
            .with_intra_op_spinning(false)
            .map_err(at("spinning"))?
            .with_dimension_override("N", options.batch_size as i64)
            .map_err(at("batch size"))?
            .with_log_level(LogLevel::Verbose)
            .map_err(at("log level"))?
            .with_logger(Arc::new(move |_level, _category, _id, _location, msg: &str| {
                if msg.contains("placed on [") {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(msg.trim().to_owned());
                }
            }))
            .map_err(at("logger"))?;
        if !providers.contains(&Provider::Cpu) {
            b = b.with_disable_cpu_fallback().map_err(at("CPU fallback"))?;
        }
        for &p in providers {
            let present = available(p).map_err(|e| load_err(format!("ONNX Runtime providers: {e}")))?;
            if !present {
                let have: Vec<&str> = <Provider as clap::ValueEnum>::value_variants()
                    .iter()
                    .filter(|&&q| available(q).unwrap_or(false))
                    .map(|q| q.name())
                    .collect();
                return Err(load_err(format!(
                    "execution provider `{}` is not in {} (ONNX Runtime {version}; it has: {})",
                    p.name(),
                    library.display(),
                    have.join(", ")
                )));
            }
            register(&mut b, p).map_err(|e| load_err(format!("execution provider `{}`: {e}", p.name())))?;
        }
        let session = b
            .commit_from_memory(bytes)
            .map_err(|e| load_err(format!("{}: ONNX Runtime cannot load it: {e}", path.display())))?;
        let [input] = session.inputs() else {
            return Err(load_err(format!(
                "{}: the model has {} inputs, expected 1",
                path.display(),
                session.inputs().len()
            )));
        };
        let shape = input
            .dtype()
            .tensor_shape()
            .ok_or_else(|| load_err(format!("{}: its input is not a tensor", path.display())))?;
        let sample_shape =
            shape.iter().skip(1).map(|&d| usize::try_from(d)).collect::<std::result::Result<Vec<_>, _>>().map_err(
                |_| load_err(format!("{}: input dimensions {:?} are not fixed", path.display(), &shape[..])),
            )?;
        let input_name = input.name().to_owned();
        let output_names: Vec<String> = session.outputs().iter().map(|o| o.name().to_owned()).collect();
        let metadata = match session.metadata() {
            Ok(meta) => meta
                .custom_keys()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| meta.custom(&k).map(|v| (k, v)))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let placement = placement.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let info = EngineInfo {
            engine: "onnxruntime",
            version,
            library: Some(library.to_owned()),
            providers: providers.iter().map(|p| p.name().to_owned()).collect(),
            placement,
            fallback: None,
        };
        Ok(OrtModel {
            path: path.to_owned(),
            session: Mutex::new(session),
            input_name,
            sample_shape,
            batch_size: options.batch_size,
            output_names,
            metadata,
            info,
        })
    }
}

impl InferenceModel for OrtModel {
    fn path(&self) -> &Path {
        &self.path
    }
    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
    fn output_names(&self) -> &[String] {
        &self.output_names
    }
    fn input_name(&self) -> &str {
        &self.input_name
    }
    fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
    fn engine(&self) -> &EngineInfo {
        &self.info
    }

    fn run_raw(&self, data: &[f32]) -> Result<Vec<BatchOutput>> {
        let infer =
            |e: ort::Error| Error::new(ErrorKind::Inference, format!("{}: ONNX Runtime: {e}", self.path.display()));
        let mut shape = vec![self.batch_size];
        shape.extend_from_slice(&self.sample_shape);
        let input = TensorRef::from_array_view((shape.as_slice(), data)).map_err(infer)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![self.input_name.as_str() => input]).map_err(infer)?;
        let mut result = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let (shape, values) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| Error::new(ErrorKind::Inference, format!("output `{name}` is not float32: {e}")))?;
            let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            result.push(BatchOutput::checked(name, shape, values.to_vec(), self.batch_size)?);
        }
        Ok(result)
    }
}
