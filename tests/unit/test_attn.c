/*
 * test_attn.c: the attention block kernels (kernels.h, attn_block) against the scalar reference:
 * every SIMD table this CPU supports (others are skipped, with a message), f32 and f16 KV rows,
 * head dimensions that the fast paths take (8 for AVX2, 16, 40, 64, 80, 128, 256) and ones they
 * hand to the reference (100; 40 and 80 for AVX-512), GQA group sizes 1..8, partial and full blocks, from a fresh state and from a running
 * one (so both the rescale and the no-rescale branch run), and scores of both signs and of a wide
 * range (up to |s| ~ 60, where a poor exp would show).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/types.h"

static const char *const simd_isas[] = {"avx2", "avx512"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

enum { HD_MAX = 256, G_MAX = 8, T = MN_ATTN_BLOCK_MAX };

typedef struct att_state {
    float m[G_MAX], l[G_MAX], acc[G_MAX * HD_MAX];
} att_state;

/* Scores are sums of hd products |q_d k_d| <= amp, times 1/sqrt(hd): their rounding error is
 * relative to amp * sqrt(hd), not to the (possibly cancelled) score; exp turns a score error e into
 * a relative error e of l and acc. */
static void check_close(const char *isa, const char *what, int hd, int G, int n_t, float got, float want, float tol) {
    if (!(fabsf(got - want) <= tol))
        fail_msg("%s %s hd=%d G=%d n_t=%d: %.9g vs reference %.9g", isa, what, hd, G, n_t, got, want);
}

static void run_case(const mn_kernels *ref, const mn_kernels *k, int32_t kt, int hd, int G, int n_t, float amp,
                     int running) {
    const mn_type_traits *tt = mn_type_get(kt);
    const size_t row = (size_t)mn_type_row_size(kt, hd) + 8; /* rows apart by more than their size */
    static float q[G_MAX * HD_MAX], kf[T * HD_MAX], vf[T * HD_MAX];
    static char kb[T * (HD_MAX * 4 + 8)], vb[T * (HD_MAX * 4 + 8)];
    for (int i = 0; i < G * hd; i++) q[i] = frand() * amp;
    for (int t = 0; t < n_t; t++) {
        for (int d = 0; d < hd; d++) {
            kf[t * hd + d] = frand();
            vf[t * hd + d] = frand();
        }
        tt->from_f32(kf + t * hd, kb + (size_t)t * row, hd);
        tt->from_f32(vf + t * hd, vb + (size_t)t * row, hd);
    }
    att_state a, b;
    for (int h = 0; h < G; h++) {
        /* running: a state as an earlier block leaves it, its max above or below this block's */
        a.m[h] = running ? (h % 2 ? 50.0f : -50.0f) * amp / 8.0f : -INFINITY;
        a.l[h] = running ? 1.5f : 0.0f;
        for (int d = 0; d < hd; d++) a.acc[h * hd + d] = running ? frand() : 0.0f;
    }
    b = a;
    const float scale = 1.0f / sqrtf((float)hd);
    ref->attn_block[kt](hd, G, n_t, q, kb, vb, row, scale, a.m, a.l, a.acc);
    k->attn_block[kt](hd, G, n_t, q, kb, vb, row, scale, b.m, b.l, b.acc);
    const float score_tol = 2e-6f * amp * sqrtf((float)hd), rel = 2e-5f + 2.0f * score_tol;
    for (int h = 0; h < G; h++) {
        check_close(k->isa, "m", hd, G, n_t, b.m[h], a.m[h], score_tol);
        check_close(k->isa, "l", hd, G, n_t, b.l[h], a.l[h], rel * a.l[h]);
        /* acc relative to the scale of its terms (l, |v| <= 1, plus the running part) */
        for (int d = 0; d < hd; d++) {
            const float tol = rel * (a.l[h] + 1.0f);
            if (!(fabsf(b.acc[h * hd + d] - a.acc[h * hd + d]) <= tol))
                fail_msg("%s %s acc hd=%d G=%d n_t=%d h=%d d=%d: %.9g vs reference %.9g", k->isa, tt->name, hd, G,
                         n_t, h, d, b.acc[h * hd + d], a.acc[h * hd + d]);
        }
    }
}

static void test_attn_block_matches_reference(void **state) {
    (void)state;
    const mn_kernels *ref = mn_kernels_for_isa("scalar");
    assert_non_null(ref);
    int tested = 0;
    for (size_t i = 0; i < sizeof simd_isas / sizeof simd_isas[0]; i++) {
        const mn_kernels *k = mn_kernels_for_isa(simd_isas[i]);
        if (!k) {
            printf("# skipped %s: not supported by this CPU\n", simd_isas[i]);
            continue;
        }
        const int32_t kts[] = {MN_TYPE_F32, MN_TYPE_F16};
        for (size_t ti = 0; ti < 2; ti++) {
            if (!k->attn_block[kts[ti]]) {
                printf("# %s has no %s attention block kernel (the forward pass uses its generic path)\n", k->isa,
                       mn_type_get(kts[ti])->name);
                continue;
            }
            const int hds[] = {8, 16, 40, 64, 80, 100, 128, 256}, Gs[] = {1, 2, 3, 8}, nts[] = {1, 5, 15, 16};
            const float amps[] = {0.5f, 8.0f};
            for (size_t a = 0; a < 8; a++)
                for (size_t g = 0; g < 4; g++)
                    for (size_t n = 0; n < 4; n++)
                        for (size_t s = 0; s < 2; s++)
                            for (int running = 0; running < 2; running++)
                                run_case(ref, k, kts[ti], hds[a], Gs[g], nts[n], amps[s], running);
            tested++;
        }
    }
    printf("# %d SIMD attention kernels checked against the reference\n", tested);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attn_block_matches_reference)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
