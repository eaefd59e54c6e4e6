//! Pure planning for the statistics kernel: a tensor view becomes one kernel descriptor (dimensions
//! simplified as the host walker simplifies them, the fixed block split), and the blocks' partials fold back
//! into the [`Stats`] the host path would have computed for the same bytes.

#![forbid(unsafe_code)]

use crate::abi::stats_kernel::{Desc, Partial, MAX_DIMS};
use crate::stats::compute::{ElemKind, Minifloat, Specials, Stats};
use crate::stats::walk::{reduced, MAX_DIMS as WALK_DIMS};

/// Most blocks one tensor gets: its partials take at most 96 KiB of page-locked memory, and a large tensor
/// still spreads over every SM of the largest GPU several times.
pub const MAX_BLOCKS: u64 = 1024;
/// Elements per block at least (each thread folds at least one 16-byte group of every kind).
const MIN_PER_BLOCK: u64 = 4096;

/// `FL_*` element kinds of `stats_core.h`.
mod fl {
    pub const F32: u32 = 0;
    pub const F64: u32 = 1;
    pub const F16: u32 = 2;
    pub const BF16: u32 = 3;
    pub const MINI: u32 = 4;
    pub const F4X2: u32 = 5;
    pub const I8: u32 = 6;
    pub const I16: u32 = 7;
    pub const I32: u32 = 8;
    pub const I64: u32 = 9;
    pub const U8: u32 = 10;
    pub const U16: u32 = 11;
    pub const U32: u32 = 12;
    pub const U64: u32 = 13;
    pub const BOOL: u32 = 14;
}

/// The kernel's kind and minifloat layout word for an element kind.
pub fn kernel_kind(kind: ElemKind) -> (u32, u32) {
    let mini = |m: Minifloat| {
        let f = m.format();
        let sp = match f.specials {
            Specials::Ieee => 0,
            Specials::Fn => 1,
            Specials::Fnuz => 2,
            Specials::Finite => 3,
            Specials::E8M0 => 4,
        };
        (fl::MINI, f.exp_bits | f.man_bits << 8 | (f.bias as u32) << 16 | sp << 24)
    };
    match kind {
        ElemKind::F32 => (fl::F32, 0),
        ElemKind::F64 => (fl::F64, 0),
        ElemKind::F16 => (fl::F16, 0),
        ElemKind::BF16 => (fl::BF16, 0),
        ElemKind::Float8(m) | ElemKind::Float6(m) => mini(m),
        ElemKind::Float4x2 => (fl::F4X2, 0),
        ElemKind::I8 => (fl::I8, 0),
        ElemKind::I16 => (fl::I16, 0),
        ElemKind::I32 => (fl::I32, 0),
        ElemKind::I64 => (fl::I64, 0),
        ElemKind::U8 => (fl::U8, 0),
        ElemKind::U16 => (fl::U16, 0),
        ElemKind::U32 => (fl::U32, 0),
        ElemKind::U64 => (fl::U64, 0),
        ElemKind::Bool => (fl::BOOL, 0),
    }
}

/// A tensor planned for the kernel: its descriptor (partials address not yet set) and the broadcast repeat
/// factor the host applies when folding.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The descriptor.
    pub desc: Desc,
    /// Times every visited element counts (stride-0 dimensions).
    pub repeat: u64,
    /// The element kind.
    pub kind: ElemKind,
}

/// Plans the view (`first` = address of its first element; shape and strides in elements): None for an empty
/// view, Err when the view cannot be addressed or has more than 8 dimensions after simplification.
pub fn plan(first: u64, shape: &[i64], strides: &[i64], kind: ElemKind) -> Result<Option<Plan>, &'static str> {
    let mut dims = [(0u64, 0u64); WALK_DIMS];
    let Some((base, nd, repeat)) = reduced(first, shape, strides, kind, &mut dims)? else {
        return Ok(None);
    };
    let dims = &mut dims[..nd];
    // Outermost (largest stride) first, then merge dimensions that continue each other.
    for i in 1..dims.len() {
        let mut j = i;
        while j > 0 && dims[j - 1].1 < dims[j].1 {
            dims.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut m = 0;
    for i in 0..dims.len() {
        if m > 0 && dims[m - 1].1 as u128 == dims[i].1 as u128 * dims[i].0 as u128 {
            dims[m - 1] = (dims[m - 1].0 * dims[i].0, dims[i].1);
        } else {
            dims[m] = dims[i];
            m += 1;
        }
    }
    if m > MAX_DIMS {
        return Err("more than 8 dimensions after simplification");
    }
    let mut desc = Desc { base, ndim: m.max(1) as u32, ..Desc::default() };
    if m == 0 {
        desc.sizes[0] = 1;
        desc.strides[0] = 1;
    }
    let mut n: u64 = 1;
    for (k, &(size, stride)) in dims[..m].iter().enumerate() {
        desc.sizes[k] = size;
        desc.strides[k] = stride as i64;
        n *= size;
    }
    let (kk, fmt) = kernel_kind(kind);
    desc.kind = kk;
    desc.fmt = fmt;
    desc.n = n;
    desc.per_block = n.div_ceil(MAX_BLOCKS).div_ceil(MIN_PER_BLOCK).max(1) * MIN_PER_BLOCK;
    desc.nblocks = n.div_ceil(desc.per_block) as u32;
    Ok(Some(Plan { desc, repeat, kind }))
}

/// `fl_init` of `stats_core.h`.
fn init(unsigned: bool) -> Partial {
    Partial {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        imin: if unsigned { u64::MAX } else { i64::MAX as u64 },
        imax: if unsigned { 0 } else { i64::MIN as u64 },
        ..Partial::default()
    }
}

fn unsigned(kind: ElemKind) -> bool {
    matches!(kind, ElemKind::U8 | ElemKind::U16 | ElemKind::U32 | ElemKind::U64 | ElemKind::Bool)
}

/// `fl_merge` of `stats_core.h`: `b` after `a`.
fn merge(a: &mut Partial, b: &Partial, unsigned: bool) {
    a.min = if b.min < a.min { b.min } else { a.min };
    a.max = if b.max > a.max { b.max } else { a.max };
    a.sum += b.sum;
    a.nan = a.nan.wrapping_add(b.nan);
    a.pinf = a.pinf.wrapping_add(b.pinf);
    a.ninf = a.ninf.wrapping_add(b.ninf);
    a.count = a.count.wrapping_add(b.count);
    let s = isum(a).wrapping_add(isum(b));
    a.isum_lo = s as u64;
    a.isum_hi = (s >> 64) as u64;
    if unsigned {
        a.imin = a.imin.min(b.imin);
        a.imax = a.imax.max(b.imax);
    } else {
        a.imin = (a.imin as i64).min(b.imin as i64) as u64;
        a.imax = (a.imax as i64).max(b.imax as i64) as u64;
    }
}

fn isum(p: &Partial) -> i128 {
    ((p.isum_hi as u128) << 64 | p.isum_lo as u128) as i128
}

/// A partial from the 96 bytes a kernel wrote (native byte order, `fl_partial`'s layout).
pub fn partial_from_bytes(b: &[u8]) -> Partial {
    let w = |i: usize| {
        let mut a = [0u8; 8];
        if let Some(s) = b.get(8 * i..8 * i + 8) {
            a.copy_from_slice(s);
        }
        u64::from_ne_bytes(a)
    };
    Partial {
        min: f64::from_bits(w(0)),
        max: f64::from_bits(w(1)),
        sum: f64::from_bits(w(2)),
        nan: w(3),
        pinf: w(4),
        ninf: w(5),
        count: w(6),
        isum_lo: w(7),
        isum_hi: w(8),
        imin: w(9),
        imax: w(10),
        pad: w(11),
    }
}

/// A running fold of a tensor's block partials, in block order.
#[derive(Clone, Copy, Debug)]
pub struct Fold {
    acc: Partial,
    kind: ElemKind,
    repeat: u64,
}

impl Fold {
    /// An empty fold for `plan`'s tensor.
    pub fn new(plan: &Plan) -> Fold {
        Fold { acc: init(unsigned(plan.kind)), kind: plan.kind, repeat: plan.repeat }
    }

    /// Adds the next block's partial.
    pub fn add(&mut self, p: &Partial) {
        merge(&mut self.acc, p, unsigned(self.kind));
    }

    /// The statistics, by the host path's rules (a NaN makes min, max and mean NaN; the mean over every value,
    /// broadcast ones included).
    pub fn finish(&self) -> Stats {
        let a = &self.acc;
        let r = self.repeat;
        let count = a.count.saturating_mul(r);
        if count == 0 {
            return Stats::Empty;
        }
        let n = count as f64;
        let exact = isum(a).saturating_mul(r as i128);
        if !self.kind.is_float() {
            let (min, max) = if unsigned(self.kind) {
                (a.imin as i128, a.imax as i128)
            } else {
                (a.imin as i64 as i128, a.imax as i64 as i128)
            };
            return Stats::Int { min, max, mean: exact as f64 / n };
        }
        let (nan, inf) = (a.nan.saturating_mul(r), a.pinf.saturating_add(a.ninf).saturating_mul(r));
        if nan > 0 {
            return Stats::Float { min: f64::NAN, max: f64::NAN, mean: f64::NAN, nan_count: nan, inf_count: inf };
        }
        let sum = match scaled_unit(self.kind) {
            None => a.sum * r as f64,
            Some(unit) => {
                let mut s = exact as f64 * unit;
                if a.pinf > 0 {
                    s += f64::INFINITY;
                }
                if a.ninf > 0 {
                    s += f64::NEG_INFINITY;
                }
                s
            }
        };
        Stats::Float { min: a.min, max: a.max, mean: sum / n, nan_count: 0, inf_count: inf }
    }
}

/// The value of one unit of the exact sum (the format's smallest subnormal) for the kinds whose sum the kernel
/// keeps exactly; None for the kinds summed in `f64`.
fn scaled_unit(kind: ElemKind) -> Option<f64> {
    let f = match kind {
        ElemKind::Float8(m) | ElemKind::Float6(m) => m.format(),
        ElemKind::Float4x2 => Minifloat::E2M1Fn.format(),
        _ => return None,
    };
    if f.specials == Specials::E8M0 {
        return None;
    }
    Some(2f64.powi(1 - f.bias - f.man_bits as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_views_become_one_dimension() {
        let p = plan(0x1000, &[4, 8, 16], &[128, 16, 1], ElemKind::F32).unwrap().unwrap();
        assert_eq!((p.desc.ndim, p.desc.sizes[0], p.desc.strides[0], p.desc.n), (1, 512, 1, 512));
        assert_eq!((p.desc.nblocks, p.desc.per_block, p.repeat), (1, 4096, 1));
        // Transposed: the same set of elements, one run.
        let t = plan(0x1000, &[16, 32], &[1, 16], ElemKind::BF16).unwrap().unwrap();
        assert_eq!((t.desc.ndim, t.desc.n, t.desc.strides[0]), (1, 512, 1));
    }

    #[test]
    fn broadcast_negative_and_gaps() {
        let p = plan(0x1000, &[1000, 48], &[0, 1], ElemKind::F32).unwrap().unwrap();
        assert_eq!((p.desc.n, p.repeat), (48, 1000));
        let r = plan(0x1000 + 47 * 4, &[48], &[-1], ElemKind::F32).unwrap().unwrap();
        assert_eq!((r.desc.base, r.desc.strides[0]), (0x1000, 1));
        let g = plan(0x1000, &[7, 22], &[48, 2], ElemKind::F32).unwrap().unwrap();
        assert_eq!(
            (g.desc.ndim, g.desc.sizes[..2].to_vec(), g.desc.strides[..2].to_vec()),
            (2, vec![7, 22], vec![48, 2])
        );
        assert!(plan(0, &[0, 3], &[3, 1], ElemKind::F32).unwrap().is_none());
        let s = plan(0x1000, &[], &[], ElemKind::F32).unwrap().unwrap();
        assert_eq!((s.desc.n, s.desc.ndim), (1, 1));
    }

    #[test]
    fn block_split_is_fixed_by_the_size() {
        let p = plan(0, &[40 << 30], &[1], ElemKind::BF16).unwrap().unwrap();
        assert_eq!(p.desc.nblocks as u64, MAX_BLOCKS);
        assert!(p.desc.per_block * MAX_BLOCKS >= 40 << 30 && p.desc.per_block.is_multiple_of(MIN_PER_BLOCK));
        let q = plan(0, &[4097], &[1], ElemKind::BF16).unwrap().unwrap();
        assert_eq!((q.desc.nblocks, q.desc.per_block), (2, 4096));
    }

    #[test]
    fn fold_follows_the_host_rules() {
        let plan = plan(0, &[4], &[1], ElemKind::Float8(Minifloat::E5M2)).unwrap().unwrap();
        let mut f = Fold::new(&plan);
        // 1.0 and 2.0 in units of 2^-16, plus +inf: mean inf.
        f.add(&Partial { min: 1.0, max: 2.0, count: 3, isum_lo: 3 << 16, pinf: 1, ..init(false) });
        assert_eq!(f.finish(), Stats::Float { min: 1.0, max: 2.0, mean: f64::INFINITY, nan_count: 0, inf_count: 1 });
        let ip = super::plan(0, &[2], &[1], ElemKind::I64).unwrap().unwrap();
        let mut g = Fold::new(&ip);
        let minus = -5i128;
        g.add(&Partial {
            count: 2,
            imin: (-5i64) as u64,
            imax: 0,
            isum_lo: minus as u64,
            isum_hi: (minus >> 64) as u64,
            ..init(false)
        });
        assert_eq!(g.finish(), Stats::Int { min: -5, max: 0, mean: -2.5 });
    }
}
