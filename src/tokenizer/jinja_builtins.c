/*
 * jinja_builtins.c: the filters, tests, methods and global functions a template can call. This
 * fixed list is the whole surface a template can reach: there is no way from a template to any
 * other C function or to memory outside the render's values.
 *
 * Each follows Jinja 3.1 (and Python's str methods) for what chat templates use, with these
 * documented differences: select/reject/selectattr/rejectattr/map return lists (Jinja returns
 * generators, which templates always pass to |list, |join, |length or a loop anyway); case
 * mapping is per code point (utf8proc), so "ß".upper() stays "ß"; tojson follows transformers'
 * override (ensure_ascii off, keys in insertion order, indent / separators / sort_keys honoured).
 * Lists and dicts cannot be modified (append, pop, update...), as in transformers'
 * ImmutableSandboxedEnvironment; namespace() objects are the one mutable thing.
 *
 * Arguments are bound Python style (positional, then by keyword) against a parameter list per
 * builtin; an unknown keyword or too many arguments is an error naming the builtin.
 */
#define _GNU_SOURCE /* memmem: glibc's is linear-time (two-way), so searches cannot go quadratic */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "tokenizer/jinja_internal.h"

/* ---------------------------------------------------------------- tables --------------------- */

typedef enum filter_id {
    F_ABS,
    F_ATTR,
    F_CAPITALIZE,
    F_COUNT,
    F_D,
    F_DEFAULT,
    F_DICTSORT,
    F_E,
    F_ESCAPE,
    F_FIRST,
    F_FLOAT,
    F_FORCEESCAPE,
    F_INDENT,
    F_INT,
    F_ITEMS,
    F_JOIN,
    F_LAST,
    F_LENGTH,
    F_LIST,
    F_LOWER,
    F_MAP,
    F_MAX,
    F_MIN,
    F_REJECT,
    F_REJECTATTR,
    F_REPLACE,
    F_REVERSE,
    F_ROUND,
    F_SAFE,
    F_SELECT,
    F_SELECTATTR,
    F_SORT,
    F_STRING,
    F_SUM,
    F_TITLE,
    F_TOJSON,
    F_TRIM,
    F_UNIQUE,
    F_UPPER,
    F_COUNT_,
} filter_id;

static const char *const filter_names[F_COUNT_] = {
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "forceescape", "indent", "int", "items", "join", "last", "length", "list", "lower",
    "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
    "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper",
};

static const char *const filters_unsupported[] = {
    "batch", "center", "filesizeformat", "format", "groupby", "pprint", "random", "slice",
    "striptags", "truncate", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr", NULL,
};

typedef enum test_id {
    T_BOOLEAN,
    T_CALLABLE,
    T_DEFINED,
    T_DIVISIBLEBY,
    T_EQ,
    T_EQUALTO,
    T_ESCAPED,
    T_EVEN,
    T_FALSE,
    T_FILTER,
    T_FLOAT,
    T_GE,
    T_GREATERTHAN,
    T_GT,
    T_IN,
    T_INTEGER,
    T_ITERABLE,
    T_LE,
    T_LESSTHAN,
    T_LOWER,
    T_LT,
    T_MAPPING,
    T_NE,
    T_NONE,
    T_NUMBER,
    T_ODD,
    T_SAMEAS,
    T_SEQUENCE,
    T_STRING,
    T_TEST,
    T_TRUE,
    T_UNDEFINED,
    T_UPPER,
    T_OP_EQ,
    T_OP_NE,
    T_OP_LT,
    T_OP_LE,
    T_OP_GT,
    T_OP_GE,
    T_COUNT_,
} test_id;

static const char *const test_names[T_COUNT_] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even",
    "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le",
    "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence",
    "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">=",
};

static int lookup_name(const char *const *table, int count, const char *name, size_t n) {
    for (int i = 0; i < count; i++)
        if (strlen(table[i]) == n && memcmp(table[i], name, n) == 0) return i;
    return -1;
}

int mn_jinja_filter_lookup(const char *name, size_t n) { return lookup_name(filter_names, F_COUNT_, name, n); }
int mn_jinja_test_lookup(const char *name, size_t n) { return lookup_name(test_names, T_COUNT_, name, n); }

bool mn_jinja_filter_known_unsupported(const char *name, size_t n) {
    for (size_t i = 0; filters_unsupported[i]; i++)
        if (strlen(filters_unsupported[i]) == n && memcmp(filters_unsupported[i], name, n) == 0) return true;
    return false;
}

/* ---------------------------------------------------------------- argument binding ----------- */

#define PARAMS_MAX 6

/* Binds a->v to params (positional first, then by name). out[i] is undefined when not given
 * (present[i] false). what names the builtin in errors. */
static mn_status bind_params(jev *e, const jnode *n, const char *what, const char *const *params, size_t n_params,
                             const jargs *a, jv *out, bool *present) {
    for (size_t i = 0; i < n_params; i++) {
        out[i] = jv_undef();
        present[i] = false;
    }
    size_t pos = 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t k;
        if (!a->names[i].p) {
            if (pos >= n_params)
                return mn_jinja_err(e, n, MN_EINVAL, "%s takes at most %zu argument%s", what, n_params, n_params == 1 ? "" : "s");
            k = pos++;
        } else {
            for (k = 0; k < n_params; k++)
                if (jstr_eq(a->names[i], params[k])) break;
            if (k == n_params)
                return mn_jinja_err(e, n, MN_EINVAL, "%s got an unexpected keyword argument '%.*s'", what,
                                    (int)a->names[i].n, a->names[i].p);
            if (present[k])
                return mn_jinja_err(e, n, MN_EINVAL, "%s got multiple values for argument '%s'", what, params[k]);
        }
        out[k] = a->v[i];
        present[k] = true;
    }
    return MN_OK;
}

#define BIND(what, ...)                                                                            \
    static const char *const params_[] = {__VA_ARGS__};                                            \
    enum { NP_ = sizeof params_ / sizeof params_[0] };                                             \
    jv p[NP_];                                                                                     \
    bool has[NP_];                                                                                 \
    MN_FORWARD(bind_params(e, n, what, params_, NP_, a, p, has))

static mn_status no_args(jev *e, const jnode *n, const char *what, const jargs *a) {
    if (a->n) return mn_jinja_err(e, n, MN_EINVAL, "%s takes no arguments", what);
    return MN_OK;
}

static mn_status want_str(jev *e, const jnode *n, const char *what, jv v, jstr *out) {
    if (v.t != JV_STR) return mn_jinja_err(e, n, MN_EINVAL, "%s: expected a string, got %s", what, jv_type_name(v.t));
    *out = v.u.s;
    return MN_OK;
}

static mn_status want_int(jev *e, const jnode *n, const char *what, jv v, int64_t *out) {
    if (!jv_is_intlike(v)) return mn_jinja_err(e, n, MN_EINVAL, "%s: expected an integer, got %s", what, jv_type_name(v.t));
    *out = v.u.i;
    return MN_OK;
}

static jv list_value(jlist *l) { return (jv){.t = JV_LIST, .u.l = l}; }

/* ---------------------------------------------------------------- string helpers ------------- */

typedef enum { CASE_UPPER, CASE_LOWER } case_kind;

static mn_status map_case(jev *e, const jnode *n, jstr s, case_kind k, jbuf *b) {
    MN_FORWARD(mn_jinja_charge(e, n, s.n / 16)); /* a put per character */
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
        if (len == 1 && cp >= 0x80) { /* an invalid byte stays as it is */
            MN_FORWARD(mn_jbuf_putc(e, n, b, s.p[i]));
            i++;
            continue;
        }
        uint32_t m = k == CASE_UPPER ? (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp)
                                     : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
        char enc[4];
        MN_FORWARD(mn_jbuf_put(e, n, b, enc, mn_utf8_encode(m, enc)));
        i += len;
    }
    return MN_OK;
}

static bool is_cased_letter(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* Python str.title(): uppercase after a non-letter, lowercase after a letter. */
static mn_status py_title(jev *e, const jnode *n, jstr s, jbuf *b) {
    bool prev_cased = false;
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
        jstr one = {s.p + i, len};
        bool cased = len > 1 || cp < 0x80 ? is_cased_letter(cp) : false;
        MN_FORWARD(map_case(e, n, one, prev_cased ? CASE_LOWER : CASE_UPPER, b));
        prev_cased = cased;
        i += len;
    }
    return MN_OK;
}

/* Jinja's |title: words split at whitespace and -({[<; first letter upper, the rest lower. */
static mn_status jinja_title(jev *e, const jnode *n, jstr s, jbuf *b) {
    bool word_start = true;
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
        bool sep = mn_py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        MN_FORWARD(map_case(e, n, (jstr){s.p + i, len}, word_start && !sep ? CASE_UPPER : CASE_LOWER, b));
        word_start = sep;
        i += len;
    }
    return MN_OK;
}

static mn_status capitalize(jev *e, const jnode *n, jstr s, jbuf *b) {
    if (s.n == 0) return MN_OK;
    uint32_t cp;
    size_t len = mn_utf8_decode(s.p, s.n, &cp);
    MN_FORWARD(map_case(e, n, (jstr){s.p, len}, CASE_UPPER, b));
    return map_case(e, n, (jstr){s.p + len, s.n - len}, CASE_LOWER, b);
}

/* Is cp one of the code points of chars? */
static bool in_chars(uint32_t cp, jstr chars) {
    for (size_t i = 0; i < chars.n;) {
        uint32_t c;
        i += mn_utf8_decode(chars.p + i, chars.n - i, &c);
        if (c == cp) return true;
    }
    return false;
}

/* Python strip/lstrip/rstrip: chars NULL strips whitespace. */
static jstr py_strip(jstr s, const jstr *chars, bool left, bool right) {
    size_t start = 0, end = s.n;
    if (left) {
        while (start < end) {
            uint32_t cp;
            size_t len = mn_utf8_decode(s.p + start, end - start, &cp);
            if (chars ? !in_chars(cp, *chars) : !mn_py_isspace(cp)) break;
            start += len;
        }
    }
    if (right) {
        while (end > start) {
            size_t k = end - 1;
            while (k > start && ((unsigned char)s.p[k] & 0xC0) == 0x80 && end - k < 4) k--;
            uint32_t cp;
            size_t len = mn_utf8_decode(s.p + k, end - k, &cp);
            if (k + len != end) { /* not a whole character: treat the last byte alone */
                k = end - 1;
                cp = (unsigned char)s.p[k];
            }
            if (chars ? !in_chars(cp, *chars) : !mn_py_isspace(cp)) break;
            end = k;
        }
    }
    return (jstr){s.p + start, end - start};
}

static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn) {
    if (nn == 0) return hay;
    return memmem(hay, hn, needle, nn);
}

/* a * b / 64, saturating: the charge for work proportional to a product of two lengths */
static uint64_t prod_cost(size_t a, size_t b) {
    uint64_t r;
    if (__builtin_mul_overflow((uint64_t)a, (uint64_t)b, &r)) return UINT64_MAX / 2;
    return r / 64;
}

static mn_status str_replace(jev *e, const jnode *n, jstr s, jstr old, jstr rep, int64_t count, jv *out) {
    MN_FORWARD(mn_jinja_charge(e, n, (s.n + old.n) / 64));
    jbuf b = {0};
    if (old.n == 0) {
        /* Python inserts rep before every character and at the end */
        int64_t done = 0;
        size_t i = 0;
        for (; i <= s.n && (count < 0 || done < count); done++) {
            MN_FORWARD(mn_jbuf_put(e, n, &b, rep.p, rep.n));
            if (i == s.n) {
                i++;
                break;
            }
            uint32_t cp;
            size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
            MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + i, len));
            i += len;
        }
        if (i < s.n) MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + i, s.n - i));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    size_t i = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const char *hit = find_bytes(s.p + i, s.n - i, old.p, old.n);
        if (!hit) break;
        size_t at = (size_t)(hit - s.p);
        MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + i, at - i));
        MN_FORWARD(mn_jbuf_put(e, n, &b, rep.p, rep.n));
        i = at + old.n;
        done++;
    }
    if (done == 0) {
        *out = jv_str(s.p, s.n);
        return MN_OK;
    }
    MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + i, s.n - i));
    *out = mn_jbuf_value(&b);
    return MN_OK;
}

/* Python str.split(sep=None, maxsplit=-1). */
static mn_status str_split(jev *e, const jnode *n, jstr s, const jstr *sep, int64_t maxsplit, jv *out) {
    MN_FORWARD(mn_jinja_charge(e, n, 2 * (s.n + (sep ? sep->n : 0)) / 64)); /* two passes */
    jstr *parts = NULL;
    size_t np = 0, cap = 0;
    for (int pass = 0; pass < 2; pass++) {
        np = 0;
        int64_t splits = 0;
        if (sep) {
            size_t i = 0;
            for (;;) {
                const char *hit = (maxsplit < 0 || splits < maxsplit) ? find_bytes(s.p + i, s.n - i, sep->p, sep->n) : NULL;
                size_t end = hit ? (size_t)(hit - s.p) : s.n;
                if (pass) parts[np] = (jstr){s.p + i, end - i};
                np++;
                if (!hit) break;
                i = end + sep->n;
                splits++;
            }
        } else {
            size_t i = 0;
            for (;;) {
                while (i < s.n) { /* skip whitespace */
                    uint32_t cp;
                    size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
                    if (!mn_py_isspace(cp)) break;
                    i += len;
                }
                if (i >= s.n) break;
                if (maxsplit >= 0 && splits >= maxsplit) { /* the rest, trailing spaces kept */
                    jstr rest = {s.p + i, s.n - i};
                    if (pass) parts[np] = rest;
                    np++;
                    break;
                }
                size_t start = i;
                while (i < s.n) {
                    uint32_t cp;
                    size_t len = mn_utf8_decode(s.p + i, s.n - i, &cp);
                    if (mn_py_isspace(cp)) break;
                    i += len;
                }
                if (pass) parts[np] = (jstr){s.p + start, i - start};
                np++;
                splits++;
            }
        }
        if (pass == 0) {
            cap = np;
            if (cap) MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *parts, (void **)&parts));
        }
    }
    jlist *l = NULL;
    MN_FORWARD(mn_jlist_new(e, n, np, &l));
    for (size_t i = 0; i < np; i++) l->v[i] = jv_str(parts[i].p, parts[i].n);
    *out = list_value(l);
    return MN_OK;
}

/* Attribute paths of filters: "a.b.0" -> getitem chain (Jinja's make_attrgetter). */
static mn_status get_path(jev *e, const jnode *n, jv item, jstr path, jv *out) {
    size_t i = 0;
    jv v = item;
    while (i <= path.n) {
        size_t j = i;
        while (j < path.n && path.p[j] != '.') j++;
        jstr part = {path.p + i, j - i};
        bool digits = part.n > 0;
        int64_t idx = 0;
        for (size_t k = 0; k < part.n && digits; k++) {
            if (part.p[k] < '0' || part.p[k] > '9' || idx > (INT64_MAX - 9) / 10) digits = false;
            else idx = idx * 10 + (part.p[k] - '0');
        }
        if (v.t == JV_UNDEF) return mn_jinja_err_undef(e, n, v);
        MN_FORWARD(mn_jv_getitem(e, n, v, digits ? jv_int(idx) : jv_str(part.p, part.n), &v));
        i = j + 1;
    }
    *out = v;
    return MN_OK;
}

static mn_status html_escape(jev *e, const jnode *n, jstr s, jv *out) {
    MN_FORWARD(mn_jinja_charge(e, n, s.n / 64));
    jbuf b = {0};
    size_t run = 0;
    for (size_t i = 0; i < s.n; i++) {
        const char *rep = NULL;
        switch (s.p[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + run, i - run));
        MN_FORWARD(mn_jbuf_put(e, n, &b, rep, strlen(rep)));
        run = i + 1;
    }
    if (run == 0) {
        *out = jv_str(s.p, s.n);
        return MN_OK;
    }
    MN_FORWARD(mn_jbuf_put(e, n, &b, s.p + run, s.n - run));
    *out = mn_jbuf_value(&b);
    return MN_OK;
}

/* ---------------------------------------------------------------- sorting -------------------- */

typedef struct sort_ctx {
    jev *e;
    const jnode *n;
    bool fold_case, reverse;
} sort_ctx;

/* Stable merge sort of keys[] (carrying vals[] along); equal keys keep their order in both
 * directions, as Python's sorted(reverse=True) does. */
static mn_status merge_sort(sort_ctx *c, jv *keys, jv *vals, jv *tk, jv *tv, size_t len) {
    if (len < 2) return MN_OK;
    size_t mid = len / 2;
    MN_FORWARD(merge_sort(c, keys, vals, tk, tv, mid));
    MN_FORWARD(merge_sort(c, keys + mid, vals + mid, tk, tv, len - mid));
    size_t i = 0, j = mid, o = 0;
    while (i < mid && j < len) {
        int r;
        MN_FORWARD(mn_jv_compare(c->e, c->n, keys[j], keys[i], c->fold_case, &r));
        bool take_right = c->reverse ? r > 0 : r < 0;
        if (take_right) {
            tk[o] = keys[j];
            tv[o++] = vals[j++];
        } else {
            tk[o] = keys[i];
            tv[o++] = vals[i++];
        }
    }
    while (i < mid) {
        tk[o] = keys[i];
        tv[o++] = vals[i++];
    }
    while (j < len) {
        tk[o] = keys[j];
        tv[o++] = vals[j++];
    }
    memcpy(keys, tk, len * sizeof *keys);
    memcpy(vals, tv, len * sizeof *vals);
    return MN_OK;
}

static mn_status sort_values(jev *e, const jnode *n, jv *keys, jv *vals, size_t len, bool fold_case, bool reverse) {
    if (len < 2) return MN_OK;
    jv *tk = NULL, *tv = NULL;
    MN_FORWARD(mn_jinja_alloc(e, n, len, sizeof *tk, (void **)&tk));
    MN_FORWARD(mn_jinja_alloc(e, n, len, sizeof *tv, (void **)&tv));
    sort_ctx c = {e, n, fold_case, reverse};
    return merge_sort(&c, keys, vals, tk, tv, len);
}

/* ---------------------------------------------------------------- filters -------------------- */

static mn_status to_items(jev *e, const jnode *n, jv v, const jv **items, size_t *count) {
    if (v.t == JV_NONE || v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL)
        return mn_jinja_err(e, n, MN_EINVAL, "'%s' object is not iterable", jv_type_name(v.t));
    return mn_jv_items(e, n, v, items, count);
}

static mn_status str_arg(jev *e, const jnode *n, jv v, jstr *out) { return mn_jv_to_str(e, n, v, out); }

/* Applies test `name` (a string naming a test) to v with extra args (select/reject). */
static mn_status run_named_test(jev *e, const jnode *n, jv name, jv v, const jargs *extra, bool *out) {
    if (name.t == JV_UNDEF || !mn_jv_truthy(name)) {
        *out = mn_jv_truthy(v);
        return MN_OK;
    }
    jstr tn = {0};
    MN_FORWARD(want_str(e, n, "test name", name, &tn));
    int id = mn_jinja_test_lookup(tn.p, tn.n);
    if (id < 0) return mn_jinja_err(e, n, MN_EINVAL, "unknown test '%.*s'", (int)tn.n, tn.p);
    return mn_jinja_test(e, n, id, v, extra, out);
}

static mn_status filter_select(jev *e, const jnode *n, int f, jv v, const jargs *a, jv *out) {
    bool by_attr = f == F_SELECTATTR || f == F_REJECTATTR;
    bool keep_when = f == F_SELECT || f == F_SELECTATTR;
    for (size_t i = 0; i < a->n; i++)
        if (a->names[i].p) return mn_jinja_err(e, n, MN_EINVAL, "%s takes no keyword arguments", filter_names[f]);
    size_t k = 0;
    jstr attr = {0};
    if (by_attr) {
        if (a->n < 1) return mn_jinja_err(e, n, MN_EINVAL, "%s needs an attribute name", filter_names[f]);
        MN_FORWARD(want_str(e, n, filter_names[f], a->v[0], &attr));
        k = 1;
    }
    jv test_name = k < a->n ? a->v[k] : jv_undef();
    jargs extra = {a->v + (k < a->n ? k + 1 : a->n), a->names + (k < a->n ? k + 1 : a->n), k < a->n ? a->n - k - 1 : 0};
    const jv *items = NULL;
    size_t count;
    MN_FORWARD(to_items(e, n, v, &items, &count));
    jlist *l = NULL;
    MN_FORWARD(mn_jlist_new(e, n, count, &l));
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        MN_FORWARD(mn_jinja_charge(e, n, 1));
        jv x = items[i];
        if (by_attr) MN_FORWARD(get_path(e, n, items[i], attr, &x));
        bool r;
        MN_FORWARD(run_named_test(e, n, test_name, x, &extra, &r));
        if (r == keep_when) l->v[o++] = items[i];
    }
    l->n = o;
    *out = list_value(l);
    return MN_OK;
}

static mn_status filter_map(jev *e, const jnode *n, jv v, const jargs *a, jv *out) {
    const jv *items = NULL;
    size_t count;
    MN_FORWARD(to_items(e, n, v, &items, &count));
    jlist *l = NULL;
    MN_FORWARD(mn_jlist_new(e, n, count, &l));
    bool has_attr = false, has_default = false;
    jstr attr = {0};
    jv dflt = jv_undef();
    for (size_t i = 0; i < a->n; i++) {
        if (jstr_eq(a->names[i], "attribute")) {
            MN_FORWARD(want_str(e, n, "map", a->v[i], &attr));
            has_attr = true;
        } else if (jstr_eq(a->names[i], "default")) {
            dflt = a->v[i];
            has_default = true;
        }
    }
    if (has_attr) {
        for (size_t i = 0; i < count; i++) {
            MN_FORWARD(mn_jinja_charge(e, n, 1));
            MN_FORWARD(get_path(e, n, items[i], attr, &l->v[i]));
            if (has_default && l->v[i].t == JV_UNDEF) l->v[i] = dflt;
        }
        *out = list_value(l);
        return MN_OK;
    }
    if (a->n < 1 || a->names[0].p) return mn_jinja_err(e, n, MN_EINVAL, "map needs a filter name or attribute=");
    jstr fname = {0};
    MN_FORWARD(want_str(e, n, "map", a->v[0], &fname));
    int f = mn_jinja_filter_lookup(fname.p, fname.n);
    if (f < 0) return mn_jinja_err(e, n, MN_EINVAL, "unknown filter '%.*s'", (int)fname.n, fname.p);
    jargs rest = {a->v + 1, a->names + 1, a->n - 1};
    for (size_t i = 0; i < count; i++) {
        MN_FORWARD(mn_jinja_charge(e, n, 1));
        MN_FORWARD(mn_jinja_filter(e, n, f, items[i], &rest, &l->v[i]));
    }
    *out = list_value(l);
    return MN_OK;
}

/* Keys for sort/unique/min/max: the item or its attribute path. */
static mn_status sort_keys_of(jev *e, const jnode *n, const jv *items, size_t count, jv attr, jv **keys) {
    MN_FORWARD(mn_jinja_alloc(e, n, count ? count : 1, sizeof **keys, (void **)keys));
    for (size_t i = 0; i < count; i++) {
        (*keys)[i] = items[i];
        if (attr.t == JV_STR) MN_FORWARD(get_path(e, n, items[i], attr.u.s, &(*keys)[i]));
        else if (jv_is_intlike(attr)) MN_FORWARD(mn_jv_getitem(e, n, items[i], attr, &(*keys)[i]));
    }
    return MN_OK;
}

static mn_status indent_filter(jev *e, const jnode *n, jstr s, jv width, bool first, bool blank, jv *out) {
    jstr ind = {0};
    char spaces[256];
    if (width.t == JV_STR) {
        ind = width.u.s;
    } else {
        int64_t w = 4;
        if (width.t != JV_UNDEF) MN_FORWARD(want_int(e, n, "indent", width, &w));
        if (w < 0) w = 0;
        if (w > (int64_t)sizeof spaces) return mn_jinja_err(e, n, MN_EINVAL, "indent: width %" PRId64 " is too large", w);
        memset(spaces, ' ', (size_t)w);
        ind = (jstr){spaces, (size_t)w};
    }
    MN_FORWARD(mn_jinja_charge(e, n, s.n / 64));
    /* split into lines at \n, \r\n or \r (s + "\n", then splitlines, as Jinja does) */
    jbuf b = {0};
    size_t i = 0;
    bool first_line = true;
    while (i < s.n || first_line) {
        size_t j = i;
        while (j < s.n && s.p[j] != '\n' && s.p[j] != '\r') j++;
        jstr line = {s.p + i, j - i};
        if (!first_line) MN_FORWARD(mn_jbuf_putc(e, n, &b, '\n'));
        bool indent_it = first_line ? first : (blank || line.n > 0);
        if (indent_it) MN_FORWARD(mn_jbuf_put(e, n, &b, ind.p, ind.n));
        MN_FORWARD(mn_jbuf_put(e, n, &b, line.p, line.n));
        first_line = false;
        if (j >= s.n) break;
        i = j + (s.p[j] == '\r' && j + 1 < s.n && s.p[j + 1] == '\n' ? 2 : 1);
        if (i >= s.n) break; /* a trailing newline ends the last line */
    }
    *out = mn_jbuf_value(&b);
    return MN_OK;
}

static mn_status parse_int_str(jstr s, int64_t base, int64_t *out) {
    jstr t = py_strip(s, NULL, true, true);
    if (t.n == 0 || t.n > 64) return MN_EINVAL;
    char buf[72];
    size_t o = 0;
    for (size_t i = 0; i < t.n; i++)
        if (t.p[i] != '_') buf[o++] = t.p[i];
    buf[o] = '\0';
    char *end = NULL;
    long long v = strtoll(buf, &end, (int)base);
    if (*end != '\0' || end == buf) return MN_EINVAL;
    *out = v;
    return MN_OK;
}

static mn_status parse_float_str(jstr s, double *out) {
    jstr t = py_strip(s, NULL, true, true);
    if (t.n == 0 || t.n > 64) return MN_EINVAL;
    char buf[72];
    memcpy(buf, t.p, t.n);
    buf[t.n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    if (*end != '\0' || end == buf) return MN_EINVAL;
    *out = v;
    return MN_OK;
}

mn_status mn_jinja_filter(jev *e, const jnode *n, int f, jv v, const jargs *a, jv *out) {
    const char *what = f >= 0 && f < F_COUNT_ ? filter_names[f] : "filter";
    switch ((filter_id)f) {
    case F_ABS: {
        MN_FORWARD(no_args(e, n, "abs", a));
        if (v.t == JV_FLOAT) *out = jv_float(fabs(v.u.f));
        else if (jv_is_intlike(v)) {
            if (v.u.i == INT64_MIN) return mn_jinja_err(e, n, MN_ERANGE, "abs: integer overflow");
            *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        } else return mn_jinja_err(e, n, MN_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(v.t));
        return MN_OK;
    }
    case F_ATTR: {
        BIND("attr", "name");
        jstr name = {0};
        MN_FORWARD(want_str(e, n, "attr", p[0], &name));
        if (v.t == JV_DICT) { /* Python getattr: a dict's keys are not attributes */
            *out = (jv){.t = JV_UNDEF, .why = JU_ATTR, .obj = JV_DICT, .u.s = name};
            return MN_OK;
        }
        return mn_jv_getattr(e, n, v, name, out);
    }
    case F_CAPITALIZE:
    case F_LOWER:
    case F_UPPER:
    case F_TITLE: {
        MN_FORWARD(no_args(e, n, what, a));
        jstr s = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        jbuf b = {0};
        if (f == F_CAPITALIZE) MN_FORWARD(capitalize(e, n, s, &b));
        else if (f == F_TITLE) MN_FORWARD(jinja_title(e, n, s, &b));
        else MN_FORWARD(map_case(e, n, s, f == F_UPPER ? CASE_UPPER : CASE_LOWER, &b));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    case F_COUNT:
    case F_LENGTH: {
        MN_FORWARD(no_args(e, n, what, a));
        int64_t len = 0;
        MN_FORWARD(mn_jv_length(e, n, v, &len));
        *out = jv_int(len);
        return MN_OK;
    }
    case F_D:
    case F_DEFAULT: {
        BIND("default", "default_value", "boolean");
        jv dflt = has[0] ? p[0] : jv_str("", 0);
        bool use = v.t == JV_UNDEF || (has[1] && mn_jv_truthy(p[1]) && !mn_jv_truthy(v));
        *out = use ? dflt : v;
        return MN_OK;
    }
    case F_DICTSORT: {
        BIND("dictsort", "case_sensitive", "by", "reverse");
        if (v.t != JV_DICT) return mn_jinja_err(e, n, MN_EINVAL, "dictsort: expected a dict, got %s", jv_type_name(v.t));
        bool by_value = false;
        if (has[1]) {
            jstr by = {0};
            MN_FORWARD(want_str(e, n, "dictsort", p[1], &by));
            if (jstr_eq(by, "value")) by_value = true;
            else if (!jstr_eq(by, "key")) return mn_jinja_err(e, n, MN_EINVAL, "dictsort: 'by' must be 'key' or 'value'");
        }
        const jdict *d = v.u.d;
        jv *keys = NULL, *vals = NULL;
        MN_FORWARD(mn_jinja_alloc(e, n, d->n ? d->n : 1, sizeof *keys, (void **)&keys));
        MN_FORWARD(mn_jinja_alloc(e, n, d->n ? d->n : 1, sizeof *vals, (void **)&vals));
        for (size_t i = 0; i < d->n; i++) {
            jlist *pair = NULL;
            MN_FORWARD(mn_jlist_new(e, n, 2, &pair));
            pair->is_tuple = true;
            pair->v[0] = d->k[i];
            pair->v[1] = d->v[i];
            keys[i] = by_value ? d->v[i] : d->k[i];
            vals[i] = list_value(pair);
        }
        MN_FORWARD(sort_values(e, n, keys, vals, d->n, !(has[0] && mn_jv_truthy(p[0])), has[2] && mn_jv_truthy(p[2])));
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, d->n, &l));
        if (d->n) memcpy(l->v, vals, d->n * sizeof *vals);
        *out = list_value(l);
        return MN_OK;
    }
    case F_E:
    case F_ESCAPE:
    case F_FORCEESCAPE: {
        MN_FORWARD(no_args(e, n, what, a));
        jstr s = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        return html_escape(e, n, s, out);
    }
    case F_FIRST:
    case F_LAST: {
        MN_FORWARD(no_args(e, n, what, a));
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        if (count == 0) {
            *out = jv_undef();
        } else {
            *out = items[f == F_FIRST ? 0 : count - 1];
        }
        return MN_OK;
    }
    case F_FLOAT: {
        BIND("float", "default");
        jv dflt = has[0] ? p[0] : jv_float(0.0);
        if (v.t == JV_FLOAT) *out = v;
        else if (jv_is_intlike(v)) *out = jv_float((double)v.u.i);
        else if (v.t == JV_STR) {
            double d;
            *out = parse_float_str(v.u.s, &d) == MN_OK ? jv_float(d) : dflt;
        } else *out = dflt;
        return MN_OK;
    }
    case F_INT: {
        BIND("int", "default", "base");
        jv dflt = has[0] ? p[0] : jv_int(0);
        int64_t base = 10;
        if (has[1]) MN_FORWARD(want_int(e, n, "int", p[1], &base));
        if (base != 0 && (base < 2 || base > 36)) return mn_jinja_err(e, n, MN_EINVAL, "int: base must be 0 or in 2..36");
        if (jv_is_intlike(v)) *out = jv_int(v.u.i);
        else if (v.t == JV_FLOAT) {
            if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18) *out = dflt;
            else *out = jv_int((int64_t)v.u.f);
        } else if (v.t == JV_STR) {
            int64_t i = 0;
            double d;
            if (parse_int_str(v.u.s, base, &i) == MN_OK) *out = jv_int(i);
            else if (base == 10 && parse_float_str(v.u.s, &d) == MN_OK && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
            else *out = dflt;
        } else *out = dflt;
        return MN_OK;
    }
    case F_INDENT: {
        BIND("indent", "width", "first", "blank");
        jstr s = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        return indent_filter(e, n, s, p[0], has[1] && mn_jv_truthy(p[1]), has[2] && mn_jv_truthy(p[2]), out);
    }
    case F_ITEMS: {
        MN_FORWARD(no_args(e, n, "items", a));
        if (v.t == JV_UNDEF) {
            jlist *l = NULL;
            MN_FORWARD(mn_jlist_new(e, n, 0, &l));
            *out = list_value(l);
            return MN_OK;
        }
        if (v.t != JV_DICT) return mn_jinja_err(e, n, MN_EINVAL, "items: can only get item pairs from a mapping, not %s", jv_type_name(v.t));
        bool handled;
        return mn_jinja_method(e, n, v, (jstr){"items", 5}, a, out, &handled);
    }
    case F_JOIN: {
        BIND("join", "d", "attribute");
        jstr sep = {"", 0};
        if (has[0]) MN_FORWARD(str_arg(e, n, p[0], &sep));
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        jbuf b = {0};
        for (size_t i = 0; i < count; i++) {
            if (i) MN_FORWARD(mn_jbuf_put(e, n, &b, sep.p, sep.n));
            jv x = items[i];
            if (has[1] && p[1].t == JV_STR) MN_FORWARD(get_path(e, n, x, p[1].u.s, &x));
            else if (has[1] && jv_is_intlike(p[1])) MN_FORWARD(mn_jv_getitem(e, n, x, p[1], &x));
            MN_FORWARD(mn_jv_put_str(e, n, &b, x));
        }
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    case F_LIST: {
        MN_FORWARD(no_args(e, n, "list", a));
        if (v.t == JV_LIST && !v.u.l->is_tuple) {
            *out = v;
            return MN_OK;
        }
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, count, &l));
        if (count) memcpy(l->v, items, count * sizeof *items);
        *out = list_value(l);
        return MN_OK;
    }
    case F_MAP: return filter_map(e, n, v, a, out);
    case F_MAX:
    case F_MIN: {
        BIND(what, "case_sensitive", "attribute");
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        if (count == 0) {
            *out = jv_undef();
            return MN_OK;
        }
        jv *keys = NULL;
        MN_FORWARD(sort_keys_of(e, n, items, count, p[1], &keys));
        size_t best = 0;
        for (size_t i = 1; i < count; i++) {
            int c;
            MN_FORWARD(mn_jv_compare(e, n, keys[i], keys[best], !(has[0] && mn_jv_truthy(p[0])), &c));
            if (f == F_MAX ? c > 0 : c < 0) best = i;
        }
        *out = items[best];
        return MN_OK;
    }
    case F_REJECT:
    case F_REJECTATTR:
    case F_SELECT:
    case F_SELECTATTR: return filter_select(e, n, f, v, a, out);
    case F_REPLACE: {
        BIND("replace", "old", "new", "count");
        jstr s = {0}, old = {0}, rep = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        if (!has[0] || !has[1]) return mn_jinja_err(e, n, MN_EINVAL, "replace needs old and new strings");
        MN_FORWARD(str_arg(e, n, p[0], &old));
        MN_FORWARD(str_arg(e, n, p[1], &rep));
        int64_t count = -1;
        if (has[2] && p[2].t != JV_NONE) MN_FORWARD(want_int(e, n, "replace", p[2], &count));
        return str_replace(e, n, s, old, rep, count, out);
    }
    case F_REVERSE: {
        MN_FORWARD(no_args(e, n, "reverse", a));
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        if (v.t == JV_STR) {
            jbuf b = {0};
            for (size_t i = count; i-- > 0;) MN_FORWARD(mn_jbuf_put(e, n, &b, items[i].u.s.p, items[i].u.s.n));
            *out = mn_jbuf_value(&b);
            return MN_OK;
        }
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, count, &l));
        for (size_t i = 0; i < count; i++) l->v[i] = items[count - 1 - i];
        *out = list_value(l);
        return MN_OK;
    }
    case F_ROUND: {
        BIND("round", "precision", "method");
        int64_t prec = 0;
        if (has[0]) MN_FORWARD(want_int(e, n, "round", p[0], &prec));
        jstr method = {"common", 6};
        if (has[1]) MN_FORWARD(want_str(e, n, "round", p[1], &method));
        if (!jv_is_num(v)) return mn_jinja_err(e, n, MN_EINVAL, "round: expected a number, got %s", jv_type_name(v.t));
        if (jv_is_intlike(v) && jstr_eq(method, "common")) {
            *out = jv_int(v.u.i); /* round(int, n) stays an int in Python */
            return MN_OK;
        }
        double x = v.t == JV_FLOAT ? v.u.f : (double)v.u.i;
        if (prec > 300) prec = 300;
        if (prec < -300) prec = -300;
        double r;
        if (jstr_eq(method, "common")) {
            if (!isfinite(x)) r = x;
            else if (prec >= 0) {
                char buf[400];
                snprintf(buf, sizeof buf, "%.*f", (int)prec, x); /* correctly rounded, half to even */
                r = strtod(buf, NULL);
            } else {
                double scale = pow(10.0, (double)-prec);
                r = nearbyint(x / scale) * scale;
            }
        } else if (jstr_eq(method, "ceil") || jstr_eq(method, "floor")) {
            double scale = pow(10.0, (double)prec);
            r = (jstr_eq(method, "ceil") ? ceil(x * scale) : floor(x * scale)) / scale;
        } else {
            return mn_jinja_err(e, n, MN_EINVAL, "round: method must be 'common', 'ceil' or 'floor'");
        }
        *out = jv_float(r);
        return MN_OK;
    }
    case F_SAFE: MN_FORWARD(no_args(e, n, "safe", a)); *out = v; return MN_OK;
    case F_SORT:
    case F_UNIQUE: {
        jv p[3];
        bool has[3];
        if (f == F_SORT) {
            static const char *const sp[] = {"reverse", "case_sensitive", "attribute"};
            MN_FORWARD(bind_params(e, n, "sort", sp, 3, a, p, has));
        } else {
            static const char *const up[] = {"case_sensitive", "attribute"};
            MN_FORWARD(bind_params(e, n, "unique", up, 2, a, p + 1, has + 1));
            has[0] = false;
        }
        bool fold_case = !(has[1] && mn_jv_truthy(p[1]));
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        jv *keys = NULL, *vals = NULL;
        MN_FORWARD(sort_keys_of(e, n, items, count, has[2] ? p[2] : jv_undef(), &keys));
        MN_FORWARD(mn_jinja_alloc(e, n, count ? count : 1, sizeof *vals, (void **)&vals));
        if (count) memcpy(vals, items, count * sizeof *vals);
        size_t kept = count;
        if (f == F_SORT) {
            MN_FORWARD(sort_values(e, n, keys, vals, count, fold_case, has[0] && mn_jv_truthy(p[0])));
        } else {
            kept = 0;
            for (size_t i = 0; i < count; i++) {
                bool dup = false;
                for (size_t j = 0; j < kept && !dup; j++) {
                    if (fold_case && keys[i].t == JV_STR && keys[j].t == JV_STR) {
                        int c;
                        MN_FORWARD(mn_jv_compare(e, n, keys[i], keys[j], true, &c));
                        dup = c == 0;
                    } else {
                        MN_FORWARD(mn_jv_eq(e, n, keys[i], keys[j], &dup));
                    }
                }
                if (!dup) {
                    keys[kept] = keys[i];
                    vals[kept++] = vals[i];
                }
            }
        }
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, kept, &l));
        if (kept) memcpy(l->v, vals, kept * sizeof *vals);
        *out = list_value(l);
        return MN_OK;
    }
    case F_STRING: {
        MN_FORWARD(no_args(e, n, "string", a));
        jstr s = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        *out = jv_str(s.p, s.n);
        return MN_OK;
    }
    case F_SUM: {
        BIND("sum", "attribute", "start");
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, v, &items, &count));
        jv acc = has[1] ? p[1] : jv_int(0);
        for (size_t i = 0; i < count; i++) {
            jv x = items[i];
            if (has[0] && p[0].t == JV_STR) MN_FORWARD(get_path(e, n, x, p[0].u.s, &x));
            if (!jv_is_num(x) || !jv_is_num(acc))
                return mn_jinja_err(e, n, MN_EINVAL, "sum: unsupported operand types '%s' and '%s'", jv_type_name(acc.t), jv_type_name(x.t));
            if (jv_is_intlike(acc) && jv_is_intlike(x)) {
                int64_t r;
                if (__builtin_add_overflow(acc.u.i, x.u.i, &r)) return mn_jinja_err(e, n, MN_ERANGE, "sum: integer overflow");
                acc = jv_int(r);
            } else {
                acc = jv_float((acc.t == JV_FLOAT ? acc.u.f : (double)acc.u.i) + (x.t == JV_FLOAT ? x.u.f : (double)x.u.i));
            }
        }
        *out = acc;
        return MN_OK;
    }
    case F_TOJSON: {
        BIND("tojson", "indent", "separators", "sort_keys", "ensure_ascii");
        jjson_opts o = {0};
        char spaces[256];
        jstr ind = {0};
        if (has[0] && p[0].t != JV_NONE) {
            if (p[0].t == JV_STR) {
                ind = p[0].u.s;
            } else {
                int64_t w = 0;
                MN_FORWARD(want_int(e, n, "tojson indent", p[0], &w));
                if (w < 0) w = 0;
                if (w > (int64_t)sizeof spaces) return mn_jinja_err(e, n, MN_EINVAL, "tojson: indent %" PRId64 " is too large", w);
                memset(spaces, ' ', (size_t)w);
                ind = (jstr){spaces, (size_t)w};
            }
            o.indent = &ind;
        }
        if (has[1] && p[1].t != JV_NONE) {
            if (p[1].t != JV_LIST || p[1].u.l->n != 2 || p[1].u.l->v[0].t != JV_STR || p[1].u.l->v[1].t != JV_STR)
                return mn_jinja_err(e, n, MN_EINVAL, "tojson: separators must be a pair of strings");
            o.item_sep = p[1].u.l->v[0].u.s;
            o.key_sep = p[1].u.l->v[1].u.s;
        }
        o.sort_keys = has[2] && mn_jv_truthy(p[2]);
        if (has[3] && mn_jv_truthy(p[3])) return mn_jinja_err(e, n, MN_EUNSUPPORTED, "tojson: ensure_ascii=true is not supported");
        jbuf b = {0};
        MN_FORWARD(mn_jv_put_json(e, n, &b, v, &o, 0));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    case F_TRIM: {
        BIND("trim", "chars");
        jstr s = {0}, chars = {0};
        MN_FORWARD(str_arg(e, n, v, &s));
        bool has_chars = has[0] && p[0].t != JV_NONE;
        if (has_chars) MN_FORWARD(want_str(e, n, "trim", p[0], &chars));
        MN_FORWARD(mn_jinja_charge(e, n, s.n / 64 + (has_chars ? prod_cost(s.n + 1, chars.n) : 0)));
        jstr r = py_strip(s, has_chars ? &chars : NULL, true, true);
        *out = jv_str(r.p, r.n);
        return MN_OK;
    }
    case F_COUNT_: break;
    }
    return mn_jinja_err(e, n, MN_EINTERNAL, "bad filter id %d", f);
}

/* ---------------------------------------------------------------- tests ---------------------- */

static bool str_all_case(jstr s, bool upper) {
    bool cased = false;
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        i += mn_utf8_decode(s.p + i, s.n - i, &cp);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) {
            if (!upper) return false;
            cased = true;
        } else if (c == UTF8PROC_CATEGORY_LL) {
            if (upper) return false;
            cased = true;
        }
    }
    return cased;
}

mn_status mn_jinja_test(jev *e, const jnode *n, int t, jv v, const jargs *a, bool *out) {
    const char *what = t >= 0 && t < T_COUNT_ ? test_names[t] : "test";
    switch ((test_id)t) {
    case T_DEFINED: *out = v.t != JV_UNDEF; break;
    case T_UNDEFINED: *out = v.t == JV_UNDEF; break;
    case T_NONE: *out = v.t == JV_NONE; break;
    case T_BOOLEAN: *out = v.t == JV_BOOL; break;
    case T_TRUE: *out = v.t == JV_BOOL && v.u.i; break;
    case T_FALSE: *out = v.t == JV_BOOL && !v.u.i; break;
    case T_INTEGER: *out = v.t == JV_INT; break;
    case T_FLOAT: *out = v.t == JV_FLOAT; break;
    case T_NUMBER: *out = jv_is_num(v); break;
    case T_STRING: *out = v.t == JV_STR; break;
    case T_MAPPING: *out = v.t == JV_DICT; break;
    case T_ITERABLE:
        *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_RANGE || v.t == JV_UNDEF || v.t == JV_LOOP;
        break;
    case T_SEQUENCE: *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_RANGE; break;
    case T_CALLABLE: *out = v.t == JV_FUNC || v.t == JV_MACRO; break;
    case T_ESCAPED: *out = false; break;
    case T_LOWER:
    case T_UPPER: {
        jstr s = {0};
        MN_FORWARD(mn_jv_to_str(e, n, v, &s));
        MN_FORWARD(mn_jinja_charge(e, n, s.n / 64));
        *out = str_all_case(s, t == T_UPPER);
        break;
    }
    case T_FILTER:
    case T_TEST:
        *out = v.t == JV_STR && (t == T_FILTER ? mn_jinja_filter_lookup(v.u.s.p, v.u.s.n) : mn_jinja_test_lookup(v.u.s.p, v.u.s.n)) >= 0;
        break;
    case T_EVEN:
    case T_ODD:
    case T_DIVISIBLEBY: {
        int64_t d = 2;
        if (t == T_DIVISIBLEBY) {
            BIND("divisibleby", "num");
            if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "divisibleby needs a number");
            if (!jv_is_num(p[0])) return mn_jinja_err(e, n, MN_EINVAL, "divisibleby: expected a number");
            if (p[0].t == JV_FLOAT || v.t == JV_FLOAT) {
                double y = p[0].t == JV_FLOAT ? p[0].u.f : (double)p[0].u.i;
                double x = v.t == JV_FLOAT ? v.u.f : (double)v.u.i;
                if (!jv_is_num(v)) return mn_jinja_err(e, n, MN_EINVAL, "divisibleby: expected a number, got %s", jv_type_name(v.t));
                if (y == 0) return mn_jinja_err(e, n, MN_EINVAL, "float modulo by zero");
                *out = fmod(x, y) == 0;
                return MN_OK;
            }
            d = p[0].u.i;
            if (d == 0) return mn_jinja_err(e, n, MN_EINVAL, "integer division or modulo by zero");
        } else {
            MN_FORWARD(no_args(e, n, what, a));
        }
        if (v.t == JV_FLOAT) {
            double r = fmod(v.u.f, (double)d);
            *out = t == T_ODD ? fabs(r) == 1.0 : r == 0.0;
        } else if (jv_is_intlike(v)) {
            int64_t r = d == -1 ? 0 : v.u.i % d;
            *out = t == T_ODD ? r != 0 : r == 0;
        } else {
            if (v.t == JV_UNDEF) return mn_jinja_err_undef(e, n, v);
            return mn_jinja_err(e, n, MN_EINVAL, "%s: expected a number, got %s", what, jv_type_name(v.t));
        }
        return MN_OK;
    }
    case T_EQ:
    case T_EQUALTO:
    case T_OP_EQ:
    case T_NE:
    case T_OP_NE:
    case T_LT:
    case T_LESSTHAN:
    case T_OP_LT:
    case T_LE:
    case T_OP_LE:
    case T_GT:
    case T_GREATERTHAN:
    case T_OP_GT:
    case T_GE:
    case T_OP_GE:
    case T_IN:
    case T_SAMEAS: {
        BIND(what, "other");
        if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "test '%s' needs an argument", what);
        jv o = p[0];
        if (t == T_IN) return mn_jv_contains(e, n, o, v, out);
        if (t == T_SAMEAS) {
            *out = v.t == o.t && (v.t == JV_NONE || v.t == JV_UNDEF ||
                                  ((v.t == JV_BOOL || v.t == JV_INT) && v.u.i == o.u.i) ||
                                  (v.t == JV_STR && v.u.s.p == o.u.s.p && v.u.s.n == o.u.s.n) ||
                                  ((v.t == JV_LIST) && v.u.l == o.u.l) || ((v.t == JV_DICT || v.t == JV_NS) && v.u.d == o.u.d));
            return MN_OK;
        }
        if (t == T_EQ || t == T_EQUALTO || t == T_OP_EQ || t == T_NE || t == T_OP_NE) {
            MN_FORWARD(mn_jv_eq(e, n, v, o, out));
            if (t == T_NE || t == T_OP_NE) *out = !*out;
            return MN_OK;
        }
        int c;
        MN_FORWARD(mn_jv_compare(e, n, v, o, false, &c));
        if (t == T_LT || t == T_LESSTHAN || t == T_OP_LT) *out = c < 0;
        else if (t == T_LE || t == T_OP_LE) *out = c <= 0;
        else if (t == T_GT || t == T_GREATERTHAN || t == T_OP_GT) *out = c > 0;
        else *out = c >= 0;
        return MN_OK;
    }
    case T_COUNT_: return mn_jinja_err(e, n, MN_EINTERNAL, "bad test id %d", t);
    }
    /* the single-value tests take no arguments */
    if (t != T_EVEN && t != T_ODD && a->n) return mn_jinja_err(e, n, MN_EINVAL, "test '%s' takes no arguments", what);
    return MN_OK;
}

/* ---------------------------------------------------------------- methods -------------------- */

static mn_status str_method(jev *e, const jnode *n, jstr s, jstr m, const jargs *a, jv *out, bool *handled) {
    *handled = true;
    if (jstr_eq(m, "strip") || jstr_eq(m, "lstrip") || jstr_eq(m, "rstrip")) {
        BIND("strip", "chars");
        jstr chars = {0};
        bool has_chars = has[0] && p[0].t != JV_NONE;
        if (has_chars) MN_FORWARD(want_str(e, n, "strip", p[0], &chars));
        MN_FORWARD(mn_jinja_charge(e, n, s.n / 64 + (has_chars ? prod_cost(s.n + 1, chars.n) : 0)));
        jstr r = py_strip(s, has_chars ? &chars : NULL, !jstr_eq(m, "rstrip"), !jstr_eq(m, "lstrip"));
        *out = jv_str(r.p, r.n);
        return MN_OK;
    }
    if (jstr_eq(m, "split")) {
        BIND("split", "sep", "maxsplit");
        int64_t maxsplit = -1;
        if (has[1]) MN_FORWARD(want_int(e, n, "split", p[1], &maxsplit));
        if (has[0] && p[0].t != JV_NONE) {
            jstr sep = {0};
            MN_FORWARD(want_str(e, n, "split", p[0], &sep));
            if (sep.n == 0) return mn_jinja_err(e, n, MN_EINVAL, "split: empty separator");
            return str_split(e, n, s, &sep, maxsplit, out);
        }
        return str_split(e, n, s, NULL, maxsplit, out);
    }
    if (jstr_eq(m, "startswith") || jstr_eq(m, "endswith")) {
        BIND("startswith", "prefix");
        if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "%.*s needs an argument", (int)m.n, m.p);
        bool start = jstr_eq(m, "startswith");
        const jv *cands = &p[0];
        size_t nc = 1;
        if (p[0].t == JV_LIST && p[0].u.l->is_tuple) {
            cands = p[0].u.l->v;
            nc = p[0].u.l->n;
        }
        *out = jv_bool(false);
        for (size_t i = 0; i < nc; i++) {
            jstr x = {0};
            MN_FORWARD(want_str(e, n, "startswith/endswith", cands[i], &x));
            MN_FORWARD(mn_jinja_charge(e, n, 1 + x.n / 64));
            if (x.n <= s.n && memcmp(start ? s.p : s.p + s.n - x.n, x.p, x.n) == 0) *out = jv_bool(true);
        }
        return MN_OK;
    }
    if (jstr_eq(m, "upper") || jstr_eq(m, "lower") || jstr_eq(m, "title") || jstr_eq(m, "capitalize")) {
        MN_FORWARD(no_args(e, n, "string case method", a));
        jbuf b = {0};
        if (jstr_eq(m, "title")) MN_FORWARD(py_title(e, n, s, &b));
        else if (jstr_eq(m, "capitalize")) MN_FORWARD(capitalize(e, n, s, &b));
        else MN_FORWARD(map_case(e, n, s, jstr_eq(m, "upper") ? CASE_UPPER : CASE_LOWER, &b));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    if (jstr_eq(m, "replace")) {
        BIND("replace", "old", "new", "count");
        jstr old = {0}, rep = {0};
        if (!has[0] || !has[1]) return mn_jinja_err(e, n, MN_EINVAL, "replace needs old and new strings");
        MN_FORWARD(want_str(e, n, "replace", p[0], &old));
        MN_FORWARD(want_str(e, n, "replace", p[1], &rep));
        int64_t count = -1;
        if (has[2]) MN_FORWARD(want_int(e, n, "replace", p[2], &count));
        return str_replace(e, n, s, old, rep, count, out);
    }
    if (jstr_eq(m, "join")) {
        BIND("join", "iterable");
        const jv *items = NULL;
        size_t count;
        MN_FORWARD(to_items(e, n, p[0], &items, &count));
        jbuf b = {0};
        for (size_t i = 0; i < count; i++) {
            if (items[i].t != JV_STR)
                return mn_jinja_err(e, n, MN_EINVAL, "join: sequence item %zu: expected str, got %s", i, jv_type_name(items[i].t));
            if (i) MN_FORWARD(mn_jbuf_put(e, n, &b, s.p, s.n));
            MN_FORWARD(mn_jbuf_put(e, n, &b, items[i].u.s.p, items[i].u.s.n));
        }
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    if (jstr_eq(m, "find") || jstr_eq(m, "count")) {
        BIND("find", "sub");
        jstr sub = {0};
        if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "%.*s needs an argument", (int)m.n, m.p);
        MN_FORWARD(want_str(e, n, "find/count", p[0], &sub));
        MN_FORWARD(mn_jinja_charge(e, n, (s.n + sub.n) / 64));
        if (jstr_eq(m, "find")) {
            const char *hit = find_bytes(s.p, s.n, sub.p, sub.n);
            *out = jv_int(hit ? (int64_t)mn_utf8_count(s.p, (size_t)(hit - s.p)) : -1);
            return MN_OK;
        }
        int64_t c = 0;
        if (sub.n == 0) {
            c = (int64_t)mn_utf8_count(s.p, s.n) + 1;
        } else {
            for (size_t i = 0;;) {
                const char *hit = find_bytes(s.p + i, s.n - i, sub.p, sub.n);
                if (!hit) break;
                c++;
                i = (size_t)(hit - s.p) + sub.n;
            }
        }
        *out = jv_int(c);
        return MN_OK;
    }
    if (jstr_eq(m, "removeprefix") || jstr_eq(m, "removesuffix")) {
        BIND("removeprefix", "affix");
        jstr x = {0};
        if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "%.*s needs an argument", (int)m.n, m.p);
        MN_FORWARD(want_str(e, n, "removeprefix/removesuffix", p[0], &x));
        MN_FORWARD(mn_jinja_charge(e, n, x.n / 64));
        bool prefix = jstr_eq(m, "removeprefix");
        if (x.n <= s.n && memcmp(prefix ? s.p : s.p + s.n - x.n, x.p, x.n) == 0)
            *out = prefix ? jv_str(s.p + x.n, s.n - x.n) : jv_str(s.p, s.n - x.n);
        else
            *out = jv_str(s.p, s.n);
        return MN_OK;
    }
    if (jstr_eq(m, "isspace") || jstr_eq(m, "isdigit") || jstr_eq(m, "isalpha") || jstr_eq(m, "isalnum") ||
        jstr_eq(m, "islower") || jstr_eq(m, "isupper")) {
        MN_FORWARD(no_args(e, n, "string predicate", a));
        MN_FORWARD(mn_jinja_charge(e, n, s.n / 64));
        if (jstr_eq(m, "islower") || jstr_eq(m, "isupper")) {
            *out = jv_bool(str_all_case(s, jstr_eq(m, "isupper")));
            return MN_OK;
        }
        bool ok = s.n > 0;
        for (size_t i = 0; i < s.n && ok;) {
            uint32_t cp;
            i += mn_utf8_decode(s.p + i, s.n - i, &cp);
            utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
            bool digit = c == UTF8PROC_CATEGORY_ND;
            bool alpha = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
            if (jstr_eq(m, "isspace")) ok = mn_py_isspace(cp);
            else if (jstr_eq(m, "isdigit")) ok = digit;
            else if (jstr_eq(m, "isalpha")) ok = alpha;
            else ok = digit || alpha;
        }
        *out = jv_bool(ok);
        return MN_OK;
    }
    *handled = false;
    return MN_OK;
}

static mn_status dict_method(jev *e, const jnode *n, const jdict *d, jstr m, const jargs *a, jv *out, bool *handled) {
    *handled = true;
    if (jstr_eq(m, "get")) {
        BIND("get", "key", "default");
        if (!has[0]) return mn_jinja_err(e, n, MN_EINVAL, "get needs a key");
        MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(d, p[0])));
        jv *v = mn_jdict_get(d, p[0]);
        *out = v ? *v : has[1] ? p[1] : jv_none();
        return MN_OK;
    }
    if (jstr_eq(m, "items") || jstr_eq(m, "keys") || jstr_eq(m, "values")) {
        MN_FORWARD(no_args(e, n, "items/keys/values", a));
        MN_FORWARD(mn_jinja_charge(e, n, d->n));
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, d->n, &l));
        for (size_t i = 0; i < d->n; i++) {
            if (jstr_eq(m, "keys")) {
                l->v[i] = d->k[i];
            } else if (jstr_eq(m, "values")) {
                l->v[i] = d->v[i];
            } else {
                jlist *pair = NULL;
                MN_FORWARD(mn_jlist_new(e, n, 2, &pair));
                pair->is_tuple = true;
                pair->v[0] = d->k[i];
                pair->v[1] = d->v[i];
                l->v[i] = list_value(pair);
            }
        }
        *out = list_value(l);
        return MN_OK;
    }
    *handled = false;
    return MN_OK;
}

static bool is_mutator(jstr m) {
    static const char *const names[] = {"append", "extend", "insert", "pop", "remove", "clear", "update",
                                        "setdefault", "popitem", "sort", "reverse", NULL};
    for (size_t i = 0; names[i]; i++)
        if (jstr_eq(m, names[i])) return true;
    return false;
}

mn_status mn_jinja_method(jev *e, const jnode *n, jv obj, jstr m, const jargs *a, jv *out, bool *handled) {
    *handled = false;
    switch (obj.t) {
    case JV_STR: return str_method(e, n, obj.u.s, m, a, out, handled);
    case JV_DICT:
        MN_FORWARD(dict_method(e, n, obj.u.d, m, a, out, handled));
        if (!*handled && is_mutator(m) && !mn_jdict_get_str(obj.u.d, m.p, m.n))
            return mn_jinja_err(e, n, MN_EINVAL, "dict.%.*s(): values cannot be modified in a chat template (sandbox)", (int)m.n, m.p);
        return MN_OK;
    case JV_LIST:
        if (is_mutator(m))
            return mn_jinja_err(e, n, MN_EINVAL, "list.%.*s(): values cannot be modified in a chat template (sandbox)", (int)m.n, m.p);
        if (jstr_eq(m, "count") || jstr_eq(m, "index")) {
            *handled = true;
            if (a->n != 1 || a->names[0].p) return mn_jinja_err(e, n, MN_EINVAL, "list.%.*s takes one argument", (int)m.n, m.p);
            int64_t count = 0;
            for (size_t i = 0; i < obj.u.l->n; i++) {
                bool eq;
                MN_FORWARD(mn_jv_eq(e, n, obj.u.l->v[i], a->v[0], &eq));
                if (eq && jstr_eq(m, "index")) {
                    *out = jv_int((int64_t)i);
                    return MN_OK;
                }
                count += eq;
            }
            if (jstr_eq(m, "index")) return mn_jinja_err(e, n, MN_EINVAL, "list.index(x): x not in list");
            *out = jv_int(count);
            return MN_OK;
        }
        return MN_OK;
    case JV_LOOP:
        if (jstr_eq(m, "cycle")) {
            *handled = true;
            if (a->n == 0) return mn_jinja_err(e, n, MN_EINVAL, "loop.cycle needs at least one value");
            *out = a->v[obj.u.loop->index0 % (int64_t)a->n];
            return MN_OK;
        }
        return MN_OK;
    default: return MN_OK;
    }
}

/* ---------------------------------------------------------------- global functions ----------- */

bool mn_jinja_func_lookup(jstr name, jv *out) {
    static const struct {
        const char *name;
        jfunc fn;
    } funcs[] = {{"range", JF_RANGE},
                 {"namespace", JF_NAMESPACE},
                 {"raise_exception", JF_RAISE_EXCEPTION},
                 {"strftime_now", JF_STRFTIME_NOW},
                 {"dict", JF_DICT}};
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        if (jstr_eq(name, funcs[i].name)) {
            *out = (jv){.t = JV_FUNC, .u.fn = (int)funcs[i].fn};
            return true;
        }
    return false;
}

/* strftime with a whitelist of conversions (the format comes from the template). */
static mn_status strftime_now(jev *e, const jnode *n, jstr fmt, jv *out) {
    static const char allowed[] = "aAbBcCdDeFgGhHIjmMnpRStTuUVwWxXyYzZ%";
    if (fmt.n > 200) return mn_jinja_err(e, n, MN_EINVAL, "strftime_now: format longer than 200 bytes");
    char f[256];
    size_t o = 0;
    for (size_t i = 0; i < fmt.n; i++) {
        char c = fmt.p[i];
        if (c == '\0') return mn_jinja_err(e, n, MN_EINVAL, "strftime_now: NUL in format");
        f[o++] = c;
        if (c != '%') continue;
        if (++i >= fmt.n) return mn_jinja_err(e, n, MN_EINVAL, "strftime_now: format ends with '%%'");
        c = fmt.p[i];
        if (c == '-' || c == '_' || c == '0' || c == '^' || c == '#') { /* glibc flags */
            f[o++] = c;
            if (++i >= fmt.n) return mn_jinja_err(e, n, MN_EINVAL, "strftime_now: incomplete conversion");
            c = fmt.p[i];
        }
        if (!strchr(allowed, c) || c == '\0')
            return mn_jinja_err(e, n, MN_EUNSUPPORTED, "strftime_now: conversion '%%%c' is not supported", c);
        f[o++] = c;
    }
    f[o] = '\0';
    time_t now = e->now ? (time_t)e->now : time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) return mn_jinja_err(e, n, MN_EINVAL, "strftime_now: time out of range");
    char buf[1024];
    size_t len = o ? strftime(buf, sizeof buf, f, &tm) : 0;
    jbuf b = {0};
    MN_FORWARD(mn_jbuf_put(e, n, &b, buf, len));
    *out = mn_jbuf_value(&b);
    return MN_OK;
}

mn_status mn_jinja_call_func(jev *e, const jnode *n, int fn, const jargs *a, jv *out) {
    switch ((jfunc)fn) {
    case JF_RANGE: {
        int64_t v[3] = {0, 0, 1};
        if (a->n < 1 || a->n > 3) return mn_jinja_err(e, n, MN_EINVAL, "range expects 1 to 3 arguments, got %zu", a->n);
        for (size_t i = 0; i < a->n; i++) {
            if (a->names[i].p) return mn_jinja_err(e, n, MN_EINVAL, "range takes no keyword arguments");
            MN_FORWARD(want_int(e, n, "range", a->v[i], &v[i]));
        }
        jrange *r = NULL;
        MN_FORWARD(mn_jinja_alloc(e, n, 1, sizeof *r, (void **)&r));
        if (a->n == 1) *r = (jrange){0, v[0], 1};
        else *r = (jrange){v[0], v[1], a->n == 3 ? v[2] : 1};
        if (r->step == 0) return mn_jinja_err(e, n, MN_EINVAL, "range() arg 3 must not be zero");
        jv rv = {.t = JV_RANGE, .u.r = r};
        int64_t len = 0;
        MN_FORWARD(mn_jv_length(e, n, rv, &len));
        if (len > MN_JINJA_RANGE_MAX)
            return mn_jinja_err(e, n, MN_EFULL, "range too big: %" PRId64 " items (the sandbox allows %d)", len, MN_JINJA_RANGE_MAX);
        *out = rv;
        return MN_OK;
    }
    case JF_NAMESPACE:
    case JF_DICT: {
        jdict *d = NULL;
        MN_FORWARD(mn_jdict_new(e, n, a->n, &d));
        for (size_t i = 0; i < a->n; i++) {
            if (!a->names[i].p) {
                if (a->v[i].t != JV_DICT && a->v[i].t != JV_NS)
                    return mn_jinja_err(e, n, MN_EINVAL, "%s: positional arguments must be mappings", fn == JF_DICT ? "dict" : "namespace");
                for (size_t k = 0; k < a->v[i].u.d->n; k++)
                    MN_FORWARD(mn_jdict_set(e, n, d, a->v[i].u.d->k[k], a->v[i].u.d->v[k]));
                continue;
            }
            MN_FORWARD(mn_jdict_set(e, n, d, jv_str(a->names[i].p, a->names[i].n), a->v[i]));
        }
        *out = (jv){.t = fn == JF_DICT ? JV_DICT : JV_NS, .u.d = d};
        return MN_OK;
    }
    case JF_RAISE_EXCEPTION: {
        jstr msg = {"", 0};
        if (a->n > 0) MN_FORWARD(mn_jv_to_str(e, n, a->v[0], &msg));
        return mn_jinja_err(e, n, MN_EINVAL, "raise_exception: %.*s", (int)(msg.n > 400 ? 400 : msg.n), msg.p);
    }
    case JF_STRFTIME_NOW: {
        if (a->n != 1 || a->names[0].p) return mn_jinja_err(e, n, MN_EINVAL, "strftime_now expects one format argument");
        jstr fmt = {0};
        MN_FORWARD(want_str(e, n, "strftime_now", a->v[0], &fmt));
        return strftime_now(e, n, fmt, out);
    }
    }
    return mn_jinja_err(e, n, MN_EINTERNAL, "bad function id %d", fn);
}
