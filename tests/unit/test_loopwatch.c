/* The event loop watch (src/util/loopwatch.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ev.h>

#include "util/log.h"
#include "util/loopwatch.h"
#include "util/time.h"

static void iterations_are_counted_against_the_threshold(void **state)
{
    (void)state;
    moq_loopwatch w = {.name = "test", .threshold_us = 1000000};
    assert_false(moq_loopwatch_iteration(&w, 5000000, 5400000));
    assert_true(moq_loopwatch_iteration(&w, 6000000, 7500000));
    assert_true(moq_loopwatch_iteration(&w, 8000000, 9000000));  /* exactly the threshold */
    assert_false(moq_loopwatch_iteration(&w, 9000000, 8000000)); /* a clock going back */
    assert_int_equal(w.iterations, 4);
    assert_int_equal(w.slow, 2);
    assert_int_equal(w.longest_us, 1500000);
    moq_loopwatch off = {.name = "off"};
    assert_false(moq_loopwatch_iteration(&off, 0, 100000000));
    assert_int_equal(off.slow, 0);
}

struct hold {
    uint64_t us;    /* how long the callback holds the loop */
    ev_timer *then; /* started once the hold is over */
};

/* A callback that holds the loop until the clock has moved on by its due, then starts the
 * next timer: that one fires in a later iteration however late this one ran. */
static void hold_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct hold *h = t->data;
    uint64_t until = moq_now_us() + h->us;
    while (moq_now_us() < until) {
    }
    ev_timer_start(loop, h->then);
}

static void noop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

static void a_long_callback_is_one_slow_iteration(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    moq_loopwatch w;
    moq_loopwatch_start(&w, loop, "test", 2000);
    /* The loop ends as soon as nothing is active: a timer started by the held callback keeps
     * it for the wait that follows the held iteration, where the iteration is measured. A
     * tail timer started beside the held one could expire with it on a loaded machine, and
     * the loop would end before measuring anything. */
    ev_timer tail;
    ev_timer_init(&tail, noop_cb, 0., 0.);
    struct hold hold = {.us = 3000, .then = &tail};
    ev_timer t;
    ev_timer_init(&t, hold_cb, 0., 0.);
    t.data = &hold;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    moq_loopwatch_stop(&w, loop);
    assert_true(w.iterations >= 1);
    assert_true(w.slow >= 1);
    assert_true(w.longest_us >= hold.us);
    ev_loop_destroy(loop);
}

int main(void)
{
    moq_log_configure("error");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iterations_are_counted_against_the_threshold),
        cmocka_unit_test(a_long_callback_is_one_slow_iteration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
