/*
 * convert_llama2c.c: llama2.c checkpoint -> llama GGUF.
 *
 * Checkpoint layout (little-endian):
 *   OFFSET  SIZE            MEANING
 *   0       7 x int32       dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *                           (vocab_size > 0: classifier shares the embedding; < 0: own classifier)
 *   28      float32 arrays  token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim],
 *                           wk[L][kv_dim][dim], wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim],
 *                           w1[L][hidden][dim], w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
 *                           rope tables 2 x seq_len*head_size/2 (unused), then wcls[vocab][dim] if unshared.
 * llama2.c rotates adjacent pairs (2i, 2i+1), which is what llama GGUF files expect, so Q/K are
 * written unpermuted. Every header field is range-checked and the file size must cover every array
 * before any is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "kernels/types.h"
#include "tools.h"

typedef struct l2c_config {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    int shared;
} l2c_config;

static mn_status check_config(const int32_t h[7], l2c_config *c, mn_error *err) {
    c->dim = h[0];
    c->hidden = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared = h[5] > 0;
    MN_RETURN_IF(h[5] == 0 || h[5] == INT32_MIN, err, MN_EBADFILE, "vocab_size %d is invalid", h[5]);
    c->vocab = h[5] > 0 ? h[5] : -h[5];
    c->seq_len = h[6];
    MN_RETURN_IF(c->dim <= 0 || c->dim > 65536, err, MN_EBADFILE, "dim %d out of range [1, 65536]", c->dim);
    MN_RETURN_IF(c->hidden <= 0 || c->hidden > 1 << 20, err, MN_EBADFILE, "hidden_dim %d out of range", c->hidden);
    MN_RETURN_IF(c->n_layers <= 0 || c->n_layers > 512, err, MN_EBADFILE, "n_layers %d out of range [1, 512]",
                 c->n_layers);
    MN_RETURN_IF(c->n_heads <= 0 || c->dim % c->n_heads != 0, err, MN_EBADFILE,
                 "n_heads %d must be positive and divide dim %d", c->n_heads, c->dim);
    MN_RETURN_IF(c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0, err, MN_EBADFILE,
                 "n_kv_heads %d must be positive and divide n_heads %d", c->n_kv_heads, c->n_heads);
    MN_RETURN_IF((c->dim / c->n_heads) % 2 != 0, err, MN_EBADFILE, "head size %d must be even",
                 c->dim / c->n_heads);
    MN_RETURN_IF(c->vocab > 1 << 24, err, MN_EBADFILE, "vocab_size %d out of range", c->vocab);
    MN_RETURN_IF(c->seq_len <= 0 || c->seq_len > 1 << 24, err, MN_EBADFILE, "seq_len %d out of range", c->seq_len);
    return MN_OK;
}

/* One array of the checkpoint: where it starts (in floats) and its 2-D shape. */
typedef struct l2c_array {
    uint64_t at;     /* float offset after the header */
    int64_t rows, cols;
} l2c_array;

typedef struct convert_state {
    mn_gguf_writer *w;
    const float *weights; /* after the header */
    int32_t type;
    void **bufs;          /* converted tensors kept alive until the write */
    int n_bufs;
    void (*log)(const char *msg);
} convert_state;

/* Adds array a as a tensor [cols, rows] (cols innermost), converted to `type` when it is a matrix. */
static mn_status add(convert_state *cs, const char *name, const l2c_array *a, int matrix, mn_error *err) {
    int64_t ne[2] = {a->cols, a->rows};
    const float *src = cs->weights + a->at;
    int32_t type = matrix ? mn_tool_type_for_row(cs->type, a->cols) : MN_TYPE_F32;
    const mn_type_traits *tt = mn_type_get(type);
    if (matrix && type != cs->type && cs->log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: row length %lld does not fit %s blocks; using %s", name,
                 (long long)a->cols, mn_type_get(cs->type)->name, tt->name);
        cs->log(msg);
    }
    const void *data = src;
    if (type != MN_TYPE_F32) {
        uint64_t bytes = mn_type_row_size(type, a->cols) * (uint64_t)a->rows;
        void *buf = malloc(bytes ? bytes : 1);
        MN_RETURN_IF(!buf, err, MN_ENOMEM, "out of memory converting %s", name);
        cs->bufs[cs->n_bufs++] = buf;
        MN_FORWARD(mn_tool_convert_rows(src, MN_TYPE_F32, buf, type, a->cols, a->rows, err));
        data = buf;
    }
    mn_status s = mn_gguf_add_tensor(cs->w, name, type, a->rows == 1 ? 1 : 2, ne, data);
    MN_RETURN_IF(s != MN_OK, err, s, "cannot add tensor %s", name);
    return MN_OK;
}

static int file_type_for(int32_t type) {
    switch (type) {
    case MN_TYPE_F16: return 1;
    case MN_TYPE_Q8_0: return 7;
    default: return 0;
    }
}

mn_status mn_convert_llama2c(const char *in_path, const char *out_path, int32_t type,
                             mn_progress_fn progress, void *progress_user, void (*log)(const char *msg),
                             mn_error *err) {
    MN_RETURN_IF(type != MN_TYPE_F32 && type != MN_TYPE_F16 && type != MN_TYPE_Q8_0, err, MN_EINVAL,
                 "output type must be f32, f16 or q8_0");
    int fd = open(in_path, O_RDONLY);
    MN_RETURN_IF(fd < 0, err, MN_EIO, "%s: %s", in_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mn_error_set(err, MN_EIO, "%s: not a regular file", in_path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 28) {
        close(fd);
        return mn_error_set(err, MN_EBADFILE, "%s: %llu bytes is too short for a llama2.c header (28)", in_path,
                            (unsigned long long)size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    MN_RETURN_IF(map == MAP_FAILED, err, MN_EIO, "%s: mmap failed: %s", in_path, strerror(errno));

    mn_gguf_writer *w = NULL;
    convert_state cs = {0};
    l2c_config c = {0};
    int32_t h[7];
    memcpy(h, map, sizeof h);
    mn_status s = check_config(h, &c, err);
    if (s != MN_OK) goto done;

    /* array offsets, in floats; the values are bounded above so none of this overflows uint64 */
    uint64_t dim = (uint64_t)c.dim, hid = (uint64_t)c.hidden, L = (uint64_t)c.n_layers;
    uint64_t head = dim / (uint64_t)c.n_heads, kv = head * (uint64_t)c.n_kv_heads;
    uint64_t at = 0;
    l2c_array emb = {at, c.vocab, c.dim};
    at += (uint64_t)c.vocab * dim;
    l2c_array rms_att = {at, c.n_layers, c.dim};
    at += L * dim;
    l2c_array wq = {at, 0, 0};
    at += L * dim * dim;
    l2c_array wk = {at, 0, 0};
    at += L * kv * dim;
    l2c_array wv = {at, 0, 0};
    at += L * kv * dim;
    l2c_array wo = {at, 0, 0};
    at += L * dim * dim;
    l2c_array rms_ffn = {at, 0, 0};
    at += L * dim;
    l2c_array w1 = {at, 0, 0};
    at += L * hid * dim;
    l2c_array w2 = {at, 0, 0};
    at += L * dim * hid;
    l2c_array w3 = {at, 0, 0};
    at += L * hid * dim;
    l2c_array rms_final = {at, 1, c.dim};
    at += dim;
    at += (uint64_t)c.seq_len * head; /* rope tables: 2 x seq_len * head/2 */
    l2c_array wcls = {at, c.vocab, c.dim};
    if (!c.shared) at += (uint64_t)c.vocab * dim;
    (void)rms_att;
    if (at > (size - 28) / 4) {
        s = mn_error_set(err, MN_EBADFILE, "%s: header promises %llu bytes of weights but the file has %llu",
                         in_path, (unsigned long long)(at * 4), (unsigned long long)(size - 28));
        goto done;
    }

    cs.weights = (const float *)((const char *)map + 28);
    cs.type = type;
    cs.log = log;
    cs.bufs = calloc(16 + 9 * L, sizeof(void *));
    if (!cs.bufs || (s = mn_gguf_writer_create(&w, err)) != MN_OK) {
        if (!cs.bufs) s = mn_error_set(err, MN_ENOMEM, "out of memory");
        goto done;
    }
    cs.w = w;
    const char *base = strrchr(in_path, '/');
    base = base ? base + 1 : in_path;
    if ((s = mn_gguf_set_str(w, "general.architecture", "llama")) != MN_OK ||
        (s = mn_gguf_set_str(w, "general.name", base)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "general.file_type", (uint32_t)file_type_for(type))) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.context_length", (uint32_t)c.seq_len)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.embedding_length", (uint32_t)c.dim)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.block_count", (uint32_t)c.n_layers)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c.hidden)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c.n_heads)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)head)) != MN_OK ||
        (s = mn_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f)) != MN_OK ||
        (s = mn_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)) != MN_OK) {
        s = mn_error_set(err, s, "cannot set metadata");
        goto done;
    }
    if ((s = mn_tool_placeholder_vocab(w, c.vocab, err)) != MN_OK) goto done;

    if ((s = add(&cs, "token_embd.weight", &emb, 1, err)) != MN_OK) goto done;
    for (int l = 0; l < c.n_layers; l++) {
        char name[64];
        uint64_t ul = (uint64_t)l;
        struct {
            const char *fmt;
            l2c_array a;
            int matrix;
        } parts[] = {
            {"blk.%d.attn_norm.weight", {rms_att.at + ul * dim, 1, c.dim}, 0},
            {"blk.%d.attn_q.weight", {wq.at + ul * dim * dim, c.dim, c.dim}, 1},
            {"blk.%d.attn_k.weight", {wk.at + ul * kv * dim, (int64_t)kv, c.dim}, 1},
            {"blk.%d.attn_v.weight", {wv.at + ul * kv * dim, (int64_t)kv, c.dim}, 1},
            {"blk.%d.attn_output.weight", {wo.at + ul * dim * dim, c.dim, c.dim}, 1},
            {"blk.%d.ffn_norm.weight", {rms_ffn.at + ul * dim, 1, c.dim}, 0},
            {"blk.%d.ffn_gate.weight", {w1.at + ul * hid * dim, c.hidden, c.dim}, 1},
            {"blk.%d.ffn_down.weight", {w2.at + ul * dim * hid, c.dim, c.hidden}, 1},
            {"blk.%d.ffn_up.weight", {w3.at + ul * hid * dim, c.hidden, c.dim}, 1},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            snprintf(name, sizeof name, parts[i].fmt, l);
            if ((s = add(&cs, name, &parts[i].a, parts[i].matrix, err)) != MN_OK) goto done;
        }
        if (progress) progress(progress_user, (uint64_t)l + 1, (uint64_t)c.n_layers);
    }
    if ((s = add(&cs, "output_norm.weight", &rms_final, 0, err)) != MN_OK) goto done;
    if (!c.shared && (s = add(&cs, "output.weight", &wcls, 1, err)) != MN_OK) goto done;
    s = mn_gguf_writer_write(w, out_path, err);
done:
    mn_gguf_writer_free(w);
    if (cs.bufs)
        for (int i = 0; i < cs.n_bufs; i++) free(cs.bufs[i]);
    free(cs.bufs);
    munmap(map, size);
    return s;
}
