/*
 * blocks.h: the in-memory block structs of the quantized types minnow computes with, shared by the
 * scalar reference (kernels/ref/) and the SIMD variants (kernels/x86/). The byte layout is the
 * GGUF/ggml on-disk layout documented in types.h; the structs only name the fields.
 *
 * Invariant: the structs have no padding (checked below), so a row of n weights is exactly
 * n / block_size consecutive blocks (32 for Q8_0/Q4_0, 256 for the K-quants). They are declared packed (alignment 1) because a GGUF file may use
 * general.alignment = 1, which puts tensor data, and so the f16 scales, at odd addresses; the
 * compiler then reads the scale with an unaligned-safe load (a plain load on x86), so kernels
 * accept any address without undefined behaviour.
 */
#ifndef MN_KERNELS_BLOCKS_H
#define MN_KERNELS_BLOCKS_H

#include <stdint.h>

#define MN_QK8_0 32
#define MN_QK4_0 32

/* Q8_0: 32 weights in 34 bytes. OFFSET 0 SIZE 2: f16 scale d; OFFSET 2 SIZE 32: int8 q[i].
 * w[i] = d * q[i]. */
typedef struct __attribute__((packed)) mn_block_q8_0 {
    uint16_t d;
    int8_t qs[MN_QK8_0];
} mn_block_q8_0;

/* Q4_0: 32 weights in 18 bytes. OFFSET 0 SIZE 2: f16 scale d; OFFSET 2 SIZE 16: nibbles.
 * Byte j holds weight j in its low nibble and weight j + 16 in its high nibble; a nibble q
 * (0..15) means d * (q - 8). */
typedef struct __attribute__((packed)) mn_block_q4_0 {
    uint16_t d;
    uint8_t qs[MN_QK4_0 / 2];
} mn_block_q4_0;

_Static_assert(sizeof(mn_block_q8_0) == 34, "q8_0 block must be 34 bytes, unpadded");
_Static_assert(sizeof(mn_block_q4_0) == 18, "q4_0 block must be 18 bytes, unpadded");
_Static_assert(_Alignof(mn_block_q8_0) == 1 && _Alignof(mn_block_q4_0) == 1, "blocks may sit at any address");

/* ---- K-quants: super-blocks of 256 weights (ggml's block_q4_K / q5_K / q6_K / q8_K, bit for bit).
 *
 * Q4_K (144 B) and Q5_K (176 B) split the super-block into 8 sub-blocks of 32 weights; sub-block j
 * has a 6-bit scale sc[j] and a 6-bit min m[j], and weight i of it is
 *     w = f16(d) * sc[j] * q  -  f16(dmin) * m[j]          (q unsigned: 0..15, or 0..31 for Q5_K)
 * The 12 scale bytes pack the 16 six-bit numbers (bit 7 = MSB):
 *     bytes 0..3  (k = 0..3): bits 0-5 = sc[k],  bits 6-7 = bits 4-5 of sc[k + 4]
 *     bytes 4..7  (k = 0..3): bits 0-5 = m[k],   bits 6-7 = bits 4-5 of m[k + 4]
 *     bytes 8..11 (k = 0..3): bits 0-3 = bits 0-3 of sc[k + 4], bits 4-7 = bits 0-3 of m[k + 4]
 * Quants are stored by 64-weight chunks c = 0..3: byte qs[32c + l] holds weight 64c + l in its low
 * nibble and weight 64c + 32 + l in its high nibble (so chunk c = sub-blocks 2c and 2c + 1).
 * Q5_K adds a fifth bit: bit 2c of qh[l] is the high bit of weight 64c + l, bit 2c + 1 that of
 * weight 64c + 32 + l.
 *
 * Q6_K (210 B): 16 sub-blocks of 16 weights, each with a signed 8-bit scale sc[k];
 *     w = f16(d) * sc[k] * (q - 32)                         (q unsigned 6-bit: 0..63)
 * Stored by 128-weight halves h = 0..1 (ql += 64h, qh += 32h); for l = 0..31 the four weights
 * 128h + l + {0, 32, 64, 96} take their low 4 bits from ql[l] low nibble, ql[l + 32] low nibble,
 * ql[l] high nibble and ql[l + 32] high nibble, and their high 2 bits from bits 0-1, 2-3, 4-5 and
 * 6-7 of qh[l].
 *
 * Q8_K (292 B), the activation type of the three: f32 d, int8 qs[256] (x = d * qs[i]) and
 * bsums[k] = sum of qs[16k .. 16k + 15], which lets kernels apply per-sub-block offsets (mins,
 * Q6_K's -32) without touching the quants. Note d is a plain f32, not f16.
 */
#define MN_QK_K 256
#define MN_K_SCALE_SIZE 12

/* OFFSET 0 SIZE 2: f16 d; 2 SIZE 2: f16 dmin; 4 SIZE 12: packed scales/mins; 16 SIZE 128: nibbles */
typedef struct __attribute__((packed)) mn_block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[MN_K_SCALE_SIZE];
    uint8_t qs[MN_QK_K / 2];
} mn_block_q4_K;

/* OFFSET 0: f16 d; 2: f16 dmin; 4 SIZE 12: packed scales/mins; 16 SIZE 32: high bits; 48 SIZE 128:
 * nibbles */
typedef struct __attribute__((packed)) mn_block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[MN_K_SCALE_SIZE];
    uint8_t qh[MN_QK_K / 8];
    uint8_t qs[MN_QK_K / 2];
} mn_block_q5_K;

/* OFFSET 0 SIZE 128: low 4 bits; 128 SIZE 64: high 2 bits; 192 SIZE 16: int8 scales; 208 SIZE 2:
 * f16 d */
typedef struct __attribute__((packed)) mn_block_q6_K {
    uint8_t ql[MN_QK_K / 2];
    uint8_t qh[MN_QK_K / 4];
    int8_t scales[MN_QK_K / 16];
    uint16_t d;
} mn_block_q6_K;

/* OFFSET 0 SIZE 4: f32 d; 4 SIZE 256: int8 quants; 260 SIZE 32: int16 sums of 16 quants each */
typedef struct __attribute__((packed)) mn_block_q8_K {
    float d;
    int8_t qs[MN_QK_K];
    int16_t bsums[MN_QK_K / 16];
} mn_block_q8_K;

_Static_assert(sizeof(mn_block_q4_K) == 144, "q4_K block must be 144 bytes, unpadded");
_Static_assert(sizeof(mn_block_q5_K) == 176, "q5_K block must be 176 bytes, unpadded");
_Static_assert(sizeof(mn_block_q6_K) == 210, "q6_K block must be 210 bytes, unpadded");
_Static_assert(sizeof(mn_block_q8_K) == 292, "q8_K block must be 292 bytes, unpadded");
_Static_assert(_Alignof(mn_block_q4_K) == 1 && _Alignof(mn_block_q5_K) == 1 && _Alignof(mn_block_q6_K) == 1 &&
                   _Alignof(mn_block_q8_K) == 1,
               "blocks may sit at any address");

#endif
