//! One-pass tensor statistics (min, max, mean, NaN and infinity counts) for level-5 logging.
//!
//! Pure code: it sees only byte slices that the walker (or the caller) has already copied out of
//! the tensor's memory, so it needs no `unsafe`. Everything here works on the stack or inside the
//! [`Accumulator`]; nothing allocates (the minifloat tables are `static`s built at compile time;
//! the deepest call, through the walker, uses under 20 KiB of stack).
//!
//! Speed: the contiguous float loops keep eight lanes of min/max/`f64` sum, written so that LLVM
//! vectorizes them with the baseline x86-64 instruction set (no `target-cpu=native`); NaN and
//! infinities are only counted in the rare blocks whose sum is not finite. Single-byte kinds
//! (every float8, float6, packed float4, int8, uint8, bool) are counted into a 256-bin histogram
//! and the statistics are derived from the bins at [`Accumulator::finish`].
//!
//! Tests: unit tests below; `check_luts.py` + `tests/luts.rs` and `check_stats.py` +
//! `tests/numpy_check.rs` in the scratch crate compare every table and random data with
//! ml_dtypes / numpy.

#![forbid(unsafe_code)]

pub use super::formats::*;

pub use crate::record::stats_numbers::Stats;

/// Elements per inner block: keeps every per-lane `u32` counter and `i64` sum from overflowing.
const BLOCK: usize = 1 << 24;
/// Independent accumulators in the vectorized loops (two SSE registers of f32).
const LANES: usize = 8;

/// Floating-point element type of the lane kernels (`f32` for every narrow kind, or `f64`).
trait LaneFloat: Copy + PartialOrd + Into<f64> {
    /// +infinity, the starting minimum.
    const POS_INF: Self;
    /// -infinity, the starting maximum.
    const NEG_INF: Self;
    /// `x != x`.
    fn nan(self) -> bool;
    /// `|x| == inf`.
    fn infinite(self) -> bool;
}

impl LaneFloat for f32 {
    const POS_INF: Self = f32::INFINITY;
    const NEG_INF: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn infinite(self) -> bool {
        self.abs() == f32::INFINITY
    }
}

impl LaneFloat for f64 {
    const POS_INF: Self = f64::INFINITY;
    const NEG_INF: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn infinite(self) -> bool {
        self.abs() == f64::INFINITY
    }
}

/// Running float statistics (NaN-free min/max; NaN recorded by the count).
#[derive(Clone, Copy, Debug)]
struct FloatAcc {
    min: f64,
    max: f64,
    sum: f64,
    nan: u64,
    inf: u64,
}

impl FloatAcc {
    const NEW: FloatAcc = FloatAcc { min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0, nan: 0, inf: 0 };

    /// Add value `x` occurring `times` times.
    fn add_repeated(&mut self, x: f64, times: u64) {
        if x.is_nan() {
            self.nan = self.nan.saturating_add(times);
            return;
        }
        if x.is_infinite() {
            self.inf = self.inf.saturating_add(times);
        }
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
        self.sum += x * times as f64;
    }
}

/// Running integer statistics; the sum is exact.
#[derive(Clone, Copy, Debug)]
struct IntAcc {
    min: i128,
    max: i128,
    sum: i128,
}

impl IntAcc {
    const NEW: IntAcc = IntAcc { min: i128::MAX, max: i128::MIN, sum: 0 };

    /// Add value `v` occurring `times` times.
    fn add_repeated(&mut self, v: i128, times: u64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum = self.sum.saturating_add(v.saturating_mul(times as i128));
    }
}

/// Per-lane minimum, maximum and sum of one block of the float loop, plus scalar ones for the
/// values that do not fill a whole row of lanes.
///
/// NaN and infinity are not counted here: a block whose sum comes out finite has neither (a NaN
/// or an infinity makes the `f64` sum non-finite, and finite `f32` values cannot overflow it),
/// so only the rare non-finite blocks are scanned again to count them. That keeps the hot loop
/// to eight registers of state on baseline x86-64. The lanes are only ever indexed by
/// constants (a variable index would force them to memory and defeat vectorization).
struct FloatLanes<T> {
    mn: [T; LANES],
    mx: [T; LANES],
    sum: [f64; LANES],
    tail: FloatAcc,
}

impl<T: LaneFloat> FloatLanes<T> {
    #[inline(always)]
    fn new() -> Self {
        FloatLanes { mn: [T::POS_INF; LANES], mx: [T::NEG_INF; LANES], sum: [0.0; LANES], tail: FloatAcc::NEW }
    }

    /// One value into each lane. The selects ignore NaN (a comparison with NaN is false), so
    /// they compile to plain `minps`/`maxps`. Three separate lane loops (rather than one loop
    /// doing all three) are what LLVM's SLP vectorizer turns reliably into packed code.
    #[inline(always)]
    fn step(&mut self, x: &[T; LANES]) {
        for (m, &x) in self.mn.iter_mut().zip(x) {
            *m = if x < *m { x } else { *m };
        }
        for (m, &x) in self.mx.iter_mut().zip(x) {
            *m = if x > *m { x } else { *m };
        }
        for (s, &x) in self.sum.iter_mut().zip(x) {
            *s += x.into();
        }
    }

    /// One value outside the lanes (tails).
    #[inline(always)]
    fn step_one(&mut self, x: T) {
        let x: f64 = x.into();
        let t = &mut self.tail;
        t.min = if x < t.min { x } else { t.min };
        t.max = if x > t.max { x } else { t.max };
        t.sum += x;
    }

    /// Fold the lanes into the running statistics; returns the block's sum.
    #[inline(never)]
    fn flush(&self, acc: &mut FloatAcc) -> f64 {
        let t = &self.tail;
        let (mut mn, mut mx, mut sum) = (t.min, t.max, t.sum);
        for l in 0..LANES {
            let (lmn, lmx): (f64, f64) = (self.mn[l].into(), self.mx[l].into());
            mn = if lmn < mn { lmn } else { mn };
            mx = if lmx > mx { lmx } else { mx };
            sum += self.sum[l];
        }
        acc.min = if mn < acc.min { mn } else { acc.min };
        acc.max = if mx > acc.max { mx } else { acc.max };
        acc.sum += sum;
        sum
    }
}

/// Copy `EB` bytes at `off` into an array (the compiler removes the bounds checks it can).
#[inline(always)]
fn take<const EB: usize>(bytes: &[u8], off: usize) -> [u8; EB] {
    let mut a = [0u8; EB];
    a.copy_from_slice(&bytes[off..off + EB]);
    a
}

/// Elements per block of the float loop (a block that holds a NaN or infinity is re-read from
/// cache to count them).
const FLOAT_BLOCK: usize = 2048;

/// Float statistics of `count` elements of `EB` bytes, `stride` bytes apart (stride > 0),
/// decoded by `dec`.
#[inline(always)]
fn float_run<T: LaneFloat, const EB: usize>(
    acc: &mut FloatAcc,
    bytes: &[u8],
    count: usize,
    stride: usize,
    dec: impl Fn([u8; EB]) -> T,
) {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(FLOAT_BLOCK);
        let mut ln = FloatLanes::<T>::new();
        let base = done * stride;
        if stride == EB {
            let part = &bytes[base..base + n * EB];
            let mut chunks = part.chunks_exact(EB * LANES);
            for c in &mut chunks {
                let mut x = [T::POS_INF; LANES];
                for (x, e) in x.iter_mut().zip(c.chunks_exact(EB)) {
                    *x = dec(take::<EB>(e, 0));
                }
                ln.step(&x);
            }
            for e in chunks.remainder().chunks_exact(EB) {
                ln.step_one(dec(take::<EB>(e, 0)));
            }
        } else {
            let full = n / LANES;
            for r in 0..full {
                let o = base + r * LANES * stride;
                let mut x = [T::POS_INF; LANES];
                for (l, x) in x.iter_mut().enumerate() {
                    *x = dec(take::<EB>(bytes, o + l * stride));
                }
                ln.step(&x);
            }
            for i in full * LANES..n {
                ln.step_one(dec(take::<EB>(bytes, base + i * stride)));
            }
        }
        if !ln.flush(acc).is_finite() {
            for i in 0..n {
                let x = dec(take::<EB>(bytes, base + i * stride));
                acc.nan += x.nan() as u64;
                acc.inf += x.infinite() as u64;
            }
        }
        done += n;
    }
}

// The contiguous loops are kept out of line so that their vectorized code does not depend on
// the caller: inlined into some callers, LLVM turned the NaN-ignoring selects into mask
// shuffles at a quarter of the speed.

/// Float statistics of contiguous little-endian `f32` bytes.
#[inline(never)]
fn f32_contiguous(acc: &mut FloatAcc, bytes: &[u8]) {
    float_run::<f32, 4>(acc, bytes, bytes.len() / 4, 4, f32::from_le_bytes);
}

/// Float statistics of contiguous little-endian `f64` bytes.
#[inline(never)]
fn f64_contiguous(acc: &mut FloatAcc, bytes: &[u8]) {
    float_run::<f64, 8>(acc, bytes, bytes.len() / 8, 8, f64::from_le_bytes);
}

/// Float statistics of contiguous little-endian float16 bytes.
#[inline(never)]
fn f16_contiguous(acc: &mut FloatAcc, bytes: &[u8]) {
    float_run::<f32, 2>(acc, bytes, bytes.len() / 2, 2, |b| f16_to_f32(u16::from_le_bytes(b)));
}

/// Float statistics of contiguous little-endian bfloat16 bytes.
#[inline(never)]
fn bf16_contiguous(acc: &mut FloatAcc, bytes: &[u8]) {
    float_run::<f32, 2>(acc, bytes, bytes.len() / 2, 2, |b| bf16_to_f32(u16::from_le_bytes(b)));
}

/// Integer statistics of `count` elements of `EB` bytes (at most 4, so an `i64` lane sum of a
/// block cannot overflow), `stride` bytes apart (stride > 0).
#[inline(always)]
fn small_int_run<const EB: usize>(
    acc: &mut IntAcc,
    bytes: &[u8],
    count: usize,
    stride: usize,
    dec: impl Fn([u8; EB]) -> i64,
) {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(BLOCK);
        let mut mn = [i64::MAX; LANES];
        let mut mx = [i64::MIN; LANES];
        let mut sum = [0i64; LANES];
        let mut step = |l: usize, v: i64| {
            mn[l] = mn[l].min(v);
            mx[l] = mx[l].max(v);
            sum[l] += v;
        };
        if stride == EB {
            let part = &bytes[done * EB..(done + n) * EB];
            let mut chunks = part.chunks_exact(EB * LANES);
            for c in &mut chunks {
                for l in 0..LANES {
                    step(l, dec(take::<EB>(c, l * EB)));
                }
            }
            for (l, e) in chunks.remainder().chunks_exact(EB).enumerate() {
                step(l, dec(take::<EB>(e, 0)));
            }
        } else {
            for i in 0..n {
                step(i % LANES, dec(take::<EB>(bytes, (done + i) * stride)));
            }
        }
        for l in 0..LANES {
            acc.min = acc.min.min(mn[l] as i128);
            acc.max = acc.max.max(mx[l] as i128);
            acc.sum = acc.sum.saturating_add(sum[l] as i128);
        }
        done += n;
    }
}

/// Statistics of 8-byte integers (`i64` or `u64` widened to `i128`); scalar, exact sum.
fn wide_int_run(acc: &mut IntAcc, bytes: &[u8], count: usize, stride: usize, signed: bool) {
    let mut sum: i128 = 0;
    if signed {
        let (mut mn, mut mx) = (i64::MAX, i64::MIN);
        for i in 0..count {
            let v = i64::from_le_bytes(take::<8>(bytes, i * stride));
            mn = mn.min(v);
            mx = mx.max(v);
            sum += v as i128;
        }
        acc.min = acc.min.min(mn as i128);
        acc.max = acc.max.max(mx as i128);
    } else {
        let (mut mn, mut mx) = (u64::MAX, u64::MIN);
        for i in 0..count {
            let v = u64::from_le_bytes(take::<8>(bytes, i * stride));
            mn = mn.min(v);
            mx = mx.max(v);
            sum = sum.saturating_add(v as i128);
        }
        acc.min = acc.min.min(mn as i128);
        acc.max = acc.max.max(mx as i128);
    }
    acc.sum = acc.sum.saturating_add(sum);
}

/// Count `count` bytes `stride` apart into `hist`. Kept out of line: its 8 KiB of sub-histograms are then on the
/// stack only while single-byte elements are counted, not in every caller's frame (a host thread may have as
/// little as 16 KiB of stack).
#[inline(never)]
fn histogram_run(hist: &mut [u64; 256], bytes: &[u8], count: usize, stride: usize) {
    if stride == 1 && count >= 4096 {
        // Eight sub-histograms, one per byte of a 64-bit load, hide the store-to-load latency
        // of runs of equal bytes (common: quantized data has few distinct codes).
        for part in bytes[..count].chunks(1 << 30) {
            let mut t = [[0u32; 256]; 8];
            let mut chunks = part.chunks_exact(8);
            for c in &mut chunks {
                let w = u64::from_le_bytes(take::<8>(c, 0));
                for (k, t) in t.iter_mut().enumerate() {
                    t[(w >> (8 * k)) as u8 as usize] += 1;
                }
            }
            for &b in chunks.remainder() {
                t[0][b as usize] += 1;
            }
            for (i, h) in hist.iter_mut().enumerate() {
                *h += t.iter().map(|t| t[i] as u64).sum::<u64>();
            }
        }
    } else {
        for i in 0..count {
            hist[bytes[i * stride] as usize] += 1;
        }
    }
}

/// Running one-pass statistics of one tensor.
///
/// Fed any number of runs (in any order, since the statistics do not depend on order), then
/// [`Accumulator::finish`]ed. About 2.2 KiB, no heap: it lives on the caller's stack.
#[derive(Clone, Debug)]
pub struct Accumulator {
    kind: ElemKind,
    /// Values seen (2 per element for packed float4).
    count: u64,
    float: FloatAcc,
    int: IntAcc,
    /// Byte histogram of the single-byte kinds.
    hist: [u64; 256],
}

impl Accumulator {
    /// An empty accumulator for elements of `kind`.
    pub fn new(kind: ElemKind) -> Self {
        Accumulator { kind, count: 0, float: FloatAcc::NEW, int: IntAcc::NEW, hist: [0; 256] }
    }

    /// The element kind this accumulator was made for.
    #[cfg(test)]
    pub fn kind(&self) -> ElemKind {
        self.kind
    }

    /// Feed a run of `count` elements taken from `bytes`, `stride_bytes` apart (stride may be
    /// the element size = contiguous fast path, larger, or 0 = one element repeated `count`
    /// times, i.e. broadcast). The first element starts at `bytes[0]`.
    ///
    /// `bytes` must hold `(count - 1) * stride_bytes + elem_bytes` bytes; elements that would
    /// lie beyond it are ignored (a debug assertion flags it) rather than panicking in the
    /// host process.
    pub fn feed(&mut self, bytes: &[u8], count: usize, stride_bytes: usize) {
        let eb = self.kind.elem_bytes();
        let fits = match bytes.len().checked_sub(eb) {
            None => 0,
            Some(rest) => rest.checked_div(stride_bytes).map_or(usize::MAX, |q| q + 1),
        };
        debug_assert!(count <= fits, "feed: {count} elements do not fit the bytes given");
        let count = count.min(fits);
        if count == 0 {
            return;
        }
        self.count = self.count.saturating_add((count as u64).saturating_mul(self.kind.values_per_elem() as u64));
        if stride_bytes == 0 {
            self.feed_repeated(bytes, count as u64);
            return;
        }
        let s = stride_bytes;
        let (f, i) = (&mut self.float, &mut self.int);
        match self.kind {
            ElemKind::F32 if s == 4 => f32_contiguous(f, &bytes[..4 * count]),
            ElemKind::F64 if s == 8 => f64_contiguous(f, &bytes[..8 * count]),
            ElemKind::F16 if s == 2 => f16_contiguous(f, &bytes[..2 * count]),
            ElemKind::BF16 if s == 2 => bf16_contiguous(f, &bytes[..2 * count]),
            ElemKind::F32 => float_run::<f32, 4>(f, bytes, count, s, f32::from_le_bytes),
            ElemKind::F64 => float_run::<f64, 8>(f, bytes, count, s, f64::from_le_bytes),
            ElemKind::F16 => float_run::<f32, 2>(f, bytes, count, s, |b| f16_to_f32(u16::from_le_bytes(b))),
            ElemKind::BF16 => float_run::<f32, 2>(f, bytes, count, s, |b| bf16_to_f32(u16::from_le_bytes(b))),
            ElemKind::I16 => small_int_run::<2>(i, bytes, count, s, |b| i16::from_le_bytes(b) as i64),
            ElemKind::U16 => small_int_run::<2>(i, bytes, count, s, |b| u16::from_le_bytes(b) as i64),
            ElemKind::I32 => small_int_run::<4>(i, bytes, count, s, |b| i32::from_le_bytes(b) as i64),
            ElemKind::U32 => small_int_run::<4>(i, bytes, count, s, |b| u32::from_le_bytes(b) as i64),
            ElemKind::I64 => wide_int_run(i, bytes, count, s, true),
            ElemKind::U64 => wide_int_run(i, bytes, count, s, false),
            ElemKind::Float8(_)
            | ElemKind::Float6(_)
            | ElemKind::Float4x2
            | ElemKind::I8
            | ElemKind::U8
            | ElemKind::Bool => histogram_run(&mut self.hist, bytes, count, s),
        }
    }

    /// The element at `bytes[0]`, `times` times (a broadcast run).
    fn feed_repeated(&mut self, bytes: &[u8], times: u64) {
        let (f, i) = (&mut self.float, &mut self.int);
        match self.kind {
            ElemKind::F32 => f.add_repeated(f32::from_le_bytes(take(bytes, 0)) as f64, times),
            ElemKind::F64 => f.add_repeated(f64::from_le_bytes(take(bytes, 0)), times),
            ElemKind::F16 => f.add_repeated(f16_to_f32(u16::from_le_bytes(take(bytes, 0))) as f64, times),
            ElemKind::BF16 => f.add_repeated(bf16_to_f32(u16::from_le_bytes(take(bytes, 0))) as f64, times),
            ElemKind::I16 => i.add_repeated(i16::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::U16 => i.add_repeated(u16::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::I32 => i.add_repeated(i32::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::U32 => i.add_repeated(u32::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::I64 => i.add_repeated(i64::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::U64 => i.add_repeated(u64::from_le_bytes(take(bytes, 0)) as i128, times),
            ElemKind::Float8(_)
            | ElemKind::Float6(_)
            | ElemKind::Float4x2
            | ElemKind::I8
            | ElemKind::U8
            | ElemKind::Bool => {
                let h = &mut self.hist[bytes[0] as usize];
                *h = h.saturating_add(times);
            }
        }
    }

    /// Add the statistics of `other` (same kind) as if its values had been fed `times` times:
    /// how the walker handles broadcast (stride 0) dimensions without re-reading memory.
    /// Another kind is ignored (a debug assertion flags it).
    pub fn merge_repeated(&mut self, other: &Accumulator, times: u64) {
        debug_assert_eq!(self.kind, other.kind);
        if self.kind != other.kind || other.count == 0 || times == 0 {
            return;
        }
        self.count = self.count.saturating_add(other.count.saturating_mul(times));
        let (f, o) = (&mut self.float, &other.float);
        f.min = if o.min < f.min { o.min } else { f.min };
        f.max = if o.max > f.max { o.max } else { f.max };
        f.sum += o.sum * times as f64;
        f.nan = f.nan.saturating_add(o.nan.saturating_mul(times));
        f.inf = f.inf.saturating_add(o.inf.saturating_mul(times));
        let (i, o) = (&mut self.int, &other.int);
        i.min = i.min.min(o.min);
        i.max = i.max.max(o.max);
        i.sum = i.sum.saturating_add(o.sum.saturating_mul(times as i128));
        for (h, o) in self.hist.iter_mut().zip(other.hist.iter()) {
            *h = h.saturating_add(o.saturating_mul(times));
        }
    }

    /// The statistics of everything fed so far (the accumulator stays usable).
    pub fn finish(&self) -> Stats {
        if self.count == 0 {
            return Stats::Empty;
        }
        let mut f = self.float;
        let mut i = self.int;
        if self.kind.uses_histogram() {
            for (b, &c) in self.hist.iter().enumerate().filter(|(_, c)| **c > 0) {
                match self.kind {
                    ElemKind::Float8(m) | ElemKind::Float6(m) => f.add_repeated(m.lut()[b] as f64, c),
                    ElemKind::Float4x2 => {
                        let lut = Minifloat::E2M1Fn.lut();
                        f.add_repeated(lut[b & 15] as f64, c);
                        f.add_repeated(lut[b >> 4] as f64, c);
                    }
                    ElemKind::I8 => i.add_repeated(b as u8 as i8 as i128, c),
                    ElemKind::U8 => i.add_repeated(b as i128, c),
                    _ => i.add_repeated((b != 0) as i128, c),
                }
            }
        }
        let n = self.count as f64;
        if self.kind.is_float() {
            if f.nan > 0 {
                return Stats::Float {
                    min: f64::NAN,
                    max: f64::NAN,
                    mean: f64::NAN,
                    nan_count: f.nan,
                    inf_count: f.inf,
                };
            }
            Stats::Float { min: f.min, max: f.max, mean: f.sum / n, nan_count: 0, inf_count: f.inf }
        } else {
            Stats::Int { min: i.min, max: i.max, mean: i.sum as f64 / n }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// Deterministic pseudo-random bytes (xorshift64*), no crates.
    pub(crate) fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn time(name: &str, kind: ElemKind, bytes: &[u8]) {
        let eb = kind.elem_bytes();
        let mut best = f64::MAX;
        let mut stats = Stats::Empty;
        for _ in 0..5 {
            let t = Instant::now();
            let mut acc = Accumulator::new(kind);
            acc.feed(bytes, bytes.len() / eb, eb);
            stats = acc.finish();
            best = best.min(t.elapsed().as_secs_f64());
        }
        let gb = bytes.len() as f64 / 1e9;
        println!("{name}: {:.1} ms, {:.2} GB/s  {stats:?}", best * 1e3, gb / best);
    }

    /// Throughput of the contiguous paths on a 256 MiB host buffer:
    /// `cargo test --release -- --ignored --nocapture bench_throughput`.
    #[test]
    #[ignore]
    fn bench_throughput() {
        const SIZE: usize = 256 << 20;
        let mut r = rng(42);
        let mut buf = vec![0u8; SIZE];
        // f32: sum of four uniforms, roughly normal around 0.
        for c in buf.chunks_exact_mut(4) {
            let u = |x: u64| (x >> 40) as f32 / (1u64 << 24) as f32;
            let v = r();
            let x = u(v) + u(v << 24) + u(v.rotate_right(16)) - 1.5;
            c.copy_from_slice(&x.to_le_bytes());
        }
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let s = buf.chunks_exact(8).fold(0u64, |a, c| a.wrapping_add(u64::from_le_bytes(take::<8>(c, 0))));
            std::hint::black_box(s);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("memory (u64 sum): {:.2} GB/s", SIZE as f64 / 1e9 / best);
        time("f32 ", ElemKind::F32, &buf);
        // bf16: the same bits truncated.
        for c in buf.chunks_exact_mut(4) {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let h = (x.to_bits() >> 16) as u16;
            c[..2].copy_from_slice(&h.to_le_bytes());
            c[2..].copy_from_slice(&h.wrapping_add(3).to_le_bytes());
        }
        time("bf16", ElemKind::BF16, &buf);
        time("f16 ", ElemKind::F16, &buf);
        for c in buf.chunks_exact_mut(8) {
            c.copy_from_slice(&r().to_le_bytes());
        }
        time("fp8 e4m3fn", ElemKind::Float8(Minifloat::E4M3Fn), &buf);
    }

    /// Compute-bound throughput (a 1 MiB buffer of values in [-1.5, 1.5], in cache, fed 256
    /// times): `cargo test --release -- --ignored --nocapture bench_in_cache`.
    #[test]
    #[ignore]
    fn bench_in_cache() {
        let mut r = rng(7);
        let xs: Vec<f32> = (0..1 << 18).map(|_| (r() >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.5).collect();
        let to_f16 = |x: f32| {
            let b = x.to_bits();
            let e = ((b >> 23) & 0xff) as i32 - 127 + 15;
            let h = if e <= 0 { 0 } else { (e as u32) << 10 | (b >> 13) & 0x3ff };
            (h | (b >> 16) & 0x8000) as u16
        };
        let f32b: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f64b: Vec<u8> = xs.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect();
        let bf16b: Vec<u8> = xs.iter().flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes()).collect();
        let f16b: Vec<u8> = xs.iter().flat_map(|&x| to_f16(x).to_le_bytes()).collect();
        let fp8b: Vec<u8> = xs.iter().map(|x| (x.to_bits() >> 20) as u8).collect();
        let i32b: Vec<u8> = xs.iter().flat_map(|x| (x.to_bits() as i32).to_le_bytes()).collect();
        for (name, kind, buf) in [
            ("f32", ElemKind::F32, &f32b),
            ("bf16", ElemKind::BF16, &bf16b),
            ("f16", ElemKind::F16, &f16b),
            ("f64", ElemKind::F64, &f64b),
            ("fp8", ElemKind::Float8(Minifloat::E4M3Fn), &fp8b),
            ("i32", ElemKind::I32, &i32b),
        ] {
            let eb = kind.elem_bytes();
            let mut dt = f64::MAX;
            for _ in 0..40 {
                let t = Instant::now();
                let mut acc = Accumulator::new(kind);
                for _ in 0..32 {
                    acc.feed(buf, buf.len() / eb, eb);
                }
                std::hint::black_box(acc.finish());
                dt = dt.min(t.elapsed().as_secs_f64());
            }
            println!("{name}: {:.2} GB/s in cache", 32.0 * buf.len() as f64 / 1e9 / dt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::stats_numbers::{write_f6, write_stats_lines};

    /// Little deterministic generator for test data (xorshift64*).
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn stats_of(kind: ElemKind, bytes: &[u8], count: usize, stride: usize) -> Stats {
        let mut acc = Accumulator::new(kind);
        acc.feed(bytes, count, stride);
        acc.finish()
    }

    fn lines(stats: &Stats) -> String {
        let mut out = Vec::new();
        write_stats_lines(&mut out, "  ", stats);
        String::from_utf8(out).unwrap()
    }

    fn float(s: Stats) -> (f64, f64, f64, u64, u64) {
        match s {
            Stats::Float { min, max, mean, nan_count, inf_count } => (min, max, mean, nan_count, inf_count),
            other => panic!("expected float stats, got {other:?}"),
        }
    }

    fn int(s: Stats) -> (i128, i128, f64) {
        match s {
            Stats::Int { min, max, mean } => (min, max, mean),
            other => panic!("expected int stats, got {other:?}"),
        }
    }

    /// Reference statistics written the obvious way: a sequential fold with Neumaier-compensated
    /// summation, NaN and infinities classified one value at a time.
    fn reference(vals: &[f64]) -> (f64, f64, f64, u64, u64) {
        let nan = vals.iter().filter(|v| v.is_nan()).count() as u64;
        let inf = vals.iter().filter(|v| v.is_infinite()).count() as u64;
        if nan > 0 {
            return (f64::NAN, f64::NAN, f64::NAN, nan, inf);
        }
        let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let (pos, neg) = (vals.contains(&f64::INFINITY), vals.contains(&f64::NEG_INFINITY));
        let mean = match (pos, neg) {
            (true, true) => f64::NAN,
            (true, false) => f64::INFINITY,
            (false, true) => f64::NEG_INFINITY,
            _ => {
                let (mut s, mut c) = (0.0f64, 0.0f64);
                for &v in vals {
                    let t = s + v;
                    c += if s.abs() >= v.abs() { (s - t) + v } else { (v - t) + s };
                    s = t;
                }
                (s + c) / vals.len() as f64
            }
        };
        (min, max, mean, 0, inf)
    }

    fn assert_close(got: (f64, f64, f64, u64, u64), want: (f64, f64, f64, u64, u64), ctx: &str) {
        let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
        assert!(same(got.0, want.0), "{ctx}: min {} vs {}", got.0, want.0);
        assert!(same(got.1, want.1), "{ctx}: max {} vs {}", got.1, want.1);
        assert_eq!((got.3, got.4), (want.3, want.4), "{ctx}: nan/inf counts");
        let m_ok = same(got.2, want.2)
            || (got.2 - want.2).abs() <= 1e-12 * want.2.abs().max(1e-300)
            || (got.2 - want.2).abs() <= 1e-15;
        assert!(m_ok, "{ctx}: mean {} vs {}", got.2, want.2);
    }

    #[test]
    fn dlpack_codes() {
        use ElemKind as K;
        type Case = ((u8, u8, u16), Option<ElemKind>);
        let cases: &[Case] = &[
            ((0, 8, 1), Some(K::I8)),
            ((0, 16, 1), Some(K::I16)),
            ((0, 32, 1), Some(K::I32)),
            ((0, 64, 1), Some(K::I64)),
            ((1, 8, 1), Some(K::U8)),
            ((1, 16, 1), Some(K::U16)),
            ((1, 32, 1), Some(K::U32)),
            ((1, 64, 1), Some(K::U64)),
            ((2, 16, 1), Some(K::F16)),
            ((2, 32, 1), Some(K::F32)),
            ((2, 64, 1), Some(K::F64)),
            ((4, 16, 1), Some(K::BF16)),
            ((6, 8, 1), Some(K::Bool)),
            ((7, 8, 1), Some(K::Float8(Minifloat::E3M4))),
            ((8, 8, 1), Some(K::Float8(Minifloat::E4M3))),
            ((9, 8, 1), Some(K::Float8(Minifloat::E4M3B11Fnuz))),
            ((10, 8, 1), Some(K::Float8(Minifloat::E4M3Fn))),
            ((11, 8, 1), Some(K::Float8(Minifloat::E4M3Fnuz))),
            ((12, 8, 1), Some(K::Float8(Minifloat::E5M2))),
            ((13, 8, 1), Some(K::Float8(Minifloat::E5M2Fnuz))),
            ((14, 8, 1), Some(K::Float8(Minifloat::E8M0Fnu))),
            ((15, 6, 1), Some(K::Float6(Minifloat::E2M3Fn))),
            ((16, 6, 1), Some(K::Float6(Minifloat::E3M2Fn))),
            ((17, 4, 2), Some(K::Float4x2)),
            // Not statistics-capable or malformed.
            ((17, 4, 1), None),
            ((17, 8, 1), None),
            ((15, 8, 1), None),
            ((10, 16, 1), None),
            ((2, 32, 4), None),
            ((2, 8, 1), None),
            ((5, 64, 1), None),
            ((3, 64, 1), None),
            ((6, 1, 1), None),
            ((4, 32, 1), None),
            ((0, 128, 1), None),
            ((18, 8, 1), None),
        ];
        for &((c, b, l), want) in cases {
            assert_eq!(ElemKind::from_dlpack(c, b, l), want, "code {c} bits {b} lanes {l}");
            if let Some(k) = want {
                let bytes = if k == K::Float4x2 || matches!(k, K::Float6(_)) { 1 } else { (b / 8) as usize };
                assert_eq!(k.elem_bytes(), bytes);
            }
        }
    }

    /// Landmark values of every format, from the format definitions (OCP MX spec, ml_dtypes
    /// docs), independent of the decoder.
    #[test]
    fn minifloat_landmarks() {
        use Minifloat as M;
        let cases: &[(Minifloat, u8, f32)] = &[
            (M::E4M3Fn, 0x7e, 448.0),
            (M::E4M3Fn, 0xfe, -448.0),
            (M::E4M3Fn, 0x01, 1.0 / 512.0),
            (M::E4M3Fn, 0x38, 1.0),
            (M::E4M3Fn, 0x80, -0.0),
            (M::E4M3Fn, 0x78, 256.0),
            (M::E5M2, 0x7b, 57344.0),
            (M::E5M2, 0x7c, f32::INFINITY),
            (M::E5M2, 0xfc, f32::NEG_INFINITY),
            (M::E5M2, 0x01, 1.0 / 65536.0),
            (M::E5M2, 0x3c, 1.0),
            (M::E4M3, 0x77, 240.0),
            (M::E4M3, 0x78, f32::INFINITY),
            (M::E3M4, 0x6f, 15.5),
            (M::E3M4, 0x70, f32::INFINITY),
            (M::E3M4, 0x30, 1.0),
            (M::E4M3Fnuz, 0x7f, 240.0),
            (M::E4M3Fnuz, 0x40, 1.0),
            (M::E4M3Fnuz, 0x00, 0.0),
            (M::E4M3B11Fnuz, 0x7f, 30.0),
            (M::E4M3B11Fnuz, 0x58, 1.0),
            (M::E5M2Fnuz, 0x7f, 57344.0),
            (M::E5M2Fnuz, 0x40, 1.0),
            (M::E8M0Fnu, 0x7f, 1.0),
            (M::E8M0Fnu, 0x80, 2.0),
            (M::E8M0Fnu, 0xfe, 1.7014118e38),
            (M::E2M3Fn, 0x1f, 7.5),
            (M::E2M3Fn, 0x3f, -7.5),
            (M::E2M3Fn, 0x01, 0.125),
            (M::E2M3Fn, 0xff, -7.5),
            (M::E3M2Fn, 0x1f, 28.0),
            (M::E3M2Fn, 0x01, 0.0625),
            (M::E2M1Fn, 0x07, 6.0),
            (M::E2M1Fn, 0x0f, -6.0),
            (M::E2M1Fn, 0x01, 0.5),
        ];
        for &(m, code, v) in cases {
            let got = m.lut()[code as usize];
            assert_eq!(got.to_bits(), v.to_bits(), "{m:?} {code:#04x}: {got} vs {v}");
        }
        let nans: &[(Minifloat, &[u8])] = &[
            (M::E4M3Fn, &[0x7f, 0xff]),
            (M::E4M3Fnuz, &[0x80]),
            (M::E4M3B11Fnuz, &[0x80]),
            (M::E5M2Fnuz, &[0x80]),
            (M::E5M2, &[0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]),
            (M::E8M0Fnu, &[0xff]),
        ];
        for &(m, codes) in nans {
            let count = m.lut().iter().filter(|v| v.is_nan()).count();
            assert_eq!(count, codes.len(), "{m:?} NaN count");
            for &c in codes {
                assert!(m.lut()[c as usize].is_nan(), "{m:?} {c:#04x}");
            }
        }
        for m in [M::E2M3Fn, M::E3M2Fn, M::E2M1Fn, M::E4M3Fnuz, M::E8M0Fnu] {
            assert!(!m.lut().iter().any(|v| v.is_infinite()), "{m:?} has no inf");
        }
    }

    /// Every f16 code against a formula evaluated in f64 (not the bit trick).
    #[test]
    fn f16_every_code() {
        for h in 0..=u16::MAX {
            let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
            let e = ((h >> 10) & 0x1f) as i32;
            let m = (h & 0x3ff) as f64;
            let want = match e {
                0 => sign * m * 2f64.powi(-24),
                31 if m == 0.0 => sign * f64::INFINITY,
                31 => f64::NAN,
                _ => sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
            };
            let got = f16_to_f32(h) as f64;
            assert!((got.is_nan() && want.is_nan()) || got.to_bits() == want.to_bits(), "{h:#06x}: {got} vs {want}");
        }
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc0a0), -5.0);
        assert!(bf16_to_f32(0x7fc0).is_nan());
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn f32_random_lengths_and_specials() {
        let mut r = rng(1);
        for len in (0..70).chain([255, 256, 257, 2047, 2048, 2049, 4100, 10_000]) {
            for special in 0..4 {
                let mut v: Vec<f32> =
                    (0..len).map(|_| ((r() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1e3).collect();
                if len > 0 {
                    let pos = (r() as usize) % len;
                    match special {
                        1 => v[pos] = f32::NAN,
                        2 => v[pos] = f32::INFINITY,
                        3 => {
                            v[pos] = f32::NEG_INFINITY;
                            v[(r() as usize) % len] = f32::NEG_INFINITY;
                        }
                        _ => {}
                    }
                }
                let want =
                    if len == 0 { None } else { Some(reference(&v.iter().map(|&x| x as f64).collect::<Vec<_>>())) };
                let s = stats_of(ElemKind::F32, &f32_bytes(&v), len, 4);
                match want {
                    None => assert_eq!(s, Stats::Empty),
                    Some(w) => assert_close(float(s), w, &format!("len {len} special {special}")),
                }
            }
        }
    }

    #[test]
    fn float_specials() {
        let k = ElemKind::F32;
        let nan = f32_bytes(&[f32::NAN, f32::NAN, f32::NAN]);
        let (mn, mx, mean, n, i) = float(stats_of(k, &nan, 3, 4));
        assert!(mn.is_nan() && mx.is_nan() && mean.is_nan());
        assert_eq!((n, i), (3, 0));
        // NaN anywhere, even first or last, poisons min/max/mean.
        for pos in 0..20 {
            let mut v = vec![1.0f32; 20];
            v[pos] = f32::NAN;
            let (mn, mx, mean, n, _) = float(stats_of(k, &f32_bytes(&v), 20, 4));
            assert!(mn.is_nan() && mx.is_nan() && mean.is_nan() && n == 1, "pos {pos}");
        }
        let v = f32_bytes(&[1.0, f32::INFINITY, -2.0]);
        assert_eq!(float(stats_of(k, &v, 3, 4)), (-2.0, f64::INFINITY, f64::INFINITY, 0, 1));
        let v = f32_bytes(&[1.0, f32::NEG_INFINITY, -2.0]);
        let s = float(stats_of(k, &v, 3, 4));
        assert_eq!(s, (f64::NEG_INFINITY, 1.0, f64::NEG_INFINITY, 0, 1));
        let v = f32_bytes(&[f32::INFINITY, f32::NEG_INFINITY]);
        let (mn, mx, mean, n, i) = float(stats_of(k, &v, 2, 4));
        assert_eq!((mn, mx, n, i), (f64::NEG_INFINITY, f64::INFINITY, 0, 2));
        assert!(mean.is_nan());
        // Max f32 values do not overflow the f64 sum.
        let v = f32_bytes(&[f32::MAX; 100]);
        assert_eq!(float(stats_of(k, &v, 100, 4)).2, f32::MAX as f64);
        // Negative zero and subnormals.
        let v = f32_bytes(&[-0.0, f32::from_bits(1), 0.0]);
        let (mn, mx, _, _, _) = float(stats_of(k, &v, 3, 4));
        assert_eq!((mn, mx), (0.0, f32::from_bits(1) as f64));
    }

    #[test]
    fn f64_f16_bf16_values() {
        let v: Vec<u8> = [1.5f64, -2.25, f64::NAN, 1e300, f64::INFINITY].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(float(stats_of(ElemKind::F64, &v, 2, 8)), (-2.25, 1.5, -0.375, 0, 0));
        let (_, _, m, n, i) = float(stats_of(ElemKind::F64, &v, 5, 8));
        assert!(m.is_nan() && n == 1 && i == 1);
        let (mn, mx, m, _, _) = float(stats_of(ElemKind::F64, &v[24..], 2, 8));
        assert_eq!((mn, mx, m), (1e300, f64::INFINITY, f64::INFINITY));

        let half = |hs: &[u16]| -> Vec<u8> { hs.iter().flat_map(|h| h.to_le_bytes()).collect() };
        // f16: 1.0, -2.0, 2^-24, 65504 (max).
        let v = half(&[0x3c00, 0xc000, 0x0001, 0x7bff]);
        let want_mean = (1.0 - 2.0 + 2f64.powi(-24) + 65504.0) / 4.0;
        assert_eq!(float(stats_of(ElemKind::F16, &v, 4, 2)), (-2.0, 65504.0, want_mean, 0, 0));
        let v = half(&[0x7c00, 0xfc00, 0x7e00, 0x3c00]);
        let (mn, _, m, n, i) = float(stats_of(ElemKind::F16, &v, 4, 2));
        assert!(mn.is_nan() && m.is_nan());
        assert_eq!((n, i), (1, 2));
        // bf16: 1.0, -5.0, 0.5; then +inf.
        let v = half(&[0x3f80, 0xc0a0, 0x3f00, 0x7f80]);
        assert_eq!(float(stats_of(ElemKind::BF16, &v, 3, 2)), (-5.0, 1.0, -3.5 / 3.0, 0, 0));
        assert_eq!(float(stats_of(ElemKind::BF16, &v, 4, 2)), (-5.0, f64::INFINITY, f64::INFINITY, 0, 1));
        // Long f16/bf16 runs through the vector path, against the reference.
        let mut r = rng(9);
        let hs: Vec<u16> = (0..5000).map(|_| (r() >> 48) as u16).collect();
        let bytes = half(&hs);
        for (kind, conv) in [(ElemKind::F16, f16_to_f32 as fn(u16) -> f32), (ElemKind::BF16, bf16_to_f32)] {
            let finite: Vec<u16> = hs.iter().cloned().filter(|&h| conv(h).is_finite()).collect();
            let fb = half(&finite);
            let want = reference(&finite.iter().map(|&h| conv(h) as f64).collect::<Vec<_>>());
            assert_close(float(stats_of(kind, &fb, finite.len(), 2)), want, "finite");
            let want = reference(&hs.iter().map(|&h| conv(h) as f64).collect::<Vec<_>>());
            assert_close(float(stats_of(kind, &bytes, 5000, 2)), want, "all codes");
        }
    }

    #[test]
    fn minifloat_every_byte_and_packed_fp4() {
        let all: Vec<u8> = (0..=255).collect();
        for m in [
            Minifloat::E3M4,
            Minifloat::E4M3,
            Minifloat::E4M3B11Fnuz,
            Minifloat::E4M3Fn,
            Minifloat::E4M3Fnuz,
            Minifloat::E5M2,
            Minifloat::E5M2Fnuz,
            Minifloat::E8M0Fnu,
        ] {
            // Finite codes only, then all codes, through the histogram path (count >= 4096).
            let finite: Vec<u8> = all.iter().cloned().filter(|&b| m.lut()[b as usize].is_finite()).collect();
            let big: Vec<u8> = finite.iter().cycle().take(finite.len() * 20).cloned().collect();
            let want = reference(&big.iter().map(|&b| m.lut()[b as usize] as f64).collect::<Vec<_>>());
            let got = float(stats_of(ElemKind::Float8(m), &big, big.len(), 1));
            assert_close(got, want, &format!("{m:?} finite"));
            let want = reference(&all.iter().map(|&b| m.lut()[b as usize] as f64).collect::<Vec<_>>());
            let got = float(stats_of(ElemKind::Float8(m), &all, 256, 1));
            assert_close(got, want, &format!("{m:?} all"));
        }
        // e4m3fn by hand: 1.0, -448, 0.5, NaN.
        let k = ElemKind::Float8(Minifloat::E4M3Fn);
        assert_eq!(float(stats_of(k, &[0x38, 0xfe, 0x30], 3, 1)), (-448.0, 1.0, -446.5 / 3.0, 0, 0));
        let (mn, _, _, n, _) = float(stats_of(k, &[0x38, 0x7f], 2, 1));
        assert!(mn.is_nan() && n == 1);
        // float6: low 6 bits only (0xdf = 0b11_011111 -> 0x1f = 7.5).
        let k6 = ElemKind::Float6(Minifloat::E2M3Fn);
        assert_eq!(
            float(stats_of(k6, &[0x1f, 0x3f, 0xdf, 0x08], 4, 1)),
            (-7.5, 7.5, 1.0 / 4.0 * (7.5 - 7.5 + 7.5 + 1.0), 0, 0)
        );
        // Packed fp4: 0x71 = (lo 0.5, hi 6.0); 0xf8 = (lo -0.0, hi -6.0).
        let k4 = ElemKind::Float4x2;
        assert_eq!(float(stats_of(k4, &[0x71], 1, 1)), (0.5, 6.0, 3.25, 0, 0));
        assert_eq!(float(stats_of(k4, &[0x71, 0xf8], 2, 1)), (-6.0, 6.0, 0.5 / 4.0, 0, 0));
        // Every byte: all 16 values appear 16 times as low and 16 times as high nibble.
        let want_sum: f64 = (0..16).map(|c| Minifloat::E2M1Fn.lut()[c] as f64).sum::<f64>() * 32.0;
        assert_eq!(float(stats_of(k4, &all, 256, 1)), (-6.0, 6.0, want_sum / 512.0, 0, 0));
    }

    #[test]
    fn integers() {
        let b64 = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let v = b64(&[i64::MIN, i64::MAX, -1]);
        let (mn, mx, mean) = int(stats_of(ElemKind::I64, &v, 3, 8));
        assert_eq!((mn, mx), (i64::MIN as i128, i64::MAX as i128));
        assert_eq!(mean, -2.0 / 3.0);
        // Sum far beyond i64: mean of many i64::MAX is exact.
        let v = b64(&[i64::MAX; 1000]);
        assert_eq!(int(stats_of(ElemKind::I64, &v, 1000, 8)).2, i64::MAX as f64);
        let v: Vec<u8> = [u64::MAX, 0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (mn, mx, mean) = int(stats_of(ElemKind::U64, &v, 2, 8));
        assert_eq!((mn, mx), (0, u64::MAX as i128));
        assert_eq!(mean, 9_223_372_036_854_775_807.5);
        let s = stats_of(ElemKind::U64, &v, 2, 8);
        assert_eq!(lines(&s), "  min=0\n  max=18446744073709551615\n  mean=9223372036854775808.000000\n");
        let v: Vec<u8> = [i32::MIN, i32::MAX, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(int(stats_of(ElemKind::I32, &v, 3, 4)), (i32::MIN as i128, i32::MAX as i128, 6.0 / 3.0));
        assert_eq!(
            int(stats_of(ElemKind::U32, &v, 3, 4)),
            (7, 0x8000_0000, (0x8000_0000u64 + 0x7fff_ffff + 7) as f64 / 3.0)
        );
        let v: Vec<u8> = [i16::MIN, i16::MAX, -3].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(int(stats_of(ElemKind::I16, &v, 3, 2)), (-32768, 32767, -4.0 / 3.0));
        assert_eq!(int(stats_of(ElemKind::U16, &v, 3, 2)), (32767, 65533, (32768.0 + 32767.0 + 65533.0) / 3.0));
        let v = [0x80u8, 0x7f, 0x00, 0xff];
        assert_eq!(int(stats_of(ElemKind::I8, &v, 4, 1)), (-128, 127, -0.5));
        assert_eq!(int(stats_of(ElemKind::U8, &v, 4, 1)), (0, 255, 127.5));
        assert_eq!(int(stats_of(ElemKind::Bool, &v[2..], 1, 1)), (0, 0, 0.0));
        assert_eq!(int(stats_of(ElemKind::Bool, &[0, 1, 1, 2], 4, 1)), (0, 1, 0.75));
        // Long runs through the lane loops against a plain fold.
        let mut r = rng(5);
        let xs: Vec<i32> = (0..10_007).map(|_| r() as i32).collect();
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let sum: i128 = xs.iter().map(|&x| x as i128).sum();
        let want = (*xs.iter().min().unwrap() as i128, *xs.iter().max().unwrap() as i128, sum as f64 / xs.len() as f64);
        assert_eq!(int(stats_of(ElemKind::I32, &bytes, xs.len(), 4)), want);
        // Strided: every third i32.
        let sel: Vec<i32> = xs.iter().step_by(3).cloned().collect();
        let sum: i128 = sel.iter().map(|&x| x as i128).sum();
        let want =
            (*sel.iter().min().unwrap() as i128, *sel.iter().max().unwrap() as i128, sum as f64 / sel.len() as f64);
        assert_eq!(int(stats_of(ElemKind::I32, &bytes, sel.len(), 12)), want);
        // Large byte runs (histogram path) against a plain fold.
        let bs: Vec<u8> = (0..9999).map(|_| r() as u8).collect();
        let s: i64 = bs.iter().map(|&b| b as i8 as i64).sum();
        let (mn, mx, mean) = int(stats_of(ElemKind::I8, &bs, bs.len(), 1));
        assert_eq!((mn, mx), (-128, 127));
        assert_eq!(mean, s as f64 / 9999.0);
    }

    #[test]
    fn strided_and_broadcast_feeds() {
        let v: Vec<f32> = (0..100).map(|i| i as f32 - 50.0).collect();
        let b = f32_bytes(&v);
        // Every 7th value, starting at 3.
        let sel: Vec<f64> = v.iter().skip(3).step_by(7).map(|&x| x as f64).collect();
        let got = float(stats_of(ElemKind::F32, &b[12..], sel.len(), 28));
        assert_close(got, reference(&sel), "stride 7");
        // Stride 0: one value repeated.
        assert_eq!(float(stats_of(ElemKind::F32, &b[4..], 1000, 0)), (-49.0, -49.0, -49.0, 0, 0));
        let nan = f32_bytes(&[f32::NAN]);
        let (mn, _, _, n, _) = float(stats_of(ElemKind::F32, &nan, 5, 0));
        assert!(mn.is_nan() && n == 5);
        let inf = f32_bytes(&[f32::NEG_INFINITY]);
        assert_eq!(
            float(stats_of(ElemKind::F32, &inf, 5, 0)),
            (f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY, 0, 5)
        );
        let i = (-7i64).to_le_bytes();
        assert_eq!(int(stats_of(ElemKind::I64, &i, 1 << 40, 0)), (-7, -7, -7.0));
        assert_eq!(int(stats_of(ElemKind::I8, &[0xf9], 9, 0)), (-7, -7, -7.0));
        assert_eq!(float(stats_of(ElemKind::Float4x2, &[0x71], 3, 0)), (0.5, 6.0, 3.25, 0, 0));
        // Too few bytes: the elements that do not fit are left out (release builds).
        if !cfg!(debug_assertions) {
            assert_eq!(int(stats_of(ElemKind::I32, &[1, 0, 0, 0, 2], 2, 4)), (1, 1, 1.0));
        }
    }

    #[test]
    fn empty_and_merge() {
        let acc = Accumulator::new(ElemKind::F32);
        assert_eq!(acc.finish(), Stats::Empty);
        let mut acc = Accumulator::new(ElemKind::I32);
        acc.feed(&[], 0, 4);
        acc.feed(&[1, 2, 3, 4], 0, 4);
        assert_eq!(acc.finish(), Stats::Empty);
        assert_eq!(lines(&Stats::Empty), "");

        let mut part = Accumulator::new(ElemKind::F32);
        part.feed(&f32_bytes(&[1.0, 2.0, f32::INFINITY]), 3, 4);
        let mut acc = Accumulator::new(ElemKind::F32);
        acc.feed(&f32_bytes(&[-1.0]), 1, 4);
        acc.merge_repeated(&part, 4);
        assert_eq!(float(acc.finish()), (-1.0, f64::INFINITY, f64::INFINITY, 0, 4));
        let mut part = Accumulator::new(ElemKind::Float8(Minifloat::E4M3Fn));
        part.feed(&[0x38, 0x40], 2, 1); // 1.0, 2.0
        let mut acc = Accumulator::new(part.kind());
        acc.merge_repeated(&part, 3);
        acc.feed(&[0x30], 1, 1); // 0.5
        assert_eq!(float(acc.finish()), (0.5, 2.0, 9.5 / 7.0, 0, 0));
        let mut part = Accumulator::new(ElemKind::U64);
        part.feed(&u64::MAX.to_le_bytes(), 1, 8);
        let mut acc = Accumulator::new(ElemKind::U64);
        acc.merge_repeated(&part, 1 << 20);
        assert_eq!(int(acc.finish()), (u64::MAX as i128, u64::MAX as i128, u64::MAX as f64));
    }

    #[test]
    fn stats_lines_format() {
        let s = Stats::Float { min: -1.25, max: 3.5, mean: 0.03125, nan_count: 0, inf_count: 0 };
        assert_eq!(lines(&s), "  min=-1.250000\n  max=3.500000\n  mean=0.031250\n  nan_count=0\n  inf_count=0\n");
        let s =
            Stats::Float { min: f64::NAN, max: f64::NEG_INFINITY, mean: f64::INFINITY, nan_count: 7, inf_count: 12 };
        assert_eq!(lines(&s), "  min=nan\n  max=-inf\n  mean=inf\n  nan_count=7\n  inf_count=12\n");
        let s = Stats::Int { min: -3, max: i64::MAX as i128, mean: -2.0 / 3.0 };
        assert_eq!(lines(&s), "  min=-3\n  max=9223372036854775807\n  mean=-0.666667\n");
        let mut out = b"x\n".to_vec();
        write_stats_lines(&mut out, "", &Stats::Int { min: 0, max: 1, mean: 0.5 });
        assert_eq!(out, b"x\nmin=0\nmax=1\nmean=0.500000\n");
        // `%.6f` as C / Python print it (expected strings from Python's '%.6f' % v).
        let cases: &[(f64, &str)] = &[
            (0.0078125, "0.007812"),
            (2.5e-7, "0.000000"),
            (-1e-9, "-0.000000"),
            (-0.0, "-0.000000"),
            (1e20, "100000000000000000000.000000"),
            (0.1, "0.100000"),
            (1.0000005, "1.000001"),
            (5e-7, "0.000000"),
            (1.5e-6, "0.000002"),
            (2.0000025, "2.000002"),
            (123456.7890125, "123456.789012"),
            (5e-324, "0.000000"),
            (3.4028234663852886e38, "340282346638528859811704183484516925440.000000"),
        ];
        for &(v, want) in cases {
            let mut out = Vec::new();
            write_f6(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v:e}");
        }
        let mut out = Vec::new();
        write_f6(&mut out, f64::MAX);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("1797693134862315708145274237317043567980") && s.ends_with(".000000"));
        assert_eq!(s.len(), 316);
    }

    /// The mean of a long float32 run matches a compensated reference to ~1e-12 relative even
    /// when it is small compared to the values (the float64 accuracy numpy's mean has).
    #[test]
    fn mean_accuracy() {
        let mut r = rng(3);
        let v: Vec<f32> = (0..1_000_003)
            .map(|_| {
                let u = |x: u64| (x >> 40) as f32 / (1u64 << 24) as f32;
                let x = r();
                (u(x) + u(x << 24) - 1.0) * 100.0 + 0.001
            })
            .collect();
        let want = reference(&v.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let got = float(stats_of(ElemKind::F32, &f32_bytes(&v), v.len(), 4));
        assert_eq!((got.0, got.1), (want.0, want.1));
        assert!((got.2 - want.2).abs() <= 1e-9 * want.2.abs(), "{} vs {}", got.2, want.2);
    }
}
