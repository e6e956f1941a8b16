/*
 * request.h: the server's request parser and validator, as pure functions over a body buffer.
 *
 * Every byte a client sends reaches the engine through here. A body is checked before JSON
 * parsing (size, nesting depth, NUL escapes: a linear pre-scan, so a million `[` cost one pass
 * and no recursion), parsed with cJSON, and then every known field is type- and range-checked and
 * copied into an owned srv_request; the cJSON tree is freed before returning. Unknown fields are
 * ignored (as llama.cpp and most OpenAI-compatible servers do). On a bad value the result is an
 * srv_error naming the parameter, with the HTTP status and OpenAI error type to answer with.
 *
 * Why pure functions: no socket, no model, no global state, so the same code is unit-tested,
 * fuzzed (tests/fuzz/fuzz_server_request.c) and run by the HTTP layer. The model-dependent
 * limits (vocabulary size, context size) arrive in srv_limits.
 *
 * What is NOT checked here (needs the model): the prompt's token count against the context
 * (srv_check_context, after tokenization) and the chat template rendering.
 */
#ifndef MN_SERVER_REQUEST_H
#define MN_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "minnow.h"

/* An error to answer a client with: {"error":{"message","type","param","code"}}. */
typedef struct srv_error {
    int http_status;  /* 400, 401, 404, 405, 413, 415, 503, ... */
    const char *type; /* "invalid_request_error", "server_error", ... (static string) */
    char param[64];   /* the offending field ("" when none: JSON null) */
    char code[48];    /* machine-readable code ("" when none: JSON null) */
    char message[512];
} srv_error;

/* Fills e and returns its http_status. param and code may be NULL. */
int srv_error_set(srv_error *e, int http_status, const char *type, const char *param, const char *code,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* Caps: every size a client controls is bounded by one of these. */
typedef struct srv_limits {
    size_t body_bytes_max;      /* whole request body */
    int32_t json_depth_max;     /* nesting of [ and { */
    size_t prompt_bytes_max;    /* text of the prompt / all messages together */
    int32_t n_messages_max;
    int32_t n_vocab;            /* token ids must be in [0, n_vocab) */
    int32_t n_ctx;              /* context per sequence: max_tokens and prompt-id count cap */
    int32_t n_choices_max;      /* n */
    int32_t n_stop_max;         /* stop strings */
    int32_t stop_bytes_max;     /* bytes of one stop string */
    int32_t top_logprobs_max;   /* chat top_logprobs / completions logprobs */
    int32_t n_logit_bias_max;
} srv_limits;

/* Defaults for a model with n_vocab tokens and n_ctx positions per sequence, n_choices_max = n. */
srv_limits srv_limits_default(int32_t n_vocab, int32_t n_ctx, int32_t n_choices_max);

typedef enum srv_kind {
    SRV_CHAT = 0,       /* POST /v1/chat/completions */
    SRV_COMPLETION = 1, /* POST /v1/completions */
} srv_kind;

typedef enum srv_role {
    SRV_ROLE_SYSTEM = 0,
    SRV_ROLE_USER,
    SRV_ROLE_ASSISTANT,
    SRV_ROLE_DEVELOPER, /* newer OpenAI name for system; rendered as system */
    SRV_ROLE_TOOL,
} srv_role;

const char *srv_role_name(srv_role r); /* "system", ... ("developer" renders as "system") */

typedef struct srv_message {
    srv_role role;
    char *content; /* owned, NUL-terminated (text parts concatenated) */
    size_t content_len;
} srv_message;

/* A generation request after validation. All pointers owned; free with srv_request_free. */
typedef struct srv_request {
    srv_kind kind;
    char *model;               /* as sent, or NULL */
    srv_message *messages;     /* chat */
    int32_t n_messages;
    char *prompt;              /* completion: text prompt (NULL when token ids were given) */
    size_t prompt_len;
    int32_t *prompt_ids;       /* completion: token-id prompt, each in [0, n_vocab) */
    int32_t n_prompt_ids;
    int32_t max_tokens;        /* >= 1, or -1 when not given (fill the context) */
    mn_sampler_params sampling;/* validated; n_probs set from logprobs */
    int has_seed;              /* 0: the server picks a seed */
    int32_t n;                 /* choices, [1, n_choices_max] */
    char **stop;               /* n_stop strings, each non-empty */
    int32_t *stop_len;
    int32_t n_stop;
    int logprobs;              /* return log-probabilities */
    int32_t top_logprobs;      /* alternatives per token, [0, top_logprobs_max] */
    int stream;
    int include_usage;         /* stream_options.include_usage */
    int32_t *bias_ids;         /* logit_bias */
    float *bias;
    int32_t n_bias;
} srv_request;

/* Parses and validates a chat/completions body. On success *out is filled (free with
 * srv_request_free) and 0 is returned; else out is left empty, e says why, and e->http_status is
 * returned. body need not be NUL-terminated and may contain any bytes. */
int srv_request_parse(srv_kind kind, const char *body, size_t len, const srv_limits *lim, srv_request *out,
                      srv_error *e);
void srv_request_free(srv_request *r);

/* After tokenization: prompt of n_prompt tokens. Rejects an empty prompt and prompt + max_tokens >
 * n_ctx (400, code context_length_exceeded); resolves max_tokens -1 to the room left. Returns 0 or
 * the HTTP status. */
int srv_check_context(srv_request *r, int32_t n_prompt, int32_t n_ctx, srv_error *e);

/* POST /tokenize {"content": string, "add_special": bool = true, "parse_special": bool = false}
 * and POST /detokenize {"tokens": [ids]}. */
typedef struct srv_tokenize_req {
    char *content; /* owned */
    size_t content_len;
    int add_special;
    int parse_special;
} srv_tokenize_req;
int srv_tokenize_parse(const char *body, size_t len, const srv_limits *lim, srv_tokenize_req *out, srv_error *e);
void srv_tokenize_free(srv_tokenize_req *r);

typedef struct srv_detokenize_req {
    int32_t *tokens; /* owned, each in [0, n_vocab) */
    int32_t n_tokens;
} srv_detokenize_req;
int srv_detokenize_parse(const char *body, size_t len, const srv_limits *lim, srv_detokenize_req *out,
                         srv_error *e);
void srv_detokenize_free(srv_detokenize_req *r);

/* The linear pre-scan: checks nesting depth <= depth_max and that no string holds a \u0000
 * escape (which would silently truncate C strings). Returns 0 or 400 with e filled. */
int srv_json_prescan(const char *body, size_t len, int32_t depth_max, srv_error *e);

/* Content-Type check: NULL/"application/json" with optional parameters ("; charset=utf-8") is
 * accepted; anything else is 415. Returns 0 or 415. */
int srv_check_content_type(const char *value, srv_error *e);

/* Constant-time check of an "Authorization" header value against "Bearer <key>": the time does
 * not depend on where the strings differ (only on the length of the header). 1 when it matches. */
int srv_check_bearer(const char *header, const char *key);

#endif
