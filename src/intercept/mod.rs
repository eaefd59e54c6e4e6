//! The interception layer, how calls arrive: the `dlsym` entry, the trampoline block and the frame of a
//! TVM-FFI call, the CUDA driver wrappers and the GOT rewrite that routes PLT calls to them. With `abi` and
//! `os`, the only code that dereferences raw host pointers. What each call logs is the `calls` layer's.

pub mod cuda;
pub mod dlsym;
pub mod plt;
pub mod trampoline;
pub mod tvm_call;
