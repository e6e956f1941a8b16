/*
 * ops.c: batched matrix product and row-wise helpers (see ops.h).
 *
 * mn_matmul runs in two pool passes: (1) threads convert activation rows into the weight type's
 * vec_dot_type (Q8_0 blocks for quantized weights), (2) threads claim chunks of weight rows and
 * compute them against every activation row. Splitting by weight rows keeps each thread streaming
 * its own slice of the weights, which is what bounds decode speed. A chunk is one call of the
 * table's gemm kernel (kernels/kernels.h), which picks its method by the number of tokens: packed
 * weight panels reused across tokens for prefill, several rows sharing each activation load for
 * decode. Types without a gemm kernel take one vec_dot per (row, token). Every output comes from
 * its own row and token only, so results do not depend on the thread count or chunk boundaries.
 */
#include "model/ops.h"

#include <math.h>
#include <string.h>

#include "kernels/types.h"

#define ROW_BLOCK 16
/* From this many tokens the gemm kernels pack weights (their PACK_MIN_TOK) and recompute
 * per-token data once per call: chunks are then few and large, multiples of GEMM_ROW_ALIGN rows
 * (whole 32-row microtiles of the AVX-512 kernel). Below it, decode-sized chunks. */
#define GEMM_MIN_TOK 4
#define GEMM_ROW_ALIGN 128

size_t mn_matmul_scratch_size(const mn_weight *w, int n_tok) {
    const mn_type_traits *tt = mn_type_get(w->type);
    if (tt->vec_dot_type == MN_TYPE_F32) return 0;
    return (size_t)mn_type_row_size(tt->vec_dot_type, w->n_in) * (size_t)n_tok;
}

typedef struct matmul_job {
    const mn_kernels *k;
    const mn_weight *w;
    const float *x;
    int64_t x_stride;
    int n_tok;
    float *y;
    int64_t y_stride;
    const void *xq;     /* converted activations (or x itself for f32) */
    size_t xq_stride;   /* bytes between converted rows */
    int32_t vd_type;
    void *scratch;
    int64_t chunk;      /* weight rows per chunk */
} matmul_job;

static void convert_row(void *arg, int64_t t, int ith) {
    (void)ith;
    matmul_job *j = arg;
    j->k->quantize[j->vd_type](j->x + t * j->x_stride, (char *)j->scratch + (size_t)t * j->xq_stride, j->w->n_in);
}

/* One chunk = j->chunk consecutive weight rows against every activation row. Chunks are claimed
 * from the pool's shared counter, so a preempted thread delays only the chunk it holds. */
static void dot_chunk(void *arg, int64_t c, int ith) {
    (void)ith;
    matmul_job *j = arg;
    const mn_weight *w = j->w;
    mn_vec_dot_fn dot = j->k->vec_dot[w->type];
    int64_t rb = c * j->chunk, r1 = rb + j->chunk < w->n_out ? rb + j->chunk : w->n_out;
    for (int64_t r0 = rb; r0 < r1; r0 += ROW_BLOCK) {
        int64_t re = r0 + ROW_BLOCK < r1 ? r0 + ROW_BLOCK : r1;
        for (int t = 0; t < j->n_tok; t++) {
            const void *xr = (const char *)j->xq + (size_t)t * j->xq_stride;
            float *yr = j->y + (int64_t)t * j->y_stride;
            for (int64_t r = r0; r < re; r++)
                dot(w->n_in, (const char *)w->data + (size_t)r * w->row_size, xr, &yr[r]);
        }
    }
}

/* One chunk of rows through the gemm kernel, against every token. */
static void gemm_chunk(void *arg, int64_t c, int ith) {
    (void)ith;
    matmul_job *j = arg;
    const mn_weight *w = j->w;
    const int64_t r0 = c * j->chunk, r1 = r0 + j->chunk < w->n_out ? r0 + j->chunk : w->n_out;
    j->k->gemm[w->type](w->n_in, (const char *)w->data + (size_t)r0 * w->row_size, w->row_size, r1 - r0, j->xq,
                        j->xq_stride, j->n_tok, j->y + r0, j->y_stride);
}

void mn_matmul(mn_pool *pool, const mn_kernels *k, const mn_weight *w, const float *x,
               int64_t x_stride, int n_tok, float *y, int64_t y_stride, void *scratch) {
    const mn_type_traits *tt = mn_type_get(w->type);
    matmul_job j = {k, w, x, x_stride, n_tok, y, y_stride, NULL, 0, tt->vec_dot_type, scratch, 0};
    if (tt->vec_dot_type == MN_TYPE_F32) {
        j.xq = x;
        j.xq_stride = (size_t)x_stride * sizeof(float);
    } else {
        j.xq = scratch;
        j.xq_stride = mn_type_row_size(tt->vec_dot_type, w->n_in);
        mn_pool_for(pool, n_tok, 0, convert_row, &j);
    }
    /* fewer threads when there is too little work to share (a thread per ~64K weights) */
    int64_t work = w->n_out * w->n_in * (int64_t)n_tok;
    int nth = (int)(work / 65536) + 1;
    if (nth > mn_pool_size(pool)) nth = mn_pool_size(pool);
    if (n_tok >= GEMM_MIN_TOK && k->gemm[w->type]) {
        /* ~4 chunks per thread, whole microtiles */
        j.chunk = (w->n_out + 4 * nth - 1) / (4 * nth);
        j.chunk = (j.chunk + GEMM_ROW_ALIGN - 1) / GEMM_ROW_ALIGN * GEMM_ROW_ALIGN;
    } else {
        /* ~8 chunks per thread: enough to rebalance, few enough that the counter stays cold */
        j.chunk = (w->n_out + 8 * nth - 1) / (8 * nth);
        if (j.chunk < ROW_BLOCK) j.chunk = ROW_BLOCK;
    }
    mn_pool_for(pool, (w->n_out + j.chunk - 1) / j.chunk, nth, k->gemm[w->type] ? gemm_chunk : dot_chunk, &j);
}

void mn_rmsnorm(float *o, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = ss / (float)n + eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = weight[i] * (ss * x[i]);
}
