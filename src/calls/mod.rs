//! What a call logs, per level. For now kernel launch records (`launch.rs`); `intercept` says how calls
//! arrive, this layer decides what is written, with the layers below (`sync`, `graph`, `log`, `record`).

pub mod launch;
