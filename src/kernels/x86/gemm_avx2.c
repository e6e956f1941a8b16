/*
 * gemm_avx2.c: batched matrix products (prefill) for AVX2 + FMA + F16C (no VNNI).
 * Contract: mn_gemm_fn in kernels/kernels.h; spec: kernels/ref/ref_gemm.c.
 *
 * Same structure as gemm_avx512.c (read its comment first), on 8-lane registers:
 *   - Weights are repacked 8 rows x 16 blocks at a time: per block 8 vectors, vector k holding in
 *     lane r the 4 weights 4k..4k+3 of row r; activations are broadcast 4 bytes at a time.
 *   - Without vpdpbusd, vpmaddubsw (u8 x s8 -> s16 pair sums, saturating) does the products:
 *     Q4_0 packs the nibbles q = w + 8 (0..15): a pair sum is at most 2 * 15 * 127 = 3810, so the 8
 *     vectors of a block add up in int16 (<= 30480) before one vpmaddwd widens them; the bias
 *     -8 * sum(x) is added per token and block. Q8_0 packs w as is (s8): vpmaddubsw takes |w| and x
 *     with w's sign (pair sums <= 2 * 128 * 127 = 32512), and each vector is widened on its own.
 *   - Microtile 8 rows x 4 tokens (16 ymm registers are the limit); K slices of 16 blocks, tiles
 *     of 256 tokens, y accumulated across slices, as in the AVX-512 file.
 * F32 / F16 / BF16: dot-product form, 4 rows x 2 tokens of 8-lane FMA accumulators, scalar tail
 * for n % 8, tokens tiled to stay in L2; row and token tails reuse the last valid one.
 * Lanes never mix rows or tokens and the summation order depends only on n, so results do not
 * depend on how a caller splits rows or tokens. Scratch on the stack, about 37 KB.
 */
#include "kernels/gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/x86.h"

/* ---------------------------------------------------------------- Q8_0 / Q4_0 ----------------- */

enum {
    KB = 8,   /* blocks per K slice */
    TT = 512, /* tokens per token tile */
    RB = 256, /* rows per row block (the rows that share one computation of the side data) */
    MR = 8,   /* rows per microtile */
    NR = 4,   /* tokens per microtile */
};

/* One block of a packed 8-row panel: q[k] lane r = weights 4k..4k+3 of row r; d[r] = its scale. */
typedef struct pblock {
    uint8_t q[8][32];
    float d[8];
} pblock;

_Static_assert(sizeof(pblock) % 32 == 0, "packed blocks keep 32-byte alignment");

/* z[i] = row i's 8 dwords (i = 0..7) -> z[k] lane r = dword k of row r */
static inline void transpose_8x8(__m256i z[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(z[i], z[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(z[i], z[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_unpacklo_epi64(t[h], t[h + 2]);
        u[h + 1] = _mm256_unpackhi_epi64(t[h], t[h + 2]);
        u[h + 2] = _mm256_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h + 3] = _mm256_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    for (int k = 0; k < 4; k++) {
        z[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
        z[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
    }
}

static inline void pack_scales(const uint8_t *const rows[8], int n_valid, size_t off, float *dst) {
    uint16_t h[8];
    for (int r = 0; r < 8; r++) {
        h[r] = 0;
        if (r < n_valid) memcpy(&h[r], rows[r] + off, 2);
    }
    _mm256_store_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
}

static void pack_q8_0(const uint8_t *const rows[8], int n_valid, int64_t kb0, int kb, pblock *pk) {
    for (int b = 0; b < kb; b++) {
        const size_t off = (size_t)(kb0 + b) * sizeof(mn_block_q8_0);
        __m256i z[8];
        for (int i = 0; i < 8; i++)
            z[i] = i < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i] + off + 2)) : _mm256_setzero_si256();
        transpose_8x8(z);
        for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)pk[b].q[k], z[k]);
        pack_scales(rows, n_valid, off, pk[b].d);
    }
}

static void pack_q4_0(const uint8_t *const rows[8], int n_valid, int64_t kb0, int kb, pblock *pk) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    for (int b = 0; b < kb; b++) {
        const size_t off = (size_t)(kb0 + b) * sizeof(mn_block_q4_0);
        __m256i z[8];
        for (int i = 0; i < 8; i++) {
            const __m128i q = i < n_valid ? _mm_loadu_si128((const __m128i *)(rows[i] + off + 2)) : _mm_setzero_si128();
            z[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
        }
        transpose_8x8(z);
        for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)pk[b].q[k], z[k]);
        pack_scales(rows, n_valid, off, pk[b].d);
    }
}

/* sum of the 32 signed bytes of an activation block */
static inline int32_t sum_i8x32(const int8_t *q) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), _mm256_set1_epi8((char)0x80));
    const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256()); /* 4 sums of (x + 128) */
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
}

/* xd = d_x as f32, xc = -c * sum(x), for tokens [t0, t0 + tt) x blocks [kb0, kb0 + kb) */
static void x_side(const void *x, size_t x_stride, int64_t t0, int tt, int64_t kb0, int kb, int32_t c, float *xd,
                   int32_t *xc) {
    for (int t = 0; t < tt; t++) {
        const mn_block_q8_0 *xb = (const mn_block_q8_0 *)((const char *)x + (size_t)(t0 + t) * x_stride) + kb0;
        for (int b = 0; b < kb; b++) {
            xd[t * KB + b] = _cvtsh_ss(xb[b].d);
            xc[t * KB + b] = c ? -c * sum_i8x32(xb[b].qs) : 0;
        }
    }
}

static inline __m256i bcast_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* acc[t] += packed rows . token t over kb blocks (is_q4 and nr are constants after inlining) */
static inline __attribute__((always_inline)) void micro_q(bool is_q4, const pblock *pk, int kb,
                                                          const mn_block_q8_0 *const *xq, const float *xd,
                                                          const int32_t *xc, int nr, __m256 acc[NR]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < kb; b++) {
        __m256i s[NR];
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) s[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const __m256i wk = _mm256_load_si256((const __m256i *)pk[b].q[k]);
            if (is_q4) {
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) /* int16 sums, <= 8 * 3810 */
                    s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(wk, bcast_i32(xq[t][b].qs + 4 * k)));
            } else {
                const __m256i wa = _mm256_sign_epi8(wk, wk);
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) {
                    const __m256i xs = _mm256_sign_epi8(bcast_i32(xq[t][b].qs + 4 * k), wk);
                    s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, xs), ones));
                }
            }
        }
        const __m256 d = _mm256_load_ps(pk[b].d);
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) {
            __m256i si = s[t];
            if (is_q4) si = _mm256_add_epi32(_mm256_madd_epi16(si, ones), _mm256_set1_epi32(xc[t * KB + b]));
            const __m256 dx = _mm256_set1_ps(xd[t * KB + b]);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(d, dx), acc[t]);
        }
    }
}

/* masked 8-float load/store of the first nv lanes */
static inline __m256i lane_mask(int nv) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void tile_q(bool is_q4, const pblock *pk, int kb, bool first,
                                                         const void *x, size_t x_stride, int64_t kb0, int64_t t,
                                                         int t_in_tile, const float *xd, const int32_t *xc, int nr,
                                                         float *y, int64_t y_stride, int64_t r0, __m256i m) {
    const mn_block_q8_0 *xq[NR];
    __m256 acc[NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        xq[j] = (const mn_block_q8_0 *)((const char *)x + (size_t)(t + j) * x_stride) + kb0;
        acc[j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(y + (t + j) * y_stride + r0, m);
    }
    micro_q(is_q4, pk, kb, xq, xd + t_in_tile * KB, xc + t_in_tile * KB, nr, acc);
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) _mm256_maskstore_ps(y + (t + j) * y_stride + r0, m, acc[j]);
}

static inline int imin(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

/* Software prefetch of what the next K slice packs (see gemm_avx512.c) */
typedef struct prefetcher {
    const uint8_t *w;
    size_t w_stride, off, len, pos;
    int64_t r, r1;
} prefetcher;

static inline void prefetch_lines(prefetcher *pf, int lines) {
    for (int i = 0; i < lines && pf->r < pf->r1; i++) {
        _mm_prefetch((const char *)pf->w + (size_t)pf->r * pf->w_stride + pf->off + pf->pos, _MM_HINT_T0);
        pf->pos += 64;
        if (pf->pos >= pf->len + 63) {
            pf->pos = 0;
            pf->r++;
        }
    }
}

/* Loop nest as in gemm_avx512.c: token tile > row block > K slice > row group (8) > 4 tokens. */
static inline __attribute__((always_inline)) void gemm_q(bool is_q4, MN_GEMM_ARGS) {
    _Alignas(32) pblock pk[KB];
    float xd[TT * KB];
    int32_t xc[TT * KB];
    const size_t block_size = is_q4 ? sizeof(mn_block_q4_0) : sizeof(mn_block_q8_0);
    const int64_t nb = n / MN_QK8_0;
    for (int64_t t0 = 0; t0 < n_tok; t0 += TT) {
        const int tt = imin(TT, n_tok - t0);
        for (int64_t rb = 0; rb < n_rows; rb += RB) {
            const int64_t rb1 = rb + RB < n_rows ? rb + RB : n_rows;
            for (int64_t kb0 = 0; kb0 < nb; kb0 += KB) {
                const int kb = imin(KB, nb - kb0);
                const bool first = kb0 == 0;
                x_side(x, x_stride, t0, tt, kb0, kb, is_q4 ? 8 : 0, xd, xc);
                prefetcher pf = {w, w_stride, (size_t)(kb0 + KB) * block_size, (size_t)KB * block_size, 0, rb, rb1};
                if (kb0 + KB >= nb) {
                    pf.off = 0;
                    pf.r = rb1;
                    pf.r1 = rb1 + RB < n_rows ? rb1 + RB : n_rows;
                } else if (kb0 + 2 * KB > nb) {
                    pf.len = (size_t)(nb - kb0 - KB) * block_size;
                }
                const int lines_per_tile = (int)(((pf.len + 127) / 64 * (size_t)(pf.r1 - pf.r)) /
                                                 ((size_t)(rb1 - rb + MR - 1) / MR * (size_t)(tt + NR - 1) / NR)) + 1;
                for (int64_t r0 = rb; r0 < rb1; r0 += MR) {
                    const int nv = imin(MR, n_rows - r0);
                    const uint8_t *rows[8]; /* rows past the matrix are never read: packed as zeros */
                    for (int i = 0; i < 8; i++) rows[i] = (const uint8_t *)w + (i < nv ? (size_t)(r0 + i) * w_stride : 0);
                    if (is_q4) pack_q4_0(rows, nv, kb0, kb, pk);
                    else pack_q8_0(rows, nv, kb0, kb, pk);
                    const __m256i m = lane_mask(nv);
                    int64_t t = t0;
                    for (; t + NR <= t0 + tt; t += NR) {
                        tile_q(is_q4, pk, kb, first, x, x_stride, kb0, t, (int)(t - t0), xd, xc, NR, y, y_stride, r0, m);
                        prefetch_lines(&pf, lines_per_tile);
                    }
                    const int left = (int)(t0 + tt - t), ti = (int)(t - t0);
                    if (left == 3) tile_q(is_q4, pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 3, y, y_stride, r0, m);
                    if (left == 2) tile_q(is_q4, pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 2, y, y_stride, r0, m);
                    if (left == 1) tile_q(is_q4, pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 1, y, y_stride, r0, m);
                }
            }
        }
    }
}

/* Below 4 tokens packing does not pay: one vec_dot per (token, row). */
enum { PACK_MIN_TOK = 4 };

static void by_dots(mn_vec_dot_fn dot, MN_GEMM_ARGS) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_rows; r++)
            dot(n, (const char *)w + (size_t)r * w_stride, (const char *)x + (size_t)t * x_stride, &y[t * y_stride + r]);
}

void mn_gemm_q8_0_avx2(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q8_0_avx2, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_q(false, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q4_0_avx2(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q4_0_avx2, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_q(true, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

/* ---------------------------------------------------------------- F32 / F16 / BF16 ------------ */

enum { FR = 4, FT = 2 }; /* rows x tokens per microtile */

enum wkind { W_F32, W_F16, W_BF16 };

static inline __attribute__((always_inline)) __m256 load_w8(int kind, const void *row, int64_t i) {
    switch (kind) {
    case W_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    case W_BF16: {
        const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    default: return _mm256_loadu_ps((const float *)row + i);
    }
}

static inline float load_w1(int kind, const void *row, int64_t i) {
    uint16_t h;
    switch (kind) {
    case W_F16: return _cvtsh_ss(((const uint16_t *)row)[i]);
    case W_BF16: {
        h = ((const uint16_t *)row)[i];
        const uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: return ((const float *)row)[i];
    }
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) void micro_f(int kind, int64_t n, const void *const wr[FR],
                                                          const float *const xr[FT], float out[FR][FT]) {
    __m256 acc[FR][FT];
    for (int a = 0; a < FR; a++)
        for (int b = 0; b < FT; b++) acc[a][b] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[FR];
#pragma GCC unroll 4
        for (int a = 0; a < FR; a++) wv[a] = load_w8(kind, wr[a], i);
#pragma GCC unroll 2
        for (int b = 0; b < FT; b++) {
            const __m256 xv = _mm256_loadu_ps(xr[b] + i);
#pragma GCC unroll 4
            for (int a = 0; a < FR; a++) acc[a][b] = _mm256_fmadd_ps(wv[a], xv, acc[a][b]);
        }
    }
    for (int a = 0; a < FR; a++)
        for (int b = 0; b < FT; b++) {
            float s = hsum8(acc[a][b]);
            for (int64_t j = i; j < n; j++) s += load_w1(kind, wr[a], j) * xr[b][j];
            out[a][b] = s;
        }
}

static inline __attribute__((always_inline)) void gemm_f(int kind, MN_GEMM_ARGS) {
    int64_t tt = (65536 / (n > 0 ? n : 1)) / FT * FT; /* the tile's activations stay within ~256 KB */
    if (tt < FT) tt = FT;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tt) {
        const int64_t t1 = t0 + tt < n_tok ? t0 + tt : n_tok;
        for (int64_t r0 = 0; r0 < n_rows; r0 += FR) {
            const void *wr[FR];
            for (int a = 0; a < FR; a++)
                wr[a] = (const char *)w + (size_t)(r0 + a < n_rows ? r0 + a : n_rows - 1) * w_stride;
            for (int64_t t = t0; t < t1; t += FT) {
                const float *xr[FT];
                for (int b = 0; b < FT; b++)
                    xr[b] = (const float *)((const char *)x + (size_t)(t + b < t1 ? t + b : t1 - 1) * x_stride);
                float out[FR][FT];
                micro_f(kind, n, wr, xr, out);
                for (int b = 0; b < FT && t + b < t1; b++)
                    for (int a = 0; a < FR && r0 + a < n_rows; a++) y[(t + b) * y_stride + r0 + a] = out[a][b];
            }
        }
    }
}

void mn_gemm_f32_avx2(MN_GEMM_ARGS) { gemm_f(W_F32, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride); }
void mn_gemm_f16_avx2(MN_GEMM_ARGS) { gemm_f(W_F16, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride); }
void mn_gemm_bf16_avx2(MN_GEMM_ARGS) { gemm_f(W_BF16, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride); }

#endif /* __x86_64__ */
