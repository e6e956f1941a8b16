/*
 * textout.c: UTF-8 sanitizing and the stop-sequence / partial-character holdback (textout.h).
 *
 * UTF-8 validation follows the Unicode "maximal subpart" rule (Unicode 15, 3.9 U+FFFD substitution):
 * each maximal prefix of a would-be-valid sequence becomes one U+FFFD, so the result does not depend
 * on where the input was cut into chunks, as long as chunk boundaries fall between characters
 * (which the holdback guarantees). NUL bytes are replaced too, because every released string ends
 * up in JSON through C strings (cJSON), where a NUL would silently cut the text.
 */
#include "server/textout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- buffers -------------------- */

static int buf_reserve(srv_buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len - 1) return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int srv_buf_append(srv_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void srv_buf_free(srv_buf *b) {
    if (!b) return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---------------------------------------------------------------- UTF-8 ---------------------- */

/* Length of the sequence a lead byte starts (0: not a valid lead) and the allowed range of the
 * second byte (narrower after E0, ED, F0, F4 to exclude overlongs, surrogates and > U+10FFFF). */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* Bytes of s[0..n) that form a valid prefix of one character starting at s[0] (1..4), and whether
 * it is complete. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n, int *complete) {
    *complete = 0;
    if (s[0] < 0x80) {
        /* NUL counts as malformed: output goes into JSON through C strings */
        *complete = s[0] != 0;
        return s[0] != 0;
    }
    unsigned char lo, hi;
    int len = utf8_lead(s[0], &lo, &hi);
    if (len == 0) return 0;
    size_t i = 1;
    for (; i < (size_t)len && i < n; i++) {
        unsigned char c = s[i];
        if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    *complete = i == (size_t)len;
    return i;
}

int srv_utf8_sanitize(const char *s, size_t n, srv_buf *out) {
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the current stretch of valid bytes */
    while (i < n) {
        int complete;
        size_t k = utf8_valid_prefix(u + i, n - i, &complete);
        if (complete) {
            i += k;
            continue;
        }
        if (srv_buf_append(out, s + run, i - run) || srv_buf_append(out, fffd, 3)) return -1;
        i += k ? k : 1;
        run = i;
    }
    return srv_buf_append(out, s + run, n - run);
}

size_t srv_utf8_incomplete_tail(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = u[n - back];
        if (c >= 0x80 && c <= 0xBF) continue; /* continuation: keep looking for the lead */
        if (c < 0x80) return 0;
        int complete;
        size_t k = utf8_valid_prefix(u + n - back, back, &complete);
        return (!complete && k == back) ? back : 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- holdback ------------------- */

void srv_textout_init(srv_textout *t, const char *const *stop, const int32_t *stop_len, int32_t n_stop) {
    memset(t, 0, sizeof *t);
    t->stop = stop;
    t->stop_len = stop_len;
    t->n_stop = n_stop;
}

/* Releases what can be released from pending; 1 when a stop completed. */
static int release(srv_textout *t, srv_buf *out) {
    size_t np = t->n_pending;
    /* earliest complete stop occurrence */
    size_t best = SIZE_MAX;
    for (int32_t s = 0; s < t->n_stop; s++) {
        size_t L = (size_t)t->stop_len[s];
        if (L == 0 || L > np) continue;
        for (size_t k = 0; k + L <= np && k < best; k++)
            if (memcmp(t->pending + k, t->stop[s], L) == 0) {
                best = k;
                break;
            }
    }
    if (best != SIZE_MAX) {
        if (srv_utf8_sanitize(t->pending, best, out)) return -1;
        t->n_released += best;
        t->n_pending = 0;
        t->stopped = 1;
        return 1;
    }
    /* longest suffix that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int32_t s = 0; s < t->n_stop; s++) {
        size_t L = (size_t)t->stop_len[s] - 1;
        if (L > np) L = np;
        for (; L > hold; L--)
            if (memcmp(t->pending + np - L, t->stop[s], L) == 0) {
                hold = L;
                break;
            }
    }
    size_t tail = srv_utf8_incomplete_tail(t->pending, np);
    if (tail > hold) hold = tail;
    size_t go = np - hold;
    if (go) {
        if (srv_utf8_sanitize(t->pending, go, out)) return -1;
        memmove(t->pending, t->pending + go, hold);
        t->n_pending = hold;
        t->n_released += go;
    }
    return 0;
}

int srv_textout_push(srv_textout *t, const char *bytes, size_t n, srv_buf *out) {
    while (n > 0 && !t->stopped) {
        size_t room = sizeof t->pending - t->n_pending;
        size_t take = n < room ? n : room;
        memcpy(t->pending + t->n_pending, bytes, take);
        t->n_pending += take;
        bytes += take;
        n -= take;
        int r = release(t, out);
        if (r) return r;
    }
    return t->stopped;
}

int srv_textout_finish(srv_textout *t, srv_buf *out) {
    if (t->stopped || t->n_pending == 0) return 0;
    if (srv_utf8_sanitize(t->pending, t->n_pending, out)) return -1;
    t->n_released += t->n_pending;
    t->n_pending = 0;
    return 0;
}
