/*
 * metrics.h: the server's counters, gauges and histograms, rendered in the Prometheus text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * One mutex guards everything: updates come from the HTTP threads (request outcomes) and the
 * scheduler thread (tokens, batch sizes, latencies), at most a few per generated token, so a lock
 * costs nothing measurable next to a forward pass, and the rendering sees one consistent snapshot.
 * Histograms have fixed bucket bounds (no allocation after create).
 */
#ifndef MN_SERVER_METRICS_H
#define MN_SERVER_METRICS_H

#include <stdint.h>

#include "server/textout.h"

typedef struct srv_metrics srv_metrics;

typedef enum srv_hist_id {
    SRV_HIST_BATCH = 0, /* tokens per forward pass */
    SRV_HIST_TTFT,      /* seconds from request arrival to its first generated token */
    SRV_HIST_ITL,       /* seconds between consecutive tokens of one sequence */
    SRV_HIST_COUNT
} srv_hist_id;

typedef enum srv_counter_id {
    SRV_C_PROMPT_TOKENS = 0, /* prompt tokens of admitted sequences */
    SRV_C_PREFIX_HIT_TOKENS, /* of those, served from the prefix cache */
    SRV_C_GENERATED_TOKENS,
    SRV_C_STEPS,             /* forward passes */
    SRV_C_PREEMPTIONS,       /* sequences evicted from the KV pool and requeued */
    SRV_C_CANCELLED,         /* sequences dropped because their client went away */
    SRV_C_COUNT
} srv_counter_id;

typedef enum srv_gauge_id {
    SRV_G_QUEUE = 0,  /* requests waiting for a slot */
    SRV_G_RUNNING,    /* sequences in the batch */
    SRV_G_KV_FREE,    /* free KV blocks */
    SRV_G_KV_CACHED,  /* idle blocks kept for prefix reuse */
    SRV_G_KV_TOTAL,
    SRV_G_COUNT
} srv_gauge_id;

srv_metrics *srv_metrics_create(void); /* NULL when out of memory */
void srv_metrics_free(srv_metrics *m);

/* endpoint: a short static label ("chat", "completions", "models", ...). */
void srv_metrics_request(srv_metrics *m, const char *endpoint, int http_status);
void srv_metrics_add(srv_metrics *m, srv_counter_id c, uint64_t v);
void srv_metrics_gauge(srv_metrics *m, srv_gauge_id g, double v);
void srv_metrics_observe(srv_metrics *m, srv_hist_id h, double v);
uint64_t srv_metrics_counter(srv_metrics *m, srv_counter_id c);

/* Appends the exposition text to out. 0 or -1 (out of memory). */
int srv_metrics_render(srv_metrics *m, srv_buf *out);

#endif
