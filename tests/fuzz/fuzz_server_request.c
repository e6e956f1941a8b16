/*
 * fuzz_server_request.c: libFuzzer target for the server's request handling that runs before
 * the model: the JSON pre-scan, body parsing and validation of all four body kinds (chat,
 * completions, tokenize, detokenize), the context check, the header checks, and the output
 * side's UTF-8 sanitizer and stop holdback fed with the same bytes.
 *
 * Input layout: byte 0 selects the limits (small/large context) and whether a stop list is
 * used for the holdback pass; the rest is the body. Invariants checked (abort on violation, so
 * libFuzzer reports them): a successful parse yields in-range fields; a failure yields a 4xx/5xx
 * status with a message; sanitized output is valid UTF-8 without NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "server/textout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

static void check_request(const srv_request *r, const srv_limits *l) {
    check(r->n >= 1 && r->n <= l->n_choices_max);
    check(r->max_tokens == -1 || (r->max_tokens >= 1 && r->max_tokens <= l->n_ctx));
    check(r->top_logprobs >= 0 && r->top_logprobs <= l->top_logprobs_max);
    check(r->n_stop >= 0 && r->n_stop <= l->n_stop_max);
    for (int32_t i = 0; i < r->n_stop; i++)
        check(r->stop_len[i] >= 1 && r->stop_len[i] <= l->stop_bytes_max && (int32_t)strlen(r->stop[i]) == r->stop_len[i]);
    for (int32_t i = 0; i < r->n_prompt_ids; i++) check(r->prompt_ids[i] >= 0 && r->prompt_ids[i] < l->n_vocab);
    for (int32_t i = 0; i < r->n_bias; i++) check(r->bias_ids[i] >= 0 && r->bias_ids[i] < l->n_vocab);
    check(r->sampling.temperature >= 0 && r->sampling.temperature <= 2);
    check(r->sampling.top_p > 0 && r->sampling.top_p <= 1);
    check(r->sampling.top_k >= 0 && r->sampling.top_k <= l->n_vocab);
    if (r->kind == SRV_CHAT) check(r->n_messages >= 1 && r->messages);
    else check(r->prompt || r->n_prompt_ids > 0);
}

static void check_valid_utf8(const srv_buf *b) {
    /* sanitizing valid output again must not change it */
    srv_buf again = {0};
    if (srv_utf8_sanitize(b->p ? b->p : "", b->len, &again) == 0) {
        check(again.len == b->len && (b->len == 0 || memcmp(again.p, b->p, b->len) == 0));
        check(memchr(b->p ? b->p : "", 0, b->len) == NULL);
    }
    srv_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_limits l = (mode & 1) ? srv_limits_default(50000, 4096, 8) : srv_limits_default(512, 64, 2);
    l.body_bytes_max = 1 << 20;
    srv_error e;

    for (int k = 0; k < 2; k++) {
        srv_request r;
        memset(&e, 0, sizeof e);
        int st = srv_request_parse(k ? SRV_COMPLETION : SRV_CHAT, body, len, &l, &r, &e);
        if (st == 0) {
            check_request(&r, &l);
            int32_t n_prompt = (int32_t)(mode >> 2) * 3;
            if (srv_check_context(&r, n_prompt, l.n_ctx, &e) == 0)
                check(r.max_tokens >= 1 && n_prompt + r.max_tokens <= l.n_ctx);
            srv_request_free(&r);
        } else {
            check(st >= 400 && st < 600 && e.http_status == st && e.message[0] != '\0');
        }
    }
    srv_tokenize_req t;
    if (srv_tokenize_parse(body, len, &l, &t, &e) == 0) srv_tokenize_free(&t);
    srv_detokenize_req d;
    if (srv_detokenize_parse(body, len, &l, &d, &e) == 0) srv_detokenize_free(&d);

    /* header checks on the raw bytes as a C string (bounded copy) */
    char hdr[256];
    size_t hl = len < sizeof hdr - 1 ? len : sizeof hdr - 1;
    memcpy(hdr, body, hl);
    hdr[hl] = '\0';
    srv_check_content_type(hdr, &e);
    srv_check_bearer(hdr, "key");

    /* output side: holdback over the bytes split into 3-byte tokens */
    const char *stops[] = {"\n\n", "</s>", "\xE2\x82\xAC"};
    int32_t sl[] = {2, 4, 3};
    srv_textout to;
    srv_textout_init(&to, stops, sl, (mode & 2) ? 3 : 0);
    srv_buf out = {0};
    int stopped = 0;
    for (size_t i = 0; i < len && !stopped; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        stopped = srv_textout_push(&to, body + i, n, &out);
        check(stopped >= 0);
    }
    if (!stopped) srv_textout_finish(&to, &out);
    check(to.n_released <= len);
    check_valid_utf8(&out);
    srv_buf_free(&out);
    return 0;
}
