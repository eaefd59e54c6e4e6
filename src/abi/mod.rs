//! The ABI layer: foreign layouts and functions only: `#[repr(C)]` mirrors of TVM-FFI, DLPack, CUDA and ELF
//! types, the dynamic loader, the driver and TVM-FFI runtime functions the shim calls, and the readers that turn
//! host pointers into safe views (through `os::mem`'s fault-tolerant reads). Everything above this module works
//! on the safe views it returns; the library's own OS services are in `os`, below it.

pub mod cuda_driver;
pub mod cuda_sync;
pub mod cuda_types;
pub mod dl;
pub mod dlpack;
pub mod ffi;
pub mod got;
pub mod objects;
pub mod prefetch;
pub mod stats_kernel;
pub mod tvm_runtime;
