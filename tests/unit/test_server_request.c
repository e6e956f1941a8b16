/*
 * test_server_request.c: the server's request parser and validator (src/server/request.h) on good
 * and bad bodies: BAD_INPUTS rows 16-25 and 31-32 as far as they are decided before the model
 * runs, plus the header checks (Content-Type, constant-time bearer compare).
 * Each bad case asserts the HTTP status AND the parameter named in the error, so a validator that
 * rejected for the wrong reason would fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/request.h"
#include "server/textout.h"

static srv_limits lim(void) { return srv_limits_default(512, 256, 4); }

static int parse(srv_kind k, const char *body, srv_request *r, srv_error *e) {
    srv_limits l = lim();
    memset(e, 0, sizeof *e);
    return srv_request_parse(k, body, strlen(body), &l, r, e);
}

/* Expects rejection with status and param. */
static void expect_bad(srv_kind k, const char *body, int status, const char *param) {
    srv_request r;
    srv_error e;
    int st = parse(k, body, &r, &e);
    if (st != status || (param && strcmp(e.param, param) != 0))
        fail_msg("body %s: got status %d param '%s' (%s), want %d '%s'", body, st, e.param, e.message, status,
                 param ? param : "(any)");
    assert_int_equal(e.http_status, status);
    assert_non_null(e.type);
    assert_true(strlen(e.message) > 0);
}

static void test_chat_ok(void **state) {
    (void)state;
    srv_request r;
    srv_error e;
    const char *b = "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi \"},{\"type\":\"text\",\"text\":\"there\"}]}],"
                    "\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"stop\":[\"\\n\",\"END\"],\"seed\":-3,"
                    "\"n\":2,\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"logprobs\":true,\"top_logprobs\":3,"
                    "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"top_k\":5000,\"min_p\":0.1,"
                    "\"repeat_penalty\":1.1,\"logit_bias\":{\"5\":-100,\"7\":2.5},\"unknown_field\":[1,2]}";
    assert_int_equal(parse(SRV_CHAT, b, &r, &e), 0);
    assert_int_equal(r.n_messages, 2);
    assert_int_equal(r.messages[0].role, SRV_ROLE_SYSTEM);
    assert_string_equal(r.messages[1].content, "hi there");
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.sampling.temperature == 0.5f);
    assert_true(r.sampling.top_p == 0.9f);
    assert_int_equal(r.n_stop, 2);
    assert_string_equal(r.stop[1], "END");
    assert_int_equal(r.stop_len[0], 1);
    assert_true(r.has_seed);
    assert_true(r.sampling.seed == (uint64_t)(int64_t)-3);
    assert_int_equal(r.n, 2);
    assert_true(r.logprobs);
    assert_int_equal(r.top_logprobs, 3);
    assert_int_equal(r.sampling.n_probs, 3);
    assert_true(r.stream && r.include_usage);
    assert_int_equal(r.sampling.top_k, 512); /* clamped to n_vocab, documented */
    assert_int_equal(r.n_bias, 2);
    assert_int_equal(r.bias_ids[1], 7);
    srv_request_free(&r);
}

static void test_defaults(void **state) {
    (void)state;
    srv_request r;
    srv_error e;
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":\"once\"}", &r, &e), 0);
    assert_int_equal(r.max_tokens, -1);
    assert_int_equal(r.n, 1);
    assert_true(r.sampling.temperature == 1.0f);
    assert_true(r.sampling.top_p == 1.0f);
    assert_int_equal(r.sampling.top_k, 0);
    assert_false(r.has_seed);
    assert_false(r.stream);
    assert_string_equal(r.prompt, "once");
    srv_request_free(&r);
    /* top_p 0 means greedy */
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":\"a\",\"top_p\":0}", &r, &e), 0);
    assert_true(r.sampling.temperature == 0.0f);
    srv_request_free(&r);
}

static void test_completion_prompt_forms(void **state) {
    (void)state;
    srv_request r;
    srv_error e;
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":[1,2,511]}", &r, &e), 0);
    assert_int_equal(r.n_prompt_ids, 3);
    assert_int_equal(r.prompt_ids[2], 511);
    srv_request_free(&r);
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":[\"text\"]}", &r, &e), 0);
    assert_string_equal(r.prompt, "text");
    srv_request_free(&r);
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":[[3,4]],\"logprobs\":2}", &r, &e), 0);
    assert_int_equal(r.n_prompt_ids, 2);
    assert_true(r.logprobs);
    assert_int_equal(r.top_logprobs, 2);
    srv_request_free(&r);
}

/* BAD_INPUTS 31: malformed JSON, non-object body, wrong types, missing fields, unknown role. */
static void test_bad_json_and_types(void **state) {
    (void)state;
    expect_bad(SRV_CHAT, "", 400, "");
    expect_bad(SRV_CHAT, "{", 400, "");
    expect_bad(SRV_CHAT, "{\"messages\":[]", 400, "");
    expect_bad(SRV_CHAT, "[1,2]", 400, "");
    expect_bad(SRV_CHAT, "\"str\"", 400, "");
    expect_bad(SRV_CHAT, "{} trailing", 400, "");
    expect_bad(SRV_CHAT, "{\"messages\":5}", 400, "messages");
    expect_bad(SRV_CHAT, "{}", 400, "messages");
    expect_bad(SRV_CHAT, "{\"messages\":[]}", 400, "messages");
    expect_bad(SRV_CHAT, "{\"messages\":[5]}", 400, "messages[0]");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", 400, "messages[0].role");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "messages[0].role");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":7,\"content\":\"x\"}]}", 400, "messages[0].role");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", 400, "messages[0].content");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":3}]}", 400, "messages[0].content");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
               "messages[0].content[0]");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":1}", 400, "model");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", 400, "stream");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":1}", 400, "logprobs");
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":3}", 400,
               "stream_options");
    expect_bad(SRV_COMPLETION, "{}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":5}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[1,\"b\"]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[1.5]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"echo\":true}", 400, "echo");
    expect_bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"best_of\":3}", 400, "best_of");
}

/* BAD_INPUTS 21-24: sampling parameters out of range, NaN/Inf, wrong types. */
static void test_bad_sampling(void **state) {
    (void)state;
    static const struct {
        const char *field, *value;
    } cases[] = {
        {"temperature", "-0.1"}, {"temperature", "2.5"},  {"temperature", "1e999"}, {"temperature", "\"hot\""},
        {"top_p", "-1"},         {"top_p", "1.5"},        {"min_p", "2"},           {"min_p", "-0.5"},
        {"top_k", "-1"},         {"top_k", "1.5"},        {"top_k", "1e20"},        {"repeat_penalty", "0"},
        {"repeat_penalty", "-1"},{"presence_penalty", "3"},{"frequency_penalty", "-2.5"},
        {"max_tokens", "0"},     {"max_tokens", "-1"},    {"max_tokens", "2147483648"}, {"max_tokens", "1.5"},
        {"max_tokens", "\"10\""},{"max_completion_tokens", "0"}, {"n", "0"}, {"n", "5"}, {"n", "1000000"},
        {"seed", "1.5"},         {"seed", "1e300"},       {"seed", "\"s\""},        {"stop", "5"},
        {"stop", "[\"\"]"},      {"stop", "[1]"},         {"stop", "\"\""},         {"logit_bias", "[]"},
        {"logit_bias", "{\"-1\":1}"}, {"logit_bias", "{\"512\":1}"}, {"logit_bias", "{\"x\":1}"},
        {"logit_bias", "{\"3\":101}"}, {"logit_bias", "{\"3\":\"a\"}"}, {"top_logprobs", "21"},
        {"top_logprobs", "-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"%s\":%s}",
                 cases[i].field, cases[i].value);
        expect_bad(SRV_CHAT, body, 400, cases[i].field);
    }
    /* completions: logprobs > cap */
    expect_bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":21}", 400, "logprobs");
    expect_bad(SRV_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":-1}", 400, "logprobs");
    /* top_logprobs without logprobs */
    expect_bad(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", 400, "top_logprobs");
}

/* BAD_INPUTS 19 and 24: out-of-vocabulary ids, too many / too long stop strings. */
static void test_bad_ids_and_stops(void **state) {
    (void)state;
    expect_bad(SRV_COMPLETION, "{\"prompt\":[-1]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[512]}", 400, "prompt");
    expect_bad(SRV_COMPLETION, "{\"prompt\":[2147483648]}", 400, "prompt");
    srv_buf b = {0};
    srv_buf_append(&b, "{\"prompt\":\"a\",\"stop\":[", 22);
    for (int i = 0; i < 17; i++) srv_buf_printf(&b, "%s\"s%d\"", i ? "," : "", i);
    srv_buf_append(&b, "]}", 2);
    expect_bad(SRV_COMPLETION, b.p, 400, "stop");
    b.len = 0;
    srv_buf_append(&b, "{\"prompt\":\"a\",\"stop\":\"", 22);
    for (int i = 0; i < 300; i++) srv_buf_append(&b, "x", 1);
    srv_buf_append(&b, "\"}", 2);
    expect_bad(SRV_COMPLETION, b.p, 400, "stop");
    /* a prompt of more tokens than the context */
    b.len = 0;
    srv_buf_append(&b, "{\"prompt\":[", 11);
    for (int i = 0; i < 300; i++) srv_buf_printf(&b, "%s1", i ? "," : "");
    srv_buf_append(&b, "]}", 2);
    srv_request r;
    srv_error e;
    assert_int_equal(parse(SRV_COMPLETION, b.p, &r, &e), 400);
    assert_string_equal(e.code, "context_length_exceeded");
    srv_buf_free(&b);
}

/* BAD_INPUTS 17 and 32: huge prompt text, deep nesting, oversized body, NUL escapes. */
static void test_sizes_and_depth(void **state) {
    (void)state;
    srv_limits l = lim();
    srv_request r;
    srv_error e;
    size_t n = 1000000;
    char *deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = '\0';
    assert_int_equal(srv_request_parse(SRV_CHAT, deep, n, &l, &r, &e), 400);
    assert_non_null(strstr(e.message, "nested"));
    /* depth exactly at the limit is fine structurally (then fails as a non-object) */
    char ok[200] = "{\"prompt\":\"a\",\"x\":";
    for (int i = 0; i < 62; i++) strcat(ok, "[");
    for (int i = 0; i < 62; i++) strcat(ok, "]");
    strcat(ok, "}");
    assert_int_equal(srv_request_parse(SRV_COMPLETION, ok, strlen(ok), &l, &r, &e), 0);
    srv_request_free(&r);
    /* brackets inside strings do not count */
    srv_buf sb = {0};
    srv_buf_append(&sb, "{\"prompt\":\"", 11);
    for (int i = 0; i < 2000; i++) srv_buf_append(&sb, "[", 1);
    srv_buf_append(&sb, "\"}", 2);
    assert_int_equal(srv_request_parse(SRV_COMPLETION, sb.p, sb.len, &l, &r, &e), 0);
    srv_request_free(&r);
    srv_buf_free(&sb);
    /* prompt text over the byte cap (n_ctx 256 x 16 = 4096 bytes) */
    memcpy(deep, "{\"prompt\":\"", 11);
    memset(deep + 11, 'a', 5000);
    memcpy(deep + 5011, "\"}", 3);
    assert_int_equal(srv_request_parse(SRV_COMPLETION, deep, 5013, &l, &r, &e), 400);
    assert_string_equal(e.param, "prompt");
    assert_string_equal(e.code, "context_length_exceeded");
    /* body over the cap: 413 before parsing */
    l.body_bytes_max = 1000;
    assert_int_equal(srv_request_parse(SRV_COMPLETION, deep, 5013, &l, &r, &e), 413);
    free(deep);
    /* \u0000 inside a string; an escaped quote does not end the string for the scan */
    expect_bad(SRV_COMPLETION, "{\"prompt\":\"a\\u0000b\"}", 400, "");
    srv_request r2;
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":\"a\\\"[[[[\"}", &r2, &e), 0);
    assert_string_equal(r2.prompt, "a\"[[[[");
    srv_request_free(&r2);
    /* invalid UTF-8 bytes and lone surrogates: deterministic (accepted as bytes, or 400) */
    const char raw[] = "{\"prompt\":\"\xff\xfe\xc0\x80\"}";
    int s1 = srv_request_parse(SRV_COMPLETION, raw, sizeof raw - 1, &l, &r2, &e);
    if (s1 == 0) srv_request_free(&r2);
    int s2 = srv_request_parse(SRV_COMPLETION, raw, sizeof raw - 1, &l, &r2, &e);
    if (s2 == 0) srv_request_free(&r2);
    assert_int_equal(s1, s2);
    l = lim();
    int s3 = parse(SRV_COMPLETION, "{\"prompt\":\"\\ud800x\"}", &r2, &e);
    if (s3 == 0) srv_request_free(&r2);
    else assert_int_equal(s3, 400);
}

static void test_context_check(void **state) {
    (void)state;
    srv_request r;
    srv_error e;
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":\"a\",\"max_tokens\":100}", &r, &e), 0);
    assert_int_equal(srv_check_context(&r, 100, 256, &e), 0);
    assert_int_equal(srv_check_context(&r, 157, 256, &e), 400);
    assert_string_equal(e.code, "context_length_exceeded");
    assert_string_equal(e.param, "max_tokens");
    assert_int_equal(srv_check_context(&r, 0, 256, &e), 400);
    assert_int_equal(srv_check_context(&r, 256, 256, &e), 400);
    srv_request_free(&r);
    assert_int_equal(parse(SRV_COMPLETION, "{\"prompt\":\"a\"}", &r, &e), 0);
    assert_int_equal(srv_check_context(&r, 200, 256, &e), 0);
    assert_int_equal(r.max_tokens, 56);
    srv_request_free(&r);
}

static void test_tokenize_bodies(void **state) {
    (void)state;
    srv_limits l = lim();
    srv_tokenize_req t;
    srv_detokenize_req d;
    srv_error e;
    const char *b1 = "{\"content\":\"hello\",\"add_special\":false}";
    assert_int_equal(srv_tokenize_parse(b1, strlen(b1), &l, &t, &e), 0);
    assert_string_equal(t.content, "hello");
    assert_false(t.add_special);
    srv_tokenize_free(&t);
    const char *b2 = "{\"content\":5}";
    assert_int_equal(srv_tokenize_parse(b2, strlen(b2), &l, &t, &e), 400);
    assert_string_equal(e.param, "content");
    const char *b3 = "{\"tokens\":[1,2,3]}";
    assert_int_equal(srv_detokenize_parse(b3, strlen(b3), &l, &d, &e), 0);
    assert_int_equal(d.n_tokens, 3);
    srv_detokenize_free(&d);
    const char *b4 = "{\"tokens\":[1,99999]}";
    assert_int_equal(srv_detokenize_parse(b4, strlen(b4), &l, &d, &e), 400);
    assert_string_equal(e.param, "tokens");
    const char *b5 = "{\"tokens\":\"1\"}";
    assert_int_equal(srv_detokenize_parse(b5, strlen(b5), &l, &d, &e), 400);
}

static void test_headers(void **state) {
    (void)state;
    srv_error e;
    assert_int_equal(srv_check_content_type(NULL, &e), 0);
    assert_int_equal(srv_check_content_type("application/json", &e), 0);
    assert_int_equal(srv_check_content_type("Application/JSON; charset=utf-8", &e), 0);
    assert_int_equal(srv_check_content_type("text/plain", &e), 415);
    assert_int_equal(srv_check_content_type("application/jsonx", &e), 415);
    assert_true(srv_check_bearer("Bearer sekret", "sekret"));
    assert_true(srv_check_bearer(NULL, NULL));
    assert_false(srv_check_bearer(NULL, "sekret"));
    assert_false(srv_check_bearer("Bearer sekreT", "sekret"));
    assert_false(srv_check_bearer("Bearer sekret2", "sekret"));
    assert_false(srv_check_bearer("Bearer sekre", "sekret"));
    assert_false(srv_check_bearer("bearer sekret", "sekret"));
    assert_false(srv_check_bearer("", "sekret"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_ok),           cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_completion_prompt_forms), cmocka_unit_test(test_bad_json_and_types),
        cmocka_unit_test(test_bad_sampling),      cmocka_unit_test(test_bad_ids_and_stops),
        cmocka_unit_test(test_sizes_and_depth),   cmocka_unit_test(test_context_check),
        cmocka_unit_test(test_tokenize_bodies),   cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
