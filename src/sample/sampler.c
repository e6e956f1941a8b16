/*
 * sampler.c: the public sampler (minnow.h): validation, the chain built once at create time, and
 * the per-token path.
 *
 * mn_sampler_create checks every parameter (BAD_INPUTS rows 21-25) and turns the params into a
 * fixed array of stages, each a function pointer with its parameter, leaving out every stage at
 * its neutral value; greedy chains stop after the penalties. A sample then is: copy the logits into
 * the preallocated candidate array (through the hook's scratch copy when a hook is set; NaN becomes
 * -Inf), add the logit bias, run the stages, and pick (argmax or a draw from the sampler's own
 * PRNG). Everything a sample touches is allocated at create or when the bias is set, so the
 * per-token path never allocates, and its cost is O(n_vocab) plus what the stages need.
 *
 * Design choices the header documents: negative temperature means greedy (like zero) rather than
 * an error, because "<= 0: greedy" was already the contract; top_k and n_probs above n_vocab act
 * as n_vocab; penalty_last_n is bounded by MN_SAMPLER_HISTORY_MAX because the history is allocated
 * up front; the history is only kept when some penalty is on.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "sample/sample.h"

#define MAX_STAGES 8

typedef struct mn_sample_stage mn_sample_stage;
typedef void (*mn_sample_stage_fn)(const mn_sample_stage *st, mn_cands *c);

struct mn_sample_stage {
    const char *name;
    mn_sample_stage_fn apply;
    float value;                   /* top_p, min_p, temperature */
    int32_t k;                     /* top_k */
    const mn_sample_history *hist; /* penalties */
};

struct mn_sampler {
    mn_sampler_params params; /* as validated; top_k and n_probs clamped to n_vocab */
    int32_t n_vocab;
    int greedy;
    mn_sample_stage stages[MAX_STAGES];
    int32_t n_stages;

    mn_cand *cands;   /* n_vocab: the working array of every sample */
    float *scratch;   /* n_vocab: the hook's private copy of the logits */
    mn_sample_history hist;
    mn_rng rng;

    mn_logit_hook hook;
    void *hook_user;
    int32_t *bias_ids; /* n_bias entries each */
    float *bias;
    int32_t n_bias;

    int32_t n_top;          /* params.n_probs clamped to n_vocab */
    mn_cand *top_heap;      /* n_top: scratch of the top-logprob selection */
    mn_token_logprob *top;  /* n_top: the last sample's most likely tokens */
    mn_sample_info last;
    int has_last;

    mn_error err;
};

/* ---------------------------------------------------------------- stages ------------------- */

static void stage_penalties(const mn_sample_stage *st, mn_cands *c) { mn_sample_penalties(c, st->hist); }
static void stage_drop(const mn_sample_stage *st, mn_cands *c) {
    (void)st;
    mn_sample_drop_impossible(c);
}
static void stage_top_k(const mn_sample_stage *st, mn_cands *c) { mn_sample_top_k(c, st->k); }
static void stage_top_p(const mn_sample_stage *st, mn_cands *c) { mn_sample_top_p(c, st->value); }
static void stage_min_p(const mn_sample_stage *st, mn_cands *c) { mn_sample_min_p(c, st->value); }
static void stage_temperature(const mn_sample_stage *st, mn_cands *c) {
    mn_sample_temperature(c, st->value);
}

static void add_stage(mn_sampler *s, const char *name, mn_sample_stage_fn fn, float value, int32_t k) {
    s->stages[s->n_stages++] = (mn_sample_stage){name, fn, value, k, &s->hist};
}

static int penalties_on(const mn_sampler_params *p) {
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

/* Order matters and is part of the contract: penalties need the full id-indexed array, so they go
 * first; impossible tokens are dropped before any stage that normalises; top-p and min-p see the
 * temperature-1 distribution. */
static void build_chain(mn_sampler *s) {
    const mn_sampler_params *p = &s->params;
    if (penalties_on(p)) add_stage(s, "penalties", stage_penalties, 0.0f, 0);
    if (s->greedy) return;
    add_stage(s, "drop-impossible", stage_drop, 0.0f, 0);
    if (p->top_k > 0 && p->top_k < s->n_vocab) add_stage(s, "top-k", stage_top_k, 0.0f, p->top_k);
    if (p->top_p < 1.0f) add_stage(s, "top-p", stage_top_p, p->top_p, 0);
    if (p->min_p > 0.0f) add_stage(s, "min-p", stage_min_p, p->min_p, 0);
    if (p->temperature != 1.0f) add_stage(s, "temperature", stage_temperature, p->temperature, 0);
}

int32_t mn_sampler_chain(const mn_sampler *s, const char **names, int32_t cap) {
    int32_t n = 0;
    for (int32_t i = 0; i < s->n_stages; i++, n++)
        if (n < cap) names[n] = s->stages[i].name;
    if (n < cap) names[n] = s->greedy ? "argmax" : "draw";
    return n + 1;
}

/* ---------------------------------------------------------------- create / free ------------ */

mn_sampler_params mn_sampler_default_params(void) {
    return (mn_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .penalty_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = 0,
        .n_probs = 0,
    };
}

/* Comparisons are written so that NaN fails them: !(x >= lo && x <= hi) rejects NaN too. */
static mn_status validate(const mn_sampler_params *p, int32_t n_vocab, mn_error *err) {
    MN_RETURN_IF(n_vocab < 1 || n_vocab > MN_SAMPLER_VOCAB_MAX, err, MN_EINVAL,
                 "n_vocab must be in [1, %d], got %d", MN_SAMPLER_VOCAB_MAX, (int)n_vocab);
    MN_RETURN_IF(!isfinite(p->temperature), err, MN_EINVAL,
                 "temperature must be finite (<= 0: greedy), got %g", (double)p->temperature);
    MN_RETURN_IF(p->top_k < 0, err, MN_EINVAL, "top_k must be >= 0 (0: off), got %d", (int)p->top_k);
    MN_RETURN_IF(!(p->top_p > 0.0f && p->top_p <= 1.0f), err, MN_EINVAL,
                 "top_p must be in (0, 1], got %g", (double)p->top_p);
    MN_RETURN_IF(!(p->min_p >= 0.0f && p->min_p <= 1.0f), err, MN_EINVAL,
                 "min_p must be in [0, 1], got %g", (double)p->min_p);
    MN_RETURN_IF(!(p->repeat_penalty > 0.0f && isfinite(p->repeat_penalty)), err, MN_EINVAL,
                 "repeat_penalty must be > 0 and finite, got %g", (double)p->repeat_penalty);
    MN_RETURN_IF(p->penalty_last_n < 0 || p->penalty_last_n > MN_SAMPLER_HISTORY_MAX, err, MN_EINVAL,
                 "penalty_last_n must be in [0, %d], got %d", MN_SAMPLER_HISTORY_MAX,
                 (int)p->penalty_last_n);
    MN_RETURN_IF(!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f), err, MN_EINVAL,
                 "frequency_penalty must be in [-2, 2], got %g", (double)p->frequency_penalty);
    MN_RETURN_IF(!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f), err, MN_EINVAL,
                 "presence_penalty must be in [-2, 2], got %g", (double)p->presence_penalty);
    MN_RETURN_IF(p->n_probs < 0 || p->n_probs > MN_SAMPLER_N_PROBS_MAX, err, MN_EINVAL,
                 "n_probs must be in [0, %d], got %d", MN_SAMPLER_N_PROBS_MAX, (int)p->n_probs);
    return MN_OK;
}

mn_status mn_sampler_create(const mn_sampler_params *params, int32_t n_vocab, mn_sampler **out,
                            mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "mn_sampler_create: out is NULL");
    *out = NULL;
    mn_sampler_params p = params ? *params : mn_sampler_default_params();
    MN_FORWARD(validate(&p, n_vocab, err));
    if (p.top_k > n_vocab) p.top_k = n_vocab;
    if (p.n_probs > n_vocab) p.n_probs = n_vocab;

    mn_status st = MN_OK;
    mn_sampler *s = calloc(1, sizeof *s);
    MN_RETURN_IF(!s, err, MN_ENOMEM, "sampler struct");
    s->params = p;
    s->n_vocab = n_vocab;
    s->greedy = p.temperature <= 0.0f;
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->scratch = malloc((size_t)n_vocab * sizeof *s->scratch);
    if (!s->cands || !s->scratch) {
        st = mn_error_set(err, MN_ENOMEM, "sampler candidates for a %d-token vocabulary", (int)n_vocab);
        goto fail;
    }
    st = mn_sample_history_init(&s->hist, n_vocab, penalties_on(&p) ? p.penalty_last_n : 0,
                                p.repeat_penalty, p.frequency_penalty, p.presence_penalty, err);
    if (st != MN_OK) goto fail;
    s->n_top = p.n_probs;
    if (s->n_top > 0) {
        s->top_heap = malloc((size_t)s->n_top * sizeof *s->top_heap);
        s->top = malloc((size_t)s->n_top * sizeof *s->top);
        if (!s->top_heap || !s->top) {
            st = mn_error_set(err, MN_ENOMEM, "sampler top-%d log-probabilities", (int)s->n_top);
            goto fail;
        }
    }
    build_chain(s);
    mn_rng_seed(&s->rng, p.seed);
    *out = s;
    return MN_OK;

fail:
    mn_sampler_free(s);
    return st;
}

void mn_sampler_free(mn_sampler *s) {
    if (!s) return;
    mn_sample_history_free(&s->hist);
    free(s->cands);
    free(s->scratch);
    free(s->bias_ids);
    free(s->bias);
    free(s->top_heap);
    free(s->top);
    free(s);
}

/* ---------------------------------------------------------------- per token ---------------- */

static void fill(mn_sampler *s, const float *logits) {
    const float *src = logits;
    if (s->hook) {
        memcpy(s->scratch, logits, (size_t)s->n_vocab * sizeof *s->scratch);
        s->hook(s->hook_user, s->scratch, s->n_vocab);
        src = s->scratch;
    }
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = src[i];
        s->cands[i] = (mn_cand){i, isnan(l) ? -INFINITY : l, 0.0f};
    }
    /* Biases are finite, so they cannot turn -Inf or +Inf into NaN. */
    for (int32_t j = 0; j < s->n_bias; j++) s->cands[s->bias_ids[j]].logit += s->bias[j];
}

static void record_logprobs(mn_sampler *s, const float *logits, int32_t token) {
    int32_t n_inf;
    double lse = mn_sample_logsumexp(logits, s->n_vocab, &n_inf);
    s->last.logprob = mn_sample_logprob(logits[token], lse, n_inf);
    mn_sample_top_logprobs(logits, s->n_vocab, lse, n_inf, s->n_top, s->top_heap, s->top);
    s->last.n_top = s->n_top;
    s->last.top = s->top;
}

int32_t mn_sampler_sample(mn_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    fill(s, logits);
    mn_cands c = {s->cands, s->n_vocab, 0};
    for (int32_t i = 0; i < s->n_stages && c.n > 0; i++) s->stages[i].apply(&s->stages[i], &c);

    mn_sample_info info = {0};
    if (c.n == 0) {
        /* Every token impossible (all -Inf/NaN after hook, bias and penalties): 0 is the argmax
         * when ties go to the lowest id, and always a valid id. */
        info.token = 0;
    } else if (s->greedy) {
        /* The greedy chain never drops candidates, so the array is still id-ordered and an
         * all -Inf array yields index 0, id 0. */
        const mn_cand *best = &c.data[mn_sample_argmax(&c)];
        info.token = best->id;
        info.n_possible = best->logit == -INFINITY ? 0 : 1;
        info.p = (float)info.n_possible;
    } else {
        int32_t i = mn_sample_draw(&c, mn_rng_uniform(&s->rng));
        info.token = c.data[i].id;
        info.p = c.data[i].p;
        for (int32_t j = 0; j < c.n; j++) info.n_possible += c.data[j].p > 0.0f;
    }
    s->last = info;
    if (s->n_top > 0) record_logprobs(s, logits, info.token);
    s->has_last = 1;
    return info.token;
}

void mn_sampler_accept(mn_sampler *s, int32_t token) {
    if (s) mn_sample_history_push(&s->hist, token);
}

void mn_sampler_reset(mn_sampler *s) {
    if (!s) return;
    mn_sample_history_clear(&s->hist);
    mn_rng_seed(&s->rng, s->params.seed);
    s->has_last = 0;
    memset(&s->last, 0, sizeof s->last);
}

/* ---------------------------------------------------------------- queries and hooks -------- */

const char *mn_sampler_errmsg(const mn_sampler *s) { return s ? s->err.message : ""; }

mn_status mn_sampler_last(const mn_sampler *s, mn_sample_info *out) {
    if (!s || !out) return MN_EINVAL;
    if (!s->has_last) return MN_ENOTFOUND;
    *out = s->last;
    return MN_OK;
}

mn_status mn_sampler_set_logit_bias(mn_sampler *s, const int32_t *ids, const float *bias, int32_t n) {
    if (!s) return MN_EINVAL;
    mn_error *err = &s->err;
    MN_RETURN_IF(n < 0 || n > s->n_vocab, err, MN_EINVAL,
                 "logit_bias must have between 0 and n_vocab (%d) entries, got %d", (int)s->n_vocab,
                 (int)n);
    MN_RETURN_IF(n > 0 && (!ids || !bias), err, MN_EINVAL, "logit_bias: ids or bias is NULL");
    for (int32_t j = 0; j < n; j++) {
        MN_RETURN_IF(ids[j] < 0 || ids[j] >= s->n_vocab, err, MN_EINVAL,
                     "logit_bias: token id %d is outside the vocabulary [0, %d)", (int)ids[j],
                     (int)s->n_vocab);
        MN_RETURN_IF(!(bias[j] >= -100.0f && bias[j] <= 100.0f), err, MN_EINVAL,
                     "logit_bias for token %d must be in [-100, 100], got %g", (int)ids[j],
                     (double)bias[j]);
    }
    int32_t *new_ids = NULL;
    float *new_bias = NULL;
    if (n > 0) {
        new_ids = malloc((size_t)n * sizeof *new_ids);
        new_bias = malloc((size_t)n * sizeof *new_bias);
        if (!new_ids || !new_bias) {
            free(new_ids);
            free(new_bias);
            return mn_error_set(err, MN_ENOMEM, "logit_bias: %d entries", (int)n);
        }
        memcpy(new_ids, ids, (size_t)n * sizeof *new_ids);
        memcpy(new_bias, bias, (size_t)n * sizeof *new_bias);
    }
    free(s->bias_ids);
    free(s->bias);
    s->bias_ids = new_ids;
    s->bias = new_bias;
    s->n_bias = n;
    s->err.message[0] = '\0';
    return MN_OK;
}

void mn_sampler_set_logit_hook(mn_sampler *s, mn_logit_hook fn, void *user) {
    if (!s) return;
    s->hook = fn;
    s->hook_user = fn ? user : NULL;
}
