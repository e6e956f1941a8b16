/*
 * kernels_avx512.c: AVX-512 kernels (F/BW/VL/DQ + VNNI; Zen 4/5, Sapphire Rapids and later) and
 * the "avx512" table.
 *
 * Design:
 *   - f32/f16/bf16 dot products and axpy use 16-lane registers with 4 independent accumulators;
 *     the last n % 16 elements go through masked loads/stores instead of a scalar loop. Weight
 *     loads are 256-bit (f16/bf16) or 64-byte aligned after a masked head (f32), so none straddles
 *     a cache line when rows stream from memory.
 *   - Q8_0 / Q4_0 dot products process two 32-weight blocks per 512-bit register (block b in
 *     lanes 8b..8b+7 after the dot) with vpdpbusd (VNNI: u8 x s8, four products summed into each
 *     int32 lane, exactly, no saturation), 8 blocks per loop iteration. The 8 scales d_w * d_x
 *     are converted with one vcvtph2ps per side, spread over the matching 8-lane halves by vpermps
 *     and applied with one FMA into per-lane f32 accumulators; the horizontal sum happens once per
 *     row. Leftover blocks (n / 32 % 8) take a 256-bit path, one block at a time.
 *   - The Q8_0 activation quantizer is bit-identical to the reference (see kernels_avx2.c); the
 *     multiply uses an explicit-rounding intrinsic, which the compiler cannot fuse into an FMA.
 *   - Kernels with no AVX-512 version here (f16/bf16 narrowing, bf16 widening) reuse the AVX2
 *     ones in the table: every CPU that gets this table also passes the AVX2 checks.
 * Everything here runs only after dispatch.c has seen all the features above plus AVX512_BF16 (the
 * whole file is compiled with -mavx512bf16, so it is required even though no bf16 instruction is
 * used on purpose).
 */
#include "kernels/x86/x86.h"

#if defined(MN_HAVE_X86_KERNELS)

#include <immintrin.h>

#include "kernels/blocks.h"
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"

/* ---------------------------------------------------------------- helpers -------------------- */

static inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* mask of the low r lanes, 0 <= r < 16 */
static inline __mmask16 tail_mask16(int64_t r) { return (__mmask16)((1u << r) - 1u); }

/* 16 bf16 -> 16 f32 */
static inline __m512 bf16x16_to_ps(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Two consecutive-in-row blocks' 32-byte payloads as one register: a in the low half, b high. */
static inline __m512i load_2x32(const void *a, const void *b) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)a);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256((const __m256i *)b), 1);
}

/* d_w * d_x of 8 consecutive blocks as 8 f32 lanes. The 16 f16 scales are packed with scalar
 * loads and converted by one vcvtph2ps per side: measured on Zen 5 (L2-resident Q8_0 rows), this
 * runs at 49 GB/s against 43 GB/s converting block by block and 26 GB/s with vpgatherdd. */
static inline __m256 scales8(__m128i hw, __m128i hx) {
    return _mm256_mul_ps(_mm256_cvtph_ps(hw), _mm256_cvtph_ps(hx));
}

static inline __m256 scales8_q8(const mn_block_q8_0 *w, const mn_block_q8_0 *x) {
    return scales8(_mm_setr_epi16((short)w[0].d, (short)w[1].d, (short)w[2].d, (short)w[3].d, (short)w[4].d,
                                  (short)w[5].d, (short)w[6].d, (short)w[7].d),
                   _mm_setr_epi16((short)x[0].d, (short)x[1].d, (short)x[2].d, (short)x[3].d, (short)x[4].d,
                                  (short)x[5].d, (short)x[6].d, (short)x[7].d));
}

static inline __m256 scales8_q4(const mn_block_q4_0 *w, const mn_block_q8_0 *x) {
    return scales8(_mm_setr_epi16((short)w[0].d, (short)w[1].d, (short)w[2].d, (short)w[3].d, (short)w[4].d,
                                  (short)w[5].d, (short)w[6].d, (short)w[7].d),
                   _mm_setr_epi16((short)x[0].d, (short)x[1].d, (short)x[2].d, (short)x[3].d, (short)x[4].d,
                                  (short)x[5].d, (short)x[6].d, (short)x[7].d));
}

/* vpermps index putting scale 2j in lanes 0..7 and scale 2j+1 in lanes 8..15: the layout of a
 * dot_i8x64 result for blocks 2j, 2j+1 */
static inline __m512i pair_index(int j) {
    const __m512i lo = _mm512_set1_epi32(2 * j), hi = _mm512_set1_epi32(2 * j + 1);
    return _mm512_mask_blend_epi32((__mmask16)0xff00, lo, hi);
}

/* signed a . signed b over 64 bytes -> 16 int32 lanes. vpdpbusd takes one unsigned operand, so
 * use |a| (as u8, 0..128) and b negated where a is negative; |b| <= 127 from the quantizer. */
static inline __m512i dot_i8x64(__m512i a, __m512i b) {
    const __m512i ua = _mm512_abs_epi8(a);
    const __m512i sb = _mm512_mask_sub_epi8(b, _mm512_movepi8_mask(a), _mm512_setzero_si512(), b);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), ua, sb);
}

/* 256-bit version for a lone block (AVX512VL + VNNI): 8 int32 lanes */
static inline __m256i dot_i8x32(__m256i a, __m256i b) {
    const __m256i ua = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ua, sb);
}

/* ---------------------------------------------------------------- f32 ------------------------ */

/* x is the streamed operand (the weight row in vec_dot): a masked head first brings it to a
 * 64-byte boundary, so the main loop's 512-bit loads of x never straddle two cache lines. Tensor
 * data is only 32-byte aligned in GGUF files, and split loads measured up to 2x slower when the
 * rows come from DRAM. (A 4-byte-misaligned x just never reaches the boundary: still correct.) */
float mn_dot_f32_avx512(int64_t n, const float *x, const float *y) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = (int64_t)(((64 - ((uintptr_t)x & 63)) & 63) / 4);
    if (i > n) i = n;
    if (i > 0) {
        const __mmask16 m = tail_mask16(i);
        a2 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), _mm512_maskz_loadu_ps(m, y));
    }
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void mn_vec_dot_f32_avx512(int64_t n, const void *w, const void *x, float *out) {
    *out = mn_dot_f32_avx512(n, (const float *)w, (const float *)x);
}

void mn_axpy_f32_avx512(int64_t n, float a, const float *x, float *y) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 y0 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
        const __m512 y1 = _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16));
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + 16, y1);
    }
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    }
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* ---------------------------------------------------------------- f16 / bf16 ----------------- */

void mn_vec_dot_f16_avx512(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wh + i))),
                             _mm512_loadu_ps(xf + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 16))),
                             _mm512_loadu_ps(xf + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 32))),
                             _mm512_loadu_ps(xf + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 48))),
                             _mm512_loadu_ps(xf + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wh + i))),
                             _mm512_loadu_ps(xf + i), a0);
    }
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, wh + i));
        a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, xf + i), a1);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void mn_vec_dot_bf16_avx512(int64_t n, const void *w, const void *x, float *out) {
    const uint16_t *wh = w;
    const float *xf = x;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(bf16x16_to_ps(_mm256_loadu_si256((const __m256i *)(wh + i))),
                             _mm512_loadu_ps(xf + i), a0);
        a1 = _mm512_fmadd_ps(bf16x16_to_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 16))),
                             _mm512_loadu_ps(xf + i + 16), a1);
        a2 = _mm512_fmadd_ps(bf16x16_to_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 32))),
                             _mm512_loadu_ps(xf + i + 32), a2);
        a3 = _mm512_fmadd_ps(bf16x16_to_ps(_mm256_loadu_si256((const __m256i *)(wh + i + 48))),
                             _mm512_loadu_ps(xf + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) {
        a0 = _mm512_fmadd_ps(bf16x16_to_ps(_mm256_loadu_si256((const __m256i *)(wh + i))),
                             _mm512_loadu_ps(xf + i), a0);
    }
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        const __m512 wv = bf16x16_to_ps(_mm256_maskz_loadu_epi16(m, wh + i));
        a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, xf + i), a1);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void mn_to_f32_f16_avx512(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    }
    if (i < n) {
        const __mmask16 m = tail_mask16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
    }
}

/* ---------------------------------------------------------------- Q8_0 ----------------------- */

/* Q8_0 x Q8_0. Main loop: 8 blocks = 4 registers of 2 blocks, with the 8 scales converted
 * together (scales8_q8) and spread over each register's halves by one vpermps; two accumulators
 * alternate to halve the FMA dependency chain. Leftover blocks (< 8) go one at a time on 256 bits. */
void mn_vec_dot_q8_0_avx512(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q8_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    const int64_t nb = n / MN_QK8_0;
    const __m512i sel0 = pair_index(0), sel1 = pair_index(1), sel2 = pair_index(2), sel3 = pair_index(3);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        const __m512 s = _mm512_castps256_ps512(scales8_q8(bw + ib, bx + ib));
        const __m512i p0 = dot_i8x64(load_2x32(bw[ib].qs, bw[ib + 1].qs), load_2x32(bx[ib].qs, bx[ib + 1].qs));
        const __m512i p1 =
            dot_i8x64(load_2x32(bw[ib + 2].qs, bw[ib + 3].qs), load_2x32(bx[ib + 2].qs, bx[ib + 3].qs));
        const __m512i p2 =
            dot_i8x64(load_2x32(bw[ib + 4].qs, bw[ib + 5].qs), load_2x32(bx[ib + 4].qs, bx[ib + 5].qs));
        const __m512i p3 =
            dot_i8x64(load_2x32(bw[ib + 6].qs, bw[ib + 7].qs), load_2x32(bx[ib + 6].qs, bx[ib + 7].qs));
        acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel0, s), _mm512_cvtepi32_ps(p0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel1, s), _mm512_cvtepi32_ps(p1), acc1);
        acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel2, s), _mm512_cvtepi32_ps(p2), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel3, s), _mm512_cvtepi32_ps(p3), acc1);
    }
    __m256 acc = _mm256_setzero_ps();
    for (; ib < nb; ib++) {
        const __m256i p = dot_i8x32(_mm256_loadu_si256((const __m256i *)bw[ib].qs),
                                    _mm256_loadu_si256((const __m256i *)bx[ib].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum_256(acc);
}

/* The reference q8_round on 16 lanes (see kernels_avx2.c q8_round8 for the construction). */
static inline __m128i q8_round16(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_sub_ps(v, t);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(frac), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u));
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    __m512 r = _mm512_mask_add_ps(t, up, t, one);
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), r);
    return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r)); /* values fit: plain truncation */
}

void mn_quantize_q8_0_avx512(const float *src, void *dst, int64_t n) {
    mn_block_q8_0 *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const float *xb = src + ib * MN_QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        /* running max second: vmaxps skips a NaN first operand, like the reference */
        __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(v1), m);
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 vid = _mm512_set1_ps(id);
        /* explicit-rounding multiply: same result as a plain one, but never fused into an FMA */
        const __m512 p0 = _mm512_mul_round_ps(v0, vid, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512 p1 = _mm512_mul_round_ps(v1, vid, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)b[ib].qs, q8_round16(p0));
        _mm_storeu_si128((__m128i *)(b[ib].qs + 16), q8_round16(p1));
    }
}

void mn_to_f32_q8_0_avx512(const void *src, float *dst, int64_t n) {
    const mn_block_q8_0 *b = src;
    for (int64_t ib = 0; ib < n / MN_QK8_0; ib++) {
        const __m512 d = _mm512_set1_ps(f16_to_f32(b[ib].d));
        for (int k = 0; k < 2; k++) {
            const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b[ib].qs + 16 * k)));
            _mm512_storeu_ps(dst + ib * MN_QK8_0 + 16 * k, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q)));
        }
    }
}

/* ---------------------------------------------------------------- Q4_0 ----------------------- */

/* Two Q4_0 blocks' nibbles -> 64 bytes 0..15 in weight order: [lo_a | hi_a | lo_b | hi_b] in
 * 128-bit lanes, matching load_2x32 of the two Q8_0 activation blocks. */
static inline __m512i q4_unpack_2(const uint8_t *qa, const uint8_t *qb) {
    const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qa)),
                                              _mm_loadu_si128((const __m128i *)qb), 1);
    const __m256i m = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(q, m);                        /* [lo_a | lo_b] */
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m);  /* [hi_a | hi_b] */
    const __m512i idx = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);   /* qwords: 8.. = hi */
    return _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), idx, _mm512_castsi256_si512(hi));
}

/* Q4_0 x Q8_0: nibbles q (0..15) are already unsigned for vpdpbusd; the weight is q - 8, so
 * subtract vpdpbusd(8, x) = 8 * sum(x) per lane. Both are exact int32 sums. Loop structure as in
 * the Q8_0 kernel. */
static inline __m512i q4_dot_2(const mn_block_q4_0 *w, const mn_block_q8_0 *x) {
    const __m512i xv = load_2x32(x[0].qs, x[1].qs);
    const __m512i zero = _mm512_setzero_si512();
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q4_unpack_2(w[0].qs, w[1].qs), xv),
                            _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), xv));
}

void mn_vec_dot_q4_0_avx512(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_0 *bw = w;
    const mn_block_q8_0 *bx = x;
    const int64_t nb = n / MN_QK4_0;
    const __m512i sel0 = pair_index(0), sel1 = pair_index(1), sel2 = pair_index(2), sel3 = pair_index(3);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        const __m512 s = _mm512_castps256_ps512(scales8_q4(bw + ib, bx + ib));
        const __m512i p0 = q4_dot_2(bw + ib, bx + ib);
        const __m512i p1 = q4_dot_2(bw + ib + 2, bx + ib + 2);
        const __m512i p2 = q4_dot_2(bw + ib + 4, bx + ib + 4);
        const __m512i p3 = q4_dot_2(bw + ib + 6, bx + ib + 6);
        acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel0, s), _mm512_cvtepi32_ps(p0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel1, s), _mm512_cvtepi32_ps(p1), acc1);
        acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel2, s), _mm512_cvtepi32_ps(p2), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel3, s), _mm512_cvtepi32_ps(p3), acc1);
    }
    __m256 acc = _mm256_setzero_ps();
    const __m128i m = _mm_set1_epi8(0x0f);
    for (; ib < nb; ib++) { /* leftover blocks: the same arithmetic on 256 bits */
        const __m128i q = _mm_loadu_si128((const __m128i *)bw[ib].qs);
        const __m256i wq = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)bx[ib].qs);
        const __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, x0),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), x0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(bw[ib].d) * f16_to_f32(bx[ib].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum_256(acc);
}

void mn_to_f32_q4_0_avx512(const void *src, float *dst, int64_t n) {
    const mn_block_q4_0 *b = src;
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m512i eight = _mm512_set1_epi32(8);
    for (int64_t ib = 0; ib < n / MN_QK4_0; ib++) {
        const __m512 d = _mm512_set1_ps(f16_to_f32(b[ib].d));
        const __m128i q = _mm_loadu_si128((const __m128i *)b[ib].qs);
        const __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
        const __m512i v0 = _mm512_sub_epi32(_mm512_cvtepu8_epi32(lo), eight);
        const __m512i v1 = _mm512_sub_epi32(_mm512_cvtepu8_epi32(hi), eight);
        _mm512_storeu_ps(dst + ib * MN_QK4_0, _mm512_mul_ps(d, _mm512_cvtepi32_ps(v0)));
        _mm512_storeu_ps(dst + ib * MN_QK4_0 + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(v1)));
    }
}

/* ---------------------------------------------------------------- the table ------------------ */

const mn_kernels mn_kernels_avx512_table = {
    .isa = "avx512",
    .vec_dot =
        {
            [MN_TYPE_F32] = mn_vec_dot_f32_avx512,
            [MN_TYPE_F16] = mn_vec_dot_f16_avx512,
            [MN_TYPE_BF16] = mn_vec_dot_bf16_avx512,
            [MN_TYPE_Q8_0] = mn_vec_dot_q8_0_avx512,
            [MN_TYPE_Q4_0] = mn_vec_dot_q4_0_avx512,
            [MN_TYPE_Q4_K] = mn_vec_dot_q4_K_avx512,
            [MN_TYPE_Q5_K] = mn_vec_dot_q5_K_avx512,
            [MN_TYPE_Q6_K] = mn_vec_dot_q6_K_avx512,
        },
    .quantize =
        {
            [MN_TYPE_F32] = mn_ref_from_f32_f32,
            [MN_TYPE_F16] = mn_quantize_f16_avx2,
            [MN_TYPE_BF16] = mn_quantize_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_quantize_q8_0_avx512,
            [MN_TYPE_Q8_K] = mn_quantize_q8_K_avx512,
        },
    .to_f32 =
        {
            [MN_TYPE_F32] = mn_ref_to_f32_f32,
            [MN_TYPE_F16] = mn_to_f32_f16_avx512,
            [MN_TYPE_BF16] = mn_to_f32_bf16_avx2,
            [MN_TYPE_Q8_0] = mn_to_f32_q8_0_avx512,
            [MN_TYPE_Q4_0] = mn_to_f32_q4_0_avx512,
            [MN_TYPE_Q4_K] = mn_to_f32_q4_K_avx512,
            [MN_TYPE_Q5_K] = mn_to_f32_q5_K_avx512,
            [MN_TYPE_Q6_K] = mn_to_f32_q6_K_avx512,
        },
    .axpy_f32 = mn_axpy_f32_avx512,
    .attn_block = {[MN_TYPE_F32] = mn_attn_block_f32_avx512, [MN_TYPE_F16] = mn_attn_block_f16_avx512},
    .dot_f32 = mn_dot_f32_avx512,
    .gemm = /* kernels/x86/gemm_avx512.c */
        {
            [MN_TYPE_F32] = mn_gemm_f32_avx512,
            [MN_TYPE_F16] = mn_gemm_f16_avx512,
            [MN_TYPE_BF16] = mn_gemm_bf16_avx512,
            [MN_TYPE_Q8_0] = mn_gemm_q8_0_avx512,
            [MN_TYPE_Q4_0] = mn_gemm_q4_0_avx512,
            [MN_TYPE_Q4_K] = mn_gemm_q4_K_avx512, /* gemm_kq_avx512.c */
            [MN_TYPE_Q5_K] = mn_gemm_q5_K_avx512, /* gemm_kq_avx512.c */
            [MN_TYPE_Q6_K] = mn_gemm_q6_K_avx512, /* gemm_kq_avx512.c */
        },
};

#endif /* MN_HAVE_X86_KERNELS */
