/*
 * jinja_parse.c: recursive-descent parser from tokens to the AST of jinja_internal.h.
 *
 * The grammar and precedences are Jinja's (parser.py), loosest first:
 *   conditional  a if b else c        or / and / not
 *   compare      == != < <= > >= in, not in (chained: a < b < c)
 *   math1        + -                  concat  ~
 *   math2        * / // %             pow     ** (left-associative, as in Jinja)
 *   unary        - +  then primary, postfix (.attr [item] [a:b:c] (call)), then filters
 *                (| name(args)) and tests (is [not] name(args) / is name arg) which bind
 *                tighter than any binary operator: "a + b | trim" trims b only.
 * Statements: if/elif/else, for (with a loop filter "if", else, unpacking targets), set (names,
 * tuples of names, namespace attributes, block set), macro, filter blocks, break/continue (only
 * inside a loop), generation (rendered as its body). Unknown filters and tests are rejected here,
 * at parse time, as Jinja does.
 *
 * Bounds: recursion depth is capped (so a template of 100000 "(" cannot exhaust the C stack) and
 * every node records its height, capped at MN_JINJA_TREE_HEIGHT_MAX, which bounds the recursion of
 * the evaluator on the tree. Calls take at most MAX_ARGS arguments.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

#define PARSE_DEPTH_MAX 160
#define MAX_ARGS 32

typedef struct parser {
    const jtok *tk;
    size_t n_tk, i;
    const char *src;
    size_t src_len;
    jarena *a;
    mn_error *err;
    int depth;
    int loop_depth; /* for break/continue */
} parser;

/* ---------------------------------------------------------------- helpers -------------------- */

static const jtok *cur(const parser *p) { return &p->tk[p->i]; }
static const jtok *peek(const parser *p, size_t k) {
    size_t j = p->i + k;
    return &p->tk[j < p->n_tk ? j : p->n_tk - 1];
}
static void advance(parser *p) {
    if (p->i + 1 < p->n_tk) p->i++;
}

static const char *tok_desc(const jtok *t) {
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return "name";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_ADD: return "'+'";
    case TK_SUB: return "'-'";
    case TK_MUL: return "'*'";
    case TK_DIV: return "'/'";
    case TK_FLOORDIV: return "'//'";
    case TK_MOD: return "'%'";
    case TK_POW: return "'**'";
    case TK_TILDE: return "'~'";
    case TK_LPAREN: return "'('";
    case TK_RPAREN: return "')'";
    case TK_LBRACKET: return "'['";
    case TK_RBRACKET: return "']'";
    case TK_LBRACE: return "'{'";
    case TK_RBRACE: return "'}'";
    case TK_COMMA: return "','";
    case TK_DOT: return "'.'";
    case TK_COLON: return "':'";
    case TK_PIPE: return "'|'";
    case TK_ASSIGN: return "'='";
    case TK_EQ: return "'=='";
    case TK_NE: return "'!='";
    case TK_LT: return "'<'";
    case TK_LE: return "'<='";
    case TK_GT: return "'>'";
    case TK_GE: return "'>='";
    }
    return "token";
}

static mn_status fail_at(parser *p, size_t pos, mn_status st, const char *fmt, ...) MN_PRINTF(4, 5);
static mn_status fail_at(parser *p, size_t pos, mn_status st, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mn_jinja_fail(p->err, st, p->src, p->src_len, pos, "%s", msg);
}

static mn_status unexpected(parser *p, const char *expected) {
    const jtok *t = cur(p);
    if (t->type == TK_NAME)
        return fail_at(p, t->pos, MN_EINVAL, "expected %s, got '%.*s'", expected, (int)t->u.s.n, t->u.s.p);
    return fail_at(p, t->pos, MN_EINVAL, "expected %s, got %s", expected, tok_desc(t));
}

static bool is_word(const jtok *t, const char *w) { return t->type == TK_NAME && jstr_eq(t->u.s, w); }

static mn_status expect(parser *p, jtok_type type, const char *what) {
    if (cur(p)->type != type) return unexpected(p, what);
    advance(p);
    return MN_OK;
}

static mn_status new_node(parser *p, jnode_kind kind, size_t pos, size_t n_kids, jnode **out) {
    jnode *nd = jarena_alloc(p->a, sizeof *nd);
    MN_RETURN_IF(!nd, p->err, MN_ENOMEM, "out of memory parsing the template");
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->pos = (uint32_t)pos;
    nd->n = (uint32_t)n_kids;
    if (n_kids) {
        nd->kids = jarena_alloc_array(p->a, n_kids, sizeof *nd->kids);
        MN_RETURN_IF(!nd->kids, p->err, MN_ENOMEM, "out of memory parsing the template");
        memset(nd->kids, 0, n_kids * sizeof *nd->kids);
    }
    *out = nd;
    return MN_OK;
}

/* Computes the height of nd from its kids and enforces the cap. */
static mn_status finish(parser *p, jnode *nd) {
    unsigned h = 0;
    for (uint32_t k = 0; k < nd->n; k++)
        if (nd->kids[k] && nd->kids[k]->height > h) h = nd->kids[k]->height;
    if (h + 1 > MN_JINJA_TREE_HEIGHT_MAX)
        return fail_at(p, nd->pos, MN_EFULL, "template nested too deeply (more than %d levels)",
                       MN_JINJA_TREE_HEIGHT_MAX);
    nd->height = (uint16_t)(h + 1);
    return MN_OK;
}

static mn_status node1(parser *p, jnode_kind kind, size_t pos, jnode *a, jnode **out) {
    MN_FORWARD(new_node(p, kind, pos, 1, out));
    (*out)->kids[0] = a;
    return finish(p, *out);
}

static mn_status enter(parser *p) {
    if (++p->depth > PARSE_DEPTH_MAX)
        return fail_at(p, cur(p)->pos, MN_EFULL, "template nested too deeply (more than %d levels)",
                       PARSE_DEPTH_MAX);
    return MN_OK;
}

/* A growable byte array (operator lists) in the parse arena. */
typedef struct bvec {
    uint8_t *v;
    size_t n, cap;
} bvec;

static mn_status bvec_push(parser *p, bvec *v, uint8_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        uint8_t *nv = jarena_alloc(p->a, cap);
        MN_RETURN_IF(!nv, p->err, MN_ENOMEM, "out of memory parsing the template");
        if (v->n) memcpy(nv, v->v, v->n);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return MN_OK;
}

/* A growable array of node pointers in the parse arena. */
typedef struct nvec {
    jnode **v;
    size_t n, cap;
} nvec;

static mn_status nvec_push(parser *p, nvec *v, jnode *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        jnode **nv = jarena_alloc_array(p->a, cap, sizeof *nv);
        MN_RETURN_IF(!nv, p->err, MN_ENOMEM, "out of memory parsing the template");
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return MN_OK;
}

static mn_status node_from_vec(parser *p, jnode_kind kind, size_t pos, const nvec *v, jnode **out) {
    MN_FORWARD(new_node(p, kind, pos, v->n, out));
    if (v->n) memcpy((*out)->kids, v->v, v->n * sizeof *v->v);
    return finish(p, *out);
}

/* ---------------------------------------------------------------- expressions ---------------- */

static mn_status parse_expression(parser *p, bool with_condexpr, jnode **out);
static mn_status parse_tuple(parser *p, bool with_condexpr, bool explicit_parens, jnode **out);
static mn_status parse_unary(parser *p, bool with_filter, jnode **out);
static mn_status parse_primary(parser *p, jnode **out);

/* Arguments of a call, filter or test: "(" [expr | name=expr] ... ")" with the callee (or the
 * filtered value) as kids[0]. */
static mn_status parse_call_args(parser *p, jnode_kind kind, size_t pos, jnode *first, jnode **out) {
    MN_FORWARD(expect(p, TK_LPAREN, "'('"));
    jnode *args[MAX_ARGS];
    jstr names[MAX_ARGS];
    size_t n = 0;
    bool seen_kw = false;
    while (cur(p)->type != TK_RPAREN) {
        if (n > 0) {
            MN_FORWARD(expect(p, TK_COMMA, "',' or ')'"));
            if (cur(p)->type == TK_RPAREN) break;
        }
        if (n == MAX_ARGS)
            return fail_at(p, cur(p)->pos, MN_EINVAL, "more than %d arguments in one call", MAX_ARGS);
        if (cur(p)->type == TK_MUL || cur(p)->type == TK_POW)
            return fail_at(p, cur(p)->pos, MN_EUNSUPPORTED, "*args and **kwargs are not supported");
        jstr name = {0};
        if (cur(p)->type == TK_NAME && peek(p, 1)->type == TK_ASSIGN) {
            name = cur(p)->u.s;
            advance(p);
            advance(p);
            seen_kw = true;
        } else if (seen_kw) {
            return fail_at(p, cur(p)->pos, MN_EINVAL, "positional argument after a keyword argument");
        }
        MN_FORWARD(parse_expression(p, true, &args[n]));
        names[n] = name;
        n++;
    }
    advance(p); /* ')' */
    jnode *nd = NULL;
    MN_FORWARD(new_node(p, kind, pos, n + 1, &nd));
    nd->kids[0] = first;
    if (n) {
        memcpy(nd->kids + 1, args, n * sizeof *args);
        nd->argnames = jarena_alloc_array(p->a, n, sizeof *nd->argnames);
        MN_RETURN_IF(!nd->argnames, p->err, MN_ENOMEM, "out of memory parsing the template");
        memcpy(nd->argnames, names, n * sizeof *names);
    }
    *out = nd;
    return finish(p, nd);
}

/* expr[...]: an index or a slice. */
static mn_status parse_subscript(parser *p, jnode *obj, jnode **out) {
    size_t pos = cur(p)->pos;
    advance(p); /* '[' */
    jnode *parts[3] = {NULL, NULL, NULL};
    if (cur(p)->type != TK_COLON) {
        MN_FORWARD(parse_expression(p, true, &parts[0]));
        if (cur(p)->type != TK_COLON) {
            if (cur(p)->type == TK_COMMA)
                return fail_at(p, cur(p)->pos, MN_EUNSUPPORTED, "tuple subscripts are not supported");
            MN_FORWARD(expect(p, TK_RBRACKET, "']'"));
            jnode *nd = NULL;
            MN_FORWARD(new_node(p, E_ITEM, pos, 2, &nd));
            nd->kids[0] = obj;
            nd->kids[1] = parts[0];
            *out = nd;
            return finish(p, nd);
        }
    }
    advance(p); /* first ':' */
    if (cur(p)->type != TK_COLON && cur(p)->type != TK_RBRACKET)
        MN_FORWARD(parse_expression(p, true, &parts[1]));
    if (cur(p)->type == TK_COLON) {
        advance(p);
        if (cur(p)->type != TK_RBRACKET) MN_FORWARD(parse_expression(p, true, &parts[2]));
    }
    MN_FORWARD(expect(p, TK_RBRACKET, "']'"));
    jnode *nd = NULL;
    MN_FORWARD(new_node(p, E_SLICE, pos, 4, &nd));
    nd->kids[0] = obj;
    nd->kids[1] = parts[0];
    nd->kids[2] = parts[1];
    nd->kids[3] = parts[2];
    *out = nd;
    return finish(p, nd);
}

static mn_status parse_postfix(parser *p, jnode *node, jnode **out) {
    for (;;) {
        const jtok *t = cur(p);
        if (t->type == TK_DOT) {
            size_t pos = t->pos;
            advance(p);
            t = cur(p);
            if (t->type == TK_NAME) {
                jnode *nd = NULL;
                MN_FORWARD(node1(p, E_ATTR, pos, node, &nd));
                nd->name = t->u.s;
                advance(p);
                node = nd;
            } else if (t->type == TK_INT) {
                jnode *idx = NULL, *nd = NULL;
                MN_FORWARD(new_node(p, E_LIT, t->pos, 0, &idx));
                idx->lit = jv_int(t->u.i);
                MN_FORWARD(finish(p, idx));
                advance(p);
                MN_FORWARD(new_node(p, E_ITEM, pos, 2, &nd));
                nd->kids[0] = node;
                nd->kids[1] = idx;
                MN_FORWARD(finish(p, nd));
                node = nd;
            } else {
                return unexpected(p, "an attribute name after '.'");
            }
        } else if (t->type == TK_LBRACKET) {
            MN_FORWARD(parse_subscript(p, node, &node));
        } else if (t->type == TK_LPAREN) {
            /* a call is reported at its callee: f(...) at f */
            MN_FORWARD(parse_call_args(p, E_CALL, node->pos, node, &node));
        } else {
            break;
        }
    }
    *out = node;
    return MN_OK;
}

/* "| name" or "| name(args)" applied to value (NULL in a filter block). */
static mn_status parse_filter(parser *p, jnode *value, jnode **out) {
    const jtok *t = cur(p);
    if (t->type != TK_NAME) return unexpected(p, "a filter name");
    jstr name = t->u.s;
    size_t pos = t->pos;
    int id = mn_jinja_filter_lookup(name.p, name.n);
    if (id < 0) {
        if (mn_jinja_filter_known_unsupported(name.p, name.n))
            return fail_at(p, pos, MN_EUNSUPPORTED, "the filter '%.*s' is not supported", (int)name.n, name.p);
        return fail_at(p, pos, MN_EINVAL, "unknown filter '%.*s'", (int)name.n, name.p);
    }
    advance(p);
    jnode *nd = NULL;
    if (cur(p)->type == TK_LPAREN) {
        MN_FORWARD(parse_call_args(p, E_FILTER, pos, value, &nd));
    } else {
        MN_FORWARD(node1(p, E_FILTER, pos, value, &nd));
    }
    nd->op = (uint16_t)id;
    nd->name = name;
    *out = nd;
    return MN_OK;
}

static mn_status parse_test(parser *p, jnode *value, jnode **out) {
    size_t is_pos = cur(p)->pos;
    advance(p); /* "is" */
    bool negated = false;
    if (is_word(cur(p), "not")) {
        negated = true;
        advance(p);
    }
    const jtok *t = cur(p);
    if (t->type != TK_NAME) return unexpected(p, "a test name after 'is'");
    jstr name = t->u.s;
    int id = mn_jinja_test_lookup(name.p, name.n);
    if (id < 0) return fail_at(p, t->pos, MN_EINVAL, "unknown test '%.*s'", (int)name.n, name.p);
    advance(p);
    jnode *nd = NULL;
    t = cur(p);
    if (t->type == TK_LPAREN) {
        MN_FORWARD(parse_call_args(p, E_TEST, is_pos, value, &nd));
    } else if ((t->type == TK_NAME || t->type == TK_STRING || t->type == TK_INT || t->type == TK_FLOAT ||
                t->type == TK_LBRACKET || t->type == TK_LBRACE) &&
               !is_word(t, "else") && !is_word(t, "or") && !is_word(t, "and")) {
        if (is_word(t, "is")) return fail_at(p, t->pos, MN_EINVAL, "tests cannot be chained with 'is'");
        jnode *arg = NULL;
        MN_FORWARD(enter(p));
        MN_FORWARD(parse_primary(p, &arg));
        MN_FORWARD(parse_postfix(p, arg, &arg));
        p->depth--;
        MN_FORWARD(new_node(p, E_TEST, is_pos, 2, &nd));
        nd->kids[0] = value;
        nd->kids[1] = arg;
        nd->argnames = jarena_alloc(p->a, sizeof *nd->argnames);
        MN_RETURN_IF(!nd->argnames, p->err, MN_ENOMEM, "out of memory parsing the template");
        nd->argnames[0] = (jstr){0};
        MN_FORWARD(finish(p, nd));
    } else {
        MN_FORWARD(node1(p, E_TEST, is_pos, value, &nd));
    }
    nd->op = (uint16_t)id;
    nd->flag = negated;
    nd->name = name;
    *out = nd;
    return MN_OK;
}

static mn_status parse_filter_expr(parser *p, jnode *node, jnode **out) {
    for (;;) {
        const jtok *t = cur(p);
        if (t->type == TK_PIPE) {
            advance(p);
            MN_FORWARD(parse_filter(p, node, &node));
        } else if (is_word(t, "is")) {
            MN_FORWARD(parse_test(p, node, &node));
        } else if (t->type == TK_LPAREN) {
            MN_FORWARD(parse_call_args(p, E_CALL, node->pos, node, &node));
        } else {
            break;
        }
    }
    *out = node;
    return MN_OK;
}

static mn_status lit_node(parser *p, size_t pos, jv v, jnode **out) {
    MN_FORWARD(new_node(p, E_LIT, pos, 0, out));
    (*out)->lit = v;
    return finish(p, *out);
}

static mn_status parse_primary(parser *p, jnode **out) {
    const jtok *t = cur(p);
    size_t pos = t->pos;
    switch (t->type) {
    case TK_NAME: {
        jstr w = t->u.s;
        advance(p);
        if (jstr_eq(w, "true") || jstr_eq(w, "True")) return lit_node(p, pos, jv_bool(true), out);
        if (jstr_eq(w, "false") || jstr_eq(w, "False")) return lit_node(p, pos, jv_bool(false), out);
        if (jstr_eq(w, "none") || jstr_eq(w, "None")) return lit_node(p, pos, jv_none(), out);
        MN_FORWARD(new_node(p, E_NAME, pos, 0, out));
        (*out)->name = w;
        return finish(p, *out);
    }
    case TK_STRING: {
        /* adjacent literals concatenate: 'a' 'b' == 'ab' */
        jstr s = t->u.s;
        advance(p);
        if (cur(p)->type == TK_STRING) {
            size_t total = s.n;
            for (size_t k = 0; peek(p, k)->type == TK_STRING; k++) total += peek(p, k)->u.s.n;
            char *buf = jarena_alloc(p->a, total + 1);
            MN_RETURN_IF(!buf, p->err, MN_ENOMEM, "out of memory parsing the template");
            memcpy(buf, s.p, s.n);
            size_t o = s.n;
            while (cur(p)->type == TK_STRING) {
                memcpy(buf + o, cur(p)->u.s.p, cur(p)->u.s.n);
                o += cur(p)->u.s.n;
                advance(p);
            }
            buf[o] = '\0';
            s = (jstr){buf, o};
        }
        return lit_node(p, pos, jv_str(s.p, s.n), out);
    }
    case TK_INT: advance(p); return lit_node(p, pos, jv_int(t->u.i), out);
    case TK_FLOAT: advance(p); return lit_node(p, pos, jv_float(t->u.f), out);
    case TK_LPAREN: {
        advance(p);
        MN_FORWARD(parse_tuple(p, true, true, out));
        return expect(p, TK_RPAREN, "')'");
    }
    case TK_LBRACKET: {
        advance(p);
        nvec items = {0};
        while (cur(p)->type != TK_RBRACKET) {
            if (items.n > 0) {
                MN_FORWARD(expect(p, TK_COMMA, "',' or ']'"));
                if (cur(p)->type == TK_RBRACKET) break;
            }
            jnode *x = NULL;
            MN_FORWARD(parse_expression(p, true, &x));
            MN_FORWARD(nvec_push(p, &items, x));
        }
        advance(p);
        return node_from_vec(p, E_LIST, pos, &items, out);
    }
    case TK_LBRACE: {
        advance(p);
        nvec kv = {0};
        while (cur(p)->type != TK_RBRACE) {
            if (kv.n > 0) {
                MN_FORWARD(expect(p, TK_COMMA, "',' or '}'"));
                if (cur(p)->type == TK_RBRACE) break;
            }
            jnode *k = NULL, *v = NULL;
            MN_FORWARD(parse_expression(p, true, &k));
            MN_FORWARD(expect(p, TK_COLON, "':'"));
            MN_FORWARD(parse_expression(p, true, &v));
            MN_FORWARD(nvec_push(p, &kv, k));
            MN_FORWARD(nvec_push(p, &kv, v));
        }
        advance(p);
        return node_from_vec(p, E_DICT, pos, &kv, out);
    }
    default: return unexpected(p, "an expression");
    }
}

static mn_status parse_unary(parser *p, bool with_filter, jnode **out) {
    MN_FORWARD(enter(p));
    const jtok *t = cur(p);
    jnode *node = NULL;
    if (t->type == TK_SUB || t->type == TK_ADD) {
        size_t pos = t->pos;
        bool neg = t->type == TK_SUB;
        advance(p);
        jnode *x = NULL;
        MN_FORWARD(parse_unary(p, false, &x));
        if (neg && x->kind == E_LIT && x->lit.t == JV_INT && x->lit.u.i != INT64_MIN) {
            x->lit.u.i = -x->lit.u.i;
            node = x;
        } else if (neg && x->kind == E_LIT && x->lit.t == JV_FLOAT) {
            x->lit.u.f = -x->lit.u.f;
            node = x;
        } else {
            MN_FORWARD(node1(p, neg ? E_NEG : E_POS, pos, x, &node));
        }
    } else {
        MN_FORWARD(parse_primary(p, &node));
    }
    MN_FORWARD(parse_postfix(p, node, &node));
    if (with_filter) MN_FORWARD(parse_filter_expr(p, node, &node));
    p->depth--;
    *out = node;
    return MN_OK;
}

/* One precedence level of left-to-right binary operators folded into an n-ary node. */
typedef mn_status (*parse_fn)(parser *p, jnode **out);

static int arith_op(jtok_type t, int level) {
    switch (level) {
    case 1: return t == TK_ADD ? OP_ADD : t == TK_SUB ? OP_SUB : -1;
    case 2:
        return t == TK_MUL ? OP_MUL : t == TK_DIV ? OP_DIV : t == TK_FLOORDIV ? OP_FLOORDIV : t == TK_MOD ? OP_MOD : -1;
    default: return t == TK_POW ? OP_POW : -1;
    }
}

static mn_status parse_pow_operand(parser *p, jnode **out) { return parse_unary(p, true, out); }
static mn_status parse_math2(parser *p, jnode **out);
static mn_status parse_concat(parser *p, jnode **out);

static mn_status parse_arith_level(parser *p, int level, parse_fn operand, jnode **out) {
    jnode *first = NULL;
    MN_FORWARD(operand(p, &first));
    if (arith_op(cur(p)->type, level) < 0) {
        *out = first;
        return MN_OK;
    }
    size_t pos = cur(p)->pos;
    nvec kids = {0};
    bvec ops = {0};
    MN_FORWARD(nvec_push(p, &kids, first));
    int op;
    while ((op = arith_op(cur(p)->type, level)) >= 0) {
        MN_FORWARD(bvec_push(p, &ops, (uint8_t)op));
        advance(p);
        jnode *x = NULL;
        MN_FORWARD(operand(p, &x));
        MN_FORWARD(nvec_push(p, &kids, x));
    }
    MN_FORWARD(node_from_vec(p, E_ARITH, pos, &kids, out));
    (*out)->ops = ops.v;
    return MN_OK;
}

static mn_status parse_pow(parser *p, jnode **out) { return parse_arith_level(p, 3, parse_pow_operand, out); }
static mn_status parse_math2(parser *p, jnode **out) { return parse_arith_level(p, 2, parse_pow, out); }

static mn_status parse_concat(parser *p, jnode **out) {
    jnode *first = NULL;
    MN_FORWARD(parse_math2(p, &first));
    if (cur(p)->type != TK_TILDE) {
        *out = first;
        return MN_OK;
    }
    size_t pos = cur(p)->pos;
    nvec kids = {0};
    MN_FORWARD(nvec_push(p, &kids, first));
    while (cur(p)->type == TK_TILDE) {
        advance(p);
        jnode *x = NULL;
        MN_FORWARD(parse_math2(p, &x));
        MN_FORWARD(nvec_push(p, &kids, x));
    }
    return node_from_vec(p, E_CONCAT, pos, &kids, out);
}

static mn_status parse_math1(parser *p, jnode **out) { return parse_arith_level(p, 1, parse_concat, out); }

static int compare_op(parser *p, size_t *n_tokens) {
    const jtok *t = cur(p);
    *n_tokens = 1;
    switch (t->type) {
    case TK_EQ: return OP_EQ;
    case TK_NE: return OP_NE;
    case TK_LT: return OP_LT;
    case TK_LE: return OP_LE;
    case TK_GT: return OP_GT;
    case TK_GE: return OP_GE;
    default: break;
    }
    if (is_word(t, "in")) return OP_IN;
    if (is_word(t, "not") && is_word(peek(p, 1), "in")) {
        *n_tokens = 2;
        return OP_NOTIN;
    }
    return -1;
}

static mn_status parse_compare(parser *p, jnode **out) {
    jnode *first = NULL;
    MN_FORWARD(parse_math1(p, &first));
    size_t nt;
    if (compare_op(p, &nt) < 0) {
        *out = first;
        return MN_OK;
    }
    size_t pos = cur(p)->pos;
    nvec kids = {0};
    bvec ops = {0};
    MN_FORWARD(nvec_push(p, &kids, first));
    int op;
    while ((op = compare_op(p, &nt)) >= 0) {
        MN_FORWARD(bvec_push(p, &ops, (uint8_t)op));
        for (size_t k = 0; k < nt; k++) advance(p);
        jnode *x = NULL;
        MN_FORWARD(parse_math1(p, &x));
        MN_FORWARD(nvec_push(p, &kids, x));
    }
    MN_FORWARD(node_from_vec(p, E_COMPARE, pos, &kids, out));
    (*out)->ops = ops.v;
    return MN_OK;
}

static mn_status parse_not(parser *p, jnode **out) {
    if (is_word(cur(p), "not")) {
        size_t pos = cur(p)->pos;
        advance(p);
        MN_FORWARD(enter(p));
        jnode *x = NULL;
        MN_FORWARD(parse_not(p, &x));
        p->depth--;
        return node1(p, E_NOT, pos, x, out);
    }
    return parse_compare(p, out);
}

static mn_status parse_logic(parser *p, const char *word, jnode_kind kind, parse_fn operand, jnode **out) {
    jnode *first = NULL;
    MN_FORWARD(operand(p, &first));
    if (!is_word(cur(p), word)) {
        *out = first;
        return MN_OK;
    }
    size_t pos = cur(p)->pos;
    nvec kids = {0};
    MN_FORWARD(nvec_push(p, &kids, first));
    while (is_word(cur(p), word)) {
        advance(p);
        jnode *x = NULL;
        MN_FORWARD(operand(p, &x));
        MN_FORWARD(nvec_push(p, &kids, x));
    }
    return node_from_vec(p, kind, pos, &kids, out);
}

static mn_status parse_and(parser *p, jnode **out) { return parse_logic(p, "and", E_AND, parse_not, out); }
static mn_status parse_or(parser *p, jnode **out) { return parse_logic(p, "or", E_OR, parse_and, out); }

static mn_status parse_condexpr(parser *p, jnode **out) {
    jnode *e1;
    MN_FORWARD(parse_or(p, &e1));
    while (is_word(cur(p), "if")) {
        size_t pos = cur(p)->pos;
        advance(p);
        jnode *cond, *e3 = NULL;
        MN_FORWARD(parse_or(p, &cond));
        if (is_word(cur(p), "else")) {
            advance(p);
            MN_FORWARD(enter(p));
            MN_FORWARD(parse_condexpr(p, &e3));
            p->depth--;
        }
        jnode *nd = NULL;
        MN_FORWARD(new_node(p, E_COND, pos, 3, &nd));
        nd->kids[0] = cond;
        nd->kids[1] = e1;
        nd->kids[2] = e3;
        MN_FORWARD(finish(p, nd));
        e1 = nd;
    }
    *out = e1;
    return MN_OK;
}

static mn_status parse_expression(parser *p, bool with_condexpr, jnode **out) {
    MN_FORWARD(enter(p));
    MN_FORWARD(with_condexpr ? parse_condexpr(p, out) : parse_or(p, out));
    p->depth--;
    return MN_OK;
}

static bool is_tuple_end(const parser *p) {
    const jtok *t = cur(p);
    return t->type == TK_VAR_END || t->type == TK_BLOCK_END || t->type == TK_RPAREN ||
           is_word(t, "recursive");
}

/* expr or expr, expr, ... (a tuple); explicit_parens: inside "(...)", where "()" is the empty
 * tuple. */
static mn_status parse_tuple(parser *p, bool with_condexpr, bool explicit_parens, jnode **out) {
    size_t pos = cur(p)->pos;
    nvec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n) MN_FORWARD(expect(p, TK_COMMA, "','"));
        if (is_tuple_end(p)) break;
        jnode *x = NULL;
        MN_FORWARD(parse_expression(p, with_condexpr, &x));
        MN_FORWARD(nvec_push(p, &items, x));
        if (cur(p)->type == TK_COMMA)
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) {
            *out = items.v[0];
            return MN_OK;
        }
        if (!explicit_parens) return unexpected(p, "an expression");
    }
    return node_from_vec(p, E_TUPLE, pos, &items, out);
}

/* ---------------------------------------------------------------- statements ----------------- */

static mn_status parse_body(parser *p, const char *const *ends, size_t open_pos, const char *open_tag,
                            jnode **out, const jtok **end_word);

static mn_status expect_block_end(parser *p) { return expect(p, TK_BLOCK_END, "'%}'"); }

/* Assignment targets: name | name.attr (namespace, when allowed) | name, name, ... */
static mn_status parse_target(parser *p, bool allow_attr, jnode **out) {
    size_t pos = cur(p)->pos;
    bool parens = false;
    if (cur(p)->type == TK_LPAREN) {
        parens = true;
        advance(p);
    }
    nvec names = {0};
    for (;;) {
        const jtok *t = cur(p);
        if (t->type != TK_NAME) return unexpected(p, "a variable name");
        if (is_word(t, "true") || is_word(t, "false") || is_word(t, "none") || is_word(t, "True") ||
            is_word(t, "False") || is_word(t, "None"))
            return fail_at(p, t->pos, MN_EINVAL, "cannot assign to '%.*s'", (int)t->u.s.n, t->u.s.p);
        jnode *nd = NULL;
        MN_FORWARD(new_node(p, E_NAME, t->pos, 0, &nd));
        nd->name = t->u.s;
        MN_FORWARD(finish(p, nd));
        advance(p);
        if (allow_attr && !parens && names.n == 0 && cur(p)->type == TK_DOT) {
            size_t dpos = cur(p)->pos;
            advance(p);
            if (cur(p)->type != TK_NAME) return unexpected(p, "an attribute name");
            jnode *attr = NULL;
            MN_FORWARD(node1(p, E_ATTR, dpos, nd, &attr));
            attr->name = cur(p)->u.s;
            advance(p);
            *out = attr;
            return MN_OK;
        }
        MN_FORWARD(nvec_push(p, &names, nd));
        if (cur(p)->type != TK_COMMA) break;
        advance(p);
        if (parens && cur(p)->type == TK_RPAREN) break;
    }
    if (parens) MN_FORWARD(expect(p, TK_RPAREN, "')'"));
    if (names.n == 1 && !parens) {
        *out = names.v[0];
        return MN_OK;
    }
    return node_from_vec(p, E_TUPLE, pos, &names, out);
}

static mn_status parse_if(parser *p, size_t pos, jnode **out) {
    nvec parts = {0};
    bool has_else = false;
    size_t open_pos = pos;
    for (;;) {
        jnode *cond = NULL, *body = NULL;
        MN_FORWARD(parse_tuple(p, false, false, &cond));
        MN_FORWARD(expect_block_end(p));
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        const jtok *w = NULL;
        MN_FORWARD(parse_body(p, ends, open_pos, "if", &body, &w));
        MN_FORWARD(nvec_push(p, &parts, cond));
        MN_FORWARD(nvec_push(p, &parts, body));
        if (is_word(w, "elif")) {
            open_pos = w->pos;
            continue;
        }
        if (is_word(w, "else")) {
            MN_FORWARD(expect_block_end(p));
            static const char *const ends2[] = {"endif", NULL};
            MN_FORWARD(parse_body(p, ends2, open_pos, "if", &body, &w));
            MN_FORWARD(nvec_push(p, &parts, body));
            has_else = true;
        }
        break;
    }
    MN_FORWARD(expect_block_end(p));
    MN_FORWARD(node_from_vec(p, S_IF, pos, &parts, out));
    (*out)->flag = has_else;
    return MN_OK;
}

static mn_status parse_for(parser *p, size_t pos, jnode **out) {
    jnode *target, *iter, *cond = NULL, *body, *else_body = NULL;
    MN_FORWARD(parse_target(p, false, &target));
    if (!is_word(cur(p), "in")) return unexpected(p, "'in'");
    advance(p);
    MN_FORWARD(parse_tuple(p, false, false, &iter));
    if (is_word(cur(p), "if")) {
        advance(p);
        MN_FORWARD(parse_expression(p, true, &cond));
    }
    if (is_word(cur(p), "recursive"))
        return fail_at(p, cur(p)->pos, MN_EUNSUPPORTED, "recursive loops are not supported");
    MN_FORWARD(expect_block_end(p));
    static const char *const ends[] = {"else", "endfor", NULL};
    const jtok *w = NULL;
    p->loop_depth++;
    MN_FORWARD(parse_body(p, ends, pos, "for", &body, &w));
    p->loop_depth--;
    if (is_word(w, "else")) {
        MN_FORWARD(expect_block_end(p));
        static const char *const ends2[] = {"endfor", NULL};
        MN_FORWARD(parse_body(p, ends2, pos, "for", &else_body, &w));
    }
    MN_FORWARD(expect_block_end(p));
    jnode *nd = NULL;
    MN_FORWARD(new_node(p, S_FOR, pos, 5, &nd));
    nd->kids[0] = target;
    nd->kids[1] = iter;
    nd->kids[2] = cond;
    nd->kids[3] = body;
    nd->kids[4] = else_body;
    *out = nd;
    return finish(p, nd);
}

static mn_status parse_set(parser *p, size_t pos, jnode **out) {
    jnode *target = NULL, *value = NULL;
    MN_FORWARD(parse_target(p, true, &target));
    if (cur(p)->type == TK_ASSIGN) {
        advance(p);
        MN_FORWARD(parse_tuple(p, true, false, &value));
        MN_FORWARD(expect_block_end(p));
        MN_FORWARD(new_node(p, S_SET, pos, 2, out));
        (*out)->kids[0] = target;
        (*out)->kids[1] = value;
        return finish(p, *out);
    }
    if (target->kind != E_NAME)
        return fail_at(p, pos, MN_EINVAL, "a block {%% set %%} takes a single variable name");
    if (cur(p)->type == TK_PIPE)
        return fail_at(p, cur(p)->pos, MN_EUNSUPPORTED, "filters on a block {%% set %%} are not supported");
    MN_FORWARD(expect_block_end(p));
    static const char *const ends[] = {"endset", NULL};
    const jtok *w = NULL;
    jnode *body = NULL;
    MN_FORWARD(parse_body(p, ends, pos, "set", &body, &w));
    MN_FORWARD(expect_block_end(p));
    MN_FORWARD(new_node(p, S_SETBLOCK, pos, 2, out));
    (*out)->kids[0] = target;
    (*out)->kids[1] = body;
    return finish(p, *out);
}

static mn_status parse_macro(parser *p, size_t pos, jnode **out) {
    const jtok *t = cur(p);
    if (t->type != TK_NAME) return unexpected(p, "a macro name");
    jstr name = t->u.s;
    advance(p);
    MN_FORWARD(expect(p, TK_LPAREN, "'('"));
    jnode *defaults[MAX_ARGS];
    jstr params[MAX_ARGS];
    size_t n = 0;
    bool seen_default = false;
    while (cur(p)->type != TK_RPAREN) {
        if (n > 0) {
            MN_FORWARD(expect(p, TK_COMMA, "',' or ')'"));
            if (cur(p)->type == TK_RPAREN) break;
        }
        if (n == MAX_ARGS)
            return fail_at(p, cur(p)->pos, MN_EINVAL, "more than %d macro parameters", MAX_ARGS);
        if (cur(p)->type != TK_NAME) return unexpected(p, "a parameter name");
        params[n] = cur(p)->u.s;
        for (size_t k = 0; k < n; k++)
            if (params[k].n == params[n].n && memcmp(params[k].p, params[n].p, params[n].n) == 0)
                return fail_at(p, cur(p)->pos, MN_EINVAL, "duplicate macro parameter '%.*s'",
                               (int)params[n].n, params[n].p);
        advance(p);
        defaults[n] = NULL;
        if (cur(p)->type == TK_ASSIGN) {
            advance(p);
            MN_FORWARD(parse_expression(p, true, &defaults[n]));
            seen_default = true;
        } else if (seen_default) {
            return fail_at(p, cur(p)->pos, MN_EINVAL, "a parameter without default follows one with a default");
        }
        n++;
    }
    advance(p);
    MN_FORWARD(expect_block_end(p));
    static const char *const ends[] = {"endmacro", NULL};
    const jtok *w = NULL;
    jnode *body = NULL;
    int saved_loops = p->loop_depth;
    p->loop_depth = 0;
    MN_FORWARD(parse_body(p, ends, pos, "macro", &body, &w));
    p->loop_depth = saved_loops;
    if (cur(p)->type == TK_NAME) advance(p); /* {% endmacro name %} */
    MN_FORWARD(expect_block_end(p));
    jnode *nd = NULL;
    MN_FORWARD(new_node(p, S_MACRO, pos, n + 1, &nd));
    nd->name = name;
    nd->kids[0] = body;
    if (n) {
        memcpy(nd->kids + 1, defaults, n * sizeof *defaults);
        nd->argnames = jarena_alloc_array(p->a, n, sizeof *nd->argnames);
        MN_RETURN_IF(!nd->argnames, p->err, MN_ENOMEM, "out of memory parsing the template");
        memcpy(nd->argnames, params, n * sizeof *params);
    }
    *out = nd;
    return finish(p, nd);
}

static mn_status parse_filter_block(parser *p, size_t pos, jnode **out) {
    jnode *chain = NULL;
    MN_FORWARD(parse_filter(p, NULL, &chain));
    while (cur(p)->type == TK_PIPE) {
        advance(p);
        MN_FORWARD(parse_filter(p, chain, &chain));
    }
    MN_FORWARD(expect_block_end(p));
    static const char *const ends[] = {"endfilter", NULL};
    const jtok *w = NULL;
    jnode *body = NULL;
    MN_FORWARD(parse_body(p, ends, pos, "filter", &body, &w));
    MN_FORWARD(expect_block_end(p));
    MN_FORWARD(new_node(p, S_FILTERBLOCK, pos, 2, out));
    (*out)->kids[0] = chain;
    (*out)->kids[1] = body;
    return finish(p, *out);
}

/* A {% ... %} statement; the current token is the tag name. */
static mn_status parse_statement(parser *p, size_t pos, jnode **out) {
    const jtok *t = cur(p);
    if (t->type != TK_NAME) return unexpected(p, "a tag name");
    jstr w = t->u.s;
    size_t wpos = t->pos;
    advance(p);
    if (jstr_eq(w, "if")) return parse_if(p, pos, out);
    if (jstr_eq(w, "for")) return parse_for(p, pos, out);
    if (jstr_eq(w, "set")) return parse_set(p, pos, out);
    if (jstr_eq(w, "macro")) return parse_macro(p, pos, out);
    if (jstr_eq(w, "filter")) return parse_filter_block(p, pos, out);
    if (jstr_eq(w, "break") || jstr_eq(w, "continue")) {
        if (p->loop_depth == 0)
            return fail_at(p, wpos, MN_EINVAL, "'%.*s' outside a loop", (int)w.n, w.p);
        MN_FORWARD(expect_block_end(p));
        MN_FORWARD(new_node(p, jstr_eq(w, "break") ? S_BREAK : S_CONTINUE, pos, 0, out));
        return finish(p, *out);
    }
    if (jstr_eq(w, "generation")) {
        /* transformers' assistant-mask tag: rendered as its body */
        MN_FORWARD(expect_block_end(p));
        static const char *const ends[] = {"endgeneration", NULL};
        const jtok *ew = NULL;
        MN_FORWARD(parse_body(p, ends, pos, "generation", out, &ew));
        return expect_block_end(p);
    }
    static const char *const unsupported[] = {"call", "include", "import", "from", "extends", "block",
                                              "with", "autoescape", "do", "trans", "pluralize", NULL};
    for (size_t k = 0; unsupported[k]; k++)
        if (jstr_eq(w, unsupported[k]))
            return fail_at(p, wpos, MN_EUNSUPPORTED, "the {%% %s %%} tag is not supported", unsupported[k]);
    return fail_at(p, wpos, MN_EINVAL, "unknown tag '%.*s'", (int)w.n, w.p);
}

/* Parses statements until a {% word %} with word in ends (NULL-terminated; ends NULL: until the
 * end of the template). On return the current token is the token after the end word. */
static mn_status parse_body(parser *p, const char *const *ends, size_t open_pos, const char *open_tag,
                            jnode **out, const jtok **end_word) {
    MN_FORWARD(enter(p));
    nvec stmts = {0};
    for (;;) {
        const jtok *t = cur(p);
        if (t->type == TK_EOF) {
            if (ends) {
                int line, col;
                mn_jinja_line_col(p->src, p->src_len, open_pos, &line, &col);
                size_t last = 0;
                while (ends[last + 1]) last++; /* the closing tag is the last end word */
                return fail_at(p, t->pos, MN_EINVAL,
                               "unexpected end of template: '%s' opened at line %d, column %d needs '%s'",
                               open_tag, line, col, ends[last]);
            }
            break;
        }
        jnode *st = NULL;
        if (t->type == TK_TEXT) {
            MN_FORWARD(new_node(p, S_TEXT, t->pos, 0, &st));
            st->name = t->u.s;
            MN_FORWARD(finish(p, st));
            advance(p);
        } else if (t->type == TK_VAR_BEGIN) {
            advance(p);
            jnode *e = NULL;
            MN_FORWARD(parse_tuple(p, true, false, &e));
            MN_FORWARD(expect(p, TK_VAR_END, "'}}'"));
            MN_FORWARD(node1(p, S_OUTPUT, t->pos, e, &st));
        } else if (t->type == TK_BLOCK_BEGIN) {
            const jtok *w = peek(p, 1);
            bool is_end = false;
            for (size_t k = 0; ends && ends[k]; k++)
                if (is_word(w, ends[k])) is_end = true;
            if (is_end) {
                advance(p);
                advance(p);
                *end_word = w;
                break;
            }
            if (w->type == TK_NAME &&
                (jstr_eq(w->u.s, "elif") || jstr_eq(w->u.s, "else") || (w->u.s.n > 3 && memcmp(w->u.s.p, "end", 3) == 0)))
                return fail_at(p, w->pos, MN_EINVAL, "unexpected '%.*s'%s%s%s", (int)w->u.s.n, w->u.s.p,
                               ends ? " (the innermost open block is '" : "", ends ? open_tag : "", ends ? "')" : "");
            advance(p);
            MN_FORWARD(parse_statement(p, t->pos, &st));
        } else {
            return unexpected(p, "text or a tag");
        }
        MN_FORWARD(nvec_push(p, &stmts, st));
    }
    p->depth--;
    size_t pos = stmts.n ? stmts.v[0]->pos : open_pos;
    return node_from_vec(p, S_BODY, pos, &stmts, out);
}

mn_status mn_jinja_parse_tokens(const jtok *tk, size_t n_tk, const char *src, size_t src_len,
                                jarena *a, jnode **out, mn_error *err) {
    parser p = {.tk = tk, .n_tk = n_tk, .src = src, .src_len = src_len, .a = a, .err = err};
    const jtok *w = NULL;
    return parse_body(&p, NULL, 0, "", out, &w);
}
