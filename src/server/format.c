/*
 * format.c: JSON for OpenAI responses, streaming chunks and errors (format.h).
 *
 * Built with cJSON trees and printed unformatted. Strings handed to cJSON are always valid UTF-8
 * without NUL (srv_utf8_sanitize), because cJSON copies C strings; token pieces that are partial
 * UTF-8 (byte tokens) appear as U+FFFD in "token" and exactly in "bytes".
 */
#include "server/format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *finish_name(srv_finish f) {
    switch (f) {
    case SRV_FIN_STOP:
        return "stop";
    case SRV_FIN_LENGTH:
        return "length";
    default:
        return NULL;
    }
}

char *srv_format_error(const srv_error *e) {
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    srv_buf msg = {0};
    srv_utf8_sanitize(e->message, strlen(e->message), &msg);
    cJSON_AddStringToObject(err, "message", msg.p ? msg.p : "");
    srv_buf_free(&msg);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(err, "param", e->param);
    else cJSON_AddNullToObject(err, "param");
    if (e->code[0]) cJSON_AddStringToObject(err, "code", e->code);
    else cJSON_AddNullToObject(err, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int srv_piece_text(const mn_tokenizer *tok, int32_t id, int show_special, srv_buf *raw, srv_buf *out) {
    raw->len = 0;
    size_t n = 0;
    char small[64];
    mn_status st = mn_token_to_piece(tok, id, show_special, small, sizeof small, &n);
    if (st == MN_OK && n <= sizeof small) {
        if (srv_buf_append(raw, small, n)) return -1;
    } else if (st == MN_EFULL || n > sizeof small) {
        if (srv_buf_append(raw, NULL, 0) || n > (1u << 20)) return -1;
        char *tmp = malloc(n + 1);
        if (!tmp) return -1;
        size_t n2 = 0;
        if (mn_token_to_piece(tok, id, show_special, tmp, n + 1, &n2) == MN_OK && n2 <= n + 1)
            srv_buf_append(raw, tmp, n2);
        free(tmp);
    }
    return out ? srv_utf8_sanitize(raw->p ? raw->p : "", raw->len, out) : 0;
}

static double lp_value(float lp) { return isfinite(lp) ? (double)lp : -9999.0; }

/* {"token","logprob","bytes":[...]} for chat logprobs. */
static cJSON *chat_token(const mn_tokenizer *tok, int32_t id, float lp, srv_buf *raw, srv_buf *txt) {
    cJSON *o = cJSON_CreateObject();
    txt->len = 0;
    srv_piece_text(tok, id, 1, raw, txt);
    cJSON_AddStringToObject(o, "token", txt->p ? txt->p : "");
    cJSON_AddNumberToObject(o, "logprob", lp_value(lp));
    cJSON *bytes = cJSON_AddArrayToObject(o, "bytes");
    for (size_t i = 0; i < raw->len; i++) cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)raw->p[i]));
    return o;
}

/* logprobs object for entries [from, to) of a choice. */
static cJSON *logprobs_json(const srv_job *job, const mn_tokenizer *tok, const srv_choice *c, int32_t from,
                            int32_t to, size_t text_base) {
    srv_buf raw = {0}, txt = {0};
    cJSON *lp = cJSON_CreateObject();
    if (job->req.kind == SRV_CHAT) {
        cJSON *content = cJSON_AddArrayToObject(lp, "content");
        for (int32_t i = from; i < to; i++) {
            const srv_lp *e = &c->lp[i];
            cJSON *t = chat_token(tok, e->id, e->logprob, &raw, &txt);
            cJSON *top = cJSON_AddArrayToObject(t, "top_logprobs");
            for (int32_t k = 0; k < e->n_top; k++)
                cJSON_AddItemToArray(top, chat_token(tok, e->top[k].id, e->top[k].logprob, &raw, &txt));
            cJSON_AddItemToArray(content, t);
        }
    } else {
        cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
        cJSON *tlp = cJSON_AddArrayToObject(lp, "token_logprobs");
        cJSON *top = cJSON_AddArrayToObject(lp, "top_logprobs");
        cJSON *off = cJSON_AddArrayToObject(lp, "text_offset");
        size_t at = text_base;
        for (int32_t i = from; i < to; i++) {
            const srv_lp *e = &c->lp[i];
            txt.len = 0;
            srv_piece_text(tok, e->id, 1, &raw, &txt);
            cJSON_AddItemToArray(tokens, cJSON_CreateString(txt.p ? txt.p : ""));
            cJSON_AddItemToArray(tlp, cJSON_CreateNumber(lp_value(e->logprob)));
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
            at += raw.len;
            cJSON *m = cJSON_CreateObject();
            for (int32_t k = 0; k < e->n_top; k++) {
                txt.len = 0;
                srv_piece_text(tok, e->top[k].id, 1, &raw, &txt);
                if (!cJSON_GetObjectItemCaseSensitive(m, txt.p ? txt.p : ""))
                    cJSON_AddNumberToObject(m, txt.p ? txt.p : "", lp_value(e->top[k].logprob));
            }
            cJSON_AddItemToArray(top, m);
        }
    }
    srv_buf_free(&raw);
    srv_buf_free(&txt);
    return lp;
}

static cJSON *usage_json(const srv_job *job) {
    cJSON *u = cJSON_CreateObject();
    int64_t gen = 0;
    for (int32_t i = 0; i < job->req.n; i++) gen += job->choices[i].n_gen;
    cJSON_AddNumberToObject(u, "prompt_tokens", job->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)gen);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(gen + job->n_prompt));
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", job->n_cached);
    return u;
}

static cJSON *envelope(const srv_job *job, const srv_resp_meta *meta, int chunk) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", meta->id);
    const char *obj = job->req.kind == SRV_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                : "text_completion";
    cJSON_AddStringToObject(root, "object", obj);
    cJSON_AddNumberToObject(root, "created", (double)meta->created);
    cJSON_AddStringToObject(root, "model", meta->model);
    cJSON_AddStringToObject(root, "system_fingerprint", "minnow");
    return root;
}

char *srv_format_response(const srv_job *job, const mn_tokenizer *tok, const srv_resp_meta *meta) {
    cJSON *root = envelope(job, meta, 0);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    for (int32_t i = 0; i < job->req.n; i++) {
        const srv_choice *c = &job->choices[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        if (job->req.kind == SRV_CHAT) {
            cJSON *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", c->text.p ? c->text.p : "");
        } else {
            cJSON_AddStringToObject(ch, "text", c->text.p ? c->text.p : "");
        }
        if (job->req.logprobs) cJSON_AddItemToObject(ch, "logprobs", logprobs_json(job, tok, c, 0, c->n_lp, 0));
        else cJSON_AddNullToObject(ch, "logprobs");
        const char *fin = finish_name(c->finish);
        if (fin) cJSON_AddStringToObject(ch, "finish_reason", fin);
        else cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
    }
    cJSON_AddItemToObject(root, "usage", usage_json(job));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static int emit(srv_buf *out, cJSON *root) {
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) return -1;
    int r = srv_buf_append(out, "data: ", 6) | srv_buf_append(out, s, strlen(s)) | srv_buf_append(out, "\n\n", 2);
    free(s);
    return r ? -1 : 0;
}

int srv_format_stream(const srv_job *job, const mn_tokenizer *tok, const srv_resp_meta *meta,
                      srv_stream_state *st, srv_buf *out) {
    if (st->done_sent) return 1;
    int chat = job->req.kind == SRV_CHAT;
    int any_error = 0;
    for (int32_t i = 0; i < job->req.n; i++) {
        const srv_choice *c = &job->choices[i];
        srv_stream_choice *sc = &st->choices[i];
        if (c->finish == SRV_FIN_ERROR) any_error = 1;
        size_t text_len = c->text.len;
        int new_text = text_len > sc->text_sent;
        int new_lp = job->req.logprobs && c->n_lp > sc->lp_sent;
        int fin = c->finish != SRV_FIN_NONE && c->finish != SRV_FIN_ERROR && !sc->fin_sent;
        int role = chat && !sc->role_sent;
        if (!(new_text || new_lp || fin || role)) continue;
        cJSON *root = envelope(job, meta, 1);
        cJSON *choices = cJSON_AddArrayToObject(root, "choices");
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        /* the new text: a whole-character suffix (published text only grows at character ends) */
        char *piece = malloc(text_len - sc->text_sent + 1);
        if (!piece) {
            cJSON_Delete(ch);
            cJSON_Delete(root);
            return -1;
        }
        memcpy(piece, c->text.p ? c->text.p + sc->text_sent : "", text_len - sc->text_sent);
        piece[text_len - sc->text_sent] = '\0';
        if (chat) {
            cJSON *d = cJSON_AddObjectToObject(ch, "delta");
            if (role) cJSON_AddStringToObject(d, "role", "assistant");
            if (new_text || role) cJSON_AddStringToObject(d, "content", piece);
        } else {
            cJSON_AddStringToObject(ch, "text", piece);
        }
        free(piece);
        if (new_lp) cJSON_AddItemToObject(ch, "logprobs", logprobs_json(job, tok, c, sc->lp_sent, c->n_lp, sc->text_sent));
        else cJSON_AddNullToObject(ch, "logprobs");
        const char *fr = fin ? finish_name(c->finish) : NULL;
        if (fr) cJSON_AddStringToObject(ch, "finish_reason", fr);
        else cJSON_AddNullToObject(ch, "finish_reason");
        cJSON_AddItemToArray(choices, ch);
        if (job->req.include_usage) cJSON_AddNullToObject(root, "usage");
        if (emit(out, root)) return -1;
        sc->text_sent = text_len;
        sc->lp_sent = c->n_lp;
        sc->role_sent = 1;
        if (fin) sc->fin_sent = 1;
    }
    if (job->n_finished < job->req.n) return 0;
    if (any_error && !st->error_sent) {
        char *e = srv_format_error(&job->err);
        if (!e) return -1;
        int r = srv_buf_append(out, "data: ", 6) | srv_buf_append(out, e, strlen(e)) | srv_buf_append(out, "\n\n", 2);
        free(e);
        if (r) return -1;
        st->error_sent = 1;
    }
    if (job->req.include_usage && !st->usage_sent && !any_error) {
        cJSON *root = envelope(job, meta, 1);
        cJSON_AddArrayToObject(root, "choices");
        cJSON_AddItemToObject(root, "usage", usage_json(job));
        if (emit(out, root)) return -1;
        st->usage_sent = 1;
    }
    if (srv_buf_append(out, "data: [DONE]\n\n", 14)) return -1;
    st->done_sent = 1;
    return 1;
}
