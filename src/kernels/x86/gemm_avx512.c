/*
 * gemm_avx512.c: batched matrix products (prefill) for AVX-512 F/BW/VL/DQ/VNNI/BF16.
 * Contract: mn_gemm_fn in kernels/kernels.h; spec: kernels/ref/ref_gemm.c.
 *
 * Q8_0 / Q4_0 weights x Q8_0 activations. vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes
 * and adds the 4 products to an int32 lane, exactly. The layout puts one weight ROW in each lane:
 *   - Weights are repacked, a panel of 16 rows by 16 blocks at a time, into 8 vectors per block:
 *     vector k holds, in lane r, the 4 weights 4k..4k+3 of row r, as unsigned bytes (Q8_0: w + 128,
 *     Q4_0: the nibble q = w + 8, so no sign trick is needed), plus the 16 rows' scales as f32.
 *     The 16x8 dword transpose costs ~40 shuffles per panel block and is reused by every token.
 *   - A token's block is 8 dwords of signed bytes; each is broadcast to all 16 lanes (an embedded
 *     {1to16} memory operand), so 8 vpdpbusd give the block's integer dot for 16 rows at once,
 *     starting from the bias correction -c * sum(x) (c = 128 or 8), which is per token and block.
 *     Then one convert and one FMA with d_w (16 lanes) * d_x (broadcast) per 16 rows.
 *   - Microtile: 32 rows (2 panels) x 4 tokens = 8 f32 accumulators + 8 int32 block sums; each
 *     weight vector feeds 4 tokens and each activation broadcast feeds 2 panels.
 *   - Cache blocking: K in slices of 16 blocks (512 weights): the packed slice of a 32-row group
 *     (18 KB) stays in L1 while all tokens of a tile (<= 256) pass over it; the tile's activation
 *     side data (d_x as f32, the bias correction) is computed once per slice (32 KB) and reused by
 *     every row group. y accumulates across slices (first slice stores, later ones load-add-store).
 *   Every lane's sum runs over its own row and token only, in an order fixed by n: results do not
 *   depend on n_rows, n_tok or where a caller's chunk starts (bit for bit). They differ from the
 *   reference only by float summation order (block sums are exact integers).
 *
 * F32 / F16 / BF16 weights x f32 activations: dot-product form, 4 rows x 4 tokens of 16-lane FMA
 * accumulators over K (each weight load feeds 4 tokens, each activation load 4 rows), masked loads
 * for the last n % 16, a horizontal sum per (row, token) at the end; tokens are tiled so the tile's
 * activations stay in L2. Row and token tails reuse the last valid row / token (computed, not
 * stored), so there is one kernel shape.
 *
 * Scratch lives on the stack (about 51 KB for the quantized path); nothing is allocated.
 */
#include "kernels/gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/avx512_util.h"
#include "kernels/x86/x86.h"

/* ---------------------------------------------------------------- Q8_0 / Q4_0 ----------------- */

enum {
    KB = 8,   /* blocks per K slice */
    TT = 512, /* tokens per token tile */
    RB = 256, /* rows per row block (the rows that share one computation of the side data) */
    MR = 32,  /* rows per microtile (2 panels of 16 lanes) */
    NR = 4,   /* tokens per microtile */
};

/* One block of a packed 32-row group: q[p][k] lane r = weights 4k..4k+3 of row 16p + r (u8);
 * d[p][r] = that row's scale. 1152 bytes, a multiple of 64, so every vector stays aligned. */
typedef struct pblock {
    uint8_t q[2][8][64];
    float d[2][16];
} pblock;

_Static_assert(sizeof(pblock) % 64 == 0, "packed blocks keep 64-byte alignment");

/* 8 registers, each [row i's 8 dwords | row i+8's 8 dwords] (i = 0..7), become 8 registers
 * out[k] with lane r = dword k of row r (r = 0..15). Two unpack stages transpose 4x4 dwords inside
 * each 128-bit lane; vpermt2q gathers the four quarter-rows of each k. */
static inline void transpose_16x8(__m512i z[8]) {
    __m512i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) { /* rows h..h+3 (and h+8..h+11) */
        u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);     /* dword 0 (lane 1: 4) */
        u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]); /* dword 1 (5) */
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

/* 16 f16 scales (zero past n_valid rows) -> f32 */
static inline void pack_scales(const uint8_t *const rows[16], int n_valid, size_t off, float *dst) {
    uint16_t h[16];
    for (int r = 0; r < 16; r++) {
        h[r] = 0;
        if (r < n_valid) memcpy(&h[r], rows[r] + off, 2);
    }
    _mm512_store_ps(dst, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)));
}

/* Q8_0 rows (n_valid of 16, starting at rows[0]) x blocks [kb0, kb0 + kb) -> panel p of pk */
static void pack_q8_0(const uint8_t *const rows[16], int n_valid, int64_t kb0, int kb, int p, pblock *pk) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < kb; b++) {
        const size_t off = (size_t)(kb0 + b) * sizeof(mn_block_q8_0);
        __m512i z[8];
        for (int i = 0; i < 8; i++) {
            const __m256i lo = i < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i] + off + 2))
                                           : _mm256_setzero_si256();
            const __m256i hi = i + 8 < n_valid ? _mm256_loadu_si256((const __m256i *)(rows[i + 8] + off + 2))
                                               : _mm256_setzero_si256();
            z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
        transpose_16x8(z);
        for (int k = 0; k < 8; k++) _mm512_store_si512(pk[b].q[p][k], _mm512_xor_si512(z[k], bias));
        pack_scales(rows, n_valid, off, pk[b].d[p]);
    }
}

/* Q4_0: each row's 16 nibble bytes become [low nibbles | high nibbles] = weights 0..31 in order */
static void pack_q4_0(const uint8_t *const rows[16], int n_valid, int64_t kb0, int kb, int p, pblock *pk) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int b = 0; b < kb; b++) {
        const size_t off = (size_t)(kb0 + b) * sizeof(mn_block_q4_0);
        __m512i z[8];
        for (int i = 0; i < 8; i++) {
            const __m128i qa = i < n_valid ? _mm_loadu_si128((const __m128i *)(rows[i] + off + 2)) : _mm_setzero_si128();
            const __m128i qc =
                i + 8 < n_valid ? _mm_loadu_si128((const __m128i *)(rows[i + 8] + off + 2)) : _mm_setzero_si128();
            /* [qa | qa | qc | qc], then shift the 2nd and 4th 128-bit lanes (16-bit words 8..15, 24..31) */
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(qa)),
                                           _mm256_broadcastsi128_si256(qc), 1);
            v = _mm512_mask_srli_epi16(v, (__mmask32)0xff00ff00u, v, 4);
            z[i] = _mm512_and_si512(v, m4);
        }
        transpose_16x8(z);
        for (int k = 0; k < 8; k++) _mm512_store_si512(pk[b].q[p][k], z[k]);
        pack_scales(rows, n_valid, off, pk[b].d[p]);
    }
}

/* sum of the 32 signed bytes of an activation block */
static inline int32_t sum_i8x32(const int8_t *q) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), _mm256_set1_epi8((char)0x80));
    const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256()); /* 4 sums of (x + 128) */
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
}

/* Side data of tokens [t0, t0 + tt) x blocks [kb0, kb0 + kb): xd = d_x as f32, xc = -c * sum(x) */
static void x_side(const void *x, size_t x_stride, int64_t t0, int tt, int64_t kb0, int kb, int32_t c, float *xd,
                   int32_t *xc) {
    for (int t = 0; t < tt; t++) {
        const mn_block_q8_0 *xb = (const mn_block_q8_0 *)((const char *)x + (size_t)(t0 + t) * x_stride) + kb0;
        for (int b = 0; b < kb; b++) {
            xd[t * KB + b] = _cvtsh_ss(xb[b].d);
            xc[t * KB + b] = -c * sum_i8x32(xb[b].qs);
        }
    }
}

static inline __m512i bcast_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc[p][t] += rows 16p.. of the packed slice . token t, over kb blocks. xq[t]: the token's first
 * block of the slice; xd/xc: its side data (row t of the tile arrays). nr is a constant after
 * inlining, so the loops unroll and the accumulators live in registers. */
static inline __attribute__((always_inline)) void micro_q(const pblock *pk, int kb, const mn_block_q8_0 *const *xq,
                                                          const float *xd, const int32_t *xc, int nr,
                                                          __m512 acc[2][NR]) {
    for (int b = 0; b < kb; b++) {
        __m512i s0[NR], s1[NR];
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) s0[t] = s1[t] = _mm512_set1_epi32(xc[t * KB + b]);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const __m512i w0 = _mm512_load_si512(pk[b].q[0][k]), w1 = _mm512_load_si512(pk[b].q[1][k]);
#pragma GCC unroll 4
            for (int t = 0; t < nr; t++) {
                const __m512i xk = bcast_i32(xq[t][b].qs + 4 * k);
                s0[t] = _mm512_dpbusd_epi32(s0[t], w0, xk);
                s1[t] = _mm512_dpbusd_epi32(s1[t], w1, xk);
            }
        }
        const __m512 d0 = _mm512_load_ps(pk[b].d[0]), d1 = _mm512_load_ps(pk[b].d[1]);
#pragma GCC unroll 4
        for (int t = 0; t < nr; t++) {
            const __m512 dx = _mm512_set1_ps(xd[t * KB + b]);
            acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[t]), _mm512_mul_ps(d0, dx), acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[t]), _mm512_mul_ps(d1, dx), acc[1][t]);
        }
    }
}

/* One microtile: rows [r0, r0 + 32) (masks m[p] for the valid lanes) x tokens [t, t + nr). */
static inline __attribute__((always_inline)) void tile_q(const pblock *pk, int kb, bool first, const void *x,
                                                         size_t x_stride, int64_t kb0, int64_t t, int t_in_tile,
                                                         const float *xd, const int32_t *xc, int nr, float *y,
                                                         int64_t y_stride, int64_t r0, const __mmask16 m[2]) {
    const mn_block_q8_0 *xq[NR];
    __m512 acc[2][NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        xq[j] = (const mn_block_q8_0 *)((const char *)x + (size_t)(t + j) * x_stride) + kb0;
        float *yr = y + (t + j) * y_stride + r0;
        acc[0][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[0], yr);
        acc[1][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[1], yr + 16);
    }
    micro_q(pk, kb, xq, xd + t_in_tile * KB, xc + t_in_tile * KB, nr, acc);
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        float *yr = y + (t + j) * y_stride + r0;
        _mm512_mask_storeu_ps(yr, m[0], acc[0][j]);
        _mm512_mask_storeu_ps(yr + 16, m[1], acc[1][j]);
    }
}

typedef void (*pack_fn)(const uint8_t *const rows[16], int n_valid, int64_t kb0, int kb, int p, pblock *pk);

static inline int imin(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

/* Software prefetch of the weights the next K slice will pack (rows [r, r1), bytes [off, off + len)
 * of each), a few cache lines per microtile. Each row contributes a short piece (272 bytes for
 * Q8_0), far too short for the hardware prefetchers, and packing would otherwise wait on DRAM. */
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

enum { PF_AHEAD = 1 }; /* slices ahead */

static prefetcher prefetch_target(const void *w, size_t w_stride, int64_t n_rows, int64_t nb, size_t block_size,
                                  int64_t rb, int64_t kb0) {
    const int64_t n_slices = (nb + KB - 1) / KB;
    const int64_t idx = rb / RB * n_slices + kb0 / KB + PF_AHEAD;
    const int64_t rb_t = idx / n_slices * RB, kb_t = idx % n_slices * KB;
    prefetcher pf = {w, w_stride, (size_t)kb_t * block_size, (size_t)(kb_t + KB < nb ? KB : nb - kb_t) * block_size,
                     0, rb_t, rb_t + RB < n_rows ? rb_t + RB : n_rows};
    if (rb_t >= n_rows) pf.r = pf.r1 = 0; /* past the end: nothing */
    return pf;
}

/* Loop nest: token tile (512) > row block (256) > K slice (8 blocks) > row group (32) > 4 tokens.
 * The side data of a (token tile, K slice) serves the 8 row groups of a block; a packed group
 * serves all tokens of the tile; y of a block and tile (512 KB) stays in L2 across K slices. */
static void gemm_q(pack_fn pack, size_t block_size, int32_t c, MN_GEMM_ARGS) {
    _Alignas(64) pblock pk[KB];
    float xd[TT * KB];
    int32_t xc[TT * KB];
    const int64_t nb = n / MN_QK8_0;
    for (int64_t t0 = 0; t0 < n_tok; t0 += TT) {
        const int tt = imin(TT, n_tok - t0);
        for (int64_t rb = 0; rb < n_rows; rb += RB) {
            const int64_t rb1 = rb + RB < n_rows ? rb + RB : n_rows;
            for (int64_t kb0 = 0; kb0 < nb; kb0 += KB) {
                const int kb = imin(KB, nb - kb0);
                const bool first = kb0 == 0;
                x_side(x, x_stride, t0, tt, kb0, kb, c, xd, xc);
                /* what the slice PF_AHEAD steps later in (row block, K slice) order will pack */
                prefetcher pf = prefetch_target(w, w_stride, n_rows, nb, block_size, rb, kb0);
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
                        pack(rows, nv, kb0, kb, p, pk);
                    }
                    int64_t t = t0;
                    for (; t + NR <= t0 + tt; t += NR) {
                        tile_q(pk, kb, first, x, x_stride, kb0, t, (int)(t - t0), xd, xc, NR, y, y_stride, r0, m);
                        prefetch_lines(&pf, lines_per_tile);
                    }
                    const int left = (int)(t0 + tt - t), ti = (int)(t - t0);
                    if (left == 3) tile_q(pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 3, y, y_stride, r0, m);
                    if (left == 2) tile_q(pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 2, y, y_stride, r0, m);
                    if (left == 1) tile_q(pk, kb, first, x, x_stride, kb0, t, ti, xd, xc, 1, y, y_stride, r0, m);
                }
            }
        }
    }
}



/* ---------------------------------------------------------------- 1-3 tokens (decode) --------- */

/* Decode, and batches too small for packing to pay. Measured on Zen 5, from DRAM (matrices of
 * 512 MB), one vec_dot per row already streams Q8_0 and f16 weights at the probe bandwidth, while
 * Q4_0 is bound by the core: a one-row dot is limited by its loads, since every row re-reads the
 * activations, whose 32-byte blocks sit 34 bytes apart so that half the loads split a cache line.
 * So Q8_0 and the float types take the table's vec_dot per (token, row), and Q4_0 takes the
 * multi-row dot below, which loads each activation block, its bias correction and its scale once
 * for 4 rows. (4 interleaved row streams cost DRAM efficiency with rows of 8 KB or more: f16 and
 * Q8_0 rows lost a third there, another reason they stay row by row.)
 *
 * Q4_0, per row and block: a broadcast load puts the 16 nibble bytes in both 128-bit lanes, a
 * masked shift and an AND give the 32 values q = w + 8 in order, one vpdpbusd starts from the
 * token's correction -8 * sum(x), one convert and one FMA apply d_w * d_x, broadcast from a small
 * table that word permutes fill 8 blocks at a time. Each row has its own accumulator and the same
 * sequence of operations whatever group it is in: results do not depend on row grouping.
 * Measured on Zen 5 (single thread, 2048-wide rows): 37 GB/s in L2 against 23 for vec_dot; from
 * DRAM, over 545 MB, 24 GB/s against 20, and only with the software prefetch GV_PF bytes ahead
 * (15-19 GB/s without: the hardware prefetchers stop at each 4 KB page of 4 interleaved streams). */

enum {
    GV_R = 4,    /* rows per group */
    GV_PF = 8192 /* software prefetch distance (bytes) */
};

/* f16 scales of 8 consecutive Q4_0 blocks (18 bytes apart: 16-bit words 0, 9, ..., 63 of the first
 * 128 bytes) as f32, by one word permute */
static inline __m256 q4_scales8(const mn_block_q4_0 *b) {
    const __m512i idx = _mm512_zextsi128_si512(_mm_setr_epi16(0, 9, 18, 27, 36, 45, 54, 63));
    const __m512i v = _mm512_permutex2var_epi16(_mm512_loadu_si512(b), idx, _mm512_loadu_si512((const char *)b + 64));
    return _mm256_cvtph_ps(_mm512_castsi512_si128(v));
}

/* the same for 8 Q8_0 blocks (34 bytes apart: words 0, 17, ..., 119 of 240 bytes) */
static inline __m256 q8_scales8(const mn_block_q8_0 *b) {
    const __m512i idx = _mm512_zextsi128_si512(_mm_setr_epi16(0, 17, 34, 51, 4, 21, 38, 55));
    const char *p = (const char *)b;
    const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + 64));
    const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), idx, _mm512_loadu_si512(p + 192));
    /* words 0..3 from lo (blocks 0..3), 4..7 from hi (blocks 4..7: words 68.. = 4.. of the upper half) */
    return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_mov_epi16(lo, 0xf0, hi)));
}

/* Blocks of two rows, a and b, as 64 unsigned bytes q = w + 8 in weight order, a in the low
 * 256 bits: the 16 nibble bytes of a go to 128-bit lanes 0-1 and those of b to lanes 2-3 (two
 * broadcast loads, one merged), then a masked shift brings down the high nibbles of lanes 1 and 3. */
static inline __m512i q4_values2(const mn_block_q4_0 *a, const mn_block_q4_0 *b) {
    __m512i q = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)a->qs));
    q = _mm512_mask_broadcast_i32x4(q, (__mmask16)0xff00, _mm_loadu_si128((const __m128i *)b->qs));
    q = _mm512_mask_srli_epi16(q, (__mmask32)0xff00ff00u, q, 4);
    return _mm512_and_si512(q, _mm512_set1_epi8(0x0f));
}

/* -8 * sum(x) of an activation block, in each 4-byte group's lane (the vpdpbusd start value) */
static inline __m512i q4_correction(__m512i xv) {
    return _mm512_sub_epi32(_mm512_setzero_si512(),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), xv));
}

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* y[r] = Q4_0 row r . x for r < nr (<= GV_R, a constant after inlining). Rows go in pairs, one
 * per 256-bit half of each register; an odd last row is paired with itself (computed twice, kept
 * once: the two halves run the same operations, so a row's result does not depend on its pair). */
static inline __attribute__((always_inline)) void gemv_q4_0(int nr, int64_t nb, const uint8_t *w, size_t w_stride,
                                                            const mn_block_q8_0 *x, float *y) {
    enum { NP = GV_R / 2 };
    const int np = (nr + 1) / 2;
    const mn_block_q4_0 *ra[NP], *rb[NP];
    __m512 acc[NP], sc[NP];
    for (int p = 0; p < np; p++) {
        ra[p] = (const mn_block_q4_0 *)(w + (size_t)(2 * p) * w_stride);
        rb[p] = (const mn_block_q4_0 *)(w + (size_t)(2 * p + 1 < nr ? 2 * p + 1 : 2 * p) * w_stride);
        acc[p] = _mm512_setzero_ps();
    }
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        const __m256 dx = q8_scales8(x + ib);
        /* the 8 blocks (144 bytes) of each row GV_PF bytes on, in rows to come */
        for (int p = 0; p < np; p++)
            for (int l = 0; l < 3; l++) {
                _mm_prefetch((const char *)((uintptr_t)(ra[p] + ib) + GV_PF + 64 * (unsigned)l), _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)(rb[p] + ib) + GV_PF + 64 * (unsigned)l), _MM_HINT_T0);
            }
        const __m512 dx2 = _mm512_insertf32x8(_mm512_castps256_ps512(dx), dx, 1);
#pragma GCC unroll 2
        for (int p = 0; p < np; p++) /* lanes 0-7: row a's 8 block scales, 8-15: row b's, times d_x */
            sc[p] = _mm512_mul_ps(
                _mm512_insertf32x8(_mm512_castps256_ps512(q4_scales8(ra[p] + ib)), q4_scales8(rb[p] + ib), 1), dx2);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x[ib + j].qs));
            const __m512i corr = q4_correction(xv);
            /* block j's scale of row a in lanes 0-7, of row b in lanes 8-15 */
            const __m512i sel = _mm512_mask_blend_epi32((__mmask16)0xff00, _mm512_set1_epi32(j), _mm512_set1_epi32(8 + j));
#pragma GCC unroll 2
            for (int p = 0; p < np; p++) {
                const __m512i pq = _mm512_dpbusd_epi32(corr, q4_values2(ra[p] + ib + j, rb[p] + ib + j), xv);
                acc[p] = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel, sc[p]), _mm512_cvtepi32_ps(pq), acc[p]);
            }
        }
    }
    for (; ib < nb; ib++) { /* the last nb % 8 blocks */
        const __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x[ib].qs));
        const __m512i corr = q4_correction(xv);
        const float dx = _cvtsh_ss(x[ib].d);
        for (int p = 0; p < np; p++) {
            const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(ra[p][ib].d) * dx),
                                                _mm256_set1_ps(_cvtsh_ss(rb[p][ib].d) * dx), 1);
            const __m512i pq = _mm512_dpbusd_epi32(corr, q4_values2(ra[p] + ib, rb[p] + ib), xv);
            acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(pq), acc[p]);
        }
    }
    for (int r = 0; r < nr; r++) {
        const __m512 a = acc[r / 2];
        y[r] = hsum8(r % 2 ? _mm512_extractf32x8_ps(a, 1) : _mm512_castps512_ps256(a));
    }
}

static void gemv_q4_0_tokens(MN_GEMM_ARGS) {
    const int64_t nb = n / MN_QK4_0;
    for (int64_t t = 0; t < n_tok; t++) {
        const mn_block_q8_0 *xt = (const mn_block_q8_0 *)((const char *)x + (size_t)t * x_stride);
        float *yt = y + t * y_stride;
        const uint8_t *wr = w;
        int64_t r = 0;
        for (; r + GV_R <= n_rows; r += GV_R, wr += GV_R * w_stride) gemv_q4_0(GV_R, nb, wr, w_stride, xt, yt + r);
        switch (n_rows - r) {
        case 3: gemv_q4_0(3, nb, wr, w_stride, xt, yt + r); break;
        case 2: gemv_q4_0(2, nb, wr, w_stride, xt, yt + r); break;
        case 1: gemv_q4_0(1, nb, wr, w_stride, xt, yt + r); break;
        default: break;
        }
    }
}

/* one vec_dot per (token, row) */
static void by_dots(mn_vec_dot_fn dot, MN_GEMM_ARGS) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_rows; r++)
            dot(n, (const char *)w + (size_t)r * w_stride, (const char *)x + (size_t)t * x_stride, &y[t * y_stride + r]);
}

/* Packing a weight panel is paid back from 4 tokens on (measured, see model/ops.c); below that
 * the tokens go one by one through the multi-row dot. */
enum { PACK_MIN_TOK = 4 };

void mn_gemm_q8_0_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_q8_0_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_q(pack_q8_0, sizeof(mn_block_q8_0), 128, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_q4_0_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) gemv_q4_0_tokens(n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_q(pack_q4_0, sizeof(mn_block_q4_0), 8, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

/* ---------------------------------------------------------------- F32 / F16 / BF16 ------------ */

enum { FR = 4, FT = 4 }; /* rows x tokens per microtile (mn_hadd16 reduces the 16 sums) */

enum wkind { W_F32, W_F16, W_BF16 };

/* 16 weights of a row from element i (masked: lanes past m read as 0) as f32 */
static inline __attribute__((always_inline)) __m512 load_w(int kind, const void *row, int64_t i, __mmask16 m) {
    switch (kind) {
    case W_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    case W_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + i);
    }
}

/* out[a * FT + b] = dot(row a, token b) over n elements, b < ft (FT after inlining). pf: the next
 * row group's rows, prefetched one cache line per row and 16 elements (the first token group of a
 * row group streams its rows from memory while the next ones arrive), or NULL. */
static inline __attribute__((always_inline)) void micro_f(int kind, int ft, int64_t n, const void *const wr[FR],
                                                          const float *const xr[FT], const void *const *pf,
                                                          float out[FR * FT]) {
    __m512 acc[FR][FT];
    for (int a = 0; a < FR; a++)
        for (int b = 0; b < FT; b++) acc[a][b] = _mm512_setzero_ps();
    const int esz = kind == W_F32 ? 4 : 2;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[FR];
#pragma GCC unroll 4
        for (int a = 0; a < FR; a++) wv[a] = load_w(kind, wr[a], i, 0xffff);
        if (pf)
            for (int a = 0; a < FR; a++) _mm_prefetch((const char *)pf[a] + i * esz, _MM_HINT_T0);
#pragma GCC unroll 4
        for (int b = 0; b < ft; b++) {
            const __m512 xv = _mm512_loadu_ps(xr[b] + i);
#pragma GCC unroll 4
            for (int a = 0; a < FR; a++) acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);
        }
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 wv[FR];
        for (int a = 0; a < FR; a++) wv[a] = load_w(kind, wr[a], i, m);
        for (int b = 0; b < ft; b++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xr[b] + i);
            for (int a = 0; a < FR; a++) acc[a][b] = _mm512_fmadd_ps(wv[a], xv, acc[a][b]);
        }
    }
    __m512 v[FR * FT]; /* mn_hadd16 order: lane a * FT + b sums v[b * FR + a] */
    for (int a = 0; a < FR; a++)
        for (int b = 0; b < FT; b++) v[b * FR + a] = acc[a][b];
    _mm512_storeu_ps(out, mn_hadd16(v));
}

static inline __attribute__((always_inline)) void gemm_f_ft(int kind, int ft, MN_GEMM_ARGS) {
    /* token tile: its activations (tt * n floats) stay within ~256 KB of L2 */
    int64_t tt = (65536 / (n > 0 ? n : 1)) / FT * FT;
    if (tt < FT) tt = FT;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tt) {
        const int64_t t1 = t0 + tt < n_tok ? t0 + tt : n_tok;
        for (int64_t r0 = 0; r0 < n_rows; r0 += FR) {
            const void *wr[FR], *pf[FR];
            for (int a = 0; a < FR; a++) {
                wr[a] = (const char *)w + (size_t)(r0 + a < n_rows ? r0 + a : n_rows - 1) * w_stride;
                pf[a] = (const char *)w + (size_t)(r0 + FR + a < n_rows ? r0 + FR + a : n_rows - 1) * w_stride;
            }
            for (int64_t t = t0; t < t1; t += ft) {
                const float *xr[FT];
                for (int b = 0; b < ft; b++)
                    xr[b] = (const float *)((const char *)x + (size_t)(t + b < t1 ? t + b : t1 - 1) * x_stride);
                float out[FR * FT];
                micro_f(kind, ft, n, wr, xr, t == t0 ? pf : NULL, out);
                for (int b = 0; b < ft && t + b < t1; b++)
                    for (int a = 0; a < FR && r0 + a < n_rows; a++) y[(t + b) * y_stride + r0 + a] = out[a * FT + b];
            }
        }
    }
}

void mn_gemm_f32_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_f32_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_f_ft(W_F32, FT, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_f16_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_f16_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_f_ft(W_F16, FT, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

void mn_gemm_bf16_avx512(MN_GEMM_ARGS) {
    if (n_tok < PACK_MIN_TOK) by_dots(mn_vec_dot_bf16_avx512, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
    else gemm_f_ft(W_BF16, FT, n, w, w_stride, n_rows, x, x_stride, n_tok, y, y_stride);
}

#endif /* __x86_64__ */
