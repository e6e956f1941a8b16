/*
 * threadpool.h: one persistent pool of worker threads per context. mn_pool_run(pool, fn, arg)
 * calls fn(arg, ith, nth) on nth threads (the caller is thread 0) and returns when all are done.
 * Workers spin briefly on the job counter (a step's ops follow each other within microseconds),
 * then sleep on a condition variable, so an idle pool costs no CPU and a briefly preempted core
 * does not make others spin unboundedly.
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
/* Runs fn on min(nth, size) threads (nth <= 0: all). Not reentrant: one caller at a time. */
void mn_pool_run(mn_pool *pool, mn_pool_fn fn, void *arg, int nth);

/* Number of online CPUs (>= 1). */
int mn_cpu_count(void);

#endif
