/* The fake driver's emulation of flashlog's statistics kernel, as a host library for scripts/gpu-check:
 * the same header code (src/gpu/stats_core.h), the same blocks, threads and tree order as
 * tests/fixtures/cuda/fakecuda_stats.c, so its partials must equal the GPU's bit for bit.
 *   gcc -O2 -shared -fPIC -I src/gpu -o emulate.so scripts/gpu-check/emulate.c */
#include "stats_core.h"

/* Partials of every block of `d`, reading the view's bytes at `mem` (the host copy of device address
 * d->base), into out[0 .. d->nblocks). */
void fl_emulate(const fl_desc *d, const char *mem, fl_partial *out) {
    static fl_partial sh[FL_THREADS];
    for (unsigned b = 0; b < d->nblocks; b++) {
        for (unsigned t = 0; t < FL_THREADS; t++) fl_thread(d, mem, b, t, &sh[t]);
        for (unsigned s = FL_THREADS / 2; s > 0; s >>= 1)
            for (unsigned t = 0; t < FL_THREADS; t++) FL_TREE_LEVEL(sh, t, s, d->kind);
        out[b] = sh[0];
    }
}

unsigned fl_sizeof_batch(void) { return sizeof(fl_batch); }
