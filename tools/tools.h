/*
 * tools.h: model-file tools (converters, later quantize/synth/merge). They use the public API and
 * src/gguf only, and write files atomically through the GGUF writer.
 */
#ifndef MN_TOOLS_H
#define MN_TOOLS_H

#include <stdint.h>

#include "minnow.h"

typedef void (*mn_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Converts a llama2.c checkpoint (format: ../shared/README.md) into a `llama` GGUF. type: MN_TYPE_F32,
 * F16 or Q8_0 for the matrices (a matrix whose rows do not fit the block size falls back to F16 and
 * a note goes to `log`). A placeholder vocabulary of n_vocab tokens (<unk>, <s>, </s>, 256 byte
 * tokens, then "<tok_N>") is written so the file is a complete model. progress may be NULL. */
mn_status mn_convert_llama2c(const char *in_path, const char *out_path, int32_t type,
                             mn_progress_fn progress, void *progress_user, void (*log)(const char *msg),
                             mn_error *err);

/* ---------------------------------------------------------------- shared by the tools ------- */
struct mn_gguf_writer;

/* Writes a placeholder `llama` (SentencePiece-style) vocabulary of n_vocab tokens: <unk>, <s>,
 * </s>, byte tokens <0x00>..<0xFF>, then "<tok_N>"; BOS 1, EOS 2, add_bos true. */
mn_status mn_tool_placeholder_vocab(struct mn_gguf_writer *w, int32_t n_vocab, mn_error *err);

/* Converts `rows` rows of ne0 elements from src_type to dst_type (via f32), split across all cores. */
mn_status mn_tool_convert_rows(const void *src, int32_t src_type, void *dst, int32_t dst_type, int64_t ne0,
                               int64_t rows, mn_error *err);

/* The type a row of ne0 elements gets when `type` does not fit its block size (the standard
 * tools' rule, limited to the types minnow writes): K-quants fall back to a 32-block type of
 * similar size (q4_K -> q4_0, q5_K/q6_K -> q8_0), and a 32-block type to f16. Returns `type`
 * when it fits. */
int32_t mn_tool_type_for_row(int32_t type, int64_t ne0);

/* Makes a random-weight model with a real architecture's exact shapes (see `minnow synth --help`).
 * shape: "stories15m", "smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b", "llama3.2-1b".
 * vocab_from: a GGUF whose tokenizer.* metadata is copied (NULL: placeholder vocabulary of
 * vocab_size tokens, or the real model's size when vocab_size <= 0). */
mn_status mn_synth_model(const char *shape, int32_t type, const char *vocab_from, int32_t vocab_size,
                         uint64_t seed, const char *out_path, mn_progress_fn progress, void *progress_user,
                         void (*log)(const char *msg), mn_error *err);
/* Requantizes a model: type_name is a type ("q8_0", "q4_0", "q4_K", "q6_K"...) or the mix "q4_k_m".
 * keep_output_f16 keeps the classifier (or the tied embedding) at F16. */
mn_status mn_quantize_model(const char *in_path, const char *out_path, const char *type_name, int keep_output_f16,
                            mn_progress_fn progress, void *progress_user, void (*log)(const char *msg),
                            mn_error *err);

/* Comma-separated shape names. */
const char *mn_synth_shapes(void);

#endif
