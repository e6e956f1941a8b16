/*
 * test_gguf_corrupt.c: the reader survives bad GGUF files (rows 1-9 of ../shared/BAD_INPUTS.md).
 *
 * (a) A valid file made by the writer is cut at every length from 0 to its full size; each prefix
 *     is opened from an exact-size heap copy (so ASan sees any over-read) and must fail with
 *     MN_EBADFILE, succeeding only once every byte the header and tensors need is present. A
 *     sample of the prefixes is also opened as real files (mmap path), checking no fd leaks.
 * (b) Handcrafted headers, one per bad input, built byte by byte with a tiny builder: each must
 *     give the expected status and a message containing a specific word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/types.h"

/* ---------------------------------------------------------------- byte builder -------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_bytes(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u8(buf *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u32(buf *b, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    b_bytes(b, le, 4);
}
static void b_u64(buf *b, uint64_t v) {
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}
static void b_strn(buf *b, const char *s, size_t n) {
    b_u64(b, n);
    b_bytes(b, s, n);
}
static void b_str(buf *b, const char *s) { b_strn(b, s, strlen(s)); }
static void b_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, MN_GGUF_UINT32);
    b_u32(b, v);
}
static void b_kv_str(buf *b, const char *key, const char *v) {
    b_str(b, key);
    b_u32(b, MN_GGUF_STRING);
    b_str(b, v);
}
/* A tensor info with up to 4 dims. */
static void b_tensor(buf *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t offset) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t j = 0; j < n_dims; j++) b_u64(b, (uint64_t)ne[j]);
    b_u32(b, type);
    b_u64(b, offset);
}
static void b_pad(buf *b, size_t align) {
    while (b->n % align) b_u8(b, 0);
}
static void b_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}

/* Opens b from an exact-size copy and checks status and that the message contains word. */
static void expect_fail_at(buf *b, mn_status want, const char *word, int line) {
    uint8_t *copy = malloc(b->n ? b->n : 1);
    assert_non_null(copy);
    if (b->n) memcpy(copy, b->p, b->n);
    mn_gguf *g = (mn_gguf *)copy; /* must come back NULL */
    mn_error err = {0};
    mn_status s = mn_gguf_open_memory(copy, b->n, &g, &err);
    if (s != want || !strstr(err.message, word))
        fail_msg("line %d: status %d (want %d), message \"%s\" (want the word \"%s\")", line, (int)s, (int)want,
                 err.message, word);
    assert_int_equal(err.status, want);
    assert_null(g);
    free(copy);
    free(b->p);
    memset(b, 0, sizeof *b);
}
#define expect_fail(b, want, word) expect_fail_at((b), (want), (word), __LINE__)

static void expect_ok(buf *b) {
    uint8_t *copy = malloc(b->n);
    assert_non_null(copy);
    memcpy(copy, b->p, b->n);
    mn_gguf *g = NULL;
    mn_error err = {0};
    mn_status s = mn_gguf_open_memory(copy, b->n, &g, &err);
    if (s != MN_OK) fail_msg("expected success, got %d: %s", (int)s, err.message);
    mn_gguf_close(g);
    free(copy);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- (a) truncation ------------ */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* Every prefix of data must fail (MN_EBADFILE) until need bytes are present, then succeed. */
static void truncation_sweep(const uint8_t *data, size_t size, size_t need) {
    for (size_t len = 0; len <= size; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, data, len);
        mn_gguf *g = NULL;
        mn_error err = {0};
        mn_status s = mn_gguf_open_memory(copy, len, &g, &err);
        if (len < need) {
            if (s != MN_EBADFILE || err.message[0] == '\0')
                fail_msg("prefix of %zu/%zu bytes: status %d, message \"%s\"", len, size, (int)s, err.message);
            assert_null(g);
        } else {
            if (s != MN_OK) fail_msg("prefix of %zu/%zu bytes failed: %s", len, size, err.message);
            mn_gguf_close(g);
        }
        free(copy);
    }
    /* the same through real files and mmap, on a sample of lengths; no fd may leak */
    char path[] = "/tmp/mn_test_gguf_trunc_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int fds_before = count_fds();
    for (size_t len = 0; len <= size; len += (len < 64 ? 1 : 37)) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        fclose(f);
        mn_gguf *g = NULL;
        mn_error err = {0};
        mn_status s = mn_gguf_open(path, &g, &err);
        if (len < need) assert_int_equal(s, MN_EBADFILE);
        else assert_int_equal(s, MN_OK);
        mn_gguf_close(g);
    }
    assert_int_equal(count_fds(), fds_before);
    unlink(path);
}

static void test_truncate_every_length(void **state) {
    (void)state;
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "general.architecture", "llama"), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, "general.alignment", 64), MN_OK);
    assert_int_equal(mn_gguf_set_f32(w, "x.eps", 1e-5f), MN_OK);
    static const char *const toks[] = {"<s>", "</s>", "hello", ""};
    assert_int_equal(mn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4), MN_OK);
    static const int32_t ids[] = {1, 2, 3};
    assert_int_equal(mn_gguf_set_arr_data(w, "x.ids", MN_GGUF_INT32, ids, 3), MN_OK);
    static uint8_t d0[64 * 4], d1[34 * 2], d2[18 * 4];
    for (size_t i = 0; i < sizeof d0; i++) d0[i] = (uint8_t)i;
    int64_t ne0[4] = {16, 4, 1, 1}, ne1[4] = {64, 1, 1, 1}, ne2[4] = {32, 2, 2, 1};
    assert_int_equal(mn_gguf_add_tensor(w, "a.weight", MN_TYPE_F32, 2, ne0, d0), MN_OK);
    assert_int_equal(mn_gguf_add_tensor(w, "b.weight", MN_TYPE_Q8_0, 1, ne1, d1), MN_OK);
    assert_int_equal(mn_gguf_add_tensor(w, "c.weight", MN_TYPE_Q4_0, 3, ne2, d2), MN_OK);
    void *mem;
    size_t size;
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, NULL), MN_OK);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, NULL), MN_OK);
    /* the last byte any tensor needs: the file is valid from there on (the rest is padding) */
    uint64_t need = 0;
    for (int64_t i = 0; i < mn_gguf_n_tensors(g); i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        uint64_t end = mn_gguf_data_offset(g) + t->offset + t->size;
        if (end > need) need = end;
    }
    mn_gguf_close(g);
    assert_true(need <= size && size - need < 64);
    truncation_sweep(mem, size, (size_t)need);
    free(mem);

    /* metadata only (like the vocabulary files): valid once the last value is complete */
    mn_gguf_writer *w2 = NULL;
    assert_int_equal(mn_gguf_writer_create(&w2, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_str(w2, "general.name", "m"), MN_OK);
    assert_int_equal(mn_gguf_set_arr_str(w2, "tokenizer.ggml.merges", toks, NULL, 3), MN_OK);
    assert_int_equal(mn_gguf_set_bool(w2, "tokenizer.ggml.add_bos_token", true), MN_OK);
    assert_int_equal(mn_gguf_writer_to_memory(w2, &mem, &size, NULL), MN_OK);
    size_t meta_end = 24 + (8 + 12 + 4 + 8 + 1) + (8 + 21 + 4 + 4 + 8 + (8 + 3) + (8 + 4) + (8 + 5)) +
                      (8 + 28 + 4 + 1);
    assert_int_equal(size, (meta_end + 31) / 32 * 32);
    truncation_sweep(mem, size, meta_end);
    free(mem);
    mn_gguf_writer_free(w);
    mn_gguf_writer_free(w2);
}

/* ---------------------------------------------------------------- (b) row 1: magic, version - */

static void test_row1_magic_version(void **state) {
    (void)state;
    buf b = {0};
    expect_fail(&b, MN_EBADFILE, "bad magic"); /* empty */
    b_bytes(&b, "GGU", 3);
    expect_fail(&b, MN_EBADFILE, "bad magic");
    b_bytes(&b, "GGUX", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 0);
    expect_fail(&b, MN_EBADFILE, "bad magic");
    b_bytes(&b, "ggufGGUF", 8);
    expect_fail(&b, MN_EBADFILE, "bad magic");
    b_bytes(&b, "GGUF", 4), b_u32(&b, 3), b_u64(&b, 0); /* 16 bytes: short header */
    expect_fail(&b, MN_EBADFILE, "truncated");
    b_bytes(&b, "GGUF\x03\x00", 6); /* cut inside the version */
    expect_fail(&b, MN_EBADFILE, "truncated");
    b_bytes(&b, "GGUF", 4), b_u32(&b, 1), b_u32(&b, 0), b_u32(&b, 0); /* a whole (16-byte) v1 header */
    expect_fail(&b, MN_EUNSUPPORTED, "unsupported version 1");
    b_header(&b, 0, 0, 0);
    expect_fail(&b, MN_EUNSUPPORTED, "unsupported version 0");
    b_header(&b, 1, 0, 0);
    expect_fail(&b, MN_EUNSUPPORTED, "unsupported version 1");
    b_header(&b, 4, 0, 0);
    expect_fail(&b, MN_EUNSUPPORTED, "unsupported version 4");
    b_header(&b, 0x03000000, 0, 0); /* big-endian v3 */
    expect_fail(&b, MN_EUNSUPPORTED, "big-endian");
    b_header(&b, UINT32_MAX, 0, 0);
    expect_fail(&b, MN_EUNSUPPORTED, "unsupported version 4294967295");
    /* v2 and v3 with nothing in them are valid */
    b_header(&b, 2, 0, 0);
    expect_ok(&b);
    b_header(&b, 3, 0, 0);
    expect_ok(&b);
}

/* ---------------------------------------------------------------- row 2: counts ------------- */

static void test_row2_counts(void **state) {
    (void)state;
    buf b = {0};
    b_header(&b, 3, 1ull << 63, 0);
    expect_fail(&b, MN_EBADFILE, "n_tensors");
    b_header(&b, 3, 0, 1ull << 63);
    expect_fail(&b, MN_EBADFILE, "n_kv");
    b_header(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_fail(&b, MN_EBADFILE, "n_kv");
    /* more records than the remaining bytes could hold: 1000 keys in 100 bytes */
    b_header(&b, 3, 0, 1000);
    b_zeros(&b, 100);
    expect_fail(&b, MN_EBADFILE, "n_kv");
    b_header(&b, 3, 10, 0);
    b_zeros(&b, 100);
    expect_fail(&b, MN_EBADFILE, "n_tensors");
    /* each bound alone passes but not both together */
    b_header(&b, 3, 3, 4);
    b_zeros(&b, 100);
    expect_fail(&b, MN_EBADFILE, "n_kv 4 and n_tensors 3");
    /* a plausible count whose records are simply missing */
    b_header(&b, 3, 0, 2);
    b_kv_u32(&b, "a", 1);
    b_zeros(&b, 13);
    expect_fail(&b, MN_EBADFILE, "key #1");
}

/* ---------------------------------------------------------------- row 3: string lengths ----- */

static void test_row3_string_lengths(void **state) {
    (void)state;
    buf b = {0};
    b_header(&b, 3, 0, 1);
    b_u64(&b, UINT64_MAX); /* key length 2^64-1 */
    b_zeros(&b, 16);
    expect_fail(&b, MN_EBADFILE, "key length 18446744073709551615");
    b_header(&b, 3, 0, 1);
    b_u64(&b, 100); /* longer than the file */
    b_bytes(&b, "abcd", 4), b_u32(&b, MN_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, MN_EBADFILE, "exceeds");
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.name"), b_u32(&b, MN_GGUF_STRING), b_u64(&b, UINT64_MAX), b_zeros(&b, 8);
    expect_fail(&b, MN_EBADFILE, "string length 18446744073709551615");
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.name"), b_u32(&b, MN_GGUF_STRING), b_u64(&b, 9), b_bytes(&b, "12345678", 8);
    expect_fail(&b, MN_EBADFILE, "general.name");
    /* empty key, NUL in key, non-UTF-8 keys */
    b_header(&b, 3, 0, 1);
    b_str(&b, ""), b_u32(&b, MN_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, MN_EBADFILE, "empty key");
    b_header(&b, 3, 0, 1);
    b_strn(&b, "a\0b", 3), b_u32(&b, MN_GGUF_UINT8), b_u8(&b, 0);
    expect_fail(&b, MN_EBADFILE, "NUL");
    static const char *const bad_utf8[] = {"bad\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82",
                                           "\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        b_header(&b, 3, 0, 1);
        b_str(&b, bad_utf8[i]), b_u32(&b, MN_GGUF_UINT8), b_u8(&b, 0);
        expect_fail(&b, MN_EBADFILE, "UTF-8");
    }
    /* valid multi-byte keys are fine */
    b_header(&b, 3, 0, 1);
    b_str(&b, "ключ.🐟"), b_u32(&b, MN_GGUF_UINT8), b_u8(&b, 0);
    expect_ok(&b);
}

/* ---------------------------------------------------------------- row 4: arrays ------------- */

static void test_row4_arrays(void **state) {
    (void)state;
    buf b = {0};
    /* count huge for fixed, string and nested elements */
    static const uint32_t et[] = {MN_GGUF_UINT32, MN_GGUF_UINT8, MN_GGUF_STRING, MN_GGUF_ARRAY, MN_GGUF_FLOAT64};
    static const uint64_t counts[] = {1ull << 62, UINT64_MAX, 1ull << 60, 1000, 3};
    for (size_t i = 0; i < sizeof et / sizeof et[0]; i++) {
        b_header(&b, 3, 0, 1);
        b_str(&b, "arr"), b_u32(&b, MN_GGUF_ARRAY), b_u32(&b, et[i]), b_u64(&b, counts[i]);
        b_zeros(&b, 20);
        expect_fail(&b, MN_EBADFILE, "array count");
    }
    /* invalid element types */
    static const uint32_t bad_et[] = {MN_GGUF_TYPE_COUNT, 255, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_et / sizeof bad_et[0]; i++) {
        b_header(&b, 3, 0, 1);
        b_str(&b, "arr"), b_u32(&b, MN_GGUF_ARRAY), b_u32(&b, bad_et[i]), b_u64(&b, 1), b_u32(&b, 0);
        expect_fail(&b, MN_EBADFILE, "invalid array element type");
    }
    /* nested: the inner array's element type is bad */
    b_header(&b, 3, 0, 1);
    b_str(&b, "arr"), b_u32(&b, MN_GGUF_ARRAY), b_u32(&b, MN_GGUF_ARRAY), b_u64(&b, 1);
    b_u32(&b, 77), b_u64(&b, 0);
    expect_fail(&b, MN_EBADFILE, "invalid array element type");
    /* nested: the inner count is huge */
    b_header(&b, 3, 0, 1);
    b_str(&b, "arr"), b_u32(&b, MN_GGUF_ARRAY), b_u32(&b, MN_GGUF_ARRAY), b_u64(&b, 1);
    b_u32(&b, MN_GGUF_STRING), b_u64(&b, 1ull << 61), b_zeros(&b, 16);
    expect_fail(&b, MN_EBADFILE, "array count");
    /* depth bomb: 100000 nested array headers, each claiming one element */
    b_header(&b, 3, 0, 1);
    b_str(&b, "bomb"), b_u32(&b, MN_GGUF_ARRAY);
    for (int i = 0; i < 100000; i++) b_u32(&b, MN_GGUF_ARRAY), b_u64(&b, 1);
    expect_fail(&b, MN_EBADFILE, "nesting depth");
    /* exactly MN_GGUF_MAX_DEPTH levels is fine, one more is not */
    for (int extra = 0; extra <= 1; extra++) {
        b_header(&b, 3, 0, 1);
        b_str(&b, "deep"), b_u32(&b, MN_GGUF_ARRAY);
        for (int i = 0; i < MN_GGUF_MAX_DEPTH - 1 + extra; i++) b_u32(&b, MN_GGUF_ARRAY), b_u64(&b, 1);
        b_u32(&b, MN_GGUF_STRING), b_u64(&b, 1), b_str(&b, "x");
        if (extra) expect_fail(&b, MN_EBADFILE, "nesting depth");
        else expect_ok(&b);
    }
    /* bool array elements must be 0 or 1 */
    b_header(&b, 3, 0, 1);
    b_str(&b, "flags"), b_u32(&b, MN_GGUF_ARRAY), b_u32(&b, MN_GGUF_BOOL), b_u64(&b, 3);
    b_u8(&b, 1), b_u8(&b, 0), b_u8(&b, 7);
    expect_fail(&b, MN_EBADFILE, "bool");
}

/* ---------------------------------------------------------------- row 5: types, alignment -- */

static void test_row5_types_alignment(void **state) {
    (void)state;
    buf b = {0};
    static const uint32_t bad_types[] = {MN_GGUF_TYPE_COUNT, 100, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        b_header(&b, 3, 0, 1);
        b_str(&b, "k"), b_u32(&b, bad_types[i]), b_zeros(&b, 8);
        expect_fail(&b, MN_EBADFILE, "invalid value type");
    }
    b_header(&b, 3, 0, 1);
    b_str(&b, "k"), b_u32(&b, MN_GGUF_BOOL), b_u8(&b, 2);
    expect_fail(&b, MN_EBADFILE, "bool");
    static const uint32_t bad_align[] = {0, 3, 48, 1u << 31, MN_GGUF_MAX_ALIGNMENT * 2, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        b_header(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", bad_align[i]);
        expect_fail(&b, MN_EBADFILE, "alignment");
    }
    /* wrong types: uint64, int32, string */
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment"), b_u32(&b, MN_GGUF_UINT64), b_u64(&b, 32);
    expect_fail(&b, MN_EBADFILE, "expected uint32");
    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment"), b_u32(&b, MN_GGUF_INT32), b_u32(&b, 32);
    expect_fail(&b, MN_EBADFILE, "expected uint32");
    b_header(&b, 3, 0, 1);
    b_kv_str(&b, "general.alignment", "32");
    expect_fail(&b, MN_EBADFILE, "expected uint32");
    /* good alignments are accepted and used */
    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 1);
    expect_ok(&b);
    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", MN_GGUF_MAX_ALIGNMENT);
    expect_ok(&b);
}

/* ---------------------------------------------------------------- rows 6-8: tensors --------- */

/* A file with one key (general.alignment = 32) and the given tensor infos followed by the padded
 * data section of data_bytes zero bytes. */
typedef struct tinfo {
    const char *name;
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    uint64_t offset;
} tinfo;

static void b_file(buf *b, const tinfo *t, size_t n, size_t data_bytes) {
    b_header(b, 3, n, 1);
    b_kv_u32(b, "general.alignment", 32);
    for (size_t i = 0; i < n; i++) b_tensor(b, t[i].name, t[i].n_dims, t[i].ne, t[i].type, t[i].offset);
    b_pad(b, 32);
    b_zeros(b, data_bytes);
}

static void test_row6_dims(void **state) {
    (void)state;
    buf b = {0};
    tinfo t = {"w", 2, {4, 4, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_ok(&b);
    t.n_dims = 0;
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "n_dims 0");
    t.n_dims = 5;
    t.ne[2] = t.ne[3] = 1;
    b_header(&b, 3, 1, 0);
    int64_t ne5[5] = {4, 4, 1, 1, 1};
    b_tensor(&b, "w", 5, ne5, MN_TYPE_F32, 0), b_pad(&b, 32), b_zeros(&b, 64);
    expect_fail(&b, MN_EBADFILE, "n_dims 5");
    t = (tinfo){"w", 2, {4, 0, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "ne[1] = 0");
    t = (tinfo){"w", 1, {-1, 1, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "ne[0] = -1");
    t = (tinfo){"w", 1, {INT64_MIN, 1, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "not positive");
    /* element count overflows int64 */
    t = (tinfo){"w", 2, {1ll << 32, 1ll << 32, 1, 1}, MN_TYPE_I8, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "element count overflows");
    t = (tinfo){"w", 4, {INT64_MAX, 2, 1, 1}, MN_TYPE_I8, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "overflows");
    /* elements fit int64 but the bytes do not fit 64 bits (row size, then the whole tensor) */
    t = (tinfo){"w", 1, {1ll << 62, 1, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "overflows");
    t = (tinfo){"w", 2, {1ll << 31, 1ll << 31, 1, 1}, MN_TYPE_F64, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "byte size overflows");
    /* a huge but representable tensor simply does not fit in the file */
    t = (tinfo){"w", 2, {1ll << 20, 1ll << 20, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 64);
    expect_fail(&b, MN_EBADFILE, "beyond end of file");
}

static void test_row7_types(void **state) {
    (void)state;
    buf b = {0};
    static const uint32_t bad[] = {4, 5, 31, 36, MN_TYPE_COUNT, 1000, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tinfo t = {"w", 1, {32, 1, 1, 1}, bad[i], 0};
        b_file(&b, &t, 1, 256);
        expect_fail(&b, MN_EBADFILE, "unknown tensor type");
    }
    tinfo t = {"w", 2, {33, 2, 1, 1}, MN_TYPE_Q8_0, 0};
    b_file(&b, &t, 1, 256);
    expect_fail(&b, MN_EBADFILE, "block size");
    t = (tinfo){"w", 1, {128, 1, 1, 1}, MN_TYPE_Q4_K, 0}; /* Q4_K blocks are 256 */
    b_file(&b, &t, 1, 256);
    expect_fail(&b, MN_EBADFILE, "block size");
    t = (tinfo){"w", 1, {256, 1, 1, 1}, MN_TYPE_Q4_K, 0}; /* 144 bytes */
    b_file(&b, &t, 1, 144);
    expect_ok(&b);
    t = (tinfo){"w", 2, {64, 2, 1, 1}, MN_TYPE_Q8_0, 0}; /* 2 * 2 * 34 = 136 bytes */
    b_file(&b, &t, 1, 135);
    expect_fail(&b, MN_EBADFILE, "beyond end of file");
    b_file(&b, &t, 1, 136);
    expect_ok(&b);
}

static void test_row8_layout(void **state) {
    (void)state;
    buf b = {0};
    tinfo two[2] = {{"a", 1, {8, 1, 1, 1}, MN_TYPE_F32, 0}, {"b", 1, {8, 1, 1, 1}, MN_TYPE_F32, 32}};
    b_file(&b, two, 2, 64);
    expect_ok(&b);
    /* info order need not be offset order */
    tinfo swapped[2] = {two[1], two[0]};
    b_file(&b, swapped, 2, 64);
    expect_ok(&b);
    /* offset beyond the file */
    two[1].offset = 1ull << 40;
    b_file(&b, two, 2, 64);
    expect_fail(&b, MN_EBADFILE, "beyond end of file");
    /* offset + size wraps */
    two[1].offset = UINT64_MAX - 31;
    b_file(&b, two, 2, 64);
    expect_fail(&b, MN_EBADFILE, "overflows");
    /* the data section itself is missing */
    two[1].offset = 32;
    b_file(&b, two, 2, 0);
    expect_fail(&b, MN_EBADFILE, "beyond end of file");
    b_file(&b, two, 2, 0);
    b.n -= 2; /* also cut into the padding (the infos end 5 bytes before the data section) */
    expect_fail(&b, MN_EBADFILE, "data section would start at 128");
    /* last tensor one byte short */
    b_file(&b, two, 2, 63);
    expect_fail(&b, MN_EBADFILE, "tensor 'b': data [");
    /* overlapping: b starts inside a */
    tinfo big[2] = {{"a", 1, {16, 1, 1, 1}, MN_TYPE_F32, 0}, {"b", 1, {8, 1, 1, 1}, MN_TYPE_F32, 32}};
    b_file(&b, big, 2, 128);
    expect_fail(&b, MN_EBADFILE, "overlaps");
    /* identical offsets */
    big[1].offset = 0;
    b_file(&b, big, 2, 128);
    expect_fail(&b, MN_EBADFILE, "overlaps");
    /* misaligned offset */
    two[1].offset = 36;
    b_file(&b, two, 2, 128);
    expect_fail(&b, MN_EBADFILE, "misaligned");
    /* a gap between tensors (non-contiguous) and a first tensor not at 0 */
    two[1].offset = 64;
    b_file(&b, two, 2, 128);
    expect_fail(&b, MN_EBADFILE, "gap");
    tinfo one = {"a", 1, {8, 1, 1, 1}, MN_TYPE_F32, 32};
    b_file(&b, &one, 1, 64);
    expect_fail(&b, MN_EBADFILE, "gap");
}

/* ---------------------------------------------------------------- row 9: names -------------- */

static void test_row9_names(void **state) {
    (void)state;
    buf b = {0};
    b_header(&b, 3, 0, 3);
    b_kv_u32(&b, "a", 1), b_kv_u32(&b, "b", 2), b_kv_str(&b, "a", "again");
    expect_fail(&b, MN_EBADFILE, "duplicate key 'a'");
    tinfo dup[2] = {{"w", 1, {8, 1, 1, 1}, MN_TYPE_F32, 0}, {"w", 1, {8, 1, 1, 1}, MN_TYPE_F32, 32}};
    b_file(&b, dup, 2, 64);
    expect_fail(&b, MN_EBADFILE, "duplicate tensor name 'w'");
    char name[70];
    memset(name, 'x', sizeof name);
    name[64] = '\0';
    tinfo t = {name, 1, {8, 1, 1, 1}, MN_TYPE_F32, 0};
    b_file(&b, &t, 1, 32);
    expect_fail(&b, MN_EBADFILE, "too long");
    name[63] = '\0';
    b_file(&b, &t, 1, 32);
    expect_ok(&b);
    t.name = "";
    b_file(&b, &t, 1, 32);
    expect_fail(&b, MN_EBADFILE, "empty tensor name");
    t.name = "w\xfe";
    b_file(&b, &t, 1, 32);
    expect_fail(&b, MN_EBADFILE, "UTF-8");

    /* many keys and tensors: duplicates found by sorting, far from each other in file order */
    enum { N = 20000 };
    b_header(&b, 3, 0, N);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key.%d", i == N - 1 ? 7 : i);
        b_kv_u32(&b, key, (uint32_t)i);
    }
    expect_fail(&b, MN_EBADFILE, "duplicate key 'key.7'");
    b_header(&b, 3, N, 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "t.%d", i);
        int64_t ne[1] = {8};
        b_tensor(&b, key, 1, ne, MN_TYPE_F32, (uint64_t)i * 32);
    }
    b_pad(&b, 32);
    b_zeros(&b, (size_t)N * 32);
    uint8_t *copy = malloc(b.n);
    memcpy(copy, b.p, b.n);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(copy, b.n, &g, NULL), MN_OK);
    assert_int_equal(mn_gguf_n_tensors(g), N);
    assert_int_equal(mn_gguf_find_tensor(g, "t.12345")->offset, 12345 * 32);
    mn_gguf_close(g);
    free(copy);
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncate_every_length),
        cmocka_unit_test(test_row1_magic_version),
        cmocka_unit_test(test_row2_counts),
        cmocka_unit_test(test_row3_string_lengths),
        cmocka_unit_test(test_row4_arrays),
        cmocka_unit_test(test_row5_types_alignment),
        cmocka_unit_test(test_row6_dims),
        cmocka_unit_test(test_row7_types),
        cmocka_unit_test(test_row8_layout),
        cmocka_unit_test(test_row9_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
