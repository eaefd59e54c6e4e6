//! Copies a tensor view's elements in logical row-major order (what a safetensors reader gives back) through a
//! bounded staging buffer: memory never grows with the tensor. Pure given the reader and the writer.
//!
//! Plan: drop size-1 dimensions and merge dimensions that continue each other in logical order (a compact
//! tensor becomes one run). When the innermost run is contiguous and long, each run is read straight into the
//! output half of the staging buffer, in chunks. Otherwise as many inner dimensions as fit the source half are
//! read as one block (the gaps with them) and their elements gathered in order into the output half; a
//! dimension too sparse for that is read element by element.

#![forbid(unsafe_code)]

use crate::stats::source::reach;
use crate::stats::walk::ByteSource;

/// Why a copy stopped.
#[derive(Debug)]
pub enum CopyError {
    /// The tensor memory could not be read (the reason).
    Read(&'static str),
    /// The writer failed (its reason).
    Write(String),
}

/// Contiguous runs at least this long are read in place rather than gathered from blocks.
const LONG_RUN_BYTES: u64 = 4096;
/// Most dimensions handled (after dropping size-1 ones).
const MAX_DIMS: usize = 64;

/// Copies the view (first element at `base`, `shape` and `strides` in elements, `eb` bytes per element) to
/// `write` in logical row-major order, using `staging` (at least 2 x `eb` bytes, e.g. 4 MiB).
pub fn copy_logical(
    src: &mut dyn ByteSource,
    base: u64,
    shape: &[i64],
    strides: &[i64],
    eb: u64,
    staging: &mut [u8],
    write: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), CopyError> {
    if shape.len() != strides.len() || shape.len() > MAX_DIMS {
        return Err(CopyError::Read("unsupported shape"));
    }
    if shape.iter().any(|&n| n <= 0) || eb == 0 {
        return if shape.iter().any(|&n| n < 0) { Err(CopyError::Read("negative size")) } else { Ok(()) };
    }
    if (staging.len() as u64) < 2 * eb {
        return Err(CopyError::Read("staging buffer too small"));
    }
    // (size, stride in elements), outermost first, sizes >= 2, merged where they continue each other.
    let mut dims = [(0i64, 0i64); MAX_DIMS];
    let mut nd = 0;
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        if nd > 0 && dims[nd - 1].1 == n.checked_mul(s).ok_or(CopyError::Read("tensor too large"))? {
            dims[nd - 1] = (dims[nd - 1].0 * n, s);
        } else {
            dims[nd] = (n, s);
            nd += 1;
        }
    }
    if nd == 0 {
        dims[0] = (1, 1);
        nd = 1;
    }
    let dims = &dims[..nd];
    let mut c = Copier { src, eb, staging, filled: 0, write };
    c.copy(base, dims)?;
    c.flush()
}

struct Copier<'a> {
    src: &'a mut dyn ByteSource,
    eb: u64,
    staging: &'a mut [u8],
    /// Bytes waiting in the output area.
    filled: usize,
    write: &'a mut dyn FnMut(&[u8]) -> Result<(), String>,
}

/// Address of `base + off` elements (`off` may be negative).
fn addr(base: u64, off: i128, eb: u64) -> Result<u64, CopyError> {
    let a = base as i128 + off * eb as i128;
    if !(0..1i128 << 64).contains(&a) {
        return Err(CopyError::Read("tensor address range overflows"));
    }
    Ok(a as u64)
}

/// Next index of an odometer over `dims` (last dimension fastest), keeping `off` in step.
fn advance(idx: &mut [i64], dims: &[(i64, i64)], off: &mut i128) -> bool {
    for k in (0..dims.len()).rev() {
        idx[k] += 1;
        *off += dims[k].1 as i128;
        if idx[k] < dims[k].0 {
            return true;
        }
        *off -= dims[k].0 as i128 * dims[k].1 as i128;
        idx[k] = 0;
    }
    false
}

impl Copier<'_> {
    fn flush(&mut self) -> Result<(), CopyError> {
        if self.filled > 0 {
            let half = self.staging.len() / 2;
            (self.write)(&self.staging[half..half + self.filled]).map_err(CopyError::Write)?;
            self.filled = 0;
        }
        Ok(())
    }

    /// Room left in the output area (the upper half of the staging buffer).
    fn room(&self) -> usize {
        self.staging.len() - self.staging.len() / 2 - self.filled
    }

    fn copy(&mut self, base: u64, dims: &[(i64, i64)]) -> Result<(), CopyError> {
        let eb = self.eb;
        let half = (self.staging.len() / 2) as u128;
        let (n0, s0) = dims[dims.len() - 1];
        if s0 == 1 && n0 as u64 * eb >= LONG_RUN_BYTES {
            return self.each_outer(base, &dims[..dims.len() - 1], |c, a| c.run(a, n0 as u64 * eb));
        }
        // How many inner dimensions fit one block read.
        let mut k = 0;
        let mut span: u128 = eb as u128;
        while k < dims.len() {
            let (n, s) = dims[dims.len() - 1 - k];
            let more = span + (n as u128 - 1) * s.unsigned_abs() as u128 * eb as u128;
            if more > half {
                break;
            }
            span = more;
            k += 1;
        }
        let (outer, inner) = dims.split_at(dims.len() - k);
        self.each_outer(base, outer, |c, a| c.block(a, inner))
    }

    /// Calls `f` with the address of each outer index in order.
    fn each_outer(
        &mut self,
        base: u64,
        outer: &[(i64, i64)],
        mut f: impl FnMut(&mut Self, u64) -> Result<(), CopyError>,
    ) -> Result<(), CopyError> {
        let mut idx = [0i64; MAX_DIMS];
        let mut off: i128 = 0;
        loop {
            f(self, addr(base, off, self.eb)?)?;
            if !advance(&mut idx[..outer.len()], outer, &mut off) {
                return Ok(());
            }
        }
    }

    /// A contiguous run of `len` bytes, read straight into the output area.
    fn run(&mut self, mut a: u64, mut len: u64) -> Result<(), CopyError> {
        while len > 0 {
            if self.room() < self.eb as usize {
                self.flush()?;
            }
            let take = (self.room() as u64).min(len) / self.eb * self.eb;
            let start = self.staging.len() / 2 + self.filled;
            self.src.read(a, &mut self.staging[start..start + take as usize]).map_err(CopyError::Read)?;
            self.filled += take as usize;
            a += take;
            len -= take;
        }
        Ok(())
    }

    /// The elements of `inner` (which fit the source half; empty = one element) read as one block.
    fn block(&mut self, a: u64, inner: &[(i64, i64)]) -> Result<(), CopyError> {
        let eb = self.eb as usize;
        if inner.is_empty() {
            return self.run(a, eb as u64);
        }
        // Lowest offset (negative strides) and span of the block.
        let (low, high) = reach(inner.iter().copied()).map_err(CopyError::Read)?;
        let start = addr(a, low, self.eb)?;
        let span = ((high - low) as usize + 1) * eb;
        let half = self.staging.len() / 2;
        self.src.read(start, &mut self.staging[..span]).map_err(CopyError::Read)?;
        // The innermost dimension is copied as one slice when it is contiguous, else element by element.
        let (n_last, s_last) = inner[inner.len() - 1];
        let (outer, piece) = if s_last == 1 { (&inner[..inner.len() - 1], n_last as usize * eb) } else { (inner, eb) };
        let mut idx = [0i64; MAX_DIMS];
        let mut off: i128 = -low;
        loop {
            let mut from = off as usize * eb;
            let mut left = piece;
            while left > 0 {
                if self.room() < eb {
                    self.flush()?;
                }
                let take = left.min(self.room() / eb * eb);
                let to = half + self.filled;
                self.staging.copy_within(from..from + take, to);
                self.filled += take;
                from += take;
                left -= take;
            }
            if !advance(&mut idx[..outer.len()], outer, &mut off) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory of 4096 bytes at address 0x1000, byte i = i % 251.
    struct Mem(Vec<u8>);
    impl ByteSource for Mem {
        fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
            let a = addr.checked_sub(0x1000).ok_or("below")? as usize;
            dst.copy_from_slice(self.0.get(a..a + dst.len()).ok_or("above")?);
            Ok(())
        }
    }

    fn logical(base: i64, shape: &[i64], strides: &[i64], eb: i64, staging: usize) -> Vec<u8> {
        let mut mem = Mem((0..65536u32).map(|i| (i % 251) as u8).collect());
        let mut out = Vec::new();
        let mut st = vec![0u8; staging];
        copy_logical(&mut mem, (0x1000 + base) as u64, shape, strides, eb as u64, &mut st, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    fn reference(base: i64, shape: &[i64], strides: &[i64], eb: i64) -> Vec<u8> {
        let n: i64 = shape.iter().product();
        let mut out = Vec::new();
        for flat in 0..n {
            let (mut rem, mut off) = (flat, 0);
            for d in (0..shape.len()).rev() {
                off += (rem % shape[d]) * strides[d];
                rem /= shape[d];
            }
            for b in 0..eb {
                out.push((((base + off * eb + b) as u32) % 251) as u8);
            }
        }
        out
    }

    #[test]
    fn views_in_logical_order() {
        let cases: &[(i64, &[i64], &[i64], i64)] = &[
            (0, &[4, 8], &[8, 1], 2),
            (0, &[8, 4], &[1, 8], 2),
            (6, &[4, 3], &[10, 2], 4),
            (0, &[], &[], 8),
            (100, &[5], &[-3], 2),
            (0, &[3, 1, 4], &[4, 7, 1], 1),
            (0, &[3, 4], &[0, 1], 2),
            (0, &[2, 3, 4], &[1, 8, 2], 2),
            (0, &[600], &[1], 16),
            (0, &[7, 700], &[700, 1], 2),
            (0, &[50, 3], &[300, 97], 1),
        ];
        for &(base, shape, strides, eb) in cases {
            for staging in [32usize, 64, 1000, 1 << 16] {
                if staging < 2 * eb as usize {
                    continue;
                }
                assert_eq!(
                    logical(base, shape, strides, eb, staging),
                    reference(base, shape, strides, eb),
                    "{shape:?} {strides:?} staging {staging}"
                );
            }
        }
        assert!(logical(0, &[3, 0], &[1, 1], 4, 64).is_empty());
    }
}
