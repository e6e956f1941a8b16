/*
 * avx512_util.h: small AVX-512 helpers shared by the *_avx512.c kernel files (include it only from
 * files compiled with the AVX-512 flags, see CMakeLists.txt).
 */
#ifndef MN_KERNELS_X86_AVX512_UTIL_H
#define MN_KERNELS_X86_AVX512_UTIL_H

#include <immintrin.h>

/* Lane i of the result = the sum of the 16 lanes of v[(i % 4) * 4 + i / 4] (a 4x4 transpose of the
 * indices, its own inverse): 15 shuffle-and-add steps instead of 16 full reductions. Every lane
 * goes through the same additions in the same order. */
static inline __m512 mn_hadd16(const __m512 v[16]) {
    __m512 w[8], x[4], y[2];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++)
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44), _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
}

#endif
