/*
 * kv_cache.h: the paged KV cache with a prefix cache.
 *
 * Memory is one pool of blocks; a block holds MN_KV_BLOCK consecutive positions of one sequence for
 * every layer: k[layer][pos_in_block][row] (and v likewise), where a row is kv_dim values in the
 * cache's element type (f32, f16 or q8_0 blocks; see row_size). A sequence owns a block table
 * (logical block i -> pool block). Nothing is copied or reallocated as sequences grow.
 *
 * Prefix cache: when a block is full its identity is hash(parent block's hash, its B token ids), so
 * a hash names a whole prefix. Full blocks are entered in an index; when their last user leaves
 * they stay cached (refcount 0, on an LRU list) until the pool needs them. A new sequence whose
 * prompt starts with cached blocks attaches them (refcount + 1) instead of recomputing them.
 * Shared blocks are always full and never written again: appends go to fresh blocks, and
 * truncating into a shared block copies it first (copy-on-write).
 *
 * Not thread-safe: the owning mn_context serialises all calls; eval threads only read/write the
 * K/V storage of blocks reserved before the parallel section.
 */
#ifndef MN_KV_CACHE_H
#define MN_KV_CACHE_H

#include <stdint.h>

#include "minnow.h"

#define MN_KV_BLOCK 16

typedef struct mn_kv mn_kv;

/* n_blocks blocks of MN_KV_BLOCK positions for n_layer layers of rows of row_size bytes (kv_dim
 * values in the cache type); n_seq sequences of at most max_pos positions each. */
mn_status mn_kv_create(int32_t n_layer, uint64_t row_size, int32_t n_blocks, int32_t n_seq, int32_t max_pos,
                       mn_kv **out, mn_error *err);
void mn_kv_free(mn_kv *kv);

/* Blocks that fit in `bytes` (0 when not even one). */
int64_t mn_kv_blocks_for_bytes(int32_t n_layer, uint64_t row_size, uint64_t bytes);

int32_t mn_kv_len(const mn_kv *kv, int32_t seq);

/* Makes room for positions [len, len + n) of seq (allocating/evicting blocks). All or nothing:
 * MN_EFULL when the pool cannot supply the blocks (nothing changed). */
mn_status mn_kv_reserve(mn_kv *kv, int32_t seq, int32_t n);
/* Records that positions [len, len + n) of seq now hold these tokens' keys/values; registers
 * blocks that became full in the prefix index. */
void mn_kv_commit(mn_kv *kv, int32_t seq, const int32_t *tokens, int32_t n);
/* Releases reservations that were not committed (after a failed eval). */
void mn_kv_unreserve(mn_kv *kv, int32_t seq);

/* The K and V rows of position pos of seq in layer (pos < reserved length). */
void *mn_kv_k(const mn_kv *kv, int32_t seq, int32_t layer, int32_t pos);
void *mn_kv_v(const mn_kv *kv, int32_t seq, int32_t layer, int32_t pos);
/* K/V rows of logical block b (MN_KV_BLOCK consecutive rows, row_size bytes apart) of seq in layer. */
const void *mn_kv_block_k(const mn_kv *kv, int32_t seq, int32_t layer, int32_t b);
const void *mn_kv_block_v(const mn_kv *kv, int32_t seq, int32_t layer, int32_t b);

/* Forgets positions >= pos of seq (pos 0 frees the whole sequence). MN_EFULL only when a shared
 * block must be copied and no block is free. */
mn_status mn_kv_truncate(mn_kv *kv, int32_t seq, int32_t pos);

/* For an empty seq: attaches the longest chain of cached full blocks matching tokens[0..n) (at most
 * (n - 1) / MN_KV_BLOCK blocks, so at least one token is left to evaluate); returns positions
 * attached. */
int32_t mn_kv_attach_prefix(mn_kv *kv, int32_t seq, const int32_t *tokens, int32_t n);

void mn_kv_get_stats(const mn_kv *kv, mn_kv_stats *out);

#endif
