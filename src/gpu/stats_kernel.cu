/* flashlog statistics kernel (see stats_core.h for the work split). Compiled to stats_kernel.ptx by
 * `make ptx` (NVRTC, --gpu-architecture=compute_80); the library embeds the PTX and loads it through the host
 * program's own driver. One launch takes up to FL_MAX_TENSORS tensors: grid (max nblocks, tensors), FL_THREADS
 * threads per block. Each block writes one fl_partial into page-locked host memory; nothing else is written. */
#define FL_LOAD16(w, p)                                                                                          \
    do {                                                                                                        \
        ulonglong2 v_ = __ldg((const ulonglong2 *)(p));                                                         \
        (w)[0] = v_.x;                                                                                          \
        (w)[1] = v_.y;                                                                                          \
    } while (0)
#include "stats_core.h"

extern "C" __global__ void __launch_bounds__(FL_THREADS) flashlog_stats_v1(const fl_batch batch) {
    __shared__ fl_partial sh[FL_THREADS];
    const fl_u32 t = threadIdx.x, b = blockIdx.x, y = blockIdx.y;
    if (y >= batch.count) return;
    const fl_desc *d = &batch.d[y];
    if (b >= d->nblocks) return;
    fl_thread(d, (const char *)d->base, b, t, &sh[t]);
    __syncthreads();
    for (fl_u32 s = FL_THREADS / 2; s > 0; s >>= 1) {
        FL_TREE_LEVEL(sh, t, s, d->kind);
        __syncthreads();
    }
    if (t == 0) ((fl_partial *)d->partials)[b] = sh[0];
}
