//! Fault-tolerant reads of host memory.
//!
//! A pointer handed over by the host (a tensor descriptor, a shape array, a string) may be null, dangling or
//! unmapped. Dereferencing it directly could crash the host, so every such read goes through
//! `process_vm_readv` on our own pid: the kernel copies what is mapped and answers `EFAULT` for what is not.

use std::mem::{size_of, MaybeUninit};

/// Why a read of host memory failed; printed inside `<invalid ...>` and `[statistics error: ...]` lines.
pub type ReadError = &'static str;

/// The text used when the kernel refused the copy.
pub const UNREADABLE: ReadError = "unreadable memory";

/// Copies `dst.len()` bytes from address `addr` of this process into `dst`, or fails without touching the
/// host if any byte of the range is not readable.
pub fn read_bytes(addr: usize, dst: &mut [u8]) -> Result<(), ReadError> {
    if dst.is_empty() {
        return Ok(());
    }
    if addr == 0 {
        return Err("null pointer");
    }
    let mut done = 0usize;
    while done < dst.len() {
        let local = libc::iovec { iov_base: dst[done..].as_mut_ptr().cast(), iov_len: dst.len() - done };
        let remote = libc::iovec { iov_base: (addr + done) as *mut libc::c_void, iov_len: dst.len() - done };
        // SAFETY: `local` describes memory we own (`dst`); `remote` is only read by the kernel, which checks it
        // and returns EFAULT instead of faulting. errno is saved and restored by the callers' wrappers.
        let n = unsafe { libc::process_vm_readv(super::sys::pid(), &local, 1, &remote, 1, 0) };
        if n <= 0 {
            return Err(UNREADABLE);
        }
        done += n as usize;
    }
    Ok(())
}

/// Most ranges [`read_batch`] reads with one system call.
pub const BATCH_MAX: usize = 32;

/// Reads several ranges with as few system calls as possible (one when all are readable): `ok[i]` tells
/// whether `ranges[i]` was read. A system call costs far more than the copy, and a level-3 record needs a
/// descriptor, a shape and strides per tensor, so batching is what keeps the record cheap.
pub fn read_batch(ranges: &mut [(usize, &mut [u8])], ok: &mut [bool]) {
    let n = ranges.len().min(ok.len());
    let mut start = 0;
    while start < n {
        let end = n.min(start + BATCH_MAX);
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        let mut local = [empty; BATCH_MAX];
        let mut remote = [empty; BATCH_MAX];
        for (i, (addr, dst)) in ranges[start..end].iter_mut().enumerate() {
            local[i] = libc::iovec { iov_base: dst.as_mut_ptr().cast(), iov_len: dst.len() };
            remote[i] = libc::iovec { iov_base: *addr as *mut libc::c_void, iov_len: dst.len() };
        }
        let count = end - start;
        // SAFETY: each local iovec covers a buffer we own; the kernel checks the remote ones and stops at the
        // first unreadable one (partial transfers are reported at iovec granularity).
        let got = unsafe {
            libc::process_vm_readv(super::sys::pid(), local.as_ptr(), count as _, remote.as_ptr(), count as _, 0)
        };
        let mut got = got.max(0) as usize;
        let mut next = start;
        for (i, (addr, dst)) in ranges[start..end].iter().enumerate() {
            if *addr != 0 && got >= dst.len() {
                got -= dst.len();
                ok[start + i] = true;
                next = start + i + 1;
            } else {
                break;
            }
        }
        if next < end {
            // ranges[next] failed (or is null): mark it and go on with the ones after it.
            ok[next] = false;
            next += 1;
        }
        start = next;
    }
}

/// Reads one plain-old-data value of type `T` at `addr` (for `#[repr(C)]` mirrors of foreign structs whose
/// every bit pattern is valid).
pub fn read_pod<T: Copy>(addr: usize) -> Result<T, ReadError> {
    let mut value = MaybeUninit::<T>::zeroed();
    // SAFETY: the slice covers exactly the bytes of `value`, which lives on our stack.
    let bytes = unsafe { std::slice::from_raw_parts_mut(value.as_mut_ptr().cast::<u8>(), size_of::<T>()) };
    read_bytes(addr, bytes)?;
    // SAFETY: every `T` used with this function is a `#[repr(C)]` struct of integers and pointers, for which
    // any bit pattern is a valid value; all bytes were written by the read above.
    Ok(unsafe { value.assume_init() })
}

/// Reads `out.len()` consecutive `i64` values (a shape or strides array) at `addr`.
pub fn read_i64s(addr: usize, out: &mut [i64]) -> Result<(), ReadError> {
    // SAFETY: reinterpreting an `[i64]` we own as bytes; any byte pattern is a valid i64.
    let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(out)) };
    read_bytes(addr, bytes)
}

/// Reads a NUL-terminated string of at most `max` bytes at `addr` into `out` (without the NUL). Returns
/// whether the string was longer than `max` (then `out` holds its first `max` bytes).
pub fn read_c_str(addr: usize, max: usize, out: &mut Vec<u8>) -> Result<bool, ReadError> {
    out.clear();
    let mut chunk = [0u8; 64];
    let mut at = addr;
    loop {
        // Never read past the end of the page in one go, so a string that ends just before an unmapped page
        // still reads.
        let n = chunk.len().min(4096 - (at % 4096));
        read_bytes(at, &mut chunk[..n])?;
        let nul = memchr::memchr(0, &chunk[..n]);
        let piece = &chunk[..nul.unwrap_or(n)];
        let room = max - out.len();
        if piece.len() > room {
            out.extend_from_slice(&piece[..room]);
            return Ok(true);
        }
        out.extend_from_slice(piece);
        if nul.is_some() {
            return Ok(false);
        }
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory() {
        let src = [1u8, 2, 3, 4];
        let mut dst = [0u8; 4];
        read_bytes(src.as_ptr() as usize, &mut dst).unwrap();
        assert_eq!(dst, src);
    }

    #[test]
    fn null_and_unmapped_fail() {
        let mut dst = [0u8; 8];
        assert_eq!(read_bytes(0, &mut dst), Err("null pointer"));
        assert_eq!(read_bytes(8, &mut dst), Err(UNREADABLE));
    }

    #[test]
    fn batch_reads_around_failures() {
        let a = [1u8; 8];
        let b = [2u8; 8];
        let (mut x, mut y, mut z) = ([0u8; 8], [0u8; 8], [0u8; 8]);
        let mut ranges: [(usize, &mut [u8]); 3] =
            [(a.as_ptr() as usize, &mut x), (8, &mut y), (b.as_ptr() as usize, &mut z)];
        let mut ok = [false; 3];
        read_batch(&mut ranges, &mut ok);
        assert_eq!(ok, [true, false, true]);
        assert_eq!((x, z), ([1u8; 8], [2u8; 8]));
    }

    #[test]
    fn c_str_truncates() {
        let s = b"hello world\0";
        let mut out = Vec::new();
        assert!(!read_c_str(s.as_ptr() as usize, 100, &mut out).unwrap());
        assert_eq!(out, b"hello world");
        assert!(read_c_str(s.as_ptr() as usize, 5, &mut out).unwrap());
        assert_eq!(out, b"hello");
    }
}
