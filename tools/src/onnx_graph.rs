//! A small ONNX graph builder over `tract_onnx::pb` (prost types, no protoc, no Python).
//!
//! Every `op`-style method appends one node and returns the name of its (single) output, so
//! a network reads like straight-line code. Names are made unique with a counter under a
//! caller-chosen prefix (`blocks.3/attn/...`), which keeps exported graphs readable in Netron.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};

/// ONNX IR version written (IR 8 = ONNX 1.13, read by every runtime we target).
pub const IR_VERSION: i64 = 8;
/// Default-domain opset written: 17 brings `LayerNormalization` and keeps `ReduceMean`'s
/// `axes` as an attribute; tract is tested on opsets 9–18.
pub const OPSET: i64 = 17;

/// A node attribute value.
pub enum Attr {
    /// A single int.
    Int(i64),
    /// A single float.
    Float(f32),
    /// A list of ints.
    Ints(Vec<i64>),
}

/// One dimension of a graph input or output.
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size (e.g. the batch `N`).
    Symbolic(&'static str),
}

/// Accumulates nodes and initializers of one graph.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    counter: usize,
    scope: String,
}

fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                Dim::Symbolic(s) => dimension::Value::DimParam((*s).to_owned()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the prefix for the names of nodes and initializers created next.
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_owned();
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        if self.scope.is_empty() {
            format!("{what}_{}", self.counter)
        } else {
            format!("{}/{what}_{}", self.scope, self.counter)
        }
    }

    /// Declares a float32 graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, dims));
        name.to_owned()
    }

    /// Declares a float32 graph output produced by `value`, renaming it via `Identity`.
    pub fn output(&mut self, value: &str, name: &str, dims: &[Dim]) {
        self.nodes.push(pb::NodeProto {
            input: vec![value.to_owned()],
            output: vec![name.to_owned()],
            name: format!("{name}_identity"),
            op_type: "Identity".into(),
            ..Default::default()
        });
        self.outputs.push(value_info(name, dims));
    }

    /// Adds a float32 initializer (constant) and returns its name.
    pub fn const_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            data.len(),
            "initializer {name}: shape does not match data (a bug in the exporter)"
        );
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, dims, DataType::Float, raw)
    }

    /// Adds an int64 initializer (constant) and returns its name.
    pub fn const_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            data.len(),
            "initializer {name}: shape does not match data (a bug in the exporter)"
        );
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, dims, DataType::Int64, raw)
    }

    fn push_initializer(&mut self, name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>) -> String {
        self.initializers.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: dt as i32,
            name: name.to_owned(),
            raw_data: raw,
            ..Default::default()
        });
        name.to_owned()
    }

    /// Adds a scalar float constant with a fresh name.
    pub fn scalar_f32(&mut self, what: &str, v: f32) -> String {
        let name = self.fresh(what);
        self.const_f32(&name, &[], &[v])
    }

    /// Appends a node `op(inputs) -> output` and returns the output name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(op);
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = pb::AttributeProto { name: name.to_owned(), ..Default::default() };
                match a {
                    Attr::Int(i) => {
                        p.i = i;
                        p.r#type = AttributeType::Int as i32;
                    }
                    Attr::Float(f) => {
                        p.f = f;
                        p.r#type = AttributeType::Float as i32;
                    }
                    Attr::Ints(v) => {
                        p.ints = v;
                        p.r#type = AttributeType::Ints as i32;
                    }
                }
                p
            })
            .collect();
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.to_owned(),
            attribute,
            ..Default::default()
        });
        out
    }

    /// `MatMul(a, b)`.
    pub fn matmul(&mut self, a: &str, b: &str) -> String {
        self.op("MatMul", &[a, b], vec![])
    }
    /// `Add(a, b)` (broadcasting).
    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.op("Add", &[a, b], vec![])
    }
    /// `Mul(a, b)` (broadcasting).
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.op("Mul", &[a, b], vec![])
    }
    /// `Transpose(x, perm)`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", &[x], vec![("perm", Attr::Ints(perm.to_vec()))])
    }
    /// `Reshape(x, shape)` with a constant target shape (`0` copies the input dimension).
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let name = self.fresh("shape");
        let s = self.const_i64(&name, &[shape.len()], shape);
        self.op("Reshape", &[x, &s], vec![])
    }
    /// `LayerNormalization(x, scale, bias)` over the last axis.
    pub fn layer_norm(&mut self, x: &str, scale: &str, bias: &str, eps: f32) -> String {
        self.op("LayerNormalization", &[x, scale, bias], vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))])
    }

    /// Finishes the graph into a model with the given metadata.
    pub fn finish(
        self,
        graph_name: &str,
        producer_version: &str,
        doc: &str,
        metadata: &[(String, String)],
    ) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "panderm-tools".into(),
            producer_version: producer_version.to_owned(),
            doc_string: doc.to_owned(),
            graph: Some(pb::GraphProto {
                node: self.nodes,
                name: graph_name.to_owned(),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto { key: k.clone(), value: v.clone() })
                .collect(),
            ..Default::default()
        }
    }
}

/// Serializes a model to bytes (protobuf).
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Parses a model from bytes.
pub fn decode(bytes: &[u8]) -> Result<pb::ModelProto, prost::DecodeError> {
    pb::ModelProto::decode(bytes)
}
