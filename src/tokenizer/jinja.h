/*
 * jinja.h: a small interpreter for the subset of Jinja2 that chat templates use (the
 * tokenizer.chat_template string of a model), as HF transformers runs them: trim_blocks and
 * lstrip_blocks on, keep_trailing_newline off, loop controls (break/continue) on, the {%
 * generation %} tag accepted, and the globals raise_exception, strftime_now, namespace, range and
 * dict, with transformers' own tojson (ensure_ascii off, keys in insertion order).
 *
 * Design: a template is parsed once into an immutable AST (mn_jinja_parse) and may then be
 * rendered any number of times, from any number of threads at once; each render owns all its
 * state (an arena for values, a frame stack, the output buffer). Values are plain structs passed
 * by value; strings are byte views (UTF-8 by convention, never copied when borrowed from the
 * template or the context). Nothing in a template can reach host code: there is no attribute
 * access to C objects, only the fixed filters, tests and methods of jinja_builtins.c.
 *
 * Bounds (BAD_INPUTS row 12): the template size, the nesting of the parsed tree, the evaluation
 * steps (one per node evaluated plus one per 64 bytes of string work), the evaluation nesting,
 * the bytes of memory a render may allocate and the bytes it may output are all capped; going
 * over any cap ends the render with an error that names the cap. A render never hangs and never
 * aborts on bad input.
 *
 * Errors carry the line and column of the construct that failed: "line 3, column 12: unknown
 * filter 'foo'". Syntax errors and template bugs are MN_EINVAL; Jinja features this interpreter
 * does not implement (a filter, tag or method it does not know) are MN_EUNSUPPORTED; an exhausted
 * budget is MN_EFULL (steps, nesting, memory) or MN_ETOOBIG (output, template size).
 */
#ifndef MN_TOKENIZER_JINJA_H
#define MN_TOKENIZER_JINJA_H

#include <cjson/cJSON.h>

#include "core/status.h"

typedef struct mn_jinja_template mn_jinja_template;

/* Largest template mn_jinja_parse accepts (real chat templates are a few KB to ~40 KB). */
#define MN_JINJA_SOURCE_MAX (1u << 20)
/* Deepest parsed tree (nested expressions and blocks). */
#define MN_JINJA_TREE_HEIGHT_MAX 200
/* Hard cap on evaluation nesting whatever the caller asks (keeps the C stack bounded). */
#define MN_JINJA_DEPTH_HARD_MAX 4096
/* The sandbox's limit on range() (the same as Jinja's SandboxedEnvironment MAX_RANGE). */
#define MN_JINJA_RANGE_MAX 100000

typedef struct mn_jinja_limits {
    uint64_t n_steps_max; /* evaluation steps (node evaluations + 1 per 64 bytes of string work) */
    uint32_t depth_max;   /* evaluation nesting (expressions, blocks and macro calls) */
    size_t out_bytes_max; /* bytes the render may output (also the cap of each captured block) */
    size_t mem_bytes_max; /* bytes of values the render may allocate */
    int64_t now;          /* seconds since the epoch that strftime_now formats (local time) */
} mn_jinja_limits;

/* Parses src[0..len) (any bytes; NUL included). out: OUT, owned by caller. err: may be NULL. */
mn_status mn_jinja_parse(const char *src, size_t len, mn_jinja_template **out, mn_error *err);
void mn_jinja_free(mn_jinja_template *t);

/* Renders t with the variables of the JSON object ctx (NULL: none; JSON numbers without a
 * fraction and below 2^53 become integers). ctx is only read, and must outlive the call.
 * out: OUT, malloc'd and NUL-terminated, owned by caller (free()); NULL on failure.
 * out_len: OUT, may be NULL. err: may be NULL. */
mn_status mn_jinja_render(const mn_jinja_template *t, const cJSON *ctx, const mn_jinja_limits *lim,
                          char **out, size_t *out_len, mn_error *err);

#endif
