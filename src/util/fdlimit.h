/*
 * fdlimit.h - the process's open-file limit. Every session holds at least one descriptor
 * over WebSocket and every raw QUIC client dial one socket, so the soft RLIMIT_NOFILE
 * (1024 on most systems) is the first thing thousands of sessions meet. The relay and
 * `moq bench` raise it to the hard limit at start. Nothing is allocated.
 */
#ifndef MOQ_UTIL_FDLIMIT_H
#define MOQ_UTIL_FDLIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct moq_fdlimit {
    uint64_t before; /* soft limit found */
    uint64_t after;  /* soft limit now */
    uint64_t hard;   /* hard limit (UINT64_MAX when unlimited) */
    bool raised;     /* after > before */
    int err;         /* errno of a failed getrlimit/setrlimit, else 0 */
};

/* Raise the soft RLIMIT_NOFILE to the hard limit (to nr_open when the hard limit is
 * unlimited, which setrlimit refuses as a soft value). Fills *out either way. */
void moq_fdlimit_raise(struct moq_fdlimit *out);

#endif
