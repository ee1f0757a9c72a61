//! The ZIP container `torch.save` writes (the miniz writer inside torch): stored entries, data
//! padded to 64-byte boundaries with a `FB` extra field, data descriptors, ZIP64 end records.
//! CRC-32 from `crc32fast`.

use std::io::{self, Write};

use super::{ALIGNMENT, ARCHIVE};

/// Sizes and offsets at or above this need ZIP64 fields (miniz's `MZ_UINT32_MAX`).
const U32_LIMIT: u64 = 0xFFFF_FFFF;

/// General purpose flag: names are UTF-8.
const FLAG_UTF8: u16 = 0x0800;
/// General purpose flag: sizes and CRC follow the data in a data descriptor.
const FLAG_DESCRIPTOR: u16 = 0x0008;

/// One entry as the central directory records it.
struct CentralEntry {
    name: String,
    flags: u16,
    crc: u32,
    size: u64,
    offset: u64,
}

/// The entry being written.
struct OpenEntry {
    name: String,
    size: u64,
    offset: u64,
    written: u64,
    crc: crc32fast::Hasher,
}

/// A ZIP writer reproducing the layout of the miniz writer inside `torch.save`
/// (`PyTorchStreamWriter`), byte for byte apart from the content.
///
/// Entries are stored. Each local header carries a `FB` extra field of `Z` bytes that pads
/// the entry's data to a multiple of 64 bytes (preceded by a ZIP64 field when the size or
/// the header offset needs one); a non-empty entry is followed by a data descriptor, its
/// local header holding zero CRC and sizes; versions, times and attributes are zero; and
/// the archive ends with a ZIP64 end-of-central-directory record and locator before the
/// classic end record. Torch relies on this: a file with `.format_version` ≥ 1 lets
/// `torch.load` compute storage offsets from the sizes alone (for `map_location="meta"`,
/// and for `mmap=True` with `torch.utils.serialization.config.load.calculate_storage_offsets`)
/// instead of reading each local header, so any other layout silently loads wrong bytes.
pub(super) struct MinizZip<W: Write> {
    out: W,
    pos: u64,
    entries: Vec<CentralEntry>,
    open: Option<OpenEntry>,
}

impl<W: Write> MinizZip<W> {
    pub(super) fn new(out: W) -> Self {
        Self { out, pos: 0, entries: Vec::new(), open: None }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// A whole record at once.
    pub(super) fn record(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.start(name, bytes.len() as u64)?;
        self.write_all(bytes)?;
        self.end()
    }

    /// Begin an entry whose data will be exactly `size` bytes.
    pub(super) fn start(&mut self, name: &str, size: u64) -> io::Result<()> {
        debug_assert!(self.open.is_none());
        let name = format!("{ARCHIVE}/{name}");
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "entry name too long"))?;
        let offset = self.pos;
        let big_size = size >= U32_LIMIT;
        let big_offset = offset >= U32_LIMIT;

        let mut extra = Vec::new();
        if big_size || big_offset {
            let mut data = Vec::new();
            if big_size {
                data.extend_from_slice(&size.to_le_bytes());
                data.extend_from_slice(&size.to_le_bytes());
            }
            if big_offset {
                data.extend_from_slice(&offset.to_le_bytes());
            }
            extra.extend_from_slice(&0x0001u16.to_le_bytes());
            extra.extend_from_slice(&(data.len() as u16).to_le_bytes());
            extra.extend_from_slice(&data);
        }
        // torch's getPadding: the FB field's 4-byte header always, then 0..63 'Z's.
        let unpadded = offset + 30 + u64::from(name_len) + extra.len() as u64 + 4;
        let padding = (ALIGNMENT - unpadded % ALIGNMENT) % ALIGNMENT;
        extra.extend_from_slice(b"FB");
        extra.extend_from_slice(&(padding as u16).to_le_bytes());
        extra.resize(extra.len() + padding as usize, b'Z');

        let flags = FLAG_UTF8 | if size > 0 { FLAG_DESCRIPTOR } else { 0 };
        let mut header = Vec::with_capacity(30 + name.len() + extra.len());
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // version needed
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        header.extend_from_slice(&0u16.to_le_bytes()); // time
        header.extend_from_slice(&0u16.to_le_bytes()); // date
        header.extend_from_slice(&0u32.to_le_bytes()); // crc: in the descriptor
        let local_size: u32 = if big_size { u32::MAX } else { 0 };
        header.extend_from_slice(&local_size.to_le_bytes()); // compressed size
        header.extend_from_slice(&local_size.to_le_bytes()); // uncompressed size
        header.extend_from_slice(&name_len.to_le_bytes());
        header.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        header.extend_from_slice(name.as_bytes());
        header.extend_from_slice(&extra);
        self.put(&header)?;
        debug_assert_eq!(self.pos % ALIGNMENT, 0);

        self.open = Some(OpenEntry { name, size, offset, written: 0, crc: crc32fast::Hasher::new() });
        Ok(())
    }

    /// Finish the open entry: check its length, write its data descriptor.
    pub(super) fn end(&mut self) -> io::Result<()> {
        let entry = self.open.take().expect("an open entry");
        if entry.written != entry.size {
            return Err(io::Error::other(format!(
                "entry {} declared {} bytes but {} were written",
                entry.name, entry.size, entry.written
            )));
        }
        let crc = entry.crc.finalize();
        let mut flags = FLAG_UTF8;
        if entry.size > 0 {
            flags |= FLAG_DESCRIPTOR;
            let mut descriptor = Vec::with_capacity(24);
            descriptor.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            descriptor.extend_from_slice(&crc.to_le_bytes());
            if entry.size >= U32_LIMIT || entry.offset >= U32_LIMIT {
                descriptor.extend_from_slice(&entry.size.to_le_bytes());
                descriptor.extend_from_slice(&entry.size.to_le_bytes());
            } else {
                descriptor.extend_from_slice(&(entry.size as u32).to_le_bytes());
                descriptor.extend_from_slice(&(entry.size as u32).to_le_bytes());
            }
            self.put(&descriptor)?;
        }
        self.entries.push(CentralEntry { name: entry.name, flags, crc, size: entry.size, offset: entry.offset });
        Ok(())
    }

    /// Write the central directory and the end records, then flush.
    pub(super) fn finish(mut self) -> io::Result<()> {
        let cd_offset = self.pos;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let big_size = e.size >= U32_LIMIT;
            let big_offset = e.offset >= U32_LIMIT;
            let mut extra = Vec::new();
            if big_size || big_offset {
                let mut data = Vec::new();
                if big_size {
                    data.extend_from_slice(&e.size.to_le_bytes());
                    data.extend_from_slice(&e.size.to_le_bytes());
                }
                if big_offset {
                    data.extend_from_slice(&e.offset.to_le_bytes());
                }
                extra.extend_from_slice(&0x0001u16.to_le_bytes());
                extra.extend_from_slice(&(data.len() as u16).to_le_bytes());
                extra.extend_from_slice(&data);
            }
            let size32 = if big_size { u32::MAX } else { e.size as u32 };
            let offset32 = if big_offset { u32::MAX } else { e.offset as u32 };
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // version made by
            h.extend_from_slice(&0u16.to_le_bytes()); // version needed
            h.extend_from_slice(&e.flags.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // method
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0u16.to_le_bytes()); // date
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment length
            h.extend_from_slice(&0u16.to_le_bytes()); // disk number
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            h.extend_from_slice(&offset32.to_le_bytes());
            h.extend_from_slice(e.name.as_bytes());
            h.extend_from_slice(&extra);
            self.put(&h)?;
        }
        let cd_size = self.pos - cd_offset;
        let count = entries.len() as u64;

        let zip64_end = self.pos;
        let mut t = Vec::with_capacity(56 + 20 + 22);
        t.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        t.extend_from_slice(&44u64.to_le_bytes()); // size of the rest of this record
        t.extend_from_slice(&0x031Eu16.to_le_bytes()); // version made by (as miniz)
        t.extend_from_slice(&45u16.to_le_bytes()); // version needed
        t.extend_from_slice(&0u32.to_le_bytes()); // this disk
        t.extend_from_slice(&0u32.to_le_bytes()); // central directory disk
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&cd_size.to_le_bytes());
        t.extend_from_slice(&cd_offset.to_le_bytes());
        // ZIP64 end of central directory locator.
        t.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&zip64_end.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        // Classic end of central directory record, fields clamped.
        let count16 = count.min(0xFFFF) as u16;
        t.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&count16.to_le_bytes());
        t.extend_from_slice(&count16.to_le_bytes());
        t.extend_from_slice(&(cd_size.min(U32_LIMIT) as u32).to_le_bytes());
        t.extend_from_slice(&(cd_offset.min(U32_LIMIT) as u32).to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.put(&t)?;
        self.out.flush()
    }
}

/// Data written between [`MinizZip::start`] and [`MinizZip::end`] goes to the open entry.
impl<W: Write> Write for MinizZip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let entry = self.open.as_mut().ok_or_else(|| io::Error::other("no open zip entry"))?;
        let n = self.out.write(buf)?;
        entry.crc.update(&buf[..n]);
        entry.written += n as u64;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
