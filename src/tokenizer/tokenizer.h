/*
 * tokenizer.h: the tokenizer's interface inside minnow (the public half is the tokenizer section
 * of include/minnow.h).
 *
 * The model loader builds an mn_tokenizer from an already-open GGUF with mn_tokenizer_from_gguf;
 * the tokenizer copies everything it needs (token texts, scores, merges, chat template), so it
 * outlives the mn_gguf and holds no pointer into the mapping. The chat-template code reads the
 * template string and token texts through the getters below. An mn_tokenizer is immutable after
 * creation: every call here is safe from any number of threads at once.
 */
#ifndef MN_TOKENIZER_TOKENIZER_H
#define MN_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "minnow.h"

/* Token types, as numbered in tokenizer.ggml.token_type (SentencePiece / llama.cpp). Values
 * outside [0, 6] in a file are read as MN_TOKEN_UNDEFINED. */
enum mn_token_type {
    MN_TOKEN_UNDEFINED = 0,
    MN_TOKEN_NORMAL = 1,       /* ordinary text: the only kind merges can produce */
    MN_TOKEN_UNKNOWN = 2,      /* <unk> */
    MN_TOKEN_CONTROL = 3,      /* <s>, <|im_end|>: parsed from text only with PARSE_SPECIAL */
    MN_TOKEN_USER_DEFINED = 4, /* added tokens: always split out of the text, like HF/llama.cpp */
    MN_TOKEN_UNUSED = 5,
    MN_TOKEN_BYTE = 6, /* SentencePiece byte fallback, text "<0xNN>" */
};

/* Largest vocabulary accepted (same bound as the sampler's). */
#define MN_TOKENIZER_VOCAB_MAX (1 << 24)

/* Builds the tokenizer described by g's tokenizer.* metadata.
 * Errors: MN_ENOTFOUND, with err untouched, when g has no tokenizer.ggml.model (or it says
 * "none"/"no_vocab"): the loader treats that as "model without vocabulary". MN_EUNSUPPORTED for a tokenizer model other
 * than "llama" (SentencePiece) or "gpt2" (byte-level BPE), or an unknown tokenizer.ggml.pre.
 * MN_EBADFILE, with a message naming the key, for malformed metadata: a wrong value or element
 * type, an array whose count differs from the number of tokens, a token id out of range, a BYTE
 * token not spelled <0xNN>, a NaN score, a merge without a space. MN_ENOMEM.
 * out: OUT, owned by the caller (mn_tokenizer_free), NULL on failure. err: may be NULL. */
mn_status mn_tokenizer_from_gguf(const mn_gguf *g, mn_tokenizer **out, mn_error *err);

/* tokenizer.chat_template, NUL-terminated; NULL when the file has none. Borrowed from tok. */
const char *mn_tokenizer_chat_template(const mn_tokenizer *tok);

/* The token's text exactly as stored in the file (SentencePiece "▁Hello", byte-level BPE
 * "ĠHello", "<|im_end|>"), NUL-terminated; *len (may be NULL) gets its length. NULL when id is
 * out of range. Borrowed from tok. For the bytes a token stands for, use mn_token_to_piece. */
const char *mn_tokenizer_token_text(const mn_tokenizer *tok, int32_t id, size_t *len);

/* enum mn_token_type of id, or -1 when id is out of range. */
int mn_tokenizer_token_type(const mn_tokenizer *tok, int32_t id);

/* The id whose stored text is exactly text[0..len) (the lowest id if several), or -1. Meant for
 * looking up special tokens by name ("<|im_end|>"), not for tokenizing. */
int32_t mn_tokenizer_find(const mn_tokenizer *tok, const char *text, size_t len);

/* Further special ids (-1 when none): end of turn, end of message, unknown, padding. */
int32_t mn_tokenizer_eot(const mn_tokenizer *tok);
int32_t mn_tokenizer_eom(const mn_tokenizer *tok);
int32_t mn_tokenizer_unk(const mn_tokenizer *tok);
int32_t mn_tokenizer_pad(const mn_tokenizer *tok);

/* Non-zero when mn_tokenize with MN_TOKENIZE_ADD_BOS really prepends BOS (the vocabulary asks for
 * it and has a BOS id), so a chat template can avoid a double BOS. */
int mn_tokenizer_adds_bos(const mn_tokenizer *tok);

/* "llama" or "gpt2", and the pre-tokenizer name in use ("" for SentencePiece). Borrowed. */
const char *mn_tokenizer_model_name(const mn_tokenizer *tok);
const char *mn_tokenizer_pre_name(const mn_tokenizer *tok);

#endif
