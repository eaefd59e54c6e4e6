//! Display names of DLPack data types and devices, as torch prints them (`torch.float16`, `cuda:0`).

use crate::abi::dlpack::{DataType, Device};

/// torch's name of a DLPack data type, when torch has one.
pub fn torch_dtype_name(dt: DataType) -> Option<&'static str> {
    let name = match (dt.code, dt.bits, dt.lanes) {
        (0, 8, 1) => "int8",
        (0, 16, 1) => "int16",
        (0, 32, 1) => "int32",
        (0, 64, 1) => "int64",
        (1, 8, 1) => "uint8",
        (1, 16, 1) => "uint16",
        (1, 32, 1) => "uint32",
        (1, 64, 1) => "uint64",
        (2, 16, 1) => "float16",
        (2, 32, 1) => "float32",
        (2, 64, 1) => "float64",
        (4, 16, 1) => "bfloat16",
        (5, 64, 1) => "complex64",
        (5, 128, 1) => "complex128",
        (6, 8, 1) => "bool",
        (10, 8, 1) => "float8_e4m3fn",
        (11, 8, 1) => "float8_e4m3fnuz",
        (12, 8, 1) => "float8_e5m2",
        (13, 8, 1) => "float8_e5m2fnuz",
        (14, 8, 1) => "float8_e8m0fnu",
        (17, 4, 2) => "float4_e2m1fn_x2",
        _ => return None,
    };
    Some(name)
}

/// Appends `torch.<name>`, or `dlpack(code=C, bits=B, lanes=L)` where torch has no name.
pub fn push_dtype(out: &mut Vec<u8>, dt: DataType) {
    match torch_dtype_name(dt) {
        Some(name) => {
            out.extend_from_slice(b"torch.");
            out.extend_from_slice(name.as_bytes());
        }
        None => {
            out.extend_from_slice(b"dlpack(code=");
            super::pyrepr::push_int(out, dt.code);
            out.extend_from_slice(b", bits=");
            super::pyrepr::push_int(out, dt.bits);
            out.extend_from_slice(b", lanes=");
            super::pyrepr::push_int(out, dt.lanes);
            out.push(b')');
        }
    }
}

/// Appends a device as torch and tvm-ffi print it: `cpu`, `cuda:0`, and tvm-ffi's names for the rest
/// (`cuda_host:0`, `rocm:1`, ...; `dl<N>:<id>` for a type DLPack does not define).
pub fn push_device(out: &mut Vec<u8>, dev: Device) {
    let name = match dev.device_type {
        1 => {
            out.extend_from_slice(b"cpu");
            return;
        }
        2 => "cuda",
        3 => "cuda_host",
        4 => "opencl",
        7 => "vulkan",
        8 => "metal",
        9 => "vpi",
        10 => "rocm",
        11 => "rocm_host",
        12 => "ext_dev",
        13 => "cuda_managed",
        14 => "oneapi",
        15 => "webgpu",
        16 => "hexagon",
        17 => "maia",
        18 => "trn",
        other => {
            out.extend_from_slice(b"dl");
            super::pyrepr::push_int(out, other);
            ""
        }
    };
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    super::pyrepr::push_int(out, dev.device_id);
}

/// tvm-ffi's text of a dtype (`float16`, `bfloat16`, `float8_e4m3fn`...), or `dlpack(code,bits,lanes)`.
pub fn dtype_text(dt: DataType) -> String {
    match torch_dtype_name(dt) {
        Some(n) => n.to_string(),
        None => format!("dlpack({},{},{})", dt.code, dt.bits, dt.lanes),
    }
}

/// torch's text of a device (`cpu`, `cuda:0`).
pub fn device_text(d: Device) -> String {
    let mut out = Vec::new();
    push_device(&mut out, d);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtype(code: u8, bits: u8, lanes: u16) -> String {
        let mut v = Vec::new();
        push_dtype(&mut v, DataType { code, bits, lanes });
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn dtype_names() {
        assert_eq!(dtype(2, 16, 1), "torch.float16");
        assert_eq!(dtype(4, 16, 1), "torch.bfloat16");
        assert_eq!(dtype(10, 8, 1), "torch.float8_e4m3fn");
        assert_eq!(dtype(17, 4, 2), "torch.float4_e2m1fn_x2");
        assert_eq!(dtype(6, 8, 1), "torch.bool");
        assert_eq!(dtype(1, 64, 1), "torch.uint64");
        assert_eq!(dtype(9, 8, 1), "dlpack(code=9, bits=8, lanes=1)");
        assert_eq!(dtype(2, 32, 4), "dlpack(code=2, bits=32, lanes=4)");
    }

    #[test]
    fn device_names() {
        let d = |t, i| {
            let mut v = Vec::new();
            push_device(&mut v, Device { device_type: t, device_id: i });
            String::from_utf8(v).unwrap()
        };
        assert_eq!(d(1, 0), "cpu");
        assert_eq!(d(2, 3), "cuda:3");
        assert_eq!(d(3, 0), "cuda_host:0");
        assert_eq!(d(99, 1), "dl99:1");
    }
}
