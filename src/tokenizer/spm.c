/*
 * spm.c: SentencePiece encoding (tokenizer.ggml.model "llama": Llama 1/2, Mistral, Phi-3...), the
 * way llama.cpp's SPM tokenizer does it, so that its reference ids are reproduced.
 *
 * Text -> (optional) space prefix, every ' ' escaped to "▁" (U+2581) -> one symbol per UTF-8
 * character (each byte of an ill-formed sequence is a symbol of its own) ->
 * repeated merging of the adjacent pair whose concatenation is the NORMAL token with the highest
 * score (ties: leftmost), from a max-heap of candidate pairs -> each final symbol is its token, or,
 * when the vocabulary has none, its bytes as <0xNN> byte tokens (byte fallback; the unknown token
 * for a byte without one). Any input bytes are accepted and, with byte fallback, come back
 * unchanged from decoding.
 *
 * One deliberate difference from llama.cpp, for ill-formed input only: llama.cpp cuts symbols by
 * the lead byte's length alone, so a stray lead byte swallows the bytes after it, including the
 * first bytes of an escaped space ("▁"), which then decodes as "▁" instead of " ". Here an
 * ill-formed byte never joins its neighbours, so decode(encode(text)) == text for any bytes
 * (except a literal "▁" in the text, which decodes as a space). On valid UTF-8 the two agree.
 *
 * Cost: each merge is O(log n) on the heap. Before merging, the escaped text is cut in front of
 * every "▁" whose preceding byte never appears right before a "▁" inside any NORMAL token (see
 * spm_joins_space, computed at load): no merge can cross such a cut, so the pieces are encoded
 * independently with the same result, with small heaps and a memo cache of repeated pieces.
 * (Pairs in different pieces never interact, so the order in which merges happen across pieces
 * does not matter.)
 */
#include <string.h>

#include "tokenizer/tok_internal.h"

/* Queue entries (tok_hent): key = (score, mapped so that a higher score is a smaller number) << 32
 * | left position; a = right position, b = bytes of left + right when pushed. A popped pair is
 * stale unless both symbols are alive, still neighbours, and still that long together (a symbol
 * only ever grows, so an unchanged total means unchanged symbols). */
static inline uint64_t score_key(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* now ascending with the float */
    return (uint64_t)~u << 32;                       /* descending: best score first */
}

/* The NORMAL token spelled s[0..n), or -1. */
static inline int32_t normal_token(const mn_tokenizer *t, const char *s, size_t n) {
    int32_t id = mn_tok_map_find(&t->text_map, s, n);
    return id >= 0 && tok_type(t, id) == MN_TOKEN_NORMAL ? id : -1;
}

static void try_pair(const mn_tokenizer *t, tok_scratch *sc, const char *s, size_t *n_heap, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t size = sc->sym_len[l] + sc->sym_len[r];
    int32_t id = normal_token(t, s + sc->sym_start[l], size);
    if (id >= 0) tok_heap_push(sc->heap, n_heap, (tok_hent){score_key(t->score[id]) | (uint32_t)l, (uint32_t)r, size});
}

static void emit(tok_sink *sink, int32_t id, int32_t *memo, size_t *n_memo) {
    if (id < 0) return;
    tok_emit(sink, id);
    if (*n_memo < TOK_MEMO_IDS) memo[*n_memo] = id;
    (*n_memo)++;
}

/* Encodes one piece of escaped text (no cut inside it). */
static mn_status spm_piece(const mn_tokenizer *t, tok_scratch *sc, const char *s, size_t n, tok_sink *sink) {
    if (mn_tok_memo_get(sc, s, n, sink)) return MN_OK;
    MN_FORWARD(mn_tok_scratch_syms(sc, TOK_SPM, n));
    int32_t *prev = sc->sym_prev, *next = sc->sym_next;
    uint32_t *start = sc->sym_start, *len = sc->sym_len;
    size_t n_heap = 0;
    int32_t n_sym = 0;
    for (size_t off = 0; off < n;) {
        size_t k = mn_tok_utf8_char((const uint8_t *)s + off, n - off);
        if (k == 0) k = 1; /* an ill-formed byte is a symbol of its own */
        start[n_sym] = (uint32_t)off;
        len[n_sym] = (uint32_t)k;
        prev[n_sym] = n_sym - 1;
        off += k;
        next[n_sym] = off < n ? n_sym + 1 : -1;
        n_sym++;
    }
    for (int32_t i = 0; i + 1 < n_sym; i++) try_pair(t, sc, s, &n_heap, i, i + 1);
    while (n_heap > 0) {
        tok_hent p = tok_heap_pop(sc->heap, &n_heap);
        int32_t l = (int32_t)(uint32_t)p.key, r = (int32_t)p.a;
        if (len[l] == 0 || len[r] == 0 || next[l] != r || len[l] + len[r] != p.b) continue; /* stale */
        len[l] += len[r];
        len[r] = 0;
        int32_t nr = next[r];
        next[l] = nr;
        if (nr >= 0) prev[nr] = l;
        MN_FORWARD(mn_tok_scratch_heap(sc, n_heap + 2));
        try_pair(t, sc, s, &n_heap, prev[l], l);
        try_pair(t, sc, s, &n_heap, l, nr);
    }
    int32_t memo[TOK_MEMO_IDS];
    size_t n_memo = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) {
        int32_t id = normal_token(t, s + start[i], len[i]);
        if (id >= 0) {
            emit(sink, id, memo, &n_memo);
            continue;
        }
        for (uint32_t b = 0; b < len[i]; b++) { /* byte fallback */
            int32_t bt = t->byte_tok[(uint8_t)s[start[i] + b]];
            emit(sink, bt >= 0 ? bt : t->unk, memo, &n_memo);
        }
    }
    mn_tok_memo_put(sc, s, n, memo, n_memo);
    return MN_OK;
}

mn_status mn_spm_encode(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len, bool add_prefix,
                        tok_sink *sink) {
    /* escape: each byte grows to at most 3 (space -> "▁"), plus the prefix */
    MN_FORWARD(mn_tok_scratch_buf(sc, 3 * len + 3));
    char *e = sc->buf;
    size_t n = 0;
    if (add_prefix) {
        memcpy(e, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            e[n++] = text[i];
        }
    }
    /* cut before each "▁" that no token joins to the byte before it */
    size_t piece = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if ((uint8_t)e[i] != 0xE2 || memcmp(e + i, "\xE2\x96\x81", 3) != 0) continue;
        if (t->spm_joins_space[(uint8_t)e[i - 1]]) continue;
        MN_FORWARD(spm_piece(t, sc, e + piece, i - piece, sink));
        piece = i;
    }
    if (piece < n) MN_FORWARD(spm_piece(t, sc, e + piece, n - piece, sink));
    return MN_OK;
}
