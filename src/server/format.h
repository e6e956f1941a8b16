/*
 * format.h: OpenAI response shapes as JSON text: error objects, chat.completion and
 * text_completion responses, and their streaming chunks as Server-Sent Events.
 *
 * The formatters read a job's published output (sched.h) and must be called with job->mu held;
 * they allocate only their output. A stream is driven by a per-request srv_stream_state that
 * remembers how much of each choice was already sent, so each call emits exactly the new part:
 *   chat:        data: {"object":"chat.completion.chunk","choices":[{"index":i,"delta":{...}}]}
 *   completions: data: {"object":"text_completion","choices":[{"index":i,"text":"..."}]}
 * the first chat chunk of a choice carries delta.role; the last carries finish_reason; with
 * stream_options.include_usage every chunk has "usage": null and one last chunk has empty
 * choices and the usage; an error ends the stream with data: {"error":{...}}; then data: [DONE].
 */
#ifndef MN_SERVER_FORMAT_H
#define MN_SERVER_FORMAT_H

#include <stdint.h>

#include "minnow.h"
#include "server/request.h"
#include "server/sched.h"
#include "server/textout.h"

/* {"error":{"message","type","param","code"}} (param/code null when empty). malloc'd, NULL on OOM. */
char *srv_format_error(const srv_error *e);

typedef struct srv_resp_meta {
    char id[48];       /* "chatcmpl-..." / "cmpl-..." */
    long long created; /* unix seconds */
    const char *model; /* model id */
} srv_resp_meta;

/* The whole non-streaming response. job->mu held; every choice finished without error. */
char *srv_format_response(const srv_job *job, const mn_tokenizer *tok, const srv_resp_meta *meta);

typedef struct srv_stream_choice {
    size_t text_sent;
    int32_t lp_sent;
    int role_sent, fin_sent;
} srv_stream_choice;

typedef struct srv_stream_state {
    srv_stream_choice *choices; /* job->req.n, zeroed */
    int error_sent, usage_sent, done_sent;
} srv_stream_state;

/* Appends the events for whatever is new in job since the last call. job->mu held. Returns 1
 * when the stream is complete (data: [DONE] appended), 0 otherwise, -1 when out of memory. */
int srv_format_stream(const srv_job *job, const mn_tokenizer *tok, const srv_resp_meta *meta,
                      srv_stream_state *st, srv_buf *out);

/* Token piece for display (show_special on, invalid UTF-8 replaced): appended to out. */
int srv_piece_text(const mn_tokenizer *tok, int32_t id, int show_special, srv_buf *raw, srv_buf *out);

#endif
