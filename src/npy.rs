//! Minimal reader and writer for NumPy `.npy` files holding little-endian float32 arrays
//! (`<f4`, C order) — the format of PanDerm's feature matrices and reference tensors.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// A float32 array read from or written to a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyF32 {
    /// The array shape.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order.
    pub data: Vec<f32>,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{}: not a float32 .npy file: {msg}", path.display()))
}

/// Reads a `<f4` C-order `.npy` file.
pub fn read_f32(path: &Path) -> Result<NpyF32> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_f32(&bytes).map_err(|m| bad(path, m))
}

/// Parses the bytes of a `<f4` C-order `.npy` file already in memory; `path` names it in errors.
pub fn parse_f32_bytes(bytes: &[u8], path: &Path) -> Result<NpyF32> {
    parse_f32(bytes).map_err(|m| bad(path, m))
}

fn parse_f32(bytes: &[u8]) -> std::result::Result<NpyF32, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let field = |name: &str| -> Option<&str> {
        let i = header.find(&format!("'{name}'"))?;
        Some(header[i + name.len() + 2..].trim_start().trim_start_matches(':').trim_start())
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
    let shape_txt = &shape_txt[..shape_txt.find(')').ok_or("bad shape")?];
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape entry {s:?}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    if body.len() != n * 4 {
        return Err(format!("shape {shape:?} needs {} data bytes, file has {}", n * 4, body.len()));
    }
    let data = body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(NpyF32 { shape, data })
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
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("shape {shape:?} does not hold {} values", data.len()),
        ));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| Error::io(path, e))?);
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
            assert_eq!(read_f32(&p).unwrap(), NpyF32 { shape, data });
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
}
