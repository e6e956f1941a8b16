/*
 * test_tokenizer_vocab.c: minnow's tokenizer reproduces llama.cpp's token ids on the real
 * vocabularies in $MINNOW_SHARED/vocab/ (llama-spm, phi-3: SentencePiece; gpt-2, deepseek-coder,
 * falcon: byte-level BPE with their own pre-tokenizers).
 *
 * For each X: X.gguf.inp holds test strings separated by the exact bytes "\n__ggml_vocab_test__\n"
 * (the last piece counts too, even when empty) and X.gguf.out one line of expected ids per string.
 * Every string is encoded without BOS/EOS and without special-token parsing (SentencePiece still
 * adds its space prefix) and must give exactly the expected ids. Then the expected ids are decoded
 * (MN_DETOK_STRIP_SPACE, special tokens hidden) and must give back the string: every test string
 * of these five vocabularies is valid UTF-8 without "▁" and without control-token text, so all of
 * them are lossless; a vocabulary-specific exception would be listed in LOSSY below.
 *
 * The whole test is skipped (exit 77) when $MINNOW_SHARED/vocab is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "minnow.h"

static char g_vocab_dir[1024];

/* (vocabulary, test index) pairs whose decode is known not to round-trip; none today. */
static const struct {
    const char *vocab;
    int index;
} LOSSY[] = {{NULL, -1}};

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static int is_lossy(const char *vocab, int index) {
    for (size_t i = 0; i < sizeof LOSSY / sizeof LOSSY[0]; i++)
        if (LOSSY[i].vocab && !strcmp(LOSSY[i].vocab, vocab) && LOSSY[i].index == index) return 1;
    return 0;
}

static void run_vocab(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", g_vocab_dir, name);
    mn_tokenizer *tok = NULL;
    mn_error err = {0};
    mn_status s = mn_tokenizer_load(path, &tok, &err);
    if (s != MN_OK) fail_msg("%s: %s", path, err.message);

    size_t inp_len, out_len;
    char inp_path[1300], out_path[1300];
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    char *inp = read_all(inp_path, &inp_len);
    char *out = read_all(out_path, &out_len);
    assert_non_null(inp);
    assert_non_null(out);

    static const char SEP[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof SEP - 1;
    char *piece = inp, *line = out;
    int n_tests = 0, n_enc_ok = 0, n_dec_ok = 0, n_lossy = 0;
    for (;;) {
        char *end = strstr(piece, SEP); /* test strings have no NUL bytes */
        size_t plen = end ? (size_t)(end - piece) : inp_len - (size_t)(piece - inp);
        assert_non_null(line); /* as many lines as strings */
        char *eol = strchr(line, '\n');
        if (eol) *eol = '\0';

        int32_t expect[512];
        size_t n_expect = 0;
        for (char *p = line;;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) break;
            assert_true(n_expect < 512);
            expect[n_expect++] = (int32_t)v;
            p = q;
        }

        int32_t got[2048];
        size_t n_got = 0;
        s = mn_tokenize(tok, piece, plen, 0, got, 2048, &n_got);
        assert_int_equal(s, MN_OK);
        int ok = n_got == n_expect && memcmp(got, expect, n_got * sizeof *got) == 0;
        if (!ok) {
            printf("  %s #%d '%.*s'\n    expected:", name, n_tests, (int)plen, piece);
            for (size_t i = 0; i < n_expect; i++) printf(" %d", expect[i]);
            printf("\n    got:     ");
            for (size_t i = 0; i < n_got; i++) printf(" %d", got[i]);
            printf("\n");
        }
        n_enc_ok += ok;

        char text[8192];
        size_t n_text = 0;
        s = mn_detokenize(tok, expect, n_expect, MN_DETOK_STRIP_SPACE, text, sizeof text, &n_text);
        assert_int_equal(s, MN_OK);
        int round = n_text == plen && memcmp(text, piece, plen) == 0;
        if (is_lossy(name, n_tests)) {
            n_lossy++;
        } else {
            if (!round) printf("  %s #%d decode: '%.*s' != '%.*s'\n", name, n_tests, (int)n_text, text, (int)plen, piece);
            n_dec_ok += round;
        }

        n_tests++;
        line = eol ? eol + 1 : NULL;
        if (!end) break;
        piece = end + sep_len;
    }
    printf("%-15s encode %d/%d match llama.cpp, decode %d/%d round-trip (%d known lossy)\n", name, n_enc_ok,
           n_tests, n_dec_ok, n_tests - n_lossy, n_lossy);
    assert_true(n_tests > 40);
    assert_int_equal(n_enc_ok, n_tests);
    assert_int_equal(n_dec_ok, n_tests - n_lossy);
    free(inp);
    free(out);
    mn_tokenizer_free(tok);
}

static void test_llama_spm(void **state) { (void)state; run_vocab("llama-spm"); }
static void test_phi3(void **state) { (void)state; run_vocab("phi-3"); }
static void test_gpt2(void **state) { (void)state; run_vocab("gpt-2"); }
static void test_deepseek_coder(void **state) { (void)state; run_vocab("deepseek-coder"); }
static void test_falcon(void **state) { (void)state; run_vocab("falcon"); }

int main(void) {
    const char *shared = getenv("MINNOW_SHARED");
    struct stat st;
    if (!shared || snprintf(g_vocab_dir, sizeof g_vocab_dir, "%s/vocab", shared) >= (int)sizeof g_vocab_dir ||
        stat(g_vocab_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("skipped: $MINNOW_SHARED/vocab not found (MINNOW_SHARED=%s)\n", shared ? shared : "(unset)");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm), cmocka_unit_test(test_phi3),   cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_deepseek_coder), cmocka_unit_test(test_falcon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
