/*
 * request.c: parsing and validation of request bodies (see request.h for the contract).
 *
 * Order of checks for a body: size, the linear pre-scan (depth, \u0000), cJSON parse, "must be an
 * object", then each field with a small typed getter (get_num/get_int/get_bool/...) that knows the
 * field's name, so every rejection names its parameter. Values are copied into the srv_request as
 * they pass, and the first failure frees whatever was copied (srv_request_free is NULL-safe on a
 * half-filled request). Numbers arrive from cJSON as doubles: integers must be integral and within
 * the stated range before any cast (a cast of 2^31 or NaN to int32 is undefined behaviour in C).
 */
#include "server/request.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- errors --------------------- */

int srv_error_set(srv_error *e, int http_status, const char *type, const char *param, const char *code,
                  const char *fmt, ...) {
    if (!e) return http_status;
    e->http_status = http_status;
    e->type = type ? type : "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return http_status;
}

#define BAD(e, param, ...) srv_error_set((e), 400, "invalid_request_error", (param), NULL, __VA_ARGS__)

srv_limits srv_limits_default(int32_t n_vocab, int32_t n_ctx, int32_t n_choices_max) {
    srv_limits l;
    l.body_bytes_max = (size_t)8 << 20;
    l.json_depth_max = 64;
    /* A token is rarely more than 16 bytes; text longer than that per context slot cannot fit and
     * is refused before tokenization (BAD_INPUTS 17). */
    l.prompt_bytes_max = (size_t)(n_ctx > 0 ? n_ctx : 1) * 16u;
    if (l.prompt_bytes_max > l.body_bytes_max) l.prompt_bytes_max = l.body_bytes_max;
    l.n_messages_max = 1024;
    l.n_vocab = n_vocab;
    l.n_ctx = n_ctx;
    l.n_choices_max = n_choices_max > 0 ? n_choices_max : 1;
    l.n_stop_max = 16;
    l.stop_bytes_max = 256;
    l.top_logprobs_max = 20;
    l.n_logit_bias_max = 1024;
    return l;
}

const char *srv_role_name(srv_role r) {
    switch (r) {
    case SRV_ROLE_SYSTEM:
    case SRV_ROLE_DEVELOPER:
        return "system";
    case SRV_ROLE_USER:
        return "user";
    case SRV_ROLE_ASSISTANT:
        return "assistant";
    case SRV_ROLE_TOOL:
        return "tool";
    }
    return "user";
}

/* ---------------------------------------------------------------- pre-scan ------------------- */

int srv_json_prescan(const char *body, size_t len, int32_t depth_max, srv_error *e) {
    int32_t depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < len && body[i + 1] == 'u' && body[i + 2] == '0' && body[i + 3] == '0' &&
                    body[i + 4] == '0' && body[i + 5] == '0')
                    return BAD(e, NULL, "strings must not contain NUL characters (\\u0000)");
                i++; /* skip the escaped character (a quote or backslash must not end the string) */
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > depth_max) return BAD(e, NULL, "JSON nested deeper than %d levels", (int)depth_max);
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- header checks -------------- */

int srv_check_content_type(const char *value, srv_error *e) {
    if (!value) return 0; /* curl -d sends a form type; a missing header is tolerated */
    static const char want[] = "application/json";
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(want);
    if (strncasecmp(value, want, n) == 0) {
        char c = value[n];
        if (c == '\0' || c == ';' || c == ' ' || c == '\t') return 0;
    }
    return srv_error_set(e, 415, "invalid_request_error", NULL, "unsupported_media_type",
                         "Content-Type must be application/json");
}

int srv_check_bearer(const char *header, const char *key) {
    if (!key) return 1;
    if (!header) return 0;
    static const char prefix[] = "Bearer ";
    size_t hl = strlen(header), kl = strlen(key), pl = sizeof prefix - 1;
    /* Compare over the header's length so timing reveals nothing about the key's content. */
    unsigned diff = (hl != pl + kl);
    for (size_t i = 0; i < hl; i++) {
        unsigned char want;
        if (i < pl) want = (unsigned char)prefix[i];
        else if (i - pl < kl) want = (unsigned char)key[i - pl];
        else want = 0;
        diff |= (unsigned)((unsigned char)header[i] ^ want);
    }
    return diff == 0;
}

/* ---------------------------------------------------------------- typed getters -------------- */

/* Each getter: 0 = absent or null (out untouched), 1 = present and valid, -1 = error (e filled). */

static int get_num(const cJSON *o, const char *name, double lo, double hi, int lo_open, double *out, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return BAD(e, name, "'%s' must be a number", name), -1;
    double d = v->valuedouble;
    if (!isfinite(d)) return BAD(e, name, "'%s' must be a finite number", name), -1;
    if (d < lo || d > hi || (lo_open && d == lo))
        return BAD(e, name, "'%s' must be in %c%g, %g], got %g", name, lo_open ? '(' : '[', lo, hi, d), -1;
    *out = d;
    return 1;
}

static int as_int(const cJSON *v, const char *name, int64_t lo, int64_t hi, int64_t *out, srv_error *e) {
    if (!cJSON_IsNumber(v)) return BAD(e, name, "'%s' must be an integer", name), -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) return BAD(e, name, "'%s' must be an integer", name), -1;
    if (d < (double)lo || d > (double)hi)
        return BAD(e, name, "'%s' must be in [%lld, %lld], got %.17g", name, (long long)lo, (long long)hi, d), -1;
    *out = (int64_t)d;
    return 1;
}

static int get_int(const cJSON *o, const char *name, int64_t lo, int64_t hi, int64_t *out, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    return as_int(v, name, lo, hi, out, e);
}

static int get_bool(const cJSON *o, const char *name, int *out, srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return BAD(e, name, "'%s' must be a boolean", name), -1;
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 1;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int oom(srv_error *e) {
    return srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory while parsing the request");
}

static cJSON *parse_body(const char *body, size_t len, const srv_limits *lim, srv_error *e, int *status) {
    *status = 0;
    if (len > lim->body_bytes_max) {
        *status = srv_error_set(e, 413, "invalid_request_error", NULL, "request_too_large",
                                "request body of %zu bytes exceeds the limit of %zu bytes", len, lim->body_bytes_max);
        return NULL;
    }
    if (len == 0) {
        *status = BAD(e, NULL, "request body is empty; expected a JSON object");
        return NULL;
    }
    if ((*status = srv_json_prescan(body, len, lim->json_depth_max, e)) != 0) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        *status = BAD(e, NULL, "malformed JSON in request body near byte %zu", at);
        return NULL;
    }
    /* anything but whitespace after the value is an error too */
    if (end) {
        while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n' || *end == '\0')) end++;
        if (end < body + len) {
            cJSON_Delete(root);
            *status = BAD(e, NULL, "malformed JSON: trailing data after the object at byte %zu", (size_t)(end - body));
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *status = BAD(e, NULL, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* ---------------------------------------------------------------- messages ------------------- */

static int parse_role(const cJSON *m, int idx, srv_role *out, srv_error *e) {
    char pname[48];
    snprintf(pname, sizeof pname, "messages[%d].role", idx);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!r) return BAD(e, pname, "'%s' is required", pname), -1;
    if (!cJSON_IsString(r)) return BAD(e, pname, "'%s' must be a string", pname), -1;
    static const struct {
        const char *name;
        srv_role role;
    } roles[] = {{"system", SRV_ROLE_SYSTEM},
                 {"user", SRV_ROLE_USER},
                 {"assistant", SRV_ROLE_ASSISTANT},
                 {"developer", SRV_ROLE_DEVELOPER},
                 {"tool", SRV_ROLE_TOOL}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r->valuestring, roles[i].name)) {
            *out = roles[i].role;
            return 1;
        }
    return BAD(e, pname, "'%s' must be one of system, user, assistant, developer, tool", pname), -1;
}

/* content: a string, or an array of {"type":"text","text":...} parts (concatenated). */
static int parse_content(const cJSON *m, int idx, srv_role role, size_t *budget, char **out, size_t *out_len,
                         srv_error *e) {
    char pname[48];
    snprintf(pname, sizeof pname, "messages[%d].content", idx);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!c) return BAD(e, pname, "'%s' is required", pname), -1;
    if (cJSON_IsNull(c)) {
        if (role != SRV_ROLE_ASSISTANT) return BAD(e, pname, "'%s' must not be null", pname), -1;
        *out = dup_bytes("", 0);
        *out_len = 0;
        return *out ? 1 : (oom(e), -1);
    }
    if (cJSON_IsString(c)) {
        size_t n = strlen(c->valuestring);
        if (n > *budget)
            return srv_error_set(e, 400, "invalid_request_error", pname, "context_length_exceeded",
                                 "messages are too long (more than %zu bytes of text in all)", *budget),
                   -1;
        *budget -= n;
        *out = dup_bytes(c->valuestring, n);
        *out_len = n;
        return *out ? 1 : (oom(e), -1);
    }
    if (!cJSON_IsArray(c)) return BAD(e, pname, "'%s' must be a string or an array of text parts", pname), -1;
    size_t total = 0;
    const cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, c) {
        char ppname[64];
        snprintf(ppname, sizeof ppname, "%s[%d]", pname, i);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type))
            return BAD(e, ppname, "'%s' must be an object with a string 'type'", ppname), -1;
        if (strcmp(type->valuestring, "text") != 0)
            return BAD(e, ppname, "'%s': only content parts of type 'text' are supported", ppname), -1;
        if (!cJSON_IsString(text)) return BAD(e, ppname, "'%s.text' must be a string", ppname), -1;
        size_t n = strlen(text->valuestring);
        if (n > *budget)
            return srv_error_set(e, 400, "invalid_request_error", pname, "context_length_exceeded",
                                 "messages are too long (more than %zu bytes of text in all)", *budget),
                   -1;
        *budget -= n;
        total += n;
        i++;
    }
    char *s = malloc(total + 1);
    if (!s) return oom(e), -1;
    size_t at = 0;
    cJSON_ArrayForEach(p, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t n = strlen(t);
        memcpy(s + at, t, n);
        at += n;
    }
    s[at] = '\0';
    *out = s;
    *out_len = at;
    return 1;
}

static int parse_messages(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *e) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!ms) return BAD(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms)) return BAD(e, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(ms);
    if (n == 0) return BAD(e, "messages", "'messages' must not be empty");
    if (n > lim->n_messages_max) return BAD(e, "messages", "too many messages (%d > %d)", n, (int)lim->n_messages_max);
    r->messages = calloc((size_t)n, sizeof *r->messages);
    if (!r->messages) return oom(e);
    size_t budget = lim->prompt_bytes_max;
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, ms) {
        if (!cJSON_IsObject(m)) {
            char pname[32];
            snprintf(pname, sizeof pname, "messages[%d]", i);
            return BAD(e, pname, "'%s' must be an object", pname);
        }
        srv_message *dst = &r->messages[i];
        if (parse_role(m, i, &dst->role, e) < 0) return e->http_status;
        if (parse_content(m, i, dst->role, &budget, &dst->content, &dst->content_len, e) < 0) return e->http_status;
        r->n_messages = ++i;
    }
    return 0;
}

/* ---------------------------------------------------------------- prompt / stop -------------- */

static int parse_ids(const cJSON *arr, const char *pname, const srv_limits *lim, int32_t **out, int32_t *n_out,
                     srv_error *e) {
    int n = cJSON_GetArraySize(arr);
    if (n > lim->n_ctx)
        return srv_error_set(e, 400, "invalid_request_error", pname, "context_length_exceeded",
                             "'%s' has %d tokens, more than the context of %d", pname, n, (int)lim->n_ctx);
    int32_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ids) return oom(e);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        int64_t id;
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble)) {
            free(ids);
            return BAD(e, pname, "'%s' must be an array of integer token ids", pname);
        }
        id = v->valuedouble >= 0 && v->valuedouble < (double)lim->n_vocab ? (int64_t)v->valuedouble : -1;
        if (id < 0) {
            free(ids);
            return srv_error_set(e, 400, "invalid_request_error", pname, "invalid_token",
                                 "token id %.17g in '%s' is out of vocabulary [0, %d)", v->valuedouble, pname,
                                 (int)lim->n_vocab);
        }
        ids[i++] = (int32_t)id;
    }
    *out = ids;
    *n_out = i;
    return 0;
}

static int parse_prompt(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *e) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p) return BAD(e, "prompt", "'prompt' is required");
    if (cJSON_IsArray(p)) {
        int n = cJSON_GetArraySize(p);
        const cJSON *first = cJSON_GetArrayItem(p, 0);
        if (n >= 1 && cJSON_IsString(first)) {
            if (n > 1) return BAD(e, "prompt", "'prompt': only one prompt per request is supported (use n for more choices)");
            p = first;
        } else if (n >= 1 && cJSON_IsArray(first)) {
            if (n > 1) return BAD(e, "prompt", "'prompt': only one prompt per request is supported");
            return parse_ids(first, "prompt", lim, &r->prompt_ids, &r->n_prompt_ids, e);
        } else {
            if (n == 0) return BAD(e, "prompt", "'prompt' must not be empty");
            return parse_ids(p, "prompt", lim, &r->prompt_ids, &r->n_prompt_ids, e);
        }
    }
    if (!cJSON_IsString(p)) return BAD(e, "prompt", "'prompt' must be a string or an array of token ids");
    size_t n = strlen(p->valuestring);
    if (n > lim->prompt_bytes_max)
        return srv_error_set(e, 400, "invalid_request_error", "prompt", "context_length_exceeded",
                             "prompt too long: %zu bytes (at most %zu)", n, lim->prompt_bytes_max);
    r->prompt = dup_bytes(p->valuestring, n);
    if (!r->prompt) return oom(e);
    r->prompt_len = n;
    return 0;
}

static int add_stop(srv_request *r, const cJSON *v, const char *pname, const srv_limits *lim, srv_error *e) {
    if (!cJSON_IsString(v)) return BAD(e, "stop", "'%s' must be a string", pname);
    size_t n = strlen(v->valuestring);
    if (n == 0) return BAD(e, "stop", "'%s' must not be empty", pname);
    if (n > (size_t)lim->stop_bytes_max)
        return BAD(e, "stop", "'%s' is longer than %d bytes", pname, (int)lim->stop_bytes_max);
    r->stop[r->n_stop] = dup_bytes(v->valuestring, n);
    if (!r->stop[r->n_stop]) return oom(e);
    r->stop_len[r->n_stop++] = (int32_t)n;
    return 0;
}

static int parse_stop(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *e) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!s || cJSON_IsNull(s)) return 0;
    int n = cJSON_IsArray(s) ? cJSON_GetArraySize(s) : 1;
    if (!cJSON_IsArray(s) && !cJSON_IsString(s)) return BAD(e, "stop", "'stop' must be a string or an array of strings");
    if (n > lim->n_stop_max) return BAD(e, "stop", "'stop' has %d strings, at most %d are allowed", n, (int)lim->n_stop_max);
    if (n == 0) return 0;
    r->stop = calloc((size_t)n, sizeof *r->stop);
    r->stop_len = calloc((size_t)n, sizeof *r->stop_len);
    if (!r->stop || !r->stop_len) return oom(e);
    if (cJSON_IsString(s)) return add_stop(r, s, "stop", lim, e);
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, s) {
        char pname[32];
        snprintf(pname, sizeof pname, "stop[%d]", i++);
        int st = add_stop(r, v, pname, lim, e);
        if (st) return st;
    }
    return 0;
}

static int parse_logit_bias(const cJSON *root, const srv_limits *lim, srv_request *r, srv_error *e) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "logit_bias");
    if (!b || cJSON_IsNull(b)) return 0;
    if (!cJSON_IsObject(b)) return BAD(e, "logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
    int n = cJSON_GetArraySize(b);
    if (n == 0) return 0;
    if (n > lim->n_logit_bias_max)
        return BAD(e, "logit_bias", "'logit_bias' has %d entries, at most %d are allowed", n, (int)lim->n_logit_bias_max);
    r->bias_ids = malloc((size_t)n * sizeof *r->bias_ids);
    r->bias = malloc((size_t)n * sizeof *r->bias);
    if (!r->bias_ids || !r->bias) return oom(e);
    const cJSON *v;
    cJSON_ArrayForEach(v, b) {
        const char *k = v->string;
        char *endp = NULL;
        long long id = -1;
        if (k && *k && isdigit((unsigned char)k[0]) && strlen(k) <= 10) id = strtoll(k, &endp, 10);
        if (id < 0 || !endp || *endp != '\0' || id >= lim->n_vocab)
            return srv_error_set(e, 400, "invalid_request_error", "logit_bias", "invalid_token",
                                 "'logit_bias' keys must be token ids in [0, %d)", (int)lim->n_vocab);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < -100 || v->valuedouble > 100)
            return BAD(e, "logit_bias", "'logit_bias' values must be numbers in [-100, 100]");
        r->bias_ids[r->n_bias] = (int32_t)id;
        r->bias[r->n_bias++] = (float)v->valuedouble;
    }
    return 0;
}

/* ---------------------------------------------------------------- the request ---------------- */

static int parse_fields(const cJSON *root, srv_kind kind, const srv_limits *lim, srv_request *r, srv_error *e) {
    int st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsNull(model)) {
        if (!cJSON_IsString(model)) return BAD(e, "model", "'model' must be a string");
        r->model = dup_bytes(model->valuestring, strnlen(model->valuestring, 256));
        if (!r->model) return oom(e);
    }
    if (kind == SRV_CHAT) {
        if ((st = parse_messages(root, lim, r, e))) return st;
    } else {
        if ((st = parse_prompt(root, lim, r, e))) return st;
    }

    int64_t iv;
    double dv;
    int bv;
    /* max_completion_tokens (newer) wins over max_tokens when both are given */
    int32_t cap = lim->n_ctx > 0 ? lim->n_ctx : 1;
    if ((st = get_int(root, "max_tokens", 1, cap, &iv, e)) < 0) return e->http_status;
    if (st > 0) r->max_tokens = (int32_t)iv;
    if ((st = get_int(root, "max_completion_tokens", 1, cap, &iv, e)) < 0) return e->http_status;
    if (st > 0) r->max_tokens = (int32_t)iv;

    mn_sampler_params *sp = &r->sampling;
    if ((st = get_num(root, "temperature", 0, 2, 0, &dv, e)) < 0) return e->http_status;
    if (st > 0) sp->temperature = (float)dv;
    if ((st = get_num(root, "top_p", 0, 1, 0, &dv, e)) < 0) return e->http_status;
    if (st > 0) {
        /* top_p 0 keeps only the most likely token: greedy */
        if (dv == 0) sp->temperature = 0;
        else sp->top_p = (float)dv;
    }
    if ((st = get_num(root, "presence_penalty", -2, 2, 0, &dv, e)) < 0) return e->http_status;
    if (st > 0) sp->presence_penalty = (float)dv;
    if ((st = get_num(root, "frequency_penalty", -2, 2, 0, &dv, e)) < 0) return e->http_status;
    if (st > 0) sp->frequency_penalty = (float)dv;
    if ((st = get_int(root, "top_k", 0, INT32_MAX, &iv, e)) < 0) return e->http_status;
    if (st > 0) sp->top_k = iv > lim->n_vocab ? lim->n_vocab : (int32_t)iv; /* documented clamp */
    if ((st = get_num(root, "min_p", 0, 1, 0, &dv, e)) < 0) return e->http_status;
    if (st > 0) sp->min_p = (float)dv;
    if ((st = get_num(root, "repeat_penalty", 0, 100, 1, &dv, e)) < 0) return e->http_status;
    if (st > 0) sp->repeat_penalty = (float)dv;
    /* seeds: any integer a double holds exactly, negative ones wrap (OpenAI documents int64) */
    if ((st = get_int(root, "seed", -(INT64_C(1) << 53), INT64_C(1) << 53, &iv, e)) < 0) return e->http_status;
    if (st > 0) {
        sp->seed = (uint64_t)iv;
        r->has_seed = 1;
    }
    if ((st = get_int(root, "n", 1, lim->n_choices_max, &iv, e)) < 0) {
        if (e->http_status == 400 && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "n")))
            snprintf(e->message, sizeof e->message, "'n' must be in [1, %d] (the server's --parallel)",
                     (int)lim->n_choices_max);
        return e->http_status;
    }
    if (st > 0) r->n = (int32_t)iv;
    if ((st = parse_stop(root, lim, r, e))) return st;
    if ((st = parse_logit_bias(root, lim, r, e))) return st;

    if (kind == SRV_CHAT) {
        if ((st = get_bool(root, "logprobs", &bv, e)) < 0) return e->http_status;
        if (st > 0) r->logprobs = bv;
        if ((st = get_int(root, "top_logprobs", 0, lim->top_logprobs_max, &iv, e)) < 0) return e->http_status;
        if (st > 0) {
            if (!r->logprobs && iv > 0) return BAD(e, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
            r->top_logprobs = (int32_t)iv;
        }
    } else {
        if ((st = get_int(root, "logprobs", 0, lim->top_logprobs_max, &iv, e)) < 0) return e->http_status;
        if (st > 0) {
            r->logprobs = 1;
            r->top_logprobs = (int32_t)iv;
        }
        const cJSON *echo = cJSON_GetObjectItemCaseSensitive(root, "echo");
        if (cJSON_IsTrue(echo)) return BAD(e, "echo", "'echo' is not supported");
        if ((st = get_int(root, "best_of", 1, 1, &iv, e)) < 0) {
            snprintf(e->message, sizeof e->message, "'best_of' other than 1 is not supported");
            return e->http_status;
        }
    }
    /* the sampler reports log-probabilities when n_probs > 0; it needs at least 1 to fill logprob */
    if (r->logprobs) sp->n_probs = r->top_logprobs > 0 ? r->top_logprobs : 1;

    if ((st = get_bool(root, "stream", &bv, e)) < 0) return e->http_status;
    if (st > 0) r->stream = bv;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return BAD(e, "stream_options", "'stream_options' must be an object");
        if ((st = get_bool(so, "include_usage", &bv, e)) < 0) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            return e->http_status;
        }
        if (st > 0) r->include_usage = bv;
    }
    return 0;
}

int srv_request_parse(srv_kind kind, const char *body, size_t len, const srv_limits *lim, srv_request *out,
                      srv_error *e) {
    memset(out, 0, sizeof *out);
    int st;
    cJSON *root = parse_body(body, len, lim, e, &st);
    if (!root) return st;
    out->kind = kind;
    out->max_tokens = -1;
    out->n = 1;
    /* OpenAI defaults: temperature 1, top_p 1, no penalties; minnow extras off */
    out->sampling = mn_sampler_default_params();
    out->sampling.temperature = 1.0f;
    out->sampling.top_p = 1.0f;
    out->sampling.top_k = 0;
    out->sampling.min_p = 0.0f;
    out->sampling.repeat_penalty = 1.0f;
    out->sampling.frequency_penalty = 0.0f;
    out->sampling.presence_penalty = 0.0f;
    out->sampling.n_probs = 0;
    st = parse_fields(root, kind, lim, out, e);
    cJSON_Delete(root);
    if (st) srv_request_free(out);
    return st;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    for (int32_t i = 0; i < r->n_messages; i++) free(r->messages[i].content);
    free(r->messages);
    free(r->prompt);
    free(r->prompt_ids);
    for (int32_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->stop_len);
    free(r->bias_ids);
    free(r->bias);
    memset(r, 0, sizeof *r);
}

int srv_check_context(srv_request *r, int32_t n_prompt, int32_t n_ctx, srv_error *e) {
    if (n_prompt <= 0) return BAD(e, r->kind == SRV_CHAT ? "messages" : "prompt", "the prompt is empty");
    if (n_prompt >= n_ctx)
        return srv_error_set(e, 400, "invalid_request_error", r->kind == SRV_CHAT ? "messages" : "prompt",
                             "context_length_exceeded",
                             "This model's maximum context length is %d tokens, but the prompt has %d tokens "
                             "(at least one more is needed for the completion)",
                             (int)n_ctx, (int)n_prompt);
    if (r->max_tokens < 0) {
        r->max_tokens = n_ctx - n_prompt;
        return 0;
    }
    if ((int64_t)n_prompt + r->max_tokens > n_ctx)
        return srv_error_set(e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                             "This model's maximum context length is %d tokens, but %d prompt tokens + "
                             "max_tokens %d = %lld exceed it",
                             (int)n_ctx, (int)n_prompt, (int)r->max_tokens,
                             (long long)n_prompt + r->max_tokens);
    return 0;
}

/* ---------------------------------------------------------------- tokenize endpoints --------- */

int srv_tokenize_parse(const char *body, size_t len, const srv_limits *lim, srv_tokenize_req *out, srv_error *e) {
    memset(out, 0, sizeof *out);
    int st;
    cJSON *root = parse_body(body, len, lim, e, &st);
    if (!root) return st;
    out->add_special = 1;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!c) st = BAD(e, "content", "'content' is required");
    else if (!cJSON_IsString(c)) st = BAD(e, "content", "'content' must be a string");
    else if (strlen(c->valuestring) > lim->prompt_bytes_max)
        st = BAD(e, "content", "'content' too long: %zu bytes (at most %zu)", strlen(c->valuestring), lim->prompt_bytes_max);
    if (!st) {
        out->content_len = strlen(c->valuestring);
        out->content = dup_bytes(c->valuestring, out->content_len);
        if (!out->content) st = oom(e);
    }
    if (!st && get_bool(root, "add_special", &out->add_special, e) < 0) st = e->http_status;
    if (!st && get_bool(root, "parse_special", &out->parse_special, e) < 0) st = e->http_status;
    cJSON_Delete(root);
    if (st) srv_tokenize_free(out);
    return st;
}

void srv_tokenize_free(srv_tokenize_req *r) {
    if (!r) return;
    free(r->content);
    memset(r, 0, sizeof *r);
}

int srv_detokenize_parse(const char *body, size_t len, const srv_limits *lim, srv_detokenize_req *out,
                         srv_error *e) {
    memset(out, 0, sizeof *out);
    int st;
    cJSON *root = parse_body(body, len, lim, e, &st);
    if (!root) return st;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!t) st = BAD(e, "tokens", "'tokens' is required");
    else if (!cJSON_IsArray(t)) st = BAD(e, "tokens", "'tokens' must be an array of token ids");
    else st = parse_ids(t, "tokens", lim, &out->tokens, &out->n_tokens, e);
    cJSON_Delete(root);
    if (st) srv_detokenize_free(out);
    return st;
}

void srv_detokenize_free(srv_detokenize_req *r) {
    if (!r) return;
    free(r->tokens);
    memset(r, 0, sizeof *r);
}
