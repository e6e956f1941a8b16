/*
 * types.c: the tensor type table and the f16/bf16 scalar conversions.
 *
 * One const row per GGUF/ggml type id, indexed by the id itself, so lookups are an array index
 * and a new type is one row. Every standard id has its block geometry (name, elements per block,
 * bytes per block) even when minnow cannot compute with it yet: the GGUF reader needs the
 * geometry to validate any standard file. Removed ids (4, 5, 31-33, 36-38) are left zeroed and
 * mn_type_get() returns NULL for them. Sizes follow ggml's block structs (ggml-common.h):
 *   q4_0 2+16=18   q4_1 4+16=20   q5_0 2+4+16=22   q5_1 4+4+16=24   q8_0 2+32=34   q8_1 4+32=36
 *   q2_K 16+64+4=84   q3_K 32+64+12+2=110   q4_K 4+12+128=144   q5_K 4+12+32+128=176
 *   q6_K 128+64+16+2=210   q8_K 4+256+32=292   iq2_xxs 2+64=66   iq2_xs 2+64+8=74
 *   iq3_xxs 2+96=98   iq1_s 2+32+16=50   iq4_nl 2+16=18   iq3_s 2+64+8+32+4=110   iq2_s 2+64+8+8=82
 *   iq4_xs 2+2+4+128=136   iq1_m 32+16+8=56   tq1_0 48+4+2=54   tq2_0 64+2=66   mxfp4 1+16=17
 * (K, IQ and TQ types use super-blocks of 256 weights; q*_0/q*_1, iq4_nl and mxfp4 blocks of 32.)
 *
 * The f16 conversions reproduce the x86 F16C instructions bit for bit (vcvtph2ps / vcvtps2ph with
 * round-to-nearest-even), so scalar and SIMD paths agree on every input: subnormals are exact,
 * overflow rounds to infinity, and NaNs keep their sign and top payload bits but come out quiet
 * (a signalling NaN is quietened in both directions). The bf16 narrowing rounds to nearest even,
 * keeps subnormals (no flush to zero), and quietens NaNs the same way ggml does.
 */
#include "kernels/types.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "kernels/ref/ref.h"

/* ---------------------------------------------------------------- the table ------------------ */

#define PLAIN(nm, size) {.name = nm, .block_size = 1, .type_size = size, .is_quant = false}
#define QUANT(nm, blk, size) {.name = nm, .block_size = blk, .type_size = size, .is_quant = true}

static const mn_type_traits type_table[MN_TYPE_COUNT] = {
    [MN_TYPE_F32] = {.name = "f32", .block_size = 1, .type_size = 4, .is_quant = false,
                     .to_f32 = mn_ref_to_f32_f32, .from_f32 = mn_ref_from_f32_f32,
                     .vec_dot = mn_ref_vec_dot_f32, .vec_dot_type = MN_TYPE_F32},
    /* f16 and bf16 weights take f32 activations: no activation rounding, and converting a weight
     * to f32 costs one instruction (vcvtph2ps, or a 16-bit shift), so nothing is gained by
     * narrowing the activations. */
    [MN_TYPE_F16] = {.name = "f16", .block_size = 1, .type_size = 2, .is_quant = false,
                     .to_f32 = mn_ref_to_f32_f16, .from_f32 = mn_ref_from_f32_f16,
                     .vec_dot = mn_ref_vec_dot_f16, .vec_dot_type = MN_TYPE_F32},
    [MN_TYPE_Q4_0] = {.name = "q4_0", .block_size = 32, .type_size = 18, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q4_0, .from_f32 = mn_ref_from_f32_q4_0,
                      .vec_dot = mn_ref_vec_dot_q4_0, .vec_dot_type = MN_TYPE_Q8_0},
    [MN_TYPE_Q4_1] = QUANT("q4_1", 32, 20),
    [MN_TYPE_Q5_0] = QUANT("q5_0", 32, 22),
    [MN_TYPE_Q5_1] = QUANT("q5_1", 32, 24),
    [MN_TYPE_Q8_0] = {.name = "q8_0", .block_size = 32, .type_size = 34, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q8_0, .from_f32 = mn_ref_from_f32_q8_0,
                      .vec_dot = mn_ref_vec_dot_q8_0, .vec_dot_type = MN_TYPE_Q8_0},
    [MN_TYPE_Q8_1] = QUANT("q8_1", 32, 36),
    [MN_TYPE_Q2_K] = QUANT("q2_K", 256, 84),
    [MN_TYPE_Q3_K] = QUANT("q3_K", 256, 110),
    /* K-quants (kernels/ref/ref_kquants.c): integer dot products against Q8_K activations, whose
     * per-16 sums apply the mins / offsets; Q8_K itself is an activation type (no vec_dot). */
    [MN_TYPE_Q4_K] = {.name = "q4_K", .block_size = 256, .type_size = 144, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q4_K, .from_f32 = mn_ref_from_f32_q4_K,
                      .vec_dot = mn_ref_vec_dot_q4_K, .vec_dot_type = MN_TYPE_Q8_K},
    [MN_TYPE_Q5_K] = {.name = "q5_K", .block_size = 256, .type_size = 176, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q5_K, .from_f32 = mn_ref_from_f32_q5_K,
                      .vec_dot = mn_ref_vec_dot_q5_K, .vec_dot_type = MN_TYPE_Q8_K},
    [MN_TYPE_Q6_K] = {.name = "q6_K", .block_size = 256, .type_size = 210, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q6_K, .from_f32 = mn_ref_from_f32_q6_K,
                      .vec_dot = mn_ref_vec_dot_q6_K, .vec_dot_type = MN_TYPE_Q8_K},
    [MN_TYPE_Q8_K] = {.name = "q8_K", .block_size = 256, .type_size = 292, .is_quant = true,
                      .to_f32 = mn_ref_to_f32_q8_K, .from_f32 = mn_ref_from_f32_q8_K},
    [MN_TYPE_IQ2_XXS] = QUANT("iq2_xxs", 256, 66),
    [MN_TYPE_IQ2_XS] = QUANT("iq2_xs", 256, 74),
    [MN_TYPE_IQ3_XXS] = QUANT("iq3_xxs", 256, 98),
    [MN_TYPE_IQ1_S] = QUANT("iq1_s", 256, 50),
    [MN_TYPE_IQ4_NL] = QUANT("iq4_nl", 32, 18),
    [MN_TYPE_IQ3_S] = QUANT("iq3_s", 256, 110),
    [MN_TYPE_IQ2_S] = QUANT("iq2_s", 256, 82),
    [MN_TYPE_IQ4_XS] = QUANT("iq4_xs", 256, 136),
    [MN_TYPE_I8] = PLAIN("i8", 1),
    [MN_TYPE_I16] = PLAIN("i16", 2),
    [MN_TYPE_I32] = PLAIN("i32", 4),
    [MN_TYPE_I64] = PLAIN("i64", 8),
    [MN_TYPE_F64] = PLAIN("f64", 8),
    [MN_TYPE_IQ1_M] = QUANT("iq1_m", 256, 56),
    [MN_TYPE_BF16] = {.name = "bf16", .block_size = 1, .type_size = 2, .is_quant = false,
                      .to_f32 = mn_ref_to_f32_bf16, .from_f32 = mn_ref_from_f32_bf16,
                      .vec_dot = mn_ref_vec_dot_bf16, .vec_dot_type = MN_TYPE_F32},
    [MN_TYPE_TQ1_0] = QUANT("tq1_0", 256, 54),
    [MN_TYPE_TQ2_0] = QUANT("tq2_0", 256, 66),
    [MN_TYPE_MXFP4] = QUANT("mxfp4", 32, 17),
};

#undef PLAIN
#undef QUANT

const mn_type_traits *mn_type_get(int32_t type) {
    if (type < 0 || type >= MN_TYPE_COUNT) return NULL;
    const mn_type_traits *t = &type_table[type];
    return t->name ? t : NULL; /* removed ids are zeroed rows */
}

int32_t mn_type_from_name(const char *name) {
    if (!name) return -1;
    for (int32_t i = 0; i < MN_TYPE_COUNT; i++) {
        if (type_table[i].name && strcasecmp(type_table[i].name, name) == 0) return i;
    }
    return -1;
}

uint64_t mn_type_row_size(int32_t type, int64_t n) {
    const mn_type_traits *t = mn_type_get(type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    /* blocks * type_size can overflow for absurd n (plain types, n near 2^63): report 0 */
    uint64_t blocks = (uint64_t)(n / t->block_size), bytes;
    if (__builtin_mul_overflow(blocks, (uint64_t)t->type_size, &bytes)) return 0;
    return bytes;
}

/* ---------------------------------------------------------------- f16 / bf16 ---------------- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float mn_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) { /* inf, or NaN: payload moves up 13 bits and the quiet bit is set */
        return f32_from_bits(sign | 0x7f800000u | (man ? 0x00400000u : 0) | (man << 13));
    }
    if (exp == 0) { /* zero or subnormal: man * 2^-24, exact in f32 */
        const float mag = (float)man * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(mag));
    }
    return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13)); /* rebias 15 -> 127 */
}

uint16_t mn_f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* quiet NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 (incl. inf): infinity */
    if (a < 0x38800000u) {
        /* below 2^-14: an f16 subnormal q * 2^-24. With the implicit bit, a = m * 2^(e - 150),
         * so q = m >> (126 - e) rounded to nearest even; q may round up to 0x400, which is
         * exactly the encoding of the smallest normal. */
        const uint32_t e = a >> 23;
        if (e < 102) return sign; /* < 2^-25: rounds to zero (needs shift > 24) */
        const uint32_t m = (a & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest
     * even; a carry out of the mantissa correctly bumps the exponent. */
    const uint32_t r = a - 0x38000000u;
    uint32_t q = r >> 13;
    const uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float mn_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t mn_f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    /* add 0x7fff plus the lowest kept bit: rounds to nearest, ties to even; an overflow carries
     * into the exponent and yields infinity as it should */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
