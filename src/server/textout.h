/*
 * textout.h: turning a stream of token bytes into text that is safe to send: valid UTF-8, and
 * never any part of a stop sequence.
 *
 * A generated token may end in the middle of a UTF-8 character (byte tokens <0xE2> <0x82> <0xAC>),
 * and a stop sequence may arrive split over several tokens. So the bytes of each new token go into
 * a small pending buffer, and only the prefix that can no longer change is released:
 *   - if a stop sequence occurs in the pending bytes, everything before its first occurrence is
 *     released and the stream is finished (the stop text itself is never sent);
 *   - otherwise the longest suffix that is a proper prefix of some stop sequence is held back
 *     (it may still become a stop), and so is an incomplete UTF-8 character at the very end.
 * Invariant: the pending buffer never holds more than (longest stop - 1) + 3 bytes after a push,
 * so the search is O(pending x stops), independent of the output length. Released bytes pass
 * through srv_utf8_sanitize, so malformed sequences become U+FFFD and the output is valid UTF-8.
 *
 * srv_textout counts raw bytes released (n_released), so the caller can tell which tokens' bytes
 * have been sent in full (for attaching log-probabilities to the right chunk).
 */
#ifndef MN_SERVER_TEXTOUT_H
#define MN_SERVER_TEXTOUT_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer (always NUL-terminated when p != NULL). */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
} srv_buf;

/* 0 on success, -1 when out of memory (b unchanged). */
int srv_buf_append(srv_buf *b, const char *s, size_t n);
int srv_buf_printf(srv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void srv_buf_free(srv_buf *b);

/* Appends s[0..n) to out with every malformed UTF-8 sequence (stray continuation, overlong,
 * surrogate, > U+10FFFF, truncated) and every NUL byte replaced by U+FFFD. 0 or -1 (out of memory). */
int srv_utf8_sanitize(const char *s, size_t n, srv_buf *out);

/* Bytes at the end of s[0..n) that form an incomplete (so far valid) UTF-8 character: 0..3. */
size_t srv_utf8_incomplete_tail(const char *s, size_t n);

typedef struct srv_textout {
    const char *const *stop; /* borrowed stop strings */
    const int32_t *stop_len;
    int32_t n_stop;
    char pending[1024 + 8];  /* held-back raw bytes (stop strings are at most 1024 bytes) */
    size_t n_pending;
    uint64_t n_released;     /* raw bytes released so far (stop text excluded) */
    int stopped;             /* a stop sequence was found */
} srv_textout;

/* stop strings must each be 1..1024 bytes (request.c caps them lower). Borrowed for t's life. */
void srv_textout_init(srv_textout *t, const char *const *stop, const int32_t *stop_len, int32_t n_stop);

/* Feeds the bytes of one token; appends what can be released to out (sanitized). Returns 1 when a
 * stop sequence completed (the stream is over; later pushes are ignored), 0 otherwise, -1 when
 * out of memory. Tokens longer than the pending room are processed in pieces. */
int srv_textout_push(srv_textout *t, const char *bytes, size_t n, srv_buf *out);

/* End of generation (length limit or end-of-generation token): releases the rest, an incomplete
 * trailing character becoming U+FFFD. 0 or -1. */
int srv_textout_finish(srv_textout *t, srv_buf *out);

#endif
