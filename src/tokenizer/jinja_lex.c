/*
 * jinja_lex.c: turns a template into tokens, applying Jinja's whitespace rules as HF
 * transformers configures them for chat templates.
 *
 * The source is first normalized as Jinja does (\r\n and \r become \n; with keep_trailing_newline
 * off, one trailing newline is dropped). Then the lexer alternates between text and tags:
 *   {{ ... }}  an expression (TK_VAR_BEGIN, tokens, TK_VAR_END)
 *   {% ... %}  a statement   (TK_BLOCK_BEGIN, tokens, TK_BLOCK_END); {% raw %} is handled here
 *   {# ... #}  a comment (dropped)
 * Whitespace control, resolved here so the parser only sees the final text:
 *   "{%-" "{{-" "{#-" strip all whitespace before the tag; "-%}" "-}}" "-#}" strip all after.
 *   trim_blocks: the first newline right after a %} or #} is dropped ("+%}" keeps it).
 *   lstrip_blocks: spaces and tabs between the start of a line and a {% or {# are dropped
 *   ("{%+" keeps them); a line "starts" after a newline in the text or, when the text before
 *   the tag has none, right after a tag end that itself consumed a newline (Jinja's
 *   line_starting rule, which is what makes an indented {% endif %} on its own line vanish).
 * Inside tags the end delimiter only counts when brackets are balanced, so {{ {'a': {}} }} works.
 * String literals are unescaped here (Python escapes: \n \t \\ \' \" \xHH \uHHHH \UHHHHHHHH,
 * octal, line continuation; unknown escapes keep their backslash, as Python does).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja_internal.h"

/* ---------------------------------------------------------------- positions ------------------ */

void mn_jinja_line_col(const char *src, size_t len, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    if (pos > len) pos = len;
    for (size_t i = 0; i < pos; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

mn_status mn_jinja_fail(mn_error *err, mn_status st, const char *src, size_t len, size_t pos,
                        const char *fmt, ...) {
    if (!err) return st;
    int line, col;
    mn_jinja_line_col(src, len, pos, &line, &col);
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mn_error_set(err, st, "line %d, column %d: %s", line, col, msg);
}

/* ---------------------------------------------------------------- normalization -------------- */

mn_status mn_jinja_normalize(const char *src, size_t len, jarena *a, const char **out,
                             size_t *out_len, mn_error *err) {
    char *dst = jarena_alloc(a, len + 1);
    MN_RETURN_IF(!dst, err, MN_ENOMEM, "out of memory copying the template");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            dst[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            dst[n++] = src[i];
        }
    }
    if (n > 0 && dst[n - 1] == '\n') n--;
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    return MN_OK;
}

/* ---------------------------------------------------------------- lexer state ---------------- */

typedef struct lexer {
    const char *s;
    size_t n;
    size_t pos;
    jarena *a;
    mn_error *err;
    jtok *tk;
    size_t n_tk, cap_tk;
    bool line_starting; /* the last tag end consumed a newline (or we are at the start) */
} lexer;

#define BRACKETS_MAX 256

static mn_status lex_fail(lexer *L, size_t pos, const char *fmt, ...) MN_PRINTF(3, 4);
static mn_status lex_fail(lexer *L, size_t pos, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mn_jinja_fail(L->err, MN_EINVAL, L->s, L->n, pos, "%s", msg);
}

static mn_status push(lexer *L, jtok t) {
    if (L->n_tk == L->cap_tk) {
        size_t cap = L->cap_tk ? L->cap_tk * 2 : 256;
        jtok *nt = realloc(L->tk, cap * sizeof *nt);
        MN_RETURN_IF(!nt, L->err, MN_ENOMEM, "out of memory lexing the template");
        L->tk = nt;
        L->cap_tk = cap;
    }
    L->tk[L->n_tk++] = t;
    return MN_OK;
}

static mn_status push_simple(lexer *L, jtok_type type, size_t pos) {
    return push(L, (jtok){.type = (uint8_t)type, .pos = (uint32_t)pos});
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static mn_status push_text(lexer *L, size_t start, size_t end) {
    if (end <= start) return MN_OK;
    return push(L, (jtok){.type = TK_TEXT, .pos = (uint32_t)start, .u.s = {L->s + start, end - start}});
}

/* Text [start, end) followed by a tag opened with `kind` ('{', '%', '#') and modifier `mod`
 * ('-', '+' or 0): applies "-" stripping or lstrip_blocks, then emits the text. */
static mn_status emit_text_before_tag(lexer *L, size_t start, size_t end, char kind, char mod) {
    if (mod == '-') {
        while (end > start && is_ws(L->s[end - 1])) end--;
    } else if (mod != '+' && kind != '{') {
        size_t l = end;
        while (l > start && L->s[l - 1] != '\n') l--;
        bool at_line_start = l > start || L->line_starting;
        bool blank = end > l;
        for (size_t i = l; i < end && blank; i++)
            if (!is_ws(L->s[i])) blank = false;
        if (at_line_start && blank) end = l;
    }
    return push_text(L, start, end);
}

/* After a %} or #} at pos (just past it): trim_blocks drops one newline. end_mod is the
 * character before the delimiter ('-', '+' or other). Returns the new position. */
static size_t after_block_end(lexer *L, size_t pos, char end_mod) {
    if (end_mod == '-') {
        size_t p = pos;
        while (p < L->n && is_ws(L->s[p])) p++;
        L->line_starting = p > pos && L->s[p - 1] == '\n';
        return p;
    }
    if (end_mod != '+' && pos < L->n && L->s[pos] == '\n') {
        L->line_starting = true;
        return pos + 1;
    }
    L->line_starting = false;
    return pos;
}

/* ---------------------------------------------------------------- literals ------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Lexes a string literal starting at the quote at L->pos. */
static mn_status lex_string(lexer *L) {
    size_t start = L->pos;
    char q = L->s[start];
    size_t i = start + 1;
    bool has_escape = false;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\') {
            has_escape = true;
            i++;
        }
        i++;
    }
    if (i >= L->n) return lex_fail(L, start, "unterminated string literal");
    size_t body = start + 1, body_len = i - body;
    L->pos = i + 1;
    if (!has_escape)
        return push(L, (jtok){.type = TK_STRING, .pos = (uint32_t)start, .u.s = {L->s + body, body_len}});

    char *out = jarena_alloc(L->a, body_len + 1);
    MN_RETURN_IF(!out, L->err, MN_ENOMEM, "out of memory lexing a string");
    size_t o = 0;
    const char *s = L->s + body;
    for (size_t k = 0; k < body_len; k++) {
        if (s[k] != '\\') {
            out[o++] = s[k];
            continue;
        }
        size_t esc = body + k;
        k++; /* the scan above guarantees a character after a backslash */
        char c = s[k];
        switch (c) {
        case '\n': break; /* line continuation */
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < digits; d++) {
                int h = k + 1 < body_len ? hexval(s[k + 1]) : -1;
                if (h < 0) return lex_fail(L, esc, "truncated \\%c escape in a string literal", c);
                cp = cp * 16 + (uint32_t)h;
                k++;
            }
            if (cp > 0x10FFFF) return lex_fail(L, esc, "\\%c escape out of Unicode range", c);
            /* UTF-8 needs at most 4 bytes; the escape itself took at least 4 source bytes. */
            o += mn_utf8_encode(cp, out + o);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = (uint32_t)(c - '0');
                for (int d = 0; d < 2 && k + 1 < body_len && s[k + 1] >= '0' && s[k + 1] <= '7'; d++) {
                    v = v * 8 + (uint32_t)(s[k + 1] - '0');
                    k++;
                }
                /* At most 0777 = 511: two UTF-8 bytes, from at least two source bytes. */
                o += mn_utf8_encode(v, out + o);
            } else {
                out[o++] = '\\';
                out[o++] = c;
            }
        }
    }
    out[o] = '\0';
    return push(L, (jtok){.type = TK_STRING, .pos = (uint32_t)start, .u.s = {out, o}});
}

static size_t scan_digits(const char *s, size_t n, size_t i) {
    /* digits with single underscores between them (Python / Jinja) */
    while (i < n && (isdigit((unsigned char)s[i]) ||
                     (s[i] == '_' && i + 1 < n && isdigit((unsigned char)s[i + 1]) && i > 0 &&
                      isdigit((unsigned char)s[i - 1]))))
        i++;
    return i;
}

static mn_status lex_number(lexer *L) {
    size_t start = L->pos, i = scan_digits(L->s, L->n, start);
    bool is_float = false;
    if (i + 1 < L->n && L->s[i] == '.' && isdigit((unsigned char)L->s[i + 1])) {
        is_float = true;
        i = scan_digits(L->s, L->n, i + 1);
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (L->s[j] == '+' || L->s[j] == '-')) j++;
        if (j < L->n && isdigit((unsigned char)L->s[j])) {
            is_float = true;
            i = scan_digits(L->s, L->n, j);
        }
    }
    char buf[128];
    size_t len = 0;
    for (size_t k = start; k < i; k++) {
        if (L->s[k] == '_') continue;
        if (len + 1 >= sizeof buf) return lex_fail(L, start, "number literal too long");
        buf[len++] = L->s[k];
    }
    buf[len] = '\0';
    L->pos = i;
    if (is_float) {
        double f = strtod(buf, NULL);
        return push(L, (jtok){.type = TK_FLOAT, .pos = (uint32_t)start, .u.f = f});
    }
    int64_t v = 0;
    for (size_t k = 0; k < len; k++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, buf[k] - '0', &v))
            return lex_fail(L, start, "integer literal %s does not fit in 64 bits", buf);
    }
    return push(L, (jtok){.type = TK_INT, .pos = (uint32_t)start, .u.i = v});
}

/* ---------------------------------------------------------------- tags ----------------------- */

/* Tokenizes the inside of a {{ or {% tag (L->pos just past the opener and modifier) up to and
 * including its end delimiter. */
static mn_status lex_tag(lexer *L, bool is_block, size_t open_pos) {
    char stack[BRACKETS_MAX];
    int depth = 0;
    for (;;) {
        while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
        if (L->pos >= L->n)
            return lex_fail(L, open_pos, "unexpected end of template: %s tag is not closed",
                            is_block ? "'{%'" : "'{{'");
        const char *s = L->s + L->pos;
        size_t left = L->n - L->pos;
        size_t p = L->pos;
        if (depth == 0) {
            char close = is_block ? '%' : '}';
            /* "-%}" / "+%}" / "%}" (and "-}}" / "}}") */
            if (left >= 3 && (s[0] == '-' || (is_block && s[0] == '+')) && s[1] == close && s[2] == '}') {
                MN_FORWARD(push_simple(L, is_block ? TK_BLOCK_END : TK_VAR_END, p));
                L->pos = is_block ? after_block_end(L, p + 3, s[0]) : p + 3;
                if (!is_block) {
                    size_t q = L->pos;
                    while (q < L->n && is_ws(L->s[q])) q++;
                    L->line_starting = q > L->pos && L->s[q - 1] == '\n';
                    L->pos = q;
                }
                return MN_OK;
            }
            if (left >= 2 && s[0] == close && s[1] == '}') {
                MN_FORWARD(push_simple(L, is_block ? TK_BLOCK_END : TK_VAR_END, p));
                if (is_block) {
                    L->pos = after_block_end(L, p + 2, 0);
                } else {
                    L->pos = p + 2;
                    L->line_starting = false;
                }
                return MN_OK;
            }
        }
        char c = s[0];
        if (c == '"' || c == '\'') {
            MN_FORWARD(lex_string(L));
            continue;
        }
        if (isdigit((unsigned char)c)) {
            MN_FORWARD(lex_number(L));
            continue;
        }
        if (is_name_start(c)) {
            size_t e = 1;
            while (e < left && is_name_char(s[e])) e++;
            MN_FORWARD(push(L, (jtok){.type = TK_NAME, .pos = (uint32_t)p, .u.s = {s, e}}));
            L->pos += e;
            continue;
        }
        jtok_type t;
        size_t len = 1;
        char c2 = left > 1 ? s[1] : '\0';
        switch (c) {
        case '+': t = TK_ADD; break;
        case '-': t = TK_SUB; break;
        case '*': t = c2 == '*' ? (len = 2, TK_POW) : TK_MUL; break;
        case '/': t = c2 == '/' ? (len = 2, TK_FLOORDIV) : TK_DIV; break;
        case '%': t = TK_MOD; break;
        case '~': t = TK_TILDE; break;
        case ',': t = TK_COMMA; break;
        case '.': t = TK_DOT; break;
        case ':': t = TK_COLON; break;
        case '|': t = TK_PIPE; break;
        case '=': t = c2 == '=' ? (len = 2, TK_EQ) : TK_ASSIGN; break;
        case '!':
            if (c2 != '=') return lex_fail(L, p, "unexpected character '!'");
            t = TK_NE;
            len = 2;
            break;
        case '<': t = c2 == '=' ? (len = 2, TK_LE) : TK_LT; break;
        case '>': t = c2 == '=' ? (len = 2, TK_GE) : TK_GT; break;
        case '(': t = TK_LPAREN; break;
        case '[': t = TK_LBRACKET; break;
        case '{': t = TK_LBRACE; break;
        case ')': t = TK_RPAREN; break;
        case ']': t = TK_RBRACKET; break;
        case '}': t = TK_RBRACE; break;
        default:
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                return lex_fail(L, p, "unexpected character '%c'", c);
            return lex_fail(L, p, "unexpected byte 0x%02x", (unsigned char)c);
        }
        if (c == '(' || c == '[' || c == '{') {
            if (depth >= BRACKETS_MAX)
                return mn_jinja_fail(L->err, MN_EFULL, L->s, L->n, p, "brackets nested too deeply (more than %d)", BRACKETS_MAX);
            stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth == 0) return lex_fail(L, p, "unexpected '%c'", c);
            if (stack[depth - 1] != c)
                return lex_fail(L, p, "unexpected '%c', expected '%c'", c, stack[depth - 1]);
            depth--;
        }
        MN_FORWARD(push_simple(L, t, p));
        L->pos += len;
    }
}

static bool match_word(const lexer *L, size_t *p, const char *w) {
    size_t wl = strlen(w);
    if (*p + wl > L->n || memcmp(L->s + *p, w, wl) != 0) return false;
    if (*p + wl < L->n && is_name_char(L->s[*p + wl])) return false;
    *p += wl;
    return true;
}

static size_t skip_ws(const lexer *L, size_t p) {
    while (p < L->n && is_ws(L->s[p])) p++;
    return p;
}

/* If the tag at `tag` (its '{') is {% word %}, returns true and sets *end past its "%}" and the
 * whitespace modifiers after "{%" and before "%}". */
static bool match_tag_word(const lexer *L, size_t tag, const char *word, size_t *end, char *open_mod,
                           char *close_mod) {
    size_t p = tag + 2;
    char om = 0;
    if (p < L->n && (L->s[p] == '-' || L->s[p] == '+')) om = L->s[p++];
    p = skip_ws(L, p);
    if (!match_word(L, &p, word)) return false;
    p = skip_ws(L, p);
    char cm = 0;
    if (p < L->n && (L->s[p] == '-' || L->s[p] == '+')) cm = L->s[p++];
    if (p + 2 > L->n || L->s[p] != '%' || L->s[p + 1] != '}') return false;
    *end = p + 2;
    *open_mod = om;
    *close_mod = cm;
    return true;
}

/* {% raw %} ... {% endraw %}: the opener spans [tag, raw_end); the body is emitted verbatim (no
 * trim_blocks after the opener, as in Jinja). */
static mn_status lex_raw(lexer *L, size_t tag, size_t raw_end, char raw_close_mod) {
    size_t body = raw_end;
    if (raw_close_mod == '-') body = skip_ws(L, body);
    for (size_t p = body; p + 1 < L->n; p++) {
        if (L->s[p] != '{' || L->s[p + 1] != '%') continue;
        size_t end;
        char om, cm;
        if (!match_tag_word(L, p, "endraw", &end, &om, &cm)) continue;
        /* line_starting as the raw opener left it ("-%}" may have eaten a newline) */
        L->line_starting = body > raw_end && L->s[body - 1] == '\n';
        MN_FORWARD(emit_text_before_tag(L, body, p, '%', om));
        L->pos = after_block_end(L, end, cm);
        return MN_OK;
    }
    return lex_fail(L, tag, "unexpected end of template: {%% raw %%} without {%% endraw %%}");
}

/* ---------------------------------------------------------------- main loop ------------------ */

static mn_status lex_all(lexer *L);

mn_status mn_jinja_lex(const char *src, size_t len, jarena *a, jtok **out, size_t *n_out,
                       mn_error *err) {
    lexer L = {.s = src, .n = len, .a = a, .err = err, .line_starting = true};
    mn_status st = lex_all(&L);
    if (st != MN_OK) {
        free(L.tk);
        return st;
    }
    *out = L.tk;
    *n_out = L.n_tk;
    return MN_OK;
}

static mn_status lex_all(lexer *L) {
    while (L->pos < L->n) {
        size_t k = L->pos;
        const char *tag = NULL;
        while (k + 1 < L->n) {
            const char *q = memchr(L->s + k, '{', L->n - k - 1);
            if (!q) break;
            k = (size_t)(q - L->s);
            if (L->s[k + 1] == '{' || L->s[k + 1] == '%' || L->s[k + 1] == '#') {
                tag = q;
                break;
            }
            k++;
        }
        if (!tag) {
            MN_FORWARD(push_text(L, L->pos, L->n));
            break;
        }
        char kind = L->s[k + 1];
        char mod = (k + 2 < L->n && (L->s[k + 2] == '-' || L->s[k + 2] == '+')) ? L->s[k + 2] : 0;

        size_t raw_end;
        char raw_om, raw_cm;
        if (kind == '%' && match_tag_word(L, k, "raw", &raw_end, &raw_om, &raw_cm)) {
            MN_FORWARD(emit_text_before_tag(L, L->pos, k, '%', raw_om));
            MN_FORWARD(lex_raw(L, k, raw_end, raw_cm));
            continue;
        }
        MN_FORWARD(emit_text_before_tag(L, L->pos, k, kind, mod));
        L->line_starting = false;
        size_t inner = k + 2 + (mod ? 1 : 0);
        if (kind == '#') {
            size_t h = inner;
            for (;;) {
                const char *q = h + 1 < L->n ? memchr(L->s + h, '#', L->n - h - 1) : NULL;
                if (!q) return lex_fail(L, k, "unexpected end of template: comment is not closed");
                h = (size_t)(q - L->s);
                if (L->s[h + 1] == '}') break;
                h++;
            }
            char end_mod = h > inner ? L->s[h - 1] : 0;
            L->pos = after_block_end(L, h + 2, end_mod);
            continue;
        }
        bool is_block = kind == '%';
        MN_FORWARD(push_simple(L, is_block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, k));
        L->pos = inner;
        MN_FORWARD(lex_tag(L, is_block, k));
    }
    return push_simple(L, TK_EOF, L->n);
}
