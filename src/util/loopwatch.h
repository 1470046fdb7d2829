/*
 * loopwatch.h - notices an event loop iteration that runs too long: the time from the loop
 * waking up (ev_check) to its next wait (ev_prepare) is the work of one iteration; above
 * the threshold it is logged at WARN, with the iteration count, so a stalled loop shows in
 * the log instead of only as timers that fire late.
 *
 * Ownership: the watch is embedded by its owner and lives on one loop; stop it before
 * freeing it.
 */
#ifndef MOQ_UTIL_LOOPWATCH_H
#define MOQ_UTIL_LOOPWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

typedef struct moq_loopwatch {
    ev_check woke;
    ev_prepare sleeps;
    const char *name;      /* in the log line, e.g. "relay" or "worker 1" */
    uint64_t threshold_us; /* 0: never warn */
    uint64_t woke_us;      /* 0 until the loop first woke */
    uint64_t iterations;
    uint64_t slow; /* iterations above the threshold */
    uint64_t longest_us;
} moq_loopwatch;

void moq_loopwatch_start(moq_loopwatch *w, struct ev_loop *loop, const char *name,
                         uint64_t threshold_us);
void moq_loopwatch_stop(moq_loopwatch *w, struct ev_loop *loop);

/* One iteration ran from woke_us to now_us: counts it and says whether it was too long.
 * (What the watchers call; tests call it with their own clock.) */
bool moq_loopwatch_iteration(moq_loopwatch *w, uint64_t woke_us, uint64_t now_us);

#endif
