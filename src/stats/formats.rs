//! The element kinds the statistics know (DLPack's type codes, bits and lanes) and the narrow floating-point
//! formats (every float8, float6 and packed float4 kind), each decoded through a 256-entry table built at
//! compile time and checked against `ml_dtypes` in the tests of `compute`. Pure code.

#![forbid(unsafe_code)]

/// A narrow floating-point format that DLPack can describe (float8, float6 and float4 kinds).
///
/// Each one decodes through a 256-entry table (see [`Minifloat::lut`]), checked against
/// `ml_dtypes` for all 256 codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Minifloat {
    /// float8_e3m4: IEEE-like, bias 3, with infinities and NaNs.
    E3M4,
    /// float8_e4m3: IEEE-like, bias 7, with infinities and NaNs.
    E4M3,
    /// float8_e4m3b11fnuz: bias 11, no infinities, 0x80 is the only NaN, no negative zero.
    E4M3B11Fnuz,
    /// float8_e4m3fn: bias 7, no infinities, only S.1111.111 is NaN.
    E4M3Fn,
    /// float8_e4m3fnuz: bias 8, no infinities, 0x80 is the only NaN, no negative zero.
    E4M3Fnuz,
    /// float8_e5m2: IEEE-like, bias 15 (the top half of an IEEE half).
    E5M2,
    /// float8_e5m2fnuz: bias 16, no infinities, 0x80 is the only NaN, no negative zero.
    E5M2Fnuz,
    /// float8_e8m0fnu: unsigned power of two, 2^(code-127), 0xFF is NaN.
    E8M0Fnu,
    /// float6_e2m3fn: bias 1, finite only (no NaN, no infinity); low 6 bits of a byte.
    E2M3Fn,
    /// float6_e3m2fn: bias 3, finite only (no NaN, no infinity); low 6 bits of a byte.
    E3M2Fn,
    /// float4_e2m1fn: bias 1, finite only; one nibble (low 4 bits of the index).
    E2M1Fn,
}

/// How a minifloat format spends its codes on NaN and infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specials {
    /// All-ones exponent: zero mantissa is +-infinity, anything else NaN (like IEEE 754).
    Ieee,
    /// "fn": no infinities; only the all-ones exponent and mantissa (either sign) is NaN.
    Fn,
    /// "fnuz": no infinities, no negative zero; the code with only the sign bit set is the NaN.
    Fnuz,
    /// No special values at all: every code is a finite number (the float6 / float4 "fn" kinds).
    Finite,
    /// e8m0fnu: no sign, no mantissa; value 2^(code - bias), all ones is NaN.
    E8M0,
}

/// Bit layout of a minifloat: exponent and mantissa widths, exponent bias, special values.
///
/// One generic decoder ([`decode_minifloat`]) handles every format from this description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinifloatFormat {
    /// Number of exponent bits.
    pub exp_bits: u32,
    /// Number of mantissa (fraction) bits.
    pub man_bits: u32,
    /// Exponent bias: a normal value is 2^(exponent - bias) * 1.mantissa.
    pub bias: i32,
    /// Where NaN and infinity live.
    pub specials: Specials,
}

impl Minifloat {
    /// The bit layout of this format, the input of the generic decoder.
    pub const fn format(self) -> MinifloatFormat {
        const fn f(exp_bits: u32, man_bits: u32, bias: i32, specials: Specials) -> MinifloatFormat {
            MinifloatFormat { exp_bits, man_bits, bias, specials }
        }
        match self {
            Minifloat::E3M4 => f(3, 4, 3, Specials::Ieee),
            Minifloat::E4M3 => f(4, 3, 7, Specials::Ieee),
            Minifloat::E4M3B11Fnuz => f(4, 3, 11, Specials::Fnuz),
            Minifloat::E4M3Fn => f(4, 3, 7, Specials::Fn),
            Minifloat::E4M3Fnuz => f(4, 3, 8, Specials::Fnuz),
            Minifloat::E5M2 => f(5, 2, 15, Specials::Ieee),
            Minifloat::E5M2Fnuz => f(5, 2, 16, Specials::Fnuz),
            Minifloat::E8M0Fnu => f(8, 0, 127, Specials::E8M0),
            Minifloat::E2M3Fn => f(2, 3, 1, Specials::Finite),
            Minifloat::E3M2Fn => f(3, 2, 3, Specials::Finite),
            Minifloat::E2M1Fn => f(2, 1, 1, Specials::Finite),
        }
    }

    /// The value of every byte, as `f32` (all these formats are exact in `f32`).
    ///
    /// Float6 and float4 formats decode the low 6 (4) bits of the byte and ignore the rest, so
    /// the table can be indexed by a raw byte. Built at compile time: no start-up cost, no lock.
    pub fn lut(self) -> &'static [f32; 256] {
        match self {
            Minifloat::E3M4 => &LUT_E3M4,
            Minifloat::E4M3 => &LUT_E4M3,
            Minifloat::E4M3B11Fnuz => &LUT_E4M3B11FNUZ,
            Minifloat::E4M3Fn => &LUT_E4M3FN,
            Minifloat::E4M3Fnuz => &LUT_E4M3FNUZ,
            Minifloat::E5M2 => &LUT_E5M2,
            Minifloat::E5M2Fnuz => &LUT_E5M2FNUZ,
            Minifloat::E8M0Fnu => &LUT_E8M0FNU,
            Minifloat::E2M3Fn => &LUT_E2M3FN,
            Minifloat::E3M2Fn => &LUT_E3M2FN,
            Minifloat::E2M1Fn => &LUT_E2M1FN,
        }
    }
}

/// 2^k as `f64` (exact for the small exponents minifloats use).
const fn pow2(k: i32) -> f64 {
    let mut v = 1.0f64;
    let mut i = 0;
    while i < k {
        v *= 2.0;
        i += 1;
    }
    while i > k {
        v *= 0.5;
        i -= 1;
    }
    v
}

/// Decode one minifloat code (its low `1 + exp_bits + man_bits` bits; `E8M0`: 8 bits, no sign).
///
/// The single generic decoder behind every table, so a new format is one [`MinifloatFormat`].
pub const fn decode_minifloat(fmt: MinifloatFormat, code: u32) -> f32 {
    let e = fmt.exp_bits;
    let m = fmt.man_bits;
    if let Specials::E8M0 = fmt.specials {
        let c = code & 0xff;
        if c == 0xff {
            return f32::NAN;
        }
        return pow2(c as i32 - fmt.bias) as f32;
    }
    let width = 1 + e + m;
    let code = code & ((1u32 << width) - 1);
    let negative = (code >> (e + m)) & 1 == 1;
    let exp_all = (1u32 << e) - 1;
    let man_all = (1u32 << m) - 1;
    let exp = (code >> m) & exp_all;
    let man = code & man_all;
    match fmt.specials {
        Specials::Ieee => {
            if exp == exp_all {
                if man != 0 {
                    return f32::NAN;
                }
                return if negative { f32::NEG_INFINITY } else { f32::INFINITY };
            }
        }
        Specials::Fn => {
            if exp == exp_all && man == man_all {
                return f32::NAN;
            }
        }
        Specials::Fnuz => {
            if code == 1u32 << (e + m) {
                return f32::NAN;
            }
        }
        Specials::Finite | Specials::E8M0 => {}
    }
    let magnitude = if exp == 0 {
        man as f64 * pow2(1 - fmt.bias - m as i32)
    } else {
        ((1u32 << m) + man) as f64 * pow2(exp as i32 - fmt.bias - m as i32)
    };
    let v = magnitude as f32;
    if negative {
        -v
    } else {
        v
    }
}

/// Build the 256-entry table of a format at compile time.
const fn build_lut(fmt: MinifloatFormat) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = decode_minifloat(fmt, i as u32);
        i += 1;
    }
    t
}

static LUT_E3M4: [f32; 256] = build_lut(Minifloat::E3M4.format());
static LUT_E4M3: [f32; 256] = build_lut(Minifloat::E4M3.format());
static LUT_E4M3B11FNUZ: [f32; 256] = build_lut(Minifloat::E4M3B11Fnuz.format());
static LUT_E4M3FN: [f32; 256] = build_lut(Minifloat::E4M3Fn.format());
static LUT_E4M3FNUZ: [f32; 256] = build_lut(Minifloat::E4M3Fnuz.format());
static LUT_E5M2: [f32; 256] = build_lut(Minifloat::E5M2.format());
static LUT_E5M2FNUZ: [f32; 256] = build_lut(Minifloat::E5M2Fnuz.format());
static LUT_E8M0FNU: [f32; 256] = build_lut(Minifloat::E8M0Fnu.format());
static LUT_E2M3FN: [f32; 256] = build_lut(Minifloat::E2M3Fn.format());
static LUT_E3M2FN: [f32; 256] = build_lut(Minifloat::E3M2Fn.format());
static LUT_E2M1FN: [f32; 256] = build_lut(Minifloat::E2M1Fn.format());

/// IEEE half (binary16) to `f32`, exact for every code (NaN payloads kept).
///
/// Branch-free integer arithmetic so the contiguous float16 loop vectorizes on baseline x86-64
/// (no F16C needed, and no 256 KiB table to gather from).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let normal = (em << 13) + ((127 - 15) << 23);
    let infnan = (em << 13) | 0x7f80_0000;
    // Subnormals (and zero): em * 2^-24, exact since em < 2^10.
    let sub = ((em as i32 as f32) * (1.0 / 16_777_216.0)).to_bits();
    let bits = if em >= 0x7c00 {
        infnan
    } else if em < 0x0400 {
        sub
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

/// bfloat16 to `f32`: the upper half of an `f32`, so a shift.
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Element kinds we can take statistics of, from a DLPack dtype (code, bits, lanes).
///
/// One value per element except [`ElemKind::Float4x2`], whose 1-byte element holds two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    /// IEEE binary16 (`torch.float16`).
    F16,
    /// bfloat16 (`torch.bfloat16`).
    BF16,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
    /// One float8 value per byte (DLPack codes 7 to 14, bits 8).
    Float8(Minifloat),
    /// One float6 value per byte, in its low 6 bits (DLPack codes 15, 16, bits 6).
    Float6(Minifloat),
    /// float4_e2m1fn packed two per byte, low nibble first (DLPack code 17, bits 4, lanes 2).
    Float4x2,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte; any non-zero byte counts as true (1).
    Bool,
}

impl ElemKind {
    /// The kind for a DLPack dtype, or `None` for dtypes without statistics (complex, opaque
    /// handles, vector lanes, unknown codes), so the caller can skip them.
    pub fn from_dlpack(code: u8, bits: u8, lanes: u16) -> Option<ElemKind> {
        if code == 17 {
            return (bits == 4 && lanes == 2).then_some(ElemKind::Float4x2);
        }
        if lanes != 1 {
            return None;
        }
        let mf = |m: Minifloat| (bits == 8).then_some(ElemKind::Float8(m));
        match (code, bits) {
            (0, 8) => Some(ElemKind::I8),
            (0, 16) => Some(ElemKind::I16),
            (0, 32) => Some(ElemKind::I32),
            (0, 64) => Some(ElemKind::I64),
            (1, 8) => Some(ElemKind::U8),
            (1, 16) => Some(ElemKind::U16),
            (1, 32) => Some(ElemKind::U32),
            (1, 64) => Some(ElemKind::U64),
            (2, 16) => Some(ElemKind::F16),
            (2, 32) => Some(ElemKind::F32),
            (2, 64) => Some(ElemKind::F64),
            (4, 16) => Some(ElemKind::BF16),
            (6, 8) => Some(ElemKind::Bool),
            (7, _) => mf(Minifloat::E3M4),
            (8, _) => mf(Minifloat::E4M3),
            (9, _) => mf(Minifloat::E4M3B11Fnuz),
            (10, _) => mf(Minifloat::E4M3Fn),
            (11, _) => mf(Minifloat::E4M3Fnuz),
            (12, _) => mf(Minifloat::E5M2),
            (13, _) => mf(Minifloat::E5M2Fnuz),
            (14, _) => mf(Minifloat::E8M0Fnu),
            (15, 6) => Some(ElemKind::Float6(Minifloat::E2M3Fn)),
            (16, 6) => Some(ElemKind::Float6(Minifloat::E3M2Fn)),
            _ => None,
        }
    }

    /// Bytes one element occupies in memory (1 for float6 and for a packed float4 pair); the
    /// walker's unit for strides.
    pub fn elem_bytes(&self) -> usize {
        match self {
            ElemKind::F64 | ElemKind::I64 | ElemKind::U64 => 8,
            ElemKind::F32 | ElemKind::I32 | ElemKind::U32 => 4,
            ElemKind::F16 | ElemKind::BF16 | ElemKind::I16 | ElemKind::U16 => 2,
            ElemKind::Float8(_)
            | ElemKind::Float6(_)
            | ElemKind::Float4x2
            | ElemKind::I8
            | ElemKind::U8
            | ElemKind::Bool => 1,
        }
    }

    /// Values per element: 2 for [`ElemKind::Float4x2`], else 1 (statistics count values).
    pub fn values_per_elem(&self) -> usize {
        if *self == ElemKind::Float4x2 {
            2
        } else {
            1
        }
    }

    /// Whether the statistics are the floating ones (with `nan_count` and `inf_count`).
    pub fn is_float(&self) -> bool {
        matches!(
            self,
            ElemKind::F16
                | ElemKind::BF16
                | ElemKind::F32
                | ElemKind::F64
                | ElemKind::Float8(_)
                | ElemKind::Float6(_)
                | ElemKind::Float4x2
        )
    }

    /// Whether this kind is counted into the 256-bin byte histogram instead of being decoded.
    pub(super) fn uses_histogram(&self) -> bool {
        self.elem_bytes() == 1
    }
}
