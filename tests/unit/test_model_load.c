/*
 * test_model_load.c: the model loader's validation (BAD_INPUTS row 11 and the tensor bindings).
 * A tiny valid llama model is built with the GGUF writer; each test breaks one thing (a
 * hyper-parameter out of range, a missing or misshapen tensor, an unsupported architecture or
 * type, a vocabulary that disagrees with the embedding) and checks the loader refuses it with
 * the right status and a message naming the field, never crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf/gguf.h"
#include "kernels/types.h"
#include "minnow.h"

enum { EMBD = 32, FF = 64, HEADS = 4, KV_HEADS = 2, LAYERS = 2, VOCAB = 40 };

/* What to break in the model written by make_model. */
typedef struct breakage {
    const char *arch;         /* general.architecture (NULL: "llama") */
    const char *skip_key;     /* metadata key left out */
    const char *u32_key;      /* metadata key overridden with u32_val */
    uint32_t u32_val;
    const char *skip_tensor;  /* tensor left out */
    const char *wide_tensor;  /* tensor written with ne[0] + 32 */
    int32_t matrix_type;      /* type of the 2-D weights (0: f32) */
    int vocab;                /* tokens in the vocabulary (0: none written) */
} breakage;

static float g_data[EMBD * 256 * 4]; /* zeros are fine: shapes matter here, not values */
static char g_path[64];

static void add(mn_gguf_writer *w, const breakage *b, const char *name, int64_t ne0, int64_t ne1, int32_t type) {
    if (b->skip_tensor && !strcmp(b->skip_tensor, name)) return;
    if (b->wide_tensor && !strcmp(b->wide_tensor, name)) ne0 += 32;
    int64_t ne[2] = {ne0, ne1};
    assert_int_equal(mn_gguf_add_tensor(w, name, ne1 > 1 ? type : MN_TYPE_F32, ne1 > 1 ? 2 : 1, ne, g_data), MN_OK);
}

static void set_u32(mn_gguf_writer *w, const breakage *b, const char *key, uint32_t v) {
    if (b->skip_key && !strcmp(b->skip_key, key)) return;
    assert_int_equal(mn_gguf_set_u32(w, key, v), MN_OK);
}

/* Writes the model to g_path. */
static void make_model(const breakage *b) {
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    const char *arch = b->arch ? b->arch : "llama";
    int32_t mt = b->matrix_type ? b->matrix_type : MN_TYPE_F32;
    assert_int_equal(mn_gguf_set_str(w, "general.architecture", arch), MN_OK);
    char key[96];
#define K(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    set_u32(w, b, K("embedding_length"), EMBD);
    set_u32(w, b, K("block_count"), LAYERS);
    set_u32(w, b, K("feed_forward_length"), FF);
    set_u32(w, b, K("attention.head_count"), HEADS);
    set_u32(w, b, K("attention.head_count_kv"), KV_HEADS);
    set_u32(w, b, K("context_length"), 64);
#undef K
    if (b->u32_key) /* a key set twice keeps the last value */
        assert_int_equal(mn_gguf_set_u32(w, b->u32_key, b->u32_val), MN_OK);
    if (b->vocab > 0) {
        const char *toks[VOCAB + 8];
        char buf[VOCAB + 8][16];
        for (int i = 0; i < b->vocab; i++) {
            snprintf(buf[i], sizeof buf[i], "t%d", i);
            toks[i] = buf[i];
        }
        assert_int_equal(mn_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"), MN_OK);
        assert_int_equal(mn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, (uint64_t)b->vocab), MN_OK);
        assert_int_equal(mn_gguf_set_arr_str(w, "tokenizer.ggml.merges", toks, NULL, 0), MN_OK);
    }
    int hd = EMBD / HEADS, kv = hd * KV_HEADS;
    add(w, b, "token_embd.weight", EMBD, VOCAB, mt);
    add(w, b, "output_norm.weight", EMBD, 1, MN_TYPE_F32);
    for (int l = 0; l < LAYERS; l++) {
        char n[64];
#define T(fmt, a, c)                        \
    snprintf(n, sizeof n, fmt, l);          \
    add(w, b, n, a, c, mt)
        T("blk.%d.attn_norm.weight", EMBD, 1);
        T("blk.%d.attn_q.weight", EMBD, EMBD);
        T("blk.%d.attn_k.weight", EMBD, kv);
        T("blk.%d.attn_v.weight", EMBD, kv);
        T("blk.%d.attn_output.weight", EMBD, EMBD);
        T("blk.%d.ffn_norm.weight", EMBD, 1);
        T("blk.%d.ffn_gate.weight", EMBD, FF);
        T("blk.%d.ffn_up.weight", EMBD, FF);
        T("blk.%d.ffn_down.weight", FF, EMBD);
#undef T
    }
    assert_int_equal(mn_gguf_writer_write(w, g_path, NULL), MN_OK);
    mn_gguf_writer_free(w);
}

/* Loads g_path expecting `want`; when it fails, the message must contain `needle`. */
static void expect_load(mn_status want, const char *needle) {
    mn_model *m = NULL;
    mn_error err = {0};
    mn_status s = mn_model_load(g_path, NULL, &m, &err);
    if (s != want) fail_msg("status %d (%s), want %d", s, err.message, want);
    if (want == MN_OK) {
        assert_non_null(m);
        mn_model_free(m);
        return;
    }
    assert_null(m);
    if (!strstr(err.message, needle)) fail_msg("message '%s' lacks '%s'", err.message, needle);
}

static void test_valid_model_loads_and_runs(void **state) {
    (void)state;
    breakage b = {0};
    make_model(&b);
    mn_model *m = NULL;
    assert_int_equal(mn_model_load(g_path, NULL, &m, NULL), MN_OK);
    mn_model_info info;
    mn_model_get_info(m, &info);
    assert_int_equal(info.n_vocab, VOCAB);
    assert_int_equal(info.n_layer, LAYERS);
    assert_string_equal(info.arch, "llama");
    assert_null(mn_model_tokenizer(m));
    mn_context *c = NULL;
    assert_int_equal(mn_context_create(m, NULL, &c, NULL), MN_OK);
    assert_int_equal(mn_context_n_ctx(c), 64);
    int32_t tok[3] = {1, 2, 3}, pos[3] = {0, 1, 2};
    mn_batch batch = {3, tok, pos, NULL, NULL};
    assert_int_equal(mn_context_eval(c, &batch), MN_OK);
    assert_non_null(mn_context_logits(c, 0));
    mn_context_free(c);
    mn_model_free(m);
}

static void test_hparams_out_of_range(void **state) {
    (void)state;
    struct {
        const char *key;
        uint32_t val;
        const char *needle;
    } cases[] = {
        {"llama.block_count", 0, "llama.block_count"},
        {"llama.block_count", 100000, "llama.block_count"},
        {"llama.attention.head_count", 0, "llama.attention.head_count"},
        {"llama.attention.head_count", 5, "not a multiple"}, /* 32 % 5 != 0 */
        {"llama.attention.head_count_kv", 3, "head_count_kv"},
        {"llama.embedding_length", 0, "llama.embedding_length"},
        {"llama.feed_forward_length", 0, "llama.feed_forward_length"},
        {"llama.rope.dimension_count", 0, "rope.dimension_count"},
        {"llama.rope.dimension_count", 16, "rope.dimension_count"}, /* > head dim 8 */
        {"llama.rope.dimension_count", 7, "rope.dimension_count"},  /* odd */
        {"llama.context_length", 0, "llama.context_length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        breakage b = {.u32_key = cases[i].key, .u32_val = cases[i].val};
        make_model(&b);
        expect_load(MN_EBADFILE, cases[i].needle);
    }
}

static void test_missing_and_misshapen(void **state) {
    (void)state;
    breakage b1 = {.skip_key = "llama.embedding_length"};
    make_model(&b1);
    expect_load(MN_EBADFILE, "llama.embedding_length");
    breakage b2 = {.skip_tensor = "blk.1.ffn_down.weight"};
    make_model(&b2);
    expect_load(MN_EBADFILE, "blk.1.ffn_down.weight");
    breakage b3 = {.wide_tensor = "blk.0.attn_k.weight"};
    make_model(&b3);
    expect_load(MN_EBADFILE, "blk.0.attn_k.weight");
    breakage b4 = {.skip_tensor = "token_embd.weight"};
    make_model(&b4);
    expect_load(MN_EBADFILE, "token_embd.weight");
    breakage b5 = {.skip_tensor = "output_norm.weight"};
    make_model(&b5);
    expect_load(MN_EBADFILE, "output_norm.weight");
}

static void test_unsupported(void **state) {
    (void)state;
    breakage b1 = {.arch = "mamba"};
    make_model(&b1);
    expect_load(MN_EUNSUPPORTED, "mamba");
    breakage b2 = {.arch = "qwen2"}; /* qwen2 needs q/k/v biases */
    make_model(&b2);
    expect_load(MN_EBADFILE, "attn_q.bias");
    breakage b3 = {.matrix_type = MN_TYPE_I8}; /* a type minnow has no kernels for */
    make_model(&b3);
    expect_load(MN_EUNSUPPORTED, "cannot compute");
}

static void test_vocab_disagrees_with_embedding(void **state) {
    (void)state;
    breakage b = {.vocab = VOCAB - 3};
    make_model(&b);
    expect_load(MN_EBADFILE, "vocabulary");
    breakage ok = {.vocab = VOCAB};
    make_model(&ok);
    expect_load(MN_OK, NULL);
}

static void test_not_a_model(void **state) {
    (void)state;
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    fputs("definitely not a gguf file", f);
    fclose(f);
    expect_load(MN_EBADFILE, "magic");
    mn_model *m = NULL;
    assert_int_equal(mn_model_load(NULL, NULL, &m, NULL), MN_EINVAL);
    assert_int_not_equal(mn_model_load("/nonexistent/x.gguf", NULL, &m, NULL), MN_OK);
    mn_model_free(NULL);
}

int main(void) {
    snprintf(g_path, sizeof g_path, "/tmp/mn_model_load_%d.gguf", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_model_loads_and_runs),
        cmocka_unit_test(test_hparams_out_of_range),
        cmocka_unit_test(test_missing_and_misshapen),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_vocab_disagrees_with_embedding),
        cmocka_unit_test(test_not_a_model),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(g_path);
    return rc;
}
