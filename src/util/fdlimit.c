#include "util/fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

/* The kernel's ceiling for a soft limit when the hard one is RLIM_INFINITY. */
static rlim_t nr_open(void)
{
    rlim_t n = 1024 * 1024;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0) n = (rlim_t)v;
        fclose(f);
    }
    return n;
}

static uint64_t as_u64(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

void moq_fdlimit_raise(struct moq_fdlimit *out)
{
    *out = (struct moq_fdlimit){0};
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        out->err = errno;
        return;
    }
    out->before = out->after = as_u64(rl.rlim_cur);
    out->hard = as_u64(rl.rlim_max);
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? nr_open() : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want) return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        out->err = errno;
        return;
    }
    out->after = as_u64(want);
    out->raised = out->after > out->before;
}
