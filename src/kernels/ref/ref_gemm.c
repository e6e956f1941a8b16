/*
 * ref_gemm.c: the reference batched matrix product, the spec for every SIMD gemm.
 *
 *   W[n_rows][n] (weight type) . x[n_tok][n] (its vec_dot_type) -> y[n_tok][n_rows] (y_stride apart)
 *
 * It is nothing but the reference vec_dot called for every (token, row) pair, so "gemm agrees
 * with vec_dot" and "gemm agrees with the reference" are the same statement. Nothing clever here:
 * the speed lives in kernels/x86/gemm_*.c.
 */
#include "kernels/gemm.h"

#include "kernels/ref/ref.h"
#include "kernels/types.h"

static void gemm_by_dots(mn_vec_dot_fn dot, MN_GEMM_ARGS) {
    for (int64_t t = 0; t < n_tok; t++) {
        const void *xt = (const char *)x + (size_t)t * x_stride;
        for (int64_t r = 0; r < n_rows; r++) dot(n, (const char *)w + (size_t)r * w_stride, xt, &y[t * y_stride + r]);
    }
}

void mn_ref_gemm_f32(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_f32, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_f16(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_f16, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_bf16(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_bf16, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_q8_0(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_q8_0, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_q4_0(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_q4_0, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_q4_K(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_q4_K, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_q5_K(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_q5_K, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_ref_gemm_q6_K(MN_GEMM_ARGS) {
    gemm_by_dots(mn_ref_vec_dot_q6_K, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}
