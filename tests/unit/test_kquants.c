/*
 * test_kquants.c: the K-quant types (Q4_K, Q5_K, Q6_K weights; Q8_K activations), reference and
 * every SIMD table this CPU supports, against oracles that do not reuse the code under test:
 *   - layout: hand-built blocks whose scale bytes and quants are set byte by byte, with the
 *     expected 6-bit scales/mins derived by hand in the comments; every element of the
 *     dequantized block is checked, and a few by literal value;
 *   - quantizers: RMS and max-abs error budgets on Gaussian data (the measured values are
 *     printed), the K-quants against Q4_0 at the same 4.5 bits per weight, hand examples of the
 *     Q8_K rule (sign of d, ties to even, bsums), and defined output for zeros / constants /
 *     non-finite input;
 *   - dot products: an exact test (unit scales, integer results below 2^24: every table must give
 *     the exact integer), extreme codes (int16 saturation would show), and random rows through the
 *     real quantizers within a stated rounding budget of the double-precision sum of block terms,
 *     and of a double dot of the dequantized operands;
 *   - SIMD dequantizers and the Q8_K quantizer bit-identical to the reference, guard bytes after
 *     the output untouched; rows of several super-blocks at odd addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- error budgets -------------- */

#define U32 (0x1p-24)
/* A K-quant dot of nb super-blocks: each super-block term rounds the scale product, possibly the
 * int -> float conversion of a partial sum (>= 2^24), the product / FMA and a subtraction; the
 * accumulation adds <= nb terms per lane, then <= 5 levels of horizontal sum. So
 * |got - exact| <= (nb + 10) * 2u * M, M = sum of |every product term| (see kdot_exact()). A
 * swapped, missing or mis-scaled sub-block costs ~1/16 of M or more, far above this. */
#define KDOT_BUDGET(nb) (((double)(nb) + 10.0) * 2.0 * U32)
/* The dequantized weight fl(fl(d sc) q - fl(dmin m)) is within 3u (|d sc q| + |dmin m|) of the
 * exact one, so a double dot of dequantized values is within 3u M of the exact dot. */
#define DEQ_BUDGET (3.0 * U32)

/* Quantization error on N(0,1) rows: RMS(x - deq(q(x))) / RMS(x). Measured on this fixed-seed
 * data (printed by the test): Q4_K 0.0715, Q5_K 0.0361, Q6_K 0.0177, Q8_K 0.0069 (= amax/127/sqrt(12)
 * with amax ~ 3 over 256 values), and Q4_0 0.0859 (the legacy type at the same 4.5 bits/weight).
 * The data and the algorithms are deterministic, so the budgets are tight (~4% headroom): Q4_K
 * without its 21-step scale/min refinement (min/max grid only) measures 0.0785 and fails. */
#define MAX_Q4_K_REL_RMS 0.074
#define MAX_Q5_K_REL_RMS 0.0375
#define MAX_Q6_K_REL_RMS 0.0184
#define MAX_Q8_K_REL_RMS 0.0072
/* Max |x - deq| relative to the super-block's max |x| (measured: Q4_K 0.080, Q5_K 0.047,
 * Q6_K 0.016). The K-quant searches may clip a value when that lowers the weighted error, so this
 * is an empirical bound with ~25% headroom rather than the half-step of a plain rounding. */
#define MAX_Q4_K_REL_ABS 0.10
#define MAX_Q5_K_REL_ABS 0.06
#define MAX_Q6_K_REL_ABS 0.021

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

static int rng_int(uint64_t *s, int lo, int hi) { return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1)); }

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

static const int32_t wtypes[3] = {MN_TYPE_Q4_K, MN_TYPE_Q5_K, MN_TYPE_Q6_K};
static const char *const isas[3] = {"scalar", "avx2", "avx512"};

/* The table for isa i, or NULL with a printed skip message. */
static const mn_kernels *table_or_skip(int i) {
    const mn_kernels *k = mn_kernels_for_isa(isas[i]);
    if (!k) printf("# skipped %s: this CPU lacks it\n", isas[i]);
    return k;
}

enum { NMAX = 16 * 256, GUARD = 256 };

/* ---------------------------------------------------------------- independent decoding ------- */

/* Written from the layout comment in blocks.h (not from the kernels): per super-block the
 * integer parts of every weight, w_e = A[e] * code[e] - B[e] with A = d * scale, B = dmin * min. */
typedef struct decoded {
    double d, dmin; /* f16 scales as doubles */
    int scale[256]; /* sub-block scale of each weight (Q6_K: signed) */
    int min[256];   /* sub-block min of each weight (0 for Q6_K) */
    int code[256];  /* Q4_K 0..15, Q5_K 0..31, Q6_K code - 32 (-32..31) */
} decoded;

static void dec_scales_mins(const uint8_t *s, int sc[8], int m[8]) {
    for (int k = 0; k < 4; k++) {
        sc[k] = s[k] & 0x3f;
        m[k] = s[k + 4] & 0x3f;
        sc[k + 4] = (s[k + 8] & 0x0f) | ((s[k] >> 6) << 4);
        m[k + 4] = (s[k + 8] >> 4) | ((s[k + 4] >> 6) << 4);
    }
}

static void decode(int32_t t, const void *blk, decoded *o) {
    if (t == MN_TYPE_Q6_K) {
        const mn_block_q6_K *b = blk;
        o->d = mn_f16_to_f32(b->d);
        o->dmin = 0;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                const int e = 128 * h + l, hb = b->qh[32 * h + l];
                const int lo0 = b->ql[64 * h + l], lo1 = b->ql[64 * h + 32 + l];
                o->code[e] = ((lo0 & 15) | ((hb & 3) << 4)) - 32;
                o->code[e + 32] = ((lo1 & 15) | (((hb >> 2) & 3) << 4)) - 32;
                o->code[e + 64] = ((lo0 >> 4) | (((hb >> 4) & 3) << 4)) - 32;
                o->code[e + 96] = ((lo1 >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            }
        }
        for (int e = 0; e < 256; e++) {
            o->scale[e] = b->scales[e / 16];
            o->min[e] = 0;
        }
        return;
    }
    const mn_block_q4_K *b4 = blk;
    const mn_block_q5_K *b5 = blk;
    const uint8_t *scales = t == MN_TYPE_Q4_K ? b4->scales : b5->scales;
    const uint8_t *qs = t == MN_TYPE_Q4_K ? b4->qs : b5->qs;
    o->d = mn_f16_to_f32(t == MN_TYPE_Q4_K ? b4->d : b5->d);
    o->dmin = mn_f16_to_f32(t == MN_TYPE_Q4_K ? b4->dmin : b5->dmin);
    int sc[8], m[8];
    dec_scales_mins(scales, sc, m);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            const int e0 = 64 * c + l, e1 = 64 * c + 32 + l;
            o->code[e0] = qs[32 * c + l] & 15;
            o->code[e1] = qs[32 * c + l] >> 4;
            if (t == MN_TYPE_Q5_K) {
                o->code[e0] += ((b5->qh[l] >> (2 * c)) & 1) * 16;
                o->code[e1] += ((b5->qh[l] >> (2 * c + 1)) & 1) * 16;
            }
        }
    }
    for (int e = 0; e < 256; e++) {
        o->scale[e] = sc[e / 32];
        o->min[e] = m[e / 32];
    }
}

static size_t bsize(int32_t t) { return (size_t)mn_type_get(t)->type_size; }

/* The exact dot (in double, from integer block sums) of a weight row and a Q8_K row, and the
 * magnitude M = sum over weights of |d_x| (|d sc code x| + |dmin m x|) used by the budgets. For
 * Q6_K the magnitude counts |code| + 32 (what the kernels' un-offset partial sums can reach). */
static double kdot_exact(int32_t t, const void *w, const mn_block_q8_K *x, int64_t n, double *mag) {
    double sum = 0, m = 0;
    decoded dec;
    for (int64_t ib = 0; ib < n / 256; ib++) {
        decode(t, (const uint8_t *)w + ib * bsize(t), &dec);
        int64_t si = 0, smin = 0, ai = 0, amin = 0;
        for (int e = 0; e < 256; e++) {
            const int64_t xv = x[ib].qs[e];
            si += (int64_t)dec.scale[e] * dec.code[e] * xv;
            smin += (int64_t)dec.min[e] * xv;
            const int64_t ac = t == MN_TYPE_Q6_K ? llabs(dec.code[e]) + 32 : dec.code[e];
            ai += llabs(dec.scale[e] * ac * xv);
            amin += llabs(dec.min[e] * xv);
        }
        const double dx = x[ib].d;
        sum += dx * (dec.d * (double)si - dec.dmin * (double)smin);
        m += fabs(dx) * (fabs(dec.d) * (double)ai + fabs(dec.dmin) * (double)amin);
    }
    *mag = m;
    return sum;
}

/* Q8_K block with the given quants, d and correct bsums. */
static void make_q8_K(mn_block_q8_K *b, const int8_t *qs, float d) {
    b->d = d;
    memcpy(b->qs, qs, 256);
    for (int k = 0; k < 16; k++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += qs[16 * k + l];
        b->bsums[k] = (int16_t)s;
    }
}

/* ---------------------------------------------------------------- layouts -------------------- */

static void test_struct_offsets(void **state) {
    (void)state;
    assert_int_equal(offsetof(mn_block_q4_K, d), 0);
    assert_int_equal(offsetof(mn_block_q4_K, dmin), 2);
    assert_int_equal(offsetof(mn_block_q4_K, scales), 4);
    assert_int_equal(offsetof(mn_block_q4_K, qs), 16);
    assert_int_equal(offsetof(mn_block_q5_K, scales), 4);
    assert_int_equal(offsetof(mn_block_q5_K, qh), 16);
    assert_int_equal(offsetof(mn_block_q5_K, qs), 48);
    assert_int_equal(offsetof(mn_block_q6_K, ql), 0);
    assert_int_equal(offsetof(mn_block_q6_K, qh), 128);
    assert_int_equal(offsetof(mn_block_q6_K, scales), 192);
    assert_int_equal(offsetof(mn_block_q6_K, d), 208);
    assert_int_equal(offsetof(mn_block_q8_K, qs), 4);
    assert_int_equal(offsetof(mn_block_q8_K, bsums), 260);
    for (int i = 0; i < 3; i++) assert_int_equal(mn_type_get(wtypes[i])->vec_dot_type, MN_TYPE_Q8_K);
    assert_int_equal(mn_type_row_size(MN_TYPE_Q8_K, 4096), 16 * 292);
}

/* The scale bytes of the hand-built Q4_K / Q5_K blocks and what they mean, by hand:
 *   bytes 0..3  0x41 0x82 0xc3 0x04: sc0..3 = low 6 bits = 1, 2, 3, 4; top 2 bits 1, 2, 3, 0
 *   bytes 4..7  0x05 0x46 0x87 0xc8: m0..3 = 5, 6, 7, 8;                top 2 bits 0, 1, 2, 3
 *   bytes 8..11 0x21 0x43 0x65 0x87: low nibbles 1, 3, 5, 7; high nibbles 2, 4, 6, 8
 *   sc4..7 = low nibble | top bits of bytes 0..3 << 4 = 1|16, 3|32, 5|48, 7|0 = 17, 35, 53, 7
 *   m4..7 = high nibble | top bits of bytes 4..7 << 4 = 2|0, 4|16, 6|32, 8|48 = 2, 20, 38, 56 */
static const uint8_t hand_scales[12] = {0x41, 0x82, 0xc3, 0x04, 0x05, 0x46, 0x87, 0xc8, 0x21, 0x43, 0x65, 0x87};
static const int hand_sc[8] = {1, 2, 3, 4, 17, 35, 53, 7};
static const int hand_m[8] = {5, 6, 7, 8, 2, 20, 38, 56};

/* Hand-built nibbles: qs[32c + l] has low nibble (l + 5c) & 15 (weight 64c + l) and high nibble
 * (3l + c) & 15 (weight 64c + 32 + l). */
static void hand_nibbles(uint8_t *qs) {
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)(((l + 5 * c) & 15) | (((3 * l + c) & 15) << 4));
    }
}
static int hand_nibble_code(int e) {
    const int c = e / 64, r = e % 64;
    return r < 32 ? (r + 5 * c) & 15 : (3 * (r - 32) + c) & 15;
}

static void check_all_isas_to_f32(int32_t t, const void *blk, const float *want) {
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = table_or_skip(i);
        if (!k) continue;
        float got[256];
        k->to_f32[t](blk, got, 256);
        for (int e = 0; e < 256; e++) {
            if (got[e] != want[e]) fail_msg("%s %s element %d: %g, want %g", k->isa, mn_type_get(t)->name, e, got[e], want[e]);
        }
    }
    float ref[256];
    mn_type_get(t)->to_f32(blk, ref, 256);
    assert_memory_equal(ref, want, sizeof ref);
}

static void test_q4_K_hand_block(void **state) {
    (void)state;
    mn_block_q4_K b;
    b.d = 0x3c00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5: w = sc * code - m / 2, exact in f32 */
    memcpy(b.scales, hand_scales, 12);
    hand_nibbles(b.qs);
    float want[256];
    for (int e = 0; e < 256; e++) want[e] = (float)(hand_sc[e / 32] * hand_nibble_code(e)) - 0.5f * (float)hand_m[e / 32];
    /* spot values by hand: e 0: sub-block 0, code 0 -> -2.5; e 100 = 64 + 36: chunk 1, high
     * nibble of byte 32 + 4: (12 + 1) & 15 = 13, sub-block 3 -> 4 * 13 - 4 = 48; e 200 = 192 + 8:
     * low nibble (8 + 15) & 15 = 7, sub-block 6 -> 53 * 7 - 19 = 352; e 255: (93 + 3) & 15 = 0,
     * sub-block 7 -> -28 */
    assert_true(want[0] == -2.5f && want[100] == 48.0f && want[200] == 352.0f && want[255] == -28.0f);
    check_all_isas_to_f32(MN_TYPE_Q4_K, &b, want);
}

static void test_q5_K_hand_block(void **state) {
    (void)state;
    mn_block_q5_K b;
    b.d = 0x3c00;
    b.dmin = 0x3800;
    memcpy(b.scales, hand_scales, 12);
    hand_nibbles(b.qs);
    for (int l = 0; l < 32; l++) b.qh[l] = (uint8_t)(0xa5 ^ (7 * l));
    float want[256];
    for (int e = 0; e < 256; e++) {
        const int c = e / 64, l = e % 32, bit = 2 * c + ((e % 64) >= 32);
        const int code = hand_nibble_code(e) + 16 * ((b.qh[l] >> bit) & 1);
        want[e] = (float)(hand_sc[e / 32] * code) - 0.5f * (float)hand_m[e / 32];
    }
    /* by hand: e 100 (chunk 1, high half, l 4): qh[4] = 0xa5 ^ 28 = 0xb9, bit 3 set -> 13 + 16 =
     * 29 -> 4 * 29 - 4 = 112; e 200 (chunk 3, low half, l 8): qh[8] = 0xa5 ^ 56 = 0x9d, bit 6
     * clear -> 352 as in Q4_K; e 33 (chunk 0, high, l 1): qh[1] = 0xa2, bit 1 set -> 3 + 16 = 19,
     * sub-block 1 -> 2 * 19 - 3 = 35; e 255: qh[31] = 0x7c, bit 7 clear -> -28 */
    assert_true(want[100] == 112.0f && want[200] == 352.0f && want[33] == 35.0f && want[255] == -28.0f);
    check_all_isas_to_f32(MN_TYPE_Q5_K, &b, want);
}

static void test_q6_K_hand_block(void **state) {
    (void)state;
    mn_block_q6_K b;
    static const int8_t sc[16] = {1, -1, 2, -2, 127, -128, 5, -7, 64, -64, 3, 0, 9, -11, 100, -100};
    for (int i = 0; i < 128; i++) b.ql[i] = (uint8_t)(29 * i + 3);
    for (int i = 0; i < 64; i++) b.qh[i] = (uint8_t)(53 * i + 101);
    memcpy(b.scales, sc, 16);
    b.d = 0x3400; /* 0.25 */
    float want[256];
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
        const int lo = (b.ql[64 * h + 32 * (g % 2) + l] >> (4 * (g / 2))) & 15;
        const int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
        want[e] = 0.25f * (float)sc[e / 16] * (float)((lo | (hi << 4)) - 32);
    }
    /* by hand: e 0: ql[0] = 3, qh[0] = 101 -> bits 0-1 = 1: code 19 - 32 = -13, sc 1 -> -3.25;
     * e 77 (half 0, quarter 2, l 13): ql[13] = 124 -> high nibble 7; qh[13] = 22 -> bits 4-5 = 1:
     * 23 - 32 = -9, sub-block 4 (sc 127) -> -285.75; e 150 (half 1, quarter 0, l 22): ql[86] =
     * 193 -> low nibble 1; qh[54] = 147 -> bits 0-1 = 3: 49 - 32 = 17, sub-block 9 (sc -64) ->
     * -272; e 250 (half 1, quarter 3, l 26): ql[122] = 213 -> 13; qh[58] = 103 -> bits 6-7 = 1:
     * 29 - 32 = -3, sub-block 15 (sc -100) -> 75 */
    assert_true(want[0] == -3.25f && want[77] == -285.75f && want[150] == -272.0f && want[250] == 75.0f);
    check_all_isas_to_f32(MN_TYPE_Q6_K, &b, want);
}

static void test_q8_K_hand_block(void **state) {
    (void)state;
    /* raw bytes: f32 d = -0.5 (0xbf000000, little-endian) at 0, qs at 4, bsums at 260 */
    uint8_t raw[292] = {0x00, 0x00, 0x00, 0xbf};
    for (int i = 0; i < 256; i++) raw[4 + i] = (uint8_t)(i * 3);
    float y[256];
    mn_type_get(MN_TYPE_Q8_K)->to_f32(raw, y, 256);
    for (int i = 0; i < 256; i++) assert_true(y[i] == -0.5f * (float)(int8_t)(uint8_t)(i * 3));

    /* quantizer, max |x| = 127 at x[7] = -127: iscale = -127 / -127 = 1, d = 1, q = round(x)
     * with ties to even; the positive 126.5 rounds to 126 */
    float x[256] = {0};
    const float xs[12] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 3.49f, -3.51f, -127.0f, 126.5f, 100.0f, -0.4f, 64.5f};
    const int8_t qs[12] = {0, 2, 2, 0, -2, 3, -4, -127, 126, 100, 0, 64};
    memcpy(x, xs, sizeof xs);
    mn_block_q8_K q;
    mn_type_get(MN_TYPE_Q8_K)->from_f32(x, &q, 256);
    assert_true(q.d == 1.0f);
    assert_memory_equal(q.qs, qs, 12);
    assert_int_equal(q.bsums[0], 0 + 2 + 2 + 0 - 2 + 3 - 4 - 127 + 126 + 100 + 0 + 64);
    for (int k = 1; k < 16; k++) assert_int_equal(q.bsums[k], 0);

    /* the sign of d: the element of largest magnitude becomes -127, so a positive peak gives a
     * negative d (x = 2 at index 3 -> d = -2/127, q[3] = -127; x = -1 -> round(63.5) = 64) */
    memset(x, 0, sizeof x);
    x[3] = 2.0f;
    x[4] = -1.0f;
    x[5] = -2.0f; /* same magnitude later: the first one wins */
    mn_type_get(MN_TYPE_Q8_K)->from_f32(x, &q, 256);
    assert_true(q.d == 1.0f / (-127.0f / 2.0f));
    assert_int_equal(q.qs[3], -127);
    assert_int_equal(q.qs[4], 64);
    assert_int_equal(q.qs[5], 127);
    assert_int_equal(q.bsums[0], -127 + 64 + 127);
}

/* ---------------------------------------------------------------- quantization error --------- */

static void roundtrip_stats(int32_t t, const float *x, int64_t n, void *q, float *y, double *rel_rms, double *rel_abs) {
    mn_type_get(t)->from_f32(x, q, n);
    mn_type_get(t)->to_f32(q, y, n);
    double se = 0, sx = 0, worst = 0;
    for (int64_t ib = 0; ib < n / 256; ib++) {
        double amax = 0, emax = 0;
        for (int e = 0; e < 256; e++) {
            const double xv = x[ib * 256 + e], err = xv - y[ib * 256 + e];
            se += err * err;
            sx += xv * xv;
            amax = fmax(amax, fabs(xv));
            emax = fmax(emax, fabs(err));
        }
        if (amax > 0) worst = fmax(worst, emax / amax);
    }
    *rel_rms = sqrt(se / sx);
    *rel_abs = worst;
}

static void test_quantization_error(void **state) {
    (void)state;
    enum { N = 256 * 512 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 2);
    uint64_t s = 21;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s);
    const struct {
        int32_t t;
        double max_rms, max_abs;
    } cases[] = {{MN_TYPE_Q4_K, MAX_Q4_K_REL_RMS, MAX_Q4_K_REL_ABS},
                 {MN_TYPE_Q5_K, MAX_Q5_K_REL_RMS, MAX_Q5_K_REL_ABS},
                 {MN_TYPE_Q6_K, MAX_Q6_K_REL_RMS, MAX_Q6_K_REL_ABS},
                 {MN_TYPE_Q8_K, MAX_Q8_K_REL_RMS, 1.0 / 254 + 1e-6}};
    double rms[4];
    for (int c = 0; c < 4; c++) {
        double ra;
        roundtrip_stats(cases[c].t, x, N, q, y, &rms[c], &ra);
        printf("# %s: relative RMS error %.4f, max |err| / max |x| per super-block %.4f\n", mn_type_get(cases[c].t)->name,
               rms[c], ra);
        if (!(rms[c] <= cases[c].max_rms)) fail_msg("%s RMS %.5f > %.5f", mn_type_get(cases[c].t)->name, rms[c], cases[c].max_rms);
        if (!(ra <= cases[c].max_abs)) fail_msg("%s max-abs %.5f > %.5f", mn_type_get(cases[c].t)->name, ra, cases[c].max_abs);
    }
    /* the same 4.5 bits per weight as Q4_0, and every extra bit pays */
    double rms40 = 0, ra40;
    roundtrip_stats(MN_TYPE_Q4_0, x, N, q, y, &rms40, &ra40);
    printf("# q4_0 (same bits per weight): relative RMS error %.4f\n", rms40);
    assert_true(rms[0] < 0.85 * rms40);
    assert_true(rms[1] < 0.6 * rms[0] && rms[2] < 0.6 * rms[1]);

    /* scale invariance: the same data times 1e3 and 1e-2 keeps its relative error (d and dmin
     * stay normal f16 numbers) */
    for (int c = 0; c < 3; c++) {
        const float f[2] = {1e3f, 1e-2f};
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < 256 * 64; i++) y[i] = x[i] * f[k];
            double r, ra;
            float *yy = malloc(256 * 64 * sizeof *yy);
            roundtrip_stats(cases[c].t, y, 256 * 64, q, yy, &r, &ra);
            free(yy);
            if (!(r <= cases[c].max_rms)) fail_msg("%s scaled by %g: RMS %.5f", mn_type_get(cases[c].t)->name, f[k], r);
        }
    }
    free(x);
    free(y);
    free(q);
}

/* Zeros give zeros, a constant block comes back close, and non-finite input gives a defined block
 * (under UBSan: no undefined float-to-int conversion) that the other blocks of the row ignore. */
static void test_quantize_special_blocks(void **state) {
    (void)state;
    float x[1024], y[1024];
    uint8_t q[4 * 292];
    for (int t = 0; t < 4; t++) {
        const int32_t type = t < 3 ? wtypes[t] : MN_TYPE_Q8_K;
        memset(x, 0, sizeof x);
        for (int i = 256; i < 512; i++) x[i] = 0.75f; /* constant */
        for (int i = 512; i < 768; i++) x[i] = (float)((i % 7) - 3) * 1e-3f;
        x[768] = NAN;
        x[769] = INFINITY;
        x[800] = -INFINITY;
        for (int i = 801; i < 1024; i++) x[i] = 1.0f;
        mn_type_get(type)->from_f32(x, q, 1024);
        mn_type_get(type)->to_f32(q, y, 1024);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
        for (int i = 256; i < 512; i++) {
            if (!(fabsf(y[i] - 0.75f) <= 0.01f)) fail_msg("%s constant 0.75 -> %g", mn_type_get(type)->name, y[i]);
        }
        for (int i = 512; i < 768; i++) {
            if (!(fabsf(y[i] - x[i]) <= 2e-4f)) fail_msg("%s small value %g -> %g", mn_type_get(type)->name, x[i], y[i]);
        }
    }
}

/* ---------------------------------------------------------------- Q8_K quantizer ------------- */

/* bsums, the per-element bound and the -127 peak on random data, then every SIMD quantizer
 * bit-identical to the reference on awkward blocks. */
static void test_q8_K_quantizer(void **state) {
    (void)state;
    enum { N = 256 * 32 };
    float *x = malloc(N * sizeof *x);
    mn_block_q8_K *ref = malloc(N / 256 * sizeof *ref), *got = malloc(N / 256 * sizeof *got + GUARD);
    uint64_t s = 31;
    for (int i = 0; i < N; i++) x[i] = rng_gauss(&s) * (i < N / 2 ? 1.0f : 1e-3f);
    mn_type_get(MN_TYPE_Q8_K)->from_f32(x, ref, N);
    for (int ib = 0; ib < N / 256; ib++) {
        int peak = 0;
        for (int e = 1; e < 256; e++) {
            if (fabsf(x[ib * 256 + e]) > fabsf(x[ib * 256 + peak])) peak = e;
        }
        assert_int_equal(ref[ib].qs[peak], -127);
        assert_true(ref[ib].d == -x[ib * 256 + peak] / 127.0f || fabsf(ref[ib].d + x[ib * 256 + peak] / 127.0f) <= 1e-6f * fabsf(ref[ib].d));
        for (int k = 0; k < 16; k++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += ref[ib].qs[16 * k + l];
            assert_int_equal(ref[ib].bsums[k], sum);
        }
        for (int e = 0; e < 256; e++) {
            const double err = fabs((double)x[ib * 256 + e] - (double)ref[ib].d * ref[ib].qs[e]);
            if (!(err <= 0.5001 * fabs(ref[ib].d))) fail_msg("block %d elem %d: err %g, d %g", ib, e, err, ref[ib].d);
        }
    }

    /* awkward blocks, one recipe each */
    for (int ib = 0; ib < N / 256; ib++) {
        float *xb = x + ib * 256;
        const int kind = ib % 12;
        for (int e = 0; e < 256; e++) {
            switch (kind) {
            case 0: xb[e] = rng_gauss(&s); break;
            case 1: xb[e] = (float)rng_int(&s, -127, 126) + 0.5f; break; /* ties, with d = 1 below */
            case 2: xb[e] = 0.0f; break;
            case 3: xb[e] = (e & 1) ? -0.0f : 0.0f; break;
            case 4: xb[e] = rng_gauss(&s) * 1e-42f; break; /* subnormal max: iscale overflows */
            case 5: xb[e] = rng_gauss(&s) * 1e37f; break;
            case 6: xb[e] = e == (ib * 7) % 256 ? NAN : rng_gauss(&s); break;
            case 7: xb[e] = e == 200 ? -INFINITY : rng_gauss(&s); break;
            case 8: xb[e] = ffrom((uint32_t)rng_next(&s)); break; /* any bits */
            case 9: xb[e] = (float)rng_int(&s, -3, 3) * 0.25f; break;  /* equal magnitudes */
            case 10: xb[e] = e < 255 ? rng_gauss(&s) : 50.0f; break;   /* the peak last */
            default: xb[e] = NAN; break;                               /* all NaN */
            }
        }
        if (kind == 1) xb[17] = -127.0f;
    }
    mn_type_get(MN_TYPE_Q8_K)->from_f32(x, ref, N);
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = table_or_skip(i);
        if (!k) continue;
        memset(got, 0xcd, N / 256 * sizeof *got + GUARD);
        k->quantize[MN_TYPE_Q8_K](x, got, N);
        for (int ib = 0; ib < N / 256; ib++) {
            if (memcmp(&ref[ib], &got[ib], sizeof ref[ib]) != 0) {
                fail_msg("%s q8_K quantize differs from reference in block %d (recipe %d)", k->isa, ib, ib % 12);
            }
        }
        const uint8_t *tail = (const uint8_t *)(got + N / 256);
        for (int j = 0; j < GUARD; j++) assert_int_equal(tail[j], 0xcd);
    }
    free(x);
    free(ref);
    free(got);
}

/* ---------------------------------------------------------------- dot products --------------- */

static const int64_t sizes[] = {256, 512, 768, 1024, 2048, 3072, 4096};
#define N_SIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* Random blocks of weight type t with unit d and dmin (integer weights) and codes/scales drawn
 * over their full ranges. */
static void random_unit_blocks(int32_t t, void *dst, int64_t nb, int sc_max, uint64_t *s) {
    for (int64_t ib = 0; ib < nb; ib++) {
        uint8_t *b = (uint8_t *)dst + ib * bsize(t);
        for (size_t j = 0; j < bsize(t); j++) b[j] = (uint8_t)rng_next(s);
        if (t == MN_TYPE_Q6_K) {
            mn_block_q6_K *q = (mn_block_q6_K *)b;
            q->d = 0x3c00;
            for (int k = 0; k < 16; k++) q->scales[k] = (int8_t)rng_int(s, -sc_max, sc_max);
        } else {
            int sc[8], m[8];
            for (int j = 0; j < 8; j++) {
                sc[j] = rng_int(s, 0, sc_max > 63 ? 63 : sc_max);
                m[j] = rng_int(s, 0, sc_max > 63 ? 63 : sc_max);
            }
            uint8_t *scales = ((mn_block_q4_K *)b)->scales; /* same offset in Q5_K */
            for (int k = 0; k < 4; k++) { /* the packing of blocks.h */
                scales[k] = (uint8_t)(sc[k] | ((sc[k + 4] >> 4) << 6));
                scales[k + 4] = (uint8_t)(m[k] | ((m[k + 4] >> 4) << 6));
                scales[k + 8] = (uint8_t)((sc[k + 4] & 15) | ((m[k + 4] & 15) << 4));
            }
            ((mn_block_q4_K *)b)->d = 0x3c00;
            ((mn_block_q4_K *)b)->dmin = 0x3c00;
        }
    }
}

/* Unit scales everywhere and total magnitude below 2^24: every partial sum is an exact integer in
 * f32, so every table must return the exact result bit for bit. */
static void test_vec_dot_exact(void **state) {
    (void)state;
    uint8_t *w = malloc(NMAX / 256 * 210 + 64);
    mn_block_q8_K *x = malloc(NMAX / 256 * sizeof *x);
    uint64_t s = 41;
    int8_t qs[256];
    for (int it = 0; it < 3; it++) {
        for (int is = 0; is < N_SIZES; is++) {
            const int64_t n = sizes[is], nb = n / 256;
            const int32_t t = wtypes[it];
            /* ranges keeping M < 2^24 (asserted below): scales and activations shrink with the
             * row length and the code range */
            const int div = t == MN_TYPE_Q4_K ? 1 : t == MN_TYPE_Q5_K ? 2 : 4;
            const int sc_max = n <= 512 ? 63 : 7;
            const int xr = n <= 512 ? 40 / (div > 1 ? div - 1 : 1) : (int)((1800 / nb > 127 ? 127 : 1800 / nb) / div);
            random_unit_blocks(t, w, nb, sc_max, &s);
            for (int64_t ib = 0; ib < nb; ib++) {
                for (int e = 0; e < 256; e++) qs[e] = (int8_t)rng_int(&s, -xr, xr);
                make_q8_K(&x[ib], qs, 1.0f);
            }
            double mag;
            const double exact = kdot_exact(t, w, x, n, &mag);
            if (!(mag < 0x1p24)) fail_msg("premise: %s n=%lld magnitude %g >= 2^24", mn_type_get(t)->name, (long long)n, mag);
            for (int i = 0; i < 3; i++) {
                const mn_kernels *k = table_or_skip(i);
                if (!k) continue;
                float got = -1;
                k->vec_dot[t](n, w, x, &got);
                if ((double)got != exact) fail_msg("%s %s n=%lld: %.1f, exact %.1f", k->isa, mn_type_get(t)->name, (long long)n, got, exact);
            }
        }
    }
    free(w);
    free(x);
}

/* Largest codes, largest scales, activations +-127: int16 pair sums at their maxima (2 * 63 * 127
 * for Q6_K), where a saturating or sign-mixing step would show. */
static void test_vec_dot_extremes(void **state) {
    (void)state;
    uint8_t w[4 * 210];
    mn_block_q8_K x[4];
    int8_t qs[256];
    for (int sign = 0; sign < 2; sign++) {
        for (int e = 0; e < 256; e++) qs[e] = (int8_t)(sign ? ((e & 1) ? 127 : -127) : 127);
        for (int ib = 0; ib < 4; ib++) make_q8_K(&x[ib], qs, 1.0f / 64);
        for (int it = 0; it < 3; it++) {
            const int32_t t = wtypes[it];
            memset(w, 0xff, sizeof w); /* all codes and 6-bit scales/mins at their maximum */
            for (int ib = 0; ib < 4; ib++) {
                uint8_t *b = w + ib * bsize(t);
                if (t == MN_TYPE_Q6_K) {
                    mn_block_q6_K *q = (mn_block_q6_K *)b;
                    for (int k = 0; k < 16; k++) q->scales[k] = (int8_t)((k & 1) ? -128 : 127);
                    q->d = 0x3c00;
                } else {
                    ((mn_block_q4_K *)b)->d = 0x3c00;
                    ((mn_block_q4_K *)b)->dmin = 0x3800;
                }
            }
            double mag;
            const double exact = kdot_exact(t, w, x, 1024, &mag);
            for (int i = 0; i < 3; i++) {
                const mn_kernels *k = table_or_skip(i);
                if (!k) continue;
                float got;
                k->vec_dot[t](1024, w, x, &got);
                if (!(fabs(got - exact) <= KDOT_BUDGET(4) * mag)) {
                    fail_msg("%s %s extremes (sign %d): %.9g exact %.9g", k->isa, mn_type_get(t)->name, sign, got, exact);
                }
            }
        }
    }
}

/* Random rows through the real quantizers: every table within KDOT_BUDGET of the exact dot,
 * within KDOT_BUDGET + DEQ_BUDGET of a double dot of the dequantized operands, and (so within
 * the sum of both budgets) of the reference. */
static void test_vec_dot_random(void **state) {
    (void)state;
    float *wf = malloc(NMAX * sizeof *wf), *xf = malloc(NMAX * sizeof *xf), *wd = malloc(NMAX * sizeof *wd);
    uint8_t *wq = malloc(NMAX / 256 * 210);
    mn_block_q8_K *xq = malloc(NMAX / 256 * sizeof *xq);
    uint64_t s = 51;
    for (int rep = 0; rep < 4; rep++) {
        for (int is = 0; is < N_SIZES; is++) {
            const int64_t n = sizes[is], nb = n / 256;
            for (int64_t i = 0; i < n; i++) {
                wf[i] = rng_gauss(&s) * (rep == 1 ? 1e-3f : 1.0f);
                xf[i] = rng_gauss(&s) * (rep == 2 ? 300.0f : 1.0f);
            }
            if (rep == 3) xf[n / 2] = 1e4f; /* an outlier activation */
            mn_type_get(MN_TYPE_Q8_K)->from_f32(xf, xq, n);
            for (int it = 0; it < 3; it++) {
                const int32_t t = wtypes[it];
                const mn_type_traits *tr = mn_type_get(t);
                tr->from_f32(wf, wq, n);
                tr->to_f32(wq, wd, n);
                double mag, deq = 0;
                const double exact = kdot_exact(t, wq, xq, n, &mag);
                for (int64_t i = 0; i < n; i++) deq += (double)wd[i] * ((double)xq[i / 256].d * xq[i / 256].qs[i % 256]);
                if (!(fabs(deq - exact) <= DEQ_BUDGET * mag)) fail_msg("%s n=%lld: dequantized dot %.9g vs exact %.9g", tr->name, (long long)n, deq, exact);
                float want;
                tr->vec_dot(n, wq, xq, &want);
                for (int i = 0; i < 3; i++) {
                    const mn_kernels *k = table_or_skip(i);
                    if (!k) continue;
                    float got;
                    k->vec_dot[t](n, wq, xq, &got);
                    if (!(fabs(got - exact) <= KDOT_BUDGET(nb) * mag)) {
                        fail_msg("%s %s n=%lld rep %d: %.9g exact %.9g (err %g > %g)", k->isa, tr->name, (long long)n, rep, got,
                                 exact, fabs(got - exact), KDOT_BUDGET(nb) * mag);
                    }
                    if (!(fabs(got - deq) <= (KDOT_BUDGET(nb) + DEQ_BUDGET) * mag)) {
                        fail_msg("%s %s n=%lld rep %d: %.9g vs dequantized %.9g", k->isa, tr->name, (long long)n, rep, got, deq);
                    }
                    if (!(fabs(got - want) <= 2 * KDOT_BUDGET(nb) * mag)) {
                        fail_msg("%s %s n=%lld rep %d: %.9g vs reference %.9g", k->isa, tr->name, (long long)n, rep, got, want);
                    }
                }
            }
        }
    }
    free(wf);
    free(xf);
    free(wd);
    free(wq);
    free(xq);
}

/* ---------------------------------------------------------------- dequantizers --------------- */

/* Random bytes with random finite f16 scales: every SIMD dequantizer gives the reference's bits,
 * and writes nothing past n. */
static void test_to_f32_bit_exact(void **state) {
    (void)state;
    uint8_t *w = malloc(NMAX / 256 * 210);
    float *ref = malloc(NMAX * sizeof *ref), *got = malloc((NMAX + GUARD) * sizeof *got);
    uint64_t s = 61;
    for (int it = 0; it < 3; it++) {
        const int32_t t = wtypes[it];
        for (int is = 0; is < N_SIZES; is++) {
            const int64_t n = sizes[is];
            for (size_t j = 0; j < (size_t)(n / 256) * bsize(t); j++) w[j] = (uint8_t)rng_next(&s);
            for (int64_t ib = 0; ib < n / 256; ib++) { /* exponent < 31: finite, normal or subnormal */
                uint8_t *b = w + ib * bsize(t);
                const uint16_t d = (uint16_t)(rng_next(&s) & 0xfbff), dmin = (uint16_t)(rng_next(&s) & 0xfbff);
                if (t == MN_TYPE_Q6_K) {
                    memcpy(b + 208, &d, 2);
                } else {
                    memcpy(b, &d, 2);
                    memcpy(b + 2, &dmin, 2);
                }
            }
            mn_type_get(t)->to_f32(w, ref, n);
            for (int i = 1; i < 3; i++) {
                const mn_kernels *k = table_or_skip(i);
                if (!k) continue;
                memset(got, 0xcd, (size_t)(n + GUARD) * sizeof *got);
                k->to_f32[t](w, got, n);
                for (int64_t e = 0; e < n; e++) {
                    if (fbits(got[e]) != fbits(ref[e])) {
                        fail_msg("%s %s to_f32 n=%lld at %lld: %08x vs ref %08x", k->isa, mn_type_get(t)->name, (long long)n,
                                 (long long)e, fbits(got[e]), fbits(ref[e]));
                    }
                }
                const uint8_t *tail = (const uint8_t *)(got + n);
                for (int j = 0; j < GUARD * 4; j++) assert_int_equal(tail[j], 0xcd);
            }
        }
    }
    free(w);
    free(ref);
    free(got);
}

/* ---------------------------------------------------------------- odd addresses -------------- */

/* A GGUF with general.alignment = 1 may place rows at any address: every table gives the same bits
 * for rows at odd addresses as for aligned copies (and, under UBSan, no misaligned access). */
static void test_odd_addresses(void **state) {
    (void)state;
    const int64_t n = 3072; /* 12 super-blocks */
    float *wf = malloc(n * sizeof *wf), *xf = malloc(n * sizeof *xf), *y0 = malloc(n * sizeof *y0), *y1 = malloc(n * sizeof *y1);
    uint8_t *wbuf = malloc(n / 256 * 210 + 8), *xbuf = malloc(n / 256 * 292 + 8), *wal = malloc(n / 256 * 210), *xal = malloc(n / 256 * 292);
    uint64_t s = 71;
    for (int64_t i = 0; i < n; i++) {
        wf[i] = rng_gauss(&s);
        xf[i] = rng_gauss(&s);
    }
    mn_type_get(MN_TYPE_Q8_K)->from_f32(xf, xal, n);
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = table_or_skip(i);
        if (!k) continue;
        uint8_t *x_odd = xbuf + 3;
        k->quantize[MN_TYPE_Q8_K](xf, x_odd, n); /* odd destination */
        assert_memory_equal(x_odd, xal, (size_t)n / 256 * 292);
        for (int it = 0; it < 3; it++) {
            const int32_t t = wtypes[it];
            const size_t rs = (size_t)mn_type_row_size(t, n);
            mn_type_get(t)->from_f32(wf, wal, n);
            uint8_t *w_odd = wbuf + 1 + it * 2;
            memcpy(w_odd, wal, rs);
            float a, b;
            k->vec_dot[t](n, w_odd, x_odd, &a);
            k->vec_dot[t](n, wal, xal, &b);
            if (fbits(a) != fbits(b)) fail_msg("%s %s odd address: %.9g vs %.9g", k->isa, mn_type_get(t)->name, a, b);
            k->to_f32[t](w_odd, y0, n);
            mn_type_get(t)->to_f32(wal, y1, n);
            assert_memory_equal(y0, y1, (size_t)n * sizeof *y0);
        }
    }
    /* the reference quantizers write odd destinations too */
    mn_type_get(MN_TYPE_Q4_K)->from_f32(wf, wbuf + 1, n);
    mn_type_get(MN_TYPE_Q4_K)->from_f32(wf, wal, n);
    assert_memory_equal(wbuf + 1, wal, (size_t)n / 256 * 144);
    free(wf);
    free(xf);
    free(y0);
    free(y1);
    free(wbuf);
    free(xbuf);
    free(wal);
    free(xal);
}

/* Every table has the K-quant entries (tests/unit/test_kernels.c checks the general rule). */
static void test_tables(void **state) {
    (void)state;
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = table_or_skip(i);
        if (!k) continue;
        for (int it = 0; it < 3; it++) {
            assert_non_null(k->vec_dot[wtypes[it]]);
            assert_non_null(k->to_f32[wtypes[it]]);
        }
        assert_non_null(k->quantize[MN_TYPE_Q8_K]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_offsets),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_q4_K_hand_block),
        cmocka_unit_test(test_q5_K_hand_block),
        cmocka_unit_test(test_q6_K_hand_block),
        cmocka_unit_test(test_q8_K_hand_block),
        cmocka_unit_test(test_quantization_error),
        cmocka_unit_test(test_quantize_special_blocks),
        cmocka_unit_test(test_q8_K_quantizer),
        cmocka_unit_test(test_vec_dot_exact),
        cmocka_unit_test(test_vec_dot_extremes),
        cmocka_unit_test(test_vec_dot_random),
        cmocka_unit_test(test_to_f32_bit_exact),
        cmocka_unit_test(test_odd_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
