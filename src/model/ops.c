/*
 * ops.c: batched matrix products and row-wise helpers (see ops.h).
 *
 * A product runs in two pool passes: (1) threads convert activation rows into the weights'
 * vec_dot_type (Q8_0 / Q8_K blocks for quantized weights), (2) threads claim chunks of weight rows
 * and compute them against every activation row. Splitting by weight rows keeps each thread
 * streaming its own slice of the weights, which is what bounds decode speed. A chunk is one call of
 * the table's gemm kernel (kernels/kernels.h), which picks its method by the number of tokens:
 * packed weight panels reused across tokens for prefill, several rows sharing each activation load
 * for decode. Types without a gemm kernel take one vec_dot per (row, token). Every output comes
 * from its own row and token only, so results do not depend on the thread count or chunk bounds.
 *
 * Several matrices that read the same input (q/k/v, gate/up) go through one call: the input is
 * converted once and all their chunks are claimed from one pool pass, so a decode step waits for
 * the pool once per group instead of twice per matrix. With MN_MM_SWIGLU a chunk computes the same
 * rows of gate and up and applies silu(gate) * up to them at once, which saves a pass as well.
 */
#include "model/ops.h"

#include <math.h>
#include <string.h>

#include "kernels/types.h"

#define ROW_BLOCK 16
/* From this many tokens the gemm kernels pack weights (their PACK_MIN_TOK) and recompute
 * per-token data once per call: chunks are then fewer and larger, whole 32-row microtiles of the
 * AVX-512 kernel (128 rows for long batches, where the per-call token work is larger). Below it,
 * decode-sized chunks. */
#define GEMM_MIN_TOK 4
#define MAX_PARTS 4
/* Decode (and batches below GEMM_MIN_TOK) takes one chunk per thread: each thread then streams
 * one contiguous range of rows, which the hardware prefetchers follow; with 8 smaller chunks per
 * thread the two threads' claims interleave, every chunk restarts the prefetch streams, and 2
 * threads were measured barely faster than 1 on smollm2-135m (1.05-1.4x, against 1.5-1.7x with
 * one chunk each). A late thread still costs nothing: the caller claims its chunk too. */
#define MM_DEC_CHUNKS 1

size_t mn_matmul_scratch_size(const mn_weight *w, int n_tok) {
    const mn_type_traits *tt = mn_type_get(w->type);
    if (tt->vec_dot_type == MN_TYPE_F32) return 0;
    return (size_t)mn_type_row_size(tt->vec_dot_type, w->n_in) * (size_t)n_tok;
}

typedef struct matmul_job {
    const mn_kernels *k;
    const mn_mm_part *parts;
    int n_parts;
    int flags;
    const float *x;
    int64_t x_stride;
    int n_tok;
    const void *xq;   /* converted activations (or x itself for f32) */
    size_t xq_stride; /* bytes between converted rows */
    int32_t vd_type;
    void *scratch;
    int64_t chunk[MAX_PARTS];  /* weight rows per chunk, per part */
    int64_t first[MAX_PARTS + 1]; /* index of each part's first chunk; first[n_parts] = total */
} matmul_job;

static void convert_row(void *arg, int64_t t, int ith) {
    (void)ith;
    matmul_job *j = arg;
    j->k->quantize[j->vd_type](j->x + t * j->x_stride, (char *)j->scratch + (size_t)t * j->xq_stride,
                               j->parts[0].w->n_in);
}

/* rows [r0, r1) of part p against every token */
static void run_rows(const matmul_job *j, const mn_mm_part *p, int64_t r0, int64_t r1) {
    const mn_weight *w = p->w;
    mn_gemm_fn gemm = j->k->gemm[w->type];
    if (gemm) {
        gemm(w->n_in, (const char *)w->data + (size_t)r0 * w->row_size, w->row_size, r1 - r0, j->xq, j->xq_stride,
             j->n_tok, p->y + r0, p->y_stride);
        return;
    }
    mn_vec_dot_fn dot = j->k->vec_dot[w->type];
    for (int64_t rb = r0; rb < r1; rb += ROW_BLOCK) { /* a block of rows stays in cache for all tokens */
        int64_t re = rb + ROW_BLOCK < r1 ? rb + ROW_BLOCK : r1;
        for (int t = 0; t < j->n_tok; t++) {
            const void *xr = (const char *)j->xq + (size_t)t * j->xq_stride;
            float *yr = p->y + (int64_t)t * p->y_stride;
            for (int64_t r = rb; r < re; r++) dot(w->n_in, (const char *)w->data + (size_t)r * w->row_size, xr, &yr[r]);
        }
    }
}

/* One chunk, claimed from the pool's shared counter, so a preempted thread delays only the chunk it
 * holds. */
static void chunk_fn(void *arg, int64_t c, int ith) {
    (void)ith;
    const matmul_job *j = arg;
    int p = 0;
    while (c >= j->first[p + 1]) p++;
    const mn_mm_part *part = &j->parts[p];
    const int64_t n_out = part->w->n_out, r0 = (c - j->first[p]) * j->chunk[p],
                  r1 = r0 + j->chunk[p] < n_out ? r0 + j->chunk[p] : n_out;
    run_rows(j, part, r0, r1);
    if (j->flags & MN_MM_SWIGLU) { /* the same rows of up, then gate = silu(gate) * up */
        run_rows(j, &j->parts[1], r0, r1);
        for (int t = 0; t < j->n_tok; t++) {
            float *g = j->parts[0].y + (int64_t)t * j->parts[0].y_stride;
            const float *u = j->parts[1].y + (int64_t)t * j->parts[1].y_stride;
            for (int64_t r = r0; r < r1; r++) g[r] = g[r] / (1.0f + expf(-g[r])) * u[r];
        }
    }
}

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

void mn_matmul_parts(mn_pool *pool, const mn_kernels *k, const mn_mm_part *parts, int n_parts, const float *x,
                     int64_t x_stride, int n_tok, void *scratch, int flags) {
    const int32_t vd = mn_type_get(parts[0].w->type)->vec_dot_type;
    bool same = n_parts <= MAX_PARTS;
    for (int i = 1; i < n_parts; i++) same = same && mn_type_get(parts[i].w->type)->vec_dot_type == vd;
    if (!same) { /* inputs converted differently: one call per part (rare: mixed-type files) */
        for (int i = 0; i < n_parts; i++) mn_matmul_parts(pool, k, &parts[i], 1, x, x_stride, n_tok, scratch, 0);
        if (flags & MN_MM_SWIGLU)
            for (int t = 0; t < n_tok; t++) {
                float *g = parts[0].y + (int64_t)t * parts[0].y_stride;
                const float *u = parts[1].y + (int64_t)t * parts[1].y_stride;
                for (int64_t r = 0; r < parts[0].w->n_out; r++) g[r] = g[r] / (1.0f + expf(-g[r])) * u[r];
            }
        return;
    }
    matmul_job j = {.k = k, .parts = parts, .n_parts = n_parts, .flags = flags, .x = x, .x_stride = x_stride,
                    .n_tok = n_tok, .vd_type = vd, .scratch = scratch};
    if (vd == MN_TYPE_F32) {
        j.xq = x;
        j.xq_stride = (size_t)x_stride * sizeof(float);
    } else {
        j.xq = scratch;
        j.xq_stride = mn_type_row_size(vd, parts[0].w->n_in);
        mn_pool_for(pool, n_tok, 0, convert_row, &j);
    }
    /* fewer threads when there is too little work to share (a thread per ~64K weight-tokens) */
    int64_t work = 0;
    for (int i = 0; i < n_parts; i++) work += parts[i].w->n_out * parts[i].w->n_in * (int64_t)n_tok;
    int nth = (int)(work / 65536) + 1;
    if (nth > mn_pool_size(pool)) nth = mn_pool_size(pool);
    /* a SWIGLU chunk covers the same rows of both parts: plan chunks over part 0 only */
    const int n_plan = flags & MN_MM_SWIGLU ? 1 : n_parts;
    j.first[0] = 0;
    for (int i = 0; i < n_plan; i++) {
        const mn_weight *w = parts[i].w;
        int64_t c;
        if (n_tok >= GEMM_MIN_TOK && k->gemm[w->type]) { /* ~4 chunks per thread, whole microtiles */
            c = round_up((w->n_out + 4 * nth - 1) / (4 * nth), n_tok > 64 ? 128 : 32);
        } else { /* one contiguous chunk per thread (see MM_DEC_CHUNKS) */
            c = round_up((w->n_out + MM_DEC_CHUNKS * nth - 1) / (MM_DEC_CHUNKS * nth), ROW_BLOCK);
        }
        j.chunk[i] = c;
        j.first[i + 1] = j.first[i] + (w->n_out + c - 1) / c;
    }
    j.n_parts = n_plan;
    mn_pool_for(pool, j.first[n_plan], nth, chunk_fn, &j);
}

void mn_matmul(mn_pool *pool, const mn_kernels *k, const mn_weight *w, const float *x, int64_t x_stride, int n_tok,
               float *y, int64_t y_stride, void *scratch) {
    const mn_mm_part p = {w, y, y_stride};
    mn_matmul_parts(pool, k, &p, 1, x, x_stride, n_tok, scratch, 0);
}

void mn_rmsnorm(float *o, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = ss / (float)n + eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = weight[i] * (ss * x[i]);
}
