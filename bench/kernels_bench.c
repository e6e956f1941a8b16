/*
 * kernels_bench.c: per-kernel throughput of every kernel table this CPU supports. Not part of the
 * build or of CTest (it never gates correctness: tests/unit/test_kernels.c does that). Build once:
 *   cc -O2 -std=gnu11 -Iinclude -Isrc bench/kernels_bench.c build-kern/libminnow.a -lm -lpthread \
 *      $(pkg-config --libs libpcre2-8 libutf8proc) -o /tmp/kernels_bench
 *   /tmp/kernels_bench [MB]      (default 64: the weight matrix size)
 *
 * For each weight type it times y[r] = vec_dot(W[r], x) over all rows of a matrix with 4096-wide
 * rows, single-threaded, and prints weight bytes streamed per second: once for a matrix of MB
 * megabytes (memory-bound, the decode case) and once for a 256 KB matrix that stays in L2
 * (compute-bound: the kernel's own speed). Then the activation quantizer and dequantizers.
 * Each figure is the best of a few repetitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { NCOL = 4096 };

/* best-of-reps seconds for one pass of vec_dot over n_rows rows */
static double time_matvec(mn_vec_dot_fn f, const uint8_t *w, size_t row_size, int64_t n_rows, const void *x,
                          float *y, int reps) {
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
    const int32_t types[] = {MN_TYPE_F32, MN_TYPE_F16, MN_TYPE_BF16, MN_TYPE_Q8_0, MN_TYPE_Q4_0};
    const char *isas[] = {"scalar", "avx2", "avx512"};
    printf("default table: %s; big matrix %.0f MB; rows of %d\n", mn_kernels_get()->isa, mb, NCOL);

    float *xf = malloc(NCOL * sizeof(float));
    float *tmp = malloc(NCOL * sizeof(float));
    uint8_t *xq = malloc(NCOL * 4);
    srand(1);
    for (int i = 0; i < NCOL; i++) xf[i] = (float)rand() / RAND_MAX - 0.5f;

    printf("%-8s %-6s %14s %14s\n", "isa", "type", "DRAM GB/s", "L2 GB/s");
    for (size_t it = 0; it < sizeof types / sizeof types[0]; it++) {
        const mn_type_traits *t = mn_type_get(types[it]);
        const size_t row_size = (size_t)mn_type_row_size(types[it], NCOL);
        const int64_t n_big = (int64_t)(mb * 1048576.0 / (double)row_size);
        const int64_t n_small = (int64_t)(262144 / row_size) + 1;
        uint8_t *w = malloc((size_t)n_big * row_size);
        float *y = malloc((size_t)n_big * sizeof(float));
        for (int64_t i = 0; i < n_big; i++) {
            for (int j = 0; j < NCOL; j++) tmp[j] = (float)rand() / RAND_MAX - 0.5f;
            t->from_f32(tmp, w + (size_t)i * row_size, NCOL);
        }
        mn_type_get(t->vec_dot_type)->from_f32(xf, xq, NCOL);
        for (int ii = 0; ii < 3; ii++) {
            const mn_kernels *k = mn_kernels_for_isa(isas[ii]);
            if (!k) continue;
            const double tb = time_matvec(k->vec_dot[types[it]], w, row_size, n_big, xq, y, 3);
            const double ts = time_matvec(k->vec_dot[types[it]], w, row_size, n_small, xq, y, 200);
            printf("%-8s %-6s %14.2f %14.2f\n", k->isa, t->name, (double)n_big * row_size / tb / 1e9,
                   (double)n_small * row_size / ts / 1e9);
        }
        free(w);
        free(y);
    }

    /* conversions: f32 elements per second over 1M elements */
    const int64_t n = 1 << 20;
    float *src = malloc((size_t)n * sizeof(float)), *dst = malloc((size_t)n * sizeof(float));
    uint8_t *q = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) src[i] = (float)rand() / RAND_MAX - 0.5f;
    printf("\n%-8s %-22s %12s\n", "isa", "conversion", "Melem/s");
    for (int ii = 0; ii < 3; ii++) {
        const mn_kernels *k = mn_kernels_for_isa(isas[ii]);
        if (!k) continue;
        struct {
            const char *name;
            int32_t type;
            int to;
        } conv[] = {{"quantize q8_0", MN_TYPE_Q8_0, 0}, {"quantize f16", MN_TYPE_F16, 0},
                    {"to_f32 q8_0", MN_TYPE_Q8_0, 1},   {"to_f32 q4_0", MN_TYPE_Q4_0, 1},
                    {"to_f32 f16", MN_TYPE_F16, 1}};
        mn_type_get(MN_TYPE_Q4_0)->from_f32(src, q, n); /* valid q4_0 data for its to_f32 */
        for (size_t c = 0; c < sizeof conv / sizeof conv[0]; c++) {
            if (conv[c].to && conv[c].type != MN_TYPE_Q4_0) k->quantize[conv[c].type](src, q, n);
            if (conv[c].to && conv[c].type == MN_TYPE_Q4_0) mn_type_get(MN_TYPE_Q4_0)->from_f32(src, q, n);
            double best = 1e30;
            for (int r = 0; r < 5; r++) {
                const double t0 = now();
                if (conv[c].to) k->to_f32[conv[c].type](q, dst, n);
                else k->quantize[conv[c].type](src, q, n);
                const double tt = now() - t0;
                if (tt < best) best = tt;
            }
            printf("%-8s %-22s %12.0f\n", k->isa, conv[c].name, (double)n / best / 1e6);
        }
    }
    free(src);
    free(dst);
    free(q);
    free(xf);
    free(tmp);
    free(xq);
    return 0;
}
