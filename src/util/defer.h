/*
 * defer.h - the one way to run work "soon" from a libev loop: a per-loop queue of deferred
 * tasks, drained once in every loop iteration before the loop polls.
 *
 * Why not ev_idle or a zero-delay timer: an ev_idle runs only when no other watcher is
 * pending, so work queued through it starves while I/O keeps arriving; a zero-delay timer
 * runs after the poll, one iteration late, and every user needs its own. Here every loop
 * has one queue (created with its first task, freed with its last) whose ev_prepare
 * watcher runs the queued tasks before each poll, so they run in the iteration that queued
 * them whatever I/O is pending. Tasks queued while the queue is being drained run in the
 * next iteration (the loop then polls without blocking), so a task that re-queues itself
 * cannot keep the loop from its I/O.
 *
 * A task runs once per moq_defer_schedule() however often it was scheduled before it ran.
 * Its callback may schedule it again, cancel or finish any task (itself included) and free
 * the memory holding it after moq_defer_fini().
 *
 * Ownership: the owner embeds the moq_defer, calls moq_defer_init() once and
 * moq_defer_fini() before freeing it. A queue belongs to one loop and its thread; tasks of
 * one loop must be scheduled from that loop's thread.
 */
#ifndef MOQ_UTIL_DEFER_H
#define MOQ_UTIL_DEFER_H

#include <ev.h>
#include <stdbool.h>

#include "list.h"

struct moq_defer_queue;

typedef struct moq_defer {
    moq_list link; /* in the queue while scheduled */
    struct moq_defer_queue *q;
    void (*run)(struct moq_defer *d);
    void *data;
} moq_defer;

/* Ties the task to loop's queue; returns -1 (MOQ_ERR_NOMEM) when the queue cannot be made. */
int moq_defer_init(moq_defer *d, struct ev_loop *loop, void (*run)(moq_defer *d), void *data);
/* Run the task in this loop iteration (or the next one if the queue is draining). */
void moq_defer_schedule(moq_defer *d);
void moq_defer_cancel(moq_defer *d);
bool moq_defer_scheduled(const moq_defer *d);
/* Cancels the task and lets go of the queue; init may be called again afterwards. */
void moq_defer_fini(moq_defer *d);

#endif
