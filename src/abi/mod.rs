//! The ABI layer: `#[repr(C)]` mirrors of TVM-FFI, DLPack and dynamic-loader types, and the only code that
//! reads raw pointers handed over by the host. Everything above this module works on the safe views it returns.

pub mod cuda_driver;
pub mod cuda_sync;
pub mod dl;
pub mod dlpack;
pub mod ffi;
pub mod fsio;
pub mod got;
pub mod leaked;
pub mod mem;
pub mod objects;
pub mod owned_slot;
pub mod pinned;
pub mod pipe;
pub mod pool;
pub mod prefetch;
pub mod process;
pub mod ringmap;
pub mod stats_kernel;
pub mod sys;
pub mod tvm_runtime;
