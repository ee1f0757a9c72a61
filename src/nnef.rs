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
    // Only the string metadata travels (tract 0.23.9 writes other property types, e.g. the
    // ONNX IR version as an i64 cast, in a form its own reader refuses). Weights are shared.
    let mut model = model.clone();
    model.properties.retain(|k, v| k.starts_with(METADATA_PREFIX) && v.datum_type() == String::datum_type());
    for v in model.properties.values_mut() {
        if let Ok(text) = v.try_as_plain_ram().and_then(|t| t.to_scalar::<String>().cloned()) {
            *v = tensor0(encode_metadata(&text)).into_arc_tensor();
        }
    }
    crate::fsutil::write_atomically_with(path, &path.with_extension("partial"), |out| {
        framework()
            .write_to_tar(&model, out)
            .map(|_| ())
            .map_err(|e| Error::new(ErrorKind::ModelLoad, format!("{}: cannot write NNEF: {e:#}", path.display())))
    })
}

/// Reads an NNEF archive held in memory into a typed model. Call [`check_archive`] first: tract's
/// reader trusts the archive's layout (a nested `dir/graph.nnef` makes it panic).
pub fn read_bytes(bytes: &[u8]) -> TractResult<TypedModel> {
    let nnef = framework();
    let proto = nnef.proto_model_for_read(&mut &bytes[..])?;
    nnef.model_for_proto_model(&proto)
}

/// Largest `graph.nnef` / `graph.quant` text accepted (a PanDerm Large graph is ~200 KB).
pub const MAX_GRAPH_TEXT: u64 = 16 << 20;

/// Most entries an archive may hold (PanDerm Large: ~600 weight files).
pub const MAX_ENTRIES: usize = 100_000;

/// Checks an NNEF archive's layout before tract parses it, so that tract only ever sees the
/// shape of archive [`write`] produces: a plain tar whose entries are directories or regular
/// files with UTF-8, relative names of ordinary components (no `..`, no absolute paths, no
/// hidden names, which tract would silently skip); exactly one `graph.nnef`, at the top level;
/// at most one top-level `graph.quant`; every other file a `.dat` tensor; no nested archives
/// (tract would load a `dir/graph.nnef` or a `*.nnef.tar` as a sub-model); text files within
/// [`MAX_GRAPH_TEXT`]. Returns one line saying what is wrong.
pub fn check_archive(bytes: &[u8]) -> std::result::Result<(), String> {
    if !is_nnef(bytes) {
        return Err("not a tar archive".into());
    }
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().map_err(|e| format!("unreadable tar: {e}"))?;
    let (mut graphs, mut quants, mut count) = (0usize, 0usize, 0usize);
    for entry in entries {
        let entry = entry.map_err(|e| format!("unreadable tar entry: {e}"))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let raw = entry.path_bytes();
        let name = std::str::from_utf8(&raw).map_err(|_| "an entry name is not UTF-8".to_owned())?;
        let name = name.strip_prefix("./").unwrap_or(name);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            check_entry_name(name.trim_end_matches('/'))?;
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(format!("entry `{name}` is a {kind:?}, not a regular file"));
        }
        check_entry_name(name)?;
        let size = entry.header().size().map_err(|e| format!("entry `{name}`: bad size: {e}"))?;
        let depth = name.split('/').count();
        match name.rsplit('/').next().unwrap_or(name) {
            "graph.nnef" if depth == 1 => graphs += 1,
            "graph.quant" if depth == 1 => quants += 1,
            "graph.nnef" | "graph.quant" => return Err(format!("nested graph `{name}` (sub-models are not accepted)")),
            f if f.ends_with(".dat") => continue,
            _ => return Err(format!("unexpected entry `{name}` (only graph.nnef, graph.quant and .dat tensors)")),
        }
        if size > MAX_GRAPH_TEXT {
            return Err(format!("`{name}` has {size} bytes, more than {MAX_GRAPH_TEXT}"));
        }
    }
    match (graphs, quants) {
        (1, 0 | 1) => Ok(()),
        (0, _) => Err("no graph.nnef".into()),
        (_, q) if q > 1 => Err("graph.quant appears more than once".into()),
        _ => Err("graph.nnef appears more than once".into()),
    }
}

fn check_entry_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.starts_with('/') {
        return Err(format!("entry `{name}` is not a relative path"));
    }
    for part in name.split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains('\\') || part.chars().any(char::is_control) {
            return Err(format!("entry `{name}` has a component `{part}` that is not a plain name"));
        }
    }
    Ok(())
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

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name to build hostile archives.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn archive_layout_table() {
        let g: &[u8] = b"version 1.0;";
        // (entries, Ok or the error's fragment)
        type Case<'a> = (Vec<(&'a str, &'a [u8])>, std::result::Result<(), &'a str>);
        let cases: Vec<Case> = vec![
            (vec![("graph.nnef", g), ("w/a.dat", b"x")], Ok(())),
            (vec![("graph.nnef", g), ("graph.quant", b"")], Ok(())),
            (vec![("graph.nnef", g), ("a/graph.nnef", g)], Err("nested graph")),
            (vec![("a/graph.nnef", g)], Err("nested graph")),
            (vec![("w/a.dat", b"x")], Err("no graph.nnef")),
            (vec![("graph.nnef", g), ("graph.nnef", g)], Err("more than once")),
            (vec![("graph.nnef", g), ("../x.dat", b"x")], Err("not a plain name")),
            (vec![("graph.nnef", g), ("/abs.dat", b"x")], Err("not a relative path")),
            (vec![("graph.nnef", g), (".hidden.dat", b"x")], Err("not a plain name")),
            (vec![("graph.nnef", g), ("sub.nnef.tar", b"x")], Err("unexpected entry")),
        ];
        for (i, (entries, want)) in cases.into_iter().enumerate() {
            let got = check_archive(&tar_of(&entries));
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(frag)) => assert!(e.contains(frag), "case {i}: {e}"),
                (g, w) => panic!("case {i}: got {g:?}, want {w:?}"),
            }
        }
        assert!(check_archive(b"not a tar").is_err());
    }

    #[test]
    fn a_nested_graph_is_refused_before_tract_sees_it() {
        // tract 0.23.9 panics (an unwrap in its sub-model loader) on this archive.
        let bytes = tar_of(&[("a/graph.nnef", b"this is not nnef")]);
        assert!(check_archive(&bytes).unwrap_err().contains("nested graph"));
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
