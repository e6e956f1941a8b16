/*
 * blocks.h: the in-memory block structs of the quantized types minnow computes with, shared by the
 * scalar reference (kernels/ref/) and the SIMD variants (kernels/x86/). The byte layout is the
 * GGUF/ggml on-disk layout documented in types.h; the structs only name the fields.
 *
 * Invariant: the structs have no padding (checked below), so a row of n weights is exactly
 * n / 32 consecutive blocks. They are declared packed (alignment 1) because a GGUF file may use
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

#endif
