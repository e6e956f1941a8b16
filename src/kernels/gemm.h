/*
 * gemm.h: the batched matrix products behind mn_kernels.gemm (contract in kernels/kernels.h), one
 * function per weight type and ISA. The scalar reference (kernels/ref/ref_gemm.c) is the spec: a
 * plain double loop over the reference vec_dot. The SIMD versions (kernels/x86/gemm_avx2.c,
 * gemm_avx512.c; gemm_kq_avx2.c, gemm_kq_avx512.c for the K-quants) block registers and caches so
 * that each weight load feeds several tokens and each activation load several rows;
 * kernels/x86/gemm_avx512.c explains the layout. Like every x86
 * kernel, the SIMD ones may only be reached through a table dispatch.c handed out.
 */
#ifndef MN_KERNELS_GEMM_H
#define MN_KERNELS_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define MN_GEMM_ARGS                                                                                        \
    int64_t n, const void *w, size_t w_stride, int64_t n_rows, const void *x, size_t x_stride, int64_t n_tok, \
        float *y, int64_t y_stride

/* reference: y[t][r] = mn_ref_vec_dot_<type>(W[r], x[t]) */
void mn_ref_gemm_f32(MN_GEMM_ARGS);
void mn_ref_gemm_f16(MN_GEMM_ARGS);
void mn_ref_gemm_bf16(MN_GEMM_ARGS);
void mn_ref_gemm_q8_0(MN_GEMM_ARGS);
void mn_ref_gemm_q4_0(MN_GEMM_ARGS);
void mn_ref_gemm_q4_K(MN_GEMM_ARGS);
void mn_ref_gemm_q5_K(MN_GEMM_ARGS);
void mn_ref_gemm_q6_K(MN_GEMM_ARGS);

#if defined(__x86_64__)
/* AVX2 + FMA + F16C + BMI2 (gemm_avx2.c) */
void mn_gemm_f32_avx2(MN_GEMM_ARGS);
void mn_gemm_f16_avx2(MN_GEMM_ARGS);
void mn_gemm_bf16_avx2(MN_GEMM_ARGS);
void mn_gemm_q8_0_avx2(MN_GEMM_ARGS);
void mn_gemm_q4_0_avx2(MN_GEMM_ARGS);
/* K-quants x Q8_K, AVX2 + FMA + F16C + BMI2 (gemm_kq_avx2.c) */
void mn_gemm_q4_K_avx2(MN_GEMM_ARGS);
void mn_gemm_q5_K_avx2(MN_GEMM_ARGS);
void mn_gemm_q6_K_avx2(MN_GEMM_ARGS);
/* AVX-512 F/BW/VL/DQ/VNNI/BF16 (gemm_avx512.c) */
void mn_gemm_f32_avx512(MN_GEMM_ARGS);
void mn_gemm_f16_avx512(MN_GEMM_ARGS);
void mn_gemm_bf16_avx512(MN_GEMM_ARGS);
void mn_gemm_q8_0_avx512(MN_GEMM_ARGS);
void mn_gemm_q4_0_avx512(MN_GEMM_ARGS);
/* K-quants x Q8_K, AVX-512 with VNNI (gemm_kq_avx512.c) */
void mn_gemm_q4_K_avx512(MN_GEMM_ARGS);
void mn_gemm_q5_K_avx512(MN_GEMM_ARGS);
void mn_gemm_q6_K_avx512(MN_GEMM_ARGS);
#endif

#endif
