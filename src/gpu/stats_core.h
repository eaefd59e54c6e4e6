/* flashlog statistics kernel: the per-element and per-block logic, shared by the CUDA kernel (stats_kernel.cu,
 * compiled to stats_kernel.ptx by NVRTC) and the fake driver of the tests (tests/fixtures/cuda/fakecuda.c, plain
 * gcc), so that the fake's emulation runs the same code in the same order as a GPU and gives the same bits.
 *
 * No headers: NVRTC compiles this without any include path. The layout of every struct here is mirrored by
 * src/gpu/desc.rs (Rust, #[repr(C)]); the fake driver checks the launch's parameter size against the PTX.
 *
 * Work split (fixed, independent of the GPU): tensor `d` of a launch is blockIdx.y; its `n` elements (of the
 * simplified view) are cut into `nblocks` ranges of `per_block` elements, one per blockIdx.x (blocks past
 * `nblocks` do nothing). Thread t of a block takes groups g = k * FL_THREADS + t (k = 0, 1, ...) of `vec` elements
 * each (16 bytes' worth), and folds them in index order into its own partial; the block then folds the threads'
 * partials with a fixed shared-memory tree, and thread 0 writes the block's partial to page-locked host memory.
 * The host folds the block partials in block order. No atomics anywhere. */
#ifndef FLASHLOG_STATS_CORE_H
#define FLASHLOG_STATS_CORE_H

#ifdef __CUDACC__
#define FL_HD __host__ __device__ __forceinline__
typedef unsigned long long fl_u64;
typedef long long fl_i64;
typedef unsigned int fl_u32;
typedef unsigned short fl_u16;
typedef unsigned char fl_u8;
#else
#define FL_HD static inline
typedef unsigned long long fl_u64;
typedef long long fl_i64;
typedef unsigned int fl_u32;
typedef unsigned short fl_u16;
typedef unsigned char fl_u8;
#endif

#define FL_THREADS 256
#define FL_MAX_DIMS 8
/* Descriptors per launch: 8 + 23 * 176 = 4,056 bytes of parameters, under the 4,096 every driver takes. */
#define FL_MAX_TENSORS 23
#define FL_ENTRY "flashlog_stats_v1"

/* Element kinds (src/gpu/desc.rs `GpuKind`). */
enum {
    FL_F32 = 0, FL_F64 = 1, FL_F16 = 2, FL_BF16 = 3, FL_MINI = 4, /* one minifloat per byte (float8, float6) */
    FL_F4X2 = 5,                                                  /* float4_e2m1fn, two per byte, low nibble first */
    FL_I8 = 6, FL_I16 = 7, FL_I32 = 8, FL_I64 = 9, FL_U8 = 10, FL_U16 = 11, FL_U32 = 12, FL_U64 = 13, FL_BOOL = 14
};
/* Minifloat specials (src/stats/formats.rs `Specials`). */
enum { FL_SP_IEEE = 0, FL_SP_FN = 1, FL_SP_FNUZ = 2, FL_SP_FINITE = 3, FL_SP_E8M0 = 4 };

/* One tensor of a launch: 176 bytes. */
typedef struct {
    fl_u64 base;      /* device address of element 0 of the simplified view (every stride >= 0) */
    fl_u64 partials;  /* page-locked host address of `nblocks` fl_partial */
    fl_u64 n;         /* elements of the simplified view */
    fl_u64 per_block; /* elements per block (a multiple of FL_THREADS * 16) */
    fl_u64 sizes[FL_MAX_DIMS];   /* outermost first; only `ndim` used */
    fl_i64 strides[FL_MAX_DIMS]; /* in elements, >= 0 */
    fl_u32 ndim;      /* 1..8; ndim == 1 && strides[0] == 1: contiguous */
    fl_u32 kind;      /* FL_* */
    fl_u32 nblocks;
    fl_u32 fmt;       /* FL_MINI: exp_bits | man_bits << 8 | bias << 16 | specials << 24 */
} fl_desc;

/* The kernel's one parameter: 4,056 bytes. */
typedef struct {
    fl_u32 count; /* descriptors used */
    fl_u32 pad;
    fl_desc d[FL_MAX_TENSORS];
} fl_batch;

/* One block's (or thread's) statistics: 96 bytes.
 * Floats (f32, f64, f16, bf16, e8m0): min/max/sum over the non-NaN values in double (infinities included).
 * Minifloats but e8m0, and float4: min/max in double; the sum exact, as an integer multiple of the format's
 * smallest subnormal (isum, 128 bits in two words), infinities counted in pinf/ninf instead.
 * Integers and bool: imin/imax (two's complement bits; unsigned for the unsigned kinds), exact sum in isum. */
typedef struct {
    double min, max, sum;
    fl_u64 nan, pinf, ninf, count;
    fl_u64 isum_lo, isum_hi;
    fl_u64 imin, imax;
    fl_u64 pad;
} fl_partial;

FL_HD fl_u32 fl_elem_bytes(fl_u32 kind) {
    switch (kind) {
    case FL_F64: case FL_I64: case FL_U64: return 8;
    case FL_F32: case FL_I32: case FL_U32: return 4;
    case FL_F16: case FL_BF16: case FL_I16: case FL_U16: return 2;
    default: return 1;
    }
}

FL_HD int fl_is_unsigned(fl_u32 kind) {
    return kind == FL_U8 || kind == FL_U16 || kind == FL_U32 || kind == FL_U64 || kind == FL_BOOL;
}

FL_HD int fl_is_int(fl_u32 kind) { return kind >= FL_I8; }

FL_HD double fl_from_f64_bits(fl_u64 b) {
    union { fl_u64 u; double f; } c;
    c.u = b;
    return c.f;
}

/* +infinity (no builtins: NVRTC and gcc both take this). */
FL_HD double fl_inf(void) { return fl_from_f64_bits(0x7ff0000000000000ull); }

FL_HD void fl_init(fl_partial *p, fl_u32 kind) {
    p->min = fl_inf();
    p->max = -fl_inf();
    p->sum = 0.0;
    p->nan = p->pinf = p->ninf = p->count = 0;
    p->isum_lo = p->isum_hi = 0;
    p->imin = fl_is_unsigned(kind) ? ~0ull : 0x7fffffffffffffffull;
    p->imax = fl_is_unsigned(kind) ? 0ull : 0x8000000000000000ull;
    p->pad = 0;
}

/* isum += v (v sign-extended to 128 bits). */
FL_HD void fl_add_i64(fl_partial *p, fl_i64 v) {
    fl_u64 lo = p->isum_lo + (fl_u64)v;
    p->isum_hi += (lo < p->isum_lo ? 1ull : 0ull) + (v < 0 ? ~0ull : 0ull);
    p->isum_lo = lo;
}

/* isum += v (v unsigned). */
FL_HD void fl_add_u64(fl_partial *p, fl_u64 v) {
    fl_u64 lo = p->isum_lo + v;
    p->isum_hi += lo < p->isum_lo ? 1ull : 0ull;
    p->isum_lo = lo;
}

FL_HD double fl_ldexp(double x, int e) {
    while (e > 0) { x *= 2.0; e--; }
    while (e < 0) { x *= 0.5; e++; }
    return x;
}

/* A float value: NaN counted, infinities counted and summed (the sum becomes inf or NaN, as the host's). */
FL_HD void fl_float(fl_partial *p, double x) {
    if (x != x) { p->nan++; p->count++; return; }
    if (x == fl_inf()) p->pinf++;
    if (x == -fl_inf()) p->ninf++;
    p->min = x < p->min ? x : p->min;
    p->max = x > p->max ? x : p->max;
    p->sum += x;
    p->count++;
}

FL_HD double fl_from_f32_bits(fl_u32 b) {
    union { fl_u32 u; float f; } c;
    c.u = b;
    return (double)c.f;
}

FL_HD double fl_f16(fl_u32 h) {
    fl_u32 e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0x1f) return m ? fl_from_f64_bits(0x7ff8000000000000ull) : s * fl_inf();
    if (e == 0) return s * (double)m * fl_ldexp(1.0, -24);
    return s * (double)(m | 0x400) * fl_ldexp(1.0, (int)e - 25);
}

/* One minifloat code (float8 / float6 / float4 nibble): value in double, or with `scaled` the exact integer
 * value / smallest subnormal; returns 0 finite, 1 NaN, 2 +inf, 3 -inf (src/stats/formats.rs decode_minifloat). */
FL_HD int fl_mini(fl_u32 code, fl_u32 fmt, double *value, fl_i64 *scaled) {
    fl_u32 e = fmt & 0xff, m = (fmt >> 8) & 0xff, sp = fmt >> 24;
    int bias = (int)((fmt >> 16) & 0xff);
    if (sp == FL_SP_E8M0) {
        fl_u32 c = code & 0xff;
        if (c == 0xff) return 1;
        *value = fl_ldexp(1.0, (int)c - bias);
        *scaled = 0;
        return 0;
    }
    fl_u32 width = 1 + e + m;
    code &= (1u << width) - 1;
    int neg = (code >> (e + m)) & 1;
    fl_u32 exp_all = (1u << e) - 1, man_all = (1u << m) - 1;
    fl_u32 ex = (code >> m) & exp_all, man = code & man_all;
    if (sp == FL_SP_IEEE && ex == exp_all) return man ? 1 : (neg ? 3 : 2);
    if (sp == FL_SP_FN && ex == exp_all && man == man_all) return 1;
    if (sp == FL_SP_FNUZ && code == (1u << (e + m))) return 1;
    fl_i64 k = ex == 0 ? (fl_i64)man : (fl_i64)((1u << m) + man) << (ex - 1);
    double mag = fl_ldexp((double)k, 1 - bias - (int)m);
    *scaled = neg ? -k : k;
    *value = neg ? -mag : mag; /* -0.0 for a negative zero, as the host's table has it */
    return 0;
}

FL_HD void fl_mini_value(fl_partial *p, fl_u32 code, fl_u32 fmt) {
    double v = 0.0;
    fl_i64 k = 0;
    int c = fl_mini(code, fmt, &v, &k);
    if (c == 1) { p->nan++; p->count++; return; }
    if ((fmt >> 24) == FL_SP_E8M0) { fl_float(p, v); return; }
    p->count++;
    if (c == 2) { p->pinf++; v = fl_inf(); }
    else if (c == 3) { p->ninf++; v = -fl_inf(); }
    else fl_add_i64(p, k);
    p->min = v < p->min ? v : p->min;
    p->max = v > p->max ? v : p->max;
}

FL_HD void fl_int(fl_partial *p, fl_u64 bits, fl_u32 kind) {
    p->count++;
    if (fl_is_unsigned(kind)) {
        p->imin = bits < p->imin ? bits : p->imin;
        p->imax = bits > p->imax ? bits : p->imax;
        fl_add_u64(p, bits);
    } else {
        fl_i64 v = (fl_i64)bits;
        p->imin = v < (fl_i64)p->imin ? bits : p->imin;
        p->imax = v > (fl_i64)p->imax ? bits : p->imax;
        fl_add_i64(p, v);
    }
}

/* One element given its little-endian bytes as an integer (the low elem_bytes bytes of `raw`). */
FL_HD void fl_element(fl_partial *p, fl_u64 raw, fl_u32 kind, fl_u32 fmt) {
    switch (kind) {
    case FL_F32: fl_float(p, fl_from_f32_bits((fl_u32)raw)); break;
    case FL_F64: fl_float(p, fl_from_f64_bits(raw)); break;
    case FL_F16: fl_float(p, fl_f16((fl_u32)raw & 0xffff)); break;
    case FL_BF16: fl_float(p, fl_from_f32_bits(((fl_u32)raw & 0xffff) << 16)); break;
    case FL_MINI: fl_mini_value(p, (fl_u32)raw & 0xff, fmt); break;
    case FL_F4X2:
        /* e2m1fn: exp 2, man 1, bias 1, finite. */
        fl_mini_value(p, (fl_u32)raw & 0xf, 2u | 1u << 8 | 1u << 16 | (fl_u32)FL_SP_FINITE << 24);
        fl_mini_value(p, ((fl_u32)raw >> 4) & 0xf, 2u | 1u << 8 | 1u << 16 | (fl_u32)FL_SP_FINITE << 24);
        break;
    case FL_I8: fl_int(p, (fl_u64)(fl_i64)(signed char)(fl_u8)raw, kind); break;
    case FL_I16: fl_int(p, (fl_u64)(fl_i64)(short)(fl_u16)raw, kind); break;
    case FL_I32: fl_int(p, (fl_u64)(fl_i64)(int)(fl_u32)raw, kind); break;
    case FL_I64: case FL_U64: fl_int(p, raw, kind); break;
    case FL_U8: fl_int(p, raw & 0xff, kind); break;
    case FL_U16: fl_int(p, raw & 0xffff, kind); break;
    case FL_U32: fl_int(p, raw & 0xffffffffull, kind); break;
    case FL_BOOL: fl_int(p, (raw & 0xff) != 0, kind); break;
    default: break;
    }
}

/* a = fold(a, b): b's values after a's (the tree and the host use this one order). */
FL_HD void fl_merge(fl_partial *a, const fl_partial *b, fl_u32 kind) {
    a->min = b->min < a->min ? b->min : a->min;
    a->max = b->max > a->max ? b->max : a->max;
    a->sum += b->sum;
    a->nan += b->nan;
    a->pinf += b->pinf;
    a->ninf += b->ninf;
    a->count += b->count;
    fl_u64 lo = a->isum_lo + b->isum_lo;
    a->isum_hi += b->isum_hi + (lo < a->isum_lo ? 1ull : 0ull);
    a->isum_lo = lo;
    if (fl_is_unsigned(kind)) {
        a->imin = b->imin < a->imin ? b->imin : a->imin;
        a->imax = b->imax > a->imax ? b->imax : a->imax;
    } else {
        a->imin = (fl_i64)b->imin < (fl_i64)a->imin ? b->imin : a->imin;
        a->imax = (fl_i64)b->imax > (fl_i64)a->imax ? b->imax : a->imax;
    }
}

/* Byte offset (from base) of element `i` of the simplified view. */
FL_HD fl_u64 fl_offset(const fl_desc *d, fl_u64 i, fl_u32 eb) {
    if (d->ndim == 1) return i * (fl_u64)d->strides[0] * eb;
    fl_u64 off = 0;
    for (int k = (int)d->ndim - 1; k >= 0; k--) {
        fl_u64 size = d->sizes[k];
        fl_u64 idx = i % size;
        i /= size;
        off += idx * (fl_u64)d->strides[k];
    }
    return off * eb;
}

FL_HD fl_u64 fl_load(const char *p, fl_u32 eb) {
    fl_u64 v = 0;
    for (fl_u32 b = 0; b < eb; b++) v |= (fl_u64)(fl_u8)p[b] << (8 * b);
    return v;
}

/* Elements per group: 16 bytes' worth. */
FL_HD fl_u32 fl_vec(fl_u32 kind) { return 16 / fl_elem_bytes(kind); }

/* The partial of thread `t` of block `b` of tensor `d`, reading device memory at `mem` (the device address
 * d->base as a pointer in this address space). Loads of 16 aligned contiguous bytes go through `FL_LOAD16`
 * when the includer defines it (the kernel: one vector load); the values and their order are the same. */
FL_HD void fl_thread(const fl_desc *d, const char *mem, fl_u32 b, fl_u32 t, fl_partial *p) {
    fl_u32 kind = d->kind, fmt = d->fmt, eb = fl_elem_bytes(kind), vec = fl_vec(kind);
    fl_init(p, kind);
    fl_u64 start = (fl_u64)b * d->per_block;
    fl_u64 end = start + d->per_block < d->n ? start + d->per_block : d->n;
    int contiguous = d->ndim == 1 && d->strides[0] == 1;
    for (fl_u64 first = start + (fl_u64)t * vec; first < end; first += (fl_u64)FL_THREADS * vec) {
        if (contiguous && first + vec <= end && ((d->base + first * eb) & 15) == 0) {
            fl_u64 w[2];
#ifdef FL_LOAD16
            FL_LOAD16(w, mem + first * eb);
#else
            w[0] = fl_load(mem + first * eb, 8);
            w[1] = fl_load(mem + first * eb + 8, 8);
#endif
            for (fl_u32 j = 0; j < vec; j++) {
                fl_u32 byte = j * eb;
                fl_u64 word = w[byte >> 3] >> (8 * (byte & 7));
                fl_element(p, word, kind, fmt);
            }
        } else {
            for (fl_u64 i = first; i < first + vec && i < end; i++)
                fl_element(p, fl_load(mem + fl_offset(d, i, eb), eb), kind, fmt);
        }
    }
}

/* The fixed tree over the FL_THREADS partials of a block (sh[0] holds the result). The kernel runs each level
 * with a barrier between; the fake driver runs the levels in the same order. */
#define FL_TREE_LEVEL(sh, t, s, kind)                                                                           \
    do {                                                                                                        \
        if ((t) < (s)) fl_merge(&(sh)[t], &(sh)[(t) + (s)], kind);                                              \
    } while (0)

#endif
