//! Minimal reader and writer for NumPy `.npy` files holding little-endian float32 arrays
//! (`<f4`, C order) — the format of PanDerm's feature matrices and reference tensors.
//!
//! The reader treats the file as untrusted: the header is bounded ([`MAX_HEADER_LEN`]), every
//! size computed from it is checked for overflow, and the data size it declares is compared
//! with the file's length before anything is allocated for the data, so a crafted header
//! (a shape whose product wraps, a header length past the end of the file, a shape of 2^40
//! rows in a 100-byte file) is refused with an error naming the file, never a panic or an
//! allocation sized from the header.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Largest header accepted, in bytes. NumPy writes headers of a few dozen bytes (padded to
/// 64) and itself refuses ones over 10 000 unless told otherwise.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// A float32 array read from or written to a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyF32 {
    /// The array shape.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order.
    pub data: Vec<f32>,
}

/// A validated `.npy` float32 header: the array's shape and where its data lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The array shape.
    pub shape: Vec<usize>,
    /// Byte offset of the first value (magic, version, length field and header text).
    pub data_offset: u64,
    /// Bytes of data the shape declares (4 per value), computed without overflow.
    pub data_len: u64,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{}: not a float32 .npy file: {msg}", path.display()))
}

/// Reads a `<f4` C-order `.npy` file.
///
/// Only regular files are read; the header is parsed and the data size it declares checked
/// against the file's length before the data is read.
pub fn read_f32(path: &Path) -> Result<NpyF32> {
    let (header, mut file) = open_f32(path)?;
    let data_len = usize::try_from(header.data_len).map_err(|_| bad(path, "the array does not fit in memory"))?;
    let mut body = Vec::new();
    body.try_reserve_exact(data_len).map_err(|_| bad(path, format!("cannot allocate {data_len} bytes")))?;
    Read::take(&mut file, header.data_len).read_to_end(&mut body).map_err(|e| Error::io(path, e))?;
    if body.len() != data_len {
        return Err(bad(path, format!("the file ended after {} of {data_len} data bytes", body.len())));
    }
    Ok(NpyF32 { data: decode(&body), shape: header.shape })
}

/// Opens a `<f4` C-order `.npy` file, validates its header against the file's length, and
/// returns the header with the file positioned at the first value — for callers that stream
/// the data instead of holding it (e.g. `merge-features`).
pub fn open_f32(path: &Path) -> Result<(NpyHeader, File)> {
    // Regular files only, checked without blocking on a FIFO (fsutil::open_regular).
    let (mut file, file_len) = crate::fsutil::open_regular(path, ".npy file")?;
    let mut prefix = Vec::new();
    Read::take(&mut file, (12 + MAX_HEADER_LEN) as u64).read_to_end(&mut prefix).map_err(|e| Error::io(path, e))?;
    let header = parse_header(&prefix).map_err(|m| bad(path, m))?;
    let available = file_len.saturating_sub(header.data_offset);
    if available != header.data_len {
        return Err(bad(path, size_mismatch(&header, available)));
    }
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(header.data_offset)).map_err(|e| Error::io(path, e))?;
    Ok((header, file))
}

/// Parses the bytes of a `<f4` C-order `.npy` file already in memory; `path` names it in errors.
pub fn parse_f32_bytes(bytes: &[u8], path: &Path) -> Result<NpyF32> {
    parse_f32(bytes).map_err(|m| bad(path, m))
}

fn size_mismatch(h: &NpyHeader, available: u64) -> String {
    format!("shape {:?} needs {} data bytes, file has {available}", h.shape, h.data_len)
}

fn decode(body: &[u8]) -> Vec<f32> {
    body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn parse_f32(bytes: &[u8]) -> std::result::Result<NpyF32, String> {
    let h = parse_header(bytes)?;
    // `data_offset` ≤ 12 + MAX_HEADER_LEN ≤ bytes.len() once the header parsed.
    let body = &bytes[h.data_offset as usize..];
    if body.len() as u64 != h.data_len {
        return Err(size_mismatch(&h, body.len() as u64));
    }
    Ok(NpyF32 { data: decode(body), shape: h.shape })
}

/// Parses and validates the header at the start of `bytes` (which must hold at least the
/// whole header; the data may follow or not).
pub fn parse_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    if bytes.len() < 6 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing \\x93NUMPY magic".into());
    }
    if bytes.len() < 10 {
        return Err("truncated header".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(format!("header of {header_len} bytes is over the {MAX_HEADER_LEN}-byte limit"));
    }
    let end = start + header_len; // both bounded above: no overflow
    let header = bytes.get(start..end).ok_or_else(|| {
        format!("truncated header ({header_len} bytes declared, {} present)", bytes.len().saturating_sub(start))
    })?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let field = |name: &str| -> Option<&str> {
        let key = format!("'{name}'");
        let i = header.find(&key)?;
        Some(header[i + key.len()..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr").ok_or("no descr")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        return Err(format!("dtype {} is not little-endian float32", descr.split(',').next().unwrap_or("")));
    }
    if !field("fortran_order").ok_or("no fortran_order")?.starts_with("False") {
        return Err("Fortran order is not supported".into());
    }
    let shape_txt = field("shape").ok_or("no shape")?;
    let shape_txt = shape_txt.strip_prefix('(').ok_or("bad shape")?;
    let shape_txt = &shape_txt[..shape_txt.find(')').ok_or("bad shape: no closing parenthesis")?];
    // Parsed as u64 first, so that a dimension too large for this platform's usize (armv7) is
    // refused as an overflow like any other, not as a malformed entry.
    let dims = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|_| format!("bad shape entry {s:?}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // Checked in order: a product that overflows is refused even if a later dimension is 0.
    let overflows = || format!("shape {dims:?} overflows: it declares more data than any file can hold");
    let data_len = dims.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d)).ok_or_else(overflows)?;
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| overflows())?;
    Ok(NpyHeader { shape, data_offset: end as u64, data_len })
}

/// The `.npy` v1.0 header for a float32 C-order array of `shape` (padded to 64 bytes).
pub fn header_f32(shape: &[usize]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a float32 C-order array as `.npy`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if n != Some(data.len()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("shape {shape:?} does not hold {} values", data.len()),
        ));
    }
    let mut f = std::io::BufWriter::new(File::create(path).map_err(|e| Error::io(path, e))?);
    let mut write = || -> std::io::Result<()> {
        f.write_all(&header_f32(shape))?;
        for v in data {
            f.write_all(&v.to_le_bytes())?;
        }
        f.flush()
    };
    write().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for shape in [vec![3], vec![2, 3], vec![1, 3, 2, 2], vec![0, 4]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let p = dir.join("a.npy");
            write_f32(&p, &shape, &data).unwrap();
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!((bytes.len() - n * 4) % 64, 0, "header is 64-byte aligned");
            assert_eq!(read_f32(&p).unwrap(), NpyF32 { shape: shape.clone(), data: data.clone() });
            assert_eq!(parse_f32(&bytes).unwrap(), NpyF32 { shape, data });
        }
    }

    #[test]
    fn rejects_other_dtypes_and_truncation() {
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n";
        h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        h.extend_from_slice(dict.as_bytes());
        h.extend_from_slice(&[0; 8]);
        assert!(parse_f32(&h).unwrap_err().contains("float32"));
        let mut ok = header_f32(&[4]);
        ok.extend_from_slice(&[0; 12]);
        assert!(parse_f32(&ok).unwrap_err().contains("needs 16"));
    }

    fn with_dict(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Issue 12: shape products that overflow (and wrap to the body's length in a release
    /// build) are refused, in every arrangement; no crafted header panics.
    #[test]
    fn overflowing_shapes_are_refused() {
        let shape = |s: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {s}, }}\n");
        for (dims, body) in [
            (format!("(510, {})", 1u64 << 62), 0),               // rows · 2^62 · 4 wraps to 0
            (format!("({}, 4, 1)", (1u64 << 63) + 1), 16),       // wraps to exactly 16 bytes
            (format!("({}, {}, 0)", 1u64 << 40, 1u64 << 40), 0), // overflows before the 0
            (format!("({},)", u64::MAX), 0),                     // × 4 overflows
        ] {
            for version in [1, 2] {
                let bytes = with_dict(version, &shape(&dims), &vec![0; body]);
                let err = parse_f32(&bytes).unwrap_err();
                assert!(err.contains("overflows"), "{dims}: {err}");
            }
        }
    }

    #[test]
    fn crafted_headers_never_panic() {
        let mut v2_huge = b"\x93NUMPY\x02\x00".to_vec();
        v2_huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_f32(&v2_huge).unwrap_err().contains("limit"));
        let mut v1_past_end = b"\x93NUMPY\x01\x00".to_vec();
        v1_past_end.extend_from_slice(&1000u16.to_le_bytes());
        v1_past_end.extend_from_slice(b"{'descr': '<f4'");
        assert!(parse_f32(&v1_past_end).unwrap_err().contains("truncated header"));
        for bytes in [
            &b""[..],
            b"\x93NUMPY",
            b"\x93NUMPY\x01\x00\x05",
            b"\x93NUMPY\x02\x00\x00\x00\x00",
            b"\x93NUMPY\x09\x00\x00\x00",
            b"\x93NUMPY\x01\x00\x02\x00\xff\xfe",
            b"\x93NUMPY\x01\x00\x07\x00'shape'",
        ] {
            assert!(parse_f32(bytes).is_err(), "{bytes:?}");
        }
        // Every prefix of a valid file is refused without a panic.
        let mut ok = header_f32(&[2, 3]);
        ok.extend_from_slice(&[0; 24]);
        for i in 0..ok.len() {
            assert!(parse_f32(&ok[..i]).is_err(), "prefix {i}");
        }
        assert_eq!(parse_f32(&ok).unwrap().shape, vec![2, 3]);
    }

    #[test]
    fn a_huge_declared_shape_is_refused_before_reading_the_data() {
        let dir = std::env::temp_dir().join(format!("npy-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("huge.npy");
        let mut bytes = header_f32(&[1 << 20, 1 << 10]); // 2^32 bytes: overflows a 32-bit usize, not the u64 length
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&p, &bytes).unwrap();
        let err = read_f32(&p).unwrap_err().to_string();
        assert!(err.contains("huge.npy") && err.contains("needs 4294967296 data bytes, file has 64"), "{err}");
        let err = read_f32(&dir).unwrap_err().to_string();
        assert!(err.ends_with("is a folder, not a .npy file"), "{err}");
        #[cfg(unix)]
        {
            // A named pipe is refused at once (it used to block in `File::open`).
            let fifo = dir.join("fifo.npy");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let err = read_f32(&fifo).unwrap_err().to_string();
            assert!(err.ends_with("is a named pipe (FIFO), not a regular file"), "{err}");
        }
        let (h, _) = open_f32(&{
            let q = dir.join("ok.npy");
            write_f32(&q, &[2, 2], &[1.0; 4]).unwrap();
            q
        })
        .unwrap();
        assert_eq!((h.shape, h.data_offset, h.data_len), (vec![2, 2], header_f32(&[2, 2]).len() as u64, 16));
    }
}
