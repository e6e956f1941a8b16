/*
 * jinja_eval.c: the tree-walking evaluator, and the entry points of jinja.h (parse, render,
 * free).
 *
 * Scopes follow Jinja: the template has a root frame; each for loop runs its body in a frame of
 * its own that is cleared at every iteration (a {% set %} inside a loop is invisible after the
 * loop and in the next iteration, which is why templates use namespace()); {% if %} opens no
 * scope; a macro call runs in a fresh frame whose parent is the root frame (macros see top-level
 * variables, not their caller's). Name lookup walks the frames outwards, then the context
 * variables, then the global functions.
 *
 * Output goes to the current sink, an arena string; {% set x %}...{% endset %}, filter blocks and
 * macro calls capture output by swapping in a fresh sink. Every node evaluation charges one step
 * and counts one level of nesting (both capped by the limits); string work charges per byte in
 * mn_jbuf_put. break/continue set a flag that bodies check after each statement.
 */
#define _GNU_SOURCE /* memmem (linear-time in glibc) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

typedef struct jvar {
    jstr name;
    jv v;
} jvar;

struct jframe {
    jframe *parent;
    jvar *vars;
    size_t n, cap;
};

static mn_status eval(jev *e, const jnode *n, jv *out);
static mn_status exec(jev *e, const jnode *n);

/* ---------------------------------------------------------------- scopes --------------------- */

/* Steps for scanning a frame of n_vars names for a name of len bytes. */
static uint64_t scan_cost(size_t n_vars, size_t len) {
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)n_vars, (uint64_t)len, &bytes)) return UINT64_MAX / 2;
    return n_vars / 16 + bytes / 64;
}

static mn_status frame_set(jev *e, const jnode *n, jframe *f, jstr name, jv v) {
    MN_FORWARD(mn_jinja_charge(e, n, scan_cost(f->n, name.n)));
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].name.n == name.n && memcmp(f->vars[i].name.p, name.p, name.n) == 0) {
            f->vars[i].v = v;
            return MN_OK;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        jvar *nv = NULL;
        MN_FORWARD(mn_jinja_alloc(e, n, cap, sizeof *nv, (void **)&nv));
        if (f->n) memcpy(nv, f->vars, f->n * sizeof *nv);
        f->vars = nv;
        f->cap = cap;
    }
    f->vars[f->n++] = (jvar){name, v};
    return MN_OK;
}

static mn_status lookup(jev *e, const jnode *n, jstr name, jv *out) {
    for (jframe *f = e->frame; f; f = f->parent) {
        MN_FORWARD(mn_jinja_charge(e, n, scan_cost(f->n, name.n)));
        for (size_t i = f->n; i-- > 0;)
            if (f->vars[i].name.n == name.n && memcmp(f->vars[i].name.p, name.p, name.n) == 0) {
                *out = f->vars[i].v;
                return MN_OK;
            }
    }
    MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(e->globals, jv_str(name.p, name.n))));
    jv *g = mn_jdict_get_str(e->globals, name.p, name.n);
    if (g) {
        *out = *g;
        return MN_OK;
    }
    if (mn_jinja_func_lookup(name, out)) return MN_OK;
    jv u = jv_undef();
    u.why = JU_NAME;
    u.u.s = name;
    *out = u;
    return MN_OK;
}

/* Binds an assignment target (E_NAME or E_TUPLE of names) in frame f. */
static mn_status bind(jev *e, const jnode *target, jframe *f, jv v) {
    if (target->kind == E_NAME) return frame_set(e, target, f, target->name, v);
    /* tuple unpacking */
    const jv *items = NULL;
    size_t n_items;
    if (v.t != JV_LIST && v.t != JV_STR)
        return mn_jinja_err(e, target, MN_EINVAL, "cannot unpack a %s into %u names", jv_type_name(v.t), target->n);
    MN_FORWARD(mn_jv_items(e, target, v, &items, &n_items));
    if (n_items != target->n)
        return mn_jinja_err(e, target, MN_EINVAL, "cannot unpack %zu values into %u names", n_items, target->n);
    for (uint32_t i = 0; i < target->n; i++) MN_FORWARD(frame_set(e, target, f, target->kids[i]->name, items[i]));
    return MN_OK;
}

/* ---------------------------------------------------------------- arithmetic ----------------- */

static double fnum(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

static mn_status type_error(jev *e, const jnode *n, const char *op, jv a, jv b) {
    if (a.t == JV_UNDEF) return mn_jinja_err_undef(e, n, a);
    if (b.t == JV_UNDEF) return mn_jinja_err_undef(e, n, b);
    return mn_jinja_err(e, n, MN_EINVAL, "unsupported operand types for %s: '%s' and '%s'", op,
                        jv_type_name(a.t), jv_type_name(b.t));
}

static mn_status repeat(jev *e, const jnode *n, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        jbuf b = {0};
        MN_FORWARD(mn_jinja_charge(e, n, (uint64_t)times / 64));
        if (seq.u.s.n && (uint64_t)times > e->out_max / seq.u.s.n)
            return mn_jinja_err(e, n, MN_ETOOBIG, "string repetition longer than the output limit (%zu bytes)", e->out_max);
        for (int64_t i = 0; i < times; i++) MN_FORWARD(mn_jbuf_put(e, n, &b, seq.u.s.p, seq.u.s.n));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    const jlist *l = seq.u.l;
    uint64_t total;
    if (__builtin_mul_overflow((uint64_t)l->n, (uint64_t)times, &total) || total > SIZE_MAX / sizeof(jv))
        return mn_jinja_err(e, n, MN_EFULL, "list repetition too large");
    MN_FORWARD(mn_jinja_charge(e, n, total));
    jlist *r = NULL;
    MN_FORWARD(mn_jlist_new(e, n, (size_t)total, &r));
    r->is_tuple = l->is_tuple;
    for (uint64_t i = 0; i < total; i++) r->v[i] = l->v[i % l->n];
    *out = (jv){.t = JV_LIST, .u.l = r};
    return MN_OK;
}

static mn_status int_pow(jev *e, const jnode *n, int64_t base, int64_t exp, jv *out) {
    int64_t r = 1;
    while (exp > 0) {
        if (exp & 1)
            if (__builtin_mul_overflow(r, base, &r)) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in **");
        exp >>= 1;
        if (exp && __builtin_mul_overflow(base, base, &base))
            return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in **");
    }
    *out = jv_int(r);
    return MN_OK;
}

static mn_status binop(jev *e, const jnode *n, int op, jv a, jv b, jv *out) {
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    bool nums = jv_is_num(a) && jv_is_num(b);
    bool ints = jv_is_intlike(a) && jv_is_intlike(b);
    switch (op) {
    case OP_ADD:
        if (ints) {
            int64_t r;
            if (__builtin_add_overflow(a.u.i, b.u.i, &r)) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in +");
            *out = jv_int(r);
            return MN_OK;
        }
        if (nums) {
            *out = jv_float(fnum(a) + fnum(b));
            return MN_OK;
        }
        if (a.t == JV_STR && b.t == JV_STR) {
            jbuf buf = {0};
            MN_FORWARD(mn_jbuf_put(e, n, &buf, a.u.s.p, a.u.s.n));
            MN_FORWARD(mn_jbuf_put(e, n, &buf, b.u.s.p, b.u.s.n));
            *out = mn_jbuf_value(&buf);
            return MN_OK;
        }
        if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple) {
            size_t total = a.u.l->n + b.u.l->n;
            MN_FORWARD(mn_jinja_charge(e, n, total));
            jlist *r = NULL;
            MN_FORWARD(mn_jlist_new(e, n, total, &r));
            r->is_tuple = a.u.l->is_tuple;
            if (a.u.l->n) memcpy(r->v, a.u.l->v, a.u.l->n * sizeof(jv));
            if (b.u.l->n) memcpy(r->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
            *out = (jv){.t = JV_LIST, .u.l = r};
            return MN_OK;
        }
        return type_error(e, n, names[op], a, b);
    case OP_SUB:
        if (ints) {
            int64_t r;
            if (__builtin_sub_overflow(a.u.i, b.u.i, &r)) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in -");
            *out = jv_int(r);
            return MN_OK;
        }
        if (nums) {
            *out = jv_float(fnum(a) - fnum(b));
            return MN_OK;
        }
        return type_error(e, n, names[op], a, b);
    case OP_MUL:
        if (ints) {
            int64_t r;
            if (__builtin_mul_overflow(a.u.i, b.u.i, &r)) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in *");
            *out = jv_int(r);
            return MN_OK;
        }
        if (nums) {
            *out = jv_float(fnum(a) * fnum(b));
            return MN_OK;
        }
        if ((a.t == JV_STR || a.t == JV_LIST) && jv_is_intlike(b)) return repeat(e, n, a, b.u.i, out);
        if ((b.t == JV_STR || b.t == JV_LIST) && jv_is_intlike(a)) return repeat(e, n, b, a.u.i, out);
        return type_error(e, n, names[op], a, b);
    case OP_DIV:
        if (!nums) return type_error(e, n, names[op], a, b);
        if (fnum(b) == 0.0) return mn_jinja_err(e, n, MN_EINVAL, "division by zero");
        *out = jv_float(fnum(a) / fnum(b));
        return MN_OK;
    case OP_FLOORDIV:
    case OP_MOD:
        if (!nums) {
            if (op == OP_MOD && a.t == JV_STR)
                return mn_jinja_err(e, n, MN_EUNSUPPORTED, "printf-style '%%' string formatting is not supported");
            return type_error(e, n, names[op], a, b);
        }
        if (ints) {
            if (b.u.i == 0) return mn_jinja_err(e, n, MN_EINVAL, "integer division or modulo by zero");
            if (a.u.i == INT64_MIN && b.u.i == -1) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in %s", names[op]);
            int64_t q = a.u.i / b.u.i, r = a.u.i % b.u.i;
            if (r != 0 && ((r < 0) != (b.u.i < 0))) {
                q -= 1;
                r += b.u.i;
            }
            *out = jv_int(op == OP_MOD ? r : q);
            return MN_OK;
        }
        {
            /* CPython's float divmod */
            double x = fnum(a), y = fnum(b);
            if (y == 0.0) return mn_jinja_err(e, n, MN_EINVAL, "float division or modulo by zero");
            double mod = fmod(x, y), div = (x - mod) / y;
            if (mod != 0.0) {
                if ((y < 0) != (mod < 0)) {
                    mod += y;
                    div -= 1.0;
                }
            } else {
                mod = copysign(0.0, y);
            }
            double fd;
            if (div != 0.0) {
                fd = floor(div);
                if (div - fd > 0.5) fd += 1.0;
            } else {
                fd = copysign(0.0, x / y);
            }
            *out = jv_float(op == OP_MOD ? mod : fd);
            return MN_OK;
        }
    case OP_POW:
        if (!nums) return type_error(e, n, names[op], a, b);
        if (ints && b.u.i >= 0) return int_pow(e, n, a.u.i, b.u.i, out);
        if (fnum(a) == 0.0 && fnum(b) < 0) return mn_jinja_err(e, n, MN_EINVAL, "0.0 cannot be raised to a negative power");
        *out = jv_float(pow(fnum(a), fnum(b)));
        return MN_OK;
    }
    return mn_jinja_err(e, n, MN_EINTERNAL, "bad operator");
}

mn_status mn_jv_contains(jev *e, const jnode *n, jv container, jv item, bool *out) {
    *out = false;
    switch (container.t) {
    case JV_STR: {
        if (item.t != JV_STR)
            return mn_jinja_err(e, n, MN_EINVAL, "'in <string>' requires a string as left operand, not %s", jv_type_name(item.t));
        MN_FORWARD(mn_jinja_charge(e, n, (container.u.s.n + item.u.s.n) / 64));
        *out = item.u.s.n == 0 || memmem(container.u.s.p, container.u.s.n, item.u.s.p, item.u.s.n) != NULL;
        return MN_OK;
    }
    case JV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++) {
            MN_FORWARD(mn_jv_eq(e, n, container.u.l->v[i], item, out));
            if (*out) return MN_OK;
        }
        return MN_OK;
    case JV_DICT:
    case JV_NS:
        MN_FORWARD(mn_jinja_charge(e, n, mn_jdict_lookup_cost(container.u.d, item)));
        *out = mn_jdict_get(container.u.d, item) != NULL;
        return MN_OK;
    case JV_RANGE: {
        if (!jv_is_intlike(item)) return MN_OK;
        const jrange *r = container.u.r;
        int64_t x = item.u.i;
        bool in = r->step > 0 ? (x >= r->start && x < r->stop) : (x <= r->start && x > r->stop);
        *out = in && ((__int128)x - r->start) % r->step == 0;
        return MN_OK;
    }
    case JV_UNDEF: return MN_OK;
    default:
        return mn_jinja_err(e, n, MN_EINVAL, "argument of type '%s' is not iterable", jv_type_name(container.t));
    }
}

static mn_status compare_op(jev *e, const jnode *n, int op, jv a, jv b, bool *out) {
    int c;
    switch (op) {
    case OP_EQ: return mn_jv_eq(e, n, a, b, out);
    case OP_NE:
        MN_FORWARD(mn_jv_eq(e, n, a, b, out));
        *out = !*out;
        return MN_OK;
    case OP_IN: return mn_jv_contains(e, n, b, a, out);
    case OP_NOTIN:
        MN_FORWARD(mn_jv_contains(e, n, b, a, out));
        *out = !*out;
        return MN_OK;
    default: break;
    }
    if (jv_is_num(a) && jv_is_num(b) && (a.t == JV_FLOAT || b.t == JV_FLOAT) && (isnan(fnum(a)) || isnan(fnum(b)))) {
        *out = false; /* every ordering with NaN is false */
        return MN_OK;
    }
    MN_FORWARD(mn_jv_compare(e, n, a, b, false, &c));
    *out = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
    return MN_OK;
}

/* ---------------------------------------------------------------- slices --------------------- */

static mn_status slice_index(jev *e, const jnode *k, bool *present, int64_t *out) {
    *present = false;
    if (!k) return MN_OK;
    jv v;
    MN_FORWARD(eval(e, k, &v));
    if (v.t == JV_NONE) return MN_OK;
    if (!jv_is_intlike(v)) return mn_jinja_err(e, k, MN_EINVAL, "slice indices must be integers or None, not %s", jv_type_name(v.t));
    *present = true;
    *out = v.u.i;
    return MN_OK;
}

static mn_status eval_slice(jev *e, const jnode *n, jv *out) {
    jv obj;
    MN_FORWARD(eval(e, n->kids[0], &obj));
    bool has_start, has_stop, has_step;
    int64_t start = 0, stop = 0, step = 1;
    MN_FORWARD(slice_index(e, n->kids[1], &has_start, &start));
    MN_FORWARD(slice_index(e, n->kids[2], &has_stop, &stop));
    MN_FORWARD(slice_index(e, n->kids[3], &has_step, &step));
    if (!has_step) step = 1;
    if (step == 0) return mn_jinja_err(e, n, MN_EINVAL, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) return mn_jinja_err_undef(e, n->kids[0], obj);
    if (obj.t != JV_LIST && obj.t != JV_STR && obj.t != JV_RANGE) {
        /* Jinja compiles slices to a plain Python subscript (no getitem fallback) */
        return mn_jinja_err(e, n, MN_EINVAL, "'%s' object is not subscriptable", jv_type_name(obj.t));
    }
    const jv *items = NULL;
    size_t n_items;
    MN_FORWARD(mn_jv_items(e, n, obj, &items, &n_items));
    int64_t len = (int64_t)n_items;
    /* Python's PySlice_AdjustIndices */
    if (!has_start) {
        start = step < 0 ? len - 1 : 0;
    } else if (start < 0) {
        start += len;
        if (start < 0) start = step < 0 ? -1 : 0;
    } else if (start >= len) {
        start = step < 0 ? len - 1 : len;
    }
    if (!has_stop) {
        stop = step < 0 ? -1 : len;
    } else if (stop < 0) {
        stop += len;
        if (stop < 0) stop = step < 0 ? -1 : 0;
    } else if (stop >= len) {
        stop = step < 0 ? len - 1 : len;
    }
    int64_t count = 0;
    if (step > 0 && start < stop) count = (stop - start - 1) / step + 1;
    if (step < 0 && start > stop) count = (start - stop - 1) / (-step) + 1;
    MN_FORWARD(mn_jinja_charge(e, n, (uint64_t)count));
    if (obj.t == JV_STR) {
        jbuf b = {0};
        for (int64_t i = 0, k = start; i < count; i++, k += step)
            MN_FORWARD(mn_jbuf_put(e, n, &b, items[k].u.s.p, items[k].u.s.n));
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    jlist *l = NULL;
    MN_FORWARD(mn_jlist_new(e, n, (size_t)count, &l));
    l->is_tuple = obj.t == JV_LIST && obj.u.l->is_tuple;
    for (int64_t i = 0, k = start; i < count; i++, k += step) l->v[i] = items[k];
    *out = (jv){.t = JV_LIST, .u.l = l};
    return MN_OK;
}

/* ---------------------------------------------------------------- calls ---------------------- */

#define MAX_CALL_ARGS 32

/* Evaluates kids[1..] of a call, filter or test node into vals/names. */
static mn_status eval_args(jev *e, const jnode *n, jv *vals, jstr *names, jargs *a) {
    size_t count = n->n > 0 ? n->n - 1 : 0;
    if (count > MAX_CALL_ARGS) return mn_jinja_err(e, n, MN_EINVAL, "too many arguments");
    for (size_t i = 0; i < count; i++) {
        MN_FORWARD(eval(e, n->kids[i + 1], &vals[i]));
        names[i] = n->argnames ? n->argnames[i] : (jstr){0};
    }
    *a = (jargs){vals, names, count};
    return MN_OK;
}

static mn_status call_macro(jev *e, const jnode *n, const jnode *m, const jargs *a, jv *out) {
    size_t n_params = m->n - 1;
    jframe f = {.parent = e->root};
    bool set[MAX_CALL_ARGS] = {false};
    size_t positional = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (!a->names[i].p) {
            if (positional >= n_params)
                return mn_jinja_err(e, n, MN_EINVAL, "macro '%.*s' takes %zu arguments, got more", (int)m->name.n, m->name.p, n_params);
            MN_FORWARD(frame_set(e, n, &f, m->argnames[positional], a->v[i]));
            set[positional++] = true;
            continue;
        }
        size_t k = 0;
        while (k < n_params && !(m->argnames[k].n == a->names[i].n && memcmp(m->argnames[k].p, a->names[i].p, a->names[i].n) == 0)) k++;
        if (k == n_params)
            return mn_jinja_err(e, n, MN_EINVAL, "macro '%.*s' has no parameter '%.*s'", (int)m->name.n, m->name.p, (int)a->names[i].n, a->names[i].p);
        if (set[k])
            return mn_jinja_err(e, n, MN_EINVAL, "macro '%.*s' got parameter '%.*s' twice", (int)m->name.n, m->name.p, (int)a->names[i].n, a->names[i].p);
        MN_FORWARD(frame_set(e, n, &f, m->argnames[k], a->v[i]));
        set[k] = true;
    }
    /* defaults are evaluated in the macro's frame, so they can use earlier parameters */
    jframe *saved_frame = e->frame;
    e->frame = &f;
    mn_status st = MN_OK;
    for (size_t k = 0; k < n_params && st == MN_OK; k++) {
        if (set[k]) continue;
        jv v = jv_undef();
        if (m->kids[k + 1]) {
            st = eval(e, m->kids[k + 1], &v);
        } else {
            v.why = JU_NAME;
            v.u.s = m->argnames[k];
        }
        if (st == MN_OK) st = frame_set(e, n, &f, m->argnames[k], v);
    }
    jbuf capture = {0};
    jbuf *saved_sink = e->sink;
    jctl saved_ctl = e->ctl;
    e->sink = &capture;
    if (st == MN_OK) st = exec(e, m->kids[0]);
    e->sink = saved_sink;
    e->frame = saved_frame;
    e->ctl = saved_ctl;
    MN_FORWARD(st);
    *out = mn_jbuf_value(&capture);
    return MN_OK;
}

mn_status mn_jinja_call_value(jev *e, const jnode *n, jv callee, const jargs *a, jv *out) {
    switch (callee.t) {
    case JV_MACRO: return call_macro(e, n, callee.u.m, a, out);
    case JV_FUNC: return mn_jinja_call_func(e, n, callee.u.fn, a, out);
    case JV_UNDEF: return mn_jinja_err_undef(e, n, callee);
    default: return mn_jinja_err(e, n, MN_EINVAL, "'%s' object is not callable", jv_type_name(callee.t));
    }
}

static mn_status eval_call(jev *e, const jnode *n, jv *out) {
    const jnode *callee = n->kids[0];
    jv vals[MAX_CALL_ARGS];
    jstr names[MAX_CALL_ARGS];
    jargs a;
    if (callee->kind == E_ATTR) {
        jv obj;
        MN_FORWARD(eval(e, callee->kids[0], &obj));
        if (obj.t == JV_UNDEF) return mn_jinja_err_undef(e, callee, obj);
        MN_FORWARD(eval_args(e, n, vals, names, &a));
        bool handled = false;
        MN_FORWARD(mn_jinja_method(e, n, obj, callee->name, &a, out, &handled));
        if (handled) return MN_OK;
        jv f;
        MN_FORWARD(mn_jv_getattr(e, callee, obj, callee->name, &f));
        if (f.t == JV_MACRO || f.t == JV_FUNC) return mn_jinja_call_value(e, n, f, &a, out);
        if (f.t == JV_UNDEF)
            return mn_jinja_err(e, callee, MN_EUNSUPPORTED, "%s has no method '%.*s'", obj.t == JV_NONE ? "None" : jv_type_name(obj.t),
                                (int)callee->name.n, callee->name.p);
        return mn_jinja_err(e, n, MN_EINVAL, "'%s' object is not callable", jv_type_name(f.t));
    }
    jv f;
    MN_FORWARD(eval(e, callee, &f));
    MN_FORWARD(eval_args(e, n, vals, names, &a));
    return mn_jinja_call_value(e, n, f, &a, out);
}

/* A filter node applied to value (kids[0] ignored). */
static mn_status apply_filter(jev *e, const jnode *n, jv value, jv *out) {
    jv vals[MAX_CALL_ARGS];
    jstr names[MAX_CALL_ARGS];
    jargs a;
    MN_FORWARD(eval_args(e, n, vals, names, &a));
    return mn_jinja_filter(e, n, n->op, value, &a, out);
}

/* A filter chain whose innermost value is NULL (filter blocks): applies it to value. */
static mn_status apply_filter_chain(jev *e, const jnode *n, jv value, jv *out) {
    if (n->kids[0]) MN_FORWARD(apply_filter_chain(e, n->kids[0], value, &value));
    return apply_filter(e, n, value, out);
}

/* ---------------------------------------------------------------- expressions ---------------- */

static mn_status enter(jev *e, const jnode *n) {
    MN_FORWARD(mn_jinja_charge(e, n, 1));
    if (++e->depth > e->depth_max) {
        e->depth--;
        return mn_jinja_err(e, n, MN_EFULL, "evaluation nested too deeply (more than %u levels)", e->depth_max);
    }
    return MN_OK;
}

static mn_status eval_inner(jev *e, const jnode *n, jv *out) {
    switch (n->kind) {
    case E_LIT: *out = n->lit; return MN_OK;
    case E_NAME: return lookup(e, n, n->name, out);
    case E_LIST:
    case E_TUPLE: {
        jlist *l = NULL;
        MN_FORWARD(mn_jlist_new(e, n, n->n, &l));
        l->is_tuple = n->kind == E_TUPLE;
        for (uint32_t i = 0; i < n->n; i++) MN_FORWARD(eval(e, n->kids[i], &l->v[i]));
        *out = (jv){.t = JV_LIST, .u.l = l};
        return MN_OK;
    }
    case E_DICT: {
        jdict *d = NULL;
        MN_FORWARD(mn_jdict_new(e, n, n->n / 2, &d));
        for (uint32_t i = 0; i + 1 < n->n; i += 2) {
            jv k, v;
            MN_FORWARD(eval(e, n->kids[i], &k));
            MN_FORWARD(eval(e, n->kids[i + 1], &v));
            if (k.t == JV_LIST || k.t == JV_DICT || k.t == JV_NS || k.t == JV_UNDEF)
                return mn_jinja_err(e, n->kids[i], MN_EINVAL, "unhashable dict key of type '%s'", jv_type_name(k.t));
            MN_FORWARD(mn_jdict_set(e, n, d, k, v));
        }
        *out = (jv){.t = JV_DICT, .u.d = d};
        return MN_OK;
    }
    case E_ATTR: {
        jv obj;
        MN_FORWARD(eval(e, n->kids[0], &obj));
        /* errors about an undefined object point at the object, not at the dot */
        return mn_jv_getattr(e, obj.t == JV_UNDEF ? n->kids[0] : n, obj, n->name, out);
    }
    case E_ITEM: {
        jv obj, key;
        MN_FORWARD(eval(e, n->kids[0], &obj));
        MN_FORWARD(eval(e, n->kids[1], &key));
        return mn_jv_getitem(e, obj.t == JV_UNDEF ? n->kids[0] : n, obj, key, out);
    }
    case E_SLICE: return eval_slice(e, n, out);
    case E_CALL: return eval_call(e, n, out);
    case E_FILTER: {
        jv v;
        MN_FORWARD(eval(e, n->kids[0], &v));
        return apply_filter(e, n, v, out);
    }
    case E_TEST: {
        jv v, vals[MAX_CALL_ARGS];
        jstr names[MAX_CALL_ARGS];
        jargs a;
        MN_FORWARD(eval(e, n->kids[0], &v));
        MN_FORWARD(eval_args(e, n, vals, names, &a));
        bool r;
        MN_FORWARD(mn_jinja_test(e, n, n->op, v, &a, &r));
        *out = jv_bool(n->flag ? !r : r);
        return MN_OK;
    }
    case E_NOT: {
        jv v;
        MN_FORWARD(eval(e, n->kids[0], &v));
        *out = jv_bool(!mn_jv_truthy(v));
        return MN_OK;
    }
    case E_NEG:
    case E_POS: {
        jv v;
        MN_FORWARD(eval(e, n->kids[0], &v));
        if (v.t == JV_UNDEF) return mn_jinja_err_undef(e, n, v);
        if (!jv_is_num(v))
            return mn_jinja_err(e, n, MN_EINVAL, "bad operand type for unary %c: '%s'", n->kind == E_NEG ? '-' : '+', jv_type_name(v.t));
        if (n->kind == E_POS) {
            *out = v.t == JV_BOOL ? jv_int(v.u.i) : v;
        } else if (v.t == JV_FLOAT) {
            *out = jv_float(-v.u.f);
        } else {
            if (v.u.i == INT64_MIN) return mn_jinja_err(e, n, MN_ERANGE, "integer overflow in unary -");
            *out = jv_int(-v.u.i);
        }
        return MN_OK;
    }
    case E_ARITH: {
        /* left to right; runs of "+" between strings are joined in one buffer */
        jv acc;
        MN_FORWARD(eval(e, n->kids[0], &acc));
        jbuf b = {0};
        bool building = false;
        for (uint32_t i = 1; i < n->n; i++) {
            jv v;
            MN_FORWARD(eval(e, n->kids[i], &v));
            int op = n->ops[i - 1];
            if (op == OP_ADD && v.t == JV_STR && (building || acc.t == JV_STR)) {
                if (!building) {
                    b = (jbuf){0};
                    MN_FORWARD(mn_jbuf_put(e, n, &b, acc.u.s.p, acc.u.s.n));
                    building = true;
                }
                MN_FORWARD(mn_jbuf_put(e, n, &b, v.u.s.p, v.u.s.n));
                continue;
            }
            if (building) {
                acc = mn_jbuf_value(&b);
                building = false;
            }
            MN_FORWARD(binop(e, n, op, acc, v, &acc));
        }
        *out = building ? mn_jbuf_value(&b) : acc;
        return MN_OK;
    }
    case E_AND:
    case E_OR: {
        jv v = jv_undef();
        for (uint32_t i = 0; i < n->n; i++) {
            MN_FORWARD(eval(e, n->kids[i], &v));
            bool t = mn_jv_truthy(v);
            if (n->kind == E_AND ? !t : t) break;
        }
        *out = v;
        return MN_OK;
    }
    case E_CONCAT: {
        jbuf b = {0};
        for (uint32_t i = 0; i < n->n; i++) {
            jv v;
            MN_FORWARD(eval(e, n->kids[i], &v));
            MN_FORWARD(mn_jv_put_str(e, n, &b, v));
        }
        *out = mn_jbuf_value(&b);
        return MN_OK;
    }
    case E_COMPARE: {
        jv left;
        MN_FORWARD(eval(e, n->kids[0], &left));
        for (uint32_t i = 1; i < n->n; i++) {
            jv right;
            MN_FORWARD(eval(e, n->kids[i], &right));
            bool r;
            MN_FORWARD(compare_op(e, n, n->ops[i - 1], left, right, &r));
            if (!r) {
                *out = jv_bool(false);
                return MN_OK;
            }
            left = right;
        }
        *out = jv_bool(true);
        return MN_OK;
    }
    case E_COND: {
        jv c;
        MN_FORWARD(eval(e, n->kids[0], &c));
        if (mn_jv_truthy(c)) return eval(e, n->kids[1], out);
        if (n->kids[2]) return eval(e, n->kids[2], out);
        *out = jv_undef();
        return MN_OK;
    }
    default: return mn_jinja_err(e, n, MN_EINTERNAL, "statement evaluated as an expression");
    }
}

static mn_status eval(jev *e, const jnode *n, jv *out) {
    MN_FORWARD(enter(e, n));
    mn_status st = eval_inner(e, n, out);
    e->depth--;
    return st;
}

/* ---------------------------------------------------------------- statements ----------------- */

static mn_status emit(jev *e, const jnode *n, jv v) {
    if (v.t == JV_STR) return mn_jbuf_put(e, n, e->sink, v.u.s.p, v.u.s.n);
    return mn_jv_put_str(e, n, e->sink, v);
}

static mn_status capture(jev *e, const jnode *body, jv *out) {
    jbuf b = {0};
    jbuf *saved = e->sink;
    e->sink = &b;
    mn_status st = exec(e, body);
    e->sink = saved;
    MN_FORWARD(st);
    *out = mn_jbuf_value(&b);
    return MN_OK;
}

static mn_status exec_for(jev *e, const jnode *n) {
    const jnode *target = n->kids[0], *cond = n->kids[2], *body = n->kids[3], *else_body = n->kids[4];
    jv iter;
    MN_FORWARD(eval(e, n->kids[1], &iter));
    jloop *lp = NULL;
    MN_FORWARD(mn_jinja_alloc(e, n, 1, sizeof *lp, (void **)&lp));
    memset(lp, 0, sizeof *lp);
    jframe *f = NULL;
    MN_FORWARD(mn_jinja_alloc(e, n, 1, sizeof *f, (void **)&f));
    *f = (jframe){.parent = e->frame};

    const jv *items = NULL;
    size_t count;
    if (iter.t == JV_RANGE && !cond) {
        lp->range = iter.u.r;
        int64_t len = 0;
        MN_FORWARD(mn_jv_length(e, n, iter, &len));
        count = (size_t)len;
    } else {
        if (iter.t == JV_NONE || iter.t == JV_INT || iter.t == JV_FLOAT || iter.t == JV_BOOL)
            return mn_jinja_err(e, n->kids[1], MN_EINVAL, "'%s' object is not iterable", jv_type_name(iter.t));
        MN_FORWARD(mn_jv_items(e, n->kids[1], iter, &items, &count));
        if (cond && count) {
            /* the loop filter runs before `loop` exists, with the target bound */
            jv *kept = NULL;
            MN_FORWARD(mn_jinja_alloc(e, n, count, sizeof *kept, (void **)&kept));
            size_t k = 0;
            jframe *saved = e->frame;
            e->frame = f;
            mn_status st = MN_OK;
            for (size_t i = 0; i < count && st == MN_OK; i++) {
                f->n = 0;
                jv c;
                st = bind(e, target, f, items[i]);
                if (st == MN_OK) st = eval(e, cond, &c);
                if (st == MN_OK && mn_jv_truthy(c)) kept[k++] = items[i];
            }
            e->frame = saved;
            MN_FORWARD(st);
            items = kept;
            count = k;
        }
        lp->items = items;
    }
    lp->length = (int64_t)count;

    if (count == 0) return else_body ? exec(e, else_body) : MN_OK;
    jframe *saved = e->frame;
    e->frame = f;
    mn_status st = MN_OK;
    jv loopv = {.t = JV_LOOP, .u.loop = lp};
    static const jstr loop_name = {"loop", 4};
    for (size_t i = 0; i < count; i++) {
        st = mn_jinja_charge(e, n, 1);
        if (st != MN_OK) break;
        f->n = 0;
        lp->index0 = (int64_t)i;
        jv item = items ? items[i] : jv_int(lp->range->start + (int64_t)i * lp->range->step);
        st = bind(e, target, f, item);
        if (st == MN_OK) st = frame_set(e, n, f, loop_name, loopv);
        if (st == MN_OK) st = exec(e, body);
        if (st != MN_OK) break;
        if (e->ctl == CTL_BREAK) {
            e->ctl = CTL_NONE;
            break;
        }
        e->ctl = CTL_NONE;
    }
    e->frame = saved;
    return st;
}

static mn_status exec_set(jev *e, const jnode *n) {
    const jnode *target = n->kids[0];
    jv v;
    MN_FORWARD(eval(e, n->kids[1], &v));
    if (target->kind == E_ATTR) {
        jv ns;
        MN_FORWARD(lookup(e, target->kids[0], target->kids[0]->name, &ns));
        if (ns.t != JV_NS)
            return mn_jinja_err(e, target, MN_EINVAL, "cannot assign attribute '%.*s' on a %s (only on a namespace)",
                                (int)target->name.n, target->name.p, jv_type_name(ns.t));
        return mn_jdict_set(e, n, ns.u.d, jv_str(target->name.p, target->name.n), v);
    }
    return bind(e, target, e->frame, v);
}

static mn_status exec_inner(jev *e, const jnode *n) {
    switch (n->kind) {
    case S_BODY:
        for (uint32_t i = 0; i < n->n; i++) {
            MN_FORWARD(exec(e, n->kids[i]));
            if (e->ctl != CTL_NONE) break;
        }
        return MN_OK;
    case S_TEXT: return mn_jbuf_put(e, n, e->sink, n->name.p, n->name.n);
    case S_OUTPUT: {
        jv v;
        MN_FORWARD(eval(e, n->kids[0], &v));
        return emit(e, n, v);
    }
    case S_IF: {
        uint32_t pairs = n->flag ? n->n - 1 : n->n; /* kids in (cond, body) pairs */
        for (uint32_t i = 0; i + 1 < pairs; i += 2) {
            jv c;
            MN_FORWARD(eval(e, n->kids[i], &c));
            if (mn_jv_truthy(c)) return exec(e, n->kids[i + 1]);
        }
        return n->flag ? exec(e, n->kids[n->n - 1]) : MN_OK;
    }
    case S_FOR: return exec_for(e, n);
    case S_SET: return exec_set(e, n);
    case S_SETBLOCK: {
        jv v;
        MN_FORWARD(capture(e, n->kids[1], &v));
        return frame_set(e, n, e->frame, n->kids[0]->name, v);
    }
    case S_MACRO: return frame_set(e, n, e->frame, n->name, (jv){.t = JV_MACRO, .u.m = n});
    case S_BREAK: e->ctl = CTL_BREAK; return MN_OK;
    case S_CONTINUE: e->ctl = CTL_CONTINUE; return MN_OK;
    case S_FILTERBLOCK: {
        jv v;
        MN_FORWARD(capture(e, n->kids[1], &v));
        MN_FORWARD(apply_filter_chain(e, n->kids[0], v, &v));
        return emit(e, n, v);
    }
    default: return mn_jinja_err(e, n, MN_EINTERNAL, "expression executed as a statement");
    }
}

static mn_status exec(jev *e, const jnode *n) {
    MN_FORWARD(enter(e, n));
    mn_status st = exec_inner(e, n);
    e->depth--;
    return st;
}

/* ---------------------------------------------------------------- entry points --------------- */

mn_status mn_jinja_parse(const char *src, size_t len, mn_jinja_template **out, mn_error *err) {
    *out = NULL;
    MN_RETURN_IF(!src && len, err, MN_EINVAL, "template is NULL");
    MN_RETURN_IF(len > MN_JINJA_SOURCE_MAX, err, MN_ETOOBIG, "template is %zu bytes, more than the limit of %u",
                 len, MN_JINJA_SOURCE_MAX);
    mn_jinja_template *t = calloc(1, sizeof *t);
    MN_RETURN_IF(!t, err, MN_ENOMEM, "out of memory");
    /* parse memory is O(template size); the cap is a backstop */
    jarena_init(&t->arena, (size_t)256 << 20);
    jtok *tk = NULL;
    size_t n_tk = 0;
    mn_status st = mn_jinja_normalize(src ? src : "", len, &t->arena, &t->src, &t->src_len, err);
    if (st == MN_OK) st = mn_jinja_lex(t->src, t->src_len, &t->arena, &tk, &n_tk, err);
    if (st == MN_OK) st = mn_jinja_parse_tokens(tk, n_tk, t->src, t->src_len, &t->arena, &t->root, err);
    free(tk);
    if (st != MN_OK) {
        mn_jinja_free(t);
        return st;
    }
    *out = t;
    return MN_OK;
}

void mn_jinja_free(mn_jinja_template *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t);
}

mn_status mn_jinja_render(const mn_jinja_template *t, const cJSON *ctx, const mn_jinja_limits *lim,
                          char **out, size_t *out_len, mn_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    MN_RETURN_IF(!t || !lim, err, MN_EINVAL, "template and limits are required");
    MN_RETURN_IF(ctx && !cJSON_IsObject(ctx), err, MN_EINVAL, "the template context must be a JSON object");
    jev e = {.t = t, .err = err, .steps_max = lim->n_steps_max, .out_max = lim->out_bytes_max, .now = lim->now};
    e.depth_max = lim->depth_max < MN_JINJA_DEPTH_HARD_MAX ? lim->depth_max : MN_JINJA_DEPTH_HARD_MAX;
    jarena_init(&e.arena, lim->mem_bytes_max);
    jframe root = {0};
    e.frame = e.root = &root;
    jbuf result = {0};
    e.sink = &result;
    mn_status st;
    jv g = {.t = JV_NONE};
    if (ctx) {
        st = mn_jv_from_json(&e, ctx, &g, 0);
    } else {
        jdict *d = NULL;
        st = mn_jdict_new(&e, NULL, 0, &d);
        g = (jv){.t = JV_DICT, .u.d = d};
    }
    if (st == MN_OK) {
        e.globals = g.u.d;
        st = exec(&e, t->root);
    }
    if (st == MN_OK) {
        char *s = malloc(result.n + 1);
        if (!s) {
            st = mn_error_set(err, MN_ENOMEM, "out of memory copying the output");
        } else {
            if (result.n) memcpy(s, result.p, result.n);
            s[result.n] = '\0';
            *out = s;
            if (out_len) *out_len = result.n;
        }
    }
    jarena_free(&e.arena);
    return st;
}
