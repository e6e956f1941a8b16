/*
 * gguf_write.c: the GGUF v3 writer (layout in gguf.h).
 *
 * The writer keeps deep copies of the metadata values and borrowed pointers to tensor data. At
 * write time it lays the file out once (header size, data section start, each tensor's offset,
 * total size, all overflow-checked), serialises the header and tensor infos into one buffer padded
 * to the alignment, then appends each tensor's bytes followed by zero padding up to the alignment.
 * That is the layout llama.cpp and gguf-py write, and the one our reader insists on (packed, no
 * gaps). Keys and tensors appear in the order they were first set/added.
 *
 * Files are written atomically: PATH.tmp is created, written, fsynced, closed and renamed over
 * PATH (then the directory is fsynced, best effort). Any failure (ENOSPC, EFBIG, EIO...) removes
 * the temporary file and leaves PATH untouched; the message names the step and the errno text.
 *
 * Setter failures (bad key, bad value, bad tensor shape) return a status and leave their message in
 * the writer (mn_gguf_writer_errmsg), because the setters take no mn_error. Duplicate tensor names
 * are found at write time by sorting (O(n log n)).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "gguf/gguf_internal.h"
#include "kernels/types.h"

typedef struct wkv {
    char *key;
    mn_gguf_value value; /* deep copy owned by the writer */
} wkv;

typedef struct wtensor {
    char *name;
    int32_t type;
    uint32_t n_dims;
    int64_t ne[MN_GGUF_MAX_DIMS];
    uint64_t size;
    uint64_t offset; /* filled by layout() */
    const void *data; /* borrowed until write returns */
} wtensor;

struct mn_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    mn_error msg; /* last setter failure */
};

/* ---------------------------------------------------------------- values -------------------- */

/* Frees what a deep-copied value owns (not the value struct itself). */
static void value_clear(mn_gguf_value *v) {
    if (v->type == MN_GGUF_STRING) {
        free((void *)v->v.str.ptr);
    } else if (v->type == MN_GGUF_ARRAY) {
        if (v->v.arr.items) {
            mn_gguf_value *items = (mn_gguf_value *)v->v.arr.items;
            for (uint64_t i = 0; i < v->v.arr.n; i++) value_clear(&items[i]);
            free(items);
        }
        free((void *)v->v.arr.raw);
    }
    memset(v, 0, sizeof *v);
}

/* Deep-copies src into dst after validating it (types in range, pointers present, sizes that do not
 * overflow, bools 0/1, nesting bounded). depth = enclosing arrays. On failure dst owns nothing. */
static mn_status value_copy(mn_gguf_writer *w, const char *key, const mn_gguf_value *src, int depth,
                            mn_gguf_value *dst) {
    memset(dst, 0, sizeof *dst);
    MN_RETURN_IF(src->type >= MN_GGUF_TYPE_COUNT, &w->msg, MN_EINVAL, "key '%s': invalid value type %" PRIu32,
                 key, src->type);
    if (src->type == MN_GGUF_STRING) {
        MN_RETURN_IF(!src->v.str.ptr && src->v.str.len, &w->msg, MN_EINVAL, "key '%s': string is NULL", key);
        MN_RETURN_IF(src->v.str.len >= SIZE_MAX, &w->msg, MN_ERANGE, "key '%s': string too long", key);
        char *c = malloc((size_t)src->v.str.len + 1);
        MN_RETURN_IF(!c, &w->msg, MN_ENOMEM, "key '%s': out of memory", key);
        if (src->v.str.len) memcpy(c, src->v.str.ptr, (size_t)src->v.str.len);
        c[src->v.str.len] = '\0';
        dst->type = MN_GGUF_STRING;
        dst->v.str.ptr = c;
        dst->v.str.len = src->v.str.len;
        return MN_OK;
    }
    if (src->type != MN_GGUF_ARRAY) {
        *dst = *src;
        return MN_OK;
    }
    MN_RETURN_IF(depth >= MN_GGUF_MAX_DEPTH, &w->msg, MN_EINVAL,
                 "key '%s': arrays nested deeper than the limit of %d", key, MN_GGUF_MAX_DEPTH);
    uint32_t et = src->v.arr.type;
    uint64_t n = src->v.arr.n;
    MN_RETURN_IF(et >= MN_GGUF_TYPE_COUNT, &w->msg, MN_EINVAL, "key '%s': invalid array element type %" PRIu32,
                 key, et);
    dst->type = MN_GGUF_ARRAY;
    dst->v.arr.type = et;
    uint64_t esize = mn_gguf_type_size(et), bytes;
    if (esize) {
        MN_RETURN_IF(mn_mul_overflow_u64(n, esize, &bytes) || bytes >= SIZE_MAX, &w->msg, MN_ERANGE,
                     "key '%s': array of %" PRIu64 " elements is too large", key, n);
        MN_RETURN_IF(n && !src->v.arr.raw, &w->msg, MN_EINVAL, "key '%s': array data is NULL", key);
        if (et == MN_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                MN_RETURN_IF(src->v.arr.raw[i] > 1, &w->msg, MN_EINVAL,
                             "key '%s': bool element %" PRIu64 " is not 0 or 1", key, i);
        if (n) {
            uint8_t *raw = malloc((size_t)bytes);
            MN_RETURN_IF(!raw, &w->msg, MN_ENOMEM, "key '%s': out of memory", key);
            memcpy(raw, src->v.arr.raw, (size_t)bytes);
            dst->v.arr.raw = raw;
        }
        dst->v.arr.n = n;
        return MN_OK;
    }
    if (n == 0) return MN_OK;
    MN_RETURN_IF(!src->v.arr.items, &w->msg, MN_EINVAL, "key '%s': array items are NULL", key);
    MN_RETURN_IF(mn_mul_overflow_u64(n, sizeof(mn_gguf_value), &bytes) || bytes >= SIZE_MAX, &w->msg,
                 MN_ERANGE, "key '%s': array of %" PRIu64 " elements is too large", key, n);
    mn_gguf_value *items = calloc((size_t)n, sizeof *items);
    MN_RETURN_IF(!items, &w->msg, MN_ENOMEM, "key '%s': out of memory", key);
    dst->v.arr.items = items;
    for (uint64_t i = 0; i < n; i++) {
        const mn_gguf_value *e = &src->v.arr.items[i];
        mn_status s = MN_OK;
        if (e->type != et)
            s = mn_error_set(&w->msg, MN_EINVAL, "key '%s': element %" PRIu64 " has type %s in an array of %s",
                             key, i, mn_gguf_type_name(e->type), mn_gguf_type_name(et));
        else
            s = value_copy(w, key, e, depth + 1, &items[i]);
        if (s != MN_OK) {
            dst->v.arr.n = i; /* clear only what was copied */
            value_clear(dst);
            return s;
        }
    }
    dst->v.arr.n = n;
    return MN_OK;
}

/* On-disk bytes of a value (without its type tag); overflow-checked. */
static int value_disk_size(const mn_gguf_value *v, uint64_t *out) {
    if (v->type == MN_GGUF_STRING) return mn_add_overflow_u64(8, v->v.str.len, out);
    if (v->type != MN_GGUF_ARRAY) {
        *out = mn_gguf_type_size(v->type);
        return 0;
    }
    uint64_t total = 12, esize = mn_gguf_type_size(v->v.arr.type), b;
    if (esize) {
        if (mn_mul_overflow_u64(v->v.arr.n, esize, &b) || mn_add_overflow_u64(total, b, &total)) return 1;
    } else {
        for (uint64_t i = 0; i < v->v.arr.n; i++)
            if (value_disk_size(&v->v.arr.items[i], &b) || mn_add_overflow_u64(total, b, &total)) return 1;
    }
    *out = total;
    return 0;
}

/* ---------------------------------------------------------------- writer setters ------------ */

mn_status mn_gguf_writer_create(mn_gguf_writer **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "mn_gguf_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    MN_RETURN_IF(!*out, err, MN_ENOMEM, "out of memory");
    return MN_OK;
}

void mn_gguf_writer_free(mn_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        value_clear(&w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

const char *mn_gguf_writer_errmsg(const mn_gguf_writer *w) { return w ? w->msg.message : ""; }

static mn_status check_key(mn_gguf_writer *w, const char *key) {
    MN_RETURN_IF(!key || !key[0], &w->msg, MN_EINVAL, "key is NULL or empty");
    MN_RETURN_IF(!mn_gguf_utf8_valid(key, strlen(key)), &w->msg, MN_EINVAL, "key is not valid UTF-8");
    return MN_OK;
}

mn_status mn_gguf_set_value(mn_gguf_writer *w, const char *key, const mn_gguf_value *v) {
    if (!w) return MN_EINVAL;
    MN_FORWARD(check_key(w, key));
    MN_RETURN_IF(!v, &w->msg, MN_EINVAL, "key '%s': value is NULL", key);
    mn_gguf_value copy;
    MN_FORWARD(value_copy(w, key, v, 0, &copy));
    /* A key set again keeps its place and takes the new value. Linear: metadata has tens of keys. */
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            value_clear(&w->kvs[i].value);
            w->kvs[i].value = copy;
            return MN_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *n = cap < SIZE_MAX / sizeof *n ? realloc(w->kvs, cap * sizeof *n) : NULL;
        if (!n) {
            value_clear(&copy);
            return mn_error_set(&w->msg, MN_ENOMEM, "key '%s': out of memory", key);
        }
        w->kvs = n;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        value_clear(&copy);
        return mn_error_set(&w->msg, MN_ENOMEM, "key '%s': out of memory", key);
    }
    w->kvs[w->n_kv++] = (wkv){k, copy};
    return MN_OK;
}

static mn_status set_uint(mn_gguf_writer *w, const char *key, uint32_t type, uint64_t u) {
    mn_gguf_value v = {.type = type};
    v.v.u = u;
    return mn_gguf_set_value(w, key, &v);
}
static mn_status set_int(mn_gguf_writer *w, const char *key, uint32_t type, int64_t i) {
    mn_gguf_value v = {.type = type};
    v.v.i = i;
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_u8(mn_gguf_writer *w, const char *key, uint8_t v) { return set_uint(w, key, MN_GGUF_UINT8, v); }
mn_status mn_gguf_set_i8(mn_gguf_writer *w, const char *key, int8_t v) { return set_int(w, key, MN_GGUF_INT8, v); }
mn_status mn_gguf_set_u16(mn_gguf_writer *w, const char *key, uint16_t v) { return set_uint(w, key, MN_GGUF_UINT16, v); }
mn_status mn_gguf_set_i16(mn_gguf_writer *w, const char *key, int16_t v) { return set_int(w, key, MN_GGUF_INT16, v); }
mn_status mn_gguf_set_u32(mn_gguf_writer *w, const char *key, uint32_t v) { return set_uint(w, key, MN_GGUF_UINT32, v); }
mn_status mn_gguf_set_i32(mn_gguf_writer *w, const char *key, int32_t v) { return set_int(w, key, MN_GGUF_INT32, v); }
mn_status mn_gguf_set_u64(mn_gguf_writer *w, const char *key, uint64_t v) { return set_uint(w, key, MN_GGUF_UINT64, v); }
mn_status mn_gguf_set_i64(mn_gguf_writer *w, const char *key, int64_t v) { return set_int(w, key, MN_GGUF_INT64, v); }

mn_status mn_gguf_set_f32(mn_gguf_writer *w, const char *key, float f) {
    mn_gguf_value v = {.type = MN_GGUF_FLOAT32};
    v.v.f = f;
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_f64(mn_gguf_writer *w, const char *key, double f) {
    mn_gguf_value v = {.type = MN_GGUF_FLOAT64};
    v.v.f = f;
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_bool(mn_gguf_writer *w, const char *key, bool b) {
    mn_gguf_value v = {.type = MN_GGUF_BOOL};
    v.v.b = b;
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_str(mn_gguf_writer *w, const char *key, const char *s) {
    if (!w) return MN_EINVAL;
    MN_RETURN_IF(!s, &w->msg, MN_EINVAL, "key '%s': string is NULL", key ? key : "");
    mn_gguf_value v = {.type = MN_GGUF_STRING};
    v.v.str = (mn_gguf_str){s, strlen(s)};
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_arr_data(mn_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                               uint64_t n) {
    if (!w) return MN_EINVAL;
    MN_RETURN_IF(mn_gguf_type_size(elem_type) == 0, &w->msg, MN_EINVAL,
                 "key '%s': mn_gguf_set_arr_data needs a fixed-size element type, not %s", key ? key : "",
                 mn_gguf_type_name(elem_type));
    mn_gguf_value v = {.type = MN_GGUF_ARRAY};
    v.v.arr.type = elem_type;
    v.v.arr.n = n;
    v.v.arr.raw = data;
    return mn_gguf_set_value(w, key, &v);
}

mn_status mn_gguf_set_arr_str(mn_gguf_writer *w, const char *key, const char *const *strs,
                              const uint64_t *lens, uint64_t n) {
    if (!w) return MN_EINVAL;
    MN_RETURN_IF(n && !strs, &w->msg, MN_EINVAL, "key '%s': strings are NULL", key ? key : "");
    MN_RETURN_IF(n > SIZE_MAX / sizeof(mn_gguf_value), &w->msg, MN_ERANGE, "key '%s': too many strings",
                 key ? key : "");
    /* Build a temporary parsed-value view and let set_value copy and validate it. */
    mn_gguf_value *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    MN_RETURN_IF(n && !items, &w->msg, MN_ENOMEM, "key '%s': out of memory", key ? key : "");
    for (uint64_t i = 0; i < n; i++) {
        items[i].type = MN_GGUF_STRING;
        items[i].v.str.ptr = strs[i];
        items[i].v.str.len = lens ? lens[i] : strs[i] ? strlen(strs[i]) : 0;
    }
    mn_gguf_value v = {.type = MN_GGUF_ARRAY};
    v.v.arr.type = MN_GGUF_STRING;
    v.v.arr.n = n;
    v.v.arr.items = items;
    mn_status s = mn_gguf_set_value(w, key, &v);
    free(items);
    return s;
}

mn_status mn_gguf_add_tensor(mn_gguf_writer *w, const char *name, int32_t type, uint32_t n_dims,
                             const int64_t *ne, const void *data) {
    if (!w) return MN_EINVAL;
    MN_RETURN_IF(!name || !name[0], &w->msg, MN_EINVAL, "tensor name is NULL or empty");
    size_t len = strlen(name);
    MN_RETURN_IF(len >= MN_GGUF_MAX_NAME, &w->msg, MN_EINVAL,
                 "tensor '%.40s...': name is %zu bytes, too long (limit %d)", name, len, MN_GGUF_MAX_NAME - 1);
    MN_RETURN_IF(!mn_gguf_utf8_valid(name, len), &w->msg, MN_EINVAL, "tensor name is not valid UTF-8");
    MN_RETURN_IF(!mn_type_get(type), &w->msg, MN_EINVAL, "tensor '%s': unknown type id %" PRId32, name, type);
    MN_RETURN_IF(n_dims == 0 || n_dims > MN_GGUF_MAX_DIMS || !ne, &w->msg, MN_EINVAL,
                 "tensor '%s': n_dims %" PRIu32 " is out of range [1, %d]", name, n_dims, MN_GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    for (int j = 0; j < MN_GGUF_MAX_DIMS; j++) t.ne[j] = (uint32_t)j < n_dims ? ne[j] : 1;
    int64_t n_el;
    const char *why = mn_gguf_tensor_bytes(type, n_dims, t.ne, &t.size, &n_el);
    MN_RETURN_IF(why, &w->msg, MN_EINVAL,
                 "tensor '%s': shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]: %s", name, t.ne[0],
                 t.ne[1], t.ne[2], t.ne[3], why);
    MN_RETURN_IF(!data, &w->msg, MN_EINVAL, "tensor '%s': data is NULL", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        wtensor *nt = cap < SIZE_MAX / sizeof *nt ? realloc(w->tensors, cap * sizeof *nt) : NULL;
        MN_RETURN_IF(!nt, &w->msg, MN_ENOMEM, "tensor '%s': out of memory", name);
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    MN_RETURN_IF(!t.name, &w->msg, MN_ENOMEM, "tensor '%s': out of memory", name);
    w->tensors[w->n_tensors++] = t;
    return MN_OK;
}

/* ---------------------------------------------------------------- layout + serialise -------- */

typedef struct layout_info {
    uint64_t alignment;
    uint64_t header_size; /* header + kvs + infos, before padding */
    uint64_t data_offset; /* header_size rounded up to the alignment */
    uint64_t total;       /* whole file */
} layout_info;

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static mn_status layout(mn_gguf_writer *w, layout_info *L, mn_error *err) {
    L->alignment = MN_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        const mn_gguf_value *v = &w->kvs[i].value;
        MN_RETURN_IF(v->type != MN_GGUF_UINT32, err, MN_EINVAL,
                     "key 'general.alignment': alignment has type %s, expected uint32", mn_gguf_type_name(v->type));
        MN_RETURN_IF(!mn_gguf_alignment_ok(v->v.u), err, MN_EINVAL,
                     "key 'general.alignment': alignment %" PRIu64 " is not a power of two in [1, %u]", v->v.u,
                     MN_GGUF_MAX_ALIGNMENT);
        L->alignment = v->v.u;
    }
    /* Duplicate tensor names: sort a scratch array of name pointers. */
    if (w->n_tensors > 1) {
        const char **names = malloc(w->n_tensors * sizeof *names);
        MN_RETURN_IF(!names, err, MN_ENOMEM, "out of memory checking tensor names");
        for (size_t i = 0; i < w->n_tensors; i++) names[i] = w->tensors[i].name;
        qsort(names, w->n_tensors, sizeof *names, cmp_str_ptr);
        const char *dup = NULL;
        for (size_t i = 1; i < w->n_tensors && !dup; i++)
            if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
        char shown[MN_GGUF_MAX_NAME];
        if (dup) snprintf(shown, sizeof shown, "%s", dup);
        free(names);
        MN_RETURN_IF(dup, err, MN_EINVAL, "duplicate tensor name '%s'", shown);
    }
    uint64_t h = 24, b;
    for (size_t i = 0; i < w->n_kv; i++) {
        MN_RETURN_IF(value_disk_size(&w->kvs[i].value, &b) || mn_add_overflow_u64(h, 8 + 4, &h) ||
                         mn_add_overflow_u64(h, strlen(w->kvs[i].key), &h) || mn_add_overflow_u64(h, b, &h),
                     err, MN_ERANGE, "key '%s': metadata size overflows", w->kvs[i].key);
    }
    for (size_t i = 0; i < w->n_tensors; i++) /* name < 64 bytes, n_dims <= 4: no overflow risk left */
        MN_RETURN_IF(mn_add_overflow_u64(h, 8 + strlen(w->tensors[i].name) + 4 + 8u * w->tensors[i].n_dims + 4 + 8, &h),
                     err, MN_ERANGE, "tensor infos size overflows");
    L->header_size = h;
    MN_RETURN_IF(mn_gguf_align_up(h, L->alignment, &L->data_offset), err, MN_ERANGE, "header size overflows");
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = off;
        MN_RETURN_IF(mn_add_overflow_u64(off, w->tensors[i].size, &off) ||
                         mn_gguf_align_up(off, L->alignment, &off),
                     err, MN_ERANGE, "tensor '%s': data size overflows", w->tensors[i].name);
    }
    MN_RETURN_IF(mn_add_overflow_u64(L->data_offset, off, &L->total) || L->total >= SIZE_MAX, err, MN_ERANGE,
                 "file size overflows");
    return MN_OK;
}

typedef struct outbuf {
    uint8_t *p;
    size_t pos;
} outbuf;

static void put(outbuf *o, const void *src, size_t n) {
    if (n) memcpy(o->p + o->pos, src, n);
    o->pos += n;
}
static void put32(outbuf *o, uint32_t v) {
    mn_gguf_st32(o->p + o->pos, v);
    o->pos += 4;
}
static void put64(outbuf *o, uint64_t v) {
    mn_gguf_st64(o->p + o->pos, v);
    o->pos += 8;
}
static void put_str(outbuf *o, const char *s, uint64_t len) {
    put64(o, len);
    put(o, s, (size_t)len);
}

static void put_scalar(outbuf *o, const mn_gguf_value *v) {
    switch (v->type) {
    case MN_GGUF_UINT8: o->p[o->pos++] = (uint8_t)v->v.u; break;
    case MN_GGUF_INT8: o->p[o->pos++] = (uint8_t)v->v.i; break;
    case MN_GGUF_BOOL: o->p[o->pos++] = v->v.b ? 1 : 0; break;
    case MN_GGUF_UINT16:
    case MN_GGUF_INT16: {
        uint16_t x = v->type == MN_GGUF_UINT16 ? (uint16_t)v->v.u : (uint16_t)v->v.i;
        o->p[o->pos++] = (uint8_t)x;
        o->p[o->pos++] = (uint8_t)(x >> 8);
        break;
    }
    case MN_GGUF_UINT32: put32(o, (uint32_t)v->v.u); break;
    case MN_GGUF_INT32: put32(o, (uint32_t)v->v.i); break;
    case MN_GGUF_UINT64: put64(o, v->v.u); break;
    case MN_GGUF_INT64: put64(o, (uint64_t)v->v.i); break;
    case MN_GGUF_FLOAT32: {
        float f = (float)v->v.f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        put32(o, bits);
        break;
    }
    case MN_GGUF_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f, sizeof bits);
        put64(o, bits);
        break;
    }
    default: break;
    }
}

/* Fixed-size array elements are stored as little-endian bytes already (the caller's packed data). */
static void put_value(outbuf *o, const mn_gguf_value *v) {
    if (v->type == MN_GGUF_STRING) {
        put_str(o, v->v.str.ptr, v->v.str.len);
    } else if (v->type == MN_GGUF_ARRAY) {
        put32(o, v->v.arr.type);
        put64(o, v->v.arr.n);
        uint64_t esize = mn_gguf_type_size(v->v.arr.type);
        if (esize) put(o, v->v.arr.raw, (size_t)(v->v.arr.n * esize));
        else
            for (uint64_t i = 0; i < v->v.arr.n; i++) put_value(o, &v->v.arr.items[i]);
    } else {
        put_scalar(o, v);
    }
}

/* Serialises header + kvs + infos + zero padding (L->data_offset bytes) into o->p. */
static mn_status put_header(const mn_gguf_writer *w, const layout_info *L, outbuf *o, mn_error *err) {
    put(o, "GGUF", 4);
    put32(o, 3);
    put64(o, w->n_tensors);
    put64(o, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(o, w->kvs[i].key, strlen(w->kvs[i].key));
        put32(o, w->kvs[i].value.type);
        put_value(o, &w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(o, t->name, strlen(t->name));
        put32(o, t->n_dims);
        for (uint32_t j = 0; j < t->n_dims; j++) put64(o, (uint64_t)t->ne[j]);
        put32(o, (uint32_t)t->type);
        put64(o, t->offset);
    }
    MN_RETURN_IF(o->pos != L->header_size, err, MN_EINTERNAL,
                 "gguf writer: header is %zu bytes, layout said %" PRIu64, o->pos, L->header_size);
    memset(o->p + o->pos, 0, (size_t)(L->data_offset - L->header_size));
    o->pos = (size_t)L->data_offset;
    return MN_OK;
}

mn_status mn_gguf_writer_to_memory(mn_gguf_writer *w, void **out, size_t *size, mn_error *err) {
    MN_RETURN_IF(!w || !out || !size, err, MN_EINVAL, "mn_gguf_writer_to_memory: NULL argument");
    *out = NULL;
    *size = 0;
    layout_info L;
    MN_FORWARD(layout(w, &L, err));
    outbuf o = {malloc((size_t)L.total), 0};
    MN_RETURN_IF(!o.p, err, MN_ENOMEM, "out of memory for a %" PRIu64 "-byte file", L.total);
    mn_status s = put_header(w, &L, &o, err);
    if (s != MN_OK) {
        free(o.p);
        return s;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t end = L.data_offset + t->offset + t->size;
        uint64_t next = i + 1 < w->n_tensors ? L.data_offset + w->tensors[i + 1].offset : L.total;
        memcpy(o.p + L.data_offset + t->offset, t->data, (size_t)t->size);
        memset(o.p + end, 0, (size_t)(next - end));
    }
    *out = o.p;
    *size = (size_t)L.total;
    return MN_OK;
}

/* ---------------------------------------------------------------- atomic file write --------- */

/* write() until done; EINTR retried; returns 0 or an errno value. Chunks stay below Linux's
 * per-call limit (about 2 GiB). */
static int write_all(int fd, const void *buf, uint64_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (k == 0) return EIO;
        p += k;
        n -= (uint64_t)k;
    }
    return 0;
}

static int write_zeros(int fd, uint64_t n) {
    static const uint8_t zeros[4096];
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        int e = write_all(fd, zeros, k);
        if (e) return e;
        n -= k;
    }
    return 0;
}

/* fsync the directory holding path so the rename itself is durable. Best effort: some file
 * systems refuse to fsync directories, and the data is already safe. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

mn_status mn_gguf_writer_write(mn_gguf_writer *w, const char *path, mn_error *err) {
    MN_RETURN_IF(!w || !path || !path[0], err, MN_EINVAL, "mn_gguf_writer_write: NULL argument");
    layout_info L;
    MN_FORWARD(layout(w, &L, err));
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    MN_RETURN_IF(!tmp, err, MN_ENOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    mn_status s = MN_OK;
    int fd = -1, e;
    bool created = false;
    outbuf o = {malloc((size_t)L.data_offset), 0};
    if (!o.p) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory for a %" PRIu64 "-byte header", L.data_offset);
        goto fail;
    }
    s = put_header(w, &L, &o, err);
    if (s != MN_OK) goto fail;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = mn_error_set(err, MN_EIO, "cannot create '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    created = true;
    if ((e = write_all(fd, o.p, L.data_offset)) != 0) {
        s = mn_error_set(err, MN_EIO, "writing the header of '%s': %s", tmp, strerror(e));
        goto fail;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t end = L.data_offset + t->offset + t->size;
        uint64_t next = i + 1 < w->n_tensors ? L.data_offset + w->tensors[i + 1].offset : L.total;
        if ((e = write_all(fd, t->data, t->size)) != 0 || (e = write_zeros(fd, next - end)) != 0) {
            s = mn_error_set(err, MN_EIO, "writing tensor '%s' to '%s': %s", t->name, tmp, strerror(e));
            goto fail;
        }
    }
    if (fsync(fd) != 0) {
        s = mn_error_set(err, MN_EIO, "fsync '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    e = close(fd);
    fd = -1;
    if (e != 0) {
        s = mn_error_set(err, MN_EIO, "close '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        s = mn_error_set(err, MN_EIO, "rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto fail;
    }
    sync_parent_dir(path);
    free(o.p);
    free(tmp);
    return MN_OK;
fail:
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    free(o.p);
    free(tmp);
    return s;
}
