/*
 * bpe.c: byte-level BPE encoding (tokenizer.ggml.model "gpt2": GPT-2, Llama 3, Qwen, DeepSeek,
 * Falcon...).
 *
 * Text -> U+FFFD for ill-formed UTF-8 (the pre-tokenizer regexes need valid text; the HF
 * tokenizers only ever see valid strings, and llama.cpp does the same substitution) -> words from
 * the pre-tokenizer (pretok.c) -> merges inside each word.
 *
 * Merging works on token ids, never on byte-level strings: a word of n bytes starts as n symbols,
 * the tokens of its single bytes; a min-heap holds every adjacent pair that has a merge, ordered
 * by (rank, left position) exactly like llama.cpp's work queue; the best pair is merged into its
 * left symbol, the right one is unlinked from a doubly linked list, and the two new neighbouring
 * pairs are pushed. A popped pair is stale when the ids of its left symbol and of that symbol's
 * right neighbour are no longer the ones it was pushed with (dead symbols get an id no token has).
 * Each merge costs O(log n), so a word of a million bytes costs O(n log n), not O(n^2), and the
 * heap grows only with the pairs actually pushed.
 *
 * A merge whose result is not a NORMAL token of the vocabulary was dropped at load (vocab.c), so
 * every symbol is always a token and special tokens are never produced here. A byte without a
 * token of its own (a broken vocabulary) becomes the unknown token, or nothing when there is none.
 */
#include <string.h>

#include "tokenizer/tok_internal.h"

/* Queue entries (tok_hent): key = rank << 32 | left position; a, b = the ids of the left symbol and
 * of its right neighbour when pushed. If both still match when the entry is popped, it is exactly
 * the same merge; otherwise it is stale and skipped. */
#define DEAD INT32_MIN

static inline const tok_merge *merge_find(const mn_tokenizer *t, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    for (uint64_t j = tok_pair_hash(key) & t->merges_mask;; j = (j + 1) & t->merges_mask) {
        const tok_merge *m = &t->merges[j];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

typedef struct bpe_ctx {
    const mn_tokenizer *t;
    tok_scratch *sc;
    tok_sink *sink;
} bpe_ctx;

static void try_pair(const mn_tokenizer *t, const int32_t *id, tok_hent *heap, size_t *n_heap, int32_t l,
                     int32_t r) {
    if (l < 0 || r < 0) return;
    const tok_merge *m = merge_find(t, id[l], id[r]);
    if (m)
        tok_heap_push(heap, n_heap,
                      (tok_hent){((uint64_t)(uint32_t)m->rank << 32) | (uint32_t)l, (uint32_t)id[l], (uint32_t)id[r]});
}

/* Emits id, or the fallback for a byte with no token. Collects up to TOK_MEMO_IDS for the memo. */
static void emit(const mn_tokenizer *t, tok_sink *sink, int32_t id, int32_t *memo, size_t *n_memo) {
    if (id < 0) id = t->unk;
    if (id < 0) return;
    tok_emit(sink, id);
    if (*n_memo < TOK_MEMO_IDS) memo[*n_memo] = id;
    (*n_memo)++;
}

static mn_status bpe_word(void *user, const char *s, size_t n) {
    bpe_ctx *c = user;
    const mn_tokenizer *t = c->t;
    tok_scratch *sc = c->sc;
    if (mn_tok_memo_get(sc, s, n, c->sink)) return MN_OK;
    int32_t memo[TOK_MEMO_IDS];
    size_t n_memo = 0;
    if (t->ignore_merges || n == 1) {
        int32_t id = n == 1 ? t->byte_tok[(uint8_t)s[0]] : mn_tok_map_find(&t->piece_map, s, n);
        if (id >= 0 || n == 1) {
            emit(t, c->sink, id, memo, &n_memo);
            mn_tok_memo_put(sc, s, n, memo, n_memo);
            return MN_OK;
        }
    }
    MN_FORWARD(mn_tok_scratch_syms(sc, TOK_BPE, n));
    int32_t *id = sc->sym_id, *prev = sc->sym_prev, *next = sc->sym_next;
    size_t n_heap = 0;
    int32_t ni = (int32_t)n;
    for (int32_t i = 0; i < ni; i++) {
        id[i] = t->byte_tok[(uint8_t)s[i]];
        prev[i] = i - 1;
        next[i] = i + 1 < ni ? i + 1 : -1;
    }
    for (int32_t i = 0; i + 1 < ni; i++) try_pair(t, id, sc->heap, &n_heap, i, i + 1);
    while (n_heap > 0) {
        tok_hent p = tok_heap_pop(sc->heap, &n_heap);
        int32_t l = (int32_t)(uint32_t)p.key, r = next[l];
        if (id[l] != (int32_t)p.a || r < 0 || id[r] != (int32_t)p.b) continue; /* stale */
        id[l] = merge_find(t, id[l], id[r])->result;
        int32_t nr = next[r];
        next[l] = nr;
        if (nr >= 0) prev[nr] = l;
        id[r] = DEAD;
        MN_FORWARD(mn_tok_scratch_heap(sc, n_heap + 2));
        try_pair(t, id, sc->heap, &n_heap, prev[l], l);
        try_pair(t, id, sc->heap, &n_heap, l, nr);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) emit(t, c->sink, id[i], memo, &n_memo);
    mn_tok_memo_put(sc, s, n, memo, n_memo);
    return MN_OK;
}

mn_status mn_bpe_encode(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len, tok_sink *sink) {
    const char *s = text;
    size_t n = len;
    size_t ok = mn_tok_utf8_valid_prefix((const uint8_t *)text, len);
    if (ok < len) {
        /* every ill-formed subpart (>= 1 byte) becomes the 3 bytes of U+FFFD */
        MN_FORWARD(mn_tok_scratch_buf(sc, ok + 3 * (len - ok)));
        char *o = sc->buf;
        memcpy(o, text, ok);
        size_t w = ok;
        for (size_t i = ok; i < len;) {
            uint32_t cp;
            bool trunc;
            size_t k = mn_tok_utf8_decode((const uint8_t *)text + i, len - i, &cp, &trunc);
            if (cp == 0xFFFD) {
                memcpy(o + w, "\xEF\xBF\xBD", 3);
                w += 3;
            } else {
                memcpy(o + w, text + i, k);
                w += k;
            }
            i += k;
        }
        s = o;
        n = w;
    }
    bpe_ctx c = {t, sc, sink};
    return mn_pretok_split(t, sc, s, n, bpe_word, &c);
}
