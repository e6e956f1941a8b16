/*
 * cmd_inspect.c: `minnow inspect FILE [--json]` prints what a GGUF file holds: version, alignment,
 * every metadata key with its type and value, and the tensor table (name, type, dims, offset,
 * bytes) with totals.
 *
 * The text form is for people: long strings are cut (at a character boundary, with the full
 * length shown), arrays show their element type, count and first few elements, and every byte
 * that is not printable UTF-8 is escaped, so a hostile file cannot drive the terminal. The JSON
 * form (--json) is for programs: complete values, one object, valid UTF-8 (bad bytes become
 * U+FFFD), non-finite floats as the strings "NaN"/"Infinity"/"-Infinity".
 *
 * The file goes through mn_gguf_open, so inspect validates exactly as the loader does: a bad file
 * prints "minnow inspect: FILE: <reason>" on stderr and exits 1 (2 for usage errors).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "gguf/gguf.h"
#include "kernels/types.h"

#define TEXT_STR_MAX 72   /* bytes of a string value shown in text mode */
#define TEXT_ARR_MAX 6    /* elements of an array shown in text mode */
#define TEXT_NESTED_MAX 3 /* elements of an inner (nested) array shown */

/* ---------------------------------------------------------------- text ---------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Quoted, escaped string; at most max bytes of s are shown (max 0: all). */
static void print_text_str(FILE *f, mn_gguf_str s, size_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = (size_t)s.len, i = 0;
    fputc('"', f);
    while (i < n) {
        if (max && i >= max) break;
        unsigned c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20 || c >= 0x7F) fprintf(f, "\\x%02x", c);
        else fputc((int)c, f);
        i++;
    }
    fputc('"', f);
    if (i < n) fprintf(f, "... (%" PRIu64 " bytes)", s.len);
}

static void print_text_scalar(FILE *f, const mn_gguf_value *v) {
    switch (v->type) {
    case MN_GGUF_UINT8:
    case MN_GGUF_UINT16:
    case MN_GGUF_UINT32:
    case MN_GGUF_UINT64: fprintf(f, "%" PRIu64, v->v.u); break;
    case MN_GGUF_INT8:
    case MN_GGUF_INT16:
    case MN_GGUF_INT32:
    case MN_GGUF_INT64: fprintf(f, "%" PRId64, v->v.i); break;
    case MN_GGUF_FLOAT32: fprintf(f, "%.9g", v->v.f); break;
    case MN_GGUF_FLOAT64: fprintf(f, "%.17g", v->v.f); break;
    case MN_GGUF_BOOL: fputs(v->v.b ? "true" : "false", f); break;
    default: fputs("?", f); break;
    }
}

/* Element i of a fixed-size array, decoded into a scalar value. */
static mn_gguf_value arr_elem(const mn_gguf_value *arr, uint64_t i) {
    mn_gguf_value e = {.type = arr->v.arr.type};
    uint32_t t = arr->v.arr.type;
    if (t == MN_GGUF_FLOAT32 || t == MN_GGUF_FLOAT64) e.v.f = mn_gguf_arr_float(arr, i);
    else if (t == MN_GGUF_BOOL) e.v.b = mn_gguf_arr_int(arr, i) != 0;
    else if (t == MN_GGUF_UINT8 || t == MN_GGUF_UINT16 || t == MN_GGUF_UINT32 || t == MN_GGUF_UINT64)
        e.v.u = (uint64_t)mn_gguf_arr_int(arr, i);
    else e.v.i = mn_gguf_arr_int(arr, i);
    return e;
}

static void print_text_value(FILE *f, const mn_gguf_value *v, int nested);

static void print_text_array(FILE *f, const mn_gguf_value *v, int nested) {
    uint64_t n = v->v.arr.n, show = nested ? TEXT_NESTED_MAX : TEXT_ARR_MAX;
    if (show > n) show = n;
    fprintf(f, "[%" PRIu64 "] ", n);
    if (nested) fputc('(', f);
    for (uint64_t i = 0; i < show; i++) {
        if (i) fputs(", ", f);
        if (v->v.arr.items) {
            print_text_value(f, &v->v.arr.items[i], nested + 1);
        } else {
            mn_gguf_value e = arr_elem(v, i);
            print_text_scalar(f, &e);
        }
    }
    if (show < n) fprintf(f, "%s... (%" PRIu64 " more)", show ? ", " : "", n - show);
    if (nested) fputc(')', f);
}

static void print_text_value(FILE *f, const mn_gguf_value *v, int nested) {
    if (v->type == MN_GGUF_STRING) print_text_str(f, v->v.str, nested ? TEXT_STR_MAX / 3 : TEXT_STR_MAX);
    else if (v->type == MN_GGUF_ARRAY) print_text_array(f, v, nested);
    else print_text_scalar(f, v);
}

/* "array[string]", "array[array]", "uint32"... */
static const char *type_label(const mn_gguf_value *v, char *buf, size_t cap) {
    if (v->type != MN_GGUF_ARRAY) return mn_gguf_type_name(v->type);
    snprintf(buf, cap, "array[%s]", mn_gguf_type_name(v->v.arr.type));
    return buf;
}

static void print_dims(FILE *f, const mn_gguf_tensor *t, int width) {
    char buf[128];
    int o = snprintf(buf, sizeof buf, "[");
    for (uint32_t j = 0; j < t->n_dims && o < (int)sizeof buf; j++)
        o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%" PRId64, j ? ", " : "", t->ne[j]);
    if (o < (int)sizeof buf) snprintf(buf + o, sizeof buf - (size_t)o, "]");
    fprintf(f, "%-*s", width, buf);
}

static void print_text(FILE *f, const char *path, const mn_gguf *g) {
    int64_t n_kv = mn_gguf_n_kv(g), n_t = mn_gguf_n_tensors(g);
    fprintf(f, "file:        %s\n", path);
    fprintf(f, "version:     %" PRIu32 "\n", mn_gguf_version(g));
    fprintf(f, "alignment:   %" PRIu64 "\n", mn_gguf_alignment(g));
    fprintf(f, "data offset: %" PRIu64 "\n", mn_gguf_data_offset(g));
    fprintf(f, "file size:   %" PRIu64 " bytes\n", mn_gguf_file_size(g));
    fprintf(f, "\nmetadata: %" PRId64 " keys\n", n_kv);
    int kw = 8;
    for (int64_t i = 0; i < n_kv; i++) {
        int len = (int)strlen(mn_gguf_key_at(g, i));
        if (len > kw) kw = len;
    }
    if (kw > 48) kw = 48;
    for (int64_t i = 0; i < n_kv; i++) {
        const mn_gguf_value *v = mn_gguf_value_at(g, i);
        char tb[32];
        fputs("  ", f);
        /* keys are validated UTF-8 without NUL; escape them like values in case of control bytes */
        const char *k = mn_gguf_key_at(g, i);
        mn_gguf_str ks = {k, strlen(k)};
        int printable = 1;
        for (const char *c = k; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7F) printable = 0;
        if (printable) fprintf(f, "%-*s", kw, k);
        else print_text_str(f, ks, 0);
        fprintf(f, "  %-15s ", type_label(v, tb, sizeof tb));
        print_text_value(f, v, 0);
        fputc('\n', f);
    }
    fprintf(f, "\ntensors: %" PRId64 "\n", n_t);
    int nw = 4;
    for (int64_t i = 0; i < n_t; i++) {
        int len = (int)strlen(mn_gguf_tensor_at(g, i)->name);
        if (len > nw) nw = len;
    }
    uint64_t total_bytes = 0;
    int64_t total_el = 0;
    if (n_t > 0)
        fprintf(f, "  %5s  %-*s  %-8s  %-26s  %14s  %14s\n", "#", nw, "name", "type", "dims", "offset",
                "bytes");
    for (int64_t i = 0; i < n_t; i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        const mn_type_traits *tr = mn_type_get(t->type);
        int64_t el = 1;
        for (uint32_t j = 0; j < t->n_dims; j++) el *= t->ne[j]; /* validated: no overflow */
        mn_gguf_str ns = {t->name, strlen(t->name)};
        fprintf(f, "  %5" PRId64 "  ", i);
        int printable = 1;
        for (const char *c = t->name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7F) printable = 0;
        if (printable) fprintf(f, "%-*s", nw, t->name);
        else print_text_str(f, ns, 0);
        fprintf(f, "  %-8s  ", tr ? tr->name : "?");
        print_dims(f, t, 26);
        fprintf(f, "  %14" PRIu64 "  %14" PRIu64 "\n", t->offset, t->size);
        total_bytes += t->size;
        total_el = __builtin_add_overflow(total_el, el, &total_el) ? INT64_MAX : total_el;
    }
    fprintf(f, "\ntotal: %" PRId64 " tensors, %" PRId64 " elements, %" PRIu64 " bytes (%.2f MiB) of tensor data\n",
            n_t, total_el, total_bytes, (double)total_bytes / (1024.0 * 1024.0));
}

/* ---------------------------------------------------------------- JSON ---------------------- */

static void print_json_str(FILE *f, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        if (len == 0) fputs("\\ufffd", f);
        else if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
        else fputc((int)c, f);
        i++;
    }
    fputc('"', f);
}

static void print_json_scalar(FILE *f, const mn_gguf_value *v) {
    if (v->type == MN_GGUF_FLOAT32 || v->type == MN_GGUF_FLOAT64) {
        double d = v->v.f;
        if (isnan(d)) fputs("\"NaN\"", f);
        else if (isinf(d)) fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
        else fprintf(f, v->type == MN_GGUF_FLOAT32 ? "%.9g" : "%.17g", d);
        return;
    }
    print_text_scalar(f, v);
}

static void print_json_value(FILE *f, const mn_gguf_value *v) {
    if (v->type == MN_GGUF_STRING) {
        print_json_str(f, v->v.str.ptr, (size_t)v->v.str.len);
    } else if (v->type == MN_GGUF_ARRAY) {
        fputc('[', f);
        for (uint64_t i = 0; i < v->v.arr.n; i++) {
            if (i) fputc(',', f);
            if (v->v.arr.items) {
                print_json_value(f, &v->v.arr.items[i]);
            } else {
                mn_gguf_value e = arr_elem(v, i);
                print_json_scalar(f, &e);
            }
        }
        fputc(']', f);
    } else {
        print_json_scalar(f, v);
    }
}

static void print_json(FILE *f, const char *path, const mn_gguf *g) {
    int64_t n_kv = mn_gguf_n_kv(g), n_t = mn_gguf_n_tensors(g);
    fputs("{\"file\":", f);
    print_json_str(f, path, strlen(path));
    fprintf(f, ",\"version\":%" PRIu32 ",\"alignment\":%" PRIu64 ",\"data_offset\":%" PRIu64
               ",\"file_size\":%" PRIu64 ",\n\"metadata\":{",
            mn_gguf_version(g), mn_gguf_alignment(g), mn_gguf_data_offset(g), mn_gguf_file_size(g));
    for (int64_t i = 0; i < n_kv; i++) {
        const mn_gguf_value *v = mn_gguf_value_at(g, i);
        const char *k = mn_gguf_key_at(g, i);
        fputs(i ? ",\n " : "\n ", f);
        print_json_str(f, k, strlen(k));
        fprintf(f, ":{\"type\":\"%s\"", mn_gguf_type_name(v->type));
        if (v->type == MN_GGUF_ARRAY)
            fprintf(f, ",\"elem_type\":\"%s\",\"count\":%" PRIu64, mn_gguf_type_name(v->v.arr.type), v->v.arr.n);
        fputs(",\"value\":", f);
        print_json_value(f, v);
        fputc('}', f);
    }
    fputs("},\n\"tensors\":[", f);
    uint64_t total_bytes = 0;
    int64_t total_el = 0;
    for (int64_t i = 0; i < n_t; i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        const mn_type_traits *tr = mn_type_get(t->type);
        int64_t el = 1;
        for (uint32_t j = 0; j < t->n_dims; j++) el *= t->ne[j];
        fputs(i ? ",\n " : "\n ", f);
        fputs("{\"name\":", f);
        print_json_str(f, t->name, strlen(t->name));
        fprintf(f, ",\"type\":\"%s\",\"type_id\":%" PRId32 ",\"dims\":[", tr ? tr->name : "?", t->type);
        for (uint32_t j = 0; j < t->n_dims; j++) fprintf(f, "%s%" PRId64, j ? "," : "", t->ne[j]);
        fprintf(f, "],\"elements\":%" PRId64 ",\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", el, t->offset, t->size);
        total_bytes += t->size;
        total_el = __builtin_add_overflow(total_el, el, &total_el) ? INT64_MAX : total_el;
    }
    fprintf(f, "],\n\"totals\":{\"tensors\":%" PRId64 ",\"elements\":%" PRId64 ",\"bytes\":%" PRIu64 "}}\n", n_t,
            total_el, total_bytes);
}

/* ---------------------------------------------------------------- command ------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: minnow inspect FILE [--json]\n"
               "  Validates a GGUF file and prints its version, alignment, metadata and tensors.\n"
               "  --json   complete machine-readable output (no abbreviation)\n");
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "minnow inspect: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "minnow inspect: more than one file given ('%s', '%s')\n", path, argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    mn_gguf *g = NULL;
    mn_error err = {0};
    mn_status s = mn_gguf_open(path, &g, &err);
    if (s != MN_OK) {
        fprintf(stderr, "minnow inspect: %s: %s (%s)\n", path, err.message, mn_strerror(s));
        return 1;
    }
    if (json) print_json(stdout, path, g);
    else print_text(stdout, path, g);
    mn_gguf_close(g);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "minnow inspect: error writing output\n");
        return 1;
    }
    return 0;
}
