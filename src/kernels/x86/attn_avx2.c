/*
 * attn_avx2.c: the attention block kernel (kernels.h, mn_attn_block_fn) with AVX2 + FMA + F16C.
 * Same method as attn_avx512.c with 8-lane vectors: K and V rows of the block widened to f32 once
 * for all G heads, per-position 8-lane dot accumulators, a vector exp (degree-6 polynomial,
 * 2^n built in the exponent bits; arguments below -87 give ~1e-38 instead of 0, which no sum
 * notices), acc chunks held in a register across the block's positions.
 * Head dimensions that are not a multiple of 8 or above 256 take the reference.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "kernels/x86/x86.h"

enum { HD_MAX = 256 };

static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline __attribute__((always_inline)) void attn_block(int f16, int hd, int G, int n_t, const float *q,
                                                             const void *k, const void *v, size_t row, float scale,
                                                             float *m, float *l, float *acc) {
    _Alignas(32) float kf[MN_ATTN_BLOCK_MAX * HD_MAX], vf[MN_ATTN_BLOCK_MAX * HD_MAX], pr[MN_ATTN_BLOCK_MAX];
    const int nc = hd / 8;
    for (int t = 0; t < n_t; t++) {
        const char *kr = (const char *)k + (size_t)t * row, *vr = (const char *)v + (size_t)t * row;
        for (int c = 0; c < nc; c++) {
            __m256 a, b;
            if (f16) {
                a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + 16 * c)));
                b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + 16 * c)));
            } else {
                a = _mm256_loadu_ps((const float *)(const void *)(kr + 32 * c));
                b = _mm256_loadu_ps((const float *)(const void *)(vr + 32 * c));
            }
            _mm256_store_ps(kf + t * hd + 8 * c, a);
            _mm256_store_ps(vf + t * hd + 8 * c, b);
        }
    }
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * hd;
        float *ah = acc + (size_t)h * hd;
        float bmx = -INFINITY;
        for (int t = 0; t < n_t; t++) {
            __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(qh), _mm256_load_ps(kf + t * hd)), s1 = _mm256_setzero_ps();
            int c = 1;
            for (; c + 1 < nc; c += 2) {
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 8 * c), _mm256_load_ps(kf + t * hd + 8 * c), s1);
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 8 * c + 8), _mm256_load_ps(kf + t * hd + 8 * c + 8), s0);
            }
            if (c < nc) s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 8 * c), _mm256_load_ps(kf + t * hd + 8 * c), s1);
            pr[t] = hsum(_mm256_add_ps(s0, s1)) * scale;
            if (pr[t] > bmx) bmx = pr[t];
        }
        if (bmx > m[h]) { /* rescale what was accumulated under the old max */
            const float cf = expf(m[h] - bmx);
            const __m256 cv = _mm256_set1_ps(cf);
            for (int c = 0; c < nc; c++) _mm256_storeu_ps(ah + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(ah + 8 * c), cv));
            l[h] *= cf;
            m[h] = bmx;
        }
        const __m256 mv = _mm256_set1_ps(m[h]);
        for (int t0 = 0; t0 < n_t; t0 += 8) {
            _Alignas(32) float e[8];
            _mm256_store_ps(e, exp256(_mm256_sub_ps(_mm256_loadu_ps(pr + t0), mv)));
            for (int t = t0; t < n_t && t < t0 + 8; t++) {
                pr[t] = e[t - t0];
                l[h] += pr[t];
            }
        }
        for (int c = 0; c < nc; c++) {
            __m256 a = _mm256_loadu_ps(ah + 8 * c);
            for (int t = 0; t < n_t; t++) a = _mm256_fmadd_ps(_mm256_set1_ps(pr[t]), _mm256_load_ps(vf + t * hd + 8 * c), a);
            _mm256_storeu_ps(ah + 8 * c, a);
        }
    }
}

void mn_attn_block_f32_avx2(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                            float scale, float *m, float *l, float *acc) {
    if (hd % 8 || hd > HD_MAX) mn_ref_attn_block_f32(hd, G, n_t, q, k, v, row, scale, m, l, acc);
    else attn_block(0, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}

void mn_attn_block_f16_avx2(int hd, int G, int n_t, const float *q, const void *k, const void *v, size_t row,
                            float scale, float *m, float *l, float *acc) {
    if (hd % 8 || hd > HD_MAX) mn_ref_attn_block_f16(hd, G, n_t, q, k, v, row, scale, m, l, acc);
    else attn_block(1, hd, G, n_t, q, k, v, row, scale, m, l, acc);
}
