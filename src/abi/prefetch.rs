//! Every read a call's records need, batched: the descriptors of its tensor arguments (direct, and inside
//! Arrays and Lists), their shapes and strides, and the Arrays' items, each kind read with one batched copy
//! (`mem::read_scatter`) instead of two or three system calls per tensor.
//!
//! Bound (system calls to read host memory for one call's records at level 3, all memory readable, tensors
//! of at most 64 dimensions): with `T` tensors, `S` Array/List objects reached (nested to depth `D`) and
//! `I <= 256` prefetched items, per batch kind at most `ceil(ranges / 1024)` groups (and `ceil(bytes / 64 KiB)`
//! through the pipe), each one `process_vm_readv` or `fstat` + `writev` + `readv`:
//! - descriptors: `ceil(T / 1024)` groups; shapes and strides: `ceil(2T / 1024)` groups;
//! - per level of Array nesting: payloads `ceil(S / 1024)`, items `ceil(I / 1024)` groups.
//!
//! So a call with up to 512 tensors (up to 8 dimensions) and no Arrays costs at most 2 groups = 6 system
//! calls, whatever the count; with a top-level Array of tensors, 4 groups = 12. Level 5 adds the data of
//! the statistics: for CPU tensors spanning at most 64 KiB (1 MiB in all per phase) one more batch before
//! the call and one after it (`stats::LiveStats::prefetch_data`); every other tensor costs one read per
//! 4 MiB of span and phase (pinned, managed and device memory, larger tensors).
//!
//! The scratch vectors are pooled (`os/scratch.rs`): no allocation per call once the scratch pool is warm.

use super::dlpack::{desc_from_raw, desc_with_dims, read_tensor, RawDlTensor, TensorDesc, MAX_NDIM};
use super::ffi::{type_index as ti, FfiAny, SeqPayload, OBJECT_HEADER_SIZE};
use crate::os::mem::{read_scatter, Piece, ReadError};
use crate::os::scratch::{Lease, Reset, ScratchPool};
use std::cell::Cell;
use std::mem::size_of;

/// Most Array/List items prefetched per call (the record prints at most this many anyway).
pub const PREFETCH_ITEMS: usize = 256;
/// Most items prefetched of one Array or List (the record prints at most this many of one).
pub const PREFETCH_ITEMS_PER_SEQ: usize = 64;
/// Deepest Array nesting prefetched.
const PREFETCH_DEPTH: usize = 8;
/// Most tensors prefetched (more are read one by one; a call this large is far beyond any real one).
const PREFETCH_TENSORS: usize = 4096;

/// The scratch of one call's prefetch (pooled).
#[derive(Default)]
struct Scratch {
    tensors: Vec<usize>,
    raws: Vec<RawDlTensor>,
    raw_ok: Vec<bool>,
    /// Offset of each tensor's shape in `dims` (strides follow it), or u32::MAX when not prefetched.
    dims_at: Vec<u32>,
    dims: Vec<i64>,
    dims_ok: Vec<bool>,
    seq_obj: Vec<usize>,
    seq: Vec<SeqPayload>,
    seq_ok: Vec<bool>,
    /// (first item in `items`, items prefetched) of each sequence.
    seq_items: Vec<(u32, u32)>,
    items: Vec<FfiAny>,
    items_ok: Vec<bool>,
    pieces: Vec<Piece>,
    ok: Vec<bool>,
}

impl Reset for Scratch {
    fn reset(&mut self) {
        self.tensors.clear();
        self.raws.clear();
        self.raw_ok.clear();
        self.dims_at.clear();
        self.dims.clear();
        self.dims_ok.clear();
        self.seq_obj.clear();
        self.seq.clear();
        self.seq_ok.clear();
        self.seq_items.clear();
        self.items.clear();
        self.items_ok.clear();
        self.pieces.clear();
        self.ok.clear();
    }
    fn keep(&self) -> bool {
        self.dims.capacity() <= 1 << 16 && self.tensors.capacity() <= PREFETCH_TENSORS
    }
}

static SCRATCH: ScratchPool<Scratch, 32> = ScratchPool::new();

/// The descriptors (and shapes and strides) of a call's tensors and the items of its Arrays, read in a few
/// batches before the inputs record is written and kept for the outputs record.
pub struct Prefetch {
    s: Lease<Scratch, 32>,
    /// Where the last tensor lookup was found: records look tensors up in the order they were collected.
    cursor: Cell<usize>,
    /// How many of the tensors are top-level arguments (they come first).
    top_level: usize,
}

const ZERO_RAW: RawDlTensor = RawDlTensor {
    data: 0,
    device: super::dlpack::Device { device_type: 0, device_id: 0 },
    ndim: 0,
    dtype: super::dlpack::DataType { code: 0, bits: 0, lanes: 0 },
    shape: 0,
    strides: 0,
    byte_offset: 0,
};
const ZERO_SEQ: SeqPayload = SeqPayload { data: 0, size: 0, capacity: 0 };

impl Prefetch {
    /// Reads the `DLTensor`s at `addrs`, then their shapes and strides (the tests' entry; calls go through
    /// [`Prefetch::read_args`]).
    #[cfg(test)]
    pub fn read(addrs: impl Iterator<Item = usize>) -> Prefetch {
        let mut p = Prefetch { s: SCRATCH.take(), cursor: Cell::new(0), top_level: 0 };
        for a in addrs {
            if p.s.tensors.len() < PREFETCH_TENSORS {
                p.s.tensors.push(a);
            }
        }
        p.top_level = p.s.tensors.len();
        p.fetch_tensors();
        p
    }

    /// Reads everything the records of a call with arguments `args` need: tensor descriptors (direct and in
    /// Arrays/Lists, nested up to depth 8, at most 256 items in all), shapes, strides and items.
    pub fn read_args(args: &[FfiAny]) -> Prefetch {
        let mut p = Prefetch { s: SCRATCH.take(), cursor: Cell::new(0), top_level: 0 };
        let mut wave_start = 0;
        for a in args {
            p.collect(a);
        }
        p.top_level = p.s.tensors.len();
        let mut depth = 0;
        while wave_start < p.s.seq_obj.len() && depth < PREFETCH_DEPTH {
            let wave_end = p.s.seq_obj.len();
            p.fetch_seqs(wave_start, wave_end);
            // Items found in this wave add tensors and the next wave's sequences.
            for k in wave_start..wave_end {
                let (first, n) = p.s.seq_items[k];
                for i in first as usize..(first + n) as usize {
                    if p.s.items_ok[i] {
                        let item = p.s.items[i];
                        p.collect(&item);
                    }
                }
            }
            wave_start = wave_end;
            depth += 1;
        }
        p.fetch_tensors();
        p
    }

    /// Notes a tensor or a sequence object to read.
    fn collect(&mut self, a: &FfiAny) {
        let s = &mut *self.s;
        match a.type_index {
            ti::DL_TENSOR_PTR if s.tensors.len() < PREFETCH_TENSORS => s.tensors.push(a.as_addr()),
            ti::TENSOR if a.as_addr() != 0 && s.tensors.len() < PREFETCH_TENSORS => {
                // An object at the top of the address space has no readable payload: 0 reads as invalid.
                s.tensors.push(a.as_addr().checked_add(OBJECT_HEADER_SIZE).unwrap_or(0))
            }
            ti::ARRAY | ti::LIST
                if a.as_addr() != 0 && s.seq_obj.len() < PREFETCH_ITEMS && !s.seq_obj.contains(&a.as_addr()) =>
            {
                s.seq_obj.push(a.as_addr())
            }
            _ => {}
        }
    }

    /// Reads the payloads of sequences `from..to`, then (a second batch) their first items.
    fn fetch_seqs(&mut self, from: usize, to: usize) {
        let s = &mut *self.s;
        s.seq.resize(to, ZERO_SEQ);
        s.seq_ok.resize(to, false);
        s.seq_items.resize(to, (0, 0));
        s.pieces.clear();
        for k in from..to {
            s.pieces.push(Piece {
                addr: s.seq_obj[k].checked_add(OBJECT_HEADER_SIZE).unwrap_or(0),
                off: (k - from) * size_of::<SeqPayload>(),
                len: size_of::<SeqPayload>(),
            });
        }
        s.ok.clear();
        s.ok.resize(to - from, false);
        read_scatter(pod_bytes_mut(&mut s.seq[from..to]), &s.pieces, &mut s.ok);
        s.seq_ok[from..to].copy_from_slice(&s.ok);
        // Items: the first PREFETCH_ITEMS_PER_SEQ of each, PREFETCH_ITEMS in all.
        let first_item = s.items.len();
        s.pieces.clear();
        let mut next = first_item;
        for k in from..to {
            let seq = s.seq[k];
            let n = if s.seq_ok[k] && seq.size > 0 {
                (seq.size as u64)
                    .min(PREFETCH_ITEMS_PER_SEQ as u64)
                    .min((PREFETCH_ITEMS - next.min(PREFETCH_ITEMS)) as u64) as usize
            } else {
                0
            };
            s.seq_items[k] = (next as u32, n as u32);
            if n > 0 {
                s.pieces.push(Piece {
                    addr: seq.data,
                    off: (next - first_item) * size_of::<FfiAny>(),
                    len: n * size_of::<FfiAny>(),
                });
            }
            next += n;
        }
        s.items.resize(next, FfiAny::default());
        s.items_ok.resize(next, false);
        s.ok.clear();
        s.ok.resize(s.pieces.len(), false);
        read_scatter(pod_bytes_mut(&mut s.items[first_item..]), &s.pieces, &mut s.ok);
        let mut piece = 0;
        for k in from..to {
            let (first, n) = s.seq_items[k];
            if n > 0 {
                let good = s.ok[piece];
                piece += 1;
                s.items_ok[first as usize..(first + n) as usize].iter_mut().for_each(|o| *o = good);
            }
        }
    }

    /// Reads the collected descriptors (one batch), then their shapes and strides (a second batch).
    fn fetch_tensors(&mut self) {
        let s = &mut *self.s;
        let n = s.tensors.len();
        s.raws.clear();
        s.raws.resize(n, ZERO_RAW);
        s.raw_ok.clear();
        s.raw_ok.resize(n, false);
        s.pieces.clear();
        for (i, &a) in s.tensors.iter().enumerate() {
            s.pieces.push(Piece { addr: a, off: i * size_of::<RawDlTensor>(), len: size_of::<RawDlTensor>() });
        }
        read_scatter(pod_bytes_mut(&mut s.raws), &s.pieces, &mut s.raw_ok);
        // Shapes and strides of sane descriptors.
        s.dims_at.clear();
        s.dims_at.resize(n, u32::MAX);
        s.pieces.clear();
        let mut at = 0usize;
        for i in 0..n {
            let raw = &s.raws[i];
            if !s.raw_ok[i] || raw.ndim <= 0 || raw.ndim as usize > MAX_NDIM || raw.shape == 0 {
                continue;
            }
            let nd = raw.ndim as usize;
            s.dims_at[i] = at as u32;
            s.pieces.push(Piece { addr: raw.shape, off: at * 8, len: nd * 8 });
            if raw.strides != 0 {
                s.pieces.push(Piece { addr: raw.strides, off: (at + nd) * 8, len: nd * 8 });
            }
            at += 2 * nd;
        }
        s.dims.clear();
        s.dims.resize(at, 0);
        s.ok.clear();
        s.ok.resize(s.pieces.len(), false);
        read_scatter(pod_bytes_mut(&mut s.dims), &s.pieces, &mut s.ok);
        s.dims_ok.clear();
        s.dims_ok.resize(n, true);
        let mut piece = 0;
        for i in 0..n {
            if s.dims_at[i] == u32::MAX {
                continue;
            }
            let parts = if s.raws[i].strides != 0 { 2 } else { 1 };
            for _ in 0..parts {
                if !s.ok[piece] {
                    s.dims_ok[i] = false;
                }
                piece += 1;
            }
        }
    }

    /// Index of the descriptor at `addr`, searching from where the last lookup was found.
    fn find(&self, addr: usize) -> Option<usize> {
        let t = &self.s.tensors;
        let n = t.len();
        let start = self.cursor.get().min(n);
        let hit = (start..n).chain(0..start).find(|&i| t[i] == addr)?;
        self.cursor.set(hit + 1);
        Some(hit)
    }

    /// The checked descriptor of the `DLTensor` at `addr`: from the batch when it was prefetched, else read
    /// on its own.
    pub fn tensor(&self, addr: usize) -> Result<TensorDesc, ReadError> {
        match self.find(addr) {
            Some(i) => self.tensor_at(i),
            None => read_tensor(addr),
        }
    }

    /// The descriptors prefetched (those that are valid): of the call's top-level tensor arguments only, or
    /// of every tensor found (Arrays included).
    pub fn descs(&self, top_level_only: bool) -> impl Iterator<Item = TensorDesc> + Clone + '_ {
        let n = if top_level_only { self.top_level } else { self.s.tensors.len() };
        (0..n.min(self.s.tensors.len())).filter_map(|i| self.tensor_at(i).ok())
    }

    fn tensor_at(&self, i: usize) -> Result<TensorDesc, ReadError> {
        let s = &*self.s;
        if s.tensors[i] == 0 {
            return Err("null DLTensor pointer");
        }
        if !s.raw_ok[i] {
            return Err("unreadable DLTensor");
        }
        let raw = &s.raws[i];
        if s.dims_at[i] == u32::MAX || !s.dims_ok[i] {
            // Outside the batched path (0-d, out of range, null or unreadable arrays): the full checks.
            return desc_from_raw(raw);
        }
        let nd = raw.ndim as usize;
        let at = s.dims_at[i] as usize;
        let dims = &s.dims[at..at + 2 * nd];
        desc_with_dims(raw, |shape, strides| {
            shape.copy_from_slice(&dims[..nd]);
            if raw.strides != 0 {
                strides.copy_from_slice(&dims[nd..]);
            }
            Ok(())
        })
    }

    /// The payload of the Array/List object `obj` and its prefetched first items, when it was prefetched.
    pub fn seq(&self, obj: usize) -> Option<(SeqPayload, &[FfiAny])> {
        let s = &*self.s;
        let k = s.seq_obj.iter().position(|&o| o == obj)?;
        if k >= s.seq_ok.len() || !s.seq_ok[k] {
            return None;
        }
        let (first, n) = s.seq_items[k];
        let items = &s.items[first as usize..(first + n) as usize];
        let ok = s.items_ok[first as usize..(first + n) as usize].iter().all(|&o| o);
        Some((s.seq[k], if ok { items } else { &[] }))
    }
}

/// The bytes of a slice of plain-old-data mirrors, for a copy into it.
fn pod_bytes_mut<T: Copy>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: only used with `#[repr(C)]` mirrors of integers and pointers (RawDlTensor, SeqPayload, FfiAny,
    // i64), for which every byte pattern is a valid value.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::dlpack::tests::raw;

    #[test]
    fn prefetch_matches_single_reads() {
        let shape = [4i64, 128];
        let strides = [1i64, 4];
        let good = raw(2, &shape, Some(&strides));
        let bad_shape = RawDlTensor { shape: 16, ..raw(2, &shape, None) };
        let big = raw(1000, &shape, None);
        let wide_shape = [2i64; 20];
        let wide = raw(20, &wide_shape, None);
        let addrs = [
            &good as *const _ as usize,
            8,
            &bad_shape as *const _ as usize,
            &big as *const _ as usize,
            0,
            &wide as *const _ as usize,
        ];
        let p = Prefetch::read(addrs.iter().copied());
        for &a in &addrs {
            let batched = p.tensor(a).map(|d| (d.shape().to_vec(), d.strides().to_vec()));
            let single = read_tensor(a).map(|d| (d.shape().to_vec(), d.strides().to_vec()));
            assert_eq!(batched, single, "address {a:#x}");
        }
        assert_eq!(p.tensor(addrs[0]).unwrap().strides(), &[1, 4]);
    }

    #[test]
    fn many_tensors_and_arrays() {
        let shape = [3i64, 5];
        let tensors: Vec<RawDlTensor> = (0..300).map(|_| raw(2, &shape, None)).collect();
        let mut args: Vec<FfiAny> = tensors
            .iter()
            .map(|t| FfiAny { type_index: ti::DL_TENSOR_PTR, small_len: 0, payload: t as *const _ as u64 })
            .collect();
        // An Array object (header + payload) holding two of the tensors, and one that contains itself.
        let items = [args[0], args[1]];
        let mut obj = [0u64; 6];
        obj[1] = ti::ARRAY as u64;
        obj[3] = items.as_ptr() as u64;
        obj[4] = 2;
        let mut me = [0u64; 6];
        me[1] = ti::ARRAY as u64;
        let me_addr = me.as_ptr() as u64;
        let self_item = [FfiAny { type_index: ti::ARRAY, small_len: 0, payload: me_addr }];
        me[3] = self_item.as_ptr() as u64;
        me[4] = 1;
        args.push(FfiAny { type_index: ti::ARRAY, small_len: 0, payload: obj.as_ptr() as u64 });
        args.push(FfiAny { type_index: ti::ARRAY, small_len: 0, payload: me_addr });
        let p = Prefetch::read_args(&args);
        for t in &tensors {
            assert_eq!(p.tensor(t as *const _ as usize).unwrap().shape(), &[3, 5]);
        }
        let (seq, got) = p.seq(obj.as_ptr() as usize).unwrap();
        assert_eq!((seq.size, got.len()), (2, 2));
        assert_eq!(got[1], args[1]);
        let (seq, got) = p.seq(me_addr as usize).unwrap();
        assert_eq!((seq.size, got.len()), (1, 1));
        // The kernel read `me` through its address.
        std::hint::black_box(&me);
    }
}
