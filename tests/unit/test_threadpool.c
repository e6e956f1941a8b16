/*
 * test_threadpool.c: the persistent pool runs each job on exactly the threads asked for, every
 * thread sees the job's arguments, and back-to-back jobs (the forward pass issues hundreds per
 * token) never lose or duplicate work, including after workers have gone to sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/threadpool.h"

typedef struct job {
    atomic_int hits[64];
    atomic_int calls;
    int nth_seen[64];
} job;

static void count(void *arg, int ith, int nth) {
    job *j = arg;
    atomic_fetch_add(&j->hits[ith], 1);
    atomic_fetch_add(&j->calls, 1);
    j->nth_seen[ith] = nth;
}

static void test_runs_on_each_thread_once(void **state) {
    (void)state;
    mn_pool *p = NULL;
    assert_int_equal(mn_pool_create(4, &p, NULL), MN_OK);
    assert_int_equal(mn_pool_size(p), 4);
    for (int nth = 0; nth <= 6; nth++) {
        job j;
        memset(&j, 0, sizeof j);
        mn_pool_run(p, count, &j, nth);
        int expect = nth <= 0 || nth > 4 ? 4 : nth;
        assert_int_equal(atomic_load(&j.calls), expect);
        for (int i = 0; i < expect; i++) {
            assert_int_equal(atomic_load(&j.hits[i]), 1);
            assert_int_equal(j.nth_seen[i], expect);
        }
    }
    mn_pool_free(p);
}

static void test_many_back_to_back_jobs(void **state) {
    (void)state;
    mn_pool *p = NULL;
    assert_int_equal(mn_pool_create(2, &p, NULL), MN_OK);
    job j;
    memset(&j, 0, sizeof j);
    for (int r = 0; r < 20000; r++) mn_pool_run(p, count, &j, (r % 2) + 1);
    /* r%2+1 threads per run: thread 0 runs every time, thread 1 every other time */
    assert_int_equal(atomic_load(&j.hits[0]), 20000);
    assert_int_equal(atomic_load(&j.hits[1]), 10000);
    mn_pool_free(p);
}

static void test_jobs_after_sleep(void **state) {
    (void)state;
    mn_pool *p = NULL;
    assert_int_equal(mn_pool_create(2, &p, NULL), MN_OK);
    for (int r = 0; r < 3; r++) {
        usleep(20000); /* long enough for workers to stop spinning and sleep */
        job j;
        memset(&j, 0, sizeof j);
        mn_pool_run(p, count, &j, 2);
        assert_int_equal(atomic_load(&j.hits[0]), 1);
        assert_int_equal(atomic_load(&j.hits[1]), 1);
    }
    mn_pool_free(p);
}

typedef struct chunks {
    atomic_int ran[1000];
    atomic_int by_thread[8];
    int slow_chunk;
} chunks;

static void chunk_fn(void *arg, int64_t c, int ith) {
    chunks *ch = arg;
    atomic_fetch_add(&ch->ran[c], 1);
    atomic_fetch_add(&ch->by_thread[ith], 1);
    if (c == ch->slow_chunk) usleep(20000); /* a thread "preempted" inside one chunk */
}

/* Every chunk runs exactly once; while one thread is stuck in a chunk, the others take the rest. */
static void test_pool_for_chunks(void **state) {
    (void)state;
    mn_pool *p = NULL;
    assert_int_equal(mn_pool_create(2, &p, NULL), MN_OK);
    for (int round = 0; round < 200; round++) {
        chunks ch;
        memset(&ch, 0, sizeof ch);
        ch.slow_chunk = round == 10 ? 0 : -1;
        int n = 1 + round * 5 % 1000;
        mn_pool_for(p, n, 0, chunk_fn, &ch);
        for (int c = 0; c < n; c++) assert_int_equal(atomic_load(&ch.ran[c]), 1);
        assert_int_equal(atomic_load(&ch.by_thread[0]) + atomic_load(&ch.by_thread[1]), n);
        if (round == 10) { /* chunk 0 slept 20 ms: the other thread ran all of the rest */
            int a = atomic_load(&ch.by_thread[0]), b = atomic_load(&ch.by_thread[1]);
            assert_true(a == n - 1 || b == n - 1);
        }
    }
    /* max_threads = 1 runs on the caller alone */
    chunks ch;
    memset(&ch, 0, sizeof ch);
    ch.slow_chunk = -1;
    mn_pool_for(p, 100, 1, chunk_fn, &ch);
    assert_int_equal(atomic_load(&ch.by_thread[0]), 100);
    mn_pool_free(p);
}

static void test_single_thread_and_bounds(void **state) {
    (void)state;
    mn_pool *p = NULL;
    assert_int_equal(mn_pool_create(1, &p, NULL), MN_OK);
    job j;
    memset(&j, 0, sizeof j);
    mn_pool_run(p, count, &j, 8);
    assert_int_equal(atomic_load(&j.calls), 1);
    mn_pool_free(p);
    mn_pool_free(NULL);
    mn_error err = {0};
    assert_int_equal(mn_pool_create(100000, &p, &err), MN_EINVAL);
    assert_non_null(strstr(err.message, "thread"));
    assert_int_equal(mn_pool_create(0, &p, NULL), MN_OK); /* 0 = all cores */
    assert_int_equal(mn_pool_size(p), mn_cpu_count());
    mn_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_on_each_thread_once),
        cmocka_unit_test(test_many_back_to_back_jobs),
        cmocka_unit_test(test_jobs_after_sleep),
        cmocka_unit_test(test_pool_for_chunks),
        cmocka_unit_test(test_single_thread_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
