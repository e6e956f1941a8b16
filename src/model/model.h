/*
 * model.h: the loaded model (immutable after mn_model_load) and the architecture descriptions.
 *
 * An architecture is data: hyper-parameter keys are read with the "{arch}." prefix, and tensors are
 * bound by a table of (name pattern, where it goes, required?, shape). Adding a llama-like family
 * is a new mn_arch row, not a new forward pass. Weights stay in the mmapped file; only 1-D tensors
 * (norm weights, biases, rope factors) are converted to owned f32 arrays at load.
 */
#ifndef MN_MODEL_MODEL_H
#define MN_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "minnow.h"

#define MN_MAX_LAYERS 512

enum mn_rope_style {
    MN_ROPE_ADJACENT = 0, /* rotate pairs (2i, 2i+1) of each head (llama GGUF: Q/K stored permuted) */
    MN_ROPE_HALVES = 1,   /* rotate pairs (i, i + n_rot/2) (qwen2, "neox" style) */
};

typedef struct mn_arch {
    const char *name;  /* general.architecture value */
    int rope_style;    /* enum mn_rope_style */
    bool qkv_bias;     /* q/k/v projections carry biases (required) */
} mn_arch;

/* A 2-D weight matrix W[n_out][n_in] in the file's type; rows are contiguous. */
typedef struct mn_weight {
    const void *data;
    int32_t type;
    int64_t n_in;      /* ne[0]: row length */
    int64_t n_out;     /* ne[1]: rows */
    uint64_t row_size; /* bytes per row */
} mn_weight;

typedef struct mn_layer {
    float *attn_norm;            /* [n_embd] */
    mn_weight wq, wk, wv, wo;    /* q: [n_embd -> n_head*hd], k/v: [n_embd -> n_head_kv*hd] */
    float *bq, *bk, *bv;         /* optional biases (qwen2) */
    float *ffn_norm;             /* [n_embd] */
    mn_weight w_gate, w_up, w_down;
} mn_layer;

typedef struct mn_hparams {
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_rot;  /* dimensions of each head that RoPE rotates (<= head_dim, even) */
    int32_t n_ff;
    float rope_base;
    float rope_scale; /* linear position scaling factor (1 = none) */
    float norm_eps;
} mn_hparams;

struct mn_model {
    const mn_arch *arch;
    mn_hparams hp;
    mn_gguf *gguf;            /* owns the mapping the weights point into */
    mn_weight tok_embd;       /* [n_vocab][n_embd] */
    mn_weight output;         /* the classifier (== tok_embd when tied) */
    float *output_norm;       /* [n_embd] */
    float *rope_freq_factors; /* [n_rot/2] or NULL (llama3 rope scaling) */
    mn_layer *layers;
    struct mn_tokenizer *tokenizer; /* NULL when the file has no vocabulary */
    char *name;
    const char *type_name;
    int64_t n_params;
    uint64_t weight_bytes;
    uint64_t bytes_per_token; /* matrix bytes streamed per decoded token */
    int64_t flops_per_token;
    float *owned;             /* one block holding all converted 1-D tensors */
    void *weights_copy;       /* MN_WEIGHTS_COPY: anonymous mapping holding the matrices, or NULL */
    size_t weights_copy_size;
};

/* The description of an architecture name, or NULL when unsupported. */
const mn_arch *mn_arch_find(const char *name);
/* Comma-separated list of supported architecture names (for messages). */
const char *mn_arch_names(void);

#endif
