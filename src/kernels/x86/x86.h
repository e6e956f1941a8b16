/*
 * x86.h: the x86 SIMD kernels and the per-ISA tables built from them.
 *
 * Functions named *_avx2 live in kernels_avx2.c (compiled with -mavx2 -mfma -mf16c -mbmi2) and
 * need a CPU with all four; *_avx512 live in kernels_avx512.c (additionally AVX-512
 * F/BW/VL/DQ/VNNI/BF16) and need all of those. dispatch.c only hands out a table after checking
 * mn_cpu_features, and nothing else may call these directly. Each table is a const object
 * defined in its ISA's file; defining it there executes nothing, it only takes addresses.
 * Semantics of every function: the matching mn_ref_* in kernels/ref/ref.h.
 */
#ifndef MN_KERNELS_X86_H
#define MN_KERNELS_X86_H

#include <stdint.h>

#include "kernels/kernels.h"

#if defined(__x86_64__)
#define MN_HAVE_X86_KERNELS 1

extern const mn_kernels mn_kernels_avx2_table;
extern const mn_kernels mn_kernels_avx512_table;

/* ---- AVX2 + FMA + F16C ---- */
void mn_vec_dot_f32_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_f16_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_bf16_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q8_0_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q4_0_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_quantize_q8_0_avx2(const float *src, void *dst, int64_t n);
void mn_quantize_f16_avx2(const float *src, void *dst, int64_t n);
void mn_quantize_bf16_avx2(const float *src, void *dst, int64_t n);
void mn_to_f32_f16_avx2(const void *src, float *dst, int64_t n);
void mn_to_f32_bf16_avx2(const void *src, float *dst, int64_t n);
void mn_to_f32_q8_0_avx2(const void *src, float *dst, int64_t n);
void mn_to_f32_q4_0_avx2(const void *src, float *dst, int64_t n);
void mn_axpy_f32_avx2(int64_t n, float a, const float *x, float *y);
float mn_dot_f32_avx2(int64_t n, const float *x, const float *y);

/* ---- AVX-512 F/BW/VL/DQ/VNNI/BF16 ---- */
void mn_vec_dot_f32_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_attn_block_f32_avx2(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                            float scale, float *m, float *l, float *acc);
void mn_attn_block_f16_avx2(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                            float scale, float *m, float *l, float *acc);
void mn_attn_block_f32_avx512(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                              float scale, float *m, float *l, float *acc);
void mn_attn_block_f16_avx512(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                              float scale, float *m, float *l, float *acc);
void mn_vec_dot_f16_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_bf16_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q8_0_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q4_0_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_quantize_q8_0_avx512(const float *src, void *dst, int64_t n);
void mn_to_f32_f16_avx512(const void *src, float *dst, int64_t n);
void mn_to_f32_q8_0_avx512(const void *src, float *dst, int64_t n);
void mn_to_f32_q4_0_avx512(const void *src, float *dst, int64_t n);
void mn_axpy_f32_avx512(int64_t n, float a, const float *x, float *y);
float mn_dot_f32_avx512(int64_t n, const float *x, const float *y);

/* ---- K-quants (kquants_avx2.c / kquants_avx512.c, same ISA requirements as above) ---- */
void mn_vec_dot_q4_K_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q5_K_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q6_K_avx2(int64_t n, const void *w, const void *x, float *out);
void mn_quantize_q8_K_avx2(const float *src, void *dst, int64_t n);
void mn_to_f32_q4_K_avx2(const void *src, float *dst, int64_t n);
void mn_to_f32_q5_K_avx2(const void *src, float *dst, int64_t n);
void mn_to_f32_q6_K_avx2(const void *src, float *dst, int64_t n);
void mn_vec_dot_q4_K_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q5_K_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_vec_dot_q6_K_avx512(int64_t n, const void *w, const void *x, float *out);
void mn_quantize_q8_K_avx512(const float *src, void *dst, int64_t n);
void mn_to_f32_q4_K_avx512(const void *src, float *dst, int64_t n);
void mn_to_f32_q5_K_avx512(const void *src, float *dst, int64_t n);
void mn_to_f32_q6_K_avx512(const void *src, float *dst, int64_t n);

#endif /* __x86_64__ */
#endif
