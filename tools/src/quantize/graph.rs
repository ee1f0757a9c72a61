//! ONNX graph surgery on `tract_onnx::pb` (prost) types: find the weight MatMuls of a PanDerm
//! export, quantize their weights, and rewrite each into the integer form of the chosen
//! [`Scheme`]. Everything else (patch-embedding Conv, LayerNorm, attention act×act MatMuls,
//! Softmax, GELU, bias Adds, layer scales) is copied unchanged.
//!
//! Static (`int8-static-u8`), per unique activation tensor `x` and per weight MatMul `x @ W`:
//!
//! ```text
//! xq  = QuantizeLinear(x, s_x, 128u8)                  once per x (q, k and v share it)
//! acc = MatMulInteger(xq, W_int8, a_zero_point=128u8)  int32
//! y   = Mul(Cast<float>(acc), s_x·s_w)                 [N] constant; y keeps the MatMul's name,
//!                                                      so the existing bias Add consumes it
//! ```
//!
//! Dynamic (`int8-dynamic-u8`, ONNX Runtime's `quantize_dynamic` form):
//!
//! ```text
//! xq, sx, zx = DynamicQuantizeLinear(x)                once per x
//! y = Mul(Cast<float>(MatMulInteger(xq, W_int8, zx)), Mul(sx, s_w))
//! ```

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

/// Why a graph cannot be quantized or rewritten (one line naming the tensor; the caller adds
/// the file).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A weight MatMul names an initializer the graph does not have.
    #[error("initializer `{0}` is missing")]
    MissingInitializer(String),
    /// A weight has the wrong number of values for its MatMul.
    #[error("initializer `{name}` has {values} values for shape [{k}, {n}]")]
    WeightSize {
        /// The initializer.
        name: String,
        /// Values found.
        values: usize,
        /// Rows expected.
        k: usize,
        /// Columns expected.
        n: usize,
    },
    /// A float32 initializer's raw bytes are not whole floats.
    #[error("initializer `{name}` has {len} raw bytes, not a multiple of 4")]
    RawBytes {
        /// The initializer.
        name: String,
        /// Its raw byte count.
        len: usize,
    },
    /// The initializer's data lives in an external file.
    #[error("initializer `{0}` is stored in an external file, which quantize does not read")]
    External(String),
    /// A static activation has no calibrated scale.
    #[error("no calibration scale for activation `{0}`")]
    NoScale(String),
}

/// ONNX op types that only appear in graphs that are already quantized.
pub const QUANTIZED_OPS: [&str; 8] = [
    "MatMulInteger",
    "ConvInteger",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearMatMul",
    "QLinearConv",
    "MatMulIntegerToFloat",
];

/// The zero point of the static scheme's uint8 activations.
pub const ACTIVATION_ZERO_POINT: u8 = 128;

/// How the activations of the weight MatMuls are quantized (`quantize --scheme`; `help` is the
/// CLI's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
pub enum Scheme {
    /// Static per-tensor scale from calibration, uint8 with zero point 128
    /// (`QuantizeLinear` → `MatMulInteger` → `Cast` → `Mul`).
    #[serde(rename = "static-u8")]
    #[value(
        name = "static-u8",
        help = "int8 weights + static uint8 activations (zero point 128, scales from calibration): fastest in tract"
    )]
    StaticU8,
    /// ONNX Runtime's dynamic form: the scale and zero point are computed per input by
    /// `DynamicQuantizeLinear`.
    #[serde(rename = "dynamic")]
    #[value(help = "ONNX Runtime's dynamic form (DynamicQuantizeLinear per input), for comparison")]
    Dynamic,
}

impl Scheme {
    /// The value recorded as `panderm.quantization`.
    pub fn metadata_name(self) -> &'static str {
        match self {
            Scheme::StaticU8 => "int8-static-u8",
            Scheme::Dynamic => "int8-dynamic-u8",
        }
    }
}

/// One `MatMul(x, W)` whose `W` is a constant float matrix.
#[derive(Debug, Clone)]
pub struct WeightMatMul {
    /// Index of the node in the graph's node list.
    pub node_index: usize,
    /// Node name.
    pub node_name: String,
    /// Name of the activation input `x`.
    pub activation: String,
    /// Name of the weight initializer `W` (`[K, N]`).
    pub weight: String,
    /// Name of the node's output.
    pub output: String,
    /// Rows of `W` (input features).
    pub k: usize,
    /// Columns of `W` (output channels).
    pub n: usize,
}

/// A weight quantized to int8, symmetric, per output channel (zero point 0).
#[derive(Debug, Clone)]
pub struct QuantWeight {
    /// `[K, N]` int8 values, row-major, stored as their two's-complement bytes.
    pub data: Vec<u8>,
    /// Per output channel `s_w[n] = max_k |W[k, n]| / 127` (1 for an all-zero column).
    pub scales: Vec<f32>,
}

/// A model split into its parts, so that variants can be assembled without copying the
/// large fp32 weights that they replace.
#[derive(Default)]
pub struct SplitModel {
    /// The model with `graph: None`.
    pub header: pb::ModelProto,
    /// The graph with no nodes and no initializers.
    pub graph_header: pb::GraphProto,
    /// The graph's nodes.
    pub nodes: Vec<pb::NodeProto>,
    /// The graph's initializers.
    pub initializers: Vec<pb::TensorProto>,
}

impl SplitModel {
    /// Splits `model` (moves, no copies).
    pub fn split(mut model: pb::ModelProto) -> SplitModel {
        let mut graph_header = model.graph.take().unwrap_or_default();
        let nodes = std::mem::take(&mut graph_header.node);
        let initializers = std::mem::take(&mut graph_header.initializer);
        SplitModel { header: model, graph_header, nodes, initializers }
    }

    /// Reassembles the model (moves, no copies); [`SplitModel::split`] undoes it.
    pub fn assemble(self) -> pb::ModelProto {
        let SplitModel { mut header, mut graph_header, nodes, initializers } = self;
        graph_header.node = nodes;
        graph_header.initializer = initializers;
        header.graph = Some(graph_header);
        header
    }

    /// The `metadata_props` as a map.
    pub fn metadata(&self) -> HashMap<String, String> {
        self.header.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
    }

    fn initializer(&self, name: &str) -> Option<&pb::TensorProto> {
        self.initializers.iter().find(|t| t.name == name)
    }

    /// Every `MatMul` whose second input is a 2-D float initializer, in node order.
    pub fn weight_matmuls(&self) -> Vec<WeightMatMul> {
        let by_name: HashMap<&str, &pb::TensorProto> = self.initializers.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.op_type != "MatMul" || !node.domain.is_empty() || node.input.len() != 2 || node.output.len() != 1 {
                continue;
            }
            let Some(w) = by_name.get(node.input[1].as_str()) else { continue };
            if w.data_type != DataType::Float as i32 || w.dims.len() != 2 || w.dims.iter().any(|&d| d <= 0) {
                continue;
            }
            out.push(WeightMatMul {
                node_index: i,
                node_name: node.name.clone(),
                activation: node.input[0].clone(),
                weight: node.input[1].clone(),
                output: node.output[0].clone(),
                k: w.dims[0] as usize,
                n: w.dims[1] as usize,
            });
        }
        out
    }

    /// What marks the graph as already quantized, e.g. `12 MatMulInteger nodes, 8
    /// QuantizeLinear nodes, 12 int8 initializers`; empty for a float graph.
    pub fn quantized_parts(&self) -> String {
        let mut parts = Vec::new();
        for op in QUANTIZED_OPS {
            let n = self.nodes.iter().filter(|n| n.op_type == op).count();
            if n > 0 {
                parts.push(format!("{n} {op} node{}", if n == 1 { "" } else { "s" }));
            }
        }
        for (dt, name) in [(DataType::Int8, "int8"), (DataType::Uint8, "uint8")] {
            let n = self.initializers.iter().filter(|t| t.data_type == dt as i32).count();
            if n > 0 {
                parts.push(format!("{n} {name} initializer{}", if n == 1 { "" } else { "s" }));
            }
        }
        parts.join(", ")
    }

    /// Quantizes the weight of `mm` (int8, symmetric, per output channel).
    pub fn quantize_weight(&self, mm: &WeightMatMul) -> Result<QuantWeight, GraphError> {
        let t = self.initializer(&mm.weight).ok_or_else(|| GraphError::MissingInitializer(mm.weight.clone()))?;
        let w = float_values(t)?;
        if w.len() != mm.k * mm.n {
            return Err(GraphError::WeightSize { name: mm.weight.clone(), values: w.len(), k: mm.k, n: mm.n });
        }
        Ok(quantize_per_column(&w, mm.k, mm.n))
    }
}

/// Reads a float32 initializer's values (`raw_data` or `float_data`).
pub fn float_values(t: &pb::TensorProto) -> Result<Vec<f32>, GraphError> {
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(GraphError::RawBytes { name: t.name.clone(), len: t.raw_data.len() });
        }
        Ok(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    } else if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        Err(GraphError::External(t.name.clone()))
    } else {
        Ok(t.float_data.clone())
    }
}

/// Symmetric per-column int8 quantization of a row-major `[k, n]` matrix:
/// `s[c] = max_r |W[r, c]| / 127`, `q = round_half_even(W / s)` clamped to `[-127, 127]`.
pub fn quantize_per_column(w: &[f32], k: usize, n: usize) -> QuantWeight {
    let mut max = vec![0f32; n];
    for row in w.chunks_exact(n) {
        for (m, v) in max.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max.iter().map(|&m| if m > 0.0 && m.is_finite() { m / 127.0 } else { 1.0 }).collect();
    let mut data = Vec::with_capacity(k * n);
    for row in w.chunks_exact(n) {
        for (v, s) in row.iter().zip(&scales) {
            data.push(((v / s).round_ties_even().clamp(-127.0, 127.0) as i8) as u8);
        }
    }
    QuantWeight { data, scales }
}

/// How the rewrite quantizes activations.
pub enum Activations<'a> {
    /// Static scheme: the per-tensor scale `s_x` of every activation tensor, by name.
    Static(&'a HashMap<String, f32>),
    /// Dynamic scheme.
    Dynamic,
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.to_owned(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

fn node(
    op: &str,
    name: String,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name,
        op_type: op.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

fn tensor(name: String, dims: &[usize], dt: DataType, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name,
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Builds the quantized model: every MatMul of `mms` (with its weight in `weights`, same
/// order) rewritten per `acts`, the replaced fp32 weights dropped, `metadata` appended to the
/// existing `metadata_props`. `src` is not modified; only its small parts are copied.
pub fn rewrite(
    src: &SplitModel,
    mms: &[WeightMatMul],
    weights: &[QuantWeight],
    acts: &Activations<'_>,
    metadata: &[(String, String)],
    doc_suffix: &str,
) -> Result<pb::ModelProto, GraphError> {
    let by_node: HashMap<usize, usize> = mms.iter().enumerate().map(|(i, m)| (m.node_index, i)).collect();
    // A weight also read by another node must stay in the graph.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &src.nodes {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    let replaced: HashSet<&str> =
        mms.iter().filter(|m| uses.get(m.weight.as_str()) == Some(&1)).map(|m| m.weight.as_str()).collect();

    let mut nodes = Vec::with_capacity(src.nodes.len() + 4 * mms.len());
    let mut inits: Vec<pb::TensorProto> =
        src.initializers.iter().filter(|t| !replaced.contains(t.name.as_str())).cloned().collect();
    let zp = "quant/zero_point_u8_128".to_owned();
    if matches!(acts, Activations::Static(_)) {
        inits.push(tensor(zp.clone(), &[], DataType::Uint8, vec![ACTIVATION_ZERO_POINT]));
    }
    // Quantized activation tensor (and, for dynamic, its scale and zero point) per `x`.
    let mut quantized: HashMap<String, (String, String, String)> = HashMap::new();
    for (i, n) in src.nodes.iter().enumerate() {
        let Some(&j) = by_node.get(&i) else {
            nodes.push(n.clone());
            continue;
        };
        let (mm, qw) = (&mms[j], &weights[j]);
        let base = if mm.node_name.is_empty() { mm.output.clone() } else { mm.node_name.clone() };
        if !quantized.contains_key(&mm.activation) {
            let q = format!("{}/quant/x_u8", mm.activation);
            match acts {
                Activations::Static(scales) => {
                    let s = *scales.get(&mm.activation).ok_or_else(|| GraphError::NoScale(mm.activation.clone()))?;
                    let s_name = format!("{}/quant/s_x", mm.activation);
                    inits.push(tensor(s_name.clone(), &[], DataType::Float, f32_bytes(&[s])));
                    nodes.push(node(
                        "QuantizeLinear",
                        format!("{}/quant/QuantizeLinear", mm.activation),
                        &[&mm.activation, &s_name, &zp],
                        &[&q],
                        vec![],
                    ));
                    quantized.insert(mm.activation.clone(), (q, s_name, zp.clone()));
                }
                Activations::Dynamic => {
                    let (s, z) = (format!("{}/quant/s_x", mm.activation), format!("{}/quant/zp_x", mm.activation));
                    nodes.push(node(
                        "DynamicQuantizeLinear",
                        format!("{}/quant/DynamicQuantizeLinear", mm.activation),
                        &[&mm.activation],
                        &[&q, &s, &z],
                        vec![],
                    ));
                    quantized.insert(mm.activation.clone(), (q, s, z));
                }
            }
        }
        let (xq, s_x, z_x) = quantized[&mm.activation].clone();
        let wq = format!("{}.int8", mm.weight);
        inits.push(tensor(wq.clone(), &[mm.k, mm.n], DataType::Int8, qw.data.clone()));
        let acc = format!("{base}/quant/acc_i32");
        nodes.push(node("MatMulInteger", format!("{base}/quant/MatMulInteger"), &[&xq, &wq, &z_x], &[&acc], vec![]));
        let accf = format!("{base}/quant/acc_f32");
        nodes.push(node("Cast", format!("{base}/quant/Cast"), &[&acc], &[&accf], vec![attr_int("to", 1)]));
        let scale = match acts {
            Activations::Static(scales) => {
                let s = scales[&mm.activation];
                let combined: Vec<f32> = qw.scales.iter().map(|w| s * w).collect();
                let name = format!("{base}/quant/s_x_s_w");
                inits.push(tensor(name.clone(), &[mm.n], DataType::Float, f32_bytes(&combined)));
                name
            }
            Activations::Dynamic => {
                let sw = format!("{base}/quant/s_w");
                inits.push(tensor(sw.clone(), &[mm.n], DataType::Float, f32_bytes(&qw.scales)));
                let name = format!("{base}/quant/s_x_s_w");
                nodes.push(node("Mul", format!("{base}/quant/ScaleMul"), &[&s_x, &sw], &[&name], vec![]));
                name
            }
        };
        nodes.push(node("Mul", format!("{base}/quant/Rescale"), &[&accf, &scale], &[&mm.output], vec![]));
    }

    let mut header = src.header.clone();
    header.metadata_props.retain(|e| !metadata.iter().any(|(k, _)| *k == e.key));
    header
        .metadata_props
        .extend(metadata.iter().map(|(k, v)| pb::StringStringEntryProto { key: k.clone(), value: v.clone() }));
    header.doc_string.push_str(doc_suffix);
    let mut graph = src.graph_header.clone();
    graph.input.retain(|i| !replaced.contains(i.name.as_str()));
    graph.node = nodes;
    graph.initializer = inits;
    header.graph = Some(graph);
    Ok(header)
}

/// Adds graph outputs for `names` (float tensors of unspecified shape), after the existing ones.
pub fn add_probe_outputs(graph: &mut pb::GraphProto, names: &[String]) {
    for n in names {
        graph.output.push(pb::ValueInfoProto {
            name: n.clone(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_column_symmetric() {
        // [k=2, n=3]
        let w = [0.25, -2.0, 0.0, -1.0, 0.5, 0.0];
        let q = quantize_per_column(&w, 2, 3);
        assert_eq!(q.scales, vec![1.0 / 127.0, 2.0 / 127.0, 1.0]);
        let v: Vec<i8> = q.data.iter().map(|&b| b as i8).collect();
        assert_eq!(v, vec![32, -127, 0, -127, 32, 0]); // 31.75 -> 32
    }
}
