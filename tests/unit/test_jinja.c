/*
 * test_jinja.c: the Jinja interpreter behind chat templates, construct by construct.
 *
 * Each case is a template, a JSON context and the exact output, written by hand from Jinja 3.1's
 * documented semantics under the settings transformers uses (trim_blocks, lstrip_blocks,
 * loopcontrols, its own tojson); the expectations were also checked against Python's jinja2 while
 * writing them. Then: errors (syntax errors carry line and column, unknown filters are refused at
 * parse time, runtime errors name the problem, raise_exception carries the template's message),
 * and the bounds of BAD_INPUTS row 12: step, nesting, output and memory budgets and template size
 * all end a render with an error, in bounded time, instead of hanging or crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tokenizer/jinja.h"

static mn_jinja_limits default_limits(void) {
    mn_jinja_limits lim = {
        .n_steps_max = 4000000,
        .depth_max = 256,
        .out_bytes_max = 16u << 20,
        .mem_bytes_max = 256u << 20,
        .now = 1721995200, /* 2024-07-26 12:00 UTC */
    };
    return lim;
}

/* Renders tmpl with the JSON context ctx (NULL: none). *out is malloc'd on success. */
static mn_status render_lim(const char *tmpl, const char *ctx, const mn_jinja_limits *lim, char **out, mn_error *err) {
    *out = NULL;
    mn_jinja_template *t = NULL;
    mn_status st = mn_jinja_parse(tmpl, strlen(tmpl), &t, err);
    if (st != MN_OK) return st;
    cJSON *c = NULL;
    if (ctx) {
        c = cJSON_Parse(ctx);
        assert_non_null(c);
    }
    size_t len = 0;
    st = mn_jinja_render(t, c, lim, out, &len, err);
    if (st == MN_OK) assert_int_equal(len, strlen(*out));
    cJSON_Delete(c);
    mn_jinja_free(t);
    return st;
}

static void check_render(const char *tmpl, const char *ctx, const char *want) {
    char *out = NULL;
    mn_error err = {0};
    mn_jinja_limits lim = default_limits();
    mn_status st = render_lim(tmpl, ctx, &lim, &out, &err);
    if (st != MN_OK) fail_msg("template %s failed: %s", tmpl, err.message);
    if (strcmp(out, want) != 0) fail_msg("template %s\n  got  [%s]\n  want [%s]", tmpl, out, want);
    free(out);
}

static void check_error(const char *tmpl, const char *ctx, mn_status want_st, const char *want_msg) {
    char *out = NULL;
    mn_error err = {0};
    mn_jinja_limits lim = default_limits();
    mn_status st = render_lim(tmpl, ctx, &lim, &out, &err);
    if (st == MN_OK) fail_msg("template %s rendered [%s], wanted an error", tmpl, out);
    assert_null(out);
    if (st != want_st) fail_msg("template %s: status %d, want %d (%s)", tmpl, st, want_st, err.message);
    if (!strstr(err.message, want_msg)) fail_msg("template %s: message [%s] lacks [%s]", tmpl, err.message, want_msg);
}

typedef struct jcase {
    const char *tmpl;
    const char *ctx;
    const char *want;
} jcase;

static void run_cases(const jcase *cases, size_t n) {
    for (size_t i = 0; i < n; i++) check_render(cases[i].tmpl, cases[i].ctx, cases[i].want);
}

#define CTX                                                                                        \
    "{\"xs\": [1, 2, 3], \"d\": {\"a\": 1, \"b\": [1, \"x\"], \"c\": null}, \"s\": \"h\\u00e9llo w\\u00f6rld\", " \
    "\"e\": [], \"n\": null, \"t\": true, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, "   \
    "{\"role\": \"assistant\", \"content\": \" yo \"}, {\"role\": \"user\", \"content\": \"bye\"}]}"

/* ---------------------------------------------------------------- output and literals -------- */

static void test_literals_and_printing(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"plain text", NULL, "plain text"},
        {"a{{ 'b' }}c", NULL, "abc"},
        {"{{ none }} {{ true }} {{ false }} {{ True }} {{ None }}", NULL, "None True False True None"},
        {"{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 1.5 }} {{ 100.0 }} {{ 1.5e3 }}", NULL, "42 -7 1000 1.5 100.0 1500.0"},
        {"{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 1/3 }} {{ 1e22 }}", NULL,
         "0.30000000000000004 1e+16 1.5e-05 0.3333333333333333 1e+22"},
        {"{{ [1, 'a', none, true, 1.5] }}", NULL, "[1, 'a', None, True, 1.5]"},
        {"{{ (1,) }} {{ (1, 2) }} {{ () }}", NULL, "(1,) (1, 2) ()"},
        {"{{ {'k': (1, 'v')} }}", NULL, "{'k': (1, 'v')}"},
        {"{{ [\"it's\", 'a\"b', 'c\\nd', '\\\\'] }}", NULL, "[\"it's\", 'a\"b', 'c\\nd', '\\\\']"},
        {"{{ 'ab' 'cd' }}|{{ \"q\\\"uote\" }}|{{ '\\x41\\u00e9' }}|{{ 'tab\\tx' }}", NULL, "abcd|q\"uote|A\xc3\xa9|tab\tx"},
        {"{{ '\\U0001F600' }}", NULL, "\xf0\x9f\x98\x80"},
        {"{{ xs }} {{ d }}", CTX, "[1, 2, 3] {'a': 1, 'b': [1, 'x'], 'c': None}"},
        {"[{{ missing }}]", NULL, "[]"},
        {"{{ 1, 2 }}", NULL, "(1, 2)"},
        {"{{ [1, 2, 3,] }}{{ {'a': 1,} }}", NULL, "[1, 2, 3]{'a': 1}"},
        {"{{ {'a': {'b': 1}} }}{{ {'a': {'b': 1}}['a']['b'] }}", NULL, "{'a': {'b': 1}}1"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- whitespace ----------------- */

static void test_whitespace_control(void **state) {
    (void)state;
    static const jcase cases[] = {
        /* trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it */
        {"{% if true %}\nx\n{% endif %}\ny", NULL, "x\ny"},
        {"a\n    {% if true %}\n    b\n    {% endif %}\nc", NULL, "a\n    b\nc"},
        {"  {% for i in range(2) %}\n    {{ i }}\n  {% endfor %}\n", NULL, "    0\n    1\n"},
        /* "-" strips every whitespace character on its side, newlines included */
        {"a   {{- 'b' -}}   c  {%- if true -%}  d  {%- endif %}", NULL, "abcd"},
        {"x\n\n  {%- if true %}y{% endif %}", NULL, "xy"},
        /* variable tags are not trimmed: the newline after }} stays */
        {"{{ 'a' }}\n{{ 'b' }}\n", NULL, "a\nb"},
        /* comments vanish, with the same whitespace rules as block tags */
        {"{# c #}\n  {# c2 #}\nx {#- c3 -#} y", NULL, "xy"},
        {"a{# multi\nline #}b", NULL, "ab"},
        /* "+" disables lstrip_blocks / trim_blocks for that tag */
        {"  {%+ if true %}x{% endif %}", NULL, "  x"},
        {"{% if true +%}\nkept{% endif %}", NULL, "\nkept"},
        /* one trailing newline of the template is dropped (keep_trailing_newline off) */
        {"line\n", NULL, "line"},
        {"line\n\n", NULL, "line\n"},
        /* \r\n and \r are normalized to \n */
        {"a\r\nb\rc", NULL, "a\nb\nc"},
        {"{% if true %}\r\nx{% endif %}", NULL, "x"},
        /* raw blocks are output verbatim */
        {"{% raw %}{{ not rendered }}{% endraw %}", NULL, "{{ not rendered }}"},
        {"{%- raw -%}  {{ x }}  {%- endraw %}", NULL, "{{ x }}"},
        /* an expression ending in } before the tag end */
        {"{{ {'a': {}} }}", NULL, "{'a': {}}"},
        {"{{ '}}' }}{{ '%}' }}", NULL, "}}%}"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- operators ------------------ */

static void test_operators(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{{ 1 + 2 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 % -2 }}", NULL, "3|3|1|-4|2|-1"},
        {"{{ 2 ** 10 }}|{{ 2 ** 3 ** 2 }}|{{ 10 / 4 }}|{{ 10 / 5 }}|{{ 1.5 * 2 }}|{{ 10 ** -1 }}", NULL, "1024|64|2.5|2.0|3.0|0.1"},
        {"{{ 7.5 // 2 }}|{{ -7.5 % 2 }}|{{ -2 ** 2 }}|{{ (1 + 2) * 3 }}", NULL, "3.0|0.5|4|9"},
        {"{{ true + true }}|{{ 1 + 1.5 }}", NULL, "2|2.5"},
        {"{{ 'a' ~ 1 ~ none ~ true ~ missing }}|{{ 2 * 3 ~ 4 }}|{{ (1 + 2) ~ 3 }}", NULL, "a1NoneTrue|64|33"},
        {"{{ 'ab' * 3 }}|{{ 3 * 'x' }}|{{ [1] * 2 }}|{{ [1, 2] + [3] }}|{{ 'a' + 'b' + 'c' }}", NULL, "ababab|xxx|[1, 1]|[1, 2, 3]|abc"},
        {"{{ 1 == 1.0 }}{{ 'a' == 'a' }}{{ [1] == [1] }}{{ {'a': 1} == {'a': 1.0} }}{{ none == none }}{{ 1 != 2 }}", NULL,
         "TrueTrueTrueTrueTrueTrue"},
        {"{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ 2 >= 2 }}{{ 1 <= 0 }}", NULL,
         "TrueFalseTrueTrueTrueFalse"},
        {"{{ 'b' in 'abc' }}{{ 2 in xs }}{{ 'a' in d }}{{ 'q' not in d }}{{ 'x' in missing }}{{ 5 in range(10) }}", CTX,
         "TrueTrueTrueTrueFalseTrue"},
        {"{{ true and false }}{{ true or false }}{{ 0 or 'x' }}{{ 1 and 'y' }}{{ not none }}{{ not xs }}{{ e or 'empty' }}", CTX,
         "FalseTruexyTrueFalseempty"},
        {"{{ 'yes' if t else 'no' }}|{{ 'a' if false }}|{{ 1 if n is none else 2 }}", CTX, "yes||1"},
        {"{{ not 1 == 2 }} {{ not x is defined }} {{ x is not defined }}", NULL, "True True True"},
        /* filters bind tighter than binary operators */
        {"{{ 'a' + ' b ' | trim + 'c' }}|{{ -3 | abs }}", NULL, "abc|3"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- access --------------------- */

static void test_access(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{{ d.a }}{{ d['b'] }}[{{ d.zz }}][{{ d['zz'] }}]{{ d.b[1] }}{{ d.c }}", CTX, "1[1, 'x'][][]xNone"},
        {"{{ xs[0] }}{{ xs[-1] }}[{{ xs[5] }}]{{ xs.0 }}{{ msgs.1.content }}", CTX, "13[]1 yo "},
        {"{{ xs[1:] }}{{ xs[:-1] }}{{ xs[::2] }}{{ xs[::-1] }}{{ xs[-1:0:-1] }}{{ xs[:-2:-1] }}{{ xs[10:] }}", CTX,
         "[2, 3][1, 2][1, 3][3, 2, 1][3, 2][3][]"},
        {"{{ 'hello'[1:3] }}|{{ 'abc'[::-1] }}|{{ s[1] }}|{{ s[-1] }}|{{ s[1:4] }}", CTX, "el|cba|\xc3\xa9|d|\xc3\xa9ll"},
        {"{{ d.get('a') }}{{ d.get('q') }}{{ d.get('q', 5) }}", CTX, "1None5"},
        {"{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}", CTX,
         "[('a', 1), ('b', [1, 'x']), ('c', None)]|['a', 'b', 'c']|[1, [1, 'x'], None]"},
        {"{{ msgs[0].role }}{{ msgs|length }}{{ msgs[-1]['content'] }}{{ 'role' in msgs[0] }}{{ 'tool_calls' in msgs[0] }}",
         CTX, "user3byeTrueFalse"},
        {"[{{ none.foo }}]", NULL, "[]"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- statements ----------------- */

static void test_if_for(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %},{% endfor %}", NULL,
         "one,two,many,"},
        {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
         "{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}",
         CTX, "10TrueFalse332;21FalseFalse321;32FalseTrue310;"},
        {"{% for x in xs %}{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.cycle('a', 'b') }};{% endfor %}", CTX,
         "/2/a;1/3/b;2//a;"},
        {"{% for x in e %}x{% else %}empty{% endfor %}", CTX, "empty"},
        {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", CTX,
         "a=1;b=[1, 'x'];c=None;|abc"},
        {"{% for c in 'ab' %}{{ c }}.{% endfor %}", NULL, "a.b."},
        {"{% for n in [1, 2, 3, 4] %}{% if n == 2 %}{% continue %}{% endif %}{% if n == 4 %}{% break %}{% endif %}{{ n }}{% endfor %}",
         NULL, "13"},
        /* loop filter: loop.index and loop.length count the kept items */
        {"{% for x in [1, 2, 3, 4] if x % 2 == 0 %}{{ loop.index }}:{{ x }}/{{ loop.length }},{% endfor %}", NULL,
         "1:2/2,2:4/2,"},
        {"{% for i in range(3) %}{{ i }}{% endfor %}|{{ range(1, 8, 3)|list }}|{{ range(3, -1, -1)|list }}|{{ range(0, 3, -1)|list }}",
         NULL, "012|[1, 4, 7]|[3, 2, 1, 0]|[]"},
        /* nested loops: loop is the innermost one; an alias reaches the outer one */
        {"{% for a in [[1, 2], [3]] %}{% set outer = loop %}{% for b in a %}{{ outer.index }}{{ b }}{% endfor %};{% endfor %}",
         NULL, "1112;23;"},
        {"{% for m in msgs if m.role == 'user' %}{{ m.content }}{% endfor %}", CTX, "hibye"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_set_scope_namespace(void **state) {
    (void)state;
    static const jcase cases[] = {
        /* a set inside a loop is local to that iteration; if blocks open no scope */
        {"{% set a = 1 %}{% for x in [1] %}{% set a = 2 %}{{ a }}{% endfor %}{{ a }}{% if true %}{% set b = 3 %}{% endif %}{{ b }}",
         NULL, "213"},
        {"{% for i in range(3) %}{% if i == 0 %}{% set x = 'a' %}{% endif %}[{{ x }}]{% endfor %}", NULL, "[a][][]"},
        {"{% set ns = namespace(total=0, seen=false) %}{% for x in [1, 2, 3] %}{% set ns.total = ns.total + x %}"
         "{% if x == 2 %}{% set ns.seen = true %}{% endif %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
         NULL, "6 True"},
        {"{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}", NULL, "x"},
        {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", NULL, "12(1, 2)"},
        {"{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]", NULL, "[inner 2]"},
        {"{% set messages = msgs[1:] %}{{ messages|length }}", CTX, "2"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_macros_and_blocks(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{% macro m(a, b='d') %}<{{ a }}|{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}", NULL,
         "<1|d><1|2><4|3>"},
        {"{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}", NULL, "54321"},
        /* macros see top-level variables, not their caller's locals */
        {"{% set g = 'G' %}{% macro m() %}{{ g }}{{ l }}{% endmacro %}{% for l in [1] %}{{ m() }}{% endfor %}", NULL, "G"},
        {"{% filter upper %}abc{{ 'd' }}{% endfilter %}", NULL, "ABCD"},
        {"{% filter trim | upper %}  x  {% endfilter %}", NULL, "X"},
        {"{% generation %}kept{% endgeneration %}", NULL, "kept"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- filters -------------------- */

static void test_filters(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ s|length }}|{{ xs|count }}|{{ d|length }}|{{ missing|length }}", CTX,
         "x|a|11|3|3|0"},
        {"{{ s|upper }}|{{ 'HeLLo'|lower }}|{{ 'hello-world x(y'|title }}|{{ 'aBC'|capitalize }}", CTX,
         "H\xc3\x89LLO W\xc3\x96RLD|hello|Hello-World X(Y|Abc"},
        {"{{ xs|join(', ') }}|{{ xs|join }}|{{ [1, 'a', none]|join('|') }}|{{ msgs|join(',', attribute='role') }}", CTX,
         "1, 2, 3|123|1|a|None|user,assistant,user"},
        {"{{ xs|first }}{{ xs|last }}{{ 'abc'|first }}{{ 'abc'|last }}[{{ e|first }}]", CTX, "13ac[]"},
        {"{{ missing|default('d') }}{{ none|default('d') }}{{ none|default('d', true) }}{{ ''|d('e', true) }}{{ 0|d(5) }}", NULL,
         "dNonede0"},
        {"{{ 0|string }}{{ xs|string }}{{ 'x'|string }}", CTX, "0[1, 2, 3]x"},
        {"{{ '42'|int }}{{ 'x'|int }}{{ '4.7'|int }}{{ 3.9|int }}{{ 'ff'|int(base=16) }}{{ 'x'|int(7) }}", NULL, "420432557"},
        {"{{ '1.5'|float }} {{ 3|float }} {{ 'a'|float(1.0) }}", NULL, "1.5 3.0 1.0"},
        {"{{ -3|abs }}{{ -2.5|abs }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}|{{ 3|round }}|{{ 2.567|round(1, 'floor') }}|{{ 2.51|round(1, 'ceil') }}",
         NULL, "32.5|2.0|3.14|3|2.5|2.6"},
        {"{{ 'aaa'|replace('a', 'xy') }}|{{ 'aaa'|replace('a', 'b', 2) }}", NULL, "xyxyxy|bba"},
        {"{{ xs|reverse|list }}{{ 'abc'|reverse }}{{ range(3)|list }}{{ 'ab'|list }}{{ d|list }}", CTX,
         "[3, 2, 1]cba[0, 1, 2]['a', 'b']['a', 'b', 'c']"},
        {"{{ [3, 1, 2]|sort }}{{ ['b', 'A', 'c']|sort }}{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}{{ [3, 1, 2]|sort(reverse=true) }}",
         NULL, "[1, 2, 3]['A', 'b', 'c']['A', 'b', 'c'][3, 2, 1]"},
        {"{{ msgs|sort(attribute='content')|map(attribute='content')|list }}", CTX, "[' yo ', 'bye', 'hi']"},
        {"{{ ['a', 'A', 'b']|unique|list }}{{ [1, 2, 1]|unique|list }}{{ ['a', 'A']|unique(case_sensitive=true)|list }}", NULL,
         "['a', 'b'][1, 2]['a', 'A']"},
        {"{{ {'b': 1, 'a': 2}|dictsort }}{{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}", NULL,
         "[('a', 2), ('b', 1)][('a', 2), ('b', 1)]"},
        {"{{ xs|sum }}{{ xs|min }}{{ xs|max }}{{ ['b', 'A']|min }}{{ msgs|sum(attribute='x', start=0) if false else '' }}", CTX,
         "613A"},
        {"{{ msgs|map(attribute='role')|join(',') }}|{{ xs|map('string')|join('-') }}|{{ ['a', 'b']|map('upper')|list }}", CTX,
         "user,assistant,user|1-2-3|['A', 'B']"},
        {"{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ msgs|rejectattr('role', 'equalto', 'user')|map(attribute='content')|list }}",
         CTX, "2|[' yo ']"},
        {"{{ [1, 0, 2]|select|list }}{{ [1, 2, 3, 4]|select('odd')|list }}{{ [1, 2, 3, 4]|reject('even')|list }}"
         "{{ [{'a': 1}, {'a': 0}, {}]|selectattr('a')|list }}{{ [1, 5, 9]|select('>', 4)|list }}",
         NULL, "[1, 2][1, 3][1, 3][{'a': 1}][5, 9]"},
        {"{{ '<a href=\"x\">&\\''|e }}|{{ '<b>'|escape }}|{{ '<i>'|safe }}", NULL, "&lt;a href=&#34;x&#34;&gt;&amp;&#39;|&lt;b&gt;|<i>"},
        {"{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('>') }}",
         NULL, "a\n    b\n\n    c|  a\n  b|a\n  \n  b|a\n>b"},
        {"{{ d|items|list }}{{ missing|items|list }}", CTX, "[('a', 1), ('b', [1, 'x']), ('c', None)][]"},
        /* attr is getattr: namespace attributes, but not dict keys */
        {"[{{ d|attr('a') }}]{{ namespace(a=1)|attr('a') }}", CTX, "[]1"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_tojson(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{{ xs|tojson }}|{{ d|tojson }}", CTX, "[1, 2, 3]|{\"a\": 1, \"b\": [1, \"x\"], \"c\": null}"},
        {"{{ d|tojson(indent=2) }}", CTX, "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    \"x\"\n  ],\n  \"c\": null\n}"},
        /* ensure_ascii is off (transformers' override): non-ASCII passes through, controls escape */
        {"{{ {'a': '\xc3\xa9\"\\n\\t\\x01'}|tojson }}", NULL, "{\"a\": \"\xc3\xa9\\\"\\n\\t\\u0001\"}"},
        {"{{ [1.5, 2.0, none, true, 1e100]|tojson }}|{{ {}|tojson(indent=2) }}|{{ []|tojson(indent=2) }}", NULL,
         "[1.5, 2.0, null, true, 1e+100]|{}|[]"},
        {"{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ {'b': 1, 'a': [2]}|tojson(separators=(',', ':')) }}", NULL,
         "{\"a\": 2, \"b\": 1}|{\"b\":1,\"a\":[2]}"},
        {"{{ {1: 'x', true: 'y', none: 'z'}|tojson }}", NULL, "{\"1\": \"y\", \"null\": \"z\"}"},
        {"{{ 'x'|tojson }}{{ none|tojson }}{{ (xs|tojson)[:-1] }}", CTX, "\"x\"null[1, 2, 3"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- tests (is ...) ------------- */

static void test_is_tests(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"{{ x is defined }}{{ xs is defined }}{{ x is undefined }}{{ n is none }}{{ s is string }}{{ xs is string }}", CTX,
         "FalseTrueTrueTrueTrueFalse"},
        {"{{ xs is iterable }}{{ d is mapping }}{{ xs is mapping }}{{ xs is sequence }}{{ missing is iterable }}{{ 1 is iterable }}",
         CTX, "TrueTrueFalseTrueTrueFalse"},
        {"{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is integer }}{{ t is boolean }}{{ t is true }}{{ t is false }}",
         CTX, "TrueTrueTrueFalseTrueTrueFalse"},
        {"{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 3 is not odd }}", NULL,
         "TrueTrueTrueFalseFalse"},
        {"{{ 1 is eq 1 }}{{ 1 is ne 1 }}{{ 2 is gt 1 }}{{ 2 is lt 1 }}{{ 2 is ge 2 }}{{ 2 is le 1 }}{{ 2 is in [1, 2] }}", NULL,
         "TrueFalseTrueFalseTrueFalseTrue"},
        {"{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'Ab' is lower }}{{ none is sameas none }}{{ range is callable }}", NULL,
         "TrueTrueFalseTrueTrue"},
        {"{{ strftime_now is defined }}{{ raise_exception is defined }}{{ namespace is defined }}{{ nothing is defined }}", NULL,
         "TrueTrueTrueFalse"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- string methods ------------- */

static void test_string_methods(void **state) {
    (void)state;
    static const jcase cases[] = {
        {"[{{ ' a '.strip() }}][{{ 'xxay'.lstrip('x') }}][{{ 'ayyx'.rstrip('xy') }}][{{ '\\n\\nx\\n'.strip('\\n') }}][{{ ' a '.strip(none) }}]",
         NULL, "[a][ay][a][x][a]"},
        {"{{ 'a<b>c<b>'.split('<b>') }}{{ ' a  b '.split() }}{{ 'x'.split(',') }}{{ 'a,b,c'.split(',', 1) }}"
         "{{ '  a b c '.split(none, 1) }}{{ ''.split() }}{{ ''.split(',') }}",
         NULL, "['a', 'c', '']['a', 'b']['x']['a', 'b,c']['a', 'b c '][]['']"},
        {"{{ 'r</think>a'.split('</think>')[-1] }}", NULL, "a"},
        {"{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('x') }}", NULL,
         "TrueTrueTrueFalse"},
        {"{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}{{ 'a-b c'.title() }}{{ 'aBC'.capitalize() }}", NULL, "HELLOhelloA-B CAbc"},
        {"{{ 'aaa'.replace('a', 'b') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abc'.replace('', '-') }}|{{ 'x'.join(['a', 'b']) }}",
         NULL, "bbb|bba|-a-b-c-|axb"},
        {"{{ 'abcabc'.find('c') }}{{ 'abc'.find('z') }}{{ 'abcabc'.count('bc') }}{{ 'pre_x'.removeprefix('pre_') }}", NULL,
         "2-12x"},
        {"{{ ' '.isspace() }}{{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ 'a1'.isalnum() }}{{ ''.isspace() }}", NULL,
         "TrueTrueTrueTrueFalse"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_unicode_and_time(void **state) {
    (void)state;
    static const jcase cases[] = {
        /* lengths and indices count code points, like Python str */
        {"{{ '\xc3\xa9'|length }}{{ '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e'[1] }}{{ '\xe6\x97\xa5\xe6\x9c\xac'|reverse }}", NULL,
         "1\xe6\x9c\xac\xe6\x9c\xac\xe6\x97\xa5"},
        /* case mapping beyond ASCII (utf8proc) */
        {"{{ s|length }}{{ s|upper }}", "{\"s\": \"a\\u00ff\"}", "2A\xc5\xb8"},
        /* invalid UTF-8 never fails: each stray byte counts as one character and is kept */
        {"{{ 'a\xff' 'b'|length }}{{ 'a\xff' 'b'|upper }}{{ ('a\xff' 'b')[1] == 'b' }}", NULL, "3A\xff" "BFalse"},
        /* strftime_now formats the pinned time (mid-day UTC, so the same date in any time zone) */
        {"{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}", NULL, "26 Jul 2024|2024-07-26"},
    };
    run_cases(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- errors --------------------- */

static void test_syntax_errors(void **state) {
    (void)state;
    /* positions are 1-based lines and columns of the offending token */
    check_error("ok\n{{ 1 + }}", NULL, MN_EINVAL, "line 2, column 8: expected an expression");
    check_error("{% if x %}\nbody", NULL, MN_EINVAL, "'if' opened at line 1, column 1 needs 'endif'");
    check_error("{% for x in xs %}{% endif %}", NULL, MN_EINVAL, "line 1, column 21: unexpected 'endif'");
    check_error("{% for %}", NULL, MN_EINVAL, "line 1, column 8: expected a variable name");
    check_error("a\n  {{ xs|foo }}", NULL, MN_EINVAL, "line 2, column 9: unknown filter 'foo'");
    check_error("{{ x|wordcount }}", NULL, MN_EUNSUPPORTED, "line 1, column 6: the filter 'wordcount' is not supported");
    check_error("{{ x is fancy }}", NULL, MN_EINVAL, "line 1, column 9: unknown test 'fancy'");
    check_error("{% frobnicate %}", NULL, MN_EINVAL, "unknown tag 'frobnicate'");
    check_error("{% include 'x' %}", NULL, MN_EUNSUPPORTED, "{% include %} tag is not supported");
    check_error("{% break %}", NULL, MN_EINVAL, "'break' outside a loop");
    check_error("{{ 'open", NULL, MN_EINVAL, "line 1, column 4: unterminated string literal");
    check_error("{{ x ", NULL, MN_EINVAL, "'{{' tag is not closed");
    check_error("{# never closed", NULL, MN_EINVAL, "comment is not closed");
    check_error("{{ (1 }}", NULL, MN_EINVAL, "unexpected '}', expected ')'");
    check_error("{{ 1 ! 2 }}", NULL, MN_EINVAL, "unexpected character '!'");
    check_error("{{ 99999999999999999999 }}", NULL, MN_EINVAL, "does not fit in 64 bits");
    check_error("{% macro m(a=1, b) %}{% endmacro %}", NULL, MN_EINVAL, "without default");
}

static void test_runtime_errors(void **state) {
    (void)state;
    check_error("{{ missing.attr }}", NULL, MN_EINVAL, "line 1, column 4: 'missing' is undefined");
    check_error("{{ d.zz.q }}", CTX, MN_EINVAL, "'dict object' has no attribute 'zz'");
    check_error("{{ xs[5].q }}", CTX, MN_EINVAL, "'list object' has no element 5");
    check_error("{{ 1 + 'a' }}", NULL, MN_EINVAL, "unsupported operand types for +: 'int' and 'str'");
    check_error("{{ missing + 'a' }}", NULL, MN_EINVAL, "'missing' is undefined");
    /* ~ binds tighter than +: 1 + (2 ~ 3) adds an int and a str */
    check_error("{{ 1 + 2 ~ 3 }}", NULL, MN_EINVAL, "unsupported operand types for +: 'int' and 'str'");
    check_error("{{ 'a' < 1 }}", NULL, MN_EINVAL, "cannot order 'str' and 'int'");
    check_error("{{ 1 / 0 }}", NULL, MN_EINVAL, "division by zero");
    check_error("{{ 1 // 0 }}", NULL, MN_EINVAL, "division or modulo by zero");
    check_error("{{ undefined_fn() }}", NULL, MN_EINVAL, "'undefined_fn' is undefined");
    check_error("{{ xs.append(4) }}", CTX, MN_EINVAL, "cannot be modified");
    check_error("{% set x = 1 %}{% set x.y = 2 %}", NULL, MN_EINVAL, "only on a namespace");
    check_error("{% for a, b in [1] %}{% endfor %}", NULL, MN_EINVAL, "cannot unpack");
    check_error("{{ none|length }}", NULL, MN_EINVAL, "has no len()");
    check_error("{% for x in 5 %}{% endfor %}", NULL, MN_EINVAL, "'int' object is not iterable");
    check_error("{{ missing|tojson }}", NULL, MN_EINVAL, "not JSON serializable");
    check_error("{{ 9223372036854775807 + 1 }}", NULL, MN_ERANGE, "integer overflow");
    check_error("{{ 'a'.frob() }}", NULL, MN_EUNSUPPORTED, "str has no method 'frob'");
    check_error("{{ strftime_now('%s') }}", NULL, MN_EUNSUPPORTED, "conversion '%s' is not supported");
    check_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, MN_EINVAL, "takes 1 arguments");
    /* raise_exception: the template's own message, where it was raised */
    check_error("{% if true %}\n  {{ raise_exception('Conversation roles must alternate') }}{% endif %}", NULL, MN_EINVAL,
                "line 2, column 6: raise_exception: Conversation roles must alternate");
}

/* ---------------------------------------------------------------- limits --------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void check_limited(const char *tmpl, const mn_jinja_limits *lim, mn_status want_st, const char *want_msg) {
    char *out = NULL;
    mn_error err = {0};
    double t0 = now_s();
    mn_status st = render_lim(tmpl, NULL, lim, &out, &err);
    double dt = now_s() - t0;
    if (st != want_st) fail_msg("template %.80s: status %d, want %d (%s)", tmpl, st, want_st, err.message);
    if (!strstr(err.message, want_msg)) fail_msg("template %.80s: message [%s] lacks [%s]", tmpl, err.message, want_msg);
    assert_null(out);
    /* the budgets bound the time too (generous for sanitizer builds) */
    if (dt > 20.0) fail_msg("template %.80s took %.1f s to fail", tmpl, dt);
}

static void test_step_budget(void **state) {
    (void)state;
    mn_jinja_limits lim = default_limits();
    /* 10^5 x 10^5 iterations: ends at the step budget, not after 10^10 iterations */
    check_limited("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", &lim, MN_EFULL,
                  "step budget exhausted");
    /* the sandbox refuses huge ranges outright, like Jinja's */
    check_limited("{% for i in range(10**6) %}{% endfor %}", &lim, MN_EFULL, "range too big");
    /* string work is charged per byte: scanning a long string in a loop runs out of steps */
    lim.n_steps_max = 200000;
    check_limited("{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{% if 'y' in s %}{% endif %}{% endfor %}", &lim,
                  MN_EFULL, "step budget exhausted");
    /* a small budget is honoured exactly enough to stop a modest loop */
    lim.n_steps_max = 1000;
    check_limited("{% for i in range(5000) %}{{ i }}{% endfor %}", &lim, MN_EFULL, "step budget exhausted");
    /* ...and leaves normal templates alone */
    char *out = NULL;
    mn_error err = {0};
    assert_int_equal(render_lim("{% for i in range(50) %}{{ i }}{% endfor %}", NULL, &lim, &out, &err), MN_OK);
    free(out);
}

static void test_depth_budget(void **state) {
    (void)state;
    mn_jinja_limits lim = default_limits();
    /* unbounded recursion hits the nesting cap */
    check_limited("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", &lim, MN_EFULL, "nested too deeply");
    lim.depth_max = 40;
    check_limited("{% macro f(n) %}{% if n < 100 %}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}", &lim, MN_EFULL,
                  "more than 40 levels");
    /* the parser caps nesting too, so deep input cannot exhaust the C stack */
    size_t n = 100000;
    char *deep = malloc(2 * n + 16);
    assert_non_null(deep);
    strcpy(deep, "{{ ");
    memset(deep + 3, '(', n);
    strcpy(deep + 3 + n, "1");
    memset(deep + 4 + n, ')', n);
    strcpy(deep + 4 + 2 * n, " }}");
    check_limited(deep, &lim, MN_EFULL, "nested too deeply");
    free(deep);
}

static void test_output_and_memory_budget(void **state) {
    (void)state;
    mn_jinja_limits lim = default_limits();
    lim.out_bytes_max = 1 << 20;
    /* 100 x 100 x 1 KB = 10 MB of output against a 1 MB cap */
    check_limited("{% set k = 'x' * 1000 %}{% for i in range(100) %}{% for j in range(100) %}{{ k }}{% endfor %}{% endfor %}",
                  &lim, MN_ETOOBIG, "output limit");
    check_limited("{{ 'x' * 100000000 }}", &lim, MN_ETOOBIG, "output limit");
    /* doubling a string: each step is within the output cap but the arena fills up */
    lim = default_limits();
    lim.mem_bytes_max = 4 << 20;
    check_limited("{% set ns = namespace(s='x' * 100000) %}{% for i in range(1000) %}{% set ns.s = ns.s ~ 'y' %}{% endfor %}",
                  &lim, MN_EFULL, "memory budget exhausted");
    /* exponential structures are stopped by steps or memory, not by luck */
    lim = default_limits();
    check_limited("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", &lim,
                  MN_EFULL, "budget exhausted");
    /* templates over the size limit are refused before parsing */
    size_t big = MN_JINJA_SOURCE_MAX + 1;
    char *src = malloc(big + 1);
    assert_non_null(src);
    memset(src, 'a', big);
    src[big] = '\0';
    mn_jinja_template *t = NULL;
    mn_error err = {0};
    assert_int_equal(mn_jinja_parse(src, big, &t, &err), MN_ETOOBIG);
    assert_null(t);
    assert_non_null(strstr(err.message, "more than the limit"));
    free(src);
}

static void test_long_chain_and_reuse(void **state) {
    (void)state;
    /* 5000 additions in one expression: a flat node, no nesting problem */
    size_t cap = 8 + 4 * 5000 + 8;
    char *chain = malloc(cap);
    assert_non_null(chain);
    size_t o = (size_t)snprintf(chain, cap, "{{ 0");
    for (int i = 0; i < 5000; i++) o += (size_t)snprintf(chain + o, cap - o, " + 1");
    snprintf(chain + o, cap - o, " }}");
    check_render(chain, NULL, "5000");
    free(chain);
    /* one parsed template renders many times with different contexts */
    mn_jinja_template *t = NULL;
    mn_error err = {0};
    const char *src = "{{ who }}!";
    assert_int_equal(mn_jinja_parse(src, strlen(src), &t, &err), MN_OK);
    mn_jinja_limits lim = default_limits();
    for (int i = 0; i < 3; i++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "{\"who\": \"w%d\"}", i);
        cJSON *c = cJSON_Parse(ctx);
        char *out = NULL;
        assert_int_equal(mn_jinja_render(t, c, &lim, &out, NULL, &err), MN_OK);
        char want[16];
        snprintf(want, sizeof want, "w%d!", i);
        assert_string_equal(out, want);
        free(out);
        cJSON_Delete(c);
    }
    mn_jinja_free(t);
    mn_jinja_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_and_printing),
        cmocka_unit_test(test_whitespace_control),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_if_for),
        cmocka_unit_test(test_set_scope_namespace),
        cmocka_unit_test(test_macros_and_blocks),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_tojson),
        cmocka_unit_test(test_is_tests),
        cmocka_unit_test(test_string_methods),
        cmocka_unit_test(test_unicode_and_time),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_step_budget),
        cmocka_unit_test(test_depth_budget),
        cmocka_unit_test(test_output_and_memory_budget),
        cmocka_unit_test(test_long_chain_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
