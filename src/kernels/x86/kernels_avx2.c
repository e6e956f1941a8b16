/*
 * kernels_avx2.c: AVX2 + FMA + F16C kernels (Haswell / Zen 1 and later) and the "avx2" table.
 *
 * Design:
 *   - f32/f16/bf16 dot products convert weights to f32 in registers (vcvtph2ps, or a 16-bit
 *     shift for bf16) and keep 4 independent 8-lane FMA accumulators to hide FMA latency; a
 *     scalar loop handles the last n % 8 elements.
 *   - Q8_0 / Q4_0 dot products are integer: per 32-weight block, vpmaddubsw multiplies unsigned
 *     by signed bytes into int16 pairs and vpmaddwd sums pairs into 8 int32 lanes, exactly (no
 *     saturation is possible for these value ranges, see each kernel). The 8 lanes are converted
 *     to f32 and scaled by d_w * d_x with one FMA into a per-lane accumulator; the horizontal sum
 *     happens once per row. So only the float summation order differs from the reference.
 *   - The Q8_0 activation quantizer is bit-identical to mn_ref_from_f32_q8_0 (same amax, same
 *     d and 1/d in scalar IEEE arithmetic, same roundf rule rebuilt from truncation, same clamp
 *     and NaN handling), so activations quantize identically whichever table is active.
 *   - to_f32 kernels compute d * q with one rounding, as the reference does: bit-identical.
 * Everything here runs only after dispatch.c has seen AVX2, FMA, F16C and BMI2 in mn_cpu_features.
 */
#include "kernels/x86/x86.h"

#if defined(MN_HAVE_X86_KERNELS)

#include <immintrin.h>

#include "kernels/blocks.h"
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"

/* ---------------------------------------------------------------- helpers -------------------- */

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

/* bf16 -> f32 of 8 values: zero-extend to 32 bits and shift into the high half */
static inline __m256 load_bf16x8(const uint16_t *p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* 32 signed bytes a . 32 signed bytes b -> 8 int32 partial sums (as f32). vpmaddubsw needs one
 * unsigned operand: use |a| and b carrying a's sign. |a| <= 128 and |b| <= 127 (the quantizer
 * never emits -128), so each int16 pair sum is at most 2*128*127 = 32512: no saturation. */
static inline __m256 dot_i8x32(__m256i a, __m256i b) {
    const __m256i ua = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    const __m256i p16 = _mm256_maddubs_epi16(ua, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 bytes of Q4_0 nibbles -> 32 bytes 0..15 in weight order (low nibbles, then high nibbles) */
static inline __m256i q4_unpack(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(q, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    return _mm256_set_m128i(hi, lo);
}

/* ---------------------------------------------------------------- f32 ------------------------ */

float mn_dot_f32_avx2(int64_t n, const float *x, const float *y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    return sum;
}

void mn_vec_dot_f32_avx2(int64_t n, const void *w, const void *x, float *out) {
    *out = mn_dot_f32_avx2(n, (const float *)w, (const float *)x);
}

void mn_axpy_f32_avx2(int64_t n, float a, const float *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 y0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        const __m256 y1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
    }
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * x[i];
}

/* ---------------------------------------------------------------- f16 / bf16 ----------------- */

void mn_vec_dot_f16_avx2(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i))),
                             _mm256_loadu_ps(xf + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i + 8))),
                             _mm256_loadu_ps(xf + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i + 16))),
                             _mm256_loadu_ps(xf + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i + 24))),
                             _mm256_loadu_ps(xf + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i))),
                             _mm256_loadu_ps(xf + i), a0);
    }
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += f16_to_f32(wh[i]) * xf[i];
    *out = sum;
}

void mn_vec_dot_bf16_avx2(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_bf16x8(wh + i), _mm256_loadu_ps(xf + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(wh + i + 8), _mm256_loadu_ps(xf + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16x8(wh + i + 16), _mm256_loadu_ps(xf + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16x8(wh + i + 24), _mm256_loadu_ps(xf + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(wh + i), _mm256_loadu_ps(xf + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += mn_bf16_to_f32(wh[i]) * xf[i];
    *out = sum;
}

void mn_to_f32_f16_avx2(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    }
    for (; i < n; i++) dst[i] = f16_to_f32(h[i]);
}

void mn_to_f32_bf16_avx2(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(h + i));
    for (; i < n; i++) dst[i] = mn_bf16_to_f32(h[i]);
}

/* vcvtps2ph with round-to-nearest-even: the same bits as mn_f32_to_f16 (which mirrors F16C) */
void mn_quantize_f16_avx2(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i p = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(h + i), p);
    }
    for (; i < n; i++) h[i] = (uint16_t)_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

/* ---------------------------------------------------------------- Q8_0 ----------------------- */

/* Q8_0 x Q8_0: two blocks per iteration into two accumulators (independent FMA chains). The
 * per-block scale is converted with scalar vcvtph2ps: packing 8 scales into one conversion
 * (as the AVX-512 kernel does) measured slower here (35.7 vs 38.4 GB/s, L2-resident rows). */
void mn_vec_dot_q8_0_avx2(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q8_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    const int64_t nb = n / MN_QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        const __m256 p0 = dot_i8x32(_mm256_loadu_si256((const __m256i *)bw[ib].qs),
                                    _mm256_loadu_si256((const __m256i *)bx[ib].qs));
        const __m256 p1 = dot_i8x32(_mm256_loadu_si256((const __m256i *)bw[ib + 1].qs),
                                    _mm256_loadu_si256((const __m256i *)bx[ib + 1].qs));
        const float s0 = f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d);
        const float s1 = f16_to_f32(bw[ib + 1].d) * f16_to_f32(bx[ib + 1].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(s0), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(s1), p1, acc1);
    }
    if (ib < nb) {
        const __m256 p0 = dot_i8x32(_mm256_loadu_si256((const __m256i *)bw[ib].qs),
                                    _mm256_loadu_si256((const __m256i *)bx[ib].qs));
        const float s0 = f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(s0), p0, acc0);
    }
    *out = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* roundf() of 8 lanes, clamped to [-127, 127], NaN -> 0: the reference q8_round, lane-wise.
 * roundf rounds halves away from zero, which no x86 rounding mode does, so build it from
 * truncation: t = trunc(v); frac = v - t is exact; step one away from zero when |frac| >= 0.5. */
static inline __m256i q8_round8(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_sub_ps(v, t);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, frac), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f)); /* +-1 */
    __m256 r = _mm256_add_ps(t, _mm256_and_ps(up, one));
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvttps_epi32(r);
}

void mn_quantize_q8_0_avx2(const float *src, void *dst, int64_t n) {
    mn_block_q8_0 *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const float *xb = src + ib * MN_QK8_0;
        __m256 v[4];
        /* amax over |x|; vmaxps returns its second operand when the first is NaN, so with the
         * running max second, NaNs are skipped exactly like the reference's `a > amax` test */
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);

        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 p = _mm256_mul_ps(v[k], vid);
            /* p must be the rounded product, as in the reference: this empty asm stops the
             * compiler from fusing the multiply into q8_round8's subtraction as an FMA */
            __asm__("" : "+x"(p));
            q[k] = q8_round8(p);
        }
        /* pack 4x8 int32 -> 32 int8; the packs work within 128-bit lanes, so finish with a
         * dword permute that restores element order */
        const __m256i q01 = _mm256_packs_epi32(q[0], q[1]);
        const __m256i q23 = _mm256_packs_epi32(q[2], q[3]);
        const __m256i q8 = _mm256_packs_epi16(q01, q23);
        const __m256i ordered = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)b[ib].qs, ordered);
    }
}

void mn_to_f32_q8_0_avx2(const void *src, float *dst, int64_t n) {
    const mn_block_q8_0 *b = src;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const __m256 d = _mm256_set1_ps(f16_to_f32(b[ib].d));
        for (int k = 0; k < 4; k++) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[ib].qs + 8 * k)));
            _mm256_storeu_ps(dst + ib * MN_QK8_0 + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

/* ---------------------------------------------------------------- Q4_0 ----------------------- */

/* Q4_0 x Q8_0. Nibbles q are 0..15 (unsigned, as vpmaddubsw wants) and the weight is q - 8, so
 * sum (q - 8) * x = maddubs(q, x) - maddubs(8, x); int16 pair sums stay below 2*15*128 = 3840.
 * Two blocks per iteration, two accumulators, as in the Q8_0 kernel. */
static inline __m256 q4_dot(const mn_block_q4_0 *w, const mn_block_q8_0 *x) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q4_unpack(w->qs), xv),
                                         _mm256_maddubs_epi16(_mm256_set1_epi8(8), xv));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

void mn_vec_dot_q4_0_avx2(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    const int64_t nb = n / MN_QK4_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        const float s0 = f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d);
        const float s1 = f16_to_f32(bw[ib + 1].d) * f16_to_f32(bx[ib + 1].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(s0), q4_dot(&bw[ib], &bx[ib]), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(s1), q4_dot(&bw[ib + 1], &bx[ib + 1]), acc1);
    }
    if (ib < nb) {
        const float s0 = f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(s0), q4_dot(&bw[ib], &bx[ib]), acc0);
    }
    *out = hsum_ps(_mm256_add_ps(acc0, acc1));
}

void mn_to_f32_q4_0_avx2(const void *src, float *dst, int64_t n) {
    const mn_block_q4_0 *b = src;
    const __m256i eight = _mm256_set1_epi32(8);
    for (int64_t ib = 0; ib < n / MN_QK4_0; ib++) {
        const __m256 d = _mm256_set1_ps(f16_to_f32(b[ib].d));
        const __m256i q = q4_unpack(b[ib].qs); /* 32 bytes 0..15 in weight order */
        const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
        for (int k = 0; k < 4; k++) {
            const __m128i src8 = k & 1 ? _mm_srli_si128(halves[k >> 1], 8) : halves[k >> 1];
            const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(src8), eight);
            _mm256_storeu_ps(dst + ib * MN_QK4_0 + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(v)));
        }
    }
}

/* ---------------------------------------------------------------- bf16 narrowing ------------- */

/* The reference rounding rule on 8 lanes: (u + 0x7fff + ((u >> 16) & 1)) >> 16, NaN -> quiet. */
void mn_quantize_bf16_avx2(const float *src, void *dst, int64_t n) {
    uint16_t *h = dst;
    int64_t i = 0;
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
    for (; i + 8 <= n; i += 8) {
        const __m256 f = _mm256_loadu_ps(src + i);
        const __m256i u = _mm256_castps_si256(f);
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
        const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
        /* 8 x u32 (< 2^16) -> 8 x u16: packus within lanes, then gather the two low qwords */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(h + i), _mm256_castsi256_si128(p));
    }
    for (; i < n; i++) h[i] = mn_f32_to_bf16(src[i]);
}

/* ---------------------------------------------------------------- the table ------------------ */

const mn_kernels mn_kernels_avx2_table = {
    .isa = "avx2",
    .vec_dot =
        {
            [MN_TYPE_F32] = mn_vec_dot_f32_avx2,
            [MN_TYPE_F16] = mn_vec_dot_f16_avx2,
            [MN_TYPE_BF16] = mn_vec_dot_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_vec_dot_q8_0_avx2,
            [MN_TYPE_Q4_0] = mn_vec_dot_q4_0_avx2,
            [MN_TYPE_Q4_K] = mn_vec_dot_q4_K_avx2,
            [MN_TYPE_Q5_K] = mn_vec_dot_q5_K_avx2,
            [MN_TYPE_Q6_K] = mn_vec_dot_q6_K_avx2,
        },
    .quantize =
        {
            [MN_TYPE_F32] = mn_ref_from_f32_f32,
            [MN_TYPE_F16] = mn_quantize_f16_avx2,
            [MN_TYPE_BF16] = mn_quantize_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_quantize_q8_0_avx2,
            [MN_TYPE_Q8_K] = mn_quantize_q8_K_avx2,
        },
    .to_f32 =
        {
            [MN_TYPE_F32] = mn_ref_to_f32_f32,
            [MN_TYPE_F16] = mn_to_f32_f16_avx2,
            [MN_TYPE_BF16] = mn_to_f32_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_to_f32_q8_0_avx2,
            [MN_TYPE_Q4_0] = mn_to_f32_q4_0_avx2,
            [MN_TYPE_Q4_K] = mn_to_f32_q4_K_avx2,
            [MN_TYPE_Q5_K] = mn_to_f32_q5_K_avx2,
            [MN_TYPE_Q6_K] = mn_to_f32_q6_K_avx2,
        },
    .axpy_f32 = mn_axpy_f32_avx2,
    .attn_block = {[MN_TYPE_F32] = mn_attn_block_f32_avx2, [MN_TYPE_F16] = mn_attn_block_f16_avx2},
    .dot_f32 = mn_dot_f32_avx2,
    .gemm = /* kernels/x86/gemm_avx2.c */
        {
            [MN_TYPE_F32] = mn_gemm_f32_avx2,
            [MN_TYPE_F16] = mn_gemm_f16_avx2,
            [MN_TYPE_BF16] = mn_gemm_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_gemm_q8_0_avx2,
            [MN_TYPE_Q4_0] = mn_gemm_q4_0_avx2,
            [MN_TYPE_Q4_K] = mn_gemm_q4_K_avx2, /* gemm_kq_avx2.c */
            [MN_TYPE_Q5_K] = mn_gemm_q5_K_avx2, /* gemm_kq_avx2.c */
            [MN_TYPE_Q6_K] = mn_gemm_q6_K_avx2, /* gemm_kq_avx2.c */
        },
};

#endif /* MN_HAVE_X86_KERNELS */
