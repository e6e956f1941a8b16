/*
 * ops.h: the forward pass's building blocks over a batch of rows, each split across the thread pool.
 * Matrix products go through the kernel table (src/kernels/kernels.h): activations are converted
 * once per row into the weight type's vec_dot_type, then every weight row is dotted with every
 * activation row, weight rows in small blocks so a block stays in cache while all tokens use it.
 */
#ifndef MN_MODEL_OPS_H
#define MN_MODEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "model/model.h"

/* Bytes of scratch mn_matmul needs to convert n_tok rows of n_in activations for weight w. */
size_t mn_matmul_scratch_size(const mn_weight *w, int n_tok);

/* y[t][r] = sum_k W[r][k] * x[t][k]   for t < n_tok, r < w->n_out
 * x: [n_tok][x_stride] f32 (first w->n_in used), y: [n_tok][y_stride] f32.
 * scratch: mn_matmul_scratch_size(w, n_tok) bytes, 64-byte aligned. */
void mn_matmul(mn_pool *pool, const mn_kernels *k, const mn_weight *w, const float *x,
               int64_t x_stride, int n_tok, float *y, int64_t y_stride, void *scratch);

/* Several matrices with the same input (same n_in; q/k/v or gate/up): y_i = x @ W_i^T as one job,
 * the input converted once and all matrices' row chunks shared out in one pool pass.
 * flags MN_MM_SWIGLU: exactly two parts, gate and up, with the same n_out: afterwards
 * parts[0].y = silu(gate) * up (parts[1].y holds up). Scratch: the largest
 * mn_matmul_scratch_size of the parts. At most 4 parts. */
typedef struct mn_mm_part {
    const mn_weight *w;
    float *y;
    int64_t y_stride;
} mn_mm_part;
#define MN_MM_SWIGLU 1
void mn_matmul_parts(mn_pool *pool, const mn_kernels *k, const mn_mm_part *parts, int n_parts, const float *x,
                     int64_t x_stride, int n_tok, void *scratch, int flags);

/* o[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], n elements (o may alias x). */
void mn_rmsnorm(float *o, const float *x, const float *weight, int n, float eps);

#endif
