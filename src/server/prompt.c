/*
 * prompt.c: request -> prompt token ids (prompt.h).
 *
 * Every tokenizer call writes into one array of n_ctx ids; a call that does not fit (MN_EFULL)
 * means the prompt alone exceeds the context, which is a 400 before any model work. A BOS that
 * both the template ({{ bos_token }}) and the tokenizer (add_bos_token) would add is kept once.
 */
#include "server/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int too_long(srv_error *e, const char *param, int32_t n_ctx) {
    return srv_error_set(e, 400, "invalid_request_error", param, "context_length_exceeded",
                         "the prompt is longer than the model's context of %d tokens", (int)n_ctx);
}

/* Appends the ids of text to ids[*n..cap). */
static int append(const mn_tokenizer *tok, const char *text, size_t len, int flags, int32_t *ids, int32_t *n,
                  int32_t cap, const char *param, srv_error *e) {
    if (len == 0 && !(flags & MN_TOKENIZE_ADD_BOS)) return 0;
    size_t got = 0;
    mn_status st = mn_tokenize(tok, text, len, flags, ids + *n, (size_t)(cap - *n), &got);
    if (st == MN_EFULL || st == MN_ETOOBIG || (st == MN_OK && got > (size_t)(cap - *n))) return too_long(e, param, cap);
    if (st != MN_OK)
        return srv_error_set(e, 400, "invalid_request_error", param, NULL, "cannot tokenize the prompt: %s",
                             mn_strerror(st));
    *n += (int32_t)got;
    return 0;
}

/* Renders the messages, with contents replaced by markers when `markers` is non-NULL. */
static int render(const srv_prompt_env *env, const srv_request *r, char (*markers)[48], char **out, size_t *out_len,
                  srv_error *e) {
    mn_chat_message *msgs = calloc((size_t)r->n_messages, sizeof *msgs);
    if (!msgs) return srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory");
    for (int32_t i = 0; i < r->n_messages; i++) {
        msgs[i].role = srv_role_name(r->messages[i].role);
        msgs[i].content = markers ? markers[i] : r->messages[i].content;
    }
    mn_chat_params cp = mn_chat_default_params();
    cp.add_generation_prompt = 1;
    cp.bos_token = env->bos_text;
    cp.eos_token = env->eos_text;
    mn_error err = {0};
    mn_status st;
    if (env->tmpl) st = mn_chat_template_render(env->tmpl, msgs, (size_t)r->n_messages, &cp, out, out_len, &err);
    else st = mn_chat_render(NULL, msgs, (size_t)r->n_messages, &cp, out, out_len, &err);
    free(msgs);
    if (st == MN_ENOMEM) return srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory");
    if (st != MN_OK)
        return srv_error_set(e, 400, "invalid_request_error", "messages", "chat_template_error",
                             "the chat template rejected these messages: %s", err.message[0] ? err.message : mn_strerror(st));
    return 0;
}

static int drop_double_bos(const mn_tokenizer *tok, int32_t *ids, int32_t n) {
    int32_t bos = mn_tokenizer_bos(tok);
    if (bos >= 0 && n >= 2 && ids[0] == bos && ids[1] == bos) {
        memmove(ids, ids + 1, (size_t)(n - 1) * sizeof *ids);
        return n - 1;
    }
    return n;
}

static int chat_prompt(const srv_prompt_env *env, const srv_request *r, int32_t *ids, int32_t *n, int32_t cap,
                       srv_error *e) {
    const int special = MN_TOKENIZE_PARSE_SPECIAL;
    char(*markers)[48] = calloc((size_t)r->n_messages, sizeof *markers);
    if (!markers) return srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory");
    for (int32_t i = 0; i < r->n_messages; i++) snprintf(markers[i], sizeof markers[i], "MNCONTENT%08dX7Q", (int)i);
    char *text = NULL;
    size_t len = 0;
    int st = render(env, r, markers, &text, &len, e);
    if (st) {
        free(markers);
        return st;
    }
    /* cut the rendering at the markers: each must appear exactly once, in order */
    const char *at = text, *end = text + len;
    int ok = 1;
    for (int32_t i = 0; i < r->n_messages && ok; i++) {
        const char *m = strstr(at, markers[i]);
        ok = m != NULL && m < end;
        if (ok) at = m + strlen(markers[i]);
    }
    if (ok && strstr(at, "MNCONTENT")) ok = 0;
    for (int32_t i = 0; ok && i < r->n_messages; i++) {
        const char *first = strstr(text, markers[i]);
        if (first && strstr(first + 1, markers[i])) ok = 0;
    }
    if (ok) {
        at = text;
        int flags = special | MN_TOKENIZE_ADD_BOS;
        for (int32_t i = 0; i < r->n_messages && !st; i++) {
            const char *m = strstr(at, markers[i]);
            st = append(env->tok, at, (size_t)(m - at), flags, ids, n, cap, "messages", e);
            flags = special;
            if (!st) st = append(env->tok, r->messages[i].content, r->messages[i].content_len, 0, ids, n, cap, "messages", e);
            at = m + strlen(markers[i]);
        }
        if (!st) st = append(env->tok, at, (size_t)(end - at), flags, ids, n, cap, "messages", e);
    } else {
        /* the template reworked a content: render the real one, tokenize the whole text */
        free(text);
        text = NULL;
        st = render(env, r, NULL, &text, &len, e);
        if (!st) st = append(env->tok, text, len, special | MN_TOKENIZE_ADD_BOS, ids, n, cap, "messages", e);
    }
    free(text);
    free(markers);
    if (!st) *n = drop_double_bos(env->tok, ids, *n);
    return st;
}

int srv_build_prompt(const srv_prompt_env *env, const srv_request *r, int32_t n_ctx, int32_t **out, int32_t *n_out,
                     srv_error *e) {
    *out = NULL;
    *n_out = 0;
    if (!env || !env->tok) return srv_error_set(e, 400, "invalid_request_error", NULL, NULL, "the model has no tokenizer");
    int32_t cap = n_ctx > 0 ? n_ctx : 1;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory");
    int32_t n = 0;
    int st = 0;
    if (r->kind == SRV_COMPLETION) {
        if (r->prompt_ids) {
            if (r->n_prompt_ids > cap) st = too_long(e, "prompt", cap);
            else memcpy(ids, r->prompt_ids, (size_t)r->n_prompt_ids * sizeof *ids), n = r->n_prompt_ids;
        } else {
            st = append(env->tok, r->prompt, r->prompt_len, MN_TOKENIZE_ADD_BOS, ids, &n, cap, "prompt", e);
        }
    } else {
        st = chat_prompt(env, r, ids, &n, cap, e);
    }
    if (st) {
        free(ids);
        return st;
    }
    *out = ids;
    *n_out = n;
    return 0;
}
