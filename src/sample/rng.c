/*
 * rng.c: the sampler's PRNG, xoshiro256** seeded through splitmix64 (both by Blackman and Vigna,
 * public domain algorithms, written here from their published definitions).
 *
 * Each sampler owns one mn_rng, so draws depend only on its seed and its own history, never on
 * other samplers or threads. The tests pin the published reference outputs of both generators, so
 * a seed keeps meaning the same token sequence across platforms and releases.
 */
#include "sample/sample.h"

uint64_t mn_rng_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mn_rng_seed(mn_rng *r, uint64_t seed) {
    /* splitmix64 never yields four zero words in a row, the one state xoshiro must avoid. */
    for (int i = 0; i < 4; i++) r->s[i] = mn_rng_splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mn_rng_next(mn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mn_rng_uniform(mn_rng *r) {
    /* The top 53 bits scaled by 2^-53: every double in [0, 1) on a 2^-53 grid, 1 excluded. */
    return (double)(mn_rng_next(r) >> 11) * 0x1.0p-53;
}
