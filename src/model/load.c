/*
 * load.c: mn_model_load: GGUF file -> validated hyper-parameters + bound weight tensors.
 *
 * Order: open + validate the container (src/gguf), find the architecture row, read and range-check
 * the hyper-parameters (every failure names the key), then bind tensors from one table of name
 * patterns with expected shapes. Matrix weights are left in the mapping; 1-D tensors are converted
 * to f32 into one owned block. Nothing is trusted before it is checked: a tensor of the wrong shape
 * or an unsupported type is an error naming the tensor.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/status.h"
#include "kernels/types.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static const mn_arch ARCHS[] = {
    {"llama", MN_ROPE_ADJACENT, false},
    {"qwen2", MN_ROPE_HALVES, true},
};

const mn_arch *mn_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i].name, name)) return &ARCHS[i];
    return NULL;
}

const char *mn_arch_names(void) { return "llama, qwen2"; }

mn_model_params mn_model_default_params(void) {
    mn_model_params p = {0};
    return p;
}

/* ---------------------------------------------------------------- hyper-parameters ----------- */

/* Reads "{arch}.{suffix}" as u32 into *out; missing + required -> error; missing -> keeps *out. */
static mn_status get_hparam_u32(const mn_gguf *g, const char *arch, const char *suffix, bool required,
                                int32_t lo, int32_t hi, int32_t *out, mn_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    mn_status s = mn_gguf_get_u32(g, key, &v, err);
    if (s == MN_ENOTFOUND) {
        MN_RETURN_IF(required, err, MN_EBADFILE, "missing hyper-parameter '%s'", key);
        return MN_OK;
    }
    MN_FORWARD(s);
    MN_RETURN_IF((int64_t)v < lo || (int64_t)v > hi, err, MN_EBADFILE,
                 "hyper-parameter '%s' = %u is out of range [%d, %d]", key, v, lo, hi);
    *out = (int32_t)v;
    return MN_OK;
}

static mn_status get_hparam_f32(const mn_gguf *g, const char *arch, const char *suffix, float lo,
                                float hi, float *out, mn_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    float v;
    mn_status s = mn_gguf_get_f32(g, key, &v, err);
    if (s == MN_ENOTFOUND) return MN_OK;
    MN_FORWARD(s);
    MN_RETURN_IF(!(v >= lo && v <= hi), err, MN_EBADFILE,
                 "hyper-parameter '%s' = %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return MN_OK;
}

static mn_status read_hparams(const mn_gguf *g, const char *arch, mn_hparams *hp, mn_error *err) {
    memset(hp, 0, sizeof *hp);
    hp->rope_base = 10000.0f;
    hp->rope_scale = 1.0f;
    hp->norm_eps = 1e-5f;
    hp->n_ctx_train = 2048;
    MN_FORWARD(get_hparam_u32(g, arch, "context_length", false, 1, 1 << 24, &hp->n_ctx_train, err));
    MN_FORWARD(get_hparam_u32(g, arch, "embedding_length", true, 1, 1 << 16, &hp->n_embd, err));
    MN_FORWARD(get_hparam_u32(g, arch, "block_count", true, 1, MN_MAX_LAYERS, &hp->n_layer, err));
    MN_FORWARD(get_hparam_u32(g, arch, "feed_forward_length", true, 1, 1 << 20, &hp->n_ff, err));
    MN_FORWARD(get_hparam_u32(g, arch, "attention.head_count", true, 1, 1 << 12, &hp->n_head, err));
    hp->n_head_kv = hp->n_head;
    MN_FORWARD(get_hparam_u32(g, arch, "attention.head_count_kv", false, 1, 1 << 12, &hp->n_head_kv, err));
    MN_RETURN_IF(hp->n_embd % hp->n_head != 0, err, MN_EBADFILE,
                 "%s.embedding_length %d is not a multiple of %s.attention.head_count %d", arch,
                 hp->n_embd, arch, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    MN_FORWARD(get_hparam_u32(g, arch, "attention.key_length", false, 1, 1 << 12, &hp->head_dim, err));
    int32_t v_len = hp->head_dim;
    MN_FORWARD(get_hparam_u32(g, arch, "attention.value_length", false, 1, 1 << 12, &v_len, err));
    MN_RETURN_IF(v_len != hp->head_dim, err, MN_EUNSUPPORTED,
                 "%s.attention.value_length %d differs from key_length %d", arch, v_len, hp->head_dim);
    MN_RETURN_IF(hp->n_head % hp->n_head_kv != 0, err, MN_EBADFILE,
                 "%s.attention.head_count %d is not a multiple of head_count_kv %d", arch, hp->n_head,
                 hp->n_head_kv);
    hp->n_rot = hp->head_dim;
    MN_FORWARD(get_hparam_u32(g, arch, "rope.dimension_count", false, 2, 1 << 12, &hp->n_rot, err));
    MN_RETURN_IF(hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0, err, MN_EBADFILE,
                 "%s.rope.dimension_count %d must be even and <= head dimension %d", arch, hp->n_rot,
                 hp->head_dim);
    MN_FORWARD(get_hparam_f32(g, arch, "rope.freq_base", 1.0f, 1e12f, &hp->rope_base, err));
    MN_FORWARD(get_hparam_f32(g, arch, "attention.layer_norm_rms_epsilon", 0.0f, 1.0f, &hp->norm_eps, err));

    /* rope scaling: "linear" scales positions; "llama3" comes as a rope_freqs tensor; "none" */
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    mn_gguf_str st;
    if (mn_gguf_get_str(g, key, &st, NULL) == MN_OK) {
        if (st.len == 6 && !memcmp(st.ptr, "linear", 6)) {
            float factor = 1.0f;
            MN_FORWARD(get_hparam_f32(g, arch, "rope.scaling.factor", 1e-3f, 1e6f, &factor, err));
            hp->rope_scale = 1.0f / factor;
        } else if (!(st.len == 4 && !memcmp(st.ptr, "none", 4)) &&
                   !(st.len == 6 && !memcmp(st.ptr, "llama3", 6))) {
            return mn_error_set(err, MN_EUNSUPPORTED, "rope scaling type '%.*s' is not supported",
                                (int)(st.len > 32 ? 32 : st.len), st.ptr);
        }
    }
    return MN_OK;
}

/* ---------------------------------------------------------------- tensor binding ------------- */

enum dim_ref { D_ONE, D_EMBD, D_Q, D_KV, D_FF, D_VOCAB, D_ROT2 };

static int64_t dim_value(const mn_hparams *hp, int ref) {
    switch (ref) {
    case D_EMBD: return hp->n_embd;
    case D_Q: return (int64_t)hp->n_head * hp->head_dim;
    case D_KV: return (int64_t)hp->n_head_kv * hp->head_dim;
    case D_FF: return hp->n_ff;
    case D_VOCAB: return hp->n_vocab;
    case D_ROT2: return hp->n_rot / 2;
    default: return 1;
    }
}

enum bind_kind { B_MATRIX, B_VECTOR };
enum bind_need { REQUIRED, OPTIONAL, BIAS /* required when the arch has qkv biases */ };

typedef struct binding {
    const char *pattern; /* "blk.%d.attn_q.weight" */
    int kind;
    int need;
    int ne0, ne1;        /* enum dim_ref */
    size_t offset;       /* into mn_layer */
} binding;

#define L(field) offsetof(mn_layer, field)
static const binding LAYER_BINDINGS[] = {
    {"blk.%d.attn_norm.weight", B_VECTOR, REQUIRED, D_EMBD, D_ONE, L(attn_norm)},
    {"blk.%d.attn_q.weight", B_MATRIX, REQUIRED, D_EMBD, D_Q, L(wq)},
    {"blk.%d.attn_k.weight", B_MATRIX, REQUIRED, D_EMBD, D_KV, L(wk)},
    {"blk.%d.attn_v.weight", B_MATRIX, REQUIRED, D_EMBD, D_KV, L(wv)},
    {"blk.%d.attn_output.weight", B_MATRIX, REQUIRED, D_Q, D_EMBD, L(wo)},
    {"blk.%d.attn_q.bias", B_VECTOR, BIAS, D_Q, D_ONE, L(bq)},
    {"blk.%d.attn_k.bias", B_VECTOR, BIAS, D_KV, D_ONE, L(bk)},
    {"blk.%d.attn_v.bias", B_VECTOR, BIAS, D_KV, D_ONE, L(bv)},
    {"blk.%d.ffn_norm.weight", B_VECTOR, REQUIRED, D_EMBD, D_ONE, L(ffn_norm)},
    {"blk.%d.ffn_gate.weight", B_MATRIX, REQUIRED, D_EMBD, D_FF, L(w_gate)},
    {"blk.%d.ffn_up.weight", B_MATRIX, REQUIRED, D_EMBD, D_FF, L(w_up)},
    {"blk.%d.ffn_down.weight", B_MATRIX, REQUIRED, D_FF, D_EMBD, L(w_down)},
};
#undef L

static mn_status check_shape(const mn_gguf_tensor *t, const mn_hparams *hp, int ne0, int ne1,
                             mn_error *err) {
    int64_t want0 = dim_value(hp, ne0), want1 = dim_value(hp, ne1);
    bool ok = t->ne[0] == want0 && t->ne[1] == want1 && t->ne[2] == 1 && t->ne[3] == 1;
    MN_RETURN_IF(!ok, err, MN_EBADFILE,
                 "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", t->name,
                 (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                 (long long)want0, (long long)want1);
    return MN_OK;
}

static mn_status bind_matrix(const mn_gguf_tensor *t, const mn_hparams *hp, int ne0, int ne1,
                             mn_weight *w, mn_error *err) {
    MN_FORWARD(check_shape(t, hp, ne0, ne1, err));
    const mn_type_traits *tt = mn_type_get(t->type);
    MN_RETURN_IF(!tt || !tt->vec_dot || !tt->to_f32, err, MN_EUNSUPPORTED,
                 "tensor '%s' has type %s, which minnow cannot compute with yet", t->name,
                 tt ? tt->name : "unknown");
    /* plain-element types are read as float/uint16 arrays: their data must be element-aligned
     * (a file with general.alignment 1 could place them anywhere) */
    MN_RETURN_IF(!tt->is_quant && (uintptr_t)t->data % (uintptr_t)tt->type_size != 0, err, MN_EBADFILE,
                 "tensor '%s' (%s) is not aligned to %d bytes in the file", t->name, tt->name, tt->type_size);
    w->data = t->data;
    w->type = t->type;
    w->n_in = t->ne[0];
    w->n_out = t->ne[1];
    w->row_size = mn_type_row_size(t->type, t->ne[0]);
    return MN_OK;
}

/* Converts a 1-D tensor to f32 into dst (n floats). */
static mn_status load_vector(const mn_gguf_tensor *t, const mn_hparams *hp, int ne0, float *dst,
                             mn_error *err) {
    MN_FORWARD(check_shape(t, hp, ne0, D_ONE, err));
    const mn_type_traits *tt = mn_type_get(t->type);
    MN_RETURN_IF(!tt || !tt->to_f32, err, MN_EUNSUPPORTED,
                 "tensor '%s' has type %s, which minnow cannot read", t->name,
                 tt ? tt->name : "unknown");
    MN_RETURN_IF(t->ne[0] % tt->block_size != 0, err, MN_EBADFILE, "tensor '%s': bad length",
                 t->name);
    MN_RETURN_IF(!tt->is_quant && (uintptr_t)t->data % (uintptr_t)tt->type_size != 0, err, MN_EBADFILE,
                 "tensor '%s' (%s) is not aligned to %d bytes in the file", t->name, tt->name, tt->type_size);
    tt->to_f32(t->data, dst, t->ne[0]);
    return MN_OK;
}

static const char *dominant_type(const mn_model *m) {
    /* the type holding most weight bytes among the layer matrices */
    uint64_t bytes[MN_TYPE_COUNT] = {0};
    for (int l = 0; l < m->hp.n_layer; l++) {
        const mn_weight *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv,
                                 &m->layers[l].wo, &m->layers[l].w_gate, &m->layers[l].w_up,
                                 &m->layers[l].w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            bytes[ws[i]->type] += ws[i]->row_size * (uint64_t)ws[i]->n_out;
    }
    int best = 0;
    for (int t = 1; t < MN_TYPE_COUNT; t++)
        if (bytes[t] > bytes[best]) best = t;
    const mn_type_traits *tt = mn_type_get(best);
    return tt ? tt->name : "?";
}

static mn_status bind_tensors(mn_model *m, mn_error *err) {
    const mn_hparams *hp = &m->hp;
    const mn_gguf *g = m->gguf;

    const mn_gguf_tensor *emb = mn_gguf_find_tensor(g, "token_embd.weight");
    MN_RETURN_IF(!emb, err, MN_EBADFILE, "missing tensor 'token_embd.weight'");
    MN_RETURN_IF(emb->n_dims != 2 || emb->ne[0] != hp->n_embd || emb->ne[1] < 1 ||
                     emb->ne[1] > (1 << 24),
                 err, MN_EBADFILE, "tensor 'token_embd.weight' must be [%d, n_vocab] with n_vocab in [1, 2^24]",
                 hp->n_embd);
    m->hp.n_vocab = (int32_t)emb->ne[1];
    MN_FORWARD(bind_matrix(emb, hp, D_EMBD, D_VOCAB, &m->tok_embd, err));

    const mn_gguf_tensor *out = mn_gguf_find_tensor(g, "output.weight");
    if (out)
        MN_FORWARD(bind_matrix(out, hp, D_EMBD, D_VOCAB, &m->output, err));
    else
        m->output = m->tok_embd; /* tied embeddings */

    /* one owned block for every 1-D tensor: count floats first */
    size_t n_floats = (size_t)hp->n_embd + (size_t)hp->n_rot / 2;
    for (size_t i = 0; i < sizeof LAYER_BINDINGS / sizeof LAYER_BINDINGS[0]; i++)
        if (LAYER_BINDINGS[i].kind == B_VECTOR)
            n_floats += (size_t)dim_value(hp, LAYER_BINDINGS[i].ne0) * (size_t)hp->n_layer;
    m->owned = calloc(n_floats, sizeof(float));
    MN_RETURN_IF(!m->owned, err, MN_ENOMEM, "out of memory (%zu floats of norms)", n_floats);
    float *cursor = m->owned;

    const mn_gguf_tensor *on = mn_gguf_find_tensor(g, "output_norm.weight");
    MN_RETURN_IF(!on, err, MN_EBADFILE, "missing tensor 'output_norm.weight'");
    MN_FORWARD(load_vector(on, hp, D_EMBD, cursor, err));
    m->output_norm = cursor;
    cursor += hp->n_embd;

    const mn_gguf_tensor *rf = mn_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf) {
        MN_FORWARD(load_vector(rf, hp, D_ROT2, cursor, err));
        for (int i = 0; i < hp->n_rot / 2; i++)
            MN_RETURN_IF(!(cursor[i] > 0.0f && cursor[i] < 1e30f), err, MN_EBADFILE,
                         "tensor 'rope_freqs.weight'[%d] = %g is not a positive factor", i, cursor[i]);
        m->rope_freq_factors = cursor;
    }
    cursor += hp->n_rot / 2;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    MN_RETURN_IF(!m->layers, err, MN_ENOMEM, "out of memory");
    for (int l = 0; l < hp->n_layer; l++) {
        for (size_t i = 0; i < sizeof LAYER_BINDINGS / sizeof LAYER_BINDINGS[0]; i++) {
            const binding *b = &LAYER_BINDINGS[i];
            char name[MN_GGUF_MAX_NAME];
            snprintf(name, sizeof name, b->pattern, l);
            const mn_gguf_tensor *t = mn_gguf_find_tensor(g, name);
            bool needed = b->need == REQUIRED || (b->need == BIAS && m->arch->qkv_bias);
            if (!t) {
                MN_RETURN_IF(needed, err, MN_EBADFILE, "missing tensor '%s'", name);
                if (b->kind == B_VECTOR) cursor += dim_value(hp, b->ne0);
                continue;
            }
            char *slot = (char *)&m->layers[l] + b->offset;
            if (b->kind == B_MATRIX) {
                MN_FORWARD(bind_matrix(t, hp, b->ne0, b->ne1, (mn_weight *)slot, err));
            } else {
                MN_FORWARD(load_vector(t, hp, b->ne0, cursor, err));
                *(float **)slot = cursor;
                cursor += dim_value(hp, b->ne0);
            }
        }
    }

    for (int64_t i = 0; i < mn_gguf_n_tensors(g); i++) {
        const mn_gguf_tensor *t = mn_gguf_tensor_at(g, i);
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        m->n_params += n;
        m->weight_bytes += t->size;
    }
    m->type_name = dominant_type(m);
    for (int l = 0; l < hp->n_layer; l++) {
        const mn_weight *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                                 &m->layers[l].w_gate, &m->layers[l].w_up, &m->layers[l].w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            m->bytes_per_token += ws[i]->row_size * (uint64_t)ws[i]->n_out;
            m->flops_per_token += 2 * ws[i]->n_in * ws[i]->n_out;
        }
    }
    m->bytes_per_token += m->output.row_size * (uint64_t)m->output.n_out;
    m->flops_per_token += 2 * m->output.n_in * m->output.n_out;
    return MN_OK;
}

/* ---------------------------------------------------------------- public calls -------------- */

/* Every matrix of the model, each once (the output is tok_embd when tied). */
static int model_matrices(mn_model *m, mn_weight **out) {
    int n = 0;
    out[n++] = &m->tok_embd;
    if (m->output.data != m->tok_embd.data) out[n++] = &m->output;
    for (int l = 0; l < m->hp.n_layer; l++) {
        mn_layer *L = &m->layers[l];
        mn_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) out[n++] = ws[i];
    }
    return n;
}

/* MN_WEIGHTS_COPY: the matrices move into one anonymous mapping, 2 MiB aligned and advised to use
 * transparent huge pages, and the file mapping's pages are dropped (a later read of them would
 * fault them back in from the page cache). The mapping costs no more memory than the mapped file
 * did. When huge pages or the mapping cannot be had, the weights stay where they are. */
static mn_status copy_weights(mn_model *m, mn_error *err) {
    (void)err;
    const size_t n_max = 2 + 7 * (size_t)m->hp.n_layer, HUGE = (size_t)2 << 20;
    mn_weight **ws = malloc(n_max * sizeof *ws);
    if (!ws) return MN_OK; /* an optimisation only */
    const int n = model_matrices(m, ws);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += ((size_t)ws[i]->row_size * (size_t)ws[i]->n_out + 63) & ~(size_t)63;
    total = (total + HUGE - 1) & ~(HUGE - 1);
    void *map = mmap(NULL, total + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        free(ws);
        return MN_OK;
    }
    /* trim to a 2 MiB aligned start so that huge pages can back it */
    uint8_t *base = (uint8_t *)(((uintptr_t)map + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (base > (uint8_t *)map) munmap(map, (size_t)(base - (uint8_t *)map));
    munmap(base + total, (size_t)((uint8_t *)map + total + HUGE - (base + total)));
    (void)madvise(base, total, MADV_HUGEPAGE);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const size_t bytes = (size_t)ws[i]->row_size * (size_t)ws[i]->n_out;
        const void *src = ws[i]->data;
        memcpy(base + off, src, bytes);
        if (ws[i] == &m->tok_embd && m->output.data == src) m->output.data = base + off;
        ws[i]->data = base + off;
        off += (bytes + 63) & ~(size_t)63;
    }
    mn_gguf_drop_data(m->gguf);
    mprotect(base, total, PROT_READ);
    m->weights_copy = base;
    m->weights_copy_size = total;
    free(ws);
    return MN_OK;
}

void mn_model_free(mn_model *m) {
    if (!m) return;
    mn_tokenizer_free(m->tokenizer);
    free(m->layers);
    free(m->owned);
    free(m->name);
    mn_gguf_close(m->gguf);
    if (m->weights_copy) munmap(m->weights_copy, m->weights_copy_size);
    free(m);
}

mn_status mn_model_load(const char *path, const mn_model_params *params, mn_model **out,
                        mn_error *err) {
    MN_RETURN_IF(!out, err, MN_EINVAL, "out is NULL");
    const mn_model_params p = params ? *params : mn_model_default_params();
    MN_RETURN_IF(p.mode != MN_WEIGHTS_COPY && p.mode != MN_WEIGHTS_MMAP, err, MN_EINVAL, "unknown weights mode %d",
                 (int)p.mode);
    *out = NULL;
    MN_RETURN_IF(!path, err, MN_EINVAL, "path is NULL");
    mn_model *m = calloc(1, sizeof *m);
    MN_RETURN_IF(!m, err, MN_ENOMEM, "out of memory");
    mn_status s = mn_gguf_open(path, &m->gguf, err);
    if (s != MN_OK) goto fail;

    mn_gguf_str arch;
    s = mn_gguf_get_str(m->gguf, "general.architecture", &arch, err);
    if (s == MN_ENOTFOUND) s = mn_error_set(err, MN_EBADFILE, "missing key 'general.architecture'");
    if (s != MN_OK) goto fail;
    char arch_name[64];
    snprintf(arch_name, sizeof arch_name, "%.*s", (int)(arch.len > 63 ? 63 : arch.len), arch.ptr);
    m->arch = mn_arch_find(arch_name);
    if (!m->arch) {
        s = mn_error_set(err, MN_EUNSUPPORTED, "architecture '%s' is not supported (supported: %s)",
                         arch_name, mn_arch_names());
        goto fail;
    }
    if ((s = read_hparams(m->gguf, m->arch->name, &m->hp, err)) != MN_OK) goto fail;
    if ((s = bind_tensors(m, err)) != MN_OK) goto fail;
    if (p.mode == MN_WEIGHTS_COPY && (s = copy_weights(m, err)) != MN_OK) goto fail;

    mn_gguf_str name = {"", 0};
    (void)mn_gguf_get_str(m->gguf, "general.name", &name, NULL);
    m->name = strndup(name.ptr, name.len > 256 ? 256 : name.len);
    if (!m->name) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory");
        goto fail;
    }

    s = mn_tokenizer_from_gguf(m->gguf, &m->tokenizer, err);
    if (s == MN_ENOTFOUND) {
        m->tokenizer = NULL;
        s = MN_OK;
    } else if (s != MN_OK) {
        goto fail;
    }
    if (m->tokenizer && mn_tokenizer_n_vocab(m->tokenizer) != m->hp.n_vocab) {
        s = mn_error_set(err, MN_EBADFILE, "vocabulary has %d tokens but token_embd.weight has %d rows",
                         mn_tokenizer_n_vocab(m->tokenizer), m->hp.n_vocab);
        goto fail;
    }
    *out = m;
    return MN_OK;
fail:
    if (err) mn_error_prefix(err, "%s", path);
    mn_model_free(m);
    return s;
}

void mn_model_get_info(const mn_model *m, mn_model_info *out) {
    memset(out, 0, sizeof *out);
    out->arch = m->arch->name;
    out->name = m->name;
    out->n_vocab = m->hp.n_vocab;
    out->n_ctx_train = m->hp.n_ctx_train;
    out->n_embd = m->hp.n_embd;
    out->n_layer = m->hp.n_layer;
    out->n_head = m->hp.n_head;
    out->n_head_kv = m->hp.n_head_kv;
    out->n_ff = m->hp.n_ff;
    out->n_params = m->n_params;
    out->weight_bytes = m->weight_bytes;
    out->type_name = m->type_name;
    out->bytes_per_token = m->bytes_per_token;
    out->flops_per_token = m->flops_per_token;
    out->flops_classifier = 2 * m->output.n_in * m->output.n_out;
}

const struct mn_tokenizer *mn_model_tokenizer(const mn_model *m) { return m->tokenizer; }
