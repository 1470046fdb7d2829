/* pool.c - size classes with bounded per-thread free lists (pool.h). */
#include "util/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif

#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size)   ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

/* Up to 256 bytes: steps of 16 (16 classes); above, eight steps per power of two up to
 * MOQ_POOL_MAX_SIZE (8 x 8 classes): a block is less than 16 bytes or 1/8 larger than asked
 * for. */
#define SMALL_MAX    256u
#define SMALL_STEP   16u
#define SMALL_COUNT  (SMALL_MAX / SMALL_STEP)
#define STEPS_PER_P2 8u
#define CLASS_COUNT  (SMALL_COUNT + 8u * STEPS_PER_P2)

/* A thread that frees more of a class than it allocates (a worker that receives another
 * worker's chunks) parks its surplus in batches of BATCH_BYTES (at least two blocks, at
 * most BATCH_MAX) in one of the class's CENTRAL_SLOTS, where a thread that allocates more
 * than it frees takes a batch back whole. A batch moves with one atomic exchange or
 * compare-exchange: no lock, and no ABA (a slot is only emptied by an exchange and only
 * filled when empty).
 * A batch is parked as soon as the thread has freed a batch more than it allocated of the
 * class (counted in `surplus`, which remembers at most SURPLUS_FLOOR allocations): the
 * thread that allocates them gets them back while they flow, instead of once the freeing
 * thread's list is full - by then it would have allocated that many from the system. The
 * slots absorb the bursts (a group's frames are freed together, allocated one by one). */
#define BATCH_BYTES   (16u << 10)
#define BATCH_MAX     (MOQ_POOL_CLASS_MAX / 4)
#define CENTRAL_SLOTS 32u
#define SURPLUS_FLOOR (-(int32_t)MOQ_POOL_CLASS_MAX)

/* A cached block keeps the link to the next one in its last word: under AddressSanitizer the
 * rest of the block is poisoned, and that word is not (LeakSanitizer does not follow
 * pointers stored in poisoned memory). At the end, a use after free of a block's first bytes
 * - a chunk's reference count - is still reported. Class sizes are multiples of 16. */
struct free_block;

static struct free_block **link_of(struct free_block *b, size_t block)
{
    return (struct free_block **)((char *)b + block) - 1;
}

static size_t block_of_class(unsigned i)
{
    if (i < SMALL_COUNT) return (size_t)(i + 1) * SMALL_STEP;
    unsigned k = 8 + (i - SMALL_COUNT) / STEPS_PER_P2, step = (i - SMALL_COUNT) % STEPS_PER_P2;
    return (size_t)(STEPS_PER_P2 + step + 1) << (k - 3);
}

struct thread_cache {
    struct free_block *head[CLASS_COUNT];
    uint32_t count[CLASS_COUNT];
    int32_t surplus[CLASS_COUNT]; /* frees minus allocations, at least SURPLUS_FLOOR */
    size_t bytes;
    unsigned generation;
    bool registered; /* the exit destructor is armed */
    bool exited;     /* past the destructor: no more caching on this thread */
};

static _Thread_local struct thread_cache cache;
static _Atomic(struct free_block *) central[CLASS_COUNT][CENTRAL_SLOTS];
static atomic_uint generation;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static unsigned floor_log2(size_t v)
{
    return (unsigned)(sizeof(unsigned long long) * 8 - 1) - (unsigned)__builtin_clzll(v);
}

/* Class index of size (1 .. MOQ_POOL_MAX_SIZE) and, in *block, that class's block size. */
static unsigned class_of(size_t size, size_t *block)
{
    if (size <= SMALL_MAX) {
        unsigned i = (unsigned)((size + SMALL_STEP - 1) / SMALL_STEP) - 1;
        *block = (size_t)(i + 1) * SMALL_STEP;
        return i;
    }
    size_t s = size - 1;
    unsigned k = floor_log2(s); /* 8 .. 15: s is in [2^k, 2^(k+1)) */
    unsigned shift = k - 3;
    unsigned step = (unsigned)(s >> shift) & (STEPS_PER_P2 - 1);
    *block = (size_t)(STEPS_PER_P2 + step + 1) << shift;
    return SMALL_COUNT + (k - 8) * STEPS_PER_P2 + step;
}

size_t moq_pool_class_size(size_t size)
{
    if (size == 0) size = 1;
    if (size > MOQ_POOL_MAX_SIZE) return size;
    size_t block;
    class_of(size, &block);
    return block;
}

static unsigned batch_len(size_t block)
{
    size_t n = BATCH_BYTES / block;
    return n < 2 ? 2 : n > BATCH_MAX ? BATCH_MAX : (unsigned)n;
}

static void free_list(struct free_block *b, size_t block)
{
    while (b) {
        struct free_block *next = *link_of(b, block);
        ASAN_UNPOISON_MEMORY_REGION(b, block);
        free(b);
        b = next;
    }
}

static void release_cache(struct thread_cache *tc)
{
    for (unsigned i = 0; i < CLASS_COUNT; i++) {
        free_list(tc->head[i], block_of_class(i));
        tc->head[i] = NULL;
        tc->count[i] = 0;
        tc->surplus[i] = 0;
    }
    tc->bytes = 0;
}

static void release_central(void)
{
    for (unsigned i = 0; i < CLASS_COUNT; i++)
        for (unsigned j = 0; j < CENTRAL_SLOTS; j++)
            free_list(atomic_exchange_explicit(&central[i][j], NULL, memory_order_acquire),
                      block_of_class(i));
}

/* Unlink the first n blocks of class i from this thread's list. */
static struct free_block *take_batch(struct thread_cache *tc, unsigned i, size_t block, unsigned n)
{
    struct free_block *first = tc->head[i], *last = first;
    for (unsigned k = 1; k < n; k++)
        last = *link_of(last, block);
    tc->head[i] = *link_of(last, block);
    *link_of(last, block) = NULL;
    tc->count[i] -= n;
    tc->bytes -= n * block;
    return first;
}

static bool park(unsigned i, struct free_block *batch)
{
    for (unsigned j = 0; j < CENTRAL_SLOTS; j++) {
        struct free_block *empty = NULL;
        if (atomic_compare_exchange_strong_explicit(&central[i][j], &empty, batch,
                                                    memory_order_release, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Move a batch of class i from this thread's list to a free central slot, or to the system
 * allocator when every slot is taken or the list is shorter than a batch. */
static void spill(struct thread_cache *tc, unsigned i, size_t block)
{
    unsigned n = batch_len(block);
    bool whole = tc->count[i] >= n;
    struct free_block *first = take_batch(tc, i, block, whole ? n : tc->count[i]);
    if (whole && park(i, first)) return;
    free_list(first, block);
}

/* This thread freed a batch more of class i than it allocated: park one if a slot is free
 * (when none is, the list keeps it, within its bounds). */
static void pass_on(struct thread_cache *tc, unsigned i, size_t block)
{
    unsigned n = batch_len(block);
    if (tc->count[i] < n) return;
    tc->surplus[i] = 0;
    struct free_block *first = take_batch(tc, i, block, n);
    if (park(i, first)) return;
    /* Every slot is taken: back to the list. */
    struct free_block *last = first;
    for (unsigned k = 1; k < n; k++)
        last = *link_of(last, block);
    *link_of(last, block) = tc->head[i];
    tc->head[i] = first;
    tc->count[i] += n;
    tc->bytes += n * block;
}

/* Take a parked batch of class i into this thread's (empty) list. */
static bool refill(struct thread_cache *tc, unsigned i, size_t block)
{
    unsigned n = batch_len(block);
    if (tc->bytes + n * block > MOQ_POOL_THREAD_BYTES) return false;
    for (unsigned j = 0; j < CENTRAL_SLOTS; j++) {
        if (!atomic_load_explicit(&central[i][j], memory_order_relaxed)) continue;
        struct free_block *b = atomic_exchange_explicit(&central[i][j], NULL, memory_order_acquire);
        if (!b) continue;
        tc->head[i] = b;
        tc->count[i] = n;
        tc->bytes += n * block;
        return true;
    }
    return false;
}

static void on_thread_exit(void *arg)
{
    struct thread_cache *tc = arg;
    release_cache(tc);
    tc->exited = true;
}

static void make_exit_key(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
}

/* This thread's cache, emptied first when moq_pool_release_all ran since its last use. */
static struct thread_cache *current_cache(void)
{
    struct thread_cache *tc = &cache;
    unsigned g = atomic_load_explicit(&generation, memory_order_relaxed);
    if (tc->generation != g) {
        release_cache(tc);
        tc->generation = g;
    }
    return tc;
}

void *moq_pool_alloc(size_t size)
{
    if (size == 0) size = 1;
    if (size > MOQ_POOL_MAX_SIZE) return malloc(size);
    size_t block;
    unsigned i = class_of(size, &block);
    struct thread_cache *tc = current_cache();
    if (tc->surplus[i] > SURPLUS_FLOOR) tc->surplus[i]--;
    if (!tc->head[i]) refill(tc, i, block);
    struct free_block *b = tc->head[i];
    if (!b) {
        void *p = malloc(block);
        if (p) ASAN_POISON_MEMORY_REGION((char *)p + size, block - size);
        return p;
    }
    tc->head[i] = *link_of(b, block);
    tc->count[i]--;
    tc->bytes -= block;
    ASAN_UNPOISON_MEMORY_REGION(b, size);
    return b;
}

void *moq_pool_calloc(size_t size)
{
    void *p = moq_pool_alloc(size);
    if (p) memset(p, 0, size ? size : 1);
    return p;
}

void moq_pool_free(void *p, size_t size)
{
    if (!p) return;
    if (size == 0) size = 1;
    if (size > MOQ_POOL_MAX_SIZE) {
        free(p);
        return;
    }
    size_t block;
    unsigned i = class_of(size, &block);
    struct thread_cache *tc = current_cache();
    if (tc->exited) {
        ASAN_UNPOISON_MEMORY_REGION(p, block);
        free(p);
        return;
    }
    if (!tc->registered) {
        pthread_once(&exit_key_once, make_exit_key);
        pthread_setspecific(exit_key, tc);
        tc->registered = true;
    }
    struct free_block *b = p;
    ASAN_POISON_MEMORY_REGION(b, block - sizeof(b));
    ASAN_UNPOISON_MEMORY_REGION(link_of(b, block), sizeof(b));
    *link_of(b, block) = tc->head[i];
    tc->head[i] = b;
    tc->count[i]++;
    tc->bytes += block;
    if (tc->count[i] > MOQ_POOL_CLASS_MAX || tc->bytes > MOQ_POOL_THREAD_BYTES)
        spill(tc, i, block);
    else if (++tc->surplus[i] >= (int32_t)batch_len(block))
        pass_on(tc, i, block);
}

void *moq_pool_realloc(void *p, size_t old, size_t size)
{
    if (p && moq_pool_class_size(old) == moq_pool_class_size(size)) {
        ASAN_UNPOISON_MEMORY_REGION(p, size);
        if (size < old) ASAN_POISON_MEMORY_REGION((char *)p + size, old - size);
        return p;
    }
    void *n = moq_pool_alloc(size);
    if (!n) return NULL;
    if (p) {
        memcpy(n, p, old < size ? old : size);
        moq_pool_free(p, old);
    }
    return n;
}

void moq_pool_release_thread(void)
{
    release_cache(&cache);
}

void moq_pool_release_all(void)
{
    atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
    release_cache(&cache);
    release_central();
}

size_t moq_pool_thread_cached(void)
{
    return cache.bytes;
}
