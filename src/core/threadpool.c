/*
 * threadpool.c: the persistent worker pool (see threadpool.h).
 *
 * A job is n chunks of work. The caller publishes the job and then claims chunks itself; workers
 * that are awake claim chunks too. Claiming is a compare-and-swap on one 64-bit word holding
 * (job generation << 32 | next chunk), so a worker that was preempted and wakes up late can never
 * run a chunk of a job that is over: its CAS names the old generation and fails. The caller waits
 * only for chunks that were claimed to finish (`done` == n), never for a worker merely to show up;
 * a core that is busy with something else therefore costs at most the chunk it holds.
 *
 * Why a job's fields can be read without a lock: before rewriting fn/arg/n for job g+1 the caller
 * stores a "closed" word (generation g+1, index CLOSED), so from then on no CAS naming generation g
 * can succeed; it then writes the fields and publishes (g+1, 0) with release. A worker reads the
 * claim word (acquire), then the fields, then CASes the claim word from the value it read; a
 * successful CAS proves the word did not change since the read, so the fields it read belong to
 * that generation and were complete (an index of CLOSED is never claimed).
 *
 * Idle workers spin a bounded number of steps (yielding the core every 64, which matters when the
 * machine is oversubscribed), then sleep on a condition variable.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/status.h"

#define SPIN_ITERS 20000
#define CLOSED 0xffffffffu /* claim index while a job's fields are being written */

typedef void (*chunk_fn)(void *arg, int64_t chunk, int ith);

typedef struct worker {
    struct mn_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct mn_pool {
    int n_threads;
    worker *workers; /* n_threads - 1 entries */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint_fast64_t claim; /* generation << 32 | next chunk */
    atomic_llong done;          /* chunks of the current job finished */
    atomic_int sleepers;
    atomic_int stop;
    /* the current job; written by the caller only while the claim word is CLOSED. Atomic (relaxed)
     * because a late worker may read them while they change: it then fails its CAS (see top) */
    _Atomic(chunk_fn) fn;
    _Atomic(void *) arg;
    atomic_llong n;
    atomic_int max_threads;
    /* adapter state for mn_pool_run */
    mn_pool_fn run_fn;
    void *run_arg;
    int run_nth;
};

int mn_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/* One spin-wait step; every 64th yields the core to whoever needs it. */
static inline void cpu_relax(int i) {
    if ((i & 63) == 63) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of the job published as generation `gen` until none are left.
 * Returns when the claim word shows another generation or the chunks are exhausted. */
static void work_on(mn_pool *pool, uint64_t word, int ith) {
    uint64_t gen = word >> 32;
    chunk_fn fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
    void *arg = atomic_load_explicit(&pool->arg, memory_order_relaxed);
    int64_t n = atomic_load_explicit(&pool->n, memory_order_relaxed);
    if (ith >= atomic_load_explicit(&pool->max_threads, memory_order_relaxed)) return;
    for (;;) {
        uint64_t idx = word & 0xffffffffu;
        if ((word >> 32) != gen || (int64_t)idx >= n) return;
        if (atomic_compare_exchange_weak_explicit(&pool->claim, &word, word + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            fn(arg, (int64_t)idx, ith);
            atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
            word = atomic_load_explicit(&pool->claim, memory_order_acquire);
        }
        /* on CAS failure `word` holds the current value: loop re-checks generation and index */
    }
}

static void *worker_main(void *p) {
    worker *w = p;
    mn_pool *pool = w->pool;
    uint64_t seen = 0; /* generation last worked on */
    for (;;) {
        /* a new job: another generation whose index is not CLOSED (fields still being written) */
#define NO_NEW_JOB(w) (((w) >> 32) == seen || ((w) & 0xffffffffu) == CLOSED)
        uint64_t word = atomic_load_explicit(&pool->claim, memory_order_acquire);
        for (int i = 0; NO_NEW_JOB(word) && i < SPIN_ITERS; i++) {
            cpu_relax(i);
            word = atomic_load_explicit(&pool->claim, memory_order_acquire);
        }
        if (NO_NEW_JOB(word)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1); /* seq_cst: pairs with the caller's publish + check */
            while (!atomic_load(&pool->stop) && NO_NEW_JOB(word = atomic_load(&pool->claim)))
                pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
            if (atomic_load(&pool->stop)) return NULL;
        }
        seen = word >> 32;
        work_on(pool, word, w->index);
    }
#undef NO_NEW_JOB
}

mn_status mn_pool_create(int n_threads, mn_pool **out, mn_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = mn_cpu_count();
    MN_RETURN_IF(n_threads > 1024, err, MN_EINVAL, "thread count %d is larger than 1024", n_threads);
    mn_pool *pool = calloc(1, sizeof *pool);
    MN_RETURN_IF(!pool, err, MN_ENOMEM, "out of memory creating thread pool");
    pool->n_threads = 1;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            mn_pool_free(pool);
            return mn_error_set(err, MN_ENOMEM, "out of memory creating thread pool");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            pool->workers[i].pool = pool;
            pool->workers[i].index = i + 1;
            if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
                mn_pool_free(pool); /* joins the ones started so far */
                return mn_error_set(err, MN_ENOMEM, "cannot start worker thread %d", i + 1);
            }
            pool->n_threads = i + 2;
        }
    }
    *out = pool;
    return MN_OK;
}

void mn_pool_free(mn_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_threads - 1; i++) pthread_join(pool->workers[i].thread, NULL);
    free(pool->workers);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool);
}

int mn_pool_size(const mn_pool *pool) { return pool->n_threads; }

void mn_pool_for(mn_pool *pool, int64_t n_chunks, int max_threads,
                 void (*fn)(void *arg, int64_t chunk, int ith), void *arg) {
    if (n_chunks <= 0) return;
    if (max_threads <= 0 || max_threads > pool->n_threads) max_threads = pool->n_threads;
    if (max_threads == 1 || n_chunks == 1 || n_chunks >= ((int64_t)1 << 31)) {
        for (int64_t c = 0; c < n_chunks; c++) fn(arg, c, 0);
        return;
    }
    uint64_t gen = (atomic_load_explicit(&pool->claim, memory_order_relaxed) >> 32) + 1;
    /* close the old generation before touching the fields a late worker may still be reading */
    atomic_store(&pool->claim, gen << 32 | CLOSED);
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&pool->n, n_chunks, memory_order_relaxed);
    atomic_store_explicit(&pool->max_threads, max_threads, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    uint64_t word = gen << 32;
    atomic_store(&pool->claim, word); /* seq_cst: publish, then look for sleepers (Dekker) */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    work_on(pool, word, 0);
    for (int i = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < n_chunks; i++) cpu_relax(i);
}

static void run_adapter(void *arg, int64_t chunk, int ith) {
    (void)ith;
    mn_pool *pool = arg;
    pool->run_fn(pool->run_arg, (int)chunk, pool->run_nth);
}

void mn_pool_run(mn_pool *pool, mn_pool_fn fn, void *arg, int nth) {
    if (nth <= 0 || nth > pool->n_threads) nth = pool->n_threads;
    if (nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->run_fn = fn;
    pool->run_arg = arg;
    pool->run_nth = nth;
    mn_pool_for(pool, nth, nth, run_adapter, pool);
}
