//! A streaming safetensors writer: the header first (JSON, its length as 8 little-endian bytes, padded with
//! spaces to a multiple of 8), then each tensor's elements in logical row-major order, copied through the
//! shared staging buffer. The file is written under a temporary name and renamed when complete, so it
//! appears whole or not at all.

use super::copy::{copy_logical, CopyError};
use super::json::{push_int, push_ints, push_key, push_str};
use super::source::Reader;
use super::tensors::{st_dtype, st_shape, DumpTensor};
use crate::abi::dlpack::{device_type, TensorDesc};
use crate::os::fsio::{self, DirectError, File};

/// Files up to this size (header and tensors) are assembled in memory and written with one `write(2)`.
const SMALL_FILE_BYTES: u64 = 64 * 1024;

/// Why a file could not be written: (what failed, the reason). A write error stops dumping; a read error
/// only leaves the tensor out.
pub enum FileError {
    /// Creating, writing or renaming the file failed (full disk, unwritable folder...).
    Write(String),
}

/// The header of a file holding `tensors` (those with `not_dumped == None`), in order.
fn header(tensors: &[&DumpTensor], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut h = Vec::with_capacity(256 + 128 * tensors.len());
    h.extend_from_slice(b"{\"__metadata__\": {");
    for (i, (k, v)) in metadata.iter().enumerate() {
        if i > 0 {
            h.extend_from_slice(b", ");
        }
        push_key(&mut h, k);
        push_str(&mut h, v.as_bytes());
    }
    h.push(b'}');
    let mut offset = 0u64;
    for t in tensors {
        let Ok(d) = &t.desc else { continue };
        let Some((name, _)) = st_dtype(d.dtype) else { continue };
        h.extend_from_slice(b", ");
        push_key(&mut h, &t.key);
        h.extend_from_slice(b"{\"dtype\": ");
        push_str(&mut h, name.as_bytes());
        h.extend_from_slice(b", \"shape\": ");
        push_ints(&mut h, &st_shape(d));
        h.extend_from_slice(b", \"data_offsets\": [");
        push_int(&mut h, offset);
        offset += t.nbytes();
        h.extend_from_slice(b", ");
        push_int(&mut h, offset);
        h.extend_from_slice(b"]}");
    }
    h.push(b'}');
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    h
}

/// Writes `path` with the tensors of `tensors` that are to be dumped; a tensor whose memory cannot be read is
/// marked not dumped and the file is written again without it.
pub fn write_file(
    path: &str,
    tensors: &mut [DumpTensor],
    metadata: &[(&str, &str)],
    reader: &mut Reader,
) -> Result<(), FileError> {
    let tmp = format!("{path}.tmp");
    loop {
        let chosen: Vec<usize> = (0..tensors.len()).filter(|&i| tensors[i].not_dumped.is_none()).collect();
        let list: Vec<&DumpTensor> = chosen.iter().map(|&i| &tensors[i]).collect();
        let h = header(&list, metadata);
        let result = write_once(&tmp, &h, &list, reader);
        match result {
            Ok(()) => return fsio::rename(&tmp, path).map_err(|e| FileError::Write(format!("{path}: {e}"))),
            Err((_, CopyError::Write(e))) => {
                fsio::unlink(&tmp);
                return Err(FileError::Write(format!("{tmp}: {e}")));
            }
            Err((i, CopyError::Read(reason))) => {
                fsio::unlink(&tmp);
                tensors[chosen[i]].not_dumped = Some(reason);
            }
        }
    }
}

/// One attempt: Err((index in `list`, error)).
fn write_once(tmp: &str, header: &[u8], list: &[&DumpTensor], reader: &mut Reader) -> Result<(), (usize, CopyError)> {
    let mut file = File::create_new(tmp).map_err(|e| (0, CopyError::Write(e)))?;
    let mut prefix = Vec::with_capacity(8 + header.len());
    prefix.extend_from_slice(&(header.len() as u64).to_le_bytes());
    prefix.extend_from_slice(header);
    // Small tensors go out with the header in one write(2) (a small call then costs one write per file).
    let mut first_big = list.len();
    for (i, t) in list.iter().enumerate() {
        if prefix.len() as u64 + t.nbytes() > SMALL_FILE_BYTES {
            first_big = i;
            break;
        }
        let Ok(d) = &t.desc else { continue };
        let Some((_, eb)) = st_dtype(d.dtype) else { continue };
        if t.nbytes() == 0 {
            continue;
        }
        let mut write = |bytes: &[u8]| {
            prefix.extend_from_slice(bytes);
            Ok(())
        };
        reader
            .with_source(d, |src, staging| {
                copy_logical(src, d.first_element() as u64, d.shape(), d.strides(), eb, staging, &mut write)
            })
            .map_err(|e| (i, e))?;
    }
    file.write_all(&prefix).map_err(|e| (0, CopyError::Write(e)))?;
    for (i, t) in list.iter().enumerate().skip(first_big) {
        let Ok(d) = &t.desc else { continue };
        let Some((_, eb)) = st_dtype(d.dtype) else { continue };
        if t.nbytes() == 0 {
            continue;
        }
        if direct_host(d) {
            match file.write_from_host(d.first_element(), t.nbytes() as usize) {
                Ok(()) => continue,
                Err(DirectError::Unreadable) => return Err((i, CopyError::Read("host memory not readable"))),
                Err(DirectError::Write(e)) => return Err((i, CopyError::Write(e))),
            }
        }
        let mut write = |bytes: &[u8]| file.write_all(bytes);
        reader
            .with_source(d, |src, staging| {
                copy_logical(src, d.first_element() as u64, d.shape(), d.strides(), eb, staging, &mut write)
            })
            .map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Whether the tensor's bytes can be written straight from host memory: plain host memory (pinned host memory
/// only outside captures, after its stream was synchronised by an earlier device read, so it takes the staging
/// path) and the elements compact in row-major order.
fn direct_host(d: &TensorDesc) -> bool {
    if d.device.device_type != device_type::CPU {
        return false;
    }
    let mut expect = 1i64;
    for (&n, &s) in d.shape().iter().zip(d.strides()).rev() {
        if n == 1 {
            continue;
        }
        if s != expect {
            return false;
        }
        expect = expect.saturating_mul(n);
    }
    true
}
