/*
 * common.c: pieces the model tools share: the placeholder vocabulary and the block-size fallback
 * rule for tensor types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "kernels/types.h"
#include "tools.h"

int32_t mn_tool_type_for_row(int32_t type, int64_t ne0) {
    for (int guard = 0; guard < 4; guard++) {
        const mn_type_traits *tt = mn_type_get(type);
        if (!tt || ne0 % tt->block_size == 0) return type;
        switch (type) {
        case MN_TYPE_Q4_K: type = MN_TYPE_Q4_0; break;
        case MN_TYPE_Q5_K:
        case MN_TYPE_Q6_K: type = MN_TYPE_Q8_0; break;
        default: type = MN_TYPE_F16; break;
        }
    }
    return MN_TYPE_F32;
}

mn_status mn_tool_placeholder_vocab(struct mn_gguf_writer *w, int32_t n_vocab, mn_error *err) {
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    mn_status s = MN_ENOMEM;
    if (!toks || !scores || !types) goto done;
    for (int32_t i = 0; i < n_vocab; i++) {
        char buf[32];
        int32_t type = 1; /* normal */
        if (i == 0) {
            snprintf(buf, sizeof buf, "<unk>");
            type = 2;
        } else if (i == 1 || i == 2) {
            snprintf(buf, sizeof buf, i == 1 ? "<s>" : "</s>");
            type = 3; /* control */
        } else if (i < 3 + 256) {
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
            type = 6; /* byte */
        } else {
            snprintf(buf, sizeof buf, "<tok_%d>", i);
        }
        toks[i] = strdup(buf);
        if (!toks[i]) goto done;
        types[i] = type;
    }
    if ((s = mn_gguf_set_str(w, "tokenizer.ggml.model", "llama")) != MN_OK ||
        (s = mn_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (uint64_t)n_vocab)) != MN_OK ||
        (s = mn_gguf_set_arr_data(w, "tokenizer.ggml.scores", MN_GGUF_FLOAT32, scores, (uint64_t)n_vocab)) != MN_OK ||
        (s = mn_gguf_set_arr_data(w, "tokenizer.ggml.token_type", MN_GGUF_INT32, types, (uint64_t)n_vocab)) != MN_OK)
        goto done;
    if (n_vocab > 2) {
        if ((s = mn_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0)) != MN_OK ||
            (s = mn_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1)) != MN_OK ||
            (s = mn_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2)) != MN_OK ||
            (s = mn_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true)) != MN_OK)
            goto done;
    }
    s = MN_OK;
done:
    if (toks)
        for (int32_t i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    MN_RETURN_IF(s != MN_OK, err, s, "cannot write the placeholder vocabulary");
    return MN_OK;
}

