/*
 * metrics.c: counters, gauges and fixed-bucket histograms behind one mutex (metrics.h).
 *
 * Request outcomes are counted per (endpoint label, status) in a small fixed table: endpoints are
 * static strings from the HTTP layer and statuses come from a short list, so the table cannot
 * grow with client input; an unexpected pair lands in the last slot as ("other", status).
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_REQ_SLOTS 64
#define MAX_BUCKETS 16

typedef struct hist {
    const char *name, *help;
    int n_bounds;
    double bounds[MAX_BUCKETS];
    uint64_t counts[MAX_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
} hist;

typedef struct req_slot {
    const char *endpoint;
    int status;
    uint64_t n;
} req_slot;

struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t counters[SRV_C_COUNT];
    double gauges[SRV_G_COUNT];
    hist hists[SRV_HIST_COUNT];
    req_slot reqs[N_REQ_SLOTS];
    int n_reqs;
};

static const struct {
    const char *name, *help;
} COUNTERS[SRV_C_COUNT] = {
    {"minnow_prompt_tokens_total", "Prompt tokens of admitted sequences."},
    {"minnow_prefix_cache_hit_tokens_total", "Prompt tokens served from the prefix cache (not evaluated)."},
    {"minnow_generated_tokens_total", "Tokens generated."},
    {"minnow_forward_passes_total", "Forward passes (scheduler steps) run."},
    {"minnow_preemptions_total", "Sequences evicted from the KV pool and requeued."},
    {"minnow_cancelled_sequences_total", "Sequences dropped because their client disconnected."},
};

static const struct {
    const char *name, *help;
} GAUGES[SRV_G_COUNT] = {
    {"minnow_queue_depth", "Requests waiting for a sequence slot."},
    {"minnow_running_sequences", "Sequences being evaluated."},
    {"minnow_kv_blocks_free", "KV cache blocks not used by any sequence."},
    {"minnow_kv_blocks_cached", "Idle KV blocks kept for prefix reuse."},
    {"minnow_kv_blocks_total", "KV cache blocks in the pool."},
};

static void hist_init(hist *h, const char *name, const char *help, const double *b, int n) {
    h->name = name;
    h->help = help;
    h->n_bounds = n;
    memcpy(h->bounds, b, (size_t)n * sizeof *b);
}

srv_metrics *srv_metrics_create(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL)) {
        free(m);
        return NULL;
    }
    static const double batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048};
    static const double ttft[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double itl[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    hist_init(&m->hists[SRV_HIST_BATCH], "minnow_batch_tokens", "Tokens per forward pass.", batch,
              (int)(sizeof batch / sizeof batch[0]));
    hist_init(&m->hists[SRV_HIST_TTFT], "minnow_time_to_first_token_seconds",
              "Seconds from request arrival to its first generated token.", ttft, (int)(sizeof ttft / sizeof ttft[0]));
    hist_init(&m->hists[SRV_HIST_ITL], "minnow_inter_token_latency_seconds",
              "Seconds between consecutive generated tokens of a sequence.", itl, (int)(sizeof itl / sizeof itl[0]));
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void srv_metrics_request(srv_metrics *m, const char *endpoint, int http_status) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_reqs; i++)
        if (m->reqs[i].status == http_status && !strcmp(m->reqs[i].endpoint, endpoint)) break;
    if (i == m->n_reqs) {
        if (m->n_reqs < N_REQ_SLOTS - 1) {
            m->reqs[i].endpoint = endpoint;
            m->reqs[i].status = http_status;
            m->n_reqs++;
        } else {
            i = N_REQ_SLOTS - 1; /* overflow slot */
            m->reqs[i].endpoint = "other";
            m->reqs[i].status = 0;
        }
    }
    m->reqs[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_add(srv_metrics *m, srv_counter_id c, uint64_t v) {
    if (!m || c < 0 || c >= SRV_C_COUNT) return;
    pthread_mutex_lock(&m->mu);
    m->counters[c] += v;
    pthread_mutex_unlock(&m->mu);
}

uint64_t srv_metrics_counter(srv_metrics *m, srv_counter_id c) {
    if (!m || c < 0 || c >= SRV_C_COUNT) return 0;
    pthread_mutex_lock(&m->mu);
    uint64_t v = m->counters[c];
    pthread_mutex_unlock(&m->mu);
    return v;
}

void srv_metrics_gauge(srv_metrics *m, srv_gauge_id g, double v) {
    if (!m || g < 0 || g >= SRV_G_COUNT) return;
    pthread_mutex_lock(&m->mu);
    m->gauges[g] = v;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe(srv_metrics *m, srv_hist_id id, double v) {
    if (!m || id < 0 || id >= SRV_HIST_COUNT) return;
    pthread_mutex_lock(&m->mu);
    hist *h = &m->hists[id];
    int b = 0;
    while (b < h->n_bounds && v > h->bounds[b]) b++;
    h->counts[b]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

int srv_metrics_render(srv_metrics *m, srv_buf *o) {
    int r = 0;
    pthread_mutex_lock(&m->mu);
    r |= srv_buf_printf(o, "# HELP minnow_requests_total HTTP requests answered, by endpoint and status.\n"
                           "# TYPE minnow_requests_total counter\n");
    for (int i = 0; i < N_REQ_SLOTS; i++) {
        if (i >= m->n_reqs && i != N_REQ_SLOTS - 1) continue;
        if (!m->reqs[i].endpoint) continue;
        r |= srv_buf_printf(o, "minnow_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", m->reqs[i].endpoint,
                            m->reqs[i].status, (unsigned long long)m->reqs[i].n);
    }
    for (int c = 0; c < SRV_C_COUNT; c++)
        r |= srv_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", COUNTERS[c].name, COUNTERS[c].help,
                            COUNTERS[c].name, COUNTERS[c].name, (unsigned long long)m->counters[c]);
    for (int g = 0; g < SRV_G_COUNT; g++)
        r |= srv_buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", GAUGES[g].name, GAUGES[g].help,
                            GAUGES[g].name, GAUGES[g].name, m->gauges[g]);
    for (int id = 0; id < SRV_HIST_COUNT; id++) {
        const hist *h = &m->hists[id];
        r |= srv_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
        uint64_t cum = 0;
        for (int b = 0; b < h->n_bounds; b++) {
            cum += h->counts[b];
            r |= srv_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->bounds[b], (unsigned long long)cum);
        }
        cum += h->counts[h->n_bounds];
        r |= srv_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", h->name,
                            (unsigned long long)cum, h->name, h->sum, h->name, (unsigned long long)h->n);
    }
    pthread_mutex_unlock(&m->mu);
    return r ? -1 : 0;
}
