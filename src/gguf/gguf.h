/*
 * gguf.h: GGUF reader/validator and writer, shared by the engine and the tools.
 *
 * File layout (all little-endian; versions 2 and 3 share it, version 1 used 32-bit counts and is
 * refused):
 *   OFFSET  SIZE  MEANING
 *   0       4     magic "GGUF"
 *   4       4     uint32 version (2 or 3)
 *   8       8     uint64 n_tensors
 *   16      8     uint64 n_kv
 *   24      ...   n_kv key/value records:
 *                   string key (uint64 len + len bytes, no NUL), uint32 value type, value
 *                 value: fixed-size scalar | string | array (uint32 elem type, uint64 count, elems)
 *           ...   n_tensors tensor infos:
 *                   string name, uint32 n_dims (1..4), int64 ne[n_dims], uint32 type,
 *                   uint64 offset (relative to the data section, multiple of the alignment)
 *           pad   zero bytes up to a multiple of the alignment (general.alignment, default 32)
 *           ...   data section: tensor data at their offsets
 *
 * Reader contract: mn_gguf_open validates the whole header before returning: every count, length
 * and offset is checked against the bytes that remain, with overflow-safe arithmetic; allocations
 * are bounded by the file size; keys and tensor names must be unique (checked in O(n log n)) and
 * valid UTF-8; tensor types must be known; each tensor's byte range must lie inside the data section
 * and not overlap another. Tensor data is not copied: it is mmapped read-only (or, for
 * mn_gguf_open_memory, points into the caller's buffer). The file stays open while mapped; its size
 * is checked at open, so a later truncation by another process is the caller's risk (replace model
 * files by rename).
 *
 * Validation rules beyond the layout above (all MN_EBADFILE unless noted):
 *   - magic "GGUF"; version 2 or 3 (0, 1 and newer: MN_EUNSUPPORTED "unsupported version N");
 *   - n_kv <= bytes left / 13 and n_tensors <= bytes left / 32 (the smallest records), checked
 *     before any allocation; string lengths and array counts likewise bounded by the bytes left;
 *     everything allocated is at most about 5x the file size;
 *   - value and array element types inside the enum; arrays nest at most MN_GGUF_MAX_DEPTH deep;
 *     bool values are 0 or 1;
 *   - keys: non-empty, valid UTF-8, no NUL byte, unique;
 *   - general.alignment, when present: uint32, power of two, <= MN_GGUF_MAX_ALIGNMENT;
 *   - tensor names: non-empty, < MN_GGUF_MAX_NAME bytes, valid UTF-8, no NUL, unique;
 *   - n_dims in [1, 4]; every ne in [1, INT64_MAX]; element count and byte size must not overflow;
 *     type id known to mn_type_get; ne[0] a multiple of the type's block size;
 *   - offsets multiples of the alignment; in offset order the tensors are packed: the first at 0,
 *     each next one at the previous end rounded up to the alignment (overlaps and gaps rejected),
 *     and all inside the file. A file with no tensors may end before the padded data section.
 * Error messages (mn_error.message) name the problem and its place (key name, tensor name or byte
 * offset) but never the path: callers prefix it. I/O failures: MN_ENOTFOUND (no such file),
 * MN_EIO, MN_ENOMEM.
 *
 * Thread-safety: an mn_gguf is immutable after open; any number of threads may read it. Writers are
 * single-threaded objects.
 */
#ifndef MN_GGUF_H
#define MN_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "minnow.h"

/* Metadata value types (on-disk numbers). */
enum mn_gguf_type {
    MN_GGUF_UINT8 = 0,
    MN_GGUF_INT8 = 1,
    MN_GGUF_UINT16 = 2,
    MN_GGUF_INT16 = 3,
    MN_GGUF_UINT32 = 4,
    MN_GGUF_INT32 = 5,
    MN_GGUF_FLOAT32 = 6,
    MN_GGUF_BOOL = 7,
    MN_GGUF_STRING = 8,
    MN_GGUF_ARRAY = 9,
    MN_GGUF_UINT64 = 10,
    MN_GGUF_INT64 = 11,
    MN_GGUF_FLOAT64 = 12,
    MN_GGUF_TYPE_COUNT = 13
};

#define MN_GGUF_DEFAULT_ALIGNMENT 32
#define MN_GGUF_MAX_DIMS 4
#define MN_GGUF_MAX_NAME 64 /* tensor names must be shorter than this (standard readers' limit) */
/* general.alignment must be a power of two no larger than this (16 MiB: far above any real use,
 * typically 32 or a page, and small enough that padding arithmetic cannot wrap). */
#define MN_GGUF_MAX_ALIGNMENT (1u << 24)
/* Arrays may nest this many levels (an array of arrays of strings is 2). Deeper: MN_EBADFILE. */
#define MN_GGUF_MAX_DEPTH 8

/* A string inside the file: not NUL-terminated. */
typedef struct mn_gguf_str {
    const char *ptr;
    uint64_t len;
} mn_gguf_str;

/* A parsed metadata value. Scalars are widened: all unsigned ints -> u, signed -> i, floats -> f,
 * bool -> b. Arrays keep their element type; elements are reached with the mn_gguf_arr_* calls. */
typedef struct mn_gguf_value {
    uint32_t type; /* enum mn_gguf_type */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
        mn_gguf_str str;
        struct {
            uint32_t type;  /* element type */
            uint64_t n;     /* element count */
            const uint8_t *raw; /* fixed-size elements: packed little-endian, possibly unaligned */
            const struct mn_gguf_value *items; /* STRING and ARRAY elements: n parsed values */
        } arr;
    } v;
} mn_gguf_value;

typedef struct mn_gguf_tensor {
    const char *name;  /* NUL-terminated, owned by the mn_gguf */
    int32_t type;      /* enum mn_type (src/kernels/types.h) */
    uint32_t n_dims;
    int64_t ne[MN_GGUF_MAX_DIMS]; /* ne[0] = innermost (row length); unused dims = 1 */
    uint64_t offset;   /* relative to the data section */
    uint64_t size;     /* bytes */
    const void *data;  /* borrowed: into the mapping */
} mn_gguf_tensor;

typedef struct mn_gguf mn_gguf;

/* Opens and validates a file. err gets e.g. "tensor 'blk.3.attn_q.weight': data [123, 456) beyond
 * end of file (400)". */
mn_status mn_gguf_open(const char *path, mn_gguf **out, mn_error *err);
/* Same over a caller buffer (must outlive the mn_gguf); used by fuzzers and tests. */
mn_status mn_gguf_open_memory(const void *data, size_t size, mn_gguf **out, mn_error *err);
void mn_gguf_close(mn_gguf *g);
/* Releases the mapped pages of the data section (whole pages only; the metadata before it stays).
 * Tensor data stays readable: a later access faults its pages back in from the file. */
void mn_gguf_drop_data(mn_gguf *g);

uint32_t mn_gguf_version(const mn_gguf *g);
uint64_t mn_gguf_alignment(const mn_gguf *g);
uint64_t mn_gguf_data_offset(const mn_gguf *g); /* file offset of the data section */
uint64_t mn_gguf_file_size(const mn_gguf *g);

/* Metadata. Keys are NUL-terminated and owned by g. */
int64_t mn_gguf_n_kv(const mn_gguf *g);
const char *mn_gguf_key_at(const mn_gguf *g, int64_t i);
const mn_gguf_value *mn_gguf_value_at(const mn_gguf *g, int64_t i);
/* NULL when absent. O(log n). */
const mn_gguf_value *mn_gguf_get(const mn_gguf *g, const char *key);

/* Typed getters: MN_ENOTFOUND when absent (err untouched), MN_EBADFILE when the type does not fit
 * (any integer type converts when the value fits the target; floats accept FLOAT32/FLOAT64, and a
 * finite float64 beyond float's range is refused; bool is not an integer). The message names the
 * key. Outputs are written only on MN_OK. */
mn_status mn_gguf_get_u32(const mn_gguf *g, const char *key, uint32_t *out, mn_error *err);
mn_status mn_gguf_get_i64(const mn_gguf *g, const char *key, int64_t *out, mn_error *err);
mn_status mn_gguf_get_f32(const mn_gguf *g, const char *key, float *out, mn_error *err);
mn_status mn_gguf_get_bool(const mn_gguf *g, const char *key, bool *out, mn_error *err);
mn_status mn_gguf_get_str(const mn_gguf *g, const char *key, mn_gguf_str *out, mn_error *err);
/* An array whose element type is elem_type (MN_GGUF_ARRAY value returned in *out). */
mn_status mn_gguf_get_arr(const mn_gguf *g, const char *key, uint32_t elem_type,
                          const mn_gguf_value **out, mn_error *err);

/* Array element access; i < arr->v.arr.n is the caller's precondition (out of range, NULL or a
 * wrong element type give "" / 0 / 0.0, never a crash). arr_int reads uint64 elements above
 * INT64_MAX as their two's-complement int64 and bool elements as 0/1. Strings are borrowed from g. */
mn_gguf_str mn_gguf_arr_str(const mn_gguf_value *arr, uint64_t i);
int64_t mn_gguf_arr_int(const mn_gguf_value *arr, uint64_t i);  /* any integer element type */
double mn_gguf_arr_float(const mn_gguf_value *arr, uint64_t i); /* FLOAT32 / FLOAT64 */

/* Value type name ("uint32", "array"...), for printing; "invalid" for ids out of the enum. */
const char *mn_gguf_type_name(uint32_t type);
/* On-disk bytes of one fixed-size value of this type (1, 2, 4 or 8); 0 for STRING, ARRAY and ids
 * out of the enum. */
uint64_t mn_gguf_type_size(uint32_t type);

/* Tensors. */
int64_t mn_gguf_n_tensors(const mn_gguf *g);
const mn_gguf_tensor *mn_gguf_tensor_at(const mn_gguf *g, int64_t i);
const mn_gguf_tensor *mn_gguf_find_tensor(const mn_gguf *g, const char *name); /* NULL if absent */

/* ------------------------------------------------------------------------------------ writer --
 * Builds a GGUF v3 file in memory (metadata + tensor infos), then streams it to disk: header,
 * infos, padding, then each tensor's data (copied from the caller's pointer at write time), each
 * padded to the alignment. The file is written to PATH.tmp, fsynced, then renamed over PATH, so a
 * failure (disk full...) leaves PATH untouched and removes the temporary file.
 */
typedef struct mn_gguf_writer mn_gguf_writer;

mn_status mn_gguf_writer_create(mn_gguf_writer **out, mn_error *err);
void mn_gguf_writer_free(mn_gguf_writer *w);

/* Metadata setters; a key set twice keeps the last value. Strings are copied. */
mn_status mn_gguf_set_u8(mn_gguf_writer *w, const char *key, uint8_t v);
mn_status mn_gguf_set_i8(mn_gguf_writer *w, const char *key, int8_t v);
mn_status mn_gguf_set_u16(mn_gguf_writer *w, const char *key, uint16_t v);
mn_status mn_gguf_set_i16(mn_gguf_writer *w, const char *key, int16_t v);
mn_status mn_gguf_set_u32(mn_gguf_writer *w, const char *key, uint32_t v);
mn_status mn_gguf_set_i32(mn_gguf_writer *w, const char *key, int32_t v);
mn_status mn_gguf_set_u64(mn_gguf_writer *w, const char *key, uint64_t v);
mn_status mn_gguf_set_i64(mn_gguf_writer *w, const char *key, int64_t v);
mn_status mn_gguf_set_f32(mn_gguf_writer *w, const char *key, float v);
mn_status mn_gguf_set_f64(mn_gguf_writer *w, const char *key, double v);
mn_status mn_gguf_set_bool(mn_gguf_writer *w, const char *key, bool v);
mn_status mn_gguf_set_str(mn_gguf_writer *w, const char *key, const char *v);
/* Array of n fixed-size elements of elem_type, packed little-endian in data (copied). */
mn_status mn_gguf_set_arr_data(mn_gguf_writer *w, const char *key, uint32_t elem_type,
                               const void *data, uint64_t n);
/* Array of n strings (copied). lens may be NULL (NUL-terminated strings). */
mn_status mn_gguf_set_arr_str(mn_gguf_writer *w, const char *key, const char *const *strs,
                              const uint64_t *lens, uint64_t n);
/* Any parsed value (nested arrays included), e.g. to copy metadata from a reader. */
mn_status mn_gguf_set_value(mn_gguf_writer *w, const char *key, const mn_gguf_value *v);

/* Adds a tensor (checked now: name non-empty, < 64 bytes, UTF-8; type known; 1..4 dims, each > 0;
 * ne[0] a multiple of the block size; no overflow). Duplicate names are reported by the write
 * calls (MN_EINVAL). data must hold mn_type_row_size(type, ne[0]) * ne[1] * ... bytes and stay valid
 * until mn_gguf_writer_write returns (it is copied then, not now). */
mn_status mn_gguf_add_tensor(mn_gguf_writer *w, const char *name, int32_t type, uint32_t n_dims,
                             const int64_t *ne, const void *data);

/* Message of the last setter/add call that failed on w ("" if none). Borrowed, valid until the
 * next call on w. Setters and mn_gguf_add_tensor return MN_EINVAL (bad key, name, type, shape,
 * value), MN_ENOMEM, or MN_ERANGE (sizes overflow). */
const char *mn_gguf_writer_errmsg(const mn_gguf_writer *w);

/* Writes the file atomically (tmp + fsync + rename). Errors name the failing step: MN_EINVAL (bad
 * general.alignment: not a uint32 power of two <= MN_GGUF_MAX_ALIGNMENT; duplicate tensor names),
 * MN_ERANGE (sizes overflow), MN_ENOMEM, MN_EIO (create, write (ENOSPC, EFBIG...), fsync, close,
 * rename; PATH.tmp is removed and PATH is left as it was). Tensor offsets follow the alignment
 * (general.alignment if the caller set it, else 32); each tensor is zero-padded to it. */
mn_status mn_gguf_writer_write(mn_gguf_writer *w, const char *path, mn_error *err);
/* Serialises into a malloc'd buffer (tests, fuzz seeds). Caller frees *out. */
mn_status mn_gguf_writer_to_memory(mn_gguf_writer *w, void **out, size_t *size, mn_error *err);

#endif
