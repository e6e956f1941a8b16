/*
 * server.h: `minnow serve`, an OpenAI-compatible HTTP server (entry point for cli/cmd_serve.c).
 *
 * Layers, each in its own file:
 *   request.c  body -> validated srv_request (pure, fuzzed)
 *   prompt.c   srv_request -> prompt token ids (chat template, tokenizer)
 *   sched.c    the scheduler thread: continuous batching over one mn_context
 *   textout.c  token bytes -> UTF-8-safe text with stop-sequence holdback
 *   http.c     libmicrohttpd: routing, limits, auth, JSON and SSE responses
 *   metrics.c  Prometheus counters and histograms
 * Threads: libmicrohttpd runs one thread per connection (parsing, tokenizing, formatting and
 * waiting for output happen there); all model compute happens on the one scheduler thread; the
 * caller's thread loads the model and then waits for the stop signal.
 */
#ifndef MN_SERVER_SERVER_H
#define MN_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_config {
    const char *model_path;
    const char *alias;         /* model id in responses; NULL: the file's base name */
    const char *host;          /* bind address, e.g. "127.0.0.1" */
    int port;                  /* 0: any free port (printed on stderr) */
    int n_threads;             /* compute threads; <= 0: all cores */
    int32_t n_ctx;             /* context per sequence; <= 0: the model's training context */
    int32_t n_parallel;        /* sequences evaluated together */
    int32_t n_batch;           /* most tokens per forward pass; <= 0: the context's default */
    uint64_t kv_memory_mb;     /* KV pool cap; 0: n_ctx x n_parallel */
    const char *api_key;       /* NULL: no auth */
    int32_t max_queue;         /* sequences waiting beyond n_parallel before 503 */
    size_t body_bytes_max;     /* request body cap */
    unsigned idle_timeout_s;   /* per-connection inactivity timeout (headers, keep-alive) */
    unsigned max_connections;  /* concurrent connections (bounds threads and fds) */
    double drain_timeout_s;    /* on stop: time running requests get to finish */
    const char *cors_origin;   /* allowed browser Origin ("*" any); NULL: cross-origin refused */
    int stop_fd;               /* becomes readable when the server must stop (self-pipe) */
    int quiet;                 /* no per-request log lines */
} srv_config;

/* Defaults for everything but model_path and stop_fd. */
srv_config srv_config_default(void);

/* Starts listening, loads the model (GET /health says "loading" meanwhile), serves until stop_fd
 * is readable, then drains and stops. Returns the process exit code: 0 after a clean stop, 1 when
 * the model cannot be loaded or the port cannot be bound (message on stderr). */
int srv_run(const srv_config *cfg);

#endif
