//! A protocol-2 pickler for [`PyValue`] trees: the `data.pkl` of a `.pth` archive.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{PthData, PthTensor, PthWriteError, PyValue, display_path};

/// Pickle opcodes used (protocol 2).
pub(super) mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const GLOBAL: u8 = b'c';
    pub const REDUCE: u8 = b'R';
    pub const NEWOBJ: u8 = 0x81;
    pub const BUILD: u8 = b'b';
    pub const BINPERSID: u8 = b'Q';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
}

/// Items per `APPENDS` / `SETITEMS` batch, as Python's pickler batches them.
const BATCH: usize = 1000;

/// A protocol-2 pickler for [`PyValue`] trees.
///
/// Only the globals and the strings every tensor repeats (`'storage'`, `'cpu'`) are
/// memoized; everything else is written out in full, which any unpickler accepts.
#[derive(Default)]
pub(super) struct Pickler<'r, 'a> {
    pub(super) out: Vec<u8>,
    memo: Vec<String>,
    pub(super) storages: Vec<&'r PthData<'a>>,
}

impl<'r, 'a> Pickler<'r, 'a> {
    pub(super) fn value(&mut self, v: &'r PyValue<'a>, path: &mut String) -> Result<(), PthWriteError> {
        match v {
            PyValue::Tensor(t) => self.tensor(t, path)?,
            PyValue::OrderedDict(items) => {
                self.global("collections", "OrderedDict");
                self.out.extend_from_slice(&[op::EMPTY_TUPLE, op::REDUCE]);
                self.dict_items(items, path)?;
            }
            PyValue::Dict(items) => {
                self.out.push(op::EMPTY_DICT);
                self.dict_items(items, path)?;
            }
            PyValue::Namespace(fields) => {
                self.global("argparse", "Namespace");
                self.out.extend_from_slice(&[op::EMPTY_TUPLE, op::NEWOBJ, op::EMPTY_DICT]);
                self.dict_items(fields, path)?;
                self.out.push(op::BUILD);
            }
            PyValue::Str(s) => self.str(s),
            PyValue::Int(i) => self.int(*i),
            PyValue::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            PyValue::Bool(b) => self.out.push(if *b { op::NEWTRUE } else { op::NEWFALSE }),
            PyValue::None => self.out.push(op::NONE),
            PyValue::List(items) => {
                self.out.push(op::EMPTY_LIST);
                let mut index = 0;
                for batch in items.chunks(BATCH) {
                    if batch.len() > 1 {
                        self.out.push(op::MARK);
                    }
                    for item in batch {
                        let mark = path.len();
                        let _ = write!(path, "[{index}]");
                        index += 1;
                        self.value(item, path)?;
                        path.truncate(mark);
                    }
                    self.out.push(if batch.len() > 1 { op::APPENDS } else { op::APPEND });
                }
            }
        }
        Ok(())
    }

    /// Key/value pairs of a dict already on the stack, batched like Python's pickler.
    fn dict_items(&mut self, items: &'r [(String, PyValue<'a>)], path: &mut String) -> Result<(), PthWriteError> {
        let mut seen = HashSet::with_capacity(items.len());
        for (key, _) in items {
            if !seen.insert(key.as_str()) {
                return Err(PthWriteError::DuplicateKey { path: display_path(path), key: key.clone() });
            }
        }
        for batch in items.chunks(BATCH) {
            if batch.len() > 1 {
                self.out.push(op::MARK);
            }
            for (key, value) in batch {
                self.str(key);
                let mark = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                self.value(value, path)?;
                path.truncate(mark);
            }
            self.out.push(if batch.len() > 1 { op::SETITEMS } else { op::SETITEM });
        }
        Ok(())
    }

    fn tensor(&mut self, t: &'r PthTensor<'a>, path: &str) -> Result<(), PthWriteError> {
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| PthWriteError::ShapeOverflow { path: display_path(path), shape: t.shape.clone() })?;
        if numel != t.data.len() {
            return Err(PthWriteError::ShapeMismatch {
                path: display_path(path),
                shape: t.shape.clone(),
                expected: numel,
                actual: t.data.len(),
            });
        }
        let key = self.storages.len();
        self.storages.push(&t.data);

        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(op::MARK);
        // Persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel).
        self.out.push(op::MARK);
        self.memo_str("storage");
        self.global("torch", t.data.storage_class());
        self.str(&key.to_string());
        self.memo_str("cpu");
        self.usize(numel);
        self.out.push(op::TUPLE);
        self.out.push(op::BINPERSID);
        // storage_offset, size, stride, requires_grad, backward_hooks.
        self.int(0);
        self.usize_tuple(&t.shape);
        self.usize_tuple(&contiguous_strides(&t.shape));
        self.out.push(op::NEWFALSE);
        self.global("collections", "OrderedDict");
        self.out.extend_from_slice(&[op::EMPTY_TUPLE, op::REDUCE]);
        self.out.push(op::TUPLE);
        self.out.push(op::REDUCE);
        Ok(())
    }

    fn usize_tuple(&mut self, values: &[usize]) {
        match values.len() {
            0 => self.out.push(op::EMPTY_TUPLE),
            n @ 1..=3 => {
                values.iter().for_each(|&v| self.usize(v));
                self.out.push([op::TUPLE1, op::TUPLE2, op::TUPLE3][n - 1]);
            }
            _ => {
                self.out.push(op::MARK);
                values.iter().for_each(|&v| self.usize(v));
                self.out.push(op::TUPLE);
            }
        }
    }

    fn usize(&mut self, v: usize) {
        match i64::try_from(v) {
            Ok(i) => self.int(i),
            // Beyond i64 only in theory; LONG1 of the unsigned value with a sign byte.
            Err(_) => {
                let mut bytes = (v as u64).to_le_bytes().to_vec();
                bytes.push(0);
                self.out.extend_from_slice(&[op::LONG1, bytes.len() as u8]);
                self.out.extend_from_slice(&bytes);
            }
        }
    }

    /// An int the way Python's pickler writes it at protocol 2.
    pub(super) fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[op::BININT1, v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.out.push(op::BININT2);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            // Minimal two's-complement little-endian bytes.
            let mut bytes = v.to_le_bytes().to_vec();
            while bytes.len() > 1 {
                let last = bytes[bytes.len() - 1];
                let sign_of_prev = bytes[bytes.len() - 2] & 0x80;
                if (last == 0 && sign_of_prev == 0) || (last == 0xff && sign_of_prev != 0) {
                    bytes.pop();
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[op::LONG1, bytes.len() as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    fn str(&mut self, s: &str) {
        self.out.push(op::BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A memoized string: written and stored on first use, fetched from the memo after.
    fn memo_str(&mut self, s: &str) {
        let tag = format!("s:{s}");
        if !self.get(&tag) {
            self.str(s);
            self.put(tag);
        }
    }

    /// A memoized `GLOBAL module\nname\n`.
    fn global(&mut self, module: &str, name: &str) {
        let tag = format!("g:{module}\n{name}");
        if !self.get(&tag) {
            self.out.push(op::GLOBAL);
            self.out.extend_from_slice(module.as_bytes());
            self.out.push(b'\n');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'\n');
            self.put(tag);
        }
    }

    /// Push the memo entry `tag` if it exists; report whether it did.
    fn get(&mut self, tag: &str) -> bool {
        let Some(index) = self.memo.iter().position(|t| t == tag) else {
            return false;
        };
        if let Ok(i) = u8::try_from(index) {
            self.out.extend_from_slice(&[op::BINGET, i]);
        } else {
            self.out.push(op::LONG_BINGET);
            self.out.extend_from_slice(&(index as u32).to_le_bytes());
        }
        true
    }

    /// Store the value on top of the stack under the next memo index.
    fn put(&mut self, tag: String) {
        let index = self.memo.len();
        if let Ok(i) = u8::try_from(index) {
            self.out.extend_from_slice(&[op::BINPUT, i]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&(index as u32).to_le_bytes());
        }
        self.memo.push(tag);
    }
}

/// Row-major strides, as torch computes them for a contiguous tensor (a zero extent counts
/// as one).
pub(super) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1].max(1);
    }
    strides
}
