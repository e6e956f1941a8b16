/*
 * ref_quants.c: reference (scalar) conversions and dot products of the types minnow computes
 * with: F32, F16, BF16, Q8_0, Q4_0. This file is the spec; SIMD variants must agree with it up to
 * float rounding (and the Q8_0 activation quantizer bit for bit).
 *
 * The quantizers follow ggml's reference rules exactly so that a file quantized by minnow holds
 * the same bytes as one quantized by other tools from the same f32 data:
 *   Q8_0: d = amax / 127, id = d ? 1/d : 0, q = roundf(x * id)        (half away from zero)
 *   Q4_0: m = the element of largest |x| (first one on ties), d = m / -8, id = d ? 1/d : 0,
 *         q = min(15, (int)(x * id + 8.5))                            (truncation toward zero)
 * The scale is stored as f16 (round to nearest even), but q is computed with the f32 id, as ggml
 * does. Non-finite inputs give defined but meaningless blocks (no undefined float-to-int casts).
 *
 * Dot products accumulate each block's integer sum exactly, then add sumi * (d_w * d_x) in float,
 * block by block.
 */
#include "kernels/ref/ref.h"

#include <math.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/types.h"

/* ---------------------------------------------------------------- F32 ------------------------ */

void mn_ref_to_f32_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void mn_ref_from_f32_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void mn_ref_vec_dot_f32(int64_t n, const void *w, const void *x, float *out) {
    *out = mn_ref_dot_f32(n, (const float *)w, (const float *)x);
}

/* ---------------------------------------------------------------- F16 ------------------------ */

void mn_ref_to_f32_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = mn_f16_to_f32(h[i]);
}

void mn_ref_from_f32_f16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = mn_f32_to_f16(src[i]);
}

void mn_ref_vec_dot_f16(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += mn_f16_to_f32(wh[i]) * xf[i];
    *out = sum;
}

/* ---------------------------------------------------------------- BF16 ----------------------- */

void mn_ref_to_f32_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = mn_bf16_to_f32(h[i]);
}

void mn_ref_from_f32_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = mn_f32_to_bf16(src[i]);
}

void mn_ref_vec_dot_bf16(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += mn_bf16_to_f32(wh[i]) * xf[i];
    *out = sum;
}

/* ---------------------------------------------------------------- Q8_0 ----------------------- */

void mn_ref_to_f32_q8_0(const void *src, float *dst, int64_t n) {
    const mn_block_q8_0 *b = src;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const float d = mn_f16_to_f32(b[ib].d);
        for (int j = 0; j < MN_QK8_0; j++) dst[ib * MN_QK8_0 + j] = d * (float)b[ib].qs[j];
    }
}

/* roundf (half away from zero) into [-127, 127]; NaN gives 0. For finite blocks |v| <= 127 up to
 * one rounding of x * (1 / (amax / 127)), so the clamp never changes a finite result. */
static int8_t q8_round(float v) {
    float r = roundf(v);
    if (r > 127.0f) r = 127.0f;
    if (r < -127.0f) r = -127.0f;
    if (r != r) r = 0.0f;
    return (int8_t)r;
}

void mn_ref_from_f32_q8_0(const float *src, void *dst, int64_t n) {
    mn_block_q8_0 *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const float *xb = src + ib * MN_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < MN_QK8_0; j++) {
            const float a = fabsf(xb[j]);
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = mn_f32_to_f16(d);
        for (int j = 0; j < MN_QK8_0; j++) b[ib].qs[j] = q8_round(xb[j] * id);
    }
}

void mn_ref_vec_dot_q8_0(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q8_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        int32_t sumi = 0;
        for (int j = 0; j < MN_QK8_0; j++) sumi += (int32_t)bw[ib].qs[j] * (int32_t)bx[ib].qs[j];
        sum += (float)sumi * (mn_f16_to_f32(bw[ib].d) * mn_f16_to_f32(bx[ib].d));
    }
    *out = sum;
}

/* ---------------------------------------------------------------- Q4_0 ----------------------- */

void mn_ref_to_f32_q4_0(const void *src, float *dst, int64_t n) {
    const mn_block_q4_0 *b = src;
    for (int64_t ib = 0; ib < n / MN_QK4_0; ib++) {
        const float d = mn_f16_to_f32(b[ib].d);
        float *y = dst + ib * MN_QK4_0;
        for (int j = 0; j < MN_QK4_0 / 2; j++) {
            y[j] = d * (float)((b[ib].qs[j] & 15) - 8);
            y[j + MN_QK4_0 / 2] = d * (float)((b[ib].qs[j] >> 4) - 8);
        }
    }
}

/* (int)(v + 8.5) truncated, capped at 15; NaN gives 0. For finite blocks v is in [-8, 8] up to
 * rounding, so v + 8.5 lies in (0, 16.5] and only the documented cap at 15 ever applies. */
static uint8_t q4_nibble(float v) {
    float t = v + 8.5f;
    if (!(t >= 0.0f)) t = 0.0f;
    if (t > 15.0f) t = 15.0f;
    return (uint8_t)(int)t;
}

void mn_ref_from_f32_q4_0(const float *src, void *dst, int64_t n) {
    mn_block_q4_0 *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK4_0; ib++) {
        const float *xb = src + ib * MN_QK4_0;
        float amax = 0.0f, max = 0.0f; /* max keeps its sign: the scale is negative for positive peaks */
        for (int j = 0; j < MN_QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = mn_f32_to_f16(d);
        for (int j = 0; j < MN_QK4_0 / 2; j++) {
            const uint8_t lo = q4_nibble(xb[j] * id);
            const uint8_t hi = q4_nibble(xb[j + MN_QK4_0 / 2] * id);
            b[ib].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void mn_ref_vec_dot_q4_0(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    float sum = 0.0f;
    for (int64_t ib = 0; ib < n / MN_QK4_0; ib++) {
        int32_t sumi = 0;
        for (int j = 0; j < MN_QK4_0 / 2; j++) {
            const int32_t lo = (bw[ib].qs[j] & 15) - 8;
            const int32_t hi = (bw[ib].qs[j] >> 4) - 8;
            sumi += lo * bx[ib].qs[j] + hi * bx[ib].qs[j + MN_QK4_0 / 2];
        }
        sum += (float)sumi * (mn_f16_to_f32(bw[ib].d) * mn_f16_to_f32(bx[ib].d));
    }
    *out = sum;
}

/* ---------------------------------------------------------------- f32 vectors ---------------- */

void mn_ref_axpy_f32(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

float mn_ref_dot_f32(int64_t n, const float *x, const float *y) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += x[i] * y[i];
    return sum;
}
