/*
 * test_golden_stories.c: the forward pass against the reference implementation's output.
 *
 * ../shared/models/stories260K.bin is converted with `minnow convert llama2c` (f32 and q8_0), then
 * evaluated through the public API. stories260K.greedy.txt holds, per position, the input token,
 * the reference argmax, logits 0..3 and the max logit (llama2.c, fp32, greedy from BOS).
 *   f32: every argmax and every listed logit within 1e-4, evaluated token by token, as one
 *        200-token batch, in odd-sized chunks, with 1 and 2 threads (bit-identical), and with two
 *        sequences interleaved in one batch.
 *   q8_0: every argmax equal and logits within Q8_TOL (measured max error, see below).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "minnow.h"

#define N_STEPS 200
#define F32_TOL 1e-4f
/* f16 K/V rows: measured max logit error 0.050, 199/200 argmax (this model is very sensitive) */
#define F16_KV_MAX_ERR 0.15f
/* Q8_0 weights (f16 fallback for ffn_down, whose rows of 172 do not fit 32-blocks) with Q8_0
 * activations. This 260K-parameter model is very sensitive to weight noise: even f16 weights
 * (0.05% error) flip its greedy path at step 37, and Q8_0 (0.55% rms weight error) moves logits
 * by tenths, flipping the near-tie at step 0 (margin 0.108). So q8_0 is checked teacher-forced
 * against the reference logits with budgets set from measurement (see the printed figures):
 * max and mean absolute logit error, and the share of steps whose argmax agrees. */
/* Measured (teacher-forced, 200 steps): f16 weights: 199/200 agree, max 0.068, mean 0.009;
 * q8_0 weights with f32 activations: 181/200, max 1.61, mean 0.27; q8_0 end to end: 177/200,
 * max 2.12, mean 0.35. A broken kernel gives errors of the logits' own size and ~0 agreement. */
#define Q8_MAX_ERR 3.0f
#define Q8_MEAN_ERR 0.5
#define Q8_MIN_AGREE 165

typedef struct golden {
    int32_t input[N_STEPS], argmax[N_STEPS];
    float logit[N_STEPS][5]; /* logits 0..3, then the max logit */
} golden;

static golden G;
static char dir[256], f32_path[300], q8_path[300];

static int load_golden(const char *shared) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/stories260K.greedy.txt", shared);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < N_STEPS) {
        if (line[0] == '#') continue;
        int pos;
        if (sscanf(line, "%d %d %d %f %f %f %f %f", &pos, &G.input[n], &G.argmax[n], &G.logit[n][0],
                   &G.logit[n][1], &G.logit[n][2], &G.logit[n][3], &G.logit[n][4]) == 8 &&
            pos == n)
            n++;
    }
    fclose(f);
    return n == N_STEPS;
}

static int convert(const char *type, const char *out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" convert llama2c \"%s/models/stories260K.bin\" \"%s\" --type %s 2>/dev/null",
             getenv("MINNOW_BIN"), getenv("MINNOW_SHARED"), out, type);
    return system(cmd) == 0;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mn_golden_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(f32_path, sizeof f32_path, "%s/s.gguf", dir);
    snprintf(q8_path, sizeof q8_path, "%s/s8.gguf", dir);
    if (!convert("f32", f32_path) || !convert("q8_0", q8_path)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(f32_path);
    unlink(q8_path);
    rmdir(dir);
    return 0;
}

static int argmax(const float *l, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* Checks one row of logits against golden step t; returns the largest abs error seen. */
static float check_row(const float *l, int n_vocab, int t, float tol) {
    assert_int_equal(argmax(l, n_vocab), G.argmax[t]);
    float worst = 0.0f;
    for (int j = 0; j < 5; j++) {
        float got = j < 4 ? l[j] : l[G.argmax[t]];
        float e = fabsf(got - G.logit[t][j]);
        if (e > worst) worst = e;
        if (e > tol) fail_msg("step %d logit %d: got %f want %f (tol %g)", t, j, got, G.logit[t][j], tol);
    }
    return worst;
}

static mn_model *load(const char *path) {
    mn_model *m = NULL;
    mn_error err = {0};
    if (mn_model_load(path, NULL, &m, &err) != MN_OK) fail_msg("load %s: %s", path, err.message);
    return m;
}

static mn_context *make_ctx(const mn_model *m, int n_threads, int n_seq) {
    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = n_threads;
    cp.n_seq_max = n_seq;
    mn_context *c = NULL;
    mn_error err = {0};
    if (mn_context_create(m, &cp, &c, &err) != MN_OK) fail_msg("context: %s", err.message);
    return c;
}

/* Evaluates the golden inputs in chunks of `chunk`, all logits wanted; fills out[N_STEPS][n_vocab]. */
static void run_chunks(mn_context *c, int chunk, int n_vocab, float *out) {
    int32_t pos[N_STEPS];
    int8_t want[N_STEPS];
    for (int i = 0; i < N_STEPS; i++) {
        pos[i] = i;
        want[i] = 1;
    }
    assert_int_equal(mn_context_kv_truncate(c, 0, 0), MN_OK);
    for (int at = 0; at < N_STEPS; at += chunk) {
        int n = N_STEPS - at < chunk ? N_STEPS - at : chunk;
        mn_batch b = {n, G.input + at, pos + at, NULL, want + at};
        if (mn_context_eval(c, &b) != MN_OK) fail_msg("eval: %s", mn_context_errmsg(c));
        for (int i = 0; i < n; i++) memcpy(out + (size_t)(at + i) * n_vocab, mn_context_logits(c, i), n_vocab * sizeof(float));
    }
}

static void test_f32_token_by_token_and_batched(void **state) {
    (void)state;
    mn_model *m = load(f32_path);
    mn_model_info info;
    mn_model_get_info(m, &info);
    assert_int_equal(info.n_vocab, 512);
    assert_int_equal(info.n_layer, 5);
    float *a = malloc(sizeof(float) * N_STEPS * 512), *b = malloc(sizeof(float) * N_STEPS * 512);
    assert_non_null(a);
    assert_non_null(b);
    int chunks[] = {1, N_STEPS, 7};
    for (int threads = 1; threads <= 2; threads++) {
        mn_context *c = make_ctx(m, threads, 1);
        for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
            run_chunks(c, chunks[k], 512, a);
            float worst = 0.0f;
            for (int t = 0; t < N_STEPS; t++) {
                float e = check_row(a + (size_t)t * 512, 512, t, F32_TOL);
                if (e > worst) worst = e;
            }
            printf("f32 threads=%d chunk=%d: 200/200 argmax, max logit error %.2e\n", threads, chunks[k], worst);
            if (threads == 1 && k == 0) memcpy(b, a, sizeof(float) * N_STEPS * 512);
        }
        mn_context_free(c);
    }
    /* the same batch shape with 1 and 2 threads gives bit-identical logits (rows are split, not sums) */
    mn_context *c2 = make_ctx(m, 2, 1);
    run_chunks(c2, 1, 512, a);
    assert_memory_equal(a, b, sizeof(float) * N_STEPS * 512);
    mn_context_free(c2);
    free(a);
    free(b);
    mn_model_free(m);
}

static void test_f32_two_sequences_interleaved(void **state) {
    (void)state;
    mn_model *m = load(f32_path);
    mn_context *c = make_ctx(m, 2, 2);
    /* sequence 0 gets the golden stream; sequence 1 the same stream, both in each batch */
    enum { CH = 10 };
    int32_t tok[2 * CH], pos[2 * CH], seq[2 * CH];
    int8_t want[2 * CH];
    for (int at = 0; at < N_STEPS; at += CH) {
        for (int i = 0; i < CH; i++)
            for (int s = 0; s < 2; s++) {
                int k = 2 * i + s;
                tok[k] = G.input[at + i];
                pos[k] = at + i;
                seq[k] = s;
                want[k] = 1;
            }
        mn_batch b = {2 * CH, tok, pos, seq, want};
        if (mn_context_eval(c, &b) != MN_OK) fail_msg("eval: %s", mn_context_errmsg(c));
        for (int k = 0; k < 2 * CH; k++) check_row(mn_context_logits(c, k), 512, at + k / 2, F32_TOL);
    }
    assert_int_equal(mn_context_kv_len(c, 0), N_STEPS);
    assert_int_equal(mn_context_kv_len(c, 1), N_STEPS);
    mn_context_free(c);
    mn_model_free(m);
}

/* Attention splits long contexts into spans: decode with few (token, KV head) pairs runs the spans
 * in parallel and folds them afterwards, larger batches fold them as they go. The two must agree
 * bit for bit, so a sequence's logits do not depend on the batch it is in or on the thread count.
 * Sequence 0 is decoded token by token past several spans (700 positions): alone with 2 threads
 * (split), with 1 thread (whole), and in lockstep with two other sequences (whole). */
static void test_long_context_batch_invariant(void **state) {
    (void)state;
    enum { LEN = 700, V = 512 };
    mn_model *m = load(f32_path);
    float *ref = malloc(sizeof(float) * LEN * V);
    assert_non_null(ref);
    for (int mode = 0; mode < 3; mode++) {
        mn_context_params p = mn_context_default_params();
        p.n_ctx = 1024;
        p.n_threads = mode == 1 ? 1 : 2;
        p.n_seq_max = 3;
        mn_error err = {0};
        mn_context *c = NULL;
        if (mn_context_create(m, &p, &c, &err) != MN_OK) fail_msg("context: %s", err.message);
        for (int t = 0; t < LEN; t++) {
            const int n = mode == 2 ? 3 : 1;
            int32_t tok[3], pos[3], seq[3];
            int8_t want[3] = {1, 1, 1};
            for (int s = 0; s < n; s++) {
                tok[s] = G.input[(t * (s + 1)) % N_STEPS];
                pos[s] = t;
                seq[s] = s;
            }
            mn_batch b = {n, tok, pos, seq, want};
            if (mn_context_eval(c, &b) != MN_OK) fail_msg("eval: %s", mn_context_errmsg(c));
            const float *l = mn_context_logits(c, 0);
            if (mode == 0) memcpy(ref + (size_t)t * V, l, sizeof(float) * V);
            else if (memcmp(ref + (size_t)t * V, l, sizeof(float) * V) != 0)
                fail_msg("mode %d: logits at position %d differ from the split-attention run", mode, t);
        }
        mn_context_free(c);
    }
    free(ref);
    mn_model_free(m);
}

static void test_q8_0(void **state) {
    (void)state;
    mn_model *m = load(q8_path);
    mn_model_info info;
    mn_model_get_info(m, &info);
    assert_string_equal(info.type_name, "q8_0");
    float *a = malloc(sizeof(float) * N_STEPS * 512);
    assert_non_null(a);
    mn_context *c = make_ctx(m, 2, 1);
    run_chunks(c, N_STEPS, 512, a); /* teacher-forced: the reference's input stream */
    float worst = 0.0f;
    double sum = 0.0;
    int agree = 0, n_vals = 0;
    for (int t = 0; t < N_STEPS; t++) {
        const float *l = a + (size_t)t * 512;
        agree += argmax(l, 512) == G.argmax[t];
        for (int j = 0; j < 5; j++) {
            float e = fabsf((j < 4 ? l[j] : l[G.argmax[t]]) - G.logit[t][j]);
            sum += e;
            n_vals++;
            if (e > worst) worst = e;
        }
    }
    printf("q8_0: argmax agrees at %d/200 teacher-forced steps; logit error max %.4f mean %.4f\n", agree, worst,
           sum / n_vals);
    assert_true(worst <= Q8_MAX_ERR);
    assert_true(sum / n_vals <= Q8_MEAN_ERR);
    assert_true(agree >= Q8_MIN_AGREE);
    mn_context_free(c);
    free(a);
    mn_model_free(m);
}

/* KV cache in f16: teacher-forced logits stay close to the reference; q8_0 KV needs head_dim % 32
 * == 0 (this model's is 8), refused with a message. */
static void test_kv_types(void **state) {
    (void)state;
    mn_model *m = load(f32_path);
    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = 256;
    cp.kv_type = MN_KV_F16;
    mn_context *c = NULL;
    mn_error err = {0};
    assert_int_equal(mn_context_create(m, &cp, &c, &err), MN_OK);
    float *a = malloc(sizeof(float) * N_STEPS * 512);
    assert_non_null(a);
    run_chunks(c, 13, 512, a);
    float worst = 0.0f;
    int agree = 0;
    for (int t = 0; t < N_STEPS; t++) {
        const float *l = a + (size_t)t * 512;
        agree += argmax(l, 512) == G.argmax[t];
        for (int j = 0; j < 5; j++) {
            float e = fabsf((j < 4 ? l[j] : l[G.argmax[t]]) - G.logit[t][j]);
            if (e > worst) worst = e;
        }
    }
    printf("f16 KV cache: argmax agrees at %d/200 steps, max logit error %.4f\n", agree, worst);
    assert_true(worst < F16_KV_MAX_ERR);
    assert_true(agree >= 195);
    free(a);
    mn_context_free(c);
    cp.kv_type = MN_KV_Q8_0;
    assert_int_equal(mn_context_create(m, &cp, &c, &err), MN_EINVAL);
    assert_non_null(strstr(err.message, "multiple of 32"));
    cp.kv_type = 99;
    assert_int_equal(mn_context_create(m, &cp, &c, &err), MN_EINVAL);
    mn_model_free(m);
}

static void test_eval_rejects_bad_batches(void **state) {
    (void)state;
    mn_model *m = load(f32_path);
    mn_context *c = make_ctx(m, 1, 1);
    int32_t tok = 600, pos = 0, seq = 3;
    mn_batch b = {1, &tok, &pos, NULL, NULL};
    assert_int_equal(mn_context_eval(c, &b), MN_EINVAL); /* out of vocabulary */
    assert_non_null(strstr(mn_context_errmsg(c), "vocabulary"));
    tok = -1;
    assert_int_equal(mn_context_eval(c, &b), MN_EINVAL);
    tok = 1;
    pos = 5; /* does not continue the (empty) sequence */
    assert_int_equal(mn_context_eval(c, &b), MN_EINVAL);
    assert_non_null(strstr(mn_context_errmsg(c), "position"));
    pos = 0;
    b.seq = &seq;
    assert_int_equal(mn_context_eval(c, &b), MN_EINVAL);
    b.seq = NULL;
    b.n_tokens = 0;
    assert_int_equal(mn_context_eval(c, &b), MN_EINVAL);
    b.n_tokens = 1;
    assert_int_equal(mn_context_eval(c, &b), MN_OK);
    assert_non_null(mn_context_logits(c, 0));
    assert_null(mn_context_logits(c, 1));
    assert_null(mn_context_logits(c, -1));
    /* fill the context, then one more is MN_EFULL */
    for (int32_t p = 1; p < mn_context_n_ctx(c); p++) {
        pos = p;
        assert_int_equal(mn_context_eval(c, &b), MN_OK);
    }
    pos = mn_context_n_ctx(c);
    assert_int_equal(mn_context_eval(c, &b), MN_EFULL);
    assert_non_null(strstr(mn_context_errmsg(c), "context full"));
    mn_context_free(c);
    mn_model_free(m);
}

static void test_context_memory_cap(void **state) {
    (void)state;
    mn_model *m = load(f32_path);
    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = 100000;
    cp.mem_limit_mb = 1; /* 5 layers x 32 kv dims x 2 x 4 B = 1280 B per position, 16 per block */
    mn_context *c = NULL;
    assert_int_equal(mn_context_create(m, &cp, &c, NULL), MN_OK);
    assert_int_equal(mn_context_n_ctx(c), (1024 * 1024 / (1280 * 16)) * 16);
    mn_kv_stats st;
    mn_context_kv_stats(c, &st);
    assert_int_equal(st.n_blocks, 1024 * 1024 / (1280 * 16));
    assert_true(st.bytes <= 1024 * 1024);
    mn_context_free(c);
    mn_model_free(m);
}

int main(void) {
    const char *shared = getenv("MINNOW_SHARED");
    if (!shared || !getenv("MINNOW_BIN") || !load_golden(shared)) {
        printf("skipped: ../shared/models/stories260K.* not found (MINNOW_SHARED=%s)\n", shared ? shared : "unset");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_token_by_token_and_batched),
        cmocka_unit_test(test_f32_two_sequences_interleaved),
        cmocka_unit_test(test_long_context_batch_invariant),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_kv_types),
        cmocka_unit_test(test_eval_rejects_bad_batches),
        cmocka_unit_test(test_context_memory_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
