//! Write PyTorch checkpoints (`.pth`) in the ZIP container of `torch.save` (PyTorch ≥ 1.6),
//! without PyTorch.
//!
//! The file this module writes is what `torch.save(obj, path)` writes for the same `obj`,
//! entry for entry:
//!
//! | entry | content |
//! |---|---|
//! | `archive/data.pkl` | the object tree, pickled at protocol 2 |
//! | `archive/.format_version` | `1` |
//! | `archive/.storage_alignment` | `64` |
//! | `archive/byteorder` | `little` |
//! | `archive/data/<key>` | one storage per tensor, raw little-endian bytes |
//! | `archive/version` | `3\n` |
//! | `archive/.data/serialization_id` | a 40-digit identifier (deterministic here) |
//!
//! The ZIP container is written by hand in the exact layout of the miniz writer inside
//! torch (stored entries, data padded to 64-byte boundaries with a `FB` extra field, data
//! descriptors, ZIP64 end records): a file with `.format_version` 1 tells `torch.load` it may
//! compute storage offsets from the sizes alone instead of reading local headers, so a
//! generic ZIP writer's layout would make `torch.load(..., mmap=True)` with
//! `calculate_storage_offsets` read the wrong bytes. See `MinizZip`. Torch names the root
//! folder after the file (`model/` for `model.pth`) and `archive/` when saving to a buffer;
//! loaders accept any single root folder, and this module always writes `archive/`, so the
//! bytes do not depend on the file name.
//!
//! Each tensor is pickled as torch pickles a contiguous CPU tensor:
//! `torch._utils._rebuild_tensor_v2(persistent_id, 0, size, stride, False, OrderedDict())`,
//! the persistent id being `('storage', torch.FloatStorage | torch.LongStorage, key, 'cpu',
//! numel)`. A flat [`PyValue::OrderedDict`] of tensors therefore loads with
//! `torch.load(path, weights_only=True)`; a tree holding a [`PyValue::Namespace`] needs
//! `weights_only=False`, exactly like a checkpoint PanDerm's training script saves with its
//! `args`.
//!
//! Tensor bytes are streamed from the borrowed slices into the archive in small chunks,
//! never gathered into one buffer, so writing a full-size checkpoint costs little memory
//! beyond the weights themselves.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

mod container;
mod pickle;

use container::MinizZip;
use pickle::{Pickler, op};

/// Borrowed tensor data to write, in row-major (C) order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PthData<'a> {
    /// `torch.float32` values, stored as a `torch.FloatStorage`.
    F32(&'a [f32]),
    /// `torch.int64` values, stored as a `torch.LongStorage` (e.g. a
    /// `relative_position_index` buffer).
    I64(&'a [i64]),
}

impl PthData<'_> {
    /// Number of elements in the slice.
    pub fn len(&self) -> usize {
        match self {
            PthData::F32(v) => v.len(),
            PthData::I64(v) => v.len(),
        }
    }

    /// Whether the slice holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of one element in bytes.
    fn elem_size(&self) -> usize {
        match self {
            PthData::F32(_) => 4,
            PthData::I64(_) => 8,
        }
    }

    /// The `torch` storage class the pickle names for this element type.
    fn storage_class(&self) -> &'static str {
        match self {
            PthData::F32(_) => "FloatStorage",
            PthData::I64(_) => "LongStorage",
        }
    }
}

/// A contiguous CPU tensor to write: its shape and its data.
///
/// The product of `shape` (1 for an empty shape, i.e. a 0-d tensor) must equal the number
/// of elements in `data`; [`write_pth`] and [`to_pth_bytes`] check it.
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor<'a> {
    /// Extents, outermost first; empty for a 0-d (scalar) tensor.
    pub shape: Vec<usize>,
    /// The elements in row-major order.
    pub data: PthData<'a>,
}

impl<'a> PthTensor<'a> {
    /// A `float32` tensor of the given shape.
    pub fn f32(shape: impl Into<Vec<usize>>, data: &'a [f32]) -> Self {
        Self { shape: shape.into(), data: PthData::F32(data) }
    }

    /// An `int64` tensor of the given shape.
    pub fn i64(shape: impl Into<Vec<usize>>, data: &'a [i64]) -> Self {
        Self { shape: shape.into(), data: PthData::I64(data) }
    }
}

/// A value in a pickled checkpoint tree.
///
/// Dictionary keys are strings, written in the order given; a key may not repeat within
/// one dictionary.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue<'a> {
    /// A tensor, rebuilt by `torch._utils._rebuild_tensor_v2`.
    Tensor(PthTensor<'a>),
    /// `collections.OrderedDict` (state dicts) with string keys, insertion order kept.
    OrderedDict(Vec<(String, PyValue<'a>)>),
    /// Plain `dict` with string keys, insertion order kept.
    Dict(Vec<(String, PyValue<'a>)>),
    /// `str`.
    Str(String),
    /// `int`.
    Int(i64),
    /// `float`.
    Float(f64),
    /// `bool`.
    Bool(bool),
    /// `None`.
    None,
    /// `list`.
    List(Vec<PyValue<'a>>),
    /// `argparse.Namespace(**fields)`, pickled as torch does (GLOBAL `argparse Namespace`,
    /// NEWOBJ, BUILD with a dict of the fields). Loading it needs `weights_only=False`.
    Namespace(Vec<(String, PyValue<'a>)>),
}

/// Why a checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PthWriteError {
    /// Creating or writing the file failed.
    #[error("I/O error writing checkpoint: {0}")]
    Io(#[from] io::Error),
    /// A tensor's shape does not match the number of elements given for it.
    #[error("tensor '{path}': shape {shape:?} has {expected} elements but {actual} values were given")]
    ShapeMismatch {
        /// Where the tensor sits in the tree (`model.blocks.0.attn.qkv.weight`,
        /// `list[2]`, `<root>` for a root tensor).
        path: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// The product of `shape`.
        expected: usize,
        /// The number of elements in the data slice.
        actual: usize,
    },
    /// A tensor's shape has more elements than a `usize` can count.
    #[error("tensor '{path}': shape {shape:?} has too many elements")]
    ShapeOverflow {
        /// Where the tensor sits in the tree.
        path: String,
        /// The declared shape.
        shape: Vec<usize>,
    },
    /// A dictionary or namespace names the same key twice (Python would keep only the last).
    #[error("duplicate key '{key}' in the dict at '{path}'")]
    DuplicateKey {
        /// Where the dictionary sits in the tree (`<root>` for the root).
        path: String,
        /// The repeated key.
        key: String,
    },
}

/// Root folder of every entry in the archive.
pub(super) const ARCHIVE: &str = "archive";

/// Alignment of every entry's data within the file, as `torch.save` writes it.
pub(super) const ALIGNMENT: u64 = 64;

/// Elements converted to little-endian bytes per write while streaming a tensor.
const CHUNK_ELEMS: usize = 16 * 1024;

/// Write `root` to `path` as `torch.save(root, path)` would.
///
/// The tree is checked (shapes, duplicate keys) before the file is created, so a rejected
/// tree leaves no file behind; a write that fails part-way (disk full, say) removes the
/// partial file. The file is written front to back through a buffered writer, streaming the
/// tensor bytes from their slices.
pub fn write_pth(path: &Path, root: &PyValue) -> Result<(), PthWriteError> {
    let pickled = Pickled::new(root)?;
    let file = File::create(path)?;
    let written = (|| {
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        write_archive(&mut writer, &pickled)?;
        writer.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(path);
        return Err(err.into());
    }
    Ok(())
}

/// The bytes `torch.save(root, buffer)` would write, built in memory.
///
/// Identical to the content of a file [`write_pth`] writes for the same tree.
pub fn to_pth_bytes(root: &PyValue) -> Result<Vec<u8>, PthWriteError> {
    let pickled = Pickled::new(root)?;
    let mut out = Vec::new();
    write_archive(&mut out, &pickled)?;
    Ok(out)
}

/// A pickled tree: `data.pkl` and the storages it refers to, in key order.
struct Pickled<'r, 'a> {
    pickle: Vec<u8>,
    storages: Vec<&'r PthData<'a>>,
}

impl<'r, 'a> Pickled<'r, 'a> {
    fn new(root: &'r PyValue<'a>) -> Result<Self, PthWriteError> {
        let mut pickler = Pickler::default();
        pickler.out.extend_from_slice(&[op::PROTO, 2]);
        let mut path = String::new();
        pickler.value(root, &mut path)?;
        pickler.out.push(op::STOP);
        Ok(Self { pickle: pickler.out, storages: pickler.storages })
    }
}

/// Write the whole archive, records in the order `torch.save` writes them.
fn write_archive<W: Write>(writer: W, pickled: &Pickled) -> io::Result<()> {
    let mut zip = MinizZip::new(writer);
    zip.record("data.pkl", &pickled.pickle)?;
    zip.record(".format_version", b"1")?;
    zip.record(".storage_alignment", ALIGNMENT.to_string().as_bytes())?;
    zip.record("byteorder", b"little")?;
    let mut sizes = String::new();
    for (key, data) in pickled.storages.iter().enumerate() {
        let len = (data.len() * data.elem_size()) as u64;
        zip.start(&format!("data/{key}"), len)?;
        write_le(&mut zip, data)?;
        zip.end()?;
        let _ = write!(sizes, "{key}:{len};");
    }
    zip.record("version", b"3\n")?;
    // Torch derives this id from the records it wrote; nothing checks its value. A hash of
    // the pickle and the storage sizes keeps the output reproducible.
    let id = format!("{:020}{:020}", fnv1a(&pickled.pickle) % 10u64.pow(19), fnv1a(sizes.as_bytes()) % 10u64.pow(19));
    zip.record(".data/serialization_id", id.as_bytes())?;
    zip.finish()
}

/// Stream a tensor's elements as little-endian bytes, a chunk at a time.
fn write_le<W: Write>(w: &mut W, data: &PthData) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK_ELEMS * data.elem_size());
    match data {
        PthData::F32(values) => {
            for chunk in values.chunks(CHUNK_ELEMS) {
                buf.clear();
                chunk.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        PthData::I64(values) => {
            for chunk in values.chunks(CHUNK_ELEMS) {
                buf.clear();
                chunk.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
    }
    Ok(())
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

pub(super) fn display_path(path: &str) -> String {
    if path.is_empty() { "<root>".to_string() } else { path.to_string() }
}

#[cfg(test)]
mod tests {
    use super::pickle::contiguous_strides;
    use super::*;
    use pytorch_reader::{DType, PickleValue, PytorchReader};
    use std::io::{Cursor, Read};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zip::CompressionMethod;

    /// A file in the temp dir, removed when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            Self(std::env::temp_dir().join(format!("pth_writer_{}_{n}_{name}.pth", std::process::id())))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 - n as f32 / 2.0) * scale).collect()
    }

    fn read_f32(reader: &PytorchReader, name: &str) -> (Vec<usize>, Vec<f32>) {
        let t = reader.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(t.dtype(), DType::F32, "{name}");
        let bytes = t.read().unwrap();
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        (t.shape().to_vec(), values)
    }

    fn read_i64(reader: &PytorchReader, name: &str) -> (Vec<usize>, Vec<i64>) {
        let t = reader.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(t.dtype(), DType::I64, "{name}");
        let bytes = t.read().unwrap();
        let values = bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
        (t.shape().to_vec(), values)
    }

    #[test]
    fn flat_state_dict_round_trips_through_pytorch_reader() {
        let scalar = [2.5f32];
        let bias = ramp(7, 0.25);
        let conv = ramp(4 * 3 * 2 * 2, 0.01);
        let index: Vec<i64> = (0..9).map(|i| i * 1_000_000_007 - 3).collect();
        let root = PyValue::OrderedDict(vec![
            ("scale".into(), PyValue::Tensor(PthTensor::f32([], &scalar))),
            ("fc.bias".into(), PyValue::Tensor(PthTensor::f32([7], &bias))),
            ("patch_embed.proj.weight".into(), PyValue::Tensor(PthTensor::f32([4, 3, 2, 2], &conv))),
            ("blocks.0.attn.relative_position_index".into(), PyValue::Tensor(PthTensor::i64([3, 3], &index))),
        ]);
        let file = TempPath::new("flat");
        write_pth(&file.0, &root).unwrap();

        let reader = PytorchReader::new(&file.0).unwrap();
        assert_eq!(reader.len(), 4);
        assert_eq!(read_f32(&reader, "scale"), (vec![], scalar.to_vec()));
        assert_eq!(read_f32(&reader, "fc.bias"), (vec![7], bias));
        assert_eq!(read_f32(&reader, "patch_embed.proj.weight"), (vec![4, 3, 2, 2], conv));
        assert_eq!(read_i64(&reader, "blocks.0.attn.relative_position_index"), (vec![3, 3], index));
        let meta = reader.metadata();
        assert!(meta.is_modern_format());
        assert_eq!(meta.pytorch_version.as_deref(), Some("3"));
        assert_eq!(meta.format_version.as_deref(), Some("1"));
        assert!(meta.has_storage_alignment);
    }

    #[test]
    fn nested_checkpoint_with_namespace_args_round_trips() {
        let w = ramp(6 * 4, 0.5);
        let b = ramp(6, -1.0);
        let root = PyValue::Dict(vec![
            (
                "model".into(),
                PyValue::OrderedDict(vec![
                    ("head.weight".into(), PyValue::Tensor(PthTensor::f32([6, 4], &w))),
                    ("head.bias".into(), PyValue::Tensor(PthTensor::f32([6], &b))),
                ]),
            ),
            ("optimizer".into(), PyValue::Dict(vec![])),
            ("epoch".into(), PyValue::Str("best".into())),
            ("scaler".into(), PyValue::Dict(vec![])),
            (
                "args".into(),
                PyValue::Namespace(vec![
                    ("model".into(), PyValue::Str("PanDerm_Base_FT".into())),
                    ("nb_classes".into(), PyValue::Int(6)),
                    ("lr".into(), PyValue::Float(5e-4)),
                    ("use_mean_pooling".into(), PyValue::Bool(true)),
                    ("resume".into(), PyValue::None),
                    ("input_size".into(), PyValue::List(vec![PyValue::Int(224), PyValue::Int(-70_000)])),
                    ("seed".into(), PyValue::Int(1 << 40)),
                ]),
            ),
        ]);
        let file = TempPath::new("nested");
        write_pth(&file.0, &root).unwrap();

        let reader = PytorchReader::with_top_level_key(&file.0, "model").unwrap();
        assert_eq!(reader.len(), 2);
        assert_eq!(read_f32(&reader, "head.weight"), (vec![6, 4], w));
        assert_eq!(read_f32(&reader, "head.bias"), (vec![6], b));

        let epoch = PytorchReader::read_pickle_data(&file.0, Some("epoch")).unwrap();
        assert_eq!(epoch, PickleValue::String("best".into()));
    }

    #[test]
    fn bytes_match_file_and_entries_are_aligned_like_torch() {
        let a = ramp(33, 1.0);
        let idx = [5i64, -6, 7];
        let root = PyValue::OrderedDict(vec![
            ("a".into(), PyValue::Tensor(PthTensor::f32([3, 11], &a))),
            ("idx".into(), PyValue::Tensor(PthTensor::i64([3], &idx))),
            ("empty".into(), PyValue::Tensor(PthTensor::f32([0, 4], &[]))),
        ]);
        let bytes = to_pth_bytes(&root).unwrap();
        let file = TempPath::new("bytes");
        write_pth(&file.0, &root).unwrap();
        assert_eq!(std::fs::read(&file.0).unwrap(), bytes);
        assert_eq!(to_pth_bytes(&root).unwrap(), bytes, "output is reproducible");

        let mut zip = zip::ZipArchive::new(Cursor::new(bytes.as_slice())).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "archive/.data/serialization_id",
                "archive/.format_version",
                "archive/.storage_alignment",
                "archive/byteorder",
                "archive/data.pkl",
                "archive/data/0",
                "archive/data/1",
                "archive/data/2",
                "archive/version",
            ]
        );
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            assert_eq!(entry.compression(), CompressionMethod::Stored);
            let name = entry.name().unwrap().into_owned();
            assert_eq!(entry.data_start().unwrap() % 64, 0, "{name}");
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            match name.as_str() {
                "archive/byteorder" => assert_eq!(content, b"little"),
                "archive/version" => assert_eq!(content, b"3\n"),
                "archive/.data/serialization_id" => {
                    assert_eq!(content.len(), 40);
                    assert!(content.iter().all(u8::is_ascii_digit));
                }
                "archive/data/1" => {
                    let expected: Vec<u8> = idx.iter().flat_map(|v| v.to_le_bytes()).collect();
                    assert_eq!(content, expected);
                }
                "archive/data/2" => assert!(content.is_empty()),
                _ => {}
            }
        }

        let reader_file = TempPath::new("bytes_reader");
        std::fs::write(&reader_file.0, to_pth_bytes(&root).unwrap()).unwrap();
        let reader = PytorchReader::new(&reader_file.0).unwrap();
        assert_eq!(read_f32(&reader, "empty"), (vec![0, 4], vec![]));
        assert_eq!(read_i64(&reader, "idx"), (vec![3], idx.to_vec()));
    }

    #[test]
    fn shape_mismatch_names_the_tensor_and_writes_no_file() {
        let data = ramp(10, 1.0);
        let root = PyValue::Dict(vec![(
            "model".into(),
            PyValue::OrderedDict(vec![
                ("ok".into(), PyValue::Tensor(PthTensor::f32([10], &data))),
                ("blocks.0.mlp.fc1.weight".into(), PyValue::Tensor(PthTensor::f32([3, 4], &data))),
            ]),
        )]);
        let file = TempPath::new("mismatch");
        let err = write_pth(&file.0, &root).unwrap_err();
        match &err {
            PthWriteError::ShapeMismatch { path, shape, expected, actual } => {
                assert_eq!(path, "model.blocks.0.mlp.fc1.weight");
                assert_eq!(shape, &[3, 4]);
                assert_eq!((*expected, *actual), (12, 10));
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("model.blocks.0.mlp.fc1.weight"));
        assert!(!file.0.exists());

        let in_list = PyValue::List(vec![PyValue::Int(1), PyValue::Tensor(PthTensor::f32([], &data))]);
        let err = to_pth_bytes(&in_list).unwrap_err();
        assert!(
            matches!(&err, PthWriteError::ShapeMismatch { path, expected: 1, actual: 10, .. } if path == "[1]"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let root = PyValue::OrderedDict(vec![("a".into(), PyValue::Int(1)), ("a".into(), PyValue::Int(2))]);
        assert!(matches!(
            to_pth_bytes(&root),
            Err(PthWriteError::DuplicateKey { ref path, ref key }) if path == "<root>" && key == "a"
        ));
    }

    #[test]
    fn ints_are_encoded_like_python() {
        let cases: [(i64, &[u8]); 8] = [
            (0, &[op::BININT1, 0]),
            (255, &[op::BININT1, 255]),
            (256, &[op::BININT2, 0, 1]),
            (65536, &[op::BININT, 0, 0, 1, 0]),
            (-1, &[op::BININT, 0xff, 0xff, 0xff, 0xff]),
            (1 << 31, &[op::LONG1, 5, 0, 0, 0, 0x80, 0]),
            (-(1 << 31) - 1, &[op::LONG1, 5, 0xff, 0xff, 0xff, 0x7f, 0xff]),
            (i64::MIN, &[op::LONG1, 8, 0, 0, 0, 0, 0, 0, 0, 0x80]),
        ];
        for (v, expected) in cases {
            let mut p = Pickler::default();
            p.int(v);
            assert_eq!(p.out, expected, "{v}");
        }
    }

    #[test]
    fn contiguous_strides_match_torch() {
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        assert_eq!(contiguous_strides(&[5]), [1]);
        assert_eq!(contiguous_strides(&[128, 3, 16, 16]), [768, 256, 16, 1]);
        assert_eq!(contiguous_strides(&[0, 4]), [4, 1]);
        assert_eq!(contiguous_strides(&[2, 0, 3]), [3, 3, 1]);
    }

    #[test]
    fn storage_offsets_follow_torchs_miniz_arithmetic() {
        let sizes = [7usize, 0, 1, 33, 0, 0, 64, 5];
        let values: Vec<Vec<f32>> = sizes.iter().map(|&n| ramp(n, 1.0)).collect();
        let root = PyValue::OrderedDict(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("t{i}"), PyValue::Tensor(PthTensor::f32([v.len()], v))))
                .collect(),
        );
        let bytes = to_pth_bytes(&root).unwrap();
        let le16 = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
        let le32 = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());

        // Walk the local headers in order.
        let mut pos = 0;
        let mut data_starts = std::collections::HashMap::new();
        while le32(pos) == 0x0403_4b50 {
            let flags = le16(pos + 6);
            let name_len = le16(pos + 26);
            let extra_len = le16(pos + 28);
            let name = std::str::from_utf8(&bytes[pos + 30..pos + 30 + name_len]).unwrap();
            let extra = &bytes[pos + 30 + name_len..pos + 30 + name_len + extra_len];
            assert_eq!(&extra[..2], b"FB", "{name}");
            assert_eq!(u16::from_le_bytes([extra[2], extra[3]]) as usize, extra_len - 4);
            assert!(extra[4..].iter().all(|&b| b == b'Z'));
            assert!(extra_len - 4 < 64, "{name}: padding is 0..63 bytes");
            let start = pos + 30 + name_len + extra_len;
            assert_eq!(start % 64, 0, "{name}");
            let size = match name.strip_prefix("archive/data/") {
                Some(key) => sizes[key.parse::<usize>().unwrap()] * 4,
                None => {
                    let mut zip = zip::ZipArchive::new(Cursor::new(bytes.as_slice())).unwrap();
                    zip.by_name(name).unwrap().size() as usize
                }
            };
            data_starts.insert(name.to_string(), start);
            pos = start + size;
            if size > 0 {
                assert_eq!(flags, 0x0808, "{name}");
                assert_eq!(le32(pos), 0x0807_4b50, "{name}: data descriptor");
                pos += 16;
            } else {
                assert_eq!(flags, 0x0800, "{name}: no descriptor for an empty entry");
            }
        }
        assert_eq!(le32(pos), 0x0201_4b50, "central directory follows the entries");

        // torch.serialization._load's _get_offset, from data/0 on.
        let mut current = data_starts["archive/data/0"];
        for (key, &n) in sizes.iter().enumerate() {
            let name = format!("archive/data/{key}");
            let storage = if key == 0 {
                current
            } else {
                let start = current + 30 + name.len() + 4;
                start.div_ceil(64) * 64
            };
            assert_eq!(storage, data_starts[&name], "{name}");
            current = storage + n * 4 + if n > 0 { 16 } else { 0 };
        }

        // The end records: ZIP64 record, locator, classic record, as miniz writes them.
        let eocd = bytes.len() - 22;
        assert_eq!(le32(eocd), 0x0605_4b50);
        assert_eq!(le32(eocd - 20), 0x0706_4b50);
        assert_eq!(le32(eocd - 20 - 56), 0x0606_4b50);
        assert_eq!(le16(eocd + 10), 6 + sizes.len());
    }
}
