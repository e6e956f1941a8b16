/*
 * pretok.c: the byte-level BPE pre-tokenizer: the regexes that cut text into words before merges,
 * chosen by tokenizer.ggml.pre, compiled once per tokenizer with PCRE2 (UTF + UCP, so \p{L},
 * \p{N}, \s follow Unicode properties; JIT when available).
 *
 * The regex lists and their semantics follow llama.cpp (llama-vocab.cpp), because the reference
 * token ids come from it: a pre-tokenizer is a sequence of regexes applied in turn, and each one
 * refines the pieces the previous ones produced: inside a piece, every match becomes a piece and
 * so does every gap between matches (the text is never dropped). A later regex sees one piece at
 * a time as its whole subject, so lookaheads and `$` stop at the piece's end (PCRE2_DOLLAR_ENDONLY
 * makes `$` mean only the end, as in std::regex). The llama3 and qwen2 patterns use llama.cpp's
 * adapted form ('[sS] instead of (?i:'s)), which also keeps Unicode case folding from matching
 * "ſ" or the Kelvin sign.
 *
 * Splitting is depth-first: a piece found by regex k is passed straight to regex k + 1 and, after
 * the last regex, to the caller's word callback. So no list of pieces is ever built, memory does
 * not grow with the input, and the words come out in text order. Input must be valid UTF-8 (the
 * BPE encoder substitutes U+FFFD for bad bytes first), so matching skips PCRE2's UTF check. Empty
 * matches are refused (PCRE2_NOTEMPTY): every step consumes text, so a split cannot loop.
 */
#include <stdio.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------- the regex sets ------------ */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                                    \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"  \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                     \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"       \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* DeepSeek LLM's letter class, written with code points (it lists cased letters explicitly) */
#define RE_DEEPSEEK_LETTERS                                                                          \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}" \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}" \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"      \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"    \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"    \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"               \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"             \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"    \
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"      \
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"               \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"              \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"     \
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"    \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"                  \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"              \
    "\\x{1E900}-\\x{1E943}]+"
#define RE_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

typedef struct pretok_def {
    const char *names; /* tokenizer.ggml.pre values, space-separated */
    bool ignore_merges; /* a word that is already a token is kept whole (llama3) */
    bool add_bos;       /* default for add_bos_token */
    const char *re[TOK_PRETOK_MAX];
} pretok_def;

static const pretok_def PRETOKS[] = {
    {"default", false, false, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"gpt-2 gpt2 gpt-neox phi-2 mpt olmo jais roberta-bpe jina-es jina-de jina-v1-en jina-v2-es "
     "jina-v2-de jina-v2-code gigachat trillion",
     false, false, {RE_GPT2}},
    {"llama3 llama-v3 llama-bpe falcon3", true, true, {RE_LLAMA3}},
    {"dbrx smaug-bpe", false, false, {RE_LLAMA3}},
    {"qwen2 deepseek-r1-qwen megrez stablelm2 hunyuan", false, false, {RE_QWEN2}},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", false, false, {"\\p{N}", RE_GPT2}},
    {"falcon", false, false, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"deepseek-llm", false, false,
     {"[\\r\\n]", RE_DEEPSEEK_LETTERS,
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$",
      RE_CJK, "\\p{N}+"}},
    {"deepseek-coder", false, false, {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}},
    {"deepseek-v3", false, false,
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
      "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"bloom poro-chat gpt3-finnish", false, false, {RE_BLOOM}},
    {"viking", false, false, {RE_BLOOM, "\\p{N}"}},
};

/* Does the space-separated list names contain name[0..len)? */
static bool name_in(const char *names, const char *name, size_t len) {
    const char *p = names;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* ---------------------------------------------------------------- init ---------------------- */

mn_status mn_pretok_init(mn_tokenizer *t, const char *pre, size_t pre_len, mn_error *err) {
    const pretok_def *def = NULL;
    for (size_t i = 0; i < sizeof PRETOKS / sizeof PRETOKS[0] && !def; i++)
        if (name_in(PRETOKS[i].names, pre, pre_len)) def = &PRETOKS[i];
    if (!def)
        return mn_error_set(err, MN_EUNSUPPORTED,
                            "tokenizer.ggml.pre '%.*s' is not supported (supported: default, gpt-2, "
                            "gpt-neox, mpt, llama3 (llama-bpe), qwen2, smollm, starcoder, refact, "
                            "falcon, deepseek-llm, deepseek-coder, deepseek-v3, dbrx, bloom and aliases)",
                            (int)(pre_len > 40 ? 40 : pre_len), pre);
    snprintf(t->pre_name, sizeof t->pre_name, "%.*s", (int)pre_len, pre);
    t->ignore_merges = def->ignore_merges;
    t->add_bos = def->add_bos;
    for (int i = 0; i < TOK_PRETOK_MAX && def->re[i]; i++) {
        int code;
        PCRE2_SIZE where;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)def->re[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &where, NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            return mn_error_set(err, MN_EINTERNAL, "pre-tokenizer '%s' regex %d: %s at offset %zu",
                                t->pre_name, i, (const char *)msg, (size_t)where);
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreter when JIT is unavailable */
        t->pretok[t->n_pretok++] = re;
    }
    return MN_OK;
}

void mn_pretok_free(mn_tokenizer *t) {
    for (int i = 0; i < t->n_pretok; i++) pcre2_code_free(t->pretok[i]);
    t->n_pretok = 0;
}

/* ---------------------------------------------------------------- split --------------------- */

typedef struct split_ctx {
    const mn_tokenizer *t;
    tok_scratch *sc;
    tok_word_fn word;
    void *user;
} split_ctx;

static mn_status split_level(const split_ctx *c, int k, const char *s, size_t n) {
    if (n == 0) return MN_OK;
    if (k == c->t->n_pretok) return c->word(c->user, s, n);
    pcre2_match_data *md = c->sc->md[k];
    size_t off = 0;
    while (off < n) {
        int rc = pcre2_match(c->t->pretok[k], (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY, md,
                             c->sc->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && mn_tok_scratch_big_jit_stack(c->sc)) continue; /* retry */
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? MN_ENOMEM : MN_ETOOBIG; /* match/JIT limits */
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms > off) MN_FORWARD(split_level(c, k + 1, s + off, ms - off));
        MN_FORWARD(split_level(c, k + 1, s + ms, me - ms));
        off = me;
    }
    if (off < n) MN_FORWARD(split_level(c, k + 1, s + off, n - off));
    return MN_OK;
}

mn_status mn_pretok_split(const mn_tokenizer *t, tok_scratch *sc, const char *text, size_t len,
                          tok_word_fn word, void *user) {
    split_ctx c = {t, sc, word, user};
    return split_level(&c, 0, text, len);
}
