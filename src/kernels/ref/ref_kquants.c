/*
 * ref_kquants.c: reference (scalar) kernels of the K-quants: Q4_K, Q5_K and Q6_K weights in
 * super-blocks of 256, and their activation type Q8_K. This file is the spec; the SIMD variants in
 * kernels/x86/kquants_*.c are tested against it (dequantization and the Q8_K quantizer bit for
 * bit, dot products up to float summation order).
 *
 * Layouts: kernels/blocks.h, byte for byte ggml's block_q4_K / q5_K / q6_K / q8_K, so GGUF files
 * written by other tools load here and files written here load elsewhere.
 *
 * The quantizers follow ggml's reference algorithms step by step (same search grids, same error
 * weights, same float expression order; rounding to nearest with ties to even, as ggml's
 * nearest_int), because the quality of a K-quant file is decided by this search:
 *   Q4_K / Q5_K: each 32-weight sub-block is fitted as x ~ s * q - m with q in 0..nmax (15 or 31)
 *     by fit_scale_min() (ggml's make_qkx2_quants), weighting each error by rms(sub-block) + |x|.
 *     It starts from the min/max grid, then tries nstep + 1 slightly denser or coarser grids,
 *     solves the weighted least-squares (s, m) for each grid's rounding and keeps the best.
 *     The 8 scales and 8 mins are then quantized to 6 bits against the super-block's largest
 *     (d = max_s / 63, dmin = max_m / 63, stored as f16), and every weight is re-rounded against
 *     the quantized (scale, min) it will be decoded with.
 *   Q6_K: each 16-weight sub-block gets a signed scale from fit_signed_scale() (ggml's
 *     make_qx_quants with x^2 error weights): codes round(x / s) in -32..31 for 19 scales around
 *     -max/32 (max = the element of largest magnitude, sign kept), keeping the weighted
 *     least-squares best. The 16 scales are quantized to int8 against the one of largest magnitude
 *     (d = -max_s / 128, f16) and the weights re-rounded.
 *   Q8_K: iscale = -127 / max (max as above, so it becomes -127), q = round(iscale * x) clamped to
 *     -127..127, d = 1 / iscale (an f32), bsums[k] = sum of q[16k .. 16k + 15]. The all-zero block
 *     is all zeros (ggml leaves its bsums unwritten).
 * Deviations from ggml, only where ggml has undefined behaviour: values ggml would assert on or
 * cast out of range (NaN, magnitudes >= 2^22, negative 6-bit scales) are clamped into range
 * (nearest_int, and 6-bit scale codes clamped to 0..63). So non-finite inputs give defined but
 * meaningless blocks, and finite inputs give ggml's bytes.
 *
 * Dot products are w . x with x in Q8_K: the integer sums of a super-block are exact in int32
 * (at most 256 * 63 * 31 * 127 < 2^26 in magnitude), then each super-block adds
 * (d_x * d_w) * sumi - (d_x * dmin_w) * summ in float, in order.
 */
#include "kernels/ref/ref.h"

#include <math.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/types.h"

/* ---------------------------------------------------------------- helpers -------------------- */

/* Round to nearest, ties to even (what ggml's nearest_int does by adding 1.5 * 2^23): for
 * |v| < 2^22 the sum has a unit ulp, so the addition rounds and the subtraction is exact.
 * Magnitudes beyond 2^22 saturate and NaN gives 0, so callers' clamps always see a defined int. */
static int nearest_int(float v) {
    if (v != v) return 0;
    if (v >= 4194304.0f) return 4194304;
    if (v <= -4194304.0f) return -4194304;
    return (int)((v + 12582912.0f) - 12582912.0f);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes (layout: blocks.h). */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* The inverse: 8 scales and 8 mins (each 0..63) into 12 bytes. */
static void k4_pack(const int sc[8], const int m[8], uint8_t s[MN_K_SCALE_SIZE]) {
    for (int k = 0; k < 4; k++) {
        s[k] = (uint8_t)(sc[k] | ((sc[k + 4] >> 4) << 6));
        s[k + 4] = (uint8_t)(m[k] | ((m[k + 4] >> 4) << 6));
        s[k + 8] = (uint8_t)((sc[k + 4] & 15) | ((m[k + 4] & 15) << 4));
    }
}

/* Code (0..15) of weight e (0..255) of a Q4_K/Q5_K super-block's nibbles: chunk e / 64, byte
 * e % 32 of it, low nibble for the chunk's first 32 weights. */
static int k4_nibble(const uint8_t *qs, int e) {
    const uint8_t b = qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? b & 15 : b >> 4;
}

/* Q5_K's fifth bit of weight e: bit 2 * (e / 64) + (e % 64 >= 32) of qh[e % 32], worth 16. */
static int q5k_high(const uint8_t *qh, int e) {
    const int bit = 2 * (e / 64) + ((e % 64) >= 32);
    return ((qh[e % 32] >> bit) & 1) << 4;
}

/* Code (0..63) of weight e of a Q6_K super-block: half h = e / 128; within it, quarter g = r / 32
 * of r = e % 128 takes its low 4 bits from ql[64h + 32 * (g & 1) + l] (low nibble for g < 2) and
 * its high 2 bits from bits 2g..2g+1 of qh[32h + l], l = r % 32. */
static int q6k_code(const mn_block_q6_K *b, int e) {
    const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
    const int lo = (b->ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 15;
    const int hi = (b->qh[32 * h + l] >> (2 * g)) & 3;
    return lo | (hi << 4);
}

/* ---------------------------------------------------------------- scale searches ------------- */

/* Fits x[i] ~ scale * L[i] - *min_out over 32 values, L[i] in 0..nmax, min_out >= 0, minimizing
 * sum w[i] * err[i]^2 over a grid search (ggml's make_qkx2_quants without the MAD option): the
 * min/max grid first, then grids of density (nmax + rmin + rdelta * k) / (max - min) for
 * k = 0..nstep, each followed by the weighted least-squares scale and min for its codes (the min
 * is held at 0 when the fit would make it positive). Returns the scale (0 for a constant block). */
static float fit_scale_min(const float *x, const float *w, int nmax, float rmin, float rdelta, int nstep, uint8_t *L,
                           float *min_out) {
    enum { N = 32 };
    float lo = x[0], hi = x[0];
    float sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < N; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, N);
        *min_out = -lo;
        return 0.0f;
    }
    float iscale = (float)nmax / (hi - lo);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < N; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - lo)), 0, nmax);
        const float diff = scale * L[i] + lo - x[i];
        best += w[i] * (diff * diff);
    }
    uint8_t Laux[N];
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < N; i++) {
            const int l = clampi(nearest_int(iscale * (x[i] - lo)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < N; i++) {
                const float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best) {
                memcpy(L, Laux, N);
                best = err;
                scale = this_scale;
                lo = this_min;
            }
        }
    }
    *min_out = -lo;
    return scale;
}

/* Signed fit of 16 values: x[i] ~ scale * (L[i] - 32), L[i] in 0..63, error weights x[i]^2
 * (ggml's make_qx_quants with nmax 32 and rmse_type 1). Codes are round(iscale * x) clamped to
 * -32..31 for iscale = -(32 + 0.1 k) / max, k = 0 and +-1..9 (max: the value of largest
 * magnitude, sign kept, so it maps to -32); the best weighted least-squares fit wins. Returns the
 * scale (0 when every |x| < 1e-15). */
static float fit_signed_scale(const float *x, uint8_t *L) {
    enum { N = 16, NMAX = 32 };
    float max = 0, amax = 0;
    for (int i = 0; i < N; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, N);
        return 0.0f;
    }
    float iscale = (float)-NMAX / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < N; i++) {
        const int l = clampi(nearest_int(iscale * x[i]), -NMAX, NMAX - 1);
        L[i] = (uint8_t)(l + NMAX);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        iscale = -((float)NMAX + 0.1f * (float)k) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < N; i++) {
            const int l = clampi(nearest_int(iscale * x[i]), -NMAX, NMAX - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < N; i++) L[i] = (uint8_t)(NMAX + clampi(nearest_int(iscale * x[i]), -NMAX, NMAX - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ---------------------------------------------------------------- Q4_K / Q5_K shared --------- */

/* Codes L[0..256) (0..nmax) and packed scales of one Q4_K/Q5_K super-block: per-sub-block fits,
 * 6-bit scale/min codes against the super-block maxima, then every weight re-rounded against the
 * decoded (d * sc, dmin * m). Writes d and dmin (f16, to dm_out[0..1]) and the 12 scale bytes. */
static void k4_quantize_super(const float *x, int nmax, float rmin, int nstep, uint16_t dm_out[2], uint8_t *scales_out,
                              uint8_t L[MN_QK_K]) {
    float scales[8], mins[8], w[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xj[l] * xj[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xj[l]);
        scales[j] = fit_scale_min(xj, w, nmax, rmin, 0.1f, nstep, L + 32 * j, &mins[j]);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = clampi(nearest_int(inv_scale * scales[j]), 0, 63);
        m[j] = clampi(nearest_int(inv_min * mins[j]), 0, 63);
    }
    k4_pack(sc, m, scales_out);
    dm_out[0] = mn_f32_to_f16(max_scale / 63.0f);
    dm_out[1] = mn_f32_to_f16(max_min / 63.0f);
    const float d = mn_f16_to_f32(dm_out[0]), dmin = mn_f16_to_f32(dm_out[1]);
    for (int j = 0; j < 8; j++) {
        int scj, mj;
        k4_scale_min(scales_out, j, &scj, &mj);
        const float dj = d * (float)scj;
        if (dj == 0) continue; /* decodes to -dm whatever the codes: keep the fit's */
        const float dm = dmin * (float)mj;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / dj), 0, nmax);
    }
}

/* ---------------------------------------------------------------- Q4_K ----------------------- */

void mn_ref_to_f32_q4_K(const void *src, float *dst, int64_t n) {
    const mn_block_q4_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = mn_f16_to_f32(b[ib].d), dmin = mn_f16_to_f32(b[ib].dmin);
        float *y = dst + ib * MN_QK_K;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k4_scale_min(b[ib].scales, j, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = d1 * (float)k4_nibble(b[ib].qs, 32 * j + l) - m1;
        }
    }
}

void mn_ref_from_f32_q4_K(const float *src, void *dst, int64_t n) {
    mn_block_q4_K *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        uint8_t L[MN_QK_K];
        uint16_t dm[2];
        k4_quantize_super(src + ib * MN_QK_K, 15, -1.0f, 20, dm, b[ib].scales, L);
        b[ib].d = dm[0];
        b[ib].dmin = dm[1];
        /* chunk c (64 weights) = 32 bytes: weight 64c + l low nibble, 64c + 32 + l high nibble */
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) b[ib].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
        }
    }
}

void mn_ref_vec_dot_q4_K(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_K *bw = w;
    const mn_block_q8_K *bx = x;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        int32_t sumi = 0, summ = 0; /* sum_j sc_j * (q . x)_j  and  sum_j m_j * (sum x)_j */
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k4_scale_min(bw[ib].scales, j, &sc, &m);
            int32_t dot = 0, xs = 0;
            for (int l = 0; l < 32; l++) {
                const int e = 32 * j + l;
                dot += k4_nibble(bw[ib].qs, e) * bx[ib].qs[e];
                xs += bx[ib].qs[e];
            }
            sumi += sc * dot;
            summ += m * xs;
        }
        const float dx = bx[ib].d;
        sum += (dx * mn_f16_to_f32(bw[ib].d)) * (float)sumi - (dx * mn_f16_to_f32(bw[ib].dmin)) * (float)summ;
    }
    *out = sum;
}

/* ---------------------------------------------------------------- Q5_K ----------------------- */

void mn_ref_to_f32_q5_K(const void *src, float *dst, int64_t n) {
    const mn_block_q5_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = mn_f16_to_f32(b[ib].d), dmin = mn_f16_to_f32(b[ib].dmin);
        float *y = dst + ib * MN_QK_K;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k4_scale_min(b[ib].scales, j, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                const int e = 32 * j + l;
                y[e] = d1 * (float)(k4_nibble(b[ib].qs, e) | q5k_high(b[ib].qh, e)) - m1;
            }
        }
    }
}

void mn_ref_from_f32_q5_K(const float *src, void *dst, int64_t n) {
    mn_block_q5_K *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        uint8_t L[MN_QK_K];
        uint16_t dm[2];
        k4_quantize_super(src + ib * MN_QK_K, 31, -0.5f, 15, dm, b[ib].scales, L);
        b[ib].d = dm[0];
        b[ib].dmin = dm[1];
        /* low 4 bits as Q4_K; bit 4 of weight 64c + l -> bit 2c of qh[l], of 64c + 32 + l -> 2c + 1 */
        memset(b[ib].qh, 0, sizeof b[ib].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                b[ib].qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                b[ib].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

void mn_ref_vec_dot_q5_K(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q5_K *bw = w;
    const mn_block_q8_K *bx = x;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k4_scale_min(bw[ib].scales, j, &sc, &m);
            int32_t dot = 0, xs = 0;
            for (int l = 0; l < 32; l++) {
                const int e = 32 * j + l;
                dot += (k4_nibble(bw[ib].qs, e) | q5k_high(bw[ib].qh, e)) * bx[ib].qs[e];
                xs += bx[ib].qs[e];
            }
            sumi += sc * dot;
            summ += m * xs;
        }
        const float dx = bx[ib].d;
        sum += (dx * mn_f16_to_f32(bw[ib].d)) * (float)sumi - (dx * mn_f16_to_f32(bw[ib].dmin)) * (float)summ;
    }
    *out = sum;
}

/* ---------------------------------------------------------------- Q6_K ----------------------- */

void mn_ref_to_f32_q6_K(const void *src, float *dst, int64_t n) {
    const mn_block_q6_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = mn_f16_to_f32(b[ib].d);
        float *y = dst + ib * MN_QK_K;
        for (int k = 0; k < 16; k++) {
            const float dk = d * (float)b[ib].scales[k];
            for (int l = 0; l < 16; l++) y[16 * k + l] = dk * (float)(q6k_code(&b[ib], 16 * k + l) - 32);
        }
    }
}

void mn_ref_from_f32_q6_K(const float *src, void *dst, int64_t n) {
    mn_block_q6_K *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float *x = src + ib * MN_QK_K;
        uint8_t L[MN_QK_K];
        float scales[16];
        float max_scale = 0, max_abs_scale = 0;
        for (int k = 0; k < 16; k++) {
            scales[k] = fit_signed_scale(x + 16 * k, L + 16 * k);
            if (fabsf(scales[k]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[k]);
                max_scale = scales[k];
            }
        }
        if (max_abs_scale < 1e-15f) { /* nothing to encode: d = 0, all codes 0 */
            memset(&b[ib], 0, sizeof b[ib]);
            continue;
        }
        const float iscale = -128.0f / max_scale;
        b[ib].d = mn_f32_to_f16(1 / iscale);
        for (int k = 0; k < 16; k++) b[ib].scales[k] = (int8_t)clampi(nearest_int(iscale * scales[k]), -128, 127);
        const float d = mn_f16_to_f32(b[ib].d);
        for (int k = 0; k < 16; k++) {
            const float dk = d * (float)b[ib].scales[k];
            if (dk == 0) continue; /* decodes to 0 whatever the codes */
            for (int l = 0; l < 16; l++) L[16 * k + l] = (uint8_t)(clampi(nearest_int(x[16 * k + l] / dk), -32, 31) + 32);
        }
        /* the inverse of q6k_code: per half h and l < 32, weights l, l+32, l+64, l+96 */
        for (int h = 0; h < 2; h++) {
            const uint8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                b[ib].ql[64 * h + l] = (uint8_t)((Lh[l] & 15) | ((Lh[l + 64] & 15) << 4));
                b[ib].ql[64 * h + 32 + l] = (uint8_t)((Lh[l + 32] & 15) | ((Lh[l + 96] & 15) << 4));
                b[ib].qh[32 * h + l] =
                    (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

void mn_ref_vec_dot_q6_K(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q6_K *bw = w;
    const mn_block_q8_K *bx = x;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        int32_t sumi = 0; /* sum_k sc_k * ((q - 32) . x)_k */
        for (int k = 0; k < 16; k++) {
            int32_t dot = 0;
            for (int l = 0; l < 16; l++) dot += (q6k_code(&bw[ib], 16 * k + l) - 32) * bx[ib].qs[16 * k + l];
            sumi += bw[ib].scales[k] * dot;
        }
        sum += (bx[ib].d * mn_f16_to_f32(bw[ib].d)) * (float)sumi;
    }
    *out = sum;
}

/* ---------------------------------------------------------------- Q8_K ----------------------- */

void mn_ref_to_f32_q8_K(const void *src, float *dst, int64_t n) {
    const mn_block_q8_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        for (int j = 0; j < MN_QK_K; j++) dst[ib * MN_QK_K + j] = b[ib].d * (float)b[ib].qs[j];
    }
}

void mn_ref_from_f32_q8_K(const float *src, void *dst, int64_t n) {
    mn_block_q8_K *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float *x = src + ib * MN_QK_K;
        float max = 0, amax = 0; /* first element of largest magnitude; NaNs never win */
        for (int j = 0; j < MN_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0) {
            memset(&b[ib], 0, sizeof b[ib]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < MN_QK_K; j++) b[ib].qs[j] = (int8_t)clampi(nearest_int(iscale * x[j]), -127, 127);
        for (int k = 0; k < 16; k++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[ib].qs[16 * k + l];
            b[ib].bsums[k] = (int16_t)sum;
        }
        b[ib].d = 1 / iscale;
    }
}
