/*
 * pool.h - a size-class allocator with bounded per-thread caches, for what the fan-out path
 * allocates per frame, per group and per stream (chunks, group and stream state, send queue
 * rings, messages between workers).
 *
 * moq_pool_alloc(size) returns a block of at least `size` bytes; the caller owns it and
 * gives it back with moq_pool_free(p, size), passing the same size. A block may be freed on
 * another thread than the one that allocated it: it then goes to the freeing thread's cache.
 * Each thread caches freed blocks by size class, with no lock, up to MOQ_POOL_CLASS_MAX
 * blocks per class and MOQ_POOL_THREAD_BYTES in all. What a thread frees beyond that, and
 * what it frees more of a class than it allocates (a batch at a time, as soon as it has
 * one), is parked in process-wide slots (32 per class), a batch of up to 16 kB per atomic
 * exchange, where threads that allocate more than they free pick it up (a worker that reads
 * a publisher's frames gets back the chunks another worker freed); when the slots are full
 * it goes to the system allocator, as do sizes above MOQ_POOL_MAX_SIZE. A thread's cache is
 * released when the thread exits and by moq_pool_release_thread(); moq_pool_release_all()
 * (the relay's memory trim) frees the parked batches and every thread's cache, each at its
 * next pool call.
 *
 * Under AddressSanitizer cached blocks are poisoned, and the bytes between the size asked
 * for and the size class too, so a use after free or an overflow is still reported.
 */
#ifndef MOQ_UTIL_POOL_H
#define MOQ_UTIL_POOL_H

#include <stddef.h>

#define MOQ_POOL_MAX_SIZE     (64u << 10)
#define MOQ_POOL_CLASS_MAX    64u
#define MOQ_POOL_THREAD_BYTES (4u << 20)

/* A block of at least size bytes (uninitialised), or NULL on OOM. */
void *moq_pool_alloc(size_t size);
/* A zeroed block of at least size bytes, or NULL on OOM. */
void *moq_pool_calloc(size_t size);
/* Give back p (NULL is fine), allocated by this module with the same size. */
void moq_pool_free(void *p, size_t size);
/* Move p's first min(old, size) bytes into a block of size bytes; p is freed on success
 * and left alone on failure (NULL). p may be NULL (then old is 0). */
void *moq_pool_realloc(void *p, size_t old, size_t size);

/* The block size moq_pool_alloc(size) really hands out. */
size_t moq_pool_class_size(size_t size);

/* Free every block this thread caches. */
void moq_pool_release_thread(void);
/* Free the parked batches and this thread's cache now, every other thread's at its next
 * pool call. */
void moq_pool_release_all(void);
/* Bytes in this thread's cache. */
size_t moq_pool_thread_cached(void);

#endif
