/*
 * cmd_run.c: `minnow run`: load a model, evaluate the prompt in one batched prefill (chunks of
 * n_batch), then decode token by token through the sampler chain, streaming text (or ids) to
 * stdout, and end with a one-line speed summary on stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "minnow.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow run -m MODEL [-p TEXT | -f FILE | --tokens 1,2,3] [options]\n\n"
            "Generates a continuation of the prompt and streams it to stdout.\n"
            "  -m, --model FILE      GGUF model\n"
            "  -p, --prompt TEXT     prompt text (needs the model's vocabulary)\n"
            "  -f, --file FILE       read the prompt text from FILE\n"
            "      --tokens IDS      prompt as token ids, e.g. 1,450,3\n"
            "  -n, --n-predict N     tokens to generate (default 128)\n"
            "      --ids             print generated token ids (space-separated) instead of text\n"
            "      --ignore-eos      keep generating past end-of-generation tokens\n"
            "      --no-bos          do not prepend BOS to a text prompt\n"
            "      --temp T          temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K         (default 40, 0 = off)\n"
            "      --top-p P         (default 0.95, 1 = off)\n"
            "      --min-p P         (default 0.05, 0 = off)\n"
            "      --repeat-penalty R   (default 1.0 = off)   --repeat-last-n N (default 64)\n"
            "      --frequency-penalty F  --presence-penalty P  (default 0)\n"
            "  -s, --seed S          sampler seed (default 0)\n"
            "  -t, --threads N       worker threads (default: all cores)\n"
            "  -c, --ctx-size N      context length (default: the model's)\n"
            "  -b, --batch-size N    prompt tokens per forward pass (default 512)\n"
            "      --mem-limit MB    cap the KV cache memory (context is shortened to fit)\n"
            "      --kv-type T       KV cache type: f32, f16, q8_0 (default: f32 for f32 models, else f16)\n");
}

typedef struct run_opts {
    const char *model, *prompt, *file, *tokens;
    int64_t n_predict, threads, ctx, batch, mem_limit;
    int ids, ignore_eos, no_bos;
    int32_t kv_type;
    mn_sampler_params sp;
} run_opts;

static int flag_is(const char *a, const char *x, const char *y) {
    return !strcmp(a, x) || (y && !strcmp(a, y));
}

static int parse(int argc, char **argv, run_opts *o) {
    o->n_predict = 128;
    o->sp = mn_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k;
        int used = 1; /* consumes the next argument */
#define IS(x, y) flag_is(a, x, y)
        if (IS("-h", "--help")) {
            usage(stdout);
            exit(0);
        } else if (IS("-m", "--model")) o->model = v;
        else if (IS("-p", "--prompt")) o->prompt = v;
        else if (IS("-f", "--file")) o->file = v;
        else if (IS("--tokens", NULL)) o->tokens = v;
        else if (IS("--kv-type", NULL)) { if ((o->kv_type = cli_parse_kv_type("run", v)) < 0) return 0; }
        else if (IS("-n", "--n-predict")) { if (!cli_parse_i64("run", a, v, 0, 1 << 24, &o->n_predict)) return 0; }
        else if (IS("-t", "--threads")) { if (!cli_parse_i64("run", a, v, 1, 1024, &o->threads)) return 0; }
        else if (IS("-c", "--ctx-size")) { if (!cli_parse_i64("run", a, v, 1, 1 << 24, &o->ctx)) return 0; }
        else if (IS("-b", "--batch-size")) { if (!cli_parse_i64("run", a, v, 1, 65536, &o->batch)) return 0; }
        else if (IS("--mem-limit", NULL)) { if (!cli_parse_i64("run", a, v, 1, 1 << 30, &o->mem_limit)) return 0; }
        else if ((k = cli_parse_sampling("run", a, v, &o->sp)) != 0) { if (k < 0) return 0; }
        else {
            used = 0;
            if (IS("--ids", NULL)) o->ids = 1;
            else if (IS("--ignore-eos", NULL)) o->ignore_eos = 1;
            else if (IS("--no-bos", NULL)) o->no_bos = 1;
            else {
                fprintf(stderr, "minnow run: unknown option '%s' (see --help)\n", a);
                return 0;
            }
        }
#undef IS
        if (used) {
            if (!v) {
                fprintf(stderr, "minnow run: %s needs a value\n", a);
                return 0;
            }
            i++;
        }
    }
    if (!o->model) {
        fprintf(stderr, "minnow run: -m MODEL is required (see --help)\n");
        return 0;
    }
    if (!!o->prompt + !!o->file + !!o->tokens > 1) {
        fprintf(stderr, "minnow run: give only one of -p, -f, --tokens\n");
        return 0;
    }
    return 1;
}

/* Prompt -> ids. Text needs the vocabulary; no prompt at all means BOS alone. */
static int build_prompt(const run_opts *o, const mn_tokenizer *tok, int32_t **ids, int *n) {
    if (o->tokens) return cli_parse_ids("run", "--tokens", o->tokens, ids, n);
    char *text = NULL;
    size_t len = 0;
    if (o->file) {
        text = cli_read_file("run", o->file, (size_t)1 << 30, &len);
        if (!text) return 0;
    } else if (o->prompt) {
        len = strlen(o->prompt);
    }
    if (!tok) {
        if (text || o->prompt) {
            fprintf(stderr, "minnow run: this model has no vocabulary; give the prompt with --tokens\n");
            free(text);
            return 0;
        }
        *ids = malloc(sizeof(int32_t));
        if (!*ids) return 0;
        (*ids)[0] = 1;
        *n = 1;
        return 1;
    }
    const char *src = text ? text : (o->prompt ? o->prompt : "");
    int flags = o->no_bos ? 0 : MN_TOKENIZE_ADD_BOS;
    size_t need = 0;
    mn_status s = mn_tokenize(tok, src, len, flags, NULL, 0, &need);
    if (s != MN_OK && s != MN_EFULL) {
        fprintf(stderr, "minnow run: cannot tokenize the prompt: %s\n", mn_strerror(s));
        free(text);
        return 0;
    }
    *ids = malloc((need ? need : 1) * sizeof(int32_t));
    if (!*ids || mn_tokenize(tok, src, len, flags, *ids, need, &need) != MN_OK) {
        fprintf(stderr, "minnow run: cannot tokenize the prompt\n");
        free(text);
        return 0;
    }
    free(text);
    *n = (int)need;
    if (*n == 0) {
        int32_t bos = mn_tokenizer_bos(tok);
        (*ids)[0] = bos >= 0 ? bos : 0;
        *n = 1;
    }
    return 1;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    if (!parse(argc, argv, &o)) return 2;
    signal(SIGPIPE, SIG_IGN);

    mn_error err = {0};
    mn_model *model = NULL;
    mn_context *ctx = NULL;
    mn_sampler *smp = NULL;
    mn_detok *detok = NULL;
    int32_t *prompt = NULL;
    int rc = 1;
    double t_load = cli_now();
    if (mn_model_load(o.model, NULL, &model, &err) != MN_OK) {
        fprintf(stderr, "minnow run: %s\n", err.message);
        return 1;
    }
    t_load = cli_now() - t_load;
    mn_model_info info;
    mn_model_get_info(model, &info);
    const mn_tokenizer *tok = mn_model_tokenizer(model);

    int n_prompt = 0;
    if (!build_prompt(&o, tok, &prompt, &n_prompt)) goto done;
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] >= info.n_vocab) {
            fprintf(stderr, "minnow run: prompt token %d is out of vocabulary (n_vocab %d)\n", prompt[i],
                    info.n_vocab);
            goto done;
        }

    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = (int32_t)o.ctx;
    cp.n_batch = (int32_t)o.batch;
    cp.n_threads = (int32_t)o.threads;
    cp.mem_limit_mb = (uint64_t)o.mem_limit;
    cp.kv_type = o.kv_type;
    if (mn_context_create(model, &cp, &ctx, &err) != MN_OK) {
        fprintf(stderr, "minnow run: %s\n", err.message);
        goto done;
    }
    int32_t n_ctx = mn_context_n_ctx(ctx);
    if (n_prompt + o.n_predict > n_ctx) {
        if (n_prompt > n_ctx) {
            fprintf(stderr, "minnow run: prompt of %d tokens exceeds the context of %d\n", n_prompt, n_ctx);
            goto done;
        }
        fprintf(stderr, "minnow run: note: generating at most %d tokens (context %d)\n", n_ctx - n_prompt, n_ctx);
        o.n_predict = n_ctx - n_prompt;
    }
    if (mn_sampler_create(&o.sp, info.n_vocab, &smp, &err) != MN_OK) {
        fprintf(stderr, "minnow run: %s\n", err.message);
        goto done;
    }
    for (int i = 0; i < n_prompt; i++) mn_sampler_accept(smp, prompt[i]);
    /* generated text streams through the detokenizer so a character split across tokens is
     * printed whole; a prompt that is only BOS starts a fresh sequence (no leading space) */
    if (tok && !o.ids && mn_detok_create(tok, n_prompt <= 1 ? MN_DETOK_STRIP_SPACE : 0, &detok) != MN_OK) {
        fprintf(stderr, "minnow run: out of memory\n");
        goto done;
    }

    /* prefill in chunks of n_batch */
    double t0 = cli_now();
    if (!cli_prefill("run", ctx, prompt, n_prompt, 0)) goto done;
    double t_prefill = cli_now() - t0;

    t0 = cli_now();
    int n_gen = 0;
    for (; n_gen < o.n_predict; n_gen++) {
        int32_t id = mn_sampler_sample(smp, mn_context_logits(ctx, 0));
        mn_sampler_accept(smp, id);
        if (!o.ignore_eos && tok && mn_tokenizer_is_eog(tok, id)) break;
        if (o.ids) {
            printf(n_gen ? " %d" : "%d", id);
        } else if (detok) {
            const char *text;
            size_t len = 0;
            if (mn_detok_push(detok, id, &text, &len) == MN_OK) fwrite(text, 1, len, stdout);
        } else {
            printf(n_gen ? " %d" : "%d", id);
        }
        fflush(stdout);
        if (n_gen + 1 == o.n_predict) {
            n_gen++;
            break;
        }
        int32_t p = n_prompt + n_gen;
        mn_batch b = {1, &id, &p, NULL, NULL};
        if (mn_context_eval(ctx, &b) != MN_OK) {
            fprintf(stderr, "\nminnow run: %s\n", mn_context_errmsg(ctx));
            goto done;
        }
    }
    double t_decode = cli_now() - t0;
    if (detok) {
        const char *text;
        size_t len = 0;
        if (mn_detok_flush(detok, &text, &len) == MN_OK) fwrite(text, 1, len, stdout);
    }
    printf("\n");
    fprintf(stderr, "minnow run: load %.2f s | prefill %d tok, %.1f tok/s | decode %d tok, %.1f tok/s\n", t_load,
            n_prompt, t_prefill > 0 ? n_prompt / t_prefill : 0.0, n_gen, t_decode > 0 ? n_gen / t_decode : 0.0);
    rc = 0;
done:
    free(prompt);
    mn_detok_free(detok);
    mn_sampler_free(smp);
    mn_context_free(ctx);
    mn_model_free(model);
    return rc;
}
