/*
 * tokenize.c: mn_tokenize, the public entry point: splits special tokens out of the text, then
 * hands each run of ordinary text to the model's algorithm (spm.c or bpe.c).
 *
 * Special tokens: a byte trie of the CONTROL, USER_DEFINED and UNKNOWN token texts is walked at
 * every position whose byte starts one of them; the longest match allowed by the flags wins, and
 * the leftmost match is taken first. USER_DEFINED tokens (tokens added to a vocabulary, like
 * DeepSeek-Coder's "ü") are always split out, as Hugging Face tokenizers and llama.cpp do and as
 * the reference ids require; CONTROL and UNKNOWN tokens only with MN_TOKENIZE_PARSE_SPECIAL, so
 * by default "<|im_end|>" typed by a user is plain text (BAD_INPUTS row 18). (llama.cpp matches
 * the longest special token over the whole text first; the two orders differ only when two
 * special texts overlap in the input.)
 *
 * SentencePiece adds its space prefix to the first run of text and to every run that follows a
 * special token, like llama.cpp. The work per call is O(n log n) in the text length (merges are
 * heap-driven), and the text is bounded by MN_TOKENIZE_MAX_BYTES.
 */
#include <string.h>

#include "tokenizer/tok_internal.h"

#define TOKENIZE_FLAGS (MN_TOKENIZE_ADD_BOS | MN_TOKENIZE_PARSE_SPECIAL | MN_TOKENIZE_ADD_EOS)

/* Length of the longest allowed special token starting at s[0..n), with its id; 0 when none. */
static size_t match_special(const mn_tokenizer *t, const uint8_t *s, size_t n, bool parse_special,
                            int32_t *id_out) {
    size_t best = 0;
    int32_t node = t->trie_root[s[0]];
    for (size_t k = 1;; k++) {
        int32_t id = t->trie[node].id;
        if (id >= 0) {
            int type = tok_type(t, id);
            if (parse_special || type == MN_TOKEN_USER_DEFINED) {
                best = k;
                *id_out = id;
            }
        }
        if (k >= n) break;
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[k]) c = t->trie[c].sibling;
        if (c < 0) break;
        node = c;
    }
    return best;
}

/* Every run of text starts the input or follows a special token, so SentencePiece prefixes each. */
static mn_status encode_text(const mn_tokenizer *t, tok_scratch *sc, const char *s, size_t n, tok_sink *sink) {
    if (t->model == TOK_SPM) return mn_spm_encode(t, sc, s, n, t->add_space_prefix, sink);
    return mn_bpe_encode(t, sc, s, n, sink);
}

mn_status mn_tokenize(const mn_tokenizer *tok, const char *text, size_t len, int flags, int32_t *out, size_t cap,
                      size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!text && len) || (!out && cap) || (flags & ~TOKENIZE_FLAGS)) return MN_EINVAL;
    if (len > MN_TOKENIZE_MAX_BYTES) return MN_ETOOBIG;
    tok_sink sink = {out, cap, 0};
    tok_scratch *sc;
    MN_FORWARD(mn_tok_scratch_create(tok, len, &sc));
    mn_status s = MN_OK;
    bool parse_special = (flags & MN_TOKENIZE_PARSE_SPECIAL) != 0;
    if ((flags & MN_TOKENIZE_ADD_BOS) && tok->add_bos && tok->bos >= 0) tok_emit(&sink, tok->bos);

    const uint8_t *u = (const uint8_t *)text;
    size_t run = 0;            /* start of the current run of ordinary text */
    for (size_t i = 0; i < len;) {
        int32_t id = -1;
        size_t m = tok->trie_root[u[i]] >= 0 ? match_special(tok, u + i, len - i, parse_special, &id) : 0;
        if (m == 0) {
            i++;
            continue;
        }
        if (i > run) {
            if ((s = encode_text(tok, sc, text + run, i - run, &sink)) != MN_OK) goto done;
        }
        tok_emit(&sink, id);
        i += m;
        run = i;
    }
    if (run < len) s = encode_text(tok, sc, text + run, len - run, &sink);
    if (s == MN_OK && (flags & MN_TOKENIZE_ADD_EOS) && tok->add_eos && tok->eos >= 0) tok_emit(&sink, tok->eos);
done:
    mn_tok_scratch_free(sc);
    if (s != MN_OK) return s;
    *n_out = sink.n;
    return sink.n > cap ? MN_EFULL : MN_OK;
}
