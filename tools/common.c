/*
 * common.c: pieces the model tools share: the placeholder vocabulary and the block-size fallback
 * rule for tensor types.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

typedef struct convert_job {
    const char *src;
    char *dst;
    const mn_type_traits *st, *dt;
    uint64_t in_row, out_row;
    int64_t ne0, r0, r1;
    int failed;
} convert_job;

static void *convert_main(void *p) {
    convert_job *j = p;
    float *row = malloc((size_t)j->ne0 * sizeof(float));
    if (!row) {
        j->failed = 1;
        return NULL;
    }
    for (int64_t r = j->r0; r < j->r1; r++) {
        j->st->to_f32(j->src + r * j->in_row, row, j->ne0);
        j->dt->from_f32(row, j->dst + r * j->out_row, j->ne0);
    }
    free(row);
    return NULL;
}

mn_status mn_tool_convert_rows(const void *src, int32_t src_type, void *dst, int32_t dst_type, int64_t ne0,
                               int64_t rows, mn_error *err) {
    const mn_type_traits *st = mn_type_get(src_type), *dt = mn_type_get(dst_type);
    MN_RETURN_IF(!st || !st->to_f32 || !dt || !dt->from_f32, err, MN_EUNSUPPORTED, "cannot convert %s to %s",
                 st ? st->name : "?", dt ? dt->name : "?");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
    if (rows < nth * 4) nth = 1;
    convert_job jobs[64];
    pthread_t th[64];
    int started = 0;
    for (int i = 0; i < nth; i++) {
        jobs[i] = (convert_job){src, dst, st, dt, mn_type_row_size(src_type, ne0), mn_type_row_size(dst_type, ne0), ne0,
                                rows * i / nth, rows * (i + 1) / nth, 0};
        if (i > 0) {
            if (pthread_create(&th[i], NULL, convert_main, &jobs[i]) != 0) {
                convert_main(&jobs[i]); /* no thread: do that share here */
                continue;
            }
            started |= 1 << (i & 31);
        }
    }
    convert_main(&jobs[0]);
    int failed = jobs[0].failed;
    for (int i = 1; i < nth; i++) {
        if (started & (1 << (i & 31))) pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    MN_RETURN_IF(failed, err, MN_ENOMEM, "out of memory converting rows");
    return MN_OK;
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

