/*
 * fuzz_gguf.c: libFuzzer target for the GGUF reader. Opens the input with mn_gguf_open_memory from
 * an exact-size copy (so any read past the end is caught by ASan), then walks every key, value
 * (recursively, through nested arrays and every element accessor), typed getter and tensor (every
 * data byte is touched), so a file that passes validation cannot make any accessor misbehave.
 * Accepted inputs are also copied through the writer (mn_gguf_set_value + add_tensor) and the
 * result must reopen with identical counts: what the reader accepts, the writer can reproduce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sinks the fuzzer cannot optimise away. */
static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001B3ull; }

static uint64_t walk_value(const mn_gguf_value *v, uint64_t h, int depth) {
    h = mix(h, v->type);
    switch (v->type) {
    case MN_GGUF_STRING:
        for (uint64_t i = 0; i < v->v.str.len; i++) h = mix(h, (uint8_t)v->v.str.ptr[i]);
        break;
    case MN_GGUF_ARRAY: {
        h = mix(h, v->v.arr.type);
        h = mix(h, v->v.arr.n);
        if (depth > MN_GGUF_MAX_DEPTH) __builtin_trap(); /* the reader must have refused this */
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (v->v.arr.items) h = walk_value(&v->v.arr.items[i], h, depth + 1);
            h = mix(h, (uint64_t)mn_gguf_arr_int(v, i));
            double f = mn_gguf_arr_float(v, i);
            uint64_t bits;
            memcpy(&bits, &f, sizeof bits);
            h = mix(h, bits);
            mn_gguf_str s = mn_gguf_arr_str(v, i);
            if (s.len) h = mix(h, (uint8_t)s.ptr[s.len - 1]);
        }
        /* out-of-range indices must be harmless */
        h = mix(h, (uint64_t)mn_gguf_arr_int(v, v->v.arr.n));
        h = mix(h, mn_gguf_arr_str(v, v->v.arr.n).len);
        break;
    }
    default: h = mix(h, v->v.u); break;
    }
    return h;
}

/* Copies every key and tensor of g into a writer; the result must reopen with the same counts. */
static void rewrite(const mn_gguf *g) {
    mn_gguf_writer *w = NULL;
    if (mn_gguf_writer_create(&w, NULL) != MN_OK) return;
    int ok = 1;
    for (int64_t i = 0; i < mn_gguf_n_kv(g) && ok; i++)
        ok = mn_gguf_set_value(w, mn_gguf_key_at(g, i), mn_gguf_value_at(g, i)) == MN_OK;
    for (int64_t i = 0; i < mn_gguf_n_tensors(g) && ok; i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        ok = mn_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == MN_OK;
    }
    if (!ok) __builtin_trap(); /* a validated file must be reproducible */
    void *mem = NULL;
    size_t size = 0;
    mn_status s = mn_gguf_writer_to_memory(w, &mem, &size, NULL);
    if (s == MN_OK) {
        mn_gguf *g2 = NULL;
        if (mn_gguf_open_memory(mem, size, &g2, NULL) != MN_OK) __builtin_trap();
        if (mn_gguf_n_kv(g2) != mn_gguf_n_kv(g) || mn_gguf_n_tensors(g2) != mn_gguf_n_tensors(g)) __builtin_trap();
        mn_gguf_close(g2);
        free(mem);
    } else if (s != MN_ENOMEM) {
        __builtin_trap();
    }
    mn_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    mn_gguf *g = NULL;
    mn_error err = {0};
    if (mn_gguf_open_memory(copy, size, &g, &err) != MN_OK) {
        if (g != NULL || err.message[0] == '\0') __builtin_trap(); /* failures must explain */
        free(copy);
        return 0;
    }
    volatile uint64_t h = mn_gguf_version(g) + mn_gguf_alignment(g) + mn_gguf_data_offset(g);
    if (mn_gguf_data_offset(g) > mn_gguf_file_size(g)) __builtin_trap();
    for (int64_t i = 0; i < mn_gguf_n_kv(g); i++) {
        const char *key = mn_gguf_key_at(g, i);
        const mn_gguf_value *v = mn_gguf_value_at(g, i);
        if (mn_gguf_get(g, key) != v) __builtin_trap(); /* keys are unique and found */
        h = walk_value(v, h, 0);
        uint32_t u;
        int64_t i64;
        float f;
        bool b;
        mn_gguf_str s;
        const mn_gguf_value *a;
        mn_error e2 = {0};
        if (mn_gguf_get_u32(g, key, &u, &e2) == MN_OK) h = mix(h, u);
        if (mn_gguf_get_i64(g, key, &i64, &e2) == MN_OK) h = mix(h, (uint64_t)i64);
        if (mn_gguf_get_f32(g, key, &f, &e2) == MN_OK) h = mix(h, (uint64_t)(f == f));
        if (mn_gguf_get_bool(g, key, &b, &e2) == MN_OK) h = mix(h, b);
        if (mn_gguf_get_str(g, key, &s, &e2) == MN_OK) h = mix(h, s.len);
        for (uint32_t t = 0; t < MN_GGUF_TYPE_COUNT; t++)
            if (mn_gguf_get_arr(g, key, t, &a, &e2) == MN_OK) h = mix(h, a->v.arr.n);
        h = mix(h, (uintptr_t)mn_gguf_type_name(v->type));
    }
    for (int64_t i = 0; i < mn_gguf_n_tensors(g); i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        if (mn_gguf_find_tensor(g, t->name) != t) __builtin_trap();
        if (!mn_type_get(t->type) || t->size == 0) __builtin_trap();
        const uint8_t *p = t->data;
        if (p < copy || p + t->size > copy + size) __builtin_trap(); /* inside the buffer */
        for (uint64_t k = 0; k < t->size; k++) h = mix(h, p[k]);
    }
    (void)mn_gguf_get(g, "general.architecture");
    (void)mn_gguf_find_tensor(g, "token_embd.weight");
    (void)h;
    /* Huge alignments make the rewritten file megabytes of padding: skip them to keep the fuzzer
     * fast (the unit tests cover the maximum alignment). */
    if (mn_gguf_alignment(g) <= 4096) rewrite(g);
    mn_gguf_close(g);
    free(copy);
    return 0;
}
