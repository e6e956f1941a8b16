/*
 * gguf_internal.h: helpers shared by the GGUF reader (gguf.c) and writer (gguf_write.c) and nothing
 * else: little-endian byte access, the fixed value sizes, UTF-8 validation and the alignment rule.
 * Both sides use the same functions so a file the writer produces is, by construction, one the
 * reader's checks accept (the round-trip tests rely on that).
 */
#ifndef MN_GGUF_INTERNAL_H
#define MN_GGUF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

/* Little-endian loads/stores that work at any address and on any host byte order. */
static inline uint16_t mn_gguf_ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t mn_gguf_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t mn_gguf_ld64(const uint8_t *p) {
    return (uint64_t)mn_gguf_ld32(p) | ((uint64_t)mn_gguf_ld32(p + 4) << 32);
}
static inline void mn_gguf_st32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static inline void mn_gguf_st64(uint8_t *p, uint64_t v) {
    mn_gguf_st32(p, (uint32_t)v);
    mn_gguf_st32(p + 4, (uint32_t)(v >> 32));
}

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
bool mn_gguf_utf8_valid(const char *s, uint64_t n);

/* True when a is a usable alignment: a power of two in [1, MN_GGUF_MAX_ALIGNMENT]. */
static inline bool mn_gguf_alignment_ok(uint64_t a) {
    return a != 0 && (a & (a - 1)) == 0 && a <= MN_GGUF_MAX_ALIGNMENT;
}

/* x rounded up to a multiple of align (a power of two); non-zero return means it overflowed. */
static inline int mn_gguf_align_up(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (__builtin_add_overflow(x, align - 1, &t)) return 1;
    *out = t & ~(align - 1);
    return 0;
}

/* Bytes of one tensor: row size of ne[0] times the other dims. Fills *n_elements too. Returns a
 * static reason string on failure ("ne[0] not a multiple of the block size", ...), NULL if fine.
 * type must be known (mn_type_get != NULL) and every ne[j] > 0. */
const char *mn_gguf_tensor_bytes(int32_t type, uint32_t n_dims, const int64_t *ne, uint64_t *bytes,
                                 int64_t *n_elements);

#endif
