/*
 * sched.c: the continuous-batching scheduler (contract in sched.h).
 *
 * One step of the scheduler thread:
 *   1. take submitted jobs from the inbox (under s->mu) and turn each choice into a waiting
 *      sequence; drop sequences of cancelled jobs, freeing their KV blocks (truncate to 0);
 *   2. admit waiting sequences into free seq slots while the KV pool has room for their prompt:
 *      mn_context_kv_attach_prefix first, so only the uncached rest is evaluated;
 *   3. build ONE batch: first one decode token for every sequence that is generating (so they are
 *      never stalled), then prompt chunks of the sequences being prefilled, up to n_batch tokens
 *      in all (chunked prefill: a long prompt spreads over several steps); logits are asked for
 *      the last token of each sequence whose chunk reaches the end of its known tokens;
 *   4. mn_context_eval. On MN_EFULL (pool exhausted) the most recently admitted sequence is
 *      preempted: its blocks are freed and it goes back to the front of the queue with all its
 *      tokens (prompt + generated so far), to be recomputed later (its full blocks usually stay in
 *      the prefix cache, so recomputation is mostly cache hits). A sequence that cannot fit even
 *      alone fails with a clear error;
 *   5. sample a token for each sequence with logits, turn it into text through srv_textout
 *      (UTF-8 and stop-sequence holdback), publish it under the job's mutex, and finish the
 *      sequence on end-of-generation, a stop sequence or max_tokens.
 * A sequence is uniformly "tokens[0..n_tokens) of which n_past are in the KV cache": prefill is
 * n_tokens - n_past > 1, decode is == 1, and recompute after preemption is just prefill again.
 * Nothing here allocates per token except the amortised growth of a job's published text.
 */
#include "server/sched.h"

#include "core/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- jobs ----------------------- */

srv_job *srv_job_create(srv_request *req, int32_t *prompt, int32_t n_prompt) {
    srv_job *j = calloc(1, sizeof *j);
    srv_choice *ch = j ? calloc((size_t)(req->n > 0 ? req->n : 1), sizeof *ch) : NULL;
    if (!j || !ch || pthread_mutex_init(&j->mu, NULL)) {
        free(j);
        free(ch);
        free(prompt);
        srv_request_free(req);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancelled, 0);
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->choices = ch;
    j->t_arrival = srv_now();
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    if (atomic_fetch_sub(&j->refs, 1) != 1) return;
    for (int32_t i = 0; i < j->req.n; i++) {
        srv_buf_free(&j->choices[i].text);
        free(j->choices[i].lp);
    }
    free(j->choices);
    free(j->prompt);
    srv_request_free(&j->req);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

uint64_t srv_job_wait(srv_job *j, uint64_t seen, int timeout_ms) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (j->version == seen && j->n_finished < j->req.n)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT) break;
    uint64_t v = j->version;
    pthread_mutex_unlock(&j->mu);
    return v;
}

int srv_job_done(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int d = j->n_finished >= j->req.n;
    pthread_mutex_unlock(&j->mu);
    return d;
}

/* ---------------------------------------------------------------- sequences ------------------ */

typedef struct srv_seq {
    srv_job *job;
    int32_t choice;
    int32_t slot;        /* seq id while admitted, -1 while waiting */
    int32_t *tokens;     /* prompt + generated; capacity n_prompt + max_tokens */
    int32_t n_tokens, n_past;
    int32_t n_gen;
    int admitted_once;
    uint64_t admit_order;
    mn_sampler *smp;
    srv_textout tout;
    uint64_t n_fed;      /* raw bytes fed to tout */
    uint64_t *tok_start; /* per generated token: raw byte offset where its piece starts */
    srv_lp *lp;          /* per generated token (logprobs requested), else NULL */
    int32_t n_lp_pub;    /* entries published */
    double t_last;       /* time of the last token (inter-token latency) */
    int32_t batch_row;   /* logits index in the current step, -1 when none */
    int32_t batch_n;     /* tokens in the current step's batch */
} srv_seq;

struct srv_sched {
    mn_context *ctx;
    const mn_tokenizer *tok;
    srv_metrics *metrics;
    srv_sched_params p;
    int32_t n_vocab, n_batch, n_ctx;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu; /* guards everything in this block */
    pthread_cond_t cv;  /* wakes the scheduler (submit, cancel, shutdown) */
    pthread_cond_t exited_cv;
    srv_job **inbox;
    int32_t n_inbox, cap_inbox;
    int32_t n_queued;   /* waiting sequences + inbox sequences */
    int32_t n_running_pub;
    int draining, abort_now, exited;

    /* scheduler-thread only */
    srv_seq **waiting; /* FIFO by arrival (preempted ones go back to the front) */
    int32_t n_waiting, cap_waiting;
    srv_seq **running; /* by slot, NULL when free */
    int32_t n_running;
    uint64_t admit_counter;
    int32_t *b_tok, *b_pos, *b_seq;
    int8_t *b_logits;
    srv_seq **to_sample; /* sequences whose logits this step yields [n_parallel] */
    int32_t *sampled;    /* their tokens */
    char *piece;
    size_t piece_cap;
    srv_buf out;
};

static void seq_free(srv_seq *q) {
    if (!q) return;
    mn_sampler_free(q->smp);
    free(q->tokens);
    free(q->tok_start);
    free(q->lp);
    free(q);
}

static srv_seq *seq_create(srv_sched *s, srv_job *j, int32_t choice, srv_error *e) {
    srv_seq *q = calloc(1, sizeof *q);
    if (!q) goto oom;
    q->job = j;
    q->choice = choice;
    q->slot = -1;
    size_t cap = (size_t)j->n_prompt + (size_t)j->req.max_tokens;
    q->tokens = malloc(cap * sizeof *q->tokens);
    q->tok_start = malloc(((size_t)j->req.max_tokens + 1) * sizeof *q->tok_start);
    if (!q->tokens || !q->tok_start) goto oom;
    if (j->req.logprobs) {
        q->lp = calloc((size_t)j->req.max_tokens + 1, sizeof *q->lp);
        if (!q->lp) goto oom;
    }
    memcpy(q->tokens, j->prompt, (size_t)j->n_prompt * sizeof *q->tokens);
    q->n_tokens = j->n_prompt;
    /* choice i draws with seed + i; the penalties (presence/frequency/repeat) see only generated
     * tokens (mn_sampler_accept is never fed the prompt), as OpenAI's penalties do */
    mn_sampler_params sp = j->req.sampling;
    sp.seed += (uint64_t)choice;
    mn_error err = {0};
    if (mn_sampler_create(&sp, s->n_vocab, &q->smp, &err) != MN_OK) {
        srv_error_set(e, 400, "invalid_request_error", NULL, NULL, "%s", err.message);
        seq_free(q);
        return NULL;
    }
    if (j->req.n_bias > 0 && mn_sampler_set_logit_bias(q->smp, j->req.bias_ids, j->req.bias, j->req.n_bias) != MN_OK) {
        srv_error_set(e, 400, "invalid_request_error", "logit_bias", NULL, "%s", mn_sampler_errmsg(q->smp));
        seq_free(q);
        return NULL;
    }
    srv_textout_init(&q->tout, (const char *const *)j->req.stop, j->req.stop_len, j->req.n_stop);
    atomic_fetch_add(&j->refs, 1); /* the sequence's reference, dropped by seq_finish */
    return q;
oom:
    seq_free(q);
    srv_error_set(e, 503, "server_error", NULL, "out_of_memory", "out of memory for a new sequence");
    return NULL;
}

/* ---------------------------------------------------------------- publishing ----------------- */

/* Publishes released text and log-probabilities of q, and its finish (SRV_FIN_NONE: running).
 * finished sequences release every remaining token whose bytes started before the cut. */
static void publish(srv_sched *s, srv_seq *q, srv_finish fin, const srv_error *err) {
    srv_job *j = q->job;
    srv_choice *c = &j->choices[q->choice];
    pthread_mutex_lock(&j->mu);
    int oom = 0;
    if (s->out.len) oom |= srv_buf_append(&c->text, s->out.p, s->out.len);
    if (q->lp) {
        int32_t upto = q->n_lp_pub;
        while (upto < q->n_gen) {
            uint64_t end = upto + 1 < q->n_gen ? q->tok_start[upto + 1] : q->n_fed;
            int whole = end <= q->tout.n_released;
            int partial = fin != SRV_FIN_NONE && q->tok_start[upto] < q->tout.n_released;
            if (!(whole || partial || (fin != SRV_FIN_NONE && !q->tout.stopped))) break;
            upto++;
        }
        if (upto > q->n_lp_pub) {
            int32_t need = c->n_lp + (upto - q->n_lp_pub);
            if (need > c->cap_lp) {
                int32_t cap = c->cap_lp ? c->cap_lp : 16;
                while (cap < need) cap *= 2;
                srv_lp *nl = realloc(c->lp, (size_t)cap * sizeof *nl);
                if (nl) {
                    c->lp = nl;
                    c->cap_lp = cap;
                } else {
                    oom = 1;
                }
            }
            if (need <= c->cap_lp) {
                memcpy(c->lp + c->n_lp, q->lp + q->n_lp_pub, (size_t)(upto - q->n_lp_pub) * sizeof *c->lp);
                c->n_lp = need;
                q->n_lp_pub = upto;
            }
        }
    }
    c->n_gen = q->n_gen;
    srv_error oom_err;
    if (oom && fin == SRV_FIN_NONE) {
        fin = SRV_FIN_ERROR;
        srv_error_set(&oom_err, 503, "server_error", NULL, "out_of_memory", "out of memory while generating");
        err = &oom_err;
    }
    if (fin != SRV_FIN_NONE && c->finish == SRV_FIN_NONE) {
        c->finish = fin;
        j->n_finished++;
        if (fin == SRV_FIN_ERROR && err && !j->err.message[0]) j->err = *err;
    }
    j->version++;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    s->out.len = 0;
}

/* ---------------------------------------------------------------- slots and queue ------------ */

static void update_queue_gauges(srv_sched *s) {
    pthread_mutex_lock(&s->mu);
    int32_t inbox_seqs = 0;
    for (int32_t i = 0; i < s->n_inbox; i++) inbox_seqs += s->inbox[i]->req.n;
    s->n_queued = s->n_waiting + inbox_seqs;
    s->n_running_pub = s->n_running;
    int32_t queued = s->n_queued;
    pthread_mutex_unlock(&s->mu);
    srv_metrics_gauge(s->metrics, SRV_G_QUEUE, queued);
    srv_metrics_gauge(s->metrics, SRV_G_RUNNING, s->n_running);
    mn_kv_stats st;
    mn_context_kv_stats(s->ctx, &st);
    srv_metrics_gauge(s->metrics, SRV_G_KV_FREE, st.n_free);
    srv_metrics_gauge(s->metrics, SRV_G_KV_CACHED, st.n_cached);
    srv_metrics_gauge(s->metrics, SRV_G_KV_TOTAL, st.n_blocks);
}

/* Frees q's slot and KV blocks (the blocks' full prefix stays in the prefix cache). */
static void seq_unslot(srv_sched *s, srv_seq *q) {
    if (q->slot < 0) return;
    mn_context_kv_truncate(s->ctx, q->slot, 0);
    s->running[q->slot] = NULL;
    s->n_running--;
    q->slot = -1;
    q->n_past = 0;
}

/* Ends q for good: publishes fin, frees it and drops the scheduler's job reference when it was
 * the job's last sequence. */
static void seq_finish(srv_sched *s, srv_seq *q, srv_finish fin, const srv_error *err) {
    srv_error oom;
    if ((fin == SRV_FIN_LENGTH || fin == SRV_FIN_STOP) && !q->tout.stopped &&
        srv_textout_finish(&q->tout, &s->out) != 0) {
        fin = SRV_FIN_ERROR;
        srv_error_set(&oom, 503, "server_error", NULL, "out_of_memory", "out of memory while generating");
        err = &oom;
    }
    publish(s, q, fin, err);
    seq_unslot(s, q);
    srv_job *j = q->job;
    seq_free(q);
    /* the scheduler holds one job reference per live sequence */
    srv_job_release(j);
}

static void waiting_remove(srv_sched *s, int32_t i) {
    memmove(s->waiting + i, s->waiting + i + 1, (size_t)(s->n_waiting - i - 1) * sizeof *s->waiting);
    s->n_waiting--;
}

static int waiting_push(srv_sched *s, srv_seq *q, int front) {
    /* capacity max_queue + n_parallel: submits keep queued + running <= that, and preemption only
     * moves a sequence from running to waiting; the check is a guard, not a policy */
    if (s->n_waiting >= s->cap_waiting) return -1;
    if (front) {
        memmove(s->waiting + 1, s->waiting, (size_t)s->n_waiting * sizeof *s->waiting);
        s->waiting[0] = q;
    } else {
        s->waiting[s->n_waiting] = q;
    }
    s->n_waiting++;
    return 0;
}

static void fail_seq(srv_sched *s, srv_seq *q, int http, const char *code, const char *msg) {
    srv_error e;
    srv_error_set(&e, http, http >= 500 ? "server_error" : "invalid_request_error", NULL, code, "%s", msg);
    seq_finish(s, q, SRV_FIN_ERROR, &e);
}

/* Moves inbox jobs into the waiting list, one sequence per choice. */
static void take_inbox(srv_sched *s, srv_job **jobs, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        srv_job *j = jobs[i];
        for (int32_t c = 0; c < j->req.n; c++) {
            srv_error e;
            srv_seq *q = seq_create(s, j, c, &e);
            if (!q) {
                /* fail this choice right here (it never became a sequence) */
                pthread_mutex_lock(&j->mu);
                if (j->choices[c].finish == SRV_FIN_NONE) {
                    j->choices[c].finish = SRV_FIN_ERROR;
                    j->n_finished++;
                    if (!j->err.message[0]) j->err = e;
                }
                j->version++;
                pthread_cond_broadcast(&j->cv);
                pthread_mutex_unlock(&j->mu);
                continue;
            }
            if (waiting_push(s, q, 0)) fail_seq(s, q, 503, "queue_full", "server busy: queue full; retry later");
        }
        srv_job_release(j); /* the inbox reference; each sequence holds its own */
    }
}

static void reap_cancelled(srv_sched *s) {
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        srv_seq *q = s->running[i];
        if (q && atomic_load(&q->job->cancelled)) {
            srv_metrics_add(s->metrics, SRV_C_CANCELLED, 1);
            fail_seq(s, q, 499, "cancelled", "request cancelled by the client");
        }
    }
    for (int32_t i = 0; i < s->n_waiting;) {
        srv_seq *q = s->waiting[i];
        if (atomic_load(&q->job->cancelled)) {
            waiting_remove(s, i);
            srv_metrics_add(s->metrics, SRV_C_CANCELLED, 1);
            fail_seq(s, q, 499, "cancelled", "request cancelled by the client");
        } else {
            i++;
        }
    }
}

static int32_t blocks_for(int32_t n_pos, int32_t bs) { return (n_pos + bs - 1) / bs; }

/* Blocks the running sequences still need to reach the end of their known tokens. */
static int64_t blocks_promised(srv_sched *s, int32_t bs) {
    int64_t need = 0;
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        srv_seq *q = s->running[i];
        if (q) need += blocks_for(q->n_tokens + 1, bs) - blocks_for(q->n_past, bs);
    }
    return need;
}

/* Is choice 0 of q's job still waiting or prefilling? Later choices wait for its prompt blocks. */
static int first_choice_pending(srv_sched *s, const srv_seq *q) {
    if (q->choice == 0 || q->admitted_once) return 0;
    for (int32_t i = 0; i < s->n_waiting; i++)
        if (s->waiting[i]->job == q->job && s->waiting[i]->choice == 0) return 1;
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        const srv_seq *r = s->running[i];
        if (r && r->job == q->job && r->choice == 0) return r->n_past < q->job->n_prompt;
    }
    return 0;
}

static void admit(srv_sched *s) {
    mn_kv_stats st;
    mn_context_kv_stats(s->ctx, &st);
    int32_t bs = st.block_size > 0 ? st.block_size : 16;
    for (int32_t i = 0; i < s->n_waiting && s->n_running < s->p.n_parallel;) {
        srv_seq *q = s->waiting[i];
        int32_t need = blocks_for(q->n_tokens + 1, bs);
        if (need > st.n_blocks) {
            waiting_remove(s, i);
            fail_seq(s, q, 503, "kv_cache_exhausted",
                     "the request needs more KV cache than the server has (raise --kv-memory or lower max_tokens)");
            continue;
        }
        /* keep room for what running sequences were promised; an empty server admits anyway */
        mn_context_kv_stats(s->ctx, &st);
        if (s->n_running > 0 && (int64_t)st.n_free - blocks_promised(s, bs) < need) break;
        if (first_choice_pending(s, q)) {
            i++;
            continue;
        }
        int32_t slot = 0;
        while (s->running[slot]) slot++;
        int32_t n_cached = 0;
        if (mn_context_kv_attach_prefix(s->ctx, slot, q->tokens, q->n_tokens, &n_cached) != MN_OK) n_cached = 0;
        q->slot = slot;
        q->n_past = n_cached;
        q->admit_order = ++s->admit_counter;
        s->running[slot] = q;
        s->n_running++;
        waiting_remove(s, i);
        if (!q->admitted_once) {
            q->admitted_once = 1;
            srv_metrics_add(s->metrics, SRV_C_PROMPT_TOKENS, (uint64_t)q->job->n_prompt);
            srv_metrics_add(s->metrics, SRV_C_PREFIX_HIT_TOKENS, (uint64_t)n_cached);
            if (q->choice == 0) {
                pthread_mutex_lock(&q->job->mu);
                q->job->n_cached = n_cached;
                pthread_mutex_unlock(&q->job->mu);
            }
        }
    }
}

/* Sends the most recently admitted running sequence back to the queue's front. Returns 0 (and
 * preempts nothing) when at most one sequence is running: alone, it cannot make room for itself. */
static int preempt_one(srv_sched *s) {
    srv_seq *victim = NULL;
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        srv_seq *q = s->running[i];
        if (q && (!victim || q->admit_order > victim->admit_order)) victim = q;
    }
    if (!victim || s->n_running <= 1) return 0;
    seq_unslot(s, victim);
    if (waiting_push(s, victim, 1)) fail_seq(s, victim, 503, "queue_full", "server busy: queue full; retry later");
    srv_metrics_add(s->metrics, SRV_C_PREEMPTIONS, 1);
    return 1;
}

/* ---------------------------------------------------------------- one step ------------------- */

/* Builds the batch; returns its token count. */
static int32_t build_batch(srv_sched *s) {
    int32_t n = 0, cap = s->n_batch;
    /* decode tokens first: every generating sequence advances each step */
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        srv_seq *q = s->running[i];
        if (!q) continue;
        q->batch_row = -1;
        q->batch_n = 0;
        if (q->n_tokens - q->n_past == 1 && n < cap) {
            s->b_tok[n] = q->tokens[q->n_past];
            s->b_pos[n] = q->n_past;
            s->b_seq[n] = q->slot;
            s->b_logits[n] = 1;
            q->batch_n = 1;
            n++;
        }
    }
    /* then prompt chunks, oldest admission first */
    for (;;) {
        srv_seq *best = NULL;
        for (int32_t i = 0; i < s->p.n_parallel; i++) {
            srv_seq *q = s->running[i];
            if (q && q->batch_n == 0 && q->n_tokens - q->n_past > 1 && (!best || q->admit_order < best->admit_order))
                best = q;
        }
        if (!best || n >= cap) break;
        int32_t take = best->n_tokens - best->n_past;
        if (take > cap - n) take = cap - n;
        for (int32_t k = 0; k < take; k++) {
            s->b_tok[n + k] = best->tokens[best->n_past + k];
            s->b_pos[n + k] = best->n_past + k;
            s->b_seq[n + k] = best->slot;
            s->b_logits[n + k] = 0;
        }
        best->batch_n = take;
        if (best->n_past + take == best->n_tokens) s->b_logits[n + take - 1] = 1;
        n += take;
    }
    /* logits rows are numbered in batch order among the rows that asked */
    int32_t row = 0;
    for (int32_t i = 0; i < n; i++)
        if (s->b_logits[i]) {
            for (int32_t k = 0; k < s->p.n_parallel; k++) {
                srv_seq *q = s->running[k];
                if (q && q->slot == s->b_seq[i]) q->batch_row = row;
            }
            row++;
        }
    return n;
}

/* Piece of token id into s->piece; returns its length. */
static size_t token_piece(srv_sched *s, int32_t id) {
    size_t n = 0;
    if (mn_token_to_piece(s->tok, id, 0, s->piece, s->piece_cap, &n) == MN_EFULL || n > s->piece_cap) {
        char *np = realloc(s->piece, n + 1);
        if (!np) return 0;
        s->piece = np;
        s->piece_cap = n + 1;
        if (mn_token_to_piece(s->tok, id, 0, s->piece, s->piece_cap, &n) != MN_OK) return 0;
    }
    return n <= s->piece_cap ? n : 0;
}

/* Sampling of one sequence (each has its own sampler), run on the context's threads. */
static void sample_one(void *arg, int32_t i) {
    srv_sched *s = arg;
    srv_seq *q = s->to_sample[i];
    s->sampled[i] = mn_sampler_sample(q->smp, mn_context_logits(s->ctx, q->batch_row));
}

static void on_token(srv_sched *s, srv_seq *q, int32_t id, double now) {
    mn_sampler_accept(q->smp, id);
    srv_job *j = q->job;
    if (q->n_gen == 0 && q->choice == 0) srv_metrics_observe(s->metrics, SRV_HIST_TTFT, now - j->t_arrival);
    else if (q->n_gen > 0) srv_metrics_observe(s->metrics, SRV_HIST_ITL, now - q->t_last);
    q->t_last = now;
    srv_metrics_add(s->metrics, SRV_C_GENERATED_TOKENS, 1);

    int32_t g = q->n_gen++;
    q->tokens[q->n_tokens++] = id;
    q->tok_start[g] = q->n_fed;
    if (q->lp) {
        mn_sample_info info;
        srv_lp *e = &q->lp[g];
        memset(e, 0, sizeof *e);
        e->id = id;
        if (mn_sampler_last(q->smp, &info) == MN_OK) {
            e->logprob = info.logprob;
            int32_t nt = info.n_top < j->req.top_logprobs ? info.n_top : j->req.top_logprobs;
            if (nt > SRV_TOP_LOGPROBS_MAX) nt = SRV_TOP_LOGPROBS_MAX;
            if (nt > 0 && info.top) memcpy(e->top, info.top, (size_t)nt * sizeof *e->top);
            e->n_top = nt;
        }
    }
    int eog = s->tok && mn_tokenizer_is_eog(s->tok, id);
    int stopped = 0;
    if (!eog && s->tok) {
        size_t n = token_piece(s, id);
        stopped = srv_textout_push(&q->tout, s->piece, n, &s->out);
        q->n_fed += n;
    }
    if (stopped < 0) fail_seq(s, q, 503, "out_of_memory", "out of memory while generating");
    else if (stopped || eog) seq_finish(s, q, SRV_FIN_STOP, NULL);
    else if (q->n_gen >= j->req.max_tokens) seq_finish(s, q, SRV_FIN_LENGTH, NULL);
    else publish(s, q, SRV_FIN_NONE, NULL);
}

static void step(srv_sched *s) {
    for (;;) {
        int32_t n = build_batch(s);
        if (n == 0) return;
        mn_batch b = {n, s->b_tok, s->b_pos, s->b_seq, s->b_logits};
        mn_status st = mn_context_eval(s->ctx, &b);
        if (st == MN_OK) {
            srv_metrics_add(s->metrics, SRV_C_STEPS, 1);
            srv_metrics_observe(s->metrics, SRV_HIST_BATCH, n);
            break;
        }
        if (st == MN_EFULL && preempt_one(s)) continue;
        /* alone and still failing (or another error): fail every sequence of the batch */
        char msg[400];
        snprintf(msg, sizeof msg, "%s: %s",
                 st == MN_EFULL ? "KV cache exhausted (raise --kv-memory)" : "evaluation failed",
                 mn_context_errmsg(s->ctx));
        for (int32_t i = 0; i < s->p.n_parallel; i++) {
            srv_seq *q = s->running[i];
            if (q && q->batch_n > 0) fail_seq(s, q, 503, st == MN_EFULL ? "kv_cache_exhausted" : "eval_failed", msg);
        }
        return;
    }
    double now = srv_now();
    int32_t n_sample = 0;
    for (int32_t i = 0; i < s->p.n_parallel; i++) {
        srv_seq *q = s->running[i];
        if (!q || q->batch_n == 0) continue;
        q->n_past += q->batch_n;
        if (q->batch_row >= 0 && q->n_past == q->n_tokens) {
            if (mn_context_logits(s->ctx, q->batch_row)) s->to_sample[n_sample++] = q;
            else fail_seq(s, q, 500, "internal_error", "no logits for a sequence");
        }
    }
    /* sample every sequence in parallel (full-vocabulary softmax per sequence), then hand out the
     * tokens in slot order */
    mn_context_parallel(s->ctx, n_sample, sample_one, s);
    for (int32_t i = 0; i < n_sample; i++) on_token(s, s->to_sample[i], s->sampled[i], now);
}

/* ---------------------------------------------------------------- thread --------------------- */

static void *sched_main(void *arg) {
    srv_sched *s = arg;
    srv_job **jobs = NULL;
    int32_t cap_jobs = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->abort_now && s->n_inbox == 0 && s->n_running == 0 && s->n_waiting == 0 && !s->draining)
            pthread_cond_wait(&s->cv, &s->mu);
        int abort_now = s->abort_now;
        int32_t n_jobs = 0;
        if (s->n_inbox > cap_jobs) {
            srv_job **nj = realloc(jobs, (size_t)s->n_inbox * sizeof *nj);
            if (nj) {
                jobs = nj;
                cap_jobs = s->n_inbox;
            }
        }
        if (s->n_inbox > 0 && s->n_inbox <= cap_jobs) {
            n_jobs = s->n_inbox;
            memcpy(jobs, s->inbox, (size_t)n_jobs * sizeof *jobs);
            s->n_inbox = 0;
        }
        int idle_drained = s->draining && s->n_inbox == 0 && n_jobs == 0 && s->n_running == 0 && s->n_waiting == 0;
        pthread_mutex_unlock(&s->mu);
        if (idle_drained) break;

        take_inbox(s, jobs, n_jobs);
        if (abort_now) {
            for (int32_t i = 0; i < s->p.n_parallel; i++)
                if (s->running[i]) fail_seq(s, s->running[i], 503, "shutting_down", "server shutting down");
            while (s->n_waiting > 0) {
                srv_seq *q = s->waiting[0];
                waiting_remove(s, 0);
                fail_seq(s, q, 503, "shutting_down", "server shutting down");
            }
            update_queue_gauges(s);
            pthread_mutex_lock(&s->mu);
            int more = s->n_inbox > 0;
            pthread_mutex_unlock(&s->mu);
            if (!more) break;
            continue;
        }
        reap_cancelled(s);
        admit(s);
        update_queue_gauges(s);
        step(s);
        update_queue_gauges(s); /* sequences that finished in this step are gone now */
    }
    free(jobs);
    pthread_mutex_lock(&s->mu);
    s->exited = 1;
    pthread_cond_broadcast(&s->exited_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- public --------------------- */

mn_status srv_sched_create(mn_context *ctx, const mn_tokenizer *tok, srv_metrics *metrics,
                           const srv_sched_params *p, srv_sched **out, mn_error *err) {
    *out = NULL;
    if (!ctx || !p || p->n_parallel < 1 || p->max_queue < 0)
        return mn_error_set(err, MN_EINVAL, "scheduler: bad parameters");
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return mn_error_set(err, MN_ENOMEM, "scheduler: out of memory");
    s->ctx = ctx;
    s->tok = tok;
    s->metrics = metrics;
    s->p = *p;
    s->n_vocab = tok ? mn_tokenizer_n_vocab(tok) : 0;
    s->n_batch = mn_context_n_batch(ctx);
    s->n_ctx = mn_context_n_ctx(ctx);
    s->cap_inbox = p->max_queue + p->n_parallel + 1;
    s->inbox = calloc((size_t)s->cap_inbox, sizeof *s->inbox);
    s->cap_waiting = p->max_queue + p->n_parallel + 1;
    s->waiting = calloc((size_t)s->cap_waiting, sizeof *s->waiting);
    s->running = calloc((size_t)p->n_parallel, sizeof *s->running);
    s->b_tok = malloc((size_t)s->n_batch * sizeof *s->b_tok);
    s->b_pos = malloc((size_t)s->n_batch * sizeof *s->b_pos);
    s->b_seq = malloc((size_t)s->n_batch * sizeof *s->b_seq);
    s->b_logits = malloc((size_t)s->n_batch);
    s->to_sample = calloc((size_t)s->p.n_parallel, sizeof *s->to_sample);
    s->sampled = calloc((size_t)s->p.n_parallel, sizeof *s->sampled);
    s->piece_cap = 256;
    s->piece = malloc(s->piece_cap);
    int mu_ok = !pthread_mutex_init(&s->mu, NULL);
    int cv_ok = !pthread_cond_init(&s->cv, NULL);
    int cv2_ok = !pthread_cond_init(&s->exited_cv, NULL);
    if (!s->inbox || !s->waiting || !s->running || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_logits ||
        !s->to_sample || !s->sampled || !s->piece || !mu_ok || !cv_ok || !cv2_ok || s->n_vocab <= 0) {
        mn_status st = s->n_vocab <= 0 ? MN_EINVAL : MN_ENOMEM;
        if (mu_ok) pthread_mutex_destroy(&s->mu);
        if (cv_ok) pthread_cond_destroy(&s->cv);
        if (cv2_ok) pthread_cond_destroy(&s->exited_cv);
        free(s->inbox), free(s->waiting), free(s->running), free(s->b_tok), free(s->b_pos), free(s->b_seq);
        free(s->b_logits), free(s->to_sample), free(s->sampled), free(s->piece), free(s);
        return mn_error_set(err, st, "%s", st == MN_EINVAL ? "scheduler: the model has no vocabulary" : "scheduler: out of memory");
    }
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        s->thread_started = 0;
        srv_sched_free(s);
        return mn_error_set(err, MN_ENOMEM, "scheduler: cannot start thread");
    }
    s->thread_started = 1;
    *out = s;
    return MN_OK;
}

int srv_sched_submit(srv_sched *s, srv_job *j, srv_error *e) {
    pthread_mutex_lock(&s->mu);
    int st = 0;
    if (s->draining || s->abort_now) {
        st = srv_error_set(e, 503, "server_error", NULL, "shutting_down", "server is shutting down");
    } else if (s->n_queued + s->n_running_pub + j->req.n > s->p.n_parallel + s->p.max_queue ||
               s->n_inbox >= s->cap_inbox) {
        st = srv_error_set(e, 503, "server_error", NULL, "queue_full",
                           "server busy: %d sequences running and %d waiting (--parallel %d, --max-queue %d); "
                           "retry later",
                           (int)s->n_running_pub, (int)s->n_queued, (int)s->p.n_parallel, (int)s->p.max_queue);
    } else {
        atomic_fetch_add(&j->refs, 1);
        s->inbox[s->n_inbox++] = j;
        s->n_queued += j->req.n;
        pthread_cond_signal(&s->cv);
    }
    int32_t queued = s->n_queued;
    pthread_mutex_unlock(&s->mu);
    if (!st) srv_metrics_gauge(s->metrics, SRV_G_QUEUE, queued);
    return st;
}

void srv_sched_cancel(srv_sched *s, srv_job *j) {
    atomic_store(&j->cancelled, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int32_t srv_sched_load(srv_sched *s) {
    pthread_mutex_lock(&s->mu);
    int32_t n = s->n_queued + s->n_running_pub;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void srv_sched_shutdown(srv_sched *s, double timeout_s) {
    if (!s || !s->thread_started) return;
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_cond_signal(&s->cv);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double whole = timeout_s > 0 ? timeout_s : 0;
    dl.tv_sec += (time_t)whole;
    dl.tv_nsec += (long)((whole - (double)(time_t)whole) * 1e9);
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (!s->exited)
        if (pthread_cond_timedwait(&s->exited_cv, &s->mu, &dl) == ETIMEDOUT) break;
    if (!s->exited) {
        s->abort_now = 1;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    srv_sched_shutdown(s, 0);
    /* the thread failed every sequence before exiting; only inbox leftovers can remain */
    for (int32_t i = 0; i < s->n_inbox; i++) srv_job_release(s->inbox[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->exited_cv);
    free(s->inbox);
    free(s->waiting);
    free(s->running);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_logits);
    free(s->to_sample);
    free(s->sampled);
    free(s->piece);
    srv_buf_free(&s->out);
    free(s);
}
