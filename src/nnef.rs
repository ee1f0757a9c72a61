//! tract's NNEF format for backbones: a tar of the decluttered graph (`graph.nnef`) and its
//! weights (`.dat` files), written once on the workstation and loaded on the device without
//! parsing protobuf or re-running ONNX analysis.
//!
//! tract 0.23.9 has no NNEF serializer for three ops a PanDerm graph holds after declutter;
//! this module registers them (extension `panderm`, on both the writer and the reader):
//!
//! * `GeluExact` — declutter fuses the exported `0.5·x·(1+erf(x/√2))` into it (parameterless);
//! * `QuantizeLinearU8` / `QuantizeLinearI8` — the activation quantizers of int8 backbones
//!   (`panderm-tools quantize`), with their scale and zero point as attributes.
//!
//! A file is recognised by its content (a POSIX tar), not by its name; see [`is_nnef`]. Archives
//! are written uncompressed: gzip saves ~7% on weights and costs about a second of load time, so
//! the runtime is built without tract's gzip support.

use std::path::Path;

use tract_nnef::internal::*;
use tract_onnx::WithOnnx;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::GeluExact;
use tract_onnx::tract_core::ops::quant::{QuantizeLinearI8, QuantizeLinearU8};

use crate::error::{Error, ErrorKind, Result};

/// Model properties that carry the ONNX file's `metadata_props` (PanDerm's metadata).
pub const METADATA_PREFIX: &str = "onnx.metadata_props.";

/// The NNEF extension name this module's ops live under.
pub const EXTENSION: &str = "panderm";

/// Whether `bytes` (the start of a file) look like an NNEF archive: a POSIX tar (`ustar` magic
/// at offset 257). An ONNX protobuf never starts that way.
pub fn is_nnef(bytes: &[u8]) -> bool {
    bytes.len() > 262 && &bytes[257..262] == b"ustar"
}

/// Whether the file at `path` is an NNEF archive, from its first 512 bytes ([`is_nnef`]).
pub fn is_nnef_file(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path).and_then(|f| f.take(512).read_to_end(&mut head)).map_err(|e| Error::io(path, e))?;
    Ok(is_nnef(&head))
}

/// The NNEF framework with tract's core and ONNX extensions and this module's ops.
pub fn framework() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef().with_onnx().with_registry(registry())
}

fn registry() -> Registry {
    let mut r = Registry::new(EXTENSION).with_doc("PanDerm Edge: ops tract 0.23.9 cannot serialize by itself.");
    r.register_unit_element_wise("panderm_gelu_exact", &GeluExact {});
    r.register_element_wise(
        "panderm_quantize_linear_u8",
        TypeId::of::<QuantizeLinearU8>(),
        Box::new(dump_quantize_u8),
        quantize_parameters(),
        load_quantize_u8,
    );
    r.register_element_wise(
        "panderm_quantize_linear_i8",
        TypeId::of::<QuantizeLinearI8>(),
        Box::new(dump_quantize_i8),
        quantize_parameters(),
        load_quantize_i8,
    );
    r
}

fn quantize_parameters() -> Vec<Parameter> {
    vec![
        TypeName::Scalar.tensor().named("input"),
        TypeName::Scalar.named("scale"),
        TypeName::Integer.named("zero_point"),
    ]
}

fn element_wise<T: ElementWiseMiniOp>(node: &TypedNode) -> TractResult<&T> {
    node.op_as::<ElementWiseOp>()
        .and_then(|op| op.0.downcast_ref::<T>())
        .ok_or_else(|| format_err!("node {} is not the expected element-wise op", node.name))
}

fn dump_quantize_u8(ast: &mut IntoAst, node: &TypedNode) -> TractResult<Option<Arc<RValue>>> {
    let op = element_wise::<QuantizeLinearU8>(node)?;
    let input = ast.mapping[&node.inputs[0]].clone();
    let attrs = [("scale", numeric(op.scale)), ("zero_point", numeric(op.zero_point))];
    Ok(Some(invocation("panderm_quantize_linear_u8", &[input], &attrs)))
}

fn dump_quantize_i8(ast: &mut IntoAst, node: &TypedNode) -> TractResult<Option<Arc<RValue>>> {
    let op = element_wise::<QuantizeLinearI8>(node)?;
    let input = ast.mapping[&node.inputs[0]].clone();
    let attrs = [("scale", numeric(op.scale)), ("zero_point", numeric(op.zero_point))];
    Ok(Some(invocation("panderm_quantize_linear_i8", &[input], &attrs)))
}

fn quantize_args(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<(OutletId, f32, i64)> {
    let input = invocation.named_arg_as(builder, "input")?;
    let scale: f32 = invocation.named_arg_as(builder, "scale")?;
    let zero_point: i64 = invocation.named_arg_as(builder, "zero_point")?;
    Ok((input, scale, zero_point))
}

fn load_quantize_u8(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let (input, scale, zp) = quantize_args(builder, invocation)?;
    let zero_point = u8::try_from(zp).map_err(|_| format_err!("u8 zero point {zp} out of range"))?;
    builder.wire(ElementWiseOp(Box::new(QuantizeLinearU8 { scale, zero_point }), None), &[input])
}

fn load_quantize_i8(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let (input, scale, zp) = quantize_args(builder, invocation)?;
    let zero_point = i8::try_from(zp).map_err(|_| format_err!("i8 zero point {zp} out of range"))?;
    builder.wire(ElementWiseOp(Box::new(QuantizeLinearI8 { scale, zero_point }), None), &[input])
}

/// Percent-encodes the characters tract's NNEF string literals cannot hold (both quotes, the
/// backslash, control characters) and `%` itself. [`decode_metadata`] inverts it.
pub fn encode_metadata(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '"' | '\'' | '\\') || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Inverts [`encode_metadata`]; a malformed escape is kept as written.
pub fn decode_metadata(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes a decluttered model as an NNEF tar. The file appears complete or not at all (temporary + rename).
pub fn write(model: &TypedModel, path: &Path) -> Result<()> {
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut out = std::io::BufWriter::new(file);
    // Only the string metadata travels (tract 0.23.9 writes other property types, e.g. the
    // ONNX IR version as an i64 cast, in a form its own reader refuses). Weights are shared.
    let mut model = model.clone();
    model.properties.retain(|k, v| k.starts_with(METADATA_PREFIX) && v.datum_type() == String::datum_type());
    for v in model.properties.values_mut() {
        if let Ok(text) = v.try_as_plain_ram().and_then(|t| t.to_scalar::<String>().cloned()) {
            *v = tensor0(encode_metadata(&text)).into_arc_tensor();
        }
    }
    let written = framework().write_to_tar(&model, &mut out).map(|_| ());
    let flushed =
        written.map_err(|e| Error::new(ErrorKind::ModelLoad, format!("{}: cannot write NNEF: {e:#}", path.display())));
    let done = flushed.and_then(|()| {
        use std::io::Write;
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        out.get_ref().sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Reads an NNEF archive into a typed model.
pub fn read(path: &Path) -> Result<TypedModel> {
    framework().model_for_path(path).map_err(|e| {
        Error::new(
            ErrorKind::ModelLoad,
            format!("{}: not a valid NNEF archive (truncated or corrupt?): {e:#}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_escaping_round_trips() {
        for v in [
            "",
            "plain",
            "state dict under 'model'",
            "say \"hi\"",
            "100% \\ done",
            "tab\tnew\nline",
            "é ü 皮膚",
            "%zz %4",
        ] {
            let e = encode_metadata(v);
            assert!(!e.contains(['"', '\'', '\\', '\n']), "{e}");
            assert_eq!(decode_metadata(&e), v);
        }
    }

    #[test]
    fn only_tars_are_nnef() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(is_nnef(&tar));
        assert!(!is_nnef(&tar[..200]));
        assert!(!is_nnef(b"\x08\x08\x12\x0cpanderm-tools"));
        assert!(!is_nnef(&[0x1f, 0x8b, 8, 0]));
    }
}
