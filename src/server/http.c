/*
 * http.c: the HTTP layer of `minnow serve` on libmicrohttpd, and srv_run (server.h).
 *
 * libmicrohttpd runs in thread-per-connection mode with its internal listening thread. That lets
 * a connection's thread block while its request is generated (non-streaming) or while its SSE
 * reader waits for the next token (streaming), with no busy loop and no suspend/resume dance.
 * Waiting is done in 100 ms slices; between slices the thread peeks at its socket, so a client
 * that goes away (mid-stream, during prefill or while queued) is noticed within ~100 ms and its
 * job cancelled: the scheduler frees the sequence and its KV blocks at its next step.
 *
 * Limits: header bytes (MHD connection memory, answered 431 by MHD), body bytes (Content-Length
 * checked before reading, then counted while reading: 413), connections (bounded: threads, fds),
 * idle time per connection (headers and keep-alive; suspended while a generation request waits
 * for its turn or its tokens, which is not idleness), JSON depth and every field (request.c).
 * Checks before any body is read: route (404), method (405), Host header when bound to loopback
 * (DNS rebinding: 403), Origin (CORS allow-list: 403), API key (401, constant time), readiness
 * (503 while loading), Content-Type (415).
 *
 * Shutdown: the main thread waits on cfg->stop_fd; then it quiesces the daemon (no new
 * connections), makes the scheduler refuse new jobs (503), gives running jobs drain_timeout_s to
 * finish and fails the rest (streams get an error event and [DONE]), waits up to 5 s for those
 * last responses to be sent (a busy machine may not have run their threads yet), then stops the
 * daemon.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "server/server.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "minnow.h"
#include "server/format.h"
#include "server/metrics.h"
#include "server/prompt.h"
#include "server/request.h"
#include "server/sched.h"

enum { ST_LOADING = 0, ST_READY = 1, ST_STOPPING = 2 };

typedef struct srv_server {
    srv_config cfg;
    char model_id[128];
    atomic_int state;
    atomic_ullong next_id;
    uint64_t id_salt;
    srv_metrics *metrics;
    mn_model *model;
    const mn_tokenizer *tok;
    mn_context *ctx;
    mn_chat_template *tmpl; /* the model's chat template; NULL: ChatML */
    char bos_text[64], eos_text[64];
    srv_prompt_env prompt_env;
    srv_sched *sched;
    srv_limits lim;
    int32_t n_ctx;
    int loopback;
    atomic_int n_responding; /* generation requests submitted whose response is not completed yet */
} srv_server;

srv_config srv_config_default(void) {
    srv_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 8080;
    c.n_parallel = 4;
    c.max_queue = 64;
    c.body_bytes_max = (size_t)8 << 20;
    c.idle_timeout_s = 30;
    c.max_connections = 512;
    c.drain_timeout_s = 10;
    c.stop_fd = -1;
    return c;
}

/* ---------------------------------------------------------------- routes --------------------- */

typedef enum route_id { R_HEALTH, R_METRICS, R_MODELS, R_CHAT, R_COMPLETIONS, R_TOKENIZE, R_DETOKENIZE } route_id;

typedef struct route {
    const char *path;
    const char *method;
    route_id id;
    const char *label; /* metrics label */
} route;

static const route ROUTES[] = {
    {"/health", "GET", R_HEALTH, "health"},
    {"/metrics", "GET", R_METRICS, "metrics"},
    {"/v1/models", "GET", R_MODELS, "models"},
    {"/models", "GET", R_MODELS, "models"},
    {"/v1/chat/completions", "POST", R_CHAT, "chat"},
    {"/chat/completions", "POST", R_CHAT, "chat"},
    {"/v1/completions", "POST", R_COMPLETIONS, "completions"},
    {"/completions", "POST", R_COMPLETIONS, "completions"},
    {"/tokenize", "POST", R_TOKENIZE, "tokenize"},
    {"/detokenize", "POST", R_DETOKENIZE, "detokenize"},
};

static const route *find_route(const char *url) {
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
        if (!strcmp(url, ROUTES[i].path)) return &ROUTES[i];
    return NULL;
}

/* Per-request state, kept in MHD's con_cls from the first call to the completion notice. */
typedef struct conn_state {
    const route *rt;
    srv_buf body;
    int too_big;      /* the body went past the cap: the rest is dropped, then 413 */
    uint64_t dropped; /* bytes dropped after the cap */
    int answered;     /* a response was queued */
    int timeout_off;  /* the idle timeout is suspended while a generation runs (and the request
                         counts in S->n_responding until on_completed) */
    double t0;
} conn_state;

/* ---------------------------------------------------------------- responses ------------------ */

static void add_common_headers(srv_server *S, struct MHD_Connection *c, struct MHD_Response *r) {
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin && S->cfg.cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin",
                                strcmp(S->cfg.cors_origin, "*") ? S->cfg.cors_origin : "*");
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result respond(srv_server *S, struct MHD_Connection *c, conn_state *cs, int status,
                               const char *ctype, const char *body, size_t len, const char *extra_name,
                               const char *extra_value) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (extra_name) MHD_add_response_header(r, extra_name, extra_value);
    add_common_headers(S, c, r);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (cs) cs->answered = 1;
    srv_metrics_request(S->metrics, cs && cs->rt ? cs->rt->label : "other", status);
    return ret;
}

static enum MHD_Result respond_json(srv_server *S, struct MHD_Connection *c, conn_state *cs, int status,
                                    const char *json) {
    if (!json) json = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    return respond(S, c, cs, status, "application/json", json, strlen(json), NULL, NULL);
}

static enum MHD_Result respond_error(srv_server *S, struct MHD_Connection *c, conn_state *cs, const srv_error *e) {
    char *j = srv_format_error(e);
    enum MHD_Result r;
    if (e->http_status == 503) r = respond(S, c, cs, 503, "application/json", j ? j : "{}", j ? strlen(j) : 2,
                                           "Retry-After", "1");
    else if (e->http_status == 401) r = respond(S, c, cs, 401, "application/json", j ? j : "{}", j ? strlen(j) : 2,
                                                "WWW-Authenticate", "Bearer");
    else r = respond_json(S, c, cs, e->http_status, j);
    free(j);
    return r;
}

static enum MHD_Result fail(srv_server *S, struct MHD_Connection *c, conn_state *cs, int status, const char *type,
                            const char *code, const char *msg) {
    srv_error e;
    srv_error_set(&e, status, type, NULL, code, "%s", msg);
    return respond_error(S, c, cs, &e);
}

/* ---------------------------------------------------------------- peer liveness -------------- */

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* 1 when the peer has closed or reset the connection. Only this connection's thread reads the
 * socket, and it is here, so a peek cannot race with libmicrohttpd. Pipelined bytes (a next
 * request) keep the connection alive. */
static int peer_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    int n = poll(&p, 1, 0);
    if (n <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) return 1;
    if (p.revents & POLLIN) {
        char ch;
        ssize_t r = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) return 1;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- simple endpoints ----------- */

static enum MHD_Result do_health(srv_server *S, struct MHD_Connection *c, conn_state *cs) {
    int st = atomic_load(&S->state);
    if (st == ST_READY) return respond_json(S, c, cs, 200, "{\"status\":\"ok\"}");
    if (st == ST_LOADING) return respond(S, c, cs, 503, "application/json", "{\"status\":\"loading\"}", 20,
                                         "Retry-After", "1");
    return respond(S, c, cs, 503, "application/json", "{\"status\":\"shutting down\"}", 26, NULL, NULL);
}

static enum MHD_Result do_metrics(srv_server *S, struct MHD_Connection *c, conn_state *cs) {
    srv_buf b = {0};
    if (srv_metrics_render(S->metrics, &b)) {
        srv_buf_free(&b);
        return fail(S, c, cs, 503, "server_error", "out_of_memory", "out of memory");
    }
    enum MHD_Result r = respond(S, c, cs, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, NULL, NULL);
    srv_buf_free(&b);
    return r;
}

static enum MHD_Result do_models(srv_server *S, struct MHD_Connection *c, conn_state *cs) {
    srv_buf b = {0}, id = {0};
    srv_utf8_sanitize(S->model_id, strlen(S->model_id), &id);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id.p ? id.p : "model");
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)time(NULL));
    cJSON_AddStringToObject(m, "owned_by", "minnow");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddNumberToObject(meta, "n_ctx", S->n_ctx);
    cJSON_AddNumberToObject(meta, "n_vocab", S->lim.n_vocab);
    cJSON_AddItemToArray(data, m);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    enum MHD_Result r = respond_json(S, c, cs, 200, s);
    free(s);
    srv_buf_free(&id);
    srv_buf_free(&b);
    return r;
}

static enum MHD_Result do_tokenize(srv_server *S, struct MHD_Connection *c, conn_state *cs) {
    srv_tokenize_req tr;
    srv_error e;
    if (srv_tokenize_parse(cs->body.p, cs->body.len, &S->lim, &tr, &e)) return respond_error(S, c, cs, &e);
    int flags = (tr.add_special ? MN_TOKENIZE_ADD_BOS : 0) | (tr.parse_special ? MN_TOKENIZE_PARSE_SPECIAL : 0);
    size_t cap = (size_t)S->n_ctx * 4 + 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    mn_status st = ids ? mn_tokenize(S->tok, tr.content, tr.content_len, flags, ids, cap, &n) : MN_ENOMEM;
    srv_tokenize_free(&tr);
    if (st != MN_OK) {
        free(ids);
        if (st == MN_EFULL || st == MN_ETOOBIG)
            return fail(S, c, cs, 400, "invalid_request_error", "context_length_exceeded", "content too long to tokenize");
        return fail(S, c, cs, st == MN_ENOMEM ? 503 : 400, st == MN_ENOMEM ? "server_error" : "invalid_request_error",
                    NULL, mn_strerror(st));
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "tokens");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    free(ids);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    enum MHD_Result r = respond_json(S, c, cs, 200, s);
    free(s);
    return r;
}

static enum MHD_Result do_detokenize(srv_server *S, struct MHD_Connection *c, conn_state *cs) {
    srv_detokenize_req dr;
    srv_error e;
    if (srv_detokenize_parse(cs->body.p, cs->body.len, &S->lim, &dr, &e)) return respond_error(S, c, cs, &e);
    srv_buf raw = {0}, all = {0}, txt = {0};
    int bad = 0;
    for (int32_t i = 0; i < dr.n_tokens && !bad; i++) {
        bad |= srv_piece_text(S->tok, dr.tokens[i], 1, &raw, NULL);
        bad |= srv_buf_append(&all, raw.p ? raw.p : "", raw.len);
    }
    bad |= srv_utf8_sanitize(all.p ? all.p : "", all.len, &txt);
    srv_detokenize_free(&dr);
    enum MHD_Result r;
    if (bad) {
        r = fail(S, c, cs, 503, "server_error", "out_of_memory", "out of memory");
    } else {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "content", txt.p ? txt.p : "");
        char *s = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        r = respond_json(S, c, cs, 200, s);
        free(s);
    }
    srv_buf_free(&raw);
    srv_buf_free(&all);
    srv_buf_free(&txt);
    return r;
}

/* ---------------------------------------------------------------- generation ----------------- */

typedef struct stream_ctx {
    srv_server *S;
    srv_job *job;
    int fd;
    srv_resp_meta meta;
    srv_stream_state st;
    srv_buf out;
    size_t out_off;
    uint64_t seen;
    int finished;
    double t_sent; /* when bytes were last handed to libmicrohttpd */
} stream_ctx;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_ctx *x = cls;
    for (;;) {
        if (x->out_off < x->out.len) {
            size_t n = x->out.len - x->out_off;
            if (n > max) n = max;
            memcpy(buf, x->out.p + x->out_off, n);
            x->out_off += n;
            return (ssize_t)n;
        }
        x->out.len = x->out_off = 0;
        if (x->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&x->job->mu);
        x->seen = x->job->version;
        int r = srv_format_stream(x->job, x->S->tok, &x->meta, &x->st, &x->out);
        pthread_mutex_unlock(&x->job->mu);
        if (r < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (r == 1) x->finished = 1;
        double now = srv_now();
        if (x->out.len) {
            x->t_sent = now;
            continue;
        }
        /* an SSE comment every 15 s while queued or prefilling keeps proxies and clients with
         * read timeouts from giving up; clients ignore lines starting with ':' */
        if (now - x->t_sent > 15.0) {
            if (srv_buf_append(&x->out, ": keep-alive\n\n", 14)) return MHD_CONTENT_READER_END_WITH_ERROR;
            x->t_sent = now;
            continue;
        }
        srv_job_wait(x->job, x->seen, 100);
        if (peer_gone(x->fd)) {
            srv_sched_cancel(x->S->sched, x->job);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_free(void *cls) {
    stream_ctx *x = cls;
    /* the stream ended or the client went away: either way nobody reads this job any more */
    if (!x->finished) srv_sched_cancel(x->S->sched, x->job);
    srv_job_release(x->job);
    free(x->st.choices);
    srv_buf_free(&x->out);
    free(x);
}

static void make_meta(srv_server *S, srv_kind kind, srv_resp_meta *m) {
    unsigned long long n = atomic_fetch_add(&S->next_id, 1);
    snprintf(m->id, sizeof m->id, "%s-%016llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)(S->id_salt ^ (n * 0x9E3779B97F4A7C15ull)));
    m->created = (long long)time(NULL);
    m->model = S->model_id;
}

static enum MHD_Result do_generate(srv_server *S, struct MHD_Connection *c, conn_state *cs, srv_kind kind) {
    srv_request req;
    srv_error e;
    if (srv_request_parse(kind, cs->body.p, cs->body.len, &S->lim, &req, &e)) return respond_error(S, c, cs, &e);
    int32_t *prompt = NULL, n_prompt = 0;
    if (srv_build_prompt(&S->prompt_env, &req, S->n_ctx, &prompt, &n_prompt, &e) ||
        srv_check_context(&req, n_prompt, S->n_ctx, &e)) {
        free(prompt);
        srv_request_free(&req);
        return respond_error(S, c, cs, &e);
    }
    if (!req.has_seed) {
        /* no "random" sentinel in the sampler: draw a fresh seed per request */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        req.sampling.seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                            (atomic_fetch_add(&S->next_id, 1) * 0xD1B54A32D192ED03ull);
    }
    int stream = req.stream;
    srv_job *job = srv_job_create(&req, prompt, n_prompt);
    if (!job) return fail(S, c, cs, 503, "server_error", "out_of_memory", "out of memory");
    if (srv_sched_submit(S->sched, job, &e)) {
        srv_job_release(job);
        return respond_error(S, c, cs, &e);
    }
    /* a queued or long generation sends nothing for a while: that is not idleness, so the
     * connection's idle timeout is off until the request completes (on_completed restores it) */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    cs->timeout_off = 1;
    atomic_fetch_add(&S->n_responding, 1);
    int fd = conn_fd(c);
    if (stream) {
        stream_ctx *x = calloc(1, sizeof *x);
        if (x) x->st.choices = calloc((size_t)job->req.n, sizeof *x->st.choices);
        struct MHD_Response *r = x && x->st.choices
                                     ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, x, stream_free)
                                     : NULL;
        if (!r) {
            if (x) free(x->st.choices);
            free(x);
            srv_sched_cancel(S->sched, job);
            srv_job_release(job);
            return fail(S, c, cs, 503, "server_error", "out_of_memory", "out of memory");
        }
        x->S = S;
        x->job = job; /* the stream owns the submitter's reference from here */
        x->fd = fd;
        x->t_sent = srv_now();
        make_meta(S, kind, &x->meta);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        add_common_headers(S, c, r);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        cs->answered = 1;
        srv_metrics_request(S->metrics, cs->rt->label, 200);
        return ret;
    }
    /* non-streaming: this connection's thread waits for the whole answer */
    uint64_t seen = 0;
    while (!srv_job_done(job)) {
        seen = srv_job_wait(job, seen, 100);
        if (peer_gone(fd)) {
            srv_sched_cancel(S->sched, job);
            srv_job_release(job);
            srv_metrics_request(S->metrics, cs->rt->label, 499);
            cs->answered = 1;
            return MHD_NO; /* close the connection */
        }
    }
    srv_resp_meta meta;
    make_meta(S, kind, &meta);
    enum MHD_Result ret;
    pthread_mutex_lock(&job->mu);
    int failed = 0;
    for (int32_t i = 0; i < job->req.n; i++) failed |= job->choices[i].finish == SRV_FIN_ERROR;
    if (failed) {
        srv_error err = job->err;
        pthread_mutex_unlock(&job->mu);
        if (err.http_status < 400) err.http_status = 500;
        ret = respond_error(S, c, cs, &err);
    } else {
        char *s = srv_format_response(job, S->tok, &meta);
        pthread_mutex_unlock(&job->mu);
        ret = respond_json(S, c, cs, 200, s);
        free(s);
    }
    srv_job_release(job);
    return ret;
}

/* ---------------------------------------------------------------- access handler ------------- */

static int host_is_local(const char *host) {
    if (!host) return 1; /* HTTP/1.0 without Host */
    size_t n = strlen(host);
    /* strip ":port" (not inside an IPv6 literal) */
    const char *colon = strrchr(host, ':');
    const char *rb = strrchr(host, ']');
    if (colon && (!rb || colon > rb)) n = (size_t)(colon - host);
    static const char *const ok[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !strncasecmp(host, ok[i], n)) return 1;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    srv_server *S = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->t0 = srv_now();
        cs->rt = find_route(url);
        if (S->loopback && !host_is_local(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")))
            return fail(S, c, cs, 403, "invalid_request_error", "invalid_host",
                        "Host header not allowed (the server is bound to loopback)");
        const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        if (origin && (!S->cfg.cors_origin || (strcmp(S->cfg.cors_origin, "*") && strcmp(S->cfg.cors_origin, origin))))
            return fail(S, c, cs, 403, "invalid_request_error", "origin_not_allowed",
                        "cross-origin requests from this Origin are not allowed (see --cors-origin)");
        if (!strcmp(method, "OPTIONS") && origin) {
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
            add_common_headers(S, c, r);
            enum MHD_Result ret = MHD_queue_response(c, 204, r);
            MHD_destroy_response(r);
            cs->answered = 1;
            return ret;
        }
        if (!cs->rt) return fail(S, c, cs, 404, "invalid_request_error", "not_found", "unknown endpoint");
        if (strcmp(method, cs->rt->method)) {
            srv_error e;
            srv_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed", "%s %s is not allowed; use %s",
                          strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "HEAD") ? "this method" : method,
                          cs->rt->path, cs->rt->method);
            char *j = srv_format_error(&e);
            enum MHD_Result r = respond(S, c, cs, 405, "application/json", j ? j : "{}", j ? strlen(j) : 2, "Allow",
                                        cs->rt->method);
            free(j);
            return r;
        }
        if (S->cfg.api_key && cs->rt->id != R_HEALTH &&
            !srv_check_bearer(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), S->cfg.api_key))
            return fail(S, c, cs, 401, "invalid_request_error", "invalid_api_key",
                        "invalid or missing API key (Authorization: Bearer <key>)");
        int state = atomic_load(&S->state);
        if (cs->rt->id != R_HEALTH && cs->rt->id != R_METRICS && state != ST_READY)
            return fail(S, c, cs, 503, "server_error", state == ST_LOADING ? "loading" : "shutting_down",
                        state == ST_LOADING ? "the model is loading" : "server is shutting down");
        if (!strcmp(method, "POST")) {
            srv_error e;
            if (srv_check_content_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"), &e))
                return respond_error(S, c, cs, &e);
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl) {
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(cl, &end, 10);
                if (errno || !end || *end || v > S->cfg.body_bytes_max)
                    return fail(S, c, cs, 413, "invalid_request_error", "request_too_large",
                                "request body exceeds the server's limit (--max-body)");
            }
        }
        return MHD_YES;
    }
    if (cs->answered) {
        *upload_data_size = 0; /* discard the rest of a body we already answered */
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* libmicrohttpd cannot answer in the middle of a body: past the cap (a chunked body
         * without Content-Length), the rest is counted and dropped so that 413 can be sent at
         * the end; a body that goes on past 4x the cap gets the connection closed instead */
        if (cs->too_big || cs->body.len + *upload_data_size > S->cfg.body_bytes_max) {
            if (!cs->too_big) srv_buf_free(&cs->body);
            cs->too_big = 1;
            cs->dropped += *upload_data_size;
            *upload_data_size = 0;
            if (cs->dropped > 4 * (uint64_t)S->cfg.body_bytes_max) {
                srv_metrics_request(S->metrics, cs->rt->label, 413);
                cs->answered = 1;
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (srv_buf_append(&cs->body, upload_data, *upload_data_size)) {
            *upload_data_size = 0;
            return fail(S, c, cs, 503, "server_error", "out_of_memory", "out of memory");
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cs->too_big)
        return fail(S, c, cs, 413, "invalid_request_error", "request_too_large",
                    "request body exceeds the server's limit (--max-body)");
    switch (cs->rt->id) {
    case R_HEALTH:
        return do_health(S, c, cs);
    case R_METRICS:
        return do_metrics(S, c, cs);
    case R_MODELS:
        return do_models(S, c, cs);
    case R_CHAT:
        return do_generate(S, c, cs, SRV_CHAT);
    case R_COMPLETIONS:
        return do_generate(S, c, cs, SRV_COMPLETION);
    case R_TOKENIZE:
        return do_tokenize(S, c, cs);
    case R_DETOKENIZE:
        return do_detokenize(S, c, cs);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv_server *S = cls;
    conn_state *cs = *con_cls;
    if (!cs) return;
    if (cs->timeout_off) {
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, S->cfg.idle_timeout_s);
        atomic_fetch_sub(&S->n_responding, 1);
    }
    if (!S->cfg.quiet && cs->rt && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        fprintf(stderr, "minnow serve: %s request ended early (code %d) after %.3f s\n", cs->rt->path, (int)toe,
                srv_now() - cs->t0);
    srv_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- run ------------------------ */

/* The text of a special token (BOS/EOS) for the template's bos_token/eos_token; "" when none. */
static void special_text(const mn_tokenizer *tok, int32_t id, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    if (id < 0 || mn_token_to_piece(tok, id, 1, buf, cap - 1, &n) != MN_OK || n >= cap) n = 0;
    buf[n] = '\0';
}

static void wait_stop(int fd) {
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, -1);
        if (n > 0) return;
        if (n < 0 && errno != EINTR) return;
    }
}

int srv_run(const srv_config *cfg) {
    srv_server *S = calloc(1, sizeof *S);
    if (!S) return 1;
    S->cfg = *cfg;
    atomic_init(&S->state, ST_LOADING);
    atomic_init(&S->next_id, 1);
    atomic_init(&S->n_responding, 0);
    S->id_salt = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    const char *base = strrchr(cfg->model_path, '/');
    snprintf(S->model_id, sizeof S->model_id, "%s", cfg->alias ? cfg->alias : base ? base + 1 : cfg->model_path);
    S->metrics = srv_metrics_create();
    if (!S->metrics) goto out;

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "minnow serve: --host must be an IPv4 address, got '%s'\n", cfg->host);
        goto out;
    }
    S->loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
    /* the limits the parser uses before the model is known; completed after loading */
    S->lim = srv_limits_default(1, 1, 1);
    S->lim.body_bytes_max = cfg->body_bytes_max;

    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                             MHD_USE_POLL,
                         0, NULL, NULL, on_request, S, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                         cfg->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, S, MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "minnow serve: cannot listen on %s:%d\n", cfg->host, cfg->port);
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "minnow serve: listening on http://%s:%u\n", cfg->host, di ? (unsigned)di->port : (unsigned)cfg->port);

    /* load while /health answers "loading" */
    mn_error err = {0};
    mn_model_params mp = mn_model_default_params();
    mp.n_threads = cfg->n_threads;
    if (mn_model_load(cfg->model_path, &mp, &S->model, &err) != MN_OK) {
        fprintf(stderr, "minnow serve: %s\n", err.message);
        goto out;
    }
    S->tok = mn_model_tokenizer(S->model);
    if (!S->tok) {
        fprintf(stderr, "minnow serve: the model has no tokenizer (vocabulary) and cannot serve text\n");
        goto out;
    }
    const char *tsrc = mn_tokenizer_chat_template(S->tok);
    if (tsrc && tsrc[0]) {
        mn_error terr = {0};
        if (mn_chat_template_create(tsrc, &S->tmpl, &terr) != MN_OK) {
            fprintf(stderr, "minnow serve: warning: the model's chat template cannot be used (%s); using ChatML\n",
                    terr.message);
            S->tmpl = NULL;
        }
    }
    special_text(S->tok, mn_tokenizer_bos(S->tok), S->bos_text, sizeof S->bos_text);
    special_text(S->tok, mn_tokenizer_eos(S->tok), S->eos_text, sizeof S->eos_text);
    S->prompt_env = (srv_prompt_env){S->tok, S->tmpl, S->bos_text, S->eos_text};
    mn_context_params cp = mn_context_default_params();
    cp.n_ctx = cfg->n_ctx;
    cp.n_seq_max = cfg->n_parallel;
    cp.n_threads = cfg->n_threads;
    cp.n_batch = cfg->n_batch;
    cp.mem_limit_mb = cfg->kv_memory_mb;
    if (mn_context_create(S->model, &cp, &S->ctx, &err) != MN_OK) {
        fprintf(stderr, "minnow serve: %s\n", err.message);
        goto out;
    }
    S->n_ctx = mn_context_n_ctx(S->ctx);
    S->lim = srv_limits_default(mn_tokenizer_n_vocab(S->tok), S->n_ctx, cfg->n_parallel);
    S->lim.body_bytes_max = cfg->body_bytes_max;
    if (S->lim.prompt_bytes_max > cfg->body_bytes_max) S->lim.prompt_bytes_max = cfg->body_bytes_max;
    mn_kv_stats ks; /* read before the scheduler thread owns the context */
    mn_context_kv_stats(S->ctx, &ks);
    srv_sched_params sp = {cfg->n_parallel, cfg->max_queue};
    if (srv_sched_create(S->ctx, S->tok, S->metrics, &sp, &S->sched, &err) != MN_OK) {
        fprintf(stderr, "minnow serve: %s\n", err.message);
        goto out;
    }
    fprintf(stderr,
            "minnow serve: ready: model %s, n_ctx %d per sequence, %d parallel, KV pool %d blocks of %d (%.1f MiB), "
            "chat template: %s\n",
            S->model_id, (int)S->n_ctx, (int)cfg->n_parallel, (int)ks.n_blocks, (int)ks.block_size,
            (double)ks.bytes / (1024.0 * 1024.0), S->tmpl ? "the model's" : "ChatML (built in)");
    atomic_store(&S->state, ST_READY);

    wait_stop(cfg->stop_fd);
    fprintf(stderr, "minnow serve: stopping (draining for up to %.0f s)\n", cfg->drain_timeout_s);
    rc = 0;

out:
    atomic_store(&S->state, ST_STOPPING);
    if (d) {
        MHD_socket ls = MHD_quiesce_daemon(d);
        srv_sched_shutdown(S->sched, cfg->drain_timeout_s);
        /* every job has finished now, but its connection thread may not have sent the last
         * events ([DONE], or the shutdown error) yet; MHD_stop_daemon would cut those
         * connections, so give them a bounded moment to complete */
        struct timespec tick = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 500 && atomic_load(&S->n_responding) > 0; i++) nanosleep(&tick, NULL);
        MHD_stop_daemon(d);
        if (ls != MHD_INVALID_SOCKET) close(ls);
    }
    srv_sched_free(S->sched);
    mn_chat_template_free(S->tmpl);
    mn_context_free(S->ctx);
    mn_model_free(S->model);
    srv_metrics_free(S->metrics);
    free(S);
    if (rc == 0) fprintf(stderr, "minnow serve: stopped\n");
    return rc;
}
