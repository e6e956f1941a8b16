/*
 * detok.c: ids -> bytes. mn_token_to_piece (one token), mn_detokenize (a whole sequence) and the
 * streaming detokenizer mn_detok.
 *
 * Every token's piece (its bytes) was decoded once at load (vocab.c), so decoding is a lookup and
 * a copy. CONTROL and UNKNOWN tokens produce their text only when the caller asks for special
 * tokens; USER_DEFINED ones always do; UNUSED ones produce nothing.
 *
 * SentencePiece's space prefix: a vocabulary that prepends a space when encoding gives it back
 * when decoding; with MN_DETOK_STRIP_SPACE, one leading space of the first piece that produces
 * any bytes is dropped (so [BOS, "▁Hello"] decodes to "Hello", as SentencePiece's decode does).
 *
 * The streaming detokenizer exists because a token can end in the middle of a UTF-8 character
 * (byte-fallback tokens, byte-level BPE pieces of emoji): it emits only complete characters,
 * holds back a trailing incomplete sequence (at most 3 bytes) until the next token completes it,
 * and replaces ill-formed bytes with U+FFFD, so its output is always valid UTF-8 (BAD_INPUTS
 * row 20). Its buffers are sized at creation from the longest piece, so pushing never allocates.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define DETOK_FLAGS (MN_DETOK_SPECIAL | MN_DETOK_STRIP_SPACE)

static const char *visible_piece(const mn_tokenizer *t, int32_t id, bool show_special, size_t *len) {
    const char *p = tok_piece(t, id, len);
    if ((t->attr[id] & TOK_HIDDEN) && !show_special) *len = 0;
    return p;
}

static bool strips_space(const mn_tokenizer *t, int flags) {
    return (flags & MN_DETOK_STRIP_SPACE) && t->model == TOK_SPM && t->add_space_prefix;
}

mn_status mn_token_to_piece(const mn_tokenizer *tok, int32_t id, int show_special, char *buf, size_t cap,
                            size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!buf && cap)) return MN_EINVAL;
    if (id < 0 || id >= tok->n_vocab) return MN_EINVAL;
    size_t len;
    const char *p = visible_piece(tok, id, show_special != 0, &len);
    memcpy(buf, p, len < cap ? len : cap);
    *n_out = len;
    return len > cap ? MN_EFULL : MN_OK;
}

mn_status mn_detokenize(const mn_tokenizer *tok, const int32_t *ids, size_t n_ids, int flags, char *buf,
                        size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!ids && n_ids) || (!buf && cap) || (flags & ~DETOK_FLAGS)) return MN_EINVAL;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_vocab) return MN_EINVAL;
    bool strip = strips_space(tok, flags);
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t len;
        const char *p = visible_piece(tok, ids[i], (flags & MN_DETOK_SPECIAL) != 0, &len);
        if (len == 0) continue;
        if (strip && p[0] == ' ') {
            p++;
            len--;
        }
        strip = false;
        if (total < cap) memcpy(buf + total, p, len < cap - total ? len : cap - total);
        total += len;
    }
    *n_out = total;
    return total > cap ? MN_EFULL : MN_OK;
}

/* ---------------------------------------------------------------- streaming ----------------- */

struct mn_detok {
    const mn_tokenizer *tok;
    int flags;
    bool started;      /* a piece with bytes has been seen (ends the space strip) */
    uint8_t pend[4];   /* trailing incomplete UTF-8 sequence held back */
    size_t n_pend;
    char *in;          /* pend + piece */
    size_t in_cap;
    char *out;         /* what the last call returned */
    size_t out_cap;
};

mn_status mn_detok_create(const mn_tokenizer *tok, int flags, mn_detok **out) {
    if (out) *out = NULL;
    if (!tok || !out || (flags & ~DETOK_FLAGS)) return MN_EINVAL;
    mn_detok *d = calloc(1, sizeof *d);
    if (!d) return MN_ENOMEM;
    d->tok = tok;
    d->flags = flags;
    d->in_cap = (size_t)tok->max_piece_len + 4;
    d->out_cap = 3 * d->in_cap; /* each ill-formed byte may become the 3 bytes of U+FFFD */
    d->in = malloc(d->in_cap);
    d->out = malloc(d->out_cap);
    if (!d->in || !d->out) {
        mn_detok_free(d);
        return MN_ENOMEM;
    }
    *out = d;
    return MN_OK;
}

void mn_detok_free(mn_detok *d) {
    if (!d) return;
    free(d->in);
    free(d->out);
    free(d);
}

void mn_detok_reset(mn_detok *d) {
    if (!d) return;
    d->started = false;
    d->n_pend = 0;
}

mn_status mn_detok_push(mn_detok *d, int32_t id, const char **text, size_t *len) {
    if (text) *text = "";
    if (len) *len = 0;
    if (!d || !text || !len) return MN_EINVAL;
    const mn_tokenizer *t = d->tok;
    if (id < 0 || id >= t->n_vocab) return MN_EINVAL;
    size_t plen;
    const char *p = visible_piece(t, id, (d->flags & MN_DETOK_SPECIAL) != 0, &plen);
    if (plen > 0 && !d->started) {
        d->started = true;
        if (strips_space(t, d->flags) && p[0] == ' ') {
            p++;
            plen--;
        }
    }
    memcpy(d->in, d->pend, d->n_pend);
    memcpy(d->in + d->n_pend, p, plen);
    size_t n = d->n_pend + plen, o = 0;
    d->n_pend = 0;
    const uint8_t *s = (const uint8_t *)d->in;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            d->out[o++] = (char)s[i++];
            continue;
        }
        uint32_t cp;
        bool trunc;
        size_t k = mn_tok_utf8_decode(s + i, n - i, &cp, &trunc);
        if (mn_tok_utf8_char(s + i, n - i)) {
            memcpy(d->out + o, s + i, k);
            o += k;
        } else if (trunc) { /* may still be completed by the next token */
            memcpy(d->pend, s + i, k);
            d->n_pend = k;
        } else {
            memcpy(d->out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    *text = d->out;
    *len = o;
    return MN_OK;
}

mn_status mn_detok_flush(mn_detok *d, const char **text, size_t *len) {
    if (text) *text = "";
    if (len) *len = 0;
    if (!d || !text || !len) return MN_EINVAL;
    size_t o = 0;
    if (d->n_pend > 0) { /* an incomplete sequence is one ill-formed subpart: one U+FFFD */
        memcpy(d->out, "\xEF\xBF\xBD", 3);
        o = 3;
        d->n_pend = 0;
    }
    *text = d->out;
    *len = o;
    return MN_OK;
}
