/*
 * sched.h: the continuous-batching scheduler: one thread that owns the mn_context and, step after
 * step, runs one forward pass over the decode tokens of every running sequence plus chunks of the
 * prompts being prefilled, then samples and publishes the new tokens.
 *
 * Threading contract (the only cross-thread traffic of the server):
 *   - HTTP threads create an srv_job (validated request + prompt tokens), srv_sched_submit it, and
 *     then only read its published output under job->mu (srv_job_wait / the fields marked
 *     "under mu"), or srv_sched_cancel it. They never touch the context.
 *   - The scheduler thread owns the context, the samplers and all per-sequence state; it writes a
 *     job's output under job->mu and broadcasts job->cv.
 *   - A job is reference-counted: the submitter holds one reference, the scheduler one while any
 *     of its sequences is queued or running. srv_job_release drops one; the last frees it.
 * Each choice of a request (n > 1) is its own sequence (own seq id, own sampler with seed + i);
 * choices after the first wait until the first has finished its prefill, then attach its cached
 * prompt blocks instead of recomputing them.
 */
#ifndef MN_SERVER_SCHED_H
#define MN_SERVER_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "minnow.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/textout.h"

#define SRV_TOP_LOGPROBS_MAX 20

typedef enum srv_finish {
    SRV_FIN_NONE = 0,
    SRV_FIN_STOP,   /* end-of-generation token or a stop sequence */
    SRV_FIN_LENGTH, /* max_tokens reached */
    SRV_FIN_ERROR,  /* see job->err */
} srv_finish;

/* One generated token's log-probabilities (OpenAI logprobs). */
typedef struct srv_lp {
    int32_t id;
    float logprob;
    int32_t n_top;
    mn_token_logprob top[SRV_TOP_LOGPROBS_MAX];
} srv_lp;

/* One choice's output so far (under job->mu). Text is valid UTF-8 and never contains stop text. */
typedef struct srv_choice {
    srv_buf text;
    srv_lp *lp; /* released tokens' log-probabilities (logprobs requested) */
    int32_t n_lp, cap_lp;
    srv_finish finish;
    int32_t n_gen; /* tokens generated (usage.completion_tokens) */
} srv_choice;

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    atomic_int cancelled; /* set by the HTTP side; the scheduler drops the job at its next step */

    /* immutable after submit */
    srv_request req;    /* owned */
    int32_t *prompt;    /* owned, n_prompt token ids */
    int32_t n_prompt;
    double t_arrival;   /* srv_now() at creation */

    /* under mu */
    srv_choice *choices; /* req.n */
    int32_t n_finished;
    int32_t n_cached;    /* prompt tokens served from the prefix cache (choice 0) */
    srv_error err;       /* when a choice finished with SRV_FIN_ERROR */
    uint64_t version;    /* incremented at every publish */
} srv_job;

double srv_now(void); /* monotonic seconds */

/* Takes ownership of *req (left zeroed) and of prompt (malloc'd). NULL when out of memory (then
 * both are freed). The job starts with one reference (the caller's). */
srv_job *srv_job_create(srv_request *req, int32_t *prompt, int32_t n_prompt);
void srv_job_release(srv_job *job);
/* Waits until job->version != seen or every choice finished or timeout_ms passed; returns the
 * version. Takes and releases job->mu. */
uint64_t srv_job_wait(srv_job *job, uint64_t seen, int timeout_ms);
/* 1 when every choice has finished (takes job->mu). */
int srv_job_done(srv_job *job);

typedef struct srv_sched srv_sched;

typedef struct srv_sched_params {
    int32_t n_parallel; /* sequences at once (= the context's n_seq_max) */
    int32_t max_queue;  /* sequences that may wait for a slot; a submit that would make running +
                           waiting exceed n_parallel + max_queue gets 503 */
} srv_sched_params;

/* Starts the scheduler thread over ctx (which must have n_seq_max >= n_parallel; the scheduler
 * becomes its only user until srv_sched_free). tok and metrics are borrowed. */
mn_status srv_sched_create(mn_context *ctx, const mn_tokenizer *tok, srv_metrics *metrics,
                           const srv_sched_params *p, srv_sched **out, mn_error *err);
/* Queues a job (the scheduler takes its own reference). 0, or 503 with e filled when the queue is
 * full or the scheduler is shutting down. */
int srv_sched_submit(srv_sched *s, srv_job *job, srv_error *e);
/* Marks the job cancelled and wakes the scheduler: its sequences and KV blocks are freed at the
 * start of the next step. Safe from any thread, idempotent. */
void srv_sched_cancel(srv_sched *s, srv_job *job);
/* Queued + running sequences (for /health and tests). */
int32_t srv_sched_load(srv_sched *s);
/* Stops taking jobs (submits get 503), lets running jobs finish for up to timeout_s seconds, then
 * fails the rest ("server shutting down"), and joins the thread. Idempotent. */
void srv_sched_shutdown(srv_sched *s, double timeout_s);
/* Shuts down (timeout 0) if still running, and frees. The context is not freed. */
void srv_sched_free(srv_sched *s);

#endif
