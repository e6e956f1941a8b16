/*
 * chat_template.c: the public chat-template API of minnow.h on top of the Jinja interpreter.
 *
 * A render builds the variables HF transformers passes to a chat template (messages as a list of
 * {role, content, ...} dicts, add_generation_prompt, bos_token, eos_token, tools and documents,
 * none when absent) as a cJSON object whose strings reference the caller's buffers (no copy of
 * the conversation), merges the caller's vars_json over it, and renders. JSON was chosen as the
 * context format because tools and tool calls arrive as JSON anyway (OpenAI shape) and cJSON is
 * already a dependency; the interpreter converts it to its own values once per render.
 *
 * A model without a template gets ChatML, the format of the transformers default template, and a
 * warning in the mn_error (status MN_OK) so the caller can tell the user.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja.h"

struct mn_chat_template {
    mn_jinja_template *t;
    int fallback;
};

static const char chatml_src[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

static const char fallback_warning[] = "the model has no chat template; using ChatML";

const char *mn_chat_template_chatml(void) { return chatml_src; }

mn_chat_params mn_chat_default_params(void) {
    mn_chat_params p;
    memset(&p, 0, sizeof p);
    p.add_generation_prompt = 1;
    p.n_steps_max = MN_CHAT_STEPS_DEFAULT;
    p.depth_max = MN_CHAT_DEPTH_DEFAULT;
    p.out_bytes_max = MN_CHAT_OUT_BYTES_DEFAULT;
    p.mem_bytes_max = MN_CHAT_MEM_BYTES_DEFAULT;
    return p;
}

mn_status mn_chat_template_create(const char *src, mn_chat_template **out, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    *out = NULL;
    int fallback = !src || !src[0];
    const char *text = fallback ? chatml_src : src;
    size_t len = strnlen(text, MN_CHAT_TEMPLATE_BYTES_MAX + 1);
    MN_RETURN_IF(len > MN_CHAT_TEMPLATE_BYTES_MAX, err, MN_ETOOBIG,
                 "chat template longer than %zu bytes", (size_t)MN_CHAT_TEMPLATE_BYTES_MAX);
    mn_chat_template *t = calloc(1, sizeof *t);
    MN_RETURN_IF(!t, err, MN_ENOMEM, "out of memory");
    mn_status st = mn_jinja_parse(text, len, &t->t, err);
    if (st != MN_OK) {
        free(t);
        if (err) mn_error_prefix(err, "chat template");
        return st;
    }
    t->fallback = fallback;
    if (err) mn_error_set(err, MN_OK, "%s", fallback ? fallback_warning : "");
    *out = t;
    return MN_OK;
}

void mn_chat_template_free(mn_chat_template *t) {
    if (!t) return;
    mn_jinja_free(t->t);
    free(t);
}

int mn_chat_template_is_fallback(const mn_chat_template *t) { return t && t->fallback; }

/* ---------------------------------------------------------------- context -------------------- */

static mn_status add_ref(cJSON *obj, const char *key, const char *s, mn_error *err) {
    cJSON *item = s ? cJSON_CreateStringReference(s) : cJSON_CreateNull();
    MN_RETURN_IF(!item, err, MN_ENOMEM, "out of memory building the template context");
    cJSON_AddItemToObject(obj, key, item);
    return MN_OK;
}

static mn_status parse_json(const char *text, const char *what, size_t index, int want_array, cJSON **out,
                            mn_error *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        size_t at = end ? (size_t)(end - text) : 0;
        if (index == SIZE_MAX) return mn_error_set(err, MN_EINVAL, "%s is not valid JSON (near byte %zu)", what, at);
        return mn_error_set(err, MN_EINVAL, "messages[%zu].%s is not valid JSON (near byte %zu)", index, what, at);
    }
    int ok = want_array ? cJSON_IsArray(j) : cJSON_IsObject(j);
    if (!ok) {
        cJSON_Delete(j);
        if (index == SIZE_MAX)
            return mn_error_set(err, MN_EINVAL, "%s must be a JSON %s", what, want_array ? "array" : "object");
        return mn_error_set(err, MN_EINVAL, "messages[%zu].%s must be a JSON %s", index, what, want_array ? "array" : "object");
    }
    *out = j;
    return MN_OK;
}

static mn_status build_context(const mn_chat_message *msgs, size_t n_msgs, const mn_chat_params *p, cJSON *ctx,
                               mn_error *err) {
    cJSON *arr = cJSON_AddArrayToObject(ctx, "messages");
    MN_RETURN_IF(!arr, err, MN_ENOMEM, "out of memory building the template context");
    for (size_t i = 0; i < n_msgs; i++) {
        const mn_chat_message *m = &msgs[i];
        MN_RETURN_IF(!m->role, err, MN_EINVAL, "messages[%zu].role is NULL", i);
        cJSON *o = cJSON_CreateObject();
        MN_RETURN_IF(!o, err, MN_ENOMEM, "out of memory building the template context");
        cJSON_AddItemToArray(arr, o);
        MN_FORWARD(add_ref(o, "role", m->role, err));
        MN_FORWARD(add_ref(o, "content", m->content, err));
        if (m->name) MN_FORWARD(add_ref(o, "name", m->name, err));
        if (m->tool_calls_json) {
            cJSON *tc = NULL;
            MN_FORWARD(parse_json(m->tool_calls_json, "tool_calls_json", i, 1, &tc, err));
            cJSON_AddItemToObject(o, "tool_calls", tc);
        }
        if (m->tool_call_id) MN_FORWARD(add_ref(o, "tool_call_id", m->tool_call_id, err));
        if (m->reasoning_content) MN_FORWARD(add_ref(o, "reasoning_content", m->reasoning_content, err));
    }
    if (p->tools_json) {
        cJSON *tools = NULL;
        MN_FORWARD(parse_json(p->tools_json, "tools_json", SIZE_MAX, 1, &tools, err));
        cJSON_AddItemToObject(ctx, "tools", tools);
    } else {
        MN_RETURN_IF(!cJSON_AddNullToObject(ctx, "tools"), err, MN_ENOMEM, "out of memory");
    }
    MN_RETURN_IF(!cJSON_AddNullToObject(ctx, "documents"), err, MN_ENOMEM, "out of memory");
    MN_RETURN_IF(!cJSON_AddBoolToObject(ctx, "add_generation_prompt", p->add_generation_prompt != 0), err, MN_ENOMEM,
                 "out of memory");
    MN_FORWARD(add_ref(ctx, "bos_token", p->bos_token ? p->bos_token : "", err));
    MN_FORWARD(add_ref(ctx, "eos_token", p->eos_token ? p->eos_token : "", err));
    if (p->vars_json) {
        cJSON *vars = NULL;
        MN_FORWARD(parse_json(p->vars_json, "vars_json", SIZE_MAX, 0, &vars, err));
        while (vars->child) {
            cJSON *item = cJSON_DetachItemViaPointer(vars, vars->child);
            if (!item->string) { /* cannot happen for an object member; be safe */
                cJSON_Delete(item);
                continue;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(ctx, item->string);
            cJSON_AddItemToObject(ctx, item->string, item); /* copies the key; item keeps its own */
        }
        cJSON_Delete(vars);
    }
    return MN_OK;
}

/* ---------------------------------------------------------------- render --------------------- */

mn_status mn_chat_template_render(const mn_chat_template *t, const mn_chat_message *msgs, size_t n_msgs,
                                  const mn_chat_params *params, char **out, size_t *out_len, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    *out = NULL;
    if (out_len) *out_len = 0;
    MN_RETURN_IF(!t, err, MN_EINVAL, "template is NULL");
    MN_RETURN_IF(!msgs && n_msgs, err, MN_EINVAL, "msgs is NULL but n_msgs is %zu", n_msgs);
    MN_RETURN_IF(n_msgs > MN_CHAT_MESSAGES_MAX, err, MN_ETOOBIG, "%zu messages, more than the limit of %zu", n_msgs,
                 (size_t)MN_CHAT_MESSAGES_MAX);
    mn_chat_params p = params ? *params : mn_chat_default_params();
    mn_jinja_limits lim = {
        .n_steps_max = p.n_steps_max ? p.n_steps_max : MN_CHAT_STEPS_DEFAULT,
        .depth_max = p.depth_max ? p.depth_max : MN_CHAT_DEPTH_DEFAULT,
        .out_bytes_max = p.out_bytes_max ? p.out_bytes_max : MN_CHAT_OUT_BYTES_DEFAULT,
        .mem_bytes_max = p.mem_bytes_max ? p.mem_bytes_max : MN_CHAT_MEM_BYTES_DEFAULT,
        .now = p.now,
    };
    cJSON *ctx = cJSON_CreateObject();
    MN_RETURN_IF(!ctx, err, MN_ENOMEM, "out of memory building the template context");
    mn_status st = build_context(msgs, n_msgs, &p, ctx, err);
    if (st == MN_OK) {
        st = mn_jinja_render(t->t, ctx, &lim, out, out_len, err);
        if (st != MN_OK && err) mn_error_prefix(err, "chat template");
    }
    cJSON_Delete(ctx);
    if (st == MN_OK && err) mn_error_set(err, MN_OK, "%s", t->fallback ? fallback_warning : "");
    return st;
}

mn_status mn_chat_render(const char *tmpl, const mn_chat_message *msgs, size_t n_msgs, const mn_chat_params *params,
                         char **out, size_t *out_len, mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    *out = NULL;
    if (out_len) *out_len = 0;
    mn_chat_template *t;
    MN_FORWARD(mn_chat_template_create(tmpl, &t, err));
    mn_status st = mn_chat_template_render(t, msgs, n_msgs, params, out, out_len, err);
    mn_chat_template_free(t);
    return st;
}
