/*
 * dispatch.c: chooses the kernel table once per process.
 *
 * Each ISA has one const mn_kernels (the scalar one here, the SIMD ones in kernels/x86/). A table
 * is usable only when mn_cpu_features reports every instruction-set extension its file was
 * compiled with, OS register-state support included; this is the single place where that is
 * checked, so kernels themselves never look at CPUID. The choice is made under pthread_once and
 * stored in one pointer that is never written again (the only static state of this file).
 * MINNOW_ISA=scalar|avx2|avx512 asks for a specific table (for debugging, benchmarks and
 * reproducing a user's machine); a request that cannot be honoured prints one warning and falls
 * back to the best table available. -DMN_FORCE_SCALAR builds always use the reference table.
 */
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/x86.h"

static const mn_kernels scalar_table = {
    .isa = "scalar",
    .vec_dot =
        {
            [MN_TYPE_F32] = mn_ref_vec_dot_f32,
            [MN_TYPE_F16] = mn_ref_vec_dot_f16,
            [MN_TYPE_BF16] = mn_ref_vec_dot_bf16,
            [MN_TYPE_Q8_0] = mn_ref_vec_dot_q8_0,
            [MN_TYPE_Q4_0] = mn_ref_vec_dot_q4_0,
            [MN_TYPE_Q4_K] = mn_ref_vec_dot_q4_K,
            [MN_TYPE_Q5_K] = mn_ref_vec_dot_q5_K,
            [MN_TYPE_Q6_K] = mn_ref_vec_dot_q6_K,
        },
    .quantize =
        {
            [MN_TYPE_F32] = mn_ref_from_f32_f32,
            [MN_TYPE_F16] = mn_ref_from_f32_f16,
            [MN_TYPE_BF16] = mn_ref_from_f32_bf16,
            [MN_TYPE_Q8_0] = mn_ref_from_f32_q8_0,
            [MN_TYPE_Q8_K] = mn_ref_from_f32_q8_K,
        },
    .to_f32 =
        {
            [MN_TYPE_F32] = mn_ref_to_f32_f32,
            [MN_TYPE_F16] = mn_ref_to_f32_f16,
            [MN_TYPE_BF16] = mn_ref_to_f32_bf16,
            [MN_TYPE_Q8_0] = mn_ref_to_f32_q8_0,
            [MN_TYPE_Q4_0] = mn_ref_to_f32_q4_0,
            [MN_TYPE_Q4_K] = mn_ref_to_f32_q4_K,
            [MN_TYPE_Q5_K] = mn_ref_to_f32_q5_K,
            [MN_TYPE_Q6_K] = mn_ref_to_f32_q6_K,
        },
    .axpy_f32 = mn_ref_axpy_f32,
    .attn_block = {[MN_TYPE_F32] = mn_ref_attn_block_f32, [MN_TYPE_F16] = mn_ref_attn_block_f16},
    .dot_f32 = mn_ref_dot_f32,
    .gemm =
        {
            [MN_TYPE_F32] = mn_ref_gemm_f32,
            [MN_TYPE_F16] = mn_ref_gemm_f16,
            [MN_TYPE_BF16] = mn_ref_gemm_bf16,
            [MN_TYPE_Q8_0] = mn_ref_gemm_q8_0,
            [MN_TYPE_Q4_0] = mn_ref_gemm_q4_0,
            [MN_TYPE_Q4_K] = mn_ref_gemm_q4_K,
            [MN_TYPE_Q5_K] = mn_ref_gemm_q5_K,
            [MN_TYPE_Q6_K] = mn_ref_gemm_q6_K,
        },
};

/* ISAs from worst to best. */
enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_COUNT };
static const char *const isa_names[ISA_COUNT] = {"scalar", "avx2", "avx512"};

static bool isa_usable(int isa) {
    const mn_cpu_features *f = mn_cpu_features_get();
    /* the flags each file is compiled with (CMakeLists.txt), all of them */
    const bool avx2 = f->avx2 && f->fma && f->f16c && f->bmi2;
    switch (isa) {
    case ISA_SCALAR: return true;
    case ISA_AVX2: return avx2;
    case ISA_AVX512:
        return avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni &&
               f->avx512bf16;
    default: return false;
    }
}

static const mn_kernels *isa_table(int isa) {
#if defined(MN_HAVE_X86_KERNELS)
    if (isa == ISA_AVX2) return &mn_kernels_avx2_table;
    if (isa == ISA_AVX512) return &mn_kernels_avx512_table;
#endif
    return isa == ISA_SCALAR ? &scalar_table : NULL;
}

static int isa_best(void) {
    for (int isa = ISA_COUNT - 1; isa > ISA_SCALAR; isa--) {
        if (isa_table(isa) && isa_usable(isa)) return isa;
    }
    return ISA_SCALAR;
}

static int isa_from_name(const char *name) {
    for (int isa = 0; isa < ISA_COUNT; isa++) {
        if (strcmp(name, isa_names[isa]) == 0) return isa;
    }
    return -1;
}

const mn_kernels *mn_kernels_for_isa(const char *isa) {
    if (!isa) return NULL;
    const int i = isa_from_name(isa);
    if (i < 0 || !isa_usable(i)) return NULL;
    return isa_table(i);
}

const mn_kernels *mn_kernels_select(const char *request, char *warn, int warn_size) {
    if (warn && warn_size > 0) warn[0] = '\0';
    const mn_kernels *best = isa_table(isa_best());
    if (!request || !request[0]) return best;
    const int i = isa_from_name(request);
    if (i < 0) {
        if (warn && warn_size > 0) {
            snprintf(warn, (size_t)warn_size, "MINNOW_ISA=%.32s is not one of scalar|avx2|avx512; using %s",
                     request, best->isa);
        }
        return best;
    }
    const mn_kernels *t = mn_kernels_for_isa(request);
    if (!t) {
        if (warn && warn_size > 0) {
            snprintf(warn, (size_t)warn_size, "MINNOW_ISA=%s is not supported by this CPU; using %s",
                     isa_names[i], best->isa);
        }
        return best;
    }
    return t;
}

static const mn_kernels *g_kernels; /* set once under g_kernels_once, then read-only */
static pthread_once_t g_kernels_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void) {
#if defined(MN_FORCE_SCALAR)
    g_kernels = &scalar_table;
#else
    char warn[160];
    g_kernels = mn_kernels_select(getenv("MINNOW_ISA"), warn, (int)sizeof warn);
    if (warn[0]) fprintf(stderr, "minnow: warning: %s\n", warn);
#endif
}

const mn_kernels *mn_kernels_get(void) {
    pthread_once(&g_kernels_once, choose_kernels);
    return g_kernels;
}
