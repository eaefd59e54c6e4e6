//! The `Tensor(...)` block of a record: shape, strides, dtype, device, contiguity and data pointer of a
//! tensor descriptor, and (at level 5) its statistics.

use super::names::{push_device, push_dtype};
use super::push_indent;
use super::pyrepr::{push_hex, push_int, push_tuple};
use crate::abi::dlpack::TensorDesc;

/// Fills in the statistics lines of a tensor at level 5 (host or device reads, capture checks).
pub trait StatsSource {
    /// Appends the statistics lines of `desc`, each starting with `indent` spaces.
    fn write_stats(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize);
}

/// Whether a tensor is contiguous by torch's rule: size-1 dimensions are ignored, empty tensors are
/// contiguous, and every other stride equals the product of the sizes after it.
pub fn is_contiguous(shape: &[i64], strides: &[i64]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1i64;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size == 1 {
            continue;
        }
        if stride != expected {
            return false;
        }
        expected = expected.saturating_mul(size);
    }
    true
}

/// Appends the Tensor block at `indent` (fields two spaces deeper), or `<invalid tensor: reason>` when the
/// descriptor could not be read safely.
pub fn write_tensor_block(
    out: &mut Vec<u8>,
    desc: Result<TensorDesc, &str>,
    indent: usize,
    stats: Option<&mut (dyn StatsSource + '_)>,
) {
    let desc = match desc {
        Ok(d) => d,
        Err(reason) => {
            push_indent(out, indent);
            out.extend_from_slice(b"<invalid tensor: ");
            out.extend_from_slice(reason.as_bytes());
            out.extend_from_slice(b">\n");
            return;
        }
    };
    push_indent(out, indent);
    out.extend_from_slice(b"Tensor(\n");
    let field = indent + 2;
    push_indent(out, field);
    out.extend_from_slice(b"shape=");
    push_tuple(out, desc.shape());
    out.push(b'\n');
    push_indent(out, field);
    out.extend_from_slice(b"stride=");
    push_tuple(out, desc.strides());
    out.push(b'\n');
    push_indent(out, field);
    out.extend_from_slice(b"dtype=");
    push_dtype(out, desc.dtype);
    out.push(b'\n');
    push_indent(out, field);
    out.extend_from_slice(b"device=");
    push_device(out, desc.device);
    out.push(b'\n');
    push_indent(out, field);
    out.extend_from_slice(if is_contiguous(desc.shape(), desc.strides()) {
        b"is_contiguous=True\n"
    } else {
        b"is_contiguous=False\n"
    });
    push_indent(out, field);
    out.extend_from_slice(b"data_ptr=");
    push_hex(out, desc.first_element() as u64);
    out.push(b'\n');
    if desc.byte_offset != 0 {
        push_indent(out, field);
        out.extend_from_slice(b"byte_offset=");
        push_int(out, desc.byte_offset);
        out.push(b'\n');
    }
    if let Some(stats) = stats {
        stats.write_stats(&desc, out, field);
    }
    push_indent(out, indent);
    out.extend_from_slice(b")\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::dlpack::{DataType, Device};

    #[test]
    fn contiguity_like_torch() {
        assert!(is_contiguous(&[4, 128], &[128, 1]));
        assert!(!is_contiguous(&[128, 4], &[1, 128]));
        assert!(is_contiguous(&[4, 1, 8], &[8, 99, 1]));
        assert!(is_contiguous(&[0, 3], &[7, 9]));
        assert!(is_contiguous(&[], &[]));
        assert!(!is_contiguous(&[4, 64], &[128, 2]));
    }

    #[test]
    fn block_layout() {
        let mut d = TensorDesc::new(
            0x7f3a1c000000,
            16,
            Device { device_type: 2, device_id: 0 },
            DataType { code: 2, bits: 16, lanes: 1 },
            2,
        );
        let (shape, strides) = d.dims_mut();
        shape.copy_from_slice(&[4, 128]);
        strides.copy_from_slice(&[128, 1]);
        let mut out = Vec::new();
        write_tensor_block(&mut out, Ok(d), 4, None);
        let want = "    Tensor(\n      shape=(4, 128)\n      stride=(128, 1)\n      dtype=torch.float16\n      device=cuda:0\n      is_contiguous=True\n      data_ptr=0x7f3a1c000010\n      byte_offset=16\n    )\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut out = Vec::new();
        write_tensor_block(&mut out, Err("ndim out of range"), 4, None);
        assert_eq!(String::from_utf8(out).unwrap(), "    <invalid tensor: ndim out of range>\n");
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::abi::dlpack::{DataType, Device};

    /// Formatting cost of one Tensor block: `cargo test --release -- --ignored --nocapture bench_tensor_block`.
    #[test]
    #[ignore]
    fn bench_tensor_block() {
        let mut d = TensorDesc::new(
            0x7f3a1c000000,
            0,
            Device { device_type: 1, device_id: 0 },
            DataType { code: 2, bits: 32, lanes: 1 },
            2,
        );
        let (shape, strides) = d.dims_mut();
        shape.copy_from_slice(&[4, 8]);
        strides.copy_from_slice(&[8, 1]);
        let mut out = Vec::with_capacity(1 << 20);
        let mut best = f64::MAX;
        for _ in 0..20 {
            out.clear();
            let t = std::time::Instant::now();
            for _ in 0..1000 {
                write_tensor_block(&mut out, Ok(d.clone()), 4, None);
            }
            best = best.min(t.elapsed().as_secs_f64() / 1000.0);
        }
        println!("tensor block: {:.1} ns, {} bytes", best * 1e9, out.len() / 1000);
    }
}
