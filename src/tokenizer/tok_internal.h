/*
 * tok_internal.h: the layout of an mn_tokenizer and the helpers its files share (vocab.c loads,
 * spm.c and bpe.c encode, pretok.c splits text with regexes, tokenize.c is the public API,
 * detok.c decodes). Only src/tokenizer/ includes this file.
 *
 * Representation, chosen so that encoding works on raw bytes and decoding is a table lookup:
 *   - Every token has two strings, both copied out of the GGUF into one blob each: its stored
 *     text (exactly as in tokenizer.ggml.tokens) and its piece (the bytes it stands for: "▁"
 *     turned into a space, <0xNN> into one byte, byte-level BPE characters back into bytes).
 *   - text_map finds ids by stored text (all tokens). SentencePiece merges look up the
 *     concatenation of adjacent symbols there. piece_map (BPE only) finds NORMAL tokens by their
 *     raw bytes, so BPE never builds the byte-level "Ġ" strings at run time: a word's symbols
 *     start as the tokens of its single bytes and merges are a table (left id, right id) ->
 *     (rank, result id).
 *   - Special tokens (CONTROL, USER_DEFINED, UNKNOWN) live in a byte trie used to split them out
 *     of the input before the model's algorithm sees the text.
 * Invariant: after mn_tokenizer_from_gguf returns, nothing in the struct changes; every encode or
 * decode call keeps its mutable state in its own scratch (tok_scratch) or handle (mn_detok).
 */
#ifndef MN_TOKENIZER_TOK_INTERNAL_H
#define MN_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/status.h"
#include "minnow.h"
#include "tokenizer/tokenizer.h"

enum tok_model { TOK_SPM = 1, TOK_BPE = 2 };

/* attr[] of a token: its mn_token_type in the low bits, plus flags. */
#define TOK_TYPE_MASK 0x0F
#define TOK_EOG 0x10        /* ends generation */
#define TOK_HIDDEN 0x20     /* piece shown only with "show special" (CONTROL, UNKNOWN) */
#define TOK_IN_PIECEMAP 0x40 /* BPE: NORMAL token whose text is valid byte-level encoding */

/* Open-addressing hash from a byte string to a token id. The key of id i is blob[off[i] ..
 * off[i+1] - 1) (each string is stored NUL-terminated). Slots hold (hash >> 32) << 32 | (id + 1);
 * 0 is empty. The table is at most half full. */
typedef struct tok_map {
    uint64_t *slots;
    uint64_t mask;
    const char *blob;
    const uint32_t *off;
} tok_map;

/* BPE merge table: key (left id << 32 | right id), UINT64_MAX empty. */
typedef struct tok_merge {
    uint64_t key;
    int32_t rank;   /* line number in tokenizer.ggml.merges: lower merges first */
    int32_t result; /* id of the merged token */
} tok_merge;

/* Byte trie of special-token texts: first-child / next-sibling lists, with a direct table for the
 * first byte. id >= 0 marks the end of a token's text. */
typedef struct tok_trie_node {
    int32_t child;
    int32_t sibling;
    int32_t id;
    uint8_t byte;
} tok_trie_node;

#define TOK_PRETOK_MAX 6 /* most regexes one pre-tokenizer applies in turn */

struct mn_tokenizer {
    int model;        /* enum tok_model */
    int32_t n_vocab;
    uint8_t *attr;    /* [n_vocab] */
    float *score;     /* [n_vocab], SentencePiece merge priority (0 when the file has none) */
    char *text;       /* stored texts, NUL-terminated, at text_off[i] */
    uint32_t *text_off;  /* [n_vocab + 1] */
    char *piece;      /* decoded bytes, NUL-terminated, at piece_off[i] */
    uint32_t *piece_off; /* [n_vocab + 1] */
    uint32_t max_piece_len;

    tok_map text_map;
    tok_map piece_map; /* BPE */

    tok_merge *merges; /* BPE, mask + 1 entries */
    uint64_t merges_mask;
    int64_t n_merges;       /* merges in the table */
    int64_t n_merges_skipped; /* lines naming tokens the vocabulary lacks (ignored) */

    /* SentencePiece: the <0xNN> token of each byte; BPE: the token of each single raw byte.
     * -1 when the vocabulary has none. */
    int32_t byte_tok[256];
    /* SentencePiece: bytes b such that some NORMAL token contains b followed by "▁". Text can be
     * cut before a "▁" whose preceding byte is not in this set: no merge can cross that point. */
    uint8_t spm_joins_space[256];

    tok_trie_node *trie;
    int32_t n_trie;
    int32_t trie_root[256]; /* node of each first byte, -1 none */

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;

    int n_pretok;
    pcre2_code *pretok[TOK_PRETOK_MAX];
    char pre_name[32];

    char *chat_template;
};

/* ---------------------------------------------------------------- hashing / maps ------------ */

uint64_t mn_tok_hash(const void *data, size_t n);
/* Id whose key is s[0..n), or -1. */
int32_t mn_tok_map_find(const tok_map *m, const char *s, size_t n);

/* Hash of a merge-table key (left id << 32 | right id). */
static inline uint64_t tok_pair_hash(uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static inline const char *tok_piece(const mn_tokenizer *t, int32_t id, size_t *len) {
    *len = t->piece_off[id + 1] - t->piece_off[id] - 1;
    return t->piece + t->piece_off[id];
}
static inline int tok_type(const mn_tokenizer *t, int32_t id) { return t->attr[id] & TOK_TYPE_MASK; }

/* ---------------------------------------------------------------- UTF-8 --------------------- */

/* Decodes one code point from s[0..n) (n >= 1) under the strict rules of Unicode 3.9 (no
 * overlongs, no surrogates, nothing above U+10FFFF). Returns the bytes consumed (>= 1) and sets
 * *cp. An ill-formed sequence gives *cp = 0xFFFD and consumes its maximal subpart (the longest
 * prefix that could begin a valid sequence, at least one byte); *truncated is set when that
 * subpart ran into the end of the buffer (more bytes could still complete it). */
size_t mn_tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp, bool *truncated);
/* Length (1-4) of the well-formed character at s[0..n), or 0 when s starts ill-formed. */
static inline size_t mn_tok_utf8_char(const uint8_t *s, size_t n) {
    if (s[0] < 0x80) return 1;
    uint32_t cp;
    bool trunc;
    size_t k = mn_tok_utf8_decode(s, n, &cp, &trunc);
    return cp != 0xFFFD || (k == 3 && s[0] == 0xEF && s[1] == 0xBF && s[2] == 0xBD) ? k : 0;
}
/* Bytes of s that form valid UTF-8 from the start (n when all of it is). */
size_t mn_tok_utf8_valid_prefix(const uint8_t *s, size_t n);

/* ---------------------------------------------------------------- encoding ------------------ */

/* Where encoded ids go: the first cap are stored, all are counted. */
typedef struct tok_sink {
    int32_t *out;
    size_t cap;
    size_t n;
} tok_sink;

static inline void tok_emit(tok_sink *s, int32_t id) {
    if (s->n < s->cap) s->out[s->n] = id;
    s->n++;
}

/* Per-call scratch: growable buffers reused across words, PCRE2 match state, a memo cache. */
typedef struct tok_scratch tok_scratch;
mn_status mn_tok_scratch_create(const mn_tokenizer *t, size_t text_len, tok_scratch **out);
void mn_tok_scratch_free(tok_scratch *sc);

/* Encodes one run of ordinary text (no special tokens in it). add_prefix: SentencePiece only,
 * prepend the space prefix. */
mn_status mn_spm_encode(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len,
                        bool add_prefix, tok_sink *sink);
mn_status mn_bpe_encode(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len,
                        tok_sink *sink);

/* Pre-tokenizer (pretok.c): compiles the regexes of tokenizer.ggml.pre into t. */
mn_status mn_pretok_init(mn_tokenizer *t, const char *pre, size_t pre_len, mn_error *err);
void mn_pretok_free(mn_tokenizer *t);
/* Calls word(user, s, n) for each pre-token of text[0..len) (valid UTF-8), in order. */
typedef mn_status (*tok_word_fn)(void *user, const char *s, size_t n);
mn_status mn_pretok_split(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len,
                          tok_word_fn word, void *user);

/* Scratch internals shared by spm.c, bpe.c and pretok.c. */
struct tok_scratch {
    char *buf;        /* escaped (SPM) or sanitized (BPE) text */
    size_t buf_cap;
    /* symbols and heap, sized to the longest word seen */
    int32_t *sym_id;  /* BPE: token id */
    int32_t *sym_prev, *sym_next;
    uint32_t *sym_start, *sym_len; /* SPM */
    size_t sym_cap;
    struct tok_hent *heap; /* 64-byte aligned, see tok_heap_push */
    size_t heap_cap;       /* entries that fit (after the 3 padding entries) */
    /* PCRE2 */
    pcre2_match_data *md[TOK_PRETOK_MAX];
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    /* memo cache of short words -> ids (NULL for short inputs) */
    struct tok_memo *memo;
    uint64_t memo_mask;
};

/* Memo cache: direct-mapped, a word of at most TOK_MEMO_KEY bytes that encodes to at most
 * TOK_MEMO_IDS ids. A slot is overwritten on collision, so memory stays fixed. */
#define TOK_MEMO_KEY 23
#define TOK_MEMO_IDS 8
typedef struct tok_memo {
    uint8_t key_len; /* 0: empty */
    uint8_t n_ids;
    char key[TOK_MEMO_KEY];
    int32_t ids[TOK_MEMO_IDS];
} tok_memo;

/* PCRE2 JIT runs on a 32 KiB stack by default, enough for ordinary text; a match that needs more
 * (a very long run of one character class) calls this, which gives the scratch a stack of up to
 * 8 MiB, and retries. False when there is no bigger stack to give. */
bool mn_tok_scratch_big_jit_stack(tok_scratch *sc);

/* Grow helpers. syms: room for n symbols (the arrays the model uses) and n heap entries; heap:
 * room for n heap entries (the heap grows as merges push pairs, so memory follows the pairs
 * actually pushed, not a worst-case bound); buf: n bytes of text. */
mn_status mn_tok_scratch_syms(tok_scratch *sc, int model, size_t n);
mn_status mn_tok_scratch_heap(tok_scratch *sc, size_t n);
mn_status mn_tok_scratch_buf(tok_scratch *sc, size_t n);

/* ---------------------------------------------------------------- merge queue --------------- */

/* The candidate-merge queue of both algorithms: a min-heap on key, which packs the priority in
 * its high 32 bits and the left symbol's position in the low 32 (ties go to the leftmost pair, as
 * in llama.cpp), so one integer compare orders two entries. a and b are the algorithm's payload.
 * It is 4-ary, and entry i lives at heap[i + 3] in a 64-byte aligned array, so the four children
 * of a node (4i+1..4i+4, stored at 4(i+1)..4(i+1)+3) fill exactly one cache line: a pop reads
 * one line per level and has half the levels of a binary heap. Entries with equal keys are only
 * ever a live pair and stale copies of it, so their order does not matter. */
typedef struct tok_hent {
    uint64_t key;
    uint32_t a, b;
} tok_hent;

static inline void tok_heap_push(tok_hent *h, size_t *n, tok_hent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (h[parent + 3].key <= e.key) break;
        h[i + 3] = h[parent + 3];
        i = parent;
    }
    h[i + 3] = e;
}

static inline tok_hent tok_heap_pop(tok_hent *h, size_t *n) {
    tok_hent top = h[3];
    size_t m = --(*n);
    if (m == 0) return top;
    tok_hent last = h[m + 3];
    size_t i = 0;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= m) break;
        size_t end = c + 4 < m ? c + 4 : m, best = c;
        for (size_t k = c + 1; k < end; k++)
            if (h[k + 3].key < h[best + 3].key) best = k;
        if (h[best + 3].key >= last.key) break;
        h[i + 3] = h[best + 3];
        i = best;
    }
    h[i + 3] = last;
    return top;
}

/* Memo lookup / store (no-ops when sc->memo is NULL). */
bool mn_tok_memo_get(const tok_scratch *sc, const char *s, size_t n, tok_sink *sink);
void mn_tok_memo_put(tok_scratch *sc, const char *s, size_t n, const int32_t *ids, size_t n_ids);

#endif
