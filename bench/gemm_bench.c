/*
 * gemm_bench.c: speed of the matrix-product kernels, the two cases that bound a forward pass.
 * Not part of the build or of CTest (tests/unit/test_gemm.c and test_kernels.c judge correctness).
 * Build after building the library:
 *   cc -O2 -std=gnu11 -Iinclude -Isrc bench/gemm_bench.c build-gemm/libminnow.a -lm -lpthread \
 *      $(pkg-config --libs libpcre2-8 libutf8proc libmicrohttpd libcjson) -o /tmp/gemm_bench
 *   /tmp/gemm_bench prefill [TYPES] [N_TOK]   gemm GFLOP/s, 1 thread, tinyllama-1.1b shapes
 *   /tmp/gemm_bench decode [TYPES] [MB]       vec_dot GB/s over an MB-sized matrix, 1 and 2 threads
 * TYPES: comma list (default q8_0,q4_0). Every figure is printed as min / median / max over the
 * repeats (the host is shared: the max is the least disturbed run); prefill also prints FLOPs per
 * second of the thread's own CPU time, which time slices lost to other processes do not dilute.
 *
 * prefill: y[n_tok][rows] = W[rows][n] . x[n_tok][n] with x already quantized (what mn_matmul
 * hands the kernel), FLOPs = 2 * rows * n * n_tok, weights streamed from DRAM (192 MB of copies
 * used in turn, as a forward pass uses each matrix once); the matrix shapes are tinyllama's (q/o 2048 x
 * 2048, gate/up 5632 x 2048, down 2048 x 5632). "vec_dot" runs the same product as one vec_dot per
 * (row, token), the previous path, as the before figure.
 * decode: the product of a matrix larger than the caches with one token (weight bytes / s), as one
 * vec_dot per row (the previous path) and as one gemm call with n_tok = 1; 2 threads take half of
 * the rows each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread: on a shared host, the time this thread actually ran */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print3(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf(" %8.1f %8.1f %8.1f", v[0], v[n / 2], v[n - 1]);
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-53 - 0.5);
}

/* random matrix of rows x n in type t (quantized through the reference quantizer) */
static uint8_t *make_matrix(int32_t t, int64_t rows, int64_t n) {
    const size_t rs = (size_t)mn_type_row_size(t, n);
    uint8_t *m = malloc(rs * (size_t)rows);
    float *tmp = malloc((size_t)n * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) tmp[i] = frand();
        mn_type_get(t)->from_f32(tmp, m + (size_t)r * rs, n);
    }
    free(tmp);
    return m;
}

static int parse_types(const char *s, int32_t *out) {
    int n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok && n < 8; tok = strtok(NULL, ",")) {
        const int32_t t = mn_type_from_name(tok);
        if (t < 0 || !mn_type_get(t)->vec_dot) {
            fprintf(stderr, "unknown or unsupported type %s\n", tok);
            exit(2);
        }
        out[n++] = t;
    }
    return n;
}

/* ---------------------------------------------------------------- prefill -------------------- */

static void vec_dot_gemm(mn_vec_dot_fn dot, int64_t n, const uint8_t *w, size_t ws, int64_t rows, const uint8_t *x,
                         size_t xs, int64_t n_tok, float *y) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16) /* the old mn_matmul order: 16 rows x every token */
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = r0; r < r0 + 16 && r < rows; r++) dot(n, w + (size_t)r * ws, x + (size_t)t * xs, &y[t * rows + r]);
}

static void prefill(const int32_t *types, int n_types, int64_t n_tok) {
    const struct {
        const char *name;
        int64_t rows, n;
    } shapes[] = {{"attn_q 2048x2048", 2048, 2048}, {"ffn_up 5632x2048", 5632, 2048}, {"ffn_down 2048x5632", 2048, 5632}};
    const char *isas[] = {"avx2", "avx512"};
    const int64_t chunk = getenv("GEMM_BENCH_CHUNK") ? atoll(getenv("GEMM_BENCH_CHUNK")) : 1 << 30;
    printf("prefill, 1 thread, %lld tokens: GFLOP/s min / median / max of 3\n", (long long)n_tok);
    for (int it = 0; it < n_types; it++) {
        const int32_t t = types[it], xt = mn_type_get(t)->vec_dot_type;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t rows = shapes[s].rows, n = shapes[s].n;
            const size_t ws = (size_t)mn_type_row_size(t, n), xs = (size_t)mn_type_row_size(xt, n);
            /* copies of the matrix filling 192 MB, used in turn: weights come from DRAM, as in a
             * forward pass (where no matrix is used twice per batch) */
            const double pool_mb = getenv("GEMM_BENCH_MB") ? atof(getenv("GEMM_BENCH_MB")) : 192.0;
            const int n_copies = (int)(pool_mb * 1e6 / ((double)ws * (double)rows)) + 1;
            uint8_t *w = make_matrix(t, rows, n);
            const size_t wc_size = ws * (size_t)rows * (size_t)n_copies;
            uint8_t *wc = malloc(wc_size);
            for (int c = 0; c < n_copies; c++) memcpy(wc + ws * (size_t)rows * (size_t)c, w, ws * (size_t)rows);
            if (getenv("GEMM_BENCH_MMAP")) { /* weights in a file mapping, like a loaded model */
                char path[] = "/tmp/gemm_bench_XXXXXX";
                const int fd = mkstemp(path);
                if (fd < 0 || write(fd, wc, wc_size) != (ssize_t)wc_size) exit(1);
                free(wc);
                wc = mmap(NULL, wc_size, PROT_READ, MAP_PRIVATE, fd, 0);
                unlink(path);
                close(fd);
                if (wc == MAP_FAILED) exit(1);
            }
            uint8_t *x = make_matrix(xt, n_tok, n);
            float *y = malloc((size_t)(rows * n_tok) * sizeof(float));
            const double flop = 2.0 * (double)rows * (double)n * (double)n_tok;
            for (int ii = 0; ii < 2; ii++) {
                const mn_kernels *k = mn_kernels_for_isa(isas[ii]);
                if (!k || (getenv("GEMM_BENCH_ISA") && strcmp(getenv("GEMM_BENCH_ISA"), isas[ii]) != 0)) continue;
                for (int path = 0; path < 2; path++) {
                    if (path == 0 && n_tok > 64) continue; /* the old path is slow: only for small batches */
                    double g[3], gc[3];
                    for (int rep = 0; rep < 3; rep++) {
                        const double t0 = now(), c0 = cpu_now();
                        for (int c = 0; c < n_copies; c++) {
                            const uint8_t *wi = wc + ws * (size_t)rows * (size_t)c;
                            if (path == 0) vec_dot_gemm(k->vec_dot[t], n, wi, ws, rows, x, xs, n_tok, y);
                            else
                                for (int64_t r0 = 0; r0 < rows; r0 += chunk) /* as mn_matmul's chunks */
                                    k->gemm[t](n, wi + (size_t)r0 * ws, ws, r0 + chunk < rows ? chunk : rows - r0, x, xs,
                                               n_tok, y + r0, rows);
                        }
                        g[rep] = flop * n_copies / (now() - t0) / 1e9;
                        gc[rep] = flop * n_copies / (cpu_now() - c0) / 1e9;
                    }
                    printf("%-7s %-5s %-20s %-8s", k->isa, mn_type_get(t)->name, shapes[s].name, path ? "gemm" : "vec_dot");
                    print3(g, 3);
                    printf("  | per CPU-second");
                    print3(gc, 3);
                    printf("\n");
                    fflush(stdout);
                }
            }
            free(w);
            if (getenv("GEMM_BENCH_MMAP")) munmap(wc, wc_size);
            else free(wc);
            free(x);
            free(y);
        }
    }
}

/* ---------------------------------------------------------------- decode --------------------- */

typedef struct dec_job {
    mn_vec_dot_fn dot;
    mn_gemm_fn gemm; /* used instead of dot when set: the rows as one call with one token */
    const uint8_t *w;
    size_t ws;
    int64_t r0, r1, n;
    const uint8_t *x;
    float *y;
} dec_job;

static void *dec_run(void *arg) {
    dec_job *j = arg;
    if (j->gemm) {
        j->gemm(j->n, j->w + (size_t)j->r0 * j->ws, j->ws, j->r1 - j->r0, j->x, 0, 1, j->y + j->r0, 0);
        return NULL;
    }
    for (int64_t r = j->r0; r < j->r1; r++) j->dot(j->n, j->w + (size_t)r * j->ws, j->x, &j->y[r]);
    return NULL;
}

/* read bandwidth of nth threads summing the words of buf (GB/s), as `minnow bench` probes it */
typedef struct probe_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} probe_job;

static void *probe_run(void *arg) {
    probe_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double probe_gbs(const void *buf, size_t bytes, int nth) {
    probe_job j[2];
    pthread_t th;
    for (int i = 0; i < nth; i++) j[i] = (probe_job){(const uint64_t *)buf + bytes / 8 / (size_t)nth * (size_t)i, bytes / 8 / (size_t)nth, 0};
    const double t0 = now();
    if (nth == 2) pthread_create(&th, NULL, probe_run, &j[1]);
    probe_run(&j[0]);
    if (nth == 2) pthread_join(th, NULL);
    const double dt = now() - t0;
    volatile uint64_t sink = j[0].sum + j[1 % nth].sum;
    (void)sink;
    return (double)bytes / dt / 1e9;
}

static void decode(const int32_t *types, int n_types, double mb) {
    const int64_t n = 2048;
    printf("decode: a %.0f MB matrix of %lld-wide rows times one token: GB/s min / median / max of 7, and each\n"
           "as a share of a read-bandwidth probe (summing the matrix's words) run right before it\n",
           mb, (long long)n);
    for (int it = 0; it < n_types; it++) {
        const int32_t t = types[it], xt = mn_type_get(t)->vec_dot_type;
        const size_t ws = (size_t)mn_type_row_size(t, n);
        const int64_t rows = (int64_t)(mb * 1e6 / (double)ws);
        uint8_t *w = make_matrix(t, rows, n);
        uint8_t *x = make_matrix(xt, 1, n);
        float *y = malloc((size_t)rows * sizeof(float));
        const mn_kernels *k = mn_kernels_get();
        for (int path = 0; path < 2; path++)
        for (int nth = 1; nth <= 2; nth++) {
            double g[7], e[7];
            for (int rep = 0; rep < 7; rep++) {
                const double bw = probe_gbs(w, (size_t)rows * ws, nth); /* right before: same conditions */
                dec_job jobs[2];
                pthread_t th;
                for (int i = 0; i < nth; i++)
                    jobs[i] = (dec_job){k->vec_dot[t], path ? k->gemm[t] : NULL, w, ws, rows * i / nth,
                                        rows * (i + 1) / nth, n, x, y};
                const double t0 = now();
                if (nth == 2) pthread_create(&th, NULL, dec_run, &jobs[1]);
                dec_run(&jobs[0]);
                if (nth == 2) pthread_join(th, NULL);
                g[rep] = (double)rows * (double)ws / (now() - t0) / 1e9;
                e[rep] = g[rep] / bw;
            }
            printf("%-7s %-5s %-7s %d thread%s", k->isa, mn_type_get(t)->name, path ? "gemm" : "vec_dot", nth,
                   nth > 1 ? "s" : " ");
            print3(g, 7);
            printf("  | / probe");
            for (int i = 0; i < 7; i++) e[i] *= 100.0;
            print3(e, 7);
            printf(" %%\n");
            fflush(stdout);
        }
        free(w);
        free(x);
        free(y);
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "prefill";
    int32_t types[8];
    const int n_types = parse_types(argc > 2 ? argv[2] : "q8_0,q4_0", types);
    if (strcmp(mode, "prefill") == 0) {
        prefill(types, n_types, argc > 3 ? atoll(argv[3]) : 512);
    } else if (strcmp(mode, "decode") == 0) {
        decode(types, n_types, argc > 3 ? atof(argv[3]) : 512.0);
    } else {
        fprintf(stderr, "usage: gemm_bench prefill|decode [TYPES] [N_TOK|MB]\n");
        return 2;
    }
    return 0;
}
