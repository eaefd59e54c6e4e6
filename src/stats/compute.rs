//! One-pass tensor statistics (min, max, mean, NaN and Inf counts) for every dtype of `LOG-FORMAT.md`, and
//! the walker that feeds a strided tensor through a bounded staging buffer. Pure: bytes come from a
//! [`ByteSource`] (host memory or a device copy), so everything here is tested without a process or a GPU.

use crate::record::pyrepr::{push_fixed6, push_int};
use std::sync::OnceLock;

/// Where the walker gets bytes from.
pub trait ByteSource {
    /// Copies `dst.len()` bytes at `addr` into `dst`, or says why it cannot.
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str>;
}

/// How a narrow float is encoded: exponent and mantissa widths, bias, and which codes mean NaN / Inf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minifloat {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    style: Special,
}

/// The special values of a narrow float format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    /// IEEE-like: all-ones exponent is Inf (mantissa 0) or NaN.
    Ieee,
    /// "fn": no Inf; only the all-ones code (both signs) is NaN.
    Fn,
    /// "fnuz": no Inf, no -0; the code 0x80 is the only NaN.
    Fnuz,
    /// No Inf, no NaN (float6 and float4 kinds).
    Finite,
    /// e8m0fnu: an exponent only, 2^(e-127); 0xFF is NaN.
    ExponentOnly,
}

impl Minifloat {
    /// Decodes one code (the low `1 + exp_bits + man_bits` bits of `code`).
    pub fn decode(&self, code: u8) -> f32 {
        let width = 1 + self.exp_bits + self.man_bits;
        if self.style == Special::ExponentOnly {
            return if code == 0xff { f32::NAN } else { 2f32.powi(code as i32 - 127) };
        }
        let code = code as u32 & ((1 << width) - 1);
        let sign = if code >> (width - 1) & 1 == 1 { -1.0f32 } else { 1.0 };
        let exp = (code >> self.man_bits) & ((1 << self.exp_bits) - 1);
        let man = code & ((1 << self.man_bits) - 1);
        let all_ones_exp = exp == (1 << self.exp_bits) - 1;
        match self.style {
            Special::Ieee if all_ones_exp => return if man == 0 { sign * f32::INFINITY } else { f32::NAN },
            Special::Fn if all_ones_exp && man == (1 << self.man_bits) - 1 => return f32::NAN,
            Special::Fnuz if code == 1 << (width - 1) => return f32::NAN,
            _ => {}
        }
        let frac = man as f32 / (1u32 << self.man_bits) as f32;
        let magnitude =
            if exp == 0 { frac * 2f32.powi(1 - self.bias) } else { (1.0 + frac) * 2f32.powi(exp as i32 - self.bias) };
        sign * magnitude
    }
}

const fn mini(exp_bits: u32, man_bits: u32, bias: i32, style: Special) -> Minifloat {
    Minifloat { exp_bits, man_bits, bias, style }
}

/// The element kinds statistics are taken of, from a DLPack dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// float32.
    F32,
    /// float64.
    F64,
    /// A float8 or float6 kind, one value per byte (DLPack code).
    Narrow(u8),
    /// float4_e2m1fn packed two per byte (low nibble first).
    F4x2,
    /// Signed integers of 1, 2, 4, 8 bytes.
    Int(u8),
    /// Unsigned integers of 1, 2, 4, 8 bytes.
    UInt(u8),
    /// bool (one byte).
    Bool,
}

/// The narrow float formats by DLPack type code.
fn narrow_format(code: u8) -> Option<Minifloat> {
    Some(match code {
        7 => mini(3, 4, 3, Special::Ieee),            // float8_e3m4
        8 => mini(4, 3, 7, Special::Ieee),            // float8_e4m3
        9 => mini(4, 3, 11, Special::Fnuz),           // float8_e4m3b11fnuz
        10 => mini(4, 3, 7, Special::Fn),             // float8_e4m3fn
        11 => mini(4, 3, 8, Special::Fnuz),           // float8_e4m3fnuz
        12 => mini(5, 2, 15, Special::Ieee),          // float8_e5m2
        13 => mini(5, 2, 16, Special::Fnuz),          // float8_e5m2fnuz
        14 => mini(8, 0, 127, Special::ExponentOnly), // float8_e8m0fnu
        15 => mini(2, 3, 1, Special::Finite),         // float6_e2m3fn
        16 => mini(3, 2, 3, Special::Finite),         // float6_e3m2fn
        17 => mini(2, 1, 1, Special::Finite),         // float4_e2m1fn
        _ => return None,
    })
}

impl ElemKind {
    /// The kind of a DLPack dtype, or None when no statistics are defined for it (complex, vectors, ...).
    pub fn from_dlpack(code: u8, bits: u8, lanes: u16) -> Option<ElemKind> {
        Some(match (code, bits, lanes) {
            (2, 16, 1) => ElemKind::F16,
            (4, 16, 1) => ElemKind::BF16,
            (2, 32, 1) => ElemKind::F32,
            (2, 64, 1) => ElemKind::F64,
            (7..=14, 8, 1) | (15 | 16, 6, 1) => ElemKind::Narrow(code),
            (17, 4, 2) => ElemKind::F4x2,
            (0, 8 | 16 | 32 | 64, 1) => ElemKind::Int(bits / 8),
            (1, 8 | 16 | 32 | 64, 1) => ElemKind::UInt(bits / 8),
            (6, 8, 1) => ElemKind::Bool,
            _ => return None,
        })
    }

    /// Bytes per element (a packed float4 element is one byte holding two values).
    pub fn elem_bytes(&self) -> usize {
        match self {
            ElemKind::F16 | ElemKind::BF16 => 2,
            ElemKind::F32 => 4,
            ElemKind::F64 => 8,
            ElemKind::Narrow(_) | ElemKind::F4x2 | ElemKind::Bool => 1,
            ElemKind::Int(b) | ElemKind::UInt(b) => *b as usize,
        }
    }

    fn is_float(&self) -> bool {
        !matches!(self, ElemKind::Int(_) | ElemKind::UInt(_) | ElemKind::Bool)
    }
}

/// 256-entry decode tables of the byte-wide float kinds, built once.
fn narrow_lut(code: u8) -> &'static [f32; 256] {
    static LUTS: OnceLock<Vec<[f32; 256]>> = OnceLock::new();
    let luts = LUTS.get_or_init(|| {
        (7u8..=17)
            .map(|c| {
                let fmt = narrow_format(c).expect("codes 7..=17 are narrow floats");
                let mut t = [0f32; 256];
                for (i, v) in t.iter_mut().enumerate() {
                    *v = fmt.decode(i as u8);
                }
                t
            })
            .collect()
    });
    &luts[(code - 7) as usize]
}

/// float16 decode table (65536 entries, 256 KiB), built once on first use of a float16 tensor.
fn f16_lut() -> &'static [f32] {
    static LUT: OnceLock<Vec<f32>> = OnceLock::new();
    LUT.get_or_init(|| (0..=u16::MAX).map(f16_to_f32).collect())
}

/// Exact IEEE binary16 -> binary32.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let man = (h & 0x3ff) as f32;
    match exp {
        0 => sign * man * 2f32.powi(-24),
        0x1f if man == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// The statistics of a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stats {
    /// No elements: no lines.
    Empty,
    /// Floating kinds.
    Float {
        /// Minimum (NaN when any element is NaN, as torch).
        min: f64,
        /// Maximum (NaN when any element is NaN).
        max: f64,
        /// Mean over all elements.
        mean: f64,
        /// NaN elements.
        nan_count: u64,
        /// +Inf and -Inf elements.
        inf_count: u64,
    },
    /// Integer and bool kinds.
    Int {
        /// Minimum.
        min: i128,
        /// Maximum.
        max: i128,
        /// Mean.
        mean: f64,
    },
}

/// Most dimensions a walked tensor may have (the shim's descriptor limit).
const MAX_DIMS: usize = 64;

/// Lanes of the contiguous float kernel: independent accumulators the compiler can keep in vector registers.
const LANES: usize = 16;

/// Running one-pass statistics of one tensor.
#[derive(Clone, Debug)]
pub struct Accumulator {
    kind: ElemKind,
    count: u64,
    fmin: f64,
    fmax: f64,
    fsum: f64,
    nan: u64,
    inf: u64,
    imin: i128,
    imax: i128,
    isum: i128,
}

impl Accumulator {
    /// An empty accumulator for `kind`.
    pub fn new(kind: ElemKind) -> Self {
        Accumulator {
            kind,
            count: 0,
            fmin: f64::INFINITY,
            fmax: f64::NEG_INFINITY,
            fsum: 0.0,
            nan: 0,
            inf: 0,
            imin: i128::MAX,
            imax: i128::MIN,
            isum: 0,
        }
    }

    /// Feeds `count` elements taken from `bytes`, `stride` bytes apart (the element size for a contiguous run,
    /// larger for a strided one, 0 for a broadcast dimension).
    pub fn feed(&mut self, bytes: &[u8], count: usize, stride: usize) {
        if count == 0 {
            return;
        }
        let eb = self.kind.elem_bytes();
        if stride == eb {
            self.feed_contiguous(&bytes[..count * eb]);
        } else {
            for i in 0..count {
                self.feed_contiguous(&bytes[i * stride..i * stride + eb]);
            }
        }
    }

    fn feed_contiguous(&mut self, bytes: &[u8]) {
        match self.kind {
            ElemKind::F32 => self.floats::<4>(bytes, f32::from_le_bytes),
            ElemKind::BF16 => self.floats::<2>(bytes, |b| f32::from_bits((u16::from_le_bytes(b) as u32) << 16)),
            ElemKind::F16 => {
                let lut = f16_lut();
                self.floats::<2>(bytes, |b| lut[u16::from_le_bytes(b) as usize])
            }
            ElemKind::Narrow(code) => {
                let lut = narrow_lut(code);
                self.floats::<1>(bytes, |b| lut[b[0] as usize])
            }
            ElemKind::F4x2 => {
                let lut = narrow_lut(17);
                self.floats::<1>(bytes, |b| lut[(b[0] & 0xf) as usize]);
                self.floats::<1>(bytes, |b| lut[(b[0] >> 4) as usize]);
            }
            ElemKind::F64 => self.doubles(bytes),
            ElemKind::Int(1) => self.ints::<1>(bytes, |b| b[0] as i8 as i64),
            ElemKind::Int(2) => self.ints::<2>(bytes, |b| i16::from_le_bytes(b) as i64),
            ElemKind::Int(4) => self.ints::<4>(bytes, |b| i32::from_le_bytes(b) as i64),
            ElemKind::UInt(1) | ElemKind::Bool => self.ints::<1>(bytes, |b| b[0] as i64),
            ElemKind::UInt(2) => self.ints::<2>(bytes, |b| u16::from_le_bytes(b) as i64),
            ElemKind::UInt(4) => self.ints::<4>(bytes, |b| u32::from_le_bytes(b) as i64),
            ElemKind::Int(_) => self.wide_ints(bytes, |b| i64::from_le_bytes(b) as i128),
            ElemKind::UInt(_) => self.wide_ints(bytes, |b| u64::from_le_bytes(b) as i128),
        }
    }

    /// The float kernel: `LANES` independent min/max/sum/NaN/Inf accumulators over values decoded to f32.
    /// Comparisons ignore NaN (counted separately), so min and max stay NaN-free until `finish`.
    #[inline(always)]
    fn floats<const SZ: usize>(&mut self, bytes: &[u8], decode: impl Fn([u8; SZ]) -> f32) {
        let mut mn = [f32::INFINITY; LANES];
        let mut mx = [f32::NEG_INFINITY; LANES];
        let mut sum = [0f64; LANES];
        let mut nan = [0u32; LANES];
        let mut inf = [0u32; LANES];
        let block = SZ * LANES;
        // Per-lane u32 counters: flush at most every 2^31 blocks (never reached within one staging buffer).
        let blocks = bytes.chunks_exact(block);
        let tail = blocks.remainder();
        for chunk in blocks {
            for l in 0..LANES {
                let v = decode(chunk[l * SZ..(l + 1) * SZ].try_into().expect("SZ bytes"));
                mn[l] = if v < mn[l] { v } else { mn[l] };
                mx[l] = if v > mx[l] { v } else { mx[l] };
                let is_nan = v.is_nan();
                nan[l] += is_nan as u32;
                inf[l] += (v.abs() == f32::INFINITY) as u32;
                sum[l] += if is_nan { 0.0 } else { v as f64 };
            }
        }
        for item in tail.chunks_exact(SZ) {
            let v = decode(item.try_into().expect("SZ bytes"));
            mn[0] = if v < mn[0] { v } else { mn[0] };
            mx[0] = if v > mx[0] { v } else { mx[0] };
            nan[0] += v.is_nan() as u32;
            inf[0] += (v.abs() == f32::INFINITY) as u32;
            sum[0] += if v.is_nan() { 0.0 } else { v as f64 };
        }
        for l in 0..LANES {
            self.fmin = self.fmin.min(mn[l] as f64);
            self.fmax = self.fmax.max(mx[l] as f64);
            self.fsum += sum[l];
            self.nan += nan[l] as u64;
            self.inf += inf[l] as u64;
        }
        self.count += (bytes.len() / SZ) as u64;
    }

    fn doubles(&mut self, bytes: &[u8]) {
        for item in bytes.chunks_exact(8) {
            let v = f64::from_le_bytes(item.try_into().expect("8 bytes"));
            if v.is_nan() {
                self.nan += 1;
                continue;
            }
            self.fmin = self.fmin.min(v);
            self.fmax = self.fmax.max(v);
            self.inf += v.is_infinite() as u64;
            self.fsum += v;
        }
        self.count += (bytes.len() / 8) as u64;
    }

    /// Integers up to 32 bits: min/max/sum in i64 (no overflow within one call's bytes), merged into i128.
    #[inline(always)]
    fn ints<const SZ: usize>(&mut self, bytes: &[u8], decode: impl Fn([u8; SZ]) -> i64) {
        let (mut mn, mut mx, mut sum) = (i64::MAX, i64::MIN, 0i64);
        for item in bytes.chunks_exact(SZ) {
            let v = decode(item.try_into().expect("SZ bytes"));
            mn = mn.min(v);
            mx = mx.max(v);
            sum += v;
        }
        self.merge_ints(mn as i128, mx as i128, sum as i128, bytes.len() / SZ);
    }

    fn wide_ints(&mut self, bytes: &[u8], decode: impl Fn([u8; 8]) -> i128) {
        let (mut mn, mut mx, mut sum) = (i128::MAX, i128::MIN, 0i128);
        for item in bytes.chunks_exact(8) {
            let v = decode(item.try_into().expect("8 bytes"));
            mn = mn.min(v);
            mx = mx.max(v);
            sum += v;
        }
        self.merge_ints(mn, mx, sum, bytes.len() / 8);
    }

    fn merge_ints(&mut self, mn: i128, mx: i128, sum: i128, n: usize) {
        if n == 0 {
            return;
        }
        self.imin = self.imin.min(mn);
        self.imax = self.imax.max(mx);
        self.isum = self.isum.saturating_add(sum);
        self.count += n as u64;
    }

    /// The statistics so far.
    pub fn finish(&self) -> Stats {
        if self.count == 0 {
            return Stats::Empty;
        }
        if !self.kind.is_float() {
            return Stats::Int { min: self.imin, max: self.imax, mean: self.isum as f64 / self.count as f64 };
        }
        let any_nan = self.nan > 0;
        Stats::Float {
            min: if any_nan { f64::NAN } else { self.fmin },
            max: if any_nan { f64::NAN } else { self.fmax },
            mean: if any_nan { f64::NAN } else { self.fsum / self.count as f64 },
            nan_count: self.nan,
            inf_count: self.inf,
        }
    }
}

/// Appends the statistics lines of `LOG-FORMAT.md` (`min=`, `max=`, `mean=`, and for floats `nan_count=`,
/// `inf_count=`), each starting with `indent`. Nothing for an empty tensor.
pub fn write_stats_lines(out: &mut Vec<u8>, indent: &str, stats: &Stats) {
    let line = |out: &mut Vec<u8>, key: &[u8], value: &dyn Fn(&mut Vec<u8>)| {
        out.extend_from_slice(indent.as_bytes());
        out.extend_from_slice(key);
        value(out);
        out.push(b'\n');
    };
    match *stats {
        Stats::Empty => {}
        Stats::Float { min, max, mean, nan_count, inf_count } => {
            line(out, b"min=", &|o| push_fixed6(o, min));
            line(out, b"max=", &|o| push_fixed6(o, max));
            line(out, b"mean=", &|o| push_fixed6(o, mean));
            line(out, b"nan_count=", &|o| push_int(o, nan_count));
            line(out, b"inf_count=", &|o| push_int(o, inf_count));
        }
        Stats::Int { min, max, mean } => {
            line(out, b"min=", &|o| push_int(o, min));
            line(out, b"max=", &|o| push_int(o, max));
            line(out, b"mean=", &|o| push_fixed6(o, mean));
        }
    }
}

/// Walks a tensor whose first element is at `base` (shape and strides in elements) through `src`, copying
/// through `staging` (whose size bounds the memory used, whatever the tensor size), feeding `acc`.
/// - dense layouts (contiguous, transposed, any permutation without gaps) are streamed as one linear span:
///   the statistics do not depend on the order of elements;
/// - a non-dense tensor whose whole span fits in `staging` is copied once and walked in place;
/// - otherwise it is walked one innermost run at a time (broadcast and negative strides included).
pub fn walk_tensor(
    src: &mut dyn ByteSource,
    base: u64,
    shape: &[i64],
    strides: &[i64],
    kind: ElemKind,
    staging: &mut [u8],
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let eb = kind.elem_bytes() as i128;
    if shape.contains(&0) {
        return Ok(());
    }
    if staging.len() < eb as usize {
        return Err("staging buffer too small");
    }
    // Dimensions that matter (size > 1), as (size, stride in bytes), in a fixed array: no allocation.
    let mut dim_buf = [(0i128, 0i128); MAX_DIMS];
    let mut n_dims = 0;
    for (&n, &s) in shape.iter().zip(strides).filter(|(&n, _)| n > 1) {
        if n_dims == MAX_DIMS {
            return Err("too many dimensions");
        }
        dim_buf[n_dims] = (n as i128, s as i128 * eb);
        n_dims += 1;
    }
    let dims = &mut dim_buf[..n_dims];
    let numel: i128 = dims.iter().map(|d| d.0).product();
    // Lowest and highest byte offsets touched, relative to base.
    let low: i128 = dims.iter().map(|&(n, s)| if s < 0 { (n - 1) * s } else { 0 }).sum();
    let high: i128 = dims.iter().map(|&(n, s)| if s > 0 { (n - 1) * s } else { 0 }).sum::<i128>() + eb;
    let start = base as i128 + low;
    if start < 0 || base as i128 + high > u64::MAX as i128 {
        return Err("tensor extent out of the address space");
    }
    let span = high - low;
    let mut sorted = [(0i128, 0i128); MAX_DIMS];
    sorted[..n_dims].copy_from_slice(dims);
    if is_dense(&mut sorted[..n_dims], eb) {
        return stream_linear(src, start as u64, span as usize, kind, staging, acc);
    }
    if span as usize <= staging.len() {
        let buf = &mut staging[..span as usize];
        src.read(start as u64, buf)?;
        return walk_in_memory(buf, (-low) as usize, dims, kind, acc);
    }
    // Run by run: the innermost dimension (smallest |stride|) is the run, the rest an odometer.
    dims.sort_by_key(|&(_, s)| std::cmp::Reverse(s.abs()));
    let (dims, (run_len, run_stride)) = match dims.split_last_mut() {
        Some((last, rest)) => (rest, *last),
        None => (&mut [][..], (1, eb)),
    };
    let mut index_buf = [0i128; MAX_DIMS];
    let index = &mut index_buf[..dims.len()];
    let runs = numel / run_len;
    for _ in 0..runs {
        let offset: i128 = dims.iter().zip(index.iter()).map(|(&(_, s), &i)| i * s).sum();
        let first = base as i128 + offset + if run_stride < 0 { (run_len - 1) * run_stride } else { 0 };
        feed_run(src, first as u64, run_len as usize, run_stride.unsigned_abs() as usize, kind, staging, acc)?;
        for (k, i) in index.iter_mut().enumerate().rev() {
            *i += 1;
            if *i < dims[k].0 {
                break;
            }
            *i = 0;
        }
    }
    Ok(())
}

/// Whether the dimensions cover their span without gaps or overlap (some permutation of row-major).
fn is_dense(dims: &mut [(i128, i128)], eb: i128) -> bool {
    dims.sort_by_key(|&(_, s)| s.abs());
    let mut expected = eb;
    for &(n, s) in dims.iter() {
        if s.abs() != expected {
            return false;
        }
        expected *= n;
    }
    true
}

fn stream_linear(
    src: &mut dyn ByteSource,
    start: u64,
    span: usize,
    kind: ElemKind,
    staging: &mut [u8],
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let eb = kind.elem_bytes();
    let chunk = staging.len() / eb * eb;
    let mut done = 0usize;
    while done < span {
        let n = chunk.min(span - done);
        src.read(start + done as u64, &mut staging[..n])?;
        acc.feed(&staging[..n], n / eb, eb);
        done += n;
    }
    Ok(())
}

/// Feeds `count` elements `stride` bytes apart starting at `first`, in pieces whose span fits in `staging`.
fn feed_run(
    src: &mut dyn ByteSource,
    first: u64,
    count: usize,
    stride: usize,
    kind: ElemKind,
    staging: &mut [u8],
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let eb = kind.elem_bytes();
    if stride == 0 {
        src.read(first, &mut staging[..eb])?;
        acc.feed(&staging[..eb], count, 0);
        return Ok(());
    }
    let per_piece = ((staging.len() - eb) / stride + 1).max(1);
    let mut done = 0usize;
    while done < count {
        let n = per_piece.min(count - done);
        let span = (n - 1) * stride + eb;
        src.read(first + (done * stride) as u64, &mut staging[..span])?;
        acc.feed(&staging[..span], n, stride);
        done += n;
    }
    Ok(())
}

/// Walks a tensor already copied into `buf`, its first element at byte `origin`.
fn walk_in_memory(
    buf: &[u8],
    origin: usize,
    dims: &[(i128, i128)],
    kind: ElemKind,
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let eb = kind.elem_bytes();
    let Some((&(run_len, run_stride), outer)) = dims.split_last() else {
        acc.feed(&buf[origin..origin + eb], 1, eb);
        return Ok(());
    };
    let mut index_buf = [0i128; MAX_DIMS];
    let index = &mut index_buf[..outer.len()];
    let runs: i128 = outer.iter().map(|d| d.0).product();
    for _ in 0..runs {
        let offset: i128 = outer.iter().zip(index.iter()).map(|(&(_, s), &i)| i * s).sum();
        for j in 0..run_len {
            let at = (origin as i128 + offset + j * run_stride) as usize;
            acc.feed(&buf[at..at + eb], 1, eb);
        }
        for (k, i) in index.iter_mut().enumerate().rev() {
            *i += 1;
            if *i < outer[k].0 {
                break;
            }
            *i = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_nan_counted() {
        let mut bytes = Vec::new();
        for h in [0x3c00u16, 0x7e00, 0xfc00, 0x7c00] {
            bytes.extend_from_slice(&h.to_le_bytes());
        }
        let mut acc = Accumulator::new(ElemKind::F16);
        acc.feed(&bytes, 4, 2);
        assert!(f16_to_f32(0x7e00).is_nan());
        let Stats::Float { nan_count, inf_count, .. } = acc.finish() else { panic!() };
        assert_eq!((nan_count, inf_count), (1, 2));
    }

    /// A byte source over a vector mapped at a fake address, failing outside it.
    struct Fake {
        base: u64,
        bytes: Vec<u8>,
        reads: usize,
    }

    impl ByteSource for Fake {
        fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
            self.reads += 1;
            let start = addr.checked_sub(self.base).ok_or("below")? as usize;
            let src = self.bytes.get(start..start + dst.len()).ok_or("beyond")?;
            dst.copy_from_slice(src);
            Ok(())
        }
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn walker_respects_small_staging_and_strides() {
        let values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let mut src = Fake { base: 0x1000, bytes: f32_bytes(&values), reads: 0 };
        let mut staging = [0u8; 64];
        // Every other element of rows 0..10 of a 10x100 matrix: a non-dense view larger than staging.
        let mut acc = Accumulator::new(ElemKind::F32);
        walk_tensor(&mut src, 0x1000, &[10, 50], &[100, 2], ElemKind::F32, &mut staging, &mut acc).unwrap();
        let expect: Vec<f32> = (0..10).flat_map(|r| (0..50).map(move |c| (r * 100 + 2 * c) as f32)).collect();
        let mean = expect.iter().map(|&v| v as f64).sum::<f64>() / expect.len() as f64;
        assert_eq!(acc.finish(), Stats::Float { min: 0.0, max: 998.0, mean, nan_count: 0, inf_count: 0 });
        assert!(src.reads > 10);
    }

    #[test]
    fn walker_reports_unreadable_memory() {
        let mut src = Fake { base: 0x1000, bytes: vec![0; 16], reads: 0 };
        let mut staging = [0u8; 64];
        let mut acc = Accumulator::new(ElemKind::F32);
        assert!(walk_tensor(&mut src, 0x1000, &[100], &[1], ElemKind::F32, &mut staging, &mut acc).is_err());
    }

    #[test]
    fn int_extremes_are_exact() {
        let bytes: Vec<u8> = [i64::MIN, i64::MAX, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut acc = Accumulator::new(ElemKind::Int(8));
        acc.feed(&bytes, 3, 8);
        assert_eq!(acc.finish(), Stats::Int { min: i64::MIN as i128, max: i64::MAX as i128, mean: -1.0 / 3.0 });
        let mut out = Vec::new();
        write_stats_lines(&mut out, "  ", &acc.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("  min={}\n  max={}\n  mean=-0.333333\n", i64::MIN, i64::MAX)
        );
    }
}
