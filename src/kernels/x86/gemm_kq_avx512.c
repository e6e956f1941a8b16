/*
 * gemm_kq_avx512.c: batched matrix products of the K-quants (Q4_K, Q5_K, Q6_K weights x Q8_K
 * activations) for AVX-512 F/BW/VL/DQ/VNNI. Contract: mn_gemm_fn in kernels/kernels.h; spec:
 * mn_ref_gemm_q*_K (kernels/ref/ref_gemm.c); layouts: kernels/blocks.h. The design is the one of
 * the Q8_0/Q4_0 path in gemm_avx512.c (read its comment first); what differs is the block format.
 *
 * Prefill (n_tok >= PACK_MIN_TOK), one weight ROW per 32-bit lane:
 *   - A panel of 16 rows is repacked one super-block (256 weights) at a time into 64 vectors:
 *     vector k holds, in lane r, the 4 codes 4k..4k+3 of row r as unsigned bytes (Q4_K 0..15,
 *     Q5_K 0..31, Q6_K 0..63: weight order, so a token's dword k is simply its quants 4k..4k+3),
 *     plus the 16 rows' sub-block scales as int32 vectors, Q4_K/Q5_K's mins as int16 pairs and
 *     d (and dmin) as f32. The unpack is direct per 32-weight group: rows i and i + 8 side by side
 *     in one register, shifted and masked, then the 16x8 dword transpose of gemm_avx512.c.
 *   - Q4_K/Q5_K, per sub-block j (32 weights): 8 vpdpbusd (codes x the token's dwords, broadcast)
 *     give the exact integer dot s_j per row; sumi += s_j * sc_j (vpmulld); at the end of the
 *     super-block summ = sum_j m_j * bsum_j by 4 vpdpwssd (mins as int16 pairs, the token's
 *     32-weight sums as int16 pairs, precomputed per token), then
 *       acc += (d_w d_x) sumi - (dmin_w d_x) summ          (two converts, two FMAs)
 *     |s_j| <= 31 * 127 * 32 and |sumi| <= 8 * 63 * 125984 < 2^26: exact in int32.
 *   - Q6_K, per sub-block k (16 weights): 4 vpdpbusd starting from the token's -32 * bsums[k]
 *     (so s_k = (q - 32) . x exactly), then sumi += s_k * sc_k; per super-block one convert and
 *     one FMA with d_w d_x. |s_k| <= 65024, |sumi| <= 16 * 128 * 65024 < 2^27.
 *   - Microtile 32 rows (2 panels) x 4 tokens: each weight vector feeds 4 tokens, each broadcast
 *     2 panels; 8 f32 accumulators + 8 int32 super-block sums + 8 sub-block sums in registers.
 *   - Cache blocking as gemm_avx512.c: K slices of KS super-blocks (the packed slice of a 32-row
 *     group, 11 KB per super-block, stays in L1 while the tile's tokens pass), token tiles of TT,
 *     row blocks of RB sharing the tile's side data, y accumulated across slices, and the software
 *     prefetch of what the next slice will pack.
 * Every lane's sum runs over its own row and token in an order fixed by n: results do not depend
 * on n_rows or where a chunk of rows starts, bit for bit.
 *
 * Decode (n_tok < PACK_MIN_TOK): one vec_dot per (token, row); see the section below.
 *
 * Scratch on the stack, about 48 KB; nothing is allocated.
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
    KS = 1,   /* super-blocks per K slice */
    TT = 512, /* tokens per token tile */
    RB = 256, /* rows per row block (the rows that share one computation of the side data) */
    MR = 32,  /* rows per microtile (2 panels of 16 lanes) */
    NR = 4,   /* tokens per microtile */
    XS = 16,  /* int32 side values per token and super-block (Q4_K/Q5_K use 4, Q6_K 16) */
};

/* One super-block of a packed 16-row panel. q[k] lane r = codes 4k..4k+3 of row r (u8);
 * sc[j] lane r = sub-block j's scale (Q4_K/Q5_K j < 8; Q6_K j < 16, signed); m[i] lane r = the
 * mins (m_2i, m_2i+1) as an int16 pair (Q4_K/Q5_K); d, dmin: f32 per row. 5504 bytes. */
typedef struct kpanel {
    uint8_t q[64][64];
    int32_t sc[16][16];
    int32_t m[4][16];
    float d[16];
    float dmin[16];
} kpanel;

_Static_assert(sizeof(kpanel) % 64 == 0, "packed panels keep 64-byte alignment");

static inline size_t block_size(int kind) {
    return kind == K_Q4 ? sizeof(mn_block_q4_K) : kind == K_Q5 ? sizeof(mn_block_q5_K) : sizeof(mn_block_q6_K);
}

/* 8 registers, each [row i's 8 dwords | row i+8's 8 dwords] (i = 0..7), become 8 registers
 * out[k] with lane r = dword k of row r (r = 0..15); as in gemm_avx512.c. */
static inline void transpose_16x8(__m512i z[8]) {
    __m512i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
        u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int k = 0; k < 4; k++) {
        z[k] = _mm512_permutex2var_epi64(u[k], lo, u[k + 4]);
        z[k + 4] = _mm512_permutex2var_epi64(u[k], hi, u[k + 4]);
    }
}

/* 32 bytes at byte `off` of rows i and i + 8 (zeros past n_valid) as one register */
static inline __m512i load_pair(const uint8_t *const rows[16], int n_valid, int i, size_t off) {
    const __m256i lo = i < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i] + off)) : _mm256_setzero_si256();
    const __m256i hi = i + 8 < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i + 8] + off)) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Super-block sb of rows[0..n_valid) (of 16) -> pk. Group g = weights 32g..32g+31:
 *   Q4_K/Q5_K: nibbles of qs[32 (g / 2) ..], low for even g, high for odd; Q5_K's bit g of qh[l].
 *   Q6_K: half h = g / 4, quarter u = g % 4: low 4 bits from ql[64h + 32 (u & 1) ..] (high nibble
 *   for u >= 2), high 2 bits from bits 2u..2u+1 of qh[32h ..]. */
static inline __attribute__((always_inline)) void pack_kq(int kind, const uint8_t *const rows[16], int n_valid,
                                                          int64_t sb, kpanel *pk) {
    const size_t off = (size_t)sb * block_size(kind);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int g = 0; g < 8; g++) {
        __m512i z[8];
        for (int i = 0; i < 8; i++) {
            __m512i v;
            if (kind == K_Q6) {
                const int h = g / 4, u = g % 4;
                const __m512i ql = load_pair(rows, n_valid, i, off + (size_t)(64 * h + 32 * (u & 1)));
                const __m512i qh = load_pair(rows, n_valid, i, off + 128 + (size_t)(32 * h));
                const __m512i lo = _mm512_and_si512(_mm512_srl_epi16(ql, _mm_cvtsi32_si128(4 * (u >> 1))), m4);
                const __m512i hi = _mm512_and_si512(_mm512_srl_epi16(qh, _mm_cvtsi32_si128(2 * u)), _mm512_set1_epi8(3));
                v = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
            } else {
                const size_t qs = kind == K_Q4 ? 16 : 48;
                const __m512i q = load_pair(rows, n_valid, i, off + qs + (size_t)(32 * (g / 2)));
                v = _mm512_and_si512(_mm512_srl_epi16(q, _mm_cvtsi32_si128(4 * (g & 1))), m4);
                if (kind == K_Q5) {
                    const __m512i qh = load_pair(rows, n_valid, i, off + 16);
                    const __m512i hb = _mm512_and_si512(_mm512_srl_epi16(qh, _mm_cvtsi32_si128(g)), _mm512_set1_epi8(1));
                    v = _mm512_or_si512(v, _mm512_slli_epi16(hb, 4));
                }
            }
            z[i] = v;
        }
        transpose_16x8(z);
        for (int k = 0; k < 8; k++) _mm512_store_si512(pk->q[8 * g + k], z[k]);
    }
    /* scales: plain per-row decoding (16 rows x 16 values, amortized over every token) */
    uint16_t hd[16], hm[16];
    for (int r = 0; r < 16; r++) {
        hd[r] = hm[r] = 0;
        if (r >= n_valid) {
            for (int j = 0; j < 16; j++) pk->sc[j][r] = 0;
            for (int i = 0; i < 4; i++) pk->m[i][r] = 0;
            continue;
        }
        const uint8_t *b = rows[r] + off;
        if (kind == K_Q6) {
            memcpy(&hd[r], b + 208, 2);
            for (int j = 0; j < 16; j++) pk->sc[j][r] = (int8_t)b[192 + j];
        } else {
            memcpy(&hd[r], b, 2);
            memcpy(&hm[r], b + 2, 2);
            const uint8_t *s = b + 4;
            int mins[8];
            for (int j = 0; j < 8; j++) {
                if (j < 4) {
                    pk->sc[j][r] = s[j] & 63;
                    mins[j] = s[j + 4] & 63;
                } else {
                    pk->sc[j][r] = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
                    mins[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
                }
            }
            for (int i = 0; i < 4; i++) pk->m[i][r] = mins[2 * i] | (mins[2 * i + 1] << 16);
        }
    }
    _mm512_store_ps(pk->d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hd)));
    _mm512_store_ps(pk->dmin, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hm)));
}

/* Side data of tokens [t0, t0 + tt) x super-blocks [sb0, sb0 + ks): xd = d_x; xs = Q4_K/Q5_K: the
 * 8 sums of 32 quants as int16 pairs (bsum_2i, bsum_2i+1), Q6_K: -32 * bsums[k] (16 values). */
static void x_side(int kind, const void *x, size_t x_stride, int64_t t0, int tt, int64_t sb0, int ks, float *xd,
                   int32_t *xs) {
    for (int t = 0; t < tt; t++) {
        const mn_block_q8_K *xb = (const mn_block_q8_K *)((const char *)x + (size_t)(t0 + t) * x_stride) + sb0;
        for (int b = 0; b < ks; b++) {
            int16_t bs[16];
            memcpy(bs, xb[b].bsums, sizeof bs);
            memcpy(&xd[t * KS + b], &xb[b].d, 4);
            int32_t *o = xs + (t * KS + b) * XS;
            if (kind == K_Q6) {
                for (int k = 0; k < 16; k++) o[k] = -32 * bs[k];
            } else {
                for (int i = 0; i < 4; i++) {
                    const uint16_t a = (uint16_t)(bs[4 * i] + bs[4 * i + 1]), c = (uint16_t)(bs[4 * i + 2] + bs[4 * i + 3]);
                    o[i] = (int32_t)((uint32_t)a | ((uint32_t)c << 16));
                }
            }
        }
    }
}

static inline __m512i bcast_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc[p][t] += rows 16p.. of the packed slice (pk[2b + p]) . token t over ks super-blocks. xq[t]:
 * the token's quants of the slice's first super-block; xd/xs: its side data (row t of the tile's
 * arrays). kind and nr are constants after inlining: the loops unroll, the sums stay in registers. */
static inline __attribute__((always_inline)) void micro_kq(int kind, const kpanel *pk, int ks,
                                                           const int8_t *const *xq, const float *xd,
                                                           const int32_t *xs, int nr, __m512 acc[2][NR]) {
    for (int b = 0; b < ks; b++) {
        const kpanel *p0 = &pk[2 * b], *p1 = &pk[2 * b + 1];
        const size_t xo = (size_t)b * sizeof(mn_block_q8_K);
        __m512i si0[NR], si1[NR];
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) si0[t] = si1[t] = _mm512_setzero_si512();
        if (kind == K_Q6) {
            for (int k = 0; k < 16; k++) {
                __m512i s0[NR], s1[NR];
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) s0[t] = s1[t] = _mm512_set1_epi32(xs[(t * KS + b) * XS + k]);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) {
                    const __m512i w0 = _mm512_load_si512(p0->q[4 * k + v]), w1 = _mm512_load_si512(p1->q[4 * k + v]);
#pragma GCC unroll 4
                    for (int t = 0; t < nr; t++) {
                        const __m512i xk = bcast_i32(xq[t] + xo + 16 * k + 4 * v);
                        s0[t] = _mm512_dpbusd_epi32(s0[t], w0, xk);
                        s1[t] = _mm512_dpbusd_epi32(s1[t], w1, xk);
                    }
                }
                const __m512i c0 = _mm512_load_si512(p0->sc[k]), c1 = _mm512_load_si512(p1->sc[k]);
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) {
                    si0[t] = _mm512_add_epi32(si0[t], _mm512_mullo_epi32(s0[t], c0));
                    si1[t] = _mm512_add_epi32(si1[t], _mm512_mullo_epi32(s1[t], c1));
                }
            }
            const __m512 d0 = _mm512_load_ps(p0->d), d1 = _mm512_load_ps(p1->d);
#pragma GCC unroll 4
            for (int t = 0; t < nr; t++) {
                const __m512 dx = _mm512_set1_ps(xd[t * KS + b]);
                acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si0[t]), _mm512_mul_ps(d0, dx), acc[0][t]);
                acc[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si1[t]), _mm512_mul_ps(d1, dx), acc[1][t]);
            }
        } else {
            for (int j = 0; j < 8; j++) {
                __m512i s0[NR], s1[NR];
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) s0[t] = s1[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int v = 0; v < 8; v++) {
                    const __m512i w0 = _mm512_load_si512(p0->q[8 * j + v]), w1 = _mm512_load_si512(p1->q[8 * j + v]);
#pragma GCC unroll 4
                    for (int t = 0; t < nr; t++) {
                        const __m512i xk = bcast_i32(xq[t] + xo + 32 * j + 4 * v);
                        s0[t] = _mm512_dpbusd_epi32(s0[t], w0, xk);
                        s1[t] = _mm512_dpbusd_epi32(s1[t], w1, xk);
                    }
                }
                const __m512i c0 = _mm512_load_si512(p0->sc[j]), c1 = _mm512_load_si512(p1->sc[j]);
#pragma GCC unroll 4
                for (int t = 0; t < nr; t++) {
                    si0[t] = _mm512_add_epi32(si0[t], _mm512_mullo_epi32(s0[t], c0));
                    si1[t] = _mm512_add_epi32(si1[t], _mm512_mullo_epi32(s1[t], c1));
                }
            }
            const __m512 d0 = _mm512_load_ps(p0->d), d1 = _mm512_load_ps(p1->d);
            const __m512 e0 = _mm512_load_ps(p0->dmin), e1 = _mm512_load_ps(p1->dmin);
#pragma GCC unroll 4
            for (int t = 0; t < nr; t++) {
                const int32_t *xm = xs + (t * KS + b) * XS;
                __m512i sm0 = _mm512_setzero_si512(), sm1 = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    const __m512i xi = _mm512_set1_epi32(xm[i]);
                    sm0 = _mm512_dpwssd_epi32(sm0, _mm512_load_si512(p0->m[i]), xi);
                    sm1 = _mm512_dpwssd_epi32(sm1, _mm512_load_si512(p1->m[i]), xi);
                }
                const __m512 dx = _mm512_set1_ps(xd[t * KS + b]);
                acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si0[t]), _mm512_mul_ps(d0, dx), acc[0][t]);
                acc[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si1[t]), _mm512_mul_ps(d1, dx), acc[1][t]);
                acc[0][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(sm0), _mm512_mul_ps(e0, dx), acc[0][t]);
                acc[1][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(sm1), _mm512_mul_ps(e1, dx), acc[1][t]);
            }
        }
    }
}

/* One microtile: rows [r0, r0 + 32) (masks m[p] for the valid lanes) x tokens [t, t + nr). */
static inline __attribute__((always_inline)) void tile_kq(int kind, const kpanel *pk, int ks, bool first,
                                                          const void *x, size_t x_stride, int64_t sb0, int64_t t,
                                                          int t_in_tile, const float *xd, const int32_t *xs, int nr,
                                                          float *y, int64_t y_stride, int64_t r0,
                                                          const __mmask16 m[2]) {
    const int8_t *xq[NR];
    __m512 acc[2][NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        xq[j] = ((const mn_block_q8_K *)((const char *)x + (size_t)(t + j) * x_stride) + sb0)->qs;
        float *yr = y + (t + j) * y_stride + r0;
        acc[0][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[0], yr);
        acc[1][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[1], yr + 16);
    }
    micro_kq(kind, pk, ks, xq, xd + t_in_tile * KS, xs + t_in_tile * KS * XS, nr, acc);
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        float *yr = y + (t + j) * y_stride + r0;
        _mm512_mask_storeu_ps(yr, m[0], acc[0][j]);
        _mm512_mask_storeu_ps(yr + 16, m[1], acc[1][j]);
    }
}

static inline int imin(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

/* Software prefetch of the weights the next K slice will pack, a few cache lines per microtile
 * (as in gemm_avx512.c: each row contributes a short piece, too short for the hardware
 * prefetchers). */
typedef struct prefetcher {
    const uint8_t *w;
    size_t w_stride, off, len, pos;
    int64_t r, r1;
} prefetcher;

static inline void prefetch_lines(prefetcher *pf, int lines) {
    for (int i = 0; i < lines && pf->r < pf->r1; i++) {
        _mm_prefetch((const char *)pf->w + (size_t)pf->r * pf->w_stride + pf->off + pf->pos, _MM_HINT_T0);
        pf->pos += 64;
        if (pf->pos >= pf->len + 63) { /* + 63: the line holding the last byte too */
            pf->pos = 0;
            pf->r++;
        }
    }
}

/* the slice after (row block rb, super-block sb0) in loop order: rows and bytes to prefetch */
static prefetcher prefetch_target(const void *w, size_t w_stride, int64_t n_rows, int64_t nsb, size_t bsz, int64_t rb,
                                  int64_t sb0) {
    const int64_t n_slices = (nsb + KS - 1) / KS;
    const int64_t idx = rb / RB * n_slices + sb0 / KS + 1;
    const int64_t rb_t = idx / n_slices * RB, sb_t = idx % n_slices * KS;
    prefetcher pf = {w, w_stride, (size_t)sb_t * bsz, (size_t)(sb_t + KS < nsb ? KS : nsb - sb_t) * bsz,
                     0, rb_t, rb_t + RB < n_rows ? rb_t + RB : n_rows};
    if (rb_t >= n_rows) pf.r = pf.r1 = 0; /* past the end: nothing */
    return pf;
}

/* Loop nest: token tile > row block > K slice > row group (32) > 4 tokens (gemm_avx512.c). */
static inline __attribute__((always_inline)) void gemm_kq(int kind, MN_GEMM_ARGS) {
    _Alignas(64) kpanel pk[2 * KS];
    float xd[TT * KS];
    int32_t xs[TT * KS * XS];
    const int64_t nsb = n / MN_QK_K;
    const size_t bsz = block_size(kind);
    for (int64_t t0 = 0; t0 < n_tok; t0 += TT) {
        const int tt = imin(TT, n_tok - t0);
        for (int64_t rb = 0; rb < n_rows; rb += RB) {
            const int64_t rb1 = rb + RB < n_rows ? rb + RB : n_rows;
            for (int64_t sb0 = 0; sb0 < nsb; sb0 += KS) {
                const int ks = imin(KS, nsb - sb0);
                const bool first = sb0 == 0;
                x_side(kind, x, x_stride, t0, tt, sb0, ks, xd, xs);
                prefetcher pf = prefetch_target(w, w_stride, n_rows, nsb, bsz, rb, sb0);
                const int lines_per_tile = (int)(((pf.len + 127) / 64 * (size_t)(pf.r1 - pf.r)) /
                                                 ((size_t)(rb1 - rb + MR - 1) / MR * (size_t)(tt + NR - 1) / NR)) + 1;
                for (int64_t r0 = rb; r0 < rb1; r0 += MR) {
                    __mmask16 m[2];
                    for (int p = 0; p < 2; p++) {
                        const int nv = imin(16, n_rows - r0 - 16 * p < 0 ? 0 : n_rows - r0 - 16 * p);
                        const uint8_t *rows[16]; /* rows past the matrix are never read: packed as zeros */
                        for (int i = 0; i < 16; i++)
                            rows[i] = (const uint8_t *)w + (i < nv ? (size_t)(r0 + 16 * p + i) * w_stride : 0);
                        m[p] = (__mmask16)((1u << nv) - 1u);
                        for (int b = 0; b < ks; b++) pack_kq(kind, rows, nv, sb0 + b, &pk[2 * b + p]);
                    }
                    int64_t t = t0;
                    for (; t + NR <= t0 + tt; t += NR) {
                        tile_kq(kind, pk, ks, first, x, x_stride, sb0, t, (int)(t - t0), xd, xs, NR, y, y_stride, r0, m);
                        prefetch_lines(&pf, lines_per_tile);
                    }
                    const int left = (int)(t0 + tt - t), ti = (int)(t - t0);
                    if (left == 3) tile_kq(kind, pk, ks, first, x, x_stride, sb0, t, ti, xd, xs, 3, y, y_stride, r0, m);
                    if (left == 2) tile_kq(kind, pk, ks, first, x, x_stride, sb0, t, ti, xd, xs, 2, y, y_stride, r0, m);
                    if (left == 1) tile_kq(kind, pk, ks, first, x, x_stride, sb0, t, ti, xd, xs, 1, y, y_stride, r0, m);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- 1-3 tokens (decode) --------- */

/* Decode, and batches too small for packing to pay: one vec_dot per (token, row), so decode
 * results are those of vec_dot bit for bit. A multi-row variant (4 rows sharing each activation
 * load, the same per-row operations, software prefetch as gemv_q4_0 in gemm_avx512.c) was tried:
 * about 4% faster with the weights in L2 (Q4_K, 2048-wide rows), but slower from DRAM on the
 * shared test host, so it is not used. */
static void by_dots(mn_vec_dot_fn dot, MN_GEMM_ARGS) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_rows; r++)
            dot(n, (const char *)w + (size_t)r * w_stride, (const char *)x + (size_t)t * x_stride, &y[t * y_stride + r]);
}

/* ---------------------------------------------------------------- entry points ---------------- */

/* Packing a panel pays from 4 tokens on, as for Q4_0 (model/ops.c switches to gemm there too). */
enum { PACK_MIN_TOK = 4 };

void mn_gemm_q4_K_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q4_K_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q4, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q5_K_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q5_K_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q5, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q6_K_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q6_K_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_kq(K_Q6, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

#endif /* __x86_64__ */
