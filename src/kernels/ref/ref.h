/*
 * ref.h: the scalar reference kernels, the specification every SIMD variant is tested against.
 * They are plain loops in baseline C (no intrinsics, nothing clever) so that they can be read as
 * the definition of each type's arithmetic. The type table (types.c) points at them, and the
 * "scalar" kernel table (dispatch.c) uses them directly.
 *
 * Conventions (same as the mn_*_fn typedefs in types.h): n counts elements and is a multiple of
 * the type's block size; w points at weights in the named type; x at activations in that type's
 * vec_dot_type (F32 for f32/f16/bf16 weights, Q8_0 for q8_0/q4_0 weights, Q8_K for the K-quants).
 */
#ifndef MN_KERNELS_REF_H
#define MN_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

/* F32: the identity conversions and a float-accumulated dot product. */
void mn_ref_to_f32_f32(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_f32(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_f32(int64_t n, const void *w, const void *x, float *out);

/* F16 (IEEE binary16) weights, F32 activations. */
void mn_ref_to_f32_f16(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_f16(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_f16(int64_t n, const void *w, const void *x, float *out);

/* BF16 weights, F32 activations. */
void mn_ref_to_f32_bf16(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_bf16(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_bf16(int64_t n, const void *w, const void *x, float *out);

/* Q8_0 weights, Q8_0 activations. */
void mn_ref_to_f32_q8_0(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q8_0(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_q8_0(int64_t n, const void *w, const void *x, float *out);

/* Q4_0 weights, Q8_0 activations. */
void mn_ref_to_f32_q4_0(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q4_0(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_q4_0(int64_t n, const void *w, const void *x, float *out);

/* K-quants (kernels/ref/ref_kquants.c): Q4_K, Q5_K, Q6_K weights with Q8_K activations; n is a
 * multiple of 256. Layouts in kernels/blocks.h. */
void mn_ref_to_f32_q4_K(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q4_K(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_q4_K(int64_t n, const void *w, const void *x, float *out);
void mn_ref_to_f32_q5_K(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q5_K(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_q5_K(int64_t n, const void *w, const void *x, float *out);
void mn_ref_to_f32_q6_K(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q6_K(const float *src, void *dst, int64_t n);
void mn_ref_vec_dot_q6_K(int64_t n, const void *w, const void *x, float *out);
void mn_ref_to_f32_q8_K(const void *src, float *dst, int64_t n);
void mn_ref_from_f32_q8_K(const float *src, void *dst, int64_t n);

/* y[i] += a * x[i] for i < n (any n >= 0). */
void mn_ref_axpy_f32(int64_t n, float a, const float *x, float *y);
void mn_ref_attn_block_f32(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                           float scale, float *m, float *l, float *acc);
void mn_ref_attn_block_f16(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                           float scale, float *m, float *l, float *acc);
/* sum of x[i] * y[i] for i < n (any n >= 0), accumulated in float in index order. */
float mn_ref_dot_f32(int64_t n, const float *x, const float *y);

#endif
