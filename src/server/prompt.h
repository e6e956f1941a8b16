/*
 * prompt.h: turning a validated request into prompt token ids (chat template + tokenizer).
 *
 * Chat messages are rendered with the model's own chat template (mn_chat_template_render; ChatML
 * when the model has none). The prompt-injection boundary (BAD_INPUTS 18) is kept here: text that
 * came from a client is tokenized WITHOUT special-token parsing, so "<|im_end|>" typed by a user
 * stays text, while the template's own markup may become special tokens. To know which bytes of
 * the rendering are the client's, the template is rendered with a unique marker in place of each
 * message's content; the rendering is then cut at the markers, template pieces are tokenized
 * with MN_TOKENIZE_PARSE_SPECIAL and each content without, and the ids are concatenated. A
 * template that does not place every marker exactly once, in order (it drops, repeats or rewrites
 * a content), falls back to rendering the real contents and tokenizing the whole text with
 * special-token parsing, as llama.cpp does; that fallback is logged nowhere and is the only case
 * where user text can spell a special token.
 * Known difference from whole-text tokenization: a SentencePiece vocabulary puts its space
 * prefix before every content (one tokenizer call per piece).
 */
#ifndef MN_SERVER_PROMPT_H
#define MN_SERVER_PROMPT_H

#include "minnow.h"
#include "server/request.h"

typedef struct srv_prompt_env {
    const mn_tokenizer *tok;
    const mn_chat_template *tmpl; /* parsed once at startup; NULL: ChatML built in */
    const char *bos_text;         /* the BOS / EOS token texts the template may print ("" when none) */
    const char *eos_text;
} srv_prompt_env;

/* Tokenizes the request's prompt (chat: rendered messages + the assistant prefix; completion:
 * text with BOS, or the ids as given). *out: malloc'd ids owned by the caller, *n_out of them,
 * at most n_ctx (more: 400 context_length_exceeded). Template errors (raise_exception, budgets)
 * are 400 with param "messages". Returns 0 or the HTTP status with e filled. */
int srv_build_prompt(const srv_prompt_env *env, const srv_request *r, int32_t n_ctx, int32_t **out,
                     int32_t *n_out, srv_error *e);

#endif
