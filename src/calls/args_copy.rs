//! The host's argument array (`args`, `num_args` of a safe call), copied with the fault-tolerant read before
//! anything of it is logged: a C host may pass a count larger than its array (the callee may reject it
//! without reading anything), and reading the entries directly would fault in the shim. At most
//! [`MAX_LOGGED_ARGS`] entries are copied, into a pooled buffer (no allocation per call); a count beyond what
//! could be read gives one line in the inputs record, and the real function still gets the host's own
//! pointer and count.

use crate::abi::ffi::FfiAny;
use crate::os::mem;
use crate::os::scratch::{Lease, Reset, ScratchPool};
use crate::record::call::push_args_shortfall_line;

/// Most arguments of one call that are logged (FlashInfer's widest exports take about 40).
pub const MAX_LOGGED_ARGS: usize = 1024;

#[derive(Default)]
struct Buf(Vec<FfiAny>);

impl Reset for Buf {
    fn reset(&mut self) {
        self.0.clear();
    }
}

static BUFS: ScratchPool<Buf, 16> = ScratchPool::new();

/// The copied arguments of one call.
pub struct CopiedArgs {
    buf: Option<Lease<Buf, 16>>,
    claimed: i32,
}

impl CopiedArgs {
    /// Copies what can be read of `num_args` entries at `args` (up to [`MAX_LOGGED_ARGS`]).
    pub fn read(args: *const FfiAny, num_args: i32) -> CopiedArgs {
        if args.is_null() || num_args <= 0 {
            return CopiedArgs { buf: None, claimed: num_args };
        }
        let mut buf = BUFS.take();
        let want = (num_args as usize).min(MAX_LOGGED_ARGS);
        buf.0.resize(want, FfiAny::default());
        let got = mem::read_pod_prefix(args as usize, &mut buf.0);
        buf.0.truncate(got);
        CopiedArgs { buf: Some(buf), claimed: num_args }
    }

    /// The arguments that were read, in order.
    pub fn as_slice(&self) -> &[FfiAny] {
        self.buf.as_ref().map_or(&[], |b| &b.0)
    }

    /// Appends the line saying that not every claimed argument is logged, when that is so
    /// ([`push_args_shortfall_line`]).
    pub fn push_shortfall_line(&self, out: &mut Vec<u8>) {
        push_args_shortfall_line(out, self.claimed, self.as_slice().len(), MAX_LOGGED_ARGS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[FfiAny], claimed: i32) -> String {
        let copied = CopiedArgs::read(if args.is_empty() { std::ptr::null() } else { args.as_ptr() }, claimed);
        let mut out = Vec::new();
        copied.push_shortfall_line(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn shortfall_lines() {
        let args: Vec<FfiAny> = (0..3).map(|i| FfiAny { type_index: 1, small_len: 0, payload: i }).collect();
        let copied = CopiedArgs::read(args.as_ptr(), 3);
        assert_eq!(copied.as_slice(), &args[..]);
        assert_eq!(line(&args, 3), "");
        assert_eq!(line(&args, 2), "");
        assert_eq!(line(&[], 0), "");
        assert_eq!(line(&[], -7), "[num_args=-7: no arguments are logged]\n");
        let many = vec![FfiAny::default(); MAX_LOGGED_ARGS + 5];
        assert_eq!(line(&many, many.len() as i32), "[num_args=1029: only the first 1024 arguments are logged]\n");
    }
}
