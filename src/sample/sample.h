/*
 * sample.h: the pieces the sampler chain (sampler.c) is built from, exposed so that unit tests can
 * run every stage alone on hand-made candidates.
 *
 * A sample works on one preallocated candidate array of n_vocab (id, logit, p) entries, filled
 * from the logits at the start of every sample and shrunk in place by the stages, so no stage ever
 * allocates. Invariants every stage keeps (and the tests check):
 *   - no logit is NaN: the fill maps NaN to -Inf, and no stage can create one (stages only divide
 *     or multiply by positive finite values, add finite values, or subtract the finite max);
 *   - after mn_sample_drop_impossible the best candidate is never -Inf (temperature may push others
 *     there, never the best), so it has weight 1 and every softmax is well defined, +Inf included;
 *   - ties are broken by the lower id everywhere (top-k, sorting, argmax), so results do not
 *     depend on the order candidates arrive in;
 *   - `sorted` is set only when data[0..n) is in descending (logit, then ascending id) order.
 * `p` is only meaningful right after the stage that computes it (softmax, top-p, draw).
 *
 * Why these algorithms: top-k is a bounded heap, O(n log k) worst case with no quickselect
 * pathologies, and it leaves the k survivors sorted. Top-p on an unsorted array is a quickselect on
 * probability mass (expected O(n) whatever the nucleus size; a heap finishes small ranges and
 * bounds the worst case), so it never sorts a 150k vocabulary. Min-p compares exp(logit - max)
 * with min_p, which needs neither a sort nor a normalisation.
 */
#ifndef MN_SAMPLE_SAMPLE_H
#define MN_SAMPLE_SAMPLE_H

#include <stdint.h>

#include "minnow.h"

typedef struct mn_cand {
    int32_t id;
    float logit;
    float p;
} mn_cand;

typedef struct mn_cands {
    mn_cand *data;
    int32_t n;
    int sorted; /* non-zero: data[0..n) in descending (logit, -id) order */
} mn_cands;

/* ---------------------------------------------------------------- penalty history ---------- */

/* The last n_last accepted tokens as a ring, plus per-id counts kept incrementally and the list of
 * distinct ids present, so applying penalties costs O(distinct ids), not O(n_vocab) or O(n_last). */
typedef struct mn_sample_history {
    int32_t n_vocab;
    int32_t n_last;     /* ring capacity; 0: no history kept */
    int32_t n_filled;   /* entries in the ring (<= n_last) */
    int32_t i_next;     /* slot the next token goes to; once full, the oldest token */
    int32_t *ring;      /* n_last ids */
    int32_t *counts;    /* n_vocab: occurrences of each id in the ring */
    int32_t *present;   /* n_present distinct ids with counts > 0 */
    int32_t *i_present; /* n_vocab: index of id in present (valid while counts[id] > 0) */
    int32_t n_present;
    float repeat;       /* repeat penalty (1: off) */
    float frequency;    /* frequency penalty (0: off) */
    float presence;     /* presence penalty (0: off) */
} mn_sample_history;

/* Allocates the history. n_last 0 allocates nothing (pushes are then ignored). */
mn_status mn_sample_history_init(mn_sample_history *h, int32_t n_vocab, int32_t n_last, float repeat,
                                 float frequency, float presence, mn_error *err);
void mn_sample_history_free(mn_sample_history *h);
void mn_sample_history_clear(mn_sample_history *h);
/* Appends id (ignored when outside [0, n_vocab) or when n_last is 0), evicting the oldest. */
void mn_sample_history_push(mn_sample_history *h, int32_t id);
/* Occurrences of id among the last n_last pushes (0 for an out-of-range id). */
int32_t mn_sample_history_count(const mn_sample_history *h, int32_t id);

/* ---------------------------------------------------------------- stages ------------------- */

/* Penalises every id in the history. Precondition: c is the full, freshly filled array, so
 * data[id].id == id for every id < h->n_vocab (the penalties stage always runs first). */
void mn_sample_penalties(mn_cands *c, const mn_sample_history *h);
/* Removes -Inf candidates (stable). May leave n == 0. */
void mn_sample_drop_impossible(mn_cands *c);
/* Keeps the k best (k >= n: no change) and leaves them sorted. k <= 0: no change. */
void mn_sample_top_k(mn_cands *c, int32_t k);
/* Keeps the smallest best-first prefix whose probability reaches top_p (at least 1 candidate),
 * with p set to their probabilities before the cut. The survivors stay sorted if the input was;
 * otherwise their order is unspecified. top_p >= 1: no change. */
void mn_sample_top_p(mn_cands *c, float top_p);
/* Keeps candidates with p >= min_p * p_max (stable, so a sorted array stays sorted). */
void mn_sample_min_p(mn_cands *c, float min_p);
/* Scales to temperature t > 0: logit = (logit - max) / t. Subtracting the max first changes no
 * probability but lets a tiny t approach greedy instead of overflowing every logit to +Inf. */
void mn_sample_temperature(mn_cands *c, float t);
/* Sets p to the softmax of the logits (+Inf logits share the mass; if every logit is -Inf, which
 * the sampler never lets happen after mn_sample_drop_impossible, p is uniform rather than NaN). */
void mn_sample_softmax(mn_cands *c);
/* Index of the best candidate (ties: lower id); -1 when n == 0. */
int32_t mn_sample_argmax(const mn_cands *c);
/* Index drawn from softmax(logits) with u in [0, 1] (1, or rounding at the top end, takes the last
 * candidate with p > 0), p set as in mn_sample_softmax; -1 when n == 0. */
int32_t mn_sample_draw(mn_cands *c, double u);

/* ---------------------------------------------------------------- PRNG ---------------------- */

/* xoshiro256** (Blackman and Vigna), seeded by expanding the 64-bit seed with splitmix64 so that
 * any seed, 0 included, gives a well-mixed non-zero state. Small, fast, and a fixed, documented
 * algorithm, so a seed means the same draws on every platform. */
typedef struct mn_rng {
    uint64_t s[4];
} mn_rng;

/* splitmix64: advances *state and returns the next output (also used on its own by tests). */
uint64_t mn_rng_splitmix64(uint64_t *state);
void mn_rng_seed(mn_rng *r, uint64_t seed);
uint64_t mn_rng_next(mn_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double mn_rng_uniform(mn_rng *r);

/* ---------------------------------------------------------------- log-probabilities -------- */

/* log-sum-exp of n logits (NaN counted as -Inf): -Inf when all are -Inf; +Inf when any is +Inf. */
double mn_sample_logsumexp(const float *logits, int32_t n, int32_t *n_pos_inf);
/* Log-probability of logit under a distribution with the given logsumexp / +Inf count. */
float mn_sample_logprob(float logit, double lse, int32_t n_pos_inf);
/* Writes the min(n_top, n) best of n logits (ties: lower id) into top, descending, as
 * log-probabilities under (lse, n_pos_inf) from mn_sample_logsumexp. heap: n_top entries of scratch. */
void mn_sample_top_logprobs(const float *logits, int32_t n, double lse, int32_t n_pos_inf,
                            int32_t n_top, mn_cand *heap, mn_token_logprob *top);

/* ---------------------------------------------------------------- introspection (tests) ---- */

/* Names of the stages s runs, in order, ending with the final pick ("argmax" or "draw"). Writes
 * up to cap names and returns how many there are. */
int32_t mn_sampler_chain(const mn_sampler *s, const char **names, int32_t cap);

#endif
