/*
 * kquants_avx2.c: AVX2 + FMA + F16C kernels of the K-quants (Q4_K, Q5_K, Q6_K weights x Q8_K
 * activations), the Q8_K activation quantizer and the K-quant dequantizers. Semantics: the
 * mn_ref_* functions of kernels/ref/ref_kquants.c; layouts: kernels/blocks.h.
 *
 * Dot products, per 256-weight super-block, all in exact integers until one float FMA:
 *   - weight codes are unpacked to unsigned bytes (0..15, 0..31 or 0..63) in the same order as
 *     the Q8_K activation bytes, so vpmaddubsw (u8 x s8 -> int16 pairs, no saturation possible:
 *     2 * 63 * 127 < 2^15) multiplies them directly;
 *   - vpmaddwd against a register of the sub-block's scale (as int16) applies the 6- or 8-bit
 *     scales and widens to int32; one int32 accumulator per super-block;
 *   - offsets never touch the quants: Q4_K/Q5_K mins use m_j * (bsums[2j] + bsums[2j+1]) and
 *     Q6_K's "- 32" uses 32 * sum_k sc_k * bsums[k], from the Q8_K block's per-16 sums;
 *   - the super-block's int32 lanes are converted and FMA'd with d_x * d_w into 8 f32 lanes; the
 *     horizontal sum happens once per row. Only float rounding differs from the reference.
 * Scale bytes are broadcast into every 16-bit lane of a register with vpshufb: one instruction per
 * sub-block, no table loads.
 *
 * The Q8_K quantizer is bit-identical to mn_ref_from_f32_q8_K: same first-largest-magnitude
 * search (vmaxps skips NaN like the reference's `>`), the same scalar iscale and d, vcvtps2dq's
 * round-to-nearest-even (the MXCSR default) for nearest_int, NaN lanes forced to 0 and the same
 * clamp to -127..127. The dequantizers are bit-identical too: d1 * q - m1 with two roundings, as the reference
 * (an empty asm keeps the compiler from fusing them into an FMA).
 * Runs only after dispatch.c has seen AVX2, FMA, F16C and BMI2.
 */
#include "kernels/x86/x86.h"

#if defined(MN_HAVE_X86_KERNELS)

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels/blocks.h"

/* ---------------------------------------------------------------- helpers -------------------- */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

/* Packed Q4_K/Q5_K scale bytes -> [sc0..sc7, m0..m7] (layout in blocks.h). With u0, u1, u2 the
 * three little-endian dwords of the 12 bytes, byte k of each expression is sub-block k (or k + 4):
 *   sc0..3 = u0 & 0x3f..,  sc4..7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..),
 *   m0..3  = u1 & 0x3f..,  m4..7  = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..),
 * computed for all four dwords at once. The 16-byte load also reads the 4 bytes after the scales
 * (qh or qs of the same block, so in bounds); they are shuffled away. */
static inline __m128i k4_scales_mins(const uint8_t *s) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s);
    const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* u0 u2 u1 u2 */
    const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* -- u0 -- u1 */
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(lo, hi);
}

/* Constants of the Q4_K/Q5_K dot. The scale bytes [sc0..7, m0..7] sit in both 128-bit lanes of a
 * register; vpshufb with sc_ctrl[j] spreads sc[j] zero-extended over every 16-bit word, and
 * m_ctrl builds [m0 m0 m1 m1 m2 m2 m3 m3 | m4 m4 .. m7 m7] to meet the 16 bsums. */
typedef struct k4_consts {
    __m256i sc_ctrl[8];
    __m256i m_ctrl;
} k4_consts;

static inline k4_consts k4_consts_make(void) {
    k4_consts k;
    for (int j = 0; j < 8; j++) k.sc_ctrl[j] = _mm256_set1_epi16((short)(0x8000 | j));
    k.m_ctrl = _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11, -128, /* lane 0 */
                                12, -128, 12, -128, 13, -128, 13, -128, 14, -128, 14, -128, 15, -128, 15, -128);
    return k;
}

/* Per super-block: d * d_x and dmin * d_x broadcast (the adjacent f16 pair converted together),
 * the scale register, and the mins term FMA'd into acc_m. */
static inline __m256i k4_prologue(const uint8_t *dm, const uint8_t *scales, const mn_block_q8_K *bx, const k4_consts *k,
                                  __m256 *d_out, __m256 *acc_m) {
    uint32_t dm_bits;
    memcpy(&dm_bits, dm, 4);
    const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dm_bits)), _mm_set1_ps(bx->d));
    *d_out = _mm256_broadcastss_ps(dd);
    const __m256i scb = _mm256_broadcastsi128_si256(k4_scales_mins(scales));
    const uint8_t *bsums = (const uint8_t *)bx + offsetof(mn_block_q8_K, bsums);
    const __m256i pm = _mm256_madd_epi16(_mm256_shuffle_epi8(scb, k->m_ctrl), _mm256_loadu_si256((const __m256i *)bsums));
    const __m256 dmin = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dd), _mm256_set1_epi32(1));
    *acc_m = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(pm), *acc_m);
    return scb;
}

/* One 64-weight chunk: codes lo (sub-block 2c, against x64[0..32)) and hi (2c + 1, x64[32..64)). */
static inline __m256i k4_chunk(__m256i sumi, __m256i lo, __m256i hi, const int8_t *x64, __m256i scb, const k4_consts *k,
                               int c) {
    const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x64));
    const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x64 + 32)));
    const __m256i sl = _mm256_madd_epi16(pl, _mm256_shuffle_epi8(scb, k->sc_ctrl[2 * c]));
    const __m256i sh = _mm256_madd_epi16(ph, _mm256_shuffle_epi8(scb, k->sc_ctrl[2 * c + 1]));
    return _mm256_add_epi32(sumi, _mm256_add_epi32(sl, sh));
}

/* ---------------------------------------------------------------- Q4_K ----------------------- */

/* Q4_K x Q8_K. Chunk c (64 weights): 32 nibble bytes -> low nibbles = sub-block 2c against
 * x[64c..64c+31], high nibbles = sub-block 2c+1 against x[64c+32..64c+63]. int16 pair sums are at
 * most 2 * 15 * 127 = 3810 and int32 lanes at most 8 * 3810 * 63 < 2^21: all exact. */
static inline __m256i q4k_chunk(__m256i sumi, const uint8_t *q32, const int8_t *x64, __m256i scb, const k4_consts *k,
                                int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i qv = _mm256_loadu_si256((const __m256i *)q32);
    return k4_chunk(sumi, _mm256_and_si256(qv, m4), _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), x64, scb, k, c);
}

void mn_vec_dot_q4_K_avx2(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_K *bw = w;
    const mn_block_q8_K *bx = x;
    const k4_consts k = k4_consts_make();
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        __m256 d;
        const __m256i scb = k4_prologue((const uint8_t *)&bw[ib], bw[ib].scales, &bx[ib], &k, &d, &acc_m);
        const uint8_t *q = bw[ib].qs;
        const int8_t *xq = bx[ib].qs;
        __m256i sumi = q4k_chunk(_mm256_setzero_si256(), q, xq, scb, &k, 0);
        sumi = q4k_chunk(sumi, q + 32, xq + 64, scb, &k, 1);
        sumi = q4k_chunk(sumi, q + 64, xq + 128, scb, &k, 2);
        sumi = q4k_chunk(sumi, q + 96, xq + 192, scb, &k, 3);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum8(acc) - hsum8(acc_m);
}

/* ---------------------------------------------------------------- Q5_K ----------------------- */

/* Q5_K x Q8_K: Q4_K plus the fifth bit. For chunk c the bits are bit 2c (low nibbles) and bit
 * 2c + 1 (high nibbles) of qh[l]; hb holds qh shifted right by 2c, so they sit at bits 0 and 1,
 * and << 4 / << 3 lands each on bit 4 (16-bit shifts: bits crossing into a neighbour byte are
 * masked off by the 0x10 mask, and bits shifted in from above only reach positions >= 8 - 2c,
 * never read). Pair sums <= 2 * 31 * 127 = 7874: exact. */
static inline __m256i q5k_chunk(__m256i sumi, const uint8_t *q32, __m256i hb, const int8_t *x64, __m256i scb,
                                const k4_consts *k, int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    const __m256i qv = _mm256_loadu_si256((const __m256i *)q32);
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
    const __m256i hi =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
    return k4_chunk(sumi, lo, hi, x64, scb, k, c);
}

void mn_vec_dot_q5_K_avx2(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q5_K *bw = w;
    const mn_block_q8_K *bx = x;
    const k4_consts k = k4_consts_make();
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        __m256 d;
        const __m256i scb = k4_prologue((const uint8_t *)&bw[ib], bw[ib].scales, &bx[ib], &k, &d, &acc_m);
        const uint8_t *q = bw[ib].qs;
        const int8_t *xq = bx[ib].qs;
        const __m256i hb = _mm256_loadu_si256((const __m256i *)bw[ib].qh);
        __m256i sumi = q5k_chunk(_mm256_setzero_si256(), q, hb, xq, scb, &k, 0);
        sumi = q5k_chunk(sumi, q + 32, _mm256_srli_epi16(hb, 2), xq + 64, scb, &k, 1);
        sumi = q5k_chunk(sumi, q + 64, _mm256_srli_epi16(hb, 4), xq + 128, scb, &k, 2);
        sumi = q5k_chunk(sumi, q + 96, _mm256_srli_epi16(hb, 6), xq + 192, scb, &k, 3);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum8(acc) - hsum8(acc_m);
}

/* ---------------------------------------------------------------- Q6_K ----------------------- */

/* The four 32-weight code vectors (0..63) of Q6_K half h: weights 128h + 32g + l, g = 0..3.
 * 16-bit shifts move qh bits 2g..2g+1 to bits 4..5; bits spilling into the neighbour byte fall
 * outside the 0x30 mask. */
static inline void q6_codes(const mn_block_q6_K *b, int h, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
    const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m2));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
}

/* codes . x for one 32-weight vector, scaled per 16-weight lane by the int8 scales the control
 * picks (vpshufb into the high byte of each word, then an arithmetic >> 8 sign-extends) */
static inline __m256i q6_vec(__m256i sumi, __m256i q, const int8_t *x32, __m256i scb, __m256i ctrl) {
    const __m256i s16 = _mm256_srai_epi16(_mm256_shuffle_epi8(scb, ctrl), 8);
    const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x32));
    return _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s16));
}

/* Q6_K x Q8_K: sum (q - 32) x sc = sum q x sc - 32 sum_k sc_k bsums[k]. Code vector g of half h
 * covers sub-blocks 8h + 2g (lane 0) and 8h + 2g + 1 (lane 1). Pair sums <= 2 * 63 * 127 = 16002;
 * int32 lanes <= 8 * 2 * 16002 * 128 < 2^25: exact. */
void mn_vec_dot_q6_K_avx2(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q6_K *bw = w;
    const mn_block_q8_K *bx = x;
    __m256i ctrl[8]; /* vector v = 4h + g: byte 2v of the scales in lane 0, byte 2v + 1 in lane 1 */
    for (int v = 0; v < 8; v++) {
        ctrl[v] = _mm256_setr_m128i(_mm_set1_epi16((short)((2 * v) << 8 | 0x80)), _mm_set1_epi16((short)((2 * v + 1) << 8 | 0x80)));
    }
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = bx[ib].d * f16_to_f32(bw[ib].d);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)bw[ib].scales);
        const __m256i bs = _mm256_loadu_si256((const __m256i *)bx[ib].bsums);
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs); /* sum sc_k bsums[k] */
        const __m256i scb = _mm256_broadcastsi128_si256(sc8);
        const int8_t *xq = bx[ib].qs;
        __m256i q[4];
        q6_codes(&bw[ib], 0, q);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        sumi = q6_vec(sumi, q[0], xq, scb, ctrl[0]);
        sumi = q6_vec(sumi, q[1], xq + 32, scb, ctrl[1]);
        sumi = q6_vec(sumi, q[2], xq + 64, scb, ctrl[2]);
        sumi = q6_vec(sumi, q[3], xq + 96, scb, ctrl[3]);
        q6_codes(&bw[ib], 1, q);
        sumi = q6_vec(sumi, q[0], xq + 128, scb, ctrl[4]);
        sumi = q6_vec(sumi, q[1], xq + 160, scb, ctrl[5]);
        sumi = q6_vec(sumi, q[2], xq + 192, scb, ctrl[6]);
        sumi = q6_vec(sumi, q[3], xq + 224, scb, ctrl[7]);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum8(acc);
}

/* ---------------------------------------------------------------- Q8_K quantizer ------------- */

/* [sum a, sum b, sum c, sum d] of four 8-lane int32 vectors */
static inline __m128i hsum4x8_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_hadd_epi32(a, b); /* lane 0: a01 a23 b01 b23, lane 1: a45 a67 b45 b67 */
    const __m256i cd = _mm256_hadd_epi32(c, d);
    const __m256i abcd = _mm256_hadd_epi32(ab, cd); /* lane 0: a0-3 b0-3 c0-3 d0-3, lane 1: a4-7 ... */
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

void mn_quantize_q8_K_avx2(const float *src, void *dst, int64_t n) {
    mn_block_q8_K *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float *x = src + ib * MN_QK_K;
        /* amax, skipping NaN: vmaxps returns its second operand (the running max) when the first
         * is NaN */
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0) {
            memset(&b[ib], 0, sizeof b[ib]);
            continue;
        }
        /* the reference keeps the first element reaching amax (strict >): find it */
        const __m256 va = _mm256_set1_ps(amax);
        float max = 0;
        for (int k = 0; k < 32; k++) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), va, _CMP_EQ_OQ));
            if (hit) {
                max = x[8 * k + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        __m256i g[16]; /* g[k]: 8 lanes summing to bsums[k] */
        for (int k = 0; k < 8; k++) { /* 32 elements per step */
            __m256i q[4];
            for (int t = 0; t < 4; t++) {
                /* NaN -> 0 first (vmaxps would turn it into -127), then the clamp: with integer
                 * bounds, clamping before rounding equals the reference's clamp after it, and it
                 * keeps +-inf (iscale overflows when max is subnormal) away from vcvtps2dq */
                const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * t), vis);
                const __m256 p0 = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q));
                q[t] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(p0, lo), hi));
            }
            g[2 * k] = _mm256_add_epi32(q[0], q[1]);
            g[2 * k + 1] = _mm256_add_epi32(q[2], q[3]);
            /* 4 x 8 int32 -> 32 int8: the packs work per 128-bit lane, a dword permute restores order */
            const __m256i q16a = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
            const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(b[ib].qs + 32 * k), q8);
        }
        const __m128i s0 = hsum4x8_epi32(g[0], g[1], g[2], g[3]), s1 = hsum4x8_epi32(g[4], g[5], g[6], g[7]);
        const __m128i s2 = hsum4x8_epi32(g[8], g[9], g[10], g[11]), s3 = hsum4x8_epi32(g[12], g[13], g[14], g[15]);
        _mm_storeu_si128((__m128i *)b[ib].bsums, _mm_packs_epi32(s0, s1)); /* |bsum| <= 2032: no saturation */
        _mm_storeu_si128((__m128i *)(b[ib].bsums + 8), _mm_packs_epi32(s2, s3));
        b[ib].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- dequantizers --------------- */

/* dst[0..32) = d1 * q - m1 for 32 codes (bytes): the product is rounded before the subtraction,
 * as in the reference (the empty asm stops the compiler from contracting it into an FMA). */
static inline void store_affine32(__m256i codes, float d1, float m1, float *dst) {
    const __m256 vd = _mm256_set1_ps(d1), vm = _mm256_set1_ps(m1);
    const __m128i halves[2] = {_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1)};
    for (int k = 0; k < 4; k++) {
        const __m128i src = (k & 1) ? _mm_srli_si128(halves[k >> 1], 8) : halves[k >> 1];
        __m256 p = _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(src)));
        __asm__("" : "+x"(p));
        _mm256_storeu_ps(dst + 8 * k, _mm256_sub_ps(p, vm));
    }
}

static inline void k4_scales_mins_bytes(const uint8_t *s, uint8_t out[16]) {
    _mm_storeu_si128((__m128i *)out, k4_scales_mins(s));
}

void mn_to_f32_q4_K_avx2(const void *src, float *dst, int64_t n) {
    const mn_block_q4_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = f16_to_f32(b[ib].d), dmin = f16_to_f32(b[ib].dmin);
        uint8_t sm[16];
        k4_scales_mins_bytes(b[ib].scales, sm);
        float *y = dst + ib * MN_QK_K;
        for (int c = 0; c < 4; c++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(b[ib].qs + 32 * c));
            store_affine32(_mm256_and_si256(qv, m4), d * (float)sm[2 * c], dmin * (float)sm[8 + 2 * c], y + 64 * c);
            store_affine32(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), d * (float)sm[2 * c + 1],
                           dmin * (float)sm[8 + 2 * c + 1], y + 64 * c + 32);
        }
    }
}

void mn_to_f32_q5_K_avx2(const void *src, float *dst, int64_t n) {
    const mn_block_q5_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = f16_to_f32(b[ib].d), dmin = f16_to_f32(b[ib].dmin);
        uint8_t sm[16];
        k4_scales_mins_bytes(b[ib].scales, sm);
        float *y = dst + ib * MN_QK_K;
        __m256i hb = _mm256_loadu_si256((const __m256i *)b[ib].qh); /* see mn_vec_dot_q5_K_avx2 */
        for (int c = 0; c < 4; c++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(b[ib].qs + 32 * c));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
            hb = _mm256_srli_epi16(hb, 2);
            store_affine32(lo, d * (float)sm[2 * c], dmin * (float)sm[8 + 2 * c], y + 64 * c);
            store_affine32(hi, d * (float)sm[2 * c + 1], dmin * (float)sm[8 + 2 * c + 1], y + 64 * c + 32);
        }
    }
}

/* Q6_K: w = (d * sc_k) * (q - 32), one product per weight after the scalar scale product. */
void mn_to_f32_q6_K_avx2(const void *src, float *dst, int64_t n) {
    const mn_block_q6_K *b = src;
    const __m256i off = _mm256_set1_epi8(32);
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = f16_to_f32(b[ib].d);
        float *y = dst + ib * MN_QK_K;
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(&b[ib], h, q);
            for (int g = 0; g < 4; g++) {
                const __m256i sq = _mm256_sub_epi8(q[g], off); /* -32..31 */
                const __m128i halves[2] = {_mm256_castsi256_si128(sq), _mm256_extracti128_si256(sq, 1)};
                for (int s = 0; s < 2; s++) { /* sub-block 8h + 2g + s */
                    const __m256 dk = _mm256_set1_ps(d * (float)b[ib].scales[8 * h + 2 * g + s]);
                    float *yk = y + 128 * h + 32 * g + 16 * s;
                    _mm256_storeu_ps(yk, _mm256_mul_ps(dk, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(halves[s]))));
                    _mm256_storeu_ps(yk + 8, _mm256_mul_ps(dk, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(halves[s], 8)))));
                }
            }
        }
    }
}

#endif /* MN_HAVE_X86_KERNELS */
