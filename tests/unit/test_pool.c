/* The size-class pool (src/util/pool.c) and chunks freed on other threads than their own. */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/chunk.h"
#include "util/pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static void class_sizes_round_up_by_less_than_an_eighth(void **state)
{
    (void)state;
    assert_int_equal(moq_pool_class_size(0), 16);
    assert_int_equal(moq_pool_class_size(1), 16);
    assert_int_equal(moq_pool_class_size(16), 16);
    assert_int_equal(moq_pool_class_size(17), 32);
    assert_int_equal(moq_pool_class_size(256), 256);
    assert_int_equal(moq_pool_class_size(257), 288);
    assert_int_equal(moq_pool_class_size(4096), 4096);
    assert_int_equal(moq_pool_class_size(4097), 4608);
    assert_int_equal(moq_pool_class_size(MOQ_POOL_MAX_SIZE), MOQ_POOL_MAX_SIZE);
    assert_int_equal(moq_pool_class_size(MOQ_POOL_MAX_SIZE + 1), MOQ_POOL_MAX_SIZE + 1);
    for (size_t size = 1; size <= MOQ_POOL_MAX_SIZE; size += 7) {
        size_t block = moq_pool_class_size(size);
        assert_true(block >= size);
        assert_true(size <= 256 ? block - size < 16 : (block - size) * 8 < size);
    }
}

static void a_freed_block_is_handed_out_again(void **state)
{
    (void)state;
    moq_pool_release_thread();
    void *p = moq_pool_alloc(100);
    assert_non_null(p);
    memset(p, 0xab, 100);
    moq_pool_free(p, 100);
    assert_int_equal(moq_pool_thread_cached(), moq_pool_class_size(100));
    /* Any size of the same class gets the same block; calloc zeroes it. */
    unsigned char *q = moq_pool_calloc(112);
    assert_ptr_equal(q, p);
    for (size_t i = 0; i < 112; i++)
        assert_int_equal(q[i], 0);
    assert_int_equal(moq_pool_thread_cached(), 0);
    moq_pool_free(q, 112);
    moq_pool_release_thread();
    assert_int_equal(moq_pool_thread_cached(), 0);
}

static void the_cache_is_bounded_per_class_and_per_thread(void **state)
{
    (void)state;
    moq_pool_release_all();
    enum { N = MOQ_POOL_CLASS_MAX + 50 };
    static void *blocks[N];
    for (size_t i = 0; i < N; i++)
        assert_non_null(blocks[i] = moq_pool_alloc(64));
    for (size_t i = 0; i < N; i++)
        moq_pool_free(blocks[i], 64);
    assert_true(moq_pool_thread_cached() <= MOQ_POOL_CLASS_MAX * 64);
    assert_true(moq_pool_thread_cached() > MOQ_POOL_CLASS_MAX * 64 / 2);
    /* The surplus was parked, not lost: with an empty cache, an allocation takes a batch. */
    moq_pool_release_thread();
    void *p = moq_pool_alloc(64);
    assert_true(moq_pool_thread_cached() > 0);
    moq_pool_free(p, 64);
    moq_pool_release_all();
    assert_int_equal(moq_pool_thread_cached(), 0);
    p = moq_pool_alloc(64); /* nothing parked any more */
    assert_int_equal(moq_pool_thread_cached(), 0);
    moq_pool_free(p, 64);

    /* Large blocks: the thread's byte bound comes first. */
    for (size_t i = 0; i < N; i++)
        assert_non_null(blocks[i] = moq_pool_alloc(MOQ_POOL_MAX_SIZE));
    for (size_t i = 0; i < N; i++)
        moq_pool_free(blocks[i], MOQ_POOL_MAX_SIZE);
    assert_true(moq_pool_thread_cached() <= MOQ_POOL_THREAD_BYTES);
    assert_true(moq_pool_thread_cached() >= MOQ_POOL_THREAD_BYTES - 2 * MOQ_POOL_MAX_SIZE);
    moq_pool_release_all();

    /* Above the largest class nothing is cached. */
    void *big = moq_pool_alloc(MOQ_POOL_MAX_SIZE + 1);
    assert_non_null(big);
    moq_pool_free(big, MOQ_POOL_MAX_SIZE + 1);
    assert_int_equal(moq_pool_thread_cached(), 0);
}

static void realloc_keeps_the_contents(void **state)
{
    (void)state;
    unsigned char *p = moq_pool_realloc(NULL, 0, 40);
    assert_non_null(p);
    for (unsigned i = 0; i < 40; i++)
        p[i] = (unsigned char)i;
    p = moq_pool_realloc(p, 40, 48); /* same class: same block */
    p = moq_pool_realloc(p, 48, 5000);
    assert_non_null(p);
    for (unsigned i = 0; i < 40; i++)
        assert_int_equal(p[i], i);
    p = moq_pool_realloc(p, 5000, 20);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(p[i], i);
    moq_pool_free(p, 20);
    moq_pool_release_thread();
}

/* ---- other threads ------------------------------------------------------------------- */

struct unref_job {
    moq_chunk **chunks;
    size_t n;
    size_t cached; /* the thread's cache after the unrefs */
};

static void *unref_all(void *arg)
{
    struct unref_job *job = arg;
    for (size_t i = 0; i < job->n; i++)
        moq_chunk_unref(job->chunks[i]);
    job->cached = moq_pool_thread_cached();
    return NULL; /* the thread's cache is released at its exit (LSan checks it) */
}

static void chunks_freed_on_another_thread(void **state)
{
    (void)state;
    enum { N = 64 };
    moq_chunk *chunks[N];
    static const char payload[13 + N] = "frame payload";
    size_t count = moq_chunk_live_count(), bytes = moq_chunk_live_bytes();
    for (size_t i = 0; i < N; i++) {
        chunks[i] = moq_chunk_copy(payload, 13 + i);
        assert_non_null(chunks[i]);
    }
    assert_int_equal(moq_chunk_live_count(), count + N);
    assert_int_equal(moq_chunk_live_bytes(), bytes + N * 13 + N * (N - 1) / 2);
    for (size_t i = 0; i < N; i++)
        moq_chunk_ref(chunks[i]); /* this thread keeps one reference each */

    struct unref_job job = {.chunks = chunks, .n = N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, unref_all, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(job.cached, 0); /* not the last reference: nothing freed there */
    assert_int_equal(moq_chunk_live_count(), count + N);

    /* The last references go on another thread: the chunks go to its cache. */
    assert_int_equal(pthread_create(&t, NULL, unref_all, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(job.cached > 0);
    assert_int_equal(moq_chunk_live_count(), count);
    assert_int_equal(moq_chunk_live_bytes(), bytes);
}

struct free_job {
    void **blocks;
    size_t n, size;
};

static void *free_all(void *arg)
{
    struct free_job *job = arg;
    for (size_t i = 0; i < job->n; i++)
        moq_pool_free(job->blocks[i], job->size);
    return NULL;
}

/* One thread allocates, another frees (a worker reading a publisher, a worker serving its
 * subscribers): what the second frees beyond its bound comes back to the first. */
static void blocks_freed_elsewhere_come_back(void **state)
{
    (void)state;
    moq_pool_release_all();
    enum { N = 2 * MOQ_POOL_CLASS_MAX };
    static void *blocks[N];
    for (size_t i = 0; i < N; i++)
        assert_non_null(blocks[i] = moq_pool_alloc(1000));
    assert_int_equal(moq_pool_thread_cached(), 0);
    struct free_job job = {.blocks = blocks, .n = N, .size = 1000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_all, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    void *p = moq_pool_alloc(1000);
    size_t batch = moq_pool_thread_cached() / moq_pool_class_size(1000) + 1;
    assert_true(batch >= 2);
    bool ours = false;
    for (size_t i = 0; i < N; i++)
        ours |= blocks[i] == p;
    assert_true(ours);
    moq_pool_free(p, 1000);
    moq_pool_release_all();
}

/* The freeing thread parks a batch as soon as it freed a batch more than it allocated, long
 * before its own list is full: the allocating thread gets them back while they flow instead
 * of allocating as many from the system first. */
static void a_surplus_is_passed_on_at_once(void **state)
{
    (void)state;
    moq_pool_release_all();
    size_t block = moq_pool_class_size(1000), batch = (16u << 10) / block;
    assert_true(batch >= 2 && 2 * batch < MOQ_POOL_CLASS_MAX); /* below the list's bound */
    static void *blocks[MOQ_POOL_CLASS_MAX];
    size_t n = 2 * batch;
    for (size_t i = 0; i < n; i++)
        assert_non_null(blocks[i] = moq_pool_alloc(1000));
    struct free_job job = {.blocks = blocks, .n = n, .size = 1000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_all, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (size_t round = 0; round < 2; round++) {
        blocks[0] = moq_pool_alloc(1000); /* a parked batch, not the system's */
        assert_int_equal(moq_pool_thread_cached(), (batch - 1) * block);
        for (size_t i = 1; i < batch; i++)
            assert_non_null(blocks[i] = moq_pool_alloc(1000)); /* the rest of that batch */
        assert_int_equal(moq_pool_thread_cached(), 0);
        for (size_t i = 0; i < batch; i++)
            moq_pool_free(blocks[i], 1000);
        moq_pool_release_thread(); /* the next one comes from the other parked batch */
    }
    moq_pool_release_all();
}

struct release_job {
    pthread_barrier_t cached, released;
    size_t before, after;
};

static void *cache_then_wait(void *arg)
{
    struct release_job *job = arg;
    void *p = moq_pool_alloc(200);
    moq_pool_free(p, 200);
    job->before = moq_pool_thread_cached();
    pthread_barrier_wait(&job->cached);
    pthread_barrier_wait(&job->released);
    moq_pool_free(moq_pool_alloc(3000), 3000); /* any pool call drops the old cache first */
    job->after = moq_pool_thread_cached();
    return NULL;
}

static void release_all_empties_other_threads_caches(void **state)
{
    (void)state;
    struct release_job job;
    pthread_barrier_init(&job.cached, NULL, 2);
    pthread_barrier_init(&job.released, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cache_then_wait, &job), 0);
    pthread_barrier_wait(&job.cached);
    moq_pool_release_all();
    pthread_barrier_wait(&job.released);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(job.before, moq_pool_class_size(200));
    assert_int_equal(job.after, moq_pool_class_size(3000)); /* the 200-byte block is gone */
    pthread_barrier_destroy(&job.cached);
    pthread_barrier_destroy(&job.released);
}

#ifdef TEST_ASAN
static void cached_blocks_are_poisoned_under_asan(void **state)
{
    (void)state;
    char *p = moq_pool_alloc(100);
    assert_false(__asan_address_is_poisoned(p + 99));
    assert_true(__asan_address_is_poisoned(p + 100)); /* past the size asked for */
    moq_pool_free(p, 100);
    assert_true(__asan_address_is_poisoned(p));
    assert_true(__asan_address_is_poisoned(p + 50));
    char *q = moq_pool_alloc(100);
    assert_ptr_equal(q, p);
    assert_false(__asan_address_is_poisoned(q + 50));
    moq_pool_free(q, 100);
    moq_pool_release_thread();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(class_sizes_round_up_by_less_than_an_eighth),
        cmocka_unit_test(a_freed_block_is_handed_out_again),
        cmocka_unit_test(the_cache_is_bounded_per_class_and_per_thread),
        cmocka_unit_test(realloc_keeps_the_contents),
        cmocka_unit_test(chunks_freed_on_another_thread),
        cmocka_unit_test(blocks_freed_elsewhere_come_back),
        cmocka_unit_test(a_surplus_is_passed_on_at_once),
        cmocka_unit_test(release_all_empties_other_threads_caches),
#ifdef TEST_ASAN
        cmocka_unit_test(cached_blocks_are_poisoned_under_asan),
#endif
    };
    int rv = cmocka_run_group_tests(tests, NULL, NULL);
    moq_pool_release_all();
    return rv;
}
