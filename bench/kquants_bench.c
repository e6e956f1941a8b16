/*
 * kquants_bench.c: throughput of the K-quant kernels (Q4_K, Q5_K, Q6_K x Q8_K) in every kernel
 * table this CPU supports, with Q4_0 / Q8_0 alongside for reference. Not part of the build or of
 * CTest (tests/unit/test_kquants.c checks correctness). Build once, after building the library:
 *   cc -O2 -std=gnu11 -Iinclude -Isrc bench/kquants_bench.c build-kq/libminnow.a -lm -lpthread \
 *      $(pkg-config --libs libpcre2-8 libutf8proc libmicrohttpd libcjson) -o /tmp/kquants_bench
 *   /tmp/kquants_bench [MB]      (default 64: the weight matrix size)
 *
 * Like bench/kernels_bench.c: y[r] = vec_dot(W[r], x) over every row of a matrix of 4096-wide rows,
 * single-threaded, reporting weight bytes streamed per second, once for a matrix of MB megabytes
 * (memory-bound: the decode case) and once for ~256 KB that stays in L2 (the kernel's own speed).
 * Weight rows are random bytes with normal f16 scales (speed does not depend on the values, and
 * running the reference quantizer over 64 MB would take minutes). Then the Q8_K activation
 * quantizer and the dequantizers, in elements per second. Each figure is the best of a few runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/blocks.h"
#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { NCOL = 4096 };

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* random bytes, then every f16 scale field set to a normal number around 2^-8 */
static void fill_blocks(int32_t t, uint8_t *w, size_t n_blocks, uint64_t *s) {
    const size_t bs = (size_t)mn_type_get(t)->type_size;
    for (size_t i = 0; i < n_blocks * bs; i++) w[i] = (uint8_t)rng(s);
    for (size_t ib = 0; ib < n_blocks; ib++) {
        uint8_t *b = w + ib * bs;
        const uint16_t d = (uint16_t)(0x1c00 | (rng(s) & 0x3ff));
        switch (t) {
        case MN_TYPE_Q6_K: memcpy(b + 208, &d, 2); break;
        case MN_TYPE_Q4_K:
        case MN_TYPE_Q5_K: memcpy(b, &d, 2); memcpy(b + 2, &d, 2); break;
        default: memcpy(b, &d, 2); break; /* q4_0, q8_0: d first */
        }
    }
}

static double time_matvec(mn_vec_dot_fn f, const uint8_t *w, size_t row_size, int64_t n_rows, const void *x, float *y,
                          int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int64_t i = 0; i < n_rows; i++) f(NCOL, w + (size_t)i * row_size, x, &y[i]);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    const double mb = argc > 1 ? atof(argv[1]) : 64.0;
    const int32_t types[] = {MN_TYPE_Q4_K, MN_TYPE_Q5_K, MN_TYPE_Q6_K, MN_TYPE_Q4_0, MN_TYPE_Q8_0};
    const char *isas[] = {"scalar", "avx2", "avx512"};
    printf("default table: %s; big matrix %.0f MB; rows of %d; one thread\n", mn_kernels_get()->isa, mb, NCOL);
    uint64_t s = 1;
    float *xf = malloc(NCOL * sizeof(float));
    uint8_t *xq = malloc(NCOL * 4);
    for (int i = 0; i < NCOL; i++) xf[i] = (float)(rng(&s) >> 40) / (float)(1 << 24) - 0.5f;

    printf("%-8s %-6s %14s %14s\n", "isa", "type", "DRAM GB/s", "L2 GB/s");
    for (size_t it = 0; it < sizeof types / sizeof types[0]; it++) {
        const mn_type_traits *t = mn_type_get(types[it]);
        const size_t row_size = (size_t)mn_type_row_size(types[it], NCOL);
        const int64_t n_big = (int64_t)(mb * 1048576.0 / (double)row_size);
        const int64_t n_small = (int64_t)(262144 / row_size) + 1;
        uint8_t *w = malloc((size_t)n_big * row_size);
        float *y = malloc((size_t)n_big * sizeof(float));
        fill_blocks(types[it], w, (size_t)n_big * row_size / (size_t)t->type_size, &s);
        mn_type_get(t->vec_dot_type)->from_f32(xf, xq, NCOL);
        for (int ii = 0; ii < 3; ii++) {
            const mn_kernels *k = mn_kernels_for_isa(isas[ii]);
            if (!k) continue;
            const int reps_big = ii == 0 ? 1 : 5;
            const double tb = time_matvec(k->vec_dot[types[it]], w, row_size, n_big, xq, y, reps_big);
            const double ts = time_matvec(k->vec_dot[types[it]], w, row_size, n_small, xq, y, ii == 0 ? 5 : 300);
            printf("%-8s %-6s %14.2f %14.2f\n", k->isa, t->name, (double)n_big * row_size / tb / 1e9,
                   (double)n_small * row_size / ts / 1e9);
        }
        free(w);
        free(y);
    }

    /* conversions over 1M elements (4 MB of f32: L2/L3-resident, not DRAM-bound) */
    const int64_t n = 1 << 20;
    float *src = malloc((size_t)n * sizeof(float)), *dst = malloc((size_t)n * sizeof(float));
    uint8_t *q = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) src[i] = (float)(rng(&s) >> 40) / (float)(1 << 24) - 0.5f;
    printf("\n%-8s %-22s %12s\n", "isa", "conversion", "Melem/s");
    for (int ii = 0; ii < 3; ii++) {
        const mn_kernels *k = mn_kernels_for_isa(isas[ii]);
        if (!k) continue;
        const int32_t conv[] = {MN_TYPE_Q8_K, MN_TYPE_Q4_K, MN_TYPE_Q5_K, MN_TYPE_Q6_K};
        for (size_t c = 0; c < sizeof conv / sizeof conv[0]; c++) {
            const int to = conv[c] != MN_TYPE_Q8_K;
            if (to) fill_blocks(conv[c], q, (size_t)n / 256, &s);
            double best = 1e30;
            for (int r = 0; r < 5; r++) {
                const double t0 = now();
                if (to) k->to_f32[conv[c]](q, dst, n);
                else k->quantize[conv[c]](src, q, n);
                const double tt = now() - t0;
                if (tt < best) best = tt;
            }
            char name[32];
            snprintf(name, sizeof name, "%s %s", to ? "to_f32" : "quantize", mn_type_get(conv[c])->name);
            printf("%-8s %-22s %12.0f\n", k->isa, name, (double)n / best / 1e6);
        }
    }
    free(src);
    free(dst);
    free(q);
    free(xf);
    free(xq);
    return 0;
}
