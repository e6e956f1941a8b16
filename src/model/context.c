/*
 * context.c: mn_context: the KV cache, scratch buffers and the forward pass over a batch.
 *
 * The KV cache is paged (src/kv/kv_cache.h): one pool of blocks sized at creation from
 * n_ctx * n_seq_max (capped by mem_limit_mb), with a prefix cache. A batch may mix sequences; each
 * sequence's tokens must continue that sequence (pos == its current length) in order.
 *
 * Forward pass over N tokens (shapes per token):
 *   x[N][embd] = embedding rows
 *   per layer: xb = rmsnorm(x) ; q,k,v = xb @ Wq,Wk,Wv (+bias) ; rope(q,k) at each token's pos ;
 *              k,v -> cache ; att = softmax(q.K^T / sqrt(hd)) V over the token's causal prefix
 *              (online softmax, one pass, no score matrix) ; x += att @ Wo ;
 *              xb = rmsnorm(x) ; x += (silu(xb @ Wgate) * (xb @ Wup)) @ Wdown
 *   logits = rmsnorm(x) @ Woutput, only for the rows asked for.
 * All scratch is allocated at creation; an eval allocates nothing except when more logit rows are
 * asked for than ever before.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/types.h"
#include "kv/kv_cache.h"
#include "model/model.h"
#include "model/ops.h"

struct mn_context {
    const mn_model *model;
    const mn_kernels *k;
    mn_pool *pool;
    int32_t n_ctx, n_batch, n_seq;
    int32_t kv_dim;
    mn_kv *kv;
    int32_t kv_type;      /* enum mn_type of the cache rows */
    uint64_t kv_row_size; /* bytes of one position's K (or V) row */
    int32_t *seq_next;    /* scratch for batch validation [n_seq] */
    float *rope_inv_freq; /* [n_rot/2] */
    /* per-batch scratch, n_batch rows each */
    float *x, *xb, *q, *kk, *vv, *att, *hb, *hb2;
    void *xq;
    size_t xq_size;
    float *att_acc;   /* per thread: acc[head_dim], v row[head_dim], converted q[head_dim] */
    int32_t *out_rows;/* indices of rows whose logits are wanted */
    float *logits;
    int32_t n_logits, logits_cap;
    char errmsg[512];
};

mn_context_params mn_context_default_params(void) {
    mn_context_params p = {0};
    return p;
}

static mn_status ctx_fail(mn_context *ctx, mn_status s, const char *fmt, ...) MN_PRINTF(3, 4);
static mn_status ctx_fail(mn_context *ctx, mn_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    return s;
}

const char *mn_context_errmsg(const mn_context *ctx) { return ctx->errmsg; }
int32_t mn_context_n_ctx(const mn_context *ctx) { return ctx->n_ctx; }
int32_t mn_context_n_batch(const mn_context *ctx) { return ctx->n_batch; }

void mn_context_free(mn_context *ctx) {
    if (!ctx) return;
    mn_pool_free(ctx->pool);
    mn_kv_free(ctx->kv);
    free(ctx->seq_next);
    free(ctx->rope_inv_freq);
    free(ctx->x);
    free(ctx->xb);
    free(ctx->q);
    free(ctx->kk);
    free(ctx->vv);
    free(ctx->att);
    free(ctx->hb);
    free(ctx->hb2);
    free(ctx->xq);
    free(ctx->att_acc);
    free(ctx->out_rows);
    free(ctx->logits);
    free(ctx);
}

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}

mn_status mn_context_create(const mn_model *model, const mn_context_params *params, mn_context **out,
                            mn_error *err) {
    MN_RETURN_IF(!out || !model, err, MN_EINVAL, "model and out must not be NULL");
    *out = NULL;
    mn_context_params p = params ? *params : mn_context_default_params();
    const mn_hparams *hp = &model->hp;
    if (p.n_ctx <= 0) p.n_ctx = hp->n_ctx_train;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    MN_RETURN_IF(p.n_ctx > (1 << 24), err, MN_EINVAL, "n_ctx %d is larger than 2^24", p.n_ctx);
    MN_RETURN_IF(p.n_batch > (1 << 16), err, MN_EINVAL, "n_batch %d is larger than 65536", p.n_batch);
    MN_RETURN_IF(p.n_seq_max > 4096, err, MN_EINVAL, "n_seq_max %d is larger than 4096", p.n_seq_max);

    int32_t kv_dim = hp->n_head_kv * hp->head_dim;
    int32_t kv_type;
    switch (p.kv_type) {
    case MN_KV_AUTO: kv_type = !strcmp(model->type_name, "f32") ? MN_TYPE_F32 : MN_TYPE_F16; break;
    case MN_KV_F32: kv_type = MN_TYPE_F32; break;
    case MN_KV_F16: kv_type = MN_TYPE_F16; break;
    case MN_KV_Q8_0: kv_type = MN_TYPE_Q8_0; break;
    default: return mn_error_set(err, MN_EINVAL, "unknown kv_type %d", p.kv_type);
    }
    MN_RETURN_IF(hp->head_dim % mn_type_get(kv_type)->block_size != 0, err, MN_EINVAL,
                 "KV cache type %s needs a head dimension that is a multiple of %d (this model: %d)",
                 mn_type_get(kv_type)->name, mn_type_get(kv_type)->block_size, hp->head_dim);
    uint64_t kv_row = mn_type_row_size(kv_type, kv_dim);
    /* pool: enough blocks for every sequence at full length, unless the memory cap says less; a
     * cap below one full sequence shortens n_ctx (to whole blocks) */
    int64_t blocks_per_seq = ((int64_t)p.n_ctx + MN_KV_BLOCK - 1) / MN_KV_BLOCK;
    int64_t n_blocks = blocks_per_seq * p.n_seq_max;
    if (p.mem_limit_mb > 0) {
        MN_RETURN_IF(p.mem_limit_mb > (1ull << 40), err, MN_EINVAL, "memory limit of %llu MB is absurd",
                     (unsigned long long)p.mem_limit_mb);
        int64_t fit = mn_kv_blocks_for_bytes(hp->n_layer, kv_row, p.mem_limit_mb * 1024u * 1024u);
        MN_RETURN_IF(fit < 1, err, MN_ENOMEM, "memory limit of %llu MB cannot hold one KV block of %d positions",
                     (unsigned long long)p.mem_limit_mb, MN_KV_BLOCK);
        if (n_blocks > fit) n_blocks = fit;
        if (blocks_per_seq > fit) p.n_ctx = (int32_t)(fit * MN_KV_BLOCK);
    }
    MN_RETURN_IF(n_blocks > (1 << 28), err, MN_EINVAL, "KV cache of %lld blocks is too large", (long long)n_blocks);
    if (p.n_batch > p.n_ctx * p.n_seq_max) p.n_batch = p.n_ctx * p.n_seq_max;

    mn_context *ctx = calloc(1, sizeof *ctx);
    MN_RETURN_IF(!ctx, err, MN_ENOMEM, "out of memory");
    ctx->model = model;
    ctx->k = mn_kernels_get();
    ctx->n_ctx = p.n_ctx;
    ctx->n_batch = p.n_batch;
    ctx->n_seq = p.n_seq_max;
    ctx->kv_dim = kv_dim;
    ctx->kv_type = kv_type;
    ctx->kv_row_size = kv_row;
    mn_status s = mn_pool_create(p.n_threads, &ctx->pool, err);
    if (s != MN_OK) goto fail;

    if ((s = mn_kv_create(hp->n_layer, kv_row, (int32_t)n_blocks, p.n_seq_max, p.n_ctx, &ctx->kv, err)) != MN_OK)
        goto fail;
    size_t nb = (size_t)p.n_batch;
    size_t q_dim = (size_t)hp->n_head * (size_t)hp->head_dim;
    ctx->seq_next = calloc((size_t)p.n_seq_max, sizeof(int32_t));
    ctx->rope_inv_freq = alloc_floats((size_t)hp->n_rot / 2);
    ctx->x = alloc_floats(nb * (size_t)hp->n_embd);
    ctx->xb = alloc_floats(nb * (size_t)(hp->n_embd > (int)q_dim ? hp->n_embd : (int)q_dim));
    ctx->q = alloc_floats(nb * q_dim);
    ctx->kk = alloc_floats(nb * (size_t)kv_dim);
    ctx->vv = alloc_floats(nb * (size_t)kv_dim);
    ctx->att = alloc_floats(nb * q_dim);
    ctx->hb = alloc_floats(nb * (size_t)hp->n_ff);
    ctx->hb2 = alloc_floats(nb * (size_t)hp->n_ff);
    ctx->att_acc = alloc_floats((size_t)mn_pool_size(ctx->pool) * 3u * (size_t)hp->head_dim);
    ctx->out_rows = calloc(nb, sizeof(int32_t));
    /* activation conversion scratch: the largest of all matrices at n_batch rows */
    size_t xq = 0;
    const mn_weight *ws[] = {&model->layers[0].wq, &model->layers[0].w_down, &model->output};
    for (int l = 0; l < hp->n_layer; l++) {
        ws[0] = &model->layers[l].wq;
        ws[1] = &model->layers[l].w_down;
        for (int i = 0; i < 3; i++) {
            size_t need = mn_matmul_scratch_size(ws[i], p.n_batch);
            if (need > xq) xq = need;
        }
        const mn_weight *others[] = {&model->layers[l].wk, &model->layers[l].wv, &model->layers[l].wo,
                                     &model->layers[l].w_gate, &model->layers[l].w_up};
        for (int i = 0; i < 5; i++) {
            size_t need = mn_matmul_scratch_size(others[i], p.n_batch);
            if (need > xq) xq = need;
        }
    }
    ctx->xq_size = xq;
    if (xq && posix_memalign(&ctx->xq, 64, xq) != 0) ctx->xq = NULL;
    if (!ctx->seq_next || !ctx->rope_inv_freq || !ctx->x ||
        !ctx->xb || !ctx->q || !ctx->kk || !ctx->vv || !ctx->att || !ctx->hb || !ctx->hb2 ||
        !ctx->att_acc || !ctx->out_rows || (xq && !ctx->xq)) {
        s = mn_error_set(err, MN_ENOMEM, "out of memory allocating scratch for batches of %d tokens", p.n_batch);
        goto fail;
    }
    for (int i = 0; i < hp->n_rot / 2; i++) {
        float f = powf(hp->rope_base, -2.0f * (float)i / (float)hp->n_rot);
        if (model->rope_freq_factors) f /= model->rope_freq_factors[i];
        ctx->rope_inv_freq[i] = f;
    }
    *out = ctx;
    return MN_OK;
fail:
    mn_context_free(ctx);
    return s;
}

/* ---------------------------------------------------------------- forward pass ---------------- */

typedef struct step {
    mn_context *ctx;
    const mn_batch *b;
    int layer;
    int n;               /* tokens (rows) in the batch */
    const float *norm_w; /* weight of the rmsnorm norm_rows applies */
} step;

static inline int32_t tok_seq(const mn_batch *b, int i) { return b->seq ? b->seq[i] : 0; }

static void rope_row(float *v, int n_heads, int head_dim, int n_rot, int style, float pos,
                     const float *inv_freq) {
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * head_dim;
        for (int i = 0; i < n_rot / 2; i++) {
            float theta = pos * inv_freq[i];
            float c = cosf(theta), s = sinf(theta);
            int a = style == MN_ROPE_ADJACENT ? 2 * i : i;
            int bidx = style == MN_ROPE_ADJACENT ? 2 * i + 1 : i + n_rot / 2;
            float x0 = x[a], x1 = x[bidx];
            x[a] = x0 * c - x1 * s;
            x[bidx] = x0 * s + x1 * c;
        }
    }
}

/* Bias, rope, and append k/v to the cache: one token per thread slot. */
static void qkv_post(void *arg, int ith, int nth) {
    step *st = arg;
    mn_context *ctx = st->ctx;
    const mn_model *m = ctx->model;
    const mn_hparams *hp = &m->hp;
    const mn_layer *L = &m->layers[st->layer];
    int q_dim = hp->n_head * hp->head_dim, kv_dim = ctx->kv_dim;
    for (int i = ith; i < st->n; i += nth) {
        float *q = ctx->q + (size_t)i * q_dim, *k = ctx->kk + (size_t)i * kv_dim,
              *v = ctx->vv + (size_t)i * kv_dim;
        if (L->bq)
            for (int j = 0; j < q_dim; j++) q[j] += L->bq[j];
        if (L->bk)
            for (int j = 0; j < kv_dim; j++) k[j] += L->bk[j];
        if (L->bv)
            for (int j = 0; j < kv_dim; j++) v[j] += L->bv[j];
        float pos = (float)st->b->pos[i] * hp->rope_scale;
        rope_row(q, hp->n_head, hp->head_dim, hp->n_rot, m->arch->rope_style, pos, ctx->rope_inv_freq);
        rope_row(k, hp->n_head_kv, hp->head_dim, hp->n_rot, m->arch->rope_style, pos, ctx->rope_inv_freq);
        int32_t seq = tok_seq(st->b, i), p = st->b->pos[i];
        mn_from_f32_fn store = mn_type_get(ctx->kv_type)->from_f32;
        store(k, mn_kv_k(ctx->kv, seq, st->layer, p), kv_dim);
        store(v, mn_kv_v(ctx->kv, seq, st->layer, p), kv_dim);
    }
}

/* Causal attention for every (token, head) pair, split across threads. One pass over the cached
 * positions, a KV block (MN_KV_BLOCK positions) at a time, with an online softmax: scores of the
 * block, the running max m and sum l rescaled once per block, acc[head_dim] += p * v. Memory is
 * linear in the context; no score matrix exists. K rows are dotted in the cache's type (q is
 * converted once per pair to that type's vec_dot_type); V rows are widened to f32 one at a time. */
static void attention(void *arg, int ith, int nth) {
    step *st = arg;
    mn_context *ctx = st->ctx;
    const mn_hparams *hp = &ctx->model->hp;
    const mn_kernels *k = ctx->k;
    int hd = hp->head_dim, q_dim = hp->n_head * hd, group = hp->n_head / hp->n_head_kv;
    size_t row = ctx->kv_row_size;
    int32_t kt = ctx->kv_type, qt = mn_type_get(kt)->vec_dot_type;
    mn_vec_dot_fn dot = k->vec_dot[kt];
    mn_to_f32_fn widen = k->to_f32[kt];
    float scale = 1.0f / sqrtf((float)hd);
    float *acc = ctx->att_acc + (size_t)ith * 3 * hd, *vrow = acc + hd;
    void *qconv = acc + 2 * hd; /* hd floats of room: enough for any conversion of hd values */
    float sc[MN_KV_BLOCK];
    int n_pairs = st->n * hp->n_head;
    for (int pi = ith; pi < n_pairs; pi += nth) {
        int i = pi / hp->n_head, h = pi % hp->n_head;
        const float *q = ctx->q + (size_t)i * q_dim + (size_t)h * hd;
        const void *qx = q;
        if (qt != MN_TYPE_F32) {
            k->quantize[qt](q, qconv, hd);
            qx = qconv;
        }
        int32_t seq = tok_seq(st->b, i);
        size_t head_off = mn_type_row_size(kt, (int64_t)(h / group) * hd);
        int n_pos = st->b->pos[i] + 1;
        float mx = -INFINITY, l = 0.0f;
        memset(acc, 0, (size_t)hd * sizeof(float));
        for (int blk = 0; blk * MN_KV_BLOCK < n_pos; blk++) {
            const char *kb = (const char *)mn_kv_block_k(ctx->kv, seq, st->layer, blk) + head_off;
            const char *vb = (const char *)mn_kv_block_v(ctx->kv, seq, st->layer, blk) + head_off;
            int n_t = n_pos - blk * MN_KV_BLOCK < MN_KV_BLOCK ? n_pos - blk * MN_KV_BLOCK : MN_KV_BLOCK;
            float bmx = -INFINITY;
            for (int t = 0; t < n_t; t++) {
                dot(hd, kb + (size_t)t * row, qx, &sc[t]);
                sc[t] *= scale;
                if (sc[t] > bmx) bmx = sc[t];
            }
            if (bmx > mx) { /* rescale what was accumulated under the old max */
                float c = expf(mx - bmx);
                for (int d = 0; d < hd; d++) acc[d] *= c;
                l *= c;
                mx = bmx;
            }
            for (int t = 0; t < n_t; t++) {
                float e = expf(sc[t] - mx);
                l += e;
                const void *vsrc = vb + (size_t)t * row;
                if (kt != MN_TYPE_F32) {
                    widen(vsrc, vrow, hd);
                    vsrc = vrow;
                }
                k->axpy_f32(hd, e, vsrc, acc);
            }
        }
        float *o = ctx->att + (size_t)i * q_dim + (size_t)h * hd;
        float inv = 1.0f / l;
        for (int d = 0; d < hd; d++) o[d] = acc[d] * inv;
    }
}

static void norm_rows(void *arg, int ith, int nth) {
    step *st = arg;
    mn_context *ctx = st->ctx;
    const mn_hparams *hp = &ctx->model->hp;
    for (int i = ith; i < st->n; i += nth)
        mn_rmsnorm(ctx->xb + (size_t)i * hp->n_embd, ctx->x + (size_t)i * hp->n_embd, st->norm_w, hp->n_embd,
                   hp->norm_eps);
}

static void add_rows(float *x, const float *d, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += d[i];
}

static mn_status check_batch(mn_context *ctx, const mn_batch *b) {
    const mn_hparams *hp = &ctx->model->hp;
    if (!b || b->n_tokens <= 0 || !b->tokens || !b->pos)
        return ctx_fail(ctx, MN_EINVAL, "batch needs n_tokens > 0, tokens and pos");
    if (b->n_tokens > ctx->n_batch)
        return ctx_fail(ctx, MN_EINVAL, "batch of %d tokens exceeds n_batch %d", b->n_tokens, ctx->n_batch);
    /* expected next position per sequence, checked without touching the cache */
    for (int32_t q = 0; q < ctx->n_seq; q++) ctx->seq_next[q] = mn_kv_len(ctx->kv, q);
    for (int i = 0; i < b->n_tokens; i++) {
        int32_t s = tok_seq(b, i);
        if (s < 0 || s >= ctx->n_seq)
            return ctx_fail(ctx, MN_EINVAL, "token %d: sequence id %d out of range [0, %d)", i, s, ctx->n_seq);
        if (b->tokens[i] < 0 || b->tokens[i] >= hp->n_vocab)
            return ctx_fail(ctx, MN_EINVAL, "token %d: id %d out of vocabulary [0, %d)", i, b->tokens[i],
                            hp->n_vocab);
        int32_t expect = ctx->seq_next[s]++;
        if (b->pos[i] != expect)
            return ctx_fail(ctx, MN_EINVAL, "token %d: position %d does not continue sequence %d (next is %d)",
                            i, b->pos[i], s, expect);
        if (b->pos[i] >= ctx->n_ctx)
            return ctx_fail(ctx, MN_EFULL, "context full: position %d of sequence %d exceeds n_ctx %d", b->pos[i],
                            s, ctx->n_ctx);
    }
    return MN_OK;
}

mn_status mn_context_eval(mn_context *ctx, const mn_batch *b) {
    ctx->errmsg[0] = '\0';
    mn_status s = check_batch(ctx, b);
    if (s != MN_OK) return s;
    const mn_model *m = ctx->model;
    const mn_hparams *hp = &m->hp;
    const mn_kernels *k = ctx->k;
    int n = b->n_tokens, E = hp->n_embd, q_dim = hp->n_head * hp->head_dim, kv_dim = ctx->kv_dim;

    /* rows whose logits are wanted */
    int n_out = 0;
    for (int i = 0; i < n; i++)
        if (b->logits ? b->logits[i] != 0 : i == n - 1) ctx->out_rows[n_out++] = i;
    if (n_out > ctx->logits_cap) {
        float *nl = realloc(ctx->logits, (size_t)n_out * (size_t)hp->n_vocab * sizeof(float));
        if (!nl) return ctx_fail(ctx, MN_ENOMEM, "out of memory for %d rows of logits", n_out);
        ctx->logits = nl;
        ctx->logits_cap = n_out;
    }

    /* reserve KV blocks for every sequence in the batch, all or nothing (seq_next holds each
     * sequence's length after this batch, from check_batch) */
    for (int32_t q = 0; q < ctx->n_seq; q++) {
        int32_t add = ctx->seq_next[q] - mn_kv_len(ctx->kv, q);
        if (add > 0 && mn_kv_reserve(ctx->kv, q, add) != MN_OK) {
            for (int32_t r = 0; r < q; r++) mn_kv_unreserve(ctx->kv, r);
            mn_kv_stats st;
            mn_kv_get_stats(ctx->kv, &st);
            return ctx_fail(ctx, MN_EFULL, "KV cache full: no free block for sequence %d (%d of %d blocks in use)", q,
                            st.n_blocks - st.n_free, st.n_blocks);
        }
    }

    const mn_type_traits *et = mn_type_get(m->tok_embd.type);
    for (int i = 0; i < n; i++)
        et->to_f32((const char *)m->tok_embd.data + (size_t)b->tokens[i] * m->tok_embd.row_size,
                   ctx->x + (size_t)i * E, E);

    step st = {ctx, b, 0, n, NULL};
    for (int l = 0; l < hp->n_layer; l++) {
        const mn_layer *L = &m->layers[l];
        st.layer = l;
        st.norm_w = L->attn_norm;
        mn_pool_run(ctx->pool, norm_rows, &st, n);
        const mn_mm_part qkv[3] = {{&L->wq, ctx->q, q_dim}, {&L->wk, ctx->kk, kv_dim}, {&L->wv, ctx->vv, kv_dim}};
        mn_matmul_parts(ctx->pool, k, qkv, 3, ctx->xb, E, n, ctx->xq, 0);
        mn_pool_run(ctx->pool, qkv_post, &st, n);
        mn_pool_run(ctx->pool, attention, &st, n * hp->n_head);
        mn_matmul(ctx->pool, k, &L->wo, ctx->att, q_dim, n, ctx->xb, E, ctx->xq);
        add_rows(ctx->x, ctx->xb, (size_t)n * E);

        st.norm_w = L->ffn_norm;
        mn_pool_run(ctx->pool, norm_rows, &st, n);
        const mn_mm_part ffn[2] = {{&L->w_gate, ctx->hb, hp->n_ff}, {&L->w_up, ctx->hb2, hp->n_ff}};
        mn_matmul_parts(ctx->pool, k, ffn, 2, ctx->xb, E, n, ctx->xq, MN_MM_SWIGLU);
        mn_matmul(ctx->pool, k, &L->w_down, ctx->hb, hp->n_ff, n, ctx->xb, E, ctx->xq);
        add_rows(ctx->x, ctx->xb, (size_t)n * E);
    }

    /* gather the wanted rows, final norm, classifier */
    for (int o = 0; o < n_out; o++)
        if (ctx->out_rows[o] != o)
            memcpy(ctx->x + (size_t)o * E, ctx->x + (size_t)ctx->out_rows[o] * E, (size_t)E * sizeof(float));
    st.norm_w = m->output_norm;
    st.n = n_out;
    mn_pool_run(ctx->pool, norm_rows, &st, n_out);
    mn_matmul(ctx->pool, k, &m->output, ctx->xb, E, n_out, ctx->logits, hp->n_vocab, ctx->xq);
    ctx->n_logits = n_out;

    for (int i = 0; i < n; i++) mn_kv_commit(ctx->kv, tok_seq(b, i), &b->tokens[i], 1);
    return MN_OK;
}

const float *mn_context_logits(const mn_context *ctx, int32_t i) {
    if (i < 0 || i >= ctx->n_logits) return NULL;
    return ctx->logits + (size_t)i * ctx->model->hp.n_vocab;
}

mn_status mn_context_kv_truncate(mn_context *ctx, int32_t seq, int32_t pos) {
    if (seq < 0 || seq >= ctx->n_seq)
        return ctx_fail(ctx, MN_EINVAL, "sequence id %d out of range [0, %d)", seq, ctx->n_seq);
    if (pos < 0) return ctx_fail(ctx, MN_EINVAL, "position %d is negative", pos);
    if (mn_kv_truncate(ctx->kv, seq, pos) != MN_OK)
        return ctx_fail(ctx, MN_EFULL, "KV cache full: cannot copy a shared block of sequence %d", seq);
    return MN_OK;
}

int32_t mn_context_kv_len(const mn_context *ctx, int32_t seq) {
    if (seq < 0 || seq >= ctx->n_seq) return 0;
    return mn_kv_len(ctx->kv, seq);
}

mn_status mn_context_kv_attach_prefix(mn_context *ctx, int32_t seq, const int32_t *tokens, int32_t n,
                                      int32_t *n_cached) {
    if (!n_cached || (n > 0 && !tokens) || n < 0)
        return ctx_fail(ctx, MN_EINVAL, "tokens and n_cached must be given, n >= 0");
    *n_cached = 0;
    if (seq < 0 || seq >= ctx->n_seq)
        return ctx_fail(ctx, MN_EINVAL, "sequence id %d out of range [0, %d)", seq, ctx->n_seq);
    if (mn_kv_len(ctx->kv, seq) != 0)
        return ctx_fail(ctx, MN_EINVAL, "sequence %d is not empty (truncate it to 0 first)", seq);
    *n_cached = mn_kv_attach_prefix(ctx->kv, seq, tokens, n);
    return MN_OK;
}

void mn_context_kv_stats(const mn_context *ctx, mn_kv_stats *out) { mn_kv_get_stats(ctx->kv, out); }
