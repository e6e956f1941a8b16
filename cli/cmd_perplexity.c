/*
 * cmd_perplexity.c: `minnow perplexity`, following the convention most published figures use:
 * tokenize the whole text (BOS first when the vocabulary adds one), cut it into consecutive
 * non-overlapping windows of CTX tokens (at most --chunks), put BOS in each window's first slot
 * (when the vocabulary adds one), and score only the predictions of tokens CTX/2+1 .. CTX-1 of
 * each window, so each scored token sees at least CTX/2 tokens. PPL = exp(mean NLL).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "minnow.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow perplexity -m MODEL (-f TEXT_FILE | --tokens-file IDS_FILE) [options]\n\n"
            "  -m, --model FILE      GGUF model\n"
            "  -f, --file FILE       text to score (needs the model's vocabulary)\n"
            "      --tokens-file F   token ids to score (whitespace or comma separated)\n"
            "  -c, --ctx-size N      window length (default 512)\n"
            "      --chunks N        score at most N windows (default: all)\n"
            "  -t, --threads N       worker threads (default: all cores)\n"
            "  -b, --batch-size N    tokens per forward pass (default 512)\n"
            "      --kv-type T       KV cache type: f32, f16, q8_0 (default: f32 for f32 models, else f16)\n"
            "      --json            print one JSON object instead of text\n");
}

/* -log softmax(logits)[target], in double */
static double nll(const float *logits, int n_vocab, int target) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - mx);
    return log(sum) - ((double)logits[target] - mx);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *tokens_file = NULL;
    int64_t n_ctx = 512, chunks = -1, threads = 0, batch = 512;
    int json = 0, kv_type = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "minnow perplexity: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) file = v;
        else if (!strcmp(a, "--tokens-file")) tokens_file = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { if (!cli_parse_i64("perplexity", a, v, 4, 1 << 20, &n_ctx)) return 2; }
        else if (!strcmp(a, "--chunks")) { if (!cli_parse_i64("perplexity", a, v, 1, 1 << 30, &chunks)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (!cli_parse_i64("perplexity", a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) { if (!cli_parse_i64("perplexity", a, v, 1, 65536, &batch)) return 2; }
        else if (!strcmp(a, "--kv-type")) { if ((kv_type = cli_parse_kv_type("perplexity", v)) < 0) return 2; }
        else {
            fprintf(stderr, "minnow perplexity: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model_path || (!file == !tokens_file)) {
        fprintf(stderr, "minnow perplexity: need -m MODEL and exactly one of -f / --tokens-file\n");
        usage(stderr);
        return 2;
    }

    mn_error err = {0};
    mn_model *model = NULL;
    mn_context *ctx = NULL;
    int32_t *ids = NULL, *pos = NULL;
    int8_t *want = NULL;
    int n_ids = 0, rc = 1;
    if (mn_model_load(model_path, NULL, &model, &err) != MN_OK) {
        fprintf(stderr, "minnow perplexity: %s\n", err.message);
        return 1;
    }
    mn_model_info info;
    mn_model_get_info(model, &info);
    const mn_tokenizer *tok = mn_model_tokenizer(model);
    int32_t bos = -1;
    if (tok) { /* does the vocabulary add BOS? (tokenizing "" with ADD_BOS gives exactly it) */
        int32_t one;
        size_t n = 0;
        if (mn_tokenize(tok, "", 0, MN_TOKENIZE_ADD_BOS, &one, 1, &n) == MN_OK && n == 1) bos = one;
    }

    size_t len = 0;
    char *text = cli_read_file("perplexity", file ? file : tokens_file, (size_t)1 << 31, &len);
    if (!text) goto done;
    if (tokens_file) {
        int ok = cli_parse_ids("perplexity", "--tokens-file", text, &ids, &n_ids);
        free(text);
        if (!ok) goto done;
        for (int i = 0; i < n_ids; i++)
            if (ids[i] >= info.n_vocab) {
                fprintf(stderr, "minnow perplexity: token %d at index %d is out of vocabulary (%d)\n", ids[i], i,
                        info.n_vocab);
                goto done;
            }
    } else {
        if (!tok) {
            fprintf(stderr, "minnow perplexity: this model has no vocabulary; use --tokens-file\n");
            free(text);
            goto done;
        }
        size_t need = 0;
        mn_tokenize(tok, text, len, MN_TOKENIZE_ADD_BOS, NULL, 0, &need);
        ids = malloc((need ? need : 1) * sizeof(int32_t));
        if (!ids || need > INT32_MAX ||
            mn_tokenize(tok, text, len, MN_TOKENIZE_ADD_BOS, ids, need, &need) != MN_OK) {
            fprintf(stderr, "minnow perplexity: cannot tokenize %s\n", file);
            free(text);
            goto done;
        }
        free(text);
        n_ids = (int)need;
    }

    int64_t n_windows = n_ids / n_ctx;
    if (chunks > 0 && n_windows > chunks) n_windows = chunks;
    if (n_windows < 1) {
        fprintf(stderr, "minnow perplexity: %d tokens are fewer than one window of %lld (lower -c)\n", n_ids,
                (long long)n_ctx);
        goto done;
    }
    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_batch = (int32_t)(batch < n_ctx ? batch : n_ctx);
    cp.n_threads = (int32_t)threads;
    cp.kv_type = kv_type;
    if (mn_context_create(model, &cp, &ctx, &err) != MN_OK) {
        fprintf(stderr, "minnow perplexity: %s\n", err.message);
        goto done;
    }
    if (mn_context_n_ctx(ctx) < n_ctx) {
        fprintf(stderr, "minnow perplexity: context capped at %d < %lld\n", mn_context_n_ctx(ctx), (long long)n_ctx);
        goto done;
    }
    int nb = mn_context_n_batch(ctx);
    pos = malloc((size_t)nb * sizeof *pos);
    want = malloc((size_t)nb);
    int32_t *window = malloc((size_t)n_ctx * sizeof *window);
    if (!pos || !want || !window) {
        free(window);
        goto done;
    }
    int first = (int)(n_ctx / 2);
    double sum = 0.0;
    int64_t count = 0;
    double t0 = cli_now();
    for (int64_t w = 0; w < n_windows; w++) {
        memcpy(window, ids + w * n_ctx, (size_t)n_ctx * sizeof *window);
        if (bos >= 0) window[0] = bos;
        mn_context_kv_truncate(ctx, 0, 0);
        for (int at = 0; at < n_ctx; at += nb) {
            int n = (int)(n_ctx - at < nb ? n_ctx - at : nb);
            int n_want = 0;
            for (int i = 0; i < n; i++) {
                pos[i] = at + i;
                want[i] = (at + i >= first && at + i < n_ctx - 1);
                n_want += want[i];
            }
            mn_batch b = {n, window + at, pos, NULL, want};
            if (mn_context_eval(ctx, &b) != MN_OK) {
                fprintf(stderr, "minnow perplexity: %s\n", mn_context_errmsg(ctx));
                free(window);
                goto done;
            }
            int k = 0;
            for (int i = 0; i < n; i++) {
                if (!want[i]) continue;
                sum += nll(mn_context_logits(ctx, k++), info.n_vocab, window[at + i + 1]);
                count++;
            }
            (void)n_want;
        }
        if (!json) {
            fprintf(stderr, "[%lld/%lld] running PPL = %.4f\n", (long long)w + 1, (long long)n_windows,
                    exp(sum / (double)count));
        }
    }
    free(window);
    double ppl = exp(sum / (double)count);
    double secs = cli_now() - t0;
    if (json)
        printf("{\"ppl\": %.6f, \"windows\": %lld, \"ctx\": %lld, \"scored_tokens\": %lld, \"seconds\": %.3f}\n", ppl,
               (long long)n_windows, (long long)n_ctx, (long long)count, secs);
    else
        printf("PPL = %.4f\n", ppl);
    fprintf(stderr, "minnow perplexity: %lld windows of %lld, %lld scored tokens, %.2f s\n", (long long)n_windows,
            (long long)n_ctx, (long long)count, secs);
    rc = 0;
done:
    free(ids);
    free(pos);
    free(want);
    mn_context_free(ctx);
    mn_model_free(model);
    return rc;
}
