/*
 * jinja_internal.h: what the files of the Jinja interpreter share (lexer, parser, values,
 * evaluator, builtins); nothing outside src/tokenizer/jinja*.c includes it.
 *
 * Memory: everything a parse or a render allocates comes from an arena (a list of chunks freed
 * at once), so values can be copied and shared freely with no ownership rules; the only mutable
 * objects are namespaces and the per-loop state, everything else is immutable once built. An
 * arena has a byte budget, which is how a render's memory is bounded.
 *
 * Values (jv) are 24-byte structs passed by value. Strings are (pointer, length) views that may
 * point into the template source, into the caller's JSON context or into the render arena.
 * Undefined values remember why they are undefined (which name or attribute was missing) so the
 * error raised when one is used says so, as Jinja's does.
 *
 * The AST is one node type (jnode) whose children live in kids[]; each kind documents its layout
 * below. Operator chains of one precedence level (a + b - c, a and b and c, a < b < c, a ~ b ~ c)
 * are single n-ary nodes so that long chains do not make deep trees.
 */
#ifndef MN_TOKENIZER_JINJA_INTERNAL_H
#define MN_TOKENIZER_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/jinja.h"

/* ---------------------------------------------------------------- arena ---------------------- */

typedef struct jarena_chunk jarena_chunk;
typedef struct jarena {
    jarena_chunk *head;
    size_t total;     /* bytes of all chunks */
    size_t limit;     /* budget for total (0: none) */
    bool over_budget; /* the last failure was the budget, not malloc */
} jarena;

void jarena_init(jarena *a, size_t limit);
void jarena_free(jarena *a);
/* n bytes aligned for any type, or NULL (budget or malloc; see over_budget). n == 0 is fine. */
void *jarena_alloc(jarena *a, size_t n);
/* n * size bytes, NULL on overflow too. */
void *jarena_alloc_array(jarena *a, size_t n, size_t size);

/* ---------------------------------------------------------------- values --------------------- */

typedef struct jstr {
    const char *p;
    size_t n;
} jstr;

typedef enum jv_type {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,  /* list or tuple (jlist.is_tuple) */
    JV_DICT,  /* insertion-ordered mapping */
    JV_NS,    /* namespace(): a mutable mapping with attribute syntax */
    JV_RANGE, /* range(), iterated lazily */
    JV_FUNC,  /* a global function (jfunc) */
    JV_MACRO, /* a {% macro %} */
    JV_LOOP,  /* the `loop` variable of a for loop */
} jv_type;

/* Why an undefined value is undefined (for the error that using it raises). */
typedef enum jundef_why {
    JU_PLAIN,    /* no detail */
    JU_NAME,     /* variable s was never set */
    JU_ATTR,     /* object of type obj has no attribute s */
    JU_ITEM_STR, /* object of type obj has no key s */
    JU_ITEM_INT, /* object of type obj has no element i */
} jundef_why;

typedef enum jfunc {
    JF_RANGE,
    JF_NAMESPACE,
    JF_RAISE_EXCEPTION,
    JF_STRFTIME_NOW,
    JF_DICT,
} jfunc;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jrange jrange;
typedef struct jloop jloop;
typedef struct jnode jnode;

typedef struct jv {
    uint8_t t;   /* jv_type */
    uint8_t why; /* JV_UNDEF: jundef_why */
    uint8_t obj; /* JV_UNDEF: the jv_type of the object looked into */
    union {
        int64_t i; /* JV_INT, JV_BOOL (0/1), JU_ITEM_INT */
        double f;
        jstr s; /* JV_STR; JV_UNDEF: the missing name */
        jlist *l;
        jdict *d; /* JV_DICT, JV_NS */
        jrange *r;
        const jnode *m; /* JV_MACRO: the S_MACRO node */
        jloop *loop;
        int fn; /* JV_FUNC: jfunc */
    } u;
} jv;

struct jlist {
    size_t n;
    bool is_tuple;
    jv *v;
};

struct jdict {
    size_t n, cap;
    jv *k; /* keys (strings in practice, any value allowed) */
    jv *v;
};

struct jrange {
    int64_t start, stop, step; /* step != 0 */
};

static inline jv jv_undef(void) { return (jv){.t = JV_UNDEF}; }
static inline jv jv_none(void) { return (jv){.t = JV_NONE}; }
static inline jv jv_bool(bool b) { return (jv){.t = JV_BOOL, .u.i = b ? 1 : 0}; }
static inline jv jv_int(int64_t i) { return (jv){.t = JV_INT, .u.i = i}; }
static inline jv jv_float(double f) { return (jv){.t = JV_FLOAT, .u.f = f}; }
static inline jv jv_str(const char *p, size_t n) { return (jv){.t = JV_STR, .u.s = {p, n}}; }
static inline bool jv_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static inline bool jv_is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }

/* Python type name of a value, as Jinja's messages say it ("str", "list", "dict"...). */
const char *jv_type_name(int t);

/* ---------------------------------------------------------------- tokens and AST ------------- */

typedef enum jtok_type {
    TK_EOF,
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_ADD,
    TK_SUB,
    TK_MUL,
    TK_DIV,
    TK_FLOORDIV,
    TK_MOD,
    TK_POW,
    TK_TILDE,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_RBRACE,
    TK_COMMA,
    TK_DOT,
    TK_COLON,
    TK_PIPE,
    TK_ASSIGN,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
} jtok_type;

typedef struct jtok {
    uint8_t type;
    uint32_t pos; /* byte offset in the normalized source */
    union {
        jstr s; /* TEXT, NAME, STRING (unescaped) */
        int64_t i;
        double f;
    } u;
} jtok;

/* Tokenizes src (already normalized, see jinja_lex.c). *out: an array of *n_out tokens ending
 * with TK_EOF, allocated in a (strings too). */
mn_status mn_jinja_lex(const char *src, size_t len, jarena *a, jtok **out, size_t *n_out,
                       mn_error *err);
/* Copies src into a with \r\n and \r turned into \n and one trailing newline dropped (Jinja's
 * newline normalization with keep_trailing_newline off). */
mn_status mn_jinja_normalize(const char *src, size_t len, jarena *a, const char **out,
                             size_t *out_len, mn_error *err);

typedef enum jnode_kind {
    /* expressions */
    E_LIT,     /* lit */
    E_NAME,    /* name */
    E_LIST,    /* kids: items */
    E_TUPLE,   /* kids: items */
    E_DICT,    /* kids: key0, value0, key1, value1... */
    E_ATTR,    /* kids[0].name */
    E_ITEM,    /* kids[0][kids[1]] */
    E_SLICE,   /* kids[0][kids[1]:kids[2]:kids[3]], each of 1..3 may be NULL */
    E_CALL,    /* kids[0](kids[1..]); argnames[i-1] names kids[i] (p NULL: positional) */
    E_FILTER,  /* kids[0] | op(kids[1..]) (kids[0] NULL in a filter block); argnames; name */
    E_TEST,    /* kids[0] is [not] op(kids[1..]); flag: negated; argnames; name */
    E_NOT,     /* not kids[0] */
    E_NEG,     /* -kids[0] */
    E_POS,     /* +kids[0] */
    E_ARITH,   /* kids[0] ops[0] kids[1] ops[1] ... (one precedence level, left to right) */
    E_AND,     /* kids[0] and kids[1] and ... */
    E_OR,      /* kids[0] or kids[1] or ... */
    E_CONCAT,  /* kids[0] ~ kids[1] ~ ... */
    E_COMPARE, /* kids[0] ops[0] kids[1] ops[1] ... (chained, Python style) */
    E_COND,    /* kids[1] if kids[0] else kids[2] (kids[2] NULL: undefined) */
    /* statements */
    S_BODY,      /* kids: statements */
    S_TEXT,      /* name: the text */
    S_OUTPUT,    /* {{ kids[0] }} */
    S_IF,        /* kids: cond0, body0, cond1, body1, ... [, else body when flag] */
    S_FOR,       /* for kids[0] in kids[1] [if kids[2]]: kids[3] [else kids[4]] */
    S_SET,       /* set kids[0] = kids[1]; kids[0] is E_NAME, E_ATTR of a name, or E_TUPLE */
    S_SETBLOCK,  /* set kids[0] %} kids[1] {% endset */
    S_MACRO,     /* macro name(argnames[i] = kids[1+i] or NULL): kids[0] is the body */
    S_BREAK,
    S_CONTINUE,
    S_FILTERBLOCK, /* filter kids[0] (an E_FILTER chain with a NULL innermost value): kids[1] */
} jnode_kind;

/* Operators of E_ARITH and E_COMPARE (ops[]). */
typedef enum jop {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN,
} jop;

struct jnode {
    uint8_t kind;
    uint8_t flag;
    uint16_t height; /* 1 + the tallest child */
    uint16_t op;     /* E_FILTER / E_TEST: index in the builtin tables */
    uint32_t pos;    /* byte offset in the normalized source */
    uint32_t n;      /* entries in kids */
    jnode **kids;
    uint8_t *ops;    /* E_ARITH, E_COMPARE: n - 1 operators */
    jstr *argnames;  /* E_CALL, E_FILTER, E_TEST: n - 1; S_MACRO: n - 1 parameter names */
    jstr name;
    jv lit;
};

struct mn_jinja_template {
    jarena arena; /* owns everything below */
    const char *src; /* normalized source (positions refer to it) */
    size_t src_len;
    jnode *root; /* S_BODY */
};

/* Parses tokens into an S_BODY tree allocated in a. */
mn_status mn_jinja_parse_tokens(const jtok *tk, size_t n_tk, const char *src, size_t src_len,
                                jarena *a, jnode **out, mn_error *err);

/* 1-based line and column (in code points) of byte offset pos of src. */
void mn_jinja_line_col(const char *src, size_t len, size_t pos, int *line, int *col);
/* Sets err to "line L, column C: <fmt>" with status st; returns st. */
mn_status mn_jinja_fail(mn_error *err, mn_status st, const char *src, size_t len, size_t pos,
                        const char *fmt, ...) MN_PRINTF(6, 7);

/* ---------------------------------------------------------------- builtins tables ------------ */

/* Names of the filters and tests, indexed by jnode.op; lookups return -1 when unknown. */
int mn_jinja_filter_lookup(const char *name, size_t n);
int mn_jinja_test_lookup(const char *name, size_t n);
/* 1 when name is a Jinja filter or test that this interpreter does not implement (so the error
 * says "unsupported" rather than "unknown"). */
bool mn_jinja_filter_known_unsupported(const char *name, size_t n);

/* ---------------------------------------------------------------- evaluation ----------------- */

typedef struct jframe jframe;
typedef struct jbuf jbuf;

typedef enum jctl { CTL_NONE, CTL_BREAK, CTL_CONTINUE } jctl;

/* The state of one render. */
typedef struct jev {
    const mn_jinja_template *t;
    jarena arena;
    mn_error *err;
    uint64_t steps, steps_max;
    uint32_t depth, depth_max;
    size_t out_max;
    int64_t now;
    jbuf *sink;    /* where output goes now (the result, or a block being captured) */
    jframe *frame; /* innermost scope */
    jframe *root;  /* top-level scope (macros resolve names from here) */
    jdict *globals;
    jctl ctl;      /* a pending break/continue */
} jev;

struct jloop {
    int64_t index0, length;
    const jv *items; /* the iterated values when they are materialized (NULL for a range) */
    const jrange *range;
};

/* Errors at node n ("line L, column C: ..."). */
mn_status mn_jinja_err(jev *e, const jnode *n, mn_status st, const char *fmt, ...) MN_PRINTF(4, 5);
/* The error for using an undefined value at n. */
mn_status mn_jinja_err_undef(jev *e, const jnode *n, jv v);
/* Charges cost steps; fails with MN_EFULL past the budget. */
mn_status mn_jinja_charge(jev *e, const jnode *n, uint64_t cost);
/* Arena allocation that reports failure as an error at n. */
mn_status mn_jinja_alloc(jev *e, const jnode *n, size_t count, size_t size, void **out);

/* A growable string in the render arena (the old buffer is abandoned on growth, so the garbage
 * is less than the final size). Every append is charged (1 step per 64 bytes) and capped at the
 * output limit. */
struct jbuf {
    char *p;
    size_t n, cap;
};
mn_status mn_jbuf_put(jev *e, const jnode *n, jbuf *b, const char *p, size_t len);
mn_status mn_jbuf_putc(jev *e, const jnode *n, jbuf *b, char c);
mn_status mn_jbuf_printf(jev *e, const jnode *n, jbuf *b, const char *fmt, ...) MN_PRINTF(4, 5);
static inline jv mn_jbuf_value(const jbuf *b) { return jv_str(b->p ? b->p : "", b->n); }

/* Value semantics (jinja_value.c). */
bool mn_jv_truthy(jv v);
/* Python == (charged per element visited). */
mn_status mn_jv_eq(jev *e, const jnode *n, jv a, jv b, bool *out);
/* Python <, <=, >, >= via a three-way compare; fails (TypeError) on unorderable types.
 * fold_case: compare strings case-insensitively (sort/unique/min/max filters). */
mn_status mn_jv_compare(jev *e, const jnode *n, jv a, jv b, bool fold_case, int *out);
/* str(v): strings as they are, others formatted Python style. Undefined prints as "". */
mn_status mn_jv_to_str(jev *e, const jnode *n, jv v, jstr *out);
/* Appends str(v) / repr(v) to b. */
mn_status mn_jv_put_str(jev *e, const jnode *n, jbuf *b, jv v);
mn_status mn_jv_put_repr(jev *e, const jnode *n, jbuf *b, jv v, int depth);
/* Appends json.dumps(v, ensure_ascii=False, indent, separators, sort_keys) to b.
 * indent: NULL for none; item_sep/key_sep: NULL for the defaults. */
typedef struct jjson_opts {
    const jstr *indent;
    jstr item_sep, key_sep;
    bool sort_keys;
} jjson_opts;
mn_status mn_jv_put_json(jev *e, const jnode *n, jbuf *b, jv v, const jjson_opts *o, int level);
/* Python repr of a float, shortest round trip ("0.1", "1e+16", "inf"). */
int mn_jinja_format_float(double f, char *buf, size_t cap);
/* Converts a cJSON tree into values (strings borrowed from the tree). */
mn_status mn_jv_from_json(jev *e, const cJSON *j, jv *out, int depth);
/* Dict helpers. */
mn_status mn_jdict_new(jev *e, const jnode *n, size_t cap, jdict **out);
mn_status mn_jdict_set(jev *e, const jnode *n, jdict *d, jv k, jv v);
/* Steps a lookup of k in d costs (callers charge it before looking up). */
uint64_t mn_jdict_lookup_cost(const jdict *d, jv k);
/* The value stored under string key k, or NULL. */
jv *mn_jdict_get_str(const jdict *d, const char *k, size_t kn);
jv *mn_jdict_get(const jdict *d, jv k);
mn_status mn_jlist_new(jev *e, const jnode *n, size_t len, jlist **out);

/* Length of a sized value (str in code points, list, dict, range, undefined: 0); fails on
 * others. */
mn_status mn_jv_length(jev *e, const jnode *n, jv v, int64_t *out);
/* Materializes an iterable into an array of values: list/tuple items (no copy), dict keys, the
 * characters of a string, a range, nothing for undefined. Fails for non-iterables. */
mn_status mn_jv_items(jev *e, const jnode *n, jv v, const jv **items, size_t *n_items);

/* Python `item in container` (str: substring; list: ==; dict: key; undefined: false). */
mn_status mn_jv_contains(jev *e, const jnode *n, jv container, jv item, bool *out);

/* Item and attribute access, Jinja style (missing: an undefined value that remembers why). */
mn_status mn_jv_getattr(jev *e, const jnode *n, jv obj, jstr name, jv *out);
mn_status mn_jv_getitem(jev *e, const jnode *n, jv obj, jv key, jv *out);

/* UTF-8 helpers: decode one code point (invalid bytes decode as themselves, length 1). */
size_t mn_utf8_decode(const char *p, size_t n, uint32_t *cp);
size_t mn_utf8_encode(uint32_t cp, char *out);
size_t mn_utf8_count(const char *p, size_t n);
/* Python str.isspace() for one code point. */
bool mn_py_isspace(uint32_t cp);

/* Builtins (jinja_builtins.c): filter / test / method / global function calls with evaluated
 * arguments. args[0..n_args) with names (p NULL: positional). For filters and tests the value is
 * passed separately. */
typedef struct jargs {
    const jv *v;
    const jstr *names;
    size_t n;
} jargs;
mn_status mn_jinja_filter(jev *e, const jnode *n, int filter, jv value, const jargs *a, jv *out);
mn_status mn_jinja_test(jev *e, const jnode *n, int test, jv value, const jargs *a, bool *out);
/* Calls a method name of obj; *handled false when obj has no builtin method of that name. */
mn_status mn_jinja_method(jev *e, const jnode *n, jv obj, jstr name, const jargs *a, jv *out,
                          bool *handled);
mn_status mn_jinja_call_func(jev *e, const jnode *n, int fn, const jargs *a, jv *out);
/* Looks up a global function by name (range, namespace...); false when none. */
bool mn_jinja_func_lookup(jstr name, jv *out);
/* Calls a macro or function value (used by the evaluator and by filters that call back). */
mn_status mn_jinja_call_value(jev *e, const jnode *n, jv callee, const jargs *a, jv *out);

static inline bool jstr_eq(jstr a, const char *b) {
    size_t i = 0;
    for (; i < a.n; i++)
        if (b[i] == '\0' || a.p[i] != b[i]) return false;
    return b[i] == '\0';
}

#endif
