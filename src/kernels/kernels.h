/*
 * kernels.h: the run-time kernel table. One const mn_kernels per instruction set (scalar
 * reference, AVX2, AVX-512); mn_kernels_get() picks the best one the CPU supports, once per
 * process, and every hot loop calls through it. Kernels never re-check CPU features themselves.
 *
 * Contract of every entry (same as the typedefs in types.h):
 *   - vec_dot[t](n, w, x, out): *out = sum_i w[i] * x[i], w a row of type t, x a row of type
 *     mn_type_get(t)->vec_dot_type (F32 for f32/f16/bf16 weights, Q8_0 for q8_0/q4_0 weights,
 *     Q8_K for q4_K/q5_K/q6_K). For quantized types n must be a multiple of the block size (32,
 *     or 256 for the K-quants); for f32/f16/bf16 any
 *     n >= 0 works (SIMD body + scalar or masked tail).
 *   - quantize[t](src, dst, n): f32 -> type t. Filled for every vec_dot_type (so a caller can always
 *     quantize activations with quantize[traits->vec_dot_type]; quantize[F32] is a plain copy) and
 *     for f16/bf16 (KV cache). The Q8_0 and Q8_K quantizers are bit-identical to the reference in
 *     every table.
 *   - to_f32[t](src, dst, n): type t -> f32, bit-identical to the reference (a dequantized weight
 *     is one multiply d * q, or d1 * q - m1 with the same two roundings for q4_K/q5_K, so SIMD and
 *     scalar agree exactly). Filled for weight types (q8_K, an activation type, has none here).
 *   - A NULL entry means "type not supported"; callers check once at load time.
 *   - Pointers: quantized blocks may sit at any address; f32 arrays must be 4-byte and f16/bf16
 *     arrays 2-byte aligned (SIMD loads are unaligned, but scalar tails index the arrays).
 *     Buffers must not overlap, except axpy's x == y.
 *   - SIMD results differ from the reference only by float summation order (integer block sums
 *     are exact); tests/unit/test_kernels.c holds the error budgets.
 * Thread-safety: tables are immutable; every kernel is reentrant and keeps no state.
 */
#ifndef MN_KERNELS_KERNELS_H
#define MN_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/types.h"

/* Batched vec_dot (prefill): for r < n_rows, t < n_tok,
 *   y[t * y_stride + r] = vec_dot(n, w + r * w_stride, x + t * x_stride)
 * W[n_rows][n] in the weight type, rows w_stride bytes apart; x[n_tok][n] in its vec_dot_type, rows
 * x_stride bytes apart; y f32. Same preconditions as vec_dot (n a multiple of the block size for
 * quantized types; for quantized x, rows may sit at any address, f32 x rows 4-byte aligned), y
 * must not overlap w or x. A y element depends only on its own row and token and on n_tok (a
 * kernel picks its method by the number of tokens: packed weight panels for prefill, several rows
 * per activation load for decode), never on n_rows or where a chunk of rows starts: splitting rows
 * across threads changes no bit. Results match vec_dot within the same float-summation budget
 * (integer block sums are exact). Scratch (packed panels, activation sums) is on the stack, < 64 KB. */
typedef void (*mn_gemm_fn)(int64_t n, const void *w, size_t w_stride, int64_t n_rows, const void *x,
                           size_t x_stride, int64_t n_tok, float *y, int64_t y_stride);

/* Attention over one KV block for G query heads that share a KV head (online softmax update):
 * q[G][hd] f32; k, v: n_t rows (1 <= n_t <= MN_ATTN_BLOCK_MAX) of hd elements in the KV cache's
 * type, `row` bytes apart; m[G], l[G], acc[G][hd] the running max, sum and weighted V sum (start
 * at -inf, 0, 0). Per head h: s_t = scale * (q_h . k_t), m' = max(m_h, max_t s_t),
 * c = e^(m_h - m'), l_h = l_h c + sum_t e^(s_t - m'), acc_h = acc_h c + sum_t e^(s_t - m') v_t,
 * m_h = m'. 1 <= hd <= MN_ATTN_HD_MAX. Variants differ from the reference only by float rounding. */
#define MN_ATTN_BLOCK_MAX 16
#define MN_ATTN_HD_MAX 512
typedef void (*mn_attn_block_fn)(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                                 float scale, float *m, float *l, float *acc);

typedef struct mn_kernels {
    const char *isa;                        /* "scalar", "avx2", "avx512" */
    mn_vec_dot_fn vec_dot[MN_TYPE_COUNT];   /* per weight type; NULL = unsupported */
    mn_from_f32_fn quantize[MN_TYPE_COUNT]; /* fast activation quantizer, indexed by vec_dot_type */
    mn_to_f32_fn to_f32[MN_TYPE_COUNT];     /* fast dequantize */
    /* y[i] += a * x[i], n elements (any n >= 0) */
    void (*axpy_f32)(int64_t n, float a, const float *x, float *y);
    /* sum x[i]*y[i] (any n >= 0) */
    float (*dot_f32)(int64_t n, const float *x, const float *y);
    mn_gemm_fn gemm[MN_TYPE_COUNT];         /* per weight type, batched vec_dot; NULL = unsupported */
    mn_attn_block_fn attn_block[MN_TYPE_COUNT]; /* per KV cache type; NULL = unsupported */
} mn_kernels;

/* Table chosen once (pthread_once) from CPU detection, overridable by env MINNOW_ISA=scalar|avx2|
 * avx512 (an ISA the CPU lacks, or an unknown name, falls back to the best available, with one
 * warning on stderr). Builds with -DMN_FORCE_SCALAR always get the scalar table.
 * Never NULL; borrowed, valid for the life of the process. */
const mn_kernels *mn_kernels_get(void);

/* The table of one ISA, or NULL when this CPU lacks it or the name is unknown (for tests and
 * benchmarks comparing variants). "scalar" is always available. */
const mn_kernels *mn_kernels_for_isa(const char *isa);

/* The selection rule of mn_kernels_get() as a pure function, for tests: the table for the
 * override request (NULL or "": no override). When the request cannot be honoured, writes a
 * one-line reason to warn (if warn_size > 0; otherwise warn may be NULL) and returns the best
 * available table; warn is set to "" when there is nothing to say. Never NULL. */
const mn_kernels *mn_kernels_select(const char *request, char *warn, int warn_size);

#endif
