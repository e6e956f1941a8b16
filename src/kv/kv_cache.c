/*
 * kv_cache.c: paged KV cache + prefix cache (see kv_cache.h for the model).
 *
 * Block states: FREE (ref 0, not indexed; on the free list), CACHED (ref 0, indexed; on the LRU
 * list, oldest first), USED (ref > 0; indexed or not). Allocation takes a FREE block, else evicts
 * the least recently released CACHED one. The prefix index is an open-addressing table keyed by
 * block hash (linear probing, backward-shift deletion), sized to twice the block count so it
 * never fills. A hash hit is confirmed by comparing the block's tokens and its parent's hash.
 */
#include "kv/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define B MN_KV_BLOCK
#define NONE (-1)

typedef struct kv_block {
    int32_t ref;
    int32_t n_tok;        /* committed positions in this block */
    uint64_t hash;        /* identity of the prefix ending with this block (valid when full) */
    uint64_t parent_hash; /* hash of the previous block of the chain (0 for the first) */
    uint8_t indexed;      /* entered in the prefix index */
    int32_t prev, next;   /* LRU list links (CACHED) / free list link in next (FREE) */
    int32_t tokens[B];
} kv_block;

typedef struct kv_seq {
    int32_t *table;   /* logical block -> pool block */
    int32_t n_blocks; /* entries of table in use */
    int32_t len;      /* committed positions */
} kv_seq;

struct mn_kv {
    int32_t n_layer, n_blocks, n_seq, max_pos, max_blocks;
    uint64_t row_size;
    size_t block_bytes; /* n_layer * B * row_size */
    uint8_t *k, *v;
    kv_block *blocks;
    kv_seq *seqs;
    int32_t free_head, n_free_list;
    int32_t lru_head, lru_tail, n_cached;
    uint32_t idx_mask;
    int32_t *idx; /* block id or NONE */
};

static uint64_t block_hash(uint64_t parent, const int32_t *tokens) {
    uint64_t h = parent ^ 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < B; i++) {
        h ^= (uint64_t)(uint32_t)tokens[i];
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h ? h : 1; /* 0 means "no parent" */
}

/* ---------------------------------------------------------------- prefix index --------------- */

static int32_t idx_find(const mn_kv *kv, uint64_t hash, uint64_t parent, const int32_t *tokens) {
    for (uint32_t i = (uint32_t)hash & kv->idx_mask;; i = (i + 1) & kv->idx_mask) {
        int32_t b = kv->idx[i];
        if (b == NONE) return NONE;
        const kv_block *bl = &kv->blocks[b];
        if (bl->hash == hash && bl->parent_hash == parent && !memcmp(bl->tokens, tokens, sizeof bl->tokens))
            return b;
    }
}

static void idx_insert(mn_kv *kv, int32_t b) {
    uint32_t i = (uint32_t)kv->blocks[b].hash & kv->idx_mask;
    while (kv->idx[i] != NONE) i = (i + 1) & kv->idx_mask;
    kv->idx[i] = b;
    kv->blocks[b].indexed = 1;
}

static void idx_remove(mn_kv *kv, int32_t b) {
    uint32_t i = (uint32_t)kv->blocks[b].hash & kv->idx_mask;
    while (kv->idx[i] != b) i = (i + 1) & kv->idx_mask;
    /* backward-shift deletion: pull later entries of the probe run into the hole */
    uint32_t hole = i;
    for (uint32_t j = (hole + 1) & kv->idx_mask; kv->idx[j] != NONE; j = (j + 1) & kv->idx_mask) {
        uint32_t home = (uint32_t)kv->blocks[kv->idx[j]].hash & kv->idx_mask;
        /* move j into the hole when its home is not in (hole, j] (cyclically) */
        if (((j - home) & kv->idx_mask) >= ((j - hole) & kv->idx_mask)) {
            kv->idx[hole] = kv->idx[j];
            hole = j;
        }
    }
    kv->idx[hole] = NONE;
    kv->blocks[b].indexed = 0;
}

/* ---------------------------------------------------------------- block lists ---------------- */

static void lru_unlink(mn_kv *kv, int32_t b) {
    kv_block *bl = &kv->blocks[b];
    if (bl->prev != NONE) kv->blocks[bl->prev].next = bl->next;
    else kv->lru_head = bl->next;
    if (bl->next != NONE) kv->blocks[bl->next].prev = bl->prev;
    else kv->lru_tail = bl->prev;
    bl->prev = bl->next = NONE;
    kv->n_cached--;
}

static void lru_push(mn_kv *kv, int32_t b) {
    kv_block *bl = &kv->blocks[b];
    bl->prev = kv->lru_tail;
    bl->next = NONE;
    if (kv->lru_tail != NONE) kv->blocks[kv->lru_tail].next = b;
    else kv->lru_head = b;
    kv->lru_tail = b;
    kv->n_cached++;
}

static void free_push(mn_kv *kv, int32_t b) {
    kv_block *bl = &kv->blocks[b];
    bl->n_tok = 0;
    bl->hash = bl->parent_hash = 0;
    bl->next = kv->free_head;
    kv->free_head = b;
    kv->n_free_list++;
}

static int32_t block_alloc(mn_kv *kv) {
    int32_t b;
    if (kv->free_head != NONE) {
        b = kv->free_head;
        kv->free_head = kv->blocks[b].next;
        kv->n_free_list--;
    } else if (kv->lru_head != NONE) {
        b = kv->lru_head; /* evict the least recently released cached block */
        lru_unlink(kv, b);
        idx_remove(kv, b);
    } else {
        return NONE;
    }
    kv_block *bl = &kv->blocks[b];
    bl->ref = 1;
    bl->n_tok = 0;
    bl->hash = bl->parent_hash = 0;
    bl->prev = bl->next = NONE;
    return b;
}

static void block_release(mn_kv *kv, int32_t b) {
    kv_block *bl = &kv->blocks[b];
    if (--bl->ref > 0) return;
    if (bl->indexed) lru_push(kv, b);
    else free_push(kv, b);
}

/* ---------------------------------------------------------------- public calls --------------- */

int64_t mn_kv_blocks_for_bytes(int32_t n_layer, uint64_t row_size, uint64_t bytes) {
    uint64_t per = (uint64_t)n_layer * B * row_size * 2u;
    return per ? (int64_t)(bytes / per) : 0;
}

void mn_kv_free(mn_kv *kv) {
    if (!kv) return;
    if (kv->seqs)
        for (int32_t s = 0; s < kv->n_seq; s++) free(kv->seqs[s].table);
    free(kv->seqs);
    free(kv->blocks);
    free(kv->idx);
    free(kv->k);
    free(kv->v);
    free(kv);
}

mn_status mn_kv_create(int32_t n_layer, uint64_t row_size, int32_t n_blocks, int32_t n_seq, int32_t max_pos,
                       mn_kv **out, mn_error *err) {
    *out = NULL;
    MN_RETURN_IF(n_layer <= 0 || row_size == 0 || row_size > (1u << 24) || n_blocks <= 0 || n_seq <= 0 ||
                     max_pos <= 0 || n_blocks > (1 << 28),
                 err, MN_EINVAL, "invalid KV cache geometry (%d layers, %llu-byte rows, %d blocks, %d sequences)",
                 n_layer, (unsigned long long)row_size, n_blocks, n_seq);
    mn_kv *kv = calloc(1, sizeof *kv);
    MN_RETURN_IF(!kv, err, MN_ENOMEM, "out of memory");
    kv->n_layer = n_layer;
    kv->row_size = row_size;
    kv->n_blocks = n_blocks;
    kv->n_seq = n_seq;
    kv->max_pos = max_pos;
    kv->max_blocks = (max_pos + B - 1) / B;
    kv->block_bytes = (size_t)n_layer * B * (size_t)row_size;
    uint32_t cap = 1;
    while (cap < 2u * (uint32_t)n_blocks) cap <<= 1;
    kv->idx_mask = cap - 1;
    size_t bytes = kv->block_bytes * (size_t)n_blocks;
    if (posix_memalign((void **)&kv->k, 64, bytes) != 0) kv->k = NULL;
    if (posix_memalign((void **)&kv->v, 64, bytes) != 0) kv->v = NULL;
    kv->blocks = calloc((size_t)n_blocks, sizeof *kv->blocks);
    kv->seqs = calloc((size_t)n_seq, sizeof *kv->seqs);
    kv->idx = malloc((size_t)cap * sizeof *kv->idx);
    if (!kv->k || !kv->v || !kv->blocks || !kv->seqs || !kv->idx) goto oom;
    for (int32_t s = 0; s < n_seq; s++) {
        kv->seqs[s].table = malloc((size_t)kv->max_blocks * sizeof(int32_t));
        if (!kv->seqs[s].table) goto oom;
    }
    memset(kv->k, 0, bytes); /* touch now: allocation failures surface here, not mid-request */
    memset(kv->v, 0, bytes);
    for (uint32_t i = 0; i < cap; i++) kv->idx[i] = NONE;
    kv->free_head = kv->lru_head = kv->lru_tail = NONE;
    for (int32_t b = n_blocks - 1; b >= 0; b--) {
        kv->blocks[b].prev = kv->blocks[b].next = NONE;
        free_push(kv, b);
    }
    *out = kv;
    return MN_OK;
oom:
    mn_kv_free(kv);
    return mn_error_set(err, MN_ENOMEM, "out of memory allocating a KV cache of %d blocks (%.1f MB)", n_blocks,
                        2.0 * (double)bytes / 1048576.0);
}

int32_t mn_kv_len(const mn_kv *kv, int32_t seq) { return kv->seqs[seq].len; }

mn_status mn_kv_reserve(mn_kv *kv, int32_t seq, int32_t n) {
    kv_seq *s = &kv->seqs[seq];
    int64_t end = (int64_t)s->len + n;
    if (end > kv->max_pos) return MN_EFULL;
    int32_t need = (int32_t)((end + B - 1) / B);
    int32_t had = s->n_blocks;
    while (s->n_blocks < need) {
        int32_t b = block_alloc(kv);
        if (b == NONE) {
            while (s->n_blocks > had) block_release(kv, s->table[--s->n_blocks]);
            return MN_EFULL;
        }
        s->table[s->n_blocks++] = b;
    }
    return MN_OK;
}

void mn_kv_unreserve(mn_kv *kv, int32_t seq) {
    kv_seq *s = &kv->seqs[seq];
    int32_t keep = (s->len + B - 1) / B;
    while (s->n_blocks > keep) block_release(kv, s->table[--s->n_blocks]);
}

void mn_kv_commit(mn_kv *kv, int32_t seq, const int32_t *tokens, int32_t n) {
    kv_seq *s = &kv->seqs[seq];
    for (int32_t i = 0; i < n; i++) {
        int32_t p = s->len + i, lb = p / B;
        kv_block *bl = &kv->blocks[s->table[lb]];
        bl->tokens[p % B] = tokens[i];
        bl->n_tok = p % B + 1;
        if (bl->n_tok == B) {
            bl->parent_hash = lb > 0 ? kv->blocks[s->table[lb - 1]].hash : 0;
            bl->hash = block_hash(bl->parent_hash, bl->tokens);
            if (!bl->indexed && idx_find(kv, bl->hash, bl->parent_hash, bl->tokens) == NONE)
                idx_insert(kv, s->table[lb]);
        }
    }
    s->len += n;
}

static size_t block_offset(const mn_kv *kv, int32_t block, int32_t layer) {
    return (size_t)block * kv->block_bytes + (size_t)layer * B * (size_t)kv->row_size;
}

void *mn_kv_k(const mn_kv *kv, int32_t seq, int32_t layer, int32_t pos) {
    return kv->k + block_offset(kv, kv->seqs[seq].table[pos / B], layer) + (size_t)(pos % B) * kv->row_size;
}

void *mn_kv_v(const mn_kv *kv, int32_t seq, int32_t layer, int32_t pos) {
    return kv->v + block_offset(kv, kv->seqs[seq].table[pos / B], layer) + (size_t)(pos % B) * kv->row_size;
}

const void *mn_kv_block_k(const mn_kv *kv, int32_t seq, int32_t layer, int32_t b) {
    return kv->k + block_offset(kv, kv->seqs[seq].table[b], layer);
}

const void *mn_kv_block_v(const mn_kv *kv, int32_t seq, int32_t layer, int32_t b) {
    return kv->v + block_offset(kv, kv->seqs[seq].table[b], layer);
}

mn_status mn_kv_truncate(mn_kv *kv, int32_t seq, int32_t pos) {
    kv_seq *s = &kv->seqs[seq];
    if (pos >= s->len) {
        mn_kv_unreserve(kv, seq);
        return MN_OK;
    }
    int32_t keep = (pos + B - 1) / B;
    if (pos % B != 0) {
        int32_t lb = pos / B, b = s->table[lb];
        kv_block *bl = &kv->blocks[b];
        if (bl->ref > 1) { /* shared: copy the kept part into a private block first */
            int32_t nb = block_alloc(kv);
            if (nb == NONE) return MN_EFULL;
            size_t bytes = kv->block_bytes;
            memcpy(kv->k + (size_t)nb * bytes, kv->k + (size_t)b * bytes, bytes);
            memcpy(kv->v + (size_t)nb * bytes, kv->v + (size_t)b * bytes, bytes);
            memcpy(kv->blocks[nb].tokens, bl->tokens, sizeof bl->tokens);
            block_release(kv, b);
            s->table[lb] = nb;
            bl = &kv->blocks[nb];
        } else if (bl->indexed) {
            idx_remove(kv, b); /* its content is about to change */
        }
        bl->n_tok = pos % B;
        bl->hash = bl->parent_hash = 0;
    }
    while (s->n_blocks > keep) block_release(kv, s->table[--s->n_blocks]);
    s->len = pos;
    return MN_OK;
}

int32_t mn_kv_attach_prefix(mn_kv *kv, int32_t seq, const int32_t *tokens, int32_t n) {
    kv_seq *s = &kv->seqs[seq];
    if (s->len != 0 || s->n_blocks != 0 || n <= 1) return 0;
    int32_t max = (n - 1) / B;
    if (max > kv->max_blocks) max = kv->max_blocks;
    uint64_t parent = 0;
    for (int32_t i = 0; i < max; i++) {
        uint64_t h = block_hash(parent, tokens + (size_t)i * B);
        int32_t b = idx_find(kv, h, parent, tokens + (size_t)i * B);
        if (b == NONE) break;
        kv_block *bl = &kv->blocks[b];
        if (bl->ref == 0) lru_unlink(kv, b);
        bl->ref++;
        s->table[s->n_blocks++] = b;
        parent = h;
    }
    s->len = s->n_blocks * B;
    return s->len;
}

void mn_kv_get_stats(const mn_kv *kv, mn_kv_stats *out) {
    out->block_size = B;
    out->n_blocks = kv->n_blocks;
    out->n_free = kv->n_free_list + kv->n_cached;
    out->n_cached = kv->n_cached;
    out->bytes = 2u * kv->block_bytes * (uint64_t)kv->n_blocks;
}
