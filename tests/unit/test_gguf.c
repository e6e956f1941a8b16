/*
 * test_gguf.c: the GGUF writer and reader agree. Every metadata type (each scalar, strings
 * including empty and non-ASCII ones, arrays of every element type, arrays of strings, nested and
 * empty arrays) and tensors of several types (F32, F16, Q8_0, Q4_0) are written, reopened from a
 * file and from memory, and compared value by value and byte by byte; alignment variants; typed
 * getter conversions and their errors; writer argument checks; atomic writes (a failed write,
 * forced with RLIMIT_FSIZE, leaves the target untouched and no PATH.tmp); and the real tokenizer
 * GGUFs in ../shared/vocab parse (that test is skipped when ../shared is absent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/types.h"

/* ---------------------------------------------------------------- helpers ------------------- */

static char g_dir[256]; /* per-run scratch directory */

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/mn_test_gguf_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
    return 0;
}

static void path_in_dir(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(sz > 0 ? (size_t)sz : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Deterministic pseudo-random bytes (xorshift). */
static void fill_bytes(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static void str_eq(mn_gguf_str s, const char *want, size_t want_len) {
    assert_int_equal(s.len, want_len);
    if (want_len) assert_memory_equal(s.ptr, want, want_len);
}

/* ---------------------------------------------------------------- metadata round trip ------- */

static const uint8_t A_U8[] = {0, 1, 255};
static const int8_t A_I8[] = {-128, 0, 127};
static const uint16_t A_U16[] = {0, 65535, 1234};
static const int16_t A_I16[] = {-32768, 32767, -1};
static const uint32_t A_U32[] = {0, 4294967295u, 7};
static const int32_t A_I32[] = {INT32_MIN, INT32_MAX, -5};
static const float A_F32[] = {1.5f, -0.0f, 3.25e-20f, INFINITY};
static const uint8_t A_BOOL[] = {1, 0, 1, 1};
static const uint64_t A_U64[] = {UINT64_MAX, 0, 1ull << 40};
static const int64_t A_I64[] = {INT64_MIN, INT64_MAX, -1};
static const double A_F64[] = {1e300, -2.5, 0.1};

static const char *const A_STR[] = {"hello", "", "tschüß ✓ 🐟", "with\nnewline"};

/* Builds a writer holding one key of every kind. */
static mn_gguf_writer *metadata_writer(void) {
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_u8(w, "t.u8", 200), MN_OK);
    assert_int_equal(mn_gguf_set_i8(w, "t.i8", -100), MN_OK);
    assert_int_equal(mn_gguf_set_u16(w, "t.u16", 60000), MN_OK);
    assert_int_equal(mn_gguf_set_i16(w, "t.i16", -30000), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, "t.u32", 4000000000u), MN_OK);
    assert_int_equal(mn_gguf_set_i32(w, "t.i32", -2000000000), MN_OK);
    assert_int_equal(mn_gguf_set_u64(w, "t.u64", UINT64_MAX), MN_OK);
    assert_int_equal(mn_gguf_set_i64(w, "t.i64", INT64_MIN), MN_OK);
    assert_int_equal(mn_gguf_set_f32(w, "t.f32", 0.1f), MN_OK);
    assert_int_equal(mn_gguf_set_f64(w, "t.f64", -1.0 / 3.0), MN_OK);
    assert_int_equal(mn_gguf_set_bool(w, "t.true", true), MN_OK);
    assert_int_equal(mn_gguf_set_bool(w, "t.false", false), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "t.str", "llama"), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "t.empty", ""), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "t.utf8", "ünïcödé ✓"), MN_OK);
    /* a string with an embedded NUL goes through set_value */
    mn_gguf_value nul = {.type = MN_GGUF_STRING};
    nul.v.str = (mn_gguf_str){"a\0b", 3};
    assert_int_equal(mn_gguf_set_value(w, "t.nul", &nul), MN_OK);

    assert_int_equal(mn_gguf_set_arr_data(w, "a.u8", MN_GGUF_UINT8, A_U8, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.i8", MN_GGUF_INT8, A_I8, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.u16", MN_GGUF_UINT16, A_U16, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.i16", MN_GGUF_INT16, A_I16, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.u32", MN_GGUF_UINT32, A_U32, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.i32", MN_GGUF_INT32, A_I32, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.f32", MN_GGUF_FLOAT32, A_F32, 4), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.bool", MN_GGUF_BOOL, A_BOOL, 4), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.u64", MN_GGUF_UINT64, A_U64, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.i64", MN_GGUF_INT64, A_I64, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.f64", MN_GGUF_FLOAT64, A_F64, 3), MN_OK);
    assert_int_equal(mn_gguf_set_arr_str(w, "a.str", A_STR, NULL, 4), MN_OK);
    const uint64_t lens[2] = {2, 0};
    const char *const two[2] = {"xyz", NULL};
    assert_int_equal(mn_gguf_set_arr_str(w, "a.str_lens", two, lens, 2), MN_OK);
    assert_int_equal(mn_gguf_set_arr_data(w, "a.empty_u32", MN_GGUF_UINT32, NULL, 0), MN_OK);
    assert_int_equal(mn_gguf_set_arr_str(w, "a.empty_str", NULL, NULL, 0), MN_OK);

    /* nested: [[ "a", "b" ], [], [ "c" ]] (array of arrays of strings) */
    mn_gguf_value s[3] = {{.type = MN_GGUF_STRING}, {.type = MN_GGUF_STRING}, {.type = MN_GGUF_STRING}};
    s[0].v.str = (mn_gguf_str){"a", 1};
    s[1].v.str = (mn_gguf_str){"b", 1};
    s[2].v.str = (mn_gguf_str){"c", 1};
    mn_gguf_value inner[3] = {{.type = MN_GGUF_ARRAY}, {.type = MN_GGUF_ARRAY}, {.type = MN_GGUF_ARRAY}};
    inner[0].v.arr.type = MN_GGUF_STRING, inner[0].v.arr.n = 2, inner[0].v.arr.items = s;
    inner[1].v.arr.type = MN_GGUF_STRING, inner[1].v.arr.n = 0;
    inner[2].v.arr.type = MN_GGUF_STRING, inner[2].v.arr.n = 1, inner[2].v.arr.items = s + 2;
    mn_gguf_value outer = {.type = MN_GGUF_ARRAY};
    outer.v.arr.type = MN_GGUF_ARRAY, outer.v.arr.n = 3, outer.v.arr.items = inner;
    assert_int_equal(mn_gguf_set_value(w, "n.arr_arr_str", &outer), MN_OK);

    /* nested fixed: [[1, 2, 3], [-5]] of int32, wrapped once more: [[[1,2,3],[-5]]] */
    static const int32_t i123[] = {1, 2, 3}, im5[] = {-5};
    mn_gguf_value ia[2] = {{.type = MN_GGUF_ARRAY}, {.type = MN_GGUF_ARRAY}};
    ia[0].v.arr.type = MN_GGUF_INT32, ia[0].v.arr.n = 3, ia[0].v.arr.raw = (const uint8_t *)i123;
    ia[1].v.arr.type = MN_GGUF_INT32, ia[1].v.arr.n = 1, ia[1].v.arr.raw = (const uint8_t *)im5;
    mn_gguf_value mid = {.type = MN_GGUF_ARRAY};
    mid.v.arr.type = MN_GGUF_ARRAY, mid.v.arr.n = 2, mid.v.arr.items = ia;
    mn_gguf_value top = {.type = MN_GGUF_ARRAY};
    top.v.arr.type = MN_GGUF_ARRAY, top.v.arr.n = 1, top.v.arr.items = &mid;
    assert_int_equal(mn_gguf_set_value(w, "n.deep_i32", &top), MN_OK);
    /* empty array of arrays */
    mn_gguf_value ea = {.type = MN_GGUF_ARRAY};
    ea.v.arr.type = MN_GGUF_ARRAY;
    assert_int_equal(mn_gguf_set_value(w, "n.empty_arr", &ea), MN_OK);
    return w;
}

#define N_META_KEYS 34

static void check_fixed_array(const mn_gguf *g, const char *key, uint32_t et, const void *want, uint64_t n) {
    const mn_gguf_value *v = NULL;
    assert_int_equal(mn_gguf_get_arr(g, key, et, &v, NULL), MN_OK);
    assert_int_equal(v->v.arr.n, n);
    assert_null(v->v.arr.items);
    if (n) assert_memory_equal(v->v.arr.raw, want, n * mn_gguf_type_size(et)); /* host is little-endian */
}

static void check_metadata(const mn_gguf *g) {
    assert_int_equal(mn_gguf_version(g), 3);
    assert_int_equal(mn_gguf_n_kv(g), N_META_KEYS);
    assert_int_equal(mn_gguf_n_tensors(g), 0);
    assert_int_equal(mn_gguf_alignment(g), 32);
    /* keys come back in insertion order */
    assert_string_equal(mn_gguf_key_at(g, 0), "t.u8");
    assert_string_equal(mn_gguf_key_at(g, N_META_KEYS - 1), "n.empty_arr");
    assert_null(mn_gguf_key_at(g, N_META_KEYS));
    assert_null(mn_gguf_value_at(g, -1));

    const mn_gguf_value *v;
    v = mn_gguf_get(g, "t.u8"), assert_int_equal(v->type, MN_GGUF_UINT8), assert_int_equal(v->v.u, 200);
    v = mn_gguf_get(g, "t.i8"), assert_int_equal(v->type, MN_GGUF_INT8), assert_int_equal(v->v.i, -100);
    v = mn_gguf_get(g, "t.u16"), assert_int_equal(v->type, MN_GGUF_UINT16), assert_int_equal(v->v.u, 60000);
    v = mn_gguf_get(g, "t.i16"), assert_int_equal(v->type, MN_GGUF_INT16), assert_int_equal(v->v.i, -30000);
    v = mn_gguf_get(g, "t.u32"), assert_int_equal(v->type, MN_GGUF_UINT32), assert_int_equal(v->v.u, 4000000000u);
    v = mn_gguf_get(g, "t.i32"), assert_int_equal(v->type, MN_GGUF_INT32), assert_int_equal(v->v.i, -2000000000);
    v = mn_gguf_get(g, "t.u64"), assert_int_equal(v->type, MN_GGUF_UINT64), assert_true(v->v.u == UINT64_MAX);
    v = mn_gguf_get(g, "t.i64"), assert_int_equal(v->type, MN_GGUF_INT64), assert_true(v->v.i == INT64_MIN);
    v = mn_gguf_get(g, "t.f32"), assert_int_equal(v->type, MN_GGUF_FLOAT32), assert_true(v->v.f == (double)0.1f);
    v = mn_gguf_get(g, "t.f64"), assert_int_equal(v->type, MN_GGUF_FLOAT64), assert_true(v->v.f == -1.0 / 3.0);
    v = mn_gguf_get(g, "t.true"), assert_int_equal(v->type, MN_GGUF_BOOL), assert_true(v->v.b);
    v = mn_gguf_get(g, "t.false"), assert_int_equal(v->type, MN_GGUF_BOOL), assert_false(v->v.b);
    v = mn_gguf_get(g, "t.str"), assert_int_equal(v->type, MN_GGUF_STRING), str_eq(v->v.str, "llama", 5);
    v = mn_gguf_get(g, "t.empty"), assert_int_equal(v->type, MN_GGUF_STRING), str_eq(v->v.str, "", 0);
    v = mn_gguf_get(g, "t.utf8"), str_eq(v->v.str, "ünïcödé ✓", strlen("ünïcödé ✓"));
    v = mn_gguf_get(g, "t.nul"), str_eq(v->v.str, "a\0b", 3);
    assert_null(mn_gguf_get(g, "t.absent"));
    assert_null(mn_gguf_get(g, ""));

    check_fixed_array(g, "a.u8", MN_GGUF_UINT8, A_U8, 3);
    check_fixed_array(g, "a.i8", MN_GGUF_INT8, A_I8, 3);
    check_fixed_array(g, "a.u16", MN_GGUF_UINT16, A_U16, 3);
    check_fixed_array(g, "a.i16", MN_GGUF_INT16, A_I16, 3);
    check_fixed_array(g, "a.u32", MN_GGUF_UINT32, A_U32, 3);
    check_fixed_array(g, "a.i32", MN_GGUF_INT32, A_I32, 3);
    check_fixed_array(g, "a.f32", MN_GGUF_FLOAT32, A_F32, 4);
    check_fixed_array(g, "a.bool", MN_GGUF_BOOL, A_BOOL, 4);
    check_fixed_array(g, "a.u64", MN_GGUF_UINT64, A_U64, 3);
    check_fixed_array(g, "a.i64", MN_GGUF_INT64, A_I64, 3);
    check_fixed_array(g, "a.f64", MN_GGUF_FLOAT64, A_F64, 3);
    check_fixed_array(g, "a.empty_u32", MN_GGUF_UINT32, NULL, 0);

    /* element accessors decode every integer and float type */
    const mn_gguf_value *a;
    assert_int_equal(mn_gguf_get_arr(g, "a.i8", MN_GGUF_INT8, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 0), -128);
    assert_int_equal(mn_gguf_arr_int(a, 2), 127);
    assert_int_equal(mn_gguf_get_arr(g, "a.u16", MN_GGUF_UINT16, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 1), 65535);
    assert_int_equal(mn_gguf_get_arr(g, "a.i16", MN_GGUF_INT16, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 0), -32768);
    assert_int_equal(mn_gguf_get_arr(g, "a.u32", MN_GGUF_UINT32, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 1), 4294967295ll);
    assert_int_equal(mn_gguf_get_arr(g, "a.i32", MN_GGUF_INT32, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 0), INT32_MIN);
    assert_int_equal(mn_gguf_get_arr(g, "a.i64", MN_GGUF_INT64, &a, NULL), MN_OK);
    assert_true(mn_gguf_arr_int(a, 0) == INT64_MIN);
    assert_int_equal(mn_gguf_get_arr(g, "a.bool", MN_GGUF_BOOL, &a, NULL), MN_OK);
    assert_int_equal(mn_gguf_arr_int(a, 0), 1);
    assert_int_equal(mn_gguf_arr_int(a, 1), 0);
    assert_int_equal(mn_gguf_get_arr(g, "a.f32", MN_GGUF_FLOAT32, &a, NULL), MN_OK);
    assert_true(mn_gguf_arr_float(a, 0) == 1.5);
    assert_true(signbit(mn_gguf_arr_float(a, 1)));
    assert_true(mn_gguf_arr_float(a, 2) == (double)3.25e-20f);
    assert_true(isinf(mn_gguf_arr_float(a, 3)));
    assert_true(mn_gguf_arr_float(a, 99) == 0.0); /* out of range: 0, no crash */
    assert_true(mn_gguf_arr_int(a, 0) == 0);       /* wrong element type: 0 */
    assert_int_equal(mn_gguf_get_arr(g, "a.f64", MN_GGUF_FLOAT64, &a, NULL), MN_OK);
    assert_true(mn_gguf_arr_float(a, 0) == 1e300);
    assert_true(mn_gguf_arr_float(a, 2) == 0.1);

    assert_int_equal(mn_gguf_get_arr(g, "a.str", MN_GGUF_STRING, &a, NULL), MN_OK);
    assert_int_equal(a->v.arr.n, 4);
    for (int i = 0; i < 4; i++) str_eq(mn_gguf_arr_str(a, (uint64_t)i), A_STR[i], strlen(A_STR[i]));
    assert_int_equal(mn_gguf_arr_str(a, 4).len, 0);
    assert_int_equal(mn_gguf_get_arr(g, "a.str_lens", MN_GGUF_STRING, &a, NULL), MN_OK);
    str_eq(mn_gguf_arr_str(a, 0), "xy", 2);
    str_eq(mn_gguf_arr_str(a, 1), "", 0);
    assert_int_equal(mn_gguf_get_arr(g, "a.empty_str", MN_GGUF_STRING, &a, NULL), MN_OK);
    assert_int_equal(a->v.arr.n, 0);

    assert_int_equal(mn_gguf_get_arr(g, "n.arr_arr_str", MN_GGUF_ARRAY, &a, NULL), MN_OK);
    assert_int_equal(a->v.arr.n, 3);
    const mn_gguf_value *in = a->v.arr.items;
    assert_int_equal(in[0].type, MN_GGUF_ARRAY);
    assert_int_equal(in[0].v.arr.type, MN_GGUF_STRING);
    assert_int_equal(in[0].v.arr.n, 2);
    str_eq(mn_gguf_arr_str(&in[0], 0), "a", 1);
    str_eq(mn_gguf_arr_str(&in[0], 1), "b", 1);
    assert_int_equal(in[1].v.arr.n, 0);
    str_eq(mn_gguf_arr_str(&in[2], 0), "c", 1);

    assert_int_equal(mn_gguf_get_arr(g, "n.deep_i32", MN_GGUF_ARRAY, &a, NULL), MN_OK);
    assert_int_equal(a->v.arr.n, 1);
    const mn_gguf_value *m = &a->v.arr.items[0];
    assert_int_equal(m->v.arr.type, MN_GGUF_ARRAY);
    assert_int_equal(m->v.arr.n, 2);
    assert_int_equal(m->v.arr.items[0].v.arr.type, MN_GGUF_INT32);
    assert_int_equal(m->v.arr.items[0].v.arr.n, 3);
    assert_int_equal(mn_gguf_arr_int(&m->v.arr.items[0], 2), 3);
    assert_int_equal(mn_gguf_arr_int(&m->v.arr.items[1], 0), -5);
    assert_int_equal(mn_gguf_get_arr(g, "n.empty_arr", MN_GGUF_ARRAY, &a, NULL), MN_OK);
    assert_int_equal(a->v.arr.n, 0);
}

static void test_metadata_roundtrip(void **state) {
    (void)state;
    mn_gguf_writer *w = metadata_writer();
    void *mem = NULL;
    size_t size = 0;
    mn_error err = {0};
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_OK);
    assert_int_equal(size % 32, 0); /* header padded to the alignment */

    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, &err), MN_OK);
    check_metadata(g);
    mn_gguf_close(g);

    char path[512];
    path_in_dir(path, sizeof path, "meta.gguf");
    assert_int_equal(mn_gguf_writer_write(w, path, &err), MN_OK);
    size_t fsize;
    void *fbytes = read_whole(path, &fsize);
    assert_int_equal(fsize, size);
    assert_memory_equal(fbytes, mem, size); /* the file and memory writers emit the same bytes */
    free(fbytes);
    assert_int_equal(mn_gguf_open(path, &g, &err), MN_OK);
    check_metadata(g);
    assert_int_equal(mn_gguf_file_size(g), size);

    /* copying every value through mn_gguf_set_value reproduces the same file */
    mn_gguf_writer *w2 = NULL;
    assert_int_equal(mn_gguf_writer_create(&w2, NULL), MN_OK);
    for (int64_t i = 0; i < mn_gguf_n_kv(g); i++)
        assert_int_equal(mn_gguf_set_value(w2, mn_gguf_key_at(g, i), mn_gguf_value_at(g, i)), MN_OK);
    void *mem2 = NULL;
    size_t size2 = 0;
    assert_int_equal(mn_gguf_writer_to_memory(w2, &mem2, &size2, &err), MN_OK);
    assert_int_equal(size2, size);
    assert_memory_equal(mem2, mem, size);
    free(mem2);
    mn_gguf_writer_free(w2);
    mn_gguf_close(g);
    free(mem);
    mn_gguf_writer_free(w);
}

/* A key set twice keeps its position and takes the last value. */
static void test_set_twice(void **state) {
    (void)state;
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "a", "first"), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, "b", 1), MN_OK);
    assert_int_equal(mn_gguf_set_arr_str(w, "a", A_STR, NULL, 4), MN_OK);
    assert_int_equal(mn_gguf_set_u32(w, "a", 9), MN_OK);
    void *mem;
    size_t size;
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, NULL), MN_OK);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, NULL), MN_OK);
    assert_int_equal(mn_gguf_n_kv(g), 2);
    assert_string_equal(mn_gguf_key_at(g, 0), "a");
    uint32_t u = 0;
    assert_int_equal(mn_gguf_get_u32(g, "a", &u, NULL), MN_OK);
    assert_int_equal(u, 9);
    mn_gguf_close(g);
    free(mem);
    mn_gguf_writer_free(w);
}

/* ---------------------------------------------------------------- typed getters ------------- */

static void test_getters(void **state) {
    (void)state;
    mn_gguf_writer *w = metadata_writer();
    assert_int_equal(mn_gguf_set_i32(w, "g.neg", -1), MN_OK);
    assert_int_equal(mn_gguf_set_u64(w, "g.small64", 77), MN_OK);
    assert_int_equal(mn_gguf_set_i64(w, "g.big_i64", 5000000000ll), MN_OK);
    assert_int_equal(mn_gguf_set_f64(w, "g.huge", 1e300), MN_OK);
    assert_int_equal(mn_gguf_set_f64(w, "g.inf", INFINITY), MN_OK);
    void *mem;
    size_t size;
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, NULL), MN_OK);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, NULL), MN_OK);

    mn_error err = {0};
    uint32_t u = 0;
    int64_t i = 0;
    float f = 0;
    bool b = false;
    mn_gguf_str s;
    /* integer conversions that fit */
    assert_int_equal(mn_gguf_get_u32(g, "t.u8", &u, &err), MN_OK), assert_int_equal(u, 200);
    assert_int_equal(mn_gguf_get_u32(g, "t.u16", &u, &err), MN_OK), assert_int_equal(u, 60000);
    assert_int_equal(mn_gguf_get_u32(g, "t.u32", &u, &err), MN_OK), assert_int_equal(u, 4000000000u);
    assert_int_equal(mn_gguf_get_u32(g, "g.small64", &u, &err), MN_OK), assert_int_equal(u, 77);
    assert_int_equal(mn_gguf_get_i64(g, "t.i8", &i, &err), MN_OK), assert_int_equal(i, -100);
    assert_int_equal(mn_gguf_get_i64(g, "t.u32", &i, &err), MN_OK), assert_int_equal(i, 4000000000ll);
    assert_int_equal(mn_gguf_get_i64(g, "t.i64", &i, &err), MN_OK), assert_true(i == INT64_MIN);
    assert_int_equal(mn_gguf_get_f32(g, "t.f32", &f, &err), MN_OK), assert_true(f == 0.1f);
    assert_int_equal(mn_gguf_get_f32(g, "t.f64", &f, &err), MN_OK), assert_true(f == (float)(-1.0 / 3.0));
    assert_int_equal(mn_gguf_get_f32(g, "g.inf", &f, &err), MN_OK), assert_true(isinf(f));
    assert_int_equal(mn_gguf_get_bool(g, "t.true", &b, &err), MN_OK), assert_true(b);
    assert_int_equal(mn_gguf_get_str(g, "t.str", &s, &err), MN_OK), str_eq(s, "llama", 5);

    /* out of range or wrong type: MN_EBADFILE naming the key; output untouched */
    u = 12345;
    assert_int_equal(mn_gguf_get_u32(g, "g.neg", &u, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "g.neg"));
    assert_non_null(strstr(err.message, "out of range"));
    assert_int_equal(u, 12345);
    assert_int_equal(mn_gguf_get_u32(g, "g.big_i64", &u, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "g.big_i64"));
    assert_int_equal(mn_gguf_get_u32(g, "t.u64", &u, &err), MN_EBADFILE);
    assert_int_equal(mn_gguf_get_i64(g, "t.u64", &i, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "t.u64"));
    assert_int_equal(mn_gguf_get_u32(g, "t.str", &u, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "t.str"));
    assert_non_null(strstr(err.message, "string"));
    assert_int_equal(mn_gguf_get_u32(g, "t.true", &u, &err), MN_EBADFILE); /* bool is not an integer */
    assert_int_equal(mn_gguf_get_f32(g, "t.u32", &f, &err), MN_EBADFILE);
    assert_int_equal(mn_gguf_get_f32(g, "g.huge", &f, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "g.huge"));
    assert_int_equal(mn_gguf_get_bool(g, "t.u8", &b, &err), MN_EBADFILE);
    assert_int_equal(mn_gguf_get_str(g, "a.str", &s, &err), MN_EBADFILE);
    const mn_gguf_value *a = NULL;
    assert_int_equal(mn_gguf_get_arr(g, "a.str", MN_GGUF_INT32, &a, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "a.str"));
    assert_int_equal(mn_gguf_get_arr(g, "t.u8", MN_GGUF_UINT8, &a, &err), MN_EBADFILE);

    /* absent: MN_ENOTFOUND and err untouched */
    strcpy(err.message, "sentinel");
    err.status = MN_OK;
    assert_int_equal(mn_gguf_get_u32(g, "nope", &u, &err), MN_ENOTFOUND);
    assert_int_equal(mn_gguf_get_i64(g, "nope", &i, &err), MN_ENOTFOUND);
    assert_int_equal(mn_gguf_get_f32(g, "nope", &f, &err), MN_ENOTFOUND);
    assert_int_equal(mn_gguf_get_bool(g, "nope", &b, &err), MN_ENOTFOUND);
    assert_int_equal(mn_gguf_get_str(g, "nope", &s, &err), MN_ENOTFOUND);
    assert_int_equal(mn_gguf_get_arr(g, "nope", MN_GGUF_STRING, &a, &err), MN_ENOTFOUND);
    assert_string_equal(err.message, "sentinel");
    assert_int_equal(err.status, MN_OK);
    /* NULL err is fine */
    assert_int_equal(mn_gguf_get_u32(g, "g.neg", &u, NULL), MN_EBADFILE);

    assert_string_equal(mn_gguf_type_name(MN_GGUF_UINT32), "uint32");
    assert_string_equal(mn_gguf_type_name(MN_GGUF_ARRAY), "array");
    assert_string_equal(mn_gguf_type_name(99), "invalid");
    assert_int_equal(mn_gguf_type_size(MN_GGUF_FLOAT64), 8);
    assert_int_equal(mn_gguf_type_size(MN_GGUF_STRING), 0);
    mn_gguf_close(g);
    free(mem);
    mn_gguf_writer_free(w);
}

/* ---------------------------------------------------------------- tensors ------------------- */

typedef struct tspec {
    const char *name;
    int32_t type;
    uint32_t n_dims;
    int64_t ne[4];
    uint64_t bytes; /* expected, worked out by hand from the block layouts */
} tspec;

static const tspec TENSORS[] = {
    {"f32.matrix", MN_TYPE_F32, 2, {7, 3, 1, 1}, 7 * 3 * 4},
    {"f16.cube", MN_TYPE_F16, 3, {16, 2, 2, 1}, 16 * 2 * 2 * 2},
    {"q8_0.rows", MN_TYPE_Q8_0, 2, {64, 3, 1, 1}, 2 * 34 * 3},
    {"q4_0.4d", MN_TYPE_Q4_0, 4, {32, 5, 1, 2}, 18 * 5 * 2},
    {"f32.scalarish", MN_TYPE_F32, 1, {1, 1, 1, 1}, 4},
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

static void check_tensors(const mn_gguf *g, uint8_t *const *data, uint64_t align) {
    assert_int_equal(mn_gguf_n_tensors(g), N_TENSORS);
    assert_int_equal(mn_gguf_alignment(g), align);
    assert_int_equal(mn_gguf_data_offset(g) % align, 0);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const mn_gguf_tensor *t = mn_gguf_find_tensor(g, TENSORS[i].name);
        assert_non_null(t);
        assert_ptr_equal(t, mn_gguf_tensor_at(g, (int64_t)i));
        assert_string_equal(t->name, TENSORS[i].name);
        assert_int_equal(t->type, TENSORS[i].type);
        assert_int_equal(t->n_dims, TENSORS[i].n_dims);
        for (int j = 0; j < 4; j++) assert_int_equal(t->ne[j], TENSORS[i].ne[j]);
        assert_int_equal(t->size, TENSORS[i].bytes);
        assert_int_equal(t->offset % align, 0);
        assert_memory_equal(t->data, data[i], t->size);
        /* data sits at data_offset + offset from the start of the file/buffer */
        const mn_gguf_tensor *t0 = mn_gguf_tensor_at(g, 0);
        assert_int_equal((const uint8_t *)t->data - (const uint8_t *)t0->data, t->offset - t0->offset);
    }
    assert_int_equal(mn_gguf_tensor_at(g, 0)->offset, 0);
    assert_null(mn_gguf_find_tensor(g, "absent"));
    assert_null(mn_gguf_find_tensor(g, ""));
    assert_null(mn_gguf_tensor_at(g, (int64_t)N_TENSORS));
}

/* Writes TENSORS (+ a little metadata) with the given alignment (0: leave the default), reopens
 * from memory and from a file, and checks shapes, sizes, offsets and data. */
static void roundtrip_tensors(uint32_t align) {
    uint8_t *data[N_TENSORS];
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "general.architecture", "test"), MN_OK);
    if (align) assert_int_equal(mn_gguf_set_u32(w, "general.alignment", align), MN_OK);
    for (size_t i = 0; i < N_TENSORS; i++) {
        assert_int_equal(mn_type_row_size(TENSORS[i].type, TENSORS[i].ne[0]) * (uint64_t)TENSORS[i].ne[1] *
                             (uint64_t)TENSORS[i].ne[2] * (uint64_t)TENSORS[i].ne[3],
                         TENSORS[i].bytes);
        data[i] = malloc(TENSORS[i].bytes);
        assert_non_null(data[i]);
        fill_bytes(data[i], TENSORS[i].bytes, i + 1);
        assert_int_equal(mn_gguf_add_tensor(w, TENSORS[i].name, TENSORS[i].type, TENSORS[i].n_dims,
                                            TENSORS[i].ne, data[i]),
                         MN_OK);
    }
    uint64_t a = align ? align : 32;
    void *mem;
    size_t size;
    mn_error err = {0};
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_OK);
    assert_int_equal(size % a, 0);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, &err), MN_OK);
    check_tensors(g, data, a);
    /* padding after each tensor is zeros, up to the next tensor (or the end of the file) */
    for (int64_t i = 0; i < mn_gguf_n_tensors(g); i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        uint64_t end = mn_gguf_data_offset(g) + t->offset + t->size;
        uint64_t next = i + 1 < mn_gguf_n_tensors(g) ? mn_gguf_data_offset(g) + mn_gguf_tensor_at(g, i + 1)->offset : size;
        assert_true(next - end < a);
        for (uint64_t k = end; k < next; k++) assert_int_equal(((uint8_t *)mem)[k], 0);
    }
    mn_gguf_close(g);

    char path[512];
    path_in_dir(path, sizeof path, "tensors.gguf");
    assert_int_equal(mn_gguf_writer_write(w, path, &err), MN_OK);
    assert_int_equal(mn_gguf_open(path, &g, &err), MN_OK);
    check_tensors(g, data, a);
    /* mapped data is aligned in memory too (the mapping starts on a page) */
    if (a <= 4096)
        for (int64_t i = 0; i < mn_gguf_n_tensors(g); i++)
            assert_int_equal((uintptr_t)mn_gguf_tensor_at(g, i)->data % a, 0);
    assert_int_equal(mn_gguf_file_size(g), size);
    mn_gguf_close(g);
    size_t fsize;
    void *fbytes = read_whole(path, &fsize);
    assert_int_equal(fsize, size);
    assert_memory_equal(fbytes, mem, size);
    free(fbytes);
    free(mem);
    mn_gguf_writer_free(w);
    for (size_t i = 0; i < N_TENSORS; i++) free(data[i]);
}

static void test_tensors_default_alignment(void **state) {
    (void)state;
    roundtrip_tensors(0);
}

static void test_tensors_alignment_variants(void **state) {
    (void)state;
    static const uint32_t aligns[] = {1, 2, 8, 32, 64, 4096, 65536};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) roundtrip_tensors(aligns[i]);
}

/* ---------------------------------------------------------------- writer argument checks ---- */

static void test_writer_rejects(void **state) {
    (void)state;
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    static const float d[64] = {0};
    int64_t ne[4] = {32, 1, 1, 1};

    assert_int_equal(mn_gguf_set_u32(w, "", 1), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "empty"));
    assert_int_equal(mn_gguf_set_u32(w, NULL, 1), MN_EINVAL);
    assert_int_equal(mn_gguf_set_u32(w, "bad\xff", 1), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "UTF-8"));
    assert_int_equal(mn_gguf_set_str(w, "k", NULL), MN_EINVAL);
    assert_int_equal(mn_gguf_set_arr_data(w, "k", MN_GGUF_STRING, d, 1), MN_EINVAL);
    assert_int_equal(mn_gguf_set_arr_data(w, "k", 13, d, 1), MN_EINVAL);
    assert_int_equal(mn_gguf_set_arr_data(w, "k", MN_GGUF_UINT8, NULL, 3), MN_EINVAL);
    static const uint8_t two = 2;
    assert_int_equal(mn_gguf_set_arr_data(w, "k", MN_GGUF_BOOL, &two, 1), MN_EINVAL);
    assert_int_equal(mn_gguf_set_arr_data(w, "k", MN_GGUF_UINT64, d, UINT64_MAX / 4), MN_ERANGE);
    mn_gguf_value bad = {.type = 13};
    assert_int_equal(mn_gguf_set_value(w, "k", &bad), MN_EINVAL);
    /* an array whose element does not have the declared type */
    mn_gguf_value e = {.type = MN_GGUF_UINT32};
    mn_gguf_value arr = {.type = MN_GGUF_ARRAY};
    arr.v.arr.type = MN_GGUF_STRING, arr.v.arr.n = 1, arr.v.arr.items = &e;
    assert_int_equal(mn_gguf_set_value(w, "k", &arr), MN_EINVAL);
    /* nesting beyond MN_GGUF_MAX_DEPTH */
    mn_gguf_value levels[MN_GGUF_MAX_DEPTH + 1];
    for (int i = 0; i <= MN_GGUF_MAX_DEPTH; i++) {
        levels[i] = (mn_gguf_value){.type = MN_GGUF_ARRAY};
        levels[i].v.arr.type = MN_GGUF_ARRAY;
        levels[i].v.arr.n = i < MN_GGUF_MAX_DEPTH ? 1 : 0;
        levels[i].v.arr.items = i < MN_GGUF_MAX_DEPTH ? &levels[i + 1] : NULL;
    }
    assert_int_equal(mn_gguf_set_value(w, "deep", &levels[0]), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "nested"));
    assert_int_equal(mn_gguf_set_value(w, "deep", &levels[1]), MN_OK); /* exactly the limit */

    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    assert_int_equal(mn_gguf_add_tensor(w, name64, MN_TYPE_F32, 1, ne, d), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "too long"));
    name64[63] = '\0';
    assert_int_equal(mn_gguf_add_tensor(w, name64, MN_TYPE_F32, 1, ne, d), MN_OK);
    assert_int_equal(mn_gguf_add_tensor(w, "", MN_TYPE_F32, 1, ne, d), MN_EINVAL);
    assert_int_equal(mn_gguf_add_tensor(w, "t", 4, 1, ne, d), MN_EINVAL); /* removed id */
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "unknown type"));
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_COUNT, 1, ne, d), MN_EINVAL);
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_F32, 0, ne, d), MN_EINVAL);
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_F32, 5, ne, d), MN_EINVAL);
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_F32, 1, ne, NULL), MN_EINVAL);
    int64_t neg[4] = {-1, 1, 1, 1};
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_F32, 1, neg, d), MN_EINVAL);
    int64_t odd[4] = {33, 1, 1, 1};
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_Q8_0, 1, odd, d), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "block size"));
    int64_t huge[4] = {INT64_MAX / 2, 4, 1, 1};
    assert_int_equal(mn_gguf_add_tensor(w, "t", MN_TYPE_F32, 2, huge, d), MN_EINVAL);
    assert_non_null(strstr(mn_gguf_writer_errmsg(w), "overflow"));

    /* duplicates are reported when writing */
    assert_int_equal(mn_gguf_add_tensor(w, "dup", MN_TYPE_F32, 1, ne, d), MN_OK);
    assert_int_equal(mn_gguf_add_tensor(w, "dup", MN_TYPE_F32, 1, ne, d), MN_OK);
    void *mem = NULL;
    size_t size = 0;
    mn_error err = {0};
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_EINVAL);
    assert_non_null(strstr(err.message, "duplicate tensor name 'dup'"));
    assert_null(mem);
    mn_gguf_writer_free(w);
    mn_gguf_writer_free(NULL);
}

static void test_writer_bad_alignment(void **state) {
    (void)state;
    static const uint32_t bad_u32[] = {0, 3, 48, 1u << 31, MN_GGUF_MAX_ALIGNMENT * 2};
    for (size_t i = 0; i < sizeof bad_u32 / sizeof bad_u32[0]; i++) {
        mn_gguf_writer *w = NULL;
        assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
        assert_int_equal(mn_gguf_set_u32(w, "general.alignment", bad_u32[i]), MN_OK);
        void *mem = NULL;
        size_t size;
        mn_error err = {0};
        assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_EINVAL);
        assert_non_null(strstr(err.message, "alignment"));
        mn_gguf_writer_free(w);
    }
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_u64(w, "general.alignment", 32), MN_OK);
    void *mem = NULL;
    size_t size;
    mn_error err = {0};
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_EINVAL);
    assert_non_null(strstr(err.message, "uint32"));
    /* the largest allowed alignment works */
    assert_int_equal(mn_gguf_set_u32(w, "general.alignment", MN_GGUF_MAX_ALIGNMENT), MN_OK);
    assert_int_equal(mn_gguf_writer_to_memory(w, &mem, &size, &err), MN_OK);
    assert_int_equal(size, MN_GGUF_MAX_ALIGNMENT);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(mem, size, &g, &err), MN_OK);
    assert_int_equal(mn_gguf_alignment(g), MN_GGUF_MAX_ALIGNMENT);
    mn_gguf_close(g);
    free(mem);
    mn_gguf_writer_free(w);
}

/* ---------------------------------------------------------------- atomic writes ------------- */

static void test_atomic_write(void **state) {
    (void)state;
    char path[512], tmp[600];
    path_in_dir(path, sizeof path, "atomic.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    mn_error err = {0};

    /* an existing target is replaced whole */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("old contents", f);
    fclose(f);
    mn_gguf_writer *w = NULL;
    assert_int_equal(mn_gguf_writer_create(&w, NULL), MN_OK);
    assert_int_equal(mn_gguf_set_str(w, "general.name", "small"), MN_OK);
    assert_int_equal(mn_gguf_writer_write(w, path, &err), MN_OK);
    assert_false(file_exists(tmp));
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open(path, &g, &err), MN_OK);
    mn_gguf_close(g);
    size_t good_size;
    void *good = read_whole(path, &good_size);

    /* a write that fails part-way (file size limit -> EFBIG, standing in for ENOSPC) leaves the
     * target as it was and removes PATH.tmp */
    static uint8_t big[1 << 20];
    int64_t ne[4] = {sizeof big, 1, 1, 1};
    assert_int_equal(mn_gguf_add_tensor(w, "big", MN_TYPE_I8, 1, ne, big), MN_OK);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    mn_status s = mn_gguf_writer_write(w, path, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, MN_EIO);
    assert_non_null(strstr(err.message, "big"));       /* names the tensor being written */
    assert_non_null(strstr(err.message, "too large")); /* strerror(EFBIG) */
    assert_false(file_exists(tmp));
    size_t now_size;
    void *now = read_whole(path, &now_size);
    assert_int_equal(now_size, good_size);
    assert_memory_equal(now, good, good_size);
    free(now);
    free(good);

    /* a directory that does not exist: MN_EIO naming the step */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.gguf", g_dir);
    assert_int_equal(mn_gguf_writer_write(w, nodir, &err), MN_EIO);
    assert_non_null(strstr(err.message, "cannot create"));
    mn_gguf_writer_free(w);
}

/* ---------------------------------------------------------------- open errors --------------- */

static void test_open_errors(void **state) {
    (void)state;
    mn_gguf *g = (mn_gguf *)&g; /* must be reset to NULL on failure */
    mn_error err = {0};
    char path[512];
    path_in_dir(path, sizeof path, "missing.gguf");
    assert_int_equal(mn_gguf_open(path, &g, &err), MN_ENOTFOUND);
    assert_null(g);
    assert_non_null(strstr(err.message, "cannot open"));
    assert_int_equal(mn_gguf_open(g_dir, &g, &err), MN_EIO);
    assert_non_null(strstr(err.message, "regular file"));
    path_in_dir(path, sizeof path, "empty.gguf");
    FILE *f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(mn_gguf_open(path, &g, &err), MN_EBADFILE);
    assert_non_null(strstr(err.message, "bad magic"));
    assert_int_equal(mn_gguf_open(NULL, &g, &err), MN_EINVAL);
    assert_int_equal(mn_gguf_open_memory(NULL, 5, &g, &err), MN_EINVAL);
    assert_int_equal(mn_gguf_open_memory(NULL, 0, &g, &err), MN_EBADFILE);
    mn_gguf_close(NULL);
}

/* ---------------------------------------------------------------- real files ---------------- */

typedef struct vocab_file {
    const char *file;
    const char *model; /* tokenizer.ggml.model */
    uint64_t n_vocab;
} vocab_file;

static void test_shared_vocab_files(void **state) {
    (void)state;
    const char *shared = getenv("MINNOW_SHARED");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vocab", shared ? shared : "../shared");
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("skipped: %s is absent (tokenizer GGUFs live in ../shared/vocab)\n", dir);
        skip();
    }
    static const vocab_file files[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", 32000},
        {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
        {"ggml-vocab-phi-3.gguf", "llama", 32064},
        {"ggml-vocab-deepseek-coder.gguf", "gpt2", 32256},
        {"ggml-vocab-falcon.gguf", "gpt2", 65024},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].file);
        mn_gguf *g = NULL;
        mn_error err = {0};
        mn_status s = mn_gguf_open(path, &g, &err);
        if (s != MN_OK) fprintf(stderr, "%s: %s\n", path, err.message);
        assert_int_equal(s, MN_OK);
        assert_int_equal(mn_gguf_version(g), 3);
        mn_gguf_str model;
        assert_int_equal(mn_gguf_get_str(g, "tokenizer.ggml.model", &model, &err), MN_OK);
        str_eq(model, files[i].model, strlen(files[i].model));
        const mn_gguf_value *tokens = NULL;
        assert_int_equal(mn_gguf_get_arr(g, "tokenizer.ggml.tokens", MN_GGUF_STRING, &tokens, &err), MN_OK);
        assert_int_equal(tokens->v.arr.n, files[i].n_vocab);
        const mn_gguf_value *types = NULL;
        assert_int_equal(mn_gguf_get_arr(g, "tokenizer.ggml.token_type", MN_GGUF_INT32, &types, &err), MN_OK);
        assert_int_equal(types->v.arr.n, files[i].n_vocab);
        uint32_t bos;
        s = mn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, &err);
        assert_true(s == MN_OK || s == MN_ENOTFOUND);
        if (s == MN_OK) assert_true(bos < files[i].n_vocab);
        assert_int_equal(mn_gguf_n_tensors(g), 0);
        mn_gguf_close(g);
    }
    /* a known token: llama-spm id 1 is "<s>" */
    char path[700];
    snprintf(path, sizeof path, "%s/ggml-vocab-llama-spm.gguf", dir);
    size_t n;
    void *bytes = read_whole(path, &n);
    mn_gguf *g = NULL;
    assert_int_equal(mn_gguf_open_memory(bytes, n, &g, NULL), MN_OK);
    const mn_gguf_value *tokens = mn_gguf_get(g, "tokenizer.ggml.tokens");
    str_eq(mn_gguf_arr_str(tokens, 1), "<s>", 3);
    mn_gguf_close(g);
    free(bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_roundtrip),
        cmocka_unit_test(test_set_twice),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_tensors_default_alignment),
        cmocka_unit_test(test_tensors_alignment_variants),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_writer_bad_alignment),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_shared_vocab_files),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
