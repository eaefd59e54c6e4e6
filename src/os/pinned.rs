//! The page-locked host memory of the graph statistics arena: one `cuMemAllocHost_v2` block, handed out in
//! spans that are never given back (a captured graph may be replayed until the process exits). The only
//! code that turns the block's address into Rust slices. The block itself comes from the driver
//! (`graph::arena`), and the copies into a span are enqueued by `abi::cuda_driver::Driver::copy_into_span`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Alignment of every span (a cache line).
const ALIGN: usize = 64;

struct Block {
    base: usize,
    size: usize,
    used: AtomicUsize,
}

static BLOCK: OnceLock<Block> = OnceLock::new();

/// A span of the arena: `len` bytes of page-locked memory, valid until the process exits.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    addr: usize,
    len: usize,
}

/// Installs the arena: `size` bytes at `base`, from `cuMemAllocHost_v2` (or `base == 0` for an empty arena).
/// Returns false when an arena was installed already.
pub fn install(base: usize, size: usize) -> bool {
    let size = if base == 0 { 0 } else { size };
    BLOCK.set(Block { base, size, used: AtomicUsize::new(0) }).is_ok()
}

/// Whether an arena is installed.
pub fn installed() -> bool {
    BLOCK.get().is_some()
}

/// Takes `len` bytes from the arena; None when they do not fit what is left (or no arena is installed).
pub fn reserve(len: usize) -> Option<Span> {
    let block = BLOCK.get()?;
    let need = len.checked_add(ALIGN - 1)? & !(ALIGN - 1);
    let mut used = block.used.load(Ordering::Relaxed);
    loop {
        let end = used.checked_add(need).filter(|&e| e <= block.size)?;
        match block.used.compare_exchange_weak(used, end, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some(Span { addr: block.base + used, len }),
            Err(now) => used = now,
        }
    }
}

impl Span {
    /// The span's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes the last copy into the span left there.
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: the span lies inside the page-locked block, which is never freed; the driver writes it only
        // from copy nodes of the one graph this span belongs to, and those run before the host function that
        // reads it (stream order), never while it reads.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// The span's first address (page-locked memory valid for `len()` bytes until the process exits; valid on
    /// the device too, with unified addressing: where a kernel node writes what the host function later reads
    /// with [`Span::bytes`]).
    pub fn addr(&self) -> usize {
        self.addr
    }
}
