/*
 * test_server_textout.c: UTF-8 sanitizing and the stop-sequence / partial-character holdback
 * (src/server/textout.h), BAD_INPUTS rows 16 and 20, and the metrics text format.
 * The holdback is checked against a reference: for random token splits of a random byte stream,
 * the concatenated released text must equal sanitize(stream cut at the first stop occurrence),
 * whatever the split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics.h"
#include "server/textout.h"

static void sanitize_eq(const char *in, size_t n, const char *want) {
    srv_buf b = {0};
    assert_int_equal(srv_utf8_sanitize(in, n, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    srv_buf_free(&b);
}

#define R "\xEF\xBF\xBD"

static void test_sanitize(void **state) {
    (void)state;
    sanitize_eq("abc", 3, "abc");
    sanitize_eq("\xC3\xA9", 2, "\xC3\xA9");                 /* é */
    sanitize_eq("\xE2\x82\xAC", 3, "\xE2\x82\xAC");         /* € */
    sanitize_eq("\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80"); /* 😀 */
    sanitize_eq("\x80", 1, R);                              /* stray continuation */
    sanitize_eq("\xC0\x80", 2, R R);                        /* overlong NUL */
    sanitize_eq("\xED\xA0\x80", 3, R R R);                  /* surrogate (CESU) */
    sanitize_eq("\xF4\x90\x80\x80", 4, R R R R);            /* > U+10FFFF */
    sanitize_eq("\xE2\x82", 2, R);                          /* truncated: one maximal subpart */
    sanitize_eq("a\xE2\x82z", 4, "a" R "z");
    sanitize_eq("\xFF\xFE", 2, R R);
    sanitize_eq("a\0b", 3, "a" R "b"); /* NUL cannot travel through cJSON */
}

static void test_incomplete_tail(void **state) {
    (void)state;
    assert_int_equal(srv_utf8_incomplete_tail("ab", 2), 0);
    assert_int_equal(srv_utf8_incomplete_tail("a\xE2", 2), 1);
    assert_int_equal(srv_utf8_incomplete_tail("a\xE2\x82", 3), 2);
    assert_int_equal(srv_utf8_incomplete_tail("a\xE2\x82\xAC", 4), 0);
    assert_int_equal(srv_utf8_incomplete_tail("\xF0\x9F\x98", 3), 3);
    assert_int_equal(srv_utf8_incomplete_tail("\x80\x80", 2), 0); /* garbage, not a prefix */
    assert_int_equal(srv_utf8_incomplete_tail("\xE0\x80", 2), 0); /* overlong start: invalid */
}

/* Feeds pieces; returns the released text (caller frees) and whether a stop was hit. */
static char *run_pieces(const char *const *stop, const int32_t *stop_len, int32_t n_stop, const char *const *pieces,
                        const size_t *lens, int n, int *stopped) {
    srv_textout t;
    srv_textout_init(&t, stop, stop_len, n_stop);
    srv_buf out = {0};
    *stopped = 0;
    for (int i = 0; i < n && !*stopped; i++) {
        int r = srv_textout_push(&t, pieces[i], lens[i], &out);
        assert_true(r >= 0);
        *stopped = r;
    }
    if (!*stopped) assert_int_equal(srv_textout_finish(&t, &out), 0);
    srv_buf_append(&out, "", 0);
    return out.p;
}

static void test_holdback_utf8(void **state) {
    (void)state;
    /* "€" split over three byte tokens: nothing released until complete */
    srv_textout t;
    srv_textout_init(&t, NULL, NULL, 0);
    srv_buf out = {0};
    assert_int_equal(srv_textout_push(&t, "a\xE2", 2, &out), 0);
    assert_int_equal(out.len, 1);
    assert_int_equal(srv_textout_push(&t, "\x82", 1, &out), 0);
    assert_int_equal(out.len, 1);
    assert_int_equal(srv_textout_push(&t, "\xAC", 1, &out), 0);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.p, "a\xE2\x82\xAC", 4);
    /* generation ends mid-character: U+FFFD, never a partial byte */
    assert_int_equal(srv_textout_push(&t, "\xF0\x9F", 2, &out), 0);
    assert_int_equal(out.len, 4);
    assert_int_equal(srv_textout_finish(&t, &out), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.p + 4, R, 3);
    srv_buf_free(&out);
}

static void test_holdback_stop(void **state) {
    (void)state;
    const char *stop[] = {"\n\nUser:", "END"};
    int32_t sl[] = {7, 3};
    /* stop split over tokens, text before it in the same token */
    const char *p1[] = {"Hello", " wor", "ld\n", "\nUs", "er: more"};
    size_t l1[] = {5, 4, 3, 3, 8};
    int stopped;
    char *s = run_pieces(stop, sl, 2, p1, l1, 5, &stopped);
    assert_true(stopped);
    assert_string_equal(s, "Hello world");
    free(s);
    /* a false start is released once it cannot match */
    const char *p2[] = {"a\n", "\nb", "EN", "x"};
    size_t l2[] = {2, 2, 2, 1};
    s = run_pieces(stop, sl, 2, p2, l2, 4, &stopped);
    assert_false(stopped);
    assert_string_equal(s, "a\n\nbENx");
    free(s);
    /* the stop as the very first token: empty output */
    const char *p3[] = {"END", "more"};
    size_t l3[] = {3, 4};
    s = run_pieces(stop, sl, 2, p3, l3, 2, &stopped);
    assert_true(stopped);
    assert_string_equal(s, "");
    free(s);
    /* earliest occurrence wins when two stops are in one token */
    const char *p4[] = {"xxEND\n\nUser:"};
    size_t l4[] = {12};
    s = run_pieces(stop, sl, 2, p4, l4, 1, &stopped);
    assert_true(stopped);
    assert_string_equal(s, "xx");
    free(s);
}

/* Reference property over random streams and random splits. */
static void test_holdback_random(void **state) {
    (void)state;
    const char alphabet[] = "ab\n\xE2\x82\xAC\xC3";
    const char *stop[] = {"ab\n", "\xE2\x82\xAC" "b", "bbbb"};
    int32_t sl[] = {3, 4, 4};
    uint64_t rng = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        char stream[64];
        size_t n = 0;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (size_t)(rng >> 58); /* 0..63 */
        for (size_t i = 0; i < len; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            stream[n++] = alphabet[(rng >> 33) % (sizeof alphabet - 1)];
        }
        int n_stop = iter % 4; /* 0..3 stops */
        /* reference: cut at the earliest stop occurrence */
        size_t cut = n;
        int ref_stopped = 0;
        for (size_t k = 0; k < n && !ref_stopped; k++)
            for (int s = 0; s < n_stop; s++)
                if (k + (size_t)sl[s] <= n && !memcmp(stream + k, stop[s], (size_t)sl[s])) {
                    cut = k;
                    ref_stopped = 1;
                    break;
                }
        srv_buf ref = {0};
        srv_utf8_sanitize(stream, cut, &ref);
        /* random split into pieces */
        const char *pieces[64];
        size_t lens[64];
        int np = 0;
        size_t at = 0;
        while (at < n) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t take = 1 + (rng >> 61);
            if (take > n - at) take = n - at;
            pieces[np] = stream + at;
            lens[np++] = take;
            at += take;
        }
        int stopped;
        char *got = run_pieces(stop, sl, n_stop, pieces, lens, np, &stopped);
        if (stopped != ref_stopped || strlen(got) != ref.len || memcmp(got, ref.p ? ref.p : "", ref.len))
            fail_msg("iteration %d: mismatch (stopped %d vs %d)", iter, stopped, ref_stopped);
        free(got);
        srv_buf_free(&ref);
    }
}

static void test_long_token(void **state) {
    (void)state;
    /* a piece longer than the pending buffer, with a stop near its end */
    size_t n = 5000;
    char *big = malloc(n);
    memset(big, 'x', n);
    memcpy(big + 4000, "STOP", 4);
    const char *stop[] = {"STOP"};
    int32_t sl[] = {4};
    const char *p[] = {big};
    size_t l[] = {n};
    int stopped;
    char *s = run_pieces(stop, sl, 1, p, l, 1, &stopped);
    assert_true(stopped);
    assert_int_equal(strlen(s), 4000);
    free(s);
    free(big);
}

static void test_metrics_render(void **state) {
    (void)state;
    srv_metrics *m = srv_metrics_create();
    assert_non_null(m);
    srv_metrics_request(m, "chat", 200);
    srv_metrics_request(m, "chat", 200);
    srv_metrics_request(m, "chat", 400);
    srv_metrics_add(m, SRV_C_GENERATED_TOKENS, 42);
    srv_metrics_gauge(m, SRV_G_QUEUE, 3);
    srv_metrics_observe(m, SRV_HIST_TTFT, 0.02);
    srv_metrics_observe(m, SRV_HIST_TTFT, 100);
    srv_buf b = {0};
    assert_int_equal(srv_metrics_render(m, &b), 0);
    assert_non_null(strstr(b.p, "minnow_requests_total{endpoint=\"chat\",status=\"200\"} 2\n"));
    assert_non_null(strstr(b.p, "minnow_requests_total{endpoint=\"chat\",status=\"400\"} 1\n"));
    assert_non_null(strstr(b.p, "minnow_generated_tokens_total 42\n"));
    assert_non_null(strstr(b.p, "minnow_queue_depth 3\n"));
    assert_non_null(strstr(b.p, "minnow_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(b.p, "minnow_time_to_first_token_seconds_bucket{le=\"60\"} 1\n"));
    assert_non_null(strstr(b.p, "minnow_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.p, "minnow_time_to_first_token_seconds_count 2\n"));
    assert_non_null(strstr(b.p, "# TYPE minnow_batch_tokens histogram\n"));
    /* many distinct pairs cannot grow the table */
    for (int i = 0; i < 1000; i++) srv_metrics_request(m, "chat", 100 + i);
    srv_buf_free(&b);
    assert_int_equal(srv_metrics_render(m, &b), 0);
    assert_true(b.len < 64 * 1024);
    srv_buf_free(&b);
    srv_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),        cmocka_unit_test(test_incomplete_tail),
        cmocka_unit_test(test_holdback_utf8),   cmocka_unit_test(test_holdback_stop),
        cmocka_unit_test(test_holdback_random), cmocka_unit_test(test_long_token),
        cmocka_unit_test(test_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
