/*
 * tok_util.c: the small pieces every tokenizer file uses: a byte-string hash and the id maps
 * built on it, a strict UTF-8 decoder, and the per-call scratch (growable symbol/heap arrays,
 * PCRE2 match state and the memo cache).
 *
 * Why a per-call scratch: an mn_tokenizer is shared by many threads and never written after load,
 * so each mn_tokenize call owns its working memory. It is sized by the longest word seen, not by
 * the input, except for the text copy the algorithms need (escaped or sanitized text), and it is
 * freed when the call returns.
 *
 * The memo cache maps a short pre-token (a word) to its ids. English text repeats words heavily,
 * so for inputs above a few KB this skips most merge work; it is direct-mapped with a fixed size
 * (TOK_MEMO_SLOTS_MAX), so memory stays bounded whatever the input.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define TOK_MEMO_SLOTS_MAX 8192   /* 8192 x 60 bytes: under half a megabyte */
#define TOK_MEMO_MIN_TEXT 512     /* inputs shorter than this get no cache */
#define TOK_JIT_STACK_MAX (8u << 20)

/* ---------------------------------------------------------------- hash, maps ---------------- */

uint64_t mn_tok_hash(const void *data, size_t n) {
    const uint8_t *s = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return h;
}

int32_t mn_tok_map_find(const tok_map *m, const char *s, size_t n) {
    if (!m->slots) return -1;
    uint64_t h = mn_tok_hash(s, n);
    uint64_t tag = h >> 32;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t e = m->slots[i];
        if (!e) return -1;
        if ((e >> 32) != tag) continue;
        uint32_t id = (uint32_t)e - 1;
        size_t klen = m->off[id + 1] - m->off[id] - 1;
        if (klen == n && memcmp(m->blob + m->off[id], s, n) == 0) return (int32_t)id;
    }
}

/* ---------------------------------------------------------------- UTF-8 --------------------- */

size_t mn_tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp, bool *truncated) {
    *truncated = false;
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    uint32_t c;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0; /* no overlongs */
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90; /* no overlongs */
        if (b0 == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = 0xFFFD; /* continuation byte, C0, C1, F5..FF */
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n) {
            *truncated = true;
            *cp = 0xFFFD;
            return i;
        }
        uint8_t b = s[i];
        if (b < lo || b > hi) {
            *cp = 0xFFFD;
            return i;
        }
        lo = 0x80;
        hi = 0xBF;
        c = (c << 6) | (b & 0x3F);
    }
    *cp = c;
    return need + 1;
}

size_t mn_tok_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = mn_tok_utf8_char(s + i, n - i);
        if (k == 0) return i;
        i += k;
    }
    return n;
}

/* ---------------------------------------------------------------- scratch ------------------- */

mn_status mn_tok_scratch_create(const mn_tokenizer *t, size_t text_len, tok_scratch **out) {
    *out = NULL;
    tok_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) return MN_ENOMEM;
    if (t->n_pretok > 0) {
        sc->mctx = pcre2_match_context_create(NULL);
        if (!sc->mctx) goto fail;
        /* PCRE2's default budget (10 million steps per match) is too small for one match over a
         * multi-megabyte run of spaces (\s*[\r\n]+ backtracks through it once, linearly); scale
         * it with the text, so it only ever stops super-linear backtracking. */
        pcre2_set_match_limit(sc->mctx, (uint32_t)(10000000 + 4 * text_len));
        for (int i = 0; i < t->n_pretok; i++) {
            sc->md[i] = pcre2_match_data_create(1, NULL);
            if (!sc->md[i]) goto fail;
        }
    }
    if (text_len >= TOK_MEMO_MIN_TEXT) {
        /* about one slot per 8 bytes of text (a word or two), so the cache costs little to clear */
        size_t slots = 64;
        while (slots < text_len / 8 && slots < TOK_MEMO_SLOTS_MAX) slots *= 2;
        sc->memo = calloc(slots, sizeof *sc->memo);
        if (!sc->memo) goto fail;
        sc->memo_mask = slots - 1;
    }
    *out = sc;
    return MN_OK;
fail:
    mn_tok_scratch_free(sc);
    return MN_ENOMEM;
}

bool mn_tok_scratch_big_jit_stack(tok_scratch *sc) {
    if (sc->jit_stack) return false; /* already as big as allowed */
    /* Reserved up to the cap, committed only as far as a match needs; the cap bounds
     * pathological backtracking (the match then fails instead of using more memory). */
    sc->jit_stack = pcre2_jit_stack_create(32 * 1024, TOK_JIT_STACK_MAX, NULL);
    if (!sc->jit_stack) return false;
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit_stack);
    return true;
}

void mn_tok_scratch_free(tok_scratch *sc) {
    if (!sc) return;
    free(sc->buf);
    free(sc->sym_id);
    free(sc->sym_prev);
    free(sc->sym_next);
    free(sc->sym_start);
    free(sc->sym_len);
    free(sc->heap);
    for (int i = 0; i < TOK_PRETOK_MAX; i++) pcre2_match_data_free(sc->md[i]);
    pcre2_match_context_free(sc->mctx);
    pcre2_jit_stack_free(sc->jit_stack);
    free(sc->memo);
    free(sc);
}

static mn_status grow(void **p, size_t n, size_t elem) {
    void *q = realloc(*p, n * elem);
    if (!q) return MN_ENOMEM;
    *p = q;
    return MN_OK;
}

mn_status mn_tok_scratch_syms(tok_scratch *sc, int model, size_t n) {
    if (n > sc->sym_cap) {
        size_t cap = n < 64 ? 64 : n + n / 4;
        if (cap > SIZE_MAX / 16) return MN_ENOMEM;
        if (model == TOK_BPE) MN_FORWARD(grow((void **)&sc->sym_id, cap, sizeof(int32_t)));
        MN_FORWARD(grow((void **)&sc->sym_prev, cap, sizeof(int32_t)));
        MN_FORWARD(grow((void **)&sc->sym_next, cap, sizeof(int32_t)));
        if (model == TOK_SPM) {
            MN_FORWARD(grow((void **)&sc->sym_start, cap, sizeof(uint32_t)));
            MN_FORWARD(grow((void **)&sc->sym_len, cap, sizeof(uint32_t)));
        }
        sc->sym_cap = cap;
    }
    return mn_tok_scratch_heap(sc, n);
}

mn_status mn_tok_scratch_heap(tok_scratch *sc, size_t n) {
    if (n <= sc->heap_cap) return MN_OK;
    size_t cap = n < 64 ? 64 : n + n / 2;
    if (cap > SIZE_MAX / sizeof(tok_hent) - 8) return MN_ENOMEM;
    size_t bytes = (cap + 3) * sizeof(tok_hent); /* a multiple of 16; round up to the line size */
    bytes = (bytes + 63) & ~(size_t)63;
    tok_hent *h = aligned_alloc(64, bytes);
    if (!h) return MN_ENOMEM;
    if (sc->heap) memcpy(h, sc->heap, (sc->heap_cap + 3) * sizeof(tok_hent));
    free(sc->heap);
    sc->heap = h;
    sc->heap_cap = cap;
    return MN_OK;
}

mn_status mn_tok_scratch_buf(tok_scratch *sc, size_t n) {
    if (n <= sc->buf_cap) return MN_OK;
    size_t cap = n < 256 ? 256 : n;
    MN_FORWARD(grow((void **)&sc->buf, cap, 1));
    sc->buf_cap = cap;
    return MN_OK;
}

/* ---------------------------------------------------------------- memo cache --------------- */

bool mn_tok_memo_get(const tok_scratch *sc, const char *s, size_t n, tok_sink *sink) {
    if (!sc->memo || n == 0 || n > TOK_MEMO_KEY) return false;
    const tok_memo *e = &sc->memo[mn_tok_hash(s, n) & sc->memo_mask];
    if (e->key_len != n || memcmp(e->key, s, n) != 0) return false;
    for (int i = 0; i < e->n_ids; i++) tok_emit(sink, e->ids[i]);
    return true;
}

void mn_tok_memo_put(tok_scratch *sc, const char *s, size_t n, const int32_t *ids, size_t n_ids) {
    if (!sc->memo || n == 0 || n > TOK_MEMO_KEY || n_ids > TOK_MEMO_IDS) return;
    tok_memo *e = &sc->memo[mn_tok_hash(s, n) & sc->memo_mask];
    e->key_len = (uint8_t)n;
    e->n_ids = (uint8_t)n_ids;
    memcpy(e->key, s, n);
    memcpy(e->ids, ids, n_ids * sizeof *ids);
}
