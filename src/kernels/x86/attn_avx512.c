/*
 * attn_avx512.c: the attention block kernel (kernels.h, mn_attn_block_fn) with AVX-512.
 *
 * The block's K and V rows are widened to f32 once into L1 scratch and then serve all G heads of
 * the group. Per head: one 16-lane accumulator per position over the head dimension, the 16 reduced
 * together by a shuffle tree into one vector of scores; the block's (up to 16) scores as one vector for the max, a vector exp and the
 * sum; then acc += p_t v_t with the accumulator chunk held in a register across the positions.
 * exp is a degree-6 polynomial on the reduced argument (range reduction by ln 2 in two parts,
 * scaling by vscalefps), within 2 ulp of expf over the arguments that occur here (<= 0).
 * Head dimensions that are not a multiple of 16 or above 256 take the reference.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/avx512_util.h"
#include "kernels/x86/x86.h"

enum { HD_MAX = 256 };

static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-103.0f)); /* below this e^x is 0 in f32 */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* NC: hd / 16 when a compile-time constant (the common head sizes: loops fully unrolled, the 16
 * score accumulators in registers), 0 otherwise. Rows past n_t are zeros, so every loop runs over
 * all 16 positions: their scores are masked out and their p is 0. */
static inline __attribute__((always_inline)) void attn_block(int f16, int NC, int hd, int G, int n_t,
                                                             const float *q, const void *k, const void *v,
                                                             size_t row, float scale, float *m, float *l,
                                                             float *acc) {
    _Alignas(64) float kf[MN_ATTN_BLOCK_MAX * HD_MAX], vf[MN_ATTN_BLOCK_MAX * HD_MAX], pr[MN_ATTN_BLOCK_MAX];
    const int nc = NC ? NC : hd / 16;
    const float *kp = kf, *vp = vf; /* the block's rows as f32, ks floats apart */
    size_t ks = (size_t)hd;
    if (!f16 && n_t == MN_ATTN_BLOCK_MAX && row % sizeof(float) == 0) { /* f32 rows in place */
        kp = k;
        vp = v;
        ks = row / sizeof(float);
    } else {
        if (n_t < MN_ATTN_BLOCK_MAX) {
            memset(kf + n_t * hd, 0, sizeof(float) * (size_t)(MN_ATTN_BLOCK_MAX - n_t) * (size_t)hd);
            memset(vf + n_t * hd, 0, sizeof(float) * (size_t)(MN_ATTN_BLOCK_MAX - n_t) * (size_t)hd);
        }
        for (int t = 0; t < n_t; t++) {
            const char *kr = (const char *)k + (size_t)t * row, *vr = (const char *)v + (size_t)t * row;
            for (int c = 0; c < nc; c++) {
                __m512 a, b;
                if (f16) {
                    a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + 32 * c)));
                    b = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr + 32 * c)));
                } else {
                    a = _mm512_loadu_ps(kr + 64 * c);
                    b = _mm512_loadu_ps(vr + 64 * c);
                }
                _mm512_store_ps(kf + t * hd + 16 * c, a);
                _mm512_store_ps(vf + t * hd + 16 * c, b);
            }
        }
    }
    const __mmask16 tm = (__mmask16)((1u << n_t) - 1u);
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hd;
        float *ah = acc + (size_t)h * hd;
        /* one accumulator per position, then lane t of one vector = score t (mn_hadd16) */
        __m512 sa[MN_ATTN_BLOCK_MAX];
#pragma GCC unroll 16
        for (int t = 0; t < MN_ATTN_BLOCK_MAX; t++) {
            const int slot = (t & 3) * 4 + (t >> 2); /* mn_hadd16's input order */
            __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qh), _mm512_loadu_ps(kp + t * ks));
            for (int c = 1; c < nc; c++) a = _mm512_fmadd_ps(_mm512_loadu_ps(qh + 16 * c), _mm512_loadu_ps(kp + t * ks + 16 * c), a);
            sa[slot] = a;
        }
        const __m512 sv = _mm512_maskz_mul_ps(tm, mn_hadd16(sa), _mm512_set1_ps(scale));
        const float bmx = _mm512_mask_reduce_max_ps(tm, sv);
        if (bmx > m[h]) { /* rescale what was accumulated under the old max */
            const float cf = expf(m[h] - bmx);
            const __m512 cv = _mm512_set1_ps(cf);
            for (int c = 0; c < nc; c++) _mm512_storeu_ps(ah + 16 * c, _mm512_mul_ps(_mm512_loadu_ps(ah + 16 * c), cv));
            l[h] *= cf;
            m[h] = bmx;
        }
        const __m512 p = _mm512_maskz_mov_ps(tm, exp512(_mm512_sub_ps(sv, _mm512_set1_ps(m[h]))));
        l[h] += _mm512_reduce_add_ps(p);
        _mm512_storeu_ps(pr, p);
        for (int c = 0; c < nc; c++) {
            __m512 a = _mm512_loadu_ps(ah + 16 * c);
#pragma GCC unroll 16
            for (int t = 0; t < MN_ATTN_BLOCK_MAX; t++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(pr[t]), _mm512_loadu_ps(vp + t * ks + 16 * c), a);
            _mm512_storeu_ps(ah + 16 * c, a);
        }
    }
}

void mn_attn_block_f32_avx512(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                              float scale, float *m, float *l, float *acc) {
    if (hd % 16 || hd > HD_MAX) mn_ref_attn_block_f32(hd, G, n_t, q, k, v, row, scale, m, l, acc);
    else if (hd == 64) attn_block(0, 4, 64, G, n_t, q, k, v, row, scale, m, l, acc);
    else if (hd == 128) attn_block(0, 8, 128, G, n_t, q, k, v, row, scale, m, l, acc);
    else attn_block(0, 0, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}

void mn_attn_block_f16_avx512(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                              float scale, float *m, float *l, float *acc) {
    if (hd % 16 || hd > HD_MAX) mn_ref_attn_block_f16(hd, G, n_t, q, k, v, row, scale, m, l, acc);
    else if (hd == 64) attn_block(1, 4, 64, G, n_t, q, k, v, row, scale, m, l, acc);
    else if (hd == 128) attn_block(1, 8, 128, G, n_t, q, k, v, row, scale, m, l, acc);
    else attn_block(1, 0, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}
