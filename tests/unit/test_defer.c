/* The per-loop deferred-work queue (src/util/defer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "util/defer.h"

/* A pipe that always has a byte to read: its watcher is pending in every loop iteration. */
struct busy_io {
    ev_io w;
    int fds[2];
    int fired;
};

static void busy_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    ((struct busy_io *)w)->fired++; /* never reads: stays readable */
}

static void busy_start(struct ev_loop *loop, struct busy_io *b)
{
    assert_int_equal(pipe(b->fds), 0);
    assert_int_equal(write(b->fds[1], "x", 1), 1);
    b->fired = 0;
    ev_io_init(&b->w, busy_cb, b->fds[0], EV_READ);
    ev_io_start(loop, &b->w);
}

static void busy_stop(struct ev_loop *loop, struct busy_io *b)
{
    ev_io_stop(loop, &b->w);
    close(b->fds[0]);
    close(b->fds[1]);
}

static void count_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)revents;
    (*(int *)w->data)++;
}

static void count_run(moq_defer *d)
{
    (*(int *)d->data)++;
}

/* What the queue replaces: an ev_idle never runs while I/O is pending. */
static void idle_starves_under_io(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct busy_io b;
    busy_start(loop, &b);
    int runs = 0;
    ev_idle idle;
    ev_idle_init(&idle, count_idle);
    idle.data = &runs;
    ev_idle_start(loop, &idle);
    for (int i = 0; i < 50; i++)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(b.fired, 50);
    assert_int_equal(runs, 0);
    ev_idle_stop(loop, &idle);
    busy_stop(loop, &b);
    ev_loop_destroy(loop);
}

static void deferred_work_runs_under_io(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct busy_io b;
    busy_start(loop, &b);
    int runs = 0;
    moq_defer d;
    assert_int_equal(moq_defer_init(&d, loop, count_run, &runs), 0);
    moq_defer_schedule(&d);
    moq_defer_schedule(&d); /* once however often scheduled */
    assert_true(moq_defer_scheduled(&d));
    ev_run(loop, EVRUN_ONCE);
    assert_int_equal(runs, 1);
    assert_false(moq_defer_scheduled(&d));
    for (int i = 0; i < 10; i++) {
        moq_defer_schedule(&d);
        ev_run(loop, EVRUN_ONCE);
    }
    assert_int_equal(runs, 11);
    moq_defer_fini(&d);
    busy_stop(loop, &b);
    ev_loop_destroy(loop);
}

struct again {
    moq_defer d;
    int runs, limit;
};

static void run_again(moq_defer *d)
{
    struct again *a = d->data;
    if (++a->runs < a->limit) moq_defer_schedule(d);
}

/* A task that re-queues itself runs once per iteration: the loop still polls its I/O and
 * does not block while the task waits. */
static void requeued_work_yields_to_io(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct busy_io b;
    busy_start(loop, &b);
    struct again a = {.limit = 1000};
    assert_int_equal(moq_defer_init(&a.d, loop, run_again, &a), 0);
    moq_defer_schedule(&a.d);
    for (int i = 0; i < 5; i++)
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(a.runs, 5);
    assert_int_equal(b.fired, 5);
    busy_stop(loop, &b);
    /* Without I/O, a waiting task keeps the loop from blocking until it is done. */
    ev_run(loop, 0);
    assert_int_equal(a.runs, 1000);
    moq_defer_fini(&a.d);
    ev_loop_destroy(loop);
}

struct pair {
    moq_defer first, second;
    int second_runs;
};

static void run_first(moq_defer *d)
{
    struct pair *p = d->data;
    moq_defer_cancel(&p->second);
    moq_defer_fini(d); /* the owner may drop its task from inside it */
}

/* Cancelling a task queued behind the running one, and finishing the last task of the
 * queue while it drains, are safe; an unscheduled task does not keep ev_run going. */
static void cancel_and_fini_while_draining(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct pair p = {0};
    assert_int_equal(moq_defer_init(&p.first, loop, run_first, &p), 0);
    assert_int_equal(moq_defer_init(&p.second, loop, count_run, &p.second_runs), 0);
    moq_defer_schedule(&p.first);
    moq_defer_schedule(&p.second);
    ev_run(loop, 0);
    assert_int_equal(p.second_runs, 0);
    moq_defer_fini(&p.second); /* the queue goes with its last task */
    moq_defer_fini(&p.second); /* and a second fini does nothing */
    ev_run(loop, 0);           /* returns: no watcher is left */
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_starves_under_io),
        cmocka_unit_test(deferred_work_runs_under_io),
        cmocka_unit_test(requeued_work_yields_to_io),
        cmocka_unit_test(cancel_and_fini_while_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
