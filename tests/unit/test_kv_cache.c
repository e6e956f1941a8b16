/*
 * test_kv_cache.c: the paged KV cache and its prefix cache.
 * Checks block accounting (reserve all-or-nothing, release on truncate), that K/V rows land where
 * the block table says and survive other sequences' traffic, prefix attach/reuse with refcounts,
 * LRU eviction order, copy-on-write when truncating into a shared block, and a long random
 * sequence of operations against a simple reference model of what each position must hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/kv_cache.h"

#define BS MN_KV_BLOCK
enum { LAYERS = 2, DIM = 4 };

/* the value stored for (token, position, layer, dim): K and V differ */
static float kval(int32_t tok, int32_t pos, int l, int d) { return (float)(tok * 1000 + pos) + l * 0.25f + d * 0.01f; }
static float vval(int32_t tok, int32_t pos, int l, int d) { return -kval(tok, pos, l, d); }

/* Appends n tokens to seq the way mn_context_eval does: reserve, write rows, commit. */
static mn_status append(mn_kv *kv, int32_t seq, const int32_t *toks, int32_t n) {
    mn_status s = mn_kv_reserve(kv, seq, n);
    if (s != MN_OK) return s;
    int32_t len = mn_kv_len(kv, seq);
    for (int32_t i = 0; i < n; i++)
        for (int l = 0; l < LAYERS; l++) {
            float *k = mn_kv_k(kv, seq, l, len + i), *v = mn_kv_v(kv, seq, l, len + i); /* f32 rows */
            for (int d = 0; d < DIM; d++) {
                k[d] = kval(toks[i], len + i, l, d);
                v[d] = vval(toks[i], len + i, l, d);
            }
        }
    mn_kv_commit(kv, seq, toks, n);
    return MN_OK;
}

/* Every position of seq holds the rows of toks[pos] (read through the block view too). */
static void check_seq(const mn_kv *kv, int32_t seq, const int32_t *toks) {
    int32_t len = mn_kv_len(kv, seq);
    for (int32_t p = 0; p < len; p++)
        for (int l = 0; l < LAYERS; l++) {
            const float *kb = (const float *)mn_kv_block_k(kv, seq, l, p / BS) + (size_t)(p % BS) * DIM;
            const float *vb = (const float *)mn_kv_block_v(kv, seq, l, p / BS) + (size_t)(p % BS) * DIM;
            for (int d = 0; d < DIM; d++) {
                assert_true(((const float *)mn_kv_k(kv, seq, l, p))[d] == kval(toks[p], p, l, d));
                assert_true(kb[d] == kval(toks[p], p, l, d));
                assert_true(vb[d] == vval(toks[p], p, l, d));
            }
        }
}

static void test_reserve_commit_truncate(void **state) {
    (void)state;
    mn_kv *kv = NULL;
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), 4, 2, 4 * BS, &kv, NULL), MN_OK);
    int32_t toks[4 * BS], other[4 * BS];
    for (int i = 0; i < 4 * BS; i++) {
        toks[i] = 7 + i;
        other[i] = 3000 + i;
    }
    assert_int_equal(append(kv, 0, toks, BS + 3), MN_OK); /* 2 blocks */
    mn_kv_stats st;
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 2);
    assert_int_equal(st.n_cached, 0);
    /* 3 more blocks for seq 1 do not fit: nothing changes */
    assert_int_equal(append(kv, 1, other, 2 * BS + 1), MN_EFULL);
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 2);
    assert_int_equal(mn_kv_len(kv, 1), 0);
    assert_int_equal(append(kv, 1, other, 2 * BS), MN_OK);
    check_seq(kv, 0, toks);
    check_seq(kv, 1, other);
    /* beyond max_pos */
    assert_int_equal(mn_kv_reserve(kv, 0, 4 * BS), MN_EFULL);
    /* truncate seq 0 to mid first block: its second block is released (not full: no cache) */
    assert_int_equal(mn_kv_truncate(kv, 0, 5), MN_OK);
    assert_int_equal(mn_kv_len(kv, 0), 5);
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 1);
    check_seq(kv, 0, toks);
    /* seq 1's two full blocks become cached (idle, evictable) when it is freed. (A full block
     * identical to one already indexed is not indexed twice: see test_duplicate_blocks.) */
    assert_int_equal(mn_kv_truncate(kv, 1, 0), MN_OK);
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 3);
    assert_int_equal(st.n_cached, 2);
    mn_kv_free(kv);
}

static void test_prefix_reuse_and_eviction(void **state) {
    (void)state;
    mn_kv *kv = NULL;
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), 6, 3, 8 * BS, &kv, NULL), MN_OK);
    int32_t a[3 * BS + 5], bt[3 * BS + 5];
    for (int i = 0; i < 3 * BS + 5; i++) {
        a[i] = 100 + i;
        bt[i] = i < 2 * BS ? a[i] : 900 + i; /* shares the first two blocks with a */
    }
    assert_int_equal(append(kv, 0, a, 3 * BS + 5), MN_OK);
    /* while seq 0 is alive, seq 1 may attach its blocks: at most (n-1)/BS blocks */
    assert_int_equal(mn_kv_attach_prefix(kv, 1, bt, 3 * BS + 5), 2 * BS);
    assert_int_equal(mn_kv_len(kv, 1), 2 * BS);
    check_seq(kv, 1, bt);
    assert_int_equal(append(kv, 1, bt + 2 * BS, BS + 5), MN_OK);
    check_seq(kv, 1, bt);
    check_seq(kv, 0, a); /* the shared blocks were not written */
    /* exactly 2 blocks of prompt: only 1 may be attached so the last token is evaluated */
    assert_int_equal(mn_kv_attach_prefix(kv, 2, a, 2 * BS), BS);
    assert_int_equal(mn_kv_truncate(kv, 2, 0), MN_OK);
    /* non-empty sequences never attach */
    assert_int_equal(mn_kv_attach_prefix(kv, 0, a, 3 * BS + 5), 0);
    /* mismatch in the first block: nothing */
    int32_t c[2 * BS + 1];
    memcpy(c, a, sizeof c);
    c[3] = 5;
    assert_int_equal(mn_kv_attach_prefix(kv, 2, c, 2 * BS + 1), 0);

    /* free both; then demand blocks so the LRU evicts: the most recently released full blocks
     * survive longest, and deeper blocks of a chain go before their prefix */
    assert_int_equal(mn_kv_truncate(kv, 1, 0), MN_OK);
    assert_int_equal(mn_kv_truncate(kv, 0, 0), MN_OK);
    mn_kv_stats st;
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 6);
    assert_int_equal(st.n_cached, 4); /* a's 3 full blocks + bt's third block */
    int32_t z[4 * BS];
    for (int i = 0; i < 4 * BS; i++) z[i] = 5000 + i;
    assert_int_equal(append(kv, 2, z, 4 * BS - 1), MN_OK); /* 4 blocks: 2 free + 2 evicted */
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_cached, 2);
    /* a's first two blocks were released last (seq 0 freed after seq 1, children first) */
    assert_int_equal(mn_kv_attach_prefix(kv, 0, a, 3 * BS + 5), 2 * BS);
    check_seq(kv, 0, a);
    mn_kv_free(kv);
}

static void test_duplicate_blocks(void **state) {
    (void)state;
    mn_kv *kv = NULL;
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), 4, 2, 4 * BS, &kv, NULL), MN_OK);
    int32_t t[BS + 1];
    for (int i = 0; i < BS + 1; i++) t[i] = i;
    assert_int_equal(append(kv, 0, t, BS), MN_OK);
    assert_int_equal(append(kv, 1, t, BS), MN_OK); /* same content computed twice */
    assert_int_equal(mn_kv_truncate(kv, 0, 0), MN_OK);
    assert_int_equal(mn_kv_truncate(kv, 1, 0), MN_OK);
    mn_kv_stats st;
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_cached, 1); /* one indexed copy, the other went back to the free list */
    assert_int_equal(mn_kv_attach_prefix(kv, 0, t, BS + 1), BS);
    check_seq(kv, 0, t);
    mn_kv_free(kv);
}

static void test_copy_on_write_truncate(void **state) {
    (void)state;
    mn_kv *kv = NULL;
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), 8, 2, 8 * BS, &kv, NULL), MN_OK);
    int32_t a[2 * BS + 1], b[2 * BS + 1];
    for (int i = 0; i < 2 * BS + 1; i++) a[i] = b[i] = 40 + i;
    assert_int_equal(append(kv, 0, a, 2 * BS + 1), MN_OK);
    assert_int_equal(mn_kv_attach_prefix(kv, 1, b, 2 * BS + 1), 2 * BS);
    /* truncating seq 1 into its (shared) second block copies it; then new tokens go there */
    assert_int_equal(mn_kv_truncate(kv, 1, BS + 4), MN_OK);
    for (int i = BS + 4; i < 2 * BS + 1; i++) b[i] = 7000 + i;
    assert_int_equal(append(kv, 1, b + BS + 4, BS - 3), MN_OK);
    check_seq(kv, 1, b);
    check_seq(kv, 0, a); /* untouched */
    /* a sequence attaching a's prefix again still finds the original blocks */
    assert_int_equal(mn_kv_truncate(kv, 1, 0), MN_OK);
    assert_int_equal(mn_kv_attach_prefix(kv, 1, a, 2 * BS + 1), 2 * BS);
    check_seq(kv, 1, a);
    mn_kv_free(kv);
}

/* Random operations on 4 sequences over a small pool, against a reference of the token stream
 * each sequence must hold. Catches refcount, index and copy-on-write mistakes. */
static void test_random_ops(void **state) {
    (void)state;
    enum { NSEQ = 4, MAXP = 6 * BS };
    mn_kv *kv = NULL;
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), 12, NSEQ, MAXP, &kv, NULL), MN_OK);
    int32_t ref[NSEQ][MAXP];
    srand(1234);
    int attached = 0, full = 0;
    for (int it = 0; it < 20000; it++) {
        int s = rand() % NSEQ, op = rand() % 10, len = mn_kv_len(kv, s);
        if (op < 5) { /* append 1..20 tokens from a small alphabet so prefixes repeat */
            int n = 1 + rand() % 20;
            if (len + n > MAXP) n = MAXP - len;
            if (n <= 0) continue;
            int32_t t[20];
            for (int i = 0; i < n; i++) t[i] = (len + i) % 3 == 0 ? rand() % 2 : (len + i);
            if (append(kv, s, t, n) == MN_OK) memcpy(&ref[s][len], t, n * sizeof(int32_t));
            else full++;
        } else if (op < 8) {
            int p = len ? rand() % (len + 1) : 0;
            if (mn_kv_truncate(kv, s, p) != MN_OK) full++;
        } else { /* free and re-attach a prompt built like the appends */
            mn_kv_truncate(kv, s, 0);
            int n = 1 + rand() % MAXP;
            int32_t t[MAXP];
            for (int i = 0; i < n; i++) t[i] = i % 3 == 0 ? rand() % 2 : i;
            int got = mn_kv_attach_prefix(kv, s, t, n);
            assert_true(got % BS == 0 && got < n);
            attached += got > 0;
            memcpy(ref[s], t, (size_t)got * sizeof(int32_t));
        }
        if (it % 97 == 0)
            for (int q = 0; q < NSEQ; q++) check_seq(kv, q, ref[q]);
    }
    for (int q = 0; q < NSEQ; q++) check_seq(kv, q, ref[q]);
    assert_true(attached > 50); /* the prefix cache was exercised */
    assert_true(full > 0);      /* and so was exhaustion */
    for (int q = 0; q < NSEQ; q++) mn_kv_truncate(kv, q, 0);
    mn_kv_stats st;
    mn_kv_get_stats(kv, &st);
    assert_int_equal(st.n_free, 12);
    mn_kv_free(kv);
}

static void test_bad_geometry(void **state) {
    (void)state;
    mn_kv *kv = NULL;
    mn_error err = {0};
    assert_int_equal(mn_kv_create(0, DIM * sizeof(float), 4, 1, 16, &kv, &err), MN_EINVAL);
    assert_null(kv);
    assert_int_equal(mn_kv_create(LAYERS, DIM * sizeof(float), -1, 1, 16, &kv, &err), MN_EINVAL);
    assert_int_equal(mn_kv_blocks_for_bytes(LAYERS, DIM * sizeof(float), 0), 0);
    assert_int_equal(mn_kv_blocks_for_bytes(LAYERS, DIM * sizeof(float), (uint64_t)LAYERS * BS * DIM * 8 * 3), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_commit_truncate),
        cmocka_unit_test(test_prefix_reuse_and_eviction),
        cmocka_unit_test(test_duplicate_blocks),
        cmocka_unit_test(test_copy_on_write_truncate),
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_bad_geometry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
