/*
 * memtrim.h - when to hand freed heap memory back to the system. The allocator keeps what a
 * load peak freed (glibc returns only the top of its heap by itself), so after thousands of
 * sessions leave, RSS would stay at the peak. The policy: once no session started for
 * `quiet_us`, trim when the load fell (fewer sessions than the most seen since the last
 * trim), or when the allocator holds MOQ_MEMTRIM_MIN_FREE more free bytes than right after
 * the last trim (memory freed later: lingering broadcasts, closing connections). Checked at
 * most once per `quiet_us`. Sans-I/O: callers pass the time and the free bytes, and call
 * moq_memtrim_release when moq_memtrim_due says so. Nothing is allocated.
 */
#ifndef MOQ_UTIL_MEMTRIM_H
#define MOQ_UTIL_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOQ_MEMTRIM_MIN_FREE (8u << 20)

typedef struct moq_memtrim {
    uint64_t quiet_us;      /* 0 = never trim */
    size_t peak;            /* most sessions at once since the last trim */
    uint64_t last_start_us; /* when the last session started */
    uint64_t last_check_us; /* when moq_memtrim_due last looked */
    size_t free_after;      /* free heap bytes right after the last trim */
    uint64_t trims;         /* trims so far */
} moq_memtrim;

void moq_memtrim_init(moq_memtrim *m, uint64_t quiet_us, uint64_t now);
/* A session started; `sessions` counts it. */
void moq_memtrim_started(moq_memtrim *m, size_t sessions, uint64_t now);
/* Whether to trim now, with `sessions` open and `free_bytes` free in the heap (0 when
 * unknown); when true the peak restarts from `sessions`. */
bool moq_memtrim_due(moq_memtrim *m, size_t sessions, size_t free_bytes, uint64_t now);
/* Record the free heap bytes right after a trim. */
void moq_memtrim_done(moq_memtrim *m, size_t free_bytes);
/* Free bytes the allocator holds (glibc mallinfo2; 0 elsewhere or under sanitizers). */
size_t moq_memtrim_heap_free(void);
/* Bytes in use by the application (glibc mallinfo2; 0 elsewhere or under sanitizers). */
size_t moq_memtrim_heap_used(void);
/* Return free heap memory to the system (glibc malloc_trim; a no-op elsewhere). Returns
 * true when the allocator released something. */
bool moq_memtrim_release(void);

#endif
