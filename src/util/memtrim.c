#include "util/memtrim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

void moq_memtrim_init(moq_memtrim *m, uint64_t quiet_us, uint64_t now)
{
    *m = (moq_memtrim){.quiet_us = quiet_us, .last_start_us = now, .last_check_us = now};
}

void moq_memtrim_started(moq_memtrim *m, size_t sessions, uint64_t now)
{
    if (sessions > m->peak) m->peak = sessions;
    m->last_start_us = now;
}

bool moq_memtrim_due(moq_memtrim *m, size_t sessions, size_t free_bytes, uint64_t now)
{
    if (m->quiet_us == 0 || now - m->last_start_us < m->quiet_us) return false;
    if (now - m->last_check_us < m->quiet_us) return false;
    m->last_check_us = now;
    bool fell = sessions < m->peak;
    bool freed = free_bytes >= m->free_after + MOQ_MEMTRIM_MIN_FREE;
    if (!fell && !freed) return false;
    m->peak = sessions;
    m->trims++;
    return true;
}

void moq_memtrim_done(moq_memtrim *m, size_t free_bytes)
{
    m->free_after = free_bytes;
}

size_t moq_memtrim_heap_free(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return mi.fordblks;
#else
    return 0;
#endif
}

size_t moq_memtrim_heap_used(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

bool moq_memtrim_release(void)
{
#ifdef __GLIBC__
    return malloc_trim(0) == 1;
#else
    return false;
#endif
}
