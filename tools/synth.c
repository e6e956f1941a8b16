/*
 * synth.c: random-weight models with real architectures' exact shapes, for benchmarks and tests.
 *
 * Weights are N(0, 0.02) (biases too), norm weights 1, written with standard GGUF metadata and
 * tensor names, so other GGUF readers load them. The generator is deterministic: tensor i draws
 * from xoshiro256** seeded with splitmix64(seed, i), so the same seed gives the same file whatever
 * the order of work. A vocabulary can be copied from a vocab-only GGUF (all tokenizer.* keys).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "gguf/gguf.h"
#include "kernels/types.h"
#include "tools.h"

typedef struct shape {
    const char *name, *arch;
    int32_t dim, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_base, eps;
    int tied, qkv_bias, llama3_rope;
} shape;

static const shape SHAPES[] = {
    {"stories15m", "llama", 288, 6, 6, 6, 768, 32000, 256, 10000.0f, 1e-5f, 1, 0, 0},
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 100000.0f, 1e-5f, 1, 0, 0},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1, 1, 0},
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f, 0, 0, 0},
    {"llama3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, 1e-5f, 1, 0, 1},
};

const char *mn_synth_shapes(void) { return "stories15m, smollm2-135m, qwen2.5-0.5b, tinyllama-1.1b, llama3.2-1b"; }

/* ---------------------------------------------------------------- random numbers ------------- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* n normal draws N(0, sd) (Box-Muller, both outputs used) */
static void fill_normal(rng *r, float *dst, int64_t n, float sd) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
        double u2 = (double)(rng_next(r) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1)) * sd, th = 6.283185307179586 * u2;
        dst[i] = (float)(rad * cos(th));
        if (i + 1 < n) dst[i + 1] = (float)(rad * sin(th));
    }
}

/* ---------------------------------------------------------------- model writing -------------- */

typedef struct synth {
    mn_gguf_writer *w;
    uint64_t seed;
    uint64_t n_tensors;
    int32_t type;
    void **bufs;
    int n_bufs, cap_bufs;
    float *scratch; /* f32 staging for the largest tensor */
    void (*log)(const char *msg);
    int warned_fallback;
} synth;

static mn_status keep(synth *sy, void *buf, mn_error *err) {
    if (sy->n_bufs == sy->cap_bufs) {
        int cap = sy->cap_bufs ? sy->cap_bufs * 2 : 64;
        void **nb = realloc(sy->bufs, (size_t)cap * sizeof *nb);
        if (!nb) {
            free(buf);
            return mn_error_set(err, MN_ENOMEM, "out of memory");
        }
        sy->bufs = nb;
        sy->cap_bufs = cap;
    }
    sy->bufs[sy->n_bufs++] = buf;
    return MN_OK;
}

/* kind: 0 = random matrix/vector N(0, 0.02) in sy->type (matrices) or f32 (vectors), 1 = ones */
static mn_status add_tensor(synth *sy, const char *name, int64_t ne0, int64_t ne1, int kind,
                            const float *values, mn_error *err) {
    int64_t n = ne0 * ne1;
    int matrix = ne1 > 1;
    int32_t type = matrix ? mn_tool_type_for_row(sy->type, ne0) : MN_TYPE_F32;
    if (matrix && type != sy->type && sy->log) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: row length %lld does not fit %s blocks; using %s", name, (long long)ne0,
                 mn_type_get(sy->type)->name, mn_type_get(type)->name);
        sy->log(msg);
    }
    const mn_type_traits *tt = mn_type_get(type);
    MN_RETURN_IF(!tt || !tt->from_f32, err, MN_EUNSUPPORTED, "minnow cannot write type %s",
                 tt ? tt->name : "?");
    float *src = sy->scratch;
    if (values) {
        memcpy(src, values, (size_t)n * sizeof(float));
    } else if (kind == 1) {
        for (int64_t i = 0; i < n; i++) src[i] = 1.0f;
    } else {
        rng r;
        rng_seed(&r, sy->seed, sy->n_tensors);
        fill_normal(&r, src, n, 0.02f);
    }
    sy->n_tensors++;
    uint64_t row = mn_type_row_size(type, ne0), bytes = row * (uint64_t)ne1;
    void *buf = malloc(bytes ? bytes : 1);
    MN_RETURN_IF(!buf, err, MN_ENOMEM, "out of memory for tensor %s (%llu bytes)", name, (unsigned long long)bytes);
    MN_FORWARD(keep(sy, buf, err));
    MN_FORWARD(mn_tool_convert_rows(src, MN_TYPE_F32, buf, type, ne0, ne1, err));
    int64_t ne[2] = {ne0, ne1};
    mn_status s = mn_gguf_add_tensor(sy->w, name, type, matrix ? 2 : 1, ne, buf);
    MN_RETURN_IF(s != MN_OK, err, s, "cannot add tensor %s", name);
    return MN_OK;
}

/* llama3 rope scaling factors (factor 32, low 1, high 4, original context 8192), as divisors of
 * each rotary frequency, the form GGUF's rope_freqs.weight stores. */
static void llama3_factors(float *out, int n_rot, float base) {
    const double factor = 32.0, lo = 1.0, hi = 4.0, orig = 8192.0;
    const double lo_wl = orig / lo, hi_wl = orig / hi;
    for (int i = 0; i < n_rot / 2; i++) {
        double freq = pow(base, -2.0 * i / n_rot), wl = 2.0 * M_PI / freq;
        double f;
        if (wl < hi_wl) f = 1.0;
        else if (wl > lo_wl) f = factor;
        else {
            double smooth = (orig / wl - lo) / (hi - lo);
            f = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        out[i] = (float)f;
    }
}

static mn_status copy_vocab(mn_gguf_writer *w, const char *path, int32_t *n_vocab, mn_error *err) {
    mn_gguf *g = NULL;
    MN_FORWARD(mn_gguf_open(path, &g, err));
    mn_status s = MN_OK;
    for (int64_t i = 0; i < mn_gguf_n_kv(g) && s == MN_OK; i++) {
        const char *key = mn_gguf_key_at(g, i);
        if (strncmp(key, "tokenizer.", 10) == 0) s = mn_gguf_set_value(w, key, mn_gguf_value_at(g, i));
    }
    const mn_gguf_value *toks = NULL;
    if (s == MN_OK) s = mn_gguf_get_arr(g, "tokenizer.ggml.tokens", MN_GGUF_STRING, &toks, err);
    if (s == MN_ENOTFOUND) s = mn_error_set(err, MN_EBADFILE, "%s has no tokenizer.ggml.tokens", path);
    if (s == MN_OK && (toks->v.arr.n < 1 || toks->v.arr.n > (1u << 24)))
        s = mn_error_set(err, MN_EBADFILE, "%s: vocabulary of %llu tokens is out of range", path,
                         (unsigned long long)toks->v.arr.n);
    if (s == MN_OK) *n_vocab = (int32_t)toks->v.arr.n;
    mn_gguf_close(g);
    return s;
}

static int file_type(int32_t type) {
    switch (type) {
    case MN_TYPE_F32: return 0;
    case MN_TYPE_F16: return 1;
    case MN_TYPE_Q4_0: return 2;
    case MN_TYPE_Q8_0: return 7;
    case MN_TYPE_Q4_K: return 15; /* Q4_K_M */
    case MN_TYPE_Q5_K: return 17;
    case MN_TYPE_Q6_K: return 18;
    case MN_TYPE_BF16: return 32;
    default: return 0;
    }
}

mn_status mn_synth_model(const char *shape_name, int32_t type, const char *vocab_from, int32_t vocab_size,
                         uint64_t seed, const char *out_path, mn_progress_fn progress, void *progress_user,
                         void (*log)(const char *msg), mn_error *err) {
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, shape_name)) sh = &SHAPES[i];
    MN_RETURN_IF(!sh, err, MN_EINVAL, "unknown shape '%s' (known: %s)", shape_name, mn_synth_shapes());
    const mn_type_traits *tt = mn_type_get(type);
    MN_RETURN_IF(!tt || !tt->from_f32, err, MN_EINVAL, "cannot write weights of type %s", tt ? tt->name : "?");
    MN_RETURN_IF(vocab_size > (1 << 24), err, MN_EINVAL, "vocab size %d is too large", vocab_size);

    synth sy = {0};
    sy.seed = seed;
    sy.type = type;
    sy.log = log;
    mn_status s = mn_gguf_writer_create(&sy.w, err);
    if (s != MN_OK) return s;
    mn_gguf_writer *w = sy.w;
    int32_t n_vocab = vocab_size > 0 ? vocab_size : sh->n_vocab;
    if (vocab_from) {
        if ((s = copy_vocab(w, vocab_from, &n_vocab, err)) != MN_OK) goto done;
    } else if ((s = mn_tool_placeholder_vocab(w, n_vocab, err)) != MN_OK) {
        goto done;
    }
    const char *a = sh->arch;
    int32_t hd = sh->dim / sh->n_head, kv = hd * sh->n_head_kv;
    char key[128];
#define SETU(k, v) (snprintf(key, sizeof key, "%s." k, a), mn_gguf_set_u32(w, key, (uint32_t)(v)))
#define SETF(k, v) (snprintf(key, sizeof key, "%s." k, a), mn_gguf_set_f32(w, key, (v)))
    if ((s = mn_gguf_set_str(w, "general.architecture", a)) != MN_OK ||
        (s = mn_gguf_set_str(w, "general.name", sh->name)) != MN_OK ||
        (s = mn_gguf_set_u32(w, "general.file_type", (uint32_t)file_type(type))) != MN_OK ||
        (s = SETU("context_length", sh->n_ctx)) != MN_OK || (s = SETU("embedding_length", sh->dim)) != MN_OK ||
        (s = SETU("block_count", sh->n_layer)) != MN_OK || (s = SETU("feed_forward_length", sh->n_ff)) != MN_OK ||
        (s = SETU("attention.head_count", sh->n_head)) != MN_OK ||
        (s = SETU("attention.head_count_kv", sh->n_head_kv)) != MN_OK ||
        (s = SETU("rope.dimension_count", hd)) != MN_OK || (s = SETF("rope.freq_base", sh->rope_base)) != MN_OK ||
        (s = SETF("attention.layer_norm_rms_epsilon", sh->eps)) != MN_OK) {
        s = mn_error_set(err, s, "cannot set metadata");
        goto done;
    }
#undef SETU
#undef SETF
    /* staging buffer for the largest tensor */
    int64_t biggest = (int64_t)n_vocab * sh->dim;
    if ((int64_t)sh->n_ff * sh->dim > biggest) biggest = (int64_t)sh->n_ff * sh->dim;
    sy.scratch = malloc((size_t)biggest * sizeof(float));
    if (!sy.scratch) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = add_tensor(&sy, "token_embd.weight", sh->dim, n_vocab, 0, NULL, err)) != MN_OK) goto done;
    if (sh->llama3_rope) {
        float f[512];
        llama3_factors(f, hd, sh->rope_base);
        if ((s = add_tensor(&sy, "rope_freqs.weight", hd / 2, 1, 0, f, err)) != MN_OK) goto done;
    }
    for (int l = 0; l < sh->n_layer; l++) {
        struct {
            const char *fmt;
            int64_t ne0, ne1;
            int kind;
            int bias;
        } parts[] = {
            {"blk.%d.attn_norm.weight", sh->dim, 1, 1, 0},
            {"blk.%d.attn_q.weight", sh->dim, sh->dim, 0, 0},
            {"blk.%d.attn_k.weight", sh->dim, kv, 0, 0},
            {"blk.%d.attn_v.weight", sh->dim, kv, 0, 0},
            {"blk.%d.attn_q.bias", sh->dim, 1, 0, 1},
            {"blk.%d.attn_k.bias", kv, 1, 0, 1},
            {"blk.%d.attn_v.bias", kv, 1, 0, 1},
            {"blk.%d.attn_output.weight", sh->dim, sh->dim, 0, 0},
            {"blk.%d.ffn_norm.weight", sh->dim, 1, 1, 0},
            {"blk.%d.ffn_gate.weight", sh->dim, sh->n_ff, 0, 0},
            {"blk.%d.ffn_up.weight", sh->dim, sh->n_ff, 0, 0},
            {"blk.%d.ffn_down.weight", sh->n_ff, sh->dim, 0, 0},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            if (parts[i].bias && !sh->qkv_bias) continue;
            char name[64];
            snprintf(name, sizeof name, parts[i].fmt, l);
            if ((s = add_tensor(&sy, name, parts[i].ne0, parts[i].ne1, parts[i].kind, NULL, err)) != MN_OK) goto done;
        }
        if (progress) progress(progress_user, (uint64_t)l + 1, (uint64_t)sh->n_layer + 1);
    }
    if ((s = add_tensor(&sy, "output_norm.weight", sh->dim, 1, 1, NULL, err)) != MN_OK) goto done;
    if (!sh->tied && (s = add_tensor(&sy, "output.weight", sh->dim, n_vocab, 0, NULL, err)) != MN_OK) goto done;
    s = mn_gguf_writer_write(w, out_path, err);
    if (progress && s == MN_OK) progress(progress_user, (uint64_t)sh->n_layer + 1, (uint64_t)sh->n_layer + 1);
done:
    mn_gguf_writer_free(sy.w);
    for (int i = 0; i < sy.n_bufs; i++) free(sy.bufs[i]);
    free(sy.bufs);
    free(sy.scratch);
    return s;
}
