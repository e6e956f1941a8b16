/*
 * cmd_chat.c: `minnow chat`: an interactive chat in the terminal.
 *
 * Each turn renders the whole conversation with the model's chat template (ChatML when it has
 * none), tokenizes it with special tokens parsed, and evaluates only what the KV cache does not
 * already hold (the longest common prefix with the previous turn stays cached). Replies stream
 * through the detokenizer. Ctrl-C during a reply stops the reply, not the program; at the prompt,
 * Ctrl-D or /exit quits, /reset forgets the conversation. Line editing comes from libedit when the
 * build found it and stdin is a terminal; otherwise lines are read plainly (scripts can pipe input).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "minnow.h"
#include "util.h"

#ifdef MN_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

/* Set by SIGINT while a reply is being generated; the only signal-shared state of the CLI. */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow chat -m MODEL [--system TEXT] [options]\n\n"
            "Interactive chat using the model's chat template (ChatML when the file has none).\n"
            "Type a message and Enter; /reset forgets the conversation; /exit or Ctrl-D quits;\n"
            "Ctrl-C stops a reply.\n"
            "  -m, --model FILE      GGUF model\n"
            "      --system TEXT     system prompt\n"
            "  -n, --n-predict N     most tokens per reply (default 512)\n"
            "      --temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S   sampling\n"
            "  -t, --threads N       worker threads (default: all cores)\n"
            "  -c, --ctx-size N      context length (default: min(model's, 4096))\n");
}

typedef struct chat_opts {
    const char *model, *system;
    int64_t n_predict, threads, ctx;
    mn_sampler_params sp;
} chat_opts;

static int parse(int argc, char **argv, chat_opts *o) {
    o->n_predict = 512;
    o->sp = mn_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "minnow chat: %s needs a value (see --help)\n", a);
            return 0;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--system")) o->system = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { if (!cli_parse_i64("chat", a, v, 1, 1 << 20, &o->n_predict)) return 0; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (!cli_parse_i64("chat", a, v, 1, 1024, &o->threads)) return 0; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { if (!cli_parse_i64("chat", a, v, 16, 1 << 24, &o->ctx)) return 0; }
        else if ((k = cli_parse_sampling("chat", a, v, &o->sp)) != 0) { if (k < 0) return 0; }
        else {
            fprintf(stderr, "minnow chat: unknown option '%s' (see --help)\n", a);
            return 0;
        }
    }
    if (!o->model) {
        fprintf(stderr, "minnow chat: -m MODEL is required\n");
        return 0;
    }
    return 1;
}

/* One line of input without its newline, malloc'd; NULL at end of input. */
static char *read_line(int interactive) {
#ifdef MN_HAVE_LIBEDIT
    if (interactive) {
        char *line = readline("> ");
        if (line && *line) add_history(line);
        return line;
    }
#endif
    if (interactive) {
        fputs("> ", stdout);
        fflush(stdout);
    }
    size_t cap = 0;
    char *line = NULL;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    return line;
}

typedef struct conversation {
    mn_chat_message *msgs;
    char **owned; /* contents we allocated, parallel to msgs */
    size_t n, cap;
} conversation;

static int conv_add(conversation *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        mn_chat_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return 0;
        c->msgs = m;
        char **o = realloc(c->owned, cap * sizeof *o);
        if (!o) return 0;
        c->owned = o;
        c->cap = cap;
    }
    char *copy = strdup(content);
    if (!copy) return 0;
    memset(&c->msgs[c->n], 0, sizeof c->msgs[c->n]);
    c->msgs[c->n].role = role;
    c->msgs[c->n].content = copy;
    c->owned[c->n++] = copy;
    return 1;
}

static void conv_drop(conversation *c, size_t at) { /* removes message `at` */
    free(c->owned[at]);
    memmove(&c->msgs[at], &c->msgs[at + 1], (c->n - at - 1) * sizeof *c->msgs);
    memmove(&c->owned[at], &c->owned[at + 1], (c->n - at - 1) * sizeof *c->owned);
    c->n--;
}

static void conv_free(conversation *c) {
    for (size_t i = 0; i < c->n; i++) free(c->owned[i]);
    free(c->msgs);
    free(c->owned);
}

/* Renders and tokenizes the conversation; *ids is malloc'd. Returns 0 on failure (message shown). */
static int build_prompt(const mn_chat_template *tmpl, const mn_tokenizer *tok, const conversation *c,
                        const char *bos_text, int32_t **ids, size_t *n_ids) {
    mn_chat_params cp = mn_chat_default_params();
    cp.add_generation_prompt = 1;
    cp.bos_token = bos_text;
    char *text = NULL;
    size_t len = 0;
    mn_error err = {0};
    if (mn_chat_template_render(tmpl, c->msgs, c->n, &cp, &text, &len, &err) != MN_OK) {
        fprintf(stderr, "minnow chat: chat template: %s\n", err.message);
        return 0;
    }
    /* the template writes BOS itself when it wants one; add it only when it did not */
    int flags = MN_TOKENIZE_PARSE_SPECIAL;
    if (!bos_text[0] || strncmp(text, bos_text, strlen(bos_text)) != 0) flags |= MN_TOKENIZE_ADD_BOS;
    size_t need = 0;
    mn_status s = mn_tokenize(tok, text, len, flags, NULL, 0, &need);
    *ids = (s == MN_OK || s == MN_EFULL) ? malloc((need ? need : 1) * sizeof(int32_t)) : NULL;
    if (!*ids || mn_tokenize(tok, text, len, flags, *ids, need, n_ids) != MN_OK) {
        fprintf(stderr, "minnow chat: cannot tokenize the conversation\n");
        free(*ids);
        free(text);
        return 0;
    }
    free(text);
    return 1;
}

int cmd_chat(int argc, char **argv) {
    chat_opts o = {0};
    if (!parse(argc, argv, &o)) return 2;
    signal(SIGPIPE, SIG_IGN);
    mn_error err = {0};
    mn_model *model = NULL;
    mn_context *ctx = NULL;
    mn_sampler *smp = NULL;
    mn_detok *detok = NULL;
    mn_chat_template *tmpl = NULL;
    conversation conv = {0};
    int32_t *cached = NULL; /* tokens the KV cache holds, in order */
    size_t n_cached = 0;
    int rc = 1;
    if (mn_model_load(o.model, NULL, &model, &err) != MN_OK) {
        fprintf(stderr, "minnow chat: %s\n", err.message);
        return 1;
    }
    const mn_tokenizer *tok = mn_model_tokenizer(model);
    if (!tok) {
        fprintf(stderr, "minnow chat: this model has no vocabulary, so it cannot chat\n");
        goto done;
    }
    mn_model_info info;
    mn_model_get_info(model, &info);
    if (mn_chat_template_create(mn_tokenizer_chat_template(tok), &tmpl, &err) != MN_OK) {
        fprintf(stderr, "minnow chat: the model's chat template: %s\n", err.message);
        goto done;
    }
    if (err.message[0]) fprintf(stderr, "minnow chat: warning: %s\n", err.message);
    char bos_text[128] = "";
    size_t bl = 0;
    if (mn_tokenizer_bos(tok) >= 0 &&
        mn_token_to_piece(tok, mn_tokenizer_bos(tok), 1, bos_text, sizeof bos_text - 1, &bl) == MN_OK &&
        bl < sizeof bos_text)
        bos_text[bl] = '\0';
    else
        bos_text[0] = '\0';

    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = (int32_t)(o.ctx ? o.ctx : (info.n_ctx_train < 4096 ? info.n_ctx_train : 4096));
    cp.n_threads = (int32_t)o.threads;
    if (mn_context_create(model, &cp, &ctx, &err) != MN_OK || mn_sampler_create(&o.sp, info.n_vocab, &smp, &err) != MN_OK ||
        mn_detok_create(tok, MN_DETOK_STRIP_SPACE, &detok) != MN_OK) {
        fprintf(stderr, "minnow chat: %s\n", err.message[0] ? err.message : "out of memory");
        goto done;
    }
    int32_t n_ctx = mn_context_n_ctx(ctx), n_batch = mn_context_n_batch(ctx);
    cached = malloc((size_t)n_ctx * sizeof *cached);
    int32_t *pos = malloc((size_t)n_batch * sizeof *pos);
    if (!cached || !pos || (o.system && !conv_add(&conv, "system", o.system))) {
        free(pos);
        goto done;
    }
    int interactive = isatty(0);
    if (interactive)
        fprintf(stderr, "minnow chat: %s (%s, context %d). /reset, /exit, Ctrl-C stops a reply.\n", info.name[0] ? info.name : o.model,
                info.arch, n_ctx);
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    for (;;) {
        char *line = read_line(interactive);
        if (!line) break;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) {
            free(line);
            break;
        }
        if (!strcmp(line, "/reset")) {
            while (conv.n > (o.system ? 1u : 0u)) conv_drop(&conv, conv.n - 1);
            free(line);
            continue;
        }
        if (!line[0]) {
            free(line);
            continue;
        }
        int ok = conv_add(&conv, "user", line);
        free(line);
        if (!ok) break;

        int32_t *ids = NULL;
        size_t n_ids = 0;
        for (;;) { /* drop the oldest turns until the prompt plus a reply fits */
            free(ids);
            ids = NULL;
            if (!build_prompt(tmpl, tok, &conv, bos_text, &ids, &n_ids)) break;
            if ((int64_t)n_ids + 16 <= n_ctx) break;
            size_t first = o.system ? 1 : 0;
            if (conv.n <= first + 1) {
                fprintf(stderr, "minnow chat: the message is too long for the context (%zu tokens, context %d)\n", n_ids, n_ctx);
                free(ids);
                ids = NULL;
                break;
            }
            conv_drop(&conv, first);
        }
        if (!ids) {
            conv_drop(&conv, conv.n - 1);
            continue;
        }
        /* keep the common prefix cached; evaluate the rest */
        size_t keep = 0;
        while (keep < n_cached && keep < n_ids - 1 && cached[keep] == ids[keep]) keep++;
        mn_context_kv_truncate(ctx, 0, (int32_t)keep);
        n_cached = keep;
        int failed = 0;
        for (size_t at = keep; at < n_ids && !failed; at += (size_t)n_batch) {
            int n = (int)(n_ids - at < (size_t)n_batch ? n_ids - at : (size_t)n_batch);
            for (int i = 0; i < n; i++) pos[i] = (int32_t)(at + (size_t)i);
            mn_batch b = {n, ids + at, pos, NULL, NULL};
            if (mn_context_eval(ctx, &b) != MN_OK) {
                fprintf(stderr, "minnow chat: %s\n", mn_context_errmsg(ctx));
                failed = 1;
            } else {
                memcpy(cached + at, ids + at, (size_t)n * sizeof *ids);
                n_cached = at + (size_t)n;
            }
        }
        free(ids);
        if (failed) break;

        /* generate the reply */
        size_t cap = 1024, len = 0;
        char *reply = malloc(cap);
        if (!reply) break;
        mn_detok_reset(detok);
        g_interrupted = 0;
        sigaction(SIGINT, &sa, &old_sa);
        for (int64_t k = 0; k < o.n_predict && !g_interrupted && !failed; k++) {
            int32_t id = mn_sampler_sample(smp, mn_context_logits(ctx, 0));
            mn_sampler_accept(smp, id);
            if (mn_tokenizer_is_eog(tok, id)) break;
            const char *piece;
            size_t pl = 0;
            if (mn_detok_push(detok, id, &piece, &pl) == MN_OK && pl) {
                fwrite(piece, 1, pl, stdout);
                fflush(stdout);
                if (len + pl + 1 > cap) {
                    while (len + pl + 1 > cap) cap *= 2;
                    char *nr = realloc(reply, cap);
                    if (!nr) {
                        failed = 1;
                        break;
                    }
                    reply = nr;
                }
                memcpy(reply + len, piece, pl);
                len += pl;
            }
            if ((int32_t)n_cached >= n_ctx) {
                fprintf(stderr, "\nminnow chat: context full\n");
                break;
            }
            int32_t p = (int32_t)n_cached;
            mn_batch b = {1, &id, &p, NULL, NULL};
            if (mn_context_eval(ctx, &b) != MN_OK) {
                fprintf(stderr, "\nminnow chat: %s\n", mn_context_errmsg(ctx));
                failed = 1;
                break;
            }
            cached[n_cached++] = id;
        }
        sigaction(SIGINT, &old_sa, NULL);
        const char *tail;
        size_t tl = 0;
        if (mn_detok_flush(detok, &tail, &tl) == MN_OK && tl && len + tl + 1 <= cap) {
            fwrite(tail, 1, tl, stdout);
            memcpy(reply + len, tail, tl);
            len += tl;
        }
        if (g_interrupted) fprintf(stderr, " [stopped]");
        fputc('\n', stdout);
        fflush(stdout);
        reply[len] = '\0';
        ok = conv_add(&conv, "assistant", reply);
        free(reply);
        if (!ok || failed) break;
    }
    free(pos);
    rc = 0;
done:
    conv_free(&conv);
    free(cached);
    mn_chat_template_free(tmpl);
    mn_detok_free(detok);
    mn_sampler_free(smp);
    mn_context_free(ctx);
    mn_model_free(model);
    return rc;
}
