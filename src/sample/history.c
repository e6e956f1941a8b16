/*
 * history.c: the penalty history, a ring of the last n_last accepted tokens.
 *
 * Pushing a token updates the per-id count and a dense list of the distinct ids present (with each
 * id's index in it), all in O(1), so the penalties stage visits exactly the distinct tokens of the
 * window: no rescan of the window and no pass over the vocabulary per token. Invariant: counts[id]
 * equals the occurrences of id in the ring, and present[0..n_present) lists exactly the ids with
 * counts[id] > 0, with i_present[present[j]] == j.
 */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "sample/sample.h"

mn_status mn_sample_history_init(mn_sample_history *h, int32_t n_vocab, int32_t n_last, float repeat,
                                 float frequency, float presence, mn_error *err) {
    memset(h, 0, sizeof *h);
    h->n_vocab = n_vocab;
    h->repeat = repeat;
    h->frequency = frequency;
    h->presence = presence;
    if (n_vocab <= 0 || n_last <= 0) return MN_OK;
    int32_t n_distinct = n_last < n_vocab ? n_last : n_vocab;
    h->ring = malloc((size_t)n_last * sizeof *h->ring);
    h->present = malloc((size_t)n_distinct * sizeof *h->present);
    h->counts = calloc((size_t)n_vocab, sizeof *h->counts);
    h->i_present = calloc((size_t)n_vocab, sizeof *h->i_present);
    if (!h->ring || !h->present || !h->counts || !h->i_present) {
        mn_sample_history_free(h);
        return mn_error_set(err, MN_ENOMEM, "penalty history for %d tokens of a %d-token vocabulary",
                            (int)n_last, (int)n_vocab);
    }
    h->n_last = n_last;
    return MN_OK;
}

void mn_sample_history_free(mn_sample_history *h) {
    if (!h) return;
    free(h->ring);
    free(h->present);
    free(h->counts);
    free(h->i_present);
    h->ring = h->present = h->counts = h->i_present = NULL;
    h->n_last = h->n_filled = h->i_next = h->n_present = 0;
}

void mn_sample_history_clear(mn_sample_history *h) {
    for (int32_t j = 0; j < h->n_present; j++) h->counts[h->present[j]] = 0;
    h->n_present = h->n_filled = h->i_next = 0;
}

static void add(mn_sample_history *h, int32_t id) {
    if (h->counts[id]++ == 0) {
        h->i_present[id] = h->n_present;
        h->present[h->n_present++] = id;
    }
}

static void remove_one(mn_sample_history *h, int32_t id) {
    if (--h->counts[id] == 0) {
        int32_t j = h->i_present[id];
        int32_t last = h->present[--h->n_present];
        h->present[j] = last;
        h->i_present[last] = j;
    }
}

void mn_sample_history_push(mn_sample_history *h, int32_t id) {
    if (h->n_last == 0 || id < 0 || id >= h->n_vocab) return;
    if (h->n_filled == h->n_last)
        remove_one(h, h->ring[h->i_next]); /* the slot holds the oldest token */
    else
        h->n_filled++;
    h->ring[h->i_next] = id;
    add(h, id);
    h->i_next = h->i_next + 1 == h->n_last ? 0 : h->i_next + 1;
}

int32_t mn_sample_history_count(const mn_sample_history *h, int32_t id) {
    if (h->n_last == 0 || id < 0 || id >= h->n_vocab) return 0;
    return h->counts[id];
}
