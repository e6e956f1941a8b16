/*
 * kquants_avx512.c: AVX-512 (F/BW/VL/DQ + VNNI) kernels of the K-quants: Q4_K, Q5_K, Q6_K x Q8_K
 * dot products, the Q8_K activation quantizer and the K-quant dequantizers. Semantics: the
 * mn_ref_* functions of kernels/ref/ref_kquants.c; layouts: kernels/blocks.h.
 *
 * Dot products keep the whole super-block in one 512-bit int32 accumulator:
 *   - 64 weight codes per register, unpacked as unsigned bytes in the same order as the 64
 *     activation bytes they meet, so one plain 64-byte load of Q8_K quants pairs with them;
 *   - vpmaddubsw (u8 x s8 -> int16 pairs; <= 2 * 63 * 127, never saturates) then VNNI vpdpwssd
 *     multiplies each int16 pair sum by its sub-block scale and accumulates into int32, exactly:
 *     one instruction for what takes vpmaddwd + vpaddd on AVX2;
 *   - Q4_K/Q5_K: a 64-weight chunk is 32 nibble bytes; broadcasting them to both 256-bit halves
 *     and shifting only the upper half (a masked vpsrlw) yields [low nibbles | high nibbles] =
 *     weights 64c .. 64c + 63 in order, with no cross-lane shuffle. Q5_K's fifth bit is a
 *     vptestmb of the broadcast qh bytes against a per-half bit, added under that mask;
 *   - Q6_K: 64 ql bytes give weights 0..63 (low nibbles) and 64..127 (high nibbles) of a half,
 *     the qh bits come from a broadcast of its 32 qh bytes shifted per 256-bit half (vpsllvw /
 *     vpsrlvw); each 128-bit lane is exactly one 16-weight sub-block;
 *   - scales are spread with vpshufb from a register holding the scale bytes in every 128-bit
 *     lane; offsets (mins, Q6_K's -32) go through the Q8_K bsums, never the quants;
 *   - per super-block: one vcvtdq2ps + one FMA with d_x * d_w into 16 f32 lanes; one horizontal
 *     sum per row.
 * The Q8_K quantizer and the dequantizers are bit-identical to the reference (see
 * kquants_avx2.c; here the dequantizer's multiply uses an explicit-rounding intrinsic, which
 * the compiler never fuses into an FMA).
 * Runs only after dispatch.c has seen every feature the file is compiled with (AVX2, FMA, F16C,
 * BMI2, AVX-512 F/BW/VL/DQ/VNNI/BF16).
 */
#include "kernels/x86/x86.h"

#if defined(MN_HAVE_X86_KERNELS)

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels/blocks.h"

/* ---------------------------------------------------------------- helpers -------------------- */

static inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum4(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

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

/* vpshufb control: every word of the low 256 bits = zero-extended byte a, of the high 256 bits =
 * byte b (bytes of the source's 128-bit lane). */
static inline __m512i zext_bytes_ctrl(int a, int b) {
    const __m256i lo = _mm256_set1_epi16((short)(0x8000 | a)), hi = _mm256_set1_epi16((short)(0x8000 | b));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* vpshufb control: every word of 128-bit lane k = byte (first + k) in its high byte, zero low
 * byte (an arithmetic >> 8 then sign-extends it). */
static inline __m512i high_bytes_ctrl(int first) {
    __m512i r = _mm512_castsi128_si512(_mm_set1_epi16((short)((first << 8) | 0x80)));
    r = _mm512_inserti32x4(r, _mm_set1_epi16((short)(((first + 1) << 8) | 0x80)), 1);
    r = _mm512_inserti32x4(r, _mm_set1_epi16((short)(((first + 2) << 8) | 0x80)), 2);
    return _mm512_inserti32x4(r, _mm_set1_epi16((short)(((first + 3) << 8) | 0x80)), 3);
}

/* 32 nibble bytes of chunk c -> 64 codes 0..15: bytes 0..31 low nibbles (weights 64c + l),
 * bytes 32..63 high nibbles (weights 64c + 32 + l). */
static inline __m512i k4_chunk_codes(const uint8_t *qs32) {
    const __m512i qb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qs32));
    return _mm512_and_si512(_mm512_mask_srli_epi16(qb, (__mmask32)0xffff0000u, qb, 4), _mm512_set1_epi8(0x0f));
}

/* ---------------------------------------------------------------- Q4_K / Q5_K ---------------- */

/* Constants of the Q4_K/Q5_K dot: per-chunk scale spreads and Q5_K bit selectors. */
typedef struct k4_consts {
    __m512i sc_ctrl[4]; /* chunk c: low half <- sc[2c], high half <- sc[2c + 1] (zero-extended) */
    __m512i bit[4];     /* chunk c: bit 2c in the low half, bit 2c + 1 in the high half */
    __m256i m_ctrl;     /* [m0 m0 m1 m1 m2 m2 m3 m3 | m4 m4 .. m7 m7] as int16 */
} k4_consts;

static inline k4_consts k4_consts_make(void) {
    k4_consts k;
    for (int c = 0; c < 4; c++) {
        k.sc_ctrl[c] = zext_bytes_ctrl(2 * c, 2 * c + 1);
        k.bit[c] = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))), _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
    }
    k.m_ctrl = _mm256_setr_epi8(8, -128, 8, -128, 9, -128, 9, -128, 10, -128, 10, -128, 11, -128, 11, -128, /* lane 0 */
                                12, -128, 12, -128, 13, -128, 13, -128, 14, -128, 14, -128, 15, -128, 15, -128);
    return k;
}

/* One chunk (64 weights) of a Q4_K/Q5_K super-block into the int32 accumulator. */
static inline __m512i k4_chunk(__m512i sumi, const uint8_t *qs32, const int8_t *x64, __m512i scz, __m512i sc_ctrl,
                               const __m512i *hb, __m512i bit) {
    __m512i q = k4_chunk_codes(qs32);
    if (hb) q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(*hb, bit), q, _mm512_set1_epi8(16));
    const __m512i p = _mm512_maddubs_epi16(q, _mm512_loadu_si512(x64));
    return _mm512_dpwssd_epi32(sumi, p, _mm512_shuffle_epi8(scz, sc_ctrl));
}

/* One Q4_K or Q5_K super-block (qh NULL for Q4_K) against Q8_K: accumulates d * sum sc_j (q.x)_j
 * into acc and dmin * sum_j m_j (bsums[2j] + bsums[2j + 1]) into acc_m. int32 lanes reach at most
 * 4 chunks * 2 pairs * 2 * 31 * 127 * 63 < 2^23: exact (and exactly convertible to f32).
 * dm points at the adjacent f16 pair (d, dmin), converted together. */
static inline void k4_super(const uint8_t *dm, const uint8_t *scales, const uint8_t *qh, const uint8_t *qs,
                            const mn_block_q8_K *bx, const k4_consts *k, __m512 *acc, __m256 *acc_m) {
    uint32_t dm_bits;
    memcpy(&dm_bits, dm, 4);
    const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dm_bits)), _mm_set1_ps(bx->d)); /* d dx, dmin dx */
    const __m512i scz = _mm512_broadcast_i32x4(k4_scales_mins(scales));
    const uint8_t *bsums = (const uint8_t *)bx + offsetof(mn_block_q8_K, bsums);
    const __m256i pm = _mm256_madd_epi16(_mm256_shuffle_epi8(_mm512_castsi512_si256(scz), k->m_ctrl),
                                         _mm256_loadu_si256((const __m256i *)bsums));
    *acc_m = _mm256_fmadd_ps(_mm256_permutexvar_ps(_mm256_set1_epi32(1), _mm256_castps128_ps256(dd)), _mm256_cvtepi32_ps(pm),
                             *acc_m);
    __m512i hbv = _mm512_setzero_si512();
    if (qh) hbv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
    const __m512i *hb = qh ? &hbv : NULL;
    __m512i sumi = _mm512_setzero_si512();
    sumi = k4_chunk(sumi, qs, bx->qs, scz, k->sc_ctrl[0], hb, k->bit[0]);
    sumi = k4_chunk(sumi, qs + 32, bx->qs + 64, scz, k->sc_ctrl[1], hb, k->bit[1]);
    sumi = k4_chunk(sumi, qs + 64, bx->qs + 128, scz, k->sc_ctrl[2], hb, k->bit[2]);
    sumi = k4_chunk(sumi, qs + 96, bx->qs + 192, scz, k->sc_ctrl[3], hb, k->bit[3]);
    *acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(dd), _mm512_cvtepi32_ps(sumi), *acc);
}

static inline float hsum8(__m256 v) { return hsum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

void mn_vec_dot_q4_K_avx512(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q4_K *bw = w;
    const mn_block_q8_K *bx = x;
    const k4_consts k = k4_consts_make();
    __m512 acc = _mm512_setzero_ps();
    __m256 acc_m = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        k4_super((const uint8_t *)&bw[ib], bw[ib].scales, NULL, bw[ib].qs, &bx[ib], &k, &acc, &acc_m);
    }
    *out = _mm512_reduce_add_ps(acc) - hsum8(acc_m);
}

void mn_vec_dot_q5_K_avx512(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q5_K *bw = w;
    const mn_block_q8_K *bx = x;
    const k4_consts k = k4_consts_make();
    __m512 acc = _mm512_setzero_ps();
    __m256 acc_m = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        k4_super((const uint8_t *)&bw[ib], bw[ib].scales, bw[ib].qh, bw[ib].qs, &bx[ib], &k, &acc, &acc_m);
    }
    *out = _mm512_reduce_add_ps(acc) - hsum8(acc_m);
}

/* ---------------------------------------------------------------- Q6_K ----------------------- */

/* Codes (0..63) of Q6_K half h: a = weights 128h + 0..63, b = weights 128h + 64..127. The qh byte
 * of weight l + 32g holds its high bits at 2g..2g+1; per 256-bit half the shift counts bring them
 * to bits 4..5 (a: << 4 and << 2; b: >> 0 and >> 2); bits crossing into the neighbour byte of a
 * 16-bit lane fall outside the 0x30 mask. */
static inline void q6_half_codes(const mn_block_q6_K *b, int h, __m512i *a, __m512i *bb) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    const __m512i sh_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sh_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
    const __m512i hq = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
    *a = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(hq, sh_a), m2));
    *bb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(_mm512_srlv_epi16(hq, sh_b), m2));
}

/* Q6_K x Q8_K: sum (q - 32) x sc = sum q x sc - 32 sum_k sc_k bsums[k]. int32 lanes: at most
 * 4 vpdpwssd * 2 * 16002 * 128 < 2^25 before the correction. */
void mn_vec_dot_q6_K_avx512(int64_t n, const void *w, const void *x, float *out) {
    const mn_block_q6_K *bw = w;
    const mn_block_q8_K *bx = x;
    /* lane k of code register a of half h is sub-block 8h + k, of register b 8h + 4 + k */
    const __m512i ctrl[4] = {high_bytes_ctrl(0), high_bytes_ctrl(4), high_bytes_ctrl(8), high_bytes_ctrl(12)};
    __m512 acc = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = bx[ib].d * f16_to_f32(bw[ib].d);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)bw[ib].scales);
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)bx[ib].bsums));
        const __m512i scz = _mm512_broadcast_i32x4(sc8);
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i qa, qb;
            q6_half_codes(&bw[ib], h, &qa, &qb);
            const __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(bx[ib].qs + 128 * h));
            const __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(bx[ib].qs + 128 * h + 64));
            sumi = _mm512_dpwssd_epi32(sumi, pa, _mm512_srai_epi16(_mm512_shuffle_epi8(scz, ctrl[2 * h]), 8));
            sumi = _mm512_dpwssd_epi32(sumi, pb, _mm512_srai_epi16(_mm512_shuffle_epi8(scz, ctrl[2 * h + 1]), 8));
        }
        sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *out = _mm512_reduce_add_ps(acc);
}

/* ---------------------------------------------------------------- Q8_K quantizer ------------- */

/* Bit-identical to mn_ref_from_f32_q8_K; see mn_quantize_q8_K_avx2 for each step's reasoning. */
void mn_quantize_q8_K_avx512(const float *src, void *dst, int64_t n) {
    mn_block_q8_K *b = dst;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float *x = src + ib * MN_QK_K;
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), m);
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0) {
            memset(&b[ib], 0, sizeof b[ib]);
            continue;
        }
        const __m512 va = _mm512_set1_ps(amax);
        float max = 0;
        for (int k = 0; k < 16; k++) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), va, _CMP_EQ_OQ);
            if (hit) {
                max = x[16 * k + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m512 vis = _mm512_set1_ps(iscale);
        const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        for (int k = 0; k < 16; k++) { /* 16 elements = one bsums group */
            const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * k), vis);
            const __m512 p0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p); /* NaN -> 0 */
            const __m512i q = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(p0, lo), hi));
            _mm_storeu_si128((__m128i *)(b[ib].qs + 16 * k), _mm512_cvtepi32_epi8(q));
            b[ib].bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        b[ib].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- dequantizers --------------- */

/* dst[0..64) = d1 * q - m1 for the 64 codes of a chunk: the low 32 bytes use (d1a, m1a), the high
 * 32 (d1b, m1b). The product rounds before the subtraction, as in the reference. */
static inline void store_affine64(__m512i codes, float d1a, float m1a, float d1b, float m1b, float *dst) {
    const __m128i c0 = _mm512_extracti32x4_epi32(codes, 0), c1 = _mm512_extracti32x4_epi32(codes, 1);
    const __m128i c2 = _mm512_extracti32x4_epi32(codes, 2), c3 = _mm512_extracti32x4_epi32(codes, 3);
    const __m512 da = _mm512_set1_ps(d1a), ma = _mm512_set1_ps(m1a), db = _mm512_set1_ps(d1b), mb = _mm512_set1_ps(m1b);
    enum { rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }; /* a constant even at -O0 */
    _mm512_storeu_ps(dst, _mm512_sub_ps(_mm512_mul_round_ps(da, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c0)), rn), ma));
    _mm512_storeu_ps(dst + 16, _mm512_sub_ps(_mm512_mul_round_ps(da, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c1)), rn), ma));
    _mm512_storeu_ps(dst + 32, _mm512_sub_ps(_mm512_mul_round_ps(db, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c2)), rn), mb));
    _mm512_storeu_ps(dst + 48, _mm512_sub_ps(_mm512_mul_round_ps(db, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c3)), rn), mb));
}

static void k4_to_f32(const uint16_t dw, const uint16_t dminw, const uint8_t *scales, const uint8_t *qh,
                      const uint8_t *qs, float *y) {
    const float d = f16_to_f32(dw), dmin = f16_to_f32(dminw);
    uint8_t sm[16];
    _mm_storeu_si128((__m128i *)sm, k4_scales_mins(scales));
    __m512i hb = _mm512_setzero_si512();
    if (qh) hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
    for (int c = 0; c < 4; c++) {
        __m512i q = k4_chunk_codes(qs + 32 * c);
        if (qh) {
            const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                                   _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
            q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(hb, bit), q, _mm512_set1_epi8(16));
        }
        store_affine64(q, d * (float)sm[2 * c], dmin * (float)sm[8 + 2 * c], d * (float)sm[2 * c + 1],
                       dmin * (float)sm[8 + 2 * c + 1], y + 64 * c);
    }
}

void mn_to_f32_q4_K_avx512(const void *src, float *dst, int64_t n) {
    const mn_block_q4_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) k4_to_f32(b[ib].d, b[ib].dmin, b[ib].scales, NULL, b[ib].qs, dst + ib * MN_QK_K);
}

void mn_to_f32_q5_K_avx512(const void *src, float *dst, int64_t n) {
    const mn_block_q5_K *b = src;
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        k4_to_f32(b[ib].d, b[ib].dmin, b[ib].scales, b[ib].qh, b[ib].qs, dst + ib * MN_QK_K);
    }
}

/* Q6_K: w = (d * sc_k) * (q - 32); each 16-byte lane of a code register is one sub-block. */
void mn_to_f32_q6_K_avx512(const void *src, float *dst, int64_t n) {
    const mn_block_q6_K *b = src;
    const __m512i off = _mm512_set1_epi8(32);
    for (int64_t ib = 0; ib < n / MN_QK_K; ib++) {
        const float d = f16_to_f32(b[ib].d);
        float *y = dst + ib * MN_QK_K;
        for (int h = 0; h < 2; h++) {
            __m512i qv[2];
            q6_half_codes(&b[ib], h, &qv[0], &qv[1]);
            for (int r = 0; r < 2; r++) {
                const __m512i sq = _mm512_sub_epi8(qv[r], off);
                const int k0 = 8 * h + 4 * r; /* sub-block of lane 0 */
                float *yk = y + 16 * k0;
                _mm512_storeu_ps(yk, _mm512_mul_ps(_mm512_set1_ps(d * (float)b[ib].scales[k0]),
                                                   _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(sq, 0)))));
                _mm512_storeu_ps(yk + 16, _mm512_mul_ps(_mm512_set1_ps(d * (float)b[ib].scales[k0 + 1]),
                                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(sq, 1)))));
                _mm512_storeu_ps(yk + 32, _mm512_mul_ps(_mm512_set1_ps(d * (float)b[ib].scales[k0 + 2]),
                                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(sq, 2)))));
                _mm512_storeu_ps(yk + 48, _mm512_mul_ps(_mm512_set1_ps(d * (float)b[ib].scales[k0 + 3]),
                                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(sq, 3)))));
            }
        }
    }
}

#endif /* MN_HAVE_X86_KERNELS */
