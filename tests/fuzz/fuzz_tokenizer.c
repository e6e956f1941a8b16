/*
 * fuzz_tokenizer.c: libFuzzer target for the tokenizer. The input is arbitrary bytes of text; it is
 * encoded by two real vocabularies ($MINNOW_SHARED/vocab: GPT-2 byte-level BPE and Llama-2
 * SentencePiece, loaded once per process; without them every input is a no-op), with and without
 * special-token parsing, then decoded one-shot and streamed. abort() marks a broken property:
 *   - encoding succeeds, needs at most MN_TOKENIZE_MAX_TOKENS(len) ids, all in range, and a short
 *     buffer gets MN_EFULL with the same count and the same leading ids;
 *   - byte-level BPE: decoding (special tokens shown) gives back the input exactly when it is valid
 *     UTF-8, and otherwise the input with every ill-formed subpart replaced by U+FFFD (computed
 *     here independently of the library);
 *   - SentencePiece without special parsing: decoding (prefix space stripped) gives back the input
 *     byte for byte whenever it contains no "▁" (which decodes as a space);
 *   - the streaming detokenizer's output is valid UTF-8 chunk by chunk and equals the one-shot
 *     decode whenever that is valid UTF-8;
 *   - every id has a piece.
 * The static state below belongs to the harness, not the library (which has none).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minnow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_VOCABS = 2 };
static const char *const VOCAB_NAMES[N_VOCABS] = {"gpt-2", "llama-spm"};
static mn_tokenizer *g_tok[N_VOCABS];
static int g_loaded;

static void load_once(void) {
    if (g_loaded) return;
    g_loaded = 1;
    const char *shared = getenv("MINNOW_SHARED");
    if (!shared) return;
    for (int v = 0; v < N_VOCABS; v++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared, VOCAB_NAMES[v]);
        if (mn_tokenizer_load(path, &g_tok[v], NULL) != MN_OK) g_tok[v] = NULL;
    }
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_tokenizer: property violated: %s\n", what);
        abort();
    }
}

/* Length of the well-formed UTF-8 character at s, or 0 (Unicode 3.9 table 3-7). */
static size_t wf_len(const uint8_t *s, size_t n) {
    uint8_t b = s[0];
    if (b < 0x80) return 1;
    uint8_t lo = 0x80, hi = 0xBF;
    size_t len;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b == 0xE0) len = 3, lo = 0xA0;
    else if (b == 0xED) len = 3, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) len = 3;
    else if (b == 0xF0) len = 4, lo = 0x90;
    else if (b == 0xF4) len = 4, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3) len = 4;
    else return 0;
    if (len > n || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

/* Bytes of the maximal subpart at s (an ill-formed sequence that starts with a possible lead). */
static size_t subpart_len(const uint8_t *s, size_t n) {
    uint8_t b = s[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t len;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    size_t k = 1;
    while (k < len && k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        lo = 0x80;
        hi = 0xBF;
    }
    return k;
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = wf_len(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* s with each maximal ill-formed subpart replaced by U+FFFD; *out_len set. Caller frees. */
static uint8_t *sanitize(const uint8_t *s, size_t n, size_t *out_len) {
    uint8_t *o = malloc(3 * n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = wf_len(s + i, n - i);
        if (k) {
            memcpy(o + w, s + i, k);
            w += k;
            i += k;
        } else {
            memcpy(o + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i += subpart_len(s + i, n - i);
        }
    }
    *out_len = w;
    return o;
}

static void run(const mn_tokenizer *tok, int is_bpe, const uint8_t *data, size_t size, int flags) {
    size_t cap = MN_TOKENIZE_MAX_TOKENS(size), n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    check(mn_tokenize(tok, (const char *)data, size, flags, ids, cap, &n) == MN_OK, "tokenize ok");
    check(n <= cap, "token count bound");
    int32_t n_vocab = mn_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < n; i++) check(ids[i] >= 0 && ids[i] < n_vocab, "id in range");
    if (n > 1) { /* short buffer: same count, same prefix */
        size_t half = n / 2, n2 = 0;
        int32_t *ids2 = malloc(half * sizeof *ids2);
        check(mn_tokenize(tok, (const char *)data, size, flags, ids2, half, &n2) == MN_EFULL, "EFULL");
        check(n2 == n && memcmp(ids2, ids, half * sizeof *ids) == 0, "EFULL prefix");
        free(ids2);
    }

    /* one-shot decode */
    int dflags = MN_DETOK_STRIP_SPACE | (is_bpe ? MN_DETOK_SPECIAL : 0);
    size_t dlen = 0;
    mn_status ms = mn_detokenize(tok, ids, n, dflags, NULL, 0, &dlen);
    check(ms == (dlen ? MN_EFULL : MN_OK), "measure");
    char *dec = malloc(dlen + 1);
    size_t dlen2 = 0;
    check(mn_detokenize(tok, ids, n, dflags, dec, dlen, &dlen2) == MN_OK && dlen2 == dlen, "detokenize");
    if (is_bpe) {
        size_t want_len;
        uint8_t *want = sanitize(data, size, &want_len);
        check(dlen == want_len && memcmp(dec, want, want_len) == 0, "BPE round trip");
        free(want);
    } else if (!(flags & MN_TOKENIZE_PARSE_SPECIAL)) {
        int has_escape = 0;
        for (size_t i = 0; i + 3 <= size && !has_escape; i++)
            has_escape = data[i] == 0xE2 && data[i + 1] == 0x96 && data[i + 2] == 0x81;
        if (!has_escape) check(dlen == size && memcmp(dec, data, size) == 0, "SentencePiece round trip");
    }

    /* streaming decode */
    mn_detok *d = NULL;
    check(mn_detok_create(tok, dflags, &d) == MN_OK, "detok create");
    char *streamed = malloc(3 * dlen + 8);
    size_t sl = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t len;
        check(mn_detok_push(d, ids[i], &t, &len) == MN_OK, "detok push");
        check(valid_utf8((const uint8_t *)t, len), "stream chunk valid UTF-8");
        check(sl + len <= 3 * dlen + 8, "stream output bound");
        memcpy(streamed + sl, t, len);
        sl += len;
    }
    const char *t;
    size_t len;
    check(mn_detok_flush(d, &t, &len) == MN_OK && len <= 3, "detok flush");
    memcpy(streamed + sl, t, len);
    sl += len;
    check(valid_utf8((const uint8_t *)streamed, sl), "stream valid UTF-8");
    if (valid_utf8((const uint8_t *)dec, dlen)) check(sl == dlen && memcmp(streamed, dec, dlen) == 0, "stream == one-shot");
    mn_detok_free(d);

    for (size_t i = 0; i < n && i < 64; i++) {
        char piece[8];
        size_t plen;
        mn_status s = mn_token_to_piece(tok, ids[i], 1, piece, sizeof piece, &plen);
        check(s == MN_OK || s == MN_EFULL, "piece");
    }
    free(streamed);
    free(dec);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    if (size > 1 << 16) return 0; /* long inputs are the unit tests' job */
    for (int v = 0; v < N_VOCABS; v++) {
        if (!g_tok[v]) continue;
        run(g_tok[v], v == 0, data, size, 0);
        run(g_tok[v], v == 0, data, size, MN_TOKENIZE_PARSE_SPECIAL | MN_TOKENIZE_ADD_BOS);
    }
    return 0;
}
