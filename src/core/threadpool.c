/*
 * threadpool.c: the persistent worker pool (see threadpool.h).
 *
 * Protocol: the caller publishes (fn, arg, nth) and bumps `generation` under the mutex, then wakes
 * sleepers. A worker that sees a new generation runs fn if its index < nth, then decrements
 * `pending`. The caller runs its own share as thread 0 and waits for pending == 0 (spinning
 * briefly, then on a condition variable). Workers spin a bounded number of iterations before
 * sleeping, so a sequence of short ops does not pay a futex wake-up per op.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/status.h"

#define SPIN_ITERS 20000

typedef struct worker {
    struct mn_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct mn_pool {
    int n_threads;
    worker *workers; /* n_threads - 1 entries */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint generation;
    atomic_int pending;
    atomic_int sleeping_caller;
    int stop;
    mn_pool_fn fn;
    void *arg;
    int nth;
};

int mn_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void finish_one(mn_pool *pool) {
    /* seq_cst pairs with the caller's store-then-load of sleeping_caller/pending (Dekker) */
    if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->sleeping_caller)) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_signal(&pool->cv_done);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void *worker_main(void *p) {
    worker *w = p;
    mn_pool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int i = 0; gen == seen && i < SPIN_ITERS; i++) {
            cpu_relax();
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mu);
            while (!pool->stop &&
                   (gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            int stop = pool->stop;
            pthread_mutex_unlock(&pool->mu);
            if (stop) return NULL;
        }
        seen = gen;
        /* fn/arg/nth were written before the generation bump (release) */
        if (w->index < pool->nth) pool->fn(pool->arg, w->index, pool->nth);
        finish_one(pool);
    }
}

mn_status mn_pool_create(int n_threads, mn_pool **out, mn_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = mn_cpu_count();
    MN_RETURN_IF(n_threads > 1024, err, MN_EINVAL, "thread count %d is larger than 1024", n_threads);
    mn_pool *pool = calloc(1, sizeof *pool);
    MN_RETURN_IF(!pool, err, MN_ENOMEM, "out of memory creating thread pool");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) goto fail;
        for (int i = 0; i < n_threads - 1; i++) {
            pool->workers[i].pool = pool;
            pool->workers[i].index = i + 1;
            if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
                pool->n_threads = i + 1; /* the ones started so far get joined by free */
                mn_pool_free(pool);
                return mn_error_set(err, MN_ENOMEM, "cannot start worker thread %d", i + 1);
            }
        }
    }
    *out = pool;
    return MN_OK;
fail:
    mn_pool_free(pool);
    return mn_error_set(err, MN_ENOMEM, "out of memory creating thread pool");
}

void mn_pool_free(mn_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    if (pool->workers)
        for (int i = 0; i < pool->n_threads - 1; i++) pthread_join(pool->workers[i].thread, NULL);
    free(pool->workers);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv_work);
    pthread_cond_destroy(&pool->cv_done);
    free(pool);
}

int mn_pool_size(const mn_pool *pool) { return pool->n_threads; }

void mn_pool_run(mn_pool *pool, mn_pool_fn fn, void *arg, int nth) {
    if (nth <= 0 || nth > pool->n_threads) nth = pool->n_threads;
    if (nth == 1 || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->nth = nth;
    /* every worker acknowledges every generation, even those with index >= nth */
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);

    fn(arg, 0, nth);

    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->sleeping_caller, 1);
    while (atomic_load(&pool->pending) != 0)
        pthread_cond_wait(&pool->cv_done, &pool->mu);
    atomic_store_explicit(&pool->sleeping_caller, 0, memory_order_relaxed);
    pthread_mutex_unlock(&pool->mu);
}
