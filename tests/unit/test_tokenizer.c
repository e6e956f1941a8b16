/*
 * test_tokenizer.c: the tokenizer's behaviour on small vocabularies built in memory with the GGUF
 * writer (so every expected id is known by construction), plus a few checks on the real
 * vocabularies in $MINNOW_SHARED/vocab when present (those parts are skipped, not failed, without
 * it; the vocabulary-vector test is test_tokenizer_vocab.c).
 *
 * Covered: SentencePiece score-driven merges, byte fallback and decoding; byte-level BPE
 * rank-driven merges; special tokens with and without MN_TOKENIZE_PARSE_SPECIAL (control vs
 * user-defined, longest match); BOS/EOS flags, empty input, MN_EFULL measuring, MN_ETOOBIG;
 * streaming detokenization of characters split across tokens (held back, completed, flushed as
 * U+FFFD); ill-formed UTF-8 (overlong, lone surrogates, truncated, stray continuation bytes, NUL
 * bytes) encoded deterministically (SentencePiece: raw bytes round-trip; BPE: U+FFFD per ill-formed
 * subpart); 1 MB inputs without spaces finishing in bounded time (merges are O(n log n)); and
 * malformed vocabulary metadata (wrong element types, count mismatches, bad byte tokens, missing
 * arrays, unknown models and pre-tokenizers, ids out of range) refused with the key named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "minnow.h"
#include "tokenizer/tokenizer.h"

#define KEY(x) "tokenizer.ggml." x

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- tiny SentencePiece vocab -- */

/* ids 0..2 specials, 3..258 the byte tokens <0x00>..<0xFF>, then these NORMAL / special tokens */
static const struct {
    const char *text;
    float score;
    int32_t type;
} SPM_EXTRA[] = {
    {"\xE2\x96\x81", -1.0f, MN_TOKEN_NORMAL},            /* 259 "▁" */
    {"a", -2.0f, MN_TOKEN_NORMAL},                       /* 260 */
    {"b", -2.0f, MN_TOKEN_NORMAL},                       /* 261 */
    {"c", -2.0f, MN_TOKEN_NORMAL},                       /* 262 */
    {"ab", -1.5f, MN_TOKEN_NORMAL},                      /* 263 */
    {"bc", -0.5f, MN_TOKEN_NORMAL},                      /* 264: beats "ab" in "abc" */
    {"\xE2\x96\x81" "a", -1.8f, MN_TOKEN_NORMAL},        /* 265 "▁a" */
    {"h", -3.0f, MN_TOKEN_NORMAL},                       /* 266 */
    {"i", -3.0f, MN_TOKEN_NORMAL},                       /* 267 */
    {"hi", -1.0f, MN_TOKEN_NORMAL},                      /* 268 */
    {"\xE2\x96\x81" "hi", -0.1f, MN_TOKEN_NORMAL},       /* 269 "▁hi" */
    {"<|im_end|>", 0.0f, MN_TOKEN_CONTROL},              /* 270 */
    {"<tool>", 0.0f, MN_TOKEN_USER_DEFINED},             /* 271 */
    {"<tool_call>", 0.0f, MN_TOKEN_USER_DEFINED},        /* 272: longer, must win over <tool> */
    {"<|unused|>", 0.0f, MN_TOKEN_UNUSED},               /* 273 */
    {"\xE2\x96\x81\xE2\x96\x81", -0.2f, MN_TOKEN_NORMAL}, /* 274 "▁▁" */
};
enum {
    SPM_N_EXTRA = sizeof SPM_EXTRA / sizeof SPM_EXTRA[0],
    SPM_N = 259 + SPM_N_EXTRA,
    T_SPACE = 259, T_A = 260, T_B = 261, T_C = 262, T_AB = 263, T_BC = 264, T_SA = 265, T_HI = 268,
    T_SHI = 269, T_IM_END = 270, T_TOOL = 271, T_TOOL_CALL = 272, T_UNUSED = 273, T_SS = 274,
};
static int byte_id(int b) { return 3 + b; }

enum { OMIT_MODEL = 1, OMIT_TOKENS = 2, OMIT_MERGES = 4 };

static char spm_texts[SPM_N][16];

static mn_gguf_writer *spm_writer(int omit) {
    static const char *texts[SPM_N];
    float scores[SPM_N];
    int32_t types[SPM_N];
    const char *fixed[3] = {"<unk>", "<s>", "</s>"};
    int32_t fixed_types[3] = {MN_TOKEN_UNKNOWN, MN_TOKEN_CONTROL, MN_TOKEN_CONTROL};
    for (int i = 0; i < SPM_N; i++) {
        if (i < 3) {
            snprintf(spm_texts[i], sizeof spm_texts[i], "%s", fixed[i]);
            types[i] = fixed_types[i];
            scores[i] = 0;
        } else if (i < 259) {
            snprintf(spm_texts[i], sizeof spm_texts[i], "<0x%02X>", i - 3);
            types[i] = MN_TOKEN_BYTE;
            scores[i] = 0;
        } else {
            snprintf(spm_texts[i], sizeof spm_texts[i], "%s", SPM_EXTRA[i - 259].text);
            types[i] = SPM_EXTRA[i - 259].type;
            scores[i] = SPM_EXTRA[i - 259].score;
        }
        texts[i] = spm_texts[i];
    }
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    if (!(omit & OMIT_MODEL)) assert_int_equal(mn_gguf_set_str(w, KEY("model"), "llama"), MN_OK);
    if (!(omit & OMIT_TOKENS)) assert_int_equal(mn_gguf_set_arr_str(w, KEY("tokens"), texts, NULL, SPM_N), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, KEY("scores"), MN_GGUF_FLOAT32, scores, SPM_N), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, KEY("token_type"), MN_GGUF_INT32, types, SPM_N), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, KEY("bos_token_id"), 1), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, KEY("eos_token_id"), 2), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, KEY("unknown_token_id"), 0), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "tokenizer.chat_template", "{{ messages }}"), MN_OK);
    return w;
}

/* Serialises w, opens it from memory and builds the tokenizer; the GGUF and its buffer are gone
 * before the tokenizer is used, which also checks that the tokenizer copied what it needs. */
static mn_status open_vocab(mn_gguf_writer *w, mn_tokenizer **tok, mn_error *err) {
    void *buf = NULL;
    size_t size = 0;
    assert_int_equal(mn_gguf_writer_to_memory(w, &buf, &size, NULL), MN_OK);
    mn_gguf_writer_free(w);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(buf, size, &g, NULL), MN_OK);
    mn_status s = mn_tokenizer_from_gguf(g, tok, err);
    mn_gguf_close(g);
    memset(buf, 0xAB, size); /* any pointer kept into the file would now read garbage */
    free(buf);
    return s;
}

static mn_tokenizer *spm_vocab(void) {
    mn_tokenizer *tok = NULL;
    mn_error err = {0};
    mn_status s = open_vocab(spm_writer(0), &tok, &err);
    if (s != MN_OK) fail_msg("spm vocab: %s", err.message);
    return tok;
}

/* ---------------------------------------------------------------- tiny byte-level BPE vocab - */

static void bytelevel(int b, char out[4]) { /* GPT-2's byte -> character table, UTF-8 encoded */
    int n = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        int keep = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
        int c = keep ? x : 256 + n++;
        if (x == b) cp = c;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* ids 0..255: the byte characters in byte order; then merged tokens in merge order */
static const char *BPE_MERGES[] = {
    "h e",   /* 256 he */
    "l l",   /* 257 ll */
    "he ll", /* 258 hell */
    "hell o", /* 259 hello */
    "\xC4\xA0 hello", /* 260 "Ġhello" */
    "a a",   /* 261 aa */
    "aa aa", /* 262 aaaa */
    "aaaa aaaa", /* 263 aaaaaaaa */
    "x y",   /* not in vocabulary: ignored */
};
enum { BPE_N_MERGES = sizeof BPE_MERGES / sizeof BPE_MERGES[0], BPE_HE = 256, BPE_HELLO = 259,
       BPE_SHELLO = 260, BPE_AA = 261, BPE_A4 = 262, BPE_A8 = 263, BPE_EOT = 264, BPE_N = 265 };

static mn_gguf_writer *bpe_writer(int omit, const char *pre) {
    static char texts_buf[BPE_N][16];
    static const char *texts[BPE_N];
    for (int b = 0; b < 256; b++) bytelevel(b, texts_buf[b]);
    const char *merged[] = {"he", "ll", "hell", "hello", "\xC4\xA0hello", "aa", "aaaa", "aaaaaaaa", "<|endoftext|>"};
    for (int i = 0; i < 9; i++) snprintf(texts_buf[256 + i], sizeof texts_buf[0], "%s", merged[i]);
    for (int i = 0; i < BPE_N; i++) texts[i] = texts_buf[i];
    int32_t types[BPE_N];
    for (int i = 0; i < BPE_N; i++) types[i] = MN_TOKEN_NORMAL; /* <|endoftext|> too, like GPT-2's file */
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    if (!(omit & OMIT_MODEL)) assert_int_equal(mn_gguf_set_str(w, KEY("model"), "gpt2"), MN_OK);
    if (pre) assert_int_equal(mn_gguf_set_str(w, KEY("pre"), pre), MN_OK);
    if (!(omit & OMIT_TOKENS)) assert_int_equal(mn_gguf_set_arr_str(w, KEY("tokens"), texts, NULL, BPE_N), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, KEY("token_type"), MN_GGUF_INT32, types, BPE_N), MN_OK);
    if (!(omit & OMIT_MERGES))
        assert_int_equal(mn_gguf_set_arr_str(w, KEY("merges"), BPE_MERGES, NULL, BPE_N_MERGES), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, KEY("bos_token_id"), BPE_EOT), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, KEY("eos_token_id"), BPE_EOT), MN_OK);
    return w;
}

static mn_tokenizer *bpe_vocab(void) {
    mn_tokenizer *tok = NULL;
    mn_error err = {0};
    mn_status s = open_vocab(bpe_writer(0, "gpt-2"), &tok, &err);
    if (s != MN_OK) fail_msg("bpe vocab: %s", err.message);
    return tok;
}

/* ---------------------------------------------------------------- helpers ------------------- */

static size_t enc(const mn_tokenizer *tok, const char *s, size_t n, int flags, int32_t *ids, size_t cap) {
    size_t n_ids = 0;
    assert_int_equal(mn_tokenize(tok, s, n, flags, ids, cap, &n_ids), MN_OK);
    return n_ids;
}

static void expect_ids(const mn_tokenizer *tok, const char *s, int flags, const int32_t *want, size_t n_want) {
    int32_t got[256];
    size_t n = enc(tok, s, strlen(s), flags, got, 256);
    if (n != n_want || memcmp(got, want, n * sizeof *got) != 0) {
        char msg[1024];
        int o = snprintf(msg, sizeof msg, "'%s': got", s);
        for (size_t i = 0; i < n && o < 900; i++) o += snprintf(msg + o, sizeof msg - (size_t)o, " %d", got[i]);
        o += snprintf(msg + o, sizeof msg - (size_t)o, ", want");
        for (size_t i = 0; i < n_want && o < 1000; i++) o += snprintf(msg + o, sizeof msg - (size_t)o, " %d", want[i]);
        fail_msg("%s", msg);
    }
}
#define EXPECT_IDS(tok, s, flags, ...)                                                            \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        expect_ids(tok, s, flags, want_, sizeof want_ / sizeof want_[0]);                          \
    } while (0)

/* decode ids with flags into a NUL-terminated static-size buffer */
static size_t dec(const mn_tokenizer *tok, const int32_t *ids, size_t n, int flags, char *out, size_t cap) {
    size_t len = 0;
    assert_int_equal(mn_detokenize(tok, ids, n, flags, out, cap - 1, &len), MN_OK);
    out[len] = '\0';
    return len;
}

static int valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* Path of a real vocabulary, or NULL (the caller skips) */
static const char *shared_vocab(const char *name, char *buf, size_t cap) {
    const char *shared = getenv("MINNOW_SHARED");
    struct stat st;
    if (!shared) return NULL;
    snprintf(buf, cap, "%s/vocab/ggml-vocab-%s.gguf", shared, name);
    return stat(buf, &st) == 0 ? buf : NULL;
}

/* ---------------------------------------------------------------- SentencePiece ------------- */

static void test_spm_merges_and_prefix(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    assert_int_equal(mn_tokenizer_n_vocab(tok), SPM_N);
    /* "▁abc": pairs (▁,a) -1.8, (a,b) -1.5, (b,c) -0.5: "bc" merges first, which kills (a,b);
     * then "▁a". */
    EXPECT_IDS(tok, "abc", 0, T_SA, T_BC);
    EXPECT_IDS(tok, "hi", 0, T_SHI);
    EXPECT_IDS(tok, "hi hi", 0, T_SHI, T_SHI);
    /* "▁▁hi": (▁,▁) -0.2 merges before (h,i) -1.0; "▁▁hi" is no token, so ▁hi never forms */
    EXPECT_IDS(tok, " hi", 0, T_SS, T_HI);
    /* "▁ab": (a,b) -1.5 beats (▁,a) -1.8, and "▁ab" is no token */
    EXPECT_IDS(tok, "ab", MN_TOKENIZE_ADD_BOS, 1, T_SPACE, T_AB);
    EXPECT_IDS(tok, "ab", MN_TOKENIZE_ADD_BOS | MN_TOKENIZE_ADD_EOS, 1, T_SPACE, T_AB); /* add_eos off */
    mn_tokenizer_free(tok);
}

static void test_spm_byte_fallback(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    /* "é" (C3 A9) and "€" (E2 82 AC) have no tokens: their bytes become <0xNN> tokens */
    EXPECT_IDS(tok, "a\xC3\xA9", 0, T_SA, byte_id(0xC3), byte_id(0xA9));
    EXPECT_IDS(tok, "\xE2\x82\xAC", 0, T_SPACE, byte_id(0xE2), byte_id(0x82), byte_id(0xAC));
    EXPECT_IDS(tok, "z", 0, T_SPACE, byte_id('z'));
    const int32_t ids[] = {T_SA, byte_id(0xC3), byte_id(0xA9), T_SHI};
    char out[64];
    assert_int_equal(dec(tok, ids, 4, MN_DETOK_STRIP_SPACE, out, sizeof out), 6);
    assert_string_equal(out, "a\xC3\xA9 hi");
    assert_int_equal(dec(tok, ids, 4, 0, out, sizeof out), 7); /* without the strip: leading space */
    assert_string_equal(out, " a\xC3\xA9 hi");
    /* the byte pieces one by one */
    char piece[8];
    size_t n = 0;
    assert_int_equal(mn_token_to_piece(tok, byte_id(0xC3), 0, piece, sizeof piece, &n), MN_OK);
    assert_int_equal(n, 1);
    assert_int_equal((unsigned char)piece[0], 0xC3);
    assert_int_equal(mn_token_to_piece(tok, T_SHI, 0, piece, sizeof piece, &n), MN_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(piece, " hi", 3);
    mn_tokenizer_free(tok);
}

static void test_spm_roundtrip_any_bytes(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    unsigned seed = 12345;
    for (int iter = 0; iter < 200; iter++) {
        char text[64];
        size_t n = (size_t)(iter % 60);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) & 0xFF;
            text[i] = r < 64 ? "abc hi"[r % 6] : (char)r; /* mostly text, some raw bytes */
        }
        for (size_t i = 0; i + 3 <= n; i++) /* no "▁" in the input: it would decode as a space */
            if (!memcmp(text + i, "\xE2\x96\x81", 3)) text[i] = 'a';
        int32_t ids[512];
        size_t n_ids = enc(tok, text, n, 0, ids, 512);
        char back[256];
        size_t m = dec(tok, ids, n_ids, MN_DETOK_STRIP_SPACE, back, sizeof back);
        assert_int_equal(m, n);
        assert_memory_equal(back, text, n);
    }
    mn_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- BPE ----------------------- */

static void test_bpe_merges(void **state) {
    (void)state;
    mn_tokenizer *tok = bpe_vocab();
    assert_string_equal(mn_tokenizer_model_name(tok), "gpt2");
    assert_string_equal(mn_tokenizer_pre_name(tok), "gpt-2");
    EXPECT_IDS(tok, "hello", 0, BPE_HELLO);
    EXPECT_IDS(tok, "hello hello", 0, BPE_HELLO, BPE_SHELLO);
    EXPECT_IDS(tok, "he", 0, BPE_HE);
    /* ids 0..255 are the byte tokens, so the token of byte 'a' is 'a' */
    EXPECT_IDS(tok, "aaaaa", 0, BPE_A4, 'a');
    EXPECT_IDS(tok, "aaaaaaaaaaa", 0, BPE_A8, BPE_AA, 'a');
    EXPECT_IDS(tok, "xy", 0, 'x', 'y'); /* merge "x y" names no token: ignored */
    EXPECT_IDS(tok, " hello", 0, BPE_SHELLO);
    /* no BOS unless the vocabulary asks (gpt-2 does not) */
    EXPECT_IDS(tok, "he", MN_TOKENIZE_ADD_BOS, BPE_HE);
    assert_int_equal(mn_tokenizer_adds_bos(tok), 0);
    mn_tokenizer_free(tok);
}

static void test_bpe_roundtrip_valid_utf8(void **state) {
    (void)state;
    mn_tokenizer *tok = bpe_vocab();
#define S_(x) {x, sizeof(x) - 1}
    static const struct {
        const char *s;
        size_t len;
    } texts[] = {S_("hello world"), S_("  tabs\tand\nnewlines\r\n"), S_("caf\xC3\xA9 \xE2\x82\xAC 12345"),
                 S_("\xF0\x9F\xA6\x99 emoji"), S_("nul\0byte"), S_("")};
#undef S_
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int32_t ids[128];
        size_t n = enc(tok, texts[k].s, texts[k].len, 0, ids, 128);
        char back[128];
        size_t m = dec(tok, ids, n, MN_DETOK_STRIP_SPACE, back, sizeof back);
        assert_int_equal(m, texts[k].len);
        assert_memory_equal(back, texts[k].s, texts[k].len);
    }
    mn_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- special tokens ------------ */

static void test_special_tokens(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    /* without PARSE_SPECIAL the control token's text is ordinary text */
    int32_t ids[128];
    size_t n = enc(tok, "hi<|im_end|>", 12, 0, ids, 128);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], T_IM_END);
    char back[128];
    assert_int_equal(dec(tok, ids, n, MN_DETOK_STRIP_SPACE, back, sizeof back), 12);
    assert_string_equal(back, "hi<|im_end|>");
    /* with it, the token; the text after it gets the space prefix again (like llama.cpp) */
    EXPECT_IDS(tok, "hi<|im_end|>hi", MN_TOKENIZE_PARSE_SPECIAL, T_SHI, T_IM_END, T_SHI);
    EXPECT_IDS(tok, "<|im_end|>", MN_TOKENIZE_PARSE_SPECIAL, T_IM_END);
    EXPECT_IDS(tok, "<s>", MN_TOKENIZE_PARSE_SPECIAL | MN_TOKENIZE_ADD_BOS, 1, 1);
    /* user-defined tokens are split out either way; the longest one wins */
    EXPECT_IDS(tok, "<tool>", 0, T_TOOL);
    EXPECT_IDS(tok, "<tool_call>", 0, T_TOOL_CALL);
    EXPECT_IDS(tok, "hi<tool_call>hi", 0, T_SHI, T_TOOL_CALL, T_SHI);
    EXPECT_IDS(tok, "<tool><tool_call>", 0, T_TOOL, T_TOOL_CALL);
    EXPECT_IDS(tok, "<tool>_cal", 0, T_TOOL, T_SPACE, byte_id('_'), T_C, T_A, byte_id('l'));
    EXPECT_IDS(tok, "<tool_cal", 0, T_SPACE, byte_id('<'), byte_id('t'), byte_id('o'), byte_id('o'), byte_id('l'),
               byte_id('_'), T_C, T_A, byte_id('l')); /* a prefix of a special token is text */
    /* an unused token is never produced from text */
    n = enc(tok, "<|unused|>", 10, MN_TOKENIZE_PARSE_SPECIAL, ids, 128);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], T_UNUSED);
    /* decoding: control text only on request; user-defined always */
    const int32_t seq[] = {1, T_SHI, T_IM_END, T_TOOL};
    assert_int_equal(dec(tok, seq, 4, MN_DETOK_STRIP_SPACE, back, sizeof back), 8);
    assert_string_equal(back, "hi<tool>");
    dec(tok, seq, 4, MN_DETOK_SPECIAL | MN_DETOK_STRIP_SPACE, back, sizeof back);
    assert_string_equal(back, "<s> hi<|im_end|><tool>"); /* BOS shown: nothing to strip after it */
    mn_tokenizer_free(tok);

    /* BPE: <|endoftext|> is NORMAL in the file but treated as CONTROL (and EOG) */
    tok = bpe_vocab();
    n = enc(tok, "<|endoftext|>", 13, 0, ids, 128);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], BPE_EOT);
    EXPECT_IDS(tok, "hello<|endoftext|>", MN_TOKENIZE_PARSE_SPECIAL, BPE_HELLO, BPE_EOT);
    assert_true(mn_tokenizer_is_eog(tok, BPE_EOT));
    assert_false(mn_tokenizer_is_eog(tok, BPE_HELLO));
    assert_false(mn_tokenizer_is_eog(tok, -1));
    assert_false(mn_tokenizer_is_eog(tok, BPE_N));
    assert_int_equal(mn_tokenizer_token_type(tok, BPE_EOT), MN_TOKEN_CONTROL);
    mn_tokenizer_free(tok);
}

static void test_special_real_vocab(void **state) {
    (void)state;
    char path[1024];
    if (!shared_vocab("gpt-2", path, sizeof path)) {
        printf("skipped: gpt-2 vocabulary not found\n");
        skip();
    }
    mn_tokenizer *tok = NULL;
    assert_int_equal(mn_tokenizer_load(path, &tok, NULL), MN_OK);
    EXPECT_IDS(tok, "Hello<|endoftext|>", MN_TOKENIZE_PARSE_SPECIAL, 15496, 50256);
    int32_t ids[64];
    size_t n = enc(tok, "Hello<|endoftext|>", 18, 0, ids, 64);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 50256);
    assert_true(mn_tokenizer_is_eog(tok, 50256));
    assert_int_equal(mn_tokenizer_find(tok, "<|endoftext|>", 13), 50256);
    mn_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- empty, capacity, limits --- */

static void test_empty_and_capacity(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    size_t n = 99;
    assert_int_equal(mn_tokenize(tok, "", 0, 0, NULL, 0, &n), MN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mn_tokenize(tok, NULL, 0, 0, NULL, 0, &n), MN_OK);
    assert_int_equal(n, 0);
    int32_t ids[8];
    assert_int_equal(mn_tokenize(tok, "", 0, MN_TOKENIZE_ADD_BOS, ids, 8, &n), MN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    /* measuring with cap 0, then a short buffer */
    assert_int_equal(mn_tokenize(tok, "hi hi hi", 8, 0, NULL, 0, &n), MN_EFULL);
    assert_int_equal(n, 3);
    ids[1] = -7;
    assert_int_equal(mn_tokenize(tok, "hi hi hi", 8, 0, ids, 1, &n), MN_EFULL);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], T_SHI);
    assert_int_equal(ids[1], -7); /* nothing written past cap */
    /* bad arguments */
    assert_int_equal(mn_tokenize(NULL, "a", 1, 0, ids, 8, &n), MN_EINVAL);
    assert_int_equal(mn_tokenize(tok, "a", 1, 0, ids, 8, NULL), MN_EINVAL);
    assert_int_equal(mn_tokenize(tok, NULL, 1, 0, ids, 8, &n), MN_EINVAL);
    assert_int_equal(mn_tokenize(tok, "a", 1, 0, NULL, 8, &n), MN_EINVAL);
    assert_int_equal(mn_tokenize(tok, "a", 1, 1 << 9, ids, 8, &n), MN_EINVAL);
    /* too long: refused before reading the text */
    assert_int_equal(mn_tokenize(tok, "a", MN_TOKENIZE_MAX_BYTES + 1, 0, ids, 8, &n), MN_ETOOBIG);
    assert_int_equal(mn_tokenize(tok, "a", (size_t)1 << 31, 0, ids, 8, &n), MN_ETOOBIG);
    /* pieces: short buffer */
    char buf[2];
    assert_int_equal(mn_token_to_piece(tok, T_SHI, 0, buf, 2, &n), MN_EFULL);
    assert_int_equal(n, 3);
    assert_int_equal(mn_token_to_piece(tok, 1, 0, buf, 2, &n), MN_OK); /* hidden control: empty */
    assert_int_equal(n, 0);
    assert_int_equal(mn_token_to_piece(tok, 1, 1, buf, 0, &n), MN_EFULL);
    assert_int_equal(n, 3);
    mn_tokenizer_free(tok);
}

static void test_ids_out_of_range(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    char buf[16];
    size_t n = 5;
    const int32_t bad[] = {-1, SPM_N, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(mn_token_to_piece(tok, bad[i], 1, buf, sizeof buf, &n), MN_EINVAL);
        assert_int_equal(n, 0);
        const int32_t seq[] = {T_SHI, bad[i]};
        assert_int_equal(mn_detokenize(tok, seq, 2, 0, buf, sizeof buf, &n), MN_EINVAL);
        assert_null(mn_tokenizer_token_text(tok, bad[i], NULL));
        assert_int_equal(mn_tokenizer_token_type(tok, bad[i]), -1);
        assert_false(mn_tokenizer_is_eog(tok, bad[i]));
    }
    mn_detok *d = NULL;
    assert_int_equal(mn_detok_create(tok, 0, &d), MN_OK);
    const char *text;
    size_t len;
    assert_int_equal(mn_detok_push(d, -1, &text, &len), MN_EINVAL);
    assert_int_equal(mn_detok_push(d, SPM_N, &text, &len), MN_EINVAL);
    assert_int_equal(len, 0);
    mn_detok_free(d);
    mn_detok_free(NULL);
    mn_tokenizer_free(NULL);
    mn_tokenizer_free(tok);
}

static void test_getters(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    assert_int_equal(mn_tokenizer_bos(tok), 1);
    assert_int_equal(mn_tokenizer_eos(tok), 2);
    assert_int_equal(mn_tokenizer_unk(tok), 0);
    assert_int_equal(mn_tokenizer_eot(tok), T_IM_END); /* found by its text */
    assert_true(mn_tokenizer_is_eog(tok, 2));
    assert_true(mn_tokenizer_is_eog(tok, T_IM_END));
    assert_false(mn_tokenizer_is_eog(tok, 1));
    assert_int_equal(mn_tokenizer_adds_bos(tok), 1);
    assert_string_equal(mn_tokenizer_chat_template(tok), "{{ messages }}");
    size_t len = 0;
    assert_string_equal(mn_tokenizer_token_text(tok, T_SHI, &len), "\xE2\x96\x81hi");
    assert_int_equal(len, 5);
    assert_int_equal(mn_tokenizer_find(tok, "<tool>", 6), T_TOOL);
    assert_int_equal(mn_tokenizer_find(tok, "<nope>", 6), -1);
    assert_int_equal(mn_tokenizer_token_type(tok, 5), MN_TOKEN_BYTE);
    assert_string_equal(mn_tokenizer_model_name(tok), "llama");
    mn_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- streaming ----------------- */

/* pushes ids one by one, concatenates everything returned (plus the flush) */
static size_t stream(const mn_tokenizer *tok, int flags, const int32_t *ids, size_t n, char *out, size_t cap,
                     size_t *n_before_flush) {
    mn_detok *d = NULL;
    assert_int_equal(mn_detok_create(tok, flags, &d), MN_OK);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t len;
        assert_int_equal(mn_detok_push(d, ids[i], &t, &len), MN_OK);
        assert_true(valid_utf8(t, len)); /* every chunk is valid on its own */
        assert_true(o + len < cap);
        memcpy(out + o, t, len);
        o += len;
    }
    if (n_before_flush) *n_before_flush = o;
    const char *t;
    size_t len;
    assert_int_equal(mn_detok_flush(d, &t, &len), MN_OK);
    memcpy(out + o, t, len);
    o += len;
    out[o] = '\0';
    mn_detok_free(d);
    return o;
}

static void test_stream_split_characters(void **state) {
    (void)state;
    mn_tokenizer *tok = spm_vocab();
    /* "é" split over two byte tokens: nothing after the first, the character after the second */
    mn_detok *d = NULL;
    assert_int_equal(mn_detok_create(tok, MN_DETOK_STRIP_SPACE, &d), MN_OK);
    const char *t;
    size_t len;
    assert_int_equal(mn_detok_push(d, T_SA, &t, &len), MN_OK);
    assert_int_equal(len, 1); /* "▁a" -> "a" (prefix space stripped) */
    assert_memory_equal(t, "a", 1);
    assert_int_equal(mn_detok_push(d, byte_id(0xC3), &t, &len), MN_OK);
    assert_int_equal(len, 0);
    assert_int_equal(mn_detok_push(d, byte_id(0xA9), &t, &len), MN_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(t, "\xC3\xA9", 2);
    /* a 4-byte emoji over four tokens */
    const uint8_t emoji[4] = {0xF0, 0x9F, 0xA6, 0x99};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mn_detok_push(d, byte_id(emoji[i]), &t, &len), MN_OK);
        assert_int_equal(len, 0);
    }
    assert_int_equal(mn_detok_push(d, byte_id(emoji[3]), &t, &len), MN_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(t, emoji, 4);
    /* an incomplete sequence left at the end becomes one U+FFFD at flush */
    assert_int_equal(mn_detok_push(d, byte_id(0xE2), &t, &len), MN_OK);
    assert_int_equal(mn_detok_push(d, byte_id(0x82), &t, &len), MN_OK);
    assert_int_equal(len, 0);
    assert_int_equal(mn_detok_flush(d, &t, &len), MN_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(t, "\xEF\xBF\xBD", 3);
    assert_int_equal(mn_detok_flush(d, &t, &len), MN_OK);
    assert_int_equal(len, 0);
    /* an incomplete sequence interrupted by a new character: U+FFFD, then the character */
    assert_int_equal(mn_detok_push(d, byte_id(0xE2), &t, &len), MN_OK);
    assert_int_equal(mn_detok_push(d, T_A, &t, &len), MN_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(t, "\xEF\xBF\xBD" "a", 4);
    /* a stray continuation byte: U+FFFD at once, never held */
    assert_int_equal(mn_detok_push(d, byte_id(0x80), &t, &len), MN_OK);
    assert_int_equal(len, 3);
    /* reset: the next sequence strips its prefix space again */
    mn_detok_reset(d);
    assert_int_equal(mn_detok_push(d, T_SHI, &t, &len), MN_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(t, "hi", 2);
    assert_int_equal(mn_detok_push(d, T_SHI, &t, &len), MN_OK);
    assert_int_equal(len, 3);
    mn_detok_free(d);

    /* the stream equals the one-shot decode whenever the one-shot output is valid UTF-8 */
    const int32_t seq[] = {T_SA, byte_id(0xE2), byte_id(0x82), byte_id(0xAC), T_SHI, byte_id(0xC3), byte_id(0xA9)};
    char a[128], b[128];
    size_t na = stream(tok, MN_DETOK_STRIP_SPACE, seq, 7, a, sizeof a, NULL);
    size_t nb = dec(tok, seq, 7, MN_DETOK_STRIP_SPACE, b, sizeof b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_string_equal(a, "a\xE2\x82\xAC hi\xC3\xA9");
    assert_int_equal(mn_detok_create(tok, 1 << 7, &d), MN_EINVAL);
    assert_null(d);
    mn_tokenizer_free(tok);
}

static void test_stream_real_vocab(void **state) {
    (void)state;
    char path[1024];
    const char *names[] = {"gpt-2", "llama-spm"};
    int ran = 0;
    for (int v = 0; v < 2; v++) {
        if (!shared_vocab(names[v], path, sizeof path)) continue;
        mn_tokenizer *tok = NULL;
        assert_int_equal(mn_tokenizer_load(path, &tok, NULL), MN_OK);
        /* emoji and CJK: several of these characters are split across byte tokens */
        const char *text = "llama \xF0\x9F\xA6\x99 \xE6\x88\x91\xE6\x83\xB3 caf\xC3\xA9 \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F!";
        int32_t ids[128];
        size_t n = enc(tok, text, strlen(text), 0, ids, 128);
        int split = 0; /* how many tokens are not valid UTF-8 on their own */
        for (size_t i = 0; i < n; i++) {
            char p[64];
            size_t plen;
            assert_int_equal(mn_token_to_piece(tok, ids[i], 0, p, sizeof p, &plen), MN_OK);
            split += !valid_utf8(p, plen);
        }
        assert_true(split >= 2);
        char out[256];
        size_t before = 0;
        size_t m = stream(tok, MN_DETOK_STRIP_SPACE, ids, n, out, sizeof out, &before);
        assert_int_equal(m, strlen(text));
        assert_int_equal(before, m); /* nothing left for the flush */
        assert_string_equal(out, text);
        mn_tokenizer_free(tok);
        ran++;
    }
    if (!ran) {
        printf("skipped: no vocabulary in $MINNOW_SHARED/vocab\n");
        skip();
    }
}

/* ---------------------------------------------------------------- ill-formed UTF-8 ---------- */

static const struct {
    const char *bytes;
    size_t len;
    const char *bpe_text; /* what byte-level BPE encodes: U+FFFD per ill-formed subpart */
} BAD_UTF8[] = {
    {"a\xC0\xAF" "b", 4, "a\xEF\xBF\xBD\xEF\xBF\xBD" "b"},                  /* overlong '/' */
    {"\xE0\x80\xAF", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},             /* overlong, 3 bytes */
    {"x\xED\xA0\x80y", 5, "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy"},         /* lone surrogate D800 */
    {"\xED\xA0\xBD\xED\xB8\x80", 6, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* CESU pair */
    {"ab\xE2\x82", 4, "ab\xEF\xBF\xBD"},                                      /* truncated at the end */
    {"\xE2\x82z", 3, "\xEF\xBF\xBDz"},                                        /* truncated, then ASCII */
    {"\x80\xBF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},                              /* stray continuations */
    {"\xF5\xFF\xFE", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},              /* never valid */
    {"\xF4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* above U+10FFFF */
    {"\xE2\x81 x", 4, "\xEF\xBF\xBD x"},                                          /* stray lead, then a space */
    {"a\0b\0", 4, "a\0b\0"},                                                  /* NUL is valid (keep last) */
};

static void test_invalid_utf8(void **state) {
    (void)state;
    mn_tokenizer *spm = spm_vocab(), *bpe = bpe_vocab();
    for (size_t k = 0; k < sizeof BAD_UTF8 / sizeof BAD_UTF8[0]; k++) {
        const char *s = BAD_UTF8[k].bytes;
        size_t len = BAD_UTF8[k].len;
        int32_t a[128], b[128];
        char back[128];
        /* SentencePiece: byte fallback keeps the raw bytes; deterministic */
        size_t na = enc(spm, s, len, 0, a, 128), nb = enc(spm, s, len, 0, b, 128);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        assert_int_equal(dec(spm, a, na, MN_DETOK_STRIP_SPACE, back, sizeof back), len);
        assert_memory_equal(back, s, len);
        /* BPE: U+FFFD substitution, then an exact round trip of that text */
        na = enc(bpe, s, len, 0, a, 128);
        nb = enc(bpe, s, len, 0, b, 128);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        size_t want = strlen(BAD_UTF8[k].bpe_text);
        if (k == sizeof BAD_UTF8 / sizeof BAD_UTF8[0] - 1) want = 4; /* the NUL case */
        size_t m = dec(bpe, a, na, 0, back, sizeof back);
        assert_int_equal(m, want);
        assert_memory_equal(back, BAD_UTF8[k].bpe_text, want);
        /* the streaming decoder's output is valid UTF-8 for the SentencePiece ids */
        char out[256];
        na = enc(spm, s, len, 0, a, 128);
        m = stream(spm, MN_DETOK_STRIP_SPACE, a, na, out, sizeof out, NULL);
        assert_true(valid_utf8(out, m));
    }
    mn_tokenizer_free(spm);
    mn_tokenizer_free(bpe);
}

/* ---------------------------------------------------------------- long inputs --------------- */

static void time_long_input(const mn_tokenizer *tok, const char *what, const char *text, size_t len,
                            double limit_s) {
    size_t cap = MN_TOKENIZE_MAX_TOKENS(len);
    int32_t *ids = malloc(cap * sizeof *ids);
    assert_non_null(ids);
    double t0 = now_s();
    size_t n = 0;
    assert_int_equal(mn_tokenize(tok, text, len, 0, ids, cap, &n), MN_OK);
    double dt = now_s() - t0;
    printf("  %-34s %8zu bytes -> %7zu ids in %.3f s\n", what, len, n, dt);
    assert_true(n > 0);
    assert_true(dt < limit_s);
    free(ids);
}

static void test_long_input_without_spaces(void **state) {
    (void)state;
    const size_t len = 1u << 20;
    char *text = malloc(len);
    assert_non_null(text);
    mn_tokenizer *spm = spm_vocab(), *bpe = bpe_vocab();
    /* A quadratic merge loop would need ~10^12 steps on these; O(n log n) needs well under a
     * second (the limit leaves room for sanitizer builds and a loaded machine). */
    memset(text, 'a', len);
    time_long_input(bpe, "tiny BPE, 'a' x 1 MiB", text, len, 30.0);
    time_long_input(spm, "tiny SPM, 'a' x 1 MiB", text, len, 30.0);
    for (size_t i = 0; i < len; i++) text[i] = "abcabhi"[i % 7];
    time_long_input(spm, "tiny SPM, 'abcabhi...' 1 MiB", text, len, 30.0);
    char path[1024];
    const char *names[] = {"gpt-2", "llama-spm"};
    for (int v = 0; v < 2; v++) {
        if (!shared_vocab(names[v], path, sizeof path)) continue;
        mn_tokenizer *tok = NULL;
        assert_int_equal(mn_tokenizer_load(path, &tok, NULL), MN_OK);
        char what[64];
        memset(text, 'a', len);
        snprintf(what, sizeof what, "%s, 'a' x 1 MiB", names[v]);
        time_long_input(tok, what, text, len, 30.0);
        unsigned seed = 7;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = (char)('a' + (seed >> 16) % 26);
        }
        snprintf(what, sizeof what, "%s, random letters 1 MiB", names[v]);
        time_long_input(tok, what, text, len, 30.0);
        for (size_t i = 0; i + 3 <= len; i += 3) memcpy(text + i, "\xE4\xB8\x80", 3); /* 一 x 349525 */
        snprintf(what, sizeof what, "%s, CJK x 1 MiB", names[v]);
        time_long_input(tok, what, text, len - len % 3, 30.0);
        memset(text, '\n', len);
        snprintf(what, sizeof what, "%s, newlines x 1 MiB", names[v]);
        time_long_input(tok, what, text, len, 30.0);
        memset(text, ' ', len);
        text[len - 1] = 'x';
        snprintf(what, sizeof what, "%s, spaces x 1 MiB then x", names[v]);
        time_long_input(tok, what, text, len, 30.0);
        mn_tokenizer_free(tok);
    }
    mn_tokenizer_free(spm);
    mn_tokenizer_free(bpe);
    free(text);
}

/* ---------------------------------------------------------------- malformed metadata -------- */

/* needle "" means: err must stay untouched */
static void expect_refused(mn_gguf_writer *w, mn_status want, const char *needle) {
    mn_tokenizer *tok = (mn_tokenizer *)(uintptr_t)1;
    mn_error err = {0};
    mn_status s = open_vocab(w, &tok, &err);
    if (s != want || (*needle ? !strstr(err.message, needle) : err.message[0] != '\0'))
        fail_msg("got %d '%s', want %d with '%s'", s, err.message, want, needle);
    assert_null(tok);
}

static void test_malformed_vocab(void **state) {
    (void)state;
    float f[SPM_N];
    int32_t ints[SPM_N + 1];
    for (int i = 0; i < SPM_N; i++) f[i] = 0.5f;
    for (int i = 0; i < SPM_N + 1; i++) ints[i] = 1;
    mn_gguf_writer *w;

    /* no model key: "no vocabulary", err untouched (the model loader then runs without one) */
    expect_refused(spm_writer(OMIT_MODEL), MN_ENOTFOUND, "");
    w = spm_writer(0);
    mn_gguf_set_str(w, KEY("model"), "none");
    expect_refused(w, MN_ENOTFOUND, "");
    /* unknown models */
    w = spm_writer(0);
    mn_gguf_set_str(w, KEY("model"), "bert");
    expect_refused(w, MN_EUNSUPPORTED, "'bert' is not supported");
    w = spm_writer(0);
    mn_gguf_set_u32(w, KEY("model"), 7);
    expect_refused(w, MN_EBADFILE, KEY("model"));
    /* tokens: missing, wrong element type, empty */
    expect_refused(spm_writer(OMIT_TOKENS), MN_EBADFILE, KEY("tokens") " is missing");
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, KEY("tokens"), MN_GGUF_INT32, ints, SPM_N);
    expect_refused(w, MN_EBADFILE, KEY("tokens"));
    w = spm_writer(0);
    mn_gguf_set_str(w, KEY("tokens"), "abc");
    expect_refused(w, MN_EBADFILE, KEY("tokens"));
    w = spm_writer(0);
    mn_gguf_set_arr_str(w, KEY("tokens"), NULL, NULL, 0);
    expect_refused(w, MN_EBADFILE, KEY("tokens") " is empty");
    /* scores: wrong element type, count mismatch, NaN */
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, KEY("scores"), MN_GGUF_INT32, ints, SPM_N);
    expect_refused(w, MN_EBADFILE, KEY("scores"));
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, KEY("scores"), MN_GGUF_FLOAT32, f, SPM_N - 1);
    expect_refused(w, MN_EBADFILE, KEY("scores") " has 274 entries, expected 275");
    w = spm_writer(0);
    f[7] = NAN;
    mn_gguf_set_arr_data(w, KEY("scores"), MN_GGUF_FLOAT32, f, SPM_N);
    expect_refused(w, MN_EBADFILE, KEY("scores") "[7] is NaN");
    /* token_type: wrong element type, count mismatch */
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, KEY("token_type"), MN_GGUF_FLOAT32, f, SPM_N);
    expect_refused(w, MN_EBADFILE, KEY("token_type"));
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, KEY("token_type"), MN_GGUF_INT32, ints, SPM_N + 1);
    expect_refused(w, MN_EBADFILE, KEY("token_type") " has 276 entries, expected 275");
    /* BYTE tokens that are not <0xNN> */
    const char *bad_bytes[] = {"<0xZZ>", "<0x-1>", "<0x1>", "<0x100>", "0x41", ""};
    for (size_t k = 0; k < sizeof bad_bytes / sizeof bad_bytes[0]; k++) {
        const char *texts[SPM_N];
        w = spm_writer(0);
        for (int i = 0; i < SPM_N; i++) texts[i] = spm_texts[i];
        texts[3 + 0x41] = bad_bytes[k];
        mn_gguf_set_arr_str(w, KEY("tokens"), texts, NULL, SPM_N);
        expect_refused(w, MN_EBADFILE, "[68]");
    }
    /* ids out of range, wrong types */
    const char *id_keys[] = {KEY("bos_token_id"), KEY("eos_token_id"), KEY("unknown_token_id"),
                             KEY("padding_token_id"), KEY("eot_token_id"), KEY("eom_token_id")};
    for (size_t k = 0; k < sizeof id_keys / sizeof id_keys[0]; k++) {
        w = spm_writer(0);
        mn_gguf_set_u32(w, id_keys[k], SPM_N);
        expect_refused(w, MN_EBADFILE, id_keys[k]);
        w = spm_writer(0);
        mn_gguf_set_i32(w, id_keys[k], -1);
        expect_refused(w, MN_EBADFILE, id_keys[k]);
        w = spm_writer(0);
        mn_gguf_set_str(w, id_keys[k], "1");
        expect_refused(w, MN_EBADFILE, id_keys[k]);
    }
    w = spm_writer(0);
    mn_gguf_set_u32(w, KEY("add_bos_token"), 1);
    expect_refused(w, MN_EBADFILE, KEY("add_bos_token"));
    w = spm_writer(0);
    mn_gguf_set_arr_data(w, "tokenizer.chat_template", MN_GGUF_INT32, ints, 3);
    expect_refused(w, MN_EBADFILE, "tokenizer.chat_template");
    /* a SentencePiece vocabulary that cannot encode some byte */
    {
        const char *texts[SPM_N];
        w = spm_writer(0);
        int32_t types[SPM_N];
        for (int i = 0; i < SPM_N; i++) {
            texts[i] = spm_texts[i];
            types[i] = i == 0 ? MN_TOKEN_NORMAL : i < 3 ? MN_TOKEN_CONTROL : i < 259 ? MN_TOKEN_BYTE : MN_TOKEN_NORMAL;
        }
        texts[3 + 0x7F] = "<del>";
        types[3 + 0x7F] = MN_TOKEN_NORMAL;
        mn_gguf_set_arr_str(w, KEY("tokens"), texts, NULL, SPM_N);
        mn_gguf_set_arr_data(w, KEY("token_type"), MN_GGUF_INT32, types, SPM_N);
        mn_gguf_set_u32(w, KEY("unknown_token_id"), 0); /* still set, so accepted: unk exists */
        mn_tokenizer *tok = NULL;
        assert_int_equal(open_vocab(w, &tok, NULL), MN_OK);
        EXPECT_IDS(tok, "\x7F", 0, T_SPACE, 0); /* the byte without a token becomes <unk> */
        mn_tokenizer_free(tok);
    }

    /* BPE: merges missing, malformed, wrong type; unknown pre-tokenizer */
    expect_refused(bpe_writer(OMIT_MERGES, "gpt-2"), MN_EBADFILE, KEY("merges") " is missing");
    w = bpe_writer(0, "gpt-2");
    const char *bad_merges[] = {"h e", "hello"};
    mn_gguf_set_arr_str(w, KEY("merges"), bad_merges, NULL, 2);
    expect_refused(w, MN_EBADFILE, KEY("merges") "[1] 'hello'");
    w = bpe_writer(0, "gpt-2");
    mn_gguf_set_arr_data(w, KEY("merges"), MN_GGUF_INT32, ints, 4);
    expect_refused(w, MN_EBADFILE, KEY("merges"));
    expect_refused(bpe_writer(0, "klingon"), MN_EUNSUPPORTED, "'klingon' is not supported");
    w = bpe_writer(0, NULL);
    mn_gguf_set_u32(w, KEY("pre"), 3);
    expect_refused(w, MN_EBADFILE, KEY("pre"));
    /* an absent pre uses the default regexes */
    mn_tokenizer *tok = NULL;
    assert_int_equal(open_vocab(bpe_writer(0, NULL), &tok, NULL), MN_OK);
    assert_string_equal(mn_tokenizer_pre_name(tok), "default");
    EXPECT_IDS(tok, "hello hello", 0, BPE_HELLO, BPE_SHELLO);
    mn_tokenizer_free(tok);
    /* through a file: the "no vocabulary" message comes from mn_tokenizer_load */
    {
        char dir[] = "/tmp/mn_test_tok_XXXXXX", path[64];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/novocab.gguf", dir);
        w = spm_writer(OMIT_MODEL);
        assert_int_equal(mn_gguf_writer_write(w, path, NULL), MN_OK);
        mn_gguf_writer_free(w);
        mn_error e = {0};
        mn_tokenizer *t2 = NULL;
        assert_int_equal(mn_tokenizer_load(path, &t2, &e), MN_ENOTFOUND);
        assert_null(t2);
        assert_non_null(strstr(e.message, "no vocabulary"));
        assert_non_null(strstr(e.message, path));
        unlink(path);
        rmdir(dir);
    }
    /* a missing file */
    mn_error err = {0};
    assert_int_equal(mn_tokenizer_load("/nonexistent/x.gguf", &tok, &err), MN_ENOTFOUND);
    assert_null(tok);
    assert_non_null(strstr(err.message, "/nonexistent/x.gguf"));
    assert_int_equal(mn_tokenizer_load(NULL, &tok, NULL), MN_EINVAL);
    assert_int_equal(mn_tokenizer_from_gguf(NULL, &tok, NULL), MN_EINVAL);
}

/* every pre-tokenizer compiles and tokenizes a mixed string deterministically with round trip */
static void test_all_pretokenizers(void **state) {
    (void)state;
    const char *pres[] = {"default", "gpt-2", "gpt-neox", "mpt", "llama-bpe", "llama3", "qwen2", "smollm",
                          "starcoder", "refact", "falcon", "deepseek-llm", "deepseek-coder", "deepseek-v3",
                          "dbrx", "bloom", "viking", "command-r", "olmo", "stablelm2"};
    const char *text = "Hello, y'all! How're you 😁 ?我想在apple工作1314151天～ \n\n  x\t\r\n 3.14 ''''``";
    for (size_t k = 0; k < sizeof pres / sizeof pres[0]; k++) {
        mn_tokenizer *tok = NULL;
        mn_error err = {0};
        mn_status s = open_vocab(bpe_writer(0, pres[k]), &tok, &err);
        if (s != MN_OK) fail_msg("pre '%s': %s", pres[k], err.message);
        int32_t a[512], b[512];
        size_t na = enc(tok, text, strlen(text), 0, a, 512), nb = enc(tok, text, strlen(text), 0, b, 512);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        char back[512];
        size_t m = dec(tok, a, na, 0, back, sizeof back);
        assert_int_equal(m, strlen(text));
        assert_string_equal(back, text);
        mn_tokenizer_free(tok);
    }
}

/* ---------------------------------------------------------------- threads ------------------- */

/* One tokenizer, several threads encoding and decoding at once: all must get the single-threaded
 * result (the tokenizer is immutable; each call has its own scratch). Meaningful under TSan. */
typedef struct thread_job {
    const mn_tokenizer *tok;
    const char *text;
    size_t len;
    const int32_t *want;
    size_t n_want;
    int ok;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    j->ok = 1;
    int32_t ids[4096];
    for (int rep = 0; rep < 20 && j->ok; rep++) {
        size_t n = 0;
        if (mn_tokenize(j->tok, j->text, j->len, 0, ids, 4096, &n) != MN_OK || n != j->n_want ||
            memcmp(ids, j->want, n * sizeof *ids) != 0)
            j->ok = 0;
        char back[8192];
        size_t m = 0;
        if (mn_detokenize(j->tok, ids, n, 0, back, sizeof back, &m) != MN_OK || m != j->len ||
            memcmp(back, j->text, m) != 0)
            j->ok = 0;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    mn_tokenizer *tok = bpe_vocab();
    char text[6000];
    size_t len = 0;
    while (len + 20 < sizeof text) len += (size_t)snprintf(text + len, sizeof text - len, "hello aaaa %zu\n", len);
    int32_t want[4096];
    size_t n_want = enc(tok, text, len, 0, want, 4096);
    enum { N_THREADS = 4 };
    pthread_t th[N_THREADS];
    thread_job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (thread_job){tok, text, len, want, n_want, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_true(jobs[i].ok);
    }
    mn_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_merges_and_prefix),
        cmocka_unit_test(test_spm_byte_fallback),
        cmocka_unit_test(test_spm_roundtrip_any_bytes),
        cmocka_unit_test(test_bpe_merges),
        cmocka_unit_test(test_bpe_roundtrip_valid_utf8),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_special_real_vocab),
        cmocka_unit_test(test_empty_and_capacity),
        cmocka_unit_test(test_ids_out_of_range),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_stream_split_characters),
        cmocka_unit_test(test_stream_real_vocab),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_long_input_without_spaces),
        cmocka_unit_test(test_malformed_vocab),
        cmocka_unit_test(test_all_pretokenizers),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
