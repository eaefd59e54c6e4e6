//! Strided tensor walker: turns (base, shape, strides) into reads through a [`ByteSource`] and
//! runs fed to an [`Accumulator`].
//!
//! Pure given the reader: the caller's ABI layer implements [`ByteSource`] (host copy, device
//! copy through the driver, ...). Memory use is the caller's staging buffer and a few fixed-size
//! stack arrays; it never grows with the tensor.
//!
//! Plan: drop size-1 dimensions, turn negative strides into positive ones by moving the base to
//! the lowest element (the set of addresses is unchanged and statistics ignore order), take
//! stride-0 (broadcast) dimensions out as a repeat factor, sort the rest by stride and merge
//! dimensions that continue each other. A dense view (contiguous, transposed, permuted) thus
//! becomes one run of stride 1, streamed in staging-sized chunks. Otherwise the innermost run
//! plus as many next dimensions (or tiles of the next one) as fit the staging buffer, bridging
//! gaps of at most `READ_COST_BYTES`, form a block read in one call, and the runs inside it are
//! fed from the staging buffer; a run larger than the staging buffer is read in chunks. A run
//! whose elements lie more than `READ_COST_BYTES` apart is read element by element instead.

#![forbid(unsafe_code)]

use super::compute::{Accumulator, ElemKind};

/// Where the walker reads tensor memory from; implemented by the ABI layer.
pub trait ByteSource {
    /// Copy `dst.len()` bytes from address `addr`; Err(reason) if unreadable.
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str>;
}

/// Most dimensions the walker handles after size-1 dimensions are dropped (each remaining one
/// has at least 2 elements, so more than 63 could not be addressed anyway).
pub const MAX_DIMS: usize = 64;

/// What one read call is taken to cost, in bytes of copying: the walker reads the gap between
/// two pieces of a view along with them rather than making a separate call, when the gap is at
/// most this long (a device copy costs several microseconds per call, a host read a system call).
const READ_COST_BYTES: u128 = 64 * 1024;

/// A view reduced to what the walker visits: (size, stride in elements) pairs, both positive, sizes >= 2,
/// unsorted; stride-0 (broadcast) dimensions taken out as `repeat`; the lowest address as `base`.
struct Normal {
    base: u64,
    dims: [(u64, u64); MAX_DIMS],
    nd: usize,
    repeat: u64,
    numel: u64,
    span: u128,
}

/// How much a view costs to walk, known before any read (`extent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Elements of the view (broadcast ones included).
    pub elements: u64,
    /// Elements the walker visits and feeds (stride-0 dimensions are counted once and multiplied).
    pub walked: u64,
    /// Bytes from the lowest to the end of the highest element visited.
    pub span: u128,
}

/// The [`Extent`] of a view, or the reason the walker could not address it; None for an empty view.
pub fn extent(base: u64, shape: &[i64], strides: &[i64], kind: ElemKind) -> Result<Option<Extent>, &'static str> {
    let n = normalize(base, shape, strides, kind.elem_bytes() as u128)?;
    Ok(n.map(|n| Extent { elements: n.numel, walked: n.numel / n.repeat, span: n.span }))
}

/// The view reduced as the walker reduces it before sorting: (lowest address, (size, stride in elements) pairs
/// with positive strides and sizes >= 2 in the view's order, broadcast repeat factor); None for an empty view.
/// The GPU route (`crate::gpu::plan`) starts from this.
pub fn reduced(
    base: u64,
    shape: &[i64],
    strides: &[i64],
    kind: ElemKind,
    dims_out: &mut [(u64, u64); MAX_DIMS],
) -> Result<Option<(u64, usize, u64)>, &'static str> {
    let n = normalize(base, shape, strides, kind.elem_bytes() as u128)?;
    Ok(n.map(|n| {
        *dims_out = n.dims;
        (n.base, n.nd, n.repeat)
    }))
}

fn normalize(base: u64, shape: &[i64], strides: &[i64], eb: u128) -> Result<Option<Normal>, &'static str> {
    if shape.len() != strides.len() {
        return Err("shape and strides differ in length");
    }
    if shape.iter().any(|&n| n < 0) {
        return Err("negative dimension size");
    }
    if shape.contains(&0) {
        return Ok(None);
    }
    // Normalise: (size, stride in elements), both positive, size >= 2.
    let mut dims = [(0u64, 0u64); MAX_DIMS];
    let mut nd = 0;
    let mut repeat: u64 = 1;
    let mut lowest = base as i128;
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        let n = n as u64;
        if s == 0 {
            repeat = repeat.checked_mul(n).ok_or("tensor too large")?;
            continue;
        }
        if s < 0 {
            let back = (s as i128 * eb as i128).checked_mul(n as i128 - 1);
            lowest = back.and_then(|b| lowest.checked_add(b)).ok_or("tensor address range overflows")?;
        }
        if nd == MAX_DIMS {
            return Err("too many dimensions");
        }
        dims[nd] = (n, s.unsigned_abs());
        nd += 1;
    }
    // Element count and highest byte must be addressable.
    let mut numel: u64 = repeat;
    let mut span: u128 = eb;
    for &(n, s) in dims[..nd].iter() {
        numel = numel.checked_mul(n).ok_or("tensor too large")?;
        span = (s as u128 * eb)
            .checked_mul(n as u128 - 1)
            .and_then(|d| span.checked_add(d))
            .ok_or("tensor address range overflows")?;
    }
    if lowest < 0 || lowest as u128 + span >= 1u128 << 64 {
        return Err("tensor address range overflows");
    }
    Ok(Some(Normal { base: lowest as u64, dims, nd, repeat, numel, span }))
}

/// Walk a tensor (first element at `base` = data + byte_offset; shape and strides in ELEMENTS;
/// strides already filled for compact row-major) through `src`, using `staging` (caller-provided,
/// e.g. 4 MiB; memory never grows with tensor size) and feed `acc`. Returns Err(reason) on the
/// first unreadable range, or for a shape the walker cannot address (negative size, address
/// arithmetic overflow, staging smaller than one element).
///
/// Empty tensors feed nothing (so `acc` finishes as `Stats::Empty`); 0-d tensors (empty `shape`)
/// are one element. `acc` should have been made for `kind`.
pub fn walk_tensor(
    src: &mut dyn ByteSource,
    base: u64,
    shape: &[i64],
    strides: &[i64],
    kind: ElemKind,
    staging: &mut [u8],
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let eb = kind.elem_bytes() as u128;
    if (staging.len() as u128) < eb && !shape.contains(&0) {
        return Err("staging buffer smaller than one element");
    }
    let Some(n) = normalize(base, shape, strides, eb)? else {
        return Ok(());
    };
    let Normal { mut dims, nd, repeat, base, .. } = n;
    let dims = &mut dims[..nd];
    // Sort by stride (insertion sort: at most 64 entries, no allocation).
    for i in 1..dims.len() {
        let mut j = i;
        while j > 0 && dims[j - 1].1 > dims[j].1 {
            dims.swap(j - 1, j);
            j -= 1;
        }
    }
    // Merge each dimension into the previous one when it continues it exactly.
    let mut m = 0;
    for i in 0..dims.len() {
        if m > 0 && dims[i].1 as u128 == dims[m - 1].1 as u128 * dims[m - 1].0 as u128 {
            dims[m - 1].0 *= dims[i].0;
        } else {
            dims[m] = dims[i];
            m += 1;
        }
    }
    let dims = &dims[..m];
    let mut w = Walk { src, eb: eb as u64, staging };
    if repeat == 1 {
        w.walk(base, dims, acc)
    } else {
        walk_repeated(&mut w, kind, base, dims, repeat, acc)
    }
}

/// Walks `dims` once into an accumulator of its own and adds it to `acc` `repeat` times (the broadcast
/// dimensions). Out of line, so that its second accumulator (2 KiB) is on the stack only when a tensor has
/// broadcast dimensions (a host thread may have as little as 16 KiB of stack).
#[inline(never)]
fn walk_repeated(
    w: &mut Walk<'_>,
    kind: ElemKind,
    base: u64,
    dims: &[(u64, u64)],
    repeat: u64,
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let mut sub = Accumulator::new(kind);
    w.walk(base, dims, &mut sub)?;
    acc.merge_repeated(&sub, repeat);
    Ok(())
}

/// The reader, element size and staging buffer of one walk.
struct Walk<'a> {
    src: &'a mut dyn ByteSource,
    eb: u64,
    staging: &'a mut [u8],
}

/// Next index of an odometer over `dims` (first dimension fastest), keeping `off` (elements)
/// in step; false once every index has wrapped back to zero.
fn advance(idx: &mut [u64], dims: &[(u64, u64)], off: &mut u64) -> bool {
    for (i, &(n, s)) in idx.iter_mut().zip(dims) {
        *i += 1;
        *off += s;
        if *i < n {
            return true;
        }
        *off -= n * s;
        *i = 0;
    }
    false
}

impl Walk<'_> {
    /// Walk normalised dimensions (sorted by stride, positive strides, sizes >= 2).
    ///
    /// The innermost dimension is the run. The block read in one call grows over the next
    /// dimensions while the gap it would bridge is at most `READ_COST_BYTES` and the block fits
    /// the staging buffer; a dimension that does not fit whole is cut into tiles that do.
    fn walk(&mut self, base: u64, dims: &[(u64, u64)], acc: &mut Accumulator) -> Result<(), &'static str> {
        let eb = self.eb as u128;
        if dims.is_empty() {
            // 0-d (or all dimensions of size 1): one element.
            return self.block(base, &[(1, 1)], acc);
        }
        let cap = self.staging.len() as u128;
        // A run whose elements lie further apart than a read costs is read element by element.
        let sparse = dims[0].1 as u128 * eb - eb > READ_COST_BYTES;
        let mut g = if sparse { 0 } else { 1 };
        let mut span = (dims[0].0 as u128 - 1) * dims[0].1 as u128 * eb + eb;
        let mut tile = 0u64;
        while g >= 1 && g < dims.len() {
            let (n, s) = (dims[g].0 as u128, dims[g].1 as u128 * eb);
            if s.saturating_sub(span) > READ_COST_BYTES || span > cap {
                break;
            }
            let whole = span + (n - 1) * s;
            if whole <= cap {
                span = whole;
                g += 1;
                continue;
            }
            let k = (cap - span) / s + 1;
            if k >= 2 {
                tile = k as u64;
                g += 1;
            }
            break;
        }
        let (inner, outer) = dims.split_at(g);
        let mut blk = [(1u64, 1u64); MAX_DIMS];
        blk[..g].copy_from_slice(inner);
        // A block of no dimensions is one element.
        let inner = &blk[..g.max(1)];
        let mut outer_idx = [0u64; MAX_DIMS];
        let mut outer_off = 0u64;
        loop {
            let addr = base + outer_off * self.eb;
            if tile == 0 {
                self.block(addr, inner, acc)?;
            } else {
                let (n, s) = inner[g - 1];
                let mut t = 0;
                while t < n {
                    let mut tiled = [(0u64, 0u64); MAX_DIMS];
                    tiled[..g].copy_from_slice(inner);
                    tiled[g - 1].0 = tile.min(n - t);
                    self.block(addr + t * s * self.eb, &tiled[..g], acc)?;
                    t += tile;
                }
            }
            if !advance(&mut outer_idx[..outer.len()], outer, &mut outer_off) {
                return Ok(());
            }
        }
    }

    /// Read the block of `dims` (the first being the run) starting at `addr` in one call and feed
    /// its runs; a lone run larger than the staging buffer is read in chunks instead.
    fn block(&mut self, addr: u64, dims: &[(u64, u64)], acc: &mut Accumulator) -> Result<(), &'static str> {
        let eb = self.eb;
        let (n0, s0) = dims[0];
        let bs0 = s0 * eb;
        let span: u64 = dims.iter().map(|&(n, s)| (n - 1) * s * eb).sum::<u64>() + eb;
        if span > self.staging.len() as u64 {
            return self.run_in_chunks(addr, n0, bs0, acc);
        }
        let block = &mut self.staging[..span as usize];
        self.src.read(addr, block)?;
        let mut idx = [0u64; MAX_DIMS];
        let mut off = 0u64;
        loop {
            acc.feed(&block[(off * eb) as usize..], n0 as usize, bs0 as usize);
            if !advance(&mut idx[1..dims.len()], &dims[1..], &mut off) {
                return Ok(());
            }
        }
    }

    /// One run of `n` elements `bs` bytes apart that does not fit the staging buffer: read and
    /// feed it a staging buffer at a time.
    fn run_in_chunks(&mut self, mut addr: u64, n: u64, bs: u64, acc: &mut Accumulator) -> Result<(), &'static str> {
        let eb = self.eb;
        let per_chunk = ((self.staging.len() as u64 - eb) / bs + 1).min(n);
        let mut left = n;
        while left > 0 {
            let k = per_chunk.min(left);
            let len = ((k - 1) * bs + eb) as usize;
            let dst = &mut self.staging[..len];
            self.src.read(addr, dst)?;
            acc.feed(dst, k as usize, bs as usize);
            left -= k;
            addr = addr.wrapping_add(k * bs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::compute::{Minifloat, Stats};
    use super::*;

    /// Simulated address space: `mem` mapped at `base`, an optional hole that fails, and a log of
    /// the reads.
    struct Mem {
        base: u64,
        mem: Vec<u8>,
        hole: Option<(u64, u64)>,
        reads: usize,
        largest: usize,
    }

    impl Mem {
        fn new(base: u64, mem: Vec<u8>) -> Self {
            Mem { base, mem, hole: None, reads: 0, largest: 0 }
        }
    }

    impl ByteSource for Mem {
        fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
            self.reads += 1;
            self.largest = self.largest.max(dst.len());
            let end = addr + dst.len() as u64;
            if let Some((a, b)) = self.hole {
                if addr < b && end > a {
                    return Err("hole");
                }
            }
            if addr < self.base || end > self.base + self.mem.len() as u64 {
                return Err("unmapped");
            }
            let off = (addr - self.base) as usize;
            dst.copy_from_slice(&self.mem[off..off + dst.len()]);
            Ok(())
        }
    }

    fn f32_mem(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| ((i as f32) * 0.5 - 7.0 + (i % 3) as f32 * 100.0).to_le_bytes()).collect()
    }

    /// Expected statistics of an f32 view, by visiting every index tuple and reading the element
    /// at base + sum(i * stride) * 4 directly from the buffer.
    fn naive_f32(mem: &Mem, first: u64, shape: &[i64], strides: &[i64]) -> Stats {
        let numel: i64 = shape.iter().product();
        if numel == 0 {
            return Stats::Empty;
        }
        let mut vals = Vec::new();
        for flat in 0..numel {
            let (mut rem, mut off) = (flat, 0i64);
            for d in (0..shape.len()).rev() {
                off += (rem % shape[d]) * strides[d];
                rem /= shape[d];
            }
            let a = (first as i64 + off * 4 - mem.base as i64) as usize;
            vals.push(f32::from_le_bytes(mem.mem[a..a + 4].try_into().unwrap()) as f64);
        }
        let nan = vals.iter().filter(|v| v.is_nan()).count() as u64;
        let inf = vals.iter().filter(|v| v.is_infinite()).count() as u64;
        Stats::Float {
            min: vals.iter().cloned().fold(f64::INFINITY, f64::min),
            max: vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            mean: vals.iter().sum::<f64>() / vals.len() as f64,
            nan_count: nan,
            inf_count: inf,
        }
    }

    fn walk(
        mem: &mut Mem,
        first: u64,
        shape: &[i64],
        strides: &[i64],
        kind: ElemKind,
        staging: usize,
    ) -> Result<Stats, &'static str> {
        let mut buf = vec![0u8; staging];
        mem.largest = 0;
        let mut acc = Accumulator::new(kind);
        walk_tensor(mem, first, shape, strides, kind, &mut buf, &mut acc)?;
        assert!(mem.largest <= staging, "read of {} > staging", mem.largest);
        Ok(acc.finish())
    }

    fn check(mem: &mut Mem, first: u64, shape: &[i64], strides: &[i64], staging: usize) -> usize {
        let want = naive_f32(mem, first, shape, strides);
        mem.reads = 0;
        let got = walk(mem, first, shape, strides, ElemKind::F32, staging).unwrap();
        let ctx = format!("shape {shape:?} strides {strides:?} staging {staging}");
        match (got, want) {
            (Stats::Empty, Stats::Empty) => {}
            (
                Stats::Float { min, max, mean, nan_count, inf_count },
                Stats::Float { min: wmin, max: wmax, mean: wmean, nan_count: wn, inf_count: wi },
            ) => {
                assert_eq!((min, max, nan_count, inf_count), (wmin, wmax, wn, wi), "{ctx}");
                assert!((mean - wmean).abs() <= 1e-9 * wmean.abs().max(1.0), "{ctx}: {mean} {wmean}");
            }
            (g, w) => panic!("{ctx}: {g:?} vs {w:?}"),
        }
        mem.reads
    }

    const BASE: u64 = 0x10_0000;

    #[test]
    fn contiguous_transposed_permuted() {
        let mut m = Mem::new(BASE, f32_mem(4 * 5 * 6));
        // Contiguous and permuted views are one linear stream: one read when it fits.
        assert_eq!(check(&mut m, BASE, &[4, 5, 6], &[30, 6, 1], 1 << 20), 1);
        assert_eq!(check(&mut m, BASE, &[6, 5, 4], &[1, 6, 30], 1 << 20), 1);
        assert_eq!(check(&mut m, BASE, &[5, 4, 6], &[6, 30, 1], 1 << 20), 1);
        assert_eq!(check(&mut m, BASE, &[120], &[1], 1 << 20), 1);
        // 2-D transpose.
        assert_eq!(check(&mut m, BASE, &[12, 10], &[1, 12], 1 << 20), 1);
        // Size-1 dimensions with arbitrary strides are ignored.
        assert_eq!(check(&mut m, BASE, &[1, 12, 1, 10], &[999, 10, -5, 1], 1 << 20), 1);
    }

    #[test]
    fn slice_with_offset_and_steps() {
        let mut m = Mem::new(BASE, f32_mem(10 * 12));
        // x[2:5, 3:9] of a 10x12 matrix.
        let first = BASE + (2 * 12 + 3) * 4;
        check(&mut m, first, &[3, 6], &[12, 1], 1 << 20);
        // x[1::3, ::4].
        check(&mut m, BASE + 12 * 4, &[3, 3], &[36, 4], 1 << 20);
        // A column: x[:, 5].
        check(&mut m, BASE + 5 * 4, &[10], &[12], 1 << 20);
        // Column slice of the transpose: x.T[2:4].
        check(&mut m, BASE + 2 * 4, &[2, 10], &[1, 12], 1 << 20);
    }

    #[test]
    fn broadcast_and_negative_strides() {
        let mut m = Mem::new(BASE, f32_mem(64));
        check(&mut m, BASE, &[5, 3], &[0, 1], 1 << 20);
        check(&mut m, BASE + 8, &[3, 5], &[1, 0], 1 << 20);
        check(&mut m, BASE + 8, &[4, 7, 2], &[0, 0, 0], 1 << 20);
        check(&mut m, BASE, &[2, 3, 4], &[12, 0, 1], 1 << 20);
        // x.flip(0) of 16 elements: first element is the last in memory.
        check(&mut m, BASE + 15 * 4, &[16], &[-1], 1 << 20);
        // Flip rows of a 4x8 matrix, then every other column reversed.
        check(&mut m, BASE + 3 * 8 * 4, &[4, 8], &[-8, 1], 1 << 20);
        check(&mut m, BASE + (3 * 8 + 7) * 4, &[4, 4], &[-8, -2], 1 << 20);
        // Broadcast of a negative-stride view.
        check(&mut m, BASE + 60, &[3, 4, 2], &[-4, 0, 1], 1 << 20);
        // Overlapping strides (as_strided): shape [3,3] strides [1,1].
        check(&mut m, BASE, &[3, 3], &[1, 1], 1 << 20);
        check(&mut m, BASE, &[2, 2, 2], &[1, 1, 5], 1 << 20);
    }

    #[test]
    fn scalar_and_empty() {
        let mut m = Mem::new(BASE, f32_mem(8));
        assert_eq!(check(&mut m, BASE + 12, &[], &[], 64), 1);
        let s = walk(&mut m, BASE + 12, &[], &[], ElemKind::F32, 64).unwrap();
        assert_eq!(s, Stats::Float { min: -5.5, max: -5.5, mean: -5.5, nan_count: 0, inf_count: 0 });
        m.reads = 0;
        assert_eq!(walk(&mut m, 0, &[3, 0, 2], &[0, 0, 0], ElemKind::F32, 64), Ok(Stats::Empty));
        assert_eq!(walk(&mut m, 0, &[0], &[1], ElemKind::I64, 64), Ok(Stats::Empty));
        assert_eq!(m.reads, 0);
        // All dimensions of size 1.
        check(&mut m, BASE + 4, &[1, 1], &[1, 1], 64);
    }

    #[test]
    fn larger_than_staging() {
        let mut m = Mem::new(BASE, f32_mem(64 * 9));
        // 256 f32 = 1 KiB through 64 bytes of staging: 16 reads of 64 bytes.
        assert_eq!(check(&mut m, BASE, &[256], &[1], 64), 16);
        assert_eq!(check(&mut m, BASE, &[16, 16], &[1, 16], 64), 16);
        // Staging not a multiple of the element size.
        check(&mut m, BASE, &[256], &[1], 70);
        // A strided run longer than the staging, then rows wider than it.
        check(&mut m, BASE, &[100], &[5], 64);
        check(&mut m, BASE, &[8, 40], &[64, 1], 64);
        check(&mut m, BASE, &[40, 8], &[1, 64], 64);
        // Stride larger than the staging itself: one element per read.
        assert_eq!(check(&mut m, BASE, &[9], &[64], 32), 9);
        // Staging of exactly one element.
        check(&mut m, BASE, &[3, 5], &[20, 3], 4);
        let mut buf = [0u8; 3];
        let mut acc = Accumulator::new(ElemKind::F32);
        let r = walk_tensor(&mut m, BASE, &[2], &[1], ElemKind::F32, &mut buf, &mut acc);
        assert!(r.is_err());
    }

    #[test]
    fn gaps_are_read_in_blocks() {
        let mut m = Mem::new(BASE, f32_mem(64 * 64));
        // x[:, :2] of a 64x64 matrix: 64 runs of 2, but one block read (span 16 KiB).
        assert_eq!(check(&mut m, BASE, &[64, 2], &[64, 1], 1 << 20), 1);
        // With a small staging, several rows per read.
        let reads = check(&mut m, BASE, &[64, 2], &[64, 1], 4096);
        assert!(reads <= 8, "{reads} reads");
    }

    #[test]
    fn sparse_runs_read_element_by_element() {
        let mut m = Mem::new(BASE, f32_mem(200_000));
        // Elements 256 KiB apart: three reads of 4 bytes, not one of 512 KiB.
        assert_eq!(check(&mut m, BASE, &[3], &[65536], 1 << 20), 3);
        assert_eq!(m.largest, 4);
        // A column of a wide matrix, and a transposed one.
        assert_eq!(check(&mut m, BASE + 8, &[3, 2], &[65536, 1], 1 << 20), 3);
        assert_eq!(check(&mut m, BASE + 8, &[2, 3], &[1, 65536], 1 << 20), 3);
        assert_eq!(check(&mut m, BASE, &[2, 3], &[40000, 65536], 1 << 20), 6);
    }

    #[test]
    fn unreadable_ranges() {
        let mut m = Mem::new(BASE, f32_mem(256));
        m.hole = Some((BASE + 512, BASE + 516));
        let r = walk(&mut m, BASE, &[256], &[1], ElemKind::F32, 64);
        assert_eq!(r, Err("hole"));
        let r = walk(&mut m, BASE, &[16, 16], &[16, 1], ElemKind::F32, 1 << 20);
        assert_eq!(r, Err("hole"));
        // Avoiding the hole works.
        m.hole = Some((BASE + 4, BASE + 8));
        assert!(walk(&mut m, BASE, &[128], &[2], ElemKind::F32, 1 << 20).is_err());
        assert!(walk(&mut m, BASE, &[64], &[2], ElemKind::F32, 8).is_ok());
        // Out of the mapping entirely.
        m.hole = None;
        assert_eq!(walk(&mut m, BASE - 4, &[4], &[1], ElemKind::F32, 64), Err("unmapped"));
        // Address arithmetic that would wrap, and bad shapes.
        let huge = walk(&mut m, u64::MAX - 8, &[4], &[1], ElemKind::F32, 64);
        assert!(huge.is_err());
        assert!(walk(&mut m, 8, &[4], &[-4], ElemKind::F32, 64).is_err());
        assert!(walk(&mut m, BASE, &[-1], &[1], ElemKind::F32, 64).is_err());
        assert!(walk(&mut m, BASE, &[2, 2], &[1], ElemKind::F32, 64).is_err());
        assert!(walk(&mut m, BASE, &[1 << 62, 1 << 62], &[1, 1], ElemKind::F32, 64).is_err());
        let e = walk(&mut m, BASE, &[i64::MAX], &[i64::MIN], ElemKind::F64, 64);
        assert_eq!(e, Err("tensor address range overflows"));
        let e = walk(&mut m, BASE, &[i64::MAX], &[i64::MAX], ElemKind::F64, 64);
        assert_eq!(e, Err("tensor address range overflows"));
        let e = walk(&mut m, BASE, &[3, i64::MAX], &[0, -1], ElemKind::F64, 64);
        assert_eq!(e, Err("tensor too large"));
    }

    #[test]
    fn other_kinds() {
        // Packed fp4: each byte holds two values; 0x71 -> 0.5 and 6.0.
        let mut m = Mem::new(BASE, vec![0x71, 0x00, 0xf8, 0x22]);
        let s = walk(&mut m, BASE, &[2], &[2], ElemKind::Float4x2, 64).unwrap();
        assert_eq!(s, Stats::Float { min: -6.0, max: 6.0, mean: 0.125, nan_count: 0, inf_count: 0 });
        let s = walk(&mut m, BASE, &[2, 3], &[0, 0], ElemKind::Float4x2, 64).unwrap();
        assert_eq!(s, Stats::Float { min: 0.5, max: 6.0, mean: 3.25, nan_count: 0, inf_count: 0 });
        // int64 extremes through a transposed view.
        let v: Vec<u8> = [i64::MIN, 1, 2, i64::MAX, 3, -3].iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut m = Mem::new(BASE, v);
        let s = walk(&mut m, BASE, &[3, 2], &[1, 3], ElemKind::I64, 16).unwrap();
        assert_eq!(s, Stats::Int { min: i64::MIN as i128, max: i64::MAX as i128, mean: 2.0 / 6.0 });
        // fp8 with a NaN, in a strided view that skips it.
        let mut m = Mem::new(BASE, vec![0x38, 0x7f, 0x40, 0x7f, 0x30]);
        let k = ElemKind::Float8(Minifloat::E4M3Fn);
        let s = walk(&mut m, BASE, &[3], &[2], k, 64).unwrap();
        assert_eq!(s, Stats::Float { min: 0.5, max: 2.0, mean: 3.5 / 3.0, nan_count: 0, inf_count: 0 });
        let s = walk(&mut m, BASE + 4, &[5], &[-1], k, 2).unwrap();
        assert!(matches!(s, Stats::Float { nan_count: 2, .. }));
    }

    /// Random views (sizes, negative / zero / overlapping strides, offsets, staging sizes)
    /// against the index-by-index reference.
    #[test]
    fn random_views() {
        let mut s = 0x1234_5678_9abc_def1u64;
        let mut r = move |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % n
        };
        let mut m = Mem::new(BASE, f32_mem(1 << 14));
        let len = m.mem.len() as i64 / 4;
        for _ in 0..3000 {
            let nd = r(5) as usize;
            let shape: Vec<i64> = (0..nd).map(|_| r(9) as i64).collect();
            let strides: Vec<i64> = (0..nd).map(|_| r(41) as i64 - 20).collect();
            // Lowest and highest element offsets; place the view inside the buffer.
            let (mut lo, mut hi) = (0i64, 0i64);
            for (&n, &st) in shape.iter().zip(&strides) {
                if n > 0 {
                    if st < 0 {
                        lo += st * (n - 1);
                    } else {
                        hi += st * (n - 1);
                    }
                }
            }
            if hi - lo >= len {
                continue;
            }
            let start = -lo + r((len - (hi - lo)) as u64) as i64;
            let staging = [4usize, 12, 64, 100, 4096][r(5) as usize];
            check(&mut m, BASE + start as u64 * 4, &shape, &strides, staging);
        }
    }

    /// Host copy source for the bench: memcpy out of a buffer.
    struct Host<'a>(&'a [u8]);

    impl ByteSource for Host<'_> {
        fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
            let a = addr as usize;
            dst.copy_from_slice(&self.0[a..a + dst.len()]);
            Ok(())
        }
    }

    /// Walk (copy into 4 MiB staging + statistics) of a 256 MiB contiguous host tensor:
    /// `cargo test --release -- --ignored --nocapture bench_walk`.
    #[test]
    #[ignore]
    fn bench_walk() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..(256usize << 20) / 4)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.5).to_le_bytes()
            })
            .collect();
        // bfloat16: the upper halves of the same kind of values; fp8: the f32 bytes as codes.
        let bf16: Vec<u8> =
            data.chunks_exact(8).flat_map(|c| [c[2], c[3], c[6], c[7], c[2], c[3], c[6], c[7]]).collect();
        let mut staging = vec![0u8; 4 << 20];
        for (name, kind, data) in [
            ("f32", ElemKind::F32, &data),
            ("bf16", ElemKind::BF16, &bf16),
            ("fp8 e4m3fn", ElemKind::Float8(Minifloat::E4M3Fn), &data),
        ] {
            let numel = (data.len() / kind.elem_bytes()) as i64;
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                let mut acc = Accumulator::new(kind);
                let mut src = Host(data);
                walk_tensor(&mut src, 0, &[numel], &[1], kind, &mut staging, &mut acc).unwrap();
                std::hint::black_box(acc.finish());
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("walk {name}: {:.1} ms, {:.2} GB/s (copy + stats)", best * 1e3, data.len() as f64 / 1e9 / best);
        }
    }
}
