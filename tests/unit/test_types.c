/*
 * test_types.c: the type table and the scalar reference conversions, checked against independent
 * oracles rather than against themselves:
 *   - f16/bf16: every one of the 65536 bit patterns round-trips (NaNs come back quiet); narrowing
 *     is checked against a brute-force "nearest representable, ties to even" search in double
 *     precision, and (when the CPU has F16C) against the vcvtph2ps/vcvtps2ph instructions.
 *   - Q8_0/Q4_0: hand-computed blocks pin the byte layout and ggml's rounding rules; random data
 *     checks each element's error against the bound the quantizer guarantees, and the RMS error
 *     against a named budget.
 *   - reference dot products equal a double-precision dot of the dequantized operands up to
 *     float accumulation error.
 *   - table geometry (every standard id, bits per weight), names, row sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/blocks.h"
#include "kernels/types.h"

/* ---------------------------------------------------------------- error budgets -------------- */

/* RMS quantization error / RMS of the data, for N(0,1) rows. Expected values: Q8_0 ~ d/sqrt(12)
 * with d = amax/127 (amax ~ 2.0 over 32 gaussians) ~ 0.0046; Q4_0 ~ d/sqrt(12) with d = amax/8,
 * ~ 0.075, plus clipping of large values opposite in sign to the block's peak. Measured on this
 * (fixed-seed) data: Q8_0 0.00536, Q4_0 0.0860 (printed by the tests). A quantizer off by one
 * rounding rule (e.g. truncating instead of rounding) roughly doubles these. */
#define MAX_Q8_0_REL_RMS 0.0065
#define MAX_Q4_0_REL_RMS 0.095
/* f16 keeps 11 significant bits, bf16 8: half an ulp relative, for normal numbers. */
#define MAX_F16_REL_ERR (1.0 / 2048.0)
#define MAX_BF16_REL_ERR (1.0 / 256.0)
/* Reference dot products accumulate in float: error vs double <= n * 2^-24 * sum|w*x| is the
 * textbook bound (gamma_n); we use it with a factor 2 of slack for the product roundings. */
#define DOT_REL_BUDGET(n) (2.0 * (double)(n) * (double)FLT_EPSILON / 2.0)

/* ---------------------------------------------------------------- helpers -------------------- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

static float rng_gauss(uint64_t *s) {
    double u1 = rng_unit(s), u2 = rng_unit(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float ffrom(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

/* ---------------------------------------------------------------- f16 ------------------------ */

static void test_f16_known_values(void **state) {
    (void)state;
    assert_true(mn_f16_to_f32(0x3c00) == 1.0f);
    assert_true(mn_f16_to_f32(0xc000) == -2.0f);
    assert_true(mn_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(mn_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(mn_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(mn_f16_to_f32(0x03ff) == 1023.0f * 0x1p-24f);
    assert_true(mn_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(isinf(mn_f16_to_f32(0x7c00)) && mn_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(mn_f16_to_f32(0xfc00)) && mn_f16_to_f32(0xfc00) < 0);
    assert_int_equal(fbits(mn_f16_to_f32(0x8000)), 0x80000000u);
    /* NaN: payload moves up 13 bits, quiet bit set (F16C behaviour) */
    assert_int_equal(fbits(mn_f16_to_f32(0x7c01)), 0x7fc02000u);
    assert_int_equal(fbits(mn_f16_to_f32(0xfe00)), 0xffc00000u);

    assert_int_equal(mn_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(mn_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(mn_f32_to_f16(0.1f), 0x2e66);
    assert_int_equal(mn_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(mn_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(mn_f32_to_f16(65520.0f), 0x7c00); /* tie between 65504 (odd) and 2^16: up */
    assert_int_equal(mn_f32_to_f16(1e30f), 0x7c00);
    assert_int_equal(mn_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(mn_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);       /* tie -> even */
    assert_int_equal(mn_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);   /* tie -> even (up) */
    assert_int_equal(mn_f32_to_f16(0x1p-25f), 0x0000);              /* tie between 0 and 2^-24 */
    assert_int_equal(mn_f32_to_f16(nextafterf(0x1p-25f, 1.0f)), 0x0001);
    assert_int_equal(mn_f32_to_f16(3 * 0x1p-25f), 0x0002);          /* 1.5 ulp: tie -> even 2 */
    assert_int_equal(mn_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);  /* rounds up into normals */
    assert_int_equal(mn_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(mn_f32_to_f16(ffrom(0x00000001u)), 0x0000);    /* f32 subnormal */
    assert_int_equal(mn_f32_to_f16(ffrom(0x7f800001u)), 0x7e00);    /* sNaN, payload lost: quiet */
    assert_int_equal(mn_f32_to_f16(ffrom(0xff812345u)), 0xfe09);    /* payload top bits kept */
}

static void test_f16_all_patterns_round_trip(void **state) {
    (void)state;
    int n_nan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = mn_f16_to_f32((uint16_t)h);
        const uint16_t back = mn_f32_to_f16(f);
        if (f16_is_nan((uint16_t)h)) {
            n_nan++;
            assert_true(isnan(f));
            assert_int_equal(back, h | 0x200); /* same sign and payload, now quiet */
        } else {
            if (back != h) fail_msg("f16 %04x -> %a -> %04x", h, (double)f, back);
        }
    }
    assert_int_equal(n_nan, 2 * 1023);
}

/* Nearest-even oracle: decode the candidate and its two neighbours in double and check that the
 * candidate is the closest, with ties going to the even encoding. */
static void check_f16_nearest(float f) {
    const uint16_t h = mn_f32_to_f16(f);
    if (isnan(f)) {
        assert_true(f16_is_nan(h));
        return;
    }
    const double x = fabs((double)f);
    const uint16_t mag = h & 0x7fff;
    if ((h & 0x8000) != (signbit(f) ? 0x8000 : 0)) fail_msg("sign of %a", (double)f);
    if (x >= 65520.0) {
        if (mag != 0x7c00) fail_msg("%a must overflow to inf, got %04x", x, h);
        return;
    }
    if (mag >= 0x7c00) fail_msg("%a gave inf/nan %04x", x, h);
    const double e0 = fabs((double)mn_f16_to_f32(mag) - x);
    for (int dlt = -1; dlt <= 1; dlt += 2) {
        const int nb = (int)mag + dlt;
        if (nb < 0 || nb >= 0x7c00) continue;
        const double e1 = fabs((double)mn_f16_to_f32((uint16_t)nb) - x);
        if (e0 > e1 || (e0 == e1 && (mag & 1))) {
            fail_msg("%a -> %04x (err %g) but %04x has err %g", x, h, e0, nb, e1);
        }
    }
}

static void test_f16_narrowing_is_nearest_even(void **state) {
    (void)state;
    uint64_t s = 1;
    /* every f16 value, each midpoint to its successor, and one ulp either side of that */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const double v = mn_f16_to_f32((uint16_t)h);
        const double next = h + 1 < 0x7c00 ? (double)mn_f16_to_f32((uint16_t)(h + 1)) : 65536.0;
        const float mid = (float)((v + next) / 2); /* exact in f32 */
        check_f16_nearest((float)v);
        check_f16_nearest(mid);
        check_f16_nearest(nextafterf(mid, 0.0f));
        check_f16_nearest(nextafterf(mid, INFINITY));
        check_f16_nearest(-mid);
    }
    for (int i = 0; i < 1000000; i++) check_f16_nearest(ffrom((uint32_t)rng_next(&s)));
}

/* Hardware cross-check, only where the CPU has F16C: the scalar code claims to reproduce it. */
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

static void test_f16_matches_f16c(void **state) {
    (void)state;
    if (!mn_cpu_features_get()->f16c) {
        printf("# skipped: CPU has no F16C\n");
        skip();
        return;
    }
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t a = fbits(mn_f16_to_f32((uint16_t)h)), b = fbits(hw_f16_to_f32((uint16_t)h));
        if (a != b) fail_msg("widen %04x: %08x vs hw %08x", h, a, b);
    }
    uint64_t s = 7;
    for (int i = 0; i < 2000000; i++) {
        /* random bits, biased half the time towards the f16 range to hit rounding cases */
        uint32_t u = (uint32_t)rng_next(&s);
        if (i & 1) u = (u & 0x80ffffffu) | ((uint32_t)(96 + (u >> 24) % 50) << 23);
        const float f = ffrom(u);
        const uint16_t a = mn_f32_to_f16(f), b = hw_f32_to_f16(f);
        if (a != b) fail_msg("narrow %08x: %04x vs hw %04x", u, a, b);
    }
}

/* ---------------------------------------------------------------- bf16 ----------------------- */

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(mn_f32_to_bf16(1.0f), 0x3f80);
    assert_true(mn_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(mn_bf16_to_f32(0xc0a0) == -5.0f);
    assert_int_equal(mn_f32_to_bf16(ffrom(0x3f808000u)), 0x3f80); /* tie -> even */
    assert_int_equal(mn_f32_to_bf16(ffrom(0x3f818000u)), 0x3f82); /* tie -> even (up) */
    assert_int_equal(mn_f32_to_bf16(ffrom(0x3f808001u)), 0x3f81);
    assert_int_equal(mn_f32_to_bf16(FLT_MAX), 0x7f80);             /* rounds to inf */
    assert_int_equal(mn_f32_to_bf16(ffrom(0x00018000u)), 0x0002);  /* subnormals kept */
    assert_int_equal(mn_f32_to_bf16(ffrom(0x00008000u)), 0x0000);
    assert_int_equal(mn_f32_to_bf16(ffrom(0x80010000u)), 0x8001);
    assert_int_equal(mn_f32_to_bf16(ffrom(0x7f800001u)), 0x7fc0); /* NaN: quiet, sign kept */
    assert_int_equal(mn_f32_to_bf16(ffrom(0xff812345u)), 0xffc1);
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = mn_bf16_to_f32((uint16_t)h);
        assert_int_equal(fbits(f), h << 16);
        const int nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        assert_int_equal(mn_f32_to_bf16(f), nan ? (h | 0x40) : h);
    }
    /* nearest-even against a double oracle on random finite values */
    uint64_t s = 3;
    for (int i = 0; i < 1000000; i++) {
        const float f = ffrom((uint32_t)rng_next(&s));
        if (!isfinite(f) || fabsf(f) >= 0x1.fep127f) continue;
        const uint16_t h = mn_f32_to_bf16(f);
        const double e0 = fabs((double)mn_bf16_to_f32(h) - f);
        const double e1 = fabs((double)mn_bf16_to_f32((uint16_t)(h + 1)) - f);
        const double e2 = fabs((double)mn_bf16_to_f32((uint16_t)(h - 1)) - f);
        if (e0 > e1 || e0 > e2 || ((e0 == e1 || e0 == e2) && (h & 1))) fail_msg("bf16 of %a", (double)f);
    }
}

/* ---------------------------------------------------------------- table ---------------------- */

static void test_table_geometry(void **state) {
    (void)state;
    static const struct {
        int32_t id;
        const char *name;
        int32_t block, size;
        double bpw; /* bits per weight, from the formats' documentation */
    } expect[] = {
        {0, "f32", 1, 4, 32},           {1, "f16", 1, 2, 16},          {2, "q4_0", 32, 18, 4.5},
        {3, "q4_1", 32, 20, 5},         {6, "q5_0", 32, 22, 5.5},      {7, "q5_1", 32, 24, 6},
        {8, "q8_0", 32, 34, 8.5},       {9, "q8_1", 32, 36, 9},        {10, "q2_K", 256, 84, 2.625},
        {11, "q3_K", 256, 110, 3.4375}, {12, "q4_K", 256, 144, 4.5},   {13, "q5_K", 256, 176, 5.5},
        {14, "q6_K", 256, 210, 6.5625}, {15, "q8_K", 256, 292, 9.125}, {16, "iq2_xxs", 256, 66, 2.0625},
        {17, "iq2_xs", 256, 74, 2.3125}, {18, "iq3_xxs", 256, 98, 3.0625}, {19, "iq1_s", 256, 50, 1.5625},
        {20, "iq4_nl", 32, 18, 4.5},    {21, "iq3_s", 256, 110, 3.4375}, {22, "iq2_s", 256, 82, 2.5625},
        {23, "iq4_xs", 256, 136, 4.25}, {24, "i8", 1, 1, 8},           {25, "i16", 1, 2, 16},
        {26, "i32", 1, 4, 32},          {27, "i64", 1, 8, 64},         {28, "f64", 1, 8, 64},
        {29, "iq1_m", 256, 56, 1.75},   {30, "bf16", 1, 2, 16},        {34, "tq1_0", 256, 54, 1.6875},
        {35, "tq2_0", 256, 66, 2.0625}, {39, "mxfp4", 32, 17, 4.25},
    };
    const size_t n_expect = sizeof expect / sizeof expect[0];
    int n_known = 0;
    for (int32_t id = -3; id < MN_TYPE_COUNT + 3; id++) {
        if (mn_type_get(id)) n_known++;
    }
    assert_int_equal(n_known, (int)n_expect);
    for (size_t i = 0; i < n_expect; i++) {
        const mn_type_traits *t = mn_type_get(expect[i].id);
        assert_non_null(t);
        assert_string_equal(t->name, expect[i].name);
        assert_int_equal(t->block_size, expect[i].block);
        assert_int_equal(t->type_size, expect[i].size);
        assert_true(fabs(8.0 * t->type_size / t->block_size - expect[i].bpw) < 1e-9);
        assert_int_equal(t->is_quant, expect[i].block > 1);
        assert_int_equal(mn_type_from_name(expect[i].name), expect[i].id);
    }
    const int32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38, -1, MN_TYPE_COUNT, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) assert_null(mn_type_get(removed[i]));

    /* computable types have the full set of reference functions and a computable vec_dot_type */
    const int32_t computable[] = {MN_TYPE_F32,  MN_TYPE_F16,  MN_TYPE_BF16, MN_TYPE_Q8_0,
                                  MN_TYPE_Q4_0, MN_TYPE_Q4_K, MN_TYPE_Q5_K, MN_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof computable / sizeof computable[0]; i++) {
        const mn_type_traits *t = mn_type_get(computable[i]);
        assert_non_null(t->to_f32);
        assert_non_null(t->from_f32);
        assert_non_null(t->vec_dot);
        assert_non_null(mn_type_get(t->vec_dot_type)->from_f32);
    }
    assert_int_equal(mn_type_get(MN_TYPE_F32)->vec_dot_type, MN_TYPE_F32);
    assert_int_equal(mn_type_get(MN_TYPE_F16)->vec_dot_type, MN_TYPE_F32);
    assert_int_equal(mn_type_get(MN_TYPE_BF16)->vec_dot_type, MN_TYPE_F32);
    assert_int_equal(mn_type_get(MN_TYPE_Q8_0)->vec_dot_type, MN_TYPE_Q8_0);
    assert_int_equal(mn_type_get(MN_TYPE_Q4_0)->vec_dot_type, MN_TYPE_Q8_0);
    assert_int_equal(mn_type_get(MN_TYPE_Q4_K)->vec_dot_type, MN_TYPE_Q8_K);
    assert_null(mn_type_get(MN_TYPE_Q8_K)->vec_dot); /* an activation type only */
    assert_null(mn_type_get(MN_TYPE_Q2_K)->vec_dot); /* not computable yet: geometry only */
}

static void test_names_and_row_size(void **state) {
    (void)state;
    assert_int_equal(mn_type_from_name("Q4_K"), MN_TYPE_Q4_K);
    assert_int_equal(mn_type_from_name("Q8_0"), MN_TYPE_Q8_0);
    assert_int_equal(mn_type_from_name("BF16"), MN_TYPE_BF16);
    assert_int_equal(mn_type_from_name("q4_2"), -1);
    assert_int_equal(mn_type_from_name(""), -1);
    assert_int_equal(mn_type_from_name("q8_0 "), -1);
    assert_int_equal(mn_type_from_name(NULL), -1);

    assert_int_equal(mn_type_row_size(MN_TYPE_Q4_0, 4096), 128 * 18);
    assert_int_equal(mn_type_row_size(MN_TYPE_Q8_0, 4096), 128 * 34);
    assert_int_equal(mn_type_row_size(MN_TYPE_Q4_K, 256), 144);
    assert_int_equal(mn_type_row_size(MN_TYPE_Q6_K, 4096), 16 * 210);
    assert_int_equal(mn_type_row_size(MN_TYPE_F32, 7), 28);
    assert_int_equal(mn_type_row_size(MN_TYPE_F16, 0), 0);
    assert_int_equal(mn_type_row_size(MN_TYPE_Q4_0, 33), 0);  /* not a whole number of blocks */
    assert_int_equal(mn_type_row_size(MN_TYPE_Q4_K, 128), 0);
    assert_int_equal(mn_type_row_size(MN_TYPE_F32, -4), 0);
    assert_int_equal(mn_type_row_size(4, 32), 0);             /* removed id */
    assert_int_equal(mn_type_row_size(-1, 32), 0);
    assert_int_equal(mn_type_row_size(MN_TYPE_F64, INT64_MAX), 0); /* would overflow */
    assert_int_equal(mn_type_row_size(MN_TYPE_I8, INT64_MAX), (uint64_t)INT64_MAX);
}

/* ---------------------------------------------------------------- block layouts -------------- */

static void test_q8_0_hand_example(void **state) {
    (void)state;
    /* amax = 127 -> d = 1 exactly (f16 0x3c00), id = 1: q = roundf(x), halves away from zero */
    float x[64] = {127.0f, -127.0f, 0.5f, -0.5f, 1.5f, -2.5f, 2.5f, 3.49f, -0.49f, 126.6f, 0.0f, -0.0f};
    for (int i = 12; i < 32; i++) x[i] = (float)(i - 20);
    /* second block: all zeros -> d = 0, id = 0, q = 0 (x[32..63] stay 0) */
    uint8_t got[68];
    memset(got, 0xaa, sizeof got);
    mn_type_get(MN_TYPE_Q8_0)->from_f32(x, got, 64);
    const uint8_t want_head[14] = {0x00, 0x3c, 127, 0x81, 1, 0xff, 2, 0xfd, 3, 3, 0x00, 127, 0, 0};
    assert_memory_equal(got, want_head, sizeof want_head);
    for (int i = 12; i < 32; i++) assert_int_equal((int8_t)got[2 + i], i - 20);
    for (int i = 34; i < 68; i++) assert_int_equal(got[i], 0);

    /* amax = 2: d = 2/127 -> f16(0.015748...) = 0x2408 (0.0157470703125); q = round(x * 127/2) */
    float y[32] = {2.0f, -1.0f, 0.5f, 0.01f};
    mn_type_get(MN_TYPE_Q8_0)->from_f32(y, got, 32);
    const uint8_t want2[6] = {0x08, 0x24, 127, (uint8_t)-64, 32, 1};
    assert_memory_equal(got, want2, sizeof want2);
    float back[32];
    mn_type_get(MN_TYPE_Q8_0)->to_f32(got, back, 32);
    assert_true(back[0] == 127.0f * 0x1.02p-6f);
    assert_true(back[1] == -64.0f * 0x1.02p-6f);
}

static void test_q4_0_hand_example(void **state) {
    (void)state;
    /* Block 1: max |x| is -8 -> d = -8 / -8 = 1 (0x3c00), id = 1, q = min(15, (int)(x + 8.5)).
     * Weights j and j+16 share byte j (j low nibble, j+16 high nibble). */
    float x[64] = {0};
    x[0] = -8.0f;  x[16] = 7.0f;  /* q 0, 15       -> byte 0xf0 */
    x[1] = -0.5f;  x[17] = 7.4f;  /* 8.0 -> 8, 15.9 -> 15 -> 0xf8 */
    x[2] = -0.6f;  x[18] = 0.49f; /* 7.9 -> 7, 8.99 -> 8  -> 0x87 */
    x[3] = 3.0f;   x[19] = -7.6f; /* 11, 0.9 -> 0          -> 0x0b */
    /* the rest are 0 -> q 8 -> byte 0x88 */
    /* Block 2: positive peak 8 comes first -> d = 8 / -8 = -1 (0xbc00), id = -1; the equal-magnitude
     * -8 later does not replace it, and maps to 8 + 8.5 = 16.5 -> 16 -> capped at 15, i.e. the
     * weight -1 * (15 - 8) = -7: ggml's asymmetric clip. */
    x[32] = 8.0f;  x[48] = -8.0f; /* 0.5 -> 0, 15 -> 0xf0 */
    x[33] = 1.0f;  x[49] = -2.2f; /* 7.5 -> 7, 10.7 -> 10  -> 0xa7 */
    uint8_t got[36];
    mn_type_get(MN_TYPE_Q4_0)->from_f32(x, got, 64);
    uint8_t want[36];
    memset(want, 0x88, sizeof want);
    want[0] = 0x00; want[1] = 0x3c;
    want[2] = 0xf0; want[3] = 0xf8; want[4] = 0x87; want[5] = 0x0b;
    want[18] = 0x00; want[19] = 0xbc;
    want[20] = 0xf0; want[21] = 0xa7;
    assert_memory_equal(got, want, sizeof want);

    float back[64];
    mn_type_get(MN_TYPE_Q4_0)->to_f32(got, back, 64);
    assert_true(back[0] == -8.0f && back[16] == 7.0f && back[17] == 7.0f && back[2] == -1.0f);
    assert_true(back[32] == 8.0f && back[48] == -7.0f && back[33] == 1.0f && back[49] == -2.0f);
}

/* ---------------------------------------------------------------- error bounds --------------- */

enum { N_ROWS = 64, ROW = 4096 };

static void fill_gauss(float *x, int64_t n, uint64_t *s) {
    for (int64_t i = 0; i < n; i++) x[i] = rng_gauss(s);
}

static void test_q8_0_error_bound(void **state) {
    (void)state;
    uint64_t s = 11;
    float *x = malloc(ROW * sizeof *x), *y = malloc(ROW * sizeof *y);
    mn_block_q8_0 *q = malloc(ROW / 32 * sizeof *q);
    double se = 0, sx = 0;
    for (int r = 0; r < N_ROWS; r++) {
        fill_gauss(x, ROW, &s);
        if (r % 8 == 1) x[5] *= 1000.0f; /* blocks with an outlier */
        if (r % 8 == 2) for (int i = 0; i < ROW; i++) x[i] *= 1e-3f;
        mn_type_get(MN_TYPE_Q8_0)->from_f32(x, q, ROW);
        mn_type_get(MN_TYPE_Q8_0)->to_f32(q, y, ROW);
        for (int b = 0; b < ROW / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            const double d = amax / 127.0, dq = mn_f16_to_f32(q[b].d);
            /* |x - D q| <= |x - d q| + |d - D| |q| <= d/2 + 127 |d - D|, plus float slack */
            const double bound = d / 2 + 127 * fabs(d - dq) + 1e-6 * amax;
            for (int j = 0; j < 32; j++) {
                const double e = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
                if (e > bound) fail_msg("row %d block %d elem %d: err %g > %g", r, b, j, e, bound);
            }
        }
        if (r % 8 != 2 && r % 8 != 1) {
            for (int i = 0; i < ROW; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                sx += (double)x[i] * x[i];
            }
        }
    }
    const double rel = sqrt(se / sx);
    printf("# q8_0 relative rms error %.5f (budget %.4f)\n", rel, MAX_Q8_0_REL_RMS);
    assert_true(rel < MAX_Q8_0_REL_RMS);
    free(x);
    free(y);
    free(q);
}

static void test_q4_0_error_bound(void **state) {
    (void)state;
    uint64_t s = 12;
    float *x = malloc(ROW * sizeof *x), *y = malloc(ROW * sizeof *y);
    mn_block_q4_0 *q = malloc(ROW / 32 * sizeof *q);
    double se = 0, sx = 0;
    for (int r = 0; r < N_ROWS; r++) {
        fill_gauss(x, ROW, &s);
        if (r % 8 == 1) x[5] *= 1000.0f;
        mn_type_get(MN_TYPE_Q4_0)->from_f32(x, q, ROW);
        mn_type_get(MN_TYPE_Q4_0)->to_f32(q, y, ROW);
        for (int b = 0; b < ROW / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            const double d = amax / 8.0, dq = fabs((double)mn_f16_to_f32(q[b].d));
            /* ordinary elements: d/2; the one clipped side (values beyond 7.5 d opposite to the
             * peak) up to d; plus 8 |d - D| from the f16 scale */
            const double bound = d + 8 * fabs(d - dq) + 1e-6 * amax;
            int n_over_half = 0;
            for (int j = 0; j < 32; j++) {
                const double e = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
                if (e > bound) fail_msg("row %d block %d elem %d: err %g > %g", r, b, j, e, bound);
                if (e > d / 2 + 8 * fabs(d - dq) + 1e-6 * amax) {
                    n_over_half++;
                    /* only elements of the opposite sign to the peak, above 7.5 d, may clip */
                    assert_true(fabs(x[b * 32 + j]) > 7.5 * d * (1 - 1e-3));
                }
            }
            (void)n_over_half;
        }
        if (r % 8 != 1) {
            for (int i = 0; i < ROW; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                sx += (double)x[i] * x[i];
            }
        }
    }
    const double rel = sqrt(se / sx);
    printf("# q4_0 relative rms error %.5f (budget %.4f)\n", rel, MAX_Q4_0_REL_RMS);
    assert_true(rel < MAX_Q4_0_REL_RMS);
    free(x);
    free(y);
    free(q);
}

static void test_f16_bf16_error_bound(void **state) {
    (void)state;
    uint64_t s = 13;
    float x[ROW], y[ROW];
    uint16_t h[ROW];
    fill_gauss(x, ROW, &s);
    mn_type_get(MN_TYPE_F16)->from_f32(x, h, ROW);
    mn_type_get(MN_TYPE_F16)->to_f32(h, y, ROW);
    for (int i = 0; i < ROW; i++) {
        if (fabsf(x[i]) < 0x1p-14f) continue; /* subnormal range: absolute error 2^-25 */
        assert_true(fabs((double)y[i] - x[i]) <= MAX_F16_REL_ERR * fabs(x[i]));
    }
    mn_type_get(MN_TYPE_BF16)->from_f32(x, h, ROW);
    mn_type_get(MN_TYPE_BF16)->to_f32(h, y, ROW);
    for (int i = 0; i < ROW; i++) assert_true(fabs((double)y[i] - x[i]) <= MAX_BF16_REL_ERR * fabs(x[i]));
}

/* ---------------------------------------------------------------- reference dots ------------- */

/* Each reference vec_dot against a double dot product of the dequantized operands. */
static void test_reference_dots(void **state) {
    (void)state;
    uint64_t s = 14;
    const int32_t types[] = {MN_TYPE_F32, MN_TYPE_F16, MN_TYPE_BF16, MN_TYPE_Q8_0, MN_TYPE_Q4_0};
    const int64_t sizes[] = {32, 64, 96, 256, 4096, 4128};
    float *w = malloc(4128 * sizeof *w), *x = malloc(4128 * sizeof *x);
    float *wd = malloc(4128 * sizeof *wd), *xd = malloc(4128 * sizeof *xd);
    uint8_t *wq = malloc(4128 * 4), *xq = malloc(4128 * 4);
    for (size_t it = 0; it < 5; it++) {
        const mn_type_traits *t = mn_type_get(types[it]);
        const mn_type_traits *tx = mn_type_get(t->vec_dot_type);
        for (size_t is = 0; is < 6; is++) {
            const int64_t n = sizes[is];
            fill_gauss(w, n, &s);
            fill_gauss(x, n, &s);
            t->from_f32(w, wq, n);
            tx->from_f32(x, xq, n);
            t->to_f32(wq, wd, n);
            tx->to_f32(xq, xd, n);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)wd[i] * xd[i];
                mag += fabs((double)wd[i] * xd[i]);
            }
            float got;
            t->vec_dot(n, wq, xq, &got);
            const double err = fabs(got - ref);
            if (err > DOT_REL_BUDGET(n) * mag) {
                fail_msg("%s n=%lld: ref %g double %g err %g > %g", t->name, (long long)n, got, ref, err,
                         DOT_REL_BUDGET(n) * mag);
            }
        }
    }
    free(w);
    free(x);
    free(wd);
    free(xd);
    free(wq);
    free(xq);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_all_patterns_round_trip),
        cmocka_unit_test(test_f16_narrowing_is_nearest_even),
        cmocka_unit_test(test_f16_matches_f16c),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_table_geometry),
        cmocka_unit_test(test_names_and_row_size),
        cmocka_unit_test(test_q8_0_hand_example),
        cmocka_unit_test(test_q4_0_hand_example),
        cmocka_unit_test(test_q8_0_error_bound),
        cmocka_unit_test(test_q4_0_error_bound),
        cmocka_unit_test(test_f16_bf16_error_bound),
        cmocka_unit_test(test_reference_dots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
