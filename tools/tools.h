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

#endif
