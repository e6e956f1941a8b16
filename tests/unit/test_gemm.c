/*
 * test_gemm.c: every kernel table's gemm (batched vec_dot, kernels/kernels.h) against a
 * double-precision oracle, over shapes chosen to hit every tail of the SIMD kernels: rows not a
 * multiple of the 16/32-row panels, token counts not a multiple of the 4-token microtile, K not
 * a multiple of the 16-block slice, token counts past the 256-token tile, padded and odd strides.
 *
 * How results are judged (the budgets are those of tests/unit/test_kernels.c, for the same reason:
 * gemm must agree with vec_dot up to float summation order):
 *   - Exact data (integer-valued floats; quant blocks with scale 1.0): every partial sum is an
 *     integer below 2^24, so any summation order gives the exact result, and gemm must equal it
 *     bit for bit. This pins down lane order, tails and off-by-one loads.
 *   - Random data through the reference quantizers: within QDOT_BUDGET(n_blocks) (quantized) or
 *     F32_DOT_BUDGET(n) (float) of the double sum, relative to the sum of |terms|.
 *   - Chunk invariance: the same product computed as three row ranges (what threads claiming
 *     chunks of rows do) is bit-identical to one call. (Splitting tokens may change the rounding:
 *     the kernels choose their method by the number of tokens.)
 *   - y is written only at [t * y_stride + r], r < n_rows: the padding keeps its sentinel.
 * K-quants (Q4_K, Q5_K, Q6_K x Q8_K) are judged the same way, with the oracle decoding the blocks
 * independently of the kernels (from the layout comment in kernels/blocks.h) and the budget of
 * tests/unit/test_kquants.c; random data is also compared with the scalar table's gemm (the spec)
 * within the sum of both budgets. Their shapes add token counts 1..3 (the decode path), 4..40
 * (every microtile tail, more than one 4-token group) and odd row counts; below 4 tokens their
 * results must equal the table's vec_dot bit for bit (what the kernels promise for decode).
 * Buffers are allocated at their exact sizes, so the ASan build catches any read past a matrix.
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
/* float dot of n terms: >= 8 parallel lanes, then a reduction tree (see test_kernels.c) */
#define F32_DOT_BUDGET(n) (((double)(n) / 8.0 + 8.0) * U32)
/* Q8_0/Q4_0 dot of nb blocks: per block the scale product rounds once and the FMA once */
#define QDOT_BUDGET(nb) (((double)(nb) + 10.0) * 2.0 * U32)
/* K-quant dot of nb super-blocks, relative to M = sum of |every product term| (test_kquants.c):
 * per super-block the scale products, the int -> float conversions of partial sums >= 2^24, the
 * FMAs and a subtraction round; then the accumulation and a horizontal sum. */
#define KDOT_BUDGET(nb) (((double)(nb) + 10.0) * 2.0 * U32)

static const float SENTINEL = -1234.5f;

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

static const char *const isas[] = {"scalar", "avx2", "avx512"};
enum { N_ISAS = 3 };
static const int32_t types[] = {MN_TYPE_F32,  MN_TYPE_F16,  MN_TYPE_BF16, MN_TYPE_Q8_0,
                                MN_TYPE_Q4_0, MN_TYPE_Q4_K, MN_TYPE_Q5_K, MN_TYPE_Q6_K};
enum { N_TYPES = 8 };

static int is_quant(int32_t t) { return t == MN_TYPE_Q8_0 || t == MN_TYPE_Q4_0; }
static int is_kquant(int32_t t) { return t == MN_TYPE_Q4_K || t == MN_TYPE_Q5_K || t == MN_TYPE_Q6_K; }

/* One product's operands. w: n_rows rows of type `type`, w_stride bytes apart; x: n_tok rows of
 * the vec_dot_type, x_stride apart; wf/xf: the same values as f32 (what the kernel multiplies);
 * for quantized types also the per-block scales (wd, xd) and integer values (wq, xq). */
typedef struct problem {
    int32_t type;
    int64_t n, n_rows, n_tok;
    size_t w_stride, x_stride;
    int64_t y_stride;
    uint8_t *w, *x;
    int8_t *wq, *xq;  /* [rows][n], [tok][n] integer values (quantized types) */
    float *wd, *xd;   /* [rows][nb], [tok][nb] scales (quantized types) */
    float *wf, *xf;   /* [rows][n], [tok][n] values (float types) */
} problem;

/* Integer-valued data makes every order of summation exact (see the file comment). */
static void fill_row_float(int32_t type, int exact, uint64_t *s, float *vals, void *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) vals[i] = exact ? (float)rng_int(s, -8, 8) : rng_gauss(s);
    if (type == MN_TYPE_F32) {
        memcpy(dst, vals, (size_t)n * 4);
    } else {
        mn_type_get(type)->from_f32(vals, dst, n);
        mn_type_get(type)->to_f32(dst, vals, n); /* the values as stored */
    }
}

/* A Q8_0 (is_w4 = 0) or Q4_0 row; records integer values and scales. */
static void fill_row_quant(int is_w4, int exact, int is_x, uint64_t *s, void *dst, int8_t *q, float *d, int64_t n) {
    const int64_t nb = n / 32;
    if (exact) { /* scale 1.0, integers in the type's full range (x: the quantizer's [-127, 127]) */
        for (int64_t b = 0; b < nb; b++) {
            if (is_w4) {
                mn_block_q4_0 *blk = (mn_block_q4_0 *)dst + b;
                blk->d = 0x3c00;
                for (int j = 0; j < 16; j++) blk->qs[j] = (uint8_t)rng_next(s);
            } else {
                mn_block_q8_0 *blk = (mn_block_q8_0 *)dst + b;
                blk->d = 0x3c00;
                for (int j = 0; j < 32; j++) blk->qs[j] = (int8_t)rng_int(s, is_x ? -127 : -128, 127);
            }
        }
    } else {
        float *v = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) v[i] = rng_gauss(s) * (rng_next(s) % 16 == 0 ? 8.0f : 1.0f);
        mn_type_get(is_w4 ? MN_TYPE_Q4_0 : MN_TYPE_Q8_0)->from_f32(v, dst, n);
        free(v);
    }
    for (int64_t b = 0; b < nb; b++) {
        if (is_w4) {
            const mn_block_q4_0 *blk = (const mn_block_q4_0 *)dst + b;
            d[b] = mn_f16_to_f32(blk->d);
            for (int j = 0; j < 16; j++) {
                q[b * 32 + j] = (int8_t)((blk->qs[j] & 15) - 8);
                q[b * 32 + j + 16] = (int8_t)((blk->qs[j] >> 4) - 8);
            }
        } else {
            const mn_block_q8_0 *blk = (const mn_block_q8_0 *)dst + b;
            d[b] = mn_f16_to_f32(blk->d);
            for (int j = 0; j < 32; j++) q[b * 32 + j] = blk->qs[j];
        }
    }
}

/* ---------------------------------------------------------------- K-quant data and oracle ---- */

/* Written from the layout comment in blocks.h (as in test_kquants.c, not from the kernels): per
 * super-block the integer parts of every weight, w_e = d * scale[e] * code[e] - dmin * min[e]. */
typedef struct kdecoded {
    double d, dmin;
    int scale[256]; /* sub-block scale of each weight (Q6_K: signed) */
    int min[256];   /* sub-block min of each weight (0 for Q6_K) */
    int code[256];  /* Q4_K 0..15, Q5_K 0..31, Q6_K code - 32 (-32..31) */
} kdecoded;

static void kdecode(int32_t t, const void *blk, kdecoded *o) {
    if (t == MN_TYPE_Q6_K) {
        const mn_block_q6_K *b = blk;
        o->d = mn_f16_to_f32(b->d);
        o->dmin = 0;
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int e = 128 * h + l, hb = b->qh[32 * h + l];
                const int lo0 = b->ql[64 * h + l], lo1 = b->ql[64 * h + 32 + l];
                o->code[e] = ((lo0 & 15) | ((hb & 3) << 4)) - 32;
                o->code[e + 32] = ((lo1 & 15) | (((hb >> 2) & 3) << 4)) - 32;
                o->code[e + 64] = ((lo0 >> 4) | (((hb >> 4) & 3) << 4)) - 32;
                o->code[e + 96] = ((lo1 >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            }
        for (int e = 0; e < 256; e++) {
            o->scale[e] = b->scales[e / 16];
            o->min[e] = 0;
        }
        return;
    }
    const mn_block_q4_K *b4 = blk;
    const mn_block_q5_K *b5 = blk;
    const uint8_t *sc6 = t == MN_TYPE_Q4_K ? b4->scales : b5->scales;
    const uint8_t *qs = t == MN_TYPE_Q4_K ? b4->qs : b5->qs;
    o->d = mn_f16_to_f32(t == MN_TYPE_Q4_K ? b4->d : b5->d);
    o->dmin = mn_f16_to_f32(t == MN_TYPE_Q4_K ? b4->dmin : b5->dmin);
    int sc[8], m[8];
    for (int k = 0; k < 4; k++) {
        sc[k] = sc6[k] & 0x3f;
        m[k] = sc6[k + 4] & 0x3f;
        sc[k + 4] = (sc6[k + 8] & 0x0f) | ((sc6[k] >> 6) << 4);
        m[k + 4] = (sc6[k + 8] >> 4) | ((sc6[k + 4] >> 6) << 4);
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            const int e0 = 64 * c + l, e1 = 64 * c + 32 + l;
            o->code[e0] = qs[32 * c + l] & 15;
            o->code[e1] = qs[32 * c + l] >> 4;
            if (t == MN_TYPE_Q5_K) {
                o->code[e0] += ((b5->qh[l] >> (2 * c)) & 1) * 16;
                o->code[e1] += ((b5->qh[l] >> (2 * c + 1)) & 1) * 16;
            }
        }
    for (int e = 0; e < 256; e++) {
        o->scale[e] = sc[e / 32];
        o->min[e] = m[e / 32];
    }
}

/* The exact dot (double, from integer sums) of a K-quant row and a Q8_K row, and its magnitude
 * M = sum over weights of |d_x| (|d sc code x| + |dmin m x|); for Q6_K |code| + 32 (what the
 * kernels' un-offset partial sums can reach). */
static double kdot_exact(int32_t t, const uint8_t *w, const uint8_t *x, int64_t n, double *mag) {
    const size_t bs = (size_t)mn_type_get(t)->type_size;
    double sum = 0, m = 0;
    kdecoded dec;
    for (int64_t ib = 0; ib < n / 256; ib++) {
        mn_block_q8_K xb;
        memcpy(&xb, x + (size_t)ib * sizeof xb, sizeof xb);
        kdecode(t, w + (size_t)ib * bs, &dec);
        int64_t si = 0, smin = 0, ai = 0, amin = 0;
        for (int e = 0; e < 256; e++) {
            const int64_t xv = xb.qs[e];
            si += (int64_t)dec.scale[e] * dec.code[e] * xv;
            smin += (int64_t)dec.min[e] * xv;
            const int64_t ac = t == MN_TYPE_Q6_K ? llabs(dec.code[e]) + 32 : dec.code[e];
            ai += llabs(dec.scale[e] * ac * xv);
            amin += llabs(dec.min[e] * xv);
        }
        const double dx = xb.d;
        sum += dx * (dec.d * (double)si - dec.dmin * (double)smin);
        m += fabs(dx) * (fabs(dec.d) * (double)ai + fabs(dec.dmin) * (double)amin);
    }
    *mag = m;
    return sum;
}

/* A K-quant weight row (is_x = 0) or a Q8_K activation row. Exact data: scales 1.0, random codes
 * over the type's whole range, small sub-block scales and mins (so every sum stays far below
 * 2^24), quants in [-31, 31] with correct bsums. Random data: Gaussian values (one in 16 scaled
 * by 8) through the reference quantizers. */
static void fill_row_kquant(int32_t type, int exact, int is_x, uint64_t *s, uint8_t *dst, int64_t n) {
    const int64_t nb = n / 256;
    const int32_t t = is_x ? MN_TYPE_Q8_K : type;
    if (!exact) {
        float *v = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) v[i] = rng_gauss(s) * (rng_next(s) % 16 == 0 ? 8.0f : 1.0f);
        mn_type_get(t)->from_f32(v, dst, n);
        free(v);
        return;
    }
    const size_t bs = (size_t)mn_type_get(t)->type_size;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = dst + (size_t)b * bs;
        if (is_x) {
            mn_block_q8_K q;
            q.d = 1.0f;
            for (int i = 0; i < 256; i++) q.qs[i] = (int8_t)rng_int(s, -31, 31);
            for (int k = 0; k < 16; k++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += q.qs[16 * k + l];
                q.bsums[k] = (int16_t)sum;
            }
            memcpy(blk, &q, sizeof q);
            continue;
        }
        for (size_t i = 0; i < bs; i++) blk[i] = (uint8_t)rng_next(s); /* codes over the full range */
        if (type == MN_TYPE_Q6_K) {
            mn_block_q6_K *q = (mn_block_q6_K *)blk;
            q->d = 0x3c00;
            for (int k = 0; k < 16; k++) q->scales[k] = (int8_t)rng_int(s, -8, 7);
        } else {
            mn_block_q4_K *q = (mn_block_q4_K *)blk; /* d, dmin, scales: same offsets in Q5_K */
            q->d = q->dmin = 0x3c00;
            for (int k = 0; k < 12; k++) q->scales[k] &= 0x07 | (k >= 8 ? 0x70 : 0); /* scales, mins 0..7 */
        }
    }
}

static problem problem_new(int32_t type, int64_t n, int64_t n_rows, int64_t n_tok, int exact, uint64_t *s) {
    problem p;
    memset(&p, 0, sizeof p);
    p.type = type;
    p.n = n;
    p.n_rows = n_rows;
    p.n_tok = n_tok;
    const int32_t xt = mn_type_get(type)->vec_dot_type;
    const size_t w_row = (size_t)mn_type_row_size(type, n), x_row = (size_t)mn_type_row_size(xt, n);
    /* padding: quantized rows may sit at any byte; float rows keep their element alignment */
    const int q = is_quant(type) || is_kquant(type);
    const size_t w_unit = q ? 1 : (type == MN_TYPE_F32 ? 4 : 2), x_unit = q ? 1 : 4;
    p.w_stride = w_row + w_unit * (size_t)rng_int(s, 0, 3);
    p.x_stride = x_row + x_unit * (size_t)rng_int(s, 0, 3);
    p.y_stride = n_rows + rng_int(s, 0, 5);
    p.w = malloc(p.w_stride * (size_t)n_rows + 1);
    p.x = malloc(p.x_stride * (size_t)n_tok + 1);
    const int64_t nb = n / 32;
    if (is_kquant(type)) {
        for (int64_t r = 0; r < n_rows; r++) fill_row_kquant(type, exact, 0, s, p.w + (size_t)r * p.w_stride, n);
        for (int64_t t = 0; t < n_tok; t++) fill_row_kquant(type, exact, 1, s, p.x + (size_t)t * p.x_stride, n);
    } else if (is_quant(type)) {
        p.wq = malloc((size_t)(n_rows * n) + 1);
        p.xq = malloc((size_t)(n_tok * n) + 1);
        p.wd = malloc((size_t)(n_rows * nb) * sizeof(float) + 1);
        p.xd = malloc((size_t)(n_tok * nb) * sizeof(float) + 1);
        for (int64_t r = 0; r < n_rows; r++)
            fill_row_quant(type == MN_TYPE_Q4_0, exact, 0, s, p.w + (size_t)r * p.w_stride, p.wq + r * n, p.wd + r * nb, n);
        for (int64_t t = 0; t < n_tok; t++)
            fill_row_quant(0, exact, 1, s, p.x + (size_t)t * p.x_stride, p.xq + t * n, p.xd + t * nb, n);
    } else {
        p.wf = malloc((size_t)(n_rows * n) * sizeof(float) + 1);
        p.xf = malloc((size_t)(n_tok * n) * sizeof(float) + 1);
        for (int64_t r = 0; r < n_rows; r++) fill_row_float(type, exact, s, p.wf + r * n, p.w + (size_t)r * p.w_stride, n);
        for (int64_t t = 0; t < n_tok; t++)
            fill_row_float(MN_TYPE_F32, exact, s, p.xf + t * n, p.x + (size_t)t * p.x_stride, n);
    }
    return p;
}

static void problem_free(problem *p) {
    free(p->w);
    free(p->x);
    free(p->wq);
    free(p->xq);
    free(p->wd);
    free(p->xd);
    free(p->wf);
    free(p->xf);
}

/* The double-precision value of y[t][r] and the sum of |terms| it is judged against. */
static void oracle(const problem *p, int64_t r, int64_t t, double *val, double *mass) {
    double v = 0, m = 0;
    if (is_kquant(p->type)) {
        v = kdot_exact(p->type, p->w + (size_t)r * p->w_stride, p->x + (size_t)t * p->x_stride, p->n, &m);
    } else if (is_quant(p->type)) {
        const int64_t nb = p->n / 32;
        for (int64_t b = 0; b < nb; b++) {
            int64_t si = 0, sa = 0;
            for (int j = 0; j < 32; j++) {
                const int64_t prod = (int64_t)p->wq[r * p->n + b * 32 + j] * p->xq[t * p->n + b * 32 + j];
                si += prod;
                sa += prod < 0 ? -prod : prod;
            }
            const double d = (double)p->wd[r * nb + b] * p->xd[t * nb + b];
            v += (double)si * d;
            m += (double)sa * fabs(d);
        }
    } else {
        for (int64_t i = 0; i < p->n; i++) {
            const double prod = (double)p->wf[r * p->n + i] * p->xf[t * p->n + i];
            v += prod;
            m += fabs(prod);
        }
    }
    *val = v;
    *mass = m;
}

static float *y_new(const problem *p) {
    const size_t len = (size_t)(p->n_tok * p->y_stride);
    float *y = malloc(len * sizeof(float) + 1);
    for (size_t i = 0; i < len; i++) y[i] = SENTINEL;
    return y;
}

/* gemm over rows [r0, r1) x tokens [t0, t1) of p into y (the full-size output array) */
static void run_part(const mn_kernels *k, const problem *p, float *y, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    k->gemm[p->type](p->n, p->w + (size_t)r0 * p->w_stride, p->w_stride, r1 - r0, p->x + (size_t)t0 * p->x_stride,
                     p->x_stride, t1 - t0, y + t0 * p->y_stride + r0, p->y_stride);
}

/* Runs and judges one product; returns the number of failures (details printed). */
static int check(const mn_kernels *k, const problem *p, int exact, uint64_t *s) {
    const char *tname = mn_type_get(p->type)->name;
    float *y = y_new(p);
    run_part(k, p, y, 0, p->n_rows, 0, p->n_tok);
    int bad = 0;
    const double budget = is_kquant(p->type) ? KDOT_BUDGET(p->n / 256)
                          : is_quant(p->type) ? QDOT_BUDGET(p->n / 32)
                                              : F32_DOT_BUDGET(p->n);
    /* K-quants, random data, SIMD tables: also the scalar table's result (the spec) */
    float *y_ref = NULL;
    if (is_kquant(p->type) && !exact && strcmp(k->isa, "scalar") != 0) {
        y_ref = y_new(p);
        run_part(mn_kernels_for_isa("scalar"), p, y_ref, 0, p->n_rows, 0, p->n_tok);
    }
    for (int64_t t = 0; t < p->n_tok; t++) {
        for (int64_t r = 0; r < p->y_stride; r++) {
            const float got = y[t * p->y_stride + r];
            if (r >= p->n_rows) {
                if (memcmp(&got, &SENTINEL, sizeof got) != 0 && bad++ < 5)
                    printf("# %s %s: wrote padding y[%lld][%lld]\n", k->isa, tname, (long long)t, (long long)r);
                continue;
            }
            double val, mass;
            oracle(p, r, t, &val, &mass);
            if (exact && !(mass < 0x1p24)) { /* the premise of exactness, not the kernel, failed */
                if (bad++ < 5) printf("# test data too large for exact sums: %g\n", mass);
                continue;
            }
            int ok = exact ? (double)got == val : fabs((double)got - val) <= budget * mass;
            if (ok && y_ref && !(fabs((double)got - y_ref[t * p->y_stride + r]) <= 2.0 * budget * mass)) {
                ok = 0;
                printf("# (against the scalar gemm: %.9g)\n", y_ref[t * p->y_stride + r]);
            }
            if (!ok && bad++ < 5) {
                printf("# %s %s n=%lld rows=%lld tok=%lld: y[%lld][%lld] = %.9g, want %.9g (err %g, budget %g)\n",
                       k->isa, tname, (long long)p->n, (long long)p->n_rows, (long long)p->n_tok, (long long)t,
                       (long long)r, got, val, fabs(got - val), exact ? 0.0 : budget * mass);
            }
        }
    }
    /* K-quants, 1-3 tokens (decode): the kernels take one vec_dot per (token, row), bit for bit */
    if (is_kquant(p->type) && p->n_tok < 4) {
        for (int64_t t = 0; t < p->n_tok; t++)
            for (int64_t r = 0; r < p->n_rows; r++) {
                float want;
                k->vec_dot[p->type](p->n, p->w + (size_t)r * p->w_stride, p->x + (size_t)t * p->x_stride, &want);
                if (memcmp(&want, &y[t * p->y_stride + r], sizeof want) != 0 && bad++ < 5)
                    printf("# %s %s tok=%lld: y[%lld][%lld] = %.9g differs from vec_dot %.9g\n", k->isa, tname,
                           (long long)p->n_tok, (long long)t, (long long)r, y[t * p->y_stride + r], want);
            }
    }
    /* the same product as 3 row ranges split at random rows: bit-identical */
    int64_t rs1 = rng_int(s, 0, (int)p->n_rows), rs2 = rng_int(s, 0, (int)p->n_rows);
    if (rs1 > rs2) {
        const int64_t tmp = rs1;
        rs1 = rs2;
        rs2 = tmp;
    }
    float *y2 = y_new(p);
    run_part(k, p, y2, 0, rs1, 0, p->n_tok);
    run_part(k, p, y2, rs1, rs2, 0, p->n_tok);
    run_part(k, p, y2, rs2, p->n_rows, 0, p->n_tok);
    if (memcmp(y, y2, (size_t)(p->n_tok * p->y_stride) * sizeof(float)) != 0) {
        if (bad++ < 5)
            printf("# %s %s n=%lld rows=%lld tok=%lld: split at rows %lld, %lld changes the result\n", k->isa, tname,
                   (long long)p->n, (long long)p->n_rows, (long long)p->n_tok, (long long)rs1, (long long)rs2);
    }
    free(y);
    free(y2);
    free(y_ref);
    return bad;
}

/* ---------------------------------------------------------------- tests ---------------------- */

static const int64_t q_ns[] = {32, 96, 512, 544, 1056};
static const int64_t f_ns[] = {1, 5, 16, 17, 33, 100, 257, 1000};
static const int64_t rows_list[] = {1, 3, 16, 17, 31, 32, 33, 64, 75};
static const int64_t toks_list[] = {1, 2, 3, 4, 5, 7, 8, 13};
/* K-quants: n in whole super-blocks; token counts for the decode path and every microtile tail */
static const int64_t k_ns[] = {256, 512, 1280};
static const int64_t k_rows_list[] = {1, 3, 7, 16, 17, 31, 33, 75};
static const int64_t k_toks_list[] = {1, 2, 3, 4, 5, 6, 7, 9, 14, 23, 40};
#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* every table, every type, the grid of shapes above; exact or random data */
static void sweep(int exact, uint64_t seed) {
    uint64_t s = seed;
    int failures = 0, n_checked = 0;
    for (int i = 0; i < N_ISAS; i++) {
        const mn_kernels *k = mn_kernels_for_isa(isas[i]);
        if (!k) {
            printf("# skipped %s: this CPU lacks it\n", isas[i]);
            continue;
        }
        for (int ti = 0; ti < N_TYPES; ti++) {
            const int32_t type = types[ti];
            assert_non_null(k->gemm[type]);
            const int kq = is_kquant(type);
            const int64_t *ns = kq ? k_ns : is_quant(type) ? q_ns : f_ns;
            const int n_ns = kq ? LEN(k_ns) : is_quant(type) ? LEN(q_ns) : LEN(f_ns);
            const int64_t *rl = kq ? k_rows_list : rows_list, *tl = kq ? k_toks_list : toks_list;
            const int n_rl = kq ? LEN(k_rows_list) : LEN(rows_list), n_tl = kq ? LEN(k_toks_list) : LEN(toks_list);
            for (int a = 0; a < n_ns; a++)
                for (int b = 0; b < n_rl; b++)
                    for (int c = 0; c < n_tl; c++) {
                        problem p = problem_new(type, ns[a], rl[b], tl[c], exact, &s);
                        failures += check(k, &p, exact, &s);
                        n_checked++;
                        problem_free(&p);
                    }
        }
    }
    printf("# %d products checked (%s data)\n", n_checked, exact ? "exact" : "random");
    assert_int_equal(failures, 0);
}

static void test_gemm_exact(void **state) {
    (void)state;
    sweep(1, 201);
}

static void test_gemm_random(void **state) {
    (void)state;
    sweep(0, 202);
}

/* Big shapes: more than one 256-token tile, K across several 16-block slices with a short last
 * one, the widths of real models; and for float types a token count past the L2 token tile. */
static void test_gemm_large(void **state) {
    (void)state;
    uint64_t s = 203;
    int failures = 0;
    struct {
        int32_t type;
        int64_t n, rows, tok;
    } cases[] = {
        {MN_TYPE_Q8_0, 2080, 40, 261}, {MN_TYPE_Q4_0, 2080, 40, 261}, {MN_TYPE_Q8_0, 64, 300, 517},
        {MN_TYPE_Q4_0, 5632, 19, 9},   {MN_TYPE_Q4_0, 96, 290, 515},  {MN_TYPE_F32, 1000, 9, 70},
        {MN_TYPE_F16, 2048, 6, 37},
        {MN_TYPE_BF16, 4100, 5, 19},
        /* K-quants: several slices and row blocks, a token tile and a half, model widths */
        {MN_TYPE_Q4_K, 2048, 290, 517}, {MN_TYPE_Q5_K, 1536, 47, 261}, {MN_TYPE_Q6_K, 2048, 70, 515},
        {MN_TYPE_Q4_K, 5632, 37, 6},    {MN_TYPE_Q6_K, 5632, 19, 3},   {MN_TYPE_Q4_K, 2048, 33, 1},
    };
    for (int i = 0; i < N_ISAS; i++) {
        const mn_kernels *k = mn_kernels_for_isa(isas[i]);
        if (!k) continue;
        for (int c = 0; c < LEN(cases); c++) {
            for (int exact = 0; exact < 2; exact++) {
                if (exact && cases[c].n > (is_kquant(cases[c].type) ? 2048 : 4096)) continue; /* sums below 2^24 */
                problem p = problem_new(cases[c].type, cases[c].n, cases[c].rows, cases[c].tok, exact, &s);
                failures += check(k, &p, exact, &s);
                problem_free(&p);
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* Extremes of the integer path: every weight at -128 or 127 (Q8_0) or -8 / 7 (Q4_0), every
 * activation at -127 or 127, one sign per block; the exact sum must come out. */
static void test_gemm_extremes(void **state) {
    (void)state;
    enum { NB = 20, ROWS = 5, TOK = 3 };
    mn_block_q8_0 w8[ROWS][NB], x8[TOK][NB];
    mn_block_q4_0 w4[ROWS][NB];
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < NB; b++) {
            w8[r][b].d = w4[r][b].d = 0x3c00;
            memset(w8[r][b].qs, ((b + r) & 1) ? 127 : -128, 32);
            memset(w4[r][b].qs, ((b + r) & 1) ? 0xff : 0x00, 16);
        }
    for (int t = 0; t < TOK; t++)
        for (int b = 0; b < NB; b++) {
            x8[t][b].d = 0x3c00;
            memset(x8[t][b].qs, ((b + t) % 3) ? 127 : -127, 32);
        }
    for (int i = 0; i < N_ISAS; i++) {
        const mn_kernels *k = mn_kernels_for_isa(isas[i]);
        if (!k) continue;
        float y8[TOK][ROWS], y4[TOK][ROWS];
        k->gemm[MN_TYPE_Q8_0](NB * 32, w8, sizeof w8[0], ROWS, x8, sizeof x8[0], TOK, &y8[0][0], ROWS);
        k->gemm[MN_TYPE_Q4_0](NB * 32, w4, sizeof w4[0], ROWS, x8, sizeof x8[0], TOK, &y4[0][0], ROWS);
        for (int t = 0; t < TOK; t++)
            for (int r = 0; r < ROWS; r++) {
                int64_t e8 = 0, e4 = 0;
                for (int b = 0; b < NB; b++) {
                    const int64_t xv = x8[t][b].qs[0];
                    e8 += 32 * (int64_t)w8[r][b].qs[0] * xv;
                    e4 += 32 * (int64_t)(((b + r) & 1) ? 7 : -8) * xv;
                }
                if (y8[t][r] != (float)e8) fail_msg("%s q8_0 extremes [%d][%d]: %.1f != %lld", k->isa, t, r, y8[t][r], (long long)e8);
                if (y4[t][r] != (float)e4) fail_msg("%s q4_0 extremes [%d][%d]: %.1f != %lld", k->isa, t, r, y4[t][r], (long long)e4);
            }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_exact),
        cmocka_unit_test(test_gemm_random),
        cmocka_unit_test(test_gemm_large),
        cmocka_unit_test(test_gemm_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
