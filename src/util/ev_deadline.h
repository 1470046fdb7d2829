/*
 * ev_deadline.h - one libev timer that follows a sans-I/O engine's next deadline.
 *
 * Engines (moq sessions, HTTP/3 connections) read no clock and arm no timer: they report
 * their next deadline in monotonic microseconds of moq_system_clock (UINT64_MAX = none) and
 * expect on_timer(now) once it has passed. A driver keeps one moq_ev_deadline per engine
 * instance, sets it to every deadline the engine reports, and passes the `now` its fire
 * callback gets to the engine. The timer may fire a little early (libev counts from the
 * loop's cached time); engines compare their deadlines with the `now` they are given and
 * report the same deadline again.
 *
 * Ownership: the driver embeds it (or allocates it) and stops it before freeing it.
 */
#ifndef MOQ_UTIL_EV_DEADLINE_H
#define MOQ_UTIL_EV_DEADLINE_H

#include <ev.h>
#include <stdint.h>

typedef struct moq_ev_deadline {
    ev_timer w;
    struct ev_loop *loop;
    uint64_t at; /* armed for this deadline; UINT64_MAX while stopped */
    void (*fire)(void *ctx, uint64_t now_us);
    void *ctx;
} moq_ev_deadline;

void moq_ev_deadline_init(moq_ev_deadline *d, struct ev_loop *loop,
                          void (*fire)(void *ctx, uint64_t now_us), void *ctx);
/* Fire at `at_us` (moq_now_us time); UINT64_MAX stops the timer. */
void moq_ev_deadline_set(moq_ev_deadline *d, uint64_t at_us);
void moq_ev_deadline_stop(moq_ev_deadline *d);

#endif
