//! What a call logs, per level: the records and dumps before and after a wrapped TVM-FFI call (`tvm.rs`,
//! with the argument array they read, `args_copy.rs`), kernel launch records (`launch.rs`), and what the
//! driver's CUDA graph calls (capture, instantiation, replay) record (`graphs.rs`). `intercept` says how
//! calls arrive and keeps the frame around the real function; this layer decides what is written and kept,
//! with the layers below (`sync`, `graph`, `dump`, `stats`, `log`, `record`, `capture`).

pub mod args_copy;
pub mod graphs;
pub mod launch;
pub mod tvm;
