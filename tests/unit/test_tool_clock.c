/* The `moq clock publish` frames (tools/moq/clock.c) as a function of the time the publisher
 * reads when it writes them: the clock is injected, so these run without waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"

/* 2023-11-14 22:13:20 UTC */
#define T0_MS 1700000000000ull

/* The frame names the second the reading falls in and carries the reading as its stamp. */
static void frame_names_the_time_it_is_stamped_with(void **state)
{
    struct clock_state st;
    clock_state_init(&st, T0_MS);
    struct clock_frame f;
    assert_true(clock_frame_at(&st, T0_MS + 2, &f));
    assert_true(f.ts_ms == T0_MS + 2);
    assert_string_equal(f.base, "2023-11-14 22:13:");
    assert_string_equal(f.text, "20");
    assert_true(f.group == 13); /* the minute of the hour, like moq-clock */

    /* a reading just before a boundary names the second that is ending */
    assert_true(clock_frame_at(&st, T0_MS + 999, &f));
    assert_string_equal(f.text, "20");
    assert_true(clock_frame_at(&st, T0_MS + 1000, &f));
    assert_string_equal(f.text, "21");
}

/* A timer that fires just after every boundary for three minutes (and once mid-second, when a
 * subscriber arrives): every second is written once, in order, with no gap, stamped with the
 * time read; the group changes exactly at each minute. */
static void every_second_once_in_order(void **state)
{
    uint64_t start = T0_MS + 20 * 1000 + 500; /* 22:13:40.5 */
    struct clock_state st;
    clock_state_init(&st, start);
    struct clock_frame f;
    assert_true(clock_frame_at(&st, start, &f)); /* the subscriber's request */
    assert_string_equal(f.text, "40");
    clock_state_written(&st, &f);
    uint64_t expect = f.second + 1, group = f.group;
    int minutes = 0;
    for (uint64_t ms = (start / 1000 + 1) * 1000; ms < start + 180 * 1000; ms += 1000) {
        uint64_t fired = ms + 1;
        assert_true(clock_frame_at(&st, fired, &f));
        assert_true(f.second == expect);
        assert_true(f.ts_ms == fired);
        if (f.second % 60 == 0) {
            assert_true(f.group == group + 1);
            assert_string_equal(f.text, "00");
            minutes++;
        } else {
            assert_true(f.group == group);
        }
        group = f.group;
        clock_state_written(&st, &f);
        /* the same second again (a request right after the tick) writes nothing */
        assert_false(clock_frame_at(&st, fired + 400, &f));
        expect++;
    }
    assert_int_equal(minutes, 3);
}

/* A wall clock that steps back never repeats or rewrites a second. */
static void clock_stepping_back_writes_nothing(void **state)
{
    struct clock_state st;
    clock_state_init(&st, T0_MS);
    struct clock_frame f;
    assert_true(clock_frame_at(&st, T0_MS + 5000, &f));
    clock_state_written(&st, &f);
    assert_false(clock_frame_at(&st, T0_MS + 4999, &f));
    assert_false(clock_frame_at(&st, T0_MS + 5999, &f));
    assert_true(clock_frame_at(&st, T0_MS + 6000, &f));
    assert_string_equal(f.text, "26");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_names_the_time_it_is_stamped_with),
        cmocka_unit_test(every_second_once_in_order),
        cmocka_unit_test(clock_stepping_back_writes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
