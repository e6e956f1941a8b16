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

/* attention work split (see attention() below) */
enum {
    ATT_SPAN = 256,       /* positions per span (a multiple of MN_KV_BLOCK) */
    ATT_SPLIT_ITEMS = 256 /* at most this many (token, KV head, span) items run in parallel */
};

static size_t att_floats(int G, int hd) { return (size_t)G * (2 + (size_t)hd); }

/* per-thread scratch, in floats: converted q (G * hd floats of room, enough for any vec_dot_type),
 * a widened V row, block probabilities [G][MN_KV_BLOCK], running and span states */
static size_t att_thread_floats(int G, int hd) {
    return (size_t)G * (size_t)hd + (size_t)hd + (size_t)G * MN_KV_BLOCK + 2 * att_floats(G, hd);
}

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
    float *rope_cs;       /* per batch row: cos[n_rot/2], sin[n_rot/2] of its position, set per eval */
    /* per-batch scratch, n_batch rows each */
    float *x, *xb, *q, *kk, *vv, *att, *hb, *hb2;
    void *xq;
    size_t xq_size;
    float *att_acc;   /* per thread attention scratch (att_thread_floats) */
    float *att_part;  /* span partials of split attention [ATT_SPLIT_ITEMS][att_floats] */
    int32_t *att_item_tok, *att_item_span; /* split attention items [ATT_SPLIT_ITEMS] */
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
    free(ctx->rope_cs);
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
    free(ctx->att_part);
    free(ctx->att_item_tok);
    free(ctx->att_item_span);
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
    ctx->rope_cs = alloc_floats(nb * (size_t)hp->n_rot);
    ctx->x = alloc_floats(nb * (size_t)hp->n_embd);
    ctx->xb = alloc_floats(nb * (size_t)(hp->n_embd > (int)q_dim ? hp->n_embd : (int)q_dim));
    ctx->q = alloc_floats(nb * q_dim);
    ctx->kk = alloc_floats(nb * (size_t)kv_dim);
    ctx->vv = alloc_floats(nb * (size_t)kv_dim);
    ctx->att = alloc_floats(nb * q_dim);
    ctx->hb = alloc_floats(nb * (size_t)hp->n_ff);
    ctx->hb2 = alloc_floats(nb * (size_t)hp->n_ff);
    const int group = hp->n_head / hp->n_head_kv;
    ctx->att_acc = alloc_floats((size_t)mn_pool_size(ctx->pool) * att_thread_floats(group, hp->head_dim));
    ctx->att_part = alloc_floats(ATT_SPLIT_ITEMS * att_floats(group, hp->head_dim));
    ctx->att_item_tok = calloc(ATT_SPLIT_ITEMS, sizeof(int32_t));
    ctx->att_item_span = calloc(ATT_SPLIT_ITEMS, sizeof(int32_t));
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
    if (!ctx->seq_next || !ctx->rope_inv_freq || !ctx->rope_cs || !ctx->x ||
        !ctx->xb || !ctx->q || !ctx->kk || !ctx->vv || !ctx->att || !ctx->hb || !ctx->hb2 ||
        !ctx->att_acc || !ctx->att_part || !ctx->att_item_tok || !ctx->att_item_span || !ctx->out_rows || (xq && !ctx->xq)) {
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

/* Rotates the first n_rot dims of each head by the token's angles: cs = cos[n_rot/2], sin[n_rot/2]. */
static void rope_row(float *v, int n_heads, int head_dim, int n_rot, int style, const float *cs) {
    const float *sn = cs + n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * head_dim;
        for (int i = 0; i < n_rot / 2; i++) {
            const float c = cs[i], s = sn[i];
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
        const float *cs = ctx->rope_cs + (size_t)i * hp->n_rot;
        rope_row(q, hp->n_head, hp->head_dim, hp->n_rot, m->arch->rope_style, cs);
        rope_row(k, hp->n_head_kv, hp->head_dim, hp->n_rot, m->arch->rope_style, cs);
        int32_t seq = tok_seq(st->b, i), p = st->b->pos[i];
        mn_from_f32_fn store = mn_type_get(ctx->kv_type)->from_f32;
        store(k, mn_kv_k(ctx->kv, seq, st->layer, p), kv_dim);
        store(v, mn_kv_v(ctx->kv, seq, st->layer, p), kv_dim);
    }
}

/* Causal attention, tiled and with an online softmax (no score matrix; memory linear in context).
 *
 * The q heads that share a KV head (a GQA group of G heads) are computed together, so each cached
 * K row is read once for G dot products and each V row widened once for G accumulations. A token's
 * cached positions are cut into spans of ATT_SPAN positions; a span is processed a KV block
 * (MN_KV_BLOCK positions) at a time: the block's scores, the running max m and sum l rescaled once
 * per block, acc += p * v. The spans' (m, l, acc) are then folded in span order:
 *   M' = max(M, m), L' = L e^(M - M') + l e^(m - M'), O' = O e^(M - M') + acc e^(m - M'),
 * and the output is O * (1 / L). Large batches run one work item per (token, KV head), folding each
 * span as soon as it is done; decode, which has too few (token, KV head) pairs to keep the threads
 * busy, runs one item per (token, KV head, span) in parallel and folds the spans afterwards. Both
 * do the same operations in the same order, so a token's result depends neither on the batch it is
 * in nor on the thread count. K rows are dotted in the cache's type (q converted once per item to
 * its vec_dot_type); V rows are widened to f32. */
typedef struct att_state { /* m[G], l[G], acc[G][hd] */
    float *m, *l, *acc;
} att_state;

static att_state att_at(float *base, int G) { return (att_state){base, base + G, base + 2 * G}; }

static int att_n_spans(int n_pos) { return (n_pos + ATT_SPAN - 1) / ATT_SPAN; }

/* positions [p0, p1) of token i for the G heads of KV head g, into s; qx: the G converted q rows */
static void att_span(mn_context *ctx, const step *st, int i, int g, int p0, int p1, const char *qx, size_t q_row,
                     float *vrow, float *pr, att_state s) {
    const mn_hparams *hp = &ctx->model->hp;
    const mn_kernels *k = ctx->k;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv;
    const size_t row = ctx->kv_row_size, head_off = mn_type_row_size(ctx->kv_type, (int64_t)g * hd);
    const int32_t kt = ctx->kv_type, seq = tok_seq(st->b, i);
    const mn_vec_dot_fn dot = k->vec_dot[kt];
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < G; h++) {
        s.m[h] = -INFINITY;
        s.l[h] = 0.0f;
    }
    memset(s.acc, 0, (size_t)G * (size_t)hd * sizeof(float));
    for (int p = p0; p < p1;) { /* p0 is a multiple of MN_KV_BLOCK: whole blocks but the last */
        const int blk = p / MN_KV_BLOCK, n_t = p1 - p < MN_KV_BLOCK ? p1 - p : MN_KV_BLOCK;
        const char *kb = (const char *)mn_kv_block_k(ctx->kv, seq, st->layer, blk) + head_off;
        const char *vb = (const char *)mn_kv_block_v(ctx->kv, seq, st->layer, blk) + head_off;
        if (k->attn_block[kt]) { /* the table's block kernel, from the f32 q rows */
            const float *qf = ctx->q + (size_t)i * hp->n_head * hd + (size_t)g * G * hd;
            k->attn_block[kt](hd, G, n_t, qf, kb, vb, row, scale, s.m, s.l, s.acc);
            p += n_t;
            continue;
        }
        for (int h = 0; h < G; h++) {
            float *sc = pr + (size_t)h * MN_KV_BLOCK, *acc = s.acc + (size_t)h * hd;
            float bmx = -INFINITY;
            for (int t = 0; t < n_t; t++) {
                dot(hd, kb + (size_t)t * row, qx + (size_t)h * q_row, &sc[t]);
                sc[t] *= scale;
                if (sc[t] > bmx) bmx = sc[t];
            }
            if (bmx > s.m[h]) { /* rescale what was accumulated under the old max */
                const float c = expf(s.m[h] - bmx);
                for (int d = 0; d < hd; d++) acc[d] *= c;
                s.l[h] *= c;
                s.m[h] = bmx;
            }
            for (int t = 0; t < n_t; t++) {
                sc[t] = expf(sc[t] - s.m[h]);
                s.l[h] += sc[t];
            }
        }
        for (int t = 0; t < n_t; t++) {
            const float *v = (const float *)(const void *)(vb + (size_t)t * row);
            if (kt != MN_TYPE_F32) {
                k->to_f32[kt](vb + (size_t)t * row, vrow, hd);
                v = vrow;
            }
            for (int h = 0; h < G; h++) k->axpy_f32(hd, pr[(size_t)h * MN_KV_BLOCK + t], v, s.acc + (size_t)h * hd);
        }
        p += n_t;
    }
}

/* (M, L, O) <- (M, L, O) folded with span state s (see above) */
static void att_fold(att_state run, att_state s, int G, int hd) {
    for (int h = 0; h < G; h++) {
        const float mx = run.m[h] > s.m[h] ? run.m[h] : s.m[h];
        const float a = run.m[h] == -INFINITY ? 0.0f : expf(run.m[h] - mx), b = expf(s.m[h] - mx);
        run.l[h] = run.l[h] * a + s.l[h] * b;
        float *o = run.acc + (size_t)h * hd;
        const float *x = s.acc + (size_t)h * hd;
        for (int d = 0; d < hd; d++) o[d] = o[d] * a + x[d] * b;
        run.m[h] = mx;
    }
}

static void att_store(mn_context *ctx, int i, int g, att_state run) {
    const mn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv;
    for (int h = 0; h < G; h++) {
        float *o = ctx->att + (size_t)i * hp->n_head * hd + (size_t)(g * G + h) * hd;
        const float inv = 1.0f / run.l[h];
        for (int d = 0; d < hd; d++) o[d] = run.acc[(size_t)h * hd + d] * inv;
    }
}

/* the G q rows of token i, KV head g, converted to the cache's vec_dot_type; returns the row size */
static size_t att_q(mn_context *ctx, int i, int g, char *qconv, const char **qx) {
    const mn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv;
    const float *q = ctx->q + (size_t)i * hp->n_head * hd + (size_t)g * G * hd;
    const int32_t qt = mn_type_get(ctx->kv_type)->vec_dot_type;
    if (qt == MN_TYPE_F32 || ctx->k->attn_block[ctx->kv_type]) { /* the block kernel reads f32 q */
        *qx = (const char *)q;
        return (size_t)hd * sizeof(float);
    }
    const size_t q_row = mn_type_row_size(qt, hd);
    for (int h = 0; h < G; h++) ctx->k->quantize[qt](q + (size_t)h * hd, qconv + (size_t)h * q_row, hd);
    *qx = qconv;
    return q_row;
}

typedef struct att_job {
    mn_context *ctx;
    const step *st;
    int n_kv;
    int32_t *item_tok;  /* split mode: item -> token, KV head, span */
    int32_t *item_span;
} att_job;

/* split mode item c: span item_span[c] of (token, KV head) item_tok[c], into the partials buffer */
static void att_item_split(void *arg, int64_t c, int ith) {
    const att_job *j = arg;
    mn_context *ctx = j->ctx;
    const mn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv;
    float *ts = ctx->att_acc + (size_t)ith * att_thread_floats(G, hd);
    float *vrow = ts + (size_t)G * hd, *pr = vrow + hd;
    const int pair = j->item_tok[c], i = pair / j->n_kv, g = pair % j->n_kv, s = j->item_span[c];
    const int n_pos = j->st->b->pos[i] + 1, p0 = s * ATT_SPAN, p1 = p0 + ATT_SPAN < n_pos ? p0 + ATT_SPAN : n_pos;
    const char *qx;
    const size_t q_row = att_q(ctx, i, g, (char *)ts, &qx);
    att_span(ctx, j->st, i, g, p0, p1, qx, q_row, vrow, pr, att_at(ctx->att_part + (size_t)c * att_floats(G, hd), G));
}

/* whole mode item c = (token, KV head): every span, folded as it completes */
static void att_item_whole(void *arg, int64_t c, int ith) {
    const att_job *j = arg;
    mn_context *ctx = j->ctx;
    const mn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv;
    float *ts = ctx->att_acc + (size_t)ith * att_thread_floats(G, hd);
    float *vrow = ts + (size_t)G * hd, *pr = vrow + hd;
    const att_state run = att_at(pr + (size_t)G * MN_KV_BLOCK, G),
                    span = att_at(pr + (size_t)G * MN_KV_BLOCK + att_floats(G, hd), G);
    const int i = (int)(c / j->n_kv), g = (int)(c % j->n_kv), n_pos = j->st->b->pos[i] + 1;
    const char *qx;
    const size_t q_row = att_q(ctx, i, g, (char *)ts, &qx);
    for (int h = 0; h < G; h++) {
        run.m[h] = -INFINITY;
        run.l[h] = 0.0f;
    }
    memset(run.acc, 0, (size_t)G * (size_t)hd * sizeof(float));
    for (int p0 = 0; p0 < n_pos; p0 += ATT_SPAN) {
        att_span(ctx, j->st, i, g, p0, p0 + ATT_SPAN < n_pos ? p0 + ATT_SPAN : n_pos, qx, q_row, vrow, pr, span);
        att_fold(run, span, G, hd);
    }
    att_store(ctx, i, g, run);
}

static void attention(mn_context *ctx, const step *st) {
    const mn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv, n_kv = hp->n_head_kv, nth = mn_pool_size(ctx->pool);
    att_job j = {ctx, st, n_kv, ctx->att_item_tok, ctx->att_item_span};
    const int64_t pairs = (int64_t)st->n * n_kv;
    int64_t items = 0;
    if (pairs < 4 * nth) /* too few pairs to share: split them by span if there are enough spans */
        for (int i = 0; i < st->n; i++) items += (int64_t)n_kv * att_n_spans(st->b->pos[i] + 1);
    if (items <= pairs || items > ATT_SPLIT_ITEMS) {
        mn_pool_for(ctx->pool, pairs, 0, att_item_whole, &j);
        return;
    }
    int64_t c = 0;
    for (int i = 0; i < st->n; i++)
        for (int g = 0; g < n_kv; g++)
            for (int s = 0; s < att_n_spans(st->b->pos[i] + 1); s++) {
                ctx->att_item_tok[c] = i * n_kv + g;
                ctx->att_item_span[c++] = s;
            }
    mn_pool_for(ctx->pool, items, 0, att_item_split, &j);
    /* fold each pair's spans in order, as att_item_whole does */
    float *runbuf = ctx->att_acc; /* thread 0's scratch is free again */
    const att_state run = att_at(runbuf + (size_t)G * hd + hd + (size_t)G * MN_KV_BLOCK, G);
    for (int64_t c0 = 0; c0 < items;) {
        const int pair = ctx->att_item_tok[c0];
        for (int h = 0; h < G; h++) {
            run.m[h] = -INFINITY;
            run.l[h] = 0.0f;
        }
        memset(run.acc, 0, (size_t)G * (size_t)hd * sizeof(float));
        for (; c0 < items && ctx->att_item_tok[c0] == pair; c0++)
            att_fold(run, att_at(ctx->att_part + (size_t)c0 * att_floats(G, hd), G), G, hd);
        att_store(ctx, pair / n_kv, pair % n_kv, run);
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

    /* rope angles once per token, for every layer and head */
    for (int i = 0; i < n; i++) {
        const float pos = (float)b->pos[i] * hp->rope_scale;
        float *cs = ctx->rope_cs + (size_t)i * hp->n_rot;
        for (int r = 0; r < hp->n_rot / 2; r++) {
            const float theta = pos * ctx->rope_inv_freq[r];
            cs[r] = cosf(theta);
            cs[hp->n_rot / 2 + r] = sinf(theta);
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
        attention(ctx, &st);
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

typedef struct par_job {
    void (*fn)(void *arg, int32_t i);
    void *arg;
} par_job;

static void par_item(void *arg, int64_t i, int ith) {
    (void)ith;
    const par_job *j = arg;
    j->fn(j->arg, (int32_t)i);
}

void mn_context_parallel(mn_context *ctx, int32_t n, void (*fn)(void *arg, int32_t i), void *arg) {
    par_job j = {fn, arg};
    mn_pool_for(ctx->pool, n, 0, par_item, &j);
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
