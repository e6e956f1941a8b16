/*
 * util.c: see util.h.
 */
#include "util.h"

#include "minnow.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s) {
        fprintf(stderr, "minnow %s: %s needs a value\n", cmd, flag);
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "minnow %s: %s: '%s' is not an integer in [%lld, %lld]\n", cmd, flag, s,
                (long long)lo, (long long)hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_f32(const char *cmd, const char *flag, const char *s, float lo, float hi, float *out) {
    if (!s) {
        fprintf(stderr, "minnow %s: %s needs a value\n", cmd, flag);
        return 0;
    }
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "minnow %s: %s: '%s' is not a number in [%g, %g]\n", cmd, flag, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_ids(const char *cmd, const char *flag, const char *s, int32_t **out, int *n_out) {
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return 0;
    const char *p = s;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "minnow %s: %s: bad token id near '%.20s'\n", cmd, flag, p);
            free(ids);
            return 0;
        }
        if (n == cap) {
            if (cap > (1u << 28)) {
                fprintf(stderr, "minnow %s: %s: too many ids\n", cmd, flag);
                free(ids);
                return 0;
            }
            int32_t *nb = realloc(ids, cap * 2 * sizeof *ids);
            if (!nb) {
                free(ids);
                return 0;
            }
            ids = nb;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n_out = (int)n;
    return 1;
}

char *cli_read_file(const char *cmd, const char *path, size_t max_bytes, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "minnow %s: %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            int c = cap >= max_bytes ? fgetc(f) : 0;
            if (c == EOF) break; /* exactly max_bytes long */
            if (cap >= max_bytes) {
                fprintf(stderr, "minnow %s: %s: larger than %zu bytes\n", cmd, path, max_bytes);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0) break;
        len += got;
    }
    if (buf && ferror(f)) {
        fprintf(stderr, "minnow %s: %s: read error\n", cmd, path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

int cli_parse_sampling(const char *cmd, const char *flag, const char *value, mn_sampler_params *sp) {
    int64_t n;
    float f;
    if (!strcmp(flag, "--temp")) return cli_parse_f32(cmd, flag, value, 0, 100, &sp->temperature) ? 1 : -1;
    if (!strcmp(flag, "--top-p")) return cli_parse_f32(cmd, flag, value, 1e-6f, 1, &sp->top_p) ? 1 : -1;
    if (!strcmp(flag, "--min-p")) return cli_parse_f32(cmd, flag, value, 0, 1, &sp->min_p) ? 1 : -1;
    if (!strcmp(flag, "--repeat-penalty"))
        return cli_parse_f32(cmd, flag, value, 1e-3f, 100, &sp->repeat_penalty) ? 1 : -1;
    if (!strcmp(flag, "--frequency-penalty") || !strcmp(flag, "--presence-penalty")) {
        if (!cli_parse_f32(cmd, flag, value, -2, 2, &f)) return -1;
        *(flag[2] == 'f' ? &sp->frequency_penalty : &sp->presence_penalty) = f;
        return 1;
    }
    if (!strcmp(flag, "--top-k") || !strcmp(flag, "--repeat-last-n")) {
        if (!cli_parse_i64(cmd, flag, value, 0, flag[2] == 't' ? 1 << 24 : 1 << 20, &n)) return -1;
        *(flag[2] == 't' ? &sp->top_k : &sp->penalty_last_n) = (int32_t)n;
        return 1;
    }
    if (!strcmp(flag, "-s") || !strcmp(flag, "--seed")) {
        if (!cli_parse_i64(cmd, flag, value, 0, INT64_MAX, &n)) return -1;
        sp->seed = (uint64_t)n;
        return 1;
    }
    return 0;
}

int cli_prefill(const char *cmd, mn_context *ctx, const int32_t *ids, int n, int32_t start) {
    int32_t nb = mn_context_n_batch(ctx), pos[512];
    if (nb > 512) nb = 512; /* positions live on the stack */
    for (int at = 0; at < n; at += nb) {
        int k = n - at < nb ? n - at : nb;
        for (int i = 0; i < k; i++) pos[i] = start + at + i;
        mn_batch b = {k, ids + at, pos, NULL, NULL};
        if (mn_context_eval(ctx, &b) != MN_OK) {
            fprintf(stderr, "minnow %s: %s\n", cmd, mn_context_errmsg(ctx));
            return 0;
        }
    }
    return 1;
}

int cli_parse_kv_type(const char *cmd, const char *s) {
    if (s && !strcmp(s, "f32")) return MN_KV_F32;
    if (s && !strcmp(s, "f16")) return MN_KV_F16;
    if (s && !strcmp(s, "q8_0")) return MN_KV_Q8_0;
    fprintf(stderr, "minnow %s: --kv-type must be f32, f16 or q8_0 (got '%s')\n", cmd, s ? s : "");
    return -1;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress(void *user, uint64_t done, uint64_t total) {
    if (!isatty(2) || total == 0) return;
    const char *label = user ? user : "";
    int width = 30, filled = (int)((double)done / (double)total * width);
    fprintf(stderr, "\r%s [", label);
    for (int i = 0; i < width; i++) fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %llu/%llu", (unsigned long long)done, (unsigned long long)total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}
