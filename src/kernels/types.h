/*
 * types.h: the one table of tensor types. Ids are the GGUF/ggml on-disk numbers (never reuse one;
 * removed ids stay as comments). Every row gives the block geometry; rows minnow computes with also
 * give the scalar reference functions. A new quant type = one row + one reference implementation +
 * tests, and no new switch statements in callers.
 *
 * Geometry (name, block_size, type_size) is filled for every standard id, so a GGUF reader can
 * validate any file; the function pointers only for types minnow computes with (f32, f16, bf16,
 * q8_0, q4_0, q4_K, q5_K, q6_K; q8_K has only conversions). Activations: f32/f16/bf16 weights take
 * F32 activations (exact, and the weight widening is one instruction); q8_0/q4_0 weights take Q8_0
 * activations and q4_K/q5_K/q6_K take Q8_K (integer dot products). The quantizers reproduce ggml's
 * reference rules (see kernels/ref/ref_quants.c and ref_kquants.c).
 *
 * Block layouts (little-endian, packed, no padding):
 *   Q8_0  (32 weights, 34 B): f16 d; int8 qs[32];                 w = d * qs[i]
 *   Q4_0  (32 weights, 18 B): f16 d; uint8 qs[16];                w[i] = d * ((qs[i] & 15) - 8),
 *                                                                  w[i+16] = d * ((qs[i] >> 4) - 8)
 *   Q4_K / Q5_K / Q6_K / Q8_K (256 weights; 144 / 176 / 210 / 292 B): byte by byte in blocks.h.
 *   F16 / BF16 / F32: plain element arrays.
 */
#ifndef MN_KERNELS_TYPES_H
#define MN_KERNELS_TYPES_H

#include <stdbool.h>
#include <stdint.h>

enum mn_type {
    MN_TYPE_F32 = 0,
    MN_TYPE_F16 = 1,
    MN_TYPE_Q4_0 = 2,
    MN_TYPE_Q4_1 = 3,
    /* 4, 5: removed (Q4_2, Q4_3) */
    MN_TYPE_Q5_0 = 6,
    MN_TYPE_Q5_1 = 7,
    MN_TYPE_Q8_0 = 8,
    MN_TYPE_Q8_1 = 9,
    MN_TYPE_Q2_K = 10,
    MN_TYPE_Q3_K = 11,
    MN_TYPE_Q4_K = 12,
    MN_TYPE_Q5_K = 13,
    MN_TYPE_Q6_K = 14,
    MN_TYPE_Q8_K = 15,
    MN_TYPE_IQ2_XXS = 16,
    MN_TYPE_IQ2_XS = 17,
    MN_TYPE_IQ3_XXS = 18,
    MN_TYPE_IQ1_S = 19,
    MN_TYPE_IQ4_NL = 20,
    MN_TYPE_IQ3_S = 21,
    MN_TYPE_IQ2_S = 22,
    MN_TYPE_IQ4_XS = 23,
    MN_TYPE_I8 = 24,
    MN_TYPE_I16 = 25,
    MN_TYPE_I32 = 26,
    MN_TYPE_I64 = 27,
    MN_TYPE_F64 = 28,
    MN_TYPE_IQ1_M = 29,
    MN_TYPE_BF16 = 30,
    /* 31, 32, 33: removed (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) */
    MN_TYPE_TQ1_0 = 34,
    MN_TYPE_TQ2_0 = 35,
    /* 36, 37, 38: removed (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8) */
    MN_TYPE_MXFP4 = 39,
    MN_TYPE_COUNT = 40
};

/* dst[0..n) = dequantized src. n is a multiple of block_size. */
typedef void (*mn_to_f32_fn)(const void *src, float *dst, int64_t n);
/* dst = quantized src[0..n). n is a multiple of block_size. Reference quantizer. */
typedef void (*mn_from_f32_fn)(const float *src, void *dst, int64_t n);
/* *out = sum_i w[i] * x[i] over n elements; w in this type, x in the row's vec_dot_type. */
typedef void (*mn_vec_dot_fn)(int64_t n, const void *w, const void *x, float *out);

typedef struct mn_type_traits {
    const char *name;        /* ggml's spelling: "f32", "q8_0", "q4_K" (lookups ignore case) */
    int32_t block_size;      /* elements per block (1 for plain types) */
    int32_t type_size;       /* bytes per block */
    bool is_quant;
    mn_to_f32_fn to_f32;     /* NULL when minnow cannot compute with this type */
    mn_from_f32_fn from_f32; /* reference quantizer; NULL when not supported */
    mn_vec_dot_fn vec_dot;   /* reference dot product; NULL when not supported */
    int32_t vec_dot_type;    /* type the activations are converted to for vec_dot */
} mn_type_traits;

/* Row for a type id; NULL when the id is not a known type (removed or out of range). */
const mn_type_traits *mn_type_get(int32_t type);
/* Type id for a name ("q8_0", case-insensitive), or -1. */
int32_t mn_type_from_name(const char *name);
/* Bytes of a row of n elements; 0 when n is negative or not a multiple of the block size, the type
 * is unknown, or the size would overflow uint64. */
uint64_t mn_type_row_size(int32_t type, int64_t n);

/* IEEE half and bfloat16 conversions. Narrowing rounds to nearest even (overflow -> inf,
 * subnormals kept); f16 matches the F16C instructions bit for bit, NaNs included (they come out
 * quiet, sign and top payload bits kept); bf16 NaNs likewise come out quiet. */
float mn_f16_to_f32(uint16_t h);
uint16_t mn_f32_to_f16(float f);
float mn_bf16_to_f32(uint16_t h);
uint16_t mn_f32_to_bf16(float f);

#endif
