//! Small helpers for rewriting an ONNX graph in place: constant lookup, consumers of a value,
//! fresh names, node and attribute builders, dead-node removal.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::tensor::{self, Const};

/// The constants (initializers) of a graph, read on demand.
pub struct Constants<'a> {
    by_name: HashMap<&'a str, &'a pb::TensorProto>,
}

impl<'a> Constants<'a> {
    /// Indexes the graph's initializers.
    pub fn new(graph: &'a pb::GraphProto) -> Self {
        Constants { by_name: graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect() }
    }

    /// The constant named `name`: `None` if it is not an initializer, an error if it is one that
    /// cannot be read.
    pub fn get(&self, name: &str) -> Result<Option<Const>, String> {
        match self.by_name.get(name) {
            Some(t) => tensor::read(t).map(Some),
            None => Ok(None),
        }
    }
}

/// For each value name, the indices of the nodes that read it.
pub fn consumers(graph: &pb::GraphProto) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            let list = map.entry(input.clone()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    map
}

/// For each value name, the index of the node that writes it.
pub fn producers(graph: &pb::GraphProto) -> HashMap<String, usize> {
    graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect()
}

/// Optional input `i` of a node (ONNX marks an omitted optional input with an empty name).
pub fn input(node: &pb::NodeProto, i: usize) -> Option<&str> {
    node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

/// An integer attribute of a node, or `default`.
pub fn attr_int(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    node.attribute.iter().find(|a| a.name == name).map_or(default, |a| a.i)
}

/// An integer attribute.
pub fn int_attr(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.to_owned(), r#type: AttributeType::Int as i32, i: value, ..Default::default() }
}

/// A node in the default ONNX domain.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.to_owned(),
        name: name.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

/// Names that are not yet used anywhere in the graph, derived from a readable stem.
pub struct Names {
    used: HashSet<String>,
}

impl Names {
    /// Collects every value, node and initializer name of the graph.
    pub fn new(graph: &pb::GraphProto) -> Self {
        let mut used: HashSet<String> = HashSet::new();
        for n in &graph.node {
            used.insert(n.name.clone());
            used.extend(n.input.iter().cloned());
            used.extend(n.output.iter().cloned());
        }
        used.extend(graph.initializer.iter().map(|t| t.name.clone()));
        used.extend(graph.input.iter().map(|v| v.name.clone()));
        used.extend(graph.output.iter().map(|v| v.name.clone()));
        Names { used }
    }

    /// `stem` if it is free, else `stem_2`, `stem_3`, …; the name is then taken.
    pub fn fresh(&mut self, stem: &str) -> String {
        let mut name = stem.to_owned();
        let mut k = 2;
        while self.used.contains(&name) {
            name = format!("{stem}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

/// A readable stem for new names made from `node`: its name, or its first output.
pub fn stem(node: &pb::NodeProto) -> String {
    if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_else(|| node.op_type.clone())
    } else {
        node.name.clone()
    }
}

/// Replaces node `i` of the graph by `replacements[i]` (several nodes, in place, keeping the
/// topological order), for every index in the map.
pub fn splice(graph: &mut pb::GraphProto, mut replacements: HashMap<usize, Vec<pb::NodeProto>>) {
    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        match replacements.remove(&i) {
            Some(new) => graph.node.extend(new),
            None => graph.node.push(n),
        }
    }
}

/// Drops nodes none of whose outputs reach a graph output, then initializers nobody reads.
pub fn remove_dead(graph: &mut pb::GraphProto) {
    let mut live: HashSet<String> = graph.output.iter().map(|v| v.name.clone()).collect();
    let mut keep = vec![false; graph.node.len()];
    for (i, n) in graph.node.iter().enumerate().rev() {
        // Sub-graph nodes (If/Loop) read enclosing values through their bodies: keep them whole.
        let has_subgraph = n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty());
        if has_subgraph || n.output.iter().any(|o| live.contains(o)) {
            keep[i] = true;
            live.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
            if has_subgraph {
                for a in &n.attribute {
                    for g in a.g.iter().chain(a.graphs.iter()) {
                        collect_reads(g, &mut live);
                    }
                }
            }
        }
    }
    let mut k = keep.into_iter();
    graph.node.retain(|_| k.next().unwrap_or(true));
    graph.initializer.retain(|t| live.contains(&t.name));
}

fn collect_reads(g: &pb::GraphProto, into: &mut HashSet<String>) {
    for n in &g.node {
        into.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
        for a in &n.attribute {
            for sub in a.g.iter().chain(a.graphs.iter()) {
                collect_reads(sub, into);
            }
        }
    }
    into.extend(g.output.iter().map(|v| v.name.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_never_collide() {
        let graph = pb::GraphProto { node: vec![node("Relu", "r", &["x"], &["y"], vec![])], ..Default::default() };
        let mut names = Names::new(&graph);
        assert_eq!(names.fresh("y"), "y_2");
        assert_eq!(names.fresh("y"), "y_3");
        assert_eq!(names.fresh("z"), "z");
        assert_eq!(names.fresh("z"), "z_2");
    }

    #[test]
    fn dead_nodes_and_their_constants_go() {
        let mut graph = pb::GraphProto {
            node: vec![
                node("Mul", "dead", &["x", "c_dead"], &["unused"], vec![]),
                node("Mul", "live", &["x", "c_live"], &["y"], vec![]),
            ],
            initializer: vec![tensor::f32_tensor("c_dead", &[], &[1.0]), tensor::f32_tensor("c_live", &[], &[2.0])],
            output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        };
        remove_dead(&mut graph);
        assert_eq!(graph.node.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["live"]);
        assert_eq!(graph.initializer.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["c_live"]);
    }
}
