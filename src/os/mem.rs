//! Fault-tolerant reads of host memory.
//!
//! A pointer handed over by the host (a tensor descriptor, a shape array, a string) may be null, dangling or
//! unmapped. Dereferencing it directly could crash the host, so every such read is a copy the kernel checks:
//! `process_vm_readv` on our own pid, or `writev` into a pipe of ours and `readv` back (`pipe.rs`); the
//! kernel copies what is mapped and answers `EFAULT` for what is not. Which one is used depends on the
//! batch (see [`PIPE_MAX_BYTES`]); where `process_vm_readv` is refused (a seccomp policy answering `EPERM`, a
//! sandbox answering `ENOSYS`) every read goes through the pipe, after one line on stderr.

use super::pipe;
use super::scratch::{Reset, ScratchPool};
use super::sys;
use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Why a read of host memory failed; printed inside `<invalid ...>` and `[statistics error: ...]` lines.
pub type ReadError = &'static str;

/// The text used when the kernel refused the copy.
pub const UNREADABLE: ReadError = "unreadable memory";

/// Most ranges one `process_vm_readv` or `writev` takes (the kernel's `IOV_MAX`).
pub const IOV_MAX: usize = 1024;

/// Batches at most this large go through a pipe; larger ones through `process_vm_readv`, which copies large
/// ranges faster.
///
/// Measured here (x86-64, Linux 6.x, 48-byte ranges; `tests/fixtures/ffi/copy_costs.c`, printed by
/// `make bench`; this shared 2-core VM, 2026-12-07): `process_vm_readv` costs 1.3 us for one range and 2.2 us
/// for four (it pins each remote range), a `writev` into a pipe plus a `readv` back 0.76 us and 0.98 us, and
/// the `fstat` that checks the pipe is still ours 0.4 us, paid once per slot and section of shim work (see
/// `pipe.rs`). So every small batch, one range included, goes through the pipe: a level-3 call's three
/// dependent reads (the argument array, the descriptors, the shapes and strides) cost one `fstat` and three
/// `writev` + `readv` pairs. For one large range the pipe loses (64 KiB: 11.1 us against 5.7 us; 4 MiB:
/// 0.9 ms against 0.35 ms). An earlier run on a quieter day measured one range at 0.55-1.45 us through
/// `process_vm_readv` against 0.65-1.2 us through the pipe with its `fstat`: the pipe wins or ties there too.
pub const PIPE_MAX_BYTES: usize = 32 * 1024;

/// One range of a scatter read: `len` bytes at host address `addr`, copied to `dst[off..off + len]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Piece {
    /// Host address.
    pub addr: usize,
    /// Offset in the destination buffer.
    pub off: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Copies `dst.len()` bytes from address `addr` of this process into `dst`, or fails without touching the
/// host if any byte of the range is not readable.
pub fn read_bytes(addr: usize, dst: &mut [u8]) -> Result<(), ReadError> {
    if dst.is_empty() {
        return Ok(());
    }
    if addr == 0 {
        return Err("null pointer");
    }
    let mut ok = [false];
    let len = dst.len();
    read_scatter(dst, &[Piece { addr, off: 0, len }], &mut ok);
    if ok[0] {
        Ok(())
    } else {
        Err(UNREADABLE)
    }
}

/// Reads every piece into `dst` with as few system calls as the kernel allows: `ok[i]` tells whether
/// `pieces[i]` was read whole. A piece outside `dst`, a null address or a range that wraps the address space
/// is reported unread, never read.
///
/// System calls, when every piece is readable: one `process_vm_readv` per group of [`IOV_MAX`] pieces, or
/// (through a pipe, for batches of at most [`PIPE_MAX_BYTES`]) one `writev` + one `readv` per group of
/// [`IOV_MAX`] pieces and 64 KiB (the pipe's capacity), plus one `fstat` per pipe and section of shim work. Each unreadable piece costs at most one
/// more call (the copy resumes after it).
pub fn read_scatter(dst: &mut [u8], pieces: &[Piece], ok: &mut [bool]) {
    let n = pieces.len().min(ok.len());
    for i in 0..n {
        let p = pieces[i];
        let inside = p.off.checked_add(p.len).is_some_and(|end| end <= dst.len());
        let addressable = p.addr.checked_add(p.len).is_some();
        ok[i] = inside && addressable && (p.addr != 0 || p.len == 0);
    }
    let mut start = 0;
    while start < n {
        // The next batch: up to IOV_MAX pieces; small batches go through the pipe.
        let mut end = start;
        let mut bytes = 0usize;
        while end < n && end - start < IOV_MAX {
            bytes = bytes.saturating_add(pieces[end].len);
            end += 1;
        }
        let route = choose(bytes);
        copy_batch(route, dst, &pieces[start..end], &mut ok[start..end]);
        start = end;
    }
}

/// The kernel-checked copy used for one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `process_vm_readv` on our own pid.
    VmReadv,
    /// `writev` into a pipe of ours and `readv` back.
    Pipe,
}

fn choose(bytes: usize) -> Route {
    let vm_ok = vm_readv_allowed();
    if !vm_ok || (bytes <= PIPE_MAX_BYTES && pipe::available()) {
        Route::Pipe
    } else {
        Route::VmReadv
    }
}

fn copy_batch(route: Route, dst: &mut [u8], pieces: &[Piece], ok: &mut [bool]) {
    match route {
        Route::Pipe => {
            let mut counter = |k: u64| count_calls(k);
            let mut pipe = pipe::checkout(&mut counter);
            if let Err(why) = pipe {
                // No pipe now: `process_vm_readv` where it is allowed (it may be found refused only now, by a
                // thread's first read), else wait for a pipe that is only busy.
                if vm_readv_allowed() && vm_batch(dst, pieces, ok) {
                    return;
                }
                if why == pipe::NoPipe::Busy {
                    pipe = wait_for_a_pipe(&mut counter);
                }
            }
            match pipe {
                Ok(mut p) => pipe_batch(&mut p, dst, pieces, ok),
                Err(_) => ok.iter_mut().for_each(|o| *o = false),
            }
        }
        Route::VmReadv => {
            if !vm_batch(dst, pieces, ok) {
                // Refused (seccomp, sandbox): the same batch again through a pipe.
                copy_batch(Route::Pipe, dst, pieces, ok);
            }
        }
    }
}

/// Yields to the threads holding the pipes until one comes back, at most [`PIPE_WAIT_TRIES`] times: where
/// `process_vm_readv` is refused, the pipes are the only route, and more threads than pipes may be reading at one
/// instant (or one thread may be taking the set over at the process's first read). The bound is for a signal
/// handler whose own thread holds the pipe it waits for: it gives up and its record says what it could not read.
fn wait_for_a_pipe(counter: &mut dyn FnMut(u64)) -> Result<pipe::Checkout, pipe::NoPipe> {
    let mut last = Err(pipe::NoPipe::Busy);
    for _ in 0..PIPE_WAIT_TRIES {
        std::thread::yield_now();
        last = pipe::checkout(counter);
        if last.as_ref().err() != Some(&pipe::NoPipe::Busy) {
            break;
        }
    }
    last
}

/// How many times a read yields waiting for a pipe (about 2 ms when nothing else runs, far longer than any
/// thread holds one).
const PIPE_WAIT_TRIES: usize = 10_000;

/// Copies the batch with `process_vm_readv`, resuming after each unreadable piece. False when the kernel
/// refused the call itself (then nothing was copied and the route is switched off for the process).
fn vm_batch(dst: &mut [u8], pieces: &[Piece], ok: &mut [bool]) -> bool {
    let mut scratch = IOVECS.take();
    let Iovecs { local, remote } = &mut *scratch;
    let base = dst.as_mut_ptr();
    let mut i = 0;
    while i < pieces.len() {
        if !ok[i] || pieces[i].len == 0 {
            i += 1;
            continue;
        }
        local.clear();
        remote.clear();
        let mut idx = 0;
        let first = i;
        let mut j = i;
        while j < pieces.len() && idx < IOV_MAX {
            let p = pieces[j];
            if ok[j] && p.len > 0 {
                // In bounds: `p.off + p.len <= dst.len()` was checked by read_scatter.
                local.push(libc::iovec { iov_base: base.wrapping_add(p.off).cast(), iov_len: p.len });
                remote.push(libc::iovec { iov_base: p.addr as *mut libc::c_void, iov_len: p.len });
                idx += 1;
            }
            j += 1;
        }
        count_calls(1);
        // SAFETY: each local iovec covers a piece of `dst`, which we own and borrow mutably; the kernel checks
        // the remote ones and stops at the first unreadable one. errno is saved and restored by the callers'
        // wrappers.
        let got = unsafe {
            libc::process_vm_readv(crate::os::process::pid(), local.as_ptr(), idx as _, remote.as_ptr(), idx as _, 0)
        };
        if got < 0 && refused(sys::errno()) {
            note_vm_readv_refused(sys::errno());
            return false;
        }
        let mut got = got.max(0) as usize;
        // Mark the pieces read in full; the one the copy stopped in failed; resume after it.
        let mut k = first;
        i = j;
        while k < j {
            let p = pieces[k];
            if ok[k] && p.len > 0 {
                if got >= p.len {
                    got -= p.len;
                } else {
                    ok[k] = false;
                    i = k + 1;
                    break;
                }
            }
            k += 1;
        }
    }
    true
}

/// Copies the batch through a pipe: `writev` from the host addresses (the kernel answers `EFAULT` for a
/// range it cannot read, or copies up to the fault) then `readv` of exactly what went in. Resumes after each
/// unreadable piece; a piece is read only if all its bytes went through.
fn pipe_batch(p: &mut pipe::Checkout, dst: &mut [u8], pieces: &[Piece], ok: &mut [bool]) {
    let mut scratch = IOVECS.take();
    let Iovecs { local, remote } = &mut *scratch;
    let base = dst.as_mut_ptr();
    // (piece, offset inside it) where the copy resumes.
    let (mut i, mut at) = (0usize, 0usize);
    // After an EFAULT of several iovecs, the next attempt takes only the piece where the copy stands: a pipe
    // drops the whole page in which the fault happened, so EFAULT says "unreadable within the first page's
    // worth of bytes", not which piece.
    let mut alone = false;
    while i < pieces.len() {
        if !ok[i] || pieces[i].len == 0 {
            i += 1;
            at = 0;
            continue;
        }
        local.clear();
        remote.clear();
        let mut room = pipe::CAPACITY;
        let mut j = i;
        let mut skip = at;
        while j < pieces.len() && local.len() < IOV_MAX && room > 0 && !(alone && j > i) {
            let q = pieces[j];
            if ok[j] && q.len > skip {
                let len = (q.len - skip).min(room);
                local.push(libc::iovec { iov_base: base.wrapping_add(q.off + skip).cast(), iov_len: len });
                remote.push(libc::iovec { iov_base: (q.addr + skip) as *mut libc::c_void, iov_len: len });
                room -= len;
            }
            skip = 0;
            j += 1;
        }
        count_calls(1);
        // SAFETY: the kernel reads the remote iovecs (host memory) and checks them, answering EFAULT; the
        // pipe is ours (checked at checkout).
        let wrote = unsafe { libc::writev(p.w, remote.as_ptr(), remote.len() as _) };
        if wrote < 0 {
            if sys::errno() == libc::EFAULT {
                if remote.len() > 1 {
                    alone = true;
                } else {
                    // The piece alone is unreadable from here: it fails, the copy resumes after it.
                    ok[i] = false;
                    i += 1;
                    at = 0;
                    alone = false;
                }
                continue;
            }
            // The pipe itself failed: give it up; what is left is unread.
            p.poison();
            ok[i..].iter_mut().for_each(|o| *o = false);
            return;
        }
        let wrote = wrote as usize;
        // Read back exactly `wrote` bytes into the local iovecs (trimmed to that length).
        let mut left = wrote;
        let mut used = 0;
        for v in local.iter_mut() {
            if left == 0 {
                break;
            }
            v.iov_len = v.iov_len.min(left);
            left -= v.iov_len;
            used += 1;
        }
        let mut pending = wrote;
        let mut first_iov = 0;
        while pending > 0 {
            count_calls(1);
            // SAFETY: the local iovecs cover pieces of `dst`, which we own and borrow mutably.
            let n = unsafe { libc::readv(p.r, local[first_iov..used].as_ptr(), (used - first_iov) as _) };
            if n <= 0 {
                p.poison();
                ok[i..].iter_mut().for_each(|o| *o = false);
                return;
            }
            let mut n = n as usize;
            pending -= n.min(pending);
            while n > 0 && first_iov < used {
                let v = &mut local[first_iov];
                if n >= v.iov_len {
                    n -= v.iov_len;
                    first_iov += 1;
                } else {
                    v.iov_base = v.iov_base.cast::<u8>().wrapping_add(n).cast();
                    v.iov_len -= n;
                    n = 0;
                }
            }
        }
        // Advance (i, at) by `wrote` bytes over the readable pieces.
        let start_piece = i;
        let mut left = wrote;
        while i < pieces.len() && left > 0 {
            if !ok[i] || pieces[i].len == 0 {
                i += 1;
                at = 0;
                continue;
            }
            let rest = pieces[i].len - at;
            if left >= rest {
                left -= rest;
                i += 1;
                at = 0;
            } else {
                at += left;
                left = 0;
            }
        }
        if i > start_piece {
            alone = false;
        }
        if wrote == 0 {
            // Nothing went in and no error: never loop; this piece counts as unreadable.
            ok[i] = false;
            i += 1;
            at = 0;
        }
    }
}

/// Scratch iovec arrays of one batched copy (pooled: no allocation per call in steady state).
#[derive(Default)]
struct Iovecs {
    local: Vec<libc::iovec>,
    remote: Vec<libc::iovec>,
}

// SAFETY: the iovecs are plain data describing memory of the thread that holds the lease; they are cleared
// before each use and never dereferenced by us.
unsafe impl Send for Iovecs {}

impl Reset for Iovecs {
    fn reset(&mut self) {
        self.local.clear();
        self.remote.clear();
    }
}

static IOVECS: ScratchPool<Iovecs, 32> = ScratchPool::new();

/// Whether an `errno` from `process_vm_readv` means the call itself is refused here.
fn refused(errno: i32) -> bool {
    matches!(errno, libc::EPERM | libc::ENOSYS)
}

/// 0: not probed yet; 1: allowed; 2: refused.
static VM_READV: AtomicU8 = AtomicU8::new(0);

/// Whether `process_vm_readv` may be used: probed once (a one-byte copy of our own stack) so that a policy
/// refusing it is noticed, with its one stderr line, before the first record.
fn vm_readv_allowed() -> bool {
    match VM_READV.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let probe = 0u8;
            let mut copy = 0u8;
            let local = libc::iovec { iov_base: (&mut copy as *mut u8).cast(), iov_len: 1 };
            let remote = libc::iovec { iov_base: (&probe as *const u8 as *mut u8).cast(), iov_len: 1 };
            count_calls(1);
            // SAFETY: both iovecs describe one byte on our own stack.
            let n = unsafe { libc::process_vm_readv(crate::os::process::pid(), &local, 1, &remote, 1, 0) };
            if n < 0 && refused(sys::errno()) {
                note_vm_readv_refused(sys::errno());
                return false;
            }
            let _ = VM_READV.compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed);
            VM_READV.load(Ordering::Relaxed) == 1
        }
    }
}

/// Switches `process_vm_readv` off for the process and says so once on stderr.
fn note_vm_readv_refused(errno: i32) {
    if VM_READV.swap(2, Ordering::Relaxed) != 2 {
        let line: &[u8] = if errno == libc::ENOSYS {
            b"flashlog: process_vm_readv is refused here (ENOSYS); reading host memory through a pipe instead\n"
        } else {
            b"flashlog: process_vm_readv is refused here (EPERM); reading host memory through a pipe instead\n"
        };
        super::signals::write_all(2, line);
    }
}

/// 0: not decided; 1: off; 2: counting (`FLASHLOG_TEST_COUNT_READS=1`).
static COUNTING: AtomicU8 = AtomicU8::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Counts `k` system calls made to read host memory, when `FLASHLOG_TEST_COUNT_READS=1` (a debug counter for
/// the tests: the total is printed on stderr at exit as `flashlog: read system calls: N`).
fn count_calls(k: u64) {
    let state = match COUNTING.load(Ordering::Relaxed) {
        0 => {
            let on = sys::getenv(c"FLASHLOG_TEST_COUNT_READS").is_some_and(|v| v == "1");
            if COUNTING.compare_exchange(0, if on { 2 } else { 1 }, Ordering::Relaxed, Ordering::Relaxed).is_ok() && on
            {
                // SAFETY: registering a plain function that only reads an atomic and writes to stderr.
                unsafe { libc::atexit(print_count) };
            }
            COUNTING.load(Ordering::Relaxed)
        }
        s => s,
    };
    if state == 2 {
        CALLS.fetch_add(k, Ordering::Relaxed);
    }
}

extern "C" fn print_count() {
    let mut line = b"flashlog: read system calls: ".to_vec();
    line.extend_from_slice(CALLS.load(Ordering::Relaxed).to_string().as_bytes());
    line.push(b'\n');
    super::signals::write_all(2, &line);
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

/// Reads the longest readable prefix of `out.len()` consecutive values of type `T` at `addr` into `out` and
/// returns how many whole values it holds (0 for a null address): a host array whose claimed length runs
/// past mapped memory gives what is mapped, never a fault. One system call when the range lies in at most
/// two pages; `T` must be a `#[repr(C)]` plain-old-data type whose every bit pattern is valid.
pub fn read_pod_prefix<T: Copy>(addr: usize, out: &mut [T]) -> usize {
    const PAGE: usize = 4096;
    let len = std::mem::size_of_val(out);
    if addr == 0 || len == 0 {
        return 0;
    }
    let Some(end) = addr.checked_add(len) else { return 0 };
    // SAFETY: reinterpreting a `[T]` we own as bytes; every `T` used here accepts any byte pattern.
    let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), len) };
    // One piece per page: the first unreadable page ends the prefix.
    let mut pieces = [Piece::default(); 64];
    let mut ok = [false; 64];
    let (mut at, mut n) = (addr, 0);
    while at < end && n < pieces.len() {
        let stop = (at / PAGE + 1).saturating_mul(PAGE).min(end);
        pieces[n] = Piece { addr: at, off: at - addr, len: stop - at };
        n += 1;
        at = stop;
    }
    read_scatter(bytes, &pieces[..n], &mut ok[..n]);
    let readable: usize = pieces[..n].iter().zip(&ok[..n]).take_while(|(_, &ok)| ok).map(|(p, _)| p.len).sum();
    readable / std::mem::size_of::<T>().max(1)
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
    out.resize(max, 0);
    let (len, truncated) = read_c_str_into(addr, out)?;
    out.truncate(len);
    Ok(truncated)
}

/// Reads a NUL-terminated string at `addr` into `buf` (at most `buf.len()` bytes, without the NUL): (its
/// length, whether it was longer). One read per page the string touches (never past the end of a page
/// before the string is known to go on, so a string that ends just before an unmapped page still reads).
pub fn read_c_str_into(addr: usize, buf: &mut [u8]) -> Result<(usize, bool), ReadError> {
    let max = buf.len();
    let mut len = 0;
    let mut at = addr;
    loop {
        if len == max {
            // Full: the string was longer only if the next byte is not its NUL.
            let mut next = [0u8; 1];
            read_bytes(at, &mut next)?;
            return Ok((len, next[0] != 0));
        }
        let n = (max - len).min(4096 - (at % 4096));
        read_bytes(at, &mut buf[len..len + n])?;
        if let Some(nul) = memchr::memchr(0, &buf[len..len + n]) {
            return Ok((len + nul, false));
        }
        len += n;
        at = at.checked_add(n).ok_or(UNREADABLE)?;
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
    fn prefix_stops_at_the_first_unmapped_page() {
        // SAFETY: a private anonymous mapping of two pages, the second made inaccessible, unmapped at the end.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let base = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            let base = base as usize;
            assert_eq!(libc::mprotect((base + page) as *mut libc::c_void, page, libc::PROT_NONE), 0);
            let first = base + page - 3 * 16;
            std::slice::from_raw_parts_mut(first as *mut u64, 6).copy_from_slice(&[1, 2, 3, 4, 5, 6]);
            let mut out = [[0u64; 2]; 10];
            assert_eq!(read_pod_prefix(first, &mut out), 3);
            assert_eq!(&out[..3], &[[1, 2], [3, 4], [5, 6]]);
            assert_eq!(read_pod_prefix(first, &mut out[..2]), 2);
            assert_eq!(read_pod_prefix(base + page, &mut out), 0);
            assert_eq!(read_pod_prefix(0, &mut out), 0);
            libc::munmap(base as *mut libc::c_void, 2 * page);
        }
    }

    #[test]
    fn null_and_unmapped_fail() {
        let mut dst = [0u8; 8];
        assert_eq!(read_bytes(0, &mut dst), Err("null pointer"));
        assert_eq!(read_bytes(8, &mut dst), Err(UNREADABLE));
    }

    /// Three pages with the middle one unreadable, filled with a pattern.
    fn holey() -> usize {
        // SAFETY: a private anonymous mapping of our own, never unmapped (the test process ends).
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as usize;
            for i in 0..3 * 4096 {
                *((p + i) as *mut u8) = (i % 251) as u8;
            }
            libc::mprotect((p + 4096) as *mut libc::c_void, 4096, libc::PROT_NONE);
            p
        }
    }

    #[test]
    fn both_routes_fail_exactly_the_unreadable_pieces() {
        let p = holey();
        let pieces = [
            Piece { addr: p, off: 0, len: 4096 },
            Piece { addr: p + 4096 - 8, off: 4096, len: 16 },
            Piece { addr: p + 2 * 4096 + 100, off: 4112, len: 100 },
            Piece { addr: p + 4096, off: 4212, len: 8 },
            Piece { addr: p + 8, off: 4220, len: 8 },
            Piece { addr: 0, off: 4228, len: 8 },
            Piece { addr: p + 2 * 4096, off: 4236, len: 4096 },
            Piece { addr: p, off: 9000, len: 8 },
        ];
        for route in [Route::Pipe, Route::VmReadv] {
            let mut dst = vec![0u8; 8400];
            let mut ok = [false; 8];
            for (i, q) in pieces.iter().enumerate() {
                ok[i] = q.off + q.len <= dst.len() && q.addr != 0;
            }
            copy_batch(route, &mut dst, &pieces, &mut ok);
            assert_eq!(ok, [true, false, true, false, true, false, true, false], "{route:?}");
            for (i, q) in pieces.iter().enumerate() {
                if ok[i] {
                    for k in 0..q.len {
                        assert_eq!(dst[q.off + k], ((q.addr - p + k) % 251) as u8, "{route:?} piece {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn large_reads_through_the_pipe() {
        let src: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut dst = vec![0u8; src.len()];
        let mut ok = [true];
        copy_batch(Route::Pipe, &mut dst, &[Piece { addr: src.as_ptr() as usize, off: 0, len: src.len() }], &mut ok);
        assert!(ok[0]);
        assert_eq!(dst, src);
        // Many pieces, more than IOV_MAX, through the public entry.
        let pieces: Vec<Piece> =
            (0..3000).map(|i| Piece { addr: src.as_ptr() as usize + i * 7, off: i * 5, len: 5 }).collect();
        let mut dst = vec![0u8; 15_000];
        let mut ok = vec![false; 3000];
        read_scatter(&mut dst, &pieces, &mut ok);
        assert!(ok.iter().all(|&o| o));
        assert_eq!(dst[5 * 1234 + 2], src[7 * 1234 + 2]);
    }

    #[test]
    fn c_str_truncates() {
        let s = b"hello world\0";
        let mut out = Vec::new();
        assert!(!read_c_str(s.as_ptr() as usize, 100, &mut out).unwrap());
        assert_eq!(out, b"hello world");
        assert!(read_c_str(s.as_ptr() as usize, 5, &mut out).unwrap());
        assert_eq!(out, b"hello");
        assert!(!read_c_str(s.as_ptr() as usize, 11, &mut out).unwrap());
        assert_eq!(out, b"hello world");
        // A string that ends just before an unreadable page reads; one that runs into it does not.
        let p = holey();
        let end = p + 4096 - 4;
        // SAFETY: the last bytes of the first (writable) page of our own mapping.
        unsafe { std::ptr::copy_nonoverlapping([b'a', b'b', b'c', 0].as_ptr(), end as *mut u8, 4) };
        assert!(!read_c_str(end, 100, &mut out).unwrap());
        assert_eq!(out, b"abc");
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(b"abcd".as_ptr(), end as *mut u8, 4) };
        assert_eq!(read_c_str(end, 100, &mut out), Err(UNREADABLE));
        assert!(read_c_str(end, 4, &mut out).is_err());
        assert!(read_c_str(end, 3, &mut out).unwrap());
    }
}
