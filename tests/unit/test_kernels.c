/*
 * test_kernels.c: every SIMD kernel table this CPU supports against the scalar reference and a
 * double-precision oracle. ISAs the CPU lacks are skipped with a printed message.
 *
 * How each kind of kernel is judged:
 *   - Conversions (to_f32, the Q8_0/F16/BF16 quantizers) must be bit-identical to the reference:
 *     they are single roundings, so there is no excuse for any difference.
 *   - Integer dot products (Q8_0, Q4_0) with power-of-two scales are exact in float, so they must
 *     equal the exact int64 result; with random scales they must be within a rigorous rounding
 *     bound of the double-precision sum of block terms.
 *   - Float dot products must be within a rigorous bound of a double-precision dot, and a one-hot
 *     weight row must give exactly w[k] * x[k] at every position k: that pins down tails, lane
 *     order and off-by-one loads far more sharply than any tolerance. Inputs are followed by NaN
 *     guard values, so a kernel reading past n poisons its result.
 * Sizes cover one block, odd block counts, the 4- and 2-block unrolls of each kernel, and (for
 * f32 kernels) every tail length 0..17 past the vector widths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- error budgets -------------- */

/* Unit roundoff of f32. */
#define U32 (0x1p-24)
/* Float dot products of n terms summed in at least 8 parallel lanes, then a reduction tree:
 * |err| <= (n / 8 + 8) * u * sum|w x| (each lane adds <= n/8 terms, <= 8 reduction steps; the
 * reference's sequential sum obeys the weaker n * u). A missing or doubled element costs ~1/n
 * of sum|w x|, far above this for every n tested. */
#define F32_DOT_BUDGET(n) (((double)(n) / 8.0 + 8.0) * U32)
#define REF_DOT_BUDGET(n) (((double)(n) + 2.0) * U32)
/* Q8_0/Q4_0 dot of nb blocks: each block term has the scale product rounding and one FMA; the
 * accumulation adds <= nb terms per lane: |err| <= (nb + 10) * 2u * sum_b |d_w d_x| sum_i |w_i x_i|. */
#define QDOT_BUDGET(nb) (((double)(nb) + 10.0) * 2.0 * U32)
/* axpy: the reference rounds a*x then the sum (<= 2u), FMA rounds once. */
#define AXPY_BUDGET (2.0 * U32)

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

enum { NMAX = 4224, GUARD = 64 };

/* Buffers big enough for NMAX elements of any type plus a guard zone. */
typedef struct bufs {
    float *w, *x, *y, *y2;
    uint8_t *wq, *xq, *q1, *q2;
} bufs;

static bufs bufs_new(void) {
    bufs b;
    b.w = malloc((NMAX + GUARD) * sizeof(float));
    b.x = malloc((NMAX + GUARD) * sizeof(float));
    b.y = malloc((NMAX + GUARD) * sizeof(float));
    b.y2 = malloc((NMAX + GUARD) * sizeof(float));
    b.wq = malloc((NMAX + GUARD) * 4);
    b.xq = malloc((NMAX + GUARD) * 4);
    b.q1 = malloc((NMAX + GUARD) * 4);
    b.q2 = malloc((NMAX + GUARD) * 4);
    return b;
}

static void bufs_free(bufs *b) {
    free(b->w);
    free(b->x);
    free(b->y);
    free(b->y2);
    free(b->wq);
    free(b->xq);
    free(b->q1);
    free(b->q2);
}

/* NaN guards after n floats / n 16-bit values: anything that reads them turns the result NaN. */
static void guard_f32(float *p, int64_t n) {
    for (int i = 0; i < GUARD; i++) p[n + i] = NAN;
}
static void guard_u16(void *p, int64_t n) {
    uint16_t *h = p;
    for (int i = 0; i < GUARD; i++) h[n + i] = 0x7e00; /* NaN in both f16 and bf16 */
}

static const char *const simd_isas[] = {"avx2", "avx512"};
enum { N_SIMD = 2 };

/* The SIMD table for isa, or NULL with a printed skip message. */
static const mn_kernels *simd_or_skip(int i) {
    const mn_kernels *k = mn_kernels_for_isa(simd_isas[i]);
    if (!k) printf("# skipped %s: this CPU lacks it\n", simd_isas[i]);
    return k;
}

static int any_simd(void) {
    for (int i = 0; i < N_SIMD; i++) {
        if (mn_kernels_for_isa(simd_isas[i])) return 1;
    }
    return 0;
}

static const int64_t f32_sizes[] = {0,  1,  2,  3,  5,   7,   8,   9,   15,  16,  17,   31,   32,   33,  47,
                                    48, 63, 64, 65, 79,  80,  96,  100, 127, 128, 129,  255,  256,  257, 1000,
                                    1024, 4095, 4096, 4097, 4111, 4128, 4131, 4160};
static const int64_t q_sizes[] = {32, 64, 96, 128, 160, 192, 224, 256, 288, 1024, 4096, 4128, 4160, 4192};
#define N_F32_SIZES ((int)(sizeof f32_sizes / sizeof f32_sizes[0]))
#define N_Q_SIZES ((int)(sizeof q_sizes / sizeof q_sizes[0]))

/* ---------------------------------------------------------------- f32 / f16 / bf16 dots ------ */

/* Weight row of type t (F32, F16 or BF16) from f32 values, NaN-guarded. */
static void make_float_row(int32_t t, const float *src, void *dst, int64_t n) {
    if (t == MN_TYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
        guard_f32(dst, n);
    } else {
        mn_type_get(t)->from_f32(src, dst, n);
        guard_u16(dst, n);
    }
}

static void check_float_dot(const mn_kernels *k, int32_t t, bufs *b, uint64_t *s) {
    const mn_type_traits *tr = mn_type_get(t);
    for (int is = 0; is < N_F32_SIZES; is++) {
        const int64_t n = f32_sizes[is];
        for (int64_t i = 0; i < n; i++) {
            b->w[i] = rng_gauss(s);
            b->x[i] = rng_gauss(s);
        }
        guard_f32(b->x, n);
        make_float_row(t, b->w, b->wq, n);
        tr->to_f32(b->wq, b->y, n); /* the weights as the kernel sees them */
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)b->y[i] * b->x[i];
            mag += fabs((double)b->y[i] * b->x[i]);
        }
        float got = -1, want = -1;
        k->vec_dot[t](n, b->wq, b->x, &got);
        tr->vec_dot(n, b->wq, b->x, &want);
        if (!(fabs(got - ref) <= F32_DOT_BUDGET(n) * mag)) {
            fail_msg("%s %s n=%lld: got %.9g double %.9g (err %g > %g)", k->isa, tr->name, (long long)n, got,
                     ref, fabs(got - ref), F32_DOT_BUDGET(n) * mag);
        }
        if (!(fabs(want - ref) <= REF_DOT_BUDGET(n) * mag)) fail_msg("reference %s n=%lld", tr->name, (long long)n);

        /* one-hot rows: exactly w[k] * x[k] */
        const int64_t step = n <= 300 ? 1 : 97;
        for (int64_t kk = 0; kk < n; kk += step) {
            memset(b->y2, 0, (size_t)n * 4);
            b->y2[kk] = b->w[kk];
            make_float_row(t, b->y2, b->wq, n);
            tr->to_f32(b->wq, b->y, n);
            const float exact = b->y[kk] * b->x[kk];
            k->vec_dot[t](n, b->wq, b->x, &got);
            if (got != exact) {
                fail_msg("%s %s n=%lld one-hot at %lld: %.9g != %.9g", k->isa, tr->name, (long long)n,
                         (long long)kk, got, exact);
            }
        }
    }
}

static void test_float_dots(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 101;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        check_float_dot(k, MN_TYPE_F32, &b, &s);
        check_float_dot(k, MN_TYPE_F16, &b, &s);
        check_float_dot(k, MN_TYPE_BF16, &b, &s);
    }
    bufs_free(&b);
}

static void test_dot_axpy_f32(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 102;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        for (int is = 0; is < N_F32_SIZES; is++) {
            const int64_t n = f32_sizes[is];
            for (int64_t j = 0; j < n; j++) {
                b.x[j] = rng_gauss(&s);
                b.y[j] = rng_gauss(&s);
            }
            guard_f32(b.x, n);
            guard_f32(b.y, n);
            double ref = 0, mag = 0;
            for (int64_t j = 0; j < n; j++) {
                ref += (double)b.x[j] * b.y[j];
                mag += fabs((double)b.x[j] * b.y[j]);
            }
            const float got = k->dot_f32(n, b.x, b.y);
            if (!(fabs(got - ref) <= F32_DOT_BUDGET(n) * mag)) {
                fail_msg("%s dot_f32 n=%lld: %.9g vs %.9g", k->isa, (long long)n, got, ref);
            }

            /* axpy: every element, and nothing past n is written */
            const float a = rng_gauss(&s);
            memcpy(b.y2, b.y, (size_t)(n + GUARD) * 4);
            k->axpy_f32(n, a, b.x, b.y2);
            for (int64_t j = 0; j < n; j++) {
                const double want = (double)b.y[j] + (double)a * b.x[j];
                const double bound = AXPY_BUDGET * (fabs(b.y[j]) + fabs((double)a * b.x[j]));
                if (!(fabs(b.y2[j] - want) <= bound)) fail_msg("%s axpy n=%lld at %lld", k->isa, (long long)n, (long long)j);
            }
            for (int j = 0; j < GUARD; j++) assert_true(isnan(b.y2[n + j]));

            /* aliasing x == y: y = y + a*y */
            memcpy(b.y2, b.y, (size_t)n * 4);
            k->axpy_f32(n, a, b.y2, b.y2);
            for (int64_t j = 0; j < n; j++) {
                const double want = (double)b.y[j] * (1.0 + a);
                assert_true(fabs(b.y2[j] - want) <= AXPY_BUDGET * (fabs(b.y[j]) + fabs((double)a * b.y[j])));
            }
        }
    }
    bufs_free(&b);
}

/* ---------------------------------------------------------------- Q8_0 / Q4_0 dots ----------- */

/* Exact test: all scales 1.0 (f16 0x3c00), so every partial sum is an integer below 2^24 and
 * any summation order gives the exact int64 result. */
static void test_quant_dots_exact(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 103;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        for (int is = 0; is < N_Q_SIZES; is++) {
            const int64_t n = q_sizes[is], nb = n / 32;
            /* full int8 range (weights may even be -128) when sum|w x| stays below 2^24 */
            const int xr = n <= 1024 ? 127 : 31;
            mn_block_q8_0 *w8 = (mn_block_q8_0 *)b.wq, *x8 = (mn_block_q8_0 *)b.xq;
            mn_block_q4_0 *w4 = (mn_block_q4_0 *)b.q1;
            int64_t exact8 = 0, exact4 = 0, mag8 = 0, mag4 = 0;
            for (int64_t ib = 0; ib < nb; ib++) {
                w8[ib].d = x8[ib].d = w4[ib].d = 0x3c00;
                for (int j = 0; j < 32; j++) {
                    w8[ib].qs[j] = (int8_t)rng_int(&s, -128, 127);
                    x8[ib].qs[j] = (int8_t)rng_int(&s, -xr, xr);
                }
                for (int j = 0; j < 16; j++) w4[ib].qs[j] = (uint8_t)rng_next(&s);
                for (int j = 0; j < 32; j++) {
                    const int64_t wv = w8[ib].qs[j], xv = x8[ib].qs[j];
                    const int64_t w4v = (j < 16 ? (w4[ib].qs[j] & 15) : (w4[ib].qs[j - 16] >> 4)) - 8;
                    exact8 += wv * xv;
                    mag8 += llabs(wv * xv);
                    exact4 += w4v * xv;
                    mag4 += llabs(w4v * xv);
                }
            }
            assert_true(mag8 < (1 << 24) && mag4 < (1 << 24)); /* the premise of exactness */
            float got8 = -1, got4 = -1, ref8 = -1, ref4 = -1;
            k->vec_dot[MN_TYPE_Q8_0](n, w8, x8, &got8);
            k->vec_dot[MN_TYPE_Q4_0](n, w4, x8, &got4);
            mn_type_get(MN_TYPE_Q8_0)->vec_dot(n, w8, x8, &ref8);
            mn_type_get(MN_TYPE_Q4_0)->vec_dot(n, w4, x8, &ref4);
            if (got8 != (float)exact8 || ref8 != (float)exact8) {
                fail_msg("%s q8_0 n=%lld: %.1f ref %.1f exact %lld", k->isa, (long long)n, got8, ref8, (long long)exact8);
            }
            if (got4 != (float)exact4 || ref4 != (float)exact4) {
                fail_msg("%s q4_0 n=%lld: %.1f ref %.1f exact %lld", k->isa, (long long)n, got4, ref4, (long long)exact4);
            }
        }
        /* extremes: every pair at the largest magnitude with one sign (the int16 pair sums of
         * vpmaddubsw reach 2 * 128 * 127 = 32512, just under saturation) */
        mn_block_q8_0 w8[4], x8[4];
        for (int ib = 0; ib < 4; ib++) {
            w8[ib].d = x8[ib].d = 0x3c00;
            for (int j = 0; j < 32; j++) {
                w8[ib].qs[j] = (int8_t)((ib & 1) ? 127 : -128);
                x8[ib].qs[j] = (int8_t)((ib & 1) ? 127 : -127);
            }
        }
        float got = 0;
        k->vec_dot[MN_TYPE_Q8_0](128, w8, x8, &got);
        assert_true(got == (float)(64 * 128 * 127 + 64 * 127 * 127));
        mn_block_q4_0 w4[4];
        for (int ib = 0; ib < 4; ib++) {
            w4[ib].d = 0x3c00;
            memset(w4[ib].qs, (ib & 1) ? 0xff : 0x00, 16); /* weights 7 or -8 */
        }
        k->vec_dot[MN_TYPE_Q4_0](128, w4, x8, &got);
        assert_true(got == (float)(64 * 8 * 127 + 64 * 7 * 127));
    }
    bufs_free(&b);
}

/* Random data through the real quantizers, random scales: within QDOT_BUDGET of the double sum. */
static void test_quant_dots_random(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 104;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        for (int rep = 0; rep < 4; rep++) {
            for (int is = 0; is < N_Q_SIZES; is++) {
                const int64_t n = q_sizes[is], nb = n / 32;
                for (int64_t j = 0; j < n; j++) {
                    b.w[j] = rng_gauss(&s) * (rep == 1 ? 1e-3f : 1.0f);
                    b.x[j] = rng_gauss(&s) * (rep == 2 ? 300.0f : 1.0f);
                }
                if (rep == 3) b.x[n / 2] = 1e4f; /* an outlier activation */
                mn_type_get(MN_TYPE_Q8_0)->from_f32(b.w, b.wq, n);
                mn_type_get(MN_TYPE_Q4_0)->from_f32(b.w, b.q1, n);
                mn_type_get(MN_TYPE_Q8_0)->from_f32(b.x, b.xq, n);
                const mn_block_q8_0 *w8 = (const mn_block_q8_0 *)b.wq, *x8 = (const mn_block_q8_0 *)b.xq;
                const mn_block_q4_0 *w4 = (const mn_block_q4_0 *)b.q1;
                double ref8 = 0, ref4 = 0, mag8 = 0, mag4 = 0;
                for (int64_t ib = 0; ib < nb; ib++) {
                    const double dx = mn_f16_to_f32(x8[ib].d);
                    const double d8 = mn_f16_to_f32(w8[ib].d) * dx, d4 = mn_f16_to_f32(w4[ib].d) * dx;
                    int64_t s8 = 0, s4 = 0, a8 = 0, a4 = 0;
                    for (int j = 0; j < 32; j++) {
                        const int64_t xv = x8[ib].qs[j];
                        const int64_t w4v = (j < 16 ? (w4[ib].qs[j] & 15) : (w4[ib].qs[j - 16] >> 4)) - 8;
                        s8 += w8[ib].qs[j] * xv;
                        a8 += llabs(w8[ib].qs[j] * xv);
                        s4 += w4v * xv;
                        a4 += llabs(w4v * xv);
                    }
                    ref8 += (double)s8 * d8;
                    mag8 += (double)a8 * fabs(d8);
                    ref4 += (double)s4 * d4;
                    mag4 += (double)a4 * fabs(d4);
                }
                float got8, got4;
                k->vec_dot[MN_TYPE_Q8_0](n, b.wq, b.xq, &got8);
                k->vec_dot[MN_TYPE_Q4_0](n, b.q1, b.xq, &got4);
                if (!(fabs(got8 - ref8) <= QDOT_BUDGET(nb) * mag8)) {
                    fail_msg("%s q8_0 n=%lld rep %d: %.9g vs %.9g (err %g > %g)", k->isa, (long long)n, rep, got8,
                             ref8, fabs(got8 - ref8), QDOT_BUDGET(nb) * mag8);
                }
                if (!(fabs(got4 - ref4) <= QDOT_BUDGET(nb) * mag4)) {
                    fail_msg("%s q4_0 n=%lld rep %d: %.9g vs %.9g (err %g > %g)", k->isa, (long long)n, rep, got4,
                             ref4, fabs(got4 - ref4), QDOT_BUDGET(nb) * mag4);
                }
            }
        }
    }
    bufs_free(&b);
}

/* ---------------------------------------------------------------- conversions ---------------- */

/* Q8_0 activation quantizer: bit-identical to the reference, including the awkward inputs. */
static void test_quantize_q8_0_bit_exact(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 105;
    const int64_t n = 4096; /* 128 blocks, each filled by a different recipe */
    for (int64_t ib = 0; ib < n / 32; ib++) {
        float *x = b.x + ib * 32;
        const int kind = (int)(ib % 10);
        for (int j = 0; j < 32; j++) {
            switch (kind) {
            case 0: x[j] = rng_gauss(&s); break;
            case 1: x[j] = (float)rng_int(&s, -127, 126) + 0.5f; break; /* amax set below: ties */
            case 2: x[j] = 0.0f; break;
            case 3: x[j] = (j & 1) ? -0.0f : 0.0f; break;
            case 4: x[j] = rng_gauss(&s) * 1e-40f; break; /* subnormal amax: 1/d overflows */
            case 5: x[j] = rng_gauss(&s) * 1e37f; break;
            case 6: x[j] = j == (int)(ib / 10) % 32 ? NAN : rng_gauss(&s); break; /* NaN anywhere */
            case 7: x[j] = j == 3 ? -INFINITY : rng_gauss(&s); break;
            case 8: x[j] = ffrom((uint32_t)rng_next(&s)); break; /* any bits */
            default: x[j] = (float)rng_int(&s, -3, 3) * 0.25f; break;
            }
        }
        if (kind == 1) x[5] = 127.0f; /* d = 1 exactly: x.5 values are exact ties */
    }
    mn_type_get(MN_TYPE_Q8_0)->from_f32(b.x, b.q1, n);
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        memset(b.q2, 0xcd, (size_t)n / 32 * 34 + GUARD);
        k->quantize[MN_TYPE_Q8_0](b.x, b.q2, n);
        for (int64_t ib = 0; ib < n / 32; ib++) {
            if (memcmp(b.q1 + ib * 34, b.q2 + ib * 34, 34) != 0) {
                fail_msg("%s q8_0 quantize differs from reference in block %lld (recipe %d)", k->isa,
                         (long long)ib, (int)(ib % 10));
            }
        }
        for (int j = 0; j < GUARD; j++) assert_int_equal(b.q2[n / 32 * 34 + j], 0xcd);
        /* and the other tail lengths: 1 and 3 blocks */
        k->quantize[MN_TYPE_Q8_0](b.x + 32, b.q2, 96);
        assert_memory_equal(b.q2, b.q1 + 34, 3 * 34);
    }
    bufs_free(&b);
}

static void test_quantize_f16_bf16_bit_exact(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 106;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        for (int is = 0; is < N_F32_SIZES; is++) {
            const int64_t n = f32_sizes[is];
            for (int64_t j = 0; j < n; j++) {
                const uint32_t u = (uint32_t)rng_next(&s);
                /* half random bits (NaN, inf, subnormal...), half near the f16 range */
                b.x[j] = (j & 1) ? ffrom(u) : ffrom((u & 0x80ffffffu) | ((uint32_t)(100 + (u >> 24) % 44) << 23));
            }
            const int32_t types[2] = {MN_TYPE_F16, MN_TYPE_BF16};
            for (int t = 0; t < 2; t++) {
                mn_type_get(types[t])->from_f32(b.x, b.q1, n);
                memset(b.q2, 0xcd, (size_t)(n + GUARD) * 2);
                k->quantize[types[t]](b.x, b.q2, n);
                if (memcmp(b.q1, b.q2, (size_t)n * 2) != 0) {
                    fail_msg("%s %s quantize n=%lld differs", k->isa, mn_type_get(types[t])->name, (long long)n);
                }
                for (int j = 0; j < 2 * GUARD; j++) assert_int_equal(b.q2[n * 2 + j], 0xcd);
            }
        }
    }
    bufs_free(&b);
}

static void check_to_f32_same(const mn_kernels *k, int32_t t, const void *src, int64_t n, bufs *b) {
    mn_type_get(t)->to_f32(src, b->y, n);
    memset(b->y2, 0xcd, (size_t)(n + GUARD) * 4);
    k->to_f32[t](src, b->y2, n);
    for (int64_t j = 0; j < n; j++) {
        if (fbits(b->y[j]) != fbits(b->y2[j])) {
            fail_msg("%s %s to_f32 n=%lld at %lld: %08x vs ref %08x", k->isa, mn_type_get(t)->name, (long long)n,
                     (long long)j, fbits(b->y2[j]), fbits(b->y[j]));
        }
    }
    const uint8_t *tail = (const uint8_t *)(b->y2 + n);
    for (int j = 0; j < GUARD * 4; j++) assert_int_equal(tail[j], 0xcd);
}

static void test_to_f32_bit_exact(void **state) {
    (void)state;
    if (!any_simd()) {
        printf("# skipped: no SIMD table on this CPU\n");
        skip();
    }
    bufs b = bufs_new();
    uint64_t s = 107;
    for (int i = 0; i < N_SIMD; i++) {
        const mn_kernels *k = simd_or_skip(i);
        if (!k) continue;
        /* f16 and bf16: every bit pattern, in chunks of varying length (tails) */
        uint16_t *h = (uint16_t *)b.wq;
        for (int32_t t = 0; t < 2; t++) {
            const int32_t type = t ? MN_TYPE_BF16 : MN_TYPE_F16;
            uint32_t next = 0;
            for (int chunk = 0; next < 65536; chunk++) {
                int64_t n = f32_sizes[chunk % N_F32_SIZES];
                if (n > 65536 - (int64_t)next) n = 65536 - (int64_t)next;
                for (int64_t j = 0; j < n; j++) h[j] = (uint16_t)(next + j);
                check_to_f32_same(k, type, h, n, &b);
                next += (uint32_t)n;
            }
        }
        /* q8_0 / q4_0: random bytes with random finite scales (subnormal, normal, negative) */
        for (int is = 0; is < N_Q_SIZES; is++) {
            const int64_t n = q_sizes[is];
            for (int64_t j = 0; j < n / 32 * 34; j++) b.wq[j] = (uint8_t)rng_next(&s);
            for (int64_t j = 0; j < n / 32 * 18; j++) b.q1[j] = (uint8_t)rng_next(&s);
            for (int64_t ib = 0; ib < n / 32; ib++) {
                const uint16_t d = (uint16_t)(rng_next(&s) & 0xfbff); /* exponent < 31: finite */
                memcpy(b.wq + ib * 34, &d, 2);
                memcpy(b.q1 + ib * 18, &d, 2);
            }
            check_to_f32_same(k, MN_TYPE_Q8_0, b.wq, n, &b);
            check_to_f32_same(k, MN_TYPE_Q4_0, b.q1, n, &b);
        }
        /* f32: a copy */
        for (int64_t j = 0; j < 1000; j++) b.x[j] = rng_gauss(&s);
        check_to_f32_same(k, MN_TYPE_F32, b.x, 1000, &b);
    }
    bufs_free(&b);
}

/* Quantized rows at odd addresses (a GGUF with general.alignment = 1 can put them there) give the
 * same bits as aligned ones, in every table; under UBSan this also proves no misaligned access. */
static void test_unaligned_blocks(void **state) {
    (void)state;
    bufs b = bufs_new();
    uint64_t s = 108;
    const int64_t n = 4128; /* 129 blocks: main loops and leftovers */
    for (int64_t j = 0; j < n; j++) {
        b.w[j] = rng_gauss(&s);
        b.x[j] = rng_gauss(&s);
    }
    const size_t r8 = (size_t)mn_type_row_size(MN_TYPE_Q8_0, n), r4 = (size_t)mn_type_row_size(MN_TYPE_Q4_0, n);
    uint8_t *w8 = b.wq + 1, *w4 = b.q1 + 3, *x8 = b.xq + 1;
    mn_type_get(MN_TYPE_Q8_0)->from_f32(b.w, b.q2, n);
    memcpy(w8, b.q2, r8);
    mn_type_get(MN_TYPE_Q4_0)->from_f32(b.w, b.q2, n);
    memcpy(w4, b.q2, r4);
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = mn_kernels_for_isa(names[i]);
        if (!k) {
            printf("# skipped %s: this CPU lacks it\n", names[i]);
            continue;
        }
        k->quantize[MN_TYPE_Q8_0](b.x, x8, n); /* odd destination */
        mn_type_get(MN_TYPE_Q8_0)->from_f32(b.x, b.q2, n);
        assert_memory_equal(x8, b.q2, r8);
        float odd8, odd4, al8, al4;
        k->vec_dot[MN_TYPE_Q8_0](n, w8, x8, &odd8);
        k->vec_dot[MN_TYPE_Q4_0](n, w4, x8, &odd4);
        uint8_t *aw = malloc(r8), *ax = malloc(r8);
        memcpy(aw, w8, r8);
        memcpy(ax, x8, r8);
        k->vec_dot[MN_TYPE_Q8_0](n, aw, ax, &al8);
        memcpy(aw, w4, r4);
        k->vec_dot[MN_TYPE_Q4_0](n, aw, ax, &al4);
        assert_true(fbits(odd8) == fbits(al8) && fbits(odd4) == fbits(al4));
        k->to_f32[MN_TYPE_Q4_0](w4, b.y, n);
        k->to_f32[MN_TYPE_Q4_0](aw, b.y2, n);
        assert_memory_equal(b.y, b.y2, (size_t)n * 4);
        k->to_f32[MN_TYPE_Q8_0](w8, b.y, n);
        mn_type_get(MN_TYPE_Q8_0)->to_f32(w8, b.y2, n);
        assert_memory_equal(b.y, b.y2, (size_t)n * 4);
        free(aw);
        free(ax);
    }
    bufs_free(&b);
}

/* Every table fills the same entries as the reference: nothing silently missing. */
static void test_tables_complete(void **state) {
    (void)state;
    const mn_kernels *ref = mn_kernels_for_isa("scalar");
    assert_non_null(ref);
    assert_string_equal(ref->isa, "scalar");
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const mn_kernels *k = mn_kernels_for_isa(names[i]);
        if (!k) {
            printf("# skipped %s: this CPU lacks it\n", names[i]);
            continue;
        }
        assert_string_equal(k->isa, names[i]);
        assert_non_null(k->axpy_f32);
        assert_non_null(k->dot_f32);
        for (int32_t t = 0; t < MN_TYPE_COUNT; t++) {
            const mn_type_traits *tr = mn_type_get(t);
            const int computable = tr && tr->vec_dot;
            assert_int_equal(k->vec_dot[t] != NULL, computable);
            assert_int_equal(k->to_f32[t] != NULL, computable);
            if (computable) assert_non_null(k->quantize[tr->vec_dot_type]);
        }
        assert_non_null(k->quantize[MN_TYPE_F16]);
        assert_non_null(k->quantize[MN_TYPE_BF16]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_complete),
        cmocka_unit_test(test_float_dots),
        cmocka_unit_test(test_dot_axpy_f32),
        cmocka_unit_test(test_quant_dots_exact),
        cmocka_unit_test(test_quant_dots_random),
        cmocka_unit_test(test_quantize_q8_0_bit_exact),
        cmocka_unit_test(test_quantize_f16_bf16_bit_exact),
        cmocka_unit_test(test_to_f32_bit_exact),
        cmocka_unit_test(test_unaligned_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
