//! What a call logs, per level: the records and dumps before and after a wrapped TVM-FFI call (`tvm.rs`,
//! with the argument array they read, `args_copy.rs`) and kernel launch records (`launch.rs`). `intercept`
//! says how calls arrive and keeps the frame around the real function; this layer decides what is written,
//! with the layers below (`sync`, `graph`, `dump`, `stats`, `log`, `record`).

pub mod args_copy;
pub mod launch;
pub mod tvm;
