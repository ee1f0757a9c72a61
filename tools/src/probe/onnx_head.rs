//! `panderm-tools export-head`: a trained linear head as a small ONNX graph,
//! `features [N,D] → MatMul → Add → Softmax → probabilities [N,K]`, which the device runs
//! with tract on the backbone's features.

use tract_onnx::pb;

use crate::onnx_graph::{Attr, Dim, GraphBuilder};
use crate::probe::head_file::HeadFile;

/// Input name of exported heads.
pub const HEAD_INPUT: &str = "features";
/// Output name of exported heads.
pub const HEAD_OUTPUT: &str = "probabilities";

/// Builds the ONNX head.
pub fn head_to_onnx(head: &HeadFile, name: &str) -> pb::ModelProto {
    let (d, k) = (head.in_dim, head.classes);
    let mut g = GraphBuilder::new();
    let x = g.input(HEAD_INPUT, &[Dim::Symbolic("N"), Dim::Fixed(d as i64)]);
    let mut wt = vec![0f32; d * k];
    for (c, row) in head.weight.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            wt[j * k + c] = v;
        }
    }
    let w = g.const_f32("head.weight_t", &[d, k], &wt);
    let b = g.const_f32("head.bias", &[k], &head.bias);
    let z = g.matmul(&x, &w);
    let z = g.add(&z, &b);
    let p = g.op("Softmax", &[&z], vec![("axis", Attr::Int(-1))]);
    g.output(&p, HEAD_OUTPUT, &[Dim::Symbolic("N"), Dim::Fixed(k as i64)]);
    let meta = vec![
        ("panderm.format".to_owned(), "1".to_owned()),
        ("panderm.kind".to_owned(), "head".to_owned()),
        ("panderm.head_name".to_owned(), name.to_owned()),
        ("panderm.task".to_owned(), head.task.clone()),
        ("panderm.labels".to_owned(), head.labels.join(",")),
        ("panderm.in_dim".to_owned(), d.to_string()),
        ("panderm.num_classes".to_owned(), k.to_string()),
        ("panderm.C".to_owned(), head.c.to_string()),
        ("panderm.provenance".to_owned(), head.provenance.to_string()),
        ("panderm.tool".to_owned(), format!("panderm-tools {}", env!("CARGO_PKG_VERSION"))),
    ];
    g.finish(
        "panderm_head",
        env!("CARGO_PKG_VERSION"),
        "PanDerm linear-probe head (softmax over a linear layer).",
        &meta,
    )
}
