//! Reading and writing the small constant tensors of a quantized ONNX graph: scales, zero points,
//! int8 weights, int32 biases. ONNX stores them either as little-endian `raw_data` or in typed
//! fields (`float_data`; `int32_data` for int8, uint8 and int32), and both appear in the wild.

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// The values of a constant, by element type (only the types a quantized graph uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// float32: scales.
    F32(Vec<f32>),
    /// int8: weights, zero points.
    I8(Vec<i8>),
    /// uint8: weights, zero points.
    U8(Vec<u8>),
    /// int32: quantized biases.
    I32(Vec<i32>),
}

/// A constant tensor: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// The ONNX dims (empty for a scalar).
    pub dims: Vec<i64>,
    /// The values, row-major.
    pub values: Values,
}

impl Const {
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The values widened to i64 (integer constants only).
    pub fn as_i64(&self) -> Option<Vec<i64>> {
        match &self.values {
            Values::I8(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            Values::U8(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            Values::I32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            Values::F32(_) => None,
        }
    }

    /// The single value of a one-element float constant (a per-tensor scale).
    pub fn scalar_f32(&self) -> Option<f32> {
        match &self.values {
            Values::F32(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// The single value of a one-element integer constant (a per-tensor zero point).
    pub fn scalar_int(&self) -> Option<i64> {
        let v = self.as_i64()?;
        (v.len() == 1).then(|| v[0])
    }
}

/// The 8-bit quantized element types: the saturation range of a `QuantizeLinear` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// int8, −128..=127.
    I8,
    /// uint8, 0..=255.
    U8,
}

impl QType {
    /// Of a zero-point constant.
    pub fn of(c: &Const) -> Option<QType> {
        match c.values {
            Values::I8(_) => Some(QType::I8),
            Values::U8(_) => Some(QType::U8),
            _ => None,
        }
    }

    /// The saturation range.
    pub fn range(self) -> (f32, f32) {
        match self {
            QType::I8 => (-128.0, 127.0),
            QType::U8 => (0.0, 255.0),
        }
    }

    /// The ONNX data type number.
    pub fn onnx(self) -> i32 {
        match self {
            QType::I8 => DataType::Int8 as i32,
            QType::U8 => DataType::Uint8 as i32,
        }
    }
}

/// Reads an initializer, or says in a few words why not (external data, unknown type, a size that
/// does not match its dims).
pub fn read(t: &pb::TensorProto) -> Result<Const, String> {
    if !t.external_data.is_empty() {
        return Err(format!("initializer `{}` is stored in an external file", t.name));
    }
    let count = t.dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
    let count = count.ok_or_else(|| format!("initializer `{}` has invalid dims {:?}", t.name, t.dims))?;
    let raw = !t.raw_data.is_empty();
    let values = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) if raw => Values::F32(le_chunks::<4>(&t.raw_data).map(f32::from_le_bytes).collect()),
        Ok(DataType::Float) => Values::F32(t.float_data.clone()),
        Ok(DataType::Int8) if raw => Values::I8(t.raw_data.iter().map(|&b| b as i8).collect()),
        Ok(DataType::Int8) => Values::I8(narrow(&t.int32_data, &t.name)?),
        Ok(DataType::Uint8) if raw => Values::U8(t.raw_data.clone()),
        Ok(DataType::Uint8) => Values::U8(narrow(&t.int32_data, &t.name)?),
        Ok(DataType::Int32) if raw => Values::I32(le_chunks::<4>(&t.raw_data).map(i32::from_le_bytes).collect()),
        Ok(DataType::Int32) => Values::I32(t.int32_data.clone()),
        _ => return Err(format!("initializer `{}` has data type {}, not float/int8/uint8/int32", t.name, t.data_type)),
    };
    let len = match &values {
        Values::F32(v) => v.len(),
        Values::I8(v) => v.len(),
        Values::U8(v) => v.len(),
        Values::I32(v) => v.len(),
    };
    let bytes_ok = !raw || t.raw_data.len().is_multiple_of(element_size(&values));
    if len != count || !bytes_ok {
        return Err(format!("initializer `{}` holds {len} values for dims {:?}", t.name, t.dims));
    }
    Ok(Const { dims: t.dims.clone(), values })
}

fn element_size(v: &Values) -> usize {
    match v {
        Values::F32(_) | Values::I32(_) => 4,
        Values::I8(_) | Values::U8(_) => 1,
    }
}

fn le_chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    // A trailing partial element is caught by the size check in `read`.
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

fn narrow<T: TryFrom<i32>>(v: &[i32], name: &str) -> Result<Vec<T>, String> {
    v.iter()
        .map(|&x| T::try_from(x).map_err(|_| format!("initializer `{name}` holds {x}, out of its 8-bit range")))
        .collect()
}

/// A float32 initializer.
pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A scalar uint8 initializer.
pub fn u8_scalar(name: &str, value: u8) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: vec![],
        data_type: DataType::Uint8 as i32,
        raw_data: vec![value],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> pb::TensorProto {
        pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: dt as i32,
            raw_data: raw,
            ..Default::default()
        }
    }

    #[test]
    fn reads_raw_and_typed_storage_alike() {
        let cases: Vec<(pb::TensorProto, Values)> = vec![
            (raw("a", DataType::Int8, &[3], vec![0xff, 0, 0x7f]), Values::I8(vec![-1, 0, 127])),
            (
                pb::TensorProto {
                    name: "b".into(),
                    dims: vec![3],
                    data_type: DataType::Int8 as i32,
                    int32_data: vec![-1, 0, 127],
                    ..Default::default()
                },
                Values::I8(vec![-1, 0, 127]),
            ),
            (raw("c", DataType::Uint8, &[], vec![128]), Values::U8(vec![128])),
            (f32_tensor("d", &[2], &[0.5, -2.0]), Values::F32(vec![0.5, -2.0])),
            (
                pb::TensorProto {
                    name: "e".into(),
                    dims: vec![],
                    data_type: DataType::Float as i32,
                    float_data: vec![0.25],
                    ..Default::default()
                },
                Values::F32(vec![0.25]),
            ),
            (raw("f", DataType::Int32, &[1], (-7i32).to_le_bytes().to_vec()), Values::I32(vec![-7])),
        ];
        for (t, want) in cases {
            assert_eq!(read(&t).unwrap().values, want, "{}", t.name);
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let bad = [
            raw("short", DataType::Float, &[2], vec![0; 7]),
            raw("count", DataType::Int8, &[4], vec![0; 3]),
            raw("type", DataType::Int64, &[1], vec![0; 8]),
            pb::TensorProto {
                name: "range".into(),
                dims: vec![1],
                data_type: DataType::Uint8 as i32,
                int32_data: vec![300],
                ..Default::default()
            },
            raw("neg", DataType::Int8, &[-1], vec![]),
        ];
        for t in bad {
            let e = read(&t).unwrap_err();
            assert!(e.contains(&format!("`{}`", t.name)), "{e}");
        }
    }
}
