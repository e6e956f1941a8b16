/*
 * fuzz_template.c: libFuzzer target for chat templates (BAD_INPUTS row 12): the input is a
 * template, rendered through the public API over a fixed conversation with small budgets, so a
 * template that loops, recurses or explodes must end with an error quickly.
 *
 * Input layout: the bytes up to the first NUL are the template; the bytes after it (up to the
 * next NUL) become the content of the last user message, so the fuzzer also mutates what the
 * template reads (special tokens, invalid UTF-8, huge or empty text). The conversation also has a
 * system turn, an assistant turn with a tool call, a tool result and a tools list, which reaches
 * the tool branches of the seed templates.
 *
 * Invariants checked (abort on violation, so libFuzzer reports them): success gives a NUL-
 * terminated output of the reported length within the output budget and an OK error status;
 * failure gives no output and an error status equal to the return value with a message; a second
 * render of the same parsed template gives the same result (renders share no state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "minnow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond) {
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tmpl_len = nul ? (size_t)(nul - data) : size;
    char *tmpl = malloc(tmpl_len + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, data, tmpl_len);
    tmpl[tmpl_len] = '\0';
    char user_text[512] = "What is 2+2? <|im_end|> {{ not a tag }}";
    if (nul) {
        size_t rest = size - tmpl_len - 1;
        if (rest > sizeof user_text - 1) rest = sizeof user_text - 1;
        memcpy(user_text, nul + 1, rest);
        user_text[rest] = '\0';
    }

    const mn_chat_message msgs[] = {
        {.role = "system", .content = "You are a helpful assistant."},
        {.role = "user", .content = "Hello!"},
        {.role = "assistant",
         .content = NULL,
         .tool_calls_json = "[{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
                            "\"arguments\": {\"city\": \"Paris\"}}}]"},
        {.role = "tool", .content = "22C", .tool_call_id = "call12345", .name = "get_weather"},
        {.role = "assistant", .content = "<think>\nhmm\n</think>\n\nIt is 22C."},
        {.role = "user", .content = user_text},
    };
    mn_chat_params p = mn_chat_default_params();
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.tools_json = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\", "
                   "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}]";
    p.now = 1721995200;
    p.n_steps_max = 20000;
    p.depth_max = 64;
    p.out_bytes_max = 1 << 16;
    p.mem_bytes_max = 8 << 20;

    mn_chat_template *t = NULL;
    mn_error err = {0};
    mn_status st = mn_chat_template_create(tmpl, &t, &err);
    if (st != MN_OK) {
        check(t == NULL && err.status == st && err.message[0] != '\0');
        free(tmpl);
        return 0;
    }
    char *first = NULL;
    size_t first_len = 0;
    for (int round = 0; round < 2; round++) {
        char *out = NULL;
        size_t len = 0;
        mn_error rerr = {0};
        mn_status rst = mn_chat_template_render(t, msgs, sizeof msgs / sizeof msgs[0], &p, &out, &len, &rerr);
        if (rst == MN_OK) {
            check(out != NULL && out[len] == '\0' && len <= p.out_bytes_max && rerr.status == MN_OK);
        } else {
            check(out == NULL && rerr.status == rst && rerr.message[0] != '\0');
        }
        if (round == 0) {
            first = out;
            first_len = rst == MN_OK ? len : SIZE_MAX;
        } else {
            check((rst == MN_OK ? len : SIZE_MAX) == first_len);
            if (out && first) check(memcmp(out, first, len) == 0);
            free(out);
        }
    }
    free(first);
    mn_chat_template_free(t);
    free(tmpl);
    return 0;
}
