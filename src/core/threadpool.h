/*
 * threadpool.h: one persistent pool of worker threads per context. Work is handed out as chunks:
 * mn_pool_for(pool, n, ...) runs fn(arg, chunk, ith) for every chunk in [0, n) on whichever threads
 * are awake (the caller takes part as ith 0) and returns when every chunk has run. A thread that is
 * preempted takes no chunks while it is away, so a core briefly busy with something else never
 * stalls a step. Idle workers spin briefly (ops follow each other within microseconds), then sleep.
 */
#ifndef MN_CORE_THREADPOOL_H
#define MN_CORE_THREADPOOL_H

#include "minnow.h"

typedef struct mn_pool mn_pool;
typedef void (*mn_pool_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: the number of online CPUs. */
mn_status mn_pool_create(int n_threads, mn_pool **out, mn_error *err);
void mn_pool_free(mn_pool *pool);
int mn_pool_size(const mn_pool *pool);
/* Runs fn(arg, chunk, ith) for chunk in [0, n_chunks) (n_chunks < 2^31), on at most max_threads
 * threads (<= 0: all); ith < max_threads identifies the thread (for per-thread scratch). No two
 * chunks with the same ith run at once. Not reentrant: one caller at a time. */
void mn_pool_for(mn_pool *pool, int64_t n_chunks, int max_threads,
                 void (*fn)(void *arg, int64_t chunk, int ith), void *arg);
/* fn(arg, ith, nth) for each ith in [0, nth) (nth <= 0 or > size: size), each exactly once, as
 * chunks of mn_pool_for: ith is a slice index, and slices may share a thread. */
void mn_pool_run(mn_pool *pool, mn_pool_fn fn, void *arg, int nth);

/* Number of online CPUs (>= 1). */
int mn_cpu_count(void);

#endif
