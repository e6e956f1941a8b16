/*
 * test_sampler.c: the sampler chain, stage by stage and as a whole.
 *
 * Each stage runs alone on small hand-made logit vectors whose survivors and probabilities were
 * worked out by hand (exact where the arithmetic is exact in binary floating point: powers of two,
 * equal logits). The selection algorithms (heaps) are also checked against a plain sort on random
 * data with many ties, and the whole chain against a naive reference implementation written here
 * with full sorts. Then the public contract: parameter validation (BAD_INPUTS rows 21-25), NaN/Inf
 * logits, greedy tie-breaking, determinism by seed, a 100k-draw frequency check within 4 sigma,
 * the penalty history ring, logit bias, the logit hook and log-probabilities. Randomness in the
 * tests comes from fixed seeds, so every run checks the same thing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "minnow.h"
#include "sample/sample.h"

/* ---------------------------------------------------------------- helpers ------------------ */

#define N_MAX 4096

static mn_cands fill_cands(mn_cand *buf, const float *logits, int32_t n) {
    for (int32_t i = 0; i < n; i++) buf[i] = (mn_cand){i, logits[i], 0.0f};
    return (mn_cands){buf, n, 0};
}

static void expect_ids(const mn_cands *c, const int32_t *ids, int32_t n) {
    assert_int_equal(c->n, n);
    for (int32_t i = 0; i < n; i++) assert_int_equal(c->data[i].id, ids[i]);
}

/* Every stage off: temperature 1, no truncation, no penalties. */
static mn_sampler_params neutral(void) {
    mn_sampler_params p = mn_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    return p;
}

static mn_sampler *make(const mn_sampler_params *p, int32_t n_vocab) {
    mn_sampler *s = NULL;
    mn_error err = {0};
    mn_status st = mn_sampler_create(p, n_vocab, &s, &err);
    if (st != MN_OK) print_error("create failed: %s\n", err.message);
    assert_int_equal(st, MN_OK);
    assert_non_null(s);
    return s;
}

/* Test-local generator (independent of the one under test). */
static uint32_t lcg(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

static float rand_logit(uint64_t *x) { return (float)(lcg(x) % 2000) / 100.0f - 10.0f; }

static int better_ref(const mn_cand *a, const mn_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_desc(const void *pa, const void *pb) {
    const mn_cand *a = pa, *b = pb;
    return better_ref(a, b) ? -1 : better_ref(b, a) ? 1 : 0;
}

static int is_sorted_desc(const mn_cands *c) {
    for (int32_t i = 1; i < c->n; i++)
        if (!better_ref(&c->data[i - 1], &c->data[i])) return 0;
    return 1;
}

/* ---------------------------------------------------------------- PRNG --------------------- */

static void test_rng_reference_vectors(void **state) {
    (void)state;
    /* splitmix64 from state 0 and xoshiro256** from state {1,2,3,4}: the published outputs. */
    uint64_t x = 0;
    assert_true(mn_rng_splitmix64(&x) == 0xE220A8397B1DCDAFull);
    assert_true(mn_rng_splitmix64(&x) == 0x6E789E6AA1B965F4ull);
    assert_true(mn_rng_splitmix64(&x) == 0x06C45D188009454Full);
    mn_rng r = {{1, 2, 3, 4}};
    const uint64_t want[] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull,
                             1216172134540287360ull, 607988272756665600ull, 16172922978634559625ull,
                             8476171486693032832ull, 10595114339597558777ull, 2904607092377533576ull};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) assert_true(mn_rng_next(&r) == want[i]);

    mn_rng a, b;
    mn_rng_seed(&a, 0);
    assert_false(a.s[0] == 0 && a.s[1] == 0 && a.s[2] == 0 && a.s[3] == 0);
    mn_rng_seed(&a, 42);
    mn_rng_seed(&b, 42);
    double sum = 0.0;
    for (int i = 0; i < 10000; i++) {
        double u = mn_rng_uniform(&a);
        assert_true(u >= 0.0 && u < 1.0);
        assert_true(u == mn_rng_uniform(&b));
        sum += u;
    }
    /* mean of 10k U(0,1): sd 0.0029, so 0.02 is ~7 sigma */
    assert_true(fabs(sum / 10000 - 0.5) < 0.02);
}

/* ---------------------------------------------------------------- top-k -------------------- */

static void test_top_k_hand(void **state) {
    (void)state;
    const float logits[] = {1, 5, 3, 5, 2};
    mn_cand buf[5];
    mn_cands c = fill_cands(buf, logits, 5);
    mn_sample_top_k(&c, 2);
    expect_ids(&c, (int32_t[]){1, 3}, 2); /* the tie at 5 keeps both; lower id first */
    assert_true(c.sorted);

    c = fill_cands(buf, logits, 5);
    mn_sample_top_k(&c, 3);
    expect_ids(&c, (int32_t[]){1, 3, 2}, 3);

    c = fill_cands(buf, logits, 5);
    mn_sample_top_k(&c, 1);
    expect_ids(&c, (int32_t[]){1}, 1);

    /* A tie across the boundary: k = 1 of {5 (id 3), 5 (id 1)} keeps the lower id. */
    const float tie[] = {0, 5, 0, 5};
    c = fill_cands(buf, tie, 4);
    mn_sample_top_k(&c, 1);
    expect_ids(&c, (int32_t[]){1}, 1);

    /* top_p = 1 is no change at all either, not even a sort */
    const float two[] = {0, 1};
    c = fill_cands(buf, two, 2);
    mn_sample_top_p(&c, 1.0f);
    expect_ids(&c, (int32_t[]){0, 1}, 2);
    assert_false(c.sorted);

    /* k >= n and k <= 0: no change at all. */
    const int32_t noop[] = {0, -3, 5, 7, INT32_MAX};
    for (int t = 0; t < 5; t++) {
        c = fill_cands(buf, logits, 5);
        mn_sample_top_k(&c, noop[t]);
        expect_ids(&c, (int32_t[]){0, 1, 2, 3, 4}, 5);
        assert_false(c.sorted);
    }
}

static void test_top_k_matches_sort(void **state) {
    (void)state;
    static mn_cand buf[1000], ref[1000];
    float logits[1000];
    uint64_t x = 7;
    /* Few distinct values, so most comparisons are ties decided by id. */
    for (int i = 0; i < 1000; i++) logits[i] = (float)(lcg(&x) % 20);
    const int32_t ks[] = {1, 2, 7, 40, 500, 999};
    for (size_t t = 0; t < 2 * sizeof ks / sizeof ks[0]; t++) {
        mn_cands c = fill_cands(buf, logits, 1000);
        mn_cands r = fill_cands(ref, logits, 1000);
        if (t >= sizeof ks / sizeof ks[0]) {
            /* second round: candidates arrive shuffled; the result must not depend on it */
            for (int32_t i = 999; i > 0; i--) {
                int32_t j = (int32_t)(lcg(&x) % (uint32_t)(i + 1));
                mn_cand tmp = buf[i];
                buf[i] = buf[j];
                buf[j] = tmp;
            }
        }
        qsort(r.data, 1000, sizeof *r.data, cmp_desc);
        int32_t k = ks[t % (sizeof ks / sizeof ks[0])];
        mn_sample_top_k(&c, k);
        assert_int_equal(c.n, k);
        for (int32_t i = 0; i < k; i++) assert_int_equal(c.data[i].id, r.data[i].id);
    }
}

/* ---------------------------------------------------------------- top-p -------------------- */

static void test_top_p_boundaries(void **state) {
    (void)state;
    mn_cand buf[8];
    /* Four equal logits: p = 0.25 each, exactly. The nucleus is the shortest prefix whose mass
     * reaches top_p, so 0.5 keeps two (0.25 + 0.25 == 0.5) and a hair more keeps three. */
    const struct {
        float top_p;
        int32_t n;
    } cases[] = {{0.5f, 2}, {0.5000001f, 3}, {0.25f, 1}, {0.2500001f, 2}, {0.75f, 3},
                 {0.7500001f, 4}, {1e-6f, 1}, {1.0f, 4}};
    const float flat5[] = {0, 0, 0, 0, -INFINITY};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        /* pass 0: unsorted input (heap path); pass 1: sorted by a top-k first (scan path) */
        for (int pass = 0; pass < 2; pass++) {
            mn_cands c = fill_cands(buf, flat5, pass ? 5 : 4);
            if (pass) mn_sample_top_k(&c, 4);
            assert_true(c.sorted == pass);
            mn_sample_top_p(&c, cases[t].top_p);
            assert_int_equal(c.n, cases[t].n);
            for (int32_t i = 0; i < c.n; i++) assert_int_equal(c.data[i].id, i); /* ties: lower ids */
            if (cases[t].top_p < 1.0f)
                for (int32_t i = 0; i < c.n; i++) assert_true(c.data[i].p == 0.25f);
        }
    }

    /* p = 0.2, 0.5, 0.3 for ids 0, 1, 2 (small unsorted input: the heap path, which sorts). */
    const float l3[] = {logf(0.2f), logf(0.5f), logf(0.3f), -INFINITY};
    const struct {
        float top_p;
        int32_t n;
        int32_t ids[3];
    } c3[] = {{0.4f, 1, {1}}, {0.6f, 2, {1, 2}}, {0.79f, 2, {1, 2}}, {0.85f, 3, {1, 2, 0}}};
    for (size_t t = 0; t < sizeof c3 / sizeof c3[0]; t++) {
        mn_cands c = fill_cands(buf, l3, 3);
        mn_sample_top_p(&c, c3[t].top_p);
        expect_ids(&c, c3[t].ids, c3[t].n);
        assert_true(c.sorted);
        assert_float_equal(c.data[0].p, 0.5f, 1e-6f);
        /* the sorted path (after top-k put them in order) gives the same nucleus */
        c = fill_cands(buf, l3, 4);
        mn_sample_top_k(&c, 3);
        assert_true(c.sorted);
        mn_sample_top_p(&c, c3[t].top_p);
        expect_ids(&c, c3[t].ids, c3[t].n);
    }
}

static void test_top_p_matches_reference(void **state) {
    (void)state;
    static mn_cand buf[N_MAX], ref[N_MAX];
    static float logits[N_MAX];
    uint64_t x = 99;
    for (int i = 0; i < N_MAX; i++) logits[i] = rand_logit(&x);
    const float ps[] = {0.01f, 0.1f, 0.5f, 0.9f, 0.99f, 0.999999f};
    for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
        mn_cands r = fill_cands(ref, logits, N_MAX);
        mn_sample_softmax(&r);
        qsort(r.data, N_MAX, sizeof *r.data, cmp_desc);
        double cum = 0.0;
        int32_t m = N_MAX;
        for (int32_t i = 0; i < N_MAX; i++) {
            cum += r.data[i].p;
            if (cum >= ps[t]) {
                m = i + 1;
                break;
            }
        }
        mn_cands c = fill_cands(buf, logits, N_MAX);
        mn_sample_top_p(&c, ps[t]);
        assert_int_equal(c.n, m);
        /* the quickselect leaves the nucleus in no particular order: compare as sets */
        if (c.sorted) assert_true(is_sorted_desc(&c));
        qsort(c.data, (size_t)c.n, sizeof *c.data, cmp_desc);
        for (int32_t i = 0; i < m; i++) assert_int_equal(c.data[i].id, r.data[i].id);
    }

    /* 1024 equal logits: p = 2^-10 each, so every partial mass is exact and the boundary is
     * sharp; ties go to the lower ids. */
    for (int i = 0; i < 1024; i++) logits[i] = 1.5f;
    const struct {
        float top_p;
        int32_t n;
    } flat[] = {{0.5f, 512}, {0.5001f, 513}, {0x1p-10f, 1}, {0.75f, 768}, {0.999f, 1023}, {1e-9f, 1}};
    for (size_t t = 0; t < sizeof flat / sizeof flat[0]; t++) {
        mn_cands c = fill_cands(buf, logits, 1024);
        mn_sample_top_p(&c, flat[t].top_p);
        assert_int_equal(c.n, flat[t].n);
        qsort(c.data, (size_t)c.n, sizeof *c.data, cmp_desc);
        for (int32_t i = 0; i < c.n; i++) assert_int_equal(c.data[i].id, i);
    }
}

/* ---------------------------------------------------------------- min-p -------------------- */

static void test_min_p(void **state) {
    (void)state;
    mn_cand buf[4];
    /* logits 3, 2, 1, 0 placed at ids 1, 3, 0, 2: p / p_max = 1, e^-1 = .368, e^-2 = .135,
     * e^-3 = .0498. Survivors keep their input order (stable). */
    const float l[] = {1, 3, 0, 2};
    const struct {
        float min_p;
        int32_t n;
        int32_t ids[4];
    } cases[] = {{0.04f, 4, {0, 1, 2, 3}}, {0.1f, 3, {0, 1, 3}}, {0.2f, 2, {1, 3}},
                 {0.5f, 1, {1}},          {1.0f, 1, {1}},       {0.0f, 4, {0, 1, 2, 3}}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        mn_cands c = fill_cands(buf, l, 4);
        mn_sample_min_p(&c, cases[t].min_p);
        expect_ids(&c, cases[t].ids, cases[t].n);
    }
    /* min_p = 1 keeps exactly the tokens tied at the max. */
    const float tie[] = {1, 1, 0};
    mn_cands c = fill_cands(buf, tie, 3);
    mn_sample_min_p(&c, 1.0f);
    expect_ids(&c, (int32_t[]){0, 1}, 2);
    /* A sorted array stays sorted. */
    c = fill_cands(buf, l, 4);
    mn_sample_top_k(&c, 3);
    mn_sample_min_p(&c, 0.2f);
    expect_ids(&c, (int32_t[]){1, 3}, 2);
    assert_true(c.sorted && is_sorted_desc(&c));
}

/* ---------------------------------------------------------------- temperature, softmax ----- */

static void test_temperature(void **state) {
    (void)state;
    mn_cand buf[4];
    const float l[] = {2, 1, 0};
    mn_cands c = fill_cands(buf, l, 3);
    mn_sample_temperature(&c, 0.5f);
    /* (l - max) / t, exact in binary */
    assert_true(c.data[0].logit == 0.0f && c.data[1].logit == -2.0f && c.data[2].logit == -4.0f);
    mn_sample_softmax(&c);
    double z = exp(4.0) + exp(2.0) + 1.0;
    assert_float_equal(c.data[0].p, exp(4.0) / z, 1e-6);
    assert_float_equal(c.data[1].p, exp(2.0) / z, 1e-6);
    assert_float_equal(c.data[2].p, 1.0 / z, 1e-6);

    c = fill_cands(buf, l, 3);
    mn_sample_temperature(&c, 2.0f);
    mn_sample_softmax(&c);
    z = exp(1.0) + exp(0.5) + 1.0;
    assert_float_equal(c.data[0].p, exp(1.0) / z, 1e-6);
    assert_float_equal(c.data[1].p, exp(0.5) / z, 1e-6);
    assert_float_equal(c.data[2].p, 1.0 / z, 1e-6);

    /* A tiny temperature approaches greedy instead of overflowing to Inf - Inf. */
    const float close[] = {5.0f, 4.9f};
    c = fill_cands(buf, close, 2);
    mn_sample_temperature(&c, 1e-30f);
    mn_sample_softmax(&c);
    assert_true(c.data[0].p == 1.0f && c.data[1].p == 0.0f);

    /* Underflow merges logits 1 (id 2) and 0 (id 1) into -Inf; the order by id then no longer
     * holds, so the stage must not claim the array is sorted. */
    const float merge[] = {5.0f, 0.0f, 1.0f};
    c = fill_cands(buf, merge, 3);
    c.data[1] = (mn_cand){2, 1.0f, 0.0f};
    c.data[2] = (mn_cand){1, 0.0f, 0.0f};
    c.sorted = 1;
    assert_true(is_sorted_desc(&c));
    mn_sample_temperature(&c, 1e-38f); /* -4 / 1e-38 overflows float */
    assert_true(c.data[1].logit == -INFINITY && c.data[2].logit == -INFINITY);
    assert_true(!c.sorted || is_sorted_desc(&c));

    /* +Inf max: the stage leaves the logits alone. */
    const float inf[] = {INFINITY, 1.0f};
    c = fill_cands(buf, inf, 2);
    mn_sample_temperature(&c, 0.5f);
    assert_true(c.data[0].logit == INFINITY && c.data[1].logit == 1.0f);
}

static void test_softmax_infinities(void **state) {
    (void)state;
    mn_cand buf[4];
    const float l[] = {INFINITY, 0.0f, INFINITY, -INFINITY};
    mn_cands c = fill_cands(buf, l, 4);
    mn_sample_softmax(&c);
    assert_true(c.data[0].p == 0.5f && c.data[1].p == 0.0f && c.data[2].p == 0.5f && c.data[3].p == 0.0f);

    const float none[] = {-INFINITY, -INFINITY};
    c = fill_cands(buf, none, 2);
    mn_sample_softmax(&c);
    assert_true(c.data[0].p == 0.5f && c.data[1].p == 0.5f); /* uniform, not NaN */
    mn_sample_drop_impossible(&c);
    assert_int_equal(c.n, 0);
    assert_int_equal(mn_sample_argmax(&c), -1);
    assert_int_equal(mn_sample_draw(&c, 0.5), -1);

    /* draw never picks a zero-probability candidate, whatever u is */
    for (int i = 0; i < 100; i++) {
        c = fill_cands(buf, l, 4);
        int32_t k = mn_sample_draw(&c, i / 100.0);
        assert_true(k == 0 || k == 2);
    }
    c = fill_cands(buf, l, 4);
    assert_int_equal(mn_sample_draw(&c, 0.0), 0);
    /* a zero-weight candidate first: u = 0 must still skip it */
    const float zero_first[] = {0.0f, INFINITY, INFINITY};
    c = fill_cands(buf, zero_first, 3);
    assert_int_equal(mn_sample_draw(&c, 0.0), 1);
    /* u exactly at a cumulative boundary (r == 1 of 2) belongs to the next candidate */
    c = fill_cands(buf, zero_first, 3);
    assert_int_equal(mn_sample_draw(&c, 0.5), 2);
    /* u = 1 (the closed end) takes the last possible candidate, never a zero-weight one */
    const float zero_last[] = {INFINITY, 2.0f, INFINITY, 0.0f};
    c = fill_cands(buf, zero_last, 4);
    assert_int_equal(mn_sample_draw(&c, 1.0), 2);

    /* log-sum-exp and log-probabilities with infinities */
    int32_t n_inf = -1;
    assert_true(mn_sample_logsumexp((float[]){INFINITY, 0.0f, INFINITY}, 3, &n_inf) == INFINITY);
    assert_int_equal(n_inf, 2);
    assert_float_equal(mn_sample_logprob(INFINITY, INFINITY, 2), -logf(2.0f), 1e-7);
    assert_true(mn_sample_logprob(0.0f, INFINITY, 2) == -INFINITY);
    assert_true(mn_sample_logsumexp((float[]){-INFINITY, NAN}, 2, &n_inf) == -INFINITY);
    assert_int_equal(n_inf, 0);
    assert_true(mn_sample_logprob(NAN, -INFINITY, 0) == -INFINITY);
    assert_float_equal(mn_sample_logsumexp((float[]){0.0f, NAN, 0.0f, -INFINITY}, 4, &n_inf), log(2.0), 1e-12);
    assert_true(mn_sample_logprob(NAN, log(2.0), 0) == -INFINITY);
    assert_float_equal(mn_sample_logprob(0.0f, log(2.0), 0), -log(2.0), 1e-7);
    c = fill_cands(buf, l, 4);
    assert_int_equal(mn_sample_draw(&c, 0.9999999999), 2);
}

/* ---------------------------------------------------------------- penalties and history ---- */

static void penalised(float repeat, float freq, float pres, float *out) {
    mn_sample_history h;
    assert_int_equal(mn_sample_history_init(&h, 5, 8, repeat, freq, pres, NULL), MN_OK);
    mn_sample_history_push(&h, 1);
    mn_sample_history_push(&h, 1);
    mn_sample_history_push(&h, 2);
    mn_sample_history_push(&h, 4);
    const float l[] = {4, 4, -1, 3, -INFINITY};
    mn_cand buf[5];
    mn_cands c = fill_cands(buf, l, 5);
    mn_sample_penalties(&c, &h);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c.data[i].id, i);
        out[i] = c.data[i].logit;
    }
    mn_sample_history_free(&h);
}

static void test_penalties_hand(void **state) {
    (void)state;
    float o[5];
    /* history: id 1 twice, id 2 once, id 4 once (logit -Inf); ids 0 and 3 unseen */
    penalised(2.0f, 0.0f, 0.0f, o); /* positive divided, negative multiplied */
    assert_true(o[0] == 4 && o[1] == 2 && o[2] == -2 && o[3] == 3 && o[4] == -INFINITY);
    penalised(1.0f, 0.5f, 0.0f, o); /* minus count * 0.5 */
    assert_true(o[0] == 4 && o[1] == 3 && o[2] == -1.5f && o[3] == 3 && o[4] == -INFINITY);
    penalised(1.0f, 0.0f, 0.25f, o); /* minus 0.25 once per seen token */
    assert_true(o[0] == 4 && o[1] == 3.75f && o[2] == -1.25f && o[3] == 3 && o[4] == -INFINITY);
    penalised(2.0f, 0.5f, 0.25f, o); /* all three: 4/2 - 2*0.5 - 0.25, -1*2 - 0.5 - 0.25 */
    assert_true(o[0] == 4 && o[1] == 0.75f && o[2] == -2.75f && o[3] == 3 && o[4] == -INFINITY);
    penalised(0.5f, -1.0f, -2.0f, o); /* negative values boost: 4/0.5 + 2 + 2, -1*0.5 + 1 + 2 */
    assert_true(o[0] == 4 && o[1] == 12 && o[2] == 2.5f && o[3] == 3 && o[4] == -INFINITY);
}

static void check_history(const mn_sample_history *h, const int32_t *pushed, int n_pushed) {
    int32_t want[16] = {0};
    int from = n_pushed > h->n_last ? n_pushed - h->n_last : 0;
    for (int i = from; i < n_pushed; i++) want[pushed[i]]++;
    int distinct = 0;
    for (int32_t id = 0; id < h->n_vocab; id++) {
        assert_int_equal(mn_sample_history_count(h, id), want[id]);
        distinct += want[id] > 0;
    }
    assert_int_equal(h->n_present, distinct);
    for (int32_t j = 0; j < h->n_present; j++) {
        assert_true(h->counts[h->present[j]] > 0);
        assert_int_equal(h->i_present[h->present[j]], j);
    }
}

static void test_history_ring(void **state) {
    (void)state;
    mn_sample_history h;
    assert_int_equal(mn_sample_history_init(&h, 8, 3, 1.1f, 0, 0, NULL), MN_OK);
    int32_t pushed[64];
    int n = 0;
    const int32_t seq[] = {5, 5, 1, 2, 3, 1, 1};
    /* after each push the window is the last 3; hand-computed counts of 5 and 1 */
    const int32_t want5[] = {1, 2, 2, 1, 0, 0, 0};
    const int32_t want1[] = {0, 0, 1, 1, 1, 1, 2};
    for (int i = 0; i < 7; i++) {
        mn_sample_history_push(&h, seq[i]);
        pushed[n++] = seq[i];
        assert_int_equal(mn_sample_history_count(&h, 5), want5[i]);
        assert_int_equal(mn_sample_history_count(&h, 1), want1[i]);
        check_history(&h, pushed, n);
    }
    /* out-of-range ids are ignored, not stored and not evicting anything */
    const int32_t bad[] = {-1, 8, INT32_MAX, INT32_MIN};
    for (int i = 0; i < 4; i++) mn_sample_history_push(&h, bad[i]);
    check_history(&h, pushed, n);
    assert_int_equal(mn_sample_history_count(&h, -1), 0);
    assert_int_equal(mn_sample_history_count(&h, 8), 0);

    mn_sample_history_clear(&h);
    for (int32_t id = 0; id < 8; id++) assert_int_equal(mn_sample_history_count(&h, id), 0);
    assert_int_equal(h.n_present, 0);
    mn_sample_history_free(&h);

    /* Long random run against a brute-force window, wrapping many times. */
    static int32_t many[5000];
    assert_int_equal(mn_sample_history_init(&h, 16, 5, 1.1f, 0, 0, NULL), MN_OK);
    uint64_t x = 3;
    for (int i = 0; i < 5000; i++) {
        many[i] = (int32_t)(lcg(&x) % 16);
        mn_sample_history_push(&h, many[i]);
        if (i % 97 == 0 || i > 4990) check_history(&h, many, i + 1);
    }
    mn_sample_history_free(&h);

    /* n_last 0 keeps nothing */
    assert_int_equal(mn_sample_history_init(&h, 16, 0, 1.1f, 0, 0, NULL), MN_OK);
    mn_sample_history_push(&h, 3);
    assert_int_equal(mn_sample_history_count(&h, 3), 0);
    mn_sample_history_free(&h);
}

/* ---------------------------------------------------------------- chain, greedy ------------ */

static void expect_chain(const mn_sampler_params *p, int32_t n_vocab, const char *const *want, int n) {
    mn_sampler *s = make(p, n_vocab);
    const char *names[16];
    assert_int_equal(mn_sampler_chain(s, names, 16), n);
    for (int i = 0; i < n; i++) assert_string_equal(names[i], want[i]);
    mn_sampler_free(s);
}

static void test_chain_composition(void **state) {
    (void)state;
    mn_sampler_params p = mn_sampler_default_params();
    expect_chain(&p, 100, (const char *[]){"drop-impossible", "top-k", "top-p", "min-p", "temperature", "draw"}, 6);
    p.repeat_penalty = 1.1f;
    expect_chain(&p, 100,
                 (const char *[]){"penalties", "drop-impossible", "top-k", "top-p", "min-p", "temperature", "draw"}, 7);
    p.penalty_last_n = 0; /* no history: penalties off */
    expect_chain(&p, 100, (const char *[]){"drop-impossible", "top-k", "top-p", "min-p", "temperature", "draw"}, 6);
    p = neutral();
    expect_chain(&p, 100, (const char *[]){"drop-impossible", "draw"}, 2);
    p.top_k = 100; /* k >= n_vocab is a no-op, so not in the chain */
    expect_chain(&p, 100, (const char *[]){"drop-impossible", "draw"}, 2);
    /* greedy skips every truncation stage and temperature, but keeps the penalties */
    p = mn_sampler_default_params();
    p.temperature = 0.0f;
    p.top_k = 1;
    p.top_p = 0.01f;
    p.min_p = 1.0f;
    expect_chain(&p, 100, (const char *[]){"argmax"}, 1);
    p.temperature = -3.0f;
    p.presence_penalty = 0.5f;
    expect_chain(&p, 100, (const char *[]){"penalties", "argmax"}, 2);
}

static void test_greedy(void **state) {
    (void)state;
    mn_sampler_params p = mn_sampler_default_params();
    p.temperature = 0.0f;
    mn_sampler *s = make(&p, 4);
    assert_int_equal(mn_sampler_sample(s, (float[]){1, 3, 3, 2}), 1); /* tie: lowest id */
    assert_int_equal(mn_sampler_sample(s, (float[]){3, 3, 3, 3}), 0);
    assert_int_equal(mn_sampler_sample(s, (float[]){0, 1, 2, 3}), 3);
    assert_int_equal(mn_sampler_sample(s, (float[]){NAN, 1, NAN, 0}), 1);
    assert_int_equal(mn_sampler_sample(s, (float[]){NAN, -INFINITY, 2, NAN}), 2);
    assert_int_equal(mn_sampler_sample(s, (float[]){1, INFINITY, 3, INFINITY}), 1);
    mn_sample_info info;
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    assert_int_equal(info.token, 1);
    assert_int_equal(info.n_possible, 1);
    assert_true(info.p == 1.0f);
    mn_sampler_free(s);

    /* negative temperature is greedy too, and greedy never draws: same answer every time */
    p.temperature = -1.0f;
    s = make(&p, 4);
    for (int i = 0; i < 50; i++) assert_int_equal(mn_sampler_sample(s, (float[]){1, 2.5f, 2.4f, 0}), 1);
    mn_sampler_free(s);
}

/* ---------------------------------------------------------------- determinism -------------- */

static void run_seq(mn_sampler *s, const float *logits, int32_t *out, int n) {
    for (int i = 0; i < n; i++) {
        out[i] = mn_sampler_sample(s, logits);
        mn_sampler_accept(s, out[i]);
    }
}

static void test_determinism(void **state) {
    (void)state;
    float logits[50];
    uint64_t x = 5;
    for (int i = 0; i < 50; i++) logits[i] = rand_logit(&x) / 4.0f;
    mn_sampler_params p = mn_sampler_default_params();
    p.temperature = 1.5f;
    p.repeat_penalty = 1.1f;
    p.seed = 1234;
    mn_sampler *a = make(&p, 50), *b = make(&p, 50);
    p.seed = 1235;
    mn_sampler *other = make(&p, 50);
    int32_t sa[300], sb[300], so[300];
    /* interleave the three samplers: each depends only on its own state */
    for (int i = 0; i < 300; i++) {
        sa[i] = mn_sampler_sample(a, logits);
        mn_sampler_accept(a, sa[i]);
        so[i] = mn_sampler_sample(other, logits);
        mn_sampler_accept(other, so[i]);
    }
    run_seq(b, logits, sb, 300);
    assert_memory_equal(sa, sb, sizeof sa);
    assert_memory_not_equal(sa, so, sizeof sa);
    int distinct = 0;
    for (int i = 1; i < 300; i++) distinct += sa[i] != sa[0];
    assert_true(distinct > 10); /* really random, not one repeated token */

    /* reset clears the history and reseeds: the same sequence again */
    mn_sampler_reset(a);
    mn_sample_info info;
    assert_int_equal(mn_sampler_last(a, &info), MN_ENOTFOUND);
    run_seq(a, logits, sb, 300);
    assert_memory_equal(sa, sb, sizeof sa);
    mn_sampler_free(a);
    mn_sampler_free(b);
    mn_sampler_free(other);
}

/* ---------------------------------------------------------------- distribution ------------- */

/* 100k draws from 3 tokens; every frequency within 4 sigma of N p (deterministic by seed). */
static void check_distribution(const mn_sampler_params *p, const float *logits, const double *want) {
    enum { N = 100000 };
    mn_sampler *s = make(p, 3);
    long count[3] = {0};
    for (int i = 0; i < N; i++) {
        int32_t t = mn_sampler_sample(s, logits);
        assert_in_range(t, 0, 2);
        count[t]++;
        if (i < 100) {
            mn_sample_info info;
            assert_int_equal(mn_sampler_last(s, &info), MN_OK);
            assert_float_equal(info.p, want[t], 1e-5);
        }
    }
    for (int k = 0; k < 3; k++) {
        double mean = N * want[k], sigma = sqrt(N * want[k] * (1.0 - want[k]));
        if (want[k] == 0.0)
            assert_int_equal(count[k], 0);
        else if (fabs((double)count[k] - mean) > 4.0 * sigma)
            fail_msg("token %d: %ld draws, expected %.0f +- %.0f", k, count[k], mean, 4 * sigma);
    }
    mn_sampler_free(s);
}

static void test_distribution(void **state) {
    (void)state;
    const float logits[] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    mn_sampler_params p = neutral();
    p.seed = 77;
    check_distribution(&p, logits, (double[]){0.5, 0.3, 0.2});

    p.temperature = 2.0f; /* p^(1/2), renormalised */
    double a = sqrt(0.5), b = sqrt(0.3), c = sqrt(0.2), z = a + b + c;
    check_distribution(&p, logits, (double[]){a / z, b / z, c / z});

    p = neutral();
    p.top_k = 2;
    check_distribution(&p, logits, (double[]){0.625, 0.375, 0.0});

    p = neutral();
    p.min_p = 0.5f; /* 0.2 < 0.5 * 0.5 goes, 0.3 stays */
    check_distribution(&p, logits, (double[]){0.625, 0.375, 0.0});

    p = neutral();
    p.top_p = 0.75f; /* 0.5 < 0.75 <= 0.5 + 0.3 */
    check_distribution(&p, logits, (double[]){0.625, 0.375, 0.0});
}

/* ---------------------------------------------------------------- validation --------------- */

typedef struct bad_case {
    const char *field;
    void (*set)(mn_sampler_params *p, double v);
    double value;
} bad_case;

static void set_temperature(mn_sampler_params *p, double v) { p->temperature = (float)v; }
static void set_top_k(mn_sampler_params *p, double v) { p->top_k = (int32_t)v; }
static void set_top_p(mn_sampler_params *p, double v) { p->top_p = (float)v; }
static void set_min_p(mn_sampler_params *p, double v) { p->min_p = (float)v; }
static void set_repeat(mn_sampler_params *p, double v) { p->repeat_penalty = (float)v; }
static void set_last_n(mn_sampler_params *p, double v) { p->penalty_last_n = (int32_t)v; }
static void set_freq(mn_sampler_params *p, double v) { p->frequency_penalty = (float)v; }
static void set_pres(mn_sampler_params *p, double v) { p->presence_penalty = (float)v; }
static void set_n_probs(mn_sampler_params *p, double v) { p->n_probs = (int32_t)v; }

static void test_invalid_params(void **state) {
    (void)state;
    const bad_case bad[] = {
        {"temperature", set_temperature, NAN},     {"temperature", set_temperature, INFINITY},
        {"temperature", set_temperature, -INFINITY},
        {"top_k", set_top_k, -1},                  {"top_k", set_top_k, INT32_MIN},
        {"top_p", set_top_p, 0.0},                 {"top_p", set_top_p, -0.1},
        {"top_p", set_top_p, 1.0001},              {"top_p", set_top_p, NAN},
        {"top_p", set_top_p, INFINITY},
        {"min_p", set_min_p, -0.01},               {"min_p", set_min_p, 1.01},
        {"min_p", set_min_p, NAN},                 {"min_p", set_min_p, -INFINITY},
        {"repeat_penalty", set_repeat, 0.0},       {"repeat_penalty", set_repeat, -1.0},
        {"repeat_penalty", set_repeat, NAN},       {"repeat_penalty", set_repeat, INFINITY},
        {"penalty_last_n", set_last_n, -1},        {"penalty_last_n", set_last_n, MN_SAMPLER_HISTORY_MAX + 1.0},
        {"penalty_last_n", set_last_n, INT32_MAX},
        {"frequency_penalty", set_freq, -2.01},    {"frequency_penalty", set_freq, 2.01},
        {"frequency_penalty", set_freq, NAN},      {"frequency_penalty", set_freq, INFINITY},
        {"presence_penalty", set_pres, -2.01},     {"presence_penalty", set_pres, 2.01},
        {"presence_penalty", set_pres, NAN},       {"presence_penalty", set_pres, -INFINITY},
        {"n_probs", set_n_probs, -1},              {"n_probs", set_n_probs, MN_SAMPLER_N_PROBS_MAX + 1.0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mn_sampler_params p = mn_sampler_default_params();
        bad[i].set(&p, bad[i].value);
        mn_sampler *s = (mn_sampler *)&p; /* must be overwritten with NULL */
        mn_error err = {0};
        assert_int_equal(mn_sampler_create(&p, 100, &s, &err), MN_EINVAL);
        assert_null(s);
        assert_int_equal(err.status, MN_EINVAL);
        if (!strstr(err.message, bad[i].field))
            fail_msg("case %zu: message \"%s\" does not name %s", i, err.message, bad[i].field);
        /* and no crash without an mn_error */
        assert_int_equal(mn_sampler_create(&p, 100, &s, NULL), MN_EINVAL);
    }
    /* the message shows the offending value */
    mn_sampler_params p = mn_sampler_default_params();
    p.top_p = NAN;
    mn_error err = {0};
    mn_sampler *s = NULL;
    assert_int_equal(mn_sampler_create(&p, 100, &s, &err), MN_EINVAL);
    assert_string_equal(err.message, "top_p must be in (0, 1], got nan");

    const int32_t bad_vocab[] = {0, -1, INT32_MIN, MN_SAMPLER_VOCAB_MAX + 1, INT32_MAX};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mn_sampler_create(NULL, bad_vocab[i], &s, &err), MN_EINVAL);
        assert_null(s);
        assert_non_null(strstr(err.message, "n_vocab"));
    }
    assert_int_equal(mn_sampler_create(NULL, 10, NULL, &err), MN_EINVAL);

    /* the edges of every range are accepted */
    p = mn_sampler_default_params();
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.top_k = INT32_MAX; /* clamps to n_vocab */
    p.frequency_penalty = -2.0f;
    p.presence_penalty = 2.0f;
    p.penalty_last_n = MN_SAMPLER_HISTORY_MAX;
    p.repeat_penalty = 1e-6f;
    p.temperature = 1e-30f;
    p.n_probs = MN_SAMPLER_N_PROBS_MAX; /* clamps to n_vocab */
    s = make(&p, 3);
    assert_in_range(mn_sampler_sample(s, (float[]){1, 2, 3}), 0, 2);
    mn_sample_info info;
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    assert_int_equal(info.n_top, 3);
    mn_sampler_free(s);
    p.min_p = 0.0f;
    p.penalty_last_n = 0;
    p.temperature = -3.4e38f; /* any finite negative: greedy */
    s = make(&p, 1);
    mn_sampler_free(s);
    s = make(NULL, 1); /* NULL params: defaults */
    mn_sampler_free(s);
    mn_sampler_free(NULL);
    mn_sampler_reset(NULL);
    mn_sampler_accept(NULL, 0);
    assert_int_equal(mn_sampler_sample(NULL, (float[]){0}), -1);
    s = make(NULL, 4);
    assert_int_equal(mn_sampler_sample(s, NULL), -1);
    mn_sampler_free(s);
    assert_string_equal(mn_sampler_errmsg(NULL), "");
}

/* ---------------------------------------------------------------- NaN / Inf logits --------- */

static void test_nan_inf_logits(void **state) {
    (void)state;
    mn_sampler_params p = neutral();
    p.n_probs = 2;
    mn_sampler *s = make(&p, 4);
    mn_sample_info info;
    for (int i = 0; i < 1000; i++) {
        int32_t t = mn_sampler_sample(s, (float[]){NAN, 1, NAN, 0});
        assert_true(t == 1 || t == 3);
        assert_int_equal(mn_sampler_last(s, &info), MN_OK);
        assert_false(isnan(info.p) || isnan(info.logprob));
        assert_int_equal(info.n_possible, 2);
    }
    /* +Inf tokens share the mass; the finite ones are impossible */
    int n0 = 0;
    for (int i = 0; i < 1000; i++) {
        int32_t t = mn_sampler_sample(s, (float[]){INFINITY, 0, INFINITY, NAN});
        assert_true(t == 0 || t == 2);
        n0 += t == 0;
        assert_int_equal(mn_sampler_last(s, &info), MN_OK);
        assert_true(info.p == 0.5f);
        assert_int_equal(info.n_possible, 2); /* the finite token survives the chain but has p 0 */
        assert_float_equal(info.logprob, -logf(2.0f), 1e-6);
    }
    assert_in_range(n0, 500 - 64, 500 + 64); /* 4 sigma of 1000 fair coin flips is 63 */
    mn_sampler_free(s);

    /* every token impossible: 0, with n_possible 0, under every chain */
    const float *cases[] = {(float[]){-INFINITY, -INFINITY, -INFINITY, -INFINITY},
                            (float[]){NAN, NAN, NAN, NAN}, (float[]){NAN, -INFINITY, NAN, -INFINITY}};
    mn_sampler_params ps[3] = {neutral(), mn_sampler_default_params(), mn_sampler_default_params()};
    ps[1].repeat_penalty = 1.3f;
    ps[2].temperature = 0.0f;
    for (int k = 0; k < 3; k++) {
        ps[k].n_probs = 3;
        s = make(&ps[k], 4);
        mn_sampler_accept(s, 2);
        for (int c = 0; c < 3; c++) {
            assert_int_equal(mn_sampler_sample(s, cases[c]), 0);
            assert_int_equal(mn_sampler_last(s, &info), MN_OK);
            assert_int_equal(info.n_possible, 0);
            assert_true(info.logprob == -INFINITY);
            assert_int_equal(info.n_top, 3);
            for (int j = 0; j < 3; j++) {
                assert_int_equal(info.top[j].id, j);
                assert_true(info.top[j].logprob == -INFINITY);
            }
        }
        mn_sampler_free(s);
    }
}

static void test_n_vocab_edges(void **state) {
    (void)state;
    mn_sampler_params ps[3] = {mn_sampler_default_params(), neutral(), mn_sampler_default_params()};
    ps[2].temperature = 0.0f;
    for (int k = 0; k < 3; k++) {
        ps[k].repeat_penalty = 1.5f;
        mn_sampler *s = make(&ps[k], 1);
        for (int i = 0; i < 20; i++) {
            assert_int_equal(mn_sampler_sample(s, (float[]){(float)i - 10.0f}), 0);
            mn_sampler_accept(s, 0);
        }
        assert_int_equal(mn_sampler_sample(s, (float[]){-INFINITY}), 0);
        assert_int_equal(mn_sampler_sample(s, (float[]){NAN}), 0);
        assert_int_equal(mn_sampler_sample(s, (float[]){INFINITY}), 0);
        mn_sampler_free(s);
    }
    /* the largest vocabulary is accepted (only greedy, to keep the test small) */
    mn_sampler_params p = mn_sampler_default_params();
    p.temperature = 0.0f;
    mn_sampler *s = make(&p, MN_SAMPLER_VOCAB_MAX);
    float *big = calloc(MN_SAMPLER_VOCAB_MAX, sizeof *big);
    assert_non_null(big);
    big[MN_SAMPLER_VOCAB_MAX - 1] = 1.0f;
    assert_int_equal(mn_sampler_sample(s, big), MN_SAMPLER_VOCAB_MAX - 1);
    free(big);
    mn_sampler_free(s);
}

/* ---------------------------------------------------------------- accept ------------------- */

static void test_accept(void **state) {
    (void)state;
    mn_sampler_params p = neutral();
    p.temperature = 0.0f;
    p.presence_penalty = 2.0f;
    p.penalty_last_n = 2;
    mn_sampler *s = make(&p, 2);
    const float l[] = {1.0f, 0.5f};
    assert_int_equal(mn_sampler_sample(s, l), 0);
    const int32_t bad[] = {-1, 2, INT32_MAX, INT32_MIN};
    for (int i = 0; i < 4; i++) mn_sampler_accept(s, bad[i]);
    assert_int_equal(mn_sampler_sample(s, l), 0); /* nothing recorded */
    mn_sampler_accept(s, 0);
    assert_int_equal(mn_sampler_sample(s, l), 1); /* 1 - 2 < 0.5 */
    mn_sampler_accept(s, 1);
    assert_int_equal(mn_sampler_sample(s, l), 0); /* both seen: 1 - 2 > 0.5 - 2 */
    mn_sampler_accept(s, 1);                      /* window [1, 1]: 0 left the window */
    assert_int_equal(mn_sampler_sample(s, l), 0);
    mn_sampler_accept(s, 0); /* window [1, 0] */
    mn_sampler_accept(s, 0); /* window [0, 0] */
    assert_int_equal(mn_sampler_sample(s, l), 1);
    mn_sampler_reset(s);
    assert_int_equal(mn_sampler_sample(s, l), 0);
    mn_sampler_free(s);

    /* with the penalties off, accept keeps nothing and changes nothing */
    p.presence_penalty = 0.0f;
    s = make(&p, 2);
    for (int i = 0; i < 10; i++) mn_sampler_accept(s, 0);
    assert_int_equal(mn_sampler_sample(s, l), 0);
    mn_sampler_free(s);
}

/* ---------------------------------------------------------------- log-probabilities -------- */

static void test_logprobs(void **state) {
    (void)state;
    mn_sampler_params p = neutral();
    p.temperature = 0.0f;
    p.n_probs = 2;
    mn_sampler *s = make(&p, 4);
    mn_sample_info info;
    assert_int_equal(mn_sampler_last(s, &info), MN_ENOTFOUND);
    assert_int_equal(mn_sampler_last(s, NULL), MN_EINVAL);
    const float l[] = {2, 1, 0, 1};
    assert_int_equal(mn_sampler_sample(s, l), 0);
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    double lse = log(exp(2.0) + 2 * exp(1.0) + 1.0);
    assert_float_equal(info.logprob, 2.0 - lse, 1e-6);
    assert_int_equal(info.n_top, 2);
    assert_int_equal(info.top[0].id, 0);
    assert_float_equal(info.top[0].logprob, 2.0 - lse, 1e-6);
    assert_int_equal(info.top[1].id, 1); /* tie with id 3: lower id */
    assert_float_equal(info.top[1].logprob, 1.0 - lse, 1e-6);
    mn_sampler_reset(s);
    assert_int_equal(mn_sampler_last(s, &info), MN_ENOTFOUND);
    mn_sampler_free(s);

    /* The log-probabilities describe the logits as passed: temperature, penalties and bias do
     * not change them, even though they change the pick. */
    p = neutral();
    p.temperature = 0.25f;
    p.repeat_penalty = 3.0f;
    p.n_probs = 4;
    s = make(&p, 4);
    assert_int_equal(mn_sampler_set_logit_bias(s, (int32_t[]){2}, (float[]){-50.0f}, 1), MN_OK);
    mn_sampler_accept(s, 0);
    mn_sampler_sample(s, l);
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    assert_int_equal(info.n_top, 4);
    const int32_t order[] = {0, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(info.top[i].id, order[i]);
        assert_float_equal(info.top[i].logprob, l[order[i]] - lse, 1e-6);
    }
    assert_float_equal(info.logprob, l[info.token] - lse, 1e-6);
    mn_sampler_free(s);

    /* n_probs 1: the chosen token's log-probability and the single most likely token (the
     * OpenAI logprobs=true, top_logprobs=0 case) */
    p = neutral();
    p.n_probs = 1;
    p.seed = 3;
    s = make(&p, 4);
    for (int i = 0; i < 20; i++) {
        int32_t t = mn_sampler_sample(s, l);
        assert_int_equal(mn_sampler_last(s, &info), MN_OK);
        assert_float_equal(info.logprob, l[t] - lse, 1e-6);
        assert_int_equal(info.n_top, 1);
        assert_int_equal(info.top[0].id, 0);
    }
    mn_sampler_free(s);

    /* without n_probs nothing is recorded beyond the pick */
    p.n_probs = 0;
    s = make(&p, 4);
    mn_sampler_sample(s, l);
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    assert_int_equal(info.n_top, 0);
    assert_null(info.top);
    mn_sampler_free(s);

    /* a large vocabulary: top-k selection against a sort */
    static float big[N_MAX];
    static mn_cand ref[N_MAX];
    uint64_t x = 11;
    for (int i = 0; i < N_MAX; i++) big[i] = (float)(lcg(&x) % 50);
    p.n_probs = 20;
    s = make(&p, N_MAX);
    mn_sampler_sample(s, big);
    assert_int_equal(mn_sampler_last(s, &info), MN_OK);
    mn_cands r = fill_cands(ref, big, N_MAX);
    qsort(r.data, N_MAX, sizeof *r.data, cmp_desc);
    for (int i = 0; i < 20; i++) assert_int_equal(info.top[i].id, r.data[i].id);
    mn_sampler_free(s);
}

/* ---------------------------------------------------------------- logit bias and hook ------ */

static void test_logit_bias(void **state) {
    (void)state;
    mn_sampler_params p = neutral();
    p.temperature = 0.0f;
    mn_sampler *s = make(&p, 3);
    const float l[] = {1, 0, 0};
    assert_int_equal(mn_sampler_sample(s, l), 0);
    assert_int_equal(mn_sampler_set_logit_bias(s, (int32_t[]){2}, (float[]){5.0f}, 1), MN_OK);
    assert_int_equal(mn_sampler_sample(s, l), 2);

    /* rejected biases leave the previous one in place */
    const struct {
        int32_t id;
        float bias;
        const char *msg;
    } bad[] = {{-1, 1.0f, "-1"}, {3, 1.0f, "3"}, {0, INFINITY, "inf"}, {0, -INFINITY, "-inf"},
               {0, NAN, "nan"},  {0, 100.5f, "100.5"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mn_sampler_set_logit_bias(s, &bad[i].id, &bad[i].bias, 1), MN_EINVAL);
        const char *m = mn_sampler_errmsg(s);
        if (!strstr(m, "logit_bias") || !strstr(m, bad[i].msg)) fail_msg("message: %s", m);
        assert_int_equal(mn_sampler_sample(s, l), 2);
    }
    int32_t ids[4] = {0, 1, 2, 0};
    float b[4] = {0, 0, 0, 0};
    assert_int_equal(mn_sampler_set_logit_bias(s, ids, b, 4), MN_EINVAL); /* > n_vocab */
    assert_int_equal(mn_sampler_set_logit_bias(s, ids, b, -1), MN_EINVAL);
    assert_int_equal(mn_sampler_set_logit_bias(s, NULL, b, 1), MN_EINVAL);
    assert_int_equal(mn_sampler_set_logit_bias(NULL, ids, b, 1), MN_EINVAL);
    /* repeated ids add up: 0.6 + 0.6 > 1 */
    assert_int_equal(mn_sampler_set_logit_bias(s, (int32_t[]){1, 1}, (float[]){0.6f, 0.6f}, 2), MN_OK);
    assert_string_equal(mn_sampler_errmsg(s), "");
    assert_int_equal(mn_sampler_sample(s, l), 1);
    /* the edges: -100 on every token still leaves them possible */
    assert_int_equal(mn_sampler_set_logit_bias(s, (int32_t[]){0, 1, 2}, (float[]){-100, -100, 100}, 3),
                     MN_OK);
    assert_int_equal(mn_sampler_sample(s, l), 2);
    assert_int_equal(mn_sampler_set_logit_bias(s, NULL, NULL, 0), MN_OK); /* clears */
    assert_int_equal(mn_sampler_sample(s, l), 0);
    mn_sampler_free(s);
}

typedef struct hook_state {
    int calls;
    int mode; /* 0: forbid even ids, 1: NaN everywhere, 2: forbid all */
} hook_state;

static void hook(void *user, float *logits, int32_t n_vocab) {
    hook_state *h = user;
    h->calls++;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (h->mode == 0 && i % 2 == 0) logits[i] = -INFINITY;
        if (h->mode == 1) logits[i] = NAN;
        if (h->mode == 2) logits[i] = -INFINITY;
    }
}

static void test_logit_hook(void **state) {
    (void)state;
    mn_sampler_params p = neutral();
    mn_sampler *s = make(&p, 6);
    hook_state h = {0, 0};
    mn_sampler_set_logit_hook(s, hook, &h);
    float l[6] = {5, 0, 5, 0, 5, 0};
    float copy[6];
    memcpy(copy, l, sizeof l);
    for (int i = 0; i < 200; i++) assert_int_equal(mn_sampler_sample(s, l) % 2, 1);
    assert_int_equal(h.calls, 200);
    assert_memory_equal(l, copy, sizeof l); /* the caller's logits are untouched */

    /* every token masked (BAD_INPUTS row 25): a valid id and n_possible 0, no NaN */
    mn_sample_info info;
    for (h.mode = 1; h.mode <= 2; h.mode++) {
        assert_int_equal(mn_sampler_sample(s, l), 0);
        assert_int_equal(mn_sampler_last(s, &info), MN_OK);
        assert_int_equal(info.n_possible, 0);
    }
    mn_sampler_set_logit_hook(s, NULL, &h);
    int even = 0;
    for (int i = 0; i < 200; i++) even += mn_sampler_sample(s, l) % 2 == 0;
    assert_true(even > 150); /* p(even) = 3e^5 / (3e^5 + 3) */
    assert_int_equal(h.calls, 202);
    mn_sampler_free(s);
}

/* ---------------------------------------------------------------- whole chain vs naive ----- */

/* The chain written the slow obvious way: full sorts, softmax after every step. Returns the
 * probability the chain gives to token `tok` (0 when it did not survive). */
static double naive_p(const mn_sampler_params *p, const float *logits, int32_t n, const int32_t *hist,
                      int n_hist, int32_t tok) {
    static mn_cand c[N_MAX];
    for (int32_t i = 0; i < n; i++) c[i] = (mn_cand){i, isnan(logits[i]) ? -INFINITY : logits[i], 0};
    int from = n_hist > p->penalty_last_n ? n_hist - p->penalty_last_n : 0;
    for (int32_t i = 0; i < n; i++) {
        int cnt = 0;
        for (int j = from; j < n_hist; j++) cnt += hist[j] == i;
        if (cnt == 0) continue;
        float l = c[i].logit;
        l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        c[i].logit = l - (float)cnt * p->frequency_penalty - p->presence_penalty;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_desc);
    int32_t m = 0;
    while (m < n && c[m].logit != -INFINITY) m++;
    if (p->top_k > 0 && p->top_k < m) m = p->top_k;
    double sum = 0, cum = 0;
    for (int32_t i = 0; i < m; i++) sum += exp((double)c[i].logit - c[0].logit);
    if (p->top_p < 1.0f) {
        for (int32_t i = 0; i < m; i++) {
            cum += exp((double)c[i].logit - c[0].logit) / sum;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    int32_t k = 0;
    for (int32_t i = 0; i < m; i++)
        if (exp((double)c[i].logit - c[0].logit) >= p->min_p) c[k++] = c[i];
    m = k;
    sum = 0;
    for (int32_t i = 0; i < m; i++) sum += exp(((double)c[i].logit - c[0].logit) / p->temperature);
    for (int32_t i = 0; i < m; i++)
        if (c[i].id == tok) return exp(((double)c[i].logit - c[0].logit) / p->temperature) / sum;
    return 0.0;
}

static void test_chain_matches_naive(void **state) {
    (void)state;
    static float logits[N_MAX];
    static int32_t hist[200];
    uint64_t x = 2024;
    for (int iter = 0; iter < 300; iter++) {
        int32_t n = 1 + (int32_t)(lcg(&x) % (iter < 250 ? 64 : N_MAX));
        mn_sampler_params p = mn_sampler_default_params();
        p.seed = iter;
        p.temperature = 0.2f + (float)(lcg(&x) % 20) / 10.0f;
        p.top_k = (int32_t)(lcg(&x) % 4 == 0 ? 0 : lcg(&x) % (uint32_t)(n + 5));
        p.top_p = lcg(&x) % 3 == 0 ? 1.0f : 0.05f + (float)(lcg(&x) % 95) / 100.0f;
        p.min_p = lcg(&x) % 3 == 0 ? 0.0f : (float)(lcg(&x) % 30) / 100.0f;
        p.repeat_penalty = lcg(&x) % 2 ? 1.0f : 0.5f + (float)(lcg(&x) % 20) / 10.0f;
        p.frequency_penalty = (float)(lcg(&x) % 9) / 4.0f - 1.0f;
        p.presence_penalty = (float)(lcg(&x) % 9) / 4.0f - 1.0f;
        p.penalty_last_n = (int32_t)(lcg(&x) % 20);
        for (int32_t i = 0; i < n; i++) {
            uint32_t r = lcg(&x) % 50;
            logits[i] = r == 0 ? NAN : r == 1 ? -INFINITY : rand_logit(&x);
        }
        mn_sampler *s = make(&p, n);
        int n_hist = (int)(lcg(&x) % 200);
        for (int j = 0; j < n_hist; j++) {
            hist[j] = (int32_t)(lcg(&x) % (uint32_t)(n + 2)) - 1; /* includes -1 and n: ignored */
            mn_sampler_accept(s, hist[j]);
        }
        /* the naive reference sees only the valid ids, as the sampler does */
        int v = 0;
        for (int j = 0; j < n_hist; j++)
            if (hist[j] >= 0 && hist[j] < n) hist[v++] = hist[j];
        int32_t t = mn_sampler_sample(s, logits);
        mn_sample_info info;
        assert_int_equal(mn_sampler_last(s, &info), MN_OK);
        assert_in_range(t, 0, n - 1);
        double want = naive_p(&p, logits, n, hist, v, t);
        if (info.n_possible == 0) {
            assert_int_equal(t, 0);
        } else if (fabs(want - info.p) > 1e-4 + 1e-4 * want) {
            fail_msg("iter %d: token %d p %g, naive %g", iter, t, (double)info.p, want);
        }
        mn_sampler_free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference_vectors),
        cmocka_unit_test(test_top_k_hand),
        cmocka_unit_test(test_top_k_matches_sort),
        cmocka_unit_test(test_top_p_boundaries),
        cmocka_unit_test(test_top_p_matches_reference),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_softmax_infinities),
        cmocka_unit_test(test_penalties_hand),
        cmocka_unit_test(test_history_ring),
        cmocka_unit_test(test_chain_composition),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_nan_inf_logits),
        cmocka_unit_test(test_n_vocab_edges),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_logit_hook),
        cmocka_unit_test(test_chain_matches_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
