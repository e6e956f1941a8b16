/*
 * tokenizer_bench.c: single-threaded encode/decode throughput of the tokenizer on text files. Not
 * part of the build or of CTest (test_tokenizer*.c gate correctness; this only times). Build after
 * a normal build of the library:
 *   cc -O2 -std=gnu11 -Iinclude -Isrc bench/tokenizer_bench.c build-tok/libminnow.a \
 *      $(pkg-config --libs libpcre2-8 libutf8proc libmicrohttpd libcjson) -lm -lpthread -o /tmp/tokenizer_bench
 *   /tmp/tokenizer_bench VOCAB.gguf FILE...
 *
 * For each file: validates first (byte-level BPE must decode back to the text exactly when it is
 * valid UTF-8; SentencePiece must decode back exactly when it has no "▁"), then reports the best
 * of 5 runs of: encoding the whole file in one call, encoding it in 4 KiB chunks (prompt-sized
 * calls, cut at a newline so no word is split), and decoding the ids. MB = 10^6 bytes of input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "minnow.h"

#define REPS 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VOCAB.gguf FILE...\n", argv[0]);
        return 2;
    }
    mn_tokenizer *tok = NULL;
    mn_error err = {0};
    if (mn_tokenizer_load(argv[1], &tok, &err) != MN_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    for (int a = 2; a < argc; a++) {
        size_t len = 0;
        char *text = read_file(argv[a], &len);
        if (!text) {
            fprintf(stderr, "cannot read %s\n", argv[a]);
            return 1;
        }
        size_t cap = MN_TOKENIZE_MAX_TOKENS(len), n = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        char *back = malloc(len + 16);
        if (mn_tokenize(tok, text, len, 0, ids, cap, &n) != MN_OK) {
            fprintf(stderr, "%s: tokenize failed\n", argv[a]);
            return 1;
        }
        size_t blen = 0;
        mn_status s = mn_detokenize(tok, ids, n, MN_DETOK_STRIP_SPACE, back, len + 16, &blen);
        int exact = s == MN_OK && blen == len && memcmp(back, text, len) == 0;
        int need_exact = strstr(text, "\xE2\x96\x81") == NULL;
        if (need_exact && !exact) {
            fprintf(stderr, "%s: decode(encode(text)) != text\n", argv[a]);
            return 1;
        }

        double best_whole = 1e9, best_chunk = 1e9, best_dec = 1e9;
        size_t n_chunk_calls = 0;
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            mn_tokenize(tok, text, len, 0, ids, cap, &n);
            double t1 = now();
            n_chunk_calls = 0;
            for (size_t off = 0; off < len;) {
                size_t end = off + 4096 < len ? off + 4096 : len;
                while (end < len && end > off + 1 && text[end - 1] != '\n') end--;
                if (end == off + 1 && end < len) end = off + 4096 < len ? off + 4096 : len;
                size_t k = 0;
                mn_tokenize(tok, text + off, end - off, 0, ids, cap, &k);
                n_chunk_calls++;
                off = end;
            }
            double t2 = now();
            mn_tokenize(tok, text, len, 0, ids, cap, &n);
            double t3 = now();
            mn_detokenize(tok, ids, n, 0, back, len + 16, &blen);
            double t4 = now();
            if (t1 - t0 < best_whole) best_whole = t1 - t0;
            if (t2 - t1 < best_chunk) best_chunk = t2 - t1;
            if (t4 - t3 < best_dec) best_dec = t4 - t3;
        }
        printf("%s: %zu bytes -> %zu tokens (%.2f bytes/token), round trip %s\n", argv[a], len, n,
               (double)len / (double)n, exact ? "exact" : "not exact (text has \"\xE2\x96\x81\")");
        printf("  encode, one call:        %7.2f MB/s  %6.2f Mtok/s\n", len / best_whole / 1e6, n / best_whole / 1e6);
        printf("  encode, %4zu x 4 KiB:     %7.2f MB/s\n", n_chunk_calls, len / best_chunk / 1e6);
        printf("  decode:                  %7.2f MB/s  %6.2f Mtok/s\n", len / best_dec / 1e6, n / best_dec / 1e6);
        free(ids);
        free(back);
        free(text);
    }
    mn_tokenizer_free(tok);
    return 0;
}
