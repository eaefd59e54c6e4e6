//! Level 10: every tensor of a call saved before and after it (docs/dumps-and-replay.md).
//! [`before_call`] checks the limits, makes the call's folder, writes `inputs.safetensors` and line 1 of
//! `metadata.jsonl`; [`after_call`] writes `outputs.safetensors` and line 2. The pieces: [`args`] (what replay
//! needs to know of each argument), [`tensors`], [`safetensors`] (the streaming writer), [`copy`] (logical
//! order through the staging buffer), [`source`] (host or device memory, never during a capture),
//! [`limits`], [`folder`] (names, the session file, stderr lines) and [`json`].

pub mod args;
pub mod copy;
pub mod folder;
pub mod json;
pub mod limits;
pub mod module_file;
pub mod safetensors;
pub mod source;
pub mod tensors;

use crate::abi::ffi::FfiAny;
use crate::abi::prefetch::Prefetch;
use crate::abi::tvm_runtime;
use crate::os::signals::FsizeGuard;
use json::{push_int, push_key, push_str};
use source::{capture_blocks, Reader, CAPTURE_REASON};
use tensors::DumpTensor;

/// What identifies the dumped function.
pub struct Callee<'a> {
    /// `<module>.<export>`.
    pub name: &'a str,
    /// The module's path (what `tvm_ffi.load_module` takes).
    pub library: &'a str,
    /// This call's number among the calls of this function in this process, from 1.
    pub sequence: u32,
    /// An address in the module's code (the real export): which file is mapped there is what replay loads.
    pub code: usize,
}

/// A call whose inputs were dumped, waiting for its return.
pub struct Pending {
    folder: String,
    common: Vec<u8>,
    tensors: Vec<DumpTensor>,
    capture: bool,
    meta: Option<crate::os::fsio::File>,
    input_info: Vec<u8>,
}

/// The fields both lines share (up to and excluding the closing brace).
fn common_fields(t: &Callee, folder: &str, stamp: &str, arguments: &[u8], capture: bool) -> Vec<u8> {
    let (module, export) = t.name.rsplit_once('.').unwrap_or(("", t.name));
    let mut o = Vec::with_capacity(512 + arguments.len());
    o.extend_from_slice(b"{\"function_name\": ");
    push_str(&mut o, t.name.as_bytes());
    o.extend_from_slice(b", \"module\": ");
    push_str(&mut o, module.as_bytes());
    o.extend_from_slice(b", \"export\": ");
    push_str(&mut o, export.as_bytes());
    o.extend_from_slice(b", \"library\": ");
    push_str(&mut o, t.library.as_bytes());
    module_file::push_fields(&mut o, t.code);
    o.extend_from_slice(b", \"call_sequence\": ");
    push_int(&mut o, t.sequence);
    o.extend_from_slice(b", \"timestamp\": ");
    push_str(&mut o, stamp.as_bytes());
    o.extend_from_slice(b", \"process_id\": ");
    push_int(&mut o, crate::os::process::pid());
    o.extend_from_slice(b", \"thread_id\": ");
    push_int(&mut o, crate::os::sys::kernel_thread_id());
    o.extend_from_slice(b", \"logger\": \"flashlog\", \"versions\": {\"flashlog\": ");
    push_str(&mut o, env!("CARGO_PKG_VERSION").as_bytes());
    o.push(b'}');
    o.extend_from_slice(b", \"tensor_format\": \"safetensors\", \"graph_capture\": ");
    o.extend_from_slice(if capture { b"true" } else { b"false" });
    o.extend_from_slice(b", \"dump_dir\": ");
    push_str(&mut o, folder.as_bytes());
    o.extend_from_slice(b", \"arguments\": ");
    o.extend_from_slice(arguments);
    o
}

/// `, "tensor_details": {...}` of the tensors in a file.
fn push_tensor_details(o: &mut Vec<u8>, tensors: &[DumpTensor]) {
    o.extend_from_slice(b", \"tensor_details\": {");
    for (i, t) in tensors.iter().enumerate() {
        if i > 0 {
            o.extend_from_slice(b", ");
        }
        push_key(o, &t.key);
        tensors::push_tensor_fields(o, t);
    }
    o.push(b'}');
}

/// `"<prefix>_tensor_keys": [...], "<prefix>_size_bytes": N` of the tensors in a file (FlashInfer's
/// `tensor_info` fields).
fn tensor_info_fields(prefix: &str, tensors: &[DumpTensor]) -> Vec<u8> {
    let mut o = Vec::with_capacity(64);
    push_key(&mut o, &format!("{prefix}_tensor_keys"));
    o.push(b'[');
    for (i, t) in tensors.iter().filter(|t| t.not_dumped.is_none()).enumerate() {
        if i > 0 {
            o.extend_from_slice(b", ");
        }
        push_str(&mut o, t.key.as_bytes());
    }
    o.extend_from_slice(b"], ");
    push_key(&mut o, &format!("{prefix}_size_bytes"));
    push_int(&mut o, tensors.iter().filter(|t| t.not_dumped.is_none()).map(|t| t.nbytes()).sum::<u64>());
    o
}

/// Dumps the inputs of a call about to run; None when the call is not dumped (limits, a stopped dump, an
/// error, which printed its one line).
pub fn before_call(t: &Callee, args: &[FfiAny], prefetch: Option<&Prefetch>) -> Option<Pending> {
    let _fsize = crate::os::signals::file_size_limited().then(FsizeGuard::new);
    let dir = folder::session_dir()?;
    let mut arguments = Vec::with_capacity(256);
    let mut tensors = Vec::new();
    args::describe_args(&mut arguments, args, &mut tensors, &[], prefetch);
    let capture = tensors.iter().any(|x| x.not_dumped == Some(CAPTURE_REASON));
    let input_bytes: u64 = tensors.iter().filter(|x| x.not_dumped.is_none()).map(|x| x.nbytes()).sum();
    // Inputs and the same arguments after the call (a returned tensor is checked when it exists).
    if !limits::reserve(t.name, input_bytes.saturating_mul(2)) {
        return None;
    }
    let stamp = folder::stamp();
    let call_dir = folder::make_call_folder(&dir.dir, &stamp, t)?;
    let mut reader = Reader::default();
    let meta = [("format", "flashlog"), ("phase", "inputs"), ("function_name", t.name)];
    if let Err(safetensors::FileError::Write(e)) =
        safetensors::write_file(&format!("{call_dir}/inputs.safetensors"), &mut tensors, &meta, &mut reader)
    {
        folder::stop(&format!("cannot write {e}"));
        folder::remove_call_folder(&call_dir);
        return None;
    }
    // Tensors found unreadable while the file was written are listed as such in `arguments` too.
    let found_unreadable: Vec<(String, &'static str)> =
        tensors.iter().filter_map(|x| x.not_dumped.map(|r| (x.key.clone(), r))).collect();
    if !found_unreadable.is_empty() {
        arguments.clear();
        args::describe_args(&mut arguments, args, &mut Vec::new(), &found_unreadable, prefetch);
    }
    let common = common_fields(t, &dir.shown(&call_dir), &stamp, &arguments, capture);
    let mut line = common.clone();
    line.extend_from_slice(b", \"execution_status\": \"inputs_saved\"");
    let input_info = tensor_info_fields("input", &tensors);
    line.extend_from_slice(b", \"tensor_info\": {");
    line.extend_from_slice(&input_info);
    line.push(b'}');
    push_tensor_details(&mut line, &tensors);
    line.extend_from_slice(b"}\n");
    let mut meta = None;
    if !folder::write_lines(&call_dir, &mut meta, &line) {
        folder::remove_call_folder(&call_dir);
        return None;
    }
    Some(Pending { folder: call_dir, common, tensors, capture, meta, input_info })
}

/// Why reading this tensor now could disturb a capture (or the driver could not say), if it could.
fn blocked(x: &DumpTensor) -> Option<&'static str> {
    x.desc.as_ref().ok().and_then(|d| capture_blocks(d.device))
}

/// Dumps the outputs of a call that returned `rc` with `result`, and writes line 2.
pub fn after_call(p: Pending, rc: i32, result: Option<&FfiAny>) {
    let _fsize = crate::os::signals::file_size_limited().then(FsizeGuard::new);
    let Pending { folder: call_dir, common, mut tensors, capture, meta: mut meta_file, input_info } = p;
    // The same arguments after the call (their descriptors may not change: the caller owns them).
    for x in tensors.iter_mut() {
        if x.not_dumped.is_none() {
            x.not_dumped = blocked(x);
        }
    }
    let mut result_json = Vec::new();
    if let (0, Some(r)) = (rc, result) {
        let mut found = Vec::new();
        args::describe(&mut result_json, r, "result", &mut found, 0, &[], None);
        for mut x in found {
            if x.not_dumped.is_none() {
                x.not_dumped = if capture { Some(CAPTURE_REASON) } else { blocked(&x) };
            }
            if x.not_dumped.is_none() && !limits::reserve_more(x.nbytes()) {
                x.not_dumped = Some("FLASHINFER_DUMP_MAX_SIZE_GB reached");
            }
            tensors.push(x);
        }
    }
    let mut reader = Reader::default();
    let meta = [("format", "flashlog"), ("phase", "outputs")];
    let mut line = common;
    let outputs_ok =
        match safetensors::write_file(&format!("{call_dir}/outputs.safetensors"), &mut tensors, &meta, &mut reader) {
            Ok(()) => true,
            Err(safetensors::FileError::Write(e)) => {
                folder::stop(&format!("cannot write {e}"));
                false
            }
        };
    let mut kind = Vec::new();
    let mut message = Vec::new();
    match rc {
        0 => line.extend_from_slice(b", \"execution_status\": \"completed\""),
        -1 if tvm_runtime::peek_raised_error(&mut kind, &mut message) => {
            line.extend_from_slice(b", \"execution_status\": \"failed\", \"error_kind\": ");
            push_str(&mut line, &kind);
            line.extend_from_slice(b", \"error_message\": ");
            push_str(&mut line, &message);
        }
        _ => line.extend_from_slice(b", \"execution_status\": \"failed\""),
    }
    line.extend_from_slice(b", \"return_code\": ");
    push_int(&mut line, rc);
    if !result_json.is_empty() {
        line.extend_from_slice(b", \"result\": ");
        line.extend_from_slice(&result_json);
    }
    if !outputs_ok {
        line.extend_from_slice(b", \"outputs_dumped\": false");
    }
    line.extend_from_slice(b", \"tensor_info\": {");
    line.extend_from_slice(&input_info);
    line.extend_from_slice(b", ");
    line.extend_from_slice(&tensor_info_fields("output", &tensors));
    line.push(b'}');
    push_tensor_details(&mut line, &tensors);
    line.extend_from_slice(b"}\n");
    folder::write_lines(&call_dir, &mut meta_file, &line);
}
