//! Small quantized graphs, built here, run through the engine's loader (which calls
//! [`super::import`]) and compared with the ONNX operators' definitions computed by hand.

use std::path::Path;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::graph::{int_attr, node};
use super::tensor::f32_tensor;
use crate::engine::{Model, ModelOptions};

fn scalar(name: &str, dt: DataType, byte: u8) -> pb::TensorProto {
    pb::TensorProto { name: name.into(), data_type: dt as i32, raw_data: vec![byte], ..Default::default() }
}

fn i8_tensor(name: &str, dims: &[i64], v: &[i8]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: v.iter().map(|&x| x as u8).collect(),
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    use pb::type_proto::{Tensor, Value as TypeValue};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(TypeValue::TensorType(Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model `x [1, d] → … → y [1, out]`.
fn model(nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>, d: i64, out: i64) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![
            pb::OperatorSetIdProto { domain: String::new(), version: 17 },
            pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 },
        ],
        graph: Some(pb::GraphProto {
            name: "t".into(),
            node: nodes,
            initializer: inits,
            input: vec![value("x", &[1, d])],
            output: vec![value("y", &[1, out])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn run(m: &pb::ModelProto, x: &[f32]) -> crate::Result<Vec<f32>> {
    let model = Model::load_bytes(&m.encode_to_vec(), Path::new("test.onnx"), &ModelOptions::default())?;
    Ok(model.run_raw(x)?.remove(0).values)
}

fn imported(m: &pb::ModelProto) -> pb::ModelProto {
    let mut m = m.clone();
    super::import(&mut m).unwrap();
    m
}

fn ops(m: &pb::ModelProto) -> Vec<String> {
    m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect()
}

/// ONNX QuantizeLinear then DequantizeLinear of one value (round half to even, saturate).
fn fake_quant(v: f64, s: f64, zp: f64, lo: f64, hi: f64) -> f64 {
    let q = ((v / s).round_ties_even() + zp).clamp(lo, hi);
    (q - zp) * s
}

// Away from rounding ties at every quantization step below (x/0.02 ends in .15–.85).
const X: [f32; 8] = [0.317, -1.063, 2.213, 0.047, 1.493, -0.517, 0.904, 1.933];

/// `x → Q → DQ → (Log)Softmax → Q → DQ`: tract 0.23.9 alone gives 1.0 (0.0) everywhere.
fn softmax_sandwich(op: &str, s_out: f32, zp_out: i8) -> pb::ModelProto {
    model(
        vec![
            node("QuantizeLinear", "q0", &["x", "s_in", "zp_in"], &["xq"], vec![]),
            node("DequantizeLinear", "dq0", &["xq", "s_in", "zp_in"], &["xd"], vec![]),
            node(op, "sm", &["xd"], &["p"], vec![int_attr("axis", -1)]),
            node("QuantizeLinear", "q1", &["p", "s_out", "zp_out"], &["pq"], vec![]),
            node("DequantizeLinear", "dq1", &["pq", "s_out", "zp_out"], &["y"], vec![]),
        ],
        vec![
            f32_tensor("s_in", &[], &[0.02]),
            scalar("zp_in", DataType::Int8, 0),
            f32_tensor("s_out", &[], &[s_out]),
            scalar("zp_out", DataType::Int8, zp_out as u8),
        ],
        8,
        8,
    )
}

#[test]
fn quantized_softmax_and_log_softmax_are_computed_exactly() {
    for (op, s_out, zp_out) in [("Softmax", 1.0f32 / 255.0, -128i8), ("LogSoftmax", 0.05, 127)] {
        let m = softmax_sandwich(op, s_out, zp_out);
        let got = run(&m, &X).unwrap();
        let xd: Vec<f64> = X.iter().map(|&v| fake_quant(f64::from(v), 0.02f32.into(), 0.0, -128.0, 127.0)).collect();
        let max = xd.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = xd.iter().map(|v| (v - max).exp()).sum();
        for (i, (&g, &v)) in got.iter().zip(&xd).enumerate() {
            let p = if op == "Softmax" { (v - max).exp() / sum } else { v - max - sum.ln() };
            let want = fake_quant(p, s_out.into(), zp_out.into(), -128.0, 127.0);
            // Same integer code as the definition; the only float difference is s·(q − zp) in f32.
            assert!((f64::from(g) - want).abs() < 1e-6, "{op}[{i}]: tract {g}, ONNX definition {want}");
        }
        let q_after_softmax =
            imported(&m).graph.unwrap().node.iter().any(|n| n.op_type == "QuantizeLinear" && n.input[0] == "p");
        assert!(!q_after_softmax, "{op}: the QuantizeLinear on its output is still there");
    }
}

#[test]
fn a_softmax_fold_the_import_cannot_see_is_refused() {
    // An element-wise op between Softmax and QuantizeLinear: not ONNX Runtime's shape, so the
    // import leaves it, and tract would fold DQ → Softmax → Abs → Q into a wrong table.
    let mut m = softmax_sandwich("Softmax", 1.0 / 255.0, -128);
    let g = m.graph.as_mut().unwrap();
    g.node[3].input[0] = "pa".into();
    g.node.insert(3, node("Abs", "abs", &["p"], &["pa"], vec![]));
    let e = run(&m, &X).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::ModelLoad);
    assert!(e.to_string().contains("folded into a lookup table"), "{e}");
}

#[test]
fn a_softmax_code_read_by_other_nodes_is_cast_back_to_8_bits() {
    // The quantized softmax is read by a DequantizeLinear and by a graph output.
    let mut m = softmax_sandwich("Softmax", 1.0 / 255.0, -128);
    m.graph.as_mut().unwrap().output.push(value("pq", &[1, 8]));
    let g = imported(&m).graph.unwrap();
    let cast = g.node.iter().find(|n| n.op_type == "Cast").expect("a Cast for the graph output");
    assert_eq!(cast.output, ["pq"]);
    assert_eq!(cast.attribute[0].i, DataType::Int8 as i64);
    assert!(g.node.iter().all(|n| n.op_type != "QuantizeLinear" || n.input[0] != "p"));
}

/// `x → Q(s_x, z_x) → DQ → MatMul(·, DQ(W int8, s_w)) → y`.
fn weight_matmul(act: DataType, zx: i32, per_column: bool, w: &[i8], k: i64, n: i64) -> (pb::ModelProto, Vec<f32>) {
    let sw: Vec<f32> = if per_column { (0..n).map(|j| 0.01 + 0.003 * j as f32).collect() } else { vec![0.02] };
    let sw_dims: Vec<i64> = if per_column { vec![n] } else { vec![] };
    let dq_w_attrs = if per_column { vec![int_attr("axis", 1)] } else { vec![] };
    let m = model(
        vec![
            node("QuantizeLinear", "qx", &["x", "sx", "zx"], &["xq"], vec![]),
            node("DequantizeLinear", "dqx", &["xq", "sx", "zx"], &["xd"], vec![]),
            node("DequantizeLinear", "dqw", &["w", "sw", "zw"], &["wd"], dq_w_attrs),
            node("MatMul", "mm", &["xd", "wd"], &["y"], vec![]),
        ],
        vec![
            f32_tensor("sx", &[], &[0.05]),
            scalar("zx", act, zx as u8),
            i8_tensor("w", &[k, n], w),
            f32_tensor("sw", &sw_dims, &sw),
            if per_column { i8_tensor("zw", &[n], &vec![0; n as usize]) } else { scalar("zw", DataType::Int8, 0) },
        ],
        k,
        n,
    );
    (m, sw)
}

#[test]
fn weight_matmuls_become_matmul_integer_with_the_same_values() {
    let (k, n) = (6i64, 4i64);
    let w: Vec<i8> = (0..k * n).map(|i| ((i * 37 % 255) - 127) as i8).collect();
    // Inputs on exact quantization steps plus a quarter step: no rounding ties.
    let x: Vec<f32> = (0..k).map(|i| (i as f32 * 7.0 - 20.0 + 0.25) * 0.05).collect();
    let cases = [
        (DataType::Uint8, 128, false),
        (DataType::Uint8, 3, false),
        (DataType::Uint8, 200, true),
        (DataType::Int8, 0, true),
        (DataType::Int8, -5, false),
    ];
    for (act, zx, per_column) in cases {
        let (m, sw) = weight_matmul(act, zx, per_column, &w, k, n);
        assert_eq!(ops(&imported(&m)).iter().filter(|o| *o == "MatMulInteger").count(), 1, "{act:?} {zx}");
        assert!(!ops(&imported(&m)).contains(&"MatMul".to_owned()));
        let (lo, hi) = if act == DataType::Uint8 { (0.0, 255.0) } else { (-128.0, 127.0) };
        let got = run(&m, &x).unwrap();
        for j in 0..n as usize {
            let s = f64::from(sw[if per_column { j } else { 0 }]);
            let want: f64 = (0..k as usize)
                .map(|i| {
                    fake_quant(f64::from(x[i]), 0.05f32.into(), zx.into(), lo, hi)
                        * f64::from(w[i * n as usize + j])
                        * s
                })
                .sum();
            // f32 products and sums of ~6 terms: a few ulp of values of magnitude ~1.
            assert!((f64::from(got[j]) - want).abs() < 1e-5, "{act:?} zx={zx} col {j}: tract {}, want {want}", got[j]);
        }
    }
}

#[test]
fn qoperator_nodes_are_expanded_and_unknown_ones_refused() {
    // QLinearAdd(xq, xq) with a different output scale: y = DQ(Q(2·DQ(xq))).
    let m = model(
        vec![
            node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
            pb::NodeProto {
                domain: "com.microsoft".into(),
                ..node("QLinearAdd", "add", &["xq", "s", "z", "xq", "s", "z", "s2", "z2"], &["yq"], vec![])
            },
            node("DequantizeLinear", "dqy", &["yq", "s2", "z2"], &["y"], vec![]),
        ],
        vec![
            f32_tensor("s", &[], &[0.02]),
            scalar("z", DataType::Uint8, 128),
            f32_tensor("s2", &[], &[0.03]),
            scalar("z2", DataType::Uint8, 120),
        ],
        8,
        8,
    );
    assert!(!ops(&imported(&m)).iter().any(|o| o.starts_with("QLinear")));
    let got = run(&m, &X).unwrap();
    for (i, (&g, &v)) in got.iter().zip(&X).enumerate() {
        let xd = fake_quant(f64::from(v), 0.02f32.into(), 128.0, 0.0, 255.0);
        let want = fake_quant(2.0 * xd, 0.03f32.into(), 120.0, 0.0, 255.0);
        assert!((f64::from(g) - want).abs() < 1e-6, "[{i}]: tract {g}, QLinearAdd definition {want}");
    }

    let mut bad = m.clone();
    bad.graph.as_mut().unwrap().node[1].op_type = "QLinearConcat".into();
    let e = run(&bad, &X).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::ModelLoad);
    let msg = e.to_string();
    assert!(msg.contains("com.microsoft:QLinearConcat") && msg.contains("QDQ format"), "{msg}");
}

#[test]
fn float_models_are_untouched() {
    let m = model(vec![node("Relu", "r", &["x"], &["y"], vec![])], vec![], 8, 8);
    let mut same = m.clone();
    assert!(!super::import(&mut same).unwrap().changed());
    assert_eq!(same, m);
}

#[test]
fn malformed_quantized_nodes_are_errors_not_panics() {
    let inits = || {
        vec![
            f32_tensor("s", &[], &[0.02]),
            scalar("z", DataType::Uint8, 128),
            i8_tensor("w0", &[4, 0], &[]),
            f32_tensor("sw", &[], &[0.1]),
        ]
    };
    let q = || node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]);
    let ms = |n: pb::NodeProto| pb::NodeProto { domain: "com.microsoft".into(), ..n };
    // (what, nodes): each is a crafted file that must be refused or load, never panic.
    let cases: Vec<(&str, Vec<pb::NodeProto>)> = vec![
        ("QLinearMatMul with 2 inputs", vec![q(), node("QLinearMatMul", "m", &["xq", "s"], &["y"], vec![])]),
        ("QLinearConv with 3 inputs", vec![q(), node("QLinearConv", "c", &["xq", "s", "z"], &["y"], vec![])]),
        ("QLinearAdd with 1 input", vec![q(), ms(node("QLinearAdd", "a", &["xq"], &["y"], vec![]))]),
        (
            "QLinearSoftmax without outputs",
            vec![q(), ms(node("QLinearSoftmax", "sm", &["xq", "s", "z", "s", "z"], &[], vec![]))],
        ),
        (
            "DequantizeLinear without inputs before a MatMul",
            vec![
                node("DequantizeLinear", "d0", &[], &["xd"], vec![]),
                node("DequantizeLinear", "d1", &[], &["wd"], vec![]),
                node("MatMul", "mm", &["xd", "wd"], &["y"], vec![]),
            ],
        ),
        (
            "a weight with no columns",
            vec![
                q(),
                node("DequantizeLinear", "dx", &["xq", "s", "z"], &["xd"], vec![]),
                node("DequantizeLinear", "dw", &["w0", "sw"], &["wd"], vec![]),
                node("MatMul", "mm", &["xd", "wd"], &["y"], vec![]),
            ],
        ),
    ];
    for (what, nodes) in cases {
        let m = model(nodes, inits(), 4, 4);
        let mut copy = m.clone();
        let _ = super::import(&mut copy); // must return, Ok or Err
        if let Err(e) = run(&m, &[0.0; 4]) {
            assert_eq!(e.kind(), crate::ErrorKind::ModelLoad, "{what}: {e}");
        }
    }
}
