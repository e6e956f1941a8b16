/*
 * stages.c: the sampler's stages over a candidate array (see sample.h for the invariants).
 *
 * Every stage works in place on data[0..n) and only ever shrinks n, so the one array allocated at
 * create time serves every sample. One ordering is used everywhere: a candidate is better than
 * another when its logit is higher, or equal with a lower id. Because it is a total order (no NaN
 * ever reaches a stage), heaps, selection and argmax agree with each other and with a full sort,
 * which is what the tests compare them against.
 *
 * Weights are exp(logit - max) computed as 1 for the max itself, so a +Inf max gives weight 1 to
 * every +Inf candidate and 0 to the rest instead of NaN from Inf - Inf; sums are in double.
 * The log-probability helpers live here too because they reuse the top-k heap.
 */
#include <assert.h>
#include <math.h>

#include "sample/sample.h"

/* ---------------------------------------------------------------- ordering and heaps ------- */

static inline int better(const mn_cand *a, const mn_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void swap_cand(mn_cand *a, mn_cand *b) {
    mn_cand t = *a;
    *a = *b;
    *b = t;
}

/* Restores the heap property below i in a[0..n). best_on_top: the root is the best candidate
 * (a max-heap, for popping in descending order); otherwise the root is the worst (a min-heap of
 * the k best seen so far). */
static void sift_down(mn_cand *a, int32_t n, int32_t i, int best_on_top) {
    for (;;) {
        int64_t l = 2 * (int64_t)i + 1;
        if (l >= n) return;
        int32_t c = (int32_t)l;
        if (l + 1 < n) {
            const mn_cand *r = &a[l + 1];
            if (best_on_top ? better(r, &a[l]) : better(&a[l], r)) c = (int32_t)l + 1;
        }
        if (best_on_top ? !better(&a[c], &a[i]) : !better(&a[i], &a[c])) return;
        swap_cand(&a[i], &a[c]);
        i = c;
    }
}

static void heapify(mn_cand *a, int32_t n, int best_on_top) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(a, n, i, best_on_top);
}

static inline float weight(float logit, float max) {
    return logit == max ? 1.0f : expf(logit - max);
}

static float max_logit(const mn_cands *c) {
    if (c->sorted) return c->data[0].logit;
    float m = -INFINITY;
    for (int32_t i = 0; i < c->n; i++)
        if (c->data[i].logit > m) m = c->data[i].logit;
    return m;
}

/* Sets p to the unnormalised weights and returns their sum (>= 1 when the max is not -Inf). */
static double weights(mn_cands *c) {
    float m = max_logit(c);
    double sum = 0.0;
    for (int32_t i = 0; i < c->n; i++) {
        float w = weight(c->data[i].logit, m); /* all -Inf: each equals the max, weight 1 */
        c->data[i].p = w;
        sum += w;
    }
    return sum;
}

static void normalise(mn_cands *c, double sum) {
    for (int32_t i = 0; i < c->n; i++) c->data[i].p = (float)(c->data[i].p / sum);
}

/* ---------------------------------------------------------------- stages ------------------- */

void mn_sample_penalties(mn_cands *c, const mn_sample_history *h) {
    assert(c->n == h->n_vocab);
    for (int32_t j = 0; j < h->n_present; j++) {
        int32_t id = h->present[j];
        int32_t count = h->counts[id];
        mn_cand *d = &c->data[id];
        assert(d->id == id);
        float l = d->logit;
        /* CTRL's penalty divides positive logits and multiplies negative ones, so it always makes
         * the token less likely (dividing a negative logit would raise it). */
        if (h->repeat != 1.0f) l = l > 0.0f ? l / h->repeat : l * h->repeat;
        l -= (float)count * h->frequency + h->presence;
        d->logit = l;
    }
}

void mn_sample_drop_impossible(mn_cands *c) {
    int32_t i = 0;
    while (i < c->n && c->data[i].logit != -INFINITY) i++; /* the common case: none, no copies */
    int32_t j = i;
    for (; i < c->n; i++)
        if (c->data[i].logit != -INFINITY) c->data[j++] = c->data[i];
    c->n = j;
}

void mn_sample_top_k(mn_cands *c, int32_t k) {
    if (k <= 0 || k >= c->n) return;
    mn_cand *a = c->data;
    /* a[0..k) is a min-heap of the k best seen so far: most candidates lose one comparison with
     * its root (the worst of them) and cost nothing more. */
    heapify(a, k, 0);
    for (int32_t i = k; i < c->n; i++) {
        if (better(&a[i], &a[0])) {
            a[0] = a[i];
            sift_down(a, k, 0, 0);
        }
    }
    /* Heapsort: moving the worst to the end each time leaves a[0..k) in descending order. */
    for (int32_t h = k; h > 1; h--) {
        swap_cand(&a[0], &a[h - 1]);
        sift_down(a, h - 1, 0, 0);
    }
    c->n = k;
    c->sorted = 1;
}

/* Nucleus of a[lo..hi) given that a[0..lo) is already in it with mass `above` < top_p: pops best
 * first from a max-heap until the mass reaches top_p, then moves the popped run (best first) to
 * a[lo..). Returns the end of the nucleus. O(n + m log n) for m popped. */
static int32_t nucleus_by_heap(mn_cand *a, int32_t lo, int32_t hi, double above, float top_p) {
    mn_cand *b = a + lo;
    int32_t n = hi - lo, h = n;
    heapify(b, n, 1);
    while (h > 0) {
        swap_cand(&b[0], &b[h - 1]);
        h--;
        above += b[h].p;
        sift_down(b, h, 0, 1);
        if (above >= top_p) break;
    }
    /* The popped b[h..n) are best last; reversing b puts them first, best first. */
    for (int32_t i = 0, j = n - 1; i < j; i++, j--) swap_cand(&b[i], &b[j]);
    return lo + (n - h);
}

/* Partitions a[lo..hi) (hi - lo >= 3) around a median-of-three pivot: a[lo..j) better than it,
 * a[j] the pivot, a(j..hi) worse. Returns j and the probability mass of a[lo..j). */
static int32_t partition(mn_cand *a, int32_t lo, int32_t hi, double *mass) {
    int32_t x = lo, y = lo + (hi - lo) / 2, z = hi - 1, med;
    if (better(&a[x], &a[y]))
        med = better(&a[y], &a[z]) ? y : better(&a[x], &a[z]) ? z : x;
    else
        med = better(&a[x], &a[z]) ? x : better(&a[y], &a[z]) ? z : y;
    swap_cand(&a[med], &a[z]);
    const mn_cand pivot = a[z];
    int32_t j = lo;
    double m = 0.0;
    for (int32_t i = lo; i < z; i++) {
        if (better(&a[i], &pivot)) {
            m += a[i].p;
            swap_cand(&a[i], &a[j++]);
        }
    }
    swap_cand(&a[j], &a[z]);
    *mass = m;
    return j;
}

void mn_sample_top_p(mn_cands *c, float top_p) {
    if (c->n == 0 || !(top_p < 1.0f)) return;
    mn_sample_softmax(c);
    mn_cand *a = c->data;
    if (c->sorted) {
        double cum = 0.0;
        for (int32_t i = 0; i < c->n; i++) {
            cum += a[i].p;
            if (cum >= top_p) {
                c->n = i + 1;
                break;
            }
        }
        return;
    }
    /* Unsorted: a quickselect on probability mass. Invariant: a[0..lo) is in the nucleus with mass
     * `above` < top_p, every candidate in a[lo..hi) beats every one in a[hi..n), and the nucleus
     * ends in (lo, hi]. Each round partitions a[lo..hi) and keeps the side the end is on, so the
     * expected cost is O(n) however large the nucleus, and nothing is sorted. Small ranges, and
     * any range still open after 64 rounds (an adversarial pivot sequence), finish on the heap. */
    int32_t lo = 0, hi = c->n;
    double above = 0.0;
    for (int round = 0;; round++) {
        if (hi - lo <= 32 || round == 64) {
            c->n = nucleus_by_heap(a, lo, hi, above, top_p);
            /* The heap leaves its part sorted; the whole array is sorted if that was all of it. */
            c->sorted = lo == 0;
            return;
        }
        double mass;
        int32_t j = partition(a, lo, hi, &mass);
        if (above + mass >= top_p) {
            hi = j; /* the better side alone reaches top_p (mass > 0, so j > lo) */
        } else if (above + mass + a[j].p >= top_p) {
            c->n = j + 1; /* the pivot completes the nucleus */
            c->sorted = 0;
            return;
        } else {
            above += mass + a[j].p;
            lo = j + 1;
        }
    }
}

void mn_sample_min_p(mn_cands *c, float min_p) {
    if (c->n == 0 || !(min_p > 0.0f)) return;
    float m = max_logit(c);
    /* p_i >= min_p * p_max  <=>  exp(l_i - l_max) >= min_p: no normalisation needed. */
    int32_t j = 0;
    for (int32_t i = 0; i < c->n; i++)
        if (weight(c->data[i].logit, m) >= min_p) c->data[j++] = c->data[i];
    c->n = j;
}

void mn_sample_temperature(mn_cands *c, float t) {
    if (c->n == 0 || t == 1.0f) return;
    float m = max_logit(c);
    /* A +Inf max already puts all the mass on the +Inf candidates at any temperature. */
    if (!isfinite(m)) return;
    for (int32_t i = 0; i < c->n; i++) c->data[i].logit = (c->data[i].logit - m) / t;
    /* Scaling keeps the order of logits, but underflow to -Inf can merge distinct ones, after
     * which the id tie-break may disagree; nothing after this stage needs the order. */
    c->sorted = 0;
}

void mn_sample_softmax(mn_cands *c) {
    if (c->n == 0) return;
    normalise(c, weights(c));
}

int32_t mn_sample_argmax(const mn_cands *c) {
    if (c->n == 0) return -1;
    int32_t best = 0;
    for (int32_t i = 1; i < c->n; i++)
        if (better(&c->data[i], &c->data[best])) best = i;
    return best;
}

int32_t mn_sample_draw(mn_cands *c, double u) {
    if (c->n == 0) return -1;
    double sum = weights(c);
    double r = u * sum;
    double cum = 0.0;
    int32_t pick = -1, last_possible = 0;
    for (int32_t i = 0; i < c->n; i++) {
        float w = c->data[i].p;
        if (w > 0.0f) last_possible = i;
        cum += w;
        /* Strict: a zero-weight candidate never moves cum past r, so it is never picked. */
        if (r < cum) {
            pick = i;
            break;
        }
    }
    /* u = 1 (or rounding) can leave r at the final sum; the last possible candidate takes it. */
    if (pick < 0) pick = last_possible;
    normalise(c, sum);
    return pick;
}

/* ---------------------------------------------------------------- log-probabilities -------- */

static inline float sanitise(float l) { return isnan(l) ? -INFINITY : l; }

double mn_sample_logsumexp(const float *logits, int32_t n, int32_t *n_pos_inf) {
    float m = -INFINITY;
    int32_t n_inf = 0;
    for (int32_t i = 0; i < n; i++) {
        float l = sanitise(logits[i]);
        if (l == INFINITY) n_inf++;
        if (l > m) m = l;
    }
    *n_pos_inf = n_inf;
    if (n_inf > 0) return INFINITY;
    if (m == -INFINITY) return -INFINITY;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        sum += exp((double)sanitise(logits[i]) - m); /* exp(-Inf) = 0 */
    }
    return m + log(sum);
}

float mn_sample_logprob(float logit, double lse, int32_t n_pos_inf) {
    logit = sanitise(logit);
    if (n_pos_inf > 0) return logit == INFINITY ? (float)-log((double)n_pos_inf) : -INFINITY;
    if (lse == -INFINITY || logit == -INFINITY) return -INFINITY;
    return (float)((double)logit - lse);
}

void mn_sample_top_logprobs(const float *logits, int32_t n, double lse, int32_t n_pos_inf,
                            int32_t n_top, mn_cand *heap, mn_token_logprob *top) {
    int32_t k = n_top < n ? n_top : n;
    if (k <= 0) return;
    /* Same bounded min-heap as top-k, over a k-entry scratch instead of the candidate array, which
     * the sample has already reshaped. */
    for (int32_t i = 0; i < k; i++) heap[i] = (mn_cand){i, sanitise(logits[i]), 0.0f};
    heapify(heap, k, 0);
    for (int32_t i = k; i < n; i++) {
        mn_cand x = {i, sanitise(logits[i]), 0.0f};
        if (better(&x, &heap[0])) {
            heap[0] = x;
            sift_down(heap, k, 0, 0);
        }
    }
    for (int32_t h = k; h > 1; h--) {
        swap_cand(&heap[0], &heap[h - 1]);
        sift_down(heap, h - 1, 0, 0);
    }
    for (int32_t i = 0; i < k; i++)
        top[i] = (mn_token_logprob){heap[i].id, mn_sample_logprob(heap[i].logit, lse, n_pos_inf)};
}
