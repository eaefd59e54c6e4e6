//! The interception layer: the `dlsym` entry, the trampoline block and wrapper of TVM-FFI calls, the CUDA
//! driver wrappers and the GOT rewrite that routes PLT calls to them. With `abi`, the only code that deals
//! in raw host pointers.

pub mod args_copy;
pub mod cuda;
pub mod dlsym;
pub mod launch;
pub mod plt;
pub mod trampoline;
pub mod tvm_call;
