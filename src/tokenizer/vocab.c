/*
 * vocab.c: builds an mn_tokenizer from GGUF metadata (tokenizer.ggml.*), validating everything
 * first, and the small getters over it.
 *
 * Keys read (all under tokenizer.ggml. unless noted):
 *   model            string  "llama" (SentencePiece) | "gpt2" (byte-level BPE); absent, "none" or
 *                            "no_vocab": MN_ENOTFOUND with err untouched (a model without
 *                            vocabulary is not an error for the loader)
 *   tokens           [string] required, 1..MN_TOKENIZER_VOCAB_MAX entries; n_vocab is its count
 *   scores           [float32] optional, n_vocab entries, no NaN (SentencePiece merge priority)
 *   token_type       [int32]   optional, n_vocab entries (enum mn_token_type; unknown values are
 *                            UNDEFINED). Without it every token is NORMAL, except that a
 *                            SentencePiece token spelled exactly <0xNN> is taken as BYTE.
 *   merges           [string] "left right" lines, required for gpt2; rank = line number
 *   pre              string  the pre-tokenizer regex set for gpt2 (pretok.c); absent: "default"
 *   bos/eos/unknown/padding/eot/eom_token_id   integers < n_vocab
 *   add_bos_token, add_eos_token, add_space_prefix   bool
 *   tokenizer.chat_template                    string without NUL bytes
 * Any of these present with the wrong type, a count that is not n_vocab, an id out of range, a
 * BYTE token not spelled <0xNN> (<0xZZ>, <0x-1>) is MN_EBADFILE naming the key (and index). So is
 * a SentencePiece vocabulary that has neither a token for some byte (<0xNN>, or the byte itself
 * as a NORMAL token) nor an unknown token: it could not encode every text.
 *
 * Defaults follow llama.cpp so that files converted for it behave the same: SentencePiece gets
 * BOS 1, EOS 2, UNK 0, add_bos on and the space prefix on; BPE gets no BOS/EOS unless the file
 * says, and add_bos only for the llama3 pre-tokenizer. End-of-generation ids are EOS, EOT, EOM
 * and every token spelled like a known end marker (<|eot_id|>, <|im_end|>, <|end|>,
 * <end_of_turn>, <|endoftext|>, <|eom_id|>, <EOT>); those tokens are treated as CONTROL even when
 * the file marks them NORMAL (GPT-2's <|endoftext|> is), so plain text can never spell them
 * unless the caller asks for special parsing. Without an EOT id, the first token spelled like an
 * end-of-turn marker becomes EOT.
 *
 * Duplicate token texts are accepted; lookups by text find the lowest id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define KEY(x) "tokenizer.ggml." x

static const char *const EOG_TEXTS[] = {"<|eot_id|>",    "<|im_end|>",    "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|eom_id|>",    "<EOT>"};
static const char *const EOT_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<EOT>",
                                        ("<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>")};

/* ---------------------------------------------------------------- small helpers ------------- */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token, or -1 when s is not spelled that way. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

/* GPT-2's byte <-> character table: printable Latin-1 bytes map to themselves, the other 68
 * bytes (controls, space, 0x7F-0xA0, 0xAD) to U+0100.. in byte order. */
static void bytelevel_tables(uint16_t b2c[256], int16_t c2b[324]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        b2c[b] = (uint16_t)(keep ? b : 256 + n++);
    }
    for (int c = 0; c < 324; c++) c2b[c] = -1;
    for (int b = 0; b < 256; b++) c2b[b2c[b]] = (int16_t)b;
}

/* Byte-level text -> raw bytes. False when a character is outside the table. */
static bool bytelevel_decode(const int16_t c2b[324], const char *s, size_t n, char *out, size_t *out_n) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        bool trunc;
        size_t k = mn_tok_utf8_decode((const uint8_t *)s + i, n - i, &cp, &trunc);
        if (cp >= 324 || c2b[cp] < 0) return false;
        out[o++] = (char)c2b[cp];
        i += k;
    }
    *out_n = o;
    return true;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* Inserts every id whose attr has all bits of need (need 0: every id) with a non-empty key. */
static mn_status map_build(tok_map *m, const char *blob, const uint32_t *off, const uint8_t *attr,
                           int32_t n, uint8_t need) {
    m->blob = blob;
    m->off = off;
    int64_t count = 0;
    for (int32_t i = 0; i < n; i++)
        if ((attr[i] & need) == need && off[i + 1] - off[i] > 1) count++;
    uint64_t size = pow2_at_least((uint64_t)count * 2 + 1);
    m->slots = calloc(size, sizeof *m->slots);
    if (!m->slots) return MN_ENOMEM;
    m->mask = size - 1;
    for (int32_t i = 0; i < n; i++) {
        size_t len = off[i + 1] - off[i] - 1;
        if ((attr[i] & need) != need || len == 0) continue;
        if (mn_tok_map_find(m, blob + off[i], len) >= 0) continue; /* duplicate: lowest id wins */
        uint64_t h = mn_tok_hash(blob + off[i], len);
        uint64_t j = h & m->mask;
        while (m->slots[j]) j = (j + 1) & m->mask;
        m->slots[j] = ((h >> 32) << 32) | (uint64_t)(i + 1);
    }
    return MN_OK;
}

/* Reads an optional id key into *id (left as is when absent). */
static mn_status read_id(const mn_gguf *g, const char *key, int32_t n_vocab, int32_t *id, mn_error *err) {
    uint32_t v;
    mn_status s = mn_gguf_get_u32(g, key, &v, err);
    if (s == MN_ENOTFOUND) return MN_OK;
    MN_FORWARD(s);
    MN_RETURN_IF(v >= (uint32_t)n_vocab, err, MN_EBADFILE,
                 "%s = %u is out of range (the vocabulary has %d tokens)", key, v, n_vocab);
    *id = (int32_t)v;
    return MN_OK;
}

static mn_status read_bool(const mn_gguf *g, const char *key, bool *out, mn_error *err) {
    mn_status s = mn_gguf_get_bool(g, key, out, err);
    return s == MN_ENOTFOUND ? MN_OK : s;
}

/* An optional array of elem_type with exactly n_vocab entries; *out NULL when absent. */
static mn_status read_per_token(const mn_gguf *g, const char *key, uint32_t elem_type, int32_t n_vocab,
                                const mn_gguf_value **out, mn_error *err) {
    *out = NULL;
    mn_status s = mn_gguf_get_arr(g, key, elem_type, out, err);
    if (s == MN_ENOTFOUND) return MN_OK;
    MN_FORWARD(s);
    MN_RETURN_IF((*out)->v.arr.n != (uint64_t)n_vocab, err, MN_EBADFILE,
                 "%s has %llu entries, expected %d (one per token)", key,
                 (unsigned long long)(*out)->v.arr.n, n_vocab);
    return MN_OK;
}

/* ---------------------------------------------------------------- building steps ------------ */

static mn_status copy_texts(mn_tokenizer *t, const mn_gguf_value *tokens, mn_error *err) {
    uint64_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        total += mn_gguf_arr_str(tokens, (uint64_t)i).len + 1;
        MN_RETURN_IF(total > UINT32_MAX / 2, err, MN_EBADFILE, KEY("tokens") ": token texts exceed 2 GiB");
    }
    t->text = malloc(total);
    t->text_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->text_off);
    /* pieces are never longer than texts (every decoding shrinks or keeps the length) */
    t->piece = malloc(total);
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    MN_RETURN_IF(!t->text || !t->text_off || !t->piece || !t->piece_off, err, MN_ENOMEM, "out of memory");
    uint32_t o = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        mn_gguf_str s = mn_gguf_arr_str(tokens, (uint64_t)i);
        t->text_off[i] = o;
        memcpy(t->text + o, s.ptr, s.len);
        o += (uint32_t)s.len;
        t->text[o++] = '\0';
    }
    t->text_off[t->n_vocab] = o;
    return MN_OK;
}

static const char *text_of(const mn_tokenizer *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text + t->text_off[id];
}

static mn_status read_types(mn_tokenizer *t, const mn_gguf *g, mn_error *err) {
    const mn_gguf_value *types;
    MN_FORWARD(read_per_token(g, KEY("token_type"), MN_GGUF_INT32, t->n_vocab, &types, err));
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *s = text_of(t, i, &len);
        int type = MN_TOKEN_NORMAL;
        if (types) {
            int64_t v = mn_gguf_arr_int(types, (uint64_t)i);
            type = (v >= 0 && v <= MN_TOKEN_BYTE) ? (int)v : MN_TOKEN_UNDEFINED;
        } else if (t->model == TOK_SPM && len == 6 && parse_byte_token(s, len) >= 0) {
            type = MN_TOKEN_BYTE;
        }
        if (type == MN_TOKEN_BYTE)
            MN_RETURN_IF(parse_byte_token(s, len) < 0, err, MN_EBADFILE,
                         KEY("tokens") "[%d] '%.*s' has type BYTE but is not spelled <0xNN>", i,
                         (int)(len > 40 ? 40 : len), s);
        t->attr[i] = (uint8_t)type;
    }
    return MN_OK;
}

static mn_status read_scores(mn_tokenizer *t, const mn_gguf *g, mn_error *err) {
    const mn_gguf_value *scores;
    MN_FORWARD(read_per_token(g, KEY("scores"), MN_GGUF_FLOAT32, t->n_vocab, &scores, err));
    for (int32_t i = 0; i < t->n_vocab; i++) {
        double v = scores ? mn_gguf_arr_float(scores, (uint64_t)i) : 0.0;
        MN_RETURN_IF(isnan(v), err, MN_EBADFILE, KEY("scores") "[%d] is NaN", i);
        t->score[i] = (float)v + 0.0f; /* -0.0 -> +0.0: equal scores must order equal (spm.c) */
    }
    return MN_OK;
}

static void mark_control(mn_tokenizer *t, int32_t id) {
    int type = tok_type(t, id);
    if (type != MN_TOKEN_CONTROL) t->attr[id] = (uint8_t)((t->attr[id] & ~TOK_TYPE_MASK) | MN_TOKEN_CONTROL);
}

static void find_eog(mn_tokenizer *t) {
    if (t->eot < 0) {
        for (size_t k = 0; k < sizeof EOT_TEXTS / sizeof EOT_TEXTS[0]; k++) {
            int32_t id = mn_tok_map_find(&t->text_map, EOT_TEXTS[k], strlen(EOT_TEXTS[k]));
            if (id >= 0 && (t->eot < 0 || id < t->eot)) t->eot = id;
        }
        if (t->eot >= 0) mark_control(t, t->eot);
    }
    if (t->eom < 0) {
        t->eom = mn_tok_map_find(&t->text_map, "<|eom_id|>", 10);
        if (t->eom >= 0) mark_control(t, t->eom);
    }
    for (size_t k = 0; k < sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]; k++) {
        int32_t id = mn_tok_map_find(&t->text_map, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
        if (id < 0) continue;
        mark_control(t, id);
        t->attr[id] |= TOK_EOG;
    }
    if (t->eos >= 0) t->attr[t->eos] |= TOK_EOG;
    if (t->eot >= 0) t->attr[t->eot] |= TOK_EOG;
    if (t->eom >= 0) t->attr[t->eom] |= TOK_EOG;
}

/* Decoded bytes of every token, and the flags that depend on them. */
static void build_pieces(mn_tokenizer *t, const int16_t c2b[324]) {
    uint32_t o = 0;
    t->max_piece_len = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *s = text_of(t, i, &len);
        char *p = t->piece + o;
        size_t plen = 0;
        switch (tok_type(t, i)) {
        case MN_TOKEN_BYTE:
            p[0] = (char)parse_byte_token(s, len);
            plen = 1;
            break;
        case MN_TOKEN_NORMAL:
            if (t->model == TOK_BPE && bytelevel_decode(c2b, s, len, p, &plen)) {
                t->attr[i] |= TOK_IN_PIECEMAP;
                break;
            }
            if (t->model == TOK_BPE) { /* not byte-level text: shown as stored */
                memcpy(p, s, len);
                plen = len;
                break;
            }
            for (size_t k = 0; k < len;) { /* SentencePiece: "▁" is a space */
                if (k + 3 <= len && memcmp(s + k, "\xE2\x96\x81", 3) == 0) {
                    p[plen++] = ' ';
                    k += 3;
                } else {
                    p[plen++] = s[k++];
                }
            }
            break;
        case MN_TOKEN_CONTROL:
        case MN_TOKEN_UNKNOWN:
            t->attr[i] |= TOK_HIDDEN;
            memcpy(p, s, len);
            plen = len;
            break;
        case MN_TOKEN_USER_DEFINED:
            memcpy(p, s, len);
            plen = len;
            break;
        default: /* UNUSED, UNDEFINED: no text */
            break;
        }
        t->piece_off[i] = o;
        o += (uint32_t)plen;
        t->piece[o++] = '\0';
        if (plen > t->max_piece_len) t->max_piece_len = (uint32_t)plen;
    }
    t->piece_off[t->n_vocab] = o;
}

static mn_status build_byte_tokens(mn_tokenizer *t, mn_error *err) {
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    if (t->model == TOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_tok[b] = mn_tok_map_find(&t->piece_map, &c, 1);
        }
        return MN_OK;
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (tok_type(t, i) != MN_TOKEN_BYTE) continue;
        int b = (uint8_t)t->piece[t->piece_off[i]];
        if (t->byte_tok[b] < 0) t->byte_tok[b] = i;
    }
    for (int b = 0; b < 256; b++) {
        if (t->byte_tok[b] >= 0) continue;
        char c = (char)b; /* like llama.cpp: fall back to a NORMAL token spelled as that byte */
        int32_t id = mn_tok_map_find(&t->text_map, &c, 1);
        if (id >= 0 && tok_type(t, id) == MN_TOKEN_NORMAL) t->byte_tok[b] = id;
        MN_RETURN_IF(t->byte_tok[b] < 0 && t->unk < 0, err, MN_EBADFILE,
                     "SentencePiece vocabulary has no token for byte 0x%02X (no <0x%02X>) and no unknown "
                     "token, so some text could not be encoded",
                     b, b);
    }
    /* bytes that some mergeable token has right before a "▁" (see spm_joins_space) */
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (tok_type(t, i) != MN_TOKEN_NORMAL) continue;
        size_t len;
        const char *s = text_of(t, i, &len);
        for (size_t k = 1; k + 3 <= len; k++)
            if (memcmp(s + k, "\xE2\x96\x81", 3) == 0) t->spm_joins_space[(uint8_t)s[k - 1]] = 1;
    }
    return MN_OK;
}

static mn_status build_trie(mn_tokenizer *t) {
    size_t n_nodes = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int type = tok_type(t, i);
        if (type == MN_TOKEN_CONTROL || type == MN_TOKEN_USER_DEFINED || type == MN_TOKEN_UNKNOWN)
            n_nodes += t->text_off[i + 1] - t->text_off[i] - 1;
    }
    for (int b = 0; b < 256; b++) t->trie_root[b] = -1;
    if (n_nodes == 0) return MN_OK;
    if (n_nodes > INT32_MAX) return MN_ENOMEM;
    t->trie = malloc(n_nodes * sizeof *t->trie);
    if (!t->trie) return MN_ENOMEM;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int type = tok_type(t, i);
        if (type != MN_TOKEN_CONTROL && type != MN_TOKEN_USER_DEFINED && type != MN_TOKEN_UNKNOWN) continue;
        size_t len;
        const uint8_t *s = (const uint8_t *)text_of(t, i, &len);
        if (len == 0) continue;
        int32_t node = t->trie_root[s[0]];
        if (node < 0) {
            node = t->n_trie++;
            t->trie[node] = (tok_trie_node){-1, -1, -1, s[0]};
            t->trie_root[s[0]] = node;
        }
        for (size_t k = 1; k < len; k++) {
            int32_t c = t->trie[node].child;
            while (c >= 0 && t->trie[c].byte != s[k]) c = t->trie[c].sibling;
            if (c < 0) {
                c = t->n_trie++;
                t->trie[c] = (tok_trie_node){-1, t->trie[node].child, -1, s[k]};
                t->trie[node].child = c;
            }
            node = c;
        }
        if (t->trie[node].id < 0) t->trie[node].id = i;
    }
    return MN_OK;
}

static mn_status build_merges(mn_tokenizer *t, const mn_gguf *g, const int16_t c2b[324], mn_error *err) {
    const mn_gguf_value *merges;
    mn_status s = mn_gguf_get_arr(g, KEY("merges"), MN_GGUF_STRING, &merges, err);
    if (s == MN_ENOTFOUND)
        return mn_error_set(err, MN_EBADFILE, KEY("merges") " is missing (a gpt2 tokenizer needs it)");
    MN_FORWARD(s);
    uint64_t n = merges->v.arr.n;
    MN_RETURN_IF(n > INT32_MAX / 4, err, MN_EBADFILE, KEY("merges") " has too many entries (%llu)",
                 (unsigned long long)n);
    uint64_t size = pow2_at_least(n * 2 + 1);
    t->merges = malloc(size * sizeof *t->merges);
    MN_RETURN_IF(!t->merges, err, MN_ENOMEM, "out of memory");
    t->merges_mask = size - 1;
    for (uint64_t i = 0; i < size; i++) t->merges[i].key = UINT64_MAX;
    char *buf = NULL;
    size_t buf_cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        mn_gguf_str line = mn_gguf_arr_str(merges, i);
        const char *sp = line.len > 1 ? memchr(line.ptr + 1, ' ', line.len - 1) : NULL;
        if (!sp) {
            free(buf);
            return mn_error_set(err, MN_EBADFILE, KEY("merges") "[%llu] '%.*s' is not two tokens separated by a space",
                                (unsigned long long)i, (int)(line.len > 40 ? 40 : line.len), line.ptr);
        }
        size_t llen = (size_t)(sp - line.ptr), rlen = line.len - llen - 1;
        if (line.len > buf_cap) {
            char *nb = realloc(buf, line.len);
            if (!nb) {
                free(buf);
                return mn_error_set(err, MN_ENOMEM, "out of memory");
            }
            buf = nb;
            buf_cap = line.len;
        }
        size_t lraw, rraw;
        if (!bytelevel_decode(c2b, line.ptr, llen, buf, &lraw) ||
            !bytelevel_decode(c2b, sp + 1, rlen, buf + lraw, &rraw)) {
            t->n_merges_skipped++;
            continue;
        }
        int32_t l = mn_tok_map_find(&t->piece_map, buf, lraw);
        int32_t r = mn_tok_map_find(&t->piece_map, buf + lraw, rraw);
        int32_t res = mn_tok_map_find(&t->piece_map, buf, lraw + rraw);
        if (l < 0 || r < 0 || res < 0 || lraw == 0 || rraw == 0) {
            t->n_merges_skipped++;
            continue;
        }
        uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
        uint64_t j = tok_pair_hash(key) & t->merges_mask;
        while (t->merges[j].key != UINT64_MAX && t->merges[j].key != key) j = (j + 1) & t->merges_mask;
        if (t->merges[j].key == key) continue; /* the first (lowest-rank) line wins */
        t->merges[j] = (tok_merge){key, (int32_t)i, res};
        t->n_merges++;
    }
    free(buf);
    return MN_OK;
}

/* ---------------------------------------------------------------- load ---------------------- */

mn_status mn_tokenizer_from_gguf(const mn_gguf *g, mn_tokenizer **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    *out = NULL;
    MN_RETURN_IF(!g, err, MN_EINVAL, "gguf is NULL");

    mn_gguf_str model;
    mn_status s = mn_gguf_get_str(g, KEY("model"), &model, err);
    if (s == MN_ENOTFOUND) return MN_ENOTFOUND; /* err untouched: not an error for the model loader */
    MN_FORWARD(s);
    int kind = 0;
    if (model.len == 5 && !memcmp(model.ptr, "llama", 5)) kind = TOK_SPM;
    else if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4)) kind = TOK_BPE;
    else if ((model.len == 4 && !memcmp(model.ptr, "none", 4)) || (model.len == 8 && !memcmp(model.ptr, "no_vocab", 8)))
        return MN_ENOTFOUND;
    else
        return mn_error_set(err, MN_EUNSUPPORTED,
                            KEY("model") " '%.*s' is not supported (supported: llama = SentencePiece, gpt2 = "
                                         "byte-level BPE)",
                            (int)(model.len > 40 ? 40 : model.len), model.ptr);

    const mn_gguf_value *tokens;
    s = mn_gguf_get_arr(g, KEY("tokens"), MN_GGUF_STRING, &tokens, err);
    if (s == MN_ENOTFOUND) return mn_error_set(err, MN_EBADFILE, KEY("tokens") " is missing");
    MN_FORWARD(s);
    MN_RETURN_IF(tokens->v.arr.n == 0, err, MN_EBADFILE, KEY("tokens") " is empty");
    MN_RETURN_IF(tokens->v.arr.n > MN_TOKENIZER_VOCAB_MAX, err, MN_EBADFILE,
                 KEY("tokens") " has %llu entries (at most %d supported)", (unsigned long long)tokens->v.arr.n,
                 MN_TOKENIZER_VOCAB_MAX);

    mn_tokenizer *t = calloc(1, sizeof *t);
    MN_RETURN_IF(!t, err, MN_ENOMEM, "out of memory");
    t->model = kind;
    t->n_vocab = (int32_t)tokens->v.arr.n;
    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = -1;
    t->attr = calloc((size_t)t->n_vocab, 1);
    t->score = calloc((size_t)t->n_vocab, sizeof *t->score);
    if (!t->attr || !t->score) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory");
        goto fail;
    }
    if ((s = copy_texts(t, tokens, err)) != MN_OK) goto fail;
    if ((s = read_types(t, g, err)) != MN_OK) goto fail;
    if ((s = read_scores(t, g, err)) != MN_OK) goto fail;

    /* special ids and flags */
    if (kind == TOK_SPM) {
        if (t->n_vocab > 1) t->bos = 1;
        if (t->n_vocab > 2) t->eos = 2;
        t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
    }
    if ((s = read_id(g, KEY("bos_token_id"), t->n_vocab, &t->bos, err)) != MN_OK) goto fail;
    if ((s = read_id(g, KEY("eos_token_id"), t->n_vocab, &t->eos, err)) != MN_OK) goto fail;
    if ((s = read_id(g, KEY("unknown_token_id"), t->n_vocab, &t->unk, err)) != MN_OK) goto fail;
    if ((s = read_id(g, KEY("padding_token_id"), t->n_vocab, &t->pad, err)) != MN_OK) goto fail;
    if ((s = read_id(g, KEY("eot_token_id"), t->n_vocab, &t->eot, err)) != MN_OK) goto fail;
    if ((s = read_id(g, KEY("eom_token_id"), t->n_vocab, &t->eom, err)) != MN_OK) goto fail;

    if (kind == TOK_BPE) {
        mn_gguf_str pre = {"default", 7};
        s = mn_gguf_get_str(g, KEY("pre"), &pre, err);
        if (s != MN_OK && s != MN_ENOTFOUND) goto fail;
        if ((s = mn_pretok_init(t, pre.ptr, (size_t)pre.len, err)) != MN_OK) goto fail;
    }
    if ((s = read_bool(g, KEY("add_bos_token"), &t->add_bos, err)) != MN_OK) goto fail;
    if ((s = read_bool(g, KEY("add_eos_token"), &t->add_eos, err)) != MN_OK) goto fail;
    if ((s = read_bool(g, KEY("add_space_prefix"), &t->add_space_prefix, err)) != MN_OK) goto fail;
    if (kind == TOK_BPE) t->add_space_prefix = false; /* byte-level BPE has no dummy prefix */

    mn_gguf_str tmpl;
    s = mn_gguf_get_str(g, "tokenizer.chat_template", &tmpl, err);
    if (s == MN_OK) {
        if (memchr(tmpl.ptr, '\0', tmpl.len)) {
            s = mn_error_set(err, MN_EBADFILE, "tokenizer.chat_template contains a NUL byte");
            goto fail;
        }
        t->chat_template = malloc(tmpl.len + 1);
        if (!t->chat_template) {
            s = mn_error_set(err, MN_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(t->chat_template, tmpl.ptr, tmpl.len);
        t->chat_template[tmpl.len] = '\0';
    } else if (s != MN_ENOTFOUND) {
        goto fail;
    }

    /* lookup structures */
    uint16_t b2c[256];
    int16_t c2b[324];
    bytelevel_tables(b2c, c2b);
    s = map_build(&t->text_map, t->text, t->text_off, t->attr, t->n_vocab, 0);
    if (s != MN_OK) goto oom;
    find_eog(t);
    build_pieces(t, c2b);
    if (kind == TOK_BPE) {
        s = map_build(&t->piece_map, t->piece, t->piece_off, t->attr, t->n_vocab, TOK_IN_PIECEMAP);
        if (s != MN_OK) goto oom;
    }
    if ((s = build_byte_tokens(t, err)) != MN_OK) goto fail;
    if ((s = build_trie(t)) != MN_OK) goto oom;
    if (kind == TOK_BPE && (s = build_merges(t, g, c2b, err)) != MN_OK) goto fail;

    *out = t;
    return MN_OK;
oom:
    s = mn_error_set(err, MN_ENOMEM, "out of memory");
fail:
    mn_tokenizer_free(t);
    return s;
}

mn_status mn_tokenizer_load(const char *path, mn_tokenizer **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    *out = NULL;
    MN_RETURN_IF(!path, err, MN_EINVAL, "path is NULL");
    mn_gguf *g;
    mn_status s = mn_gguf_open(path, &g, err);
    if (s == MN_OK) {
        s = mn_tokenizer_from_gguf(g, out, err);
        if (s == MN_ENOTFOUND)
            mn_error_set(err, s, "no vocabulary (" KEY("model") " is absent, \"none\" or \"no_vocab\")");
        mn_gguf_close(g);
    }
    if (s != MN_OK && err) mn_error_prefix(err, "%s", path);
    return s;
}

void mn_tokenizer_free(mn_tokenizer *t) {
    if (!t) return;
    mn_pretok_free(t);
    free(t->attr);
    free(t->score);
    free(t->text);
    free(t->text_off);
    free(t->piece);
    free(t->piece_off);
    free(t->text_map.slots);
    free(t->piece_map.slots);
    free(t->merges);
    free(t->trie);
    free(t->chat_template);
    free(t);
}

/* ---------------------------------------------------------------- getters ------------------- */

int32_t mn_tokenizer_n_vocab(const mn_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t mn_tokenizer_bos(const mn_tokenizer *t) { return t ? t->bos : -1; }
int32_t mn_tokenizer_eos(const mn_tokenizer *t) { return t ? t->eos : -1; }
int32_t mn_tokenizer_eot(const mn_tokenizer *t) { return t ? t->eot : -1; }
int32_t mn_tokenizer_eom(const mn_tokenizer *t) { return t ? t->eom : -1; }
int32_t mn_tokenizer_unk(const mn_tokenizer *t) { return t ? t->unk : -1; }
int32_t mn_tokenizer_pad(const mn_tokenizer *t) { return t ? t->pad : -1; }

int mn_tokenizer_is_eog(const mn_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && (t->attr[id] & TOK_EOG) != 0;
}

int mn_tokenizer_adds_bos(const mn_tokenizer *t) { return t && t->add_bos && t->bos >= 0; }

const char *mn_tokenizer_chat_template(const mn_tokenizer *t) { return t ? t->chat_template : NULL; }

const char *mn_tokenizer_token_text(const mn_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    size_t n;
    const char *s = text_of(t, id, &n);
    if (len) *len = n;
    return s;
}

int mn_tokenizer_token_type(const mn_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return -1;
    return tok_type(t, id);
}

int32_t mn_tokenizer_find(const mn_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return -1;
    return mn_tok_map_find(&t->text_map, text ? text : "", len);
}

const char *mn_tokenizer_model_name(const mn_tokenizer *t) {
    return !t ? "" : t->model == TOK_SPM ? "llama" : "gpt2";
}

const char *mn_tokenizer_pre_name(const mn_tokenizer *t) { return t ? t->pre_name : ""; }
