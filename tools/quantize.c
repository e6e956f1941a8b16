/*
 * quantize.c: requantize a GGUF model (F32 / F16 / BF16 / Q8_0 sources) to another weight type.
 *
 * Every metadata key is copied (general.file_type updated); 1-D tensors (norms, biases, rope
 * factors) stay as they are; each 2-D weight is dequantized row by row to f32 and quantized with
 * the target type's reference quantizer. "q4_k_m" is the common mix: Q4_K everywhere except the
 * classifier (Q6_K) and attn_v / ffn_down of the first and last eighth of the layers and every
 * third layer between (Q6_K). A tensor whose rows do not fit the target's block size falls back
 * to the nearest type that fits (mn_tool_type_for_row) and is reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "kernels/types.h"
#include "tools.h"

/* the layers whose attn_v / ffn_down get more bits in the *_M mixes */
static int more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) return -1;
    return l;
}

static int32_t pick_type(const mn_gguf *g, const mn_gguf_tensor *t, int32_t base, int mix_m, int keep_output_f16,
                         int n_layer) {
    int is_output = !strcmp(t->name, "output.weight") ||
                    (!strcmp(t->name, "token_embd.weight") && !mn_gguf_find_tensor(g, "output.weight"));
    if (is_output && keep_output_f16) return MN_TYPE_F16;
    if (!mix_m) return base;
    if (is_output) return MN_TYPE_Q6_K;
    int l = layer_of(t->name);
    if (l >= 0 && (strstr(t->name, ".attn_v.") || strstr(t->name, ".ffn_down.")) && more_bits(l, n_layer))
        return MN_TYPE_Q6_K;
    return base;
}

static int file_type_of(int32_t type, int mix_m) {
    if (mix_m) return 15; /* MOSTLY_Q4_K_M */
    switch (type) {
    case MN_TYPE_F16: return 1;
    case MN_TYPE_Q4_0: return 2;
    case MN_TYPE_Q8_0: return 7;
    case MN_TYPE_Q4_K: return 14; /* Q4_K_S */
    case MN_TYPE_Q5_K: return 16; /* Q5_K_S */
    case MN_TYPE_Q6_K: return 18;
    case MN_TYPE_BF16: return 32;
    default: return 0;
    }
}

mn_status mn_quantize_model(const char *in_path, const char *out_path, const char *type_name, int keep_output_f16,
                            mn_progress_fn progress, void *progress_user, void (*log)(const char *msg),
                            mn_error *err) {
    int mix_m = !strcmp(type_name, "q4_k_m") || !strcmp(type_name, "Q4_K_M");
    int32_t base = mix_m ? MN_TYPE_Q4_K : mn_type_from_name(type_name);
    const mn_type_traits *bt = base >= 0 ? mn_type_get(base) : NULL;
    MN_RETURN_IF(!bt || !bt->from_f32, err, MN_EINVAL, "cannot quantize to '%s'", type_name);
    if (mix_m) {
        const mn_type_traits *q6 = mn_type_get(MN_TYPE_Q6_K);
        MN_RETURN_IF(!q6 || !q6->from_f32, err, MN_EUNSUPPORTED, "q4_k_m needs q6_K, which minnow cannot write yet");
    }
    mn_gguf *g = NULL;
    mn_gguf_writer *w = NULL;
    void **bufs = NULL;
    int n_bufs = 0;
    MN_FORWARD(mn_gguf_open(in_path, &g, err));
    mn_status s = mn_gguf_writer_create(&w, err);
    if (s != MN_OK) goto done;

    int n_layer = 0;
    mn_gguf_str arch;
    if (mn_gguf_get_str(g, "general.architecture", &arch, NULL) == MN_OK) {
        char key[96];
        snprintf(key, sizeof key, "%.*s.block_count", (int)(arch.len > 60 ? 60 : arch.len), arch.ptr);
        uint32_t v;
        if (mn_gguf_get_u32(g, key, &v, NULL) == MN_OK && v < 100000) n_layer = (int)v;
    }
    for (int64_t i = 0; i < mn_gguf_n_kv(g); i++) {
        const char *key = mn_gguf_key_at(g, i);
        if (!strcmp(key, "general.file_type") || !strcmp(key, "general.alignment")) continue;
        if ((s = mn_gguf_set_value(w, key, mn_gguf_value_at(g, i))) != MN_OK) {
            s = mn_error_set(err, s, "cannot copy metadata key %s", key);
            goto done;
        }
    }
    if ((s = mn_gguf_set_u32(w, "general.file_type", (uint32_t)file_type_of(base, mix_m))) != MN_OK) goto done;

    int64_t n_t = mn_gguf_n_tensors(g); /* bounded by the file size */
    bufs = calloc((size_t)n_t + 1, sizeof *bufs);
    if (!bufs) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const mn_type_traits *src = mn_type_get(t->type);
        int32_t type = t->type;
        if (t->n_dims >= 2) {
            int32_t want = pick_type(g, t, base, mix_m, keep_output_f16, n_layer);
            type = mn_tool_type_for_row(want, t->ne[0]);
            if (type != want && log) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s: rows of %lld do not fit %s blocks; using %s", t->name,
                         (long long)t->ne[0], mn_type_get(want)->name, mn_type_get(type)->name);
                log(msg);
            }
        }
        const void *data = t->data;
        if (type != t->type) {
            if (!src || !src->to_f32) {
                s = mn_error_set(err, MN_EUNSUPPORTED, "tensor %s: cannot read type %s", t->name,
                                 src ? src->name : "?");
                goto done;
            }
            uint64_t out_row = mn_type_row_size(type, t->ne[0]), bytes;
            if (mn_mul_overflow_u64(out_row, (uint64_t)rows, &bytes) || bytes > ((uint64_t)1 << 40)) {
                s = mn_error_set(err, MN_ETOOBIG, "tensor %s is too large", t->name);
                goto done;
            }
            bufs[n_bufs] = malloc((size_t)bytes + 1);
            if (!bufs[n_bufs]) {
                s = mn_error_set(err, MN_ENOMEM, "out of memory for tensor %s", t->name);
                goto done;
            }
            char *dst = bufs[n_bufs++];
            if ((s = mn_tool_convert_rows(t->data, t->type, dst, type, t->ne[0], rows, err)) != MN_OK) goto done;
            data = dst;
        }
        if ((s = mn_gguf_add_tensor(w, t->name, type, t->n_dims, t->ne, data)) != MN_OK) {
            s = mn_error_set(err, s, "cannot add tensor %s", t->name);
            goto done;
        }
        if (progress) progress(progress_user, (uint64_t)i + 1, (uint64_t)n_t);
    }
    s = mn_gguf_writer_write(w, out_path, err);
done:
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    mn_gguf_writer_free(w);
    mn_gguf_close(g);
    return s;
}
