/*
 * jinja_value.c: the value model of the Jinja interpreter: the arena, UTF-8 helpers, Python
 * semantics of values (truth, ==, ordering, str(), repr()), transformers' tojson, conversion from
 * the JSON context, and item/attribute access.
 *
 * Values follow Python because chat templates are written against Jinja running on Python: a
 * list prints as "['a', 1, None]", a float as its shortest round-trip repr ("0.1", "1e+16"),
 * 1 == 1.0 == True, 'a' < 1 is an error, a string's length counts code points. Strings are bytes
 * treated as UTF-8; a byte that does not decode counts as one character of its own, so invalid
 * input never fails, it just behaves as Latin-1 would for those bytes.
 *
 * Every walk over a value (equality, ordering, repr, tojson, conversion from JSON) charges steps
 * per element and caps its recursion depth: values can be nested DAGs built by a template (a list
 * of the same list twice, sixty times over), and a namespace can contain itself, so neither the
 * time nor the C stack of a walk may depend on trust in the value.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/jinja_internal.h"

#define VALUE_DEPTH_MAX 200

/* ---------------------------------------------------------------- arena ---------------------- */

struct jarena_chunk {
    jarena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

void jarena_init(jarena *a, size_t limit) {
    a->head = NULL;
    a->total = 0;
    a->limit = limit;
    a->over_budget = false;
}

void jarena_free(jarena *a) {
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *jarena_alloc(jarena *a, size_t n) {
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX - align) return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0) n = align;
    jarena_chunk *c = a->head;
    if (c && c->cap - c->used >= n) {
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
    }
    /* chunks grow with the arena: 4 KiB while small, then 256 KiB; big requests get their own */
    size_t want = a->total < (64u << 10) ? (4u << 10) : (256u << 10);
    if (want < n) want = n;
    if (want > SIZE_MAX - sizeof(jarena_chunk)) return NULL;
    if (a->limit && (want > a->limit || a->total > a->limit - want)) {
        a->over_budget = true;
        return NULL;
    }
    jarena_chunk *nc = malloc(sizeof *nc + want);
    if (!nc) {
        a->over_budget = false;
        return NULL;
    }
    nc->cap = want;
    nc->used = n;
    a->total += want;
    /* keep the roomier chunk at the head so a big request does not waste the current one */
    if (c && c->cap - c->used > want - n) {
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return nc->data;
}

void *jarena_alloc_array(jarena *a, size_t n, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) return NULL;
    return jarena_alloc(a, bytes);
}

/* ---------------------------------------------------------------- errors and budgets --------- */

mn_status mn_jinja_err(jev *e, const jnode *n, mn_status st, const char *fmt, ...) {
    if (!e->err) return st;
    char msg[sizeof e->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mn_jinja_fail(e->err, st, e->t->src, e->t->src_len, n ? n->pos : 0, "%s", msg);
}

static const char *obj_desc(int t) {
    switch (t) {
    case JV_DICT: return "'dict object'";
    case JV_LIST: return "'list object'";
    case JV_STR: return "'str object'";
    case JV_NONE: return "None";
    case JV_INT: return "'int object'";
    case JV_FLOAT: return "'float object'";
    case JV_BOOL: return "'bool object'";
    case JV_NS: return "'Namespace object'";
    case JV_RANGE: return "'range object'";
    case JV_LOOP: return "'LoopContext object'";
    default: return "'object'";
    }
}

mn_status mn_jinja_err_undef(jev *e, const jnode *n, jv v) {
    switch (v.why) {
    case JU_NAME:
        return mn_jinja_err(e, n, MN_EINVAL, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
    case JU_ATTR:
    case JU_ITEM_STR:
        return mn_jinja_err(e, n, MN_EINVAL, "%s has no attribute '%.*s'", obj_desc(v.obj), (int)v.u.s.n, v.u.s.p);
    case JU_ITEM_INT:
        return mn_jinja_err(e, n, MN_EINVAL, "%s has no element %" PRId64, obj_desc(v.obj), v.u.i);
    default: return mn_jinja_err(e, n, MN_EINVAL, "undefined value");
    }
}

mn_status mn_jinja_charge(jev *e, const jnode *n, uint64_t cost) {
    e->steps += cost;
    if (e->steps > e->steps_max)
        return mn_jinja_err(e, n, MN_EFULL, "evaluation step budget exhausted (%" PRIu64 " steps)", e->steps_max);
    return MN_OK;
}

mn_status mn_jinja_alloc(jev *e, const jnode *n, size_t count, size_t size, void **out) {
    void *p = jarena_alloc_array(&e->arena, count, size);
    if (!p) {
        if (e->arena.over_budget)
            return mn_jinja_err(e, n, MN_EFULL, "memory budget exhausted (%zu bytes)", e->arena.limit);
        return mn_jinja_err(e, n, MN_ENOMEM, "out of memory");
    }
    *out = p;
    return MN_OK;
}

/* ---------------------------------------------------------------- buffers -------------------- */

mn_status mn_jbuf_put(jev *e, const jnode *n, jbuf *b, const char *p, size_t len) {
    if (len == 0) return MN_OK;
    MN_FORWARD(mn_jinja_charge(e, n, len / 64));
    if (len > e->out_max || b->n > e->out_max - len)
        return mn_jinja_err(e, n, MN_ETOOBIG, "string longer than the output limit (%zu bytes)", e->out_max);
    if (b->cap - b->n < len + 1) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < len + 1) cap *= 2;
        char *np = NULL;
        MN_FORWARD(mn_jinja_alloc(e, n, cap, 1, (void **)&np));
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, len);
    b->n += len;
    b->p[b->n] = '\0';
    return MN_OK;
}

mn_status mn_jbuf_putc(jev *e, const jnode *n, jbuf *b, char c) { return mn_jbuf_put(e, n, b, &c, 1); }

mn_status mn_jbuf_printf(jev *e, const jnode *n, jbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return mn_jinja_err(e, n, MN_EINTERNAL, "formatting failed");
    if ((size_t)k >= sizeof tmp) k = (int)sizeof tmp - 1;
    return mn_jbuf_put(e, n, b, tmp, (size_t)k);
}

/* ---------------------------------------------------------------- UTF-8 ---------------------- */

size_t mn_utf8_decode(const char *p, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = c;
        return 1;
    }
    if (len > n) {
        *cp = c;
        return 1;
    }
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = c;
        return 1;
    }
    *cp = v;
    return len;
}

size_t mn_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) cp = 0xFFFD;
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t mn_utf8_count(const char *p, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)p[i] < 0x80) {
            i++;
        } else {
            uint32_t cp;
            i += mn_utf8_decode(p + i, n - i, &cp);
        }
        count++;
    }
    return count;
}

bool mn_py_isspace(uint32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---------------------------------------------------------------- basics --------------------- */

const char *jv_type_name(int t) {
    switch (t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_RANGE: return "range";
    case JV_FUNC: return "function";
    case JV_MACRO: return "Macro";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

static int64_t range_len(const jrange *r) {
    if (r->step > 0) return r->start < r->stop ? (int64_t)(((__int128)r->stop - r->start - 1) / r->step + 1) : 0;
    return r->start > r->stop ? (int64_t)(((__int128)r->start - r->stop - 1) / -(__int128)r->step + 1) : 0;
}

bool mn_jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL:
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    case JV_RANGE: return range_len(v.u.r) > 0;
    default: return true;
    }
}

mn_status mn_jdict_new(jev *e, const jnode *n, size_t cap, jdict **out) {
    jdict *d = NULL;
    MN_FORWARD(mn_jinja_alloc(e, n, 1, sizeof *d, (void **)&d));
    d->n = 0;
    d->cap = cap;
    d->k = d->v = NULL;
    if (cap) {
        MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *d->k, (void **)&d->k));
        MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *d->v, (void **)&d->v));
    }
    *out = d;
    return MN_OK;
}

jv *mn_jdict_get_str(const jdict *d, const char *k, size_t kn) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == kn && memcmp(d->k[i].u.s.p, k, kn) == 0) return &d->v[i];
    return NULL;
}

/* Key equality for dicts: Python hashing makes 1, 1.0 and True the same key. */
static bool key_equal(jv a, jv b) {
    if (a.t == JV_STR || b.t == JV_STR)
        return a.t == b.t && a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    if (jv_is_num(a) && jv_is_num(b)) {
        double x = a.t == JV_FLOAT ? a.u.f : (double)a.u.i, y = b.t == JV_FLOAT ? b.u.f : (double)b.u.i;
        return x == y;
    }
    if (a.t != b.t) return false;
    return a.t == JV_NONE; /* other key types (lists, dicts) are unhashable in Python */
}

jv *mn_jdict_get(const jdict *d, jv k) {
    if (k.t == JV_STR) return mn_jdict_get_str(d, k.u.s.p, k.u.s.n);
    for (size_t i = 0; i < d->n; i++)
        if (key_equal(d->k[i], k)) return &d->v[i];
    return NULL;
}

uint64_t mn_jdict_lookup_cost(const jdict *d, jv k) {
    /* a linear scan: one step per 16 keys, plus the bytes a key comparison may read */
    uint64_t kn = k.t == JV_STR ? k.u.s.n : 8, bytes;
    if (__builtin_mul_overflow((uint64_t)d->n, kn, &bytes)) return UINT64_MAX / 2;
    return 1 + d->n / 16 + bytes / 64;
}

mn_status mn_jdict_set(jev *e, const jnode *n, jdict *d, jv k, jv v) {
    MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(d, k)));
    jv *slot = mn_jdict_get(d, k);
    if (slot) {
        *slot = v;
        return MN_OK;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *nk = NULL, *nv = NULL;
        MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *nk, (void **)&nk));
        MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *nv, (void **)&nv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
    return MN_OK;
}

mn_status mn_jlist_new(jev *e, const jnode *n, size_t len, jlist **out) {
    jlist *l = NULL;
    MN_FORWARD(mn_jinja_alloc(e, n, 1, sizeof *l, (void **)&l));
    l->n = len;
    l->is_tuple = false;
    l->v = NULL;
    if (len) MN_FORWARD(mn_jinja_alloc(e, n, len, sizeof *l->v, (void **)&l->v));
    *out = l;
    return MN_OK;
}

/* ---------------------------------------------------------------- equality and order --------- */

static double num_of(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

static bool num_equal(jv a, jv b) {
    if (a.t != JV_FLOAT && b.t != JV_FLOAT) return a.u.i == b.u.i;
    return num_of(a) == num_of(b);
}

static mn_status eq_rec(jev *e, const jnode *n, jv a, jv b, int depth, bool *out);

static mn_status eq_rec(jev *e, const jnode *n, jv a, jv b, int depth, bool *out) {
    MN_FORWARD(mn_jinja_charge(e, n, 1));
    if (depth > VALUE_DEPTH_MAX) return mn_jinja_err(e, n, MN_EFULL, "values nested too deeply to compare");
    if (jv_is_num(a) && jv_is_num(b)) {
        *out = num_equal(a, b);
        return MN_OK;
    }
    *out = false;
    if (a.t != b.t) return MN_OK;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: *out = true; return MN_OK;
    case JV_STR:
        if (a.u.s.n != b.u.s.n) return MN_OK;
        MN_FORWARD(mn_jinja_charge(e, n, a.u.s.n / 64));
        *out = memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
        return MN_OK;
    case JV_LIST:
        if (a.u.l == b.u.l) {
            *out = true;
            return MN_OK;
        }
        if (a.u.l->n != b.u.l->n || a.u.l->is_tuple != b.u.l->is_tuple) return MN_OK;
        for (size_t i = 0; i < a.u.l->n; i++) {
            bool eq;
            MN_FORWARD(eq_rec(e, n, a.u.l->v[i], b.u.l->v[i], depth + 1, &eq));
            if (!eq) return MN_OK;
        }
        *out = true;
        return MN_OK;
    case JV_DICT:
        if (a.u.d == b.u.d) {
            *out = true;
            return MN_OK;
        }
        if (a.u.d->n != b.u.d->n) return MN_OK;
        for (size_t i = 0; i < a.u.d->n; i++) {
            MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(b.u.d, a.u.d->k[i])));
            jv *bv = mn_jdict_get(b.u.d, a.u.d->k[i]);
            if (!bv) return MN_OK;
            bool eq;
            MN_FORWARD(eq_rec(e, n, a.u.d->v[i], *bv, depth + 1, &eq));
            if (!eq) return MN_OK;
        }
        *out = true;
        return MN_OK;
    case JV_RANGE: {
        int64_t la = range_len(a.u.r), lb = range_len(b.u.r);
        *out = la == lb && (la == 0 || (a.u.r->start == b.u.r->start && (la == 1 || a.u.r->step == b.u.r->step)));
        return MN_OK;
    }
    case JV_NS: *out = a.u.d == b.u.d; return MN_OK;
    case JV_FUNC: *out = a.u.fn == b.u.fn; return MN_OK;
    case JV_MACRO: *out = a.u.m == b.u.m; return MN_OK;
    case JV_LOOP: *out = a.u.loop == b.u.loop; return MN_OK;
    }
    return MN_OK;
}

mn_status mn_jv_eq(jev *e, const jnode *n, jv a, jv b, bool *out) { return eq_rec(e, n, a, b, 0, out); }

static int fold(uint32_t cp);

static int str_compare(jstr a, jstr b, bool fold_case) {
    if (!fold_case) {
        size_t m = a.n < b.n ? a.n : b.n;
        int c = memcmp(a.p, b.p, m);
        if (c) return c < 0 ? -1 : 1;
        return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
    }
    size_t i = 0, j = 0;
    while (i < a.n && j < b.n) {
        uint32_t x, y;
        i += mn_utf8_decode(a.p + i, a.n - i, &x);
        j += mn_utf8_decode(b.p + j, b.n - j, &y);
        int fx = fold(x), fy = fold(y);
        if (fx != fy) return fx < fy ? -1 : 1;
    }
    return (i < a.n) - (j < b.n);
}

static mn_status cmp_rec(jev *e, const jnode *n, jv a, jv b, bool fold_case, int depth, int *out) {
    MN_FORWARD(mn_jinja_charge(e, n, 1));
    if (depth > VALUE_DEPTH_MAX) return mn_jinja_err(e, n, MN_EFULL, "values nested too deeply to compare");
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            *out = a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
        } else {
            double x = num_of(a), y = num_of(b);
            *out = x < y ? -1 : x > y;
        }
        return MN_OK;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        MN_FORWARD(mn_jinja_charge(e, n, (a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n) / (fold_case ? 8 : 64)));
        *out = str_compare(a.u.s, b.u.s, fold_case);
        return MN_OK;
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple) {
        size_t m = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < m; i++) {
            int c;
            MN_FORWARD(cmp_rec(e, n, a.u.l->v[i], b.u.l->v[i], fold_case, depth + 1, &c));
            if (c) {
                *out = c;
                return MN_OK;
            }
        }
        *out = (a.u.l->n > m) - (b.u.l->n > m);
        return MN_OK;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) return mn_jinja_err_undef(e, n, a.t == JV_UNDEF ? a : b);
    return mn_jinja_err(e, n, MN_EINVAL, "cannot order '%s' and '%s' values", jv_type_name(a.t), jv_type_name(b.t));
}

mn_status mn_jv_compare(jev *e, const jnode *n, jv a, jv b, bool fold_case, int *out) {
    return cmp_rec(e, n, a, b, fold_case, 0, out);
}

/* ---------------------------------------------------------------- case folding --------------- */

static int fold(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? (int)(cp + 32) : (int)cp;
    return (int)utf8proc_tolower((utf8proc_int32_t)cp);
}

/* ---------------------------------------------------------------- str() and repr() ----------- */

int mn_jinja_format_float(double f, char *buf, size_t cap) {
    if (isnan(f)) return snprintf(buf, cap, "nan");
    if (isinf(f)) return snprintf(buf, cap, f < 0 ? "-inf" : "inf");
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    if (prec > 17) prec = 17;
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0;
    const char *s = tmp;
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp10 + 1)
                for (int i = exp10 + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp10 - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    return snprintf(buf, cap, "%s", out);
}

static mn_status put_scalar(jev *e, const jnode *n, jbuf *b, jv v, bool *done) {
    char tmp[64];
    *done = true;
    switch (v.t) {
    case JV_UNDEF: return MN_OK;
    case JV_NONE: return mn_jbuf_put(e, n, b, "None", 4);
    case JV_BOOL: return v.u.i ? mn_jbuf_put(e, n, b, "True", 4) : mn_jbuf_put(e, n, b, "False", 5);
    case JV_INT: return mn_jbuf_printf(e, n, b, "%" PRId64, v.u.i);
    case JV_FLOAT: {
        int k = mn_jinja_format_float(v.u.f, tmp, sizeof tmp);
        return mn_jbuf_put(e, n, b, tmp, (size_t)k);
    }
    case JV_STR: return mn_jbuf_put(e, n, b, v.u.s.p, v.u.s.n);
    case JV_FUNC: return mn_jbuf_printf(e, n, b, "<built-in function>");
    case JV_MACRO: return mn_jbuf_printf(e, n, b, "<Macro '%.*s'>", (int)v.u.m->name.n, v.u.m->name.p);
    case JV_LOOP: return mn_jbuf_printf(e, n, b, "<LoopContext %" PRId64 "/%" PRId64 ">", v.u.loop->index0 + 1, v.u.loop->length);
    case JV_RANGE:
        if (v.u.r->step == 1) return mn_jbuf_printf(e, n, b, "range(%" PRId64 ", %" PRId64 ")", v.u.r->start, v.u.r->stop);
        return mn_jbuf_printf(e, n, b, "range(%" PRId64 ", %" PRId64 ", %" PRId64 ")", v.u.r->start, v.u.r->stop, v.u.r->step);
    default: *done = false; return MN_OK;
    }
}

static mn_status put_str_repr(jev *e, const jnode *n, jbuf *b, jstr s) {
    bool has_sq = memchr(s.p, '\'', s.n) != NULL, has_dq = memchr(s.p, '"', s.n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    MN_FORWARD(mn_jbuf_putc(e, n, b, q));
    size_t run = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        const char *esc = NULL;
        char hex[8];
        if (c == '\\') esc = "\\\\";
        else if (c == (unsigned char)q) esc = q == '\'' ? "\\'" : "\\\"";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(hex, sizeof hex, "\\x%02x", c);
            esc = hex;
        }
        if (!esc) continue;
        MN_FORWARD(mn_jbuf_put(e, n, b, s.p + run, i - run));
        MN_FORWARD(mn_jbuf_put(e, n, b, esc, strlen(esc)));
        run = i + 1;
    }
    MN_FORWARD(mn_jbuf_put(e, n, b, s.p + run, s.n - run));
    return mn_jbuf_putc(e, n, b, q);
}

mn_status mn_jv_put_repr(jev *e, const jnode *n, jbuf *b, jv v, int depth) {
    MN_FORWARD(mn_jinja_charge(e, n, 1));
    if (depth > VALUE_DEPTH_MAX) return mn_jinja_err(e, n, MN_EFULL, "value nested too deeply to print");
    if (v.t == JV_STR) return put_str_repr(e, n, b, v.u.s);
    if (v.t == JV_UNDEF) return mn_jbuf_put(e, n, b, "Undefined", 9);
    bool done;
    MN_FORWARD(put_scalar(e, n, b, v, &done));
    if (done) return MN_OK;
    if (v.t == JV_LIST) {
        const jlist *l = v.u.l;
        MN_FORWARD(mn_jbuf_putc(e, n, b, l->is_tuple ? '(' : '['));
        for (size_t i = 0; i < l->n; i++) {
            if (i) MN_FORWARD(mn_jbuf_put(e, n, b, ", ", 2));
            MN_FORWARD(mn_jv_put_repr(e, n, b, l->v[i], depth + 1));
        }
        if (l->is_tuple && l->n == 1) MN_FORWARD(mn_jbuf_putc(e, n, b, ','));
        return mn_jbuf_putc(e, n, b, l->is_tuple ? ')' : ']');
    }
    /* dict or namespace */
    const jdict *d = v.u.d;
    if (v.t == JV_NS) MN_FORWARD(mn_jbuf_put(e, n, b, "<Namespace ", 11));
    MN_FORWARD(mn_jbuf_putc(e, n, b, '{'));
    for (size_t i = 0; i < d->n; i++) {
        if (i) MN_FORWARD(mn_jbuf_put(e, n, b, ", ", 2));
        MN_FORWARD(mn_jv_put_repr(e, n, b, d->k[i], depth + 1));
        MN_FORWARD(mn_jbuf_put(e, n, b, ": ", 2));
        MN_FORWARD(mn_jv_put_repr(e, n, b, d->v[i], depth + 1));
    }
    MN_FORWARD(mn_jbuf_putc(e, n, b, '}'));
    if (v.t == JV_NS) MN_FORWARD(mn_jbuf_putc(e, n, b, '>'));
    return MN_OK;
}

mn_status mn_jv_put_str(jev *e, const jnode *n, jbuf *b, jv v) {
    bool done;
    MN_FORWARD(put_scalar(e, n, b, v, &done));
    if (done) return MN_OK;
    return mn_jv_put_repr(e, n, b, v, 0);
}

mn_status mn_jv_to_str(jev *e, const jnode *n, jv v, jstr *out) {
    if (v.t == JV_STR) {
        *out = v.u.s;
        return MN_OK;
    }
    if (v.t == JV_UNDEF) {
        *out = (jstr){"", 0};
        return MN_OK;
    }
    jbuf b = {0};
    MN_FORWARD(mn_jv_put_str(e, n, &b, v));
    *out = (jstr){b.p ? b.p : "", b.n};
    return MN_OK;
}

/* ---------------------------------------------------------------- tojson --------------------- */

static mn_status put_json_string(jev *e, const jnode *n, jbuf *b, jstr s) {
    MN_FORWARD(mn_jbuf_putc(e, n, b, '"'));
    size_t run = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        char esc[8];
        switch (c) {
        case '"': strcpy(esc, "\\\""); break;
        case '\\': strcpy(esc, "\\\\"); break;
        case '\n': strcpy(esc, "\\n"); break;
        case '\r': strcpy(esc, "\\r"); break;
        case '\t': strcpy(esc, "\\t"); break;
        case '\b': strcpy(esc, "\\b"); break;
        case '\f': strcpy(esc, "\\f"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c);
        }
        MN_FORWARD(mn_jbuf_put(e, n, b, s.p + run, i - run));
        MN_FORWARD(mn_jbuf_put(e, n, b, esc, strlen(esc)));
        run = i + 1;
    }
    MN_FORWARD(mn_jbuf_put(e, n, b, s.p + run, s.n - run));
    return mn_jbuf_putc(e, n, b, '"');
}

static mn_status json_newline(jev *e, const jnode *n, jbuf *b, const jjson_opts *o, int level) {
    MN_FORWARD(mn_jbuf_putc(e, n, b, '\n'));
    for (int i = 0; i < level; i++) MN_FORWARD(mn_jbuf_put(e, n, b, o->indent->p, o->indent->n));
    return MN_OK;
}

/* json.dumps converts non-string keys: True -> "true", None -> "null", 1 -> "1". */
static mn_status put_json_key(jev *e, const jnode *n, jbuf *b, jv k) {
    switch (k.t) {
    case JV_STR: return put_json_string(e, n, b, k.u.s);
    case JV_NONE: return mn_jbuf_put(e, n, b, "\"null\"", 6);
    case JV_BOOL: return k.u.i ? mn_jbuf_put(e, n, b, "\"true\"", 6) : mn_jbuf_put(e, n, b, "\"false\"", 7);
    case JV_INT: return mn_jbuf_printf(e, n, b, "\"%" PRId64 "\"", k.u.i);
    case JV_FLOAT: {
        char tmp[64];
        mn_jinja_format_float(k.u.f, tmp, sizeof tmp);
        return mn_jbuf_printf(e, n, b, "\"%s\"", tmp);
    }
    default: return mn_jinja_err(e, n, MN_EINVAL, "tojson: keys must be str, int, float, bool or None, not %s", jv_type_name(k.t));
    }
}

mn_status mn_jv_put_json(jev *e, const jnode *n, jbuf *b, jv v, const jjson_opts *o, int level) {
    MN_FORWARD(mn_jinja_charge(e, n, 1));
    if (level > VALUE_DEPTH_MAX) return mn_jinja_err(e, n, MN_EFULL, "tojson: value nested too deeply");
    jstr item_sep = o->item_sep.p ? o->item_sep : o->indent ? (jstr){",", 1} : (jstr){", ", 2};
    jstr key_sep = o->key_sep.p ? o->key_sep : (jstr){": ", 2};
    switch (v.t) {
    case JV_NONE: return mn_jbuf_put(e, n, b, "null", 4);
    case JV_BOOL: return v.u.i ? mn_jbuf_put(e, n, b, "true", 4) : mn_jbuf_put(e, n, b, "false", 5);
    case JV_INT: return mn_jbuf_printf(e, n, b, "%" PRId64, v.u.i);
    case JV_FLOAT: {
        if (isnan(v.u.f)) return mn_jbuf_put(e, n, b, "NaN", 3);
        if (isinf(v.u.f)) return v.u.f < 0 ? mn_jbuf_put(e, n, b, "-Infinity", 9) : mn_jbuf_put(e, n, b, "Infinity", 8);
        char tmp[64];
        int k = mn_jinja_format_float(v.u.f, tmp, sizeof tmp);
        return mn_jbuf_put(e, n, b, tmp, (size_t)k);
    }
    case JV_STR: return put_json_string(e, n, b, v.u.s);
    case JV_LIST: {
        const jlist *l = v.u.l;
        if (l->n == 0) return mn_jbuf_put(e, n, b, "[]", 2);
        MN_FORWARD(mn_jbuf_putc(e, n, b, '['));
        for (size_t i = 0; i < l->n; i++) {
            if (i) MN_FORWARD(mn_jbuf_put(e, n, b, item_sep.p, item_sep.n));
            if (o->indent) MN_FORWARD(json_newline(e, n, b, o, level + 1));
            MN_FORWARD(mn_jv_put_json(e, n, b, l->v[i], o, level + 1));
        }
        if (o->indent) MN_FORWARD(json_newline(e, n, b, o, level));
        return mn_jbuf_putc(e, n, b, ']');
    }
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (d->n == 0) return mn_jbuf_put(e, n, b, "{}", 2);
        /* sort_keys: an index order by key (keys must then be mutually orderable) */
        size_t *order = NULL;
        if (o->sort_keys && d->n > 1) {
            MN_FORWARD(mn_jinja_alloc(e, n, d->n, sizeof *order, (void **)&order));
            for (size_t i = 0; i < d->n; i++) order[i] = i;
            for (size_t i = 1; i < d->n; i++) { /* insertion sort: stable, dicts are small */
                size_t x = order[i], j = i;
                while (j > 0) {
                    int c;
                    MN_FORWARD(mn_jv_compare(e, n, d->k[order[j - 1]], d->k[x], false, &c));
                    if (c <= 0) break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        MN_FORWARD(mn_jbuf_putc(e, n, b, '{'));
        for (size_t i = 0; i < d->n; i++) {
            size_t k = order ? order[i] : i;
            if (i) MN_FORWARD(mn_jbuf_put(e, n, b, item_sep.p, item_sep.n));
            if (o->indent) MN_FORWARD(json_newline(e, n, b, o, level + 1));
            MN_FORWARD(put_json_key(e, n, b, d->k[k]));
            MN_FORWARD(mn_jbuf_put(e, n, b, key_sep.p, key_sep.n));
            MN_FORWARD(mn_jv_put_json(e, n, b, d->v[k], o, level + 1));
        }
        if (o->indent) MN_FORWARD(json_newline(e, n, b, o, level));
        return mn_jbuf_putc(e, n, b, '}');
    }
    case JV_UNDEF: return mn_jinja_err(e, n, MN_EINVAL, "tojson: an undefined value is not JSON serializable");
    default: return mn_jinja_err(e, n, MN_EINVAL, "tojson: a %s is not JSON serializable", jv_type_name(v.t));
    }
}

/* ---------------------------------------------------------------- JSON context --------------- */

mn_status mn_jv_from_json(jev *e, const cJSON *j, jv *out, int depth) {
    MN_FORWARD(mn_jinja_charge(e, NULL, 1));
    if (depth > VALUE_DEPTH_MAX) return mn_error_set(e->err, MN_EINVAL, "context JSON nested deeper than %d", VALUE_DEPTH_MAX);
    if (cJSON_IsNull(j) || !j) {
        *out = jv_none();
    } else if (cJSON_IsBool(j)) {
        *out = jv_bool(cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
            *out = jv_int((int64_t)d);
        else
            *out = jv_float(d);
    } else if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = jv_str(s, strlen(s));
    } else if (cJSON_IsArray(j)) {
        size_t count = 0;
        for (const cJSON *c = j->child; c; c = c->next) count++;
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, NULL, count, &l));
        size_t i = 0;
        for (const cJSON *c = j->child; c; c = c->next) MN_FORWARD(mn_jv_from_json(e, c, &l->v[i++], depth + 1));
        *out = (jv){.t = JV_LIST, .u.l = l};
    } else if (cJSON_IsObject(j)) {
        size_t count = 0;
        for (const cJSON *c = j->child; c; c = c->next) count++;
        jdict *d = NULL;
        MN_FORWARD(mn_jdict_new(e, NULL, count, &d));
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v;
            MN_FORWARD(mn_jv_from_json(e, c, &v, depth + 1));
            const char *k = c->string ? c->string : "";
            MN_FORWARD(mn_jdict_set(e, NULL, d, jv_str(k, strlen(k)), v));
        }
        *out = (jv){.t = JV_DICT, .u.d = d};
    } else {
        return mn_error_set(e->err, MN_EINVAL, "context JSON has a value of unsupported type");
    }
    return MN_OK;
}

/* ---------------------------------------------------------------- sequences ------------------ */

mn_status mn_jv_length(jev *e, const jnode *n, jv v, int64_t *out) {
    switch (v.t) {
    case JV_STR:
        MN_FORWARD(mn_jinja_charge(e, n, v.u.s.n / 64));
        *out = (int64_t)mn_utf8_count(v.u.s.p, v.u.s.n);
        return MN_OK;
    case JV_LIST: *out = (int64_t)v.u.l->n; return MN_OK;
    case JV_DICT: *out = (int64_t)v.u.d->n; return MN_OK;
    case JV_RANGE: *out = range_len(v.u.r); return MN_OK;
    case JV_UNDEF: *out = 0; return MN_OK;
    default: return mn_jinja_err(e, n, MN_EINVAL, "object of type '%s' has no len()", jv_type_name(v.t));
    }
}

mn_status mn_jv_items(jev *e, const jnode *n, jv v, const jv **items, size_t *n_items) {
    switch (v.t) {
    case JV_LIST:
        *items = v.u.l->v;
        *n_items = v.u.l->n;
        return MN_OK;
    case JV_DICT:
        *items = v.u.d->k;
        *n_items = v.u.d->n;
        return MN_OK;
    case JV_UNDEF:
        *items = NULL;
        *n_items = 0;
        return MN_OK;
    case JV_STR: {
        size_t count = mn_utf8_count(v.u.s.p, v.u.s.n);
        MN_FORWARD(mn_jinja_charge(e, n, count));
        jv *arr = NULL;
        if (count) MN_FORWARD(mn_jinja_alloc(e, n, count, sizeof *arr, (void **)&arr));
        size_t k = 0;
        for (size_t i = 0; i < v.u.s.n; k++) {
            uint32_t cp;
            size_t len = mn_utf8_decode(v.u.s.p + i, v.u.s.n - i, &cp);
            arr[k] = jv_str(v.u.s.p + i, len);
            i += len;
        }
        *items = arr;
        *n_items = count;
        return MN_OK;
    }
    case JV_RANGE: {
        int64_t len = range_len(v.u.r);
        MN_FORWARD(mn_jinja_charge(e, n, (uint64_t)len));
        jv *arr = NULL;
        if (len) MN_FORWARD(mn_jinja_alloc(e, n, (size_t)len, sizeof *arr, (void **)&arr));
        for (int64_t i = 0; i < len; i++) arr[i] = jv_int(v.u.r->start + i * v.u.r->step);
        *items = arr;
        *n_items = (size_t)len;
        return MN_OK;
    }
    default: return mn_jinja_err(e, n, MN_EINVAL, "'%s' object is not iterable", jv_type_name(v.t));
    }
}

/* ---------------------------------------------------------------- access --------------------- */

static jv undef_attr(int obj_type, jstr name) {
    jv u = jv_undef();
    u.why = JU_ATTR;
    u.obj = (uint8_t)obj_type;
    u.u.s = name;
    return u;
}

static mn_status loop_attr(jev *e, const jnode *n, const jloop *lp, jstr name, jv *out) {
    int64_t i = lp->index0, len = lp->length;
    if (jstr_eq(name, "index")) *out = jv_int(i + 1);
    else if (jstr_eq(name, "index0")) *out = jv_int(i);
    else if (jstr_eq(name, "revindex")) *out = jv_int(len - i);
    else if (jstr_eq(name, "revindex0")) *out = jv_int(len - i - 1);
    else if (jstr_eq(name, "first")) *out = jv_bool(i == 0);
    else if (jstr_eq(name, "last")) *out = jv_bool(i == len - 1);
    else if (jstr_eq(name, "length")) *out = jv_int(len);
    else if (jstr_eq(name, "depth")) *out = jv_int(1);
    else if (jstr_eq(name, "depth0")) *out = jv_int(0);
    else if (jstr_eq(name, "previtem") || jstr_eq(name, "nextitem")) {
        int64_t k = jstr_eq(name, "previtem") ? i - 1 : i + 1;
        if (k < 0 || k >= len) {
            *out = undef_attr(JV_LOOP, name);
        } else if (lp->items) {
            *out = lp->items[k];
        } else {
            *out = jv_int(lp->range->start + k * lp->range->step);
        }
    } else {
        (void)e;
        (void)n;
        *out = undef_attr(JV_LOOP, name);
    }
    return MN_OK;
}

mn_status mn_jv_getattr(jev *e, const jnode *n, jv obj, jstr name, jv *out) {
    switch (obj.t) {
    case JV_DICT:
    case JV_NS: {
        MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(obj.u.d, jv_str(name.p, name.n))));
        jv *v = mn_jdict_get_str(obj.u.d, name.p, name.n);
        *out = v ? *v : undef_attr(obj.t, name);
        return MN_OK;
    }
    case JV_LOOP: return loop_attr(e, n, obj.u.loop, name, out);
    case JV_UNDEF: return mn_jinja_err_undef(e, n, obj);
    default: *out = undef_attr(obj.t, name); return MN_OK;
    }
}

mn_status mn_jv_getitem(jev *e, const jnode *n, jv obj, jv key, jv *out) {
    if (obj.t == JV_UNDEF) return mn_jinja_err_undef(e, n, obj);
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(obj.u.d, key)));
        jv *v = mn_jdict_get(obj.u.d, key);
        if (v) {
            *out = *v;
        } else {
            jv u = jv_undef();
            if (key.t == JV_STR) {
                u.why = JU_ITEM_STR;
                u.u.s = key.u.s;
            } else if (jv_is_intlike(key)) {
                u.why = JU_ITEM_INT;
                u.u.i = key.u.i;
            }
            u.obj = obj.t;
            *out = u;
        }
        return MN_OK;
    }
    if ((obj.t == JV_LIST || obj.t == JV_STR || obj.t == JV_RANGE) && jv_is_intlike(key)) {
        int64_t i = key.u.i, len;
        MN_FORWARD(mn_jv_length(e, n, obj, &len));
        if (i < 0) i += len;
        if (i < 0 || i >= len) {
            jv u = jv_undef();
            u.why = JU_ITEM_INT;
            u.obj = obj.t;
            u.u.i = key.u.i;
            *out = u;
            return MN_OK;
        }
        if (obj.t == JV_LIST) {
            *out = obj.u.l->v[i];
        } else if (obj.t == JV_RANGE) {
            *out = jv_int(obj.u.r->start + i * obj.u.r->step);
        } else if (len == (int64_t)obj.u.s.n) { /* ASCII (one byte per character) */
            *out = jv_str(obj.u.s.p + i, 1);
        } else {
            size_t off = 0;
            for (int64_t k = 0; k < i; k++) {
                uint32_t cp;
                off += mn_utf8_decode(obj.u.s.p + off, obj.u.s.n - off, &cp);
            }
            uint32_t cp;
            *out = jv_str(obj.u.s.p + off, mn_utf8_decode(obj.u.s.p + off, obj.u.s.n - off, &cp));
        }
        return MN_OK;
    }
    if (key.t == JV_STR) return mn_jv_getattr(e, n, obj, key.u.s, out);
    jv u = jv_undef();
    u.obj = obj.t;
    *out = u;
    return MN_OK;
}
