/*
 * gguf.c: the GGUF reader and validator (layout in gguf.h).
 *
 * The whole header is parsed and checked in one forward pass over the bytes, with a cursor that
 * carries an explicit end: every count, length and offset read from the file is compared against
 * the bytes that remain before anything is allocated or dereferenced, with overflow-checked
 * arithmetic. Counts are bounded by the smallest record they could describe (a key/value pair
 * needs at least 13 bytes, a tensor info 32, a string array element 8, a nested array 12), so an
 * allocation is at most a small constant times the file size (the largest ratio is a parsed value,
 * 40 bytes, per 8-byte string element). Everything we allocate (key copies, parsed values, tensor
 * infos, lookup indexes) comes from one arena owned by the mn_gguf and freed at once.
 *
 * Uniqueness of keys and tensor names, lookups, and the tensor layout check (no overlap, no gap,
 * in bounds) all use sorted arrays: O(n log n), never O(n^2). Tensor data is never copied: data
 * pointers point into the read-only mapping (mn_gguf_open, which keeps the fd open while mapped)
 * or into the caller's buffer (mn_gguf_open_memory).
 *
 * Error messages name the problem and where it is ("key 'general.alignment': ...", "tensor
 * 'blk.0.attn_q.weight': ...", "at offset 1234"); they never include the path, which the caller
 * knows and prefixes ("model.gguf: key 'x': ...").
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "gguf/gguf_internal.h"
#include "kernels/types.h"

/* Smallest on-disk records, used to bound counts before allocating. */
#define MIN_KV_BYTES 13u     /* key length (8) + value type (4) + a 1-byte value */
#define MIN_TENSOR_BYTES 32u /* name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8) */
#define HEADER_BYTES 24u

/* ---------------------------------------------------------------- arena ---------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} arena_block;

#define ARENA_CHUNK ((size_t)64 * 1024)

/* Zeroed, max_align_t-aligned memory that lives until arena_free. NULL on overflow or OOM. */
static void *arena_alloc(arena_block **head, size_t n) {
    size_t need = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (need < n) return NULL;
    arena_block *b = *head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
        if (cap > SIZE_MAX - sizeof(arena_block)) return NULL;
        b = calloc(1, sizeof(arena_block) + cap);
        if (!b) return NULL;
        b->cap = cap;
        /* Keep the partly used current block first only if it has more room than the new one. */
        if (*head && (*head)->cap - (*head)->used > cap - need) {
            b->next = (*head)->next;
            (*head)->next = b;
        } else {
            b->next = *head;
            *head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    return p;
}

static void arena_free(arena_block *b) {
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---------------------------------------------------------------- the handle ----------------- */

/* A name (key or tensor name) and its index, sorted by name for dedup and binary search. */
typedef struct name_ref {
    const char *name;
    int64_t idx;
} name_ref;

struct mn_gguf {
    const uint8_t *base; /* the whole file */
    uint64_t size;
    void *map;           /* mmap of the file, or NULL (memory buffer / empty file) */
    size_t map_size;
    int fd;              /* open while mapped; -1 for memory buffers */

    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset; /* start of the data section (may equal size when there is no data) */

    int64_t n_kv;
    const char **keys;     /* [n_kv], NUL-terminated copies */
    mn_gguf_value *values; /* [n_kv] */
    name_ref *key_index;   /* [n_kv] sorted by key */

    int64_t n_tensors;
    mn_gguf_tensor *tensors;  /* [n_tensors], file order */
    name_ref *tensor_index;   /* [n_tensors] sorted by name */

    arena_block *arena;
};

/* ---------------------------------------------------------------- shared helpers ------------- */

bool mn_gguf_utf8_valid(const char *str, uint64_t n) {
    const uint8_t *s = (const uint8_t *)str;
    uint64_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        uint64_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
        else return false; /* continuation byte or 0xF8.. lead */
        if (n - i < len) return false;
        for (uint64_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

const char *mn_gguf_tensor_bytes(int32_t type, uint32_t n_dims, const int64_t *ne, uint64_t *bytes,
                                 int64_t *n_elements) {
    const mn_type_traits *t = mn_type_get(type);
    if (!t || n_dims == 0 || n_dims > MN_GGUF_MAX_DIMS) return "bad type or dimension count";
    int64_t n = 1;
    for (uint32_t j = 0; j < n_dims; j++) {
        if (ne[j] <= 0) return "dimension is not positive";
        if (__builtin_mul_overflow(n, ne[j], &n)) return "element count overflows int64";
    }
    if (ne[0] % t->block_size != 0) return "ne[0] is not a multiple of the type's block size";
    uint64_t b = mn_type_row_size(type, ne[0]);
    if (b == 0) return "row size overflows";
    for (uint32_t j = 1; j < n_dims; j++)
        if (mn_mul_overflow_u64(b, (uint64_t)ne[j], &b)) return "byte size overflows uint64";
    *bytes = b;
    *n_elements = n;
    return NULL;
}

static const char *const TYPE_NAMES[MN_GGUF_TYPE_COUNT] = {
    [MN_GGUF_UINT8] = "uint8",     [MN_GGUF_INT8] = "int8",     [MN_GGUF_UINT16] = "uint16",
    [MN_GGUF_INT16] = "int16",     [MN_GGUF_UINT32] = "uint32", [MN_GGUF_INT32] = "int32",
    [MN_GGUF_FLOAT32] = "float32", [MN_GGUF_BOOL] = "bool",     [MN_GGUF_STRING] = "string",
    [MN_GGUF_ARRAY] = "array",     [MN_GGUF_UINT64] = "uint64", [MN_GGUF_INT64] = "int64",
    [MN_GGUF_FLOAT64] = "float64",
};

static const uint8_t TYPE_SIZES[MN_GGUF_TYPE_COUNT] = {
    [MN_GGUF_UINT8] = 1,   [MN_GGUF_INT8] = 1,   [MN_GGUF_UINT16] = 2,  [MN_GGUF_INT16] = 2,
    [MN_GGUF_UINT32] = 4,  [MN_GGUF_INT32] = 4,  [MN_GGUF_FLOAT32] = 4, [MN_GGUF_BOOL] = 1,
    [MN_GGUF_STRING] = 0,  [MN_GGUF_ARRAY] = 0,  [MN_GGUF_UINT64] = 8,  [MN_GGUF_INT64] = 8,
    [MN_GGUF_FLOAT64] = 8,
};

const char *mn_gguf_type_name(uint32_t type) {
    return type < MN_GGUF_TYPE_COUNT ? TYPE_NAMES[type] : "invalid";
}

uint64_t mn_gguf_type_size(uint32_t type) { return type < MN_GGUF_TYPE_COUNT ? TYPE_SIZES[type] : 0; }

static bool type_is_int(uint32_t t) {
    return t <= MN_GGUF_INT32 || t == MN_GGUF_UINT64 || t == MN_GGUF_INT64;
}
static bool type_is_signed(uint32_t t) {
    return t == MN_GGUF_INT8 || t == MN_GGUF_INT16 || t == MN_GGUF_INT32 || t == MN_GGUF_INT64;
}

/* Decodes one fixed-size little-endian element into a widened value. */
static void decode_scalar(uint32_t type, const uint8_t *p, mn_gguf_value *v) {
    v->type = type;
    switch (type) {
    case MN_GGUF_UINT8: v->v.u = p[0]; break;
    case MN_GGUF_INT8: v->v.i = (int8_t)p[0]; break;
    case MN_GGUF_UINT16: v->v.u = mn_gguf_ld16(p); break;
    case MN_GGUF_INT16: v->v.i = (int16_t)mn_gguf_ld16(p); break;
    case MN_GGUF_UINT32: v->v.u = mn_gguf_ld32(p); break;
    case MN_GGUF_INT32: v->v.i = (int32_t)mn_gguf_ld32(p); break;
    case MN_GGUF_UINT64: v->v.u = mn_gguf_ld64(p); break;
    case MN_GGUF_INT64: v->v.i = (int64_t)mn_gguf_ld64(p); break;
    case MN_GGUF_BOOL: v->v.b = p[0] != 0; break;
    case MN_GGUF_FLOAT32: {
        uint32_t bits = mn_gguf_ld32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        v->v.f = f;
        break;
    }
    case MN_GGUF_FLOAT64: {
        uint64_t bits = mn_gguf_ld64(p);
        memcpy(&v->v.f, &bits, sizeof v->v.f);
        break;
    }
    default: v->v.u = 0; break;
    }
}

/* ---------------------------------------------------------------- parser --------------------- */

typedef struct parser {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos; /* invariant: pos <= size */
    mn_error *err;
    arena_block **arena;
    const char *ctx; /* what is being parsed, for messages: "key 'x'" / "tensor #3" */
} parser;

static uint64_t left(const parser *p) { return p->size - p->pos; }

static mn_status need(parser *p, uint64_t n, const char *what) {
    MN_RETURN_IF(n > left(p), p->err, MN_EBADFILE,
                 "%s: truncated: %s at offset %" PRIu64 " needs %" PRIu64 " bytes, %" PRIu64 " left",
                 p->ctx, what, p->pos, n, left(p));
    return MN_OK;
}

static mn_status rd_u32(parser *p, uint32_t *out, const char *what) {
    MN_FORWARD(need(p, 4, what));
    *out = mn_gguf_ld32(p->base + p->pos);
    p->pos += 4;
    return MN_OK;
}

static mn_status rd_u64(parser *p, uint64_t *out, const char *what) {
    MN_FORWARD(need(p, 8, what));
    *out = mn_gguf_ld64(p->base + p->pos);
    p->pos += 8;
    return MN_OK;
}

/* A length-prefixed string; the length is checked against the bytes left before use. */
static mn_status rd_str(parser *p, mn_gguf_str *out, const char *what) {
    uint64_t at = p->pos, len;
    MN_FORWARD(rd_u64(p, &len, what));
    MN_RETURN_IF(len > left(p), p->err, MN_EBADFILE,
                 "%s: %s length %" PRIu64 " at offset %" PRIu64 " exceeds the %" PRIu64
                 " bytes left in the file",
                 p->ctx, what, len, at, left(p));
    out->ptr = (const char *)p->base + p->pos;
    out->len = len;
    p->pos += len;
    return MN_OK;
}

/* Checks a key or tensor name and copies it NUL-terminated into the arena. */
static mn_status copy_name(parser *p, mn_gguf_str s, uint64_t at, const char *what, const char **out) {
    MN_RETURN_IF(s.len == 0, p->err, MN_EBADFILE, "%s: empty %s at offset %" PRIu64, p->ctx, what, at);
    MN_RETURN_IF(memchr(s.ptr, '\0', s.len) != NULL, p->err, MN_EBADFILE,
                 "%s: %s at offset %" PRIu64 " contains a NUL byte", p->ctx, what, at);
    MN_RETURN_IF(!mn_gguf_utf8_valid(s.ptr, s.len), p->err, MN_EBADFILE,
                 "%s: %s at offset %" PRIu64 " is not valid UTF-8", p->ctx, what, at);
    char *c = arena_alloc(p->arena, s.len + 1);
    MN_RETURN_IF(!c, p->err, MN_ENOMEM, "%s: out of memory copying %s", p->ctx, what);
    memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    *out = c;
    return MN_OK;
}

static mn_status parse_value(parser *p, uint32_t type, int depth, mn_gguf_value *out);

/* A printable copy of s[0..len) for messages: control bytes and invalid UTF-8 become '?', and long
 * names are cut (at a character boundary) with "...". Returns buf. */
static const char *show(const char *s, uint64_t len, char *buf, size_t cap) {
    size_t o = 0;
    uint64_t i = 0;
    while (i < len) {
        uint8_t c = (uint8_t)s[i];
        uint64_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = n > 0 && len - i >= n && mn_gguf_utf8_valid(s + i, n) && c >= 0x20 && c != 0x7F;
        if (!ok) n = 1;
        if (o + n + 4 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ok) memcpy(buf + o, s + i, n);
        else buf[o] = '?';
        o += ok ? n : 1;
        i += n;
    }
    buf[o] = '\0';
    return buf;
}

/* The body of an ARRAY value (after its type tag): element type, count, elements. */
static mn_status parse_array(parser *p, int depth, mn_gguf_value *out) {
    uint64_t at = p->pos;
    MN_RETURN_IF(depth >= MN_GGUF_MAX_DEPTH, p->err, MN_EBADFILE,
                 "%s: array at offset %" PRIu64 " exceeds the nesting depth limit of %d", p->ctx, at,
                 MN_GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t n;
    MN_FORWARD(rd_u32(p, &et, "array element type"));
    MN_RETURN_IF(et >= MN_GGUF_TYPE_COUNT, p->err, MN_EBADFILE,
                 "%s: invalid array element type %" PRIu32 " at offset %" PRIu64, p->ctx, et, at);
    MN_FORWARD(rd_u64(p, &n, "array count"));
    uint64_t esize = TYPE_SIZES[et];
    uint64_t min = esize ? esize : et == MN_GGUF_STRING ? 8 : 12;
    MN_RETURN_IF(n > left(p) / min, p->err, MN_EBADFILE,
                 "%s: array count %" PRIu64 " at offset %" PRIu64 " exceeds what the %" PRIu64
                 " bytes left could hold",
                 p->ctx, n, at, left(p));
    out->type = MN_GGUF_ARRAY;
    out->v.arr.type = et;
    out->v.arr.n = n;
    out->v.arr.raw = p->base + p->pos;
    out->v.arr.items = NULL;
    if (esize) {
        if (et == MN_GGUF_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                MN_RETURN_IF(p->base[p->pos + i] > 1, p->err, MN_EBADFILE,
                             "%s: bool element %" PRIu64 " at offset %" PRIu64 " is %u, not 0 or 1",
                             p->ctx, i, p->pos + i, p->base[p->pos + i]);
        }
        p->pos += n * esize; /* n * esize <= left: checked above */
        return MN_OK;
    }
    if (n == 0) return MN_OK;
    /* n <= size / 8, so this product cannot overflow; the arena bound is 5x the file size. */
    mn_gguf_value *items = arena_alloc(p->arena, (size_t)n * sizeof *items);
    MN_RETURN_IF(!items, p->err, MN_ENOMEM, "%s: out of memory for an array of %" PRIu64 " elements",
                 p->ctx, n);
    for (uint64_t i = 0; i < n; i++) MN_FORWARD(parse_value(p, et, depth + 1, &items[i]));
    out->v.arr.items = items;
    return MN_OK;
}

/* One value of the given (already validated) type; depth = number of enclosing arrays. */
static mn_status parse_value(parser *p, uint32_t type, int depth, mn_gguf_value *out) {
    if (type == MN_GGUF_STRING) {
        out->type = type;
        return rd_str(p, &out->v.str, "string");
    }
    if (type == MN_GGUF_ARRAY) return parse_array(p, depth, out);
    uint64_t size = TYPE_SIZES[type];
    MN_FORWARD(need(p, size, mn_gguf_type_name(type)));
    const uint8_t *q = p->base + p->pos;
    MN_RETURN_IF(type == MN_GGUF_BOOL && q[0] > 1, p->err, MN_EBADFILE,
                 "%s: bool at offset %" PRIu64 " is %u, not 0 or 1", p->ctx, p->pos, q[0]);
    decode_scalar(type, q, out);
    p->pos += size;
    return MN_OK;
}

static int cmp_name_ref(const void *a, const void *b) {
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Sorts refs by name; returns the first duplicated name or NULL. */
static const char *sort_find_dup(name_ref *refs, int64_t n) {
    if (n > 1) qsort(refs, (size_t)n, sizeof *refs, cmp_name_ref);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].name, refs[i].name) == 0) return refs[i].name;
    return NULL;
}

static const name_ref *find_ref(const name_ref *refs, int64_t n, const char *name) {
    if (!refs || !name || n <= 0) return NULL;
    name_ref key = {name, 0};
    return bsearch(&key, refs, (size_t)n, sizeof *refs, cmp_name_ref);
}

/* Header: magic, version, counts (bounded by the bytes left before anything is allocated). */
static mn_status parse_header(parser *p, mn_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    p->ctx = "header";
    MN_RETURN_IF(p->size < 4 || memcmp(p->base, "GGUF", 4) != 0, p->err, MN_EBADFILE,
                 "bad magic: not a GGUF file (%" PRIu64 " bytes%s)", p->size,
                 p->size == 0 ? ", empty" : "");
    p->pos = 4;
    uint32_t version;
    MN_FORWARD(rd_u32(p, &version, "version"));
    /* A byte-swapped small number means a big-endian file, which we do not read. */
    bool swapped = version > 0xFFFF && (version & 0xFFFF) == 0;
    MN_RETURN_IF(version != 2 && version != 3, p->err, MN_EUNSUPPORTED,
                 "unsupported version %" PRIu32 "%s", version,
                 version == 1    ? " (GGUF v1 used 32-bit counts; convert the file)"
                 : swapped       ? " (big-endian file?)"
                 : version > 3   ? " (newer than this reader: 2 and 3 are supported)"
                                 : "");
    g->version = version;
    /* The version is judged first: a v1 file's header is shorter than ours. */
    MN_RETURN_IF(p->size < HEADER_BYTES, p->err, MN_EBADFILE,
                 "header: file is %" PRIu64 " bytes, too short for the %u-byte GGUF header "
                 "(truncated)",
                 p->size, HEADER_BYTES);
    MN_FORWARD(rd_u64(p, n_tensors, "tensor count"));
    MN_FORWARD(rd_u64(p, n_kv, "key/value count"));
    uint64_t rest = left(p);
    MN_RETURN_IF(*n_kv > rest / MIN_KV_BYTES, p->err, MN_EBADFILE,
                 "header: n_kv %" PRIu64 " exceeds what the %" PRIu64 " bytes left could hold", *n_kv,
                 rest);
    MN_RETURN_IF(*n_tensors > rest / MIN_TENSOR_BYTES, p->err, MN_EBADFILE,
                 "header: n_tensors %" PRIu64 " exceeds what the %" PRIu64 " bytes left could hold",
                 *n_tensors, rest);
    /* Each product is <= rest (checked above); only the sum can wrap. */
    uint64_t min_bytes;
    MN_RETURN_IF(mn_add_overflow_u64(*n_kv * MIN_KV_BYTES, *n_tensors * MIN_TENSOR_BYTES, &min_bytes) ||
                     min_bytes > rest,
                 p->err, MN_EBADFILE,
                 "header: n_kv %" PRIu64 " and n_tensors %" PRIu64 " exceed what the %" PRIu64
                 " bytes left could hold",
                 *n_kv, *n_tensors, rest);
    return MN_OK;
}

static mn_status parse_kvs(parser *p, mn_gguf *g, uint64_t n_kv) {
    g->n_kv = (int64_t)n_kv;
    if (n_kv == 0) return MN_OK;
    g->keys = arena_alloc(p->arena, (size_t)n_kv * sizeof *g->keys);
    g->values = arena_alloc(p->arena, (size_t)n_kv * sizeof *g->values);
    g->key_index = arena_alloc(p->arena, (size_t)n_kv * sizeof *g->key_index);
    MN_RETURN_IF(!g->keys || !g->values || !g->key_index, p->err, MN_ENOMEM,
                 "out of memory for %" PRIu64 " keys", n_kv);
    char ctx[96];
    for (uint64_t i = 0; i < n_kv; i++) {
        uint64_t at = p->pos;
        snprintf(ctx, sizeof ctx, "key #%" PRIu64 " (offset %" PRIu64 ")", i, at);
        p->ctx = ctx;
        mn_gguf_str k;
        MN_FORWARD(rd_str(p, &k, "key"));
        MN_FORWARD(copy_name(p, k, at, "key", &g->keys[i]));
        /* From here on, messages name the key itself (truncated to fit). */
        char shown[72];
        snprintf(ctx, sizeof ctx, "key '%s'", show(k.ptr, k.len, shown, sizeof shown));
        uint64_t tat = p->pos;
        uint32_t type;
        MN_FORWARD(rd_u32(p, &type, "value type"));
        MN_RETURN_IF(type >= MN_GGUF_TYPE_COUNT, p->err, MN_EBADFILE,
                     "%s: invalid value type %" PRIu32 " at offset %" PRIu64, ctx, type, tat);
        MN_FORWARD(parse_value(p, type, 0, &g->values[i]));
        g->key_index[i] = (name_ref){g->keys[i], (int64_t)i};
    }
    const char *dup = sort_find_dup(g->key_index, g->n_kv);
    char shown[208];
    MN_RETURN_IF(dup, p->err, MN_EBADFILE, "duplicate key '%s'",
                 dup ? show(dup, strlen(dup), shown, sizeof shown) : "");
    return MN_OK;
}

static mn_status read_alignment(parser *p, mn_gguf *g) {
    g->alignment = MN_GGUF_DEFAULT_ALIGNMENT;
    const name_ref *r = find_ref(g->key_index, g->n_kv, "general.alignment");
    if (!r) return MN_OK;
    const mn_gguf_value *v = &g->values[r->idx];
    MN_RETURN_IF(v->type != MN_GGUF_UINT32, p->err, MN_EBADFILE,
                 "key 'general.alignment': alignment has type %s, expected uint32",
                 mn_gguf_type_name(v->type));
    MN_RETURN_IF(!mn_gguf_alignment_ok(v->v.u), p->err, MN_EBADFILE,
                 "key 'general.alignment': alignment %" PRIu64
                 " is not a power of two in [1, %u]",
                 v->v.u, MN_GGUF_MAX_ALIGNMENT);
    g->alignment = v->v.u;
    return MN_OK;
}

static mn_status parse_tensor_infos(parser *p, mn_gguf *g, uint64_t n) {
    g->n_tensors = (int64_t)n;
    if (n == 0) return MN_OK;
    g->tensors = arena_alloc(p->arena, (size_t)n * sizeof *g->tensors);
    g->tensor_index = arena_alloc(p->arena, (size_t)n * sizeof *g->tensor_index);
    MN_RETURN_IF(!g->tensors || !g->tensor_index, p->err, MN_ENOMEM,
                 "out of memory for %" PRIu64 " tensors", n);
    char ctx[112];
    for (uint64_t i = 0; i < n; i++) {
        mn_gguf_tensor *t = &g->tensors[i];
        uint64_t at = p->pos;
        snprintf(ctx, sizeof ctx, "tensor #%" PRIu64 " (offset %" PRIu64 ")", i, at);
        p->ctx = ctx;
        mn_gguf_str name;
        MN_FORWARD(rd_str(p, &name, "tensor name"));
        char shown[72];
        MN_RETURN_IF(name.len >= MN_GGUF_MAX_NAME, p->err, MN_EBADFILE,
                     "%s: tensor name '%s' is %" PRIu64 " bytes, too long (limit %d)", ctx,
                     show(name.ptr, name.len, shown, 48), name.len, MN_GGUF_MAX_NAME - 1);
        MN_FORWARD(copy_name(p, name, at, "tensor name", &t->name));
        snprintf(ctx, sizeof ctx, "tensor '%s'", show(name.ptr, name.len, shown, sizeof shown));
        MN_FORWARD(rd_u32(p, &t->n_dims, "n_dims"));
        MN_RETURN_IF(t->n_dims == 0 || t->n_dims > MN_GGUF_MAX_DIMS, p->err, MN_EBADFILE,
                     "%s: n_dims %" PRIu32 " is out of range [1, %d]", ctx, t->n_dims,
                     MN_GGUF_MAX_DIMS);
        for (int j = 0; j < MN_GGUF_MAX_DIMS; j++) t->ne[j] = 1;
        for (uint32_t j = 0; j < t->n_dims; j++) {
            uint64_t d;
            MN_FORWARD(rd_u64(p, &d, "dimension"));
            MN_RETURN_IF(d == 0 || d > (uint64_t)INT64_MAX, p->err, MN_EBADFILE,
                         "%s: dimension ne[%" PRIu32 "] = %" PRId64 " is not positive", ctx, j,
                         (int64_t)d);
            t->ne[j] = (int64_t)d;
        }
        uint32_t type;
        MN_FORWARD(rd_u32(p, &type, "tensor type"));
        const mn_type_traits *tr = type < MN_TYPE_COUNT ? mn_type_get((int32_t)type) : NULL;
        MN_RETURN_IF(!tr, p->err, MN_EBADFILE, "%s: unknown tensor type id %" PRIu32, ctx, type);
        t->type = (int32_t)type;
        MN_FORWARD(rd_u64(p, &t->offset, "tensor offset"));
        MN_RETURN_IF(t->ne[0] % tr->block_size != 0, p->err, MN_EBADFILE,
                     "%s: ne[0] = %" PRId64 " is not a multiple of the %s block size %d", ctx,
                     t->ne[0], tr->name, tr->block_size);
        int64_t n_el;
        const char *why = mn_gguf_tensor_bytes(t->type, t->n_dims, t->ne, &t->size, &n_el);
        MN_RETURN_IF(why, p->err, MN_EBADFILE,
                     "%s: shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]: %s", ctx,
                     t->ne[0], t->ne[1], t->ne[2], t->ne[3], why);
        MN_RETURN_IF(t->offset % g->alignment != 0, p->err, MN_EBADFILE,
                     "%s: data offset %" PRIu64 " is misaligned (not a multiple of the alignment %" PRIu64
                     ")",
                     ctx, t->offset, g->alignment);
        g->tensor_index[i] = (name_ref){t->name, (int64_t)i};
    }
    const char *dup = sort_find_dup(g->tensor_index, g->n_tensors);
    char shown[72];
    MN_RETURN_IF(dup, p->err, MN_EBADFILE, "duplicate tensor name '%s'",
                 dup ? show(dup, strlen(dup), shown, sizeof shown) : "");
    return MN_OK;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const mn_gguf_tensor *x = *(const mn_gguf_tensor *const *)a, *y = *(const mn_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Data section: starts at the first aligned offset after the infos; every tensor lies inside it,
 * and in offset order each starts exactly where the previous one ends, padded to the alignment
 * (the layout every GGUF writer produces): no overlap, no gap. */
static mn_status check_layout(parser *p, mn_gguf *g) {
    char a[MN_GGUF_MAX_NAME + 8], b[MN_GGUF_MAX_NAME + 8]; /* printable tensor names */
#define SHOW(name, buf) show((name), strlen(name), (buf), sizeof(buf))
    p->ctx = "data";
    MN_RETURN_IF(mn_gguf_align_up(p->pos, g->alignment, &g->data_offset), p->err, MN_EBADFILE,
                 "data section offset overflows");
    if (g->n_tensors == 0) {
        /* Metadata-only files (vocabularies) often end without the padding. */
        if (g->data_offset > p->size) g->data_offset = p->size;
        return MN_OK;
    }
    MN_RETURN_IF(g->data_offset > p->size, p->err, MN_EBADFILE,
                 "data section would start at %" PRIu64 ", beyond the end of the file (%" PRIu64
                 ") (truncated)",
                 g->data_offset, p->size);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        mn_gguf_tensor *t = &g->tensors[i];
        uint64_t start, end;
        MN_RETURN_IF(mn_add_overflow_u64(g->data_offset, t->offset, &start) ||
                         mn_add_overflow_u64(start, t->size, &end),
                     p->err, MN_EBADFILE,
                     "tensor '%s': data offset %" PRIu64 " + size %" PRIu64 " overflows",
                     SHOW(t->name, a), t->offset, t->size);
        /* data_offset <= size, so end <= size is the same as offset + size <= data_size. */
        MN_RETURN_IF(end > p->size, p->err, MN_EBADFILE,
                     "tensor '%s': data [%" PRIu64 ", %" PRIu64 ") beyond end of file (%" PRIu64 ")",
                     SHOW(t->name, a), start, end, p->size);
        t->data = p->base + g->data_offset + t->offset;
    }
    /* Sort pointers by offset (scratch from the arena: freed with the handle). */
    const mn_gguf_tensor **by_off = arena_alloc(p->arena, (size_t)g->n_tensors * sizeof *by_off);
    MN_RETURN_IF(!by_off, p->err, MN_ENOMEM, "out of memory sorting tensors");
    for (int64_t i = 0; i < g->n_tensors; i++) by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_tensor_offset);
    uint64_t expect = 0;
    const mn_gguf_tensor *prev = NULL;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const mn_gguf_tensor *t = by_off[i];
        MN_RETURN_IF(prev && t->offset < prev->offset + prev->size, p->err, MN_EBADFILE,
                     "tensor '%s': data at offset %" PRIu64 " overlaps tensor '%s' [%" PRIu64
                     ", %" PRIu64 ")",
                     SHOW(t->name, a), t->offset, SHOW(prev->name, b), prev->offset,
                     prev->offset + prev->size);
        MN_RETURN_IF(t->offset != expect, p->err, MN_EBADFILE,
                     "tensor '%s': data offset %" PRIu64 " leaves a gap, expected %" PRIu64
                     " (tensors must be packed)",
                     SHOW(t->name, a), t->offset, expect);
        /* offset + size <= data_size and alignment <= 2^24: cannot overflow. */
        mn_gguf_align_up(t->offset + t->size, g->alignment, &expect);
        prev = t;
    }
    return MN_OK;
#undef SHOW
}

static mn_status parse_all(mn_gguf *g, mn_error *err) {
    parser p = {.base = g->base, .size = g->size, .pos = 0, .err = err, .arena = &g->arena, .ctx = ""};
    uint64_t n_tensors, n_kv;
    MN_FORWARD(parse_header(&p, g, &n_tensors, &n_kv));
    MN_FORWARD(parse_kvs(&p, g, n_kv));
    p.ctx = "header";
    MN_FORWARD(read_alignment(&p, g));
    MN_FORWARD(parse_tensor_infos(&p, g, n_tensors));
    MN_FORWARD(check_layout(&p, g));
    return MN_OK;
}

/* ---------------------------------------------------------------- open / close -------------- */

static mn_gguf *handle_new(void) {
    mn_gguf *g = calloc(1, sizeof *g);
    if (g) g->fd = -1;
    return g;
}

mn_status mn_gguf_open_memory(const void *data, size_t size, mn_gguf **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "mn_gguf_open_memory: out is NULL");
    *out = NULL;
    MN_RETURN_IF(!data && size, err, MN_EINVAL, "mn_gguf_open_memory: data is NULL");
    mn_gguf *g = handle_new();
    MN_RETURN_IF(!g, err, MN_ENOMEM, "out of memory");
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    mn_status s = parse_all(g, err);
    if (s != MN_OK) {
        mn_gguf_close(g);
        return s;
    }
    *out = g;
    return MN_OK;
}

mn_status mn_gguf_open(const char *path, mn_gguf **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "mn_gguf_open: out is NULL");
    *out = NULL;
    MN_RETURN_IF(!path, err, MN_EINVAL, "mn_gguf_open: path is NULL");
    mn_status s;
    mn_gguf *g = handle_new();
    MN_RETURN_IF(!g, err, MN_ENOMEM, "out of memory");
    g->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0) {
        s = mn_error_set(err, errno == ENOENT ? MN_ENOTFOUND : MN_EIO, "cannot open: %s", strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(g->fd, &st) != 0) {
        s = mn_error_set(err, MN_EIO, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        s = mn_error_set(err, MN_EIO, "not a regular file");
        goto fail;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        s = mn_error_set(err, MN_ETOOBIG, "file size does not fit in memory");
        goto fail;
    }
    g->size = (uint64_t)st.st_size;
    g->base = (const uint8_t *)"";
    if (g->size > 0) {
        void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, g->fd, 0);
        if (m == MAP_FAILED) {
            s = mn_error_set(err, errno == ENOMEM ? MN_ENOMEM : MN_EIO, "cannot map: %s", strerror(errno));
            goto fail;
        }
        (void)madvise(m, (size_t)g->size, MADV_WILLNEED); /* start read-ahead of the weights */
        g->map = m;
        g->map_size = (size_t)g->size;
        g->base = m;
    }
    s = parse_all(g, err);
    if (s != MN_OK) goto fail;
    *out = g;
    return MN_OK;
fail:
    mn_gguf_close(g);
    return s;
}

void mn_gguf_close(mn_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_size);
    if (g->fd >= 0) close(g->fd);
    arena_free(g->arena);
    free(g);
}

/* ---------------------------------------------------------------- accessors ----------------- */

uint32_t mn_gguf_version(const mn_gguf *g) { return g->version; }
uint64_t mn_gguf_alignment(const mn_gguf *g) { return g->alignment; }
uint64_t mn_gguf_data_offset(const mn_gguf *g) { return g->data_offset; }

void mn_gguf_drop_data(mn_gguf *g) {
    if (!g->map) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t b = ((uintptr_t)g->base + g->data_offset + page - 1) & ~(page - 1),
                    e = ((uintptr_t)g->map + g->map_size) & ~(page - 1);
    if (e > b) (void)madvise((void *)b, e - b, MADV_DONTNEED);
}
uint64_t mn_gguf_file_size(const mn_gguf *g) { return g->size; }
int64_t mn_gguf_n_kv(const mn_gguf *g) { return g->n_kv; }
int64_t mn_gguf_n_tensors(const mn_gguf *g) { return g->n_tensors; }

const char *mn_gguf_key_at(const mn_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->keys[i] : NULL;
}

const mn_gguf_value *mn_gguf_value_at(const mn_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->values[i] : NULL;
}

const mn_gguf_value *mn_gguf_get(const mn_gguf *g, const char *key) {
    const name_ref *r = find_ref(g->key_index, g->n_kv, key);
    return r ? &g->values[r->idx] : NULL;
}

const mn_gguf_tensor *mn_gguf_tensor_at(const mn_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mn_gguf_tensor *mn_gguf_find_tensor(const mn_gguf *g, const char *name) {
    const name_ref *r = find_ref(g->tensor_index, g->n_tensors, name);
    return r ? &g->tensors[r->idx] : NULL;
}

/* ---------------------------------------------------------------- typed getters ------------- */

/* Integer value as a sign + magnitude pair so every integer type compares exactly. */
static mn_status get_int(const mn_gguf *g, const char *key, const char *want, const mn_gguf_value **v,
                         mn_error *err) {
    *v = mn_gguf_get(g, key);
    if (!*v) return MN_ENOTFOUND;
    MN_RETURN_IF(!type_is_int((*v)->type), err, MN_EBADFILE, "key '%s': type %s, expected %s", key,
                 mn_gguf_type_name((*v)->type), want);
    return MN_OK;
}

mn_status mn_gguf_get_u32(const mn_gguf *g, const char *key, uint32_t *out, mn_error *err) {
    const mn_gguf_value *v;
    MN_FORWARD(get_int(g, key, "an integer (uint32)", &v, err));
    if (type_is_signed(v->type)) {
        MN_RETURN_IF(v->v.i < 0 || v->v.i > (int64_t)UINT32_MAX, err, MN_EBADFILE,
                     "key '%s': value %" PRId64 " out of range for uint32", key, v->v.i);
        *out = (uint32_t)v->v.i;
    } else {
        MN_RETURN_IF(v->v.u > UINT32_MAX, err, MN_EBADFILE,
                     "key '%s': value %" PRIu64 " out of range for uint32", key, v->v.u);
        *out = (uint32_t)v->v.u;
    }
    return MN_OK;
}

mn_status mn_gguf_get_i64(const mn_gguf *g, const char *key, int64_t *out, mn_error *err) {
    const mn_gguf_value *v;
    MN_FORWARD(get_int(g, key, "an integer (int64)", &v, err));
    if (type_is_signed(v->type)) {
        *out = v->v.i;
    } else {
        MN_RETURN_IF(v->v.u > (uint64_t)INT64_MAX, err, MN_EBADFILE,
                     "key '%s': value %" PRIu64 " out of range for int64", key, v->v.u);
        *out = (int64_t)v->v.u;
    }
    return MN_OK;
}

mn_status mn_gguf_get_f32(const mn_gguf *g, const char *key, float *out, mn_error *err) {
    const mn_gguf_value *v = mn_gguf_get(g, key);
    if (!v) return MN_ENOTFOUND;
    MN_RETURN_IF(v->type != MN_GGUF_FLOAT32 && v->type != MN_GGUF_FLOAT64, err, MN_EBADFILE,
                 "key '%s': type %s, expected float32", key, mn_gguf_type_name(v->type));
    /* A finite float64 beyond float's range would become infinity: refuse it. */
    MN_RETURN_IF(isfinite(v->v.f) && fabs(v->v.f) > FLT_MAX, err, MN_EBADFILE, "key '%s': value %g out of range for float32", key, v->v.f);
    *out = (float)v->v.f;
    return MN_OK;
}

mn_status mn_gguf_get_bool(const mn_gguf *g, const char *key, bool *out, mn_error *err) {
    const mn_gguf_value *v = mn_gguf_get(g, key);
    if (!v) return MN_ENOTFOUND;
    MN_RETURN_IF(v->type != MN_GGUF_BOOL, err, MN_EBADFILE, "key '%s': type %s, expected bool", key,
                 mn_gguf_type_name(v->type));
    *out = v->v.b;
    return MN_OK;
}

mn_status mn_gguf_get_str(const mn_gguf *g, const char *key, mn_gguf_str *out, mn_error *err) {
    const mn_gguf_value *v = mn_gguf_get(g, key);
    if (!v) return MN_ENOTFOUND;
    MN_RETURN_IF(v->type != MN_GGUF_STRING, err, MN_EBADFILE, "key '%s': type %s, expected string", key,
                 mn_gguf_type_name(v->type));
    *out = v->v.str;
    return MN_OK;
}

mn_status mn_gguf_get_arr(const mn_gguf *g, const char *key, uint32_t elem_type,
                          const mn_gguf_value **out, mn_error *err) {
    const mn_gguf_value *v = mn_gguf_get(g, key);
    if (!v) return MN_ENOTFOUND;
    MN_RETURN_IF(v->type != MN_GGUF_ARRAY, err, MN_EBADFILE, "key '%s': type %s, expected array of %s",
                 key, mn_gguf_type_name(v->type), mn_gguf_type_name(elem_type));
    MN_RETURN_IF(v->v.arr.type != elem_type, err, MN_EBADFILE,
                 "key '%s': array of %s, expected array of %s", key, mn_gguf_type_name(v->v.arr.type),
                 mn_gguf_type_name(elem_type));
    *out = v;
    return MN_OK;
}

/* ---------------------------------------------------------------- array elements ----------- */

mn_gguf_str mn_gguf_arr_str(const mn_gguf_value *arr, uint64_t i) {
    mn_gguf_str none = {"", 0};
    if (!arr || arr->type != MN_GGUF_ARRAY || arr->v.arr.type != MN_GGUF_STRING || i >= arr->v.arr.n ||
        !arr->v.arr.items)
        return none;
    return arr->v.arr.items[i].v.str;
}

int64_t mn_gguf_arr_int(const mn_gguf_value *arr, uint64_t i) {
    if (!arr || arr->type != MN_GGUF_ARRAY || i >= arr->v.arr.n || !arr->v.arr.raw) return 0;
    uint32_t t = arr->v.arr.type;
    if (!type_is_int(t) && t != MN_GGUF_BOOL) return 0;
    mn_gguf_value v;
    decode_scalar(t, arr->v.arr.raw + i * TYPE_SIZES[t], &v);
    if (t == MN_GGUF_BOOL) return v.v.b;
    return type_is_signed(t) ? v.v.i : (int64_t)v.v.u; /* uint64 > INT64_MAX wraps: documented */
}

double mn_gguf_arr_float(const mn_gguf_value *arr, uint64_t i) {
    if (!arr || arr->type != MN_GGUF_ARRAY || i >= arr->v.arr.n || !arr->v.arr.raw) return 0.0;
    uint32_t t = arr->v.arr.type;
    if (t != MN_GGUF_FLOAT32 && t != MN_GGUF_FLOAT64) return 0.0;
    mn_gguf_value v;
    decode_scalar(t, arr->v.arr.raw + i * TYPE_SIZES[t], &v);
    return v.v.f;
}
