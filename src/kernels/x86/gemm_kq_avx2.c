/*
 * gemm_kq_avx2.c: batched matrix products of the K-quants (Q4_K, Q5_K, Q6_K weights x Q8_K
 * activations) for AVX2 + FMA + F16C (no VNNI). Contract: mn_gemm_fn in kernels/kernels.h; spec:
 * mn_ref_gemm_q*_K (kernels/ref/ref_gemm.c). Same design as gemm_kq_avx512.c (read it first) on
 * 8-lane registers, one weight row per 32-bit lane:
 *   - A panel of 8 rows is repacked one super-block at a time: 64 vectors of codes (vector k, lane
 *     r = codes 4k..4k+3 of row r, unsigned), the sub-block scales as int16 pairs (sc, sc), the
 *     Q4_K/Q5_K mins as int16 pairs (m_2i, m_2i+1) or Q6_K's scales as pairs (sc_2i, sc_2i+1).
 *   - Without vpdpbusd, vpmaddubsw (u8 x s8 -> s16 pair sums, saturating) does the products and
 *     the pair sums add up in int16 as far as they provably fit: Q4_K a whole 32-weight sub-block
 *     (8 vectors: <= 8 * 2 * 15 * 127 = 30480), Q5_K half of one (4 * 2 * 31 * 127 = 31496), Q6_K
 *     half of a 16-weight sub-block (2 * 2 * 63 * 127 = 32004). Then one vpmaddwd against the
 *     (sc, sc) pair widens and scales at once: sumi += sc * s, exact in int32.
 *   - Offsets go through the Q8_K sums: Q4_K/Q5_K summ = sum_j m_j * bsum_j (4 vpmaddwd against
 *     the token's 32-weight sums as int16 pairs), Q6_K sumi -= 32 * sum_k sc_k * bsums[k] (8
 *     vpmaddwd against the token's bsums, read in place).
 *   - Microtile 8 rows x 4 tokens (16 ymm registers are the limit); K slices of one super-block,
 *     token tiles, row blocks and the software prefetch as in the AVX-512 file.
 * Lanes never mix rows or tokens and the order of operations depends only on n: results do not
 * depend on how a caller splits the rows. Decode (1-3 tokens) takes one vec_dot per (token, row).
 * Scratch on the stack, about 13 KB.
 */
#include "kernels/gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/x86.h"

enum kind { K_Q4, K_Q5, K_Q6 };

enum {
    TT = 512, /* tokens per token tile */
    RB = 256, /* rows per row block (the rows that share one computation of the side data) */
    MR = 8,   /* rows per microtile */
    NR = 4,   /* tokens per microtile */
};

/* One super-block of a packed 8-row panel: q[k] lane r = codes 4k..4k+3 of row r; sc[j] lane r =
 * (sc_j, sc_j) as int16 (j < 8 for Q4_K/Q5_K, < 16 for Q6_K); pr[i] lane r = (m_2i, m_2i+1)
 * (Q4_K/Q5_K, i < 4) or (sc_2i, sc_2i+1) (Q6_K, i < 8); d, dmin per row. 2816 bytes. */
typedef struct kpanel {
    uint8_t q[64][32];
    int32_t sc[16][8];
    int32_t pr[8][8];
    float d[8];
    float dmin[8];
} kpanel;

_Static_assert(sizeof(kpanel) % 32 == 0, "packed panels keep 32-byte alignment");

static inline size_t block_size(int kind) {
    return kind == K_Q4 ? sizeof(mn_block_q4_K) : kind == K_Q5 ? sizeof(mn_block_q5_K) : sizeof(mn_block_q6_K);
}

/* z[i] = row i's 8 dwords (i = 0..7) -> z[k] lane r = dword k of row r (as gemm_avx2.c) */
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

static inline __m256i load32(const uint8_t *const rows[8], int n_valid, int i, size_t off) {
    return i < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i] + off)) : _mm256_setzero_si256();
}

static inline int32_t pair16(int a, int b) { return (int32_t)((uint32_t)(uint16_t)a | ((uint32_t)(uint16_t)b << 16)); }

/* Super-block sb of rows[0..n_valid) (of 8) -> pk; group g = weights 32g..32g+31 (the bit
 * positions are those of gemm_kq_avx512.c's pack_kq). */
static inline __attribute__((always_inline)) void pack_kq(int kind, const uint8_t *const rows[8], int n_valid,
                                                          int64_t sb, kpanel *pk) {
    const size_t off = (size_t)sb * block_size(kind);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int g = 0; g < 8; g++) {
        __m256i z[8];
        for (int i = 0; i < 8; i++) {
            __m256i v;
            if (kind == K_Q6) {
                const int h = g / 4, u = g % 4;
                const __m256i ql = load32(rows, n_valid, i, off + (size_t)(64 * h + 32 * (u & 1)));
                const __m256i qh = load32(rows, n_valid, i, off + 128 + (size_t)(32 * h));
                const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (u >> 1))), m4);
                const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * u)), _mm256_set1_epi8(3));
                v = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
            } else {
                const size_t qs = kind == K_Q4 ? 16 : 48;
                const __m256i q = load32(rows, n_valid, i, off + qs + (size_t)(32 * (g / 2)));
                v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(4 * (g & 1))), m4);
                if (kind == K_Q5) {
                    const __m256i qh = load32(rows, n_valid, i, off + 16);
                    const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g)), _mm256_set1_epi8(1));
                    v = _mm256_or_si256(v, _mm256_slli_epi16(hb, 4));
                }
            }
            z[i] = v;
        }
        transpose_8x8(z);
        for (int k = 0; k < 8; k++) _mm256_store_si256((__m256i *)pk->q[8 * g + k], z[k]);
    }
    uint16_t hd[8], hm[8];
    for (int r = 0; r < 8; r++) {
        hd[r] = hm[r] = 0;
        if (r >= n_valid) {
            for (int j = 0; j < 16; j++) pk->sc[j][r] = 0;
            for (int i = 0; i < 8; i++) pk->pr[i][r] = 0;
            continue;
        }
        const uint8_t *b = rows[r] + off;
        if (kind == K_Q6) {
            memcpy(&hd[r], b + 208, 2);
            const int8_t *s = (const int8_t *)(b + 192);
            for (int j = 0; j < 16; j++) pk->sc[j][r] = pair16(s[j], s[j]);
            for (int i = 0; i < 8; i++) pk->pr[i][r] = pair16(s[2 * i], s[2 * i + 1]);
        } else {
            memcpy(&hd[r], b, 2);
            memcpy(&hm[r], b + 2, 2);
            const uint8_t *s = b + 4;
            int sc[8], mins[8];
            for (int j = 0; j < 8; j++) {
                if (j < 4) {
                    sc[j] = s[j] & 63;
                    mins[j] = s[j + 4] & 63;
                } else {
                    sc[j] = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
                    mins[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
                }
                pk->sc[j][r] = pair16(sc[j], sc[j]);
            }
            for (int i = 0; i < 4; i++) pk->pr[i][r] = pair16(mins[2 * i], mins[2 * i + 1]);
        }
    }
    _mm256_store_ps(pk->d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hd)));
    _mm256_store_ps(pk->dmin, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hm)));
}

/* Side data of tokens [t0, t0 + tt) for super-block sb: xd = d_x; Q4_K/Q5_K: xs[4t + i] =
 * (bsum_2i, bsum_2i+1), the sums of 32 quants, as int16 pairs (Q6_K reads its bsums in place). */
static void x_side(int kind, const void *x, size_t x_stride, int64_t t0, int tt, int64_t sb, float *xd,
                   int32_t *xs) {
    for (int t = 0; t < tt; t++) {
        const mn_block_q8_K *xb = (const mn_block_q8_K *)((const char *)x + (size_t)(t0 + t) * x_stride) + sb;
        memcpy(&xd[t], &xb->d, 4);
        if (kind == K_Q6) continue;
        int16_t bs[16];
        memcpy(bs, xb->bsums, sizeof bs);
        for (int i = 0; i < 4; i++) xs[4 * t + i] = pair16(bs[4 * i] + bs[4 * i + 1], bs[4 * i + 2] + bs[4 * i + 3]);
    }
}

static inline __m256i bcast_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* int16 sum of the products of codes q[v0 .. v0 + nv) with the token's dwords at xq + 4 * v0 */
static inline __attribute__((always_inline)) __m256i dot16(const kpanel *pk, int v0, int nv, const int8_t *xq) {
    __m256i s = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)pk->q[v0]), bcast_i32(xq + 4 * v0));
    for (int v = 1; v < nv; v++)
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)pk->q[v0 + v]),
                                                      bcast_i32(xq + 4 * (v0 + v))));
    return s;
}

/* acc[t] += panel pk . token t over one super-block; xq[t]: the token's Q8_K block. */
static inline __attribute__((always_inline)) void micro_kq(int kind, const kpanel *pk, const mn_block_q8_K *const *xq,
                                                           const float *xd, const int32_t *xs, int nr,
                                                           __m256 acc[NR]) {
    __m256i si[NR];
#pragma GCC unroll 4
    for (int t = 0; t < nr; t++) si[t] = _mm256_setzero_si256();
    if (kind == K_Q6) {
        for (int k = 0; k < 16; k++) {
            const __m256i c = _mm256_load_si256((const __m256i *)pk->sc[k]);
#pragma GCC unroll 4
            for (int t = 0; t < nr; t++) {
                si[t] = _mm256_add_epi32(si[t], _mm256_madd_epi16(dot16(pk, 4 * k, 2, xq[t]->qs), c));
                si[t] = _mm256_add_epi32(si[t], _mm256_madd_epi16(dot16(pk, 4 * k + 2, 2, xq[t]->qs), c));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) { /* - 32 sum_k sc_k bsums[k] */
            __m256i corr = _mm256_setzero_si256();
            const uint8_t *bs = (const uint8_t *)xq[t] + offsetof(mn_block_q8_K, bsums);
            for (int i = 0; i < 8; i++)
                corr = _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)pk->pr[i]), bcast_i32(bs + 4 * i)));
            si[t] = _mm256_sub_epi32(si[t], _mm256_slli_epi32(corr, 5));
        }
        const __m256 d = _mm256_load_ps(pk->d);
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si[t]), _mm256_mul_ps(d, _mm256_set1_ps(xd[t])), acc[t]);
    } else {
        for (int j = 0; j < 8; j++) {
            const __m256i c = _mm256_load_si256((const __m256i *)pk->sc[j]);
#pragma GCC unroll 4
            for (int t = 0; t < nr; t++) {
                if (kind == K_Q4) {
                    si[t] = _mm256_add_epi32(si[t], _mm256_madd_epi16(dot16(pk, 8 * j, 8, xq[t]->qs), c));
                } else {
                    si[t] = _mm256_add_epi32(si[t], _mm256_madd_epi16(dot16(pk, 8 * j, 4, xq[t]->qs), c));
                    si[t] = _mm256_add_epi32(si[t], _mm256_madd_epi16(dot16(pk, 8 * j + 4, 4, xq[t]->qs), c));
                }
            }
        }
        const __m256 d = _mm256_load_ps(pk->d), e = _mm256_load_ps(pk->dmin);
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) {
            __m256i sm = _mm256_setzero_si256();
            for (int i = 0; i < 4; i++)
                sm = _mm256_add_epi32(sm, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)pk->pr[i]),
                                                            _mm256_set1_epi32(xs[4 * t + i])));
            const __m256 dx = _mm256_set1_ps(xd[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si[t]), _mm256_mul_ps(d, dx), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(sm), _mm256_mul_ps(e, dx), acc[t]);
        }
    }
}

static inline __m256i lane_mask(int nv) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void tile_kq(int kind, const kpanel *pk, bool first, const void *x,
                                                          size_t x_stride, int64_t sb, int64_t t, int t_in_tile,
                                                          const float *xd, const int32_t *xs, int nr, float *y,
                                                          int64_t y_stride, int64_t r0, __m256i m) {
    const mn_block_q8_K *xq[NR];
    __m256 acc[NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        xq[j] = (const mn_block_q8_K *)((const char *)x + (size_t)(t + j) * x_stride) + sb;
        acc[j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(y + (t + j) * y_stride + r0, m);
    }
    micro_kq(kind, pk, xq, xd + t_in_tile, xs + 4 * t_in_tile, nr, acc);
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) _mm256_maskstore_ps(y + (t + j) * y_stride + r0, m, acc[j]);
}

static inline int imin(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

/* Software prefetch of what the next slice packs (see gemm_avx512.c) */
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

/* Loop nest: token tile > row block > super-block > row group (8) > 4 tokens. */
static inline __attribute__((always_inline)) void gemm_kq(int kind, MN_GEMM_ARGS) {
    _Alignas(32) kpanel pk;
    float xd[TT];
    int32_t xs[TT * 4];
    const int64_t nsb = n / MN_QK_K;
    const size_t bsz = block_size(kind);
    for (int64_t t0 = 0; t0 < n_tok; t0 += TT) {
        const int tt = imin(TT, n_tok - t0);
        for (int64_t rb = 0; rb < n_rows; rb += RB) {
            const int64_t rb1 = rb + RB < n_rows ? rb + RB : n_rows;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const bool first = sb == 0;
                x_side(kind, x, x_stride, t0, tt, sb, xd, xs);
                /* the next super-block of this row block, or the first of the next row block */
                prefetcher pf = {w, w_stride, (size_t)(sb + 1) * bsz, bsz, 0, rb, rb1};
                if (sb + 1 >= nsb) {
                    pf.off = 0;
                    pf.r = rb1;
                    pf.r1 = rb1 + RB < n_rows ? rb1 + RB : n_rows;
                }
                const int lines_per_tile = (int)(((pf.len + 127) / 64 * (size_t)(pf.r1 - pf.r)) /
                                                 ((size_t)(rb1 - rb + MR - 1) / MR * (size_t)(tt + NR - 1) / NR)) + 1;
                for (int64_t r0 = rb; r0 < rb1; r0 += MR) {
                    const int nv = imin(MR, n_rows - r0);
                    const uint8_t *rows[8]; /* rows past the matrix are never read: packed as zeros */
                    for (int i = 0; i < 8; i++) rows[i] = (const uint8_t *)w + (i < nv ? (size_t)(r0 + i) * w_stride : 0);
                    pack_kq(kind, rows, nv, sb, &pk);
                    const __m256i m = lane_mask(nv);
                    int64_t t = t0;
                    for (; t + NR <= t0 + tt; t += NR) {
                        tile_kq(kind, &pk, first, x, x_stride, sb, t, (int)(t - t0), xd, xs, NR, y, y_stride, r0, m);
                        prefetch_lines(&pf, lines_per_tile);
                    }
                    const int left = (int)(t0 + tt - t), ti = (int)(t - t0);
                    if (left == 3) tile_kq(kind, &pk, first, x, x_stride, sb, t, ti, xd, xs, 3, y, y_stride, r0, m);
                    if (left == 2) tile_kq(kind, &pk, first, x, x_stride, sb, t, ti, xd, xs, 2, y, y_stride, r0, m);
                    if (left == 1) tile_kq(kind, &pk, first, x, x_stride, sb, t, ti, xd, xs, 1, y, y_stride, r0, m);
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

void mn_gemm_q4_K_avx2(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q4_K_avx2, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q4, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q5_K_avx2(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q5_K_avx2, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q5, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q6_K_avx2(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q6_K_avx2, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q6, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

#endif /* __x86_64__ */
